/*
 * sotto/kt.h -- key transparency messages (issue 9): the server's signed
 * tree head, auditor countersignatures, the log's leaf format, and the
 * search result a client verifies before it accepts a contact's keys.
 * Built on sotto/vrf.h, sotto/merkle.h and sotto/prefix_tree.h.
 *
 * Spec: docs/protocol.md "Tree heads, auditors and search results".
 *
 * Signatures are Ed25519 (RFC 8032, libsodium): a public key is 32 bytes, a
 * secret key libsodium's 64-byte form (seed || public key), a signature 64
 * bytes. The server's KT key and each auditor's key are their own keys,
 * separate from TLS and from any account key. All integers big-endian.
 *
 *   tree head statement (70 bytes):
 *     "SOTTO-KT-TREE-HEAD-V1" 0x00 | size (8) | log root (32) | timestamp_ms (8)
 *   tree head on the wire (112 bytes):
 *     size (8) | log root (32) | timestamp_ms (8) | server signature (64)
 *   countersignature: Ed25519 by the auditor over
 *     "SOTTO-KT-AUDIT-V1" 0x00 | tree head statement          (88 bytes)
 *   audited head on the wire: tree head (112) | count (1, 0..8) |
 *     count x (auditor public key (32) | countersignature (64)),
 *     auditor keys strictly increasing (memcmp order), nothing after
 *   log leaf data (57 bytes):
 *     "SOTTO-KT-LEAF-V1" 0x00 | prefix-tree root (32) | timestamp_ms (8)
 *   committed value (73 bytes):
 *     account key (33) | SHA-256 of the signed device list (32) | version (8)
 *   prefix-tree leaf value of an index (32 bytes):
 *     SHA-256("SOTTO-KT-LEAF-VALUE-V1" 0x00 | counter (8) | commitment (32))
 *   log update (80 bytes):
 *     timestamp_ms (8) | index (32) | counter (8) | commitment (32)
 *   search result on the wire:
 *     VRF proof (80) | opening (32) | value (73) | counter (8) |
 *     prefix root (32) | leaf timestamp_ms (8) | prefix proof length (2) |
 *     prefix proof (sotto_pt_proof encoding) | log inclusion path
 *     (sotto_merkle proof encoding: count (1) | count x 32), nothing after
 *
 * Errors: SOTTO_ERR_INVALID_ARGUMENT (NULL or out-of-range caller data),
 * SOTTO_ERR_INVALID_MESSAGE / SOTTO_ERR_TRAILING_DATA (encodings that do not
 * parse), SOTTO_ERR_INVALID_SIGNATURE (a server signature, countersignature
 * or VRF proof that does not verify), SOTTO_ERR_INVALID_KEY (a VRF public key
 * that fails RFC 9381 validate_key), SOTTO_ERR_KT_HEAD_STALE,
 * SOTTO_ERR_KT_AUDITOR_MISSING, SOTTO_ERR_PROOF_INVALID (a prefix-tree or
 * log proof, or a consistency proof, that does not verify; also a wrong
 * opening or value, since the commitment is recomputed from them),
 * SOTTO_ERR_CRYPTO (a primitive failed), SOTTO_ERR_KT_UPDATE_INVALID (a log
 * update that does not follow the directory's state), SOTTO_ERR_NOMEM.
 *
 * Nothing allocates except the directory (sotto_kt_directory). Nothing here is secret except the
 * signing keys, which stay the caller's. Call sotto_init() first.
 */
#ifndef SOTTO_KT_H
#define SOTTO_KT_H

#include <stddef.h>
#include <stdint.h>

