/*
 * The key-transparency directory (sotto/prefix_tree.h): the hashing of
 * docs/protocol.md checked by hand on small trees and against an
 * independent recursive reference on 10,000 random indices; every proof of
 * those 10,000 verifies, 10,000 absent indices prove their absence, no
 * proof proves the other verdict, tampered proofs and roots are refused;
 * the wire encoding; the commitments (against libsodium's HMAC).
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

#include "crypto/crypto.h"
#include "sotto/keys.h"
#include "sotto/prefix_tree.h"
#include "testutil.h"

#define HB SOTTO_PT_HASH_BYTES
#define N 10000

struct entry {
    uint8_t index[32];
    uint8_t value[32];
};

static void det_bytes(void *p, size_t n, uint64_t ctr)
{
    uint8_t seed[randombytes_SEEDBYTES] = {0x77};
    memcpy(seed + 8, &ctr, sizeof ctr);
    randombytes_buf_deterministic(p, n, seed);
}

static int bit_of(const uint8_t *idx, unsigned k)
{
    return (idx[k / 8] >> (7 - k % 8)) & 1;
}

/* Reference, straight from the definition: hash of the subtree at `depth`
 * holding entries e[0..n) (all sharing the first `depth` bits). */
static void ref_hash(const struct entry *e, size_t n, unsigned depth, uint8_t out[HB])
{
    uint8_t buf[65], l[HB], r[HB];
    struct entry *left, *right;
    size_t nl = 0, nr = 0;

    if (n == 0) {
        memset(out, 0, HB);
        return;
    }
    if (n == 1) {
        buf[0] = 0x10;
        memcpy(buf + 1, e[0].index, 32);
        memcpy(buf + 33, e[0].value, 32);
        crypto_hash_sha256(out, buf, 65);
        return;
    }
    left = malloc(n * sizeof *left);
    right = malloc(n * sizeof *right);
    assert_non_null(left);
    assert_non_null(right);
    for (size_t i = 0; i < n; i++) {
        if (bit_of(e[i].index, depth))
            right[nr++] = e[i];
        else
            left[nl++] = e[i];
    }
    ref_hash(left, nl, depth + 1, l);
    ref_hash(right, nr, depth + 1, r);
    free(left);
    free(right);
    buf[0] = 0x11;
    memcpy(buf + 1, l, HB);
    memcpy(buf + 33, r, HB);
    crypto_hash_sha256(out, buf, 65);
}

