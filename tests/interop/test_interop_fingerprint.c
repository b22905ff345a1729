/*
 * tests/interop/test_interop_fingerprint.c -- safety numbers (spec section
 * 4): libsotto and libsignal-protocol-c must show the same 60 digits and
 * produce byte-identical scannable encodings (v0 and v1) for the same keys
 * and identifiers, and each must accept the other's scanned code.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"
#include "sotto/fingerprint.h"
#include "testutil.h"

/* Spec section 4 / libsignal-protocol-c tests/test_fingerprint.c. */
#define ALICE_KEY "0506863bc66d02b40d27b8d49ca7c09e9239236f9d7d25d6fcca5ce13c7064d868"
#define BOB_KEY "05f781b6fb32fed9ba1cf2de978d4d5da28dc34046ae814402b5c0dbd96fda907b"
#define ALICE_ID "+14152222222"
#define BOB_ID "+14153333333"
#define DISPLAY_5200 "300354477692869396892869876765458257569162576843440918079131"

static char *id_hex(const char *id)
{
    return tu_hex((const uint8_t *)id, strlen(id));
}

/* The peer's fingerprint (local = lid/lk); display and scannable hex are
 * copied into the outputs (caller frees). */
static void peer_fp(ih_peer *p, unsigned iterations, unsigned version, const char *lid,
                    const sotto_public_key *lk, const char *rid, const sotto_public_key *rk,
                    char **display, char **scannable_hex)
{
    char *lh = id_hex(lid), *rh = id_hex(rid);
    char *lkh = tu_hex(lk->bytes, sizeof(lk->bytes)), *rkh = tu_hex(rk->bytes, sizeof(rk->bytes));

    assert_int_equal(
        ih_peer_ok(p, "fingerprint %u %u %s %s %s %s", iterations, version, lh, lkh, rh, rkh), 3);
    *display = strdup(p->tok[1]);
    *scannable_hex = strdup(p->tok[2]);
    free(lh);
    free(rh);
    free(lkh);
    free(rkh);
}

/* Compares both libraries for one pair of parties and both perspectives. */
static void compare(ih_peer *p, unsigned iterations, unsigned version, const char *aid,
                    const sotto_public_key *ak, const char *bid, const sotto_public_key *bk,
                    const char *want_display)
{
    sotto_fingerprint *ours_a = NULL, *ours_b = NULL;
    char *disp_a = NULL, *scan_a = NULL, *disp_b = NULL, *scan_b = NULL, *hex;
    const uint8_t *data = NULL;
    size_t len = 0;
    uint8_t *theirs;
    size_t theirs_len = 0;
    bool match = false;

    assert_int_equal(sotto_fingerprint_create(&ours_a, iterations, version, aid, ak, 1, bid, bk, 1),
                     SOTTO_OK);
    assert_int_equal(sotto_fingerprint_create(&ours_b, iterations, version, bid, bk, 1, aid, ak, 1),
                     SOTTO_OK);
    peer_fp(p, iterations, version, aid, ak, bid, bk, &disp_a, &scan_a);
    peer_fp(p, iterations, version, bid, bk, aid, ak, &disp_b, &scan_b);

    /* Same 60 digits everywhere. */
    assert_int_equal(strlen(disp_a), SOTTO_FP_DISPLAY_DIGITS);
    assert_string_equal(sotto_fingerprint_display(ours_a), disp_a);
    assert_string_equal(sotto_fingerprint_display(ours_b), disp_a);
    assert_string_equal(disp_b, disp_a);
    if (want_display != NULL)
        assert_string_equal(disp_a, want_display);

    /* Byte-identical scannable encodings from the same perspective. */
    assert_int_equal(sotto_fingerprint_scannable(ours_a, &data, &len), SOTTO_OK);
    hex = tu_hex(data, len);
    assert_string_equal(hex, scan_a);
    free(hex);
    /* The peer accepts our scanned code, and we accept the peer's. */
    ih_peer_ok(p, "fingerprint_compare %s %s", scan_b, scan_a);
    theirs = tu_unhex(scan_b, &theirs_len);
    assert_int_equal(sotto_fingerprint_compare_scanned(ours_a, theirs, theirs_len, &match),
                     SOTTO_OK);
    assert_true(match);
    /* Our own code is not the peer's view of us: their local must be our remote. */
    free(theirs);

    sotto_fingerprint_free(ours_a);
    sotto_fingerprint_free(ours_b);
    free(disp_a);
    free(scan_a);
    free(disp_b);
    free(scan_b);
}

