/*
 * client/core/store.h -- the client's storage layer (internal): the only
 * code in client/ that speaks SQL (store.c is the only file in client/
 * that includes sqlite3.h).
 *
 * The client's tables live in the same SQLite file as libsotto's protocol
 * store (store.db in the account directory, sotto/sqlite_store.h), so that
 * one transaction covers a ratchet step and what it decrypted. Table names
 * start with "client_" (libsotto owns "sotto_" and PRAGMA user_version; the
 * client's schema version is kept in its own table, client_schema_version).
 * The schema, its version history and the migration rules are described at
 * the top of store.c.
 *
 * Conventions (every function below):
 *  - takes the account `c` first and returns SC_OK or an SC_E_* code; on
 *    failure the reason (with SQLite's own message) is in sc_errmsg(c).
 *    SC_E_STORE: the database failed; SC_E_NOT_FOUND: no such row (only
 *    where documented); SC_E_INTERNAL: out of memory.
 *  - strings are NUL-terminated UTF-8; input pointers are only read during
 *    the call. Output strings and arrays are malloc()ed and owned by the
 *    caller, to free with the named free function (or free()).
 *  - every call runs as its own statement (autocommit) unless the caller
 *    opened a transaction with sc_db_begin(); transactions nest (an inner
 *    begin is a savepoint), so a store call that needs several statements
 *    to be atomic opens its own (nested) transaction.
 */
#ifndef SOTTO_CLIENT_STORE_H
#define SOTTO_CLIENT_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api.h"
#include "sotto/keys.h"
#include "sotto_client.h"

/* Client schema version this code writes (client_schema_version). */
#define SC_STORE_VERSION 7

/* A pending event claimed by a process that is still alive is taken over
 * after this long anyway (the claimer hangs, or its pid was reused). */
#define SC_PENDING_CLAIM_STALE_MS (15ull * 60 * 1000)

/* ------------------------------------------------------------ schema */

/* Creates the client tables in a new store or migrates an older one
 * forward, one step per transaction. A store whose client schema is newer
 * than SC_STORE_VERSION is refused with SC_E_STORE and left untouched. */
int sc_store_init(sc_client *c);
/* Before the account's protocol store is opened (libsotto's open writes to
 * the file): refuses, with SC_E_STORE, an existing store file at `path`
 * whose client schema is newer than SC_STORE_VERSION, reading it on a
 * connection of its own. c->db is not used. */
int sc_store_precheck(sc_client *c, const char *path, bool must_exist);
/* The client schema version of the open store into *version. */
int sc_store_version(sc_client *c, int *version);

/* ------------------------------------------------------------ transactions */

/* begin opens a transaction (BEGIN IMMEDIATE) or, inside one, a savepoint;
 * commit and rollback close the innermost one (sotto_sqlite_store_begin). */
int sc_db_begin(sc_client *c);
int sc_db_commit(sc_client *c);
void sc_db_rollback(sc_client *c);

/* ------------------------------------------------------------ config */

/* client_config: key -> value. Getters give SC_E_NOT_FOUND when the key is
 * absent (or NULL); *out is then NULL / 0. */
int sc_cfg_get_text(sc_client *c, const char *key, char **out);
int sc_cfg_get_blob(sc_client *c, const char *key, uint8_t **out, size_t *len);
int sc_cfg_get_u64(sc_client *c, const char *key, uint64_t *out);
int sc_cfg_set_text(sc_client *c, const char *key, const char *v);
int sc_cfg_set_blob(sc_client *c, const char *key, const uint8_t *v, size_t len);
int sc_cfg_set_u64(sc_client *c, const char *key, uint64_t v);
int sc_cfg_delete(sc_client *c, const char *key);
/* Deletes the client_config keys that start with `prefix` and are older than
 * `cutoff`: with by_key, the decimal number right after the prefix in the key
 * (keys "PREFIX<ms>:...") is compared; otherwise the key's integer value.
 * SC_OK or SC_E_STORE. (retry.c keeps its bounded per-peer state so.) */
int sc_cfg_prune(sc_client *c, const char *prefix, uint64_t cutoff, bool by_key);

/* ------------------------------------------------------------ contacts */

/* Records contact `name` (not our own username) and, when device_id != 0,
 * that it has that device. */
int sc_contact_touch(sc_client *c, const char *name, uint32_t device_id);
/* Whether `name` is a contact. */
int sc_contact_known(sc_client *c, const char *name, bool *known);
int sc_contact_forget_device(sc_client *c, const char *name, uint32_t device_id);
/* Marks `name` verified (after `trust`). */
int sc_contact_set_verified(sc_client *c, const char *name);
/* All contacts by name into *out (n entries; names malloc()ed): free with
 * sc_contact_list_free(). */
int sc_contact_list(sc_client *c, sc_contact_info **out, size_t *n);
void sc_contact_list_free(sc_contact_info *v, size_t n);

/* ------------------------------------------------------------ identities */

/* A changed identity key of (name, device) waiting for `trust`. */
int sc_pending_identity_set(sc_client *c, const char *name, uint32_t device_id,
                            const sotto_public_key *key);
