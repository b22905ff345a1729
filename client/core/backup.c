/*
 * client/core/backup.c -- account backup and recovery (issue 8, "Account
 * recovery"; docs/protocol.md "Backup payload" and "Recovery").
 *
 *  - sc_backup_create: on the primary device, the payload (proto/backup.proto:
 *    account key pair, server, contacts with pinned account keys, accepted
 *    device lists and verified flags, groups, optional history) sealed with a
 *    fresh recovery code by libsotto (include/sotto/backup.h) into a 0600
 *    file written atomically;
 *  - sc_backup_open_file: opens and checks a file with the code, without any
 *    local account (a wrong code creates nothing);
 *  - sc_restore_opened: fills a new local account and re-takes the username:
 *    fetches the account's current signed device list before login,
 *    verifies it under the backup's account key, and registers this device
 *    with `recover` and a list (version current + 1) holding only itself.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "api.h"
#include "backup_payload.h"
#include "internal.h"
#include "sotto/backup.h"
#include "sotto/device_list.h"
#include "sotto/error.h"

_Static_assert(SC_RECOVERY_CODE_TEXT_BYTES == SOTTO_RECOVERY_CODE_TEXT_BYTES,
               "recovery code text size");
_Static_assert(SC_BACKUP_PAYLOAD_MAX == SOTTO_BACKUP_PAYLOAD_MAX, "payload bound");

struct sc_backup {
    Sotto__Backup__Backup *pb;
};

/* ------------------------------------------------------------ parse */

