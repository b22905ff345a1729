/*
 * sotto/prefix_tree.h -- the directory of key transparency (issue 9): a
 * binary prefix tree of 256 levels over 32-byte indices (the VRF output of
 * a username), each leaf holding a 32-byte value (the commitment to the
 * username's current keys); its compact proofs of inclusion and of
 * absence; and the commitment itself.
 *
 * Spec: docs/protocol.md "Key transparency: log and prefix tree".
 *
 * Hash of a subtree (SHA-256; bit k of an index is bit 7 - k % 8 of byte
 * k / 8, i.e. most significant bit first; the child of a node at depth k
 * that holds an index is child bit k):
 *   no leaf:      E = 32 zero bytes
 *   one leaf:     SHA-256(0x10 || index (32) || value (32)), whatever the
 *                 depth (the leaf hash names the full index, so a subtree
 *                 with one leaf needs no chain of nodes below it)
 *   two or more:  SHA-256(0x11 || hash(child 0) || hash(child 1))
 * The root is the hash of the whole tree (E when it is empty).
 *
 * A proof for an index follows the index's path from the root down to
 * where its search ends, at depth `depth` (0..256): a leaf with this index
 * (PRESENT), an empty subtree (ABSENT_EMPTY) or a leaf with another index
 * sharing the first `depth` bits (ABSENT_LEAF). It carries the siblings of
 * the path at depths 1..depth that are not empty, and a bitmap saying which
 * they are; an empty sibling is E. With n random indices the path is about
 * log2(n) deep, so a proof holds about log2(n) hashes (20 at 10^6).
 *
 * The in-memory tree (sotto_prefix_tree) is for the server and the auditor:
 * insert and update (no removal: the directory never forgets a name),
 * O(depth) hashes per change, about 48 bytes per internal node and 112 per
 * leaf from an arena freed as a whole. Not thread-safe; one writer.
 *
 * Errors: SOTTO_ERR_INVALID_ARGUMENT (NULL or out-of-range argument),
 * SOTTO_ERR_NOMEM, SOTTO_ERR_NOT_FOUND (get), SOTTO_ERR_PROOF_INVALID (a
 * proof that does not prove the claim), SOTTO_ERR_INVALID_MESSAGE /
 * SOTTO_ERR_TRAILING_DATA (an encoding that does not parse),
 * SOTTO_ERR_COMMITMENT_INVALID (an opening that does not open).
 */
#ifndef SOTTO_PREFIX_TREE_H
#define SOTTO_PREFIX_TREE_H

#include "sotto/common.h"
#include "sotto/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SOTTO_PT_INDEX_BYTES 32
#define SOTTO_PT_VALUE_BYTES 32
#define SOTTO_PT_HASH_BYTES 32
#define SOTTO_PT_DEPTH 256

/* Leaf hash SHA-256(0x10 || index || value) and node hash
 * SHA-256(0x11 || left || right) (out may alias the inputs). Return
 * SOTTO_OK or SOTTO_ERR_INVALID_ARGUMENT. */
SOTTO_API SOTTO_WUR int sotto_pt_leaf_hash(uint8_t out[SOTTO_PT_HASH_BYTES],
                                           const uint8_t index[SOTTO_PT_INDEX_BYTES],
                                           const uint8_t value[SOTTO_PT_VALUE_BYTES]);
SOTTO_API SOTTO_WUR int sotto_pt_node_hash(uint8_t out[SOTTO_PT_HASH_BYTES],
                                           const uint8_t left[SOTTO_PT_HASH_BYTES],
                                           const uint8_t right[SOTTO_PT_HASH_BYTES]);

/* ------------------------------------------------------------------------ */
/* Proofs                                                                   */
/* ------------------------------------------------------------------------ */

typedef enum sotto_pt_proof_kind {
    SOTTO_PT_PROOF_PRESENT = 1,      /* the index is in the tree */
    SOTTO_PT_PROOF_ABSENT_EMPTY = 2, /* its path ends in an empty subtree */
    SOTTO_PT_PROOF_ABSENT_LEAF = 3,  /* its path ends in another index's leaf */
} sotto_pt_proof_kind;

