/*
 * client/core/everyday.h -- everyday messaging (issue 11, docs/protocol.md
 * "Everyday messaging"): the hooks recv.c and send.c call, implemented in
 *   msgops.c    reactions, replies (quotes), mentions, edits, deletes
 *   receipts.c  delivery/read receipts, read state, typing, settings
 *   expire.c    disappearing messages, secure wiping of the store
 *   longtext.c  texts over 2 KiB
 *   profile.c   profiles and profile keys
 *   requests.c  message requests and blocking
 * Every hook runs inside the caller's transaction (the envelope's, or the
 * send's) unless it says otherwise, returns SC_OK or an SC_E_* code (an
 * error rolls the whole envelope back: keep them for store failures), and
 * sets sc_errmsg via sc_fail on error. `pe` (recv) is the pending-event
 * list: a hook that stores a row the user (or a daemon subscriber) must see
 * adds its id with sc_pend_row(pe, rowid).
 *
 * A message is named by (author username, author's Content.timestamp).
 * Control rows (kinds "receipt", "reaction", "edit", "delete", "read") are
 * history rows with target_sender/target_ts set: events for subscribers,
 * left out of sc_msg_history (the state they change is in the tables of
 * schema v7, store.c).
 */
#ifndef SOTTO_CLIENT_EVERYDAY_H
#define SOTTO_CLIENT_EVERYDAY_H

#include "internal.h"
#include "store.h"

#define SC_EDIT_WINDOW_MS (24ull * 3600 * 1000)    /* edits and deletes: 24 hours */
#define SC_LONG_TEXT_INLINE_BYTES 2048             /* longer texts travel as an attachment */
#define SC_QUOTE_EXCERPT_BYTES 200                 /* a reply's excerpt of the original */
#define SC_LONG_TEXT_TYPE "text/x-sotto-long-text" /* AttachmentPointer.content_type */
#define SC_TYPING_EXPIRE_MS 15000                  /* a typing indicator's lifetime */

typedef struct pending_emit pending_emit; /* recv.c */
/* Adds a stored row to the events the current receive shows. */
void sc_pend_row(pending_emit *pe, int64_t rowid);
/* For tests and fuzzing: an empty list (free()), and its rows. */
pending_emit *sc_pend_new(void);
size_t sc_pend_rows(const pending_emit *pe, const int64_t **rows);
/* The part of receiving after decryption (recv.c), inside the caller's
 * transaction: decodes the padded plaintext pt (a malformed one becomes a
 * "malformed" notice row) and handles it: stores rows, adds the ones to
 * show to pe. *ct_out: the decoded content (sc_content_free) or NULL. No
 * network use except what the hooks queue. */
int sc_content_handle(sc_client *c, const sc_envelope *e, const uint8_t *pt, size_t pt_len,
                      pending_emit *pe, Sotto__Content__Content **ct_out);

/* The send path of send.c for every data message (texts, files, and the
 * control messages of everyday.h: reactions, deletes, timer and profile
 * updates): queues dm for a contact or group (fan-out to members, a Sent
 * copy for our other devices), then flushes. o may be NULL. no_row: a
 * control message, no history row (the caller stores what it changes);
 * *rowid_out (may be NULL) the history row made (0 none). The decorate
 * hooks below run first. */
int sc_send_data(sc_client *c, const char *to, bool to_group, Sotto__Content__DataMessage *dm,
                 const char *local_path, const sc_send_options *o, bool no_row, uint64_t *ts_out,
                 int64_t *rowid_out);

/* An edit we send (sc_send_options.edit_timestamp): checks that
 * (our username, target_ts) is our message in (conv_kind, conv) and within
 * 24 h of edit_ts, then applies the new version locally (msgops.c).
 * *rowid_out: the edited row. Inside the send's transaction. */
int sc_edit_local(sc_client *c, const char *conv_kind, const char *conv, uint64_t target_ts,
                  uint64_t edit_ts, const Sotto__Content__DataMessage *dm, int64_t *rowid_out);

/* ---- send side (send.c, send_data) ----
 * Called with the DataMessage about to be queued for conversation
 * (conv_kind, conv): each fills its fields of dm (allocations recorded in
 * *keep with sc_keep(), freed by send.c after the send) and may refuse the
 * send (SC_E_USAGE, SC_E_NOT_FOUND, ...) before anything is stored. */