static int perr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int perr(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (err && errlen) {
        n = snprintf(err, errlen, "not a valid backup: ");
        va_start(ap, fmt);
        if (n > 0 && (size_t)n < errlen)
            vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return SC_E_USAGE;
}

static bool short_text(const char *s, size_t max)
{
    size_t n;

    if (s == NULL)
        return false;
    n = strnlen(s, max + 1);
    return n <= max && sc_utf8_valid(s, n);
}

static bool is_hex(const char *s, size_t n)
{
    if (strnlen(s, n + 1) != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
              (s[i] >= 'A' && s[i] <= 'F')))
            return false;
    return true;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_id(const void *a, const void *b)
{
    return sodium_compare(*(const uint8_t *const *)a, *(const uint8_t *const *)b,
                          SC_GROUP_ID_BYTES);
}

/* Contacts: names valid, distinct, not ours; keys and lists consistent. */
static int check_contacts(const Sotto__Backup__Backup *b, char *err, size_t errlen)
{
    const char **names;
    int rc = SC_OK;

    if (b->n_contacts > SC_BACKUP_MAX_CONTACTS)
        return perr(err, errlen, "%zu contacts (at most %d)", b->n_contacts,
                    SC_BACKUP_MAX_CONTACTS);
    names = calloc(b->n_contacts + 1, sizeof *names);
    if (names == NULL)
        return SC_E_INTERNAL;
    for (size_t i = 0; rc == SC_OK && i < b->n_contacts; i++) {
        const Sotto__Backup__Contact *k = b->contacts[i];
        sotto_public_key key;
        sotto_device_list l;

        if (!sc_username_valid(k->name) || strcmp(k->name, b->username) == 0) {
            rc = perr(err, errlen, "contact %zu: not a contact name", i);
            break;
        }
        names[i] = k->name;
        if (k->account_key.len == 0) {
            if (k->device_list.len != 0 || k->list_version != 0)
                rc = perr(err, errlen, "contact %s: a device list without an account key", k->name);
            continue;
        }
        if (k->account_key.len != SOTTO_PUBLIC_KEY_BYTES ||
            sotto_public_key_decode(&key, k->account_key.data, k->account_key.len) != SOTTO_OK) {
            rc = perr(err, errlen, "contact %s: bad account key", k->name);
            continue;
        }
        if (k->device_list.len == 0) {
            if (k->list_version != 0)
                rc = perr(err, errlen, "contact %s: a list version without a list", k->name);
            continue;
        }
        if (k->device_list.len > SOTTO_DEVICE_LIST_MAX_BYTES ||
            sotto_device_list_verify(&l, k->device_list.data, k->device_list.len, &key, k->name) !=
                SOTTO_OK)
            rc = perr(err, errlen, "contact %s: a device list its account key did not sign",
                      k->name);
        else if (l.version != k->list_version)
            rc = perr(err, errlen, "contact %s: list version %llu, the list says %llu", k->name,
                      (unsigned long long)k->list_version, (unsigned long long)l.version);
    }
    if (rc == SC_OK && b->n_contacts > 1) {
        qsort(names, b->n_contacts, sizeof *names, cmp_str);
        for (size_t i = 1; rc == SC_OK && i < b->n_contacts; i++)
            if (strcmp(names[i - 1], names[i]) == 0)
                rc = perr(err, errlen, "contact %s twice", names[i]);
    }
    free(names);
    return rc;
}

static int check_groups(const Sotto__Backup__Backup *b, char *err, size_t errlen)
{
    const uint8_t **ids;
    int rc = SC_OK;

    if (b->n_groups > SC_BACKUP_MAX_GROUPS)
        return perr(err, errlen, "%zu groups (at most %d)", b->n_groups, SC_BACKUP_MAX_GROUPS);
    ids = calloc(b->n_groups + 1, sizeof *ids);
    if (ids == NULL)
        return SC_E_INTERNAL;
    for (size_t i = 0; rc == SC_OK && i < b->n_groups; i++) {
        const Sotto__Backup__Group *g = b->groups[i];

        if (g->id.len != SC_GROUP_ID_BYTES) {
            rc = perr(err, errlen, "group %zu: id of %zu bytes", i, g->id.len);
            break;
        }
        ids[i] = g->id.data;
        if (!short_text(g->name, SC_MAX_GROUP_NAME_BYTES))
            rc = perr(err, errlen, "group %zu: bad name", i);
        else if (g->n_members > SC_MAX_GROUP_MEMBERS + 1)
            rc = perr(err, errlen, "group %zu: %zu members", i, g->n_members);
        for (size_t m = 0; rc == SC_OK && m < g->n_members; m++)
            if (!sc_username_valid(g->members[m]))
                rc = perr(err, errlen, "group %zu: bad member name", i);
        if (rc == SC_OK && g->n_admins > g->n_members)
            rc = perr(err, errlen, "group %zu: %zu admins", i, g->n_admins);
        for (size_t m = 0; rc == SC_OK && m < g->n_admins; m++)
            if (!sc_username_valid(g->admins[m]))
                rc = perr(err, errlen, "group %zu: bad admin name", i);
    }
    if (rc == SC_OK && b->n_groups > 1) {
        qsort(ids, b->n_groups, sizeof *ids, cmp_id);
        for (size_t i = 1; rc == SC_OK && i < b->n_groups; i++)
            if (sodium_memcmp(ids[i - 1], ids[i], SC_GROUP_ID_BYTES) == 0)
                rc = perr(err, errlen, "a group twice");
    }
    free(ids);
    return rc;
}

static int check_history(const Sotto__Backup__Backup *b, char *err, size_t errlen)
{
    if (b->n_history > SC_BACKUP_MAX_HISTORY)
        return perr(err, errlen, "%zu history rows (at most %d)", b->n_history,
                    SC_BACKUP_MAX_HISTORY);
    for (size_t i = 0; i < b->n_history; i++) {
        const Sotto__Backup__HistoryRow *h = b->history[i];
        bool conv_ok = strcmp(h->conv_kind, "contact") == 0 || strcmp(h->conv_kind, "group") == 0;
        bool kind_ok = strcmp(h->kind, "text") == 0 || strcmp(h->kind, "notice") == 0 ||
                       strcmp(h->kind, "group") == 0;

        if (!conv_ok || !kind_ok || h->direction > 1 || !short_text(h->conv, SC_BACKUP_MAX_NAME) ||
            !short_text(h->sender, SC_BACKUP_MAX_NAME) || h->body.len > SC_BACKUP_MAX_BODY ||
            (h->body.len > 0 && !sc_utf8_valid((const char *)h->body.data, h->body.len)) ||
            (h->has_extra && !short_text(h->extra, SC_BACKUP_MAX_EXTRA)))
            return perr(err, errlen, "history row %zu is malformed", i);
    }
    return SC_OK;
}

int sc_backup_payload_parse(const uint8_t *p, size_t len, Sotto__Backup__Backup **out, char *err,
                            size_t errlen)
{
    Sotto__Backup__Backup *b;
    int rc;

    *out = NULL;
    if (err && errlen)
        err[0] = '\0';
    if (len > SC_BACKUP_PAYLOAD_MAX)
        return perr(err, errlen, "larger than %zu bytes", SC_BACKUP_PAYLOAD_MAX);
    b = sotto__backup__backup__unpack(NULL, len, p);
    if (b == NULL)
        return perr(err, errlen, "the payload does not parse");
    if (b->format != SC_BACKUP_FORMAT)
        rc = perr(err, errlen, "format %u (this client reads %d)", b->format, SC_BACKUP_FORMAT);
    else if (!sc_username_valid(b->username))
        rc = perr(err, errlen, "bad username");
    else if (b->account_private_key.len != SOTTO_PRIVATE_KEY_BYTES)
        rc = perr(err, errlen, "an account key of %zu bytes", b->account_private_key.len);
    else if (!short_text(b->server_url, SC_BACKUP_MAX_URL) ||
             strncmp(b->server_url, "https://", 8) != 0 || strlen(b->server_url) < 9)
        rc = perr(err, errlen, "bad server URL");
    else if (b->pin[0] != '\0' && !is_hex(b->pin, 64))
        rc = perr(err, errlen, "bad server pin");
    else if (b->ca_pem.len > SC_BACKUP_MAX_CA)
        rc = perr(err, errlen, "a CA bundle of %zu bytes", b->ca_pem.len);
    else if ((rc = check_contacts(b, err, errlen)) == SC_OK &&
             (rc = check_groups(b, err, errlen)) == SC_OK)
        rc = check_history(b, err, errlen);
    if (rc != SC_OK) {
        if (rc == SC_E_INTERNAL && err && errlen)
            snprintf(err, errlen, "out of memory");
        sc_backup_payload_free(b);
        return rc;
    }
    *out = b;
    return SC_OK;
}

void sc_backup_payload_free(Sotto__Backup__Backup *b)
{
    if (b == NULL)
        return;
    if (b->account_private_key.data)
        sodium_memzero(b->account_private_key.data, b->account_private_key.len);
    if (b->ca_pem.data)
        sodium_memzero(b->ca_pem.data, b->ca_pem.len);
    for (size_t i = 0; i < b->n_history; i++) {
        Sotto__Backup__HistoryRow *h = b->history[i];
        if (h->body.data)
            sodium_memzero(h->body.data, h->body.len);
        if (h->extra && h->extra[0])
            sodium_memzero(h->extra, strlen(h->extra));
    }
    sotto__backup__backup__free_unpacked(b, NULL);
}

/* ------------------------------------------------------------ import */

int sc_backup_payload_import(sc_client *c, const Sotto__Backup__Backup *b, sc_backup_counts *counts)
{
    sotto_key_pair kp;
    bool empty = false;
    sc_backup_counts n = {0, 0, 0};
    int rc;

    if (counts)
        memset(counts, 0, sizeof *counts);
    rc = sc_store_is_empty(c, &empty);
    if (rc != SC_OK)
        return rc;
    if (!empty || c->username)
        return sc_fail(c, SC_E_STATE,
                       "a backup is restored into a new local account only (this one has an"
                       " account, contacts or history)");
    if (sotto_key_pair_from_private(&kp, b->account_private_key.data) != SOTTO_OK)
        return sc_fail(c, SC_E_USAGE, "not a valid backup: the account key is not a key");
    rc = sc_db_begin(c);
    if (rc != SC_OK) {
        sotto_key_pair_wipe(&kp);
        return rc;
    }
    rc = sc_cfg_set_blob(c, "account_sk", kp.priv, sizeof kp.priv);
    if (rc == SC_OK)
        rc = sc_cfg_set_blob(c, "account_pk", kp.pub.bytes, SOTTO_PUBLIC_KEY_BYTES);
    sotto_key_pair_wipe(&kp);
    for (size_t i = 0; rc == SC_OK && i < b->n_contacts; i++) {
        const Sotto__Backup__Contact *k = b->contacts[i];
        rc = sc_contact_import(c, k->name, k->verified);
        if (rc == SC_OK && k->account_key.len == SC_ACCOUNT_KEY_BYTES)
            rc = sc_account_import(c, k->name, k->account_key.data, k->device_list.data,
                                   k->device_list.len, k->list_version);
        /* issue 11: restored contacts are accepted unless they were a request */
        if (rc == SC_OK && !k->request)
            rc = sc_conv_set_accepted(c, "contact", k->name, true);
        if (rc == SC_OK && k->blocked)
            rc = sc_blocked_add(c, k->name, sc_now_ms(), NULL);
        n.contacts += rc == SC_OK;
    }
    for (size_t i = 0; rc == SC_OK && i < b->n_groups; i++) {
        const Sotto__Backup__Group *g = b->groups[i];
        rc = sc_group_upsert(c, g->id.data, g->name, g->active);
        if (rc == SC_OK)
            rc = sc_group_set_members(c, g->id.data, g->members, g->n_members);
        if (rc == SC_OK)
            rc = sc_group_set_admins(c, g->id.data, g->admins, g->n_admins);
        if (rc == SC_OK)
            rc = sc_group_set_meta(c, g->id.data, g->revision, g->open);
        if (rc == SC_OK && !g->request) {
            char hex[2 * SC_GROUP_ID_BYTES + 1];
            sc_hex(g->id.data, SC_GROUP_ID_BYTES, hex);
            rc = sc_conv_set_accepted(c, "group", hex, true);
        }
        n.groups += rc == SC_OK;
    }
    for (size_t i = 0; rc == SC_OK && i < b->n_history; i++) {
        const Sotto__Backup__HistoryRow *h = b->history[i];
        sc_msg_row m;

        memset(&m, 0, sizeof m);
        m.conv_kind = h->conv_kind;
        m.conv = h->conv;
        m.direction = (int)h->direction;
        m.sender = h->sender;
        m.sender_device = h->sender_device;
        m.timestamp = h->timestamp;
        m.server_ts = h->server_ts;
        m.kind = h->kind;
        m.body = h->body.len ? (const char *)h->body.data : "";
        m.body_len = h->body.len;
        m.extra = h->has_extra ? h->extra : NULL;
        rc = sc_msg_insert(c, &m, NULL);
        n.history += rc == SC_OK;
    }
    if (rc == SC_OK) {
        rc = sc_db_commit(c);
    } else {
        char why[sizeof c->err];
        snprintf(why, sizeof why, "%s", c->err);
        sc_db_rollback(c);
        snprintf(c->err, sizeof c->err, "%s", why);
    }
    if (rc == SC_OK && counts)
        *counts = n;
    return rc;
}

/* ------------------------------------------------------------ export */

/* Everything the export allocates, freed (and wiped) in one place. */
typedef struct export_state {
    Sotto__Backup__Backup b;
    sotto_key_pair kp;
    uint8_t *ca;
    size_t ca_len;
    Sotto__Backup__Contact *contacts;
    Sotto__Backup__Contact **contact_ptrs;
    sc_account_row *rows;
    Sotto__Backup__Group *groups;
    Sotto__Backup__Group **group_ptrs;
    char ***members;
    size_t *n_members;
    char **group_names;
    char ***admins;
    size_t *n_admins;
    uint8_t *group_ids;
    size_t n_group_ids;
    sc_msg *msgs;
    size_t n_msgs;
    Sotto__Backup__HistoryRow *hist;
    Sotto__Backup__HistoryRow **hist_ptrs;
    sc_contact_info *cl;
    size_t n_cl;
    char **names;
    size_t n_names;
} export_state;

static void export_free(export_state *s)
{
    sotto_key_pair_wipe(&s->kp);
    if (s->ca) {
        sodium_memzero(s->ca, s->ca_len);
        free(s->ca);
    }
    for (size_t i = 0; s->rows && i < s->b.n_contacts; i++)
        sc_account_row_clear(&s->rows[i]);
    free(s->rows);
    free(s->contacts);
    free(s->contact_ptrs);
    for (size_t i = 0; s->members && i < s->n_group_ids; i++)
        sc_strv_free(s->members[i], s->n_members[i]);
    for (size_t i = 0; s->group_names && i < s->n_group_ids; i++)
        free(s->group_names[i]);
    for (size_t i = 0; s->admins && i < s->n_group_ids; i++)
        sc_strv_free(s->admins[i], s->n_admins[i]);
    free(s->admins);
    free(s->n_admins);
    free(s->members);
    free(s->n_members);
    free(s->group_names);
    free(s->group_ids);
    free(s->groups);
    free(s->group_ptrs);
    sc_msg_list_free(s->msgs, s->n_msgs);
    free(s->hist);
    free(s->hist_ptrs);
    sc_contact_list_free(s->cl, s->n_cl);
    sc_strv_free(s->names, s->n_names);
    memset(s, 0, sizeof *s);
}

/* Reads the CA file trusted for the server (bounded). */
static int read_small_file(sc_client *c, const char *path, size_t max, uint8_t **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf;
    size_t n;

    *out = NULL;
    *len = 0;
    if (f == NULL)
        return sc_fail(c, SC_E_USAGE, "cannot read %s: %s", path, strerror(errno));
    buf = malloc(max + 1);
    if (buf == NULL) {
        fclose(f);
        return sc_fail(c, SC_E_INTERNAL, "out of memory");
    }
    n = fread(buf, 1, max + 1, f);
    if (ferror(f) || n > max) {
        fclose(f);
        free(buf);
        return sc_fail(c, SC_E_USAGE, "cannot read %s (or larger than %zu bytes)", path, max);
    }
    fclose(f);
    *out = buf;
    *len = n;
    return SC_OK;
}

/* The union of client_contacts and client_accounts, by name, without us. */
static int export_contacts(sc_client *c, export_state *s)
{
    size_t k = 0, cap, np;
    sc_person *people;
    int rc = sc_contact_list(c, &s->cl, &s->n_cl);

    if (rc == SC_OK)
        rc = sc_account_names(c, &s->names, &s->n_names);
    if (rc != SC_OK)
        return rc;
    cap = s->n_cl + s->n_names + 1;
    s->contacts = calloc(cap, sizeof *s->contacts);
    s->contact_ptrs = calloc(cap, sizeof *s->contact_ptrs);
    s->rows = calloc(cap, sizeof *s->rows);
    people = calloc(cap, sizeof *people);
    if (s->contacts == NULL || s->contact_ptrs == NULL || s->rows == NULL || people == NULL) {
        free(people);
        return sc_fail(c, SC_E_INTERNAL, "out of memory");
    }
    np = sc_people_union(s->cl, s->n_cl, s->names, s->n_names, c->username, people);
    for (size_t p = 0; p < np; p++) {
        const char *name = people[p].name;
        Sotto__Backup__Contact *ct = &s->contacts[k];

        sotto__backup__contact__init(ct);
        ct->name = (char *)name;
        ct->verified = people[p].verified;
        rc = sc_account_get(c, name, &s->rows[k]);
        if (rc == SC_OK && s->rows[k].has_key) {
            ct->account_key.data = s->rows[k].account_key;
            ct->account_key.len = SC_ACCOUNT_KEY_BYTES;
            if (s->rows[k].list) {
                ct->device_list.data = s->rows[k].list;
                ct->device_list.len = s->rows[k].list_len;
                ct->list_version = s->rows[k].list_version;
            }
        } else if (rc != SC_OK && rc != SC_E_NOT_FOUND) {
            free(people);
            return rc;
        }
        {
            /* issue 11: a pending message request, a blocked account */
            bool acc = false, blk = false;
            rc = sc_contact_request_state(c, name, &acc, &blk);
            if (rc != SC_OK) {
                free(people);
                return rc;
            }
            ct->request = !acc;
            ct->blocked = blk;
        }
        s->contact_ptrs[k] = ct;
        s->b.n_contacts = ++k; /* export_free clears rows[0..k) */
    }
    free(people);
    s->b.contacts = s->contact_ptrs;
    return SC_OK;
}

static int export_groups(sc_client *c, export_state *s)
{
    size_t n = 0;
    int rc = sc_group_ids(c, &s->group_ids, &n);

    if (rc != SC_OK)
        return rc;
    s->n_group_ids = n;
    s->groups = calloc(n + 1, sizeof *s->groups);
    s->group_ptrs = calloc(n + 1, sizeof *s->group_ptrs);
    s->members = calloc(n + 1, sizeof *s->members);
    s->n_members = calloc(n + 1, sizeof *s->n_members);
    s->group_names = calloc(n + 1, sizeof *s->group_names);
    s->admins = calloc(n + 1, sizeof *s->admins);
    s->n_admins = calloc(n + 1, sizeof *s->n_admins);
    if (!s->groups || !s->group_ptrs || !s->members || !s->n_members || !s->group_names ||
        !s->admins || !s->n_admins)
        return sc_fail(c, SC_E_INTERNAL, "out of memory");
    for (size_t i = 0; i < n; i++) {
        Sotto__Backup__Group *g = &s->groups[i];
        bool active = false;
        uint8_t *id = s->group_ids + i * SC_GROUP_ID_BYTES;

        rc = sc_group_members(c, id, &s->members[i], &s->n_members[i], &s->group_names[i], &active);
        if (rc != SC_OK)
            return rc;
        sotto__backup__group__init(g);
        g->id.data = id;
        g->id.len = SC_GROUP_ID_BYTES;
        g->name = s->group_names[i];
        g->members = s->members[i];
        g->n_members = s->n_members[i];
        g->active = active;
        {
            bool open = false;
            rc = sc_group_meta(c, id, &g->revision, &open);
            g->open = open;
        }
        if (rc == SC_OK)
            rc = sc_group_admins(c, id, &s->admins[i], &s->n_admins[i]);
        if (rc != SC_OK)
            return rc;
        g->admins = s->admins[i];
        g->n_admins = s->n_admins[i];
        {
            /* issue 11: a group not accepted is a message request */
            char hex[2 * SC_GROUP_ID_BYTES + 1];
            bool acc = false;
            sc_hex(id, SC_GROUP_ID_BYTES, hex);
            rc = sc_conv_accepted(c, "group", hex, &acc);
            if (rc != SC_OK)
                return rc;
            g->request = !acc;
        }
        s->group_ptrs[i] = g;
    }
    s->b.groups = s->group_ptrs;
    s->b.n_groups = n;
    return SC_OK;
}

static int export_history(sc_client *c, export_state *s)
{
    int64_t after = 0;
    size_t cap = 0;

    for (;;) {
        sc_msg *page = NULL;
        size_t n = 0;
        int rc = sc_msg_page(c, after, 1000, &page, &n);

        if (rc != SC_OK)
            return rc;
        if (n == 0) {
            free(page);
            break;
        }
        if (s->n_msgs + n > SC_BACKUP_MAX_HISTORY) {
            sc_msg_list_free(page, n);
            return sc_fail(c, SC_E_USAGE,
                           "more than %d history rows: make the backup without"
                           " --history",
                           SC_BACKUP_MAX_HISTORY);
        }
        if (s->n_msgs + n > cap) {
            sc_msg *nv;
            cap = (s->n_msgs + n) * 2;
            nv = realloc(s->msgs, cap * sizeof *nv);
            if (nv == NULL) {
                sc_msg_list_free(page, n);
                return sc_fail(c, SC_E_INTERNAL, "out of memory");
            }
            s->msgs = nv;
        }
        memcpy(s->msgs + s->n_msgs, page, n * sizeof *page);
        s->n_msgs += n;
        after = page[n - 1].id;
        free(page); /* the rows' strings now belong to s->msgs */
    }
    s->hist = calloc(s->n_msgs + 1, sizeof *s->hist);
    s->hist_ptrs = calloc(s->n_msgs + 1, sizeof *s->hist_ptrs);
    if (s->hist == NULL || s->hist_ptrs == NULL)
        return sc_fail(c, SC_E_INTERNAL, "out of memory");
    s->b.n_history = 0;
    for (size_t i = 0; i < s->n_msgs; i++) {
        Sotto__Backup__HistoryRow *h = &s->hist[s->b.n_history];
        const sc_msg *m = &s->msgs[i];

        /* issue 11: control rows (receipts, reactions, edits, deletes, read
         * syncs) are events, not history; a message deleted for everyone
         * or a disappearing one is never written to a backup (as Signal) */
        if (m->target_sender != NULL || m->deleted || m->expire_s != 0 ||
            (strcmp(m->kind, "text") != 0 && strcmp(m->kind, "notice") != 0 &&
             strcmp(m->kind, "group") != 0))
            continue;
        sotto__backup__history_row__init(h);
        h->conv_kind = m->conv_kind;
        h->conv = m->conv;
        h->direction = m->direction ? 1 : 0;
        h->sender = m->sender;
        h->sender_device = m->sender_device;
        h->timestamp = m->timestamp;
        h->server_ts = m->server_ts;
        h->kind = m->kind;
        h->body.data = (uint8_t *)m->body;
        h->body.len = m->body_len;
        h->has_extra = m->extra != NULL;
        h->extra = m->extra ? m->extra : (char *)"";
        s->hist_ptrs[s->b.n_history++] = h;
    }
    s->b.history = s->hist_ptrs;
    return SC_OK;
}

int sc_backup_payload_export(sc_client *c, bool with_history, uint8_t **out, size_t *len,
                             sc_backup_counts *counts)
{
    export_state s;
    sc_account_row own;
    size_t size;
    int rc;

    *out = NULL;
    *len = 0;
    if (counts)
        memset(counts, 0, sizeof *counts);
    memset(&s, 0, sizeof s);
    if (c->username == NULL)
        return sc_fail(c, SC_E_STATE, "account %s is not registered", c->account);
    if (!sc_is_primary(c))
        return sc_fail(c, SC_E_STATE,
                       "only the primary device (the one holding the account key) can make a"
                       " backup");
    rc = sc_account_key_load(c, &s.kp);
    if (rc != SC_OK)
        return rc;
    sotto__backup__backup__init(&s.b);
    s.b.format = SC_BACKUP_FORMAT;
    s.b.username = c->username;
    s.b.account_private_key.data = s.kp.priv;
    s.b.account_private_key.len = sizeof s.kp.priv;
    s.b.created_ms = sc_now_ms();
    if (sc_account_get(c, c->username, &own) == SC_OK) {
        s.b.own_list_version = own.list_version;
        sc_account_row_clear(&own);
    }
    s.b.server_url = c->server_url ? c->server_url : (char *)"";
    s.b.pin = c->pin_hex ? c->pin_hex : (char *)"";
    if (c->ca_file && c->ca_file[0] && (c->pin_hex == NULL || c->pin_hex[0] == '\0')) {
        rc = read_small_file(c, c->ca_file, SC_BACKUP_MAX_CA, &s.ca, &s.ca_len);
        s.b.ca_pem.data = s.ca;
        s.b.ca_pem.len = s.ca_len;
    }
    if (rc == SC_OK)
        rc = export_contacts(c, &s);
    if (rc == SC_OK)
        rc = export_groups(c, &s);
    if (rc == SC_OK && with_history)
        rc = export_history(c, &s);
    if (rc == SC_OK) {
        size = sotto__backup__backup__get_packed_size(&s.b);
        if (size > SC_BACKUP_PAYLOAD_MAX)
            rc = sc_fail(c, SC_E_USAGE, "the backup would be %zu bytes, more than %zu%s", size,
                         SC_BACKUP_PAYLOAD_MAX, with_history ? ": make it without --history" : "");
        else if ((*out = malloc(size ? size : 1)) == NULL)
            rc = sc_fail(c, SC_E_INTERNAL, "out of memory");
        else
            *len = sotto__backup__backup__pack(&s.b, *out);
    }
    if (rc == SC_OK && counts) {
        counts->contacts = s.b.n_contacts;
        counts->groups = s.b.n_groups;
        counts->history = s.b.n_history;
    }
    export_free(&s);
    return rc;
}

/* ------------------------------------------------------------ files */

/* Writes `data` to `path` atomically with mode 0600: a temporary file in
 * the same directory, fsync, rename, fsync of the directory. */
static int write_atomic(sc_client *c, const char *path, const uint8_t *data, size_t len)
{
    size_t pl = strlen(path);
    char *tmp = malloc(pl + 16), *dir = strdup(path), *slash;
    int fd = -1, rc = SC_OK;
    size_t off = 0;

    if (tmp == NULL || dir == NULL) {
        free(tmp);
        free(dir);
        return sc_fail(c, SC_E_INTERNAL, "out of memory");
    }
    snprintf(tmp, pl + 16, "%s.tmp-XXXXXX", path);
    fd = mkstemp(tmp); /* 0600 */
    if (fd < 0) {
        rc = sc_fail(c, SC_E_USAGE, "cannot create %s: %s", tmp, strerror(errno));
        goto out;
    }
    if (fchmod(fd, 0600) != 0) {
        rc = sc_fail(c, SC_E_USAGE, "cannot set the mode of %s: %s", tmp, strerror(errno));
        goto out;
    }
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            rc = sc_fail(c, SC_E_USAGE, "cannot write %s: %s", tmp, strerror(errno));
            goto out;
        }
        off += (size_t)w;
    }
    if (fsync(fd) != 0) {
        rc = sc_fail(c, SC_E_USAGE, "cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        rc = sc_fail(c, SC_E_USAGE, "cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        rc = sc_fail(c, SC_E_USAGE, "cannot write %s: %s", path, strerror(errno));
        goto out;
    }
    slash = strrchr(dir, '/');
    if (slash == dir)
        slash[1] = '\0';
    else if (slash)
        *slash = '\0';
    {
        int dfd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            (void)fsync(dfd); /* best effort: the file itself is synced */
            close(dfd);
        }
    }
