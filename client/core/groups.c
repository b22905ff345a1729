/*
 * client/core/groups.c -- groups by client-side fan-out over pairwise
 * sessions. The server never learns a group exists: id, name and members
 * travel only in encrypted GroupContext (proto/content.proto).
 *
 * Rules: any member may send an UPDATE (new name and full member list);
 * an UPDATE or message from someone who is not a member of our copy of the
 * group is ignored (a removed member cannot re-add itself or keep
 * talking); a member who is removed gets the UPDATE that removes it and
 * nothing after; QUIT removes the sender.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "internal.h"
#include "sotto/error.h"

void sc_strv_free(char **v, size_t n)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

int sc_group_resolve(sc_client *c, const char *ref, uint8_t id[SC_GROUP_ID_BYTES])
{
    size_t bl = 0, found = 0;
    int rc;

    if (strlen(ref) == 2 * SC_GROUP_ID_BYTES &&
        sodium_hex2bin(id, SC_GROUP_ID_BYTES, ref, strlen(ref), NULL, &bl, NULL) == 0 &&
        bl == SC_GROUP_ID_BYTES) {
        bool exists = false;
        rc = sc_group_exists(c, id, &exists);
        if (rc != SC_OK)
            return rc;
        if (exists)
            return SC_OK;
    }
    /* by name: active groups first, must be unique */
    rc = sc_group_by_name(c, ref, id, &found);
    if (rc != SC_OK)
        return rc;
    if (found == 0)
        return sc_fail(c, SC_E_NOT_FOUND, "no such group: %s", ref);
    if (found > 1)
        return sc_fail(c, SC_E_USAGE, "several groups are called %s: use the group id", ref);
    return SC_OK;
}

/* History row describing a group change. */
static int group_row(sc_client *c, const uint8_t id[SC_GROUP_ID_BYTES], const char *sender,
                     uint32_t dev, uint64_t server_ts, int direction, uint64_t ts,
                     const char *action, const char *name, char *const *m, size_t n)
{
    json_t *o = json_object(), *arr = json_array();
    sc_msg_row row;
    char gid_hex[33];
    char *extra;
    int rc;

    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_string(m[i]));
    json_object_set_new(o, "group_action", json_string(action));
    json_object_set_new(o, "group_name", json_string(name));
    json_object_set_new(o, "members", arr);
    extra = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    sc_hex(id, SC_GROUP_ID_BYTES, gid_hex);
    memset(&row, 0, sizeof row);
    row.conv_kind = "group";
    row.conv = gid_hex;
    row.direction = direction;
    row.sender = sender;
    row.sender_device = dev;
    row.server_ts = server_ts;
    row.timestamp = ts;
    row.kind = "group";
    row.body = "";
    row.extra = extra;
    rc = sc_msg_insert(c, &row, NULL);
    free(extra);
    return rc;
}

static bool in_list(char *const *v, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i], s) == 0)
            return true;
    return false;
}

int sc_group_apply_update(sc_client *c, const char *sender, uint32_t sender_device,
                          const Sotto__Content__GroupContext *g, uint64_t ts, uint64_t server_ts)
{
    char **members = NULL, *name = NULL;
    size_t nm = 0;
    bool active = false, known, self = c->username && strcmp(sender, c->username) == 0;
    int rc;

    rc = sc_group_members(c, g->id.data, &members, &nm, &name, &active);
    known = rc == SC_OK;
    if (rc != SC_OK && rc != SC_E_NOT_FOUND)
        return rc;
    rc = SC_OK;
    if (g->type == SOTTO__CONTENT__GROUP_CONTEXT__TYPE__QUIT) {
        char **rest;
        size_t nr = 0;
        if (!known || !in_list(members, nm, sender))
            goto out;
        rest = calloc(nm + 1, sizeof *rest);
        if (rest == NULL) {
            rc = sc_fail(c, SC_E_INTERNAL, "out of memory");
            goto out;
        }
        for (size_t i = 0; i < nm; i++)
            if (strcmp(members[i], sender) != 0)
                rest[nr++] = members[i];
        rc = sc_group_set_members(c, g->id.data, rest, nr);
        if (rc == SC_OK && self)
            rc = sc_group_upsert(c, g->id.data, name, false);
        if (rc == SC_OK)
            rc = group_row(c, g->id.data, sender, sender_device, server_ts, self ? 1 : 0, ts,
                           "quit", name, rest, nr);
        free(rest);
        goto out;
    }
    if (g->type != SOTTO__CONTENT__GROUP_CONTEXT__TYPE__UPDATE)
        goto out;
    /* UPDATE: from a member of our copy, or creating a group we do not
     * know yet in which the sender is a member. */
    if (known ? !in_list(members, nm, sender) : !in_list(g->members, g->n_members, sender))
        goto out;
    if (g->n_members > SC_MAX_GROUP_MEMBERS + 1 || !sc_utf8_valid(g->name, strlen(g->name)) ||
        strlen(g->name) > SC_MAX_GROUP_NAME_BYTES)
        goto out;
    for (size_t i = 0; i < g->n_members; i++)
        if (!sc_username_valid(g->members[i]))
            goto out;
    {
        bool me_in = c->username && in_list(g->members, g->n_members, c->username);
        const char *action = !known ? "create" : (me_in ? "update" : "removed");
        if (!known && !me_in)
            goto out; /* a group we are not in and never were: nothing to show or keep */
        rc = sc_group_upsert(c, g->id.data, g->name, me_in);
        if (rc == SC_OK)
            rc = sc_group_set_members(c, g->id.data, g->members, g->n_members);
        for (size_t i = 0; rc == SC_OK && i < g->n_members; i++)
            (void)sc_contact_touch(c, g->members[i], 0);
        if (rc == SC_OK)
            rc = group_row(c, g->id.data, sender, sender_device, server_ts, self ? 1 : 0, ts,
                           action, g->name, g->members, g->n_members);
    }
out:
    sc_strv_free(members, nm);
    free(name);
    return rc;
}

