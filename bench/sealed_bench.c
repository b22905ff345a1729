/*
 * bench/sealed_bench.c -- sotto-bench-sealed: libsotto's sealed sender v1
 * (sotto/sealed.h) against Signal's libsignal-client (the npm package
 * @signalapp/libsignal-client, its prebuilt Rust native module, driven from
 * Node.js by bench/peers/libsignal-client/sealed_bench.js) in one run.
 *
 * Both sides seal the same inner content (100 bytes and 4096 bytes; type 8,
 * a plaintext content starting 0xC0, so libsignal-client's API needs no
 * session: the sealing layer treats the content as opaque bytes) with the
 * same keys and the same sender certificate (made here by libsotto in
 * libsignal's byte format), so the sealed messages have the same length.
 *   encrypt  ours: sotto_sealed_encrypt (inner message + both layers)
 *            peer: UnidentifiedSenderMessageContent.new + sealedSenderEncrypt
 *   decrypt  ours: sotto_sealed_decrypt (MACs, certificate chain, expiry,
 *                  static key = certificate key)
 *            peer: sealedSenderDecryptToUsmc + SenderCertificate.validate
 * Every opened content is compared with what was sealed. Across the two
 * implementations: the peer opens a message sealed by libsotto, and
 * libsotto opens one sealed by the peer (checked here).
 *
 * Time: CPU time of each measuring process, best of BENCH_RUNS runs. The
 * peer's figure includes Node.js: the N-API calls and the promise of every
 * async call (libsignal-client has no synchronous sealing API).
 *
 * Output: `bench sealed-<op>-<size> sotto_ops_per_s=<n> peer_ops_per_s=<n>
 * ratio=<sotto/peer>` lines, then a table. Without the peer (Node.js or
 * the npm package missing: `make bench` installs it), ours only, and the
 * lines say peer_ops_per_s=none.
 *
 * Usage: sotto-bench-sealed [--quick] [--peer-dir DIR] [--node PATH]
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "sotto/keys.h"
#include "sotto/sealed.h"

#ifndef SOTTO_SEALED_PEER_DIR
#define SOTTO_SEALED_PEER_DIR "bench/peers/libsignal-client"
#endif

#define BENCH_RUNS 3
#define SENDER "alice"
#define SENDER_DEVICE 1
#define RECIPIENT "bob"

typedef struct msg_case {
    size_t size;
    unsigned count; /* operations per run */
    uint8_t *content;
    uint8_t *sealed; /* one sealed by libsotto, for the peer */
    size_t sealed_len;
    double enc, dec;           /* ours, best ops/s */
    double peer_enc, peer_dec; /* peer, 0 = not measured */
    size_t peer_sealed_len;
    const char *cross; /* libsotto opening the peer's message */
} msg_case;

static msg_case cases[] = {
    {100, 3000, NULL, NULL, 0, 0, 0, 0, 0, 0, "not run"},
    {4096, 1500, NULL, NULL, 0, 0, 0, 0, 0, 0, "not run"},
};
#define N_CASES (sizeof(cases) / sizeof(cases[0]))

static sotto_key_pair root, server, sender, recipient;
static uint8_t *sender_cert;
static size_t sender_cert_len;
static uint64_t now_ms;

static uint64_t cpu_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "sotto-bench-sealed: %s failed: %s (%d)\n", what, sotto_strerror(rc), rc);
    exit(1);
}

#define CHECK(what, expr)                                                                          \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        if (rc_ != SOTTO_OK)                                                                       \
            die(what, rc_);                                                                        \
    } while (0)

