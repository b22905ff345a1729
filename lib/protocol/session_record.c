/*
 * lib/protocol/session_record.c -- session states and records in memory,
 * and the versioned binary record format of docs/protocol.md
 * ("Session record format").
 *
 * Every multi-byte integer is big-endian; every public key is the 33-byte
 * 0x05 form. Decoding goes through the bounded reader of common/buf.h and
 * rejects anything not produced by the encoder (unknown versions or flags,
 * counts over the caps, trailing bytes), so decode(encode(x)) == x and
 * encode(decode(b)) == b for every accepted b.
 */
#include "protocol/session_record.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/buf.h"
#include "sotto/store.h"

#define REC_FORMAT_VERSION 1
#define REC_FLAG_CURRENT 0x01u

#define ST_FLAG_SENDER 0x01u
#define ST_FLAG_PENDING 0x02u
#define ST_FLAG_PENDING_PREKEY_ID 0x04u
#define ST_FLAG_ALICE_BASE_KEY 0x08u
#define ST_FLAGS_ALL 0x0Fu

#define ST_FIXED_BYTES (1 + 1 + 33 + 33 + 4 + 4 + 32 + 4 + 1)
#define ST_SENDER_BYTES (33 + 32 + 32 + 4)
#define CHAIN_FIXED_BYTES (33 + 32 + 4 + 2)
#define SKIPPED_BYTES (4 + SOTTO_MESSAGE_SEED_BYTES)

void sotto_session_state_clear(sotto_session_state *st)
{
    if (st == NULL)
        return;
    for (uint32_t i = 0; i < st->n_recv && i < SOTTO_MAX_RECEIVER_CHAINS; i++) {
        sotto_recv_chain *c = &st->recv[i];
        if (c->skipped != NULL) {
            sodium_memzero(c->skipped, (size_t)c->cap_skipped * sizeof *c->skipped);
            free(c->skipped);
        }
    }
    sodium_memzero(st, sizeof *st);
}

void sotto_session_state_free(sotto_session_state *st)
{
    if (st == NULL)
        return;
    sotto_session_state_clear(st);
    free(st);
}

/*
 * The archived[] slots (40 pointer/slice triples, no secrets) are not
 * zeroed: only archived[0 .. n_archived-1] is ever read, and every slot is
 * written before n_archived covers it. The rest is zeroed.
 */
void sotto_session_record_init(sotto_session_record *rec)
{
    rec->has_current = false;
    memset(&rec->current, 0, sizeof rec->current);
    rec->n_archived = 0;
    rec->loaded = NULL;
    rec->loaded_len = 0;
}

void sotto_session_record_clear(sotto_session_record *rec)
{
    if (rec == NULL)
        return;
    if (rec->has_current)
        sotto_session_state_clear(&rec->current);
    for (uint32_t i = 0; i < rec->n_archived; i++)
        sotto_session_state_free(rec->archived[i].state);
    if (rec->loaded != NULL) {
        sodium_memzero(rec->loaded, rec->loaded_len);
        free(rec->loaded);
    }
    /* Secrets live in `current` (the archived slots hold pointers and
     * slices of `loaded`, both wiped and freed above). */
    if (!rec->has_current)
        sodium_memzero(&rec->current, sizeof rec->current);
    /* `current` is zero now (sotto_session_state_clear wiped it). */
    rec->has_current = false;
    rec->n_archived = 0;
    rec->loaded = NULL;
    rec->loaded_len = 0;
}

/* ---- skipped keys ---- */

