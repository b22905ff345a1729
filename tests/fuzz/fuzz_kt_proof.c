/*
 * Fuzz target: key-transparency proofs on the wire (sotto/merkle.h,
 * sotto/prefix_tree.h), decoded and verified against trees the harness
 * built itself, so a mutated proof gets past the decoder and the hashing
 * and reaches the comparisons.
 * Input: mode (1 byte, % 3) | a (1) | b (1) | encoded proof
 *   mode 0  log inclusion: leaf a of the log of b leaves (a 64-leaf log;
 *           sizes 0 or > 64 are checked against an all-zero root)
 *   mode 1  log consistency from a leaves to b leaves
 *   mode 2  prefix tree (256 entries): a selects the index, b's low bit
 *           whether it is present (entry a, with its value) or absent
 *           (entry a with its last bit flipped, or, for b & 2, a hash of a)
 * Invariants (abort on violation):
 *  - parse returns only documented codes; what parses encodes back to the
 *    same bytes;
 *  - verify returns only SOTTO_OK or SOTTO_ERR_PROOF_INVALID;
 *  - a proof that verifies is exactly the proof the harness's tree gives
 *    (a proof is unique: anything else is a forgery), and the harness's
 *    own proof always verifies.
 * Seeds: SOTTO_FUZZ_WRITE_SEEDS=dir writes them.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "sotto/keys.h"
#include "sotto/merkle.h"
#include "sotto/prefix_tree.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HB 32
#define LOG_N 64
#define PT_N 256

static uint8_t g_leaves[LOG_N][HB];
static uint8_t g_roots[LOG_N + 1][HB];
static uint8_t g_index[PT_N][32], g_value[PT_N][32];
static uint8_t g_pt_root[HB];
static sotto_prefix_tree *g_tree;
static int g_ready;

static void write_seed(const char *name, uint8_t mode, uint8_t a, uint8_t b, const uint8_t *p,
                       size_t n)
{
    const char *dir = getenv("SOTTO_FUZZ_WRITE_SEEDS");
    uint8_t head[3] = {mode, a, b};
    char path[1024];
    FILE *f;

    if (dir == NULL)
        return;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "wb");
    if (f == NULL || fwrite(head, 1, 3, f) != 3 || fwrite(p, 1, n, f) != n)
        abort();
    fclose(f);
}

/* The proof the harness expects, encoded; 0 when there is none. */
static size_t expected_log(int mode, unsigned a, unsigned b, uint8_t *out)
{
    uint8_t path[SOTTO_MERKLE_MAX_PROOF][HB];
    size_t len = 0, n = 0;
    int rc;

    if (b == 0 || b > LOG_N)
        return 0;
    if (mode == 0)
        rc = sotto_merkle_prove_inclusion((const uint8_t(*)[HB])g_leaves, b, a, path, &len);
    else
        rc = sotto_merkle_prove_consistency((const uint8_t(*)[HB])g_leaves, b, a, path, &len);
    if (rc != SOTTO_OK)
        return 0;
    if (sotto_merkle_proof_encode((const uint8_t(*)[HB])path, len, out,
                                  SOTTO_MERKLE_PROOF_MAX_BYTES, &n) != SOTTO_OK)
        abort();
    return n;
}

static void pt_index(unsigned a, unsigned b, uint8_t idx[32], const uint8_t **value)
{
    memcpy(idx, g_index[a], 32);
    *value = NULL;
    if (b & 1) {
        *value = g_value[a];
    } else if (b & 2) {
        crypto_hash_sha256(idx, g_index[a], 32);
    } else {
        idx[31] ^= 1;
    }
}

static size_t expected_pt(unsigned a, unsigned b, uint8_t *out)
{
    sotto_pt_proof *p = malloc(sizeof *p);
    const uint8_t *value;
    uint8_t idx[32];
    size_t n = 0;

    if (p == NULL)
        abort();
    pt_index(a, b, idx, &value);
    if (sotto_prefix_tree_prove(g_tree, idx, p) != SOTTO_OK ||
        sotto_pt_proof_encode(p, out, SOTTO_PT_PROOF_MAX_BYTES, &n) != SOTTO_OK ||
        (value != NULL) != (p->kind == SOTTO_PT_PROOF_PRESENT))
        abort();
    free(p);
    return n;
}

static void setup_once(void)
{
    uint8_t seed[randombytes_SEEDBYTES] = {0x4b, 0x54};
    uint8_t buf[SOTTO_PT_PROOF_MAX_BYTES];
    size_t n;

    if (g_ready)
        return;
    g_ready = 1;
    if (sotto_init() != SOTTO_OK)
        abort();
    for (unsigned i = 0; i < LOG_N; i++) {
        uint8_t d[2] = {'L', (uint8_t)i};
        if (sotto_merkle_leaf_hash(g_leaves[i], d, 2) != SOTTO_OK)
            abort();
    }
    for (unsigned i = 0; i <= LOG_N; i++) {
        if (sotto_merkle_root((const uint8_t(*)[HB])g_leaves, i, g_roots[i]) != SOTTO_OK)
            abort();
    }
    randombytes_buf_deterministic(g_index, sizeof g_index, seed);
    seed[0]++;
    randombytes_buf_deterministic(g_value, sizeof g_value, seed);
    if (sotto_prefix_tree_new(&g_tree) != SOTTO_OK)
        abort();
    for (unsigned i = 0; i < PT_N; i++) {
        if (sotto_prefix_tree_set(g_tree, g_index[i], g_value[i]) != SOTTO_OK)
            abort();
    }
    if (sotto_prefix_tree_root(g_tree, g_pt_root) != SOTTO_OK)
        abort();

    n = expected_log(0, 5, 13, buf);
    write_seed("inclusion_5_13.bin", 0, 5, 13, buf, n);
    n = expected_log(0, 63, 64, buf);
    write_seed("inclusion_63_64.bin", 0, 63, 64, buf, n);
    n = expected_log(1, 3, 7, buf);
    write_seed("consistency_3_7.bin", 1, 3, 7, buf, n);
    n = expected_log(1, 4, 64, buf);
    write_seed("consistency_4_64.bin", 1, 4, 64, buf, n);
    n = expected_pt(9, 1, buf);
    write_seed("pt_present.bin", 2, 9, 1, buf, n);
    n = expected_pt(9, 0, buf);
    write_seed("pt_absent_leaf.bin", 2, 9, 0, buf, n);
    n = expected_pt(9, 2, buf);
    write_seed("pt_absent_hash.bin", 2, 9, 2, buf, n);
}

