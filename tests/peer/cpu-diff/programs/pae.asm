; PAE paging: PDPT + page directory + page table with 64-bit entries, 2 MiB and 4 KiB pages,
; page faults including the RSVD error bit (reserved bits above the physical address width and
; bit 63 without NX), A/D bits in 64-bit entries, user/supervisor on 2 MiB pages.
; diff-memory: 0x0 0x8000
; diff-memory: 0x13000 0x3000
; QEMU sets the accessed bit (5) in the PDPTE it walks; in PAE PDPTEs bit 5 is reserved and the
; processor loads them at CR3 load without writing them back (SDM table 4-8): not compared.
; diff-memory-ignore: 0x13000 0x20
; diff-memory: 0x20000 0x1000
; diff-memory: 0x300000 0x4000
%include "rom.inc"
%include "pm.inc"

PDPT equ 0x13000
PDIR equ 0x14000
PTAB equ 0x15000

section pm32
bits 32
pm_main:
    ; page table: identity 0-2 MiB in 4 KiB pages (user, RW)
    mov edi, PTAB
    mov eax, 0x007
    mov ecx, 512
.pt:
    mov [edi], eax
    mov dword [edi + 4], 0
    add edi, 8
    add eax, 0x1000
    loop .pt
    mov dword [PDPT], PDIR | 1
    mov dword [PDIR], PTAB | 7
    mov dword [PDIR + 8], 0x200000 | 0x87            ; 2 MiB user page: 2-4 MiB identity
    mov dword [PDIR + 16], 0x200000 | 0x83           ; 2 MiB supervisor alias at 4 MiB
    mov dword [PDIR + 24], 0x200000 | 0x87           ; 2 MiB page with a reserved bit (51)
    mov dword [PDIR + 28], 0x00080000
    mov dword [PDIR + 32], PTAB | 7                  ; 8 MiB: reuses the table...
    mov dword [PDIR + 36], 0x80000000                ; ...with bit 63 set (reserved without NX)
    mov dword [0x300000], 0x33333333
    mov eax, cr4
    or eax, 0x20                                     ; PAE
    mov cr4, eax
    mov eax, PDPT
    mov cr3, eax
    mov eax, cr0
    or eax, 0x80010000                               ; PG, WP
    mov cr0, eax
    ; 2 MiB pages
    mov eax, [0x300000]
    mov [RESULTS], eax
    mov eax, [0x500000]
    mov [RESULTS + 4], eax
    mov dword [0x300010], 0x3333aaaa
    ; reserved bits: P|RSVD (9) for a read, P|W|RSVD (11) for a write
    TRY mov eax, [0x600000]
    TRY mov dword [0x600000], 1
    TRY mov eax, [0x800000]
    ; not present in the PDPT (entries 1-3 are zero)
    TRY mov eax, [0x40000000]
    ; 4 KiB page not present
    mov dword [PTAB + 0x100 * 8], 0
    invlpg [0x100000]
    TRY mov eax, [0x100000]
    ENTER_RING3
    TRY mov eax, [0x400000]                          ; supervisor 2 MiB page from ring 3
    TRY mov eax, [0x600004]                          ; reserved bit from ring 3: U|RSVD|P
    mov eax, [0x300000]
    LEAVE_RING3
    mov eax, cr0
    and eax, 0x7fffffff
    mov cr0, eax
    EXIT
