/* atomics.h - every concurrent memory access of the counter store.
 *
 * The counter store (counters.pyx) lives in one region that several
 * processes map at once (MAP_SHARED of a file), so no lock of one process can
 * protect it, and a process may die (SIGKILL) at any instruction. Everything
 * is therefore lock-free: each change of shared state is ONE atomic
 * instruction that either happened or did not, and no step ever waits for
 * another process to finish something.
 *
 * Only these primitives touch shared state concurrently:
 *
 *   fc_cas128   16-byte compare-and-swap. Buckets {stamp, count, aux}, keys
 *               {hi, lo} and distinct items {item, stamp} are 16-byte aligned
 *               pairs changed only by this, so a pair is never half written.
 *   fc_cas64_val  8-byte compare-and-swap of a count bucket {stamp, count},
 *               a single word (so any atomic load of it is torn-free).
 *   fc_read_pair  a torn-free read of a pair whose first word changes on
 *               every write (see the proof below); costs two plain loads.
 *   fc_load* and fc_store* with acquire / release, fc_add64 (statistics),
 *   fc_max_i64 / fc_max_u32_serial (atomic maximum by CAS loop).
 *
 * Lock-freedom across processes requires the 16-byte CAS to be a real
 * instruction: on x86-64 that is `lock cmpxchg16b`, which GCC and Clang
 * inline for the __sync builtins only with -mcx16 (setup.py passes it).
 * Without it they would call libatomic, whose 16-byte fallback takes a lock
 * in a per-process table - useless between processes - so we refuse to
 * compile instead. (__atomic_compare_exchange_n on 16 bytes also goes through
 * libatomic on GCC >= 7 even with -mcx16; hence the older __sync builtins,
 * which are full barriers, i.e. sequentially consistent.)
 *
 * The code assumes a little-endian host with 64-bit words (x86-64, aarch64),
 * as the region's layout is native-endian.
 */
#ifndef FC_ATOMICS_H
#define FC_ATOMICS_H

#include <stdint.h>

#if !defined(__GCC_HAVE_SYNC_COMPARE_AND_SWAP_16)
#error "fraudcore's counter store needs a lock-free 16-byte compare-and-swap; on x86-64 build with -mcx16"
#endif

typedef unsigned __int128 fc_u128;

/* A 16-byte value seen as two words: `a` at the lower address. */
typedef struct { uint64_t a; uint64_t b; } fc_pair;

static inline fc_u128 fc_pack(fc_pair p) { return ((fc_u128)p.b << 64) | p.a; }
static inline fc_pair fc_unpack(fc_u128 v) { fc_pair p; p.a = (uint64_t)v; p.b = (uint64_t)(v >> 64); return p; }

/* Compare-and-swap 16 aligned bytes at p: if they equal `expected`, write
 * `desired` and return 1; otherwise return 0. In both cases *seen receives
 * the value that was in memory at the instant of the instruction (an atomic
 * snapshot), so a retry loop needs no separate reload. Full barrier: every
 * store before it is visible to whoever sees its result, and no later load
 * is done early. */
static inline int fc_cas128(void *p, fc_pair expected, fc_pair desired, fc_pair *seen)
{
    fc_u128 e = fc_pack(expected);
    fc_u128 prev = __sync_val_compare_and_swap((fc_u128 *)p, e, fc_pack(desired));
    *seen = fc_unpack(prev);
    return prev == e;
}

/* A racy, possibly torn read of a pair: only ever used as the `expected`
 * guess of a CAS loop, where a torn guess just makes the CAS fail and hand
 * back the true value. Relaxed atomic loads of each word (no UB, no tearing
 * within a word). */
static inline fc_pair fc_peek_pair(const void *p)
{
    fc_pair r;
    r.a = __atomic_load_n((const uint64_t *)p, __ATOMIC_RELAXED);
    r.b = __atomic_load_n((const uint64_t *)p + 1, __ATOMIC_RELAXED);
    return r;
}

/* A consistent (never torn) read of a pair whose FIRST word changes on every
 * successful write and never returns to an earlier value (buckets: the word
 * {stamp, count} - count grows within a lap, a new lap has a newer stamp;
 * keys: `hi`, which differs between any two keys a slot holds in turn, up to
 * fingerprint collisions).
 * Why it is safe: load a1 (acquire), then b (acquire), then a2. Acquire keeps
 * the three loads in program order. Writers change both words in one
 * cmpxchg16b. If a1 == a2, no write happened between the first and the last
 * load (any write would have changed the first word for good), so b belongs
 * to the same state as a1: the pair existed in memory. Otherwise retry; a
 * reader retries only while writers make progress, so this is lock-free.
 * Cheaper than an atomic 16-byte load, which on x86-64 is itself a
 * `lock cmpxchg16b` that dirties the cache line. */