/* Sends an UPDATE/QUIT to `recipients` and a sync copy to our devices. */
static int send_group_ctl(sc_client *c, const uint8_t id[SC_GROUP_ID_BYTES], int type,
                          const char *name, char *const *members, size_t n, char *const *recipients,
                          size_t nr, uint64_t ts)
{
    Sotto__Content__Content content = SOTTO__CONTENT__CONTENT__INIT;
    Sotto__Content__DataMessage dm = SOTTO__CONTENT__DATA_MESSAGE__INIT;
    Sotto__Content__GroupContext gc = SOTTO__CONTENT__GROUP_CONTEXT__INIT;
    Sotto__Content__Content sc2 = SOTTO__CONTENT__CONTENT__INIT;
    Sotto__Content__SyncMessage sync = SOTTO__CONTENT__SYNC_MESSAGE__INIT;
    Sotto__Content__SyncMessage__Sent sent = SOTTO__CONTENT__SYNC_MESSAGE__SENT__INIT;
    int rc = SC_OK;

    gc.id.data = (uint8_t *)id;
    gc.id.len = SC_GROUP_ID_BYTES;
    gc.type = (Sotto__Content__GroupContext__Type)type;
    gc.name = (char *)(name ? name : "");
    gc.members = (char **)members;
    gc.n_members = n;
    dm.group = &gc;
    content.timestamp = ts;
    content.data = &dm;
    for (size_t i = 0; rc == SC_OK && i < nr; i++)
        if (strcmp(recipients[i], c->username) != 0)
            rc = sc_enqueue_content(c, recipients[i], &content, 0);
    if (rc == SC_OK) {
        sent.destination = (char *)"";
        sent.timestamp = ts;
        sent.message = &dm;
        sync.sent = &sent;
        sc2.timestamp = ts;
        sc2.sync = &sync;
        rc = sc_enqueue_content(c, c->username, &sc2, 0);
    }
    return rc;
}

static int check_names(sc_client *c, const char *const *m, size_t n)
{
    if (n > SC_MAX_GROUP_MEMBERS)
        return sc_fail(c, SC_E_USAGE, "too many members (at most %d)", SC_MAX_GROUP_MEMBERS);
    for (size_t i = 0; i < n; i++)
        if (!sc_username_valid(m[i]))
            return sc_fail(c, SC_E_USAGE, "invalid member name: %s", m[i]);
    return SC_OK;
}

static int check_group_name(sc_client *c, const char *name)
{
    size_t l = strlen(name);
    if (l == 0 || l > SC_MAX_GROUP_NAME_BYTES || !sc_utf8_valid(name, l))
        return sc_fail(c, SC_E_USAGE, "group name must be 1 to %d bytes of UTF-8",
                       SC_MAX_GROUP_NAME_BYTES);
    return SC_OK;
}

/* Common tail: new state (name, members) of group `id`, sent to
 * `recipients`, recorded locally, then flushed. */
static int commit_change(sc_client *c, const uint8_t id[SC_GROUP_ID_BYTES], const char *name,
                         char **members, size_t n, char **recipients, size_t nr, const char *action,
                         bool active, int type)
{
    uint64_t ts;
    size_t left = 0;
    int rc = sc_db_begin(c);

    if (rc != SC_OK)
        return rc;
    ts = sc_next_timestamp(c);
    rc = sc_group_upsert(c, id, name, active);
    if (rc == SC_OK)
        rc = sc_group_set_members(c, id, members, n);
    if (rc == SC_OK)
        rc = group_row(c, id, c->username, c->device_id, 0, 1, ts, action, name, members, n);
    if (rc == SC_OK)
        rc = send_group_ctl(c, id, type, name, members, n, recipients, nr, ts);
    if (rc != SC_OK) {
        sc_db_rollback(c);
        return rc;
    }
    rc = sc_db_commit(c);
    if (rc != SC_OK)
        return rc;
    {
        int focus = SC_OK;
        return sc_flush_ex(c, &left, ts, &focus);
    }
}

