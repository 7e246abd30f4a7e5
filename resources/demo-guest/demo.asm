; Boxwood demo guest: a tiny real-mode program that boots from a 1.44 MB floppy image (or, the same
; bytes, from a hard disk) through any PC BIOS. It shows that a fresh install works end to end:
;   - text mode: a banner, an uptime counter ticking in the top-right corner, keys echoed on screen
;   - serial: everything typed or echoed also goes to COM1; bytes arriving on COM1 are echoed too
;   - graphics: F2 switches to VGA mode 13h and draws a pattern; any key goes back to text mode
; It only uses INT 10h (00h, 02h, 0Eh), INT 13h (02h), INT 16h (00h, 01h), the BIOS tick count and
; COM1's ports, so it also exercises the built-in BIOS's most basic services.
;
; Build: nasm -f bin -o demo-floppy.img demo.asm   (scripts/build-demo-guest.mjs does this)

        bits 16
        org 0x7C00

COM1            equ 0x3F8
PAYLOAD_SECTORS equ 4               ; sectors after the boot sector holding the main program
BANNER_ROW      equ 0

; ---------------------------------------------------------------------------------------------
; Boot sector: set up segments and stack, load the rest of the program right after us, jump to it.
; ---------------------------------------------------------------------------------------------
boot:
        cli
        xor ax, ax
        mov ds, ax
        mov es, ax
        mov ss, ax
        mov sp, 0x7C00
        sti
        cld
        mov [boot_drive], dl

        mov si, 3                   ; retries: real floppy drives want a few
.read:
        mov ax, 0x0200 | PAYLOAD_SECTORS
        mov bx, payload
        mov cx, 0x0002              ; cylinder 0, sector 2
        xor dh, dh                  ; head 0
        mov dl, [boot_drive]
        int 0x13
        jnc main
        xor ax, ax                  ; reset the drive and retry
        int 0x13
        dec si
        jnz .read
        mov si, msg_load_failed
        call print_boot
.hang:
        hlt
        jmp .hang

; Minimal teletype print usable before the payload is loaded.
print_boot:
        lodsb
        test al, al
        jz .done
        mov ah, 0x0E
        xor bx, bx
        int 0x10
        jmp print_boot
.done:
        ret

msg_load_failed: db 'Boxwood demo: disk read failed', 0
boot_drive:      db 0

        times 510 - ($ - $$) db 0
        dw 0xAA55

; ---------------------------------------------------------------------------------------------
; Payload
; ---------------------------------------------------------------------------------------------
payload:
main:
        call serial_init
        call text_screen
        mov si, msg_serial_hello
        call serial_print

.loop:
        call draw_uptime
        call poll_serial
        mov ah, 0x01                ; key waiting?
        int 0x16
        jz .idle
        xor ah, ah
        int 0x16                    ; AH = scan code, AL = ASCII
        cmp ah, 0x3C                ; F2
        je .graphics
        call echo_key
        jmp .loop
.idle:
        hlt                         ; sleep until the next interrupt (timer, keyboard)
        jmp .loop
.graphics:
        call graphics_demo
        call text_screen
        mov si, msg_serial_back
        call serial_print
        jmp .loop

; Clears the screen into 80x25 colour text mode and prints the banner.
text_screen:
        mov ax, 0x0003
        int 0x10
        mov si, msg_banner
        call print
        ret

; Echoes the key in AL on the screen and on COM1.
echo_key:
        cmp al, 0x0D
        je .enter
        cmp al, 0x08
        je .backspace
        cmp al, 0x20
        jb .done                    ; other control keys: ignore
        cmp al, 0x7E
        ja .done
        call putc
        call serial_putc
.done:
        ret
.enter:
        mov si, msg_crlf
        call print
        mov si, msg_crlf
        call serial_print
        ret
.backspace:
        mov si, msg_backspace
        call print
        mov si, msg_backspace
        call serial_print
        ret

; Bytes arriving on COM1 are shown on screen and echoed back to COM1, so both directions work.
poll_serial:
        mov dx, COM1 + 5
        in al, dx
        test al, 0x01
        jz .none
        mov dx, COM1
        in al, dx
        cmp al, 0x0D
        je .enter
        cmp al, 0x0A
        je .none                    ; CR already moves to a new line
        cmp al, 0x7F
        je .backspace
        cmp al, 0x08
        je .backspace
        cmp al, 0x20
        jb poll_serial
        call putc
        call serial_putc
        jmp poll_serial
.enter:
        mov si, msg_crlf
        call print
        mov si, msg_crlf
        call serial_print
        jmp poll_serial
.backspace:
        mov si, msg_backspace
        call print
        mov si, msg_backspace
        call serial_print
        jmp poll_serial
.none:
        ret

