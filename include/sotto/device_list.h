/*
 * sotto/device_list.h -- the signed device list of an account: the list of
 * the account's devices, signed by the account key, that senders check
 * before they encrypt to a device (issue 8, "No silent device").
 *
 * Spec: docs/protocol.md "Account key and device list". The known answer
 * there is pinned by tests/unit/test_device_list.c.
 *
 * Keys: the ACCOUNT KEY is a Curve25519 key pair of the same type as an
 * identity key (sotto/keys.h: 33-byte public key 0x05 || X25519 u, 32-byte
 * private key); it signs with XEdDSA (sotto_xeddsa_sign), exactly as an
 * identity key signs a signed prekey. Its private half stays on the
 * primary device. Each device in the list carries its Signal identity key
 * (33 bytes) and its Ed25519 auth key (32 bytes, sotto/account.h).
 *
 * Statement (the signed bytes; integers big-endian):
 *
 *   "SOTTO-DEVICE-LIST-V1" 0x00 | len(username) (1) | username |
 *   version (8) | timestamp_ms (8) | n (1) |
 *   n x { device_id (4) | registration_id (4) | identity_key (33) |
 *         auth_key (32) | capabilities (4) }      device ids strictly increasing
 *
 * Signed list (what the server stores and serves, and what clients keep):
 * the statement followed by the 64-byte XEdDSA signature of the account key
 * over it. The statement is self-delimiting; the signature is the last 64
 * bytes.
 *
 * Canonical form, checked by every parser: 1..SOTTO_DEVICE_LIST_MAX
 * devices; device ids >= 1 and strictly increasing (so no duplicates);
 * registration ids 1..16380; version >= 1; identity keys start with 0x05;
 * auth keys are valid Ed25519 points (canonical, not of small order);
 * username valid per sotto_username_valid(); no byte after the signature.
 * Capability bits not known to this version are kept and ignored (they are
 * signed, so they cannot be forged). A canonical list has exactly one
 * encoding: parsing and re-encoding gives the same bytes.
 *
 * All structs are plain public values owned by the caller; nothing in a
 * device list is secret. Nothing allocates.
 */
#ifndef SOTTO_DEVICE_LIST_H
#define SOTTO_DEVICE_LIST_H

#include <stdbool.h>

#include "sotto/account.h"
#include "sotto/common.h"
#include "sotto/error.h"
#include "sotto/keys.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SOTTO_DEVICE_LIST_MAX 32 /* devices per account */

/* Capability flags (u32). */
#define SOTTO_DEVICE_CAP_PQ 0x00000001u /* reserved: supports post-quantum (later issue) */

/* One device entry on the wire: 4 + 4 + 33 + 32 + 4 bytes. */
#define SOTTO_DEVICE_LIST_ENTRY_BYTES 77
/* Smallest canonical statement: one device, a 3-character username:
 * 21 + 1 + 3 + 8 + 8 + 1 + 77 bytes. */
#define SOTTO_DEVICE_LIST_STATEMENT_MIN_BYTES 119
/* Largest statement: 21 + 1 + 32 + 8 + 8 + 1 + 32 * 77 bytes. */
#define SOTTO_DEVICE_LIST_STATEMENT_MAX_BYTES 2535
/* Largest signed list: statement + 64-byte signature. Any buffer of this
 * size holds any signed list. */
#define SOTTO_DEVICE_LIST_MAX_BYTES (SOTTO_DEVICE_LIST_STATEMENT_MAX_BYTES + SOTTO_SIGNATURE_BYTES)

/* One device of an account. */
typedef struct sotto_device_entry {
    uint32_t device_id;                     /* >= 1 */
    uint32_t registration_id;               /* 1 .. SOTTO_REGISTRATION_ID_MAX */
    sotto_public_key identity_key;          /* the device's Signal identity key (0x05 ...) */
    uint8_t auth_key[SOTTO_AUTH_KEY_BYTES]; /* the device's Ed25519 auth public key */
    uint32_t capabilities;                  /* SOTTO_DEVICE_CAP_* bits */
} sotto_device_entry;

