/*
 * client/core/longtext.c -- texts over 2 KiB: a short body plus the whole
 * text as an attachment (issue 11, everyday.h). STUB: to be written.
 */
#include "everyday.h"

int sc_longtext_decorate(sc_client *c, Sotto__Content__DataMessage *dm, sc_keep *k)
{
    (void)c, (void)dm, (void)k;
    return SC_OK;
}
