/*
 * auditor/audit.h -- the verification core of sotto-auditor (issue 9,
 * docs/protocol.md "Key transparency"), independent of the network.
 *
 * The auditor keeps its own copy of the key-transparency log: every update
 * the server's KtAudit hands out is applied to a sotto_kt_directory (which
 * refuses a counter that is not the index's previous counter + 1 and a
 * timestamp before the previous update's) and the leaf
 * sotto_kt_leaf_hash(prefix root after the update, update timestamp) is
 * appended to a sotto_merkle_log. A server-signed tree head is
 * countersigned only when the auditor's own log root at head.size equals
 * head.root. Anything that contradicts the log it verified (an update that
 * does not follow, a head whose root differs, a head smaller than the
 * verified log, a head not signed by the pinned server key, time going
 * back) puts the auditor in the STOPPED state for good: the reason is
 * persisted and every later call refuses.
 *
 * State lives in one SQLite file (auditor.db, schema in audit.c): the
 * configuration (server URL, TLS pin or CA file, pinned server KT key), the
 * updates verified so far (80 bytes each, so a restart replays and
 * re-verifies them from its own copy, never from the server), the last
 * countersigned head and the stopped reason. One transaction per fed page.
 *
 * Return codes (int): AUD_OK, AUD_LATER, or a negative AUD_E_*. Messages
 * go to the caller's `err` buffer (may be NULL); no secret is ever written
 * to it.
 */
#ifndef SOTTO_AUDITOR_AUDIT_H
#define SOTTO_AUDITOR_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "sotto/kt.h"

enum {
    AUD_OK = 0,
    AUD_LATER = 1,      /* a head that cannot be checked yet (not an error) */
    AUD_E_ARG = -1,     /* a NULL or out-of-range argument */
    AUD_E_IO = -2,      /* SQLite or file failure, or a corrupt auditor.db */
    AUD_E_STOPPED = -3, /* the auditor is STOPPED (now or earlier): aud_stopped() */
    AUD_E_CRYPTO = -4,  /* a primitive or an allocation failed */
};

/* A head stamped more than this after the auditor's clock is not signed
 * (yet): AUD_LATER. */
#define AUD_MAX_FUTURE_MS (UINT64_C(5) * 60 * 1000)
/* Update timestamps are dates: ms at 00:00 UTC (design section 1). */
#define AUD_DAY_MS (UINT64_C(86400) * 1000)
#define AUD_REASON_MAX 512
#define AUD_URL_MAX 512
#define AUD_PATH_MAX 4096

/* What `init` records; fixed for the life of the auditor. */
typedef struct aud_config {
    char server[AUD_URL_MAX];   /* "https://host:port" */
    char pin_hex[65];           /* SHA-256 of the server certificate, or "" */
    char ca_file[AUD_PATH_MAX]; /* CA file, or "" (exactly one of pin/ca set) */
    uint8_t server_key[SOTTO_KT_SIGN_PUBLIC_KEY_BYTES]; /* pinned KT key */
} aud_config;

/* What `status` shows, read without replaying the log. */
typedef struct aud_info {
    aud_config config;
    uint64_t verified_size;       /* updates verified and stored */
    int have_cosigned;            /* 1 when a head was countersigned */
    sotto_kt_tree_head cosigned;  /* the last countersigned head */
    uint64_t cosigned_at_ms;      /* when (auditor's clock) */
    char stopped[AUD_REASON_MAX]; /* "" or the reason */
    uint64_t stopped_at_ms;
} aud_info;

typedef struct aud_state aud_state;

/* Creates auditor.db at `path` (must not exist) with this configuration,
 * mode 0600. AUD_OK, AUD_E_ARG (bad config: no server, both or neither of
 * pin and CA) or AUD_E_IO (exists, cannot write). */
int aud_db_create(const char *path, const aud_config *cfg, char *err, size_t errlen);

/* Reads the configuration and state of auditor.db without replaying.
 * AUD_OK or AUD_E_IO. */
int aud_db_info(const char *path, aud_info *out, char *err, size_t errlen);

