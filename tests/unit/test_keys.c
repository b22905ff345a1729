/*
 * Keys (sotto/keys.h): X25519 against Wycheproof and the spec section 8
 * vector, public key decoding, key pairs, registration ids, prekeys,
 * signed prekeys. Signatures and the field code are in test_keys_xeddsa.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
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

static void pub_from_hex(sotto_public_key *pk, const char *hex33)
{
    uint8_t b[33];
    tu_unhex_into(hex33, b, 33);
    assert_int_equal(sotto_public_key_decode(pk, b, 33), SOTTO_OK);
}

/* ---------------------------------------------------------------------- */

static void test_x25519_wycheproof(void **state)
{
    (void)state;
    json_t *j = tu_load_wycheproof("x25519_test.json");
    size_t gi, ti, n_valid = 0, n_acc_match = 0, n_acc_zero = 0;
    json_t *g, *t;
    static const uint8_t zero[32];

    json_array_foreach(json_object_get(j, "testGroups"), gi, g)
    {
        assert_string_equal(jstr(g, "curve"), "curve25519");
        json_array_foreach(json_object_get(g, "tests"), ti, t)
        {
            uint8_t priv[32], shared[32], out[32];
            sotto_public_key pk;
            const char *result = jstr(t, "result");
            int rc;

            pk.bytes[0] = SOTTO_KEY_TYPE_DJB;
            tu_unhex_into(jstr(t, "public"), pk.bytes + 1, 32);
            tu_unhex_into(jstr(t, "private"), priv, 32);
            tu_unhex_into(jstr(t, "shared"), shared, 32);
            memset(out, 0xAA, sizeof out);
            rc = sotto_dh(out, priv, &pk);
            if (strcmp(result, "valid") == 0) {
                /* Valid vectors must match. */
                assert_int_equal(rc, SOTTO_OK);
                assert_memory_equal(out, shared, 32);
                n_valid++;
            } else {
                assert_string_equal(result, "acceptable");
                /*
                 * Acceptable vectors (twist points, non-canonical u, low
                 * order points): we compute the RFC 7748 result and refuse
                 * exactly those whose shared secret is all zeros.
                 */
                if (memcmp(shared, zero, 32) == 0) {
                    assert_int_equal(rc, SOTTO_ERR_INVALID_KEY);
                    assert_memory_equal(out, zero, 32);
                    n_acc_zero++;
                } else {
                    assert_int_equal(rc, SOTTO_OK);
                    assert_memory_equal(out, shared, 32);
                    n_acc_match++;
                }
            }
        }
    }
    assert_int_equal(n_valid + n_acc_match + n_acc_zero, 518);
    assert_true(n_acc_zero > 0 && n_acc_match > 0);
    json_decref(j);
}

/* Spec section 8, test_curve25519_agreement. */
static void test_x25519_spec_vector(void **state)
{
    (void)state;
    uint8_t priv[32], exp[32], out[32];
    sotto_public_key bob;
    sotto_key_pair kp;

    tu_unhex_into("c806439dc9d2c476ffed8f2580c0888d58ab406bf7ae3698879021b96bb4bf59", priv, 32);
    pub_from_hex(&bob, "05653614993d2b15ee9e5fd3d86ce719ef4ec1daae1886a87b3f5fa9565a27a22f");
    tu_unhex_into("325f239328941ced6e673b86ba41017448e99b649a9c3806c1dd7ca4c477e629", exp, 32);
    assert_int_equal(sotto_dh(out, priv, &bob), SOTTO_OK);
    assert_memory_equal(out, exp, 32);
    /* The same through a key pair (clamping a clamped key changes nothing). */
    assert_int_equal(sotto_key_pair_from_private(&kp, priv), SOTTO_OK);
    assert_memory_equal(kp.priv, priv, 32);
    assert_int_equal(sotto_dh(out, kp.priv, &bob), SOTTO_OK);
    assert_memory_equal(out, exp, 32);
    sotto_key_pair_wipe(&kp);
}