#include "sotto/common.h"
#include "sotto/error.h"
#include "sotto/merkle.h"
#include "sotto/prefix_tree.h"
#include "sotto/vrf.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SOTTO_KT_SIGN_PUBLIC_KEY_BYTES 32 /* Ed25519 public key */
#define SOTTO_KT_SIGN_SECRET_KEY_BYTES 64 /* libsodium Ed25519 secret key */
#define SOTTO_KT_SIGNATURE_BYTES 64
#define SOTTO_KT_HEAD_STATEMENT_BYTES 70 /* 22 label + 8 + 32 + 8 */
#define SOTTO_KT_HEAD_BYTES 112          /* 8 + 32 + 8 + 64 */
#define SOTTO_KT_MAX_AUDITORS 8
#define SOTTO_KT_COSIG_BYTES (SOTTO_KT_SIGN_PUBLIC_KEY_BYTES + SOTTO_KT_SIGNATURE_BYTES)
#define SOTTO_KT_AUDITED_HEAD_MAX_BYTES                                                            \
    (SOTTO_KT_HEAD_BYTES + 1 + SOTTO_KT_MAX_AUDITORS * SOTTO_KT_COSIG_BYTES)
#define SOTTO_KT_LEAF_BYTES 57 /* 17 label + 32 + 8 */
#define SOTTO_KT_ACCOUNT_KEY_BYTES 33
#define SOTTO_KT_VALUE_BYTES 73 /* 33 + 32 + 8 */
/* Default maximum age of a tree head a client accepts (one day). */
#define SOTTO_KT_DEFAULT_MAX_AGE_MS (UINT64_C(24) * 3600 * 1000)
/* A head stamped more than this after the client's clock is refused too. */
#define SOTTO_KT_MAX_CLOCK_SKEW_MS (UINT64_C(5) * 60 * 1000)
#define SOTTO_KT_UPDATE_BYTES 80 /* 8 + 32 + 8 + 32 */
/* Fixed part of a search result, then the two variable proofs. */
#define SOTTO_KT_SEARCH_FIXED_BYTES                                                                \
    (SOTTO_VRF_PROOF_BYTES + SOTTO_KT_OPENING_BYTES + SOTTO_KT_VALUE_BYTES + 8 +                   \
     SOTTO_PT_HASH_BYTES + 8 + 2)
#define SOTTO_KT_SEARCH_MAX_BYTES                                                                  \
    (SOTTO_KT_SEARCH_FIXED_BYTES + SOTTO_PT_PROOF_MAX_BYTES + SOTTO_MERKLE_PROOF_MAX_BYTES)

/* ------------------------------------------------------------------------ */
/* Tree heads and countersignatures                                         */
/* ------------------------------------------------------------------------ */

/* A tree head: the log has `size` entries (1..2^63) with root `root` as of
 * `timestamp_ms` (milliseconds since the Unix epoch), signed by the server. */
typedef struct sotto_kt_tree_head {
    uint64_t size;
    uint8_t root[SOTTO_MERKLE_HASH_BYTES];
    uint64_t timestamp_ms;
    uint8_t signature[SOTTO_KT_SIGNATURE_BYTES];
} sotto_kt_tree_head;

/* One auditor's countersignature of a head. */
typedef struct sotto_kt_cosig {
    uint8_t auditor_pk[SOTTO_KT_SIGN_PUBLIC_KEY_BYTES];
    uint8_t signature[SOTTO_KT_SIGNATURE_BYTES];
} sotto_kt_cosig;

/* A head with the countersignatures the server collected (n_cosigs 0..8,
 * auditor keys strictly increasing). */
typedef struct sotto_kt_audited_head {
    sotto_kt_tree_head head;
    uint8_t n_cosigs;
    sotto_kt_cosig cosigs[SOTTO_KT_MAX_AUDITORS];
} sotto_kt_audited_head;

/* Writes the 70-byte statement of head (size, root, timestamp; the
 * signature field is not read). Returns SOTTO_OK or
 * SOTTO_ERR_INVALID_ARGUMENT (NULL, size 0 or > 2^63). */
SOTTO_API SOTTO_WUR int
sotto_kt_head_statement(uint8_t out[SOTTO_STATIC_N(SOTTO_KT_HEAD_STATEMENT_BYTES)],
                        const sotto_kt_tree_head *head);

/* Signs head->size/root/timestamp_ms with the server's Ed25519 secret key
 * `sk` (64 bytes), writing head->signature. Returns SOTTO_OK,
 * SOTTO_ERR_INVALID_ARGUMENT (as above) or SOTTO_ERR_CRYPTO. */
