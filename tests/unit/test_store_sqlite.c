/*
 * The SQLite store: every interface of sotto/store.h, persistence across
 * close/reopen, file mode, schema versioning, transactions, and corrupt rows
 * (SOTTO_ERR_CORRUPT_RECORD, never a crash).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "sotto/group.h"
#include "sotto/sqlite_store.h"
#include "test_store_common.h"

typedef struct fixture {
    sotto_key_pair identity;
    char dir[64];
    char path[96];
    sotto_sqlite_store *st;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (f == NULL || sotto_init() != SOTTO_OK ||
        sotto_identity_key_pair_generate(&f->identity) != SOTTO_OK)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/sotto-store-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->path, sizeof f->path, "%s/store.db", f->dir);
    if (sotto_sqlite_store_open(f->path, &f->st) != SOTTO_OK ||
        sotto_sqlite_store_set_local_identity(f->st, &f->identity, 777) != SOTTO_OK)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    char p[128];
    sotto_sqlite_store_close(f->st);
    static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s%s", f->path, suffix[i]);
        unlink(p);
    }
    rmdir(f->dir);
    sotto_key_pair_wipe(&f->identity);
    free(f);
    return 0;
}

static void reopen(fixture *f)
{
    sotto_sqlite_store_close(f->st);
    f->st = NULL;
    assert_int_equal(sotto_sqlite_store_open(f->path, &f->st), SOTTO_OK);
}

static void exec_sql(fixture *f, const char *sql)
{
    assert_int_equal(sqlite3_exec(sotto_sqlite_store_db(f->st), sql, NULL, NULL, NULL), SQLITE_OK);
}

static void test_sessions(void **state)
{
    fixture *f = *state;
    tsc_sessions(sotto_sqlite_store_protocol(f->st));
}

static void test_prekeys(void **state)
{
    fixture *f = *state;
    size_t n = 0;
    tsc_prekeys(sotto_sqlite_store_protocol(f->st));
    assert_int_equal(sotto_sqlite_store_prekey_count(f->st, &n), SOTTO_OK);
    assert_int_equal(n, 2);
}

static void test_signed_prekeys(void **state)
{
    fixture *f = *state;
    tsc_signed_prekeys(sotto_sqlite_store_protocol(f->st), &f->identity);
}

static void test_identities(void **state)
{
    fixture *f = *state;
    tsc_identities(sotto_sqlite_store_protocol(f->st), &f->identity, 777);
}

static void test_sender_keys(void **state)
{
    fixture *f = *state;
    tsc_sender_keys(sotto_sqlite_store_protocol(f->st));
}

/* The same checks on a private in-memory database. */
static void test_in_memory(void **state)
{
    fixture *f = *state;
    sotto_sqlite_store *m = NULL;
    assert_int_equal(sotto_sqlite_store_open(":memory:", &m), SOTTO_OK);
    sotto_protocol_store *ps = sotto_sqlite_store_protocol(m);
    sotto_key_pair kp;
    assert_int_equal(ps->identity.get_identity_key_pair(ps->identity.user_data, &kp),
                     SOTTO_ERR_NOT_FOUND);
    assert_int_equal(sotto_sqlite_store_set_local_identity(m, &f->identity, 9), SOTTO_OK);
    tsc_sessions(ps);
    tsc_prekeys(ps);
    tsc_identities(ps, &f->identity, 9);
    tsc_sender_keys(ps);
    sotto_sqlite_store_close(m);
    assert_int_equal(access(":memory:", F_OK), -1); /* no stray file */
}