static void test_dh_symmetric(void **state)
{
    (void)state;
    for (int i = 0; i < 16; i++) {
        sotto_key_pair a, b;
        uint8_t ab[32], ba[32];
        assert_int_equal(sotto_key_pair_generate(&a), SOTTO_OK);
        assert_int_equal(sotto_key_pair_generate(&b), SOTTO_OK);
        assert_int_equal(sotto_dh(ab, a.priv, &b.pub), SOTTO_OK);
        assert_int_equal(sotto_dh(ba, b.priv, &a.pub), SOTTO_OK);
        assert_memory_equal(ab, ba, 32);
        assert_false(sotto_public_key_equal(&a.pub, &b.pub));
        sotto_key_pair_wipe(&a);
        sotto_key_pair_wipe(&b);
    }
}

static void test_dh_rejects(void **state)
{
    (void)state;
    sotto_key_pair a;
    sotto_public_key pk;
    uint8_t out[32];

    assert_int_equal(sotto_key_pair_generate(&a), SOTTO_OK);
    /* u = 0 and u = 1 are low order: all-zero result. */
    memset(&pk, 0, sizeof pk);
    pk.bytes[0] = SOTTO_KEY_TYPE_DJB;
    assert_int_equal(sotto_dh(out, a.priv, &pk), SOTTO_ERR_INVALID_KEY);
    pk.bytes[1] = 1;
    assert_int_equal(sotto_dh(out, a.priv, &pk), SOTTO_ERR_INVALID_KEY);
    /* A struct with a wrong type byte (never produced by decode). */
    pk = a.pub;
    pk.bytes[0] = 0x06;
    assert_int_equal(sotto_dh(out, a.priv, &pk), SOTTO_ERR_INVALID_KEY);
    assert_int_equal(sotto_dh(out, a.priv, NULL), SOTTO_ERR_INVALID_ARGUMENT);
    sotto_key_pair_wipe(&a);
}

static void test_public_key_decode(void **state)
{
    (void)state;
    uint8_t b[40];
    sotto_public_key pk, pk2;

    memset(b, 0x42, sizeof b);
    b[0] = 0x05;
    assert_int_equal(sotto_public_key_decode(&pk, b, 33), SOTTO_OK);
    assert_memory_equal(pk.bytes, b, 33);
    /* Wrong lengths. */
    assert_int_equal(sotto_public_key_decode(&pk2, b, 0), SOTTO_ERR_INVALID_KEY);
    assert_int_equal(sotto_public_key_decode(&pk2, b, 1), SOTTO_ERR_INVALID_KEY);
    assert_int_equal(sotto_public_key_decode(&pk2, b, 32), SOTTO_ERR_INVALID_KEY);
    assert_int_equal(sotto_public_key_decode(&pk2, b, 34), SOTTO_ERR_INVALID_KEY);
    assert_int_equal(sotto_public_key_decode(&pk2, b + 1, 32), SOTTO_ERR_INVALID_KEY);
    /* Every wrong type byte. */
    for (int t = 0; t < 256; t++) {
        if (t == 0x05)
            continue;
        b[0] = (uint8_t)t;
        assert_int_equal(sotto_public_key_decode(&pk2, b, 33), SOTTO_ERR_INVALID_KEY);
    }
    assert_int_equal(sotto_public_key_decode(&pk2, NULL, 33), SOTTO_ERR_INVALID_KEY);
    assert_int_equal(sotto_public_key_decode(NULL, b, 33), SOTTO_ERR_INVALID_KEY);
    /* Equality. */
    pk2 = pk;
    assert_true(sotto_public_key_equal(&pk, &pk2));
    pk2.bytes[32] ^= 1;
    assert_false(sotto_public_key_equal(&pk, &pk2));
    assert_false(sotto_public_key_equal(&pk, NULL));
}

