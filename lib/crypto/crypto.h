/*
 * lib/crypto/crypto.h -- thin internal wrappers over libsodium and OpenSSL
 * libcrypto used by the protocol code (internal header, not installed).
 *
 * Every function returns SOTTO_OK or a negative SOTTO_ERR_* code. Outputs
 * that hold secrets are wiped by the caller (sodium_memzero).
 */
#ifndef SOTTO_LIB_CRYPTO_H
#define SOTTO_LIB_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "sotto/common.h"
#include "sotto/error.h"

#define SOTTO_HMAC_SHA256_BYTES 32
#define SOTTO_AES256_KEY_BYTES 32
#define SOTTO_AES_BLOCK_BYTES 16
#define SOTTO_HKDF_MAX_OUTPUT (255 * 32)

/* HMAC-SHA256 (RFC 2104) of msg under key, any key length (one keyed
 * state, below, used once). key/msg may be NULL when their length is 0.
 * Returns SOTTO_OK, SOTTO_ERR_INVALID_ARGUMENT or SOTTO_ERR_CRYPTO. */
SOTTO_WUR int sotto_hmac_sha256(uint8_t out[SOTTO_HMAC_SHA256_BYTES], const uint8_t *key,
                                size_t key_len, const uint8_t *msg, size_t msg_len);

/*
 * A keyed HMAC-SHA256 state (RFC 2104): the key block K0 (the key, hashed
 * first if longer than 64 bytes, zero padded to 64), kept so the ratchet's
 * chain step keys once for two MACs and HKDF once for all its T(i).
 * SHA-256 is OpenSSL's (EVP, SHA-NI where the CPU has it) through one
 * reused digest context per thread: see docs/protocol.md "Primitives" for
 * why not libsodium's HMAC and why no precomputed ipad/opad state.
 *
 * The state holds key material: every initialised state must be passed to
 * sotto_hmac_key_wipe(), also on error paths. It is a plain value (no heap,
 * usable from any thread).
 */
typedef struct sotto_hmac_key {
    uint8_t k0[64];
} sotto_hmac_key;

/* Keys `k` with `key` (any length; over 64 bytes it is hashed first, as
 * RFC 2104 says). key may be NULL when key_len is 0. Returns SOTTO_OK,
 * SOTTO_ERR_INVALID_ARGUMENT or SOTTO_ERR_CRYPTO (on failure `k` is left
 * wiped when not NULL). */
SOTTO_WUR int sotto_hmac_key_init(sotto_hmac_key *k, const uint8_t *key, size_t key_len);

/*
 * out = HMAC(key, parts[0] || ... || parts[n-1]) (32 bytes). `k` is not
 * changed, so it can serve further MACs. parts[i] may be NULL when
 * lens[i] is 0; `out` may alias any part. Returns SOTTO_OK,
 * SOTTO_ERR_INVALID_ARGUMENT or SOTTO_ERR_CRYPTO (then `out` is zeroed).
 * No allocation by libsotto; OpenSSL 3.0 itself allocates and frees one
 * 112-byte SHA-256 context per digest (two per MAC), see docs/protocol.md.
 * The last digest state stays in the calling thread's OpenSSL context until
 * the next digest or sotto_hmac_key_wipe() (which clears it).
 */
SOTTO_WUR int sotto_hmac_key_mac(const sotto_hmac_key *k, const uint8_t *const *parts,
                                 const size_t *lens, size_t n,
                                 uint8_t out[SOTTO_HMAC_SHA256_BYTES]);

/* Wipes the key material in `k` (safe on a wiped or zeroed state) and
 * clears the digest state the last MAC left in this thread's context. */
void sotto_hmac_key_wipe(sotto_hmac_key *k);

/*
 * out = SHA-256(p[0..n)) on OpenSSL's SHA-256 through the calling thread's
 * reused digest context (the one the HMAC uses): about 4x faster than
 * libsodium's portable SHA-256 on a CPU with SHA-NI. For public data (the
 * key-transparency trees); the last digest state stays in the thread's
 * context until the next digest. p may be NULL when n is 0. Returns
 * SOTTO_OK, SOTTO_ERR_INVALID_ARGUMENT or SOTTO_ERR_CRYPTO.
 */
SOTTO_WUR int sotto_sha256(uint8_t out[32], const uint8_t *p, size_t n);

/*
 * HKDF-SHA256 (RFC 5869; Signal message version 3 counts T(i) from 0x01),
 * built on the keyed HMAC above. salt may be NULL/0 (then 32 zero bytes).
 * out_len 1 .. SOTTO_HKDF_MAX_OUTPUT, else SOTTO_ERR_INVALID_ARGUMENT.
 * ikm/info may be NULL when their length is 0. `out` may not overlap the
 * inputs.
 */
SOTTO_WUR int sotto_hkdf_sha256(uint8_t *out, size_t out_len, const uint8_t *salt, size_t salt_len,
                                const uint8_t *ikm, size_t ikm_len, const uint8_t *info,
                                size_t info_len);

/*
 * AES-256-CBC with PKCS#7 padding (OpenSSL EVP). Output length: encrypt
 * gives pt_len rounded up to the next multiple of 16 (always adds padding);
 * `out` must hold pt_len + 16 bytes. Decrypt needs ct_len a non-zero multiple
 * of 16 and valid padding, else SOTTO_ERR_INVALID_MESSAGE; `out` must hold
 * ct_len bytes. *out_len receives the bytes written. On failure *out_len
 * is 0 (when out_len is not NULL) and no partial output is left in `out`.
 * Each thread reuses one OpenSSL context: no allocation after a thread's
 * first call.
 */
SOTTO_WUR int sotto_aes256_cbc_encrypt(uint8_t *out, size_t *out_len,
                                       const uint8_t key[SOTTO_AES256_KEY_BYTES],
                                       const uint8_t iv[SOTTO_AES_BLOCK_BYTES], const uint8_t *pt,
                                       size_t pt_len);
SOTTO_WUR int sotto_aes256_cbc_decrypt(uint8_t *out, size_t *out_len,
                                       const uint8_t key[SOTTO_AES256_KEY_BYTES],
                                       const uint8_t iv[SOTTO_AES_BLOCK_BYTES], const uint8_t *ct,
                                       size_t ct_len);

/*
 * Random bytes: libsodium's randombytes_buf, unless a test or fuzz build
 * installed a deterministic source with sotto_test_set_random().
 */
void sotto_random_buf(void *p, size_t n);
uint32_t sotto_random_u32(void);

/*
 * One-time process setup of this module (fetches OpenSSL's AES-256-CBC and
 * SHA-256 implementations). Called by sotto_init(); the AES and HMAC
 * functions also call it lazily. Thread-safe. Returns SOTTO_OK or
 * SOTTO_ERR_CRYPTO.
 */
SOTTO_WUR int sotto_crypto_global_init(void);

typedef void (*sotto_random_fn)(void *ctx, void *p, size_t n);
/* Test hook: replace the RNG (NULL restores libsodium). Not thread-safe.
 * Internal (hidden): not exported from libsotto.so, so no application can
 * make the library's keys predictable; tests and fuzz targets link
 * sotto_static, where it is visible (review R1). */
void sotto_test_set_random(sotto_random_fn fn, void *ctx);

#endif /* SOTTO_LIB_CRYPTO_H */
