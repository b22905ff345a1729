/*
 * client/core/retry.c -- rate-limited automatic fresh sessions and retry
 * requests (issue 10; docs/protocol.md "Retry requests").
 *
 * The receiver of an envelope it cannot decrypt (recv.c) starts a fresh
 * session with the sending device and, in the same key-only Content, asks
 * it to send the message again (RetryRequest) -- at most once per peer
 * device per SC_RESET_INTERVAL_MS. The message is named by the envelope's
 * server timestamp: the one thing about it the receiver can read, and what
 * the sender got back from the server for that send (SendResponse).
 *
 * The sender keeps the Content of every history-backed send to another
 * account (send.c, after the server accepted it) for SC_RETRY_KEEP_MS, and
 * answers a request once per (requesting device, message).
 *
 * Config keys (client_config, no schema change; each pruned when written):
 *   session_reset:NAME.DEVICE    last automatic fresh session with that
 *                                device (ms); pruned after the interval
 *   retry_sent:SERVER_TS:DEST    packed Content sent to DEST, accepted by the
 *                                server at SERVER_TS; pruned after 24 h
 *   retry_done:SERVER_TS:NAME.DEVICE  that request was answered (ms);
 *                                pruned after 24 h
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "retry.h"
#include "store.h"

#define RESET_PREFIX "session_reset:"
#define SENT_PREFIX "retry_sent:"
#define DONE_PREFIX "retry_done:"

int sc_reset_claim(sc_client *c, const char *name, uint32_t device_id, uint64_t now_ms,
                   bool *allowed, uint64_t *last_ms)
{
    char key[96];
    uint64_t last = 0;
    int rc;

    *allowed = false;
    *last_ms = 0;
    snprintf(key, sizeof key, RESET_PREFIX "%s.%u", name, device_id);
    rc = sc_cfg_get_u64(c, key, &last);
    if (rc != SC_OK && rc != SC_E_NOT_FOUND)
        return rc;
    /* a clock set back by more than the interval does not block for ever */
    if (rc == SC_OK && last + SC_RESET_INTERVAL_MS > now_ms &&
        last < now_ms + SC_RESET_INTERVAL_MS) {
        *last_ms = last;
        return SC_OK;
    }
    if (now_ms > SC_RESET_INTERVAL_MS) {
        rc = sc_cfg_prune(c, RESET_PREFIX, now_ms - SC_RESET_INTERVAL_MS, false);
        if (rc != SC_OK)
            return rc;
    }
    rc = sc_cfg_set_u64(c, key, now_ms);
    if (rc == SC_OK)
        *allowed = true;
    return rc;
}

int sc_retry_note_sent(sc_client *c, const char *dest, uint64_t server_ts, const uint8_t *content,
                       size_t len)
{
    char key[96];
    uint64_t now = sc_now_ms();
    int rc;

    if (server_ts == 0 || (c->username && strcmp(dest, c->username) == 0))
        return SC_OK;
    if (now > SC_RETRY_KEEP_MS) {
        rc = sc_cfg_prune(c, SENT_PREFIX, now - SC_RETRY_KEEP_MS, true);
        if (rc == SC_OK)
            rc = sc_cfg_prune(c, DONE_PREFIX, now - SC_RETRY_KEEP_MS, true);
        if (rc != SC_OK)
            return rc;
    }
    snprintf(key, sizeof key, SENT_PREFIX "%llu:%s", (unsigned long long)server_ts, dest);
    return sc_cfg_set_blob(c, key, content, len);
}

/* The key-only Content that the request's account's other devices get in
 * the same send (the server wants every device covered). */
static int null_content(sc_client *c, uint8_t **out, size_t *len)
{
    Sotto__Content__Content ct = SOTTO__CONTENT__CONTENT__INIT;
    Sotto__Content__NullMessage nm = SOTTO__CONTENT__NULL_MESSAGE__INIT;

    ct.timestamp = sc_next_timestamp(c);
    ct.null_message = &nm;
    *len = sotto__content__content__get_packed_size(&ct);
    *out = malloc(*len ? *len : 1);
    if (*out == NULL)
        return sc_fail(c, SC_E_INTERNAL, "out of memory");
    sotto__content__content__pack(&ct, *out);
    return SC_OK;
}

int sc_retry_answer(sc_client *c, const char *from, uint32_t from_device,
                    const Sotto__Content__RetryRequest *rq)
{
    char sent_key[96], done_key[96];
    uint8_t *content = NULL, *rest = NULL;
    size_t len = 0, rest_len = 0;
    uint64_t now = sc_now_ms(), done = 0;
    int rc;

    if (rq == NULL || rq->device_id != c->device_id || rq->server_timestamp == 0 ||
        (c->username && strcmp(from, c->username) == 0))
        return SC_OK;
    if (rq->server_timestamp + SC_RETRY_KEEP_MS < now)
        return SC_OK; /* expired: the receiver's notice stays */
    snprintf(sent_key, sizeof sent_key, SENT_PREFIX "%llu:%s",
             (unsigned long long)rq->server_timestamp, from);
    snprintf(done_key, sizeof done_key, DONE_PREFIX "%llu:%s.%u",
             (unsigned long long)rq->server_timestamp, from, from_device);
    rc = sc_cfg_get_u64(c, done_key, &done);
    if (rc == SC_OK)
        return SC_OK; /* answered once already */
    if (rc != SC_E_NOT_FOUND)
        return rc;
    rc = sc_cfg_get_blob(c, sent_key, &content, &len);
    if (rc == SC_E_NOT_FOUND)
        return SC_OK; /* not a message we sent this account (or pruned) */
    if (rc != SC_OK)
        return rc;
    /* recorded first: a request is answered at most once, even if the
     * send below fails */
    rc = sc_cfg_set_u64(c, done_key, now);
    if (rc == SC_OK)
        rc = null_content(c, &rest, &rest_len);
    if (rc == SC_OK)
        rc = sc_connect(c);
    if (rc == SC_OK)
        rc = sc_deliver_split(c, from, from_device, content, len, rest, rest_len);
    sodium_memzero(content, len);
    free(content);
    free(rest);
    return rc;
}
