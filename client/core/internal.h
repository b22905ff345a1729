/*
 * client/core/internal.h -- shared internals of the client core.
 */
#ifndef SOTTO_CLIENT_INTERNAL_H
#define SOTTO_CLIENT_INTERNAL_H

#include <jansson.h>
#include <sqlite3.h>

#include "content.pb-c.h"
#include "net.h"
#include "sotto/keys.h"
#include "sotto/session.h"
#include "sotto/sqlite_store.h"
#include "sotto/store.h"
#include "sotto_client.h"

#define SC_PREKEY_BATCH 100
#define SC_SIGNED_PREKEY_ROTATE_MS (7ull * 24 * 3600 * 1000) /* weekly */
#define SC_SIGNED_PREKEY_GRACE_MS (30ull * 24 * 3600 * 1000) /* old ones kept 30 days */
#define SC_SEND_RETRIES 3
/* STATUS_RATE_LIMITED on send: wait retry_after_ms and resend, at most this
 * many times per message and only for waits up to 10 s (longer: the
 * message stays queued, exit 4) */
#define SC_RATE_LIMIT_WAITS 5
#define SC_RATE_LIMIT_MAX_WAIT_MS 10000
#define SC_TIMEOUT_MS 15000

struct sc_client {
    char *account;
    char *dir;     /* account directory */
    char *att_dir; /* downloaded attachments */
    sotto_sqlite_store *store;
    sotto_protocol_store ps;
    sqlite3 *db;
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
    uint32_t login_queued;       /* envelopes waiting at login (LoginResponse.queued) */
    char err[512];
};

/* errors */
int sc_fail(sc_client *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
uint64_t sc_now_ms(void);
/* A fresh message timestamp, strictly increasing per account. */
uint64_t sc_next_timestamp(sc_client *c);
void sc_hex(const uint8_t *p, size_t n, char *out); /* out holds 2n+1 */

/* db.c */
int sc_db_init(sc_client *c);
int sc_cfg_get_text(sc_client *c, const char *key, char **out); /* NOT_FOUND when absent */
int sc_cfg_get_blob(sc_client *c, const char *key, uint8_t **out, size_t *len);
int sc_cfg_get_u64(sc_client *c, const char *key, uint64_t *out);
int sc_cfg_set_text(sc_client *c, const char *key, const char *v);
int sc_cfg_set_blob(sc_client *c, const char *key, const uint8_t *v, size_t len);
int sc_cfg_set_u64(sc_client *c, const char *key, uint64_t v);
int sc_db_begin(sc_client *c);
int sc_db_commit(sc_client *c);
void sc_db_rollback(sc_client *c);
/* contacts */
int sc_contact_touch(sc_client *c, const char *name, uint32_t device_id);
int sc_contact_devices(sc_client *c, const char *name, uint32_t **ids, size_t *n);
int sc_contact_forget_device(sc_client *c, const char *name, uint32_t device_id);
int sc_pending_identity_set(sc_client *c, const char *name, uint32_t device_id,
                            const sotto_public_key *key);
int sc_pending_identity_any(sc_client *c, const char *name, bool *any);
int sc_device_auth_get(sc_client *c, const char *name, uint32_t dev, uint8_t key[32]);
int sc_device_auth_set(sc_client *c, const char *name, uint32_t dev, const uint8_t key[32]);
/* messages; returns row id in *rowid (may be NULL) */
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
} sc_msg_row;
int sc_msg_insert(sc_client *c, const sc_msg_row *m, int64_t *rowid);
int sc_msg_seen(sc_client *c, const char *sender, uint64_t timestamp, bool *seen);
int sc_msg_set_extra(sc_client *c, int64_t rowid, const char *extra);
int sc_envelope_seen(sc_client *c, const uint8_t *id, size_t len, bool *seen);
int sc_envelope_mark(sc_client *c, const uint8_t *id, size_t len);
/* outgoing queue */
int sc_out_add(sc_client *c, const char *destination, uint64_t timestamp, const uint8_t *content,
               size_t len, int64_t msg_rowid);
/* rows stored but not yet shown (client_pending_events): added inside the
 * envelope's transaction, removed just before the row's event is emitted */
int sc_pending_event_add(sc_client *c, int64_t rowid);
int sc_pending_event_done(sc_client *c, int64_t rowid);
/* held envelopes (identity changed) */
int sc_held_add(sc_client *c, const Sotto__Api__Envelope *e);

/* groups (groups.c) */
int sc_group_members(sc_client *c, const uint8_t id[SC_GROUP_ID_BYTES], char ***members, size_t *n,
                     char **name, bool *active);
void sc_strv_free(char **v, size_t n);
int sc_group_resolve(sc_client *c, const char *ref, uint8_t id[SC_GROUP_ID_BYTES]);
int sc_group_apply_update(sc_client *c, const char *sender, uint32_t sender_device,
                          const Sotto__Content__GroupContext *g, uint64_t ts, uint64_t server_ts);

/* session.c: connection, login, keys, sending */
int sc_connect(sc_client *c);
void sc_disconnect(sc_client *c);
int sc_api(sc_client *c, Sotto__Api__ClientFrame *req, Sotto__Api__ServerFrame **resp);
int sc_status_error(sc_client *c, const Sotto__Api__ServerFrame *f, const char *what);
int sc_keys_maintain(sc_client *c, bool prekeys_low);
/* Sends one padded Content to every device of `dest` (and handles
 * mismatches). */
int sc_deliver(sc_client *c, const char *dest, const uint8_t *content, size_t len);
/* Queues content for dest (+ a sync copy for own devices when data). */
int sc_enqueue_content(sc_client *c, const char *dest, Sotto__Content__Content *content,
                       int64_t msg_rowid);
int sc_fetch_identity_keys(sc_client *c, const char *name);
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
int sc_process_envelope(sc_client *c, const Sotto__Api__Envelope *e, bool from_held, sc_event_cb cb,
                        void *ud);
/* Shows the rows a killed process stored but never showed
 * (client_pending_events), oldest first, fetching their attachments. */
int sc_emit_pending(sc_client *c, sc_event_cb cb, void *ud);
/* Emits a history row as an event. */
int sc_emit_row(sc_client *c, sqlite3_stmt *st, sc_event_cb cb, void *ud);

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

#endif /* SOTTO_CLIENT_INTERNAL_H */
