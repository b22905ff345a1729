/*
 * lib/keys/xeddsa.h -- internal pieces of the signature code (not
 * installed). The public functions are in sotto/keys.h.
 */
#ifndef SOTTO_LIB_XEDDSA_H
#define SOTTO_LIB_XEDDSA_H

#include <stddef.h>
#include <stdint.h>

#include "sotto/common.h"
#include "sotto/error.h"

/*
 * Plain Ed25519 verification (libsodium crypto_sign_verify_detached) of a
 * 64-byte signature under a 32-byte Edwards public key. It is the last step
 * of sotto_xeddsa_verify(); exposed for tests of vectors that cannot be
 * expressed as Montgomery keys. Returns SOTTO_OK or
 * SOTTO_ERR_INVALID_SIGNATURE.
 */
SOTTO_WUR int sotto_ed25519_verify_internal(const uint8_t ed_pub[32], const uint8_t *msg,
                                            size_t msg_len, const uint8_t sig[64]);

/*
 * XEdDSA verification (spec 3.3) under a signer whose Edwards y has been
 * computed beforehand (sotto_fe_mont_u_to_ed_y() of the Montgomery u, sign
 * bit clear), e.g. cached in a sender-key record: sotto_xeddsa_verify()
 * without the field conversion. The sign bit is taken from bit 7 of
 * sig[63]; the top bits of S must be clear (libsignal-protocol-c's check);
 * then plain Ed25519 verification. msg may be NULL when msg_len is 0.
 * Returns SOTTO_OK or SOTTO_ERR_INVALID_SIGNATURE.
 */
SOTTO_WUR int sotto_xeddsa_verify_ed(const uint8_t ed_y[32], const uint8_t *msg, size_t msg_len,
                                     const uint8_t sig[64]);

#endif /* SOTTO_LIB_XEDDSA_H */
