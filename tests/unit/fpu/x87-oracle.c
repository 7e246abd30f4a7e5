/*
 * Reference results from the host's own x87 unit (x86-64 Linux, gcc): the FPU tests compile this at
 * test time and compare Boxwood's Fpu with real silicon, bit for bit.
 *
 * Input, one case per line:  OP CW A B   (CW hex; A and B as SE:SIGNIFICAND hex, 80-bit)
 * The FPU is set up with FNINIT; FLDCW CW; FLD B; FLD A (so ST0 = A, ST1 = B), a 16-byte memory
 * operand holding A's significand bits (for the load forms) runs the instruction OP, and FNSAVE (a
 * no-wait instruction, so unmasked exceptions do not trap) captures the whole state.
 * OP may carry a prefix that shapes the stack first: "e0." frees ST0, "e1." frees ST1 (stack
 * underflow cases), "full." pushes six copies of ST0 so that all eight registers are in use (overflow).
 * "frstor" and "fxrstor" first build a 108-byte FSAVE / 512-byte FXSAVE image in the memory operand:
 * CW, SW and TW (abridged for FXSAVE) from A's significand bits 0-15, 16-31, 32-47, and eight
 * registers derived from B. "fxsave" stores the x87 part of an FXSAVE image.
 * Output, one line per case: the 108-byte FNSAVE image, the first 160 bytes of the memory operand,
 * EFLAGS (all hex).
 */
#include <stdio.h>
#include <stdint.h>
#include <string.h>

typedef struct {
  uint64_t sig;
  uint16_t se;
} __attribute__((packed)) f80;

static unsigned char save[108];
static unsigned char mem[512] __attribute__((aligned(16)));

#define RUN(INSN)                                                                               \
  __asm__ volatile("fninit\n\tfldcw %[cw]\n\tfldt %[b]\n\tfldt %[a]\n\t" INSN                   \
                   "\n\tpushfq\n\tpopq %[fl]\n\tfnsave %[sv]"                                    \
                   : [sv] "=m"(save), [m] "+m"(mem), [fl] "=r"(fl)                              \
                   : [cw] "m"(cw16), [a] "m"(a), [b] "m"(b)                                     \
                   : "memory", "cc")

