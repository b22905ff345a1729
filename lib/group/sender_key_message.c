/*
 * SenderKeyMessage and SenderKeyDistributionMessage codecs (spec 1.1, 1.5,
 * 1.6), byte for byte as libsignal-protocol-c writes them: version byte
 * 0x33, protobuf fields in ascending order, every field written (including
 * zero values).
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/buf.h"
#include "common/pb.h"
#include "group/sender_key_message.h"
#include "sotto/group.h"
#include "sotto/protocol.h"

/* Bytes of a varint-encoded uint32, at most 5. */
static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

int sotto_sk_check_version(uint8_t b)
{
    unsigned v = (unsigned)(b & 0xF0) >> 4;
    if (v < SOTTO_MESSAGE_VERSION)
        return SOTTO_ERR_LEGACY_MESSAGE;
    if (v > SOTTO_MESSAGE_VERSION)
        return SOTTO_ERR_UNSUPPORTED_VERSION;
    return SOTTO_OK;
}

int sotto_skm_decode(sotto_skm *out, const uint8_t *data, size_t len)
{
    sotto_rbuf r;
    sotto_pb_field f;
    sotto_skm m;
    bool has_id = false, has_iter = false, has_ct = false;
    int ret = SOTTO_ERR_INVALID_MESSAGE;
    int rc;

    memset(&m, 0, sizeof m);
    if (out == NULL || data == NULL || len <= 1 + SOTTO_SIGNATURE_BYTES ||
        len > SOTTO_MAX_MESSAGE_BYTES)
        goto out;
    if ((ret = sotto_sk_check_version(data[0])) != SOTTO_OK)
        goto out;
    ret = SOTTO_ERR_INVALID_MESSAGE;
    sotto_rbuf_init(&r, data + 1, len - 1 - SOTTO_SIGNATURE_BYTES);
    while ((rc = sotto_pb_next(&r, &f)) == 1) {
        switch (f.num) {
        case 1:
            if (sotto_pb_get_u32(&f, &m.key_id) != SOTTO_OK)
                goto out;
            has_id = true;
            break;
        case 2:
            if (sotto_pb_get_u32(&f, &m.iteration) != SOTTO_OK)
                goto out;
            has_iter = true;
            break;
        case 3:
            if (sotto_pb_get_bytes(&f, &m.ciphertext, &m.ciphertext_len) != SOTTO_OK)
                goto out;
            has_ct = true;
            break;
        default:
            break; /* unknown field: skipped, as protobuf does */
        }
    }
    if (rc != 0 || !has_id || !has_iter || !has_ct)
        goto out;
    m.signed_part = data;
    m.signed_len = len - SOTTO_SIGNATURE_BYTES;
    m.signature = data + len - SOTTO_SIGNATURE_BYTES;
    *out = m;
    ret = SOTTO_OK;
out:
    return ret;
}

int sotto_skm_encode(uint32_t key_id, uint32_t iteration, const uint8_t *ciphertext,
                     size_t ciphertext_len, const uint8_t signing_priv[SOTTO_PRIVATE_KEY_BYTES],
                     uint8_t **out, size_t *out_len)
{
    uint8_t *buf = NULL;
    size_t total;
    sotto_wbuf w;
    uint8_t *sig;
    int ret = SOTTO_ERR_INVALID_ARGUMENT;

    if (ciphertext_len > SOTTO_MAX_MESSAGE_BYTES)
        goto out;
    total = 1 + 1 + varint_len(key_id) + 1 + varint_len(iteration) + 1 +
            varint_len(ciphertext_len) + ciphertext_len + SOTTO_SIGNATURE_BYTES;
    if (total > SOTTO_MAX_MESSAGE_BYTES)
        goto out;
    ret = SOTTO_ERR_NOMEM;
    buf = malloc(total);
    if (buf == NULL)
        goto out;
    sotto_wbuf_init_fixed(&w, buf, total);
    sotto_wbuf_put_u8(&w, SOTTO_SK_VERSION_BYTE);
    sotto_pb_put_uint(&w, 1, key_id);
    sotto_pb_put_uint(&w, 2, iteration);
    sotto_pb_put_bytes(&w, 3, ciphertext, ciphertext_len);
    sig = sotto_wbuf_reserve(&w, SOTTO_SIGNATURE_BYTES);
    ret = SOTTO_ERR_INTERNAL;
    if (sig == NULL || sotto_wbuf_error(&w) != SOTTO_OK || w.len != total)
        goto out;
    if ((ret = sotto_xeddsa_sign(sig, signing_priv, buf, total - SOTTO_SIGNATURE_BYTES)) !=
        SOTTO_OK)
        goto out;
    *out = buf;
    *out_len = total;
    buf = NULL;
out:
    free(buf); /* ciphertext and signature only: nothing secret */
    return ret;
}

