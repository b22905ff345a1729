/*
 * client/core/net.c -- WebSocket and HTTPS client connections to sottod
 * over libwebsockets (see net.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libwebsockets.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sodium.h>

#include "net.h"

#define SC_FRAME_MAX (2u << 20) /* largest ServerFrame accepted */
#define SC_HTTP_CHUNK 16384

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

int sc_url_parse(const char *url, char *host, size_t host_cap, int *port)
{
    const char *p, *colon, *end;
    size_t hl;
    long v;
    char *e;

    if (url == NULL || strncmp(url, "https://", 8) != 0)
        return -1;
    p = url + 8;
    end = p + strcspn(p, "/");
    colon = memchr(p, ':', (size_t)(end - p));
    hl = (size_t)((colon ? colon : end) - p);
    if (hl == 0 || hl >= host_cap)
        return -1;
    memcpy(host, p, hl);
    host[hl] = '\0';
    *port = 443;
    if (colon != NULL) {
        errno = 0;
        v = strtol(colon + 1, &e, 10);
        if (errno != 0 || e != end || v < 1 || v > 65535)
            return -1;
        *port = (int)v;
    }
    if (*end != '\0' && strcmp(end, "/") != 0)
        return -1;
    return 0;
}

/* ------------------------------------------------------------ pinning */

static int hex_to_pin(const char *hex, uint8_t pin[32])
{
    size_t bin_len = 0;
    if (hex == NULL || strlen(hex) != 64)
        return -1;
    if (sodium_hex2bin(pin, 32, hex, 64, NULL, &bin_len, NULL) != 0 || bin_len != 32)
        return -1;
    return 0;
}

/* SHA-256 of the certificate's DER encoding equals pin? */
static bool cert_matches_pin(X509 *cert, const uint8_t pin[32])
{
    unsigned char *der = NULL;
    uint8_t h[32];
    int n;
    bool ok = false;

    if (cert == NULL)
        return false;
    n = i2d_X509(cert, &der);
    if (n <= 0)
        return false;
    crypto_hash_sha256(h, der, (unsigned long long)n);
    ok = sodium_memcmp(h, pin, 32) == 0;
    OPENSSL_free(der);
    return ok;
}

/* Shared by both kinds of connection: the pin and the verdict. */
typedef struct sc_trust {
    bool use_pin;
    uint8_t pin[32];
    bool pin_seen_ok;
    bool pin_mismatch;
    bool ca_failed;
} sc_trust;

/* LWS_CALLBACK_OPENSSL_PERFORM_SERVER_CERT_VERIFICATION: 0 accepts. */
static int trust_verify_cb(sc_trust *t, void *user, size_t preverify_ok)
{
    X509_STORE_CTX *xs = user;
    X509 *cert;

    if (!t->use_pin) {
        if (!preverify_ok)
            t->ca_failed = true;
        return preverify_ok ? 0 : 1; /* CA mode: OpenSSL's verdict */
    }
    if (X509_STORE_CTX_get_error_depth(xs) != 0) {
        /* Chain certificates: the pin on the leaf decides. */
        X509_STORE_CTX_set_error(xs, X509_V_OK);
        return 0;
    }
    cert = X509_STORE_CTX_get_current_cert(xs);
    if (!cert_matches_pin(cert, t->pin)) {
        t->pin_mismatch = true;
        return 1;
    }
    t->pin_seen_ok = true;
    X509_STORE_CTX_set_error(xs, X509_V_OK);
    return 0;
}

/* After the handshake: check the peer certificate again. */
static bool trust_check_established(sc_trust *t, struct lws *wsi)
{
    SSL *ssl;
    X509 *cert;
    bool ok;

    if (!t->use_pin)
        return true;
    ssl = lws_get_ssl(wsi);
    if (ssl == NULL)
        return false;
    cert = SSL_get1_peer_certificate(ssl);
    ok = cert_matches_pin(cert, t->pin) && t->pin_seen_ok;
    X509_free(cert);
    return ok;
}

