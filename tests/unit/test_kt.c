/*
 * Key transparency messages (sotto/kt.h): tree head statement, signature
 * and countersignature as known answers (the signatures computed
 * independently with Python's `cryptography` Ed25519 from the same seeds);
 * every single-bit flip of a head and of an audited head refused; stale,
 * future and unaudited heads; log leaf bytes; an end-to-end search built
 * with the real VRF, prefix tree, commitments and log, and each part of it
 * tampered with; consistency between two heads.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <sodium.h>

#include "sotto/keys.h"
#include "sotto/kt.h"
#include "testutil.h"

#define HB 32
#define TS UINT64_C(1700000000000)

static const char *STATEMENT_HEX =
    "534f54544f2d4b542d545245452d484541442d5631000000000000000005000102030405060708090a0b0c0d0e0f"
    "101112131415161718191a1b1c1d1e1f0000018bcfe56800";
/* Ed25519 seed 01^32 over STATEMENT_HEX. */
static const char *SERVER_PK_HEX =
    "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c";
static const char *HEAD_SIG_HEX =
    "0420eee362471b28f29914b2ba6787789a839a4db2d1e1dc35a26a1b61b20178d30b58f94194114358c6a35741e0"
    "61f77fa3ebbc5c00b83b5c7bee19f2cd4b0d";
/* Ed25519 seed 02^32 over "SOTTO-KT-AUDIT-V1" 0x00 || STATEMENT_HEX. */
static const char *AUDITOR_PK_HEX =
    "8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394";
static const char *COSIG_HEX =
    "0b8bcd0fc508005c11494c6472123120d40aa27e70c61252aec956f98e87a3efab6915b226205a2d4707f2b89169"
    "3c2aec8e6dd2046fd2370c572bb3e0a74b05";

static void flip(uint8_t *p, size_t bit)
{
    p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
}

/* SHA-256("SOTTO-KT-LEAF-VALUE-V1" 0x00 | counter (8, BE) | commitment),
 * laid out here and hashed with OpenSSL, not with the library. */
static int test_leaf_value(uint8_t out[32], uint64_t counter, const uint8_t commitment[32])
{
    static const char label[] = "SOTTO-KT-LEAF-VALUE-V1";
    uint8_t buf[sizeof label + 8 + 32];
    unsigned int n = 0;

    memcpy(buf, label, sizeof label);
    for (int i = 0; i < 8; i++)
        buf[sizeof label + (size_t)i] = (uint8_t)(counter >> (56 - 8 * i));
    memcpy(buf + sizeof label + 8, commitment, 32);
    if (EVP_Digest(buf, sizeof buf, out, &n, EVP_sha256(), NULL) != 1 || n != 32)
        return SOTTO_ERR_CRYPTO;
    return SOTTO_OK;
}

static void keys_from_seed(uint8_t byte, uint8_t pk[32], uint8_t sk[64])
{
    uint8_t seed[32];

    memset(seed, byte, sizeof seed);
    assert_int_equal(crypto_sign_seed_keypair(pk, sk, seed), 0);
}

static void fixed_head(sotto_kt_tree_head *h)
{
    memset(h, 0, sizeof *h);
    h->size = 5;
    for (int i = 0; i < HB; i++)
        h->root[i] = (uint8_t)i;
    h->timestamp_ms = TS;
}