SOTTO_API SOTTO_WUR int sotto_kt_head_sign(sotto_kt_tree_head *head,
                                           const uint8_t sk[SOTTO_KT_SIGN_SECRET_KEY_BYTES]);

/* Checks head->signature under the server's public key `pk`. Returns
 * SOTTO_OK, SOTTO_ERR_INVALID_SIGNATURE or SOTTO_ERR_INVALID_ARGUMENT. */
SOTTO_API SOTTO_WUR int sotto_kt_head_verify(const sotto_kt_tree_head *head,
                                             const uint8_t pk[SOTTO_KT_SIGN_PUBLIC_KEY_BYTES]);

/* Writes the 112-byte wire form of head. Returns SOTTO_OK or
 * SOTTO_ERR_INVALID_ARGUMENT (NULL, size 0 or > 2^63). */
SOTTO_API SOTTO_WUR int sotto_kt_head_encode(const sotto_kt_tree_head *head,
                                             uint8_t out[SOTTO_STATIC_N(SOTTO_KT_HEAD_BYTES)]);

/* Parses exactly `len` bytes (112) and verifies the server signature under
 * `pk`; *out is written only on success. Returns SOTTO_OK,
 * SOTTO_ERR_INVALID_MESSAGE (short, size 0 or > 2^63),
 * SOTTO_ERR_TRAILING_DATA, SOTTO_ERR_INVALID_SIGNATURE or
 * SOTTO_ERR_INVALID_ARGUMENT. */
SOTTO_API SOTTO_WUR int sotto_kt_head_parse(const uint8_t *in, size_t len,
                                            const uint8_t pk[SOTTO_KT_SIGN_PUBLIC_KEY_BYTES],
                                            sotto_kt_tree_head *out);

/* An auditor countersigns head (its statement; the server signature is not
 * covered, the auditor checks it separately) with its secret key `sk`,
 * writing 64 bytes to sig. Returns SOTTO_OK, SOTTO_ERR_INVALID_ARGUMENT or
 * SOTTO_ERR_CRYPTO. */
SOTTO_API SOTTO_WUR int sotto_kt_cosign(uint8_t sig[SOTTO_STATIC_N(SOTTO_KT_SIGNATURE_BYTES)],
                                        const sotto_kt_tree_head *head,
                                        const uint8_t sk[SOTTO_KT_SIGN_SECRET_KEY_BYTES]);

/* Checks a countersignature of head by the auditor key auditor_pk. Returns
 * SOTTO_OK, SOTTO_ERR_INVALID_SIGNATURE or SOTTO_ERR_INVALID_ARGUMENT. */
SOTTO_API SOTTO_WUR int
sotto_kt_cosig_verify(const uint8_t sig[SOTTO_STATIC_N(SOTTO_KT_SIGNATURE_BYTES)],
                      const sotto_kt_tree_head *head,
                      const uint8_t auditor_pk[SOTTO_KT_SIGN_PUBLIC_KEY_BYTES]);

/* Adds (or replaces) auditor_pk's countersignature in ah, keeping the keys
 * in increasing order. Nothing is verified. Returns SOTTO_OK,
 * SOTTO_ERR_BUFFER_TOO_SMALL (already 8 other auditors) or
 * SOTTO_ERR_INVALID_ARGUMENT. */
SOTTO_API SOTTO_WUR int
sotto_kt_audited_head_add(sotto_kt_audited_head *ah,
                          const uint8_t auditor_pk[SOTTO_KT_SIGN_PUBLIC_KEY_BYTES],
                          const uint8_t sig[SOTTO_STATIC_N(SOTTO_KT_SIGNATURE_BYTES)]);

/* Wire form of an audited head into out (cap bytes; at most
 * SOTTO_KT_AUDITED_HEAD_MAX_BYTES), length in *out_len. Returns SOTTO_OK,
 * SOTTO_ERR_BUFFER_TOO_SMALL or SOTTO_ERR_INVALID_ARGUMENT (a malformed ah:
 * size out of range, more than 8 cosigs, keys not increasing). */
