/* prefetch.h - software prefetches that the compiler keeps.
 *
 * GCC counts __builtin_prefetch as free of side effects, so a function whose
 * only effect is prefetching (the counter store's prefetch_lines, the
 * engine's prefetch pass) is judged "const" and every call to it deleted:
 * CounterStore.prefetch once compiled to a bare `ret`. The empty volatile
 * asm that uses the address is a side effect the optimiser must keep, and
 * costs no instruction.
 */
#ifndef FC_PREFETCH_H
#define FC_PREFETCH_H

/* A line about to be written (counter entries). */
static inline void fc_prefetch(const void *p)
{
    __builtin_prefetch(p, 1, 3);
    __asm__ __volatile__("" : : "r"(p));
}

/* A line about to be read (an event's field values). */
static inline void fc_prefetch_ro(const void *p)
{
    __builtin_prefetch(p, 0, 3);
    __asm__ __volatile__("" : : "r"(p));
}

#endif /* FC_PREFETCH_H */