static void test_small_trees(void **state)
{
    sotto_prefix_tree *t;
    sotto_pt_proof p;
    uint8_t a[32] = {0}, b[32] = {0}, va[32], vb[32], root[HB], want[HB], la[HB], lb[HB];
    uint8_t zero[HB] = {0};

    (void)state;
    memset(va, 0xaa, 32);
    memset(vb, 0xbb, 32);
    assert_int_equal(sotto_prefix_tree_new(&t), SOTTO_OK);
    /* empty: root E, absence at depth 0 */
    assert_int_equal(sotto_prefix_tree_root(t, root), SOTTO_OK);
    assert_memory_equal(root, zero, HB);
    assert_int_equal(sotto_prefix_tree_prove(t, a, &p), SOTTO_OK);
    assert_int_equal(p.kind, SOTTO_PT_PROOF_ABSENT_EMPTY);
    assert_int_equal(p.depth, 0);
    assert_int_equal(sotto_pt_verify(root, a, NULL, &p), SOTTO_OK);
    assert_int_equal(sotto_pt_verify(root, a, va, &p), SOTTO_ERR_PROOF_INVALID);

    /* one leaf: root = SHA-256(0x10 || index || value), by hand */
    {
        uint8_t buf[65] = {0x10};
        memcpy(buf + 1, a, 32);
        memcpy(buf + 33, va, 32);
        crypto_hash_sha256(la, buf, 65);
        b[0] = 0x80; /* differs from a in bit 0 */
        memcpy(buf + 1, b, 32);
        memcpy(buf + 33, vb, 32);
        crypto_hash_sha256(lb, buf, 65);
    }
    assert_int_equal(sotto_prefix_tree_set(t, a, va), SOTTO_OK);
    assert_int_equal(sotto_prefix_tree_root(t, root), SOTTO_OK);
    assert_memory_equal(root, la, HB);
    assert_int_equal(sotto_prefix_tree_prove(t, a, &p), SOTTO_OK);
    assert_int_equal(p.kind, SOTTO_PT_PROOF_PRESENT);
    assert_int_equal(p.depth, 0);
    assert_int_equal(sotto_pt_verify(root, a, va, &p), SOTTO_OK);
    assert_int_equal(sotto_pt_verify(root, a, vb, &p), SOTTO_ERR_PROOF_INVALID);
    assert_int_equal(sotto_prefix_tree_prove(t, b, &p), SOTTO_OK);
    assert_int_equal(p.kind, SOTTO_PT_PROOF_ABSENT_LEAF);
    assert_int_equal(sotto_pt_verify(root, b, NULL, &p), SOTTO_OK);

    /* two leaves split at bit 0: root = SHA-256(0x11 || la || lb) */
    assert_int_equal(sotto_prefix_tree_set(t, b, vb), SOTTO_OK);
    {
        uint8_t buf[65] = {0x11};
        memcpy(buf + 1, la, HB);
        memcpy(buf + 33, lb, HB);
        crypto_hash_sha256(want, buf, 65);
    }
    assert_int_equal(sotto_prefix_tree_root(t, root), SOTTO_OK);
    assert_memory_equal(root, want, HB);
    assert_int_equal(sotto_prefix_tree_prove(t, b, &p), SOTTO_OK);
    assert_int_equal(p.kind, SOTTO_PT_PROOF_PRESENT);
    assert_int_equal(p.depth, 1);
    assert_int_equal(p.n_siblings, 1);
    assert_memory_equal(p.siblings[0], la, HB);
    assert_int_equal(sotto_pt_verify(root, b, vb, &p), SOTTO_OK);
    sotto_prefix_tree_free(t);

    /* two leaves differing only in the last bit: leaves at depth 256 under
     * a chain of 255 nodes whose other child is empty */
    memset(b, 0, 32);
    b[31] = 0x01;
    assert_int_equal(sotto_prefix_tree_new(&t), SOTTO_OK);
    assert_int_equal(sotto_prefix_tree_set(t, b, vb), SOTTO_OK);
    assert_int_equal(sotto_prefix_tree_set(t, a, va), SOTTO_OK);
    {
        uint8_t buf[65] = {0x10};
        memcpy(buf + 1, b, 32);
        memcpy(buf + 33, vb, 32);
        crypto_hash_sha256(lb, buf, 65);
        buf[0] = 0x11;
        memcpy(buf + 1, la, HB);
        memcpy(buf + 33, lb, HB);
        crypto_hash_sha256(want, buf, 65);
        for (int k = 0; k < 255; k++) { /* index bit 0: left child */
            memcpy(buf + 1, want, HB);
            memset(buf + 33, 0, HB);
            crypto_hash_sha256(want, buf, 65);
        }
    }
    assert_int_equal(sotto_prefix_tree_root(t, root), SOTTO_OK);
    assert_memory_equal(root, want, HB);
    assert_int_equal(sotto_prefix_tree_prove(t, a, &p), SOTTO_OK);
    assert_int_equal(p.kind, SOTTO_PT_PROOF_PRESENT);
    assert_int_equal(p.depth, 256);
    assert_int_equal(p.n_siblings, 1);
    assert_int_equal(sotto_pt_verify(root, a, va, &p), SOTTO_OK);
    {
        uint8_t enc[SOTTO_PT_PROOF_MAX_BYTES];
        size_t n;
        sotto_pt_proof q;
        assert_int_equal(sotto_pt_proof_encode(&p, enc, sizeof enc, &n), SOTTO_OK);
        assert_int_equal(n, 3 + 32 + 32);
        assert_int_equal(sotto_pt_proof_parse(enc, n, &q), SOTTO_OK);
        assert_int_equal(sotto_pt_verify(root, a, va, &q), SOTTO_OK);
    }
    /* a third index sharing 255 bits cannot exist; one sharing 254 */
    b[31] = 0x02;
    assert_int_equal(sotto_prefix_tree_prove(t, b, &p), SOTTO_OK);
    assert_int_equal(p.kind, SOTTO_PT_PROOF_ABSENT_EMPTY);
    assert_int_equal(p.depth, 255);
    assert_int_equal(sotto_pt_verify(root, b, NULL, &p), SOTTO_OK);
    sotto_prefix_tree_free(t);
}

