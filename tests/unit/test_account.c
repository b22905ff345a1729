/*
 * Signed statements (sotto/account.h): known-answer tests for the two hex
 * examples of docs/api.md ("Authentication", 89 bytes; "Adding a device",
 * 95 bytes), the same examples read back from docs/api.md itself, sign and
 * verify round trips, a verify that fails for every single-bit change of
 * the signed fields, the key and the signature, and hostile input.
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

#include "sotto/account.h"
#include "testutil.h"

/* docs/api.md section 4: purpose login, exporter = 32 x 11, nonce = 32 x 22,
 * username "alice", device 1. Written out in full on purpose. */
static const char AUTH_KAT_HEX[] =
    "534f54544f2d415554482d5631" /* "SOTTO-AUTH-V1" */
    "00"
    "02"
    "1111111111111111111111111111111111111111111111111111111111111111"
    "2222222222222222222222222222222222222222222222222222222222222222"
    "05"
    "616c696365"
    "00000001";

/* docs/api.md "Adding a device": username "alice", auth_key = 32 x 33,
 * identity_key = 05 || 32 x 44, registration id 1234. */
static const char ADD_KAT_HEX[] =
    "534f54544f2d4144442d4445564943452d5631" /* "SOTTO-ADD-DEVICE-V1" */
    "00"
    "05"
    "616c696365"
    "3333333333333333333333333333333333333333333333333333333333333333"
    "05"
    "4444444444444444444444444444444444444444444444444444444444444444"
    "000004d2";

typedef struct kat_inputs {
    uint8_t exporter[32], nonce[32];
    uint8_t auth_key[32], identity_key[33];
} kat_inputs;

static void kat_fill(kat_inputs *k)
{
    memset(k->exporter, 0x11, 32);
    memset(k->nonce, 0x22, 32);
    memset(k->auth_key, 0x33, 32);
    k->identity_key[0] = 0x05;
    memset(k->identity_key + 1, 0x44, 32);
}

/* A NULL the compiler cannot see (for [static N] parameters). */
static const uint8_t *volatile null_bytes;

static int setup(void **state)
{
    (void)state;
    return sotto_init() == SOTTO_OK ? 0 : -1;
}

static void test_auth_kat(void **state)
{
    kat_inputs k;
    uint8_t out[SOTTO_AUTH_TRANSCRIPT_MAX_BYTES];
    size_t n = 0, want_len = 0;
    uint8_t *want = tu_unhex(AUTH_KAT_HEX, &want_len);

    (void)state;
    kat_fill(&k);
    assert_int_equal(want_len, 89);
    assert_int_equal(sotto_auth_transcript(out, sizeof out, &n, SOTTO_AUTH_PURPOSE_LOGIN,
                                           k.exporter, k.nonce, "alice", 1),
                     SOTTO_OK);
    assert_int_equal(n, 89);
    assert_memory_equal(out, want, 89);
    /* register differs only in the purpose byte */
    assert_int_equal(sotto_auth_transcript(out, sizeof out, &n, SOTTO_AUTH_PURPOSE_REGISTER,
                                           k.exporter, k.nonce, "alice", 1),
                     SOTTO_OK);
    want[14] = 0x01;
    assert_memory_equal(out, want, 89);
    /* device id is big-endian */
    assert_int_equal(sotto_auth_transcript(out, sizeof out, &n, SOTTO_AUTH_PURPOSE_LOGIN,
                                           k.exporter, k.nonce, "alice", 0x01020304u),
                     SOTTO_OK);
    assert_memory_equal(out + 85, "\x01\x02\x03\x04", 4);
    free(want);
}

static void test_add_device_kat(void **state)
{
    kat_inputs k;
    uint8_t out[SOTTO_ADD_DEVICE_STATEMENT_MAX_BYTES];
    size_t n = 0, want_len = 0;
    uint8_t *want = tu_unhex(ADD_KAT_HEX, &want_len);

    (void)state;
    kat_fill(&k);
    assert_int_equal(want_len, 95);
    assert_int_equal(
        sotto_add_device_statement(out, sizeof out, &n, "alice", k.auth_key, k.identity_key, 1234),
        SOTTO_OK);
    assert_int_equal(n, 95);
    assert_memory_equal(out, want, 95);
    free(want);
}

