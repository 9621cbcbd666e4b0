/* strsearch.h - substring search for the VM's `contains` and for `matches`
 * patterns that are an alternation of literals, in one-byte (Latin-1) text.
 *
 * Event strings are short (user agents: ~70 bytes). There libc's memmem and
 * a memchr per literal and per letter case spend more on setting up than on
 * scanning, and an alternation of k literals scanned the text up to 2k times.
 * Here one pass compares 16 bytes at a time against the first byte of every
 * literal (SSE2, part of x86-64) and checks each candidate position in full.
 *
 * Case-insensitive search folds ASCII letters only: literals are given in
 * lower case, and no non-ASCII Latin-1 character folds to an ASCII letter,
 * so the result is exact for Latin-1 text.
 */
#ifndef FC_STRSEARCH_H
#define FC_STRSEARCH_H

#include <stddef.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define FC_FIND_MAX 8       /* literals per call */

static inline unsigned char fc_fold(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c | 0x20) : c;
}

/* Does lit (m >= 1 bytes) occur at h? */
static inline int fc_match_at(const unsigned char *h, const unsigned char *lit, size_t m, int icase)
{
    size_t j;
    if (!icase)
        return memcmp(h, lit, m) == 0;
    for (j = 0; j < m; j++)
        if (fc_fold(h[j]) != lit[j])
            return 0;
    return 1;
}

/* Does any literal occur at position p of h (n bytes)? */
static inline int fc_any_at(const unsigned char *h, size_t n, size_t p, const unsigned char *const *lit,
                            const size_t *len, int k, int icase)
{
    int j;
    for (j = 0; j < k; j++)
        if (len[j] <= n - p && fc_match_at(h + p, lit[j], len[j], icase))
            return 1;
    return 0;
}

/* Does any of the k (1..FC_FIND_MAX) literals occur in h? */
static int fc_find_any(const unsigned char *h, size_t n, const unsigned char *const *lit, const size_t *len,
                       int k, int icase)
{
    size_t shortest = (size_t)-1, last, i = 0;
    int j;
    for (j = 0; j < k; j++) {
        if (len[j] == 0)
            return 1;
        if (len[j] < shortest)
            shortest = len[j];
    }
    if (n < shortest)
        return 0;
    last = n - shortest;        /* the last position a literal can start at */
#ifdef __SSE2__
    {
        /* Per literal, the byte its first character shows in the text: a
         * lower-case letter, under icase, also as its upper case, which the
         * OR with 0x20 maps onto it (and maps no other byte onto it). */
        __m128i first[FC_FIND_MAX];
        int fold[FC_FIND_MAX];
        const __m128i bit5 = _mm_set1_epi8(0x20);
        for (j = 0; j < k; j++) {
            first[j] = _mm_set1_epi8((char)lit[j][0]);
            fold[j] = icase && lit[j][0] >= 'a' && lit[j][0] <= 'z';
        }
        for (; i + 16 <= n && i <= last; i += 16) {
            __m128i raw = _mm_loadu_si128((const __m128i *)(h + i));
            __m128i low = _mm_or_si128(raw, bit5);
            unsigned mask = 0;
            for (j = 0; j < k; j++)
                mask |= (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(fold[j] ? low : raw, first[j]));
            while (mask) {
                size_t p = i + (size_t)__builtin_ctz(mask);
                mask &= mask - 1;
                if (p > last)
                    return 0;
                if (fc_any_at(h, n, p, lit, len, k, icase))
                    return 1;
            }
        }
    }
#endif
    for (; i <= last; i++)
        if (fc_any_at(h, n, i, lit, len, k, icase))
            return 1;
    return 0;
}

#endif /* FC_STRSEARCH_H */