static void flip(uint8_t *p, size_t bit)
{
    p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
}

/* Every single-bit change of the proof's hashes, other leaf, bitmap and
 * depth, and of the root, is refused. */
static void check_tamper(const uint8_t root[HB], const uint8_t *index, const uint8_t *value,
                         const sotto_pt_proof *good)
{
    sotto_pt_proof *p = malloc(sizeof *p);
    uint8_t r[HB];

    assert_non_null(p);
    for (size_t bit = 0; bit < (size_t)good->n_siblings * HB * 8; bit++) {
        *p = *good;
        flip(p->siblings[0], bit);
        assert_int_equal(sotto_pt_verify(root, index, value, p), SOTTO_ERR_PROOF_INVALID);
    }
    if (good->kind == SOTTO_PT_PROOF_ABSENT_LEAF) {
        for (size_t bit = 0; bit < 512; bit++) {
            *p = *good;
            flip(p->other_index, bit);
            assert_int_equal(sotto_pt_verify(root, index, value, p), SOTTO_ERR_PROOF_INVALID);
        }
    }
    for (size_t bit = 0; bit < 256; bit++) {
        *p = *good;
        flip(p->bitmap, bit);
        assert_int_equal(sotto_pt_verify(root, index, value, p), SOTTO_ERR_PROOF_INVALID);
        memcpy(r, root, HB);
        flip(r, bit);
        assert_int_equal(sotto_pt_verify(r, index, value, good), SOTTO_ERR_PROOF_INVALID);
    }
    *p = *good;
    p->depth++;
    assert_int_equal(sotto_pt_verify(root, index, value, p), SOTTO_ERR_PROOF_INVALID);
    if (good->depth > 0) {
        p->depth = (uint16_t)(good->depth - 1);
        assert_int_equal(sotto_pt_verify(root, index, value, p), SOTTO_ERR_PROOF_INVALID);
    }
    for (uint8_t k = 0; k < 5; k++) {
        if (k == good->kind)
            continue;
        *p = *good;
        p->kind = k;
        assert_int_equal(sotto_pt_verify(root, index, value, p), SOTTO_ERR_PROOF_INVALID);
    }
    free(p);
}

static void roundtrip(const sotto_pt_proof *p)
{
    uint8_t enc[SOTTO_PT_PROOF_MAX_BYTES], enc2[SOTTO_PT_PROOF_MAX_BYTES];
    size_t n, n2;
    sotto_pt_proof *q = malloc(sizeof *q);

    assert_non_null(q);
    assert_int_equal(sotto_pt_proof_encode(p, enc, sizeof enc, &n), SOTTO_OK);
    assert_int_equal(n, 3 + (p->depth + 7) / 8 + p->n_siblings * 32 +
                            (p->kind == SOTTO_PT_PROOF_ABSENT_LEAF ? 64 : 0));
    assert_int_equal(sotto_pt_proof_parse(enc, n, q), SOTTO_OK);
    assert_int_equal(sotto_pt_proof_encode(q, enc2, sizeof enc2, &n2), SOTTO_OK);
    assert_int_equal(n2, n);
    assert_memory_equal(enc, enc2, n);
    assert_int_equal(q->kind, p->kind);
    assert_int_equal(q->depth, p->depth);
    assert_memory_equal(q->siblings, p->siblings, (size_t)p->n_siblings * 32);
    free(q);
}

