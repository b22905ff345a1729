/*
 * client/daemon/rpc.c -- the JSON-RPC 2.0 layer of `sotto daemon`
 * (docs/rpc.md): request and batch validation, the method table, the
 * per-account workers that run the calls, events to subscribers.
 *
 * A line is one request object or a batch array (JSON-RPC 2.0 §6). Each
 * valid request becomes a call on its account's worker queue; the worker
 * (the only thread that touches that account's sc_client) runs it and
 * files its response into the line's batch; the batch is sent when its last
 * call is done (a single request: the object; a batch: the array; only
 * notifications: nothing). Errors found before a worker is involved
 * (parse, invalid request, unknown method, bad params) are filed at once.
 *
 * A method is one CLI command (or a few, updateGroup) run through
 * sotto_cli_run with --json: its JSON Lines are the result, a non-zero
 * exit is an error whose code is the exit code. So every method prints,
 * checks and fails exactly as the CLI does.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "daemon.h"

#define RPC_PARSE_ERROR -32700
#define RPC_INVALID_REQUEST -32600
#define RPC_METHOD_NOT_FOUND -32601
#define RPC_INVALID_PARAMS -32602
#define RPC_INTERNAL_ERROR -32603

#define MAX_ARGV 200
#define MAX_BATCH 1000
#define DEFAULT_SUBSCRIBER "default"

typedef struct dm_batch dm_batch;
typedef struct dm_account dm_account;
typedef struct dm_call dm_call;

/* the argv of one CLI command, built from params; strings owned */
typedef struct argv_b {
    int n;
    char *v[MAX_ARGV];
    bool overflow;
} argv_b;

typedef enum {
    R_OBJECT, /* the last JSON line */
    R_LIST,   /* every JSON line, an array */
} result_shape;

typedef struct dm_method dm_method;
/* builds the command(s); returns NULL or an error message for -32602 */
typedef const char *(*build_fn)(json_t *params, argv_b *cmds, size_t *n_cmds);
/* a method run by the worker itself (subscriptions); returns the result
 * or sets *err_code / *err_msg */
typedef json_t *(*special_fn)(dm_account *a, dm_call *call, int *err_code, char *err_msg,
                              size_t cap);

struct dm_method {
    const char *name;
    build_fn build;
    result_shape shape;
    special_fn special;
    bool no_account; /* answered by the daemon itself */
};

#define MAX_CMDS 16

struct dm_call {
    dm_batch *batch;
    size_t idx;
    json_t *id; /* NULL: notification */
    const dm_method *m;
    json_t *params;
    argv_b cmds[MAX_CMDS];
    size_t n_cmds;
    uint64_t conn;
    dm_call *next;
};

struct dm_batch {
    uint64_t conn;
    bool single;
    size_t pending;
    json_t *responses; /* array; a slot stays null for a notification */
};

typedef struct dm_sub {
    uint64_t conn;
    char *name;
    struct dm_sub *next;
} dm_sub;

struct dm_account {
    dm_daemon *d;
    sc_client *c;
    char *name;
    pthread_t th;
    bool started;
    dm_call *head, *tail; /* under d->mu */
    volatile int wake;    /* sc_receive's stop flag: a call is queued */
    dm_sub *subs;         /* worker thread only */
    int64_t start_row;    /* newest history row when the daemon started */
};

typedef struct dm_out {
    uint64_t conn;
    char *text;
    struct dm_out *next;
} dm_out;

struct dm_daemon {
    dm_account *acc;
    size_t n_acc;
    bool sync;
    volatile int shutdown;
    pthread_mutex_t mu; /* output queue, call queues, batches, closed conns */
    dm_out *out_head, *out_tail;
    int pipe_fd[2];
    uint64_t *closed; /* connections closed: the workers drop their subscriptions */
    size_t n_closed;
    size_t open_batches; /* lines not fully answered yet (under mu) */
};

/* ------------------------------------------------------------ output */

static void queue_text(dm_daemon *d, uint64_t conn, char *text)
{
    dm_out *o = calloc(1, sizeof *o);
    if (o == NULL) {
        free(text);
        return;
    }
    o->conn = conn;
    o->text = text;
    pthread_mutex_lock(&d->mu);
    if (d->out_tail)
        d->out_tail->next = o;
    else
        d->out_head = o;
    d->out_tail = o;
    pthread_mutex_unlock(&d->mu);
    if (d->pipe_fd[1] >= 0) {
        char b = 1;
        ssize_t w = write(d->pipe_fd[1], &b, 1); /* full pipe: a wake is pending anyway */
        (void)w;
    }
}

static void queue_json(dm_daemon *d, uint64_t conn, json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (s)
        queue_text(d, conn, s);
}

bool dm_take_output(dm_daemon *d, uint64_t *conn, char **text)
{
    dm_out *o;
    pthread_mutex_lock(&d->mu);
    o = d->out_head;
    if (o) {
        d->out_head = o->next;
        if (d->out_head == NULL)
            d->out_tail = NULL;
    }
    pthread_mutex_unlock(&d->mu);
    if (o == NULL)
        return false;
    *conn = o->conn;
    *text = o->text;
    free(o);
    return true;
}

int dm_output_fd(dm_daemon *d)
{
    return d->pipe_fd[0];
}

/* ------------------------------------------------------------ responses */

static json_t *error_obj(int code, const char *msg, json_t *data)
{
    json_t *e = json_object();
    json_object_set_new(e, "code", json_integer(code));
    json_object_set_new(e, "message", json_string(msg ? msg : "error"));
    if (data)
        json_object_set_new(e, "data", data);
    return e;
}

static json_t *response(json_t *id, json_t *result, json_t *error)
{
    json_t *r = json_object();
    json_object_set_new(r, "jsonrpc", json_string("2.0"));
    if (error)
        json_object_set_new(r, "error", error);
    else
        json_object_set_new(r, "result", result ? result : json_null());
    json_object_set(r, "id", id ? id : json_null());
    return r;
}

/* Files response r (NULL for a notification) into slot idx; sends the batch
 * when it was the last one. Takes r. */
static void batch_done(dm_daemon *d, dm_batch *b, size_t idx, json_t *r)
{
    bool last;
    pthread_mutex_lock(&d->mu);
    if (r)
        json_array_set_new(b->responses, idx, r);
    last = --b->pending == 0;
    pthread_mutex_unlock(&d->mu);
    if (!last)
        return;
    if (b->single) {
        json_t *only = json_array_get(b->responses, 0);
        if (only && !json_is_null(only))
            queue_json(d, b->conn, only);
    } else {
        json_t *arr = json_array();
        size_t i;
        json_t *v;
        json_array_foreach(b->responses, i, v)
        {
            if (!json_is_null(v))
                json_array_append(arr, v);
        }
        if (json_array_size(arr) > 0)
            queue_json(d, b->conn, arr);
        json_decref(arr);
    }
    json_decref(b->responses);
    free(b);
    pthread_mutex_lock(&d->mu);
    d->open_batches--;
    pthread_mutex_unlock(&d->mu);
}

bool dm_idle(dm_daemon *d)
{
    bool idle;
    pthread_mutex_lock(&d->mu);
    idle = d->open_batches == 0 && d->out_head == NULL;
    pthread_mutex_unlock(&d->mu);
    return idle;
}

/* ------------------------------------------------------------ params -> argv */

static bool push(argv_b *a, const char *s)
{
    if (a->n >= MAX_ARGV - 1 || s == NULL) {
        a->overflow = true;
        return false;
    }
    a->v[a->n] = strdup(s);
    if (a->v[a->n] == NULL) {
        a->overflow = true;
        return false;
    }
    a->n++;
    return true;
}

static void argv_free(argv_b *a)
{
    for (int i = 0; i < a->n; i++)
        free(a->v[i]);
    a->n = 0;
}

/* Optional string param: NULL when absent; *bad when present and not a
 * string. */
static const char *pstr(json_t *p, const char *key, bool *bad)
{
    json_t *v = json_object_get(p, key);
    if (v == NULL || json_is_null(v))
        return NULL;
    if (!json_is_string(v)) {
        *bad = true;
        return NULL;
    }
    return json_string_value(v);
}

