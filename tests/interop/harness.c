/*
 * tests/interop/harness.c -- see harness.h.
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "testutil.h"

#ifndef SOTTO_INTEROP_PEER_PATH
#error "SOTTO_INTEROP_PEER_PATH must name the sotto-interop-peer binary"
#endif

/* ---- the peer process ---- */

ih_peer *ih_peer_start(const char *name)
{
    int in[2], out[2];
    ih_peer *p = calloc(1, sizeof(*p));
    const char *path = getenv("SOTTO_INTEROP_PEER");

    assert_non_null(p);
    if (path == NULL || *path == 0)
        path = SOTTO_INTEROP_PEER_PATH;
    assert_true(strlen(name) < sizeof(p->name));
    snprintf(p->name, sizeof(p->name), "%s", name);
    signal(SIGPIPE, SIG_IGN);
    assert_int_equal(pipe(in), 0);
    assert_int_equal(pipe(out), 0);
    p->pid = fork();
    assert_true(p->pid >= 0);
    if (p->pid == 0) {
        dup2(in[0], STDIN_FILENO);
        dup2(out[1], STDOUT_FILENO);
        close(in[0]);
        close(in[1]);
        close(out[0]);
        close(out[1]);
        execl(path, path, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    fcntl(in[1], F_SETFD, FD_CLOEXEC);
    fcntl(out[0], F_SETFD, FD_CLOEXEC);
    p->to = fdopen(in[1], "w");
    p->from = fdopen(out[0], "r");
    assert_non_null(p->to);
    assert_non_null(p->from);
    return p;
}

void ih_peer_stop(ih_peer *p)
{
    int status = 0;

    if (p == NULL)
        return;
    ih_peer_ok(p, "quit");
    fclose(p->to);
    fclose(p->from);
    assert_int_equal(waitpid(p->pid, &status, 0), p->pid);
    free(p->line);
    free(p);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("peer exited with status 0x%x", status);
}

__attribute__((format(printf, 2, 0))) static const char *peer_vcmd(ih_peer *p, const char *fmt,
                                                                   va_list ap)
{
    ssize_t n;
    char *s;

    if (vfprintf(p->to, fmt, ap) < 0 || fputc('\n', p->to) == EOF || fflush(p->to) != 0)
        fail_msg("cannot write to the peer");
    n = getline(&p->line, &p->cap, p->from);
    if (n <= 0)
        fail_msg("the peer died (no response)");
    if (p->line[n - 1] == '\n')
        p->line[--n] = 0;
    /* tokenise a copy-free view: the line stays intact in tok[] order */
    p->ntok = 0;
    s = p->line;
    while (*s != 0 && p->ntok < IH_MAX_TOKENS) {
        p->tok[p->ntok++] = s;
        while (*s != 0 && *s != ' ')
            s++;
        if (*s == ' ')
            *s++ = 0;
    }
    return p->ntok > 0 ? p->tok[0] : "";
}

const char *ih_peer_cmd(ih_peer *p, const char *fmt, ...)
{
    va_list ap;
    const char *r;

    va_start(ap, fmt);
    r = peer_vcmd(p, fmt, ap);
    va_end(ap);
    return r;
}

int ih_peer_ok(ih_peer *p, const char *fmt, ...)
{
    va_list ap;
    const char *r;

    va_start(ap, fmt);
    r = peer_vcmd(p, fmt, ap);
    va_end(ap);
    if (strcmp(r, "ok") != 0)
        fail_msg("peer request '%.40s' failed: %s %s", fmt, r, p->ntok > 1 ? p->tok[1] : "");
    return p->ntok;
}

void ih_peer_err(ih_peer *p, const char *name, const char *fmt, ...)
{
    va_list ap;
    const char *r;

    va_start(ap, fmt);
    r = peer_vcmd(p, fmt, ap);
    va_end(ap);
    if (strcmp(r, "err") != 0 || p->ntok != 2 || strcmp(p->tok[1], name) != 0)
        fail_msg("peer request '%.40s': expected err %s, got %s %s", fmt, name, r,
                 p->ntok > 1 ? p->tok[1] : "");
}

/* ---- the libsotto device ---- */

sotto_address ih_addr(const char *name)
{
    sotto_address a = {name, strlen(name), 1};
    return a;
}

ih_party *ih_party_new_with(const sotto_key_pair *identity, uint32_t registration_id)
{
    ih_party *u = calloc(1, sizeof(*u));

    assert_non_null(u);
    assert_int_equal(sotto_init(), SOTTO_OK);
    u->identity = *identity;
    u->registration_id = registration_id;
    assert_int_equal(sotto_memory_store_new(&u->identity, u->registration_id, &u->ms), SOTTO_OK);
    u->st = sotto_memory_store_protocol(u->ms);
    u->next_prekey_id = 1;
    u->next_signed_prekey_id = 1;
    return u;
}

ih_party *ih_party_new(void)
{
    sotto_key_pair identity;
    uint32_t reg = 0;
    ih_party *u;

    assert_int_equal(sotto_init(), SOTTO_OK);
    assert_int_equal(sotto_identity_key_pair_generate(&identity), SOTTO_OK);
    assert_int_equal(sotto_registration_id_generate(&reg), SOTTO_OK);
    u = ih_party_new_with(&identity, reg);
    sotto_key_pair_wipe(&identity);
    return u;
}

void ih_party_free(ih_party *u)
{
    if (u == NULL)
        return;
    sotto_memory_store_free(u->ms);
    sotto_key_pair_wipe(&u->identity);
    free(u);
}

uint32_t ih_party_add_prekey(ih_party *u)
{
    sotto_prekey pk;
    uint32_t id = u->next_prekey_id;

    assert_int_equal(sotto_prekeys_generate(&pk, id - 1, 1), SOTTO_OK);
    assert_int_equal(pk.id, id);
    assert_int_equal(u->st->prekey.store(u->st->prekey.user_data, &pk), SOTTO_OK);
    sodium_memzero(&pk, sizeof(pk));
    u->next_prekey_id++;
    return id;
}

uint32_t ih_party_add_signed_prekey(ih_party *u)
{
    sotto_signed_prekey spk;
    uint32_t id = u->next_signed_prekey_id++;

    assert_int_equal(sotto_signed_prekey_generate(&spk, &u->identity, id, 1700000000000ull),
                     SOTTO_OK);
    assert_int_equal(u->st->signed_prekey.store(u->st->signed_prekey.user_data, &spk), SOTTO_OK);
    sodium_memzero(&spk, sizeof(spk));
    return id;
}

sotto_prekey_bundle ih_party_bundle(ih_party *u, uint32_t pk_id, uint32_t spk_id)
{
    sotto_prekey_bundle b;
    sotto_prekey pk;
    sotto_signed_prekey spk;

    memset(&b, 0, sizeof(b));
    b.registration_id = u->registration_id;
    b.device_id = 1;
    if (pk_id != 0) {
        assert_int_equal(u->st->prekey.load(u->st->prekey.user_data, pk_id, &pk), SOTTO_OK);
        b.has_prekey = true;
        b.prekey_id = pk_id;
        b.prekey = pk.key.pub;
        sodium_memzero(&pk, sizeof(pk));
    }
    assert_int_equal(u->st->signed_prekey.load(u->st->signed_prekey.user_data, spk_id, &spk),
                     SOTTO_OK);
    b.signed_prekey_id = spk_id;
    b.signed_prekey = spk.key.pub;
    memcpy(b.signed_prekey_signature, spk.signature, sizeof(b.signed_prekey_signature));
    sodium_memzero(&spk, sizeof(spk));
    b.identity_key = u->identity.pub;
    return b;
}

static void unhex_key(const char *hex, sotto_public_key *out)
{
    tu_unhex_into(hex, out->bytes, sizeof(out->bytes));
}

static uint32_t tok_u32(const char *s)
{
    char *end = NULL;
    unsigned long v = strtoul(s, &end, 10);

    assert_true(end != s && *end == 0 && v <= UINT32_MAX);
    return (uint32_t)v;
}

sotto_prekey_bundle ih_peer_bundle(ih_peer *p, uint32_t pk_id, uint32_t spk_id)
{
    sotto_prekey_bundle b;

    memset(&b, 0, sizeof(b));
    assert_int_equal(ih_peer_ok(p, "bundle 1 %u %u", pk_id, spk_id), 9);
    b.registration_id = tok_u32(p->tok[1]);
    b.device_id = tok_u32(p->tok[2]);
    b.prekey_id = tok_u32(p->tok[3]);
    b.has_prekey = b.prekey_id != 0;
    if (b.has_prekey)
        unhex_key(p->tok[4], &b.prekey);
    else
        assert_string_equal(p->tok[4], "-");
    b.signed_prekey_id = tok_u32(p->tok[5]);
    unhex_key(p->tok[6], &b.signed_prekey);
    tu_unhex_into(p->tok[7], b.signed_prekey_signature, sizeof(b.signed_prekey_signature));
    unhex_key(p->tok[8], &b.identity_key);
    return b;
}

const char *ih_peer_process_bundle_try(ih_peer *p, const sotto_prekey_bundle *b)
{
    char *pk = b->has_prekey ? tu_hex(b->prekey.bytes, sizeof(b->prekey.bytes)) : strdup("-");
    char *spk = tu_hex(b->signed_prekey.bytes, sizeof(b->signed_prekey.bytes));
    char *sig = tu_hex(b->signed_prekey_signature, sizeof(b->signed_prekey_signature));
    char *ik = tu_hex(b->identity_key.bytes, sizeof(b->identity_key.bytes));
    const char *r;

    r = ih_peer_cmd(p, "process_bundle %s 1 %u %u %u %s %u %s %s %s", IH_US_NAME,
                    b->registration_id, b->device_id, b->has_prekey ? b->prekey_id : 0u, pk,
                    b->signed_prekey_id, spk, sig, ik);
    free(pk);
    free(spk);
    free(sig);
    free(ik);
    if (strcmp(r, "ok") == 0)
        return "ok";
    assert_string_equal(r, "err");
    assert_int_equal(p->ntok, 2);
    return p->tok[1];
}

/* ---- messages ---- */

void ih_msg_free(ih_msg *m)
{
    free(m->hex);
    free(m->bytes);
    memset(m, 0, sizeof(*m));
}

static void msg_set_bytes(ih_msg *m, const uint8_t *b, size_t len)
{
    m->bytes = malloc(len ? len : 1);
    assert_non_null(m->bytes);
    memcpy(m->bytes, b, len);
    m->len = len;
    m->hex = tu_hex(b, len);
}

ih_msg ih_msg_tampered(const ih_msg *m, long at, uint8_t mask)
{
    ih_msg t;
    size_t i = at < 0 ? m->len - (size_t)(-at) : (size_t)at;

    memset(&t, 0, sizeof(t));
    assert_true(i < m->len);
    t.type = m->type;
    memcpy(t.text, m->text, sizeof(t.text));
    msg_set_bytes(&t, m->bytes, m->len);
    t.bytes[i] ^= mask;
    free(t.hex);
    t.hex = tu_hex(t.bytes, t.len);
    return t;
}

static uint64_t read_varint(const uint8_t *b, size_t len, size_t *pos)
{
    uint64_t v = 0;

    for (int shift = 0; shift < 64; shift += 7) {
        assert_true(*pos < len);
        v |= (uint64_t)(b[*pos] & 0x7f) << shift;
        if ((b[(*pos)++] & 0x80) == 0)
            return v;
    }
    fail_msg("bad varint");
    return 0;
}

size_t ih_prekey_inner_end(const ih_msg *m)
{
    size_t pos = 1; /* version byte */

    assert_int_equal(m->type, 3);
    while (pos < m->len) {
        uint64_t key = read_varint(m->bytes, m->len, &pos);
        if ((key & 7) == 0) {
            (void)read_varint(m->bytes, m->len, &pos);
        } else {
            uint64_t n;
            assert_int_equal(key & 7, 2);
            n = read_varint(m->bytes, m->len, &pos);
            assert_true(n <= m->len - pos);
            pos += (size_t)n;
            if ((key >> 3) == 4)
                return pos;
        }
    }
    fail_msg("no inner message in the PreKey message");
    return 0;
}

size_t ih_pb_keys(const uint8_t *b, size_t len, uint32_t *keys, size_t max, uint32_t inner_field,
                  const uint8_t **inner, size_t *inner_len)
{
    size_t pos = 0, n = 0;

    while (pos < len) {
        uint64_t key = read_varint(b, len, &pos);
        assert_true(n < max);
        assert_true(key <= UINT32_MAX);
        keys[n++] = (uint32_t)key;
        if ((key & 7) == 0) {
            (void)read_varint(b, len, &pos);
        } else {
            uint64_t l;
            assert_int_equal(key & 7, 2);
            l = read_varint(b, len, &pos);
            assert_true(l <= len - pos);
            if (inner_field != 0 && (key >> 3) == inner_field) {
                *inner = b + pos;
                *inner_len = (size_t)l;
            }
            pos += (size_t)l;
        }
    }
    return n;
}

static void text_hex(const char *text, char **hex)
{
    size_t n = strlen(text);

    *hex = n ? tu_hex((const uint8_t *)text, n) : strdup("-");
    assert_non_null(*hex);
}

ih_msg ih_peer_encrypt(ih_peer *p, const char *text)
{
    ih_msg m;
    char *hex;
    size_t len;
    uint8_t *b;

    memset(&m, 0, sizeof(m));
    assert_true(strlen(text) < sizeof(m.text));
    snprintf(m.text, sizeof(m.text), "%s", text);
    text_hex(text, &hex);
    ih_peer_ok(p, "encrypt %s 1 %s", IH_US_NAME, hex);
    free(hex);
    assert_int_equal(p->ntok, 3);
    m.type = (int)tok_u32(p->tok[1]);
    b = tu_unhex(p->tok[2], &len);
    msg_set_bytes(&m, b, len);
    free(b);
    return m;
}

ih_msg ih_us_encrypt(ih_party *u, ih_peer *p, const char *text)
{
    ih_msg m;
    sotto_address a = ih_addr(p->name);
    uint8_t *ct = NULL;
    size_t ct_len = 0;
    int type = 0;

    memset(&m, 0, sizeof(m));
    assert_true(strlen(text) < sizeof(m.text));
    snprintf(m.text, sizeof(m.text), "%s", text);
    assert_int_equal(
        sotto_session_encrypt(u->st, &a, (const uint8_t *)text, strlen(text), &ct, &ct_len, &type),
        SOTTO_OK);
    m.type = type;
    msg_set_bytes(&m, ct, ct_len);
    free(ct);
    return m;
}

void ih_peer_decrypt_ok(ih_peer *p, const ih_msg *m)
{
    char *want;

    text_hex(m->text, &want);
    ih_peer_ok(p, "decrypt %s 1 %d %s", IH_US_NAME, m->type, m->hex);
    assert_int_equal(p->ntok, 2);
    assert_string_equal(p->tok[1], want);
    free(want);
}

void ih_peer_decrypt_err(ih_peer *p, const ih_msg *m, const char *name)
{
    ih_peer_err(p, name, "decrypt %s 1 %d %s", IH_US_NAME, m->type, m->hex);
}

int ih_us_decrypt_try(ih_party *u, ih_peer *p, const ih_msg *m)
{
    sotto_address a = ih_addr(p->name);
    uint8_t *pt = NULL;
    size_t pt_len = 0;
    int rc;

    rc = sotto_session_decrypt(u->st, &a, m->type, m->bytes, m->len, &pt, &pt_len);
    if (rc == SOTTO_OK) {
        assert_non_null(pt);
        assert_int_equal(pt_len, strlen(m->text));
        assert_memory_equal(pt, m->text, pt_len);
        sodium_memzero(pt, pt_len);
    } else {
        assert_null(pt);
    }
    free(pt);
    return rc;
}

void ih_us_decrypt_ok(ih_party *u, ih_peer *p, const ih_msg *m)
{
    int rc = ih_us_decrypt_try(u, p, m);

    if (rc != SOTTO_OK)
        fail_msg("libsotto failed to decrypt '%s': %s", m->text, sotto_strerror(rc));
}

void ih_peer_to_us(ih_peer *p, ih_party *u, const char *text, int want_type)
{
    ih_msg m = ih_peer_encrypt(p, text);

    if (want_type != 0)
        assert_int_equal(m.type, want_type);
    ih_us_decrypt_ok(u, p, &m);
    ih_msg_free(&m);
}

void ih_us_to_peer(ih_party *u, ih_peer *p, const char *text, int want_type)
{
    ih_msg m = ih_us_encrypt(u, p, text);

    if (want_type != 0)
        assert_int_equal(m.type, want_type);
    ih_peer_decrypt_ok(p, &m);
    ih_msg_free(&m);
}

uint8_t *ih_us_record(ih_party *u, ih_peer *p, size_t *len)
{
    sotto_address a = ih_addr(p->name);
    uint8_t *rec = NULL;
    int rc;

    *len = 0;
    rc = u->st->session.load(u->st->session.user_data, &a, &rec, len);
    if (rc == SOTTO_ERR_NOT_FOUND)
        return NULL;
    assert_int_equal(rc, SOTTO_OK);
    return rec;
}

void ih_peer_processes_our_bundle(ih_party *u, ih_peer *p, bool with_opk)
{
    uint32_t spk = ih_party_add_signed_prekey(u);
    uint32_t pk = with_opk ? ih_party_add_prekey(u) : 0;
    sotto_prekey_bundle b = ih_party_bundle(u, pk, spk);

    assert_string_equal(ih_peer_process_bundle_try(p, &b), "ok");
}

void ih_us_process_peer_bundle(ih_party *u, ih_peer *p, bool with_opk, uint32_t pk_id,
                               uint32_t spk_id)
{
    sotto_address a = ih_addr(p->name);
    sotto_prekey_bundle b;

    if (with_opk)
        ih_peer_ok(p, "prekeys %u 1", pk_id); /* libsignal: ids start..start+count-1 */
    ih_peer_ok(p, "signed_prekey %u", spk_id);
    b = ih_peer_bundle(p, with_opk ? pk_id : 0, spk_id);
    assert_int_equal(sotto_session_process_bundle(u->st, &a, &b), SOTTO_OK);
}

void ih_establish(ih_party *u, ih_peer *p, bool peer_starts)
{
    if (peer_starts) {
        ih_peer_processes_our_bundle(u, p, true);
        ih_peer_to_us(p, u, "hello from libsignal", 3);
        ih_us_to_peer(u, p, "hello from sotto", 2);
        ih_peer_to_us(p, u, "acknowledged", 2);
    } else {
        ih_us_process_peer_bundle(u, p, true, 1, 1);
        ih_us_to_peer(u, p, "hello from sotto", 3);
        ih_peer_to_us(p, u, "hello from libsignal", 2);
        ih_us_to_peer(u, p, "acknowledged", 2);
    }
}

void ih_shuffle(size_t *idx, size_t n, uint32_t seed)
{
    uint32_t x = seed ? seed : 1;

    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    for (size_t i = n; i > 1; i--) {
        size_t j;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        j = x % i;
        size_t t = idx[i - 1];
        idx[i - 1] = idx[j];
        idx[j] = t;
    }
}