/*
 * Reads the example block that follows `marker` in docs/api.md and expands
 * it: plain hex tokens, and "XX…XX (N)" meaning N bytes of XX.
 */
static uint8_t *docs_example(const char *doc, const char *marker, size_t *len)
{
    const char *p = strstr(doc, marker), *end;
    uint8_t *out = calloc(1, 256);
    size_t n = 0;

    assert_non_null(out);
    assert_non_null(p);
    p = strstr(p, "```\n");
    assert_non_null(p);
    p += 4;
    end = strstr(p, "```");
    assert_non_null(end);
    while (p < end) {
        char tok[128];
        size_t tl = 0;
        while (p < end && (*p == ' ' || *p == '\n'))
            p++;
        while (p < end && *p != ' ' && *p != '\n' && tl < sizeof tok - 1)
            tok[tl++] = *p++;
        tok[tl] = '\0';
        if (tl == 0)
            break;
        if (strstr(tok, "\xe2\x80\xa6") != NULL) { /* "XX…XX" then "(N)" */
            uint8_t b;
            unsigned count = 0;
            tu_unhex_into((char[]){tok[0], tok[1], '\0'}, &b, 1);
            while (p < end && *p == ' ')
                p++;
            assert_int_equal(sscanf(p, "(%u)", &count), 1);
            assert_true(count > 0 && n + count <= 256);
            memset(out + n, b, count);
            n += count;
            p = strchr(p, ')') + 1;
        } else {
            size_t bl = 0;
            uint8_t *b = tu_unhex(tok, &bl);
            assert_true(n + bl <= 256);
            memcpy(out + n, b, bl);
            n += bl;
            free(b);
        }
    }
    *len = n;
    return out;
}

/* The examples as printed in docs/api.md equal what the library builds. */
static void test_docs_examples(void **state)
{
    /* tests/unit/test_account.c -> docs/api.md */
    char path[4096];
    const char *slash = strrchr(__FILE__, '/');
    size_t dl, n = 0, doc_len = 0;
    uint8_t *doc, *ex, out[SOTTO_ADD_DEVICE_STATEMENT_MAX_BYTES];
    kat_inputs k;

    (void)state;
    if (slash == NULL || __FILE__[0] != '/')
        skip();
    dl = (size_t)(slash - __FILE__);
    assert_true(snprintf(path, sizeof path, "%.*s/../../docs/api.md", (int)dl, __FILE__) <
                (int)sizeof path);
    doc = tu_read_file(path, &doc_len);
    assert_non_null(doc);
    doc = realloc(doc, doc_len + 1);
    assert_non_null(doc);
    doc[doc_len] = '\0';
    kat_fill(&k);

    ex = docs_example((const char *)doc, "device 1),\n89 bytes:", &dl);
    assert_int_equal(dl, 89);
    assert_int_equal(sotto_auth_transcript(out, sizeof out, &n, SOTTO_AUTH_PURPOSE_LOGIN,
                                           k.exporter, k.nonce, "alice", 1),
                     SOTTO_OK);
    assert_int_equal(n, dl);
    assert_memory_equal(out, ex, dl);
    free(ex);

    ex = docs_example((const char *)doc, "registration id 1234), 95 bytes:", &dl);
    assert_int_equal(dl, 95);
    assert_int_equal(
        sotto_add_device_statement(out, sizeof out, &n, "alice", k.auth_key, k.identity_key, 1234),
        SOTTO_OK);
    assert_int_equal(n, dl);
    assert_memory_equal(out, ex, dl);
    free(ex);
    free(doc);
}

/* A fixed signer, so signatures are known answers too (Ed25519 is
 * deterministic). */
static void signer(uint8_t pk[32], uint8_t sk[64], uint8_t seed_byte)
{
    uint8_t seed[crypto_sign_SEEDBYTES];
    memset(seed, seed_byte, sizeof seed);
    assert_int_equal(crypto_sign_seed_keypair(pk, sk, seed), 0);
}

