/*
 * lib/kt/prefix_tree.c -- the key-transparency prefix tree, its compact
 * proofs and the commitments (sotto/prefix_tree.h, docs/protocol.md "Key
 * transparency: log and prefix tree").
 *
 * Memory: every node lives in an arena of 1 MiB chunks, freed with the
 * tree (nothing is ever removed). An internal node is `struct pt_node`
 * (hash and two children, at least one not NULL); a leaf is a `struct
 * pt_leaf`, whose first member is a pt_node with both children NULL.
 */
#include "sotto/prefix_tree.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "crypto/crypto.h"
#include "kt/kt_internal.h"

#define HB SOTTO_PT_HASH_BYTES
#define IB SOTTO_PT_INDEX_BYTES
#define VB SOTTO_PT_VALUE_BYTES
#define CHUNK_BYTES ((size_t)1 << 20)

static const uint8_t EMPTY[HB]; /* E: 32 zero bytes */

struct pt_node {
    uint8_t hash[HB];
    struct pt_node *child[2];
};

struct pt_leaf {
    struct pt_node n;
    uint8_t index[IB];
    uint8_t value[VB];
};

struct chunk {
    struct chunk *next;
    size_t used;
    _Alignas(16) uint8_t data[];
};

struct sotto_prefix_tree {
    struct pt_node *root;
    uint64_t count;
    struct chunk *chunks;
    size_t memory;
};

static int bit_at(const uint8_t *index, unsigned k)
{
    return (index[k >> 3] >> (7 - (k & 7))) & 1;
}

static int is_leaf(const struct pt_node *n)
{
    return n->child[0] == NULL && n->child[1] == NULL;
}

static void leaf_hash(uint8_t out[HB], const uint8_t index[IB], const uint8_t value[VB])
{
    uint8_t buf[1 + IB + VB];

    buf[0] = 0x10;
    memcpy(buf + 1, index, IB);
    memcpy(buf + 1 + IB, value, VB);
    sotto_kt_sha256(out, buf, sizeof buf);
}

static void node_hash(uint8_t out[HB], const uint8_t left[HB], const uint8_t right[HB])
{
    uint8_t buf[1 + 2 * HB];

    buf[0] = 0x11;
    memcpy(buf + 1, left, HB);
    memcpy(buf + 1 + HB, right, HB);
    sotto_kt_sha256(out, buf, sizeof buf);
}

