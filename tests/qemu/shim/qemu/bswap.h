#ifndef FPB_SHIM_BSWAP_H
#define FPB_SHIM_BSWAP_H
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the shim assumes a little-endian host"
#endif
#define le16_to_cpu(x) ((uint16_t)(x))
#define le32_to_cpu(x) ((uint32_t)(x))
#define le64_to_cpu(x) ((uint64_t)(x))
static inline uint64_t ldq_le_p(const void *p)
{
    uint64_t v;

    memcpy(&v, p, sizeof(v));
    return v;
}
#endif