/* Everything written survives close and reopen. */
static void test_persistence(void **state)
{
    fixture *f = *state;
    sotto_protocol_store *ps = sotto_sqlite_store_protocol(f->st);
    sotto_address a = tsc_addr("erin", 3);
    static const uint8_t rec[] = {1, 2, 3, 4, 5};
    static const uint8_t gid[] = {0xaa, 0xbb};
    sotto_sender_key_name skn = {gid, sizeof gid, {"erin", 4, 3}};
    sotto_prekey pk[2];
    sotto_signed_prekey spk;
    sotto_key_pair other;

    assert_int_equal(sotto_prekeys_generate(pk, 100, 2), SOTTO_OK);
    assert_int_equal(sotto_signed_prekey_generate(&spk, &f->identity, 9, 42), SOTTO_OK);
    assert_int_equal(sotto_key_pair_generate(&other), SOTTO_OK);
    assert_int_equal(ps->session.store(ps->session.user_data, &a, rec, sizeof rec), SOTTO_OK);
    assert_int_equal(ps->prekey.store(ps->prekey.user_data, &pk[0]), SOTTO_OK);
    assert_int_equal(ps->prekey.store(ps->prekey.user_data, &pk[1]), SOTTO_OK);
    assert_int_equal(ps->prekey.remove(ps->prekey.user_data, pk[1].id), SOTTO_OK);
    assert_int_equal(ps->signed_prekey.store(ps->signed_prekey.user_data, &spk), SOTTO_OK);
    assert_int_equal(ps->identity.save(ps->identity.user_data, &a, &other.pub), SOTTO_OK);
    assert_int_equal(ps->sender_key.store(ps->sender_key.user_data, &skn, rec, 3), SOTTO_OK);

    reopen(f);
    ps = sotto_sqlite_store_protocol(f->st);

    sotto_key_pair kp;
    uint32_t reg = 0;
    assert_int_equal(sotto_sqlite_store_get_local_identity(f->st, &kp, &reg), SOTTO_OK);
    assert_memory_equal(&kp, &f->identity, sizeof kp);
    assert_int_equal(reg, 777);
    sotto_key_pair_wipe(&kp);

    uint8_t *got = NULL;
    size_t len = 0;
    assert_int_equal(ps->session.load(ps->session.user_data, &a, &got, &len), SOTTO_OK);
    assert_int_equal(len, sizeof rec);
    assert_memory_equal(got, rec, sizeof rec);
    free(got);
    assert_int_equal(ps->sender_key.load(ps->sender_key.user_data, &skn, &got, &len), SOTTO_OK);
    assert_int_equal(len, 3);
    assert_memory_equal(got, rec, 3);
    free(got);

    sotto_prekey gotpk;
    assert_int_equal(ps->prekey.load(ps->prekey.user_data, pk[0].id, &gotpk), SOTTO_OK);
    assert_int_equal(gotpk.id, pk[0].id);
    assert_memory_equal(&gotpk.key, &pk[0].key, sizeof gotpk.key);
    assert_int_equal(ps->prekey.load(ps->prekey.user_data, pk[1].id, &gotpk), SOTTO_ERR_NOT_FOUND);
    /* the removed id still refuses another key after reopening */
    sotto_prekey swap = pk[0];
    swap.id = pk[1].id;
    assert_int_equal(ps->prekey.store(ps->prekey.user_data, &swap), SOTTO_ERR_STORE);

    sotto_signed_prekey gotspk;
    assert_int_equal(ps->signed_prekey.load(ps->signed_prekey.user_data, 9, &gotspk), SOTTO_OK);
    assert_memory_equal(gotspk.key.priv, spk.key.priv, SOTTO_PRIVATE_KEY_BYTES);
    assert_memory_equal(gotspk.signature, spk.signature, SOTTO_SIGNATURE_BYTES);
    assert_true(gotspk.timestamp_ms == 42);
    assert_int_equal(
        sotto_signed_prekey_verify(&f->identity.pub, &gotspk.key.pub, gotspk.signature), SOTTO_OK);

    assert_int_equal(ps->identity.is_trusted(ps->identity.user_data, &a, &other.pub),
                     SOTTO_TRUSTED);
    assert_int_equal(ps->identity.is_trusted(ps->identity.user_data, &a, &f->identity.pub),
                     SOTTO_UNTRUSTED);

    /* a different local identity is refused, the same one accepted */
    assert_int_equal(sotto_sqlite_store_set_local_identity(f->st, &f->identity, 777), SOTTO_OK);
    assert_int_equal(sotto_sqlite_store_set_local_identity(f->st, &other, 777), SOTTO_ERR_STORE);
    assert_int_equal(sotto_sqlite_store_set_local_identity(f->st, &f->identity, 778),
                     SOTTO_ERR_STORE);

    sodium_memzero(pk, sizeof pk);
    sodium_memzero(&swap, sizeof swap);
    sodium_memzero(&gotpk, sizeof gotpk);
    sodium_memzero(&spk, sizeof spk);
    sodium_memzero(&gotspk, sizeof gotspk);
    sotto_key_pair_wipe(&other);
}

