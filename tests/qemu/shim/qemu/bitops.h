#ifndef FPB_SHIM_BITOPS_H
#define FPB_SHIM_BITOPS_H
#define BITS_PER_LONG (sizeof(unsigned long) * 8)
#define BIT_MASK(nr) (1UL << ((nr) % BITS_PER_LONG))
#define BITS_TO_LONGS(nr) DIV_ROUND_UP(nr, BITS_PER_LONG)
#endif