/* Optional non-negative integer param (a number, or digits in a string):
 * false when absent, *bad when malformed. */
static bool pint(json_t *p, const char *key, long long *out, bool *bad)
{
    json_t *v = json_object_get(p, key);
    if (v == NULL || json_is_null(v))
        return false;
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *out = json_integer_value(v);
        return true;
    }
    if (json_is_string(v)) {
        char *e;
        errno = 0;
        long long x = strtoll(json_string_value(v), &e, 10);
        if (errno == 0 && e != json_string_value(v) && *e == '\0' && x >= 0) {
            *out = x;
            return true;
        }
    }
    *bad = true;
    return false;
}

static bool pbool(json_t *p, const char *key, bool *bad)
{
    json_t *v = json_object_get(p, key);
    if (v == NULL || json_is_null(v))
        return false;
    if (!json_is_boolean(v)) {
        *bad = true;
        return false;
    }
    return json_is_true(v);
}

/* A string or an array of strings (signal-cli takes both for members and
 * recipients); appended to a. false when malformed. */
static bool pstrings(json_t *p, const char *key, argv_b *a, size_t *count)
{
    json_t *v = json_object_get(p, key), *x;
    size_t i;
    *count = 0;
    if (v == NULL || json_is_null(v))
        return true;
    if (json_is_string(v)) {
        *count = 1;
        return push(a, json_string_value(v));
    }
    if (!json_is_array(v))
        return false;
    json_array_foreach(v, i, x)
    {
        if (!json_is_string(x) || !push(a, json_string_value(x)))
            return false;
        (*count)++;
    }
    return true;
}

static char num_buf[32];

static const char *num(long long v)
{
    snprintf(num_buf, sizeof num_buf, "%lld", v);
    return num_buf;
}

/* recipient (a string, or signal-cli's one-element array) */
static const char *recipient_of(json_t *p, bool *bad)
{
    json_t *v = json_object_get(p, "recipient");
    if (json_is_array(v) && json_array_size(v) == 1)
        v = json_array_get(v, 0);
    if (v == NULL || json_is_null(v))
        return NULL;
    if (!json_is_string(v)) {
        *bad = true;
        return NULL;
    }
    return json_string_value(v);
}

static const char *b_send(json_t *p, argv_b *cmds, size_t *n)
{
    bool bad = false;
    const char *to = recipient_of(p, &bad), *grp = pstr(p, "groupId", &bad);
    const char *text = pstr(p, "message", &bad), *file = pstr(p, "attachment", &bad);
    argv_b *a = &cmds[0];

    if (bad)
        return "recipient, groupId, message and attachment are strings";
    if ((to == NULL) == (grp == NULL))
        return "give recipient or groupId";
    if (text == NULL && file == NULL)
        return "give message and/or attachment";
    if (text && text[0] == '\0')
        return "message is empty";
    push(a, "send");
    if (file) {
        if (file[0] != '/')
            return "attachment must be an absolute path";
        push(a, "--file");
        push(a, file);
    }
    if (text) {
        push(a, "--text");
        push(a, text);
    }
    {
        /* issue 11 (msgops): a reply, mentions, an edit; quoteMessage is
         * ignored (the excerpt comes from our own history) */
        const char *qa = pstr(p, "quoteAuthor", &bad);
        long long qt = 0, et = 0;
        bool has_qt = pint(p, "quoteTimestamp", &qt, &bad);
        bool has_et = pint(p, "editTimestamp", &et, &bad);
        json_t *ms = json_object_get(p, "mentions"), *x;
        size_t i;
        if (ms == NULL || json_is_null(ms))
            ms = json_object_get(p, "mention"); /* signal-cli's name */
        (void)pstr(p, "quoteMessage", &bad);
        if (bad)
            return "quoteAuthor and quoteMessage are strings, quoteTimestamp and editTimestamp"
                   " integers";
        if (has_qt || qa) {
            if (!has_qt || qa == NULL)
                return "a reply needs quoteTimestamp and quoteAuthor";
            push(a, "--quote-timestamp");
            push(a, num(qt));
            push(a, "--quote-author");
            push(a, qa);
        }
        if (has_et) {
            push(a, "--edit-timestamp");
            push(a, num(et));
        }
        if (ms && !json_is_null(ms)) {
            if (!json_is_array(ms))
                return "mentions: an array of \"start:length:name\" strings";
            json_array_foreach(ms, i, x)
            {
                if (!json_is_string(x))
                    return "mentions: an array of \"start:length:name\" strings";
                push(a, "--mention");
                push(a, json_string_value(x));
            }
        }
    }
    if (grp)
        push(a, "--group");
    push(a, "--");
    push(a, grp ? grp : to);
    *n = 1;
    return NULL;
}

static const char *b_simple(argv_b *cmds, size_t *n, const char *w1, const char *w2)
{
    push(&cmds[0], w1);
    if (w2)
        push(&cmds[0], w2);
    *n = 1;
    return NULL;
}

static const char *b_list_groups(json_t *p, argv_b *c, size_t *n)
{
    (void)p;
    return b_simple(c, n, "group", "list");
}

static const char *b_list_contacts(json_t *p, argv_b *c, size_t *n)
{
    (void)p;
    return b_simple(c, n, "contacts", NULL);
}

static const char *b_list_devices(json_t *p, argv_b *c, size_t *n)
{
    (void)p;
    return b_simple(c, n, "devices", NULL);
}

static const char *b_flush(json_t *p, argv_b *c, size_t *n)
{
    (void)p;
    return b_simple(c, n, "flush", NULL);
}

static const char *b_kt_status(json_t *p, argv_b *c, size_t *n)
{
    (void)p;
    return b_simple(c, n, "kt", "status");
}

static const char *b_one_contact(json_t *p, argv_b *c, size_t *n, const char *w1, const char *w2)
{
    bool bad = false;
    const char *who = recipient_of(p, &bad);
    if (bad || who == NULL)
        return "give recipient (a string)";
    push(&c[0], w1);
    if (w2)
        push(&c[0], w2);
    push(&c[0], who);
    *n = 1;
    return NULL;
}

static const char *b_trust(json_t *p, argv_b *c, size_t *n)
{
    return b_one_contact(p, c, n, "trust", NULL);
}

static const char *b_safety(json_t *p, argv_b *c, size_t *n)
{
    return b_one_contact(p, c, n, "safety-number", "--no-qr");
}

static const char *b_device(json_t *p, argv_b *c, size_t *n, const char *cmd)
{
    bool bad = false;
    long long dev = 0;
    if (!pint(p, "deviceId", &dev, &bad) || bad || dev < 1)
        return "give deviceId (a positive integer)";
    push(&c[0], cmd);
    push(&c[0], num(dev));
    *n = 1;
    return NULL;
}

static const char *b_remove_device(json_t *p, argv_b *c, size_t *n)
{
    return b_device(p, c, n, "device-remove");
}

static const char *b_promote(json_t *p, argv_b *c, size_t *n)
{
    return b_device(p, c, n, "promote");
}

static const char *b_add_device(json_t *p, argv_b *c, size_t *n)
{
    bool bad = false;
    const char *code = pstr(p, "code", &bad);
    if (code == NULL)
        code = pstr(p, "uri", &bad);
    if (bad || code == NULL)
        return "give code (the link code of `sotto link-request`)";
    push(&c[0], "device-add");
    push(&c[0], code);
    *n = 1;
    return NULL;
}

static const char *b_history(json_t *p, argv_b *c, size_t *n)
{
    bool bad = false;
    const char *who = recipient_of(p, &bad), *grp = pstr(p, "groupId", &bad);
    long long limit = 0;
    bool has_limit = pint(p, "limit", &limit, &bad);
    if (bad || (who == NULL) == (grp == NULL))
        return "give recipient or groupId (strings), and optionally limit";
    push(&c[0], "history");
    if (has_limit) {
        push(&c[0], "--limit");
        push(&c[0], num(limit));
    }
    if (grp)
        push(&c[0], "--group");
    push(&c[0], grp ? grp : who);
    *n = 1;
    return NULL;
}

/* updateGroup (signal-cli): no groupId creates the group (name, members);
 * else rename (name), add (members), remove (removeMembers), in order. */