/* Whether any device of `name` has one. */
int sc_pending_identity_any(sc_client *c, const char *name, bool *any);
typedef struct sc_pending_identity {
    uint32_t device_id;
    sotto_public_key key;
} sc_pending_identity;
/* All pending keys of `name` that decode, into *out (free()) and *n. */
int sc_pending_identity_list(sc_client *c, const char *name, sc_pending_identity **out, size_t *n);
/* Removes every pending key of `name`. */
int sc_pending_identity_clear(sc_client *c, const char *name);

/* ------------------------------------------------------------ history */

/* A history row to insert (strings borrowed). */
typedef struct sc_msg_row {
    const char *conv_kind; /* "contact" | "group" */
    const char *conv;      /* contact name or group id hex */
    int direction;         /* 0 in, 1 out */
    const char *sender;
    uint32_t sender_device;
    uint64_t timestamp;
    uint64_t server_ts;
    const char *kind; /* "text" | "notice" | "group" */
    const char *body;
    size_t body_len;
    const char *extra; /* JSON text (attachments, notice code, group info) or NULL */
    /* issue 11 (schema v7; all 0/NULL for an ordinary row) */
    const char *target_sender; /* control rows: author of the message acted on */
    uint64_t target_ts;        /* and its timestamp */
    uint32_t expire_s;         /* disappearing timer the message was sent under */
    uint64_t expires_ms;       /* when it disappears (0: not started) */
    bool request;              /* part of a message request */
} sc_msg_row;

/* A stored history row (every string malloc()ed and NUL-terminated; body
 * may hold body_len bytes; extra NULL when none): sc_msg_free(). */
typedef struct sc_msg {
    int64_t id;
    char *conv_kind;
    char *conv;
    int direction;
    char *sender;
    uint32_t sender_device;
    uint64_t timestamp;
    uint64_t server_ts;
    char *kind;
    char *body;
    size_t body_len;
    char *extra;
    /* issue 11 (schema v7) */
    char *target_sender; /* NULL unless a control row */
    uint64_t target_ts;
    uint64_t read_ms;    /* incoming: read at (0: unread) */
    uint32_t expire_s;   /* disappearing timer (0: none) */
    uint64_t expires_ms; /* 0: not started */
    uint64_t edited_ts;  /* the edit shown (0: never edited) */
    bool deleted;        /* deleted for everyone: a tombstone */
    bool request;        /* part of a message request */
} sc_msg;

/* Inserts a row; its id into *rowid (may be NULL). */
int sc_msg_insert(sc_client *c, const sc_msg_row *m, int64_t *rowid);
/* Row `rowid` into *out: SC_OK or SC_E_NOT_FOUND. */
int sc_msg_get(sc_client *c, int64_t rowid, sc_msg *out);
/* Wipes (texts and keys) and frees the strings of m (not m itself). */
void sc_msg_free(sc_msg *m);
/* The last `limit` rows (0: all) of a conversation, oldest first, into *out
 * (n rows): sc_msg_list_free(). */
int sc_msg_history(sc_client *c, const char *conv_kind, const char *conv, size_t limit,
                   sc_msg **out, size_t *n);
void sc_msg_list_free(sc_msg *v, size_t n);
/* Replaces the extra JSON of row `rowid`. */
int sc_msg_set_extra(sc_client *c, int64_t rowid, const char *extra);
/* Highest history row id (0 when empty). */
int sc_msg_max_id(sc_client *c, int64_t *out);
/* Records (sender, timestamp) as shown; *seen true when it was already. */
int sc_msg_seen(sc_client *c, const char *sender, uint64_t timestamp, bool *seen);
/* Whether conversation (conv_kind, conv) holds a row other than a notice
 * from `sender` with message id `timestamp` (our own sent rows are not in
 * client_seen_messages; linksync.c). */
int sc_msg_exists(sc_client *c, const char *conv_kind, const char *conv, const char *sender,
                  uint64_t timestamp, bool *exists);
/* A 1:1 message that was never sent: deletes history row `msg_id` when it
 * is a "contact" row and, if it did, the outgoing rows of timestamp `ts` to
 * `own_username` (its copies for our other devices), atomically. *deleted
 * (may be NULL) says whether the history row existed. */
int sc_msg_delete_unsent(sc_client *c, int64_t msg_id, uint64_t ts, const char *own_username,
                         bool *deleted);

/* ------------------------------------------------------------ envelopes */

/* Envelope ids already processed (client_seen_envelopes). The mark is made
 * inside the envelope's transaction ("INSERT ... INTO client_seen_envelopes",
 * which tests/e2e/crash_shim.c watches). */
int sc_envelope_seen(sc_client *c, const uint8_t *id, size_t len, bool *seen);
int sc_envelope_mark(sc_client *c, const uint8_t *id, size_t len);

/* Envelopes held until `trust` (identity changed). add ignores an id held
 * already. next gives the oldest held envelope of `source` into *e (body
 * malloc()ed: sc_envelope_clear()) and its row into *row, or
 * SC_E_NOT_FOUND. */
