/*
 * server/kt.c -- key transparency in sottod (see kt.h for the design).
 *
 * Everything here runs on the event-loop thread (and, at start, on the
 * thread that starts the server before the loop runs). The store is the
 * only durable state: kt_log (updates), kt_entries (per name: VRF proof,
 * opening, value, counter, position), kt_heads and kt_cosigs. The
 * directories and the merkle log are rebuilt from kt_log at every start.
 */
#include "kt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "datadir.h"
#include "log.h"
#include "sottod.h"
#include "sotto/keys.h"
#include "sotto/kt.h"
#include "sotto/merkle.h"
#include "sotto/vrf.h"
#ifdef SOTTOD_TEST_HOOKS
#include "sotto/account.h"
#include "sotto/device_list.h"
/* SOTTOD_TEST_KT_INJECT's name: its searches serve the stored entry. */
#define INJECTED(kt, name) ((kt)->inject_name[0] != '\0' && strcmp((kt)->inject_name, (name)) == 0)
#else
#define INJECTED(kt, name) false
#endif

_Static_assert(SOTTOD_KT_VALUE_BYTES == SOTTO_KT_VALUE_BYTES, "value size");
_Static_assert(SOTTOD_KT_VRF_PROOF_BYTES == SOTTO_VRF_PROOF_BYTES, "proof size");
_Static_assert(SOTTO_KT_HEAD_BYTES == 112, "head size");
_Static_assert(SOTTO_KT_UPDATE_BYTES == 80, "update size");

#define DAY_MS UINT64_C(86400000)
#define REPLAY_PAGE 4096
#define VRF_PER_BATCH 256 /* new names proved per batch: bounds the loop's stall */

/* One queued update: a name whose value is read at batch time, or (test
 * hook INJECT) a forced value. */
typedef struct kt_item {
    char username[SOTTOD_USERNAME_MAX + 1];
    bool forced;
    uint8_t value[SOTTOD_KT_VALUE_BYTES];
} kt_item;

/* What one viewer sees: the published state, or (test hook) a fork. */
typedef struct kt_view {
    const sotto_kt_directory *dir;
    const sotto_merkle_log *log;
    const sotto_kt_audited_head *head;
    uint64_t size;
    uint64_t real_size;                /* real published entries it holds */
    const sottod_kt_entry *fork_entry; /* the fork's changed entry, or NULL */
} kt_view;

struct sottod_kt {
    sottod_server *srv;
    uint8_t sign_pk[crypto_sign_PUBLICKEYBYTES];
    uint8_t sign_sk[crypto_sign_SECRETKEYBYTES];
    sotto_vrf_key_pair vrf;
    uint8_t auditors[SOTTO_KT_MAX_AUDITORS][32];
    size_t n_auditors;

    sotto_kt_directory *current, *published;
    sotto_merkle_log *log; /* leaves of `current` (durable + in flight) */
    uint64_t durable;      /* log entries committed */
    uint64_t pub_size;     /* entries applied to `published` */

    bool have_head;
    sotto_kt_tree_head newest; /* newest durable head */
    bool have_pub;
    sotto_kt_audited_head pub; /* the published head with its cosigs */
    bool have_pending;
    sotto_kt_tree_head pending; /* cosigned by some, not all auditors */

    kt_item *queue;
    size_t q_len, q_cap;
    bool inflight;      /* a KT batch is in the store */
    bool head_inflight; /* a re-signed head is in the store */
    bool broken;        /* a batch failed: rebuild from the store */
    sotto_kt_tree_head batch_head;

    lws_sorted_usec_list_t timer;
    bool timer_on;

#ifdef SOTTOD_TEST_HOOKS
    /* SOTTOD_TEST_KT_FORK=viewer:target (see "test hooks" below) */
    char fork_viewer[SOTTOD_USERNAME_MAX + 1];
    char fork_target[SOTTOD_USERNAME_MAX + 1];
    bool fork_built;
    uint64_t fork_real; /* real published entries folded into the fork */
    sotto_kt_directory *fork_dir;
    sotto_merkle_log *fork_log;
    sotto_kt_audited_head fork_head; /* server-signed, never countersigned */
    sottod_kt_entry fork_entry;      /* target's forged entry in the fork */
    struct kt_forged *forged;        /* the forged identity served for target */
    /* SOTTOD_TEST_KT_INJECT=username: searches serve its entry as stored */
    char inject_name[SOTTOD_USERNAME_MAX + 1];
#endif
};

/* ---- small helpers ------------------------------------------------------------ */

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t now_ms(void)
{
    int64_t t = sottod_now_ms();
    return t > 0 ? (uint64_t)t : 0;
}

/* The time a new tree head carries (issue 12): now rounded down to whole
 * kt_head_interval_s (at most an hour), and never before not_before (the
 * newest head's: time never goes back). Clients need a time in the signed
 * head to refuse a stale one (kt_max_age_s, one day by default), but not
 * the millisecond: a head for a batch says to within the hour, not to the
 * millisecond, when the accounts in it changed their keys. Heads are
 * re-signed every kt_head_interval_s, so a head is at most about two
 * intervals old. */
static uint64_t head_ts(const sottod_kt *kt, uint64_t not_before)
{
    uint64_t q = kt->srv->cfg.kt_head_interval_s;
    if (q > 3600)
        q = 3600;
    if (q < 1)
        q = 1;
    q *= 1000;
    uint64_t t = now_ms();
    t -= t % q;
    return t > not_before ? t : not_before;
}

/* The 73-byte value of an account's key and list. */
static int value_of(const sottod_device_list_rec *l, uint8_t out[SOTTOD_KT_VALUE_BYTES])
{
    memcpy(out, l->account_key, 33);
    if (sotto_kt_device_list_hash(out + 33, l->list, l->len) != SOTTO_OK)
        return -1;
    put_u64(out + 65, l->version);
    return 0;
}

static void value_parse(const uint8_t in[SOTTOD_KT_VALUE_BYTES], sotto_kt_value *v)
{
    memcpy(v->account_key, in, 33);
    memcpy(v->device_list_hash, in + 33, 32);
    v->version = get_u64(in + 65);
}

static void row_to_update(const sottod_kt_log_row *r, sotto_kt_update *u)
{
    u->timestamp_ms = r->ts_ms;
    memcpy(u->index, r->index, 32);
    u->counter = r->counter;
    memcpy(u->commitment, r->commitment, 32);
}

static bool head_newer(const sotto_kt_tree_head *a, const sotto_kt_tree_head *b)
{
    return a->size > b->size || (a->size == b->size && a->timestamp_ms > b->timestamp_ms);
}

static bool auditor_known(const sottod_kt *kt, const uint8_t key[32])
{
    for (size_t i = 0; i < kt->n_auditors; i++)
        if (sodium_memcmp(kt->auditors[i], key, 32) == 0)
            return true;
    return false;
}

static int blob_take(sottod_kt_blob *b, const uint8_t *p, size_t len)
{
    b->data = malloc(len > 0 ? len : 1);
    if (b->data == NULL)
        return -1;
    memcpy(b->data, p, len);
    b->len = len;
    return 0;
}

/* ---- keys ---------------------------------------------------------------------- */

/* Why a missing kt.key or vrf.key is not simply made anew. */
#define KT_KEY_MISSING_HINT                                                                        \
    " but the key-transparency log already has signed heads: restore it from a backup (a new "     \
    "key would break every client's pinned key)"

static int load_keys(sottod_kt *kt, const char *dir, bool may_create, char *why, size_t cap)
{
    uint8_t seed[32];
    int rc = -1;

    if (sottod_key_file(dir, "kt.key", "kt", seed, may_create, KT_KEY_MISSING_HINT, why, cap) != 0)
        return -1;
    if (crypto_sign_seed_keypair(kt->sign_pk, kt->sign_sk, seed) != 0) {
        snprintf(why, cap, "kt.key: cannot derive the signing key");
        goto out;
    }
    sodium_memzero(seed, sizeof(seed));
    if (sottod_key_file(dir, "vrf.key", "kt", seed, may_create, KT_KEY_MISSING_HINT, why, cap) != 0)
        goto out;
    if (sotto_vrf_key_pair_from_seed(&kt->vrf, seed) != SOTTO_OK) {
        snprintf(why, cap, "vrf.key: cannot derive the VRF key");
        goto out;
    }
    rc = 0;
out:
    sodium_memzero(seed, sizeof(seed));
    return rc;
}

/* ---- replay --------------------------------------------------------------------- */

/* Applies kt_log rows [from, to) (to = UINT64_MAX: to the end) to dir and,
 * if log != NULL, appends their leaves. Returns the number applied in
 * *done_n; 0 or -1 with why. */
