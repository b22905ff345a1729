/*
 * client/core/linksync.c -- linked devices get everything (issue 10;
 * docs/protocol.md "Linked devices get everything"):
 *
 *  - on the primary (sc_device_sync, sc_link_sync_pending): the contacts
 *    with their pinned account keys, accepted device lists, changed keys
 *    waiting for `trust` and verified flags, the groups, and the history of
 *    the last N days, as SyncMessage.LinkSync parts (each under the
 *    ciphertext cap), sent end-to-end encrypted to one device of our own
 *    account (the others get a NullMessage in the same send: the server
 *    wants every device covered). Nothing is queued: a sync that did not go
 *    out is sent again at the next connection, until client_config
 *    "synced_device:N" records it.
 *  - on the new device (sc_link_sync_handle, inside the envelope's
 *    transaction; recv.c vetted the sender against our own signed list):
 *    each part is applied idempotently -- a pin this device holds is never
 *    replaced (a differing one gives a notice), a group it knows is kept
 *    (its copy is at least as new), a history row whose (sender, timestamp)
 *    it has seen is skipped -- and once every part arrived one notice
 *    "synced from device 1: N contacts, M groups, K messages" is stored.
 *
 * Config keys (client_config, no schema change):
 *   link_history_days            default days of history (30; 0 = none)
 *   link_history_days:N          the days chosen for device N (device-add)
 *   synced_device:N              device N was synced (ms)
 *   link_sync_wait:N             device N had no keys yet: not before (ms)
 *   link_sync_init               the devices listed when this code first ran
 *                                were marked synced (they predate it)
 *   link_sync_rx:D:ID            receiver: bitmap of the parts of sync ID
 *                                from device D applied so far
 *   link_sync_cnt:D:ID           receiver: "contacts groups messages parts"
 *   link_sync_done:D:ID          receiver: sync ID from D is complete
 *   link_synced                  receiver: a sync completed here once
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "everyday.h"
#include "internal.h"
#include "sotto/error.h"

typedef Sotto__Content__SyncMessage__LinkSync LinkSync;
typedef Sotto__Content__SyncMessage__LinkSync__Contact LsContact;
typedef Sotto__Content__SyncMessage__LinkSync__Group LsGroup;
typedef Sotto__Content__SyncMessage__LinkSync__HistoryRow LsRow;

/* Items of one part: at most this many bytes (packed), so that the padded
 * Content and its Signal framing stay well under the server's 128 KiB
 * ciphertext cap (docs/api.md, ciphertext_max). */
#define PART_BUDGET (96 * 1024)
/* Per item: field tag and length prefix. */
#define ITEM_OVERHEAD 6
#define MAX_PARTS 100000
#define DAY_MS (24ull * 3600 * 1000)
/* a device that has not finished linking: asked again after this long */
#define SC_LINK_SYNC_RETRY_MS (60ull * 1000)

/* ------------------------------------------------------------ sender */

typedef struct sync_data {
    sc_contact_info *cl;
    size_t n_cl;
    char **names;
    size_t n_names;
    sc_account_row *rows;
    LsContact *contacts;
    LsContact **contact_ptrs;
    size_t nc;
    uint8_t *gids;
    size_t ng;
    char ***members;
    size_t *n_members;
    char **gnames;
    char ***admins;
    size_t *n_admins;
    LsGroup *groups;
    LsGroup **group_ptrs;
    sc_msg *msgs;
    size_t n_msgs;
    char **extras;
    LsRow *hist;
    LsRow **hist_ptrs;
    size_t nh;
    size_t skipped;
} sync_data;

static void sync_data_free(sync_data *s)
{
    for (size_t i = 0; s->rows && i < s->nc; i++)
        sc_account_row_clear(&s->rows[i]);
    for (size_t i = 0; s->contacts && i < s->nc; i++)
        sc_profile_ls_contact_free(&s->contacts[i]); /* issue 11 */
    free(s->rows);
    free(s->contacts);
    free(s->contact_ptrs);
    sc_contact_list_free(s->cl, s->n_cl);
    sc_strv_free(s->names, s->n_names);
    for (size_t i = 0; s->members && i < s->ng; i++)
        sc_strv_free(s->members[i], s->n_members[i]);
    for (size_t i = 0; s->gnames && i < s->ng; i++)
        free(s->gnames[i]);
    for (size_t i = 0; s->admins && i < s->ng; i++)
        sc_strv_free(s->admins[i], s->n_admins[i]);
    free(s->admins);
    free(s->n_admins);
    free(s->members);
    free(s->n_members);
    free(s->gnames);
    free(s->gids);
    free(s->groups);
    free(s->group_ptrs);
    for (size_t i = 0; s->extras && i < s->n_msgs; i++)
        sc_free_secret_str(s->extras[i]);
    free(s->extras);
    sc_msg_list_free(s->msgs, s->n_msgs);
    free(s->hist);
    free(s->hist_ptrs);
    memset(s, 0, sizeof *s);
}

/* The union of client_contacts and client_accounts, by name, without us
 * (both lists are sorted by name: strcmp order = SQLite's BINARY). */