static const char *b_update_group(json_t *p, argv_b *c, size_t *n)
{
    bool bad = false;
    const char *grp = pstr(p, "groupId", &bad), *name = pstr(p, "name", &bad);
    size_t k = 0, cnt = 0;

    if (bad)
        return "groupId and name are strings";
    if (grp == NULL) {
        if (name == NULL)
            return "give name to create a group, or groupId to change one";
        push(&c[0], "group");
        push(&c[0], "create");
        push(&c[0], "--");
        push(&c[0], name);
        if (!pstrings(p, "members", &c[0], &cnt))
            return "members: a string or an array of strings";
        if (json_object_get(p, "removeMembers"))
            return "removeMembers needs groupId";
        if (json_object_get(p, "expiration"))
            return "expiration needs groupId";
        *n = 1;
        return NULL;
    }
    if (name) {
        push(&c[k], "group");
        push(&c[k], "rename");
        push(&c[k], "--");
        push(&c[k], grp);
        push(&c[k], name);
        k++;
    }
    const char *lists[2][2] = {{"members", "add"}, {"removeMembers", "remove"}};
    for (int i = 0; i < 2; i++) {
        argv_b tmp;
        memset(&tmp, 0, sizeof tmp);
        if (!pstrings(p, lists[i][0], &tmp, &cnt)) {
            argv_free(&tmp);
            return "members and removeMembers: a string or an array of strings";
        }
        if (cnt > 0) {
            push(&c[k], "group");
            push(&c[k], lists[i][1]);
            push(&c[k], "--");
            push(&c[k], grp);
            for (int j = 0; j < tmp.n; j++)
                push(&c[k], tmp.v[j]);
            k++;
        }
        argv_free(&tmp);
    }
    /* admins (signal-cli's names): one `group admin add|remove` per member */
    const char *admin_lists[2][2] = {{"admin", "add"}, {"removeAdmin", "remove"}};
    for (int i = 0; i < 2; i++) {
        argv_b tmp;
        memset(&tmp, 0, sizeof tmp);
        if (!pstrings(p, admin_lists[i][0], &tmp, &cnt)) {
            argv_free(&tmp);
            return "admin and removeAdmin: a string or an array of strings";
        }
        for (int j = 0; j < tmp.n; j++) {
            if (k >= MAX_CMDS) {
                argv_free(&tmp);
                return "too many changes in one updateGroup call";
            }
            push(&c[k], "group");
            push(&c[k], "admin");
            push(&c[k], admin_lists[i][1]);
            push(&c[k], "--");
            push(&c[k], grp);
            push(&c[k], tmp.v[j]);
            k++;
        }
        argv_free(&tmp);
    }
    /* issue 11: the disappearing-message timer, seconds (0: off) */
    json_t *exp = json_object_get(p, "expiration");
    if (exp != NULL) {
        long long secs = 0;
        if (!pint(p, "expiration", &secs, &bad) || bad)
            return "expiration is a number of seconds (0: off)";
        if (k >= MAX_CMDS)
            return "too many changes in one updateGroup call";
        push(&c[k], "timer");
        push(&c[k], "--group");
        push(&c[k], "--");
        push(&c[k], grp);
        push(&c[k], num(secs));
        k++;
    }
    json_t *open = json_object_get(p, "open");
    if (open != NULL) {
        if (!json_is_boolean(open))
            return "open is true or false";
        if (k >= MAX_CMDS)
            return "too many changes in one updateGroup call";
        push(&c[k], "group");
        push(&c[k], json_is_true(open) ? "open" : "close");
        push(&c[k], "--");
        push(&c[k], grp);
        k++;
    }
    if (k == 0)
        return "nothing to change: give name, members, removeMembers, admin, removeAdmin, open"
               " or expiration";
    *n = k;
    return NULL;
}

static const char *b_quit_group(json_t *p, argv_b *c, size_t *n)
{
    bool bad = false;
    const char *grp = pstr(p, "groupId", &bad);
    if (bad || grp == NULL)
        return "give groupId";
    push(&c[0], "group");
    push(&c[0], "leave");
    push(&c[0], "--");
    push(&c[0], grp);
    *n = 1;
    return NULL;
}

static const char *b_backup(json_t *p, argv_b *c, size_t *n)
{
    bool bad = false;
    const char *file = pstr(p, "file", &bad);
    bool hist = pbool(p, "history", &bad);
    if (bad || file == NULL || file[0] != '/')
        return "give file (an absolute path) and optionally history (boolean)";
    push(&c[0], "backup");
    push(&c[0], "create");
    push(&c[0], file);
    if (hist)
        push(&c[0], "--history");
    *n = 1;
    return NULL;
}

static const char *b_kt_check(json_t *p, argv_b *c, size_t *n)
{
    bool bad = false;
    const char *user = pstr(p, "user", &bad);
    if (bad)
        return "user is a string";
    push(&c[0], "kt");
    push(&c[0], "check");
    if (user)
        push(&c[0], user);
    *n = 1;
    return NULL;
}

static const char *b_kt_auditor(json_t *p, argv_b *c, size_t *n)
{
    bool bad = false;
    const char *action = pstr(p, "action", &bad), *key = pstr(p, "key", &bad);
    if (bad || action == NULL)
        return "give action (add, remove, list) and key";
    push(&c[0], "kt");
    push(&c[0], "auditor");
    push(&c[0], action);
    if (key)
        push(&c[0], key);
    *n = 1;
    return NULL;
}

static const char *b_kt_max_age(json_t *p, argv_b *c, size_t *n)
{
    bool bad = false;
    long long s = 0;
    bool has = pint(p, "seconds", &s, &bad);
    if (bad)
        return "seconds is a non-negative integer";
    push(&c[0], "kt");
    push(&c[0], "max-age");
    if (has)
        push(&c[0], num(s));
    *n = 1;
    return NULL;
}

/* ---- issue 11: msgops ---- */
/* recipient or groupId: "--group G" or "CONTACT" (after the options) */
static const char *msgops_conv(json_t *p, argv_b *a, bool *bad)
{
    const char *to = recipient_of(p, bad), *grp = pstr(p, "groupId", bad);
    if (*bad || (to == NULL) == (grp == NULL))
        return "give recipient or groupId (strings)";
    if (grp) {
        push(a, "--group");
        push(a, grp);
    } else {
        push(a, "--");
        push(a, to);
    }
    return NULL;
}

/* sendReaction {recipient | groupId, emoji, targetAuthor, targetTimestamp,
 * remove} */
static const char *b_send_reaction(json_t *p, argv_b *c, size_t *n)
{
    bool bad = false;
    const char *emoji = pstr(p, "emoji", &bad), *ta = pstr(p, "targetAuthor", &bad), *err;
    long long tt = 0;
    bool has_tt = pint(p, "targetTimestamp", &tt, &bad);
    bool remove = pbool(p, "remove", &bad);
    if (bad || ta == NULL || !has_tt || (emoji == NULL && !remove))
        return "give emoji, targetAuthor (strings), targetTimestamp (integer), and optionally"
               " remove (boolean)";
    push(&c[0], "react");
    push(&c[0], "--target-author");
    push(&c[0], ta);
    push(&c[0], "--target-timestamp");
    push(&c[0], num(tt));
    if (remove)
        push(&c[0], "--remove");
    if (json_object_get(p, "groupId") && !json_is_null(json_object_get(p, "groupId"))) {
        err = msgops_conv(p, &c[0], &bad);
        if (err)
            return err;
        if (emoji) {
            push(&c[0], "--");
            push(&c[0], emoji);
        }
    } else {
        const char *to = recipient_of(p, &bad);
        if (bad || to == NULL)
            return "give recipient or groupId (strings)";
        push(&c[0], "--");
        push(&c[0], to);
        if (emoji)
            push(&c[0], emoji);
    }
    *n = 1;
    return NULL;
}

