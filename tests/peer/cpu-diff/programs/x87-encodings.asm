; x87 encodings off the main path: the undocumented aliases P6 parts execute (FCOM2 DC D0+i,
; FCOMP3 DC D8+i, FXCH4 DD C8+i, FCOMP5 DE D0+i, FFREEP DF C0+i, FXCH7 DF C8+i, FSTP1 D9 D8+i,
; FSTP8 DF D0+i, FSTP9 DF D8+i), the 8087/287 leftovers that are no-ops (FENI, FDISI, FSETPM),
; and reserved encodings that raise #UD (logged).
; diff-memory: 0x0 0x8000
%include "rom.inc"
%include "pm.inc"

section pm32
bits 32
%macro LOADS 0
    fninit
    fld1
    fldpi
    fldl2e
    fldz
%endmacro

pm_main:
    LOADS
    TRY db 0xdc, 0xd1            ; FCOM2 st1
    TRY db 0xdc, 0xda            ; FCOMP3 st2
    TRY db 0xdd, 0xc9            ; FXCH4 st1
    TRY db 0xde, 0xd1            ; FCOMP5 st1
    LOADS
    TRY db 0xdf, 0xc1            ; FFREEP st1
    ; (operands kept non-empty from here: QEMU does not model x87 stack underflow)
    LOADS
    TRY db 0xdf, 0xc9            ; FXCH7 st1
    TRY db 0xd9, 0xd9            ; FSTP1 st1
    TRY db 0xdf, 0xd1            ; FSTP8 st1
    TRY db 0xdf, 0xd9            ; FSTP9 st1
    fnstenv [RESULTS]
    LOADS
    TRY db 0xdb, 0xe0            ; FENI (no-op)
    TRY db 0xdb, 0xe1            ; FDISI (no-op)
    TRY db 0xdb, 0xe4            ; FSETPM (no-op)
    ; reserved
    TRY db 0xd9, 0xd1
    TRY db 0xd9, 0xe2
    TRY db 0xd9, 0xe7
    TRY db 0xd9, 0xef
    TRY db 0xdb, 0xe5
    TRY db 0xdb, 0xf8
    TRY db 0xdd, 0xf0
    TRY db 0xde, 0xd8
    TRY db 0xdf, 0xe1
    TRY db 0xdf, 0xf8
    TRY db 0xd9, 0x08            ; D9 /1 with a memory operand
    TRY db 0xdb, 0x20            ; DB /4 memory
    TRY db 0xdb, 0x30            ; DB /6 memory
    TRY db 0xdd, 0x28            ; DD /5 memory
    fnstenv [RESULTS + 0x40]
    fninit
    EXIT