static void test_auth_sign_verify(void **state)
{
    kat_inputs k;
    uint8_t pk[32], sk[64], sig[64], ref[64];
    size_t kat_len = 0;
    uint8_t *kat = tu_unhex(AUTH_KAT_HEX, &kat_len);

    (void)state;
    kat_fill(&k);
    signer(pk, sk, 0x5a);
    assert_int_equal(
        sotto_auth_sign(sig, sk, SOTTO_AUTH_PURPOSE_LOGIN, k.exporter, k.nonce, "alice", 1),
        SOTTO_OK);
    /* pure Ed25519 over exactly the 89 bytes of the example */
    assert_int_equal(crypto_sign_detached(ref, NULL, kat, kat_len, sk), 0);
    assert_memory_equal(sig, ref, 64);
    assert_int_equal(crypto_sign_verify_detached(sig, kat, kat_len, pk), 0);
    assert_int_equal(
        sotto_auth_verify(pk, SOTTO_AUTH_PURPOSE_LOGIN, k.exporter, k.nonce, "alice", 1, sig),
        SOTTO_OK);
    /* not valid for the other purpose, another device, another user */
    assert_int_equal(
        sotto_auth_verify(pk, SOTTO_AUTH_PURPOSE_REGISTER, k.exporter, k.nonce, "alice", 1, sig),
        SOTTO_ERR_INVALID_SIGNATURE);
    assert_int_equal(
        sotto_auth_verify(pk, SOTTO_AUTH_PURPOSE_LOGIN, k.exporter, k.nonce, "alice", 2, sig),
        SOTTO_ERR_INVALID_SIGNATURE);
    assert_int_equal(
        sotto_auth_verify(pk, SOTTO_AUTH_PURPOSE_LOGIN, k.exporter, k.nonce, "alicf", 1, sig),
        SOTTO_ERR_INVALID_SIGNATURE);
    free(kat);
    sodium_memzero(sk, sizeof sk);
}

static void test_add_device_sign_verify(void **state)
{
    kat_inputs k;
    uint8_t pk[32], sk[64], sig[64], ref[64];
    size_t kat_len = 0;
    uint8_t *kat = tu_unhex(ADD_KAT_HEX, &kat_len);

    (void)state;
    kat_fill(&k);
    signer(pk, sk, 0x6b);
    assert_int_equal(sotto_add_device_sign(sig, sk, "alice", k.auth_key, k.identity_key, 1234),
                     SOTTO_OK);
    assert_int_equal(crypto_sign_detached(ref, NULL, kat, kat_len, sk), 0);
    assert_memory_equal(sig, ref, 64);
    assert_int_equal(sotto_add_device_verify(pk, "alice", k.auth_key, k.identity_key, 1234, sig),
                     SOTTO_OK);
    /* an auth transcript signature is no add-device statement signature */
    assert_int_equal(
        sotto_auth_sign(sig, sk, SOTTO_AUTH_PURPOSE_LOGIN, k.exporter, k.nonce, "alice", 1),
        SOTTO_OK);
    assert_int_equal(sotto_add_device_verify(pk, "alice", k.auth_key, k.identity_key, 1234, sig),
                     SOTTO_ERR_INVALID_SIGNATURE);
    free(kat);
    sodium_memzero(sk, sizeof sk);
}

/* Every single-bit change of a signed field, of the key or of the
 * signature makes verification fail. */
