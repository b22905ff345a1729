/*
 * The incremental key-transparency log (sotto_merkle_log, sotto/merkle.h)
 * against the array generators it must match byte for byte: for every size
 * 1..300 every root (also as the log grows), every inclusion proof of every
 * index, every consistency proof for sizes up to 64 and random ones above;
 * a random sample on 100,000 leaves; its memory (about 2 x 32 bytes a
 * leaf); its argument checks. Allocation failures are in
 * test_kt_directory.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <sodium.h>

#include "sotto/merkle.h"

#define HB SOTTO_MERKLE_HASH_BYTES
#define SMALL 300
#define ALL_PAIRS_UP_TO 64
#define BIG 100000

typedef uint8_t hash_t[HB];

/* Deterministic test randomness (xorshift64*), so a failure reproduces. */
static uint64_t g_rng = UINT64_C(0x9e3779b97f4a7c15);

static uint64_t rnd(void)
{
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    return g_rng * UINT64_C(2685821657736338717);
}

/* Leaf hashes of distinct leaf data. */
static hash_t *make_leaves(uint64_t n)
{
    hash_t *l = malloc((size_t)n * HB);

    assert_non_null(l);
    for (uint64_t i = 0; i < n; i++) {
        uint8_t data[8];
        for (int b = 0; b < 8; b++)
            data[b] = (uint8_t)(i >> (8 * b));
        assert_int_equal(sotto_merkle_leaf_hash(l[i], data, sizeof data), SOTTO_OK);
    }
    return l;
}

static sotto_merkle_log *make_log(const hash_t *leaves, uint64_t n)
{
    sotto_merkle_log *log = NULL;

    assert_int_equal(sotto_merkle_log_new(&log), SOTTO_OK);
    for (uint64_t i = 0; i < n; i++)
        assert_int_equal(sotto_merkle_log_append(log, leaves[i]), SOTTO_OK);
    assert_int_equal(sotto_merkle_log_size(log), n);
    return log;
}

static void check_root(const sotto_merkle_log *log, const hash_t *leaves, uint64_t size)
{
    uint8_t a[HB], b[HB];

    assert_int_equal(sotto_merkle_root((const hash_t *)leaves, size, a), SOTTO_OK);
    memset(b, 0xee, sizeof b);
    assert_int_equal(sotto_merkle_log_root(log, size, b), SOTTO_OK);
    assert_memory_equal(a, b, HB);
}

static void check_inclusion(const sotto_merkle_log *log, const hash_t *leaves, uint64_t index,
                            uint64_t size)
{
    static uint8_t pa[SOTTO_MERKLE_MAX_PROOF][HB], pb[SOTTO_MERKLE_MAX_PROOF][HB];
    uint8_t root[HB];
    size_t na = 99, nb = 98;

    assert_int_equal(sotto_merkle_prove_inclusion((const hash_t *)leaves, size, index, pa, &na),
                     SOTTO_OK);
    assert_int_equal(sotto_merkle_log_prove_inclusion(log, index, size, pb, &nb), SOTTO_OK);
    assert_int_equal(na, nb);
    if (na != 0)
        assert_memory_equal(pa, pb, na * HB);
    assert_int_equal(sotto_merkle_log_root(log, size, root), SOTTO_OK);
    assert_int_equal(sotto_merkle_verify_inclusion(index, size, leaves[index],
                                                   nb ? (const hash_t *)pb : NULL, nb, root),
                     SOTTO_OK);
}