int sc_held_add(sc_client *c, const sc_envelope *e);
int sc_held_next(sc_client *c, const char *source, sc_envelope *e, int64_t *row);
int sc_held_delete(sc_client *c, int64_t row);
/* Held envelopes that no `trust` is waiting for: those of senders with no
 * changed account key (client_accounts.pending_key) and no changed
 * identity key (client_pending_identity) -- held because the key directory
 * has not published or did not verify the sender's keys (a new sender has
 * no pinned key yet), or because the sender's list did not check out.
 * recv.c tries them again at each receive. senders: the distinct senders
 * of such envelopes, the one with the oldest held envelope first (*names
 * malloc()ed: sc_strv_free; *n 0 when none). any: whether `source` has
 * one. */
int sc_held_waiting_senders(sc_client *c, char ***names, size_t *n);
int sc_held_waiting_any(sc_client *c, const char *source, bool *any);

/* ------------------------------------------------------------ outbox */

/* A queued outgoing content (client_outgoing): content malloc()ed (a padded
 * plaintext: sc_out_row_clear() wipes it). msg_id 0 when the row has no
 * history row. */
typedef struct sc_out_row {
    int64_t id;
    char *destination;
    uint64_t timestamp;
    uint8_t *content;
    size_t len;
    int64_t msg_id;
    uint32_t attempts;
} sc_out_row;

/* Queues content for destination (msg_rowid <= 0: none). */
int sc_out_add(sc_client *c, const char *destination, uint64_t timestamp, const uint8_t *content,
               size_t len, int64_t msg_rowid);
/* The first row with id > after_id into *out, or SC_E_NOT_FOUND. */
int sc_out_next(sc_client *c, int64_t after_id, sc_out_row *out);
void sc_out_row_clear(sc_out_row *r);
int sc_out_delete(sc_client *c, int64_t id);
/* Replaces the content of queued row id (len bytes; outupload.c). */
int sc_out_set_content(sc_client *c, int64_t id, const uint8_t *content, size_t len);
/* attempts + 1 */
int sc_out_bump(sc_client *c, int64_t id);
/* Rows queued, all / of message timestamp ts. */
int sc_out_count(sc_client *c, size_t *n);
/* distinct messages queued (a message to several accounts has a row each) */
int sc_out_count_messages(sc_client *c, size_t *n);
int sc_out_count_ts(sc_client *c, uint64_t ts, size_t *n);
/* Queued rows with Content.timestamp ts for destination dest. */
int sc_out_count_ts_to(sc_client *c, uint64_t ts, const char *dest, size_t *n);

/* ------------------------------------------------------------ session resets */

/* Devices to start a fresh session with at the next send (after an
 * undecryptable message). list gives at most cap ids. */
int sc_session_reset_add(sc_client *c, const char *name, uint32_t device_id);
int sc_session_reset_list(sc_client *c, const char *name, uint32_t *ids, size_t cap, size_t *n);
int sc_session_reset_remove(sc_client *c, const char *name, uint32_t device_id);

/* ------------------------------------------------------------ signed prekeys */

/* Bookkeeping of our signed prekeys (the keys are in libsotto's store).
 * add: every current one becomes replaced at now_ms, `id` is current. */
int sc_spk_add(sc_client *c, uint32_t id, uint64_t now_ms);
/* Creation time of the current one, or SC_E_NOT_FOUND. */
int sc_spk_current_created(sc_client *c, uint64_t *created_ms);
/* Ids replaced before cutoff_ms (at most cap). */
int sc_spk_replaced_before(sc_client *c, uint64_t cutoff_ms, uint32_t *ids, size_t cap, size_t *n);
int sc_spk_delete(sc_client *c, uint32_t id);

/* ------------------------------------------------------------ groups */

/* Name, active flag and members (sorted; at most SC_MAX_GROUP_MEMBERS + 1)
 * of group `id`; SC_E_NOT_FOUND when unknown. name/active may be NULL;
 * free with sc_strv_free() and free(). */
int sc_group_members(sc_client *c, const uint8_t id[SC_GROUP_ID_BYTES], char ***members, size_t *n,
                     char **name, bool *active);
void sc_strv_free(char **v, size_t n);
int sc_group_exists(sc_client *c, const uint8_t id[SC_GROUP_ID_BYTES], bool *exists);
/* Groups called `name`: *count of them (of the active ones when any is
 * active), and the id of the first (active first, most recently updated
 * first) into id when *count > 0. */
int sc_group_by_name(sc_client *c, const char *name, uint8_t id[SC_GROUP_ID_BYTES], size_t *count);
/* Creates or updates (name, active) of group id. */
int sc_group_upsert(sc_client *c, const uint8_t id[SC_GROUP_ID_BYTES], const char *name,
                    bool active);
/* Replaces the member list (atomically). */
int sc_group_set_members(sc_client *c, const uint8_t id[SC_GROUP_ID_BYTES], char *const *m,
                         size_t n);
/* Every group id, oldest first, into *ids (n * SC_GROUP_ID_BYTES bytes,
 * free()). */
int sc_group_ids(sc_client *c, uint8_t **ids, size_t *n);
/* Revision and "everyone may edit" flag of group id (either out may be
 * NULL); SC_E_NOT_FOUND when unknown. */
