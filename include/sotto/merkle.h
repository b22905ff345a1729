/*
 * sotto/merkle.h -- the append-only log of key transparency (issue 9): a
 * Merkle tree hashed as RFC 9162 section 2.1 says, its inclusion and
 * consistency proofs (2.1.3, 2.1.4), a proof generator for the server and
 * the auditor, and the wire encoding of a proof.
 *
 * Spec: docs/protocol.md "Key transparency: log and prefix tree".
 *
 * Hashing (RFC 9162 2.1.1, SHA-256):
 *   MTH({})        = SHA-256()                      (the empty tree)
 *   leaf hash      = SHA-256(0x00 || leaf data)
 *   node hash      = SHA-256(0x01 || left || right)
 *   the left subtree of a tree of n > 1 leaves holds the largest power of
 *   two below n.
 *
 * Bounds: tree sizes 1..SOTTO_MERKLE_MAX_SIZE (2^63); a proof holds at most
 * SOTTO_MERKLE_MAX_PROOF (64) hashes. Proof paths are arrays of 32-byte
 * hashes, ordered as RFC 9162 orders them (from the leaf towards the root).
 *
 * Errors: SOTTO_ERR_INVALID_ARGUMENT for a NULL pointer the caller passed
 * (or, for the generators, an index or size out of range: the caller's own
 * data); SOTTO_ERR_PROOF_INVALID for every proof that does not prove the
 * claim (wrong hashes, index >= size, sizes out of order or out of range,
 * too many or too few hashes); SOTTO_ERR_INVALID_MESSAGE /
 * SOTTO_ERR_TRAILING_DATA for an encoding that does not parse.
 *
 * Nothing here is secret; hashes are compared with sodium_memcmp anyway.
 * Nothing allocates.
 */
#ifndef SOTTO_MERKLE_H
#define SOTTO_MERKLE_H

#include "sotto/common.h"
#include "sotto/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SOTTO_MERKLE_HASH_BYTES 32
#define SOTTO_MERKLE_MAX_PROOF 64
#define SOTTO_MERKLE_MAX_SIZE (UINT64_C(1) << 63)
/* Largest encoding of a proof: count byte + 64 hashes. */
#define SOTTO_MERKLE_PROOF_MAX_BYTES (1 + SOTTO_MERKLE_MAX_PROOF * SOTTO_MERKLE_HASH_BYTES)

/* out = SHA-256(0x00 || data). data may be NULL when len is 0.
 * Returns SOTTO_OK or SOTTO_ERR_INVALID_ARGUMENT. */
SOTTO_API SOTTO_WUR int sotto_merkle_leaf_hash(uint8_t out[SOTTO_MERKLE_HASH_BYTES],
                                               const uint8_t *data, size_t len);

/* out = SHA-256(0x01 || left || right); out may alias left or right.
 * Returns SOTTO_OK or SOTTO_ERR_INVALID_ARGUMENT. */
SOTTO_API SOTTO_WUR int sotto_merkle_node_hash(uint8_t out[SOTTO_MERKLE_HASH_BYTES],
                                               const uint8_t left[SOTTO_MERKLE_HASH_BYTES],
                                               const uint8_t right[SOTTO_MERKLE_HASH_BYTES]);

/*
 * Verifies that `leaf_hash` is leaf number `index` (from 0) of the tree of
 * `size` leaves whose root is `root`, with the audit path `path` of
 * `path_len` hashes (RFC 9162 2.1.3.2). path may be NULL when path_len is 0
 * (a tree of one leaf). Returns SOTTO_OK, SOTTO_ERR_PROOF_INVALID (also for
 * size 0 or > 2^63, index >= size, path_len > 64) or
 * SOTTO_ERR_INVALID_ARGUMENT (NULL hash).
 */
SOTTO_API SOTTO_WUR int
sotto_merkle_verify_inclusion(uint64_t index, uint64_t size,
                              const uint8_t leaf_hash[SOTTO_MERKLE_HASH_BYTES],
                              const uint8_t (*path)[SOTTO_MERKLE_HASH_BYTES], size_t path_len,
                              const uint8_t root[SOTTO_MERKLE_HASH_BYTES]);

