/*
 * lib/protocol/ratchet.c -- X3DH (spec 2.2), root and chain KDFs (2.3).
 */
#include "protocol/ratchet.h"

#include <string.h>

#include <sodium.h>

#include "crypto/crypto.h"

static const uint8_t INFO_TEXT[] = "WhisperText";
static const uint8_t INFO_RATCHET[] = "WhisperRatchet";
static const uint8_t INFO_MESSAGE_KEYS[] = "WhisperMessageKeys";

int sotto_chain_step(const uint8_t ck[SOTTO_CHAIN_KEY_BYTES],
                     uint8_t seed[SOTTO_MESSAGE_SEED_BYTES], uint8_t next[SOTTO_CHAIN_KEY_BYTES])
{
    static const uint8_t one = 0x01, two = 0x02;
    const uint8_t *p1[1] = {&one}, *p2[1] = {&two};
    const size_t l[1] = {1};
    sotto_hmac_key k;
    int rc;

    /* Key the HMAC once for both inputs (`next` may alias `ck`). */
    rc = sotto_hmac_key_init(&k, ck, SOTTO_CHAIN_KEY_BYTES);
    if (rc == SOTTO_OK)
        rc = sotto_hmac_key_mac(&k, p1, l, 1, seed);
    if (rc == SOTTO_OK)
        rc = sotto_hmac_key_mac(&k, p2, l, 1, next);
    sotto_hmac_key_wipe(&k);
    return rc;
}

int sotto_message_keys_derive(const uint8_t seed[SOTTO_MESSAGE_SEED_BYTES], sotto_message_keys *out)
{
    uint8_t okm[SOTTO_CIPHER_KEY_BYTES + SOTTO_MAC_KEY_BYTES + SOTTO_IV_BYTES];
    int rc = sotto_hkdf_sha256(okm, sizeof okm, NULL, 0, seed, SOTTO_MESSAGE_SEED_BYTES,
                               INFO_MESSAGE_KEYS, sizeof INFO_MESSAGE_KEYS - 1);
    if (rc == SOTTO_OK) {
        memcpy(out->cipher_key, okm, SOTTO_CIPHER_KEY_BYTES);
        memcpy(out->mac_key, okm + SOTTO_CIPHER_KEY_BYTES, SOTTO_MAC_KEY_BYTES);
        memcpy(out->iv, okm + SOTTO_CIPHER_KEY_BYTES + SOTTO_MAC_KEY_BYTES, SOTTO_IV_BYTES);
    }
    sodium_memzero(okm, sizeof okm);
    return rc;
}

int sotto_root_kdf(const uint8_t rk[SOTTO_ROOT_KEY_BYTES],
                   const uint8_t our_priv[SOTTO_PRIVATE_KEY_BYTES],
                   const sotto_public_key *their_pub, uint8_t new_rk[SOTTO_ROOT_KEY_BYTES],
                   uint8_t ck[SOTTO_CHAIN_KEY_BYTES])
{
    uint8_t dh[SOTTO_SHARED_SECRET_BYTES];
    uint8_t salt[SOTTO_ROOT_KEY_BYTES];
    uint8_t okm[SOTTO_ROOT_KEY_BYTES + SOTTO_CHAIN_KEY_BYTES];
    int rc;

    memcpy(salt, rk, sizeof salt); /* rk and new_rk may alias */
    rc = sotto_dh(dh, our_priv, their_pub);
    if (rc != SOTTO_OK)
        goto out;
    rc = sotto_hkdf_sha256(okm, sizeof okm, salt, sizeof salt, dh, sizeof dh, INFO_RATCHET,
                           sizeof INFO_RATCHET - 1);
    if (rc != SOTTO_OK)
        goto out;
    memcpy(new_rk, okm, SOTTO_ROOT_KEY_BYTES);
    memcpy(ck, okm + SOTTO_ROOT_KEY_BYTES, SOTTO_CHAIN_KEY_BYTES);
out:
    sodium_memzero(dh, sizeof dh);
    sodium_memzero(salt, sizeof salt);
    sodium_memzero(okm, sizeof okm);
    return rc;
}

/*
 * HKDF(0xFF*32 || dh1 || dh2 || dh3 [|| dh4], zero salt, "WhisperText", 64)
 * -> rk, ck. The DH pairs are given in the order of spec 2.2.
 */
