/*
 * server/conn.c -- connection objects, their transmit queues, the HTTP
 * response helper, and the registry of logged-in devices.
 *
 * Layering: main -> net -> {api, attach} -> delivery -> conn -> store. This
 * file calls only the store, the log and libwebsockets: what must happen
 * above it when a connection goes (an interrupted upload, a device_removed
 * notice) is done by the caller (net.c, api.c), never from here.
 *
 * Design: a connection's outgoing messages are a singly linked FIFO of
 * heap buffers with LWS_PRE headroom; one is written per WRITEABLE callback
 * (lws buffers a partial write itself). An idle connection holds no
 * buffers at all: the receive buffer lives only while a message is being
 * reassembled, the push window is allocated on the first push. The
 * registry maps (account, device) to the one live connection of that
 * device (a newer login replaces an older connection).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "log.h"
#include "sottod.h"

int64_t sottod_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t sottod_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool sottod_username_valid(const char *name, size_t len)
{
    if (len < SOTTOD_USERNAME_MIN_LEN || len > SOTTOD_USERNAME_MAX_LEN)
        return false;
    for (size_t i = 0; i < len; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '.'))
            return false;
    }
    return true;
}

void sottod_log_store_error(sottod_server *srv, const char *event, const char *op, int status)
{
    char cause[256];

    sottod_store_last_error(srv->store, cause, sizeof(cause));
    /* The store's text is SQLite's message and the OS error: it never holds
     * message contents, keys or names. */
    for (char *p = cause; *p != '\0'; p++)
        if (*p == '"' || *p == '\n')
            *p = '\'';
    sottod_log(SOTTOD_LOG_ERROR, event, "op=%s status=%d error=\"%s\" cause=\"%s\"",
               op != NULL ? op : "-", status, sottod_store_strerror(status),
               status == SOTTOD_STORE_ERR && cause[0] != '\0' ? cause : "-");
}

void sottod_metrics_commit(sottod_server *srv, int64_t submitted_us)
{
    static const int64_t bounds_us[7] = {1000, 2000, 5000, 10000, 25000, 50000, 100000};
    int64_t d = sottod_mono_us() - submitted_us;
    if (d < 0)
        d = 0;
    srv->m.commit_count++;
    srv->m.commit_usec_sum += (uint64_t)d;
    size_t i = 0;
    while (i < 7 && d > bounds_us[i])
        i++;
    srv->m.commit_usec_bucket[i]++;
}

sottod_conn *sottod_conn_new(sottod_server *srv, struct lws *wsi, uint8_t kind)
{
    sottod_conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    int64_t now = sottod_mono_us();
    c->srv = srv;
    c->wsi = wsi;
    c->refs = 1;
    c->kind = kind;
    c->http_fd = -1;
    c->next_push_id = 1;
    c->http_started_us = now;
    return c;
}

void sottod_conn_ref(sottod_conn *c)
{
    c->refs++;
}

static void tx_free_all(sottod_conn *c)
{
    sottod_tx *t = c->tx_head;
    while (t != NULL) {
        sottod_tx *n = t->next;
        free(t);
        t = n;
    }
    c->tx_head = c->tx_tail = NULL;
    c->tx_bytes = 0;
}

void sottod_conn_unref(sottod_conn *c)
{
    if (c == NULL || --c->refs > 0)
        return;
    tx_free_all(c);
    if (c->rx != NULL) {
        sodium_memzero(c->rx, c->rx_cap);
        free(c->rx);
    }
    free(c->push);
    if (c->http_fd >= 0)
        close(c->http_fd);
    sodium_memzero(c->nonce, sizeof(c->nonce));
    free(c);
}

void sottod_conn_closed(sottod_conn *c)
{
    sottod_server *srv = c->srv;
    if (c->kind == SOTTOD_CONN_WS) {
        if (srv->m.connections_open > 0)
            srv->m.connections_open--;
        if (c->authed && srv->m.connections_authed > 0)
            srv->m.connections_authed--;
    }
    sottod_api_sealed_conn_release(c);
    if (c->authed)
        sottod_registry_remove(srv, c);
    if (c->dev != NULL) {
        sottod_devstate_release(srv, c->dev);
        c->dev = NULL;
    }
    c->wsi = NULL;
    tx_free_all(c);
    if (c->rx != NULL) {
        srv->rx_buffered -= c->rx_cap;
        free(c->rx);
        c->rx = NULL;
        c->rx_len = c->rx_cap = 0;
    }
    sottod_conn_unref(c);
}

