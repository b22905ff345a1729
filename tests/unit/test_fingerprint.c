/*
 * Numeric fingerprint / safety number (sotto/fingerprint.h, spec section 4):
 * the libsignal-protocol-c vectors (5200 iterations), v0/v1 scannable
 * encodings, comparisons, lists of keys, and hostile scanned input.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "sotto/fingerprint.h"
#include "sotto/keys.h"
#include "testutil.h"

#define ALICE_KEY "0506863bc66d02b40d27b8d49ca7c09e9239236f9d7d25d6fcca5ce13c7064d868"
#define BOB_KEY "05f781b6fb32fed9ba1cf2de978d4d5da28dc34046ae814402b5c0dbd96fda907b"
#define ALICE_ID "+14152222222"
#define BOB_ID "+14153333333"
#define ALICE_V1 "1e301a0353dce3dbe7684cb8336e85136cdc0ee96219494ada305d62a7bd61df"
#define BOB_V1 "d62cbf73a11592015b6b9f1682ac306fea3aaf3885b84d12bca631e9d4fb3a4d"
#define DISPLAY "300354477692869396892869876765458257569162576843440918079131"

static sotto_public_key alice_key, bob_key;

static int setup(void **state)
{
    (void)state;
    uint8_t b[33];
    if (sotto_init() != SOTTO_OK)
        return -1;
    tu_unhex_into(ALICE_KEY, b, 33);
    if (sotto_public_key_decode(&alice_key, b, 33) != SOTTO_OK)
        return -1;
    tu_unhex_into(BOB_KEY, b, 33);
    if (sotto_public_key_decode(&bob_key, b, 33) != SOTTO_OK)
        return -1;
    return 0;
}

static sotto_fingerprint *make(uint32_t iters, uint32_t ver, const char *lid,
                               const sotto_public_key *lk, const char *rid,
                               const sotto_public_key *rk)
{
    sotto_fingerprint *fp = NULL;
    assert_int_equal(sotto_fingerprint_create(&fp, iters, ver, lid, lk, 1, rid, rk, 1), SOTTO_OK);
    assert_non_null(fp);
    return fp;
}

static void scannable_of(const sotto_fingerprint *fp, const uint8_t **p, size_t *n)
{
    assert_int_equal(sotto_fingerprint_scannable(fp, p, n), SOTTO_OK);
}

static int compare(const sotto_fingerprint *ours, const sotto_fingerprint *theirs, bool *match)
{
    const uint8_t *p;
    size_t n;
    scannable_of(theirs, &p, &n);
    return sotto_fingerprint_compare_scanned(ours, p, n, match);
}

/* test_vectors_v1: display string and scannable bytes, both sides. */
static void test_vectors_v1(void **state)
{
    (void)state;
    sotto_fingerprint *a = make(SOTTO_FP_DEFAULT_ITERATIONS, SOTTO_FP_SCANNABLE_V1, ALICE_ID,
                                &alice_key, BOB_ID, &bob_key);
    sotto_fingerprint *b = make(SOTTO_FP_DEFAULT_ITERATIONS, SOTTO_FP_SCANNABLE_V1, BOB_ID,
                                &bob_key, ALICE_ID, &alice_key);
    const uint8_t *p;
    size_t n, en;
    bool match = false;

    assert_string_equal(sotto_fingerprint_display(a), DISPLAY);
    assert_string_equal(sotto_fingerprint_display(b), DISPLAY);
    assert_int_equal(strlen(sotto_fingerprint_display(a)), SOTTO_FP_DISPLAY_DIGITS);

    /* 08 01 12 22 0a 20 <alice32> 1a 22 0a 20 <bob32> */
    uint8_t *exp = tu_unhex("0801"
                            "12220a20" ALICE_V1 "1a220a20" BOB_V1,
                            &en);
    scannable_of(a, &p, &n);
    assert_int_equal(n, en);
    assert_memory_equal(p, exp, en);
    free(exp);
    exp = tu_unhex("0801"
                   "12220a20" BOB_V1 "1a220a20" ALICE_V1,
                   &en);
    scannable_of(b, &p, &n);
    assert_int_equal(n, en);
    assert_memory_equal(p, exp, en);
    free(exp);

    assert_int_equal(compare(a, b, &match), SOTTO_OK);
    assert_true(match);
    match = false;
    assert_int_equal(compare(b, a, &match), SOTTO_OK);
    assert_true(match);
    /* Our own code (not swapped) does not match. */
    assert_int_equal(compare(a, a, &match), SOTTO_OK);
    assert_false(match);
    sotto_fingerprint_free(a);
    sotto_fingerprint_free(b);
}

