/*
 * server/store/store_op.h -- one queued write operation: its copied inputs
 * and its result. Shared by the front end (store.c) and the backends only;
 * the network layer never sees it.
 *
 * Ownership: the op and everything its pointers reach are owned by the op
 * and released by sottod_store_op_free() after the completion ran. Backends
 * may attach result memory (bundles) to op->out_bundles; it is freed there
 * too.
 */
#ifndef SOTTOD_STORE_OP_H
#define SOTTOD_STORE_OP_H

#include "store/store.h"

struct sottod_store_op {
    struct sottod_store_op *next;
    sottod_store_done_fn done;
    void *arg;
    sottod_store_result res; /* res.type is the op type */

    /* inputs (which ones are used depends on res.type) */
    char username[SOTTOD_USERNAME_MAX + 1];
    int64_t account_id;
    sottod_addr addr;
    bool skip_otpk; /* BUNDLE_TAKE: hand out no one-time prekey */
    uint32_t max_devices;
    sottod_device_new dev;
    uint8_t invite_hash[32]; /* SHA-256 of the invite token */
    bool has_invite;
    int64_t expires_at;
    uint32_t key_id;
    uint8_t pub[SOTTOD_PUBLIC_KEY_BYTES];
    uint8_t sig[SOTTOD_SIGNATURE_BYTES];
    sottod_attachment att;
    size_t n;                     /* number of keys / envelopes / ids */
    sottod_one_time_prekey *keys; /* n, owned */
    sottod_envelope_in *envs;     /* n, owned; bodies point into env_bodies */
    uint8_t *env_bodies;          /* owned */
    uint8_t *ids;                 /* n * 16, owned */
    int list_kind;                /* DEVICE_LIST_CHANGE: SOTTOD_LIST_* */
    uint64_t prev_version;        /* DEVICE_LIST_CHANGE: expected stored version */
    sottod_device_list_rec *list; /* owned; NULL = none */
    sottod_kt_log_row *kt_rows;   /* KT_APPEND: n rows, owned */
    sottod_kt_entry *kt_entries;  /* KT_APPEND: kt_n_entries, owned (openings: wiped) */
    size_t kt_n_entries;
    sottod_kt_head_rec kt_head;   /* KT_APPEND / KT_HEAD_ADD */
    sottod_kt_cosig_rec kt_cosig; /* KT_COSIG_ADD */
    uint8_t *blob;                /* PROFILE_SET: the ciphertext, owned */
    size_t blob_len;

    /* backend-allocated result memory */
    sottod_bundle *out_bundles;       /* owned, freed with the op */
    sottod_device_list_rec *out_list; /* owned (BUNDLE_TAKE), freed with the op */
};

/* Kinds of SOTTOD_OP_DEVICE_LIST_CHANGE (and account_create with a list). */
enum { SOTTOD_LIST_ADD = 1, SOTTOD_LIST_REMOVE, SOTTOD_LIST_RECOVER, SOTTOD_LIST_SET };

void sottod_store_op_free(sottod_store_op *op);

/* Opens the SQLite backend (store_sqlite.c). On failure a one-line reason
 * goes to why (why_cap bytes; why may be NULL). */
int sottod_store_sqlite_open(const sottod_store_config *cfg, sottod_store *front,
                             sottod_store_backend **out, char *why, size_t why_cap);

/* Formats unix seconds `t` as "YYYY-MM-DD" (UTC) into out. */
void sottod_store_date(int64_t t, char out[SOTTOD_DATE_BYTES]);

#endif /* SOTTOD_STORE_OP_H */
