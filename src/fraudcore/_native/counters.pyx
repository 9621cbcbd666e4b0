# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The native velocity-counter store: sliding-window aggregates in one region.

Semantics
---------
A counter aggregates events by key over a sliding window of event time kept
in buckets of ``resolution_ms`` (default: window / 60). A key's entry holds a
ring of ``N = ceil(window / resolution) + 1`` buckets; a read at time ``t``
(bucket ``bt = t // resolution``) combines buckets ``bt - N + 1 .. bt``. So
the value includes EVERY event of ``(t - window, t]`` and possibly events up
to one bucket older (``> t - window - resolution``), or later in ``t``'s own
bucket (``< (bt + 1) * resolution``). The rules loader requires the
resolution to divide the window, so the excess is at most one bucket. This
holds for reads at or after the key's newest event. The engine reads at the
event's own time, so a late (out-of-order) event's decision reads in the
past: it sees the buckets still retained (for count, sum, min, max, avg:
those of the last ``N`` buckets before the key's newest) and, for distinct,
the items whose run of sightings covers the read time (see distinct_add).

* count, distinct read as a count; sum as the sum (0.0 when empty); min, max,
  avg as NaN when the window is empty (the caller maps it).
* An event whose bucket is older than the key's newest bucket minus the ring
  (``b <= newest_b - N``) cannot appear in any later read: it is not counted
  (stats ``too_old``). Out-of-order events inside the window count.
* An event more than ``max_future_ms`` (default 24 h) after both the region's
  high-water mark (the largest event time counted so far, shared by all
  counters and processes) and the wall clock is not counted (stats
  ``future_skipped``). The first event sets the mark; the wall clock lets a
  mark set by an ancient event catch up. ``max_future_ms=None`` disables
  the check.
* sum/min/max/avg ignore a non-finite value (NaN, inf): not counted, stats
  ``nan_skipped``. count and distinct ignore the value.
* distinct is exact while a key has at most 16 live items (an exact set),
  then a sliding HyperLogLog sketch (p = 12: 4096 registers, standard error
  1.04 / sqrt(4096) = 1.6 %) from a fixed pool of ``sketches`` per counter.
  When the pool is exhausted a key keeps only its exact set (its value
  saturates near 16) and each uncounted sighting is counted in stats
  ``sketch_pool_full``.

Memory
------
One region: a header, then per counter an open-addressed table of
``capacity`` entries (rounded up to a power of two), then for distinct
counters the sketch pool. With ``path`` it is a file mapped MAP_SHARED, so
every process mapping the same file shares the counters; otherwise anonymous
private memory. Pages are zero-filled by the kernel on first touch, so a
table of millions of keys is created instantly and costs memory as it fills.

Bytes per key, rounded up to a multiple of 64 so that entries start on a
cache line (N buckets, 61 by default): 576 for count with 17 to 64 buckets
(a grouped ring, see below), else 32 + 8 * N; 32 + 16 * N for
sum/min/max/avg (1024), 32 + 16 * 16 = 288 -> 320 for distinct (plus
401,408 bytes per sketch in the pool).

Grouped count rings
-------------------
A count of 17 to 64 buckets (the default 61 among them) keeps its buckets in
a ring of 64 slots, in four groups of GROUP = 16, and beside the head four
coarse buckets, each counting one whole group's events: coarse bucket
``b >> 4`` (slot ``(b >> 4) & 3``), stamped like a bucket. A read takes the
groups wholly inside its window from the coarse buckets, and visits fine
buckets only in the group of ``bt`` and the group of its oldest bucket
(which, 64 slots being four groups, share slots when four groups apart):
two or four lines of a hot key's ring instead of eight, and the coarse
buckets are in the head's line, which the read loads anyway. Each event is
added to its bucket, then to its coarse bucket (two CASes; a process killed
between them leaves that one event out of the reads that take its group
whole).

Concurrency: lock-free; see atomics.h and the comments on each step below.
"""

import json
import os
import struct

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.math cimport isfinite, log, sqrt, NAN, INFINITY
from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uint64_t, INT64_MAX
from libc.string cimport memset, memcpy
from libc.stdlib cimport calloc, free
from libc.errno cimport errno
from posix.mman cimport mmap, munmap, msync, MS_SYNC, PROT_READ, PROT_WRITE, MAP_SHARED, MAP_PRIVATE, MAP_ANONYMOUS, MAP_NORESERVE, MAP_FAILED
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC, CLOCK_REALTIME

from fraudcore.errors import StateError

cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object, Py_ssize_t*) except NULL
    long long PyLong_AsLongLongAndOverflow(object, int*) except? -1
    bint PyLong_Check(object)
    bint PyBool_Check(object)
    bint PyFloat_Check(object)
    bint PyUnicode_Check(object)
    bint PyBytes_Check(object)
    double PyFloat_AS_DOUBLE(object)

cdef extern from "<sys/mman.h>" nogil:
    int madvise(void* addr, size_t length, int advice)

cdef extern from *:
    """
    #include <sched.h>
    #include <sys/mman.h>
    #ifndef MADV_POPULATE_WRITE
    #define MADV_POPULATE_WRITE 23
    #endif
    static inline int fc_clz64(uint64_t x) { return __builtin_clzll(x); }
    static inline int fc_ctz64(uint64_t x) { return __builtin_ctzll(x); }
    static inline double fc_bits_to_double(uint64_t u) { double d; memcpy(&d, &u, 8); return d; }
    static inline uint64_t fc_double_to_bits(double d) { uint64_t u; memcpy(&u, &d, 8); return u; }
    """
    int fc_clz64(uint64_t x) nogil
    int fc_ctz64(uint64_t x) nogil
    double fc_bits_to_double(uint64_t u) nogil
    uint64_t fc_double_to_bits(double d) nogil
    int sched_yield() nogil
    int MADV_POPULATE_WRITE
    int MADV_HUGEPAGE
    int MADV_NOHUGEPAGE

# ---------------------------------------------------------------- layout ----
# Region: [header][table 0][sketch pool 0]...[table k]..., each part starting
# on a 4096-byte boundary. All integers native-endian (little-endian hosts).
#
# Header (HEADER_FIXED bytes, then one DESC_SIZE descriptor per counter, then
# the counter definitions as JSON text, to explain a mismatch):
#   0  magic "FCSTORE1"        8  u32 layout version   12 u32 counters
#   16 u64 digest a            24 u64 digest b         (of the JSON text)
#   32 u64 total size          40 u64 header size
#   48 i64 high-water mark of event time (atomic max; 0 = none yet)
#   56 u32 JSON length         60..127 reserved
# Descriptor:
#   0 u64 table offset   8 u64 capacity   16 u64 entry size   24 u32 buckets N
#   28 u32 agg   32 i64 window ms   40 i64 resolution ms   48 u64 pool offset
#   56 u32 sketches in pool   64.. N_STATS u64 statistics (atomic adds)
# Then the rules area (RULES_AREA bytes, see publish_rules).
# Entry: EntryHead (32 bytes) then N Buckets (8 bytes for count, else 16) or 16 Items (16 bytes),
# padded to a multiple of 64 bytes (entries start on a cache line). A grouped
# count ring: EntryHead, 4 coarse count buckets (32 bytes), 64 buckets.
# Sketch: HLL_M registers x HLL_R u32 stamps (the newest bucket stamp at which
# an item of that register and rank was seen), then a SketchCache.

cdef enum:
    PAGE = 4096
    HEADER_FIXED = 128
    DESC_SIZE = 192
    HEAD = 32
    GROUP = 16             # a grouped count ring's buckets per coarse bucket (4 groups in 64 slots)
    PROBE = 16             # slots examined per key: the eviction neighbourhood
    K_ITEMS = 16           # exact distinct items per key
    HLL_P = 12
    HLL_M = 4096
    HLL_R = 24             # ranks kept per register; higher ranks count as 24
    SKETCH_REGS = 4096 * 24 * 4
    SKETCH_SIZE = 4096 * 24 * 4 + 8192   # registers, then the SketchCache
    MAX_BUCKETS = 65537
    TAKEOVER_NS = 100000000  # a reserved slot older than this is finished by its next writer

# The estimate of a sketch, kept current for one bucket stamp. Reading every
# register's 24 stamps costs ~60 us; a key that has a sketch is a hot key,
# read on every one of its events. So the per-register ranks visible at
# `bucket` (eff) and their histogram are cached, and each write that raises
# a stamp applies itself: the cache is exact while `valid` is 1 + `version`.
# A write that cannot apply itself (the lock is busy, or its stamp is newer
# than `bucket`) only bumps `version`, and the next read rebuilds the cache.
# Applying a write twice (a rebuild saw it, then it applied itself) is
# harmless: eff[j] = max(eff[j], rank) is idempotent.
cdef struct SketchCache:
    uint64_t version          # bumped after each register raise
    uint64_t lock             # try-lock: the holder's monotonic ns; 0 = free
    uint64_t valid            # 1 + the version eff/hist reflect; 0 = none
    uint32_t bucket           # the read stamp eff/hist are for
    uint32_t _pad
    int32_t hist[32]          # registers per visible rank (0..HLL_R)
    uint8_t eff[4096]         # per register: its largest rank visible at bucket

MAGIC = b"FCSTORE1"
LAYOUT_VERSION = 6
# The rules area at the end of the region: the rules file every process of
# the region decides with. [u64 seq][u64 path length][u64 text length][path]
# [text]; seq is a seqlock (odd while a publisher writes), so a reader copies
# the text and keeps it only if seq was even and unchanged around the copy.
RULES_AREA = 16 << 20
SKETCH_BYTES = SKETCH_SIZE
AGGS = ("count", "sum", "min", "max", "avg", "distinct")
STAT_NAMES = ("keys_claimed", "evictions", "too_old", "future_skipped", "nan_skipped",
              "sketch_allocations", "sketch_pool_full", "dropped", "takeovers")

# Forced key bits: hi's top bit makes a key never (0, 0) (the empty slot) and
# keeps hi nonzero when its bottom bit is cleared; a clear bottom bit marks a
# slot reserved by an evictor for that key (see find_entry).
cdef uint64_t KEY_BITS = (<uint64_t>1 << 63) | 1

cdef enum:
    TAG_NONE = 1
    TAG_BOOL = 2
    TAG_INT = 3
    TAG_BIGINT = 4
    TAG_FLOAT = 5
    TAG_STR = 6
    TAG_BYTES = 7


# ------------------------------------------------------------ hashing -------

cdef uint64_t hash_bytes(const char* data, Py_ssize_t length, uint64_t seed) noexcept nogil:
    """fc_hash of a buffer: what the engine calls on a str's UTF-8 bytes."""
    return fc_hash(data, <size_t>length, seed)


cdef uint64_t hash_str(object s, uint64_t seed) except? 0:
    """A str key part: its UTF-8 bytes (escaped lone surrogates)."""
    cdef const char* buf
    cdef Py_ssize_t n
    try:
        buf = PyUnicode_AsUTF8AndSize(s, &n)
    except UnicodeEncodeError:   # lone surrogates: hash their escaped form
        data = (<str>s).encode("utf-8", "surrogatepass")
        return fc_hash(PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data), seed ^ TAG_STR)
    return fc_hash(buf, <size_t>n, seed ^ TAG_STR)


cdef int hash_str2(object s, uint64_t seed_a, uint64_t seed_b, uint64_t* a, uint64_t* b) except -1:
    """hash_str with two seeds from one UTF-8 lookup: a key part's (hi, lo)."""
    cdef const char* buf
    cdef Py_ssize_t n
    try:
        buf = PyUnicode_AsUTF8AndSize(s, &n)
    except UnicodeEncodeError:
        a[0] = hash_str(s, seed_a)
        b[0] = hash_str(s, seed_b)
        return 0
    a[0] = fc_hash(buf, <size_t>n, seed_a ^ TAG_STR)
    b[0] = fc_hash(buf, <size_t>n, seed_b ^ TAG_STR)
    return 0


cdef uint64_t hash_int(int64_t i, uint64_t seed) noexcept nogil:
    cdef uint8_t tmp[8]
    memcpy(tmp, &i, 8)
    return fc_hash(tmp, 8, seed ^ TAG_INT)


cdef uint64_t hash_bool(bint b, uint64_t seed) noexcept nogil:
    cdef int64_t i = 1 if b else 0
    cdef uint8_t tmp[8]
    memcpy(tmp, &i, 8)
    return fc_hash(tmp, 8, seed ^ TAG_BOOL)


cdef uint64_t hash_float(double d, uint64_t seed) noexcept nogil:
    cdef uint8_t tmp[8]
    if d == 0.0:
        d = 0.0          # -0.0 and 0.0 are one key
    elif d != d:
        d = NAN          # one NaN
    memcpy(tmp, &d, 8)
    return fc_hash(tmp, 8, seed ^ TAG_FLOAT)


cdef int part_hash(object part, uint64_t seed, uint64_t* out) except -1:
    """The hash of one key part, typed: "1", 1, 1.0, True and b"1" differ.
    The engine hashes its native values with the same helpers."""
    cdef long long i
    cdef int overflow = 0
    if PyUnicode_Check(part):
        out[0] = hash_str(part, seed)
    elif PyBool_Check(part):
        out[0] = hash_bool(part is True, seed)
    elif PyLong_Check(part):
        i = PyLong_AsLongLongAndOverflow(part, &overflow)
        if overflow:
            data = str(part).encode()
            out[0] = fc_hash(PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data), seed ^ TAG_BIGINT)
        else:
            out[0] = hash_int(i, seed)
    elif PyFloat_Check(part):
        out[0] = hash_float(PyFloat_AS_DOUBLE(part), seed)
    elif PyBytes_Check(part):
        out[0] = fc_hash(PyBytes_AS_STRING(part), PyBytes_GET_SIZE(part), seed ^ TAG_BYTES)
    elif part is None:
        out[0] = fc_hash(NULL, 0, seed ^ TAG_NONE)
    elif isinstance(part, (bytearray, memoryview)):
        data = bytes(part)
        out[0] = fc_hash(PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data), seed ^ TAG_BYTES)
    else:
        raise TypeError(f"a counter key part must be str, int, float, bool, bytes or None, got {type(part).__name__}")
    return 0


