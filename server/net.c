/*
 * server/net.c -- the event core.
 *
 * Design: one libwebsockets context, one vhost, one protocol callback that
 * serves both HTTP (healthz, metrics, attachments) and the WebSocket at
 * /v1/websocket. The store's writer thread wakes the loop with
 * lws_cancel_service(); LWS_CALLBACK_EVENT_WAIT_CANCELLED then runs the
 * store completions (answers to senders, pushes to recipients) on this
 * thread. Signals only set flags and wake the loop. Per connection, the
 * receive side reassembles one WebSocket message at a time under a cap
 * (preauth_frame_max before login, frame_max after): an oversized or
 * malformed message gets one error frame and a close, nothing else is
 * affected. Housekeeping (envelope and attachment expiry) runs every minute
 * from an lws timer.
 */
#include "net.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "datadir.h"
#include "kt.h"
#include "log.h"
#include "sealed.h"
#include "sottod.h"
#include "sotto/keys.h"
#include "tls.h"

#define HOUSEKEEPING_US (60LL * 1000000)

typedef struct pss {
    sottod_conn *c;
} pss;

static sottod_server *g_srv; /* for the signal handler only */

/* ---- HTTP routes ----------------------------------------------------------- */

static int metrics_text(sottod_server *srv, char *out, size_t cap)
{
    static const char *const le[8] = {"0.001", "0.002", "0.005", "0.01",
                                      "0.025", "0.05",  "0.1",   "+Inf"};
    const sottod_metrics *m = &srv->m;
    size_t o = 0;
    int n;
#define EMIT(...)                                                                                  \
    do {                                                                                           \
        n = snprintf(out + o, cap - o, __VA_ARGS__);                                               \
        if (n < 0 || (size_t)n >= cap - o)                                                         \
            return -1;                                                                             \
        o += (size_t)n;                                                                            \
    } while (0)
#define COUNTER(name, help, v)                                                                     \
    EMIT("# HELP " name " " help "\n# TYPE " name " counter\n" name " %llu\n",                     \
         (unsigned long long)(v))
#define GAUGE(name, help, v)                                                                       \
    EMIT("# HELP " name " " help "\n# TYPE " name " gauge\n" name " %llu\n",                       \
         (unsigned long long)(v))
    GAUGE("sottod_connections", "Open WebSocket connections.", m->connections_open);
    GAUGE("sottod_connections_authenticated", "Logged-in WebSocket connections.",
          m->connections_authed);
    COUNTER("sottod_connections_total", "WebSocket connections accepted.", m->connections_total);
    COUNTER("sottod_http_requests_total", "Plain HTTP requests.", m->http_requests_total);
    COUNTER("sottod_requests_total", "API requests received.", m->requests_total);
    COUNTER("sottod_protocol_errors_total", "Connections closed for a malformed frame.",
            m->protocol_errors_total);
    COUNTER("sottod_rate_limited_total", "Requests refused by a rate limit.",
            m->rate_limited_total);
    COUNTER("sottod_registrations_total", "Accounts registered.", m->registrations_total);
    COUNTER("sottod_login_failures_total", "Failed logins and registrations.",
            m->login_failures_total);
    COUNTER("sottod_envelopes_queued_total", "Envelopes committed to device queues.",
            m->envelopes_queued_total);
    /* Issue 12: nothing that follows one user. No pushed/delivered
     * counters and no total queue depth (a jump in any of them tells when a
     * recipient with queued envelopes came online), no login counter. */
    COUNTER("sottod_envelopes_expired_total", "Envelopes deleted unacked after their TTL.",
            m->envelopes_expired_total);
    /* Store stats are taken at most once a second. */
    static sottod_store_stats ss;
    static int64_t ss_at = INT64_MIN / 2;
    int64_t now_us = sottod_mono_us();
    if (now_us - ss_at >= 1000000) {
        memset(&ss, 0, sizeof(ss));
        sottod_store_stats_get(srv->store, &ss);
        ss_at = now_us;
    }
    COUNTER("sottod_store_scrubs_total",
            "WAL checkpoints that left no deleted row behind (scrub_delay_s).", ss.scrubs);
    GAUGE("sottod_store_pending_ops", "Writes submitted and not yet executed.", ss.pending_ops);
    COUNTER("sottod_store_commits_total", "Transactions (group commits) by the writer.",
            ss.batches);
    COUNTER("sottod_store_ops_total", "Write operations executed.", ss.ops);
    GAUGE("sottod_store_last_batch_size", "Operations in the last committed batch.",
          ss.last_batch_ops);
    EMIT("# HELP sottod_store_batch_size_avg Operations per commit since start.\n"
         "# TYPE sottod_store_batch_size_avg gauge\nsottod_store_batch_size_avg %.3f\n",
         ss.batches ? (double)ss.ops / (double)ss.batches : 0.0);
    EMIT("# HELP sottod_store_commit_seconds_total Time spent in BEGIN..COMMIT.\n"
         "# TYPE sottod_store_commit_seconds_total counter\nsottod_store_commit_seconds_total "
         "%.6f\n",
         (double)ss.commit_ns_total / 1e9);
    EMIT("# HELP sottod_store_last_commit_seconds Duration of the last commit.\n"
         "# TYPE sottod_store_last_commit_seconds gauge\nsottod_store_last_commit_seconds %.6f\n",
         (double)ss.last_commit_ns / 1e9);
    COUNTER("sottod_sends_mismatched_total", "Sends refused for a stale device list.",
            m->sends_mismatched_total);
    COUNTER("sottod_sends_queue_full_total", "Sends refused for a full queue.",
            m->sends_queue_full_total);
    COUNTER("sottod_bundles_total", "Prekey bundle fetches answered.", m->bundles_total);
    COUNTER("sottod_prekeys_handed_out_total", "One-time prekeys handed out.",
            m->prekeys_handed_out_total);
    COUNTER("sottod_attachments_uploaded_total", "Attachments uploaded.",
            m->attachments_uploaded_total);
    COUNTER("sottod_attachments_expired_total", "Attachments deleted after their TTL.",
            m->attachments_expired_total);
    EMIT("# HELP sottod_commit_latency_seconds Time from submitting a write to its durable "
         "commit.\n# TYPE sottod_commit_latency_seconds histogram\n");
    uint64_t cum = 0;
    for (int i = 0; i < 8; i++) {
        cum += m->commit_usec_bucket[i];
        EMIT("sottod_commit_latency_seconds_bucket{le=\"%s\"} %llu\n", le[i],
             (unsigned long long)cum);
    }
    EMIT("sottod_commit_latency_seconds_sum %.6f\nsottod_commit_latency_seconds_count %llu\n",
         (double)m->commit_usec_sum / 1e6, (unsigned long long)m->commit_count);
#undef GAUGE
#undef COUNTER
#undef EMIT
    return (int)o;
}

