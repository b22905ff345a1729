/*
 * bench/kt_dir_bench.c -- sotto-bench-kt-dir: the key-transparency
 * directory of issue 9 at 10^4, 10^5 and 10^6 accounts, in one run, beside
 * the cost of the primitives it is built from. docs/bench.md explains the
 * table.
 *
 * One directory (sotto_kt_directory) and one log (sotto_merkle_log) grow
 * from 0 to each size in turn; at each size:
 *  - build: the updates since the previous size (one per new account,
 *    counter 1) through sotto_kt_directory_apply, sotto_kt_leaf_hash and
 *    sotto_merkle_log_append; rate and memory held.
 *    Indices: the real VRF output (sotto_vrf_prove of "userNNN") for the
 *    first 10^4 accounts, random 32-byte indices beyond. A VRF output is
 *    uniformly random, so the tree has the same shape; proving 10^6 VRFs
 *    would add about 5 minutes to the run and measure nothing new.
 *  - search: for 1,000 random accounts among those with a real VRF proof
 *    (their indices are as random as the others'), the encoded
 *    sotto_kt_search_result the server hands out (VRF proof, opening,
 *    value, counter, prefix proof, log inclusion path of the last leaf):
 *    size mean and max; the server's cost to build it; the client's cost
 *    to check it (sotto_kt_search_result_parse + sotto_kt_search_verify)
 *    and, separately, the head it is checked against (parse +
 *    sotto_kt_audited_head_check with one auditor countersignature).
 *  - server: new accounts through the server's per-update work (as
 *    server/kt.c build_update does it: kt_entries lookup, VRF prove, fresh
 *    opening, commitment, directory apply, log append) and per batch one
 *    signed head and ONE sottod_store_kt_append, waited for until durable
 *    (sottod_store_drain): sottod's own store library, schema and pragmas
 *    (WAL, synchronous=FULL). The store's tables are first filled with the
 *    rows of every update so far (not timed). server/kt.c itself needs the
 *    event loop, so its loop is mirrored here. New names in batches of 64
 *    and of 1, and changes of existing names (VRF proof cached, as
 *    server/kt.c reuses it) in batches of 64; best of 3 rounds each (the
 *    machine is shared; every round's rate is printed).
 *  - auditor: a fresh sotto-auditor core (auditor/audit.c) catches up on
 *    the whole log through aud_feed in pages of 1,000 (the most a KtAudit
 *    answer carries): parse, apply, leaf hash, log append and its own
 *    SQLite record of each page; then aud_check_head of the newest head
 *    (the final root check).
 *  - primitives: VRF prove and verify, Ed25519 sign and verify, SHA-256 of
 *    64 bytes, one sotto_prefix_tree_set of a new index in a prefix tree of
 *    that size (best of 3 runs each).
 *
 * Clocks: CPU time of this process (CLOCK_PROCESS_CPUTIME_ID) for the
 * CPU-bound rows, so other work on the machine barely moves them; wall time
 * (CLOCK_MONOTONIC) for the rows that wait for the disk (server, auditor).
 *
 * Output: `bench kt_dir_<what> accounts=N key=value ...` lines as each size
 * finishes, then one table (rows: figures; columns: sizes).
 * Usage: sotto-bench-kt-dir [--quick | --max N]
 *   default 10^4, 10^5, 10^6; --quick = --max 100000; --max N (1000 ..
 *   10^7): the sizes up to N, and N itself.
 * Scratch files go to a fresh directory under $TMPDIR (or /tmp), removed at
 * the end.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>

#include "audit.h"
#include "sotto/keys.h"
#include "sotto/kt.h"
#include "sotto/merkle.h"
#include "sotto/prefix_tree.h"
#include "sotto/vrf.h"
#include "store/store.h"

#define SAMPLES 1000       /* searches per size */
#define VRF_ACCOUNTS 10000 /* accounts with a real VRF index */
#define AUDIT_PAGE 1000    /* updates per aud_feed (one KtAudit answer) */
#define SRV_BATCH 64       /* server batch size measured */
#define SRV_BATCHES 12     /* ... this many batches per round */
#define SRV_SINGLES 40     /* batches of one update per round */
#define SRV_ROUNDS 3       /* rounds of each; the best counts */
#define MAX_STAGES 5
#define MAX_ACCOUNTS 10000000ULL
#define DAY_MS UINT64_C(86400000)

/* One server measurement: updates/s (wall), the mean commit wait per batch
 * (wall: submit to durable, ms) and this thread's CPU per update outside
 * the commit (lookup, VRF, commitment, apply, append, head signature, us). */
typedef struct srv_result {
    double rate, commit_ms, cpu_us;
} srv_result;

typedef struct stage {
    uint64_t n, log_n; /* accounts, log entries */
    double build_s, build_rate, build_total_s;
    size_t dir_mem, log_mem;
    double bytes_mean, pt_bytes_mean, log_bytes;
    size_t bytes_max;
    double verify_med, verify_p99, head_med, answer_med;
    srv_result srv[3]; /* new names in 64s, new names one by one, changes in 64s */
    double aud_rate, aud_s, aud_root_us;
    double vrf_prove, vrf_verify, sign, sig_verify, sha, pt_set;
} stage;

/* An account with a real VRF index: what the server keeps in kt_entries. */
typedef struct vrf_user {
    char name[16];
    uint8_t vrf_proof[SOTTO_VRF_PROOF_BYTES];
    uint8_t index[SOTTO_PT_INDEX_BYTES]; /* first 32 bytes of the VRF output */
    uint8_t opening[SOTTO_KT_OPENING_BYTES];
    sotto_kt_value value;
} vrf_user;

