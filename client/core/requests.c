/*
 * client/core/requests.c -- message requests and blocking (issue 11,
 * everyday.h). STUB: to be written.
 */
#include "everyday.h"

int sc_requests_on_send(sc_client *c, const char *conv_kind, const char *conv)
{
    (void)c, (void)conv_kind, (void)conv;
    return SC_OK;
}

int sc_requests_screen(sc_client *c, const char *src, const Sotto__Content__Content *ct, bool *drop)
{
    (void)c, (void)src, (void)ct;
    *drop = false;
    return SC_OK;
}

int sc_requests_is_request(sc_client *c, const char *conv_kind, const char *conv, bool *request)
{
    (void)c, (void)conv_kind, (void)conv;
    *request = false;
    return SC_OK;
}
