/*
 * Internal crypto wrappers (lib/crypto/crypto.h): HMAC-SHA256 (one-shot and
 * keyed state, against libsodium's HMAC as a second implementation), HKDF-SHA256,
 * AES-256-CBC/PKCS#7 against the Wycheproof vectors, the spec section 8
 * chain-key vector, the RNG test hook, and hostile arguments.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "crypto/crypto.h"
#include "sotto/keys.h"
#include "testutil.h"

static int setup(void **state)
{
    (void)state;
    return sotto_init() == SOTTO_OK ? 0 : -1;
}

static const char *jstr(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    assert_non_null(v);
    assert_true(json_is_string(v));
    return json_string_value(v);
}

static int jint(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    assert_non_null(v);
    assert_true(json_is_integer(v));
    return (int)json_integer_value(v);
}

/* ---------------------------------------------------------------------- */

static void test_hmac_wycheproof(void **state)
{
    (void)state;
    json_t *j = tu_load_wycheproof("hmac_sha256_test.json");
    json_t *groups = json_object_get(j, "testGroups");
    size_t gi, ti, n_valid = 0, n_invalid = 0;
    json_t *g, *t;

    json_array_foreach(groups, gi, g)
    {
        size_t tag_bytes = (size_t)jint(g, "tagSize") / 8;
        assert_true(tag_bytes > 0 && tag_bytes <= 32);
        json_array_foreach(json_object_get(g, "tests"), ti, t)
        {
            size_t klen, mlen, tlen;
            uint8_t *key = tu_unhex(jstr(t, "key"), &klen);
            uint8_t *msg = tu_unhex(jstr(t, "msg"), &mlen);
            uint8_t *tag = tu_unhex(jstr(t, "tag"), &tlen);
            uint8_t out[32];
            bool valid = strcmp(jstr(t, "result"), "valid") == 0;

            assert_int_equal(tlen, tag_bytes);
            assert_int_equal(sotto_hmac_sha256(out, key, klen, msg, mlen), SOTTO_OK);
            /* Truncated tags compare the prefix. */
            if (valid) {
                assert_memory_equal(out, tag, tag_bytes);
                n_valid++;
            } else {
                assert_memory_not_equal(out, tag, tag_bytes);
                n_invalid++;
            }
            free(key);
            free(msg);
            free(tag);
        }
    }
    assert_int_equal(n_valid, 66);
    assert_int_equal(n_invalid, 108);
    json_decref(j);
}

static void test_hmac_bad_args(void **state)
{
    (void)state;
    uint8_t out[32];
    assert_int_equal(sotto_hmac_sha256(NULL, (const uint8_t *)"k", 1, NULL, 0),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_hmac_sha256(out, NULL, 3, NULL, 0), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_hmac_sha256(out, NULL, 0, NULL, 5), SOTTO_ERR_INVALID_ARGUMENT);
    /* Empty key and message are legal. */
    assert_int_equal(sotto_hmac_sha256(out, NULL, 0, NULL, 0), SOTTO_OK);
    /* RFC 4231-style check of HMAC(empty, empty). */
    uint8_t exp[32];
    tu_unhex_into("b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad", exp, 32);
    assert_memory_equal(out, exp, 32);
}

