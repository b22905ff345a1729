/*
 * server/sottod.h -- the server object and the per-connection state shared
 * by the network layer (net.c), the API handlers (api.c), delivery
 * (delivery.c) and attachments (attach.c).
 *
 * Layers, each calling only those below it:
 *   main -> net -> {api, attach} -> delivery -> conn -> store
 * (main.c: command line; net.c: event loop, HTTP routes, start-up; api.c:
 * WebSocket requests; attach.c: attachment HTTP; delivery.c: pushes and
 * acks; conn.c: connections, transmit queues, registry; store/: storage).
 * api.c also asks attach.c for an upload slot (its sibling).
 *
 * Design: one thread runs the libwebsockets event loop and everything in
 * this header; the only other thread is the store's writer, which talks back
 * through sottod_store_run_completions() on the loop thread (woken with
 * lws_cancel_service). So nothing here needs locks. A connection object is
 * reference counted: the socket holds one reference and every store
 * operation in flight for it holds one, so a completion that arrives after
 * the peer hung up finds `wsi == NULL` and drops its answer.
 */
#ifndef SOTTOD_SOTTOD_H
#define SOTTOD_SOTTOD_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include <libwebsockets.h>

#include "acache.h"
#include "config.h"
#include "disk.h"
#include "ratelimit.h"
#include "store/store.h"

#define SOTTOD_USERNAME_MIN_LEN 3
#define SOTTOD_USERNAME_MAX_LEN 32
#define SOTTOD_NONCE_BYTES 32
#define SOTTOD_NONCE_TTL_S 60
#define SOTTOD_MAX_AUTH_FAILURES 3
#define SOTTOD_MAX_PREAUTH_REQUESTS 16 /* requests before login, then the connection is closed */
#define SOTTOD_MAX_INFLIGHT 32         /* requests in flight after login */
#define SOTTOD_MAX_INFLIGHT_PREAUTH 8  /* ... and before */
#define SOTTOD_PUSH_WINDOW 64          /* unacked pushes per connection */
#define SOTTOD_TX_MAX (16u << 20)      /* bytes queued to a slow reader before we drop it */
#define SOTTOD_PREKEYS_PER_UPLOAD 100
#define SOTTOD_PREKEYS_MAX_STORED 1000
#define SOTTOD_CLOSE_TIMEOUT_S 5   /* a closing connection that does not read is dropped */
#define SOTTOD_UPLOAD_MIN_BPS 4096 /* attachment uploads slower than this on average are cut */
#define SOTTOD_UPLOAD_GRACE_S 30   /* ... after this many seconds */

typedef struct sottod_server sottod_server;
typedef struct sottod_conn sottod_conn;

typedef struct sottod_metrics {
    uint64_t connections_total;
    uint64_t connections_open;   /* gauge: WebSocket connections */
    uint64_t connections_authed; /* gauge */
    uint64_t http_requests_total;
    uint64_t requests_total;
    uint64_t protocol_errors_total;
    uint64_t rate_limited_total;
    uint64_t registrations_total;
    uint64_t logins_total;
    uint64_t login_failures_total;
    uint64_t envelopes_queued_total;
    uint64_t envelopes_pushed_total;
    uint64_t envelopes_delivered_total; /* acked */
    uint64_t envelopes_expired_total;
    uint64_t sends_mismatched_total;
    uint64_t sends_queue_full_total;
    uint64_t bundles_total;
    uint64_t prekeys_handed_out_total;
    uint64_t attachments_uploaded_total;
    uint64_t attachments_expired_total;
    /* commit latency of writes as seen by the network (submit -> done) */
    uint64_t commit_count;
    uint64_t commit_usec_sum;
    uint64_t commit_usec_bucket[8]; /* <=1,2,5,10,25,50,100,+Inf ms */
} sottod_metrics;

/* One queued outgoing WebSocket (or HTTP) message; LWS_PRE bytes of headroom. */
typedef struct sottod_tx {
    struct sottod_tx *next;
    size_t len;
    uint8_t buf[]; /* LWS_PRE + len */
} sottod_tx;

/* Per-device state that outlives a connection: the rate-limit buckets (so
 * reconnecting does not refill them). Kept in srv->devs while a connection
 * of the device holds it or its buckets are not yet full again. */
typedef struct sottod_devstate {
    struct sottod_devstate *next;
    sottod_addr addr;
    int refs; /* connections of this device holding it */
    sottod_bucket send_bucket, bundle_bucket;
} sottod_devstate;