static void setup(void)
{
    uint8_t *server_cert = NULL;
    size_t server_cert_len = 0;
    struct timeval tv;

    gettimeofday(&tv, NULL);
    now_ms = (uint64_t)tv.tv_sec * 1000u + (uint64_t)tv.tv_usec / 1000u;
    CHECK("trust root", sotto_key_pair_generate(&root));
    CHECK("server key", sotto_key_pair_generate(&server));
    CHECK("sender identity", sotto_identity_key_pair_generate(&sender));
    CHECK("recipient identity", sotto_identity_key_pair_generate(&recipient));
    CHECK("server certificate", sotto_server_certificate_create(&server_cert, &server_cert_len, 1,
                                                                &server.pub, root.priv));
    CHECK("sender certificate",
          sotto_sender_certificate_create(&sender_cert, &sender_cert_len, SENDER, SENDER_DEVICE,
                                          &sender.pub, now_ms + 86400000u, server_cert,
                                          server_cert_len, server.priv));
    free(server_cert);
    for (size_t i = 0; i < N_CASES; i++) {
        msg_case *c = &cases[i];

        c->content = malloc(c->size);
        if (c->content == NULL)
            die("malloc", SOTTO_ERR_NOMEM);
        randombytes_buf(c->content, c->size);
        c->content[0] = 0xC0; /* libsignal's plaintext-content marker */
        CHECK("seal", sotto_sealed_encrypt(&c->sealed, &c->sealed_len, &sender, &recipient.pub,
                                           SOTTO_SEALED_TYPE_PLAINTEXT, sender_cert,
                                           sender_cert_len, c->content, c->size));
    }
}

/* Opens `data` with libsotto and checks type, sender, device and content. */
static int open_check(const msg_case *c, const uint8_t *data, size_t len)
{
    sotto_sealed_result r;
    int rc = sotto_sealed_decrypt(&r, data, len, &recipient, &root.pub, now_ms);

    if (rc != SOTTO_OK)
        return rc;
    if (r.type != SOTTO_SEALED_TYPE_PLAINTEXT || strcmp(r.sender.sender, SENDER) != 0 ||
        r.sender.device_id != SENDER_DEVICE || r.content_len != c->size ||
        memcmp(r.content, c->content, c->size) != 0)
        rc = SOTTO_ERR_INVALID_MESSAGE;
    sotto_sealed_result_free(&r);
    return rc;
}

static void measure_ours(msg_case *c, unsigned runs)
{
    for (unsigned run = 0; run < runs; run++) {
        uint8_t *out = NULL;
        size_t out_len = 0;
        uint64_t t0 = cpu_ns();
        double dt;

        for (unsigned i = 0; i < c->count; i++) {
            free(out);
            CHECK("sotto_sealed_encrypt",
                  sotto_sealed_encrypt(&out, &out_len, &sender, &recipient.pub,
                                       SOTTO_SEALED_TYPE_PLAINTEXT, sender_cert, sender_cert_len,
                                       c->content, c->size));
        }
        dt = (double)(cpu_ns() - t0) / 1e9;
        if (c->count / dt > c->enc)
            c->enc = c->count / dt;
        if (out_len != c->sealed_len)
            die("sealed length", SOTTO_ERR_INVALID_MESSAGE);
        t0 = cpu_ns();
        for (unsigned i = 0; i < c->count; i++)
            CHECK("sotto_sealed_decrypt", open_check(c, out, out_len));
        dt = (double)(cpu_ns() - t0) / 1e9;
        if (c->count / dt > c->dec)
            c->dec = c->count / dt;
        free(out);
    }
}

static void put_hex(FILE *fp, const char *key, const uint8_t *p, size_t n, const char *after)
{
    fprintf(fp, "\"%s\":\"", key);
    for (size_t i = 0; i < n; i++)
        fprintf(fp, "%02x", p[i]);
    fprintf(fp, "\"%s", after);
}

static int hex_decode(uint8_t **out, size_t *out_len, const char *hex)
{
    size_t n = strlen(hex), bin_len = 0;
    uint8_t *bin;

    while (n > 0 && (hex[n - 1] == '\n' || hex[n - 1] == '\r'))
        n--;
    bin = malloc(n / 2 + 1);
    if (bin == NULL)
        return -1;
    if (sodium_hex2bin(bin, n / 2 + 1, hex, n, NULL, &bin_len, NULL) != 0) {
        free(bin);
        return -1;
    }
    *out = bin;
    *out_len = bin_len;
    return 0;
}

