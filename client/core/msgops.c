/*
 * client/core/msgops.c -- reactions, replies (quotes), mentions, edits and
 * deletes for everyone (issue 11, everyday.h; docs/protocol.md "Reactions,
 * replies, mentions, edits, deletes").
 *
 * Every change is keyed by the message it acts on, (author, timestamp), and
 * made so that the final state does not depend on the order or the number
 * of times control messages arrive:
 *  - reactions: one row per (message, reactor) in client_reactions; the one
 *    with the highest Content.timestamp wins; a removal is kept as emoji ""
 *    so that an older reaction arriving late cannot come back;
 *  - edits: every version goes into client_edits (the original too, once an
 *    edit is applied); the row shows the version with the highest edit
 *    timestamp; an edit that comes before its message waits there;
 *  - deletes: the row becomes a tombstone (sc_wipe_message), or, when the
 *    delete comes first, client_tombstones remembers it and the message is
 *    wiped as it is stored; edits and reactions after a delete are dropped.
 */
#include <stdalign.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "everyday.h"

#define MAX_MENTIONS 64
/* An edit or delete reaching the server this long after the message it
 * acts on is refused (the 24 hours, plus a little for a send that waited
 * in its sender's queue): the server's clock, which the sender cannot set,
 * unlike the Content timestamps it also passes the 24-hour check on. */
#define LATE_GRACE_MS (3600ull * 1000)
/* Messages not (yet) here that one peer may keep reactions or edits
 * waiting for (they come before their message); more are dropped, so that
 * a flood for messages that never come cannot fill the store. */
#define MAX_ORPHANS 100
#define MAX_VERSIONS 100 /* kept versions of one message (the original included) */

/* Whether a peer's edit or delete stamped by the server at server_ts is
 * too late for message m (a row from a peer, whose server_ts we hold). */
static bool too_late(const sc_msg *m, uint64_t server_ts)
{
    return m->direction == 0 && m->server_ts != 0 && server_ts != 0 &&
           server_ts > m->server_ts + SC_EDIT_WINDOW_MS + LATE_GRACE_MS;
}

/* ------------------------------------------------------------ helpers */

static bool is_group(const char *conv_kind)
{
    return conv_kind && strcmp(conv_kind, "group") == 0;
}

static bool name_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '.';
}

/* Members of group conv (32 hex); SC_E_NOT_FOUND for an unknown group. */
static int members_of(sc_client *c, const char *conv, char ***m, size_t *n, bool *active)
{
    uint8_t gid[SC_GROUP_ID_BYTES];
    size_t bl = 0;

    *m = NULL;
    *n = 0;
    if (sodium_hex2bin(gid, sizeof gid, conv, strlen(conv), NULL, &bl, NULL) != 0 ||
        bl != sizeof gid)
        return SC_E_NOT_FOUND;
    return sc_group_members(c, gid, m, n, NULL, active);
}

static bool listed(char *const *v, size_t n, const char *s, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(v[i]) == len && strncmp(v[i], s, len) == 0)
            return true;
    return false;
}

/* One block of memory for a send's protobuf parts, wiped and freed by the
 * keep list (everyday.h sc_keep). */
typedef struct block {
    size_t size, used;
    alignas(max_align_t) unsigned char data[];
} block;

static void block_free(void *p)
{
    block *b = p;
    sodium_memzero(b, sizeof *b + b->size);
    free(b);
}

static block *block_new(sc_keep *k, size_t size)
{
    block *b = calloc(1, sizeof *b + size);
    if (b == NULL)
        return NULL;
    b->size = size;
    if (sc_keep_add(k, b, block_free) != SC_OK)
        return NULL; /* freed by sc_keep_add */
    return b;
}

static void *carve(block *b, size_t n)
{
    size_t a = alignof(max_align_t);
    size_t at = (b->used + a - 1) / a * a;
    if (at > b->size || n > b->size - at)
        return NULL;
    b->used = at + n;
    return b->data + at;
}

static char *carve_str(block *b, const char *s, size_t len)
{
    char *d = carve(b, len + 1);
    if (d) {
        memcpy(d, s, len);
        d[len] = '\0';
    }
    return d;
}

/* An emoji: 1..SC_MAX_EMOJI_BYTES bytes of UTF-8, no control character or
 * space, at least one non-ASCII character, ASCII only as a keycap base
 * (0-9 # *). Not a full grapheme-cluster check (no Unicode segmentation
 * library is a dependency): a short run of emoji code points passes. */
static bool emoji_valid(const char *e)
{
    size_t len = e ? strlen(e) : 0;
    bool wide = false;

    if (len == 0 || len > SC_MAX_EMOJI_BYTES || !sc_utf8_valid(e, len))
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)e[i];
        if (ch >= 0x80) {
            wide = true;
            /* C1 controls U+0080..U+009F are C2 80..C2 9F */
            if (ch == 0xC2 && i + 1 < len && (unsigned char)e[i + 1] < 0xA0)
                return false;
            continue;
        }
        if (!((ch >= '0' && ch <= '9') || ch == '#' || ch == '*'))
            return false;
    }
    return wide;
}

/* Whether offset `at` of body (len bytes) is on a code-point boundary. */
static bool boundary(const char *body, size_t len, size_t at)
{
    return at == len || (at < len && ((unsigned char)body[at] & 0xC0) != 0x80);
}

/* Stores a control row (everyday.h) and shows it (pe may be NULL). */
static int control_row(sc_client *c, const char *conv_kind, const char *conv, bool outgoing,
                       const char *actor, uint32_t device, uint64_t ts, uint64_t server_ts,
                       const char *kind, const char *body, const char *extra,
                       const char *target_sender, uint64_t target_ts, pending_emit *pe)
{
    sc_msg_row m;
    int64_t rowid = 0;
    int rc;

    memset(&m, 0, sizeof m);
    m.conv_kind = conv_kind;
    m.conv = conv;
    m.direction = outgoing ? 1 : 0;
    m.sender = actor;
    m.sender_device = device;
    m.timestamp = ts;
    m.server_ts = server_ts;
    m.kind = kind;
    m.body = body ? body : "";
    m.body_len = strlen(m.body);
    m.extra = extra;
    m.target_sender = target_sender;
    m.target_ts = target_ts;
    rc = sc_msg_insert(c, &m, &rowid);
    if (rc == SC_OK && pe)
        sc_pend_row(pe, rowid);
    return rc;
}

