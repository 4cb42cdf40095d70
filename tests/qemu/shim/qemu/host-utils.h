#ifndef FPB_SHIM_HOST_UTILS_H
#define FPB_SHIM_HOST_UTILS_H
static inline int ctpopl(unsigned long val)
{
    return __builtin_popcountl(val);
}
#endif
