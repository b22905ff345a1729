/*
 * tests/interop/peer.c -- sotto-interop-peer: one libsignal-protocol-c
 * device driven over stdin/stdout by a line protocol.
 *
 * Protocol: one request per line, tokens separated by single spaces; binary
 * values are hex ("-" stands for an empty or absent value); names are plain
 * tokens. Each request gets exactly one response line:
 *   "ok" followed by the fields below, or "err NAME" where NAME is the
 *   libsignal-protocol-c error (DUPLICATE, INVALID_MESSAGE, UNTRUSTED,
 *   NO_SESSION, INVALID_KEY_ID, INVALID_KEY, INVALID_VERSION, ...; see
 *   peer_error_name) or SYNTAX for a malformed request.
 *
 *   identity                          ok <registration_id> <identity_pub>
 *   new_identity                      (fresh identity + id) same fields
 *   prekeys <start> <count>           ok <id> ...   (generated and stored)
 *   signed_prekey <id>                ok            (generated and stored)
 *   bundle <device_id> <prekey_id|0> <signed_prekey_id>
 *       ok <reg_id> <device_id> <prekey_id|0> <prekey_pub|-> <spk_id> <spk_pub> <spk_sig>
 * <identity_pub> process_bundle <name> <dev> <reg_id> <device_id> <prekey_id|0> <prekey_pub|->
 * <spk_id> <spk_pub> <spk_sig> <identity_pub> ok encrypt <name> <dev> <pt>         ok <type>
 * <ciphertext> decrypt <name> <dev> <type> <ct>  ok <pt> session_version <name> <dev>      ok
 * <version> remote_registration_id <name> <dev>  ok <id> has_session <name> <dev>          ok 0|1
 *   delete_session <name> <dev>       ok 0|1
 *   has_prekey <id>                   ok 0|1
 *   prekey_count                      ok <n>
 *   trust <name> <dev> <identity_pub> ok   (save_identity: accept this key)
 *   group_create <group> <name> <dev> ok <skdm>   (own sender key; name/dev = own address)
 *   group_process <group> <name> <dev> <skdm>     ok
 *   group_encrypt <group> <name> <dev> <pt>       ok <ct>   (type 4)
 *   group_decrypt <group> <name> <dev> <ct>       ok <pt>
 *   fingerprint <iterations> <scannable_version> <local_id> <local_key> <remote_id> <remote_key>
 *                                     ok <display_digits> <scannable>  (ids hex-encoded UTF-8)
 *   fingerprint_compare <scannable_a> <scannable_b>   ok | err MISMATCH | err FP_...
 *   bench <scenario> <count>          ok <ops_per_s> <ops> <ns>
 *   quit                              ok, then exit
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <signal/fingerprint.h>
#include <signal/group_cipher.h>
#include <signal/group_session_builder.h>
#include <signal/key_helper.h>
#include <signal/protocol.h>
#include <signal/session_builder.h>
#include <signal/session_cipher.h>
#include <signal/session_pre_key.h>

#include "peer.h"

#define PEER_MAX_TOKENS 16
#define PEER_SYNTAX 1 /* not an SG_ERR_ code: malformed request */

static signal_context *g_ctx;
static peer_party *g_self;

/* ---- output ---- */

static void out_hex(const uint8_t *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";

    if (n == 0) {
        fputc('-', stdout);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        fputc(digits[p[i] >> 4], stdout);
        fputc(digits[p[i] & 15], stdout);
    }
}

static void out_sp_hex(const uint8_t *p, size_t n)
{
    fputc(' ', stdout);
    out_hex(p, n);
}

static void out_buf(signal_buffer *b)
{
    out_sp_hex(signal_buffer_data(b), signal_buffer_len(b));
}

static void out_pub(const ec_public_key *k)
{
    signal_buffer *b = NULL;

    if (ec_public_key_serialize(&b, k) == 0) {
        out_buf(b);
        signal_buffer_free(b);
    } else {
        fputs(" -", stdout);
    }
}

/* ---- parsing ---- */

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes hex (or "-" = empty) into a malloc()ed buffer with a trailing
 * NUL byte not counted in *len. Returns NULL on bad hex. */
