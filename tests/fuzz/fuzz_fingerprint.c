/*
 * Fuzz target: the scannable-fingerprint parser
 * (sotto_fingerprint_compare_scanned) on arbitrary bytes, against fixed v0
 * and v1 fingerprints of the spec section 4 identities.
 * Invariants: only the documented results; *match is true only with
 * SOTTO_OK; nothing crashes or leaks.
 */
#include <stdint.h>
#include <stdlib.h>

#include "sotto/fingerprint.h"
#include "sotto/keys.h"

static const uint8_t alice[33] = {
    0x05, 0x06, 0x86, 0x3b, 0xc6, 0x6d, 0x02, 0xb4, 0x0d, 0x27, 0xb8,
    0xd4, 0x9c, 0xa7, 0xc0, 0x9e, 0x92, 0x39, 0x23, 0x6f, 0x9d, 0x7d,
    0x25, 0xd6, 0xfc, 0xca, 0x5c, 0xe1, 0x3c, 0x70, 0x64, 0xd8, 0x68,
};
static const uint8_t bob[33] = {
    0x05, 0xf7, 0x81, 0xb6, 0xfb, 0x32, 0xfe, 0xd9, 0xba, 0x1c, 0xf2,
    0xde, 0x97, 0x8d, 0x4d, 0x5d, 0xa2, 0x8d, 0xc3, 0x40, 0x46, 0xae,
    0x81, 0x44, 0x02, 0xb5, 0xc0, 0xdb, 0xd9, 0x6f, 0xda, 0x90, 0x7b,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static sotto_fingerprint *fp[2];
    bool match;
    int i;

    if (fp[0] == NULL) {
        sotto_public_key a, b;
        if (sotto_init() != SOTTO_OK || sotto_public_key_decode(&a, alice, 33) != SOTTO_OK ||
            sotto_public_key_decode(&b, bob, 33) != SOTTO_OK)
            abort();
        for (i = 0; i < 2; i++) {
            /* Alice's view; the corpus holds Bob's encodings. */
            if (sotto_fingerprint_create(&fp[i], 64, (uint32_t)i, "+14152222222", &a, 1,
                                         "+14153333333", &b, 1) != SOTTO_OK)
                abort();
        }
    }
    for (i = 0; i < 2; i++) {
        int rc = sotto_fingerprint_compare_scanned(fp[i], data, size, &match);
        switch (rc) {
        case SOTTO_OK:
            break;
        case SOTTO_ERR_INVALID_MESSAGE:
        case SOTTO_ERR_FP_VERSION_MISMATCH:
        case SOTTO_ERR_FP_IDENT_MISMATCH:
            if (match)
                abort();
            break;
        default:
            abort();
        }
    }
    return 0;
}
