# cython: language_level=3
from cpython.object cimport PyObject
from libc.stdint cimport int32_t, int64_t, uint64_t

cdef extern from *:
    int fc_ctz "__builtin_ctzll"(unsigned long long) nogil   # the lowest set bit's index (x != 0)

# Value tags. A Val is 16 bytes: tag, a small auxiliary field, and the payload.
cdef enum:
    T_NULL = 0
    T_BOOL = 1
    T_INT = 2
    T_UINT = 3
    T_DOUBLE = 4
    T_STR = 5      # v.o: borrowed str; aux: interned id (ID_UNKNOWN until looked up)
    T_MAP = 6      # v.o: borrowed dict (the event)
    T_ERR = 7      # an error value; its message comes from the reference path
    T_SET = 8      # constants only: v.o a frozenset (strings) or aux/ints (int set)
    T_REGEX = 9    # constants only: v.o a tuple (pattern.search, literals or None, ignore_case)
    T_BAIL = 10    # a slot whose value the VM cannot hold: programs reading it run on the reference path
    T_LAZY = 11    # a field not read yet: v.o its name, aux its K_* kind | slot << 8 (see materialize)
    T_COUNTER = 12 # a counter not read yet: v.o the engine that reads it, aux its number (see materialize)

cdef enum:
    ERR_MISSING = 1   # aux of a T_ERR field slot whose field the event lacks

cdef enum:
    ID_UNKNOWN = -2   # string not looked up in the intern table yet
    ID_NONE = -1      # string equal to no string constant

# Status of one run.
cdef enum:
    RUN_OK = 0
    RUN_BAIL = 1      # a value outside the VM's domain: rerun on the reference path

cdef union Payload:
    int64_t i
    uint64_t u
    double d
    PyObject* o

cdef struct Val:
    int32_t tag
    int32_t aux
    Payload v

cdef struct Code:
    int32_t* ops
    Py_ssize_t n_ops
    Val* consts          # borrowed pointers are kept alive by the owning object
    Py_ssize_t n_consts
    int64_t** int_sets   # sorted int64 members of each int T_SET constant (by aux)
    Py_ssize_t* int_set_sizes
    Py_ssize_t n_int_sets
    Val* stack           # scratch operand stack, as deep as the code is long

cdef int run(Code* code, Val* slots, Val* out) except -1

cdef class NativeProgram:
    cdef Code code
    cdef list keep              # owns every object the constants point at
    cdef dict intern            # string constant -> interned id
    cdef tuple slot_names       # the layout's variable names
    cdef int32_t* reads         # slot indices this program reads
    cdef Py_ssize_t n_reads
    cdef Py_ssize_t n_slots
    cdef Val* slots
    cdef object uint_type

# A rule's guard: a necessary condition tested before running it.
cdef enum:
    GUARD_NONE = 0
    GUARD_STR = 1   # slot == constant string
    GUARD_BOOL = 2  # slot is true

# How a rule set loads a slot from the event.
cdef enum:
    K_SET = 0       # not from the event: the caller fills it (counters)
    K_INT = 1
    K_UINT = 2
    K_DOUBLE = 3
    K_BOOL = 4
    K_STRING = 5
    K_EVENT = 6     # the whole event, as the map ``event``
    K_OTHER = 7     # a type the VM does not hold: readers run on the reference path

cdef extern from "prefetch.h" nogil:
    void fc_prefetch_ro(const void*)


cdef inline void prefetch_field(PyObject* value, int32_t kind) noexcept nogil:
    """Start loading a field's value object, and for a string field its
    characters' line too: they start 48 bytes into a str, so one of more
    than 16 (a device id, an address) ends on the next line, which hashing a
    key would otherwise wait for after the first had come."""
    fc_prefetch_ro(value)
    if kind == K_STRING:
        fc_prefetch_ro(<char*>value + 64)