static void test_hkdf_wycheproof(void **state)
{
    (void)state;
    json_t *j = tu_load_wycheproof("hkdf_sha256_test.json");
    size_t gi, ti, n = 0, n_invalid = 0;
    json_t *g, *t;

    json_array_foreach(json_object_get(j, "testGroups"), gi, g)
    {
        json_array_foreach(json_object_get(g, "tests"), ti, t)
        {
            size_t ikm_len, salt_len, info_len, okm_len;
            uint8_t *ikm = tu_unhex(jstr(t, "ikm"), &ikm_len);
            uint8_t *salt = tu_unhex(jstr(t, "salt"), &salt_len);
            uint8_t *info = tu_unhex(jstr(t, "info"), &info_len);
            uint8_t *okm = tu_unhex(jstr(t, "okm"), &okm_len);
            size_t size = (size_t)jint(t, "size");
            uint8_t *out = malloc(size + 1);
            int rc;

            assert_non_null(out);
            rc = sotto_hkdf_sha256(out, size, salt, salt_len, ikm, ikm_len, info, info_len);
            if (strcmp(jstr(t, "result"), "valid") == 0) {
                assert_int_equal(rc, SOTTO_OK);
                assert_int_equal(okm_len, size);
                assert_memory_equal(out, okm, size);
            } else {
                /* SizeTooLarge: more than 255 * 32 bytes. */
                assert_true(size > SOTTO_HKDF_MAX_OUTPUT);
                assert_int_equal(rc, SOTTO_ERR_INVALID_ARGUMENT);
                n_invalid++;
            }
            n++;
            free(ikm);
            free(salt);
            free(info);
            free(okm);
            free(out);
        }
    }
    assert_int_equal(n, 86);
    assert_int_equal(n_invalid, 3);
    json_decref(j);
}

static void test_hkdf_bad_args(void **state)
{
    (void)state;
    uint8_t out[64];
    const uint8_t ikm[4] = {1, 2, 3, 4};
    assert_int_equal(sotto_hkdf_sha256(out, 0, NULL, 0, ikm, 4, NULL, 0),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_hkdf_sha256(NULL, 32, NULL, 0, ikm, 4, NULL, 0),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_hkdf_sha256(out, 32, NULL, 0, NULL, 4, NULL, 0),
                     SOTTO_ERR_INVALID_ARGUMENT);
    /* NULL salt equals 32 zero bytes of salt. */
    uint8_t a[64], b[64];
    const uint8_t zero[32] = {0};
    assert_int_equal(sotto_hkdf_sha256(a, 64, NULL, 0, ikm, 4, (const uint8_t *)"x", 1), SOTTO_OK);
    assert_int_equal(sotto_hkdf_sha256(b, 64, zero, 32, ikm, 4, (const uint8_t *)"x", 1), SOTTO_OK);
    assert_memory_equal(a, b, 64);
}

/* Spec section 8, test_chain_key_derivation_v3: chain step and message keys. */
static void test_chain_key_v3(void **state)
{
    (void)state;
    uint8_t ck[32], mk_seed[32], next[32], keys[80], exp[32], iv[16];
    const uint8_t one = 0x01, two = 0x02;

    tu_unhex_into("8ab72d6f4cc5ac0d387eaf463378ddb28edd07385b1cb01250c715982e7ad48f", ck, 32);
    assert_int_equal(sotto_hmac_sha256(mk_seed, ck, 32, &one, 1), SOTTO_OK);
    assert_int_equal(sotto_hmac_sha256(next, ck, 32, &two, 1), SOTTO_OK);
    assert_int_equal(sotto_hkdf_sha256(keys, 80, NULL, 0, mk_seed, 32,
                                       (const uint8_t *)"WhisperMessageKeys", 18),
                     SOTTO_OK);
    tu_unhex_into("bf51e9d75e0e31031051f82a2491ffc084fa298b7793bd9db620056febf45217", exp, 32);
    assert_memory_equal(keys, exp, 32);
    tu_unhex_into("c6c77d6a73a354337a56435e34607dfe48e3ace14e77314dc6abc172e7a7030b", exp, 32);
    assert_memory_equal(keys + 32, exp, 32);
    tu_unhex_into("afa8207986b692a116d4b40bbff72d6c", iv, 16);
    assert_memory_equal(keys + 64, iv, 16);
    tu_unhex_into("28e8f8fee54b801eef7c5cfb2f17f32c7b334485bbb70fac6ec10342a246d15d", exp, 32);
    assert_memory_equal(next, exp, 32);
}

