# cython: language_level=3
from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uint64_t

cdef extern from "atomics.h" nogil:
    ctypedef struct fc_pair:
        uint64_t a
        uint64_t b
    bint fc_cas128(void* p, fc_pair expected, fc_pair desired, fc_pair* seen)
    fc_pair fc_peek_pair(const void* p)
    fc_pair fc_read_pair(const void* p)
    uint64_t fc_load64(const void* p)
    uint64_t fc_peek64(const void* p)
    uint64_t fc_cas64_val(void* p, uint64_t expected, uint64_t desired)
    int64_t fc_load_i64(const void* p)
    uint32_t fc_load32(const void* p)
    void fc_store_i64(void* p, int64_t v)
    uint64_t fc_add64(void* p, uint64_t v)
    void fc_or64(void* p, uint64_t v)
    bint fc_cas32(void* p, uint32_t expected, uint32_t desired)
    bint fc_cas64(void* p, uint64_t expected, uint64_t desired)
    void fc_max_i64(void* p, int64_t v)
    bint fc_max_u32_serial(void* p, uint32_t v)
    uint64_t fc_inc64(void* p)
    void fc_store64(void* p, uint64_t v)

cdef extern from "prefetch.h" nogil:
    void fc_prefetch(const void* p)

cdef extern from "fchash.h" nogil:
    uint64_t fc_hash(const void* key, size_t length, uint64_t seed)
    uint64_t fc_combine(uint64_t acc, uint64_t h)
    uint64_t fc_fmix64(uint64_t k)

# Aggregations (stored in the region's header: values are part of the layout).
cdef enum:
    AGG_COUNT = 0
    AGG_SUM = 1
    AGG_MIN = 2
    AGG_MAX = 3
    AGG_AVG = 4
    AGG_DISTINCT = 5

# Per-counter statistics words, in the counter's descriptor in the header.
cdef enum:
    ST_KEYS = 0          # slots ever claimed (keys held = min(this, capacity))
    ST_EVICTIONS = 1
    ST_TOO_OLD = 2       # events older than the key's window: not counted
    ST_FUTURE = 3        # events beyond the high-water mark + max_future_ms: not counted
    ST_NAN = 4           # non-finite values of sum/min/max/avg: not counted
    ST_SKETCHES = 5      # sketch allocations attempted (in use = min(this, pool))
    ST_SKETCH_FULL = 6   # distinct updates that found the sketch pool exhausted
    ST_DROPPED = 7       # updates that found no slot at all (every probed slot mid-eviction)
    ST_TAKEOVERS = 8     # evictions completed by another process (the evictor died or stalled)
    N_STATS = 9

# What update_run does with each event of a batch (bits of its todo array).
cdef enum:
    RUN_COUNT = 1        # count it
    RUN_FUTURE = 2       # too far ahead (admit said so, in event order): only the statistic
    RUN_READ = 4         # then read its key's value into out[i]

# One 16-byte time bucket. The first word {stamp, count} changes on every
# write, which is what makes fc_read_pair's torn-free read valid. A count
# bucket is that first word alone (8 bytes).
cdef struct Bucket:
    uint32_t stamp       # bucket number (event_ms // resolution_ms) mod 2^32
    uint32_t count       # events in the bucket (saturates at 2^32 - 1); 0 = empty
    double aux           # sum (sum, avg), running min (min) or max (max)

# One exact distinct item.
cdef struct Item:
    uint64_t item        # fmix64 of the item hash, never 0; 0 = empty
    uint32_t stamp       # bucket stamp of its newest sighting
    uint32_t first       # bucket stamp of its oldest sighting while it stayed in the set

# The 32-byte head of a table entry; buckets or items follow it.
cdef struct EntryHead:
    uint64_t hi          # key fingerprint; hi's top and bottom bits are forced to 1
    uint64_t lo          # (hi, lo) == (0, 0): empty; hi bit 0 clear: reserved by an evictor
    int64_t last_ms      # newest event time of the key (atomic max); 0: none yet
    uint32_t sketch      # distinct: 1 + index of the attached sketch; 0: none
    uint32_t flags       # (sketch, flags) as one uint64: a ring of at most 64
                         # buckets keeps there the bits of the slots it ever used

