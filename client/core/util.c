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

#define SC_PAD_BLOCK 160

int sc_pad(const uint8_t *in, size_t len, uint8_t **out, size_t *out_len)
{
    size_t total;
    uint8_t *p;

    *out = NULL;
    *out_len = 0;
    if (len > SIZE_MAX - SC_PAD_BLOCK)
        return SC_E_INTERNAL;
    total = (len + 1 + SC_PAD_BLOCK - 1) / SC_PAD_BLOCK * SC_PAD_BLOCK;
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
