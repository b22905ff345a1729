/*
 * client/core/groups.c -- groups by client-side fan-out over pairwise
 * sessions. The server never learns a group exists: id, name and members
 * travel only in encrypted GroupContext (proto/content.proto).
 *
 * Rules (docs/protocol.md "Groups"): the group state (name, members,
 * admins, open flag) has a revision that every change raises by one. The
 * creator is an admin; only admins change the group unless it is open
 * (everyone may); any member may leave (QUIT). An UPDATE or message from
 * someone who is not a member of our copy is ignored (a removed member
 * cannot re-add itself or keep talking); an UPDATE from a non-admin of a
 * closed group, or with a revision not above ours (a replay, a reorder) is
 * refused with a notice, unless it is our own state again. A member who is
 * removed gets the UPDATE that removes it and nothing after.
 *
 * Healing: a DELIVER carries the sender's revision; a member that sees a
 * higher one than it has (or a group it does not know) asks the sender
 * (an admin) for the state (REQUEST_STATE, at most once a minute per
 * group), and gets an UPDATE of the current state to it alone.
 *
 * A change or message that cannot reach one member now (safety number
 * changed, key directory not published, offline) stays queued for that
 * member (send.c keeps group rows across `trust`); the others get it, and
 * sc_group_report() says per member what happened.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "everyday.h"
#include "internal.h"
#include "sotto/error.h"

size_t sc_people_union(const sc_contact_info *cl, size_t n_cl, char *const *names, size_t n_names,
                       const char *self, sc_person *out)
{
    size_t i = 0, j = 0, k = 0;

    while (i < n_cl || j < n_names) {
        int d = i == n_cl ? 1 : j == n_names ? -1 : strcmp(cl[i].name, names[j]);
        const char *name = d <= 0 ? cl[i].name : names[j];
        bool verified = d <= 0 && cl[i].verified;

        if (d <= 0)
            i++;
        if (d >= 0)
            j++;
        if ((self && strcmp(name, self) == 0) || !sc_username_valid(name))
            continue;
        out[k].name = name;
        out[k].verified = verified;
        k++;
    }
    return k;
}

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

/* How often we ask about one group's state at most. */
#define GROUP_ASK_GAP_MS (60ull * 1000)

static int group_notice(sc_client *c, const char *sender, uint32_t dev, uint64_t server_ts,
                        const char *code, const char *text)
{
    int64_t rowid = 0;
    return sc_notice_row(c, sender, dev, server_ts, code, text, &rowid);
}

/* Is `g` (an UPDATE) exactly our state: name, members, admins, open? */
static bool same_state(const Sotto__Content__GroupContext *g, const char *name, char *const *m,
                       size_t nm, char *const *a, size_t na, bool open)
{
    size_t ga = 0;

    if (strcmp(g->name, name ? name : "") != 0 || g->n_members != nm || g->open != open)
        return false;
    for (size_t i = 0; i < g->n_members; i++)
        if (!in_list(m, nm, g->members[i]))
            return false;
    for (size_t i = 0; i < g->n_admins; i++)
        if (in_list(g->members, g->n_members, g->admins[i])) {
            if (!in_list(a, na, g->admins[i]))
                return false;
            ga++;
        }
    return ga == na;
}

/* Sends our current state of group id (an UPDATE, revision unchanged) to
 * `to` only, as the answer to its REQUEST_STATE. */
static int send_state_to(sc_client *c, const uint8_t id[SC_GROUP_ID_BYTES], const char *to);

