/*
 * ECVRF-EDWARDS25519-SHA512-TAI (sotto/vrf.h, RFC 9381 section 5, suite
 * 5.5): every example of shared/vectors/vrf/rfc9381_ed25519_sha512_tai.json
 * (PK, x, ctr, H, k_string, k, U, V, pi and beta from SK and alpha), verify
 * accepting each, every single-bit flip of pi (640) and of PK (256)
 * refused, alpha changed refused, small-order and non-canonical keys
 * refused, s >= L refused, and the cofactor handling: a key and a Gamma
 * with a torsion part (which libsodium's scalar multiplication refuses)
 * verified as the RFC says, with the same beta.
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

#include "kt/vrf_internal.h"
#include "sotto/keys.h"
#include "sotto/vrf.h"
#include "testutil.h"

typedef struct vrf_vector {
    int example;
    uint8_t sk[32], pk[32], x[32], h[32], k_string[64], k[32], u[32], v[32];
    uint8_t pi[80], beta[64];
    uint8_t *alpha;
    size_t alpha_len;
    int ctr;
} vrf_vector;

/* NULL through volatile: the [static n] parameters forbid a literal NULL. */
static const uint8_t *volatile null_in;
static uint8_t *volatile null_out;

static vrf_vector g_vec[3];
static size_t g_nvec;

/* L = 2^252 + 27742317777372353535851937790883648493, little-endian. */
static const uint8_t L_BYTES[32] = {
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10};

static const char *field(json_t *o, const char *name)
{
    json_t *v = json_object_get(o, name);
    if (!json_is_string(v))
        fail_msg("vector field %s missing", name);
    return json_string_value(v);
}

static int load_vectors(void **state)
{
    (void)state;
    char *path = tu_shared_path("vectors/vrf/rfc9381_ed25519_sha512_tai.json");
    json_error_t err;
    json_t *root = json_load_file(path, 0, &err);
    size_t i;
    json_t *o;

    free(path);
    if (!json_is_array(root) || json_array_size(root) != 3)
        return -1;
    json_array_foreach(root, i, o)
    {
        vrf_vector *v = &g_vec[i];
        v->example = (int)json_integer_value(json_object_get(o, "example"));
        v->ctr = (int)json_integer_value(json_object_get(o, "ctr"));
        tu_unhex_into(field(o, "sk"), v->sk, 32);
        tu_unhex_into(field(o, "pk"), v->pk, 32);
        tu_unhex_into(field(o, "x"), v->x, 32);
        tu_unhex_into(field(o, "h"), v->h, 32);
        tu_unhex_into(field(o, "k_string"), v->k_string, 64);
        tu_unhex_into(field(o, "k"), v->k, 32);
        tu_unhex_into(field(o, "u"), v->u, 32);
        tu_unhex_into(field(o, "v"), v->v, 32);
        tu_unhex_into(field(o, "pi"), v->pi, 80);
        tu_unhex_into(field(o, "beta"), v->beta, 64);
        v->alpha = tu_unhex(field(o, "alpha"), &v->alpha_len);
    }
    g_nvec = 3;
    json_decref(root);
    return sotto_init() == SOTTO_OK ? 0 : -1;
}

static int free_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < g_nvec; i++)
        free(g_vec[i].alpha);
    return 0;
}