/* remoteDelete {recipient | groupId, targetTimestamp} */
static const char *b_remote_delete(json_t *p, argv_b *c, size_t *n)
{
    bool bad = false;
    long long tt = 0;
    bool has_tt = pint(p, "targetTimestamp", &tt, &bad);
    const char *err;
    if (bad || !has_tt)
        return "give targetTimestamp (integer) and recipient or groupId";
    push(&c[0], "delete");
    push(&c[0], "--target-timestamp");
    push(&c[0], num(tt));
    err = msgops_conv(p, &c[0], &bad);
    if (err)
        return err;
    *n = 1;
    return NULL;
}

/* listEdits {recipient | groupId, targetTimestamp, targetAuthor} */
static const char *b_list_edits(json_t *p, argv_b *c, size_t *n)
{
    bool bad = false;
    long long tt = 0;
    bool has_tt = pint(p, "targetTimestamp", &tt, &bad);
    const char *ta = pstr(p, "targetAuthor", &bad), *err;
    if (bad || !has_tt)
        return "give targetTimestamp (integer), recipient or groupId, and optionally"
               " targetAuthor (string)";
    push(&c[0], "edits");
    if (ta) {
        push(&c[0], "--author");
        push(&c[0], ta);
    }
    err = msgops_conv(p, &c[0], &bad);
    if (err)
        return err;
    push(&c[0], num(tt));
    *n = 1;
    return NULL;
}

/* cli {argv: [COMMAND, ARGS...], json, stdin, tty}: the forwarding CLI */
static const char *b_cli(json_t *p, argv_b *c, size_t *n)
{
    json_t *v = json_object_get(p, "argv"), *x;
    size_t i;
    bool bad = false;
    if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) >= MAX_ARGV - 1)
        return "argv: a non-empty array of strings";
    json_array_foreach(v, i, x)
    {
        if (!json_is_string(x))
            return "argv: a non-empty array of strings";
        push(&c[0], json_string_value(x));
    }
    (void)pbool(p, "json", &bad);
    (void)pstr(p, "stdin", &bad);
    if (bad)
        return "json is a boolean, stdin a string";
    *n = 1;
    return NULL;
}

/* ---- issue 11: receipts, read state, typing, settings (docs/rpc.md) ---- */

/* recipient | groupId, then the timestamps of `key` (integers or digit
 * strings) after `read`: sendReceipt (recipient, targetTimestamps, type
 * read|viewed) and markRead (recipient | groupId, timestamps). */
static const char *b_read_common(json_t *p, argv_b *c, size_t *n, const char *key, bool need_ts)
{
    bool bad = false;
    const char *to = recipient_of(p, &bad), *grp = pstr(p, "groupId", &bad);
    json_t *ts = json_object_get(p, key), *x;
    size_t i;

    if (bad || (to == NULL) == (grp == NULL))
        return "give recipient or groupId (strings)";
    if (ts != NULL && !json_is_null(ts) && !json_is_array(ts))
        ts = json_pack("[O]", ts);
    else
        json_incref(ts);
    if (need_ts && (!json_is_array(ts) || json_array_size(ts) == 0)) {
        json_decref(ts);
        return "targetTimestamps: a non-empty array of timestamps";
    }
    push(&c[0], "read");
    if (grp)
        push(&c[0], "--group");
    push(&c[0], "--");
    push(&c[0], grp ? grp : to);
    json_array_foreach(ts, i, x)
    {
        json_t *one = json_pack("{sO}", "t", x);
        long long v = 0;
        bool b2 = false;
        bool ok = one && pint(one, "t", &v, &b2) && !b2 && v > 0;
        json_decref(one);
        if (!ok) {
            json_decref(ts);
            return "timestamps are positive integers";
        }
        push(&c[0], num(v));
    }
    json_decref(ts);
    *n = 1;
    return NULL;
}

static const char *b_send_receipt(json_t *p, argv_b *c, size_t *n)
{
    bool bad = false;
    const char *type = pstr(p, "type", &bad);
    if (bad || (type && strcmp(type, "read") != 0 && strcmp(type, "viewed") != 0))
        return "type: \"read\" or \"viewed\" (delivery receipts are sent automatically)";
    if (json_object_get(p, "groupId"))
        return "sendReceipt takes recipient (use markRead for a group)";
    /* signal-cli names it targetTimestamp (a list); Sotto's docs targetTimestamps */
    return b_read_common(
        p, c, n, json_object_get(p, "targetTimestamps") ? "targetTimestamps" : "targetTimestamp",
        true);
}

static const char *b_mark_read(json_t *p, argv_b *c, size_t *n)
{
    return b_read_common(p, c, n, "timestamps", false);
}

static const char *b_send_typing(json_t *p, argv_b *c, size_t *n)
{
    bool bad = false;
    const char *to = recipient_of(p, &bad), *grp = pstr(p, "groupId", &bad);
    bool stop = pbool(p, "stop", &bad);
    if (bad || (to == NULL) == (grp == NULL))
        return "give recipient or groupId (strings), and optionally stop (boolean)";
    push(&c[0], "typing");
    if (stop)
        push(&c[0], "--stop");
    if (grp)
        push(&c[0], "--group");
    push(&c[0], "--");
    push(&c[0], grp ? grp : to);
    *n = 1;
    return NULL;
}

static const char *b_message_receipts(json_t *p, argv_b *c, size_t *n)
{
    bool bad = false;
    const char *to = recipient_of(p, &bad), *grp = pstr(p, "groupId", &bad);
    long long ts = 0;
    if (!pint(p, "timestamp", &ts, &bad) || bad || ts <= 0 || (to == NULL) == (grp == NULL))
        return "give recipient or groupId (strings) and timestamp";
    push(&c[0], "receipts");
    if (grp)
        push(&c[0], "--group");
    push(&c[0], "--");
    push(&c[0], grp ? grp : to);
    push(&c[0], num(ts));
    *n = 1;
    return NULL;
}

/* updateConfiguration (signal-cli): readReceipts, typingIndicators; and
 * sealed (ours: `config sealed on|off`, this device only); the result is
 * the settings after the change */
static const char *b_update_config(json_t *p, argv_b *c, size_t *n)
{
    bool bad = false;
    json_t *rr = json_object_get(p, "readReceipts"), *ti = json_object_get(p, "typingIndicators");
    json_t *se = json_object_get(p, "sealed");
    bool r = pbool(p, "readReceipts", &bad), t = pbool(p, "typingIndicators", &bad);
    bool sl = pbool(p, "sealed", &bad);
    size_t k = 0;
    if (bad)
        return "readReceipts, typingIndicators and sealed are booleans";
    if (rr && !json_is_null(rr)) {
        push(&c[k], "config");
        push(&c[k], "read-receipts");
        push(&c[k], r ? "on" : "off");
        k++;
    }
    if (ti && !json_is_null(ti)) {
        push(&c[k], "config");
        push(&c[k], "typing");
        push(&c[k], t ? "on" : "off");
        k++;
    }
    if (se && !json_is_null(se)) {
        push(&c[k], "config");
        push(&c[k], "sealed");
        push(&c[k], sl ? "on" : "off");
        k++;
    }
    if (k == 0)
        push(&c[k++], "config");
    *n = k;
    return NULL;
}

static const char *b_get_config(json_t *p, argv_b *c, size_t *n)
{
    (void)p;
    return b_simple(c, n, "config", NULL);
}

/* ---- issue 11: message requests and blocking (docs/rpc.md) ---- */

static const char *b_block_cmd(json_t *p, argv_b *c, size_t *n, const char *cmd)
{
    size_t count = 0;
    push(&c[0], cmd);
    if (!pstrings(p, "recipient", &c[0], &count))
        return "recipient: a string or an array of strings";
    if (count == 0)
        return "give recipient (a name or a list of names)";
    *n = 1;
    return NULL;
}

static const char *b_block(json_t *p, argv_b *c, size_t *n)
{
    return b_block_cmd(p, c, n, "block");
}

static const char *b_unblock(json_t *p, argv_b *c, size_t *n)
{
    return b_block_cmd(p, c, n, "unblock");
}

static const char *b_list_blocked(json_t *p, argv_b *c, size_t *n)
{
    (void)p;
    return b_simple(c, n, "blocked", NULL);
}

static const char *b_list_requests(json_t *p, argv_b *c, size_t *n)
{
    (void)p;
    return b_simple(c, n, "requests", NULL);
}

