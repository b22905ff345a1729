/*
 * Sealed sender (sotto/sealed.h, docs/protocol.md "Sealed sender"):
 * certificates, sealed sender v1 round trips, a v1 message built here
 * independently of lib/sealed (libsodium HMAC, this file's HKDF, OpenSSL
 * AES-CTR) that the library must open, and hostile inputs: wrong trust
 * root, forged signatures, expiry, a certificate for another sender,
 * tampered/truncated bytes and wrong version bytes -- each refused with
 * its own error and no output.
 */
#define _GNU_SOURCE /* memmem */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <sodium.h>

#include "sotto/sealed.h"

#define EXPIRES 1800000000000ull /* 2027-01-15 */
#define NOW (EXPIRES - 86400000ull)

typedef struct fixture {
    sotto_key_pair root, server, alice, bob, mallory;
    uint8_t *srv_cert;
    size_t srv_cert_len;
    uint8_t *alice_cert; /* alice, device 3, alice's identity key */
    size_t alice_cert_len;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (f == NULL || sotto_init() != SOTTO_OK)
        return -1;
    if (sotto_key_pair_generate(&f->root) != SOTTO_OK ||
        sotto_key_pair_generate(&f->server) != SOTTO_OK ||
        sotto_identity_key_pair_generate(&f->alice) != SOTTO_OK ||
        sotto_identity_key_pair_generate(&f->bob) != SOTTO_OK ||
        sotto_identity_key_pair_generate(&f->mallory) != SOTTO_OK)
        return -1;
    if (sotto_server_certificate_create(&f->srv_cert, &f->srv_cert_len, 7, &f->server.pub,
                                        f->root.priv) != SOTTO_OK)
        return -1;
    if (sotto_sender_certificate_create(&f->alice_cert, &f->alice_cert_len, "alice", 3,
                                        &f->alice.pub, EXPIRES, f->srv_cert, f->srv_cert_len,
                                        f->server.priv) != SOTTO_OK)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    free(f->srv_cert);
    free(f->alice_cert);
    sodium_memzero(f, sizeof *f);
    free(f);
    return 0;
}

static const uint8_t CONTENT[] = "\x33\x0a\x21 an ordinary SignalMessage would be here";

/* ---------------------------------------------------------------------- */
/* Certificates                                                             */

static void test_server_certificate(void **state)
{
    fixture *f = *state;
    sotto_server_certificate c;

    memset(&c, 0xAA, sizeof c);
    assert_int_equal(
        sotto_server_certificate_validate(&c, f->srv_cert, f->srv_cert_len, &f->root.pub),
        SOTTO_OK);
    assert_int_equal(c.key_id, 7);
    assert_memory_equal(c.key.bytes, f->server.pub.bytes, SOTTO_PUBLIC_KEY_BYTES);
    /* Exact bytes: {1: {1: 7, 2: key}, 2: sig} as libsignal's proto. */
    assert_int_equal(f->srv_cert_len, 2 + 37 + 2 + 64);
    assert_int_equal(f->srv_cert[0], 0x0a);
    assert_int_equal(f->srv_cert[1], 37);
    assert_int_equal(f->srv_cert[2], 0x08);
    assert_int_equal(f->srv_cert[3], 7);
    assert_int_equal(f->srv_cert[4], 0x12);
    assert_int_equal(f->srv_cert[5], 33);
    assert_int_equal(f->srv_cert[39], 0x12);
    assert_int_equal(f->srv_cert[40], 64);

    /* Another trust root: untrusted, output untouched. */
    memset(&c, 0xAA, sizeof c);
    assert_int_equal(
        sotto_server_certificate_validate(&c, f->srv_cert, f->srv_cert_len, &f->mallory.pub),
        SOTTO_ERR_CERT_UNTRUSTED);
    assert_int_equal(c.key_id, 0xAAAAAAAAu);
    /* Truncations are malformed or untrusted, never accepted. */
    for (size_t n = 0; n < f->srv_cert_len; n++)
        assert_int_not_equal(sotto_server_certificate_validate(&c, f->srv_cert, n, &f->root.pub),
                             SOTTO_OK);
    assert_int_equal(sotto_server_certificate_validate(&c, f->srv_cert, 3, &f->root.pub),
                     SOTTO_ERR_CERT_MALFORMED);
}