static void test_head_known_answer(void **state)
{
    uint8_t spk[32], ssk[64], apk[32], ask[64], st[SOTTO_KT_HEAD_STATEMENT_BYTES], sig[64];
    uint8_t want[64], enc[SOTTO_KT_HEAD_BYTES];
    sotto_kt_tree_head h, back;
    (void)state;

    keys_from_seed(1, spk, ssk);
    keys_from_seed(2, apk, ask);
    tu_unhex_into(SERVER_PK_HEX, want, 32);
    assert_memory_equal(spk, want, 32);
    tu_unhex_into(AUDITOR_PK_HEX, want, 32);
    assert_memory_equal(apk, want, 32);

    fixed_head(&h);
    assert_int_equal(sotto_kt_head_statement(st, &h), SOTTO_OK);
    {
        char *hex = tu_hex(st, sizeof st);
        assert_string_equal(hex, STATEMENT_HEX);
        free(hex);
    }
    assert_int_equal(sotto_kt_head_sign(&h, ssk), SOTTO_OK);
    tu_unhex_into(HEAD_SIG_HEX, want, 64);
    assert_memory_equal(h.signature, want, 64);
    assert_int_equal(sotto_kt_head_verify(&h, spk), SOTTO_OK);
    assert_int_equal(sotto_kt_head_verify(&h, apk), SOTTO_ERR_INVALID_SIGNATURE);

    assert_int_equal(sotto_kt_cosign(sig, &h, ask), SOTTO_OK);
    tu_unhex_into(COSIG_HEX, want, 64);
    assert_memory_equal(sig, want, 64);
    assert_int_equal(sotto_kt_cosig_verify(sig, &h, apk), SOTTO_OK);
    assert_int_equal(sotto_kt_cosig_verify(sig, &h, spk), SOTTO_ERR_INVALID_SIGNATURE);
    /* the server's signature is not a countersignature (domain separation) */
    assert_int_equal(sotto_kt_cosig_verify(h.signature, &h, spk), SOTTO_ERR_INVALID_SIGNATURE);

    /* wire: size || root || timestamp || signature */
    assert_int_equal(sotto_kt_head_encode(&h, enc), SOTTO_OK);
    assert_memory_equal(enc, st + 22, 48);
    assert_memory_equal(enc + 48, h.signature, 64);
    assert_int_equal(sotto_kt_head_parse(enc, sizeof enc, spk, &back), SOTTO_OK);
    assert_memory_equal(&back, &h, sizeof h);

    /* size bounds */
    h.size = 0;
    assert_int_equal(sotto_kt_head_statement(st, &h), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_kt_head_sign(&h, ssk), SOTTO_ERR_INVALID_ARGUMENT);
    h.size = SOTTO_MERKLE_MAX_SIZE + 1;
    assert_int_equal(sotto_kt_head_encode(&h, enc), SOTTO_ERR_INVALID_ARGUMENT);
    h.size = SOTTO_MERKLE_MAX_SIZE;
    assert_int_equal(sotto_kt_head_sign(&h, ssk), SOTTO_OK);
    assert_int_equal(sotto_kt_head_encode(&h, enc), SOTTO_OK);
    assert_int_equal(sotto_kt_head_parse(enc, sizeof enc, spk, &back), SOTTO_OK);
}

static void test_head_bit_flips(void **state)
{
    uint8_t spk[32], ssk[64], enc[SOTTO_KT_HEAD_BYTES + 1];
    sotto_kt_tree_head h, back;
    size_t bits = 0;
    (void)state;

    keys_from_seed(1, spk, ssk);
    fixed_head(&h);
    assert_int_equal(sotto_kt_head_sign(&h, ssk), SOTTO_OK);
    assert_int_equal(sotto_kt_head_encode(&h, enc), SOTTO_OK);
    for (size_t bit = 0; bit < 8 * SOTTO_KT_HEAD_BYTES; bit++) {
        int rc;

        flip(enc, bit);
        memset(&back, 0xee, sizeof back);
        rc = sotto_kt_head_parse(enc, SOTTO_KT_HEAD_BYTES, spk, &back);
        /* the top bit of size makes it > 2^63: a form error */
        assert_int_equal(rc, bit == 7 ? SOTTO_ERR_INVALID_MESSAGE : SOTTO_ERR_INVALID_SIGNATURE);
        assert_int_equal(back.size, UINT64_C(0xeeeeeeeeeeeeeeee)); /* untouched */
        flip(enc, bit);
        bits++;
    }
    assert_int_equal(bits, 896);
    assert_int_equal(sotto_kt_head_parse(enc, SOTTO_KT_HEAD_BYTES, spk, &back), SOTTO_OK);
    enc[SOTTO_KT_HEAD_BYTES] = 0;
    assert_int_equal(sotto_kt_head_parse(enc, SOTTO_KT_HEAD_BYTES + 1, spk, &back),
                     SOTTO_ERR_TRAILING_DATA);
    assert_int_equal(sotto_kt_head_parse(enc, SOTTO_KT_HEAD_BYTES - 1, spk, &back),
                     SOTTO_ERR_INVALID_MESSAGE);
    /* size 0 on the wire */
    memset(enc, 0, 8);
    assert_int_equal(sotto_kt_head_parse(enc, SOTTO_KT_HEAD_BYTES, spk, &back),
                     SOTTO_ERR_INVALID_MESSAGE);
}

/* A head signed by seed 1 and countersigned by auditors of seeds 2 and 3. */
static void audited(sotto_kt_audited_head *ah, uint8_t spk[32], uint8_t apk[2][32])
{
    uint8_t ssk[64], ask[64], sig[64];

    memset(ah, 0, sizeof *ah);
    keys_from_seed(1, spk, ssk);
    fixed_head(&ah->head);
    assert_int_equal(sotto_kt_head_sign(&ah->head, ssk), SOTTO_OK);
    for (int i = 0; i < 2; i++) {
        keys_from_seed((uint8_t)(2 + i), apk[i], ask);
        assert_int_equal(sotto_kt_cosign(sig, &ah->head, ask), SOTTO_OK);
        assert_int_equal(sotto_kt_audited_head_add(ah, apk[i], sig), SOTTO_OK);
    }
}

