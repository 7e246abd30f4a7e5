; Exceptions with their vectors and error codes, each resumed by the logging handler:
; #DE, traps (INT3, INTO), #BR, #UD, #NM, #GP (selectors, privileged instructions in ring 3,
; gates), #NP, #SS, and a double fault.
; The log (vector, error code, faulting CS:EIP) at 0x600 is compared at the end.
; diff-memory: 0x0 0x8000
; diff-memory: 0x20000 0x1000
%include "rom.inc"
%include "pm.inc"

section pm32
bits 32
pm_main:
    ; extra descriptors
    SET_DESC 9, 0x20000, 0x0ff, 0x92, 0x0     ; 0x48 data, limit 0xff
    SET_DESC 10, 0x20000, 0xfff, 0x90, 0x0    ; 0x50 data read-only
    SET_DESC 11, 0, 0xfffff, 0x12, 0xc        ; 0x58 not present
    SET_DESC 12, 0, 0xfffff, 0x98, 0xc        ; 0x60 code execute-only
    SET_DESC 13, 0x6000, 0x0fff, 0x96, 0x4    ; 0x68 expand-down stack, limit 0xfff (valid 0x1000-0xffffffff)
    SET_DESC 14, 0, 0xfffff, 0xb2, 0xc        ; 0x70 data DPL 1
    ; #DE
    xor ecx, ecx
    mov eax, 1
    TRY div ecx
    mov eax, 0x80000000
    cdq
    mov ecx, -1
    TRY idiv ecx
    mov ax, 0x1000
    mov cl, 0x10
    TRY div cl
    ; traps: INT3 and INTO resume after the instruction
    int3
    mov al, 0x7f
    add al, 1
    into
    ; #BR
    mov dword [SCRATCH + 8], 10
    mov dword [SCRATCH + 12], 20
    mov eax, 25
    TRY bound eax, [SCRATCH + 8]
    mov eax, 15
    bound eax, [SCRATCH + 8]
    ; #UD
    TRY ud2
    TRY db 0xf0, 0x90               ; LOCK NOP
    TRY db 0x8e, 0xc8               ; MOV CS, AX
    TRY db 0x0f, 0x0b
    TRY db 0x8d, 0xc0               ; LEA with a register operand
    TRY db 0xc4, 0xc0               ; LES with a register operand
    ; #NM: CR0.TS, then CR0.EM
    mov eax, cr0
    or eax, 8
    mov cr0, eax
    TRY fnop
    clts
    or eax, 4
    and eax, ~8
    mov cr0, eax
    TRY fld1
    and eax, ~4
    mov cr0, eax
    ; #GP with selector error codes
    TRY mov ds, [cs:A32(bad_sel1)]  ; beyond the GDT limit... (limit 0x7ff: 0x800)
    mov ax, SEL_DATA32
    mov ds, ax
    mov ax, 0x60
    TRY mov ds, ax                  ; execute-only code into DS
    mov ax, SEL_DATA32
    mov ds, ax
    mov ax, 0x70 | 0
    TRY mov es, ax                  ; DPL 1 < CPL? no: CPL 0, RPL 0 -> allowed
    mov ax, SEL_CODE32
    TRY mov ss, ax                  ; code into SS
    mov ax, SEL_DATA32 | 1
    TRY mov ss, ax                  ; RPL != CPL
    mov ax, SEL_DATA32
    mov es, ax
    ; #NP / #SS for not-present segments
    mov ax, 0x58
    TRY mov fs, ax
    TRY mov ss, ax
    ; Not tested here: segment limit, read-only and expand-down checks on data accesses. QEMU TCG
    ; does not check segment limits or writability at access time (only when loading a selector),
    ; so hardware's #GP(0)/#SS(0) there cannot be compared against it; unit tests cover them.
    ; far transfers to bad targets
    TRY jmp SEL_DATA32:0
    TRY call 0x58:0
    ; IDT: vector beyond the limit, not-present gate
    lidt [cs:A32(small_idt)]
    TRY int 0x40
    lidt [cs:A32(full_idt)]
    mov byte [IDT + 0x41 * 8 + 5], 0x0e      ; gate type but P=0
    TRY int 0x41
    ; double fault: #NP while delivering #GP (gate 13 not present)
    mov byte [IDT + 13 * 8 + 5], 0x0e
    TRY mov ds, [cs:A32(bad_sel1)]
    mov byte [IDT + 13 * 8 + 5], 0x8e
    ; ring 3: privileged instructions. (#AC is not tested: QEMU TCG ignores CR0.AM/EFLAGS.AC.)
    ENTER_RING3
    TRY cli
    TRY hlt
    TRY mov eax, cr0
    TRY lgdt [0]
    TRY in al, 0x80
    TRY int 0x10                     ; gate DPL 0 from CPL 3
    mov ax, SEL_DATA32               ; DPL 0 data from CPL 3: #GP(sel)
    TRY mov ds, ax
    mov ax, SEL_DATA3
    mov ds, ax
    LEAVE_RING3
    mov edi, RESULTS
    mov eax, [LOG_COUNT]
    stosd
    EXIT

bad_sel1: dw 0x800
small_idt: dw 0x1ff
           dd IDT
full_idt:  dw 0x7ff
           dd IDT