static int chain_reserve(sotto_recv_chain *c, uint32_t want)
{
    if (want <= c->cap_skipped)
        return SOTTO_OK;
    uint32_t cap = c->cap_skipped < 16 ? 16 : c->cap_skipped * 2;
    if (cap < want)
        cap = want;
    if (cap > SOTTO_MAX_MESSAGE_KEYS)
        cap = SOTTO_MAX_MESSAGE_KEYS;
    if (cap < want)
        return SOTTO_ERR_INTERNAL;
    /* No realloc: the old block holds secrets and must be wiped. */
    sotto_skipped_key *n = malloc((size_t)cap * sizeof *n);
    if (n == NULL)
        return SOTTO_ERR_NOMEM;
    if (c->skipped != NULL) {
        memcpy(n, c->skipped, (size_t)c->n_skipped * sizeof *n);
        sodium_memzero(c->skipped, (size_t)c->cap_skipped * sizeof *c->skipped);
        free(c->skipped);
    }
    c->skipped = n;
    c->cap_skipped = cap;
    return SOTTO_OK;
}

int sotto_recv_chain_add_skipped(sotto_recv_chain *c, const sotto_skipped_key *keys, uint32_t n)
{
    if (n == 0)
        return SOTTO_OK;
    if (n > SOTTO_MAX_MESSAGE_KEYS) {
        /* Only the newest SOTTO_MAX_MESSAGE_KEYS can be kept. */
        keys += n - SOTTO_MAX_MESSAGE_KEYS;
        n = SOTTO_MAX_MESSAGE_KEYS;
    }
    uint32_t total = c->n_skipped + n;
    if (total > SOTTO_MAX_MESSAGE_KEYS) {
        uint32_t drop = total - SOTTO_MAX_MESSAGE_KEYS; /* <= n_skipped */
        sodium_memzero(c->skipped, (size_t)drop * sizeof *c->skipped);
        memmove(c->skipped, c->skipped + drop, (size_t)(c->n_skipped - drop) * sizeof *c->skipped);
        c->n_skipped -= drop;
        sodium_memzero(c->skipped + c->n_skipped, (size_t)drop * sizeof *c->skipped);
    }
    int rc = chain_reserve(c, c->n_skipped + n);
    if (rc != SOTTO_OK)
        return rc;
    memcpy(c->skipped + c->n_skipped, keys, (size_t)n * sizeof *keys);
    c->n_skipped += n;
    return SOTTO_OK;
}

/* ---- encoding ---- */

static size_t state_encoded_len(const sotto_session_state *st)
{
    size_t n = ST_FIXED_BYTES;
    if (st->has_sender_chain)
        n += ST_SENDER_BYTES;
    if (st->pending_prekey)
        n += 4 + (st->pending_has_prekey_id ? 4 : 0);
    if (st->has_alice_base_key)
        n += SOTTO_PUBLIC_KEY_BYTES;
    for (uint32_t i = 0; i < st->n_recv; i++)
        n += CHAIN_FIXED_BYTES + (size_t)st->recv[i].n_skipped * SKIPPED_BYTES;
    return n;
}

/* Cursor helpers for a span already reserved in the writer (exact size). */
static uint8_t *put_bytes(uint8_t *p, const void *src, size_t n)
{
    memcpy(p, src, n);
    return p + n;
}

static uint8_t *put_u32be(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
    return p + 4;
}

/*
 * Writes the state as one reserved span of state_encoded_len(st) bytes
 * (one bounds check instead of one per field). Returns false (and the
 * writer's error is set, or the span is wiped) if the writer is out of
 * room or the length computation disagrees with what was written.
 */