static int replay(sottod_kt *kt, sotto_kt_directory *dir, sotto_merkle_log *log, uint64_t from,
                  uint64_t to, uint64_t *done_n, char *why, size_t cap)
{
    sottod_kt_log_row *rows = malloc(REPLAY_PAGE * sizeof(*rows));
    uint64_t pos = from;
    int rc = -1;

    *done_n = 0;
    if (rows == NULL) {
        snprintf(why, cap, "out of memory");
        return -1;
    }
    while (pos < to) {
        size_t n = 0, want = REPLAY_PAGE;
        if (to - pos < want)
            want = (size_t)(to - pos);
        if (sottod_store_kt_log_read(kt->srv->store, pos, want, rows, &n) != SOTTOD_STORE_OK) {
            snprintf(why, cap, "cannot read kt_log at %llu", (unsigned long long)pos);
            goto out;
        }
        if (n == 0)
            break;
        for (size_t i = 0; i < n; i++) {
            sotto_kt_update u;
            uint8_t root[32], leaf[32];
            int e;
            if (rows[i].pos != pos) {
                snprintf(why, cap, "kt_log has a gap at position %llu", (unsigned long long)pos);
                goto out;
            }
            row_to_update(&rows[i], &u);
            e = sotto_kt_directory_apply(dir, &u, root);
            if (e != SOTTO_OK) {
                snprintf(why, cap,
                         "kt_log position %llu does not follow the previous state (%s): the "
                         "log was edited",
                         (unsigned long long)pos, sotto_strerror(e));
                goto out;
            }
            if (log != NULL && (sotto_kt_leaf_hash(leaf, root, u.timestamp_ms) != SOTTO_OK ||
                                sotto_merkle_log_append(log, leaf) != SOTTO_OK)) {
                snprintf(why, cap, "out of memory");
                goto out;
            }
            pos++;
        }
    }
    *done_n = pos - from;
    rc = 0;
out:
    free(rows);
    return rc;
}

/* A tree head for size (its root from the log) at ts, signed. */
static int make_head(sottod_kt *kt, const sotto_merkle_log *log, uint64_t size, uint64_t ts,
                     sotto_kt_tree_head *h)
{
    memset(h, 0, sizeof(*h));
    h->size = size;
    h->timestamp_ms = ts;
    if (sotto_merkle_log_root(log, size, h->root) != SOTTO_OK)
        return -1;
    return sotto_kt_head_sign(h, kt->sign_sk) == SOTTO_OK ? 0 : -1;
}

/* The stored head (size, ts) with its root from our log, if its signature
 * verifies against that root. */
static bool head_from_rec(sottod_kt *kt, const sottod_kt_head_rec *rec, sotto_kt_tree_head *h)
{
    if (rec->size == 0 || rec->size > sotto_merkle_log_size(kt->log))
        return false;
    memset(h, 0, sizeof(*h));
    h->size = rec->size;
    h->timestamp_ms = rec->ts_ms;
    memcpy(h->signature, rec->signature, sizeof(h->signature));
    if (sotto_merkle_log_root(kt->log, h->size, h->root) != SOTTO_OK)
        return false;
    return sotto_kt_head_verify(h, kt->sign_pk) == SOTTO_OK;
}

static void sync_done(void *arg, const sottod_store_result *res)
{
    *(int *)arg = res->status;
}

/* ---- published ------------------------------------------------------------------ */

/* Makes ah the published head: replays [pub_size, ah->head.size) onto
 * `published` (read back from kt_log). */
static void publish(sottod_kt *kt, const sotto_kt_audited_head *ah)
{
    char why[256];
    uint64_t n = 0;

    if (kt->have_pub && !head_newer(&ah->head, &kt->pub.head))
        return;
    if (ah->head.size < kt->pub_size)
        return; /* an older size: never go back */
    if (ah->head.size > kt->pub_size) {
        if (replay(kt, kt->published, NULL, kt->pub_size, ah->head.size, &n, why, sizeof(why)) !=
            0) {
            sottod_log(SOTTOD_LOG_ERROR, "kt_publish_failed", "reason=\"%s\"", why);
            kt->pub_size += n;
            return;
        }
        kt->pub_size += n;
        if (kt->pub_size != ah->head.size) {
            sottod_log(SOTTOD_LOG_ERROR, "kt_publish_failed", "reason=\"kt_log is short\"");
            return;
        }
    }
    kt->pub = *ah;
    kt->have_pub = true;
    if (kt->have_pending && !head_newer(&kt->pending, &ah->head))
        kt->have_pending = false;
    sottod_log(SOTTOD_LOG_INFO, "kt_published", "size=%llu cosigs=%u",
               (unsigned long long)ah->head.size, (unsigned)ah->n_cosigs);
}

static void publish_unaudited(sottod_kt *kt, const sotto_kt_tree_head *h)
{
    sotto_kt_audited_head ah;
    memset(&ah, 0, sizeof(ah));
    ah.head = *h;
    publish(kt, &ah);
}

/* Collects the countersignatures of one head (size, ts) from the store. */
typedef struct cosig_collect {
    sottod_kt *kt;
    const sotto_kt_tree_head *h; /* NULL: collect all into list */
    sotto_kt_audited_head *ah;
    sottod_kt_cosig_rec *list;
    size_t n, cap;
    bool nomem;
} cosig_collect;

static int cosig_cb(void *arg, const sottod_kt_cosig_rec *c)
{
    cosig_collect *cc = arg;
    if (cc->h != NULL) {
        if (c->size == cc->h->size && c->ts_ms == cc->h->timestamp_ms &&
            auditor_known(cc->kt, c->auditor_key) &&
            sotto_kt_cosig_verify(c->signature, cc->h, c->auditor_key) == SOTTO_OK &&
            sotto_kt_audited_head_add(cc->ah, c->auditor_key, c->signature) != SOTTO_OK)
            cc->nomem = true;
        return 0;
    }
    if (!auditor_known(cc->kt, c->auditor_key))
        return 0;
    if (cc->n == cc->cap) {
        size_t nc = cc->cap ? cc->cap * 2 : 64;
        sottod_kt_cosig_rec *nl = realloc(cc->list, nc * sizeof(*nl));
        if (nl == NULL) {
            cc->nomem = true;
            return 1;
        }
        cc->list = nl;
        cc->cap = nc;
    }
    cc->list[cc->n++] = *c;
    return 0;
}

/* The audited head of h with every configured auditor's stored, verifying
 * countersignature. */
static int collect_cosigs(sottod_kt *kt, const sotto_kt_tree_head *h, sotto_kt_audited_head *ah)
{
    cosig_collect cc;
    memset(ah, 0, sizeof(*ah));
    ah->head = *h;
    memset(&cc, 0, sizeof(cc));
    cc.kt = kt;
    cc.h = h;
    cc.ah = ah;
    if (sottod_store_kt_cosigs_scan(kt->srv->store, cosig_cb, &cc) != SOTTOD_STORE_OK || cc.nomem)
        return -1;
    return 0;
}

/* Start-up: the published head (newest head countersigned by every
 * configured auditor whose signature verifies against our log) and the
 * pending one. */
static int find_published(sottod_kt *kt, sotto_kt_audited_head *best, bool *have_best)
{
    cosig_collect cc;
    size_t i = 0;
    int rc = -1;

    *have_best = false;
    memset(&cc, 0, sizeof(cc));
    cc.kt = kt;
    if (sottod_store_kt_cosigs_scan(kt->srv->store, cosig_cb, &cc) != SOTTOD_STORE_OK || cc.nomem)
        goto out;
    while (i < cc.n) {
        size_t j = i;
        sottod_kt_head_rec rec;
        sotto_kt_tree_head h;
        while (j < cc.n && cc.list[j].size == cc.list[i].size &&
               cc.list[j].ts_ms == cc.list[i].ts_ms)
            j++;
        if (sottod_store_kt_head_get(kt->srv->store, cc.list[i].size, cc.list[i].ts_ms, &rec) ==
                SOTTOD_STORE_OK &&
            head_from_rec(kt, &rec, &h)) {
            sotto_kt_audited_head ah;
            memset(&ah, 0, sizeof(ah));
            ah.head = h;
            for (size_t k = i; k < j; k++)
                if (sotto_kt_cosig_verify(cc.list[k].signature, &h, cc.list[k].auditor_key) ==
                        SOTTO_OK &&
                    sotto_kt_audited_head_add(&ah, cc.list[k].auditor_key, cc.list[k].signature) !=
                        SOTTO_OK)
                    goto out;
            if (ah.n_cosigs == kt->n_auditors) {
                if (!*have_best || head_newer(&h, &best->head)) {
                    *best = ah;
                    *have_best = true;
                }
            } else if (ah.n_cosigs > 0 && (!kt->have_pending || head_newer(&h, &kt->pending))) {
                kt->pending = h;
                kt->have_pending = true;
            }
        }
        i = j;
    }
    if (kt->have_pending && *have_best && !head_newer(&kt->pending, &best->head))
        kt->have_pending = false;
    rc = 0;
out:
    free(cc.list);
    return rc;
}

/* ---- reconcile and the queue ------------------------------------------------------ */

static int queue_push(sottod_kt *kt, const char *username, const uint8_t *forced_value)
{
    kt_item *it;
    if (kt->q_len == kt->q_cap) {
        size_t nc = kt->q_cap ? kt->q_cap * 2 : 64;
        kt_item *nq = realloc(kt->queue, nc * sizeof(*nq));
        if (nq == NULL)
            return -1;
        kt->queue = nq;
        kt->q_cap = nc;
    }
    it = &kt->queue[kt->q_len++];
    memset(it, 0, sizeof(*it));
    snprintf(it->username, sizeof(it->username), "%s", username);
    if (forced_value != NULL) {
        it->forced = true;
        memcpy(it->value, forced_value, SOTTOD_KT_VALUE_BYTES);
    }
    return 0;
}

