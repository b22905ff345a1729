/*
 * server/store/store.c -- the backend-independent half of sottod's store:
 * the write queue, the writer thread doing group commit, completions
 * handed back to the event loop, and the typed [async] / [sync] calls.
 *
 * Design note. The network loop must never wait for the disk, and an ack
 * must never leave before the data it acknowledges is durable. So every
 * write is an operation object: the caller's thread copies the inputs and
 * queues it (a mutex and a condition variable, nothing else). The writer
 * thread takes everything queued (up to max_batch), runs it in ONE
 * transaction (each operation atomic on its own), commits (one fsync for the
 * whole batch), moves the batch to the completion list and wakes the loop.
 * The loop runs the callbacks. Under load the batches grow by themselves:
 * while one batch is being fsynced, the next one accumulates.
 */
#include "store/store.h"
#include "store/store_op.h"

#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct sottod_store {
    sottod_store_config cfg;
    char *path; /* owned copy of cfg.path */
    sottod_store_backend *be;

    pthread_t writer;
    bool writer_started;
    pthread_mutex_t mu;
    pthread_cond_t cv_work;           /* queue non-empty or stopping */
    pthread_cond_t cv_committed;      /* a batch moved to the done list */
    sottod_store_op *q_head, *q_tail; /* submitted, not yet executed */
    sottod_store_op *d_head, *d_tail; /* committed, completion pending */
    uint64_t submitted;               /* ops accepted so far */
    uint64_t committed;               /* ops moved to the done list so far */
    bool stopping;
    uint64_t batches; /* stats, under mu */
    uint32_t last_batch_ops;
    uint64_t commit_ns_total;
    uint64_t last_commit_ns;
    uint64_t scrubs;       /* WAL truncations done, under mu */
    uint64_t scrub_due_ns; /* mono_ns() when the next scrub is due; 0 = none */
    void (*wake)(void *arg);
    void *wake_arg;
};

const char *sottod_store_strerror(int status)
{
    switch (status) {
    case SOTTOD_STORE_OK:
        return "ok";
    case SOTTOD_STORE_ERR:
        return "storage failure";
    case SOTTOD_STORE_NOMEM:
        return "out of memory";
    case SOTTOD_STORE_INVALID:
        return "invalid argument";
    case SOTTOD_STORE_NOT_FOUND:
        return "not found";
    case SOTTOD_STORE_EXISTS:
        return "already exists";
    case SOTTOD_STORE_BAD_INVITE:
        return "invalid or used invite";
    case SOTTOD_STORE_DEVICE_LIMIT:
        return "device limit reached";
    case SOTTOD_STORE_QUEUE_FULL:
        return "recipient queue full";
    case SOTTOD_STORE_STALE:
        return "recipient device does not exist";
    case SOTTOD_STORE_CLOSED:
        return "store closed";
    case SOTTOD_STORE_CONFLICT:
        return "device list changed meanwhile";
    case SOTTOD_STORE_SENDER_FULL:
        return "sender's share of the recipient queue full";
    default:
        return "unknown store error";
    }
}

void sottod_store_date(int64_t t, char out[SOTTOD_DATE_BYTES])
{
    time_t tt = (time_t)t;
    struct tm tm;

    if (gmtime_r(&tt, &tm) == NULL || tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999) {
        memcpy(out, "0000-00-00", SOTTOD_DATE_BYTES);
        return;
    }
    /* Bounded: 4+1+2+1+2 digits + NUL = 11 bytes. */
    out[0] = (char)('0' + (tm.tm_year + 1900) / 1000 % 10);
    out[1] = (char)('0' + (tm.tm_year + 1900) / 100 % 10);
    out[2] = (char)('0' + (tm.tm_year + 1900) / 10 % 10);
    out[3] = (char)('0' + (tm.tm_year + 1900) % 10);
    out[4] = '-';
    out[5] = (char)('0' + (tm.tm_mon + 1) / 10);
    out[6] = (char)('0' + (tm.tm_mon + 1) % 10);
    out[7] = '-';
    out[8] = (char)('0' + tm.tm_mday / 10);
    out[9] = (char)('0' + tm.tm_mday % 10);
    out[10] = '\0';
}

int64_t sottod_store_now(const sottod_store *st)
{
    if (st != NULL && st->cfg.now != NULL)
        return st->cfg.now(st->cfg.now_arg);
    return (int64_t)time(NULL);
}

void sottod_store_op_free(sottod_store_op *op)
{
    if (op == NULL)
        return;
    free(op->keys);
    free(op->envs);
    free(op->env_bodies);
    free(op->ids);
    free(op->out_bundles);
    free(op->list);
    free(op->out_list);
    free(op->kt_rows);
    free(op->blob);
    if (op->kt_entries != NULL) {
        sodium_memzero(op->kt_entries, op->kt_n_entries * sizeof(*op->kt_entries));
        free(op->kt_entries);
    }
    sodium_memzero(op->invite_hash, sizeof(op->invite_hash));
    free(op);
}

static uint64_t mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void sottod_store_stats_get(sottod_store *st, sottod_store_stats *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&st->mu);
    out->batches = st->batches;
    out->ops = st->committed;
    out->last_batch_ops = st->last_batch_ops;
    out->commit_ns_total = st->commit_ns_total;
    out->last_commit_ns = st->last_commit_ns;
    out->pending_ops = st->submitted - st->committed;
    out->scrubs = st->scrubs;
    pthread_mutex_unlock(&st->mu);
    if (st->be->ops->queue_depth_total(st->be, &out->queue_depth_total) != SOTTOD_STORE_OK)
        out->queue_depth_total = 0;
}