static void check_consistency(const sotto_merkle_log *log, const hash_t *leaves, uint64_t size1,
                              uint64_t size2)
{
    static uint8_t pa[SOTTO_MERKLE_MAX_PROOF][HB], pb[SOTTO_MERKLE_MAX_PROOF][HB];
    uint8_t r1[HB], r2[HB];
    size_t na = 99, nb = 98;

    assert_int_equal(sotto_merkle_prove_consistency((const hash_t *)leaves, size2, size1, pa, &na),
                     SOTTO_OK);
    assert_int_equal(sotto_merkle_log_prove_consistency(log, size1, size2, pb, &nb), SOTTO_OK);
    assert_int_equal(na, nb);
    if (na != 0)
        assert_memory_equal(pa, pb, na * HB);
    assert_int_equal(sotto_merkle_log_root(log, size1, r1), SOTTO_OK);
    assert_int_equal(sotto_merkle_log_root(log, size2, r2), SOTTO_OK);
    assert_int_equal(
        sotto_merkle_verify_consistency(size1, size2, r1, r2, nb ? (const hash_t *)pb : NULL, nb),
        SOTTO_OK);
}

static void test_log_small_exhaustive(void **state)
{
    hash_t *leaves = make_leaves(SMALL);
    sotto_merkle_log *log = NULL;
    uint8_t empty[HB], r[HB];
    (void)state;

    /* roots as the log grows, and the empty tree */
    assert_int_equal(sotto_merkle_log_new(&log), SOTTO_OK);
    crypto_hash_sha256(empty, NULL, 0);
    assert_int_equal(sotto_merkle_log_root(log, 0, r), SOTTO_OK);
    assert_memory_equal(r, empty, HB);
    for (uint64_t n = 1; n <= SMALL; n++) {
        assert_int_equal(sotto_merkle_log_append(log, leaves[n - 1]), SOTTO_OK);
        assert_int_equal(sotto_merkle_log_size(log), n);
        check_root(log, leaves, n);
    }
    /* every prefix root of the full log */
    for (uint64_t size = 0; size <= SMALL; size++)
        check_root(log, leaves, size);
    /* every inclusion proof of every size */
    for (uint64_t size = 1; size <= SMALL; size++)
        for (uint64_t i = 0; i < size; i++)
            check_inclusion(log, leaves, i, size);
    /* every consistency pair up to 64, then random pairs */
    for (uint64_t size2 = 1; size2 <= ALL_PAIRS_UP_TO; size2++)
        for (uint64_t size1 = 1; size1 <= size2; size1++)
            check_consistency(log, leaves, size1, size2);
    for (int k = 0; k < 3000; k++) {
        uint64_t size2 = ALL_PAIRS_UP_TO + 1 + rnd() % (SMALL - ALL_PAIRS_UP_TO);
        uint64_t size1 = 1 + rnd() % size2;
        check_consistency(log, leaves, size1, size2);
    }
    /* the bounds of the full size */
    check_consistency(log, leaves, 1, SMALL);
    check_consistency(log, leaves, SMALL, SMALL);
    check_consistency(log, leaves, SMALL - 1, SMALL);
    sotto_merkle_log_free(log);
    free(leaves);
}

