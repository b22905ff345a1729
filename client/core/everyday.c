/*
 * client/core/everyday.c -- glue of everyday messaging (issue 11,
 * everyday.h): the keep list of a send, the extra JSON of a text row,
 * the housekeeping tick.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "sotto/attachment.h"

#include "everyday.h"

int sc_keep_add(sc_keep *k, void *p, void (*fn)(void *))
{
    if (p == NULL)
        return SC_OK;
    if (k->n >= sizeof k->p / sizeof k->p[0]) {
        (fn ? fn : free)(p);
        return SC_E_INTERNAL;
    }
    k->p[k->n] = p;
    k->fn[k->n] = fn;
    k->n++;
    return SC_OK;
}

void sc_keep_release(sc_keep *k)
{
    while (k->n > 0) {
        k->n--;
        (k->fn[k->n] ? k->fn[k->n] : free)(k->p[k->n]);
    }
}

char *sc_data_extra_json(const Sotto__Content__DataMessage *dm)
{
    char *att = sc_attachment_pointers_json(dm);
    json_t *o;
    char *s;

    if (dm->quote == NULL && dm->n_mentions == 0 && dm->long_text == NULL)
        return att;
    o = att ? json_loads(att, 0, NULL) : json_object();
    sc_free_secret_str(att);
    if (o == NULL)
        return NULL;
    sc_data_extra_add(o, dm, true);
    s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

void sc_data_extra_add(json_t *o, const Sotto__Content__DataMessage *dm, bool with_long_text)
{
    if (dm->quote) {
        json_t *q = json_object();
        json_object_set_new(q, "author", json_string(dm->quote->author));
        json_object_set_new(q, "timestamp", json_integer((json_int_t)dm->quote->id));
        json_object_set_new(q, "text", json_string(dm->quote->text));
        json_object_set_new(o, "quote", q);
    }
    if (dm->n_mentions > 0) {
        json_t *arr = json_array();
        for (size_t i = 0; i < dm->n_mentions; i++) {
            json_t *m = json_object();
            json_object_set_new(m, "name", json_string(dm->mentions[i]->name));
            json_object_set_new(m, "start", json_integer(dm->mentions[i]->start));
            json_object_set_new(m, "length", json_integer(dm->mentions[i]->length));
            json_array_append_new(arr, m);
        }
        json_object_set_new(o, "mentions", arr);
    }
    if (with_long_text && dm->long_text) {
        /* the same shape as one of "attachments" (attach.c): fetched by
         * longtext.c, which then replaces the row's body */
        const Sotto__Content__AttachmentPointer *p = dm->long_text;
        char key[2 * SOTTO_ATTACHMENT_KEY_BYTES + 1] = "", dig[65] = "";
        const char *id = p->id ? p->id : "";
        json_t *lt = json_object();
        if (p->key.len == SOTTO_ATTACHMENT_KEY_BYTES && p->key.data)
            sc_hex(p->key.data, SOTTO_ATTACHMENT_KEY_BYTES, key);
        if (p->digest.len == 32 && p->digest.data)
            sc_hex(p->digest.data, 32, dig);
        json_object_set_new(lt, "id", json_string(sc_utf8_valid(id, strlen(id)) ? id : ""));
        json_object_set_new(lt, "key", json_string(key));
        json_object_set_new(lt, "digest", json_string(dig));
        json_object_set_new(
            lt, "size",
            json_integer(p->size <= SC_MAX_TEXT_BYTES ? (json_int_t)p->size : (json_int_t)-1));
        json_object_set_new(o, "long_text", lt);
        sodium_memzero(key, sizeof key);
    }
}

void sc_everyday_tick(sc_client *c, sc_event_cb cb, void *ud)
{
    if (c->username == NULL)
        return;
    (void)sc_expire_tick(c);
    (void)sc_receipts_tick(c, false);
    sc_typing_tick(c, cb, ud);
    sc_profile_tick(c);
}