SOTTO_API SOTTO_WUR int sotto_kt_audited_head_encode(const sotto_kt_audited_head *ah, uint8_t *out,
                                                     size_t cap, size_t *out_len);

/* Parses exactly `len` bytes; checks the form only (no signature: use
 * sotto_kt_audited_head_check). On error *out is zeroed. Returns SOTTO_OK,
 * SOTTO_ERR_INVALID_MESSAGE (short, size out of range, count > 8, keys not
 * strictly increasing), SOTTO_ERR_TRAILING_DATA or
 * SOTTO_ERR_INVALID_ARGUMENT. Parse then encode gives the same bytes. */
SOTTO_API SOTTO_WUR int sotto_kt_audited_head_parse(const uint8_t *in, size_t len,
                                                    sotto_kt_audited_head *out);

/*
 * The client's acceptance of a head, in this order:
 *  1. the server signature under server_pk, else SOTTO_ERR_INVALID_SIGNATURE;
 *  2. freshness: timestamp_ms <= now_ms + SOTTO_KT_MAX_CLOCK_SKEW_MS and
 *     now_ms - timestamp_ms <= max_age_ms, else SOTTO_ERR_KT_HEAD_STALE;
 *  3. for each of the n_auditors required keys (auditors may be NULL when
 *     n_auditors is 0), in the caller's order: a countersignature from that
 *     key must be present (else SOTTO_ERR_KT_AUDITOR_MISSING) and verify
 *     (else SOTTO_ERR_INVALID_SIGNATURE). Countersignatures from keys not
 *     required are ignored.
 * Returns SOTTO_OK or the first failure; SOTTO_ERR_INVALID_ARGUMENT for
 * NULL or n_auditors > 8.
 */
SOTTO_API SOTTO_WUR int
sotto_kt_audited_head_check(const sotto_kt_audited_head *ah,
                            const uint8_t server_pk[SOTTO_KT_SIGN_PUBLIC_KEY_BYTES],
                            const uint8_t (*auditors)[SOTTO_KT_SIGN_PUBLIC_KEY_BYTES],
                            size_t n_auditors, uint64_t now_ms, uint64_t max_age_ms);

/*
 * Checks that `newer` extends `older`: the encoded RFC 9162 consistency
 * path (sotto_merkle_proof encoding, `proof_len` bytes) proves the log of
 * older->size entries with older->root is a prefix of newer's, and
 * newer->timestamp_ms >= older->timestamp_ms. Both heads must already be
 * verified (signatures are not checked here). Returns SOTTO_OK,
 * SOTTO_ERR_PROOF_INVALID (also older->size > newer->size, time going
 * back, equal sizes with different roots), SOTTO_ERR_INVALID_MESSAGE /
 * SOTTO_ERR_TRAILING_DATA (the path does not parse) or
 * SOTTO_ERR_INVALID_ARGUMENT.
 */
SOTTO_API SOTTO_WUR int sotto_kt_head_verify_consistency(const sotto_kt_tree_head *older,
                                                         const sotto_kt_tree_head *newer,
                                                         const uint8_t *proof, size_t proof_len);

/* ------------------------------------------------------------------------ */
/* Log leaves                                                               */
/* ------------------------------------------------------------------------ */

/* Writes the 57-byte leaf data for a prefix-tree root reached at
 * timestamp_ms. Returns SOTTO_OK or SOTTO_ERR_INVALID_ARGUMENT. */
SOTTO_API SOTTO_WUR int sotto_kt_leaf_data(uint8_t out[SOTTO_STATIC_N(SOTTO_KT_LEAF_BYTES)],
                                           const uint8_t prefix_root[SOTTO_PT_HASH_BYTES],
                                           uint64_t timestamp_ms);

/* The log leaf hash of that leaf: SHA-256(0x00 || leaf data). Returns
 * SOTTO_OK or SOTTO_ERR_INVALID_ARGUMENT. */
