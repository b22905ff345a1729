/*
 * client/core/textsafe.c -- UTF-8 decoding and the characters that must not
 * reach a terminal or a file name as they are (textsafe.h).
 */
#include "textsafe.h"

#include <stdio.h>
#include <string.h>

size_t sc_utf8_next(const char *s, size_t len, uint32_t *cp)
{
    const unsigned char *p = (const unsigned char *)s;
    uint32_t v, min;
    size_t n;

    if (len == 0)
        return 0;
    if (p[0] < 0x80) {
        *cp = p[0];
        return 1;
    }
    if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        n = 2, v = p[0] & 0x1fu, min = 0x80;
    } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
        n = 3, v = p[0] & 0x0fu, min = 0x800;
    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        n = 4, v = p[0] & 0x07u, min = 0x10000;
    } else {
        return 0; /* continuation byte, 0xc0/0xc1 (overlong) or above U+10FFFF */
    }
    if (len < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        v = (v << 6) | (p[i] & 0x3fu);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return n;
}

bool sc_cp_unsafe(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || (cp >= 0x202a && cp <= 0x202e) ||
           (cp >= 0x2066 && cp <= 0x2069) || cp == 0x200e || cp == 0x200f || cp == 0x061c ||
           cp == 0x2028 || cp == 0x2029;
}

void sc_safe_file_name(const char *in, size_t max_bytes, char *out, size_t cap)
{
    size_t len = in ? strlen(in) : 0, o = 0, i = 0;

    if (cap == 0)
        return;
    if (max_bytes > cap - 1)
        max_bytes = cap - 1;
    while (i < len) {
        uint32_t cp = 0;
        size_t n = sc_utf8_next(in + i, len - i, &cp);
        bool bad = n == 0 || sc_cp_unsafe(cp) || cp == '/' || cp == '\\';
        size_t w = bad ? 1 : n;

        if (o + w > max_bytes)
            break;
        if (bad)
            out[o] = '_';
        else
            memcpy(out + o, in + i, n);
        if (o == 0 && out[0] == '.')
            out[0] = '_';
        o += w;
        i += n == 0 ? 1 : n;
    }
    out[o] = '\0';
    if (o == 0)
        snprintf(out, cap, "attachment");
}
