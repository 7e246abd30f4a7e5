; x87 transcendentals: FSIN, FCOS, FSINCOS, FPTAN (with the 1.0 push), FPATAN in all four
; quadrants, F2XM1, FYL2X, FYL2XP1, FSCALE, and out-of-range arguments (|x| >= 2^63: C2=1, operand
; unchanged). QEMU 7.2 computes FSIN/FCOS/FSINCOS/FPTAN in host double precision, so their results
; are compared within 2^12 ulps of the 64-bit significand (and F2XM1/FYL2X/FYL2XP1/FPATAN within 4
; ulps, hardware's own accuracy); Boxwood then continues from QEMU's values. Results stored to
; memory are compared after rounding to single precision for the same reason.
; diff-memory: 0x0 0x8000
%include "rom.inc"
%include "pm.inc"

section pm32
bits 32
%macro KEEP 0
    fstp dword [edi]             ; single precision: robust to the tolerance above
    add edi, 4
%endmacro

pm_main:
    mov esi, A32(args)
    mov edi, RESULTS
    fninit
    mov ecx, 6
.trig:
    fld qword [esi]
    fsin
    KEEP
    fld qword [esi]
    fcos
    KEEP
    fld qword [esi]
    fsincos
    KEEP
    KEEP
    fld qword [esi]
    fptan
    KEEP
    KEEP
    add esi, 8
    loop .trig
    ; out of range: C2 set, ST(0) unchanged
    fld tword [A32(huge)]
    fsin
    fnstsw [edi]
    fptan
    fnstsw [edi + 2]
    fstp tword [edi + 4]
    add edi, 14
    ; FPATAN in four quadrants
    mov esi, A32(args)
    mov ecx, 4
.atan:
    fld qword [A32(pairs) + ecx * 8 - 8]       ; y
    fld qword [A32(pairs) + ecx * 8]           ; x
    fpatan
    KEEP
    loop .atan
    ; F2XM1 on [-1, 1], FYL2X, FYL2XP1, FSCALE
    fld qword [A32(half)]
    f2xm1
    KEEP
    fld qword [A32(half)]
    fchs
    f2xm1
    KEEP
    fld qword [A32(three_halves)]
    fld qword [A32(ten)]
    fyl2x
    KEEP
    fld qword [A32(three_halves)]
    fld qword [A32(small)]
    fyl2xp1
    KEEP
    fld qword [A32(three_halves)]
    fld qword [A32(ten)]
    fscale
    fstp tword [edi]
    fstp st0
    fnstsw [edi + 10]
    EXIT

args:  dq 0.5, -1.0, 3.0, 100.0, 1.0e-10, 0.7853981633974483
pairs: dq 1.0, -2.0, -3.0, 4.0, 5.0
huge:  dt 1.0e20
half:  dq 0.5
three_halves: dq 1.5
ten:   dq 10.0
small: dq 0.125