out:
    if (fd >= 0)
        close(fd);
    if (rc != SC_OK)
        (void)unlink(tmp);
    free(tmp);
    free(dir);
    return rc;
}

int sc_backup_create(sc_client *c, const char *path, bool with_history,
                     char code_out[SC_RECOVERY_CODE_TEXT_BYTES], sc_backup_info *info)
{
    sotto_recovery_code code;
    sc_backup_counts counts;
    uint8_t *payload = NULL, *file = NULL;
    size_t len = 0, flen = 0;
    int rc, e;

    memset(code_out, 0, SC_RECOVERY_CODE_TEXT_BYTES);
    memset(&code, 0, sizeof code);
    if (info)
        memset(info, 0, sizeof *info);
    if (path == NULL || path[0] == '\0')
        return sc_fail(c, SC_E_USAGE, "usage: backup create FILE [--history]");
    rc = sc_backup_payload_export(c, with_history, &payload, &len, &counts);
    if (rc != SC_OK)
        return rc;
    file = malloc(len + SOTTO_BACKUP_OVERHEAD);
    if (file == NULL) {
        rc = sc_fail(c, SC_E_INTERNAL, "out of memory");
        goto out;
    }
    if (sotto_recovery_code_generate(&code) != SOTTO_OK) {
        rc = sc_fail(c, SC_E_INTERNAL, "cannot draw a recovery code");
        goto out;
    }
    e = sotto_backup_seal(file, len + SOTTO_BACKUP_OVERHEAD, &flen, payload, len, &code, NULL);
    if (e != SOTTO_OK) {
        rc = sc_fail(c, SC_E_INTERNAL, "cannot seal the backup: %s", sotto_strerror(e));
        goto out;
    }
    rc = write_atomic(c, path, file, flen);
    if (rc == SC_OK && sotto_recovery_code_format(&code, code_out) != SOTTO_OK)
        rc = sc_fail(c, SC_E_INTERNAL, "cannot format the recovery code");
    if (rc != SC_OK)
        (void)unlink(path); /* a file nobody can open without the code */
out:
    if (rc != SC_OK)
        sodium_memzero(code_out, SC_RECOVERY_CODE_TEXT_BYTES);
    else if (info) {
        info->contacts = counts.contacts;
        info->groups = counts.groups;
        info->history = counts.history;
    }
    sotto_recovery_code_wipe(&code);
    if (payload) {
        sodium_memzero(payload, len);
        free(payload);
    }
    free(file);
    return rc;
}

