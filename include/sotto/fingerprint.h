/*
 * sotto/fingerprint.h -- the numeric fingerprint ("safety number") two
 * users compare to check each other's identity keys, and its scannable
 * (QR code) form.
 *
 * Spec: shared/specs/signal-protocol.md section 4, compatible with
 * libsignal-protocol-c's fingerprint.c:
 *   per party: hash = SHA-512 iterated `iterations` times over
 *     0x00 0x00 || key_bytes || stable_id, then (digest || key_bytes),
 *   where key_bytes is the concatenation of the party's 33-byte identity
 *   keys sorted in ascending byte order;
 *   display: 30 digits per party (six 40-bit big-endian chunks % 100000),
 *     the two 30-digit strings concatenated, the smaller (strcmp) first;
 *   scannable: protobuf CombinedFingerprints { version = 1, local = 2,
 *     remote = 3 }, each LogicalFingerprint { content = 1, identifier = 2 };
 *     v0 carries key_bytes and the identifier, v1 the first 32 bytes of the
 *     hash and no identifier.
 *
 * A fingerprint is an opaque object: create it with
 * sotto_fingerprint_create(), free it with sotto_fingerprint_free().
 * Nothing in it is secret.
 */
#ifndef SOTTO_FINGERPRINT_H
#define SOTTO_FINGERPRINT_H

#include <stdbool.h>

#include "sotto/common.h"
#include "sotto/error.h"
#include "sotto/keys.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SOTTO_FP_DEFAULT_ITERATIONS 5200u /* what Signal apps use */
#define SOTTO_FP_MAX_ITERATIONS 1000000u
#define SOTTO_FP_DISPLAY_DIGITS 60 /* 30 per party */
#define SOTTO_FP_SCANNABLE_V0 0u   /* keys and identifiers in the clear */
#define SOTTO_FP_SCANNABLE_V1 1u   /* 32 bytes of each party's hash */
#define SOTTO_FP_MAX_KEYS 64       /* identity keys per party */
#define SOTTO_FP_MAX_ID_BYTES 1024 /* stable identifier length */
/* Largest scannable encoding accepted by sotto_fingerprint_compare_scanned. */
#define SOTTO_FP_SCANNABLE_MAX                                                                     \
    (2 * (16 + SOTTO_FP_MAX_KEYS * SOTTO_PUBLIC_KEY_BYTES + SOTTO_FP_MAX_ID_BYTES) + 16)

typedef struct sotto_fingerprint sotto_fingerprint;

/*
 * Computes the fingerprint of a conversation between the local party
 * (local_id, its identity keys) and the remote party.
 *   iterations: 1 .. SOTTO_FP_MAX_ITERATIONS (SOTTO_FP_DEFAULT_ITERATIONS
 *     for compatibility with Signal apps);
 *   scannable_version: SOTTO_FP_SCANNABLE_V0 or SOTTO_FP_SCANNABLE_V1;
 *   *_id: NUL-terminated UTF-8 stable identifier (e.g. an E.164 number),
 *     at most SOTTO_FP_MAX_ID_BYTES bytes;
 *   *_keys / *_n: 1 .. SOTTO_FP_MAX_KEYS identity keys (any order; they are
 *     sorted internally), each with type byte 0x05.
 * On success *out owns a new object (free with sotto_fingerprint_free());
 * on failure *out is NULL (when out is not NULL).
 * Returns SOTTO_OK, SOTTO_ERR_INVALID_ARGUMENT, SOTTO_ERR_INVALID_KEY (a
 * key with a wrong type byte) or SOTTO_ERR_NOMEM.
 */
SOTTO_API SOTTO_WUR int sotto_fingerprint_create(sotto_fingerprint **out, uint32_t iterations,
                                                 uint32_t scannable_version, const char *local_id,
                                                 const sotto_public_key *local_keys, size_t local_n,
                                                 const char *remote_id,
                                                 const sotto_public_key *remote_keys,
                                                 size_t remote_n);

/* Frees a fingerprint (NULL is fine). */
SOTTO_API void sotto_fingerprint_free(sotto_fingerprint *fp);

/*
 * The displayable safety number: SOTTO_FP_DISPLAY_DIGITS decimal digits,
 * NUL-terminated, owned by fp (valid until sotto_fingerprint_free()).
 * Both parties get the same string (spec 4). NULL fp gives "".
 */
SOTTO_API const char *sotto_fingerprint_display(const sotto_fingerprint *fp);

/*
 * The serialised scannable fingerprint (for a QR code), from the local
 * party's point of view. *data points into fp (valid until
 * sotto_fingerprint_free()), *len receives its length in bytes.
 * Returns SOTTO_OK or SOTTO_ERR_INVALID_ARGUMENT.
 */
SOTTO_API SOTTO_WUR int sotto_fingerprint_scannable(const sotto_fingerprint *fp,
                                                    const uint8_t **data, size_t *len);

/*
 * Compares the peer's scanned fingerprint (their serialised scannable
 * form, untrusted input of `len` bytes) with ours: their local must be our
 * remote and their remote our local.
 * Returns SOTTO_OK with *match set (true: same keys; false: the keys
 * differ), or:
 *   SOTTO_ERR_FP_VERSION_MISMATCH  their version differs from ours, or a
 *                                  local/remote part is missing;
 *   SOTTO_ERR_FP_IDENT_MISMATCH    (v0) the identifiers are not ours;
 *   SOTTO_ERR_INVALID_MESSAGE      not a CombinedFingerprints encoding
 *                                  (or longer than SOTTO_FP_SCANNABLE_MAX);
 *   SOTTO_ERR_INVALID_ARGUMENT     NULL arguments.
 * *match is false whenever the result is not SOTTO_OK.
 */
SOTTO_API SOTTO_WUR int sotto_fingerprint_compare_scanned(const sotto_fingerprint *fp,
                                                          const uint8_t *scanned, size_t len,
                                                          bool *match);

#ifdef __cplusplus
}
#endif
#endif /* SOTTO_FINGERPRINT_H */
