; Two-level paging: 4 KiB and 4 MiB (PSE) pages, page faults with the P, W/R and U/S error bits
; from ring 0 and ring 3 (and CR2), CR0.WP for ring-0 writes, accessed/dirty bits (the tables are
; compared at the end), an instruction-fetch fault (no I/D bit without NX), INVLPG, CR3 reload.
; diff-memory: 0x0 0x8000
; diff-memory: 0x10000 0x3000
; diff-memory: 0x20000 0x1000
; diff-memory: 0x300000 0x5000
; diff-memory: 0x400000 0x1000
%include "rom.inc"
%include "pm.inc"

PD  equ 0x10000
PT0 equ 0x11000

section pm32
bits 32
pm_main:
    mov edi, PT0
    mov eax, 0x007
    mov ecx, 1024
.pt:
    stosd
    add eax, 0x1000
    loop .pt
    mov dword [PT0 + 0x300 * 4], 0                      ; not present
    mov dword [PT0 + 0x301 * 4], 0x301000 | 1           ; supervisor, read-only
    mov dword [PT0 + 0x303 * 4], 0x303000 | 5           ; user, read-only
    mov dword [PD], PT0 | 7
    mov dword [PD + 4], 0x400000 | 0x87                 ; 4 MiB user page
    mov dword [PD + 8], 0x400000 | 0x83                 ; 4 MiB supervisor alias of it
    mov dword [0x304000], 0x44444444
    mov dword [0x302000], 0x22222222
    mov eax, cr4
    or eax, 0x10                                        ; PSE
    mov cr4, eax
    mov eax, PD
    mov cr3, eax
    mov eax, cr0
    or eax, 0x80000000
    mov cr0, eax
    ; not present: read, write
    TRY mov eax, [0x300000]
    TRY mov dword [0x300004], 1
    ; supervisor read-only page: writable by ring 0 unless CR0.WP
    mov dword [0x301000], 0x11111111
    mov eax, cr0
    or eax, 0x10000
    mov cr0, eax
    TRY mov dword [0x301008], 2
    ; accessed/dirty
    mov eax, [0x302000]
    mov dword [0x302010], 0x2222aaaa
    ; 4 MiB pages and their alias
    mov dword [0x400010], 0x4000aaaa
    mov eax, [0x800010]
    mov [RESULTS], eax
    ; ring 3
    ENTER_RING3
    TRY mov eax, [0x301000]
    mov dword [0x302020], 3
    TRY mov dword [0x303000], 3
    mov eax, [0x303000]
    TRY mov eax, [0x800000]
    mov eax, [0x400000]
    TRY mov eax, [0x300000]
    TRY mov dword [0x300000], 3
    TRY jmp 0x300000                                    ; fetch from a not-present page, ring 3
    LEAVE_RING3
    TRY jmp 0x300000                                    ; and ring 0
    ; INVLPG after remapping 0x302000 -> 0x304000
    mov dword [PT0 + 0x302 * 4], 0x304000 | 7
    invlpg [0x302000]
    mov eax, [0x302000]
    mov [RESULTS + 4], eax
    ; CR3 reload after mapping it back
    mov dword [PT0 + 0x302 * 4], 0x302000 | 7
    mov eax, cr3
    mov cr3, eax
    mov eax, [0x302000]
    mov [RESULTS + 8], eax
    ; paging off
    mov eax, cr0
    and eax, 0x7ffeffff
    mov cr0, eax
    mov eax, cr2
    mov [RESULTS + 12], eax
    EXIT