static void fuzz_log(int mode, unsigned a, unsigned b, const uint8_t *in, size_t len)
{
    uint8_t path[SOTTO_MERKLE_MAX_PROOF][HB], enc[SOTTO_MERKLE_PROOF_MAX_BYTES];
    uint8_t want[SOTTO_MERKLE_PROOF_MAX_BYTES];
    static const uint8_t zero[HB];
    const uint8_t *root_b = b >= 1 && b <= LOG_N ? g_roots[b] : zero;
    const uint8_t *root_a = a >= 1 && a <= LOG_N ? g_roots[a] : zero;
    size_t plen = 0, elen = 0, wlen;
    int rc;

    rc = sotto_merkle_proof_parse(in, len, path, &plen);
    if (rc != SOTTO_OK) {
        if ((rc != SOTTO_ERR_INVALID_MESSAGE && rc != SOTTO_ERR_TRAILING_DATA) || plen != 0)
            abort();
        return;
    }
    if (sotto_merkle_proof_encode((const uint8_t(*)[HB])path, plen, enc, sizeof enc, &elen) !=
            SOTTO_OK ||
        elen != len || memcmp(enc, in, len) != 0)
        abort();
    if (mode == 0)
        rc = sotto_merkle_verify_inclusion(a, b, a < LOG_N ? g_leaves[a] : zero,
                                           (const uint8_t(*)[HB])path, plen, root_b);
    else
        rc =
            sotto_merkle_verify_consistency(a, b, root_a, root_b, (const uint8_t(*)[HB])path, plen);
    if (rc != SOTTO_OK && rc != SOTTO_ERR_PROOF_INVALID)
        abort();
    if (mode == 1 && a == b && a >= 1) {
        /* equal sizes (also out of the harness's range, where both roots
         * are the same placeholder): the empty path, count byte 0 */
        want[0] = 0;
        wlen = 1;
    } else {
        wlen = expected_log(mode, a, b, want);
    }
    if (wlen == 0) {
        if (rc == SOTTO_OK)
            abort(); /* nothing may verify where there is no proof */
        return;
    }
    if ((rc == SOTTO_OK) != (len == wlen && memcmp(in, want, len) == 0))
        abort();
}

static void fuzz_pt(unsigned a, unsigned b, const uint8_t *in, size_t len)
{
    sotto_pt_proof *p = malloc(sizeof *p);
    uint8_t enc[SOTTO_PT_PROOF_MAX_BYTES], want[SOTTO_PT_PROOF_MAX_BYTES], idx[32];
    const uint8_t *value;
    size_t elen = 0, wlen;
    int rc;

    if (p == NULL)
        abort();
    rc = sotto_pt_proof_parse(in, len, p);
    if (rc != SOTTO_OK) {
        if ((rc != SOTTO_ERR_INVALID_MESSAGE && rc != SOTTO_ERR_TRAILING_DATA) || p->kind != 0 ||
            p->depth != 0 || p->n_siblings != 0)
            abort();
        free(p);
        return;
    }
    if (sotto_pt_proof_encode(p, enc, sizeof enc, &elen) != SOTTO_OK || elen != len ||
        memcmp(enc, in, len) != 0)
        abort();
    pt_index(a, b, idx, &value);
    rc = sotto_pt_verify(g_pt_root, idx, value, p);
    if (rc != SOTTO_OK && rc != SOTTO_ERR_PROOF_INVALID)
        abort();
    wlen = expected_pt(a, b, want);
    if ((rc == SOTTO_OK) != (len == wlen && memcmp(in, want, len) == 0))
        abort();
    /* the opposite claim never verifies */
    if (rc == SOTTO_OK &&
        sotto_pt_verify(g_pt_root, idx, value != NULL ? NULL : g_value[a], p) == SOTTO_OK)
        abort();
    free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf;
    int mode;

    setup_once();
    if (size < 3 || size > SOTTO_PT_PROOF_MAX_BYTES + 3)
        return 0;
    buf = malloc(size - 3 ? size - 3 : 1); /* exact size, so ASan sees overreads */
    if (buf == NULL)
        abort();
    memcpy(buf, data + 3, size - 3);
    mode = data[0] % 3;
    if (mode == 2)
        fuzz_pt(data[1] % PT_N, data[2], buf, size - 3);
    else
        fuzz_log(mode, data[1], data[2], buf, size - 3);
    free(buf);
    return 0;
}