/* Runs the Node.js peer; fills peer_* of each case. Returns 0; -2 when the
 * peer is not installed (the table shows ours only); -1 when it failed or
 * the two implementations do not open each other's messages (reason
 * printed). */
static int run_peer(const char *node, const char *peer_dir, unsigned runs)
{
    char setup_path[] = "/tmp/sotto-bench-sealed-XXXXXX";
    char cmd[4096], check[2048];
    char *line = NULL;
    size_t line_cap = 0;
    FILE *fp, *pp;
    int fd, status, ok = 0;

    snprintf(check, sizeof(check), "%s/node_modules/@signalapp/libsignal-client/package.json",
             peer_dir);
    if (access(check, R_OK) != 0) {
        fprintf(stderr,
                "sotto-bench-sealed: peer not installed (%s missing): `make bench` runs npm ci "
                "in %s\n",
                check, peer_dir);
        return -2;
    }
    fd = mkstemp(setup_path);
    if (fd < 0 || (fp = fdopen(fd, "w")) == NULL) {
        fprintf(stderr, "sotto-bench-sealed: temp file: %s\n", strerror(errno));
        return -1;
    }
    fprintf(fp, "{");
    put_hex(fp, "trust_root", root.pub.bytes, sizeof(root.pub.bytes), ",");
    put_hex(fp, "sender_priv", sender.priv, sizeof(sender.priv), ",");
    put_hex(fp, "sender_pub", sender.pub.bytes, sizeof(sender.pub.bytes), ",");
    put_hex(fp, "recipient_priv", recipient.priv, sizeof(recipient.priv), ",");
    put_hex(fp, "recipient_pub", recipient.pub.bytes, sizeof(recipient.pub.bytes), ",");
    put_hex(fp, "sender_cert", sender_cert, sender_cert_len, ",");
    fprintf(fp,
            "\"sender\":\"%s\",\"sender_device\":%d,\"recipient\":\"%s\",\"now_ms\":%" PRIu64
            ",\"runs\":%u,\"messages\":[",
            SENDER, SENDER_DEVICE, RECIPIENT, now_ms, runs);
    for (size_t i = 0; i < N_CASES; i++) {
        fprintf(fp, "%s{\"type\":%d,\"count\":%u,", i ? "," : "", SOTTO_SEALED_TYPE_PLAINTEXT,
                cases[i].count);
        put_hex(fp, "content", cases[i].content, cases[i].size, ",");
        put_hex(fp, "sotto_sealed", cases[i].sealed, cases[i].sealed_len, "}");
    }
    fprintf(fp, "]}\n");
    if (fclose(fp) != 0) {
        unlink(setup_path);
        return -1;
    }

    snprintf(cmd, sizeof(cmd), "'%s' '%s/sealed_bench.js' '%s'", node, peer_dir, setup_path);
    pp = popen(cmd, "r");
    if (pp == NULL) {
        unlink(setup_path);
        fprintf(stderr, "sotto-bench-sealed: cannot run %s\n", node);
        return -2;
    }
    while (getline(&line, &line_cap, pp) > 0) {
        size_t size = 0, sealed_len = 0;
        double enc = 0, dec = 0;
        int off = 0;

        if (sscanf(line, "peer size=%zu encrypt_ops_per_s=%lf decrypt_ops_per_s=%lf sealed_len=%zu",
                   &size, &enc, &dec, &sealed_len) == 4) {
            for (size_t i = 0; i < N_CASES; i++)
                if (cases[i].size == size) {
                    cases[i].peer_enc = enc;
                    cases[i].peer_dec = dec;
                    cases[i].peer_sealed_len = sealed_len;
                }
        } else if (sscanf(line, "peer_sealed size=%zu %n", &size, &off) == 1 && off > 0) {
            uint8_t *bin = NULL;
            size_t bin_len = 0;

            for (size_t i = 0; i < N_CASES; i++) {
                if (cases[i].size != size)
                    continue;
                if (hex_decode(&bin, &bin_len, line + off) != 0) {
                    cases[i].cross = "bad hex";
                    break;
                }
                cases[i].cross = open_check(&cases[i], bin, bin_len) == SOTTO_OK ? "ok" : "FAILED";
                if (strcmp(cases[i].cross, "ok") == 0)
                    ok++;
                free(bin);
                break;
            }
        }
    }
    free(line);
    status = pclose(pp);
    unlink(setup_path);
    if (status != 0) {
        fprintf(stderr, "sotto-bench-sealed: the peer failed (status %d)\n", status);
        return -1;
    }
    return ok == (int)N_CASES ? 0 : -1;
}

static void print_line(const char *op, size_t size, double ours, double peer)
{
    if (peer > 0)
        printf("bench sealed-%s-%zu sotto_ops_per_s=%.0f peer_ops_per_s=%.0f ratio=%.2f\n", op,
               size, ours, peer, ours / peer);
    else
        printf("bench sealed-%s-%zu sotto_ops_per_s=%.0f peer_ops_per_s=none\n", op, size, ours);
}

int main(int argc, char **argv)
{
    const char *peer_dir = SOTTO_SEALED_PEER_DIR, *node = "node";
    unsigned runs = BENCH_RUNS, div = 1;
    int peer_rc;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            runs = 1;
            div = 10;
        } else if (strcmp(argv[i], "--peer-dir") == 0 && i + 1 < argc) {
            peer_dir = argv[++i];
        } else if (strcmp(argv[i], "--node") == 0 && i + 1 < argc) {
            node = argv[++i];
        } else {
            fprintf(stderr, "usage: sotto-bench-sealed [--quick] [--peer-dir DIR] [--node PATH]\n");
            return 2;
        }
    }
    CHECK("sotto_init", sotto_init());
    for (size_t i = 0; i < N_CASES; i++)
        cases[i].count /= div;
    setup();

    /* The peer first, then ours: one at a time, so they do not compete. */
    peer_rc = run_peer(node, peer_dir, runs);
    for (size_t i = 0; i < N_CASES; i++)
        measure_ours(&cases[i], runs);

    for (size_t i = 0; i < N_CASES; i++) {
        print_line("encrypt", cases[i].size, cases[i].enc, cases[i].peer_enc);
        print_line("decrypt", cases[i].size, cases[i].dec, cases[i].peer_dec);
    }
    printf("\nSealed sender v1, libsotto vs libsignal-client (Node.js), ops per CPU-second, "
           "best of %u\n",
           runs);
    printf("  %-8s %6s %10s %10s %8s %7s %6s %s\n", "op", "size", "libsotto", "libsignal", "ratio",
           "sealed", "peer", "peer msg opened by libsotto");
    for (size_t i = 0; i < N_CASES; i++) {
        const msg_case *c = &cases[i];
        const char *ops[2] = {"encrypt", "decrypt"};
        double ours[2] = {c->enc, c->dec}, peer[2] = {c->peer_enc, c->peer_dec};

        for (int k = 0; k < 2; k++) {
            if (peer[k] > 0)
                printf("  %-8s %6zu %10.0f %10.0f %7.2fx %7zu %6zu %s\n", ops[k], c->size, ours[k],
                       peer[k], ours[k] / peer[k], c->sealed_len, c->peer_sealed_len, c->cross);
            else
                printf("  %-8s %6zu %10.0f %10s %8s %7zu %6s %s\n", ops[k], c->size, ours[k], "-",
                       "-", c->sealed_len, "-", c->cross);
        }
    }
    for (size_t i = 0; i < N_CASES; i++) {
        free(cases[i].content);
        free(cases[i].sealed);
    }
    free(sender_cert);
    sotto_key_pair_wipe(&root);
    sotto_key_pair_wipe(&server);
    sotto_key_pair_wipe(&sender);
    sotto_key_pair_wipe(&recipient);
    if (peer_rc == -1)
        printf("sotto-bench-sealed: FAILED: the peer failed or a message did not open (above)\n");
    return peer_rc == -1 ? 1 : 0;
}
