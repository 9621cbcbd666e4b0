/* dictpeek.h: an inline cache for reading an event dict's fields.
 *
 * Events that come from the same producer (a JSON or msgpack decoder, a
 * dict literal, dict(zip(names, row))) insert their keys in the same order,
 * so a field sits at the same index of the dict's entry array in every
 * event. fc_dict_peek remembers that index per field and, next time, checks
 * the entry at it: if its key is the name (the very same interned object,
 * or, from a decoder that makes its own key objects, an equal string: same
 * cached hash, same bytes), its value is the field's value, at the cost of
 * a bounds check and a compare instead of a hash-table probe. CPython's own
 * attribute caches work the same way.
 *
 * It reads CPython's internal dict layout, so it is compiled for exactly the
 * layout it was written against (CPython 3.11's combined tables,
 * Include/internal/pycore_dict.h); on any other version, and for split or
 * non-string-keyed tables, fc_dict_peek returns NULL and the caller does an
 * ordinary lookup (PyDict_GetItemWithError), which also refreshes the cache.
 * It never returns a wrong value: a hit requires the key at the cached index
 * to equal the name, and the index to lie inside the table.
 */
#ifndef FRAUDCORE_DICTPEEK_H
#define FRAUDCORE_DICTPEEK_H

#include <Python.h>
#include <stdint.h>
#include <string.h>

#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030C0000
#define FC_DICTPEEK 1
/* The 3.11 layout (pycore_dict.h), restated: only what is read. */
typedef struct {
    Py_ssize_t dk_refcnt;
    uint8_t dk_log2_size;
    uint8_t dk_log2_index_bytes;
    uint8_t dk_kind;            /* 0 general, 1 unicode, 2 split */
    uint32_t dk_version;
    Py_ssize_t dk_usable;
    Py_ssize_t dk_nentries;
    char dk_indices[];
} fc_keys;
typedef struct { PyObject *me_key; PyObject *me_value; } fc_unicode_entry;
#else
#define FC_DICTPEEK 0
#endif

#if FC_DICTPEEK
/* key == name, for a key of a unicode-keyed table (a str whose hash is
 * always computed, or NULL where an entry was deleted) and an interned
 * name: identity first, then hash, kind, length and bytes. */
static inline int fc_same_name(PyObject *key, PyObject *name)
{
    Py_ssize_t n;
    if (key == name)
        return 1;
    if (key == NULL)            /* a deleted entry */
        return 0;
    if (((PyASCIIObject *)key)->hash != ((PyASCIIObject *)name)->hash)
        return 0;
    n = PyUnicode_GET_LENGTH(key);
    return n == PyUnicode_GET_LENGTH(name) && PyUnicode_KIND(key) == PyUnicode_KIND(name)
        && memcmp(PyUnicode_DATA(key), PyUnicode_DATA(name), (size_t)n * PyUnicode_KIND(key)) == 0;
}
#endif

/* The value of the entry at *hint if its key is `name`, else NULL. */
static inline PyObject *fc_dict_peek(PyObject *dict, PyObject *name, Py_ssize_t hint)
{
#if FC_DICTPEEK
    PyDictObject *d = (PyDictObject *)dict;
    fc_keys *k = (fc_keys *)d->ma_keys;
    fc_unicode_entry *e;
    if (d->ma_values != NULL || k->dk_kind != 1 || hint < 0 || hint >= k->dk_nentries)
        return NULL;
    e = (fc_unicode_entry *)(&((int8_t *)k->dk_indices)[(size_t)1 << k->dk_log2_index_bytes]);
    return fc_same_name(e[hint].me_key, name) ? e[hint].me_value : NULL;
#else
    (void)dict; (void)name; (void)hint;
    return NULL;
#endif
}

/* The index of `name` in the dict's entry array (to cache), or -1. A linear
 * scan, done only on a cache miss: event dicts are small. */
static inline Py_ssize_t fc_dict_index(PyObject *dict, PyObject *name)
{
#if FC_DICTPEEK
    PyDictObject *d = (PyDictObject *)dict;
    fc_keys *k = (fc_keys *)d->ma_keys;
    fc_unicode_entry *e;
    Py_ssize_t i;
    if (d->ma_values != NULL || k->dk_kind != 1)
        return -1;
    e = (fc_unicode_entry *)(&((int8_t *)k->dk_indices)[(size_t)1 << k->dk_log2_index_bytes]);
    for (i = 0; i < k->dk_nentries; i++)
        if (fc_same_name(e[i].me_key, name))
            return i;
#else
    (void)dict; (void)name;
#endif
    return -1;
}

#endif
