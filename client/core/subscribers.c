/*
 * client/core/subscribers.c -- what the daemon's event subscribers
 * acknowledged (sotto_client.h "Event subscribers"; docs/rpc.md "Events").
 * The event id is the history row id, so an event not acknowledged is
 * found again in the history and handed out again (at-least-once).
 */
#include <string.h>

#include "internal.h"

static bool name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    return n > 0 && n <= 128 && sc_utf8_valid(name, n);
}

const char *sc_account_name(const sc_client *c)
{
    return c->account;
}

int sc_history_max_id(sc_client *c, int64_t *id)
{
    return sc_msg_max_id(c, id);
}

int sc_subscriber_open(sc_client *c, const char *name, int64_t start, int64_t *acked_upto)
{
    if (!name_ok(name))
        return sc_fail(c, SC_E_USAGE, "subscriber name: 1 to 128 bytes of UTF-8");
    return sc_sub_open(c, name, start, acked_upto);
}

int sc_subscriber_unacked(sc_client *c, const char *name, sc_event_cb cb, void *ud, size_t *count)
{
    sc_msg *rows = NULL;
    size_t n = 0;
    int rc;

    if (count)
        *count = 0;
    if (!name_ok(name))
        return sc_fail(c, SC_E_USAGE, "subscriber name: 1 to 128 bytes of UTF-8");
    rc = sc_sub_unacked(c, name, c->device_id, &rows, &n);
    if (rc != SC_OK)
        return rc;
    for (size_t i = 0; i < n; i++)
        (void)sc_emit_row(c, &rows[i], cb, ud);
    sc_msg_list_free(rows, n);
    if (count)
        *count = n;
    return SC_OK;
}

int sc_subscriber_ack(sc_client *c, const char *name, const int64_t *ids, size_t n, int64_t up_to,
                      int64_t *acked_upto)
{
    int64_t dummy;
    if (!name_ok(name))
        return sc_fail(c, SC_E_USAGE, "subscriber name: 1 to 128 bytes of UTF-8");
    return sc_sub_ack(c, name, c->device_id, ids, n, up_to, acked_upto ? acked_upto : &dummy);
}
