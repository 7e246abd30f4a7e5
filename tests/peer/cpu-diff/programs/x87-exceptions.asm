; x87 exceptions: masked responses (zero divide -> infinity, invalid -> the real indefinite,
; stack overflow and underflow, denormal operand, overflow, underflow, precision, integer
; store overflow, SNaN loads), then unmasked ones with CR0.NE=1: the pending exception raises #MF
; (vector 16) at the next waiting x87 instruction or WAIT, FNCLEX clears it; the x87 environment
; after the fault (FIP/FDP of the instruction that caused it) is compared through FNSTENV.
; diff-memory: 0x0 0x8000
; diff-memory: 0x20000 0x1000
; FOP and the reserved halves of the 32-bit environment images are not compared (QEMU stores
; zeros there; see x87-arith.asm).
; diff-memory-ignore: 0x20802 0xff 2
; diff-memory-ignore: 0x20806 0xff 2
; diff-memory-ignore: 0x2080a 0xff 2
; diff-memory-ignore: 0x20812 0xff 2
; diff-memory-ignore: 0x2081a 0xff 2
; diff-memory-ignore: 0x20822 0xff 2
; diff-memory-ignore: 0x20826 0xff 2
; diff-memory-ignore: 0x2082a 0xff 2
; diff-memory-ignore: 0x20832 0xff 2
; diff-memory-ignore: 0x2083a 0xff 2
ENV1 equ 0x20800
ENV2 equ 0x20820
%include "rom.inc"
%include "pm.inc"

section pm32
bits 32
; STATUS n: store FSW and ST(0) as result n, then reinitialise
%macro STATUS 0
    fnstsw [edi]
    fstp tword [edi + 2]
    add edi, 12
    fninit
%endmacro

pm_main:
    mov esi, A32(data)
    mov edi, RESULTS
    fninit
    fld1
    fldz
    fdivp st1, st0               ; 1/0: ZE, +inf
    STATUS
    fldz
    fldz
    fdivp st1, st0               ; 0/0: IE, indefinite
    STATUS
    fld1
    fchs
    fsqrt                        ; sqrt(-1): IE
    STATUS
    ; Not compared: x87 stack overflow/underflow (IE|SF with C1). QEMU 7.2 does not check the tag
    ; word on pushes and pops (a ninth FLD silently overwrites, an empty ST(i) reads its stale
    ; value), so hardware's responses cannot be compared against it; unit tests cover them.
    fld tword [esi]              ; a denormal
    fld1
    fmulp st1, st0               ; DE (and UE/PE)
    STATUS
    fld tword [esi + 10]         ; 1e4000
    fmul st0, st0                ; OE|PE, +inf
    STATUS
    fld tword [esi + 20]         ; 1e-4000
    fmul st0, st0                ; UE|PE, 0
    STATUS
    fld1
    fild word [esi + 30]         ; 3
    fdivp st1, st0               ; PE
    STATUS
    fld dword [esi + 32]         ; 1e10
    fistp word [edi]             ; IE, integer indefinite 0x8000
    fnstsw [edi + 2]
    add edi, 4
    fninit
    fld dword [esi + 36]         ; SNaN single: IE, quieted
    STATUS
    fld qword [esi + 40]         ; -0.0
    fld1
    fdivrp st1, st0              ; 1/-0: -inf
    STATUS
    ; unmasked, native (CR0.NE=1)
    mov eax, cr0
    or eax, 0x20
    mov cr0, eax
    fldcw [esi + 48]             ; ZE and IE unmasked
    fld1
    fldz
    fdivp st1, st0               ; ZE pending: ES and B set, no #MF yet
    fnstsw [edi]
    TRY fwait                    ; #MF
    fnstsw [edi + 2]
    fnstenv [ENV1]               ; FIP/FDP still name the FDIVP (and ES/B are cleared by the masking)
    fnclex
    fwait                        ; nothing pending
    ; Not compared: #MF raised by a waiting x87 instruction other than WAIT (hardware checks for
    ; a pending exception before FADD etc.; QEMU 7.2 only in WAIT/FWAIT).
    fld1
    fldz
    fdiv st1, st0                ; pending again
    fnstenv [ENV2]               ; no-wait: no #MF; records FIP/FDP of the FDIV
    fnclex
    add edi, 6
    fninit
    mov eax, cr0
    and eax, ~0x20
    mov cr0, eax
    EXIT

data:
    dq 0x0000000000000001        ; +0: the smallest denormal (80-bit: significand, then exponent 0)
    dw 0x0000
    dt 1.0e4000                  ; +10
    dt 1.0e-4000                 ; +20
    dw 3                         ; +30
    dd 1.0e10                    ; +32
    dd 0x7f800001                ; +36: signalling NaN (single)
    dq -0.0                      ; +40
    dw 0x037a                    ; +48: IM and ZM clear (invalid and zero-divide unmasked)