SOTTO_API SOTTO_WUR int sotto_kt_leaf_hash(uint8_t out[SOTTO_MERKLE_HASH_BYTES],
                                           const uint8_t prefix_root[SOTTO_PT_HASH_BYTES],
                                           uint64_t timestamp_ms);

/* ------------------------------------------------------------------------ */
/* Log updates, leaf values and the directory                              */
/* ------------------------------------------------------------------------ */

/*
 * One change of the directory, one log entry: index (the first 32 bytes of
 * the VRF output of a username) now holds
 * sotto_kt_leaf_value(counter, commitment), as of timestamp_ms (the date of
 * the change: ms at 00:00 UTC of that day). counter counts the updates of
 * that index: 1 for the first, +1 for each later one (so it is >= 1).
 */
typedef struct sotto_kt_update {
    uint64_t timestamp_ms;
    uint8_t index[SOTTO_PT_INDEX_BYTES];
    uint64_t counter;
    uint8_t commitment[SOTTO_KT_COMMITMENT_BYTES];
} sotto_kt_update;

/* Writes the 80-byte encoding of u (timestamp_ms | index | counter |
 * commitment, big-endian). Returns SOTTO_OK or SOTTO_ERR_INVALID_ARGUMENT
 * (NULL, counter 0). */
SOTTO_API SOTTO_WUR int sotto_kt_update_encode(const sotto_kt_update *u,
                                               uint8_t out[SOTTO_STATIC_N(SOTTO_KT_UPDATE_BYTES)]);

/* Parses exactly `len` bytes (80) into *out; on error *out is zeroed.
 * Returns SOTTO_OK, SOTTO_ERR_INVALID_MESSAGE (short, counter 0),
 * SOTTO_ERR_TRAILING_DATA (more than 80) or SOTTO_ERR_INVALID_ARGUMENT
 * (NULL). Parse then encode gives the same bytes. */
SOTTO_API SOTTO_WUR int sotto_kt_update_parse(const uint8_t *in, size_t len, sotto_kt_update *out);

/* out = SHA-256("SOTTO-KT-LEAF-VALUE-V1" 0x00 | counter (8, BE) |
 * commitment (32)): the prefix-tree value of an index. Returns SOTTO_OK,
 * SOTTO_ERR_INVALID_ARGUMENT (NULL, counter 0) or SOTTO_ERR_CRYPTO. */
SOTTO_API SOTTO_WUR int sotto_kt_leaf_value(uint8_t out[SOTTO_PT_VALUE_BYTES], uint64_t counter,
                                            const uint8_t commitment[SOTTO_KT_COMMITMENT_BYTES]);

/* out = SHA-256(list[0..len)): the device_list_hash of sotto_kt_value, over
 * the signed device list exactly as the server stores and serves it
 * (statement || signature). list may be NULL when len is 0. Returns
 * SOTTO_OK, SOTTO_ERR_INVALID_ARGUMENT or SOTTO_ERR_CRYPTO. */
SOTTO_API SOTTO_WUR int sotto_kt_device_list_hash(uint8_t out[32], const uint8_t *list, size_t len);

/*
 * The directory as a sequence of updates builds it (server: `current` and
 * `published`; auditor: its replay): a prefix tree index -> leaf value, the
 * counter of every index (a hash table: O(1) expected per lookup, with
 * collisions resolved on the full 32-byte index, so a hostile update stream
 * costs at most the table's linear probing, never quadratic rehashing), and
 * the timestamp of the last applied update. Memory: the prefix tree's plus
 * 21..43 bytes per index (16-byte slots, table at most 3/4 full, grown by
 * doubling); 215 bytes per index in all at 10^6.
 * Allocates; not thread-safe (one writer).
 */
typedef struct sotto_kt_directory sotto_kt_directory;

/* Creates an empty directory (count 0, last timestamp 0, root E) in *out;
 * free with sotto_kt_directory_free. Returns SOTTO_OK, SOTTO_ERR_NOMEM or
 * SOTTO_ERR_INVALID_ARGUMENT. */
SOTTO_API SOTTO_WUR int sotto_kt_directory_new(sotto_kt_directory **out);