cdef int fingerprint(object key, uint64_t* hi, uint64_t* lo) except -1:
    cdef uint64_t h
    cdef uint64_t a
    cdef uint64_t b
    parts = key if type(key) is tuple else (key,)
    a = SEED_HI ^ <uint64_t>len(parts)
    b = SEED_LO ^ <uint64_t>len(parts)
    for part in parts:
        part_hash(part, SEED_HI, &h)
        a = fc_combine(a, h)
        part_hash(part, SEED_LO, &h)
        b = fc_combine(b, h)
    hi[0] = a
    lo[0] = b
    return 0


def key_hash(key):
    """The 128-bit fingerprint ``(hi, lo)`` of a key: a tuple of str, int,
    float, bool, bytes or None values (a single value is a 1-tuple).

    The same in every process and run. Two distinct keys share a fingerprint
    with odds ~2^-128 per pair (one in 10^21 for a billion keys)."""
    cdef uint64_t hi, lo
    fingerprint(key, &hi, &lo)
    return hi, lo


def item_hash(value):
    """The 64-bit hash of a distinct item (a str, int, float, bool, bytes or None)."""
    cdef uint64_t h
    part_hash(value, SEED_ITEM, &h)
    return h


# --------------------------------------------------------- small helpers ----

cdef inline int64_t floordiv(int64_t a, int64_t b) noexcept nogil:
    cdef int64_t q = a / b
    if a % b != 0 and a < 0:
        q -= 1
    return q


cdef inline uint64_t ring_slot(int64_t b, uint32_t n) noexcept nogil:
    cdef int64_t r = b % <int64_t>n
    if r < 0:
        r += n
    return <uint64_t>r


cdef inline uint32_t item_stamp(int64_t b) noexcept nogil:
    # Items and sketch registers need 0 to mean "never": bucket numbers that
    # are 0 mod 2^32 are stored as 1, i.e. seen one bucket later, which stays
    # within the documented one-bucket bound. (Buckets use count == 0 instead.)
    cdef uint32_t s = <uint32_t><uint64_t>b
    return s if s != 0 else 1


cdef inline EntryHead* entry_at(Counter* c, uint64_t i) noexcept nogil:
    return <EntryHead*>(c.table + i * c.entry_size)


cdef inline int64_t now_ns() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <int64_t>ts.tv_sec * 1000000000 + ts.tv_nsec


cdef inline int64_t wall_ms() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_REALTIME, &ts)
    return <int64_t>ts.tv_sec * 1000 + ts.tv_nsec // 1000000


cdef inline void reset_entry(Counter* c, EntryHead* e) noexcept nogil:
    """Clear an entry's data. Called only while the slot is reserved (its key
    matches no writer's key), so no writer of the new key can be adding.
    A writer of the OLD key that found the slot just before the eviction may
    still land one update after this clear; that is the documented eviction
    race (the victim is the stalest key of its neighbourhood, so it is by
    construction not being updated now). Plain stores: the publishing CAS
    after it is a full barrier, so whoever sees the new key sees zeros."""
    memset(<char*>e + HEAD, 0, c.entry_size - HEAD)
    cdef uint32_t sk
    if c.agg == AGG_DISTINCT:
        sk = fc_load32(&e.sketch)
        if sk != 0 and sk <= c.n_sketches:
            memset(c.sketches + <size_t>(sk - 1) * SKETCH_SIZE, 0, SKETCH_SIZE)
    else:
        fc_store_i64(&e.sketch, 0)      # the ring's occupancy bits
    fc_store_i64(&e.last_ms, 0)


cdef EntryHead* await_publish(Counter* c, EntryHead* e, uint64_t hi, uint64_t lo) noexcept nogil:
    """Our key is reserved in slot e by an evictor that is clearing it. Wait
    for it to publish; if it does not within TAKEOVER_NS (it was killed, or
    is descheduled for that long), clear and publish ourselves. Returns e, or
    NULL when the slot went to another key meanwhile (the caller rescans)."""
    cdef fc_pair k, mine, reserved, seen
    cdef int64_t start = 0
    cdef int spins = 0
    mine.a = hi
    mine.b = lo
    reserved.a = hi & ~(<uint64_t>1)
    reserved.b = lo
    while True:
        k = fc_read_pair(&e.hi)
        if k.a == hi and k.b == lo:
            return e
        if k.a != reserved.a or k.b != lo:
            return NULL
        spins += 1
        if spins < 64:
            continue
        sched_yield()
        if start == 0:
            start = now_ns()
        elif now_ns() - start > TAKEOVER_NS:
            reset_entry(c, e)
            if fc_cas128(&e.hi, reserved, mine, &seen):
                fc_add64(&c.stats[ST_TAKEOVERS], 1)
            # else: the evictor published meanwhile; loop and see


cdef EntryHead* find_entry(Counter* c, uint64_t hi, uint64_t lo, bint claim, size_t line=0) noexcept nogil:
    """The entry of key (hi, lo) (hi with KEY_BITS set), or NULL. ``line``:
    the offset in the entry of the line the caller touches next (0: none),
    prefetched with each probed slot after the first, so that a displaced
    key's head and bucket miss together rather than one after the other.

    Linear probing over PROBE slots from lo & mask. Slots are never emptied
    (eviction replaces a key in place), so a key, if present, sits before the
    first empty slot of its neighbourhood and a reader may stop there.

    With ``claim``, a missing key takes the first empty slot: one 16-byte CAS
    from (0, 0) publishes the whole key at once, so no process ever sees half
    a key, and two processes inserting the same key agree (the loser's CAS
    returns the winner's key, which is the same). A full neighbourhood evicts
    its stalest entry (smallest last_ms):
      1. CAS its key to our key with bit 0 clear ("reserved": matches nobody);
      2. clear its buckets / items / sketch (reset_entry);
      3. CAS the reserved key to our key (publish), count the eviction.
    A SIGKILL between 1 and 3 leaves a reserved slot, which the next writer of
    that key finishes (await_publish); every other slot is untouched.
    Remaining race: two processes inserting the same new key into the same
    full neighbourhood pick the same victim (one CAS loses and rescans), so a
    duplicate needs their scans to disagree on the stalest entry."""
    cdef uint64_t start = lo & c.mask
    cdef fc_pair k, seen, mine, empty, reserved, victim_key
    cdef EntryHead* e
    cdef EntryHead* victim
    cdef EntryHead* got
    cdef int64_t lm, best
    cdef int attempt, i
    mine.a = hi
    mine.b = lo
    empty.a = 0
    empty.b = 0
    reserved.a = hi & ~(<uint64_t>1)
    reserved.b = lo
    victim_key.a = 0
    victim_key.b = 0
    for attempt in range(8):
        victim = NULL
        best = INT64_MAX
        for i in range(PROBE):
            e = entry_at(c, (start + <uint64_t>i) & c.mask)
            if i and line:
                fc_prefetch(<char*>e + line)
            k = fc_read_pair(&e.hi)
            if k.a == 0:
                if not claim:
                    return NULL
                if fc_cas128(&e.hi, empty, mine, &seen):
                    fc_add64(&c.stats[ST_KEYS], 1)
                    return e
                k = seen      # another process claimed it first: whose key?
            if k.a == hi and k.b == lo:
                return e
            if k.a == reserved.a and k.b == lo:
                if not claim:
                    return NULL   # being (re)initialised for this key: empty for now
                got = await_publish(c, e, hi, lo)
                if got != NULL:
                    return got
                break             # the slot changed hands: rescan
            if (k.a & 1) == 0:
                continue          # reserved for another key: not a victim
            lm = fc_load_i64(&e.last_ms)
            if lm < best:
                best = lm
                victim = e
                victim_key = k
        else:
            if not claim:
                return NULL
            if victim == NULL:
                continue
            if fc_cas128(&victim.hi, victim_key, reserved, &seen):
                reset_entry(c, victim)
                fc_cas128(&victim.hi, reserved, mine, &seen)   # fails only after a takeover, which published it
                fc_add64(&c.stats[ST_EVICTIONS], 1)
                return victim
            # the victim changed meanwhile (updated key, other evictor): rescan
    return NULL


