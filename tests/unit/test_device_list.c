/*
 * Signed device lists (sotto/device_list.h): the known answer of
 * docs/protocol.md "Account key and device list" (statement bytes written
 * out by hand from the layout, and a signature made with a fixed account
 * key and fixed RNG), sign/verify/parse round trips, every bit flip of a
 * signed list refused, every truncation refused, hostile statements SIGNED
 * by the account key (so they get past the signature) each refused with
 * its own error, the find/diff/update helpers, and the v2 safety-number
 * contract (account keys, unchanged across device changes).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "crypto/crypto.h"
#include "sotto/device_list.h"
#include "sotto/fingerprint.h"
#include "testutil.h"

/* docs/protocol.md "Account key and device list", example: username
 * "alice", version 7, 2025-12-07 00:00 UTC, devices 1, 2, 5 with the
 * RFC 8032 test 1..3 public keys as auth keys. Written out by hand. */
static const char KAT_STATEMENT_HEX[] =
    "534f54544f2d4445564943452d4c4953542d5631" /* "SOTTO-DEVICE-LIST-V1" */
    "00"
    "05"
    "616c696365"       /* "alice" */
    "0000000000000007" /* version */
    "0000019af61bac00" /* timestamp_ms 1765065600000 */
    "03"
    /* device 1 */
    "00000001"
    "000004d2"
    "05"
    "1111111111111111111111111111111111111111111111111111111111111111"
    "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    "00000000"
    /* device 2 */
    "00000002"
    "00003ffc"
    "05"
    "2222222222222222222222222222222222222222222222222222222222222222"
    "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"
    "00000001"
    /* device 5 */
    "00000005"
    "00000001"
    "05"
    "3333333333333333333333333333333333333333333333333333333333333333"
    "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025"
    "80000000";

/* The account key of the example: private key a0 a1 ... bf (clamped); its
 * public key was cross-checked with Python's cryptography (OpenSSL X25519). */
static const char KAT_ACCOUNT_PUB_HEX[] =
    "05605a725d2a4adfeeb1a29e17edd621c1b7593ee8cdbc44ac6c4ab6e2f805d23c";

static const char *const RFC8032_PUB[3] = {
    "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
    "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
    "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
};

#define KAT_LEN 275
/* offsets in a statement for username "alice" */
#define OFF_UL 21
#define OFF_VERSION 27
#define OFF_N 43
#define OFF_ENTRY(i) (44 + 77 * (i))

static sotto_key_pair g_account;

static void fixed_rng(void *ctx, void *p, size_t n)
{
    (void)ctx;
    memset(p, 0x5a, n);
}

static void kat_account(sotto_key_pair *kp)
{
    uint8_t priv[32];
    for (int i = 0; i < 32; i++)
        priv[i] = (uint8_t)(0xa0 + i);
    assert_int_equal(sotto_key_pair_from_private(kp, priv), SOTTO_OK);
}

static void kat_list(sotto_device_list *l)
{
    static const uint32_t ids[3] = {1, 2, 5}, regs[3] = {1234, 16380, 1};
    static const uint32_t caps[3] = {0, SOTTO_DEVICE_CAP_PQ, 0x80000000u};

    memset(l, 0, sizeof *l);
    snprintf(l->username, sizeof l->username, "%s", "alice");
    l->version = 7;
    l->timestamp_ms = 1765065600000ull;
    l->n_devices = 3;
    for (int i = 0; i < 3; i++) {
        l->devices[i].device_id = ids[i];
        l->devices[i].registration_id = regs[i];
        l->devices[i].identity_key.bytes[0] = 0x05;
        memset(l->devices[i].identity_key.bytes + 1, 0x11 * (i + 1), 32);
        tu_unhex_into(RFC8032_PUB[i], l->devices[i].auth_key, 32);
        l->devices[i].capabilities = caps[i];
    }
}

/* A valid device `id` with keys derived from id (for larger lists). */
static void make_device(sotto_device_entry *d, uint32_t id)
{
    uint8_t seed[32], sk[64];
    memset(seed, (int)(id & 0xff), sizeof seed);
    seed[0] = (uint8_t)(id >> 8);
    assert_int_equal(crypto_sign_seed_keypair(d->auth_key, sk, seed), 0);
    sodium_memzero(sk, sizeof sk);
    d->device_id = id;
    d->registration_id = 1 + (id % SOTTO_REGISTRATION_ID_MAX);
    d->identity_key.bytes[0] = 0x05;
    memset(d->identity_key.bytes + 1, (int)(0x40 + (id & 0x3f)), 32);
    d->capabilities = 0;
}