typedef struct reconcile_ctx {
    sottod_kt *kt;
    size_t queued;
    bool failed;
} reconcile_ctx;

static int reconcile_cb(void *arg, const char *username, const sottod_device_list_rec *list,
                        const sottod_kt_entry *entry)
{
    reconcile_ctx *rc = arg;
    uint8_t v[SOTTOD_KT_VALUE_BYTES];
    if (value_of(list, v) != 0) {
        rc->failed = true;
        return 1;
    }
    if (entry != NULL && sodium_memcmp(entry->value, v, sizeof(v)) == 0)
        return 0;
    if (queue_push(rc->kt, username, NULL) != 0) {
        rc->failed = true;
        return 1;
    }
    rc->queued++;
    return 0;
}

static int reconcile(sottod_kt *kt, char *why, size_t cap)
{
    reconcile_ctx rc = {.kt = kt};
    if (sottod_store_kt_accounts_scan(kt->srv->store, reconcile_cb, &rc) != SOTTOD_STORE_OK ||
        rc.failed) {
        snprintf(why, cap, "cannot read the accounts to reconcile the key directory");
        return -1;
    }
    if (rc.queued > 0)
        sottod_log(SOTTOD_LOG_INFO, "kt_reconcile", "updates=%zu", rc.queued);
    return 0;
}

/* ---- batches ---------------------------------------------------------------------- */

static void start_batch(sottod_kt *kt);
static int rebuild(sottod_kt *kt, char *why, size_t cap);

static void batch_done(void *arg, const sottod_store_result *res)
{
    sottod_kt *kt = arg;
    kt->inflight = false;
    if (res->status != SOTTOD_STORE_OK) {
        char why[256];
        sottod_log_store_error(kt->srv, "kt_batch_failed", "kt_append", res->status);
        /* `current` holds updates the store does not: rebuild both from
         * kt_log and reconcile (which queues the lost updates again). */
        kt->broken = true;
        if (!kt->srv->draining && rebuild(kt, why, sizeof(why)) != 0)
            sottod_log(SOTTOD_LOG_ERROR, "kt_rebuild_failed", "reason=\"%s\"", why);
        start_batch(kt);
        return;
    }
    kt->durable = kt->batch_head.size;
    kt->newest = kt->batch_head;
    kt->have_head = true;
    if (kt->n_auditors == 0)
        publish_unaudited(kt, &kt->newest);
    start_batch(kt);
}

static int cmp_item(const void *a, const void *b)
{
    const kt_item *x = a, *y = b;
    int c = strcmp(x->username, y->username);
    if (c != 0)
        return c;
    return (int)x->forced - (int)y->forced; /* the read value first, then forced ones */
}

/* Builds one update for item `it` (value read now unless forced) into
 * row/entry, applied to `current` and the log. Returns 1 if an update was
 * made, 0 if nothing changed (or the account is gone), -1 on failure (the
 * directory is then unchanged), -2 if the VRF budget is spent. */
static int build_update(sottod_kt *kt, const kt_item *it, const sottod_kt_entry *prev, uint64_t pos,
                        uint64_t ts, int *vrf_budget, sottod_kt_log_row *row,
                        sottod_kt_entry *entry)
{
    sottod_store *st = kt->srv->store;
    sottod_account acct;
    sottod_device_list_rec *l = NULL;
    sottod_kt_entry stored;
    sotto_kt_value v;
    sotto_kt_update u;
    uint8_t value[SOTTOD_KT_VALUE_BYTES], root[32], leaf[32], beta[SOTTO_VRF_OUTPUT_BYTES];
    int rc = 0, s;

    if (!it->forced) {
        if (sottod_store_account_lookup(st, it->username, &acct) != SOTTOD_STORE_OK)
            return 0; /* deleted meanwhile: nothing to publish */
        l = malloc(sizeof(*l));
        if (l == NULL)
            return -1;
        s = sottod_store_device_list_get(st, acct.account_id, l);
        if (s != SOTTOD_STORE_OK || !l->present || value_of(l, value) != 0) {
            free(l);
            return s == SOTTOD_STORE_OK || s == SOTTOD_STORE_NOT_FOUND ? 0 : -1;
        }
        free(l);
    } else {
        memcpy(value, it->value, sizeof(value));
    }
    if (prev == NULL) {
        s = sottod_store_kt_entry_get(st, it->username, &stored);
        if (s == SOTTOD_STORE_OK)
            prev = &stored;
        else if (s != SOTTOD_STORE_NOT_FOUND)
            return -1;
    }
    if (!it->forced && prev != NULL && sodium_memcmp(prev->value, value, sizeof(value)) == 0) {
        rc = 0;
        goto out;
    }
    memset(entry, 0, sizeof(*entry));
    snprintf(entry->username, sizeof(entry->username), "%s", it->username);
    if (prev != NULL) {
        memcpy(entry->index, prev->index, 32);
        memcpy(entry->vrf_proof, prev->vrf_proof, sizeof(entry->vrf_proof));
    } else {
        if (*vrf_budget <= 0) {
            rc = -2;
            goto out;
        }
        (*vrf_budget)--;
        if (sotto_vrf_prove(entry->vrf_proof, &kt->vrf, (const uint8_t *)it->username,
                            strlen(it->username)) != SOTTO_OK ||
            sotto_vrf_proof_to_hash(beta, entry->vrf_proof) != SOTTO_OK) {
            rc = -1;
            goto out;
        }
        memcpy(entry->index, beta, 32);
    }
    value_parse(value, &v);
    memcpy(entry->value, value, sizeof(value));
    randombytes_buf(entry->opening, sizeof(entry->opening));
    memset(&u, 0, sizeof(u));
    u.timestamp_ms = ts;
    memcpy(u.index, entry->index, 32);
    u.counter = sotto_kt_directory_counter(kt->current, entry->index) + 1;
    if (sotto_kt_value_commitment(u.commitment, entry->opening, it->username, &v) != SOTTO_OK) {
        rc = -1;
        goto out;
    }
    if (sotto_kt_directory_apply(kt->current, &u, root) != SOTTO_OK) {
        rc = -1;
        goto out;
    }
    if (sotto_kt_leaf_hash(leaf, root, ts) != SOTTO_OK ||
        sotto_merkle_log_append(kt->log, leaf) != SOTTO_OK) {
        /* The directory moved but the log did not: only a rebuild helps. */
        kt->broken = true;
        rc = -1;
        goto out;
    }
    entry->counter = u.counter;
    entry->pos = pos;
    row->pos = pos;
    row->ts_ms = ts;
    memcpy(row->index, u.index, 32);
    row->counter = u.counter;
    memcpy(row->commitment, u.commitment, 32);
    rc = 1;
out:
    sodium_memzero(&stored, sizeof(stored));
    return rc;
}

/* Takes the queue (up to SOTTOD_KT_APPEND_MAX), makes the updates and
 * submits them with a signed head as ONE store op. */
static void start_batch(sottod_kt *kt)
{
    sottod_kt_log_row *rows = NULL;
    sottod_kt_entry *entries = NULL;
    kt_item *items = NULL;
    size_t take, k = 0, used = 0, rest;
    uint64_t pos, ts, day;
    int vrf_budget = VRF_PER_BATCH;
    sottod_kt_head_rec rec;

    if (kt->inflight || kt->head_inflight || kt->broken || kt->q_len == 0 || kt->srv->draining)
        return;
    take = kt->q_len < SOTTOD_KT_APPEND_MAX ? kt->q_len : SOTTOD_KT_APPEND_MAX;
    items = malloc(take * sizeof(*items));
    rows = malloc(take * sizeof(*rows));
    entries = malloc(take * sizeof(*entries));
    if (items == NULL || rows == NULL || entries == NULL) {
        sottod_log(SOTTOD_LOG_ERROR, "kt_batch_failed", "reason=\"out of memory\"");
        goto out;
    }
    memcpy(items, kt->queue, take * sizeof(*items));
    qsort(items, take, sizeof(*items), cmp_item);
    pos = sotto_merkle_log_size(kt->log);
    day = now_ms() / DAY_MS * DAY_MS;
    ts = sotto_kt_directory_last_timestamp(kt->current);
    if (day > ts)
        ts = day;
    for (used = 0; used < take; used++) {
        const sottod_kt_entry *prev = NULL;
        int r;
        /* The same name twice in a batch: the later one starts from the
         * entry just made. */
        if (k > 0 && strcmp(entries[k - 1].username, items[used].username) == 0) {
            if (!items[used].forced)
                continue;
            prev = &entries[k - 1];
        }
        r = build_update(kt, &items[used], prev, pos + k, ts, &vrf_budget, &rows[k], &entries[k]);
        if (r == -2)
            break; /* the rest waits for the next batch */
        if (r < 0) {
            sottod_log(SOTTOD_LOG_ERROR, "kt_update_failed", NULL);
            if (kt->broken)
                break;
            continue;
        }
        k += (size_t)r;
    }
    rest = kt->q_len - used;
    memmove(kt->queue, kt->queue + used, rest * sizeof(*kt->queue));
    kt->q_len = rest;
    if (kt->broken) {
        char why[256];
        if (rebuild(kt, why, sizeof(why)) != 0)
            sottod_log(SOTTOD_LOG_ERROR, "kt_rebuild_failed", "reason=\"%s\"", why);
        goto out;
    }
    if (k == 0) {
        if (kt->q_len > 0 && used > 0) {
            free(items);
            free(rows);
            sodium_memzero(entries, take * sizeof(*entries));
            free(entries);
            start_batch(kt);
            return;
        }
        goto out;
    }
    ts = head_ts(kt, kt->have_head ? kt->newest.timestamp_ms : 0);
    if (make_head(kt, kt->log, pos + k, ts, &kt->batch_head) != 0) {
        kt->broken = true;
        goto out;
    }
    rec.size = kt->batch_head.size;
    rec.ts_ms = kt->batch_head.timestamp_ms;
    memcpy(rec.signature, kt->batch_head.signature, sizeof(rec.signature));
    if (sottod_store_kt_append(kt->srv->store, rows, k, entries, k, &rec, batch_done, kt) !=
        SOTTOD_STORE_OK) {
        sottod_log(SOTTOD_LOG_ERROR, "kt_batch_failed", "reason=\"submit refused\"");
        kt->broken = true; /* current is ahead of the store */
        goto out;
    }
    kt->inflight = true;
out:
    free(items);
    free(rows);
    if (entries != NULL) {
        sodium_memzero(entries, take * sizeof(*entries));
        free(entries);
    }
}

