/*
 * lib/common/buf.h -- the one bounded cursor for all wire parsing and writing
 * inside libsotto (internal header, not installed).
 *
 * Reading: a sotto_rbuf is a read cursor over caller-owned bytes. Every getter
 * checks that enough bytes remain before it hands out a value or a pointer;
 * on failure it returns SOTTO_ERR_INVALID_MESSAGE and leaves the cursor where
 * it was. Pointers handed out point into the caller's bytes (no copy).
 *
 * Writing: a sotto_wbuf grows on the heap up to a hard maximum fixed at
 * creation (or writes into a fixed caller buffer). Writers are sticky: the
 * first failure (over the maximum, out of memory) sets `err`, later puts do
 * nothing, and the caller checks once at the end with sotto_wbuf_error().
 * sotto_wbuf_free() wipes the contents before freeing, since writers often
 * hold key material.
 *
 * No memcpy or pointer arithmetic on wire data outside this module and pb.c.
 */
#ifndef SOTTO_LIB_BUF_H
#define SOTTO_LIB_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sotto/common.h"
#include "sotto/error.h"

typedef struct sotto_rbuf {
    const uint8_t *data;
    size_t len;
    size_t pos;
} sotto_rbuf;

typedef struct sotto_wbuf {
    uint8_t *data;
    size_t len; /* bytes written */
    size_t cap; /* bytes allocated */
    size_t max; /* hard maximum length */
    int err;    /* first error, sticky (SOTTO_OK while fine) */
    bool fixed; /* data is caller-owned, never reallocated or freed */
} sotto_wbuf;

void sotto_rbuf_init(sotto_rbuf *r, const uint8_t *data, size_t len);
size_t sotto_rbuf_remaining(const sotto_rbuf *r);
/* Hands out a pointer to the next n bytes and advances. */
SOTTO_WUR int sotto_rbuf_get_ptr(sotto_rbuf *r, size_t n, const uint8_t **out);
SOTTO_WUR int sotto_rbuf_get_copy(sotto_rbuf *r, void *dst, size_t n);
SOTTO_WUR int sotto_rbuf_get_u8(sotto_rbuf *r, uint8_t *out);
SOTTO_WUR int sotto_rbuf_get_u32be(sotto_rbuf *r, uint32_t *out);
SOTTO_WUR int sotto_rbuf_get_u64be(sotto_rbuf *r, uint64_t *out);
/* Base-128 varint as protobuf writes it (at most 10 bytes, no overflow). */
SOTTO_WUR int sotto_rbuf_get_varint(sotto_rbuf *r, uint64_t *out);
/* A u32be length prefix, checked against `max` and against what remains. */
SOTTO_WUR int sotto_rbuf_get_lp32(sotto_rbuf *r, size_t max, const uint8_t **out, size_t *n);

/* Heap writer that never grows beyond `max` bytes. */
void sotto_wbuf_init(sotto_wbuf *w, size_t max);
/* Writer into a caller-owned buffer of `cap` bytes. */
void sotto_wbuf_init_fixed(sotto_wbuf *w, uint8_t *buf, size_t cap);
void sotto_wbuf_put(sotto_wbuf *w, const void *p, size_t n);
void sotto_wbuf_put_u8(sotto_wbuf *w, uint8_t v);
void sotto_wbuf_put_u32be(sotto_wbuf *w, uint32_t v);
void sotto_wbuf_put_u64be(sotto_wbuf *w, uint64_t v);
void sotto_wbuf_put_varint(sotto_wbuf *w, uint64_t v);
/* u32be length then bytes. */
void sotto_wbuf_put_lp32(sotto_wbuf *w, const void *p, size_t n);
/* Reserves n bytes and returns a pointer to them (NULL and err set on failure). */
uint8_t *sotto_wbuf_reserve(sotto_wbuf *w, size_t n);
static inline int sotto_wbuf_error(const sotto_wbuf *w)
{
    return w->err;
}
/*
 * Moves the heap contents to the caller (*out, *out_len; free with free(),
 * after sodium_memzero if secret). Fails with the sticky error if any.
 * The writer is left empty.
 */
SOTTO_WUR int sotto_wbuf_steal(sotto_wbuf *w, uint8_t **out, size_t *out_len);
/* Wipes and frees heap contents (no-op for fixed buffers beyond wiping nothing). */
void sotto_wbuf_free(sotto_wbuf *w);

#endif /* SOTTO_LIB_BUF_H */
