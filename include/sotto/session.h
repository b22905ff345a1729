/*
 * sotto/session.h -- 1:1 sessions: prekey bundles, X3DH, the Double
 * Ratchet, SignalMessage and PreKeySignalMessage.
 *
 * Spec: shared/specs/signal-protocol.md sections 1.1-1.4 (wire formats,
 * byte-for-byte as libsignal-protocol-c 2.3.3 writes them), 2.2-2.6 (X3DH,
 * KDFs, ratchet, encrypt/decrypt control flow), 2.5 (limits). Our own
 * formats (prekey bundle, session record) are in docs/protocol.md.
 *
 * Every call loads the session record of `remote` through
 * store->session, works on that private copy, and writes it back only on
 * success. Decryption is transactional: on ANY failure nothing is written
 * to any store (the session record stays byte-identical, no one-time
 * prekey is consumed, no identity is saved), so the genuine message still
 * decrypts afterwards. On success the order of writes is: session record,
 * then the remote identity (identity.save), then removal of the one-time
 * prekey (never id 0xFFFFFF). An application that wants those writes atomic
 * wraps the call in its own store transaction.
 *
 * Ownership: every output buffer (`*msg`, `*pt`) is malloc()ed by libsotto
 * and owned by the caller, who free()s it; plaintext should be wiped with
 * sodium_memzero() first. On failure the outputs are set to NULL / 0.
 * Input pointers are only read during the call.
 *
 * Thread safety: calls for the same remote address must be serialised by
 * the caller (the record is read, modified and written back).
 *
 * Arguments: an address is valid when name_len <= SOTTO_MAX_NAME_BYTES and
 * name is non-NULL (it may be NULL when name_len is 0). An invalid address,
 * a NULL pointer where an output or input is required, a NULL store or a
 * store lacking a callback the call needs give SOTTO_ERR_INVALID_ARGUMENT
 * before any store is touched. Sizes are in bytes.
 */
#ifndef SOTTO_SESSION_H
#define SOTTO_SESSION_H

#include <stdbool.h>

#include "sotto/common.h"
#include "sotto/error.h"
#include "sotto/keys.h"
#include "sotto/protocol.h"
#include "sotto/store.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* Prekey bundles                                                      */
/* ------------------------------------------------------------------ */

/*
 * What a device publishes so that others can start a session with it
 * (spec 2.2, 2.6 "Alice processing a bundle"). The one-time prekey is
 * optional (has_prekey false: prekey_id and prekey are ignored).
 */
typedef struct sotto_prekey_bundle {
    uint32_t registration_id;
    uint32_t device_id;
    bool has_prekey;
    uint32_t prekey_id; /* 1 .. 0xFFFFFF */
    sotto_public_key prekey;
    uint32_t signed_prekey_id;
    sotto_public_key signed_prekey;
    uint8_t signed_prekey_signature[SOTTO_SIGNATURE_BYTES]; /* XEdDSA over the 33-byte key */
    sotto_public_key identity_key;
} sotto_prekey_bundle;

#define SOTTO_PREKEY_BUNDLE_FORMAT_VERSION 1
/* Largest encoded bundle (with a one-time prekey). */
#define SOTTO_PREKEY_BUNDLE_MAX_BYTES 192

/*
 * Serialises a bundle in our own versioned binary format
 * (docs/protocol.md "Prekey bundle encoding") into `out`, which holds
 * SOTTO_PREKEY_BUNDLE_MAX_BYTES bytes; *out_len receives the length used.
 * The keys are not checked here (the receiver checks them).
 * Returns SOTTO_OK or SOTTO_ERR_INVALID_ARGUMENT (NULL).
 */
SOTTO_API SOTTO_WUR int
sotto_prekey_bundle_encode(const sotto_prekey_bundle *bundle,
                           uint8_t out[SOTTO_STATIC_N(SOTTO_PREKEY_BUNDLE_MAX_BYTES)],
                           size_t *out_len);

/*
 * Parses an encoded bundle from untrusted input (bounds-checked; exact
 * length; unknown format versions and flags rejected; every public key must
 * be 33 bytes starting with 0x05). Does NOT verify the signature: that is
 * sotto_session_process_bundle's job.
 * Returns SOTTO_OK, SOTTO_ERR_INVALID_ARGUMENT (NULL),
 * SOTTO_ERR_UNSUPPORTED_VERSION (unknown format version),
 * SOTTO_ERR_INVALID_KEY (a key that does not decode) or
 * SOTTO_ERR_INVALID_MESSAGE (truncated, trailing bytes, bad flags).
 * `*out` is zeroed on failure.
 */
