/*
 * client/core/expire.c -- disappearing messages and wiping a message from
 * the store (issue 11, everyday.h). STUB: to be written.
 */
#include "everyday.h"

int sc_expire_decorate(sc_client *c, const char *conv_kind, const char *conv,
                       Sotto__Content__DataMessage *dm, uint32_t *expire_s)
{
    (void)c, (void)conv_kind, (void)conv, (void)dm;
    *expire_s = 0;
    return SC_OK;
}

int sc_expire_data(sc_client *c, const sc_envelope *e, const char *author, bool outgoing,
                   const char *conv_kind, const char *conv, uint64_t ts,
                   const Sotto__Content__DataMessage *dm, pending_emit *pe, bool *handled)
{
    (void)c, (void)e, (void)author, (void)outgoing, (void)conv_kind, (void)conv, (void)ts;
    (void)dm, (void)pe;
    *handled = false;
    return SC_OK;
}

int sc_expire_tick(sc_client *c)
{
    (void)c;
    return SC_OK;
}

int sc_wipe_message(sc_client *c, int64_t rowid, bool tombstone)
{
    (void)c, (void)rowid, (void)tombstone;
    return SC_OK;
}

int sc_store_scrub(sc_client *c)
{
    (void)c;
    return SC_OK;
}
