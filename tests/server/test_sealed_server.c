/*
 * tests/server/test_sealed_server.c -- sealed sender in a real sottod (API
 * v5, issue 12; docs/api.md "Sealed sender"), over the raw protocol
 * (tests/server/tclient.c); certificates and sealed messages checked with
 * libsotto (include/sotto/sealed.h).
 *
 *   - the trust root comes in RegisterResponse and LoginResponse (the same
 *     33 bytes, equal to `sottod admin sealed-root`, kept across a
 *     restart, keys 0600); a sender certificate (op 33) validates under it
 *     and names the device's username, device id and stored identity key,
 *     expiring after sender_cert_validity_s;
 *   - sealed sends with no token set, a wrong token, a cleared token are
 *     refused (UNAUTHENTICATED "delivery token") and nothing is queued;
 *     type 6 on an identified send and other types on a sealed one are
 *     refused; the right token on a connection that never logged in
 *     queues it, past the 16 pre-login requests; the recipient gets it with
 *     source "" and device 0 and decrypts it to the right sender;
 *   - while it is queued, the raw bytes of sottod.db and its WAL gain no
 *     copy of the sender's username (an identified send, the control, does);
 *   - sottod-test's SOTTOD_TEST_SENDER_CERT hooks (expired, other,
 *     rogue_root) give certificates that libsotto refuses in that way;
 *   - a lost sealed-root.key is not silently replaced: once the store is
 *     marked (meta 'sealed_root'), a start without the file is refused
 *     with a reason naming it, until `sottod admin new-sealed-root`; a
 *     store without the marker (made before it existed) starts and gets
 *     it; a fresh data directory starts.
 */
#define _GNU_SOURCE 1
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>

#include "sotto/sealed.h"
#include "tclient.h"

#define OK SOTTO__API__STATUS__STATUS_OK
#define UNAUTH SOTTO__API__STATUS__STATUS_UNAUTHENTICATED
#define BAD SOTTO__API__STATUS__STATUS_BAD_REQUEST

static int setup(void **state)
{
    tc_server *s = calloc(1, sizeof(*s));

    assert_non_null(s);
    assert_int_equal(sotto_init(), SOTTO_OK);
    assert_int_equal(tc_server_init(s), 0);
    *state = s;
    return 0;
}

static int teardown(void **state)
{
    tc_server *s = *state;

    if (tc_server_alive(s))
        tc_server_stop(s);
    tc_server_cleanup(s);
    free(s);
    return 0;
}

static uint64_t now_ms(void)
{
    struct timeval tv;

    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000u + (uint64_t)tv.tv_usec / 1000u;
}

/* op 33 on a logged-in connection: the certificate (malloc'd) and expiry. */
static int get_cert(tc_conn *c, uint8_t **cert, size_t *len, uint64_t *expires)
{
    tc_cframe f = SOTTO__API__CLIENT_FRAME__INIT;
    Sotto__Api__SenderCertificateRequest rq = SOTTO__API__SENDER_CERTIFICATE_REQUEST__INIT;
    tc_sframe *r;
    int st;

    f.op_case = SOTTO__API__CLIENT_FRAME__OP_SENDER_CERTIFICATE;
    f.sender_certificate = &rq;
    r = tc_call(c, &f, 10000);
    assert_non_null(r);
    st = r->status;
    if (st == OK) {
        assert_int_equal(r->result_case, SOTTO__API__SERVER_FRAME__RESULT_SENDER_CERTIFICATE);
        *len = r->sender_certificate->certificate.len;
        *cert = malloc(*len);
        assert_non_null(*cert);
        memcpy(*cert, r->sender_certificate->certificate.data, *len);
        *expires = r->sender_certificate->expires_ms;
    }
    tc_free(r);
    return st;
}

/* op 34: token (16 bytes) or NULL to clear. */
static int set_token(tc_conn *c, const uint8_t *token)
{
    tc_cframe f = SOTTO__API__CLIENT_FRAME__INIT;
    Sotto__Api__SetDeliveryTokenRequest rq = SOTTO__API__SET_DELIVERY_TOKEN_REQUEST__INIT;
    tc_sframe *r;
    int st;

    if (token != NULL) {
        rq.token.data = (uint8_t *)token;
        rq.token.len = 16;
    }
    f.op_case = SOTTO__API__CLIENT_FRAME__OP_SET_DELIVERY_TOKEN;
    f.set_delivery_token = &rq;
    r = tc_call(c, &f, 10000);
    assert_non_null(r);
    st = r->status;
    if (st == OK)
        assert_int_equal(r->result_case, SOTTO__API__SERVER_FRAME__RESULT_SET_DELIVERY_TOKEN);
    tc_free(r);
    return st;
}

/* A sealed send of one message to (dest, d); the answer's error text is
 * checked to contain `want_error` when not NULL. */
static int sealed_send(tc_conn *c, const tc_device *d, const uint8_t *token, uint32_t type,
                       const uint8_t *body, size_t len, const char *want_error)
{
    tc_sframe *r = NULL;
    int st = tc_send_ex(c, d->username, token, type, &d->device_id, &d->registration_id, 1, body,
                        len, &r);
    if (want_error != NULL) {
        assert_non_null(r);
        assert_non_null(r->error);
        if (strstr(r->error, want_error) == NULL)
            fail_msg("error \"%s\" does not name \"%s\"", r->error, want_error);
    }
    tc_free(r);
    return st;
}

