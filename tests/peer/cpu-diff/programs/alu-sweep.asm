; 32-bit protected mode ALU sweep: every two-operand ALU op, INC/DEC/NEG/NOT, shifts and rotates
; by CL, MUL/IMUL (all forms), DIV/IDIV (non-faulting pairs), SHLD/SHRD, BT*/BSF/BSR, SETcc and
; CMOVcc, in 8-, 16- and 32-bit operand sizes over a table of edge values, with memory and
; register operands and SIB addressing. Results and flags go to memory.
; diff-memory: 0x20000 0x10000
; diff-max-steps: 40000
%include "rom.inc"
%include "pm.inc"

section pm32
bits 32
%macro OP2 1          ; op on eax/ebx in three sizes, flags saved
    mov eax, esi
    %1 eax, edx
    pushfd
    pop dword [edi]
    mov [edi + 4], eax
    mov eax, esi
    %1 ax, dx
    pushfd
    pop dword [edi + 8]
    mov [edi + 12], eax
    mov eax, esi
    %1 al, dl
    pushfd
    pop dword [edi + 16]
    mov [edi + 20], eax
    mov [ebp + ecx * 4], esi       ; memory destination through SIB
    %1 dword [ebp + ecx * 4], edx
    pushfd
    pop dword [edi + 24]
    add edi, 28
%endmacro

%macro OP1 1
    mov eax, esi
    %1 eax
    pushfd
    pop dword [edi]
    mov [edi + 4], eax
    mov eax, esi
    %1 ax
    pushfd
    pop dword [edi + 8]
    mov [edi + 12], eax
    mov eax, esi
    %1 al
    pushfd
    pop dword [edi + 16]
    mov [edi + 20], eax
    add edi, 24
%endmacro

%macro SHIFT 1
    mov eax, esi
    %1 eax, cl
    pushfd
    pop dword [edi]
    mov [edi + 4], eax
    mov eax, esi
    %1 ax, cl
    pushfd
    pop dword [edi + 8]
    mov [edi + 12], eax
    mov eax, esi
    %1 al, cl
    pushfd
    pop dword [edi + 16]
    mov [edi + 20], eax
    add edi, 24
%endmacro

pm_main:
    mov edi, RESULTS
    mov ebp, 0x2f000
    xor ebx, ebx
.outer:
    mov esi, [A32(vals) + ebx * 4]
    xor ecx, ecx
.inner:
    mov edx, [A32(vals) + ecx * 4]
    ; alternate the carry going in
    bt ecx, 0
    OP2 add
    OP2 adc
    OP2 sub
    bt ebx, 0
    OP2 sbb
    OP2 and
    OP2 or
    OP2 xor
    OP2 cmp
    OP2 test
    push ecx
    mov ecx, edx
    and ecx, 0x3f
    SHIFT shl
    SHIFT shr
    SHIFT sar
    SHIFT rol
    stc
    SHIFT rcr
    clc
    SHIFT rcl
    SHIFT ror
    mov eax, esi
    shld eax, edx, cl
    pushfd
    pop dword [edi]
    mov [edi + 4], eax
    mov eax, esi
    shrd ax, dx, cl
    pushfd
    pop dword [edi + 8]
    mov [edi + 12], eax
    add edi, 16
    pop ecx
    ; multiply
    mov eax, esi
    mul edx
    pushfd
    pop dword [edi]
    mov [edi + 4], eax
    mov [edi + 8], edx
    mov edx, [A32(vals) + ecx * 4]
    mov eax, esi
    imul dx
    pushfd
    pop dword [edi + 12]
    mov [edi + 16], eax
    mov [edi + 20], edx
    mov edx, [A32(vals) + ecx * 4]
    mov eax, esi
    imul eax, edx
    pushfd
    pop dword [edi + 24]
    mov [edi + 28], eax
    imul eax, esi, -7
    mov [edi + 32], eax
    mov eax, esi
    imul byte [A32(vals) + ecx * 4]
    mov [edi + 36], eax
    add edi, 40
    ; divide when it cannot fault: (0:esi) / edx with edx != 0, and a signed byte case
    test edx, edx
    jz .nodiv
    push edx
    mov eax, esi
    mov [SCRATCH], edx
    xor edx, edx
    div dword [SCRATCH]
    mov [edi], eax
    mov [edi + 4], edx
    pop edx
.nodiv:
    add edi, 8
    ; bit operations
    mov eax, esi
    bt eax, edx
    setc [edi]
    bts eax, edx
    btr eax, ecx
    btc eax, ebx
    mov [edi + 4], eax
    bsf eax, edx
    setz [edi + 1]
    mov [edi + 8], eax
    bsr eax, esi
    setz [edi + 2]
    mov [edi + 12], eax
    ; SETcc / CMOVcc after a compare
    cmp esi, edx
    seto [edi + 16]
    setb [edi + 17]
    setbe [edi + 18]
    sets [edi + 19]
    setp [edi + 20]
    setl [edi + 21]
    setle [edi + 22]
    mov eax, 0
    cmovg eax, esi
    cmovnp eax, edx
    mov [edi + 24], eax
    add edi, 28
    inc ecx
    cmp ecx, NVALS
    jb .inner
    OP1 inc
    OP1 dec
    OP1 neg
    OP1 not
    inc ebx
    cmp ebx, NVALS
    jb .outer
    mov [RESULTS + 0xfffc], edi
    EXIT

vals: dd 0, 1, 0x80, 0x7fff, 0x80000000, 0xffffffff, 0x9abcdef0, 0x21
NVALS equ 8
