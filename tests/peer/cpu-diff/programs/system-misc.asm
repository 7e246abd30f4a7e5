; Assorted system behaviour: the trap flag (#DB after each instruction, none after MOV SS/POP SS
; which hold interrupts and traps for one instruction, DR6.BS), SYSENTER/SYSEXIT through the
; MSRs (WRMSR/RDMSR), CMPXCHG8B both ways, ENTER with nesting levels, PUSH/POP of segment
; registers, LDS/LSS, 16-bit code in protected mode with operand/address-size prefixes, CLTS.
; diff-memory: 0x0 0x8000
; diff-memory: 0x20000 0x1000
%include "rom.inc"
%include "pm.inc"

section pm32
bits 32
pm_main:
    mov edi, RESULTS
    ; single-step: set TF with POPFD; each following instruction traps to the logging handler
    ; (which returns with IRETD, restoring TF) until TF is cleared again.
    pushfd
    or dword [esp], 0x100
    popfd
    mov eax, 1
    add eax, 2
    mov bx, ss
    mov ss, bx                   ; no #DB after this one...
    mov ecx, 3                   ; ...but after this
    push ss
    pop ss
    nop
    pushfd
    and dword [esp], ~0x100
    popfd
    nop
    mov eax, dr6
    mov [edi], eax
    ; SYSENTER / SYSEXIT
    mov ecx, 0x174
    xor edx, edx
    mov eax, SEL_CODE32
    wrmsr
    mov ecx, 0x175
    mov eax, STACK0 - 0x100
    wrmsr
    mov ecx, 0x176
    mov eax, A32(sysenter_target)
    wrmsr
    mov ecx, 0x174
    rdmsr
    mov [edi + 4], eax
    ENTER_RING3
    mov ecx, STACK3 - 0x40       ; SYSEXIT loads ESP from ECX, EIP from EDX
    mov edx, A32(after_sysexit)
    sysenter
after_sysexit:
    mov [edi + 8], esp
    mov [edi + 12], cs
    mov [edi + 14], ss
    LEAVE_RING3
    ; CMPXCHG8B
    mov dword [SCRATCH + 16], 0x11111111
    mov dword [SCRATCH + 20], 0x22222222
    mov eax, 0x11111111
    mov edx, 0x22222222
    mov ebx, 0x33333333
    mov ecx, 0x44444444
    cmpxchg8b [SCRATCH + 16]
    pushfd
    pop dword [edi + 16]
    cmpxchg8b [SCRATCH + 16]
    pushfd
    pop dword [edi + 20]
    mov [edi + 24], eax
    mov [edi + 28], edx
    ; ENTER with nesting
    mov ebp, esp
    enter 16, 0
    enter 8, 1
    enter 4, 3
    mov [edi + 32], ebp
    mov [edi + 36], esp
    leave
    leave
    leave
    ; segment registers on the stack, far pointers
    push ds
    push fs
    pop gs
    pop es
    mov [edi + 40], gs
    mov dword [SCRATCH + 32], 0x1234
    mov word [SCRATCH + 36], SEL_DATA32
    lds esi, [SCRATCH + 32]
    lss ebx, [SCRATCH + 32]
    mov esp, STACK0
    mov [edi + 44], esi
    ; 16-bit code segment with size prefixes
    call SEL_CODE16:T16(code16)
    mov [edi + 48], eax
    mov [edi + 52], ebx
    ; CLTS
    mov eax, cr0
    or eax, 8
    mov cr0, eax
    clts
    mov eax, cr0
    mov [edi + 56], eax
    EXIT

sysenter_target:
    ; ring 0, CS = SYSENTER_CS, SS = SYSENTER_CS + 8, ESP = SYSENTER_ESP
    mov [RESULTS + 0x80], esp
    mov [RESULTS + 0x84], cs
    mov [RESULTS + 0x86], ss
    sysexit

section .text
bits 16
code16:
    mov eax, 0x12345678          ; operand-size prefix
    mov bx, 0x1111
    o32 push eax
    pop ecx
    a32 mov bx, [ecx * 0 + SCRATCH + 32]
    add eax, ecx
    o32 retf