/* Rebuilds `current` and the log from kt_log (after a failed batch), then
 * reconciles. */
static int rebuild(sottod_kt *kt, char *why, size_t cap)
{
    sotto_kt_directory *d = NULL;
    sotto_merkle_log *l = NULL;
    uint64_t n = 0;

    if (sotto_kt_directory_new(&d) != SOTTO_OK || sotto_merkle_log_new(&l) != SOTTO_OK) {
        sotto_kt_directory_free(d);
        snprintf(why, cap, "out of memory");
        return -1;
    }
    if (replay(kt, d, l, 0, UINT64_MAX, &n, why, cap) != 0) {
        sotto_kt_directory_free(d);
        sotto_merkle_log_free(l);
        return -1;
    }
    sotto_kt_directory_free(kt->current);
    sotto_merkle_log_free(kt->log);
    kt->current = d;
    kt->log = l;
    kt->durable = n;
    kt->broken = false;
    kt->q_len = 0;
    return reconcile(kt, why, cap);
}

/* ---- heads over time --------------------------------------------------------------- */

static void head_done(void *arg, const sottod_store_result *res)
{
    sottod_kt *kt = arg;
    kt->head_inflight = false;
    if (res->status == SOTTOD_STORE_OK) {
        kt->newest = kt->batch_head;
        kt->have_head = true;
        if (kt->n_auditors == 0)
            publish_unaudited(kt, &kt->newest);
    } else {
        sottod_log_store_error(kt->srv, "kt_head_failed", "kt_head_add", res->status);
    }
    start_batch(kt);
}

/* Signs a fresh head for the durable size when the newest is older than
 * kt_head_interval_s. */
static void maybe_resign(sottod_kt *kt)
{
    sottod_kt_head_rec rec;
    uint64_t t = now_ms();

    if (kt->inflight || kt->head_inflight || kt->broken || kt->durable == 0 || kt->srv->draining)
        return;
    if (kt->have_head && kt->newest.size == kt->durable &&
        t < kt->newest.timestamp_ms + kt->srv->cfg.kt_head_interval_s * 1000)
        return;
    /* q <= kt_head_interval_s: the rounded time is after the newest's */
    t = head_ts(kt, kt->have_head ? kt->newest.timestamp_ms : 0);
    if (make_head(kt, kt->log, kt->durable, t, &kt->batch_head) != 0)
        return;
    rec.size = kt->batch_head.size;
    rec.ts_ms = kt->batch_head.timestamp_ms;
    memcpy(rec.signature, kt->batch_head.signature, sizeof(rec.signature));
    if (sottod_store_kt_head_add(kt->srv->store, &rec, head_done, kt) == SOTTOD_STORE_OK)
        kt->head_inflight = true;
}

static uint64_t timer_period_us(const sottod_kt *kt)
{
    uint64_t s = kt->srv->cfg.kt_head_interval_s / 4;
    if (s < 1)
        s = 1;
    if (s > 60)
        s = 60;
    return s * 1000000;
}

static void kt_tick(lws_sorted_usec_list_t *sul)
{
    sottod_kt *kt = lws_container_of(sul, sottod_kt, timer);
    if (!kt->srv->draining) {
        maybe_resign(kt);
        start_batch(kt);
        lws_sul_schedule(kt->srv->ctx, 0, &kt->timer, kt_tick, (lws_usec_t)timer_period_us(kt));
    }
}

void sottod_kt_schedule(sottod_server *srv)
{
    sottod_kt *kt = srv->kt;
    if (kt == NULL || srv->ctx == NULL)
        return;
    kt->timer_on = true;
    lws_sul_schedule(srv->ctx, 0, &kt->timer, kt_tick, (lws_usec_t)timer_period_us(kt));
}

/* ---- test hooks --------------------------------------------------------------------- */

#ifdef SOTTOD_TEST_HOOKS
/*
 * SOTTOD_TEST_KT_FORK=viewer:target -- a hostile operator that forges an
 * identity for target and shows it to viewer alone (sottod-test only).
 *
 * At the first request of viewer that needs it (get_bundle or
 * get_device_list of target, or any KT request), once target's entry is in
 * the published directory, the server makes with libsotto: a forged account
 * key pair; for each of target's real devices (same device id, registration
 * id and capabilities, so the server's send checks accept viewer's sends) a
 * forged identity key pair, auth key and signed prekey (XEdDSA by the forged
 * identity key); and a device list for target's username (the real version)
 * signed by the forged account key. One-time prekeys are made as bundles
 * are taken. Private keys are dropped at once: the hook shows what a client
 * does with the forgery, it does not decrypt.
 *
 * viewer's KT answers come from a FORK: the published log, then one leaf
 * where target's index commits to the forged value (forged account key,
 * SHA-256 of the forged list, its version; counter + 1), then every later
 * published update except target's own (folded in as they are published, so
 * viewer's view stays consistent with itself), under heads signed by the
 * server key and never countersigned. Everyone else sees the real state;
 * viewer sees the real values of every other user. Not followed: later
 * changes of target's real devices (the forged list keeps the devices of
 * the first build).
 */
typedef struct kt_forged {
    sottod_device_list_rec list;              /* forged account key and signed list */
    size_t n;                                 /* devices */
    sottod_bundle dev[SOTTO_DEVICE_LIST_MAX]; /* device id order; no one-time prekey */
    uint32_t last_prekey;                     /* id of the last one-time prekey made */
} kt_forged;

static int parse_fork(sottod_kt *kt, const char *v, char *why, size_t cap)
{
    const char *a = strchr(v, ':'), *b = a != NULL ? strchr(a + 1, ':') : NULL;
    size_t n1, n2;
    if (a == NULL)
        goto bad;
    n1 = (size_t)(a - v);
    n2 = b != NULL ? (size_t)(b - a - 1) : strlen(a + 1);
    if (n1 == 0 || n2 == 0 || n1 > SOTTOD_USERNAME_MAX || n2 > SOTTOD_USERNAME_MAX)
        goto bad;
    memcpy(kt->fork_viewer, v, n1);
    memcpy(kt->fork_target, a + 1, n2);
    /* A third field (the impostor of an earlier version of the hook) is
     * accepted and ignored: the forged identity replaces it. */
    sottod_log(SOTTOD_LOG_WARN, "test_hook",
               "kt_fork viewer=%s target=%s: this server forges an identity for %s and shows "
               "it to %s%s",
               kt->fork_viewer, kt->fork_target, kt->fork_target, kt->fork_viewer,
               b != NULL ? " (third field ignored)" : "");
    return 0;
bad:
    snprintf(why, cap, "SOTTOD_TEST_KT_FORK must be viewer:target");
    return -1;
}

static void fork_free(sottod_kt *kt)
{
    sotto_kt_directory_free(kt->fork_dir);
    sotto_merkle_log_free(kt->fork_log);
    kt->fork_dir = NULL;
    kt->fork_log = NULL;
    kt->fork_built = false;
    kt->fork_real = 0;
    sodium_memzero(&kt->fork_entry, sizeof(kt->fork_entry));
}