static void test_log_large_sample(void **state)
{
    hash_t *leaves = make_leaves(BIG);
    sotto_merkle_log *log;
    size_t mem;
    clock_t t0;
    double dt;
    (void)state;

    t0 = clock();
    log = make_log(leaves, BIG);
    dt = (double)(clock() - t0) / CLOCKS_PER_SEC;
    mem = sotto_merkle_log_memory(log);
    printf("log of %d leaves: %zu bytes (%.1f per leaf), built in %.3f s\n", BIG, mem,
           (double)mem / BIG, dt);
    /* the cached levels hold 2n - popcount(n) hashes; arrays grown by
     * doubling hold at most twice that */
    assert_true(mem >= (size_t)(2 * BIG - 16) * HB);
    assert_true(mem <= (size_t)4 * BIG * HB + 64 * 1024);

    /* the array generators cost O(n) each: a sample */
    check_root(log, leaves, BIG);
    check_root(log, leaves, 65536);
    check_root(log, leaves, 65537);
    check_inclusion(log, leaves, BIG - 1, BIG);
    check_inclusion(log, leaves, 0, BIG);
    check_consistency(log, leaves, 65536, BIG);
    check_consistency(log, leaves, 1, BIG);
    check_consistency(log, leaves, BIG - 1, BIG);
    for (int k = 0; k < 8; k++) {
        uint64_t size = 1 + rnd() % BIG;
        check_root(log, leaves, size);
        check_inclusion(log, leaves, rnd() % size, size);
        check_consistency(log, leaves, 1 + rnd() % size, size);
    }
    /* the log alone: proofs it makes verify against its own roots */
    t0 = clock();
    for (int k = 0; k < 2000; k++) {
        static uint8_t p[SOTTO_MERKLE_MAX_PROOF][HB];
        uint8_t r1[HB], r2[HB];
        uint64_t size2 = 1 + rnd() % BIG, size1 = 1 + rnd() % size2, i = rnd() % size2;
        size_t n;

        assert_int_equal(sotto_merkle_log_root(log, size2, r2), SOTTO_OK);
        assert_int_equal(sotto_merkle_log_prove_inclusion(log, i, size2, p, &n), SOTTO_OK);
        assert_int_equal(
            sotto_merkle_verify_inclusion(i, size2, leaves[i], (const hash_t *)p, n, r2), SOTTO_OK);
        assert_int_equal(sotto_merkle_log_root(log, size1, r1), SOTTO_OK);
        assert_int_equal(sotto_merkle_log_prove_consistency(log, size1, size2, p, &n), SOTTO_OK);
        assert_int_equal(
            sotto_merkle_verify_consistency(size1, size2, r1, r2, n ? (const hash_t *)p : NULL, n),
            SOTTO_OK);
    }
    dt = (double)(clock() - t0) / CLOCKS_PER_SEC;
    printf("2000 x (2 roots, inclusion, consistency, 2 verifications) at 10^5: %.1f us each\n",
           dt * 1e6 / 2000);
    sotto_merkle_log_free(log);
    free(leaves);
}

static void test_log_arguments(void **state)
{
    hash_t *leaves = make_leaves(10);
    sotto_merkle_log *log = make_log(leaves, 10);
    uint8_t r[HB], p[SOTTO_MERKLE_MAX_PROOF][HB];
    size_t n;
    (void)state;

    assert_int_equal(sotto_merkle_log_new(NULL), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_merkle_log_append(NULL, leaves[0]), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_merkle_log_append(log, NULL), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_merkle_log_size(NULL), 0);
    assert_int_equal(sotto_merkle_log_memory(NULL), 0);
    assert_int_equal(sotto_merkle_log_root(log, 11, r), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_merkle_log_root(NULL, 0, r), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_merkle_log_root(log, 1, NULL), SOTTO_ERR_INVALID_ARGUMENT);
    n = 5;
    assert_int_equal(sotto_merkle_log_prove_inclusion(log, 10, 10, p, &n),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(n, 0);
    assert_int_equal(sotto_merkle_log_prove_inclusion(log, 0, 11, p, &n),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_merkle_log_prove_inclusion(log, 0, 0, p, &n),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_merkle_log_prove_inclusion(log, 0, 1, NULL, &n),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_merkle_log_prove_inclusion(log, 0, 1, p, NULL),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_merkle_log_prove_inclusion(log, 0, 1, p, &n), SOTTO_OK);
    assert_int_equal(n, 0); /* one leaf: empty path */
    n = 5;
    assert_int_equal(sotto_merkle_log_prove_consistency(log, 0, 5, p, &n),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(n, 0);
    assert_int_equal(sotto_merkle_log_prove_consistency(log, 6, 5, p, &n),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_merkle_log_prove_consistency(log, 5, 11, p, &n),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_merkle_log_prove_consistency(NULL, 1, 1, p, &n),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_merkle_log_prove_consistency(log, 10, 10, p, &n), SOTTO_OK);
    assert_int_equal(n, 0);
    /* nothing above changed the log */
    check_root(log, leaves, 10);
    sotto_merkle_log_free(log);
    sotto_merkle_log_free(NULL);
    free(leaves);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_small_exhaustive),
        cmocka_unit_test(test_log_large_sample),
        cmocka_unit_test(test_log_arguments),
    };
    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