static int x3dh_derive(const uint8_t *const privs[4], const sotto_public_key *const pubs[4],
                       size_t n, uint8_t rk[SOTTO_ROOT_KEY_BYTES],
                       uint8_t ck[SOTTO_CHAIN_KEY_BYTES])
{
    uint8_t ikm[32 * 5];
    uint8_t okm[64];
    int rc = SOTTO_OK;

    memset(ikm, 0xFF, 32);
    for (size_t i = 0; i < n && rc == SOTTO_OK; i++)
        rc = sotto_dh(ikm + 32 * (i + 1), privs[i], pubs[i]);
    if (rc == SOTTO_OK)
        rc = sotto_hkdf_sha256(okm, sizeof okm, NULL, 0, ikm, 32 * (n + 1), INFO_TEXT,
                               sizeof INFO_TEXT - 1);
    if (rc == SOTTO_OK) {
        memcpy(rk, okm, SOTTO_ROOT_KEY_BYTES);
        memcpy(ck, okm + 32, SOTTO_CHAIN_KEY_BYTES);
    }
    sodium_memzero(ikm, sizeof ikm);
    sodium_memzero(okm, sizeof okm);
    return rc;
}

int sotto_x3dh_alice(sotto_session_state *st, const sotto_key_pair *our_identity,
                     const sotto_key_pair *our_base, const sotto_key_pair *our_ratchet,
                     const sotto_public_key *their_identity,
                     const sotto_public_key *their_signed_prekey,
                     const sotto_public_key *their_prekey)
{
    uint8_t rk[SOTTO_ROOT_KEY_BYTES], ck[SOTTO_CHAIN_KEY_BYTES];
    const uint8_t *privs[4] = {our_identity->priv, our_base->priv, our_base->priv, our_base->priv};
    const sotto_public_key *pubs[4] = {their_signed_prekey, their_identity, their_signed_prekey,
                                       their_prekey};
    int rc;

    memset(st, 0, sizeof *st);
    rc = x3dh_derive(privs, pubs, their_prekey != NULL ? 4 : 3, rk, ck);
    if (rc != SOTTO_OK)
        goto out;
    /* Bob's first ratchet key is his signed prekey: a receiver chain for it. */
    st->n_recv = 1;
    st->recv[0].their_ratchet = *their_signed_prekey;
    memcpy(st->recv[0].chain_key, ck, sizeof ck);
    st->recv[0].index = 0;
    /* Our sending chain: one ratchet step from RK with our fresh ratchet key. */
    rc = sotto_root_kdf(rk, our_ratchet->priv, their_signed_prekey, st->root_key,
                        st->sender_chain_key);
    if (rc != SOTTO_OK)
        goto out;
    st->has_sender_chain = true;
    st->sender_ratchet = *our_ratchet;
    st->sender_index = 0;
    st->local_identity = our_identity->pub;
    st->remote_identity = *their_identity;
    st->has_alice_base_key = true;
    st->alice_base_key = our_base->pub;
out:
    if (rc != SOTTO_OK)
        sotto_session_state_clear(st);
    sodium_memzero(rk, sizeof rk);
    sodium_memzero(ck, sizeof ck);
    return rc;
}

int sotto_x3dh_bob(sotto_session_state *st, const sotto_key_pair *our_identity,
                   const sotto_key_pair *our_signed_prekey, const sotto_key_pair *our_prekey,
                   const sotto_public_key *their_identity, const sotto_public_key *their_base)
{
    const uint8_t *privs[4] = {our_signed_prekey->priv, our_identity->priv, our_signed_prekey->priv,
                               our_prekey != NULL ? our_prekey->priv : NULL};
    const sotto_public_key *pubs[4] = {their_identity, their_base, their_base, their_base};
    int rc;

    memset(st, 0, sizeof *st);
    rc = x3dh_derive(privs, pubs, our_prekey != NULL ? 4 : 3, st->root_key, st->sender_chain_key);
    if (rc != SOTTO_OK) {
        sotto_session_state_clear(st);
        return rc;
    }
    st->has_sender_chain = true;
    st->sender_ratchet = *our_signed_prekey;
    st->sender_index = 0;
    st->local_identity = our_identity->pub;
    st->remote_identity = *their_identity;
    st->has_alice_base_key = true;
    st->alice_base_key = *their_base;
    return SOTTO_OK;
}