static int trust_init(sc_trust *t, const sc_server *srv, char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    if (srv->pin_hex != NULL && srv->pin_hex[0] != '\0') {
        if (hex_to_pin(srv->pin_hex, t->pin) != 0) {
            seterr(err, errlen, "certificate pin must be 64 hex characters");
            return -1;
        }
        t->use_pin = true;
        return 0;
    }
    if (srv->ca_file == NULL || srv->ca_file[0] == '\0') {
        seterr(err, errlen, "no way to trust the server: give --pin HEX or --ca FILE");
        return -1;
    }
    return 0;
}

static void quiet_lws(void)
{
    static bool done;
    if (!done) {
        lws_set_log_level(getenv("SOTTO_LWS_DEBUG") ? (LLL_ERR | LLL_WARN | LLL_NOTICE) : 0, NULL);
        done = true;
    }
}

static struct lws_context *make_context(const struct lws_protocols *protocols, const sc_server *srv,
                                        void *user)
{
    struct lws_context_creation_info info;

    quiet_lws();
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.user = user;
    info.fd_limit_per_thread = 4;
    info.ssl_client_options_set = SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1 | SSL_OP_NO_TLSv1_2;
    if ((srv->pin_hex == NULL || srv->pin_hex[0] == '\0') && srv->ca_file != NULL)
        info.client_ssl_ca_filepath = srv->ca_file;
    /* A pinned certificate is checked by fingerprint alone: loading the
     * system CA bundle would only cost time (about half of a `send`). */
    if (srv->pin_hex != NULL && srv->pin_hex[0] != '\0')
        info.options |= LWS_SERVER_OPTION_DISABLE_OS_CA_CERTS;
    return lws_create_context(&info);
}

static int ssl_flags(const sc_trust *t)
{
    int f = LCCSCF_USE_SSL;
    if (t->use_pin)
        f |= LCCSCF_ALLOW_SELFSIGNED | LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK |
             LCCSCF_ALLOW_EXPIRED | LCCSCF_ALLOW_INSECURE;
    return f;
}

static void heartbeat_cb(lws_sorted_usec_list_t *sul)
{
    (void)sul;
}

/* ------------------------------------------------------------ websocket */

typedef struct frame_node {
    struct frame_node *next;
    uint8_t *data; /* LWS_PRE + len bytes; payload at data + LWS_PRE */
    size_t len;
    Sotto__Api__ServerFrame *frame; /* for received frames */
    uint64_t bad_push_id;           /* a push whose envelope did not parse (frame NULL) */
} frame_node;

struct sc_conn {
    sc_trust trust; /* first: the certificate callback finds it via the wsi user */
    struct lws_context *ctx;
    struct lws *wsi;
    lws_sorted_usec_list_t sul;
    bool established;
    bool closed;
    bool prekeys_low;
    bool device_removed;
    bool device_list_changed;
    char why[160];
    uint64_t next_id;
    frame_node *tx_head, *tx_tail;     /* to send */
    frame_node *resp_head, *resp_tail; /* responses */
    frame_node *push_head, *push_tail; /* pushes */
    uint8_t *rx;
    size_t rx_len;
};

static void list_push(frame_node **head, frame_node **tail, frame_node *n)
{
    n->next = NULL;
    if (*tail)
        (*tail)->next = n;
    else
        *head = n;
    *tail = n;
}

static void free_nodes(frame_node *n)
{
    while (n) {
        frame_node *next = n->next;
        free(n->data);
        if (n->frame)
            sotto__api__server_frame__free_unpacked(n->frame, NULL);
        free(n);
        n = next;
    }
}

/* Reads a protobuf varint at *i (bounded by n); false when truncated. */
static bool read_varint(const uint8_t *p, size_t n, size_t *i, uint64_t *v)
{
    *v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (*i >= n)
            return false;
        *v |= (uint64_t)(p[*i] & 0x7f) << shift;
        if ((p[(*i)++] & 0x80) == 0)
            return true;
    }
    return false;
}

