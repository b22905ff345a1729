/* Sender-key record: states, stored message keys, serialisation (see
 * sender_key_record.h for the format). */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/buf.h"
#include "crypto/fe25519.h"
#include "group/sender_key_record.h"

/* Fixed bytes of one serialised state, without private key and message keys. */
#define SKR_STATE_FIXED (4 + 4 + SOTTO_SENDER_CHAIN_KEY_BYTES + SOTTO_PUBLIC_KEY_BYTES + 32 + 1 + 2)
#define SKR_MK_BYTES (4 + SOTTO_SENDER_SEED_BYTES)

static void skr_state_wipe(sotto_skr_state *st)
{
    if (st->mks != NULL) {
        sodium_memzero(st->mks, st->mk_cap * sizeof *st->mks);
        free(st->mks);
    }
    sodium_memzero(st, sizeof *st);
}

void sotto_skr_init(sotto_skr *rec)
{
    memset(rec, 0, sizeof *rec);
}

void sotto_skr_wipe(sotto_skr *rec)
{
    for (size_t i = 0; i < rec->count; i++)
        skr_state_wipe(&rec->states[i]);
    sodium_memzero(rec, sizeof *rec);
}

static int skr_decode_state(sotto_rbuf *r, sotto_skr_state *st)
{
    uint8_t flag;
    uint8_t cnt[2];
    size_t n;

    if (sotto_rbuf_get_u32be(r, &st->key_id) != SOTTO_OK ||
        sotto_rbuf_get_u32be(r, &st->iteration) != SOTTO_OK ||
        sotto_rbuf_get_copy(r, st->chain_key, sizeof st->chain_key) != SOTTO_OK ||
        sotto_rbuf_get_copy(r, st->signing_pub.bytes, SOTTO_PUBLIC_KEY_BYTES) != SOTTO_OK ||
        sotto_rbuf_get_copy(r, st->signing_ed, sizeof st->signing_ed) != SOTTO_OK ||
        sotto_rbuf_get_u8(r, &flag) != SOTTO_OK)
        return SOTTO_ERR_CORRUPT_RECORD;
    if (st->signing_pub.bytes[0] != SOTTO_KEY_TYPE_DJB || (st->signing_ed[31] & 0x80) != 0 ||
        flag > 1)
        return SOTTO_ERR_CORRUPT_RECORD;
    st->has_private = flag == 1;
    if (st->has_private &&
        sotto_rbuf_get_copy(r, st->signing_priv, sizeof st->signing_priv) != SOTTO_OK)
        return SOTTO_ERR_CORRUPT_RECORD;
    if (sotto_rbuf_get_copy(r, cnt, sizeof cnt) != SOTTO_OK)
        return SOTTO_ERR_CORRUPT_RECORD;
    n = ((size_t)cnt[0] << 8) | cnt[1];
    if (n > SOTTO_MAX_MESSAGE_KEYS || n * SKR_MK_BYTES > sotto_rbuf_remaining(r))
        return SOTTO_ERR_CORRUPT_RECORD;
    if (n == 0)
        return SOTTO_OK;
    st->mks = malloc(n * sizeof *st->mks);
    if (st->mks == NULL)
        return SOTTO_ERR_NOMEM;
    st->mk_cap = n;
    for (size_t i = 0; i < n; i++) {
        sotto_skr_message_key *mk = &st->mks[i];
        if (sotto_rbuf_get_u32be(r, &mk->iteration) != SOTTO_OK ||
            sotto_rbuf_get_copy(r, mk->seed, sizeof mk->seed) != SOTTO_OK)
            return SOTTO_ERR_CORRUPT_RECORD;
        /* strictly ascending, all behind the chain */
        if (mk->iteration >= st->iteration || (i > 0 && mk->iteration <= st->mks[i - 1].iteration))
            return SOTTO_ERR_CORRUPT_RECORD;
        st->mk_count = i + 1;
    }
    return SOTTO_OK;
}