static void test_aes_wycheproof(void **state)
{
    (void)state;
    json_t *j = tu_load_wycheproof("aes_cbc_pkcs5_test.json");
    size_t gi, ti, n_valid = 0, n_invalid = 0;
    json_t *g, *t;

    json_array_foreach(json_object_get(j, "testGroups"), gi, g)
    {
        /* Only AES-256 is implemented (the protocol uses nothing else). */
        if (jint(g, "keySize") != 256)
            continue;
        json_array_foreach(json_object_get(g, "tests"), ti, t)
        {
            size_t klen, ivlen, mlen, clen, olen = 0;
            uint8_t *key = tu_unhex(jstr(t, "key"), &klen);
            uint8_t *iv = tu_unhex(jstr(t, "iv"), &ivlen);
            uint8_t *msg = tu_unhex(jstr(t, "msg"), &mlen);
            uint8_t *ct = tu_unhex(jstr(t, "ct"), &clen);
            uint8_t *out = malloc(mlen + clen + 16);

            assert_non_null(out);
            assert_int_equal(klen, 32);
            assert_int_equal(ivlen, 16);
            if (strcmp(jstr(t, "result"), "valid") == 0) {
                assert_int_equal(sotto_aes256_cbc_encrypt(out, &olen, key, iv, msg, mlen),
                                 SOTTO_OK);
                assert_int_equal(olen, clen);
                assert_memory_equal(out, ct, clen);
                assert_int_equal(sotto_aes256_cbc_decrypt(out, &olen, key, iv, ct, clen), SOTTO_OK);
                assert_int_equal(olen, mlen);
                if (mlen > 0)
                    assert_memory_equal(out, msg, mlen);
                n_valid++;
            } else {
                /* BadPadding and NoPadding (empty ciphertext). */
                memset(out, 0xAA, clen + 16);
                olen = 12345;
                assert_int_equal(sotto_aes256_cbc_decrypt(out, &olen, key, iv, ct, clen),
                                 SOTTO_ERR_INVALID_MESSAGE);
                assert_int_equal(olen, 0);
                /* No plaintext is left behind on failure. */
                for (size_t k = 0; k < clen; k++)
                    assert_int_equal(out[k], 0);
                n_invalid++;
            }
            free(key);
            free(iv);
            free(msg);
            free(ct);
            free(out);
        }
    }
    assert_int_equal(n_valid, 24);
    assert_int_equal(n_invalid, 48);
    json_decref(j);
}

static void test_aes_hostile(void **state)
{
    (void)state;
    uint8_t key[32], iv[16], pt[64], ct[80], out[80];
    size_t n = 0, m = 0;

    memset(key, 7, sizeof key);
    memset(iv, 9, sizeof iv);
    for (size_t i = 0; i < sizeof pt; i++)
        pt[i] = (uint8_t)i;
    /* Padding always added: 64 bytes in, 80 out; 0 in, 16 out. */
    assert_int_equal(sotto_aes256_cbc_encrypt(ct, &n, key, iv, pt, 64), SOTTO_OK);
    assert_int_equal(n, 80);
    assert_int_equal(sotto_aes256_cbc_encrypt(out, &m, key, iv, NULL, 0), SOTTO_OK);
    assert_int_equal(m, 16);
    /* Lengths that are not a non-zero multiple of 16. */
    assert_int_equal(sotto_aes256_cbc_decrypt(out, &m, key, iv, ct, 0), SOTTO_ERR_INVALID_MESSAGE);
    assert_int_equal(sotto_aes256_cbc_decrypt(out, &m, key, iv, ct, 79), SOTTO_ERR_INVALID_MESSAGE);
    assert_int_equal(sotto_aes256_cbc_decrypt(out, &m, key, iv, ct, 15), SOTTO_ERR_INVALID_MESSAGE);
    /* Wrong key: the padding check fails (the last block is garbage) with
     * overwhelming probability for this fixed input. */
    key[0] ^= 1;
    assert_int_equal(sotto_aes256_cbc_decrypt(out, &m, key, iv, ct, 80), SOTTO_ERR_INVALID_MESSAGE);
    key[0] ^= 1;
    /* Each flipped bit of the final padding block breaks the padding byte
     * or garbles the block; the real key decrypts the original. */
    assert_int_equal(sotto_aes256_cbc_decrypt(out, &m, key, iv, ct, 80), SOTTO_OK);
    assert_int_equal(m, 64);
    assert_memory_equal(out, pt, 64);
    ct[79] ^= 0x80;
    assert_int_equal(sotto_aes256_cbc_decrypt(out, &m, key, iv, ct, 80), SOTTO_ERR_INVALID_MESSAGE);
    /* NULL arguments. */
    assert_int_equal(sotto_aes256_cbc_encrypt(NULL, &m, key, iv, pt, 1),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_aes256_cbc_encrypt(out, NULL, key, iv, pt, 1),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_aes256_cbc_encrypt(out, &m, key, iv, NULL, 1),
                     SOTTO_ERR_INVALID_ARGUMENT);
}

