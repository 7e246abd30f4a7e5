; Virtual-8086 mode: entered by IRET with VM=1; segment loads the V86 way; with IOPL < 3 the
; IOPL-sensitive instructions (INT n, INT3, PUSHF, POPF, CLI, STI, IRET) raise #GP(0); with IOPL 3
; they run, INT goes through a DPL-3 gate to ring 0 with the V86 frame (data segments nulled);
; IN/OUT obey the TSS I/O permission bitmap at any IOPL; privileged instructions fault.
; diff-memory: 0x0 0x8000
; diff-memory: 0x20000 0x1000
%include "rom.inc"
%include "pm.inc"

; TRYV instruction...: V86 flavour of TRY (resume offset in the F000 code segment).
%macro TRYV 1+
    mov dword [ss:RESUME], T16(%%after)
    %1
%%after:
%endmacro

; ENTER_V86 entry offset, eflags, resume label (ring 0, after the V86 code executes UD2)
%macro ENTER_V86 3
    mov dword [SCRATCH], A32(%3)
    push dword 0              ; GS
    push dword 0              ; FS
    push dword 0              ; DS
    push dword 0x2000         ; ES
    push dword 0              ; SS
    push dword STACK3         ; ESP
    push dword %2             ; EFLAGS
    push dword 0xf000         ; CS
    push dword %1             ; EIP
    iretd
%endmacro

section pm32
bits 32
pm_main:
    and byte [TSS0 + 0x68 + 0x80 / 8], ~(1 << (0x80 & 7))     ; open port 0x80
    SET_GATE_AT IDT + 6 * 8, SEL_CODE32, A32(v86_exit), 0x8e, 0
    SET_GATE_AT IDT + 0x35 * 8, SEL_CODE32, A32(v86_int), 0xee, 0
    mov edi, RESULTS
    ENTER_V86 T16(v86_iopl0), 0x20002, after_iopl0
after_iopl0:
    ENTER_V86 T16(v86_iopl3), 0x23002, after_iopl3
after_iopl3:
    mov eax, [esp - 4]
    EXIT

; #UD from V86 ends a V86 run: back to flat ring 0.
v86_exit:
    ; DS..GS are null after the exit from V86 (QEMU would not fault on using them; hardware does)
    mov eax, [ss:esp]         ; V86 EIP of the UD2
    mov [ss:RESULTS + 0x80], eax
    mov ax, SEL_DATA32
    mov ds, ax
    mov es, ax
    mov fs, ax
    mov gs, ax
    mov ss, ax
    mov esp, STACK0
    jmp [SCRATCH]

; INT 0x35 from V86 at IOPL 3: frame EIP CS EFLAGS ESP SS ES DS FS GS; DS..GS are null here.
v86_int:
    mov ax, SEL_DATA32
    mov ds, ax
    mov eax, [esp + 8]
    mov [RESULTS + 0x40], eax
    mov eax, [esp + 20]
    mov [RESULTS + 0x44], eax
    mov [RESULTS + 0x48], es
    mov [RESULTS + 0x4a], fs
    mov eax, [esp + 12]
    mov [RESULTS + 0x4c], eax
    iretd

section .text
bits 16
v86_iopl0:
    mov ax, 0x2000
    mov ds, ax
    mov word [0], 0x8686
    mov ax, [es:0]
    xor ax, ax
    mov ds, ax
    TRYV int 0x35
    TRYV int3
    TRYV pushf
    TRYV popf
    TRYV cli
    TRYV sti
    TRYV iret
    out 0x80, al
    TRYV out 0x81, al
    TRYV in al, 0x70
    TRYV mov eax, cr0
    TRYV hlt
    ud2

v86_iopl3:
    pushf
    pop ax
    mov [ss:RESULTS & 0xffff], ax            ; SS base 0: offset 0 (physical 0x0)
    cli
    pushfd
    pop eax
    mov [ss:0x0404], eax
    push dword 0x00000202                    ; POPFD cannot change IOPL or VM here
    popfd
    pushfd
    pop eax
    mov [ss:0x0408], eax
    cli
    mov ax, 0x1234
    int 0x35
    out 0x80, al
    TRYV out 0x81, al
    TRYV out dx, al
    TRYV lgdt [0]
    ud2
