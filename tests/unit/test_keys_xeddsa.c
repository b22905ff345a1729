/*
 * XEdDSA signatures (spec section 3.3) and the GF(2^255-19) code behind
 * the Montgomery <-> Edwards conversion: the spec section 8 vector, the
 * Wycheproof Ed25519 vectors pushed through the XEdDSA verification path,
 * sign/verify round trips and bit flips.
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
#include "crypto/fe25519.h"
#include "keys/xeddsa.h"
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

/* ---------------------------------------------------------------------- */
/* Field arithmetic                                                         */

static const char *P_HEX = "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f";

static void test_fe_base_point(void **state)
{
    (void)state;
    uint8_t u[32] = {9}, y[32], exp[32], back[32];

    /* The Ed25519 base point has y = 4/5, the Curve25519 one u = 9. */
    tu_unhex_into("5866666666666666666666666666666666666666666666666666666666666666", exp, 32);
    sotto_fe_mont_u_to_ed_y(y, u);
    assert_memory_equal(y, exp, 32);
    sotto_fe_ed_y_to_mont_u(back, y);
    assert_memory_equal(back, u, 32);
    /* Bit 255 of the input is ignored. */
    u[31] |= 0x80;
    sotto_fe_mont_u_to_ed_y(y, u);
    assert_memory_equal(y, exp, 32);
}

static void test_fe_edge_cases(void **state)
{
    (void)state;
    uint8_t u[32], y[32], zero[32] = {0}, one[32] = {1}, pm1[32], pm2[32];

    tu_unhex_into(P_HEX, pm1, 32);
    pm1[0] -= 1; /* p - 1 = -1 */
    memcpy(pm2, pm1, 32);
    pm2[0] -= 1; /* p - 2 = -2 */
    /* u = -1: u + 1 = 0, whose "inverse" is 0, so y = 0 (as Signal). */
    sotto_fe_mont_u_to_ed_y(y, pm1);
    assert_memory_equal(y, zero, 32);
    /* u = 1: y = 0 too. u = 0: y = -1 = p - 1 (canonical). */
    sotto_fe_mont_u_to_ed_y(y, one);
    assert_memory_equal(y, zero, 32);
    sotto_fe_mont_u_to_ed_y(y, zero);
    assert_memory_equal(y, pm1, 32);
    /* Non-canonical u = p + 1 is u = 1. */
    tu_unhex_into(P_HEX, u, 32);
    u[0] += 1;
    sotto_fe_mont_u_to_ed_y(y, u);
    assert_memory_equal(y, zero, 32);
    /* u = p (= 0): y = p - 1. */
    tu_unhex_into(P_HEX, u, 32);
    sotto_fe_mont_u_to_ed_y(y, u);
    assert_memory_equal(y, pm1, 32);
    /* u = 2^255 - 1 (= 18 mod p): (17/19) computed both ways agree. */
    memset(u, 0xFF, 32);
    u[31] = 0x7F;
    {
        uint8_t u18[32] = {18}, y18[32];
        sotto_fe_mont_u_to_ed_y(y, u);
        sotto_fe_mont_u_to_ed_y(y18, u18);
        assert_memory_equal(y, y18, 32);
    }
    /* y = -2 gives u = (1 - 2) / 3 = -1/3; back again gives -2. */
    sotto_fe_ed_y_to_mont_u(u, pm2);
    sotto_fe_mont_u_to_ed_y(y, u);
    assert_memory_equal(y, pm2, 32);
}

