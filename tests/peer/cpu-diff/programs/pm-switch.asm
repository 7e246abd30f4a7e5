; Mode switches: real -> 32-bit PM -> 16-bit PM -> real (unreal: DS keeps a 4 GiB limit) -> LMSW
; back to PM; descriptor-table instructions (SGDT/SIDT/SLDT/STR/SMSW), an LDT, LAR/LSL/VERR/VERW,
; ARPL, and segment loads that set accessed bits in the GDT.
; diff-memory: 0x0 0x8000
; diff-memory: 0x20000 0x1000
; diff-memory: 0x100000 0x100
%include "rom.inc"
%include "pm.inc"

section pm32
bits 32
pm_main:
    mov edi, RESULTS
    sgdt [edi]
    sidt [edi + 8]
    smsw [edi + 16]
    str word [edi + 18]
    sldt word [edi + 20]
    ; an LDT in the GDT at index 8 (selector 0x40) with a data segment at 0x30000 (selector 0x04|4)
    SET_DESC 8, 0x8000, 0x17, 0x82, 0x0
    mov dword [0x8000], 0
    mov dword [0x8004], 0
    mov dword [0x8008], 0x0000ffff
    mov dword [0x800c], 0x00409203        ; base 0x030000, limit 0xffff, data RW, DPL 0
    mov dword [0x8010], 0x0000ffff
    mov dword [0x8014], 0x00cffa00        ; code32 DPL 3 flat
    mov ax, 0x40
    lldt ax
    sldt word [edi + 22]
    mov ax, 0x0c
    mov fs, ax
    mov dword [fs:0x10], 0xcafe0001
    lar eax, [edi + 100]                  ; garbage selector (0): ZF=0
    pushf
    mov cx, 0x14 | 3
    lar eax, cx
    pushf
    mov [edi + 24], eax
    lsl eax, cx
    mov [edi + 28], eax
    mov cx, SEL_DATA32
    lsl ebx, cx
    mov [edi + 32], ebx
    verr cx
    pushf
    verw cx
    pushf
    mov cx, SEL_CODE32
    verw cx
    pushf
    verr cx
    pushf
    mov ax, 0x10
    mov bx, 0x23
    arpl ax, bx
    pushf
    mov [edi + 36], ax
    str word [edi + 40]
    ; 16-bit protected mode in the .text section
    jmp SEL_CODE16:pm16

tss_sel: dw SEL_TSS0

back32:
    mov ax, SEL_DATA32
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov edi, RESULTS + 0x100
    mov eax, cr0
    mov [edi], eax
    mov eax, [0x100000]
    mov [edi + 4], eax
    EXIT

section .text
bits 16
pm16:
    mov ax, SEL_DATA16
    mov es, ax
    mov ax, SEL_DATA32
    mov ds, ax                    ; 4 GiB limit, carried into real mode
    mov word [es:RESULTS & 0xffff], 0x1616      ; es base 0: offset wraps to 0x0000 (RESULTS=0x20000)
    mov eax, 0x12345678
    push eax
    pop ebx
    push bx
    pop cx
    mov eax, cr0
    and eax, 0x7ffffffe
    mov cr0, eax
    jmp 0xf000:real_again
real_again:
    xor ax, ax
    mov ss, ax
    mov sp, STACK0
    mov dword [dword 0x100000], 0x0badcafe   ; unreal mode: DS limit is still 4 GiB
    mov ax, 0x2000
    mov ds, ax                    ; real-mode load: base 0x20000, limit kept
    mov dword [dword 0x10008], 0x77777777    ; 0x30008 through the big limit
    mov ax, [0x0]
    smsw bx
    mov [0x200], bx
    ; back to protected mode with LMSW (sets PE)
    xor ax, ax
    mov ds, ax
    smsw ax
    or ax, 1
    lmsw ax
    jmp dword SEL_CODE32:back32