/* test_vectors_v0: the scannable form carries keys and identifiers. */
static void test_vectors_v0(void **state)
{
    (void)state;
    sotto_fingerprint *a = make(SOTTO_FP_DEFAULT_ITERATIONS, SOTTO_FP_SCANNABLE_V0, ALICE_ID,
                                &alice_key, BOB_ID, &bob_key);
    sotto_fingerprint *b = make(SOTTO_FP_DEFAULT_ITERATIONS, SOTTO_FP_SCANNABLE_V0, BOB_ID,
                                &bob_key, ALICE_ID, &alice_key);
    const uint8_t *p;
    size_t n, en;
    bool match = false;

    assert_string_equal(sotto_fingerprint_display(a), DISPLAY);
    /* 08 00 12 31 0a 21 <aliceKey33> 12 0c "+14152222222" 1a 31 0a 21 <bobKey33> 12 0c ... */
    uint8_t *exp = tu_unhex("0800"
                            "12310a21" ALICE_KEY "120c2b3134313532323232323232"
                            "1a310a21" BOB_KEY "120c2b3134313533333333333333",
                            &en);
    scannable_of(a, &p, &n);
    assert_int_equal(n, en);
    assert_memory_equal(p, exp, en);
    free(exp);
    assert_int_equal(compare(a, b, &match), SOTTO_OK);
    assert_true(match);
    assert_int_equal(compare(b, a, &match), SOTTO_OK);
    assert_true(match);
    sotto_fingerprint_free(a);
    sotto_fingerprint_free(b);
}

static void test_mismatching_keys(void **state)
{
    (void)state;
    sotto_key_pair mitm;
    bool match = true;

    assert_int_equal(sotto_key_pair_generate(&mitm), SOTTO_OK);
    for (uint32_t ver = 0; ver <= 1; ver++) {
        sotto_fingerprint *a = make(1024, ver, ALICE_ID, &alice_key, BOB_ID, &mitm.pub);
        sotto_fingerprint *b = make(1024, ver, BOB_ID, &bob_key, ALICE_ID, &alice_key);
        assert_string_not_equal(sotto_fingerprint_display(a), sotto_fingerprint_display(b));
        match = true;
        assert_int_equal(compare(a, b, &match), SOTTO_OK);
        assert_false(match);
        match = true;
        assert_int_equal(compare(b, a, &match), SOTTO_OK);
        assert_false(match);
        sotto_fingerprint_free(a);
        sotto_fingerprint_free(b);
    }
    sotto_key_pair_wipe(&mitm);
}

static void test_mismatching_identifiers(void **state)
{
    (void)state;
    bool match = true;

    /* v0: identifiers travel in the clear and are checked. */
    sotto_fingerprint *a = make(1024, 0, "+141512222222", &alice_key, BOB_ID, &bob_key);
    sotto_fingerprint *b = make(1024, 0, BOB_ID, &bob_key, ALICE_ID, &alice_key);
    assert_string_not_equal(sotto_fingerprint_display(a), sotto_fingerprint_display(b));
    assert_int_equal(compare(a, b, &match), SOTTO_ERR_FP_IDENT_MISMATCH);
    assert_false(match);
    assert_int_equal(compare(b, a, &match), SOTTO_ERR_FP_IDENT_MISMATCH);
    sotto_fingerprint_free(a);
    sotto_fingerprint_free(b);
    /* v1: they are inside the hash, so the content differs. */
    a = make(1024, 1, "+141512222222", &alice_key, BOB_ID, &bob_key);
    b = make(1024, 1, BOB_ID, &bob_key, ALICE_ID, &alice_key);
    match = true;
    assert_int_equal(compare(a, b, &match), SOTTO_OK);
    assert_false(match);
    sotto_fingerprint_free(a);
    sotto_fingerprint_free(b);
}

