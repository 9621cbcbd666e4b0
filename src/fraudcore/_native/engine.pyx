# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The native decision path: load the event's slots, run the counters' where
filters, count the event in the shared counter store and read every counter
into its slot, then run the rules; in one C call per event.

Counting is the engine's job, the VM only sees slots: a counter's value is an
int (count, distinct) or a double (sum, min, max, avg; NaN when the window is
empty), or an error when its key or the event time is missing or mistyped.
"""

from cpython.object cimport PyObject
from cpython.mem cimport PyMem_Malloc
from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t, INT64_MAX
from libc.stdlib cimport calloc, free
from libc.string cimport memcpy, memset
from libc.math cimport NAN

import numpy as np

from fraudcore._native.vm cimport (
    Decision, Feature, NativeRuleSet, Val, fc_ctz,
    T_NULL, T_BOOL, T_INT, T_UINT, T_DOUBLE, T_STR, T_ERR, T_LAZY, T_COUNTER, T_BAIL,
    K_INT, K_UINT, K_DOUBLE, K_BOOL, K_EVENT, ERR_MISSING, load_field, prefetch_field,
    new_decision, bits_to_int, materialize, set_counter_hook, set_current_event, as_event,
)
from fraudcore._native.counters cimport (
    CounterStore, AGG_COUNT, AGG_DISTINCT, SEED_HI, SEED_LO, SEED_ITEM, RUN_COUNT, RUN_FUTURE, RUN_READ,
    fc_combine, hash_str, hash_str2, hash_int, hash_bool, hash_float, part_hash,
)

cdef extern from "Python.h":
    object PyLong_FromUnsignedLongLong(unsigned long long)
    PyObject** PySequence_Fast_ITEMS(object)

# What one call does.
cdef enum:
    MODE_DECIDE = 0     # count the event, then decide
    MODE_EVALUATE = 1   # decide with counters as if the event were counted; write nothing
    MODE_INGEST = 2     # count the event only

MAX_KEY_PARTS = 16


cdef struct Plan:
    int32_t store_index    # the counter's number in the store
    int32_t agg
    int32_t slot           # the slot its value goes to
    int32_t filter_rule    # index of its where-filter in the rule set, or -1
    int32_t of_slot        # the slot of its ``of`` field, or -1
    int32_t n_by
    int32_t by[16]         # the slots of its key fields


# decide_columns counts a block of rows at a time, counter by counter, so
# that one counter's updates pipeline their cache misses across rows.
cdef enum:
    BLOCK_ROWS = 128
    BLOCK_AHEAD = 8         # a counter's rows ahead whose lines are prefetched (as update_many), among those it counts
    PREFETCH_ROWS = 4       # rows ahead whose field objects load_row prefetches
    ROW_KEYED = 8           # a todo bit beside RUN_*: the row has this counter's key


cdef struct Block:
    Py_ssize_t rows        # capacity; per counter c its rows are at [c * rows, (c + 1) * rows)
    uint64_t* hi
    uint64_t* lo
    double* values
    uint64_t* items
    uint8_t* todo
    int32_t* sel           # per counter: the rows it counts (or skips as too far ahead), in order...
    Py_ssize_t* n_sel      # ...n_sel[c] of them
    double* out            # the value read right after the row was counted (RUN_READ)
    int64_t* ts            # per row
    uint64_t* lazy         # a set of (counter, key) fingerprints that rows read later, not counted
    uint64_t lazy_mask
    Val* saved             # per row: its slots once prepared (n_slots each), for its decision
    bint* bail             # per row: the rule set's has_bail for it
    Py_ssize_t n_slots


cdef struct Column:
    int32_t slot           # decide_columns: the slot a column fills
    int32_t kind           # the slot's declared kind
    int32_t mode           # 0 no such column, 1 float64, 2 int64, 3 bool (uint8), 4 Python objects
    void* data             # its values: numbers, or PyObject* pointers (an object array's, a list's items)
    Py_ssize_t n           # its length


cdef inline int val_hash(Val* v, uint64_t seed, uint64_t* out) except -1:
    """Hash a slot value exactly as counters.part_hash hashes the same Python
    value; returns 0 when the value cannot be a key (an error, a map)."""
    if v.tag >= T_LAZY:
        materialize(v)
    if v.tag == T_STR:
        out[0] = hash_str(<object>v.v.o, seed)
    elif v.tag == T_INT:
        out[0] = hash_int(v.v.i, seed)
    elif v.tag == T_BOOL:
        out[0] = hash_bool(v.v.i != 0, seed)
    elif v.tag == T_DOUBLE:
        out[0] = hash_float(v.v.d, seed)
    elif v.tag == T_UINT:
        if v.v.u <= <uint64_t>INT64_MAX:
            out[0] = hash_int(<int64_t>v.v.u, seed)
        else:
            part_hash(PyLong_FromUnsignedLongLong(v.v.u), seed, out)
    elif v.tag == T_NULL:
        part_hash(None, seed, out)
    else:
        return 0
    return 1


cdef inline int val_key_hash(Val* v, uint64_t* hi, uint64_t* lo) except -1:
    """A key part's (hi, lo) hashes: val_hash with SEED_HI and SEED_LO (a
    string's UTF-8 looked up once)."""
    if v.tag >= T_LAZY:
        materialize(v)
    if v.tag == T_STR:
        hash_str2(<object>v.v.o, SEED_HI, SEED_LO, hi, lo)
        return 1
    if val_hash(v, SEED_HI, hi) != 1:
        return 0
    val_hash(v, SEED_LO, lo)
    return 1


