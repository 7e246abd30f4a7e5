; FXSAVE/FXRSTOR: the x87 part of the 512-byte image (FCW, FSW, abridged FTW,
; ST0-ST7 in 16-byte slots) after loads and arithmetic, a modified image restored with FXRSTOR
; (tags rebuilt from the abridged word), FXSAVE again.
; diff-memory: 0x20000 0x1000
; Not compared: FOP (bytes 6-7), FIP/FCS/FDP/FDS (8-23: QEMU 7.2 stores zeros in the 32-bit
; layout) and MXCSR/MXCSR_MASK (24-31) and the XMM area (SSE is a later issue; QEMU's Pentium II
; model has no SSE either).
; diff-memory-ignore: 0x20006 0xff 26
; diff-memory-ignore: 0x200a0 0xff 352
; diff-memory-ignore: 0x20206 0xff 26
; diff-memory-ignore: 0x202a0 0xff 352
%include "rom.inc"
%include "pm.inc"

section pm32
bits 32
pm_main:
    ; CR4.OSFXSR is left clear: QEMU's Pentium II model (no SSE) ignores writes to it.
    fninit
    fld1
    fldpi
    fldz
    fld tword [A32(neg)]
    fdiv st0, st1                ; -x / 0 -> -inf, ZE
    fxsave [RESULTS]
    ; change the image: drop ST0's tag, mask ZE off, set RC=down, then restore it
    mov byte [RESULTS + 4], 0xe0          ; abridged tag: physical 5-7 valid, ST0 (physical 4) empty
    mov word [RESULTS], 0x077f
    fxrstor [RESULTS]
    fld1
    fadd st0, st0
    fxsave [RESULTS + 0x200]
    fninit
    EXIT

neg: dt -3.5