static void test_sender_certificate(void **state)
{
    fixture *f = *state;
    sotto_sender_certificate c;
    uint8_t *bad;

    assert_int_equal(
        sotto_sender_certificate_validate(&c, f->alice_cert, f->alice_cert_len, &f->root.pub, NOW),
        SOTTO_OK);
    assert_string_equal(c.sender, "alice");
    assert_int_equal(c.device_id, 3);
    assert_true(c.expires_ms == EXPIRES);
    assert_memory_equal(c.identity_key.bytes, f->alice.pub.bytes, SOTTO_PUBLIC_KEY_BYTES);
    assert_int_equal(c.signer.key_id, 7);
    assert_memory_equal(c.signer.key.bytes, f->server.pub.bytes, SOTTO_PUBLIC_KEY_BYTES);

    /* Expiry: valid up to and including expires_ms (libsignal), then refused. */
    assert_int_equal(sotto_sender_certificate_validate(&c, f->alice_cert, f->alice_cert_len,
                                                       &f->root.pub, EXPIRES),
                     SOTTO_OK);
    memset(&c, 0, sizeof c);
    assert_int_equal(sotto_sender_certificate_validate(&c, f->alice_cert, f->alice_cert_len,
                                                       &f->root.pub, EXPIRES + 1),
                     SOTTO_ERR_CERT_EXPIRED);
    assert_int_equal(c.sender[0], 0);
    /* Another trust root. */
    assert_int_equal(sotto_sender_certificate_validate(&c, f->alice_cert, f->alice_cert_len,
                                                       &f->mallory.pub, NOW),
                     SOTTO_ERR_CERT_UNTRUSTED);
    /* A bit flipped in the sender certificate's own signature (its last 64 bytes). */
    bad = malloc(f->alice_cert_len);
    assert_non_null(bad);
    memcpy(bad, f->alice_cert, f->alice_cert_len);
    bad[f->alice_cert_len - 20] ^= 0x01;
    assert_int_equal(
        sotto_sender_certificate_validate(&c, bad, f->alice_cert_len, &f->root.pub, NOW),
        SOTTO_ERR_CERT_SIGNATURE);
    /* A bit flipped in the signed part (the username) breaks the signature. */
    memcpy(bad, f->alice_cert, f->alice_cert_len);
    {
        uint8_t *u = memmem(bad, f->alice_cert_len, "alice", 5);
        assert_non_null(u);
        u[0] = 'b';
    }
    assert_int_equal(sotto_sender_certificate_decode(&c, bad, f->alice_cert_len), SOTTO_OK);
    assert_string_equal(c.sender, "blice");
    assert_int_equal(
        sotto_sender_certificate_validate(&c, bad, f->alice_cert_len, &f->root.pub, NOW),
        SOTTO_ERR_CERT_SIGNATURE);
    free(bad);
    for (size_t n = 0; n < f->alice_cert_len; n++)
        assert_int_not_equal(
            sotto_sender_certificate_validate(&c, f->alice_cert, n, &f->root.pub, NOW), SOTTO_OK);
}

static void test_sender_certificate_create_refusals(void **state)
{
    fixture *f = *state;
    uint8_t *out = (uint8_t *)1;
    size_t len = 1;

    assert_int_equal(sotto_sender_certificate_create(&out, &len, "Alice!", 1, &f->alice.pub,
                                                     EXPIRES, f->srv_cert, f->srv_cert_len,
                                                     f->server.priv),
                     SOTTO_ERR_INVALID_USERNAME);
    assert_null(out);
    assert_int_equal(len, 0);
    /* server_priv that is not the certificate's key. */
    assert_int_equal(sotto_sender_certificate_create(&out, &len, "alice", 1, &f->alice.pub, EXPIRES,
                                                     f->srv_cert, f->srv_cert_len, f->mallory.priv),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_sender_certificate_create(&out, &len, "alice", 0, &f->alice.pub, EXPIRES,
                                                     f->srv_cert, f->srv_cert_len, f->server.priv),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_sender_certificate_create(&out, &len, "alice", 1, &f->alice.pub, EXPIRES,
                                                     f->srv_cert, 10, f->server.priv),
                     SOTTO_ERR_CERT_MALFORMED);
    assert_null(out);
}