# ---------------------------------------------------------- the updates -----

cdef inline double combine(int32_t agg, double acc, double v) noexcept nogil:
    if agg == AGG_MIN:
        return v if v < acc else acc
    if agg == AGG_MAX:
        return v if v > acc else acc
    if agg == AGG_COUNT:
        return 0.0
    return acc + v


cdef inline size_t bucket_bytes(int32_t agg) noexcept nogil:
    """A count bucket is the word {stamp, count} alone; the others add aux."""
    return 8 if agg == AGG_COUNT else sizeof(Bucket)


cdef inline fc_pair bucket_read(int32_t agg, const char* bk) noexcept nogil:
    """A torn-free read of a bucket: one atomic load for a count bucket."""
    cdef fc_pair p
    if agg == AGG_COUNT:
        p.a = fc_load64(bk)
        p.b = 0
        return p
    return fc_read_pair(bk)


cdef inline bint bucket_cas(int32_t agg, char* bk, fc_pair expected, fc_pair desired, fc_pair* seen) noexcept nogil:
    """fc_cas128 of a bucket, or of its first word alone for count."""
    if agg == AGG_COUNT:
        seen.a = fc_cas64_val(bk, expected.a, desired.a)
        seen.b = 0
        return seen.a == expected.a
    return fc_cas128(bk, expected, desired, seen)


cdef int slot_add(int32_t agg, char* bk, uint32_t s, double v) noexcept nogil:
    """Add one event stamped s to the bucket at bk with one CAS (8 bytes for
    count, 16 for the others). Returns 1 when it already holds a newer lap
    (the event is too old for it), else 0.

    The loop's guess may be torn; then the CAS fails and returns the true
    value, so each retry means another writer succeeded: lock-free, and no
    concurrent update is lost."""
    cdef fc_pair cur
    cdef fc_pair nxt
    cdef uint32_t cs, cc
    cdef double aux
    if agg == AGG_COUNT:
        v = 0.0
        cur.a = fc_peek64(bk)
        cur.b = 0
    else:
        cur = fc_peek_pair(bk)
    while True:
        cs = <uint32_t>cur.a
        cc = <uint32_t>(cur.a >> 32)
        if cc != 0 and cs == s:
            if cc != <uint32_t>0xFFFFFFFFU:
                cc += 1
            aux = combine(agg, fc_bits_to_double(cur.b), v)
        elif cc == 0 or <int32_t>(cs - s) < 0:
            cs = s            # empty, or an older lap of the ring: start this bucket
            cc = 1
            aux = v
        else:
            return 1
        nxt.a = <uint64_t>cs | (<uint64_t>cc << 32)
        nxt.b = fc_double_to_bits(aux)
        if bucket_cas(agg, bk, cur, nxt, &cur):
            return 0


cdef inline bint is_grouped(int32_t agg, uint32_t n) noexcept nogil:
    """Whether a counter keeps a grouped ring: a count of more than one group
    and at most 64 buckets."""
    return agg == AGG_COUNT and GROUP < n <= 64


cdef inline uint32_t ring_slots(int32_t agg, uint32_t n) noexcept nogil:
    """Slots in a counter's ring: n, or 4 groups for a grouped ring."""
    return 4 * GROUP if is_grouped(agg, n) else n


cdef inline uint32_t ring_start(int32_t agg, uint32_t n) noexcept nogil:
    """Where the ring starts in an entry: after the head, and after the 4
    coarse buckets of a grouped ring."""
    return HEAD + 4 * 8 if is_grouped(agg, n) else HEAD


cdef inline uint64_t slot_of(Counter* c, int64_t b) noexcept nogil:
    """Bucket number b's slot in the ring."""
    return (<uint64_t>b) & 63 if c.grouped else ring_slot(b, c.ring)


cdef inline char* coarse_at(EntryHead* e, int64_t g) noexcept nogil:
    """Group number g's coarse bucket (a grouped ring)."""
    return <char*>e + HEAD + 8 * ((<uint64_t>g) & 3)


cdef int bucket_add(Counter* c, EntryHead* e, int64_t b, double v) noexcept nogil:
    """Add one event to bucket b's slot (and, in a grouped ring, to its
    group's coarse bucket). Returns 1 when the slot already holds a newer
    lap (the event is too old), else 0."""
    cdef uint64_t slot = slot_of(c, b)
    cdef uint64_t bit = (<uint64_t>1) << (slot & 63)
    if c.n_buckets <= 64 and not (fc_load64(&e.sketch) & bit):
        fc_or64(&e.sketch, bit)         # before the CAS: see fc_or64
    if slot_add(c.agg, <char*>e + c.ring_off + bucket_bytes(c.agg) * slot, <uint32_t><uint64_t>b, v):
        return 1
    if c.grouped:
        # A newer lap in the coarse bucket (a group four or more later has
        # begun) is no loss: from then on every read's window holds at most
        # the end of b's group, which reads take from the fine buckets.
        slot_add(AGG_COUNT, coarse_at(e, b >> 4), <uint32_t><uint64_t>(b >> 4), 0.0)
    return 0


cdef inline void sketch_add(Counter* c, uint32_t sk, uint64_t h, uint32_t s) noexcept nogil:
    """Register = top HLL_P bits; rank = 1 + leading zeros of the rest (a
    guard bit bounds it), capped at HLL_R; record stamp s as that rank's
    newest sighting (atomic serial max)."""
    cdef uint32_t* regs = <uint32_t*>(c.sketches + <size_t>(sk - 1) * SKETCH_SIZE)
    cdef uint64_t j = h >> (64 - HLL_P)
    cdef uint64_t w = (h << HLL_P) | (<uint64_t>1 << (HLL_P - 1))
    cdef int rank = fc_clz64(w) + 1
    cdef SketchCache* cache = sketch_cache(regs)
    cdef uint64_t v
    cdef int32_t d
    cdef uint8_t had
    if rank > HLL_R:
        rank = HLL_R
    if not fc_max_u32_serial(&regs[j * HLL_R + <uint64_t>(rank - 1)], s):
        return
    v = fc_inc64(&cache.version)
    if not cache_lock(cache):
        return
    if cache.valid == v + 1:
        d = <int32_t>(cache.bucket - s)
        if d >= 0:
            if d < <int32_t>c.n_buckets:
                had = cache.eff[j]
                if rank > had:
                    cache.hist[had] -= 1
                    cache.hist[rank] += 1
                    cache.eff[j] = <uint8_t>rank
            cache.valid = v + 2   # older than the window: changes nothing visible
        # else: the raise may hide an older sighting visible at `bucket`; rebuild
    fc_store64(&cache.lock, 0)


cdef inline SketchCache* sketch_cache(uint32_t* regs) noexcept nogil:
    return <SketchCache*>(<char*>regs + SKETCH_REGS)


cdef bint cache_lock(SketchCache* cache) noexcept nogil:
    """Try once to take the cache's lock; nobody ever waits for it. A lock
    held for over TAKEOVER_NS (its holder was killed) is taken over."""
    cdef uint64_t held = fc_load64(&cache.lock)
    cdef uint64_t now = <uint64_t>now_ns()
    if held == 0:
        return fc_cas64(&cache.lock, 0, now)
    if now - held > TAKEOVER_NS:
        return fc_cas64(&cache.lock, held, now)
    return False


cdef inline fc_pair snapshot(void* p) noexcept nogil:
    # An atomic 16-byte read: CAS (0,0) -> (0,0) either fails and returns the
    # current value, or succeeds and changes nothing. Costs a locked write;
    # used only on the rare path (migration to a sketch).
    cdef fc_pair z, seen
    z.a = 0
    z.b = 0
    fc_cas128(p, z, z, &seen)
    return seen


cdef uint32_t attach_sketch(Counter* c, EntryHead* e) noexcept nogil:
    """Give entry e a sketch from the pool and copy its exact items into it.
    Returns the entry's sketch (1-based), or 0 when the pool is exhausted.

    No concurrent insert is lost: an item writer CASes the exact set, then
    loads e.sketch; this function CASes e.sketch, then reads the exact set.
    Both CASes are full barriers, so either the writer sees the sketch (and
    adds its item itself) or this migration sees the writer's item."""
    cdef uint64_t idx
    cdef uint32_t sk
    cdef Item* items = <Item*>(<char*>e + HEAD)
    cdef fc_pair it
    cdef int k
    if fc_load64(&c.stats[ST_SKETCHES]) >= c.n_sketches:
        return fc_load32(&e.sketch)
    idx = fc_add64(&c.stats[ST_SKETCHES], 1)
    if idx >= c.n_sketches:
        return fc_load32(&e.sketch)
    if not fc_cas32(&e.sketch, 0, <uint32_t>(idx + 1)):
        return fc_load32(&e.sketch)   # another process attached one: ours stays unused
    sk = <uint32_t>(idx + 1)
    for k in range(K_ITEMS):
        it = snapshot(&items[k])
        if it.a != 0:
            sketch_add(c, sk, it.a, <uint32_t>it.b)
    return sk