static bool state_encode(sotto_wbuf *w, const sotto_session_state *st)
{
    size_t len = state_encoded_len(st);
    uint8_t *start = sotto_wbuf_reserve(w, len);
    uint8_t *p = start;
    uint8_t flags = 0;

    if (start == NULL)
        return false;
    if (st->has_sender_chain)
        flags |= ST_FLAG_SENDER;
    if (st->pending_prekey) {
        flags |= ST_FLAG_PENDING;
        if (st->pending_has_prekey_id)
            flags |= ST_FLAG_PENDING_PREKEY_ID;
    }
    if (st->has_alice_base_key)
        flags |= ST_FLAG_ALICE_BASE_KEY;
    *p++ = SOTTO_MESSAGE_VERSION;
    *p++ = flags;
    p = put_bytes(p, st->local_identity.bytes, SOTTO_PUBLIC_KEY_BYTES);
    p = put_bytes(p, st->remote_identity.bytes, SOTTO_PUBLIC_KEY_BYTES);
    p = put_u32be(p, st->local_registration_id);
    p = put_u32be(p, st->remote_registration_id);
    p = put_bytes(p, st->root_key, SOTTO_ROOT_KEY_BYTES);
    p = put_u32be(p, st->previous_counter);
    if (st->has_sender_chain) {
        p = put_bytes(p, st->sender_ratchet.pub.bytes, SOTTO_PUBLIC_KEY_BYTES);
        p = put_bytes(p, st->sender_ratchet.priv, SOTTO_PRIVATE_KEY_BYTES);
        p = put_bytes(p, st->sender_chain_key, SOTTO_CHAIN_KEY_BYTES);
        p = put_u32be(p, st->sender_index);
    }
    if (st->pending_prekey) {
        p = put_u32be(p, st->pending_signed_prekey_id);
        if (st->pending_has_prekey_id)
            p = put_u32be(p, st->pending_prekey_id);
    }
    if (st->has_alice_base_key)
        p = put_bytes(p, st->alice_base_key.bytes, SOTTO_PUBLIC_KEY_BYTES);
    *p++ = (uint8_t)st->n_recv;
    for (uint32_t i = 0; i < st->n_recv; i++) {
        const sotto_recv_chain *c = &st->recv[i];
        p = put_bytes(p, c->their_ratchet.bytes, SOTTO_PUBLIC_KEY_BYTES);
        p = put_bytes(p, c->chain_key, SOTTO_CHAIN_KEY_BYTES);
        p = put_u32be(p, c->index);
        *p++ = (uint8_t)(c->n_skipped >> 8);
        *p++ = (uint8_t)c->n_skipped;
        for (uint32_t k = 0; k < c->n_skipped; k++) {
            p = put_u32be(p, c->skipped[k].counter);
            p = put_bytes(p, c->skipped[k].seed, SOTTO_MESSAGE_SEED_BYTES);
        }
    }
    if ((size_t)(p - start) != len) {
        sodium_memzero(start, len); /* a bug in state_encoded_len */
        return false;
    }
    return true;
}

static size_t archived_len(const sotto_archived_state *a)
{
    return a->state != NULL ? state_encoded_len(a->state) : a->raw_len;
}

int sotto_session_record_encode(const sotto_session_record *rec, uint8_t **out, size_t *out_len)
{
    return sotto_session_record_encode_buf(rec, NULL, 0, out, out_len);
}