int sc_backup_open_file(const char *path, const char *code_text, sc_backup **out, bool *wrong_code,
                        char *err, size_t errlen)
{
    sotto_recovery_code code;
    struct stat st;
    uint8_t *file = NULL, *payload = NULL;
    size_t plen = 0, flen = 0;
    FILE *f = NULL;
    int rc = SC_OK, e;

    *out = NULL;
    if (wrong_code)
        *wrong_code = false;
    if (err && errlen)
        err[0] = '\0';
    if (sotto_init() != SOTTO_OK) {
        snprintf(err, errlen, "cannot initialise");
        return SC_E_INTERNAL;
    }
    if (code_text == NULL || sotto_recovery_code_parse(&code, code_text) != SOTTO_OK) {
        snprintf(err, errlen, "not a recovery code: 30 digits (spaces and dashes allowed)");
        return SC_E_USAGE;
    }
    f = fopen(path, "rb");
    if (f == NULL || fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "cannot read %s: %s", path,
                 f ? "not a regular file" : strerror(errno));
        rc = SC_E_USAGE;
        goto out;
    }
    if ((uint64_t)st.st_size > SC_BACKUP_PAYLOAD_MAX + SOTTO_BACKUP_OVERHEAD ||
        (size_t)st.st_size < SOTTO_BACKUP_OVERHEAD) {
        snprintf(err, errlen, "%s is not a Sotto backup file (size)", path);
        rc = SC_E_USAGE;
        goto out;
    }
    flen = (size_t)st.st_size;
    file = malloc(flen);
    payload = malloc(flen - SOTTO_BACKUP_OVERHEAD + 1);
    if (file == NULL || payload == NULL) {
        snprintf(err, errlen, "out of memory");
        rc = SC_E_INTERNAL;
        goto out;
    }
    if (fread(file, 1, flen, f) != flen) {
        snprintf(err, errlen, "cannot read %s", path);
        rc = SC_E_USAGE;
        goto out;
    }
    e = sotto_backup_open(payload, flen - SOTTO_BACKUP_OVERHEAD + 1, &plen, file, flen, &code);
    if (e == SOTTO_ERR_BACKUP_WRONG_CODE) {
        if (wrong_code)
            *wrong_code = true;
        snprintf(err, errlen,
                 "wrong recovery code for %s (or the file was altered): nothing was restored",
                 path);
        rc = SC_E_USAGE;
    } else if (e == SOTTO_ERR_NOMEM) {
        snprintf(err, errlen, "not enough memory to open the backup (Argon2id)");
        rc = SC_E_INTERNAL;
    } else if (e != SOTTO_OK) {
        snprintf(err, errlen, "%s is not a Sotto backup file: %s", path, sotto_strerror(e));
        rc = SC_E_USAGE;
    } else {
        sc_backup *b = calloc(1, sizeof *b);
        if (b == NULL) {
            snprintf(err, errlen, "out of memory");
            rc = SC_E_INTERNAL;
        } else if ((rc = sc_backup_payload_parse(payload, plen, &b->pb, err, errlen)) != SC_OK) {
            free(b);
        } else {
            *out = b;
        }
    }