; Writes "up NNNNN s" (seconds since midnight by the BIOS tick count / 18) at row 0, column 66,
; straight into text memory so the cursor stays where the user types.
draw_uptime:
        push es
        mov ax, 0x0040
        mov es, ax
        mov ax, [es:0x006C]         ; low word of the tick count
        mov dx, [es:0x006E]
        mov bx, 18
        cmp dx, bx                  ; keep the quotient in 16 bits
        jb .div
        xor dx, dx
.div:
        div bx                      ; AX = seconds (approximately)
        mov bx, 0xB800
        mov es, bx
        mov di, (BANNER_ROW * 80 + 74) * 2
        mov cx, 5
        mov bx, 10
.digit:
        xor dx, dx
        div bx
        add dl, '0'
        mov dh, 0x1E                ; yellow on blue
        mov [es:di + 8], dx
        sub di, 2
        loop .digit
        pop es
        ret

; VGA mode 13h: 320x200, 256 colours. Draws diagonal colour bands and a framed box, then waits
; for a key.
graphics_demo:
        mov ax, 0x0013
        int 0x10
        push es
        mov ax, 0xA000
        mov es, ax
        xor di, di
        xor dx, dx                  ; y
.row:
        xor cx, cx                  ; x
.col:
        mov ax, cx
        add ax, dx
        shr ax, 1
        and al, 0x3F
        add al, 0x20                ; a smooth stretch of the default palette
        stosb
        inc cx
        cmp cx, 320
        jb .col
        inc dx
        cmp dx, 200
        jb .row
        ; a white-framed black box in the middle
        mov dx, 60
.box_row:
        mov ax, dx
        mov bx, 320
        push dx
        mul bx
        pop dx
        add ax, 80
        mov di, ax
        mov cx, 160
        mov al, 0x00
        cmp dx, 60
        je .frame
        cmp dx, 139
        je .frame
        mov byte [es:di], 0x0F
        mov byte [es:di + 159], 0x0F
        inc di
        mov cx, 158
        rep stosb
        jmp .next
.frame:
        mov al, 0x0F
        rep stosb
.next:
        inc dx
        cmp dx, 140
        jb .box_row
        pop es
        mov si, msg_serial_gfx      ; after drawing, so "drawn" on the console means drawn on screen
        call serial_print
        xor ah, ah                  ; wait for any key
        int 0x16
        ret

; Prints the NUL-terminated string at DS:SI on the screen (teletype).
print:
        lodsb
        test al, al
        jz .done
        call putc
        jmp print
.done:
        ret

putc:
        push bx
        mov ah, 0x0E
        mov bx, 0x0007
        int 0x10
        pop bx
        ret

serial_init:
        mov dx, COM1 + 1
        xor al, al
        out dx, al                  ; no interrupts: we poll
        mov dx, COM1 + 3
        mov al, 0x80
        out dx, al                  ; DLAB on
        mov dx, COM1
        mov al, 0x01
        out dx, al                  ; divisor 1: 115200 baud
        mov dx, COM1 + 1
        xor al, al
        out dx, al
        mov dx, COM1 + 3
        mov al, 0x03
        out dx, al                  ; 8N1, DLAB off
        mov dx, COM1 + 2
        mov al, 0xC7
        out dx, al                  ; FIFOs on and cleared
        mov dx, COM1 + 4
        mov al, 0x0B
        out dx, al                  ; DTR, RTS, OUT2
        ret

serial_print:
        lodsb
        test al, al
        jz .done
        call serial_putc
        jmp serial_print
.done:
        ret

; Sends AL on COM1 once the transmitter holding register is empty (bounded wait).
serial_putc:
        push ax
        push cx
        push dx
        mov ah, al
        mov cx, 0xFFFF
        mov dx, COM1 + 5
.wait:
        in al, dx
        test al, 0x20
        jnz .send
        loop .wait
.send:
        mov al, ah
        mov dx, COM1
        out dx, al
        pop dx
        pop cx
        pop ax
        ret

msg_banner:
        db 'Boxwood demo guest', 13, 10
        db '==================', 13, 10, 13, 10
        db 'This machine booted from a floppy image through the BIOS, with no download.', 13, 10
        db 'Type here and your keys are echoed, on this screen and on the serial port.', 13, 10
        db 'Bytes sent to the serial console are echoed back here too.', 13, 10
        db 'Press F2 for a VGA graphics demo (mode 13h); any key comes back here.', 13, 10, 13, 10
        db '> ', 0
msg_serial_hello:
        db 'Boxwood demo guest: hello from COM1', 13, 10, '> ', 0
msg_serial_gfx:
        db 13, 10, '[graphics mode 13h drawn]', 13, 10, 0
msg_serial_back:
        db '[text mode]', 13, 10, '> ', 0
msg_crlf:
        db 13, 10, '> ', 0
msg_backspace:
        db 8, ' ', 8, 0

payload_end:
%if payload_end - payload > PAYLOAD_SECTORS * 512
%error "payload larger than PAYLOAD_SECTORS"
%endif

        ; pad to a standard 1.44 MB floppy so every BIOS recognises its geometry
        times 1474560 - ($ - $$) db 0