static void test_known_answers(void **state)
{
    (void)state;
    assert_int_equal(g_nvec, 3);
    for (size_t i = 0; i < g_nvec; i++) {
        const vrf_vector *t = &g_vec[i];
        sotto_vrf_key_pair kp;
        uint8_t x[32], prefix[32], h[32], k[32], k_string[64], u[32], v[32];
        uint8_t pi[80], beta[64], beta2[64];
        int ctr = -1;
        crypto_hash_sha512_state st;

        assert_int_equal(sotto_vrf_key_pair_from_seed(&kp, t->sk), SOTTO_OK);
        assert_memory_equal(kp.pk, t->pk, 32);
        assert_int_equal(sotto_vrf_expand_secret(x, prefix, t->sk), SOTTO_OK);
        assert_memory_equal(x, t->x, 32);

        assert_int_equal(sotto_vrf_encode_to_curve(h, &ctr, t->pk, t->alpha, t->alpha_len),
                         SOTTO_OK);
        assert_int_equal(ctr, t->ctr);
        assert_memory_equal(h, t->h, 32);

        crypto_hash_sha512_init(&st);
        crypto_hash_sha512_update(&st, prefix, 32);
        crypto_hash_sha512_update(&st, h, 32);
        crypto_hash_sha512_final(&st, k_string);
        assert_memory_equal(k_string, t->k_string, 64);
        assert_int_equal(sotto_vrf_nonce(k, prefix, h), SOTTO_OK);
        assert_memory_equal(k, t->k, 32);
        assert_int_equal(crypto_scalarmult_ed25519_base_noclamp(u, k), 0);
        assert_memory_equal(u, t->u, 32);
        assert_int_equal(sotto_vrf_point_mul(v, k, h), SOTTO_OK);
        assert_memory_equal(v, t->v, 32);

        assert_int_equal(sotto_vrf_prove(pi, &kp, t->alpha, t->alpha_len), SOTTO_OK);
        assert_memory_equal(pi, t->pi, 80);
        assert_int_equal(sotto_vrf_proof_to_hash(beta, pi), SOTTO_OK);
        assert_memory_equal(beta, t->beta, 64);
        assert_int_equal(sotto_vrf_validate_key(t->pk), SOTTO_OK);
        assert_int_equal(sotto_vrf_verify(beta2, t->pk, t->alpha, t->alpha_len, t->pi), SOTTO_OK);
        assert_memory_equal(beta2, t->beta, 64);
        sotto_vrf_key_pair_wipe(&kp);
        assert_true(sodium_is_zero(kp.sk, 32));
        sodium_memzero(x, sizeof x);
        sodium_memzero(prefix, sizeof prefix);
    }
}

