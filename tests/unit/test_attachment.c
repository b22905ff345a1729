/*
 * tests/unit/test_attachment.c -- Signal-style attachment encryption
 * (sotto/attachment.h): known answers computed independently (Python
 * `cryptography`: AES-256-CBC/PKCS7, HMAC-SHA256, SHA-256 over the
 * documented blob layout), streaming round trips with odd chunkings, and
 * hostile blobs (tampered, truncated, extended, wrong digest, wrong size)
 * that must fail without a byte of plaintext.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "sotto/attachment.h"
#include "sotto/keys.h"
#include "testutil.h"

static void fixed_key(uint8_t key[64], uint8_t iv[16])
{
    for (int i = 0; i < 64; i++)
        key[i] = (uint8_t)i;
    for (int i = 0; i < 16; i++)
        iv[i] = (uint8_t)(0xa0 + i);
}

static uint8_t *pattern(size_t n)
{
    uint8_t *p = malloc(n ? n : 1);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)((i * 7) & 0xff);
    return p;
}

/* Encrypts pt with the streaming API, feeding `step` bytes at a time and
 * draining final with a small buffer. Returns the blob (malloc). */
static uint8_t *encrypt_stream(const uint8_t *pt, size_t n, size_t step, const uint8_t *key,
                               const uint8_t *iv, uint8_t key_out[64], uint8_t digest[32],
                               size_t *blob_len)
{
    sotto_attachment_encryptor *enc = NULL;
    size_t cap = (size_t)sotto_attachment_blob_size(n);
    uint8_t *blob = malloc(cap);
    uint8_t *buf = malloc(step + SOTTO_ATTACHMENT_UPDATE_SLACK + 64);
    size_t len = 0, w, pos = 0;
    bool done = false;

    assert_non_null(blob);
    assert_non_null(buf);
    if (key != NULL)
        assert_int_equal(sotto_attachment_encryptor_new_with_key(&enc, n, key, iv), SOTTO_OK);
    else
        assert_int_equal(sotto_attachment_encryptor_new(&enc, n, key_out), SOTTO_OK);
    while (pos < n) {
        size_t c = n - pos < step ? n - pos : step;
        assert_int_equal(sotto_attachment_encrypt_update(enc, pt + pos, c, buf,
                                                         c + SOTTO_ATTACHMENT_UPDATE_SLACK, &w),
                         SOTTO_OK);
        assert_true(len + w <= cap);
        memcpy(blob + len, buf, w);
        len += w;
        pos += c;
    }
    while (!done) {
        assert_int_equal(sotto_attachment_encrypt_final(
                             enc, buf, SOTTO_ATTACHMENT_UPDATE_SLACK + 64, &w, &done, digest),
                         SOTTO_OK);
        assert_true(len + w <= cap);
        memcpy(blob + len, buf, w);
        len += w;
    }
    assert_int_equal(len, cap);
    sotto_attachment_encryptor_free(enc);
    free(buf);
    *blob_len = len;
    return blob;
}

static void test_padded_size(void **state)
{
    (void)state;
    assert_int_equal(sotto_attachment_padded_size(0), 541);
    assert_int_equal(sotto_attachment_padded_size(1), 541);
    assert_int_equal(sotto_attachment_padded_size(541), 541);
    assert_int_equal(sotto_attachment_padded_size(542), 568);
    assert_int_equal(sotto_attachment_padded_size(1000), 1020);
    assert_int_equal(sotto_attachment_padded_size(4096), 4201);
    assert_int_equal(sotto_attachment_padded_size(100000), 100155);
    assert_int_equal(sotto_attachment_padded_size(1048576), 1093831);
    assert_int_equal(sotto_attachment_padded_size(SOTTO_ATTACHMENT_MAX_SIZE + 1), 0);
    /* 16 IV + (541/16+1)*16 = 544 ciphertext + 32 MAC */
    assert_int_equal(sotto_attachment_blob_size(0), 592);
    assert_int_equal(sotto_attachment_blob_size(1000), 16 + 1024 + 32);
    assert_int_equal(sotto_attachment_blob_size(SOTTO_ATTACHMENT_MAX_SIZE + 1), 0);
    for (uint64_t s = 1; s < 200000; s = s * 3 + 1)
        assert_true(sotto_attachment_padded_size(s) >= s);
}

static void kat(size_t n, const char *mac_hex, const char *digest_hex, const char *ct0_hex)
{
    uint8_t key[64], iv[16], digest[32], mac[32], exp_digest[32], ct0[16];
    uint8_t *pt = pattern(n), *out;
    size_t blob_len;
    uint8_t *blob;

    fixed_key(key, iv);
    tu_unhex_into(mac_hex, mac, 32);
    tu_unhex_into(digest_hex, exp_digest, 32);
    tu_unhex_into(ct0_hex, ct0, 16);
    for (size_t step = 1; step <= 4096; step *= 8) {
        blob = encrypt_stream(pt, n, step, key, iv, NULL, digest, &blob_len);
        assert_memory_equal(blob, iv, 16);
        assert_memory_equal(blob + 16, ct0, 16);
        assert_memory_equal(blob + blob_len - 32, mac, 32);
        assert_memory_equal(digest, exp_digest, 32);
        out = malloc(n ? n : 1);
        assert_int_equal(sotto_attachment_decrypt(out, n, key, digest, blob, blob_len), SOTTO_OK);
        assert_memory_equal(out, pt, n);
        free(out);
        free(blob);
    }
    free(pt);
}