/*
 * A proof, as a plain value (about 8.3 KiB: room for 256 siblings).
 *   kind        one of sotto_pt_proof_kind
 *   depth       0..256, depth of the node where the search ends
 *   bitmap      bit k-1 (MSB first: byte (k-1)/8, bit 7-(k-1)%8) set iff
 *               the sibling at depth k (1..depth) is not empty; bits from
 *               `depth` on are zero
 *   n_siblings  number of bits set in bitmap
 *   siblings    the non-empty siblings, shallowest (depth 1) first
 *   other_index, other_value   ABSENT_LEAF only (zero otherwise): the leaf
 *               found where the index would be
 */
typedef struct sotto_pt_proof {
    uint8_t kind;
    uint16_t depth;
    uint8_t bitmap[SOTTO_PT_DEPTH / 8];
    uint16_t n_siblings;
    uint8_t siblings[SOTTO_PT_DEPTH][SOTTO_PT_HASH_BYTES];
    uint8_t other_index[SOTTO_PT_INDEX_BYTES];
    uint8_t other_value[SOTTO_PT_VALUE_BYTES];
} sotto_pt_proof;

/*
 * Verifies that in the tree with root `root`, `index` holds `value`
 * (value != NULL) or is absent (value == NULL), as `proof` shows. Checks
 * the proof's form first (kind, depth <= 256, n_siblings = popcount of the
 * bitmap's first `depth` bits and no bit after, no sibling sent equal to E,
 * the sibling at `depth` not empty when depth > 0, for ABSENT_LEAF another
 * index with the same first `depth` bits), then recomputes the root. Returns SOTTO_OK,
 * SOTTO_ERR_PROOF_INVALID (also when the proof proves the other verdict)
 * or SOTTO_ERR_INVALID_ARGUMENT (NULL root, index or proof). Cost: one leaf
 * hash and `depth` node hashes.
 */
SOTTO_API SOTTO_WUR int sotto_pt_verify(const uint8_t root[SOTTO_PT_HASH_BYTES],
                                        const uint8_t index[SOTTO_PT_INDEX_BYTES],
                                        const uint8_t *value, const sotto_pt_proof *proof);

/*
 * Wire encoding of a proof (big-endian):
 *   kind (1) | depth (2) | bitmap (ceil(depth / 8) bytes) |
 *   n_siblings x 32 | [ABSENT_LEAF: other_index (32) | other_value (32)]
 * Canonical: kind 1..3, depth <= 256, bitmap bits from `depth` on zero, the
 * sibling count is the bitmap's popcount, no sibling is E (all zero), the
 * bit for depth `depth` is set when depth > 0, nothing after. At most
 * SOTTO_PT_PROOF_MAX_BYTES.
 *
 * sotto_pt_proof_encode: writes the encoding of a well-formed proof (as
 * above; not verified) to out (cap bytes) and sets *out_len. Returns
 * SOTTO_OK, SOTTO_ERR_BUFFER_TOO_SMALL or SOTTO_ERR_INVALID_ARGUMENT.
 *
 * sotto_pt_proof_parse: decodes exactly `len` bytes into *proof. Returns
 * SOTTO_OK, SOTTO_ERR_INVALID_MESSAGE (malformed or truncated),
 * SOTTO_ERR_TRAILING_DATA or SOTTO_ERR_INVALID_ARGUMENT; on error *proof is
 * zeroed. Parse then encode gives the same bytes.
 */
#define SOTTO_PT_PROOF_MAX_BYTES                                                                   \
    (1 + 2 + SOTTO_PT_DEPTH / 8 + SOTTO_PT_DEPTH * SOTTO_PT_HASH_BYTES + SOTTO_PT_INDEX_BYTES +    \
     SOTTO_PT_VALUE_BYTES)
SOTTO_API SOTTO_WUR int sotto_pt_proof_encode(const sotto_pt_proof *proof, uint8_t *out, size_t cap,
                                              size_t *out_len);
SOTTO_API SOTTO_WUR int sotto_pt_proof_parse(const uint8_t *in, size_t len, sotto_pt_proof *proof);

/* ------------------------------------------------------------------------ */
/* The in-memory tree                                                       */
/* ------------------------------------------------------------------------ */

typedef struct sotto_prefix_tree sotto_prefix_tree;

/* Creates an empty tree in *out (caller frees with sotto_prefix_tree_free).
 * Returns SOTTO_OK, SOTTO_ERR_NOMEM or SOTTO_ERR_INVALID_ARGUMENT. */
SOTTO_API SOTTO_WUR int sotto_prefix_tree_new(sotto_prefix_tree **out);
/* Frees the tree and everything in it; NULL is fine. */
SOTTO_API void sotto_prefix_tree_free(sotto_prefix_tree *t);

