/*
 * sotto/memory_store.h -- all five storage interfaces of sotto/store.h kept
 * in process memory: for tests, benchmarks and short-lived tools.
 *
 * One sotto_memory_store holds the records of one local device: its
 * identity key pair and registration id (given at creation), sessions,
 * one-time prekeys, signed prekeys, remote identities with their trust
 * decisions, and sender-key records. Nothing survives sotto_memory_store_free;
 * use sotto/sqlite_store.h for persistence.
 *
 * Policies (the same as the SQLite store):
 *  - Identity trust (store.h): the first key seen for an address is trusted
 *    and recorded by `save`; a different key for a known address is
 *    SOTTO_UNTRUSTED until `save` replaces the recorded key. The local
 *    device's own address is not special-cased.
 *  - One-time prekeys are used at most once: an id once stored is never
 *    reused for a different key, and once removed (consumed by a PreKey
 *    message) it is never stored again, not even with the same key (`store`
 *    gives SOTTO_ERR_STORE in both cases). Storing the same key again while
 *    it is still held is accepted (idempotent).
 *  - Records handed to `store` callbacks are copied; `load` callbacks return
 *    a fresh malloc()ed copy the caller wipes and frees (store.h).
 *  - Every private key, session record and sender-key record is wiped
 *    (sodium_memzero) when replaced, removed or freed.
 *
 * Not thread-safe: use one store from one thread at a time.
 */
#ifndef SOTTO_MEMORY_STORE_H
#define SOTTO_MEMORY_STORE_H

#include "sotto/common.h"
#include "sotto/error.h"
#include "sotto/keys.h"
#include "sotto/store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sotto_memory_store sotto_memory_store;

/*
 * Creates an empty memory store for the local device with identity key pair
 * `identity` (copied into locked memory) and `registration_id`.
 * On success *out is a new store the caller frees with
 * sotto_memory_store_free(). Returns SOTTO_OK, SOTTO_ERR_INVALID_ARGUMENT
 * (a NULL argument) or SOTTO_ERR_NOMEM.
 */
SOTTO_API SOTTO_WUR int sotto_memory_store_new(const sotto_key_pair *identity,
                                               uint32_t registration_id, sotto_memory_store **out);

/* Wipes every secret and frees the store. NULL is a no-op. */
SOTTO_API void sotto_memory_store_free(sotto_memory_store *store);

/*
 * The five interfaces of this store, ready to pass to the session and group
 * APIs. The pointer is owned by `store` and valid until it is freed; the
 * caller may copy the struct. NULL for a NULL store.
 */
SOTTO_API sotto_protocol_store *sotto_memory_store_protocol(sotto_memory_store *store);

/* Number of one-time prekeys currently held (stored and not removed); 0 for
 * a NULL store. */
SOTTO_API size_t sotto_memory_store_prekey_count(const sotto_memory_store *store);

/* Number of session records currently held; 0 for a NULL store. */
SOTTO_API size_t sotto_memory_store_session_count(const sotto_memory_store *store);

#ifdef __cplusplus
}
#endif
#endif /* SOTTO_MEMORY_STORE_H */