out:
    sotto_recovery_code_wipe(&code);
    if (f)
        fclose(f);
    if (payload) {
        sodium_memzero(payload, plen);
        free(payload);
    }
    free(file);
    return rc;
}

const char *sc_backup_username(const sc_backup *b)
{
    return b && b->pb ? b->pb->username : NULL;
}

void sc_backup_free(sc_backup *b)
{
    if (b == NULL)
        return;
    sc_backup_payload_free(b->pb);
    free(b);
}

/* ------------------------------------------------------------ restore */

/* Server URL and trust from the backup, unless given on the command line. */
static int restore_server(sc_client *c, const Sotto__Backup__Backup *b)
{
    char *url = NULL, *pin = NULL, *ca = NULL;

    if (!c->override_server) {
        url = strdup(b->server_url);
        if (url == NULL)
            return sc_fail(c, SC_E_INTERNAL, "out of memory");
        free(c->server_url);
        c->server_url = url;
    }
    if (c->override_trust)
        return SC_OK;
    if (b->pin[0]) {
        pin = strdup(b->pin);
        if (pin == NULL)
            return sc_fail(c, SC_E_INTERNAL, "out of memory");
    } else if (b->ca_pem.len > 0) {
        size_t n = strlen(c->dir) + sizeof "/server-ca.pem";
        int rc;
        ca = malloc(n);
        if (ca == NULL)
            return sc_fail(c, SC_E_INTERNAL, "out of memory");
        snprintf(ca, n, "%s/server-ca.pem", c->dir);
        rc = write_atomic(c, ca, b->ca_pem.data, b->ca_pem.len);
        if (rc != SC_OK) {
            free(ca);
            return rc == SC_E_USAGE ? SC_E_STORE : rc;
        }
    } else {
        return sc_fail(c, SC_E_USAGE, "the backup names no server pin or CA: give --pin or --ca");
    }
    free(c->pin_hex);
    free(c->ca_file);
    c->pin_hex = pin;
    c->ca_file = ca;
    return SC_OK;
}