/* signal-cli's sendMessageRequestResponse: type accept | delete | block */
static const char *b_request_response(json_t *p, argv_b *c, size_t *n)
{
    bool bad = false;
    const char *to = recipient_of(p, &bad), *grp = pstr(p, "groupId", &bad);
    const char *type = pstr(p, "type", &bad);
    argv_b *a = &c[0];

    if (bad)
        return "recipient, groupId and type are strings";
    if ((to == NULL) == (grp == NULL))
        return "give recipient or groupId";
    if (type == NULL)
        return "give type (accept, delete or block)";
    if (strcmp(type, "accept") == 0) {
        push(a, "accept");
    } else if (strcmp(type, "delete") == 0) {
        push(a, "request");
        push(a, "delete");
    } else if (strcmp(type, "block") == 0) {
        if (grp)
            return "type block takes a recipient (groups cannot be blocked)";
        push(a, "block");
    } else {
        return "type: accept, delete or block";
    }
    if (grp)
        push(a, "--group");
    push(a, grp ? grp : to);
    *n = 1;
    return NULL;
}

/* issue 11: expire. updateContact (signal-cli): recipient, expiration
 * (the disappearing-message timer in seconds, 0: off); no other change. */
static const char *b_update_contact(json_t *p, argv_b *c, size_t *n)
{
    bool bad = false;
    const char *to = recipient_of(p, &bad);
    long long secs = 0;

    if (bad || to == NULL)
        return "give recipient (a string)";
    if (!pint(p, "expiration", &secs, &bad) || bad)
        return "give expiration: the timer in seconds (0: off)";
    push(&c[0], "timer");
    push(&c[0], "--");
    push(&c[0], to);
    push(&c[0], num(secs));
    *n = 1;
    return NULL;
}

static json_t *m_subscribe(dm_account *a, dm_call *call, int *code, char *msg, size_t cap);
static json_t *m_unsubscribe(dm_account *a, dm_call *call, int *code, char *msg, size_t cap);
static json_t *m_ack(dm_account *a, dm_call *call, int *code, char *msg, size_t cap);

/* ---- issue 11: profiles (signal-cli updateProfile; getProfile) ---- */
static const char *b_update_profile(json_t *p, argv_b *c, size_t *n)
{
    bool bad = false;
    const char *name = pstr(p, "name", &bad), *given = pstr(p, "givenName", &bad),
               *family = pstr(p, "familyName", &bad), *avatar = pstr(p, "avatar", &bad);
    static char full[300];
    if (bad)
        return "name, givenName, familyName and avatar are strings";
    if (name == NULL && given != NULL) {
        /* signal-cli: given and family name; shown as one display name */
        snprintf(full, sizeof full, "%s%s%s", given, family ? " " : "", family ? family : "");
        name = full;
    }
    if (name == NULL && avatar == NULL)
        return "give name (or givenName) and/or avatar";
    push(&c[0], "profile");
    push(&c[0], "set");
    if (name) {
        push(&c[0], "--name");
        push(&c[0], name);
    }
    if (avatar) {
        push(&c[0], "--avatar");
        push(&c[0], avatar);
    }
    *n = 1;
    return NULL;
}

static const char *b_get_profile(json_t *p, argv_b *c, size_t *n)
{
    bool bad = false;
    const char *who = recipient_of(p, &bad);
    bool local = pbool(p, "local", &bad);
    if (bad)
        return "recipient is a string; local a boolean";
    push(&c[0], "profile");
    push(&c[0], "show");
    if (local)
        push(&c[0], "--local");
    if (who)
        push(&c[0], who);
    *n = 1;
    return NULL;
}

/* issue 12: a new profile key (cuts off every holder of the old one) */
static const char *b_rotate_profile_key(json_t *p, argv_b *c, size_t *n)
{
    (void)p;
    return b_simple(c, n, "profile", "rotate-key");
}

static const dm_method methods[] = {
    {"send", b_send, R_OBJECT, NULL, false},
    {"listGroups", b_list_groups, R_LIST, NULL, false},
    {"updateGroup", b_update_group, R_OBJECT, NULL, false},
    {"quitGroup", b_quit_group, R_OBJECT, NULL, false},
    {"listContacts", b_list_contacts, R_LIST, NULL, false},
    {"listIdentities", b_list_contacts, R_LIST, NULL, false},
    {"trust", b_trust, R_LIST, NULL, false},
    {"safetyNumber", b_safety, R_OBJECT, NULL, false},
    {"listDevices", b_list_devices, R_LIST, NULL, false},
    {"addDevice", b_add_device, R_OBJECT, NULL, false},
    {"removeDevice", b_remove_device, R_OBJECT, NULL, false},
    {"promoteDevice", b_promote, R_OBJECT, NULL, false},
    {"history", b_history, R_LIST, NULL, false},
    {"flush", b_flush, R_OBJECT, NULL, false},
    {"backupCreate", b_backup, R_OBJECT, NULL, false},
    {"ktStatus", b_kt_status, R_OBJECT, NULL, false},
    {"ktCheck", b_kt_check, R_OBJECT, NULL, false},
    {"ktAuditor", b_kt_auditor, R_OBJECT, NULL, false},
    {"ktMaxAge", b_kt_max_age, R_OBJECT, NULL, false},
    {"updateProfile", b_update_profile, R_OBJECT, NULL, false},
    {"getProfile", b_get_profile, R_OBJECT, NULL, false},
    {"rotateProfileKey", b_rotate_profile_key, R_OBJECT, NULL, false},
    {"sendReaction", b_send_reaction, R_OBJECT, NULL, false},
    {"remoteDelete", b_remote_delete, R_OBJECT, NULL, false},
    {"listEdits", b_list_edits, R_LIST, NULL, false},
    {"updateContact", b_update_contact, R_OBJECT, NULL, false},
    {"block", b_block, R_OBJECT, NULL, false},
    {"unblock", b_unblock, R_OBJECT, NULL, false},
    {"listBlocked", b_list_blocked, R_LIST, NULL, false},
    {"listRequests", b_list_requests, R_LIST, NULL, false},
    {"sendMessageRequestResponse", b_request_response, R_OBJECT, NULL, false},
    {"sendReceipt", b_send_receipt, R_OBJECT, NULL, false},
    {"markRead", b_mark_read, R_OBJECT, NULL, false},
    {"sendTyping", b_send_typing, R_OBJECT, NULL, false},
    {"messageReceipts", b_message_receipts, R_OBJECT, NULL, false},
    {"updateConfiguration", b_update_config, R_OBJECT, NULL, false},
    {"getConfiguration", b_get_config, R_OBJECT, NULL, false},
    {"subscribeReceive", NULL, R_OBJECT, m_subscribe, false},
    {"unsubscribeReceive", NULL, R_OBJECT, m_unsubscribe, false},
    {"ack", NULL, R_OBJECT, m_ack, false},
    {"cli", b_cli, R_OBJECT, NULL, false},
    {"listAccounts", NULL, R_LIST, NULL, true},
    {"version", NULL, R_OBJECT, NULL, true},
};

static const dm_method *find_method(const char *name)
{
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (strcmp(methods[i].name, name) == 0)
            return &methods[i];
    return NULL;
}

/* ------------------------------------------------------------ running a command */

/* Runs one CLI command with --json (or as the cli method asks) and
 * captures its output. Returns the exit code; *out / *err malloc()ed. */
static int run_captured(dm_account *a, argv_b *cmd, bool json, const char *in_text, bool tty,
                        char **out, size_t *out_len, char **err, size_t *err_len)
{
    sotto_cli_io io;
    char *args[MAX_ARGV];
    FILE *in;
    int rc;

    memset(&io, 0, sizeof io);
    *out = *err = NULL;
    *out_len = *err_len = 0;
    in = in_text ? fmemopen((void *)in_text, strlen(in_text), "r") : fopen("/dev/null", "r");
    io.out = open_memstream(out, out_len);
    io.err = open_memstream(err, err_len);
    if (in == NULL || io.out == NULL || io.err == NULL) {
        if (in)
            fclose(in);
        if (io.out)
            fclose(io.out);
        if (io.err)
            fclose(io.err);
        return 1;
    }
    io.in = in;
    io.out_tty = io.err_tty = tty;
    /* the handlers may reorder their argv (drop_dashdash): a copy, so
     * that cmd keeps owning each string once */
    memcpy(args, cmd->v, (size_t)cmd->n * sizeof *args);
    args[cmd->n] = NULL;
    rc = sotto_cli_run(a->c, json, cmd->n, args, &io);
    fclose(in);
    fclose(io.out);
    fclose(io.err);
    return rc;
}