/*
 * A frame that does not parse as a whole may still be a well-framed push
 * whose envelope (stored by the server as opaque bytes, delivery.c) is
 * damaged: ServerFrame.id (field 1, varint) and .push (field 40, bytes).
 * Walks the top-level fields only; returns the push id, or 0 when the
 * frame is not such a push (then the connection cannot go on).
 */
static uint64_t damaged_push_id(const uint8_t *p, size_t n)
{
    uint64_t id = 0, tag, v;
    bool push = false;
    size_t i = 0;

    while (i < n) {
        if (!read_varint(p, n, &i, &tag))
            return 0;
        switch (tag & 7) {
        case 0:
            if (!read_varint(p, n, &i, &v))
                return 0;
            if (tag >> 3 == 1)
                id = v;
            break;
        case 1:
            if (n - i < 8)
                return 0;
            i += 8;
            break;
        case 2:
            if (!read_varint(p, n, &i, &v) || v > n - i)
                return 0;
            i += (size_t)v;
            if (tag >> 3 == 40)
                push = true;
            break;
        case 5:
            if (n - i < 4)
                return 0;
            i += 4;
            break;
        default:
            return 0;
        }
    }
    return push ? id : 0;
}

static void handle_frame(struct sc_conn *c, const uint8_t *p, size_t n)
{
    Sotto__Api__ServerFrame *f = sotto__api__server_frame__unpack(NULL, n, p);
    frame_node *node;

    if (f == NULL) {
        uint64_t bad = damaged_push_id(p, n);
        if (bad != 0 && (node = calloc(1, sizeof *node)) != NULL) {
            node->bad_push_id = bad;
            list_push(&c->push_head, &c->push_tail, node);
            return;
        }
        snprintf(c->why, sizeof c->why, "server sent a frame that does not parse");
        c->closed = true;
        return;
    }
    if (f->result_case == SOTTO__API__SERVER_FRAME__RESULT_NOTICE) {
        if (f->notice && f->notice->kind_case == SOTTO__API__NOTICE__KIND_PREKEYS_LOW)
            c->prekeys_low = true;
        if (f->notice && f->notice->kind_case == SOTTO__API__NOTICE__KIND_DEVICE_REMOVED)
            c->device_removed = true;
        if (f->notice && f->notice->kind_case == SOTTO__API__NOTICE__KIND_DEVICE_LIST_CHANGED)
            c->device_list_changed = true;
        sotto__api__server_frame__free_unpacked(f, NULL);
        return;
    }
    node = calloc(1, sizeof *node);
    if (node == NULL) {
        sotto__api__server_frame__free_unpacked(f, NULL);
        c->closed = true;
        return;
    }
    node->frame = f;
    if (f->result_case == SOTTO__API__SERVER_FRAME__RESULT_PUSH)
        list_push(&c->push_head, &c->push_tail, node);
    else
        list_push(&c->resp_head, &c->resp_tail, node);
}