/* Reads a whole file (malloc'd); NULL with *n 0 if missing. */
static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *fp = fopen(path, "rb");
    uint8_t *buf = NULL;
    long sz;

    *n = 0;
    if (fp == NULL)
        return NULL;
    if (fseek(fp, 0, SEEK_END) == 0 && (sz = ftell(fp)) > 0 && fseek(fp, 0, SEEK_SET) == 0) {
        buf = malloc((size_t)sz);
        if (buf != NULL && fread(buf, 1, (size_t)sz, fp) == (size_t)sz)
            *n = (size_t)sz;
    }
    fclose(fp);
    return buf;
}

/* Occurrences of `needle` in the raw bytes of sottod.db and sottod.db-wal. */
static size_t raw_hits(const tc_server *s, const char *needle)
{
    static const char *const files[] = {"sottod.db", "sottod.db-wal"};
    size_t hits = 0, nl = strlen(needle);

    for (size_t i = 0; i < 2; i++) {
        char path[512];
        size_t n;
        snprintf(path, sizeof(path), "%s/%s", s->dir, files[i]);
        uint8_t *b = slurp(path, &n);
        for (size_t k = 0; b != NULL && k + nl <= n; k++)
            if (memcmp(b + k, needle, nl) == 0)
                hits++;
        free(b);
    }
    return hits;
}

/* Root in the answers, admin sealed-root, a certificate that validates,
 * keys 0600 and the same root after a restart. */
static void test_trust_root_and_certificate(void **state)
{
    tc_server *s = *state;
    tc_device alice;
    tc_conn *a, *a2;
    uint8_t root_reg[33], *cert = NULL;
    size_t cert_len = 0;
    uint64_t expires = 0, t0;
    sotto_public_key root;
    sotto_sender_certificate sc;
    char hex[67], path[512];
    struct stat sb;
    int status = -1;
    static const char *const sets[] = {"durability=process", "sender_cert_validity_s=3600", NULL};

    assert_int_equal(tc_server_start(s, sets), 0);
    a = tc_new_user(s, &alice, "alice", 0);
    assert_non_null(a);
    assert_int_equal(a->sealed_root_len, 33);
    assert_int_equal(a->sealed_root[0], 0x05);
    memcpy(root_reg, a->sealed_root, 33);

    /* LoginResponse carries the same root. */
    a2 = tc_connect(s);
    assert_non_null(a2);
    assert_int_equal(tc_login(a2, &alice), OK);
    assert_int_equal(a2->sealed_root_len, 33);
    assert_memory_equal(a2->sealed_root, root_reg, 33);

    /* The operator prints it. */
    static const char *const args[] = {"sealed-root", NULL};
    char *out = tc_admin(s, args, &status);
    assert_int_equal(status, 0);
    assert_non_null(out);
    sodium_bin2hex(hex, sizeof(hex), root_reg, 33);
    assert_int_equal(strlen(out), 67);
    assert_memory_equal(out, hex, 66);
    free(out);
    for (size_t i = 0; i < 2; i++) {
        snprintf(path, sizeof(path), "%s/%s", s->dir,
                 i == 0 ? "sealed-root.key" : "sealed-server.key");
        assert_int_equal(stat(path, &sb), 0);
        assert_int_equal(sb.st_size, 32);
        assert_int_equal(sb.st_mode & 0777, 0600);
    }

    /* A sender certificate for (alice, 1, her identity key); a2's login
     * closed a (one connection per device). */
    t0 = now_ms();
    assert_int_equal(get_cert(a2, &cert, &cert_len, &expires), OK);
    assert_int_equal(sotto_public_key_decode(&root, root_reg, 33), SOTTO_OK);
    assert_int_equal(sotto_sender_certificate_validate(&sc, cert, cert_len, &root, t0), SOTTO_OK);
    assert_string_equal(sc.sender, "alice");
    assert_int_equal(sc.device_id, 1);
    assert_memory_equal(sc.identity_key.bytes, alice.identity.pub.bytes, 33);
    assert_int_equal(sc.signer.key_id, 1);
    assert_int_equal(sc.expires_ms, expires);
    assert_true(expires >= t0 + 3600u * 1000u - 5000u && expires <= now_ms() + 3600u * 1000u);
    /* ... and is refused after its expiry, and under another root. */
    assert_int_equal(sotto_sender_certificate_validate(&sc, cert, cert_len, &root, expires + 1),
                     SOTTO_ERR_CERT_EXPIRED);
    {
        sotto_key_pair other;
        assert_int_equal(sotto_key_pair_generate(&other), SOTTO_OK);
        assert_int_equal(sotto_sender_certificate_validate(&sc, cert, cert_len, &other.pub, t0),
                         SOTTO_ERR_CERT_UNTRUSTED);
        sotto_key_pair_wipe(&other);
    }
    free(cert);
    printf("sealed: root %.16s..., certificate %zu bytes, valid %llu s\n", hex, cert_len,
           (unsigned long long)((expires - t0) / 1000u));

    /* Op 33 and 34 need login. */
    {
        tc_conn *anon = tc_connect(s);
        assert_non_null(anon);
        assert_int_equal(get_cert(anon, &cert, &cert_len, &expires), UNAUTH);
        assert_int_equal(set_token(anon, (const uint8_t *)"0123456789abcdef"), UNAUTH);
        tc_close(anon);
    }
    tc_close(a);
    tc_close(a2);

    /* The keys are kept: the same root after a restart. */
    assert_int_equal(tc_server_stop(s), 0);
    assert_int_equal(tc_server_restart(s), 0);
    a = tc_connect(s);
    assert_non_null(a);
    assert_int_equal(tc_login(a, &alice), OK);
    assert_memory_equal(a->sealed_root, root_reg, 33);
    tc_close(a);
    tc_device_wipe(&alice);
}

/* Token checks, type rules, delivery without a sender, and no sender
 * username added to the database files while queued. */
