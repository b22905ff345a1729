/*
 * Known-answer tests of the Double Ratchet KDFs and X3DH
 * (spec signal-protocol.md 2.2, 2.3 and the values of section 8, which come
 * from libsignal-protocol-c's tests/test_ratchet.c).
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
#include "protocol/ratchet.h"
#include "sotto/keys.h"
#include "testutil.h"

/* Spec section 8, "Chain key v3". */
static const char *CK_SEED = "8ab72d6f4cc5ac0d387eaf463378ddb28edd07385b1cb01250c715982e7ad48f";
static const char *CK_CIPHER = "bf51e9d75e0e31031051f82a2491ffc084fa298b7793bd9db620056febf45217";
static const char *CK_MAC = "c6c77d6a73a354337a56435e34607dfe48e3ace14e77314dc6abc172e7a7030b";
static const char *CK_IV = "afa8207986b692a116d4b40bbff72d6c"; /* derived */
static const char *CK_NEXT = "28e8f8fee54b801eef7c5cfb2f17f32c7b334485bbb70fac6ec10342a246d15d";

/* Spec section 8, "X3DH" (test_ratcheting_session_as_bob / _as_alice). */
static const char *BOB_IDENTITY_PRIV =
    "4875cc69ddf8ea0719ec947d61081135868d5fd801f02c0225e516df2156605e";
static const char *BOB_SPK_PRIV =
    "583900131fb727998b7803fe6ac22cc591f342e4e42a8c8d5d78194209b8d253";
static const char *ALICE_BASE_PUB =
    "05472d1fb1a9862c3af6beaca8920277e2b26f4a79213ec7c906aeb35e03cf8950";
static const char *ALICE_IDENTITY_PUB =
    "05b4a8455660ada65b401007f615e654041746432e3339c6875149bceefcb42b4a";
/* Alice's private keys: the full values of the libsignal-protocol-c test
 * file (the spec quotes them as 9040f0d4…8f58 and 11ae7c64…7449). */
static const char *ALICE_IDENTITY_PRIV =
    "9040f0d4e09cf38f6dc7c13779c908c015a1da4fa78737a080eb0a6f4f5f8f58";
static const char *ALICE_BASE_PRIV_VECTOR =
    "11ae7c64d1e61cd596b76a0db5012673391cae66edbfcf073b4da80516a47449";
/*
 * The vector's base private key is NOT clamped (low bits 001), and its
 * public key 05472d1f… is that raw scalar times the base point:
 * libsignal-protocol-c's X25519 agreement does not clamp (its keys are
 * clamped when generated). libsodium always clamps, so we use the clamped
 * scalar congruent to it mod the group order L (derived: vector + 3L),
 * which gives the same public key and the same agreements with every
 * prime-order-subgroup point. The test checks both facts.
 */
static const char *ALICE_BASE_PRIV =
    "d8295e7b201054dd198e51f650efc2b1391cae66edbfcf073b4da80516a47479";
static const char *X3DH_CK = "9797caca53c989bbe229a40ca7727010eb2604fc14945d77958a0aeda088b44d";
static const char *X3DH_RK =
    "3e6130d0a8c8e5b8ad65eb8b7d95fa3ab84710d48d92f34dcda43f9909261bca"; /* derived */

static void key_pair_hex(sotto_key_pair *kp, const char *priv_hex)
{
    uint8_t priv[32];
    tu_unhex_into(priv_hex, priv, 32);
    assert_int_equal(sotto_key_pair_from_private(kp, priv), SOTTO_OK);
    sodium_memzero(priv, sizeof priv);
}

static void pub_hex(sotto_public_key *k, const char *hex)
{
    tu_unhex_into(hex, k->bytes, SOTTO_PUBLIC_KEY_BYTES);
}

static void assert_hex(const uint8_t *got, const char *hex)
{
    size_t n;
    uint8_t *want = tu_unhex(hex, &n);
    assert_memory_equal(got, want, n);
    free(want);
}