int sotto_sender_key_distribution_decode(sotto_sender_key_distribution *out, const uint8_t *data,
                                         size_t len)
{
    sotto_rbuf r;
    sotto_pb_field f;
    sotto_sender_key_distribution d;
    const uint8_t *ck = NULL, *sk = NULL;
    size_t ck_len = 0, sk_len = 0;
    bool has_id = false, has_iter = false;
    int ret = SOTTO_ERR_INVALID_MESSAGE;
    int rc;

    memset(&d, 0, sizeof d);
    if (out == NULL || data == NULL || len < 1 || len > SOTTO_MAX_MESSAGE_BYTES)
        goto out;
    if ((ret = sotto_sk_check_version(data[0])) != SOTTO_OK)
        goto out;
    ret = SOTTO_ERR_INVALID_MESSAGE;
    sotto_rbuf_init(&r, data + 1, len - 1);
    while ((rc = sotto_pb_next(&r, &f)) == 1) {
        switch (f.num) {
        case 1:
            if (sotto_pb_get_u32(&f, &d.key_id) != SOTTO_OK)
                goto out;
            has_id = true;
            break;
        case 2:
            if (sotto_pb_get_u32(&f, &d.iteration) != SOTTO_OK)
                goto out;
            has_iter = true;
            break;
        case 3:
            if (sotto_pb_get_bytes(&f, &ck, &ck_len) != SOTTO_OK)
                goto out;
            break;
        case 4:
            if (sotto_pb_get_bytes(&f, &sk, &sk_len) != SOTTO_OK)
                goto out;
            break;
        default:
            break;
        }
    }
    if (rc != 0 || !has_id || !has_iter || ck == NULL || sk == NULL ||
        ck_len != SOTTO_SENDER_KEY_BYTES)
        goto out;
    if ((ret = sotto_public_key_decode(&d.signing_key, sk, sk_len)) != SOTTO_OK)
        goto out;
    memcpy(d.chain_key, ck, SOTTO_SENDER_KEY_BYTES);
    *out = d;
    ret = SOTTO_OK;
out:
    sodium_memzero(&d, sizeof d);
    return ret;
}

int sotto_sender_key_distribution_encode(const sotto_sender_key_distribution *in, uint8_t **out,
                                         size_t *out_len)
{
    uint8_t *buf = NULL;
    size_t total;
    sotto_wbuf w;
    int ret = SOTTO_ERR_INVALID_ARGUMENT;

    if (in == NULL || out == NULL || out_len == NULL ||
        in->signing_key.bytes[0] != SOTTO_KEY_TYPE_DJB)
        goto out;
    total = 1 + 1 + varint_len(in->key_id) + 1 + varint_len(in->iteration) + 2 +
            SOTTO_SENDER_KEY_BYTES + 2 + SOTTO_PUBLIC_KEY_BYTES;
    ret = SOTTO_ERR_NOMEM;
    buf = malloc(total);
    if (buf == NULL)
        goto out;
    sotto_wbuf_init_fixed(&w, buf, total);
    sotto_wbuf_put_u8(&w, SOTTO_SK_VERSION_BYTE);
    sotto_pb_put_uint(&w, 1, in->key_id);
    sotto_pb_put_uint(&w, 2, in->iteration);
    sotto_pb_put_bytes(&w, 3, in->chain_key, SOTTO_SENDER_KEY_BYTES);
    sotto_pb_put_bytes(&w, 4, in->signing_key.bytes, SOTTO_PUBLIC_KEY_BYTES);
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

int sotto_sender_key_message_peek(const uint8_t *msg, size_t msg_len, uint32_t *key_id,
                                  uint32_t *iteration)
{
    sotto_skm m;
    int ret;
    if (key_id == NULL || iteration == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    if ((ret = sotto_skm_decode(&m, msg, msg_len)) != SOTTO_OK)
        return ret;
    *key_id = m.key_id;
    *iteration = m.iteration;
    return SOTTO_OK;
}