/* ---------------------------------------------------------------------- */
/* Sealed sender v1                                                         */

static void test_round_trip(void **state)
{
    fixture *f = *state;
    sotto_sealed_result r;
    uint8_t *m = NULL;
    size_t n = 0;

    assert_int_equal(sotto_sealed_encrypt(&m, &n, &f->alice, &f->bob.pub, SOTTO_SEALED_TYPE_MESSAGE,
                                          f->alice_cert, f->alice_cert_len, CONTENT,
                                          sizeof CONTENT),
                     SOTTO_OK);
    assert_int_equal(m[0], 0x11);
    /* 1 + (2+33) + (2+43) + (3 + usmc + 10) */
    assert_int_equal(n, 1 + 35 + 45 + 3 + (2 + 3 + f->alice_cert_len + 2 + sizeof CONTENT) + 10);
    assert_null(memmem(m, n, CONTENT + 3, sizeof CONTENT - 4)); /* content is not in clear */
    assert_null(memmem(m, n, "alice", 5));                      /* nor the sender */

    assert_int_equal(sotto_sealed_decrypt(&r, m, n, &f->bob, &f->root.pub, NOW), SOTTO_OK);
    assert_int_equal(r.type, SOTTO_SEALED_TYPE_MESSAGE);
    assert_string_equal(r.sender.sender, "alice");
    assert_int_equal(r.sender.device_id, 3);
    assert_memory_equal(r.sender.identity_key.bytes, f->alice.pub.bytes, 33);
    assert_int_equal(r.content_len, sizeof CONTENT);
    assert_memory_equal(r.content, CONTENT, sizeof CONTENT);
    sotto_sealed_result_free(&r);
    assert_null(r.content);

    /* Mallory is not the recipient: the first MAC fails. */
    assert_int_equal(sotto_sealed_decrypt(&r, m, n, &f->mallory, &f->root.pub, NOW),
                     SOTTO_ERR_INVALID_MESSAGE);
    assert_null(r.content);
    /* Wrong pinned trust root, expired certificate. */
    assert_int_equal(sotto_sealed_decrypt(&r, m, n, &f->bob, &f->mallory.pub, NOW),
                     SOTTO_ERR_CERT_UNTRUSTED);
    assert_null(r.content);
    assert_int_equal(sotto_sealed_decrypt(&r, m, n, &f->bob, &f->root.pub, EXPIRES + 1),
                     SOTTO_ERR_CERT_EXPIRED);
    assert_null(r.content);
    assert_int_equal(r.content_len, 0);

    /* Two encryptions differ (fresh ephemeral key). */
    {
        uint8_t *m2 = NULL;
        size_t n2 = 0;
        assert_int_equal(sotto_sealed_encrypt(&m2, &n2, &f->alice, &f->bob.pub,
                                              SOTTO_SEALED_TYPE_MESSAGE, f->alice_cert,
                                              f->alice_cert_len, CONTENT, sizeof CONTENT),
                         SOTTO_OK);
        assert_int_equal(n2, n);
        assert_memory_not_equal(m2, m, n);
        free(m2);
    }
    free(m);
}