/* A push waiting for its ack. */
typedef struct sottod_push_slot {
    uint64_t push_id; /* 0 = free */
    uint8_t env_id[SOTTOD_ENVELOPE_ID_BYTES];
} sottod_push_slot;

enum { SOTTOD_CONN_WS = 1, SOTTOD_CONN_HTTP = 2 };

struct sottod_conn {
    sottod_server *srv;
    struct lws *wsi; /* NULL once the socket is gone */
    int refs;
    uint8_t kind;

    /* WebSocket receive reassembly (allocated per message, freed after) */
    uint8_t *rx;
    size_t rx_len, rx_cap;
    bool rx_oversized;

    /* transmit queue */
    sottod_tx *tx_head, *tx_tail;
    size_t tx_bytes;
    bool close_after_tx;
    uint16_t close_code;

    /* authentication */
    bool authed;
    bool has_nonce;
    uint8_t auth_failures;
    uint8_t preauth_requests;
    uint8_t nonce[SOTTOD_NONCE_BYTES];
    int64_t nonce_at;
    sottod_addr addr;
    uint8_t auth_key[SOTTOD_AUTH_KEY_BYTES]; /* the device's, at login (revalidation) */
    char username[SOTTOD_USERNAME_MAX + 1];
    /* registration source (ratelimit.h): keyed hashes of the peer address
     * (or of a trusted proxy's X-Forwarded-For) and of its prefix, set
     * when the WebSocket opens; never the address itself */
    bool src_known;
    uint64_t src_addr_key, src_prefix_key;
    uint16_t inflight;       /* requests waiting for an answer */
    sottod_bucket kt_bucket; /* public key-transparency requests (kt.h) */
    /* sealed sends on a connection that is not logged in (they do not
     * count towards SOTTOD_MAX_PREAUTH_REQUESTS): rate_send_per_min/burst */
    sottod_bucket sealed_bucket;
    /* set by the first sealed send whose delivery token checked out: the
     * connection is a (sealed) sender's from then on: frame_max instead of
     * preauth_frame_max, and no login deadline (docs/api.md) */
    bool sealed_conn;
    /* counted in srv->sealed_conns_open (and, with src_known, in
     * srv->sealed_conn_sources) until it closes or logs in */
    bool sealed_counted;

    /* delivery: cursor in the device's queue; pushes awaiting an ack */
    int64_t cursor;
    sottod_push_slot *push; /* SOTTOD_PUSH_WINDOW slots, allocated on first push */
    uint16_t push_n;
    uint64_t next_push_id;
    bool fill_busy;
    bool queue_more; /* the queue may hold envelopes after the cursor */
    bool low_notified;
    uint32_t prekeys_pending; /* one-time prekeys submitted, not yet committed */

    sottod_devstate *dev; /* while logged in */

    /* registry chain (addr -> conn) */
    sottod_conn *reg_next;

    /* HTTP (attachments) */
    int http_fd;
    uint64_t http_expected, http_received;
    int64_t http_started_us;
    uint8_t http_att_id[SOTTOD_ATTACHMENT_ID_BYTES];
    int http_status; /* answer to send when writeable, 0 = none pending */
    bool http_failed;
};

struct sottod_server {
    sottod_config cfg;
    sottod_store *store;
    struct lws_context *ctx;
    struct lws_vhost *vhost;
    struct lws_vhost *metrics_vhost; /* metrics_listen (NULL = off or not bound) */
    int metrics_port;
    SSL_CTX *ssl_ctx; /* the vhost's, captured at creation (SIGHUP reload) */
    char cert_path[SOTTOD_PATH_MAX];
    char key_path[SOTTOD_PATH_MAX];
    char attach_dir[SOTTOD_PATH_MAX];
    char fingerprint[65];
    int port;
    bool invite_only;

    volatile sig_atomic_t sig_term;
    volatile sig_atomic_t sig_hup;
    volatile sig_atomic_t sig_usr1; /* an admin command changed accounts */
    bool draining;
    char pid_path[SOTTOD_PATH_MAX + 16];
    int lock_fd; /* holds DATA_DIR/sottod.lock (datadir.h); -1 = none */
#ifdef SOTTOD_TEST_HOOKS
    /* sottod-test only (never in the installed sottod): the next N send
     * requests that would be queued fail as a storage error does
     * (SOTTOD_TEST_FAIL_SEND=N in the environment at start). */
    uint64_t test_fail_send;
#endif

