/*
 * lib/protocol/ratchet.h -- X3DH and Double Ratchet key derivation
 * (internal header). Spec: shared/specs/signal-protocol.md 2.2-2.4.
 *
 * Every output here is secret: callers wipe it (sodium_memzero).
 */
#ifndef SOTTO_LIB_RATCHET_H
#define SOTTO_LIB_RATCHET_H

#include "protocol/session_record.h"
#include "sotto/keys.h"

#define SOTTO_CIPHER_KEY_BYTES 32
#define SOTTO_MAC_KEY_BYTES 32
#define SOTTO_IV_BYTES 16

/* Keys for one message (spec 2.3 "Message keys"). */
typedef struct sotto_message_keys {
    uint8_t cipher_key[SOTTO_CIPHER_KEY_BYTES];
    uint8_t mac_key[SOTTO_MAC_KEY_BYTES];
    uint8_t iv[SOTTO_IV_BYTES];
} sotto_message_keys;

/*
 * Chain step (spec 2.3): seed = HMAC-SHA256(ck, 0x01),
 * next = HMAC-SHA256(ck, 0x02). `next` may alias `ck`.
 */
SOTTO_WUR int sotto_chain_step(const uint8_t ck[SOTTO_CHAIN_KEY_BYTES],
                               uint8_t seed[SOTTO_MESSAGE_SEED_BYTES],
                               uint8_t next[SOTTO_CHAIN_KEY_BYTES]);

/* HKDF(seed, salt 0*32, "WhisperMessageKeys", 80) -> cipher key, MAC key, IV. */
SOTTO_WUR int sotto_message_keys_derive(const uint8_t seed[SOTTO_MESSAGE_SEED_BYTES],
                                        sotto_message_keys *out);

/*
 * Root KDF (spec 2.3): HKDF(ikm = DH(our_priv, their_pub), salt = rk,
 * "WhisperRatchet", 64) -> new_rk [0:32], ck [32:64]. `new_rk` may alias rk.
 */
SOTTO_WUR int sotto_root_kdf(const uint8_t rk[SOTTO_ROOT_KEY_BYTES],
                             const uint8_t our_priv[SOTTO_PRIVATE_KEY_BYTES],
                             const sotto_public_key *their_pub,
                             uint8_t new_rk[SOTTO_ROOT_KEY_BYTES],
                             uint8_t ck[SOTTO_CHAIN_KEY_BYTES]);

/*
 * X3DH as initiator (spec 2.2 "Alice"): fills `st` (zeroed first) with a
 * receiver chain for their_signed_prekey, the sender chain of `our_ratchet`,
 * the root key, identities and alice_base_key = our_base.pub. Registration
 * ids and the pending-prekey fields are left to the caller.
 * their_prekey may be NULL (no one-time prekey).
 */
SOTTO_WUR int sotto_x3dh_alice(sotto_session_state *st, const sotto_key_pair *our_identity,
                               const sotto_key_pair *our_base, const sotto_key_pair *our_ratchet,
                               const sotto_public_key *their_identity,
                               const sotto_public_key *their_signed_prekey,
                               const sotto_public_key *their_prekey);

/*
 * X3DH as responder (spec 2.2 "Bob"): fills `st` (zeroed first) with the
 * sender chain (our_signed_prekey, CK), root key RK, identities and
 * alice_base_key = their_base. our_prekey may be NULL.
 */
SOTTO_WUR int sotto_x3dh_bob(sotto_session_state *st, const sotto_key_pair *our_identity,
                             const sotto_key_pair *our_signed_prekey,
                             const sotto_key_pair *our_prekey,
                             const sotto_public_key *their_identity,
                             const sotto_public_key *their_base);

#endif /* SOTTO_LIB_RATCHET_H */
