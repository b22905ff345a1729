/*
 * client/core/api.h -- the typed API layer of the client core (internal).
 *
 * The only part of client/ besides the transport (net.c) that touches the
 * generated `Sotto__Api__*` protobuf types (proto/api.proto, docs/api.md).
 * Every call sends one request over the account's connection and returns a
 * typed result instead of a protobuf:
 *
 *   SC_API_OK          the server did it; the out-parameters are filled
 *   SC_API_MISMATCH    send: the device set was wrong (sc_api_mismatch)
 *   SC_API_RETRY       the server asked to wait (rate limited, busy, storage
 *                      failure, shutting down): nothing was done; try again
 *                      at sc_api_result.retry_at_ms (wall clock, ms)
 *   SC_API_REFUSED     the server refused for good (status and text in the
 *                      result); retrying the same request will not help
 *   SC_API_NETWORK     no answer: not connected, timeout, connection lost
 *
 * Callers in the core decide what a result means for the user; nothing here
 * sleeps or retries. Strings and arrays in results are owned by the result
 * and freed by sc_api_result_clear() (or the call's own free function).
 */
#ifndef SOTTO_CLIENT_API_H
#define SOTTO_CLIENT_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sotto/keys.h"
#include "sotto/session.h"

typedef struct sc_client sc_client;
typedef struct sc_conn sc_conn;

typedef enum {
    SC_API_OK = 0,
    SC_API_MISMATCH = 1,
    SC_API_RETRY = 2,
    SC_API_REFUSED = 3,
    SC_API_NETWORK = 4,
} sc_api_outcome;

/* Status codes of proto/api.proto's Status, as the server sent them. */
typedef enum {
    SC_ST_OK = 0,
    SC_ST_BAD_REQUEST = 1,
    SC_ST_UNAUTHENTICATED = 2,
    SC_ST_FORBIDDEN = 3,
    SC_ST_NOT_FOUND = 4,
    SC_ST_USERNAME_TAKEN = 5,
    SC_ST_INVALID_USERNAME = 6,
    SC_ST_INVALID_SIGNATURE = 7,
    SC_ST_MISMATCHED_DEVICES = 8,
    SC_ST_QUEUE_FULL = 9,
    SC_ST_RATE_LIMITED = 10,
    SC_ST_TOO_LARGE = 11,
    SC_ST_DEVICE_LIMIT = 12,
    SC_ST_INVITE_REQUIRED = 13,
    SC_ST_INTERNAL = 14,
    SC_ST_UNAVAILABLE = 15,
    SC_ST_PROTOCOL_ERROR = 16,
    SC_ST_ALREADY_AUTHENTICATED = 17,
    SC_ST_NO_KEYS = 18,
    SC_ST_DEVICE_LIST_STALE = 19,
    SC_ST_KT_PENDING = 20, /* v3: not yet in the published key directory */
} sc_api_status;

/* An account's key and signed device list as the server served them
 * (api.proto v2). Not trusted: the core verifies the list under the key it
 * pinned (sotto/device_list.h). device_list malloc()ed; free with
 * sc_api_account_clear(). */
typedef struct sc_api_account {
    bool has_account_key;
    uint8_t account_key[33];
    uint8_t *device_list;
    size_t device_list_len;
} sc_api_account;
void sc_api_account_clear(sc_api_account *a);

/* Device ids the server named in a device mismatch (send). */
typedef struct sc_api_mismatch {
    uint32_t *missing, *extra, *stale;
    size_t n_missing, n_extra, n_stale;
} sc_api_mismatch;

typedef struct sc_api_result {
    sc_api_outcome outcome;
    int status;               /* sc_api_status, -1 when there was no answer */
    char error[256];          /* the server's text, or why there was no answer */
    uint64_t retry_at_ms;     /* SC_API_RETRY: when to try again (wall clock) */
    sc_api_mismatch mismatch; /* SC_API_MISMATCH */
} sc_api_result;

void sc_api_result_clear(sc_api_result *r);
/* Short English name of a status ("rate limited", "storage failure", ...). */
const char *sc_api_status_name(int status);

/* ---- envelopes (pushed by the server) ---- */