/*
 * Opens auditor.db and replays every stored update through a fresh
 * directory and log (each re-verified), then checks the replayed log root
 * at the last countersigned size against that head's root. *out is set
 * even when the auditor is STOPPED (so the caller can show why; every
 * feeding call then returns AUD_E_STOPPED). Returns AUD_OK, AUD_E_IO (no
 * such file, schema unknown, or a stored update / head the replay refuses:
 * a corrupt or edited auditor.db, message in err) or AUD_E_CRYPTO.
 * Free with aud_close.
 */
int aud_open(aud_state **out, const char *path, char *err, size_t errlen);
void aud_close(aud_state *s);

const aud_config *aud_get_config(const aud_state *s);
uint64_t aud_verified_size(const aud_state *s);
/* NULL when running, else the persisted reason (owned by s). */
const char *aud_stopped(const aud_state *s);
/* The last countersigned head, or NULL. */
const sotto_kt_tree_head *aud_last_cosigned(const aud_state *s);
/* Heap held by the directory and the log (bytes). */
size_t aud_memory(const aud_state *s);

/*
 * Verifies and applies updates[0..n) (each the wire bytes of one update,
 * lens[i] long) as log entries verified_size, verified_size + 1, ...: each
 * must parse (80 bytes), be stamped on a date (a multiple of one day), and
 * be accepted by sotto_kt_directory_apply (counter = previous + 1, time not
 * going back). Accepted updates and the new verified size are stored in ONE
 * transaction; on the first refused update the ones before it are kept and
 * the auditor STOPS in that same transaction (reason in err and
 * aud_stopped()). Returns AUD_OK, AUD_E_STOPPED, AUD_E_IO (the state in
 * memory is then ahead of the database: close and reopen), AUD_E_CRYPTO or
 * AUD_E_ARG.
 */
int aud_feed(aud_state *s, const uint8_t *const *updates, const size_t *lens, size_t n, char *err,
             size_t errlen);

/*
 * Checks a tree head from the server (`len` wire bytes, 112) at the
 * auditor's time now_ms, in this order:
 *  1. it parses and the server signature verifies under the pinned key,
 *     else STOP (a head the pinned server key did not sign);
 *  2. `newest` (the server says it is its newest head: KtAudit.head) and
 *     head.size < verified size: STOP ("log truncated"); an older head
 *     (KtAudit.pending) may be smaller;
 *  3. head.size > verified size: AUD_LATER (feed the missing updates
 *     first);
 *  4. own log root at head.size == head.root, else STOP ("the server's
 *     tree head N does not match the log I verified");
 *  5. the head's last entry (size - 1) is stamped no later than the head,
 *     and against the last countersigned head: a larger head is not older,
 *     a smaller one not newer, else STOP (time going back);
 *  6. head.timestamp_ms <= now_ms + AUD_MAX_FUTURE_MS, else AUD_LATER
 *     (nothing is proven: this machine's clock may be late).
 * The parsed head is written to *out (may be NULL) after step 1. Returns
 * AUD_OK, AUD_LATER (why in err), AUD_E_STOPPED (why in err and
 * aud_stopped()), AUD_E_IO or AUD_E_ARG. Checks nothing twice: a STOP is
 * persisted before the return.
 */
int aud_check_head(aud_state *s, const uint8_t *head, size_t len, int newest, uint64_t now_ms,
                   sotto_kt_tree_head *out, char *err, size_t errlen);

/*
 * aud_check_head, then the countersignature: sig = sotto_kt_cosign(head,
 * sk) with the auditor's Ed25519 secret key (64 bytes), and the head is
 * stored as the last countersigned one (before the caller sends sig, so a
 * crash never loses a signed head). Same returns as aud_check_head; sig and
 * *out are written only on AUD_OK.
 */
int aud_cosign(aud_state *s, const uint8_t *head, size_t len, int newest, uint64_t now_ms,
               const uint8_t sk[SOTTO_KT_SIGN_SECRET_KEY_BYTES],
               uint8_t sig[SOTTO_KT_SIGNATURE_BYTES], sotto_kt_tree_head *out, char *err,
               size_t errlen);

/* Puts the auditor in the STOPPED state with this reason (persisted;
 * a second call keeps the first reason). AUD_E_STOPPED, or AUD_E_IO when
 * the reason could not be stored (still stopped in memory). */
int aud_stop(aud_state *s, const char *why, char *err, size_t errlen);

#endif /* SOTTO_AUDITOR_AUDIT_H */