/* Makes kt->forged for fork_target from its real signed list. 0 or -1. */
static int forge_identity(sottod_kt *kt)
{
    sottod_store *st = kt->srv->store;
    sottod_account acct;
    sottod_device_list_rec *real = malloc(sizeof(*real));
    sotto_device_list *l = malloc(sizeof(*l));
    kt_forged *f = calloc(1, sizeof(*f));
    sotto_key_pair account, id;
    sotto_signed_prekey spk;
    uint8_t first_sk[crypto_sign_SECRETKEYBYTES];
    int rc = -1;

    memset(&account, 0, sizeof(account));
    memset(&id, 0, sizeof(id));
    memset(&spk, 0, sizeof(spk));
    memset(first_sk, 0, sizeof(first_sk));
    if (real == NULL || l == NULL || f == NULL ||
        sottod_store_account_lookup(st, kt->fork_target, &acct) != SOTTOD_STORE_OK ||
        sottod_store_device_list_get(st, acct.account_id, real) != SOTTOD_STORE_OK ||
        !real->present || sotto_device_list_parse(l, real->list, real->len, NULL) != SOTTO_OK ||
        sotto_identity_key_pair_generate(&account) != SOTTO_OK)
        goto out;
    l->timestamp_ms = now_ms();
    for (size_t i = 0; i < l->n_devices; i++) {
        sotto_device_entry *e = &l->devices[i];
        sottod_bundle *b = &f->dev[i];
        uint8_t sk[crypto_sign_SECRETKEYBYTES];
        int bad = sotto_identity_key_pair_generate(&id) != SOTTO_OK ||
                  crypto_sign_keypair(e->auth_key, sk) != 0 ||
                  sotto_signed_prekey_generate(&spk, &id, 1, now_ms()) != SOTTO_OK;
        if (!bad && i == 0)
            memcpy(first_sk, sk, sizeof(first_sk));
        e->identity_key = id.pub;
        b->device_id = e->device_id;
        b->registration_id = e->registration_id;
        memcpy(b->identity_key, id.pub.bytes, sizeof(b->identity_key));
        memcpy(b->auth_key, e->auth_key, sizeof(b->auth_key));
        /* later devices "added by" the first, as linking does */
        if (!bad && i > 0) {
            b->added_by = f->dev[0].device_id;
            bad = sotto_add_device_sign(b->add_signature, first_sk, kt->fork_target, b->auth_key,
                                        b->identity_key, b->registration_id) != SOTTO_OK;
        }
        b->has_signed_prekey = true;
        b->signed_prekey_id = spk.id;
        memcpy(b->signed_prekey, spk.key.pub.bytes, sizeof(b->signed_prekey));
        memcpy(b->signed_prekey_sig, spk.signature, sizeof(b->signed_prekey_sig));
        b->one_time_prekeys_left = UINT32_MAX; /* never "low": no notice to target's devices */
        sodium_memzero(sk, sizeof(sk));
        sotto_key_pair_wipe(&id);
        sodium_memzero(&spk, sizeof(spk));
        if (bad)
            goto out;
    }
    f->n = l->n_devices;
    f->list.present = true;
    memcpy(f->list.account_key, account.pub.bytes, sizeof(f->list.account_key));
    f->list.version = l->version;
    if (sotto_device_list_sign(l, &account, f->list.list, sizeof(f->list.list), &f->list.len) !=
        SOTTO_OK)
        goto out;
    kt->forged = f;
    f = NULL;
    sottod_log(SOTTOD_LOG_WARN, "test_hook_kt_forged", "target=%s devices=%zu version=%llu",
               kt->fork_target, kt->forged->n, (unsigned long long)kt->forged->list.version);
    rc = 0;
out:
    sotto_key_pair_wipe(&account);
    sotto_key_pair_wipe(&id);
    sodium_memzero(&spk, sizeof(spk));
    sodium_memzero(first_sk, sizeof(first_sk));
    free(real);
    free(l);
    free(f);
    return rc;
}

/* Folds the published updates [fork_real, pub_size) into the fork, except
 * target's own. 0 or -1. */
static int fork_fold(sottod_kt *kt)
{
    sottod_kt_log_row *rows = malloc(REPLAY_PAGE * sizeof(*rows));
    int rc = -1;

    if (rows == NULL)
        return -1;
    while (kt->fork_real < kt->pub_size) {
        size_t n = 0, want = REPLAY_PAGE;
        if (kt->pub_size - kt->fork_real < want)
            want = (size_t)(kt->pub_size - kt->fork_real);
        if (sottod_store_kt_log_read(kt->srv->store, kt->fork_real, want, rows, &n) !=
                SOTTOD_STORE_OK ||
            n == 0)
            goto out;
        for (size_t i = 0; i < n; i++) {
            sotto_kt_update u;
            uint8_t root[32], leaf[32];
            if (rows[i].pos != kt->fork_real)
                goto out;
            kt->fork_real++;
            if (sodium_memcmp(rows[i].index, kt->fork_entry.index, 32) == 0)
                continue; /* target's real update: the viewer keeps the forgery */
            row_to_update(&rows[i], &u);
            if (sotto_kt_directory_apply(kt->fork_dir, &u, root) != SOTTO_OK ||
                sotto_kt_leaf_hash(leaf, root, u.timestamp_ms) != SOTTO_OK ||
                sotto_merkle_log_append(kt->fork_log, leaf) != SOTTO_OK)
                goto out;
        }
    }
    rc = 0;
out:
    free(rows);
    return rc;
}

/* Builds the fork on the published state (first call), folds in what was
 * published since, and signs a fresh fork head when anything changed or
 * the published head was re-signed. 0, or -1: serve the real state. */
static int fork_sync(sottod_kt *kt)
{
    sottod_store *st = kt->srv->store;
    sottod_kt_entry te;
    sotto_kt_value v;
    sotto_kt_update u;
    uint8_t root[32], leaf[32];
    char why[256];
    uint64_t n = 0, day = now_ms() / DAY_MS * DAY_MS, t;
    bool sign = false;
    int rc = -1;

    if (!kt->have_pub)
        return -1;
    memset(&te, 0, sizeof(te));
    if (!kt->fork_built) {
        if (sottod_store_kt_entry_get(st, kt->fork_target, &te) != SOTTOD_STORE_OK ||
            te.pos >= kt->pub_size)
            goto out; /* target not published yet */
        if (kt->forged == NULL && forge_identity(kt) != 0)
            goto out;
        if (sotto_kt_directory_new(&kt->fork_dir) != SOTTO_OK ||
            sotto_merkle_log_new(&kt->fork_log) != SOTTO_OK ||
            replay(kt, kt->fork_dir, kt->fork_log, 0, kt->pub_size, &n, why, sizeof(why)) != 0 ||
            n != kt->pub_size)
            goto out;
        kt->fork_entry = te;
        memcpy(kt->fork_entry.value, kt->forged->list.account_key, 33);
        if (sotto_kt_device_list_hash(kt->fork_entry.value + 33, kt->forged->list.list,
                                      kt->forged->list.len) != SOTTO_OK)
            goto out;
        put_u64(kt->fork_entry.value + 65, kt->forged->list.version);
        value_parse(kt->fork_entry.value, &v);
        randombytes_buf(kt->fork_entry.opening, sizeof(kt->fork_entry.opening));
        memset(&u, 0, sizeof(u));
        u.timestamp_ms = sotto_kt_directory_last_timestamp(kt->fork_dir);
        if (day > u.timestamp_ms)
            u.timestamp_ms = day;
        memcpy(u.index, te.index, 32);
        u.counter = sotto_kt_directory_counter(kt->fork_dir, te.index) + 1;
        if (sotto_kt_value_commitment(u.commitment, kt->fork_entry.opening, kt->fork_target, &v) !=
                SOTTO_OK ||
            sotto_kt_directory_apply(kt->fork_dir, &u, root) != SOTTO_OK ||
            sotto_kt_leaf_hash(leaf, root, u.timestamp_ms) != SOTTO_OK ||
            sotto_merkle_log_append(kt->fork_log, leaf) != SOTTO_OK)
            goto out;
        kt->fork_entry.counter = u.counter;
        kt->fork_entry.pos = kt->pub_size;
        kt->fork_real = kt->pub_size;
        kt->fork_built = true;
        sign = true;
        sottod_log(SOTTOD_LOG_WARN, "test_hook_kt_fork_built", "size=%llu forged_at=%llu",
                   (unsigned long long)kt->pub_size + 1, (unsigned long long)kt->pub_size);
    }
    if (kt->pub_size > kt->fork_real) {
        if (fork_fold(kt) != 0)
            goto out;
        sign = true;
    }
    if (sign || kt->pub.head.timestamp_ms > kt->fork_head.head.timestamp_ms) {
        t = now_ms() > kt->pub.head.timestamp_ms ? now_ms() : kt->pub.head.timestamp_ms;
        if (t < kt->fork_head.head.timestamp_ms)
            t = kt->fork_head.head.timestamp_ms;
        memset(&kt->fork_head, 0, sizeof(kt->fork_head));
        if (make_head(kt, kt->fork_log, sotto_merkle_log_size(kt->fork_log), t,
                      &kt->fork_head.head) != 0)
            goto out;
    }
    rc = 0;
out:
    sodium_memzero(&te, sizeof(te));
    if (rc != 0 && kt->fork_built) {
        sottod_log(SOTTOD_LOG_ERROR, "test_hook_kt_fork_failed", NULL);
        fork_free(kt);
    } else if (rc != 0) {
        fork_free(kt);
    }
    return rc;
}

static bool fork_applies(sottod_kt *kt, const char *viewer)
{
    return kt->fork_viewer[0] != '\0' && viewer != NULL && strcmp(viewer, kt->fork_viewer) == 0 &&
           fork_sync(kt) == 0;
}

const sottod_device_list_rec *sottod_kt_test_forged_list(sottod_server *srv, const char *viewer,
                                                         const char *target)
{
    sottod_kt *kt = srv->kt;
    if (kt == NULL || target == NULL || strcmp(target, kt->fork_target) != 0 ||
        !fork_applies(kt, viewer))
        return NULL;
    return &kt->forged->list;
}