int sotto_skr_decode(sotto_skr *rec, const uint8_t *data, size_t len)
{
    sotto_rbuf r;
    uint8_t version, count;
    int ret = SOTTO_ERR_CORRUPT_RECORD;

    sotto_skr_init(rec);
    if (data == NULL)
        goto out;
    sotto_rbuf_init(&r, data, len);
    if (sotto_rbuf_get_u8(&r, &version) != SOTTO_OK || version != SOTTO_SKR_FORMAT_VERSION ||
        sotto_rbuf_get_u8(&r, &count) != SOTTO_OK || count > SOTTO_MAX_SENDER_KEY_STATES)
        goto out;
    for (size_t i = 0; i < count; i++) {
        rec->count = i + 1; /* so a failure wipes this state too */
        if ((ret = skr_decode_state(&r, &rec->states[i])) != SOTTO_OK)
            goto out;
    }
    ret = SOTTO_ERR_CORRUPT_RECORD;
    if (sotto_rbuf_remaining(&r) != 0)
        goto out;
    ret = SOTTO_OK;
out:
    if (ret != SOTTO_OK)
        sotto_skr_wipe(rec);
    return ret;
}

int sotto_skr_encode(const sotto_skr *rec, uint8_t **out, size_t *out_len)
{
    size_t total = 2;
    uint8_t *buf = NULL;
    sotto_wbuf w;
    int ret = SOTTO_ERR_INTERNAL;

    if (rec->count > SOTTO_MAX_SENDER_KEY_STATES)
        goto out;
    for (size_t i = 0; i < rec->count; i++) {
        const sotto_skr_state *st = &rec->states[i];
        if (st->mk_count > SOTTO_MAX_MESSAGE_KEYS)
            goto out;
        total += SKR_STATE_FIXED + (st->has_private ? SOTTO_PRIVATE_KEY_BYTES : 0) +
                 st->mk_count * SKR_MK_BYTES;
    }
    ret = SOTTO_ERR_NOMEM;
    buf = malloc(total);
    if (buf == NULL)
        goto out;
    /* One exact allocation: the record is written once per message. */
    sotto_wbuf_init_fixed(&w, buf, total);
    sotto_wbuf_put_u8(&w, SOTTO_SKR_FORMAT_VERSION);
    sotto_wbuf_put_u8(&w, (uint8_t)rec->count);
    for (size_t i = 0; i < rec->count; i++) {
        const sotto_skr_state *st = &rec->states[i];
        uint8_t cnt[2] = {(uint8_t)(st->mk_count >> 8), (uint8_t)st->mk_count};
        sotto_wbuf_put_u32be(&w, st->key_id);
        sotto_wbuf_put_u32be(&w, st->iteration);
        sotto_wbuf_put(&w, st->chain_key, sizeof st->chain_key);
        sotto_wbuf_put(&w, st->signing_pub.bytes, SOTTO_PUBLIC_KEY_BYTES);
        sotto_wbuf_put(&w, st->signing_ed, sizeof st->signing_ed);
        sotto_wbuf_put_u8(&w, st->has_private ? 1 : 0);
        if (st->has_private)
            sotto_wbuf_put(&w, st->signing_priv, sizeof st->signing_priv);
        sotto_wbuf_put(&w, cnt, sizeof cnt);
        for (size_t k = 0; k < st->mk_count; k++) {
            sotto_wbuf_put_u32be(&w, st->mks[k].iteration);
            sotto_wbuf_put(&w, st->mks[k].seed, sizeof st->mks[k].seed);
        }
    }
    ret = SOTTO_ERR_INTERNAL;
    if (sotto_wbuf_error(&w) != SOTTO_OK || w.len != total)
        goto out;
    *out = buf;
    *out_len = total;
    buf = NULL;
    ret = SOTTO_OK;
out:
    if (buf != NULL) {
        sodium_memzero(buf, total);
        free(buf);
    }
    return ret;
}

sotto_skr_state *sotto_skr_find(sotto_skr *rec, uint32_t key_id)
{
    for (size_t i = 0; i < rec->count; i++) {
        if (rec->states[i].key_id == key_id)
            return &rec->states[i];
    }
    return NULL;
}

sotto_skr_state *sotto_skr_add_state(sotto_skr *rec, uint32_t key_id, uint32_t iteration,
                                     const uint8_t chain_key[SOTTO_SENDER_CHAIN_KEY_BYTES],
                                     const sotto_public_key *signing_pub,
                                     const uint8_t *signing_priv)
{
    sotto_skr_state *st;
    if (rec->count == SOTTO_MAX_SENDER_KEY_STATES) {
        skr_state_wipe(&rec->states[rec->count - 1]);
        rec->count--;
    }
    memmove(&rec->states[1], &rec->states[0], rec->count * sizeof rec->states[0]);
    rec->count++;
    st = &rec->states[0];
    memset(st, 0, sizeof *st);
    st->key_id = key_id;
    st->iteration = iteration;
    memcpy(st->chain_key, chain_key, SOTTO_SENDER_CHAIN_KEY_BYTES);
    st->signing_pub = *signing_pub;
    sotto_fe_mont_u_to_ed_y(st->signing_ed, signing_pub->bytes + 1);
    if (signing_priv != NULL) {
        memcpy(st->signing_priv, signing_priv, SOTTO_PRIVATE_KEY_BYTES);
        st->has_private = true;
    }
    return st;
}

