; Virtual-8086 mode under paging: V86 code runs at CPL 3, so its accesses are user accesses:
; #PF with U set for supervisor, not-present and read-only pages (and CR2 = the linear address
; segment*16+offset), A/D bits set by V86 accesses, and the IVT-free return to ring 0.
; diff-memory: 0x0 0x8000
; diff-memory: 0x10000 0x2000
%include "rom.inc"
%include "pm.inc"

PD  equ 0x10000
PT0 equ 0x11000

%macro TRYV 1+
    mov dword [ss:RESUME], T16(%%after)
    %1
%%after:
%endmacro

section pm32
bits 32
pm_main:
    mov edi, PT0
    mov eax, 0x007
    mov ecx, 256
.pt:
    stosd
    add eax, 0x1000
    loop .pt
    mov dword [PT0 + 0x50 * 4], 0x50000 | 3     ; supervisor
    mov dword [PT0 + 0x51 * 4], 0               ; not present
    mov dword [PT0 + 0x52 * 4], 0x52000 | 5     ; user read-only
    mov dword [PD], PT0 | 7
    mov eax, PD
    mov cr3, eax
    mov eax, cr0
    or eax, 0x80000000
    mov cr0, eax
    SET_GATE_AT IDT + 6 * 8, SEL_CODE32, A32(v86_exit), 0x8e, 0
    mov dword [SCRATCH], A32(back)
    push dword 0              ; GS
    push dword 0              ; FS
    push dword 0x5000         ; DS: linear 0x50000
    push dword 0x5100         ; ES: linear 0x51000
    push dword 0              ; SS
    push dword STACK3         ; ESP
    push dword 0x23002        ; VM, IOPL 3
    push dword 0xf000
    push dword T16(v86_code)
    iretd
back:
    mov eax, cr0
    and eax, 0x7fffffff
    mov cr0, eax
    EXIT

v86_exit:
    mov ax, SEL_DATA32
    mov ds, ax
    mov es, ax
    mov fs, ax
    mov gs, ax
    mov ss, ax
    mov esp, STACK0
    jmp [SCRATCH]

section .text
bits 16
v86_code:
    TRYV mov ax, [0x10]          ; supervisor page: #PF U|P (5), CR2 = 0x50010
    TRYV mov [0x20], ax          ; #PF U|W|P (7)
    TRYV mov ax, [es:0x30]       ; not present: #PF U (4)
    TRYV mov [es:0x30], ax       ; #PF U|W (6)
    mov bx, 0x5200
    mov ds, bx
    mov ax, [0x40]               ; user read-only: reading is fine (A bit)
    TRYV mov [0x40], ax          ; #PF U|W|P (7)
    mov bx, 0x6000
    mov ds, bx
    mov word [0x44], 0x6666      ; user writable: A and D bits
    ud2