int sc_group_meta(sc_client *c, const uint8_t id[SC_GROUP_ID_BYTES], uint64_t *revision,
                  bool *open);
/* Sets them (the group row must exist). */
int sc_group_set_meta(sc_client *c, const uint8_t id[SC_GROUP_ID_BYTES], uint64_t revision,
                      bool open);
/* The members of group id that are admins, sorted (free with
 * sc_strv_free()); none for an unknown group. */
int sc_group_admins(sc_client *c, const uint8_t id[SC_GROUP_ID_BYTES], char ***admins, size_t *n);
/* Makes exactly the members named in a[0..n) admins (names that are not
 * members are ignored; call after sc_group_set_members). */
int sc_group_set_admins(sc_client *c, const uint8_t id[SC_GROUP_ID_BYTES], char *const *a,
                        size_t n);
/* Rate limit of REQUEST_STATE: *due is true (and the time is recorded as
 * now) when we last asked about group id (known or not) at least
 * min_gap_ms ago or never. */
int sc_group_ask_due(sc_client *c, const uint8_t id[SC_GROUP_ID_BYTES], uint64_t min_gap_ms,
                     bool *due);

/* ------------------------------------------------------------ pending events */

/*
 * History rows stored but not yet handed to the caller (client_pending_events).
 * A row is added inside its envelope's transaction, already claimed by this
 * process; it is removed only after its event was emitted. A row claimed by
 * a process that died (or whose claim is older than
 * SC_PENDING_CLAIM_STALE_MS) can be claimed again, so a killed client shows
 * it at its next receive, and two processes never both show it.
 */
int sc_pending_event_add(sc_client *c, int64_t rowid);
/* A row for whichever process shows pending events next (a notice stored
 * outside a receive: device list changes seen while sending, alerts). */
int sc_pending_event_add_unclaimed(sc_client *c, int64_t rowid);
/* Claims the oldest pending row with id > after that is unclaimed or whose
 * claimer is gone, into *rowid; SC_E_NOT_FOUND when there is none. Rows
 * claimed by this process are skipped. */
int sc_pending_event_claim_next(sc_client *c, int64_t after, int64_t *rowid);
/* Refreshes this process's claim on rowid: SC_OK while it holds it,
 * SC_E_NOT_FOUND when the row is gone or another process took it. */
int sc_pending_event_hold(sc_client *c, int64_t rowid);
/* Removes rowid if this process holds it: SC_OK, or SC_E_NOT_FOUND. */
int sc_pending_event_done(sc_client *c, int64_t rowid);

/* ---- accounts (v3): pinned account keys and accepted device lists ----
 * One row per account we know (contacts and our own), docs/protocol.md
 * "Account key and device list". The list is the newest signed device list
 * accepted (verified under account_key), kept as the signed bytes. */
#define SC_ACCOUNT_KEY_BYTES 33
typedef struct sc_account_row {
    bool has_key;
    uint8_t account_key[SC_ACCOUNT_KEY_BYTES]; /* pinned */
    bool has_pending;
    uint8_t pending_key[SC_ACCOUNT_KEY_BYTES]; /* a changed key waiting for `trust` */
    uint8_t *list;                             /* malloc()ed signed list or NULL */
    size_t list_len;
    uint64_t list_version; /* 0: none accepted yet */
} sc_account_row;
/* SC_E_NOT_FOUND when no key is pinned for name. */
int sc_account_get(sc_client *c, const char *name, sc_account_row *out);
void sc_account_row_clear(sc_account_row *r);
/* Pins a first account key (trust on first use); the row must not exist. */
int sc_account_pin(sc_client *c, const char *name, const uint8_t key[SC_ACCOUNT_KEY_BYTES]);
/* Stores a newly accepted signed list (the caller verified it). */
int sc_account_set_list(sc_client *c, const char *name, const uint8_t *list, size_t len,
                        uint64_t version);
/* Records a changed account key the user has not accepted. */
int sc_account_set_pending(sc_client *c, const char *name, const uint8_t key[SC_ACCOUNT_KEY_BYTES]);
/* The server serves the pinned key again: a recorded change is void. */
int sc_account_clear_pending(sc_client *c, const char *name);
/* Forgets what is pinned for name (a link that failed its check). */
int sc_account_forget(sc_client *c, const char *name);
/* `trust`: the pending key becomes the pinned one (its list is fetched
 * again); *changed false when there was none. */
int sc_account_accept_pending(sc_client *c, const char *name, bool *changed);

/* ---- backup (backup.c, docs/protocol.md "Backup payload") ---- */
/* Names of every account with a row in client_accounts, sorted, into
 * *names (n entries; free with sc_strv_free()). */
int sc_account_names(sc_client *c, char ***names, size_t *n);
/* A contact from a backup: inserted, or (already there) its verified flag
 * set to `verified`. Unlike sc_contact_touch() it needs no username yet. */
int sc_contact_import(sc_client *c, const char *name, bool verified);
/* A pinned account key from a backup, with the newest list accepted for it
 * (list NULL or len 0: none; version is then stored as 0). The caller
 * verified the list under the key. The row must not exist (SC_E_STORE). */