static void assert_list_equal(const sotto_device_list *a, const sotto_device_list *b)
{
    assert_string_equal(a->username, b->username);
    assert_true(a->version == b->version);
    assert_true(a->timestamp_ms == b->timestamp_ms);
    assert_int_equal(a->n_devices, b->n_devices);
    for (size_t i = 0; i < a->n_devices; i++) {
        assert_int_equal(a->devices[i].device_id, b->devices[i].device_id);
        assert_int_equal(a->devices[i].registration_id, b->devices[i].registration_id);
        assert_memory_equal(a->devices[i].identity_key.bytes, b->devices[i].identity_key.bytes, 33);
        assert_memory_equal(a->devices[i].auth_key, b->devices[i].auth_key, 32);
        assert_int_equal(a->devices[i].capabilities, b->devices[i].capabilities);
    }
}

static void assert_zero(const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        assert_int_equal(b[i], 0);
}

/* Signs arbitrary statement bytes with the account key: statement || sig. */
static size_t sign_raw(uint8_t *out, const uint8_t *stmt, size_t n)
{
    memmove(out, stmt, n);
    assert_int_equal(sotto_xeddsa_sign(out + n, g_account.priv, out, n), SOTTO_OK);
    return n + 64;
}

static int setup(void **state)
{
    (void)state;
    if (sotto_init() != SOTTO_OK)
        return -1;
    kat_account(&g_account);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sotto_key_pair_wipe(&g_account);
    return 0;
}

