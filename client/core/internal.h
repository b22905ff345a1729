/*
 * client/core/internal.h -- shared internals of the client core.
 */
#ifndef SOTTO_CLIENT_INTERNAL_H
#define SOTTO_CLIENT_INTERNAL_H

#include <jansson.h>
#include <pthread.h>

#include "content.pb-c.h"
#include "api.h"
#include "net.h"
#include "sotto/keys.h"
#include "sotto/session.h"
#include "sotto/sqlite_store.h"
#include "sotto/store.h"
#include "sotto_client.h"

#define SC_PREKEY_BATCH 100
#define SC_SIGNED_PREKEY_ROTATE_MS (7ull * 24 * 3600 * 1000) /* weekly */
#define SC_SIGNED_PREKEY_GRACE_MS (30ull * 24 * 3600 * 1000) /* old ones kept 30 days */
/* how often one send repairs a device mismatch before giving up for now */
#define SC_SEND_RETRIES 3
#define SC_TIMEOUT_MS 15000

struct sc_client {
    char *account;
    char *dir;     /* account directory */
    char *att_dir; /* downloaded attachments */
    sotto_sqlite_store *store;
    sotto_protocol_store ps;
    struct sqlite3 *db; /* the store's connection: used by store.c only */
    char *server_url;
    char *pin_hex;
    char *ca_file;
    char *username; /* NULL until registered */
    uint32_t device_id;
    bool progress;
    bool override_server; /* --server given: store it after a good login */
    bool override_trust;  /* --pin/--ca given: likewise */
    sc_conn *conn;
    bool logged_in;
    unsigned integrity_failures; /* attachments that failed verification */
    /* attachment downloads that failed for a cause that may pass (network,
     * server, local disk) and are retried later: how many, and the first
     * local (else network) cause (sc_attachment_outcome) */
    unsigned att_transient;
    int att_transient_rc;
    char att_transient_err[512];
    uint32_t login_queued; /* envelopes waiting at login (LoginResponse.queued) */
    uint64_t retry_at_ms;  /* after SC_E_RETRY: when to try again (sc_retry_at) */
    /* key transparency (kt.c): the server's keys were compared with the
     * pinned ones in this process; the server does not know the KT ops */
    bool kt_config_done;
    bool kt_unsupported;
    uint64_t kt_checked_ms; /* the last own check of this process (0: none) */
    /* the error set last (sc_fail clears it) is SC_E_RETRY because the key
     * directory has not published one contact's keys yet (kt.c): a wait
     * for that contact only, not for the server (send.c keeps the row and
     * goes on with the next; recv.c holds the envelope and goes on) */
    bool kt_wait;
    /* the last head sc_kt_accept_head refused was older than kt_max_age_s
     * (not a contradiction: the server or its auditors stopped signing) */
    bool kt_head_stale;
    /* sc_open created the account directory (sc_close_discard) */
    bool created_dir;
    int lock_fd; /* the per-account lock (lock.c), -1 when not held */
    /* sc_set_wake: called by sc_receive(stay) when *stop is set (daemon) */
    void (*wake_fn)(void *ud, sc_client *c);
    void *wake_ud;
    /* sc_wake (another thread) interrupts waits on this connection; set and
     * cleared under wake_mu by the owning thread (lock.c) */
    pthread_mutex_t wake_mu;
    sc_conn *wake_conn;
    /* sc_set_conn_watch: told when sc_receive(stay) loses / regains the server */
    void (*conn_fn)(void *ud, bool up, const char *why);
    void *conn_ud;
    bool link_syncing; /* linksync.c: sc_link_sync_pending is running */
    /* issue 11 (everyday.h): the callback of the running sc_receive /
     * sc_process_envelope (typing events are not stored: emitted straight
     * to it); a wipe happened: checkpoint and truncate the WAL after the
     * transaction (sc_store_scrub); typing indicators shown (receipts.c) */
    sc_event_cb recv_cb;
    void *recv_ud;
    bool scrub_due;
    void *typing;
    uint64_t everyday_tick_ms; /* last sc_everyday_tick */
    /* groups.c: the per-member outcome of the last group change or group
     * send (sc_group_report); while group_noting is set, sc_flush_ex notes
     * each failed row of the focus message here (sc_group_note) */
    bool group_noting;
    size_t group_nst;
    struct sc_group_note {
        char member[33];
        int rc;    /* SC_OK or the delivery error */
        bool kept; /* the row stays queued for this member */
        char reason[200];
    } group_st[SC_MAX_GROUP_MEMBERS + 1];
    /* sealed.c (issue 12): the connection that never logs in, for sealed
     * sends (closed with c->conn by sc_disconnect); the trust root the last
     * register / login answer named (api.c; ok false: none, a pre-v5 server) */
    sc_conn *sealed_conn;
    uint8_t sealed_root_seen[33];
    bool sealed_root_seen_ok;
    char err[512];
};

