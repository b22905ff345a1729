/*
 * lib/sealed/sealed_internal.h -- internal entry point of the sealed
 * sender code (not installed; hidden in libsotto.so, visible to tests and
 * fuzz targets through sotto_static).
 */
#ifndef SOTTO_LIB_SEALED_INTERNAL_H
#define SOTTO_LIB_SEALED_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "sotto/sealed.h"

/*
 * The two encryption layers of sotto_sealed_encrypt() around arbitrary
 * `usmc` bytes (an UnidentifiedSenderMessage.Message, not checked): the
 * fuzz target seals mutated inner messages with it so that they get past
 * both MACs. `sender_identity` proves its key in the static-static layer.
 * *out (heap, *out_len bytes) belongs to the caller. Returns SOTTO_OK,
 * SOTTO_ERR_INVALID_ARGUMENT, SOTTO_ERR_INVALID_KEY, SOTTO_ERR_NOMEM or
 * SOTTO_ERR_CRYPTO; *out is NULL on failure.
 */
SOTTO_WUR int sotto_sealed_encrypt_usmc(uint8_t **out, size_t *out_len,
                                        const sotto_key_pair *sender_identity,
                                        const sotto_public_key *recipient_identity,
                                        const uint8_t *usmc, size_t usmc_len);

#endif /* SOTTO_LIB_SEALED_INTERNAL_H */