int main(void) {
  char op[32];
  unsigned cw, sea, seb;
  unsigned long long siga, sigb;
  while (scanf("%31s %x %x:%llx %x:%llx", op, &cw, &sea, &siga, &seb, &sigb) == 6) {
    f80 a = {siga, (uint16_t)sea}, b = {sigb, (uint16_t)seb};
    unsigned short cw16 = (unsigned short)cw;
    unsigned long long fl = 0;
    memset(mem, 0, sizeof mem);
    memcpy(mem, &siga, 8);
    memcpy(mem + 8, &sigb, 8);
    if (!strcmp(op, "frstor") || !strcmp(op, "fxrstor")) {
      int fx = op[1] == 'x';
      uint16_t cwv = siga & 0xffff, swv = (siga >> 16) & 0xffff, twv = (siga >> 32) & 0xffff;
      memset(mem, 0, sizeof mem);
      if (fx) {
        memcpy(mem + 0, &cwv, 2);
        memcpy(mem + 2, &swv, 2);
        mem[4] = twv & 0xff;
        uint32_t mxcsr = 0x1f80;
        memcpy(mem + 24, &mxcsr, 4);
      } else {
        memcpy(mem + 0, &cwv, 2);
        memcpy(mem + 4, &swv, 2);
        memcpy(mem + 8, &twv, 2);
      }
      for (int i = 0; i < 8; i++) {
        f80 r = {sigb ^ ((uint64_t)i << (8 * i)), (uint16_t)(seb + i * 0x1111)};
        memcpy(mem + (fx ? 32 + 16 * i : 28 + 10 * i), &r, 10);
      }
    }
    int pre = 0;
    const char *o = op;
    if (!strncmp(op, "e0.", 3)) pre = 1, o = op + 3;
    else if (!strncmp(op, "e1.", 3)) pre = 2, o = op + 3;
    else if (!strncmp(op, "full.", 5)) pre = 3, o = op + 5;
#define OP(name, insn)                                                                          \
  else if (!strcmp(o, name)) {                                                                   \
    if (pre == 0) RUN(insn);                                                                     \
    else if (pre == 1) RUN(".byte 0xdd,0xc0\n\t" insn);                                          \
    else if (pre == 2) RUN(".byte 0xdd,0xc1\n\t" insn);                                          \
    else RUN(".byte 0xd9,0xc0,0xd9,0xc0,0xd9,0xc0,0xd9,0xc0,0xd9,0xc0,0xd9,0xc0\n\t" insn);      \
  }
    if (0) {
    }
    OP("fadd", ".byte 0xd8,0xc1")
    OP("fmul", ".byte 0xd8,0xc9")
    OP("fsub", ".byte 0xd8,0xe1")
    OP("fsubr", ".byte 0xd8,0xe9")
    OP("fdiv", ".byte 0xd8,0xf1")
    OP("fdivr", ".byte 0xd8,0xf9")
    OP("faddp", ".byte 0xde,0xc1")
    OP("fsubp", ".byte 0xde,0xe9")
    OP("fdivp", ".byte 0xde,0xf9")
    OP("fcom", ".byte 0xd8,0xd1")
    OP("fucom", ".byte 0xdd,0xe1")
    OP("fcompp", ".byte 0xde,0xd9")
    OP("fcomi", ".byte 0xdb,0xf1")
    OP("fucomi", ".byte 0xdb,0xe9")
    OP("ftst", ".byte 0xd9,0xe4")
    OP("fxam", ".byte 0xd9,0xe5")
    OP("fchs", ".byte 0xd9,0xe0")
    OP("fabs", ".byte 0xd9,0xe1")
    OP("fsqrt", ".byte 0xd9,0xfa")
    OP("frndint", ".byte 0xd9,0xfc")
    OP("fscale", ".byte 0xd9,0xfd")
    OP("fprem", ".byte 0xd9,0xf8")
    OP("fprem1", ".byte 0xd9,0xf5")
    OP("fxtract", ".byte 0xd9,0xf4")
    OP("f2xm1", ".byte 0xd9,0xf0")
    OP("fyl2x", ".byte 0xd9,0xf1")
    OP("fyl2xp1", ".byte 0xd9,0xf9")
    OP("fptan", ".byte 0xd9,0xf2")
    OP("fpatan", ".byte 0xd9,0xf3")
    OP("fsin", ".byte 0xd9,0xfe")
    OP("fcos", ".byte 0xd9,0xff")
    OP("fsincos", ".byte 0xd9,0xfb")
    OP("fld1", ".byte 0xdd,0xd8,0xdd,0xd8,0xd9,0xe8")
    OP("fldl2t", ".byte 0xdd,0xd8,0xdd,0xd8,0xd9,0xe9")
    OP("fldl2e", ".byte 0xdd,0xd8,0xdd,0xd8,0xd9,0xea")
    OP("fldpi", ".byte 0xdd,0xd8,0xdd,0xd8,0xd9,0xeb")
    OP("fldlg2", ".byte 0xdd,0xd8,0xdd,0xd8,0xd9,0xec")
    OP("fldln2", ".byte 0xdd,0xd8,0xdd,0xd8,0xd9,0xed")
    OP("fst32", "fsts %[m]")
    OP("fst64", "fstl %[m]")
    OP("fist16", "fists %[m]")
    OP("fist32", "fistl %[m]")
    OP("fistp64", "fistpll %[m]")
    OP("fbstp", "fbstp %[m]")
    OP("fld32", "flds %[m]")
    OP("fld64", "fldl %[m]")
    OP("fbld", "fbld %[m]")
    OP("fild16", "filds %[m]")
    OP("fild32", "fildl %[m]")
    OP("fild64", "fildll %[m]")
    OP("fadd32", "fadds %[m]")
    OP("fmul64", "fmull %[m]")
    OP("fiadd16", "fiadds %[m]")
    OP("fidivr32", "fidivrl %[m]")
    OP("fcom32", "fcoms %[m]")
    OP("fld80", "fldt %[m]")
    OP("fstp80", "fstpt %[m]")
    OP("fldst1", ".byte 0xd9,0xc1")
    OP("fxch", ".byte 0xd9,0xc9")
    OP("fstst1", ".byte 0xdd,0xd1")
    OP("fcmovb", ".byte 0xda,0xc1")
    OP("fincstp", ".byte 0xd9,0xf7")
    OP("fdecstp", ".byte 0xd9,0xf6")
    OP("ffreep", ".byte 0xdf,0xc1")
    OP("fldpi.push", ".byte 0xd9,0xeb")
    OP("fldz.push", ".byte 0xd9,0xee")
    OP("frstor", "frstor %[m]")
    OP("fxrstor", "fxrstor %[m]")
    OP("fxsave", "fxsave %[m]")
    else {
      fprintf(stderr, "x87-oracle: unknown op %s\n", op);
      return 2;
    }
    for (unsigned i = 0; i < sizeof save; i++) printf("%02x", save[i]);
    printf(" ");
    for (unsigned i = 0; i < 160; i++) printf("%02x", mem[i]);
    printf(" %llx\n", fl);
  }
  return 0;
}
