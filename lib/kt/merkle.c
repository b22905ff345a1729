/*
 * lib/kt/merkle.c -- RFC 9162 Merkle tree hashing, proofs and their
 * verification (sotto/merkle.h). The verifiers follow RFC 9162 2.1.3.2 and
 * 2.1.4.2 step by step; the generators are the recursive definitions of
 * 2.1.3.1 (PATH) and 2.1.4.1 (SUBPROOF).
 */
#include "sotto/merkle.h"

#include <string.h>

#include <sodium.h>

#define HB SOTTO_MERKLE_HASH_BYTES

int sotto_merkle_leaf_hash(uint8_t out[HB], const uint8_t *data, size_t len)
{
    static const uint8_t prefix = 0x00;
    crypto_hash_sha256_state st;

    if (out == NULL || (data == NULL && len != 0))
        return SOTTO_ERR_INVALID_ARGUMENT;
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, &prefix, 1);
    if (len != 0)
        crypto_hash_sha256_update(&st, data, len);
    crypto_hash_sha256_final(&st, out);
    return SOTTO_OK;
}

int sotto_merkle_node_hash(uint8_t out[HB], const uint8_t left[HB], const uint8_t right[HB])
{
    uint8_t buf[1 + 2 * HB];

    if (out == NULL || left == NULL || right == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    buf[0] = 0x01;
    memcpy(buf + 1, left, HB);
    memcpy(buf + 1 + HB, right, HB);
    crypto_hash_sha256(out, buf, sizeof buf);
    return SOTTO_OK;
}

/* The node hash with arguments known to be valid (cannot fail). */
static void node(uint8_t out[HB], const uint8_t left[HB], const uint8_t right[HB])
{
    uint8_t buf[1 + 2 * HB];

    buf[0] = 0x01;
    memcpy(buf + 1, left, HB);
    memcpy(buf + 1 + HB, right, HB);
    crypto_hash_sha256(out, buf, sizeof buf);
}

static int hash_eq(const uint8_t a[HB], const uint8_t b[HB])
{
    return sodium_memcmp(a, b, HB) == 0;
}

int sotto_merkle_verify_inclusion(uint64_t index, uint64_t size, const uint8_t leaf_hash[HB],
                                  const uint8_t (*path)[HB], size_t path_len,
                                  const uint8_t root[HB])
{
    uint64_t fn, sn;
    uint8_t r[HB];

    if (leaf_hash == NULL || root == NULL || (path == NULL && path_len != 0))
        return SOTTO_ERR_INVALID_ARGUMENT;
    if (size == 0 || size > SOTTO_MERKLE_MAX_SIZE || path_len > SOTTO_MERKLE_MAX_PROOF)
        return SOTTO_ERR_PROOF_INVALID;
    /* 2.1.3.2 step 1 */
    if (index >= size)
        return SOTTO_ERR_PROOF_INVALID;
    /* steps 2, 3 */
    fn = index;
    sn = size - 1;
    memcpy(r, leaf_hash, HB);
    /* step 4 */
    for (size_t i = 0; i < path_len; i++) {
        if (sn == 0)
            return SOTTO_ERR_PROOF_INVALID;
        if ((fn & 1) != 0 || fn == sn) {
            node(r, path[i], r);
            if ((fn & 1) == 0) {
                while ((fn & 1) == 0 && fn != 0) {
                    fn >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            node(r, r, path[i]);
        }
        fn >>= 1;
        sn >>= 1;
    }
    /* step 5 */
    if (sn != 0 || !hash_eq(r, root))
        return SOTTO_ERR_PROOF_INVALID;
    return SOTTO_OK;
}

int sotto_merkle_verify_consistency(uint64_t size1, uint64_t size2, const uint8_t root1[HB],
                                    const uint8_t root2[HB], const uint8_t (*path)[HB],
                                    size_t path_len)
{
    uint64_t fn, sn;
    uint8_t fr[HB], sr[HB];
    size_t i;

    if (root1 == NULL || root2 == NULL || (path == NULL && path_len != 0))
        return SOTTO_ERR_INVALID_ARGUMENT;
    if (size1 == 0 || size1 > size2 || size2 > SOTTO_MERKLE_MAX_SIZE ||
        path_len > SOTTO_MERKLE_MAX_PROOF)
        return SOTTO_ERR_PROOF_INVALID;
    if (size1 == size2) {
        if (path_len != 0 || !hash_eq(root1, root2))
            return SOTTO_ERR_PROOF_INVALID;
        return SOTTO_OK;
    }
    /* 2.1.4.2 step 1 */
    if (path_len == 0)
        return SOTTO_ERR_PROOF_INVALID;
    /* steps 2 and 5: when size1 is a power of two, the path starts with
     * root1 (prepended, not sent); else with its own first hash */
    if ((size1 & (size1 - 1)) == 0) {
        memcpy(fr, root1, HB);
        i = 0;
    } else {
        memcpy(fr, path[0], HB);
        i = 1;
    }
    memcpy(sr, fr, HB);
    /* steps 3, 4 */
    fn = size1 - 1;
    sn = size2 - 1;
    while ((fn & 1) != 0) {
        fn >>= 1;
        sn >>= 1;
    }
    /* step 6 */
    for (; i < path_len; i++) {
        if (sn == 0)
            return SOTTO_ERR_PROOF_INVALID;
        if ((fn & 1) != 0 || fn == sn) {
            node(fr, path[i], fr);
            node(sr, path[i], sr);
            if ((fn & 1) == 0) {
                while ((fn & 1) == 0 && fn != 0) {
                    fn >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            node(sr, sr, path[i]);
        }
        fn >>= 1;
        sn >>= 1;
    }
    /* step 7 */
    if (sn != 0 || !hash_eq(fr, root1) || !hash_eq(sr, root2))
        return SOTTO_ERR_PROOF_INVALID;
    return SOTTO_OK;
}

/* Largest power of two strictly below n (n >= 2). */
static uint64_t split(uint64_t n)
{
    return UINT64_C(1) << (63 - __builtin_clzll(n - 1));
}

/* MTH(leaves[0..n)), n >= 1. */
static void mth(const uint8_t (*leaves)[HB], uint64_t n, uint8_t out[HB])
{
    uint8_t l[HB], r[HB];
    uint64_t k;

    if (n == 1) {
        memcpy(out, leaves[0], HB);
        return;
    }
    k = split(n);
    mth(leaves, k, l);
    mth(leaves + k, n - k, r);
    node(out, l, r);
}

int sotto_merkle_root(const uint8_t (*leaves)[HB], uint64_t n, uint8_t root[HB])
{
    if (root == NULL || (leaves == NULL && n != 0) || n > SOTTO_MERKLE_MAX_SIZE)
        return SOTTO_ERR_INVALID_ARGUMENT;
    if (n == 0)
        crypto_hash_sha256(root, NULL, 0);
    else
        mth(leaves, n, root);
    return SOTTO_OK;
}

/* Appends MTH(leaves[0..n)) to the path; at most 64 entries (a tree of at
 * most 2^63 leaves has at most 63 levels, and SUBPROOF adds one). */
static int append(uint8_t (*path)[HB], size_t *len, const uint8_t (*leaves)[HB], uint64_t n)
{
    if (*len >= SOTTO_MERKLE_MAX_PROOF)
        return SOTTO_ERR_INTERNAL;
    mth(leaves, n, path[*len]);
    (*len)++;
    return SOTTO_OK;
}

/* PATH(m, D[0..n)) of RFC 9162 2.1.3.1, m < n. */
static int path_rec(uint64_t m, const uint8_t (*leaves)[HB], uint64_t n, uint8_t (*path)[HB],
                    size_t *len)
{
    uint64_t k;
    int rc;

    if (n == 1)
        return SOTTO_OK;
    k = split(n);
    if (m < k) {
        rc = path_rec(m, leaves, k, path, len);
        return rc != SOTTO_OK ? rc : append(path, len, leaves + k, n - k);
    }
    rc = path_rec(m - k, leaves + k, n - k, path, len);
    return rc != SOTTO_OK ? rc : append(path, len, leaves, k);
}

int sotto_merkle_prove_inclusion(const uint8_t (*leaves)[HB], uint64_t n, uint64_t index,
                                 uint8_t (*path)[HB], size_t *path_len)
{
    int rc;

    if (path_len != NULL)
        *path_len = 0;
    if (leaves == NULL || path == NULL || path_len == NULL || n == 0 || n > SOTTO_MERKLE_MAX_SIZE ||
        index >= n)
        return SOTTO_ERR_INVALID_ARGUMENT;
    rc = path_rec(index, leaves, n, path, path_len);
    if (rc != SOTTO_OK)
        *path_len = 0;
    return rc;
}

/* SUBPROOF(m, D[0..n), b) of RFC 9162 2.1.4.1, 1 <= m <= n. */
static int subproof(uint64_t m, const uint8_t (*leaves)[HB], uint64_t n, int b, uint8_t (*path)[HB],
                    size_t *len)
{
    uint64_t k;
    int rc;

    if (m == n)
        return b ? SOTTO_OK : append(path, len, leaves, n);
    k = split(n);
    if (m <= k) {
        rc = subproof(m, leaves, k, b, path, len);
        return rc != SOTTO_OK ? rc : append(path, len, leaves + k, n - k);
    }
    rc = subproof(m - k, leaves + k, n - k, 0, path, len);
    return rc != SOTTO_OK ? rc : append(path, len, leaves, k);
}

int sotto_merkle_prove_consistency(const uint8_t (*leaves)[HB], uint64_t n, uint64_t size1,
                                   uint8_t (*path)[HB], size_t *path_len)
{
    int rc;

    if (path_len != NULL)
        *path_len = 0;
    if (leaves == NULL || path == NULL || path_len == NULL || size1 == 0 || size1 > n ||
        n > SOTTO_MERKLE_MAX_SIZE)
        return SOTTO_ERR_INVALID_ARGUMENT;
    rc = subproof(size1, leaves, n, 1, path, path_len);
    if (rc != SOTTO_OK)
        *path_len = 0;
    return rc;
}

int sotto_merkle_proof_encode(const uint8_t (*path)[HB], size_t path_len, uint8_t *out, size_t cap,
                              size_t *out_len)
{
    size_t need;

    if (out_len != NULL)
        *out_len = 0;
    if (out == NULL || out_len == NULL || (path == NULL && path_len != 0) ||
        path_len > SOTTO_MERKLE_MAX_PROOF)
        return SOTTO_ERR_INVALID_ARGUMENT;
    need = 1 + path_len * HB;
    if (cap < need)
        return SOTTO_ERR_BUFFER_TOO_SMALL;
    out[0] = (uint8_t)path_len;
    if (path_len != 0)
        memcpy(out + 1, path, path_len * HB);
    *out_len = need;
    return SOTTO_OK;
}

int sotto_merkle_proof_parse(const uint8_t *in, size_t len, uint8_t (*path)[HB], size_t *path_len)
{
    size_t count;

    if (path_len != NULL)
        *path_len = 0;
    if (in == NULL || path == NULL || path_len == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    if (len < 1)
        return SOTTO_ERR_INVALID_MESSAGE;
    count = in[0];
    if (count > SOTTO_MERKLE_MAX_PROOF || len - 1 < count * HB)
        return SOTTO_ERR_INVALID_MESSAGE;
    if (len - 1 > count * HB)
        return SOTTO_ERR_TRAILING_DATA;
    if (count != 0)
        memcpy(path, in + 1, count * HB);
    *path_len = count;
    return SOTTO_OK;
}