/* ------------------------------------------------------------ wiping */

/* Delete for everyone of row rowid (message (sender, ts)): expire.c's
 * sc_wipe_message makes it a tombstone and removes its traces; whatever is
 * left of ours (versions, reactions, control rows) goes too. */
static int wipe_row(sc_client *c, int64_t rowid, const char *sender, uint64_t ts)
{
    sc_edit_row *v = NULL;
    size_t n = 0;
    int rc = SC_OK;

    if (c->username && strcmp(sender, c->username) == 0) {
        /* our own edits of it: the copies kept for retry requests */
        rc = sc_edit_list(c, sender, ts, &v, &n);
        for (size_t i = 0; rc == SC_OK && i < n; i++)
            rc = sc_msgops_forget_sent(c, v[i].edit_ts);
        sc_edit_list_free(v, n);
        if (rc != SC_OK)
            return rc;
    }
    rc = sc_wipe_message(c, rowid, true);
    if (rc == SC_OK)
        rc = sc_msgops_tombstone_row(c, rowid);
    if (rc == SC_OK)
        rc = sc_msgops_forget(c, sender, ts);
    if (rc == SC_OK)
        rc = sc_tombstone_add(c, sender, ts);
    if (rc == SC_OK)
        rc = sc_msgops_unquote(c, sender, ts, c->username);
    c->scrub_due = true;
    return rc;
}

/* ------------------------------------------------------------ quotes and mentions */

/* The mentions of extra object o that are valid for body in the
 * conversation: in range, on code-point boundaries, naming a member of the
 * group (1:1: none). members NULL: not a group. Returns a new array. */
static json_t *clean_mentions(json_t *ms, const char *body, size_t len, char *const *members,
                              size_t nm)
{
    json_t *out = json_array(), *x;
    size_t i;

    if (!json_is_array(ms) || members == NULL)
        return out;
    json_array_foreach(ms, i, x)
    {
        const char *name = json_string_value(json_object_get(x, "name"));
        json_int_t st = json_integer_value(json_object_get(x, "start"));
        json_int_t ln = json_integer_value(json_object_get(x, "length"));
        if (json_array_size(out) >= MAX_MENTIONS)
            break;
        if (name == NULL || !sc_username_valid(name) || !listed(members, nm, name, strlen(name)))
            continue;
        if (st < 0 || ln <= 0 || (uint64_t)st + (uint64_t)ln > len ||
            !boundary(body, len, (size_t)st) || !boundary(body, len, (size_t)(st + ln)))
            continue;
        json_array_append(out, x);
    }
    return out;
}

/* Checks the quote and mentions of a stored text row's extra against what
 * a receiver accepts (everyday.h; docs/protocol.md): a quote with a valid
 * author, id and an excerpt of at most SC_QUOTE_EXCERPT_BYTES; mentions
 * of members only. Rewrites the row's extra when something was dropped. */
static int sanitize_row(sc_client *c, const sc_msg *m)
{
    json_t *o, *q, *ms;
    bool dirty = false;
    char **members = NULL;
    size_t nm = 0;
    int rc = SC_OK;

    if (m->extra == NULL)
        return SC_OK;
    o = json_loads(m->extra, 0, NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        return SC_OK;
    }
    q = json_object_get(o, "quote");
    if (q) {
        const char *a = json_string_value(json_object_get(q, "author"));
        const char *t = json_string_value(json_object_get(q, "text"));
        json_int_t id = json_integer_value(json_object_get(q, "timestamp"));
        if (!json_is_object(q) || a == NULL || !sc_username_valid(a) || id <= 0) {
            json_object_del(o, "quote");
            dirty = true;
        } else {
            bool tomb = false;
            int64_t qrow = 0;
            rc = sc_tombstone_has(c, a, (uint64_t)id, &tomb);
            if (rc == SC_OK && !tomb &&
                sc_msgops_find(c, m->conv_kind, m->conv, a, (uint64_t)id, &qrow) == SC_OK) {
                /* we hold the original: its words, not the sender's claim */
                sc_msg o2;
                rc = sc_msg_get(c, qrow, &o2);
                if (rc == SC_OK) {
                    size_t n = sc_utf8_cut(o2.body, o2.body_len, SC_QUOTE_EXCERPT_BYTES);
                    if (t == NULL || strlen(t) != n || strncmp(t, o2.body, n) != 0) {
                        json_object_set_new(q, "text", json_stringn(o2.body, n));
                        dirty = true;
                    }
                    sc_msg_free(&o2);
                }
            } else if (rc == SC_OK && t && t[0] && tomb) {
                /* it quotes a message deleted for everyone */
                json_object_set_new(q, "text", json_string(""));
                dirty = true;
            } else if (t == NULL || strlen(t) > SC_QUOTE_EXCERPT_BYTES) {
                size_t n = t ? sc_utf8_cut(t, strlen(t), SC_QUOTE_EXCERPT_BYTES) : 0;
                json_object_set_new(q, "text", json_stringn(t ? t : "", n));
                dirty = true;
            }
        }
    }
    ms = json_object_get(o, "mentions");
    if (ms) {
        json_t *clean;
        if (is_group(m->conv_kind) && members_of(c, m->conv, &members, &nm, NULL) != SC_OK)
            members = NULL, nm = 0;
        clean = clean_mentions(ms, m->body, m->body_len, members, nm);
        if (json_array_size(clean) != json_array_size(ms)) {
            dirty = true;
            if (json_array_size(clean) == 0)
                json_object_del(o, "mentions");
            else
                json_object_set(o, "mentions", clean);
        }
        json_decref(clean);
        sc_strv_free(members, nm);
    }
    if (rc == SC_OK && dirty) {
        char *s = json_dumps(o, JSON_COMPACT);
        rc = s ? sc_msg_set_extra(c, m->id, s) : sc_fail(c, SC_E_INTERNAL, "out of memory");
        sc_free_secret_str(s);
    }
    json_decref(o);
    return rc;
}

