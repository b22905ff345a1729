/*
 * client/core/sotto_client.h -- the Sotto client core (library
 * `sotto_client`): the account's local store, the connection to sottod,
 * sending, receiving, trust, groups and attachments. The `sotto` CLI is a
 * thin layer over it; a TUI, JSON-RPC daemon or web UI sit on the same API.
 *
 * One sc_client is one local account (a directory
 * $XDG_DATA_HOME/sotto/<account>/, mode 0700, with store.db, mode 0600,
 * holding libsotto's protocol store and the client's own tables). It is
 * single-threaded: use one sc_client from one thread.
 *
 * Every fallible call returns SC_OK (0) or a negative SC_E_* code and leaves
 * an English message (no secrets, no message text) in sc_errmsg().
 * Strings handed to callbacks are valid during the callback only.
 */
#ifndef SOTTO_CLIENT_H
#define SOTTO_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
    SC_OK = 0,
    SC_E_INTERNAL = -1,  /* a bug, out of memory, a local crypto failure */
    SC_E_USAGE = -2,     /* bad argument (name, text, file) */
    SC_E_NETWORK = -3,   /* cannot reach / keep the server, TLS or pin failure */
    SC_E_SERVER = -4,    /* the server refused (auth, taken, rate limit, ...) */
    SC_E_UNTRUSTED = -5, /* a contact's safety number changed: run trust */
    SC_E_NOT_FOUND = -6, /* no such account, contact, group or user */
    SC_E_INTEGRITY = -7, /* an attachment failed its MAC/digest check */
    SC_E_STORE = -8,     /* the local database failed */
    SC_E_STATE = -9,     /* not registered yet / already registered */
    SC_E_RETRY = -10,    /* the message is queued; the server asked to try again later
                            (rate limited or temporarily failing): sc_retry_at() says when */
    SC_E_KT = -11,       /* the key directory (key transparency) refused, contradicts what
                            the server served, or the server does not run one */
    SC_E_BUSY = -12,     /* another process holds this account (sc_lock) */
};

#define SC_GROUP_ID_BYTES 16
#define SC_MAX_TEXT_BYTES (64 * 1024) /* longest message text accepted */
#define SC_MAX_GROUP_NAME_BYTES 256
#define SC_MAX_GROUP_MEMBERS 100

typedef struct sc_client sc_client;

typedef struct sc_options {
    const char *account;    /* local account name: [A-Za-z0-9_.-], 1..64, no leading '.' */
    const char *data_home;  /* NULL: $XDG_DATA_HOME or ~/.local/share */
    const char *server_url; /* NULL: the stored one ("https://HOST:PORT") */
    const char *pin_hex;    /* NULL: stored; 64 hex chars, SHA-256 of the server cert DER */
    const char *ca_file;    /* NULL: stored; PEM CA bundle (alternative to a pin) */
    bool progress;          /* progress bar on stderr for transfers over 1 MiB */
    bool must_exist;        /* the account's store must exist already: else
                               SC_E_STATE and nothing is created (every
                               command but register and link-request) */
} sc_options;

/* Opens (creating the directory and database unless opt->must_exist) the
 * account. On failure the reason is written to err (errlen bytes). */
int sc_open(sc_client **out, const sc_options *opt, char *err, size_t errlen);
void sc_close(sc_client *c);
/* For a command that creates an account (register, register --restore,
 * link-request) and failed: closes c like sc_close and, when the sc_open
 * that made c created the account directory and the server never accepted
 * the account (no username), removes that directory with what the client
 * put in it (store.db and its -wal, -shm and -journal files, lock, an empty
 * attachments/), so that nothing is left behind and a retry starts afresh.
 * Otherwise the same as sc_close. c may be NULL. */
void sc_close_discard(sc_client *c);
const char *sc_errmsg(const sc_client *c);
/* "alice" after register, else NULL. */
const char *sc_username(const sc_client *c);
uint32_t sc_device_id(const sc_client *c);
const char *sc_account_dir(const sc_client *c);

/* ---- the per-account lock (docs/cli.md "One process per account") ----
 * A device has one connection to the server (the server keeps the newest),
 * so every process that connects an account holds this lock for its
 * lifetime: an fcntl write lock on `lock` in the account directory, which
 * records the holder's pid and `command` (e.g. "sotto listen"). */
typedef struct sc_lock_holder {
    long pid;         /* 0 when unknown */
    char command[64]; /* "" when unknown; printable ASCII */
    char socket[108]; /* the holder's daemon socket (absolute path), "" when none */
} sc_lock_holder;
/* Takes the lock for this process (held until sc_unlock or sc_close; a
 * second call is a no-op). SC_OK; SC_E_BUSY when another process holds it
 * (`holder`, may be NULL, says who; sc_errmsg: "account carol is in use by
 * pid N (sotto listen)"); SC_E_STORE when the lock file cannot be used. */
int sc_lock(sc_client *c, const char *command, sc_lock_holder *holder);
/* Releases the lock (no-op when not held). */
void sc_unlock(sc_client *c);
/* The daemon, holding the lock: records the absolute path of the socket it
 * serves next to its pid, so that a CLI process of this account forwards to
 * exactly that daemon (never to another daemon on the default path). SC_OK,
 * SC_E_USAGE (not absolute, too long, a newline), SC_E_STATE (lock not held),
 * SC_E_STORE. */
int sc_lock_note_socket(sc_client *c, const char *socket_path);

/*
 * For a front end that runs sc_receive(stay = true) and must do other work
 * on the same sc_client (the daemon): when another thread sets *stop (the
 * pointer given to sc_receive), sc_receive calls fn(ud, c) within about
 * 100 ms, between envelopes, on its own thread, connected or not. fn may
 * use c (send, list, ...). fn clears *stop first to keep receiving; a
 * *stop still set when fn returns ends sc_receive (SC_OK). fn NULL: *stop
 * ends sc_receive (the default).
 */
void sc_set_wake(sc_client *c, void (*fn)(void *ud, sc_client *c), void *ud);
/* The one call that is safe from another thread than c's: after setting
 * *stop, makes sc_receive notice it now rather than within ~100 ms. */