/* The account's current list as the server serves it before login,
 * verified under the backup's account key: *version (0 and *exists false
 * when the server has no such account). */
static int current_version(sc_client *c, const char *username, const sotto_public_key *pk,
                           bool *exists, uint64_t *version)
{
    sc_api_account a;
    sc_api_result r;
    sotto_device_list l;
    sotto_public_key served;
    int rc = SC_OK, e;

    *exists = false;
    *version = 0;
    if (sc_api_open(c, &r) != SC_API_OK)
        return sc_api_fail(c, &r, "connect");
    if (sc_api_get_device_list(c, username, &a, &r) != SC_API_OK) {
        if (r.outcome == SC_API_REFUSED && r.status == SC_ST_NOT_FOUND)
            return SC_OK;
        return sc_api_fail(c, &r, "device list");
    }
    *exists = true;
    if (!a.has_account_key || a.device_list == NULL) {
        rc = sc_fail(c, SC_E_STATE,
                     "the server's account %s has no account key (made before account keys):"
                     " it cannot be recovered from a backup",
                     username);
    } else if (sotto_public_key_decode(&served, a.account_key, sizeof a.account_key) != SOTTO_OK ||
               !sotto_public_key_equal(&served, pk)) {
        rc = sc_fail(c, SC_E_UNTRUSTED,
                     "the server holds another account key for %s than this backup's: the name"
                     " belongs to another identity now (or the server lies); not restored",
                     username);
    } else if ((e = sotto_device_list_verify(&l, a.device_list, a.device_list_len, pk, username)) !=
               SOTTO_OK) {
        rc = sc_fail(c, SC_E_UNTRUSTED,
                     "the server served a device list for %s that the backup's account key did"
                     " not sign (%s): not restored",
                     username, sotto_strerror(e));
    } else {
        *version = l.version;
    }
    sc_api_account_clear(&a);
    return rc;
}