/* The per-thread reusable context: two threads encrypt concurrently and
 * must produce the same bytes as the main thread. */
struct aes_thread_arg {
    uint8_t ct[48];
    size_t n;
    int rc;
};

static void *aes_thread(void *p)
{
    struct aes_thread_arg *a = p;
    uint8_t key[32], iv[16], pt[40], back[48];
    size_t m = 0;

    memset(key, 0x11, sizeof key);
    memset(iv, 0x22, sizeof iv);
    memset(pt, 0x33, sizeof pt);
    a->rc = SOTTO_OK;
    for (int i = 0; i < 200 && a->rc == SOTTO_OK; i++) {
        a->rc = sotto_aes256_cbc_encrypt(a->ct, &a->n, key, iv, pt, sizeof pt);
        if (a->rc == SOTTO_OK)
            a->rc = sotto_aes256_cbc_decrypt(back, &m, key, iv, a->ct, a->n);
        if (a->rc == SOTTO_OK && (m != sizeof pt || memcmp(back, pt, m) != 0))
            a->rc = -1000;
    }
    return NULL;
}

static void test_aes_threads(void **state)
{
    (void)state;
    struct aes_thread_arg a[3];
    pthread_t th[2];

    memset(a, 0, sizeof a);
    assert_int_equal(pthread_create(&th[0], NULL, aes_thread, &a[0]), 0);
    assert_int_equal(pthread_create(&th[1], NULL, aes_thread, &a[1]), 0);
    aes_thread(&a[2]);
    assert_int_equal(pthread_join(th[0], NULL), 0);
    assert_int_equal(pthread_join(th[1], NULL), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(a[i].rc, SOTTO_OK);
        assert_int_equal(a[i].n, 48);
        assert_memory_equal(a[i].ct, a[2].ct, 48);
    }
}

static void counter_rng(void *ctx, void *p, size_t n)
{
    uint8_t *c = ctx;
    uint8_t *o = p;
    for (size_t i = 0; i < n; i++)
        o[i] = (*c)++;
}

static void test_random_hook(void **state)
{
    (void)state;
    uint8_t ctr = 1;
    uint8_t b[5];

    sotto_test_set_random(counter_rng, &ctr);
    sotto_random_buf(b, sizeof b);
    const uint8_t exp[5] = {1, 2, 3, 4, 5};
    assert_memory_equal(b, exp, 5);
    /* u32 is little-endian over the next four bytes. */
    assert_int_equal(sotto_random_u32(), 0x09080706u);
    sotto_test_set_random(NULL, NULL);
    /* Back on libsodium: two draws of 32 bytes differ. */
    uint8_t x[32], y[32];
    sotto_random_buf(x, sizeof x);
    sotto_random_buf(y, sizeof y);
    assert_memory_not_equal(x, y, 32);
    assert_int_equal(ctr, 10);
}

/* ---------------------------------------------------------------------- */
/* Keyed HMAC state (sotto_hmac_key_*), checked against libsodium's HMAC as
 * an independent implementation. */

