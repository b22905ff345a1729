/*
 * tests/unit/test_review_hostile.c -- an outsider's hostile-input review of
 * the public libsotto API (review R1).
 *
 *  - every public function given NULL where its header says NULL is an
 *    error returns that error (no crash);
 *  - sizes near SIZE_MAX are refused before any size computation;
 *  - a store whose every callback can fail (the Nth call fails, for every
 *    N until the operation succeeds): each failure is reported, no output
 *    is handed out, nothing leaks (valgrind/ASan), and a failure before the
 *    first write leaves every store byte-identical;
 *  - garbage stored records give SOTTO_ERR_CORRUPT_RECORD and are left as
 *    they are;
 *  - low-order Curve25519 points as a signed prekey (validly signed), as a
 *    PreKey message's base key and as a ratchet key are refused and change
 *    nothing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sotto/attachment.h"
#include "sotto/fingerprint.h"
#include "sotto/group.h"
#include "sotto/sqlite_store.h"
#include "test_session_store_helper.h"

/* ------------------------------------------------------------------------ */
/* A store that fails its Nth callback                                       */

typedef struct faulty {
    sotto_protocol_store outer;     /* what libsotto is given */
    const sotto_protocol_store *in; /* the real (memory) store */
    unsigned calls;                 /* callbacks made so far */
    unsigned fail_at;               /* 1-based call that fails; 0: never */
    unsigned writes_done;           /* successful store/remove/save calls */
    bool failed;                    /* the failure was injected */
} faulty;

static faulty *g_f;

/* True when this call must fail (and counts it). */
static bool fault(void)
{
    g_f->calls++;
    if (g_f->fail_at != 0 && g_f->calls == g_f->fail_at) {
        g_f->failed = true;
        return true;
    }
    return false;
}

static int wrote(int rc)
{
    if (rc == SOTTO_OK)
        g_f->writes_done++;
    return rc;
}

#define IN (g_f->in)

static int f_s_load(void *ud, const sotto_address *a, uint8_t **r, size_t *l)
{
    (void)ud;
    return fault() ? SOTTO_ERR_STORE : IN->session.load(IN->session.user_data, a, r, l);
}
static int f_s_store(void *ud, const sotto_address *a, const uint8_t *r, size_t l)
{
    (void)ud;
    return fault() ? SOTTO_ERR_STORE : wrote(IN->session.store(IN->session.user_data, a, r, l));
}
static int f_s_remove(void *ud, const sotto_address *a)
{
    (void)ud;
    return fault() ? SOTTO_ERR_STORE : wrote(IN->session.remove(IN->session.user_data, a));
}
static int f_pk_load(void *ud, uint32_t id, sotto_prekey *out)
{
    (void)ud;
    return fault() ? SOTTO_ERR_STORE : IN->prekey.load(IN->prekey.user_data, id, out);
}
static int f_pk_store(void *ud, const sotto_prekey *pk)
{
    (void)ud;
    return fault() ? SOTTO_ERR_STORE : wrote(IN->prekey.store(IN->prekey.user_data, pk));
}
static int f_pk_remove(void *ud, uint32_t id)
{
    (void)ud;
    return fault() ? SOTTO_ERR_STORE : wrote(IN->prekey.remove(IN->prekey.user_data, id));
}
static int f_spk_load(void *ud, uint32_t id, sotto_signed_prekey *out)
{
    (void)ud;
    return fault() ? SOTTO_ERR_STORE : IN->signed_prekey.load(IN->signed_prekey.user_data, id, out);
}
static int f_id_pair(void *ud, sotto_key_pair *out)
{
    (void)ud;
    return fault() ? SOTTO_ERR_STORE
                   : IN->identity.get_identity_key_pair(IN->identity.user_data, out);
}
static int f_id_reg(void *ud, uint32_t *out)
{
    (void)ud;
    return fault() ? SOTTO_ERR_STORE
                   : IN->identity.get_local_registration_id(IN->identity.user_data, out);
}
static int f_id_save(void *ud, const sotto_address *a, const sotto_public_key *k)
{
    (void)ud;
    return fault() ? SOTTO_ERR_STORE : wrote(IN->identity.save(IN->identity.user_data, a, k));
}
static int f_id_trusted(void *ud, const sotto_address *a, const sotto_public_key *k)
{
    (void)ud;
    return fault() ? SOTTO_ERR_STORE : IN->identity.is_trusted(IN->identity.user_data, a, k);
}
static int f_id_get(void *ud, const sotto_address *a, sotto_public_key *out)
{
    (void)ud;
    return fault() ? SOTTO_ERR_STORE : IN->identity.get(IN->identity.user_data, a, out);
}
static int f_sk_load(void *ud, const sotto_sender_key_name *n, uint8_t **r, size_t *l)
{
    (void)ud;
    return fault() ? SOTTO_ERR_STORE : IN->sender_key.load(IN->sender_key.user_data, n, r, l);
}
static int f_sk_store(void *ud, const sotto_sender_key_name *n, const uint8_t *r, size_t l)
{
    (void)ud;
    return fault() ? SOTTO_ERR_STORE
                   : wrote(IN->sender_key.store(IN->sender_key.user_data, n, r, l));
}

static void faulty_init(faulty *f, const sotto_protocol_store *in)
{
    memset(f, 0, sizeof *f);
    f->in = in;
    f->outer = *in;
    f->outer.session.load = f_s_load;
    f->outer.session.store = f_s_store;
    f->outer.session.remove = f_s_remove;
    f->outer.prekey.load = f_pk_load;
    f->outer.prekey.store = f_pk_store;
    f->outer.prekey.remove = f_pk_remove;
    f->outer.signed_prekey.load = f_spk_load;
    f->outer.identity.get_identity_key_pair = f_id_pair;
    f->outer.identity.get_local_registration_id = f_id_reg;
    f->outer.identity.save = f_id_save;
    f->outer.identity.is_trusted = f_id_trusted;
    f->outer.identity.get = f_id_get;
    f->outer.sender_key.load = f_sk_load;
    f->outer.sender_key.store = f_sk_store;
    g_f = f;
}

