/*
 * Fuzz target: key-transparency tree heads, audited heads and search
 * results on the wire (sotto/kt.h). The harness owns the server key, two
 * auditor keys, a VRF key and a small directory (16 users, a log of 16
 * leaves), so a mutated input can be re-signed and reach past the
 * signatures to the checks behind them.
 * Input: mode (1 byte, % 3) | flags (1) | body
 *   mode 0  body is a tree head; flags & 1: the harness re-signs its first
 *           48 bytes (size, root, timestamp) with the server key first
 *   mode 1  body is an audited head; flags & 1: re-sign the head, flags & 2:
 *           re-countersign every cosig whose key is a harness auditor's;
 *           flags >> 2 & 3: number of required auditors (0..2, 3 = 2);
 *           flags & 16: check 1 ms past the maximum age
 *   mode 2  body is a search result, verified for user (flags % 16)
 *           against the harness's head
 * Invariants (abort on violation):
 *  - parsers return only documented codes, zero their output on error, and
 *    what parses encodes back to the same bytes;
 *  - a re-signed head of exactly 112 bytes with a valid size parses;
 *  - an accepted audited head has a valid countersignature from each
 *    required auditor and is not stale; a stale one is never accepted;
 *  - a search result that verifies gives exactly the harness's value for
 *    that user, with its counter (1), under the harness's current prefix
 *    root.
 * Seeds: SOTTO_FUZZ_WRITE_SEEDS=dir writes them.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "sotto/keys.h"
#include "sotto/kt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HB 32
#define N_USERS 16
#define TS UINT64_C(1700000000000)

static uint8_t g_spk[32], g_ssk[64], g_apk[2][32], g_ask[2][64];
static sotto_vrf_key_pair g_vrf;
static sotto_prefix_tree *g_tree;
static uint8_t g_leaves[N_USERS][HB], g_root[HB];
static sotto_kt_value g_value[N_USERS];
static uint8_t g_opening[N_USERS][32];
static sotto_kt_tree_head g_head;
static int g_ready;

static void write_seed(const char *name, uint8_t mode, uint8_t flags, const uint8_t *p, size_t n)
{
    const char *dir = getenv("SOTTO_FUZZ_WRITE_SEEDS");
    uint8_t head[2] = {mode, flags};
    char path[1024];
    FILE *f;

    if (dir == NULL)
        return;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "wb");
    if (f == NULL || fwrite(head, 1, 2, f) != 2 || fwrite(p, 1, n, f) != n)
        abort();
    fclose(f);
}

static void name_of(char out[16], unsigned i)
{
    snprintf(out, 16, "user%u", i);
}

static void check(int ok)
{
    if (!ok)
        abort();
}

static void make_result(unsigned i, sotto_kt_search_result *r)
{
    char name[16];
    uint8_t beta[64];

    memset(r, 0, sizeof *r);
    name_of(name, i);
    check(sotto_vrf_prove(r->vrf_proof, &g_vrf, (const uint8_t *)name, strlen(name)) == SOTTO_OK);
    check(sotto_vrf_proof_to_hash(beta, r->vrf_proof) == SOTTO_OK);
    memcpy(r->opening, g_opening[i], 32);
    r->value = g_value[i];
    r->counter = 1;
    memcpy(r->prefix_root, g_root, HB);
    r->leaf_timestamp_ms = TS + N_USERS - 1;
    check(sotto_prefix_tree_prove(g_tree, beta, &r->pt_proof) == SOTTO_OK);
    check(sotto_merkle_prove_inclusion((const uint8_t(*)[HB])g_leaves, N_USERS, N_USERS - 1,
                                       r->log_path, &r->log_path_len) == SOTTO_OK);
}

static void setup_once(void)
{
    uint8_t seed[32];
    uint8_t buf[SOTTO_KT_SEARCH_MAX_BYTES];
    sotto_kt_audited_head ah;
    sotto_kt_search_result *r;
    sotto_kt_value out;
    size_t n;

    if (g_ready)
        return;
    g_ready = 1;
    check(sotto_init() == SOTTO_OK);
    memset(seed, 1, sizeof seed);
    check(crypto_sign_seed_keypair(g_spk, g_ssk, seed) == 0);
    for (int a = 0; a < 2; a++) {
        memset(seed, 2 + a, sizeof seed);
        check(crypto_sign_seed_keypair(g_apk[a], g_ask[a], seed) == 0);
    }
    memset(seed, 7, sizeof seed);
    check(sotto_vrf_key_pair_from_seed(&g_vrf, seed) == SOTTO_OK);
    check(sotto_prefix_tree_new(&g_tree) == SOTTO_OK);
    for (unsigned i = 0; i < N_USERS; i++) {
        char name[16];
        uint8_t pi[80], beta[64], c[32], lv[32];

        name_of(name, i);
        check(sotto_vrf_prove(pi, &g_vrf, (const uint8_t *)name, strlen(name)) == SOTTO_OK);
        check(sotto_vrf_proof_to_hash(beta, pi) == SOTTO_OK);
        g_value[i].account_key[0] = 0x05;
        memset(g_value[i].account_key + 1, (int)i, 32);
        memset(g_value[i].device_list_hash, (int)(0x80 ^ i), 32);
        g_value[i].version = i + 1;
        memset(g_opening[i], (int)(0x30 + i), 32);
        check(sotto_kt_value_commitment(c, g_opening[i], name, &g_value[i]) == SOTTO_OK);
        check(sotto_kt_leaf_value(lv, 1, c) == SOTTO_OK);
        check(sotto_prefix_tree_set(g_tree, beta, lv) == SOTTO_OK);
        check(sotto_prefix_tree_root(g_tree, g_root) == SOTTO_OK);
        check(sotto_kt_leaf_hash(g_leaves[i], g_root, TS + i) == SOTTO_OK);
    }
    g_head.size = N_USERS;
    check(sotto_merkle_root((const uint8_t(*)[HB])g_leaves, N_USERS, g_head.root) == SOTTO_OK);
    g_head.timestamp_ms = TS + 100;
    check(sotto_kt_head_sign(&g_head, g_ssk) == SOTTO_OK);

    /* seeds */
    check(sotto_kt_head_encode(&g_head, buf) == SOTTO_OK);
    write_seed("head.bin", 0, 0, buf, SOTTO_KT_HEAD_BYTES);
    write_seed("head_resign.bin", 0, 1, buf, SOTTO_KT_HEAD_BYTES);
    memset(&ah, 0, sizeof ah);
    ah.head = g_head;
    for (int a = 0; a < 2; a++) {
        uint8_t sig[64];
        check(sotto_kt_cosign(sig, &g_head, g_ask[a]) == SOTTO_OK);
        check(sotto_kt_audited_head_add(&ah, g_apk[a], sig) == SOTTO_OK);
    }
    check(sotto_kt_audited_head_encode(&ah, buf, sizeof buf, &n) == SOTTO_OK);
    write_seed("audited.bin", 1, 2 << 2, buf, n);
    write_seed("audited_resign.bin", 1, 3 | 2 << 2, buf, n);
    write_seed("audited_stale.bin", 1, 3 | 2 << 2 | 16, buf, n);
    r = malloc(sizeof *r);
    check(r != NULL);
    make_result(3, r);
    check(sotto_kt_search_verify(&out, g_vrf.pk, "user3", r, &g_head) == SOTTO_OK);
    check(sotto_kt_search_result_encode(r, buf, sizeof buf, &n) == SOTTO_OK);
    write_seed("search_user3.bin", 2, 3, buf, n);
    free(r);
}

