/*
 * client/core/profile.c -- profiles: a display name and avatar encrypted
 * with the account's profile key (issue 11, everyday.h). STUB: to be written.
 */
#include "everyday.h"

int sc_profile_decorate(sc_client *c, const char *conv_kind, const char *conv,
                        Sotto__Content__DataMessage *dm)
{
    (void)c, (void)conv_kind, (void)conv, (void)dm;
    return SC_OK;
}

int sc_profile_data(sc_client *c, const sc_envelope *e, const char *author, bool outgoing,
                    const Sotto__Content__DataMessage *dm, bool *handled)
{
    (void)c, (void)e, (void)author, (void)outgoing, (void)dm;
    *handled = false;
    return SC_OK;
}

int sc_profile_event(sc_client *c, const sc_msg *m, sc_event *ev, sc_keep *k)
{
    (void)c, (void)m, (void)ev, (void)k;
    return SC_OK;
}