typedef struct sc_keep {
    void *p[32];
    size_t n;
    void (*fn[32])(void *);
} sc_keep;
/* Records p to be freed with fn (NULL: free) by sc_keep_release. SC_OK or
 * SC_E_INTERNAL when full. */
int sc_keep_add(sc_keep *k, void *p, void (*fn)(void *));
void sc_keep_release(sc_keep *k);

int sc_msgops_decorate(sc_client *c, const char *conv_kind, const char *conv,
                       Sotto__Content__DataMessage *dm, const sc_send_options *o, sc_keep *k);
int sc_expire_decorate(sc_client *c, const char *conv_kind, const char *conv,
                       Sotto__Content__DataMessage *dm, uint32_t *expire_s);
int sc_profile_decorate(sc_client *c, const char *conv_kind, const char *conv,
                        Sotto__Content__DataMessage *dm, sc_keep *k);
int sc_longtext_decorate(sc_client *c, Sotto__Content__DataMessage *dm, sc_keep *k);
/* Sending in a conversation accepts it (a message request we answer). */
int sc_requests_on_send(sc_client *c, const char *conv_kind, const char *conv);

/* ---- receive side (recv.c, handle_content) ---- */
/* Before anything else of a contact's content: *drop (the envelope is
 * acked, nothing stored) for a blocked sender. */
int sc_requests_screen(sc_client *c, const char *src, const Sotto__Content__Content *ct,
                       bool *drop);
/* Whether a new row in (conv_kind, conv) from src is part of a message
 * request (the conversation is not accepted). */
int sc_requests_is_request(sc_client *c, const char *conv_kind, const char *conv, bool *request);

int sc_receipt_handle(sc_client *c, const sc_envelope *e, const Sotto__Content__Content *ct,
                      pending_emit *pe);
/* Typing: no transaction needed, nothing stored; emits an SC_EV_TYPING
 * event straight to the receive's callback (c->recv_cb). */
int sc_typing_handle(sc_client *c, const sc_envelope *e, const Sotto__Content__Content *ct);
/* A content from another device of ours with sync read / blocked /
 * message_request_response / configuration / profile_key set. */
int sc_sync_extra_handle(sc_client *c, const sc_envelope *e, const Sotto__Content__Content *ct,
                         pending_emit *pe);

/* Parts of a sync from another device of ours that receipts.c's
 * sc_sync_extra_handle hands on, inside the envelope's transaction
 * (ct->sync set; e->source is our username, the device vetted):
 *   requests.c  ct->sync->blocked (the whole block list, newest
 *               Content.timestamp wins) and
 *               ct->sync->message_request_response (a request answered)
 *   profile.c   ct->sync->profile_key / profile_name
 * Each handles only its own fields and ignores the others. */
int sc_requests_sync_blocked(sc_client *c, const sc_envelope *e, const Sotto__Content__Content *ct,
                             pending_emit *pe);
int sc_requests_sync_response(sc_client *c, const sc_envelope *e, const Sotto__Content__Content *ct,
                              pending_emit *pe);
int sc_profile_sync(sc_client *c, const sc_envelope *e, const Sotto__Content__Content *ct,
                    pending_emit *pe);
/* profile.c: fetches the profiles of contacts whose key is new or whose
 * last fetch is a day old (a few per call; connected, outside transactions
 * only; a network failure waits a minute). Called by sc_everyday_tick. */
void sc_profile_tick(sc_client *c);
/* profile.c, for link syncs (linksync.c): a contact's profile key into
 * k->profile_key (malloc()ed: sc_profile_ls_contact_free wipes and frees
 * it); applying one received (stored, fetch due; a key we hold is
 * replaced); our own key and name into the part-1 SyncMessage (key: the
 * caller's 32-byte buffer, wiped by it; *name malloc()ed, free()d by it).
 * The receiving side applies own ones with sc_profile_sync. */
int sc_profile_ls_contact_fill(sc_client *c, Sotto__Content__SyncMessage__LinkSync__Contact *k);
void sc_profile_ls_contact_free(Sotto__Content__SyncMessage__LinkSync__Contact *k);
int sc_profile_ls_contact_apply(sc_client *c,
                                const Sotto__Content__SyncMessage__LinkSync__Contact *k);
int sc_profile_ls_own_fill(sc_client *c, Sotto__Content__SyncMessage *sync, uint8_t key[32],
                           char **name);