static void test_known_vector(void **state)
{
    ih_peer *p = ih_peer_start("peer");
    sotto_public_key a, b;
    sotto_fingerprint *fp = NULL;
    const uint8_t *data = NULL;
    size_t len = 0;
    char *hex;

    (void)state;
    tu_unhex_into(ALICE_KEY, a.bytes, sizeof(a.bytes));
    tu_unhex_into(BOB_KEY, b.bytes, sizeof(b.bytes));
    compare(p, 5200, 1, ALICE_ID, &a, BOB_ID, &b, DISPLAY_5200);
    compare(p, 5200, 0, ALICE_ID, &a, BOB_ID, &b, DISPLAY_5200);
    compare(p, 1024, 1, ALICE_ID, &a, BOB_ID, &b, NULL);

    /* And the scannable v1 bytes of the spec for Alice. */
    assert_int_equal(sotto_fingerprint_create(&fp, 5200, 1, ALICE_ID, &a, 1, BOB_ID, &b, 1),
                     SOTTO_OK);
    assert_int_equal(sotto_fingerprint_scannable(fp, &data, &len), SOTTO_OK);
    hex = tu_hex(data, len);
    assert_string_equal(hex, "080112220a20"
                             "1e301a0353dce3dbe7684cb8336e85136cdc0ee96219494ada305d62a7bd61df"
                             "1a220a20"
                             "d62cbf73a11592015b6b9f1682ac306fea3aaf3885b84d12bca631e9d4fb3a4d");
    free(hex);
    sotto_fingerprint_free(fp);
    ih_peer_stop(p);
}

static void test_live_identities(void **state)
{
    ih_peer *p = ih_peer_start("peer");
    ih_party *u = ih_party_new();
    sotto_public_key theirs;

    (void)state;
    ih_peer_ok(p, "identity");
    tu_unhex_into(p->tok[2], theirs.bytes, sizeof(theirs.bytes));
    compare(p, 5200, 1, "sotto-user", &u->identity.pub, "peer-user", &theirs, NULL);
    compare(p, 5200, 0, "sotto-user", &u->identity.pub, "peer-user", &theirs, NULL);
    compare(p, 2, 1, "x", &u->identity.pub, "y", &theirs, NULL);
    ih_party_free(u);
    ih_peer_stop(p);
}

static void test_mismatch_detected_by_both(void **state)
{
    ih_peer *p = ih_peer_start("peer");
    ih_party *u = ih_party_new(), *mallory = ih_party_new();
    sotto_public_key theirs;
    sotto_fingerprint *ours = NULL;
    char *disp = NULL, *scan_peer = NULL, *disp2 = NULL, *scan_ours_view = NULL;
    const uint8_t *data = NULL;
    size_t len = 0, scan_len = 0;
    uint8_t *scan;
    char *hex;
    bool match = true;

    (void)state;
    ih_peer_ok(p, "identity");
    tu_unhex_into(p->tok[2], theirs.bytes, sizeof(theirs.bytes));
    /* We believe the peer's key is Mallory's (a MITM): v1 codes differ. */
    assert_int_equal(sotto_fingerprint_create(&ours, 5200, 1, "sotto-user", &u->identity.pub, 1,
                                              "peer-user", &mallory->identity.pub, 1),
                     SOTTO_OK);
    peer_fp(p, 5200, 1, "peer-user", &theirs, "sotto-user", &u->identity.pub, &disp, &scan_peer);
    assert_string_not_equal(sotto_fingerprint_display(ours), disp);
    scan = tu_unhex(scan_peer, &scan_len);
    assert_int_equal(sotto_fingerprint_compare_scanned(ours, scan, scan_len, &match), SOTTO_OK);
    assert_false(match);
    /* The peer scanning our code says MISMATCH too. */
    assert_int_equal(sotto_fingerprint_scannable(ours, &data, &len), SOTTO_OK);
    hex = tu_hex(data, len);
    ih_peer_err(p, "MISMATCH", "fingerprint_compare %s %s", scan_peer, hex);
    /* Version mismatch: a v0 code against v1. */
    peer_fp(p, 5200, 0, "peer-user", &theirs, "sotto-user", &u->identity.pub, &disp2,
            &scan_ours_view);
    free(scan);
    scan = tu_unhex(scan_ours_view, &scan_len);
    assert_int_equal(sotto_fingerprint_compare_scanned(ours, scan, scan_len, &match),
                     SOTTO_ERR_FP_VERSION_MISMATCH);
    ih_peer_err(p, "FP_VERSION_MISMATCH", "fingerprint_compare %s %s", scan_ours_view, hex);
    free(hex);
    free(scan);
    free(disp);
    free(disp2);
    free(scan_peer);
    free(scan_ours_view);
    sotto_fingerprint_free(ours);
    ih_party_free(u);
    ih_party_free(mallory);
    ih_peer_stop(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_vector),
        cmocka_unit_test(test_live_identities),
        cmocka_unit_test(test_mismatch_detected_by_both),
    };

    return cmocka_run_group_tests_name("interop_fingerprint", tests, NULL, NULL);
}
