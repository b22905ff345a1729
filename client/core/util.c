/*
 * client/core/util.c -- small helpers: UTF-8 checks, content padding,
 * name validation.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "sotto_client.h"

bool sc_utf8_valid(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;

    while (i < len) {
        unsigned char c = s[i];
        size_t n;
        uint32_t cp;
        if (c == 0)
            return false;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            n = 1;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            n = 2;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (len - i - 1 < n)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        /* overlong forms, surrogates, beyond U+10FFFF */
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
            (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
            return false;
        i += n + 1;
    }
    return true;
}

size_t sc_utf8_cut(const char *str, size_t len, size_t max)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t n;

    if (len <= max)
        return len;
    n = max;
    /* back off continuation bytes to the start of the character at n */
    while (n > 0 && (s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

/* Content padding buckets (docs/protocol.md "Padding"): 160, then
 * 320 * 2^k and 480 * 2^k bytes (two sizes per doubling) up to
 * SC_PAD_BUCKET_MAX; past it (nothing the client sends today) the old
 * multiple of SC_PAD_BLOCK. Every bucket is a multiple of 160, so a size
 * never tells more than the old 160-byte blocks did. */
#define SC_PAD_BLOCK 160

size_t sc_pad_size(size_t len)
{
    size_t need, b;

    if (len > SIZE_MAX - 2 * SC_PAD_BLOCK)
        return 0;
    need = len + 1; /* the 0x80 terminator */
    if (need > SC_PAD_BUCKET_MAX)
        return (need + SC_PAD_BLOCK - 1) / SC_PAD_BLOCK * SC_PAD_BLOCK;
    if (need <= SC_PAD_BLOCK)
        return SC_PAD_BLOCK;
    /* 320, 480, 640, 960, ...: b and 1.5 * b for b = 320 * 2^k; ends by
     * 122880 = SC_PAD_BUCKET_MAX (480 * 2^8) at the latest */
    for (b = 2 * SC_PAD_BLOCK;; b *= 2) {
        if (need <= b)
            return b;
        if (need <= b / 2 * 3)
            return b / 2 * 3;
    }
}

int sc_pad(const uint8_t *in, size_t len, uint8_t **out, size_t *out_len)
{
    size_t total;
    uint8_t *p;

    *out = NULL;
    *out_len = 0;
    total = sc_pad_size(len);
    if (total == 0)
        return SC_E_INTERNAL;
    p = calloc(1, total);
    if (p == NULL)
        return SC_E_INTERNAL;
    if (len > 0)
        memcpy(p, in, len);
    p[len] = 0x80;
    *out = p;
    *out_len = total;
    return SC_OK;
}

int sc_unpad(const uint8_t *in, size_t len, size_t *out_len)
{
    size_t i = len;

    *out_len = 0;
    while (i > 0 && in[i - 1] == 0x00)
        i--;
    if (i == 0 || in[i - 1] != 0x80)
        return SC_E_USAGE;
    *out_len = i - 1;
    return SC_OK;
}

bool sc_username_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;

    if (n < 3 || n > 32)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.'))
            return false;
    }
    return true;
}

bool sc_account_name_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;

    if (n < 1 || n > 64 || s[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return false;
    }
    return true;
}