static void test_random_10000(void **state)
{
    struct entry *e = malloc(N * sizeof *e);
    sotto_prefix_tree *t, *t2;
    sotto_pt_proof *p = malloc(sizeof *p);
    uint8_t root[HB], root2[HB], want[HB], v[32];
    unsigned kinds[4] = {0}, max_sib = 0;
    unsigned long total_sib = 0;

    (void)state;
    assert_non_null(e);
    assert_non_null(p);
    det_bytes(e, N * sizeof *e, 1);
    assert_int_equal(sotto_prefix_tree_new(&t), SOTTO_OK);
    for (size_t i = 0; i < N; i++)
        assert_int_equal(sotto_prefix_tree_set(t, e[i].index, e[i].value), SOTTO_OK);
    assert_int_equal(sotto_prefix_tree_count(t), N);
    assert_int_equal(sotto_prefix_tree_root(t, root), SOTTO_OK);
    ref_hash(e, N, 0, want);
    assert_memory_equal(root, want, HB);

    /* the same set inserted backwards gives the same root */
    assert_int_equal(sotto_prefix_tree_new(&t2), SOTTO_OK);
    for (size_t i = N; i-- > 0;)
        assert_int_equal(sotto_prefix_tree_set(t2, e[i].index, e[i].value), SOTTO_OK);
    assert_int_equal(sotto_prefix_tree_root(t2, root2), SOTTO_OK);
    assert_memory_equal(root2, root, HB);
    sotto_prefix_tree_free(t2);

    for (size_t i = 0; i < N; i++) {
        assert_int_equal(sotto_prefix_tree_get(t, e[i].index, v), SOTTO_OK);
        assert_memory_equal(v, e[i].value, 32);
        assert_int_equal(sotto_prefix_tree_prove(t, e[i].index, p), SOTTO_OK);
        assert_int_equal(p->kind, SOTTO_PT_PROOF_PRESENT);
        assert_int_equal(sotto_pt_verify(root, e[i].index, e[i].value, p), SOTTO_OK);
        assert_int_equal(sotto_pt_verify(root, e[i].index, NULL, p), SOTTO_ERR_PROOF_INVALID);
        assert_int_equal(sotto_pt_verify(root, e[i].index, e[(i + 1) % N].value, p),
                         SOTTO_ERR_PROOF_INVALID);
        /* the proof of one index does not serve for another */
        assert_int_equal(sotto_pt_verify(root, e[(i + 1) % N].index, e[i].value, p),
                         SOTTO_ERR_PROOF_INVALID);
        total_sib += p->n_siblings;
        if (p->n_siblings > max_sib)
            max_sib = p->n_siblings;
        roundtrip(p);
        if (i < 20)
            check_tamper(root, e[i].index, e[i].value, p);
    }
    print_message("10000 entries: %.1f siblings per proof on average, %u at most\n",
                  (double)total_sib / N, max_sib);
    assert_true(max_sib <= 40);

    /* absent indices: random ones, and ones sharing a long prefix with a
     * present index (so the search ends at another index's leaf) */
    for (size_t i = 0; i < N; i++) {
        uint8_t idx[32];
        if (i % 2 == 0) {
            det_bytes(idx, sizeof idx, 1000000 + i);
        } else {
            memcpy(idx, e[i].index, 32);
            idx[31] ^= 0x01;
        }
        assert_int_equal(sotto_prefix_tree_get(t, idx, v), SOTTO_ERR_NOT_FOUND);
        assert_int_equal(sotto_prefix_tree_prove(t, idx, p), SOTTO_OK);
        assert_true(p->kind == SOTTO_PT_PROOF_ABSENT_EMPTY ||
                    p->kind == SOTTO_PT_PROOF_ABSENT_LEAF);
        kinds[p->kind]++;
        assert_int_equal(sotto_pt_verify(root, idx, NULL, p), SOTTO_OK);
        assert_int_equal(sotto_pt_verify(root, idx, e[i].value, p), SOTTO_ERR_PROOF_INVALID);
        roundtrip(p);
        if (i < 40)
            check_tamper(root, idx, NULL, p);
        if (p->kind == SOTTO_PT_PROOF_ABSENT_LEAF) {
            /* the found leaf's own index is not absent */
            assert_int_equal(sotto_pt_verify(root, p->other_index, NULL, p),
                             SOTTO_ERR_PROOF_INVALID);
        }
    }
    assert_true(kinds[SOTTO_PT_PROOF_ABSENT_EMPTY] > 0);
    assert_true(kinds[SOTTO_PT_PROOF_ABSENT_LEAF] >= N / 2);

    /* update: count unchanged, root changes, old proof fails on new root */
    assert_int_equal(sotto_prefix_tree_prove(t, e[7].index, p), SOTTO_OK);
    memset(v, 0x5c, 32);
    assert_int_equal(sotto_prefix_tree_set(t, e[7].index, v), SOTTO_OK);
    assert_int_equal(sotto_prefix_tree_count(t), N);
    assert_int_equal(sotto_prefix_tree_root(t, root2), SOTTO_OK);
    assert_memory_not_equal(root2, root, HB);
    assert_int_equal(sotto_pt_verify(root2, e[7].index, e[7].value, p), SOTTO_ERR_PROOF_INVALID);
    assert_int_equal(sotto_prefix_tree_prove(t, e[7].index, p), SOTTO_OK);
    assert_int_equal(sotto_pt_verify(root2, e[7].index, v, p), SOTTO_OK);
    memcpy(e[7].value, v, 32);
    ref_hash(e, N, 0, want);
    assert_memory_equal(root2, want, HB);

    sotto_prefix_tree_free(t);
    free(p);
    free(e);
}