static struct {
    sotto_kt_directory *dir;
    sotto_merkle_log *log;
    sotto_prefix_tree *pt; /* the same (index, leaf value) pairs: the primitive row */
    uint64_t pt_fed;
    uint8_t (*upd)[SOTTO_KT_UPDATE_BYTES]; /* every update, by log position */
    uint64_t cap;
    uint64_t day;
    sotto_vrf_key_pair vrf;
    uint8_t sign_pk[32], sign_sk[64], aud_pk[32], aud_sk[64];
    vrf_user *users;
    size_t n_users;
    char tmp[512], store_path[600];
    uint64_t store_rows;
    unsigned srv_names, srv_first, srv_first_end, srv_changed;
    double build_total;
} B;

static void rm_db(const char *path);

/* Removes the scratch directory (and the databases in it). */
static void cleanup(void)
{
    char p[700];

    if (B.tmp[0] == '\0')
        return;
    rm_db(B.store_path);
    snprintf(p, sizeof p, "%s/auditor.db", B.tmp);
    rm_db(p);
    if (rmdir(B.tmp) != 0)
        fprintf(stderr, "sotto-bench-kt-dir: cannot remove %s\n", B.tmp);
    B.tmp[0] = '\0';
}

static void die(const char *what)
{
    fprintf(stderr, "sotto-bench-kt-dir: %s failed\n", what);
    cleanup();
    exit(1);
}

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double thread_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double quantile(double *v, size_t n, double q)
{
    qsort(v, n, sizeof *v, cmp_double);
    return v[(size_t)(q * (double)(n - 1) + 0.5)];
}

static void random_value(sotto_kt_value *v)
{
    v->account_key[0] = 0x05;
    randombytes_buf(v->account_key + 1, sizeof v->account_key - 1);
    randombytes_buf(v->device_list_hash, sizeof v->device_list_hash);
    v->version = 1;
}

/* Applies u as log entry sotto_merkle_log_size(): directory, leaf, log. */
static void apply(const sotto_kt_update *u)
{
    uint8_t root[32], leaf[32];

    if (sotto_kt_directory_apply(B.dir, u, root) != SOTTO_OK ||
        sotto_kt_leaf_hash(leaf, root, u->timestamp_ms) != SOTTO_OK ||
        sotto_merkle_log_append(B.log, leaf) != SOTTO_OK)
        die("apply");
}

/* Records u as the update at log position pos (for the store and auditor). */
static void record(uint64_t pos, const sotto_kt_update *u)
{
    if (pos >= B.cap) {
        uint64_t cap = B.cap * 2;
        void *p = realloc(B.upd, cap * SOTTO_KT_UPDATE_BYTES);
        if (p == NULL)
            die("realloc");
        B.upd = p;
        B.cap = cap;
    }
    if (sotto_kt_update_encode(u, B.upd[pos]) != SOTTO_OK)
        die("update_encode");
}

/* The accounts with a real VRF index: names, proofs, values, openings. */
static void make_vrf_users(size_t n)
{
    uint8_t beta[SOTTO_VRF_OUTPUT_BYTES];
    double t0 = cpu_s();

    B.users = calloc(n, sizeof *B.users);
    if (B.users == NULL)
        die("calloc");
    for (size_t i = 0; i < n; i++) {
        vrf_user *u = &B.users[i];
        snprintf(u->name, sizeof u->name, "user%zu", i);
        if (sotto_vrf_prove(u->vrf_proof, &B.vrf, (const uint8_t *)u->name, strlen(u->name)) !=
                SOTTO_OK ||
            sotto_vrf_proof_to_hash(beta, u->vrf_proof) != SOTTO_OK)
            die("vrf_prove");
        memcpy(u->index, beta, sizeof u->index);
        random_value(&u->value);
        randombytes_buf(u->opening, sizeof u->opening);
    }
    B.n_users = n;
    printf("setup: %zu VRF proofs (the first accounts' indices) in %.1f s CPU\n", n, cpu_s() - t0);
    fflush(stdout);
}

/* Grows the directory to n accounts (one new account per update, appended
 * to the log); times apply + leaf + append. */
static void build_to(uint64_t n, stage *s)
{
    uint64_t acct = sotto_kt_directory_count(B.dir), from = sotto_merkle_log_size(B.log);
    uint64_t k = n - acct;
    sotto_kt_update *us = malloc((size_t)k * sizeof *us);
    double t0;

    if (us == NULL)
        die("malloc");
    for (uint64_t i = 0; i < k; i++) {
        uint64_t pos = from + i;
        sotto_kt_update *u = &us[i];
        memset(u, 0, sizeof *u);
        u->timestamp_ms = B.day;
        u->counter = 1;
        if (acct + i < B.n_users) {
            const vrf_user *vu = &B.users[acct + i];
            if (sotto_kt_value_commitment(u->commitment, vu->opening, vu->name, &vu->value) !=
                SOTTO_OK)
                die("commitment");
            memcpy(u->index, vu->index, sizeof u->index);
        } else {
            randombytes_buf(u->index, sizeof u->index);
            randombytes_buf(u->commitment, sizeof u->commitment); /* an HMAC output */
        }
        record(pos, u);
    }
    t0 = cpu_s();
    for (uint64_t i = 0; i < k; i++)
        apply(&us[i]);
    s->build_s = cpu_s() - t0;
    s->build_rate = (double)k / s->build_s;
    B.build_total += s->build_s;
    s->build_total_s = B.build_total;
    s->dir_mem = sotto_kt_directory_memory(B.dir);
    s->log_mem = sotto_merkle_log_memory(B.log);
    if (sotto_kt_directory_count(B.dir) != n || sotto_merkle_log_size(B.log) != from + k)
        die("build count");
    free(us);
}

/* Feeds the primitive row's prefix tree every update it has not seen. */
static void pt_sync(void)
{
    uint64_t n = sotto_merkle_log_size(B.log);
    sotto_kt_update u;
    uint8_t v[32];

    for (; B.pt_fed < n; B.pt_fed++) {
        if (sotto_kt_update_parse(B.upd[B.pt_fed], SOTTO_KT_UPDATE_BYTES, &u) != SOTTO_OK ||
            sotto_kt_leaf_value(v, u.counter, u.commitment) != SOTTO_OK ||
            sotto_prefix_tree_set(B.pt, u.index, v) != SOTTO_OK)
            die("pt_sync");
    }
}