int sc_group_apply_update(sc_client *c, const char *sender, uint32_t sender_device,
                          const Sotto__Content__GroupContext *g, uint64_t ts, uint64_t server_ts)
{
    char **members = NULL, **admins = NULL, *name = NULL;
    size_t nm = 0, na = 0;
    uint64_t rev = 0;
    bool active = false, open = true, known, self = c->username && strcmp(sender, c->username) == 0;
    int rc;

    rc = sc_group_members(c, g->id.data, &members, &nm, &name, &active);
    known = rc == SC_OK;
    if (rc != SC_OK && rc != SC_E_NOT_FOUND)
        return rc;
    rc = SC_OK;
    if (known && ((rc = sc_group_meta(c, g->id.data, &rev, &open)) != SC_OK ||
                  (rc = sc_group_admins(c, g->id.data, &admins, &na)) != SC_OK))
        goto out;
    if (g->type == SOTTO__CONTENT__GROUP_CONTEXT__TYPE__REQUEST_STATE) {
        /* a member asks for our state: answered by an admin (or anyone in
         * an open group) that is still in the group */
        if (known && active && !self && in_list(members, nm, sender) &&
            (open || (c->username && in_list(admins, na, c->username))))
            rc = send_state_to(c, g->id.data, sender);
        goto out;
    }
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
        if (rc == SC_OK)
            rc = sc_group_set_admins(c, g->id.data, admins, na);
        if (rc == SC_OK)
            rc = sc_group_set_meta(c, g->id.data, g->revision > rev ? g->revision : rev, open);
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
    if (g->n_members > SC_MAX_GROUP_MEMBERS + 1 || g->n_admins > SC_MAX_GROUP_MEMBERS + 1 ||
        !sc_utf8_valid(g->name, strlen(g->name)) || strlen(g->name) > SC_MAX_GROUP_NAME_BYTES)
        goto out;
    for (size_t i = 0; i < g->n_members; i++)
        if (!sc_username_valid(g->members[i]))
            goto out;
    for (size_t i = 0; i < g->n_admins; i++)
        if (!sc_username_valid(g->admins[i]))
            goto out;
    if (known && !open && !in_list(admins, na, sender)) {
        rc = group_notice(c, sender, sender_device, server_ts, "group_not_admin",
                          "a change of a group by a member who is not its admin was refused");
        goto out;
    }
    if (!known && !g->open && !in_list(g->admins, g->n_admins, sender))
        goto out; /* a "new" group whose creator is not its admin: not a creation */
    if (known && g->revision <= rev) {
        if (g->revision == rev && same_state(g, name, members, nm, admins, na, open))
            goto out; /* our state again (an answer we did not need, a copy) */
        rc = group_notice(c, sender, sender_device, server_ts, "group_stale",
                          "a group change older than the group's state (replayed or"
                          " reordered) was refused");
        goto out;
    }
    {
        bool me_in = c->username && in_list(g->members, g->n_members, c->username);
        const char *action = !known ? "create" : (me_in ? "update" : "removed");
        if (!known && !me_in)
            goto out; /* a group we are not in and never were: nothing to show or keep */
        rc = sc_group_upsert(c, g->id.data, g->name, me_in);
        if (rc == SC_OK)
            rc = sc_group_set_members(c, g->id.data, g->members, g->n_members);
        if (rc == SC_OK)
            rc = sc_group_set_admins(c, g->id.data, g->admins, g->n_admins);
        if (rc == SC_OK)
            rc = sc_group_set_meta(c, g->id.data, g->revision, g->open);
        for (size_t i = 0; rc == SC_OK && i < g->n_members; i++)
            (void)sc_contact_touch(c, g->members[i], 0);
        if (rc == SC_OK && me_in && !(known && active)) {
            /* issue 11: who added us decides whether it is a request */
            char hex[2 * SC_GROUP_ID_BYTES + 1];
            sc_hex(g->id.data, SC_GROUP_ID_BYTES, hex);
            rc = sc_requests_group_joined(c, hex, sender);
        }
        if (rc == SC_OK)
            rc = group_row(c, g->id.data, sender, sender_device, server_ts, self ? 1 : 0, ts,
                           action, g->name, g->members, g->n_members);
    }
out:
    sc_strv_free(members, nm);
    sc_strv_free(admins, na);
    free(name);
    return rc;
}

uint64_t sc_group_revision_of(sc_client *c, const uint8_t id[SC_GROUP_ID_BYTES])
{
    uint64_t rev = 0;
    if (sc_group_meta(c, id, &rev, NULL) != SC_OK)
        return 0;
    return rev;
}

