; Real-mode odds and ends: INT/IRET through the IVT, #DE from AAM 0 and DIV (IVT handler),
; far CALL/RETF, PUSH SP (pushes the old value), POP SP, PUSHF/POPF with IOPL/NT bits, SALC,
; BT/BTS with a register bit offset beyond the operand (bit-string addressing), string
; instructions wrapping SI/DI at 64 KiB, address-size prefixes (LOOP with ECX, JECXZ, 32-bit
; addressing), LDS/LES, IMUL with three operands, SHLD/SHRD 16-bit.
; diff-memory: 0x0 0x800
; diff-memory: 0x20000 0x11000
%include "rom.inc"
start:
    xor ax, ax
    mov ds, ax
    mov ss, ax
    mov sp, 0x7000
    mov word [0 * 4], de_handler
    mov word [0 * 4 + 2], 0xf000
    mov word [0x60 * 4], int60
    mov word [0x60 * 4 + 2], 0xf000
    mov ax, 0x2000
    mov es, ax
    xor di, di
    cld
    ; INT / IRET
    mov ax, 0x1234
    int 0x60
    stosw
    ; #DE: AAM 0 and DIV by zero resume after the instruction (handler skips 2 bytes)
    mov al, 5
    aam 0
    stosw
    xor cx, cx
    mov ax, 7
    div cl
    stosw
    ; far call / retf, push sp / pop sp
    call 0xf000:farproc
    stosw
    push sp
    pop ax
    stosw
    mov bx, sp
    push word 0x6000
    pop sp
    mov ax, sp
    mov sp, bx
    stosw
    ; POPF in real mode: IOPL and NT are writable
    push word 0x78d5             ; NT, IOPL 3, OF, arithmetic flags (not TF/IF/DF)
    popf
    pushf
    pop ax
    stosw
    push word 0x0002
    popf
    ; SALC
    stc
    salc
    stosb
    clc
    salc
    stosb
    ; bit strings: BT/BTS [mem], reg with offsets beyond the word
    mov bx, 0x100
    mov ax, 100
    bts [es:bx], ax
    mov ax, -9
    bts word [es:bx], ax
    mov eax, 1000
    bt dword [es:bx], eax
    setc al
    stosb
    ; string wrap: MOVSB across SI/DI = 0xFFFF
    push ds
    mov ax, 0x2000
    mov ds, ax
    mov byte [0xfffe], 0xaa
    mov byte [0xffff], 0xbb
    mov byte [0x0000], 0xcc
    push di
    mov si, 0xfffe
    mov ax, 0x3000
    mov es, ax
    mov di, 0xffff
    mov cx, 3
    rep movsb
    mov ax, si
    mov bx, di
    pop di
    mov cx, 0x2000
    mov es, cx
    pop ds
    stosw
    mov ax, bx
    stosw
    ; address-size prefix: 32-bit addressing, LOOP on ECX, JECXZ
    mov ebx, 0x10
    mov eax, [es:ebx + ebx * 2 + 0x100]
    stosd
    mov ecx, 0x10001             ; 16-bit LOOP counts in CX only: one round, ECX = 0x10000
    xor ax, ax
.l:
    inc ax
    loop .l
    stosw
    mov eax, ecx
    stosd
    mov ecx, 2                   ; a32 LOOP counts in ECX
.l2:
    inc ax
    a32 loop .l2
    stosw
    mov ecx, 0x10000
    jecxz .no
    mov ax, 0x1111
    stosw
.no:
    ; LDS / LES
    mov word [es:0x200], 0x4444
    mov word [es:0x202], 0x2100
    les si, [es:0x200]
    mov ax, es
    mov cx, 0x2000
    mov es, cx
    stosw
    mov ax, si
    stosw
    ; IMUL three operands, SHLD/SHRD 16-bit
    imul ax, bx, -300
    pushf
    stosw
    mov ax, 0x8421
    mov dx, 0x1248
    shld ax, dx, 5
    stosw
    shrd ax, dx, 12
    stosw
    EXIT

de_handler:
    ; resume after the 2-byte faulting instruction, AX marked
    push bp
    mov bp, sp
    add word [bp + 2], 2
    pop bp
    mov ax, 0xdede
    iret

int60:
    add ax, 1
    iret

farproc:
    mov ax, 0xfa11
    retf