static void test_encrypt_refuses_other_senders_certificate(void **state)
{
    fixture *f = *state;
    uint8_t *m = (uint8_t *)1;
    size_t n = 1;

    assert_int_equal(sotto_sealed_encrypt(&m, &n, &f->mallory, &f->bob.pub,
                                          SOTTO_SEALED_TYPE_MESSAGE, f->alice_cert,
                                          f->alice_cert_len, CONTENT, sizeof CONTENT),
                     SOTTO_ERR_SEALED_MISMATCH);
    assert_null(m);
    assert_int_equal(n, 0);
    assert_int_equal(sotto_sealed_encrypt(&m, &n, &f->alice, &f->bob.pub, 3, f->alice_cert,
                                          f->alice_cert_len, CONTENT, sizeof CONTENT),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_null(m);
}

static void test_tampered_truncated_version(void **state)
{
    fixture *f = *state;
    sotto_sealed_result r;
    uint8_t *m = NULL, *t;
    size_t n = 0;
    static const uint8_t versions[] = {0x00, 0x01, 0x10, 0x12, 0x21, 0x22, 0x23, 0x33, 0xff};

    assert_int_equal(sotto_sealed_encrypt(&m, &n, &f->alice, &f->bob.pub, SOTTO_SEALED_TYPE_PREKEY,
                                          f->alice_cert, f->alice_cert_len, CONTENT,
                                          sizeof CONTENT),
                     SOTTO_OK);
    t = malloc(n);
    assert_non_null(t);
    /* Every single-bit flip is refused with no output. */
    for (size_t i = 0; i < n; i++) {
        for (int bit = 0; bit < 8; bit += 3) {
            int rc;
            memcpy(t, m, n);
            t[i] ^= (uint8_t)(1u << bit);
            rc = sotto_sealed_decrypt(&r, t, n, &f->bob, &f->root.pub, NOW);
            assert_int_not_equal(rc, SOTTO_OK);
            assert_null(r.content);
            /* Flips inside the two ciphertexts and their MACs are MAC failures. */
            if ((i >= 1 + 35 + 2 && i < 1 + 35 + 45) || i >= 1 + 35 + 45 + 3)
                assert_int_equal(rc, SOTTO_ERR_INVALID_MESSAGE);
            if (i == 0)
                assert_int_equal(rc, SOTTO_ERR_UNSUPPORTED_VERSION);
        }
    }
    /* Last byte (inside the outer MAC). */
    memcpy(t, m, n);
    t[n - 1] ^= 0x80;
    assert_int_equal(sotto_sealed_decrypt(&r, t, n, &f->bob, &f->root.pub, NOW),
                     SOTTO_ERR_INVALID_MESSAGE);
    /* Every truncation. */
    for (size_t k = 0; k < n; k++) {
        assert_int_not_equal(sotto_sealed_decrypt(&r, m, k, &f->bob, &f->root.pub, NOW), SOTTO_OK);
        assert_null(r.content);
    }
    assert_int_equal(sotto_sealed_decrypt(&r, m, n - 1, &f->bob, &f->root.pub, NOW),
                     SOTTO_ERR_INVALID_MESSAGE);
    /* Version bytes other than 0x11. */
    for (size_t v = 0; v < sizeof versions; v++) {
        memcpy(t, m, n);
        t[0] = versions[v];
        assert_int_equal(sotto_sealed_decrypt(&r, t, n, &f->bob, &f->root.pub, NOW),
                         SOTTO_ERR_UNSUPPORTED_VERSION);
        assert_null(r.content);
    }
    free(t);
    free(m);
}

/* ---------------------------------------------------------------------- */
/* An independent v1 sealer: libsignal's layout written out by hand.       */

static void hmac(uint8_t out[32], const uint8_t *key, size_t key_len, const uint8_t *msg,
                 size_t msg_len)
{
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, key, key_len);
    crypto_auth_hmacsha256_update(&st, msg, msg_len);
    crypto_auth_hmacsha256_final(&st, out);
}

/* RFC 5869 with empty info, 96 bytes. */
static void hkdf96(uint8_t out[96], const uint8_t *salt, size_t salt_len, const uint8_t ikm[32])
{
    uint8_t prk[32], t[33 + 32];
    size_t tl = 0;
    hmac(prk, salt, salt_len, ikm, 32);
    for (uint8_t i = 1; i <= 3; i++) {
        t[tl] = i;
        hmac(out + 32 * (i - 1), prk, 32, t, tl + 1);
        memcpy(t, out + 32 * (i - 1), 32);
        tl = 32;
    }
}

