/*
 * lib/kt/kt.c -- key transparency tree heads, countersignatures, log leaves
 * and search results (sotto/kt.h, docs/protocol.md "Tree heads, auditors and
 * search results").
 */
#include "sotto/kt.h"

#include <string.h>

#include <sodium.h>

#include "common/buf.h"
#include "crypto/crypto.h"
#include "kt/kt_internal.h"

#define HB SOTTO_MERKLE_HASH_BYTES

static const char HEAD_LABEL[] = "SOTTO-KT-TREE-HEAD-V1";
static const char AUDIT_LABEL[] = "SOTTO-KT-AUDIT-V1";
static const char LEAF_LABEL[] = "SOTTO-KT-LEAF-V1";
static const char COMMIT_LABEL[] = "SOTTO-KT-COMMIT-V1";
static const char LEAF_VALUE_LABEL[] = "SOTTO-KT-LEAF-VALUE-V1";

#define AUDIT_STATEMENT_BYTES (sizeof AUDIT_LABEL + SOTTO_KT_HEAD_STATEMENT_BYTES)

static void put_u64be(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t get_u64be(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

static int size_ok(uint64_t size)
{
    return size >= 1 && size <= SOTTO_MERKLE_MAX_SIZE;
}

/* ------------------------------------------------------------------------ */
/* Tree heads                                                               */
/* ------------------------------------------------------------------------ */

int sotto_kt_head_statement(uint8_t out[SOTTO_KT_HEAD_STATEMENT_BYTES],
                            const sotto_kt_tree_head *head)
{
    _Static_assert(sizeof HEAD_LABEL + 8 + HB + 8 == SOTTO_KT_HEAD_STATEMENT_BYTES,
                   "statement size");
    if (out == NULL || head == NULL || !size_ok(head->size))
        return SOTTO_ERR_INVALID_ARGUMENT;
    memcpy(out, HEAD_LABEL, sizeof HEAD_LABEL); /* with its 0x00 */
    put_u64be(out + sizeof HEAD_LABEL, head->size);
    memcpy(out + sizeof HEAD_LABEL + 8, head->root, HB);
    put_u64be(out + sizeof HEAD_LABEL + 8 + HB, head->timestamp_ms);
    return SOTTO_OK;
}

int sotto_kt_head_sign(sotto_kt_tree_head *head, const uint8_t sk[SOTTO_KT_SIGN_SECRET_KEY_BYTES])
{
    uint8_t st[SOTTO_KT_HEAD_STATEMENT_BYTES];
    int rc;

    if (sk == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    rc = sotto_kt_head_statement(st, head);
    if (rc != SOTTO_OK)
        return rc;
    if (crypto_sign_detached(head->signature, NULL, st, sizeof st, sk) != 0)
        return SOTTO_ERR_CRYPTO;
    return SOTTO_OK;
}

int sotto_kt_head_verify(const sotto_kt_tree_head *head,
                         const uint8_t pk[SOTTO_KT_SIGN_PUBLIC_KEY_BYTES])
{
    uint8_t st[SOTTO_KT_HEAD_STATEMENT_BYTES];
    int rc;

    if (pk == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    rc = sotto_kt_head_statement(st, head);
    if (rc != SOTTO_OK)
        return rc;
    if (crypto_sign_verify_detached(head->signature, st, sizeof st, pk) != 0)
        return SOTTO_ERR_INVALID_SIGNATURE;
    return SOTTO_OK;
}

int sotto_kt_head_encode(const sotto_kt_tree_head *head, uint8_t out[SOTTO_KT_HEAD_BYTES])
{
    if (out == NULL || head == NULL || !size_ok(head->size))
        return SOTTO_ERR_INVALID_ARGUMENT;
    put_u64be(out, head->size);
    memcpy(out + 8, head->root, HB);
    put_u64be(out + 8 + HB, head->timestamp_ms);
    memcpy(out + 16 + HB, head->signature, SOTTO_KT_SIGNATURE_BYTES);
    return SOTTO_OK;
}

/* Decodes the fixed 112 bytes at p (form only). */
static int head_decode(const uint8_t *p, sotto_kt_tree_head *h)
{
    h->size = get_u64be(p);
    if (!size_ok(h->size))
        return SOTTO_ERR_INVALID_MESSAGE;
    memcpy(h->root, p + 8, HB);
    h->timestamp_ms = get_u64be(p + 8 + HB);
    memcpy(h->signature, p + 16 + HB, SOTTO_KT_SIGNATURE_BYTES);
    return SOTTO_OK;
}

int sotto_kt_head_parse(const uint8_t *in, size_t len,
                        const uint8_t pk[SOTTO_KT_SIGN_PUBLIC_KEY_BYTES], sotto_kt_tree_head *out)
{
    sotto_kt_tree_head h;
    int rc;

    if (in == NULL || pk == NULL || out == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    if (len < SOTTO_KT_HEAD_BYTES)
        return SOTTO_ERR_INVALID_MESSAGE;
    rc = head_decode(in, &h);
    if (rc != SOTTO_OK)
        return rc;
    if (len > SOTTO_KT_HEAD_BYTES)
        return SOTTO_ERR_TRAILING_DATA;
    rc = sotto_kt_head_verify(&h, pk);
    if (rc != SOTTO_OK)
        return rc;
    *out = h;
    return SOTTO_OK;
}

/* ------------------------------------------------------------------------ */
/* Countersignatures                                                        */
/* ------------------------------------------------------------------------ */

/* Order of auditor public keys on the wire (public values, plain memcmp). */
static int pk_order(const uint8_t a[SOTTO_KT_SIGN_PUBLIC_KEY_BYTES],
                    const uint8_t b[SOTTO_KT_SIGN_PUBLIC_KEY_BYTES])
{
    return memcmp(a, b, SOTTO_KT_SIGN_PUBLIC_KEY_BYTES);
}

static int audit_statement(uint8_t out[AUDIT_STATEMENT_BYTES], const sotto_kt_tree_head *head)
{
    memcpy(out, AUDIT_LABEL, sizeof AUDIT_LABEL);
    return sotto_kt_head_statement(out + sizeof AUDIT_LABEL, head);
}

int sotto_kt_cosign(uint8_t sig[SOTTO_KT_SIGNATURE_BYTES], const sotto_kt_tree_head *head,
                    const uint8_t sk[SOTTO_KT_SIGN_SECRET_KEY_BYTES])
{
    uint8_t st[AUDIT_STATEMENT_BYTES];
    int rc;

    if (sig == NULL || sk == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    rc = audit_statement(st, head);
    if (rc != SOTTO_OK)
        return rc;
    if (crypto_sign_detached(sig, NULL, st, sizeof st, sk) != 0)
        return SOTTO_ERR_CRYPTO;
    return SOTTO_OK;
}

int sotto_kt_cosig_verify(const uint8_t sig[SOTTO_KT_SIGNATURE_BYTES],
                          const sotto_kt_tree_head *head,
                          const uint8_t auditor_pk[SOTTO_KT_SIGN_PUBLIC_KEY_BYTES])
{
    uint8_t st[AUDIT_STATEMENT_BYTES];
    int rc;

    if (sig == NULL || auditor_pk == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    rc = audit_statement(st, head);
    if (rc != SOTTO_OK)
        return rc;
    if (crypto_sign_verify_detached(sig, st, sizeof st, auditor_pk) != 0)
        return SOTTO_ERR_INVALID_SIGNATURE;
    return SOTTO_OK;
}

int sotto_kt_audited_head_add(sotto_kt_audited_head *ah,
                              const uint8_t auditor_pk[SOTTO_KT_SIGN_PUBLIC_KEY_BYTES],
                              const uint8_t sig[SOTTO_KT_SIGNATURE_BYTES])
{
    size_t i;
    int c = 1;

    if (ah == NULL || auditor_pk == NULL || sig == NULL || ah->n_cosigs > SOTTO_KT_MAX_AUDITORS)
        return SOTTO_ERR_INVALID_ARGUMENT;
    for (i = 0; i < ah->n_cosigs; i++) {
        c = pk_order(ah->cosigs[i].auditor_pk, auditor_pk);
        if (c >= 0)
            break;
    }
    if (i < ah->n_cosigs && c == 0) {
        memcpy(ah->cosigs[i].signature, sig, SOTTO_KT_SIGNATURE_BYTES);
        return SOTTO_OK;
    }
    if (ah->n_cosigs == SOTTO_KT_MAX_AUDITORS)
        return SOTTO_ERR_BUFFER_TOO_SMALL;
    memmove(&ah->cosigs[i + 1], &ah->cosigs[i], (ah->n_cosigs - i) * sizeof ah->cosigs[0]);
    memcpy(ah->cosigs[i].auditor_pk, auditor_pk, SOTTO_KT_SIGN_PUBLIC_KEY_BYTES);
    memcpy(ah->cosigs[i].signature, sig, SOTTO_KT_SIGNATURE_BYTES);
    ah->n_cosigs++;
    return SOTTO_OK;
}

int sotto_kt_audited_head_encode(const sotto_kt_audited_head *ah, uint8_t *out, size_t cap,
                                 size_t *out_len)
{
    uint8_t head[SOTTO_KT_HEAD_BYTES];
    sotto_wbuf w;
    int rc;

    if (out_len != NULL)
        *out_len = 0;
    if (ah == NULL || out == NULL || out_len == NULL || ah->n_cosigs > SOTTO_KT_MAX_AUDITORS)
        return SOTTO_ERR_INVALID_ARGUMENT;
    for (size_t i = 1; i < ah->n_cosigs; i++)
        if (pk_order(ah->cosigs[i - 1].auditor_pk, ah->cosigs[i].auditor_pk) >= 0)
            return SOTTO_ERR_INVALID_ARGUMENT;
    rc = sotto_kt_head_encode(&ah->head, head);
    if (rc != SOTTO_OK)
        return rc;
    if (cap < SOTTO_KT_HEAD_BYTES + 1 + (size_t)ah->n_cosigs * SOTTO_KT_COSIG_BYTES)
        return SOTTO_ERR_BUFFER_TOO_SMALL;
    sotto_wbuf_init_fixed(&w, out, cap);
    sotto_wbuf_put(&w, head, sizeof head);
    sotto_wbuf_put_u8(&w, ah->n_cosigs);
    for (size_t i = 0; i < ah->n_cosigs; i++) {
        sotto_wbuf_put(&w, ah->cosigs[i].auditor_pk, SOTTO_KT_SIGN_PUBLIC_KEY_BYTES);
        sotto_wbuf_put(&w, ah->cosigs[i].signature, SOTTO_KT_SIGNATURE_BYTES);
    }
    rc = sotto_wbuf_error(&w);
    if (rc != SOTTO_OK)
        return rc;
    *out_len = w.len;
    return SOTTO_OK;
}

static int audited_head_parse(const uint8_t *in, size_t len, sotto_kt_audited_head *out)
{
    sotto_rbuf r;
    const uint8_t *p;
    int rc;

    sotto_rbuf_init(&r, in, len);
    rc = sotto_rbuf_get_ptr(&r, SOTTO_KT_HEAD_BYTES, &p);
    if (rc != SOTTO_OK)
        return rc;
    rc = head_decode(p, &out->head);
    if (rc != SOTTO_OK)
        return rc;
    rc = sotto_rbuf_get_u8(&r, &out->n_cosigs);
    if (rc != SOTTO_OK)
        return rc;
    if (out->n_cosigs > SOTTO_KT_MAX_AUDITORS)
        return SOTTO_ERR_INVALID_MESSAGE;
    for (size_t i = 0; i < out->n_cosigs; i++) {
        rc = sotto_rbuf_get_copy(&r, out->cosigs[i].auditor_pk, SOTTO_KT_SIGN_PUBLIC_KEY_BYTES);
        if (rc == SOTTO_OK)
            rc = sotto_rbuf_get_copy(&r, out->cosigs[i].signature, SOTTO_KT_SIGNATURE_BYTES);
        if (rc != SOTTO_OK)
            return rc;
        if (i > 0 && pk_order(out->cosigs[i - 1].auditor_pk, out->cosigs[i].auditor_pk) >= 0)
            return SOTTO_ERR_INVALID_MESSAGE;
    }
    if (sotto_rbuf_remaining(&r) != 0)
        return SOTTO_ERR_TRAILING_DATA;
    return SOTTO_OK;
}

int sotto_kt_audited_head_parse(const uint8_t *in, size_t len, sotto_kt_audited_head *out)
{
    int rc;

    if (out == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    memset(out, 0, sizeof *out);
    if (in == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    rc = audited_head_parse(in, len, out);
    if (rc != SOTTO_OK)
        memset(out, 0, sizeof *out);
    return rc;
}

int sotto_kt_audited_head_check(const sotto_kt_audited_head *ah,
                                const uint8_t server_pk[SOTTO_KT_SIGN_PUBLIC_KEY_BYTES],
                                const uint8_t (*auditors)[SOTTO_KT_SIGN_PUBLIC_KEY_BYTES],
                                size_t n_auditors, uint64_t now_ms, uint64_t max_age_ms)
{
    uint64_t ts;
    int rc;

    if (ah == NULL || server_pk == NULL || (auditors == NULL && n_auditors != 0) ||
        n_auditors > SOTTO_KT_MAX_AUDITORS || ah->n_cosigs > SOTTO_KT_MAX_AUDITORS)
        return SOTTO_ERR_INVALID_ARGUMENT;
    rc = sotto_kt_head_verify(&ah->head, server_pk);
    if (rc != SOTTO_OK)
        return rc;
    ts = ah->head.timestamp_ms;
    if (ts > now_ms) {
        if (ts - now_ms > SOTTO_KT_MAX_CLOCK_SKEW_MS)
            return SOTTO_ERR_KT_HEAD_STALE;
    } else if (now_ms - ts > max_age_ms) {
        return SOTTO_ERR_KT_HEAD_STALE;
    }
    for (size_t a = 0; a < n_auditors; a++) {
        size_t i;

        for (i = 0; i < ah->n_cosigs; i++)
            if (sodium_memcmp(ah->cosigs[i].auditor_pk, auditors[a],
                              SOTTO_KT_SIGN_PUBLIC_KEY_BYTES) == 0)
                break;
        if (i == ah->n_cosigs)
            return SOTTO_ERR_KT_AUDITOR_MISSING;
        rc = sotto_kt_cosig_verify(ah->cosigs[i].signature, &ah->head, auditors[a]);
        if (rc != SOTTO_OK)
            return rc;
    }
    return SOTTO_OK;
}

int sotto_kt_head_verify_consistency(const sotto_kt_tree_head *older,
                                     const sotto_kt_tree_head *newer, const uint8_t *proof,
                                     size_t proof_len)
{
    uint8_t path[SOTTO_MERKLE_MAX_PROOF][HB];
    size_t path_len = 0;
    int rc;

    if (older == NULL || newer == NULL || proof == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    rc = sotto_merkle_proof_parse(proof, proof_len, path, &path_len);
    if (rc != SOTTO_OK)
        return rc;
    if (newer->timestamp_ms < older->timestamp_ms)
        return SOTTO_ERR_PROOF_INVALID;
    return sotto_merkle_verify_consistency(older->size, newer->size, older->root, newer->root,
                                           path_len ? (const uint8_t(*)[HB])path : NULL, path_len);
}

/* ------------------------------------------------------------------------ */
/* Log leaves                                                               */
/* ------------------------------------------------------------------------ */

int sotto_kt_leaf_data(uint8_t out[SOTTO_KT_LEAF_BYTES],
                       const uint8_t prefix_root[SOTTO_PT_HASH_BYTES], uint64_t timestamp_ms)
{
    _Static_assert(sizeof LEAF_LABEL + SOTTO_PT_HASH_BYTES + 8 == SOTTO_KT_LEAF_BYTES, "leaf size");
    if (out == NULL || prefix_root == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    memcpy(out, LEAF_LABEL, sizeof LEAF_LABEL);
    memcpy(out + sizeof LEAF_LABEL, prefix_root, SOTTO_PT_HASH_BYTES);
    put_u64be(out + sizeof LEAF_LABEL + SOTTO_PT_HASH_BYTES, timestamp_ms);
    return SOTTO_OK;
}

int sotto_kt_leaf_hash(uint8_t out[HB], const uint8_t prefix_root[SOTTO_PT_HASH_BYTES],
                       uint64_t timestamp_ms)
{
    uint8_t data[SOTTO_KT_LEAF_BYTES];
    int rc;

    if (out == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    rc = sotto_kt_leaf_data(data, prefix_root, timestamp_ms);
    if (rc != SOTTO_OK)
        return rc;
    return sotto_merkle_leaf_hash(out, data, sizeof data);
}

/* ------------------------------------------------------------------------ */
/* Log updates and leaf values                                              */
/* ------------------------------------------------------------------------ */

int sotto_kt_update_encode(const sotto_kt_update *u, uint8_t out[SOTTO_KT_UPDATE_BYTES])
{
    _Static_assert(8 + SOTTO_PT_INDEX_BYTES + 8 + SOTTO_KT_COMMITMENT_BYTES ==
                       SOTTO_KT_UPDATE_BYTES,
                   "update size");
    if (u == NULL || out == NULL || u->counter == 0)
        return SOTTO_ERR_INVALID_ARGUMENT;
    put_u64be(out, u->timestamp_ms);
    memcpy(out + 8, u->index, SOTTO_PT_INDEX_BYTES);
    put_u64be(out + 8 + SOTTO_PT_INDEX_BYTES, u->counter);
    memcpy(out + 16 + SOTTO_PT_INDEX_BYTES, u->commitment, SOTTO_KT_COMMITMENT_BYTES);
    return SOTTO_OK;
}

int sotto_kt_update_parse(const uint8_t *in, size_t len, sotto_kt_update *out)
{
    if (out == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    memset(out, 0, sizeof *out);
    if (in == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    if (len < SOTTO_KT_UPDATE_BYTES)
        return SOTTO_ERR_INVALID_MESSAGE;
    if (len > SOTTO_KT_UPDATE_BYTES)
        return SOTTO_ERR_TRAILING_DATA;
    if (get_u64be(in + 8 + SOTTO_PT_INDEX_BYTES) == 0)
        return SOTTO_ERR_INVALID_MESSAGE;
    out->timestamp_ms = get_u64be(in);
    memcpy(out->index, in + 8, SOTTO_PT_INDEX_BYTES);
    out->counter = get_u64be(in + 8 + SOTTO_PT_INDEX_BYTES);
    memcpy(out->commitment, in + 16 + SOTTO_PT_INDEX_BYTES, SOTTO_KT_COMMITMENT_BYTES);
    return SOTTO_OK;
}

int sotto_kt_leaf_value(uint8_t out[SOTTO_PT_VALUE_BYTES], uint64_t counter,
                        const uint8_t commitment[SOTTO_KT_COMMITMENT_BYTES])
{
    uint8_t buf[sizeof LEAF_VALUE_LABEL + 8 + SOTTO_KT_COMMITMENT_BYTES];

    if (out == NULL || commitment == NULL || counter == 0)
        return SOTTO_ERR_INVALID_ARGUMENT;
    memcpy(buf, LEAF_VALUE_LABEL, sizeof LEAF_VALUE_LABEL); /* with its 0x00 */
    put_u64be(buf + sizeof LEAF_VALUE_LABEL, counter);
    memcpy(buf + sizeof LEAF_VALUE_LABEL + 8, commitment, SOTTO_KT_COMMITMENT_BYTES);
    sotto_kt_sha256(out, buf, sizeof buf);
    return SOTTO_OK;
}

int sotto_kt_device_list_hash(uint8_t out[32], const uint8_t *list, size_t len)
{
    if (out == NULL || (list == NULL && len != 0))
        return SOTTO_ERR_INVALID_ARGUMENT;
    crypto_hash_sha256(out, list, len);
    return SOTTO_OK;
}

/* ------------------------------------------------------------------------ */
/* Values and search results                                                */
/* ------------------------------------------------------------------------ */

int sotto_kt_value_encode(const sotto_kt_value *v, uint8_t out[SOTTO_KT_VALUE_BYTES])
{
    if (v == NULL || out == NULL || v->version == 0)
        return SOTTO_ERR_INVALID_ARGUMENT;
    memcpy(out, v->account_key, SOTTO_KT_ACCOUNT_KEY_BYTES);
    memcpy(out + SOTTO_KT_ACCOUNT_KEY_BYTES, v->device_list_hash, 32);
    put_u64be(out + SOTTO_KT_ACCOUNT_KEY_BYTES + 32, v->version);
    return SOTTO_OK;
}

/* The formula of sotto_kt_commit (docs/protocol.md "Commitment") with a
 * given opening. */
int sotto_kt_value_commitment(uint8_t out[SOTTO_KT_COMMITMENT_BYTES],
                              const uint8_t opening[SOTTO_KT_OPENING_BYTES], const char *username,
                              const sotto_kt_value *v)
{
    uint8_t value[SOTTO_KT_VALUE_BYTES];
    uint8_t ulen_b[1], vlen_b[2] = {0, SOTTO_KT_VALUE_BYTES};
    const uint8_t *parts[5];
    size_t lens[5], ulen;
    sotto_hmac_key k;
    int rc;

    if (out == NULL || opening == NULL || username == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    ulen = strnlen(username, SOTTO_KT_USERNAME_MAX_BYTES + 1);
    if (ulen == 0 || ulen > SOTTO_KT_USERNAME_MAX_BYTES)
        return SOTTO_ERR_INVALID_ARGUMENT;
    rc = sotto_kt_value_encode(v, value);
    if (rc != SOTTO_OK)
        return rc;
    ulen_b[0] = (uint8_t)ulen;
    parts[0] = (const uint8_t *)COMMIT_LABEL;
    lens[0] = sizeof COMMIT_LABEL; /* with its 0x00 */
    parts[1] = ulen_b;
    lens[1] = 1;
    parts[2] = (const uint8_t *)username;
    lens[2] = ulen;
    parts[3] = vlen_b;
    lens[3] = 2;
    parts[4] = value;
    lens[4] = sizeof value;
    rc = sotto_hmac_key_init(&k, opening, SOTTO_KT_OPENING_BYTES);
    if (rc == SOTTO_OK)
        rc = sotto_hmac_key_mac(&k, parts, lens, 5, out);
    sotto_hmac_key_wipe(&k);
    return rc;
}

int sotto_kt_search_result_encode(const sotto_kt_search_result *r, uint8_t *out, size_t cap,
                                  size_t *out_len)
{
    uint8_t value[SOTTO_KT_VALUE_BYTES];
    size_t n = 0, pt_len = 0, log_len = 0;
    uint8_t *p;
    int rc;

    if (out_len != NULL)
        *out_len = 0;
    if (r == NULL || out == NULL || out_len == NULL || r->log_path_len > SOTTO_MERKLE_MAX_PROOF ||
        r->counter == 0)
        return SOTTO_ERR_INVALID_ARGUMENT;
    rc = sotto_kt_value_encode(&r->value, value);
    if (rc != SOTTO_OK)
        return rc;
    if (cap < SOTTO_KT_SEARCH_FIXED_BYTES)
        return SOTTO_ERR_BUFFER_TOO_SMALL;
    p = out;
    memcpy(p, r->vrf_proof, SOTTO_VRF_PROOF_BYTES);
    p += SOTTO_VRF_PROOF_BYTES;
    memcpy(p, r->opening, SOTTO_KT_OPENING_BYTES);
    p += SOTTO_KT_OPENING_BYTES;
    memcpy(p, value, sizeof value);
    p += sizeof value;
    put_u64be(p, r->counter);
    p += 8;
    memcpy(p, r->prefix_root, SOTTO_PT_HASH_BYTES);
    p += SOTTO_PT_HASH_BYTES;
    put_u64be(p, r->leaf_timestamp_ms);
    p += 8;
    n = SOTTO_KT_SEARCH_FIXED_BYTES;
    rc = sotto_pt_proof_encode(&r->pt_proof, out + n, cap - n, &pt_len);
    if (rc != SOTTO_OK)
        return rc;
    p[0] = (uint8_t)(pt_len >> 8);
    p[1] = (uint8_t)pt_len;
    n += pt_len;
    rc = sotto_merkle_proof_encode(r->log_path_len ? (const uint8_t(*)[HB])r->log_path : NULL,
                                   r->log_path_len, out + n, cap - n, &log_len);
    if (rc != SOTTO_OK)
        return rc;
    *out_len = n + log_len;
    return SOTTO_OK;
}

static int search_parse(const uint8_t *in, size_t len, sotto_kt_search_result *r)
{
    sotto_rbuf b;
    const uint8_t *p, *value;
    uint8_t l[2];
    size_t pt_len, rest;
    int rc;

    sotto_rbuf_init(&b, in, len);
    rc = sotto_rbuf_get_copy(&b, r->vrf_proof, SOTTO_VRF_PROOF_BYTES);
    if (rc == SOTTO_OK)
        rc = sotto_rbuf_get_copy(&b, r->opening, SOTTO_KT_OPENING_BYTES);
    if (rc == SOTTO_OK)
        rc = sotto_rbuf_get_ptr(&b, SOTTO_KT_VALUE_BYTES, &value);
    if (rc == SOTTO_OK)
        rc = sotto_rbuf_get_u64be(&b, &r->counter);
    if (rc == SOTTO_OK)
        rc = sotto_rbuf_get_copy(&b, r->prefix_root, SOTTO_PT_HASH_BYTES);
    if (rc == SOTTO_OK)
        rc = sotto_rbuf_get_u64be(&b, &r->leaf_timestamp_ms);
    if (rc == SOTTO_OK)
        rc = sotto_rbuf_get_copy(&b, l, 2);
    if (rc != SOTTO_OK)
        return rc;
    memcpy(r->value.account_key, value, SOTTO_KT_ACCOUNT_KEY_BYTES);
    memcpy(r->value.device_list_hash, value + SOTTO_KT_ACCOUNT_KEY_BYTES, 32);
    r->value.version = get_u64be(value + SOTTO_KT_ACCOUNT_KEY_BYTES + 32);
    if (r->value.version == 0 || r->counter == 0)
        return SOTTO_ERR_INVALID_MESSAGE;
    pt_len = ((size_t)l[0] << 8) | l[1];
    rc = sotto_rbuf_get_ptr(&b, pt_len, &p);
    if (rc != SOTTO_OK)
        return rc;
    rc = sotto_pt_proof_parse(p, pt_len, &r->pt_proof);
    if (rc == SOTTO_ERR_TRAILING_DATA)
        rc = SOTTO_ERR_INVALID_MESSAGE; /* the length prefix lied */
    if (rc != SOTTO_OK)
        return rc;
    /* The log path takes the rest; its count byte fixes its length. */
    rest = sotto_rbuf_remaining(&b);
    rc = sotto_rbuf_get_ptr(&b, rest, &p);
    if (rc != SOTTO_OK)
        return rc;
    return sotto_merkle_proof_parse(p, rest, r->log_path, &r->log_path_len);
}

int sotto_kt_search_result_parse(const uint8_t *in, size_t len, sotto_kt_search_result *r)
{
    int rc;

    if (r == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    memset(r, 0, sizeof *r);
    if (in == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    rc = search_parse(in, len, r);
    if (rc != SOTTO_OK)
        memset(r, 0, sizeof *r);
    return rc;
}

static int search_verify(const uint8_t vrf_pk[SOTTO_VRF_PUBLIC_KEY_BYTES], const char *username,
                         const sotto_kt_search_result *r, const sotto_kt_tree_head *head)
{
    uint8_t beta[SOTTO_VRF_OUTPUT_BYTES], commitment[SOTTO_KT_COMMITMENT_BYTES], leaf[HB];
    uint8_t leaf_value[SOTTO_PT_VALUE_BYTES];
    size_t ulen;
    int rc;

    ulen = strnlen(username, SOTTO_KT_USERNAME_MAX_BYTES + 1);
    if (ulen == 0 || ulen > SOTTO_KT_USERNAME_MAX_BYTES || !size_ok(head->size) ||
        r->log_path_len > SOTTO_MERKLE_MAX_PROOF)
        return SOTTO_ERR_INVALID_ARGUMENT;
    /* 1. VRF: index = beta[0..32) */
    rc = sotto_vrf_verify(beta, vrf_pk, (const uint8_t *)username, ulen, r->vrf_proof);
    if (rc != SOTTO_OK)
        return rc;
    /* 2. commitment recomputed from the opening and the value */
    rc = sotto_kt_value_commitment(commitment, r->opening, username, &r->value);
    if (rc != SOTTO_OK)
        return rc == SOTTO_ERR_INVALID_ARGUMENT ? SOTTO_ERR_PROOF_INVALID : rc;
    /* 3. prefix tree: index -> leaf_value(counter, commitment) under
     * prefix_root */
    if (r->counter == 0)
        return SOTTO_ERR_PROOF_INVALID;
    rc = sotto_kt_leaf_value(leaf_value, r->counter, commitment);
    if (rc != SOTTO_OK)
        return rc;
    rc = sotto_pt_verify(r->prefix_root, beta, leaf_value, &r->pt_proof);
    if (rc != SOTTO_OK)
        return rc;
    /* 4. log: the head's last leaf is (prefix_root, leaf timestamp) */
    if (r->leaf_timestamp_ms > head->timestamp_ms)
        return SOTTO_ERR_PROOF_INVALID;
    rc = sotto_kt_leaf_hash(leaf, r->prefix_root, r->leaf_timestamp_ms);
    if (rc != SOTTO_OK)
        return rc;
    return sotto_merkle_verify_inclusion(head->size - 1, head->size, leaf,
                                         r->log_path_len ? (const uint8_t(*)[HB])r->log_path : NULL,
                                         r->log_path_len, head->root);
}

int sotto_kt_search_verify(sotto_kt_value *out, const uint8_t vrf_pk[SOTTO_VRF_PUBLIC_KEY_BYTES],
                           const char *username, const sotto_kt_search_result *r,
                           const sotto_kt_tree_head *head)
{
    int rc;

    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (vrf_pk == NULL || username == NULL || r == NULL || head == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    rc = search_verify(vrf_pk, username, r, head);
    if (rc == SOTTO_OK && out != NULL)
        *out = r->value;
    return rc;
}