static void test_key_pair_from_private_clamps(void **state)
{
    (void)state;
    uint8_t ff[32];
    uint8_t u[32];
    sotto_key_pair kp;

    memset(ff, 0xFF, sizeof ff);
    assert_int_equal(sotto_key_pair_from_private(&kp, ff), SOTTO_OK);
    assert_int_equal(kp.priv[0], 0xF8);
    assert_int_equal(kp.priv[31], 0x7F);
    for (int i = 1; i < 31; i++)
        assert_int_equal(kp.priv[i], 0xFF);
    assert_int_equal(kp.pub.bytes[0], 0x05);
    assert_int_equal(crypto_scalarmult_base(u, kp.priv), 0);
    assert_memory_equal(kp.pub.bytes + 1, u, 32);
    assert_int_equal(sotto_key_pair_from_private(NULL, ff), SOTTO_ERR_INVALID_ARGUMENT);
    sotto_key_pair_wipe(&kp);
    for (size_t i = 0; i < sizeof kp; i++)
        assert_int_equal(((uint8_t *)&kp)[i], 0);
}

/* The private key of a generated pair is clamped and gives its public key. */
static void test_key_pair_generate(void **state)
{
    (void)state;
    sotto_key_pair a, b;
    uint8_t u[32];

    assert_int_equal(sotto_key_pair_generate(&a), SOTTO_OK);
    assert_int_equal(sotto_identity_key_pair_generate(&b), SOTTO_OK);
    assert_int_equal(a.priv[0] & 7, 0);
    assert_int_equal(a.priv[31] & 0xC0, 0x40);
    assert_int_equal(b.priv[0] & 7, 0);
    assert_int_equal(b.priv[31] & 0xC0, 0x40);
    assert_int_equal(crypto_scalarmult_base(u, a.priv), 0);
    assert_memory_equal(a.pub.bytes + 1, u, 32);
    assert_memory_not_equal(a.priv, b.priv, 32);
    assert_int_equal(sotto_key_pair_generate(NULL), SOTTO_ERR_INVALID_ARGUMENT);
    sotto_key_pair_wipe(&a);
    sotto_key_pair_wipe(&b);
}

struct fixed_rng {
    uint8_t byte;
};

static void fixed_rng_fn(void *ctx, void *p, size_t n)
{
    memset(p, ((struct fixed_rng *)ctx)->byte, n);
}

static void test_registration_id(void **state)
{
    (void)state;
    struct fixed_rng r;
    uint32_t id;

    /* (rand32 % 16380) + 1 with a controlled RNG. */
    r.byte = 0x00;
    sotto_test_set_random(fixed_rng_fn, &r);
    assert_int_equal(sotto_registration_id_generate(&id), SOTTO_OK);
    assert_int_equal(id, 1);
    r.byte = 0xFF;
    assert_int_equal(sotto_registration_id_generate(&id), SOTTO_OK);
    assert_int_equal(id, 256); /* 0xFFFFFFFF % 16380 = 255 */
    r.byte = 0x01;             /* 0x01010101 = 16843009; % 16380 = 4309 */
    assert_int_equal(sotto_registration_id_generate(&id), SOTTO_OK);
    assert_int_equal(id, 16843009u % 16380u + 1u);
    sotto_test_set_random(NULL, NULL);
    for (int i = 0; i < 200; i++) {
        assert_int_equal(sotto_registration_id_generate(&id), SOTTO_OK);
        assert_true(id >= 1 && id <= 16380);
    }
    assert_int_equal(sotto_registration_id_generate(NULL), SOTTO_ERR_INVALID_ARGUMENT);
}

