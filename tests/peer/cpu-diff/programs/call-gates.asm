; Privilege changes: IRET and RETF to ring 3 (data segments of DPL 0 are nulled), far calls from
; ring 3 through 32- and 16-bit call gates with parameter copy and the TSS stack switch, RETF n
; back, INT through DPL-3 trap and interrupt gates (IF kept / cleared), a conforming code segment.
; diff-memory: 0x0 0x8000
; diff-memory: 0x20000 0x1000
%include "rom.inc"
%include "pm.inc"

section pm32
bits 32
pm_main:
    SET_GATE_AT GDT + 9 * 8, SEL_CODE32, A32(gate32_target), 0xec, 2     ; 0x48: 32-bit call gate, DPL 3, 2 dwords
    SET_GATE_AT GDT + 10 * 8, SEL_CODE16, T16(gate16_target), 0xe4, 3         ; 0x50: 16-bit call gate, DPL 3, 3 words
    SET_DESC 11, 0, 0xfffff, 0x9f, 0xc                                   ; 0x58: conforming code, DPL 0
    SET_DESC 12, 0xf8000, 0xffff, 0xfb, 0x4                              ; 0x63: ring-3 code32 based at pm32 (EIP < 64 KiB for the 16-bit gate)
    SET_GATE_AT IDT + 0x31 * 8, SEL_CODE32, A32(trap_handler), 0xef, 0
    SET_GATE_AT IDT + 0x32 * 8, SEL_CODE32, A32(intr_handler), 0xee, 0
    mov edi, RESULTS
    mov esi, 0x22220000
    ; to ring 3 with IRET, IF=1 and DS/ES/FS/GS still holding DPL-0 selectors (nulled by IRET)
    mov ax, SEL_DATA32
    mov fs, ax
    mov gs, ax
    push dword SEL_DATA3
    push dword STACK3
    push dword 0x202
    push dword SEL_CODE3
    push dword A32(ring3_a)
    iretd
ring3_a:
    mov ax, SEL_DATA3
    mov ds, ax
    mov es, ax
    mov [edi], fs                 ; nulled
    add edi, 4
    push dword 0x11111111
    push dword 0x22222222
    call 0x48:0
    mov [edi], esp
    add edi, 4
    ; a 16-bit gate pushes a 16-bit return IP: call it from a segment where EIP fits
    jmp 0x63:(ring3_c - $$)
ring3_c:
    push word 0xaaaa
    push word 0xbbbb
    push word 0xcccc
    call 0x50:0
    mov [edi], esp
    add edi, 4
    jmp 0x2b:A32(ring3_d)
ring3_d:
    int 0x31
    int 0x32
    call 0x58:A32(conforming)
    LEAVE_RING3
    ; ring 0 -> ring 3 with RETF
    push dword SEL_DATA3
    push dword STACK3 - 0x100
    push dword SEL_CODE3
    push dword A32(ring3_b)
    retf
ring3_b:
    mov ax, SEL_DATA3
    mov ds, ax
    mov es, ax
    mov [edi], esp
    add edi, 4
    LEAVE_RING3
    mov [edi], esp
    EXIT

gate32_target:
    ; ring 0 on the TSS stack: EIP, CS, param2, param1, ESP, SS of the caller
    mov eax, [esp + 8]
    mov [edi], eax
    mov eax, [esp + 12]
    mov [edi + 4], eax
    mov eax, [esp + 16]
    mov [edi + 8], eax
    mov ax, ss
    mov [edi + 12], ax
    mov [edi + 14], cs
    mov [edi + 16], esp
    add edi, 20
    retf 8

trap_handler:
    pushfd
    pop eax
    mov [edi], eax
    mov eax, [esp + 8]            ; EFLAGS pushed by the INT
    mov [edi + 4], eax
    add edi, 8
    iretd

intr_handler:
    pushfd
    pop eax
    mov [edi], eax
    add edi, 4
    iretd

conforming:
    mov [edi], cs                 ; RPL stays 3
    mov eax, [esp + 4]
    mov [edi + 2], ax
    add edi, 4
    retf

section .text
bits 16
gate16_target:
    ; 16-bit ring 0 through a 16-bit gate: IP, CS, 3 words, SP, SS of the caller
    mov bp, sp
    mov ax, [bp + 4]
    mov [edi], ax
    mov ax, [bp + 6]
    mov [edi + 2], ax
    mov ax, [bp + 8]
    mov [edi + 4], ax
    mov ax, [bp + 10]
    mov [edi + 6], ax
    mov ax, [bp + 12]
    mov [edi + 8], ax
    mov [edi + 10], sp
    add edi, 12
    retf 6
