/*
 * server/delivery.c -- pushing queued envelopes to logged-in devices and
 * deleting them on ack.
 *
 * Design: the store is the only queue. A logged-in connection keeps a
 * cursor (the store's seq of the last envelope pushed) and a window of at
 * most SOTTOD_PUSH_WINDOW pushes awaiting an ack. fill() lists envelopes
 * after the cursor from the store (a read) while the window has room; it
 * runs after login, after a send to this device committed, and after each
 * ack. An ack deletes exactly that envelope from THIS device's queue (the
 * store keys the delete by device), so a device can never remove another
 * device's envelopes. Anything not acked stays queued and is pushed again
 * after the next login (the cursor starts at 0 on every connection).
 *
 * A stored envelope is the serialized API Envelope, so a push frame is
 * built by prefixing two fields to the stored bytes:
 *   ServerFrame.id (field 1, varint) and ServerFrame.push (field 40, bytes).
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "sottod.h"

static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

typedef struct fill_ctx {
    sottod_conn *c;
    size_t pushed;
    bool failed; /* stopped for a reason other than a full window */
} fill_ctx;

static int push_one(void *arg, const sottod_envelope *env)
{
    fill_ctx *fc = arg;
    sottod_conn *c = fc->c;
    uint8_t hdr[1 + 10 + 2 + 10];
    size_t h = 0;
    sottod_push_slot *slot = NULL;

    for (size_t i = 0; i < SOTTOD_PUSH_WINDOW; i++) {
        if (c->push[i].push_id == 0) {
            slot = &c->push[i];
            break;
        }
    }
    if (slot == NULL)
        return 1; /* window full: stop */
    uint64_t push_id = c->next_push_id++;
    hdr[h++] = 0x08; /* field 1, varint */
    h += put_varint(hdr + h, push_id);
    hdr[h++] = 0xC2; /* field 40, length-delimited: (40 << 3) | 2 = 322 */
    hdr[h++] = 0x02;
    h += put_varint(hdr + h, env->body_len);
    sottod_tx *t = sottod_tx_new(h + env->body_len);
    if (t == NULL) {
        fc->failed = true;
        return 1;
    }
    memcpy(t->buf + LWS_PRE, hdr, h);
    memcpy(t->buf + LWS_PRE + h, env->body, env->body_len);
    if (sottod_conn_send_tx(c, t) != 0) {
        fc->failed = true;
        return 1;
    }
    slot->push_id = push_id;
    memcpy(slot->env_id, env->id, sizeof(slot->env_id));
    c->push_n++;
    c->cursor = env->seq;
    c->srv->m.envelopes_pushed_total++;
    fc->pushed++;
    return 0;
}

void sottod_delivery_fill(sottod_conn *c)
{
    if (c->wsi == NULL || !c->authed || c->close_after_tx || c->fill_busy)
        return;
    if (c->push == NULL) {
        c->push = calloc(SOTTOD_PUSH_WINDOW, sizeof(*c->push));
        if (c->push == NULL)
            return;
    }
    if (c->push_n >= SOTTOD_PUSH_WINDOW || !c->queue_more)
        return;
    fill_ctx fc = {c, 0, false};
    size_t room = SOTTOD_PUSH_WINDOW - c->push_n;
    c->fill_busy = true;
    int st =
        sottod_store_envelopes_list(c->srv->store, c->addr, c->cursor, room, push_one, &fc, NULL);
    c->fill_busy = false;
    if (st != SOTTOD_STORE_OK)
        sottod_log_store_error(c->srv, "queue_read_failed", "envelopes_list", st);
    /* Fewer than asked for: nothing is queued after the cursor now. Only a
     * committed send to this device (delivery_wake) can change that, so
     * acks need not read the queue again until then. */
    if (st == SOTTOD_STORE_OK && !fc.failed && fc.pushed < room)
        c->queue_more = false;
    if (c->push_n == 0 && c->push != NULL && fc.pushed == 0) {
        /* Idle: give the window back. */
        free(c->push);
        c->push = NULL;
    }
}

static void ack_done(void *arg, const sottod_store_result *res)
{
    sottod_server *srv = arg;
    if (res->status == SOTTOD_STORE_OK)
        srv->m.envelopes_delivered_total += res->u.deleted.deleted;
    else
        sottod_log_store_error(srv, "ack_delete_failed", "envelopes_delete", res->status);
}

void sottod_delivery_ack(sottod_conn *c, uint64_t push_id)
{
    if (c->push == NULL || push_id == 0)
        return;
    for (size_t i = 0; i < SOTTOD_PUSH_WINDOW; i++) {
        if (c->push[i].push_id != push_id)
            continue;
        int st = sottod_store_envelopes_delete(c->srv->store, c->addr, c->push[i].env_id, 1,
                                               ack_done, c->srv);
        if (st != SOTTOD_STORE_OK)
            sottod_log_store_error(c->srv, "ack_submit_failed", "envelopes_delete", st);
        c->push[i].push_id = 0;
        c->push_n--;
        sottod_delivery_fill(c);
        return;
    }
    /* Unknown push id: ignored (docs/api.md). */
}

void sottod_delivery_wake(sottod_server *srv, sottod_addr addr)
{
    sottod_conn *c = sottod_registry_find(srv, addr);
    if (c != NULL) {
        c->queue_more = true;
        sottod_delivery_fill(c);
    }
}