static void test_prekeys_generate(void **state)
{
    (void)state;
    sotto_prekey pk[5];
    uint8_t u[32];

    /* Ids wrap from 0xFFFFFE back to 1 (spec 3.1). */
    assert_int_equal(sotto_prekeys_generate(pk, 0xFFFFFC, 5), SOTTO_OK);
    assert_int_equal(pk[0].id, 0xFFFFFD);
    assert_int_equal(pk[1].id, 0xFFFFFE);
    assert_int_equal(pk[2].id, 1);
    assert_int_equal(pk[3].id, 2);
    assert_int_equal(pk[4].id, 3);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(crypto_scalarmult_base(u, pk[i].key.priv), 0);
        assert_memory_equal(pk[i].key.pub.bytes + 1, u, 32);
        assert_int_equal(pk[i].key.pub.bytes[0], 0x05);
        if (i > 0)
            assert_memory_not_equal(pk[i].key.priv, pk[i - 1].key.priv, 32);
    }
    /* start 0 gives 1..; a start beyond 32 bits of headroom does not overflow. */
    assert_int_equal(sotto_prekeys_generate(pk, 0, 1), SOTTO_OK);
    assert_int_equal(pk[0].id, 1);
    assert_int_equal(sotto_prekeys_generate(pk, UINT32_MAX, 2), SOTTO_OK);
    assert_int_equal(pk[0].id, (uint32_t)(((uint64_t)UINT32_MAX % 0xFFFFFEu) + 1u));
    assert_int_equal(pk[1].id, (uint32_t)((((uint64_t)UINT32_MAX + 1u) % 0xFFFFFEu) + 1u));
    assert_int_equal(sotto_prekeys_generate(pk, 0, 0), SOTTO_OK);
    assert_int_equal(sotto_prekeys_generate(NULL, 0, 1), SOTTO_ERR_INVALID_ARGUMENT);
    sodium_memzero(pk, sizeof pk);
}

static void test_signed_prekey(void **state)
{
    (void)state;
    sotto_key_pair ik, other;
    sotto_signed_prekey spk;
    sotto_public_key pub;

    assert_int_equal(sotto_identity_key_pair_generate(&ik), SOTTO_OK);
    assert_int_equal(sotto_identity_key_pair_generate(&other), SOTTO_OK);
    assert_int_equal(sotto_signed_prekey_generate(&spk, &ik, 77, 1700000000123ull), SOTTO_OK);
    assert_int_equal(spk.id, 77);
    assert_true(spk.timestamp_ms == 1700000000123ull);
    assert_int_equal(spk.key.pub.bytes[0], 0x05);
    assert_int_equal(sotto_signed_prekey_verify(&ik.pub, &spk.key.pub, spk.signature), SOTTO_OK);
    /* The signature covers exactly the 33-byte serialised key (spec 3.2). */
    assert_int_equal(sotto_xeddsa_verify(&ik.pub, spk.key.pub.bytes, 33, spk.signature), SOTTO_OK);
    assert_int_equal(sotto_xeddsa_verify(&ik.pub, spk.key.pub.bytes + 1, 32, spk.signature),
                     SOTTO_ERR_INVALID_SIGNATURE);
    /* Wrong identity, wrong prekey, flipped signature bits. */
    assert_int_equal(sotto_signed_prekey_verify(&other.pub, &spk.key.pub, spk.signature),
                     SOTTO_ERR_INVALID_SIGNATURE);
    pub = spk.key.pub;
    pub.bytes[5] ^= 0x10;
    assert_int_equal(sotto_signed_prekey_verify(&ik.pub, &pub, spk.signature),
                     SOTTO_ERR_INVALID_SIGNATURE);
    for (int bit = 0; bit < 512; bit += 7) {
        uint8_t sig[64];
        memcpy(sig, spk.signature, 64);
        sig[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_int_equal(sotto_signed_prekey_verify(&ik.pub, &spk.key.pub, sig),
                         SOTTO_ERR_INVALID_SIGNATURE);
    }
    assert_int_equal(sotto_signed_prekey_verify(NULL, &spk.key.pub, spk.signature),
                     SOTTO_ERR_INVALID_SIGNATURE);
    assert_int_equal(sotto_signed_prekey_generate(NULL, &ik, 1, 0), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_signed_prekey_generate(&spk, NULL, 1, 0), SOTTO_ERR_INVALID_ARGUMENT);
    sotto_key_pair_wipe(&ik);
    sotto_key_pair_wipe(&other);
    sodium_memzero(&spk, sizeof spk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_x25519_wycheproof),
        cmocka_unit_test(test_x25519_spec_vector),
        cmocka_unit_test(test_dh_symmetric),
        cmocka_unit_test(test_dh_rejects),
        cmocka_unit_test(test_public_key_decode),
        cmocka_unit_test(test_key_pair_from_private_clamps),
        cmocka_unit_test(test_key_pair_generate),
        cmocka_unit_test(test_registration_id),
        cmocka_unit_test(test_prekeys_generate),
        cmocka_unit_test(test_signed_prekey),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
