/*
 * Constant-time check of ML-KEM-768/1024 and Kyber-1024 (sotto/kem.h)
 * with valgrind memcheck: the secret inputs (the key generation seed d||z,
 * the encapsulation randomness m, the secret parts s and z of the
 * decapsulation key) are marked undefined, so memcheck reports every
 * branch and every memory index that depends on them ("Conditional jump
 * or move depends on uninitialised value(s)", "Use of uninitialised value
 * of size 8"). Public results (ek, the ciphertext) are declassified before
 * use; the library declassifies rho itself.
 *
 * ctest runs it twice under valgrind --error-exitcode (tests/unit/
 * CMakeLists.txt): `test_mlkem_ct_valgrind` must pass, and
 * `test_mlkem_ct_valgrind_control` runs it with --leak, which adds one
 * deliberate branch on a secret byte, and must fail (WILL_FAIL): proof
 * that the harness does detect a leak. Without valgrind (the plain
 * `test_mlkem_ct` ctest) the client requests are no-ops and it only checks
 * that the round trips agree.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define HAVE_MEMCHECK 1
#endif
#endif
#ifndef HAVE_MEMCHECK /* no valgrind headers: a plain round-trip test */
#define VALGRIND_MAKE_MEM_UNDEFINED(p, n) 0
#define VALGRIND_MAKE_MEM_DEFINED(p, n) 0
#define RUNNING_ON_VALGRIND 0
#endif

#include "sotto/kem.h"
#include "sotto/keys.h"

#define SECRET(p, n) ((void)VALGRIND_MAKE_MEM_UNDEFINED((p), (n)))
#define PUBLIC(p, n) ((void)VALGRIND_MAKE_MEM_DEFINED((p), (n)))

static volatile int g_sink;

static int run(sotto_kem_alg alg, int leak, int round)
{
    uint8_t seed[SOTTO_KEM_SEED_BYTES], m[SOTTO_KEM_MSG_BYTES];
    uint8_t ek[SOTTO_KEM_MAX_PUBLIC_KEY_BYTES], dk[SOTTO_KEM_MAX_SECRET_KEY_BYTES];
    uint8_t ct[SOTTO_KEM_MAX_CIPHERTEXT_BYTES], s1[32], s2[32], s3[32];
    size_t ekl = sotto_kem_public_key_bytes(alg), dkl = sotto_kem_secret_key_bytes(alg);
    size_t ctl = sotto_kem_ciphertext_bytes(alg), spart = dkl - ekl - 64;
    int rc, same, rejected;

    for (size_t i = 0; i < sizeof seed; i++)
        seed[i] = (uint8_t)(i * 13 + round * 31 + (int)alg);
    for (size_t i = 0; i < sizeof m; i++)
        m[i] = (uint8_t)(i * 7 + round * 17 + (int)alg);

    SECRET(seed, sizeof seed);
    rc = sotto_kem_keygen_from_seed(alg, ek, sizeof ek, dk, sizeof dk, seed);
    PUBLIC(&rc, sizeof rc);
    if (rc != SOTTO_OK)
        return 1;
    PUBLIC(ek, ekl);              /* ek is public */
    PUBLIC(dk + spart, ekl + 32); /* embedded ek and H(ek) are public */
    SECRET(dk, spart);            /* s^ */
    SECRET(dk + dkl - 32, 32);    /* z */

    SECRET(m, sizeof m);
    rc = sotto_kem_encaps_deterministic(alg, ct, sizeof ct, s1, ek, ekl, m);
    PUBLIC(&rc, sizeof rc);
    if (rc != SOTTO_OK)
        return 1;
    PUBLIC(ct, ctl); /* the ciphertext is public */

    rc = sotto_kem_decaps(alg, s2, ct, ctl, dk, dkl);
    PUBLIC(&rc, sizeof rc);
    if (rc != SOTTO_OK)
        return 1;
    ct[round % ctl] ^= 0x10; /* implicit rejection path */
    rc = sotto_kem_decaps(alg, s3, ct, ctl, dk, dkl);
    PUBLIC(&rc, sizeof rc);
    if (rc != SOTTO_OK)
        return 1;

    if (leak && (dk[3] & 1)) /* deliberate secret-dependent branch (control run) */
        g_sink++;

    PUBLIC(s1, 32);
    PUBLIC(s2, 32);
    PUBLIC(s3, 32);
    same = memcmp(s1, s2, 32) == 0;
    rejected = memcmp(s1, s3, 32) != 0;
    return same && rejected ? 0 : 1;
}

int main(int argc, char **argv)
{
    static const sotto_kem_alg algs[] = {SOTTO_KEM_MLKEM768, SOTTO_KEM_MLKEM1024,
                                         SOTTO_KEM_KYBER1024};
    int leak = argc > 1 && strcmp(argv[1], "--leak") == 0;
    int fails = 0;

    if (sotto_init() != SOTTO_OK)
        return 1;
    for (size_t a = 0; a < 3; a++) {
        for (int r = 0; r < 2; r++)
            fails += run(algs[a], leak, r);
    }
    printf("test_mlkem_ct: %s valgrind, %d round-trip failures%s\n",
           RUNNING_ON_VALGRIND ? "under" : "NOT under (no constant-time check)", fails,
           leak ? " (control run with a deliberate leak)" : "");
    return fails == 0 ? 0 : 1;
}