static void ref_hmac(uint8_t out[32], const uint8_t *key, size_t key_len, const uint8_t *msg,
                     size_t msg_len)
{
    static const uint8_t empty[1];
    crypto_auth_hmacsha256_state st;

    crypto_auth_hmacsha256_init(&st, key_len ? key : empty, key_len);
    crypto_auth_hmacsha256_update(&st, msg, msg_len);
    crypto_auth_hmacsha256_final(&st, out);
}

static void test_hmac_key_matches_reference(void **state)
{
    (void)state;
    /* Key lengths around the 64-byte block (65+ is hashed first) and
     * message lengths around the 55/56-byte padding boundary. */
    static const size_t key_lens[] = {0, 1, 32, 63, 64, 65, 131};
    static const size_t msg_lens[] = {0, 1, 55, 56, 64, 119, 200};
    uint8_t key[131], msg[200], want[32], got[32], got1[32];

    for (size_t i = 0; i < sizeof key; i++)
        key[i] = (uint8_t)(i * 7 + 1);
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (uint8_t)(i * 13 + 5);
    for (size_t a = 0; a < sizeof key_lens / sizeof key_lens[0]; a++) {
        sotto_hmac_key k;
        assert_int_equal(sotto_hmac_key_init(&k, key_lens[a] ? key : NULL, key_lens[a]), SOTTO_OK);
        for (size_t b = 0; b < sizeof msg_lens / sizeof msg_lens[0]; b++) {
            size_t n = msg_lens[b];
            /* Three parts: a split inside the message and an empty part. */
            const uint8_t *parts[3] = {msg, NULL, msg + n / 3};
            const size_t lens[3] = {n / 3, 0, n - n / 3};

            ref_hmac(want, key, key_lens[a], msg, n);
            memset(got, 0, sizeof got);
            assert_int_equal(sotto_hmac_key_mac(&k, parts, lens, 3, got), SOTTO_OK);
            assert_memory_equal(got, want, 32);
            assert_int_equal(sotto_hmac_sha256(got1, key, key_lens[a], msg, n), SOTTO_OK);
            assert_memory_equal(got1, want, 32);
        }
        sotto_hmac_key_wipe(&k);
    }
}

static void test_hmac_key_reuse_alias_wipe(void **state)
{
    (void)state;
    static const uint8_t one = 0x01, two = 0x02;
    uint8_t ck[32], seed[32], next[32], want_seed[32], want_next[32];
    const uint8_t *p1[1] = {&one}, *p2[1] = {&two};
    const size_t l1[1] = {1};
    sotto_hmac_key k, zero;

    for (size_t i = 0; i < sizeof ck; i++)
        ck[i] = (uint8_t)(0xA0 + i);
    ref_hmac(want_seed, ck, 32, &one, 1);
    ref_hmac(want_next, ck, 32, &two, 1);
    /* Chain step: one keyed state, two MACs, the second written over the
     * key it was keyed with (the state keeps its own copy). */
    assert_int_equal(sotto_hmac_key_init(&k, ck, sizeof ck), SOTTO_OK);
    assert_int_equal(sotto_hmac_key_mac(&k, p1, l1, 1, seed), SOTTO_OK);
    assert_int_equal(sotto_hmac_key_mac(&k, p2, l1, 1, ck), SOTTO_OK);
    assert_memory_equal(seed, want_seed, 32);
    assert_memory_equal(ck, want_next, 32);
    /* `out` aliasing the message. */
    memcpy(next, want_seed, 32);
    {
        const uint8_t *p[1] = {next};
        const size_t l[1] = {32};
        uint8_t want[32];
        assert_int_equal(sotto_hmac_key_mac(&k, p, l, 1, want), SOTTO_OK);
        assert_int_equal(sotto_hmac_key_mac(&k, p, l, 1, next), SOTTO_OK);
        assert_memory_equal(next, want, 32);
    }
    sotto_hmac_key_wipe(&k);
    memset(&zero, 0, sizeof zero);
    assert_memory_equal(&k, &zero, sizeof k);
    sotto_hmac_key_wipe(NULL);
}