static void test_sealed_send(void **state)
{
    tc_server *s = *state;
    tc_device alice, bob;
    tc_conn *a, *b, *anon;
    uint8_t token[16], wrong[16], pk[32], *cert = NULL, *sealed = NULL;
    size_t cert_len = 0, sealed_len = 0;
    uint64_t expires = 0;
    sotto_public_key root;
    static const char *const sets[] = {"durability=process", "scrub_delay_s=1", NULL};
    static const uint8_t inner[] = "an inner Signal message (opaque to the server)";

    assert_int_equal(tc_server_start(s, sets), 0);
    a = tc_new_user(s, &alice, "alice", 0);
    b = tc_new_user(s, &bob, "bobthesender", 0);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(sotto_public_key_decode(&root, a->sealed_root, 33), SOTTO_OK);
    randombytes_buf(pk, sizeof(pk));
    assert_int_equal(sotto_delivery_token_derive(token, pk), SOTTO_OK);
    memcpy(wrong, token, 16);
    wrong[15] ^= 0x01;

    /* bob seals a real message for alice with his certificate. */
    assert_int_equal(get_cert(b, &cert, &cert_len, &expires), OK);
    assert_int_equal(sotto_sealed_encrypt(&sealed, &sealed_len, &bob.identity, &alice.identity.pub,
                                          SOTTO_SEALED_TYPE_MESSAGE, cert, cert_len, inner,
                                          sizeof(inner)),
                     SOTTO_OK);
    tc_close(a); /* alice offline: everything queues */

    anon = tc_connect(s); /* never logs in */
    assert_non_null(anon);
    /* alice has no token yet */
    assert_int_equal(sealed_send(anon, &alice, token, 6, sealed, sealed_len, "delivery token"),
                     UNAUTH);
    /* identified send needs login; type 6 needs a token; a sealed send
     * only carries type 6 */
    assert_int_equal(sealed_send(anon, &alice, NULL, 2, sealed, sealed_len, "log in"), UNAUTH);
    assert_int_equal(sealed_send(b, &alice, NULL, 6, sealed, sealed_len, "delivery_token"), BAD);
    assert_int_equal(sealed_send(anon, &alice, token, 2, sealed, sealed_len, "type 6"), BAD);

    a = tc_connect(s);
    assert_non_null(a);
    assert_int_equal(tc_login(a, &alice), OK);
    assert_int_equal(set_token(a, token), OK);
    {
        /* not 16 bytes */
        tc_cframe f = SOTTO__API__CLIENT_FRAME__INIT;
        Sotto__Api__SetDeliveryTokenRequest rq = SOTTO__API__SET_DELIVERY_TOKEN_REQUEST__INIT;
        rq.token.data = token;
        rq.token.len = 15;
        f.op_case = SOTTO__API__CLIENT_FRAME__OP_SET_DELIVERY_TOKEN;
        f.set_delivery_token = &rq;
        tc_sframe *r = tc_call(a, &f, 10000);
        assert_non_null(r);
        assert_int_equal(r->status, BAD);
        tc_free(r);
    }
    tc_close(a);
    assert_int_equal(sealed_send(anon, &alice, wrong, 6, sealed, sealed_len, "delivery token"),
                     UNAUTH);
    {
        /* a mismatched device set is answered as for identified sends */
        tc_sframe *r = NULL;
        uint32_t dev = 7, reg = 1;
        assert_int_equal(tc_send_ex(anon, "alice", token, 6, &dev, &reg, 1, sealed, sealed_len, &r),
                         SOTTO__API__STATUS__STATUS_MISMATCHED_DEVICES);
        assert_non_null(r->mismatch);
        assert_int_equal(r->mismatch->n_missing, 1);
        assert_int_equal(r->mismatch->missing[0], 1);
        tc_free(r);
    }

    /* Baseline of the sender's name in the raw files once the WAL is
     * scrubbed (his account row and key-transparency entry). */
    sleep(3);
    size_t base = raw_hits(s, "bobthesender");
    /* The sealed send goes through (more than the 16 pre-login requests on
     * this connection: sealed sends do not count towards them). */
    assert_int_equal(sealed_send(anon, &alice, token, 6, sealed, sealed_len, NULL), OK);
    /* A sealed send on bob's logged-in connection stores no sender either
     * (before the identified control: a WAL frame of a page holding the
     * identified envelope would count again). */
    assert_int_equal(sealed_send(b, &alice, token, 6, sealed, sealed_len, NULL), OK);
    size_t after_sealed = raw_hits(s, "bobthesender");
    /* Control: an identified envelope names its sender. */
    assert_int_equal(tc_send_msg(b, "alice", &alice.device_id, &alice.registration_id, 1, inner,
                                 sizeof(inner), NULL),
                     OK);
    size_t after_identified = raw_hits(s, "bobthesender");
    printf("sealed: \"bobthesender\" in sottod.db + WAL: %zu before, %zu with the sealed envelope "
           "queued, %zu with an identified one too\n",
           base, after_sealed, after_identified);
    assert_int_equal(after_sealed, base);
    assert_true(after_identified > after_sealed);
    for (int i = 0; i < 20; i++) /* past SOTTOD_MAX_PREAUTH_REQUESTS = 16 */
        assert_int_equal(sealed_send(anon, &alice, wrong, 6, sealed, sealed_len, NULL), UNAUTH);

    /* alice clears her token: the old one no longer works. */
    a = tc_connect(s);
    assert_non_null(a);
    assert_int_equal(tc_login(a, &alice), OK);
    {
        /* The pushes: the two sealed ones without a source (the second
         * although bob was logged in), then bob's identified one. */
        tc_sframe *p;
        int got = 0;
        while (got < 3 && (p = tc_next_push(a, 5000)) != NULL) {
            if (p->result_case != SOTTO__API__SERVER_FRAME__RESULT_PUSH) {
                tc_free(p);
                continue;
            }
            if (got != 2) {
                sotto_sealed_result res;
                assert_int_equal(p->push->type, 6);
                assert_string_equal(p->push->source, "");
                assert_int_equal(p->push->source_device_id, 0);
                assert_int_equal(p->push->body.len, sealed_len);
                assert_int_equal(sotto_sealed_decrypt(&res, p->push->body.data, p->push->body.len,
                                                      &alice.identity, &root, now_ms()),
                                 SOTTO_OK);
                assert_string_equal(res.sender.sender, "bobthesender");
                assert_int_equal(res.sender.device_id, 1);
                assert_int_equal(res.content_len, sizeof(inner));
                assert_memory_equal(res.content, inner, sizeof(inner));
                sotto_sealed_result_free(&res);
            } else {
                assert_int_equal(p->push->type, 2);
                assert_string_equal(p->push->source, "bobthesender");
                assert_int_equal(p->push->source_device_id, 1);
            }
            assert_int_equal(tc_ack(a, p->id), 0);
            got++;
            tc_free(p);
        }
        assert_int_equal(got, 3);
        /* Nothing else was queued by the refused sends. */
        p = tc_next_push(a, 500);
        assert_null(p);
    }
    assert_int_equal(set_token(a, NULL), OK);
    assert_int_equal(sealed_send(anon, &alice, token, 6, sealed, sealed_len, "delivery token"),
                     UNAUTH);
    tc_sframe *p = tc_next_push(a, 500);
    assert_null(p);

    free(cert);
    free(sealed);
    tc_close(anon);
    tc_close(a);
    tc_close(b);
    tc_device_wipe(&alice);
    tc_device_wipe(&bob);
}

