/*
 * client/core/receipts.c -- delivery and read receipts, read state, typing
 * indicators and their settings (issue 11, everyday.h). STUB: to be written.
 */
#include "everyday.h"

int sc_receipt_handle(sc_client *c, const sc_envelope *e, const Sotto__Content__Content *ct,
                      pending_emit *pe)
{
    (void)c, (void)e, (void)ct, (void)pe;
    return SC_OK;
}

int sc_typing_handle(sc_client *c, const sc_envelope *e, const Sotto__Content__Content *ct)
{
    (void)c, (void)e, (void)ct;
    return SC_OK;
}

int sc_sync_extra_handle(sc_client *c, const sc_envelope *e, const Sotto__Content__Content *ct,
                         pending_emit *pe)
{
    (void)c, (void)e, (void)ct, (void)pe;
    return SC_OK;
}

int sc_receipts_on_stored(sc_client *c, int64_t rowid, const sc_msg_row *m)
{
    (void)c, (void)rowid, (void)m;
    return SC_OK;
}

int sc_receipts_event(sc_client *c, const sc_msg *m, sc_event *ev, sc_keep *k)
{
    (void)c, (void)m, (void)ev, (void)k;
    return SC_OK;
}

int sc_receipts_tick(sc_client *c, bool force)
{
    (void)c, (void)force;
    return SC_OK;
}

void sc_typing_tick(sc_client *c, sc_event_cb cb, void *ud)
{
    (void)c, (void)cb, (void)ud;
}
