/*
 * lib/group/sender_key_record.h -- the sender-key record: the states of one
 * sender key name (group id + sending device) and their stored message keys
 * (internal header; spec sections 2.5 and 2.7).
 *
 * A record holds up to SOTTO_MAX_SENDER_KEY_STATES states, newest first. A
 * state is one sender key: key id, the chain key at `iteration` (the
 * iteration of the next message key to derive), the signing public key, the
 * signing private key when the state is our own, and up to
 * SOTTO_MAX_MESSAGE_KEYS message-key seeds skipped over by out-of-order
 * messages, in strictly ascending iteration order, all below `iteration`.
 *
 * Serialised form (libsotto's own, all integers big-endian):
 *   u8  format version (SOTTO_SKR_FORMAT_VERSION)
 *   u8  state count (0 .. 5)
 *   per state:
 *     u32 key id, u32 iteration, 32 chain key, 33 signing public key,
 *     32  the signing key's Edwards y (derived from the public key when the
 *         state was added; cached so that verifying a message needs no field
 *         inversion),
 *     u8  1 if a 32-byte signing private key follows, else 0, [32 private key],
 *     u16 message-key count (0 .. 2000),
 *     per message key: u32 iteration, 32 seed
 * Nothing may follow the last state. The decoder checks every count, flag,
 * key type byte and the ordering rule, and gives SOTTO_ERR_CORRUPT_RECORD on
 * any violation.
 */
#ifndef SOTTO_LIB_SENDER_KEY_RECORD_H
#define SOTTO_LIB_SENDER_KEY_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sotto/keys.h"
#include "sotto/protocol.h"

#define SOTTO_SKR_FORMAT_VERSION 1
#define SOTTO_SENDER_CHAIN_KEY_BYTES 32
#define SOTTO_SENDER_SEED_BYTES 32

typedef struct sotto_skr_message_key {
    uint32_t iteration;
    uint8_t seed[SOTTO_SENDER_SEED_BYTES];
} sotto_skr_message_key;

typedef struct sotto_skr_state {
    uint32_t key_id;
    uint32_t iteration;
    uint8_t chain_key[SOTTO_SENDER_CHAIN_KEY_BYTES];
    sotto_public_key signing_pub;
    uint8_t signing_ed[32]; /* Edwards y of signing_pub, sign bit clear */
    uint8_t signing_priv[SOTTO_PRIVATE_KEY_BYTES];
    bool has_private;
    sotto_skr_message_key *mks; /* malloc()ed, mk_count used of mk_cap */
    size_t mk_count;
    size_t mk_cap;
} sotto_skr_state;

typedef struct sotto_skr {
    sotto_skr_state states[SOTTO_MAX_SENDER_KEY_STATES]; /* [0] is the newest */
    size_t count;
} sotto_skr;

/* An empty record. */
void sotto_skr_init(sotto_skr *rec);

/* Wipes every key and frees the message-key arrays; the record is empty after. */
void sotto_skr_wipe(sotto_skr *rec);

/* Decodes `len` bytes into `rec` (initialised here). SOTTO_ERR_CORRUPT_RECORD
 * or SOTTO_ERR_NOMEM on failure, with `rec` left empty. */
SOTTO_WUR int sotto_skr_decode(sotto_skr *rec, const uint8_t *data, size_t len);

/* Serialises `rec` into a malloc()ed buffer (*out, *out_len) the caller wipes
 * and frees. SOTTO_OK or SOTTO_ERR_NOMEM. */
SOTTO_WUR int sotto_skr_encode(const sotto_skr *rec, uint8_t **out, size_t *out_len);

/* The state with `key_id`, newest first, or NULL. */
sotto_skr_state *sotto_skr_find(sotto_skr *rec, uint32_t key_id);

/*
 * Adds a state in front (newest), dropping the oldest beyond
 * SOTTO_MAX_SENDER_KEY_STATES. `signing_priv` may be NULL (a received state).
 * Returns the new state (never fails: no allocation).
 */
sotto_skr_state *sotto_skr_add_state(sotto_skr *rec, uint32_t key_id, uint32_t iteration,
                                     const uint8_t chain_key[SOTTO_SENDER_CHAIN_KEY_BYTES],
                                     const sotto_public_key *signing_pub,
                                     const uint8_t *signing_priv);

/* Wipes and removes state `i`. */
void sotto_skr_remove(sotto_skr *rec, size_t i);

/* Moves state `i` to the front. */
void sotto_skr_promote(sotto_skr *rec, size_t i);

/*
 * Makes room for `n` more message keys (n capped at SOTTO_MAX_MESSAGE_KEYS):
 * evicts the oldest so that count + n <= SOTTO_MAX_MESSAGE_KEYS, and grows
 * the array. SOTTO_OK or SOTTO_ERR_NOMEM.
 */
SOTTO_WUR int sotto_skr_state_make_room(sotto_skr_state *st, size_t n);

/*
 * Appends a skipped message key (iteration must exceed every stored one),
 * evicting the oldest when SOTTO_MAX_MESSAGE_KEYS are held.
 * SOTTO_OK, SOTTO_ERR_NOMEM or SOTTO_ERR_INTERNAL (ordering violated).
 */
SOTTO_WUR int sotto_skr_state_add_mk(sotto_skr_state *st, uint32_t iteration,
                                     const uint8_t seed[SOTTO_SENDER_SEED_BYTES]);

/* Finds the stored key for `iteration`, copies its seed out and removes it.
 * Returns true when found. */
bool sotto_skr_state_take_mk(sotto_skr_state *st, uint32_t iteration,
                             uint8_t seed[SOTTO_SENDER_SEED_BYTES]);

#endif /* SOTTO_LIB_SENDER_KEY_RECORD_H */