int sc_account_import(sc_client *c, const char *name, const uint8_t key[SC_ACCOUNT_KEY_BYTES],
                      const uint8_t *list, size_t len, uint64_t version);
/* At most `limit` (1..100000) history rows with id > after_id, in id order,
 * into *out (n rows): sc_msg_list_free(). */
int sc_msg_page(sc_client *c, int64_t after_id, size_t limit, sc_msg **out, size_t *n);
/* *empty: the store holds no contact, pinned account, group, history row,
 * username nor account key (a local account a restore may fill). */
int sc_store_is_empty(sc_client *c, bool *empty);

/* ---- attachment downloads ----
 * A received attachment is "to fetch" while its object in the history row's
 * extra JSON ({"attachments":[{id, key, digest, size, content_type,
 * file_name, path?, error?}, ...]}, attach.c) still has a "key" and no
 * "path": the key is removed once the file was saved or the download failed
 * for good (integrity, blob gone), and kept while a failure may pass (the
 * network, the server, the local disk). Reading and updating the row
 * itself: sc_msg_get / sc_msg_set_extra.
 * Up to `max` ids (ascending, all > `after`) of history rows that may hold
 * an attachment to fetch (their extra has a "key") and are not on the
 * pending-events list (those are fetched when their event is shown) into
 * rows[0..*n). SC_OK (also when *n == 0) or SC_E_STORE. */
int sc_store_att_rows_to_fetch(sc_client *c, int64_t after, size_t max, int64_t *rows, size_t *n);

/* ---- key transparency (v4; docs/protocol.md "Key transparency") ----
 * The audited tree head this device holds, the own-account monitoring
 * baseline, the own signed lists' hashes, gossip bookkeeping and evidence.
 * Heads are stored as their wire bytes (sotto_kt_audited_head encoding);
 * nothing here verifies them (client/core/kt.c and gossip.c do). */

/* kt_head: the held head into *head (malloc()ed, free()), *len and
 * *accepted_ms (may be NULL); SC_E_NOT_FOUND when none is held. */
int sc_kt_head_get(sc_client *c, uint8_t **head, size_t *len, uint64_t *accepted_ms);
/* Replaces the held head. */
int sc_kt_head_set(sc_client *c, const uint8_t *head, size_t len, uint64_t accepted_ms);

/* kt_own: the last good own check: the directory's update counter and the
 * list version it held, and when (ms). SC_E_NOT_FOUND: no baseline yet. */
int sc_kt_own_get(sc_client *c, uint64_t *counter, uint64_t *version, uint64_t *checked_ms);
int sc_kt_own_set(sc_client *c, uint64_t counter, uint64_t version, uint64_t checked_ms);
/* kt_own_lists: SHA-256 of each own signed list this device accepted or
 * signed, by version (set replaces the hash of that version). get gives
 * SC_E_NOT_FOUND for a version never recorded. */
int sc_kt_own_list_set(sc_client *c, uint64_t version, const uint8_t hash[32]);
int sc_kt_own_list_get(sc_client *c, uint64_t version, uint8_t hash[32]);

/* kt_gossip: when our head was last attached to a message to `contact`
 * (ms); SC_E_NOT_FOUND (and *last_sent_ms 0) when never. */
int sc_kt_gossip_last_sent(sc_client *c, const char *contact, uint64_t *last_sent_ms);
int sc_kt_gossip_set_last_sent(sc_client *c, const char *contact, uint64_t sent_ms);

/* kt_gossip_pending: heads received from contacts whose check could not be
 * finished (network), to retry at the next connect. */
typedef struct sc_kt_gossip_pending {
    int64_t id;
    char *contact; /* malloc()ed */
    uint8_t *head; /* malloc()ed wire bytes */
    size_t head_len;
    uint64_t received_ms;
} sc_kt_gossip_pending;
/* Adds one; its id into *id (may be NULL). */
int sc_kt_gossip_pending_add(sc_client *c, const char *contact, const uint8_t *head, size_t len,
                             uint64_t received_ms, int64_t *id);
/* All of them, oldest first, into *out (n entries): free with
 * sc_kt_gossip_pending_free(). */
int sc_kt_gossip_pending_list(sc_client *c, sc_kt_gossip_pending **out, size_t *n);
void sc_kt_gossip_pending_free(sc_kt_gossip_pending *v, size_t n);
int sc_kt_gossip_pending_delete(sc_client *c, int64_t id);

/* kt_evidence: what a key-transparency alert was based on, kept for the
 * user (kind e.g. "equivocation", "inconsistent", "own"; text the alert;
 * head_a/head_b the heads involved, NULL/0 when none), created now. */
int sc_kt_evidence_add(sc_client *c, const char *kind, const char *text, const uint8_t *a,
                       size_t alen, const uint8_t *b, size_t blen);
