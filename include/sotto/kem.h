/*
 * sotto/kem.h -- key encapsulation: ML-KEM-768 and ML-KEM-1024 (FIPS 203)
 * and round-3 Kyber-1024 (the KEM libsignal's PQXDH uses, key type 0x08).
 *
 * Spec: FIPS 203 (August 2024), Algorithms 13-21 and section 7 (input
 * checks); for Kyber-1024 the CRYSTALS-Kyber round-3 specification
 * (v3.02, Algorithms 7-9). docs/protocol.md "ML-KEM" lists the
 * differences between the two. SHA3-256, SHA3-512, SHAKE-128 and
 * SHAKE-256 come from OpenSSL's libcrypto; the lattice code is ours.
 *
 * Formats are those of the specifications, with no type byte:
 *   encapsulation (public) key ek = ByteEncode12(t^) || rho
 *   decapsulation (secret) key dk = ByteEncode12(s^) || ek || H(ek) || z
 *   ciphertext c = ByteEncode_du(Compress_du(u)) || ByteEncode_dv(Compress_dv(v))
 *   shared secret: 32 bytes.
 * The same byte layouts serve Kyber-1024 (its secret key is the
 * round-3 "sk" with the same fields in the same order).
 *
 * Input checks (FIPS 203 section 7.2 and 7.3), applied to every algorithm:
 * an encapsulation key must have the exact length and every 12-bit
 * coefficient below q = 3329 (modulus check); a decapsulation key must
 * have the exact length and carry H(ek) of its embedded ek (hash check);
 * a ciphertext must have the exact length. Decapsulation of a well-formed
 * but wrong ciphertext is not an error: it returns the implicit-rejection
 * secret (FIPS 203: J(z || c); round 3: KDF(z || H(c))).
 *
 * Constant time: no branch and no memory index depends on a secret
 * (seeds, s, e, r, m, the decrypted message, the re-encryption
 * comparison). Secrets held on the stack are wiped with sodium_memzero
 * before returning. Call sotto_init() (sotto/keys.h) first.
 */
#ifndef SOTTO_KEM_H
#define SOTTO_KEM_H

#include <stddef.h>
#include <stdint.h>

#include "sotto/common.h"
#include "sotto/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The algorithms. The values are libsotto's own, not libsignal type bytes. */
typedef enum sotto_kem_alg {
    SOTTO_KEM_MLKEM768 = 1,  /* FIPS 203 ML-KEM-768 (k = 3) */
    SOTTO_KEM_MLKEM1024 = 2, /* FIPS 203 ML-KEM-1024 (k = 4) */
    SOTTO_KEM_KYBER1024 = 3, /* CRYSTALS-Kyber round 3, Kyber-1024 */
} sotto_kem_alg;

#define SOTTO_KEM_SEED_BYTES 64   /* key generation seed d || z */
#define SOTTO_KEM_MSG_BYTES 32    /* encapsulation randomness m */
#define SOTTO_KEM_SHARED_BYTES 32 /* shared secret K */

#define SOTTO_MLKEM768_PUBLIC_KEY_BYTES 1184
#define SOTTO_MLKEM768_SECRET_KEY_BYTES 2400
#define SOTTO_MLKEM768_CIPHERTEXT_BYTES 1088
#define SOTTO_MLKEM1024_PUBLIC_KEY_BYTES 1568 /* also Kyber-1024 */
#define SOTTO_MLKEM1024_SECRET_KEY_BYTES 3168 /* also Kyber-1024 */
#define SOTTO_MLKEM1024_CIPHERTEXT_BYTES 1568 /* also Kyber-1024 */
/* Largest sizes over all algorithms, for stack buffers. */
#define SOTTO_KEM_MAX_PUBLIC_KEY_BYTES 1568
#define SOTTO_KEM_MAX_SECRET_KEY_BYTES 3168
#define SOTTO_KEM_MAX_CIPHERTEXT_BYTES 1568

/*
 * Sizes in bytes of alg's encapsulation key, decapsulation key and
 * ciphertext; 0 for an unknown alg.
 */
SOTTO_API size_t sotto_kem_public_key_bytes(sotto_kem_alg alg);
SOTTO_API size_t sotto_kem_secret_key_bytes(sotto_kem_alg alg);
SOTTO_API size_t sotto_kem_ciphertext_bytes(sotto_kem_alg alg);