int sc_msgops_decorate(sc_client *c, const char *conv_kind, const char *conv,
                       Sotto__Content__DataMessage *dm, const sc_send_options *o, sc_keep *k)
{
    const char *body = dm->body ? dm->body : "";
    size_t len = strlen(body);
    char **members = NULL;
    size_t nm = 0;
    int rc = SC_OK;

    if (o && (o->quote_author || o->quote_timestamp)) {
        int64_t rowid = 0;
        sc_msg m;
        size_t cut;
        block *b;
        Sotto__Content__DataMessage__Quote *q;

        if (o->quote_author == NULL || o->quote_timestamp == 0 ||
            !sc_username_valid(o->quote_author))
            return sc_fail(c, SC_E_USAGE,
                           "a reply needs the quoted message's author (a"
                           " username) and timestamp");
        rc = sc_msgops_find(c, conv_kind, conv, o->quote_author, o->quote_timestamp, &rowid);
        if (rc == SC_E_NOT_FOUND)
            return sc_fail(c, SC_E_NOT_FOUND, "no message %llu by %s in this conversation",
                           (unsigned long long)o->quote_timestamp, o->quote_author);
        if (rc != SC_OK)
            return rc;
        rc = sc_msg_get(c, rowid, &m);
        if (rc != SC_OK)
            return rc;
        if (m.deleted) {
            sc_msg_free(&m);
            return sc_fail(c, SC_E_NOT_FOUND, "message %llu by %s was deleted",
                           (unsigned long long)o->quote_timestamp, o->quote_author);
        }
        cut = sc_utf8_cut(m.body, m.body_len, SC_QUOTE_EXCERPT_BYTES);
        b = block_new(k, sizeof *q + strlen(o->quote_author) + cut + 4 * alignof(max_align_t));
        q = b ? carve(b, sizeof *q) : NULL;
        if (q) {
            sotto__content__data_message__quote__init(q);
            q->id = o->quote_timestamp;
            q->author = carve_str(b, o->quote_author, strlen(o->quote_author));
            q->text = carve_str(b, m.body, cut);
        }
        sc_msg_free(&m);
        if (q == NULL || q->author == NULL || q->text == NULL)
            return sc_fail(c, SC_E_INTERNAL, "out of memory");
        dm->quote = q;
    }
    if (o && o->n_mentions > 0) {
        block *b;
        Sotto__Content__DataMessage__Mention **pp, *items;
        if (!is_group(conv_kind))
            return sc_fail(c, SC_E_USAGE, "mentions name members of a group");
        if (o->n_mentions > MAX_MENTIONS)
            return sc_fail(c, SC_E_USAGE, "at most %d mentions", MAX_MENTIONS);
        rc = members_of(c, conv, &members, &nm, NULL);
        if (rc != SC_OK)
            return rc;
        for (size_t i = 0; i < o->n_mentions; i++) {
            const sc_mention *mn = &o->mentions[i];
            if (mn->name == NULL || !listed(members, nm, mn->name, strlen(mn->name))) {
                rc = sc_fail(c, SC_E_USAGE, "mention of %s: not a member of the group",
                             mn->name ? mn->name : "(none)");
                goto out;
            }
            if (mn->length == 0 || (uint64_t)mn->start + mn->length > len ||
                !boundary(body, len, mn->start) || !boundary(body, len, mn->start + mn->length)) {
                rc = sc_fail(c, SC_E_USAGE,
                             "mention %u:%u:%s is not inside the text (UTF-8 byte offsets on"
                             " character boundaries)",
                             mn->start, mn->length, mn->name);
                goto out;
            }
        }
        b = block_new(k,
                      o->n_mentions * (sizeof *pp + sizeof *items + 40) + 4 * alignof(max_align_t));
        pp = b ? carve(b, o->n_mentions * sizeof *pp) : NULL;
        items = b ? carve(b, o->n_mentions * sizeof *items) : NULL;
        if (pp == NULL || items == NULL) {
            rc = sc_fail(c, SC_E_INTERNAL, "out of memory");
            goto out;
        }
        for (size_t i = 0; i < o->n_mentions; i++) {
            sotto__content__data_message__mention__init(&items[i]);
            items[i].start = o->mentions[i].start;
            items[i].length = o->mentions[i].length;
            items[i].name = carve_str(b, o->mentions[i].name, strlen(o->mentions[i].name));
            if (items[i].name == NULL) {
                rc = sc_fail(c, SC_E_INTERNAL, "out of memory");
                goto out;
            }
            pp[i] = &items[i];
        }
        dm->mentions = pp;
        dm->n_mentions = o->n_mentions;
    } else if (is_group(conv_kind) && !(o && o->no_auto_mentions) && memchr(body, '@', len)) {
        /* every "@name" of a member (not inside a word, trailing dots
         * left out) */
        size_t found = 0, starts[MAX_MENTIONS], lens[MAX_MENTIONS];
        block *b;
        Sotto__Content__DataMessage__Mention **pp, *items;

        rc = members_of(c, conv, &members, &nm, NULL);
        if (rc != SC_OK)
            return rc;
        for (size_t i = 0; i < len && found < MAX_MENTIONS; i++) {
            size_t j = i + 1, e;
            if (body[i] != '@' || (i > 0 && name_char(body[i - 1])))
                continue;
            while (j < len && name_char(body[j]) && j - i <= 32)
                j++;
            e = j;
            while (e > i + 1 && body[e - 1] == '.')
                e--;
            if (e > i + 1 && listed(members, nm, body + i + 1, e - i - 1)) {
                starts[found] = i;
                lens[found] = e - i;
                found++;
                i = e - 1;
            }
        }
        if (found > 0) {
            b = block_new(k, found * (sizeof *pp + sizeof *items + 40) + 4 * alignof(max_align_t));
            pp = b ? carve(b, found * sizeof *pp) : NULL;
            items = b ? carve(b, found * sizeof *items) : NULL;
            if (pp == NULL || items == NULL) {
                rc = sc_fail(c, SC_E_INTERNAL, "out of memory");
                goto out;
            }
            for (size_t i = 0; i < found; i++) {
                sotto__content__data_message__mention__init(&items[i]);
                items[i].start = (uint32_t)starts[i];
                items[i].length = (uint32_t)lens[i];
                items[i].name = carve_str(b, body + starts[i] + 1, lens[i] - 1);
                if (items[i].name == NULL) {
                    rc = sc_fail(c, SC_E_INTERNAL, "out of memory");
                    goto out;
                }
                pp[i] = &items[i];
            }
            dm->mentions = pp;
            dm->n_mentions = found;
        }
    }
out:
    sc_strv_free(members, nm);
    return rc;
}

