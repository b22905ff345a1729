/*
 * sotto/group.h -- Sender Keys for groups, wire-compatible with
 * libsignal-protocol-c 2.3.3 (spec: shared/specs/signal-protocol.md
 * sections 1.5, 1.6, 2.5, 2.7; docs/protocol.md "Sender keys").
 *
 * Each member's device has one sender key per group: a chain key ratcheted
 * forward with HMAC-SHA256 for every message and a Curve25519 signing key
 * pair. The owner distributes it in a SenderKeyDistributionMessage (SKDM,
 * message type SOTTO_MSG_SENDERKEY_DISTRIBUTION = 5), which must travel over
 * the pairwise 1:1 session to each member; group messages are then
 * SenderKeyMessages (SKM, SOTTO_MSG_SENDERKEY = 4) that every member
 * decrypts with the same key. The transport carries the type code and the
 * group id beside the message bytes; neither is inside them.
 *
 * A sotto_sender_key_name (store.h) names a sender key: group id (at most
 * SOTTO_MAX_NAME_BYTES bytes) and the sending device's address. For our own
 * sender key it is (group, our address); for a member's, (group, their
 * address). Records are kept through a sotto_sender_key_store; every call
 * loads the record, works on a private copy and stores it back only on
 * success, so a failed call (bad input, bad signature, store error) leaves
 * the stored record byte-identical.
 *
 * Wire formats (all integers protobuf varints, fields in ascending order,
 * every field always written, as libsignal-protocol-c writes them):
 *   SKDM = 0x33 || { 1: key id, 2: iteration, 3: chain key (32 bytes),
 *                    4: signing public key (33 bytes, 0x05 || u) }
 *   SKM  = 0x33 || { 1: key id, 2: iteration, 3: AES-256-CBC ciphertext }
 *          || XEdDSA signature (64 bytes) over everything before it
 *
 * All outputs are malloc()ed and owned by the caller, who frees them with
 * free() (after sodium_memzero for plaintexts and SKDMs). On failure no
 * output is handed out and `*msg` / `*pt` / `*skdm` and their lengths are
 * left as they were. No function keeps a pointer to its arguments. Not
 * thread-safe per record: serialise calls on one name. Sizes are in bytes.
 *
 * Arguments: a name is valid when group_id_len and sender.name_len are at
 * most SOTTO_MAX_NAME_BYTES and each pointer is non-NULL unless its length
 * is 0; an invalid name, a NULL store or a store without load/store
 * callbacks give SOTTO_ERR_INVALID_ARGUMENT. A NULL message pointer is
 * reported like a malformed message (SOTTO_ERR_INVALID_MESSAGE).
 *
 * Caller's duties (libsotto cannot check them):
 *  - Our own sender key lives under (group, OUR address); a member's under
 *    (group, THEIR address), where "their address" is the authenticated
 *    remote address of the 1:1 session that delivered the SKDM, never a
 *    value taken from inside a message. Processing an SKDM under our own
 *    address is refused (SOTTO_ERR_INVALID_ARGUMENT: it could replace our
 *    own sending state), but one under the wrong member lets that member
 *    speak for another.
 *  - Sender keys give no forward secrecy for members who leave: call
 *    sotto_group_rotate() and distribute the new SKDM when membership
 *    shrinks.
 */
#ifndef SOTTO_GROUP_H
#define SOTTO_GROUP_H

#include "sotto/common.h"
#include "sotto/error.h"
#include "sotto/keys.h"
#include "sotto/protocol.h"
#include "sotto/store.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SOTTO_SENDER_KEY_BYTES 32           /* chain key in an SKDM */
#define SOTTO_SENDER_KEY_MAX_ID 0x7FFFFFFEu /* own key ids are 0 .. 2^31-2 */
/* Largest plaintext sotto_group_encrypt accepts (the SKM stays within
 * SOTTO_MAX_MESSAGE_BYTES). */
#define SOTTO_GROUP_MAX_PLAINTEXT_BYTES (SOTTO_MAX_MESSAGE_BYTES - 128)

/* A decoded SenderKeyDistributionMessage. chain_key is secret: wipe it. */
typedef struct sotto_sender_key_distribution {
    uint32_t key_id;
    uint32_t iteration;
    uint8_t chain_key[SOTTO_SENDER_KEY_BYTES];
    sotto_public_key signing_key;
} sotto_sender_key_distribution;

