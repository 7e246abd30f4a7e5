; x87 arithmetic: constants, loads/stores of every memory format (int16/32/64, float32/64/80,
; BCD), the four operations in all forms, rounding control and precision control, FSQRT, FABS,
; FCHS, FRNDINT, FXTRACT, FSCALE, FPREM/FPREM1, comparisons (FCOM*, FUCOM*, FCOMI*, FICOM,
; FTST, FXAM) with the condition codes, FCMOVcc, FXCH, FFREE, FINCSTP/FDECSTP, and the
; FSTENV/FSAVE/FRSTOR images in 16-bit real mode and 32-bit protected mode.
; diff-memory: 0x0 0x8000
; diff-memory: 0x20000 0x1000
; Reserved halves of the 32-bit FSTENV/FSAVE images (after CW, SW, TW, FDS, and above FOP):
; QEMU writes zeros; the SDM leaves them reserved (Intel parts write ones): not compared.
; diff-memory-ignore: 0x20882 0xff 2
; diff-memory-ignore: 0x20886 0xff 2
; diff-memory-ignore: 0x2088a 0xff 2
; diff-memory-ignore: 0x20c02 0xff 2
; diff-memory-ignore: 0x20c06 0xff 2
; diff-memory-ignore: 0x20c0a 0xff 2
; diff-memory-ignore: 0x20c13 0xf8
; diff-memory-ignore: 0x20c1a 0xff 2
; diff-memory-ignore: 0x20c42 0xff 2
; diff-memory-ignore: 0x20c46 0xff 2
; diff-memory-ignore: 0x20c4a 0xff 2
; diff-memory-ignore: 0x20c53 0xf8
; diff-memory-ignore: 0x20c5a 0xff 2
; FOP (last opcode) in the images: QEMU 7.2 does not track it and stores 0; not compared.
; diff-memory-ignore: 0x20808 0xff
; diff-memory-ignore: 0x20809 0x07
; diff-memory-ignore: 0x20828 0xff
; diff-memory-ignore: 0x20829 0x07
; The 32-bit real-mode image (o32 FNSTENV at 0x20880): QEMU writes the protected-mode layout
; and does not reload FIP/FDP on FRSTOR/FLDENV; its pointer fields are not compared.
; diff-memory-ignore: 0x2088c 0xff 16
; diff-memory-ignore: 0x20c12 0xff
; diff-memory-ignore: 0x20c13 0x07
; diff-memory-ignore: 0x20c52 0xff
; diff-memory-ignore: 0x20c53 0x07
ENV_PM  equ 0x20c00
SAVE_PM equ 0x20c40
%define REAL_PROLOGUE
%include "rom.inc"
%include "pm.inc"

section .text
bits 16
real_prologue:
    fninit
    fld1
    fldpi
    fadd st0, st1
    mov ax, 0x2000
    mov es, ax
    fnstenv [es:0x800]          ; 14-byte real-mode layout
    fnsave [es:0x820]           ; 94-byte real-mode layout
    frstor [es:0x820]
    o32 fnstenv [es:0x880]      ; 28-byte real-mode layout
    fninit
    ret

section pm32
bits 32
; R base: results at RESULTS + base
pm_main:
    mov esi, A32(data)
    mov edi, RESULTS
    fninit
    fld1
    fldl2t
    fldl2e
    fldpi
    fldlg2
    fldln2
    fldz
    fstp tword [edi]
    fstp tword [edi + 10]
    fstp tword [edi + 20]
    fstp tword [edi + 30]
    fstp tword [edi + 40]
    fstp tword [edi + 50]
    fstp tword [edi + 60]
    add edi, 70
    ; loads of every format, arithmetic in every form
    fild word [esi]
    fild dword [esi + 2]
    fild qword [esi + 6]
    fld dword [esi + 14]
    fld qword [esi + 18]
    fld tword [esi + 26]
    fbld [esi + 36]
    fadd st0, st1
    fsub st2, st0
    fmulp st3, st0
    fdivr st0, st2
    fsubrp st1, st0
    fdiv dword [esi + 14]
    fmul qword [esi + 18]
    fiadd word [esi]
    fisub dword [esi + 2]
    fidivr word [esi]
    fimul dword [esi + 2]
    fsubr qword [esi + 18]
    fdivr dword [esi + 14]
    fld st0
    fstp tword [edi]
    fst qword [edi + 10]
    fst dword [edi + 18]
    fist dword [edi + 22]
    fist word [edi + 26]
    fbstp [edi + 28]
    add edi, 38
    ; rounding control: round 2.5 and -2.5 in each mode, through FRNDINT and FISTP
    mov ecx, 0