/* The JSON lines of a --json run: every object, in order. */
static json_t *lines_of(const char *s, size_t len)
{
    json_t *arr = json_array();
    size_t i = 0;
    while (i < len) {
        size_t e = i;
        while (e < len && s[e] != '\n')
            e++;
        if (e > i) {
            json_t *o = json_loadb(s + i, e - i, 0, NULL);
            if (o)
                json_array_append_new(arr, o);
        }
        i = e + 1;
    }
    return arr;
}

/* A failed command as a JSON-RPC error: code = exit code; data = the
 * CLI's {"type":"error"} line (code, exit, message). */
static json_t *command_error(int exit_code, json_t *lines, const char *err_text)
{
    json_t *data = NULL, *v;
    size_t i;
    const char *msg = NULL;
    json_array_foreach(lines, i, v)
    {
        const char *t = json_string_value(json_object_get(v, "type"));
        if (t && strcmp(t, "error") == 0) {
            data = json_deep_copy(v);
            msg = json_string_value(json_object_get(v, "message"));
        }
    }
    if (data == NULL) {
        data = json_object();
        json_object_set_new(data, "exit", json_integer(exit_code));
        json_object_set_new(data, "message", json_string(err_text ? err_text : ""));
    }
    json_object_del(data, "type");
    /* what the command printed before failing (a group's state, ...) */
    json_t *out = json_array();
    json_array_foreach(lines, i, v)
    {
        const char *t = json_string_value(json_object_get(v, "type"));
        if (!(t && strcmp(t, "error") == 0))
            json_array_append(out, v);
    }
    if (json_array_size(out) > 0)
        json_object_set_new(data, "output", out);
    else
        json_decref(out);
    return error_obj(exit_code, msg ? msg : (err_text && err_text[0] ? err_text : "failed"), data);
}

static json_t *valid_utf8_string(const char *s, size_t len)
{
    if (s == NULL)
        return json_string("");
    if (sc_utf8_valid(s, len))
        return json_stringn(s, len);
    /* not UTF-8 (should not happen: texts are checked): replaced bytes */
    char *copy = malloc(len + 1);
    if (copy == NULL)
        return json_string("");
    for (size_t i = 0; i < len; i++)
        copy[i] = ((unsigned char)s[i] < 0x80 && s[i] != 0) ? s[i] : '?';
    json_t *r = json_stringn(copy, len);
    free(copy);
    return r;
}

static void run_call(dm_account *a, dm_call *call)
{
    json_t *result = NULL, *error = NULL;

    if (call->m->special) {
        int code = 0;
        char msg[256] = "";
        result = call->m->special(a, call, &code, msg, sizeof msg);
        if (result == NULL)
            error = error_obj(code ? code : RPC_INTERNAL_ERROR, msg, NULL);
    } else if (strcmp(call->m->name, "cli") == 0) {
        bool bad = false, json = pbool(call->params, "json", &bad);
        const char *in = pstr(call->params, "stdin", &bad);
        bool tty = pbool(call->params, "tty", &bad);
        char *out, *err;
        size_t ol, el;
        int rc = run_captured(a, &call->cmds[0], json, in, tty, &out, &ol, &err, &el);
        result = json_object();
        json_object_set_new(result, "exit", json_integer(rc));
        json_object_set_new(result, "stdout", valid_utf8_string(out, ol));
        json_object_set_new(result, "stderr", valid_utf8_string(err, el));
        free(out);
        free(err);
    } else {
        json_t *all = json_array();
        for (size_t k = 0; k < call->n_cmds && error == NULL; k++) {
            char *out, *err;
            size_t ol, el;
            int rc = run_captured(a, &call->cmds[k], true, NULL, false, &out, &ol, &err, &el);
            json_t *lines = lines_of(out, ol);
            if (rc != 0) {
                error = command_error(rc, lines, err);
            } else {
                json_array_extend(all, lines);
            }
            json_decref(lines);
            free(out);
            free(err);
        }
        if (error == NULL) {
            if (call->m->shape == R_LIST) {
                result = json_incref(all);
            } else {
                size_t n = json_array_size(all);
                result = n ? json_incref(json_array_get(all, n - 1)) : json_object();
            }
        }
        json_decref(all);
    }
    if (call->id) {
        batch_done(a->d, call->batch, call->idx, response(call->id, result, error));
    } else {
        json_decref(result);
        json_decref(error);
        batch_done(a->d, call->batch, call->idx, NULL);
    }
}

static void call_free(dm_call *call)
{
    for (size_t k = 0; k < MAX_CMDS; k++)
        argv_free(&call->cmds[k]);
    json_decref(call->id);
    json_decref(call->params);
    free(call);
}

/* ------------------------------------------------------------ events */

typedef struct emit_ctx {
    dm_account *a;
    uint64_t conn; /* 0: every subscriber */
    const char *sub_name;
} emit_ctx;

static void send_event(dm_account *a, uint64_t conn, const char *sub, int64_t id, const char *ev)
{
    json_t *evo = json_loads(ev, 0, NULL), *n, *p;
    if (evo == NULL)
        return;
    n = json_object();
    p = json_object();
    json_object_set_new(n, "jsonrpc", json_string("2.0"));
    json_object_set_new(n, "method", json_string("receive"));
    json_object_set_new(p, "account", json_string(a->name));
    json_object_set_new(p, "subscriber", json_string(sub));
    json_object_set_new(p, "event_id", id > 0 ? json_integer(id) : json_null());
    json_object_set_new(p, "event", evo);
    json_object_set_new(n, "params", p);
    queue_json(a->d, conn, n);
    json_decref(n);
}

static void drop_closed_subs(dm_account *a);

/* Live events from sc_receive (and trust's released messages): to every
 * subscriber of the account. Subscribers that were away get them from
 * the store when they subscribe again (unacknowledged). */
static void on_event(void *ud, const sc_event *ev)
{
    emit_ctx *x = ud;
    dm_account *a = x->a;
    char *js;

    /* events that are not stored (typing indicators, id 0) go live to the
     * subscribers connected now, with "event_id": null (nothing to ack) */
    if (ev->id < 0 || (ev->id == 0 && ev->kind != SC_EV_TYPING))
        return;
    drop_closed_subs(a);
    if (a->subs == NULL && x->conn == 0)
        return;
    js = sotto_cli_event_json(a->c, ev);
    if (js == NULL)
        return;
    for (dm_sub *s = a->subs; s; s = s->next) {
        if (x->conn && (s->conn != x->conn || strcmp(s->name, x->sub_name) != 0))
            continue;
        send_event(a, s->conn, s->name, ev->id, js);
    }
    free(js);
}

static const char *sub_name_of(dm_call *call, bool *bad)
{
    const char *s = pstr(call->params, "subscriber", bad);
    if (s == NULL)
        s = DEFAULT_SUBSCRIBER;
    if (strlen(s) == 0 || strlen(s) > 128)
        *bad = true;
    return s;
}