cdef int block_init(Block* blk, Py_ssize_t n_plans, Py_ssize_t rows, Py_ssize_t n_slots) except -1:
    cdef Py_ssize_t cells = max(n_plans, 1) * rows, lazy = 1
    while lazy < 2 * cells:
        lazy <<= 1
    blk.rows = rows
    blk.hi = <uint64_t*>calloc(cells, sizeof(uint64_t))
    blk.lo = <uint64_t*>calloc(cells, sizeof(uint64_t))
    blk.values = <double*>calloc(cells, sizeof(double))
    blk.items = <uint64_t*>calloc(cells, sizeof(uint64_t))
    blk.todo = <uint8_t*>calloc(cells, sizeof(uint8_t))
    blk.sel = <int32_t*>calloc(cells, sizeof(int32_t))
    blk.n_sel = <Py_ssize_t*>calloc(max(n_plans, 1), sizeof(Py_ssize_t))
    blk.out = <double*>calloc(cells, sizeof(double))
    blk.ts = <int64_t*>calloc(rows, sizeof(int64_t))
    blk.lazy = <uint64_t*>calloc(lazy, sizeof(uint64_t))
    blk.lazy_mask = <uint64_t>(lazy - 1)
    blk.n_slots = n_slots
    blk.saved = <Val*>calloc(max(n_slots, 1) * rows, sizeof(Val))
    blk.bail = <bint*>calloc(rows, sizeof(bint))
    if (blk.hi == NULL or blk.lo == NULL or blk.values == NULL or blk.items == NULL or blk.todo == NULL
            or blk.sel == NULL or blk.n_sel == NULL
            or blk.out == NULL or blk.ts == NULL or blk.lazy == NULL or blk.saved == NULL or blk.bail == NULL):
        block_free(blk)
        raise MemoryError()
    return 0


cdef void block_free(Block* blk) noexcept:
    free(blk.hi)
    free(blk.lo)
    free(blk.values)
    free(blk.items)
    free(blk.todo)
    free(blk.sel)
    free(blk.n_sel)
    free(blk.out)
    free(blk.ts)
    free(blk.lazy)
    free(blk.saved)
    free(blk.bail)


cdef inline uint64_t lazy_print(Py_ssize_t c, uint64_t lo) noexcept:
    """A (counter, key) fingerprint, never 0 (empty). A collision only ends
    a block early."""
    cdef uint64_t h = fc_combine(lo, <uint64_t>c + 1)
    return h if h else 1


cdef bint lazy_has(Block* blk, Py_ssize_t c, uint64_t lo) noexcept:
    cdef uint64_t h = lazy_print(c, lo), i = h & blk.lazy_mask
    while blk.lazy[i]:
        if blk.lazy[i] == h:
            return True
        i = (i + 1) & blk.lazy_mask
    return False


cdef void lazy_add(Block* blk, Py_ssize_t c, uint64_t lo) noexcept:
    cdef uint64_t h = lazy_print(c, lo), i = h & blk.lazy_mask
    while blk.lazy[i] and blk.lazy[i] != h:
        i = (i + 1) & blk.lazy_mask
    blk.lazy[i] = h