static void test_encoding(void **state)
{
    sotto_prefix_tree *t;
    sotto_pt_proof *p = malloc(sizeof *p), *q = malloc(sizeof *q);
    struct entry e[64];
    uint8_t enc[SOTTO_PT_PROOF_MAX_BYTES + 1], idx[32];
    size_t n;

    (void)state;
    assert_non_null(p);
    assert_non_null(q);
    det_bytes(e, sizeof e, 2);
    assert_int_equal(sotto_prefix_tree_new(&t), SOTTO_OK);
    for (int i = 0; i < 64; i++)
        assert_int_equal(sotto_prefix_tree_set(t, e[i].index, e[i].value), SOTTO_OK);
    memcpy(idx, e[3].index, 32);
    idx[31] ^= 1;
    assert_int_equal(sotto_prefix_tree_prove(t, idx, p), SOTTO_OK);
    assert_int_equal(p->kind, SOTTO_PT_PROOF_ABSENT_LEAF);
    assert_int_equal(sotto_pt_proof_encode(p, enc, sizeof enc, &n), SOTTO_OK);
    assert_int_equal(sotto_pt_proof_encode(p, enc, n - 1, &n), SOTTO_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(sotto_pt_proof_encode(p, enc, sizeof enc, &n), SOTTO_OK);
    /* every truncation refused, and the output zeroed */
    for (size_t cut = 0; cut < n; cut++) {
        memset(q, 0x33, sizeof *q);
        assert_int_equal(sotto_pt_proof_parse(enc, cut, q), SOTTO_ERR_INVALID_MESSAGE);
        assert_int_equal(q->kind, 0);
        assert_int_equal(q->depth, 0);
    }
    enc[n] = 0;
    assert_int_equal(sotto_pt_proof_parse(enc, n + 1, q), SOTTO_ERR_TRAILING_DATA);
    assert_int_equal(sotto_pt_proof_parse(enc, n, q), SOTTO_OK);
    /* kind 0 and 4; depth 257; a bitmap bit past the depth */
    enc[0] = 0;
    assert_int_equal(sotto_pt_proof_parse(enc, n, q), SOTTO_ERR_INVALID_MESSAGE);
    enc[0] = 4;
    assert_int_equal(sotto_pt_proof_parse(enc, n, q), SOTTO_ERR_INVALID_MESSAGE);
    enc[0] = SOTTO_PT_PROOF_ABSENT_LEAF;
    {
        uint8_t big[4] = {1, 0x01, 0x01, 0};
        assert_int_equal(sotto_pt_proof_parse(big, sizeof big, q), SOTTO_ERR_INVALID_MESSAGE);
    }
    assert_true(p->depth % 8 != 0);
    enc[3 + (p->depth - 1) / 8] |= 1; /* the last bit of the last bitmap byte */
    assert_int_equal(sotto_pt_proof_parse(enc, n, q), SOTTO_ERR_INVALID_MESSAGE);
    /* the deepest sibling empty (non-canonical end) */
    {
        uint8_t e0[3] = {SOTTO_PT_PROOF_ABSENT_EMPTY, 0, 0};
        uint8_t e1[4] = {SOTTO_PT_PROOF_ABSENT_EMPTY, 0, 1, 0x00};
        assert_int_equal(sotto_pt_proof_parse(e0, 3, q), SOTTO_OK);
        assert_int_equal(sotto_pt_proof_parse(e1, 4, q), SOTTO_ERR_INVALID_MESSAGE);
    }
    /* a sibling sent as E (all zero) is refused: E is a clear bit */
    assert_true(p->n_siblings > 0);
    *q = *p;
    memset(q->siblings[0], 0, 32);
    assert_int_equal(sotto_pt_verify(enc, idx, NULL, q), SOTTO_ERR_PROOF_INVALID);
    assert_int_equal(sotto_pt_proof_encode(q, enc, sizeof enc, &n), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_pt_proof_encode(p, enc, sizeof enc, &n), SOTTO_OK);
    memset(enc + 3 + (p->depth + 7) / 8, 0, 32);
    assert_int_equal(sotto_pt_proof_parse(enc, n, q), SOTTO_ERR_INVALID_MESSAGE);
    /* NULLs */
    assert_int_equal(sotto_pt_proof_parse(NULL, 0, q), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_pt_verify(NULL, idx, NULL, p), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_prefix_tree_set(t, NULL, idx), SOTTO_ERR_INVALID_ARGUMENT);
    sotto_prefix_tree_free(t);
    free(p);
    free(q);
}

/* A hostile server's root, built by hand, in which index x's path ends in
 * the leaf of an index z that does not belong there (z's first bit is 1,
 * x's is 0): the hashes add up, the form check must refuse it. */
static void test_misplaced_leaf(void **state)
{
    sotto_pt_proof *p = calloc(1, sizeof *p);
    uint8_t x[32] = {0x00, 1}, z[32] = {0x80, 2}, v[32] = {3}, s[HB], lz[HB], root[HB];

    (void)state;
    assert_non_null(p);
    memset(s, 0x44, HB);
    assert_int_equal(sotto_pt_leaf_hash(lz, z, v), SOTTO_OK);
    assert_int_equal(sotto_pt_node_hash(root, lz, s), SOTTO_OK);
    p->kind = SOTTO_PT_PROOF_ABSENT_LEAF;
    p->depth = 1;
    p->bitmap[0] = 0x80;
    p->n_siblings = 1;
    memcpy(p->siblings[0], s, HB);
    memcpy(p->other_index, z, 32);
    memcpy(p->other_value, v, 32);
    assert_int_equal(sotto_pt_verify(root, x, NULL, p), SOTTO_ERR_PROOF_INVALID);
    /* the same hashes with z where it belongs (first bit 0) verify */
    z[0] = 0x00;
    assert_int_equal(sotto_pt_leaf_hash(lz, z, v), SOTTO_OK);
    assert_int_equal(sotto_pt_node_hash(root, lz, s), SOTTO_OK);
    memcpy(p->other_index, z, 32);
    assert_int_equal(sotto_pt_verify(root, x, NULL, p), SOTTO_OK);
    /* and the searched index itself is never "another" leaf */
    memcpy(p->other_index, x, 32);
    assert_int_equal(sotto_pt_leaf_hash(lz, x, v), SOTTO_OK);
    assert_int_equal(sotto_pt_node_hash(root, lz, s), SOTTO_OK);
    assert_int_equal(sotto_pt_verify(root, x, NULL, p), SOTTO_ERR_PROOF_INVALID);
    free(p);
    assert_string_equal(sotto_strerror(SOTTO_ERR_PROOF_INVALID),
                        "transparency proof does not verify");
    assert_string_equal(sotto_strerror(SOTTO_ERR_COMMITMENT_INVALID),
                        "commitment opening does not match");
}

static void test_commitment(void **state)
{
    uint8_t c[32], o[32], want[32], c2[32], o2[32];
    const uint8_t val[] = {1, 2, 3, 4, 5};
    crypto_auth_hmacsha256_state st;
    const uint8_t head[] = "SOTTO-KT-COMMIT-V1";
    const uint8_t tail[] = {5, 'a', 'l', 'i', 'c', 'e', 0, 5, 1, 2, 3, 4, 5};

    (void)state;
    assert_int_equal(sotto_kt_commit(c, o, "alice", val, sizeof val), SOTTO_OK);
    /* independent: libsodium's HMAC over the encoding written by hand */
    crypto_auth_hmacsha256_init(&st, o, 32);
    crypto_auth_hmacsha256_update(&st, head, sizeof head); /* with its 0x00 */
    crypto_auth_hmacsha256_update(&st, tail, sizeof tail);
    crypto_auth_hmacsha256_final(&st, want);
    assert_memory_equal(c, want, 32);
    assert_int_equal(sotto_kt_verify_commitment(c, o, "alice", val, sizeof val), SOTTO_OK);
    assert_int_equal(sotto_kt_verify_commitment(c, o, "alicf", val, sizeof val),
                     SOTTO_ERR_COMMITMENT_INVALID);
    assert_int_equal(sotto_kt_verify_commitment(c, o, "alice", val, sizeof val - 1),
                     SOTTO_ERR_COMMITMENT_INVALID);
    for (size_t bit = 0; bit < 256; bit++) {
        flip(o, bit);
        assert_int_equal(sotto_kt_verify_commitment(c, o, "alice", val, sizeof val),
                         SOTTO_ERR_COMMITMENT_INVALID);
        flip(o, bit);
        flip(c, bit);
        assert_int_equal(sotto_kt_verify_commitment(c, o, "alice", val, sizeof val),
                         SOTTO_ERR_COMMITMENT_INVALID);
        flip(c, bit);
    }
    /* a fresh opening each time: same value, another commitment */
    assert_int_equal(sotto_kt_commit(c2, o2, "alice", val, sizeof val), SOTTO_OK);
    assert_memory_not_equal(o, o2, 32);
    assert_memory_not_equal(c, c2, 32);
    /* the length prefixes separate ("ab", "c...") from ("a", "bc...") */
    assert_int_equal(sotto_kt_verify_commitment(c, o, "alic", (const uint8_t *)"e", 1),
                     SOTTO_ERR_COMMITMENT_INVALID);
    /* bounds */
    assert_int_equal(sotto_kt_commit(c, o, "", val, 1), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_kt_commit(c, o, "alice", NULL, 1), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_kt_commit(c, o, "alice", val, 65536), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_kt_commit(c, o, "alice", NULL, 0), SOTTO_OK);
    assert_int_equal(sotto_kt_verify_commitment(c, o, "alice", NULL, 0), SOTTO_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_trees), cmocka_unit_test(test_random_10000),
        cmocka_unit_test(test_encoding),    cmocka_unit_test(test_misplaced_leaf),
        cmocka_unit_test(test_commitment),
    };
    if (sotto_init() != SOTTO_OK)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