void sc_wake(sc_client *c);
/* For a long-running sc_receive (stay): fn(ud, false, why) is called once
 * when the connection to the server is lost or cannot be made (why: the
 * reason, valid during the call), then fn(ud, true, "") once when a
 * connection is made again (before the events it brings); nothing while the
 * connection holds. fn NULL: no calls. Used by `listen` to say so on stderr. */
void sc_set_conn_watch(sc_client *c, void (*fn)(void *ud, bool up, const char *why), void *ud);

/* ---- events: what receive/listen/history hand to the caller ---- */

typedef enum {
    SC_EV_MESSAGE = 1, /* a text and/or attachments, 1:1 or group */
    SC_EV_GROUP = 2,   /* a group was created/changed/left (group_* fields) */
    SC_EV_NOTICE = 3,  /* something the user must know (notice, text) */
    SC_EV_SENT = 4,    /* history: our own outgoing message; or a sync copy */
    /* issue 11 (docs/cli.md "Everyday messaging"); target_* names the
     * message acted on (author, timestamp) */
    SC_EV_RECEIPT = 5,  /* receipt_type, receipt_timestamps: sender got/read our messages */
    SC_EV_TYPING = 6,   /* typing_started; never stored (id 0) */
    SC_EV_REACTION = 7, /* emoji (reaction_remove: taken away) on target_* */
    SC_EV_EDIT = 8,     /* target_* has a new text: body */
    SC_EV_DELETE = 9,   /* target_* was deleted for everyone */
    SC_EV_TIMER = 10,   /* the conversation's disappearing timer became expire_timer_s */
    SC_EV_READ = 11,    /* target_* was read on another device of ours */
} sc_event_kind;

/* A mention inside body: body[start, start + length) names `name`. */
typedef struct sc_mention {
    const char *name;
    uint32_t start, length; /* UTF-8 byte offsets into body */
} sc_mention;

/* A reaction on a message, as shown with it. */
typedef struct sc_reaction_info {
    const char *reactor;
    const char *emoji;
    uint64_t timestamp;
} sc_reaction_info;

/* Delivery state of our own message per recipient. */
typedef struct sc_receipt_info {
    const char *recipient;
    const char *state; /* "sent" | "delivered" | "read" */
    uint64_t at_ms;    /* when that state was learnt (0: sent, not yet acknowledged) */
} sc_receipt_info;

typedef struct sc_attachment_info {
    const char *file_name; /* sanitised base name, UTF-8 */
    const char *content_type;
    uint64_t size;
    const char *path;  /* local file when downloaded and verified, else NULL */
    const char *error; /* why not downloaded, else NULL */
} sc_attachment_info;

typedef struct sc_event {
    sc_event_kind kind;
    int64_t id;         /* local history row id (0 when not stored) */
    const char *sender; /* username ("" for notices about the server) */
    uint32_t sender_device;
    const char *destination;   /* SC_EV_SENT: the contact, or NULL for a group */
    uint64_t timestamp;        /* sender's timestamp (message id), ms */
    uint64_t server_timestamp; /* ms, 0 when unknown */
    const char *body;          /* UTF-8, NUL-terminated */
    size_t body_len;
    const char *group_id;     /* 32 hex chars or NULL */
    const char *group_name;   /* current name or NULL */
    const char *group_action; /* SC_EV_GROUP: "update" | "quit" | "removed" */
    const char *const *group_members;
    size_t n_group_members;
    const char *notice; /* SC_EV_NOTICE code: "undecryptable", "identity_changed", ... */
    const sc_attachment_info *attachments;
    size_t n_attachments;
    /* ---- issue 11 (zero / NULL when not set) ---- */
    const char *conversation;  /* 1:1: the other account (in and out); NULL for groups */
    const char *target_author; /* receipt/reaction/edit/delete/read: the message acted on */
    uint64_t target_timestamp;
    const char *emoji;        /* SC_EV_REACTION */
    bool reaction_remove;     /* SC_EV_REACTION: the reaction was taken away */
    const char *receipt_type; /* SC_EV_RECEIPT: "delivery" | "read" */
    const uint64_t *receipt_timestamps;
    size_t n_receipt_timestamps;
    bool typing_started;      /* SC_EV_TYPING: true started, false stopped (or expired) */
    uint32_t expire_timer_s;  /* the message's (SC_EV_TIMER: the new) disappearing timer */
    uint64_t expires_at_ms;   /* when the message disappears; 0 not started */
    const char *quote_author; /* a reply: the quoted message (author, timestamp) and */
    uint64_t quote_timestamp; /* excerpt; shown even when the original is gone */
    const char *quote_text;
    const sc_mention *mentions;
    size_t n_mentions;
    bool mentions_me; /* one of mentions names this account */
    bool edited;      /* the text shown is an edit (edited_timestamp) */
    uint64_t edited_timestamp;
    bool deleted;                      /* deleted for everyone: body empty */
    bool request;                      /* from a message request (accept, delete or block) */
    uint64_t read_ms;                  /* incoming: read at (0 unread) */
    const char *display_name;          /* the sender's profile name (shown as given), or NULL */
    const sc_reaction_info *reactions; /* reactions on this message (history) */
    size_t n_reactions;
    const sc_receipt_info *receipts; /* our message: per recipient (history) */
    size_t n_receipts;
} sc_event;

typedef void (*sc_event_cb)(void *ud, const sc_event *ev);

/* ---- account ---- */

/*
 * Creates the account `username` on the server (opts' server_url and
 * pin/CA are stored for later commands), uploads the identity, a signed
 * prekey and 100 one-time prekeys. SC_E_STATE when already registered.
 */
int sc_register(sc_client *c, const char *username, const char *invite);