static int metrics_respond(sottod_server *srv, struct lws *wsi)
{
    char *buf = malloc(16384);
    if (buf == NULL)
        return -1;
    int n = metrics_text(srv, buf, 16384);
    int r = n < 0 ? sottod_http_respond(wsi, 500, "text/plain", "error\n", 6)
                  : sottod_http_respond(wsi, 200, "text/plain; version=0.0.4", buf, (size_t)n);
    free(buf);
    return r;
}

/* The metrics listener (metrics_listen, loopback by default, plain HTTP):
 * GET /metrics and /healthz only; no WebSocket, no attachments. */
static int metrics_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                            size_t len)
{
    struct lws_context *ctx = lws_get_context(wsi);
    sottod_server *srv = ctx != NULL ? lws_context_user(ctx) : NULL;

    if (reason == LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION)
        return 1;
    if (reason == LWS_CALLBACK_HTTP && srv != NULL) {
        const char *uri = in;
        if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) <= 0)
            return sottod_http_respond(wsi, 405, "text/plain", "method not allowed\n", 19);
        if (strcmp(uri, "/metrics") == 0)
            return metrics_respond(srv, wsi);
        if (strcmp(uri, "/healthz") == 0)
            return sottod_http_respond(wsi, srv->draining ? 503 : 200, "text/plain",
                                       srv->draining ? "draining\n" : "ok\n",
                                       srv->draining ? 9 : 3);
        return sottod_http_respond(wsi, 404, "text/plain", "not found\n", 10);
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/* The registration source of a new WebSocket (ratelimit.h): the TCP peer,
 * or, when the peer is the trusted register_proxy, the last address of its
 * X-Forwarded-For (no header or an unparsable one: the proxy itself). Only
 * keyed hashes are kept; the address is wiped. */
static void conn_source(sottod_server *srv, sottod_conn *c, struct lws *wsi)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    uint8_t a[SOTTOD_SOURCE_ADDR_BYTES];
    int fd = (int)lws_get_socket_fd(wsi);
    memset(&ss, 0, sizeof(ss));
    if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &sl) != 0 ||
        !sottod_source_from_sockaddr(&ss, sl, a))
        return;
    if (srv->reg_proxy_set && sodium_memcmp(a, srv->reg_proxy, sizeof(a)) == 0) {
        char xff[512];
        if (lws_hdr_copy(wsi, xff, sizeof(xff), WSI_TOKEN_X_FORWARDED_FOR) > 0) {
            uint8_t f[SOTTOD_SOURCE_ADDR_BYTES];
            if (sottod_source_xff_last(xff, f))
                memcpy(a, f, sizeof(a));
            sodium_memzero(f, sizeof(f));
        }
        sodium_memzero(xff, sizeof(xff));
    }
    sottod_source_keys(a, srv->reg_src_key, &c->src_addr_key, &c->src_prefix_key);
    c->src_known = true;
    sodium_memzero(a, sizeof(a));
    sodium_memzero(&ss, sizeof(ss));
}