/* ---- writer thread -------------------------------------------------------- */

static void run_batch(sottod_store *st, sottod_store_op *batch)
{
    sottod_store_backend *be = st->be;
    const sottod_store_backend_ops *ops = be->ops;
    sottod_store_op *op;
    bool began = ops->begin(be) == SOTTOD_STORE_OK;

    for (op = batch; op != NULL; op = op->next) {
        if (!began) {
            op->res.status = SOTTOD_STORE_ERR;
            continue;
        }
        if (op->res.type == SOTTOD_OP_BARRIER) {
            op->res.status = SOTTOD_STORE_OK;
            continue;
        }
        (void)ops->exec(be, op); /* fills op->res.status */
    }
    if (began && ops->commit(be) != SOTTOD_STORE_OK) {
        /* Nothing of this batch is durable: every op fails, results void. */
        (void)ops->rollback(be);
        for (op = batch; op != NULL; op = op->next) {
            op->res.status = SOTTOD_STORE_ERR;
            memset(&op->res.u, 0, sizeof(op->res.u));
        }
    }
}

/* Called with st->mu held, on the writer thread, between batches: runs the
 * backend's scrub without the lock. A failure (a reader of another process
 * holding an old snapshot) is retried a second later. */
static void scrub(sottod_store *st)
{
    int rc = SOTTOD_STORE_OK;

    pthread_mutex_unlock(&st->mu);
    if (st->be->ops->scrub != NULL)
        rc = st->be->ops->scrub(st->be);
    pthread_mutex_lock(&st->mu);
    if (rc == SOTTOD_STORE_OK) {
        st->scrubs++;
        st->scrub_due_ns = 0;
    } else {
        st->scrub_due_ns = mono_ns() + 1000000000u;
    }
}

static void *writer_main(void *arg)
{
    sottod_store *st = arg;
    uint32_t max_batch = st->cfg.max_batch;

    pthread_mutex_lock(&st->mu);
    for (;;) {
        sottod_store_op *batch, *last;
        uint64_t count = 1;
        void (*wake)(void *);
        void *wake_arg;
        uint64_t t0, t1;

        while (st->q_head == NULL && !st->stopping) {
            if (st->scrub_due_ns == 0) {
                pthread_cond_wait(&st->cv_work, &st->mu);
                continue;
            }
            if (mono_ns() >= st->scrub_due_ns) {
                scrub(st);
                continue;
            }
            struct timespec until = {(time_t)(st->scrub_due_ns / 1000000000u),
                                     (long)(st->scrub_due_ns % 1000000000u)};
            (void)pthread_cond_timedwait(&st->cv_work, &st->mu, &until);
        }
        if (st->q_head == NULL)
            break; /* stopping and nothing left */
        if (st->scrub_due_ns != 0 && mono_ns() >= st->scrub_due_ns)
            scrub(st); /* a steady stream of writes must not postpone it */
        batch = last = st->q_head;
        while (last->next != NULL && count < max_batch) {
            last = last->next;
            count++;
        }
        st->q_head = last->next;
        if (st->q_head == NULL)
            st->q_tail = NULL;
        last->next = NULL;
        pthread_mutex_unlock(&st->mu);

        t0 = mono_ns();
        run_batch(st, batch);
        t1 = mono_ns();

        pthread_mutex_lock(&st->mu);
        st->batches++;
        st->last_batch_ops = (uint32_t)count;
        st->last_commit_ns = t1 - t0;
        st->commit_ns_total += t1 - t0;
        if (st->d_tail != NULL)
            st->d_tail->next = batch;
        else
            st->d_head = batch;
        st->d_tail = last;
        st->committed += count;
        /* Every committed write leaves page images in the WAL (an acked
         * envelope's insert among them): scrub within the delay. */
        if (st->scrub_due_ns == 0)
            st->scrub_due_ns = t1 + (uint64_t)st->cfg.scrub_delay_s * 1000000000u;
        pthread_cond_broadcast(&st->cv_committed);
        wake = st->wake;
        wake_arg = st->wake_arg;
        pthread_mutex_unlock(&st->mu);
        if (wake != NULL)
            wake(wake_arg);
        pthread_mutex_lock(&st->mu);
    }
    pthread_mutex_unlock(&st->mu);
    return NULL;
}