static void test_file_mode_and_wal(void **state)
{
    fixture *f = *state;
    struct stat sb;
    char wal[128];
    sotto_protocol_store *ps = sotto_sqlite_store_protocol(f->st);
    sotto_address a = tsc_addr("x", 1);
    static const uint8_t rec[] = {9};
    assert_int_equal(ps->session.store(ps->session.user_data, &a, rec, 1), SOTTO_OK);

    assert_int_equal(stat(f->path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    snprintf(wal, sizeof wal, "%s-wal", f->path);
    assert_int_equal(stat(wal, &sb), 0); /* WAL journal in use */
    assert_int_equal(sb.st_mode & 0777, 0600);

    sqlite3_stmt *st = NULL;
    assert_int_equal(
        sqlite3_prepare_v2(sotto_sqlite_store_db(f->st), "PRAGMA journal_mode", -1, &st, NULL),
        SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    assert_int_equal(
        sqlite3_prepare_v2(sotto_sqlite_store_db(f->st), "PRAGMA user_version", -1, &st, NULL),
        SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), SOTTO_SQLITE_SCHEMA_VERSION);
    sqlite3_finalize(st);

    /* an existing file with a wide mode is narrowed on open */
    sotto_sqlite_store_close(f->st);
    f->st = NULL;
    assert_int_equal(chmod(f->path, 0644), 0);
    reopen(f);
    assert_int_equal(stat(f->path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
}

/* A newer schema is refused untouched; a file that is no database is refused. */
static void test_schema_version(void **state)
{
    fixture *f = *state;
    sotto_sqlite_store *other = NULL;
    exec_sql(f, "PRAGMA user_version = 99");
    sotto_sqlite_store_close(f->st);
    f->st = NULL;
    assert_int_equal(sotto_sqlite_store_open(f->path, &other), SOTTO_ERR_STORE);
    assert_null(other);

    char junk[128];
    snprintf(junk, sizeof junk, "%s/junk.db", f->dir);
    FILE *fp = fopen(junk, "wb");
    assert_non_null(fp);
    for (int i = 0; i < 4096; i++)
        fputc((i * 31) & 0xff, fp);
    fclose(fp);
    assert_int_equal(sotto_sqlite_store_open(junk, &other), SOTTO_ERR_STORE);
    unlink(junk);

    assert_int_equal(sotto_sqlite_store_open(NULL, &other), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_sqlite_store_open(f->path, NULL), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_sqlite_store_open_ex(f->path, 0x80, &other), SOTTO_ERR_INVALID_ARGUMENT);
    snprintf(junk, sizeof junk, "%s/no/such/dir.db", f->dir);
    assert_int_equal(sotto_sqlite_store_open(junk, &other), SOTTO_ERR_STORE);
}

static void test_transactions(void **state)
{
    fixture *f = *state;
    sotto_protocol_store *ps = sotto_sqlite_store_protocol(f->st);
    sotto_session_store *ss = &ps->session;
    sotto_address a = tsc_addr("t", 1), b = tsc_addr("t", 2), c = tsc_addr("t", 3);
    static const uint8_t rec[] = {7, 7};
    uint8_t *got = NULL;
    size_t len;

    assert_int_equal(sotto_sqlite_store_commit(f->st), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_sqlite_store_rollback(f->st), SOTTO_ERR_INVALID_ARGUMENT);

    /* rolled back: nothing written */
    assert_int_equal(sotto_sqlite_store_begin(f->st), SOTTO_OK);
    assert_int_equal(ss->store(ss->user_data, &a, rec, sizeof rec), SOTTO_OK);
    assert_int_equal(ss->load(ss->user_data, &a, &got, &len), SOTTO_OK);
    free(got);
    assert_int_equal(sotto_sqlite_store_rollback(f->st), SOTTO_OK);
    assert_int_equal(ss->load(ss->user_data, &a, &got, &len), SOTTO_ERR_NOT_FOUND);

    /* nested: the inner rollback drops b only; the outer commit keeps a and c */
    assert_int_equal(sotto_sqlite_store_begin(f->st), SOTTO_OK);
    assert_int_equal(ss->store(ss->user_data, &a, rec, sizeof rec), SOTTO_OK);
    assert_int_equal(sotto_sqlite_store_begin(f->st), SOTTO_OK);
    assert_int_equal(ss->store(ss->user_data, &b, rec, sizeof rec), SOTTO_OK);
    assert_int_equal(sotto_sqlite_store_rollback(f->st), SOTTO_OK);
    assert_int_equal(sotto_sqlite_store_begin(f->st), SOTTO_OK);
    assert_int_equal(ss->store(ss->user_data, &c, rec, sizeof rec), SOTTO_OK);
    assert_int_equal(sotto_sqlite_store_commit(f->st), SOTTO_OK);
    assert_int_equal(sotto_sqlite_store_commit(f->st), SOTTO_OK);
    reopen(f);
    ps = sotto_sqlite_store_protocol(f->st);
    ss = &ps->session;
    assert_int_equal(ss->load(ss->user_data, &a, &got, &len), SOTTO_OK);
    free(got);
    assert_int_equal(ss->load(ss->user_data, &b, &got, &len), SOTTO_ERR_NOT_FOUND);
    assert_int_equal(ss->load(ss->user_data, &c, &got, &len), SOTTO_OK);
    free(got);

    /* an open transaction is rolled back by close */
    assert_int_equal(sotto_sqlite_store_begin(f->st), SOTTO_OK);
    assert_int_equal(ss->remove(ss->user_data, &a), SOTTO_OK);
    reopen(f);
    ps = sotto_sqlite_store_protocol(f->st);
    ss = &ps->session;
    assert_int_equal(ss->load(ss->user_data, &a, &got, &len), SOTTO_OK);
    free(got);
}

/* Rows that do not decode give SOTTO_ERR_CORRUPT_RECORD. */
static void test_corrupt_rows(void **state)
{
    fixture *f = *state;
    sotto_protocol_store *ps = sotto_sqlite_store_protocol(f->st);
    sotto_prekey pk;
    sotto_signed_prekey spk;
    sotto_public_key pub;
    uint8_t *got = NULL;
    size_t len = 0;
    uint32_t *ids = NULL;
    size_t count = 0;
    sotto_address a = tsc_addr("m", 1);
    static const uint8_t gid[] = {1};
    sotto_sender_key_name skn = {gid, 1, {"m", 1, 1}};

    exec_sql(f, "INSERT INTO sotto_prekeys VALUES (1, x'0102', x'00');"
                "INSERT INTO sotto_prekeys VALUES (2, 'text', NULL);"
                "INSERT INTO sotto_prekeys VALUES (3, x'06" /* wrong type byte */
                "0000000000000000000000000000000000000000000000000000000000000000', "
                "zeroblob(32));"
                "INSERT INTO sotto_signed_prekeys VALUES (1, x'05"
                "0000000000000000000000000000000000000000000000000000000000000000', "
                "zeroblob(32), zeroblob(63), 5);"
                "INSERT INTO sotto_signed_prekeys VALUES (2, x'05"
                "0000000000000000000000000000000000000000000000000000000000000000', "
                "zeroblob(32), zeroblob(64), 'late');"
                "INSERT INTO sotto_sessions VALUES (x'6d', 1, 'not a blob');"
                "INSERT INTO sotto_sessions VALUES (x'6d', 2, x'');"
                "INSERT INTO sotto_sessions VALUES (x'6e', -5, x'01');"
                "INSERT INTO sotto_identities VALUES (x'6d', 1, x'05ff');"
                "INSERT INTO sotto_sender_keys VALUES (x'01', x'6d', 1, 12345);");

    assert_int_equal(ps->prekey.load(ps->prekey.user_data, 1, &pk), SOTTO_ERR_CORRUPT_RECORD);
    assert_int_equal(ps->prekey.load(ps->prekey.user_data, 2, &pk), SOTTO_ERR_NOT_FOUND);
    assert_int_equal(ps->prekey.load(ps->prekey.user_data, 3, &pk), SOTTO_ERR_CORRUPT_RECORD);
    assert_int_equal(sotto_prekeys_generate(&pk, 1, 1), SOTTO_OK); /* id 2 */
    assert_int_equal(ps->prekey.store(ps->prekey.user_data, &pk), SOTTO_ERR_CORRUPT_RECORD);
    sodium_memzero(&pk, sizeof pk);
    assert_int_equal(ps->signed_prekey.load(ps->signed_prekey.user_data, 1, &spk),
                     SOTTO_ERR_CORRUPT_RECORD);
    assert_int_equal(ps->signed_prekey.load(ps->signed_prekey.user_data, 2, &spk),
                     SOTTO_ERR_CORRUPT_RECORD);
    assert_int_equal(ps->session.load(ps->session.user_data, &a, &got, &len),
                     SOTTO_ERR_CORRUPT_RECORD);
    a.device_id = 2;
    assert_int_equal(ps->session.load(ps->session.user_data, &a, &got, &len),
                     SOTTO_ERR_CORRUPT_RECORD);
    assert_int_equal(ps->session.device_ids(ps->session.user_data, "n", 1, &ids, &count),
                     SOTTO_ERR_CORRUPT_RECORD);
    assert_null(ids);
    a.device_id = 1;
    assert_int_equal(ps->identity.get(ps->identity.user_data, &a, &pub), SOTTO_ERR_CORRUPT_RECORD);
    assert_int_equal(ps->identity.is_trusted(ps->identity.user_data, &a, &f->identity.pub),
                     SOTTO_ERR_CORRUPT_RECORD);
    assert_int_equal(ps->sender_key.load(ps->sender_key.user_data, &skn, &got, &len),
                     SOTTO_ERR_CORRUPT_RECORD);
    assert_null(got);

    /* a corrupt local identity row */
    exec_sql(f, "UPDATE sotto_local_identity SET private_key = x'0001'");
    reopen(f);
    ps = sotto_sqlite_store_protocol(f->st);
    sotto_key_pair kp;
    uint32_t reg;
    assert_int_equal(ps->identity.get_identity_key_pair(ps->identity.user_data, &kp),
                     SOTTO_ERR_CORRUPT_RECORD);
    assert_int_equal(ps->identity.get_local_registration_id(ps->identity.user_data, &reg),
                     SOTTO_ERR_CORRUPT_RECORD);
    exec_sql(f, "UPDATE sotto_local_identity SET private_key = zeroblob(32), "
                "registration_id = 4294967296");
    assert_int_equal(ps->identity.get_local_registration_id(ps->identity.user_data, &reg),
                     SOTTO_ERR_CORRUPT_RECORD);
}

/* Sender keys through the SQLite store, and a decryption rolled back by the
 * application: the message can be decrypted again afterwards. */
static void test_group_through_sqlite(void **state)
{
    fixture *f = *state;
    sotto_sqlite_store *alice = NULL;
    static const uint8_t gid[] = {0x47, 0x01};
    sotto_sender_key_name name = {gid, sizeof gid, {"alice", 5, 1}};
    uint8_t *skdm = NULL, *m[5], *pt = NULL;
    size_t skdm_len, ml[5], pt_len;

    assert_int_equal(sotto_sqlite_store_open(":memory:", &alice), SOTTO_OK);
    const sotto_sender_key_store *ask = &sotto_sqlite_store_protocol(alice)->sender_key;
    const sotto_sender_key_store *bsk = &sotto_sqlite_store_protocol(f->st)->sender_key;
    assert_int_equal(sotto_group_create_distribution(ask, &name, &skdm, &skdm_len), SOTTO_OK);
    assert_int_equal(sotto_group_process_distribution(bsk, &name, skdm, skdm_len), SOTTO_OK);
    free(skdm);
    for (int i = 0; i < 5; i++)
        assert_int_equal(
            sotto_group_encrypt(ask, &name, (const uint8_t *)"group", 5, &m[i], &ml[i]), SOTTO_OK);

    /* decrypted inside a transaction the application then rolls back */
    assert_int_equal(sotto_sqlite_store_begin(f->st), SOTTO_OK);
    assert_int_equal(sotto_group_decrypt(bsk, &name, m[3], ml[3], &pt, &pt_len), SOTTO_OK);
    free(pt);
    assert_int_equal(sotto_sqlite_store_rollback(f->st), SOTTO_OK);

    reopen(f);
    bsk = &sotto_sqlite_store_protocol(f->st)->sender_key;
    static const int order[5] = {3, 0, 4, 2, 1};
    for (int k = 0; k < 5; k++) {
        int i = order[k];
        pt = NULL;
        assert_int_equal(sotto_group_decrypt(bsk, &name, m[i], ml[i], &pt, &pt_len), SOTTO_OK);
        assert_int_equal(pt_len, 5);
        assert_memory_equal(pt, "group", 5);
        free(pt);
        assert_int_equal(sotto_group_decrypt(bsk, &name, m[i], ml[i], &pt, &pt_len),
                         SOTTO_ERR_DUPLICATE_MESSAGE);
    }
    for (int i = 0; i < 5; i++)
        free(m[i]);
    sotto_sqlite_store_close(alice);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sessions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prekeys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_signed_prekeys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_identities, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sender_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_in_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_persistence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_mode_and_wal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schema_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transactions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_through_sqlite, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