/*
 * Verifies that the tree of `size1` leaves with root `root1` is a prefix of
 * the tree of `size2` leaves with root `root2` (RFC 9162 2.1.4.2).
 * size1 == size2 needs an empty path and equal roots. size1 == 0 is
 * refused (a proof from the empty tree proves nothing; clients start from a
 * tree head of at least one entry). Returns SOTTO_OK,
 * SOTTO_ERR_PROOF_INVALID (also size1 == 0, size1 > size2, size2 > 2^63,
 * path_len > 64) or SOTTO_ERR_INVALID_ARGUMENT (NULL hash; path may be NULL
 * only when path_len is 0).
 */
SOTTO_API SOTTO_WUR int
sotto_merkle_verify_consistency(uint64_t size1, uint64_t size2,
                                const uint8_t root1[SOTTO_MERKLE_HASH_BYTES],
                                const uint8_t root2[SOTTO_MERKLE_HASH_BYTES],
                                const uint8_t (*path)[SOTTO_MERKLE_HASH_BYTES], size_t path_len);

/*
 * Generators over an in-memory array of `n` leaf hashes (the server's and
 * the auditor's copy of the log). Each is O(n) hashes and O(log n) stack,
 * no allocation; fine for tests and for an auditor's catch-up, not for a
 * server answering every request on a large log (that will want cached
 * subtree hashes).
 *
 * sotto_merkle_root: root of leaves[0..n); n may be 0 (then SHA-256(""))
 * and leaves NULL when n is 0. n > 2^63 gives SOTTO_ERR_INVALID_ARGUMENT.
 */
SOTTO_API SOTTO_WUR int sotto_merkle_root(const uint8_t (*leaves)[SOTTO_MERKLE_HASH_BYTES],
                                          uint64_t n, uint8_t root[SOTTO_MERKLE_HASH_BYTES]);

/* Inclusion proof of leaf `index` in the tree of leaves[0..n) (RFC 9162
 * 2.1.3.1), written to path[0..*path_len); path must hold
 * SOTTO_MERKLE_MAX_PROOF hashes. index >= n, n == 0 or n > 2^63 give
 * SOTTO_ERR_INVALID_ARGUMENT. */
SOTTO_API SOTTO_WUR int
sotto_merkle_prove_inclusion(const uint8_t (*leaves)[SOTTO_MERKLE_HASH_BYTES], uint64_t n,
                             uint64_t index, uint8_t (*path)[SOTTO_MERKLE_HASH_BYTES],
                             size_t *path_len);

/* Consistency proof from the tree of the first `size1` leaves to the tree
 * of all `n` (RFC 9162 2.1.4.1), written to path[0..*path_len); path must
 * hold SOTTO_MERKLE_MAX_PROOF hashes. Needs 1 <= size1 <= n <= 2^63, else
 * SOTTO_ERR_INVALID_ARGUMENT. size1 == n gives an empty path. */
SOTTO_API SOTTO_WUR int
sotto_merkle_prove_consistency(const uint8_t (*leaves)[SOTTO_MERKLE_HASH_BYTES], uint64_t n,
                               uint64_t size1, uint8_t (*path)[SOTTO_MERKLE_HASH_BYTES],
                               size_t *path_len);

/*
 * Wire encoding of a path (both kinds): count (1 byte, 0..64) || count x 32
 * bytes, nothing after. The sizes and index travel in the signed tree head
 * and the request, not here.
 *
 * sotto_merkle_proof_encode writes 1 + 32 * path_len bytes to out (cap
 * bytes available) and sets *out_len. Returns SOTTO_OK,
 * SOTTO_ERR_BUFFER_TOO_SMALL or SOTTO_ERR_INVALID_ARGUMENT (path_len > 64).
 *
 * sotto_merkle_proof_parse reads exactly `len` bytes into path (room for 64
 * hashes) and *path_len. Returns SOTTO_OK, SOTTO_ERR_INVALID_MESSAGE (count
 * > 64 or truncated), SOTTO_ERR_TRAILING_DATA or
 * SOTTO_ERR_INVALID_ARGUMENT; on error *path_len is 0.
 */
SOTTO_API SOTTO_WUR int sotto_merkle_proof_encode(const uint8_t (*path)[SOTTO_MERKLE_HASH_BYTES],
                                                  size_t path_len, uint8_t *out, size_t cap,
                                                  size_t *out_len);
SOTTO_API SOTTO_WUR int sotto_merkle_proof_parse(const uint8_t *in, size_t len,
                                                 uint8_t (*path)[SOTTO_MERKLE_HASH_BYTES],
                                                 size_t *path_len);