static void test_version_mismatch(void **state)
{
    (void)state;
    bool match = true;
    sotto_fingerprint *a = make(1024, 0, ALICE_ID, &alice_key, BOB_ID, &bob_key);
    sotto_fingerprint *b = make(1024, 1, BOB_ID, &bob_key, ALICE_ID, &alice_key);

    /* Same display (it does not depend on the scannable version). */
    assert_string_equal(sotto_fingerprint_display(a), sotto_fingerprint_display(b));
    assert_int_equal(compare(a, b, &match), SOTTO_ERR_FP_VERSION_MISMATCH);
    assert_false(match);
    assert_int_equal(compare(b, a, &match), SOTTO_ERR_FP_VERSION_MISMATCH);
    /* A version we do not know. */
    const uint8_t v2[] = {0x08, 0x02, 0x12, 0x02, 0x0a, 0x00, 0x1a, 0x02, 0x0a, 0x00};
    assert_int_equal(sotto_fingerprint_compare_scanned(b, v2, sizeof v2, &match),
                     SOTTO_ERR_FP_VERSION_MISMATCH);
    /* Missing parts count as a version mismatch (as libsignal-protocol-c). */
    const uint8_t only_version[] = {0x08, 0x01};
    assert_int_equal(
        sotto_fingerprint_compare_scanned(b, only_version, sizeof only_version, &match),
        SOTTO_ERR_FP_VERSION_MISMATCH);
    assert_int_equal(sotto_fingerprint_compare_scanned(b, only_version, 0, &match),
                     SOTTO_ERR_FP_VERSION_MISMATCH);
    const uint8_t no_content[] = {0x08, 0x01, 0x12, 0x00, 0x1a, 0x00};
    assert_int_equal(sotto_fingerprint_compare_scanned(b, no_content, sizeof no_content, &match),
                     SOTTO_ERR_FP_VERSION_MISMATCH);
    sotto_fingerprint_free(a);
    sotto_fingerprint_free(b);
}

/* The per-party hash, computed here independently with libsodium. */
static void ref_hash(uint8_t out[64], uint32_t iters, const uint8_t *kb, size_t kb_len,
                     const char *id)
{
    size_t id_len = strlen(id);
    size_t n = 2 + kb_len + id_len + kb_len;
    uint8_t *buf = calloc(1, n > 64 + kb_len ? n : 64 + kb_len);
    assert_non_null(buf);
    memcpy(buf + 2, kb, kb_len);
    memcpy(buf + 2 + kb_len, id, id_len);
    memcpy(buf + 2 + kb_len + id_len, kb, kb_len);
    crypto_hash_sha512(out, buf, n);
    for (uint32_t i = 1; i < iters; i++) {
        memcpy(buf, out, 64);
        memcpy(buf + 64, kb, kb_len);
        crypto_hash_sha512(out, buf, 64 + kb_len);
    }
    free(buf);
}

static int cmp33(const void *a, const void *b)
{
    return memcmp(a, b, 33);
}

