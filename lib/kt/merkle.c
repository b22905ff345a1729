/*
 * lib/kt/merkle.c -- RFC 9162 Merkle tree hashing, proofs and their
 * verification (sotto/merkle.h). The verifiers follow RFC 9162 2.1.3.2 and
 * 2.1.4.2 step by step; the generators are the recursive definitions of
 * 2.1.3.1 (PATH) and 2.1.4.1 (SUBPROOF), over a source of subtree hashes:
 * an array of leaves (MTH recomputed, O(n)) or the incremental log
 * (perfect subtrees cached, O(log n) per MTH).
 */
#include "sotto/merkle.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "kt/kt_internal.h"

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
    sotto_kt_sha256(out, buf, sizeof buf);
    return SOTTO_OK;
}

/* The node hash with arguments known to be valid (cannot fail). */
static void node(uint8_t out[HB], const uint8_t left[HB], const uint8_t right[HB])
{
    uint8_t buf[1 + 2 * HB];

    buf[0] = 0x01;
    memcpy(buf + 1, left, HB);
    memcpy(buf + 1 + HB, right, HB);
    sotto_kt_sha256(out, buf, sizeof buf);
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

/* Where the generators get MTH of a range [start, start + n), n >= 1:
 * the caller's leaf array, or the log's cached subtrees. */
struct src {
    const uint8_t (*leaves)[HB];
    const sotto_merkle_log *log;
};

static void log_mth(const sotto_merkle_log *log, uint64_t start, uint64_t n, uint8_t out[HB]);

static void src_mth(const struct src *s, uint64_t start, uint64_t n, uint8_t out[HB])
{
    if (s->log != NULL)
        log_mth(s->log, start, n, out);
    else
        mth(s->leaves + start, n, out);
}

/* Appends MTH([start, start + n)) to the path; at most 64 entries (a tree
 * of at most 2^63 leaves has at most 63 levels, and SUBPROOF adds one). */
static int append(uint8_t (*path)[HB], size_t *len, const struct src *s, uint64_t start, uint64_t n)
{
    if (*len >= SOTTO_MERKLE_MAX_PROOF)
        return SOTTO_ERR_INTERNAL;
    src_mth(s, start, n, path[*len]);
    (*len)++;
    return SOTTO_OK;
}

/* PATH(m, D[start..start + n)) of RFC 9162 2.1.3.1, m < n. */
static int path_rec(uint64_t m, const struct src *s, uint64_t start, uint64_t n,
                    uint8_t (*path)[HB], size_t *len)
{
    uint64_t k;
    int rc;

    if (n == 1)
        return SOTTO_OK;
    k = split(n);
    if (m < k) {
        rc = path_rec(m, s, start, k, path, len);
        return rc != SOTTO_OK ? rc : append(path, len, s, start + k, n - k);
    }
    rc = path_rec(m - k, s, start + k, n - k, path, len);
    return rc != SOTTO_OK ? rc : append(path, len, s, start, k);
}

int sotto_merkle_prove_inclusion(const uint8_t (*leaves)[HB], uint64_t n, uint64_t index,
                                 uint8_t (*path)[HB], size_t *path_len)
{
    struct src s = {leaves, NULL};
    int rc;

    if (path_len != NULL)
        *path_len = 0;
    if (leaves == NULL || path == NULL || path_len == NULL || n == 0 || n > SOTTO_MERKLE_MAX_SIZE ||
        index >= n)
        return SOTTO_ERR_INVALID_ARGUMENT;
    rc = path_rec(index, &s, 0, n, path, path_len);
    if (rc != SOTTO_OK)
        *path_len = 0;
    return rc;
}

/* SUBPROOF(m, D[start..start + n), b) of RFC 9162 2.1.4.1, 1 <= m <= n. */
static int subproof(uint64_t m, const struct src *s, uint64_t start, uint64_t n, int b,
                    uint8_t (*path)[HB], size_t *len)
{
    uint64_t k;
    int rc;

    if (m == n)
        return b ? SOTTO_OK : append(path, len, s, start, n);
    k = split(n);
    if (m <= k) {
        rc = subproof(m, s, start, k, b, path, len);
        return rc != SOTTO_OK ? rc : append(path, len, s, start + k, n - k);
    }
    rc = subproof(m - k, s, start + k, n - k, 0, path, len);
    return rc != SOTTO_OK ? rc : append(path, len, s, start, k);
}

int sotto_merkle_prove_consistency(const uint8_t (*leaves)[HB], uint64_t n, uint64_t size1,
                                   uint8_t (*path)[HB], size_t *path_len)
{
    struct src s = {leaves, NULL};
    int rc;

    if (path_len != NULL)
        *path_len = 0;
    if (leaves == NULL || path == NULL || path_len == NULL || size1 == 0 || size1 > n ||
        n > SOTTO_MERKLE_MAX_SIZE)
        return SOTTO_ERR_INVALID_ARGUMENT;
    rc = subproof(size1, &s, 0, n, 1, path, path_len);
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

/* ------------------------------------------------------------------------ */
/* The incremental log                                                      */
/* ------------------------------------------------------------------------ */

/* Levels 0..63: level k holds the hashes of the n >> k complete subtrees of
 * 2^k leaves aligned at multiples of 2^k (a tree of at most 2^63 leaves
 * has no complete subtree above level 63). */
#define LOG_LEVELS 64
#define LOG_MIN_CAP 16

struct sotto_merkle_log {
    uint64_t n;
    uint8_t (*level[LOG_LEVELS])[HB];
    uint64_t cap[LOG_LEVELS]; /* hashes allocated at each level */
};

int sotto_merkle_log_new(sotto_merkle_log **out)
{
    if (out == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    *out = calloc(1, sizeof **out);
    return *out == NULL ? SOTTO_ERR_NOMEM : SOTTO_OK;
}

void sotto_merkle_log_free(sotto_merkle_log *log)
{
    if (log == NULL)
        return;
    for (int k = 0; k < LOG_LEVELS; k++)
        free(log->level[k]);
    free(log);
}

uint64_t sotto_merkle_log_size(const sotto_merkle_log *log)
{
    return log == NULL ? 0 : log->n;
}

size_t sotto_merkle_log_memory(const sotto_merkle_log *log)
{
    size_t m;

    if (log == NULL)
        return 0;
    m = sizeof *log;
    for (int k = 0; k < LOG_LEVELS; k++)
        m += (size_t)log->cap[k] * HB;
    return m;
}

/* Makes room for `count` hashes at level k (doubling). On failure the level
 * keeps its old array and contents. */
static int log_reserve(sotto_merkle_log *log, int k, uint64_t count)
{
    uint64_t cap = log->cap[k];
    void *p;

    if (count <= cap)
        return SOTTO_OK;
    cap = cap == 0 ? LOG_MIN_CAP : cap;
    while (cap < count) {
        if (cap > SIZE_MAX / HB / 2)
            return SOTTO_ERR_NOMEM;
        cap *= 2;
    }
    p = realloc(log->level[k], (size_t)cap * HB);
    if (p == NULL)
        return SOTTO_ERR_NOMEM;
    log->level[k] = p;
    log->cap[k] = cap;
    return SOTTO_OK;
}

int sotto_merkle_log_append(sotto_merkle_log *log, const uint8_t leaf_hash[HB])
{
    uint64_t m;
    int k, rc;

    if (log == NULL || leaf_hash == NULL || log->n >= SOTTO_MERKLE_MAX_SIZE)
        return SOTTO_ERR_INVALID_ARGUMENT;
    m = log->n + 1;
    /* room first, at every level the new leaf completes a subtree of, so a
     * failure changes nothing the log shows */
    for (k = 0; k < LOG_LEVELS && (m & ((UINT64_C(1) << k) - 1)) == 0; k++) {
        rc = log_reserve(log, k, m >> k);
        if (rc != SOTTO_OK)
            return rc;
    }
    memcpy(log->level[0][log->n], leaf_hash, HB);
    for (k = 1; k < LOG_LEVELS && (m & ((UINT64_C(1) << k) - 1)) == 0; k++) {
        uint64_t i = (m >> k) - 1;
        node(log->level[k][i], log->level[k - 1][2 * i], log->level[k - 1][2 * i + 1]);
    }
    log->n = m;
    return SOTTO_OK;
}

/* MTH([start, start + n)), 1 <= n, start + n <= log->n, start a multiple of
 * the largest power of two <= n (true of every range the RFC recursion
 * visits): a perfect range is one cached hash, else split as MTH does. */
static void log_mth(const sotto_merkle_log *log, uint64_t start, uint64_t n, uint8_t out[HB])
{
    uint8_t l[HB], r[HB];
    uint64_t k;

    if ((n & (n - 1)) == 0) {
        int lv = __builtin_ctzll(n);
        memcpy(out, log->level[lv][start >> lv], HB);
        return;
    }
    k = split(n);
    log_mth(log, start, k, l);
    log_mth(log, start + k, n - k, r);
    node(out, l, r);
}

int sotto_merkle_log_root(const sotto_merkle_log *log, uint64_t size, uint8_t root[HB])
{
    if (log == NULL || root == NULL || size > log->n)
        return SOTTO_ERR_INVALID_ARGUMENT;
    if (size == 0)
        crypto_hash_sha256(root, NULL, 0);
    else
        log_mth(log, 0, size, root);
    return SOTTO_OK;
}

int sotto_merkle_log_prove_inclusion(const sotto_merkle_log *log, uint64_t index, uint64_t size,
                                     uint8_t (*path)[HB], size_t *path_len)
{
    struct src s = {NULL, log};
    int rc;

    if (path_len != NULL)
        *path_len = 0;
    if (log == NULL || path == NULL || path_len == NULL || size == 0 || size > log->n ||
        index >= size)
        return SOTTO_ERR_INVALID_ARGUMENT;
    rc = path_rec(index, &s, 0, size, path, path_len);
    if (rc != SOTTO_OK)
        *path_len = 0;
    return rc;
}

int sotto_merkle_log_prove_consistency(const sotto_merkle_log *log, uint64_t size1, uint64_t size2,
                                       uint8_t (*path)[HB], size_t *path_len)
{
    struct src s = {NULL, log};
    int rc;

    if (path_len != NULL)
        *path_len = 0;
    if (log == NULL || path == NULL || path_len == NULL || size1 == 0 || size1 > size2 ||
        size2 > log->n)
        return SOTTO_ERR_INVALID_ARGUMENT;
    rc = subproof(size1, &s, 0, size2, 1, path, path_len);
    if (rc != SOTTO_OK)
        *path_len = 0;
    return rc;
}