static void test_kat_statement(void **state)
{
    sotto_device_list l;
    uint8_t out[SOTTO_DEVICE_LIST_STATEMENT_MAX_BYTES];
    size_t n = 0, want_len = 0;
    uint8_t *want = tu_unhex(KAT_STATEMENT_HEX, &want_len);

    (void)state;
    kat_list(&l);
    assert_int_equal(want_len, KAT_LEN);
    assert_int_equal(sotto_device_list_statement(&l, out, sizeof out, &n), SOTTO_OK);
    assert_int_equal(n, 39 + 5 + 3 * 77);
    assert_memory_equal(out, want, KAT_LEN);
    /* exact-size buffer works, one byte less does not and leaves nothing */
    assert_int_equal(sotto_device_list_statement(&l, out, KAT_LEN, &n), SOTTO_OK);
    assert_int_equal(sotto_device_list_statement(&l, out, KAT_LEN - 1, &n),
                     SOTTO_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(n, 0);
    assert_zero(out, KAT_LEN - 1);
    free(want);
}

static void test_kat_signature(void **state)
{
    sotto_device_list l, got;
    uint8_t out[SOTTO_DEVICE_LIST_MAX_BYTES];
    size_t n = 0, want_len = 0;
    uint8_t *want = tu_unhex(KAT_STATEMENT_HEX, &want_len);
    sotto_public_key pub;
    char *hex;

    (void)state;
    kat_list(&l);
    tu_unhex_into(KAT_ACCOUNT_PUB_HEX, pub.bytes, 33);
    assert_memory_equal(pub.bytes, g_account.pub.bytes, 33);
    sotto_test_set_random(fixed_rng, NULL);
    assert_int_equal(sotto_device_list_sign(&l, &g_account, out, sizeof out, &n), SOTTO_OK);
    sotto_test_set_random(NULL, NULL);
    assert_int_equal(n, KAT_LEN + 64);
    assert_memory_equal(out, want, KAT_LEN);
    hex = tu_hex(out + KAT_LEN, 64);
    /* XEdDSA with the 64 nonce bytes all 0x5a (made by libsotto, pinned so a
     * change in signing shows up) */
    assert_string_equal(hex, "4ad66653b4c9b8c8408a3cfd0491b6437cff0e8f4a922a334d4c51108ae24d20"
                             "7aaeebdf090efb25b63dcd96cf1b2a47fe4cca289b293bc0290c22990bc5e60c");
    free(hex);
    /* the pinned signature verifies over the hand-written statement */
    assert_int_equal(sotto_xeddsa_verify(&pub, want, KAT_LEN, out + KAT_LEN), SOTTO_OK);
    assert_int_equal(sotto_device_list_verify(&got, out, n, &pub, "alice"), SOTTO_OK);
    assert_list_equal(&got, &l);
    free(want);
}

static void test_round_trip(void **state)
{
    sotto_device_list l, got;
    uint8_t out[SOTTO_DEVICE_LIST_MAX_BYTES], stmt[SOTTO_DEVICE_LIST_STATEMENT_MAX_BYTES];
    size_t n = 0, sn = 0;
    const uint8_t *sig = NULL;

    (void)state;
    kat_list(&l);
    assert_int_equal(sotto_device_list_sign(&l, &g_account, out, sizeof out, &n), SOTTO_OK);
    assert_int_equal(sotto_device_list_verify(&got, out, n, &g_account.pub, "alice"), SOTTO_OK);
    assert_list_equal(&got, &l);
    assert_int_equal(sotto_device_list_parse(&got, out, n, &sig), SOTTO_OK);
    assert_list_equal(&got, &l);
    assert_ptr_equal(sig, out + n - 64);
    /* canonical: the parsed list re-encodes to the signed bytes */
    assert_int_equal(sotto_device_list_statement(&got, stmt, sizeof stmt, &sn), SOTTO_OK);
    assert_int_equal(sn, n - 64);
    assert_memory_equal(stmt, out, sn);

    /* the largest list: 32 devices, 32-character username */
    memset(&l, 0, sizeof l);
    memset(l.username, 'z', SOTTO_USERNAME_MAX_LEN);
    l.version = UINT64_MAX;
    l.timestamp_ms = UINT64_MAX;
    l.n_devices = SOTTO_DEVICE_LIST_MAX;
    for (uint32_t i = 0; i < SOTTO_DEVICE_LIST_MAX; i++)
        make_device(&l.devices[i], i == 31 ? UINT32_MAX : 3 * i + 1);
    assert_int_equal(sotto_device_list_sign(&l, &g_account, out, sizeof out, &n), SOTTO_OK);
    assert_int_equal(n, SOTTO_DEVICE_LIST_MAX_BYTES);
    assert_int_equal(sotto_device_list_verify(&got, out, n, &g_account.pub, l.username), SOTTO_OK);
    assert_list_equal(&got, &l);
    assert_int_equal(sotto_device_list_sign(&l, &g_account, out, n - 1, &n),
                     SOTTO_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(n, 0);
}

static void test_bit_flips_and_wrong_key(void **state)
{
    sotto_device_list l, got;
    uint8_t out[SOTTO_DEVICE_LIST_MAX_BYTES];
    size_t n = 0;
    sotto_key_pair other;
    int accepted = 0;

    (void)state;
    kat_list(&l);
    assert_int_equal(sotto_device_list_sign(&l, &g_account, out, sizeof out, &n), SOTTO_OK);
    for (size_t i = 0; i < n; i++) {
        for (int bit = 0; bit < 8; bit++) {
            out[i] ^= (uint8_t)(1u << bit);
            if (sotto_device_list_verify(&got, out, n, &g_account.pub, "alice") == SOTTO_OK)
                accepted++;
            assert_int_equal(sotto_device_list_verify(&got, out, n, &g_account.pub, "alice"),
                             SOTTO_ERR_INVALID_SIGNATURE);
            assert_zero(&got, sizeof got);
            out[i] ^= (uint8_t)(1u << bit);
        }
    }
    assert_int_equal(accepted, 0);
    assert_int_equal(sotto_device_list_verify(&got, out, n, &g_account.pub, "alice"), SOTTO_OK);
    /* another account key, another account name, a bad expected name */
    assert_int_equal(sotto_key_pair_generate(&other), SOTTO_OK);
    assert_int_equal(sotto_device_list_verify(&got, out, n, &other.pub, "alice"),
                     SOTTO_ERR_INVALID_SIGNATURE);
    sotto_key_pair_wipe(&other);
    assert_int_equal(sotto_device_list_verify(&got, out, n, &g_account.pub, "bob"),
                     SOTTO_ERR_DEVICE_LIST_ACCOUNT);
    assert_zero(&got, sizeof got);
    assert_int_equal(sotto_device_list_verify(&got, out, n, &g_account.pub, "Bob"),
                     SOTTO_ERR_INVALID_USERNAME);
    /* an account key with a wrong type byte never verifies */
    other.pub = g_account.pub;
    other.pub.bytes[0] = 0x06;
    assert_int_equal(sotto_device_list_verify(&got, out, n, &other.pub, "alice"),
                     SOTTO_ERR_INVALID_SIGNATURE);
}

static void test_truncations_and_trailing(void **state)
{
    sotto_device_list l, got;
    uint8_t out[SOTTO_DEVICE_LIST_MAX_BYTES + 8], stmt[SOTTO_DEVICE_LIST_STATEMENT_MAX_BYTES];
    uint8_t resigned[SOTTO_DEVICE_LIST_MAX_BYTES + 8];
    size_t n = 0, sn = 0;

    (void)state;
    kat_list(&l);
    assert_int_equal(sotto_device_list_sign(&l, &g_account, out, sizeof out, &n), SOTTO_OK);
    assert_int_equal(sotto_device_list_statement(&l, stmt, sizeof stmt, &sn), SOTTO_OK);
    for (size_t cut = 0; cut < n; cut++) {
        /* a copy of exactly `cut` bytes, so ASan sees any read past it */
        uint8_t *c = malloc(cut ? cut : 1);
        int rc;
        assert_non_null(c);
        memcpy(c, out, cut);
        rc = sotto_device_list_verify(&got, c, cut, &g_account.pub, "alice");
        assert_int_equal(rc, cut < 64 ? SOTTO_ERR_INVALID_MESSAGE : SOTTO_ERR_INVALID_SIGNATURE);
        assert_int_equal(sotto_device_list_parse(&got, c, cut, NULL), SOTTO_ERR_INVALID_MESSAGE);
        free(c);
    }
    /* truncated statements SIGNED by the account key: refused by the parser */
    for (size_t cut = 0; cut < sn; cut++) {
        size_t rn = sign_raw(resigned, stmt, cut);
        uint8_t *c = malloc(rn);
        assert_non_null(c);
        memcpy(c, resigned, rn);
        assert_int_equal(sotto_device_list_verify(&got, c, rn, &g_account.pub, "alice"),
                         SOTTO_ERR_INVALID_MESSAGE);
        free(c);
    }
    /* bytes after the signature */
    memcpy(out + n, "\x00\x01\x02", 3);
    assert_int_equal(sotto_device_list_parse(&got, out, n + 3, NULL), SOTTO_ERR_TRAILING_DATA);
    assert_int_equal(sotto_device_list_verify(&got, out, n + 3, &g_account.pub, "alice"),
                     SOTTO_ERR_INVALID_SIGNATURE);
    /* ... and signed trailing bytes inside the statement */
    memcpy(stmt + sn, "\x00", 1);
    n = sign_raw(resigned, stmt, sn + 1);
    assert_int_equal(sotto_device_list_verify(&got, resigned, n, &g_account.pub, "alice"),
                     SOTTO_ERR_TRAILING_DATA);
    assert_zero(&got, sizeof got);
}

/* Patches a valid statement, signs it with the account key, and expects
 * `want` from verify and from parse, with nothing handed out. */
static void expect_signed(const uint8_t *stmt, size_t sn, int want)
{
    uint8_t buf[SOTTO_DEVICE_LIST_MAX_BYTES + 128];
    sotto_device_list got;
    const uint8_t *sig = (const uint8_t *)1;
    size_t n;
    uint8_t *c;

    assert_true(sn + 64 <= sizeof buf);
    n = sign_raw(buf, stmt, sn);
    c = malloc(n);
    assert_non_null(c);
    memcpy(c, buf, n);
    assert_int_equal(sotto_device_list_verify(&got, c, n, &g_account.pub, "alice"), want);
    if (want != SOTTO_OK)
        assert_zero(&got, sizeof got);
    assert_int_equal(sotto_device_list_parse(&got, c, n, &sig), want);
    if (want != SOTTO_OK) {
        assert_null(sig);
        assert_zero(&got, sizeof got);
    } else {
        assert_ptr_equal(sig, c + n - 64);
    }
    free(c);
}

static void test_hostile_signed(void **state)
{
    sotto_device_list l, big;
    uint8_t base[SOTTO_DEVICE_LIST_STATEMENT_MAX_BYTES + 128], s[sizeof base];
    size_t sn = 0, bn = 0;

    (void)state;
    kat_list(&l);
    assert_int_equal(sotto_device_list_statement(&l, base, sizeof base, &sn), SOTTO_OK);
    expect_signed(base, sn, SOTTO_OK);

#define FRESH() memcpy(s, base, sn)
    /* label */
    FRESH();
    s[19] = '2'; /* SOTTO-DEVICE-LIST-V2 */
    expect_signed(s, sn, SOTTO_ERR_INVALID_MESSAGE);
    FRESH();
    s[20] = ' '; /* no 0x00 after the label */
    expect_signed(s, sn, SOTTO_ERR_INVALID_MESSAGE);
    /* username: bad character, NUL inside, too short (length byte 2) */
    FRESH();
    s[OFF_UL + 1] = 'A';
    expect_signed(s, sn, SOTTO_ERR_INVALID_USERNAME);
    FRESH();
    s[OFF_UL + 3] = '\0';
    expect_signed(s, sn, SOTTO_ERR_INVALID_USERNAME);
    FRESH();
    s[OFF_UL] = 2;
    expect_signed(s, sn, SOTTO_ERR_INVALID_USERNAME);
    FRESH();
    s[OFF_UL] = 33;
    expect_signed(s, sn, SOTTO_ERR_INVALID_USERNAME);
    /* version 0 */
    FRESH();
    memset(s + OFF_VERSION, 0, 8);
    expect_signed(s, sn, SOTTO_ERR_DEVICE_LIST_FIELD);
    /* n = 0 (with no entries), n = 4 (only 3 entries), n = 33 */
    FRESH();
    s[OFF_N] = 0;
    expect_signed(s, OFF_ENTRY(0), SOTTO_ERR_DEVICE_LIST_COUNT);
    FRESH();
    s[OFF_N] = 4;
    expect_signed(s, sn, SOTTO_ERR_INVALID_MESSAGE);
    FRESH();
    s[OFF_N] = 2;
    expect_signed(s, sn, SOTTO_ERR_TRAILING_DATA);
    /* device ids: zero, unsorted, duplicate */
    FRESH();
    memset(s + OFF_ENTRY(0), 0, 4);
    expect_signed(s, sn, SOTTO_ERR_DEVICE_LIST_FIELD);
    FRESH();
    s[OFF_ENTRY(1) + 3] = 7; /* 1, 7, 5 */
    expect_signed(s, sn, SOTTO_ERR_DEVICE_LIST_ORDER);
    FRESH();
    s[OFF_ENTRY(1) + 3] = 1; /* 1, 1, 5 */
    expect_signed(s, sn, SOTTO_ERR_DEVICE_LIST_ORDER);
    /* registration ids 0 and 16381 */
    FRESH();
    memset(s + OFF_ENTRY(2) + 4, 0, 4);
    expect_signed(s, sn, SOTTO_ERR_DEVICE_LIST_FIELD);
    FRESH();
    s[OFF_ENTRY(1) + 7] = 0xfd; /* 0x3ffd */
    expect_signed(s, sn, SOTTO_ERR_DEVICE_LIST_FIELD);
    /* identity key type byte; auth key: the neutral element (small order),
     * a non-canonical y, a point not on the curve */
    FRESH();
    s[OFF_ENTRY(2) + 8] = 0x06;
    expect_signed(s, sn, SOTTO_ERR_INVALID_KEY);
    FRESH();
    memset(s + OFF_ENTRY(0) + 41, 0, 32);
    s[OFF_ENTRY(0) + 41] = 1;
    expect_signed(s, sn, SOTTO_ERR_INVALID_KEY);
    FRESH();
    memset(s + OFF_ENTRY(1) + 41, 0xff, 32);
    s[OFF_ENTRY(1) + 41 + 31] = 0x7f;
    expect_signed(s, sn, SOTTO_ERR_INVALID_KEY);
    FRESH();
    s[OFF_ENTRY(1) + 41] ^= 1; /* most such y are not on the curve */
    {
        uint8_t p[32];
        memcpy(p, s + OFF_ENTRY(1) + 41, 32);
        if (crypto_core_ed25519_is_valid_point(p) == 0)
            expect_signed(s, sn, SOTTO_ERR_INVALID_KEY);
    }
#undef FRESH

    /* n = 33 over 32 entries: refused on the count, before any entry is
     * read; 33 real entries make a list longer than the maximum */
    memset(&big, 0, sizeof big);
    snprintf(big.username, sizeof big.username, "alice");
    big.version = 1;
    big.n_devices = SOTTO_DEVICE_LIST_MAX;
    for (uint32_t i = 0; i < SOTTO_DEVICE_LIST_MAX; i++)
        make_device(&big.devices[i], i + 1);
    assert_int_equal(sotto_device_list_statement(&big, s, sizeof s, &bn), SOTTO_OK);
    s[OFF_N] = 33;
    expect_signed(s, bn, SOTTO_ERR_DEVICE_LIST_COUNT);
    s[OFF_N] = 255;
    expect_signed(s, bn, SOTTO_ERR_DEVICE_LIST_COUNT);
    memcpy(s + bn, s + bn - 77, 77);
    s[OFF_ENTRY(32) + 3] = 33;
    s[OFF_N] = 33;
    expect_signed(s, bn + 77, SOTTO_ERR_INVALID_MESSAGE);
}

static void test_builder_refuses(void **state)
{
    sotto_device_list l;
    uint8_t out[SOTTO_DEVICE_LIST_MAX_BYTES];
    size_t n = 1;

    (void)state;
#define EXPECT(mutation, want)                                                                     \
    do {                                                                                           \
        kat_list(&l);                                                                              \
        mutation;                                                                                  \
        assert_int_equal(sotto_device_list_check(&l), want);                                       \
        n = 1;                                                                                     \
        assert_int_equal(sotto_device_list_sign(&l, &g_account, out, sizeof out, &n), want);       \
        assert_int_equal(n, 0);                                                                    \
        assert_zero(out, sizeof out);                                                              \
    } while (0)
    EXPECT(l.version = 0, SOTTO_ERR_DEVICE_LIST_FIELD);
    EXPECT(l.n_devices = 0, SOTTO_ERR_DEVICE_LIST_COUNT);
    EXPECT(l.n_devices = SOTTO_DEVICE_LIST_MAX + 1, SOTTO_ERR_DEVICE_LIST_COUNT);
    EXPECT(l.devices[0].device_id = 0, SOTTO_ERR_DEVICE_LIST_FIELD);
    EXPECT(l.devices[2].device_id = 2, SOTTO_ERR_DEVICE_LIST_ORDER);
    EXPECT(l.devices[1].device_id = 9, SOTTO_ERR_DEVICE_LIST_ORDER);
    EXPECT(l.devices[1].registration_id = 0, SOTTO_ERR_DEVICE_LIST_FIELD);
    EXPECT(l.devices[1].registration_id = SOTTO_REGISTRATION_ID_MAX + 1,
           SOTTO_ERR_DEVICE_LIST_FIELD);
    EXPECT(l.devices[2].identity_key.bytes[0] = 0x06, SOTTO_ERR_INVALID_KEY);
    EXPECT(memset(l.devices[2].auth_key, 0, 32), SOTTO_ERR_INVALID_KEY);
    EXPECT(snprintf(l.username, sizeof l.username, "al"), SOTTO_ERR_INVALID_USERNAME);
    EXPECT(snprintf(l.username, sizeof l.username, "Alice"), SOTTO_ERR_INVALID_USERNAME);
#undef EXPECT
}

static void test_find_diff_update(void **state)
{
    sotto_device_list v1, v2, v2b;
    sotto_device_list_diff d;
    const sotto_device_entry *e;

    (void)state;
    memset(&v1, 0, sizeof v1);
    snprintf(v1.username, sizeof v1.username, "bob");
    v1.version = 3;
    v1.n_devices = 3;
    make_device(&v1.devices[0], 1);
    make_device(&v1.devices[1], 2);
    make_device(&v1.devices[2], 3);
    v2 = v1;
    v2.version = 4;
    v2.devices[1] = v1.devices[2]; /* 1, 3, 4: 2 removed, 4 added */
    make_device(&v2.devices[2], 4);
    v2.devices[1].identity_key.bytes[5] ^= 1; /* 3 changed its identity key */
    assert_int_equal(sotto_device_list_check(&v1), SOTTO_OK);
    assert_int_equal(sotto_device_list_check(&v2), SOTTO_OK);

    assert_int_equal(sotto_device_list_diff_compute(&v1, &v2, &d), SOTTO_OK);
    assert_int_equal(d.n_added, 1);
    assert_int_equal(d.added[0], 4);
    assert_int_equal(d.n_removed, 1);
    assert_int_equal(d.removed[0], 2);
    assert_int_equal(d.n_changed, 1);
    assert_int_equal(d.changed[0], 3);
    assert_int_equal(sotto_device_list_diff_compute(&v2, &v1, &d), SOTTO_OK);
    assert_int_equal(d.n_added, 1);
    assert_int_equal(d.added[0], 2);
    assert_int_equal(d.removed[0], 4);
    assert_int_equal(sotto_device_list_diff_compute(&v1, &v1, &d), SOTTO_OK);
    assert_int_equal(d.n_added + d.n_removed + d.n_changed, 0);
    /* disjoint lists of 32 each: 32 added and 32 removed, within the arrays */
    {
        sotto_device_list a, b;
        memset(&a, 0, sizeof a);
        snprintf(a.username, sizeof a.username, "bob");
        a.version = 1;
        a.n_devices = b.n_devices = SOTTO_DEVICE_LIST_MAX;
        b = a;
        for (uint32_t i = 0; i < SOTTO_DEVICE_LIST_MAX; i++) {
            make_device(&a.devices[i], 2 * i + 1);
            make_device(&b.devices[i], 2 * i + 2);
        }
        assert_int_equal(sotto_device_list_diff_compute(&a, &b, &d), SOTTO_OK);
        assert_int_equal(d.n_added, 32);
        assert_int_equal(d.n_removed, 32);
        assert_int_equal(d.added[31], 64);
        assert_int_equal(d.removed[31], 63);
        b.devices[0].device_id = 100; /* not sorted */
        assert_int_equal(sotto_device_list_diff_compute(&a, &b, &d), SOTTO_ERR_INVALID_ARGUMENT);
        assert_zero(&d, sizeof d);
    }

    e = sotto_device_list_find(&v2, 4);
    assert_non_null(e);
    assert_ptr_equal(e, &v2.devices[2]);
    assert_null(sotto_device_list_find(&v2, 2));
    assert_null(sotto_device_list_find(&v2, 0));
    assert_null(sotto_device_list_find(NULL, 1));

    assert_int_equal(sotto_device_list_check_update(NULL, &v1), SOTTO_OK);
    assert_int_equal(sotto_device_list_check_update(&v1, &v2), SOTTO_OK);
    assert_int_equal(sotto_device_list_check_update(&v2, &v1), SOTTO_ERR_DEVICE_LIST_STALE);
    assert_int_equal(sotto_device_list_check_update(&v2, &v2), SOTTO_OK);
    v2b = v2;
    v2b.timestamp_ms++;
    assert_int_equal(sotto_device_list_check_update(&v2, &v2b), SOTTO_ERR_DEVICE_LIST_CONFLICT);
    v2b = v2;
    v2b.devices[2].capabilities = SOTTO_DEVICE_CAP_PQ;
    assert_int_equal(sotto_device_list_check_update(&v2, &v2b), SOTTO_ERR_DEVICE_LIST_CONFLICT);
    v2b = v2;
    v2b.n_devices = 2;
    assert_int_equal(sotto_device_list_check_update(&v2, &v2b), SOTTO_ERR_DEVICE_LIST_CONFLICT);
    v2b = v2;
    snprintf(v2b.username, sizeof v2b.username, "bobby");
    v2b.version = 99;
    assert_int_equal(sotto_device_list_check_update(&v2, &v2b), SOTTO_ERR_DEVICE_LIST_ACCOUNT);
    assert_int_equal(sotto_device_list_diff_compute(&v2, &v2b, &d), SOTTO_ERR_DEVICE_LIST_ACCOUNT);
}

/* docs/protocol.md: v2 safety numbers are the numeric fingerprint of
 * Signal with each side's ACCOUNT key as its one identity key and the
 * username as stable identifier; the device list does not enter. */
static void safety_number(char out[61], const sotto_key_pair *a, const sotto_key_pair *b)
{
    sotto_fingerprint *fp = NULL;
    assert_int_equal(sotto_fingerprint_create(&fp, SOTTO_FP_DEFAULT_ITERATIONS,
                                              SOTTO_FP_SCANNABLE_V1, "alice", &a->pub, 1, "bob",
                                              &b->pub, 1),
                     SOTTO_OK);
    snprintf(out, 61, "%s", sotto_fingerprint_display(fp));
    sotto_fingerprint_free(fp);
}

static void test_safety_number_account_keys(void **state)
{
    sotto_key_pair alice, bob, bob2;
    uint8_t priv[32];
    char before[61], after[61], other[61];
    sotto_device_list l1, l2, got;
    uint8_t s1[SOTTO_DEVICE_LIST_MAX_BYTES], s2[SOTTO_DEVICE_LIST_MAX_BYTES];
    size_t n1, n2;
    sotto_public_key pinned;

    (void)state;
    memset(priv, 0x01, 32);
    assert_int_equal(sotto_key_pair_from_private(&alice, priv), SOTTO_OK);
    memset(priv, 0x02, 32);
    assert_int_equal(sotto_key_pair_from_private(&bob, priv), SOTTO_OK);
    memset(priv, 0x03, 32);
    assert_int_equal(sotto_key_pair_from_private(&bob2, priv), SOTTO_OK);

    /* bob's list v1 (devices 1, 2) and v2 (device 2 removed, 3 linked) */
    memset(&l1, 0, sizeof l1);
    snprintf(l1.username, sizeof l1.username, "bob");
    l1.version = 1;
    l1.n_devices = 2;
    make_device(&l1.devices[0], 1);
    make_device(&l1.devices[1], 2);
    l2 = l1;
    l2.version = 2;
    make_device(&l2.devices[1], 3);
    assert_int_equal(sotto_device_list_sign(&l1, &bob, s1, sizeof s1, &n1), SOTTO_OK);
    assert_int_equal(sotto_device_list_sign(&l2, &bob, s2, sizeof s2, &n2), SOTTO_OK);

    pinned = bob.pub;
    assert_int_equal(sotto_device_list_verify(&got, s1, n1, &pinned, "bob"), SOTTO_OK);
    safety_number(before, &alice, &bob);
    assert_int_equal(sotto_device_list_verify(&got, s2, n2, &pinned, "bob"), SOTTO_OK);
    safety_number(after, &alice, &bob);
    assert_string_equal(before, after);
    /* pinned: keys 01..01 (alice) and 02..02 (bob), 5200 iterations */
    assert_string_equal(before, "828800297202350769672432564608927730064337144866603631894035");
    /* a new account key for bob changes it */
    safety_number(other, &alice, &bob2);
    assert_string_not_equal(before, other);
    sotto_key_pair_wipe(&alice);
    sotto_key_pair_wipe(&bob);
    sotto_key_pair_wipe(&bob2);
}

static void test_null_arguments(void **state)
{
    sotto_device_list l, got;
    sotto_device_list_diff d;
    uint8_t out[SOTTO_DEVICE_LIST_MAX_BYTES];
    size_t n = 0;

    (void)state;
    kat_list(&l);
    assert_int_equal(sotto_device_list_check(NULL), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_device_list_statement(NULL, out, sizeof out, &n),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_device_list_statement(&l, NULL, sizeof out, &n),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_device_list_sign(&l, NULL, out, sizeof out, &n),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_device_list_parse(NULL, out, 10, NULL), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_device_list_parse(&got, NULL, 10, NULL), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_device_list_verify(&got, out, 10, NULL, "alice"),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_device_list_verify(&got, out, 10, &g_account.pub, NULL),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_device_list_check_update(&l, NULL), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_device_list_diff_compute(NULL, &l, &d), SOTTO_ERR_INVALID_ARGUMENT);
    /* a username not NUL-terminated inside its array */
    memset(l.username, 'a', sizeof l.username);
    assert_int_equal(sotto_device_list_check(&l), SOTTO_ERR_INVALID_USERNAME);
}

/* The codes added for device lists and backups (-37 .. -47) each have
 * their own text. */
static void test_error_texts(void **state)
{
    (void)state;
    for (int a = SOTTO_ERR_RECOVERY_CODE; a <= SOTTO_ERR_DEVICE_LIST_COUNT; a++) {
        assert_string_not_equal(sotto_strerror(a), "unknown error");
        for (int b = SOTTO_ERR_RECOVERY_CODE; b < a; b++)
            assert_string_not_equal(sotto_strerror(a), sotto_strerror(b));
    }
    assert_int_equal(SOTTO_ERR_DEVICE_LIST_COUNT, -37);
    assert_int_equal(SOTTO_ERR_RECOVERY_CODE, -47);
    assert_string_equal(sotto_strerror(-1000), "unknown error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kat_statement),
        cmocka_unit_test(test_kat_signature),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_bit_flips_and_wrong_key),
        cmocka_unit_test(test_truncations_and_trailing),
        cmocka_unit_test(test_hostile_signed),
        cmocka_unit_test(test_builder_refuses),
        cmocka_unit_test(test_find_diff_update),
        cmocka_unit_test(test_safety_number_account_keys),
        cmocka_unit_test(test_null_arguments),
        cmocka_unit_test(test_error_texts),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