/* A connection that never logs in: held to the pre-login frame size and
 * login deadline until a sealed send's token checks out (a send with no
 * messages is enough), then frame_max and no deadline; the per-recipient
 * sealed rate (burst 3) refuses the 4th sealed send that queues something
 * (the empty one queued nothing and took none) while identified ones pass. */
static void test_sealed_limits(void **state)
{
    tc_server *s = *state;
    tc_device alice, bob;
    tc_conn *a, *b, *plain, *opened, *idle;
    uint8_t token[16], big[6000];
    tc_sframe *r = NULL;
    static const char *const sets[] = {"durability=process", "auth_timeout_s=2",
                                       "rate_sealed_burst=3", "rate_sealed_per_min=1", NULL};

    assert_int_equal(tc_server_start(s, sets), 0);
    a = tc_new_user(s, &alice, "alice", 0);
    b = tc_new_user(s, &bob, "bob", 0);
    assert_non_null(a);
    assert_non_null(b);
    randombytes_buf(token, sizeof(token));
    randombytes_buf(big, sizeof(big));
    assert_int_equal(set_token(a, token), OK);

    /* Not yet upgraded: a 6000-byte frame is over preauth_frame_max. */
    plain = tc_connect(s);
    assert_non_null(plain);
    int st = sealed_send(plain, &alice, token, 6, big, sizeof(big), NULL);
    assert_true(st == SOTTO__API__STATUS__STATUS_PROTOCOL_ERROR || st == TC_CLOSED);
    tc_close(plain);

    /* Opened with an empty sealed send (MISMATCHED_DEVICES), then big. */
    opened = tc_connect(s);
    idle = tc_connect(s);
    assert_non_null(opened);
    assert_non_null(idle);
    assert_int_equal(tc_send_ex(opened, "alice", token, 6, NULL, NULL, 0, NULL, 0, &r),
                     SOTTO__API__STATUS__STATUS_MISMATCHED_DEVICES);
    tc_free(r);
    sleep(3); /* past auth_timeout_s: `idle` is closed, `opened` is not */
    assert_int_equal(sealed_send(opened, &alice, token, 6, big, sizeof(big), NULL), OK);
    assert_int_equal(sealed_send(opened, &alice, token, 6, big, 100, NULL), OK);
    assert_int_equal(sealed_send(opened, &alice, token, 6, big, 100, NULL), OK);
    assert_int_equal(sealed_send(opened, &alice, token, 6, big, 100, "sealed messages to this"),
                     SOTTO__API__STATUS__STATUS_RATE_LIMITED);
    assert_int_equal(
        tc_send_msg(b, "alice", &alice.device_id, &alice.registration_id, 1, big, 100, NULL), OK);
    st = sealed_send(idle, &alice, token, 6, big, 100, NULL);
    assert_true(st == TC_CLOSED || st == TC_ERR);
    printf("sealed: empty-send upgrade, 6000-byte frame after it OK, 4th sealed send rate "
           "limited, idle pre-login connection closed (%d)\n",
           st);
    tc_close(idle);
    tc_close(opened);
    tc_close(a);
    tc_close(b);
    tc_device_wipe(&alice);
    tc_device_wipe(&bob);
}

/* Issue 12 review (R2, finding 1): sends that queue nothing (no messages,
 * a mismatched device set) and sends refused by the recipient's sealed
 * queue cap do not take from the recipient's shared sealed bucket, so one
 * holder of the token cannot empty it for every other contact. */
