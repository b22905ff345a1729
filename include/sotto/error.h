/*
 * sotto/error.h -- the one error list of libsotto.
 *
 * Every fallible function returns SOTTO_OK (0) on success or one of the
 * negative codes below. Codes are stable: they may be stored or sent to
 * scripts. A failed MAC and a failed decryption both give
 * SOTTO_ERR_INVALID_MESSAGE, so a peer learns nothing from the difference.
 */
#ifndef SOTTO_ERROR_H
#define SOTTO_ERROR_H

#include "sotto/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum sotto_error {
    SOTTO_OK = 0,
    /* Caller or environment */
    SOTTO_ERR_INVALID_ARGUMENT = -1, /* a NULL or out-of-range argument */
    SOTTO_ERR_NOMEM = -2,            /* allocation failed */
    SOTTO_ERR_BUFFER_TOO_SMALL = -3, /* the caller's output buffer is too small */
    SOTTO_ERR_CRYPTO = -4,           /* a primitive failed (RNG, OpenSSL) */
    SOTTO_ERR_STORE = -5,            /* a store callback reported a failure */
    SOTTO_ERR_NOT_FOUND = -6,        /* a store has no such record */
    SOTTO_ERR_INTERNAL = -7,         /* a broken invariant; please report */
    /* Peer input (wire messages, bundles) */
    SOTTO_ERR_INVALID_MESSAGE = -20,          /* malformed, truncated, bad MAC or undecryptable */
    SOTTO_ERR_DUPLICATE_MESSAGE = -21,        /* already decrypted (message key no longer held) */
    SOTTO_ERR_NO_SESSION = -22,               /* no session (or sender key state) for this peer */
    SOTTO_ERR_UNTRUSTED_IDENTITY = -23,       /* the peer's identity key is not trusted */
    SOTTO_ERR_INVALID_KEY = -24,              /* a key that does not decode (type byte, length) */
    SOTTO_ERR_UNKNOWN_PREKEY_ID = -25,        /* the one-time prekey named is not in the store */
    SOTTO_ERR_UNKNOWN_SIGNED_PREKEY_ID = -26, /* the signed prekey named is not in the store */
    SOTTO_ERR_TOO_FAR_AHEAD = -27,            /* counter/iteration jumps past the 2000 limit */
    SOTTO_ERR_UNSUPPORTED_VERSION = -28,      /* message version other than 3 */
    SOTTO_ERR_LEGACY_MESSAGE = -29,           /* message version below 3 */
    SOTTO_ERR_INVALID_SIGNATURE = -30,        /* XEdDSA signature does not verify */
    SOTTO_ERR_INVALID_KEY_ID = -31,           /* sender key id unknown to this record */
    SOTTO_ERR_CORRUPT_RECORD = -32,           /* a stored record does not parse */
    SOTTO_ERR_FP_VERSION_MISMATCH = -33,      /* scannable fingerprints of different versions */
    SOTTO_ERR_FP_IDENT_MISMATCH = -34,        /* scannable fingerprint for other identifiers */
    SOTTO_ERR_NO_SIGNING_KEY = -35,           /* sender key state received, cannot encrypt */
    SOTTO_ERR_INVALID_USERNAME = -36,         /* not 3..32 of a-z 0-9 _ . (docs/api.md section 3) */
    /* Signed device lists (sotto/device_list.h) */
    SOTTO_ERR_DEVICE_LIST_COUNT = -37,   /* a list of 0 or more than 32 devices */
    SOTTO_ERR_DEVICE_LIST_ORDER = -38,   /* device ids not strictly increasing (unsorted, repeat) */
    SOTTO_ERR_DEVICE_LIST_FIELD = -39,   /* version 0, device id 0, registration id out of range */
    SOTTO_ERR_TRAILING_DATA = -40,       /* bytes left after a complete encoding */
    SOTTO_ERR_DEVICE_LIST_ACCOUNT = -41, /* the list is for another username than expected */
    SOTTO_ERR_DEVICE_LIST_STALE = -42,   /* version lower than one already accepted */
    SOTTO_ERR_DEVICE_LIST_CONFLICT = -43, /* same version as one accepted, different content */
    /* Backup files and recovery codes (sotto/backup.h) */
    SOTTO_ERR_BACKUP_WRONG_CODE = -44, /* wrong recovery code, or the file was altered */
    SOTTO_ERR_BACKUP_FORMAT = -45,     /* not a Sotto backup file, or truncated */
    SOTTO_ERR_BACKUP_PARAMS = -46,     /* Argon2id parameters in the header out of range */
    SOTTO_ERR_RECOVERY_CODE = -47,     /* not 30 digits (spaces and dashes allowed) */
    /* Key transparency proofs (sotto/merkle.h, sotto/prefix_tree.h) */
    SOTTO_ERR_PROOF_INVALID = -48,      /* a log or prefix-tree proof that does not verify */
    SOTTO_ERR_COMMITMENT_INVALID = -49, /* an opening that does not open the commitment */
    /* Tree heads (sotto/kt.h) */
    SOTTO_ERR_KT_HEAD_STALE = -50,      /* tree head too old, or stamped in the future */
    SOTTO_ERR_KT_AUDITOR_MISSING = -51, /* no countersignature from a required auditor */
    SOTTO_ERR_KT_UPDATE_INVALID = -52,  /* a log update that does not follow the previous state
                                           (counter not previous + 1, time going back) */
    /* Sealed sender (sotto/sealed.h) */
    SOTTO_ERR_CERT_MALFORMED = -53,  /* a server/sender certificate that does not parse */
    SOTTO_ERR_CERT_UNTRUSTED = -54,  /* server certificate not signed by the pinned trust root */
    SOTTO_ERR_CERT_SIGNATURE = -55,  /* sender certificate not signed by its server certificate */
    SOTTO_ERR_CERT_EXPIRED = -56,    /* sender certificate past its expiry at the given time */
    SOTTO_ERR_SEALED_MISMATCH = -57, /* sealed sender key differs from the certificate's key */
} sotto_error;

/*
 * Returns a short static English description of `code` (never NULL, never
 * containing key material or input). Unknown codes give "unknown error".
 */
SOTTO_API const char *sotto_strerror(int code);

#ifdef __cplusplus
}
#endif
#endif /* SOTTO_ERROR_H */
