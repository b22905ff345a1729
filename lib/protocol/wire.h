/*
 * lib/protocol/wire.h -- SignalMessage and PreKeySignalMessage, encoded
 * byte for byte as libsignal-protocol-c 2.3.3 writes them and decoded with
 * its acceptance rules (internal header). Spec: signal-protocol.md 1.1-1.4.
 *
 * Decoded structs point into the caller's input bytes (no copies); keep
 * the input alive while using them.
 */
#ifndef SOTTO_LIB_WIRE_H
#define SOTTO_LIB_WIRE_H

#include "protocol/ratchet.h"
#include "sotto/session.h"

/* 0x33: (version 3 << 4) | current version 3 (spec 1.1). */
#define SOTTO_VERSION_BYTE ((SOTTO_MESSAGE_VERSION << 4) | SOTTO_MESSAGE_VERSION)

typedef struct sotto_signal_message {
    sotto_public_key ratchet_key;
    uint32_t counter;
    uint32_t previous_counter;
    const uint8_t *ciphertext;
    size_t ciphertext_len;
    const uint8_t *data; /* the whole message: version || pb || mac */
    size_t len;
} sotto_signal_message;

typedef struct sotto_prekey_signal_message {
    sotto_prekey_message_info info;
    sotto_signal_message message; /* the inner SignalMessage */
} sotto_prekey_signal_message;

/*
 * Decodes a SignalMessage (spec 1.3): length > 9 and at most
 * SOTTO_MAX_MESSAGE_BYTES, version nibble 3, ratchetKey/counter/ciphertext
 * present, ratchetKey a valid 33-byte key. The MAC is not checked here.
 * Returns SOTTO_OK, SOTTO_ERR_INVALID_MESSAGE, SOTTO_ERR_LEGACY_MESSAGE,
 * SOTTO_ERR_UNSUPPORTED_VERSION or SOTTO_ERR_INVALID_KEY.
 */
SOTTO_WUR int sotto_signal_message_decode(sotto_signal_message *m, const uint8_t *data, size_t len);

/*
 * Decodes a PreKeySignalMessage (spec 1.4) and its inner SignalMessage.
 * Same errors as sotto_signal_message_decode.
 */
SOTTO_WUR int sotto_prekey_signal_message_decode(sotto_prekey_signal_message *m,
                                                 const uint8_t *data, size_t len);

/*
 * Checks the 8-byte MAC of a decoded SignalMessage in constant time
 * (spec 1.3): HMAC-SHA256(mac_key, sender || receiver || data[0..len-8]).
 * Returns SOTTO_OK or SOTTO_ERR_INVALID_MESSAGE.
 */
SOTTO_WUR int sotto_signal_message_verify_mac(const sotto_signal_message *m,
                                              const uint8_t mac_key[SOTTO_MAC_KEY_BYTES],
                                              const sotto_public_key *sender_identity,
                                              const sotto_public_key *receiver_identity);

/* Upper bound of an encoded SignalMessage for a plaintext of pt_len bytes. */
size_t sotto_signal_message_max_len(size_t pt_len);

/*
 * Encrypts pt with mk (AES-256-CBC/PKCS#7) and writes the SignalMessage
 * 0x33 || {1: ratchet_key, 2: counter, 3: previous_counter, 4: ciphertext}
 * || MAC[8] into a malloc()ed buffer (*out, *out_len; caller frees).
 * Returns SOTTO_OK, SOTTO_ERR_NOMEM, SOTTO_ERR_CRYPTO, SOTTO_ERR_INTERNAL.
 */
SOTTO_WUR int sotto_signal_message_encode(const sotto_public_key *ratchet_key, uint32_t counter,
                                          uint32_t previous_counter, const sotto_message_keys *mk,
                                          const sotto_public_key *sender_identity,
                                          const sotto_public_key *receiver_identity,
                                          const uint8_t *pt, size_t pt_len, uint8_t **out,
                                          size_t *out_len);

/*
 * Wraps a serialised SignalMessage into a PreKeySignalMessage:
 * 0x33 || {[1: preKeyId], 2: baseKey, 3: identityKey, 4: message,
 * 5: registrationId, 6: signedPreKeyId}. *out malloc()ed, caller frees.
 * Returns SOTTO_OK, SOTTO_ERR_NOMEM or SOTTO_ERR_INTERNAL.
 */
SOTTO_WUR int sotto_prekey_signal_message_encode(const sotto_prekey_message_info *info,
                                                 const uint8_t *inner, size_t inner_len,
                                                 uint8_t **out, size_t *out_len);

#endif /* SOTTO_LIB_WIRE_H */
