/*
 * lib/keys/keys.c -- Curve25519 key pairs, public key decoding, X25519,
 * registration ids, one-time and signed prekeys.
 *
 * Spec: shared/specs/signal-protocol.md sections 2.1, 3.1, 3.2 and 9.
 * The XEdDSA signature itself lives in xeddsa.c.
 */
#include "sotto/keys.h"

#include <string.h>

#include <sodium.h>

#include "crypto/crypto.h"

static void clamp(uint8_t k[SOTTO_PRIVATE_KEY_BYTES])
{
    k[0] &= 248;
    k[31] &= 127;
    k[31] |= 64;
}

int sotto_init(void)
{
    if (sodium_init() < 0)
        return SOTTO_ERR_CRYPTO;
    return sotto_crypto_global_init();
}

int sotto_key_pair_from_private(sotto_key_pair *out, const uint8_t priv[SOTTO_PRIVATE_KEY_BYTES])
{
    sotto_key_pair kp;
    int rc = SOTTO_ERR_INVALID_ARGUMENT;

    if (out == NULL || priv == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    memcpy(kp.priv, priv, sizeof kp.priv);
    clamp(kp.priv);
    kp.pub.bytes[0] = SOTTO_KEY_TYPE_DJB;
    /* The public key of a clamped scalar is never the zero point. */
    if (crypto_scalarmult_base(kp.pub.bytes + 1, kp.priv) != 0) {
        rc = SOTTO_ERR_CRYPTO;
        goto out;
    }
    *out = kp;
    rc = SOTTO_OK;
out:
    sodium_memzero(&kp, sizeof kp);
    return rc;
}

int sotto_key_pair_generate(sotto_key_pair *out)
{
    uint8_t priv[SOTTO_PRIVATE_KEY_BYTES];
    int rc;

    if (out == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    sotto_random_buf(priv, sizeof priv);
    rc = sotto_key_pair_from_private(out, priv);
    if (rc != SOTTO_OK && rc != SOTTO_ERR_INVALID_ARGUMENT)
        rc = SOTTO_ERR_CRYPTO;
    sodium_memzero(priv, sizeof priv);
    return rc;
}

void sotto_key_pair_wipe(sotto_key_pair *kp)
{
    if (kp != NULL)
        sodium_memzero(kp, sizeof *kp);
}

int sotto_public_key_decode(sotto_public_key *out, const uint8_t *data, size_t len)
{
    if (out == NULL || data == NULL || len != SOTTO_PUBLIC_KEY_BYTES ||
        data[0] != SOTTO_KEY_TYPE_DJB)
        return SOTTO_ERR_INVALID_KEY;
    memcpy(out->bytes, data, SOTTO_PUBLIC_KEY_BYTES);
    return SOTTO_OK;
}

bool sotto_public_key_equal(const sotto_public_key *a, const sotto_public_key *b)
{
    if (a == NULL || b == NULL)
        return false;
    return sodium_memcmp(a->bytes, b->bytes, SOTTO_PUBLIC_KEY_BYTES) == 0;
}

int sotto_dh(uint8_t out[SOTTO_SHARED_SECRET_BYTES],
             const uint8_t our_priv[SOTTO_PRIVATE_KEY_BYTES], const sotto_public_key *their_pub)
{
    if (out == NULL || our_priv == NULL || their_pub == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    if (their_pub->bytes[0] != SOTTO_KEY_TYPE_DJB) {
        sodium_memzero(out, SOTTO_SHARED_SECRET_BYTES);
        return SOTTO_ERR_INVALID_KEY;
    }
    /*
     * libsodium clamps the scalar itself and returns -1 for an all-zero
     * result (a low-order peer point). libsignal-protocol-c would accept
     * that; we refuse it (spec section 9).
     */
    if (crypto_scalarmult(out, our_priv, their_pub->bytes + 1) != 0) {
        sodium_memzero(out, SOTTO_SHARED_SECRET_BYTES);
        return SOTTO_ERR_INVALID_KEY;
    }
    return SOTTO_OK;
}

int sotto_identity_key_pair_generate(sotto_key_pair *out)
{
    return sotto_key_pair_generate(out);
}

int sotto_registration_id_generate(uint32_t *out)
{
    if (out == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    /* As libsignal-protocol-c (spec 3.1): (rand32 % 16380) + 1. */
    *out = (sotto_random_u32() % 16380u) + 1u;
    return SOTTO_OK;
}

int sotto_prekeys_generate(sotto_prekey *out, uint32_t start, size_t count)
{
    size_t i;
    int rc = SOTTO_OK;

    if (out == NULL && count != 0)
        return SOTTO_ERR_INVALID_ARGUMENT;
    for (i = 0; i < count; i++) {
        /* Spec 3.1: ((start + i) % (0xFFFFFF - 1)) + 1, computed without
         * overflowing 32 bits. */
        uint64_t id = (((uint64_t)start + (uint64_t)i) % (0xFFFFFFu - 1u)) + 1u;

        out[i].id = (uint32_t)id;
        rc = sotto_key_pair_generate(&out[i].key);
        if (rc != SOTTO_OK)
            goto out;
    }
out:
    if (rc != SOTTO_OK)
        sodium_memzero(out, count * sizeof *out);
    return rc;
}

int sotto_signed_prekey_generate(sotto_signed_prekey *out, const sotto_key_pair *identity,
                                 uint32_t id, uint64_t timestamp_ms)
{
    sotto_signed_prekey spk;
    int rc;

    if (out == NULL || identity == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    memset(&spk, 0, sizeof spk);
    spk.id = id;
    spk.timestamp_ms = timestamp_ms;
    rc = sotto_key_pair_generate(&spk.key);
    if (rc != SOTTO_OK)
        goto out;
    /* Spec 3.2: the signature covers the 33-byte serialised public key. */
    rc =
        sotto_xeddsa_sign(spk.signature, identity->priv, spk.key.pub.bytes, SOTTO_PUBLIC_KEY_BYTES);
    if (rc != SOTTO_OK)
        goto out;
    *out = spk;
out:
    sodium_memzero(&spk, sizeof spk);
    return rc;
}

int sotto_signed_prekey_verify(const sotto_public_key *identity_pub,
                               const sotto_public_key *signed_prekey_pub,
                               const uint8_t signature[SOTTO_SIGNATURE_BYTES])
{
    if (identity_pub == NULL || signed_prekey_pub == NULL || signature == NULL)
        return SOTTO_ERR_INVALID_SIGNATURE;
    return sotto_xeddsa_verify(identity_pub, signed_prekey_pub->bytes, SOTTO_PUBLIC_KEY_BYTES,
                               signature);
}
