/*
 * server/conn.c -- connection objects, their transmit queues, and the
 * registry of logged-in devices.
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
    sottod_bucket_init(&c->send_bucket, srv->cfg.rate_send_burst, now);
    sottod_bucket_init(&c->bundle_bucket, srv->cfg.rate_bundle_burst, now);
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
    if (c->authed)
        sottod_registry_remove(srv, c);
    if (c->kind == SOTTOD_CONN_HTTP)
        sottod_attach_closed(c);
    c->wsi = NULL;
    tx_free_all(c);
    if (c->rx != NULL) {
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
        sottod_log(SOTTOD_LOG_WARN, "slow_reader_dropped", NULL);
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

int sottod_conn_send(sottod_conn *c, const uint8_t *data, size_t len)
{
    sottod_tx *t = sottod_tx_new(len);
    if (t == NULL)
        return -1;
    memcpy(t->buf + LWS_PRE, data, len);
    return sottod_conn_send_tx(c, t);
}

void sottod_conn_close_after_tx(sottod_conn *c, uint16_t code)
{
    if (c->wsi == NULL || c->close_after_tx)
        return;
    c->close_after_tx = true;
    c->close_code = code;
    lws_callback_on_writable(c->wsi);
}

int sottod_conn_on_writeable(sottod_conn *c)
{
    sottod_tx *t = c->tx_head;
    if (t != NULL) {
        int n = lws_write(c->wsi, t->buf + LWS_PRE, t->len, LWS_WRITE_BINARY);
        c->tx_head = t->next;
        if (c->tx_head == NULL)
            c->tx_tail = NULL;
        c->tx_bytes -= t->len;
        free(t);
        if (n < 0)
            return -1;
        if (c->tx_head != NULL || c->close_after_tx)
            lws_callback_on_writable(c->wsi);
        return 0;
    }
    if (c->close_after_tx) {
        static const char reason[] = "closing";
        lws_close_reason(c->wsi, (enum lws_close_status)c->close_code,
                         (unsigned char *)reason, sizeof(reason) - 1);
        return -1;
    }
    return 0;
}

/* ---- registry ------------------------------------------------------------ */

static size_t reg_hash(const sottod_server *srv, sottod_addr a)
{
    uint64_t h = (uint64_t)a.account_id * 0x9E3779B97F4A7C15ULL ^ (uint64_t)a.device_id *
                 0xC2B2AE3D27D4EB4FULL;
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

void sottod_registry_add(sottod_server *srv, sottod_conn *c)
{
    sottod_conn *old = sottod_registry_find(srv, c->addr);
    if (old != NULL) {
        /* One connection per device: the newer login wins. */
        sottod_registry_remove(srv, old);
        old->authed = false;
        if (srv->m.connections_authed > 0)
            srv->m.connections_authed--;
        sottod_conn_close_after_tx(old, 4000);
        sottod_log(SOTTOD_LOG_INFO, "connection_replaced", NULL);
    }
    if (srv->reg_count + 1 > srv->reg_buckets * 2)
        reg_grow(srv);
    size_t h = reg_hash(srv, c->addr);
    c->reg_next = srv->reg[h];
    srv->reg[h] = c;
    srv->reg_count++;
}
