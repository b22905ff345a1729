/*
 * sotto/store.h -- the storage interfaces libsotto works through.
 *
 * The protocol code never does I/O itself: it loads and stores records
 * through these five interfaces, which an application implements (or takes
 * from sotto/memory_store.h or sotto/sqlite_store.h). Session records and
 * sender-key records are opaque, versioned byte strings produced by
 * libsotto; stores keep them as they are.
 *
 * Conventions for every callback:
 *  - `ud` is the `user_data` pointer of the interface struct.
 *  - Return SOTTO_OK (0) on success, SOTTO_ERR_NOT_FOUND when the record
 *    does not exist, or SOTTO_ERR_STORE (or another negative code) on a
 *    storage failure. libsotto passes any failure up to its caller.
 *  - Output byte strings (`*record`) are allocated by the store with
 *    malloc(); libsotto wipes and free()s them.
 *  - Input pointers are only valid during the call; copy what you keep.
 *
 * Transactions: libsotto calls `store`/`remove` callbacks only after a
 * message has been authenticated and decrypted, so a failed decryption
 * leaves every store untouched. An application that needs the several
 * writes of one successful decryption to be atomic wraps the call in its
 * own transaction (the SQLite store offers sotto_sqlite_store_begin/commit).
 */
#ifndef SOTTO_STORE_H
#define SOTTO_STORE_H

#include "sotto/common.h"
#include "sotto/error.h"
#include "sotto/keys.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SOTTO_MAX_NAME_BYTES 256          /* longest address name accepted */
#define SOTTO_MAX_RECORD_BYTES (4u << 20) /* longest record a store must hold */

/* A remote (or local) device: account name (UTF-8, not NUL-terminated
 * necessarily) and device id. */
typedef struct sotto_address {
    const char *name;
    size_t name_len;
    uint32_t device_id;
} sotto_address;

/* The name of a sender key: a group id and the sending device. */
typedef struct sotto_sender_key_name {
    const uint8_t *group_id;
    size_t group_id_len;
    sotto_address sender;
} sotto_sender_key_name;

/*
 * Sessions, keyed by address. Records are opaque byte strings of 1 ..
 * SOTTO_MAX_RECORD_BYTES bytes (see sotto/session.h); `load` returns
 * SOTTO_ERR_NOT_FOUND when there is none, `store` replaces any previous
 * record, `remove` returns SOTTO_ERR_NOT_FOUND when there was none.
 */
typedef struct sotto_session_store {
    int (*load)(void *ud, const sotto_address *addr, uint8_t **record, size_t *len);
    int (*store)(void *ud, const sotto_address *addr, const uint8_t *record, size_t len);
    int (*remove)(void *ud, const sotto_address *addr);
    /* Device ids with a session for `name`, excluding none; *ids malloc()ed,
     * caller frees. Zero devices: SOTTO_OK with *count 0 and *ids NULL. */
    int (*device_ids)(void *ud, const char *name, size_t name_len, uint32_t **ids, size_t *count);
    void *user_data;
} sotto_session_store;

/*
 * One-time prekeys, keyed by id (spec 2.6). A one-time prekey is used at
 * most once, so a store must refuse (SOTTO_ERR_STORE) to store a different
 * key under an id it has used before, and to store any key, the same one
 * included, under an id that was removed (libsotto removes a prekey when a
 * PreKey message consumed it). `load` fills *out (a private key: libsotto
 * wipes it) or returns SOTTO_ERR_NOT_FOUND; `remove` returns
 * SOTTO_ERR_NOT_FOUND for an id not held (libsotto treats that as done).
 */
typedef struct sotto_prekey_store {
    int (*load)(void *ud, uint32_t id, sotto_prekey *out);
    int (*store)(void *ud, const sotto_prekey *prekey);
    int (*remove)(void *ud, uint32_t id);
    void *user_data;
} sotto_prekey_store;

/* Signed prekeys, keyed by id (spec 3.2). `load` fills *out (with its
 * private key: libsotto wipes it) or returns SOTTO_ERR_NOT_FOUND. */
typedef struct sotto_signed_prekey_store {
    int (*load)(void *ud, uint32_t id, sotto_signed_prekey *out);
    int (*store)(void *ud, const sotto_signed_prekey *spk);
    int (*remove)(void *ud, uint32_t id);
    void *user_data;
} sotto_signed_prekey_store;

/* Trust decision returned by is_trusted. */
enum { SOTTO_UNTRUSTED = 0, SOTTO_TRUSTED = 1 };

/*
 * The local identity and the remote identities with trust decisions.
 * Policy of the provided stores: an address seen for the first time is
 * trusted (trust on first use); a different key for a known address is
 * untrusted until the application accepts it with save (after the user
 * compared safety numbers).
 */
typedef struct sotto_identity_store {
    int (*get_identity_key_pair)(void *ud, sotto_key_pair *out);
    int (*get_local_registration_id)(void *ud, uint32_t *out);
    /* Records `key` as the trusted identity of `addr` (replacing any other). */
    int (*save)(void *ud, const sotto_address *addr, const sotto_public_key *key);
    /* SOTTO_TRUSTED, SOTTO_UNTRUSTED, or a negative error. */
    int (*is_trusted)(void *ud, const sotto_address *addr, const sotto_public_key *key);
    /* The saved identity of `addr`, or SOTTO_ERR_NOT_FOUND. */
    int (*get)(void *ud, const sotto_address *addr, sotto_public_key *out);
    void *user_data;
} sotto_identity_store;

/* Sender-key records (groups), keyed by sender key name (group id bytes and
 * sender address). Opaque records of 1 .. SOTTO_MAX_RECORD_BYTES bytes
 * holding chain keys and, for our own sender keys, signing private keys;
 * `load` returns SOTTO_ERR_NOT_FOUND when there is none. */
typedef struct sotto_sender_key_store {
    int (*load)(void *ud, const sotto_sender_key_name *name, uint8_t **record, size_t *len);
    int (*store)(void *ud, const sotto_sender_key_name *name, const uint8_t *record, size_t len);
    void *user_data;
} sotto_sender_key_store;

/* All five stores of one local device. */
typedef struct sotto_protocol_store {
    sotto_session_store session;
    sotto_prekey_store prekey;
    sotto_signed_prekey_store signed_prekey;
    sotto_identity_store identity;
    sotto_sender_key_store sender_key;
} sotto_protocol_store;

#ifdef __cplusplus
}
#endif
#endif /* SOTTO_STORE_H */