static void test_fe_invert_random(void **state)
{
    (void)state;
    for (int i = 0; i < 64; i++) {
        uint8_t b[32], out[32], one[32] = {1};
        sotto_fe a, inv, prod;
        randombytes_buf(b, sizeof b);
        if (i == 0)
            memset(b, 0xFF, 32); /* the largest input, non-canonical */
        sotto_fe_frombytes(&a, b);
        sotto_fe_invert(&inv, &a);
        sotto_fe_mul(&prod, &a, &inv);
        sotto_fe_tobytes(out, &prod);
        assert_memory_equal(out, one, 32);
        /* a - a = 0 and (a + a) - a = a. */
        sotto_fe s, z, ca;
        uint8_t zb[32] = {0}, x1[32], x2[32];
        sotto_fe_sub(&z, &a, &a);
        sotto_fe_tobytes(out, &z);
        assert_memory_equal(out, zb, 32);
        sotto_fe_add(&s, &a, &a);
        sotto_fe_sub(&s, &s, &a);
        sotto_fe_tobytes(x1, &s);
        ca = a;
        sotto_fe_tobytes(x2, &ca);
        assert_memory_equal(x1, x2, 32);
        /* The canonical encoding is below p. */
        assert_true((x2[31] & 0x80) == 0);
    }
    /* Inverse of zero is zero. */
    sotto_fe z, inv;
    uint8_t out[32], zb[32] = {0};
    sotto_fe_set_u32(&z, 0);
    sotto_fe_invert(&inv, &z);
    sotto_fe_tobytes(out, &inv);
    assert_memory_equal(out, zb, 32);
}

/* The conversion agrees with libsodium's own Ed25519 -> Curve25519 map
 * for random Edwards points (independent code). */
static void test_fe_matches_libsodium(void **state)
{
    (void)state;
    for (int i = 0; i < 64; i++) {
        uint8_t pk[32], sk[64], u_ref[32], u[32], y[32];
        crypto_sign_keypair(pk, sk);
        assert_int_equal(crypto_sign_ed25519_pk_to_curve25519(u_ref, pk), 0);
        sotto_fe_ed_y_to_mont_u(u, pk);
        assert_memory_equal(u, u_ref, 32);
        sotto_fe_mont_u_to_ed_y(y, u);
        pk[31] &= 0x7F;
        assert_memory_equal(y, pk, 32);
        sodium_memzero(sk, sizeof sk);
    }
}

/* ---------------------------------------------------------------------- */
/* Signatures                                                               */

