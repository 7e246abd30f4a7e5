; Page-boundary cases: an instruction straddling into a not-present page (#PF, CR2 = the second
; page, EIP = the instruction), loads and stores split across a not-present or read-only second
; page (nothing written), a ring-3 PUSH across a page boundary, REP MOVSB faulting midway (ESI/EDI/ECX
; show the progress) and resumed, a ring-3 fetch from a supervisor page.
; diff-memory: 0x0 0x8000
; diff-memory: 0x10000 0x2000
; diff-memory: 0x20000 0x1000
; diff-memory: 0x300000 0x6000
%include "rom.inc"
%include "pm.inc"

PD  equ 0x10000
PT0 equ 0x11000
P1  equ 0x301000      ; present
P2  equ 0x302000      ; toggled not present / present
P3  equ 0x305000      ; read-only (WP on); 0x304000 before it is present

section pm32
bits 32
%macro MAP 2          ; page, pte flags
    mov dword [PT0 + ((%1) >> 12) * 4], (%1) | (%2)
    invlpg [%1]
%endmacro

pm_main:
    ; identity-map the first MiB and 0x300000-0x30FFFF only (short loops: QEMU steps each one)
    mov edi, PT0
    mov eax, 0x007
    mov ecx, 256
.pt:
    stosd
    add eax, 0x1000
    loop .pt
    mov edi, PT0 + 0x300 * 4
    mov eax, 0x300007
    mov ecx, 16
.pt2:
    stosd
    add eax, 0x1000
    loop .pt2
    mov dword [PD], PT0 | 7
    mov eax, PD
    mov cr3, eax
    mov eax, cr0
    or eax, 0x80010000           ; PG, WP
    mov cr0, eax
    MAP P2, 0                    ; not present
    MAP P3, 1                    ; read-only supervisor
    ; code that straddles P1/P2: "mov eax, 0x12345678" with its immediate in P2
    mov byte [P2 - 2], 0xb8
    mov byte [P2 - 1], 0x78
    mov eax, 0xc3001234                  ; the rest: bytes 34 12 00 (immediate), c3 (ret)
    MAP P2, 7
    mov [P2], eax                        ; bytes 34 12 00 c3 at P2
    MAP P2, 0
    mov dword [SCRATCH + 8], A32(.after_call)
    TRY call P2 - 2
.after_call:
    MAP P2, 7
    call P2 - 2                          ; now it runs: EAX = 0x00123478
    mov [RESULTS], eax
    MAP P2, 0
    ; split loads and stores
    mov dword [P2 - 4], 0x11223344
    TRY mov eax, [P2 - 2]
    TRY mov dword [P2 - 2], 0xaabbccdd  ; nothing may be written to P2 - 2
    mov ebx, [P2 - 4]
    mov [RESULTS + 4], ebx
    TRY mov dword [P3 - 2], 0xaabbccdd  ; read-only second page (WP)
    mov ebx, [P3 - 4]
    mov [RESULTS + 8], ebx
    ; REP MOVSB running into the not-present page, then resumed
    mov esi, P1
    mov edi, P2 - 8
    mov ecx, 16
    cld
    TRY rep movsb
    mov [RESULTS + 16], esi
    mov [RESULTS + 20], edi
    mov [RESULTS + 24], ecx
    MAP P2, 7
    rep movsb
    mov [RESULTS + 28], ecx
    ; ring 3 fetching from a supervisor page
    MAP P3, 3                    ; supervisor, writable
    mov byte [P3], 0xc3
    MAP P2, 0
    ENTER_RING3
    TRY call P3
    ; PUSH across into a not-present page (in ring 3, so the fault switches to the ring-0 stack)
    mov ebx, esp
    mov esp, P2 + 2
    TRY push dword 0x5555aaaa
    mov [RESULTS + 12], esp
    mov esp, ebx
    LEAVE_RING3
    mov eax, cr2
    mov [RESULTS + 32], eax
    mov eax, cr0
    and eax, 0x7ffeffff
    mov cr0, eax
    EXIT