/* Queues a REQUEST_STATE for group id to `to`. */
static int ask_state(sc_client *c, const uint8_t id[SC_GROUP_ID_BYTES], const char *to)
{
    Sotto__Content__Content content = SOTTO__CONTENT__CONTENT__INIT;
    Sotto__Content__DataMessage dm = SOTTO__CONTENT__DATA_MESSAGE__INIT;
    Sotto__Content__GroupContext gc = SOTTO__CONTENT__GROUP_CONTEXT__INIT;

    gc.id.data = (uint8_t *)id;
    gc.id.len = SC_GROUP_ID_BYTES;
    gc.type = SOTTO__CONTENT__GROUP_CONTEXT__TYPE__REQUEST_STATE;
    gc.revision = sc_group_revision_of(c, id);
    dm.group = &gc;
    content.timestamp = sc_next_timestamp(c);
    content.data = &dm;
    return sc_enqueue_content(c, to, &content, 0);
}

void sc_group_check_revision(sc_client *c, const char *src, const Sotto__Content__GroupContext *g)
{
    char **members = NULL, **admins = NULL, *name = NULL;
    size_t nm = 0, na = 0;
    uint64_t rev = 0;
    bool active = false, open = true, due = false;
    const char *to = src;
    char err[sizeof c->err];
    int rc;

    if (g->id.len != SC_GROUP_ID_BYTES || (c->username && strcmp(src, c->username) == 0))
        return;
    snprintf(err, sizeof err, "%s", c->err); /* asking never changes what is reported */
    rc = sc_group_members(c, g->id.data, &members, &nm, &name, &active);
    if (rc == SC_OK) {
        if (sc_group_meta(c, g->id.data, &rev, &open) != SC_OK ||
            sc_group_admins(c, g->id.data, &admins, &na) != SC_OK || !active ||
            g->revision <= rev || !in_list(members, nm, src))
            goto out;
        /* the state comes from an admin: the sender when it is one */
        if (!open && !in_list(admins, na, src) && na > 0)
            to = admins[0];
    } else if (rc != SC_E_NOT_FOUND) {
        goto out;
    }
    if (c->username && strcmp(to, c->username) == 0)
        goto out; /* we are the admin it names: nothing to ask */
    if (sc_group_ask_due(c, g->id.data, GROUP_ASK_GAP_MS, &due) == SC_OK && due)
        (void)ask_state(c, g->id.data, to);
out:
    sc_strv_free(members, nm);
    sc_strv_free(admins, na);
    free(name);
    snprintf(c->err, sizeof c->err, "%s", err);
}

void sc_group_note(sc_client *c, const char *member, int rc, bool kept, const char *reason)
{
    struct sc_group_note *n = NULL;

    for (size_t i = 0; i < c->group_nst; i++)
        if (strcmp(c->group_st[i].member, member) == 0)
            n = &c->group_st[i];
    if (n == NULL) {
        if (c->group_nst >= sizeof c->group_st / sizeof c->group_st[0] ||
            strlen(member) >= sizeof n->member)
            return;
        n = &c->group_st[c->group_nst++];
        snprintf(n->member, sizeof n->member, "%s", member);
    } else if (n->rc != SC_OK) {
        return; /* the first failure of a member's rows is the one to tell */
    }
    n->rc = rc;
    n->kept = kept;
    snprintf(n->reason, sizeof n->reason, "%s", reason ? reason : "");
}

void sc_group_report_begin(sc_client *c)
{
    c->group_nst = 0;
    c->group_noting = true;
}

/* Ends it after the flush: every recipient gets an entry; a row still
 * queued with no failure noted (never tried: the connection was lost
 * before) counts as queued. */
void sc_group_report_end(sc_client *c, char *const *recipients, size_t nr, uint64_t ts)
{
    char err[sizeof c->err];

    snprintf(err, sizeof err, "%s", c->err);
    c->group_noting = false;
    for (size_t i = 0; i < nr; i++) {
        size_t left = 0;
        bool noted = false;
        if (c->username && strcmp(recipients[i], c->username) == 0)
            continue;
        for (size_t k = 0; k < c->group_nst; k++)
            if (strcmp(c->group_st[k].member, recipients[i]) == 0)
                noted = true;
        if (noted)
            continue;
        if (sc_out_count_ts_to(c, ts, recipients[i], &left) == SC_OK && left > 0)
            sc_group_note(c, recipients[i], SC_E_NETWORK, true, "not sent yet");
        else
            sc_group_note(c, recipients[i], SC_OK, false, "");
    }
    snprintf(c->err, sizeof c->err, "%s", err);
}