SOTTO_API SOTTO_WUR int sotto_prekey_bundle_decode(sotto_prekey_bundle *out, const uint8_t *data,
                                                   size_t len);

/* ------------------------------------------------------------------ */
/* Sessions                                                            */
/* ------------------------------------------------------------------ */

/*
 * Starts a session with `remote` from its bundle, as the initiator
 * ("Alice", spec 2.2 and 2.6 "Alice processing a bundle"):
 *  1. identity.is_trusted(remote, bundle->identity_key) must say trusted,
 *     else SOTTO_ERR_UNTRUSTED_IDENTITY;
 *  2. the XEdDSA signature of the identity key over the 33-byte signed
 *     prekey must verify, else SOTTO_ERR_INVALID_SIGNATURE (any flipped
 *     bit is rejected);
 *  3. X3DH with a fresh base key, with the one-time prekey if present.
 * Any existing session state becomes an archived state (it can still
 * decrypt late messages). Until a reply is decrypted, every message
 * sotto_session_encrypt() produces is a PreKeySignalMessage.
 * On success: the session record is stored, then the identity saved.
 * On failure nothing is stored.
 *
 * Caller's duties (libsotto cannot check them):
 *  - `remote` must be the device the bundle was fetched for: the trust
 *    decision and the session are keyed by `remote`; bundle->device_id and
 *    bundle->registration_id are taken as given and not compared with it.
 *  - With the provided stores a first contact is trusted on first use: a
 *    bundle the server made up for an address never seen before is
 *    accepted. Only comparing safety numbers (sotto/fingerprint.h) detects
 *    that; show the user when an identity is new.
 *  - Bundles come from an untrusted server: never accept a changed identity
 *    (SOTTO_ERR_UNTRUSTED_IDENTITY) with identity.save() without the user's
 *    decision.
 * Returns SOTTO_OK, SOTTO_ERR_INVALID_ARGUMENT, SOTTO_ERR_UNTRUSTED_IDENTITY,
 * SOTTO_ERR_INVALID_SIGNATURE, SOTTO_ERR_INVALID_KEY, SOTTO_ERR_CORRUPT_RECORD,
 * SOTTO_ERR_NOMEM, SOTTO_ERR_CRYPTO or a store error.
 */
SOTTO_API SOTTO_WUR int sotto_session_process_bundle(const sotto_protocol_store *store,
                                                     const sotto_address *remote,
                                                     const sotto_prekey_bundle *bundle);

/* Largest plaintext sotto_session_encrypt accepts (so that every message
 * it writes stays within SOTTO_MAX_MESSAGE_BYTES). */
#define SOTTO_MAX_PLAINTEXT_BYTES (SOTTO_MAX_MESSAGE_BYTES - 256u)

/*
 * Encrypts `pt_len` bytes (0 .. SOTTO_MAX_PLAINTEXT_BYTES; pt may be NULL
 * when pt_len is 0) for `remote` with the current session (spec 2.6
 * "Encrypt"). *msg / *msg_len receive the serialised message
 * (malloc()ed, caller frees) and *msg_type SOTTO_MSG_SIGNAL (2) or, while
 * the session is unacknowledged, SOTTO_MSG_PREKEY (3). The transport must
 * carry the type next to the bytes. The chain advances and the record is
 * stored before returning. No padding is added (the application pads).
 * The current state's remote identity must be trusted now
 * (identity.is_trusted, required): after the user accepted a changed
 * identity, encrypting with a session of the old one is refused until a
 * session with the new identity exists (process its bundle, or receive its
 * PreKey message); nothing is stored then (review R1).
 * Returns SOTTO_OK, SOTTO_ERR_INVALID_ARGUMENT, SOTTO_ERR_NO_SESSION (no
 * record or no current state that can send), SOTTO_ERR_UNTRUSTED_IDENTITY,
 * SOTTO_ERR_CORRUPT_RECORD, SOTTO_ERR_NOMEM, SOTTO_ERR_CRYPTO or a store
 * error.
 */
SOTTO_API SOTTO_WUR int sotto_session_encrypt(const sotto_protocol_store *store,
                                              const sotto_address *remote, const uint8_t *pt,
                                              size_t pt_len, uint8_t **msg, size_t *msg_len,
                                              int *msg_type);