static uint8_t *unhex(const char *s, size_t *len)
{
    size_t n;
    uint8_t *out;

    if (strcmp(s, "-") == 0)
        s = "";
    n = strlen(s);
    if (n % 2)
        return NULL;
    out = malloc(n / 2 + 1);
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hexval((unsigned char)s[2 * i]), lo = hexval((unsigned char)s[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            free(out);
            return NULL;
        }
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    out[n / 2] = 0;
    *len = n / 2;
    return out;
}

static int parse_u32(const char *s, uint32_t *out)
{
    char *end = NULL;
    unsigned long v;

    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != 0 || v > UINT32_MAX)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

static int decode_pub(ec_public_key **out, const char *hex)
{
    size_t n = 0;
    uint8_t *b = unhex(hex, &n);
    int rc;

    if (b == NULL)
        return PEER_SYNTAX;
    rc = curve_decode_point(out, b, n, g_ctx);
    free(b);
    return rc;
}

/* Splits `line` in place at spaces; returns the token count. */
static int split(char *line, char **tok, int max)
{
    int n = 0;
    char *p = line;

    while (*p != 0 && n < max) {
        while (*p == ' ')
            p++;
        if (*p == 0)
            break;
        tok[n++] = p;
        while (*p != 0 && *p != ' ')
            p++;
        if (*p == ' ')
            *p++ = 0;
    }
    return n;
}

static int make_addr(signal_protocol_address *a, const char *name, const char *dev)
{
    uint32_t d;

    if (parse_u32(dev, &d) != 0 || d > INT32_MAX)
        return PEER_SYNTAX;
    a->name = name;
    a->name_len = strlen(name);
    a->device_id = (int32_t)d;
    return 0;
}

/* ---- commands ---- */

static int cmd_identity(void)
{
    printf("ok %" PRIu32, peer_party_registration_id(g_self));
    out_pub(ratchet_identity_key_pair_get_public(peer_party_identity(g_self)));
    return 0;
}

static int cmd_prekeys(char **t, int n)
{
    uint32_t start, count;
    signal_protocol_key_helper_pre_key_list_node *head = NULL, *it;
    int rc;

    if (n != 3 || parse_u32(t[1], &start) != 0 || parse_u32(t[2], &count) != 0)
        return PEER_SYNTAX;
    rc = signal_protocol_key_helper_generate_pre_keys(&head, start, count, g_ctx);
    if (rc != 0)
        return rc;
    for (it = head; it != NULL; it = signal_protocol_key_helper_key_list_next(it)) {
        rc = signal_protocol_pre_key_store_key(peer_party_store(g_self),
                                               signal_protocol_key_helper_key_list_element(it));
        if (rc != 0)
            goto out;
    }
    fputs("ok", stdout);
    for (it = head; it != NULL; it = signal_protocol_key_helper_key_list_next(it))
        printf(" %" PRIu32,
               session_pre_key_get_id(signal_protocol_key_helper_key_list_element(it)));
out:
    signal_protocol_key_helper_key_list_free(head);
    return rc;
}

static int cmd_signed_prekey(char **t, int n)
{
    uint32_t id;
    session_signed_pre_key *spk = NULL;
    int rc;

    if (n != 2 || parse_u32(t[1], &id) != 0)
        return PEER_SYNTAX;
    rc = signal_protocol_key_helper_generate_signed_pre_key(&spk, peer_party_identity(g_self), id,
                                                            (uint64_t)time(NULL) * 1000, g_ctx);
    if (rc != 0)
        return rc;
    rc = signal_protocol_signed_pre_key_store_key(peer_party_store(g_self), spk);
    SIGNAL_UNREF(spk);
    if (rc == 0)
        fputs("ok", stdout);
    return rc;
}

static int cmd_bundle(char **t, int n)
{
    uint32_t dev, pk_id, spk_id;
    session_pre_key *pk = NULL;
    session_signed_pre_key *spk = NULL;
    int rc;

    if (n != 4 || parse_u32(t[1], &dev) != 0 || parse_u32(t[2], &pk_id) != 0 ||
        parse_u32(t[3], &spk_id) != 0)
        return PEER_SYNTAX;
    if (pk_id != 0) {
        rc = signal_protocol_pre_key_load_key(peer_party_store(g_self), &pk, pk_id);
        if (rc != 0)
            goto out;
    }
    rc = signal_protocol_signed_pre_key_load_key(peer_party_store(g_self), &spk, spk_id);
    if (rc != 0)
        goto out;
    printf("ok %" PRIu32 " %" PRIu32 " %" PRIu32, peer_party_registration_id(g_self), dev, pk_id);
    if (pk != NULL)
        out_pub(ec_key_pair_get_public(session_pre_key_get_key_pair(pk)));
    else
        fputs(" -", stdout);
    printf(" %" PRIu32, spk_id);
    out_pub(ec_key_pair_get_public(session_signed_pre_key_get_key_pair(spk)));
    out_sp_hex(session_signed_pre_key_get_signature(spk),
               session_signed_pre_key_get_signature_len(spk));
    out_pub(ratchet_identity_key_pair_get_public(peer_party_identity(g_self)));
out:
    if (pk != NULL)
        SIGNAL_UNREF(pk);
    if (spk != NULL)
        SIGNAL_UNREF(spk);
    return rc;
}

static int cmd_process_bundle(char **t, int n)
{
    signal_protocol_address addr;
    uint32_t reg, dev, pk_id, spk_id;
    ec_public_key *pk = NULL, *spk = NULL, *ik = NULL;
    uint8_t *sig = NULL;
    size_t sig_len = 0;
    session_pre_key_bundle *bundle = NULL;
    session_builder *builder = NULL;
    int rc = PEER_SYNTAX;

    if (n != 11 || make_addr(&addr, t[1], t[2]) != 0 || parse_u32(t[3], &reg) != 0 ||
        parse_u32(t[4], &dev) != 0 || parse_u32(t[5], &pk_id) != 0 ||
        parse_u32(t[7], &spk_id) != 0 || dev > INT32_MAX)
        return PEER_SYNTAX;
    if (strcmp(t[6], "-") != 0 && (rc = decode_pub(&pk, t[6])) != 0)
        goto out;
    if ((rc = decode_pub(&spk, t[8])) != 0)
        goto out;
    if ((sig = unhex(t[9], &sig_len)) == NULL) {
        rc = PEER_SYNTAX;
        goto out;
    }
    if ((rc = decode_pub(&ik, t[10])) != 0)
        goto out;
    rc = session_pre_key_bundle_create(&bundle, reg, (int)dev, pk_id, pk, spk_id, spk, sig, sig_len,
                                       ik);
    if (rc != 0)
        goto out;
    rc = session_builder_create(&builder, peer_party_store(g_self), &addr, g_ctx);
    if (rc != 0)
        goto out;
    rc = session_builder_process_pre_key_bundle(builder, bundle);
    if (rc == 0)
        fputs("ok", stdout);
out:
    session_builder_free(builder);
    if (bundle != NULL)
        SIGNAL_UNREF(bundle);
    if (pk != NULL)
        SIGNAL_UNREF(pk);
    if (spk != NULL)
        SIGNAL_UNREF(spk);
    if (ik != NULL)
        SIGNAL_UNREF(ik);
    free(sig);
    return rc;
}

static int cmd_encrypt(char **t, int n)
{
    signal_protocol_address addr;
    session_cipher *cipher = NULL;
    ciphertext_message *msg = NULL;
    uint8_t *pt = NULL;
    size_t pt_len = 0;
    int rc;

    if (n != 4 || make_addr(&addr, t[1], t[2]) != 0 || (pt = unhex(t[3], &pt_len)) == NULL) {
        rc = PEER_SYNTAX;
        goto out;
    }
    rc = session_cipher_create(&cipher, peer_party_store(g_self), &addr, g_ctx);
    if (rc != 0)
        goto out;
    rc = session_cipher_encrypt(cipher, pt, pt_len, &msg);
    if (rc != 0)
        goto out;
    printf("ok %d", ciphertext_message_get_type(msg));
    out_buf(ciphertext_message_get_serialized(msg));
out:
    if (msg != NULL)
        SIGNAL_UNREF(msg);
    session_cipher_free(cipher);
    free(pt);
    return rc;
}

static int cmd_decrypt(char **t, int n)
{
    signal_protocol_address addr;
    session_cipher *cipher = NULL;
    pre_key_signal_message *pkm = NULL;
    signal_message *sm = NULL;
    signal_buffer *pt = NULL;
    uint8_t *ct = NULL;
    size_t ct_len = 0;
    uint32_t type;
    int rc;

    if (n != 5 || make_addr(&addr, t[1], t[2]) != 0 || parse_u32(t[3], &type) != 0 ||
        (ct = unhex(t[4], &ct_len)) == NULL) {
        rc = PEER_SYNTAX;
        goto out;
    }
    rc = session_cipher_create(&cipher, peer_party_store(g_self), &addr, g_ctx);
    if (rc != 0)
        goto out;
    if (type == CIPHERTEXT_PREKEY_TYPE) {
        rc = pre_key_signal_message_deserialize(&pkm, ct, ct_len, g_ctx);
        if (rc == 0)
            rc = session_cipher_decrypt_pre_key_signal_message(cipher, pkm, NULL, &pt);
    } else if (type == CIPHERTEXT_SIGNAL_TYPE) {
        rc = signal_message_deserialize(&sm, ct, ct_len, g_ctx);
        if (rc == 0)
            rc = session_cipher_decrypt_signal_message(cipher, sm, NULL, &pt);
    } else {
        rc = PEER_SYNTAX;
    }
    if (rc == 0) {
        fputs("ok", stdout);
        out_buf(pt);
    }
out:
    if (pkm != NULL)
        SIGNAL_UNREF(pkm);
    if (sm != NULL)
        SIGNAL_UNREF(sm);
    if (pt != NULL)
        signal_buffer_bzero_free(pt);
    session_cipher_free(cipher);
    free(ct);
    return rc;
}

static int cmd_session_info(char **t, int n, int which)
{
    signal_protocol_address addr;
    session_cipher *cipher = NULL;
    uint32_t v = 0;
    int rc;

    if (n != 3 || make_addr(&addr, t[1], t[2]) != 0)
        return PEER_SYNTAX;
    if (which == 2) {
        rc = signal_protocol_session_contains_session(peer_party_store(g_self), &addr);
        if (rc >= 0)
            printf("ok %d", rc ? 1 : 0);
        return rc < 0 ? rc : 0;
    }
    if (which == 3) {
        rc = signal_protocol_session_delete_session(peer_party_store(g_self), &addr);
        if (rc >= 0)
            printf("ok %d", rc ? 1 : 0);
        return rc < 0 ? rc : 0;
    }
    rc = session_cipher_create(&cipher, peer_party_store(g_self), &addr, g_ctx);
    if (rc != 0)
        return rc;
    if (which == 0)
        rc = session_cipher_get_session_version(cipher, &v);
    else
        rc = session_cipher_get_remote_registration_id(cipher, &v);
    if (rc == 0)
        printf("ok %" PRIu32, v);
    session_cipher_free(cipher);
    return rc;
}

static int cmd_has_prekey(char **t, int n)
{
    uint32_t id;
    int rc;

    if (n != 2 || parse_u32(t[1], &id) != 0)
        return PEER_SYNTAX;
    rc = signal_protocol_pre_key_contains_key(peer_party_store(g_self), id);
    if (rc < 0)
        return rc;
    printf("ok %d", rc ? 1 : 0);
    return 0;
}

static int cmd_trust(char **t, int n)
{
    signal_protocol_address addr;
    ec_public_key *k = NULL;
    int rc;

    if (n != 4 || make_addr(&addr, t[1], t[2]) != 0)
        return PEER_SYNTAX;
    if ((rc = decode_pub(&k, t[3])) != 0)
        return rc;
    rc = signal_protocol_identity_save_identity(peer_party_store(g_self), &addr, k);
    SIGNAL_UNREF(k);
    if (rc == 0)
        fputs("ok", stdout);
    return rc;
}

/* Fills a sender key name; *gid is the decoded group id to free. */
static int make_sk_name(signal_protocol_sender_key_name *name, uint8_t **gid, const char *group_hex,
                        const char *who, const char *dev)
{
    size_t len = 0;

    *gid = unhex(group_hex, &len);
    if (*gid == NULL || make_addr(&name->sender, who, dev) != 0)
        return PEER_SYNTAX;
    name->group_id = (const char *)*gid;
    name->group_id_len = len;
    return 0;
}

static int cmd_group(char **t, int n, int which)
{
    signal_protocol_sender_key_name name;
    uint8_t *gid = NULL, *in = NULL;
    size_t in_len = 0;
    group_session_builder *gb = NULL;
    group_cipher *gc = NULL;
    sender_key_distribution_message *skdm = NULL;
    sender_key_message *skm = NULL;
    ciphertext_message *msg = NULL;
    signal_buffer *pt = NULL;
    int rc;

    if (n != (which == 0 ? 4 : 5) || make_sk_name(&name, &gid, t[1], t[2], t[3]) != 0) {
        rc = PEER_SYNTAX;
        goto out;
    }
    if (which != 0 && (in = unhex(t[4], &in_len)) == NULL) {
        rc = PEER_SYNTAX;
        goto out;
    }
    switch (which) {
    case 0: /* create */
        rc = group_session_builder_create(&gb, peer_party_store(g_self), g_ctx);
        if (rc == 0)
            rc = group_session_builder_create_session(gb, &skdm, &name);
        if (rc == 0) {
            fputs("ok", stdout);
            out_buf(ciphertext_message_get_serialized((ciphertext_message *)skdm));
        }
        break;
    case 1: /* process */
        rc = sender_key_distribution_message_deserialize(&skdm, in, in_len, g_ctx);
        if (rc == 0)
            rc = group_session_builder_create(&gb, peer_party_store(g_self), g_ctx);
        if (rc == 0)
            rc = group_session_builder_process_session(gb, &name, skdm);
        if (rc == 0)
            fputs("ok", stdout);
        break;
    case 2: /* encrypt */
        rc = group_cipher_create(&gc, peer_party_store(g_self), &name, g_ctx);
        if (rc == 0)
            rc = group_cipher_encrypt(gc, in, in_len, &msg);
        if (rc == 0) {
            fputs("ok", stdout);
            out_buf(ciphertext_message_get_serialized(msg));
        }
        break;
    default: /* decrypt */
        rc = sender_key_message_deserialize(&skm, in, in_len, g_ctx);
        if (rc == 0)
            rc = group_cipher_create(&gc, peer_party_store(g_self), &name, g_ctx);
        if (rc == 0)
            rc = group_cipher_decrypt(gc, skm, NULL, &pt);
        if (rc == 0) {
            fputs("ok", stdout);
            out_buf(pt);
        }
        break;
    }
out:
    if (skdm != NULL)
        SIGNAL_UNREF(skdm);
    if (skm != NULL)
        SIGNAL_UNREF(skm);
    if (msg != NULL)
        SIGNAL_UNREF(msg);
    if (pt != NULL)
        signal_buffer_bzero_free(pt);
    group_session_builder_free(gb);
    group_cipher_free(gc);
    free(gid);
    free(in);
    return rc;
}

static int cmd_fingerprint(char **t, int n)
{
    uint32_t iterations, version;
    uint8_t *lid = NULL, *rid = NULL;
    size_t lid_len = 0, rid_len = 0;
    ec_public_key *lk = NULL, *rk = NULL;
    fingerprint_generator *gen = NULL;
    fingerprint *fp = NULL;
    signal_buffer *scan = NULL;
    int rc = PEER_SYNTAX;

    if (n != 7 || parse_u32(t[1], &iterations) != 0 || parse_u32(t[2], &version) != 0 ||
        iterations > INT32_MAX || version > 1)
        return PEER_SYNTAX;
    if ((lid = unhex(t[3], &lid_len)) == NULL || (rid = unhex(t[5], &rid_len)) == NULL)
        goto out;
    if (strlen((char *)lid) != lid_len || strlen((char *)rid) != rid_len)
        goto out;
    if ((rc = decode_pub(&lk, t[4])) != 0 || (rc = decode_pub(&rk, t[6])) != 0)
        goto out;
    rc = fingerprint_generator_create(&gen, (int)iterations, (int)version, g_ctx);
    if (rc != 0)
        goto out;
    rc = fingerprint_generator_create_for(gen, (char *)lid, lk, (char *)rid, rk, &fp);
    if (rc != 0)
        goto out;
    rc = scannable_fingerprint_serialize(&scan, fingerprint_get_scannable(fp));
    if (rc != 0)
        goto out;
    printf("ok %s", displayable_fingerprint_text(fingerprint_get_displayable(fp)));
    out_buf(scan);
out:
    signal_buffer_free(scan);
    if (fp != NULL)
        SIGNAL_UNREF(fp);
    fingerprint_generator_free(gen);
    if (lk != NULL)
        SIGNAL_UNREF(lk);
    if (rk != NULL)
        SIGNAL_UNREF(rk);
    free(lid);
    free(rid);
    return rc;
}

static int cmd_fingerprint_compare(char **t, int n)
{
    uint8_t *a = NULL, *b = NULL;
    size_t al = 0, bl = 0;
    scannable_fingerprint *sa = NULL, *sb = NULL;
    int rc = PEER_SYNTAX;

    if (n != 3 || (a = unhex(t[1], &al)) == NULL || (b = unhex(t[2], &bl)) == NULL)
        goto out;
    if ((rc = scannable_fingerprint_deserialize(&sa, a, al, g_ctx)) != 0 ||
        (rc = scannable_fingerprint_deserialize(&sb, b, bl, g_ctx)) != 0)
        goto out;
    rc = scannable_fingerprint_compare(sa, sb);
    if (rc == 1) {
        fputs("ok", stdout);
        rc = 0;
    } else if (rc == 0) {
        fputs("err MISMATCH", stdout); /* same version and ids, different keys */
    }
out:
    if (sa != NULL)
        SIGNAL_UNREF(sa);
    if (sb != NULL)
        SIGNAL_UNREF(sb);
    free(a);
    free(b);
    return rc;
}

static int cmd_bench(char **t, int n)
{
    uint32_t count;
    uint64_t ns = 0;
    int rc;

    if (n != 3 || parse_u32(t[2], &count) != 0 || count == 0)
        return PEER_SYNTAX;
    rc = peer_bench_run(g_ctx, t[1], count, &ns);
    if (rc != 0)
        return rc;
    printf("ok %.1f %" PRIu32 " %" PRIu64, ns ? (double)count * 1e9 / (double)ns : 0.0, count, ns);
    return 0;
}

/* Runs one request; returns 1 to quit. Prints exactly one response line. */
static int run_line(char *line)
{
    char *t[PEER_MAX_TOKENS + 1];
    int n = split(line, t, PEER_MAX_TOKENS + 1);
    int rc = PEER_SYNTAX, quit = 0;
    const char *c;

    if (n == 0 || n > PEER_MAX_TOKENS)
        goto done;
    c = t[0];
    if (strcmp(c, "identity") == 0 && n == 1)
        rc = cmd_identity();
    else if (strcmp(c, "new_identity") == 0 && n == 1) {
        rc = peer_party_regenerate_identity(g_self);
        if (rc == 0)
            rc = cmd_identity();
    } else if (strcmp(c, "prekeys") == 0)
        rc = cmd_prekeys(t, n);
    else if (strcmp(c, "signed_prekey") == 0)
        rc = cmd_signed_prekey(t, n);
    else if (strcmp(c, "bundle") == 0)
        rc = cmd_bundle(t, n);
    else if (strcmp(c, "process_bundle") == 0)
        rc = cmd_process_bundle(t, n);
    else if (strcmp(c, "encrypt") == 0)
        rc = cmd_encrypt(t, n);
    else if (strcmp(c, "decrypt") == 0)
        rc = cmd_decrypt(t, n);
    else if (strcmp(c, "session_version") == 0)
        rc = cmd_session_info(t, n, 0);
    else if (strcmp(c, "remote_registration_id") == 0)
        rc = cmd_session_info(t, n, 1);
    else if (strcmp(c, "has_session") == 0)
        rc = cmd_session_info(t, n, 2);
    else if (strcmp(c, "delete_session") == 0)
        rc = cmd_session_info(t, n, 3);
    else if (strcmp(c, "has_prekey") == 0)
        rc = cmd_has_prekey(t, n);
    else if (strcmp(c, "prekey_count") == 0 && n == 1) {
        printf("ok %zu", peer_party_prekey_count(g_self));
        rc = 0;
    } else if (strcmp(c, "trust") == 0)
        rc = cmd_trust(t, n);
    else if (strcmp(c, "group_create") == 0)
        rc = cmd_group(t, n, 0);
    else if (strcmp(c, "group_process") == 0)
        rc = cmd_group(t, n, 1);
    else if (strcmp(c, "group_encrypt") == 0)
        rc = cmd_group(t, n, 2);
    else if (strcmp(c, "group_decrypt") == 0)
        rc = cmd_group(t, n, 3);
    else if (strcmp(c, "fingerprint") == 0)
        rc = cmd_fingerprint(t, n);
    else if (strcmp(c, "fingerprint_compare") == 0)
        rc = cmd_fingerprint_compare(t, n);
    else if (strcmp(c, "bench") == 0)
        rc = cmd_bench(t, n);
    else if (strcmp(c, "quit") == 0 && n == 1) {
        fputs("ok", stdout);
        rc = 0;
        quit = 1;
    }
done:
    if (rc == PEER_SYNTAX)
        fputs("err SYNTAX", stdout);
    else if (rc != 0)
        printf("err %s", peer_error_name(rc));
    fputc('\n', stdout);
    fflush(stdout);
    return quit;
}

int main(void)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc;

    rc = peer_context_new(&g_ctx);
    if (rc == 0)
        rc = peer_party_new(&g_self, g_ctx);
    if (rc != 0) {
        fprintf(stderr, "sotto-interop-peer: setup failed (%d)\n", rc);
        return 1;
    }
    while ((len = getline(&line, &cap, stdin)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = 0;
        if (run_line(line))
            break;
    }
    free(line);
    peer_party_free(g_self);
    peer_context_free(g_ctx);
    peer_crypto_thread_cleanup();
    return 0;
}