bool sc_group_report(sc_client *c, size_t i, sc_member_status *out)
{
    const struct sc_group_note *n;

    if (i >= c->group_nst)
        return false;
    n = &c->group_st[i];
    out->member = n->member;
    out->code = n->rc;
    out->state = n->rc == SC_OK ? SC_MEMBER_SENT : n->kept ? SC_MEMBER_QUEUED : SC_MEMBER_REFUSED;
    out->reason = n->reason;
    return true;
}

/* A group's state as one change leaves it. */
typedef struct gstate {
    const char *name;
    char **members;
    size_t n;
    char **admins;
    size_t na;
    bool open;
    uint64_t revision;
} gstate;

/* Sends an UPDATE/QUIT of state st to `recipients` and a sync copy to our
 * devices. */
static int send_group_ctl(sc_client *c, const uint8_t id[SC_GROUP_ID_BYTES], int type,
                          const gstate *st, char *const *recipients, size_t nr, uint64_t ts)
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
    gc.name = (char *)(st->name ? st->name : "");
    gc.members = st->members;
    gc.n_members = st->n;
    gc.revision = st->revision;
    if (type == SOTTO__CONTENT__GROUP_CONTEXT__TYPE__UPDATE) {
        gc.admins = st->admins;
        gc.n_admins = st->na;
        gc.open = st->open;
    }
    dm.group = &gc;
    content.timestamp = ts;
    content.data = &dm;
    for (size_t i = 0; rc == SC_OK && i < nr; i++)
        if (strcmp(recipients[i], c->username) != 0)
            rc = sc_enqueue_content(c, recipients[i], &content, 0);
    if (rc == SC_OK && recipients != NULL) {
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

static int send_state_to(sc_client *c, const uint8_t id[SC_GROUP_ID_BYTES], const char *to)
{
    gstate st;
    char *name = NULL, **members = NULL, **admins = NULL;
    size_t nm = 0, na = 0;
    bool active = false, open = true;
    uint64_t rev = 0;
    char *one[1] = {(char *)to};
    int rc = sc_group_members(c, id, &members, &nm, &name, &active);

    if (rc == SC_OK)
        rc = sc_group_meta(c, id, &rev, &open);
    if (rc == SC_OK)
        rc = sc_group_admins(c, id, &admins, &na);
    if (rc == SC_OK) {
        st.name = name;
        st.members = members;
        st.n = nm;
        st.admins = admins;
        st.na = na;
        st.open = open;
        st.revision = rev;
        /* to `to` alone: no sync copy (our devices have this state) */
        {
            Sotto__Content__Content content = SOTTO__CONTENT__CONTENT__INIT;
            Sotto__Content__DataMessage dm = SOTTO__CONTENT__DATA_MESSAGE__INIT;
            Sotto__Content__GroupContext gc = SOTTO__CONTENT__GROUP_CONTEXT__INIT;
            gc.id.data = (uint8_t *)id;
            gc.id.len = SC_GROUP_ID_BYTES;
            gc.type = SOTTO__CONTENT__GROUP_CONTEXT__TYPE__UPDATE;
            gc.name = (char *)(st.name ? st.name : "");
            gc.members = st.members;
            gc.n_members = st.n;
            gc.admins = st.admins;
            gc.n_admins = st.na;
            gc.open = st.open;
            gc.revision = st.revision;
            dm.group = &gc;
            content.timestamp = sc_next_timestamp(c);
            content.data = &dm;
            rc = sc_enqueue_content(c, one[0], &content, 0);
        }
    }
    sc_strv_free(members, nm);
    sc_strv_free(admins, na);
    free(name);
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

/* Common tail: new state st of group `id`, sent to `recipients`, recorded
 * locally, then flushed; the per-member outcome is sc_group_report's. */
static int commit_change(sc_client *c, const uint8_t id[SC_GROUP_ID_BYTES], const gstate *st,
                         char **recipients, size_t nr, const char *action, bool active, int type)
{
    uint64_t ts;
    size_t left = 0;
    int rc, focus = SC_OK;

    c->group_nst = 0;
    rc = sc_db_begin(c);
    if (rc != SC_OK)
        return rc;
    ts = sc_next_timestamp(c);
    rc = sc_group_upsert(c, id, st->name, active);
    if (rc == SC_OK)
        rc = sc_group_set_members(c, id, st->members, st->n);
    if (rc == SC_OK)
        rc = sc_group_set_admins(c, id, st->admins, st->na);
    if (rc == SC_OK)
        rc = sc_group_set_meta(c, id, st->revision, st->open);
    if (rc == SC_OK)
        rc = group_row(c, id, c->username, c->device_id, 0, 1, ts, action, st->name, st->members,
                       st->n);
    if (rc == SC_OK && active) {
        /* issue 11: a group we change is accepted */
        char hex[2 * SC_GROUP_ID_BYTES + 1];
        sc_hex(id, SC_GROUP_ID_BYTES, hex);
        rc = sc_requests_accept_conv(c, "group", hex);
    }
    if (rc == SC_OK)
        rc = send_group_ctl(c, id, type, st, recipients, nr, ts);
    if (rc != SC_OK) {
        sc_db_rollback(c);
        return rc;
    }
    rc = sc_db_commit(c);
    if (rc != SC_OK)
        return rc;
    sc_group_report_begin(c);
    rc = sc_flush_ex(c, &left, ts, &focus);
    sc_group_report_end(c, recipients, nr, ts);
    return rc;
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
        if (rc == SC_E_UNTRUSTED) {
            /* this member's safety number changed: the change is made for
             * the others and its copy waits for `trust` (send.c) */
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
    gstate st;
    int rc;

    c->group_nst = 0;
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
    st.name = name;
    st.members = members;
    st.n = nm;
    st.admins = members; /* the creator */
    st.na = 1;
    st.open = false;
    st.revision = 1;
    rc = commit_change(c, id, &st, members, nm, "create", true,
                       SOTTO__CONTENT__GROUP_CONTEXT__TYPE__UPDATE);
    free(members);
    return rc;
}

/* A group as loaded for a change by us. */
typedef struct loaded {
    uint8_t id[SC_GROUP_ID_BYTES];
    char **members, **admins, *name;
    size_t nm, na;
    bool open;
    uint64_t revision;
} loaded;

static void loaded_free(loaded *l)
{
    sc_strv_free(l->members, l->nm);
    sc_strv_free(l->admins, l->na);
    free(l->name);
    memset(l, 0, sizeof *l);
}

/* Loads an active group for a change by us; `need_admin`: a change only
 * an admin may make (unless the group is open). */
static int load_for_change(sc_client *c, const char *ref, loaded *l, bool need_admin)
{
    bool active = false;
    int rc;

    memset(l, 0, sizeof *l);
    c->group_nst = 0;
    if (c->username == NULL)
        return sc_fail(c, SC_E_STATE, "account %s is not registered", c->account);
    rc = sc_group_resolve(c, ref, l->id);
    if (rc != SC_OK)
        return rc;
    rc = sc_group_members(c, l->id, &l->members, &l->nm, &l->name, &active);
    if (rc != SC_OK)
        return rc;
    if (rc == SC_OK)
        rc = sc_group_meta(c, l->id, &l->revision, &l->open);
    if (rc == SC_OK)
        rc = sc_group_admins(c, l->id, &l->admins, &l->na);
    if (rc == SC_OK && !active)
        rc = sc_fail(c, SC_E_STATE, "you are no longer a member of group %s", ref);
    if (rc == SC_OK && need_admin && !l->open && !in_list(l->admins, l->na, c->username))
        rc = sc_fail(c, SC_E_STATE,
                     "only an admin may change group %s (it is not open to every member)", ref);
    if (rc != SC_OK)
        loaded_free(l);
    return rc;
}

static gstate state_of(const loaded *l)
{
    gstate st;
    st.name = l->name;
    st.members = l->members;
    st.n = l->nm;
    st.admins = l->admins;
    st.na = l->na;
    st.open = l->open;
    st.revision = l->revision + 1;
    return st;
}

int sc_group_add(sc_client *c, const char *group, const char *const *m, size_t n)
{
    loaded l;
    char **nv = NULL;
    size_t k;
    gstate st;
    int rc;

    if ((rc = check_names(c, m, n)) != SC_OK || (rc = check_members_reachable(c, m, n)) != SC_OK)
        return rc;
    rc = load_for_change(c, group, &l, true);
    if (rc != SC_OK)
        return rc;
    nv = calloc(l.nm + n + 1, sizeof *nv);
    if (nv == NULL) {
        rc = sc_fail(c, SC_E_INTERNAL, "out of memory");
        goto out;
    }
    for (k = 0; k < l.nm; k++)
        nv[k] = l.members[k];
    for (size_t i = 0; i < n; i++)
        if (!in_list(nv, k, m[i]))
            nv[k++] = (char *)m[i];
    if (k > SC_MAX_GROUP_MEMBERS + 1) {
        rc = sc_fail(c, SC_E_USAGE, "too many members");
        goto out;
    }
    st = state_of(&l);
    st.members = nv;
    st.n = k;
    rc = commit_change(c, l.id, &st, nv, k, "update", true,
                       SOTTO__CONTENT__GROUP_CONTEXT__TYPE__UPDATE);
out:
    free(nv);
    loaded_free(&l);
    return rc;
}

int sc_group_remove(sc_client *c, const char *group, const char *const *m, size_t n)
{
    loaded l;
    char **nv = NULL, **na = NULL;
    size_t k = 0, ka = 0;
    gstate st;
    int rc;

    if ((rc = check_names(c, m, n)) != SC_OK || (rc = check_members_reachable(c, m, n)) != SC_OK)
        return rc;
    rc = load_for_change(c, group, &l, true);
    if (rc != SC_OK)
        return rc;
    for (size_t i = 0; i < n; i++) {
        if (c->username && strcmp(m[i], c->username) == 0) {
            rc = sc_fail(c, SC_E_USAGE, "to remove yourself, use: group leave");
            goto out;
        }
        if (!in_list(l.members, l.nm, m[i])) {
            rc = sc_fail(c, SC_E_NOT_FOUND, "%s is not a member of %s", m[i], group);
            goto out;
        }
    }
    nv = calloc(l.nm + 1, sizeof *nv);
    na = calloc(l.na + 1, sizeof *na);
    if (nv == NULL || na == NULL) {
        rc = sc_fail(c, SC_E_INTERNAL, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < l.nm; i++)
        if (!in_list((char *const *)m, n, l.members[i]))
            nv[k++] = l.members[i];
    for (size_t i = 0; i < l.na; i++)
        if (!in_list((char *const *)m, n, l.admins[i]))
            na[ka++] = l.admins[i];
    st = state_of(&l);
    st.members = nv;
    st.n = k;
    st.admins = na;
    st.na = ka;
    /* The UPDATE goes to the remaining members and to the removed ones (so
     * their client knows); nothing later goes to the removed. */
    rc = commit_change(c, l.id, &st, l.members, l.nm, "update", true,
                       SOTTO__CONTENT__GROUP_CONTEXT__TYPE__UPDATE);
out:
    free(nv);
    free(na);
    loaded_free(&l);
    return rc;
}

int sc_group_leave(sc_client *c, const char *group)
{
    loaded l;
    char **rest = NULL, **ra = NULL;
    size_t k = 0, ka = 0;
    gstate st;
    int rc = load_for_change(c, group, &l, false);

    if (rc != SC_OK)
        return rc;
    rest = calloc(l.nm + 1, sizeof *rest);
    ra = calloc(l.na + 1, sizeof *ra);
    if (rest == NULL || ra == NULL) {
        rc = sc_fail(c, SC_E_INTERNAL, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < l.nm; i++)
        if (strcmp(l.members[i], c->username) != 0)
            rest[k++] = l.members[i];
    for (size_t i = 0; i < l.na; i++)
        if (strcmp(l.admins[i], c->username) != 0)
            ra[ka++] = l.admins[i];
    st = state_of(&l);
    st.members = rest;
    st.n = k;
    st.admins = ra;
    st.na = ka;
    rc = commit_change(c, l.id, &st, l.members, l.nm, "quit", false,
                       SOTTO__CONTENT__GROUP_CONTEXT__TYPE__QUIT);
out:
    free(rest);
    free(ra);
    loaded_free(&l);
    return rc;
}

int sc_group_rename(sc_client *c, const char *group, const char *new_name)
{
    loaded l;
    gstate st;
    int rc;

    if ((rc = check_group_name(c, new_name)) != SC_OK)
        return rc;
    rc = load_for_change(c, group, &l, true);
    if (rc != SC_OK)
        return rc;
    st = state_of(&l);
    st.name = new_name;
    rc = commit_change(c, l.id, &st, l.members, l.nm, "update", true,
                       SOTTO__CONTENT__GROUP_CONTEXT__TYPE__UPDATE);
    loaded_free(&l);
    return rc;
}

int sc_group_admin(sc_client *c, const char *group, const char *member, bool make_admin)
{
    loaded l;
    char **na = NULL;
    size_t ka = 0;
    gstate st;
    int rc;

    if (!sc_username_valid(member))
        return sc_fail(c, SC_E_USAGE, "invalid member name: %s", member);
    rc = load_for_change(c, group, &l, true);
    if (rc != SC_OK)
        return rc;
    if (!in_list(l.members, l.nm, member)) {
        rc = sc_fail(c, SC_E_NOT_FOUND, "%s is not a member of %s", member, group);
        goto out;
    }
    na = calloc(l.na + 2, sizeof *na);
    if (na == NULL) {
        rc = sc_fail(c, SC_E_INTERNAL, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < l.na; i++)
        if (strcmp(l.admins[i], member) != 0)
            na[ka++] = l.admins[i];
    if (make_admin)
        na[ka++] = (char *)member;
    st = state_of(&l);
    st.admins = na;
    st.na = ka;
    rc = commit_change(c, l.id, &st, l.members, l.nm, "update", true,
                       SOTTO__CONTENT__GROUP_CONTEXT__TYPE__UPDATE);
out:
    free(na);
    loaded_free(&l);
    return rc;
}

int sc_group_set_open(sc_client *c, const char *group, bool open)
{
    loaded l;
    gstate st;
    int rc = load_for_change(c, group, &l, true);

    if (rc != SC_OK)
        return rc;
    /* closing needs an admin: one who closes an open group becomes one when
     * there is none */
    st = state_of(&l);
    st.open = open;
    if (!open && l.na == 0) {
        st.admins = &c->username;
        st.na = 1;
    }
    rc = commit_change(c, l.id, &st, l.members, l.nm, "update", true,
                       SOTTO__CONTENT__GROUP_CONTEXT__TYPE__UPDATE);
    loaded_free(&l);
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
        char **m = NULL, *name = NULL, **a = NULL;
        size_t n = 0, na = 0;
        bool active = false, open = true;
        uint64_t rev = 0;
        sc_group_info gi;

        if (sc_group_members(c, id, &m, &n, &name, &active) != SC_OK)
            continue;
        if (sc_group_meta(c, id, &rev, &open) != SC_OK ||
            sc_group_admins(c, id, &a, &na) != SC_OK) {
            sc_strv_free(m, n);
            free(name);
            continue;
        }
        sc_hex(id, SC_GROUP_ID_BYTES, hex);
        gi.id_hex = hex;
        gi.name = name ? name : "";
        gi.members = (const char *const *)m;
        gi.n_members = n;
        gi.active = active;
        gi.revision = rev;
        gi.admins = (const char *const *)a;
        gi.n_admins = na;
        gi.open = open;
        cb(ud, &gi);
        sc_strv_free(a, na);
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
