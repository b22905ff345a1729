/*
 * sotto/keys.h -- Curve25519 keys, XEdDSA signatures, identity keys,
 * signed prekeys, one-time prekeys and registration ids.
 *
 * Spec: shared/specs/signal-protocol.md section 3 (key formats, signature
 * scheme), section 2.1 (X25519). Key formats are those of
 * libsignal-protocol-c: a public key is serialised as 33 bytes,
 * 0x05 (DJB type) || the 32-byte X25519 u-coordinate; a private key is 32
 * raw clamped bytes.
 *
 * All structs here are plain values owned by the caller. Those holding a
 * private key must be wiped with sotto_key_pair_wipe() (or
 * sodium_memzero) when no longer needed.
 */
#ifndef SOTTO_KEYS_H
#define SOTTO_KEYS_H

#include <stdbool.h>

#include "sotto/common.h"
#include "sotto/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SOTTO_KEY_TYPE_DJB 0x05
#define SOTTO_PUBLIC_KEY_BYTES 33  /* serialised public key: 0x05 || u */
#define SOTTO_RAW_KEY_BYTES 32     /* raw X25519 u-coordinate */
#define SOTTO_PRIVATE_KEY_BYTES 32 /* raw clamped X25519 scalar */
#define SOTTO_SHARED_SECRET_BYTES 32
#define SOTTO_SIGNATURE_BYTES 64              /* XEdDSA signature R || S with sign bit */
#define SOTTO_PREKEY_MAX_ID 0xFFFFFEu         /* one-time prekey ids are 1 .. 0xFFFFFE */
#define SOTTO_PREKEY_LAST_RESORT_ID 0xFFFFFFu /* never removed after use (spec 2.6) */

/* A public key in its 33-byte serialised form (bytes[0] == 0x05). */
typedef struct sotto_public_key {
    uint8_t bytes[SOTTO_PUBLIC_KEY_BYTES];
} sotto_public_key;

/* A Curve25519 key pair. `priv` is secret. */
typedef struct sotto_key_pair {
    sotto_public_key pub;
    uint8_t priv[SOTTO_PRIVATE_KEY_BYTES];
} sotto_key_pair;

/* A one-time prekey: id (1 .. 0xFFFFFE) and its key pair. */
typedef struct sotto_prekey {
    uint32_t id;
    sotto_key_pair key;
} sotto_prekey;

/* A signed prekey: id, key pair, the identity key's XEdDSA signature over
 * the 33-byte serialised public key, and its creation time (ms since epoch). */
typedef struct sotto_signed_prekey {
    uint32_t id;
    sotto_key_pair key;
    uint8_t signature[SOTTO_SIGNATURE_BYTES];
    uint64_t timestamp_ms;
} sotto_signed_prekey;

/*
 * Initialises libsotto (libsodium's sodium_init, OpenSSL's AES-256-CBC and
 * SHA-256). Call once before anything else; safe to call more than once
 * and from several threads. Returns SOTTO_OK or SOTTO_ERR_CRYPTO.
 */
SOTTO_API SOTTO_WUR int sotto_init(void);

/*
 * Generates a fresh key pair from the system RNG (spec 2.1, 3.1): 32
 * random bytes, clamped, and the 33-byte public key. `*out` holds a private
 * key: the caller wipes it (sotto_key_pair_wipe). Returns SOTTO_OK,
 * SOTTO_ERR_INVALID_ARGUMENT (NULL) or SOTTO_ERR_CRYPTO.
 */
SOTTO_API SOTTO_WUR int sotto_key_pair_generate(sotto_key_pair *out);

/*
 * Builds a key pair from 32 private bytes (clamped on the way in; spec
 * 3.1). `*out` is only written on success; the caller wipes it and its own
 * copy of `priv`. Returns SOTTO_OK, SOTTO_ERR_INVALID_ARGUMENT (NULL) or
 * SOTTO_ERR_CRYPTO.
 */
SOTTO_API SOTTO_WUR int
sotto_key_pair_from_private(sotto_key_pair *out,
                            const uint8_t priv[SOTTO_STATIC_N(SOTTO_PRIVATE_KEY_BYTES)]);

/* Wipes a key pair (private and public parts, sodium_memzero). NULL is a
 * no-op. */
SOTTO_API void sotto_key_pair_wipe(sotto_key_pair *kp);

/*
 * Decodes a serialised public key from peer input (spec 3.1): exactly
 * SOTTO_PUBLIC_KEY_BYTES (33) bytes starting with 0x05. The point itself
 * is not checked (a low-order point is refused later, by sotto_dh).
 * Returns SOTTO_OK or SOTTO_ERR_INVALID_KEY (also for a NULL argument);
 * `*out` is only written on success.
 */
SOTTO_API SOTTO_WUR int sotto_public_key_decode(sotto_public_key *out, const uint8_t *data,
                                                size_t len);

/* Constant-time equality of two public keys (all 33 bytes): true when
 * equal; false when either is NULL. */
SOTTO_API bool sotto_public_key_equal(const sotto_public_key *a, const sotto_public_key *b);

/*
 * X25519 agreement (spec 2.1, 9): out (32 bytes, secret: the caller wipes
 * it) = DH(our_priv, their_pub). Returns SOTTO_OK,
 * SOTTO_ERR_INVALID_ARGUMENT (NULL), or SOTTO_ERR_INVALID_KEY when their_pub
 * does not start with 0x05 or is a low-order point (the result would be all
 * zeros; libsodium refuses it, libsignal-protocol-c would not). With
 * SOTTO_ERR_INVALID_KEY `out` is zeroed.
 */
