/*
 * client/core/gossip.c -- key-transparency gossip (docs/protocol.md
 * "Gossip"): our held tree head rides along in end-to-end encrypted
 * Content now and then, and each head a contact sends us is checked
 * against ours, so that a server that shows two versions of its key
 * directory to two people is caught even without an auditor.
 *
 * Sending: sc_gossip_attach puts the held head (sc_kt_held_head) into
 * Content.kt_head at most once per contact per kt_gossip_interval_s
 * (default SC_KT_DEFAULT_GOSSIP_INTERVAL_S). The time is recorded when the
 * Content is queued, in the caller's transaction with the queued row; a
 * queued row is sent later even when the network is down now, so this is
 * "sent" for every row except one the server refuses for good (then the
 * contact gets our head with the next message after the interval).
 *
 * Receiving: sc_gossip_receive parses the head (at most
 * SOTTO_KT_AUDITED_HEAD_MAX_BYTES), checks the server signature under the
 * pinned server key (countersignatures are not needed: two heads the
 * server signed are enough to convict it) and compares it with ours:
 *   same size, same root        nothing to do
 *   same size, other root       equivocation: alert, both heads kept as
 *                               evidence (kt_evidence "equivocation")
 *   other sizes                 one KtConsistency(min, max) request: the
 *                               roots the server gives must be the two
 *                               heads' roots and the path must verify;
 *                               a refusal or a failed check is an alert
 *                               (kt_evidence "inconsistent")
 *   no head held yet            KtConsistency(size, size): the server's
 *                               root at that size must be the signed one
 * A head that does not parse, is too large or is not signed by our
 * server's key (a contact on another server, or garbage) is ignored with
 * a debug line (SOTTO_DEBUG_GOSSIP=1, on stderr), never an alert: a contact
 * cannot make our server sign anything. When the check cannot finish (no
 * connection, the server asks to wait) the head is kept in
 * kt_gossip_pending (at most SC_GOSSIP_PENDING_MAX rows, the oldest dropped)
 * and sc_gossip_retry_pending tries again after the next login. Gossip
 * never fails or delays the message that carried it.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "api.h"
#include "internal.h"
#include "sotto/error.h"
#include "sotto/kt.h"
#include "sotto/merkle.h"

/* The longest interval honoured (ten years): keeps the ms product in range. */
#define GOSSIP_INTERVAL_MAX_S (10ull * 366 * 24 * 3600)

