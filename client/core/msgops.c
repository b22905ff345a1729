/*
 * client/core/msgops.c -- reactions, replies (quotes), mentions, edits and
 * deletes for everyone (issue 11, everyday.h). STUB: to be written.
 */
#include "everyday.h"

int sc_msgops_decorate(sc_client *c, const char *conv_kind, const char *conv,
                       Sotto__Content__DataMessage *dm, const sc_send_options *o, sc_keep *k)
{
    (void)c, (void)conv_kind, (void)conv, (void)dm, (void)o, (void)k;
    return SC_OK;
}

int sc_msgops_data(sc_client *c, const sc_envelope *e, const char *author, bool outgoing,
                   const char *conv_kind, const char *conv, uint64_t ts,
                   const Sotto__Content__DataMessage *dm, pending_emit *pe, bool *handled)
{
    (void)c, (void)e, (void)author, (void)outgoing, (void)conv_kind, (void)conv, (void)ts;
    (void)dm, (void)pe;
    *handled = false;
    return SC_OK;
}

int sc_edit_handle(sc_client *c, const sc_envelope *e, const char *author, bool outgoing,
                   const char *dest, uint64_t edit_ts, const Sotto__Content__EditMessage *em,
                   pending_emit *pe)
{
    (void)c, (void)e, (void)author, (void)outgoing, (void)dest, (void)edit_ts, (void)em, (void)pe;
    return SC_OK;
}

int sc_msgops_on_stored(sc_client *c, int64_t rowid, const sc_msg_row *m)
{
    (void)c, (void)rowid, (void)m;
    return SC_OK;
}

int sc_msgops_event(sc_client *c, const sc_msg *m, sc_event *ev, sc_keep *k)
{
    (void)c, (void)m, (void)ev, (void)k;
    return SC_OK;
}

int sc_edit_local(sc_client *c, const char *conv_kind, const char *conv, uint64_t target_ts,
                  uint64_t edit_ts, const Sotto__Content__DataMessage *dm, int64_t *rowid_out)
{
    (void)conv_kind, (void)conv, (void)target_ts, (void)edit_ts, (void)dm;
    *rowid_out = 0;
    return sc_fail(c, SC_E_USAGE, "edits are not written yet");
}