/* The keyed HMAC / HKDF of the hot path against RFC 4231 and RFC 5869. */
static void test_hmac_hkdf_rfc_vectors(void **state)
{
    (void)state;
    uint8_t key[131], out[42];
    sotto_hmac_key k;
    /* RFC 4231 case 2: key "Jefe". */
    const char *m2 = "what do ya want for nothing?";
    const uint8_t *p[2] = {(const uint8_t *)m2, (const uint8_t *)m2 + 10};
    size_t l[2] = {10, strlen(m2) - 10};
    assert_int_equal(sotto_hmac_key_init(&k, (const uint8_t *)"Jefe", 4), SOTTO_OK);
    assert_int_equal(sotto_hmac_key_mac(&k, p, l, 2, out), SOTTO_OK);
    assert_hex(out, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    /* Reusing the keyed state gives the same again. */
    assert_int_equal(sotto_hmac_key_mac(&k, p, l, 2, out), SOTTO_OK);
    assert_hex(out, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    /* RFC 4231 case 6: a key longer than the block is hashed first. */
    memset(key, 0xaa, sizeof key);
    const char *m6 = "Test Using Larger Than Block-Size Key - Hash Key First";
    const uint8_t *p6[1] = {(const uint8_t *)m6};
    size_t l6[1] = {strlen(m6)};
    assert_int_equal(sotto_hmac_key_init(&k, key, sizeof key), SOTTO_OK);
    assert_int_equal(sotto_hmac_key_mac(&k, p6, l6, 1, out), SOTTO_OK);
    assert_hex(out, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    sotto_hmac_key_wipe(&k);
    /* RFC 5869 case 1 (42 bytes: two blocks, the second partial). */
    uint8_t ikm[22], salt[13], info[10];
    memset(ikm, 0x0b, sizeof ikm);
    for (int i = 0; i < 13; i++)
        salt[i] = (uint8_t)i;
    for (int i = 0; i < 10; i++)
        info[i] = (uint8_t)(0xf0 + i);
    assert_int_equal(sotto_hkdf_sha256(out, 42, salt, 13, ikm, 22, info, 10), SOTTO_OK);
    assert_hex(out, "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
                    "34007208d5b887185865");
    uint8_t a[80];
    assert_int_equal(sotto_hkdf_sha256(a, 0, NULL, 0, ikm, 22, info, 10),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_hkdf_sha256(a, 255 * 32 + 1, NULL, 0, ikm, 22, info, 10),
                     SOTTO_ERR_INVALID_ARGUMENT);
}

static void test_chain_key_kat(void **state)
{
    (void)state;
    uint8_t ck[32], seed[32], next[32];
    sotto_message_keys mk;
    tu_unhex_into(CK_SEED, ck, 32);
    assert_int_equal(sotto_chain_step(ck, seed, next), SOTTO_OK);
    assert_int_equal(sotto_message_keys_derive(seed, &mk), SOTTO_OK);
    assert_hex(mk.cipher_key, CK_CIPHER);
    assert_hex(mk.mac_key, CK_MAC);
    assert_hex(mk.iv, CK_IV);
    assert_hex(next, CK_NEXT);
    /* Each piece independently: seed = HMAC(ck, 01), next = HMAC(ck, 02). */
    uint8_t h[32];
    const uint8_t one = 1, two = 2;
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, ck, 32);
    crypto_auth_hmacsha256_update(&st, &one, 1);
    crypto_auth_hmacsha256_final(&st, h);
    assert_memory_equal(h, seed, 32);
    crypto_auth_hmacsha256_init(&st, ck, 32);
    crypto_auth_hmacsha256_update(&st, &two, 1);
    crypto_auth_hmacsha256_final(&st, h);
    assert_memory_equal(h, next, 32);
    /* In-place stepping (next aliasing ck) gives the same. */
    assert_int_equal(sotto_chain_step(ck, seed, ck), SOTTO_OK);
    assert_hex(ck, CK_NEXT);
}

static void test_x3dh_as_bob(void **state)
{
    (void)state;
    sotto_key_pair bob_id, bob_spk;
    sotto_public_key alice_base, alice_id;
    sotto_session_state st;
    key_pair_hex(&bob_id, BOB_IDENTITY_PRIV);
    key_pair_hex(&bob_spk, BOB_SPK_PRIV);
    pub_hex(&alice_base, ALICE_BASE_PUB);
    pub_hex(&alice_id, ALICE_IDENTITY_PUB);
    assert_int_equal(sotto_x3dh_bob(&st, &bob_id, &bob_spk, NULL, &alice_id, &alice_base),
                     SOTTO_OK);
    /* Bob's sender chain is the X3DH chain key; his ratchet key is the SPK. */
    assert_true(st.has_sender_chain);
    assert_hex(st.sender_chain_key, X3DH_CK);
    assert_hex(st.root_key, X3DH_RK);
    assert_int_equal(st.sender_index, 0);
    assert_memory_equal(st.sender_ratchet.pub.bytes, bob_spk.pub.bytes, 33);
    assert_memory_equal(st.local_identity.bytes, bob_id.pub.bytes, 33);
    assert_memory_equal(st.remote_identity.bytes, alice_id.bytes, 33);
    assert_memory_equal(st.alice_base_key.bytes, alice_base.bytes, 33);
    assert_int_equal(st.n_recv, 0);
    sotto_session_state_clear(&st);

    /* The IKM by hand (0xFF*32 || DH1 || DH2 || DH3) through HKDF. */
    uint8_t ikm[128], okm[64];
    memset(ikm, 0xFF, 32);
    assert_int_equal(sotto_dh(ikm + 32, bob_spk.priv, &alice_id), SOTTO_OK);
    assert_int_equal(sotto_dh(ikm + 64, bob_id.priv, &alice_base), SOTTO_OK);
    assert_int_equal(sotto_dh(ikm + 96, bob_spk.priv, &alice_base), SOTTO_OK);
    assert_int_equal(
        sotto_hkdf_sha256(okm, 64, NULL, 0, ikm, 128, (const uint8_t *)"WhisperText", 11),
        SOTTO_OK);
    assert_hex(okm, X3DH_RK);
    assert_hex(okm + 32, X3DH_CK);
    sotto_key_pair_wipe(&bob_id);
    sotto_key_pair_wipe(&bob_spk);
}

static void test_x3dh_as_alice(void **state)
{
    (void)state;
    sotto_key_pair alice_id, alice_base, alice_ratchet, bob_id, bob_spk;
    sotto_session_state st;
    key_pair_hex(&alice_id, ALICE_IDENTITY_PRIV);
    key_pair_hex(&alice_base, ALICE_BASE_PRIV);
    /* The substituted base key: clamped, and congruent to the vector's mod L. */
    uint8_t v[64] = {0}, d[64] = {0}, rv[32], rd[32];
    tu_unhex_into(ALICE_BASE_PRIV_VECTOR, v, 32);
    tu_unhex_into(ALICE_BASE_PRIV, d, 32);
    assert_int_equal(d[0] & 7, 0);
    assert_int_equal(d[31] & 0xC0, 0x40);
    assert_memory_not_equal(v, d, 32);
    crypto_core_ed25519_scalar_reduce(rv, v);
    crypto_core_ed25519_scalar_reduce(rd, d);
    assert_memory_equal(rv, rd, 32);
    /* The spec's public values are those of these private keys. */
    assert_hex(alice_id.pub.bytes, ALICE_IDENTITY_PUB);
    assert_hex(alice_base.pub.bytes, ALICE_BASE_PUB);
    key_pair_hex(&bob_id, BOB_IDENTITY_PRIV);
    key_pair_hex(&bob_spk, BOB_SPK_PRIV);
    assert_int_equal(sotto_key_pair_generate(&alice_ratchet), SOTTO_OK);

    assert_int_equal(sotto_x3dh_alice(&st, &alice_id, &alice_base, &alice_ratchet, &bob_id.pub,
                                      &bob_spk.pub, NULL),
                     SOTTO_OK);
    /* Alice's receiver chain for Bob's ratchet key (his SPK) is the X3DH CK. */
    assert_int_equal(st.n_recv, 1);
    assert_memory_equal(st.recv[0].their_ratchet.bytes, bob_spk.pub.bytes, 33);
    assert_hex(st.recv[0].chain_key, X3DH_CK);
    assert_int_equal(st.recv[0].index, 0);
    /* Her sender chain and root: RootKDF(RK, DH(ratchet, SPK)) (spec 2.2 step 3). */
    uint8_t rk[32], ck[32], want_rk[32], want_ck[32], okm[64], dh[32];
    tu_unhex_into(X3DH_RK, rk, 32);
    assert_int_equal(sotto_dh(dh, alice_ratchet.priv, &bob_spk.pub), SOTTO_OK);
    assert_int_equal(
        sotto_hkdf_sha256(okm, 64, rk, 32, dh, 32, (const uint8_t *)"WhisperRatchet", 14),
        SOTTO_OK);
    assert_memory_equal(st.root_key, okm, 32);
    assert_memory_equal(st.sender_chain_key, okm + 32, 32);
    assert_memory_equal(st.sender_ratchet.pub.bytes, alice_ratchet.pub.bytes, 33);
    assert_memory_equal(st.alice_base_key.bytes, alice_base.pub.bytes, 33);
    /* Bob's side of the same step (sotto_root_kdf with his SPK) agrees. */
    assert_int_equal(sotto_root_kdf(rk, bob_spk.priv, &alice_ratchet.pub, want_rk, want_ck),
                     SOTTO_OK);
    assert_memory_equal(st.root_key, want_rk, 32);
    assert_memory_equal(st.sender_chain_key, want_ck, 32);
    /* rk and new_rk may alias. */
    assert_int_equal(sotto_root_kdf(rk, bob_spk.priv, &alice_ratchet.pub, rk, ck), SOTTO_OK);
    assert_memory_equal(rk, want_rk, 32);
    sotto_session_state_clear(&st);
    sotto_key_pair_wipe(&alice_id);
    sotto_key_pair_wipe(&alice_base);
    sotto_key_pair_wipe(&alice_ratchet);
    sotto_key_pair_wipe(&bob_id);
    sotto_key_pair_wipe(&bob_spk);
}

/* With a one-time prekey both sides agree, and the result differs from
 * the three-DH one (the fourth DH is really mixed in). */
static void test_x3dh_with_one_time_prekey(void **state)
{
    (void)state;
    sotto_key_pair a_id, a_base, a_ratchet, b_id, b_spk, b_opk;
    sotto_session_state sa, sb, s3;
    assert_int_equal(sotto_key_pair_generate(&a_id), SOTTO_OK);
    assert_int_equal(sotto_key_pair_generate(&a_base), SOTTO_OK);
    assert_int_equal(sotto_key_pair_generate(&a_ratchet), SOTTO_OK);
    assert_int_equal(sotto_key_pair_generate(&b_id), SOTTO_OK);
    assert_int_equal(sotto_key_pair_generate(&b_spk), SOTTO_OK);
    assert_int_equal(sotto_key_pair_generate(&b_opk), SOTTO_OK);
    assert_int_equal(
        sotto_x3dh_alice(&sa, &a_id, &a_base, &a_ratchet, &b_id.pub, &b_spk.pub, &b_opk.pub),
        SOTTO_OK);
    assert_int_equal(sotto_x3dh_bob(&sb, &b_id, &b_spk, &b_opk, &a_id.pub, &a_base.pub), SOTTO_OK);
    assert_int_equal(sotto_x3dh_bob(&s3, &b_id, &b_spk, NULL, &a_id.pub, &a_base.pub), SOTTO_OK);
    assert_memory_equal(sa.recv[0].chain_key, sb.sender_chain_key, 32);
    assert_memory_not_equal(s3.sender_chain_key, sb.sender_chain_key, 32);
    assert_memory_not_equal(s3.root_key, sb.root_key, 32);
    /* Alice's first sending chain equals Bob's first receiving one. */
    uint8_t rk[32], ck[32];
    assert_int_equal(sotto_root_kdf(sb.root_key, b_spk.priv, &a_ratchet.pub, rk, ck), SOTTO_OK);
    assert_memory_equal(rk, sa.root_key, 32);
    assert_memory_equal(ck, sa.sender_chain_key, 32);
    sotto_session_state_clear(&sa);
    sotto_session_state_clear(&sb);
    sotto_session_state_clear(&s3);
    sotto_key_pair_wipe(&a_id);
    sotto_key_pair_wipe(&a_base);
    sotto_key_pair_wipe(&a_ratchet);
    sotto_key_pair_wipe(&b_id);
    sotto_key_pair_wipe(&b_spk);
    sotto_key_pair_wipe(&b_opk);
}

/* A peer key that is not a 0x05 key is refused, not silently used. */
static void test_x3dh_bad_keys(void **state)
{
    (void)state;
    sotto_key_pair a_id, a_base, a_ratchet;
    sotto_public_key bad;
    sotto_session_state st;
    assert_int_equal(sotto_key_pair_generate(&a_id), SOTTO_OK);
    assert_int_equal(sotto_key_pair_generate(&a_base), SOTTO_OK);
    assert_int_equal(sotto_key_pair_generate(&a_ratchet), SOTTO_OK);
    memcpy(&bad, &a_id.pub, sizeof bad);
    bad.bytes[0] = 0x06;
    assert_int_equal(sotto_x3dh_alice(&st, &a_id, &a_base, &a_ratchet, &bad, &a_base.pub, NULL),
                     SOTTO_ERR_INVALID_KEY);
    /* A low-order point (u = 0) gives an all-zero DH: refused. */
    memset(bad.bytes, 0, sizeof bad.bytes);
    bad.bytes[0] = 0x05;
    assert_int_equal(sotto_x3dh_bob(&st, &a_id, &a_base, NULL, &a_id.pub, &bad),
                     SOTTO_ERR_INVALID_KEY);
    uint8_t rk[32] = {0}, nrk[32], ck[32];
    assert_int_equal(sotto_root_kdf(rk, a_ratchet.priv, &bad, nrk, ck), SOTTO_ERR_INVALID_KEY);
    sotto_key_pair_wipe(&a_id);
    sotto_key_pair_wipe(&a_base);
    sotto_key_pair_wipe(&a_ratchet);
}

int main(void)
{
    assert_int_equal(sotto_init(), SOTTO_OK);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hmac_hkdf_rfc_vectors),
        cmocka_unit_test(test_chain_key_kat),
        cmocka_unit_test(test_x3dh_as_bob),
        cmocka_unit_test(test_x3dh_as_alice),
        cmocka_unit_test(test_x3dh_with_one_time_prekey),
        cmocka_unit_test(test_x3dh_bad_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