static void test_sealed_drain(void **state)
{
    tc_server *s = *state;
    tc_device alice, mal;
    tc_conn *a, *m, *mc, *hc;
    uint8_t token[16];
    uint32_t bad_dev = 9, bad_reg = 1;
    int mm = 0, qf = 0;
    static const char *const sets[] = {"durability=process", "rate_sealed_burst=4",
                                       "rate_sealed_per_min=1", "queue_sealed_max=2", NULL};

    assert_int_equal(tc_server_start(s, sets), 0);
    a = tc_new_user(s, &alice, "alice", 0);
    m = tc_new_user(s, &mal, "mallory", 0);
    assert_non_null(a);
    assert_non_null(m);
    randombytes_buf(token, sizeof(token));
    assert_int_equal(set_token(a, token), OK);
    tc_close(a); /* offline: sealed envelopes wait */

    /* mallory (a contact: she has the token) sends 30 empty sends and 30
     * to a device alice does not have: 60 x MISMATCHED_DEVICES */
    mc = tc_connect(s);
    assert_non_null(mc);
    for (int i = 0; i < 30; i++) {
        tc_sframe *r = NULL;
        if (tc_send_ex(mc, "alice", token, 6, NULL, NULL, 0, NULL, 0, &r) ==
            SOTTO__API__STATUS__STATUS_MISMATCHED_DEVICES)
            mm++;
        tc_free(r);
        r = NULL;
        if (tc_send_ex(mc, "alice", token, 6, &bad_dev, &bad_reg, 1, (const uint8_t *)"x", 1, &r) ==
            SOTTO__API__STATUS__STATUS_MISMATCHED_DEVICES)
            mm++;
        tc_free(r);
    }
    /* then fills queue_sealed_max (2) and keeps sending: QUEUE_FULL */
    int first = sealed_send(mc, &alice, token, 6, (const uint8_t *)"m1", 2, NULL);
    int second = sealed_send(mc, &alice, token, 6, (const uint8_t *)"m2", 2, NULL);
    for (int i = 0; i < 10; i++)
        if (sealed_send(mc, &alice, token, 6, (const uint8_t *)"m3", 2, "queue_sealed_max") ==
            SOTTO__API__STATUS__STATUS_QUEUE_FULL)
            qf++;
    printf("sealed drain: mallory 60 sends queueing nothing: %d MISMATCHED_DEVICES; her first "
           "real sends: %d %d; then %d x QUEUE_FULL\n",
           mm, first, second, qf);
    assert_int_equal(mm, 60);
    assert_int_equal(first, OK);
    assert_int_equal(second, OK);
    assert_int_equal(qf, 10);

    /* alice reads both: the queue is empty again */
    a = tc_connect(s);
    assert_non_null(a);
    assert_int_equal(tc_login(a, &alice), OK);
    for (int got = 0; got < 2;) {
        tc_sframe *p = tc_next_push(a, 5000);
        assert_non_null(p);
        if (p->result_case == SOTTO__API__SERVER_FRAME__RESULT_PUSH) {
            assert_int_equal(tc_ack(a, p->id), 0);
            got++;
        }
        tc_free(p);
    }
    tc_close(a);
    usleep(300000);

    /* an honest contact on its own connection: the 2 tokens mallory's two
     * queued envelopes left (burst 4), then the recipient's rate */
    hc = tc_connect(s);
    assert_non_null(hc);
    assert_int_equal(sealed_send(hc, &alice, token, 6, (const uint8_t *)"hi", 2, NULL), OK);
    assert_int_equal(sealed_send(hc, &alice, token, 6, (const uint8_t *)"hi", 2, NULL), OK);
    assert_int_equal(sealed_send(hc, &alice, token, 6, (const uint8_t *)"hi", 2,
                                 "sealed messages to this recipient"),
                     SOTTO__API__STATUS__STATUS_RATE_LIMITED);
    tc_close(hc);
    tc_close(mc);
    tc_close(m);
    tc_device_wipe(&alice);
    tc_device_wipe(&mal);
}

/* Issue 12 review (R2, finding 3): before login, a sealed send to an
 * account that does not exist is answered exactly as one with a wrong
 * token (status and error text), so it tells nothing about which
 * usernames exist; and it does not upgrade the connection. */
static void test_sealed_no_account_oracle(void **state)
{
    tc_server *s = *state;
    tc_device alice, ghost, carol;
    tc_conn *a, *c, *anon;
    uint8_t token[16], wrong[16];
    char err_missing[200] = "", err_wrong[200] = "", err_unset[200] = "";
    int st_missing, st_wrong, st_unset;
    static const char *const sets[] = {"durability=process", NULL};

    assert_int_equal(tc_server_start(s, sets), 0);
    a = tc_new_user(s, &alice, "alice", 0);
    c = tc_new_user(s, &carol, "carol", 0); /* never sets a token */
    assert_non_null(a);
    assert_non_null(c);
    randombytes_buf(token, sizeof(token));
    randombytes_buf(wrong, sizeof(wrong));
    assert_int_equal(set_token(a, token), OK);
    tc_device_new(&ghost, "nosuchuser");
    ghost.device_id = 1;
    ghost.registration_id = 1;

    anon = tc_connect(s);
    assert_non_null(anon);
    for (int with_message = 0; with_message < 2; with_message++) {
        tc_sframe *r = NULL;
        uint32_t n = with_message ? 1 : 0;
        st_missing = tc_send_ex(anon, "nosuchuser", wrong, 6, &ghost.device_id,
                                &ghost.registration_id, n, (const uint8_t *)"x", 1, &r);
        snprintf(err_missing, sizeof(err_missing), "%s", r != NULL && r->error ? r->error : "");
        tc_free(r);
        r = NULL;
        st_wrong = tc_send_ex(anon, "alice", wrong, 6, &alice.device_id, &alice.registration_id, n,
                              (const uint8_t *)"x", 1, &r);
        snprintf(err_wrong, sizeof(err_wrong), "%s", r != NULL && r->error ? r->error : "");
        tc_free(r);
        r = NULL;
        st_unset = tc_send_ex(anon, "carol", wrong, 6, &carol.device_id, &carol.registration_id, n,
                              (const uint8_t *)"x", 1, &r);
        snprintf(err_unset, sizeof(err_unset), "%s", r != NULL && r->error ? r->error : "");
        tc_free(r);
        printf("sealed oracle (%u messages): missing account %d \"%s\"; wrong token %d \"%s\"; no "
               "token set %d \"%s\"\n",
               n, st_missing, err_missing, st_wrong, err_wrong, st_unset, err_unset);
        assert_int_equal(st_wrong, UNAUTH);
        assert_int_equal(st_missing, st_wrong);
        assert_string_equal(err_missing, err_wrong);
        assert_int_equal(st_unset, st_wrong);
        assert_string_equal(err_unset, err_wrong);
    }
    /* not upgraded by any of them: still held to preauth_frame_max */
    {
        static uint8_t big[6000];
        int st = sealed_send(anon, &alice, wrong, 6, big, sizeof(big), NULL);
        assert_true(st == SOTTO__API__STATUS__STATUS_PROTOCOL_ERROR || st == TC_CLOSED);
    }
    tc_close(anon);
    tc_close(a);
    tc_close(c);
    tc_device_wipe(&alice);
    tc_device_wipe(&carol);
    tc_device_wipe(&ghost);
}