static void test_hmac_key_bad_args(void **state)
{
    (void)state;
    uint8_t key[32] = {1}, out[32];
    const uint8_t *null_part[1] = {NULL};
    const size_t l5[1] = {5};
    sotto_hmac_key k, zero;

    memset(&zero, 0, sizeof zero);
    assert_int_equal(sotto_hmac_key_init(NULL, key, 32), SOTTO_ERR_INVALID_ARGUMENT);
    memset(&k, 0xAA, sizeof k);
    assert_int_equal(sotto_hmac_key_init(&k, NULL, 3), SOTTO_ERR_INVALID_ARGUMENT);
    assert_memory_equal(&k, &zero, sizeof k); /* left wiped */
    assert_int_equal(sotto_hmac_key_init(&k, key, sizeof key), SOTTO_OK);
    assert_int_equal(sotto_hmac_key_mac(NULL, NULL, NULL, 0, out), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_hmac_key_mac(&k, NULL, NULL, 0, NULL), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_hmac_key_mac(&k, NULL, l5, 1, out), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_hmac_key_mac(&k, null_part, NULL, 1, out), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_hmac_key_mac(&k, null_part, l5, 1, out), SOTTO_ERR_INVALID_ARGUMENT);
    /* n = 0 is the MAC of the empty message. */
    uint8_t want[32];
    ref_hmac(want, key, sizeof key, NULL, 0);
    assert_int_equal(sotto_hmac_key_mac(&k, NULL, NULL, 0, out), SOTTO_OK);
    assert_memory_equal(out, want, 32);
    sotto_hmac_key_wipe(&k);
}

/* Each thread uses its own OpenSSL digest context: concurrent MACs agree
 * with the reference. */
typedef struct {
    uint8_t id;
    int ok;
} hmac_job;

static void *hmac_thread(void *p)
{
    hmac_job *job = p;
    uint8_t key[32], msg[100], want[32], got[32];
    const uint8_t *parts[1] = {msg};
    const size_t lens[1] = {sizeof msg};
    sotto_hmac_key k;

    job->ok = 1;
    for (int i = 0; i < 2000 && job->ok; i++) {
        memset(key, job->id, sizeof key);
        memset(msg, i & 0xFF, sizeof msg);
        key[0] = (uint8_t)i;
        ref_hmac(want, key, sizeof key, msg, sizeof msg);
        if (sotto_hmac_key_init(&k, key, sizeof key) != SOTTO_OK ||
            sotto_hmac_key_mac(&k, parts, lens, 1, got) != SOTTO_OK ||
            memcmp(got, want, sizeof got) != 0)
            job->ok = 0;
        sotto_hmac_key_wipe(&k);
    }
    return NULL;
}

static void test_hmac_key_threads(void **state)
{
    (void)state;
    pthread_t th[4];
    hmac_job jobs[4];

    for (int i = 0; i < 4; i++) {
        jobs[i].id = (uint8_t)(i + 1);
        assert_int_equal(pthread_create(&th[i], NULL, hmac_thread, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_true(jobs[i].ok);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hmac_wycheproof),
        cmocka_unit_test(test_hmac_bad_args),
        cmocka_unit_test(test_hmac_key_matches_reference),
        cmocka_unit_test(test_hmac_key_reuse_alias_wipe),
        cmocka_unit_test(test_hmac_key_bad_args),
        cmocka_unit_test(test_hmac_key_threads),
        cmocka_unit_test(test_hkdf_wycheproof),
        cmocka_unit_test(test_hkdf_bad_args),
        cmocka_unit_test(test_chain_key_v3),
        cmocka_unit_test(test_aes_wycheproof),
        cmocka_unit_test(test_aes_hostile),
        cmocka_unit_test(test_aes_threads),
        cmocka_unit_test(test_random_hook),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