static int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                       size_t len)
{
    struct sc_conn *c = wsi ? lws_wsi_user(wsi) : NULL;

    if (reason == LWS_CALLBACK_OPENSSL_PERFORM_SERVER_CERT_VERIFICATION) {
        /* Sent to protocol[0] for every client connection of the context
         * (WebSocket or HTTP): both keep their sc_trust first. */
        sc_trust *t = wsi ? lws_wsi_user(wsi) : NULL;
        return t ? trust_verify_cb(t, user, len) : 1;
    }
    if (c == NULL)
        return 0;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (c->trust.pin_mismatch)
            snprintf(c->why, sizeof c->why, "server certificate does not match the pin");
        else if (c->trust.ca_failed)
            snprintf(c->why, sizeof c->why, "server certificate is not trusted by the CA file");
        else
            snprintf(c->why, sizeof c->why, "cannot connect: %s",
                     in ? (const char *)in : "connection failed");
        c->closed = true;
        c->wsi = NULL;
        break;
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
        /* TLS is up, the upgrade request not yet sent: check the pin. */
        if (!trust_check_established(&c->trust, wsi)) {
            snprintf(c->why, sizeof c->why, "server certificate does not match the pin");
            c->closed = true;
            return -1;
        }
        break;
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        if (!trust_check_established(&c->trust, wsi)) {
            snprintf(c->why, sizeof c->why, "server certificate does not match the pin");
            c->closed = true;
            return -1;
        }
        c->established = true;
        if (c->tx_head)
            lws_callback_on_writable(wsi);
        break;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (lws_is_first_fragment(wsi))
            c->rx_len = 0;
        if (len > SC_FRAME_MAX - c->rx_len) {
            snprintf(c->why, sizeof c->why, "server frame too large");
            c->closed = true;
            return -1;
        }
        if (len > 0) {
            memcpy(c->rx + c->rx_len, in, len);
            c->rx_len += len;
        }
        if (lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0) {
            handle_frame(c, c->rx, c->rx_len);
            c->rx_len = 0;
        }
        break;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        if (c->tx_head) {
            frame_node *n = c->tx_head;
            int w = lws_write(wsi, n->data + LWS_PRE, n->len, LWS_WRITE_BINARY);
            if (w < (int)n->len) {
                snprintf(c->why, sizeof c->why, "write to server failed");
                c->closed = true;
                return -1;
            }
            c->tx_head = n->next;
            if (c->tx_head == NULL)
                c->tx_tail = NULL;
            n->next = NULL;
            free_nodes(n);
            if (c->tx_head)
                lws_callback_on_writable(wsi);
        }
        break;
    case LWS_CALLBACK_CLIENT_CLOSED:
    case LWS_CALLBACK_CLOSED:
        if (c->why[0] == '\0')
            snprintf(c->why, sizeof c->why, "server closed the connection");
        c->closed = true;
        c->wsi = NULL;
        break;
    case LWS_CALLBACK_WSI_DESTROY:
        if (c->wsi == wsi || c->wsi == NULL) {
            c->wsi = NULL;
            c->closed = true;
        }
        break;
    default:
        break;
    }
    return 0;
}

static int http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len);

/* One table for every context: the API WebSocket and attachment HTTP
 * transfers can share a context (and its TLS client state). */