static int http_route(sottod_server *srv, struct lws *wsi, pss *ps, const char *uri)
{
    bool is_put = lws_hdr_total_length(wsi, WSI_TOKEN_PUT_URI) > 0;
    bool is_get = lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0;
    srv->m.http_requests_total++;
    if (strncmp(uri, "/v1/attachments/", 16) == 0 && (is_put || is_get)) {
        if (ps->c == NULL) {
            ps->c = sottod_conn_new(srv, wsi, SOTTOD_CONN_HTTP);
            if (ps->c == NULL)
                return -1;
        }
        sottod_conn *c = ps->c;
        c->http_failed = false;
        c->http_status = 0;
        c->http_expected = c->http_received = 0;
        return sottod_attach_http(c, uri, is_put);
    }
    if (!is_get)
        return sottod_http_respond(wsi, 405, "text/plain", "method not allowed\n", 19);
    if (strcmp(uri, "/healthz") == 0)
        return sottod_http_respond(wsi, srv->draining ? 503 : 200, "text/plain",
                                   srv->draining ? "draining\n" : "ok\n", srv->draining ? 9 : 3);
    if (strcmp(uri, "/v1/websocket") == 0)
        return sottod_http_respond(wsi, 400, "text/plain", "websocket upgrade required\n", 27);
    return sottod_http_respond(wsi, 404, "text/plain", "not found\n", 10);
}

/* ---- WebSocket receive --------------------------------------------------------- */

static int ws_receive(sottod_conn *c, const uint8_t *in, size_t len)
{
    sottod_server *srv = c->srv;
    /* A connection that made an accepted sealed send (sealed_conn) never
     * logs in but is a sender's: frame_max as after login. */
    bool full = c->authed || c->sealed_conn;
    size_t cap = full ? srv->cfg.frame_max : srv->cfg.preauth_frame_max;
    bool first = lws_is_first_fragment(c->wsi);
    bool final = lws_is_final_fragment(c->wsi);
    if (c->close_after_tx)
        return 0; /* closing: ignore what is still arriving */
    if (first && !lws_frame_is_binary(c->wsi)) {
        sottod_api_protocol_error(c, 0, "text messages are not allowed", 1003);
        return 0;
    }
    if (c->rx_len + len > cap || c->rx_len + len < c->rx_len) {
        srv->rx_buffered -= c->rx_cap;
        free(c->rx);
        c->rx = NULL;
        c->rx_len = c->rx_cap = 0;
        sottod_api_protocol_error(c, 0, "frame too large", 1009);
        return 0;
    }
    if (first && final && c->rx_len == 0) {
        /* Fast path: a single-fragment message is handled in place. A
         * protocol error has already queued its answer and the close. */
        (void)sottod_api_on_message(c, in, len);
        return 0;
    }
    if (c->rx_len + len > c->rx_cap) {
        size_t ncap = c->rx_cap ? c->rx_cap : 4096;
        while (ncap < c->rx_len + len)
            ncap *= 2;
        if (ncap > cap)
            ncap = cap;
        /* The global budget for buffered incoming data (issue 12): the
         * connection that would exceed it is refused, nobody else. */
        if (srv->rx_buffered - c->rx_cap + ncap > srv->cfg.rx_buffer_budget) {
            srv->rx_buffered -= c->rx_cap;
            free(c->rx);
            c->rx = NULL;
            c->rx_len = c->rx_cap = 0;
            sottod_api_protocol_error(c, 0, "server busy: too much unfinished data, retry later",
                                      1013);
            return 0;
        }
        uint8_t *nrx = realloc(c->rx, ncap);
        if (nrx == NULL) {
            sottod_api_protocol_error(c, 0, "out of memory", 1011);
            return 0;
        }
        if (c->rx_cap == 0 && full) {
            /* A message started: it must be finished within
             * fragment_timeout_s (before login the auth deadline runs). */
            lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, (int)srv->cfg.fragment_timeout_s);
        }
        srv->rx_buffered = srv->rx_buffered - c->rx_cap + ncap;
        c->rx = nrx;
        c->rx_cap = ncap;
    }
    memcpy(c->rx + c->rx_len, in, len);
    c->rx_len += len;
    if (final) {
        if (full)
            lws_set_timeout(c->wsi, NO_PENDING_TIMEOUT, 0); /* finished in time */
        (void)sottod_api_on_message(c, c->rx, c->rx_len);
        srv->rx_buffered -= c->rx_cap;
        free(c->rx);
        c->rx = NULL;
        c->rx_len = c->rx_cap = 0;
    }
    return 0;
}