/* A received envelope, copied out of the push frame. */
typedef struct sc_envelope {
    uint8_t id[16];
    size_t id_len;      /* 16 on a well-formed envelope */
    uint64_t server_ts; /* ms */
    char source[64];    /* sender username ("" when absent/invalid; "" for type 6) */
    uint32_t source_device;
    uint32_t type; /* 2 SignalMessage, 3 PreKeySignalMessage, 6 sealed sender v1 */
    uint8_t *body; /* malloc()ed */
    size_t body_len;
} sc_envelope;
void sc_envelope_clear(sc_envelope *e);

/* What sc_api_next_push() hands out. */
typedef enum {
    SC_PUSH_NONE = 0,     /* nothing before the timeout / stop, or the connection closed */
    SC_PUSH_ENVELOPE = 1, /* .envelope is filled; ack .push_id once it is stored */
    SC_PUSH_BAD = 2,      /* the server pushed an envelope that does not parse:
                             .push_id is set (ack it), .error says what */
} sc_push_kind;

typedef struct sc_push {
    sc_push_kind kind;
    uint64_t push_id;
    sc_envelope envelope;
    char error[128];
} sc_push;
void sc_push_clear(sc_push *p);

/* ---- the calls (docs/api.md); each returns an sc_api_outcome and fills *r ---- */

/* Opens the connection (TLS, pin) unless one is alive; no request. */
sc_api_outcome sc_api_open(sc_client *c, sc_api_result *r);

/* challenge: the 32-byte single-use nonce for register/login. */
sc_api_outcome sc_api_challenge(sc_client *c, uint8_t nonce[32], sc_api_result *r);
/* RFC 9266 exporter of the open connection; SC_API_NETWORK when there is none. */
sc_api_outcome sc_api_exporter(sc_client *c, uint8_t exporter[32], sc_api_result *r);

typedef struct sc_api_register_req {
    const char *username;
    const uint8_t *auth_key;     /* 32 bytes, Ed25519 public */
    const uint8_t *signature;    /* 64 bytes */
    const char *invite;          /* or NULL */
    const uint8_t *identity_key; /* 33 bytes, 0x05 || X25519 */
    uint32_t registration_id;
    const uint8_t *account_key; /* 33 bytes (v2) */
    const uint8_t *device_list; /* the signed list (v2), device_list_len bytes */
    size_t device_list_len;
    bool recover; /* re-take the username (docs/api.md) */
} sc_api_register_req;
/* register: *device_id gets the id the server gave (1, or the list's with recover). */
sc_api_outcome sc_api_register(sc_client *c, const sc_api_register_req *req, uint32_t *device_id,
                               sc_api_result *r);

typedef struct sc_api_login_info {
    uint32_t prekeys_remaining;
    bool prekeys_low;
    bool has_keys;
    uint32_t queued;
} sc_api_login_info;
sc_api_outcome sc_api_login(sc_client *c, const char *username, uint32_t device_id,
                            const uint8_t signature[64], sc_api_login_info *info, sc_api_result *r);

/* set_keys: spk may be NULL (keep the stored one); n <= 100 one-time prekeys. */
sc_api_outcome sc_api_set_keys(sc_client *c, const sotto_signed_prekey *spk,
                               const sotto_prekey *pks, size_t n, sc_api_result *r);

/* One device of the logged-in account (list_devices). */
typedef struct sc_api_device {
    uint32_t device_id;
    uint32_t registration_id;
    uint32_t added_by;
    bool has_keys;
    char created[16];   /* "YYYY-MM-DD" or "" */
    char last_seen[16]; /* "YYYY-MM-DD" or "" */
    uint8_t auth_key[32];
    bool has_auth_key;
    uint8_t identity_key[33];
    bool has_identity_key;
} sc_api_device;
/* *devs malloc()ed (free()), *n entries; *acct (may be NULL) the
 * account's key and signed list of the same snapshot. */
sc_api_outcome sc_api_list_devices(sc_client *c, sc_api_device **devs, size_t *n,
                                   sc_api_account *acct, sc_api_result *r);
/* add_device with the new signed list (list, list_len bytes). */
sc_api_outcome sc_api_add_device(sc_client *c, const uint8_t auth_key[32],
                                 const uint8_t identity_key[33], uint32_t registration_id,
                                 const uint8_t signature[64], const uint8_t *list, size_t list_len,
                                 uint32_t *device_id, sc_api_result *r);
/* remove_device with the new signed list. */
sc_api_outcome sc_api_remove_device(sc_client *c, uint32_t device_id, const uint8_t *list,
                                    size_t list_len, sc_api_result *r);