/*
 * Linking another device to an account (docs/cli.md "Devices"):
 *  1. on the new device's (empty) local account: sc_link_request() creates
 *     its keys and gives a link code (138 hex chars: Ed25519 auth key (32) ||
 *     identity key (33) || registration id (u32be));
 *  2. on the primary device (the one holding the account key):
 *     sc_device_add(code) signs a new device list with the new device in it
 *     (docs/protocol.md "Account key and device list") and returns its
 *     device id and the account key (66 hex chars + NUL); SC_E_STATE on a
 *     device that is not the primary;
 *  3. on the new device: sc_link_finish(username, device_id, account_key)
 *     pins the account key given by the user (never the server's), logs in,
 *     checks that the account key signed a list holding this device
 *     (SC_E_UNTRUSTED otherwise) and uploads its prekeys.
 * Removing a device also publishes a new signed list: primary only.
 */
#define SC_LINK_CODE_HEX 138
#define SC_ACCOUNT_KEY_HEX 66
int sc_link_request(sc_client *c, char code_hex[SC_LINK_CODE_HEX + 1]);
int sc_device_add(sc_client *c, const char *code_hex, uint32_t *device_id,
                  char account_key_hex[SC_ACCOUNT_KEY_HEX + 1]);
int sc_link_finish(sc_client *c, const char *username, uint32_t device_id,
                   const char *account_key_hex);
int sc_device_remove(sc_client *c, uint32_t device_id);
/*
 * Linked devices get everything (docs/protocol.md "Linked devices get
 * everything"): the primary sends a newly linked device, end-to-end
 * encrypted to it only, its contacts with their pinned account keys,
 * accepted device lists, changed keys and verified flags, its groups and
 * the history of the last N days, in parts (SyncMessage.LinkSync). This
 * happens by itself at the primary's next connection once the new device
 * has finished linking (sc_connect, and every 30 s in sc_receive(stay)),
 * until client_config "synced_device:N" records it. The new device shows
 * one notice (code "device_synced") "synced from device 1: N contacts, M
 * groups, K messages" (what was new to it).
 *
 * sc_device_add_ex: sc_device_add that also records how many days of
 * history (0..SC_LINK_HISTORY_DAYS_MAX; -1: client_config
 * "link_history_days", default SC_LINK_HISTORY_DAYS_DEFAULT) the new
 * device gets; recorded before the device is added, so a crash in between
 * still syncs what was chosen.
 * sc_link_history_days_set: records the days for device_id (0: the
 * account's default "link_history_days"; days -1 removes the choice);
 * SC_E_USAGE out of range.
 * sc_device_sync: sends the sync to device_id now (primary only), again if
 * it was sent before (the new device applies it idempotently);
 * history_days -1: as chosen at device-add / the default. SC_OK with *info
 * (may be NULL) what was sent; SC_E_STATE (not registered, not the
 * primary, the device has no keys yet), SC_E_NOT_FOUND (not in the signed
 * list), SC_E_USAGE, sc_deliver's errors (SC_E_NETWORK: run it again).
 */
#define SC_LINK_HISTORY_DAYS_DEFAULT 30
#define SC_LINK_HISTORY_DAYS_MAX 36500
typedef struct sc_link_sync_info {
    size_t contacts, groups, history; /* items sent (history: rows) */
    size_t skipped;                   /* history rows too large for one part */
    size_t parts;                     /* messages sent */
    uint32_t history_days;
} sc_link_sync_info;
int sc_device_add_ex(sc_client *c, const char *code_hex, int history_days, uint32_t *device_id,
                     char account_key_hex[SC_ACCOUNT_KEY_HEX + 1]);
int sc_link_history_days_set(sc_client *c, uint32_t device_id, int days);
int sc_device_sync(sc_client *c, uint32_t device_id, int history_days, sc_link_sync_info *info);
/*
 * On the primary: hands the account key to device `device_id` of this
 * account (docs/protocol.md "Promoting another device") so that it becomes
 * the primary, e.g. before this device is retired. One send, not queued:
 * the target's ciphertext holds the private key, the other devices' the
 * same message without it. This device keeps the key until the target's
 * confirmation arrives (a later receive/listen here), then deletes it.
 * SC_OK when the server took the send; SC_E_STATE (not registered, not the
 * primary, the target is this device, not in the signed device list, or has
 * no keys on the server yet), SC_E_NETWORK / SC_E_RETRY (not sent: run it
 * again), SC_E_SERVER (refused), SC_E_UNTRUSTED (the server's list for this
 * account is not one the account key signed), SC_E_STORE.
 */
int sc_promote(sc_client *c, uint32_t device_id);

typedef struct sc_device_info {
    uint32_t device_id;
    const char *created;
    const char *last_seen;
    bool has_keys;
    bool current;
    bool in_signed_list; /* the account's signed device list contains it */
} sc_device_info;
typedef void (*sc_device_cb)(void *ud, const sc_device_info *d);
int sc_devices(sc_client *c, sc_device_cb cb, void *ud);

/* ---- backup and recovery (docs/cli.md "Backup and recovery") ---- */

/* A recovery code as shown: six groups of five digits, spaces, NUL
 * (= SOTTO_RECOVERY_CODE_TEXT_BYTES of include/sotto/backup.h). */
#define SC_RECOVERY_CODE_TEXT_BYTES 36

/* What a backup holds, or what a restore stored. */
typedef struct sc_backup_info {
    size_t contacts, groups, history; /* history: rows (0 without --history) */
    uint64_t list_version;            /* sc_restore: the new device list's version */
    bool recovered;                   /* sc_restore: the username was re-taken (recover);
                                         false: it was free and registered anew */
} sc_backup_info;

/*
 * Writes a backup of this account to `path` (docs/protocol.md "Backup
 * payload"): the account key pair, the server URL and pin (or the CA
 * file's contents), contacts with their pinned account keys, accepted
 * device lists and verified flags, groups, and with `with_history` every
 * history row. It is sealed (include/sotto/backup.h: Argon2id, about a
 * second and 256 MiB, then XChaCha20-Poly1305) with a fresh random
 * recovery code, written into `code_out` (SC_RECOVERY_CODE_TEXT_BYTES,
 * "ddddd ddddd ddddd ddddd ddddd ddddd"): show it once, then wipe it. The
 * file is written atomically with mode 0600 (a temporary file in the same
 * directory, fsync, rename; an existing file is replaced). Primary device
 * only. `info` (may be NULL) gets the counts. Returns SC_OK, SC_E_STATE
 * (not registered, not the primary device), SC_E_USAGE (cannot write the
 * file, too large), SC_E_STORE or SC_E_INTERNAL; on error `code_out` is
 * zeroed and no file is left behind.
 */