void sotto_skr_remove(sotto_skr *rec, size_t i)
{
    if (i >= rec->count)
        return;
    skr_state_wipe(&rec->states[i]);
    memmove(&rec->states[i], &rec->states[i + 1], (rec->count - i - 1) * sizeof rec->states[0]);
    rec->count--;
    sodium_memzero(&rec->states[rec->count], sizeof rec->states[0]);
}

void sotto_skr_promote(sotto_skr *rec, size_t i)
{
    sotto_skr_state tmp;
    if (i == 0 || i >= rec->count)
        return;
    tmp = rec->states[i];
    memmove(&rec->states[1], &rec->states[0], i * sizeof rec->states[0]);
    rec->states[0] = tmp;
    sodium_memzero(&tmp, sizeof tmp);
}

int sotto_skr_state_make_room(sotto_skr_state *st, size_t n)
{
    size_t need;
    if (n > SOTTO_MAX_MESSAGE_KEYS)
        n = SOTTO_MAX_MESSAGE_KEYS;
    if (st->mk_count + n > SOTTO_MAX_MESSAGE_KEYS) {
        size_t drop = st->mk_count + n - SOTTO_MAX_MESSAGE_KEYS;
        sodium_memzero(st->mks, drop * sizeof st->mks[0]);
        memmove(&st->mks[0], &st->mks[drop], (st->mk_count - drop) * sizeof st->mks[0]);
        st->mk_count -= drop;
    }
    need = st->mk_count + n;
    if (need > st->mk_cap) {
        size_t ncap = st->mk_cap * 2 > need ? st->mk_cap * 2 : need;
        if (ncap < 16)
            ncap = 16;
        if (ncap > SOTTO_MAX_MESSAGE_KEYS)
            ncap = SOTTO_MAX_MESSAGE_KEYS;
        sotto_skr_message_key *nm = malloc(ncap * sizeof *nm);
        if (nm == NULL)
            return SOTTO_ERR_NOMEM;
        if (st->mks != NULL) {
            memcpy(nm, st->mks, st->mk_count * sizeof *nm);
            sodium_memzero(st->mks, st->mk_cap * sizeof *st->mks);
            free(st->mks);
        }
        st->mks = nm;
        st->mk_cap = ncap;
    }
    return SOTTO_OK;
}

int sotto_skr_state_add_mk(sotto_skr_state *st, uint32_t iteration,
                           const uint8_t seed[SOTTO_SENDER_SEED_BYTES])
{
    if (st->mk_count > 0 && st->mks[st->mk_count - 1].iteration >= iteration)
        return SOTTO_ERR_INTERNAL;
    if (st->mk_count == SOTTO_MAX_MESSAGE_KEYS) {
        /* evict the oldest */
        sodium_memzero(&st->mks[0], sizeof st->mks[0]);
        memmove(&st->mks[0], &st->mks[1], (st->mk_count - 1) * sizeof st->mks[0]);
        st->mk_count--;
    }
    if (st->mk_count == st->mk_cap) {
        int ret = sotto_skr_state_make_room(st, 1);
        if (ret != SOTTO_OK)
            return ret;
    }
    st->mks[st->mk_count].iteration = iteration;
    memcpy(st->mks[st->mk_count].seed, seed, SOTTO_SENDER_SEED_BYTES);
    st->mk_count++;
    return SOTTO_OK;
}

bool sotto_skr_state_take_mk(sotto_skr_state *st, uint32_t iteration,
                             uint8_t seed[SOTTO_SENDER_SEED_BYTES])
{
    size_t lo = 0, hi = st->mk_count;
    while (lo < hi) { /* binary search: iterations are ascending */
        size_t mid = lo + (hi - lo) / 2;
        if (st->mks[mid].iteration < iteration)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == st->mk_count || st->mks[lo].iteration != iteration)
        return false;
    memcpy(seed, st->mks[lo].seed, SOTTO_SENDER_SEED_BYTES);
    sodium_memzero(&st->mks[lo], sizeof st->mks[lo]);
    memmove(&st->mks[lo], &st->mks[lo + 1], (st->mk_count - lo - 1) * sizeof st->mks[0]);
    st->mk_count--;
    return true;
}