static int gather_contacts(sc_client *c, sync_data *s)
{
    size_t cap, np;
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
        LsContact *ct = &s->contacts[s->nc];
        sc_account_row *row = &s->rows[s->nc];

        sotto__content__sync_message__link_sync__contact__init(ct);
        ct->name = (char *)name;
        ct->verified = people[p].verified;
        rc = sc_account_get(c, name, row);
        if (rc == SC_OK && row->has_key) {
            ct->account_key.data = row->account_key;
            ct->account_key.len = SC_ACCOUNT_KEY_BYTES;
            if (row->list) {
                ct->device_list.data = row->list;
                ct->device_list.len = row->list_len;
                ct->list_version = row->list_version;
            }
            if (row->has_pending) {
                ct->pending_account_key.data = row->pending_key;
                ct->pending_account_key.len = SC_ACCOUNT_KEY_BYTES;
                ct->verified = false; /* the user has not compared the new key */
            }
        } else if (rc != SC_OK && rc != SC_E_NOT_FOUND) {
            free(people);
            return rc;
        }
        rc = sc_requests_ls_contact_fill(c, ct); /* issue 11: accepted, blocked */
        if (rc == SC_OK)
            rc = sc_profile_ls_contact_fill(c, ct); /* issue 11: profile key */
        if (rc == SC_OK)
            rc = sc_expire_ls_contact_fill(c, ct); /* issue 11: disappearing timer */
        if (rc != SC_OK) {
            free(people);
            return rc;
        }
        s->contact_ptrs[s->nc++] = ct; /* sync_data_free clears rows[0..nc) */
    }
    free(people);
    return SC_OK;
}

static int gather_groups(sc_client *c, sync_data *s)
{
    size_t n = 0;
    int rc = sc_group_ids(c, &s->gids, &n);

    if (rc != SC_OK)
        return rc;
    s->groups = calloc(n + 1, sizeof *s->groups);
    s->group_ptrs = calloc(n + 1, sizeof *s->group_ptrs);
    s->members = calloc(n + 1, sizeof *s->members);
    s->n_members = calloc(n + 1, sizeof *s->n_members);
    s->gnames = calloc(n + 1, sizeof *s->gnames);
    s->admins = calloc(n + 1, sizeof *s->admins);
    s->n_admins = calloc(n + 1, sizeof *s->n_admins);
    if (!s->groups || !s->group_ptrs || !s->members || !s->n_members || !s->gnames || !s->admins ||
        !s->n_admins)
        return sc_fail(c, SC_E_INTERNAL, "out of memory");
    s->ng = n;
    for (size_t i = 0; i < n; i++) {
        LsGroup *g = &s->groups[i];
        bool active = false;
        uint8_t *id = s->gids + i * SC_GROUP_ID_BYTES;

        rc = sc_group_members(c, id, &s->members[i], &s->n_members[i], &s->gnames[i], &active);
        if (rc != SC_OK)
            return rc;
        sotto__content__sync_message__link_sync__group__init(g);
        g->id.data = id;
        g->id.len = SC_GROUP_ID_BYTES;
        g->name = s->gnames[i] ? s->gnames[i] : (char *)"";
        g->members = s->members[i];
        g->n_members = s->n_members[i];
        g->active = active;
        bool open = false;
        rc = sc_group_meta(c, id, &g->revision, &open);
        g->open = open;
        if (rc == SC_OK)
            rc = sc_group_admins(c, id, &s->admins[i], &s->n_admins[i]);
        if (rc != SC_OK)
            return rc;
        g->admins = s->admins[i];
        g->n_admins = s->n_admins[i];
        rc = sc_requests_ls_group_fill(c, g); /* issue 11: accepted */
        if (rc == SC_OK)
            rc = sc_expire_ls_group_fill(c, g); /* issue 11: disappearing timer */
        if (rc != SC_OK)
            return rc;
        s->group_ptrs[i] = g;
    }
    return SC_OK;
}

/* The extra JSON of a history row as the new device stores it: the
 * primary's local file paths are dropped; an attachment the primary saved
 * (its key is gone) is marked as kept there. NULL when none or unreadable. */
static char *extra_for_sync(const char *extra, uint32_t primary)
{
    json_t *o, *arr;
    char *out;

    if (extra == NULL)
        return NULL;
    o = json_loads(extra, 0, NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        return NULL;
    }
    arr = json_object_get(o, "attachments");
    for (size_t i = 0; json_is_array(arr) && i < json_array_size(arr); i++) {
        json_t *a = json_array_get(arr, i);
        char why[128];
        if (!json_is_object(a))
            continue;
        (void)json_object_del(a, "path");
        if (json_object_get(a, "key") == NULL && json_object_get(a, "error") == NULL) {
            snprintf(why, sizeof why, "the file was not synced to this device (it is on device %u)",
                     primary);
            json_object_set_new(a, "error", json_string(why));
        }
    }
    out = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return out;
}

