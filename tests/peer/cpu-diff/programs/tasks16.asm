; 16-bit TSS (286 format): CALL from the 32-bit task into a 16-bit task (state loaded from the
; 44-byte TSS, NT and back link set, busy type 3), its 16-bit IRET back (state saved in the 16-bit
; format), and a JMP into it through a task gate. General-register high halves are zeroed before
; each switch (the SDM leaves them unspecified after loading a 16-bit TSS).
; diff-memory: 0x0 0x8000
; diff-memory: 0x9000 0x100
; diff-memory: 0x20000 0x100
%include "rom.inc"
%include "pm.inc"

TSS16 equ 0x9000

section pm32
bits 32
pm_main:
    SET_DESC 9, TSS16, 0x2b, 0x81, 0x0                       ; 0x48: 16-bit TSS, available
    SET_GATE_AT GDT + 10 * 8, 0x48, 0, 0x85, 0               ; 0x50: task gate
    mov word [TSS16 + 0x0e], T16(task16)                    ; IP
    mov word [TSS16 + 0x10], 0x0002                         ; FLAGS
    mov word [TSS16 + 0x12], 0x1111                         ; AX
    mov word [TSS16 + 0x1a], 0x8800                         ; SP
    mov word [TSS16 + 0x22], SEL_DATA16                     ; ES
    mov word [TSS16 + 0x24], SEL_CODE16                     ; CS
    mov word [TSS16 + 0x26], SEL_DATA16                     ; SS
    mov word [TSS16 + 0x28], SEL_DATA16                     ; DS
    mov word [TSS16 + 0x2a], 0                              ; LDT
    call zero_high
    call 0x48:0
    mov [RESULTS], eax
    pushfd
    pop dword [RESULTS + 4]
    call zero_high
    jmp 0x50:0
    mov [RESULTS + 8], eax
    str word [RESULTS + 12]
    EXIT

zero_high:
    movzx eax, ax
    movzx ebx, bx
    movzx ecx, cx
    movzx edx, dx
    movzx esi, si
    movzx edi, di
    movzx ebp, bp
    ret

section .text
bits 16
task16:
    pushf
    pop word [0x20000 & 0xffff + 0x20]     ; DS base 0: offset 0x20 (NT set)
    mov ax, [TSS16]
    mov [0x22], ax                         ; back link
    str word [0x24]
    mov ax, 0x2222
    iret                                   ; NT: back to the 32-bit task
    ; resumed by the JMP through the task gate
    pushf
    pop word [0x26]
    mov ax, 0x3333
    jmp SEL_TSS0:0