int sotto_session_record_encode_buf(const sotto_session_record *rec, uint8_t *scratch,
                                    size_t scratch_len, uint8_t **out, size_t *out_len)
{
    int rc = SOTTO_ERR_INTERNAL;
    uint8_t *buf = NULL;
    size_t total = 1 + 1 + 1;
    size_t cur_len = 0;
    uint32_t keep = 0;
    sotto_wbuf w;

    *out = NULL;
    *out_len = 0;
    if (rec->has_current) {
        cur_len = state_encoded_len(&rec->current);
        total += 4 + cur_len;
    }
    if (total > SOTTO_MAX_RECORD_BYTES)
        goto out;
    for (keep = 0; keep < rec->n_archived; keep++) {
        size_t n = 4 + archived_len(&rec->archived[keep]);
        if (n > SOTTO_MAX_RECORD_BYTES - total)
            break; /* drop this and older archived states */
        total += n;
    }
    buf = scratch != NULL && total <= scratch_len ? scratch : malloc(total);
    if (buf == NULL) {
        rc = SOTTO_ERR_NOMEM;
        goto out;
    }
    sotto_wbuf_init_fixed(&w, buf, total);
    sotto_wbuf_put_u8(&w, REC_FORMAT_VERSION);
    sotto_wbuf_put_u8(&w, rec->has_current ? REC_FLAG_CURRENT : 0);
    if (rec->has_current) {
        sotto_wbuf_put_u32be(&w, (uint32_t)cur_len);
        if (!state_encode(&w, &rec->current))
            goto out;
    }
    sotto_wbuf_put_u8(&w, (uint8_t)keep);
    for (uint32_t i = 0; i < keep; i++) {
        const sotto_archived_state *a = &rec->archived[i];
        sotto_wbuf_put_u32be(&w, (uint32_t)archived_len(a));
        if (a->state != NULL) {
            if (!state_encode(&w, a->state))
                goto out;
        } else {
            sotto_wbuf_put(&w, a->raw, a->raw_len);
        }
    }
    if (sotto_wbuf_error(&w) != SOTTO_OK || w.len != total)
        goto out; /* size computation and writer disagree: a bug */
    *out = buf;
    *out_len = total;
    buf = NULL;
    rc = SOTTO_OK;
out:
    if (buf != NULL) {
        sodium_memzero(buf, total);
        if (buf != scratch)
            free(buf);
    }
    return rc;
}

/* ---- decoding ---- */

#define CHECK(expr)                                                                                \
    do {                                                                                           \
        if ((expr) != SOTTO_OK)                                                                    \
            goto out;                                                                              \
    } while (0)

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* A 33-byte key from a bounds-checked span; only the 0x05 type is valid. */
static const uint8_t *take_pub(const uint8_t *p, sotto_public_key *pub, bool *ok)
{
    memcpy(pub->bytes, p, SOTTO_PUBLIC_KEY_BYTES);
    if (pub->bytes[0] != SOTTO_KEY_TYPE_DJB)
        *ok = false;
    return p + SOTTO_PUBLIC_KEY_BYTES;
}

static const uint8_t *take_bytes(const uint8_t *p, void *dst, size_t n)
{
    memcpy(dst, p, n);
    return p + n;
}

/*
 * Parses exactly `len` bytes into *st (zeroed first). Each fixed-size group
 * of fields is taken as one span from the bounded reader (sotto_rbuf_get_ptr
 * checks it against what remains) and then read field by field.
 */