static size_t ctr_mac(uint8_t *out, const uint8_t *pt, size_t n, const uint8_t *ck,
                      const uint8_t *mk)
{
    static const uint8_t iv[16];
    uint8_t mac[32];
    int l1 = 0, l2 = 0;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    assert_non_null(c);
    assert_int_equal(EVP_EncryptInit_ex(c, EVP_aes_256_ctr(), NULL, ck, iv), 1);
    assert_int_equal(EVP_EncryptUpdate(c, out, &l1, pt, (int)n), 1);
    assert_int_equal(EVP_EncryptFinal_ex(c, out + l1, &l2), 1);
    EVP_CIPHER_CTX_free(c);
    hmac(mac, mk, 32, out, n);
    memcpy(out + n, mac, 10);
    return n + 10;
}

static size_t put_len(uint8_t *p, uint8_t tag, size_t len)
{
    size_t k = 0;
    p[k++] = tag;
    while (len >= 0x80) {
        p[k++] = (uint8_t)(len | 0x80);
        len >>= 7;
    }
    p[k++] = (uint8_t)len;
    return k;
}

/* Seals `usmc` to `to` with static key pair `st`, but writes `claimed` as
 * the static public key (claimed == &st->pub for an honest message). */
static size_t hand_seal(uint8_t *out, const sotto_public_key *to, const sotto_key_pair *st,
                        const sotto_public_key *claimed, const uint8_t *usmc, size_t usmc_len)
{
    sotto_key_pair e;
    uint8_t dh[32], salt[20 + 66], k[96], sct[43], salt2[32 + 43], k2[96], *mct;
    size_t o = 0;

    assert_int_equal(sotto_key_pair_generate(&e), SOTTO_OK);
    assert_int_equal(sotto_dh(dh, e.priv, to), SOTTO_OK);
    memcpy(salt, "UnidentifiedDelivery", 20);
    memcpy(salt + 20, to->bytes, 33);
    memcpy(salt + 53, e.pub.bytes, 33);
    hkdf96(k, salt, sizeof salt, dh);
    ctr_mac(sct, claimed->bytes, 33, k + 32, k + 64);
    assert_int_equal(sotto_dh(dh, st->priv, to), SOTTO_OK);
    memcpy(salt2, k, 32);
    memcpy(salt2 + 32, sct, 43);
    hkdf96(k2, salt2, sizeof salt2, dh);
    mct = malloc(usmc_len + 10);
    assert_non_null(mct);
    ctr_mac(mct, usmc, usmc_len, k2 + 32, k2 + 64);
    out[o++] = 0x11;
    o += put_len(out + o, 0x0a, 33);
    memcpy(out + o, e.pub.bytes, 33);
    o += 33;
    o += put_len(out + o, 0x12, 43);
    memcpy(out + o, sct, 43);
    o += 43;
    o += put_len(out + o, 0x1a, usmc_len + 10);
    memcpy(out + o, mct, usmc_len + 10);
    o += usmc_len + 10;
    free(mct);
    return o;
}

static size_t make_usmc(uint8_t *out, uint8_t type, const uint8_t *cert, size_t cert_len)
{
    size_t o = 0;
    out[o++] = 0x08;
    out[o++] = type;
    o += put_len(out + o, 0x12, cert_len);
    memcpy(out + o, cert, cert_len);
    o += cert_len;
    o += put_len(out + o, 0x1a, sizeof CONTENT);
    memcpy(out + o, CONTENT, sizeof CONTENT);
    return o + sizeof CONTENT;
}

