; Self-modifying code (P6: a store to an instruction about to execute takes effect at once):
; patching an immediate in a loop, the very next instruction, code in the same page as the
; running block, code copied with REP MOVS then run, and a jump-table rewrite; also code pages
; written through a second linear alias with paging on.
; diff-memory: 0x0 0x8000
; diff-memory: 0x10000 0x3000
; diff-memory: 0x20000 0x1000
%include "rom.inc"
%include "pm.inc"

CODE  equ 0x10000
ALIAS equ 0x800000      ; 4 MiB page aliasing physical 0 (paging part)

section pm32
bits 32
pm_main:
    ; copy the template to RAM and run it there
    mov esi, A32(tmpl)
    mov edi, CODE
    mov ecx, tmpl_end - tmpl
    rep movsb
    xor eax, eax
    call CODE
    mov [RESULTS], eax
    ; patch the immediate of "add eax, imm32" between calls
    mov dword [CODE + (t_imm - tmpl) + 1], 0x100
    xor eax, eax
    call CODE
    mov [RESULTS + 4], eax
    ; the template patches its own next instruction
    xor eax, eax
    call CODE + (t_self - tmpl)
    mov [RESULTS + 8], eax
    ; a loop whose body is rewritten by the loop itself (same page, same block)
    xor eax, eax
    call CODE + (t_loop - tmpl)
    mov [RESULTS + 12], eax
    ; paging on, code written through an alias of its physical page, then run
    mov dword [0x11000], 0x000000e3 | 0            ; PD[0]: 4 MiB identity, writable
    mov dword [0x11008], 0x000000e3                ; PD[2]: 4 MiB at 8 MiB -> physical 0
    mov eax, cr4
    or eax, 0x10
    mov cr4, eax
    mov eax, 0x11000
    mov cr3, eax
    mov eax, cr0
    or eax, 0x80000000
    mov cr0, eax
    xor eax, eax
    call CODE
    mov byte [ALIAS + CODE + (t_imm - tmpl) + 1], 0x55   ; through the alias
    call CODE
    mov [RESULTS + 16], eax
    mov eax, cr0
    and eax, 0x7fffffff
    mov cr0, eax
    EXIT

; position-independent template (runs at CODE)
tmpl:
t_imm:
    add eax, 0x11111111
    ret
t_self:
    mov byte [CODE + (t_self_target - tmpl)], 0x40   ; inc eax (was nop)
t_self_target:
    nop
    mov byte [CODE + (t_self_target - tmpl)], 0x90
    ret
t_loop:
    mov ecx, 5
.l:
    add eax, 1
    mov byte [CODE + (.l - tmpl) + 2], cl          ; next round adds a different constant
    dec ecx
    jnz .l
    ret
tmpl_end:
