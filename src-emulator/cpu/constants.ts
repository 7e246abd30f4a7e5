/** Segment register indices (public API order) and the two system segments kept beside them. */
export const ES = 0;
export const CS = 1;
export const SS = 2;
export const DS = 3;
export const FS = 4;
export const GS = 5;
export const LDTR = 6;
export const TR = 7;

/** General register indices. */
export const EAX = 0;
export const ECX = 1;
export const EDX = 2;
export const EBX = 3;
export const ESP = 4;
export const EBP = 5;
export const ESI = 6;
export const EDI = 7;

/** EFLAGS bits. */
export const CF = 0x1;
export const PF = 0x4;
export const AF = 0x10;
export const ZF = 0x40;
export const SF = 0x80;
export const TF = 0x100;
export const IF = 0x200;
export const DF = 0x400;
export const OF = 0x800;
export const IOPL = 0x3000;
export const NT = 0x4000;
export const RF = 0x10000;
export const VM = 0x20000;
export const AC = 0x40000;
export const VIF = 0x80000;
export const VIP = 0x100000;
export const ID = 0x200000;
export const ARITH_FLAGS = CF | PF | AF | ZF | SF | OF;

/** CR0 / CR4 bits. */
export const CR0_PE = 0x1;
export const CR0_MP = 0x2;
export const CR0_EM = 0x4;
export const CR0_TS = 0x8;
export const CR0_ET = 0x10;
export const CR0_NE = 0x20;
export const CR0_WP = 0x10000;
export const CR0_AM = 0x40000;
export const CR0_NW = 0x20000000;
export const CR0_CD = 0x40000000;
export const CR0_PG = 0x80000000 | 0;
export const CR4_VME = 0x1;
export const CR4_PVI = 0x2;
export const CR4_TSD = 0x4;
export const CR4_DE = 0x8;
export const CR4_PSE = 0x10;
export const CR4_PAE = 0x20;
export const CR4_MCE = 0x40;
export const CR4_PGE = 0x80;
export const CR4_PCE = 0x100;
export const CR4_OSFXSR = 0x200;

/** Exception vectors. */
export const EXC_DE = 0;
export const EXC_DB = 1;
export const EXC_NMI = 2;
export const EXC_BP = 3;
export const EXC_OF = 4;
export const EXC_BR = 5;
export const EXC_UD = 6;
export const EXC_NM = 7;
export const EXC_DF = 8;
export const EXC_TS = 10;
export const EXC_NP = 11;
export const EXC_SS = 12;
export const EXC_GP = 13;
export const EXC_PF = 14;
export const EXC_MF = 16;
export const EXC_AC = 17;

/** Descriptor access-rights word as kept in the segment caches: descriptor byte 5 | (byte 6 & 0xF0) << 8. */
export const AR_ACCESSED = 0x1;
export const AR_RW = 0x2; // readable code / writable data
export const AR_DC = 0x4; // conforming code / expand-down data
export const AR_CODE = 0x8;
export const AR_S = 0x10;
export const AR_P = 0x80;
export const AR_DB = 0x4000;
export const AR_G = 0x8000;

/** Lazy flag operations. */
export const LZ_NONE = 0;
export const LZ_ADD = 1;
export const LZ_SUB = 2;
export const LZ_LOGIC = 3;
export const LZ_INC = 4;
export const LZ_DEC = 5;
/** ZF/SF/PF from the result; CF, OF and AF are already in `flags`. */
export const LZ_RES = 6;

/** Kinds of event delivery (they differ in privilege checks and in what EIP is pushed). */
export const INT_SOFTWARE = 0; // INT n, INTO, INT3: gate DPL checked
export const INT_EXCEPTION = 1;
export const INT_EXTERNAL = 2; // INTR, NMI: EXT bit in error codes
