/*
 * Which x87 instructions deliver a pending unmasked exception (#MF, SIGFPE here) and which do not,
 * on the host's silicon. For each NAME: FNINIT, unmask ZE, 1/0 (ZE pending), then the instruction.
 * Prints "NAME trap" or "NAME ok". Compiled and run by waiting.test.ts.
 */
#include <stdio.h>
#include <signal.h>
#include <setjmp.h>

static sigjmp_buf jb;
static void on_fpe(int s) {
  (void)s;
  siglongjmp(jb, 1);
}
static unsigned short cw_zm = 0x037b, word;
static unsigned char env[108], img[512] __attribute__((aligned(16)));
static unsigned char cenv[108], cimg[512] __attribute__((aligned(16)));

#define TRY(name, INSN)                                                                          \
  do {                                                                                           \
    if (sigsetjmp(jb, 1) == 0) {                                                                 \
      __asm__ volatile("fninit\n\tfldcw %[cw]\n\tfld1\n\tfldz\n\tfdivrp\n\t" INSN "\n\tfninit"   \
                       : [w] "+m"(word), [env] "+m"(env), [img] "+m"(img)                       \
                       : [cw] "m"(cw_zm), [cenv] "m"(cenv), [cimg] "m"(cimg)                    \
                       : "memory", "ax");                                                        \
      printf("%s ok\n", name);                                                                   \
    } else {                                                                                     \
      printf("%s trap\n", name);                                                                 \
      __asm__ volatile("fninit");                                                                \
    }                                                                                            \
  } while (0)

int main(void) {
  signal(SIGFPE, on_fpe);
  /* Clean images to load: taken with nothing pending. */
  __asm__ volatile("fninit\n\tfnsave %0\n\tfxsave %1" : "=m"(cenv), "=m"(cimg));
  TRY("fldcw", "fldcw %[w]");
  TRY("fnstcw", "fnstcw %[w]");
  TRY("fnstsw.m16", "fnstsw %[w]");
  TRY("fnstsw.ax", "fnstsw %%ax");
  TRY("fnclex", "fnclex");
  TRY("fninit", "fninit");
  TRY("fnstenv", "fnstenv %[env]");
  TRY("fnsave", "fnsave %[env]");
  TRY("fxsave", "fxsave %[img]");
  TRY("fnstenv+fnop", "fnstenv %[env]\n\tfnop");
  TRY("fnop", "fnop");
  TRY("fwait", "fwait");
  TRY("ffree", ".byte 0xdd,0xc3");
  TRY("ffreep", ".byte 0xdf,0xc3");
  TRY("fincstp", "fincstp");
  TRY("fdecstp", "fdecstp");
  TRY("fxch", ".byte 0xd9,0xc9");
  TRY("fld1", "fld1");
  TRY("fldst1", ".byte 0xd9,0xc1");
  TRY("fstst1", ".byte 0xdd,0xd1");
  TRY("fchs", "fchs");
  TRY("fxam", "fxam");
  TRY("fcmovb", ".byte 0xda,0xc1");
  TRY("fucomi", ".byte 0xdb,0xe9");
  TRY("fstp.m32", "fstps %[env]");
  TRY("fldenv", "fldenv %[cenv]");
  TRY("frstor", "frstor %[cenv]");
  TRY("fxrstor", "fxrstor %[cimg]");
  return 0;
}