/*
 * Decrypts a message from `remote`; `msg_type` is SOTTO_MSG_SIGNAL or
 * SOTTO_MSG_PREKEY as the transport delivered it (spec 2.6 "Decrypt").
 * *pt / *pt_len receive the plaintext (malloc()ed, at least 1 byte even
 * for an empty plaintext; caller wipes and frees).
 *
 * SignalMessage: tries the states that have a receiver chain for the
 * message's ratchet key, then the others (each group: current, then
 * archived, most recent first); a working archived state is promoted to
 * current. One call derives at most 2 x (SOTTO_MAX_FORWARD_JUMP + 1) chain
 * steps over all states tried (so a forged message is cheap to refuse): a
 * message on a known chain always gets its SOTTO_MAX_FORWARD_JUMP, a
 * message opening a new chain at counter n is tried on the states, in that
 * order, while the budget pays n + 1 steps each (the current state always;
 * all 41 states when n <= 96), else SOTTO_ERR_INVALID_MESSAGE.
 * PreKeySignalMessage: checks trust of the carried identity key; a base
 * key already known to the record reuses that state (repeated PreKey
 * messages); otherwise runs X3DH as responder with the named signed and
 * one-time prekeys, archiving the current state. On success: record
 * stored, then the (authenticated) remote identity saved, then the
 * one-time prekey removed (unless 0xFFFFFF). Needs every callback of the
 * identity, signed prekey and prekey stores.
 *
 * Returns SOTTO_OK or:
 *  SOTTO_ERR_INVALID_ARGUMENT   NULL, or msg_type not 2 or 3;
 *  SOTTO_ERR_INVALID_MESSAGE    malformed/truncated, bad MAC or bad
 *                               decryption (indistinguishable), over
 *                               SOTTO_MAX_MESSAGE_BYTES;
 *  SOTTO_ERR_LEGACY_MESSAGE     version (high nibble of byte 0, of the
 *                               outer or the inner message) below 3;
 *  SOTTO_ERR_UNSUPPORTED_VERSION version above 3 (the low nibble is
 *                               ignored, so 0x34 is accepted as 3);
 *  SOTTO_ERR_INVALID_KEY        a key field that does not decode;
 *  SOTTO_ERR_NO_SESSION         SignalMessage with no session record;
 *  SOTTO_ERR_UNTRUSTED_IDENTITY PreKey message whose identity key is not
 *                               trusted (get it with
 *                               sotto_prekey_message_inspect()), or a
 *                               message decrypted by a state whose
 *                               identity is not trusted (see below);
 *  SOTTO_ERR_UNKNOWN_PREKEY_ID / SOTTO_ERR_UNKNOWN_SIGNED_PREKEY_ID
 *                               the named prekey is not in the store;
 *  SOTTO_ERR_DUPLICATE_MESSAGE  counter already used (key no longer held);
 *  SOTTO_ERR_TOO_FAR_AHEAD      counter more than SOTTO_MAX_FORWARD_JUMP
 *                               past the chain (checked before deriving);
 *  SOTTO_ERR_CORRUPT_RECORD, SOTTO_ERR_NOMEM, SOTTO_ERR_CRYPTO, store errors.
 *
 * Identity changes (review R1; as Java libsignal, stricter than
 * libsignal-protocol-c 2.3.3): the state that decrypted a message -- the
 * current one or an archived one -- must talk to an identity that
 * identity.is_trusted() accepts for `remote` now, else
 * SOTTO_ERR_UNTRUSTED_IDENTITY and nothing is stored (record byte-identical,
 * no state promoted). So once the user accepted a changed identity with
 * identity.save(), a late message of the old identity's session (or one
 * made by whoever holds the old device's state) cannot make the old session
 * current again; if the user accepts the old key back, the same message
 * decrypts. For a repeated PreKey message (base key already in the record)
 * the decrypting state's identity must also equal the outer identityKey
 * that was trust-checked, since that field is not covered by the MAC:
 * otherwise SOTTO_ERR_INVALID_MESSAGE. The identity saved after a PreKey
 * message is therefore always the trusted, authenticated one. Needs
 * identity.is_trusted for both message types.
 */