/*
 * Our own sender key for `name` (group, our address) as an SKDM to send to
 * every member over 1:1 sessions (spec 2.7). With no usable own state (no
 * record, or its newest state is a received one) a new state is created
 * first: key id random in [0, 2^31-1), chain key 32 random bytes at
 * iteration 0, a new signing key pair; the record is then stored. With an
 * own state already present, it is reused and the SKDM carries its current
 * iteration and chain key (so a member joining late cannot read earlier
 * messages). *skdm (malloc()ed, *skdm_len bytes) holds the chain key: wipe
 * it after sending.
 * Returns SOTTO_OK, SOTTO_ERR_INVALID_ARGUMENT, SOTTO_ERR_CORRUPT_RECORD,
 * SOTTO_ERR_CRYPTO, SOTTO_ERR_NOMEM or a store error.
 */
SOTTO_API SOTTO_WUR int sotto_group_create_distribution(const sotto_sender_key_store *store,
                                                        const sotto_sender_key_name *name,
                                                        uint8_t **skdm, size_t *skdm_len);

/*
 * Like sotto_group_create_distribution, but always creates a fresh own
 * sender key (new key id, chain key and signing key), e.g. after a member
 * left the group. Older states stay (at most SOTTO_MAX_SENDER_KEY_STATES) so
 * in-flight messages can still be decrypted by our other devices. The
 * record is stored before the SKDM is handed out. Same ownership and
 * errors as sotto_group_create_distribution.
 */
SOTTO_API SOTTO_WUR int sotto_group_rotate(const sotto_sender_key_store *store,
                                           const sotto_sender_key_name *name, uint8_t **skdm,
                                           size_t *skdm_len);

/*
 * Processes an SKDM received (over a 1:1 session) from the device named by
 * `name` (group, sender's address): adds a receive-only state in front of
 * the record, dropping the oldest beyond SOTTO_MAX_SENDER_KEY_STATES.
 * An SKDM for a key id the record already holds with the same signing key
 * never moves that chain backwards (that would let old messages be
 * decrypted again): an SKDM at a later iteration advances the chain, keeping
 * stored message keys; one at the same or an earlier iteration changes
 * nothing. The same key id with a different signing key replaces the state.
 * A record that holds our own sender key (a state with a signing private
 * key, i.e. `name` is our own address) is refused with
 * SOTTO_ERR_INVALID_ARGUMENT and left unchanged.
 * Returns SOTTO_OK; SOTTO_ERR_INVALID_MESSAGE, SOTTO_ERR_LEGACY_MESSAGE,
 * SOTTO_ERR_UNSUPPORTED_VERSION or SOTTO_ERR_INVALID_KEY for a malformed
 * SKDM; SOTTO_ERR_INVALID_ARGUMENT (NULL store or name, bad name, `name`
 * holds our own sender key); SOTTO_ERR_CORRUPT_RECORD, SOTTO_ERR_NOMEM, a
 * store error.
 */
SOTTO_API SOTTO_WUR int sotto_group_process_distribution(const sotto_sender_key_store *store,
                                                         const sotto_sender_key_name *name,
                                                         const uint8_t *skdm, size_t skdm_len);

/*
 * Encrypts `pt_len` bytes of `pt` (0 .. SOTTO_GROUP_MAX_PLAINTEXT_BYTES)
 * with our newest own state for `name` (spec 2.7): message key of the chain's
 * current iteration (HKDF "WhisperGroup", IV = [0:16], key = [16:48]),
 * AES-256-CBC/PKCS#7, SKM signed with the state's signing key, then the
 * chain advances and the record is stored. *msg (malloc()ed, *msg_len
 * bytes) is the SKM, to send with type SOTTO_MSG_SENDERKEY.
 * Returns SOTTO_OK; SOTTO_ERR_NO_SESSION (no record or no state),
 * SOTTO_ERR_NO_SIGNING_KEY (the newest state was received, not ours),
 * SOTTO_ERR_INVALID_ARGUMENT, SOTTO_ERR_CORRUPT_RECORD, SOTTO_ERR_CRYPTO,
 * SOTTO_ERR_NOMEM, SOTTO_ERR_INTERNAL (the chain reached iteration 2^32 - 1:
 * rotate the key) or a store error.
 */