static void test_known_answers(void **state)
{
    (void)state;
    kat(0, "ff9e0c7763cc2d9527b89200428c190d1d92f3e6afdf31bbe63ea94627e7afbe",
        "e5e000907491ae9fe41a93d304b887365e37ae20497e765f09bc389fe924c434",
        "dc9f01fd76b87c0d0f4be8850b0bece0");
    kat(1000, "bbaf9e1a2bcec01a75ebd262e8a43c35b293ae23d7b6fdf3f74c8df731faa6b7",
        "9f33b14dc4140784e1de8f7665f095e2c7b457df6814fe8f82d71815bbc4a9a1",
        "4f45ae3d782c6cfb375f3be85f9501ab");
}

/* Streaming decryption with a given chunking; returns rc of final. */
static int decrypt_stream(const uint8_t *blob, size_t blob_len, size_t step, uint64_t size,
                          const uint8_t key[64], const uint8_t digest[32], uint8_t *out,
                          size_t *out_len)
{
    sotto_attachment_decryptor *dec = NULL;
    uint8_t *buf = malloc(step + SOTTO_ATTACHMENT_UPDATE_SLACK);
    size_t pos = 0, w, len = 0;
    int rc;

    assert_non_null(buf);
    assert_int_equal(sotto_attachment_decryptor_new(&dec, size, key, digest), SOTTO_OK);
    while (pos < blob_len) {
        size_t c = blob_len - pos < step ? blob_len - pos : step;
        rc = sotto_attachment_decrypt_update(dec, blob + pos, c, buf,
                                             c + SOTTO_ATTACHMENT_UPDATE_SLACK, &w);
        if (rc != SOTTO_OK)
            goto out;
        assert_true(len + w <= size);
        memcpy(out + len, buf, w);
        len += w;
        pos += c;
    }
    rc = sotto_attachment_decrypt_final(dec, buf, SOTTO_ATTACHMENT_UPDATE_SLACK, &w);
    if (rc == SOTTO_OK) {
        assert_true(len + w <= size);
        memcpy(out + len, buf, w);
        len += w;
    }
out:
    *out_len = len;
    sotto_attachment_decryptor_free(dec);
    free(buf);
    return rc;
}

static void test_round_trips(void **state)
{
    static const size_t sizes[] = {0, 1, 15, 16, 17, 540, 541, 542, 4095, 4096, 70001, 300000};
    static const size_t steps[] = {1, 7, 16, 1000, 65536};
    (void)state;

    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i], blob_len, out_len;
        uint8_t key[64], digest[32];
        uint8_t *pt = malloc(n ? n : 1), *out = malloc(n ? n : 1);
        uint8_t *blob;

        randombytes_buf(pt, n);
        blob = encrypt_stream(pt, n, n > 1000 ? 999 : 3, NULL, NULL, key, digest, &blob_len);
        assert_int_equal(blob_len, sotto_attachment_blob_size(n));
        for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++) {
            if (n > 70000 && steps[s] < 16)
                continue; /* keep the test fast */
            memset(out, 0, n ? n : 1);
            assert_int_equal(
                decrypt_stream(blob, blob_len, steps[s], n, key, digest, out, &out_len), SOTTO_OK);
            assert_int_equal(out_len, n);
            assert_memory_equal(out, pt, n);
        }
        /* verifier alone */
        {
            sotto_attachment_verifier *v = NULL;
            assert_int_equal(sotto_attachment_verifier_new(&v, n, key, digest), SOTTO_OK);
            assert_int_equal(sotto_attachment_verify_update(v, blob, blob_len / 2), SOTTO_OK);
            assert_int_equal(
                sotto_attachment_verify_update(v, blob + blob_len / 2, blob_len - blob_len / 2),
                SOTTO_OK);
            assert_int_equal(sotto_attachment_verify_final(v), SOTTO_OK);
            sotto_attachment_verifier_free(v);
        }
        free(blob);
        free(pt);
        free(out);
    }
}

/* Every hostile variant: verifier says no, one-shot writes nothing, and
 * the streaming decryptor's final says no. */