bool sottod_kt_test_forged_bundles(sottod_server *srv, const char *viewer, const char *target,
                                   uint32_t device_id, sottod_bundle *out, size_t cap, size_t *n)
{
    sottod_kt *kt = srv->kt;
    *n = 0;
    if (sottod_kt_test_forged_list(srv, viewer, target) == NULL)
        return false;
    for (size_t i = 0; i < kt->forged->n && *n < cap; i++) {
        sottod_bundle *b = &out[*n];
        sotto_prekey pk;
        if (device_id != 0 && kt->forged->dev[i].device_id != device_id)
            continue;
        *b = kt->forged->dev[i];
        if (sotto_prekeys_generate(&pk, kt->forged->last_prekey, 1) == SOTTO_OK) {
            kt->forged->last_prekey = pk.id;
            b->has_one_time_prekey = true;
            b->one_time_prekey.id = pk.id;
            memcpy(b->one_time_prekey.pub, pk.key.pub.bytes, sizeof(b->one_time_prekey.pub));
        }
        sodium_memzero(&pk, sizeof(pk));
        (*n)++;
    }
    return true;
}

/* INJECT: an update for username with its account key, version + 1 and
 * the hash of random bytes (a list the account never signed). */
static int inject(sottod_kt *kt, const char *username, char *why, size_t cap)
{
    sottod_account acct;
    sottod_device_list_rec *l = malloc(sizeof(*l));
    uint8_t value[SOTTOD_KT_VALUE_BYTES];
    int rc = -1;

    if (l == NULL ||
        sottod_store_account_lookup(kt->srv->store, username, &acct) != SOTTOD_STORE_OK ||
        sottod_store_device_list_get(kt->srv->store, acct.account_id, l) != SOTTOD_STORE_OK ||
        !l->present) {
        snprintf(why, cap, "SOTTOD_TEST_KT_INJECT: no account with a device list: %s", username);
        goto out;
    }
    memcpy(value, l->account_key, 33);
    randombytes_buf(value + 33, 32);
    put_u64(value + 65, l->version + 1);
    if (queue_push(kt, username, value) != 0) {
        snprintf(why, cap, "out of memory");
        goto out;
    }
    /* Searches serve this name's entry as stored, although it is not the
     * list the server serves: a hostile server publishes the injected
     * value and shows it (without this, a search would answer PENDING
     * until the next start's reconcile and the owner would never see it). */
    snprintf(kt->inject_name, sizeof(kt->inject_name), "%s", username);
    sottod_log(SOTTOD_LOG_WARN, "test_hook",
               "kt_inject=%s version=%llu: this server publishes a device list %s never signed",
               username, (unsigned long long)l->version + 1, username);
    rc = 0;
out:
    free(l);
    return rc;
}
#endif

/* The state `viewer` sees. */
static bool view_of(sottod_kt *kt, const char *viewer, kt_view *v)
{
    memset(v, 0, sizeof(*v));
#ifdef SOTTOD_TEST_HOOKS
    if (fork_applies(kt, viewer)) {
        v->dir = kt->fork_dir;
        v->log = kt->fork_log;
        v->head = &kt->fork_head;
        v->size = kt->fork_head.head.size;
        v->real_size = kt->pub_size;
        v->fork_entry = &kt->fork_entry;
        return true;
    }
#else
    (void)viewer;
#endif
    if (!kt->have_pub)
        return false;
    v->dir = kt->published;
    v->log = kt->log;
    v->head = &kt->pub;
    v->size = kt->pub.head.size;
    v->real_size = kt->pub.head.size;
    return true;
}

/* ---- start / stop ----------------------------------------------------------------- */

int sottod_kt_start(sottod_server *srv, char *why, size_t cap)
{
    sottod_kt *kt = calloc(1, sizeof(*kt));
    sottod_kt_head_rec rec;
    sotto_kt_audited_head best;
    bool have_best = false, any_head;
    uint64_t n = 0;
    int64_t t0 = sottod_mono_us();
    int s;

    if (kt == NULL) {
        snprintf(why, cap, "out of memory");
        return -1;
    }
    kt->srv = srv;
    srv->kt = kt;
    if (sottod_config_kt_auditors(srv->cfg.kt_auditors, kt->auditors, &kt->n_auditors, why, cap) !=
        0)
        goto fail;
    for (size_t i = 0; i < kt->n_auditors; i++) {
        if (crypto_core_ed25519_is_valid_point(kt->auditors[i]) != 1) {
            snprintf(why, cap, "kt_auditors: key %zu is not a valid Ed25519 public key", i + 1);
            goto fail;
        }
    }
    s = sottod_store_kt_head_latest(srv->store, &rec);
    if (s != SOTTOD_STORE_OK && s != SOTTOD_STORE_NOT_FOUND) {
        snprintf(why, cap, "cannot read the key-transparency heads");
        goto fail;
    }
    any_head = s == SOTTOD_STORE_OK;
    if (load_keys(kt, srv->cfg.data_dir, !any_head, why, cap) != 0)
        goto fail;
    if (sotto_kt_directory_new(&kt->current) != SOTTO_OK ||
        sotto_kt_directory_new(&kt->published) != SOTTO_OK ||
        sotto_merkle_log_new(&kt->log) != SOTTO_OK) {
        snprintf(why, cap, "out of memory");
        goto fail;
    }
    if (replay(kt, kt->current, kt->log, 0, UINT64_MAX, &n, why, cap) != 0)
        goto fail;
    kt->durable = n;
    /* The newest head, if it still verifies against the log as replayed;
     * else (an edited or truncated log) a fresh one signs what is there. */
    if (any_head && head_from_rec(kt, &rec, &kt->newest) && rec.size == n) {
        kt->have_head = true;
    } else if (n > 0) {
        int status = SOTTOD_STORE_ERR;
        if (any_head)
            sottod_log(SOTTOD_LOG_WARN, "kt_head_resigned",
                       "reason=\"the newest stored head does not match kt_log\" size=%llu",
                       (unsigned long long)n);
        if (make_head(kt, kt->log, n, head_ts(kt, any_head ? rec.ts_ms : 0), &kt->newest) != 0) {
            snprintf(why, cap, "cannot sign a tree head");
            goto fail;
        }
        rec.size = n;
        rec.ts_ms = kt->newest.timestamp_ms;
        memcpy(rec.signature, kt->newest.signature, sizeof(rec.signature));
        if (sottod_store_kt_head_add(srv->store, &rec, sync_done, &status) != SOTTOD_STORE_OK ||
            sottod_store_drain(srv->store) != SOTTOD_STORE_OK || status != SOTTOD_STORE_OK) {
            snprintf(why, cap, "cannot store a tree head");
            goto fail;
        }
        kt->have_head = true;
    }
    if (kt->n_auditors == 0) {
        have_best = kt->have_head;
        memset(&best, 0, sizeof(best));
        best.head = kt->newest;
    } else if (find_published(kt, &best, &have_best) != 0) {
        snprintf(why, cap, "cannot read the countersignatures");
        goto fail;
    }
    if (have_best) {
        publish(kt, &best);
        if (!kt->have_pub) {
            snprintf(why, cap, "cannot replay the published key directory");
            goto fail;
        }
    }
    sottod_log(SOTTOD_LOG_INFO, "kt_replayed",
               "log_size=%llu published=%llu auditors=%zu ms=%lld memory_kb=%zu",
               (unsigned long long)n, (unsigned long long)kt->pub_size, kt->n_auditors,
               (long long)((sottod_mono_us() - t0) / 1000),
               (sotto_kt_directory_memory(kt->current) + sotto_kt_directory_memory(kt->published) +
                sotto_merkle_log_memory(kt->log)) /
                   1024);
    if (reconcile(kt, why, cap) != 0)
        goto fail;
#ifdef SOTTOD_TEST_HOOKS
    {
        const char *f = getenv("SOTTOD_TEST_KT_FORK");
        const char *inj = getenv("SOTTOD_TEST_KT_INJECT");
        if (f != NULL && f[0] != '\0' && parse_fork(kt, f, why, cap) != 0)
            goto fail;
        if (inj != NULL && inj[0] != '\0' && inject(kt, inj, why, cap) != 0)
            goto fail;
    }
#endif
    start_batch(kt);
    return 0;
fail:
    sottod_kt_stop(srv);
    return -1;
}

void sottod_kt_unschedule(sottod_server *srv)
{
    sottod_kt *kt = srv->kt;
    if (kt != NULL && kt->timer_on) {
        lws_sul_cancel(&kt->timer);
        kt->timer_on = false;
    }
}

void sottod_kt_stop(sottod_server *srv)
{
    sottod_kt *kt = srv != NULL ? srv->kt : NULL;
    if (kt == NULL)
        return;
#ifdef SOTTOD_TEST_HOOKS
    fork_free(kt);
    if (kt->forged != NULL) {
        sodium_memzero(kt->forged, sizeof(*kt->forged));
        free(kt->forged);
    }
#endif
    sotto_kt_directory_free(kt->current);
    sotto_kt_directory_free(kt->published);
    sotto_merkle_log_free(kt->log);
    free(kt->queue);
    sotto_vrf_key_pair_wipe(&kt->vrf);
    sodium_memzero(kt->sign_sk, sizeof(kt->sign_sk));
    free(kt);
    srv->kt = NULL;
}

void sottod_kt_account_changed(sottod_server *srv, const char *username)
{
    sottod_kt *kt = srv->kt;
    if (kt == NULL || username == NULL || username[0] == '\0')
        return;
    if (queue_push(kt, username, NULL) != 0) {
        sottod_log(SOTTOD_LOG_ERROR, "kt_queue_failed", "reason=\"out of memory\"");
        return; /* reconciled at the next start */
    }
    start_batch(kt);
}

