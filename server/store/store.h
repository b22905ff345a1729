/*
 * server/store/store.h -- sottod's storage interface.
 *
 * BUILD (for server/CMakeLists.txt): this directory has its own
 * server/store/CMakeLists.txt defining the static library target
 * `sottod_store` (every .c file in server/store/: store.c = backend-independent
 * write queue, group commit, completions; store_sqlite.c = the SQLite backend).
 * sottod does `add_subdirectory(store)` and `target_link_libraries(sottod
 * PRIVATE sottod_store)`; include it as "store/store.h" (server/ is on the
 * include path of the target). Links: sqlite3, libsodium, jansson, Threads.
 *
 * CHANGES for E1 (04:40 UTC): added_by/add_signature in sottod_device_new,
 * sottod_device and sottod_bundle (+ auth_key in sottod_bundle);
 * sottod_store_stats_get(); bundle_take takes no one-time prekey from a
 * device that has no signed prekey (returned with has_signed_prekey false).
 *
 * WHAT IS STORED (docs/threat-model.md lists each field and why):
 *   accounts:      username, creation DATE, account public key (33 bytes,
 *                  API v2), the latest signed device list and its version,
 *                  the sealed-sender delivery token (16 bytes, v6)
 *   invites:       SHA-256 of the token (never the token), expiry
 *   devices:       device id, registration id, Ed25519 auth public key,
 *                  identity public key, signed prekey (id, public, signature),
 *                  who added it (signer device id + its Ed25519 signature),
 *                  creation DATE, last-seen DATE (no time of day), queue depth
 *   one-time prekeys: id + public key, deleted when handed out
 *   envelopes:     opaque bytes (the serialized API Envelope) per recipient
 *                  device until acked or expired; no history is kept; the
 *                  sending account's id while queued (0 = sealed, v6)
 *   attachments:   id, size, created DATE (stored as 00:00 UTC), expiry,
 *                  referenced flag (blobs are files owned by the network layer)
 * Never stored: IP addresses, private keys, plaintext, contact lists, group
 * membership, delivered messages, time of day of last connection.
 *
 * THREADING CONTRACT
 *  - One sottod_store is shared by every thread. It owns one WRITER thread
 *    and (SQLite) one read-only connection.
 *  - WRITES are asynchronous: every function marked [async] copies its
 *    inputs, queues an operation and returns at once (no disk I/O on the
 *    caller's thread). The writer thread executes queued operations in
 *    batches, one transaction per batch ("group commit"): each operation
 *    is atomic on its own (a savepoint, or statements ordered so that a
 *    refusal happens before any write), so one refused operation does not undo
 *    the others in its batch; then COMMIT. If the database itself fails in
 *    the middle of an operation, the whole batch is rolled back and every
 *    operation in it completes with SOTTOD_STORE_ERR (never half an
 *    operation). Operations execute in submission order (one FIFO for all
 *    threads), so a write whose completion ran implies every write
 *    submitted before it is committed too.
 *  - COMPLETIONS: the `done` callback of an operation runs only after the
 *    COMMIT of its batch returned (the data is durable at the configured
 *    level, see sottod_store_durability), and only on a thread that calls
 *    sottod_store_run_completions() (sottod: the event-loop thread). After a
 *    batch commits, the writer calls the wake hook (sottod_store_set_wake;
 *    sottod sets it to lws_cancel_service) from the WRITER thread; the hook
 *    must be thread-safe and must not call back into the store. The loop
 *    then calls sottod_store_run_completions().
 *  - If an [async] function returns SOTTOD_STORE_OK, its `done` is called
 *    exactly once (also on error or shutdown: status SOTTOD_STORE_CLOSED is
 *    never used for accepted operations; they are executed before close).
 *    If it returns an error, `done` is never called. `done` may be NULL.
 *    Completion callbacks may submit new operations.
 *  - The result passed to `done` and every pointer in it are valid only
 *    during the callback; copy what you keep.
 *  - READS (functions marked [sync]) run on the caller's thread against the
 *    read connection (serialised by a mutex; WAL readers never block the
 *    writer). They see every committed batch: a read issued after a
 *    completion callback ran sees that operation's effect. Reads are fast
 *    indexed lookups; envelope listing is paged.
 *  - sottod_store_close() must be called by the thread that runs
 *    completions, after the network stops submitting.
 *
 * ERRORS: every function returns SOTTOD_STORE_OK (0) or a negative
 * SOTTOD_STORE_* code; results of [async] operations carry the same codes in
 * sottod_store_result.status. Nothing about message contents, keys or
 * tokens is ever logged by the store.
 */
#ifndef SOTTOD_STORE_H
#define SOTTOD_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SOTTOD_STORE_WUR __attribute__((warn_unused_result))

/* Sizes in bytes. */
#define SOTTOD_USERNAME_MAX 64      /* longest username (bytes, no NUL) */
#define SOTTOD_AUTH_KEY_BYTES 32    /* Ed25519 public key */
#define SOTTOD_PUBLIC_KEY_BYTES 33  /* 0x05 || X25519 public key */
#define SOTTOD_SIGNATURE_BYTES 64   /* XEdDSA signature */
#define SOTTOD_ENVELOPE_ID_BYTES 16 /* random, chosen by the server */
#define SOTTOD_ATTACHMENT_ID_BYTES 16
#define SOTTOD_INVITE_MAX 128            /* longest invite token (bytes) */
#define SOTTOD_ENVELOPE_MAX (256 * 1024) /* largest stored envelope (bytes) */
#define SOTTOD_MAX_DEVICES 32            /* hard cap; the limit passed to device_add must be <= */
#define SOTTOD_DATE_BYTES 11             /* "YYYY-MM-DD" + NUL */

#define SOTTOD_DEFAULT_MAX_QUEUE 10000 /* envelopes per device queue */
#define SOTTOD_DEFAULT_MAX_BATCH 2048  /* operations per transaction */