/* ---- the protocol callback ------------------------------------------------------ */

/* The socket of ps's connection is gone: upper layers first (an
 * interrupted upload is discarded), then the connection itself. */
static void conn_gone(pss *ps)
{
    if (ps->c->kind == SOTTOD_CONN_HTTP)
        sottod_attach_closed(ps->c);
    sottod_conn_closed(ps->c);
    ps->c = NULL;
}

static void do_reload(sottod_server *srv)
{
    char fp[SOTTOD_FINGERPRINT_HEX];
    srv->sig_hup = 0;
    if (srv->ssl_ctx == NULL ||
        sottod_tls_reload(srv->ssl_ctx, srv->cert_path, srv->key_path) != 0) {
        sottod_log(SOTTOD_LOG_ERROR, "tls_reload_failed", "kept=old_certificate");
        return;
    }
    if (sottod_tls_fingerprint(srv->cert_path, fp) == 0) {
        memcpy(srv->fingerprint, fp, sizeof(fp));
        printf("sottod: certificate sha256 %s\n", fp);
        fflush(stdout);
    }
    sottod_log(SOTTOD_LOG_INFO, "tls_reloaded", NULL);
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    struct lws_context *ctx = lws_get_context(wsi);
    sottod_server *srv = ctx != NULL ? lws_context_user(ctx) : NULL;
    pss *ps = (pss *)user;
    char uri[256];

    switch (reason) {
    case LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS:
        if (srv != NULL && user != NULL) {
            srv->ssl_ctx = (SSL_CTX *)user;
            sottod_tls_configure_ctx(srv->ssl_ctx);
        }
        return 0;

    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        if (srv != NULL && srv->store != NULL) {
            sottod_attach_run_finished(srv);
            sottod_store_run_completions(srv->store);
        }
        return 0;

    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) <= 0 ||
            strcmp(uri, "/v1/websocket") != 0)
            return 1;
        if (srv->draining || srv->m.connections_open >= srv->cfg.max_connections)
            return 1;
        return 0;

    case LWS_CALLBACK_ESTABLISHED:
        ps->c = sottod_conn_new(srv, wsi, SOTTOD_CONN_WS);
        if (ps->c == NULL)
            return -1;
        conn_source(srv, ps->c, wsi);
        srv->m.connections_open++;
        srv->m.connections_total++;
        lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, (int)srv->cfg.auth_timeout_s);
        return 0;

    case LWS_CALLBACK_RECEIVE:
        if (ps == NULL || ps->c == NULL)
            return -1;
        return ws_receive(ps->c, in, len);

    case LWS_CALLBACK_SERVER_WRITEABLE:
        if (ps == NULL || ps->c == NULL)
            return -1;
        return sottod_conn_on_writeable(ps->c);

    case LWS_CALLBACK_CLOSED:
        if (ps != NULL && ps->c != NULL)
            conn_gone(ps);
        return 0;

    case LWS_CALLBACK_HTTP:
        return http_route(srv, wsi, ps, (const char *)in);

    case LWS_CALLBACK_HTTP_BODY:
        if (ps == NULL || ps->c == NULL)
            return -1;
        return sottod_attach_body(ps->c, in, len);

    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        if (ps == NULL || ps->c == NULL)
            return -1;
        return sottod_attach_body_done(ps->c);

    case LWS_CALLBACK_HTTP_WRITEABLE:
        if (ps == NULL || ps->c == NULL)
            return 0;
        return sottod_attach_writeable(ps->c);

    case LWS_CALLBACK_HTTP_FILE_COMPLETION:
        return lws_http_transaction_completed(wsi) ? -1 : 0;

    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
        /* lws does not always deliver CLOSED_HTTP (e.g. after an upload
         * answered `100 Continue`); the protocol is always unbound before
         * the per-session data goes away. */
        if (ps != NULL && ps->c != NULL && ps->c->kind == SOTTOD_CONN_HTTP)
            conn_gone(ps);
        if (reason == LWS_CALLBACK_HTTP_DROP_PROTOCOL)
            break; /* lws's own handling too */
        return 0;

    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols g_protocols[] = {
    {"sotto.v1", callback, sizeof(pss), 4096, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0} /* terminator */
};

static const struct lws_protocols g_metrics_protocols[] = {
    {"sotto.metrics", metrics_callback, 0, 4096, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0} /* terminator */
};

/* Opens the metrics listener. Not being able to bind it (a port in use)
 * is logged and the server runs without it: messaging does not depend on
 * monitoring. */