int sc_backup_create(sc_client *c, const char *path, bool with_history,
                     char code_out[SC_RECOVERY_CODE_TEXT_BYTES], sc_backup_info *info);

/* An opened, checked backup (secret: free with sc_backup_free()). */
typedef struct sc_backup sc_backup;

/*
 * Opens the backup file `path` with the recovery code the user typed
 * (`code_text`: 30 digits, spaces and dashes allowed) and checks its
 * payload, without any local account: so that a wrong code creates
 * nothing. Returns SC_OK with *out, or SC_E_USAGE with the reason in `err`
 * (errlen bytes): unreadable or not a backup file, not a recovery code,
 * a wrong code or a file altered after it was written (*wrong_code true;
 * the two cannot be told apart), or a payload that fails its checks;
 * SC_E_INTERNAL (out of memory). wrong_code may be NULL.
 */
int sc_backup_open_file(const char *path, const char *code_text, sc_backup **out, bool *wrong_code,
                        char *err, size_t errlen);
/* The username the backup is of (valid while b lives). */
const char *sc_backup_username(const sc_backup *b);
/* Wipes and frees (NULL is fine). */
void sc_backup_free(sc_backup *b);

/*
 * Restores an opened backup into `c`, a new local account (nothing
 * registered, no contacts, groups, history or account key: SC_E_STATE
 * otherwise), and re-takes the username on the server
 * (docs/protocol.md "Recovery"): the server URL and pin/CA come from the
 * backup unless given in sc_options; this device gets new identity and
 * auth keys; the account's current signed device list is fetched before
 * login and verified under the backup's account key (SC_E_UNTRUSTED when
 * the server holds another account key or a list that key did not sign);
 * then `register` with recover = true and a list signed by the account key
 * that holds only this device, as device 1, with version = current + 1:
 * the server deletes the old devices and their queues. When the server
 * has no such account the username is registered anew with the same
 * account key. The local import and the registration form one transaction:
 * when the server did not take the registration nothing is stored.
 * `info` (may be NULL) gets the counts and the list version. Returns
 * SC_OK, SC_E_STATE, SC_E_UNTRUSTED, SC_E_NETWORK, SC_E_SERVER (refused,
 * e.g. rate limited or the list changed meanwhile: run it again),
 * SC_E_STORE, SC_E_INTERNAL.
 */
int sc_restore_opened(sc_client *c, const sc_backup *b, sc_backup_info *info);
/* sc_backup_open_file() then sc_restore_opened(). */
int sc_restore(sc_client *c, const char *path, const char *code_text, sc_backup_info *info);

/* ---- messaging ---- */

/*
 * Sends a text to a contact or (to_group) a group given by id hex or name.
 * The message enters the outgoing queue first; on SC_E_NETWORK it stays
 * queued and is sent by the next command that connects. *timestamp_out
 * receives the message id. SC_E_UNTRUSTED when the safety number changed.
 */
int sc_send_text(sc_client *c, const char *to, bool to_group, const char *text, size_t len,
                 uint64_t *timestamp_out);
/* Same, with one file attached (uploaded first, encrypted). */
int sc_send_file(sc_client *c, const char *to, bool to_group, const char *path, const char *text,
                 uint64_t *timestamp_out);
/* Issue 11 (docs/cli.md "Everyday messaging"): what a message carries
 * besides its text and file. Zeroed = a plain message. */
typedef struct sc_send_options {
    /* a reply: quotes the message (quote_author, quote_timestamp), which
     * must be in this conversation's local history (SC_E_NOT_FOUND) */
    const char *quote_author;
    uint64_t quote_timestamp;
    /* group members named in the text; NULL/0: every "@name" of a member
     * in the text is found (no_auto_mentions: none) */
    const sc_mention *mentions;
    size_t n_mentions;
    bool no_auto_mentions;
    /* != 0: replaces the text of our own message of that timestamp in
     * this conversation (within 24 hours: SC_E_USAGE after; SC_E_NOT_FOUND
     * when there is no such message of ours); the edit gets its own
     * timestamp (*timestamp_out), the message keeps its id */
    uint64_t edit_timestamp;
} sc_send_options;

/* sc_send_text / sc_send_file with options (o may be NULL); text may be
 * NULL (len 0) when file is given; file NULL: text only. Texts over
 * 2 KiB travel as a short body plus the whole text as an attachment;
 * over SC_MAX_TEXT_BYTES SC_E_USAGE before anything is sent. */
int sc_send_message(sc_client *c, const char *to, bool to_group, const char *text, size_t len,
                    const char *file, const sc_send_options *o, uint64_t *timestamp_out);

/* ---- issue 11: reactions, deletes for everyone, edit history (msgops.c,
 * docs/protocol.md "Reactions, replies, mentions, edits, deletes") ----
 * `to`/`to_group` name the conversation as for sc_send_message. A message
 * is named by (author username, its timestamp). */

/* Reacts to message (target_author, target_ts) of the conversation with
 * emoji (UTF-8, 1..SC_MAX_EMOJI_BYTES bytes, no control characters or
 * spaces, at least one non-ASCII character: one emoji), replacing this
 * account's earlier reaction; remove: takes it away (emoji may be NULL).
 * The message must be in the local history (SC_E_NOT_FOUND; also when it
 * was deleted); a bad emoji or name: SC_E_USAGE. Sent to the conversation
 * and our other devices, applied locally; *timestamp_out (may be NULL) the
 * reaction's timestamp once queued. Other errors as sc_send_message
 * (SC_E_RETRY / SC_E_NETWORK: queued, applied locally). */
#define SC_MAX_EMOJI_BYTES 32
int sc_send_reaction(sc_client *c, const char *to, bool to_group, const char *target_author,
                     uint64_t target_ts, const char *emoji, bool remove, uint64_t *timestamp_out);

