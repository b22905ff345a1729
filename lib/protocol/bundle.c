/*
 * lib/protocol/bundle.c -- our versioned prekey bundle encoding
 * (docs/protocol.md "Prekey bundle encoding").
 *
 *   u8  format version (1)
 *   u8  flags (bit 0: a one-time prekey follows; other bits zero)
 *   u32 registration id, u32 device id                (big-endian)
 *   33  identity key
 *   u32 signed prekey id, 33 signed prekey, 64 signature
 *   [u32 one-time prekey id, 33 one-time prekey]      (if flag bit 0)
 */
#include <string.h>

#include <sodium.h>

#include "common/buf.h"
#include "sotto/session.h"

#define BUNDLE_FLAG_PREKEY 0x01u

int sotto_prekey_bundle_encode(const sotto_prekey_bundle *b,
                               uint8_t out[SOTTO_PREKEY_BUNDLE_MAX_BYTES], size_t *out_len)
{
    sotto_wbuf w;

    if (b == NULL || out == NULL || out_len == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    *out_len = 0;
    sotto_wbuf_init_fixed(&w, out, SOTTO_PREKEY_BUNDLE_MAX_BYTES);
    sotto_wbuf_put_u8(&w, SOTTO_PREKEY_BUNDLE_FORMAT_VERSION);
    sotto_wbuf_put_u8(&w, b->has_prekey ? BUNDLE_FLAG_PREKEY : 0);
    sotto_wbuf_put_u32be(&w, b->registration_id);
    sotto_wbuf_put_u32be(&w, b->device_id);
    sotto_wbuf_put(&w, b->identity_key.bytes, SOTTO_PUBLIC_KEY_BYTES);
    sotto_wbuf_put_u32be(&w, b->signed_prekey_id);
    sotto_wbuf_put(&w, b->signed_prekey.bytes, SOTTO_PUBLIC_KEY_BYTES);
    sotto_wbuf_put(&w, b->signed_prekey_signature, SOTTO_SIGNATURE_BYTES);
    if (b->has_prekey) {
        sotto_wbuf_put_u32be(&w, b->prekey_id);
        sotto_wbuf_put(&w, b->prekey.bytes, SOTTO_PUBLIC_KEY_BYTES);
    }
    if (sotto_wbuf_error(&w) != SOTTO_OK)
        return SOTTO_ERR_INTERNAL;
    *out_len = w.len;
    return SOTTO_OK;
}

static int get_key(sotto_rbuf *r, sotto_public_key *k)
{
    const uint8_t *p;
    if (sotto_rbuf_get_ptr(r, SOTTO_PUBLIC_KEY_BYTES, &p) != SOTTO_OK)
        return SOTTO_ERR_INVALID_MESSAGE;
    return sotto_public_key_decode(k, p, SOTTO_PUBLIC_KEY_BYTES) == SOTTO_OK
               ? SOTTO_OK
               : SOTTO_ERR_INVALID_KEY;
}

int sotto_prekey_bundle_decode(sotto_prekey_bundle *out, const uint8_t *data, size_t len)
{
    int rc = SOTTO_ERR_INVALID_MESSAGE;
    sotto_rbuf r;
    uint8_t version, flags;

    if (out == NULL || (data == NULL && len != 0))
        return SOTTO_ERR_INVALID_ARGUMENT;
    memset(out, 0, sizeof *out);
    sotto_rbuf_init(&r, data, len);
    if (sotto_rbuf_get_u8(&r, &version) != SOTTO_OK)
        goto out;
    if (version != SOTTO_PREKEY_BUNDLE_FORMAT_VERSION) {
        rc = SOTTO_ERR_UNSUPPORTED_VERSION;
        goto out;
    }
    if (sotto_rbuf_get_u8(&r, &flags) != SOTTO_OK || (flags & ~BUNDLE_FLAG_PREKEY) != 0)
        goto out;
    if (sotto_rbuf_get_u32be(&r, &out->registration_id) != SOTTO_OK ||
        sotto_rbuf_get_u32be(&r, &out->device_id) != SOTTO_OK)
        goto out;
    if ((rc = get_key(&r, &out->identity_key)) != SOTTO_OK)
        goto out;
    rc = SOTTO_ERR_INVALID_MESSAGE;
    if (sotto_rbuf_get_u32be(&r, &out->signed_prekey_id) != SOTTO_OK)
        goto out;
    if ((rc = get_key(&r, &out->signed_prekey)) != SOTTO_OK)
        goto out;
    rc = SOTTO_ERR_INVALID_MESSAGE;
    if (sotto_rbuf_get_copy(&r, out->signed_prekey_signature, SOTTO_SIGNATURE_BYTES) != SOTTO_OK)
        goto out;
    if (flags & BUNDLE_FLAG_PREKEY) {
        out->has_prekey = true;
        if (sotto_rbuf_get_u32be(&r, &out->prekey_id) != SOTTO_OK)
            goto out;
        if ((rc = get_key(&r, &out->prekey)) != SOTTO_OK)
            goto out;
        rc = SOTTO_ERR_INVALID_MESSAGE;
    }
    if (sotto_rbuf_remaining(&r) != 0)
        goto out;
    rc = SOTTO_OK;
out:
    if (rc != SOTTO_OK)
        memset(out, 0, sizeof *out);
    return rc;
}