typedef struct sc_kt_evidence {
    int64_t id;
    uint64_t created_ms;
    char *kind, *text;        /* malloc()ed */
    uint8_t *head_a, *head_b; /* malloc()ed or NULL */
    size_t head_a_len, head_b_len;
} sc_kt_evidence;
/* Every row, oldest first, into *out (n): sc_kt_evidence_list_free(). */
int sc_kt_evidence_list(sc_client *c, sc_kt_evidence **out, size_t *n);
void sc_kt_evidence_list_free(sc_kt_evidence *v, size_t n);
int sc_kt_evidence_count(sc_client *c, size_t *n);

/* ---- the daemon's event subscribers (schema v5; daemon.c, docs/rpc.md) ---- */

/* Creates subscriber `name` (acked_upto = start) unless it exists; gives
 * its acked_upto. */
int sc_sub_open(sc_client *c, const char *name, int64_t start, int64_t *acked_upto);
/* The event rows `name` has not acknowledged, oldest first (*out: free
 * with sc_msg_list_free). own_device: this device's id (its own outgoing
 * rows are not events). */
int sc_sub_unacked(sc_client *c, const char *name, uint32_t own_device, sc_msg **out, size_t *n);
/* Acknowledges ids[0..n) and every id <= up_to (0: none) for `name`
 * (SC_E_NOT_FOUND when it never subscribed); *acked_upto: the new mark. */
int sc_sub_ack(sc_client *c, const char *name, uint32_t own_device, const int64_t *ids, size_t n,
               int64_t up_to, int64_t *acked_upto);

/* ---- issue 11: requests ---- */

/* Whether conversation (conv_kind, conv) is accepted (client_conversations;
 * no row: not accepted). */
int sc_conv_accepted(sc_client *c, const char *conv_kind, const char *conv, bool *accepted);
/* Sets its accepted flag (creates the row; keeps its other columns). */
int sc_conv_set_accepted(sc_client *c, const char *conv_kind, const char *conv, bool accepted);
/* Clears request = 1 of every row of the conversation. */
int sc_msg_clear_requests(sc_client *c, const char *conv_kind, const char *conv);
/* The history row ids of the conversation, oldest first, into *ids
 * (malloc()ed, free()) and *n. */
int sc_msg_conv_ids(sc_client *c, const char *conv_kind, const char *conv, int64_t **ids,
                    size_t *n);
/* client_blocked: whether `name` is blocked; add (at_ms: when; *added,
 * may be NULL: it was not blocked before); remove (*removed, may be NULL:
 * it was blocked); every entry by name (*names: sc_strv_free(names, n);
 * *at_ms (at_ms may be NULL): free()); clear (before a synced list). */
int sc_blocked_is(sc_client *c, const char *name, bool *blocked);
int sc_blocked_add(sc_client *c, const char *name, uint64_t at_ms, bool *added);
int sc_blocked_remove(sc_client *c, const char *name, bool *removed);
int sc_blocked_list(sc_client *c, char ***names, uint64_t **at_ms, size_t *n);
int sc_blocked_clear(sc_client *c);
/* A conversation with rows of a message request (request != 0). */
typedef struct sc_request_row {
    char *conv_kind, *conv; /* malloc()ed */
    size_t count;           /* its request rows */
    uint64_t first_ts, last_ts;
    char *first_body; /* the oldest request row's text (malloc()ed, wiped by the free) */
} sc_request_row;
/* Every conversation holding request rows, oldest first: free with
 * sc_request_rows_free. */
int sc_request_rows(sc_client *c, sc_request_row **out, size_t *n);
void sc_request_rows_free(sc_request_row *v, size_t n);

/* ---- issue 11: expire ---- */

/* Removes the text of history row `rowid` from the store (expire.c
 * sc_wipe_message does the files and the WAL): its edit versions,
 * reactions, receipts (our own message), the control rows acting on it
 * (for a tombstone the "delete" rows stay), "attachment_ready" notices
 * naming it, its not-yet-sent queued copies (our own message); then the
 * row itself: tombstone: body '', extra NULL, deleted = 1, expires_ms 0;
 * else deleted. Pending events of rows gone are dropped. Inside the
 * caller's transaction (or autocommit). SC_E_NOT_FOUND: no such row. */
int sc_msg_wipe(sc_client *c, int64_t rowid, bool tombstone);
/* PRAGMA wal_checkpoint(TRUNCATE), outside any transaction; *done: the WAL
 * was copied back and truncated (false: a reader kept it busy). */
int sc_store_checkpoint(sc_client *c, bool *done);
/* Up to max ids of rows with 0 < expires_ms <= now, soonest first. */
int sc_msg_expired(sc_client *c, uint64_t now, size_t max, int64_t *rows, size_t *n);
/* Starts the disappearing timer of row `rowid` (expire_s > 0) at from_ms:
 * expires_ms = from_ms + expire_s s, unless it already runs out sooner. */
int sc_msg_expire_start(sc_client *c, int64_t rowid, uint64_t from_ms);
/* The disappearing timer of a conversation and the Content.timestamp of
 * the change that set it (0, 0 when never set); expire_ts may be NULL. */
int sc_conv_timer_get(sc_client *c, const char *conv_kind, const char *conv, uint32_t *expire_s,
                      uint64_t *expire_ts);
/* Sets it when ts is newer than the change stored; *changed (may be NULL)
 * says whether it did. */
