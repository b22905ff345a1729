/*
 * lib/protocol/wire.c -- SignalMessage / PreKeySignalMessage codecs
 * (spec 1.1-1.4). All parsing goes through common/pb.h on a bounded reader;
 * all writing through a fixed-size sotto_wbuf sized from an upper bound.
 */
#include "protocol/wire.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/buf.h"
#include "common/pb.h"
#include "crypto/crypto.h"

/* Field numbers (WhisperTextProtocol.proto). */
enum { SM_RATCHET_KEY = 1, SM_COUNTER = 2, SM_PREVIOUS_COUNTER = 3, SM_CIPHERTEXT = 4 };
enum {
    PK_PREKEY_ID = 1,
    PK_BASE_KEY = 2,
    PK_IDENTITY_KEY = 3,
    PK_MESSAGE = 4,
    PK_REGISTRATION_ID = 5,
    PK_SIGNED_PREKEY_ID = 6
};

/* Version nibble rules shared by both messages (spec 1.1; low nibble ignored). */
static int check_version(uint8_t b)
{
    unsigned v = (unsigned)(b >> 4);
    if (v < SOTTO_MESSAGE_VERSION)
        return SOTTO_ERR_LEGACY_MESSAGE;
    if (v > SOTTO_MESSAGE_VERSION)
        return SOTTO_ERR_UNSUPPORTED_VERSION;
    return SOTTO_OK;
}

static int decode_key(sotto_public_key *out, const sotto_pb_field *f)
{
    const uint8_t *p;
    size_t n;
    if (sotto_pb_get_bytes(f, &p, &n) != SOTTO_OK)
        return SOTTO_ERR_INVALID_MESSAGE;
    return sotto_public_key_decode(out, p, n) == SOTTO_OK ? SOTTO_OK : SOTTO_ERR_INVALID_KEY;
}

int sotto_signal_message_decode(sotto_signal_message *m, const uint8_t *data, size_t len)
{
    int rc = SOTTO_ERR_INVALID_MESSAGE;
    sotto_rbuf r;
    sotto_pb_field f;
    bool have_key = false, have_counter = false, have_ct = false;

    memset(m, 0, sizeof *m);
    if (data == NULL || len <= 1 + SOTTO_SIGNAL_MAC_BYTES || len > SOTTO_MAX_MESSAGE_BYTES)
        goto out;
    rc = check_version(data[0]);
    if (rc != SOTTO_OK)
        goto out;
    rc = SOTTO_ERR_INVALID_MESSAGE;
    sotto_rbuf_init(&r, data + 1, len - 1 - SOTTO_SIGNAL_MAC_BYTES);
    for (;;) {
        int got = sotto_pb_next(&r, &f);
        if (got == 0)
            break;
        if (got < 0)
            goto out;
        switch (f.num) {
        case SM_RATCHET_KEY:
            rc = decode_key(&m->ratchet_key, &f);
            if (rc != SOTTO_OK)
                goto out;
            rc = SOTTO_ERR_INVALID_MESSAGE;
            have_key = true;
            break;
        case SM_COUNTER:
            if (sotto_pb_get_u32(&f, &m->counter) != SOTTO_OK)
                goto out;
            have_counter = true;
            break;
        case SM_PREVIOUS_COUNTER:
            if (sotto_pb_get_u32(&f, &m->previous_counter) != SOTTO_OK)
                goto out;
            break;
        case SM_CIPHERTEXT:
            if (sotto_pb_get_bytes(&f, &m->ciphertext, &m->ciphertext_len) != SOTTO_OK)
                goto out;
            have_ct = true;
            break;
        default:
            break; /* unknown fields are skipped, as protobuf does */
        }
    }
    if (!have_key || !have_counter || !have_ct)
        goto out;
    m->data = data;
    m->len = len;
    rc = SOTTO_OK;
out:
    if (rc != SOTTO_OK)
        memset(m, 0, sizeof *m);
    return rc;
}

