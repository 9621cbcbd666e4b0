# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The native CEL VM: runs fraudcore bytecode on 16-byte tagged values.

It implements the opcodes marked ``native`` in fraudcore/cel/opcodes.py over
null, bool, int, uint, double, string and the event map, without creating
Python objects on the common path: numbers are C numbers, strings stay the
caller's ``str`` objects (borrowed) and compare by interned id against
constants, constant lists are hash sets. Errors are a tag, not a message: the
caller reruns an erroring program on the reference interpreter, which is the
authority on error messages. Anything outside this domain (a value of another
type reached through ``dyn``) makes ``run`` return RUN_BAIL, and the caller
uses the reference interpreter for that evaluation: the VM never guesses.
"""

cimport cython
from cpython.object cimport PyObject, PyObject_RichCompareBool, Py_EQ
from cpython.dict cimport PyDict_Contains
from cpython.set cimport PySet_Contains
from cpython.ref cimport Py_INCREF
from cpython.exc cimport PyErr_Occurred, PyErr_Clear
from cpython.mem cimport PyMem_Free
from cpython.unicode cimport PyUnicode_Compare, PyUnicode_Tailmatch, PyUnicode_Find
from libc.stdint cimport int32_t, int64_t, uint64_t, INT64_MAX, INT64_MIN
from libc.stdlib cimport malloc, calloc, free
from libc.string cimport memcmp, memcpy
from libc.math cimport isnan, trunc
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC

include "opcodes.pxi"

cdef extern from "Python.h":
    # Declared without an exception value: load_field clears the error itself.
    double long_as_double "PyLong_AsDouble"(object)
    # Unlike PyDict_GetItem, this one does not save and restore the error
    # state around the lookup (a large part of its cost on CPython 3.11).
    PyObject* PyDict_GetItemWithError(object, object) except? NULL
    Py_ssize_t PyUnicode_GET_LENGTH(object)
    int PyUnicode_KIND(object)
    const void* PyUnicode_DATA(object)
    const unsigned char* PyUnicode_1BYTE_DATA(object)
    PyObject* PyTuple_GET_ITEM(object, Py_ssize_t)
    bint PyLong_CheckExact(object)
    bint PyFloat_CheckExact(object)
    bint PyUnicode_CheckExact(object)
    bint PyDict_CheckExact(object)
    long long PyLong_AsLongLongAndOverflow(object, int*) except? -1
    double PyFloat_AS_DOUBLE(object)
    object PyObject_CallOneArg(object, object)
    void PyObject_GC_Track(object)
    void PyObject_GC_UnTrack(object)
    bint PyObject_GC_IsTracked(object)

cdef extern from "dictpeek.h":
    PyObject* fc_dict_peek(PyObject* d, PyObject* name, Py_ssize_t hint) noexcept
    Py_ssize_t fc_dict_index(PyObject* d, PyObject* name) noexcept

cdef extern from "strsearch.h":
    enum: FC_FIND_MAX
    bint fc_find_any(const unsigned char* h, size_t n, const unsigned char** lit, const size_t* len,
                     int k, int icase) nogil


cdef extern from *:
    """
    static inline int fc_add_overflow(long long a, long long b, long long *r) { return __builtin_add_overflow(a, b, r); }
    static inline int fc_sub_overflow(long long a, long long b, long long *r) { return __builtin_sub_overflow(a, b, r); }
    static inline int fc_mul_overflow(long long a, long long b, long long *r) { return __builtin_mul_overflow(a, b, r); }
    static inline int fc_uadd_overflow(unsigned long long a, unsigned long long b, unsigned long long *r) { return __builtin_add_overflow(a, b, r); }
    static inline int fc_usub_overflow(unsigned long long a, unsigned long long b, unsigned long long *r) { return __builtin_sub_overflow(a, b, r); }
    static inline int fc_umul_overflow(unsigned long long a, unsigned long long b, unsigned long long *r) { return __builtin_mul_overflow(a, b, r); }
    """
    bint fc_add_overflow(long long, long long, long long*) nogil
    bint fc_sub_overflow(long long, long long, long long*) nogil
    bint fc_mul_overflow(long long, long long, long long*) nogil
    bint fc_uadd_overflow(unsigned long long, unsigned long long, unsigned long long*) nogil
    bint fc_usub_overflow(unsigned long long, unsigned long long, unsigned long long*) nogil
    bint fc_umul_overflow(unsigned long long, unsigned long long, unsigned long long*) nogil

# Results of an ordered comparison.
cdef enum:
    ORD_LT = -1
    ORD_EQ = 0
    ORD_GT = 1
    ORD_UNORDERED = 2   # a NaN was involved
    ORD_NONE = 3        # no ordering exists between these types (an error for < and co.)


cdef inline void set_bool(Val* v, bint b) noexcept nogil:
    v.tag = T_BOOL
    v.v.i = b


cdef inline void set_err(Val* v) noexcept nogil:
    v.tag = T_ERR


cdef inline bint is_number(int32_t tag) noexcept nogil:
    return tag == T_INT or tag == T_UINT or tag == T_DOUBLE


cdef inline int cmp_double(double a, double b) noexcept nogil:
    if isnan(a) or isnan(b):
        return ORD_UNORDERED
    return ORD_LT if a < b else (ORD_GT if a > b else ORD_EQ)


cdef inline int cmp_int_double(int64_t i, double d) noexcept nogil:
    """An int meets a double as a double unless the double lies beyond int64's
    range: cel-go's rule (types/compare.go), which the conformance cases pin
    down (dyn(9223372036854775807) == 9223372036854775808.0)."""
    if isnan(d):
        return ORD_UNORDERED
    if d < -9223372036854775808.0:
        return ORD_GT
    if d > 9223372036854775808.0:
        return ORD_LT
    return cmp_double(<double>i, d)


cdef inline int cmp_uint_double(uint64_t u, double d) noexcept nogil:
    if isnan(d):
        return ORD_UNORDERED
    if d < 0.0:
        return ORD_GT
    if d > 18446744073709551616.0:
        return ORD_LT
    return cmp_double(<double>u, d)


cdef inline int cmp_int_uint(int64_t i, uint64_t u) noexcept nogil:
    if i < 0 or <uint64_t>i < u:
        return ORD_LT
    if <uint64_t>i > u:
        return ORD_GT
    return ORD_EQ


cdef int str_order(Val* a, Val* b) except? -9:
    cdef int c
    if a.v.o == b.v.o:
        return ORD_EQ
    c = PyUnicode_Compare(<object>a.v.o, <object>b.v.o)
    return ORD_LT if c < 0 else (ORD_GT if c > 0 else ORD_EQ)


cdef inline int32_t intern_id(Val* s, dict intern) except? -3:
    """The interned id of a string value, looked up once and cached in the value."""
    cdef PyObject* hit
    if s.aux == ID_UNKNOWN:
        hit = PyDict_GetItemWithError(intern, <object>s.v.o)
        s.aux = ID_NONE if hit == NULL else <int32_t>(<object>hit)
    return s.aux


cdef int order(Val* a, Val* b) except? -9:
    """Order two non-error values; ORD_NONE when CEL defines no order."""
    cdef int32_t ta = a.tag, tb = b.tag
    if ta == T_INT:
        if tb == T_INT:
            return ORD_LT if a.v.i < b.v.i else (ORD_GT if a.v.i > b.v.i else ORD_EQ)
        if tb == T_DOUBLE:
            return cmp_int_double(a.v.i, b.v.d)
        if tb == T_UINT:
            return cmp_int_uint(a.v.i, b.v.u)
        return ORD_NONE
    if ta == T_DOUBLE:
        if tb == T_DOUBLE:
            return cmp_double(a.v.d, b.v.d)
        if tb == T_INT:
            return flip(cmp_int_double(b.v.i, a.v.d))
        if tb == T_UINT:
            return flip(cmp_uint_double(b.v.u, a.v.d))
        return ORD_NONE
    if ta == T_UINT:
        if tb == T_UINT:
            return ORD_LT if a.v.u < b.v.u else (ORD_GT if a.v.u > b.v.u else ORD_EQ)
        if tb == T_INT:
            return flip(cmp_int_uint(b.v.i, a.v.u))
        if tb == T_DOUBLE:
            return cmp_uint_double(a.v.u, b.v.d)
        return ORD_NONE
    if ta == T_STR and tb == T_STR:
        return str_order(a, b)
    if ta == T_BOOL and tb == T_BOOL:
        return ORD_LT if a.v.i < b.v.i else (ORD_GT if a.v.i > b.v.i else ORD_EQ)
    return ORD_NONE


cdef inline int flip(int o) noexcept nogil:
    return -o if o == ORD_LT or o == ORD_GT else o


cdef int compare(Val* a, Val* b, int cmp, Val* out) except -1:
    """out = a <cmp> b with CEL semantics; returns RUN_BAIL for values the
    VM does not hold (maps)."""
    cdef int o
    if a.tag == T_ERR or b.tag == T_ERR:
        set_err(out)
        return RUN_OK
    if a.tag == T_MAP or b.tag == T_MAP:
        return RUN_BAIL
    if cmp == CMP_EQ or cmp == CMP_NE:
        if a.tag == T_STR and b.tag == T_STR:
            o = ORD_EQ if str_vals_equal(a, b) else ORD_LT
        elif a.tag == T_NULL or b.tag == T_NULL:
            o = ORD_EQ if a.tag == b.tag else ORD_NONE
        else:
            o = order(a, b)
        set_bool(out, (o == ORD_EQ) == (cmp == CMP_EQ))
        return RUN_OK
    o = order(a, b)
    if o == ORD_NONE:
        set_err(out)                # no such overload
    elif cmp == CMP_LT:
        set_bool(out, o == ORD_LT)
    elif cmp == CMP_LE:
        set_bool(out, o == ORD_LT or o == ORD_EQ)
    elif cmp == CMP_GT:
        set_bool(out, o == ORD_GT)
    else:
        set_bool(out, o == ORD_GT or o == ORD_EQ)
    return RUN_OK


cdef inline bint cmp_result(int o, int cmp) noexcept nogil:
    """The truth of ``o`` (an ORD_* order, not ORD_NONE) under comparison ``cmp``."""
    if cmp == CMP_EQ:
        return o == ORD_EQ
    if cmp == CMP_NE:
        return o != ORD_EQ
    if cmp == CMP_LT:
        return o == ORD_LT
    if cmp == CMP_LE:
        return o == ORD_LT or o == ORD_EQ
    if cmp == CMP_GT:
        return o == ORD_GT
    return o == ORD_GT or o == ORD_EQ


cdef inline int fast_compare(Val* a, Val* b, int cmp, Val* out) except -1:
    """compare() with the common same-type cases inlined: a field against a
    constant of its own type."""
    if a.tag == b.tag:
        if a.tag == T_DOUBLE:
            set_bool(out, cmp_result(cmp_double(a.v.d, b.v.d), cmp))
            return RUN_OK
        if a.tag == T_INT:
            set_bool(out, cmp_result(ORD_LT if a.v.i < b.v.i else (ORD_GT if a.v.i > b.v.i else ORD_EQ), cmp))
            return RUN_OK
        if a.tag == T_STR and (cmp == CMP_EQ or cmp == CMP_NE):
            # str_vals_equal without its ID_NONE shortcut, which this hot
            # path measured slower with (VM-only 225 -> 245 ns).
            if a.aux >= 0 and b.aux >= 0:
                set_bool(out, (a.aux == b.aux) == (cmp == CMP_EQ))
            else:
                set_bool(out, str_equal(<object>a.v.o, <object>b.v.o) == (cmp == CMP_EQ))
            return RUN_OK
    return compare(a, b, cmp, out)


cdef inline bint str_vals_equal(Val* a, Val* b) noexcept:
    """Equality of two string values: by interned id when both ids are known
    (a guard or the dispatch interned them already), else by text. Never a
    lookup to learn an id, which would hash a fresh string: comparing the
    text costs less."""
    if a.aux >= 0 and b.aux >= 0:
        return a.aux == b.aux
    if (a.aux >= 0 and b.aux == ID_NONE) or (b.aux >= 0 and a.aux == ID_NONE):
        return False            # one is a constant, the other equals no constant
    return str_equal(<object>a.v.o, <object>b.v.o)


cdef inline bint str_equal(object a, object b) noexcept:
    """Equality of two exact str objects, without hashing: CPython's compact
    strings of equal text have equal length, kind and bytes."""
    cdef Py_ssize_t n
    cdef int kind
    if a is b:
        return True
    n = PyUnicode_GET_LENGTH(a)
    kind = PyUnicode_KIND(a)
    if n != PyUnicode_GET_LENGTH(b) or kind != PyUnicode_KIND(b):
        return False
    return memcmp(PyUnicode_DATA(a), PyUnicode_DATA(b), <size_t>n * kind) == 0


cdef int arith(Val* a, Val* b, int op, Val* out) noexcept nogil:
    """out = a <op> b for numbers of one type; mixed types are CEL errors."""
    cdef long long ri
    cdef unsigned long long ru
    cdef bint over = False
    if a.tag == T_ERR or b.tag == T_ERR:
        set_err(out)
        return RUN_OK
    if not (is_number(a.tag) and is_number(b.tag)):
        return RUN_BAIL if (a.tag == T_STR or a.tag == T_MAP or b.tag == T_MAP) else _err(out)
    if a.tag != b.tag:
        set_err(out)
        return RUN_OK
    if a.tag == T_INT:
        if op == OP_ADD:
            over = fc_add_overflow(a.v.i, b.v.i, &ri)
        elif op == OP_SUB:
            over = fc_sub_overflow(a.v.i, b.v.i, &ri)
        elif op == OP_MUL:
            over = fc_mul_overflow(a.v.i, b.v.i, &ri)
        else:
            if b.v.i == 0 or (a.v.i == INT64_MIN and b.v.i == -1):
                over = True
            elif op == OP_DIV:
                ri = a.v.i / b.v.i          # C truncates toward zero, as CEL does
            else:
                ri = a.v.i % b.v.i
        if over:
            set_err(out)
        else:
            out.tag = T_INT
            out.v.i = ri
    elif a.tag == T_UINT:
        if op == OP_ADD:
            over = fc_uadd_overflow(a.v.u, b.v.u, &ru)
        elif op == OP_SUB:
            over = fc_usub_overflow(a.v.u, b.v.u, &ru)
        elif op == OP_MUL:
            over = fc_umul_overflow(a.v.u, b.v.u, &ru)
        elif b.v.u == 0:
            over = True
        elif op == OP_DIV:
            ru = a.v.u / b.v.u
        else:
            ru = a.v.u % b.v.u
        if over:
            set_err(out)
        else:
            out.tag = T_UINT
            out.v.u = ru
    else:
        out.tag = T_DOUBLE
        if op == OP_ADD:
            out.v.d = a.v.d + b.v.d
        elif op == OP_SUB:
            out.v.d = a.v.d - b.v.d
        elif op == OP_MUL:
            out.v.d = a.v.d * b.v.d
        elif op == OP_DIV:
            out.v.d = a.v.d / b.v.d       # IEEE: x/0 is ±inf or NaN, as in CEL
        else:
            set_err(out)                  # CEL has no double modulus
    return RUN_OK


cdef inline int _err(Val* out) noexcept nogil:
    set_err(out)
    return RUN_OK


cdef int in_set(Val* needle, Val* s, Code* code, Val* out) except -1:
    """``needle in constant_list`` with CEL's heterogeneous equality."""
    cdef int64_t x
    cdef int64_t* members
    cdef Py_ssize_t lo, hi, mid, n
    cdef double t
    if needle.tag == T_ERR:
        set_err(out)
        return RUN_OK
    if needle.tag == T_MAP:
        return RUN_BAIL
    if s.aux < 0:                      # a string set: a frozenset of str
        if needle.tag != T_STR:
            set_bool(out, False)
        else:
            set_bool(out, PySet_Contains(<object>s.v.o, <object>needle.v.o) == 1)
        return RUN_OK
    # An int set: binary search over the sorted members.
    if needle.tag == T_INT:
        x = needle.v.i
    elif needle.tag == T_UINT and needle.v.u <= <uint64_t>INT64_MAX:
        x = <int64_t>needle.v.u
    elif needle.tag == T_DOUBLE and not isnan(needle.v.d) and trunc(needle.v.d) == needle.v.d:
        if not (-9007199254740992.0 < needle.v.d < 9007199254740992.0):
            return RUN_BAIL     # beyond 2**53 several ints equal one double
        x = <int64_t>needle.v.d
    else:
        set_bool(out, False)
        return RUN_OK
    members = code.int_sets[s.aux]
    n = code.int_set_sizes[s.aux]
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) >> 1
        if members[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    set_bool(out, lo < n and members[lo] == x)
    return RUN_OK


cdef int select(Val* m, object key, bint test_only, Val* out) except -1:
    """``m.key`` / ``has(m.key)`` on the event map."""
    cdef PyObject* item
    if m.tag == T_ERR:
        set_err(out)
        return RUN_OK
    if m.tag != T_MAP:
        if m.tag == T_STR or m.tag == T_NULL or m.tag == T_BOOL or is_number(m.tag):
            set_err(out)            # no field selection on scalars
            return RUN_OK
        return RUN_BAIL
    if test_only:
        set_bool(out, PyDict_Contains(<object>m.v.o, key) == 1)
        return RUN_OK
    item = PyDict_GetItemWithError(<object>m.v.o, key)
    if item == NULL:
        set_err(out)                # no such key
        return RUN_OK
    load_value(<object>item, out)
    return RUN_BAIL if out.tag == T_BAIL else RUN_OK


cdef void load_value(object value, Val* out):
    """A Python value as a Val by its runtime type (T_BAIL when the VM cannot
    hold it). ``value`` must outlive the evaluation: strings are borrowed."""
    cdef int overflow = 0
    if value is True or value is False:
        out.tag = T_BOOL
        out.v.i = value is True
    elif PyLong_CheckExact(value):
        out.v.i = PyLong_AsLongLongAndOverflow(value, &overflow)
        out.tag = T_BAIL if overflow else T_INT
    elif PyFloat_CheckExact(value):
        out.tag = T_DOUBLE
        out.v.d = PyFloat_AS_DOUBLE(value)
    elif PyUnicode_CheckExact(value):
        out.tag = T_STR
        out.aux = ID_UNKNOWN
        out.v.o = <PyObject*>value
    elif value is None:
        out.tag = T_NULL
    elif PyDict_CheckExact(value):
        out.tag = T_MAP
        out.v.o = <PyObject*>value
    else:
        out.tag = T_BAIL


cdef int string_op(Val* a, Val* b, int op, Val* out) except -1:
    cdef Py_ssize_t r
    if a.tag == T_ERR or b.tag == T_ERR:
        set_err(out)
        return RUN_OK
    if a.tag != T_STR or b.tag != T_STR:
        if a.tag == T_MAP or b.tag == T_MAP:
            return RUN_BAIL
        set_err(out)                # no such overload
        return RUN_OK
    if op == OP_CONTAINS:
        set_bool(out, latin1_find(<object>a.v.o, <object>b.v.o))
    else:
        r = PyUnicode_Tailmatch(<object>a.v.o, <object>b.v.o, 0, PyUnicode_GET_LENGTH(<object>a.v.o),
                                -1 if op == OP_STARTS_WITH else 1)
        set_bool(out, r == 1)
    return RUN_OK


cdef inline bint latin1_find(object s, object sub) except -1:
    """``sub in s``: strsearch.h on one-byte strings, CPython's search otherwise."""
    cdef const unsigned char* lit
    cdef size_t m
    if PyUnicode_KIND(s) == 1 and PyUnicode_KIND(sub) == 1:
        lit = PyUnicode_1BYTE_DATA(sub)
        m = PyUnicode_GET_LENGTH(sub)
        return fc_find_any(PyUnicode_1BYTE_DATA(s), PyUnicode_GET_LENGTH(s), &lit, &m, 1, False)
    return PyUnicode_Find(s, sub, 0, PyUnicode_GET_LENGTH(s), 1) >= 0


cdef bint find_literals(object s, tuple literals, bint icase) except -1:
    """Does any of ``literals`` occur in the one-byte string ``s``, ignoring
    ASCII case with ``icase`` (the literals then in lower case)? One pass
    over ``s`` for up to FC_FIND_MAX literals (strsearch.h)."""
    cdef const unsigned char* lits[FC_FIND_MAX]
    cdef size_t lens[FC_FIND_MAX]
    cdef const unsigned char* h = PyUnicode_1BYTE_DATA(s)
    cdef size_t n = PyUnicode_GET_LENGTH(s)
    cdef int k = 0
    for lit in literals:
        if PyUnicode_KIND(lit) != 1:
            continue            # a character beyond Latin-1 occurs in no one-byte string
        lits[k] = PyUnicode_1BYTE_DATA(lit)
        lens[k] = PyUnicode_GET_LENGTH(lit)
        k += 1
        if k == FC_FIND_MAX:
            if fc_find_any(h, n, lits, lens, k, icase):
                return True
            k = 0
    return k > 0 and fc_find_any(h, n, lits, lens, k, icase)


cdef bint regex_search(PyObject* spec, object s) except -1:
    """``matches``: spec is (pattern.search, literals or None, ignore_case).
    A pattern that is only an alternation of literals is searched for here;
    anything else goes to the regex engine (one match object, freed at once)."""
    cdef object literals = <object>PyTuple_GET_ITEM(<object>spec, 1)
    if literals is not None:
        if PyUnicode_KIND(s) == 1:
            return find_literals(s, <tuple>literals, <object>PyTuple_GET_ITEM(<object>spec, 2) is True)
        if <object>PyTuple_GET_ITEM(<object>spec, 2) is False:
            for lit in literals:
                if latin1_find(s, lit):
                    return True
            return False
    return PyObject_CallOneArg(<object>PyTuple_GET_ITEM(<object>spec, 0), s) is not None


cdef int to_int(Val* a) noexcept nogil:
    """int(x) in place for numbers; RUN_BAIL for what the reference converts."""
    if a.tag == T_INT or a.tag == T_ERR:
        return RUN_OK
    if a.tag == T_UINT:
        if a.v.u > <uint64_t>INT64_MAX:
            set_err(a)
        else:
            a.tag = T_INT
            a.v.i = <int64_t>a.v.u
        return RUN_OK
    if a.tag == T_DOUBLE:
        # Truncation; NaN, infinities and values beyond int64 are errors.
        if isnan(a.v.d) or not (-9223372036854775808.0 < a.v.d < 9223372036854775808.0):
            return RUN_BAIL             # the reference decides the exact range edge
        a.tag = T_INT
        a.v.i = <int64_t>a.v.d
        return RUN_OK
    return RUN_BAIL


cdef inline void copy_val(Val* d, const Val* s) noexcept nogil:
    """d = s field by field. A whole-struct copy is one 16-byte load, and the
    value was usually just written field by field (materialize, set_bool):
    the load cannot take its data from those pending stores and waits for
    them to reach the cache (a store-forwarding stall, the VM's costliest
    instruction in perf before this)."""
    d.tag = s.tag
    d.aux = s.aux
    d.v.u = s.v.u


cdef int run(Code* code, Val* slots, Val* out) except -1:
    """Run ``code`` over ``slots``; the result goes to ``out``.

    An operator's result overwrites its first operand on the stack, and its
    operand functions (compare, in_set, arith, string_op, select) read their
    operands before they write the result: so operands are passed in place,
    never copied out first (a copy reads 16 bytes that were just written in
    parts, a store-forwarding stall)."""
    cdef int32_t* ops = code.ops
    cdef Val* consts = code.consts
    cdef Val* stack = code.stack
    cdef Val* top = stack - 1       # points at the top value; stack is empty when top < stack
    cdef Py_ssize_t pc = 0
    cdef int32_t op
    cdef int status
    cdef Val* v
    while True:
        op = ops[pc]
        if op == OP_LOAD_CMP_CONST or op == OP_LOAD_CMP_CONST_AND:
            # The commonest rule shape: ``field <cmp> constant``, often
            # followed by AND_SHORT (``amount > 1000.0 && ...``).
            top += 1
            v = &slots[ops[pc + 1]]
            if v.tag >= T_LAZY:
                materialize(v)
            status = fast_compare(v, &consts[ops[pc + 3]], ops[pc + 2], top)
            if status != RUN_OK:
                return status
            if op == OP_LOAD_CMP_CONST:
                pc += 4
            elif top.tag == T_BOOL and top.v.i == 0:
                pc = ops[pc + 4]
            else:
                pc += 5
        elif op == OP_AND_SHORT:
            if top.tag == T_BOOL and top.v.i == 0:
                pc = ops[pc + 1]
            else:
                pc += 2
        elif op == OP_OR_SHORT:
            if top.tag == T_BOOL and top.v.i != 0:
                pc = ops[pc + 1]
            else:
                pc += 2
        elif op == OP_AND or op == OP_OR:
            logic(top - 1, top, op == OP_AND)
            top -= 1
            pc += 1
        elif op == OP_CONST:
            top += 1
            top[0] = consts[ops[pc + 1]]
            pc += 2
        elif op == OP_LOAD:
            top += 1
            v = &slots[ops[pc + 1]]
            if v.tag >= T_LAZY:
                materialize(v)
            copy_val(top, v)
            pc += 2
        elif op == OP_CMP_CONST:
            status = fast_compare(top, &consts[ops[pc + 2]], ops[pc + 1], top)
            if status != RUN_OK:
                return status
            pc += 3
        elif op == OP_EQ or op == OP_NE or op == OP_LT or op == OP_LE or op == OP_GT or op == OP_GE:
            top -= 1
            status = compare(top, top + 1, op - OP_EQ, top)
            if status != RUN_OK:
                return status
            pc += 1
        elif op == OP_IN_SET:
            status = in_set(top, &consts[ops[pc + 1]], code, top)
            if status != RUN_OK:
                return status
            pc += 2
        elif op == OP_JUMP:
            pc = ops[pc + 1]
        elif op == OP_COND:
            if top.tag == T_BOOL:
                pc = pc + 3 if top.v.i else ops[pc + 1]
                top -= 1
            else:
                if top.tag == T_MAP:
                    return RUN_BAIL
                set_err(top)            # a non-bool condition is an error, kept as the result
                pc = ops[pc + 2]
        elif op == OP_NOT:
            if top.tag == T_BOOL:
                top.v.i = not top.v.i
            elif top.tag == T_MAP:
                return RUN_BAIL
            else:
                set_err(top)
            pc += 1
        elif op == OP_NEG:
            if top.tag == T_INT:
                if top.v.i == INT64_MIN:
                    set_err(top)
                else:
                    top.v.i = -top.v.i
            elif top.tag == T_DOUBLE:
                top.v.d = -top.v.d
            elif top.tag == T_MAP or top.tag == T_STR:
                return RUN_BAIL
            elif top.tag != T_ERR:
                set_err(top)
            pc += 1
        elif op == OP_ADD or op == OP_SUB or op == OP_MUL or op == OP_DIV or op == OP_MOD:
            top -= 1
            status = arith(top, top + 1, op, top)
            if status != RUN_OK:
                return status
            pc += 1
        elif op == OP_SIZE:
            if top.tag == T_STR:
                top.tag = T_INT
                top.v.i = PyUnicode_GET_LENGTH(<object>top.v.o)
            elif top.tag != T_ERR:
                return RUN_BAIL
            pc += 1
        elif op == OP_STARTS_WITH or op == OP_ENDS_WITH or op == OP_CONTAINS:
            top -= 1
            status = string_op(top, top + 1, op, top)
            if status != RUN_OK:
                return status
            pc += 1
        elif op == OP_MATCHES_CONST:
            if top.tag == T_STR:
                set_bool(top, regex_search(consts[ops[pc + 1]].v.o, <object>top.v.o))
            elif top.tag == T_MAP:
                return RUN_BAIL
            else:
                set_err(top)
            pc += 2
        elif op == OP_TO_INT:
            status = to_int(top)
            if status != RUN_OK:
                return status
            pc += 1
        elif op == OP_TO_DOUBLE:
            if top.tag == T_INT:
                top.tag = T_DOUBLE
                top.v.d = <double>top.v.i
            elif top.tag == T_UINT:
                top.tag = T_DOUBLE
                top.v.d = <double>top.v.u
            elif top.tag != T_DOUBLE and top.tag != T_ERR:
                return RUN_BAIL
            pc += 1
        elif op == OP_HAS_FIELD:
            v = &slots[ops[pc + 1]]
            if v.tag >= T_LAZY:
                materialize(v)
            top += 1
            set_bool(top, not (v.tag == T_ERR and v.aux == ERR_MISSING))
            pc += 3
        elif op == OP_SELECT or op == OP_HAS:
            status = select(top, <object>consts[ops[pc + 1]].v.o, op == OP_HAS, top)
            if status != RUN_OK:
                return status
            pc += 2
        elif op == OP_RETURN:
            copy_val(out, top)
            return RUN_OK
        else:
            raise SystemError(f"fraudcore VM: opcode {op} is not native (compiler bug)")


cdef inline void logic(Val* a, Val* b, bint is_and) noexcept nogil:
    """a = a && b (or a || b) with CEL's absorption of errors."""
    cdef int64_t absorbing = 0 if is_and else 1
    if (a.tag == T_BOOL and a.v.i == absorbing) or (b.tag == T_BOOL and b.v.i == absorbing):
        set_bool(a, absorbing)
    elif a.tag != T_BOOL or b.tag != T_BOOL:
        set_err(a)
    else:
        set_bool(a, not absorbing)


cdef class NativeProgram:
    """One compiled expression, ready for the VM."""

    def __cinit__(self):
        self.code.ops = NULL
        self.code.consts = NULL
        self.code.stack = NULL
        self.code.int_sets = NULL
        self.code.int_set_sizes = NULL
        self.code.n_int_sets = 0
        self.reads = NULL
        self.slots = NULL

    def __init__(self, bytecode):
        from fraudcore.cel.values import UInt
        self.uint_type = UInt
        self.keep = []
        self.intern = {}
        init_code(&self.code, bytecode, self.keep, self.intern)
        self.slot_names = tuple(bytecode.layout.names)
        self.n_slots = len(self.slot_names)
        self.slots = <Val*>calloc(max(self.n_slots, 1), sizeof(Val))
        reads = sorted(bytecode.layout.index[n] for n in bytecode.reads)
        self.n_reads = len(reads)
        self.reads = <int32_t*>malloc(max(self.n_reads, 1) * sizeof(int32_t))
        if self.slots == NULL or self.reads == NULL:
            raise MemoryError()
        for i, s in enumerate(reads):
            self.reads[i] = s

    def __dealloc__(self):
        free_code(&self.code)
        free(self.slots)
        free(self.reads)

    def evaluate(self, activation):
        """Return (True, value), or (False, None) when the result is an error
        or a value outside the VM's domain: the caller then asks the
        reference interpreter, which also gives the error's message."""
        cdef Py_ssize_t i
        cdef int32_t s
        cdef Val out
        cdef PyObject* item
        # An exact dict is read in place; the values it holds stay alive for
        # the run because the caller holds the dict (strings are borrowed).
        cdef dict act = activation if type(activation) is dict else dict(activation)
        for i in range(self.n_reads):
            s = self.reads[i]
            item = PyDict_GetItemWithError(act, self.slot_names[s])
            if item == NULL:
                set_err(&self.slots[s])     # no such attribute
                continue
            load_value(<object>item, &self.slots[s])
            if self.slots[s].tag == T_BAIL:
                return False, None
        if run(&self.code, self.slots, &out) != RUN_OK:
            return False, None
        return to_python(&out, self.uint_type)


cdef tuple to_python(Val* v, object uint_type):
    if v.tag == T_BOOL:
        return True, v.v.i != 0
    if v.tag == T_INT:
        return True, v.v.i
    if v.tag == T_DOUBLE:
        return True, v.v.d
    if v.tag == T_UINT:
        return True, uint_type(v.v.u)
    if v.tag == T_STR:
        return True, <object>v.v.o
    if v.tag == T_NULL:
        return True, None
    return False, None      # errors and maps: the reference path answers


cdef int init_code(Code* code, bytecode, list keep, dict intern) except -1:
    """Copy bytecode into C arrays; constants become Vals whose objects are
    owned by ``keep`` and whose strings get ids in ``intern``."""
    from fraudcore.cel.compile import ConstSet, RegexConst
    from fraudcore.cel.values import UInt
    cdef Py_ssize_t i, j, n = len(bytecode.code)
    cdef list int_sets = []
    code.n_ops = n
    code.ops = <int32_t*>malloc(max(n, 1) * sizeof(int32_t))
    code.stack = <Val*>calloc(max(n, 1), sizeof(Val))
    code.n_consts = len(bytecode.constants)
    code.consts = <Val*>calloc(max(code.n_consts, 1), sizeof(Val))
    if code.ops == NULL or code.stack == NULL or code.consts == NULL:
        raise MemoryError()
    for i in range(n):
        code.ops[i] = bytecode.code[i]
    for i, value in enumerate(bytecode.constants):
        keep.append(value)
        c = &code.consts[i]
        if isinstance(value, ConstSet):
            c.tag = T_SET
            if value.kind == "string":
                c.aux = -1
                c.v.o = <PyObject*>value.members
            else:
                c.aux = len(int_sets)
                int_sets.append(sorted(value.members))
        elif type(value) is str:
            c.tag = T_STR
            c.v.o = <PyObject*>value
            c.aux = intern.setdefault(value, len(intern))
        elif type(value) is UInt:
            c.tag = T_UINT
            c.v.u = int(value)
        elif isinstance(value, RegexConst):
            spec = (value.regex.search, value.literals, value.ignore_case)
            keep.append(spec)
            c.tag = T_REGEX
            c.v.o = <PyObject*>spec
        else:
            load_value(value, c)
            if c.tag == T_BAIL:
                raise SystemError(f"fraudcore VM: constant {value!r} is not native (compiler bug)")
    code.n_int_sets = len(int_sets)
    code.int_sets = <int64_t**>calloc(max(code.n_int_sets, 1), sizeof(int64_t*))
    code.int_set_sizes = <Py_ssize_t*>calloc(max(code.n_int_sets, 1), sizeof(Py_ssize_t))
    if code.int_sets == NULL or code.int_set_sizes == NULL:
        raise MemoryError()
    for i, members in enumerate(int_sets):
        code.int_set_sizes[i] = len(members)
        code.int_sets[i] = <int64_t*>malloc(max(len(members), 1) * sizeof(int64_t))
        if code.int_sets[i] == NULL:
            raise MemoryError()
        for j, m in enumerate(members):
            code.int_sets[i][j] = m
    return 0


cdef void free_code(Code* code) noexcept:
    cdef Py_ssize_t i
    if code.int_sets != NULL:
        for i in range(code.n_int_sets):
            free(code.int_sets[i])
    free(code.int_sets)
    free(code.int_set_sizes)
    free(code.ops)
    free(code.consts)
    free(code.stack)


cdef void load_field(object value, int32_t kind, Val* out) noexcept:
    """Load an event field checked against its declared type; a missing or
    mistyped field is an error value (the reference path words the message)."""
    cdef int overflow = 0
    if kind == K_DOUBLE:
        if PyFloat_CheckExact(value):
            out.tag = T_DOUBLE
            out.v.d = PyFloat_AS_DOUBLE(value)
        elif PyLong_CheckExact(value):      # JSON often drops the ".0"
            out.v.d = long_as_double(value)
            out.tag = T_DOUBLE
            if out.v.d == -1.0 and PyErr_Occurred():
                PyErr_Clear()               # beyond a double's range: mistyped
                out.tag = T_ERR
        else:
            out.tag = T_ERR
    elif kind == K_STRING:
        if PyUnicode_CheckExact(value):
            out.tag = T_STR
            out.aux = ID_UNKNOWN
            out.v.o = <PyObject*>value
        else:
            out.tag = T_ERR
    elif kind == K_INT:
        if PyLong_CheckExact(value):
            out.v.i = PyLong_AsLongLongAndOverflow(value, &overflow)
            out.tag = T_ERR if overflow else T_INT
        else:
            out.tag = T_ERR
    elif kind == K_BOOL:
        if value is True or value is False:
            out.tag = T_BOOL
            out.v.i = value is True
        else:
            out.tag = T_ERR
    elif kind == K_UINT:
        if PyLong_CheckExact(value) and value >= 0 and value <= 18446744073709551615:
            out.tag = T_UINT
            out.v.u = value
        else:
            out.tag = T_ERR
    else:
        out.tag = T_BAIL


cdef counter_hook_t counter_hook = NULL


cdef void set_counter_hook(counter_hook_t hook) noexcept:
    global counter_hook
    counter_hook = hook


# The event being decided (borrowed). Deciding runs under the GIL from load
# to the end of the rules, and whoever calls back into Python in between
# (the engine's filter fallback) sets it again before going on.
cdef PyObject* current_event = NULL
cdef Py_ssize_t* current_hints = NULL     # the dictpeek hints of the rule set deciding it


cdef void set_current_event(dict event, Py_ssize_t* hints) noexcept:
    global current_event, current_hints
    current_event = <PyObject*>event
    current_hints = hints


cdef int materialize(Val* v) except -1:
    """Fill a slot on first use. A field (T_LAZY: v.o its name, aux its kind)
    is looked up in the current event and converted: fields no evaluated rule
    reaches are never touched. A counter (T_COUNTER) is read from the store
    by the engine's hook: counters no evaluated rule reads are never read."""
    cdef PyObject* item
    cdef int32_t kind
    cdef Py_ssize_t s
    if v.tag == T_LAZY:
        # aux: the field's kind (low byte) and its slot (the rest), whose
        # dictpeek hint is in current_hints.
        kind = v.aux & 0xFF
        s = v.aux >> 8
        item = fc_dict_peek(current_event, v.v.o, current_hints[s])
        if item == NULL:
            item = PyDict_GetItemWithError(<object>current_event, <object>v.v.o)
            if item != NULL:
                current_hints[s] = fc_dict_index(current_event, v.v.o)
        if item == NULL:
            v.tag = T_ERR
            v.aux = ERR_MISSING         # has(event.f) is false
        else:
            load_field(<object>item, kind, v)
            v.aux = 0 if v.tag == T_ERR else v.aux
    elif v.tag == T_COUNTER:
        counter_hook(v.v.o, v.aux, v)
    return 0


cdef class NativeRuleSet:
    """Every rule of a policy, run over one shared slot array per event."""

    def __cinit__(self):
        self.codes = NULL
        self.n_rules = 0
        self.slot_kinds = NULL
        self.load_order = NULL
        self.slots = NULL
        self.reads = NULL
        self.ranks = NULL
        self.scores = NULL
        self.thresholds = NULL
        self.matched = NULL
        self.failed = NULL
        self.hits = NULL
        self.template = NULL
        self.hints = NULL
        self.always = NULL
        self.groups = NULL
        self.n_groups = 0
        self.dispatch_slot = -1
        self.guard_kind = NULL
        self.guard_slot = NULL
        self.guard_id = NULL
        self.guard_str = NULL
        self.has_bail = False

    def __init__(self, bytecodes, slot_names, slot_kinds, ranks, scores, thresholds):
        """``thresholds[r]`` is the score from which action rank r applies, or -1."""
        cdef Py_ssize_t i, j
        self.keep = []
        self.intern = {}
        self.n_rules = len(bytecodes)
        self.n_decision = self.n_rules
        self.codes = <Code*>calloc(max(self.n_rules, 1), sizeof(Code))
        self.reads = <int32_t**>calloc(max(self.n_rules, 1), sizeof(int32_t*))
        self.ranks = <int32_t*>malloc(max(self.n_rules, 1) * sizeof(int32_t))
        self.hits = <uint64_t*>calloc(max(self.n_rules, 1), sizeof(uint64_t))
        self.scores = <int64_t*>malloc(max(self.n_rules, 1) * sizeof(int64_t))
        self.slot_names = tuple(slot_names)
        self.n_slots = len(self.slot_names)
        self.slots = <Val*>calloc(max(self.n_slots, 1), sizeof(Val))
        self.slot_kinds = <int32_t*>malloc(max(self.n_slots, 1) * sizeof(int32_t))
        self.load_order = <int32_t*>malloc(max(self.n_slots, 1) * sizeof(int32_t))
        self.n_actions = len(thresholds)
        self.n_words = max((self.n_rules + 63) // 64, 1)
        self.matched = <uint64_t*>calloc(self.n_words, sizeof(uint64_t))
        self.failed = <uint64_t*>calloc(self.n_words, sizeof(uint64_t))
        if self.matched == NULL or self.failed == NULL:
            raise MemoryError()
        self.thresholds = <int64_t*>malloc(max(self.n_actions, 1) * sizeof(int64_t))
        if (self.codes == NULL or self.reads == NULL or self.ranks == NULL or self.scores == NULL or self.hits == NULL
                or self.slots == NULL or self.slot_kinds == NULL or self.load_order == NULL
                or self.thresholds == NULL):
            raise MemoryError()
        self.n_load = 0
        self.hints = <Py_ssize_t*>malloc(max(self.n_slots, 1) * sizeof(Py_ssize_t))
        if self.hints == NULL:
            raise MemoryError()
        for i in range(self.n_slots):
            self.hints[i] = -1
        for i in range(self.n_slots):
            self.slots[i].tag = T_ERR       # until loaded or set: reading it is an error
            self.slot_kinds[i] = slot_kinds[i]
            if slot_kinds[i] != K_SET:
                self.load_order[self.n_load] = i
                self.n_load += 1
        # The slots' state before an event, which reset() copies: a field is
        # looked up when first read (T_LAZY, aux: its kind and slot, v: its
        # name), ``event`` is the event map, a counter is an error until set.
        self.template = <Val*>calloc(max(self.n_slots, 1), sizeof(Val))
        if self.template == NULL:
            raise MemoryError()
        self.event_slot = -1
        for i in range(self.n_slots):
            if self.slot_kinds[i] == K_SET:
                self.template[i].tag = T_ERR
            elif self.slot_kinds[i] == K_EVENT:
                self.template[i].tag = T_MAP
                self.event_slot = i
            else:
                self.template[i].tag = T_LAZY
                self.template[i].aux = self.slot_kinds[i] | (i << 8)
                self.template[i].v.o = <PyObject*>self.slot_names[i]
        for i in range(self.n_actions):
            self.thresholds[i] = thresholds[i]
        self.other_fields = any(self.slot_kinds[i] == K_OTHER for i in range(self.n_slots))
        self.guard_kind = <int32_t*>calloc(max(self.n_rules, 1), sizeof(int32_t))
        self.guard_slot = <int32_t*>calloc(max(self.n_rules, 1), sizeof(int32_t))
        self.guard_id = <int32_t*>calloc(max(self.n_rules, 1), sizeof(int32_t))
        self.guard_str = <PyObject**>calloc(max(self.n_rules, 1), sizeof(PyObject*))
        if self.guard_kind == NULL or self.guard_slot == NULL or self.guard_id == NULL or self.guard_str == NULL:
            raise MemoryError()
        for i, bc in enumerate(bytecodes):
            # A rule the VM cannot run keeps ops == NULL and is always
            # reported as failed, so the caller runs it on the reference path.
            if bc.native:
                init_code(&self.codes[i], bc, self.keep, self.intern)
                if bc.guard is not None:
                    self.guard_slot[i], expected = bc.guard
                    if expected is True:
                        self.guard_kind[i] = GUARD_BOOL
                    else:
                        self.guard_kind[i] = GUARD_STR
                        self.guard_id[i] = self.intern.setdefault(expected, len(self.intern))
                        self.keep.append(expected)
                        self.guard_str[i] = <PyObject*>expected
            self.ranks[i] = ranks[i]
            self.scores[i] = scores[i]
            reads = [bc.layout.index[n] for n in bc.reads]
            self.reads[i] = <int32_t*>malloc((len(reads) + 1) * sizeof(int32_t))
            if self.reads[i] == NULL:
                raise MemoryError()
            for j, s in enumerate(reads):
                self.reads[i][j] = s
            self.reads[i][len(reads)] = -1
        self.build_dispatch()

    def __dealloc__(self):
        cdef Py_ssize_t i
        free(self.template)
        free(self.hints)
        if self.groups != NULL:
            for i in range(self.n_groups):
                free(self.groups[i])
        free(self.groups)
        free(self.always)
        free(self.guard_kind)
        free(self.guard_slot)
        free(self.guard_id)
        free(self.guard_str)
        if self.codes != NULL:
            for i in range(self.n_rules):
                free_code(&self.codes[i])
                if self.reads != NULL:
                    free(self.reads[i])
        free(self.codes)
        free(self.reads)
        free(self.ranks)
        free(self.scores)
        free(self.slots)
        free(self.slot_kinds)
        free(self.load_order)
        free(self.thresholds)
        free(self.matched)
        free(self.failed)
        free(self.hits)

    cdef int load(self, dict event, bint prefetch=False) except -1:
        """Make ``event`` the current event (borrowed: it must outlive the
        run). Fields are looked up only when a rule first reads them (see
        materialize): with the rules' guards, an event touches the fields of
        the rules that apply to it and no others.

        ``prefetch``: start loading the fields' value objects now. Objects an
        application keeps for long (user ids, addresses) are seldom in cache,
        and the engine has work to do before its rules read them (hashing,
        counting), during which the misses overlap: 3.11 -> 2.83 us p50 in an
        A/B of the engine; a string field's second line too (prefetch_field):
        2.84 -> 2.58 us p50 at a million users, toggled in one process (a
        third line as well measured no better). Rules alone read the values
        at once, so there the prefetch only costs its instructions (+19 ns
        per event in an A/B)."""
        cdef Py_ssize_t i
        cdef int32_t s
        cdef PyObject* item
        set_current_event(event, self.hints)
        self.reset()
        if self.event_slot >= 0:
            self.slots[self.event_slot].v.o = <PyObject*>event
        if prefetch:
            for i in range(self.n_load):
                s = self.load_order[i]
                if self.slots[s].tag == T_LAZY:
                    item = fc_dict_peek(<PyObject*>event, self.slots[s].v.o, self.hints[s])
                    if item != NULL:
                        prefetch_field(item, self.slot_kinds[s])
        return 0

    cdef void reset(self) noexcept:
        """Every slot back to its state before any event (fields lazy,
        caller-filled counters errors until filled): one copy."""
        self.has_bail = self.other_fields
        memcpy(self.slots, self.template, <size_t>self.n_slots * sizeof(Val))

    cdef int run_rules(self, Py_ssize_t lo, Py_ssize_t hi, int64_t* score_out) except -1:
        """Run rules lo..hi-1 over the loaded slots: set their matched and
        failed bits, return the action rank (score thresholds included).

        Rules guarded on the dispatch field (``type == "withdrawal" && ...``)
        are visited only when the event's value is theirs: the field's
        interned id selects a bit mask of candidate rules, as a rule
        engine's discrimination network does, so a trade never iterates
        over the withdrawal rules."""
        cdef Py_ssize_t i, r, w
        cdef int32_t id_ = self.dispatch_id()
        cdef uint64_t m, range_mask
        cdef int64_t score = 0
        cdef int32_t rank = 0
        for w in range(lo >> 6, (hi + 63) >> 6):
            range_mask = ~(<uint64_t>0)
            if w == lo >> 6 and lo & 63:
                range_mask &= ~(((<uint64_t>1) << (lo & 63)) - 1)
            if w == (hi - 1) >> 6 and hi & 63:
                range_mask &= ((<uint64_t>1) << (hi & 63)) - 1
            self.matched[w] &= ~range_mask
            self.failed[w] &= ~range_mask
            m = self.candidates(id_, w) & range_mask
            while m:
                r = (w << 6) + fc_ctz(m)
                m &= m - 1
                self.run_one(r, &score, &rank)
        for i in range(self.n_actions - 1, rank, -1):
            if self.thresholds[i] >= 0 and score >= self.thresholds[i]:
                rank = <int32_t>i
                break
        score_out[0] = score
        return rank

    cdef inline int run_one(self, Py_ssize_t r, int64_t* score, int32_t* rank) except -1:
        """Run rule r: its guard, then its program; record the outcome."""
        cdef int32_t* rd
        cdef int32_t g = self.guard_kind[r]
        cdef Val* gv
        cdef Val out
        cdef int status
        if g != GUARD_NONE:
            gv = &self.slots[self.guard_slot[r]]
            if gv.tag >= T_LAZY:
                materialize(gv)
            if g == GUARD_STR and gv.tag == T_STR:
                # ``field == "x" && ...`` with field != "x": false. By id
                # when the field's is known; else by text, cheaper than the
                # intern lookup, which hashes a fresh string.
                if gv.aux >= 0 or gv.aux == ID_NONE:
                    if gv.aux != self.guard_id[r]:
                        return 0
                elif not str_equal(<object>gv.v.o, <object>self.guard_str[r]):
                    return 0
            elif gv.tag == T_BOOL and gv.v.i == 0:
                return 0                # ``flag && ...`` with flag false: false
        status = RUN_OK if self.codes[r].ops != NULL else RUN_BAIL
        if self.has_bail:
            rd = self.reads[r]
            while status == RUN_OK and rd[0] >= 0:
                if self.slots[rd[0]].tag >= T_LAZY:
                    materialize(&self.slots[rd[0]])
                if self.slots[rd[0]].tag == T_BAIL:
                    status = RUN_BAIL
                rd += 1
        if status == RUN_OK:
            status = run(&self.codes[r], self.slots, &out)
        if status == RUN_OK and out.tag == T_BOOL:
            if out.v.i:
                self.hits[r] += 1
                score[0] += self.scores[r]
                if self.ranks[r] > rank[0]:
                    rank[0] = self.ranks[r]
                self.matched[r >> 6] |= (<uint64_t>1) << (r & 63)
        else:
            self.failed[r >> 6] |= (<uint64_t>1) << (r & 63)
        return 0

    cdef int32_t dispatch_id(self) except? -3:
        """Which rules run for the loaded event (see run_rules): -1 every
        rule; an id below n_groups, the rules not guarded on the dispatch
        field and those guarded on that value; n_groups, the rules not
        guarded on it alone."""
        cdef Val* gv
        cdef int32_t id_
        if self.dispatch_slot < 0:
            return -1
        gv = &self.slots[self.dispatch_slot]
        if gv.tag >= T_LAZY:
            materialize(gv)
        if gv.tag != T_STR:
            return -1
        id_ = intern_id(gv, self.intern)
        return id_ if 0 <= id_ < self.n_groups and self.groups[id_] != NULL else <int32_t>self.n_groups

    cdef inline uint64_t candidates(self, int32_t id_, Py_ssize_t w) noexcept:
        """Word w of the mask of rules that run in dispatch case id_."""
        if id_ < 0:
            return ~(<uint64_t>0)
        return self.always[w] | (self.groups[id_][w] if id_ < self.n_groups and self.groups[id_] != NULL else 0)

    cdef int build_dispatch(self) except -1:
        """Choose the dispatch field (the one most string guards test) and
        build, per interned value, the mask of rules guarded on it; the
        ``always`` mask holds every other rule."""
        cdef Py_ssize_t r, w
        counts = {}
        for r in range(self.n_rules):
            if self.guard_kind[r] == GUARD_STR:
                counts[self.guard_slot[r]] = counts.get(self.guard_slot[r], 0) + 1
        self.always = <uint64_t*>calloc(self.n_words, sizeof(uint64_t))
        if self.always == NULL:
            raise MemoryError()
        self.dispatch_slot = max(counts, key=counts.get) if counts else -1
        self.n_groups = len(self.intern)
        self.groups = <uint64_t**>calloc(max(self.n_groups, 1), sizeof(uint64_t*))
        if self.groups == NULL:
            raise MemoryError()
        for r in range(self.n_rules):
            if self.guard_kind[r] == GUARD_STR and self.guard_slot[r] == self.dispatch_slot:
                if self.groups[self.guard_id[r]] == NULL:
                    self.groups[self.guard_id[r]] = <uint64_t*>calloc(self.n_words, sizeof(uint64_t))
                    if self.groups[self.guard_id[r]] == NULL:
                        raise MemoryError()
                self.groups[self.guard_id[r]][r >> 6] |= (<uint64_t>1) << (r & 63)
            else:
                self.always[r >> 6] |= (<uint64_t>1) << (r & 63)
        return 0

    def configure(self, actions, meta, fallback, Py_ssize_t n_decision):
        """What ``decide`` needs to build Decisions: the action names by rank,
        the rule metadata, ``fallback(event, matched, failed)``, called when
        some rules must be decided on the reference path, and how many of the
        rules decide (the rest are counter filters, run by the engine)."""
        self.n_decision = n_decision
        self.actions = tuple(actions)
        self.meta = meta
        self.version = meta.version
        self.fallback = fallback

    def decide(self, event):
        """Decide ``event`` (a dict, or any mapping) into a Decision."""
        cdef int64_t score
        cdef Py_ssize_t i
        cdef dict ev = event if type(event) is dict else as_event(event)
        self.load(ev)
        rank = self.run_rules(0, self.n_decision, &score)
        failed = bits_to_int(self.failed, self.n_decision)
        if failed:
            return self.fallback(ev, bits_to_int(self.matched, self.n_decision), failed)
        return new_decision(<str>self.actions[rank], score, bits_to_int(self.matched, self.n_decision),
                            self.meta, self.version)

    def run(self, dict event):
        """Decide ``event``: returns (action rank, score, matched mask, failed
        mask). A failed rule errored or left the VM's domain; the caller asks
        the reference interpreter about those (and only those)."""
        cdef int64_t score
        self.load(event)
        rank = self.run_rules(0, self.n_decision, &score)
        return rank, score, bits_to_int(self.matched, self.n_decision), bits_to_int(self.failed, self.n_decision)

    def rule_hits(self):
        """How many times each rule matched on the native path."""
        return [self.hits[r] for r in range(self.n_decision)]

    def time_rules(self, dict event, Py_ssize_t iterations):
        """Benchmark hook: load ``event`` once, run every rule ``iterations``
        times, return the nanoseconds per iteration (rules only, no loading)."""
        cdef timespec t0, t1
        cdef int64_t score
        cdef Py_ssize_t i
        self.load(event)
        clock_gettime(CLOCK_MONOTONIC, &t0)
        for i in range(iterations):
            self.run_rules(0, self.n_decision, &score)
        clock_gettime(CLOCK_MONOTONIC, &t1)
        return ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / max(iterations, 1)


cdef object bits_to_int(uint64_t* words, Py_ssize_t nbits):
    """The first ``nbits`` bits of a bit array as a Python int (small ints
    are cached: no allocation)."""
    cdef Py_ssize_t i, n = (nbits + 63) >> 6
    cdef uint64_t last
    if n == 0:
        return 0
    last = words[n - 1]
    if nbits & 63:
        last &= ((<uint64_t>1) << (nbits & 63)) - 1
    if n == 1:
        return last
    result = last
    for i in range(n - 2, -1, -1):
        result = (result << 64) | words[i]
    return result


cdef dict as_event(object event):
    """An event given as another mapping, as a dict; anything else is a
    TypeError that says what was given."""
    if isinstance(event, dict) or hasattr(event, "keys"):
        return dict(event)
    raise TypeError(f"an event must be a dict (or a mapping) of field name to value, got {type(event).__name__}")


@cython.freelist(32)
cdef class Decision:
    """allow, review or block, with the score and the reasons (SPEC §2).

    The native twin of ``fraudcore.decision.DecisionPy``: the rule set fills
    its C fields directly, and ``rules``, ``reasons``, ``errors`` and
    ``features`` are built only when read, so deciding an event creates this
    one object on the common path.
    """

    def __init__(self, str action, score, matched, meta, errors=None, features=None):
        self.action = action
        self.score = score
        self.matched = matched
        self.meta = meta
        self.version = meta.version
        self._errors = errors
        self._features = features

    @property
    def rules(self):
        """Ids of the matched rules, in file order."""
        return select_bits(self.meta.ids, self.matched)

    @property
    def reasons(self):
        """The matched rules' reasons, in file order."""
        return select_bits(self.meta.reasons, self.matched)

    @property
    def errors(self):
        """[(rule_id, message)] for the rules that failed to evaluate."""
        if self._errors is None:
            self._errors = []
        self.track()
        return self._errors

    @property
    def features(self):
        """The counter values the matched rules read."""
        cdef Py_ssize_t i
        cdef Feature* f
        if self._features is None:
            out = {}
            for i in range(self.n_feat):
                f = &self.feat[i]
                out[self.feat_names[f.counter]] = f.v.i if f.is_int else f.v.d
            self._features = out
            self.track()
            PyMem_Free(self.feat)
            self.feat = NULL
            self.n_feat = 0
        return self._features

    def __dealloc__(self):
        PyMem_Free(self.feat)

    cdef inline void track(self) noexcept:
        # Handing out a mutable list or dict that could come to hold this
        # decision lets it join a cycle: from now on the collector sees it.
        if not PyObject_GC_IsTracked(self):
            PyObject_GC_Track(self)

    def to_dict(self):
        """The decision as plain data (RuleMeta.as_dict), built here because a
        server does it for every answer."""
        errors = self._errors
        return {
            "action": self.action,
            "score": self.score,
            "rules": select_bits(self.meta.ids, self.matched),
            "reasons": select_bits(self.meta.reasons, self.matched),
            "features": self.features,
            "errors": [list(e) for e in errors] if errors else [],
            "version": self.version,
        }

    def __eq__(self, other):
        return self.meta.equal(self, other)

    def __hash__(self):
        return hash((self.action, self.score, self.matched))

    def __repr__(self):
        return self.meta.describe(self)


cdef list select_bits(tuple items, object mask):
    """The items whose bit is set in ``mask`` (any width), in order: 64 bits
    at a time, one ctz per set bit."""
    cdef list out = []
    cdef unsigned long long m
    cdef Py_ssize_t base = 0
    while mask:
        m = <unsigned long long>(mask & 0xFFFFFFFFFFFFFFFF)
        while m:
            out.append(items[base + fc_ctz(m)])
            m &= m - 1
        mask >>= 64
        base += 64
    return out


cdef Decision new_decision(str action, int64_t score, object matched, object meta, str version):
    cdef Decision d = Decision.__new__(Decision)
    # A new decision holds strs, ints, the rule set's meta and a C array: it
    # cannot be part of a cycle until errors or features hand out a mutable
    # container (then it is tracked again). Untracked, the hundred thousand
    # decisions of a decide_many leave the collector's young generation
    # empty: with the cyclic GC on, each collection it triggers had walked
    # every decision made since the last, ~18% of decide_many's time.
    PyObject_GC_UnTrack(d)
    d.action = action
    d.score = score
    d.matched = matched
    d.meta = meta
    d.version = version
    return d