/* A device list as signed by the account key. */
typedef struct sotto_device_list {
    char username[SOTTO_USERNAME_MAX_LEN + 1]; /* NUL-terminated */
    uint64_t version;                          /* >= 1, only goes up */
    uint64_t timestamp_ms;                     /* when the primary signed it (ms since the epoch) */
    size_t n_devices;                          /* 1 .. SOTTO_DEVICE_LIST_MAX */
    sotto_device_entry devices[SOTTO_DEVICE_LIST_MAX]; /* ids strictly increasing */
} sotto_device_list;

/* What changed between two versions of an account's device list: device
 * ids only in the newer list (added), only in the older one (removed), or
 * in both with a different registration id, identity key, auth key or
 * capabilities (changed). Each array is in increasing id order. */
typedef struct sotto_device_list_diff {
    size_t n_added, n_removed, n_changed;
    uint32_t added[SOTTO_DEVICE_LIST_MAX];
    uint32_t removed[SOTTO_DEVICE_LIST_MAX];
    uint32_t changed[SOTTO_DEVICE_LIST_MAX];
} sotto_device_list_diff;

/*
 * Checks that `list` is canonical (see the top of this header; devices must
 * already be sorted by device id: the function does not sort). Returns
 * SOTTO_OK, SOTTO_ERR_INVALID_ARGUMENT (NULL), SOTTO_ERR_INVALID_USERNAME,
 * SOTTO_ERR_DEVICE_LIST_FIELD (version 0, device id 0, registration id out
 * of range), SOTTO_ERR_DEVICE_LIST_COUNT, SOTTO_ERR_DEVICE_LIST_ORDER or
 * SOTTO_ERR_INVALID_KEY (identity key type byte, auth key not a valid
 * Ed25519 point).
 */
SOTTO_API SOTTO_WUR int sotto_device_list_check(const sotto_device_list *list);

/*
 * Writes the statement of `list` (the bytes the account key signs) into
 * `out` (`out_cap` bytes; SOTTO_DEVICE_LIST_STATEMENT_MAX_BYTES always
 * suffices); *out_len gets its length, 39 + strlen(username) + 77 * n.
 * Returns SOTTO_OK, the errors of sotto_device_list_check() or
 * SOTTO_ERR_BUFFER_TOO_SMALL; on error `out` (when not NULL) is zeroed and
 * *out_len (when not NULL) is 0.
 */
SOTTO_API SOTTO_WUR int sotto_device_list_statement(const sotto_device_list *list, uint8_t *out,
                                                    size_t out_cap, size_t *out_len);

/*
 * Builds and signs: writes the signed list (statement || XEdDSA signature
 * by `account_key`) into `out` (`out_cap` bytes; SOTTO_DEVICE_LIST_MAX_BYTES
 * always suffices); *out_len gets its length (statement + 64). Uses 64
 * random bytes (XEdDSA nonce). `account_key` holds the account's private
 * key: the caller keeps and wipes it. Returns SOTTO_OK, the errors of
 * sotto_device_list_statement() (SOTTO_ERR_INVALID_ARGUMENT also for a NULL
 * key) or SOTTO_ERR_CRYPTO; on error `out` is zeroed and *out_len is 0.
 */
SOTTO_API SOTTO_WUR int sotto_device_list_sign(const sotto_device_list *list,
                                               const sotto_key_pair *account_key, uint8_t *out,
                                               size_t out_cap, size_t *out_len);

/*
 * Parses a signed list (peer input, `len` bytes) WITHOUT checking its
 * signature, for inspection and for stores that re-read a list they
 * verified before. Never rely on the result for a trust decision: use
 * sotto_device_list_verify(). On success `*out` holds the list and
 * `*signature` (when not NULL) points at the 64 signature bytes inside
 * `data`. Returns SOTTO_OK or, on hostile input:
 *   SOTTO_ERR_INVALID_MESSAGE      truncated, longer than
 *                                  SOTTO_DEVICE_LIST_MAX_BYTES, or not
 *                                  starting with the label;
 *   SOTTO_ERR_TRAILING_DATA        the statement ends before the last 64
 *                                  bytes (bytes after statement + signature);
 *   SOTTO_ERR_INVALID_USERNAME, SOTTO_ERR_DEVICE_LIST_FIELD,
 *   SOTTO_ERR_DEVICE_LIST_COUNT, SOTTO_ERR_DEVICE_LIST_ORDER,
 *   SOTTO_ERR_INVALID_KEY          as for sotto_device_list_check();
 *   SOTTO_ERR_INVALID_ARGUMENT     NULL out or data.
 * On error `*out` is zeroed and `*signature` is NULL.
 */