static size_t row_size(const LsRow *h)
{
    return protobuf_c_message_get_packed_size(&h->base) + ITEM_OVERHEAD;
}

static int gather_history(sc_client *c, sync_data *s, uint32_t days)
{
    uint64_t cutoff;
    int64_t after = 0;
    size_t cap = 0;

    if (days == 0)
        return SC_OK;
    cutoff = (uint64_t)days * DAY_MS < sc_now_ms() ? sc_now_ms() - (uint64_t)days * DAY_MS : 0;
    for (;;) {
        sc_msg *page = NULL;
        size_t n = 0, k = 0;
        int rc = sc_msg_page(c, after, 1000, &page, &n);

        if (rc != SC_OK)
            return rc;
        if (n == 0) {
            free(page);
            break;
        }
        after = page[n - 1].id;
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
        for (size_t i = 0; i < n; i++) {
            sc_msg *m = &page[i];
            bool keep =
                m->timestamp >= cutoff && m->kind && m->conv_kind && m->conv && m->sender &&
                m->body && (strcmp(m->kind, "text") == 0 || strcmp(m->kind, "group") == 0) &&
                /* issue 11: no control rows, deleted or disappearing messages */
                m->target_sender == NULL && !m->deleted && m->expire_s == 0 &&
                (strcmp(m->conv_kind, "contact") == 0 || strcmp(m->conv_kind, "group") == 0) &&
                strlen(m->body) == m->body_len;
            if (keep) {
                s->msgs[s->n_msgs + k++] = *m;
            } else {
                sc_msg_free(m);
            }
        }
        s->n_msgs += k;
        free(page); /* the kept rows' strings now belong to s->msgs */
    }
    s->extras = calloc(s->n_msgs + 1, sizeof *s->extras);
    s->hist = calloc(s->n_msgs + 1, sizeof *s->hist);
    s->hist_ptrs = calloc(s->n_msgs + 1, sizeof *s->hist_ptrs);
    if (s->extras == NULL || s->hist == NULL || s->hist_ptrs == NULL)
        return sc_fail(c, SC_E_INTERNAL, "out of memory");
    for (size_t i = 0; i < s->n_msgs; i++) {
        const sc_msg *m = &s->msgs[i];
        LsRow *h = &s->hist[s->nh];

        sotto__content__sync_message__link_sync__history_row__init(h);
        s->extras[i] = extra_for_sync(m->extra, c->device_id);
        h->conv_kind = m->conv_kind;
        h->conv = m->conv;
        h->direction = m->direction ? 1 : 0;
        h->sender = m->sender;
        h->sender_device = m->sender_device;
        h->timestamp = m->timestamp;
        h->server_ts = m->server_ts;
        h->kind = m->kind;
        h->body = m->body;
        h->extra = s->extras[i] ? s->extras[i] : (char *)"";
        if (row_size(h) > PART_BUDGET) {
            s->skipped++; /* larger than a part can carry */
            continue;
        }
        s->hist_ptrs[s->nh++] = h;
    }
    return SC_OK;
}

/* Size of global item i (contacts, then groups, then history). */
static size_t item_size(const sync_data *s, size_t i)
{
    if (i < s->nc)
        return protobuf_c_message_get_packed_size(&s->contact_ptrs[i]->base) + ITEM_OVERHEAD;
    i -= s->nc;
    if (i < s->ng)
        return protobuf_c_message_get_packed_size(&s->group_ptrs[i]->base) + ITEM_OVERHEAD;
    return row_size(s->hist_ptrs[i - s->ng]);
}

/* Splits the items into parts of at most PART_BUDGET bytes: part p holds
 * items [starts[p], starts[p + 1]). *starts malloc()ed (nparts + 1). */
static int split(sc_client *c, const sync_data *s, size_t **starts, size_t *nparts)
{
    size_t total = s->nc + s->ng + s->nh, cap = 16, np = 0, used = 0;
    size_t *v = malloc(cap * sizeof *v);

    if (v == NULL)
        return sc_fail(c, SC_E_INTERNAL, "out of memory");
    v[np++] = 0;
    for (size_t i = 0; i < total; i++) {
        size_t sz = item_size(s, i);
        if (used > 0 && used + sz > PART_BUDGET) {
            if (np + 1 >= cap) {
                size_t *nv = realloc(v, 2 * cap * sizeof *v);
                if (nv == NULL) {
                    free(v);
                    return sc_fail(c, SC_E_INTERNAL, "out of memory");
                }
                v = nv;
                cap *= 2;
            }
            v[np++] = i;
            used = 0;
        }
        used += sz;
    }
    v[np] = total;
    if (np > MAX_PARTS) {
        free(v);
        return sc_fail(c, SC_E_USAGE, "the sync would take %zu messages (at most %d)", np,
                       MAX_PARTS);
    }
    *starts = v;
    *nparts = np;
    return SC_OK;
}

/* The slice [a, b) of the global item range that falls into [lo, hi). */
static void slice(size_t a, size_t b, size_t lo, size_t hi, size_t *off, size_t *n)
{
    size_t s = a > lo ? a : lo, e = b < hi ? b : hi;

    *off = s - lo;
    *n = e > s ? e - s : 0;
}

