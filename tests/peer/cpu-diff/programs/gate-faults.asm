; Far transfers that fail, with their error codes: JMP/CALL to a not-present code segment (#NP),
; to a data segment (#GP), call gates with DPL < CPL (#GP), with a not-present gate (#NP), with a
; non-code target (#GP), RETF to an outer ring with an SS of the wrong DPL (#GP), a gate in the LDT, a 16-bit interrupt gate (16-bit frame),
; IRET to a not-present CS (#NP), INT with a gate to a not-present segment (#NP).
; diff-memory: 0x0 0x8000
; diff-memory: 0x20000 0x1000
%include "rom.inc"
%include "pm.inc"

section pm32
bits 32
pm_main:
    SET_DESC 9, 0, 0xfffff, 0x1a, 0xc                                  ; 0x48 code, not present
    SET_GATE_AT GDT + 10 * 8, SEL_CODE32, A32(target0), 0x8c, 0       ; 0x50 call gate DPL 0
    SET_GATE_AT GDT + 11 * 8, SEL_CODE32, A32(target0), 0x6c, 0       ; 0x58 call gate DPL 3, not present
    SET_GATE_AT GDT + 12 * 8, SEL_DATA32, 0, 0xec, 0                  ; 0x60 call gate DPL 3 to data
    SET_GATE_AT GDT + 13 * 8, 0x48, 0, 0xec, 0                        ; 0x68 call gate DPL 3 to not-present code
    SET_GATE_AT GDT + 14 * 8, SEL_CODE32, A32(target0), 0xec, 0       ; 0x70 call gate DPL 3, good
    SET_DESC 15, 0, 0xfffff, 0xd2, 0xc                                ; 0x78 data DPL 2
    ; an LDT holding a call gate
    SET_DESC 16, 0x8000, 0xf, 0x82, 0x0                               ; 0x80 LDT
    mov dword [0x8000], 0
    mov dword [0x8004], 0
    SET_GATE_AT 0x8008, SEL_CODE32, A32(target0), 0xec, 0             ; LDT selector 0x0c|3
    mov ax, 0x80
    lldt ax
    ; a 16-bit interrupt gate
    SET_GATE_AT IDT + 0x40 * 8, SEL_CODE16, T16(handler16), 0x86, 0
    SET_GATE_AT IDT + 0x41 * 8, 0x48, 0, 0x8e, 0                      ; gate to a not-present segment
    mov edi, RESULTS
    TRY jmp 0x48:0               ; #NP(0x48)
    TRY call SEL_DATA32:0        ; #GP(0x10)
    call SEL_CODE16:T16(do_int40) ; a 16-bit gate pushes a 16-bit IP: raise it from 16-bit code
    mov [edi], esp
    TRY int 0x41                 ; #NP(0x48)
    ; IRET to a not-present CS
    pushfd
    push dword 0x48
    push dword 0
    TRY iretd                    ; #NP(0x48)
    add esp, 12
    ENTER_RING3
    TRY call 0x50:0              ; gate DPL 0 < CPL 3: #GP(0x50)
    TRY call 0x58:0              ; gate not present: #NP(0x58)
    TRY call 0x60:0              ; target not code: #GP(0x10)
    TRY call 0x68:0              ; target not present: #NP(0x48)
    call 0x0c | 3:0              ; through the LDT gate
    LEAVE_RING3
    ; RETF to ring 3 with an SS whose DPL is not 3: #GP(SS)
    push dword 0x78 | 3
    push dword STACK3
    push dword SEL_CODE3
    push dword A32(.never)
    TRY retf
    add esp, 16
    mov eax, [LOG_COUNT]
    mov [edi + 4], eax
    EXIT
.never:
    EXIT

target0:
    mov eax, [esp]
    mov [RESULTS + 0x40], eax
    mov [RESULTS + 0x44], cs
    retf

section .text
bits 16
do_int40:
    int 0x40
    o32 retf

handler16:
    mov bp, sp
    mov ax, [bp]                 ; IP
    mov [RESULTS & 0xffff + 0x10], ax
    mov ax, [bp + 2]             ; CS
    mov [RESULTS & 0xffff + 0x12], ax
    iret