/* Data messages that act on another message or on the conversation,
 * incoming (outgoing = false) or a Sent sync copy of ours (outgoing =
 * true, author = our username). *handled: the message was one of these
 * (reaction, delete, timer update, profile-key update) and needs no text
 * row. ts: the message's timestamp. */
int sc_msgops_data(sc_client *c, const sc_envelope *e, const char *author, bool outgoing,
                   const char *conv_kind, const char *conv, uint64_t ts,
                   const Sotto__Content__DataMessage *dm, pending_emit *pe, bool *handled);
int sc_expire_data(sc_client *c, const sc_envelope *e, const char *author, bool outgoing,
                   const char *conv_kind, const char *conv, uint64_t ts,
                   const Sotto__Content__DataMessage *dm, pending_emit *pe, bool *handled);
int sc_profile_data(sc_client *c, const sc_envelope *e, const char *author, bool outgoing,
                    const Sotto__Content__DataMessage *dm, bool *handled);
/* An EditMessage: incoming (ct->edit) or our own (sync sent->edit). */
int sc_edit_handle(sc_client *c, const sc_envelope *e, const char *author, bool outgoing,
                   const char *dest, uint64_t edit_ts, const Sotto__Content__EditMessage *em,
                   pending_emit *pe);

/* The extra JSON of a text row for dm (attachments, quote, mentions,
 * long_text), malloc()ed or NULL; holds attachment keys (free with
 * sc_free_secret_str). */
char *sc_data_extra_json(const Sotto__Content__DataMessage *dm);
/* The same parts but attachments into the object o: quote, mentions and,
 * with with_long_text, the long text's pointer (with its key). */
void sc_data_extra_add(json_t *o, const Sotto__Content__DataMessage *dm, bool with_long_text);

/* After a text row was stored (rowid; incoming or a sync copy): applies
 * an edit or delete that came first (msgops.c), queues the delivery
 * receipt (receipts.c), starts the sender's disappearing timer (expire.c). */
int sc_msgops_on_stored(sc_client *c, int64_t rowid, const sc_msg_row *m);
int sc_receipts_on_stored(sc_client *c, int64_t rowid, const sc_msg_row *m);

/* ---- events (recv.c sc_emit_row) ----
 * Fill what they own of ev for row m; allocations go into *k (freed after
 * the callback). */
int sc_msgops_event(sc_client *c, const sc_msg *m, sc_event *ev, sc_keep *k);
int sc_receipts_event(sc_client *c, const sc_msg *m, sc_event *ev, sc_keep *k);
int sc_profile_event(sc_client *c, const sc_msg *m, sc_event *ev, sc_keep *k);

/* ---- housekeeping ----
 * sc_receive calls this at start and about once a second while it stays:
 * sends receipts that are due, expires typing indicators, removes
 * disappeared messages. No transaction held by the caller. */
void sc_everyday_tick(sc_client *c, sc_event_cb cb, void *ud);
int sc_receipts_tick(sc_client *c, bool force);
int sc_expire_tick(sc_client *c);
void sc_typing_tick(sc_client *c, sc_event_cb cb, void *ud);

/* Removes every trace of a message's text from the store -- the row's
 * body and extra, its control rows, edit versions -- and its downloaded
 * attachment files; then (outside a transaction) checkpoints and
 * truncates the WAL so no old page holds it (expire.c). tombstone: keep
 * the row as deleted (delete for everyone) instead of deleting it
 * (disappearing). */
int sc_wipe_message(sc_client *c, int64_t rowid, bool tombstone);
/* Checkpoints and truncates the WAL (after wipes, outside transactions). */
int sc_store_scrub(sc_client *c);

/* ---- issue 11: expire (expire.c, longtext.c) ---- */
#define SC_EXPIRE_MAX_S (365u * 24 * 3600) /* the longest disappearing timer */
/* sc_wipe_message in detail: removes the row (tombstone: keeps it with
 * body '', extra NULL, deleted = 1), its edit versions, reactions, receipts
 * (our own message), the control rows acting on it (a tombstone keeps the
 * "delete" rows), the "attachment_ready" notices naming it, its queued
 * copies when it is our own message not sent yet (client_outgoing rows
 * with its msg_id, and its Sent copy for our other devices) and the copies
 * kept to answer retry requests (retry.c "retry_sent:"), and deletes
 * the downloaded files of its "attachments" that lie directly in the
 * account's attachments directory (never a file we sent from). Files go at
 * once, even inside a transaction that is later rolled back. Inside a
 * transaction the WAL scrub is left to the caller (c->scrub_due: recv.c
 * runs it after commit; else sc_expire_tick). SC_E_NOT_FOUND: no such
 * row. sc_store_scrub: inside a transaction only sets c->scrub_due; a WAL
 * that a reader keeps busy is tried again ~10 times over 200 ms, then left
 * to the next sc_expire_tick (c->scrub_due). */