static int send_part(sc_client *c, uint32_t device_id, const sync_data *s, uint64_t *sync_id,
                     uint32_t seq, uint32_t total, uint32_t days, size_t a, size_t b)
{
    Sotto__Content__Content ct = SOTTO__CONTENT__CONTENT__INIT;
    Sotto__Content__Content rest = SOTTO__CONTENT__CONTENT__INIT;
    Sotto__Content__SyncMessage sync = SOTTO__CONTENT__SYNC_MESSAGE__INIT;
    Sotto__Content__NullMessage nm = SOTTO__CONTENT__NULL_MESSAGE__INIT;
    LinkSync ls = SOTTO__CONTENT__SYNC_MESSAGE__LINK_SYNC__INIT;
    uint8_t *buf = NULL, *rbuf = NULL;
    size_t len, rlen, off, n;
    int rc;

    ct.timestamp = sc_next_timestamp(c);
    if (*sync_id == 0)
        *sync_id = ct.timestamp;
    ls.target_device_id = device_id;
    ls.sync_id = *sync_id;
    ls.sequence = seq;
    ls.total = total;
    ls.history_days = days;
    slice(a, b, 0, s->nc, &off, &n);
    ls.contacts = s->contact_ptrs + off;
    ls.n_contacts = n;
    slice(a, b, s->nc, s->nc + s->ng, &off, &n);
    ls.groups = s->group_ptrs + off;
    ls.n_groups = n;
    slice(a, b, s->nc + s->ng, s->nc + s->ng + s->nh, &off, &n);
    ls.history = s->hist_ptrs + off;
    ls.n_history = n;
    sync.link_sync = &ls;
    ct.sync = &sync;
    /* issue 11: our profile key and name ride in part 1 (profile.c) */
    uint8_t pkey[32];
    char *pname = NULL;
    rc = seq == 1 ? sc_profile_ls_own_fill(c, &sync, pkey, &pname) : SC_OK;
    /* and the settings (receipts.c) */
    Sotto__Content__SyncMessage__Configuration conf =
        SOTTO__CONTENT__SYNC_MESSAGE__CONFIGURATION__INIT;
    if (rc == SC_OK && seq == 1) {
        rc = sc_config_sync_fill(c, &conf);
        sync.configuration = &conf;
    }
    if (rc != SC_OK) {
        sodium_memzero(pkey, sizeof pkey);
        return rc;
    }
    rest.timestamp = ct.timestamp;
    rest.null_message = &nm;
    len = sotto__content__content__get_packed_size(&ct);
    rlen = sotto__content__content__get_packed_size(&rest);
    buf = malloc(len ? len : 1);
    rbuf = malloc(rlen ? rlen : 1);
    if (buf == NULL || rbuf == NULL) {
        free(buf);
        free(rbuf);
        sodium_memzero(pkey, sizeof pkey);
        free(pname);
        return sc_fail(c, SC_E_INTERNAL, "out of memory");
    }
    sotto__content__content__pack(&ct, buf);
    sotto__content__content__pack(&rest, rbuf);
    sodium_memzero(pkey, sizeof pkey);
    free(pname);
    rc = sc_deliver_split(c, c->username, device_id, buf, len, rbuf, rlen);
    sodium_memzero(buf, len);
    free(buf);
    free(rbuf);
    return rc;
}

static void key_of(char *out, size_t cap, const char *prefix, uint32_t device_id)
{
    snprintf(out, cap, "%s:%" PRIu32, prefix, device_id);
}

/* Days of history for device_id: given (>= 0), else chosen at device-add,
 * else client_config link_history_days, else the default. */
static uint32_t history_days_for(sc_client *c, uint32_t device_id, int given)
{
    char key[64];
    uint64_t v = 0;

    if (given >= 0)
        return (uint32_t)given;
    key_of(key, sizeof key, "link_history_days", device_id);
    if (sc_cfg_get_u64(c, key, &v) == SC_OK && v <= SC_LINK_HISTORY_DAYS_MAX)
        return (uint32_t)v;
    if (sc_cfg_get_u64(c, "link_history_days", &v) == SC_OK && v <= SC_LINK_HISTORY_DAYS_MAX)
        return (uint32_t)v;
    return SC_LINK_HISTORY_DAYS_DEFAULT;
}

int sc_link_history_days_set(sc_client *c, uint32_t device_id, int days)
{
    char key[64];

    if (days < -1 || days > SC_LINK_HISTORY_DAYS_MAX)
        return sc_fail(c, SC_E_USAGE, "history days: 0 to %d", SC_LINK_HISTORY_DAYS_MAX);
    if (device_id == 0)
        return days < 0 ? sc_cfg_delete(c, "link_history_days")
                        : sc_cfg_set_u64(c, "link_history_days", (uint64_t)days);
    key_of(key, sizeof key, "link_history_days", device_id);
    return days < 0 ? sc_cfg_delete(c, key) : sc_cfg_set_u64(c, key, (uint64_t)days);
}

