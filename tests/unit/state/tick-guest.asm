bits 16
org 0
  cli
  xor ax,ax
  mov ss,ax
  mov ds,ax
  mov sp,0x7000
  mov word [0x20], handler
  mov word [0x22], 0xf000
  mov al,0x11
  out 0x20,al
  mov al,8
  out 0x21,al
  mov al,4
  out 0x21,al
  mov al,1
  out 0x21,al
  mov al,0xfe
  out 0x21,al
  mov al,0x34
  out 0x43,al
  mov ax,1193
  out 0x40,al
  mov al,ah
  out 0x40,al
  mov word [0x500],0
  mov word [0x502],0
  mov word [0x504],7
  sti
idle:
  hlt
  mov ax,[0x500]
  cmp ax,[0x502]
  je idle
  mov [0x502],ax
  mov ax,[0x504]
  mov bx,25173
  mul bx
  add ax,13849
  mov [0x504],ax
  mov cx,ax
  and cx,0x3ff
busy:
  add word [0x506],cx
  loop busy
  mov al,ah
  xor ah,ah
  mov bl,26
  div bl
  mov al,ah
  add al,'a'
  mov dx,0x3f8
  out dx,al
  cmp word [0x502],400
  jb idle
  cli
  mov al,0
  out 0xf4,al
  hlt
handler:
  push ax
  inc word [0x500]
  mov al,0x20
  out 0x20,al
  pop ax
  iret