/* Before a group change: every new member exists and can be sent to (their
 * signed device list checks out), so that no group is created or changed
 * with a member who would silently get nothing. Offline, the check is left
 * to the send (the change stays queued). */
static int check_members_reachable(sc_client *c, const char *const *m, size_t n)
{
    sotto_device_list l;
    int rc = sc_connect(c);

    if (rc == SC_E_NETWORK)
        return SC_OK;
    for (size_t i = 0; rc == SC_OK && i < n; i++) {
        if (c->username && strcmp(m[i], c->username) == 0)
            continue;
        rc = sc_account_refresh(c, m[i], &l);
        if (rc == SC_E_NETWORK)
            return SC_OK;
        if (rc == SC_E_RETRY && c->kt_wait) {
            /* the key directory has not published this member yet: the
             * change is made and its copy for them waits in the outbox
             * (flushes skip it until the directory publishes them) */
            rc = SC_OK;
            continue;
        }
        if (rc == SC_E_NOT_FOUND)
            rc = sc_fail(c, SC_E_NOT_FOUND, "no such user: %s (the group was not changed)", m[i]);
    }
    return rc;
}

int sc_group_create(sc_client *c, const char *name, const char *const *m, size_t n,
                    char id_hex_out[33])
{
    uint8_t id[SC_GROUP_ID_BYTES];
    char **members = NULL;
    size_t nm = 0;
    int rc;

    if (c->username == NULL)
        return sc_fail(c, SC_E_STATE, "account %s is not registered", c->account);
    if ((rc = check_group_name(c, name)) != SC_OK || (rc = check_names(c, m, n)) != SC_OK ||
        (rc = check_members_reachable(c, m, n)) != SC_OK)
        return rc;
    members = calloc(n + 1, sizeof *members);
    if (members == NULL)
        return sc_fail(c, SC_E_INTERNAL, "out of memory");
    members[nm++] = c->username;
    for (size_t i = 0; i < n; i++)
        if (!in_list(members, nm, m[i]))
            members[nm++] = (char *)m[i];
    randombytes_buf(id, sizeof id);
    sc_hex(id, sizeof id, id_hex_out);
    rc = commit_change(c, id, name, members, nm, members, nm, "create", true,
                       SOTTO__CONTENT__GROUP_CONTEXT__TYPE__UPDATE);
    free(members);
    return rc;
}

/* Loads an active group for a change by us. */
static int load_for_change(sc_client *c, const char *ref, uint8_t id[SC_GROUP_ID_BYTES],
                           char ***members, size_t *nm, char **name)
{
    bool active = false;
    int rc;

    if (c->username == NULL)
        return sc_fail(c, SC_E_STATE, "account %s is not registered", c->account);
    rc = sc_group_resolve(c, ref, id);
    if (rc != SC_OK)
        return rc;
    rc = sc_group_members(c, id, members, nm, name, &active);
    if (rc != SC_OK)
        return rc;
    if (!active) {
        sc_strv_free(*members, *nm);
        free(*name);
        *members = NULL;
        *name = NULL;
        return sc_fail(c, SC_E_STATE, "you are no longer a member of group %s", ref);
    }
    return SC_OK;
}

int sc_group_add(sc_client *c, const char *group, const char *const *m, size_t n)
{
    uint8_t id[SC_GROUP_ID_BYTES];
    char **members = NULL, **nv = NULL, *name = NULL;
    size_t nm = 0, k;
    int rc;

    if ((rc = check_names(c, m, n)) != SC_OK || (rc = check_members_reachable(c, m, n)) != SC_OK)
        return rc;
    rc = load_for_change(c, group, id, &members, &nm, &name);
    if (rc != SC_OK)
        return rc;
    nv = calloc(nm + n + 1, sizeof *nv);
    if (nv == NULL) {
        rc = sc_fail(c, SC_E_INTERNAL, "out of memory");
        goto out;
    }
    for (k = 0; k < nm; k++)
        nv[k] = members[k];
    for (size_t i = 0; i < n; i++)
        if (!in_list(nv, k, m[i]))
            nv[k++] = (char *)m[i];
    if (k > SC_MAX_GROUP_MEMBERS + 1) {
        rc = sc_fail(c, SC_E_USAGE, "too many members");
        goto out;
    }
    rc = commit_change(c, id, name, nv, k, nv, k, "update", true,
                       SOTTO__CONTENT__GROUP_CONTEXT__TYPE__UPDATE);
out:
    free(nv);
    sc_strv_free(members, nm);
    free(name);
    return rc;
}