int sotto_prekey_signal_message_decode(sotto_prekey_signal_message *m, const uint8_t *data,
                                       size_t len)
{
    int rc = SOTTO_ERR_INVALID_MESSAGE;
    sotto_rbuf r;
    sotto_pb_field f;
    const uint8_t *inner = NULL;
    size_t inner_len = 0;
    bool have_base = false, have_identity = false, have_msg = false, have_spk = false;

    memset(m, 0, sizeof *m);
    if (data == NULL || len < 1 || len > SOTTO_MAX_MESSAGE_BYTES)
        goto out;
    rc = check_version(data[0]);
    if (rc != SOTTO_OK)
        goto out;
    rc = SOTTO_ERR_INVALID_MESSAGE;
    sotto_rbuf_init(&r, data + 1, len - 1);
    for (;;) {
        int got = sotto_pb_next(&r, &f);
        if (got == 0)
            break;
        if (got < 0)
            goto out;
        switch (f.num) {
        case PK_PREKEY_ID:
            if (sotto_pb_get_u32(&f, &m->info.prekey_id) != SOTTO_OK)
                goto out;
            m->info.has_prekey_id = true;
            break;
        case PK_BASE_KEY:
        case PK_IDENTITY_KEY:
            rc = decode_key(f.num == PK_BASE_KEY ? &m->info.base_key : &m->info.identity_key, &f);
            if (rc != SOTTO_OK)
                goto out;
            rc = SOTTO_ERR_INVALID_MESSAGE;
            if (f.num == PK_BASE_KEY)
                have_base = true;
            else
                have_identity = true;
            break;
        case PK_MESSAGE:
            if (sotto_pb_get_bytes(&f, &inner, &inner_len) != SOTTO_OK)
                goto out;
            have_msg = true;
            break;
        case PK_REGISTRATION_ID:
            if (sotto_pb_get_u32(&f, &m->info.registration_id) != SOTTO_OK)
                goto out;
            break;
        case PK_SIGNED_PREKEY_ID:
            if (sotto_pb_get_u32(&f, &m->info.signed_prekey_id) != SOTTO_OK)
                goto out;
            have_spk = true;
            break;
        default:
            break;
        }
    }
    if (!have_base || !have_identity || !have_msg || !have_spk)
        goto out;
    /* The inner version must equal the outer one (both are checked to be 3). */
    rc = sotto_signal_message_decode(&m->message, inner, inner_len);
out:
    if (rc != SOTTO_OK)
        memset(m, 0, sizeof *m);
    return rc;
}

static int mac_compute(uint8_t out[SOTTO_HMAC_SHA256_BYTES],
                       const uint8_t mac_key[SOTTO_MAC_KEY_BYTES], const sotto_public_key *sender,
                       const sotto_public_key *receiver, const uint8_t *data, size_t len)
{
    const uint8_t *parts[3] = {sender->bytes, receiver->bytes, data};
    const size_t lens[3] = {SOTTO_PUBLIC_KEY_BYTES, SOTTO_PUBLIC_KEY_BYTES, len};
    sotto_hmac_key k;
    int rc = sotto_hmac_key_init(&k, mac_key, SOTTO_MAC_KEY_BYTES);
    if (rc == SOTTO_OK)
        rc = sotto_hmac_key_mac(&k, parts, lens, 3, out);
    sotto_hmac_key_wipe(&k);
    return rc;
}

int sotto_signal_message_verify_mac(const sotto_signal_message *m,
                                    const uint8_t mac_key[SOTTO_MAC_KEY_BYTES],
                                    const sotto_public_key *sender_identity,
                                    const sotto_public_key *receiver_identity)
{
    uint8_t mac[SOTTO_HMAC_SHA256_BYTES];
    size_t body = m->len - SOTTO_SIGNAL_MAC_BYTES;
    int ok =
        mac_compute(mac, mac_key, sender_identity, receiver_identity, m->data, body) == SOTTO_OK &&
        sodium_memcmp(mac, m->data + body, SOTTO_SIGNAL_MAC_BYTES) == 0;
    sodium_memzero(mac, sizeof mac);
    return ok ? SOTTO_OK : SOTTO_ERR_INVALID_MESSAGE;
}

size_t sotto_signal_message_max_len(size_t pt_len)
{
    /* version + key field (35) + 2 varint fields (<= 6 each) + ciphertext
     * field (tag, <= 5-byte length, padded ciphertext) + MAC. */
    size_t ct_len = pt_len - pt_len % SOTTO_AES_BLOCK_BYTES + SOTTO_AES_BLOCK_BYTES;
    return 1 + 35 + 6 + 6 + 1 + 5 + ct_len + SOTTO_SIGNAL_MAC_BYTES;
}