int sc_restore_opened(sc_client *c, const sc_backup *bk, sc_backup_info *info)
{
    const Sotto__Backup__Backup *b = bk ? bk->pb : NULL;
    sotto_key_pair kp;
    sc_backup_counts counts;
    bool exists = false, empty = false;
    uint64_t current = 0, version;
    int rc;

    if (info)
        memset(info, 0, sizeof *info);
    if (b == NULL)
        return sc_fail(c, SC_E_USAGE, "no backup");
    if (c->username)
        return sc_fail(c, SC_E_STATE, "account %s is already registered as %s", c->account,
                       c->username);
    rc = sc_store_is_empty(c, &empty);
    if (rc != SC_OK)
        return rc;
    if (!empty)
        return sc_fail(c, SC_E_STATE,
                       "local account %s is not empty: restore into a new one (another"
                       " --account NAME)",
                       c->account);
    if (sotto_key_pair_from_private(&kp, b->account_private_key.data) != SOTTO_OK)
        return sc_fail(c, SC_E_USAGE, "not a valid backup: the account key is not a key");
    rc = restore_server(c, b);
    if (rc == SC_OK)
        rc = current_version(c, b->username, &kp.pub, &exists, &current);
    sotto_key_pair_wipe(&kp);
    if (rc != SC_OK)
        return rc;
    version = (current > b->own_list_version ? current : b->own_list_version) + 1;
    /* Everything local and the registration in one transaction: nothing
     * stays when the server did not take it. */
    rc = sc_db_begin(c);
    if (rc != SC_OK)
        return rc;
    rc = sc_backup_payload_import(c, b, &counts);
    if (rc == SC_OK)
        rc = sc_register_device(c, b->username, NULL, exists, version);
    if (rc == SC_OK || c->username != NULL) {
        /* the server took the registration: keep it (keys not uploaded
         * yet are uploaded at the next login) */
        int crc = sc_db_commit(c);
        if (rc == SC_OK)
            rc = crc;
    } else {
        char why[sizeof c->err];
        snprintf(why, sizeof why, "%s", c->err);
        sc_db_rollback(c);
        sc_disconnect(c);
        snprintf(c->err, sizeof c->err, "%s", why);
        return rc;
    }
    if (info) {
        info->contacts = counts.contacts;
        info->groups = counts.groups;
        info->history = counts.history;
        info->list_version = version;
        info->recovered = exists;
    }
    return rc;
}

int sc_restore(sc_client *c, const char *path, const char *code_text, sc_backup_info *info)
{
    sc_backup *b = NULL;
    char err[sizeof c->err];
    int rc = sc_backup_open_file(path, code_text, &b, NULL, err, sizeof err);

    if (info)
        memset(info, 0, sizeof *info);
    if (rc != SC_OK)
        return sc_fail(c, rc, "%s", err);
    rc = sc_restore_opened(c, b, info);
    sc_backup_free(b);
    return rc;
}