/* Starts the disappearing timer of incoming row `rowid` when it was read
 * at read_ms (receipts.c `read`, a read sync): expires_ms = read_ms +
 * expire_s seconds; nothing when the row has no timer; a timer already
 * running out sooner is kept. Inside the caller's transaction. */
int sc_expire_start(sc_client *c, int64_t rowid, uint64_t read_ms);
/* longtext.c: after an incoming (or Sent copy) row with extra "long_text"
 * was stored and committed: downloads the whole text (the attachment
 * machinery: MAC and digest verified), checks it is valid UTF-8 of at most
 * SC_MAX_TEXT_BYTES, replaces the row's body with it and removes the
 * pointer (and key) from extra, deleting the downloaded file. A failure
 * that may pass (network) keeps the pointer for
 * sc_attachment_retry_pending (*transient set); a final one keeps the
 * short body, forgets the key and records the reason in an "attachments"
 * entry's error (shown with the event). Called by attach.c att_fetch. */
int sc_longtext_fetch(sc_client *c, int64_t rowid, bool *transient);
/* Whether path is a long text's temporary file that sc_longtext_decorate
 * wrote (<account dir>/.longtext-*): outupload.c deletes it once uploaded
 * and every queued copy holds the real pointer. */
bool sc_longtext_is_temp(sc_client *c, const char *path);
/* Link sync (linksync.c): the conversation's timer into k->expire_timer /
 * g->expire_timer; applying one fills a conversation whose timer was never
 * set on this device (any real change, newer, wins). */
int sc_expire_ls_contact_fill(sc_client *c, Sotto__Content__SyncMessage__LinkSync__Contact *k);
int sc_expire_ls_group_fill(sc_client *c, Sotto__Content__SyncMessage__LinkSync__Group *g);
int sc_expire_ls_contact_apply(sc_client *c,
                               const Sotto__Content__SyncMessage__LinkSync__Contact *k);
int sc_expire_ls_group_apply(sc_client *c, const Sotto__Content__SyncMessage__LinkSync__Group *g);

/* ---- requests.c (message requests and blocking) ----
 * Inside the caller's transaction. */
/* A conversation we act in ourselves (a group change we make, a Sent copy
 * from another device of ours): accepted, its request rows cleared. */
int sc_requests_accept_conv(sc_client *c, const char *conv_kind, const char *conv);
/* groups.c: an UPDATE from `adder` made us a member of group gid_hex (we
 * were not an active member before): the group is accepted when adder is
 * us or a contact whose conversation is accepted. */
int sc_requests_group_joined(sc_client *c, const char *gid_hex, const char *adder);
/* Link sync (linksync.c): fill the accepted/blocked flags of a contact or
 * group about to be sent, and apply those of one received (a flag only
 * ever added: accepted, blocked). */
int sc_requests_ls_contact_fill(sc_client *c, Sotto__Content__SyncMessage__LinkSync__Contact *k);
int sc_requests_ls_contact_apply(sc_client *c,
                                 const Sotto__Content__SyncMessage__LinkSync__Contact *k);
int sc_requests_ls_group_fill(sc_client *c, Sotto__Content__SyncMessage__LinkSync__Group *g);
int sc_requests_ls_group_apply(sc_client *c, const Sotto__Content__SyncMessage__LinkSync__Group *g);

/* Link sync (linksync.c): the settings (read receipts, typing) ride in
 * part 1 as SyncMessage.configuration; fill writes ours into *conf, apply
 * takes ct's when newer (by Content.timestamp) than the ones held
 * (receipts.c). */
int sc_config_sync_fill(sc_client *c, Sotto__Content__SyncMessage__Configuration *conf);
int sc_config_sync_apply(sc_client *c, const Sotto__Content__Content *ct);

#endif /* SOTTO_CLIENT_EVERYDAY_H */