static void expect_rejected(const uint8_t *blob, size_t blob_len, uint64_t size,
                            const uint8_t key[64], const uint8_t digest[32])
{
    sotto_attachment_verifier *v = NULL;
    size_t cap = (size_t)size + 64, out_len;
    uint8_t *out = malloc(cap);
    int rc;

    assert_int_equal(sotto_attachment_verifier_new(&v, size, key, digest), SOTTO_OK);
    rc = sotto_attachment_verify_update(v, blob, blob_len);
    if (rc == SOTTO_OK)
        rc = sotto_attachment_verify_final(v);
    assert_int_equal(rc, SOTTO_ERR_INVALID_MESSAGE);
    sotto_attachment_verifier_free(v);

    memset(out, 0xAA, cap);
    assert_int_equal(sotto_attachment_decrypt(out, size, key, digest, blob, blob_len),
                     SOTTO_ERR_INVALID_MESSAGE);
    for (size_t i = 0; i < cap; i++)
        assert_int_equal(out[i], 0xAA); /* not one byte of plaintext */

    assert_int_equal(decrypt_stream(blob, blob_len, 100, size, key, digest, out, &out_len),
                     SOTTO_ERR_INVALID_MESSAGE);
    free(out);
}

static void test_hostile(void **state)
{
    size_t n = 5000, blob_len;
    uint8_t key[64], digest[32], bad[64], bad_digest[32];
    uint8_t *pt = pattern(n), *blob, *copy;
    (void)state;

    blob = encrypt_stream(pt, n, 512, NULL, NULL, key, digest, &blob_len);
    copy = malloc(blob_len + 1);

    /* bit flips in IV, first and last ciphertext block, MAC */
    const size_t where[] = {0, 15, 16, 100, blob_len - 33, blob_len - 32, blob_len - 1};
    for (size_t i = 0; i < sizeof where / sizeof where[0]; i++) {
        memcpy(copy, blob, blob_len);
        copy[where[i]] ^= 0x01;
        expect_rejected(copy, blob_len, n, key, digest);
    }
    /* truncated by one byte, by one block, to nothing */
    expect_rejected(blob, blob_len - 1, n, key, digest);
    expect_rejected(blob, blob_len - 16, n, key, digest);
    expect_rejected(blob, 0, n, key, digest);
    /* one byte too long */
    memcpy(copy, blob, blob_len);
    copy[blob_len] = 0;
    expect_rejected(copy, blob_len + 1, n, key, digest);
    /* wrong digest (blob intact) */
    memcpy(bad_digest, digest, 32);
    bad_digest[31] ^= 0x80;
    expect_rejected(blob, blob_len, n, key, bad_digest);
    /* wrong MAC key, wrong AES key */
    memcpy(bad, key, 64);
    bad[40] ^= 1;
    expect_rejected(blob, blob_len, n, bad, digest);
    /* a claimed size in another padding bucket */
    expect_rejected(blob, blob_len, 100000, key, digest);

    /* A smaller size in the same bucket: the blob itself verifies (the
     * verifier checks integrity, and the size comes authenticated from
     * the sender), but the decryptors see non-zero "padding" and refuse. */
    {
        sotto_attachment_verifier *v = NULL;
        size_t cap = n + 64, out_len;
        uint8_t *out = malloc(cap);
        assert_int_equal(sotto_attachment_verifier_new(&v, n - 1, key, digest), SOTTO_OK);
        assert_int_equal(sotto_attachment_verify_update(v, blob, blob_len), SOTTO_OK);
        assert_int_equal(sotto_attachment_verify_final(v), SOTTO_OK);
        sotto_attachment_verifier_free(v);
        memset(out, 0xAA, cap);
        assert_int_equal(sotto_attachment_decrypt(out, n - 1, key, digest, blob, blob_len),
                         SOTTO_ERR_INVALID_MESSAGE);
        for (size_t i = 0; i < cap; i++)
            assert_int_equal(out[i], 0xAA);
        assert_int_equal(decrypt_stream(blob, blob_len, 100, n - 1, key, digest, out, &out_len),
                         SOTTO_ERR_INVALID_MESSAGE);
        free(out);
    }

    free(copy);
    free(blob);
    free(pt);
}

static void test_misuse(void **state)
{
    sotto_attachment_encryptor *enc = NULL;
    uint8_t key[64], buf[256], digest[32];
    size_t w;
    bool done;
    (void)state;

    assert_int_equal(sotto_attachment_encryptor_new(&enc, 10, key), SOTTO_OK);
    /* more than announced */
    assert_int_equal(sotto_attachment_encrypt_update(enc, buf, 11, buf + 100, 150, &w),
                     SOTTO_ERR_INVALID_ARGUMENT);
    /* output too small */
    assert_int_equal(sotto_attachment_encrypt_update(enc, buf, 5, buf + 100, 20, &w),
                     SOTTO_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(sotto_attachment_encrypt_update(enc, buf, 5, buf + 100, 150, &w), SOTTO_OK);
    /* final before all bytes */
    assert_int_equal(sotto_attachment_encrypt_final(enc, buf, 150, &w, &done, digest),
                     SOTTO_ERR_INVALID_ARGUMENT);
    sotto_attachment_encryptor_free(enc);
    assert_int_equal(sotto_attachment_encryptor_new(&enc, SOTTO_ATTACHMENT_MAX_SIZE + 1, key),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_null(enc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_padded_size), cmocka_unit_test(test_known_answers),
        cmocka_unit_test(test_round_trips), cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_misuse),
    };
    if (sotto_init() != SOTTO_OK)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