/* set_device_list: publish a list (account_key may be NULL when the server
 * already holds it). */
sc_api_outcome sc_api_set_device_list(sc_client *c, const uint8_t *list, size_t list_len,
                                      const uint8_t *account_key, sc_api_result *r);
/* get_device_list: an account's key and list (consumes no prekey). */
sc_api_outcome sc_api_get_device_list(sc_client *c, const char *username, sc_api_account *acct,
                                      sc_api_result *r);

/* One device's bundle as the server served it. Lengths are checked here
 * (a field of the wrong size makes the whole answer SC_API_REFUSED with
 * status -1 and "malformed ..." in r->error); the keys are not yet
 * trusted: the caller checks them. */
typedef struct sc_api_bundle {
    uint32_t device_id;
    uint32_t registration_id;
    uint8_t identity_key[33];
    bool has_signed_prekey;
    uint32_t signed_prekey_id;
    uint8_t signed_prekey[33];
    uint8_t signed_prekey_signature[64];
    bool has_prekey;
    uint32_t prekey_id;
    uint8_t prekey[33];
    uint8_t auth_key[32];
    uint32_t added_by;
    bool has_add_signature;
    uint8_t add_signature[64];
} sc_api_bundle;
/* get_bundle of `username`, device_id 0 = every device. *out malloc()ed
 * (free() after sodium_memzero is not needed: public keys only). */
sc_api_outcome sc_api_get_bundles(sc_client *c, const char *username, uint32_t device_id,
                                  sc_api_bundle **out, size_t *n, sc_api_account *acct,
                                  sc_api_result *r);

/* One ciphertext of a send (body not owned). */
typedef struct sc_api_outgoing {
    uint32_t device_id;
    uint32_t registration_id;
    uint32_t type;
    const uint8_t *body;
    size_t body_len;
} sc_api_outgoing;
/* send: SC_API_OK (*server_ts set), SC_API_MISMATCH (r->mismatch), or another outcome. */
sc_api_outcome sc_api_send(sc_client *c, const char *destination, const sc_api_outgoing *msgs,
                           size_t n, uint64_t *server_ts, sc_api_result *r);

/* attachment_slot: id (32 lowercase hex + NUL) and the server's cap. */
sc_api_outcome sc_api_attachment_slot(sc_client *c, uint64_t size, char id[33], uint64_t *max_bytes,
                                      sc_api_result *r);

/* prekey_status: one-time prekeys this device still has on the server. */
sc_api_outcome sc_api_prekey_status(sc_client *c, uint32_t *remaining, bool *low, sc_api_result *r);

/* The next push, waiting up to timeout_ms (or until *stop). */
void sc_api_next_push(sc_client *c, int timeout_ms, volatile int *stop, sc_push *out);
/* Acks a push (queued; sent by the next call or sc_api_flush). 0 or -1. */
int sc_api_ack(sc_client *c, uint64_t push_id);
/* Sends queued acks, waiting up to timeout_ms. 0 when all went out. */
int sc_api_flush(sc_client *c, int timeout_ms);

/* ---- key transparency (api.proto v3) ----
 * Every byte string is as the server sent it (libsotto encodings,
 * sotto/kt.h): not trusted, client/core/kt.c verifies them. A server that
 * does not know these ops (before v3) answers SC_API_REFUSED; then
 * sc_api_kt_unsupported(r) is true. */

/* kt_config: the server's head-signing key and VRF key (32 bytes each),
 * the auditors it collects countersignatures from (n_auditors x 32 bytes,
 * malloc()ed) and its log size. Sizes are checked here (a wrong one is
 * SC_API_REFUSED, status -1, "malformed ..."). */
typedef struct sc_api_kt_cfg {
    uint8_t server_key[32];
    uint8_t vrf_key[32];
    uint8_t (*auditors)[32];
    size_t n_auditors;
    uint64_t log_size;
} sc_api_kt_cfg;
void sc_api_kt_config_clear(sc_api_kt_cfg *k);
sc_api_outcome sc_api_kt_config(sc_client *c, sc_api_kt_cfg *out, sc_api_result *r);

/* A search or head answer: result (search only; NULL for kt_head), the
 * published audited head and the consistency path from known_size (NULL/0
 * when empty). All malloc()ed: sc_api_kt_answer_clear(). */