static void test_every_pi_bit_flip_rejected(void **state)
{
    (void)state;
    for (size_t i = 0; i < g_nvec; i++) {
        const vrf_vector *t = &g_vec[i];
        for (int bit = 0; bit < 640; bit++) {
            uint8_t pi[80], beta[64];
            memcpy(pi, t->pi, 80);
            pi[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            memset(beta, 0xAA, sizeof beta);
            int rc = sotto_vrf_verify(beta, t->pk, t->alpha, t->alpha_len, pi);
            if (rc != SOTTO_ERR_INVALID_SIGNATURE)
                fail_msg("example %d bit %d: rc %d", t->example, bit, rc);
            assert_true(sodium_is_zero(beta, sizeof beta));
        }
    }
}

static void test_every_pk_bit_flip_rejected(void **state)
{
    (void)state;
    for (size_t i = 0; i < g_nvec; i++) {
        const vrf_vector *t = &g_vec[i];
        for (int bit = 0; bit < 256; bit++) {
            uint8_t pk[32], beta[64];
            memcpy(pk, t->pk, 32);
            pk[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            int rc = sotto_vrf_verify(beta, pk, t->alpha, t->alpha_len, t->pi);
            if (rc != SOTTO_ERR_INVALID_SIGNATURE && rc != SOTTO_ERR_INVALID_KEY)
                fail_msg("example %d bit %d: rc %d", t->example, bit, rc);
            assert_int_equal(rc, sotto_vrf_validate_key(pk) == SOTTO_OK
                                     ? SOTTO_ERR_INVALID_SIGNATURE
                                     : SOTTO_ERR_INVALID_KEY);
        }
    }
}

static void test_alpha_changed_rejected(void **state)
{
    (void)state;
    for (size_t i = 0; i < g_nvec; i++) {
        const vrf_vector *t = &g_vec[i];
        uint8_t alpha[8], beta[64];
        if (t->alpha_len > 0)
            memcpy(alpha, t->alpha, t->alpha_len);
        alpha[t->alpha_len] = 0x00; /* one byte longer */
        assert_int_equal(sotto_vrf_verify(beta, t->pk, alpha, t->alpha_len + 1, t->pi),
                         SOTTO_ERR_INVALID_SIGNATURE);
        if (t->alpha_len > 0) {
            alpha[0] ^= 0x01; /* same length, one bit */
            assert_int_equal(sotto_vrf_verify(beta, t->pk, alpha, t->alpha_len, t->pi),
                             SOTTO_ERR_INVALID_SIGNATURE);
            /* shorter */
            assert_int_equal(sotto_vrf_verify(beta, t->pk, t->alpha, t->alpha_len - 1, t->pi),
                             SOTTO_ERR_INVALID_SIGNATURE);
        }
        /* another example's proof under this key and alpha */
        assert_int_equal(
            sotto_vrf_verify(beta, t->pk, t->alpha, t->alpha_len, g_vec[(i + 1) % 3].pi),
            SOTTO_ERR_INVALID_SIGNATURE);
    }
}

/* Small-order points (the 8 torsion points) and non-canonical encodings. */
static const char *const BAD_KEYS[] = {
    /* identity (0, 1) */
    "0100000000000000000000000000000000000000000000000000000000000000",
    /* order 2: (0, -1) */
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    /* order 4: (+-sqrt(-1), 0) */
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000000080",
    /* order 8 */
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
    /* identity with the sign bit set on x = 0 (non-canonical) */
    "0100000000000000000000000000000000000000000000000000000000000080",
    /* y = p + 1 (the identity, non-canonical y >= p) */
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    /* y = p (0 mod p: an order-4 point, non-canonical) */
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    /* y = 2: not on the curve */
    "0200000000000000000000000000000000000000000000000000000000000000",
};

static void test_bad_keys_rejected(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof BAD_KEYS / sizeof BAD_KEYS[0]; i++) {
        uint8_t pk[32], beta[64];
        tu_unhex_into(BAD_KEYS[i], pk, 32);
        assert_int_equal(sotto_vrf_validate_key(pk), SOTTO_ERR_INVALID_KEY);
        for (size_t j = 0; j < g_nvec; j++)
            assert_int_equal(
                sotto_vrf_verify(beta, pk, g_vec[j].alpha, g_vec[j].alpha_len, g_vec[j].pi),
                SOTTO_ERR_INVALID_KEY);
    }
    /* The first 8 are curve points of order dividing 8 (decodable), so
     * only validate_key's cofactor check refuses them; the order-8 ones
     * have 4*T != identity. */
    for (size_t i = 0; i < 8; i++) {
        uint8_t p[32], p8[32], p4[32];
        tu_unhex_into(BAD_KEYS[i], p, 32);
        assert_int_equal(sotto_vrf_string_to_point(p), SOTTO_OK);
        assert_int_equal(sotto_vrf_mul_cofactor(p8, p), SOTTO_OK);
        assert_int_equal(p8[0], 1);
        assert_true(sodium_is_zero(p8 + 1, 31));
        if (i >= 4) {
            assert_int_equal(crypto_core_ed25519_add(p4, p, p), 0);
            assert_int_equal(crypto_core_ed25519_add(p4, p4, p4), 0);
            assert_false(p4[0] == 1 && sodium_is_zero(p4 + 1, 31));
        }
    }
    for (size_t i = 8; i < sizeof BAD_KEYS / sizeof BAD_KEYS[0]; i++) {
        uint8_t p[32];
        tu_unhex_into(BAD_KEYS[i], p, 32);
        assert_int_equal(sotto_vrf_string_to_point(p), SOTTO_ERR_INVALID_KEY);
    }
}

/* s' = s + L (< 2^256) and s' = L: same value mod L, must be refused. */
static void test_s_not_reduced_rejected(void **state)
{
    (void)state;
    for (size_t i = 0; i < g_nvec; i++) {
        const vrf_vector *t = &g_vec[i];
        uint8_t pi[80], beta[64];
        unsigned carry = 0;
        memcpy(pi, t->pi, 80);
        for (int j = 0; j < 32; j++) {
            unsigned sum = pi[48 + j] + L_BYTES[j] + carry;
            pi[48 + j] = (uint8_t)sum;
            carry = sum >> 8;
        }
        assert_int_equal(carry, 0);
        assert_int_equal(sotto_vrf_verify(beta, t->pk, t->alpha, t->alpha_len, pi),
                         SOTTO_ERR_INVALID_SIGNATURE);
        assert_int_equal(sotto_vrf_proof_to_hash(beta, pi), SOTTO_ERR_INVALID_SIGNATURE);
        assert_true(sodium_is_zero(beta, sizeof beta));
        memcpy(pi + 48, L_BYTES, 32);
        assert_int_equal(sotto_vrf_proof_to_hash(beta, pi), SOTTO_ERR_INVALID_SIGNATURE);
        /* L - 1 decodes (and then fails the challenge). */
        pi[48] = (uint8_t)(L_BYTES[0] - 1);
        assert_int_equal(sotto_vrf_proof_to_hash(beta, pi), SOTTO_OK);
        assert_int_equal(sotto_vrf_verify(beta, t->pk, t->alpha, t->alpha_len, pi),
                         SOTTO_ERR_INVALID_SIGNATURE);
    }
}

/*
 * Cofactor handling. The RFC verifies with c*Y and c*Gamma for ANY
 * decodable Y (validate_key only refuses small order) and Gamma. A prover
 * who adds a torsion point T to Gamma (or to its key) can make a proof
 * that verifies whenever c*T is the identity; proof_to_hash multiplies
 * Gamma by 8 so beta stays the same. Built here by grinding the nonce:
 * these proofs exercise the torsion path of sotto_vrf_point_mul (libsodium
 * alone refuses such points), and a wrong torsion result fails them.
 */
static void grind_torsion_proof(uint8_t pi[80], uint8_t pk_out[32], int torsion_on_key,
                                const uint8_t t_point[32], unsigned order)
{
    const vrf_vector *t = &g_vec[0];
    uint8_t x[32], prefix[32], xr[32], wide[64], h[32], gamma[32], u[32], v[32];
    uint8_t c[32], cx[32], s[32], k[32], y[32];

    assert_int_equal(sotto_vrf_expand_secret(x, prefix, t->sk), SOTTO_OK);
    memset(wide, 0, sizeof wide);
    memcpy(wide, x, 32);
    crypto_core_ed25519_scalar_reduce(xr, wide);
    memcpy(y, t->pk, 32);
    if (torsion_on_key)
        assert_int_equal(crypto_core_ed25519_add(y, t->pk, t_point), 0);
    assert_int_equal(crypto_core_ed25519_is_valid_point(y), !torsion_on_key);
    assert_int_equal(sotto_vrf_validate_key(y), SOTTO_OK);
    assert_int_equal(sotto_vrf_encode_to_curve(h, NULL, y, t->alpha, t->alpha_len), SOTTO_OK);
    assert_int_equal(crypto_scalarmult_ed25519_noclamp(gamma, xr, h), 0);
    if (!torsion_on_key)
        assert_int_equal(crypto_core_ed25519_add(gamma, gamma, t_point), 0);
    for (uint32_t n = 0; n < 1000; n++) {
        uint8_t seed[4] = {(uint8_t)n, (uint8_t)(n >> 8), 0, 0};
        crypto_hash_sha512(wide, seed, sizeof seed);
        crypto_core_ed25519_scalar_reduce(k, wide);
        /* U = s*B - c*Y = k*B - c*T_Y, V = s*H - c*Gamma = k*H - c*T_G:
         * with c = 0 mod order both are k*B, k*H. */
        assert_int_equal(crypto_scalarmult_ed25519_base_noclamp(u, k), 0);
        assert_int_equal(crypto_scalarmult_ed25519_noclamp(v, k, h), 0);
        memset(c, 0, sizeof c);
        assert_int_equal(sotto_vrf_challenge(c, y, h, gamma, u, v), SOTTO_OK);
        if (c[0] % order != 0)
            continue;
        crypto_core_ed25519_scalar_mul(cx, c, xr);
        crypto_core_ed25519_scalar_add(s, k, cx);
        memcpy(pi, gamma, 32);
        memcpy(pi + 32, c, 16);
        memcpy(pi + 48, s, 32);
        memcpy(pk_out, y, 32);
        return;
    }
    fail_msg("no challenge divisible by %u in 1000 tries", order);
}

static void test_torsion_components(void **state)
{
    (void)state;
    const vrf_vector *t = &g_vec[0];
    uint8_t t2[32], t8[32], pi[80], pk[32], beta[64], pi_bad[80];
    const uint8_t *tp[2] = {t2, t8};
    const unsigned order[2] = {2, 8};

    tu_unhex_into(BAD_KEYS[1], t2, 32);
    tu_unhex_into(BAD_KEYS[4], t8, 32);
    for (int which = 0; which < 2; which++) {
        for (int on_key = 0; on_key <= 1; on_key++) {
            grind_torsion_proof(pi, pk, on_key, tp[which], order[which]);
            memset(beta, 0, sizeof beta);
            assert_int_equal(sotto_vrf_verify(beta, pk, t->alpha, t->alpha_len, pi), SOTTO_OK);
            if (!on_key) /* Gamma + T: beta unchanged thanks to the cofactor */
                assert_memory_equal(beta, t->beta, 64);
            /* The same proof with the challenge's low bit moved: refused. */
            memcpy(pi_bad, pi, 80);
            pi_bad[32] ^= 1;
            assert_int_equal(sotto_vrf_verify(beta, pk, t->alpha, t->alpha_len, pi_bad),
                             SOTTO_ERR_INVALID_SIGNATURE);
        }
    }
}

/* n*P through the torsion path agrees with plain double-and-add. */
static void test_point_mul_matches_double_and_add(void **state)
{
    (void)state;
    uint8_t t8[32], p[32], n[32], fast[32], slow[32];

    tu_unhex_into(BAD_KEYS[4], t8, 32);
    assert_int_equal(crypto_core_ed25519_add(p, g_vec[1].pk, t8), 0);
    for (int r = 0; r < 4; r++) {
        randombytes_buf(n, sizeof n);
        n[31] &= 0x1f; /* any integer below 2^253 */
        if (r == 0)
            memset(n, 0, sizeof n);
        assert_int_equal(sotto_vrf_point_mul(fast, n, p), SOTTO_OK);
        memset(slow, 0, sizeof slow);
        slow[0] = 1;
        for (int bit = 255; bit >= 0; bit--) {
            assert_int_equal(crypto_core_ed25519_add(slow, slow, slow), 0);
            if ((n[bit / 8] >> (bit % 8)) & 1)
                assert_int_equal(crypto_core_ed25519_add(slow, slow, p), 0);
        }
        assert_memory_equal(fast, slow, 32);
    }
}

static void test_round_trip_and_arguments(void **state)
{
    (void)state;
    sotto_vrf_key_pair kp, kp2;
    uint8_t pi[80], pi2[80], beta[64], beta2[64];
    const uint8_t alpha[] = "alice";

    assert_int_equal(sotto_vrf_key_pair_generate(&kp), SOTTO_OK);
    assert_int_equal(sotto_vrf_key_pair_generate(&kp2), SOTTO_OK);
    assert_int_equal(sotto_vrf_prove(pi, &kp, alpha, 5), SOTTO_OK);
    assert_int_equal(sotto_vrf_prove(pi2, &kp, alpha, 5), SOTTO_OK);
    assert_memory_equal(pi, pi2, 80); /* deterministic */
    assert_int_equal(sotto_vrf_verify(beta, kp.pk, alpha, 5, pi), SOTTO_OK);
    assert_int_equal(sotto_vrf_proof_to_hash(beta2, pi), SOTTO_OK);
    assert_memory_equal(beta, beta2, 64);
    assert_int_equal(sotto_vrf_verify(beta, kp2.pk, alpha, 5, pi), SOTTO_ERR_INVALID_SIGNATURE);
    assert_int_equal(sotto_vrf_prove(pi2, &kp2, alpha, 5), SOTTO_OK);
    assert_int_equal(sotto_vrf_verify(beta2, kp2.pk, alpha, 5, pi2), SOTTO_OK);
    assert_memory_not_equal(beta, beta2, 64); /* output depends on the key */

    assert_int_equal(sotto_vrf_key_pair_from_seed(NULL, kp.sk), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_vrf_key_pair_from_seed(&kp2, null_in), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_vrf_key_pair_generate(NULL), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_vrf_prove(null_out, &kp, alpha, 5), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_vrf_prove(pi2, NULL, alpha, 5), SOTTO_ERR_INVALID_ARGUMENT);
    assert_true(sodium_is_zero(pi2, 80));
    assert_int_equal(sotto_vrf_prove(pi2, &kp, NULL, 5), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_vrf_prove(pi2, &kp, NULL, 0), SOTTO_OK);
    assert_int_equal(sotto_vrf_verify(null_out, kp.pk, alpha, 5, pi), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_vrf_verify(beta, null_in, alpha, 5, pi), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_vrf_verify(beta, kp.pk, NULL, 5, pi), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_vrf_verify(beta, kp.pk, alpha, 5, null_in), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_vrf_proof_to_hash(null_out, pi), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_vrf_proof_to_hash(beta, null_in), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_vrf_validate_key(null_in), SOTTO_ERR_INVALID_KEY);
    sotto_vrf_key_pair_wipe(&kp);
    sotto_vrf_key_pair_wipe(&kp2);
    sotto_vrf_key_pair_wipe(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answers),
        cmocka_unit_test(test_every_pi_bit_flip_rejected),
        cmocka_unit_test(test_every_pk_bit_flip_rejected),
        cmocka_unit_test(test_alpha_changed_rejected),
        cmocka_unit_test(test_bad_keys_rejected),
        cmocka_unit_test(test_s_not_reduced_rejected),
        cmocka_unit_test(test_torsion_components),
        cmocka_unit_test(test_point_mul_matches_double_and_add),
        cmocka_unit_test(test_round_trip_and_arguments),
    };
    return cmocka_run_group_tests(tests, load_vectors, free_vectors);
}