sottod_tx *sottod_tx_new(size_t len)
{
    sottod_tx *t = malloc(sizeof(*t) + LWS_PRE + len);
    if (t == NULL)
        return NULL;
    t->next = NULL;
    t->len = len;
    return t;
}

int sottod_conn_send_tx(sottod_conn *c, sottod_tx *tx)
{
    if (c->wsi == NULL || c->close_after_tx) {
        free(tx);
        return -1;
    }
    if (c->tx_bytes + tx->len > SOTTOD_TX_MAX) {
        /* A reader this slow would make us hold unbounded memory. */
        free(tx);
        sottod_log_user(SOTTOD_LOG_WARN, "slow_reader_dropped", NULL);
        lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        return -1;
    }
    if (c->tx_tail != NULL)
        c->tx_tail->next = tx;
    else
        c->tx_head = tx;
    c->tx_tail = tx;
    c->tx_bytes += tx->len;
    lws_callback_on_writable(c->wsi);
    return 0;
}

int sottod_http_respond(struct lws *wsi, unsigned status, const char *content_type,
                        const char *body, size_t len)
{
    uint8_t hdr[LWS_PRE + 512];
    uint8_t *start = hdr + LWS_PRE, *p = start, *end = hdr + sizeof(hdr) - 1;
    if (lws_add_http_common_headers(wsi, status, content_type, (lws_filepos_t)len, &p, end) ||
        lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
                                     (const unsigned char *)"no-store", 8, &p, end) ||
        lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    if (len > 0) {
        uint8_t *buf = malloc(LWS_PRE + len);
        if (buf == NULL)
            return -1;
        memcpy(buf + LWS_PRE, body, len);
        int n = lws_write(wsi, buf + LWS_PRE, len, LWS_WRITE_HTTP_FINAL);
        free(buf);
        if (n < 0)
            return -1;
    }
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

void sottod_conn_close_after_tx(sottod_conn *c, uint16_t code)
{
    if (c->wsi == NULL || c->close_after_tx)
        return;
    c->close_after_tx = true;
    c->close_code = code;
    /* A peer that stops reading must not keep a closing connection (and
     * its queued bytes) forever. */
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, SOTTOD_CLOSE_TIMEOUT_S);
    lws_callback_on_writable(c->wsi);
}

/* Writes the RFC 6455 header of an unmasked, final, binary server frame of
 * `len` bytes so that it ends right before `end`; returns its length. */
