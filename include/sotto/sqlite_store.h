/*
 * sotto/sqlite_store.h -- all five storage interfaces of sotto/store.h kept
 * in one SQLite database file, for clients.
 *
 * The database holds the local device's identity key pair and registration
 * id, sessions, one-time prekeys, signed prekeys, remote identities with
 * trust decisions, and sender-key records, in tables whose names start with
 * "sotto_" (an application may keep its own tables in the same file, see
 * sotto_sqlite_store_db(), but must not use that prefix).
 *
 * File and durability:
 *  - The file is created with mode 0600 (an existing file is narrowed to
 *    0600); SQLite gives its -wal and -shm files the same mode. Private keys
 *    are stored unencrypted in it: protect the directory (the client keeps it
 *    in its XDG data directory) and use full-disk encryption.
 *  - WAL journal, secure_delete on (removed keys are overwritten in the
 *    file), foreign keys on, a 5 s busy timeout. synchronous=FULL by default
 *    so a committed ratchet step survives a power cut (a lost step could
 *    make the device reuse a message key); SOTTO_SQLITE_SYNC_NORMAL trades
 *    that for speed.
 *  - The schema is versioned with PRAGMA user_version and migrated forward
 *    on open, inside one transaction. A file with a newer schema than this
 *    libsotto knows is refused (SOTTO_ERR_STORE) rather than damaged.
 *
 * Policies are those of sotto/memory_store.h: trust on first use, a changed
 * identity untrusted until `save`; a one-time prekey id never takes a
 * different key, and a removed (consumed) one is never stored again, not
 * even with the same key (the row is kept with its private key deleted). A row that does not decode
 * (wrong type or length, an id out of range) gives SOTTO_ERR_CORRUPT_RECORD, never a crash. Other
 * SQLite failures give SOTTO_ERR_STORE.
 *
 * Transactions: every callback runs as its own statement (autocommit) unless
 * the application opened a transaction with sotto_sqlite_store_begin(); do
 * so around one decryption to make its several writes (session, identity,
 * prekey removal) atomic. Transactions nest through savepoints.
 *
 * Prepared statements are kept for the life of the store. One store is one
 * SQLite connection: use it from one thread at a time.
 */
#ifndef SOTTO_SQLITE_STORE_H
#define SOTTO_SQLITE_STORE_H

#include "sotto/common.h"
#include "sotto/error.h"
#include "sotto/keys.h"
#include "sotto/store.h"

#ifdef __cplusplus
extern "C" {
#endif

struct sqlite3;
typedef struct sotto_sqlite_store sotto_sqlite_store;

/* Schema version this libsotto writes (PRAGMA user_version). */
#define SOTTO_SQLITE_SCHEMA_VERSION 1

/* Flags for sotto_sqlite_store_open_ex(). */
#define SOTTO_SQLITE_SYNC_NORMAL 0x1u /* synchronous=NORMAL instead of FULL */

/*
 * Opens (creating if needed) the store at `path` (a file system path, or
 * ":memory:" for a private in-memory database that is never written) and
 * migrates its schema. On success *out is a new store the caller closes with
 * sotto_sqlite_store_close(). Returns SOTTO_OK, SOTTO_ERR_INVALID_ARGUMENT,
 * SOTTO_ERR_NOMEM or SOTTO_ERR_STORE (cannot open or create the file, not a
 * database, newer schema).
 */
SOTTO_API SOTTO_WUR int sotto_sqlite_store_open(const char *path, sotto_sqlite_store **out);

/* sotto_sqlite_store_open() with SOTTO_SQLITE_* `flags`. */
SOTTO_API SOTTO_WUR int sotto_sqlite_store_open_ex(const char *path, unsigned flags,
                                                   sotto_sqlite_store **out);

/*
 * Closes the store: rolls back an open transaction, finalizes statements,
 * closes the database and wipes the cached identity key. NULL is a no-op.
 */
SOTTO_API void sotto_sqlite_store_close(sotto_sqlite_store *store);

/*
 * Records the local device's identity key pair and registration id. Setting
 * the same values again is a no-op; a store that already holds a different
 * identity refuses with SOTTO_ERR_STORE (an identity is never silently
 * replaced: start a new database instead). Returns SOTTO_OK,
 * SOTTO_ERR_INVALID_ARGUMENT or SOTTO_ERR_STORE.
 */
SOTTO_API SOTTO_WUR int sotto_sqlite_store_set_local_identity(sotto_sqlite_store *store,
                                                              const sotto_key_pair *identity,
                                                              uint32_t registration_id);

/*
 * Copies the local identity into *identity (wipe it after use) and
 * *registration_id (either may be NULL). Returns SOTTO_OK, SOTTO_ERR_NOT_FOUND
 * before sotto_sqlite_store_set_local_identity(), or SOTTO_ERR_INVALID_ARGUMENT.
 * The identity interface's callbacks return the same values and errors.
 */
SOTTO_API SOTTO_WUR int sotto_sqlite_store_get_local_identity(sotto_sqlite_store *store,
                                                              sotto_key_pair *identity,
                                                              uint32_t *registration_id);

/*
 * The five interfaces of this store. The pointer is owned by `store` and
 * valid until it is closed; the caller may copy the struct. NULL for a
 * NULL store.
 */
SOTTO_API sotto_protocol_store *sotto_sqlite_store_protocol(sotto_sqlite_store *store);

/*
 * Transactions. begin opens a transaction (BEGIN IMMEDIATE: the write lock is
 * taken at once) or, inside one, a savepoint; commit and rollback close the
 * innermost one. Returns SOTTO_OK, SOTTO_ERR_STORE, or
 * SOTTO_ERR_INVALID_ARGUMENT for commit/rollback with none open.
 */
SOTTO_API SOTTO_WUR int sotto_sqlite_store_begin(sotto_sqlite_store *store);
SOTTO_API SOTTO_WUR int sotto_sqlite_store_commit(sotto_sqlite_store *store);
SOTTO_API SOTTO_WUR int sotto_sqlite_store_rollback(sotto_sqlite_store *store);

/* Number of one-time prekeys held (stored and not removed) into *out.
 * Returns SOTTO_OK, SOTTO_ERR_INVALID_ARGUMENT (NULL) or SOTTO_ERR_STORE. */
SOTTO_API SOTTO_WUR int sotto_sqlite_store_prekey_count(sotto_sqlite_store *store, size_t *out);

/*
 * The underlying connection, for an application's own tables (not prefixed
 * "sotto_") in the same file and transactions. Owned by the store; do not
 * close it or change its journal mode. NULL for a NULL store.
 */
SOTTO_API struct sqlite3 *sotto_sqlite_store_db(sotto_sqlite_store *store);

#ifdef __cplusplus
}
#endif
#endif /* SOTTO_SQLITE_STORE_H */