cdef class NativeEngine:
    """A policy's rule set (decision rules first, then the counters' where
    filters) bound to a counter store."""

    cdef NativeRuleSet rules
    cdef CounterStore store
    cdef Plan* plans
    cdef Py_ssize_t n_plans
    cdef Py_ssize_t n_rules        # decision rules; the filters follow them
    cdef Py_ssize_t n_total
    cdef int32_t time_slot
    cdef object fallback           # fallback(event, matched, failed, counter_values) -> Decision
    cdef object filter_fallback    # filter_fallback(event, counter) -> bool, for filters the VM cannot run
    cdef tuple counter_names
    cdef int32_t* reads_at         # decision rule r reads counters reads[reads_at[r]:reads_at[r + 1]]
    cdef int32_t* reads
    cdef bint any_counter_reads
    cdef uint64_t* may_read        # per dispatch_id() + 1: the counters its rules read (n_cw words)
    cdef Py_ssize_t n_cw
    cdef uint64_t* feat_seen       # per counter: feat_gen when already among a decision's features
    cdef uint64_t feat_gen
    cdef Feature* feat             # scratch: one decision's features
    cdef readonly uint64_t seq     # the store's rules sequence number these rules belong to
    cdef object switch             # switch(event, mode) -> Decision: rebind to newly published rules
    cdef uint64_t* keys            # per counter: the current event's (hi, lo)
    cdef bint* valid               # per counter: whether the current event has a key
    cdef bint* dry                 # per counter: read as if the event were counted (evaluate)
    cdef bint* passes              # per counter: the event counts (its where filter passes, it has a value)
    cdef double* values            # per counter: the event's value (sum, min, max, avg)
    cdef uint64_t* items           # per counter: the event's item hash (distinct)
    cdef void** entries            # per counter: where the update found the key (a hint for the read)
    cdef uint64_t* part_hash       # per slot: its (hi, lo) key-part hashes for this event...
    cdef uint64_t* part_gen        # ...valid when part_gen[slot] == gen (several counters share key fields)
    cdef uint64_t gen
    cdef int64_t ts                # the current event's time
    cdef dict columns              # decide_columns: the batch being decided
    cdef Py_ssize_t row            # decide_columns: the row being decided

    def __cinit__(self):
        self.plans = NULL
        self.keys = NULL
        self.valid = NULL
        self.dry = NULL
        self.passes = NULL
        self.values = NULL
        self.items = NULL
        self.part_hash = NULL
        self.part_gen = NULL
        self.entries = NULL
        self.reads_at = NULL
        self.reads = NULL
        self.feat_seen = NULL
        self.feat = NULL

    def __init__(self, NativeRuleSet rules, CounterStore store, plans, Py_ssize_t n_rules,
                 int32_t time_slot, counter_names, rule_counters, fallback, filter_fallback,
                 uint64_t seq, switch):
        """``plans``: per counter (store index, agg code, slot, filter rule,
        of slot, by slots)."""
        cdef Py_ssize_t i, j
        self.rules = rules
        self.store = store
        self.n_rules = n_rules
        self.n_total = rules.n_rules
        self.time_slot = time_slot
        self.fallback = fallback
        self.filter_fallback = filter_fallback
        self.seq = seq
        self.switch = switch
        self.counter_names = tuple(counter_names)
        rule_counters = [tuple(c) for c in rule_counters]
        self.any_counter_reads = any(rule_counters)
        self.n_plans = len(plans)
        self.reads_at = <int32_t*>calloc(len(rule_counters) + 1, sizeof(int32_t))
        self.reads = <int32_t*>calloc(max(sum(map(len, rule_counters)), 1), sizeof(int32_t))
        self.feat_seen = <uint64_t*>calloc(max(self.n_plans, 1), sizeof(uint64_t))
        self.feat = <Feature*>calloc(max(self.n_plans, 1), sizeof(Feature))
        if self.reads_at == NULL or self.reads == NULL or self.feat_seen == NULL or self.feat == NULL:
            raise MemoryError()
        j = 0
        for i, cs in enumerate(rule_counters):
            for c in cs:
                self.reads[j] = c
                j += 1
            self.reads_at[i + 1] = <int32_t>j
        self.build_may_read()
        self.plans = <Plan*>calloc(max(self.n_plans, 1), sizeof(Plan))
        self.keys = <uint64_t*>calloc(2 * max(self.n_plans, 1), sizeof(uint64_t))
        self.valid = <bint*>calloc(max(self.n_plans, 1), sizeof(bint))
        self.dry = <bint*>calloc(max(self.n_plans, 1), sizeof(bint))
        self.passes = <bint*>calloc(max(self.n_plans, 1), sizeof(bint))
        self.values = <double*>calloc(max(self.n_plans, 1), sizeof(double))
        self.items = <uint64_t*>calloc(max(self.n_plans, 1), sizeof(uint64_t))
        self.part_hash = <uint64_t*>calloc(2 * max(rules.n_slots, 1), sizeof(uint64_t))
        self.part_gen = <uint64_t*>calloc(max(rules.n_slots, 1), sizeof(uint64_t))
        self.gen = 1
        self.entries = <void**>calloc(max(self.n_plans, 1), sizeof(void*))
        if (self.plans == NULL or self.keys == NULL or self.valid == NULL or self.dry == NULL or self.passes == NULL
                or self.values == NULL or self.items == NULL or self.part_hash == NULL or self.part_gen == NULL
                or self.entries == NULL):
            raise MemoryError()
        for i, (index, agg, slot, filter_rule, of_slot, by) in enumerate(plans):
            if len(by) > MAX_KEY_PARTS:
                raise ValueError(f"a counter key has at most {MAX_KEY_PARTS} fields")
            self.plans[i].store_index = index
            self.plans[i].agg = agg
            self.plans[i].slot = slot
            self.plans[i].filter_rule = filter_rule
            self.plans[i].of_slot = of_slot
            self.plans[i].n_by = len(by)
            for j, s in enumerate(by):
                self.plans[i].by[j] = s

    cdef int build_may_read(self) except -1:
        """Per case of rules.dispatch_id(), the counters the decision rules
        that run in it read: the counters a row's decision may read."""
        cdef NativeRuleSet rs = self.rules
        cdef Py_ssize_t r, j, g, c, n_cases = rs.n_groups + 2
        self.n_cw = max((self.n_plans + 63) >> 6, 1)
        self.may_read = <uint64_t*>calloc(n_cases * self.n_cw, sizeof(uint64_t))
        if self.may_read == NULL:
            raise MemoryError()
        for r in range(self.n_rules):
            for g in range(-1, rs.n_groups + 1):
                if (rs.candidates(<int32_t>g, r >> 6) >> (r & 63)) & 1:
                    for j in range(self.reads_at[r], self.reads_at[r + 1]):
                        c = self.reads[j]
                        self.may_read[(g + 1) * self.n_cw + (c >> 6)] |= (<uint64_t>1) << (c & 63)
        return 0

    def __dealloc__(self):
        free(self.may_read)
        free(self.plans)
        free(self.keys)
        free(self.valid)
        free(self.dry)
        free(self.passes)
        free(self.values)
        free(self.items)
        free(self.part_hash)
        free(self.part_gen)
        free(self.entries)
        free(self.reads_at)
        free(self.reads)
        free(self.feat_seen)
        free(self.feat)

    cdef int64_t hash_keys(self, bint prefetch) except? -1:
        """Every counter's key (hi, lo) for the loaded event into keys, each
        key field hashed once, and whether it has one into valid; with
        ``prefetch`` the cache lines of each counter the event may count
        start loading (the where filters have run). Returns the event time
        (0 when it has none)."""
        cdef Py_ssize_t c, j
        cdef Plan* p
        cdef Val* slots = self.rules.slots
        cdef Val* t = &slots[self.time_slot]
        cdef int64_t ts
        cdef uint64_t hi, lo, gen
        cdef bint ok
        cdef int32_t s
        if t.tag >= T_LAZY:
            materialize(t)
        ts = t.v.i if t.tag == T_INT else 0
        self.gen += 1
        gen = self.gen
        for c in range(self.n_plans):
            p = &self.plans[c]
            ok = t.tag == T_INT
            hi = SEED_HI ^ <uint64_t>p.n_by
            lo = SEED_LO ^ <uint64_t>p.n_by
            j = 0
            while ok and j < p.n_by:
                s = p.by[j]
                if self.part_gen[s] != gen:     # the first counter keyed by this field hashes it
                    if val_key_hash(&slots[s], &self.part_hash[2 * s], &self.part_hash[2 * s + 1]) != 1:
                        ok = False
                        break
                    self.part_gen[s] = gen
                hi = fc_combine(hi, self.part_hash[2 * s])
                lo = fc_combine(lo, self.part_hash[2 * s + 1])
                j += 1
            self.keys[2 * c] = hi
            self.keys[2 * c + 1] = lo
            self.valid[c] = ok
            if ok and prefetch and self.may_count(p):
                self.store.prefetch(p.store_index, lo, ts)
        return ts

    cdef inline bint may_count(self, Plan* p) noexcept:
        """Whether counter p's where filter passed, or left the answer to
        the reference path."""
        cdef int32_t f = p.filter_rule
        return f < 0 or ((self.rules.matched[f >> 6] | self.rules.failed[f >> 6]) >> (f & 63)) & 1

    cdef int64_t prepare(self, object event, bint prefetch) except? -1:
        """For the loaded event, per counter: its key (keys, valid), whether
        the event counts (passes: the where filter, a value to add) and what
        it adds (values, items). Returns the event time."""
        cdef Py_ssize_t c
        cdef Plan* p
        cdef Val* slots = self.rules.slots
        cdef Val* v
        cdef uint64_t item
        cdef double value
        cdef bint passes
        cdef int64_t unused
        cdef int32_t f
        cdef int64_t ts
        # The where filters first: lines are prefetched only for the
        # counters the event may count (the line fill buffers are few, and
        # a trade counts a third of the example's counters).
        if self.n_total > self.n_rules:
            self.rules.run_rules(self.n_rules, self.n_total, &unused)
        ts = self.hash_keys(prefetch)
        for c in range(self.n_plans):
            p = &self.plans[c]
            self.passes[c] = False
            if not self.valid[c]:
                continue
            value = 0.0
            item = 0
            passes = True
            if p.of_slot >= 0:
                v = &slots[p.of_slot]
                if v.tag >= T_LAZY:
                    materialize(v)
                if p.agg == AGG_DISTINCT:
                    passes = val_hash(v, SEED_ITEM, &item) == 1
                elif v.tag == T_DOUBLE:
                    value = v.v.d
                elif v.tag == T_INT:
                    value = <double>v.v.i
                else:
                    passes = False      # nothing to add: the event is not counted
            if p.filter_rule >= 0 and passes:
                f = p.filter_rule
                if (self.rules.failed[f >> 6] >> (f & 63)) & 1:
                    # An error or a construct the VM does not run: the
                    # reference path decides (an error means not counted).
                    if event is None:
                        event = self.row_event()
                    passes = self.filter_fallback(event, c)
                    set_current_event(event, self.rules.hints)    # Python ran: it may have decided other events
                else:
                    passes = (self.rules.matched[f >> 6] >> (f & 63)) & 1
            self.passes[c] = passes
            self.values[c] = value
            self.items[c] = item
        self.ts = ts
        return ts

    cdef int count(self, object event, int mode) except -1:
        """Count the loaded event (unless evaluating) and make every counter
        readable from its slot. First the where filters run, then every key
        is hashed (each key field once) and the cache lines of the counters
        the event counts are prefetched, so their misses overlap; then each
        counter is updated, which starts loading the lines its read will
        visit. Reads happen when a rule first needs the value."""
        cdef Py_ssize_t c
        cdef Val* out
        self.prepare(event, True)
        # Once the first home line has arrived, the rest have too: the keys
        # displaced from theirs start loading their own lines together.
        for c in range(self.n_plans):
            if self.valid[c] and self.passes[c]:
                self.store.probe(self.plans[c].store_index, self.keys[2 * c], self.keys[2 * c + 1], self.ts)
        for c in range(self.n_plans):
            out = &self.rules.slots[self.plans[c].slot]
            if not self.valid[c]:
                out.tag = T_ERR     # no event time, or a key field missing or mistyped
                continue
            self.entries[c] = NULL
            if self.passes[c] and mode != MODE_EVALUATE:
                self.store.update(self.plans[c].store_index, self.keys[2 * c], self.keys[2 * c + 1], self.ts,
                                  self.values[c], self.items[c], &self.entries[c])
            self.dry[c] = self.passes[c] and mode == MODE_EVALUATE
            self.unread(c, out)
        return 0

    cdef inline void unread(self, Py_ssize_t c, Val* out) noexcept:
        """Counter c's slot, read when a rule first needs it (materialize →
        read_hook)."""
        out.tag = T_COUNTER
        out.aux = <int32_t>c
        out.v.o = <PyObject*>self

    cdef int read(self, int32_t c, Val* out) except -1:
        """Read counter c for the current event into ``out``."""
        cdef Plan* p = &self.plans[c]
        cdef uint64_t hi = self.keys[2 * c], lo = self.keys[2 * c + 1]
        if self.dry[c]:
            self.set_value(c, self.store.read_with(p.store_index, hi, lo, self.ts, self.values[c], self.items[c]), out)
        else:
            self.set_value(c, self.store.read(p.store_index, hi, lo, self.ts, self.entries[c]), out)
        return 0

    cdef inline void set_value(self, Py_ssize_t c, double result, Val* out) noexcept:
        """A value the store read for counter c, as its slot holds it."""
        cdef int32_t agg = self.plans[c].agg
        if agg == AGG_COUNT or agg == AGG_DISTINCT:
            out.tag = T_INT
            out.v.i = <int64_t>result
        else:
            out.tag = T_DOUBLE
            out.v.d = result

    def decide(self, event, int mode=MODE_DECIDE):
        """Decide (or, with MODE_INGEST, only count) one event."""
        cdef dict ev = event if type(event) is dict else as_event(event)
        self.check_open()
        if self.store.rules_seq() != self.seq:
            # Another process (or this one) published new rules in the shared
            # region: every process moves to them on its next event.
            return self.switch(ev, mode)
        self.rules.load(ev, True)
        self.count(ev, mode)
        if mode == MODE_INGEST:
            return None
        return self.conclude(ev)

    def decide_columns(self, dict columns, int mode=MODE_DECIDE):
        """decide() over columns: a dict of equally long 1-D arrays, one per
        field (float, int, bool, or object arrays of str). Slots are filled
        from the arrays directly: no dict per event, no Python call per
        event. A policy that reads ``event`` as a map needs dicts: the caller
        decides rows then."""
        cdef Py_ssize_t i, j, n = -1, m
        cdef int32_t s, kind
        cdef list out = []
        cdef list keep = []
        cdef Column* cols
        for name, col in columns.items():
            if n < 0:
                n = len(col)
            elif len(col) != n:
                raise ValueError(f"decide_many: column {name!r} has {len(col)} values, others {n}")
        if n <= 0:
            return out
        m = self.rules.n_load
        cols = <Column*>calloc(max(m, 1), sizeof(Column))
        try:
            if cols == NULL:
                raise MemoryError()
            # Per loaded slot: mode 0 missing, 1 float64, 2 int64, 3 bool
            # (uint8), 4 Python objects (an object array, or a list); data points at the values.
            for j in range(m):
                s = self.rules.load_order[j]
                kind = self.rules.slot_kinds[s]
                if kind == K_EVENT:
                    raise TypeError("decide_columns: the rules read `event` as a map; decide rows instead")
                cols[j].slot = s
                cols[j].kind = kind
                col = columns.get(self.rules.slot_names[s])
                dt = getattr(col, "dtype", None)
                if col is None:
                    cols[j].mode = 0
                    continue
                if dt is not None and dt.kind == "f":
                    arr, cols[j].mode = np.ascontiguousarray(col, dtype=np.float64), 1
                elif dt is not None and dt.kind in "iu" and not (dt.kind == "u" and dt.itemsize == 8):
                    arr, cols[j].mode = np.ascontiguousarray(col, dtype=np.int64), 2
                elif dt is not None and dt.kind == "b":
                    arr, cols[j].mode = np.ascontiguousarray(col, dtype=np.uint8), 3
                elif dt is not None and dt.kind == "O":
                    arr, cols[j].mode = np.ascontiguousarray(col), 4     # its data: the object pointers
                else:
                    arr, cols[j].mode = list(col.tolist() if hasattr(col, "tolist") else col), 4
                keep.append(arr)
                cols[j].data = (<void*>PySequence_Fast_ITEMS(arr) if type(arr) is list
                                else <void*><size_t>arr.ctypes.data)
                cols[j].n = n
            self.columns = columns
            if mode == MODE_EVALUATE or self.n_plans == 0:
                self.rows_one_by_one(cols, m, 0, n, mode, out)
            else:
                self.rows_in_blocks(cols, m, n, mode, out)
        finally:
            self.columns = None
            free(cols)
        return out

    cdef int rows_one_by_one(self, Column* cols, Py_ssize_t m, Py_ssize_t start, Py_ssize_t n, int mode,
                             list out) except -1:
        """Rows start..n as decide() would take them one after another."""
        cdef Py_ssize_t i
        for i in range(start, n):
            self.check_open()
            self.row = i
            if self.store.rules_seq() != self.seq:
                out.append(self.switch(self.row_event(), mode))
                continue
            self.load_row(cols, m, i)
            self.count(None, mode)
            if mode != MODE_INGEST:
                out.append(self.conclude(None))
        return 0

    cdef int rows_in_blocks(self, Column* cols, Py_ssize_t m, Py_ssize_t n, int mode, list out) except -1:
        """Rows 0..n, counted (and decided) a block at a time: each row is
        prepared (keys, filters, values); then each counter counts the
        block's rows in order, pipelined, and reads each counted row's value
        right after it, which is the value decide() would read; then each
        row is decided on those values. A counter a row does not count is
        read when a rule needs it, in the decision: so no later row of its
        block may count that key if a rule that runs for the row reads it
        (fill_block ends the block before one would). The same counts,
        values and decisions as one row after another; not for evaluate,
        which reads as if each row alone were counted."""
        cdef Block blk
        cdef Py_ssize_t i = 0, b, r, c, k
        cdef Plan* p
        block_init(&blk, self.n_plans, BLOCK_ROWS, self.rules.n_slots)
        try:
            while i < n:
                self.check_open()
                if self.store.rules_seq() != self.seq:
                    return self.rows_one_by_one(cols, m, i, n, mode, out)   # each row moves to the new rules
                b = self.fill_block(&blk, cols, m, i, n, mode)
                for c in range(self.n_plans):
                    k = c * blk.rows
                    self.store.run(self.plans[c].store_index, blk.n_sel[c], &blk.hi[k], &blk.lo[k], blk.ts,
                                   &blk.values[k], &blk.items[k], &blk.todo[k], &blk.out[k], BLOCK_AHEAD,
                                   &blk.sel[k])
                if mode == MODE_DECIDE:
                    for r in range(b):
                        self.row = i + r
                        self.set_counters(&blk, r)
                        out.append(self.conclude(None))
                i += b
        finally:
            block_free(&blk)
        return 0

    cdef Py_ssize_t fill_block(self, Block* blk, Column* cols, Py_ssize_t m, Py_ssize_t start, Py_ssize_t n,
                               int mode) except -1:
        """Prepare rows from start into the block, as many as fit; fewer when
        a row would count a key an earlier row of the block reads later.
        Checks each counting row's time against the high-water mark, in row
        order, as update() would. Returns how many rows it holds."""
        cdef Py_ssize_t b = 0, c, k
        cdef uint8_t f
        cdef bint counts, future
        cdef uint64_t* reads
        memset(blk.lazy, 0, (blk.lazy_mask + 1) * sizeof(uint64_t))
        memset(blk.n_sel, 0, self.n_plans * sizeof(Py_ssize_t))
        while b < blk.rows and start + b < n:
            self.row = start + b
            self.load_row(cols, m, start + b)
            self.prepare(None, False)
            counts = False
            for c in range(self.n_plans):
                if self.passes[c]:
                    counts = True
                    if b and mode == MODE_DECIDE and lazy_has(blk, c, self.keys[2 * c + 1]):
                        return b    # this row comes first in the next block
            future = counts and not self.store.admit(self.ts)
            reads = &self.may_read[(self.rules.dispatch_id() + 1) * self.n_cw]
            for c in range(self.n_plans):
                k = c * blk.rows + b
                f = 0
                if self.valid[c]:
                    f = ROW_KEYED
                    if self.passes[c]:
                        f |= RUN_FUTURE if future else RUN_COUNT
                        if mode == MODE_DECIDE:
                            f |= RUN_READ
                        blk.sel[c * blk.rows + blk.n_sel[c]] = <int32_t>b
                        blk.n_sel[c] += 1
                    elif mode == MODE_DECIDE and (reads[c >> 6] >> (c & 63)) & 1:
                        lazy_add(blk, c, self.keys[2 * c + 1])      # its decision may read it
                blk.todo[k] = f
                blk.hi[k] = self.keys[2 * c]
                blk.lo[k] = self.keys[2 * c + 1]
                blk.values[k] = self.values[c]
                blk.items[k] = self.items[c]
            blk.ts[b] = self.ts
            memcpy(&blk.saved[b * blk.n_slots], self.rules.slots, blk.n_slots * sizeof(Val))
            blk.bail[b] = self.rules.has_bail
            b += 1
        return b

    cdef void set_counters(self, Block* blk, Py_ssize_t r) noexcept:
        """Row r's slots as prepared, and its counters: the value read when
        it was counted, or unread (its key in keys) where the row did not
        count it."""
        cdef Py_ssize_t c, k
        cdef Val* out
        cdef uint8_t f
        memcpy(self.rules.slots, &blk.saved[r * blk.n_slots], blk.n_slots * sizeof(Val))
        self.rules.has_bail = blk.bail[r]
        for c in range(self.n_plans):
            k = c * blk.rows + r
            f = blk.todo[k]
            out = &self.rules.slots[self.plans[c].slot]
            if not f & ROW_KEYED:
                out.tag = T_ERR
            elif f & RUN_READ:
                self.set_value(c, blk.out[k], out)
            else:
                self.keys[2 * c] = blk.hi[k]
                self.keys[2 * c + 1] = blk.lo[k]
                self.entries[c] = NULL
                self.dry[c] = False
                self.unread(c, out)
        self.ts = blk.ts[r]

    cdef inline int check_open(self) except -1:
        if self.store.base == NULL:
            raise ValueError("the engine is closed (its counter store is unmapped)")
        return 0

    cdef int load_row(self, Column* cols, Py_ssize_t m, Py_ssize_t i) except -1:
        """Fill the slots from row i of the columns, as load() does from a dict."""
        cdef Py_ssize_t j
        cdef int32_t kind, k
        cdef int64_t iv
        cdef Val* v
        self.rules.reset()
        for j in range(m):
            v = &self.rules.slots[cols[j].slot]
            v.aux = 0                           # a T_ERR below is a mistyped field...
            kind = cols[j].kind
            k = cols[j].mode
            if k == 4:
                # The objects of a column lie anywhere in the heap: start
                # loading those a few rows ahead (a key column of a million
                # users misses the cache on every row).
                if i + PREFETCH_ROWS < cols[j].n:
                    prefetch_field((<PyObject**>cols[j].data)[i + PREFETCH_ROWS], kind)
                load_field(<object>(<PyObject**>cols[j].data)[i], kind, v)
                v.aux = 0 if v.tag == T_ERR else v.aux
                self.rules.has_bail |= v.tag == T_BAIL
            elif k == 1:
                if kind == K_DOUBLE:
                    v.tag = T_DOUBLE
                    v.v.d = (<double*>cols[j].data)[i]
                else:
                    v.tag = T_ERR
            elif k == 2:
                iv = (<int64_t*>cols[j].data)[i]
                if kind == K_INT:
                    v.tag = T_INT
                    v.v.i = iv
                elif kind == K_DOUBLE:
                    v.tag = T_DOUBLE            # as a dict's int for a double field
                    v.v.d = <double>iv
                elif kind == K_UINT and iv >= 0:
                    v.tag = T_UINT
                    v.v.u = <uint64_t>iv
                else:
                    v.tag = T_ERR
            elif k == 3:
                if kind == K_BOOL:
                    v.tag = T_BOOL
                    v.v.i = (<unsigned char*>cols[j].data)[i] != 0
                else:
                    v.tag = T_ERR
            else:
                v.tag = T_ERR                   # ...unless there is no such column
                v.aux = ERR_MISSING
        return 0

    cdef object conclude(self, object event):
        """Run the rules over the counted event and build its Decision
        (``event`` None: the current row of decide_columns)."""
        cdef int64_t score
        cdef Decision d
        rank = self.rules.run_rules(0, self.n_rules, &score)
        failed = bits_to_int(self.rules.failed, self.n_rules)
        if failed:
            return self.fallback(event if event is not None else self.row_event(),
                                 bits_to_int(self.rules.matched, self.n_rules), failed, self.counter_values())
        matched = bits_to_int(self.rules.matched, self.n_rules)
        d = new_decision(<str>self.rules.actions[rank], score, matched, self.rules.meta, self.rules.version)
        if matched and self.any_counter_reads:
            self.take_features(d)
        return d

    cdef dict row_event(self):
        """The current row of decide_columns as an event dict (for the
        reference path, which reads events as dicts)."""
        return {name: col[self.row].item() if hasattr(col[self.row], "item") else col[self.row]
                for name, col in self.columns.items()}

    def evaluate(self, event):
        return self.decide(event, MODE_EVALUATE)

    def ingest(self, event):
        self.decide(event, MODE_INGEST)

    def decide_list(self, events, int mode=MODE_DECIDE):
        """decide() over a list, without a Python call per event."""
        return [self.decide(e, mode) for e in events]

    cpdef list counter_values(self):
        """The counters' values as last read (None where an error)."""
        cdef Py_ssize_t c
        cdef Val* v
        out = []
        for c in range(self.n_plans):
            v = &self.rules.slots[self.plans[c].slot]
            if v.tag >= T_LAZY:
                materialize(v)
            out.append(None if v.tag == T_ERR else (v.v.i if v.tag == T_INT else v.v.d))
        return out

    cdef int take_features(self, Decision d) except -1:
        """Keep in ``d`` the values of the counters its matched rules read,
        in rule order, each once; its ``features`` dict is built from them
        if it is asked for."""
        cdef Py_ssize_t w, r, j, c, n = 0
        cdef uint64_t m
        cdef Val* v
        self.feat_gen += 1
        for w in range((self.n_rules + 63) >> 6):
            m = self.rules.matched[w]
            while m:
                r = (w << 6) + fc_ctz(m)
                m &= m - 1
                if r >= self.n_rules:
                    break
                for j in range(self.reads_at[r], self.reads_at[r + 1]):
                    c = self.reads[j]
                    if self.feat_seen[c] == self.feat_gen:
                        continue
                    self.feat_seen[c] = self.feat_gen
                    v = &self.rules.slots[self.plans[c].slot]
                    if v.tag >= T_LAZY:
                        materialize(v)
                    if v.tag != T_ERR:
                        self.feat[n].counter = <int32_t>c
                        self.feat[n].is_int = v.tag == T_INT
                        self.feat[n].v = v.v
                        n += 1
        if n:
            d.feat = <Feature*>PyMem_Malloc(n * sizeof(Feature))
            if d.feat == NULL:
                raise MemoryError()
            memcpy(d.feat, self.feat, n * sizeof(Feature))
            d.n_feat = n
            d.feat_names = self.counter_names
        return 0


cdef int read_hook(PyObject* engine, int32_t counter, Val* out) except -1:
    return (<NativeEngine>engine).read(counter, out)


set_counter_hook(read_hook)