static void test_audited_head(void **state)
{
    uint8_t spk[32], apk[3][32], ask[64], sig[64], ssk[64];
    uint8_t enc[SOTTO_KT_AUDITED_HEAD_MAX_BYTES + 1], enc2[SOTTO_KT_AUDITED_HEAD_MAX_BYTES];
    sotto_kt_audited_head ah, back;
    sotto_kt_tree_head other;
    size_t len, len2;
    const uint64_t day = SOTTO_KT_DEFAULT_MAX_AGE_MS;
    (void)state;

    audited(&ah, spk, apk);
    keys_from_seed(4, apk[2], ask);
    assert_int_equal(ah.n_cosigs, 2);
    assert_true(memcmp(ah.cosigs[0].auditor_pk, ah.cosigs[1].auditor_pk, 32) < 0);

    /* accepted: both required, one, none; within the age, at the bound */
    assert_int_equal(sotto_kt_audited_head_check(&ah, spk, (const uint8_t(*)[32])apk, 2, TS, day),
                     SOTTO_OK);
    assert_int_equal(
        sotto_kt_audited_head_check(&ah, spk, (const uint8_t(*)[32])apk + 1, 1, TS + day, day),
        SOTTO_OK);
    assert_int_equal(sotto_kt_audited_head_check(&ah, spk, NULL, 0, TS + 1000, day), SOTTO_OK);
    /* stale by 1 ms; from the future beyond the skew; at the skew */
    assert_int_equal(
        sotto_kt_audited_head_check(&ah, spk, (const uint8_t(*)[32])apk, 2, TS + day + 1, day),
        SOTTO_ERR_KT_HEAD_STALE);
    assert_int_equal(
        sotto_kt_audited_head_check(&ah, spk, NULL, 0, TS - SOTTO_KT_MAX_CLOCK_SKEW_MS - 1, day),
        SOTTO_ERR_KT_HEAD_STALE);
    assert_int_equal(
        sotto_kt_audited_head_check(&ah, spk, NULL, 0, TS - SOTTO_KT_MAX_CLOCK_SKEW_MS, day),
        SOTTO_OK);
    /* an auditor that did not sign */
    assert_int_equal(sotto_kt_audited_head_check(&ah, spk, (const uint8_t(*)[32])apk, 3, TS, day),
                     SOTTO_ERR_KT_AUDITOR_MISSING);
    /* server key wrong: the server signature comes first */
    assert_int_equal(
        sotto_kt_audited_head_check(&ah, apk[0], (const uint8_t(*)[32])apk, 2, TS + 2 * day, day),
        SOTTO_ERR_INVALID_SIGNATURE);
    /* a countersignature of another head (binds exactly one head) */
    keys_from_seed(1, spk, ssk);
    other = ah.head;
    other.size = 6;
    assert_int_equal(sotto_kt_head_sign(&other, ssk), SOTTO_OK);
    keys_from_seed(3, apk[1], ask);
    assert_int_equal(sotto_kt_cosign(sig, &other, ask), SOTTO_OK);
    back = ah;
    assert_int_equal(sotto_kt_audited_head_add(&back, apk[1], sig), SOTTO_OK); /* replaces */
    assert_int_equal(back.n_cosigs, 2);
    assert_int_equal(sotto_kt_audited_head_check(&back, spk, (const uint8_t(*)[32])apk, 2, TS, day),
                     SOTTO_ERR_INVALID_SIGNATURE);
    assert_int_equal(sotto_kt_audited_head_check(&back, spk, (const uint8_t(*)[32])apk, 1, TS, day),
                     SOTTO_OK);

    /* encoding round trip and canonical form */
    assert_int_equal(sotto_kt_audited_head_encode(&ah, enc, sizeof enc, &len), SOTTO_OK);
    assert_int_equal(len, SOTTO_KT_HEAD_BYTES + 1 + 2 * SOTTO_KT_COSIG_BYTES);
    assert_int_equal(sotto_kt_audited_head_parse(enc, len, &back), SOTTO_OK);
    assert_int_equal(sotto_kt_audited_head_encode(&back, enc2, sizeof enc2, &len2), SOTTO_OK);
    assert_int_equal(len2, len);
    assert_memory_equal(enc, enc2, len);
    assert_int_equal(sotto_kt_audited_head_encode(&ah, enc2, len - 1, &len2),
                     SOTTO_ERR_BUFFER_TOO_SMALL);
    enc[len] = 0;
    assert_int_equal(sotto_kt_audited_head_parse(enc, len + 1, &back), SOTTO_ERR_TRAILING_DATA);
    assert_int_equal(sotto_kt_audited_head_parse(enc, len - 1, &back), SOTTO_ERR_INVALID_MESSAGE);
    /* keys out of order (swap the two entries), a repeated key, count 9 */
    memcpy(enc2, enc, len);
    memcpy(enc2 + SOTTO_KT_HEAD_BYTES + 1, enc + SOTTO_KT_HEAD_BYTES + 1 + SOTTO_KT_COSIG_BYTES,
           SOTTO_KT_COSIG_BYTES);
    memcpy(enc2 + SOTTO_KT_HEAD_BYTES + 1 + SOTTO_KT_COSIG_BYTES, enc + SOTTO_KT_HEAD_BYTES + 1,
           SOTTO_KT_COSIG_BYTES);
    assert_int_equal(sotto_kt_audited_head_parse(enc2, len, &back), SOTTO_ERR_INVALID_MESSAGE);
    memcpy(enc2 + SOTTO_KT_HEAD_BYTES + 1, enc + SOTTO_KT_HEAD_BYTES + 1, SOTTO_KT_COSIG_BYTES);
    memcpy(enc2 + SOTTO_KT_HEAD_BYTES + 1 + SOTTO_KT_COSIG_BYTES, enc + SOTTO_KT_HEAD_BYTES + 1,
           SOTTO_KT_COSIG_BYTES);
    assert_int_equal(sotto_kt_audited_head_parse(enc2, len, &back), SOTTO_ERR_INVALID_MESSAGE);
    memcpy(enc2, enc, len);
    enc2[SOTTO_KT_HEAD_BYTES] = 9;
    assert_int_equal(sotto_kt_audited_head_parse(enc2, len, &back), SOTTO_ERR_INVALID_MESSAGE);

    /* every bit flip of the audited head: refused by parse or by the check */
    for (size_t bit = 0; bit < 8 * len; bit++) {
        int rc;

        flip(enc, bit);
        rc = sotto_kt_audited_head_parse(enc, len, &back);
        if (rc == SOTTO_OK)
            rc = sotto_kt_audited_head_check(&back, spk, (const uint8_t(*)[32])apk, 2, TS, day);
        assert_int_not_equal(rc, SOTTO_OK);
        flip(enc, bit);
    }
    assert_int_equal(sotto_kt_audited_head_parse(enc, len, &back), SOTTO_OK);
    assert_int_equal(sotto_kt_audited_head_check(&back, spk, (const uint8_t(*)[32])apk, 2, TS, day),
                     SOTTO_OK);

    /* at most 8 auditors */
    for (uint8_t i = 0; i < 6; i++) {
        uint8_t k[32];

        memset(k, 0x40 + i, sizeof k);
        assert_int_equal(sotto_kt_audited_head_add(&ah, k, sig), SOTTO_OK);
    }
    assert_int_equal(ah.n_cosigs, 8);
    memset(apk[2], 0xff, 32);
    assert_int_equal(sotto_kt_audited_head_add(&ah, apk[2], sig), SOTTO_ERR_BUFFER_TOO_SMALL);
    for (size_t i = 1; i < 8; i++)
        assert_true(memcmp(ah.cosigs[i - 1].auditor_pk, ah.cosigs[i].auditor_pk, 32) < 0);
    assert_int_equal(sotto_kt_audited_head_encode(&ah, enc, sizeof enc, &len), SOTTO_OK);
    assert_int_equal(len, SOTTO_KT_AUDITED_HEAD_MAX_BYTES);
    assert_int_equal(sotto_kt_audited_head_parse(enc, len, &back), SOTTO_OK);

    assert_string_equal(sotto_strerror(SOTTO_ERR_KT_HEAD_STALE),
                        "transparency tree head is too old or from the future");
    assert_string_equal(sotto_strerror(SOTTO_ERR_KT_AUDITOR_MISSING),
                        "transparency tree head lacks a required auditor countersignature");
}