typedef enum sottod_store_status {
    SOTTOD_STORE_OK = 0,
    SOTTOD_STORE_ERR = -1, /* backend failure (I/O, corrupt file) */
    SOTTOD_STORE_NOMEM = -2,
    SOTTOD_STORE_INVALID = -3,      /* bad argument (length, NULL, zero id) */
    SOTTOD_STORE_NOT_FOUND = -4,    /* no such account / device / envelope / attachment */
    SOTTOD_STORE_EXISTS = -5,       /* username taken, device id in use, id reused */
    SOTTOD_STORE_BAD_INVITE = -6,   /* invite token unknown, used or expired */
    SOTTOD_STORE_DEVICE_LIMIT = -7, /* account already has the maximum of devices */
    SOTTOD_STORE_QUEUE_FULL = -8,   /* a recipient device queue is full; nothing queued */
    SOTTOD_STORE_STALE = -9,        /* a recipient device does not exist; nothing queued */
    SOTTOD_STORE_CLOSED = -10,      /* the store is closing; operation refused */
    SOTTOD_STORE_CONFLICT = -11,    /* the stored device list version is not the one expected
                                       (another change committed first); nothing written */
    SOTTOD_STORE_SENDER_FULL = -12, /* one sender's cap in a device queue (queue_per_sender_max,
                                       or queue_sealed_max for sealed envelopes) is reached;
                                       nothing queued */
} sottod_store_status;

/* Short static English text for a status (never NULL). */
const char *sottod_store_strerror(int status);

/* ---- records ------------------------------------------------------------ */

/* A device's address: the account's internal id and the device id (1..). */
typedef struct sottod_addr {
    int64_t account_id;
    uint32_t device_id;
} sottod_addr;

typedef struct sottod_account {
    int64_t account_id;
    char username[SOTTOD_USERNAME_MAX + 1];
    char created[SOTTOD_DATE_BYTES]; /* "YYYY-MM-DD" (UTC) */
} sottod_account;

typedef struct sottod_device {
    uint32_t device_id;
    uint32_t registration_id;
    uint8_t auth_key[SOTTOD_AUTH_KEY_BYTES];
    uint8_t identity_key[SOTTOD_PUBLIC_KEY_BYTES];
    uint32_t added_by;                             /* 0 for device 1 */
    uint8_t add_signature[SOTTOD_SIGNATURE_BYTES]; /* all zero for device 1 */
    bool has_signed_prekey;
    uint32_t signed_prekey_id;
    uint8_t signed_prekey[SOTTOD_PUBLIC_KEY_BYTES];
    uint8_t signed_prekey_sig[SOTTOD_SIGNATURE_BYTES];
    char created[SOTTOD_DATE_BYTES];
    char last_seen[SOTTOD_DATE_BYTES]; /* "" if never seen */
    uint32_t queue_depth;              /* undelivered, unexpired-or-not envelopes */
} sottod_device;

/* Largest signed device list the store keeps (bytes); libsotto's
 * SOTTO_DEVICE_LIST_MAX_BYTES (2599) must fit. The store does not parse
 * lists: the API layer verifies them with libsotto before storing. */
#define SOTTOD_DEVICE_LIST_MAX_BYTES 4096

/* An account's key and signed device list (API v2). An account created
 * under API v1 has none (present == false, everything else zero). */
typedef struct sottod_device_list_rec {
    bool present;
    uint8_t account_key[SOTTOD_PUBLIC_KEY_BYTES]; /* 0x05 || X25519 */
    uint64_t version;                             /* >= 1 when present */
    size_t len;                                   /* bytes of list */
    uint8_t list[SOTTOD_DEVICE_LIST_MAX_BYTES];   /* statement || signature */
} sottod_device_list_rec;

/* Parameters of a new device (account_create / device_add). */
typedef struct sottod_device_new {
    uint32_t device_id; /* 0 = the store picks the lowest free id >= 2
                           (account_create always makes device 1) */
    uint32_t registration_id;
    uint8_t auth_key[SOTTOD_AUTH_KEY_BYTES];
    uint8_t identity_key[SOTTOD_PUBLIC_KEY_BYTES];
    uint32_t added_by; /* device id of the signer; account_create stores 0 */
    uint8_t add_signature[SOTTOD_SIGNATURE_BYTES]; /* account_create stores zeros */
} sottod_device_new;

typedef struct sottod_one_time_prekey {
    uint32_t id;
    uint8_t pub[SOTTOD_PUBLIC_KEY_BYTES];
} sottod_one_time_prekey;

/* One device's prekey bundle as handed out by bundle_take. A device
 * without a signed prekey is returned with has_signed_prekey false and no
 * one-time prekey is taken from it. */
typedef struct sottod_bundle {
    uint32_t device_id;
    uint32_t registration_id;
    uint8_t identity_key[SOTTOD_PUBLIC_KEY_BYTES];
    uint8_t auth_key[SOTTOD_AUTH_KEY_BYTES];
    uint32_t added_by;
    uint8_t add_signature[SOTTOD_SIGNATURE_BYTES];
    bool has_signed_prekey;
    uint32_t signed_prekey_id;
    uint8_t signed_prekey[SOTTOD_PUBLIC_KEY_BYTES];
    uint8_t signed_prekey_sig[SOTTOD_SIGNATURE_BYTES];
    bool has_one_time_prekey; /* false when the device ran out */
    sottod_one_time_prekey one_time_prekey;
    uint32_t one_time_prekeys_left; /* after this take */
} sottod_bundle;

/* An envelope to queue: `body` (body_len bytes, 1..SOTTOD_ENVELOPE_MAX) is
 * copied at submission. */
typedef struct sottod_envelope_in {
    sottod_addr to;
    uint8_t id[SOTTOD_ENVELOPE_ID_BYTES];
    int64_t expires_at; /* unix seconds */
    const uint8_t *body;
    size_t body_len;
    /* issue 12: the sender's account id while the envelope waits (column
     * envelopes.source_id, for the per-sender caps of sottod_store_config);
     * 0 = sealed (no sender known). Never handed back by a read. */
    int64_t source_id;
} sottod_envelope_in;

/* A queued envelope as listed; pointers valid only during the callback. */
typedef struct sottod_envelope {
    int64_t seq; /* queue order, strictly increasing per store */
    uint8_t id[SOTTOD_ENVELOPE_ID_BYTES];
    int64_t expires_at;
    const uint8_t *body;
    size_t body_len;
} sottod_envelope;

typedef struct sottod_attachment {
    uint8_t id[SOTTOD_ATTACHMENT_ID_BYTES];
    uint64_t size;      /* bytes of ciphertext blob */
    int64_t created_at; /* unix seconds; stored rounded down to 00:00 UTC (a date) */
    int64_t expires_at; /* unix seconds */
    bool referenced;
} sottod_attachment;

/* ---- results of [async] operations --------------------------------------- */

typedef enum sottod_store_op_type {
    SOTTOD_OP_ACCOUNT_CREATE = 1,
    SOTTOD_OP_ACCOUNT_DELETE,
    SOTTOD_OP_INVITE_CREATE,
    SOTTOD_OP_DEVICE_ADD,
    SOTTOD_OP_DEVICE_REMOVE,
    SOTTOD_OP_DEVICE_TOUCH,
    SOTTOD_OP_SIGNED_PREKEY_SET,
    SOTTOD_OP_ONE_TIME_PREKEYS_ADD,
    SOTTOD_OP_BUNDLE_TAKE,
    SOTTOD_OP_ENVELOPES_ENQUEUE,
    SOTTOD_OP_ENVELOPES_DELETE,
    SOTTOD_OP_ENVELOPES_EXPIRE,
    SOTTOD_OP_ATTACHMENT_CREATE,
    SOTTOD_OP_ATTACHMENT_UPDATE,
    SOTTOD_OP_ATTACHMENT_DELETE,
    SOTTOD_OP_BARRIER,
    SOTTOD_OP_DEVICE_LIST_CHANGE, /* device_add_listed / device_remove_listed /
                                     account_recover / device_list_set */
    SOTTOD_OP_KT_APPEND,          /* kt_append: log rows, entries and a head */
    SOTTOD_OP_KT_HEAD_ADD,        /* kt_head_add: a re-signed head */
    SOTTOD_OP_KT_COSIG_ADD,       /* kt_cosig_add: an auditor's countersignature */
    SOTTOD_OP_PROFILE_SET,        /* profile_set: an account's encrypted profile */
    SOTTOD_OP_DELIVERY_TOKEN_SET, /* delivery_token_set: sealed sender (issue 12) */
    SOTTOD_OP_SEALED_ROOT_MARK,   /* sealed_root_mark: meta 'sealed_root' */
} sottod_store_op_type;

typedef struct sottod_store_result {
    sottod_store_op_type type;
    int status; /* SOTTOD_STORE_OK or a negative code */
    union {
        /* ACCOUNT_CREATE */
        struct {
            int64_t account_id;
        } account_create;
        /* DEVICE_ADD */
        struct {
            uint32_t device_id;
        } device_add;
        /* ONE_TIME_PREKEYS_ADD */
        struct {
            uint32_t count;
        } one_time_prekeys_add; /* stored after the add */
        /* BUNDLE_TAKE: n bundles in device id order, and the account's key
         * and device list read in the same transaction (list->present
         * false for an account without one; never NULL on success) */
        struct {
            const sottod_bundle *bundles;
            size_t n;
            const sottod_device_list_rec *list;
        } bundle_take;
        /* DEVICE_LIST_CHANGE: the device added (device_add_listed,
         * account_recover) and how many devices were deleted */
        struct {
            uint32_t device_id;
            uint32_t deleted;
        } list_change;
        /* ENVELOPES_ENQUEUE: on QUEUE_FULL / STALE / SENDER_FULL, the
         * offending device; on SENDER_FULL `sealed` says which cap
         * (queue_sealed_max if true, else queue_per_sender_max) */
        struct {
            uint32_t queued;
            uint32_t duplicates;
            sottod_addr failed;
            bool sealed;
        } enqueue;
        /* ENVELOPES_DELETE / ENVELOPES_EXPIRE / ACCOUNT_DELETE / DEVICE_REMOVE */
        struct {
            uint32_t deleted;
        } deleted;
    } u;
} sottod_store_result;

typedef void (*sottod_store_done_fn)(void *arg, const sottod_store_result *res);

/* ---- opening, closing, event loop hooks ----------------------------------- */

typedef enum sottod_store_durability {
    /* Default. Every committed batch is fsynced (SQLite WAL + synchronous=FULL):
     * an acked send survives kill -9 AND power loss / kernel crash. Group
     * commit amortises the one fsync per batch over all its operations. */
    SOTTOD_DURABILITY_FULL = 0,
    /* WAL + synchronous=NORMAL: survives kill -9 of sottod (the WAL is in the
     * OS page cache) but the last batches may be lost on power loss. */
    SOTTOD_DURABILITY_PROCESS = 1,
} sottod_store_durability;

typedef struct sottod_store_config {
    const char *backend; /* "sqlite" (NULL = "sqlite") */
    const char *path;    /* sqlite: database file, created 0600 if missing
                            (unless must_exist) */
    sottod_store_durability durability;
    uint32_t max_queue; /* per device; 0 = SOTTOD_DEFAULT_MAX_QUEUE */
    uint32_t max_batch; /* ops per transaction; 0 = SOTTOD_DEFAULT_MAX_BATCH */
    /* Clock (unix seconds) for dates, expiry and TTL; NULL = time(NULL).
     * Tests inject a fake clock. Called on the writer and reader threads. */
    int64_t (*now)(void *arg);
    void *now_arg;
    /* true: never create a store. A missing database, a 0-byte file or one
     * without any table is refused with SOTTOD_STORE_NOT_FOUND and left as
     * it is. (sottod sets it unless its data directory is brand new or it
     * was started with --init, so a lost database never silently becomes
     * an empty server.) false (default): such a file is initialised. */
    bool must_exist;
    /* true: run an integrity check (SQLite PRAGMA quick_check, reads the
     * whole file once) at open and refuse a damaged file with
     * SOTTOD_STORE_ERR. */
    bool check;
    /* Optional: on failure sottod_store_open writes a one-line reason here
     * (NUL-terminated, at most why_cap bytes, naming the file and the
     * cause, e.g. "...: integrity check failed: ..."). Used only during
     * sottod_store_open. */
    char *why;
    size_t why_cap;
    /* Nothing left after delivery (issue 12): at most this many seconds
     * after a write batch committed, the writer checkpoints the WAL back
     * into the database and truncates it to 0 bytes (SQLite
     * wal_checkpoint(TRUNCATE)), so with secure_delete the page images of
     * deleted rows (acked envelopes, taken prekeys) are gone from every
     * file. 0 = SOTTOD_DEFAULT_SCRUB_DELAY_S. */
    uint32_t scrub_delay_s;
    /* Per-sender caps in one device's queue (issue 12; 0 = no cap): at most
     * queue_per_sender_max envelopes from one other account (source_id;
     * the account's own devices are not capped) and at most
     * queue_sealed_max sealed envelopes (source_id 0) wait in a device's
     * queue; past it the enqueue fails with SOTTOD_STORE_SENDER_FULL.
     * sottod sets them from its config (defaults 1000 and 5000). */
    uint32_t queue_per_sender_max;
    uint32_t queue_sealed_max;
} sottod_store_config;

#define SOTTOD_DEFAULT_SCRUB_DELAY_S 60

typedef struct sottod_store sottod_store;

/*
 * Opens (creating and migrating the schema if needed) and starts the writer
 * thread. On success *out owns the store (sottod_store_close frees it).
 */
SOTTOD_STORE_WUR int sottod_store_open(const sottod_store_config *cfg, sottod_store **out);

/*
 * Executes every accepted operation, runs all pending completions on the
 * calling thread, stops the writer and frees the store. NULL is a no-op.
 */
void sottod_store_close(sottod_store *st);

/* Sets the hook the writer calls (on its thread) after each batch commit
 * when completions are pending. Call before submitting anything. */
void sottod_store_set_wake(sottod_store *st, void (*wake)(void *arg), void *arg);

/* Runs pending completion callbacks on the calling thread; returns how many. */
size_t sottod_store_run_completions(sottod_store *st);

/* Blocks until every operation submitted before the call has committed, then
 * runs completions on the calling thread. For admin commands, tests, shutdown;
 * never from the event loop of a running server. */
int sottod_store_drain(sottod_store *st);

/* Copies into buf (cap bytes, NUL-terminated, truncated if needed) the
 * backend's text for the most recent storage failure on any thread, e.g.
 * "database or disk is full (sqlite 13, errno 28: No space left on
 * device)", or "" if there was none. For logs: a SOTTOD_STORE_ERR status
 * alone does not say why. Any thread. Returns buf. */
const char *sottod_store_last_error(sottod_store *st, char *buf, size_t cap);

/* Current clock of the store (cfg->now or time()). */
int64_t sottod_store_now(const sottod_store *st);

/* Counters for /metrics. Any thread. */
typedef struct sottod_store_stats {
    uint64_t batches;           /* transactions committed (or failed) by the writer */
    uint64_t ops;               /* operations executed */
    uint32_t last_batch_ops;    /* operations in the last batch */
    uint64_t commit_ns_total;   /* wall time in BEGIN..COMMIT, summed */
    uint64_t last_commit_ns;    /* of the last batch */
    uint64_t queue_depth_total; /* envelopes queued now over all devices (a read) */
    uint64_t pending_ops;       /* submitted, not yet executed */
    uint64_t scrubs;            /* WAL checkpoints to 0 bytes done (scrub_delay_s) */
} sottod_store_stats;
void sottod_store_stats_get(sottod_store *st, sottod_store_stats *out);

/* ---- [async] writes ----------------------------------------------------- */

/* Creates an account and its device 1 (dev->device_id, added_by and
 * add_signature are ignored: stored as 1, 0, zeros) in one
 * transaction. If invite is non-NULL (invite_len 1..SOTTOD_INVITE_MAX) the
 * invite is consumed in the same transaction (BAD_INVITE if unknown/used/
 * expired; nothing created). EXISTS if the username is taken (the invite is
 * then not consumed). Result: u.account_create.account_id. */
SOTTOD_STORE_WUR int sottod_store_account_create(sottod_store *st, const char *username,
                                                 const uint8_t *invite, size_t invite_len,
                                                 const sottod_device_new *dev,
                                                 sottod_store_done_fn done, void *arg);

/* Deletes an account with all its devices, prekeys and queued envelopes.
 * Attachment rows are not tied to accounts (they are anonymous). */
SOTTOD_STORE_WUR int sottod_store_account_delete(sottod_store *st, int64_t account_id,
                                                 sottod_store_done_fn done, void *arg);

/* Records an invite token (its SHA-256 only) valid until expires_at. */
SOTTOD_STORE_WUR int sottod_store_invite_create(sottod_store *st, const uint8_t *token,
                                                size_t token_len, int64_t expires_at,
                                                sottod_store_done_fn done, void *arg);

/* Adds a device to an account unless it already has max_devices
 * (1..SOTTOD_MAX_DEVICES) devices (DEVICE_LIMIT). dev->device_id 0 picks the
 * lowest free id >= 2; a given id in use gives EXISTS. NOT_FOUND if the
 * account does not exist. Result: u.device_add.device_id. */
SOTTOD_STORE_WUR int sottod_store_device_add(sottod_store *st, int64_t account_id,
                                             const sottod_device_new *dev, uint32_t max_devices,
                                             sottod_store_done_fn done, void *arg);

/*
 * API v2 device-set changes. Each runs in one transaction that first checks
 * that the account's stored device list version is still `prev_version`
 * (0 = the account has no list) and refuses with CONFLICT otherwise (a
 * change committed since the caller read the account), so the device rows
 * and the stored list always change together. `list` (copied at
 * submission) replaces the stored list and version; NULL keeps the account
 * without one (only valid with prev_version 0: the API v1 transition path).
 * The caller has verified the list (libsotto) against the device set it
 * read at prev_version; the store does not parse it. list->account_key is
 * stored only by account_create_listed and device_list_set (when the
 * account has no key yet); the other calls keep the stored key.
 * NOT_FOUND if the account (or, for removal, the device) does not exist.
 */

/* account_create with the account key and first device list (list may be
 * NULL: API v1). */
SOTTOD_STORE_WUR int sottod_store_account_create_listed(sottod_store *st, const char *username,
                                                        const uint8_t *invite, size_t invite_len,
                                                        const sottod_device_new *dev,
                                                        const sottod_device_list_rec *list,
                                                        sottod_store_done_fn done, void *arg);

/* Adds dev under dev->device_id (1..; EXISTS if in use; DEVICE_LIMIT as
 * device_add) and replaces the list. Without a list (v1 path, prev_version
 * 0) dev->device_id 0 picks the lowest free id >= 2 as device_add does.
 * Result: u.list_change.device_id. */
SOTTOD_STORE_WUR int sottod_store_device_add_listed(sottod_store *st, int64_t account_id,
                                                    const sottod_device_new *dev,
                                                    uint32_t max_devices, uint64_t prev_version,
                                                    const sottod_device_list_rec *list,
                                                    sottod_store_done_fn done, void *arg);

/* Removes a device, its prekeys and queue (as device_remove) and replaces
 * the list. Result: u.list_change.deleted = 1. */
SOTTOD_STORE_WUR int sottod_store_device_remove_listed(sottod_store *st, sottod_addr addr,
                                                       uint64_t prev_version,
                                                       const sottod_device_list_rec *list,
                                                       sottod_store_done_fn done, void *arg);

/* Recovery: deletes EVERY device of the account with its prekeys and
 * queued envelopes, adds dev under dev->device_id and replaces the list
 * (list required; prev_version must be the stored version, >= 1). Result:
 * u.list_change.device_id, u.list_change.deleted = devices deleted. */
SOTTOD_STORE_WUR int sottod_store_account_recover(sottod_store *st, int64_t account_id,
                                                  const sottod_device_new *dev,
                                                  uint64_t prev_version,
                                                  const sottod_device_list_rec *list,
                                                  sottod_store_done_fn done, void *arg);

/* Replaces the list without changing the devices (list required). With
 * prev_version 0 (account without a key) it also stores list->account_key. */
SOTTOD_STORE_WUR int sottod_store_device_list_set(sottod_store *st, int64_t account_id,
                                                  uint64_t prev_version,
                                                  const sottod_device_list_rec *list,
                                                  sottod_store_done_fn done, void *arg);

/* Removes a device, its prekeys and its queue. NOT_FOUND if absent. */
SOTTOD_STORE_WUR int sottod_store_device_remove(sottod_store *st, sottod_addr addr,
                                                sottod_store_done_fn done, void *arg);

/* Sets last-seen to today's DATE (UTC); no write if already today. */
SOTTOD_STORE_WUR int sottod_store_device_touch(sottod_store *st, sottod_addr addr,
                                               sottod_store_done_fn done, void *arg);

/* Replaces the device's signed prekey. NOT_FOUND if no such device. */
SOTTOD_STORE_WUR int sottod_store_signed_prekey_set(sottod_store *st, sottod_addr addr, uint32_t id,
                                                    const uint8_t pub[SOTTOD_PUBLIC_KEY_BYTES],
                                                    const uint8_t sig[SOTTOD_SIGNATURE_BYTES],
                                                    sottod_store_done_fn done, void *arg);

/* Adds n (1..10000) one-time prekeys; an id already stored is replaced.
 * Result: u.one_time_prekeys_add.count = how many the device now has. */
SOTTOD_STORE_WUR int sottod_store_one_time_prekeys_add(sottod_store *st, sottod_addr addr,
                                                       const sottod_one_time_prekey *keys, size_t n,
                                                       sottod_store_done_fn done, void *arg);

/* Hands out prekey bundles of an account: of device_id, or of every device
 * if device_id is 0. Each bundle carries one one-time prekey which is deleted
 * in the same transaction, so a one-time prekey is handed out at most once
 * however many fetches run concurrently. NOT_FOUND if the account / device
 * does not exist. Result: u.bundle_take. */
SOTTOD_STORE_WUR int sottod_store_bundle_take(sottod_store *st, int64_t account_id,
                                              uint32_t device_id, sottod_store_done_fn done,
                                              void *arg);

/* As sottod_store_bundle_take; with one_time_prekey false no one-time
 * prekey is taken (bundles come with has_one_time_prekey false and the
 * count left), for the per-target fetch limit (config
 * rate_prekey_target_per_min). */
SOTTOD_STORE_WUR int sottod_store_bundle_take_ex(sottod_store *st, int64_t account_id,
                                                 uint32_t device_id, bool one_time_prekey,
                                                 sottod_store_done_fn done, void *arg);

/* Queues n (1..4096) envelopes, all or none, in one transaction. Refuses
 * with STALE if a recipient device does not exist and QUEUE_FULL if a queue
 * would exceed max_queue (u.enqueue.failed names the device). An envelope
 * already queued for the same device -- same id AND same body -- is skipped
 * (idempotent retry) and counted in u.enqueue.duplicates; the same id with
 * other bytes is refused with EXISTS (u.enqueue.failed names the device).
 * "No row inserted" is never taken for success otherwise: if the row could
 * not be written for another reason the op fails with ERR. The ack to the
 * sender belongs in `done`. */
SOTTOD_STORE_WUR int sottod_store_envelopes_enqueue(sottod_store *st,
                                                    const sottod_envelope_in *envs, size_t n,
                                                    sottod_store_done_fn done, void *arg);

/* Deletes the envelopes with these ids (n 1..4096, n*16 bytes at ids) from
 * the queue of `addr` ONLY; ids of other devices' envelopes are ignored.
 * Result: u.deleted.deleted. */
SOTTOD_STORE_WUR int sottod_store_envelopes_delete(sottod_store *st, sottod_addr addr,
                                                   const uint8_t *ids, size_t n,
                                                   sottod_store_done_fn done, void *arg);

/* Deletes every envelope with expires_at <= now. Result: u.deleted.deleted. */
SOTTOD_STORE_WUR int sottod_store_envelopes_expire(sottod_store *st, sottod_store_done_fn done,
                                                   void *arg);

/* Records a new attachment. EXISTS if the id is in use. */
SOTTOD_STORE_WUR int sottod_store_attachment_create(sottod_store *st, const sottod_attachment *att,
                                                    sottod_store_done_fn done, void *arg);

/* Sets size, expires_at and referenced of an existing attachment. */
SOTTOD_STORE_WUR int sottod_store_attachment_update(sottod_store *st, const sottod_attachment *att,
                                                    sottod_store_done_fn done, void *arg);

SOTTOD_STORE_WUR int sottod_store_attachment_delete(sottod_store *st,
                                                    const uint8_t id[SOTTOD_ATTACHMENT_ID_BYTES],
                                                    sottod_store_done_fn done, void *arg);

/* ---- [sync] reads ------------------------------------------------------- */

SOTTOD_STORE_WUR int sottod_store_account_lookup(sottod_store *st, const char *username,
                                                 sottod_account *out);

SOTTOD_STORE_WUR int sottod_store_device_get(sottod_store *st, sottod_addr addr,
                                             sottod_device *out);

/* Devices of an account in id order: up to max into out, *n = how many.
 * NOT_FOUND if the account does not exist. */
SOTTOD_STORE_WUR int sottod_store_devices_list(sottod_store *st, int64_t account_id,
                                               sottod_device *out, size_t max, size_t *n);

/* The account's key and device list (out->present false if it has none).
 * NOT_FOUND if the account does not exist. */
SOTTOD_STORE_WUR int sottod_store_device_list_get(sottod_store *st, int64_t account_id,
                                                  sottod_device_list_rec *out);

/* devices_list and device_list_get from ONE read snapshot, so the list and
 * the device rows belong together. */
SOTTOD_STORE_WUR int sottod_store_devices_list_with_list(sottod_store *st, int64_t account_id,
                                                         sottod_device *out, size_t max, size_t *n,
                                                         sottod_device_list_rec *list);

SOTTOD_STORE_WUR int sottod_store_one_time_prekey_count(sottod_store *st, sottod_addr addr,
                                                        uint32_t *count);

/* Envelopes queued for addr, unexpired, with seq > after_seq, in seq order,
 * at most limit; fn returns 0 to continue, nonzero to stop. *last_seq (may
 * be NULL) gets the seq of the last envelope passed to fn (after_seq if none). */
typedef int (*sottod_envelope_fn)(void *arg, const sottod_envelope *env);
SOTTOD_STORE_WUR int sottod_store_envelopes_list(sottod_store *st, sottod_addr addr,
                                                 int64_t after_seq, size_t limit,
                                                 sottod_envelope_fn fn, void *arg,
                                                 int64_t *last_seq);
/* (fn runs with the read connection locked: it must not call store reads;
 * submitting [async] writes from it is fine.) */

SOTTOD_STORE_WUR int sottod_store_queue_depth(sottod_store *st, sottod_addr addr, uint32_t *depth);

SOTTOD_STORE_WUR int sottod_store_attachment_get(sottod_store *st,
                                                 const uint8_t id[SOTTOD_ATTACHMENT_ID_BYTES],
                                                 sottod_attachment *out);

/* Attachments with expires_at <= now, at most limit, oldest first. */
typedef int (*sottod_attachment_fn)(void *arg, const sottod_attachment *att);
SOTTOD_STORE_WUR int sottod_store_attachments_expired(sottod_store *st, size_t limit,
                                                      sottod_attachment_fn fn, void *arg);

/* ---- key transparency (server/kt.c; docs/protocol.md "Key transparency") -- */
/*
 * Four tables (schema version 4): kt_log, the log's updates (one row per
 * update, positions 0, 1, 2, ... without gaps); kt_entries, per username the
 * latest update's VRF index and proof (cached: proving costs a VRF
 * evaluation), the opening and the 73-byte committed value, its counter and
 * log position; kt_heads, every tree head the server signed (size,
 * timestamp, signature: the root is recomputed from kt_log); kt_cosigs,
 * auditors' countersignatures of those heads. The store never interprets
 * the bytes except for disclose, which prints the value's fields. Prefix
 * roots are not stored: sottod replays kt_log at start.
 */
#define SOTTOD_KT_HASH_BYTES 32
#define SOTTOD_KT_VRF_PROOF_BYTES 80
#define SOTTOD_KT_VALUE_BYTES 73 /* account key (33) | list SHA-256 (32) | version (8, BE) */
#define SOTTOD_KT_SIG_BYTES 64
#define SOTTOD_KT_KEY_BYTES 32    /* Ed25519 public key of an auditor */
#define SOTTOD_KT_APPEND_MAX 4096 /* rows per kt_append */

/* One log update (docs/protocol.md: the 80-byte update). */
typedef struct sottod_kt_log_row {
    uint64_t pos;   /* 0-based position in the log */
    uint64_t ts_ms; /* the DATE of the change: ms at 00:00 UTC */
    uint8_t index[SOTTOD_KT_HASH_BYTES];
    uint64_t counter; /* >= 1 */
    uint8_t commitment[SOTTOD_KT_HASH_BYTES];
} sottod_kt_log_row;

/* A username's latest update. */
typedef struct sottod_kt_entry {
    char username[SOTTOD_USERNAME_MAX + 1];
    uint8_t index[SOTTOD_KT_HASH_BYTES];
    uint8_t vrf_proof[SOTTOD_KT_VRF_PROOF_BYTES];
    uint8_t opening[SOTTOD_KT_HASH_BYTES]; /* hides the value: never logged or disclosed */
    uint8_t value[SOTTOD_KT_VALUE_BYTES];
    uint64_t counter;
    uint64_t pos; /* log position of that update */
} sottod_kt_entry;

/* A signed tree head (size >= 1) or, with auditor_key, a countersignature. */
typedef struct sottod_kt_head_rec {
    uint64_t size;
    uint64_t ts_ms;
    uint8_t signature[SOTTOD_KT_SIG_BYTES];
} sottod_kt_head_rec;

typedef struct sottod_kt_cosig_rec {
    uint64_t size;
    uint64_t ts_ms;
    uint8_t auditor_key[SOTTOD_KT_KEY_BYTES];
    uint8_t signature[SOTTOD_KT_SIG_BYTES];
} sottod_kt_cosig_rec;