/* Frees the directory; NULL is fine. */
SOTTO_API void sotto_kt_directory_free(sotto_kt_directory *d);

/*
 * Applies one update: checks u->counter == sotto_kt_directory_counter(d,
 * u->index) + 1 (so 1 for a new index) and u->timestamp_ms >= the last
 * applied timestamp, else SOTTO_ERR_KT_UPDATE_INVALID; then sets u->index ->
 * sotto_kt_leaf_value(u->counter, u->commitment) in the prefix tree,
 * records the counter and the timestamp, and writes the new prefix root to
 * prefix_root (may be NULL). O(depth) hashes. Returns SOTTO_OK,
 * SOTTO_ERR_KT_UPDATE_INVALID, SOTTO_ERR_NOMEM, SOTTO_ERR_CRYPTO or
 * SOTTO_ERR_INVALID_ARGUMENT (NULL d or u). On every error the directory
 * is unchanged (same root, counters, timestamp) and prefix_root is not
 * written.
 */
SOTTO_API SOTTO_WUR int sotto_kt_directory_apply(sotto_kt_directory *d, const sotto_kt_update *u,
                                                 uint8_t prefix_root[SOTTO_PT_HASH_BYTES]);

/* Counter of index: its number of applied updates (0 if never updated,
 * and 0 for NULL arguments). */
SOTTO_API uint64_t sotto_kt_directory_counter(const sotto_kt_directory *d,
                                              const uint8_t index[SOTTO_PT_INDEX_BYTES]);

/* Number of distinct indices in the directory; 0 for NULL. */
SOTTO_API uint64_t sotto_kt_directory_count(const sotto_kt_directory *d);

/* Timestamp of the last applied update (0 before the first); 0 for NULL. */
SOTTO_API uint64_t sotto_kt_directory_last_timestamp(const sotto_kt_directory *d);

/* Bytes of heap the directory holds (tree arena, table, struct); 0 for
 * NULL. */
SOTTO_API size_t sotto_kt_directory_memory(const sotto_kt_directory *d);

/* The prefix-tree root (E, 32 zero bytes, when empty); no hashing.
 * Returns SOTTO_OK or SOTTO_ERR_INVALID_ARGUMENT. */
SOTTO_API SOTTO_WUR int sotto_kt_directory_root(const sotto_kt_directory *d,
                                                uint8_t root[SOTTO_PT_HASH_BYTES]);

/* The prefix-tree proof for index (PRESENT or ABSENT), as
 * sotto_prefix_tree_prove. Returns SOTTO_OK or SOTTO_ERR_INVALID_ARGUMENT. */
SOTTO_API SOTTO_WUR int sotto_kt_directory_prove(const sotto_kt_directory *d,
                                                 const uint8_t index[SOTTO_PT_INDEX_BYTES],
                                                 sotto_pt_proof *proof);

/* ------------------------------------------------------------------------ */
/* Committed values and search results                                     */
/* ------------------------------------------------------------------------ */

/* What the directory commits to for a username. version >= 1 (a device
 * list's version). The account key is kept as bytes: the caller decodes it
 * (sotto/keys.h) before use. */
typedef struct sotto_kt_value {
    uint8_t account_key[SOTTO_KT_ACCOUNT_KEY_BYTES];
    uint8_t device_list_hash[32];
    uint64_t version;
} sotto_kt_value;

/* 73-byte encoding of v (the bytes given to sotto_kt_commit). Returns
 * SOTTO_OK or SOTTO_ERR_INVALID_ARGUMENT (NULL, version 0). */
SOTTO_API SOTTO_WUR int sotto_kt_value_encode(const sotto_kt_value *v,
                                              uint8_t out[SOTTO_STATIC_N(SOTTO_KT_VALUE_BYTES)]);

/*
 * The commitment to v for username under a given opening (the formula of
 * sotto_kt_commit, with the caller's opening): what a client recomputes and
 * the server stores in the prefix tree. Returns SOTTO_OK,
 * SOTTO_ERR_INVALID_ARGUMENT (NULL, username of 0 or > 255 bytes, version
 * 0) or SOTTO_ERR_CRYPTO.
 */