/* Deletes our own message target_ts of the conversation for everyone:
 * every recipient's device and our other devices wipe its text (a
 * tombstone stays); within 24 hours of sending it (SC_E_USAGE after).
 * SC_E_NOT_FOUND: no such message of ours (or deleted already). The local
 * copy is wiped once the delete is queued. */
int sc_remote_delete(sc_client *c, const char *to, bool to_group, uint64_t target_ts,
                     uint64_t *timestamp_out);

/* One version of a message (sc_edit_history); strings valid during the
 * callback. */
typedef struct sc_edit_version {
    const char *author;
    uint64_t target_timestamp; /* the message id */
    uint64_t timestamp;        /* this version's: target_timestamp for the original */
    const char *body;          /* UTF-8 */
    size_t body_len;
    bool original; /* the text first sent */
    bool current;  /* the version shown (the newest) */
} sc_edit_version;
typedef void (*sc_edit_cb)(void *ud, const sc_edit_version *v);
/* Calls cb for every stored version of message (author, target_ts) of the
 * conversation (conv: contact, or group id/name with is_group), oldest
 * first; a message never edited has one. author NULL: the only author of
 * a message with that timestamp there (SC_E_USAGE when several).
 * SC_E_NOT_FOUND: no such message, or it was deleted for everyone. */
int sc_edit_history(sc_client *c, const char *conv, bool is_group, const char *author,
                    uint64_t target_ts, sc_edit_cb cb, void *ud);

/* Sends what is still queued. *left receives how many stay queued. */
int sc_flush(sc_client *c, size_t *left);
/* After SC_E_RETRY: the wall-clock time (ms since the epoch) at which the
 * server said to try again; 0 when no call returned SC_E_RETRY. The core
 * never sleeps: the caller's loop waits and calls sc_flush() again. */
uint64_t sc_retry_at(const sc_client *c);
/* How many messages wait in the outgoing queue (distinct messages, however
 * many recipients each has; sc_flush()'s *left counts queue rows). */
int sc_outbox_count(sc_client *c, size_t *messages);

/*
 * Receives: connects, logs in, processes every pushed envelope (decrypt,
 * store, THEN ack), calls cb for each visible event. stay=false: returns
 * once the server's queue is drained; stay=true: runs until *stop becomes
 * true (checked between events), reconnecting with backoff.
 */
int sc_receive(sc_client *c, bool stay, volatile int *stop, sc_event_cb cb, void *ud);

/* The stored conversation with a contact or group, oldest first;
 * limit 0 = all. */
int sc_history(sc_client *c, const char *conv, bool is_group, size_t limit, sc_event_cb cb,
               void *ud);

/* ---- contacts and trust ---- */

typedef struct sc_contact_info {
    const char *name;
    size_t n_devices;
    bool identity_changed; /* a new identity key waits for `trust` */
    bool verified;         /* the user ran `trust` (compared safety numbers) */
} sc_contact_info;
typedef void (*sc_contact_cb)(void *ud, const sc_contact_info *ci);
int sc_contacts(sc_client *c, sc_contact_cb cb, void *ud);

/* Accepts the contact's current identity keys (after the user compared
 * safety numbers); decrypts messages that were held. */
int sc_trust(sc_client *c, const char *contact, sc_event_cb cb, void *ud);

/* 60-digit safety number (buffer of 61) and the scannable bytes
 * (malloc()ed, caller frees). Fetches the contact's keys when it has none. */
int sc_safety_number(sc_client *c, const char *contact, char digits[61], uint8_t **scannable,
                     size_t *scannable_len);

/* ---- key transparency (docs/cli.md "Key transparency") ----
 * A contact's account key is pinned only after the server's key directory
 * (an append-only log of every account's key and device list, checked by
 * auditors) holds that key; every device also checks what the directory
 * holds for its own account. SC_E_KT: the directory refused, contradicts
 * what the server served, or the server does not run one. */

#define SC_KT_KEY_HEX 64 /* a 32-byte key in hex */
#define SC_KT_MAX_AUDITORS 8

/* Pins the server's tree-head key and VRF key (64 hex each) from an
 * out-of-band source, instead of on first use (register/link-request
 * --kt-key/--kt-vrf-key). SC_E_USAGE for bad hex; SC_E_KT when other keys
 * are pinned already. */
int sc_kt_pin_keys(sc_client *c, const char *server_key_hex, const char *vrf_key_hex);

/* What this device holds (local only, no connection). */
typedef struct sc_kt_status_info {
    bool has_keys;
    char server_key[SC_KT_KEY_HEX + 1]; /* "" when none pinned */
    char vrf_key[SC_KT_KEY_HEX + 1];
    bool has_head;
    uint64_t head_size, head_timestamp_ms, head_accepted_ms;
    size_t n_cosigners; /* auditors whose countersignature the held head carries */
    char cosigners[SC_KT_MAX_AUDITORS][SC_KT_KEY_HEX + 1];
    size_t n_auditors; /* auditors this device requires */
    char auditors[SC_KT_MAX_AUDITORS][SC_KT_KEY_HEX + 1];
    uint64_t max_age_s;
    bool has_own; /* a baseline from a good own check */
    uint64_t own_counter, own_version, own_checked_ms;
    size_t evidence; /* rows of evidence kept (kt_evidence) */
} sc_kt_status_info;
int sc_kt_status(sc_client *c, sc_kt_status_info *out);

/* `kt check`: checks what the directory holds for our own account now. */
typedef struct sc_kt_own_report {
    bool published; /* false: not in the published directory yet (nothing to check) */
    uint64_t counter, version, timestamp_ms, head_size;
    size_t n_alerts;
    char alerts[4][640]; /* "key directory: ..." */
} sc_kt_own_report;
/* SC_OK (alerts in the report, also stored as notices), SC_E_KT (no key
 * transparency on the server, or its head was refused), SC_E_NETWORK, ... */
int sc_kt_check_own(sc_client *c, sc_kt_own_report *out);

/* `kt check USER`: what the directory holds for `name`, verified; when a key
 * is pinned for name it must match (SC_E_KT otherwise, the report filled). */