static int state_decode(sotto_session_state *st, const uint8_t *data, size_t len)
{
    int rc = SOTTO_ERR_CORRUPT_RECORD;
    sotto_rbuf r;
    const uint8_t *p;
    uint8_t version, flags, n_recv;
    bool ok = true;

    memset(st, 0, sizeof *st);
    sotto_rbuf_init(&r, data, len);
    /* version, flags, 2 keys, 2 registration ids, root key, previousCounter */
    CHECK(sotto_rbuf_get_ptr(&r, ST_FIXED_BYTES - 1, &p));
    version = *p++;
    flags = *p++;
    if (version != SOTTO_MESSAGE_VERSION || (flags & ~ST_FLAGS_ALL) != 0)
        goto out;
    if ((flags & ST_FLAG_PENDING_PREKEY_ID) && !(flags & ST_FLAG_PENDING))
        goto out;
    p = take_pub(p, &st->local_identity, &ok);
    p = take_pub(p, &st->remote_identity, &ok);
    st->local_registration_id = be32(p);
    st->remote_registration_id = be32(p + 4);
    p = take_bytes(p + 8, st->root_key, SOTTO_ROOT_KEY_BYTES);
    st->previous_counter = be32(p);
    if (flags & ST_FLAG_SENDER) {
        st->has_sender_chain = true;
        CHECK(sotto_rbuf_get_ptr(&r, ST_SENDER_BYTES, &p));
        p = take_pub(p, &st->sender_ratchet.pub, &ok);
        p = take_bytes(p, st->sender_ratchet.priv, SOTTO_PRIVATE_KEY_BYTES);
        p = take_bytes(p, st->sender_chain_key, SOTTO_CHAIN_KEY_BYTES);
        st->sender_index = be32(p);
    }
    if (flags & ST_FLAG_PENDING) {
        st->pending_prekey = true;
        CHECK(sotto_rbuf_get_u32be(&r, &st->pending_signed_prekey_id));
        if (flags & ST_FLAG_PENDING_PREKEY_ID) {
            st->pending_has_prekey_id = true;
            CHECK(sotto_rbuf_get_u32be(&r, &st->pending_prekey_id));
        }
    }
    if (flags & ST_FLAG_ALICE_BASE_KEY) {
        st->has_alice_base_key = true;
        CHECK(sotto_rbuf_get_ptr(&r, SOTTO_PUBLIC_KEY_BYTES, &p));
        take_pub(p, &st->alice_base_key, &ok);
    }
    if (!ok)
        goto out;
    CHECK(sotto_rbuf_get_u8(&r, &n_recv));
    if (n_recv > SOTTO_MAX_RECEIVER_CHAINS)
        goto out;
    for (uint32_t i = 0; i < n_recv; i++) {
        sotto_recv_chain *c = &st->recv[i];
        uint32_t n_skipped;
        st->n_recv = i + 1; /* so that _clear frees what was allocated */
        /* ratchet key, chain key, index, u16 count of skipped keys */
        CHECK(sotto_rbuf_get_ptr(&r, CHAIN_FIXED_BYTES, &p));
        p = take_pub(p, &c->their_ratchet, &ok);
        if (!ok)
            goto out;
        p = take_bytes(p, c->chain_key, SOTTO_CHAIN_KEY_BYTES);
        c->index = be32(p);
        n_skipped = (uint32_t)p[4] << 8 | p[5];
        if (n_skipped > SOTTO_MAX_MESSAGE_KEYS)
            goto out;
        if (n_skipped == 0)
            continue;
        CHECK(sotto_rbuf_get_ptr(&r, (size_t)n_skipped * SKIPPED_BYTES, &p));
        c->skipped = malloc((size_t)n_skipped * sizeof *c->skipped);
        if (c->skipped == NULL) {
            rc = SOTTO_ERR_NOMEM;
            goto out;
        }
        c->cap_skipped = n_skipped;
        for (uint32_t k = 0; k < n_skipped; k++) {
            c->skipped[k].counter = be32(p);
            p = take_bytes(p + 4, c->skipped[k].seed, SOTTO_MESSAGE_SEED_BYTES);
            c->n_skipped = k + 1;
            /* A skipped key is always behind the chain. */
            if (c->skipped[k].counter >= c->index)
                goto out;
        }
    }
    if (sotto_rbuf_remaining(&r) != 0)
        goto out;
    rc = SOTTO_OK;
out:
    if (rc != SOTTO_OK)
        sotto_session_state_clear(st);
    return rc;
}

int sotto_session_record_parse_archived(sotto_session_record *rec, uint32_t i)
{
    sotto_archived_state *a = &rec->archived[i];
    if (a->state != NULL)
        return SOTTO_OK;
    sotto_session_state *st = malloc(sizeof *st);
    if (st == NULL)
        return SOTTO_ERR_NOMEM;
    int rc = state_decode(st, a->raw, a->raw_len);
    if (rc != SOTTO_OK) {
        free(st);
        return rc;
    }
    a->state = st;
    return SOTTO_OK;
}