static void open_metrics(sottod_server *srv)
{
    struct lws_context_creation_info info;
    char host[128];
    int port = 0;

    if (strcmp(srv->cfg.metrics_listen, "off") == 0 ||
        sottod_config_hostport(srv->cfg.metrics_listen, host, sizeof(host), &port) != 0)
        return;
    memset(&info, 0, sizeof(info));
    if (strchr(host, ':') == NULL)
        info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    info.vhost_name = "sottod-metrics";
    info.iface = host;
    info.port = port;
    info.protocols = g_metrics_protocols;
    info.user = srv;
    info.timeout_secs = 10;
    srv->metrics_vhost = lws_create_vhost(srv->ctx, &info);
    if (srv->metrics_vhost == NULL) {
        sottod_log(SOTTOD_LOG_WARN, "metrics_listen_failed", "metrics_listen=%s",
                   srv->cfg.metrics_listen);
        return;
    }
    srv->metrics_port = lws_get_vhost_listen_port(srv->metrics_vhost);
    if (strchr(host, ':') != NULL)
        printf("sottod: metrics on http://[%s]:%d/metrics\n", host, srv->metrics_port);
    else
        printf("sottod: metrics on http://%s:%d/metrics\n", host, srv->metrics_port);
}

/* ---- housekeeping, signals --------------------------------------------------- */

static void expire_done(void *arg, const sottod_store_result *res)
{
    sottod_server *srv = arg;
    if (res->status == SOTTOD_STORE_OK && res->u.deleted.deleted > 0) {
        srv->m.envelopes_expired_total += res->u.deleted.deleted;
        sottod_log(SOTTOD_LOG_INFO, "envelopes_expired", "count=%u", res->u.deleted.deleted);
    }
}

static void housekeeping(lws_sorted_usec_list_t *sul)
{
    sottod_server *srv = lws_container_of(sul, sottod_server, housekeeping);
    if (!srv->draining) {
        if (sottod_store_envelopes_expire(srv->store, expire_done, srv) != SOTTOD_STORE_OK)
            sottod_log(SOTTOD_LOG_WARN, "expire_submit_failed", NULL);
        sottod_attach_expire(srv);
        /* Accounts deleted by an admin command that could not signal us. */
        sottod_api_revalidate_sessions(srv);
        sottod_acache_clear(&srv->acache);
        sottod_devstate_sweep(srv);
    }
    sottod_log_flush(false); /* yesterday's per-user event counts */
    lws_sul_schedule(srv->ctx, 0, &srv->housekeeping, housekeeping, HOUSEKEEPING_US);
}

static void on_signal(int sig)
{
    if (g_srv == NULL)
        return;
    if (sig == SIGHUP)
        g_srv->sig_hup = 1;
    else if (sig == SIGUSR1)
        g_srv->sig_usr1 = 1;
    else
        g_srv->sig_term = 1;
    if (g_srv->ctx != NULL)
        lws_cancel_service(g_srv->ctx);
}

static void store_wake(void *arg)
{
    sottod_server *srv = arg;
    if (srv->ctx != NULL)
        lws_cancel_service(srv->ctx);
}

static int mkdir_p(const char *path, mode_t mode)
{
    char tmp[SOTTOD_PATH_MAX];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof(tmp))
        return -1;
    memcpy(tmp, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (tmp[i] == '/' || tmp[i] == '\0') {
            char save = tmp[i];
            tmp[i] = '\0';
            if (mkdir(tmp, mode) != 0 && errno != EEXIST)
                return -1;
            tmp[i] = save;
        }
    }
    return 0;
}

/* Raises the soft RLIMIT_NOFILE to max_connections plus headroom when the
 * hard limit allows, and caps an enormous one (lws allocates a pointer per
 * possible fd). */
static void size_fd_limit(uint64_t max_connections)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)max_connections + 256, cap = (rlim_t)1 << 20;
    if (want > cap)
        cap = want;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t cur = rl.rlim_cur;
    if (cur < want)
        cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ? want : rl.rlim_max;
    if (cur > cap)
        cur = cap;
    if (cur != rl.rlim_cur) {
        rl.rlim_cur = cur;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            sottod_log(SOTTOD_LOG_WARN, "fd_limit_unchanged", NULL);
    }
    if (cur < want)
        sottod_log(SOTTOD_LOG_WARN, "fd_limit_low", "max_fds=%llu max_connections=%llu",
                   (unsigned long long)cur, (unsigned long long)max_connections);
}

/* DATA_DIR/sottod.pid lets `sottod admin delete-account` tell the running
 * server (SIGUSR1) to close the sessions of the deleted devices at once. */
static void write_pid_file(sottod_server *srv)
{
    char buf[32];
    if ((size_t)snprintf(srv->pid_path, sizeof(srv->pid_path), "%s/sottod.pid",
                         srv->cfg.data_dir) >= sizeof(srv->pid_path)) {
        srv->pid_path[0] = '\0';
        return;
    }
    int n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
    int fd = open(srv->pid_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, buf, (size_t)n) != n) {
        sottod_log(SOTTOD_LOG_WARN, "pid_file_failed", NULL);
        srv->pid_path[0] = '\0';
    }
    if (fd >= 0)
        close(fd);
}