SOTTO_API SOTTO_WUR int sotto_session_decrypt(const sotto_protocol_store *store,
                                              const sotto_address *remote, int msg_type,
                                              const uint8_t *msg, size_t msg_len, uint8_t **pt,
                                              size_t *pt_len);

/* The public parts of a PreKeySignalMessage (spec 1.4). */
typedef struct sotto_prekey_message_info {
    uint32_t registration_id; /* 0 when absent */
    bool has_prekey_id;
    uint32_t prekey_id;
    uint32_t signed_prekey_id;
    sotto_public_key base_key;
    sotto_public_key identity_key; /* the sender's identity key */
} sotto_prekey_message_info;

/*
 * Parses a PreKeySignalMessage of `msg_len` bytes without decrypting or
 * touching any store (spec 1.4), e.g. to show the new identity key after
 * SOTTO_ERR_UNTRUSTED_IDENTITY (the application may then accept it with
 * identity.save and decrypt again). The contents are NOT authenticated:
 * anyone who can deliver a message (the server) can put any identity key
 * here, so accept it only after the user compared safety numbers.
 * Returns SOTTO_OK, SOTTO_ERR_INVALID_ARGUMENT (out NULL, or msg NULL with
 * msg_len > 0) or the decoding errors of sotto_session_decrypt
 * (SOTTO_ERR_INVALID_MESSAGE, SOTTO_ERR_LEGACY_MESSAGE,
 * SOTTO_ERR_UNSUPPORTED_VERSION, SOTTO_ERR_INVALID_KEY); `*out` is zeroed
 * on a decoding error.
 */
SOTTO_API SOTTO_WUR int sotto_prekey_message_inspect(sotto_prekey_message_info *out,
                                                     const uint8_t *msg, size_t msg_len);

/*
 * *exists = true when `remote` has a session record whose current state
 * can encrypt (false otherwise, also on error). Returns SOTTO_OK,
 * SOTTO_ERR_INVALID_ARGUMENT (NULL, bad address, no session load/store
 * callbacks), SOTTO_ERR_CORRUPT_RECORD or a store error.
 */
SOTTO_API SOTTO_WUR int sotto_session_exists(const sotto_protocol_store *store,
                                             const sotto_address *remote, bool *exists);

/*
 * The registration id the remote device announced (from its bundle or
 * PreKey message, unauthenticated) in the current state, into *out (0 on
 * error). Returns SOTTO_OK, SOTTO_ERR_INVALID_ARGUMENT (NULL, bad address),
 * SOTTO_ERR_NO_SESSION, SOTTO_ERR_CORRUPT_RECORD or a store error.
 */
SOTTO_API SOTTO_WUR int sotto_session_remote_registration_id(const sotto_protocol_store *store,
                                                             const sotto_address *remote,
                                                             uint32_t *out);

/*
 * The remote identity key of the current state (the key the session was
 * built with) into *out (zeroed on error). Note that it can differ from
 * the identity the identity store trusts for `remote` (see "Identity
 * changes" at sotto_session_decrypt). Returns SOTTO_OK,
 * SOTTO_ERR_INVALID_ARGUMENT (NULL, bad address), SOTTO_ERR_NO_SESSION,
 * SOTTO_ERR_CORRUPT_RECORD or a store error.
 */
SOTTO_API SOTTO_WUR int sotto_session_remote_identity(const sotto_protocol_store *store,
                                                      const sotto_address *remote,
                                                      sotto_public_key *out);

/*
 * Deletes the session record of `remote` (store->session.remove), with
 * every archived state. A missing record is not an error. Returns
 * SOTTO_OK, SOTTO_ERR_INVALID_ARGUMENT (NULL store or remove callback, bad
 * address) or a store error.
 */
SOTTO_API SOTTO_WUR int sotto_session_delete(const sotto_protocol_store *store,
                                             const sotto_address *remote);

/* Format version written at the start of every session record. */
#define SOTTO_SESSION_RECORD_FORMAT_VERSION 1

/*
 * Checks that `data` is a well-formed session record (the full record,
 * including every archived state, is parsed with bounds checks). For
 * tools and the fuzz target; the session functions do this themselves.
 * Returns SOTTO_OK, SOTTO_ERR_CORRUPT_RECORD or SOTTO_ERR_NOMEM.
 */
SOTTO_API SOTTO_WUR int sotto_session_record_validate(const uint8_t *data, size_t len);

#ifdef __cplusplus
}
#endif
#endif /* SOTTO_SESSION_H */