static void faulty_arm(faulty *f, unsigned fail_at)
{
    f->calls = 0;
    f->fail_at = fail_at;
    f->writes_done = 0;
    f->failed = false;
}

/* Everything of one party that an operation may change, for comparison. */
typedef struct snapshot {
    uint8_t *record; /* session record for the peer (or NULL) */
    size_t record_len;
    bool has_identity;
    sotto_public_key identity;
    size_t prekeys;
    size_t sessions;
} snapshot;

static void snap(snapshot *s, party *owner, const sotto_address *peer)
{
    memset(s, 0, sizeof *s);
    int rc =
        owner->ps->session.load(owner->ps->session.user_data, peer, &s->record, &s->record_len);
    assert_true(rc == SOTTO_OK || rc == SOTTO_ERR_NOT_FOUND);
    rc = owner->ps->identity.get(owner->ps->identity.user_data, peer, &s->identity);
    assert_true(rc == SOTTO_OK || rc == SOTTO_ERR_NOT_FOUND);
    s->has_identity = rc == SOTTO_OK;
    s->prekeys = sotto_memory_store_prekey_count(owner->ms);
    s->sessions = sotto_memory_store_session_count(owner->ms);
}

static void snap_equal(const snapshot *a, const snapshot *b)
{
    assert_int_equal(a->record_len, b->record_len);
    if (a->record_len > 0)
        assert_memory_equal(a->record, b->record, a->record_len);
    assert_int_equal(a->has_identity, b->has_identity);
    if (a->has_identity)
        assert_memory_equal(a->identity.bytes, b->identity.bytes, SOTTO_PUBLIC_KEY_BYTES);
    assert_int_equal(a->prekeys, b->prekeys);
    assert_int_equal(a->sessions, b->sessions);
}

static void snap_free(snapshot *s)
{
    free(s->record);
    s->record = NULL;
}

/* ------------------------------------------------------------------------ */
/* NULL arguments                                                             */