static const struct lws_protocols protocols[] = {
    {"sotto-api", ws_callback, 0, 65536, 0, NULL, 0},
    {"sotto-http", http_callback, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* One turn of the loop, bounded to ~50 ms. */
static void service_once(struct lws_context *ctx, lws_sorted_usec_list_t *sul)
{
    lws_sul_schedule(ctx, 0, sul, heartbeat_cb, 50 * LWS_US_PER_MS);
    lws_service(ctx, 0);
}

int sc_conn_open(sc_conn **out, const sc_server *srv, int timeout_ms, char *err, size_t errlen)
{
    struct lws_client_connect_info ci;
    struct sc_conn *c = NULL;
    char host[256];
    int port;
    uint64_t deadline;
    int rc = -1;

    *out = NULL;
    if (sc_url_parse(srv->url, host, sizeof host, &port) != 0) {
        seterr(err, errlen, "bad server URL (want https://HOST:PORT)");
        return -1;
    }
    c = calloc(1, sizeof *c);
    if (c == NULL)
        goto nomem;
    c->rx = malloc(SC_FRAME_MAX);
    if (c->rx == NULL)
        goto nomem;
    if (trust_init(&c->trust, srv, err, errlen) != 0)
        goto out;
    c->next_id = 1;
    c->ctx = make_context(protocols, srv, NULL);
    if (c->ctx == NULL) {
        seterr(err, errlen, "cannot create the network context");
        goto out;
    }
    memset(&ci, 0, sizeof ci);
    ci.context = c->ctx;
    ci.address = host;
    ci.port = port;
    ci.path = "/v1/websocket";
    ci.host = host;
    ci.origin = host;
    ci.ssl_connection = ssl_flags(&c->trust);
    ci.local_protocol_name = "sotto-api";
    ci.alpn = "http/1.1";
    ci.userdata = c;
    ci.pwsi = &c->wsi;
    if (lws_client_connect_via_info(&ci) == NULL && c->wsi == NULL && !c->closed) {
        seterr(err, errlen, "cannot connect to %s:%d", host, port);
        goto out;
    }
    deadline = mono_ms() + (uint64_t)timeout_ms;
    while (!c->established && !c->closed && mono_ms() < deadline)
        service_once(c->ctx, &c->sul);
    if (!c->established) {
        seterr(err, errlen, "%s", c->why[0] ? c->why : "timed out connecting to the server");
        goto out;
    }
    *out = c;
    c = NULL;
    rc = 0;
    goto out;
nomem:
    seterr(err, errlen, "out of memory");
out:
    sc_conn_free(c);
    return rc;
}

void sc_conn_free(sc_conn *c)
{
    if (c == NULL)
        return;
    if (c->ctx) {
        lws_sul_cancel(&c->sul);
        lws_context_destroy(c->ctx);
    }
    free_nodes(c->tx_head);
    free_nodes(c->resp_head);
    free_nodes(c->push_head);
    free(c->rx);
    free(c);
}

void sc_conn_cancel_wait(sc_conn *c)
{
    if (c && c->ctx)
        lws_cancel_service(c->ctx); /* the one lws call safe from another thread */
}

bool sc_conn_alive(const sc_conn *c)
{
    return c != NULL && c->established && !c->closed && c->wsi != NULL;
}

int sc_conn_exporter(sc_conn *c, uint8_t out[32])
{
    SSL *ssl;
    static const char label[] = "EXPORTER-Channel-Binding";

    if (!sc_conn_alive(c))
        return -1;
    ssl = lws_get_ssl(c->wsi);
    if (ssl == NULL)
        return -1;
    if (SSL_export_keying_material(ssl, out, 32, label, sizeof label - 1, NULL, 0, 0) != 1)
        return -1;
    return 0;
}

static int queue_frame(sc_conn *c, const Sotto__Api__ClientFrame *f)
{
    size_t n = sotto__api__client_frame__get_packed_size(f);
    frame_node *node = calloc(1, sizeof *node);

    if (node == NULL)
        return -1;
    node->data = malloc(LWS_PRE + n + 1);
    if (node->data == NULL) {
        free(node);
        return -1;
    }
    sotto__api__client_frame__pack(f, node->data + LWS_PRE);
    node->len = n;
    list_push(&c->tx_head, &c->tx_tail, node);
    if (c->wsi && c->established)
        lws_callback_on_writable(c->wsi);
    return 0;
}

int sc_conn_request(sc_conn *c, Sotto__Api__ClientFrame *req, Sotto__Api__ServerFrame **resp,
                    int timeout_ms, char *err, size_t errlen)
{
    uint64_t deadline = mono_ms() + (uint64_t)timeout_ms;
    uint64_t id;

    *resp = NULL;
    if (!sc_conn_alive(c)) {
        seterr(err, errlen, "%s", c && c->why[0] ? c->why : "not connected");
        return -1;
    }
    id = c->next_id++;
    req->id = id;
    if (queue_frame(c, req) != 0) {
        seterr(err, errlen, "out of memory");
        return -1;
    }
    for (;;) {
        frame_node *prev = NULL, *n;
        for (n = c->resp_head; n; prev = n, n = n->next) {
            if (n->frame->id == id) {
                if (prev)
                    prev->next = n->next;
                else
                    c->resp_head = n->next;
                if (c->resp_tail == n)
                    c->resp_tail = prev;
                *resp = n->frame;
                n->frame = NULL;
                n->next = NULL;
                free_nodes(n);
                return 0;
            }
        }
        if (c->closed) {
            seterr(err, errlen, "%s", c->why[0] ? c->why : "connection closed");
            return -1;
        }
        if (mono_ms() >= deadline) {
            seterr(err, errlen, "the server did not answer in time");
            return -1;
        }
        service_once(c->ctx, &c->sul);
    }
}

int sc_conn_ack(sc_conn *c, uint64_t push_id)
{
    Sotto__Api__ClientFrame f = SOTTO__API__CLIENT_FRAME__INIT;
    Sotto__Api__Ack ack = SOTTO__API__ACK__INIT;

    if (!sc_conn_alive(c))
        return -1;
    f.id = push_id;
    f.op_case = SOTTO__API__CLIENT_FRAME__OP_ACK;
    f.ack = &ack;
    return queue_frame(c, &f);
}

int sc_conn_flush(sc_conn *c, int timeout_ms)
{
    uint64_t deadline = mono_ms() + (uint64_t)timeout_ms;

    while (c && c->tx_head && !c->closed && mono_ms() < deadline)
        service_once(c->ctx, &c->sul);
    return c && c->tx_head == NULL ? 0 : -1;
}

int sc_conn_next_push(sc_conn *c, int timeout_ms, volatile int *stop,
                      Sotto__Api__ServerFrame **frame, uint64_t *bad_push_id, char *why,
                      size_t whylen)
{
    uint64_t deadline = mono_ms() + (uint64_t)timeout_ms;

    *frame = NULL;
    *bad_push_id = 0;
    for (;;) {
        if (c->push_head) {
            frame_node *n = c->push_head;
            int kind = n->frame ? SC_CONN_PUSH_FRAME : SC_CONN_PUSH_BAD;
            c->push_head = n->next;
            if (c->push_head == NULL)
                c->push_tail = NULL;
            *frame = n->frame;
            *bad_push_id = n->bad_push_id;
            if (kind == SC_CONN_PUSH_BAD)
                seterr(why, whylen, "the server pushed an envelope that does not parse");
            n->frame = NULL;
            n->next = NULL;
            free_nodes(n);
            return kind;
        }
        if (c->closed || mono_ms() >= deadline || (stop && *stop))
            return SC_CONN_PUSH_NONE;
        service_once(c->ctx, &c->sul);
    }
}

bool sc_conn_take_prekeys_low(sc_conn *c)
{
    bool v = c->prekeys_low;
    c->prekeys_low = false;
    return v;
}

bool sc_conn_take_device_list_changed(sc_conn *c)
{
    bool v = c->device_list_changed;
    c->device_list_changed = false;
    return v;
}

bool sc_conn_device_removed(const sc_conn *c)
{
    return c->device_removed;
}

/* ------------------------------------------------------------ http */

typedef struct sc_http {
    sc_trust trust;
    bool put;
    uint64_t len; /* PUT: body length; GET: max */
    uint64_t done_bytes;
    sc_body_fn body;
    void *body_ud;
    sc_sink_fn sink;
    void *sink_ud;
    sc_progress_fn progress;
    void *pud;
    uint64_t last_progress;
    int status;
    bool completed;
    bool failed;
    bool oversize; /* GET: the server sent more than max_len bytes */
    bool closed;
    char why[160];
    uint8_t buf[LWS_PRE + SC_HTTP_CHUNK];
} sc_http;

static void http_progress(sc_http *h)
{
    uint64_t now = mono_ms();
    if (h->progress && (now - h->last_progress >= 100 || h->done_bytes == h->len)) {
        h->progress(h->pud, h->done_bytes, h->len);
        h->last_progress = now;
    }
}

static int http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len)
{
    sc_http *h = wsi ? lws_wsi_user(wsi) : NULL;
    char lenbuf[32];

    if (h == NULL)
        return 0;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (h->trust.pin_mismatch)
            snprintf(h->why, sizeof h->why, "server certificate does not match the pin");
        else if (h->trust.ca_failed)
            snprintf(h->why, sizeof h->why, "server certificate is not trusted by the CA file");
        else
            snprintf(h->why, sizeof h->why, "cannot connect: %s", in ? (const char *)in : "failed");
        h->failed = true;
        h->closed = true;
        break;
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
        if (!trust_check_established(&h->trust, wsi)) {
            snprintf(h->why, sizeof h->why, "server certificate does not match the pin");
            h->failed = true;
            return -1;
        }
        if (h->put) {
            unsigned char **p = (unsigned char **)in, *end = (*p) + len;
            int n = snprintf(lenbuf, sizeof lenbuf, "%llu", (unsigned long long)h->len);
            if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH,
                                             (unsigned char *)lenbuf, n, p, end) ||
                lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
                                             (unsigned char *)"application/octet-stream", 24, p,
                                             end))
                return -1;
            lws_client_http_body_pending(wsi, 1);
            lws_callback_on_writable(wsi);
        }
        break;
    case LWS_CALLBACK_CLIENT_HTTP_WRITEABLE: {
        long n;
        size_t want = SC_HTTP_CHUNK;
        int mode;
        if (!h->put)
            break;
        if (h->len - h->done_bytes < want)
            want = (size_t)(h->len - h->done_bytes);
        n = want ? h->body(h->body_ud, h->buf + LWS_PRE, want) : 0;
        if (n < 0 || (size_t)n != want) {
            snprintf(h->why, sizeof h->why, "cannot read the upload");
            h->failed = true;
            return -1;
        }
        h->done_bytes += (uint64_t)n;
        mode = h->done_bytes == h->len ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP;
        if (lws_write(wsi, h->buf + LWS_PRE, (size_t)n, (enum lws_write_protocol)mode) != (int)n) {
            snprintf(h->why, sizeof h->why, "upload write failed");
            h->failed = true;
            return -1;
        }
        http_progress(h);
        if (mode == LWS_WRITE_HTTP_FINAL)
            lws_client_http_body_pending(wsi, 0);
        else
            lws_callback_on_writable(wsi);
        break;
    }
    case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP:
        h->status = (int)lws_http_client_http_response(wsi);
        break;
    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP: {
        char buffer[4096 + LWS_PRE];
        char *px = buffer + LWS_PRE;
        int lenx = (int)sizeof buffer - LWS_PRE;
        if (lws_http_client_read(wsi, &px, &lenx) < 0)
            return -1;
        break;
    }
    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP_READ:
        if (h->put || h->status != 200)
            break; /* error bodies are ignored */
        if (len > h->len - h->done_bytes) {
            snprintf(h->why, sizeof h->why, "download larger than announced");
            h->oversize = true;
            h->failed = true;
            return -1;
        }
        if (h->sink(h->sink_ud, in, len) != 0) {
            snprintf(h->why, sizeof h->why, "cannot store the download");
            h->failed = true;
            return -1;
        }
        h->done_bytes += len;
        http_progress(h);
        break;
    case LWS_CALLBACK_COMPLETED_CLIENT_HTTP:
        h->completed = true;
        return -1; /* done: close the connection now (no keep-alive) */
    case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
        h->closed = true;
        break;
    default:
        break;
    }
    return 0;
}