cdef int distinct_add(Counter* c, EntryHead* e, int64_t b, uint64_t item) noexcept nogil:
    """Record one sighting of an item. Each exact slot {item, stamp} changes
    only by 16-byte CAS, so an item and its stamp always go together.
    Slots fill in order and are never emptied (an item that left the window
    is replaced in place; only an eviction clears them all), so the empty
    slots are a suffix: a scan stops at the first one, and a key with two
    items costs one cache line instead of five."""
    cdef uint64_t h = fc_fmix64(item)
    cdef uint32_t s = item_stamp(b)
    cdef Item* items = <Item*>(<char*>e + HEAD)
    cdef fc_pair cur, nxt, upd
    cdef bint placed = False
    cdef int k, step
    cdef uint32_t sk, last, first
    if h == 0:
        h = <uint64_t>0x9E3779B97F4A7C15ULL   # 0 marks an empty slot
    nxt.a = h
    nxt.b = <uint64_t>s | (<uint64_t>s << 32)
    # Pass 0 refreshes h where it already is (its newest and oldest
    # sightings); pass 1 takes an empty slot or one whose item left the
    # window (relative to this event).
    for step in range(2):
        for k in range(K_ITEMS):
            cur = fc_peek_pair(&items[k])
            if cur.a == 0 and step == 0:
                break               # items fill slots in order: none after an empty one
            while True:
                if cur.a == h:
                    # {first, last} span the item's current run of sightings,
                    # each less than a window after the one before: a read at
                    # any time of [first, last + window) has a sighting in its
                    # window.
                    last = <uint32_t>cur.b
                    first = <uint32_t>(cur.b >> 32)
                    if <int32_t>(s - last) >= <int32_t>c.n_buckets:
                        first = s           # a new run: the old one left every window containing s
                        last = s
                    elif <int32_t>(s - last) > 0:
                        last = s
                    elif <int32_t>(first - s) > 0 and <int32_t>(first - s) < <int32_t>c.n_buckets:
                        first = s           # a late sighting extends the run backwards
                    upd.a = h
                    upd.b = <uint64_t>last | (<uint64_t>first << 32)
                    if upd.b == cur.b or fc_cas128(&items[k], cur, upd, &cur):
                        placed = True
                        break
                elif step == 1 and (cur.a == 0 or <int32_t>(s - <uint32_t>cur.b) >= <int32_t>c.n_buckets):
                    if fc_cas128(&items[k], cur, nxt, &cur):
                        placed = True
                        break
                else:
                    break
            if placed:
                break
        if placed:
            break
    sk = fc_load32(&e.sketch)
    if sk == 0 and not placed:
        sk = attach_sketch(c, e)
        if sk == 0:
            fc_add64(&c.stats[ST_SKETCH_FULL], 1)
            return 0
    if sk != 0:
        sketch_add(c, sk, h, s)
    return 0


cdef inline size_t update_line(Counter* c, int64_t b) noexcept nogil:
    """Where in an entry an update of bucket number b writes: its bucket
    (the first items, for distinct: not the whole 320-byte entry, since with
    a dozen counters per event, more prefetches than the core has line fill
    buffers measured slower)."""
    if c.agg != AGG_DISTINCT:
        return c.ring_off + bucket_bytes(c.agg) * slot_of(c, b)
    return 64


cdef inline void prefetch_lines(Counter* c, uint64_t lo, int64_t b) noexcept nogil:
    """Start loading the key's home slot and its bucket for bucket number b
    together: their addresses are known before the slot's key is compared,
    so the two misses overlap."""
    cdef char* e = <char*>entry_at(c, lo & c.mask)
    fc_prefetch(e)
    fc_prefetch(e + update_line(c, b))


cdef inline EntryHead* prefetch_probe(Counter* c, uint64_t hi, uint64_t lo, int64_t b) noexcept nogil:
    """The second prefetch stage, once the home slot's line has arrived: the
    home entry when it holds key (hi, lo) (a hint, checked again by whoever
    uses it), else NULL; when another key holds it, the key was displaced
    (a quarter of the keys of a half-full table), so the next slot's lines
    start loading now rather than at the update."""
    cdef EntryHead* e = entry_at(c, lo & c.mask)
    cdef fc_pair k = fc_peek_pair(&e.hi)
    if k.a == (hi | KEY_BITS) and k.b == lo:
        return e
    if k.a != 0:
        prefetch_lines(c, lo + 1, b)        # the next slot: (lo + 1) & mask
    return NULL


cdef inline uint64_t group_bits(int64_t g) noexcept nogil:
    """The slots of group number g in a grouped ring, as occupancy bits."""
    return (<uint64_t>0xFFFF) << (16 * ((<uint64_t>g) & 3))


cdef inline uint64_t fine_bits(Counter* c, int64_t bt) noexcept nogil:
    """The slots whose buckets a read at bucket bt visits: in a grouped ring
    those of bt's group and of its oldest bucket's (the groups between come
    from their coarse buckets); else every slot."""
    if not c.grouped:
        return ~(<uint64_t>0)
    return group_bits(bt >> 4) | group_bits((bt - c.n_buckets + 1) >> 4)


cdef inline void prefetch_used(Counter* c, EntryHead* e, int64_t bt) noexcept nogil:
    """Start loading every bucket line a read of this entry at bucket bt
    will visit (a ring of at most 64 buckets knows which it ever used):
    called between a key's update and its read, so a read's older buckets
    arrive together instead of one miss after another."""
    cdef uint64_t used, line, last = 0
    cdef char* base = <char*>e + c.ring_off
    if c.agg == AGG_DISTINCT or c.n_buckets > 64:
        return
    used = fc_load64(&e.sketch) & fine_bits(c, bt)
    while used:
        line = (<uint64_t>(base + bucket_bytes(c.agg) * <uint64_t>fc_ctz64(used))) >> 6
        if line != last:
            fc_prefetch(<void*>(line << 6))
            last = line
        used &= used - 1


cdef bint too_far_ahead(int64_t ts, int64_t mark, int64_t max_future) noexcept nogil:
    """An event time more than max_future after both the high-water mark and
    the wall clock: a bad clock. Beyond the mark alone is not enough: a mark
    set by an ancient first event (seconds sent as milliseconds) must let
    the events of now catch it up."""
    cdef int64_t now
    if mark == 0 or max_future < 0 or ts <= mark or <uint64_t>ts - <uint64_t>mark <= <uint64_t>max_future:
        return False
    now = wall_ms()
    return ts > now and <uint64_t>ts - <uint64_t>now > <uint64_t>max_future


cdef bint admit_time(int64_t* hwm, int64_t max_future, int64_t ts) noexcept nogil:
    """Raise the high-water mark to ts, or say ts is too far ahead to count."""
    cdef int64_t mark = fc_load_i64(hwm)
    if ts > mark:
        if too_far_ahead(ts, mark, max_future):
            return False
        fc_max_i64(hwm, ts)
    return True


cdef int update_counter(Counter* c, int64_t* hwm, int64_t max_future, uint64_t hi, uint64_t lo,
                        int64_t ts, double value, uint64_t item, EntryHead** found=NULL) noexcept nogil:
    """Count one event. Returns 0 when counted, 1 when skipped (see stats).
    ``found`` receives the key's entry, when it has one (a hint for a read
    of the same key that follows)."""
    cdef int64_t lm, b
    cdef EntryHead* e
    if not admit_time(hwm, max_future, ts):
        fc_add64(&c.stats[ST_FUTURE], 1)
        return 1
    if c.agg != AGG_COUNT and c.agg != AGG_DISTINCT and not isfinite(value):
        fc_add64(&c.stats[ST_NAN], 1)
        return 1
    b = floordiv(ts, c.res_ms)
    prefetch_lines(c, lo, b)
    e = find_entry(c, hi | KEY_BITS, lo, 1, update_line(c, b))
    if e == NULL:
        fc_add64(&c.stats[ST_DROPPED], 1)
        return 1
    if found != NULL:
        found[0] = e
    lm = fc_load_i64(&e.last_ms)
    if lm != 0 and b <= floordiv(lm, c.res_ms) - <int64_t>c.n_buckets:
        fc_add64(&c.stats[ST_TOO_OLD], 1)
        return 1
    fc_max_i64(&e.last_ms, ts)
    if c.agg == AGG_DISTINCT:
        return distinct_add(c, e, b, item)
    if bucket_add(c, e, b, value):
        fc_add64(&c.stats[ST_TOO_OLD], 1)
        return 1
    return 0


cdef inline Py_ssize_t visited(const int32_t* sel, Py_ssize_t i) noexcept nogil:
    """The i-th event update_run visits: sel[i], or i when it visits all."""
    return sel[i] if sel != NULL else i


cdef inline void start_lines(Counter* c, const uint64_t* lo, const int64_t* ts, const uint8_t* todo,
                             Py_ssize_t k) noexcept nogil:
    """update_run's first stage for event k: its lines, if it is counted."""
    if todo == NULL or todo[k] & RUN_COUNT:
        prefetch_lines(c, lo[k], floordiv(ts[k], c.res_ms))


