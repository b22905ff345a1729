/*
 * client/core/net.h -- the client's connections to sottod (internal):
 * the API WebSocket (wss://HOST:PORT/v1/websocket, libwebsockets client)
 * and the attachment transfers (HTTPS PUT/GET /v1/attachments/{id}).
 *
 * Trust: either a pinned certificate (SHA-256 of the leaf certificate's
 * DER, 64 hex chars, compared in constant time during the TLS handshake,
 * before any byte of HTTP is sent, and again after it) or a CA file (normal
 * chain and host name verification). TLS 1.3 only.
 *
 * The API calls are blocking: they run the lws event loop until the answer
 * arrives or a timeout expires. Pushed envelopes that arrive meanwhile are
 * queued and handed out by sc_conn_next_push().
 */
#ifndef SOTTO_CLIENT_NET_H
#define SOTTO_CLIENT_NET_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "api.pb-c.h"

typedef struct sc_conn sc_conn;

typedef struct sc_server {
    const char *url;     /* "https://host:port" */
    const char *pin_hex; /* or NULL */
    const char *ca_file; /* or NULL */
} sc_server;

/* Parses "https://HOST[:PORT][/]" (port default 443). 0 or -1. */
int sc_url_parse(const char *url, char *host, size_t host_cap, int *port);

/* Connects the WebSocket (handshake done, pin checked). 0, or -1 with err. */
int sc_conn_open(sc_conn **out, const sc_server *srv, int timeout_ms, char *err, size_t errlen);
void sc_conn_free(sc_conn *c);
bool sc_conn_alive(const sc_conn *c);

/* RFC 9266 tls-exporter of this connection (32 bytes). 0 or -1. */
int sc_conn_exporter(sc_conn *c, uint8_t out[32]);

/*
 * Sends `req` (its id is assigned here) and waits for the answer frame,
 * returned in *resp (free with sotto__api__server_frame__free_unpacked(x,
 * NULL)). 0 on an answer (check its status), -1 on network failure/timeout.
 */
int sc_conn_request(sc_conn *c, Sotto__Api__ClientFrame *req, Sotto__Api__ServerFrame **resp,
                    int timeout_ms, char *err, size_t errlen);

/* Acks push `push_id` (queued for sending; flushed by the next call). */
int sc_conn_ack(sc_conn *c, uint64_t push_id);
/* Runs the loop until queued writes (acks) are sent or timeout. */
int sc_conn_flush(sc_conn *c, int timeout_ms);

/*
 * Next pushed frame, waiting up to timeout_ms:
 *   SC_CONN_PUSH_FRAME  *frame is a parsed push (owned by the caller)
 *   SC_CONN_PUSH_BAD    a push whose envelope does not parse: *bad_push_id
 *                       is its id (ack it), why says so
 *   SC_CONN_PUSH_NONE   timeout, *stop, or the connection closed
 *                       (sc_conn_alive says which)
 */
enum { SC_CONN_PUSH_NONE = 0, SC_CONN_PUSH_FRAME = 1, SC_CONN_PUSH_BAD = 2 };
int sc_conn_next_push(sc_conn *c, int timeout_ms, volatile int *stop,
                      Sotto__Api__ServerFrame **frame, uint64_t *bad_push_id, char *why,
                      size_t whylen);

/* true once after the server sent a prekeys_low notice. */
bool sc_conn_take_prekeys_low(sc_conn *c);
/* true once after the server said the account's device list changed (the
 * list itself is fetched and verified by the core; the notice is a hint). */
bool sc_conn_take_device_list_changed(sc_conn *c);
/* true when the server said this device was removed. */
bool sc_conn_device_removed(const sc_conn *c);

/* ---- attachments over HTTPS ---- */

typedef void (*sc_progress_fn)(void *ud, uint64_t done, uint64_t total);
/* Source of the PUT body: fills buf with up to cap bytes; returns bytes
 * written (0 only at the end) or -1 on error. */
typedef long (*sc_body_fn)(void *ud, uint8_t *buf, size_t cap);
/* Sink of the GET body: 0 or -1 (abort). */
typedef int (*sc_sink_fn)(void *ud, const uint8_t *p, size_t n);

/* PUT `path` with exactly `len` body bytes from `body`. *http_status gets
 * the answer (201 expected). 0, or -1 on network failure. `share`: an
 * open API connection whose event loop (context) the transfer joins, or
 * NULL (then a context of its own). */
int sc_http_put(sc_conn *share, const sc_server *srv, const char *path, uint64_t len,
                sc_body_fn body, void *body_ud, sc_progress_fn progress, void *pud,
                int *http_status, char *err, size_t errlen);
/* GET `path`; at most max_len body bytes. 0; -2 when the server sent more
 * than max_len bytes (the excess never reaches the sink); -1 on other
 * failures. */
int sc_http_get(sc_conn *share, const sc_server *srv, const char *path, uint64_t max_len,
                sc_sink_fn sink, void *sink_ud, sc_progress_fn progress, void *pud,
                int *http_status, char *err, size_t errlen);

/* From another thread: makes the thread servicing c's loop return from its
 * wait now (lws_cancel_service). c must stay alive meanwhile (the caller
 * serialises with sc_conn_free: sc_wake in lock.c). */
void sc_conn_cancel_wait(sc_conn *c);

#endif /* SOTTO_CLIENT_NET_H */