static void test_leaf(void **state)
{
    uint8_t root[32], data[SOTTO_KT_LEAF_BYTES], h[32], want[SOTTO_KT_LEAF_BYTES];
    (void)state;

    memset(root, 0xaa, sizeof root);
    assert_int_equal(sotto_kt_leaf_data(data, root, TS), SOTTO_OK);
    tu_unhex_into("534f54544f2d4b542d4c4541462d563100aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                  "aaaaaaaaaaaaaaaaaaaaaa0000018bcfe56800",
                  want, sizeof want);
    assert_memory_equal(data, want, sizeof want);
    assert_int_equal(sotto_kt_leaf_hash(h, root, TS), SOTTO_OK);
    tu_unhex_into("59004b9a83ce1d808b37d0697648082d02d735340bc7614d6124051105cfc192", want, 32);
    assert_memory_equal(h, want, 32);
}

/* ------------------------------------------------------------------------ */
/* End-to-end search                                                        */
/* ------------------------------------------------------------------------ */

#define N_USERS 200

typedef struct world {
    sotto_vrf_key_pair vrf;
    uint8_t spk[32], ssk[64];
    sotto_prefix_tree *tree;
    uint8_t leaves[N_USERS][HB];
    uint8_t roots[N_USERS][HB]; /* prefix root after user i */
    sotto_kt_value value[N_USERS];
    uint8_t opening[N_USERS][32];
    uint8_t commitment[N_USERS][32];
    uint8_t leafval[N_USERS][32];
    sotto_kt_tree_head head[N_USERS + 1]; /* head[n]: first n leaves */
} world;

