/*
 * Fuzz target: ECVRF verification (sotto/vrf.h, RFC 9381) on arbitrary
 * keys, proofs and inputs.
 * Input (zero-padded when short): mode (1) || mutations (6: three pairs
 * position, xor) || PK (32) || pi (80) || alpha (rest).
 *  - mode even: verify the fuzzed PK, pi and alpha as they are;
 *  - mode odd: the harness's own key proves the fuzzed alpha, then the
 *    three mutations are applied to pi (or, with mode & 2, the first one to
 *    the harness's PK), so verification runs past the point decoding on
 *    nearly valid proofs.
 * Invariants checked (abort on violation):
 *  - verification never crashes and returns SOTTO_OK,
 *    SOTTO_ERR_INVALID_KEY (exactly when sotto_vrf_validate_key refuses
 *    the key) or SOTTO_ERR_INVALID_SIGNATURE, with beta zeroed on error;
 *  - validate_key (a list of the 8 small-order encodings) agrees with the
 *    RFC's test: the key decodes and 8 * key is not the identity;
 *  - an accepted proof's beta equals sotto_vrf_proof_to_hash(pi);
 *  - the harness's unmodified proof verifies, with the beta of
 *    proof_to_hash; any changed byte of it (or of its key) is refused.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "kt/vrf_internal.h"
#include "sotto/vrf.h"

#define HDR 7
#define OFF_PK HDR
#define OFF_PI (HDR + 32)
#define OFF_ALPHA (HDR + 32 + 80)

/* The harness's key: a fixed seed (also used to make the seed corpus). */
static const uint8_t HARNESS_SEED[32] = "sotto fuzz_vrf harness key seed";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_verify(const uint8_t pk[32], const uint8_t *alpha, size_t alpha_len,
                         const uint8_t pi[80], int *rc_out, uint8_t beta[64])
{
    static const uint8_t identity[32] = {1};
    uint8_t beta2[64], pk8[32];
    int rc = sotto_vrf_verify(beta, pk, alpha, alpha_len, pi);
    int key_ok = sotto_vrf_string_to_point(pk) == SOTTO_OK;

    if (key_ok) {
        if (sotto_vrf_mul_cofactor(pk8, pk) != SOTTO_OK)
            abort();
        key_ok = memcmp(pk8, identity, 32) != 0;
    }
    if ((sotto_vrf_validate_key(pk) == SOTTO_OK) != key_ok)
        abort();

    if (rc == SOTTO_OK) {
        if (sotto_vrf_proof_to_hash(beta2, pi) != SOTTO_OK || memcmp(beta, beta2, 64) != 0)
            abort();
        if (sotto_vrf_validate_key(pk) != SOTTO_OK)
            abort();
    } else if (rc == SOTTO_ERR_INVALID_KEY) {
        if (sotto_vrf_validate_key(pk) != SOTTO_ERR_INVALID_KEY)
            abort();
    } else if (rc == SOTTO_ERR_INVALID_SIGNATURE) {
        if (sotto_vrf_validate_key(pk) != SOTTO_OK)
            abort();
    } else {
        abort();
    }
    if (rc != SOTTO_OK && !sodium_is_zero(beta, 64))
        abort();
    *rc_out = rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int inited;
    static sotto_vrf_key_pair kp;
    uint8_t head[OFF_ALPHA];
    const uint8_t *alpha = size > OFF_ALPHA ? data + OFF_ALPHA : NULL;
    size_t alpha_len = size > OFF_ALPHA ? size - OFF_ALPHA : 0;
    uint8_t beta[64];
    int rc;

    if (!inited) {
        if (sodium_init() < 0 || sotto_vrf_key_pair_from_seed(&kp, HARNESS_SEED) != SOTTO_OK)
            abort();
        inited = 1;
    }
    memset(head, 0, sizeof head);
    memcpy(head, data, size < sizeof head ? size : sizeof head);

    if ((head[0] & 1) == 0) {
        check_verify(head + OFF_PK, alpha, alpha_len, head + OFF_PI, &rc, beta);
        return 0;
    }

    {
        uint8_t pi[80], orig[80], pk[32], expect[64];
        int changed = 0;

        if (sotto_vrf_prove(orig, &kp, alpha, alpha_len) != SOTTO_OK)
            abort();
        if (sotto_vrf_proof_to_hash(expect, orig) != SOTTO_OK)
            abort();
        memcpy(pi, orig, 80);
        memcpy(pk, kp.pk, 32);
        for (int m = 0; m < 3; m++) {
            uint8_t pos = head[1 + 2 * m];
            uint8_t x = head[2 + 2 * m];
            if (m == 0 && (head[0] & 2))
                pk[pos % 32] ^= x;
            else
                pi[pos % 80] ^= x;
        }
        changed = memcmp(pi, orig, 80) != 0 || memcmp(pk, kp.pk, 32) != 0;
        check_verify(pk, alpha, alpha_len, pi, &rc, beta);
        if (!changed && (rc != SOTTO_OK || memcmp(beta, expect, 64) != 0))
            abort();
        if (changed && rc == SOTTO_OK)
            abort();
    }
    return 0;
}