static void gossip_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void gossip_debug(const char *fmt, ...)
{
    const char *v = getenv("SOTTO_DEBUG_GOSSIP");
    va_list ap;

    if (v == NULL || v[0] == '\0' || strcmp(v, "0") == 0)
        return;
    fputs("sotto: kt gossip: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* ------------------------------------------------------------ pure logic */

sc_gossip_verdict sc_gossip_compare(const sotto_kt_tree_head *ours,
                                    const sotto_kt_tree_head *theirs)
{
    if (ours->size != theirs->size)
        return SC_GOSSIP_CHECK;
    if (sodium_memcmp(ours->root, theirs->root, sizeof ours->root) != 0)
        return SC_GOSSIP_FORK;
    return SC_GOSSIP_SAME;
}

int sc_gossip_check_answer(const sotto_kt_tree_head *a, const sotto_kt_tree_head *b,
                           const uint8_t root1[32], const uint8_t root2[32], const uint8_t *proof,
                           size_t proof_len, const char **why)
{
    const sotto_kt_tree_head *lo = a->size <= b->size ? a : b;
    const sotto_kt_tree_head *hi = a->size <= b->size ? b : a;
    uint8_t(*path)[SOTTO_MERKLE_HASH_BYTES] = NULL;
    size_t path_len = 0;
    const char *dummy;
    int rc;

    if (why == NULL)
        why = &dummy;
    *why = "";
    if (sodium_memcmp(root1, lo->root, SOTTO_MERKLE_HASH_BYTES) != 0) {
        *why = "its log root at the smaller size is not the one it signed";
        return SOTTO_ERR_PROOF_INVALID;
    }
    if (sodium_memcmp(root2, hi->root, SOTTO_MERKLE_HASH_BYTES) != 0) {
        *why = "its log root at the larger size is not the one it signed";
        return SOTTO_ERR_PROOF_INVALID;
    }
    if (lo->size == hi->size) {
        /* the roots were just compared with both heads: equal sizes need
         * no path (and a server that sends one is not believed) */
        if (sodium_memcmp(lo->root, hi->root, SOTTO_MERKLE_HASH_BYTES) != 0 || proof_len > 1 ||
            (proof_len == 1 && proof[0] != 0)) {
            *why = "the proof does not verify";
            return SOTTO_ERR_PROOF_INVALID;
        }
        return SOTTO_OK;
    }
    if (proof == NULL || proof_len == 0) {
        *why = "it sent no consistency proof";
        return SOTTO_ERR_PROOF_INVALID;
    }
    path = malloc(SOTTO_MERKLE_MAX_PROOF * sizeof *path);
    if (path == NULL) {
        *why = "out of memory";
        return SOTTO_ERR_NOMEM;
    }
    rc = sotto_merkle_proof_parse(proof, proof_len, path, &path_len);
    if (rc == SOTTO_OK)
        rc =
            sotto_merkle_verify_consistency(lo->size, hi->size, lo->root, hi->root, path, path_len);
    free(path);
    if (rc != SOTTO_OK) {
        *why = "the consistency proof does not verify";
        return SOTTO_ERR_PROOF_INVALID;
    }
    return SOTTO_OK;
}

/* ------------------------------------------------------------ sending */

static uint64_t interval_ms(sc_client *c)
{
    uint64_t s = 0;

    if (sc_cfg_get_u64(c, "kt_gossip_interval_s", &s) != SC_OK)
        s = SC_KT_DEFAULT_GOSSIP_INTERVAL_S;
    if (s > GOSSIP_INTERVAL_MAX_S)
        s = GOSSIP_INTERVAL_MAX_S;
    return s * 1000;
}

int sc_gossip_attach(sc_client *c, const char *contact, Sotto__Content__Content *content,
                     uint8_t **buf_owned)
{
    uint64_t last = 0, now = sc_now_ms();
    uint8_t *buf;
    size_t len = 0;
    int rc;

    *buf_owned = NULL;
    if (c->username == NULL || contact == NULL || strcmp(contact, c->username) == 0)
        return SC_OK; /* our own devices: they hold the same head */
    rc = sc_kt_gossip_last_sent(c, contact, &last);
    if (rc != SC_OK && rc != SC_E_NOT_FOUND)
        return rc;
    /* a clock set back (last in the future) attaches again */
    if (rc == SC_OK && last <= now && now - last < interval_ms(c))
        return SC_OK;
    buf = malloc(SOTTO_KT_AUDITED_HEAD_MAX_BYTES);
    if (buf == NULL)
        return sc_fail(c, SC_E_INTERNAL, "out of memory");
    rc = sc_kt_held_head(c, buf, SOTTO_KT_AUDITED_HEAD_MAX_BYTES, &len);
    if (rc == SC_OK)
        rc = sc_kt_gossip_set_last_sent(c, contact, now);
    if (rc != SC_OK) {
        free(buf);
        return rc == SC_E_NOT_FOUND ? SC_OK : rc; /* no head held yet: nothing to say */
    }
    content->kt_head.data = buf;
    content->kt_head.len = len;
    *buf_owned = buf;
    return SC_OK;
}

/* ------------------------------------------------------------ receiving */

static void short_hex(const uint8_t root[32], char out[17])
{
    sc_hex(root, 8, out);
}

/* Whether an alert of `kind` about head `theirs` is already recorded (the
 * same contact sends the same head again after the interval). */
static bool already_alerted(sc_client *c, const char *kind, const uint8_t *theirs, size_t len)
{
    sc_kt_evidence *ev = NULL;
    size_t n = 0;
    bool found = false;

    if (sc_kt_evidence_list(c, &ev, &n) != SC_OK)
        return false;
    for (size_t i = 0; i < n && !found; i++)
        found = strcmp(ev[i].kind, kind) == 0 && ev[i].head_b != NULL && ev[i].head_b_len == len &&
                sodium_memcmp(ev[i].head_b, theirs, len) == 0;
    sc_kt_evidence_list_free(ev, n);
    return found;
}

/* Records evidence and stores the notice, in one transaction. */
static int raise_alert(sc_client *c, const char *sender, const char *kind, const char *code,
                       const char *text, const uint8_t *ours, size_t ours_len,
                       const uint8_t *theirs, size_t theirs_len)
{
    int rc;

    if (already_alerted(c, kind, theirs, theirs_len)) {
        gossip_debug("%s: already alerted about this head", sender);
        return SC_OK;
    }
    rc = sc_db_begin(c);
    if (rc != SC_OK)
        return rc;
    rc = sc_kt_evidence_add(c, kind, text, ours, ours_len, theirs, theirs_len);
    if (rc == SC_OK)
        rc = sc_notice_add(c, sender, code, text);
    if (rc == SC_OK)
        return sc_db_commit(c);
    sc_db_rollback(c);
    return rc;
}

static int pending_add(sc_client *c, const char *sender, const uint8_t *head, size_t len)
{
    sc_kt_gossip_pending *v = NULL;
    size_t n = 0, drop = 0;
    int rc = sc_db_begin(c);

    if (rc != SC_OK)
        return rc;
    rc = sc_kt_gossip_pending_list(c, &v, &n);
    for (size_t i = 0; rc == SC_OK && i < n; i++)
        if (strcmp(v[i].contact, sender) == 0 && v[i].head_len == len &&
            sodium_memcmp(v[i].head, head, len) == 0) {
            /* this one is waiting already */
            sc_kt_gossip_pending_free(v, n);
            return sc_db_commit(c);
        }
    if (rc == SC_OK && n >= SC_GOSSIP_PENDING_MAX)
        drop = n - (SC_GOSSIP_PENDING_MAX - 1);
    for (size_t i = 0; rc == SC_OK && i < drop; i++)
        rc = sc_kt_gossip_pending_delete(c, v[i].id); /* oldest first */
    if (rc == SC_OK)
        rc = sc_kt_gossip_pending_add(c, sender, head, len, sc_now_ms(), NULL);
    sc_kt_gossip_pending_free(v, n);
    if (rc == SC_OK)
        return sc_db_commit(c);
    sc_db_rollback(c);
    return rc;
}

/*
 * The check of one received head. SC_OK when it is done with (consistent,
 * alerted, or ignored); SC_E_NETWORK when it could not finish and should
 * be kept for later; a store error otherwise.
 */
static int gossip_check(sc_client *c, const char *sender, const uint8_t *bytes, size_t len)
{
    sotto_kt_audited_head theirs, ours;
    uint8_t spk[32], vrf[32], r1[32], r2[32];
    uint8_t held[SOTTO_KT_AUDITED_HEAD_MAX_BYTES];
    char text[640], h_theirs[17], h_ours[17];
    const char *why = "";
    size_t held_len = 0;
    bool have_ours = false;
    uint8_t *proof = NULL;
    size_t proof_len = 0;
    uint64_t lo, hi;
    sc_api_outcome out;
    sc_api_result r;
    int rc;

    if (len == 0)
        return SC_OK;
    if (len > SOTTO_KT_AUDITED_HEAD_MAX_BYTES) {
        gossip_debug("%s sent a head of %zu bytes (more than %u): ignored", sender, len,
                     (unsigned)SOTTO_KT_AUDITED_HEAD_MAX_BYTES);
        return SC_OK;
    }
    if (sotto_kt_audited_head_parse(bytes, len, &theirs) != SOTTO_OK) {
        gossip_debug("%s sent a head that does not parse: ignored", sender);
        return SC_OK;
    }
    /* the pinned key is what the head must be signed with; only a device
     * that never pinned one asks the server (and pins it) */
    rc = sc_kt_keys(c, spk, vrf);
    if (rc == SC_E_NOT_FOUND) {
        rc = sc_kt_config(c);
        if (rc == SC_E_NETWORK || rc == SC_E_RETRY)
            return SC_E_NETWORK;
        if (rc == SC_OK)
            rc = sc_kt_keys(c, spk, vrf);
    }
    if (rc != SC_OK) {
        gossip_debug("no key-transparency key for our server (%s): %s's head not checked",
                     sc_errmsg(c), sender);
        return SC_OK;
    }
    if (sotto_kt_head_verify(&theirs.head, spk) != SOTTO_OK) {
        gossip_debug("%s sent a head not signed by our server's key (another server?): ignored",
                     sender);
        return SC_OK;
    }
    rc = sc_kt_held_head(c, held, sizeof held, &held_len);
    if (rc == SC_OK && sotto_kt_audited_head_parse(held, held_len, &ours) == SOTTO_OK)
        have_ours = true;
    else if (rc != SC_OK && rc != SC_E_NOT_FOUND)
        return rc;
    if (!have_ours)
        held_len = 0;
    short_hex(theirs.head.root, h_theirs);
    if (have_ours) {
        short_hex(ours.head.root, h_ours);
        switch (sc_gossip_compare(&ours.head, &theirs.head)) {
        case SC_GOSSIP_SAME:
            gossip_debug("%s holds our head (%llu entries)", sender,
                         (unsigned long long)theirs.head.size);
            return SC_OK;
        case SC_GOSSIP_FORK:
            snprintf(text, sizeof text,
                     "key directory: the server showed %s a different key directory than you:"
                     " both versions have %llu entries and are signed by the server, with"
                     " roots %s (%s's) and %s (yours). Someone's keys may have been replaced"
                     " for one of you: compare safety numbers with your contacts in person."
                     " The two signed heads are kept as evidence (sotto kt status).",
                     sender, (unsigned long long)theirs.head.size, h_theirs, sender, h_ours);
            return raise_alert(c, sender, "equivocation", "kt_equivocation", text, held, held_len,
                               bytes, len);
        case SC_GOSSIP_CHECK:
            break;
        }
        lo = ours.head.size < theirs.head.size ? ours.head.size : theirs.head.size;
        hi = ours.head.size < theirs.head.size ? theirs.head.size : ours.head.size;
    } else {
        lo = hi = theirs.head.size;
        ours = theirs; /* checked against the server's root at that size */
    }
    out = sc_api_kt_consistency(c, lo, hi, &proof, &proof_len, r1, r2, &r);
    if (out == SC_API_NETWORK || out == SC_API_RETRY) {
        gossip_debug("cannot check %s's head now (%s): kept for later", sender, r.error);
        sc_api_result_clear(&r);
        free(proof);
        return SC_E_NETWORK;
    }
    if (out == SC_API_OK && sc_gossip_check_answer(&ours.head, &theirs.head, r1, r2, proof,
                                                   proof_len, &why) == SOTTO_OK) {
        gossip_debug("%s's head (%llu entries) is consistent with %s (%llu entries)", sender,
                     (unsigned long long)theirs.head.size, have_ours ? "ours" : "the server's log",
                     (unsigned long long)ours.head.size);
        sc_api_result_clear(&r);
        free(proof);
        return SC_OK;
    }
    if (out != SC_API_OK)
        why = r.error[0] ? r.error : sc_api_status_name(r.status);
    if (have_ours)
        snprintf(text, sizeof text,
                 "key directory: the server cannot show that the key directory it signed for %s"
                 " (%llu entries, root %s) and the one it signed for you (%llu entries, root %s)"
                 " are one log (%s%s). The server may be showing different keys to different"
                 " people: compare safety numbers with your contacts in person. Both heads are"
                 " kept as evidence (sotto kt status).",
                 sender, (unsigned long long)theirs.head.size, h_theirs,
                 (unsigned long long)ours.head.size, h_ours,
                 out == SC_API_OK ? "" : "it refused: ", why);
    else
        snprintf(text, sizeof text,
                 "key directory: the server cannot show that the key directory it signed for %s"
                 " (%llu entries, root %s) is its log (%s%s). The server may be showing"
                 " different keys to different people: compare safety numbers with your"
                 " contacts in person. The head is kept as evidence (sotto kt status).",
                 sender, (unsigned long long)theirs.head.size, h_theirs,
                 out == SC_API_OK ? "" : "it refused: ", why);
    sc_api_result_clear(&r);
    free(proof);
    return raise_alert(c, sender, "inconsistent", "kt_inconsistent", text, have_ours ? held : NULL,
                       held_len, bytes, len);
}

int sc_gossip_receive(sc_client *c, const char *sender, const uint8_t *head, size_t len)
{
    int rc;

    if (sender == NULL || head == NULL || len == 0)
        return SC_OK;
    rc = gossip_check(c, sender, head, len);
    if (rc == SC_E_NETWORK)
        rc = pending_add(c, sender, head, len);
    return rc;
}

int sc_gossip_retry_pending(sc_client *c)
{
    sc_kt_gossip_pending *v = NULL;
    size_t n = 0;
    int rc = sc_kt_gossip_pending_list(c, &v, &n);

    for (size_t i = 0; rc == SC_OK && i < n; i++) {
        rc = gossip_check(c, v[i].contact, v[i].head, v[i].head_len);
        if (rc == SC_OK)
            rc = sc_kt_gossip_pending_delete(c, v[i].id);
    }
    sc_kt_gossip_pending_free(v, n);
    return rc;
}