int sc_device_sync(sc_client *c, uint32_t device_id, int history_days, sc_link_sync_info *info)
{
    sync_data s;
    sotto_device_list l;
    size_t *starts = NULL, nparts = 0;
    uint64_t sync_id = 0;
    uint32_t days;
    char key[64];
    int rc;

    if (info)
        memset(info, 0, sizeof *info);
    if (c->username == NULL)
        return sc_fail(c, SC_E_STATE, "account %s is not registered", c->account);
    if (!sc_is_primary(c))
        return sc_fail(c, SC_E_STATE,
                       "only the primary device (the one holding the account key) syncs other"
                       " devices");
    if (device_id == c->device_id)
        return sc_fail(c, SC_E_USAGE, "device %u is this device", device_id);
    if (history_days > SC_LINK_HISTORY_DAYS_MAX)
        return sc_fail(c, SC_E_USAGE, "history days: 0 to %d", SC_LINK_HISTORY_DAYS_MAX);
    {
        /* a login here does not also start the automatic sync
         * (sc_link_sync_pending) of the device synced below */
        bool was = c->link_syncing;
        c->link_syncing = true;
        rc = sc_connect(c);
        c->link_syncing = was;
    }
    if (rc == SC_OK)
        rc = sc_account_refresh(c, c->username, &l);
    if (rc != SC_OK)
        return rc;
    if (sotto_device_list_find(&l, device_id) == NULL)
        return sc_fail(c, SC_E_NOT_FOUND,
                       "device %u is not in your account's signed device list (version %llu)",
                       device_id, (unsigned long long)l.version);
    days = history_days_for(c, device_id, history_days);
    memset(&s, 0, sizeof s);
    rc = gather_contacts(c, &s);
    if (rc == SC_OK)
        rc = gather_groups(c, &s);
    if (rc == SC_OK)
        rc = gather_history(c, &s, days);
    if (rc == SC_OK)
        rc = split(c, &s, &starts, &nparts);
    for (size_t p = 0; rc == SC_OK && p < nparts; p++)
        rc = send_part(c, device_id, &s, &sync_id, (uint32_t)(p + 1), (uint32_t)nparts, days,
                       starts[p], starts[p + 1]);
    if (rc == SC_E_NOT_FOUND)
        rc = SC_E_STATE; /* listed, but no keys on the server yet: not linked yet */
    if (rc == SC_OK) {
        key_of(key, sizeof key, "synced_device", device_id);
        rc = sc_cfg_set_u64(c, key, sc_now_ms());
    }
    if (rc == SC_OK && info) {
        info->contacts = s.nc;
        info->groups = s.ng;
        info->history = s.nh;
        info->skipped = s.skipped;
        info->parts = nparts;
        info->history_days = days;
    }
    free(starts);
    sync_data_free(&s);
    return rc;
}

int sc_link_sync_pending(sc_client *c)
{
    sotto_device_list l;
    uint64_t v = 0;
    char key[64], wait[64];
    int rc;

    if (c->username == NULL || c->link_syncing)
        return SC_OK;
    rc = sc_account_current(c, c->username, &l);
    if (rc == SC_E_NOT_FOUND)
        return SC_OK;
    if (rc != SC_OK)
        return rc;
    if (sc_cfg_get_u64(c, "link_sync_init", &v) != SC_OK) {
        /* the first time on this device: the devices listed now predate
         * linked-device sync (or were synced by another primary) */
        rc = sc_db_begin(c);
        for (size_t i = 0; rc == SC_OK && i < l.n_devices; i++) {
            key_of(key, sizeof key, "synced_device", l.devices[i].device_id);
            if (sc_cfg_get_u64(c, key, &v) != SC_OK)
                rc = sc_cfg_set_u64(c, key, sc_now_ms());
        }
        if (rc == SC_OK)
            rc = sc_cfg_set_u64(c, "link_sync_init", 1);
        if (rc == SC_OK)
            rc = sc_db_commit(c);
        else
            sc_db_rollback(c);
        return rc;
    }
    if (!sc_is_primary(c))
        return SC_OK;
    c->link_syncing = true;
    for (size_t i = 0; rc == SC_OK && i < l.n_devices; i++) {
        uint32_t id = l.devices[i].device_id;
        if (id == c->device_id)
            continue;
        key_of(key, sizeof key, "synced_device", id);
        if (sc_cfg_get_u64(c, key, &v) == SC_OK)
            continue;
        key_of(wait, sizeof wait, "link_sync_wait", id);
        if (sc_cfg_get_u64(c, wait, &v) == SC_OK && sc_now_ms() < v)
            continue;
        rc = sc_device_sync(c, id, -1, NULL);
        if (rc == SC_OK) {
            rc = sc_cfg_delete(c, wait);
        } else if (rc == SC_E_NOT_FOUND || rc == SC_E_STATE || rc == SC_E_UNTRUSTED) {
            /* a device that has not finished linking yet (no keys): asked
             * again a minute later (a link never finished costs one
             * request a minute, not one per command); the others go on */
            rc = sc_cfg_set_u64(c, wait, sc_now_ms() + SC_LINK_SYNC_RETRY_MS);
        }
    }
    c->link_syncing = false;
    return rc;
}