/* ---- API ------------------------------------------------------------------------- */

void sottod_kt_config(sottod_server *srv, uint8_t server_key[32], uint8_t vrf_key[32],
                      uint8_t auditors[][32], size_t *n_auditors, uint64_t *log_size)
{
    sottod_kt *kt = srv->kt;
    memcpy(server_key, kt->sign_pk, 32);
    memcpy(vrf_key, kt->vrf.pk, 32);
    for (size_t i = 0; i < kt->n_auditors; i++)
        memcpy(auditors[i], kt->auditors[i], 32);
    *n_auditors = kt->n_auditors;
    *log_size = kt->durable;
}

static uint64_t pending_retry_ms(const sottod_kt *kt)
{
    if (kt->n_auditors == 0 || kt->inflight || kt->q_len > 0)
        return 1000;
    return 30000;
}

/* The audited head of v and the consistency path from known_size. A
 * known_size beyond the head gets the head without a path: the client
 * holds a larger head than this log has (a truncated log, or a data
 * directory restored from a backup), and this smaller signed head is its
 * evidence (a refusal would prove nothing). */
static int head_and_path(const kt_view *v, uint64_t known_size, sottod_kt_blob *head,
                         sottod_kt_blob *cons)
{
    uint8_t buf[SOTTO_KT_AUDITED_HEAD_MAX_BYTES];
    uint8_t(*path)[32] = NULL;
    uint8_t *enc = NULL;
    size_t len = 0, plen = 0;
    int rc = SOTTOD_KT_INTERNAL;

    memset(head, 0, sizeof(*head));
    memset(cons, 0, sizeof(*cons));
    if (sotto_kt_audited_head_encode(v->head, buf, sizeof(buf), &len) != SOTTO_OK ||
        blob_take(head, buf, len) != 0)
        goto out;
    if (known_size > 0 && known_size < v->size) {
        path = malloc(SOTTO_MERKLE_MAX_PROOF * sizeof(*path));
        enc = malloc(SOTTO_MERKLE_PROOF_MAX_BYTES);
        if (path == NULL || enc == NULL ||
            sotto_merkle_log_prove_consistency(v->log, known_size, v->size, path, &plen) !=
                SOTTO_OK ||
            sotto_merkle_proof_encode((const uint8_t(*)[32])path, plen, enc,
                                      SOTTO_MERKLE_PROOF_MAX_BYTES, &len) != SOTTO_OK ||
            blob_take(cons, enc, len) != 0)
            goto out;
    }
    rc = SOTTOD_KT_OK;
out:
    free(path);
    free(enc);
    if (rc != SOTTOD_KT_OK) {
        free(head->data);
        free(cons->data);
        memset(head, 0, sizeof(*head));
        memset(cons, 0, sizeof(*cons));
    }
    return rc;
}

int sottod_kt_search(sottod_server *srv, const char *viewer, const char *username,
                     uint64_t known_size, sottod_kt_blob *result, sottod_kt_blob *head,
                     sottod_kt_blob *consistency, uint64_t *retry_ms)
{
    sottod_kt *kt = srv->kt;
    sottod_store *st = srv->store;
    sottod_account acct;
    sottod_device_list_rec *l = NULL;
    sottod_kt_entry *e = NULL;
    sotto_kt_search_result *r = NULL;
    uint8_t *enc = NULL, value[SOTTOD_KT_VALUE_BYTES];
    size_t len = 0;
    kt_view v;
    int rc = SOTTOD_KT_INTERNAL, s;

    memset(result, 0, sizeof(*result));
    *retry_ms = pending_retry_ms(kt);
    s = sottod_store_account_lookup(st, username, &acct);
    if (s == SOTTOD_STORE_NOT_FOUND)
        return SOTTOD_KT_NOT_FOUND;
    if (s != SOTTOD_STORE_OK)
        return SOTTOD_KT_INTERNAL;
    if (!view_of(kt, viewer, &v))
        return SOTTOD_KT_PENDING;
    e = malloc(sizeof(*e));
    l = malloc(sizeof(*l));
    r = calloc(1, sizeof(*r));
    enc = malloc(SOTTO_KT_SEARCH_MAX_BYTES);
    if (e == NULL || l == NULL || r == NULL || enc == NULL)
        goto out;
    if (v.fork_entry != NULL && strcmp(username, v.fork_entry->username) == 0) {
        *e = *v.fork_entry;
    } else {
        s = sottod_store_kt_entry_get(st, username, e);
        if (s == SOTTOD_STORE_NOT_FOUND) {
            rc = SOTTOD_KT_PENDING;
            goto out;
        }
        if (s != SOTTOD_STORE_OK)
            goto out;
        /* The current value must be the one published. */
        s = sottod_store_device_list_get(st, acct.account_id, l);
        if (s != SOTTOD_STORE_OK)
            goto out;
        if (e->pos >= v.real_size || !l->present || value_of(l, value) != 0 ||
            (sodium_memcmp(value, e->value, sizeof(value)) != 0 && !INJECTED(kt, username))) {
            rc = SOTTOD_KT_PENDING;
            goto out;
        }
    }
    memcpy(r->vrf_proof, e->vrf_proof, sizeof(r->vrf_proof));
    memcpy(r->opening, e->opening, sizeof(r->opening));
    value_parse(e->value, &r->value);
    r->counter = sotto_kt_directory_counter(v.dir, e->index);
    r->leaf_timestamp_ms = sotto_kt_directory_last_timestamp(v.dir);
    if (r->counter != e->counter || sotto_kt_directory_root(v.dir, r->prefix_root) != SOTTO_OK ||
        sotto_kt_directory_prove(v.dir, e->index, &r->pt_proof) != SOTTO_OK ||
        sotto_merkle_log_prove_inclusion(v.log, v.size - 1, v.size, r->log_path,
                                         &r->log_path_len) != SOTTO_OK ||
        sotto_kt_search_result_encode(r, enc, SOTTO_KT_SEARCH_MAX_BYTES, &len) != SOTTO_OK) {
        sottod_log(SOTTOD_LOG_ERROR, "kt_search_failed", "reason=\"cannot build the proof\"");
        goto out;
    }
    rc = head_and_path(&v, known_size, head, consistency);
    if (rc == SOTTOD_KT_OK && blob_take(result, enc, len) != 0) {
        free(head->data);
        free(consistency->data);
        memset(head, 0, sizeof(*head));
        memset(consistency, 0, sizeof(*consistency));
        rc = SOTTOD_KT_INTERNAL;
    }
out:
    if (e != NULL) {
        sodium_memzero(e, sizeof(*e));
        free(e);
    }
    if (r != NULL) {
        sodium_memzero(r->opening, sizeof(r->opening));
        free(r);
    }
    free(l);
    free(enc);
    return rc;
}

int sottod_kt_head(sottod_server *srv, const char *viewer, uint64_t known_size,
                   sottod_kt_blob *head, sottod_kt_blob *consistency, uint64_t *retry_ms)
{
    kt_view v;
    *retry_ms = pending_retry_ms(srv->kt);
    if (!view_of(srv->kt, viewer, &v))
        return SOTTOD_KT_PENDING;
    return head_and_path(&v, known_size, head, consistency);
}

int sottod_kt_consistency(sottod_server *srv, const char *viewer, uint64_t size1, uint64_t size2,
                          sottod_kt_blob *proof, uint8_t root1[32], uint8_t root2[32])
{
    sottod_kt *kt = srv->kt;
    const sotto_merkle_log *log = kt->log;
    uint64_t limit = kt->durable;
    uint8_t(*path)[32] = NULL;
    uint8_t *enc = NULL;
    size_t plen = 0, len = 0;
    int rc = SOTTOD_KT_INTERNAL;
#ifdef SOTTOD_TEST_HOOKS
    kt_view v;
    if (view_of(kt, viewer, &v) && v.fork_entry != NULL) {
        log = v.log;
        limit = v.size;
    }
#else
    (void)viewer;
#endif
    memset(proof, 0, sizeof(*proof));
    if (size1 < 1 || size1 > size2 || size2 > limit)
        return SOTTOD_KT_BAD_REQUEST;
    if (sotto_merkle_log_root(log, size1, root1) != SOTTO_OK ||
        sotto_merkle_log_root(log, size2, root2) != SOTTO_OK)
        return SOTTOD_KT_INTERNAL;
    if (size1 == size2)
        return SOTTOD_KT_OK;
    path = malloc(SOTTO_MERKLE_MAX_PROOF * sizeof(*path));
    enc = malloc(SOTTO_MERKLE_PROOF_MAX_BYTES);
    if (path != NULL && enc != NULL &&
        sotto_merkle_log_prove_consistency(log, size1, size2, path, &plen) == SOTTO_OK &&
        sotto_merkle_proof_encode((const uint8_t(*)[32])path, plen, enc,
                                  SOTTO_MERKLE_PROOF_MAX_BYTES, &len) == SOTTO_OK &&
        blob_take(proof, enc, len) == 0)
        rc = SOTTOD_KT_OK;
    free(path);
    free(enc);
    return rc;
}

