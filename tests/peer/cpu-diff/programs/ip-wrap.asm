; 16-bit instruction pointer wrap-around: in real mode an instruction that ends exactly at
; offset 0xFFFF leaves IP = 0x0000 (EIP's high half stays clear), and execution continues at
; CS:0000. Also a near JMP whose target wraps past 0xFFFF, and a 16-bit CALL pushing the wrapped
; return address.
; diff-memory: 0x0 0x800
; diff-memory: 0x10000 0x10000
%include "rom.inc"
start:
    xor ax, ax
    mov ss, ax
    mov sp, 0x7000
    mov ax, 0x1000
    mov ds, ax
    mov es, ax
    ; 1000:FFFE: "inc ax" twice (2 x 1 byte) ... then 1000:0000: far jump back
    mov byte [0xfffe], 0x40
    mov byte [0xffff], 0x40
    mov byte [0x0000], 0xea
    mov word [0x0001], back1
    mov word [0x0003], 0xf000
    xor ax, ax
    jmp 0x1000:0xfffe
back1:
    mov [0x100], ax
    ; a 2-byte instruction ending at 0xFFFF: "add bl, al" (00 c3) at 1000:FFFE
    mov word [0xfffe], 0xc300
    mov word [0x0001], back2
    mov bl, 1
    mov al, 2
    jmp 0x1000:0xfffe
back2:
    mov [0x102], bl
    ; near JMP wrapping: at 1000:FFF0 "jmp short +0x20" lands on 1000:0012
    mov word [0xfff0], 0x20eb
    mov byte [0x0012], 0xea
    mov word [0x0013], back3
    mov word [0x0015], 0xf000
    jmp 0x1000:0xfff0
back3:
    ; CALL near at 1000:FFFD (3 bytes) pushes return IP 0x0000
    mov byte [0xfffd], 0xe8
    mov word [0xfffe], 0x0020 - 0x0000    ; target = 0x0000 + 0x20
    mov byte [0x0020], 0xea
    mov word [0x0021], back4
    mov word [0x0023], 0xf000
    jmp 0x1000:0xfffd
back4:
    pop ax
    mov [0x104], ax
    EXIT