SOTTO_API SOTTO_WUR int sotto_device_list_parse(sotto_device_list *out, const uint8_t *data,
                                                size_t len, const uint8_t **signature);

/*
 * Verifies and parses a signed list (peer input, `len` bytes) for the
 * account `expected_username` under its pinned `account_key`. The
 * signature over data[0 .. len-64] is checked FIRST, so the field parser
 * only ever sees bytes the account key signed; then the statement is parsed
 * as by sotto_device_list_parse() and its username compared. Returns
 * SOTTO_OK with `*out` filled, or:
 *   SOTTO_ERR_INVALID_MESSAGE      shorter than a signature or longer than
 *                                  SOTTO_DEVICE_LIST_MAX_BYTES (checked
 *                                  before the signature), or a signed but
 *                                  truncated statement or wrong label;
 *   SOTTO_ERR_INVALID_SIGNATURE    the account key did not sign these bytes
 *                                  (also for a key whose type byte is not 0x05);
 *   the errors of sotto_device_list_parse() for a signed but non-canonical
 *                                  statement;
 *   SOTTO_ERR_DEVICE_LIST_ACCOUNT  a valid list of another username;
 *   SOTTO_ERR_INVALID_USERNAME     `expected_username` itself is invalid;
 *   SOTTO_ERR_INVALID_ARGUMENT     NULL arguments.
 * Anything but SOTTO_OK means "not this account's list"; `*out` is zeroed.
 * Version and rollback are the caller's: see sotto_device_list_check_update().
 */
SOTTO_API SOTTO_WUR int sotto_device_list_verify(sotto_device_list *out, const uint8_t *data,
                                                 size_t len, const sotto_public_key *account_key,
                                                 const char *expected_username);

/*
 * Whether `incoming` may replace `held` (the newest list already accepted
 * for the same account, or NULL when none): a higher version is accepted,
 * the same version only with identical content (a re-fetch). Both lists
 * should be verified ones. Returns SOTTO_OK, SOTTO_ERR_DEVICE_LIST_STALE
 * (incoming->version < held->version), SOTTO_ERR_DEVICE_LIST_CONFLICT (same
 * version, different content: the account key signed two lists with one
 * version), SOTTO_ERR_DEVICE_LIST_ACCOUNT (other username) or
 * SOTTO_ERR_INVALID_ARGUMENT (NULL incoming). A server that wants strictly
 * newer versions also compares versions for equality itself.
 */
SOTTO_API SOTTO_WUR int sotto_device_list_check_update(const sotto_device_list *held,
                                                       const sotto_device_list *incoming);

/*
 * The entry of device `device_id` in `list` (a pointer into `list`), or
 * NULL when the list has no such device (or `list` is NULL). Use it on a
 * verified list: a device not found there must not be encrypted to and its
 * messages are not genuine.
 */
SOTTO_API const sotto_device_entry *sotto_device_list_find(const sotto_device_list *list,
                                                           uint32_t device_id);

/*
 * Compares an `older` and a `newer` list of the same account (for device
 * change notices) into `*out`: ids added, removed and changed (see
 * sotto_device_list_diff). Both lists must be canonical (e.g. verified).
 * Returns SOTTO_OK, SOTTO_ERR_INVALID_ARGUMENT (NULL, or a list that is not
 * sorted or has more than SOTTO_DEVICE_LIST_MAX devices) or
 * SOTTO_ERR_DEVICE_LIST_ACCOUNT (different usernames); on error `*out` is
 * zeroed.
 */
SOTTO_API SOTTO_WUR int sotto_device_list_diff_compute(const sotto_device_list *older,
                                                       const sotto_device_list *newer,
                                                       sotto_device_list_diff *out);

#ifdef __cplusplus
}
#endif
#endif /* SOTTO_DEVICE_LIST_H */
