/*
 * lib/protocol/session_record.h -- in-memory session states and records,
 * and their versioned binary serialisation (internal header).
 *
 * A record holds the current session state and up to
 * SOTTO_MAX_ARCHIVED_STATES archived ones (most recent first). A state
 * holds the root key, one sender chain, up to SOTTO_MAX_RECEIVER_CHAINS
 * receiver chains (oldest first) and, per receiver chain, up to
 * SOTTO_MAX_MESSAGE_KEYS skipped message-key seeds (oldest first).
 *
 * Loading is cheap by design (it happens on every message): the current
 * state is parsed, archived states are kept as bounds-checked raw slices of
 * the loaded bytes and parsed only when a message needs them; encoding copies
 * unparsed slices as they are. The format is in docs/protocol.md
 * ("Session record format").
 *
 * All structs hold secrets: free them with the functions below, which wipe.
 */
#ifndef SOTTO_LIB_SESSION_RECORD_H
#define SOTTO_LIB_SESSION_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sotto/keys.h"
#include "sotto/protocol.h"

#define SOTTO_CHAIN_KEY_BYTES 32
#define SOTTO_ROOT_KEY_BYTES 32
#define SOTTO_MESSAGE_SEED_BYTES 32

/* A skipped message key, kept as the 32-byte chain seed HMAC(CK, 0x01). */
typedef struct sotto_skipped_key {
    uint32_t counter;
    uint8_t seed[SOTTO_MESSAGE_SEED_BYTES];
} sotto_skipped_key;

typedef struct sotto_recv_chain {
    sotto_public_key their_ratchet;
    uint8_t chain_key[SOTTO_CHAIN_KEY_BYTES];
    uint32_t index;             /* counter of the next message key */
    sotto_skipped_key *skipped; /* oldest first; malloc()ed or NULL */
    uint32_t n_skipped;
    uint32_t cap_skipped;
} sotto_recv_chain;

typedef struct sotto_session_state {
    sotto_public_key local_identity;
    sotto_public_key remote_identity;
    uint32_t local_registration_id;
    uint32_t remote_registration_id;
    uint8_t root_key[SOTTO_ROOT_KEY_BYTES];
    uint32_t previous_counter;
    bool has_sender_chain;
    sotto_key_pair sender_ratchet;
    uint8_t sender_chain_key[SOTTO_CHAIN_KEY_BYTES];
    uint32_t sender_index;
    /* Unacknowledged PreKey state (initiator until a reply decrypts). */
    bool pending_prekey;
    bool pending_has_prekey_id;
    uint32_t pending_prekey_id;
    uint32_t pending_signed_prekey_id;
    /* The initiator's base key: identifies the session (both roles). */
    bool has_alice_base_key;
    sotto_public_key alice_base_key;
    sotto_recv_chain recv[SOTTO_MAX_RECEIVER_CHAINS]; /* oldest first */
    uint32_t n_recv;
} sotto_session_state;

/* An archived state: parsed (`state` non-NULL, heap) or a raw slice. */
typedef struct sotto_archived_state {
    sotto_session_state *state;
    const uint8_t *raw;
    size_t raw_len;
} sotto_archived_state;

typedef struct sotto_session_record {
    bool has_current;
    sotto_session_state current;
    sotto_archived_state archived[SOTTO_MAX_ARCHIVED_STATES]; /* most recent first */
    uint32_t n_archived;
    uint8_t *loaded; /* bytes from the store (raw slices point here) */
    size_t loaded_len;
} sotto_session_record;

/* Wipes a state and frees its skipped-key arrays (not the struct itself). */
void sotto_session_state_clear(sotto_session_state *st);
/* sotto_session_state_clear + free of a heap state. NULL is a no-op. */
void sotto_session_state_free(sotto_session_state *st);

/* An empty record (no current state). */
void sotto_session_record_init(sotto_session_record *rec);
/* Wipes and frees everything the record owns, including `loaded`. */
void sotto_session_record_clear(sotto_session_record *rec);

/*
 * Parses `data` into `rec` (which must be freshly initialised). Takes
 * ownership of `data` (malloc()ed; wiped and freed by _clear) in every
 * case, also on failure. With `full` every archived state is parsed too.
 * Returns SOTTO_OK, SOTTO_ERR_CORRUPT_RECORD or SOTTO_ERR_NOMEM.
 */
SOTTO_WUR int sotto_session_record_decode(sotto_session_record *rec, uint8_t *data, size_t len,
                                          bool full);

/*
 * Serialises `rec` into a malloc()ed buffer (*out, *out_len; wipe and
 * free). Archived states that would make the record exceed
 * SOTTO_MAX_RECORD_BYTES are dropped, oldest first.
 * Returns SOTTO_OK, SOTTO_ERR_NOMEM or SOTTO_ERR_INTERNAL.
 */
SOTTO_WUR int sotto_session_record_encode(const sotto_session_record *rec, uint8_t **out,
                                          size_t *out_len);

/*
 * As sotto_session_record_encode, but when the record fits in `scratch`
 * (scratch_len bytes; scratch may be NULL) it is written there and *out ==
 * scratch; otherwise *out is malloc()ed. The caller wipes *out_len bytes
 * and frees *out when it is not scratch. Same return codes.
 */
SOTTO_WUR int sotto_session_record_encode_buf(const sotto_session_record *rec, uint8_t *scratch,
                                              size_t scratch_len, uint8_t **out, size_t *out_len);

/* Makes archived[i] parsed (no-op if it is). SOTTO_OK, CORRUPT_RECORD, NOMEM. */
SOTTO_WUR int sotto_session_record_parse_archived(sotto_session_record *rec, uint32_t i);

/*
 * Moves the current state (if any) to the front of the archive, dropping
 * the oldest archived state beyond the cap, and makes `st` current (its
 * contents are moved: `*st` is left zeroed). NOMEM possible.
 */
SOTTO_WUR int sotto_session_record_promote_new(sotto_session_record *rec, sotto_session_state *st);

/*
 * Makes archived[i] (already parsed) current and archives the old current
 * at the front.
 */
void sotto_session_record_promote_archived(sotto_session_record *rec, uint32_t i);

/*
 * Appends `n` skipped keys (oldest first) to chain `c`, evicting the
 * oldest beyond SOTTO_MAX_MESSAGE_KEYS. SOTTO_OK or NOMEM.
 */
SOTTO_WUR int sotto_recv_chain_add_skipped(sotto_recv_chain *c, const sotto_skipped_key *keys,
                                           uint32_t n);

#endif /* SOTTO_LIB_SESSION_RECORD_H */