/* ------------------------------------------------------------ edits */

/* "contact:NAME" / "group:HEX": the conversation an edit version belongs to. */
static void conv_tag(const char *conv_kind, const char *conv, char *out, size_t cap)
{
    snprintf(out, cap, "%s:%s", conv_kind, conv);
}

/* The extra JSON of a version: its conversation and mentions. */
static char *version_extra(const char *conv_kind, const char *conv, json_t *mentions)
{
    char tag[96];
    json_t *o = json_object();
    char *s;

    conv_tag(conv_kind, conv, tag, sizeof tag);
    json_object_set_new(o, "conv", json_string(tag));
    if (json_is_array(mentions) && json_array_size(mentions) > 0)
        json_object_set(o, "mentions", mentions);
    s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

static json_t *dm_mentions_json(const Sotto__Content__DataMessage *d)
{
    json_t *a = json_array();
    for (size_t i = 0; d && i < d->n_mentions && i < MAX_MENTIONS; i++) {
        const Sotto__Content__DataMessage__Mention *mn = d->mentions[i];
        json_t *x;
        if (mn == NULL || mn->name == NULL || !sc_username_valid(mn->name))
            continue;
        x = json_object();
        json_object_set_new(x, "name", json_string(mn->name));
        json_object_set_new(x, "start", json_integer(mn->start));
        json_object_set_new(x, "length", json_integer(mn->length));
        json_array_append_new(a, x);
    }
    return a;
}

/* Shows the newest stored version of row m (text row, not deleted): the
 * original goes into client_edits first; versions of another
 * conversation are ignored. *changed: the row now shows another text. */
static int show_newest(sc_client *c, const sc_msg *m, bool *changed)
{
    sc_edit_row *v = NULL;
    size_t n = 0, best = SIZE_MAX;
    char tag[96];
    int rc;

    *changed = false;
    if (m->deleted)
        return SC_OK;
    rc = sc_edit_list(c, m->sender, m->timestamp, &v, &n);
    if (rc != SC_OK || n == 0)
        goto out;
    conv_tag(m->conv_kind, m->conv, tag, sizeof tag);
    for (size_t i = 0; i < n; i++) {
        json_t *x = v[i].extra ? json_loads(v[i].extra, 0, NULL) : NULL;
        const char *vc = json_string_value(json_object_get(x, "conv"));
        bool ours = vc && strcmp(vc, tag) == 0;
        json_decref(x);
        if (ours && v[i].edit_ts > m->timestamp &&
            (best == SIZE_MAX || v[i].edit_ts > v[best].edit_ts))
            best = i;
    }
    if (best == SIZE_MAX || v[best].edit_ts <= m->edited_ts)
        goto out;
    {
        json_t *o = m->extra ? json_loads(m->extra, 0, NULL) : json_object();
        json_t *vx = v[best].extra ? json_loads(v[best].extra, 0, NULL) : NULL;
        char **members = NULL;
        size_t nm = 0;
        char *s = NULL;
        bool added = false;

        if (!json_is_object(o)) {
            json_decref(o);
            o = json_object();
        }
        if (m->edited_ts == 0) {
            /* the original version, before its text is replaced */
            char *ox = version_extra(m->conv_kind, m->conv, json_object_get(o, "mentions"));
            rc = sc_edit_add(c, m->sender, m->timestamp, m->timestamp, m->body, m->body_len, ox,
                             &added);
            sc_free_secret_str(ox);
        }
        if (rc == SC_OK) {
            json_t *clean;
            if (is_group(m->conv_kind) && members_of(c, m->conv, &members, &nm, NULL) != SC_OK)
                members = NULL, nm = 0;
            clean = clean_mentions(json_object_get(vx, "mentions"), v[best].body, v[best].body_len,
                                   members, nm);
            if (json_array_size(clean) > 0)
                json_object_set(o, "mentions", clean);
            else
                json_object_del(o, "mentions");
            json_decref(clean);
            sc_strv_free(members, nm);
            s = json_object_size(o) > 0 ? json_dumps(o, JSON_COMPACT) : NULL;
            rc = sc_msg_set_edited(c, m->id, v[best].body, v[best].body_len, s, v[best].edit_ts);
            if (rc == SC_OK)
                *changed = true;
        }
        sc_free_secret_str(s);
        json_decref(o);
        json_decref(vx);
    }
out:
    sc_edit_list_free(v, n);
    return rc;
}

/* Applies version (edit_ts, d) of message (author, target_ts) in (ck, cv):
 * stored; shown when it is the newest. *added: it was new. */
static int edit_apply(sc_client *c, const char *ck, const char *cv, const char *author,
                      uint64_t target_ts, uint64_t edit_ts, const Sotto__Content__DataMessage *d,
                      int64_t *rowid_out, bool *added)
{
    json_t *ms = dm_mentions_json(d);
    char *vx = version_extra(ck, cv, ms);
    int64_t rowid = 0;
    int rc;

    json_decref(ms);
    *added = false;
    if (vx == NULL)
        return sc_fail(c, SC_E_INTERNAL, "out of memory");
    rc = sc_edit_add(c, author, target_ts, edit_ts, d->body, strlen(d->body), vx, added);
    sc_free_secret_str(vx);
    if (rc == SC_OK) {
        rc = sc_msgops_find(c, ck, cv, author, target_ts, &rowid);
        if (rc == SC_OK) {
            sc_msg m;
            bool changed = false;
            rc = sc_msg_get(c, rowid, &m);
            if (rc == SC_OK) {
                rc = show_newest(c, &m, &changed);
                sc_msg_free(&m);
            }
        } else if (rc == SC_E_NOT_FOUND) {
            rc = SC_OK; /* applied when the message comes */
        }
    }
    if (rowid_out)
        *rowid_out = rowid;
    return rc;
}

int sc_edit_local(sc_client *c, const char *conv_kind, const char *conv, uint64_t target_ts,
                  uint64_t edit_ts, const Sotto__Content__DataMessage *dm, int64_t *rowid_out)
{
    int64_t rowid = 0;
    sc_msg m;
    bool added = false;
    int rc;

    *rowid_out = 0;
    rc = sc_msgops_find(c, conv_kind, conv, c->username, target_ts, &rowid);
    if (rc == SC_E_NOT_FOUND)
        return sc_fail(c, SC_E_NOT_FOUND, "no message %llu of yours in this conversation",
                       (unsigned long long)target_ts);
    if (rc != SC_OK)
        return rc;
    rc = sc_msg_get(c, rowid, &m);
    if (rc != SC_OK)
        return rc;
    if (m.deleted)
        rc = sc_fail(c, SC_E_NOT_FOUND, "message %llu was deleted", (unsigned long long)target_ts);
    else if (edit_ts < target_ts || edit_ts - target_ts > SC_EDIT_WINDOW_MS)
        rc = sc_fail(c, SC_E_USAGE, "a message can be edited only within 24 hours of sending it");
    else if (dm->long_text || dm->n_attachments > 0)
        rc = sc_fail(c, SC_E_USAGE, "an edit is a text of at most %d bytes",
                     SC_LONG_TEXT_INLINE_BYTES);
    else if (dm->body == NULL || dm->body[0] == '\0')
        rc = sc_fail(c, SC_E_USAGE, "an edit needs a text");
    sc_msg_free(&m);
    if (rc != SC_OK)
        return rc;
    rc = edit_apply(c, conv_kind, conv, c->username, target_ts, edit_ts, dm, &rowid, &added);
    *rowid_out = rowid;
    return rc;
}

int sc_edit_handle(sc_client *c, const sc_envelope *e, const char *author, bool outgoing,
                   const char *dest, uint64_t edit_ts, const Sotto__Content__EditMessage *em,
                   pending_emit *pe)
{
    const Sotto__Content__DataMessage *d = em ? em->data : NULL;
    uint64_t target_ts = em ? em->target_timestamp : 0;
    char gid_hex[2 * SC_GROUP_ID_BYTES + 1];
    const char *ck, *cv;
    bool tomb = false, added = false;
    int64_t rowid = 0;
    int rc;

    if (d == NULL || target_ts == 0 || d->body == NULL)
        return SC_OK;
    /* an edit is a short text (a sender refuses a long one: sc_edit_local) */
    if (!sc_utf8_valid(d->body, strlen(d->body)) || d->body[0] == '\0' ||
        strlen(d->body) > SC_LONG_TEXT_INLINE_BYTES)
        return SC_OK;
    /* the author only (the message is looked up under the sender's name),
     * within 24 hours of the message */
    if (edit_ts < target_ts || edit_ts - target_ts > SC_EDIT_WINDOW_MS)
        return SC_OK;
    if (d->group) {
        char **members = NULL;
        size_t nm = 0;
        bool active = false, member;
        if (d->group->id.len != SC_GROUP_ID_BYTES)
            return SC_OK;
        sc_hex(d->group->id.data, SC_GROUP_ID_BYTES, gid_hex);
        rc = members_of(c, gid_hex, &members, &nm, &active);
        if (rc == SC_E_NOT_FOUND)
            return SC_OK;
        if (rc != SC_OK)
            return rc;
        member = listed(members, nm, author, strlen(author));
        sc_strv_free(members, nm);
        if (!member && !outgoing)
            return SC_OK;
        ck = "group";
        cv = gid_hex;
    } else {
        ck = "contact";
        cv = outgoing ? dest : author;
        if (cv == NULL || !sc_username_valid(cv))
            return SC_OK;
    }
    rc = sc_tombstone_has(c, author, target_ts, &tomb);
    if (rc != SC_OK || tomb)
        return rc; /* an edit after the delete: nothing */
    rc = sc_msgops_find(c, ck, cv, author, target_ts, &rowid);
    if (rc == SC_OK) {
        sc_msg m;
        rc = sc_msg_get(c, rowid, &m);
        if (rc != SC_OK)
            return rc;
        tomb = m.deleted || (!outgoing && too_late(&m, e->server_ts));
        sc_msg_free(&m);
        if (tomb)
            return SC_OK;
    } else if (rc != SC_E_NOT_FOUND) {
        return rc;
    }
    if (!outgoing) {
        /* bounded: MAX_VERSIONS versions of a message, and edits waiting
         * for MAX_ORPHANS messages (that came before them) per author */
        bool waiting = rc == SC_E_NOT_FOUND;
        sc_edit_row *v = NULL;
        size_t nv = 0, orphans = 0;
        rc = sc_edit_list(c, author, target_ts, &v, &nv);
        sc_edit_list_free(v, nv);
        if (rc == SC_OK && waiting && nv == 0)
            rc = sc_msgops_orphans(c, author, SC_ORPHAN_EDITS, MAX_ORPHANS, &orphans);
        if (rc != SC_OK || nv >= MAX_VERSIONS || orphans >= MAX_ORPHANS)
            return rc;
    }
    rc = edit_apply(c, ck, cv, author, target_ts, edit_ts, d, NULL, &added);
    if (rc != SC_OK || !added)
        return rc;
    return control_row(c, ck, cv, outgoing, author, e->source_device, edit_ts, e->server_ts, "edit",
                       d->body, NULL, author, target_ts, pe);
}

int sc_edit_history(sc_client *c, const char *conv, bool is_group_conv, const char *author,
                    uint64_t target_ts, sc_edit_cb cb, void *ud)
{
    uint8_t gid[SC_GROUP_ID_BYTES];
    char gid_hex[2 * SC_GROUP_ID_BYTES + 1], tag[96];
    const char *ck = is_group_conv ? "group" : "contact", *cv = conv;
    char **senders = NULL;
    size_t ns = 0, n = 0;
    sc_edit_row *v = NULL;
    int64_t rowid = 0;
    sc_msg m;
    int rc;

    memset(&m, 0, sizeof m);
    if (is_group_conv) {
        rc = sc_group_resolve(c, conv, gid);
        if (rc != SC_OK)
            return rc;
        sc_hex(gid, sizeof gid, gid_hex);
        cv = gid_hex;
    } else if (conv == NULL || !sc_username_valid(conv)) {
        return sc_fail(c, SC_E_USAGE, "invalid contact name: %s", conv ? conv : "(none)");
    }
    if (author == NULL) {
        rc = sc_msgops_senders_at(c, ck, cv, target_ts, &senders, &ns);
        if (rc != SC_OK)
            return rc;
        if (ns == 0) {
            rc = sc_fail(c, SC_E_NOT_FOUND, "no message %llu in this conversation",
                         (unsigned long long)target_ts);
            goto out;
        }
        if (ns > 1) {
            rc = sc_fail(c, SC_E_USAGE, "several messages have timestamp %llu: give the author",
                         (unsigned long long)target_ts);
            goto out;
        }
        author = senders[0];
    }
    rc = sc_msgops_find(c, ck, cv, author, target_ts, &rowid);
    if (rc == SC_E_NOT_FOUND)
        rc = sc_fail(c, SC_E_NOT_FOUND, "no message %llu by %s in this conversation",
                     (unsigned long long)target_ts, author);
    if (rc == SC_OK)
        rc = sc_msg_get(c, rowid, &m);
    if (rc != SC_OK)
        goto out;
    if (m.deleted) {
        rc = sc_fail(c, SC_E_NOT_FOUND, "message %llu was deleted for everyone",
                     (unsigned long long)target_ts);
        goto out;
    }
    if (m.edited_ts != 0) {
        rc = sc_edit_list(c, m.sender, m.timestamp, &v, &n);
        if (rc != SC_OK)
            goto out;
    }
    conv_tag(ck, cv, tag, sizeof tag);
    if (n == 0) {
        sc_edit_version ver = {m.sender, m.timestamp, m.timestamp, m.body, m.body_len, true, true};
        cb(ud, &ver);
    }
    for (size_t i = 0; i < n; i++) {
        json_t *x = v[i].extra ? json_loads(v[i].extra, 0, NULL) : NULL;
        const char *vc = json_string_value(json_object_get(x, "conv"));
        bool ours = vc && strcmp(vc, tag) == 0;
        json_decref(x);
        if (ours) {
            sc_edit_version ver = {m.sender,
                                   m.timestamp,
                                   v[i].edit_ts,
                                   v[i].body,
                                   v[i].body_len,
                                   v[i].edit_ts == m.timestamp,
                                   v[i].edit_ts == m.edited_ts};
            cb(ud, &ver);
        }
    }
out:
    sc_edit_list_free(v, n);
    sc_msg_free(&m);
    sc_strv_free(senders, ns);
    return rc;
}

/* ------------------------------------------------------------ reactions and deletes */

/* A reaction by `reactor` in (ck, cv) at ts; *applied whether it changed
 * what is shown. */
static int reaction_apply(sc_client *c, const char *ck, const char *cv, const char *reactor,
                          const char *target_author, uint64_t target_ts, const char *emoji,
                          uint64_t ts, bool *applied)
{
    bool tomb = false;
    int64_t rowid = 0;
    int rc;

    *applied = false;
    rc = sc_tombstone_has(c, target_author, target_ts, &tomb);
    if (rc != SC_OK || tomb)
        return rc;
    rc = sc_msgops_find(c, ck, cv, target_author, target_ts, &rowid);
    if (rc == SC_E_NOT_FOUND) {
        /* not here (yet): kept for when it comes, unless the message is
         * one of another conversation */
        size_t orphans = 0;
        rc = sc_msgops_find(c, NULL, NULL, target_author, target_ts, &rowid);
        if (rc == SC_OK)
            return SC_OK;
        if (rc != SC_E_NOT_FOUND)
            return rc;
        rc = sc_msgops_orphans(c, reactor, SC_ORPHAN_REACTIONS, MAX_ORPHANS, &orphans);
        if (rc != SC_OK || orphans >= MAX_ORPHANS)
            return rc;
    } else if (rc != SC_OK) {
        return rc;
    } else {
        sc_msg m;
        rc = sc_msg_get(c, rowid, &m);
        if (rc != SC_OK)
            return rc;
        tomb = m.deleted;
        sc_msg_free(&m);
        if (tomb)
            return SC_OK;
    }
    return sc_reaction_put(c, target_author, target_ts, reactor, emoji, ts, applied);
}

static char *reaction_extra(const char *emoji, bool remove)
{
    json_t *o = json_object();
    char *s;
    json_object_set_new(o, "emoji", json_string(emoji));
    json_object_set_new(o, "remove", json_boolean(remove));
    s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

/* A delete for everyone by `author` of its message target_ts in (ck, cv). */
static int delete_apply(sc_client *c, const char *ck, const char *cv, const char *author,
                        uint64_t target_ts, uint64_t server_ts, bool *applied)
{
    int64_t rowid = 0;
    bool tomb = false;
    int rc;

    *applied = false;
    rc = sc_msgops_find(c, ck, cv, author, target_ts, &rowid);
    if (rc == SC_OK) {
        sc_msg m;
        rc = sc_msg_get(c, rowid, &m);
        if (rc != SC_OK)
            return rc;
        tomb = m.deleted || too_late(&m, server_ts); /* server_ts 0: ours */
        sc_msg_free(&m);
        if (tomb)
            return SC_OK;
        *applied = true;
        return wipe_row(c, rowid, author, target_ts);
    }
    if (rc != SC_E_NOT_FOUND)
        return rc;
    /* the delete came first: remembered (up to MAX_ORPHANS per author
     * from a peer), and what came before it goes */
    rc = sc_tombstone_has(c, author, target_ts, &tomb);
    if (rc != SC_OK || tomb)
        return rc;
    if (server_ts != 0) {
        size_t orphans = 0;
        rc = sc_msgops_orphans(c, author, SC_ORPHAN_DELETES, MAX_ORPHANS, &orphans);
        if (rc != SC_OK || orphans >= MAX_ORPHANS)
            return rc;
    }
    rc = sc_tombstone_add(c, author, target_ts);
    if (rc == SC_OK)
        rc = sc_msgops_forget(c, author, target_ts);
    if (rc == SC_OK)
        rc = sc_msgops_unquote(c, author, target_ts, c->username);
    c->scrub_due = true;
    *applied = rc == SC_OK;
    return rc;
}

int sc_msgops_data(sc_client *c, const sc_envelope *e, const char *author, bool outgoing,
                   const char *conv_kind, const char *conv, uint64_t ts,
                   const Sotto__Content__DataMessage *dm, pending_emit *pe, bool *handled)
{
    bool applied = false;
    int rc;

    *handled = false;
    if (dm->reaction) {
        const Sotto__Content__DataMessage__Reaction *r = dm->reaction;
        const char *ta = r->target_author;
        const char *emoji = r->remove ? "" : r->emoji;
        char *x;

        *handled = true;
        if (ta == NULL || !sc_username_valid(ta) || r->target_timestamp == 0)
            return SC_OK;
        if (!r->remove && !emoji_valid(emoji))
            return SC_OK;
        /* 1:1: a message of one of the two */
        if (!is_group(conv_kind) && strcmp(ta, conv) != 0 &&
            !(c->username && strcmp(ta, c->username) == 0))
            return SC_OK;
        rc = reaction_apply(c, conv_kind, conv, author, ta, r->target_timestamp, emoji, ts,
                            &applied);
        if (rc != SC_OK || !applied)
            return rc;
        x = reaction_extra(r->remove ? (r->emoji && emoji_valid(r->emoji) ? r->emoji : "") : emoji,
                           r->remove);
        rc = control_row(c, conv_kind, conv, outgoing, author, e->source_device, ts, e->server_ts,
                         "reaction", "", x, ta, r->target_timestamp, pe);
        free(x);
        return rc;
    }
    if (dm->delete_) {
        uint64_t tts = dm->delete_->target_timestamp;
        *handled = true;
        if (tts == 0 || ts < tts || ts - tts > SC_EDIT_WINDOW_MS)
            return SC_OK;
        rc = delete_apply(c, conv_kind, conv, author, tts, outgoing ? 0 : e->server_ts, &applied);
        if (rc != SC_OK || !applied)
            return rc;
        return control_row(c, conv_kind, conv, outgoing, author, e->source_device, ts, e->server_ts,
                           "delete", "", NULL, author, tts, pe);
    }
    return SC_OK;
}

/* Reactions that came before message m (kept without their conversation)
 * from someone who is not part of m's conversation are dropped: a member
 * of another conversation cannot react to a message it never saw. */
static int drop_foreign_reactions(sc_client *c, const sc_msg *m)
{
    sc_reaction_row *v = NULL;
    char **members = NULL;
    size_t n = 0, nm = 0;
    int rc = sc_reaction_list(c, m->sender, m->timestamp, &v, &n);

    if (rc != SC_OK || n == 0)
        goto out;
    if (is_group(m->conv_kind) && members_of(c, m->conv, &members, &nm, NULL) != SC_OK)
        members = NULL, nm = 0;
    for (size_t i = 0; rc == SC_OK && i < n; i++) {
        const char *r = v[i].reactor;
        bool ok =
            (c->username && strcmp(r, c->username) == 0) ||
            (is_group(m->conv_kind) ? listed(members, nm, r, strlen(r)) : strcmp(r, m->conv) == 0);
        if (!ok)
            rc = sc_reaction_remove(c, m->sender, m->timestamp, r);
    }
out:
    sc_strv_free(members, nm);
    sc_reaction_list_free(v, n);
    return rc;
}

int sc_msgops_on_stored(sc_client *c, int64_t rowid, const sc_msg_row *mr)
{
    sc_msg m;
    bool tomb = false, changed = false;
    int rc;

    (void)mr;
    rc = sc_msg_get(c, rowid, &m);
    if (rc != SC_OK)
        return rc;
    rc = sc_tombstone_has(c, m.sender, m.timestamp, &tomb);
    if (rc == SC_OK && tomb) {
        /* its delete came first */
        rc = wipe_row(c, rowid, m.sender, m.timestamp);
        sc_msg_free(&m);
        return rc;
    }
    if (rc == SC_OK)
        rc = sanitize_row(c, &m);
    if (rc == SC_OK)
        rc = drop_foreign_reactions(c, &m);
    if (rc == SC_OK) {
        sc_msg m2;
        rc = sc_msg_get(c, rowid, &m2);
        if (rc == SC_OK) {
            rc = show_newest(c, &m2, &changed); /* edits that came first */
            sc_msg_free(&m2);
        }
    }
    sc_msg_free(&m);
    return rc;
}

int sc_msgops_event(sc_client *c, const sc_msg *m, sc_event *ev, sc_keep *k)
{
    sc_reaction_row *v = NULL;
    size_t n = 0, size;
    sc_reaction_info *ri;
    block *b;
    int rc;

    if (m->kind == NULL || strcmp(m->kind, "text") != 0 || m->target_sender || m->deleted)
        return SC_OK;
    rc = sc_reaction_list(c, m->sender, m->timestamp, &v, &n);
    if (rc != SC_OK || n == 0)
        goto out;
    size = n * sizeof *ri + 2 * alignof(max_align_t);
    for (size_t i = 0; i < n; i++)
        size += strlen(v[i].reactor) + strlen(v[i].emoji) + 2 + 2 * alignof(max_align_t);
    b = block_new(k, size);
    ri = b ? carve(b, n * sizeof *ri) : NULL;
    if (ri == NULL) {
        rc = SC_E_INTERNAL;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        ri[i].reactor = carve_str(b, v[i].reactor, strlen(v[i].reactor));
        ri[i].emoji = carve_str(b, v[i].emoji, strlen(v[i].emoji));
        ri[i].timestamp = v[i].reacted_ts;
    }
    ev->reactions = ri;
    ev->n_reactions = n;
out:
    sc_reaction_list_free(v, n);
    return rc;
}

/* ------------------------------------------------------------ public API */

/* The conversation (kind, key) of `to`: key is `to` or the group id in hex
 * (into hex). */
static int resolve_conv(sc_client *c, const char *to, bool to_group, char hex[33], const char **key)
{
    uint8_t gid[SC_GROUP_ID_BYTES];
    int rc;

    if (c->username == NULL)
        return sc_fail(c, SC_E_STATE, "account %s is not registered", c->account);
    if (to_group) {
        rc = sc_group_resolve(c, to, gid);
        if (rc != SC_OK)
            return rc;
        sc_hex(gid, sizeof gid, hex);
        *key = hex;
        return SC_OK;
    }
    if (to == NULL || !sc_username_valid(to))
        return sc_fail(c, SC_E_USAGE, "invalid contact name: %s", to ? to : "(none)");
    *key = to;
    return SC_OK;
}

/* The live (not deleted) row of message (author, ts) in (ck, cv). */
static int live_row(sc_client *c, const char *ck, const char *cv, const char *author, uint64_t ts,
                    sc_msg *m)
{
    int64_t rowid = 0;
    int rc = sc_msgops_find(c, ck, cv, author, ts, &rowid);

    memset(m, 0, sizeof *m);
    if (rc == SC_E_NOT_FOUND)
        return sc_fail(c, SC_E_NOT_FOUND, "no message %llu by %s in this conversation",
                       (unsigned long long)ts, author);
    if (rc == SC_OK)
        rc = sc_msg_get(c, rowid, m);
    if (rc == SC_OK && m->deleted) {
        sc_msg_free(m);
        return sc_fail(c, SC_E_NOT_FOUND, "message %llu by %s was deleted", (unsigned long long)ts,
                       author);
    }
    return rc;
}

/* After a control message was queued (send_rc its send's result): runs
 * the local change in a transaction; the send's error wins. */
static int after_send(sc_client *c, int send_rc, int local_rc)
{
    if (c->scrub_due) {
        c->scrub_due = false;
        (void)sc_store_scrub(c);
    }
    return send_rc != SC_OK ? send_rc : local_rc;
}

int sc_send_reaction(sc_client *c, const char *to, bool to_group, const char *target_author,
                     uint64_t target_ts, const char *emoji, bool remove, uint64_t *timestamp_out)
{
    Sotto__Content__DataMessage dm = SOTTO__CONTENT__DATA_MESSAGE__INIT;
    Sotto__Content__DataMessage__Reaction r = SOTTO__CONTENT__DATA_MESSAGE__REACTION__INIT;
    char hex[33], *cur = NULL;
    const char *cv = NULL, *ck = to_group ? "group" : "contact";
    uint64_t ts = 0;
    bool applied = false;
    sc_msg m;
    int rc, lrc = SC_OK;

    if (timestamp_out)
        *timestamp_out = 0;
    rc = resolve_conv(c, to, to_group, hex, &cv);
    if (rc != SC_OK)
        return rc;
    if (target_author == NULL || !sc_username_valid(target_author) || target_ts == 0)
        return sc_fail(c, SC_E_USAGE, "give the message's author (a username) and timestamp");
    if (!remove && !emoji_valid(emoji))
        return sc_fail(c, SC_E_USAGE,
                       "not an emoji: give one emoji (at most %d bytes of UTF-8, no spaces or"
                       " letters)",
                       SC_MAX_EMOJI_BYTES);
    rc = live_row(c, ck, cv, target_author, target_ts, &m);
    if (rc != SC_OK)
        return rc;
    sc_msg_free(&m);
    if (remove) {
        /* Signal names the emoji taken away */
        rc = sc_reaction_get(c, target_author, target_ts, c->username, &cur);
        if (rc != SC_OK && rc != SC_E_NOT_FOUND)
            return rc;
        emoji = cur && cur[0] ? cur : (emoji && emoji_valid(emoji) ? emoji : "");
    }
    r.emoji = (char *)emoji;
    r.remove = remove;
    r.target_author = (char *)target_author;
    r.target_timestamp = target_ts;
    dm.reaction = &r;
    rc = sc_send_data(c, to, to_group, &dm, NULL, NULL, true, &ts, NULL);
    if (ts != 0) {
        lrc = sc_db_begin(c);
        if (lrc == SC_OK)
            lrc = reaction_apply(c, ck, cv, c->username, target_author, target_ts,
                                 remove ? "" : emoji, ts, &applied);
        if (lrc == SC_OK && applied) {
            char *x = reaction_extra(emoji, remove);
            lrc = control_row(c, ck, cv, true, c->username, c->device_id, ts, 0, "reaction", "", x,
                              target_author, target_ts, NULL);
            free(x);
        }
        if (lrc == SC_OK)
            lrc = sc_db_commit(c);
        else
            sc_db_rollback(c);
    }
    free(cur);
    if (timestamp_out)
        *timestamp_out = ts;
    return after_send(c, rc, lrc);
}

int sc_remote_delete(sc_client *c, const char *to, bool to_group, uint64_t target_ts,
                     uint64_t *timestamp_out)
{
    Sotto__Content__DataMessage dm = SOTTO__CONTENT__DATA_MESSAGE__INIT;
    Sotto__Content__DataMessage__Delete d = SOTTO__CONTENT__DATA_MESSAGE__DELETE__INIT;
    char hex[33];
    const char *cv = NULL, *ck = to_group ? "group" : "contact";
    uint64_t ts = 0, now = sc_now_ms();
    bool applied = false;
    sc_msg m;
    int rc, lrc = SC_OK;

    if (timestamp_out)
        *timestamp_out = 0;
    rc = resolve_conv(c, to, to_group, hex, &cv);
    if (rc != SC_OK)
        return rc;
    rc = live_row(c, ck, cv, c->username, target_ts, &m);
    if (rc != SC_OK)
        return rc;
    sc_msg_free(&m);
    if (now < target_ts || now - target_ts > SC_EDIT_WINDOW_MS)
        return sc_fail(c, SC_E_USAGE,
                       "a message can be deleted for everyone only within 24 hours of sending it");
    d.target_timestamp = target_ts;
    dm.delete_ = &d;
    rc = sc_send_data(c, to, to_group, &dm, NULL, NULL, true, &ts, NULL);
    if (ts != 0) {
        lrc = sc_db_begin(c);
        if (lrc == SC_OK)
            lrc = delete_apply(c, ck, cv, c->username, target_ts, 0, &applied);
        if (lrc == SC_OK && applied)
            lrc = control_row(c, ck, cv, true, c->username, c->device_id, ts, 0, "delete", "", NULL,
                              c->username, target_ts, NULL);
        if (lrc == SC_OK)
            lrc = sc_db_commit(c);
        else
            sc_db_rollback(c);
    }
    if (timestamp_out)
        *timestamp_out = ts;
    return after_send(c, rc, lrc);
}