/* Opens a connection from src and makes the sealed send with no messages
 * that upgrades it (token for `dest`). Returns the status (*out the open
 * connection, or NULL when connecting failed); *err the error text. */
static int upgrade_from(tc_server *s, const char *src, const char *dest, const uint8_t *token,
                        tc_conn **out, char *err, size_t errlen)
{
    tc_sframe *r = NULL;
    int st;

    assert_int_equal(tc_set_origin(src, NULL), 0);
    *out = tc_connect(s);
    assert_int_equal(tc_set_origin(NULL, NULL), 0);
    if (*out == NULL)
        return TC_ERR;
    st = tc_send_ex(*out, dest, token, 6, NULL, NULL, 0, NULL, 0, &r);
    snprintf(err, errlen, "%s", r != NULL && r->error ? r->error : "");
    tc_free(r);
    return st;
}

#define MISMATCHED SOTTO__API__STATUS__STATUS_MISMATCHED_DEVICES
#define LIMITED SOTTO__API__STATUS__STATUS_RATE_LIMITED

/* Issue 12 review (R2, finding 2): upgraded sealed-sender connections
 * (never logged in, no login deadline) are capped in total, at the
 * default sealed_conns_share (50 %) of max_connections: one account cannot
 * hold 19 of 20 connection slots; the connections it opens past the cap
 * are refused the upgrade (RATE_LIMITED), close at auth_timeout_s, and an
 * honest user still connects and logs in. */
static void test_sealed_conn_total_cap(void **state)
{
    tc_server *s = *state;
    tc_device mal, hon;
    tc_conn *m, *h, *cs[40];
    uint8_t token[16];
    char err[200] = "", last_err[200] = "";
    int n = 0, up = 0, refused = 0, alive = 0;
    static const char *const sets[] = {"durability=process", "max_connections=20",
                                       "auth_timeout_s=2", NULL};

    assert_int_equal(tc_server_start(s, sets), 0);
    m = tc_new_user(s, &mal, "mallory", 0);
    h = tc_new_user(s, &hon, "honest", 0);
    assert_non_null(m);
    assert_non_null(h);
    tc_close(h);
    randombytes_buf(token, sizeof(token));
    assert_int_equal(set_token(m, token), OK);
    usleep(200000);
    /* 19 connections: all the slots but mallory's logged-in one */
    for (int i = 0; i < 19; i++) {
        int st = upgrade_from(s, "127.0.0.2", "mallory", token, &cs[n], err, sizeof(err));
        if (cs[n] == NULL)
            break;
        n++;
        if (st == MISMATCHED) {
            up++;
        } else if (st == LIMITED) {
            refused++;
            snprintf(last_err, sizeof(last_err), "%s", err);
        }
    }
    sleep(3); /* past auth_timeout_s */
    for (int i = 0; i < n; i++) {
        tc_sframe *r = NULL;
        if (tc_send_ex(cs[i], "mallory", token, 6, NULL, NULL, 0, NULL, 0, &r) == MISMATCHED)
            alive++;
        tc_free(r);
    }
    h = tc_connect(s);
    int login = h != NULL ? tc_login(h, &hon) : TC_ERR;
    printf("sealed conns: 19 opened, %d upgraded, %d refused (\"%s\"); after auth_timeout_s %d "
           "still open; honest user %s, login %d\n",
           up, refused, last_err, alive, h != NULL ? "connected" : "REFUSED", login);
    assert_int_equal(n, 19);
    assert_int_equal(up, 10); /* 50 % of 20 */
    assert_int_equal(refused, 9);
    assert_non_null(strstr(last_err, "sealed_conns_share"));
    assert_int_equal(alive, 10);
    assert_int_equal(login, OK);
    for (int i = 0; i < n; i++)
        tc_close(cs[i]);
    tc_close(h);
    tc_close(m);
    tc_device_wipe(&mal);
    tc_device_wipe(&hon);
}

/* Per source address (sealed_conns_per_source) and in total: a slot comes
 * back when an upgraded connection closes or logs in. */
