/* fchash.h - the counter store's 64-bit hash: seedable, seed-stable across
 * processes and runs (no random secret), so every process that maps a region
 * computes the same fingerprint for the same key.
 *
 * fc_hash is the wyhash "final" construction (Wang Yi, public domain): 64x64
 * -> 128-bit multiply-and-fold mixing, 16 bytes per step (48 bytes per step on
 * long inputs), passing SMHasher. Keys use two independent seeds to form a
 * 128-bit fingerprint; the odds that two distinct keys of one counter share
 * one are ~n^2 / 2^129 (for a billion keys, 1e-21).
 *
 * fc_fmix64 is MurmurHash3's 64-bit finalizer: a bijection, used to spread
 * caller-supplied distinct-item hashes (which may be small integers) before
 * their bits choose a HyperLogLog register and rank.
 *
 * Reads are little-endian (byte-swapped on big-endian hosts) so a hash does
 * not depend on the host either.
 */
#ifndef FC_HASH_H
#define FC_HASH_H

#include <stdint.h>
#include <string.h>

static inline uint64_t fc_mum(uint64_t a, uint64_t b)
{
    unsigned __int128 r = (unsigned __int128)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

static inline uint64_t fc_r8(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

static inline uint64_t fc_r4(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap32(v);
#endif
    return v;
}

#define FC_P0 0xa0761d6478bd642full
#define FC_P1 0xe7037ed1a0b428dbull
#define FC_P2 0x8ebc6af09c88c6e3ull
#define FC_P3 0x589965cc75374cc3ull

static inline uint64_t fc_hash(const void *key, size_t len, uint64_t seed)
{
    const uint8_t *p = (const uint8_t *)key;
    uint64_t a, b;
    seed ^= fc_mum(seed ^ FC_P0, FC_P1);
    if (len <= 16) {
        if (len >= 4) {
            a = (fc_r4(p) << 32) | fc_r4(p + ((len >> 3) << 2));
            b = (fc_r4(p + len - 4) << 32) | fc_r4(p + len - 4 - ((len >> 3) << 2));
        } else if (len > 0) {
            a = ((uint64_t)p[0] << 16) | ((uint64_t)p[len >> 1] << 8) | p[len - 1];
            b = 0;
        } else {
            a = b = 0;
        }
    } else {
        size_t i = len;
        if (i > 48) {
            uint64_t s1 = seed, s2 = seed;
            do {
                seed = fc_mum(fc_r8(p) ^ FC_P1, fc_r8(p + 8) ^ seed);
                s1 = fc_mum(fc_r8(p + 16) ^ FC_P2, fc_r8(p + 24) ^ s1);
                s2 = fc_mum(fc_r8(p + 32) ^ FC_P3, fc_r8(p + 40) ^ s2);
                p += 48;
                i -= 48;
            } while (i > 48);
            seed ^= s1 ^ s2;
        }
        while (i > 16) {
            seed = fc_mum(fc_r8(p) ^ FC_P1, fc_r8(p + 8) ^ seed);
            i -= 16;
            p += 16;
        }
        a = fc_r8(p + i - 16);
        b = fc_r8(p + i - 8);
    }
    a ^= FC_P1;
    b ^= seed;
    {
        unsigned __int128 r = (unsigned __int128)a * b;
        a = (uint64_t)r;
        b = (uint64_t)(r >> 64);
    }
    return fc_mum(a ^ FC_P0 ^ (uint64_t)len, b ^ FC_P1);
}

/* Combine a running hash with the next part's hash (order-dependent). */
static inline uint64_t fc_combine(uint64_t acc, uint64_t h) { return fc_mum(acc ^ FC_P2, h ^ FC_P3); }

static inline uint64_t fc_fmix64(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ull;
    k ^= k >> 33;
    return k;
}

#endif /* FC_HASH_H */