static void test_auth_bit_flips(void **state)
{
    kat_inputs k;
    uint8_t pk[32], sk[64], sig[64];
    char user[] = "alice.b_9";
    unsigned fails = 0;

    (void)state;
    kat_fill(&k);
    signer(pk, sk, 0x01);
    assert_int_equal(
        sotto_auth_sign(sig, sk, SOTTO_AUTH_PURPOSE_LOGIN, k.exporter, k.nonce, user, 7), SOTTO_OK);
    assert_int_equal(
        sotto_auth_verify(pk, SOTTO_AUTH_PURPOSE_LOGIN, k.exporter, k.nonce, user, 7, sig),
        SOTTO_OK);
    for (unsigned bit = 0; bit < 8 * 32; bit++) {
        k.exporter[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_int_not_equal(
            sotto_auth_verify(pk, SOTTO_AUTH_PURPOSE_LOGIN, k.exporter, k.nonce, user, 7, sig),
            SOTTO_OK);
        k.exporter[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        k.nonce[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_int_not_equal(
            sotto_auth_verify(pk, SOTTO_AUTH_PURPOSE_LOGIN, k.exporter, k.nonce, user, 7, sig),
            SOTTO_OK);
        k.nonce[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        pk[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_int_not_equal(
            sotto_auth_verify(pk, SOTTO_AUTH_PURPOSE_LOGIN, k.exporter, k.nonce, user, 7, sig),
            SOTTO_OK);
        pk[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        fails += 3;
    }
    for (unsigned bit = 0; bit < 8 * 64; bit++) {
        sig[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_int_equal(
            sotto_auth_verify(pk, SOTTO_AUTH_PURPOSE_LOGIN, k.exporter, k.nonce, user, 7, sig),
            SOTTO_ERR_INVALID_SIGNATURE);
        sig[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        fails++;
    }
    for (unsigned bit = 0; bit < 8 * (sizeof user - 1); bit++) {
        user[bit / 8] ^= (char)(1u << (bit % 8));
        assert_int_not_equal(
            sotto_auth_verify(pk, SOTTO_AUTH_PURPOSE_LOGIN, k.exporter, k.nonce, user, 7, sig),
            SOTTO_OK);
        user[bit / 8] ^= (char)(1u << (bit % 8));
        fails++;
    }
    for (unsigned bit = 0; bit < 32; bit++) {
        assert_int_not_equal(sotto_auth_verify(pk, SOTTO_AUTH_PURPOSE_LOGIN, k.exporter, k.nonce,
                                               user, 7u ^ (1u << bit), sig),
                             SOTTO_OK);
        fails++;
    }
    for (unsigned bit = 0; bit < 8; bit++) {
        assert_int_not_equal(sotto_auth_verify(pk,
                                               (uint8_t)(SOTTO_AUTH_PURPOSE_LOGIN ^ (1u << bit)),
                                               k.exporter, k.nonce, user, 7, sig),
                             SOTTO_OK);
        fails++;
    }
    assert_int_equal(fails, 3 * 256 + 512 + 72 + 32 + 8);
    /* and the untouched inputs still verify */
    assert_int_equal(
        sotto_auth_verify(pk, SOTTO_AUTH_PURPOSE_LOGIN, k.exporter, k.nonce, user, 7, sig),
        SOTTO_OK);
    sodium_memzero(sk, sizeof sk);
}

static void test_add_device_bit_flips(void **state)
{
    kat_inputs k;
    uint8_t pk[32], sk[64], sig[64];
    char user[] = "bob";
    const uint32_t regid = 16380;

    (void)state;
    kat_fill(&k);
    signer(pk, sk, 0x02);
    assert_int_equal(sotto_add_device_sign(sig, sk, user, k.auth_key, k.identity_key, regid),
                     SOTTO_OK);
    assert_int_equal(sotto_add_device_verify(pk, user, k.auth_key, k.identity_key, regid, sig),
                     SOTTO_OK);
    for (unsigned bit = 0; bit < 8 * 32; bit++) {
        k.auth_key[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_int_not_equal(
            sotto_add_device_verify(pk, user, k.auth_key, k.identity_key, regid, sig), SOTTO_OK);
        k.auth_key[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        pk[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_int_not_equal(
            sotto_add_device_verify(pk, user, k.auth_key, k.identity_key, regid, sig), SOTTO_OK);
        pk[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    for (unsigned bit = 0; bit < 8 * 33; bit++) {
        k.identity_key[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_int_not_equal(
            sotto_add_device_verify(pk, user, k.auth_key, k.identity_key, regid, sig), SOTTO_OK);
        k.identity_key[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    for (unsigned bit = 0; bit < 8 * 64; bit++) {
        sig[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_int_equal(sotto_add_device_verify(pk, user, k.auth_key, k.identity_key, regid, sig),
                         SOTTO_ERR_INVALID_SIGNATURE);
        sig[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    for (unsigned bit = 0; bit < 8 * (sizeof user - 1); bit++) {
        user[bit / 8] ^= (char)(1u << (bit % 8));
        assert_int_not_equal(
            sotto_add_device_verify(pk, user, k.auth_key, k.identity_key, regid, sig), SOTTO_OK);
        user[bit / 8] ^= (char)(1u << (bit % 8));
    }
    for (unsigned bit = 0; bit < 32; bit++)
        assert_int_not_equal(
            sotto_add_device_verify(pk, user, k.auth_key, k.identity_key, regid ^ (1u << bit), sig),
            SOTTO_OK);
    assert_int_equal(sotto_add_device_verify(pk, user, k.auth_key, k.identity_key, regid, sig),
                     SOTTO_OK);
    sodium_memzero(sk, sizeof sk);
}

static void test_usernames(void **state)
{
    /* 33 bytes with no terminator: must not be read past (ASan build). */
    char *unterminated = malloc(SOTTO_USERNAME_MAX_LEN + 1);

    (void)state;
    assert_non_null(unterminated);
    memset(unterminated, 'a', SOTTO_USERNAME_MAX_LEN + 1);
    assert_true(sotto_username_valid("abc"));
    assert_true(sotto_username_valid("a_b.c0123456789012345678901234_z"));   /* 32 */
    assert_false(sotto_username_valid("a_b.c0123456789012345678901234_zz")); /* 33 */
    assert_false(sotto_username_valid(unterminated));
    assert_false(sotto_username_valid(NULL));
    assert_false(sotto_username_valid(""));
    assert_false(sotto_username_valid("ab"));
    assert_false(sotto_username_valid("Alice"));
    assert_false(sotto_username_valid("al ice"));
    assert_false(sotto_username_valid("al-ice"));
    assert_false(sotto_username_valid("al\xc3\xa9ice"));
    assert_false(sotto_username_valid("alice\n"));
    assert_string_equal(sotto_strerror(SOTTO_ERR_INVALID_USERNAME), "invalid username");
    free(unterminated);
}

/* On every error: the output buffer is zeroed and the length is 0. */
static void expect_no_output(const uint8_t *out, size_t cap, size_t n)
{
    assert_int_equal(n, 0);
    for (size_t i = 0; i < cap; i++)
        assert_int_equal(out[i], 0);
}

static void test_auth_hostile(void **state)
{
    kat_inputs k;
    uint8_t out[SOTTO_AUTH_TRANSCRIPT_MAX_BYTES], sk[64], pk[32], sig[64];
    size_t n;
    const char *max_user = "a_b.c0123456789012345678901234_z";
    static const struct {
        const char *user;
        uint8_t purpose;
        uint32_t device_id;
        int rc;
    } bad[] = {
        {"alice", 0x00, 1, SOTTO_ERR_INVALID_ARGUMENT},
        {"alice", 0x03, 1, SOTTO_ERR_INVALID_ARGUMENT},
        {"alice", 0xff, 1, SOTTO_ERR_INVALID_ARGUMENT},
        {"alice", SOTTO_AUTH_PURPOSE_LOGIN, 0, SOTTO_ERR_INVALID_ARGUMENT},
        {"", SOTTO_AUTH_PURPOSE_LOGIN, 1, SOTTO_ERR_INVALID_USERNAME},
        {"al", SOTTO_AUTH_PURPOSE_LOGIN, 1, SOTTO_ERR_INVALID_USERNAME},
        {"a_b.c0123456789012345678901234_zz", SOTTO_AUTH_PURPOSE_LOGIN, 1,
         SOTTO_ERR_INVALID_USERNAME},
        {"Alice", SOTTO_AUTH_PURPOSE_REGISTER, 1, SOTTO_ERR_INVALID_USERNAME},
        {NULL, SOTTO_AUTH_PURPOSE_LOGIN, 1, SOTTO_ERR_INVALID_ARGUMENT},
    };

    (void)state;
    kat_fill(&k);
    signer(pk, sk, 0x03);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(out, 0xaa, sizeof out);
        n = 12345;
        assert_int_equal(sotto_auth_transcript(out, sizeof out, &n, bad[i].purpose, k.exporter,
                                               k.nonce, bad[i].user, bad[i].device_id),
                         bad[i].rc);
        expect_no_output(out, sizeof out, n);
        memset(sig, 0xaa, sizeof sig);
        assert_int_equal(sotto_auth_sign(sig, sk, bad[i].purpose, k.exporter, k.nonce, bad[i].user,
                                         bad[i].device_id),
                         bad[i].rc);
        expect_no_output(sig, sizeof sig, 0);
        assert_int_equal(sotto_auth_verify(pk, bad[i].purpose, k.exporter, k.nonce, bad[i].user,
                                           bad[i].device_id, sig),
                         bad[i].rc);
    }
    /* The maximum fits exactly; one byte less does not. */
    assert_int_equal(sotto_auth_transcript(out, sizeof out, &n, SOTTO_AUTH_PURPOSE_LOGIN,
                                           k.exporter, k.nonce, max_user, 0xffffffffu),
                     SOTTO_OK);
    assert_int_equal(n, SOTTO_AUTH_TRANSCRIPT_MAX_BYTES);
    memset(out, 0xaa, sizeof out);
    n = 1;
    assert_int_equal(sotto_auth_transcript(out, sizeof out - 1, &n, SOTTO_AUTH_PURPOSE_LOGIN,
                                           k.exporter, k.nonce, max_user, 1),
                     SOTTO_ERR_BUFFER_TOO_SMALL);
    expect_no_output(out, sizeof out - 1, n);
    assert_int_equal(out[sizeof out - 1], 0xaa); /* nothing written past out_cap */
    memset(out, 0xaa, sizeof out);
    assert_int_equal(sotto_auth_transcript(out, 88, &n, SOTTO_AUTH_PURPOSE_LOGIN, k.exporter,
                                           k.nonce, "alice", 1),
                     SOTTO_ERR_BUFFER_TOO_SMALL);
    expect_no_output(out, 88, n);
    assert_int_equal(sotto_auth_transcript(out, 0, &n, SOTTO_AUTH_PURPOSE_LOGIN, k.exporter,
                                           k.nonce, "alice", 1),
                     SOTTO_ERR_BUFFER_TOO_SMALL);
    /* NULLs */
    assert_int_equal(sotto_auth_transcript(NULL, 100, &n, SOTTO_AUTH_PURPOSE_LOGIN, k.exporter,
                                           k.nonce, "alice", 1),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(n, 0);
    assert_int_equal(sotto_auth_transcript(out, sizeof out, NULL, SOTTO_AUTH_PURPOSE_LOGIN,
                                           k.exporter, k.nonce, "alice", 1),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_auth_transcript(out, sizeof out, &n, SOTTO_AUTH_PURPOSE_LOGIN,
                                           null_bytes, k.nonce, "alice", 1),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_auth_transcript(out, sizeof out, &n, SOTTO_AUTH_PURPOSE_LOGIN,
                                           k.exporter, null_bytes, "alice", 1),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(
        sotto_auth_sign(sig, null_bytes, SOTTO_AUTH_PURPOSE_LOGIN, k.exporter, k.nonce, "alice", 1),
        SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_auth_verify(null_bytes, SOTTO_AUTH_PURPOSE_LOGIN, k.exporter, k.nonce,
                                       "alice", 1, sig),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_auth_verify(pk, SOTTO_AUTH_PURPOSE_LOGIN, k.exporter, k.nonce, "alice",
                                       1, null_bytes),
                     SOTTO_ERR_INVALID_ARGUMENT);
    sodium_memzero(sk, sizeof sk);
}

static void test_add_device_hostile(void **state)
{
    kat_inputs k;
    uint8_t out[SOTTO_ADD_DEVICE_STATEMENT_MAX_BYTES], sk[64], pk[32], sig[64];
    uint8_t bad_idk[33];
    size_t n;
    const char *max_user = "a_b.c0123456789012345678901234_z";

    (void)state;
    kat_fill(&k);
    signer(pk, sk, 0x04);
    memcpy(bad_idk, k.identity_key, 33);
    bad_idk[0] = 0x06;
    struct {
        const char *user;
        const uint8_t *idk;
        uint32_t regid;
        int rc;
    } bad[] = {
        {"alice", bad_idk, 1234, SOTTO_ERR_INVALID_KEY},
        {"alice", k.identity_key, 0, SOTTO_ERR_INVALID_ARGUMENT},
        {"alice", k.identity_key, SOTTO_REGISTRATION_ID_MAX + 1, SOTTO_ERR_INVALID_ARGUMENT},
        {"alice", k.identity_key, 0xffffffffu, SOTTO_ERR_INVALID_ARGUMENT},
        {"al", k.identity_key, 1234, SOTTO_ERR_INVALID_USERNAME},
        {"a_b.c0123456789012345678901234_zz", k.identity_key, 1234, SOTTO_ERR_INVALID_USERNAME},
        {"ali ce", k.identity_key, 1234, SOTTO_ERR_INVALID_USERNAME},
        {NULL, k.identity_key, 1234, SOTTO_ERR_INVALID_ARGUMENT},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(out, 0xaa, sizeof out);
        n = 12345;
        assert_int_equal(sotto_add_device_statement(out, sizeof out, &n, bad[i].user, k.auth_key,
                                                    bad[i].idk, bad[i].regid),
                         bad[i].rc);
        expect_no_output(out, sizeof out, n);
        memset(sig, 0xaa, sizeof sig);
        assert_int_equal(
            sotto_add_device_sign(sig, sk, bad[i].user, k.auth_key, bad[i].idk, bad[i].regid),
            bad[i].rc);
        expect_no_output(sig, sizeof sig, 0);
        assert_int_equal(
            sotto_add_device_verify(pk, bad[i].user, k.auth_key, bad[i].idk, bad[i].regid, sig),
            bad[i].rc);
    }
    /* bounds that are fine */
    assert_int_equal(sotto_add_device_statement(out, sizeof out, &n, max_user, k.auth_key,
                                                k.identity_key, SOTTO_REGISTRATION_ID_MAX),
                     SOTTO_OK);
    assert_int_equal(n, SOTTO_ADD_DEVICE_STATEMENT_MAX_BYTES);
    assert_int_equal(
        sotto_add_device_statement(out, sizeof out, &n, "abc", k.auth_key, k.identity_key, 1),
        SOTTO_OK);
    assert_int_equal(n, 93);
    memset(out, 0xaa, sizeof out);
    assert_int_equal(
        sotto_add_device_statement(out, 94, &n, "alice", k.auth_key, k.identity_key, 1234),
        SOTTO_ERR_BUFFER_TOO_SMALL);
    expect_no_output(out, 94, n);
    assert_int_equal(out[94], 0xaa);
    /* NULLs */
    assert_int_equal(
        sotto_add_device_statement(out, sizeof out, &n, "alice", null_bytes, k.identity_key, 1234),
        SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(
        sotto_add_device_statement(out, sizeof out, &n, "alice", k.auth_key, null_bytes, 1234),
        SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(
        sotto_add_device_sign(sig, null_bytes, "alice", k.auth_key, k.identity_key, 1234),
        SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(
        sotto_add_device_verify(null_bytes, "alice", k.auth_key, k.identity_key, 1234, sig),
        SOTTO_ERR_INVALID_ARGUMENT);
    sodium_memzero(sk, sizeof sk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auth_kat),
        cmocka_unit_test(test_add_device_kat),
        cmocka_unit_test(test_docs_examples),
        cmocka_unit_test(test_auth_sign_verify),
        cmocka_unit_test(test_add_device_sign_verify),
        cmocka_unit_test(test_auth_bit_flips),
        cmocka_unit_test(test_add_device_bit_flips),
        cmocka_unit_test(test_usernames),
        cmocka_unit_test(test_auth_hostile),
        cmocka_unit_test(test_add_device_hostile),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