/* receipts.c: frees the typing indicators shown (c->typing; sc_close). */
void sc_typing_free(sc_client *c);
/* sc_wake's view of the connection (lock.c): NULL before it is freed */
void sc_wake_publish(sc_client *c, sc_conn *conn);

/* errors */
int sc_fail(sc_client *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
uint64_t sc_now_ms(void);
/* A fresh message timestamp, strictly increasing per account. */
uint64_t sc_next_timestamp(sc_client *c);
void sc_hex(const uint8_t *p, size_t n, char *out); /* out holds 2n+1 */

/* the storage layer: every SQL statement (store.c) */
#include "store.h"

/* groups (groups.c; sc_group_members and the other group rows: store.h) */
void sc_strv_free(char **v, size_t n);
int sc_group_resolve(sc_client *c, const char *ref, uint8_t id[SC_GROUP_ID_BYTES]);
/* sc_flush_ex, while c->group_noting: a row of the focus message to member
 * failed with rc (kept: it stays queued); reason is c->err. */
void sc_group_note(sc_client *c, const char *member, int rc, bool kept, const char *reason);
/* recv.c: a DELIVER for group g from src: asks src for the group's state
 * when g is unknown here or carries a higher revision than ours (rate
 * limited per group). Failures are not the message's: never fails it. */
void sc_group_check_revision(sc_client *c, const char *src, const Sotto__Content__GroupContext *g);
/* Per-member report (sc_group_report) of the message with timestamp ts to
 * recipients: begin before its flush, end after. */
void sc_group_report_begin(sc_client *c);
void sc_group_report_end(sc_client *c, char *const *recipients, size_t nr, uint64_t ts);
/* The revision of our copy of group id for a DELIVER (0 when unknown). */
uint64_t sc_group_revision_of(sc_client *c, const uint8_t id[SC_GROUP_ID_BYTES]);
int sc_group_apply_update(sc_client *c, const char *sender, uint32_t sender_device,
                          const Sotto__Content__GroupContext *g, uint64_t ts, uint64_t server_ts);

/* session.c: connection, login, keys, sending */
int sc_connect(sc_client *c);
void sc_disconnect(sc_client *c);
int sc_keys_maintain(sc_client *c, bool prekeys_low);
/* Sends one padded Content to every device of `dest` (and handles
 * mismatches). */
int sc_deliver(sc_client *c, const char *dest, const uint8_t *content, size_t len);
/* sc_deliver, except that device `device_id` of `dest` gets content `one`
 * and every other device `rest` (both unpadded; the padded copies are
 * wiped). Nothing is queued. SC_E_NOT_FOUND (nothing sent) when that
 * device is not among those the send reaches (not in dest's signed list,
 * or no keys on the server yet); otherwise sc_deliver's outcomes. */
int sc_deliver_split(sc_client *c, const char *dest, uint32_t device_id, const uint8_t *one,
                     size_t one_len, const uint8_t *rest, size_t rest_len);
/* Queues content for dest (+ a sync copy for own devices when data). */
int sc_enqueue_content(sc_client *c, const char *dest, Sotto__Content__Content *content,
                       int64_t msg_rowid);
/* sc_flush, and the outcome for the rows of message `focus_ts` in
 * *focus_rc (also the return value): SC_OK when all of them went out. */
int sc_flush_ex(sc_client *c, size_t *left, uint64_t focus_ts, int *focus_rc);
sc_server sc_server_of(sc_client *c);

/* recv.c */
/* Decodes a decrypted, padded Content (proto/content.proto: padding
 * stripped, then protobuf). SC_OK with *out to free with
 * sc_content_free(*out); SC_E_USAGE when the
 * padding or the protobuf is malformed (*out NULL). Fields are not yet
 * checked (UTF-8, names, ids): the handlers do that. */
int sc_content_decode(const uint8_t *pt, size_t pt_len, Sotto__Content__Content **out);
/* Wipes the texts, names and keys of a decoded Content, then frees it
 * (NULL is fine). */
void sc_content_free(Sotto__Content__Content *ct);
int sc_process_envelope(sc_client *c, const sc_envelope *e, bool from_held, sc_event_cb cb,
                        void *ud);
/* Shows the rows a killed process stored but never showed
 * (client_pending_events), oldest first, fetching their attachments. */
int sc_emit_pending(sc_client *c, sc_event_cb cb, void *ud);
/* Emits a history row as an event. */
int sc_emit_row(sc_client *c, const sc_msg *m, sc_event_cb cb, void *ud);

/* attach.c */
int sc_attachment_upload(sc_client *c, const char *path, Sotto__Content__AttachmentPointer *ptr);
/* Downloads+verifies+decrypts into the attachment dir; *path_out malloc()ed. */
int sc_attachment_download(sc_client *c, const Sotto__Content__AttachmentPointer *ptr, uint64_t ts,
                           char **path_out);
void sc_attachment_pointer_clear(Sotto__Content__AttachmentPointer *ptr);
/* The largest attachment (plaintext bytes) sent or accepted. */
#define SC_ATTACHMENT_MAX ((uint64_t)100 << 20) /* 100 MiB */
/* The attachment pointers of dm as stored in a history row's extra JSON:
 * {"attachments":[{id, key (hex), digest (hex), size, content_type,
 * file_name}, ...]}; malloc()ed (holds keys: wipe, e.g. sc_free_secret_str),
 * NULL when dm has none. Invalid strings are stored as "". */
char *sc_attachment_pointers_json(const Sotto__Content__DataMessage *dm);
/* Parses one stored attachment object back into *out (strings and bytes
 * malloc()ed; free with sc_attachment_pointer_clear). SC_OK, SC_E_INTEGRITY
 * when a field is missing or malformed (id 32 lowercase hex, key 128 hex,
 * digest 64 hex, 0 <= size <= SC_ATTACHMENT_MAX), SC_E_INTERNAL. */
int sc_attachment_pointer_from_json(const json_t *a, Sotto__Content__AttachmentPointer *out);
/* Wipes and frees a NUL-terminated string (NULL is fine). */
void sc_free_secret_str(char *s);
/* Removes temporary download files (".download-*", ".plain-*") older than
 * ten minutes, left in the attachment directory by a killed process. */
void sc_attachment_cleanup_temp(sc_client *c);
/*
 * Downloads the attachments of history row `rowid` that are still to fetch
 * (store.h: a pointer with its key and no path) and records each
 * outcome in the row, in a transaction that re-reads it (of two processes
 * only one records a file):
 *   saved                    "path" set; key and digest removed
 *   integrity / not found    "error" set; key and digest removed (final);
 *                            integrity counts in c->integrity_failures
 *   network / server / local "error" set with " (will retry)"; the pointer
 *   disk / memory            and key stay, sc_attachment_retry_pending
 *                            fetches it later; counted in c->att_transient
 * Download failures are not returned: SC_OK, or SC_E_STORE / SC_E_INTERNAL
 * when the row could not be read or written.
 */
int sc_attachment_fetch_row(sc_client *c, int64_t rowid);
/*
 * Tries again the downloads an earlier run could not finish (rows not on
 * the pending-events list, oldest first); stops at the first failure that
 * may pass (a full disk or a dead network fails the rest too). For each
 * row with files saved now it stores a notice (code "attachment_ready",
 * "attachments" = the saved files, body naming the message id) on the
 * pending-events list and shows it through sc_emit_pending(cb, ud); the
 * message itself is not shown again. Called by sc_receive after
 * sc_emit_pending when it first connects. SC_OK (download failures are
 * counted for sc_attachment_outcome), or a store error.
 */
int sc_attachment_retry_pending(sc_client *c, sc_event_cb cb, void *ud);
/*
 * At the end of a receive that drained the queue: SC_E_INTEGRITY when an
 * attachment failed verification; else the local cause (SC_E_STORE, e.g.
 * "1 attachment(s) not saved yet: cannot write the attachment: No space
 * left on device; the next receive or listen tries again") or the network
 * cause (SC_E_NETWORK) of downloads left for later; else SC_OK. The message
 * is in sc_errmsg().
 */
int sc_attachment_outcome(sc_client *c);

/* account.c: account keys and signed device lists (docs/protocol.md) */
#include "sotto/device_list.h"
/* A notice row in the conversation with `who` (recv.c); *rowid its id. */
int sc_notice_row(sc_client *c, const char *who, uint32_t dev, uint64_t server_ts, const char *code,
                  const char *text, int64_t *rowid);
/* A notice row (shown by the next receive/listen, also as a --json event). */
int sc_notice_add(sc_client *c, const char *who, const char *code, const char *text);
/* Our account's public key (every device has it); SC_E_NOT_FOUND when this
 * account predates account keys. */
int sc_own_account_key(sc_client *c, sotto_public_key *pk);
/* Makes and stores a new account key pair (registration, primary only). */
int sc_account_key_create(sc_client *c);
/* The account key pair: SC_E_STATE on a device that is not the primary. */
int sc_account_key_load(sc_client *c, sotto_key_pair *kp);
bool sc_is_primary(sc_client *c);
/* This device's entry for a device list (identity key, regid, auth key). */
int sc_own_device_entry(sc_client *c, uint32_t device_id, sotto_device_entry *e);
/* Signs `l` with the account key (primary only); *out malloc()ed. */
int sc_own_list_sign(sc_client *c, const sotto_device_list *l, uint8_t **out, size_t *len);
/* The newest accepted list of `name` (verified again); SC_E_NOT_FOUND. */
int sc_account_current(sc_client *c, const char *name, sotto_device_list *out);
/* Checks what the server served for `name` against the pinned account key
 * and the newest list seen; accepts a newer one (with notices). Errors name
 * what the server tried (SC_E_UNTRUSTED). */
int sc_account_accept(sc_client *c, const char *name, const sc_api_account *a,
                      sotto_device_list *out);
/* Trusts a device identity key that an accepted signed list names. */
int sc_trust_vouched(sc_client *c, const char *name, const sotto_device_entry *e);
/* Whether the sending device is in the sender's signed list (fetched when
 * the one held lacks it); SC_E_UNTRUSTED when the sender's account key
 * changed or the server served a bad list. */
int sc_vet_sender(sc_client *c, const sc_envelope *e, bool *genuine);
/* sc_vet_sender, then sc_process_envelope; an envelope from an unlisted
 * device is dropped with a notice, one whose account key changed is held. */
int sc_accept_envelope(sc_client *c, const sc_envelope *e, bool from_held, sc_event_cb cb,
                       void *ud);
/* Tries again, once, the held envelopes no `trust` waits for
 * (sc_held_waiting_senders: the sender's keys were not yet published or
 * verified by the key directory): per sender in order through
 * sc_accept_envelope(from_held = true), each shown one deleted from the
 * held rows, stopping at the first that still cannot be shown (it and the
 * sender's later ones stay held); a network failure ends the round.
 * SC_OK, or SC_E_STORE. */
int sc_held_release(sc_client *c, sc_event_cb cb, void *ud);
/* One person this device knows: a contact, an account with a pinned key, or
 * both (name borrowed from the lists given to sc_people_union). */
typedef struct sc_person {
    const char *name;
    bool verified;
} sc_person;
/* The union by name of `cl` (sc_contact_list) and `names` (sc_account_names),
 * both sorted by name (strcmp order = SQLite's BINARY), without `self` and
 * without invalid names, into out (room for n_cl + n_names). Returns how
 * many. Backups and link syncs export exactly these people. */
size_t sc_people_union(const sc_contact_info *cl, size_t n_cl, char *const *names, size_t n_names,
                       const char *self, sc_person *out);
/* One sender's held envelopes, oldest first, through sc_accept_envelope, each
 * deleted once shown, until one cannot be shown: SC_OK when all were
 * released, else the reason (the rest stay held). `trust` calls it too. */
int sc_held_release_sender(sc_client *c, const char *who, sc_event_cb cb, void *ud);
/* How often a `listen` that stays connected tries them again. */
#define SC_HELD_RELEASE_INTERVAL_MS (15ull * 1000)
/* get_device_list + sc_account_accept. */
int sc_account_refresh(sc_client *c, const char *name, sotto_device_list *out);
/* Own-device monitoring: *alert true when the server's devices for our
 * account differ from the signed list (an own_device_alert notice is
 * stored, once per distinct alert). Returns SC_OK unless the check itself
 * failed (network, store). */
int sc_own_devices_check(sc_client *c, bool *alert);
/* Own alerts of another kind (key transparency: cfg_key "kt_own_alerts"):
 * the set of alert texts active now; each one not in the previous set of
 * that key becomes an own_device_alert notice (shown once while it lasts). */
int sc_own_alerts_set(sc_client *c, const char *cfg_key, const char *const *texts, size_t n);

/* kt.c: key transparency (docs/protocol.md "Key transparency"; design in
 * docs/internals/client.md). Client config keys: kt_server_key, kt_vrf_key
 * (hex, pinned on first use or given at register/link), kt_auditors
 * (comma-separated hex, 0..8), kt_max_age_s (default 86400),
 * kt_gossip_interval_s (default 3600). SC_E_KT: the directory refused or
 * contradicts (sc_errmsg says what). */
#include "sotto/kt.h"
#define SC_KT_DEFAULT_MAX_AGE_S 86400
#define SC_KT_DEFAULT_GOSSIP_INTERVAL_S 3600
/* Loads the pinned server and VRF keys; pins them from KtConfig when none
 * are pinned yet (one request). SC_E_KT when the server's keys differ from
 * the pinned ones or the server does not run key transparency;
 * SC_E_NETWORK / SC_E_RETRY / SC_E_SERVER from the request. */
int sc_kt_config(sc_client *c);
/* The pinned keys (after sc_kt_config): 32 bytes each. */
int sc_kt_keys(sc_client *c, uint8_t server_key[32], uint8_t vrf_key[32]);
/* The configured auditor keys (0..8) into aud, count in *n. */
int sc_kt_auditors(sc_client *c, uint8_t aud[SOTTO_KT_MAX_AUDITORS][32], size_t *n);
/* Accepts an audited head (wire bytes) served with the consistency path
 * from the held head (cons may be NULL/0 when none is held or sizes are
 * equal): server signature, max age, every configured auditor's
 * countersignature, consistency with the held head; the newer one becomes
 * the held head. *out (may be NULL) gets the parsed head. SC_OK, SC_E_KT
 * (what failed in sc_errmsg; evidence recorded for an inconsistent log),
 * SC_E_STORE. */
int sc_kt_accept_head(sc_client *c, const uint8_t *head, size_t head_len,
                      const uint8_t *consistency, size_t cons_len, sotto_kt_audited_head *out);
/* sc_kt_accept_head for an answer to a request made with known_size
 * asked_size (the size of the head held then, 0 for none): when the head
 * held now has another size (another process on this account accepted one
 * meanwhile), the consistency path proves nothing about it: SC_E_RETRY
 * (nothing stored, no evidence, c->kt_wait false): ask again. */
int sc_kt_accept_head_asked(sc_client *c, const uint8_t *head, size_t head_len,
                            const uint8_t *consistency, size_t cons_len, uint64_t asked_size,
                            sotto_kt_audited_head *out);
/* Before pinning `name`'s account key: the published directory must hold
 * account_key for name, and `list` (signed bytes, list_len) of version
 * list_version must not be older than the directory's (equal version: same
 * hash). list may be NULL (no list accepted yet: only the key is checked).
 * SC_OK; SC_E_RETRY (not published yet: "waiting until the key directory
 * publishes NAME's keys"); SC_E_KT (refused, contradicts, or no key
 * transparency on the server); SC_E_NETWORK / SC_E_SERVER. */
int sc_kt_verify_account(sc_client *c, const char *name, const uint8_t account_key[33],
                         const uint8_t *list, size_t list_len, uint64_t list_version);
/* What the directory holds for `name` (verified as sc_kt_verify_account
 * does, without comparing): for `kt check USER`. */
typedef struct sc_kt_entry {
    uint8_t account_key[33];
    uint8_t list_hash[32];
    uint64_t version;
    uint64_t counter;
    uint64_t timestamp_ms; /* date of the last update */
    uint64_t head_size;
} sc_kt_entry;
int sc_kt_lookup(sc_client *c, const char *name, sc_kt_entry *out);
/* Own-account monitoring (owner rule): SC_OK with *alert set when the
 * directory holds something for our account that we did not do (an
 * own_device_alert-style notice "key directory: ..." is stored once per
 * distinct alert); SC_E_NETWORK etc. when the check could not run. */
int sc_kt_monitor_own(sc_client *c, bool *alert);
/* Whether the own check is due (a `listen` that stays connected runs it at
 * least daily): none in this process for SC_KT_MONITOR_INTERVAL_MS. */
#define SC_KT_MONITOR_INTERVAL_MS (24ull * 3600 * 1000)
bool sc_kt_monitor_due(sc_client *c);
/* The owner rule (design section 1) on a verified entry of our own
 * account: appends "key directory: ..." alerts to rep (nothing stored,
 * no notice); with none, the entry becomes the baseline (kt_own). May fetch
 * our own list once when the entry is newer than the one held. SC_OK or an
 * error of the check itself. (Separate for the unit tests.) */
int sc_kt_own_rule(sc_client *c, const sc_kt_entry *ent, sc_kt_own_report *rep);
/* Our own entry could not be checked (the server answered `answer`, e.g.
 * "that it is not published yet"): the first such answer after a good check
 * starts a clock (client_config "kt_own_unverified_ms"; a good check in
 * sc_kt_own_rule stops it); once it has run longer than the larger of
 * SC_KT_OWN_UNVERIFIED_MAX_MS and kt_max_age_s, appends a "key directory:
 * ... has not been shown to this device since DATE" alert to rep (nothing
 * stored). A server that keeps an owner from its own entry could otherwise
 * hide a forged one there for good. SC_OK or a store error. */
#define SC_KT_OWN_UNVERIFIED_MAX_MS (24ull * 3600 * 1000)
int sc_kt_own_unverified(sc_client *c, const char *answer, sc_kt_own_report *rep);
/* Records the hash of an own signed list this device accepted or signed
 * (kt_own_lists). */
int sc_kt_own_list_note(sc_client *c, const uint8_t *list, size_t len, uint64_t version);
/* The held head's wire bytes (for gossip) into out (cap bytes,
 * SOTTO_KT_AUDITED_HEAD_MAX_BYTES is enough), *len; SC_E_NOT_FOUND when
 * none is held. */
int sc_kt_held_head(sc_client *c, uint8_t *out, size_t cap, size_t *len);
/* sc_kt_evidence_add(c, kind, text, a, alen, b, blen): store.h. */

/* gossip.c: key-transparency gossip (docs/protocol.md "Gossip"). Heads
 * received from contacts that could not be checked yet (no connection)
 * wait in kt_gossip_pending, at most this many (the oldest dropped). */
#define SC_GOSSIP_PENDING_MAX 64
/* Called where an outgoing Content is queued for `contact` (never our own
 * account): when our head was not attached to a message to contact within
 * kt_gossip_interval_s (or never), sets content->kt_head to the held head
 * (a buffer handed out in *buf_owned: the caller packs the Content, then
 * frees it and clears content->kt_head) and records the time (kt_gossip,
 * in the caller's transaction). *buf_owned NULL when nothing was attached
 * (no head held, too soon, own account). SC_OK or a store error (the
 * Content is then left as it was: send it without). */
int sc_gossip_attach(sc_client *c, const char *contact, Sotto__Content__Content *content,
                     uint8_t **buf_owned);
/* Checks a head `sender` (vetted) sent in Content.kt_head, outside any
 * transaction (it may make one KtConsistency request): ignored (debug line
 * with SOTTO_DEBUG_GOSSIP=1) when larger than SOTTO_KT_AUDITED_HEAD_MAX_BYTES,
 * malformed or not signed by our pinned server key; an alert (notice
 * kt_equivocation / kt_inconsistent to sender's conversation, and
 * kt_evidence) when the server contradicts itself; kept in
 * kt_gossip_pending when the check cannot finish now. SC_OK or a store
 * error; the message that carried the head is never affected. */
int sc_gossip_receive(sc_client *c, const char *sender, const uint8_t *head, size_t len);
/* After login: checks the pending heads, oldest first, until one cannot
 * finish (SC_E_NETWORK, the rest kept). */
int sc_gossip_retry_pending(sc_client *c);
/* The decision on a received head (pure; unit-tested). */
typedef enum {
    SC_GOSSIP_SAME = 0,  /* same size and root: nothing to check */
    SC_GOSSIP_FORK = 1,  /* same size, different roots: equivocation */
    SC_GOSSIP_CHECK = 2, /* different sizes: ask for a consistency proof */
} sc_gossip_verdict;
sc_gossip_verdict sc_gossip_compare(const sotto_kt_tree_head *ours,
                                    const sotto_kt_tree_head *theirs);
/* Checks a KtConsistency answer for heads a and b (either order, sizes may
 * be equal): root1/root2 (the server's roots at the smaller/larger size)
 * must be the heads' roots and `proof` (sotto_merkle_proof encoding; empty
 * for equal sizes) must prove the smaller log a prefix of the larger.
 * SOTTO_OK or SOTTO_ERR_PROOF_INVALID with *why (may be NULL) a static
 * English reason. */
int sc_gossip_check_answer(const sotto_kt_tree_head *a, const sotto_kt_tree_head *b,
                           const uint8_t root1[32], const uint8_t root2[32], const uint8_t *proof,
                           size_t proof_len, const char **why);

/* promote.c: the account key handed to another device (sc_promote in
 * sotto_client.h). Handles SyncMessage.account_key_transfer and
 * .account_key_received from another device of our own account (the caller
 * vetted it against our signed list), inside the envelope's transaction: a
 * transfer naming this device whose private key derives our pinned account
 * key is stored (client_config "account_sk") and confirmed to our devices
 * (queued); a confirmation from the device our last transfer named, for
 * that transfer, deletes our "account_sk". *rowid is the notice row stored
 * (0: none; codes primary_received, primary_changed, primary_confirmed,
 * primary_refused). SC_OK, or a store error. */
int sc_promote_handle(sc_client *c, const sc_envelope *e, const Sotto__Content__Content *ct,
                      int64_t *rowid);

/* linksync.c: linked devices get everything (sc_device_sync in
 * sotto_client.h; docs/protocol.md "Linked devices get everything").
 * sc_link_sync_pending, after login on any device: the first time, marks
 * the devices listed then as synced (they predate this); on the primary,
 * sends the sync to each listed device not yet synced (client_config
 * "synced_device:N"); a device without keys yet is tried at a later call.
 * Advisory: SC_OK unless the store failed (or a send error to report).
 * sc_link_sync_handle, inside the envelope's transaction: applies a
 * SyncMessage.link_sync from another device of our own account (the caller
 * vetted it against our signed list) naming this device; the notice rows
 * it stores (at most cap) into rows[0..*n). SC_OK or a store error. */
#define SC_LINK_SYNC_EXTRA_MAX (256 * 1024) /* a history row's extra JSON */
int sc_link_sync_pending(sc_client *c);
int sc_link_sync_handle(sc_client *c, const sc_envelope *e, const Sotto__Content__Content *ct,
                        int64_t *rows, size_t cap, size_t *n);

/* sealed.c: sealed sender in the client (docs/protocol.md "Sealed sender",
 * client rules). client_config keys: sealed_root (33 bytes, the pinned
 * trust root), sealed_root_alert (hex of a different root once reported),
 * sealed_cert / sealed_cert_expires / sealed_cert_renew (our cached sender
 * certificate, its expiry, and when it is renewed: sc_sealed_cert_renew_at),
 * sealed_root_given (the root was given with register --sealed-root and
 * the server has not named it yet),
 * sealed_token_sent (the delivery token last uploaded), sealed_token_due (an
 * upload failed: retried at the next tick), sealed_root_mismatch (the last
 * login named another root: nothing sealed, our token cleared),
 * sealed_refused:NAME (a token of NAME's the server refused, and when:
 * identified until NAME's profile key changes or for 24 h), sealed_off (this device sends
 * identified only), profile_key_auto (the profile key was made here for
 * sealed sender, before any profile: `profile set` replaces it). */
/* After a successful register or login (c->sealed_root_seen set by api.c):
 * pins the trust root on first sight (a later different one is not used:
 * a notice "sealed_root_changed" once per root); on the primary, makes
 * the profile key when there is none; uploads our delivery token when the
 * server does not hold the current one. Advisory: SC_OK unless the store
 * failed. */
int sc_sealed_after_auth(sc_client *c);
/* Uploads our delivery token (op 34; needs login), that of our current
 * profile key, unconditionally (at every login: the server may have lost
 * it), or clears it on the server while the served trust root differs from
 * the pinned one ("sealed_root_mismatch"); profile.c calls it after making
 * a new key. Nothing without a pinned root or a profile key. Advisory: a
 * failed upload sets "sealed_token_due" (retried by sc_sealed_token_tick);
 * SC_OK unless the store failed. */
int sc_sealed_token_refresh(sc_client *c);
/* Whether the last login named another trust root than the pinned one
 * ("sealed_root_mismatch"): nothing is sealed, and our token is kept
 * cleared on the server (profile.c's rotation uploads none then). */
bool sc_sealed_root_mismatch(sc_client *c);
/* Housekeeping: sc_sealed_token_refresh again when the last one failed
 * ("sealed_token_due"); SC_OK otherwise. Needs login. */
int sc_sealed_token_tick(sc_client *c);
/* Whether a send to `dest` is sealed, and with which token: not our own
 * account, sealing on, a trust root pinned, dest's profile key held, the
 * 1:1 conversation with dest accepted (not a request) and not blocked, and
 * no refusal recorded for that token. *seal false otherwise (token zeroed).
 * SC_OK or a store error. */
int sc_sealed_decide(sc_client *c, const char *dest, bool *seal, uint8_t token[16]);
/* Seals each ciphertext of msgs[0..n) (types 2/3, for dest's devices) with
 * our sender certificate (fetched and cached, see sc_sealed_cert) and sends
 * them as one sealed send over c->sealed_conn (opened when needed, never
 * logged in). Outcomes as sc_api_send; REFUSED with status -2 when nothing
 * went out because sealing was not possible here (no valid certificate,
 * a recipient key unknown): the caller sends identified instead. */
sc_api_outcome sc_sealed_send(sc_client *c, const char *dest, const sc_api_outgoing *msgs, size_t n,
                              const uint8_t token[16], uint64_t *server_ts, sc_api_result *r);
#define SC_SEALED_LOCAL_REFUSAL (-2) /* sc_api_result.status of sc_sealed_send */
/* The server refused `token` for dest (UNAUTHENTICATED): recorded, so that
 * sends to dest are identified until dest's profile key changes or for 24 h
 * (then sealing is tried again). _at: as if refused at at_ms (tests). */
int sc_sealed_note_refused(sc_client *c, const char *dest, const uint8_t token[16]);
int sc_sealed_note_refused_at(sc_client *c, const char *dest, const uint8_t token[16],
                              uint64_t at_ms);
/* A sealed send to dest was answered QUEUE_FULL (queue_full true) or
 * RATE_LIMITED: dest's sealed quota/rate, shared by all sealed senders, is
 * spent; the caller sends that message identified at once. Nothing is
 * recorded (the next send tries sealed again); a line on stderr with
 * SOTTO_DEBUG_SEALED=1. */
void sc_sealed_note_busy(sc_client *c, const char *dest, bool queue_full);
/* When a sender certificate fetched at fetched_ms and expiring at
 * expires_ms is renewed: min(1 h, half its validity) before it expires
 * (a certificate already expired: at once). */
uint64_t sc_sealed_cert_renew_at(uint64_t fetched_ms, uint64_t expires_ms);
/* Our sender certificate, valid (under the pinned root, naming us) until
 * at least sc_sealed_cert_renew_at: the cached one or a fresh one (op 33,
 * needs login).
 * *cert malloc()ed. SC_E_UNTRUSTED when the server's does not validate,
 * SC_E_STATE without a pinned root, else the request's error. */
int sc_sealed_cert(sc_client *c, uint8_t **cert, size_t *len);
/*
 * A received envelope of type 6: opens it with our identity key and the
 * pinned root, the certificate's expiry checked at the envelope's server
 * time (our clock when that is 0 or more than 5 min ahead of it), checks
 * that the certificate's identity key is the one the sender's signed
 * device list (held, else fetched) names for that device, and fills
 * *inner with the envelope as if identified (same id and server time,
 * source and device from the certificate, type 3 or 2, body the inner
 * Signal message; free with sc_envelope_clear). *refused true when it can
 * never be shown: an event (SC_EV_NOTICE, code "sealed_refused", not
 * stored) went to cb and nothing was stored; the caller acks it. SC_OK, or
 * an error that leaves the envelope unacked (network while fetching the
 * list, store).
 */
int sc_sealed_open(sc_client *c, const sc_envelope *e, sc_envelope *inner, bool *refused,
                   sc_event_cb cb, void *ud);

#endif /* SOTTO_CLIENT_INTERNAL_H */