static int http_run(sc_http *h, sc_conn *share, const sc_server *srv, const char *method,
                    const char *path, int *http_status, char *err, size_t errlen)
{
    struct lws_client_connect_info ci;
    struct lws_context *ctx = NULL;
    bool own_ctx = false;
    lws_sorted_usec_list_t sul;
    struct lws *wsi = NULL;
    char host[256];
    int port, rc = -1;
    uint64_t idle_deadline, last_done = 0;

    memset(&sul, 0, sizeof sul);
    if (sc_url_parse(srv->url, host, sizeof host, &port) != 0) {
        seterr(err, errlen, "bad server URL");
        return -1;
    }
    if (trust_init(&h->trust, srv, err, errlen) != 0)
        return -1;
    if (share != NULL && share->ctx != NULL && !share->closed) {
        ctx = share->ctx; /* one context per process (see protocols[]) */
    } else {
        ctx = make_context(protocols, srv, NULL);
        own_ctx = true;
    }
    if (ctx == NULL) {
        seterr(err, errlen, "cannot create the network context");
        return -1;
    }
    memset(&ci, 0, sizeof ci);
    ci.context = ctx;
    ci.address = host;
    ci.port = port;
    ci.path = path;
    ci.host = host;
    ci.origin = host;
    ci.method = method;
    ci.ssl_connection = ssl_flags(&h->trust);
    ci.local_protocol_name = "sotto-http";
    ci.alpn = "http/1.1";
    ci.userdata = h;
    ci.pwsi = &wsi;
    lws_client_connect_via_info(&ci);
    idle_deadline = mono_ms() + 30000;
    while (!h->completed && !h->failed && !h->closed) {
        if (h->done_bytes != last_done) {
            last_done = h->done_bytes;
            idle_deadline = mono_ms() + 30000;
        }
        if (mono_ms() >= idle_deadline) {
            snprintf(h->why, sizeof h->why, "transfer stalled");
            h->failed = true;
            break;
        }
        service_once(ctx, &sul);
    }
    *http_status = h->status;
    if (h->failed || (!h->completed && h->status == 0)) {
        seterr(err, errlen, "%s", h->why[0] ? h->why : "transfer failed");
        goto out;
    }
    rc = 0;
out:
    lws_sul_cancel(&sul);
    if (!h->closed && wsi != NULL && !own_ctx) {
        /* shared context: make sure the transfer's connection is gone
         * before its state (h) is freed */
        uint64_t until = mono_ms() + 2000;
        lws_set_timeout(wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_SYNC);
        while (!h->closed && mono_ms() < until)
            service_once(ctx, &sul);
        lws_sul_cancel(&sul);
    }
    if (own_ctx)
        lws_context_destroy(ctx);
    return rc;
}