SOTTO_API SOTTO_WUR int sotto_group_encrypt(const sotto_sender_key_store *store,
                                            const sotto_sender_key_name *name, const uint8_t *pt,
                                            size_t pt_len, uint8_t **msg, size_t *msg_len);

/*
 * Decrypts an SKM from the device named by `name` (spec 1.5, 2.7). Order:
 * parse; load the record; find the state by key id; verify the signature
 * with that state's signing key; only then check the iteration and derive
 * keys: an iteration behind the chain uses (and deletes) its stored message
 * key; one more than SOTTO_MAX_FORWARD_JUMP ahead is refused before any key
 * is derived; skipped keys are stored (at most SOTTO_MAX_MESSAGE_KEYS,
 * oldest evicted). The record is stored only after the plaintext was
 * produced. On success *pt (malloc()ed, *pt_len bytes; a 1-byte allocation
 * for an empty plaintext) belongs to the caller, who wipes and frees it.
 * Returns SOTTO_OK;
 *   SOTTO_ERR_INVALID_MESSAGE (malformed, bad padding),
 *   SOTTO_ERR_LEGACY_MESSAGE / SOTTO_ERR_UNSUPPORTED_VERSION (version byte),
 *   SOTTO_ERR_NO_SESSION (no record for `name`),
 *   SOTTO_ERR_INVALID_KEY_ID (no state with this key id),
 *   SOTTO_ERR_INVALID_SIGNATURE, SOTTO_ERR_DUPLICATE_MESSAGE (iteration
 *   already used, its key gone), SOTTO_ERR_TOO_FAR_AHEAD,
 *   SOTTO_ERR_CORRUPT_RECORD, SOTTO_ERR_INVALID_ARGUMENT (a NULL argument),
 *   SOTTO_ERR_NOMEM, or a store error.
 */
SOTTO_API SOTTO_WUR int sotto_group_decrypt(const sotto_sender_key_store *store,
                                            const sotto_sender_key_name *name, const uint8_t *msg,
                                            size_t msg_len, uint8_t **pt, size_t *pt_len);

/*
 * Decodes an SKDM of `len` bytes (at most SOTTO_MAX_MESSAGE_BYTES) (spec
 * 1.6): version byte high nibble 3 (< 3: SOTTO_ERR_LEGACY_MESSAGE, > 3:
 * SOTTO_ERR_UNSUPPORTED_VERSION), all four fields present, chain key 32
 * bytes (else SOTTO_ERR_INVALID_MESSAGE, also for NULL arguments or a
 * length of 0 or over the cap), signing key a 33-byte 0x05 key (else
 * SOTTO_ERR_INVALID_KEY). Unknown fields are skipped. `*out` is written
 * only on success and then holds the chain key: wipe it.
 */
SOTTO_API SOTTO_WUR int sotto_sender_key_distribution_decode(sotto_sender_key_distribution *out,
                                                             const uint8_t *data, size_t len);

/*
 * Encodes an SKDM byte for byte as libsignal-protocol-c does (spec 1.6);
 * *out (malloc()ed, *out_len bytes, at most 82) holds the chain key: the
 * caller wipes and frees it. Returns SOTTO_OK, SOTTO_ERR_INVALID_ARGUMENT
 * (NULL, or a signing key whose type byte is not 0x05) or SOTTO_ERR_NOMEM.
 */
SOTTO_API SOTTO_WUR int
sotto_sender_key_distribution_encode(const sotto_sender_key_distribution *in, uint8_t **out,
                                     size_t *out_len);

/*
 * Reads the key id and iteration of an SKM of `msg_len` bytes without
 * verifying it (to tell which sender key a message needs; the values are
 * NOT authenticated). Same parse checks and errors as sotto_group_decrypt's
 * first step (SOTTO_ERR_INVALID_MESSAGE, SOTTO_ERR_LEGACY_MESSAGE,
 * SOTTO_ERR_UNSUPPORTED_VERSION), and SOTTO_ERR_INVALID_ARGUMENT when
 * key_id or iteration is NULL.
 */
SOTTO_API SOTTO_WUR int sotto_sender_key_message_peek(const uint8_t *msg, size_t msg_len,
                                                      uint32_t *key_id, uint32_t *iteration);

#ifdef __cplusplus
}
#endif
#endif /* SOTTO_GROUP_H */