.rc:
    mov eax, ecx
    shl eax, 10
    or eax, 0x037f
    mov [SCRATCH], ax
    fldcw [SCRATCH]
    fld dword [esi + 46]         ; 2.5
    frndint
    fstp dword [edi]
    fld dword [esi + 50]         ; -2.5
    fistp word [edi + 4]
    fld qword [esi + 54]         ; 1/3 as a double
    fld1
    fdiv st0, st1
    fstp dword [edi + 6]         ; 3.0 rounded to single... and 1/(1/3)
    fld1
    fdiv st0, st1
    fstp qword [edi + 10]
    fstp st0
    add edi, 18
    inc ecx
    cmp ecx, 4
    jb .rc
    ; precision control: single, double, extended. The operands are loaded before PC changes:
    ; QEMU 7.2 wrongly rounds FLD m64 to the precision control (hardware: PC affects only
    ; FADD/FSUB/FMUL/FDIV/FSQRT results, SDM 8.1.5.2).
    mov ecx, 0
.pc:
    fldcw [A32(cw_ext)]
    fld1
    fld qword [esi + 54]
    mov eax, ecx
    shl eax, 8
    or eax, 0x007f
    mov [SCRATCH], ax
    fldcw [SCRATCH]
    fdivp st1, st0
    fstp tword [edi]
    add edi, 10
    add ecx, 1
    cmp ecx, 4
    jb .pc
    fninit
    ; FSQRT, FABS, FCHS, FXTRACT, FSCALE, FPREM, FPREM1
    fld qword [esi + 18]
    fsqrt
    fchs
    fabs
    fxtract
    fstp tword [edi]
    fstp tword [edi + 10]
    fld dword [esi + 14]
    fild word [esi]
    fscale
    fstp tword [edi + 20]
    fstp st0
    fld qword [esi + 18]
    fild dword [esi + 2]
    fprem                        ; 123456789 / e: quotient 45417214 -> C0=1 C3=1 C1=0
    fnstsw [edi + 30]
    fstp tword [edi + 34]
    fstp st0
    fild word [A32(three)]
    fild word [A32(ten)]
    fprem1                       ; 10 rem 3: quotient 3 -> C0=0 C3=1 C1=1
    fnstsw [edi + 32]
    fstp st0
    fstp st0
    add edi, 44
    ; comparisons
    fld dword [esi + 46]
    fld dword [esi + 50]
    fcom st1
    fnstsw [edi]
    fcom dword [esi + 50]
    fnstsw [edi + 2]
    fucom st1
    fnstsw [edi + 4]
    fcomi st0, st1
    pushfd
    pop dword [edi + 6]
    fucomi st0, st1
    pushfd
    pop dword [edi + 10]
    ficom word [esi]
    fnstsw [edi + 14]
    ftst
    fnstsw [edi + 16]
    fxam
    fnstsw [edi + 18]
    fcmovb st0, st1
    fcmovnbe st0, st1
    fcmove st0, st1
    fxch st1
    fcompp
    fnstsw [edi + 20]
    fldz
    fxam
    fnstsw [edi + 22]
    fld1
    fld1
    fcomip st0, st1
    pushfd
    pop dword [edi + 24]
    ffree st1
    fdecstp
    fincstp
    fincstp
    fnstsw [edi + 28]
    fnstenv [ENV_PM]
    fnsave [SAVE_PM]
    frstor [SAVE_PM]
    fldenv [ENV_PM]
    fnstsw [edi + 180]
    add edi, 184
    EXIT

cw_ext: dw 0x037f
three: dw 3
ten: dw 10
data:
    dw -1234                        ; +0
    dd 123456789                    ; +2
    dq -9876543210987               ; +6
    dd 3.75                         ; +14
    dq 2.718281828459045            ; +18
    dt 1.0e100                      ; +26
    db 0x21, 0x43, 0x65, 0x87, 0x09, 0, 0, 0, 0, 0x80   ; +36: packed BCD -0987654321
    dd 2.5                          ; +46
    dd -2.5                         ; +50
    dq 0.3333333333333333           ; +54