/* Queues op; on success the store owns it. On failure the caller frees. */
static int submit(sottod_store *st, sottod_store_op *op, sottod_store_done_fn done, void *arg)
{
    int rc = SOTTOD_STORE_OK;

    op->done = done;
    op->arg = arg;
    op->next = NULL;
    pthread_mutex_lock(&st->mu);
    if (st->stopping) {
        rc = SOTTOD_STORE_CLOSED;
    } else {
        if (st->q_tail != NULL)
            st->q_tail->next = op;
        else
            st->q_head = op;
        st->q_tail = op;
        st->submitted++;
        pthread_cond_signal(&st->cv_work);
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

static sottod_store_op *op_new(sottod_store_op_type type)
{
    sottod_store_op *op = calloc(1, sizeof(*op));

    if (op != NULL)
        op->res.type = type;
    return op;
}

/* Submits op or frees it; returns the status. */
static int submit_or_free(sottod_store *st, sottod_store_op *op, sottod_store_done_fn done,
                          void *arg)
{
    int rc;

    if (op == NULL)
        return SOTTOD_STORE_NOMEM;
    rc = submit(st, op, done, arg);
    if (rc != SOTTOD_STORE_OK)
        sottod_store_op_free(op);
    return rc;
}

/* ---- lifecycle ------------------------------------------------------------ */

int sottod_store_open(const sottod_store_config *cfg, sottod_store **out)
{
    sottod_store *st = NULL;
    int rc = SOTTOD_STORE_INVALID;
    bool mu_init = false, cv1 = false, cv2 = false;

    if (cfg == NULL || out == NULL || cfg->path == NULL)
        goto out;
    *out = NULL;
    if (cfg->why != NULL && cfg->why_cap > 0)
        cfg->why[0] = '\0';
    if (sodium_init() < 0) {
        rc = SOTTOD_STORE_ERR;
        goto out;
    }
    rc = SOTTOD_STORE_NOMEM;
    st = calloc(1, sizeof(*st));
    if (st == NULL)
        goto out;
    st->cfg = *cfg;
    st->path = strdup(cfg->path);
    if (st->path == NULL)
        goto out;
    st->cfg.path = st->path;
    st->cfg.backend = NULL; /* not kept: caller's memory */
    st->cfg.why = NULL;     /* ditto; the backend writes cfg->why */
    st->cfg.why_cap = 0;
    if (st->cfg.max_queue == 0)
        st->cfg.max_queue = SOTTOD_DEFAULT_MAX_QUEUE;
    if (st->cfg.max_batch == 0)
        st->cfg.max_batch = SOTTOD_DEFAULT_MAX_BATCH;
    if (st->cfg.scrub_delay_s == 0)
        st->cfg.scrub_delay_s = SOTTOD_DEFAULT_SCRUB_DELAY_S;
    rc = SOTTOD_STORE_ERR;
    if (pthread_mutex_init(&st->mu, NULL) != 0)
        goto out;
    mu_init = true;
    {
        /* cv_work's timed waits (scrub) use the monotonic clock of mono_ns. */
        pthread_condattr_t ca;
        bool ok;
        if (pthread_condattr_init(&ca) != 0)
            goto out;
        ok = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
             pthread_cond_init(&st->cv_work, &ca) == 0;
        (void)pthread_condattr_destroy(&ca);
        if (!ok)
            goto out;
    }
    cv1 = true;
    if (pthread_cond_init(&st->cv_committed, NULL) != 0)
        goto out;
    cv2 = true;

    if (cfg->backend != NULL && strcmp(cfg->backend, "sqlite") != 0) {
        rc = SOTTOD_STORE_INVALID;
        goto out;
    }
    rc = sottod_store_sqlite_open(&st->cfg, st, &st->be, cfg->why, cfg->why_cap);
    if (rc != SOTTOD_STORE_OK)
        goto out;
    if (pthread_create(&st->writer, NULL, writer_main, st) != 0) {
        rc = SOTTOD_STORE_ERR;
        goto out;
    }
    st->writer_started = true;
    *out = st;
    st = NULL;
    rc = SOTTOD_STORE_OK;
out:
    if (st != NULL) {
        if (st->be != NULL)
            st->be->ops->close(st->be);
        if (cv2)
            pthread_cond_destroy(&st->cv_committed);
        if (cv1)
            pthread_cond_destroy(&st->cv_work);
        if (mu_init)
            pthread_mutex_destroy(&st->mu);
        free(st->path);
        free(st);
    }
    return rc;
}

const char *sottod_store_last_error(sottod_store *st, char *buf, size_t cap)
{
    if (cap == 0)
        return buf;
    buf[0] = '\0';
    if (st != NULL && st->be != NULL)
        st->be->ops->last_error(st->be, buf, cap);
    return buf;
}

void sottod_store_set_wake(sottod_store *st, void (*wake)(void *arg), void *arg)
{
    pthread_mutex_lock(&st->mu);
    st->wake = wake;
    st->wake_arg = arg;
    pthread_mutex_unlock(&st->mu);
}

size_t sottod_store_run_completions(sottod_store *st)
{
    sottod_store_op *list, *op;
    size_t n = 0;

    pthread_mutex_lock(&st->mu);
    list = st->d_head;
    st->d_head = st->d_tail = NULL;
    pthread_mutex_unlock(&st->mu);
    while (list != NULL) {
        op = list;
        list = op->next;
        if (op->done != NULL)
            op->done(op->arg, &op->res);
        sottod_store_op_free(op);
        n++;
    }
    return n;
}

int sottod_store_drain(sottod_store *st)
{
    uint64_t target;

    pthread_mutex_lock(&st->mu);
    target = st->submitted;
    while (st->committed < target)
        pthread_cond_wait(&st->cv_committed, &st->mu);
    pthread_mutex_unlock(&st->mu);
    (void)sottod_store_run_completions(st);
    return SOTTOD_STORE_OK;
}

void sottod_store_close(sottod_store *st)
{
    if (st == NULL)
        return;
    pthread_mutex_lock(&st->mu);
    st->stopping = true;
    pthread_cond_broadcast(&st->cv_work);
    pthread_mutex_unlock(&st->mu);
    if (st->writer_started)
        pthread_join(st->writer, NULL);
    (void)sottod_store_run_completions(st);
    st->be->ops->close(st->be);
    pthread_cond_destroy(&st->cv_committed);
    pthread_cond_destroy(&st->cv_work);
    pthread_mutex_destroy(&st->mu);
    free(st->path);
    free(st);
}

/* ---- [async] writes --------------------------------------------------------- */

static bool username_ok(const char *username)
{
    size_t len;

    if (username == NULL)
        return false;
    len = strnlen(username, SOTTOD_USERNAME_MAX + 1);
    return len >= 1 && len <= SOTTOD_USERNAME_MAX;
}

/* A list record is usable: present, 1..SOTTOD_DEVICE_LIST_MAX_BYTES bytes,
 * version >= 1. */
static bool list_ok(const sottod_device_list_rec *l)
{
    return l != NULL && l->present && l->len > 0 && l->len <= SOTTOD_DEVICE_LIST_MAX_BYTES &&
           l->version >= 1 && l->version <= (uint64_t)INT64_MAX;
}

/* Copies list (may be NULL) into op->list. */
static int op_set_list(sottod_store_op *op, const sottod_device_list_rec *list)
{
    if (list == NULL)
        return SOTTOD_STORE_OK;
    op->list = malloc(sizeof(*op->list));
    if (op->list == NULL)
        return SOTTOD_STORE_NOMEM;
    *op->list = *list;
    return SOTTOD_STORE_OK;
}

int sottod_store_account_create(sottod_store *st, const char *username, const uint8_t *invite,
                                size_t invite_len, const sottod_device_new *dev,
                                sottod_store_done_fn done, void *arg)
{
    return sottod_store_account_create_listed(st, username, invite, invite_len, dev, NULL, done,
                                              arg);
}

int sottod_store_account_create_listed(sottod_store *st, const char *username,
                                       const uint8_t *invite, size_t invite_len,
                                       const sottod_device_new *dev,
                                       const sottod_device_list_rec *list,
                                       sottod_store_done_fn done, void *arg)
{
    sottod_store_op *op;

    if (st == NULL || !username_ok(username) || dev == NULL ||
        (invite != NULL && (invite_len == 0 || invite_len > SOTTOD_INVITE_MAX)) ||
        (list != NULL && !list_ok(list)))
        return SOTTOD_STORE_INVALID;
    op = op_new(SOTTOD_OP_ACCOUNT_CREATE);
    if (op == NULL)
        return SOTTOD_STORE_NOMEM;
    if (op_set_list(op, list) != SOTTOD_STORE_OK) {
        sottod_store_op_free(op);
        return SOTTOD_STORE_NOMEM;
    }
    memcpy(op->username, username, strlen(username) + 1);
    op->dev = *dev;
    op->dev.device_id = 1;
    if (invite != NULL) {
        crypto_hash_sha256(op->invite_hash, invite, invite_len);
        op->has_invite = true;
    }
    return submit_or_free(st, op, done, arg);
}

int sottod_store_account_delete(sottod_store *st, int64_t account_id, sottod_store_done_fn done,
                                void *arg)
{
    sottod_store_op *op;

    if (st == NULL || account_id <= 0)
        return SOTTOD_STORE_INVALID;
    op = op_new(SOTTOD_OP_ACCOUNT_DELETE);
    if (op != NULL)
        op->account_id = account_id;
    return submit_or_free(st, op, done, arg);
}

int sottod_store_invite_create(sottod_store *st, const uint8_t *token, size_t token_len,
                               int64_t expires_at, sottod_store_done_fn done, void *arg)
{
    sottod_store_op *op;

    if (st == NULL || token == NULL || token_len == 0 || token_len > SOTTOD_INVITE_MAX)
        return SOTTOD_STORE_INVALID;
    op = op_new(SOTTOD_OP_INVITE_CREATE);
    if (op != NULL) {
        crypto_hash_sha256(op->invite_hash, token, token_len);
        op->expires_at = expires_at;
    }
    return submit_or_free(st, op, done, arg);
}

int sottod_store_device_add(sottod_store *st, int64_t account_id, const sottod_device_new *dev,
                            uint32_t max_devices, sottod_store_done_fn done, void *arg)
{
    sottod_store_op *op;

    if (st == NULL || account_id <= 0 || dev == NULL || max_devices == 0 ||
        max_devices > SOTTOD_MAX_DEVICES)
        return SOTTOD_STORE_INVALID;
    op = op_new(SOTTOD_OP_DEVICE_ADD);
    if (op != NULL) {
        op->account_id = account_id;
        op->dev = *dev;
        op->max_devices = max_devices;
    }
    return submit_or_free(st, op, done, arg);
}

static bool addr_ok(sottod_addr addr)
{
    return addr.account_id > 0 && addr.device_id > 0;
}

/* Queues a DEVICE_LIST_CHANGE of `kind`. */
static int list_change(sottod_store *st, int kind, sottod_addr addr, const sottod_device_new *dev,
                       uint32_t max_devices, uint64_t prev_version,
                       const sottod_device_list_rec *list, sottod_store_done_fn done, void *arg)
{
    sottod_store_op *op = op_new(SOTTOD_OP_DEVICE_LIST_CHANGE);

    if (op == NULL)
        return SOTTOD_STORE_NOMEM;
    op->list_kind = kind;
    op->addr = addr;
    op->account_id = addr.account_id;
    if (dev != NULL)
        op->dev = *dev;
    op->max_devices = max_devices;
    op->prev_version = prev_version;
    if (op_set_list(op, list) != SOTTOD_STORE_OK) {
        sottod_store_op_free(op);
        return SOTTOD_STORE_NOMEM;
    }
    return submit_or_free(st, op, done, arg);
}

/* The list argument of a change: required unless `optional`, and then
 * only with prev_version 0. */
static bool change_list_ok(const sottod_device_list_rec *list, uint64_t prev_version, bool optional)
{
    if (list == NULL)
        return optional && prev_version == 0;
    return list_ok(list) && list->version > prev_version;
}

int sottod_store_device_add_listed(sottod_store *st, int64_t account_id,
                                   const sottod_device_new *dev, uint32_t max_devices,
                                   uint64_t prev_version, const sottod_device_list_rec *list,
                                   sottod_store_done_fn done, void *arg)
{
    sottod_addr a = {.account_id = account_id, .device_id = dev != NULL ? dev->device_id : 0};

    /* device id 0 (the store picks) only without a list: a list names the id. */
    if (st == NULL || dev == NULL || account_id <= 0 || (list != NULL && dev->device_id == 0) ||
        max_devices == 0 || max_devices > SOTTOD_MAX_DEVICES ||
        !change_list_ok(list, prev_version, true))
        return SOTTOD_STORE_INVALID;
    return list_change(st, SOTTOD_LIST_ADD, a, dev, max_devices, prev_version, list, done, arg);
}

int sottod_store_device_remove_listed(sottod_store *st, sottod_addr addr, uint64_t prev_version,
                                      const sottod_device_list_rec *list, sottod_store_done_fn done,
                                      void *arg)
{
    if (st == NULL || !addr_ok(addr) || !change_list_ok(list, prev_version, true))
        return SOTTOD_STORE_INVALID;
    return list_change(st, SOTTOD_LIST_REMOVE, addr, NULL, 0, prev_version, list, done, arg);
}

int sottod_store_account_recover(sottod_store *st, int64_t account_id, const sottod_device_new *dev,
                                 uint64_t prev_version, const sottod_device_list_rec *list,
                                 sottod_store_done_fn done, void *arg)
{
    sottod_addr a = {.account_id = account_id, .device_id = dev != NULL ? dev->device_id : 0};

    if (st == NULL || !addr_ok(a) || prev_version == 0 ||
        !change_list_ok(list, prev_version, false))
        return SOTTOD_STORE_INVALID;
    return list_change(st, SOTTOD_LIST_RECOVER, a, dev, 0, prev_version, list, done, arg);
}

int sottod_store_device_list_set(sottod_store *st, int64_t account_id, uint64_t prev_version,
                                 const sottod_device_list_rec *list, sottod_store_done_fn done,
                                 void *arg)
{
    sottod_addr a = {.account_id = account_id, .device_id = 0};

    if (st == NULL || account_id <= 0 || !change_list_ok(list, prev_version, false))
        return SOTTOD_STORE_INVALID;
    return list_change(st, SOTTOD_LIST_SET, a, NULL, 0, prev_version, list, done, arg);
}

static int addr_op(sottod_store *st, sottod_store_op_type type, sottod_addr addr,
                   sottod_store_done_fn done, void *arg)
{
    sottod_store_op *op;

    if (st == NULL || !addr_ok(addr))
        return SOTTOD_STORE_INVALID;
    op = op_new(type);
    if (op != NULL)
        op->addr = addr;
    return submit_or_free(st, op, done, arg);
}

int sottod_store_device_remove(sottod_store *st, sottod_addr addr, sottod_store_done_fn done,
                               void *arg)
{
    return addr_op(st, SOTTOD_OP_DEVICE_REMOVE, addr, done, arg);
}

int sottod_store_device_touch(sottod_store *st, sottod_addr addr, sottod_store_done_fn done,
                              void *arg)
{
    return addr_op(st, SOTTOD_OP_DEVICE_TOUCH, addr, done, arg);
}

int sottod_store_signed_prekey_set(sottod_store *st, sottod_addr addr, uint32_t id,
                                   const uint8_t pub[SOTTOD_PUBLIC_KEY_BYTES],
                                   const uint8_t sig[SOTTOD_SIGNATURE_BYTES],
                                   sottod_store_done_fn done, void *arg)
{
    sottod_store_op *op;

    if (st == NULL || !addr_ok(addr) || pub == NULL || sig == NULL)
        return SOTTOD_STORE_INVALID;
    op = op_new(SOTTOD_OP_SIGNED_PREKEY_SET);
    if (op != NULL) {
        op->addr = addr;
        op->key_id = id;
        memcpy(op->pub, pub, sizeof(op->pub));
        memcpy(op->sig, sig, sizeof(op->sig));
    }
    return submit_or_free(st, op, done, arg);
}

int sottod_store_one_time_prekeys_add(sottod_store *st, sottod_addr addr,
                                      const sottod_one_time_prekey *keys, size_t n,
                                      sottod_store_done_fn done, void *arg)
{
    sottod_store_op *op;

    if (st == NULL || !addr_ok(addr) || keys == NULL || n == 0 || n > 10000)
        return SOTTOD_STORE_INVALID;
    op = op_new(SOTTOD_OP_ONE_TIME_PREKEYS_ADD);
    if (op == NULL)
        return SOTTOD_STORE_NOMEM;
    op->addr = addr;
    op->n = n;
    op->keys = malloc(n * sizeof(*keys));
    if (op->keys == NULL) {
        sottod_store_op_free(op);
        return SOTTOD_STORE_NOMEM;
    }
    memcpy(op->keys, keys, n * sizeof(*keys));
    return submit_or_free(st, op, done, arg);
}

int sottod_store_bundle_take(sottod_store *st, int64_t account_id, uint32_t device_id,
                             sottod_store_done_fn done, void *arg)
{
    return sottod_store_bundle_take_ex(st, account_id, device_id, true, done, arg);
}

int sottod_store_bundle_take_ex(sottod_store *st, int64_t account_id, uint32_t device_id,
                                bool one_time_prekey, sottod_store_done_fn done, void *arg)
{
    sottod_store_op *op;

    if (st == NULL || account_id <= 0)
        return SOTTOD_STORE_INVALID;
    op = op_new(SOTTOD_OP_BUNDLE_TAKE);
    if (op != NULL) {
        op->addr.account_id = account_id;
        op->addr.device_id = device_id;
        op->skip_otpk = !one_time_prekey;
    }
    return submit_or_free(st, op, done, arg);
}

int sottod_store_envelopes_enqueue(sottod_store *st, const sottod_envelope_in *envs, size_t n,
                                   sottod_store_done_fn done, void *arg)
{
    sottod_store_op *op = NULL;
    size_t i, total = 0, off = 0;

    if (st == NULL || envs == NULL || n == 0 || n > 4096)
        return SOTTOD_STORE_INVALID;
    for (i = 0; i < n; i++) {
        if (!addr_ok(envs[i].to) || envs[i].body == NULL || envs[i].body_len == 0 ||
            envs[i].body_len > SOTTOD_ENVELOPE_MAX)
            return SOTTOD_STORE_INVALID;
        total += envs[i].body_len;
    }
    op = op_new(SOTTOD_OP_ENVELOPES_ENQUEUE);
    if (op == NULL)
        return SOTTOD_STORE_NOMEM;
    op->n = n;
    op->envs = malloc(n * sizeof(*envs));
    op->env_bodies = malloc(total);
    if (op->envs == NULL || op->env_bodies == NULL) {
        sottod_store_op_free(op);
        return SOTTOD_STORE_NOMEM;
    }
    for (i = 0; i < n; i++) {
        op->envs[i] = envs[i];
        memcpy(op->env_bodies + off, envs[i].body, envs[i].body_len);
        op->envs[i].body = op->env_bodies + off;
        off += envs[i].body_len;
    }
    return submit_or_free(st, op, done, arg);
}

int sottod_store_envelopes_delete(sottod_store *st, sottod_addr addr, const uint8_t *ids, size_t n,
                                  sottod_store_done_fn done, void *arg)
{
    sottod_store_op *op;

    if (st == NULL || !addr_ok(addr) || ids == NULL || n == 0 || n > 4096)
        return SOTTOD_STORE_INVALID;
    op = op_new(SOTTOD_OP_ENVELOPES_DELETE);
    if (op == NULL)
        return SOTTOD_STORE_NOMEM;
    op->addr = addr;
    op->n = n;
    op->ids = malloc(n * SOTTOD_ENVELOPE_ID_BYTES);
    if (op->ids == NULL) {
        sottod_store_op_free(op);
        return SOTTOD_STORE_NOMEM;
    }
    memcpy(op->ids, ids, n * SOTTOD_ENVELOPE_ID_BYTES);
    return submit_or_free(st, op, done, arg);
}

int sottod_store_envelopes_expire(sottod_store *st, sottod_store_done_fn done, void *arg)
{
    if (st == NULL)
        return SOTTOD_STORE_INVALID;
    return submit_or_free(st, op_new(SOTTOD_OP_ENVELOPES_EXPIRE), done, arg);
}

static int attachment_op(sottod_store *st, sottod_store_op_type type, const sottod_attachment *att,
                         sottod_store_done_fn done, void *arg)
{
    sottod_store_op *op;

    if (st == NULL || att == NULL)
        return SOTTOD_STORE_INVALID;
    op = op_new(type);
    if (op != NULL)
        op->att = *att;
    return submit_or_free(st, op, done, arg);
}

int sottod_store_attachment_create(sottod_store *st, const sottod_attachment *att,
                                   sottod_store_done_fn done, void *arg)
{
    return attachment_op(st, SOTTOD_OP_ATTACHMENT_CREATE, att, done, arg);
}

int sottod_store_attachment_update(sottod_store *st, const sottod_attachment *att,
                                   sottod_store_done_fn done, void *arg)
{
    return attachment_op(st, SOTTOD_OP_ATTACHMENT_UPDATE, att, done, arg);
}

int sottod_store_attachment_delete(sottod_store *st, const uint8_t id[SOTTOD_ATTACHMENT_ID_BYTES],
                                   sottod_store_done_fn done, void *arg)
{
    sottod_attachment att;

    if (id == NULL)
        return SOTTOD_STORE_INVALID;
    memset(&att, 0, sizeof(att));
    memcpy(att.id, id, sizeof(att.id));
    return attachment_op(st, SOTTOD_OP_ATTACHMENT_DELETE, &att, done, arg);
}

/* ---- key transparency ------------------------------------------------------------ */

static bool kt_head_ok(const sottod_kt_head_rec *h)
{
    return h != NULL && h->size >= 1 && h->size <= (uint64_t)INT64_MAX &&
           h->ts_ms <= (uint64_t)INT64_MAX;
}

int sottod_store_kt_append(sottod_store *st, const sottod_kt_log_row *rows, size_t n_rows,
                           const sottod_kt_entry *entries, size_t n_entries,
                           const sottod_kt_head_rec *head, sottod_store_done_fn done, void *arg)
{
    sottod_store_op *op;
    size_t i;

    if (st == NULL || rows == NULL || n_rows == 0 || n_rows > SOTTOD_KT_APPEND_MAX ||
        (entries == NULL && n_entries > 0) || n_entries > SOTTOD_KT_APPEND_MAX ||
        !kt_head_ok(head) || rows[0].pos > (uint64_t)INT64_MAX - n_rows ||
        head->size != rows[0].pos + n_rows)
        return SOTTOD_STORE_INVALID;
    for (i = 0; i < n_rows; i++)
        if (rows[i].pos != rows[0].pos + i || rows[i].counter == 0 ||
            rows[i].counter > (uint64_t)INT64_MAX || rows[i].ts_ms > (uint64_t)INT64_MAX)
            return SOTTOD_STORE_INVALID;
    for (i = 0; i < n_entries; i++)
        if (!username_ok(entries[i].username) || entries[i].counter == 0 ||
            entries[i].counter > (uint64_t)INT64_MAX || entries[i].pos >= head->size)
            return SOTTOD_STORE_INVALID;
    op = op_new(SOTTOD_OP_KT_APPEND);
    if (op == NULL)
        return SOTTOD_STORE_NOMEM;
    op->n = n_rows;
    op->kt_rows = malloc(n_rows * sizeof(*rows));
    op->kt_entries = n_entries > 0 ? malloc(n_entries * sizeof(*entries)) : NULL;
    if (op->kt_rows == NULL || (n_entries > 0 && op->kt_entries == NULL)) {
        sottod_store_op_free(op);
        return SOTTOD_STORE_NOMEM;
    }
    memcpy(op->kt_rows, rows, n_rows * sizeof(*rows));
    if (n_entries > 0)
        memcpy(op->kt_entries, entries, n_entries * sizeof(*entries));
    op->kt_n_entries = n_entries;
    op->kt_head = *head;
    return submit_or_free(st, op, done, arg);
}

int sottod_store_kt_head_add(sottod_store *st, const sottod_kt_head_rec *head,
                             sottod_store_done_fn done, void *arg)
{
    sottod_store_op *op;

    if (st == NULL || !kt_head_ok(head))
        return SOTTOD_STORE_INVALID;
    op = op_new(SOTTOD_OP_KT_HEAD_ADD);
    if (op != NULL)
        op->kt_head = *head;
    return submit_or_free(st, op, done, arg);
}

int sottod_store_kt_cosig_add(sottod_store *st, const sottod_kt_cosig_rec *cosig,
                              sottod_store_done_fn done, void *arg)
{
    sottod_store_op *op;
    sottod_kt_head_rec h;

    if (st == NULL || cosig == NULL)
        return SOTTOD_STORE_INVALID;
    h.size = cosig->size;
    h.ts_ms = cosig->ts_ms;
    if (!kt_head_ok(&h))
        return SOTTOD_STORE_INVALID;
    op = op_new(SOTTOD_OP_KT_COSIG_ADD);
    if (op != NULL)
        op->kt_cosig = *cosig;
    return submit_or_free(st, op, done, arg);
}

int sottod_store_profile_set(sottod_store *st, int64_t account_id, const uint8_t *ciphertext,
                             size_t len, sottod_store_done_fn done, void *arg)
{
    sottod_store_op *op;

    if (st == NULL || account_id <= 0 || ciphertext == NULL || len == 0 || len > SOTTOD_PROFILE_MAX)
        return SOTTOD_STORE_INVALID;
    op = op_new(SOTTOD_OP_PROFILE_SET);
    if (op != NULL) {
        op->account_id = account_id;
        op->blob = malloc(len);
        if (op->blob == NULL) {
            sottod_store_op_free(op);
            return SOTTOD_STORE_NOMEM;
        }
        memcpy(op->blob, ciphertext, len);
        op->blob_len = len;
    }
    return submit_or_free(st, op, done, arg);
}

int sottod_store_delivery_token_set(sottod_store *st, int64_t account_id, const uint8_t *token,
                                    sottod_store_done_fn done, void *arg)
{
    sottod_store_op *op;

    if (st == NULL || account_id <= 0)
        return SOTTOD_STORE_INVALID;
    op = op_new(SOTTOD_OP_DELIVERY_TOKEN_SET);
    if (op != NULL) {
        op->account_id = account_id;
        if (token != NULL) {
            op->blob = malloc(SOTTOD_DELIVERY_TOKEN_BYTES);
            if (op->blob == NULL) {
                sottod_store_op_free(op);
                return SOTTOD_STORE_NOMEM;
            }
            memcpy(op->blob, token, SOTTOD_DELIVERY_TOKEN_BYTES);
            op->blob_len = SOTTOD_DELIVERY_TOKEN_BYTES;
        }
    }
    return submit_or_free(st, op, done, arg);
}

int sottod_store_delivery_token_get(sottod_store *st, int64_t account_id,
                                    uint8_t out[SOTTOD_DELIVERY_TOKEN_BYTES], bool *present)
{
    if (st == NULL || account_id <= 0 || out == NULL || present == NULL)
        return SOTTOD_STORE_INVALID;
    *present = false;
    return st->be->ops->delivery_token_get(st->be, account_id, out, present);
}

int sottod_store_sealed_root_mark(sottod_store *st, sottod_store_done_fn done, void *arg)
{
    if (st == NULL)
        return SOTTOD_STORE_INVALID;
    return submit_or_free(st, op_new(SOTTOD_OP_SEALED_ROOT_MARK), done, arg);
}

int sottod_store_sealed_root_marked(sottod_store *st, bool *marked)
{
    if (st == NULL || marked == NULL)
        return SOTTOD_STORE_INVALID;
    *marked = false;
    return st->be->ops->sealed_root_marked(st->be, marked);
}

int sottod_store_profile_get(sottod_store *st, const char *username, uint8_t **out, size_t *len)
{
    if (st == NULL || !username_ok(username) || out == NULL || len == NULL)
        return SOTTOD_STORE_INVALID;
    *out = NULL;
    *len = 0;
    return st->be->ops->profile_get(st->be, username, out, len);
}

int sottod_store_kt_log_size(sottod_store *st, uint64_t *n)
{
    if (st == NULL || n == NULL)
        return SOTTOD_STORE_INVALID;
    return st->be->ops->kt_log_size(st->be, n);
}

int sottod_store_kt_log_read(sottod_store *st, uint64_t from, size_t max, sottod_kt_log_row *out,
                             size_t *n)
{
    if (st == NULL || out == NULL || n == NULL || max == 0 || from > (uint64_t)INT64_MAX)
        return SOTTOD_STORE_INVALID;
    return st->be->ops->kt_log_read(st->be, from, max, out, n);
}

int sottod_store_kt_entry_get(sottod_store *st, const char *username, sottod_kt_entry *out)
{
    if (st == NULL || !username_ok(username) || out == NULL)
        return SOTTOD_STORE_INVALID;
    return st->be->ops->kt_entry_get(st->be, username, out);
}

int sottod_store_kt_head_latest(sottod_store *st, sottod_kt_head_rec *out)
{
    if (st == NULL || out == NULL)
        return SOTTOD_STORE_INVALID;
    return st->be->ops->kt_head_get(st->be, 0, 0, out);
}

int sottod_store_kt_head_get(sottod_store *st, uint64_t size, uint64_t ts_ms,
                             sottod_kt_head_rec *out)
{
    sottod_kt_head_rec h = {.size = size, .ts_ms = ts_ms};

    if (st == NULL || out == NULL || !kt_head_ok(&h))
        return SOTTOD_STORE_INVALID;
    return st->be->ops->kt_head_get(st->be, size, ts_ms, out);
}

int sottod_store_kt_cosigs_scan(sottod_store *st, sottod_kt_cosig_fn fn, void *arg)
{
    if (st == NULL || fn == NULL)
        return SOTTOD_STORE_INVALID;
    return st->be->ops->kt_cosigs_scan(st->be, fn, arg);
}

int sottod_store_kt_accounts_scan(sottod_store *st, sottod_kt_account_fn fn, void *arg)
{
    if (st == NULL || fn == NULL)
        return SOTTOD_STORE_INVALID;
    return st->be->ops->kt_accounts_scan(st->be, fn, arg);
}

/* ---- [sync] reads ------------------------------------------------------------ */

int sottod_store_account_lookup(sottod_store *st, const char *username, sottod_account *out)
{
    if (st == NULL || !username_ok(username) || out == NULL)
        return SOTTOD_STORE_INVALID;
    return st->be->ops->account_lookup(st->be, username, out);
}

int sottod_store_device_get(sottod_store *st, sottod_addr addr, sottod_device *out)
{
    if (st == NULL || !addr_ok(addr) || out == NULL)
        return SOTTOD_STORE_INVALID;
    return st->be->ops->device_get(st->be, addr, out);
}

int sottod_store_devices_list(sottod_store *st, int64_t account_id, sottod_device *out, size_t max,
                              size_t *n)
{
    if (st == NULL || account_id <= 0 || (out == NULL && max > 0) || n == NULL)
        return SOTTOD_STORE_INVALID;
    return st->be->ops->devices_list(st->be, account_id, out, max, n);
}

int sottod_store_device_list_get(sottod_store *st, int64_t account_id, sottod_device_list_rec *out)
{
    size_t n = 0;

    if (st == NULL || account_id <= 0 || out == NULL)
        return SOTTOD_STORE_INVALID;
    return st->be->ops->device_list_get(st->be, account_id, NULL, 0, &n, out);
}

int sottod_store_devices_list_with_list(sottod_store *st, int64_t account_id, sottod_device *out,
                                        size_t max, size_t *n, sottod_device_list_rec *list)
{
    if (st == NULL || account_id <= 0 || (out == NULL && max > 0) || n == NULL || list == NULL)
        return SOTTOD_STORE_INVALID;
    return st->be->ops->device_list_get(st->be, account_id, out, max, n, list);
}

int sottod_store_one_time_prekey_count(sottod_store *st, sottod_addr addr, uint32_t *count)
{
    if (st == NULL || !addr_ok(addr) || count == NULL)
        return SOTTOD_STORE_INVALID;
    return st->be->ops->one_time_prekey_count(st->be, addr, count);
}

int sottod_store_envelopes_list(sottod_store *st, sottod_addr addr, int64_t after_seq, size_t limit,
                                sottod_envelope_fn fn, void *arg, int64_t *last_seq)
{
    if (st == NULL || !addr_ok(addr) || fn == NULL || limit == 0)
        return SOTTOD_STORE_INVALID;
    return st->be->ops->envelopes_list(st->be, addr, after_seq, limit, fn, arg, last_seq);
}

int sottod_store_queue_depth(sottod_store *st, sottod_addr addr, uint32_t *depth)
{
    if (st == NULL || !addr_ok(addr) || depth == NULL)
        return SOTTOD_STORE_INVALID;
    return st->be->ops->queue_depth(st->be, addr, depth);
}

int sottod_store_attachment_get(sottod_store *st, const uint8_t id[SOTTOD_ATTACHMENT_ID_BYTES],
                                sottod_attachment *out)
{
    if (st == NULL || id == NULL || out == NULL)
        return SOTTOD_STORE_INVALID;
    return st->be->ops->attachment_get(st->be, id, out);
}

int sottod_store_attachments_expired(sottod_store *st, size_t limit, sottod_attachment_fn fn,
                                     void *arg)
{
    if (st == NULL || fn == NULL || limit == 0)
        return SOTTOD_STORE_INVALID;
    return st->be->ops->attachments_expired(st->be, limit, fn, arg);
}

int sottod_store_disclose(sottod_store *st, const char *username, char **json)
{
    if (st == NULL || !username_ok(username) || json == NULL)
        return SOTTOD_STORE_INVALID;
    *json = NULL;
    return st->be->ops->disclose(st->be, username, json);
}