static void user_name(char out[16], int i)
{
    snprintf(out, 16, "user%d", i);
}

static world *build_world(void)
{
    world *w = calloc(1, sizeof *w);
    uint8_t seed[32], pi[80], beta[64];

    assert_non_null(w);
    memset(seed, 7, sizeof seed);
    assert_int_equal(sotto_vrf_key_pair_from_seed(&w->vrf, seed), SOTTO_OK);
    keys_from_seed(1, w->spk, w->ssk);
    assert_int_equal(sotto_prefix_tree_new(&w->tree), SOTTO_OK);
    for (int i = 0; i < N_USERS; i++) {
        char name[16];
        uint8_t v[SOTTO_KT_VALUE_BYTES];

        user_name(name, i);
        assert_int_equal(sotto_vrf_prove(pi, &w->vrf, (const uint8_t *)name, strlen(name)),
                         SOTTO_OK);
        assert_int_equal(sotto_vrf_proof_to_hash(beta, pi), SOTTO_OK);
        w->value[i].account_key[0] = 0x05;
        memset(w->value[i].account_key + 1, i, 32);
        memset(w->value[i].device_list_hash, 0x80 ^ i, 32);
        w->value[i].version = (uint64_t)i + 1;
        assert_int_equal(sotto_kt_value_encode(&w->value[i], v), SOTTO_OK);
        /* the library's own commit, as the server will use it */
        assert_int_equal(sotto_kt_commit(w->commitment[i], w->opening[i], name, v, sizeof v),
                         SOTTO_OK);
        /* the leaf value of a first update (counter 1), computed by hand */
        assert_int_equal(test_leaf_value(w->leafval[i], 1, w->commitment[i]), SOTTO_OK);
        assert_int_equal(sotto_prefix_tree_set(w->tree, beta, w->leafval[i]), SOTTO_OK);
        assert_int_equal(sotto_prefix_tree_root(w->tree, w->roots[i]), SOTTO_OK);
        assert_int_equal(sotto_kt_leaf_hash(w->leaves[i], w->roots[i], TS + (uint64_t)i), SOTTO_OK);
        w->head[i + 1].size = (uint64_t)i + 1;
        assert_int_equal(sotto_merkle_root((const uint8_t(*)[HB])w->leaves, (uint64_t)i + 1,
                                           w->head[i + 1].root),
                         SOTTO_OK);
        w->head[i + 1].timestamp_ms = TS + (uint64_t)i + 10;
        assert_int_equal(sotto_kt_head_sign(&w->head[i + 1], w->ssk), SOTTO_OK);
    }
    return w;
}

static void free_world(world *w)
{
    sotto_prefix_tree_free(w->tree);
    sotto_vrf_key_pair_wipe(&w->vrf);
    free(w);
}

/* The server's answer for user i at the head of n leaves (n > i). */
static void make_result(const world *w, int i, sotto_kt_search_result *r)
{
    char name[16];
    uint8_t beta[64];
    const size_t n = N_USERS;

    memset(r, 0, sizeof *r);
    user_name(name, i);
    assert_int_equal(sotto_vrf_prove(r->vrf_proof, &w->vrf, (const uint8_t *)name, strlen(name)),
                     SOTTO_OK);
    assert_int_equal(sotto_vrf_proof_to_hash(beta, r->vrf_proof), SOTTO_OK);
    memcpy(r->opening, w->opening[i], 32);
    r->value = w->value[i];
    r->counter = 1;
    memcpy(r->prefix_root, w->roots[n - 1], HB);
    r->leaf_timestamp_ms = TS + n - 1;
    assert_int_equal(sotto_prefix_tree_prove(w->tree, beta, &r->pt_proof), SOTTO_OK);
    assert_int_equal(sotto_merkle_prove_inclusion((const uint8_t(*)[HB])w->leaves, n, n - 1,
                                                  r->log_path, &r->log_path_len),
                     SOTTO_OK);
}