static void test_sealed_conn_source_cap(void **state)
{
    tc_server *s = *state;
    tc_device mal, hon;
    tc_conn *m, *c2[5], *c3[3], *c4[3], *c5[2], *extra = NULL, *again = NULL;
    uint8_t token[16];
    char err[200] = "";
    int st;
    static const char *const sets[] = {"durability=process", "max_connections=40",
                                       "sealed_conns_per_source=3", "sealed_conns_share=25", NULL};

    assert_int_equal(tc_server_start(s, sets), 0);
    m = tc_new_user(s, &mal, "mallory", 0);
    assert_non_null(m);
    tc_close(tc_new_user(s, &hon, "honest", 0));
    randombytes_buf(token, sizeof(token));
    assert_int_equal(set_token(m, token), OK);
    /* one address: 3 upgrades, then refused naming the per-source key */
    for (int i = 0; i < 5; i++) {
        st = upgrade_from(s, "127.0.0.2", "mallory", token, &c2[i], err, sizeof(err));
        assert_non_null(c2[i]);
        if (i < 3) {
            assert_int_equal(st, MISMATCHED);
        } else {
            assert_int_equal(st, LIMITED);
            assert_non_null(strstr(err, "sealed_conns_per_source"));
        }
    }
    /* other addresses: their own 3 each, up to the total (25 % of 40) */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(upgrade_from(s, "127.0.0.3", "mallory", token, &c3[i], err, sizeof(err)),
                         MISMATCHED);
        assert_int_equal(upgrade_from(s, "127.0.0.4", "mallory", token, &c4[i], err, sizeof(err)),
                         MISMATCHED);
    }
    assert_int_equal(upgrade_from(s, "127.0.0.5", "mallory", token, &c5[0], err, sizeof(err)),
                     MISMATCHED); /* the 10th */
    st = upgrade_from(s, "127.0.0.5", "mallory", token, &c5[1], err, sizeof(err));
    printf("sealed conns: 3 per address, 10 in all; the 11th: %d \"%s\"\n", st, err);
    assert_int_equal(st, LIMITED);
    assert_non_null(strstr(err, "sealed_conns_share"));
    /* a sealed send with a message on a refused connection: refused too,
     * nothing queued (it is not a sealed sender's connection) */
    st = sealed_send(c5[1], &mal, token, 6, (const uint8_t *)"x", 1, "sealed_conns_share");
    assert_int_equal(st, LIMITED);

    /* one of 127.0.0.2's closes: 127.0.0.2 may upgrade one again */
    tc_close(c2[0]);
    c2[0] = NULL;
    usleep(300000);
    assert_int_equal(upgrade_from(s, "127.0.0.2", "mallory", token, &extra, err, sizeof(err)),
                     MISMATCHED);
    /* an upgraded connection that logs in no longer counts */
    assert_int_equal(upgrade_from(s, "127.0.0.6", "mallory", token, &again, err, sizeof(err)),
                     LIMITED);
    tc_close(again);
    assert_int_equal(tc_login(c5[0], &hon), OK);
    assert_int_equal(upgrade_from(s, "127.0.0.6", "mallory", token, &again, err, sizeof(err)),
                     MISMATCHED);

    for (int i = 0; i < 5; i++)
        tc_close(c2[i]);
    for (int i = 0; i < 3; i++) {
        tc_close(c3[i]);
        tc_close(c4[i]);
    }
    tc_close(c5[0]);
    tc_close(c5[1]);
    tc_close(extra);
    tc_close(again);
    tc_close(m);
    tc_device_wipe(&mal);
    tc_device_wipe(&hon);
}

/* meta('sealed_root') of s's database: -1 if absent, else its value; with
 * del, deletes the row first (a store from before the marker). */