/* The head of the current log, signed by the server, with one auditor
 * countersignature, on the wire. */
static size_t audited_head(sotto_kt_tree_head *h, uint8_t *out, size_t cap)
{
    sotto_kt_audited_head ah;
    uint8_t sig[SOTTO_KT_SIGNATURE_BYTES];
    size_t len = 0;

    memset(h, 0, sizeof *h);
    h->size = sotto_merkle_log_size(B.log);
    h->timestamp_ms = now_ms();
    memset(&ah, 0, sizeof ah);
    if (sotto_merkle_log_root(B.log, h->size, h->root) != SOTTO_OK ||
        sotto_kt_head_sign(h, B.sign_sk) != SOTTO_OK ||
        sotto_kt_cosign(sig, h, B.aud_sk) != SOTTO_OK)
        die("head");
    ah.head = *h;
    if (sotto_kt_audited_head_add(&ah, B.aud_pk, sig) != SOTTO_OK ||
        sotto_kt_audited_head_encode(&ah, out, cap, &len) != SOTTO_OK)
        die("audited head");
    return len;
}

static void bench_search(stage *s)
{
    sotto_kt_search_result *r = calloc(1, sizeof *r);
    uint8_t *enc = malloc(SOTTO_KT_SEARCH_MAX_BYTES);
    uint8_t ahead[SOTTO_KT_AUDITED_HEAD_MAX_BYTES], pt_enc[SOTTO_PT_PROOF_MAX_BYTES];
    double *ver = malloc(SAMPLES * sizeof *ver), *hd = malloc(SAMPLES * sizeof *hd);
    double *ans = malloc(SAMPLES * sizeof *ans);
    const uint8_t(*auditors)[32] = &B.aud_pk;
    sotto_kt_tree_head head;
    sotto_kt_audited_head ah;
    sotto_kt_value out;
    uint64_t n = sotto_merkle_log_size(B.log), bytes = 0, pt_bytes = 0;
    size_t len, pt_len, alen;
    double t0;

    if (r == NULL || enc == NULL || ver == NULL || hd == NULL || ans == NULL)
        die("malloc");
    alen = audited_head(&head, ahead, sizeof ahead);
    s->bytes_max = 0;
    for (size_t k = 0; k < SAMPLES; k++) {
        const vrf_user *u = &B.users[randombytes_uniform((uint32_t)B.n_users)];

        /* Server: what sottod_kt_search builds from its kt_entries row
         * (VRF proof and index cached there), in memory. */
        t0 = cpu_s();
        memset(r, 0, sizeof *r);
        memcpy(r->vrf_proof, u->vrf_proof, sizeof r->vrf_proof);
        memcpy(r->opening, u->opening, sizeof r->opening);
        r->value = u->value;
        r->counter = sotto_kt_directory_counter(B.dir, u->index);
        r->leaf_timestamp_ms = sotto_kt_directory_last_timestamp(B.dir);
        if (sotto_kt_directory_root(B.dir, r->prefix_root) != SOTTO_OK ||
            sotto_kt_directory_prove(B.dir, u->index, &r->pt_proof) != SOTTO_OK ||
            sotto_merkle_log_prove_inclusion(B.log, n - 1, n, r->log_path, &r->log_path_len) !=
                SOTTO_OK ||
            sotto_kt_search_result_encode(r, enc, SOTTO_KT_SEARCH_MAX_BYTES, &len) != SOTTO_OK)
            die("search answer");
        ans[k] = cpu_s() - t0;
        if (sotto_pt_proof_encode(&r->pt_proof, pt_enc, sizeof pt_enc, &pt_len) != SOTTO_OK)
            die("pt_proof_encode");
        bytes += len;
        pt_bytes += pt_len;
        if (len > s->bytes_max)
            s->bytes_max = len;
        s->log_bytes = 1.0 + 32.0 * (double)r->log_path_len;

        /* Client: the search result, then (separately) the head. */
        t0 = cpu_s();
        if (sotto_kt_search_result_parse(enc, len, r) != SOTTO_OK ||
            sotto_kt_search_verify(&out, B.vrf.pk, u->name, r, &head) != SOTTO_OK)
            die("search verify");
        ver[k] = cpu_s() - t0;
        if (sodium_memcmp(&out, &u->value, sizeof out) != 0)
            die("verified value");
        t0 = cpu_s();
        if (sotto_kt_audited_head_parse(ahead, alen, &ah) != SOTTO_OK ||
            sotto_kt_audited_head_check(&ah, B.sign_pk, auditors, 1, now_ms(),
                                        SOTTO_KT_DEFAULT_MAX_AGE_MS) != SOTTO_OK)
            die("head check");
        hd[k] = cpu_s() - t0;
    }
    s->bytes_mean = (double)bytes / SAMPLES;
    s->pt_bytes_mean = (double)pt_bytes / SAMPLES;
    s->answer_med = quantile(ans, SAMPLES, 0.5) * 1e6;
    s->verify_p99 = quantile(ver, SAMPLES, 0.99) * 1e6;
    s->verify_med = quantile(ver, SAMPLES, 0.5) * 1e6;
    s->head_med = quantile(hd, SAMPLES, 0.5) * 1e6;
    sodium_memzero(r->opening, sizeof r->opening);
    free(r);
    free(enc);
    free(ver);
    free(hd);
    free(ans);
}

/* ---- server: sottod's store op ------------------------------------------ */

