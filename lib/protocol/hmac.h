/*
 * lib/protocol/hmac.h -- HMAC-SHA256 with a reusable keyed state, and
 * HKDF-SHA256 (RFC 2104, RFC 5869; Signal v3 counts T(i) from 0x01) for the
 * ratchet's hot path (internal header).
 *
 * Why not crypto/crypto.h's one-shot HMAC: every message runs ~25 SHA-256
 * compressions (chain step, message-key HKDF, MAC). libsodium 1.0.18's
 * portable SHA-256 costs ~1.5 us per HMAC here; OpenSSL's (SHA-NI/AVX2)
 * ~0.2 us. A keyed state is computed once (ipad/opad blocks) and copied per
 * MAC, so a chain step costs 6 compressions instead of 8. No allocation.
 * Candidate to move into lib/crypto.
 *
 * Every state holds key material: wipe with sotto_hmac_key_wipe().
 */
#ifndef SOTTO_LIB_PROTOCOL_HMAC_H
#define SOTTO_LIB_PROTOCOL_HMAC_H

#include <stddef.h>
#include <stdint.h>

#include "sotto/common.h"

#define SOTTO_HMAC_BYTES 32

/* Opaque keyed HMAC-SHA256 state (two SHA-256 contexts). */
typedef struct sotto_hmac_key {
    _Alignas(16) uint8_t st[2][128];
} sotto_hmac_key;

/* Keys the state with `key` (any length; > 64 bytes is hashed first). */
void sotto_hmac_key_init(sotto_hmac_key *k, const uint8_t *key, size_t key_len);

/*
 * out = HMAC(key, parts[0] || ... || parts[n-1]); `k` is not modified,
 * so it can be reused for further messages.
 */
void sotto_hmac_key_mac(const sotto_hmac_key *k, const uint8_t *const *parts,
                        const size_t *lens, size_t n, uint8_t out[SOTTO_HMAC_BYTES]);

void sotto_hmac_key_wipe(sotto_hmac_key *k);

/*
 * HKDF-SHA256: salt NULL/0 means 32 zero bytes. out_len 1 .. 255*32.
 * Returns SOTTO_OK or SOTTO_ERR_INVALID_ARGUMENT.
 */
SOTTO_WUR int sotto_ratchet_hkdf(uint8_t *out, size_t out_len,
                                 const uint8_t *salt, size_t salt_len,
                                 const uint8_t *ikm, size_t ikm_len,
                                 const uint8_t *info, size_t info_len);

#endif /* SOTTO_LIB_PROTOCOL_HMAC_H */