    /* recipient accounts for sends (acache.h) */
    sottod_acache acache;

    /* per-device state (rate limits) */
    sottod_devstate **devs;
    size_t devs_buckets, devs_count;

    /* device removals submitted and not yet committed (last-device rule) */
    sottod_addr removing[SOTTOD_MAX_INFLIGHT * 4];
    size_t n_removing;

    /* bytes of unfinished incoming WebSocket messages held over every
     * connection (sum of rx_cap), kept under config rx_buffer_budget */
    size_t rx_buffered;

    /* the global disk budget (disk.h) */
    sottod_disk disk;

    /* attachment blobs being fsynced by finisher threads (attach.c) */
    pthread_mutex_t att_mu;
    struct finish_job *att_done; /* finished, under att_mu */
    size_t att_running;          /* started, not yet taken back (loop only) */

    /* scratch buffer for coalescing queued messages into one TLS write */
    uint8_t *txbuf;
    size_t txbuf_cap;

    /* registry of logged-in devices */
    sottod_conn **reg;
    size_t reg_buckets, reg_count;

    sottod_bucket register_bucket;
    /* registrations per source address and prefix (ratelimit.h), keyed by
     * SipHash under reg_src_key (random per process); reg_proxy = the
     * trusted proxy's address when register_proxy is set */
    sottod_source_table reg_sources, reg_prefixes;
    uint8_t reg_src_key[16];
    bool reg_proxy_set;
    uint8_t reg_proxy[SOTTOD_SOURCE_ADDR_BYTES];
    /* abuse limits (ratelimit.h): (sender account, recipient account) ->
     * inbound send rate; (target account, 0) -> one-time prekey fetches */
    sottod_bucket_table pair_buckets;
    sottod_bucket_table prekey_buckets;
    /* (0, recipient account) -> sealed sends to it, all senders together
     * (rate_sealed_per_min / rate_sealed_burst) */
    sottod_bucket_table sealed_buckets;
    /* connections upgraded by a sealed send and not logged in (sealed_counted):
     * in all, and per source address key (config sealed_conns_*) */
    size_t sealed_conns_open;
    sottod_count_table sealed_conn_sources;
    struct sottod_kt *kt;         /* key transparency (kt.h) */
    struct sottod_sealed *sealed; /* sealed sender keys (sealed.h) */
    sottod_metrics m;
    lws_sorted_usec_list_t housekeeping;
};

/* ---- conn.c: connections, transmit queue, registry ---------------------- */
sottod_conn *sottod_conn_new(sottod_server *srv, struct lws *wsi, uint8_t kind);
void sottod_conn_ref(sottod_conn *c);
void sottod_conn_unref(sottod_conn *c);
/* Called when lws reports the socket closed: forgets wsi, drops from the
 * registry, drops the socket's reference. (For an HTTP connection the
 * caller first lets attach.c discard an interrupted upload.) */
void sottod_conn_closed(sottod_conn *c);
/* Queues an already-built tx (takes ownership). Returns 0, or -1 if the
 * connection is gone or its queue is over SOTTOD_TX_MAX (then it is being
 * closed); tx is freed either way on failure. */
int sottod_conn_send_tx(sottod_conn *c, sottod_tx *tx);
/* A tx with room for len bytes after LWS_PRE headroom; NULL if out of memory. */
sottod_tx *sottod_tx_new(size_t len);
/* Writes a complete small HTTP response (headers + body) and finishes the
 * transaction. Returns what the lws callback should return. */
int sottod_http_respond(struct lws *wsi, unsigned status, const char *content_type,
                        const char *body, size_t len);
/* Marks the connection to close (WebSocket close code) once its queue is sent. */
void sottod_conn_close_after_tx(sottod_conn *c, uint16_t code);
/* Writes the next queued message; called on LWS_CALLBACK_SERVER_WRITEABLE.
 * Returns -1 when lws should close the connection. */
int sottod_conn_on_writeable(sottod_conn *c);

int sottod_registry_init(sottod_server *srv);
void sottod_registry_free(sottod_server *srv);
/* Adds c under c->addr; an older connection of the same device is closed. */
void sottod_registry_add(sottod_server *srv, sottod_conn *c);
void sottod_registry_remove(sottod_server *srv, sottod_conn *c);
/* Removes c from the registry and counts it as no longer logged in
 * (authed = false); the caller closes it. */