typedef struct sc_api_kt_answer {
    uint8_t *result;
    size_t result_len;
    uint8_t *head;
    size_t head_len;
    uint8_t *consistency;
    size_t consistency_len;
} sc_api_kt_answer;
void sc_api_kt_answer_clear(sc_api_kt_answer *a);
/* kt_search: SC_API_OK; SC_API_RETRY with status SC_ST_KT_PENDING (the
 * account's value is not published yet; retry_at_ms from the server's
 * retry_after_ms); SC_API_REFUSED with SC_ST_NOT_FOUND (no such account). */
sc_api_outcome sc_api_kt_search(sc_client *c, const char *username, uint64_t known_size,
                                sc_api_kt_answer *out, sc_api_result *r);
/* kt_head: the published head (out->result stays NULL). */
sc_api_outcome sc_api_kt_head(sc_client *c, uint64_t known_size, sc_api_kt_answer *out,
                              sc_api_result *r);
/* kt_consistency: the path from size1 to size2 (*proof malloc()ed, NULL/0
 * when size1 == size2) and the server's log roots at both sizes. */
sc_api_outcome sc_api_kt_consistency(sc_client *c, uint64_t size1, uint64_t size2, uint8_t **proof,
                                     size_t *proof_len, uint8_t root1[32], uint8_t root2[32],
                                     sc_api_result *r);
/* Whether a refused answer means the server does not run key transparency
 * (it does not know the op). */
bool sc_api_kt_unsupported(const sc_api_result *r);

/* ---- profiles (issue 11; docs/api.md "Profiles") ---- */
/* set_profile: stores ct (1..128 KiB of ciphertext) as the logged-in
 * account's profile. REFUSED with SC_ST_TOO_LARGE over the cap. */
sc_api_outcome sc_api_set_profile(sc_client *c, const uint8_t *ct, size_t ct_len, sc_api_result *r);
/* get_profile: username's profile ciphertext (*ct malloc()ed, freed by
 * the caller with free()). REFUSED with SC_ST_NOT_FOUND: no such account
 * or no profile. */
sc_api_outcome sc_api_get_profile(sc_client *c, const char *username, uint8_t **ct, size_t *ct_len,
                                  sc_api_result *r);

/* ---- sealed sender (api.proto v5; docs/api.md "Sealed sender") ---- */

/* The sealed-sender trust root the server named in the last successful
 * register or login answer (RegisterResponse / LoginResponse
 * .sealed_trust_root) is kept in c (internal.h: sealed_root_seen) by
 * sc_api_register and sc_api_login; a server before v5 sends none. */

/* sender_certificate: a serialized SenderCertificate for the logged-in
 * device (*cert malloc()ed, *cert_len <= SOTTO_CERT_MAX_BYTES, freed by the
 * caller with free()) and the expiry the server states. Not trusted here:
 * sealed.c validates it. REFUSED with "malformed" on an empty or oversized
 * certificate. */
sc_api_outcome sc_api_sender_certificate(sc_client *c, uint8_t **cert, size_t *cert_len,
                                         uint64_t *expires_ms, sc_api_result *r);
/* set_delivery_token: sets (token, 16 bytes) or clears (NULL) the
 * logged-in account's delivery token. */
sc_api_outcome sc_api_set_delivery_token(sc_client *c, const uint8_t *token, sc_api_result *r);
/* A SEALED send over `conn` (a connection that never logged in, not
 * c->conn): every msgs[i].type must be 6 and `token` (16 bytes) the
 * destination's delivery token. Outcomes as sc_api_send; REFUSED with
 * status SC_ST_UNAUTHENTICATED when the server refused the token (nothing
 * queued). A network failure does not close conn (the caller does). */
sc_api_outcome sc_api_send_sealed(sc_client *c, sc_conn *conn, const char *destination,
                                  const sc_api_outgoing *msgs, size_t n, const uint8_t token[16],
                                  uint64_t *server_ts, sc_api_result *r);

/*
 * Turns a result into the core's error code and message (sc_fail):
 * SC_API_NETWORK -> SC_E_NETWORK, SC_API_RETRY -> SC_E_RETRY (retry_at
 * kept for sc_retry_at()), SC_API_REFUSED -> SC_E_NOT_FOUND for a not-found
 * status, else SC_E_SERVER; `what` names the call ("send", "login").
 */
int sc_api_fail(sc_client *c, const sc_api_result *r, const char *what);

#endif /* SOTTO_CLIENT_API_H */