int sotto_session_record_decode(sotto_session_record *rec, uint8_t *data, size_t len, bool full)
{
    int rc = SOTTO_ERR_CORRUPT_RECORD;
    sotto_rbuf r;
    uint8_t version, flags, n_arch;
    const uint8_t *p;
    size_t n;

    rec->loaded = data;
    rec->loaded_len = len;
    if (len > SOTTO_MAX_RECORD_BYTES)
        goto out;
    sotto_rbuf_init(&r, data, len);
    CHECK(sotto_rbuf_get_u8(&r, &version));
    CHECK(sotto_rbuf_get_u8(&r, &flags));
    if (version != REC_FORMAT_VERSION || (flags & ~REC_FLAG_CURRENT) != 0)
        goto out;
    if (flags & REC_FLAG_CURRENT) {
        CHECK(sotto_rbuf_get_lp32(&r, len, &p, &n));
        rc = state_decode(&rec->current, p, n);
        if (rc != SOTTO_OK)
            goto out;
        rc = SOTTO_ERR_CORRUPT_RECORD;
        rec->has_current = true;
    }
    CHECK(sotto_rbuf_get_u8(&r, &n_arch));
    if (n_arch > SOTTO_MAX_ARCHIVED_STATES)
        goto out;
    for (uint32_t i = 0; i < n_arch; i++) {
        CHECK(sotto_rbuf_get_lp32(&r, len, &p, &n));
        rec->archived[i].state = NULL;
        rec->archived[i].raw = p;
        rec->archived[i].raw_len = n;
        rec->n_archived = i + 1;
        if (n < ST_FIXED_BYTES)
            goto out;
        if (full) {
            rc = sotto_session_record_parse_archived(rec, i);
            if (rc != SOTTO_OK)
                goto out;
            rc = SOTTO_ERR_CORRUPT_RECORD;
        }
    }
    if (sotto_rbuf_remaining(&r) != 0)
        goto out;
    rc = SOTTO_OK;
out:
    if (rc == SOTTO_ERR_INVALID_MESSAGE)
        rc = SOTTO_ERR_CORRUPT_RECORD;
    return rc;
}

/* ---- archive management ---- */

int sotto_session_record_promote_new(sotto_session_record *rec, sotto_session_state *st)
{
    if (rec->has_current) {
        sotto_session_state *old = malloc(sizeof *old);
        if (old == NULL)
            return SOTTO_ERR_NOMEM;
        memcpy(old, &rec->current, sizeof *old);
        sodium_memzero(&rec->current, sizeof rec->current);
        if (rec->n_archived == SOTTO_MAX_ARCHIVED_STATES) {
            sotto_session_state_free(rec->archived[SOTTO_MAX_ARCHIVED_STATES - 1].state);
            rec->n_archived--;
        }
        memmove(&rec->archived[1], &rec->archived[0],
                (size_t)rec->n_archived * sizeof rec->archived[0]);
        rec->archived[0].state = old;
        rec->archived[0].raw = NULL;
        rec->archived[0].raw_len = 0;
        rec->n_archived++;
    }
    memcpy(&rec->current, st, sizeof *st);
    sodium_memzero(st, sizeof *st);
    rec->has_current = true;
    return SOTTO_OK;
}

void sotto_session_record_promote_archived(sotto_session_record *rec, uint32_t i)
{
    sotto_archived_state entry = rec->archived[i];
    sotto_session_state tmp;

    memcpy(&tmp, entry.state, sizeof tmp);
    if (rec->has_current) {
        /* The old current takes the promoted state's heap slot, at the front. */
        memcpy(entry.state, &rec->current, sizeof *entry.state);
        entry.raw = NULL;
        entry.raw_len = 0;
        memmove(&rec->archived[1], &rec->archived[0], (size_t)i * sizeof rec->archived[0]);
        rec->archived[0] = entry;
    } else {
        sodium_memzero(entry.state, sizeof *entry.state);
        free(entry.state);
        memmove(&rec->archived[i], &rec->archived[i + 1],
                (size_t)(rec->n_archived - i - 1) * sizeof rec->archived[0]);
        rec->n_archived--;
    }
    memcpy(&rec->current, &tmp, sizeof tmp);
    sodium_memzero(&tmp, sizeof tmp);
    rec->has_current = true;
}