void sottod_registry_evict(sottod_server *srv, sottod_conn *c);
sottod_conn *sottod_registry_find(sottod_server *srv, sottod_addr addr);
/* Every logged-in connection, as a malloc'd array (caller frees; the
 * connections are not referenced) of *n entries; NULL if none or out of
 * memory. A snapshot: the caller may then edit the registry. */
sottod_conn **sottod_registry_list(sottod_server *srv, size_t *n);

/* Per-device state: get (creating it with full buckets) and take a
 * reference; release drops it. sweep frees unreferenced entries whose
 * buckets are full again (housekeeping). */
sottod_devstate *sottod_devstate_get(sottod_server *srv, sottod_addr addr);
void sottod_devstate_release(sottod_server *srv, sottod_devstate *d);
void sottod_devstate_sweep(sottod_server *srv);
void sottod_devstate_free_all(sottod_server *srv);

/* ---- api.c: WebSocket requests ------------------------------------------ */
/* Handles one complete client message. Returns 0, or -1 after queueing a
 * protocol error (the connection will close). */
int sottod_api_on_message(sottod_conn *c, const uint8_t *data, size_t len);
/* Sends a notice that the device ran low on one-time prekeys. */
void sottod_api_notice_prekeys_low(sottod_conn *c, uint32_t remaining);
/* Sends ServerFrame{id, status, error} and closes the connection after it. */
void sottod_api_protocol_error(sottod_conn *c, uint64_t id, const char *why, uint16_t code);
/* Sends the device_removed notice and closes the connection (4001). */
void sottod_api_notice_device_removed(sottod_conn *c);
/* Closes (notice device_removed, code 4001) every logged-in connection
 * whose device no longer exists in the store: after `sottod admin
 * delete-account` (SIGUSR1) and once a minute. */
void sottod_api_revalidate_sessions(sottod_server *srv);
/* A connection upgraded by a sealed send (c->sealed_counted) closed or
 * logged in: gives its place under sealed_conns_per_source/_share back.
 * No-op otherwise. */
void sottod_api_sealed_conn_release(sottod_conn *c);

/* ---- delivery.c: pushing queued envelopes and acks ---------------------- */
/* Pushes queued envelopes while the window has room (after login, after a
 * send to this device committed, after an ack). */
void sottod_delivery_fill(sottod_conn *c);
/* Handles an ack for push `push_id`. */
void sottod_delivery_ack(sottod_conn *c, uint64_t push_id);
/* Something was queued for addr: push it if the device is online. */
void sottod_delivery_wake(sottod_server *srv, sottod_addr addr);

/* ---- attach.c: HTTP attachments ----------------------------------------- */
/* Handles LWS_CALLBACK_HTTP for /v1/attachments/...; returns lws's value. */
int sottod_attach_http(sottod_conn *c, const char *uri, bool is_put);
int sottod_attach_body(sottod_conn *c, const uint8_t *data, size_t len);
int sottod_attach_body_done(sottod_conn *c);
int sottod_attach_writeable(sottod_conn *c);
/* The HTTP connection is going: an interrupted upload leaves nothing
 * behind. net.c calls it before sottod_conn_closed(). */
void sottod_attach_closed(sottod_conn *c);
/* Creates an upload slot; calls back with the id or an error status. */
typedef void (*sottod_attach_slot_fn)(void *arg, int status, const uint8_t *id);
int sottod_attach_slot(sottod_server *srv, sottod_attach_slot_fn fn, void *arg);
/* Takes back uploads whose blob was fsynced by a finisher thread and
 * records them (loop thread; after every wake-up). */
void sottod_attach_run_finished(sottod_server *srv);
/* Deletes expired blobs (housekeeping). */
void sottod_attach_expire(sottod_server *srv);

/* ---- misc (conn.c) -------------------------------------------------------- */
int64_t sottod_now_ms(void);
/* Records the latency of one write (metrics). */
void sottod_metrics_commit(sottod_server *srv, int64_t submitted_us);
int64_t sottod_mono_us(void);
/* True if name is 3..32 chars of [a-z0-9_.]. */
bool sottod_username_valid(const char *name, size_t len);
/* Logs a failed store call as `event` (error level) with op (may be NULL),
 * the status and, for SOTTOD_STORE_ERR, the store's cause in words
 * (sottod_store_last_error: SQLite's message and the OS error, e.g. disk
 * full) instead of a bare number. */
void sottod_log_store_error(sottod_server *srv, const char *event, const char *op, int status);

#endif /* SOTTOD_SOTTOD_H */