int sc_http_put(sc_conn *share, const sc_server *srv, const char *path, uint64_t len,
                sc_body_fn body, void *body_ud, sc_progress_fn progress, void *pud,
                int *http_status, char *err, size_t errlen)
{
    sc_http *h = calloc(1, sizeof *h);
    int rc;

    if (h == NULL)
        return -1;
    h->put = true;
    h->len = len;
    h->body = body;
    h->body_ud = body_ud;
    h->progress = progress;
    h->pud = pud;
    rc = http_run(h, share, srv, "PUT", path, http_status, err, errlen);
    if (rc == 0 && h->done_bytes != len && *http_status / 100 == 2) {
        seterr(err, errlen, "upload incomplete");
        rc = -1;
    }
    sodium_memzero(h, sizeof *h);
    free(h);
    return rc;
}

int sc_http_get(sc_conn *share, const sc_server *srv, const char *path, uint64_t max_len,
                sc_sink_fn sink, void *sink_ud, sc_progress_fn progress, void *pud,
                int *http_status, char *err, size_t errlen)
{
    sc_http *h = calloc(1, sizeof *h);
    int rc;

    if (h == NULL)
        return -1;
    h->put = false;
    h->len = max_len;
    h->sink = sink;
    h->sink_ud = sink_ud;
    h->progress = progress;
    h->pud = pud;
    rc = http_run(h, share, srv, "GET", path, http_status, err, errlen);
    if (rc != 0 && h->oversize)
        rc = -2;
    sodium_memzero(h, sizeof *h);
    free(h);
    return rc;
}