/* Sets the value of `index`: inserts it, or replaces its value. O(depth)
 * hashes. Returns SOTTO_OK, SOTTO_ERR_NOMEM (tree unchanged) or
 * SOTTO_ERR_INVALID_ARGUMENT. */
SOTTO_API SOTTO_WUR int sotto_prefix_tree_set(sotto_prefix_tree *t,
                                              const uint8_t index[SOTTO_PT_INDEX_BYTES],
                                              const uint8_t value[SOTTO_PT_VALUE_BYTES]);

/* Copies the value of `index` to value. Returns SOTTO_OK,
 * SOTTO_ERR_NOT_FOUND or SOTTO_ERR_INVALID_ARGUMENT. */
SOTTO_API SOTTO_WUR int sotto_prefix_tree_get(const sotto_prefix_tree *t,
                                              const uint8_t index[SOTTO_PT_INDEX_BYTES],
                                              uint8_t value[SOTTO_PT_VALUE_BYTES]);

/* The root hash (E, 32 zero bytes, for an empty tree); no hashing, the
 * tree keeps it. Returns SOTTO_OK or SOTTO_ERR_INVALID_ARGUMENT. */
SOTTO_API SOTTO_WUR int sotto_prefix_tree_root(const sotto_prefix_tree *t,
                                               uint8_t root[SOTTO_PT_HASH_BYTES]);

/* Number of indices in the tree; 0 for NULL. */
SOTTO_API uint64_t sotto_prefix_tree_count(const sotto_prefix_tree *t);
/* Bytes of node memory the tree holds (arena chunks); 0 for NULL. */
SOTTO_API size_t sotto_prefix_tree_memory(const sotto_prefix_tree *t);

/* Writes the proof for `index` (PRESENT or one of the ABSENT kinds) to
 * *proof. No hashing: O(depth) copies. Returns SOTTO_OK or
 * SOTTO_ERR_INVALID_ARGUMENT. */
SOTTO_API SOTTO_WUR int sotto_prefix_tree_prove(const sotto_prefix_tree *t,
                                                const uint8_t index[SOTTO_PT_INDEX_BYTES],
                                                sotto_pt_proof *proof);

/* ------------------------------------------------------------------------ */
/* Commitments                                                              */
/* ------------------------------------------------------------------------ */

#define SOTTO_KT_OPENING_BYTES 32
#define SOTTO_KT_COMMITMENT_BYTES 32
#define SOTTO_KT_USERNAME_MAX_BYTES 255
#define SOTTO_KT_COMMIT_VALUE_MAX_BYTES 65535

/*
 * commitment = HMAC-SHA256(key = opening,
 *     "SOTTO-KT-COMMIT-V1" 0x00 | len(username) (1) | username |
 *     len(value) (2, big-endian) | value)
 * with a fresh 32-byte random opening, written to `opening` (the server
 * keeps it and hands it out with a search result; it is what hides the
 * value, so until then it is secret). username: 1..255 bytes (not checked
 * against sotto_username_valid; the caller does that); value: 0..65535
 * bytes, may be NULL when value_len is 0. Returns SOTTO_OK,
 * SOTTO_ERR_INVALID_ARGUMENT or SOTTO_ERR_CRYPTO (outputs zeroed on error).
 */
SOTTO_API SOTTO_WUR int sotto_kt_commit(uint8_t commitment[SOTTO_KT_COMMITMENT_BYTES],
                                        uint8_t opening[SOTTO_KT_OPENING_BYTES],
                                        const char *username, const uint8_t *value,
                                        size_t value_len);

/* Checks that `opening` opens `commitment` to (username, value): recomputes
 * the HMAC above and compares in constant time. Returns SOTTO_OK,
 * SOTTO_ERR_COMMITMENT_INVALID, SOTTO_ERR_INVALID_ARGUMENT or
 * SOTTO_ERR_CRYPTO. */
SOTTO_API SOTTO_WUR int
sotto_kt_verify_commitment(const uint8_t commitment[SOTTO_KT_COMMITMENT_BYTES],
                           const uint8_t opening[SOTTO_KT_OPENING_BYTES], const char *username,
                           const uint8_t *value, size_t value_len);

#ifdef __cplusplus
}
#endif
#endif /* SOTTO_PREFIX_TREE_H */