cdef class NativeRuleSet:
    cdef Code* codes
    cdef Py_ssize_t n_rules
    cdef Py_ssize_t n_decision     # rules 0..n_decision-1 decide; the rest are counter filters
    cdef list keep
    cdef dict intern
    cdef tuple slot_names
    cdef int32_t* slot_kinds
    cdef int32_t* load_order       # slots loaded from the event
    cdef Py_ssize_t n_load
    cdef Val* template             # every slot's state before an event (reset copies it)
    cdef Py_ssize_t event_slot     # the slot of ``event`` as a map, or -1
    cdef Py_ssize_t* hints         # per slot: where its field sat in the last event's dict (dictpeek.h)
    cdef Py_ssize_t n_slots
    cdef Val* slots
    cdef int32_t** reads           # per rule: slots it reads, -1 terminated
    cdef int32_t* ranks            # per rule: severity rank of its action
    cdef int64_t* scores
    cdef int64_t* thresholds       # per action rank: score at which it applies (-1: never)
    cdef Py_ssize_t n_actions
    cdef uint64_t* matched         # per run: bit r set when rule r matched
    cdef uint64_t* failed          # per run: bit r set when rule r must go to the reference path
    cdef Py_ssize_t n_words
    cdef uint64_t* hits            # per rule: matches on the native path (stats)
    cdef tuple actions             # action names by severity rank
    cdef object meta               # fraudcore.decision.RuleMeta
    cdef str version
    cdef object fallback           # callable(event, matched, failed) -> Decision

    cdef bint other_fields         # some field has a type the VM does not hold (K_OTHER)

    cdef int32_t* guard_kind       # per rule: GUARD_* (see Bytecode.guard)
    cdef int32_t* guard_slot
    cdef int32_t* guard_id         # interned id of the string a GUARD_STR rule needs
    cdef PyObject** guard_str      # per rule: the string its guard expects (kept alive by keep)
    cdef bint has_bail             # some loaded slot holds T_BAIL (readers go to the reference path)

    cdef int load(self, dict event, bint prefetch=*) except -1
    cdef void reset(self) noexcept

    cdef int32_t dispatch_slot     # the field most string guards test, or -1
    cdef uint64_t** groups         # per interned id: the rules guarded on that value (NULL: none)
    cdef Py_ssize_t n_groups
    cdef uint64_t* always          # rules not guarded on the dispatch field

    cdef int32_t dispatch_id(self) except? -3
    cdef uint64_t candidates(self, int32_t id_, Py_ssize_t w) noexcept
    cdef int run_rules(self, Py_ssize_t lo, Py_ssize_t hi, int64_t* score_out) except -1
    cdef int run_one(self, Py_ssize_t r, int64_t* score, int32_t* rank) except -1
    cdef int build_dispatch(self) except -1


# How materialize reads a T_COUNTER slot: set by the engine module.
ctypedef int (*counter_hook_t)(PyObject* engine, int32_t counter, Val* out) except -1
cdef void set_counter_hook(counter_hook_t hook) noexcept
cdef int materialize(Val* v) except -1
cdef void set_current_event(dict event, Py_ssize_t* hints) noexcept
cdef Decision new_decision(str action, int64_t score, object matched, object meta, str version)
cdef object bits_to_int(uint64_t* words, Py_ssize_t nbits)
cdef dict as_event(object event)
cdef void load_field(object value, int32_t kind, Val* out)

# A counter value a matched rule read, kept by its decision until its
# ``features`` are asked for (most callers never ask).
cdef struct Feature:
    int32_t counter                 # its index in the names tuple
    int32_t is_int
    Payload v

cdef class Decision:
    cdef readonly str action
    cdef readonly object score
    cdef readonly str version
    cdef readonly object matched    # bitmask of matched rules, by rule index
    cdef object meta                # fraudcore.decision.RuleMeta
    cdef object _errors
    cdef object _features
    cdef Feature* feat              # when _features is None: the values to build it from (PyMem)
    cdef Py_ssize_t n_feat
    cdef tuple feat_names           # counter names, by Feature.counter
    cdef void track(self) noexcept