static sotto_kt_search_result g_r, g_back;
static uint8_t g_enc[SOTTO_KT_SEARCH_MAX_BYTES + 1], g_enc2[SOTTO_KT_SEARCH_MAX_BYTES];

static int verify_as(const world *w, const char *name, const sotto_kt_search_result *r,
                     const sotto_kt_tree_head *head)
{
    sotto_kt_value out;
    int rc = sotto_kt_search_verify(&out, w->vrf.pk, name, r, head);
    if (rc != SOTTO_OK) {
        sotto_kt_value zero;
        memset(&zero, 0, sizeof zero);
        assert_memory_equal(&out, &zero, sizeof out);
    }
    return rc;
}

static void test_search_end_to_end(void **state)
{
    world *w = build_world();
    const sotto_kt_tree_head *head = &w->head[N_USERS];
    sotto_kt_tree_head h2;
    sotto_kt_value out;
    uint8_t c[32], bad_pk[32];
    size_t len, len2;
    (void)state;

    make_result(w, 77, &g_r);
    /* the client's recomputed commitment is the server's */
    assert_int_equal(sotto_kt_value_commitment(c, w->opening[77], "user77", &w->value[77]),
                     SOTTO_OK);
    assert_memory_equal(c, w->commitment[77], 32);

    assert_int_equal(sotto_kt_search_result_encode(&g_r, g_enc, sizeof g_enc, &len), SOTTO_OK);
    assert_int_equal(sotto_kt_search_result_parse(g_enc, len, &g_back), SOTTO_OK);
    assert_int_equal(sotto_kt_search_result_encode(&g_back, g_enc2, sizeof g_enc2, &len2),
                     SOTTO_OK);
    assert_int_equal(len2, len);
    assert_memory_equal(g_enc, g_enc2, len);
    assert_int_equal(sotto_kt_search_verify(&out, w->vrf.pk, "user77", &g_back, head), SOTTO_OK);
    assert_memory_equal(&out, &w->value[77], sizeof out);
    assert_int_equal(out.version, 78);
    printf("search result for 1 of %d entries: %zu bytes (prefix proof depth %u, log path %zu)\n",
           N_USERS, len, g_back.pt_proof.depth, g_back.log_path_len);

    /* VRF: another name, another name's proof, a flipped proof, another key */
    assert_int_equal(verify_as(w, "user78", &g_back, head), SOTTO_ERR_INVALID_SIGNATURE);
    make_result(w, 78, &g_r);
    memcpy(g_back.vrf_proof, g_r.vrf_proof, 80);
    assert_int_equal(verify_as(w, "user77", &g_back, head), SOTTO_ERR_INVALID_SIGNATURE);
    /* user78's whole result does not pass as user77's */
    assert_int_equal(verify_as(w, "user77", &g_r, head), SOTTO_ERR_INVALID_SIGNATURE);
    assert_int_equal(verify_as(w, "user78", &g_r, head), SOTTO_OK);
    assert_int_equal(sotto_kt_search_result_parse(g_enc, len, &g_back), SOTTO_OK);
    for (size_t bit = 0; bit < 8 * 80; bit += 7) {
        flip(g_back.vrf_proof, bit);
        assert_int_equal(verify_as(w, "user77", &g_back, head), SOTTO_ERR_INVALID_SIGNATURE);
        flip(g_back.vrf_proof, bit);
    }
    memset(bad_pk, 0, sizeof bad_pk); /* small order */
    bad_pk[0] = 1;
    assert_int_equal(sotto_kt_search_verify(&out, bad_pk, "user77", &g_back, head),
                     SOTTO_ERR_INVALID_KEY);

    /* opening, value (each field), prefix root, leaf timestamp */
    g_back.opening[5] ^= 1;
    assert_int_equal(verify_as(w, "user77", &g_back, head), SOTTO_ERR_PROOF_INVALID);
    g_back.opening[5] ^= 1;
    g_back.value.account_key[32] ^= 1;
    assert_int_equal(verify_as(w, "user77", &g_back, head), SOTTO_ERR_PROOF_INVALID);
    g_back.value.account_key[32] ^= 1;
    g_back.value.device_list_hash[0] ^= 0x80;
    assert_int_equal(verify_as(w, "user77", &g_back, head), SOTTO_ERR_PROOF_INVALID);
    g_back.value.device_list_hash[0] ^= 0x80;
    g_back.value.version++;
    assert_int_equal(verify_as(w, "user77", &g_back, head), SOTTO_ERR_PROOF_INVALID);
    g_back.value.version--;
    g_back.value = w->value[78]; /* another user's (real) value */
    assert_int_equal(verify_as(w, "user77", &g_back, head), SOTTO_ERR_PROOF_INVALID);
    g_back.value = w->value[77];
    g_back.prefix_root[31] ^= 1;
    assert_int_equal(verify_as(w, "user77", &g_back, head), SOTTO_ERR_PROOF_INVALID);
    g_back.prefix_root[31] ^= 1;
    g_back.leaf_timestamp_ms++;
    assert_int_equal(verify_as(w, "user77", &g_back, head), SOTTO_ERR_PROOF_INVALID);
    g_back.leaf_timestamp_ms--;
    /* the counter: the tree holds leaf_value(1, commitment), so 2 (a server
     * hiding an update), 0 and the top value are refused */
    assert_int_equal(g_back.counter, 1);
    g_back.counter = 2;
    assert_int_equal(verify_as(w, "user77", &g_back, head), SOTTO_ERR_PROOF_INVALID);
    g_back.counter = 0;
    assert_int_equal(verify_as(w, "user77", &g_back, head), SOTTO_ERR_PROOF_INVALID);
    g_back.counter = UINT64_MAX;
    assert_int_equal(verify_as(w, "user77", &g_back, head), SOTTO_ERR_PROOF_INVALID);
    g_back.counter = 1;
    assert_int_equal(verify_as(w, "user77", &g_back, head), SOTTO_OK);

    /* prefix-tree proof and log path: every bit of every hash */
    for (size_t s = 0; s < g_back.pt_proof.n_siblings; s++)
        for (size_t bit = 0; bit < 256; bit += 5) {
            flip(g_back.pt_proof.siblings[s], bit);
            assert_int_equal(verify_as(w, "user77", &g_back, head), SOTTO_ERR_PROOF_INVALID);
            flip(g_back.pt_proof.siblings[s], bit);
        }
    for (size_t s = 0; s < g_back.log_path_len; s++)
        for (size_t bit = 0; bit < 256; bit += 5) {
            flip(g_back.log_path[s], bit);
            assert_int_equal(verify_as(w, "user77", &g_back, head), SOTTO_ERR_PROOF_INVALID);
            flip(g_back.log_path[s], bit);
        }
    g_back.log_path_len--;
    assert_int_equal(verify_as(w, "user77", &g_back, head), SOTTO_ERR_PROOF_INVALID);
    g_back.log_path_len++;

    /* head: another root, another size; an older head (the result is not its last leaf) */
    h2 = *head;
    h2.root[0] ^= 1;
    assert_int_equal(verify_as(w, "user77", &g_back, &h2), SOTTO_ERR_PROOF_INVALID);
    h2 = *head;
    h2.size++;
    assert_int_equal(verify_as(w, "user77", &g_back, &h2), SOTTO_ERR_PROOF_INVALID);
    assert_int_equal(verify_as(w, "user77", &g_back, &w->head[N_USERS - 1]),
                     SOTTO_ERR_PROOF_INVALID);
    /* a head stamped before the leaf */
    h2 = *head;
    h2.timestamp_ms = g_back.leaf_timestamp_ms - 1;
    assert_int_equal(verify_as(w, "user77", &g_back, &h2), SOTTO_ERR_PROOF_INVALID);
    /* a stale directory state: user77 before user199 was added, under the current head */
    {
        sotto_kt_search_result *old = calloc(1, sizeof *old);
        assert_non_null(old);
        *old = g_back;
        memcpy(old->prefix_root, w->roots[N_USERS - 2], HB);
        old->leaf_timestamp_ms = TS + N_USERS - 2;
        assert_int_equal(sotto_merkle_prove_inclusion((const uint8_t(*)[HB])w->leaves, N_USERS,
                                                      N_USERS - 2, old->log_path,
                                                      &old->log_path_len),
                         SOTTO_OK);
        assert_int_equal(verify_as(w, "user77", old, head), SOTTO_ERR_PROOF_INVALID);
        free(old);
    }

    /* every single-bit flip of the encoding: refused by parse or by verify */
    for (size_t bit = 0; bit < 8 * len; bit++) {
        int rc;

        flip(g_enc, bit);
        rc = sotto_kt_search_result_parse(g_enc, len, &g_back);
        if (rc == SOTTO_OK)
            rc = verify_as(w, "user77", &g_back, head);
        assert_int_not_equal(rc, SOTTO_OK);
        flip(g_enc, bit);
    }
    /* the counter on the wire: right after the value, big-endian; 0 does
     * not parse, 0 does not encode; 2 parses and is refused by verify */
    {
        const size_t at = SOTTO_VRF_PROOF_BYTES + SOTTO_KT_OPENING_BYTES + SOTTO_KT_VALUE_BYTES;
        static const uint8_t one[8] = {0, 0, 0, 0, 0, 0, 0, 1};

        assert_memory_equal(g_enc + at, one, 8);
        g_enc[at + 7] = 0;
        assert_int_equal(sotto_kt_search_result_parse(g_enc, len, &g_back),
                         SOTTO_ERR_INVALID_MESSAGE);
        assert_int_equal(g_back.counter, 0);
        g_enc[at + 7] = 2;
        assert_int_equal(sotto_kt_search_result_parse(g_enc, len, &g_back), SOTTO_OK);
        assert_int_equal(g_back.counter, 2);
        assert_int_equal(verify_as(w, "user77", &g_back, head), SOTTO_ERR_PROOF_INVALID);
        g_back.counter = 0;
        assert_int_equal(sotto_kt_search_result_encode(&g_back, g_enc2, sizeof g_enc2, &len2),
                         SOTTO_ERR_INVALID_ARGUMENT);
        g_enc[at + 7] = 1;
    }
    /* truncation and trailing bytes */
    g_enc[len] = 0;
    assert_int_equal(sotto_kt_search_result_parse(g_enc, len + 1, &g_back),
                     SOTTO_ERR_TRAILING_DATA);
    for (size_t cut = 0; cut < len; cut++)
        assert_int_not_equal(sotto_kt_search_result_parse(g_enc, cut, &g_back), SOTTO_OK);
    assert_int_equal(
        sotto_kt_search_result_encode(&g_r, g_enc2, SOTTO_KT_SEARCH_FIXED_BYTES - 1, &len2),
        SOTTO_ERR_BUFFER_TOO_SMALL);
    free_world(w);
}

