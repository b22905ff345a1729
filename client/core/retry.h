/*
 * client/core/retry.h -- rate-limited automatic fresh sessions and retry
 * requests (issue 10; docs/protocol.md "Retry requests"). Internal to
 * client/core.
 */
#ifndef SOTTO_CLIENT_RETRY_H
#define SOTTO_CLIENT_RETRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "content.pb-c.h"
#include "internal.h"

/* At most one automatic fresh session (with its retry request) per peer
 * device in this many ms. */
#define SC_RESET_INTERVAL_MS (60ull * 60 * 1000)
/* A sent message can be re-sent on request for this many ms after the
 * server accepted it (its server timestamp). */
#define SC_RETRY_KEEP_MS (24ull * 60 * 60 * 1000)

/* Whether an undecryptable envelope from (name, device_id) at `now_ms` may
 * start a fresh session: *allowed is true (and `now_ms` recorded, inside the
 * caller's transaction) when none was started within SC_RESET_INTERVAL_MS;
 * otherwise false and *last_ms says when the last one was. Prunes records
 * older than the interval. SC_OK or SC_E_STORE. */
int sc_reset_claim(sc_client *c, const char *name, uint32_t device_id, uint64_t now_ms,
                   bool *allowed, uint64_t *last_ms);

/* After a successful send of history-backed content (packed Content,
 * `len` bytes, not padded) to `dest` that the server accepted at
 * `server_ts`: keeps a copy for SC_RETRY_KEEP_MS so that a retry request
 * naming (dest, server_ts) can be answered; prunes older copies. Our own
 * account is not recorded. SC_OK or SC_E_STORE. */
int sc_retry_note_sent(sc_client *c, const char *dest, uint64_t server_ts, const uint8_t *content,
                       size_t len);

/* A retry request `rq` from device `from_device` of contact `from`
 * (decrypted; called outside any transaction): when it names this device
 * and a message we sent `from` within SC_RETRY_KEEP_MS, not answered for
 * that device before, that message's Content (same timestamp, so the
 * receiver de-duplicates) is sent again to that device only, over the
 * session its request started. Anything else is ignored (SC_OK). */
int sc_retry_answer(sc_client *c, const char *from, uint32_t from_device,
                    const Sotto__Content__RetryRequest *rq);

#endif