static void fuzz_head(unsigned flags, const uint8_t *in, size_t len)
{
    uint8_t copy[SOTTO_KT_HEAD_BYTES], enc[SOTTO_KT_HEAD_BYTES];
    sotto_kt_tree_head h, want;
    int rc, resigned = 0;

    if ((flags & 1) && len >= 48) {
        /* re-sign the fields as given (a size out of range stays unsigned) */
        memset(&want, 0, sizeof want);
        for (int i = 0; i < 8; i++) {
            want.size = (want.size << 8) | in[i];
            want.timestamp_ms = (want.timestamp_ms << 8) | in[40 + i];
        }
        memcpy(want.root, in + 8, HB);
        if (sotto_kt_head_sign(&want, g_ssk) == SOTTO_OK && len == SOTTO_KT_HEAD_BYTES) {
            check(sotto_kt_head_encode(&want, copy) == SOTTO_OK);
            in = copy;
            resigned = 1;
        }
    }
    memset(&h, 0xee, sizeof h);
    rc = sotto_kt_head_parse(in, len, g_spk, &h);
    if (rc != SOTTO_OK) {
        check(rc == SOTTO_ERR_INVALID_MESSAGE || rc == SOTTO_ERR_TRAILING_DATA ||
              rc == SOTTO_ERR_INVALID_SIGNATURE);
        check(!resigned);
        check(h.size == UINT64_C(0xeeeeeeeeeeeeeeee));
        return;
    }
    check(len == SOTTO_KT_HEAD_BYTES);
    check(sotto_kt_head_encode(&h, enc) == SOTTO_OK && memcmp(enc, in, len) == 0);
    check(sotto_kt_head_verify(&h, g_spk) == SOTTO_OK);
    check(sotto_kt_head_verify(&h, g_apk[0]) == SOTTO_ERR_INVALID_SIGNATURE);
}