typedef struct sc_kt_user_report {
    char account_key[SC_ACCOUNT_KEY_HEX + 1];
    uint64_t version, counter, timestamp_ms, head_size;
    bool pinned;           /* a key is pinned for name */
    bool key_matches;      /* the pinned key is the directory's */
    uint64_t list_version; /* of the newest list accepted (0: none) */
} sc_kt_user_report;
/* SC_OK, SC_E_RETRY (not published yet), SC_E_NOT_FOUND (no such user),
 * SC_E_KT, SC_E_NETWORK, ... */
int sc_kt_check_user(sc_client *c, const char *name, sc_kt_user_report *out);

/* Auditor keys this device requires on every head (64 hex each, at most
 * SC_KT_MAX_AUDITORS). add: SC_E_USAGE (bad hex, full); adding one twice is
 * fine. remove: SC_E_NOT_FOUND when not configured. */
/* The oldest tree head (by its timestamp) this device accepts, in seconds
 * (SC_KT_MIN_MAX_AGE_S..SC_KT_MAX_MAX_AGE_S; default one day). SC_OK or
 * SC_E_USAGE (out of range), SC_E_STORE. */
#define SC_KT_MIN_MAX_AGE_S 60u
#define SC_KT_MAX_MAX_AGE_S (30u * 86400u)
int sc_kt_max_age_set(sc_client *c, uint64_t seconds);
int sc_kt_auditor_add(sc_client *c, const char *key_hex);
int sc_kt_auditor_remove(sc_client *c, const char *key_hex);
int sc_kt_auditor_list(sc_client *c, char keys[SC_KT_MAX_AUDITORS][SC_KT_KEY_HEX + 1], size_t *n);

/* ---- groups ---- */

typedef struct sc_group_info {
    const char *id_hex;
    const char *name;
    const char *const *members;
    size_t n_members;
    bool active;               /* false after leave / removal */
    uint64_t revision;         /* of the group state: every change raises it by one */
    const char *const *admins; /* members who may change the group */
    size_t n_admins;
    bool open; /* every member may change it, not only admins */
} sc_group_info;
typedef void (*sc_group_cb)(void *ud, const sc_group_info *g);

/* What happened to one member's copy of the last group change or group
 * message (docs/cli.md "Groups"). A queued copy is sent by a later flush,
 * in order (the change before the messages sent after it): after `trust`
 * when the member's safety number changed, once the key directory publishes
 * the member, or when the server is reachable again. */
typedef enum {
    SC_MEMBER_SENT = 0,
    SC_MEMBER_QUEUED = 1,  /* stays in the outbox for this member */
    SC_MEMBER_REFUSED = 2, /* dropped for good (no such user, server refused) */
} sc_member_state;
typedef struct sc_member_status {
    const char *member; /* valid until the next call on c */
    sc_member_state state;
    int code;           /* SC_OK, or the error that kept or refused it */
    const char *reason; /* "" when sent */
} sc_member_status;

int sc_group_create(sc_client *c, const char *name, const char *const *members, size_t n,
                    char id_hex_out[33]);
int sc_group_add(sc_client *c, const char *group, const char *const *members, size_t n);
int sc_group_remove(sc_client *c, const char *group, const char *const *members, size_t n);
int sc_group_leave(sc_client *c, const char *group);
int sc_group_rename(sc_client *c, const char *group, const char *name);
int sc_group_list(sc_client *c, sc_group_cb cb, void *ud);
/* Makes `member` an admin of GROUP (make_admin) or no longer one. Only an
 * admin may (unless the group is open): SC_E_STATE otherwise. Like every
 * change it raises the revision and reports per member (sc_group_report). */
int sc_group_admin(sc_client *c, const char *group, const char *member, bool make_admin);
/* Lets every member change GROUP (open) or only its admins. */
int sc_group_set_open(sc_client *c, const char *group, bool open);
/* Entry i of the per-member outcome of the last group change (create, add,
 * remove, rename, leave, admin, open) or group send on c: false past the
 * end. The calls above return SC_OK only when every member got it; else
 * the first failure (SC_E_UNTRUSTED: a member's copy waits for `trust`). */
bool sc_group_report(sc_client *c, size_t i, sc_member_status *out);
/* Resolves GROUP (32-hex id or unique name) to its id in hex. */
int sc_group_find(sc_client *c, const char *ref, char id_hex_out[33]);

/* ---- event subscribers (the daemon: docs/rpc.md "Events") ----
 * An event's id is its history row id. A subscriber (a name chosen by the
 * client, 1..128 bytes UTF-8) acknowledges the events it handled; the ones
 * it did not are handed out again when it subscribes again. Persisted in
 * the store (schema v5). */

/* The local account name given to sc_open. */
const char *sc_account_name(const sc_client *c);
/* The newest history row id (0 when empty). */
int sc_history_max_id(sc_client *c, int64_t *id);
/* Creates subscriber `name` unless it exists, with every event id <= start
 * counted as acknowledged; *acked_upto: its mark. SC_E_USAGE (bad name),
 * SC_E_STORE. */
int sc_subscriber_open(sc_client *c, const char *name, int64_t start, int64_t *acked_upto);
/* Calls cb, oldest first, for each event `name` has not acknowledged
 * (those a receive hands out: received rows and sync copies of what our
 * other devices sent). *count (may be NULL): how many. */
int sc_subscriber_unacked(sc_client *c, const char *name, sc_event_cb cb, void *ud, size_t *count);
/* Acknowledges the event ids ids[0..n) and every id <= up_to (0: none).
 * *acked_upto (may be NULL): every id up to it is acknowledged now.
 * SC_E_NOT_FOUND: `name` never subscribed. */
int sc_subscriber_ack(sc_client *c, const char *name, const int64_t *ids, size_t n, int64_t up_to,
                      int64_t *acked_upto);

/* ---- message requests and blocking (issue 11; docs/cli.md "Message
 * requests and blocking") ----
 * A conversation is accepted once we write in it, accept it, or (a group)
 * an accepted contact added us; until then what arrives in it is a message
 * request (sc_event.request): no receipts, no profile key. Blocked
 * accounts' content is dropped on arrival. Every change is synced to our
 * other devices. */