static size_t ws_header_before(uint8_t *end, size_t len)
{
    if (len < 126) {
        end[-2] = 0x82;
        end[-1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xFFFF) {
        end[-4] = 0x82;
        end[-3] = 126;
        end[-2] = (uint8_t)(len >> 8);
        end[-1] = (uint8_t)len;
        return 4;
    }
    end[-10] = 0x82;
    end[-9] = 127;
    for (int i = 0; i < 8; i++)
        end[-8 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
    return 10;
}

#define TX_COALESCE_MAX (64u * 1024)

/*
 * Sends queued messages. Several small queued messages (answers and pushes
 * of a busy connection) are framed here and handed to lws as one raw write,
 * i.e. one TLS record and one syscall instead of one per message; lws
 * buffers a partial write itself and calls back when it is flushed. A
 * single or large message is framed in its own headroom (no copy).
 */
int sottod_conn_on_writeable(sottod_conn *c)
{
    sottod_server *srv = c->srv;
    sottod_tx *t = c->tx_head;
    if (t == NULL) {
        if (c->close_after_tx) {
            static const char reason[] = "closing";
            lws_close_reason(c->wsi, (enum lws_close_status)c->close_code, (unsigned char *)reason,
                             sizeof(reason) - 1);
            return -1;
        }
        return 0;
    }
    size_t total = 0, count = 0;
    for (sottod_tx *u = t; u != NULL && count < 256; u = u->next) {
        size_t fl = u->len + (u->len < 126 ? 2 : u->len <= 0xFFFF ? 4 : 10);
        if (count > 0 && total + fl > TX_COALESCE_MAX)
            break;
        total += fl;
        count++;
    }
    if (count > 1 && srv->txbuf_cap < LWS_PRE + total) {
        uint8_t *nb = realloc(srv->txbuf, LWS_PRE + TX_COALESCE_MAX);
        if (nb != NULL) {
            srv->txbuf = nb;
            srv->txbuf_cap = LWS_PRE + TX_COALESCE_MAX;
        } else {
            count = 1;
        }
    }
    int n;
    if (count == 1) {
        uint8_t *body = t->buf + LWS_PRE;
        size_t h = ws_header_before(body, t->len);
        n = lws_write(c->wsi, body - h, t->len + h, LWS_WRITE_RAW);
        c->tx_head = t->next;
        c->tx_bytes -= t->len;
        free(t);
    } else {
        uint8_t *p = srv->txbuf + LWS_PRE;
        for (size_t i = 0; i < count; i++) {
            sottod_tx *u = c->tx_head;
            size_t h = ws_header_before(p + (u->len < 126 ? 2 : u->len <= 0xFFFF ? 4 : 10), u->len);
            p += h;
            memcpy(p, u->buf + LWS_PRE, u->len);
            p += u->len;
            c->tx_head = u->next;
            c->tx_bytes -= u->len;
            free(u);
        }
        n = lws_write(c->wsi, srv->txbuf + LWS_PRE, (size_t)(p - (srv->txbuf + LWS_PRE)),
                      LWS_WRITE_RAW);
    }
    if (c->tx_head == NULL)
        c->tx_tail = NULL;
    if (n < 0)
        return -1;
    if (c->tx_head != NULL || c->close_after_tx)
        lws_callback_on_writable(c->wsi);
    return 0;
}

/* ---- registry ------------------------------------------------------------ */

static size_t reg_hash(const sottod_server *srv, sottod_addr a)
{
    uint64_t h = (uint64_t)a.account_id * 0x9E3779B97F4A7C15ULL ^
                 (uint64_t)a.device_id * 0xC2B2AE3D27D4EB4FULL;
    h ^= h >> 29;
    return (size_t)(h & (srv->reg_buckets - 1));
}

int sottod_registry_init(sottod_server *srv)
{
    srv->reg_buckets = 1024;
    srv->reg = calloc(srv->reg_buckets, sizeof(*srv->reg));
    return srv->reg == NULL ? -1 : 0;
}

void sottod_registry_free(sottod_server *srv)
{
    free(srv->reg);
    srv->reg = NULL;
}

static void reg_grow(sottod_server *srv)
{
    size_t nb = srv->reg_buckets * 2;
    sottod_conn **nt = calloc(nb, sizeof(*nt));
    if (nt == NULL)
        return; /* keep the longer chains */
    sottod_conn **old = srv->reg;
    size_t ob = srv->reg_buckets;
    srv->reg = nt;
    srv->reg_buckets = nb;
    for (size_t i = 0; i < ob; i++) {
        sottod_conn *c = old[i];
        while (c != NULL) {
            sottod_conn *next = c->reg_next;
            size_t h = reg_hash(srv, c->addr);
            c->reg_next = nt[h];
            nt[h] = c;
            c = next;
        }
    }
    free(old);
}

sottod_conn *sottod_registry_find(sottod_server *srv, sottod_addr addr)
{
    for (sottod_conn *c = srv->reg[reg_hash(srv, addr)]; c != NULL; c = c->reg_next)
        if (c->addr.account_id == addr.account_id && c->addr.device_id == addr.device_id)
            return c;
    return NULL;
}

void sottod_registry_remove(sottod_server *srv, sottod_conn *c)
{
    sottod_conn **pp = &srv->reg[reg_hash(srv, c->addr)];
    while (*pp != NULL) {
        if (*pp == c) {
            *pp = c->reg_next;
            c->reg_next = NULL;
            srv->reg_count--;
            return;
        }
        pp = &(*pp)->reg_next;
    }
}

void sottod_registry_evict(sottod_server *srv, sottod_conn *c)
{
    sottod_registry_remove(srv, c);
    c->authed = false;
    if (srv->m.connections_authed > 0)
        srv->m.connections_authed--;
}

void sottod_registry_add(sottod_server *srv, sottod_conn *c)
{
    sottod_conn *old = sottod_registry_find(srv, c->addr);
    if (old != NULL) {
        /* One connection per device: the newer login wins. */
        sottod_registry_evict(srv, old);
        sottod_conn_close_after_tx(old, 4000);
        sottod_log_user(SOTTOD_LOG_INFO, "connection_replaced", NULL);
    }
    if (srv->reg_count + 1 > srv->reg_buckets * 2)
        reg_grow(srv);
    size_t h = reg_hash(srv, c->addr);
    c->reg_next = srv->reg[h];
    srv->reg[h] = c;
    srv->reg_count++;
}

sottod_conn **sottod_registry_list(sottod_server *srv, size_t *n)
{
    size_t cap = srv->reg_count, k = 0;
    sottod_conn **all;

    *n = 0;
    if (cap == 0)
        return NULL;
    all = calloc(cap, sizeof(*all));
    if (all == NULL)
        return NULL;
    for (size_t i = 0; i < srv->reg_buckets && k < cap; i++)
        for (sottod_conn *c = srv->reg[i]; c != NULL && k < cap; c = c->reg_next)
            all[k++] = c;
    *n = k;
    return all;
}

/* ---- per-device state ------------------------------------------------------ */

static size_t dev_hash(sottod_addr a, size_t buckets)
{
    uint64_t h = (uint64_t)a.account_id * 0x9E3779B97F4A7C15ULL ^
                 (uint64_t)a.device_id * 0xC2B2AE3D27D4EB4FULL;
    h ^= h >> 31;
    return (size_t)(h & (buckets - 1));
}

static void devs_grow(sottod_server *srv)
{
    size_t nb = srv->devs_buckets ? srv->devs_buckets * 2 : 1024;
    sottod_devstate **nt = calloc(nb, sizeof(*nt));
    if (nt == NULL)
        return;
    for (size_t i = 0; i < srv->devs_buckets; i++) {
        sottod_devstate *d = srv->devs[i];
        while (d != NULL) {
            sottod_devstate *next = d->next;
            size_t h = dev_hash(d->addr, nb);
            d->next = nt[h];
            nt[h] = d;
            d = next;
        }
    }
    free(srv->devs);
    srv->devs = nt;
    srv->devs_buckets = nb;
}

sottod_devstate *sottod_devstate_get(sottod_server *srv, sottod_addr addr)
{
    if (srv->devs == NULL || srv->devs_count + 1 > srv->devs_buckets * 2)
        devs_grow(srv);
    if (srv->devs == NULL)
        return NULL;
    size_t h = dev_hash(addr, srv->devs_buckets);
    for (sottod_devstate *d = srv->devs[h]; d != NULL; d = d->next) {
        if (d->addr.account_id == addr.account_id && d->addr.device_id == addr.device_id) {
            d->refs++;
            return d;
        }
    }
    sottod_devstate *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return NULL;
    int64_t now = sottod_mono_us();
    d->addr = addr;
    d->refs = 1;
    sottod_bucket_init(&d->send_bucket, srv->cfg.rate_send_burst, now);
    sottod_bucket_init(&d->bundle_bucket, srv->cfg.rate_bundle_burst, now);
    d->next = srv->devs[h];
    srv->devs[h] = d;
    srv->devs_count++;
    return d;
}

void sottod_devstate_release(sottod_server *srv, sottod_devstate *d)
{
    (void)srv;
    if (d != NULL && d->refs > 0)
        d->refs--;
}

static bool bucket_full(const sottod_bucket *b, uint64_t per_min, uint64_t burst, int64_t now)
{
    double t = b->tokens;
    if (now > b->last_us)
        t += (double)(now - b->last_us) * (double)per_min / 60e6;
    return t >= (double)burst;
}

void sottod_devstate_sweep(sottod_server *srv)
{
    int64_t now = sottod_mono_us();
    const sottod_config *cfg = &srv->cfg;
    for (size_t i = 0; i < srv->devs_buckets; i++) {
        sottod_devstate **pp = &srv->devs[i];
        while (*pp != NULL) {
            sottod_devstate *d = *pp;
            if (d->refs == 0 &&
                bucket_full(&d->send_bucket, cfg->rate_send_per_min, cfg->rate_send_burst, now) &&
                bucket_full(&d->bundle_bucket, cfg->rate_bundle_per_min, cfg->rate_bundle_burst,
                            now)) {
                *pp = d->next;
                free(d);
                srv->devs_count--;
            } else {
                pp = &d->next;
            }
        }
    }
}

void sottod_devstate_free_all(sottod_server *srv)
{
    for (size_t i = 0; i < srv->devs_buckets; i++) {
        sottod_devstate *d = srv->devs[i];
        while (d != NULL) {
            sottod_devstate *next = d->next;
            free(d);
            d = next;
        }
    }
    free(srv->devs);
    srv->devs = NULL;
    srv->devs_buckets = srv->devs_count = 0;
}
