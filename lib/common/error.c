/* sotto_strerror: the text of every SOTTO_ERR_* code (sotto/error.h). */
#include "sotto/error.h"

SOTTO_API const char *sotto_strerror(int code)
{
    switch ((sotto_error)code) {
    case SOTTO_OK:
        return "success";
    case SOTTO_ERR_INVALID_ARGUMENT:
        return "invalid argument";
    case SOTTO_ERR_NOMEM:
        return "out of memory";
    case SOTTO_ERR_BUFFER_TOO_SMALL:
        return "output buffer too small";
    case SOTTO_ERR_CRYPTO:
        return "cryptographic primitive failed";
    case SOTTO_ERR_STORE:
        return "store operation failed";
    case SOTTO_ERR_NOT_FOUND:
        return "record not found";
    case SOTTO_ERR_INTERNAL:
        return "internal error";
    case SOTTO_ERR_INVALID_MESSAGE:
        return "invalid message";
    case SOTTO_ERR_DUPLICATE_MESSAGE:
        return "duplicate message";
    case SOTTO_ERR_NO_SESSION:
        return "no session";
    case SOTTO_ERR_UNTRUSTED_IDENTITY:
        return "untrusted identity key";
    case SOTTO_ERR_INVALID_KEY:
        return "invalid key";
    case SOTTO_ERR_UNKNOWN_PREKEY_ID:
        return "unknown one-time prekey id";
    case SOTTO_ERR_UNKNOWN_SIGNED_PREKEY_ID:
        return "unknown signed prekey id";
    case SOTTO_ERR_TOO_FAR_AHEAD:
        return "message too far in the future";
    case SOTTO_ERR_UNSUPPORTED_VERSION:
        return "unsupported message version";
    case SOTTO_ERR_LEGACY_MESSAGE:
        return "legacy message version";
    case SOTTO_ERR_INVALID_SIGNATURE:
        return "invalid signature";
    case SOTTO_ERR_INVALID_KEY_ID:
        return "unknown sender key id";
    case SOTTO_ERR_CORRUPT_RECORD:
        return "corrupt stored record";
    case SOTTO_ERR_FP_VERSION_MISMATCH:
        return "fingerprint version mismatch";
    case SOTTO_ERR_FP_IDENT_MISMATCH:
        return "fingerprint identifier mismatch";
    case SOTTO_ERR_NO_SIGNING_KEY:
        return "no private signing key for this sender key";
    case SOTTO_ERR_INVALID_USERNAME:
        return "invalid username";
    case SOTTO_ERR_DEVICE_LIST_COUNT:
        return "device list has no device or more than 32";
    case SOTTO_ERR_DEVICE_LIST_ORDER:
        return "device ids in a device list not strictly increasing";
    case SOTTO_ERR_DEVICE_LIST_FIELD:
        return "device list field out of range";
    case SOTTO_ERR_TRAILING_DATA:
        return "unexpected bytes after the end of the encoding";
    case SOTTO_ERR_DEVICE_LIST_ACCOUNT:
        return "device list is for another account";
    case SOTTO_ERR_DEVICE_LIST_STALE:
        return "device list older than one already seen";
    case SOTTO_ERR_DEVICE_LIST_CONFLICT:
        return "two different device lists with the same version";
    case SOTTO_ERR_BACKUP_WRONG_CODE:
        return "wrong recovery code or altered backup file";
    case SOTTO_ERR_BACKUP_FORMAT:
        return "not a Sotto backup file, or truncated";
    case SOTTO_ERR_BACKUP_PARAMS:
        return "backup key-derivation parameters out of range";
    case SOTTO_ERR_RECOVERY_CODE:
        return "recovery code is not 30 digits";
    case SOTTO_ERR_PROOF_INVALID:
        return "transparency proof does not verify";
    case SOTTO_ERR_COMMITMENT_INVALID:
        return "commitment opening does not match";
    case SOTTO_ERR_KT_HEAD_STALE:
        return "transparency tree head is too old or from the future";
    case SOTTO_ERR_KT_AUDITOR_MISSING:
        return "transparency tree head lacks a required auditor countersignature";
    case SOTTO_ERR_KT_UPDATE_INVALID:
        return "transparency log update does not follow the previous state";
    case SOTTO_ERR_CERT_MALFORMED:
        return "certificate does not parse";
    case SOTTO_ERR_CERT_UNTRUSTED:
        return "server certificate not signed by the trust root";
    case SOTTO_ERR_CERT_SIGNATURE:
        return "sender certificate signature does not verify";
    case SOTTO_ERR_CERT_EXPIRED:
        return "sender certificate has expired";
    case SOTTO_ERR_SEALED_MISMATCH:
        return "sealed sender identity does not match its certificate";
    }
    return "unknown error";
}