static int exec_sql(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

/* Fills kt_log and kt_entries with the updates the store does not hold yet
 * (the build's accounts), directly, fast, not timed: the tables have the
 * size of the directory when the server rows are measured. */
static void store_fill(void)
{
    uint64_t n = sotto_merkle_log_size(B.log);
    sqlite3 *db = NULL;
    sqlite3_stmt *lg = NULL, *en = NULL;
    sotto_kt_update u;
    uint8_t proof[80], opening[32], value[73];
    char name[32];
    double t0 = wall_s();

    if (B.store_rows == n)
        return;
    if (sqlite3_open_v2(B.store_path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
        exec_sql(db, "PRAGMA synchronous=OFF; PRAGMA cache_size=-524288; BEGIN") != 0 ||
        sqlite3_prepare_v2(db,
                           "INSERT INTO kt_log(pos, ts_ms, vrf_index, counter, commitment)"
                           " VALUES(?1, ?2, ?3, ?4, ?5)",
                           -1, &lg, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db,
                           "INSERT INTO kt_entries(username, vrf_index, vrf_proof, opening,"
                           " value, counter, pos) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                           -1, &en, NULL) != SQLITE_OK)
        die("store fill: prepare");
    for (uint64_t pos = B.store_rows; pos < n; pos++) {
        if (sotto_kt_update_parse(B.upd[pos], SOTTO_KT_UPDATE_BYTES, &u) != SOTTO_OK)
            die("store fill: parse");
        snprintf(name, sizeof name, "user%" PRIu64, pos);
        randombytes_buf(proof, sizeof proof);
        randombytes_buf(opening, sizeof opening);
        randombytes_buf(value, sizeof value);
        if (sqlite3_bind_int64(lg, 1, (sqlite3_int64)pos) != SQLITE_OK ||
            sqlite3_bind_int64(lg, 2, (sqlite3_int64)u.timestamp_ms) != SQLITE_OK ||
            sqlite3_bind_blob(lg, 3, u.index, 32, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_bind_int64(lg, 4, (sqlite3_int64)u.counter) != SQLITE_OK ||
            sqlite3_bind_blob(lg, 5, u.commitment, 32, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_step(lg) != SQLITE_DONE || sqlite3_reset(lg) != SQLITE_OK ||
            sqlite3_bind_text(en, 1, name, -1, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_bind_blob(en, 2, u.index, 32, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_bind_blob(en, 3, proof, sizeof proof, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_bind_blob(en, 4, opening, sizeof opening, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_bind_blob(en, 5, value, sizeof value, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_bind_int64(en, 6, (sqlite3_int64)u.counter) != SQLITE_OK ||
            sqlite3_bind_int64(en, 7, (sqlite3_int64)pos) != SQLITE_OK ||
            sqlite3_step(en) != SQLITE_DONE || sqlite3_reset(en) != SQLITE_OK)
            die("store fill: insert");
    }
    if (sqlite3_finalize(lg) != SQLITE_OK || sqlite3_finalize(en) != SQLITE_OK ||
        exec_sql(db, "COMMIT; PRAGMA wal_checkpoint(TRUNCATE)") != 0 ||
        sqlite3_close(db) != SQLITE_OK)
        die("store fill: commit");
    printf("setup: store filled with %" PRIu64 " rows (kt_log, kt_entries) in %.1f s\n",
           n - B.store_rows, wall_s() - t0);
    fflush(stdout);
    B.store_rows = n;
}

static void append_done(void *arg, const sottod_store_result *res)
{
    *(int *)arg = res->status;
}

/* `batches` batches of `size` updates, as sottod's KT batch makes them
 * (server/kt.c build_update + start_batch). existing == 0: new accounts
 * srvN (kt_entries lookup finds nothing, VRF prove). existing != 0: the
 * next accounts of the first new-account run change their value (the
 * lookup finds the entry; its VRF index and proof are reused, counter + 1),
 * as for a linked or removed device. */
static srv_result bench_server(sottod_store *st, unsigned batches, unsigned size, int existing)
{
    sottod_kt_log_row *rows = calloc(size, sizeof *rows);
    sottod_kt_entry *entries = calloc(size, sizeof *entries);
    sottod_kt_entry prev;
    uint8_t beta[SOTTO_VRF_OUTPUT_BYTES], root[32], leaf[32];
    sotto_kt_tree_head h;
    sottod_kt_head_rec rec;
    srv_result res;
    double t0, tc, tw, commit = 0, work = 0;

    if (rows == NULL || entries == NULL)
        die("calloc");
    t0 = wall_s();
    for (unsigned b = 0; b < batches; b++) {
        uint64_t pos = sotto_merkle_log_size(B.log);
        int status = 1;

        tw = thread_s();
        for (unsigned k = 0; k < size; k++) {
            sottod_kt_entry *e = &entries[k];
            sottod_kt_log_row *row = &rows[k];
            sotto_kt_value v;
            sotto_kt_update u;
            unsigned name;

            memset(e, 0, sizeof *e);
            if (existing) {
                if (B.srv_changed == B.srv_first_end)
                    B.srv_changed = B.srv_first; /* round again: counter + 1 */
                name = B.srv_changed++;
            } else {
                name = B.srv_names++;
            }
            snprintf(e->username, sizeof e->username, "srv%u", name);
            if (sottod_store_kt_entry_get(st, e->username, &prev) !=
                (existing ? SOTTOD_STORE_OK : SOTTOD_STORE_NOT_FOUND))
                die("kt_entry_get");
            if (existing) {
                memcpy(e->index, prev.index, 32);
                memcpy(e->vrf_proof, prev.vrf_proof, sizeof e->vrf_proof);
            } else {
                if (sotto_vrf_prove(e->vrf_proof, &B.vrf, (const uint8_t *)e->username,
                                    strlen(e->username)) != SOTTO_OK ||
                    sotto_vrf_proof_to_hash(beta, e->vrf_proof) != SOTTO_OK)
                    die("vrf");
                memcpy(e->index, beta, 32);
            }
            random_value(&v); /* the server reads it from the account's list */
            if (sotto_kt_value_encode(&v, e->value) != SOTTO_OK)
                die("value_encode");
            randombytes_buf(e->opening, sizeof e->opening);
            memset(&u, 0, sizeof u);
            u.timestamp_ms = B.day;
            memcpy(u.index, e->index, 32);
            u.counter = sotto_kt_directory_counter(B.dir, e->index) + 1;
            if ((existing && u.counter != prev.counter + 1) ||
                sotto_kt_value_commitment(u.commitment, e->opening, e->username, &v) != SOTTO_OK ||
                sotto_kt_directory_apply(B.dir, &u, root) != SOTTO_OK ||
                sotto_kt_leaf_hash(leaf, root, u.timestamp_ms) != SOTTO_OK ||
                sotto_merkle_log_append(B.log, leaf) != SOTTO_OK)
                die("server update");
            e->counter = u.counter;
            e->pos = pos + k;
            row->pos = pos + k;
            row->ts_ms = u.timestamp_ms;
            memcpy(row->index, u.index, 32);
            row->counter = u.counter;
            memcpy(row->commitment, u.commitment, 32);
            record(pos + k, &u);
        }
        memset(&h, 0, sizeof h);
        h.size = pos + size;
        h.timestamp_ms = now_ms();
        if (sotto_merkle_log_root(B.log, h.size, h.root) != SOTTO_OK ||
            sotto_kt_head_sign(&h, B.sign_sk) != SOTTO_OK)
            die("head sign");
        rec.size = h.size;
        rec.ts_ms = h.timestamp_ms;
        memcpy(rec.signature, h.signature, sizeof rec.signature);
        work += thread_s() - tw;
        tc = wall_s();
        if (sottod_store_kt_append(st, rows, size, entries, size, &rec, append_done, &status) !=
                SOTTOD_STORE_OK ||
            sottod_store_drain(st) != SOTTOD_STORE_OK || status != SOTTOD_STORE_OK)
            die("sottod_store_kt_append");
        commit += wall_s() - tc;
    }
    res.rate = (double)batches * size / (wall_s() - t0);
    res.commit_ms = commit / batches * 1e3;
    res.cpu_us = work / ((double)batches * size) * 1e6;
    B.store_rows = sotto_merkle_log_size(B.log);
    sodium_memzero(entries, size * sizeof *entries);
    sodium_memzero(&prev, sizeof prev);
    free(entries);
    free(rows);
    return res;
}

/* The best of SRV_ROUNDS rounds (the machine is shared: the best round is
 * the one least disturbed; every round's rate is printed). */
static srv_result best_of(sottod_store *st, unsigned batches, unsigned size, int existing,
                          const char *what)
{
    srv_result best = {0, 0, 0}, r;

    printf("server %s: updates/s by round", what);
    for (int i = 0; i < SRV_ROUNDS; i++) {
        r = bench_server(st, batches, size, existing);
        printf(" %.0f", r.rate);
        if (r.rate > best.rate)
            best = r;
    }
    printf("\n");
    return best;
}

static void bench_store(stage *s)
{
    sottod_store_config cfg;
    sottod_store *st = NULL;
    char why[256] = "";

    store_fill();
    memset(&cfg, 0, sizeof cfg);
    cfg.path = B.store_path;
    cfg.durability = SOTTOD_DURABILITY_FULL; /* sottod's default */
    cfg.why = why;
    cfg.why_cap = sizeof why;
    if (sottod_store_open(&cfg, &st) != SOTTOD_STORE_OK) {
        fprintf(stderr, "sotto-bench-kt-dir: store: %s\n", why);
        cleanup();
        exit(1);
    }
    B.srv_first = B.srv_changed = B.srv_names;
    s->srv[0] = best_of(st, SRV_BATCHES, SRV_BATCH, 0, "new names, batches of 64");
    B.srv_first_end = B.srv_names;
    s->srv[1] = best_of(st, SRV_SINGLES, 1, 0, "new names, batches of 1");
    s->srv[2] = best_of(st, SRV_BATCHES, SRV_BATCH, 1, "changes, batches of 64");
    sottod_store_close(st);
}

/* ---- auditor ------------------------------------------------------------- */

static void rm_db(const char *path)
{
    char p[700];
    const char *sfx[] = {"", "-wal", "-shm", "-journal"};

    for (size_t i = 0; i < sizeof sfx / sizeof sfx[0]; i++) {
        snprintf(p, sizeof p, "%s%s", path, sfx[i]);
        if (unlink(p) != 0 && errno != ENOENT)
            fprintf(stderr, "sotto-bench-kt-dir: cannot remove %s\n", p);
    }
}

static void bench_auditor(stage *s)
{
    uint64_t n = sotto_merkle_log_size(B.log);
    const uint8_t **ptrs = malloc(AUDIT_PAGE * sizeof *ptrs);
    size_t *lens = malloc(AUDIT_PAGE * sizeof *lens);
    uint8_t wire[SOTTO_KT_HEAD_BYTES];
    sotto_kt_tree_head h, out;
    aud_config cfg;
    aud_state *as = NULL;
    char path[700], err[AUD_REASON_MAX];
    double t0;

    if (ptrs == NULL || lens == NULL)
        die("malloc");
    snprintf(path, sizeof path, "%s/auditor.db", B.tmp);
    memset(&cfg, 0, sizeof cfg);
    snprintf(cfg.server, sizeof cfg.server, "https://kt-bench.invalid:4443");
    memset(cfg.pin_hex, 'a', 64);
    memcpy(cfg.server_key, B.sign_pk, sizeof cfg.server_key);
    if (aud_db_create(path, &cfg, err, sizeof err) != AUD_OK ||
        aud_open(&as, path, err, sizeof err) != AUD_OK) {
        fprintf(stderr, "sotto-bench-kt-dir: auditor: %s\n", err);
        cleanup();
        exit(1);
    }
    t0 = wall_s();
    for (uint64_t pos = 0; pos < n; pos += AUDIT_PAGE) {
        size_t k = n - pos < AUDIT_PAGE ? (size_t)(n - pos) : AUDIT_PAGE;
        for (size_t i = 0; i < k; i++) {
            ptrs[i] = B.upd[pos + i];
            lens[i] = SOTTO_KT_UPDATE_BYTES;
        }
        if (aud_feed(as, ptrs, lens, k, err, sizeof err) != AUD_OK) {
            fprintf(stderr, "sotto-bench-kt-dir: aud_feed: %s\n", err);
            cleanup();
            exit(1);
        }
    }
    s->aud_s = wall_s() - t0;
    s->aud_rate = (double)n / s->aud_s;
    memset(&h, 0, sizeof h);
    h.size = n;
    h.timestamp_ms = now_ms();
    if (sotto_merkle_log_root(B.log, n, h.root) != SOTTO_OK ||
        sotto_kt_head_sign(&h, B.sign_sk) != SOTTO_OK || sotto_kt_head_encode(&h, wire) != SOTTO_OK)
        die("head");
    t0 = wall_s();
    if (aud_check_head(as, wire, sizeof wire, 1, now_ms(), &out, err, sizeof err) != AUD_OK) {
        fprintf(stderr, "sotto-bench-kt-dir: aud_check_head: %s\n", err);
        cleanup();
        exit(1);
    }
    s->aud_root_us = (wall_s() - t0) * 1e6;
    if (aud_verified_size(as) != n || memcmp(out.root, h.root, 32) != 0)
        die("auditor state");
    aud_close(as);
    rm_db(path);
    free(ptrs);
    free(lens);
}

/* ---- primitives ---------------------------------------------------------- */

/* One primitive's cost in us per operation: the best of 3 runs of n. */
enum prim { P_VRF_PROVE, P_VRF_VERIFY, P_SIGN, P_SIG_VERIFY, P_SHA, P_PT_SET };

static double prim_run(enum prim p, int n)
{
    static uint8_t pi[80], beta[64], msg[70] = {1}, sig[64], h[32], buf[64] = {2}, val[32];
    uint8_t idx[32];
    double best = 0;

    if (p == P_VRF_VERIFY && sotto_vrf_prove(pi, &B.vrf, msg, 16) != SOTTO_OK)
        die("vrf_prove");
    if (p == P_SIG_VERIFY)
        crypto_sign_detached(sig, NULL, msg, sizeof msg, B.sign_sk);
    for (int run = 0; run < 3; run++) {
        double t0 = cpu_s(), t;
        for (int i = 0; i < n; i++) {
            int ok = 1;
            switch (p) {
            case P_VRF_PROVE:
                msg[1] = (uint8_t)i;
                ok = sotto_vrf_prove(pi, &B.vrf, msg, 16) == SOTTO_OK;
                break;
            case P_VRF_VERIFY:
                ok = sotto_vrf_verify(beta, B.vrf.pk, msg, 16, pi) == SOTTO_OK;
                break;
            case P_SIGN:
                msg[1] = (uint8_t)i;
                crypto_sign_detached(sig, NULL, msg, sizeof msg, B.sign_sk);
                break;
            case P_SIG_VERIFY:
                ok = crypto_sign_verify_detached(sig, msg, sizeof msg, B.sign_pk) == 0;
                break;
            case P_SHA:
                crypto_hash_sha256(h, buf, sizeof buf);
                buf[0] = h[0];
                break;
            case P_PT_SET:
                /* a new random index (randombytes_buf of 32 bytes: < 0.1 us) */
                randombytes_buf(idx, sizeof idx);
                ok = sotto_prefix_tree_set(B.pt, idx, val) == SOTTO_OK;
                break;
            }
            if (!ok)
                die("primitive");
        }
        t = (cpu_s() - t0) / n * 1e6;
        if (run == 0 || t < best)
            best = t;
    }
    return best;
}

static void bench_primitives(stage *s)
{
    s->vrf_prove = prim_run(P_VRF_PROVE, 100);
    s->vrf_verify = prim_run(P_VRF_VERIFY, 100);
    s->sign = prim_run(P_SIGN, 1000);
    s->sig_verify = prim_run(P_SIG_VERIFY, 1000);
    s->sha = prim_run(P_SHA, 100000);
    pt_sync(); /* the prefix tree holds what the directory holds */
    s->pt_set = prim_run(P_PT_SET, 500);
}

/* ---- output -------------------------------------------------------------- */

static void print_lines(const stage *s)
{
    printf("bench kt_dir_build accounts=%" PRIu64 " log_entries=%" PRIu64 " updates_per_s=%.0f "
           "total_s=%.1f directory_mib=%.1f log_mib=%.1f bytes_per_account=%.0f\n",
           s->n, s->log_n, s->build_rate, s->build_total_s, (double)s->dir_mem / (1 << 20),
           (double)s->log_mem / (1 << 20), (double)(s->dir_mem + s->log_mem) / (double)s->n);
    printf("bench kt_dir_search accounts=%" PRIu64 " bytes_mean=%.0f bytes_max=%zu "
           "prefix_proof_bytes_mean=%.0f log_path_bytes=%.0f answer_us=%.1f verify_us=%.1f "
           "verify_p99_us=%.1f head_check_us=%.1f\n",
           s->n, s->bytes_mean, s->bytes_max, s->pt_bytes_mean, s->log_bytes, s->answer_med,
           s->verify_med, s->verify_p99, s->head_med);
    for (int i = 0; i < 3; i++) {
        static const char *const what[3] = {"new_batch64", "new_batch1", "change_batch64"};
        printf("bench kt_dir_server accounts=%" PRIu64 " kind=%s updates_per_s=%.0f "
               "cpu_us_per_update=%.1f commit_ms=%.2f\n",
               s->n, what[i], s->srv[i].rate, s->srv[i].cpu_us, s->srv[i].commit_ms);
    }
    printf("bench kt_dir_auditor accounts=%" PRIu64 " updates_per_s=%.0f catch_up_s=%.1f "
           "root_check_us=%.0f\n",
           s->n, s->aud_rate, s->aud_s, s->aud_root_us);
    printf("bench kt_dir_primitives accounts=%" PRIu64 " vrf_prove_us=%.1f vrf_verify_us=%.1f "
           "ed25519_sign_us=%.1f ed25519_verify_us=%.1f sha256_64_us=%.3f prefix_set_us=%.2f\n",
           s->n, s->vrf_prove, s->vrf_verify, s->sign, s->sig_verify, s->sha, s->pt_set);
    fflush(stdout);
}

#define COLW 11

static void row(const stage *st, size_t n, const char *label, const char *goal, int decimals,
                double (*get)(const stage *))
{
    char cell[32];

    printf("%-46s", label);
    for (size_t i = 0; i < n; i++) {
        snprintf(cell, sizeof cell, "%.*f", decimals, get(&st[i]));
        printf(" %*s", COLW, cell);
    }
    printf("  %s\n", goal);
}

#define GETTER(name, expr)                                                                         \
    static double name(const stage *s)                                                             \
    {                                                                                              \
        return (double)(expr);                                                                     \
    }
GETTER(g_log_n, s->log_n)
GETTER(g_build_rate, s->build_rate)
GETTER(g_build_total, s->build_total_s)
GETTER(g_dir_mib, (double)s->dir_mem / (1 << 20))
GETTER(g_log_mib, (double)s->log_mem / (1 << 20))
GETTER(g_per_acct, (double)(s->dir_mem + s->log_mem) / (double)s->n)
GETTER(g_bytes_mean, s->bytes_mean)
GETTER(g_bytes_max, s->bytes_max)
GETTER(g_pt_bytes, s->pt_bytes_mean)
GETTER(g_log_bytes, s->log_bytes)
GETTER(g_answer, s->answer_med)
GETTER(g_verify, s->verify_med)
GETTER(g_verify99, s->verify_p99)
GETTER(g_head, s->head_med)
GETTER(g_client, s->verify_med + s->head_med)
GETTER(g_srv64, s->srv[0].rate)
GETTER(g_srv64w, s->srv[0].cpu_us)
GETTER(g_srv64c, s->srv[0].commit_ms)
GETTER(g_srv1, s->srv[1].rate)
GETTER(g_srv1w, s->srv[1].cpu_us)
GETTER(g_srv1c, s->srv[1].commit_ms)
GETTER(g_chg, s->srv[2].rate)
GETTER(g_chgw, s->srv[2].cpu_us)
GETTER(g_chgc, s->srv[2].commit_ms)
GETTER(g_aud, s->aud_rate)
GETTER(g_aud_s, s->aud_s)
GETTER(g_aud_root, s->aud_root_us)
GETTER(g_vrf_prove, s->vrf_prove)
GETTER(g_vrf_verify, s->vrf_verify)
GETTER(g_sign, s->sign)
GETTER(g_sig_verify, s->sig_verify)
GETTER(g_sha, s->sha)
GETTER(g_pt_set, s->pt_set)

static void print_table(const stage *st, size_t n)
{
    char cell[32];

    printf("\nKey-transparency directory, one run (sotto-bench-kt-dir; docs/bench.md)\n");
    printf("indices: real VRF outputs for the first %zu accounts, random 32-byte values beyond "
           "(VRF outputs are uniformly random: same tree)\n",
           B.n_users);
    printf("searches: %d random accounts per size; server: best of %d rounds of %d batches "
           "of %d (and of %d batches of 1), from that size on\n",
           SAMPLES, SRV_ROUNDS, SRV_BATCHES, SRV_BATCH, SRV_SINGLES);
    printf("%-46s", "accounts");
    for (size_t i = 0; i < n; i++) {
        snprintf(cell, sizeof cell, "%" PRIu64, st[i].n);
        printf(" %*s", COLW, cell);
    }
    printf("  goal\n");
    printf("directory (CPU time)\n");
    row(st, n, "  log entries (updates so far)", "", 0, g_log_n);
    row(st, n, "  build: apply+leaf+log append, updates/s", "", 0, g_build_rate);
    row(st, n, "  build: total so far, s", "", 1, g_build_total);
    row(st, n, "  memory: directory, MiB", "", 1, g_dir_mib);
    row(st, n, "  memory: log, MiB", "", 1, g_log_mib);
    row(st, n, "  memory: bytes per account", "", 0, g_per_acct);
    printf("search result (CPU time, medians)\n");
    row(st, n, "  size mean, bytes", "", 0, g_bytes_mean);
    row(st, n, "  size max, bytes", "<= 3072 at 10^6", 0, g_bytes_max);
    row(st, n, "    of which prefix proof (mean), bytes", "", 0, g_pt_bytes);
    row(st, n, "    of which log path, bytes", "", 0, g_log_bytes);
    row(st, n, "  server: build the answer (in memory), us", "", 1, g_answer);
    row(st, n, "  client: parse + search_verify, us", "", 1, g_verify);
    row(st, n, "  client: parse + search_verify p99, us", "", 1, g_verify99);
    row(st, n, "  client: head parse + check (1 cosig), us", "", 1, g_head);
    row(st, n, "  client: search + head, us", "<= 1000", 1, g_client);
    printf("server updates with a durable commit (sottod's store op; wall time)\n");
    row(st, n, "  new names (VRF), batches of 64: updates/s", ">= 2000", 0, g_srv64);
    row(st, n, "    CPU per update (commit excluded), us", "", 1, g_srv64w);
    row(st, n, "    commit wait per batch, ms", "", 2, g_srv64c);
    row(st, n, "  new names (VRF), batches of 1: updates/s", "", 0, g_srv1);
    row(st, n, "    CPU per update (commit excluded), us", "", 1, g_srv1w);
    row(st, n, "    commit wait per batch, ms", "", 2, g_srv1c);
    row(st, n, "  changes (VRF cached), batches of 64: upd/s", "", 0, g_chg);
    row(st, n, "    CPU per update (commit excluded), us", "", 1, g_chgw);
    row(st, n, "    commit wait per batch, ms", "", 2, g_chgc);
    printf("auditor catch-up over the whole log (wall time)\n");
    row(st, n, "  aud_feed, pages of 1000: updates/s", "", 0, g_aud);
    row(st, n, "  whole log, s", "", 1, g_aud_s);
    row(st, n, "  final root check (aud_check_head), us", "", 0, g_aud_root);
    printf("primitives, same run (CPU time)\n");
    row(st, n, "  VRF prove, us", "", 1, g_vrf_prove);
    row(st, n, "  VRF verify, us", "", 1, g_vrf_verify);
    row(st, n, "  Ed25519 sign, us", "", 1, g_sign);
    row(st, n, "  Ed25519 verify, us", "", 1, g_sig_verify);
    row(st, n, "  SHA-256 of 64 bytes, us", "", 3, g_sha);
    row(st, n, "  prefix-tree set at that size, us", "", 2, g_pt_set);
}

static void usage(void)
{
    fprintf(stderr, "usage: sotto-bench-kt-dir [--quick | --max N]   (N: 1000..10000000)\n");
    exit(2);
}

int main(int argc, char **argv)
{
    uint64_t max = 1000000, sizes[MAX_STAGES];
    size_t n_sizes = 0;
    stage st[MAX_STAGES];
    const char *tmpdir = getenv("TMPDIR");
    sottod_store_config cfg;
    sottod_store *store = NULL;
    char why[256] = "";
    double t_start = wall_s();

    if (argc == 2 && strcmp(argv[1], "--quick") == 0) {
        max = 100000;
    } else if (argc == 3 && strcmp(argv[1], "--max") == 0) {
        char *end;
        errno = 0;
        max = strtoull(argv[2], &end, 10);
        if (errno != 0 || *end != '\0' || max < 1000 || max > MAX_ACCOUNTS)
            usage();
    } else if (argc != 1) {
        usage();
    }
    for (uint64_t p = 10000; p <= max && n_sizes < MAX_STAGES - 1; p *= 10)
        sizes[n_sizes++] = p;
    if (n_sizes == 0 || sizes[n_sizes - 1] != max)
        sizes[n_sizes++] = max;

    if (sotto_init() != SOTTO_OK || sotto_vrf_key_pair_generate(&B.vrf) != SOTTO_OK)
        die("init");
    crypto_sign_keypair(B.sign_pk, B.sign_sk);
    crypto_sign_keypair(B.aud_pk, B.aud_sk);
    B.day = now_ms() / DAY_MS * DAY_MS;
    B.cap = 1 << 16;
    B.upd = malloc(B.cap * SOTTO_KT_UPDATE_BYTES);
    if (B.upd == NULL || sotto_kt_directory_new(&B.dir) != SOTTO_OK ||
        sotto_merkle_log_new(&B.log) != SOTTO_OK || sotto_prefix_tree_new(&B.pt) != SOTTO_OK)
        die("new");
    snprintf(B.tmp, sizeof B.tmp, "%s/sotto-bench-kt-dir.XXXXXX",
             tmpdir != NULL && tmpdir[0] != '\0' ? tmpdir : "/tmp");
    if (mkdtemp(B.tmp) == NULL) {
        B.tmp[0] = '\0';
        die("mkdtemp");
    }
    snprintf(B.store_path, sizeof B.store_path, "%s/sottod.db", B.tmp);
    /* Creates sottod's schema (kt_log, kt_entries, ...) with its pragmas. */
    memset(&cfg, 0, sizeof cfg);
    cfg.path = B.store_path;
    cfg.why = why;
    cfg.why_cap = sizeof why;
    if (sottod_store_open(&cfg, &store) != SOTTOD_STORE_OK) {
        fprintf(stderr, "sotto-bench-kt-dir: store: %s\n", why);
        cleanup();
        return 1;
    }
    sottod_store_close(store);

    make_vrf_users(sizes[0] < VRF_ACCOUNTS ? (size_t)sizes[0] : VRF_ACCOUNTS);
    for (size_t i = 0; i < n_sizes; i++) {
        stage *s = &st[i];
        uint64_t n = sizes[i];

        memset(s, 0, sizeof *s);
        if (sotto_kt_directory_count(B.dir) < n)
            build_to(n, s);
        /* A --max just above a size: the server's accounts got there. */
        s->n = sotto_kt_directory_count(B.dir);
        s->log_n = sotto_merkle_log_size(B.log);
        s->build_total_s = B.build_total;
        s->dir_mem = sotto_kt_directory_memory(B.dir);
        s->log_mem = sotto_merkle_log_memory(B.log);
        bench_search(s);
        bench_auditor(s);
        bench_primitives(s);
        bench_store(s); /* grows the directory by the server's new accounts */
        print_lines(s);
    }
    print_table(st, n_sizes);
    printf("run: %.0f s wall\n", wall_s() - t_start);

    cleanup();
    sotto_kt_directory_free(B.dir);
    sotto_merkle_log_free(B.log);
    sotto_prefix_tree_free(B.pt);
    for (size_t i = 0; i < B.n_users; i++)
        sodium_memzero(B.users[i].opening, sizeof B.users[i].opening);
    free(B.users);
    free(B.upd);
    sotto_vrf_key_pair_wipe(&B.vrf);
    sodium_memzero(B.sign_sk, sizeof B.sign_sk);
    sodium_memzero(B.aud_sk, sizeof B.aud_sk);
    return 0;
}