cdef Py_ssize_t update_run(Counter* c, int64_t* hwm, int64_t max_future, const uint64_t* hi, const uint64_t* lo,
                           const int64_t* ts, const double* values, const uint64_t* items, Py_ssize_t n,
                           Py_ssize_t ahead, const uint8_t* todo=NULL, double* out=NULL,
                           const int32_t* sel=NULL) noexcept nogil:
    """Count n events of one counter (values / items may be NULL: 0).
    Software-pipelined: while event i is counted, the lines of event
    i + ahead are loading, so a batch pays the memory latency once, not per
    event (each update's locked instructions keep the next update's misses
    from starting early on their own). ``todo`` (NULL: RUN_COUNT for all)
    says per event what to do (see RUN_COUNT); RUN_READ reads the key into
    out[i] right after its event, while its lines are in cache. ``sel``
    (NULL: all) lists the events to visit, in order, n of them: the
    pipeline runs ahead by events visited, not by events skipped. Returns
    how many were counted."""
    cdef Py_ssize_t i, j, k, counted = 0
    cdef uint8_t f
    cdef EntryHead* e
    for i in range(ahead if ahead < n else n):
        start_lines(c, lo, ts, todo, visited(sel, i))
    for i in range(n):
        if ahead and i + ahead < n:
            start_lines(c, lo, ts, todo, visited(sel, i + ahead))
        # A second stage: halfway, the head line has arrived, and says
        # whether the key was displaced and which ring lines its read will
        # visit. (Not sooner: the locked instructions of the update below
        # wait for this load.)
        if ahead and i + ahead // 2 < n:
            j = visited(sel, i + ahead // 2)
            if todo == NULL or todo[j] & RUN_COUNT:
                e = prefetch_probe(c, hi[j], lo[j], floordiv(ts[j], c.res_ms))
                if e != NULL and out != NULL and todo != NULL and todo[j] & RUN_READ:
                    prefetch_used(c, e, floordiv(ts[j], c.res_ms))
        k = visited(sel, i)
        f = RUN_COUNT if todo == NULL else todo[k]
        e = NULL
        if f & RUN_FUTURE:
            fc_add64(&c.stats[ST_FUTURE], 1)
        elif f & RUN_COUNT and update_counter(c, hwm, max_future, hi[k], lo[k], ts[k],
                                              values[k] if values != NULL else 0.0,
                                              items[k] if items != NULL else 0, &e) == 0:
            counted += 1
        if f & RUN_READ and out != NULL:
            out[k] = read_counter_with(c, hi[k], lo[k], ts[k], False, 0.0, 0, e)
    return counted


# ------------------------------------------------------------- the reads ----

cdef double tau(double x) noexcept nogil:
    cdef double y = 1.0, z, zp
    if x == 0.0 or x == 1.0:
        return 0.0
    z = 1.0 - x
    while True:
        x = sqrt(x)
        zp = z
        y *= 0.5
        z -= (1.0 - x) * (1.0 - x) * y
        if zp == z:
            return z / 3.0


cdef double sigma(double x) noexcept nogil:
    cdef double y = 1.0, z, zp
    if x == 1.0:
        return INFINITY
    z = x
    while True:
        x *= x
        zp = z
        z += x * y
        y += y
        if zp == z:
            return z


cdef void hll_scan(Counter* c, uint32_t* regs, uint32_t sbt, uint8_t* eff, int32_t* hist) noexcept nogil:
    """A register's visible rank at stamp sbt is its largest rank whose newest
    sighting is inside the window ending at sbt."""
    cdef uint32_t* row
    cdef uint32_t st
    cdef int j, r
    for r in range(HLL_R + 1):
        hist[r] = 0
    for j in range(HLL_M):
        row = regs + j * HLL_R
        r = HLL_R
        while r > 0:
            st = fc_load32(&row[r - 1])
            if st != 0 and <uint32_t>(sbt - st) < c.n_buckets:
                break
            r -= 1
        eff[j] = <uint8_t>r
        hist[r] += 1


cdef double hll_from_hist(const int32_t* hist) noexcept nogil:
    """Ertl's improved raw estimator ("New cardinality estimation algorithms
    for HyperLogLog sketches", 2017, algorithm 6) with q = HLL_R - 1:
    unbiased from 0 to ~10^9 items without empirical correction tables,
    standard error ~1.04 / sqrt(4096)."""
    cdef double z, m = HLL_M
    cdef int r
    if hist[0] == HLL_M:
        return 0.0
    z = m * tau(1.0 - hist[HLL_R] / m)
    for r in range(HLL_R - 1, 0, -1):
        z = 0.5 * (z + hist[r])
    z += m * sigma(hist[0] / m)
    return 0.7213475204444817 * m * m / z


cdef double hll_estimate(Counter* c, uint32_t sk, uint32_t sbt) noexcept nogil:
    """Cardinality of the items seen in the window ending at stamp sbt: from
    the cache when it is current for sbt, else by a scan of the registers
    (which refreshes the cache, unless sbt is older than its stamp)."""
    cdef uint32_t* regs = <uint32_t*>(c.sketches + <size_t>(sk - 1) * SKETCH_SIZE)
    cdef SketchCache* cache = sketch_cache(regs)
    cdef uint64_t v = fc_load64(&cache.version)
    cdef int32_t hist[HLL_R + 1]
    cdef uint8_t eff[HLL_M]
    if not cache_lock(cache):
        hll_scan(c, regs, sbt, eff, hist)
        return hll_from_hist(hist)
    if cache.valid != v + 1 or cache.bucket != sbt:
        if cache.valid != 0 and <int32_t>(sbt - cache.bucket) < 0:
            fc_store64(&cache.lock, 0)      # a late read: keep the newer cache
            hll_scan(c, regs, sbt, eff, hist)
            return hll_from_hist(hist)
        hll_scan(c, regs, sbt, cache.eff, cache.hist)
        cache.bucket = sbt
        cache.valid = v + 1
    memcpy(hist, cache.hist, sizeof(hist))
    fc_store64(&cache.lock, 0)
    return hll_from_hist(hist)


cdef double empty_value(int32_t agg) noexcept nogil:
    if agg == AGG_MIN or agg == AGG_MAX or agg == AGG_AVG:
        return NAN
    return 0.0


cdef double read_counter(Counter* c, uint64_t hi, uint64_t lo, int64_t at) noexcept nogil:
    """The counter's value for key (hi, lo) at time ``at`` (see the module
    docstring for the bound)."""
    return read_counter_with(c, hi, lo, at, False, 0.0, 0)


cdef double read_counter_with(Counter* c, uint64_t hi, uint64_t lo, int64_t at,
                              bint plus_one, double value, uint64_t item, EntryHead* hint=NULL) noexcept nogil:
    """read_counter, and with ``plus_one`` the value as if one more event
    (``value``, ``item``) at ``at`` had been counted: the engine's dry run,
    which writes nothing. For a distinct key that has a sketch the extra item
    is not added (the sketch cannot say whether it already holds it).
    ``hint``: where an update just found the key (checked, not trusted).

    Never torn: each bucket is read with fc_read_pair; if the key is evicted
    during the read, the read reports an empty window rather than a mix of
    two keys."""
    cdef EntryHead* e
    cdef int64_t bt
    cdef uint32_t sbt, cs, cc, n = c.n_buckets, sk = 0
    cdef uint64_t count = 0
    cdef double acc, est
    cdef char* bk
    cdef size_t bsize = bucket_bytes(c.agg)
    cdef Item* items
    cdef fc_pair p, k
    cdef uint32_t i
    cdef int32_t agg = c.agg
    cdef bint seen = False
    cdef uint64_t used, occ
    cdef int64_t lm, g
    cdef uint64_t mixed = fc_fmix64(item)     # as distinct_add stores it
    if mixed == 0:
        mixed = <uint64_t>0x9E3779B97F4A7C15ULL
    hi |= KEY_BITS
    bt = floordiv(at, c.res_ms)
    sbt = <uint32_t><uint64_t>bt
    e = NULL
    if hint != NULL:
        k = fc_read_pair(&hint.hi)
        if k.a == hi and k.b == lo:
            e = hint
    if e == NULL:
        e = find_entry(c, hi, lo, 0)
    if plus_one and e != NULL:
        # As update_counter would: an event older than the key's ring is not counted.
        lm = fc_load_i64(&e.last_ms)
        if lm != 0 and bt <= floordiv(lm, c.res_ms) - <int64_t>n:
            plus_one = False
    if agg == AGG_DISTINCT:
        if e != NULL:
            items = <Item*>(<char*>e + HEAD)
            for i in range(K_ITEMS):
                # Live when the read falls in [first, last + window) of the
                # item's run of sightings (see distinct_add): so a read before
                # the item's newest sighting (a late event's decision) still
                # finds it.
                p = fc_peek_pair(&items[i])
                if p.a == 0:
                    break           # the rest are empty (see distinct_add)
                if <int32_t>(sbt - <uint32_t>(p.b >> 32)) >= 0 \
                        and <int32_t>(sbt - <uint32_t>p.b) < <int32_t>n:
                    count += 1
                    seen |= p.a == mixed
            sk = fc_load32(&e.sketch)
        acc = <double>(count + (1 if plus_one and not seen and sk == 0 else 0))
        if sk != 0 and sk <= c.n_sketches:
            est = hll_estimate(c, sk, sbt)
            est = <double>(<int64_t>(est + 0.5))
            if est > acc:
                acc = est
    else:
        acc = 0.0 if agg == AGG_SUM or agg == AGG_AVG else NAN
        if e != NULL:
            bk = <char*>e + c.ring_off
            # Small rings visit only the slots they ever used: a key with a
            # few events costs a few cache lines, not the whole ring.
            occ = fc_load64(&e.sketch) if n <= 64 else 0
            used = occ & fine_bits(c, bt)
            if c.grouped:
                # The groups strictly inside the window, whole, from their
                # coarse buckets (a read in the past whose group's coarse
                # bucket has moved on takes that group's fine buckets).
                g = ((bt - n + 1) >> 4) + 1
                while g < (bt >> 4):
                    p.a = fc_load64(coarse_at(e, g))
                    cc = <uint32_t>(p.a >> 32)
                    cs = <uint32_t>p.a
                    if cc != 0 and cs == <uint32_t><uint64_t>g:
                        count += cc
                    elif cc != 0 and <int32_t>(cs - <uint32_t><uint64_t>g) > 0:
                        used |= occ & group_bits(g)
                    g += 1
            i = 0
            while i < c.ring:
                if n <= 64:
                    if used == 0:
                        break
                    i = <uint32_t>fc_ctz64(used)
                    used &= used - 1
                p = bucket_read(agg, bk + bsize * i)
                i += 1
                cc = <uint32_t>(p.a >> 32)
                cs = <uint32_t>p.a
                if cc == 0 or <uint32_t>(sbt - cs) >= n:
                    continue
                count += cc
                if agg != AGG_COUNT:
                    acc = fold(agg, acc, fc_bits_to_double(p.b))
        if plus_one and (agg == AGG_COUNT or isfinite(value)):
            count += 1
            acc = fold(agg, acc, value)
        if agg == AGG_COUNT:
            acc = <double>count
        elif agg == AGG_AVG:
            acc = acc / <double>count if count else NAN
    if e != NULL:
        k = fc_read_pair(&e.hi)
        if k.a != hi or k.b != lo:
            return empty_value(agg)
    return acc


cdef inline double fold(int32_t agg, double acc, double v) noexcept nogil:
    """Fold one bucket's aux (or one value) into a read's running aggregate,
    which starts as NaN for min and max."""
    if agg == AGG_MIN:
        return v if not (v >= acc) else acc
    if agg == AGG_MAX:
        return v if not (v <= acc) else acc
    return acc + v


# ----------------------------------------------------------- the region -----

cdef size_t align_up(size_t x, size_t a):
    return (x + a - 1) & ~(a - 1)


# The lines of /proc/PID/smaps that count a mapping's huge pages: THP in
# private memory, in tmpfs / shared memory and in files; hugetlbfs pages.
_HUGE_FIELDS = (b"AnonHugePages:", b"ShmemPmdMapped:", b"FilePmdMapped:", b"Shared_Hugetlb:", b"Private_Hugetlb:")


def huge_page_bytes(size_t start, size_t end):
    """How many bytes of [start, end) this process maps with huge pages
    (2 MiB or more: a TLB entry for each instead of 512), from
    /proc/self/smaps; None where there is no such file."""
    cdef size_t lo, hi
    try:
        f = open("/proc/self/smaps", "rb")
    except OSError:
        return None
    total = 0
    inside = False
    with f:
        for line in f:
            if line[:1] and line[:1] in b"0123456789abcdef":     # a mapping's first line: "lo-hi perms ..."
                lo_s, _, hi_s = line.partition(b" ")[0].partition(b"-")
                lo, hi = int(lo_s, 16), int(hi_s, 16)
                inside = lo < end and hi > start
            elif inside and line.startswith(_HUGE_FIELDS):
                total += int(line.split()[1]) * 1024     # "Field:   N kB"
    return total


def _canonical(specs, capacities, sketches):
    return json.dumps({
        "counters": [
            {"name": name, "agg": agg, "window_ms": w, "resolution_ms": r, "capacity": cap}
            for (name, agg, w, r), cap in zip(specs, capacities)
        ],
        "sketches": sketches,
    }, sort_keys=True, separators=(",", ":")).encode()


def _differences(old: dict, new: dict) -> list:
    out = []
    oc = {c["name"]: c for c in old.get("counters", [])}
    nc = {c["name"]: c for c in new["counters"]}
    for name, c in nc.items():
        if name not in oc:
            out.append(f"counter {name!r} is not in the file")
            continue
        for field in ("agg", "window_ms", "resolution_ms", "capacity"):
            if oc[name].get(field) != c[field]:
                out.append(f"counter {name!r}: {field} is {oc[name].get(field)!r} in the file, {c[field]!r} requested")
    for name in oc:
        if name not in nc:
            out.append(f"counter {name!r} is in the file but not requested")
    if [c["name"] for c in old.get("counters", [])] != [c["name"] for c in new["counters"]] and not out:
        out.append("the counters are in another order")
    if old.get("sketches") != new["sketches"]:
        out.append(f"sketches is {old.get('sketches')!r} in the file, {new['sketches']!r} requested")
    return out or ["the definitions digest differs"]


cdef class CounterStore:
    """Sliding-window counters in one region of memory (see the module doc).

    ``specs``: a sequence of ``(name, agg, window_ms, resolution_ms)``; agg in
    count, sum, min, max, avg, distinct. ``capacity``: keys per counter (one
    int, or one per counter), rounded up to a power of two. ``sketches``:
    HyperLogLog sketches per distinct counter. ``path``: a file to share the
    region through (created if missing, validated if present; ``create=False``
    requires it to exist); None for private memory. ``max_future_ms``: how far
    past the high-water mark an event may be and still count (None: any).
    """

    def __cinit__(self):
        self.base = NULL
        self.counters = NULL
        self.size = 0

    def __init__(self, specs, *, path=None, capacity=65536, sketches=16, create=True,
                 max_future_ms=86_400_000, prefault=False):
        cdef int i
        # No specs is a region for the shared rules alone (a counter-less
        # rules file served by several workers).
        specs = [tuple(s) for s in specs]
        names = []
        for s in specs:
            if len(s) != 4:
                raise ValueError(f"a counter spec is (name, agg, window_ms, resolution_ms), got {s!r}")
            name, agg, w, r = s
            if not isinstance(name, str) or not name:
                raise ValueError(f"counter name must be a non-empty str, got {name!r}")
            if name in names:
                raise ValueError(f"duplicate counter {name!r}")
            names.append(name)
            if agg not in AGGS:
                raise ValueError(f"counter {name!r}: agg must be one of {', '.join(AGGS)}, got {agg!r}")
            if type(w) is not int or type(r) is not int or w < 1 or r < 1 or r > w:
                raise ValueError(f"counter {name!r}: need integer 1 <= resolution_ms <= window_ms, got {w!r}, {r!r}")
            if -(-w // r) + 1 > MAX_BUCKETS:
                raise ValueError(f"counter {name!r}: window / resolution is {-(-w // r)} buckets, at most {MAX_BUCKETS - 1}")
        if isinstance(capacity, int):
            caps = [capacity] * len(specs)
        else:
            caps = list(capacity)
            if len(caps) != len(specs):
                raise ValueError(f"capacity has {len(caps)} values for {len(specs)} counters")
        caps = [1 << max(int(c) - 1, 0).bit_length() for c in caps if _check_cap(c)]
        if type(sketches) is not int or sketches < 0 or sketches > 1 << 20:
            raise ValueError(f"sketches must be an int in [0, 2^20], got {sketches!r}")
        if max_future_ms is not None and (type(max_future_ms) is not int or max_future_ms < 0):
            raise ValueError(f"max_future_ms must be a non-negative int or None, got {max_future_ms!r}")
        self.max_future_ms = -1 if max_future_ms is None else max_future_ms
        self._names = tuple(names)
        self._aggs = tuple(s[1] for s in specs)
        self._index = {n: i for i, n in enumerate(names)}
        self._path = None if path is None else os.fspath(path)

        # Layout: computed identically by every process from the specs.
        text = _canonical(specs, caps, sketches)
        header_size = align_up(HEADER_FIXED + DESC_SIZE * len(specs) + len(text), PAGE)
        descs = []
        off = header_size
        for (name, agg, w, r), cap in zip(specs, caps):
            nb = -(-w // r) + 1
            a = AGGS.index(agg)
            # Whole cache lines: a head never straddles two (measured:
            # decide mean 3.71 -> 3.50 us, p99 8.78 -> 7.62 us at 300k users).
            esize = align_up(ring_start(a, nb) + (16 * K_ITEMS if a == AGG_DISTINCT
                                                  else bucket_bytes(a) * ring_slots(a, nb)), 64)
            table = off
            off = align_up(off + cap * esize, PAGE)
            pool = off
            ns = sketches if a == AGG_DISTINCT else 0
            off = align_up(off + ns * SKETCH_BYTES, PAGE)
            descs.append((table, cap, esize, nb, a, w, r, pool, ns))
        self.rules_area = off
        total = off + RULES_AREA
        da = fc_hash(PyBytes_AS_STRING(text), PyBytes_GET_SIZE(text), 1)
        db = fc_hash(PyBytes_AS_STRING(text), PyBytes_GET_SIZE(text), 2)
        header = bytearray(HEADER_FIXED + DESC_SIZE * len(specs) + len(text))
        struct.pack_into("<8sIIQQQQqI", header, 0, MAGIC, LAYOUT_VERSION, len(specs), da, db,
                         total, header_size, 0, len(text))
        for i, d in enumerate(descs):
            struct.pack_into("<QQQIIqqQI", header, HEADER_FIXED + DESC_SIZE * i, *d)
        header[HEADER_FIXED + DESC_SIZE * len(specs):] = text

        if self._path is None:
            self._map_anonymous(total)
            memcpy(self.base, PyBytes_AS_STRING(bytes(header)), len(header))
        else:
            self._map_file(bytes(header), total, da, db, text, create)

        if prefault:
            self._prefault()
        self.n_counters = len(specs)
        self.counters = <Counter*>calloc(max(len(specs), 1), sizeof(Counter))
        if self.counters == NULL:
            raise MemoryError()
        self.hwm = <int64_t*>(self.base + 48)
        for i, d in enumerate(descs):
            table, cap, esize, nb, a, w, r, pool, ns = d
            self.counters[i].table = self.base + <size_t>table
            self.counters[i].mask = cap - 1
            self.counters[i].entry_size = esize
            self.counters[i].n_buckets = nb
            self.counters[i].grouped = is_grouped(a, nb)
            self.counters[i].ring = ring_slots(a, nb)
            self.counters[i].ring_off = ring_start(a, nb)
            self.counters[i].agg = a
            self.counters[i].window_ms = w
            self.counters[i].res_ms = r
            self.counters[i].sketches = self.base + <size_t>pool
            self.counters[i].n_sketches = ns
            self.counters[i].stats = <uint64_t*>(self.base + HEADER_FIXED + DESC_SIZE * i + 64)

    cdef uint64_t rules_seq(self) noexcept nogil:
        """The rules area's sequence number: 0 when no rules were published,
        odd while a publisher is writing, changed by every publication."""
        return fc_load64(self.base + self.rules_area)

    def rules_generation(self):
        return self.rules_seq()

    def publish_rules(self, str path, str text):
        """Make (path, text) the rules of every process on this region;
        returns the new sequence number. A publisher killed mid-write leaves
        the area odd; the next publisher takes it over after a second."""
        cdef char* area = self.base + self.rules_area
        cdef uint64_t v, mine
        cdef int64_t waited = now_ns()
        data_path = path.encode("utf-8", "surrogatepass")
        data_text = text.encode("utf-8", "surrogatepass")
        if 24 + len(data_path) + len(data_text) > RULES_AREA:
            raise ValueError(f"rules file too large for the shared rules area ({len(data_text)} bytes)")
        while True:
            v = fc_load64(area)
            if v & 1 == 0 and fc_cas64(area, v, v + 1):
                mine = v + 1
                break
            if v & 1 and now_ns() - waited > 1000000000 and fc_cas64(area, v, v + 2):
                mine = v + 2            # an abandoned publication: ours now
                break
            sched_yield()
        (<uint64_t*>area)[1] = len(data_path)
        (<uint64_t*>area)[2] = len(data_text)
        memcpy(area + 24, PyBytes_AS_STRING(data_path), len(data_path))
        memcpy(area + 24 + len(data_path), PyBytes_AS_STRING(data_text), len(data_text))
        fc_store_i64(area, <int64_t>(mine + 1))     # release: the text is visible before the even seq
        return mine + 1

    def read_rules(self):
        """(seq, path, text) of the published rules, or (0, None, None)."""
        cdef char* area = self.base + self.rules_area
        cdef uint64_t s1, s2, np, nt
        while True:
            s1 = fc_load64(area)
            if s1 == 0:
                return 0, None, None
            if s1 & 1:
                sched_yield()
                continue
            np = (<uint64_t*>area)[1]
            nt = (<uint64_t*>area)[2]
            if 24 + np + nt > RULES_AREA:
                continue                # torn lengths: the seq check below fails too
            path = area[24:24 + np].decode("utf-8", "surrogatepass")
            text = area[24 + np:24 + np + nt].decode("utf-8", "surrogatepass")
            s2 = fc_load64(area)
            if s1 == s2:
                return s1, path, text

    def _prefault(self):
        """Fault every page of the region in now, writable, as a JVM's
        AlwaysPreTouch does: otherwise each new key's first page costs two
        faults (a read maps the zero page, the CAS then copies it) on the
        decision path. madvise(MADV_POPULATE_WRITE) (Linux 5.14) writes
        nothing; on older kernels the region is left to fault lazily."""
        cdef int rc
        madvise(self.base, self.size, MADV_HUGEPAGE)   # fewer faults and TLB misses, where allowed
        rc = madvise(self.base, self.size, MADV_POPULATE_WRITE)
        return rc == 0

    def _map_anonymous(self, size_t total):
        cdef void* p = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        if p == MAP_FAILED:
            raise MemoryError(f"cannot map {total} bytes of counter memory")
        self.base = <char*>p
        self.size = total

    def _map_file(self, bytes header, size_t total, da, db, bytes text, bint create):
        path = self._path
        fd = -1
        if create and not os.path.exists(path):
            # Build the file under a private name, then link it into place:
            # link fails if the path exists, so two processes creating at once
            # agree on one file and no one ever maps a half-written header.
            tmp = f"{path}.{os.getpid()}.{id(self)}.tmp"
            tfd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.ftruncate(tfd, total)
                os.pwrite(tfd, header, 0)
                try:
                    os.link(tmp, path)
                except FileExistsError:
                    pass
            finally:
                os.close(tfd)
                os.unlink(tmp)
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            raise StateError(f"{path}: no such counter-state file (create=False)") from None
        except OSError as exc:
            raise StateError(f"{path}: cannot open the counter-state file: {exc.strerror}") from None
        try:
            size = os.fstat(fd).st_size
            head = os.pread(fd, HEADER_FIXED, 0)
            if len(head) < HEADER_FIXED or head[:8] != MAGIC:
                if head[:7] == MAGIC[:7]:
                    raise StateError(f"{path}: a counter-state file of another layout "
                                     f"(magic {head[:8]!r}, this build reads {MAGIC!r})")
                raise StateError(f"{path}: not a fraudcore counter-state file (bad magic)")
            version, n, fa, fb, ftotal, fheader, _, flen = struct.unpack_from("<IIQQQQqI", head, 8)
            if version != LAYOUT_VERSION:
                raise StateError(f"{path}: written with counter layout version {version}, "
                                 f"this build uses version {LAYOUT_VERSION}; remove the file or use a matching build")
            if size < ftotal or size < HEADER_FIXED + DESC_SIZE * n + flen:
                raise StateError(f"{path}: truncated counter-state file ({size} bytes, its header says {ftotal})")
            if (fa, fb) != (da, db) or ftotal != total:
                old_text = os.pread(fd, flen, HEADER_FIXED + DESC_SIZE * n)
                try:
                    old = json.loads(old_text)
                except ValueError:
                    old = {}
                diffs = _differences(old, json.loads(text))
                raise StateError(f"{path}: written with other counter definitions: " + "; ".join(diffs))
            p = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
            if p == MAP_FAILED:
                raise StateError(f"{path}: cannot map {total} bytes")
            self.base = <char*>p
            self.size = total
        finally:
            os.close(fd)

    def __dealloc__(self):
        if self.base != NULL:
            munmap(self.base, self.size)
            self.base = NULL
        if self.counters != NULL:
            free(self.counters)
            self.counters = NULL

    def flush(self):
        """Write a file-backed region's dirty pages to its file and wait
        (msync MS_SYNC); private memory has nothing to flush."""
        if self.base != NULL and self._path is not None:
            if msync(self.base, self.size, MS_SYNC) != 0:
                raise OSError(errno, f"msync {self._path}: {os.strerror(errno)}")

    def close(self):
        """Unmap the region (the file stays). Further use raises ValueError."""
        if self.base != NULL:
            munmap(self.base, self.size)
            self.base = NULL

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def path(self):
        return self._path

    @property
    def names(self):
        return self._names

    @property
    def nbytes(self):
        return self.size

    def index(self, name):
        """The counter number of ``name``."""
        return self._index[name]

    cdef Counter* counter_ptr(self, int counter) except NULL:
        if self.base == NULL:
            raise ValueError("the counter store is closed")
        if counter < 0 or counter >= self.n_counters:
            raise IndexError(f"no counter {counter} (the store has {self.n_counters})")
        return &self.counters[counter]

    cdef int update(self, int counter, uint64_t hi, uint64_t lo, int64_t ts_ms, double value, uint64_t item,
                    void** entry=NULL) except -1:
        """Count one event for key (hi, lo) (a key_hash fingerprint). ``value``
        feeds sum/min/max/avg, ``item`` (an item_hash) feeds distinct.
        Returns 0 when counted, 1 when skipped (too old, too far in the
        future, non-finite value: see stats()). ``entry`` receives a hint
        for read / read_with of the same key, and the lines such a read
        will visit are being loaded meanwhile."""
        cdef Counter* c = self.counter_ptr(counter)
        cdef EntryHead* e = NULL
        cdef int rc = update_counter(c, self.hwm, self.max_future_ms, hi, lo, ts_ms, value, item, &e)
        if entry != NULL:
            entry[0] = <void*>e
            if e != NULL:
                prefetch_used(c, e, floordiv(ts_ms, c.res_ms))
        return rc

    cdef double read(self, int counter, uint64_t hi, uint64_t lo, int64_t at_ms, void* entry=NULL) except? -1.0:
        cdef Counter* c = self.counter_ptr(counter)
        return read_counter_with(c, hi, lo, at_ms, False, 0.0, 0, <EntryHead*>entry)

    cdef bint admit(self, int64_t ts_ms) noexcept nogil:
        """What update() checks first, for an event about to be counted:
        raise the high-water mark to ts_ms, or say it is too far ahead."""
        return admit_time(self.hwm, self.max_future_ms, ts_ms)

    cdef Py_ssize_t run(self, int counter, Py_ssize_t n, const uint64_t* hi, const uint64_t* lo, const int64_t* ts,
                        const double* values, const uint64_t* items, const uint8_t* todo, double* out,
                        Py_ssize_t ahead, const int32_t* sel=NULL) noexcept nogil:
        """update_run over one counter's column of a batch (the n events
        ``sel`` lists, or the first n), with the high-water mark already
        checked event by event (admit; RUN_FUTURE)."""
        return update_run(&self.counters[counter], self.hwm, -1, hi, lo, ts, values, items, n, ahead, todo, out,
                          sel)

    cdef void prefetch(self, int counter, uint64_t lo, int64_t ts_ms) noexcept nogil:
        """Start loading the cache lines an update or read of key (·, lo) at
        ts_ms will touch first (the key's home slot and its bucket), so that
        the engine's per-counter cache misses overlap instead of queueing."""
        prefetch_lines(&self.counters[counter], lo, floordiv(ts_ms, self.counters[counter].res_ms))

    cdef void probe(self, int counter, uint64_t hi, uint64_t lo, int64_t ts_ms) noexcept nogil:
        """prefetch()'s second stage, once its lines have arrived: when
        another key holds key (hi, lo)'s home slot, start loading the next
        slot's lines."""
        prefetch_probe(&self.counters[counter], hi, lo, floordiv(ts_ms, self.counters[counter].res_ms))

    cdef double read_with(self, int counter, uint64_t hi, uint64_t lo, int64_t at_ms,
                          double value, uint64_t item, void* entry=NULL) except? -1.0:
        """read(), as if the event (value, item) at at_ms had been counted
        (unless update() would skip it: too far in the future, too old)."""
        cdef Counter* c = self.counter_ptr(counter)
        cdef bint counted = not too_far_ahead(at_ms, fc_load_i64(self.hwm), self.max_future_ms)
        return read_counter_with(c, hi, lo, at_ms, counted, value, item, <EntryHead*>entry)

    cdef int _counter_arg(self, object counter) except -1:
        if isinstance(counter, str):
            try:
                return self._index[counter]
            except KeyError:
                raise KeyError(f"no counter named {counter!r}") from None
        return counter

    def update_key(self, counter, key, int64_t ts_ms, double value=0.0, item=None):
        """Count one event: ``counter`` is a name or number, ``key`` a value or
        tuple of values, ``item`` the distinct value (distinct counters).
        Returns True when counted, False when skipped (see stats())."""
        cdef uint64_t hi, lo, h = 0
        cdef int i = self._counter_arg(counter)
        fingerprint(key, &hi, &lo)
        if item is not None or self.counter_ptr(i).agg == AGG_DISTINCT:
            part_hash(item, SEED_ITEM, &h)
        return self.update(i, hi, lo, ts_ms, value, h) == 0

    def read_key(self, counter, key, int64_t at_ms):
        """The counter's value for ``key`` at time ``at_ms``: an int for count
        and distinct, a float otherwise (NaN for min/max/avg of an empty window)."""
        cdef uint64_t hi, lo
        cdef int i = self._counter_arg(counter)
        cdef double v
        fingerprint(key, &hi, &lo)
        v = self.read(i, hi, lo, at_ms)
        if self.counters[i].agg == AGG_COUNT or self.counters[i].agg == AGG_DISTINCT:
            return int(v)
        return v

    def update_hash(self, int counter, uint64_t hi, uint64_t lo, int64_t ts_ms, double value=0.0, uint64_t item=0):
        """update_key with a precomputed fingerprint and item hash."""
        return self.update(counter, hi, lo, ts_ms, value, item) == 0

    def update_many(self, counter, const uint64_t[::1] hi, const uint64_t[::1] lo, const int64_t[::1] ts_ms,
                    const double[::1] values=None, const uint64_t[::1] items=None, Py_ssize_t lookahead=8):
        """Count a batch for one counter: keys as key_hash fingerprints, item
        hashes as item_hash gives them, all numpy arrays of one length
        (values, items optional). The same updates as update_hash one by one,
        pipelined ``lookahead`` events ahead (0: not). Returns how many
        were counted (see stats() for why the others were not)."""
        cdef Counter* c = self.counter_ptr(self._counter_arg(counter))
        cdef Py_ssize_t n = hi.shape[0], counted
        if lo.shape[0] != n or ts_ms.shape[0] != n or (values is not None and values.shape[0] != n) \
                or (items is not None and items.shape[0] != n):
            raise ValueError("update_many: hi, lo, ts_ms (and values, items) must have the same length")
        if lookahead < 0:
            raise ValueError(f"update_many: lookahead must be >= 0, got {lookahead}")
        if n == 0:
            return 0
        with nogil:
            counted = update_run(c, self.hwm, self.max_future_ms, &hi[0], &lo[0], &ts_ms[0],
                                 &values[0] if values is not None else NULL,
                                 &items[0] if items is not None else NULL, n, lookahead)
        return counted

    def read_hash(self, int counter, uint64_t hi, uint64_t lo, int64_t at_ms):
        return self.read(counter, hi, lo, at_ms)

    def sketch_estimate(self, counter, key, int64_t at_ms, bint cached=True):
        """The raw HyperLogLog estimate of a distinct key's sketch at ``at_ms``
        (None when the key has no sketch): through the estimate cache, as
        reads are, or with ``cached=False`` by a full scan of the registers.
        The two must agree; the tests hold them to it."""
        cdef uint64_t hi, lo
        cdef int i = self._counter_arg(counter)
        cdef Counter* c = &self.counters[i]
        cdef EntryHead* e
        cdef uint32_t sk, sbt
        cdef int32_t hist[HLL_R + 1]
        cdef uint8_t eff[HLL_M]
        if c.agg != AGG_DISTINCT:
            raise ValueError(f"counter {self._names[i]!r} is not distinct")
        fingerprint(key, &hi, &lo)
        e = find_entry(c, hi | KEY_BITS, lo, 0)
        sk = fc_load32(&e.sketch) if e != NULL else 0
        if sk == 0 or sk > c.n_sketches:
            return None
        sbt = <uint32_t><uint64_t>floordiv(at_ms, c.res_ms)
        if cached:
            return hll_estimate(c, sk, sbt)
        hll_scan(c, <uint32_t*>(c.sketches + <size_t>(sk - 1) * SKETCH_SIZE), sbt, eff, hist)
        return hll_from_hist(hist)

    def bytes_per_key(self, counter):
        """Bytes one key takes in the counter's table (a sketch, for distinct
        keys with more than 16 items, comes from the pool: ``sketch_bytes``)."""
        return self.counter_ptr(self._counter_arg(counter)).entry_size

    @property
    def sketch_bytes(self):
        return SKETCH_BYTES

    def adopt(self, int counter, CounterStore other, int other_counter):
        """Copy another store's counter (same definition and capacity) into
        ``counter`` of this one: its keys, buckets, sketches and statistics.
        How a reload keeps the state of the counters it does not change.
        Not for stores other processes are writing."""
        cdef Counter* dst = self.counter_ptr(counter)
        cdef Counter* src = other.counter_ptr(other_counter)
        if (dst.agg != src.agg or dst.window_ms != src.window_ms or dst.res_ms != src.res_ms
                or dst.mask != src.mask or dst.entry_size != src.entry_size or dst.n_sketches != src.n_sketches):
            raise ValueError(f"counter {self._names[counter]!r}: definitions or capacities differ, cannot adopt")
        memcpy(dst.table, src.table, <size_t>(src.mask + 1) * src.entry_size)
        memcpy(dst.sketches, src.sketches, <size_t>src.n_sketches * SKETCH_SIZE)
        memcpy(dst.stats, src.stats, N_STATS * sizeof(uint64_t))
        fc_max_i64(self.hwm, fc_load_i64(other.hwm))

    def stats(self):
        """Per counter: keys held, capacity, bytes, and the event outcomes;
        plus the region's size, path and high-water mark."""
        cdef int i, j
        cdef Counter* c
        if self.base == NULL:
            raise ValueError("the counter store is closed")
        out = {}
        for i in range(self.n_counters):
            c = &self.counters[i]
            raw = {STAT_NAMES[j]: fc_load64(&c.stats[j]) for j in range(N_STATS)}
            cap = c.mask + 1
            d = {
                "agg": self._aggs[i],
                "window_ms": c.window_ms,
                "resolution_ms": c.res_ms,
                "buckets": c.n_buckets,
                "capacity": cap,
                "keys": min(raw["keys_claimed"], cap),
                "bytes_per_key": c.entry_size,
                "bytes": cap * c.entry_size + c.n_sketches * SKETCH_BYTES,
                "evictions": raw["evictions"],
                "too_old": raw["too_old"],
                "future_skipped": raw["future_skipped"],
                "nan_skipped": raw["nan_skipped"],
                "dropped": raw["dropped"],
                "takeovers": raw["takeovers"],
            }
            if c.agg == AGG_DISTINCT:
                d["sketches"] = c.n_sketches
                d["sketches_in_use"] = min(raw["sketch_allocations"], c.n_sketches)
                d["sketch_pool_full"] = raw["sketch_pool_full"]
            out[self._names[i]] = d
        return {
            "counters": out,
            "bytes": self.size,
            "huge_page_bytes": huge_page_bytes(<size_t>self.base, <size_t>self.base + self.size),
            "path": self._path,
            "high_water_ms": fc_load_i64(self.hwm),
        }

    def bench_update(self, int counter, Py_ssize_t n, Py_ssize_t keys=1024, int64_t ts_ms=1_700_000_000_000,
                     Py_ssize_t lookahead=0):
        """Time n updates over ``keys`` keys in C (no Python per update), as
        update_many runs them (``lookahead`` 0: one after another): ns per
        update. The keys (fmix64 of i mod keys) are prepared untimed."""
        cdef Counter* c = self.counter_ptr(counter)
        cdef Py_ssize_t i
        cdef int64_t t0, t1
        cdef uint64_t* his = <uint64_t*>calloc(max(n, 1), sizeof(uint64_t))
        cdef uint64_t* los = <uint64_t*>calloc(max(n, 1), sizeof(uint64_t))
        cdef int64_t* tss = <int64_t*>calloc(max(n, 1), sizeof(int64_t))
        cdef double* vals = <double*>calloc(max(n, 1), sizeof(double))
        cdef uint64_t* its = <uint64_t*>calloc(max(n, 1), sizeof(uint64_t))
        try:
            if his == NULL or los == NULL or tss == NULL or vals == NULL or its == NULL:
                raise MemoryError()
            for i in range(n):
                his[i] = fc_fmix64(<uint64_t>(i % keys) + 1)
                los[i] = fc_fmix64(his[i])
                tss[i] = ts_ms + i
                vals[i] = 1.0
                its[i] = <uint64_t>i
            with nogil:
                t0 = now_ns()
                update_run(c, self.hwm, self.max_future_ms, his, los, tss, vals, its, n, lookahead)
                t1 = now_ns()
        finally:
            free(his)
            free(los)
            free(tss)
            free(vals)
            free(its)
        return (t1 - t0) / <double>max(n, 1)

    def bench_read(self, int counter, Py_ssize_t n, Py_ssize_t keys=1024, int64_t at_ms=1_700_000_000_000):
        """Time n reads over ``keys`` keys in C: ns per read."""
        cdef Counter* c = self.counter_ptr(counter)
        cdef Py_ssize_t i
        cdef uint64_t hi, lo
        cdef int64_t t0, t1
        cdef double sink = 0
        with nogil:
            t0 = now_ns()
            for i in range(n):
                hi = fc_fmix64(<uint64_t>(i % keys) + 1)
                lo = fc_fmix64(hi)
                sink += read_counter(c, hi, lo, at_ms)
            t1 = now_ns()
        return (t1 - t0) / <double>n


cdef char* bench_map(str who, size_t size, bint huge) except NULL:
    """Private memory for a memory benchmark, in huge pages where allowed or
    (huge False) in 4 KiB pages, as the Python heap's objects are."""
    cdef char* m = <char*>mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                               -1, 0)
    if m == <char*>MAP_FAILED:
        raise MemoryError(f"{who}: cannot map {size:,} bytes")
    madvise(m, size, MADV_HUGEPAGE if huge else MADV_NOHUGEPAGE)
    return m


def bench_chase(const uint32_t[::1] order, Py_ssize_t steps):
    """Time ``steps`` dependent loads, each from the cache line the previous
    one named, over len(order) lines (64 bytes each) of private memory in
    huge pages where allowed, linked in ``order`` as one cycle: ns per load,
    the latency of one miss at that footprint (what a counter update made
    one after another cannot hide)."""
    cdef Py_ssize_t n = order.shape[0], k
    cdef size_t size = <size_t>n * 64
    cdef char* m
    cdef uint64_t p
    cdef int64_t t0, t1
    if n < 2 or steps < 1:
        raise ValueError("bench_chase needs at least 2 lines and 1 step")
    m = bench_map("bench_chase", size, True)
    try:
        with nogil:
            for k in range(n):
                (<uint64_t*>(m + <size_t>order[k] * 64))[0] = <uint64_t>order[(k + 1) % n] * 64
            p = <uint64_t>order[0] * 64
            t0 = now_ns()
            for k in range(steps):
                p = fc_load64(m + p)
            t1 = now_ns()
    finally:
        munmap(m, size)
    return (t1 - t0) / <double>steps


def bench_lines(const uint32_t[::1] order, Py_ssize_t steps, Py_ssize_t ahead, bint huge=True):
    """Time ``steps`` loads of the cache lines order[0], order[1], ... of
    len(order) lines of private memory, none waiting for another, with the
    line ``ahead`` loads on prefetched: ns per line, as many lines as the
    core can fetch at once allow at that footprint, in huge pages or (huge
    False) in 4 KiB ones. A batch's floor, where an update made one after
    another pays bench_chase's latency. Returns (ns per line, the sum of
    the words loaded: each line holds its own number)."""
    cdef Py_ssize_t n = order.shape[0], k
    cdef size_t size = <size_t>n * 64
    cdef char* m
    cdef uint64_t total = 0
    cdef int64_t t0, t1
    if n < 2 or not 1 <= steps <= n or ahead < 0:
        raise ValueError("bench_lines needs at least 2 lines, 1 <= steps <= lines and ahead >= 0")
    m = bench_map("bench_lines", size, huge)
    try:
        with nogil:
            for k in range(n):
                (<uint64_t*>(m + <size_t>k * 64))[0] = <uint64_t>k
            t0 = now_ns()
            for k in range(steps):
                if k + ahead < steps:
                    fc_prefetch(m + <size_t>order[k + ahead] * 64)
                total += fc_load64(m + <size_t>order[k] * 64)
            t1 = now_ns()
    finally:
        munmap(m, size)
    return (t1 - t0) / <double>steps, total


def _check_cap(c):
    if type(c) is not int or c < 1 or c > 1 << 32:
        raise ValueError(f"capacity must be an int in [1, 2^32], got {c!r}")
    return True
