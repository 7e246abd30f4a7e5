; Real-mode warm-up: integer arithmetic and flags, BCD, shifts/rotates, bit scans, string
; instructions with REP, stack frames, i486/P6 additions (BSWAP, XADD, CMPXCHG, CMOVcc).
; diff-memory: 0x0 0x1000
; diff-memory: 0x20000 0x1000
%include "rom.inc"
start:
    xor ax, ax
    mov ss, ax
    mov sp, 0x7000
    mov ds, ax
    mov ax, 0x2000
    mov es, ax
    xor di, di
    cld
    ; add/adc/sub/sbb/neg/inc/dec over edge values, flags stored with PUSHF.
    mov si, values
.arith:
    mov ax, [cs:si]
    mov bx, [cs:si + 2]
    mov cx, ax
    add cx, bx
    pushf
    adc cx, bx
    pushf
    mov dx, ax
    sub dx, bx
    pushf
    sbb dx, bx
    pushf
    neg dx
    pushf
    inc ax
    pushf
    dec bx
    pushf
    cmp al, bl
    pushf
    add al, bl
    daa
    pushf
    sub al, bh
    das
    pushf
    aaa
    aas
    stosw
    mov ax, cx
    stosw
    mov ax, dx
    stosw
    add si, 4
    cmp si, values_end
    jb .arith
    ; multiply and divide (16- and 32-bit)
    mov eax, 0x12345678
    mov ebx, 0x9abcdef1
    mul ebx
    stosd
    xchg eax, edx
    stosd
    mov eax, -1234567
    imul eax, eax, 77
    stosd
    mov eax, 0x7fffffff
    mov ecx, 3
    imul ecx
    stosd
    mov eax, edx
    stosd
    mov edx, 0x5
    mov eax, 0x12345678
    mov ecx, 0x9876
    div ecx
    stosd
    mov eax, edx
    stosd
    mov ax, -1000
    cwd
    mov cx, 7
    idiv cx
    stosw
    mov ax, dx
    stosw
    mov al, 0x57
    aam 10
    stosw
    aad 10
    stosw
    ; shifts and rotates with several counts
    mov si, 0
.shifts:
    mov eax, 0x81234567
    mov cl, [cs:counts + si]
    shl eax, cl
    pushf
    stosd
    mov eax, 0x81234567
    sar eax, cl
    pushf
    stosd
    mov ax, 0x8123
    rcr ax, cl
    pushf
    stosw
    mov ax, 0x8123
    rol ax, cl
    pushf
    stosw
    mov eax, 0x81234567
    mov edx, 0xfedcba98
    shld eax, edx, cl
    pushf
    stosd
    shrd eax, edx, 4
    stosd
    mov ax, 0x4321
    rcl ax, 1
    pushf
    ror ax, 1
    pushf
    inc si
    cmp si, counts_end - counts
    jb .shifts
    ; bit instructions
    mov eax, 0x00f00000
    bsf ecx, eax
    bsr edx, eax
    bt eax, 21
    setc bl
    bts eax, 3
    btr eax, 22
    btc eax, 31
    stosd
    mov ax, cx
    stosw
    mov ax, dx
    stosw
    mov al, bl
    stosb
    ; i486/P6
    mov eax, 0x11223344
    bswap eax
    stosd
    mov ecx, 5
    xadd eax, ecx
    stosd
    mov eax, ecx
    stosd
    mov eax, 7
    mov ebx, 7
    mov ecx, 9
    cmpxchg ebx, ecx
    setz al
    stosb
    mov eax, 1
    cmpxchg ebx, ecx
    stosd
    cmp eax, ebx
    cmovl eax, ebx
    cmovg ebx, ecx
    stosd
    mov eax, ebx
    stosd
    movsx eax, byte [cs:values + 1]
    stosd
    movzx eax, word [cs:values + 2]
    stosd
    ; stack frames, PUSHA/POPA, LAHF/SAHF, XLAT, CBW/CWDE/CDQ, LOOP/JCXZ
    enter 8, 0
    mov word [bp - 2], 0xbeef
    pusha
    mov ax, 0x1234
    popa
    leave
    mov ah, 0xd5
    sahf
    lahf
    mov al, 0x80
    cbw
    cwde
    cdq
    stosd
    mov eax, edx
    stosd
    mov bx, values
    mov al, 3
    cs xlatb
    stosb
    mov cx, 10
    xor ax, ax
.lp:
    add ax, cx
    loop .lp
    jcxz .cx0
    mov ax, 0xdead
.cx0:
    stosw
    ; string instructions with REP and segment overrides
    push es
    pop ds
    xor si, si
    mov di, 0x800
    mov cx, 0x41
    rep movsb
    mov si, 0
    mov di, 0x800
    mov cx, 0x20
    repe cmpsw
    pushf
    mov ax, cx
    mov di, 0x900
    mov cx, 0x10
    rep stosw
    mov di, 0x800
    mov al, [es:0x10]
    mov cx, 0x100
    repne scasb
    mov ax, cx
    mov di, 0x980
    stosw
    mov si, 0x800
    mov cx, 4
    rep lodsd
    stosd
    std
    mov si, 0x83f
    mov di, 0xa3f
    mov cx, 0x40
    rep movsb
    cld
    EXIT

values: dw 0x0000, 0x0000, 0x7fff, 0x0001, 0x8000, 0xffff, 0x00ff, 0x0001, 0x1234, 0x5678, 0x0f0f, 0xf0f1, 0x9999, 0x0001, 0x0009, 0x0009
values_end:
counts: db 0, 1, 2, 7, 8, 15, 16, 17, 31, 32, 33
counts_end:
