/*
 * server/kt.h -- sottod's key-transparency module (issue 9; the shared
 * design: docs/protocol.md "Key transparency", docs/api.md "Key
 * transparency", docs/operating.md "Key transparency").
 *
 * What it keeps (all on the event-loop thread, no locks):
 *  - the server's keys from the data directory: DATA_DIR/kt.key (32-byte
 *    Ed25519 seed: signs tree heads) and DATA_DIR/vrf.key (32-byte
 *    ECVRF-EDWARDS25519-SHA512-TAI seed: the directory index of a name),
 *    both 0600, created at the first start (or --init) when missing and the
 *    store holds no tree head yet;
 *  - two directory states (sotto_kt_directory): `current` (every durable
 *    and in-flight update) and `published` (the state at the published
 *    head: the newest head countersigned by EVERY configured auditor, or
 *    with none configured the newest durable head), and one sotto_merkle_log
 *    of the log's leaf hashes (current's; any smaller size's root and proofs
 *    come from it).
 *
 * Pipeline: a committed device-list change calls sottod_kt_account_changed
 * (username queued, once). At most ONE KT batch is in flight: it takes the
 * queue, reads each account's key and list, VRF-proves new names, draws a
 * fresh opening per update, applies the updates to `current`, appends the
 * log leaves, signs a head for the new size and submits ONE store op
 * (sottod_store_kt_append: log rows, entries, head). Its completion makes
 * the size durable (and, without auditors, published) and starts the next
 * batch. Every kt_head_interval_s a fresh head is signed for the same size
 * when the newest is older, so published heads stay fresh as long as
 * auditors keep countersigning. A countersignature that completes the set
 * for a newer head advances `published` by replaying the updates between
 * the two sizes (read back from kt_log).
 *
 * Start-up replays kt_log into `current` and the merkle log (and into
 * `published` up to the published head), then reconciles: every account
 * whose (account key, SHA-256 of its list, list version) differs from its
 * kt_entries value gets an update (a crash between the device-list commit
 * and the KT commit). Prefix roots are never stored, so an edited kt_log is
 * served (and signed) as edited: auditors and clients catch it.
 */
#ifndef SOTTOD_KT_H
#define SOTTOD_KT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sottod_server sottod_server;
typedef struct sottod_kt sottod_kt;

/* Per-connection budget of the public KT operations (kt_config, kt_head,
 * kt_audit, kt_cosign): they may be used before login and do not count
 * towards SOTTOD_MAX_PREAUTH_REQUESTS (an auditor catching up needs many),
 * but share this bucket. */
#define SOTTOD_KT_RATE_PER_MIN 1200
#define SOTTOD_KT_RATE_BURST 200
#define SOTTOD_KT_AUDIT_MAX 1000 /* updates per kt_audit answer */

/* Results of the calls below (api.c maps them to API statuses). */
enum {
    SOTTOD_KT_OK = 0,
    SOTTOD_KT_PENDING = -1,   /* not in the published directory yet: retry */
    SOTTOD_KT_NOT_FOUND = -2, /* no such account / head */
    SOTTOD_KT_BAD_REQUEST = -3,
    SOTTOD_KT_FORBIDDEN = -4,         /* auditor key not configured */
    SOTTOD_KT_INVALID_SIGNATURE = -5, /* countersignature does not verify */
    SOTTOD_KT_INTERNAL = -6,          /* out of memory, storage failure */
};

/* A malloc'd byte string handed to the caller (free with free()). */
typedef struct sottod_kt_blob {
    uint8_t *data;
    size_t len;
} sottod_kt_blob;

/* Loads (or, when missing and the store holds no tree head, creates) the
 * keys of cfg->data_dir, replays the log, finds the published head,
 * reconciles and submits the first batch; stores the module in srv->kt.
 * Called after the store opened, before the loop runs (it may drain the
 * store). Returns 0, or -1 with a one-line reason in why. */
int sottod_kt_start(sottod_server *srv, char *why, size_t why_cap);

/* Starts the head timer on srv->ctx (after the lws context exists). */
void sottod_kt_schedule(sottod_server *srv);

/* Stops the head timer (shutdown, before the lws context goes). */
void sottod_kt_unschedule(sottod_server *srv);

/* Frees the module (keys wiped). Call after the store drained. NULL-safe. */
void sottod_kt_stop(sottod_server *srv);

/* A device-list change of username committed: queue an update. */
void sottod_kt_account_changed(sottod_server *srv, const char *username);

/* `sottod --kt-info`: prints kt_server_key, kt_vrf_key, kt_log_size and
 * kt_auditors of the data directory (keys must exist; the database must
 * exist). Returns the process exit code (0, 1 error). */
int sottod_kt_info(const char *data_dir, const char *auditors_text);

/* ---- API (server/api.c packs the answers) -------------------------------- */

/* kt_config: the server's keys and configured auditors (sorted), and the
 * durable log size. */
void sottod_kt_config(sottod_server *srv, uint8_t server_key[32], uint8_t vrf_key[32],
                      uint8_t auditors[][32], size_t *n_auditors, uint64_t *log_size);

/* kt_search by `viewer` (the logged-in username) for username with the
 * client's known_size: the search result, the published audited head and
 * the consistency path from known_size (empty when 0 or equal). OK;
 * NOT_FOUND (no such account); PENDING (+ *retry_ms) when the account's
 * current value is not in the published directory yet; INTERNAL. A
 * known_size beyond the published head gets the head with no path (the
 * client holds a larger one: the log went back; the signed smaller head is
 * its evidence). */
int sottod_kt_search(sottod_server *srv, const char *viewer, const char *username,
                     uint64_t known_size, sottod_kt_blob *result, sottod_kt_blob *head,
                     sottod_kt_blob *consistency, uint64_t *retry_ms);

/* kt_head: the published audited head and the path from known_size (none
 * when known_size is beyond it, as for kt_search). OK, PENDING (no
 * published head yet), INTERNAL. viewer may be NULL (before login). */
int sottod_kt_head(sottod_server *srv, const char *viewer, uint64_t known_size,
                   sottod_kt_blob *head, sottod_kt_blob *consistency, uint64_t *retry_ms);

/* kt_consistency between two sizes (1 <= size1 <= size2 <= durable log
 * size, else BAD_REQUEST): the path (empty when equal) and both roots. */
int sottod_kt_consistency(sottod_server *srv, const char *viewer, uint64_t size1, uint64_t size2,
                          sottod_kt_blob *proof, uint8_t root1[32], uint8_t root2[32]);

/* kt_audit: updates from `from` (at most max, 1..SOTTOD_KT_AUDIT_MAX), each
 * 80 bytes in *updates (n of them, malloc'd array of n*80), the newest
 * durable head (112 bytes) and the pending head (112 or 0 bytes); from
 * beyond the head: no updates, the heads only (the auditor's evidence of a
 * truncated log). OK, BAD_REQUEST (max 0 or too large), PENDING (no head
 * yet), INTERNAL. */
int sottod_kt_audit(sottod_server *srv, uint64_t from, uint32_t max, sottod_kt_blob *updates,
                    size_t *n, uint8_t head[112], uint8_t pending[112], bool *has_pending);

/* kt_cosign: checks (configured key: FORBIDDEN; a head this server signed:
 * NOT_FOUND; the countersignature: INVALID_SIGNATURE; BAD_REQUEST for
 * wrong lengths) and, if it passes, stores it and later calls
 * done(arg, status, published) from the store completion (status OK or
 * INTERNAL; published: this countersignature completed the set and the
 * head is now the published one). Returns OK when done will be called,
 * else the refusal (done is not called). */
typedef void (*sottod_kt_cosign_fn)(void *arg, int status, bool published);
int sottod_kt_cosign(sottod_server *srv, const uint8_t *head, size_t head_len,
                     const uint8_t *auditor_key, size_t key_len, const uint8_t *sig, size_t sig_len,
                     sottod_kt_cosign_fn done, void *arg);

#ifdef SOTTOD_TEST_HOOKS
/* SOTTOD_TEST_KT_FORK=viewer:target (sottod-test only; kt.c "test hooks"):
 * the server forges an identity for target (account key, signed list for
 * target's name, per real device id and registration id: identity key,
 * auth key, signed prekey) and shows it, with a forked key directory, to
 * viewer alone. */
typedef struct sottod_bundle sottod_bundle;
typedef struct sottod_device_list_rec sottod_device_list_rec;

/* When `viewer` asks for `target` and the fork applies (target is in the
 * published directory; built at the first call that needs it): the forged
 * account key and signed list to serve as target's (owned by the module,
 * valid until it stops). NULL: serve the real account. */
const sottod_device_list_rec *sottod_kt_test_forged_list(sottod_server *srv, const char *viewer,
                                                         const char *target);

/* As above, for bundles: true when the fork applies; then out (cap
 * entries) gets the forged bundles of device_id (0 = every device) in
 * device id order, each with a fresh one-time prekey (public half only;
 * one_time_prekeys_left UINT32_MAX), *n of them (0: no such device).
 * false: serve the real bundles (*n = 0). */
bool sottod_kt_test_forged_bundles(sottod_server *srv, const char *viewer, const char *target,
                                   uint32_t device_id, sottod_bundle *out, size_t cap, size_t *n);
#endif

#endif /* SOTTOD_KT_H */