static void test_list_of_keys(void **state)
{
    (void)state;
    sotto_public_key mine[3], theirs[2], shuffled[3];
    sotto_key_pair kp;
    sotto_fingerprint *a = NULL, *a2 = NULL, *b = NULL;
    const uint8_t *p;
    size_t n;
    bool match = false;

    for (int i = 0; i < 3; i++) {
        assert_int_equal(sotto_key_pair_generate(&kp), SOTTO_OK);
        mine[i] = kp.pub;
    }
    for (int i = 0; i < 2; i++) {
        assert_int_equal(sotto_key_pair_generate(&kp), SOTTO_OK);
        theirs[i] = kp.pub;
    }
    sotto_key_pair_wipe(&kp);
    shuffled[0] = mine[2];
    shuffled[1] = mine[0];
    shuffled[2] = mine[1];

    assert_int_equal(sotto_fingerprint_create(&a, 7, 1, ALICE_ID, mine, 3, BOB_ID, theirs, 2),
                     SOTTO_OK);
    assert_int_equal(sotto_fingerprint_create(&a2, 7, 1, ALICE_ID, shuffled, 3, BOB_ID, theirs, 2),
                     SOTTO_OK);
    assert_int_equal(sotto_fingerprint_create(&b, 7, 1, BOB_ID, theirs, 2, ALICE_ID, shuffled, 3),
                     SOTTO_OK);
    /* Order of the list does not matter. */
    assert_string_equal(sotto_fingerprint_display(a), sotto_fingerprint_display(a2));
    assert_string_equal(sotto_fingerprint_display(a), sotto_fingerprint_display(b));
    assert_int_equal(compare(a2, b, &match), SOTTO_OK);
    assert_true(match);

    /* The v1 content is the hash over the sorted concatenation. */
    uint8_t kb[3 * 33], h[64];
    memcpy(kb, shuffled, sizeof kb);
    qsort(kb, 3, 33, cmp33);
    ref_hash(h, 7, kb, sizeof kb, ALICE_ID);
    scannable_of(a, &p, &n);
    assert_true(n > 6 + 32);
    assert_memory_equal(p + 6, h, 32);

    /* A subset of the keys gives another fingerprint. */
    sotto_fingerprint *c = NULL;
    assert_int_equal(sotto_fingerprint_create(&c, 7, 1, ALICE_ID, mine, 2, BOB_ID, theirs, 2),
                     SOTTO_OK);
    assert_string_not_equal(sotto_fingerprint_display(a), sotto_fingerprint_display(c));
    assert_int_equal(compare(c, b, &match), SOTTO_OK);
    assert_false(match);
    sotto_fingerprint_free(a);
    sotto_fingerprint_free(a2);
    sotto_fingerprint_free(b);
    sotto_fingerprint_free(c);
}

/* The display digits follow the spec's chunking from the reference hash. */
static void test_display_definition(void **state)
{
    (void)state;
    uint8_t ha[64], hb[64];
    char da[31], db[31], exp[61];
    sotto_fingerprint *fp = make(5, 1, "alice", &alice_key, "bob", &bob_key);

    ref_hash(ha, 5, alice_key.bytes, 33, "alice");
    ref_hash(hb, 5, bob_key.bytes, 33, "bob");
    for (int c = 0; c < 6; c++) {
        uint64_t va = 0, vb = 0;
        for (int k = 0; k < 5; k++) {
            va = va << 8 | ha[c * 5 + k];
            vb = vb << 8 | hb[c * 5 + k];
        }
        snprintf(da + c * 5, 6, "%05u", (unsigned)(va % 100000));
        snprintf(db + c * 5, 6, "%05u", (unsigned)(vb % 100000));
    }
    if (strcmp(da, db) <= 0)
        snprintf(exp, sizeof exp, "%s%s", da, db);
    else
        snprintf(exp, sizeof exp, "%s%s", db, da);
    assert_string_equal(sotto_fingerprint_display(fp), exp);
    sotto_fingerprint_free(fp);
}