/* Accepts the conversation with contact `conv` (or, is_group, group `conv`:
 * id hex or name): its later messages are no requests and the request flag
 * of its stored ones is cleared. SC_E_USAGE bad name, SC_E_NOT_FOUND no
 * such group. */
int sc_accept(sc_client *c, const char *conv, bool is_group);
/* Deletes a message request: every stored row of the conversation is
 * wiped (the store's WAL scrubbed); the conversation stays not accepted.
 * *wiped (may be NULL): rows removed. */
int sc_request_delete(sc_client *c, const char *conv, bool is_group, size_t *wiped);
/* Blocks (unblocks) names[0..n): valid usernames, not our own (SC_E_USAGE).
 * Blocking also deletes a pending request from that name. *changed (may be
 * NULL): how many were not (were) blocked before. A block that changed
 * something also rotates our profile key (sc_profile_rotate_key), so the
 * blocked account's old key no longer yields our delivery token; when the
 * rotation cannot finish now (network) sc_block still succeeds and the
 * rotation stays due (sc_profile_rotate_due) for the next tick. */
int sc_block(sc_client *c, const char *const *names, size_t n, size_t *changed);
int sc_unblock(sc_client *c, const char *const *names, size_t n, size_t *changed);
/* The block list, by name: cb(ud, name, blocked_ms). */
int sc_blocked(sc_client *c, void (*cb)(void *ud, const char *name, uint64_t blocked_ms), void *ud);
/* Whether the conversation with contact `name` is accepted, and whether
 * `name` is blocked. */
int sc_contact_request_state(sc_client *c, const char *name, bool *accepted, bool *blocked);
/* A pending message request: a conversation holding request rows. */
typedef struct sc_request_info {
    const char *conv_kind;  /* "contact" | "group" */
    const char *conv;       /* the contact, or the group's id hex */
    const char *group_name; /* groups: the name, or NULL */
    size_t count;           /* messages in it */
    uint64_t first_timestamp, last_timestamp;
    const char *excerpt; /* the first message's text, at most 80 bytes (UTF-8 cut) */
} sc_request_info;
int sc_requests(sc_client *c, void (*cb)(void *ud, const sc_request_info *ri), void *ud);

/* ---- receipts, read state, typing, settings (issue 11, receipts.c;
 * docs/cli.md "Everyday messaging") ---- */

/* The account's settings (client_config; default on), the same on every
 * device of the account (synced with SyncMessage.configuration). */
typedef struct sc_everyday_config {
    bool read_receipts;     /* off: none sent, others' read receipts ignored */
    bool typing_indicators; /* off: none sent, none shown */
} sc_everyday_config;
int sc_config_get(sc_client *c, sc_everyday_config *out);
/* Sets one setting (key "read-receipts" or "typing"; SC_E_USAGE for
 * another) and queues the sync to our other devices, then flushes (a
 * network failure leaves the sync queued: still SC_OK). */
int sc_config_set(sc_client *c, const char *key, bool on);
/* Sealed sender on this device (sealed.c; client_config "sealed_off";
 * default on, not synced): off, every send is identified. *on gets the
 * setting; SC_OK or SC_E_STORE. */
int sc_sealed_enabled(sc_client *c, bool *on);
int sc_sealed_set_enabled(sc_client *c, bool on);
#define SC_SEALED_ROOT_HEX 66 /* a 33-byte trust root (0x05 || X25519) in hex */
/* Pins the server's sealed-sender trust root (SC_SEALED_ROOT_HEX hex
 * characters, as `sottod admin sealed-root` prints it) from an out-of-band
 * source, before the first connection (register/link-request
 * --sealed-root): the first register/login answer must then name that
 * root, else it fails with SC_E_UNTRUSTED (the given root stays pinned and
 * the served one is not used). SC_E_USAGE for bad hex or a key that is not
 * one; SC_E_STATE when another root is pinned already; SC_OK when the same
 * one is. */
int sc_sealed_pin_root(sc_client *c, const char *root_hex);
/* The pinned sealed-sender trust root in lower-case hex (local only).
 * *pinned false and hex "" when none is pinned (a server before v5, or not
 * registered yet). SC_OK or SC_E_STORE (a damaged value). */
int sc_sealed_root(sc_client *c, char hex[SC_SEALED_ROOT_HEX + 1], bool *pinned);

/* Marks incoming messages of a conversation (contact, or group id/name)
 * read: the given timestamps ts[0..n) (SC_E_NOT_FOUND when one is not an
 * incoming message there), or every unread one (n 0). Each newly read
 * message starts its disappearing timer, is named in a read sync to our
 * other devices, and (read receipts on, not a message request) owes its
 * author a read receipt, sent after a random 1-5 s (sc_receipts_send).
 * *marked (may be NULL): how many were unread. The sync is flushed; a
 * network failure leaves it queued (SC_OK). */
int sc_read_mark(sc_client *c, const char *conv, bool is_group, const uint64_t *ts, size_t n,
                 size_t *marked);
/* Sends the receipts that are due (wait: first waits until every receipt
 * owed is due, at most their delay), batched per recipient and type, up to
 * 100 timestamps per receipt. SC_OK or the queue/flush error. */
int sc_receipts_send(sc_client *c, bool wait);
/* Sends a typing indicator (started, or stopped) to a contact or every
 * member of a group, now (never queued; nothing stored). *sent (may be
 * NULL) false when typing indicators are off (nothing sent, SC_OK). */
int sc_typing_send(sc_client *c, const char *to, bool is_group, bool started, bool *sent);
/* The event of our own message `ts` in a conversation, with its receipts
 * per recipient (ev->receipts), through cb. SC_E_NOT_FOUND when there is
 * no such message of ours there. */
int sc_message_receipts(sc_client *c, const char *conv, bool is_group, uint64_t ts, sc_event_cb cb,
                        void *ud);

/* ---- issue 11: expire (disappearing messages; docs/cli.md "Disappearing
 * messages") ---- */

