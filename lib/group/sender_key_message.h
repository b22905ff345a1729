/*
 * lib/group/sender_key_message.h -- SenderKeyMessage wire format (spec 1.5),
 * internal header. The SKDM codec is public (sotto/group.h).
 *
 *   0x33 || protobuf { 1: id uint32, 2: iteration uint32, 3: ciphertext bytes }
 *        || signature[64] (XEdDSA over everything before it)
 */
#ifndef SOTTO_LIB_SENDER_KEY_MESSAGE_H
#define SOTTO_LIB_SENDER_KEY_MESSAGE_H

#include <stddef.h>
#include <stdint.h>

#include "sotto/keys.h"

/* Version byte written: (3 << 4) | 3. */
#define SOTTO_SK_VERSION_BYTE 0x33

/* A parsed SKM; pointers point into the caller's message bytes. */
typedef struct sotto_skm {
    uint32_t key_id;
    uint32_t iteration;
    const uint8_t *ciphertext;
    size_t ciphertext_len;
    const uint8_t *signed_part; /* version byte || protobuf */
    size_t signed_len;
    const uint8_t *signature; /* SOTTO_SIGNATURE_BYTES */
} sotto_skm;

/* Checks the version byte's high nibble (spec 1.1): SOTTO_OK for 3,
 * SOTTO_ERR_LEGACY_MESSAGE below, SOTTO_ERR_UNSUPPORTED_VERSION above. */
SOTTO_WUR int sotto_sk_check_version(uint8_t b);

/*
 * Parses an SKM: length > 1 + 64 and at most SOTTO_MAX_MESSAGE_BYTES, version
 * 3, id, iteration and ciphertext present (unknown fields skipped, a repeated
 * field's last value wins as in protobuf). Does not verify the signature.
 * SOTTO_OK, SOTTO_ERR_INVALID_MESSAGE, SOTTO_ERR_LEGACY_MESSAGE or
 * SOTTO_ERR_UNSUPPORTED_VERSION.
 */
SOTTO_WUR int sotto_skm_decode(sotto_skm *out, const uint8_t *data, size_t len);

/*
 * Writes an SKM signed with `signing_priv` into a malloc()ed buffer.
 * SOTTO_OK, SOTTO_ERR_NOMEM, SOTTO_ERR_CRYPTO or SOTTO_ERR_INVALID_ARGUMENT
 * (too long).
 */
SOTTO_WUR int sotto_skm_encode(uint32_t key_id, uint32_t iteration, const uint8_t *ciphertext,
                               size_t ciphertext_len,
                               const uint8_t signing_priv[SOTTO_PRIVATE_KEY_BYTES], uint8_t **out,
                               size_t *out_len);

#endif /* SOTTO_LIB_SENDER_KEY_MESSAGE_H */