static void test_consistency(void **state)
{
    world *w = build_world();
    uint8_t path[SOTTO_MERKLE_MAX_PROOF][HB], enc[SOTTO_MERKLE_PROOF_MAX_BYTES];
    size_t n, len;
    sotto_kt_tree_head older;
    (void)state;

    assert_int_equal(
        sotto_merkle_prove_consistency((const uint8_t(*)[HB])w->leaves, N_USERS, 77, path, &n),
        SOTTO_OK);
    assert_int_equal(
        sotto_merkle_proof_encode((const uint8_t(*)[HB])path, n, enc, sizeof enc, &len), SOTTO_OK);
    assert_int_equal(sotto_kt_head_verify_consistency(&w->head[77], &w->head[N_USERS], enc, len),
                     SOTTO_OK);
    /* swapped, another older head, time going back, a flipped bit */
    assert_int_equal(sotto_kt_head_verify_consistency(&w->head[N_USERS], &w->head[77], enc, len),
                     SOTTO_ERR_PROOF_INVALID);
    assert_int_equal(sotto_kt_head_verify_consistency(&w->head[78], &w->head[N_USERS], enc, len),
                     SOTTO_ERR_PROOF_INVALID);
    older = w->head[77];
    older.timestamp_ms = w->head[N_USERS].timestamp_ms + 1;
    assert_int_equal(sotto_kt_head_verify_consistency(&older, &w->head[N_USERS], enc, len),
                     SOTTO_ERR_PROOF_INVALID);
    for (size_t bit = 8; bit < 8 * len; bit += 3) {
        flip(enc, bit);
        assert_int_equal(
            sotto_kt_head_verify_consistency(&w->head[77], &w->head[N_USERS], enc, len),
            SOTTO_ERR_PROOF_INVALID);
        flip(enc, bit);
    }
    assert_int_equal(
        sotto_kt_head_verify_consistency(&w->head[77], &w->head[N_USERS], enc, len - 1),
        SOTTO_ERR_INVALID_MESSAGE);
    /* equal heads: empty path */
    enc[0] = 0;
    assert_int_equal(sotto_kt_head_verify_consistency(&w->head[N_USERS], &w->head[N_USERS], enc, 1),
                     SOTTO_OK);
    older = w->head[N_USERS];
    older.root[0] ^= 1;
    assert_int_equal(sotto_kt_head_verify_consistency(&older, &w->head[N_USERS], enc, 1),
                     SOTTO_ERR_PROOF_INVALID);
    free_world(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_head_known_answer), cmocka_unit_test(test_head_bit_flips),
        cmocka_unit_test(test_audited_head),      cmocka_unit_test(test_leaf),
        cmocka_unit_test(test_search_end_to_end), cmocka_unit_test(test_consistency),
    };
    if (sotto_init() != SOTTO_OK)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
