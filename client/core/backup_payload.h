/*
 * client/core/backup_payload.h -- the payload of an account backup
 * (proto/backup.proto, docs/protocol.md "Backup payload"): building it from
 * the local store, parsing and checking one opened from a file, and
 * importing it into a new local account. Internal to the client core (and
 * tests/fuzz/fuzz_backup_payload.c); the public API is sc_backup_create()
 * and sc_restore() in sotto_client.h.
 *
 * Everything in a payload is secret (the account private key, contacts,
 * history): the serialized bytes are wiped by their owner, a decoded
 * payload by sc_backup_payload_free().
 */
#ifndef SOTTO_CLIENT_BACKUP_PAYLOAD_H
#define SOTTO_CLIENT_BACKUP_PAYLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backup.pb-c.h"
#include "sotto_client.h"

/* Bounds a payload must respect; anything else is refused before a byte
 * is stored (SC_E_USAGE, "not a valid backup: ..."). */
#define SC_BACKUP_FORMAT 1
#define SC_BACKUP_PAYLOAD_MAX ((size_t)256 * 1024 * 1024) /* = SOTTO_BACKUP_PAYLOAD_MAX */
#define SC_BACKUP_MAX_CONTACTS 100000
#define SC_BACKUP_MAX_GROUPS 100000
#define SC_BACKUP_MAX_HISTORY 10000000
#define SC_BACKUP_MAX_BODY (2 * SC_MAX_TEXT_BYTES) /* texts, notices, group lines */
#define SC_BACKUP_MAX_EXTRA (1024 * 1024)          /* a history row's JSON */
#define SC_BACKUP_MAX_CA (1024 * 1024)             /* CA bundle (PEM) */
#define SC_BACKUP_MAX_URL 2048
#define SC_BACKUP_MAX_NAME 64 /* conv / sender of a history row */

/*
 * Parses and checks a payload (untrusted bytes: what a file that opened
 * with the recovery code holds). Checks: format 1; username valid;
 * private key 32 bytes; server URL "https://..." (<= 2048 bytes); pin ""
 * or 64 hex; CA <= 1 MiB; at most SC_BACKUP_MAX_CONTACTS contacts with
 * valid, distinct names other than the username, account keys of 0 or 33
 * bytes that decode, a device list only with a key and only one that
 * verifies under it for that name with version == list_version
 * (list_version 0 without a list); at most SC_BACKUP_MAX_GROUPS groups
 * with distinct 16-byte ids, UTF-8 names <= 256 bytes, at most
 * SC_MAX_GROUP_MEMBERS + 1 valid member names; at most
 * SC_BACKUP_MAX_HISTORY rows with conv_kind "contact"/"group", kind
 * "text"/"notice"/"group", direction 0/1, UTF-8 conv/sender (<= 64 bytes),
 * body (<= SC_BACKUP_MAX_BODY) and extra (<= SC_BACKUP_MAX_EXTRA) without
 * NUL. Returns SC_OK with *out (free with sc_backup_payload_free), or
 * SC_E_USAGE / SC_E_INTERNAL with the reason in err (errlen bytes).
 */
int sc_backup_payload_parse(const uint8_t *p, size_t len, Sotto__Backup__Backup **out, char *err,
                            size_t errlen);
/* Wipes the secrets (private key, CA, bodies, extras) and frees. NULL ok. */
void sc_backup_payload_free(Sotto__Backup__Backup *b);

/* What an import stored. */
typedef struct sc_backup_counts {
    size_t contacts, groups, history;
} sc_backup_counts;

/*
 * Stores a parsed payload in the local store, atomically (one nested
 * transaction): the account key pair (client_config "account_sk" and
 * "account_pk", the public half derived), contacts with their verified
 * flags, pinned account keys and accepted lists (client_accounts), groups
 * and history rows. Does not set the username, server or device keys
 * (registration does). The store must be empty (sc_store_is_empty):
 * SC_E_STATE otherwise. Returns SC_OK, SC_E_STATE, SC_E_STORE,
 * SC_E_INTERNAL; counts (may be NULL) gets what was stored.
 */
int sc_backup_payload_import(sc_client *c, const Sotto__Backup__Backup *b,
                             sc_backup_counts *counts);

/*
 * Builds the payload of this account from the local store (primary device
 * only: SC_E_STATE otherwise): *out malloc()ed, *len bytes, SECRET (wipe,
 * then free). History only when with_history. SC_E_USAGE when it would
 * exceed SC_BACKUP_PAYLOAD_MAX. counts (may be NULL) gets what it holds.
 */
int sc_backup_payload_export(sc_client *c, bool with_history, uint8_t **out, size_t *len,
                             sc_backup_counts *counts);

/* client.c: registers this device as the only device (device 1) of
 * `username` with a list of version `list_version` signed by the stored
 * account key; recover = true re-takes an existing username (API v2). */
int sc_register_device(sc_client *c, const char *username, const char *invite, bool recover,
                       uint64_t list_version);

#endif /* SOTTO_CLIENT_BACKUP_PAYLOAD_H */