static void test_create_bad_args(void **state)
{
    (void)state;
    sotto_fingerprint *fp = (sotto_fingerprint *)&fp; /* must be reset to NULL */
    sotto_public_key bad = alice_key;
    char *long_id = malloc(SOTTO_FP_MAX_ID_BYTES + 2);

    assert_non_null(long_id);
    memset(long_id, '1', SOTTO_FP_MAX_ID_BYTES + 1);
    long_id[SOTTO_FP_MAX_ID_BYTES + 1] = '\0';
    assert_int_equal(sotto_fingerprint_create(&fp, 0, 1, "a", &alice_key, 1, "b", &bob_key, 1),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_null(fp);
    assert_int_equal(sotto_fingerprint_create(&fp, SOTTO_FP_MAX_ITERATIONS + 1, 1, "a", &alice_key,
                                              1, "b", &bob_key, 1),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_fingerprint_create(&fp, 2, 2, "a", &alice_key, 1, "b", &bob_key, 1),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_fingerprint_create(&fp, 2, 1, NULL, &alice_key, 1, "b", &bob_key, 1),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_fingerprint_create(&fp, 2, 1, "a", &alice_key, 0, "b", &bob_key, 1),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_fingerprint_create(&fp, 2, 1, "a", NULL, 1, "b", &bob_key, 1),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_fingerprint_create(&fp, 2, 1, "a", &alice_key, SOTTO_FP_MAX_KEYS + 1,
                                              "b", &bob_key, 1),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_fingerprint_create(&fp, 2, 1, long_id, &alice_key, 1, "b", &bob_key, 1),
                     SOTTO_ERR_INVALID_ARGUMENT);
    long_id[SOTTO_FP_MAX_ID_BYTES] = '\0'; /* exactly the maximum is fine */
    assert_int_equal(sotto_fingerprint_create(&fp, 2, 0, long_id, &alice_key, 1, "b", &bob_key, 1),
                     SOTTO_OK);
    sotto_fingerprint_free(fp);
    bad.bytes[0] = 0x06;
    assert_int_equal(sotto_fingerprint_create(&fp, 2, 1, "a", &bad, 1, "b", &bob_key, 1),
                     SOTTO_ERR_INVALID_KEY);
    assert_null(fp);
    assert_int_equal(sotto_fingerprint_create(NULL, 2, 1, "a", &alice_key, 1, "b", &bob_key, 1),
                     SOTTO_ERR_INVALID_ARGUMENT);
    sotto_fingerprint_free(NULL);
    free(long_id);
}

/* Hostile scanned input: truncations, bit flips, garbage, wrong types. */
static void test_compare_hostile(void **state)
{
    (void)state;
    sotto_fingerprint *a = make(64, 0, ALICE_ID, &alice_key, BOB_ID, &bob_key);
    sotto_fingerprint *b = make(64, 0, BOB_ID, &bob_key, ALICE_ID, &alice_key);
    sotto_fingerprint *a1 = make(64, 1, ALICE_ID, &alice_key, BOB_ID, &bob_key);
    const uint8_t *p;
    size_t n;
    bool match;
    int rc;

    scannable_of(b, &p, &n);
    uint8_t *copy = malloc(n);
    assert_non_null(copy);
    /* Every truncation fails cleanly and never matches. */
    for (size_t k = 0; k < n; k++) {
        memcpy(copy, p, k);
        match = true;
        rc = sotto_fingerprint_compare_scanned(a, k ? copy : NULL, k, &match);
        assert_true(rc == SOTTO_ERR_INVALID_MESSAGE || rc == SOTTO_ERR_FP_VERSION_MISMATCH ||
                    rc == SOTTO_ERR_FP_IDENT_MISMATCH);
        assert_false(match);
    }
    /*
     * Every single bit flip fails or reports "no match", except flips of the
     * version's tag byte that keep the meaning (0x08 -> 0x28/0x48: the
     * version becomes an unknown field 5/9, so it defaults to 0 = v0).
     * Protobuf semantics, as in libsignal-protocol-c.
     */
    size_t n_match = 0;
    for (size_t bit = 0; bit < n * 8; bit++) {
        memcpy(copy, p, n);
        copy[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        match = false;
        rc = sotto_fingerprint_compare_scanned(a, copy, n, &match);
        if (rc != SOTTO_OK) {
            assert_false(match);
        } else if (match) {
            assert_int_equal(bit / 8, 0);
            n_match++;
        }
    }
    assert_int_equal(n_match, 2);
    free(copy);

    /* Random garbage. */
    for (int i = 0; i < 500; i++) {
        uint8_t g[64];
        size_t gl = randombytes_uniform(sizeof g + 1);
        randombytes_buf(g, gl);
        match = true;
        rc = sotto_fingerprint_compare_scanned(a1, g, gl, &match);
        assert_true(rc == SOTTO_OK || rc == SOTTO_ERR_INVALID_MESSAGE ||
                    rc == SOTTO_ERR_FP_VERSION_MISMATCH);
        assert_false(match);
    }
    /* Version as a LEN field; local as a varint; a group; a bad tag. */
    const uint8_t bad1[] = {0x0a, 0x01, 0x01};
    const uint8_t bad2[] = {0x08, 0x01, 0x10, 0x05};
    const uint8_t bad3[] = {0x08, 0x01, 0x13};
    const uint8_t bad4[] = {0x00, 0x01};
    const uint8_t bad5[] = {0x08, 0x01, 0x12, 0x03, 0x08, 0x01}; /* LEN overruns */
    const uint8_t bad6[] = {0x08, 0x01, 0x12, 0x02, 0x08, 0x01}; /* content as varint */
    const uint8_t bad7[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0x1f}; /* version > 2^32-1 */
    const struct {
        const uint8_t *p;
        size_t n;
    } bad[] = {
        {bad1, sizeof bad1}, {bad2, sizeof bad2}, {bad3, sizeof bad3}, {bad4, sizeof bad4},
        {bad5, sizeof bad5}, {bad6, sizeof bad6}, {bad7, sizeof bad7},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        match = true;
        assert_int_equal(sotto_fingerprint_compare_scanned(a1, bad[i].p, bad[i].n, &match),
                         SOTTO_ERR_INVALID_MESSAGE);
        assert_false(match);
    }
    /* Unknown fields are skipped: the real code plus field 9 still matches. */
    {
        sotto_fingerprint *b1 = make(64, 1, BOB_ID, &bob_key, ALICE_ID, &alice_key);
        scannable_of(b1, &p, &n);
        uint8_t *ext = malloc(n + 2);
        assert_non_null(ext);
        memcpy(ext, p, n);
        ext[n] = 0x48; /* field 9, varint */
        ext[n + 1] = 0x07;
        assert_int_equal(sotto_fingerprint_compare_scanned(a1, ext, n + 2, &match), SOTTO_OK);
        assert_true(match);
        free(ext);
        sotto_fingerprint_free(b1);
    }
    /* Oversized input. */
    {
        size_t big = SOTTO_FP_SCANNABLE_MAX + 1;
        uint8_t *g = calloc(1, big);
        assert_non_null(g);
        assert_int_equal(sotto_fingerprint_compare_scanned(a1, g, big, &match),
                         SOTTO_ERR_INVALID_MESSAGE);
        free(g);
    }
    assert_int_equal(sotto_fingerprint_compare_scanned(NULL, p, n, &match),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_fingerprint_compare_scanned(a1, p, n, NULL), SOTTO_ERR_INVALID_ARGUMENT);
    sotto_fingerprint_free(a);
    sotto_fingerprint_free(b);
    sotto_fingerprint_free(a1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors_v1),         cmocka_unit_test(test_vectors_v0),
        cmocka_unit_test(test_mismatching_keys),   cmocka_unit_test(test_mismatching_identifiers),
        cmocka_unit_test(test_version_mismatch),   cmocka_unit_test(test_list_of_keys),
        cmocka_unit_test(test_display_definition), cmocka_unit_test(test_create_bad_args),
        cmocka_unit_test(test_compare_hostile),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
