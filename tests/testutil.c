#include "testutil.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

uint8_t *tu_unhex(const char *hex, size_t *len)
{
    size_t n = strlen(hex);
    assert_int_equal(n % 2, 0);
    uint8_t *out = malloc(n / 2 + 1);
    assert_non_null(out);
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        assert_true(hi >= 0 && lo >= 0);
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    *len = n / 2;
    return out;
}

void tu_unhex_into(const char *hex, uint8_t *out, size_t len)
{
    size_t n;
    uint8_t *b = tu_unhex(hex, &n);
    assert_int_equal(n, len);
    memcpy(out, b, len);
    free(b);
}

char *tu_hex(const uint8_t *p, size_t len)
{
    static const char d[] = "0123456789abcdef";
    char *s = malloc(2 * len + 1);
    assert_non_null(s);
    for (size_t i = 0; i < len; i++) {
        s[2 * i] = d[p[i] >> 4];
        s[2 * i + 1] = d[p[i] & 15];
    }
    s[2 * len] = 0;
    return s;
}

char *tu_shared_path(const char *rel)
{
    const char *base = getenv("SOTTO_SHARED_DIR");
    if (base == NULL || *base == 0)
        base = "../shared";
    size_t n = strlen(base) + strlen(rel) + 2;
    char *p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/%s", base, rel);
    return p;
}

json_t *tu_load_wycheproof(const char *file)
{
    char rel[256];
    snprintf(rel, sizeof rel, "vectors/wycheproof/%s", file);
    char *path = tu_shared_path(rel);
    json_error_t err;
    json_t *j = json_load_file(path, 0, &err);
    if (j == NULL)
        fail_msg("cannot load %s: %s", path, err.text);
    free(path);
    return j;
}

uint8_t *tu_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(n > 0 ? (size_t)n : 1);
    if (b != NULL && n > 0 && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *len = b ? (size_t)n : 0;
    return b;
}