static void test_null_arguments(void **state)
{
    (void)state;
    party a, b;
    sotto_prekey_bundle bundle;
    uint8_t buf[SOTTO_PREKEY_BUNDLE_MAX_BYTES];
    uint8_t *out = (uint8_t *)"x";
    size_t out_len = 7;
    int type = 9;
    bool flag = true;
    uint32_t u32;
    sotto_public_key pub;
    sotto_prekey_message_info info;
    sotto_sender_key_distribution skd;
    sotto_protocol_store empty;
    const sotto_address bad_addr = {NULL, 3, 1};
    const uint8_t gid[] = {1, 2, 3};

    party_init(&a, "alice", 1);
    party_init(&b, "bob", 1);
    party_bundle(&b, true, &bundle);
    memset(&empty, 0, sizeof empty);

    /* keys.h */
    assert_int_equal(sotto_key_pair_generate(NULL), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_identity_key_pair_generate(NULL), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_registration_id_generate(NULL), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_prekeys_generate(NULL, 1, 1), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_public_key_decode(NULL, buf, 33), SOTTO_ERR_INVALID_KEY);
    assert_int_equal(sotto_public_key_decode(&pub, NULL, 33), SOTTO_ERR_INVALID_KEY);
    assert_false(sotto_public_key_equal(NULL, &a.identity.pub));
    assert_false(sotto_public_key_equal(&a.identity.pub, NULL));
    sotto_key_pair_wipe(NULL);
    assert_int_equal(sotto_signed_prekey_generate(NULL, &a.identity, 1, 0),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_xeddsa_verify(NULL, buf, 1, a.spk.signature),
                     SOTTO_ERR_INVALID_SIGNATURE);
    assert_int_equal(sotto_xeddsa_verify(&a.identity.pub, NULL, 1, a.spk.signature),
                     SOTTO_ERR_INVALID_SIGNATURE);
    assert_int_equal(sotto_signed_prekey_verify(NULL, &a.spk.key.pub, a.spk.signature),
                     SOTTO_ERR_INVALID_SIGNATURE);
    assert_int_equal(sotto_signed_prekey_verify(&a.identity.pub, NULL, a.spk.signature),
                     SOTTO_ERR_INVALID_SIGNATURE);

    /* session.h */
    assert_int_equal(sotto_prekey_bundle_encode(NULL, buf, &out_len), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_prekey_bundle_encode(&bundle, buf, NULL), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_prekey_bundle_decode(NULL, buf, 1), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_prekey_bundle_decode(&bundle, NULL, 5), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_session_process_bundle(NULL, &b.addr, &bundle),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_session_process_bundle(&empty, &b.addr, &bundle),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_session_process_bundle(a.ps, NULL, &bundle), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_session_process_bundle(a.ps, &bad_addr, &bundle),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_session_process_bundle(a.ps, &b.addr, NULL), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_memory_store_session_count(a.ms), 0);

    party_start(&a, &b, true);
    assert_int_equal(sotto_session_encrypt(NULL, &b.addr, buf, 1, &out, &out_len, &type),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_null(out);
    assert_int_equal(out_len, 0);
    assert_int_equal(type, 0);
    assert_int_equal(sotto_session_encrypt(a.ps, NULL, buf, 1, &out, &out_len, &type),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_session_encrypt(a.ps, &b.addr, NULL, 1, &out, &out_len, &type),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_session_encrypt(a.ps, &b.addr, buf, 1, NULL, &out_len, &type),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_session_encrypt(a.ps, &b.addr, buf, 1, &out, NULL, &type),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_session_encrypt(a.ps, &b.addr, buf, 1, &out, &out_len, NULL),
                     SOTTO_ERR_INVALID_ARGUMENT);
    /* pt NULL with length 0 is allowed: an empty message */
    assert_int_equal(sotto_session_encrypt(a.ps, &b.addr, NULL, 0, &out, &out_len, &type),
                     SOTTO_OK);
    wire_msg m = {out, out_len, type};
    out = (uint8_t *)"x";
    assert_int_equal(sotto_session_decrypt(NULL, &a.addr, m.type, m.data, m.len, &out, &out_len),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_null(out);
    assert_int_equal(sotto_session_decrypt(b.ps, NULL, m.type, m.data, m.len, &out, &out_len),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_session_decrypt(b.ps, &a.addr, m.type, NULL, m.len, &out, &out_len),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_session_decrypt(b.ps, &a.addr, m.type, m.data, m.len, NULL, &out_len),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_session_decrypt(b.ps, &a.addr, m.type, m.data, m.len, &out, NULL),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_session_decrypt(b.ps, &a.addr, 4, m.data, m.len, &out, &out_len),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_session_decrypt(b.ps, &a.addr, m.type, NULL, 0, &out, &out_len),
                     SOTTO_ERR_INVALID_MESSAGE);
    /* The genuine message still decrypts (to an empty plaintext). */
    assert_int_equal(party_decrypt(&b, &a, &m, ""), SOTTO_OK);
    wire_free(&m);

    assert_int_equal(sotto_prekey_message_inspect(NULL, buf, 3), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_prekey_message_inspect(&info, NULL, 3), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_session_exists(NULL, &b.addr, &flag), SOTTO_ERR_INVALID_ARGUMENT);
    assert_false(flag);
    assert_int_equal(sotto_session_exists(a.ps, &b.addr, NULL), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_session_remote_registration_id(a.ps, NULL, &u32),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_session_remote_registration_id(a.ps, &b.addr, NULL),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_session_remote_identity(NULL, &b.addr, &pub),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_session_remote_identity(a.ps, &b.addr, NULL),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_session_delete(NULL, &b.addr), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_session_delete(a.ps, &bad_addr), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_session_record_validate(NULL, 4), SOTTO_ERR_CORRUPT_RECORD);
    assert_int_equal(sotto_session_record_validate(NULL, 0), SOTTO_ERR_CORRUPT_RECORD);

    /* group.h */
    sotto_sender_key_name n = {gid, sizeof gid, a.addr};
    sotto_sender_key_name bad_n = {NULL, 2, a.addr};
    const sotto_sender_key_store *sk = &a.ps->sender_key;
    out = NULL;
    assert_int_equal(sotto_group_create_distribution(NULL, &n, &out, &out_len),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_group_create_distribution(sk, NULL, &out, &out_len),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_group_create_distribution(sk, &bad_n, &out, &out_len),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_group_create_distribution(sk, &n, NULL, &out_len),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_group_rotate(sk, &n, &out, NULL), SOTTO_ERR_INVALID_ARGUMENT);
    assert_null(out);
    assert_int_equal(sotto_group_process_distribution(NULL, &n, buf, 3),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_group_process_distribution(sk, NULL, buf, 3),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_group_process_distribution(sk, &n, NULL, 3), SOTTO_ERR_INVALID_MESSAGE);
    assert_int_equal(sotto_group_encrypt(NULL, &n, buf, 1, &out, &out_len),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_group_encrypt(sk, &n, NULL, 1, &out, &out_len),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_group_encrypt(sk, &n, buf, 1, NULL, &out_len),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_group_encrypt(sk, &n, buf, 1, &out, NULL), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_group_decrypt(NULL, &n, buf, 80, &out, &out_len),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_group_decrypt(sk, &n, buf, 80, NULL, &out_len),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_group_decrypt(sk, &n, NULL, 80, &out, &out_len),
                     SOTTO_ERR_INVALID_MESSAGE);
    assert_null(out);
    assert_int_equal(sotto_sender_key_distribution_decode(&skd, NULL, 3),
                     SOTTO_ERR_INVALID_MESSAGE);
    assert_int_equal(sotto_sender_key_distribution_encode(NULL, &out, &out_len),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_sender_key_message_peek(buf, 80, NULL, &u32),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_sender_key_message_peek(NULL, 80, &u32, &u32),
                     SOTTO_ERR_INVALID_MESSAGE);

    /* fingerprint.h */
    sotto_fingerprint *fp = (sotto_fingerprint *)buf;
    assert_int_equal(
        sotto_fingerprint_create(NULL, 5, 1, "a", &a.identity.pub, 1, "b", &b.identity.pub, 1),
        SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(
        sotto_fingerprint_create(&fp, 5, 1, NULL, &a.identity.pub, 1, "b", &b.identity.pub, 1),
        SOTTO_ERR_INVALID_ARGUMENT);
    assert_null(fp);
    assert_int_equal(sotto_fingerprint_create(&fp, 5, 1, "a", NULL, 1, "b", &b.identity.pub, 1),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(
        sotto_fingerprint_create(&fp, 5, 2, "a", &a.identity.pub, 1, "b", &b.identity.pub, 1),
        SOTTO_ERR_INVALID_ARGUMENT);
    sotto_fingerprint_free(NULL);
    assert_string_equal(sotto_fingerprint_display(NULL), "");
    const uint8_t *sc = NULL;
    assert_int_equal(sotto_fingerprint_scannable(NULL, &sc, &out_len), SOTTO_ERR_INVALID_ARGUMENT);
    flag = true;
    assert_int_equal(sotto_fingerprint_compare_scanned(NULL, buf, 3, &flag),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_false(flag);

    /* stores */
    sotto_memory_store *ms = (sotto_memory_store *)buf;
    assert_int_equal(sotto_memory_store_new(NULL, 1, &ms), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_memory_store_new(&a.identity, 1, NULL), SOTTO_ERR_INVALID_ARGUMENT);
    sotto_memory_store_free(NULL);
    assert_null(sotto_memory_store_protocol(NULL));
    assert_int_equal(sotto_memory_store_prekey_count(NULL), 0);
    assert_int_equal(sotto_memory_store_session_count(NULL), 0);
    sotto_sqlite_store *ss = NULL;
    assert_int_equal(sotto_sqlite_store_open(NULL, &ss), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_sqlite_store_open(":memory:", NULL), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_sqlite_store_open_ex(":memory:", 0x80, &ss), SOTTO_ERR_INVALID_ARGUMENT);
    sotto_sqlite_store_close(NULL);
    assert_int_equal(sotto_sqlite_store_set_local_identity(NULL, &a.identity, 1),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_sqlite_store_get_local_identity(NULL, NULL, NULL),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_null(sotto_sqlite_store_protocol(NULL));
    assert_null(sotto_sqlite_store_db(NULL));
    assert_int_equal(sotto_sqlite_store_begin(NULL), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_sqlite_store_commit(NULL), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_sqlite_store_rollback(NULL), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_sqlite_store_prekey_count(NULL, &out_len), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_sqlite_store_open(":memory:", &ss), SOTTO_OK);
    assert_int_equal(sotto_sqlite_store_set_local_identity(ss, NULL, 1),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_sqlite_store_prekey_count(ss, NULL), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_sqlite_store_commit(ss), SOTTO_ERR_INVALID_ARGUMENT);
    sotto_sqlite_store_close(ss);

    /* attachment.h */
    sotto_attachment_encryptor *enc = NULL;
    sotto_attachment_decryptor *dec = NULL;
    sotto_attachment_verifier *ver = NULL;
    uint8_t key[SOTTO_ATTACHMENT_KEY_BYTES] = {0};
    uint8_t dig[SOTTO_ATTACHMENT_DIGEST_BYTES] = {0};
    assert_int_equal(sotto_attachment_encryptor_new(NULL, 10, key), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_attachment_verifier_new(NULL, 10, key, dig), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_attachment_decryptor_new(NULL, 10, key, dig),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_attachment_encrypt_update(NULL, buf, 1, buf, sizeof buf, &out_len),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_attachment_encrypt_final(NULL, buf, sizeof buf, &out_len, &flag, NULL),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_attachment_verify_update(NULL, buf, 1), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_attachment_verify_final(NULL), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_attachment_decrypt_update(NULL, buf, 1, buf, sizeof buf, &out_len),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_attachment_decrypt_final(NULL, buf, sizeof buf, &out_len),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_attachment_decrypt(buf, 10, key, dig, NULL, 100),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_attachment_decrypt(NULL, 10, key, dig, buf, 100),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_attachment_encryptor_new(&enc, 10, key), SOTTO_OK);
    assert_int_equal(sotto_attachment_encrypt_update(enc, NULL, 1, buf, sizeof buf, &out_len),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_attachment_encrypt_update(enc, buf, 1, NULL, sizeof buf, &out_len),
                     SOTTO_ERR_INVALID_ARGUMENT);
    sotto_attachment_encryptor_free(enc);
    sotto_attachment_encryptor_free(NULL);
    sotto_attachment_decryptor_free(dec);
    sotto_attachment_verifier_free(ver);

    sodium_memzero(&skd, sizeof skd);
    party_free(&a);
    party_free(&b);
}

/* ------------------------------------------------------------------------ */
/* Sizes near SIZE_MAX                                                        */

static void test_huge_sizes(void **state)
{
    (void)state;
    party a, b;
    uint8_t one = 'x';
    uint8_t *out = NULL;
    size_t out_len = 0;
    int type = 0;
    const uint8_t gid[] = {7};

    party_init(&a, "alice", 1);
    party_init(&b, "bob", 1);
    party_start(&a, &b, false);
    /* The functions must refuse these before reading past the 1-byte buffer. */
    const size_t huge[] = {SIZE_MAX, SIZE_MAX - 15, SIZE_MAX - 16, SIZE_MAX / 2,
                           SOTTO_MAX_PLAINTEXT_BYTES + 1};
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        assert_int_equal(sotto_session_encrypt(a.ps, &b.addr, &one, huge[i], &out, &out_len, &type),
                         SOTTO_ERR_INVALID_ARGUMENT);
        assert_null(out);
    }
    sotto_sender_key_name n = {gid, sizeof gid, a.addr};
    assert_int_equal(sotto_group_create_distribution(&a.ps->sender_key, &n, &out, &out_len),
                     SOTTO_OK);
    free(out);
    out = NULL;
    /* (the last entry is within the larger group limit) */
    for (size_t i = 0; i + 1 < sizeof huge / sizeof huge[0]; i++)
        assert_int_equal(sotto_group_encrypt(&a.ps->sender_key, &n, &one, huge[i], &out, &out_len),
                         SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_group_encrypt(&a.ps->sender_key, &n, &one,
                                         SOTTO_GROUP_MAX_PLAINTEXT_BYTES + 1, &out, &out_len),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_null(out);

    /* Decoders given lengths larger than the buffer they can read are refused by
     * the length cap before any read (the pointer here is a 1-byte object). */
    sotto_prekey_message_info info;
    assert_int_equal(sotto_prekey_message_inspect(&info, &one, SIZE_MAX),
                     SOTTO_ERR_INVALID_MESSAGE);
    uint8_t v3 = 0x33;
    assert_int_equal(sotto_prekey_message_inspect(&info, &v3, SOTTO_MAX_MESSAGE_BYTES + 1u),
                     SOTTO_ERR_INVALID_MESSAGE);
    assert_int_equal(sotto_session_decrypt(b.ps, &a.addr, SOTTO_MSG_SIGNAL, &v3,
                                           SOTTO_MAX_MESSAGE_BYTES + 1u, &out, &out_len),
                     SOTTO_ERR_INVALID_MESSAGE);
    assert_int_equal(
        sotto_session_decrypt(b.ps, &a.addr, SOTTO_MSG_PREKEY, &v3, SIZE_MAX, &out, &out_len),
        SOTTO_ERR_INVALID_MESSAGE);
    uint32_t kid, it;
    assert_int_equal(sotto_sender_key_message_peek(&v3, SIZE_MAX, &kid, &it),
                     SOTTO_ERR_INVALID_MESSAGE);
    assert_int_equal(sotto_group_decrypt(&a.ps->sender_key, &n, &v3, SIZE_MAX, &out, &out_len),
                     SOTTO_ERR_INVALID_MESSAGE);
    sotto_sender_key_distribution skd;
    assert_int_equal(sotto_sender_key_distribution_decode(&skd, &v3, SIZE_MAX),
                     SOTTO_ERR_INVALID_MESSAGE);
    assert_int_equal(sotto_session_record_validate(&v3, SIZE_MAX), SOTTO_ERR_CORRUPT_RECORD);

    /* Attachments: sizes beyond the cap are refused, none wraps around. */
    uint8_t key[SOTTO_ATTACHMENT_KEY_BYTES] = {0}, dig[32] = {0};
    sotto_attachment_encryptor *enc = NULL;
    sotto_attachment_verifier *ver = NULL;
    assert_int_equal(sotto_attachment_padded_size(UINT64_MAX), 0);
    assert_int_equal(sotto_attachment_blob_size(UINT64_MAX), 0);
    assert_int_equal(sotto_attachment_blob_size(SOTTO_ATTACHMENT_MAX_SIZE + 1), 0);
    assert_true(sotto_attachment_blob_size(SOTTO_ATTACHMENT_MAX_SIZE) > SOTTO_ATTACHMENT_MAX_SIZE);
    assert_int_equal(sotto_attachment_encryptor_new(&enc, UINT64_MAX, key),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_null(enc);
    assert_int_equal(sotto_attachment_verifier_new(&ver, UINT64_MAX, key, dig),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_attachment_decrypt(&one, SIZE_MAX, key, dig, &one, 1),
                     SOTTO_ERR_INVALID_ARGUMENT);
    /* A claimed size that does not match the blob length is refused without
     * touching `out`. */
    assert_int_equal(sotto_attachment_decrypt(&one, 1u << 30, key, dig, &one, 1),
                     SOTTO_ERR_INVALID_MESSAGE);

    sodium_memzero(key, sizeof key);
    party_free(&a);
    party_free(&b);
}

/* ------------------------------------------------------------------------ */
/* Store failures at every callback                                          */

/*
 * Runs `op` with the store failing at call 1, 2, ... until it succeeds with
 * no failure injected. `op` returns the libsotto result and must hand out
 * no output on failure. Before each run `reset` restores the state and
 * `check` compares the owner's stores with the snapshot when no write
 * happened before the failure.
 */
typedef int (*op_fn)(void *ctx);

static unsigned every_failure(faulty *f, party *owner, const sotto_address *peer, op_fn op,
                              void (*reset)(void *ctx), void *ctx)
{
    unsigned n;
    for (n = 1;; n++) {
        snapshot before, after;
        reset(ctx);
        snap(&before, owner, peer);
        faulty_arm(f, n);
        int rc = op(ctx);
        bool injected = f->failed;
        unsigned writes = f->writes_done;
        faulty_arm(f, 0);
        if (!injected) {
            assert_int_equal(rc, SOTTO_OK);
            snap_free(&before);
            break;
        }
        assert_int_not_equal(rc, SOTTO_OK);
        if (writes == 0) {
            snap(&after, owner, peer);
            snap_equal(&before, &after);
            snap_free(&after);
        }
        snap_free(&before);
        assert_true(n < 100);
    }
    return n;
}

typedef struct sess_ctx {
    party *a, *b;
    faulty *fa, *fb;
    sotto_prekey_bundle bundle;
    uint8_t *saved_a, *saved_b; /* records to restore before each run */
    size_t saved_a_len, saved_b_len;
    wire_msg msg;
    const char *expect;
} sess_ctx;

static void restore(party *owner, party *peer, const uint8_t *rec, size_t len)
{
    if (rec == NULL)
        (void)owner->ps->session.remove(owner->ps->session.user_data, &peer->addr);
    else
        assert_int_equal(
            owner->ps->session.store(owner->ps->session.user_data, &peer->addr, rec, len),
            SOTTO_OK);
}

static void reset_a(void *p)
{
    sess_ctx *c = p;
    restore(c->a, c->b, c->saved_a, c->saved_a_len);
}

static void reset_b(void *p)
{
    sess_ctx *c = p;
    restore(c->b, c->a, c->saved_b, c->saved_b_len);
}

static int op_bundle(void *p)
{
    sess_ctx *c = p;
    return sotto_session_process_bundle(&c->fa->outer, &c->b->addr, &c->bundle);
}

static int op_encrypt(void *p)
{
    sess_ctx *c = p;
    uint8_t *out = (uint8_t *)"x";
    size_t len = 5;
    int type = 5;
    int rc = sotto_session_encrypt(&c->fa->outer, &c->b->addr, (const uint8_t *)"hello", 5, &out,
                                   &len, &type);
    if (rc != SOTTO_OK) {
        assert_null(out);
        assert_int_equal(len, 0);
        return rc;
    }
    wire_free(&c->msg);
    c->msg.data = out;
    c->msg.len = len;
    c->msg.type = type;
    return rc;
}

static int op_decrypt(void *p)
{
    sess_ctx *c = p;
    uint8_t *pt = (uint8_t *)"x";
    size_t len = 5;
    int rc = sotto_session_decrypt(&c->fb->outer, &c->a->addr, c->msg.type, c->msg.data, c->msg.len,
                                   &pt, &len);
    if (rc != SOTTO_OK) {
        assert_null(pt);
        assert_int_equal(len, 0);
        return rc;
    }
    assert_int_equal(len, strlen(c->expect));
    assert_memory_equal(pt, c->expect, len);
    sodium_memzero(pt, len);
    free(pt);
    return rc;
}

static void save_records(sess_ctx *c)
{
    free(c->saved_a);
    free(c->saved_b);
    c->saved_a = party_record(c->a, c->b, &c->saved_a_len);
    c->saved_b = party_record(c->b, c->a, &c->saved_b_len);
}

static void test_store_failures_session(void **state)
{
    (void)state;
    party a, b;
    faulty fa, fb;
    sess_ctx c;

    party_init(&a, "alice", 1);
    party_init(&b, "bob", 1);
    memset(&c, 0, sizeof c);
    c.a = &a;
    c.b = &b;
    c.fa = &fa;
    c.fb = &fb;
    c.expect = "hello";
    party_bundle(&b, true, &c.bundle);

    /* Alice: bundle, then encrypt (a PreKey message). */
    faulty_init(&fa, a.ps);
    save_records(&c);
    assert_true(every_failure(&fa, &a, &b.addr, op_bundle, reset_a, &c) > 3);
    save_records(&c);
    every_failure(&fa, &a, &b.addr, op_encrypt, reset_a, &c);
    assert_int_equal(c.msg.type, SOTTO_MSG_PREKEY);

    /* Bob: the PreKey message. A failure before the first write consumes
     * nothing; restore the prekey when a later write removed it. */
    faulty_init(&fb, b.ps);
    save_records(&c);
    for (unsigned n = 1;; n++) {
        snapshot before, after;
        reset_b(&c);
        (void)b.ps->identity.save(b.ps->identity.user_data, &a.addr, &a.identity.pub);
        snap(&before, &b, &a.addr);
        faulty_arm(&fb, n);
        int rc = op_decrypt(&c);
        bool injected = fb.failed;
        unsigned writes = fb.writes_done;
        faulty_arm(&fb, 0);
        snap(&after, &b, &a.addr);
        if (!injected) {
            assert_int_equal(rc, SOTTO_OK);
            assert_int_equal(after.prekeys, before.prekeys - 1);
            snap_free(&before);
            snap_free(&after);
            break;
        }
        assert_int_not_equal(rc, SOTTO_OK);
        if (writes == 0)
            snap_equal(&before, &after);
        snap_free(&before);
        snap_free(&after);
        assert_true(n < 100);
    }

    /* Bob replies; Alice decrypts a SignalMessage under failures. */
    wire_free(&c.msg);
    faulty_init(&fb, b.ps);
    {
        party *t = c.a;
        c.a = c.b;
        c.b = t;
        c.fa = &fb;
        c.fb = &fa;
    }
    save_records(&c);
    every_failure(&fb, &b, &a.addr, op_encrypt, reset_a, &c);
    assert_int_equal(c.msg.type, SOTTO_MSG_SIGNAL);
    faulty_init(&fa, a.ps);
    save_records(&c);
    every_failure(&fa, &a, &b.addr, op_decrypt, reset_b, &c);

    wire_free(&c.msg);
    free(c.saved_a);
    free(c.saved_b);
    party_free(&a);
    party_free(&b);
}

typedef struct grp_ctx {
    faulty *f;
    sotto_sender_key_name name;
    uint8_t *saved;
    size_t saved_len;
    party *owner;
    uint8_t *msg;
    size_t msg_len;
} grp_ctx;

static void grp_reset(void *p)
{
    grp_ctx *c = p;
    const sotto_sender_key_store *sk = &c->owner->ps->sender_key;
    if (c->saved != NULL)
        assert_int_equal(sk->store(sk->user_data, &c->name, c->saved, c->saved_len), SOTTO_OK);
}

static void grp_save(grp_ctx *c)
{
    const sotto_sender_key_store *sk = &c->owner->ps->sender_key;
    free(c->saved);
    c->saved = NULL;
    c->saved_len = 0;
    int rc = sk->load(sk->user_data, &c->name, &c->saved, &c->saved_len);
    assert_true(rc == SOTTO_OK || rc == SOTTO_ERR_NOT_FOUND);
}

static void grp_assert_unchanged(grp_ctx *c)
{
    const sotto_sender_key_store *sk = &c->owner->ps->sender_key;
    uint8_t *now = NULL;
    size_t now_len = 0;
    int rc = sk->load(sk->user_data, &c->name, &now, &now_len);
    if (c->saved == NULL) {
        assert_int_equal(rc, SOTTO_ERR_NOT_FOUND);
        return;
    }
    assert_int_equal(rc, SOTTO_OK);
    assert_int_equal(now_len, c->saved_len);
    assert_memory_equal(now, c->saved, now_len);
    free(now);
}

static int op_g_dist(void *p)
{
    grp_ctx *c = p;
    uint8_t *out = (uint8_t *)"x";
    size_t len = 3;
    int rc = sotto_group_create_distribution(&c->f->outer.sender_key, &c->name, &out, &len);
    if (rc == SOTTO_OK) {
        free(c->msg);
        c->msg = out;
        c->msg_len = len;
    }
    return rc;
}

static int op_g_process(void *p)
{
    grp_ctx *c = p;
    return sotto_group_process_distribution(&c->f->outer.sender_key, &c->name, c->msg, c->msg_len);
}

static int op_g_encrypt(void *p)
{
    grp_ctx *c = p;
    uint8_t *out = NULL;
    size_t len = 0;
    int rc = sotto_group_encrypt(&c->f->outer.sender_key, &c->name, (const uint8_t *)"grp", 3, &out,
                                 &len);
    if (rc == SOTTO_OK) {
        free(c->msg);
        c->msg = out;
        c->msg_len = len;
    }
    return rc;
}

static int op_g_decrypt(void *p)
{
    grp_ctx *c = p;
    uint8_t *out = NULL;
    size_t len = 0;
    int rc = sotto_group_decrypt(&c->f->outer.sender_key, &c->name, c->msg, c->msg_len, &out, &len);
    if (rc == SOTTO_OK) {
        assert_int_equal(len, 3);
        assert_memory_equal(out, "grp", 3);
        sodium_memzero(out, len);
        free(out);
    }
    return rc;
}

static void grp_every_failure(grp_ctx *c, op_fn op)
{
    for (unsigned n = 1;; n++) {
        grp_reset(c);
        faulty_arm(c->f, n);
        int rc = op(c);
        bool injected = c->f->failed;
        unsigned writes = c->f->writes_done;
        faulty_arm(c->f, 0);
        if (!injected) {
            assert_int_equal(rc, SOTTO_OK);
            break;
        }
        assert_int_not_equal(rc, SOTTO_OK);
        if (writes == 0)
            grp_assert_unchanged(c);
        assert_true(n < 10);
    }
}

static void test_store_failures_group(void **state)
{
    (void)state;
    party a, b;
    faulty fa, fb;
    grp_ctx ca, cb;
    const uint8_t gid[] = {'g', 0};

    party_init(&a, "alice", 1);
    party_init(&b, "bob", 1);
    faulty_init(&fa, a.ps);
    memset(&ca, 0, sizeof ca);
    ca.f = &fa;
    ca.owner = &a;
    ca.name = (sotto_sender_key_name){gid, sizeof gid, a.addr};
    grp_save(&ca);
    grp_every_failure(&ca, op_g_dist);
    grp_save(&ca);

    faulty_init(&fb, b.ps);
    memset(&cb, 0, sizeof cb);
    cb.f = &fb;
    cb.owner = &b;
    cb.name = ca.name;
    cb.msg = ca.msg;
    cb.msg_len = ca.msg_len;
    ca.msg = NULL;
    grp_save(&cb);
    grp_every_failure(&cb, op_g_process);
    grp_save(&cb);

    g_f = &fa;
    grp_every_failure(&ca, op_g_encrypt);
    g_f = &fb;
    free(cb.msg);
    cb.msg = ca.msg;
    cb.msg_len = ca.msg_len;
    ca.msg = NULL;
    grp_every_failure(&cb, op_g_decrypt);

    free(ca.saved);
    free(cb.saved);
    free(cb.msg);
    party_free(&a);
    party_free(&b);
}

/* ------------------------------------------------------------------------ */
/* Garbage stored records                                                     */

static void test_corrupt_records(void **state)
{
    (void)state;
    party a, b;
    uint8_t garbage[300];
    uint8_t *out = NULL;
    size_t out_len = 0;
    int type = 0;
    bool exists = true;
    const uint8_t gid[] = {'g'};

    party_init(&a, "alice", 1);
    party_init(&b, "bob", 1);
    party_start(&a, &b, false);
    wire_msg m = party_encrypt(&a, &b, "hi");
    party_start(&b, &a, false);
    wire_msg m2 = party_encrypt(&b, &a, "yo");

    for (unsigned i = 0; i < 64; i++) {
        size_t n = 1 + (i * 37) % sizeof garbage;
        randombytes_buf(garbage, n);
        if (i & 1)
            garbage[0] = 1; /* right format version: deeper parsing */
        if (i & 2)
            garbage[1] = 1;
        assert_int_equal(sotto_session_record_validate(garbage, n), SOTTO_ERR_CORRUPT_RECORD);
        assert_int_equal(a.ps->session.store(a.ps->session.user_data, &b.addr, garbage, n),
                         SOTTO_OK);
        assert_int_equal(
            sotto_session_encrypt(a.ps, &b.addr, (const uint8_t *)"a", 1, &out, &out_len, &type),
            SOTTO_ERR_CORRUPT_RECORD);
        assert_null(out);
        assert_int_equal(sotto_session_exists(a.ps, &b.addr, &exists), SOTTO_ERR_CORRUPT_RECORD);
        assert_false(exists);
        assert_int_equal(
            sotto_session_decrypt(a.ps, &b.addr, m2.type, m2.data, m2.len, &out, &out_len),
            SOTTO_ERR_CORRUPT_RECORD);
        assert_null(out);
        uint8_t *now = party_record(&a, &b, &out_len);
        assert_int_equal(out_len, n);
        assert_memory_equal(now, garbage, n);
        free(now);
        out_len = 0;

        /* Bob gets a PreKey message while his record for Alice is garbage. */
        assert_int_equal(b.ps->session.store(b.ps->session.user_data, &a.addr, garbage, n),
                         SOTTO_OK);
        size_t pk_before = sotto_memory_store_prekey_count(b.ms);
        assert_int_equal(
            sotto_session_decrypt(b.ps, &a.addr, m.type, m.data, m.len, &out, &out_len),
            SOTTO_ERR_CORRUPT_RECORD);
        assert_int_equal(sotto_memory_store_prekey_count(b.ms), pk_before);

        sotto_sender_key_name sn = {gid, sizeof gid, a.addr};
        assert_int_equal(a.ps->sender_key.store(a.ps->sender_key.user_data, &sn, garbage, n),
                         SOTTO_OK);
        assert_int_equal(
            sotto_group_encrypt(&a.ps->sender_key, &sn, (const uint8_t *)"a", 1, &out, &out_len),
            SOTTO_ERR_CORRUPT_RECORD);
        assert_int_equal(sotto_group_create_distribution(&a.ps->sender_key, &sn, &out, &out_len),
                         SOTTO_ERR_CORRUPT_RECORD);
        assert_null(out);
    }
    wire_free(&m);
    wire_free(&m2);
    party_free(&a);
    party_free(&b);
}

/* ------------------------------------------------------------------------ */
/* Low-order points                                                           */

/* The Curve25519 points of small order (u-coordinates, little-endian), as
 * listed for the X25519 "zero shared secret" checks: 0, 1, the order-8
 * points, p - 1, p, p + 1. */
static const uint8_t low_order[][32] = {
    {0},
    {1},
    {0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3,
     0xfa, 0xf1, 0x9f, 0xc4, 0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32,
     0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00},
    {0x5f, 0x9c, 0x95, 0xbc, 0xa3, 0x50, 0x8c, 0x24, 0xb1, 0xd0, 0xb1,
     0x55, 0x9c, 0x83, 0xef, 0x5b, 0x04, 0x44, 0x5c, 0xc4, 0x58, 0x1c,
     0x8e, 0x86, 0xd8, 0x22, 0x4e, 0xdd, 0xd0, 0x9f, 0x11, 0x57},
    {0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
    {0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
    {0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
};
#define N_LOW_ORDER (sizeof low_order / sizeof low_order[0])

/* Replaces the first occurrence of the 33-byte key `from` in m with `to`. */
static void replace_key(wire_msg *m, const uint8_t from[33], const uint8_t to[33])
{
    for (size_t i = 0; i + 33 <= m->len; i++) {
        if (memcmp(m->data + i, from, 33) == 0) {
            memcpy(m->data + i, to, 33);
            return;
        }
    }
    fail_msg("key not found in message");
}

static void test_low_order_points(void **state)
{
    (void)state;
    party a, b;

    party_init(&a, "alice", 1);
    party_init(&b, "bob", 1);

    /* 1. A signed prekey of small order, with a valid signature from Bob's
     * identity: refused, nothing stored, no identity saved. */
    for (size_t i = 0; i < N_LOW_ORDER; i++) {
        sotto_prekey_bundle bundle;
        party_bundle(&b, false, &bundle);
        bundle.signed_prekey.bytes[0] = SOTTO_KEY_TYPE_DJB;
        memcpy(bundle.signed_prekey.bytes + 1, low_order[i], 32);
        assert_int_equal(sotto_xeddsa_sign(bundle.signed_prekey_signature, b.identity.priv,
                                           bundle.signed_prekey.bytes, SOTTO_PUBLIC_KEY_BYTES),
                         SOTTO_OK);
        assert_int_equal(sotto_session_process_bundle(a.ps, &b.addr, &bundle),
                         SOTTO_ERR_INVALID_KEY);
        assert_int_equal(sotto_memory_store_session_count(a.ms), 0);
        sotto_public_key saved;
        assert_int_equal(a.ps->identity.get(a.ps->identity.user_data, &b.addr, &saved),
                         SOTTO_ERR_NOT_FOUND);
        /* ... and as a one-time prekey. */
        party_bundle(&b, true, &bundle);
        memcpy(bundle.prekey.bytes + 1, low_order[i], 32);
        assert_int_equal(sotto_session_process_bundle(a.ps, &b.addr, &bundle),
                         SOTTO_ERR_INVALID_KEY);
        assert_int_equal(sotto_memory_store_session_count(a.ms), 0);
    }

    /* 2. A PreKey message whose base key is of small order. */
    party_start(&a, &b, true);
    wire_msg m = party_encrypt(&a, &b, "genuine");
    uint8_t base[33];
    sotto_prekey_message_info info;
    assert_int_equal(sotto_prekey_message_inspect(&info, m.data, m.len), SOTTO_OK);
    memcpy(base, info.base_key.bytes, 33);
    for (size_t i = 0; i < N_LOW_ORDER; i++) {
        wire_msg bad = {malloc(m.len), m.len, m.type};
        uint8_t lo[33] = {SOTTO_KEY_TYPE_DJB};
        memcpy(bad.data, m.data, m.len);
        memcpy(lo + 1, low_order[i], 32);
        replace_key(&bad, base, lo);
        expect_reject_unchanged(&b, &a, &bad, SOTTO_ERR_INVALID_MESSAGE);
        wire_free(&bad);
    }
    assert_int_equal(party_decrypt(&b, &a, &m, "genuine"), SOTTO_OK);
    wire_free(&m);

    /* 3. A SignalMessage whose ratchet key is of small order. */
    wire_msg r = party_encrypt(&b, &a, "reply");
    assert_int_equal(r.type, SOTTO_MSG_SIGNAL);
    uint8_t ratchet[33];
    memcpy(ratchet, r.data + 3, 33); /* 0x33, tag 0x0a, length 33 */
    for (size_t i = 0; i < N_LOW_ORDER; i++) {
        wire_msg bad = {malloc(r.len), r.len, r.type};
        uint8_t lo[33] = {SOTTO_KEY_TYPE_DJB};
        memcpy(bad.data, r.data, r.len);
        memcpy(lo + 1, low_order[i], 32);
        replace_key(&bad, ratchet, lo);
        expect_reject_unchanged(&a, &b, &bad, SOTTO_ERR_INVALID_MESSAGE);
        wire_free(&bad);
    }
    assert_int_equal(party_decrypt(&a, &b, &r, "reply"), SOTTO_OK);
    wire_free(&r);

    /* 4. An SKDM whose signing key is of small order is accepted (it is only
     * a public key), but no message can ever verify under it. */
    const uint8_t gid[] = {'l', 'o'};
    sotto_sender_key_name an = {gid, sizeof gid, a.addr};
    sotto_sender_key_distribution d;
    uint8_t *skdm = NULL, *skm = NULL, *pt = NULL;
    size_t skdm_len = 0, skm_len = 0, pt_len = 0;
    assert_int_equal(sotto_group_create_distribution(&a.ps->sender_key, &an, &skdm, &skdm_len),
                     SOTTO_OK);
    assert_int_equal(sotto_sender_key_distribution_decode(&d, skdm, skdm_len), SOTTO_OK);
    free(skdm);
    assert_int_equal(
        sotto_group_encrypt(&a.ps->sender_key, &an, (const uint8_t *)"g", 1, &skm, &skm_len),
        SOTTO_OK);
    for (size_t i = 0; i < N_LOW_ORDER; i++) {
        memcpy(d.signing_key.bytes + 1, low_order[i], 32);
        assert_int_equal(sotto_sender_key_distribution_encode(&d, &skdm, &skdm_len), SOTTO_OK);
        assert_int_equal(sotto_group_process_distribution(&b.ps->sender_key, &an, skdm, skdm_len),
                         SOTTO_OK);
        free(skdm);
        assert_int_equal(sotto_group_decrypt(&b.ps->sender_key, &an, skm, skm_len, &pt, &pt_len),
                         SOTTO_ERR_INVALID_SIGNATURE);
        assert_null(pt);
    }
    free(skm);
    sodium_memzero(&d, sizeof d);
    party_free(&a);
    party_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_null_arguments),         cmocka_unit_test(test_huge_sizes),
        cmocka_unit_test(test_store_failures_session), cmocka_unit_test(test_store_failures_group),
        cmocka_unit_test(test_corrupt_records),        cmocka_unit_test(test_low_order_points),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