static int64_t meta_marker(const tc_server *s, bool del)
{
    char path[512];
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t v = -1;

    snprintf(path, sizeof(path), "%s/sottod.db", s->dir);
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    if (del)
        assert_int_equal(
            sqlite3_exec(db, "DELETE FROM meta WHERE key='sealed_root'", NULL, NULL, NULL),
            SQLITE_OK);
    assert_int_equal(
        sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key='sealed_root'", -1, &st, NULL),
        SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* How many lines of s's sottod.log hold both a and b. */
static int log_lines(const tc_server *s, const char *a, const char *b)
{
    char path[512], line[4096];
    FILE *fp;
    int n = 0;

    snprintf(path, sizeof(path), "%s/sottod.log", s->dir);
    fp = fopen(path, "r");
    assert_non_null(fp);
    while (fgets(line, sizeof(line), fp) != NULL) {
        if (strstr(line, a) != NULL && strstr(line, b) != NULL) {
            printf("# %s", line);
            n++;
        }
    }
    fclose(fp);
    return n;
}

/* The root of a login of d on s (33 bytes into out). */
static void login_root(tc_server *s, tc_device *d, uint8_t out[33])
{
    tc_conn *c = tc_connect(s);

    assert_non_null(c);
    assert_int_equal(tc_login(c, d), OK);
    assert_int_equal(c->sealed_root_len, 33);
    memcpy(out, c->sealed_root, 33);
    tc_close(c);
}

/* Before: a missing sealed-root.key was replaced by a new root at the next
 * start, silently, and every client that had pinned the old root refused
 * every sealed message after that. */
static void test_lost_root(void **state)
{
    tc_server *s = *state, fresh;
    tc_device alice;
    tc_conn *a;
    uint8_t root0[33], root1[33];
    char path[512], hex[67];
    int status = -1;
    struct stat sb;
    static const char *const sets[] = {"durability=process", NULL};
    static const char *const new_root[] = {"new-sealed-root", NULL};
    static const char *const print_root[] = {"sealed-root", NULL};
    char *out;

    assert_int_equal(tc_server_start(s, sets), 0);
    a = tc_new_user(s, &alice, "alice", 0);
    assert_non_null(a);
    memcpy(root0, a->sealed_root, 33);
    tc_close(a);
    assert_int_equal(tc_server_stop(s), 0);
    assert_int_equal(meta_marker(s, false), 1);

    /* A store from before the marker (v6, accounts, key file, no marker)
     * starts with the same root, and is marked then. */
    assert_int_equal(meta_marker(s, true), -1);
    assert_int_equal(tc_server_restart(s), 0);
    login_root(s, &alice, root1);
    assert_memory_equal(root1, root0, 33);
    assert_int_equal(tc_server_stop(s), 0);
    assert_int_equal(meta_marker(s, false), 1);

    /* The key file lost: refused, with the reason, and no new key made. */
    snprintf(path, sizeof(path), "%s/sealed-root.key", s->dir);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(tc_server_restart(s), -1);
    assert_false(tc_server_alive(s));
    assert_int_equal(log_lines(s, "event=sealed_refused",
                               "sealed-root.key is missing but this data directory has handed "
                               "out a sealed-sender trust root before"),
                     1);
    assert_int_equal(log_lines(s, "event=sealed_refused", "sottod admin new-sealed-root"), 1);
    assert_int_equal(stat(path, &sb), -1);
    /* ... again at the next try: still refused */
    assert_int_equal(tc_server_restart(s), -1);
    assert_int_equal(stat(path, &sb), -1);

    /* The operator's explicit new root: printed, 0600, never over an
     * existing file; the server then starts and hands it out. */
    out = tc_admin(s, new_root, &status);
    assert_int_equal(status, 0);
    assert_non_null(out);
    assert_int_equal(strlen(out), 67);
    sodium_bin2hex(hex, sizeof(hex), root0, 33);
    assert_memory_not_equal(out, hex, 66);
    memcpy(hex, out, 66);
    hex[66] = '\0';
    free(out);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    out = tc_admin(s, new_root, &status); /* (a wait status) */
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 1);
    free(out);
    out = tc_admin(s, print_root, &status);
    assert_int_equal(status, 0);
    assert_non_null(out);
    assert_memory_equal(out, hex, 66);
    free(out);
    assert_int_equal(tc_server_restart(s), 0);
    login_root(s, &alice, root1);
    sodium_bin2hex(path, sizeof(path), root1, 33);
    assert_string_equal(path, hex);
    assert_memory_not_equal(root1, root0, 33);
    assert_int_equal(tc_server_stop(s), 0);
    tc_device_wipe(&alice);

    /* A fresh data directory starts (and is marked at once). */
    memset(&fresh, 0, sizeof(fresh));
    assert_int_equal(tc_server_init(&fresh), 0);
    assert_int_equal(tc_server_start(&fresh, sets), 0);
    assert_int_equal(tc_server_stop(&fresh), 0);
    assert_int_equal(meta_marker(&fresh, false), 1);
    tc_server_cleanup(&fresh);
    printf("sealed: lost root refused at start; new-sealed-root made %.16s...\n", hex);
}

#ifdef SOTTOD_TEST_PATH
/* sottod-test with SOTTOD_TEST_SENDER_CERT=mode: the certificate it issues
 * is refused by libsotto with `want` (and `other` names mallory). */
static void hook_case(tc_server *s, const char *mode, int want)
{
    tc_device alice;
    tc_conn *a;
    uint8_t *cert = NULL;
    size_t len = 0;
    uint64_t expires = 0;
    sotto_public_key root;
    sotto_sender_certificate sc;
    static const char *const sets[] = {"durability=process", NULL};

    setenv("SOTTOD", SOTTOD_TEST_PATH, 1);
    setenv("SOTTOD_TEST_SENDER_CERT", mode, 1);
    assert_int_equal(tc_server_start(s, sets), 0);
    unsetenv("SOTTOD");
    unsetenv("SOTTOD_TEST_SENDER_CERT");
    a = tc_new_user(s, &alice, "alice", 0);
    assert_non_null(a);
    assert_int_equal(sotto_public_key_decode(&root, a->sealed_root, 33), SOTTO_OK);
    assert_int_equal(get_cert(a, &cert, &len, &expires), OK);
    assert_int_equal(sotto_sender_certificate_validate(&sc, cert, len, &root, now_ms()), want);
    if (want == SOTTO_OK) {
        assert_string_equal(sc.sender, "mallory");
        assert_memory_equal(sc.identity_key.bytes, alice.identity.pub.bytes, 33);
    }
    printf("sealed: SOTTOD_TEST_SENDER_CERT=%s -> validate %d\n", mode,
           sotto_sender_certificate_validate(&sc, cert, len, &root, now_ms()));
    free(cert);
    tc_close(a);
    tc_device_wipe(&alice);
    assert_int_equal(tc_server_stop(s), 0);
    tc_server_cleanup(s);
    assert_int_equal(tc_server_init(s), 0);
}

static void test_sender_cert_hooks(void **state)
{
    tc_server *s = *state;

    hook_case(s, "expired", SOTTO_ERR_CERT_EXPIRED);
    hook_case(s, "other", SOTTO_OK); /* valid, but for "mallory" */
    hook_case(s, "rogue_root", SOTTO_ERR_CERT_UNTRUSTED);
}
#endif

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_trust_root_and_certificate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sealed_send, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sealed_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sealed_drain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sealed_no_account_oracle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sealed_conn_total_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sealed_conn_source_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_root, setup, teardown),
#ifdef SOTTOD_TEST_PATH
        cmocka_unit_test_setup_teardown(test_sender_cert_hooks, setup, teardown),
#endif
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