int sotto_signal_message_encode(const sotto_public_key *ratchet_key, uint32_t counter,
                                uint32_t previous_counter, const sotto_message_keys *mk,
                                const sotto_public_key *sender_identity,
                                const sotto_public_key *receiver_identity, const uint8_t *pt,
                                size_t pt_len, uint8_t **out, size_t *out_len)
{
    int rc = SOTTO_ERR_INTERNAL;
    size_t cap = sotto_signal_message_max_len(pt_len);
    size_t ct_len = pt_len - pt_len % SOTTO_AES_BLOCK_BYTES + SOTTO_AES_BLOCK_BYTES;
    size_t written = 0;
    uint8_t mac[SOTTO_HMAC_SHA256_BYTES];
    uint8_t *buf = NULL, *ct;
    sotto_wbuf w;

    *out = NULL;
    *out_len = 0;
    buf = malloc(cap);
    if (buf == NULL) {
        rc = SOTTO_ERR_NOMEM;
        goto out;
    }
    sotto_wbuf_init_fixed(&w, buf, cap);
    sotto_wbuf_put_u8(&w, SOTTO_VERSION_BYTE);
    sotto_pb_put_bytes(&w, SM_RATCHET_KEY, ratchet_key->bytes, SOTTO_PUBLIC_KEY_BYTES);
    sotto_pb_put_uint(&w, SM_COUNTER, counter);
    sotto_pb_put_uint(&w, SM_PREVIOUS_COUNTER, previous_counter);
    sotto_pb_put_tag(&w, SM_CIPHERTEXT, SOTTO_PB_LEN);
    sotto_wbuf_put_varint(&w, ct_len);
    ct = sotto_wbuf_reserve(&w, ct_len);
    if (ct == NULL)
        goto out;
    rc = sotto_aes256_cbc_encrypt(ct, &written, mk->cipher_key, mk->iv, pt, pt_len);
    if (rc != SOTTO_OK)
        goto out;
    rc = SOTTO_ERR_INTERNAL;
    if (written != ct_len)
        goto out;
    if ((rc = mac_compute(mac, mk->mac_key, sender_identity, receiver_identity, buf, w.len)) !=
        SOTTO_OK)
        goto out;
    rc = SOTTO_ERR_INTERNAL;
    sotto_wbuf_put(&w, mac, SOTTO_SIGNAL_MAC_BYTES);
    if (sotto_wbuf_error(&w) != SOTTO_OK)
        goto out;
    *out = buf;
    *out_len = w.len;
    buf = NULL;
    rc = SOTTO_OK;
out:
    free(buf); /* ciphertext only: nothing secret */
    sodium_memzero(mac, sizeof mac);
    return rc;
}

int sotto_prekey_signal_message_encode(const sotto_prekey_message_info *info, const uint8_t *inner,
                                       size_t inner_len, uint8_t **out, size_t *out_len)
{
    int rc = SOTTO_ERR_INTERNAL;
    size_t cap = 1 + 6 + 35 + 35 + 1 + 5 + inner_len + 6 + 6;
    uint8_t *buf = NULL;
    sotto_wbuf w;

    *out = NULL;
    *out_len = 0;
    buf = malloc(cap);
    if (buf == NULL) {
        rc = SOTTO_ERR_NOMEM;
        goto out;
    }
    sotto_wbuf_init_fixed(&w, buf, cap);
    sotto_wbuf_put_u8(&w, SOTTO_VERSION_BYTE);
    if (info->has_prekey_id)
        sotto_pb_put_uint(&w, PK_PREKEY_ID, info->prekey_id);
    sotto_pb_put_bytes(&w, PK_BASE_KEY, info->base_key.bytes, SOTTO_PUBLIC_KEY_BYTES);
    sotto_pb_put_bytes(&w, PK_IDENTITY_KEY, info->identity_key.bytes, SOTTO_PUBLIC_KEY_BYTES);
    sotto_pb_put_bytes(&w, PK_MESSAGE, inner, inner_len);
    sotto_pb_put_uint(&w, PK_REGISTRATION_ID, info->registration_id);
    sotto_pb_put_uint(&w, PK_SIGNED_PREKEY_ID, info->signed_prekey_id);
    if (sotto_wbuf_error(&w) != SOTTO_OK)
        goto out;
    *out = buf;
    *out_len = w.len;
    buf = NULL;
    rc = SOTTO_OK;
out:
    free(buf);
    return rc;
}