/* Sets the disappearing-message timer of a conversation (contact TO, or
 * group TO when to_group) to `seconds` (0: off; at most 365 days): sends
 * the change to every member and our own devices, stores a visible
 * "timer" row, and from then on every message sent there carries it. The
 * change holds locally once queued: *timestamp_out (may be NULL; 0 when
 * nothing was queued) is its message id; the return code is the send's
 * (a network failure leaves it queued for the next flush). */
int sc_timer_set(sc_client *c, const char *to, bool to_group, uint32_t seconds,
                 uint64_t *timestamp_out);
/* The conversation's current timer in seconds (0: off). */
int sc_timer_get(sc_client *c, const char *to, bool to_group, uint32_t *seconds);

/* ---- issue 11: profiles (profile.c; docs/cli.md "Profiles",
 * docs/protocol.md "Profiles") ---- */
#define SC_PROFILE_NAME_MAX 128           /* display name, UTF-8 bytes */
#define SC_PROFILE_AVATAR_MAX (96 * 1024) /* avatar bytes */

/* Sets our profile: display name (1..SC_PROFILE_NAME_MAX bytes of UTF-8,
 * no control characters) and optional avatar (file at avatar_path, at most
 * SC_PROFILE_AVATAR_MAX bytes; content_type may be NULL: guessed from the
 * extension). Encrypts it under our profile key (made on first use),
 * uploads the ciphertext, keeps the name locally and tells our other
 * devices (a sync message). SC_E_USAGE (name, file), SC_E_NETWORK /
 * SC_E_SERVER / SC_E_RETRY (not uploaded: nothing changed), SC_E_STORE. */
int sc_profile_set(sc_client *c, const char *name, const char *avatar_path,
                   const char *content_type);
/* Replaces our profile key with a new random one (issue 12): whoever
 * holds the old key can no longer derive our delivery token, so their
 * sealed sends are refused by the server (they fall back to identified,
 * which the block list and message requests handle). The profile (if a
 * name is set) is encrypted again and uploaded under the new key, the new
 * delivery token is uploaded, then the new key is stored, synced to our
 * other devices (SyncMessage.profile_key) and sent in a profile-key update
 * (DataMessage flags FLAG_PROFILE_KEY_UPDATE) to every accepted contact
 * that is not blocked; those are flushed (a failure leaves them queued).
 * *notified (may be NULL): how many contacts the update was queued for.
 * Resumable: the new key waits in client_config "profile_key_next" until
 * both uploads succeeded, so a retry after a network failure finishes
 * the same rotation. SC_OK also when we have no profile key (nothing to
 * rotate). SC_E_STATE (not registered), SC_E_NETWORK / SC_E_SERVER /
 * SC_E_RETRY (not finished: still due, retried by sc_profile_tick),
 * SC_E_STORE. sc_block calls it after a block. */
int sc_profile_rotate_key(sc_client *c, size_t *notified);
/* Whether a rotation (sc_profile_rotate_key) is due and not finished yet. */
int sc_profile_rotate_due(sc_client *c, bool *due);

typedef struct sc_profile_info {
    char *username;     /* whose */
    char *display_name; /* NULL: none known (attacker-controlled text: escape it) */
    char *avatar_path;  /* saved avatar (0600, attachments dir) or NULL */
    char *avatar_type;  /* its content type or NULL */
    bool has_key;       /* we hold their profile key */
} sc_profile_info;
/* Our profile (who NULL or our username: what we set) or a contact's:
 * fetches their ciphertext from the server and decrypts it when we hold
 * their key (fetch = true), else what we stored. SC_E_NOT_FOUND: no key
 * for them or no profile on the server; SC_E_INTEGRITY: the server's
 * bytes do not open under their key (nothing stored or shown); network
 * errors as usual. Free with sc_profile_info_clear. */
int sc_profile_get(sc_client *c, const char *who, bool fetch, sc_profile_info *out);
void sc_profile_info_clear(sc_profile_info *p);
/* The stored display name of `who` (NULL: none), malloc()ed. */
int sc_profile_display_name(sc_client *c, const char *who, char **out);

/* ---- helpers shared with the CLI and tests ---- */

/* true when s[0..len) is valid UTF-8 without NUL. */
bool sc_utf8_valid(const char *s, size_t len);
/* Largest n <= max such that s[0..n) ends on a UTF-8 character boundary. */
size_t sc_utf8_cut(const char *s, size_t len, size_t max);
/* Largest content padding bucket (480 * 2^8); a longer content is padded
 * to a multiple of 160 instead (docs/protocol.md "Padding"). */
#define SC_PAD_BUCKET_MAX ((size_t)122880)
/* Padded length of a content of `len` bytes (docs/protocol.md "Padding"):
 * the smallest bucket of 160, 320 * 2^k, 480 * 2^k that holds len + 1
 * bytes (content and the 0x80 terminator), up to SC_PAD_BUCKET_MAX; beyond
 * it the smallest multiple of 160 >= len + 1. 0 when len is too large for
 * a size_t computation. */
size_t sc_pad_size(size_t len);
/* Content padding: content, 0x80, then zeros up to sc_pad_size(len) bytes.
 * *out (malloc()ed, caller wipes and frees) and *out_len get the result.
 * Returns SC_OK or SC_E_INTERNAL (out of memory, len too large). */
int sc_pad(const uint8_t *in, size_t len, uint8_t **out, size_t *out_len);
/* Strips the padding of any length (so old senders' 160-multiples and any
 * bucket scheme are read alike): trailing 0x00 bytes, then exactly one
 * 0x80. *out_len gets the content length (<= len; the content is in[0..));
 * SC_OK, or SC_E_USAGE when malformed (empty, no 0x80 after the content). */
int sc_unpad(const uint8_t *in, size_t len, size_t *out_len);
/* Valid server username: 3..32 of [a-z0-9_.]. */
bool sc_username_valid(const char *s);
/* Valid local account name. */
bool sc_account_name_valid(const char *s);

#ifdef __cplusplus
}
#endif
#endif /* SOTTO_CLIENT_H */