static inline fc_pair fc_read_pair(const void *p)
{
    const uint64_t *w = (const uint64_t *)p;
    fc_pair r;
    uint64_t again;
    for (;;) {
        r.a = __atomic_load_n(w, __ATOMIC_ACQUIRE);
        r.b = __atomic_load_n(w + 1, __ATOMIC_ACQUIRE);
        again = __atomic_load_n(w, __ATOMIC_ACQUIRE);
        if (again == r.a) return r;
    }
}

/* Plain word loads and stores with the ordering named. Acquire loads pair
 * with the full-barrier CASes or release stores that published the data. */
static inline uint64_t fc_load64(const void *p) { return __atomic_load_n((const uint64_t *)p, __ATOMIC_ACQUIRE); }
static inline int64_t fc_load_i64(const void *p) { return __atomic_load_n((const int64_t *)p, __ATOMIC_ACQUIRE); }
static inline uint32_t fc_load32(const void *p) { return __atomic_load_n((const uint32_t *)p, __ATOMIC_ACQUIRE); }
static inline void fc_store_i64(void *p, int64_t v) { __atomic_store_n((int64_t *)p, v, __ATOMIC_RELEASE); }

/* Statistics counters: relaxed, since nothing is ordered after them; one
 * `lock xadd`, so concurrent increments are never lost. Returns the old value. */
static inline uint64_t fc_add64(void *p, uint64_t v) { return __atomic_fetch_add((uint64_t *)p, v, __ATOMIC_RELAXED); }

/* Occupancy bits of a bucket ring: set (never cleared while the key lives)
 * BEFORE the bucket's CAS, so a reader that sees a bucket's data also sees
 * its bit, and a process killed in between leaves at worst a bit whose
 * bucket is empty, which readers skip. Sequentially consistent: one
 * `lock or`. */
static inline void fc_or64(void *p, uint64_t v) { __atomic_fetch_or((uint64_t *)p, v, __ATOMIC_SEQ_CST); }

/* A relaxed load of one word: a CAS loop's first guess (see fc_peek_pair). */
static inline uint64_t fc_peek64(const void *p) { return __atomic_load_n((const uint64_t *)p, __ATOMIC_RELAXED); }

/* Compare-and-swap one aligned word; returns the value that was in memory
 * (== expected: swapped), so a retry loop needs no reload. Full barrier, as
 * fc_cas128. */
static inline uint64_t fc_cas64_val(void *p, uint64_t expected, uint64_t desired)
{
    return __sync_val_compare_and_swap((uint64_t *)p, expected, desired);
}

/* The rules area's seqlock word: a full barrier, so the publisher owns the
 * area before it writes a byte of the new text. */
static inline int fc_cas64(void *p, uint64_t expected, uint64_t desired)
{
    return __sync_bool_compare_and_swap((uint64_t *)p, expected, desired);
}

static inline int fc_cas32(void *p, uint32_t expected, uint32_t desired)
{
    return __sync_bool_compare_and_swap((uint32_t *)p, expected, desired);
}

/* *p = max(*p, v), atomically. The common case (v not larger) is one load and
 * no write, so hot keys do not bounce the cache line. The CAS loop only
 * retries when another process raised the value meanwhile, and stops as soon
 * as the stored value is >= v: lock-free. */
static inline void fc_max_i64(void *p, int64_t v)
{
    int64_t cur = __atomic_load_n((int64_t *)p, __ATOMIC_RELAXED);
    while (v > cur) {
        if (__atomic_compare_exchange_n((int64_t *)p, &cur, v, 1, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED))
            return;
    }
}

/* The same for 32-bit bucket stamps, compared in serial-number arithmetic
 * (RFC 1982): a is newer than b when (int32_t)(a - b) > 0, which is right as
 * long as the two are less than 2^31 buckets apart. */
static inline int fc_max_u32_serial(void *p, uint32_t v)
{
    uint32_t cur = __atomic_load_n((uint32_t *)p, __ATOMIC_RELAXED);
    while (cur == 0 || (int32_t)(v - cur) > 0) {
        if (__atomic_compare_exchange_n((uint32_t *)p, &cur, v, 1, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED))
            return 1;   /* raised it */
    }
    return 0;
}

/* A sketch's version: bumped AFTER the register store it announces (the
 * seq_cst CAS above orders the store first), so a reader that loads version
 * v with acquire also sees every register raised before v. Returns the old
 * value. */
static inline uint64_t fc_inc64(void *p) { return __atomic_fetch_add((uint64_t *)p, 1, __ATOMIC_ACQ_REL); }

/* Release of a try-lock word: everything written under the lock is visible
 * to the next holder, whose acquiring CAS pairs with this store. */
static inline void fc_store64(void *p, uint64_t v) { __atomic_store_n((uint64_t *)p, v, __ATOMIC_RELEASE); }

#endif /* FC_ATOMICS_H */