/* [async] One KT batch, atomically: rows[0..n_rows) (1..SOTTOD_KT_APPEND_MAX,
 * positions consecutive), entries[0..n_entries) (inserted or replacing the
 * username's row; 0..SOTTOD_KT_APPEND_MAX) and the head (its size must be
 * the log size after the rows). CONFLICT (nothing written) when rows[0].pos
 * is not the number of rows already in kt_log: the caller's view of the
 * log is not the stored one. INVALID for malformed arguments. */
SOTTOD_STORE_WUR int sottod_store_kt_append(sottod_store *st, const sottod_kt_log_row *rows,
                                            size_t n_rows, const sottod_kt_entry *entries,
                                            size_t n_entries, const sottod_kt_head_rec *head,
                                            sottod_store_done_fn done, void *arg);

/* [async] Records a head re-signed for a size already in the log
 * (CONFLICT if head->size exceeds the stored log; a head with the same
 * size and timestamp is replaced). */
SOTTOD_STORE_WUR int sottod_store_kt_head_add(sottod_store *st, const sottod_kt_head_rec *head,
                                              sottod_store_done_fn done, void *arg);

/* [async] Records (or replaces) a countersignature. NOT_FOUND if no head
 * with that size and timestamp is stored. */
SOTTOD_STORE_WUR int sottod_store_kt_cosig_add(sottod_store *st, const sottod_kt_cosig_rec *cosig,
                                               sottod_store_done_fn done, void *arg);

/* [sync] Number of rows in kt_log. */
SOTTOD_STORE_WUR int sottod_store_kt_log_size(sottod_store *st, uint64_t *n);

/* [sync] Up to max rows of kt_log from position `from`, in order, into
 * out; *n how many (0 at the end). */
SOTTOD_STORE_WUR int sottod_store_kt_log_read(sottod_store *st, uint64_t from, size_t max,
                                              sottod_kt_log_row *out, size_t *n);

/* [sync] The entry of username. NOT_FOUND if the name never had an update. */
SOTTOD_STORE_WUR int sottod_store_kt_entry_get(sottod_store *st, const char *username,
                                               sottod_kt_entry *out);

/* [sync] The newest head (largest size, then latest timestamp). NOT_FOUND
 * if none. */
SOTTOD_STORE_WUR int sottod_store_kt_head_latest(sottod_store *st, sottod_kt_head_rec *out);

/* [sync] The head with this size and timestamp. NOT_FOUND if none. */
SOTTOD_STORE_WUR int sottod_store_kt_head_get(sottod_store *st, uint64_t size, uint64_t ts_ms,
                                              sottod_kt_head_rec *out);

/* [sync] Every countersignature, ordered by size, timestamp and key; fn
 * returns 0 to go on. fn runs with the read connection locked (no store
 * reads from it). */
typedef int (*sottod_kt_cosig_fn)(void *arg, const sottod_kt_cosig_rec *c);
SOTTOD_STORE_WUR int sottod_store_kt_cosigs_scan(sottod_store *st, sottod_kt_cosig_fn fn,
                                                 void *arg);

/* [sync] Every account with an account key, in username order, with its
 * list and its KT entry (entry NULL if the name has none): what start-up
 * reconciles. fn returns 0 to go on; it runs with the read connection
 * locked (no store reads from it). */
typedef int (*sottod_kt_account_fn)(void *arg, const char *username,
                                    const sottod_device_list_rec *list,
                                    const sottod_kt_entry *entry);
SOTTOD_STORE_WUR int sottod_store_kt_accounts_scan(sottod_store *st, sottod_kt_account_fn fn,
                                                   void *arg);

/* ---- profiles (issue 11; docs/api.md "Profiles") ------------------------ */
/* Table profiles (schema version 5): per account the encrypted profile
 * exactly as its owner uploaded it; the store never parses it. Deleted
 * with the account. */
#define SOTTOD_PROFILE_MAX (128 * 1024) /* largest profile ciphertext (bytes) */

/* [async] Stores (or replaces) the profile ciphertext of account_id
 * (len 1..SOTTOD_PROFILE_MAX bytes, copied). NOT_FOUND if the account does
 * not exist; INVALID for a bad argument. */
SOTTOD_STORE_WUR int sottod_store_profile_set(sottod_store *st, int64_t account_id,
                                              const uint8_t *ciphertext, size_t len,
                                              sottod_store_done_fn done, void *arg);

/* [sync] The profile ciphertext of username: *out (malloc'd, freed by the
 * caller with free()) and *len. NOT_FOUND if no such account or it has no
 * profile. */
SOTTOD_STORE_WUR int sottod_store_profile_get(sottod_store *st, const char *username, uint8_t **out,
                                              size_t *len);

/* ---- delivery tokens (issue 12, sealed sender; docs/api.md) -------------- */
/* Column accounts.delivery_token (schema version 6): the 16-byte token a
 * sealed send to the account must carry, NULL = none. Deleted with the
 * account; never printed by disclose (it is a capability, not data about
 * the user). */
#define SOTTOD_DELIVERY_TOKEN_BYTES 16

/* [async] Sets (token: SOTTOD_DELIVERY_TOKEN_BYTES bytes, copied) or clears
 * (token NULL) the delivery token of account_id. NOT_FOUND if the account
 * does not exist; INVALID for a bad argument. */
SOTTOD_STORE_WUR int sottod_store_delivery_token_set(sottod_store *st, int64_t account_id,
                                                     const uint8_t *token,
                                                     sottod_store_done_fn done, void *arg);

/* [sync] The delivery token of account_id: OK with *present true and the
 * token in out, or OK with *present false (none set); NOT_FOUND if no such
 * account. */
SOTTOD_STORE_WUR int sottod_store_delivery_token_get(sottod_store *st, int64_t account_id,
                                                     uint8_t out[SOTTOD_DELIVERY_TOKEN_BYTES],
                                                     bool *present);