static void fuzz_audited(unsigned flags, const uint8_t *in, size_t len)
{
    sotto_kt_audited_head ah;
    uint8_t enc[SOTTO_KT_AUDITED_HEAD_MAX_BYTES];
    size_t n = 0, required = (flags >> 2) & 3;
    uint64_t now;
    int rc;

    if (required > 2)
        required = 2;
    rc = sotto_kt_audited_head_parse(in, len, &ah);
    if (rc != SOTTO_OK) {
        sotto_kt_audited_head zero;
        memset(&zero, 0, sizeof zero);
        check(rc == SOTTO_ERR_INVALID_MESSAGE || rc == SOTTO_ERR_TRAILING_DATA);
        check(memcmp(&ah, &zero, sizeof ah) == 0);
        return;
    }
    check(sotto_kt_audited_head_encode(&ah, enc, sizeof enc, &n) == SOTTO_OK);
    check(n == len && memcmp(enc, in, len) == 0);
    if (flags & 1)
        check(sotto_kt_head_sign(&ah.head, g_ssk) == SOTTO_OK);
    if (flags & 2)
        for (size_t i = 0; i < ah.n_cosigs; i++)
            for (int a = 0; a < 2; a++)
                if (memcmp(ah.cosigs[i].auditor_pk, g_apk[a], 32) == 0)
                    check(sotto_kt_cosign(ah.cosigs[i].signature, &ah.head, g_ask[a]) == SOTTO_OK);
    now = ah.head.timestamp_ms;
    if (flags & 16) {
        if (now > UINT64_MAX - SOTTO_KT_DEFAULT_MAX_AGE_MS - 1)
            return;
        now += SOTTO_KT_DEFAULT_MAX_AGE_MS + 1;
    }
    rc = sotto_kt_audited_head_check(&ah, g_spk, (const uint8_t(*)[32])g_apk, required, now,
                                     SOTTO_KT_DEFAULT_MAX_AGE_MS);
    check(rc == SOTTO_OK || rc == SOTTO_ERR_INVALID_SIGNATURE || rc == SOTTO_ERR_KT_HEAD_STALE ||
          rc == SOTTO_ERR_KT_AUDITOR_MISSING);
    if (flags & 1)
        check(rc != SOTTO_ERR_INVALID_SIGNATURE || required > 0);
    if (rc != SOTTO_OK)
        return;
    check(!(flags & 16));
    check(sotto_kt_head_verify(&ah.head, g_spk) == SOTTO_OK);
    for (size_t a = 0; a < required; a++) {
        size_t i;
        for (i = 0; i < ah.n_cosigs; i++)
            if (memcmp(ah.cosigs[i].auditor_pk, g_apk[a], 32) == 0)
                break;
        check(i < ah.n_cosigs);
        check(sotto_kt_cosig_verify(ah.cosigs[i].signature, &ah.head, g_apk[a]) == SOTTO_OK);
    }
}

static void fuzz_search(unsigned flags, const uint8_t *in, size_t len)
{
    static sotto_kt_search_result r;
    static uint8_t enc[SOTTO_KT_SEARCH_MAX_BYTES];
    unsigned user = flags % N_USERS;
    sotto_kt_value out;
    char name[16];
    size_t n = 0;
    int rc;

    rc = sotto_kt_search_result_parse(in, len, &r);
    if (rc != SOTTO_OK) {
        check(rc == SOTTO_ERR_INVALID_MESSAGE || rc == SOTTO_ERR_TRAILING_DATA);
        check(r.value.version == 0 && r.counter == 0 && r.log_path_len == 0 &&
              r.pt_proof.kind == 0);
        return;
    }
    check(sotto_kt_search_result_encode(&r, enc, sizeof enc, &n) == SOTTO_OK);
    check(n == len && memcmp(enc, in, len) == 0);
    name_of(name, user);
    rc = sotto_kt_search_verify(&out, g_vrf.pk, name, &r, &g_head);
    check(rc == SOTTO_OK || rc == SOTTO_ERR_INVALID_SIGNATURE || rc == SOTTO_ERR_PROOF_INVALID);
    if (rc != SOTTO_OK) {
        check(out.version == 0);
        return;
    }
    check(memcmp(&out, &g_value[user], sizeof out) == 0);
    check(r.counter == 1);
    check(memcmp(r.prefix_root, g_root, HB) == 0);
    check(memcmp(r.opening, g_opening[user], 32) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup_once();
    if (size < 2)
        return 0;
    switch (data[0] % 3) {
    case 0:
        fuzz_head(data[1], data + 2, size - 2);
        break;
    case 1:
        fuzz_audited(data[1], data + 2, size - 2);
        break;
    default:
        fuzz_search(data[1], data + 2, size - 2);
        break;
    }
    return 0;
}