int sc_conv_timer_set(sc_client *c, const char *conv_kind, const char *conv, uint32_t expire_s,
                      uint64_t ts, bool *changed);
/* Replaces body and extra (NULL: none) of row `rowid` (longtext.c). */
int sc_msg_set_body_extra(sc_client *c, int64_t rowid, const char *body, size_t body_len,
                          const char *extra);
/* Whether a transaction is open on the store's connection. */
bool sc_db_in_transaction(sc_client *c);
/* Whether a queued outgoing row's content holds the bytes of needle. */
int sc_out_mentions(sc_client *c, const char *needle, bool *found);

/* ---- issue 11: receipts (receipts.c; tables client_receipts_out,
 * client_receipts, columns read_ms/expires_ms of client_messages) ---- */

/* A receipt we owe: recipient (the author of the message), its timestamp,
 * type 0 delivery / 1 read, sent once due_ms has passed. One already owed
 * is kept (its due time unchanged). */
int sc_rcpt_out_add(sc_client *c, const char *recipient, uint64_t timestamp, int type,
                    uint64_t due_ms);
/* How many receipts are owed, and the latest due time among them (0). */
int sc_rcpt_out_pending(sc_client *c, size_t *n, uint64_t *max_due);
/* The next batch due at now_ms: the recipient and type of the receipt due
 * first (*recipient malloc()ed, free()) and up to cap of that recipient's
 * due timestamps of that type, ascending, into ts[0..*n).
 * SC_E_NOT_FOUND when none is due. */
int sc_rcpt_out_batch(sc_client *c, uint64_t now_ms, char **recipient, int *type, uint64_t *ts,
                      size_t cap, size_t *n);
/* Removes the owed receipts (recipient, ts[i], type). */
int sc_rcpt_out_delete(sc_client *c, const char *recipient, int type, const uint64_t *ts, size_t n);
/* Removes every owed receipt of a type (read receipts turned off). */
int sc_rcpt_out_drop_type(sc_client *c, int type);
/* Receipts for our own message `timestamp` from `recipient`: keeps the
 * best state (1 delivered, 2 read) and when it was learnt; *changed (may
 * be NULL) whether the state went up. */
int sc_rcpt_set(sc_client *c, uint64_t timestamp, const char *recipient, int state, uint64_t at_ms,
                bool *changed);
typedef struct sc_rcpt_row {
    char *recipient; /* malloc()ed */
    int state;       /* 1 delivered, 2 read */
    uint64_t at_ms;
} sc_rcpt_row;
/* Every recipient's state for our message `timestamp`, by name:
 * sc_rcpt_list_free(). */
int sc_rcpt_list(sc_client *c, uint64_t timestamp, sc_rcpt_row **out, size_t *n);
void sc_rcpt_list_free(sc_rcpt_row *v, size_t n);
/* The text row (not a control row) of message (sender -- NULL: any --,
 * timestamp) in
 * direction (0 in, 1 out), in conversation (conv_kind, conv) -- both NULL:
 * any -- into *rowid (the oldest); SC_E_NOT_FOUND when none. */
int sc_msg_find(sc_client *c, const char *conv_kind, const char *conv, const char *sender,
                uint64_t timestamp, int direction, int64_t *rowid);
/* The unread incoming text rows of a conversation, oldest first (*ids
 * malloc()ed, free()). */
int sc_msg_unread(sc_client *c, const char *conv_kind, const char *conv, int64_t **ids, size_t *n);
/* Marks row rowid read at read_ms (if it was not) and, when its timer has
 * not started, sets expires_ms (0: none); *changed whether it was unread. */
int sc_msg_set_read(sc_client *c, int64_t rowid, uint64_t read_ms, uint64_t expires_ms,
                    bool *changed);

/* ---- issue 11: msgops ---- (msgops.c: reactions, edits, deletes) */
/* The text row (kind "text", not a control row) of message (sender, ts)
 * in (conv_kind, conv) -- conv_kind NULL: in any conversation -- into
 * *rowid (the oldest); SC_E_NOT_FOUND (no message set) when none. */
int sc_msgops_find(sc_client *c, const char *conv_kind, const char *conv, const char *sender,
                   uint64_t ts, int64_t *rowid);
/* The distinct authors (at most 16, sorted) of text rows with timestamp ts
 * in (conv_kind, conv) into *senders (sc_strv_free), *n. */
int sc_msgops_senders_at(sc_client *c, const char *conv_kind, const char *conv, uint64_t ts,
                         char ***senders, size_t *n);
/* client_reactions: one per (target, reactor); a put replaces it only when
 * reacted_ts is newer (emoji "" = removed); *changed whether it did. */
int sc_reaction_put(sc_client *c, const char *target_sender, uint64_t target_ts,
                    const char *reactor, const char *emoji, uint64_t reacted_ts, bool *changed);
/* reactor's current emoji ("" when removed) into *emoji (free()), or
 * SC_E_NOT_FOUND. */
int sc_reaction_get(sc_client *c, const char *target_sender, uint64_t target_ts,
                    const char *reactor, char **emoji);