SOTTO_API SOTTO_WUR int sotto_kt_value_commitment(uint8_t out[SOTTO_KT_COMMITMENT_BYTES],
                                                  const uint8_t opening[SOTTO_KT_OPENING_BYTES],
                                                  const char *username, const sotto_kt_value *v);

/* A search result as parsed (about 10.4 KiB; the proofs are plain values).
 * The log inclusion path proves leaf (head size - 1), the last one.
 * counter (>= 1) is the index's update counter: the prefix tree holds
 * sotto_kt_leaf_value(counter, commitment) for it. */
typedef struct sotto_kt_search_result {
    uint8_t vrf_proof[SOTTO_VRF_PROOF_BYTES];
    uint8_t opening[SOTTO_KT_OPENING_BYTES];
    sotto_kt_value value;
    uint64_t counter;
    uint8_t prefix_root[SOTTO_PT_HASH_BYTES];
    uint64_t leaf_timestamp_ms;
    sotto_pt_proof pt_proof;
    size_t log_path_len;
    uint8_t log_path[SOTTO_MERKLE_MAX_PROOF][SOTTO_MERKLE_HASH_BYTES];
} sotto_kt_search_result;

/* Wire form of r into out (cap bytes; at most SOTTO_KT_SEARCH_MAX_BYTES),
 * length in *out_len. Returns SOTTO_OK, SOTTO_ERR_BUFFER_TOO_SMALL or
 * SOTTO_ERR_INVALID_ARGUMENT (NULL, version 0, counter 0, a malformed
 * proof). */
SOTTO_API SOTTO_WUR int sotto_kt_search_result_encode(const sotto_kt_search_result *r, uint8_t *out,
                                                      size_t cap, size_t *out_len);

/* Parses exactly `len` bytes into *r (form only: canonical proofs, version
 * >= 1, counter >= 1); on error *r is zeroed. Returns SOTTO_OK, SOTTO_ERR_INVALID_MESSAGE,
 * SOTTO_ERR_TRAILING_DATA or SOTTO_ERR_INVALID_ARGUMENT. Parse then encode
 * gives the same bytes. */
SOTTO_API SOTTO_WUR int sotto_kt_search_result_parse(const uint8_t *in, size_t len,
                                                     sotto_kt_search_result *r);

/*
 * The client's check of a search for `username` (1..255 bytes, NUL
 * terminated) against a head it has ALREADY accepted
 * (sotto_kt_audited_head_check), in this order:
 *  1. VRF: r->vrf_proof proves alpha = username under vrf_pk; the index is
 *     the first 32 bytes of beta (SOTTO_ERR_INVALID_KEY,
 *     SOTTO_ERR_INVALID_SIGNATURE);
 *  2. commitment = sotto_kt_value_commitment(r->opening, username,
 *     &r->value);
 *  3. prefix tree: r->pt_proof proves index ->
 *     sotto_kt_leaf_value(r->counter, commitment) (PRESENT) under
 *     r->prefix_root (SOTTO_ERR_PROOF_INVALID; a wrong opening, value or
 *     counter fails here; counter 0 too);
 *  4. log: leaf data (r->prefix_root, r->leaf_timestamp_ms) is leaf
 *     head->size - 1 of the log with head->root, by r->log_path, and
 *     r->leaf_timestamp_ms <= head->timestamp_ms (SOTTO_ERR_PROOF_INVALID).
 * On success copies r->value to *out (may be NULL); on error *out is
 * zeroed. SOTTO_ERR_INVALID_ARGUMENT for NULL or a bad username length.
 */
SOTTO_API SOTTO_WUR int sotto_kt_search_verify(sotto_kt_value *out,
                                               const uint8_t vrf_pk[SOTTO_VRF_PUBLIC_KEY_BYTES],
                                               const char *username,
                                               const sotto_kt_search_result *r,
                                               const sotto_kt_tree_head *head);

#ifdef __cplusplus
}
#endif
#endif /* SOTTO_KT_H */