int sc_group_remove(sc_client *c, const char *group, const char *const *m, size_t n)
{
    uint8_t id[SC_GROUP_ID_BYTES];
    char **members = NULL, **nv = NULL, *name = NULL;
    size_t nm = 0, k = 0;
    int rc;

    if ((rc = check_names(c, m, n)) != SC_OK || (rc = check_members_reachable(c, m, n)) != SC_OK)
        return rc;
    rc = load_for_change(c, group, id, &members, &nm, &name);
    if (rc != SC_OK)
        return rc;
    for (size_t i = 0; i < n; i++) {
        if (c->username && strcmp(m[i], c->username) == 0) {
            rc = sc_fail(c, SC_E_USAGE, "to remove yourself, use: group leave");
            goto out;
        }
        if (!in_list(members, nm, m[i])) {
            rc = sc_fail(c, SC_E_NOT_FOUND, "%s is not a member of %s", m[i], group);
            goto out;
        }
    }
    nv = calloc(nm + 1, sizeof *nv);
    if (nv == NULL) {
        rc = sc_fail(c, SC_E_INTERNAL, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < nm; i++)
        if (!in_list((char *const *)m, n, members[i]))
            nv[k++] = members[i];
    /* The UPDATE goes to the remaining members and to the removed ones (so
     * their client knows); nothing later goes to the removed. */
    rc = commit_change(c, id, name, nv, k, members, nm, "update", true,
                       SOTTO__CONTENT__GROUP_CONTEXT__TYPE__UPDATE);
out:
    free(nv);
    sc_strv_free(members, nm);
    free(name);
    return rc;
}

int sc_group_leave(sc_client *c, const char *group)
{
    uint8_t id[SC_GROUP_ID_BYTES];
    char **members = NULL, **rest = NULL, *name = NULL;
    size_t nm = 0, k = 0;
    int rc = load_for_change(c, group, id, &members, &nm, &name);

    if (rc != SC_OK)
        return rc;
    rest = calloc(nm + 1, sizeof *rest);
    if (rest == NULL) {
        rc = sc_fail(c, SC_E_INTERNAL, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < nm; i++)
        if (strcmp(members[i], c->username) != 0)
            rest[k++] = members[i];
    rc = commit_change(c, id, name, rest, k, members, nm, "quit", false,
                       SOTTO__CONTENT__GROUP_CONTEXT__TYPE__QUIT);
out:
    free(rest);
    sc_strv_free(members, nm);
    free(name);
    return rc;
}

int sc_group_rename(sc_client *c, const char *group, const char *new_name)
{
    uint8_t id[SC_GROUP_ID_BYTES];
    char **members = NULL, *name = NULL;
    size_t nm = 0;
    int rc;

    if ((rc = check_group_name(c, new_name)) != SC_OK)
        return rc;
    rc = load_for_change(c, group, id, &members, &nm, &name);
    if (rc != SC_OK)
        return rc;
    rc = commit_change(c, id, new_name, members, nm, members, nm, "update", true,
                       SOTTO__CONTENT__GROUP_CONTEXT__TYPE__UPDATE);
    sc_strv_free(members, nm);
    free(name);
    return rc;
}

int sc_group_list(sc_client *c, sc_group_cb cb, void *ud)
{
    uint8_t *ids = NULL;
    size_t nids = 0;
    int rc = sc_group_ids(c, &ids, &nids);

    if (rc != SC_OK)
        return rc;
    for (size_t k = 0; k < nids; k++) {
        const uint8_t *id = ids + k * SC_GROUP_ID_BYTES;
        char hex[33];
        char **m = NULL, *name = NULL;
        size_t n = 0;
        bool active = false;
        sc_group_info gi;

        if (sc_group_members(c, id, &m, &n, &name, &active) != SC_OK)
            continue;
        sc_hex(id, SC_GROUP_ID_BYTES, hex);
        gi.id_hex = hex;
        gi.name = name ? name : "";
        gi.members = (const char *const *)m;
        gi.n_members = n;
        gi.active = active;
        cb(ud, &gi);
        sc_strv_free(m, n);
        free(name);
    }
    free(ids);
    return SC_OK;
}

int sc_group_find(sc_client *c, const char *ref, char id_hex_out[33])
{
    uint8_t id[SC_GROUP_ID_BYTES];
    int rc = sc_group_resolve(c, ref, id);
    if (rc == SC_OK)
        sc_hex(id, sizeof id, id_hex_out);
    return rc;
}