/* ------------------------------------------------------------------------ */
/* The incremental log (server and auditor)                                 */
/* ------------------------------------------------------------------------ */

/*
 * An append-only log of n leaf hashes that also keeps the hash of every
 * complete aligned subtree: level k holds the hashes of the subtrees of 2^k
 * leaves starting at a multiple of 2^k (level 0 = the leaf hashes). So the
 * root of any prefix size <= n and any inclusion or consistency proof costs
 * O(log n) hashes (O(log^2 n) in the worst case for proofs) instead of
 * O(n), and the results are byte-identical to sotto_merkle_root /
 * sotto_merkle_prove_inclusion / sotto_merkle_prove_consistency over the
 * same leaves. Memory: about 2 x 32 bytes per leaf (sum over the levels),
 * in arrays grown by doubling. Not thread-safe; one writer, and readers
 * only between writes. Unlike the functions above, this one allocates.
 */
typedef struct sotto_merkle_log sotto_merkle_log;

/* Creates an empty log in *out (free with sotto_merkle_log_free). Returns
 * SOTTO_OK, SOTTO_ERR_NOMEM or SOTTO_ERR_INVALID_ARGUMENT. */
SOTTO_API SOTTO_WUR int sotto_merkle_log_new(sotto_merkle_log **out);

/* Frees the log; NULL is fine. */
SOTTO_API void sotto_merkle_log_free(sotto_merkle_log *log);

/* Appends one leaf hash (SHA-256(0x00 || leaf data), e.g. from
 * sotto_merkle_leaf_hash or sotto_kt_leaf_hash); completes the cached
 * subtrees it closes (amortized one node hash per append). Returns
 * SOTTO_OK, SOTTO_ERR_NOMEM (log unchanged), SOTTO_ERR_INVALID_ARGUMENT
 * (NULL, or the log already holds 2^63 leaves). */
SOTTO_API SOTTO_WUR int sotto_merkle_log_append(sotto_merkle_log *log,
                                                const uint8_t leaf_hash[SOTTO_MERKLE_HASH_BYTES]);

/* Number of leaves; 0 for NULL. */
SOTTO_API uint64_t sotto_merkle_log_size(const sotto_merkle_log *log);

/* Bytes of heap the log holds (struct and arrays); 0 for NULL. */
SOTTO_API size_t sotto_merkle_log_memory(const sotto_merkle_log *log);

/* Root of the first `size` leaves (0..n; size 0 gives SHA-256("")), as
 * sotto_merkle_root would compute it. At most about log2(size) node
 * hashes. Returns SOTTO_OK or SOTTO_ERR_INVALID_ARGUMENT (NULL, size > n). */
SOTTO_API SOTTO_WUR int sotto_merkle_log_root(const sotto_merkle_log *log, uint64_t size,
                                              uint8_t root[SOTTO_MERKLE_HASH_BYTES]);

/* Inclusion proof of leaf `index` in the tree of the first `size` leaves,
 * identical to sotto_merkle_prove_inclusion over them; path must hold
 * SOTTO_MERKLE_MAX_PROOF hashes. Returns SOTTO_OK or
 * SOTTO_ERR_INVALID_ARGUMENT (NULL, size 0 or > n, index >= size). */
SOTTO_API SOTTO_WUR int sotto_merkle_log_prove_inclusion(const sotto_merkle_log *log,
                                                         uint64_t index, uint64_t size,
                                                         uint8_t (*path)[SOTTO_MERKLE_HASH_BYTES],
                                                         size_t *path_len);

/* Consistency proof from the first `size1` leaves to the first `size2`,
 * identical to sotto_merkle_prove_consistency over leaves[0..size2); path
 * must hold SOTTO_MERKLE_MAX_PROOF hashes. Needs 1 <= size1 <= size2 <= n,
 * else SOTTO_ERR_INVALID_ARGUMENT; size1 == size2 gives an empty path. */
SOTTO_API SOTTO_WUR int sotto_merkle_log_prove_consistency(const sotto_merkle_log *log,
                                                           uint64_t size1, uint64_t size2,
                                                           uint8_t (*path)[SOTTO_MERKLE_HASH_BYTES],
                                                           size_t *path_len);

#ifdef __cplusplus
}
#endif
#endif /* SOTTO_MERKLE_H */