static void test_independent_v1_and_mismatch(void **state)
{
    fixture *f = *state;
    sotto_sealed_result r;
    uint8_t usmc[2048], msg[4096];
    size_t ul, ml;

    /* Honest message built by hand: the library opens it. */
    ul = make_usmc(usmc, SOTTO_SEALED_TYPE_SENDERKEY, f->alice_cert, f->alice_cert_len);
    ml = hand_seal(msg, &f->bob.pub, &f->alice, &f->alice.pub, usmc, ul);
    assert_int_equal(sotto_sealed_decrypt(&r, msg, ml, &f->bob, &f->root.pub, NOW), SOTTO_OK);
    assert_int_equal(r.type, SOTTO_SEALED_TYPE_SENDERKEY);
    assert_string_equal(r.sender.sender, "alice");
    assert_memory_equal(r.content, CONTENT, sizeof CONTENT);
    sotto_sealed_result_free(&r);

    /* Mallory seals honestly with her own key but carries alice's certificate:
     * both MACs verify, the certificate is valid, the keys differ. */
    ml = hand_seal(msg, &f->bob.pub, &f->mallory, &f->mallory.pub, usmc, ul);
    assert_int_equal(sotto_sealed_decrypt(&r, msg, ml, &f->bob, &f->root.pub, NOW),
                     SOTTO_ERR_SEALED_MISMATCH);
    assert_null(r.content);
    assert_int_equal(r.sender.sender[0], 0);

    /* Mallory claims alice's key in encryptedStatic but cannot do alice's DH. */
    ml = hand_seal(msg, &f->bob.pub, &f->mallory, &f->alice.pub, usmc, ul);
    assert_int_equal(sotto_sealed_decrypt(&r, msg, ml, &f->bob, &f->root.pub, NOW),
                     SOTTO_ERR_INVALID_MESSAGE);
    assert_null(r.content);

    /* Unknown inner type and a USMC without content are refused. */
    ul = make_usmc(usmc, 5, f->alice_cert, f->alice_cert_len);
    ml = hand_seal(msg, &f->bob.pub, &f->alice, &f->alice.pub, usmc, ul);
    assert_int_equal(sotto_sealed_decrypt(&r, msg, ml, &f->bob, &f->root.pub, NOW),
                     SOTTO_ERR_INVALID_MESSAGE);
    ul = make_usmc(usmc, 2, f->alice_cert, f->alice_cert_len) - sizeof CONTENT - 2;
    ml = hand_seal(msg, &f->bob.pub, &f->alice, &f->alice.pub, usmc, ul);
    assert_int_equal(sotto_sealed_decrypt(&r, msg, ml, &f->bob, &f->root.pub, NOW),
                     SOTTO_ERR_INVALID_MESSAGE);
    /* A garbage certificate inside a well-sealed message. */
    ul = make_usmc(usmc, 2, (const uint8_t *)"\x0a\x01\x00", 3);
    ml = hand_seal(msg, &f->bob.pub, &f->alice, &f->alice.pub, usmc, ul);
    assert_int_equal(sotto_sealed_decrypt(&r, msg, ml, &f->bob, &f->root.pub, NOW),
                     SOTTO_ERR_CERT_MALFORMED);
    assert_null(r.content);
}

/* ---------------------------------------------------------------------- */
/* Delivery tokens                                                          */

static void test_delivery_token(void **state)
{
    uint8_t pk[32], pk2[32], tok[16], tok2[16], mac[32];
    (void)state;

    for (int i = 0; i < 32; i++) {
        pk[i] = (uint8_t)i;
        pk2[i] = (uint8_t)i;
    }
    pk2[31] ^= 1;
    assert_int_equal(sotto_delivery_token_derive(tok, pk), SOTTO_OK);
    hmac(mac, pk, 32, (const uint8_t *)"Sotto delivery token v1", 23);
    assert_memory_equal(tok, mac, 16);
    assert_true(sotto_delivery_token_equal(tok, mac));
    assert_int_equal(sotto_delivery_token_derive(tok2, pk2), SOTTO_OK);
    assert_false(sotto_delivery_token_equal(tok, tok2));
    assert_false(sotto_delivery_token_equal(tok, NULL));
}

static void test_error_strings(void **state)
{
    static const int codes[] = {SOTTO_ERR_CERT_MALFORMED, SOTTO_ERR_CERT_UNTRUSTED,
                                SOTTO_ERR_CERT_SIGNATURE, SOTTO_ERR_CERT_EXPIRED,
                                SOTTO_ERR_SEALED_MISMATCH};
    (void)state;
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        assert_string_not_equal(sotto_strerror(codes[i]), "unknown error");
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(sotto_strerror(codes[i]), sotto_strerror(codes[j]));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_server_certificate),
        cmocka_unit_test(test_sender_certificate),
        cmocka_unit_test(test_sender_certificate_create_refusals),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_encrypt_refuses_other_senders_certificate),
        cmocka_unit_test(test_tampered_truncated_version),
        cmocka_unit_test(test_independent_v1_and_mismatch),
        cmocka_unit_test(test_delivery_token),
        cmocka_unit_test(test_error_strings),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
