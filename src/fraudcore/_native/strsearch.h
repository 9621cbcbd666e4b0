/* strsearch.h - substring search for the VM's `contains` and for `matches`
 * patterns that are an alternation of literals, in one-byte (Latin-1) text.
 *
 * Event strings are short (user agents: ~70 bytes). There libc's memmem and
 * a memchr per literal and per letter case spend more on setting up than on
 * scanning, and an alternation of k literals scanned the text up to 2k times.
 * Here one pass compares 16 positions at a time with the first and the last
 * byte of every literal (SSE2, part of x86-64), and checks the few candidate
 * positions in full: the "generic SIMD" substring search (W. Mula).
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

#ifdef __SSE2__
#define FC_SCAN_MAX 512     /* texts up to this long are scanned 16 bytes at a time */
#define FC_LIT_MAX 64       /* ... for literals up to this long */

/* The 16 bytes at p compared with c: lower-case letters also match their
 * upper case (OR 0x20 maps exactly those two onto c). */
static inline unsigned fc_eq16(const unsigned char *p, unsigned char c, int fold)
{
    __m128i v = _mm_loadu_si128((const __m128i *)p);
    if (fold && c >= 'a' && c <= 'z')
        v = _mm_or_si128(v, _mm_set1_epi8(0x20));
    return (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8((char)c)));
}
#endif

/* Does any of the k (1..FC_FIND_MAX) literals occur in h? */
static int fc_find_any(const unsigned char *h, size_t n, const unsigned char *const *lit, const size_t *len,
                       int k, int icase)
{
    size_t shortest = (size_t)-1, longest = 0, last, i;
    int j;
    for (j = 0; j < k; j++) {
        if (len[j] == 0)
            return 1;
        if (len[j] < shortest)
            shortest = len[j];
        if (len[j] > longest)
            longest = len[j];
    }
    if (n < shortest)
        return 0;
    last = n - shortest;        /* the last position a literal can start at */
#ifdef __SSE2__
    if (n <= FC_SCAN_MAX && longest <= FC_LIT_MAX) {
        /* A position is a candidate for a literal when the text shows the
         * literal's first and last bytes at the right distance (two
         * compares filter out nearly every other position); candidates are
         * then checked in full. The text is copied into a padded buffer so
         * that no 16-byte load reads past its end. */
        unsigned char buf[FC_SCAN_MAX + FC_LIT_MAX + 16];
        memcpy(buf, h, n);
        memset(buf + n, 0, FC_LIT_MAX + 16);
        for (i = 0; i <= last; i += 16) {
            for (j = 0; j < k; j++) {
                size_t m = len[j];
                unsigned hits;
                if (m > n - i)
                    continue;
                hits = fc_eq16(buf + i, lit[j][0], icase) & fc_eq16(buf + i + m - 1, lit[j][m - 1], icase);
                while (hits) {
                    size_t p = i + (size_t)__builtin_ctz(hits);
                    hits &= hits - 1;
                    if (p > n - m)
                        break;
                    if (fc_match_at(h + p, lit[j], m, icase))
                        return 1;
                }
            }
        }
        return 0;
    }
#endif
    for (i = 0; i <= last; i++)
        if (fc_any_at(h, n, i, lit, len, k, icase))
            return 1;
    return 0;
}

#endif /* FC_STRSEARCH_H */