typedef struct sc_reaction_row {
    char *reactor, *emoji; /* malloc()ed */
    uint64_t reacted_ts;
} sc_reaction_row;
/* The reactions shown on a message (emoji not ""), oldest first:
 * sc_reaction_list_free(). */
int sc_reaction_list(sc_client *c, const char *target_sender, uint64_t target_ts,
                     sc_reaction_row **out, size_t *n);
void sc_reaction_list_free(sc_reaction_row *v, size_t n);
/* client_edits: adds version edit_ts of message (target_sender,
 * target_ts) (body body_len bytes; extra JSON or NULL) unless that version
 * is stored; *added whether it was new. */
int sc_edit_add(sc_client *c, const char *target_sender, uint64_t target_ts, uint64_t edit_ts,
                const char *body, size_t body_len, const char *extra, bool *added);
typedef struct sc_edit_row {
    uint64_t edit_ts;
    char *body; /* malloc()ed, NUL-terminated, body_len bytes */
    size_t body_len;
    char *extra; /* malloc()ed or NULL */
} sc_edit_row;
/* Every stored version of a message, oldest (lowest edit_ts) first:
 * sc_edit_list_free() (wipes the texts). */
int sc_edit_list(sc_client *c, const char *target_sender, uint64_t target_ts, sc_edit_row **out,
                 size_t *n);
void sc_edit_list_free(sc_edit_row *v, size_t n);
/* Shows version edited_ts in row rowid (body, extra) unless it is deleted. */
int sc_msg_set_edited(sc_client *c, int64_t rowid, const char *body, size_t body_len,
                      const char *extra, uint64_t edited_ts);
/* client_tombstones: a delete for everyone of (sender, ts), kept also when
 * it came before its message. */
int sc_tombstone_add(sc_client *c, const char *sender, uint64_t ts);
int sc_tombstone_has(sc_client *c, const char *sender, uint64_t ts, bool *has);
/* Removes the edit versions, reactions and "edit"/"reaction" control rows
 * of message (sender, ts) (a delete for everyone). */
int sc_msgops_forget(sc_client *c, const char *sender, uint64_t ts);
/* Makes row rowid a tombstone: body "", extra NULL, deleted = 1. */
int sc_msgops_tombstone_row(sc_client *c, int64_t rowid);
/* Replies quoting message (sender, ts) lose the quote's excerpt (the
 * message was deleted for everyone); author and timestamp stay. Those of
 * `own` (our username) also lose their copies kept for retry requests. */
int sc_msgops_unquote(sc_client *c, const char *sender, uint64_t ts, const char *own);
/* Removes the copies retry.c keeps of what we sent with Content.timestamp
 * content_ts (an edit of a message deleted for everyone). */
int sc_msgops_forget_sent(sc_client *c, uint64_t content_ts);

/* ---- issue 11: profiles (profile.c; table client_profiles) ---- */
#define SC_PROFILE_KEY_BYTES 32
typedef struct sc_profile_row {
    bool has_key;
    uint8_t key[SC_PROFILE_KEY_BYTES]; /* secret: wiped by sc_profile_row_clear */
    char *display_name;                /* NULL: none (malloc()ed) */
    char *avatar_path, *avatar_type;   /* NULL: none */
    uint64_t fetched_ms;               /* 0: a fetch is due */
} sc_profile_row;
void sc_profile_row_clear(sc_profile_row *r);
/* name's row; SC_E_NOT_FOUND when none. */
int sc_profile_row_get(sc_client *c, const char *name, sc_profile_row *out);
/* Stores name's profile key; *changed when it is new or differs (then a
 * fetch is due: fetched_ms = 0; name and avatar kept until it opens). */
int sc_profile_key_put(sc_client *c, const char *name, const uint8_t key[SC_PROFILE_KEY_BYTES],
                       bool *changed);
/* What the fetch at fetched_ms found (display_name / avatar NULL: none). */
int sc_profile_fetched(sc_client *c, const char *name, const char *display_name,
                       const char *avatar_type, const char *avatar_path, uint64_t fetched_ms);
/* Up to max names with a key whose fetched_ms <= stale_before_ms, oldest
 * fetch first (*names: free with sc_strv_free(*names, *n)). */
int sc_profile_due(sc_client *c, uint64_t stale_before_ms, size_t max, char ***names, size_t *n);

/* ---- issue 11: hostile peers (msgops) ---- */
#define SC_ORPHAN_EDITS 0     /* edit versions by author `who` */
#define SC_ORPHAN_REACTIONS 1 /* reactions by reactor `who` */
#define SC_ORPHAN_DELETES 2   /* deletes (client_tombstones) by author `who` */
/* How many messages that are not (yet) in the store `who` has kept
 * what (SC_ORPHAN_*) for, counted up to limit (*n <= limit). */
int sc_msgops_orphans(sc_client *c, const char *who, int what, size_t limit, size_t *n);
/* Removes reactor's reaction to message (target_sender, target_ts). */
int sc_reaction_remove(sc_client *c, const char *target_sender, uint64_t target_ts,
                       const char *reactor);

#endif /* SOTTO_CLIENT_STORE_H */