/* Spec section 8, test_curve25519_signature. */
static void test_spec_signature_vector(void **state)
{
    (void)state;
    sotto_public_key pub;
    uint8_t pubb[33], msg[33], sig[64], priv[32];
    sotto_key_pair kp;

    tu_unhex_into("05ab7e717d4a163b7d9a1d8071dfe9dcf8cdcd1cea3339b6356be84d887e322c64", pubb, 33);
    tu_unhex_into("05edce9d9c415ca78cb7252e72c2c4a554d3eb29485a0e1d503118d1a82d99fb4a", msg, 33);
    tu_unhex_into("5de88ca9a89b4a115da79109c67c9c7464a3e4180274f1cb8c63c2984e286dfb"
                  "ede82deb9dcd9fae0bfbb821569b3d9001bd8130cd11d486cef047bd60b86e88",
                  sig, 64);
    tu_unhex_into("c097248412e58bf05df487968205132794178e367637f5818f81e0e6ce73e865", priv, 32);
    assert_int_equal(sotto_public_key_decode(&pub, pubb, 33), SOTTO_OK);
    assert_int_equal(sig[63] >> 7, 1); /* sign bit set in this vector */
    assert_int_equal(sotto_xeddsa_verify(&pub, msg, 33, sig), SOTTO_OK);
    /* The private key belongs to the public key. */
    assert_int_equal(sotto_key_pair_from_private(&kp, priv), SOTTO_OK);
    assert_true(sotto_public_key_equal(&kp.pub, &pub));
    /* Flipping any bit of the signature breaks it. */
    for (int bit = 0; bit < 512; bit++) {
        uint8_t s2[64];
        memcpy(s2, sig, 64);
        s2[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_int_equal(sotto_xeddsa_verify(&pub, msg, 33, s2), SOTTO_ERR_INVALID_SIGNATURE);
    }
    /* Flipping any bit of the message breaks it. */
    for (int bit = 0; bit < 33 * 8; bit++) {
        uint8_t m2[33];
        memcpy(m2, msg, 33);
        m2[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_int_equal(sotto_xeddsa_verify(&pub, m2, 33, sig), SOTTO_ERR_INVALID_SIGNATURE);
    }
    /* And any bit of the key's u (bit 255 of u is ignored by design). */
    for (int bit = 0; bit < 255; bit++) {
        sotto_public_key p2 = pub;
        p2.bytes[1 + bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_int_equal(sotto_xeddsa_verify(&p2, msg, 33, sig), SOTTO_ERR_INVALID_SIGNATURE);
    }
    {
        sotto_public_key p2 = pub;
        p2.bytes[32] ^= 0x80;
        assert_int_equal(sotto_xeddsa_verify(&p2, msg, 33, sig), SOTTO_OK);
        p2.bytes[0] = 0x06;
        assert_int_equal(sotto_xeddsa_verify(&p2, msg, 33, sig), SOTTO_ERR_INVALID_SIGNATURE);
    }
    /* Our signature with the same key verifies and carries the same sign bit. */
    {
        uint8_t mine[64];
        assert_int_equal(sotto_xeddsa_sign(mine, kp.priv, msg, 33), SOTTO_OK);
        assert_int_equal(sotto_xeddsa_verify(&pub, msg, 33, mine), SOTTO_OK);
        assert_int_equal(mine[63] & 0x80, sig[63] & 0x80);
    }
    sotto_key_pair_wipe(&kp);
}

/*
 * Wycheproof Ed25519 through the XEdDSA verification path: the Edwards key
 * (y, sign bit) becomes the Montgomery u = (1 + y) / (1 - y) with our field
 * code, and the key's sign bit moves into sig[63] bit 7, where XEdDSA
 * carries it. sotto_xeddsa_verify then rebuilds exactly the Edwards key.
 *
 * Vector classes that cannot go this way:
 *  - signatures not 64 bytes long (TruncatedSignature, SignatureWithGarbage,
 *    some CompressedSignature): the API takes a fixed 64-byte array, the
 *    length check is the caller's parser's (spec 3.2). They must all be
 *    "invalid"; they are counted and not verified.
 *  - 64-byte signatures with bit 255 of S set: in XEdDSA that bit IS the
 *    key's sign bit, so the vector's S is not expressible. These are
 *    invalid Ed25519 (S >= L); they go through the internal Edwards verify
 *    (the final step of sotto_xeddsa_verify) with the original key and must
 *    fail there.
 * Every Wycheproof key is canonical with y != 1, so the conversion round
 * trips (asserted).
 */
static void test_ed25519_wycheproof_via_xeddsa(void **state)
{
    (void)state;
    json_t *j = tu_load_wycheproof("ed25519_test.json");
    size_t gi, ti, n_xed = 0, n_len = 0, n_edw = 0, n_valid = 0;
    json_t *g, *t;

    json_array_foreach(json_object_get(j, "testGroups"), gi, g)
    {
        uint8_t ed[32], y[32], back[32];
        sotto_public_key pub;
        uint8_t sign_bit;

        tu_unhex_into(jstr(json_object_get(g, "publicKey"), "pk"), ed, 32);
        sign_bit = ed[31] & 0x80;
        memcpy(y, ed, 32);
        y[31] &= 0x7F;
        pub.bytes[0] = SOTTO_KEY_TYPE_DJB;
        sotto_fe_ed_y_to_mont_u(pub.bytes + 1, y);
        sotto_fe_mont_u_to_ed_y(back, pub.bytes + 1);
        assert_memory_equal(back, y, 32);

        json_array_foreach(json_object_get(g, "tests"), ti, t)
        {
            size_t mlen, slen;
            uint8_t *msg = tu_unhex(jstr(t, "msg"), &mlen);
            uint8_t *sig = tu_unhex(jstr(t, "sig"), &slen);
            bool valid = strcmp(jstr(t, "result"), "valid") == 0;

            if (valid)
                n_valid++;
            if (slen != 64) {
                assert_false(valid);
                n_len++;
            } else if (sig[63] & 0x80) {
                assert_false(valid);
                assert_int_equal(sotto_ed25519_verify_internal(ed, msg, mlen, sig),
                                 SOTTO_ERR_INVALID_SIGNATURE);
                n_edw++;
            } else {
                uint8_t xs[64];
                memcpy(xs, sig, 64);
                xs[63] |= sign_bit;
                int rc = sotto_xeddsa_verify(&pub, msg, mlen, xs);
                if (valid)
                    assert_int_equal(rc, SOTTO_OK);
                else
                    assert_int_equal(rc, SOTTO_ERR_INVALID_SIGNATURE);
                /* And the plain Edwards path agrees. */
                assert_int_equal(sotto_ed25519_verify_internal(ed, msg, mlen, sig), rc);
                n_xed++;
            }
            free(msg);
            free(sig);
        }
    }
    assert_int_equal(n_valid, 88);
    /* 136 through XEdDSA, 12 of the wrong length, 3 with S's top bit set. */
    assert_int_equal(n_xed, 136);
    assert_int_equal(n_len, 12);
    assert_int_equal(n_edw, 3);
    json_decref(j);
}

static void test_sign_verify_roundtrip(void **state)
{
    (void)state;
    uint8_t msg[300];

    randombytes_buf(msg, sizeof msg);
    for (int i = 0; i < 48; i++) {
        sotto_key_pair kp, other;
        uint8_t sig[64];
        size_t mlen = (size_t)(i * 7) % sizeof msg;

        assert_int_equal(sotto_key_pair_generate(&kp), SOTTO_OK);
        assert_int_equal(sotto_key_pair_generate(&other), SOTTO_OK);
        assert_int_equal(sotto_xeddsa_sign(sig, kp.priv, mlen ? msg : NULL, mlen), SOTTO_OK);
        assert_int_equal(sig[63] & 0x60, 0);
        assert_int_equal(sotto_xeddsa_verify(&kp.pub, mlen ? msg : NULL, mlen, sig), SOTTO_OK);
        assert_int_equal(sotto_xeddsa_verify(&other.pub, mlen ? msg : NULL, mlen, sig),
                         SOTTO_ERR_INVALID_SIGNATURE);
        /* A few bit flips of signature and message. */
        for (int k = 0; k < 8; k++) {
            uint8_t s2[64];
            uint32_t bit = randombytes_uniform(512);
            memcpy(s2, sig, 64);
            s2[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            assert_int_equal(sotto_xeddsa_verify(&kp.pub, msg, mlen, s2),
                             SOTTO_ERR_INVALID_SIGNATURE);
        }
        if (mlen > 0) {
            uint32_t bit = randombytes_uniform((uint32_t)mlen * 8);
            msg[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            assert_int_equal(sotto_xeddsa_verify(&kp.pub, msg, mlen, sig),
                             SOTTO_ERR_INVALID_SIGNATURE);
            msg[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        }
        /* The Edwards key XEdDSA rebuilds is a.B with the sign bit from sig. */
        {
            uint8_t wide[64] = {0}, a[32], A[32], y[32];
            memcpy(wide, kp.priv, 32);
            crypto_core_ed25519_scalar_reduce(a, wide);
            assert_int_equal(crypto_scalarmult_ed25519_base_noclamp(A, a), 0);
            sotto_fe_mont_u_to_ed_y(y, kp.pub.bytes + 1);
            assert_memory_equal(y, A, 31);
            assert_int_equal(y[31], A[31] & 0x7F);
            assert_int_equal(sig[63] & 0x80, A[31] & 0x80);
            /* Plain Ed25519 accepts the signature with the bit cleared. */
            uint8_t s2[64];
            memcpy(s2, sig, 64);
            s2[63] &= 0x7F;
            assert_int_equal(sotto_ed25519_verify_internal(A, msg, mlen, s2), SOTTO_OK);
            sodium_memzero(wide, sizeof wide);
            sodium_memzero(a, sizeof a);
        }
        sotto_key_pair_wipe(&kp);
        sotto_key_pair_wipe(&other);
    }
}

/* Unclamped private bytes sign as their clamped form (the X25519 key). */
static void test_sign_unclamped_private(void **state)
{
    (void)state;
    for (int i = 0; i < 16; i++) {
        uint8_t raw[32], sig[64];
        const uint8_t msg[4] = {9, 8, 7, 6};
        sotto_key_pair kp;
        randombytes_buf(raw, sizeof raw);
        raw[0] |= 7; /* make sure clamping changes something */
        raw[31] |= 0x80;
        assert_int_equal(sotto_key_pair_from_private(&kp, raw), SOTTO_OK);
        assert_int_equal(sotto_xeddsa_sign(sig, raw, msg, sizeof msg), SOTTO_OK);
        assert_int_equal(sotto_xeddsa_verify(&kp.pub, msg, sizeof msg, sig), SOTTO_OK);
        sotto_key_pair_wipe(&kp);
        sodium_memzero(raw, sizeof raw);
    }
}

/* The top bits of S: sig[63] & 0x60 set is rejected before Ed25519 runs. */
static void test_verify_rejects_high_s_bits(void **state)
{
    (void)state;
    sotto_key_pair kp;
    uint8_t sig[64], msg[5] = {1, 2, 3, 4, 5};

    assert_int_equal(sotto_key_pair_generate(&kp), SOTTO_OK);
    assert_int_equal(sotto_xeddsa_sign(sig, kp.priv, msg, sizeof msg), SOTTO_OK);
    for (int b = 5; b <= 6; b++) {
        uint8_t s2[64];
        memcpy(s2, sig, 64);
        s2[63] |= (uint8_t)(1u << b);
        assert_int_equal(sotto_xeddsa_verify(&kp.pub, msg, sizeof msg, s2),
                         SOTTO_ERR_INVALID_SIGNATURE);
    }
    assert_int_equal(sotto_xeddsa_verify(NULL, msg, sizeof msg, sig), SOTTO_ERR_INVALID_SIGNATURE);
    assert_int_equal(sotto_xeddsa_verify(&kp.pub, NULL, 5, sig), SOTTO_ERR_INVALID_SIGNATURE);
    sotto_key_pair_wipe(&kp);
}

struct counter_rng {
    uint8_t next;
};

static void counter_rng_fn(void *ctx, void *p, size_t n)
{
    struct counter_rng *c = ctx;
    uint8_t *o = p;
    for (size_t i = 0; i < n; i++)
        o[i] = c->next++;
}

/* With the RNG fixed the signature is deterministic; other Z, other R. */
static void test_sign_uses_rng(void **state)
{
    (void)state;
    sotto_key_pair kp;
    struct counter_rng r;
    uint8_t s1[64], s2[64], s3[64];
    const uint8_t msg[3] = {'a', 'b', 'c'};

    assert_int_equal(sotto_key_pair_generate(&kp), SOTTO_OK);
    sotto_test_set_random(counter_rng_fn, &r);
    r.next = 0;
    assert_int_equal(sotto_xeddsa_sign(s1, kp.priv, msg, 3), SOTTO_OK);
    r.next = 0;
    assert_int_equal(sotto_xeddsa_sign(s2, kp.priv, msg, 3), SOTTO_OK);
    r.next = 1;
    assert_int_equal(sotto_xeddsa_sign(s3, kp.priv, msg, 3), SOTTO_OK);
    sotto_test_set_random(NULL, NULL);
    assert_memory_equal(s1, s2, 64);
    assert_memory_not_equal(s1, s3, 32);
    assert_int_equal(sotto_xeddsa_verify(&kp.pub, msg, 3, s1), SOTTO_OK);
    assert_int_equal(sotto_xeddsa_verify(&kp.pub, msg, 3, s3), SOTTO_OK);
    sotto_key_pair_wipe(&kp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fe_base_point),
        cmocka_unit_test(test_fe_edge_cases),
        cmocka_unit_test(test_fe_invert_random),
        cmocka_unit_test(test_fe_matches_libsodium),
        cmocka_unit_test(test_spec_signature_vector),
        cmocka_unit_test(test_ed25519_wycheproof_via_xeddsa),
        cmocka_unit_test(test_sign_verify_roundtrip),
        cmocka_unit_test(test_sign_unclamped_private),
        cmocka_unit_test(test_verify_rejects_high_s_bits),
        cmocka_unit_test(test_sign_uses_rng),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
