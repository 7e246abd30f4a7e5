; Task switches through the TSS: CALL to a TSS (NT and back link set, both busy), IRET with NT
; back, JMP through a task gate in the GDT (busy moves, no link), INT through a task gate in the
; IDT, and the faults: CALL to a busy TSS (#GP), a TSS whose limit is too small (#TS).
; The TSS images (saved registers) and the GDT busy bits are compared at the end.
; diff-memory: 0x0 0x8000
; diff-memory: 0x9000 0x400
; diff-memory: 0x20000 0x1000
%include "rom.inc"
%include "pm.inc"

TSS1 equ 0x9000
TSS2 equ 0x9100

section pm32
bits 32
; INIT_TSS base, eip, esp
%macro INIT_TSS 3
    mov dword [%1 + 0x1c], 0            ; CR3
    mov dword [%1 + 0x20], %2           ; EIP
    mov dword [%1 + 0x24], 0x2          ; EFLAGS
    mov dword [%1 + 0x38], %3           ; ESP
    mov dword [%1 + 0x48], SEL_DATA32   ; ES
    mov dword [%1 + 0x4c], SEL_CODE32   ; CS
    mov dword [%1 + 0x50], SEL_DATA32   ; SS
    mov dword [%1 + 0x54], SEL_DATA32   ; DS
    mov dword [%1 + 0x58], 0            ; FS
    mov dword [%1 + 0x5c], 0            ; GS
    mov dword [%1 + 0x60], 0            ; LDT
    mov dword [%1 + 0x64], 0x00680000   ; no I/O bitmap
%endmacro

pm_main:
    SET_DESC 9, TSS1, 0x67, 0x89, 0x0                        ; 0x48
    SET_GATE_AT GDT + 10 * 8, SEL_TSS0 + 0x10, 0, 0x85, 0    ; 0x50: task gate -> 0x48
    SET_DESC 11, TSS2, 0x67, 0x89, 0x0                       ; 0x58
    SET_DESC 12, TSS2, 0x20, 0x89, 0x0                       ; 0x60: limit too small
    SET_GATE_AT IDT + 0x33 * 8, 0x58, 0, 0x85, 0             ; int 0x33 -> task 0x58
    INIT_TSS TSS1, A32(task1), 0x8800
    INIT_TSS TSS2, A32(task2), 0x8c00
    mov eax, 0x11110000
    mov ebx, 0x22220000
    mov ebp, 0x33330000
    call 0x48:0
    mov [RESULTS], eax
    pushfd
    pop dword [RESULTS + 4]
    jmp 0x50:0
    mov [RESULTS + 8], eax
    str word [RESULTS + 12]
    int 0x33
    mov [RESULTS + 16], eax
    TRY call SEL_TSS0:0                                      ; busy: #GP(0x38)
    TRY call 0x60:0                                          ; limit < 0x67: #TS(0x60)
    EXIT

task1:
    pushfd
    pop dword [RESULTS + 0x20]                               ; NT set
    mov ax, [TSS1]
    mov [RESULTS + 0x24], ax                                 ; back link 0x38
    str word [RESULTS + 0x26]
    mov eax, 0xaaaa0001
    iretd
    ; resumed by the JMP through the task gate: no NT, no link
    pushfd
    pop dword [RESULTS + 0x28]
    mov eax, 0xaaaa0002
    jmp SEL_TSS0:0

task2:
    pushfd
    pop dword [RESULTS + 0x30]
    mov eax, 0xbbbb0001
    iretd
