/* Bounded cursor buffers (see buf.h). */
#include "common/buf.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

void sotto_rbuf_init(sotto_rbuf *r, const uint8_t *data, size_t len)
{
    r->data = data;
    r->len = data ? len : 0;
    r->pos = 0;
}

size_t sotto_rbuf_remaining(const sotto_rbuf *r)
{
    return r->len - r->pos;
}

int sotto_rbuf_get_ptr(sotto_rbuf *r, size_t n, const uint8_t **out)
{
    if (n > sotto_rbuf_remaining(r))
        return SOTTO_ERR_INVALID_MESSAGE;
    *out = r->data + r->pos;
    r->pos += n;
    return SOTTO_OK;
}

int sotto_rbuf_get_copy(sotto_rbuf *r, void *dst, size_t n)
{
    const uint8_t *p;
    int rc = sotto_rbuf_get_ptr(r, n, &p);
    if (rc != SOTTO_OK)
        return rc;
    if (n > 0)
        memcpy(dst, p, n);
    return SOTTO_OK;
}

int sotto_rbuf_get_u8(sotto_rbuf *r, uint8_t *out)
{
    return sotto_rbuf_get_copy(r, out, 1);
}

int sotto_rbuf_get_u32be(sotto_rbuf *r, uint32_t *out)
{
    const uint8_t *p;
    int rc = sotto_rbuf_get_ptr(r, 4, &p);
    if (rc != SOTTO_OK)
        return rc;
    *out = ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
    return SOTTO_OK;
}

int sotto_rbuf_get_u64be(sotto_rbuf *r, uint64_t *out)
{
    uint32_t hi, lo;
    size_t save = r->pos;
    if (sotto_rbuf_get_u32be(r, &hi) != SOTTO_OK || sotto_rbuf_get_u32be(r, &lo) != SOTTO_OK) {
        r->pos = save;
        return SOTTO_ERR_INVALID_MESSAGE;
    }
    *out = ((uint64_t)hi << 32) | lo;
    return SOTTO_OK;
}

int sotto_rbuf_get_varint(sotto_rbuf *r, uint64_t *out)
{
    uint64_t v = 0;
    size_t pos = r->pos;
    for (unsigned i = 0; i < 10; i++) {
        if (pos >= r->len)
            return SOTTO_ERR_INVALID_MESSAGE;
        uint8_t b = r->data[pos++];
        if (i == 9 && b > 1)
            return SOTTO_ERR_INVALID_MESSAGE; /* would overflow 64 bits */
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            r->pos = pos;
            *out = v;
            return SOTTO_OK;
        }
    }
    return SOTTO_ERR_INVALID_MESSAGE;
}

int sotto_rbuf_get_lp32(sotto_rbuf *r, size_t max, const uint8_t **out, size_t *n)
{
    uint32_t len;
    size_t save = r->pos;
    if (sotto_rbuf_get_u32be(r, &len) != SOTTO_OK)
        return SOTTO_ERR_INVALID_MESSAGE;
    if (len > max || sotto_rbuf_get_ptr(r, len, out) != SOTTO_OK) {
        r->pos = save;
        return SOTTO_ERR_INVALID_MESSAGE;
    }
    *n = len;
    return SOTTO_OK;
}

void sotto_wbuf_init(sotto_wbuf *w, size_t max)
{
    memset(w, 0, sizeof(*w));
    w->max = max;
}

void sotto_wbuf_init_fixed(sotto_wbuf *w, uint8_t *buf, size_t cap)
{
    memset(w, 0, sizeof(*w));
    w->data = buf;
    w->cap = cap;
    w->max = cap;
    w->fixed = true;
}

uint8_t *sotto_wbuf_reserve(sotto_wbuf *w, size_t n)
{
    if (w->err != SOTTO_OK)
        return NULL;
    if (n > w->max - w->len) {
        w->err = SOTTO_ERR_BUFFER_TOO_SMALL;
        return NULL;
    }
    if (w->len + n > w->cap) {
        if (w->fixed) {
            w->err = SOTTO_ERR_BUFFER_TOO_SMALL;
            return NULL;
        }
        size_t ncap = w->cap ? w->cap : 64;
        while (ncap < w->len + n)
            ncap = (ncap > w->max / 2) ? w->max : ncap * 2;
        /* Move rather than realloc so old copies of secrets are wiped. */
        uint8_t *nd = malloc(ncap);
        if (nd == NULL) {
            w->err = SOTTO_ERR_NOMEM;
            return NULL;
        }
        if (w->data != NULL) {
            memcpy(nd, w->data, w->len);
            sodium_memzero(w->data, w->cap);
            free(w->data);
        }
        w->data = nd;
        w->cap = ncap;
    }
    uint8_t *p = w->data + w->len;
    w->len += n;
    return p;
}

void sotto_wbuf_put(sotto_wbuf *w, const void *p, size_t n)
{
    uint8_t *d = sotto_wbuf_reserve(w, n);
    if (d != NULL && n > 0)
        memcpy(d, p, n);
}

void sotto_wbuf_put_u8(sotto_wbuf *w, uint8_t v)
{
    sotto_wbuf_put(w, &v, 1);
}

void sotto_wbuf_put_u32be(sotto_wbuf *w, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    sotto_wbuf_put(w, b, 4);
}

void sotto_wbuf_put_u64be(sotto_wbuf *w, uint64_t v)
{
    sotto_wbuf_put_u32be(w, (uint32_t)(v >> 32));
    sotto_wbuf_put_u32be(w, (uint32_t)v);
}

void sotto_wbuf_put_varint(sotto_wbuf *w, uint64_t v)
{
    uint8_t b[10];
    size_t n = 0;
    do {
        b[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v)
            b[n] |= 0x80;
        n++;
    } while (v);
    sotto_wbuf_put(w, b, n);
}

void sotto_wbuf_put_lp32(sotto_wbuf *w, const void *p, size_t n)
{
    if (n > UINT32_MAX) {
        if (w->err == SOTTO_OK)
            w->err = SOTTO_ERR_INVALID_ARGUMENT;
        return;
    }
    sotto_wbuf_put_u32be(w, (uint32_t)n);
    sotto_wbuf_put(w, p, n);
}

int sotto_wbuf_steal(sotto_wbuf *w, uint8_t **out, size_t *out_len)
{
    if (w->err != SOTTO_OK) {
        int err = w->err;
        sotto_wbuf_free(w);
        return err;
    }
    if (w->fixed)
        return SOTTO_ERR_INVALID_ARGUMENT;
    if (w->data == NULL) {
        /* Empty output: hand out a valid 1-byte allocation so callers may free it. */
        w->data = malloc(1);
        if (w->data == NULL)
            return SOTTO_ERR_NOMEM;
    }
    *out = w->data;
    *out_len = w->len;
    w->data = NULL;
    w->len = w->cap = 0;
    return SOTTO_OK;
}

void sotto_wbuf_free(sotto_wbuf *w)
{
    if (w->data != NULL) {
        if (w->fixed) {
            /* caller-owned */
        } else {
            sodium_memzero(w->data, w->cap);
            free(w->data);
        }
    }
    if (!w->fixed) {
        w->data = NULL;
        w->len = w->cap = 0;
    }
}