int sottod_kt_audit(sottod_server *srv, uint64_t from, uint32_t max, sottod_kt_blob *updates,
                    size_t *n, uint8_t head[112], uint8_t pending[112], bool *has_pending)
{
    sottod_kt *kt = srv->kt;
    sottod_kt_log_row *rows = NULL;
    size_t got = 0, want;

    memset(updates, 0, sizeof(*updates));
    *n = 0;
    *has_pending = false;
    if (max == 0 || max > SOTTOD_KT_AUDIT_MAX)
        return SOTTOD_KT_BAD_REQUEST;
    if (!kt->have_head)
        return SOTTOD_KT_PENDING;
    /* from beyond the head: the head alone (no updates). The auditor
     * verified more than this log holds: the smaller signed head is its
     * evidence of a truncated log (a refusal would prove nothing). */
    if (sotto_kt_head_encode(&kt->newest, head) != SOTTO_OK)
        return SOTTOD_KT_INTERNAL;
    if (kt->have_pending && kt->n_auditors > 0) {
        if (sotto_kt_head_encode(&kt->pending, pending) != SOTTO_OK)
            return SOTTOD_KT_INTERNAL;
        *has_pending = true;
    }
    if (from >= kt->newest.size)
        return SOTTOD_KT_OK;
    want = kt->newest.size - from < max ? (size_t)(kt->newest.size - from) : max;
    if (want == 0)
        return SOTTOD_KT_OK;
    rows = malloc(want * sizeof(*rows));
    updates->data = malloc(want * SOTTO_KT_UPDATE_BYTES);
    if (rows == NULL || updates->data == NULL ||
        sottod_store_kt_log_read(srv->store, from, want, rows, &got) != SOTTOD_STORE_OK)
        goto fail;
    for (size_t i = 0; i < got; i++) {
        sotto_kt_update u;
        row_to_update(&rows[i], &u);
        if (sotto_kt_update_encode(&u, updates->data + i * SOTTO_KT_UPDATE_BYTES) != SOTTO_OK)
            goto fail;
    }
    updates->len = got * SOTTO_KT_UPDATE_BYTES;
    *n = got;
    free(rows);
    return SOTTOD_KT_OK;
fail:
    free(rows);
    free(updates->data);
    memset(updates, 0, sizeof(*updates));
    return SOTTOD_KT_INTERNAL;
}

typedef struct cosign_ctx {
    sottod_kt *kt;
    sotto_kt_tree_head head;
    sottod_kt_cosign_fn done;
    void *arg;
} cosign_ctx;

static void cosign_done(void *arg, const sottod_store_result *res)
{
    cosign_ctx *cx = arg;
    sottod_kt *kt = cx->kt;
    sotto_kt_audited_head ah;
    bool published = false;
    int status = SOTTOD_KT_OK;

    if (res->status != SOTTOD_STORE_OK) {
        sottod_log_store_error(kt->srv, "kt_cosig_failed", "kt_cosig_add", res->status);
        status = res->status == SOTTOD_STORE_NOT_FOUND ? SOTTOD_KT_NOT_FOUND : SOTTOD_KT_INTERNAL;
    } else if (collect_cosigs(kt, &cx->head, &ah) != 0) {
        status = SOTTOD_KT_INTERNAL;
    } else if (ah.n_cosigs == kt->n_auditors) {
        if (!kt->have_pub || head_newer(&ah.head, &kt->pub.head)) {
            publish(kt, &ah);
            published = kt->have_pub && kt->pub.head.size == ah.head.size &&
                        kt->pub.head.timestamp_ms == ah.head.timestamp_ms;
        }
    } else if ((!kt->have_pub || head_newer(&ah.head, &kt->pub.head)) &&
               (!kt->have_pending || head_newer(&ah.head, &kt->pending))) {
        kt->pending = ah.head;
        kt->have_pending = true;
    }
    if (cx->done != NULL)
        cx->done(cx->arg, status, published);
    free(cx);
}

int sottod_kt_cosign(sottod_server *srv, const uint8_t *head, size_t head_len,
                     const uint8_t *auditor_key, size_t key_len, const uint8_t *sig, size_t sig_len,
                     sottod_kt_cosign_fn done, void *arg)
{
    sottod_kt *kt = srv->kt;
    sotto_kt_tree_head h;
    sottod_kt_head_rec rec;
    sottod_kt_cosig_rec c;
    uint8_t root[32];
    cosign_ctx *cx;

    if (head_len != SOTTO_KT_HEAD_BYTES || key_len != 32 || sig_len != SOTTO_KT_SIGNATURE_BYTES)
        return SOTTOD_KT_BAD_REQUEST;
    if (!auditor_known(kt, auditor_key))
        return SOTTOD_KT_FORBIDDEN;
    if (sotto_kt_head_parse(head, head_len, kt->sign_pk, &h) != SOTTO_OK || h.size > kt->durable ||
        sotto_merkle_log_root(kt->log, h.size, root) != SOTTO_OK ||
        sodium_memcmp(root, h.root, sizeof(root)) != 0 ||
        sottod_store_kt_head_get(srv->store, h.size, h.timestamp_ms, &rec) != SOTTOD_STORE_OK)
        return SOTTOD_KT_NOT_FOUND;
    if (sotto_kt_cosig_verify(sig, &h, auditor_key) != SOTTO_OK)
        return SOTTOD_KT_INVALID_SIGNATURE;
    if (kt->have_pub && !head_newer(&h, &kt->pub.head)) {
        /* the published head or an older one: nothing to gain, so nothing is
         * written (a replayed countersignature, which anyone can send before
         * login, costs no store write and no scan) */
        if (done != NULL)
            done(arg, SOTTOD_KT_OK, false);
        return SOTTOD_KT_OK;
    }
    cx = calloc(1, sizeof(*cx));
    if (cx == NULL)
        return SOTTOD_KT_INTERNAL;
    cx->kt = kt;
    cx->head = h;
    cx->done = done;
    cx->arg = arg;
    memset(&c, 0, sizeof(c));
    c.size = h.size;
    c.ts_ms = h.timestamp_ms;
    memcpy(c.auditor_key, auditor_key, 32);
    memcpy(c.signature, sig, 64);
    if (sottod_store_kt_cosig_add(srv->store, &c, cosign_done, cx) != SOTTOD_STORE_OK) {
        free(cx);
        return SOTTOD_KT_INTERNAL;
    }
    return SOTTOD_KT_OK;
}

/* ---- sottod --kt-info --------------------------------------------------------------- */

int sottod_kt_info(const char *data_dir, const char *auditors_text)
{
    sottod_kt kt;
    char why[512], db[SOTTOD_PATH_MAX + 16], hex[65];
    uint8_t auditors[SOTTO_KT_MAX_AUDITORS][32];
    size_t n_aud = 0;
    sottod_store_config scfg;
    sottod_store *st = NULL;
    uint64_t size = 0;
    int rc = 1;

    memset(&kt, 0, sizeof(kt));
    if (data_dir == NULL || data_dir[0] == '\0') {
        fprintf(stderr, "sottod --kt-info: data_dir is not set (--data-dir or --config)\n");
        return 2;
    }
    if (sottod_config_kt_auditors(auditors_text, auditors, &n_aud, why, sizeof(why)) != 0) {
        fprintf(stderr, "sottod --kt-info: %s\n", why);
        return 2;
    }
    if (sodium_init() < 0 || sotto_init() != SOTTO_OK)
        return 1;
    snprintf(db, sizeof(db), "%s/sottod.db", data_dir);
    if (access(db, F_OK) != 0) {
        fprintf(stderr,
                "sottod --kt-info: %s holds no sottod database (start sottod once with this data"
                " directory to create it and the key-transparency keys)\n",
                data_dir);
        goto out;
    }
    if (load_keys(&kt, data_dir, false, why, sizeof(why)) != 0) {
        fprintf(stderr, "sottod --kt-info: %s (start sottod once to create the keys)\n", why);
        goto out;
    }
    snprintf(db, sizeof(db), "%s/sottod.db", data_dir);
    memset(&scfg, 0, sizeof(scfg));
    scfg.path = db;
    scfg.must_exist = true;
    scfg.why = why;
    scfg.why_cap = sizeof(why);
    if (sottod_store_open(&scfg, &st) != SOTTOD_STORE_OK ||
        sottod_store_kt_log_size(st, &size) != SOTTOD_STORE_OK) {
        fprintf(stderr, "sottod --kt-info: %s\n", why[0] != '\0' ? why : "cannot read the log");
        goto out;
    }
    sodium_bin2hex(hex, sizeof(hex), kt.sign_pk, 32);
    printf("kt_server_key %s\n", hex);
    sodium_bin2hex(hex, sizeof(hex), kt.vrf.pk, 32);
    printf("kt_vrf_key %s\n", hex);
    printf("kt_log_size %llu\n", (unsigned long long)size);
    printf("kt_auditors");
    for (size_t i = 0; i < n_aud; i++) {
        sodium_bin2hex(hex, sizeof(hex), auditors[i], 32);
        printf("%s%s", i == 0 ? " " : ",", hex);
    }
    printf("%s\n", n_aud == 0 ? " none" : "");
    rc = 0;
out:
    sottod_store_close(st);
    sotto_vrf_key_pair_wipe(&kt.vrf);
    sodium_memzero(kt.sign_sk, sizeof(kt.sign_sk));
    return rc;
}