/* ------------------------------------------------------------ receiver */

typedef struct rx_counts {
    size_t contacts, groups, messages, parts;
} rx_counts;

static bool contact_verified(const sc_contact_info *v, size_t n, const char *name, bool *known)
{
    size_t lo = 0, hi = n;

    *known = false;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int d = strcmp(v[mid].name, name);
        if (d == 0) {
            *known = true;
            return v[mid].verified;
        }
        if (d < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

/* One contact: *changed when anything was stored; *conflict when this
 * device pinned another account key (its own pin wins). */
static int apply_contact(sc_client *c, const LsContact *k, const sc_contact_info *cl, size_t ncl,
                         bool *changed, bool *conflict)
{
    sotto_public_key key, pend;
    sotto_device_list l, held;
    sc_account_row row;
    bool has_key, list_ok = false, known = false, was_verified, same_key = false, found;
    int rc;

    *changed = *conflict = false;
    if (!sc_username_valid(k->name) || strcmp(k->name, c->username) == 0)
        return SC_OK;
    has_key = k->account_key.len == SOTTO_PUBLIC_KEY_BYTES &&
              sotto_public_key_decode(&key, k->account_key.data, k->account_key.len) == SOTTO_OK;
    if (has_key && k->device_list.len > 0 && k->device_list.len <= SOTTO_DEVICE_LIST_MAX_BYTES &&
        sotto_device_list_verify(&l, k->device_list.data, k->device_list.len, &key, k->name) ==
            SOTTO_OK &&
        l.version == k->list_version)
        list_ok = true;
    was_verified = contact_verified(cl, ncl, k->name, &known);
    rc = sc_account_get(c, k->name, &row);
    if (rc != SC_OK && rc != SC_E_NOT_FOUND)
        return rc;
    found = rc == SC_OK;
    rc = SC_OK;
    if (has_key && !found) {
        rc = sc_account_import(c, k->name, key.bytes, list_ok ? k->device_list.data : NULL,
                               list_ok ? k->device_list.len : 0, list_ok ? l.version : 0);
        same_key = rc == SC_OK;
        *changed = rc == SC_OK;
    } else if (has_key && row.has_key) {
        same_key = sodium_memcmp(row.account_key, key.bytes, SC_ACCOUNT_KEY_BYTES) == 0;
        *conflict = !same_key;
        /* a newer list than the one held (same key, a version after it) */
        if (same_key && list_ok && l.version > row.list_version &&
            (row.list == NULL ||
             (sotto_device_list_verify(&held, row.list, row.list_len, &key, k->name) == SOTTO_OK &&
              sotto_device_list_check_update(&held, &l) == SOTTO_OK))) {
            rc =
                sc_account_set_list(c, k->name, k->device_list.data, k->device_list.len, l.version);
            *changed = rc == SC_OK;
        }
    }
    /* a changed key the primary is waiting to `trust`: waits here too */
    if (rc == SC_OK && same_key && !row.has_pending &&
        k->pending_account_key.len == SOTTO_PUBLIC_KEY_BYTES &&
        sotto_public_key_decode(&pend, k->pending_account_key.data, k->pending_account_key.len) ==
            SOTTO_OK &&
        !sotto_public_key_equal(&pend, &key)) {
        rc = sc_account_set_pending(c, k->name, pend.bytes);
        *changed = rc == SC_OK;
    }
    sc_account_row_clear(&row);
    if (rc != SC_OK)
        return rc;
    /* the user's comparison holds for the key compared: only with the same
     * key, and never taken away */
    if (!known) {
        rc = sc_contact_import(c, k->name, k->verified && same_key);
        *changed = *changed || rc == SC_OK;
    } else if (k->verified && same_key && !was_verified) {
        rc = sc_contact_set_verified(c, k->name);
        *changed = *changed || rc == SC_OK;
    }
    return rc;
}

static int apply_group(sc_client *c, const LsGroup *g, bool *changed)
{
    bool exists = false;
    int rc;

    *changed = false;
    if (g->id.len != SC_GROUP_ID_BYTES || g->n_members > SC_MAX_GROUP_MEMBERS + 1 ||
        strlen(g->name) > SC_MAX_GROUP_NAME_BYTES || !sc_utf8_valid(g->name, strlen(g->name)))
        return SC_OK;
    for (size_t i = 0; i < g->n_members; i++)
        if (!sc_username_valid(g->members[i]))
            return SC_OK;
    rc = sc_group_exists(c, g->id.data, &exists);
    if (rc != SC_OK || exists)
        return rc; /* our copy: at least as new (later changes come as transcripts) */
    for (size_t i = 0; i < g->n_admins; i++)
        if (!sc_username_valid(g->admins[i]))
            return SC_OK;
    rc = sc_group_upsert(c, g->id.data, g->name, g->active);
    if (rc == SC_OK)
        rc = sc_group_set_members(c, g->id.data, g->members, g->n_members);
    if (rc == SC_OK)
        rc = sc_group_set_admins(c, g->id.data, g->admins, g->n_admins);
    if (rc == SC_OK)
        rc = sc_group_set_meta(c, g->id.data, g->revision, g->open);
    *changed = rc == SC_OK;
    return rc;
}

static bool is_hex32(const char *s)
{
    if (strlen(s) != 2 * SC_GROUP_ID_BYTES)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

static int apply_row(sc_client *c, const LsRow *h, bool *stored, bool *text)
{
    bool is_text = strcmp(h->kind, "text") == 0, group_conv = strcmp(h->conv_kind, "group") == 0;
    bool seen = false;
    sc_msg_row m;
    size_t blen = strlen(h->body), elen = strlen(h->extra);
    int rc;

    *stored = *text = false;
    if ((!is_text && strcmp(h->kind, "group") != 0) ||
        (!group_conv && strcmp(h->conv_kind, "contact") != 0) || h->direction > 1 ||
        !sc_username_valid(h->sender) ||
        (group_conv ? !is_hex32(h->conv) : !sc_username_valid(h->conv)) ||
        blen > SC_MAX_TEXT_BYTES || !sc_utf8_valid(h->body, blen) ||
        elen > SC_LINK_SYNC_EXTRA_MAX || !sc_utf8_valid(h->extra, elen) || h->timestamp == 0)
        return SC_OK;
    /* the message id: a row this device has (received or sent itself, or
     * from an earlier sync) is not stored again */
    rc = sc_msg_exists(c, h->conv_kind, h->conv, h->sender, h->timestamp, &seen);
    if (rc == SC_OK && !seen)
        rc = sc_msg_seen(c, h->sender, h->timestamp, &seen);
    if (rc != SC_OK || seen)
        return rc;
    memset(&m, 0, sizeof m);
    m.conv_kind = h->conv_kind;
    m.conv = h->conv;
    m.direction = (int)h->direction;
    m.sender = h->sender;
    m.sender_device = h->sender_device;
    m.timestamp = h->timestamp;
    m.server_ts = h->server_ts;
    m.kind = h->kind;
    m.body = h->body;
    m.body_len = blen;
    m.extra = elen > 0 ? h->extra : NULL;
    rc = sc_msg_insert(c, &m, NULL);
    *stored = rc == SC_OK;
    *text = is_text;
    return rc;
}

static int cnt_get(sc_client *c, const char *key, rx_counts *n)
{
    char *v = NULL;
    unsigned long long a, b, d, p;
    int rc = sc_cfg_get_text(c, key, &v);

    memset(n, 0, sizeof *n);
    if (rc == SC_E_NOT_FOUND)
        return SC_OK;
    if (rc != SC_OK)
        return rc;
    if (sscanf(v, "%llu %llu %llu %llu", &a, &b, &d, &p) == 4) {
        n->contacts = (size_t)a;
        n->groups = (size_t)b;
        n->messages = (size_t)d;
        n->parts = (size_t)p;
    }
    free(v);
    return SC_OK;
}

static int cnt_set(sc_client *c, const char *key, const rx_counts *n)
{
    char v[96];

    snprintf(v, sizeof v, "%zu %zu %zu %zu", n->contacts, n->groups, n->messages, n->parts);
    return sc_cfg_set_text(c, key, v);
}

static const char *plural(size_t n, const char *one, const char *many)
{
    return n == 1 ? one : many;
}

int sc_link_sync_handle(sc_client *c, const sc_envelope *e, const Sotto__Content__Content *ct,
                        int64_t *rows, size_t cap, size_t *nrows)
{
    const LinkSync *ls = ct->sync ? ct->sync->link_sync : NULL;
    char k_rx[96], k_cnt[96], k_done[96], conflicts[256] = "", text[512];
    sc_contact_info *cl = NULL;
    uint8_t *bits = NULL;
    size_t bits_len = 0, ncl = 0, nconf = 0;
    uint64_t v = 0;
    rx_counts n;
    int rc;

    *nrows = 0;
    /* from another device of our own account (recv.c vetted it against our
     * signed list), for this device, well-formed */
    if (ls == NULL || c->username == NULL || strcmp(e->source, c->username) != 0 ||
        e->source_device == c->device_id || ls->target_device_id != c->device_id ||
        ls->sync_id == 0 || ls->total == 0 || ls->total > MAX_PARTS || ls->sequence == 0 ||
        ls->sequence > ls->total)
        return SC_OK;
    snprintf(k_rx, sizeof k_rx, "link_sync_rx:%" PRIu32 ":%" PRIu64, e->source_device, ls->sync_id);
    snprintf(k_cnt, sizeof k_cnt, "link_sync_cnt:%" PRIu32 ":%" PRIu64, e->source_device,
             ls->sync_id);
    snprintf(k_done, sizeof k_done, "link_sync_done:%" PRIu32 ":%" PRIu64, e->source_device,
             ls->sync_id);
    if (sc_cfg_get_u64(c, k_done, &v) == SC_OK)
        return SC_OK; /* that sync is complete here: a part sent again changes nothing */
    rc = sc_cfg_get_blob(c, k_rx, &bits, &bits_len);
    if (rc == SC_E_NOT_FOUND || (rc == SC_OK && bits_len != (ls->total + 7) / 8)) {
        free(bits);
        bits_len = (ls->total + 7) / 8;
        bits = calloc(bits_len, 1);
        rc = bits ? SC_OK : sc_fail(c, SC_E_INTERNAL, "out of memory");
    }
    if (rc != SC_OK)
        return rc;
    if (bits[(ls->sequence - 1) / 8] & (1u << ((ls->sequence - 1) % 8))) {
        free(bits);
        return SC_OK; /* this part was applied */
    }
    rc = cnt_get(c, k_cnt, &n);
    if (rc == SC_OK)
        rc = sc_contact_list(c, &cl, &ncl);
    for (size_t i = 0; rc == SC_OK && i < ls->n_contacts; i++) {
        bool changed = false, conflict = false;
        rc = apply_contact(c, ls->contacts[i], cl, ncl, &changed, &conflict);
        if (rc == SC_OK)
            rc = sc_requests_ls_contact_apply(c, ls->contacts[i]); /* issue 11 */
        if (rc == SC_OK)
            rc = sc_profile_ls_contact_apply(c, ls->contacts[i]); /* issue 11 */
        if (rc == SC_OK)
            rc = sc_expire_ls_contact_apply(c, ls->contacts[i]); /* issue 11 */
        n.contacts += changed;
        if (conflict && nconf++ < 4) {
            size_t l = strlen(conflicts);
            snprintf(conflicts + l, sizeof conflicts - l, "%s%s", l ? ", " : "",
                     ls->contacts[i]->name);
        }
    }
    sc_contact_list_free(cl, ncl);
    /* issue 11: our profile key and name (part 1; newest wins, profile.c) */
    if (rc == SC_OK && ls->sequence == 1)
        rc = sc_profile_sync(c, e, ct, NULL);
    if (rc == SC_OK && ls->sequence == 1)
        rc = sc_config_sync_apply(c, ct); /* the settings (receipts.c) */
    for (size_t i = 0; rc == SC_OK && i < ls->n_groups; i++) {
        bool changed = false;
        rc = apply_group(c, ls->groups[i], &changed);
        if (rc == SC_OK)
            rc = sc_requests_ls_group_apply(c, ls->groups[i]); /* issue 11 */
        if (rc == SC_OK)
            rc = sc_expire_ls_group_apply(c, ls->groups[i]); /* issue 11 */
        n.groups += changed;
    }
    for (size_t i = 0; rc == SC_OK && i < ls->n_history; i++) {
        bool stored = false, is_text = false;
        rc = apply_row(c, ls->history[i], &stored, &is_text);
        n.messages += stored && is_text;
    }
    if (rc == SC_OK && nconf > 0 && *nrows < cap) {
        snprintf(text, sizeof text,
                 "device %u of your account synced another account key for %s%s than the one"
                 " this device pinned: this device keeps its own; compare safety numbers",
                 e->source_device, conflicts, nconf > 4 ? " and others" : "");
        rc = sc_notice_row(c, c->username, e->source_device, e->server_ts, "device_sync_conflict",
                           text, &rows[*nrows]);
        if (rc == SC_OK)
            (*nrows)++;
    }
    bits[(ls->sequence - 1) / 8] |= (uint8_t)(1u << ((ls->sequence - 1) % 8));
    n.parts++;
    if (rc == SC_OK && n.parts < ls->total) {
        rc = sc_cfg_set_blob(c, k_rx, bits, bits_len);
        if (rc == SC_OK)
            rc = cnt_set(c, k_cnt, &n);
    } else if (rc == SC_OK) {
        bool first = sc_cfg_get_u64(c, "link_synced", &v) != SC_OK;
        rc = sc_cfg_delete(c, k_rx);
        if (rc == SC_OK)
            rc = sc_cfg_delete(c, k_cnt);
        if (rc == SC_OK)
            rc = sc_cfg_set_u64(c, k_done, sc_now_ms());
        if (rc == SC_OK)
            rc = sc_cfg_set_u64(c, "link_synced", ls->sync_id);
        /* one notice, once the whole sync is here; a sync that brought
         * nothing new (sent again) shows nothing */
        if (rc == SC_OK && (first || n.contacts || n.groups || n.messages) && *nrows < cap) {
            snprintf(text, sizeof text, "synced from device %u: %zu %s, %zu %s, %zu %s",
                     e->source_device, n.contacts, plural(n.contacts, "contact", "contacts"),
                     n.groups, plural(n.groups, "group", "groups"), n.messages,
                     plural(n.messages, "message", "messages"));
            rc = sc_notice_row(c, c->username, e->source_device, e->server_ts, "device_synced",
                               text, &rows[*nrows]);
            if (rc == SC_OK)
                (*nrows)++;
        }
    }
    free(bits);
    return rc;
}