int sotto_pt_leaf_hash(uint8_t out[HB], const uint8_t index[IB], const uint8_t value[VB])
{
    if (out == NULL || index == NULL || value == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    leaf_hash(out, index, value);
    return SOTTO_OK;
}

int sotto_pt_node_hash(uint8_t out[HB], const uint8_t left[HB], const uint8_t right[HB])
{
    if (out == NULL || left == NULL || right == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    node_hash(out, left, right);
    return SOTTO_OK;
}

/* ------------------------------------------------------------------------ */
/* Proof form, verification and encoding                                    */
/* ------------------------------------------------------------------------ */

static int bitmap_bit(const uint8_t *bitmap, unsigned k)
{
    return (bitmap[k >> 3] >> (7 - (k & 7))) & 1;
}

/* The form checks shared by verify and parse (not the hashes). */
static int proof_well_formed(const sotto_pt_proof *p)
{
    unsigned count = 0;

    if (p->kind < SOTTO_PT_PROOF_PRESENT || p->kind > SOTTO_PT_PROOF_ABSENT_LEAF ||
        p->depth > SOTTO_PT_DEPTH)
        return 0;
    for (unsigned k = 0; k < SOTTO_PT_DEPTH; k++) {
        if (bitmap_bit(p->bitmap, k)) {
            if (k >= p->depth)
                return 0;
            count++;
        }
    }
    if (count != p->n_siblings)
        return 0;
    /* A sibling sent is not empty: E is said by a clear bit, never sent, so
     * each proof has one encoding. */
    for (unsigned i = 0; i < count; i++) {
        if (sodium_is_zero(p->siblings[i], HB))
            return 0;
    }
    /* Canonical end: the sibling of the last node is not empty, else the
     * parent would hold one leaf (or none) and the search would stop there. */
    if (p->depth > 0 && !bitmap_bit(p->bitmap, p->depth - 1u))
        return 0;
    return 1;
}

int sotto_pt_verify(const uint8_t root[HB], const uint8_t index[IB], const uint8_t *value,
                    const sotto_pt_proof *proof)
{
    uint8_t h[HB];
    unsigned next;

    if (root == NULL || index == NULL || proof == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    if (!proof_well_formed(proof))
        return SOTTO_ERR_PROOF_INVALID;
    switch (proof->kind) {
    case SOTTO_PT_PROOF_PRESENT:
        if (value == NULL)
            return SOTTO_ERR_PROOF_INVALID;
        leaf_hash(h, index, value);
        break;
    case SOTTO_PT_PROOF_ABSENT_EMPTY:
        if (value != NULL)
            return SOTTO_ERR_PROOF_INVALID;
        memcpy(h, EMPTY, HB);
        break;
    default: /* ABSENT_LEAF */
        if (value != NULL || sodium_memcmp(proof->other_index, index, IB) == 0)
            return SOTTO_ERR_PROOF_INVALID;
        for (unsigned k = 0; k < proof->depth; k++) {
            if (bit_at(proof->other_index, k) != bit_at(index, k))
                return SOTTO_ERR_PROOF_INVALID;
        }
        leaf_hash(h, proof->other_index, proof->other_value);
        break;
    }
    next = proof->n_siblings;
    for (unsigned k = proof->depth; k > 0; k--) {
        const uint8_t *sib = EMPTY;
        if (bitmap_bit(proof->bitmap, k - 1))
            sib = proof->siblings[--next];
        if (bit_at(index, k - 1))
            node_hash(h, sib, h);
        else
            node_hash(h, h, sib);
    }
    if (sodium_memcmp(h, root, HB) != 0)
        return SOTTO_ERR_PROOF_INVALID;
    return SOTTO_OK;
}

int sotto_pt_proof_encode(const sotto_pt_proof *proof, uint8_t *out, size_t cap, size_t *out_len)
{
    size_t need, bm, pos;

    if (out_len != NULL)
        *out_len = 0;
    if (proof == NULL || out == NULL || out_len == NULL || !proof_well_formed(proof))
        return SOTTO_ERR_INVALID_ARGUMENT;
    bm = (proof->depth + 7u) / 8u;
    need = 3 + bm + (size_t)proof->n_siblings * HB;
    if (proof->kind == SOTTO_PT_PROOF_ABSENT_LEAF)
        need += IB + VB;
    if (cap < need)
        return SOTTO_ERR_BUFFER_TOO_SMALL;
    out[0] = proof->kind;
    out[1] = (uint8_t)(proof->depth >> 8);
    out[2] = (uint8_t)proof->depth;
    pos = 3;
    memcpy(out + pos, proof->bitmap, bm);
    pos += bm;
    memcpy(out + pos, proof->siblings, (size_t)proof->n_siblings * HB);
    pos += (size_t)proof->n_siblings * HB;
    if (proof->kind == SOTTO_PT_PROOF_ABSENT_LEAF) {
        memcpy(out + pos, proof->other_index, IB);
        memcpy(out + pos + IB, proof->other_value, VB);
        pos += IB + VB;
    }
    *out_len = pos;
    return SOTTO_OK;
}

int sotto_pt_proof_parse(const uint8_t *in, size_t len, sotto_pt_proof *proof)
{
    size_t bm, pos, tail;
    unsigned count = 0;

    if (proof == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    memset(proof, 0, sizeof *proof);
    if (in == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    if (len < 3)
        return SOTTO_ERR_INVALID_MESSAGE;
    proof->kind = in[0];
    proof->depth = (uint16_t)((in[1] << 8) | in[2]);
    if (proof->kind < SOTTO_PT_PROOF_PRESENT || proof->kind > SOTTO_PT_PROOF_ABSENT_LEAF ||
        proof->depth > SOTTO_PT_DEPTH)
        goto bad;
    bm = (proof->depth + 7u) / 8u;
    if (len - 3 < bm)
        goto bad;
    memcpy(proof->bitmap, in + 3, bm);
    for (unsigned k = 0; k < bm * 8; k++)
        count += (unsigned)bitmap_bit(proof->bitmap, k);
    proof->n_siblings = (uint16_t)count;
    pos = 3 + bm;
    tail = proof->kind == SOTTO_PT_PROOF_ABSENT_LEAF ? IB + VB : 0;
    if (len - pos < (size_t)count * HB + tail)
        goto bad;
    memcpy(proof->siblings, in + pos, (size_t)count * HB);
    if (!proof_well_formed(proof))
        goto bad;
    pos += (size_t)count * HB;
    if (tail != 0) {
        memcpy(proof->other_index, in + pos, IB);
        memcpy(proof->other_value, in + pos + IB, VB);
        pos += tail;
    }
    if (pos != len) {
        memset(proof, 0, sizeof *proof);
        return SOTTO_ERR_TRAILING_DATA;
    }
    return SOTTO_OK;
bad:
    memset(proof, 0, sizeof *proof);
    return SOTTO_ERR_INVALID_MESSAGE;
}

/* ------------------------------------------------------------------------ */
/* The in-memory tree                                                       */
/* ------------------------------------------------------------------------ */

static void *arena_alloc(sotto_prefix_tree *t, size_t n)
{
    struct chunk *c = t->chunks;

    n = (n + 15u) & ~(size_t)15u;
    if (c == NULL || CHUNK_BYTES - c->used < n) {
        c = malloc(sizeof *c + CHUNK_BYTES);
        if (c == NULL)
            return NULL;
        c->next = t->chunks;
        c->used = 0;
        t->chunks = c;
        t->memory += sizeof *c + CHUNK_BYTES;
    }
    c->used += n;
    return c->data + c->used - n;
}

int sotto_prefix_tree_new(sotto_prefix_tree **out)
{
    if (out == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    *out = calloc(1, sizeof **out);
    return *out == NULL ? SOTTO_ERR_NOMEM : SOTTO_OK;
}

void sotto_prefix_tree_free(sotto_prefix_tree *t)
{
    struct chunk *c, *next;

    if (t == NULL)
        return;
    for (c = t->chunks; c != NULL; c = next) {
        next = c->next;
        free(c);
    }
    free(t);
}

void sotto_kt_sha256(uint8_t out[32], const uint8_t *p, size_t n)
{
    if (sotto_sha256(out, p, n) != SOTTO_OK)
        crypto_hash_sha256(out, p, n);
}

static const uint8_t *hash_or_empty(const struct pt_node *n)
{
    return n == NULL ? EMPTY : n->hash;
}

int sotto_prefix_tree_set(sotto_prefix_tree *t, const uint8_t index[IB], const uint8_t value[VB])
{
    return sotto_pt_set_ref(t, index, value, NULL);
}

int sotto_pt_set_ref(sotto_prefix_tree *t, const uint8_t index[IB], const uint8_t value[VB],
                     const uint8_t **stored_index)
{
    struct pt_node *stack[SOTTO_PT_DEPTH + 1];
    struct pt_node *fresh[SOTTO_PT_DEPTH + 1];
    struct pt_node **slot;
    struct pt_leaf *leaf, *old;
    unsigned depth = 0, split = 0, n_fresh;

    if (t == NULL || index == NULL || value == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    slot = &t->root;
    while (*slot != NULL && !is_leaf(*slot)) {
        stack[depth] = *slot;
        slot = &(*slot)->child[bit_at(index, depth)];
        depth++;
    }
    old = (struct pt_leaf *)*slot;
    if (old != NULL && sodium_memcmp(old->index, index, IB) == 0) {
        /* update in place */
        memcpy(old->value, value, VB);
        leaf_hash(old->n.hash, index, value);
        if (stored_index != NULL)
            *stored_index = old->index;
    } else {
        if (old != NULL) {
            /* split at the first bit where the two indices differ (>= depth:
             * both took the same path so far) */
            split = depth;
            while (split < SOTTO_PT_DEPTH - 1 && bit_at(old->index, split) == bit_at(index, split))
                split++;
        }
        /* allocate everything first, so a failure leaves the tree as it was */
        n_fresh = old != NULL ? split - depth + 1 : 0;
        leaf = arena_alloc(t, sizeof *leaf);
        for (unsigned i = 0; leaf != NULL && i < n_fresh; i++) {
            fresh[i] = arena_alloc(t, sizeof(struct pt_node));
            if (fresh[i] == NULL)
                leaf = NULL;
        }
        if (leaf == NULL)
            return SOTTO_ERR_NOMEM; /* chunks already taken stay for later */
        memset(leaf, 0, sizeof *leaf);
        memcpy(leaf->index, index, IB);
        memcpy(leaf->value, value, VB);
        leaf_hash(leaf->n.hash, index, value);
        for (unsigned i = 0; i < n_fresh; i++) {
            struct pt_node *n = fresh[i];
            memset(n, 0, sizeof *n);
            *slot = n;
            stack[depth] = n;
            if (depth == split) {
                n->child[bit_at(old->index, depth)] = &old->n;
                slot = &n->child[bit_at(index, depth)];
            } else {
                slot = &n->child[bit_at(index, depth)];
            }
            depth++;
        }
        *slot = &leaf->n;
        t->count++;
        if (stored_index != NULL)
            *stored_index = leaf->index;
    }
    while (depth > 0) {
        struct pt_node *n = stack[--depth];
        node_hash(n->hash, hash_or_empty(n->child[0]), hash_or_empty(n->child[1]));
    }
    return SOTTO_OK;
}

static const struct pt_leaf *find_leaf(const sotto_prefix_tree *t, const uint8_t index[IB])
{
    const struct pt_node *n = t->root;
    unsigned depth = 0;

    while (n != NULL && !is_leaf(n))
        n = n->child[bit_at(index, depth++)];
    if (n == NULL || sodium_memcmp(((const struct pt_leaf *)n)->index, index, IB) != 0)
        return NULL;
    return (const struct pt_leaf *)n;
}

int sotto_prefix_tree_get(const sotto_prefix_tree *t, const uint8_t index[IB], uint8_t value[VB])
{
    const struct pt_leaf *l;

    if (t == NULL || index == NULL || value == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    l = find_leaf(t, index);
    if (l == NULL)
        return SOTTO_ERR_NOT_FOUND;
    memcpy(value, l->value, VB);
    return SOTTO_OK;
}

int sotto_prefix_tree_root(const sotto_prefix_tree *t, uint8_t root[HB])
{
    if (t == NULL || root == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    memcpy(root, hash_or_empty(t->root), HB);
    return SOTTO_OK;
}

uint64_t sotto_prefix_tree_count(const sotto_prefix_tree *t)
{
    return t == NULL ? 0 : t->count;
}

size_t sotto_prefix_tree_memory(const sotto_prefix_tree *t)
{
    return t == NULL ? 0 : t->memory;
}

int sotto_prefix_tree_prove(const sotto_prefix_tree *t, const uint8_t index[IB],
                            sotto_pt_proof *proof)
{
    const struct pt_node *n;
    unsigned depth = 0;

    if (proof != NULL)
        memset(proof, 0, sizeof *proof);
    if (t == NULL || index == NULL || proof == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    n = t->root;
    while (n != NULL && !is_leaf(n)) {
        int b = bit_at(index, depth);
        const struct pt_node *sib = n->child[!b];
        if (sib != NULL) {
            proof->bitmap[depth >> 3] |= (uint8_t)(0x80u >> (depth & 7));
            memcpy(proof->siblings[proof->n_siblings++], sib->hash, HB);
        }
        n = n->child[b];
        depth++;
    }
    proof->depth = (uint16_t)depth;
    if (n == NULL) {
        proof->kind = SOTTO_PT_PROOF_ABSENT_EMPTY;
    } else {
        const struct pt_leaf *l = (const struct pt_leaf *)n;
        if (sodium_memcmp(l->index, index, IB) == 0) {
            proof->kind = SOTTO_PT_PROOF_PRESENT;
        } else {
            proof->kind = SOTTO_PT_PROOF_ABSENT_LEAF;
            memcpy(proof->other_index, l->index, IB);
            memcpy(proof->other_value, l->value, VB);
        }
    }
    return SOTTO_OK;
}

/* ------------------------------------------------------------------------ */
/* Commitments                                                              */
/* ------------------------------------------------------------------------ */

static const char COMMIT_LABEL[] = "SOTTO-KT-COMMIT-V1"; /* then a 0x00 */

static int commitment_mac(uint8_t out[SOTTO_KT_COMMITMENT_BYTES],
                          const uint8_t opening[SOTTO_KT_OPENING_BYTES], const char *username,
                          const uint8_t *value, size_t value_len)
{
    sotto_hmac_key k;
    size_t ulen;
    uint8_t ulen_b[1], vlen_b[2];
    const uint8_t *parts[5];
    size_t lens[5];
    int rc;

    if (out == NULL || opening == NULL || username == NULL || (value == NULL && value_len != 0))
        return SOTTO_ERR_INVALID_ARGUMENT;
    ulen = strnlen(username, SOTTO_KT_USERNAME_MAX_BYTES + 1);
    if (ulen == 0 || ulen > SOTTO_KT_USERNAME_MAX_BYTES ||
        value_len > SOTTO_KT_COMMIT_VALUE_MAX_BYTES)
        return SOTTO_ERR_INVALID_ARGUMENT;
    ulen_b[0] = (uint8_t)ulen;
    vlen_b[0] = (uint8_t)(value_len >> 8);
    vlen_b[1] = (uint8_t)value_len;
    parts[0] = (const uint8_t *)COMMIT_LABEL;
    lens[0] = sizeof COMMIT_LABEL; /* with its terminating 0x00 */
    parts[1] = ulen_b;
    lens[1] = 1;
    parts[2] = (const uint8_t *)username;
    lens[2] = ulen;
    parts[3] = vlen_b;
    lens[3] = 2;
    parts[4] = value;
    lens[4] = value_len;
    rc = sotto_hmac_key_init(&k, opening, SOTTO_KT_OPENING_BYTES);
    if (rc == SOTTO_OK)
        rc = sotto_hmac_key_mac(&k, parts, lens, 5, out);
    sotto_hmac_key_wipe(&k);
    return rc;
}

int sotto_kt_commit(uint8_t commitment[SOTTO_KT_COMMITMENT_BYTES],
                    uint8_t opening[SOTTO_KT_OPENING_BYTES], const char *username,
                    const uint8_t *value, size_t value_len)
{
    int rc;

    if (commitment == NULL || opening == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    sotto_random_buf(opening, SOTTO_KT_OPENING_BYTES);
    rc = commitment_mac(commitment, opening, username, value, value_len);
    if (rc != SOTTO_OK) {
        sodium_memzero(commitment, SOTTO_KT_COMMITMENT_BYTES);
        sodium_memzero(opening, SOTTO_KT_OPENING_BYTES);
    }
    return rc;
}

int sotto_kt_verify_commitment(const uint8_t commitment[SOTTO_KT_COMMITMENT_BYTES],
                               const uint8_t opening[SOTTO_KT_OPENING_BYTES], const char *username,
                               const uint8_t *value, size_t value_len)
{
    uint8_t mac[SOTTO_KT_COMMITMENT_BYTES];
    int rc;

    if (commitment == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    rc = commitment_mac(mac, opening, username, value, value_len);
    if (rc == SOTTO_OK && sodium_memcmp(mac, commitment, SOTTO_KT_COMMITMENT_BYTES) != 0)
        rc = SOTTO_ERR_COMMITMENT_INVALID;
    sodium_memzero(mac, sizeof mac);
    return rc;
}