/*
 * Deterministic key generation (FIPS 203 ML-KEM.KeyGen_internal(d, z);
 * round 3: CCAKEM.KeyGen with CPAPKE seed d and rejection value z) from
 * seed = d (32) || z (32). Writes the encapsulation key to ek
 * (ek_cap >= sotto_kem_public_key_bytes(alg)) and the decapsulation key to
 * dk (dk_cap >= sotto_kem_secret_key_bytes(alg)). dk and seed are secret.
 * Returns SOTTO_OK, SOTTO_ERR_INVALID_ARGUMENT (NULL, unknown alg),
 * SOTTO_ERR_BUFFER_TOO_SMALL or SOTTO_ERR_CRYPTO (OpenSSL failure; the
 * outputs are then zeroed).
 */
SOTTO_API SOTTO_WUR int sotto_kem_keygen_from_seed(sotto_kem_alg alg, uint8_t *ek, size_t ek_cap,
                                                   uint8_t *dk, size_t dk_cap,
                                                   const uint8_t seed[SOTTO_KEM_SEED_BYTES]);

/* As sotto_kem_keygen_from_seed with a fresh random seed (libsotto's RNG). */
SOTTO_API SOTTO_WUR int sotto_kem_keygen(sotto_kem_alg alg, uint8_t *ek, size_t ek_cap, uint8_t *dk,
                                         size_t dk_cap);

/*
 * Checks an encapsulation key: exact length and the modulus check (every
 * coefficient of ByteDecode12 below q). Returns SOTTO_OK,
 * SOTTO_ERR_INVALID_ARGUMENT (NULL, unknown alg) or SOTTO_ERR_INVALID_KEY.
 */
SOTTO_API SOTTO_WUR int sotto_kem_check_public_key(sotto_kem_alg alg, const uint8_t *ek,
                                                   size_t ek_len);

/*
 * Checks a decapsulation key: exact length and the hash check (the stored
 * H(ek) equals SHA3-256 of the embedded ek), and the modulus check of the
 * embedded ek. Returns SOTTO_OK, SOTTO_ERR_INVALID_ARGUMENT or
 * SOTTO_ERR_INVALID_KEY.
 */
SOTTO_API SOTTO_WUR int sotto_kem_check_secret_key(sotto_kem_alg alg, const uint8_t *dk,
                                                   size_t dk_len);

/*
 * Deterministic encapsulation (FIPS 203 ML-KEM.Encaps_internal(ek, m);
 * round 3: CCAKEM.Enc with its 32 random bytes = m) after the public-key
 * checks above. Writes the ciphertext to ct (ct_cap >=
 * sotto_kem_ciphertext_bytes(alg)) and the shared secret to ss. m and ss
 * are secret. Returns SOTTO_OK, SOTTO_ERR_INVALID_ARGUMENT,
 * SOTTO_ERR_INVALID_KEY (ek of the wrong length or not reduced mod q),
 * SOTTO_ERR_BUFFER_TOO_SMALL or SOTTO_ERR_CRYPTO; on error ct and ss are
 * zeroed (as far as the buffer sizes allow).
 */
SOTTO_API SOTTO_WUR int sotto_kem_encaps_deterministic(sotto_kem_alg alg, uint8_t *ct,
                                                       size_t ct_cap,
                                                       uint8_t ss[SOTTO_KEM_SHARED_BYTES],
                                                       const uint8_t *ek, size_t ek_len,
                                                       const uint8_t m[SOTTO_KEM_MSG_BYTES]);

/* As sotto_kem_encaps_deterministic with a fresh random m (libsotto's RNG). */
SOTTO_API SOTTO_WUR int sotto_kem_encaps(sotto_kem_alg alg, uint8_t *ct, size_t ct_cap,
                                         uint8_t ss[SOTTO_KEM_SHARED_BYTES], const uint8_t *ek,
                                         size_t ek_len);

/*
 * Decapsulation with implicit rejection (FIPS 203 ML-KEM.Decaps; round 3:
 * CCAKEM.Dec) after the checks: ct_len must be exactly
 * sotto_kem_ciphertext_bytes(alg) and dk must pass
 * sotto_kem_check_secret_key. A ciphertext that does not re-encrypt to
 * itself yields the rejection secret, not an error (the caller's later
 * MAC check fails). Returns SOTTO_OK, SOTTO_ERR_INVALID_ARGUMENT,
 * SOTTO_ERR_INVALID_MESSAGE (ciphertext length), SOTTO_ERR_INVALID_KEY
 * (dk length or hash check) or SOTTO_ERR_CRYPTO; on error ss is zeroed.
 */
SOTTO_API SOTTO_WUR int sotto_kem_decaps(sotto_kem_alg alg, uint8_t ss[SOTTO_KEM_SHARED_BYTES],
                                         const uint8_t *ct, size_t ct_len, const uint8_t *dk,
                                         size_t dk_len);

#ifdef __cplusplus
}
#endif
#endif /* SOTTO_KEM_H */