static bool tx_pending(sottod_server *srv)
{
    for (size_t i = 0; i < srv->reg_buckets; i++)
        for (sottod_conn *c = srv->reg[i]; c != NULL; c = c->reg_next)
            if (c->tx_head != NULL)
                return true;
    return false;
}

/* Logs why sottod will not start (one line, error level). */
static void refuse(const char *event, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void refuse(const char *event, const char *fmt, ...)
{
    char msg[1536];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    for (char *p = msg; *p != '\0'; p++)
        if (*p == '"' || *p == '\n')
            *p = '\'';
    sottod_log(SOTTOD_LOG_ERROR, event, "reason=\"%s\"", msg);
}

/*
 * Opens the store under the start-up rules (docs/operating.md): a brand-new
 * data directory (sottod_datadir_is_new) or --init creates an empty store;
 * otherwise a missing, empty or damaged database is refused with the
 * reason, so a lost database never comes back as an empty server behind
 * the old certificate. Every open runs an integrity check.
 */
static int open_store(sottod_server *srv, bool init)
{
    const sottod_config *cfg = &srv->cfg;
    char db_path[SOTTOD_PATH_MAX + 16], why[1024], found[64];
    sottod_store_config scfg;
    bool fresh = sottod_datadir_is_new(cfg->data_dir, found, sizeof(found));
    int st;

    snprintf(db_path, sizeof(db_path), "%s/sottod.db", cfg->data_dir);
    memset(&scfg, 0, sizeof(scfg));
    scfg.backend = "sqlite";
    scfg.path = db_path;
    scfg.durability = strcmp(cfg->durability, "process") == 0 ? SOTTOD_DURABILITY_PROCESS
                                                              : SOTTOD_DURABILITY_FULL;
    scfg.max_queue = (uint32_t)cfg->queue_max;
    scfg.scrub_delay_s = (uint32_t)cfg->scrub_delay_s;
    scfg.queue_per_sender_max = (uint32_t)cfg->queue_per_sender_max;
    scfg.queue_sealed_max = (uint32_t)cfg->queue_sealed_max;
    scfg.must_exist = !fresh && !init;
    scfg.check = true;
    scfg.why = why;
    scfg.why_cap = sizeof(why);
    st = sottod_store_open(&scfg, &srv->store);
    if (st == SOTTOD_STORE_NOT_FOUND) {
        refuse("store_refused",
               "%s; the data directory holds an earlier server's files (%s), so this is not a "
               "new server. Restore the database from a backup, or start once with --init to "
               "begin a new, empty one (every account and queued message is then gone)",
               why, found);
        return -1;
    }
    if (st != SOTTOD_STORE_OK) {
        refuse("store_refused",
               "%s; refusing to start. Restore the database from a backup, or move it away "
               "and start with --init for a new, empty server",
               why[0] != '\0' ? why : sottod_store_strerror(st));
        return -1;
    }
    if (fresh || init)
        sottod_log(SOTTOD_LOG_INFO, "store_ready", "new=%s", fresh ? "data_dir" : "init");
    return 0;
}

/* ---- serve ------------------------------------------------------------------- */

int sottod_serve(const sottod_config *cfg, bool init)
{
    int ret = 1;
    sottod_server *srv = NULL;
    struct lws_context_creation_info info;
    char host[128], tls_dir[SOTTOD_PATH_MAX + 8], why[1024];
    int port = 0;
    lws_retry_bo_t idle;

    srv = calloc(1, sizeof(*srv));
    if (srv == NULL)
        return 1;
    srv->cfg = *cfg;
    srv->lock_fd = -1;
    if (pthread_mutex_init(&srv->att_mu, NULL) != 0) {
        free(srv);
        return 1;
    }
    srv->invite_only = strcmp(cfg->registration, "invite") == 0;
    sottod_log_set_level(sottod_log_parse_level(cfg->log_level));
    sottod_log_set_debug_detail(strcmp(cfg->log_detail, "debug") == 0);
    if (strcmp(cfg->log_detail, "debug") == 0)
        sottod_log(SOTTOD_LOG_WARN, "log_detail_debug",
                   "warning=\"this log records per-user events (logins, registrations, device "
                   "changes) with their time of day; set log_detail = private when done\"");
    if (sodium_init() < 0 || sotto_init() != SOTTO_OK) {
        sottod_log(SOTTOD_LOG_ERROR, "crypto_init_failed", NULL);
        goto out;
    }
    if (sottod_config_listen(cfg, host, sizeof(host), &port) != 0)
        goto out;
#ifdef SOTTOD_TEST_HOOKS
    {
        const char *v = getenv("SOTTOD_TEST_FAIL_SEND");
        if (v != NULL && v[0] != '\0') {
            char *end = NULL;
            errno = 0;
            unsigned long long n = strtoull(v, &end, 10);
            if (errno != 0 || end == v || *end != '\0') {
                refuse("test_hook_invalid", "SOTTOD_TEST_FAIL_SEND must be a number");
                goto out;
            }
            srv->test_fail_send = n;
            sottod_log(SOTTOD_LOG_WARN, "test_hook", "fail_send=%llu", n);
        }
    }
#endif
    /* One server per data directory: take its lock before touching
     * anything in it (two servers would hand out the same envelope seqs). */
    if (mkdir_p(cfg->data_dir, 0700) != 0) {
        refuse("data_dir_unusable", "cannot create the data directory %s: %s", cfg->data_dir,
               strerror(errno));
        goto out;
    }
    srv->lock_fd = sottod_datadir_lock(cfg->data_dir, why, sizeof(why));
    if (srv->lock_fd < 0) {
        refuse("data_dir_locked", "%s", why);
        goto out;
    }
    if (open_store(srv, init) != 0)
        goto out;
    /* Key transparency: keys, log replay, reconcile (kt.h). */
    if (sottod_kt_start(srv, why, sizeof(why)) != 0) {
        refuse("kt_refused", "%s", why);
        goto out;
    }
    /* Sealed sender: trust root and server certificate keys (sealed.h). */
    if (sottod_sealed_start(srv, why, sizeof(why)) != 0) {
        refuse("sealed_refused", "%s", why);
        goto out;
    }
    if ((size_t)snprintf(srv->attach_dir, sizeof(srv->attach_dir), "%s/attachments",
                         cfg->data_dir) >= sizeof(srv->attach_dir) ||
        mkdir_p(srv->attach_dir, 0700) != 0) {
        refuse("data_dir_unusable", "cannot create %s/attachments: %s", cfg->data_dir,
               strerror(errno));
        goto out;
    }
    if (cfg->tls_cert[0] != '\0') {
        snprintf(srv->cert_path, sizeof(srv->cert_path), "%s", cfg->tls_cert);
        snprintf(srv->key_path, sizeof(srv->key_path), "%s", cfg->tls_key);
    } else {
        snprintf(tls_dir, sizeof(tls_dir), "%s/tls", cfg->data_dir);
        if (sottod_tls_ensure_self_signed(tls_dir, srv->cert_path, sizeof(srv->cert_path),
                                          srv->key_path, sizeof(srv->key_path)) != 0) {
            sottod_log(SOTTOD_LOG_ERROR, "tls_self_signed_failed", NULL);
            goto out;
        }
    }
    if (sottod_tls_fingerprint(srv->cert_path, srv->fingerprint) != 0) {
        sottod_log(SOTTOD_LOG_ERROR, "tls_certificate_unreadable", NULL);
        goto out;
    }

    sottod_store_set_wake(srv->store, store_wake, srv);
    if (sottod_registry_init(srv) != 0)
        goto out;
    sottod_bucket_init(&srv->register_bucket, cfg->rate_register_burst, sottod_mono_us());
    randombytes_buf(srv->reg_src_key, sizeof(srv->reg_src_key));
    srv->reg_proxy_set =
        cfg->register_proxy[0] != '\0' && sottod_source_parse(cfg->register_proxy, srv->reg_proxy);

    lws_set_log_level(LLL_ERR, sottod_log_lws);
    memset(&idle, 0, sizeof(idle));
    idle.secs_since_valid_ping = (uint16_t)(cfg->idle_timeout_s / 2);
    idle.secs_since_valid_hangup =
        (uint16_t)(cfg->idle_timeout_s > 65535 ? 65535 : cfg->idle_timeout_s);

    memset(&info, 0, sizeof(info));
    /* lws's own poll() loop. (A libev/epoll loop, LWS_SERVER_OPTION_LIBEV,
     * saved about a quarter of the loop's CPU at 1000 connections, but with
     * lws 4.1.6 an HTTP connection closed in the middle of a request body
     * stopped lws's timers for every later connection -- auth and idle
     * timeouts never fired -- so it is not used.) */
    info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT | LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
    info.user = srv;
    /* No fd_limit_per_thread: with it lws 4.1 finds the connection of a
     * ready socket by a linear scan of its whole fd table (5% of the loop
     * at 1000 connections); without it, by direct index into a table sized
     * by RLIMIT_NOFILE, which size_fd_limit() set. */
    size_fd_limit(cfg->max_connections);
    srv->ctx = lws_create_context(&info);
    if (srv->ctx == NULL) {
        sottod_log(SOTTOD_LOG_ERROR, "lws_context_failed", NULL);
        goto out;
    }
    g_srv = srv;

    memset(&info, 0, sizeof(info));
    info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    if (strchr(host, ':') == NULL)
        info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    info.vhost_name = "sottod";
    info.iface = host;
    info.port = port;
    info.protocols = g_protocols;
    info.ssl_cert_filepath = srv->cert_path;
    info.ssl_private_key_filepath = srv->key_path;
    info.ssl_options_set = (long)(SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1 | SSL_OP_NO_TLSv1_2);
    info.alpn = "http/1.1";
    info.retry_and_idle_policy = &idle;
    info.user = srv;
    info.timeout_secs = 20;
    srv->vhost = lws_create_vhost(srv->ctx, &info);
    if (srv->vhost == NULL) {
        sottod_log(SOTTOD_LOG_ERROR, "listen_failed", NULL);
        goto out;
    }
    if (srv->ssl_ctx == NULL)
        sottod_log(SOTTOD_LOG_WARN, "tls_policy_not_applied", NULL);
    srv->port = lws_get_vhost_listen_port(srv->vhost);
    open_metrics(srv);

    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    write_pid_file(srv);

    if (strchr(host, ':') != NULL)
        printf("sottod: listening on https://[%s]:%d\n", host, srv->port);
    else
        printf("sottod: listening on https://%s:%d\n", host, srv->port);
    printf("sottod: certificate sha256 %s\n", srv->fingerprint);
    fflush(stdout);
    sottod_log(SOTTOD_LOG_INFO, "started", "registration=%s durability=%s", cfg->registration,
               cfg->durability);

    lws_sul_schedule(srv->ctx, 0, &srv->housekeeping, housekeeping, 2 * 1000000);
    sottod_kt_schedule(srv);

    while (!srv->sig_term) {
        /* Signals and store completions wake it through
         * lws_cancel_service(). */
        if (lws_service(srv->ctx, 0) < 0)
            break;
        sottod_store_run_completions(srv->store);
        if (srv->sig_hup)
            do_reload(srv);
        if (srv->sig_usr1) {
            /* `sottod admin delete-account` changed the accounts. */
            srv->sig_usr1 = 0;
            sottod_acache_clear(&srv->acache);
            sottod_api_revalidate_sessions(srv);
        }
    }

    /* Graceful shutdown: stop taking requests, let every accepted write
     * commit and answer, flush what is queued to clients, then close. */
    sottod_log(SOTTOD_LOG_INFO, "shutting_down", NULL);
    srv->draining = true;
    lws_sul_cancel(&srv->housekeeping);
    sottod_kt_unschedule(srv);
    /* Uploads being fsynced: take them back so they are recorded too. */
    while (srv->att_running > 0) {
        usleep(1000);
        sottod_attach_run_finished(srv);
    }
    if (sottod_store_drain(srv->store) != SOTTOD_STORE_OK)
        sottod_log_store_error(srv, "store_drain_failed", "drain", SOTTOD_STORE_ERR);
    int64_t until = sottod_mono_us() + 2000000;
    while (tx_pending(srv) && sottod_mono_us() < until) {
        if (lws_service(srv->ctx, 0) < 0)
            break;
        sottod_store_run_completions(srv->store);
    }
    ret = 0;
out:
    if (srv->ctx != NULL) {
        lws_context_destroy(srv->ctx);
        srv->ctx = NULL;
    }

    g_srv = NULL;
    if (srv->pid_path[0] != '\0')
        unlink(srv->pid_path);
    sottod_store_close(srv->store);
    sottod_disk_close(srv); /* only now: its close drops this process's locks on the db */
    sottod_kt_stop(srv);    /* after the last completion */
    sottod_sealed_stop(srv);
    /* Only now, with every write committed and the database closed, may
     * another server take the directory. */
    sottod_datadir_unlock(srv->lock_fd);
    sottod_registry_free(srv);
    sottod_devstate_free_all(srv);
    sottod_bucket_table_free(&srv->pair_buckets);
    sottod_bucket_table_free(&srv->sealed_buckets);
    sottod_count_table_free(&srv->sealed_conn_sources);
    sottod_bucket_table_free(&srv->prekey_buckets);
    sottod_source_table_free(&srv->reg_sources);
    sottod_source_table_free(&srv->reg_prefixes);
    sodium_memzero(srv->reg_src_key, sizeof(srv->reg_src_key));
    sottod_acache_clear(&srv->acache);
    pthread_mutex_destroy(&srv->att_mu);
    free(srv->txbuf);
    sottod_log_flush(true);
    if (srv->port != 0)
        sottod_log(SOTTOD_LOG_INFO, "stopped", NULL);
    free(srv);
    return ret;
}