SOTTO_API SOTTO_WUR int sotto_dh(uint8_t out[SOTTO_STATIC_N(SOTTO_SHARED_SECRET_BYTES)],
                                 const uint8_t our_priv[SOTTO_STATIC_N(SOTTO_PRIVATE_KEY_BYTES)],
                                 const sotto_public_key *their_pub);

/*
 * XEdDSA signature as Signal makes it (spec 3.3): signs `msg_len` bytes of
 * `msg` (may be NULL when msg_len is 0) with the 32-byte Montgomery private
 * key into the 64-byte `sig`; 64 random bytes from the RNG go into the
 * nonce. Returns SOTTO_OK, SOTTO_ERR_INVALID_ARGUMENT (NULL) or
 * SOTTO_ERR_CRYPTO; with SOTTO_ERR_CRYPTO `sig` is zeroed.
 */
SOTTO_API SOTTO_WUR int
sotto_xeddsa_sign(uint8_t sig[SOTTO_STATIC_N(SOTTO_SIGNATURE_BYTES)],
                  const uint8_t priv[SOTTO_STATIC_N(SOTTO_PRIVATE_KEY_BYTES)], const uint8_t *msg,
                  size_t msg_len);

/*
 * Verifies a 64-byte XEdDSA signature (spec 3.3) over `msg_len` bytes of
 * `msg` with a serialised public key: Montgomery u -> Edwards y, sign bit
 * from sig[63], reject sig[63] & 0xE0, then standard Ed25519 verification
 * (libsodium: canonical S, no small-order key). Returns SOTTO_OK or
 * SOTTO_ERR_INVALID_SIGNATURE (also for NULL arguments and a key whose
 * type byte is not 0x05).
 */
SOTTO_API SOTTO_WUR int
sotto_xeddsa_verify(const sotto_public_key *pub, const uint8_t *msg, size_t msg_len,
                    const uint8_t sig[SOTTO_STATIC_N(SOTTO_SIGNATURE_BYTES)]);

/*
 * Generates an identity key pair (an ordinary Curve25519 key pair, spec
 * 3.1). Long-lived and secret: keep it in a store (sotto/sqlite_store.h
 * keeps its cached copy in sodium_malloc() memory) and wipe other copies.
 * Returns SOTTO_OK, SOTTO_ERR_INVALID_ARGUMENT (NULL) or SOTTO_ERR_CRYPTO.
 */
SOTTO_API SOTTO_WUR int sotto_identity_key_pair_generate(sotto_key_pair *out);

/*
 * Generates a registration id in 1 .. 16380: (random % 16380) + 1, as
 * libsignal-protocol-c does (spec 3.1). Returns SOTTO_OK or
 * SOTTO_ERR_INVALID_ARGUMENT (NULL).
 */
SOTTO_API SOTTO_WUR int sotto_registration_id_generate(uint32_t *out);

/*
 * Generates `count` one-time prekeys into out[0..count-1] (the caller's
 * array of count * sizeof(sotto_prekey) bytes) with ids
 * ((start + i) % (0xFFFFFF - 1)) + 1, i.e. start + 1, start + 2, ...
 * wrapping within 1 .. 0xFFFFFE (spec 3.1). The caller owns `out`, stores
 * the keys (prekey store) and wipes the array.
 * Ids must only increase and never be reused: pass as `start` the id of the
 * last prekey ever generated (persist it), never a fixed value; the
 * provided stores refuse (SOTTO_ERR_STORE) a second key under a used id and
 * any key under a consumed id, so a reused `start` shows up as a store
 * error rather than as silently replaced prekeys. count must stay below
 * 0xFFFFFE (larger batches repeat ids).
 * Returns SOTTO_OK, SOTTO_ERR_INVALID_ARGUMENT (out NULL with count > 0) or
 * SOTTO_ERR_CRYPTO (then out[0..count-1] is zeroed).
 */
SOTTO_API SOTTO_WUR int sotto_prekeys_generate(sotto_prekey *out, uint32_t start, size_t count);

/*
 * Generates a signed prekey `id`, signed by `identity` over the 33-byte
 * serialised public key (spec 3.2), with creation time `timestamp_ms`.
 * `*out` holds a private key: store it, then wipe it. Returns SOTTO_OK,
 * SOTTO_ERR_INVALID_ARGUMENT (NULL) or SOTTO_ERR_CRYPTO; `*out` is only
 * written on success.
 */
SOTTO_API SOTTO_WUR int sotto_signed_prekey_generate(sotto_signed_prekey *out,
                                                     const sotto_key_pair *identity, uint32_t id,
                                                     uint64_t timestamp_ms);

/*
 * Checks a signed prekey's 64-byte signature made by `identity_pub` over
 * the 33-byte serialised `signed_prekey_pub` (spec 3.2, 3.3; used for peer
 * bundles and by the server on upload). Returns SOTTO_OK or
 * SOTTO_ERR_INVALID_SIGNATURE (also for NULL arguments).
 */
SOTTO_API SOTTO_WUR int
sotto_signed_prekey_verify(const sotto_public_key *identity_pub,
                           const sotto_public_key *signed_prekey_pub,
                           const uint8_t signature[SOTTO_STATIC_N(SOTTO_SIGNATURE_BYTES)]);

#ifdef __cplusplus
}
#endif
#endif /* SOTTO_KEYS_H */