/* ---- sealed-sender trust root marker (meta key 'sealed_root') ---------- */
/* A row meta('sealed_root', 1) records that this store's server has made a
 * sealed-sender trust root (DATA_DIR/sealed-root.key) and handed it out, so
 * that a start which finds the key file missing refuses instead of making a
 * new root that every client would reject (server/sealed.c). meta is a
 * key/value table: no schema version change. */

/* [async] Sets the marker (idempotent: OK when it is already set). */
SOTTOD_STORE_WUR int sottod_store_sealed_root_mark(sottod_store *st, sottod_store_done_fn done,
                                                   void *arg);

/* [sync] *marked = whether the marker is set. OK, or ERR. */
SOTTOD_STORE_WUR int sottod_store_sealed_root_marked(sottod_store *st, bool *marked);

/*
 * Everything the store holds about an account, as a NUL-terminated JSON
 * object (the admin `disclose` command): username, creation date, and per
 * device: id, registration id, public keys (auth, identity, signed prekey),
 * number of one-time prekeys, creation date, last-seen date, number and
 * total bytes of undelivered envelopes; the account key (hex) and the
 * device list version (API v2; null for an account without them). Envelope bodies are opaque
 * ciphertext the operator cannot read; they are counted, not printed.
 * *json (malloc'd) is freed by the caller with free(). NOT_FOUND if no such
 * account.
 */
SOTTOD_STORE_WUR int sottod_store_disclose(sottod_store *st, const char *username, char **json);

/* ======================================================================== */
/* Backend interface: what a backend (SQLite now, PostgreSQL later)          */
/* implements. The front end (store.c) owns the queue, the writer thread and */
/* completions, and calls exec() only on the writer thread, between begin()  */
/* and commit(). exec must leave no trace of an operation it refuses (its   */
/* own savepoint, or checks before writes); after a backend failure inside  */
/* an operation it may instead fail the whole batch: commit() then rolls    */
/* back and returns SOTTOD_STORE_ERR, and every op of the batch fails.      */
/* Read functions may be called from any thread; the backend serialises    */
/* them.                                                                     */
/* ======================================================================== */

typedef struct sottod_store_op sottod_store_op; /* defined in store_op.h */
typedef struct sottod_store_backend sottod_store_backend;

typedef struct sottod_store_backend_ops {
    const char *name;
    void (*close)(sottod_store_backend *be);
    int (*begin)(sottod_store_backend *be);
    int (*commit)(sottod_store_backend *be);
    int (*rollback)(sottod_store_backend *be);
    /* Executes op (on the writer thread) and fills op->res. Returns
     * op->res.status. */
    int (*exec)(sottod_store_backend *be, sottod_store_op *op);
    int (*account_lookup)(sottod_store_backend *be, const char *username, sottod_account *out);
    int (*device_get)(sottod_store_backend *be, sottod_addr addr, sottod_device *out);
    int (*devices_list)(sottod_store_backend *be, int64_t account_id, sottod_device *out,
                        size_t max, size_t *n);
    int (*one_time_prekey_count)(sottod_store_backend *be, sottod_addr addr, uint32_t *count);
    int (*envelopes_list)(sottod_store_backend *be, sottod_addr addr, int64_t after_seq,
                          size_t limit, sottod_envelope_fn fn, void *arg, int64_t *last_seq);
    int (*queue_depth)(sottod_store_backend *be, sottod_addr addr, uint32_t *depth);
    int (*attachment_get)(sottod_store_backend *be, const uint8_t *id, sottod_attachment *out);
    int (*attachments_expired)(sottod_store_backend *be, size_t limit, sottod_attachment_fn fn,
                               void *arg);
    int (*disclose)(sottod_store_backend *be, const char *username, char **json);
    /* list: NOT_FOUND if no account; with out/max/n also the devices, one snapshot */
    int (*device_list_get)(sottod_store_backend *be, int64_t account_id, sottod_device *out,
                           size_t max, size_t *n, sottod_device_list_rec *list);
    int (*queue_depth_total)(sottod_store_backend *be, uint64_t *total);
    /* key transparency reads (see the [sync] kt_ calls) */
    int (*kt_log_size)(sottod_store_backend *be, uint64_t *n);
    int (*kt_log_read)(sottod_store_backend *be, uint64_t from, size_t max, sottod_kt_log_row *out,
                       size_t *n);
    int (*kt_entry_get)(sottod_store_backend *be, const char *username, sottod_kt_entry *out);
    /* size 0: the newest head */
    int (*kt_head_get)(sottod_store_backend *be, uint64_t size, uint64_t ts_ms,
                       sottod_kt_head_rec *out);
    int (*kt_cosigs_scan)(sottod_store_backend *be, sottod_kt_cosig_fn fn, void *arg);
    int (*kt_accounts_scan)(sottod_store_backend *be, sottod_kt_account_fn fn, void *arg);
    /* profiles: *out malloc'd (see sottod_store_profile_get) */
    int (*profile_get)(sottod_store_backend *be, const char *username, uint8_t **out, size_t *len);
    /* delivery tokens (see sottod_store_delivery_token_get) */
    int (*delivery_token_get)(sottod_store_backend *be, int64_t account_id,
                              uint8_t out[SOTTOD_DELIVERY_TOKEN_BYTES], bool *present);
    /* the sealed-root marker (see sottod_store_sealed_root_marked) */
    int (*sealed_root_marked)(sottod_store_backend *be, bool *marked);
    /* Copies the text of the most recent failure (any thread) into buf. */
    void (*last_error)(sottod_store_backend *be, char *buf, size_t cap);
    /* Writer thread, outside any transaction: moves every committed change
     * into the main file and leaves no old page image behind (SQLite:
     * wal_checkpoint(TRUNCATE)). SOTTOD_STORE_OK, or an error when it could
     * not finish (it is retried later). NULL = nothing to do. */
    int (*scrub)(sottod_store_backend *be);
} sottod_store_backend_ops;

struct sottod_store_backend {
    const sottod_store_backend_ops *ops;
    const sottod_store_config *cfg; /* the front end's copy; valid while open */
    sottod_store *front;            /* for sottod_store_now() */
};

#ifdef __cplusplus
}
#endif
#endif /* SOTTOD_STORE_H */