static json_t *m_subscribe(dm_account *a, dm_call *call, int *code, char *msg, size_t cap)
{
    bool bad = false;
    const char *name = sub_name_of(call, &bad);
    int64_t upto = 0;
    size_t redelivered = 0;
    emit_ctx x = {a, call->conn, name};
    dm_sub *s;
    json_t *r;

    if (bad) {
        *code = RPC_INVALID_PARAMS;
        snprintf(msg, cap, "subscriber: a string of 1 to 128 bytes");
        return NULL;
    }
    drop_closed_subs(a);
    for (s = a->subs; s; s = s->next)
        if (s->conn == call->conn && strcmp(s->name, name) == 0)
            break;
    if (s == NULL) {
        s = calloc(1, sizeof *s);
        if (s == NULL || (s->name = strdup(name)) == NULL) {
            free(s);
            *code = RPC_INTERNAL_ERROR;
            snprintf(msg, cap, "out of memory");
            return NULL;
        }
        s->conn = call->conn;
        s->next = a->subs;
        a->subs = s;
    }
    /* what this subscriber has not acknowledged, oldest first, before any
     * new event: the worker emits both, so nothing falls in between */
    if (sc_subscriber_open(a->c, name, a->start_row, &upto) != SC_OK ||
        sc_subscriber_unacked(a->c, name, on_event, &x, &redelivered) != SC_OK) {
        *code = 1;
        snprintf(msg, cap, "%s", sc_errmsg(a->c));
        return NULL;
    }
    r = json_object();
    json_object_set_new(r, "account", json_string(a->name));
    json_object_set_new(r, "subscriber", json_string(name));
    json_object_set_new(r, "acked_up_to", json_integer(upto));
    json_object_set_new(r, "redelivered", json_integer((json_int_t)redelivered));
    return r;
}

static json_t *m_unsubscribe(dm_account *a, dm_call *call, int *code, char *msg, size_t cap)
{
    bool bad = false;
    const char *name = sub_name_of(call, &bad);
    dm_sub **pp = &a->subs;
    bool found = false;

    if (bad) {
        *code = RPC_INVALID_PARAMS;
        snprintf(msg, cap, "subscriber: a string of 1 to 128 bytes");
        return NULL;
    }
    while (*pp) {
        dm_sub *s = *pp;
        if (s->conn == call->conn && strcmp(s->name, name) == 0) {
            *pp = s->next;
            free(s->name);
            free(s);
            found = true;
        } else {
            pp = &s->next;
        }
    }
    json_t *r = json_object();
    json_object_set_new(r, "subscriber", json_string(name));
    json_object_set_new(r, "was_subscribed", json_boolean(found));
    return r;
}

static json_t *m_ack(dm_account *a, dm_call *call, int *code, char *msg, size_t cap)
{
    bool bad = false;
    const char *name = sub_name_of(call, &bad);
    json_t *ids = json_object_get(call->params, "eventIds"), *v;
    long long upto = 0;
    bool has_upto = pint(call->params, "upTo", &upto, &bad);
    int64_t *list = NULL, now_upto = 0;
    size_t n = 0, i;
    int rc;

    if (ids && !json_is_array(ids))
        bad = true;
    if (bad || (ids == NULL && !has_upto)) {
        *code = RPC_INVALID_PARAMS;
        snprintf(msg, cap, "give eventIds (an array of event ids) and/or upTo (an event id)");
        return NULL;
    }
    if (ids) {
        list = calloc(json_array_size(ids) + 1, sizeof *list);
        if (list == NULL) {
            *code = RPC_INTERNAL_ERROR;
            snprintf(msg, cap, "out of memory");
            return NULL;
        }
        json_array_foreach(ids, i, v)
        {
            if (!json_is_integer(v) || json_integer_value(v) <= 0) {
                free(list);
                *code = RPC_INVALID_PARAMS;
                snprintf(msg, cap, "eventIds: positive integers");
                return NULL;
            }
            list[n++] = json_integer_value(v);
        }
    }
    /* an id newer than the newest stored event would acknowledge events
     * before they exist: they would never be redelivered */
    int64_t newest = 0, beyond = has_upto ? (int64_t)upto : 0;
    for (i = 0; i < n; i++)
        if (list[i] > beyond)
            beyond = list[i];
    if (sc_history_max_id(a->c, &newest) != SC_OK) {
        free(list);
        *code = 1;
        snprintf(msg, cap, "%s", sc_errmsg(a->c));
        return NULL;
    }
    if (beyond > newest) {
        free(list);
        *code = RPC_INVALID_PARAMS;
        snprintf(msg, cap, "event %lld does not exist yet (the newest is %lld)", (long long)beyond,
                 (long long)newest);
        return NULL;
    }
    rc = sc_subscriber_ack(a->c, name, list, n, has_upto ? (int64_t)upto : 0, &now_upto);
    free(list);
    if (rc != SC_OK) {
        *code = rc == SC_E_NOT_FOUND ? RPC_INVALID_PARAMS : 1;
        snprintf(msg, cap, "%s", sc_errmsg(a->c));
        return NULL;
    }
    json_t *r = json_object();
    json_object_set_new(r, "subscriber", json_string(name));
    json_object_set_new(r, "acked_up_to", json_integer(now_upto));
    return r;
}

static void drop_closed_subs(dm_account *a)
{
    dm_daemon *d = a->d;
    pthread_mutex_lock(&d->mu);
    if (d->n_closed > 0) {
        dm_sub **pp = &a->subs;
        while (*pp) {
            dm_sub *s = *pp;
            bool gone = false;
            for (size_t i = 0; i < d->n_closed; i++)
                if (d->closed[i] == s->conn)
                    gone = true;
            if (gone) {
                *pp = s->next;
                free(s->name);
                free(s);
            } else {
                pp = &s->next;
            }
        }
    }
    pthread_mutex_unlock(&d->mu);
}

void dm_conn_closed(dm_daemon *d, uint64_t conn)
{
    pthread_mutex_lock(&d->mu);
    uint64_t *n = realloc(d->closed, (d->n_closed + 1) * sizeof *n);
    if (n) {
        d->closed = n;
        d->closed[d->n_closed++] = conn;
    }
    pthread_mutex_unlock(&d->mu);
}

/* ------------------------------------------------------------ workers */

static dm_call *take_calls(dm_account *a)
{
    dm_call *list;
    pthread_mutex_lock(&a->d->mu);
    list = a->head;
    a->head = a->tail = NULL;
    pthread_mutex_unlock(&a->d->mu);
    return list;
}

static void run_queued(dm_account *a)
{
    dm_call *list;
    while ((list = take_calls(a)) != NULL) {
        while (list) {
            dm_call *next = list->next;
            run_call(a, list);
            call_free(list);
            list = next;
        }
    }
}

