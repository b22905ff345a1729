/*
 * lib/kt/kt_internal.h -- what the key-transparency sources share between
 * themselves (internal header, not installed).
 */
#ifndef SOTTO_LIB_KT_INTERNAL_H
#define SOTTO_LIB_KT_INTERNAL_H

#include <stdint.h>

#include "sotto/common.h"
#include "sotto/prefix_tree.h"

/*
 * out = SHA-256(p[0..n)) for the trees' hashes: OpenSSL's (sotto_sha256,
 * SHA-NI where the CPU has it), or libsodium's should OpenSSL fail, so it
 * cannot fail and the trees never stop half-updated. Same bytes either way.
 */
void sotto_kt_sha256(uint8_t out[32], const uint8_t *p, size_t n);

/*
 * sotto_prefix_tree_set, and on success *stored_index (may be NULL) points
 * at the tree's own copy of the index: stable for the life of the tree (the
 * arena never moves or frees a leaf), so the directory's counter table
 * keys on it instead of keeping a second copy. Same return codes; on
 * SOTTO_ERR_NOMEM the tree is unchanged and *stored_index not written.
 */
SOTTO_WUR int sotto_pt_set_ref(sotto_prefix_tree *t, const uint8_t index[SOTTO_PT_INDEX_BYTES],
                               const uint8_t value[SOTTO_PT_VALUE_BYTES],
                               const uint8_t **stored_index);

#endif /* SOTTO_LIB_KT_INTERNAL_H */