# A counter as one process sees it: pointers into the mapped region.
cdef struct Counter:
    char* table
    uint64_t mask        # capacity - 1 (capacity is a power of two)
    uint64_t entry_size
    uint32_t n_buckets   # ceil(window / resolution) + 1: a read's buckets
    uint32_t ring        # slots in the ring (n_buckets; 64 when grouped)
    uint32_t ring_off    # where the ring starts in an entry (HEAD; 64 when grouped)
    bint grouped         # a count ring with coarse buckets of GROUP (see counters.pyx)
    int32_t agg
    int64_t window_ms
    int64_t res_ms
    char* sketches
    uint32_t n_sketches
    uint64_t* stats      # N_STATS words in the shared header

cdef uint64_t hash_bytes(const char* data, Py_ssize_t length, uint64_t seed) noexcept nogil

# Key hashing, shared with the engine so that a key hashed from native values
# and the same key given from Python (Engine.counter) meet: a key (p1, ..., pn)
# has the fingerprint hi = combine(...combine(SEED_HI ^ n, h(p1, SEED_HI))...),
# lo likewise with SEED_LO; distinct items hash with SEED_ITEM.
cdef extern from *:
    """
    #define FC_SEED_HI 0x9E3779B97F4A7C15ULL
    #define FC_SEED_LO 0xD1B54A32D192ED03ULL
    #define FC_SEED_ITEM 0x8CB92BA72F3D8DD7ULL
    """
    const uint64_t SEED_HI "FC_SEED_HI"
    const uint64_t SEED_LO "FC_SEED_LO"
    const uint64_t SEED_ITEM "FC_SEED_ITEM"

cdef uint64_t hash_str(object s, uint64_t seed) except? 0
cdef int hash_str2(object s, uint64_t seed_a, uint64_t seed_b, uint64_t* a, uint64_t* b) except -1
cdef uint64_t hash_int(int64_t i, uint64_t seed) noexcept nogil
cdef uint64_t hash_bool(bint b, uint64_t seed) noexcept nogil
cdef uint64_t hash_float(double d, uint64_t seed) noexcept nogil
cdef int part_hash(object part, uint64_t seed, uint64_t* out) except -1

cdef class CounterStore:
    cdef char* base
    cdef size_t size
    cdef Counter* counters
    cdef int n_counters
    cdef int64_t* hwm
    cdef int64_t max_future_ms
    cdef object _path
    cdef tuple _names
    cdef tuple _aggs
    cdef dict _index

    cdef size_t rules_area         # offset of the shared rules area
    cdef uint64_t rules_seq(self) noexcept nogil
    cdef int update(self, int counter, uint64_t hi, uint64_t lo, int64_t ts_ms, double value, uint64_t item,
                    void** entry=*) except -1
    cdef double read(self, int counter, uint64_t hi, uint64_t lo, int64_t at_ms, void* entry=*) except? -1.0
    cdef bint admit(self, int64_t ts_ms) noexcept nogil
    cdef Py_ssize_t run(self, int counter, Py_ssize_t n, const uint64_t* hi, const uint64_t* lo, const int64_t* ts,
                        const double* values, const uint64_t* items, const uint8_t* todo, double* out,
                        Py_ssize_t ahead, const int32_t* sel=*) noexcept nogil
    cdef void prefetch(self, int counter, uint64_t lo, int64_t ts_ms) noexcept nogil
    cdef void probe(self, int counter, uint64_t hi, uint64_t lo, int64_t ts_ms) noexcept nogil
    cdef double read_with(self, int counter, uint64_t hi, uint64_t lo, int64_t at_ms,
                          double value, uint64_t item, void* entry=*) except? -1.0
    cdef Counter* counter_ptr(self, int counter) except NULL
    cdef int _counter_arg(self, object counter) except -1