/* sc_set_wake: a call is queued (or the daemon stops) */
static void worker_wake(void *ud, sc_client *c)
{
    dm_account *a = ud;
    (void)c;
    if (!a->d->shutdown)
        __atomic_store_n(&a->wake, 0, __ATOMIC_SEQ_CST);
    run_queued(a);
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void *worker_main(void *arg)
{
    dm_account *a = arg;
    emit_ctx x = {a, 0, NULL};
    unsigned backoff = 1000;

    sc_set_wake(a->c, worker_wake, a);
    while (!a->d->shutdown) {
        int rc = sc_receive(a->c, true, &a->wake, on_event, &x);
        if (a->d->shutdown)
            break;
        if (rc != SC_OK) {
            fprintf(stderr, "sotto daemon: %s: %s (trying again in %u s)\n", a->name,
                    sc_errmsg(a->c), backoff / 1000);
            for (unsigned w = 0; w < backoff && !a->d->shutdown; w += 50) {
                if (__atomic_load_n(&a->wake, __ATOMIC_SEQ_CST))
                    worker_wake(a, a->c);
                sleep_ms(50);
            }
            backoff = backoff * 2 > 60000 ? 60000 : backoff * 2;
        } else {
            backoff = 1000;
        }
    }
    run_queued(a); /* answers what is left */
    return NULL;
}

/* ------------------------------------------------------------ requests */

static bool valid_id(json_t *id)
{
    return id == NULL || json_is_string(id) || json_is_integer(id) || json_is_real(id) ||
           json_is_null(id);
}

static dm_account *account_for(dm_daemon *d, json_t *params, const char **why)
{
    json_t *v = json_object_get(params, "account");
    if (v == NULL || json_is_null(v)) {
        if (d->n_acc == 1)
            return &d->acc[0];
        *why = d->n_acc == 0 ? "the daemon serves no account"
                             : "give account: the daemon serves several";
        return NULL;
    }
    if (!json_is_string(v)) {
        *why = "account is a string";
        return NULL;
    }
    for (size_t i = 0; i < d->n_acc; i++)
        if (strcmp(d->acc[i].name, json_string_value(v)) == 0)
            return &d->acc[i];
    *why = "the daemon does not serve that account";
    return NULL;
}

static json_t *daemon_method(dm_daemon *d, const dm_method *m)
{
    if (strcmp(m->name, "version") == 0) {
        json_t *r = json_object();
        json_object_set_new(r, "version", json_string("0.1.0"));
        json_object_set_new(r, "protocol", json_string("sotto-rpc-1"));
        return r;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < d->n_acc; i++) {
        json_t *o = json_object();
        json_object_set_new(o, "account", json_string(d->acc[i].name));
        json_object_set_new(o, "username", json_string(sc_username(d->acc[i].c)));
        json_object_set_new(o, "device", json_integer(sc_device_id(d->acc[i].c)));
        json_array_append_new(arr, o);
    }
    return arr;
}

/* One element of a line: files an error, answers it, or queues a call. */
static void handle_request(dm_daemon *d, dm_batch *b, size_t idx, json_t *req)
{
    json_t *id = NULL, *params, *jv, *mv;
    const dm_method *m;
    const char *why = NULL;
    dm_account *a;
    dm_call *call;

    if (!json_is_object(req)) {
        batch_done(d, b, idx,
                   response(NULL, NULL, error_obj(RPC_INVALID_REQUEST, "Invalid Request", NULL)));
        return;
    }
    id = json_object_get(req, "id");
    jv = json_object_get(req, "jsonrpc");
    mv = json_object_get(req, "method");
    params = json_object_get(req, "params");
    if (!valid_id(id) || !json_is_string(jv) || strcmp(json_string_value(jv), "2.0") != 0 ||
        !json_is_string(mv) || (params && !json_is_object(params) && !json_is_array(params))) {
        batch_done(d, b, idx,
                   response(valid_id(id) ? id : NULL, NULL,
                            error_obj(RPC_INVALID_REQUEST, "Invalid Request", NULL)));
        return;
    }
    m = find_method(json_string_value(mv));
    if (m == NULL) {
        batch_done(
            d, b, idx,
            id ? response(id, NULL, error_obj(RPC_METHOD_NOT_FOUND, "Method not found", NULL))
               : NULL);
        return;
    }
    if (params && json_is_array(params)) {
        if (json_array_size(params) != 0) {
            batch_done(
                d, b, idx,
                id ? response(id, NULL,
                              error_obj(RPC_INVALID_PARAMS, "params are by name (an object)", NULL))
                   : NULL);
            return;
        }
        params = NULL;
    }
    if (m->no_account) {
        batch_done(d, b, idx, id ? response(id, daemon_method(d, m), NULL) : NULL);
        return;
    }
    a = account_for(d, params, &why);
    call = calloc(1, sizeof *call);
    if (a == NULL || call == NULL) {
        free(call);
        batch_done(
            d, b, idx,
            id ? response(id, NULL, error_obj(RPC_INVALID_PARAMS, why ? why : "no memory", NULL))
               : NULL);
        return;
    }
    call->batch = b;
    call->idx = idx;
    call->id = id ? json_incref(id) : NULL;
    call->m = m;
    call->params = params ? json_incref(params) : json_object();
    call->conn = b->conn;
    if (m->build) {
        why = m->build(call->params, call->cmds, &call->n_cmds);
        for (size_t k = 0; why == NULL && k < call->n_cmds; k++)
            if (call->cmds[k].overflow)
                why = "too many arguments";
        if (why) {
            batch_done(d, b, idx,
                       id ? response(id, NULL, error_obj(RPC_INVALID_PARAMS, why, NULL)) : NULL);
            call_free(call);
            return;
        }
    }
    if (d->sync) {
        run_call(a, call);
        call_free(call);
        return;
    }
    pthread_mutex_lock(&d->mu);
    if (a->tail)
        a->tail->next = call;
    else
        a->head = call;
    a->tail = call;
    pthread_mutex_unlock(&d->mu);
    __atomic_store_n(&a->wake, 1, __ATOMIC_SEQ_CST);
    sc_wake(a->c);
}

void dm_handle_line(dm_daemon *d, uint64_t conn, const char *line, size_t len)
{
    json_error_t jerr;
    json_t *root;
    dm_batch *b;
    size_t n;

    while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
        len--;
    if (len == 0)
        return; /* an empty line is nothing */
    root = json_loadb(line, len, JSON_DECODE_ANY, &jerr);
    if (root == NULL) {
        json_t *r = response(NULL, NULL, error_obj(RPC_PARSE_ERROR, "Parse error", NULL));
        queue_json(d, conn, r);
        json_decref(r);
        return;
    }
    if (json_is_array(root) && (json_array_size(root) == 0 || json_array_size(root) > MAX_BATCH)) {
        json_t *r = response(NULL, NULL,
                             error_obj(RPC_INVALID_REQUEST,
                                       json_array_size(root) ? "Invalid Request: batch too large"
                                                             : "Invalid Request",
                                       NULL));
        queue_json(d, conn, r);
        json_decref(r);
        json_decref(root);
        return;
    }
    n = json_is_array(root) ? json_array_size(root) : 1;
    b = calloc(1, sizeof *b);
    if (b == NULL) {
        json_decref(root);
        return;
    }
    pthread_mutex_lock(&d->mu);
    d->open_batches++;
    pthread_mutex_unlock(&d->mu);
    b->conn = conn;
    b->single = !json_is_array(root);
    b->responses = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(b->responses, json_null());
    /* +1 so that the batch cannot complete while elements are still being
     * queued (workers run concurrently) */
    b->pending = n + 1;
    for (size_t i = 0; i < n; i++)
        handle_request(d, b, i, b->single ? root : json_array_get(root, i));
    batch_done(d, b, n, NULL); /* the +1; slot n does not exist: nothing filed */
    json_decref(root);
}

/* ------------------------------------------------------------ life cycle */

dm_daemon *dm_new(sc_client **clients, size_t n, bool sync)
{
    dm_daemon *d = calloc(1, sizeof *d);
    if (d == NULL)
        return NULL;
    d->acc = calloc(n ? n : 1, sizeof *d->acc);
    if (d->acc == NULL || pipe(d->pipe_fd) != 0) {
        free(d->acc);
        free(d);
        return NULL;
    }
    /* non-blocking: the I/O thread queues answers itself and is the one
     * that drains the pipe, so a blocking write would hang it for good
     * once 64 KiB of wake bytes are pending (a full pipe: a wake is
     * pending anyway) */
    for (int i = 0; i < 2; i++)
        (void)fcntl(d->pipe_fd[i], F_SETFL, fcntl(d->pipe_fd[i], F_GETFL) | O_NONBLOCK);
    pthread_mutex_init(&d->mu, NULL);
    d->sync = sync;
    d->n_acc = n;
    for (size_t i = 0; i < n; i++) {
        dm_account *a = &d->acc[i];
        a->d = d;
        a->c = clients[i];
        a->name = strdup(sc_account_name(clients[i]));
        if (sc_history_max_id(a->c, &a->start_row) != SC_OK)
            a->start_row = 0;
    }
    return d;
}

int dm_start(dm_daemon *d)
{
    for (size_t i = 0; i < d->n_acc; i++) {
        if (pthread_create(&d->acc[i].th, NULL, worker_main, &d->acc[i]) != 0)
            return -1;
        d->acc[i].started = true;
    }
    return 0;
}

void dm_free(dm_daemon *d)
{
    uint64_t conn;
    char *text;

    if (d == NULL)
        return;
    d->shutdown = 1;
    for (size_t i = 0; i < d->n_acc; i++) {
        __atomic_store_n(&d->acc[i].wake, 1, __ATOMIC_SEQ_CST);
        sc_wake(d->acc[i].c);
    }
    for (size_t i = 0; i < d->n_acc; i++) {
        dm_account *a = &d->acc[i];
        if (a->started)
            pthread_join(a->th, NULL);
        while (a->subs) {
            dm_sub *s = a->subs;
            a->subs = s->next;
            free(s->name);
            free(s);
        }
        sc_close(a->c);
        free(a->name);
    }
    while (dm_take_output(d, &conn, &text))
        free(text);
    close(d->pipe_fd[0]);
    close(d->pipe_fd[1]);
    pthread_mutex_destroy(&d->mu);
    free(d->closed);
    free(d->acc);
    free(d);
}
