/*
 * bench/lib_bench.c -- sotto-bench-lib: libsotto against libsignal-protocol-c
 * on the same scenarios, message sizes and counts, in one invocation.
 *
 * libsotto runs in this process; libsignal-protocol-c runs in its own
 * process (sotto-interop-peer, `bench` command, bench/lib_peer_bench.c),
 * one after the other so they do not compete for the CPU. On both sides
 * two parties (Alice and Bob) keep their state in in-memory stores that
 * hold serialised records: every message loads and stores the session (or
 * sender-key) record, as a client does. Every decrypted plaintext is
 * compared with what was sent (plain memcmp on both sides: the plaintexts
 * are synthetic, and a constant-time compare would only add noise).
 * Scenarios (one operation each):
 *   setup      Alice processes Bob's bundle (one-time prekey included),
 *              encrypts a 100-byte first message, Bob decrypts it
 *   one-way    100-byte message encrypted by Alice, decrypted by Bob
 *              (symmetric ratchet only)
 *   ping-pong  100-byte messages, direction alternates (a DH step each)
 *   4k         4096-byte messages one way
 *   group      100-byte sender-key message encrypted and decrypted
 * and, libsotto alone, ML-KEM-768/1024 and Kyber-1024 key generation,
 * encapsulation and decapsulation per second (`--only kem` for just those).
 * Each scenario runs BENCH_RUNS times per library, alternating; the best
 * run counts. Time is the CPU time of the measuring process
 * (CLOCK_PROCESS_CPUTIME_ID, on both sides): every scenario is
 * single-threaded and CPU-bound, so ops per CPU-second is ops per second
 * on an idle core, and other work on the machine (builds) barely skews it.
 *
 * Output: one machine-readable line per scenario,
 *   bench <scenario> sotto_ops_per_s=<n> peer_ops_per_s=<n> ratio=<sotto/peer>
 * then a table, and the cost of the primitives alone for one message
 * (the floor no implementation of this wire format can go below).
 *
 * Usage: sotto-bench-lib [--quick] [--only SCENARIO] [--peer PATH]
 * (--quick: 1/20 of the operations, one run; --only: one scenario, e.g.
 * under a profiler.)
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "crypto/crypto.h"
#include "sotto/memory_store.h"
#include "sotto/session.h"
#include "sotto/group.h"
#include "sotto/kem.h"

#ifndef SOTTO_INTEROP_PEER_PATH
#define SOTTO_INTEROP_PEER_PATH "sotto-interop-peer"
#endif

#define BENCH_SMALL 100
#define BENCH_LARGE 4096
#define BENCH_RUNS 3

typedef struct scenario {
    const char *name;
    const char *what;
    unsigned count;    /* operations per run */
    double ours, peer; /* best ops/s */
} scenario;

static scenario scenarios[] = {
    {"setup", "bundle -> first message -> decrypt", 300, 0, 0},
    {"one-way", "100 B, symmetric ratchet", 20000, 0, 0},
    {"ping-pong", "100 B, DH ratchet step each", 2000, 0, 0},
    {"4k", "4 KiB one way", 10000, 0, 0},
    {"group", "100 B sender key", 4000, 0, 0},
};
#define N_SCENARIOS (sizeof(scenarios) / sizeof(scenarios[0]))

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts); /* CPU time: see the header */
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* p[i] = seq * 31 + 7 * i (mod 256). The pattern repeats every 256 bytes,
 * so only the first 256 are computed and the rest doubled by memcpy: the
 * same bytes as a per-byte loop, without charging a 4 KiB byte loop (about
 * 1 us here) to the library being measured. */
static void fill(uint8_t *p, size_t n, unsigned seq)
{
    size_t done = 0;

    for (; done < n && done < 256; done++)
        p[done] = (uint8_t)(seq * 31u + done * 7u);
    while (done < n) {
        size_t k = n - done < done ? n - done : done;
        memcpy(p + done, p, k);
        done += k;
    }
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "sotto-bench-lib: %s failed: %s (%d)\n", what, sotto_strerror(rc), rc);
    exit(1);
}

#define CHECK(what, expr)                                                                          \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        if (rc_ != SOTTO_OK)                                                                       \
            die(what, rc_);                                                                        \
    } while (0)

/* ---------------------------------------------------------------------- */
/* libsotto side                                                            */

typedef struct party {
    sotto_key_pair identity;
    sotto_memory_store *ms;
    const sotto_protocol_store *st;
} party;

static void party_init(party *p)
{
    uint32_t reg = 0;

    CHECK("identity", sotto_identity_key_pair_generate(&p->identity));
    CHECK("registration id", sotto_registration_id_generate(&reg));
    CHECK("memory store", sotto_memory_store_new(&p->identity, reg, &p->ms));
    p->st = sotto_memory_store_protocol(p->ms);
}

static void party_free(party *p)
{
    sotto_memory_store_free(p->ms);
    sotto_key_pair_wipe(&p->identity);
}

typedef struct pair {
    party alice, bob;
    sotto_address alice_addr, bob_addr; /* as seen by the other party */
} pair;

static void pair_init(pair *pp)
{
    memset(pp, 0, sizeof(*pp));
    party_init(&pp->alice);
    party_init(&pp->bob);
    pp->alice_addr = (sotto_address){"alice", 5, 1};
    pp->bob_addr = (sotto_address){"bob", 3, 1};
}

static void pair_free(pair *pp)
{
    party_free(&pp->alice);
    party_free(&pp->bob);
}

/* Bob's signed prekey 1 and one-time prekeys 1..count. */
static void bob_keys(pair *pp, unsigned count)
{
    sotto_signed_prekey spk;
    sotto_prekey pk;
    const sotto_protocol_store *bs = pp->bob.st;

    CHECK("signed prekey",
          sotto_signed_prekey_generate(&spk, &pp->bob.identity, 1, 1700000000000ull));
    CHECK("store signed prekey", bs->signed_prekey.store(bs->signed_prekey.user_data, &spk));
    sodium_memzero(&spk, sizeof(spk));
    for (unsigned i = 0; i < count; i++) {
        CHECK("prekey", sotto_prekeys_generate(&pk, i, 1));
        CHECK("store prekey", bs->prekey.store(bs->prekey.user_data, &pk));
    }
    sodium_memzero(&pk, sizeof(pk));
}

/* Alice processes Bob's bundle with one-time prekey pk_id (keys read from
 * Bob's store, as a server would hand them out). */
static void process_bundle(pair *pp, uint32_t pk_id)
{
    const sotto_protocol_store *bs = pp->bob.st;
    sotto_prekey_bundle b;
    sotto_prekey pk;
    sotto_signed_prekey spk;
    uint32_t reg = 0;

    memset(&b, 0, sizeof(b));
    CHECK("load prekey", bs->prekey.load(bs->prekey.user_data, pk_id, &pk));
    CHECK("load signed prekey", bs->signed_prekey.load(bs->signed_prekey.user_data, 1, &spk));
    CHECK("registration id", bs->identity.get_local_registration_id(bs->identity.user_data, &reg));
    b.registration_id = reg;
    b.device_id = 1;
    b.has_prekey = true;
    b.prekey_id = pk_id;
    b.prekey = pk.key.pub;
    b.signed_prekey_id = 1;
    b.signed_prekey = spk.key.pub;
    memcpy(b.signed_prekey_signature, spk.signature, sizeof(b.signed_prekey_signature));
    b.identity_key = pp->bob.identity.pub;
    sodium_memzero(&pk, sizeof(pk));
    sodium_memzero(&spk, sizeof(spk));
    CHECK("process bundle", sotto_session_process_bundle(pp->alice.st, &pp->bob_addr, &b));
}

/* from encrypts for to_addr; to decrypts from from_addr; plaintext checked. */
static void send_msg(const party *from, const sotto_address *to_addr, const party *to,
                     const sotto_address *from_addr, size_t len, unsigned seq)
{
    uint8_t pt[BENCH_LARGE];
    uint8_t *ct = NULL, *out = NULL;
    size_t ct_len = 0, out_len = 0;
    int type = 0;

    fill(pt, len, seq);
    CHECK("encrypt", sotto_session_encrypt(from->st, to_addr, pt, len, &ct, &ct_len, &type));
    CHECK("decrypt", sotto_session_decrypt(to->st, from_addr, type, ct, ct_len, &out, &out_len));
    if (out_len != len || memcmp(out, pt, len) != 0)
        die("plaintext comparison", SOTTO_ERR_INTERNAL);
    sodium_memzero(out, out_len);
    free(out);
    free(ct);
}

static void a2b(pair *pp, size_t len, unsigned seq)
{
    send_msg(&pp->alice, &pp->bob_addr, &pp->bob, &pp->alice_addr, len, seq);
}

static void b2a(pair *pp, size_t len, unsigned seq)
{
    send_msg(&pp->bob, &pp->alice_addr, &pp->alice, &pp->bob_addr, len, seq);
}

static void establish(pair *pp)
{
    bob_keys(pp, 1);
    process_bundle(pp, 1);
    a2b(pp, BENCH_SMALL, 0);
    b2a(pp, BENCH_SMALL, 1);
}

static uint64_t ours_setup(unsigned count)
{
    pair pp;
    uint64_t ns = 0;

    pair_init(&pp);
    bob_keys(&pp, count);
    for (unsigned i = 0; i < count; i++) {
        uint64_t t0 = now_ns();
        process_bundle(&pp, i + 1);
        a2b(&pp, BENCH_SMALL, i);
        ns += now_ns() - t0;
        CHECK("delete session", sotto_session_delete(pp.alice.st, &pp.bob_addr));
        CHECK("delete session", sotto_session_delete(pp.bob.st, &pp.alice_addr));
    }
    pair_free(&pp);
    return ns;
}

static uint64_t ours_stream(unsigned count, size_t len, int alternate)
{
    pair pp;
    uint64_t t0, ns;

    pair_init(&pp);
    establish(&pp);
    t0 = now_ns();
    for (unsigned i = 0; i < count; i++) {
        if (!alternate || i % 2 == 0)
            a2b(&pp, len, i);
        else
            b2a(&pp, len, i);
    }
    ns = now_ns() - t0;
    pair_free(&pp);
    return ns;
}

static uint64_t ours_group(unsigned count)
{
    static const uint8_t gid[] = "bench-group";
    pair pp;
    sotto_sender_key_name name;
    uint8_t pt[BENCH_SMALL];
    uint8_t *skdm = NULL;
    size_t skdm_len = 0;
    uint64_t t0, ns;

    pair_init(&pp);
    name.group_id = gid;
    name.group_id_len = sizeof(gid) - 1;
    name.sender = pp.alice_addr;
    CHECK("create distribution",
          sotto_group_create_distribution(&pp.alice.st->sender_key, &name, &skdm, &skdm_len));
    CHECK("process distribution",
          sotto_group_process_distribution(&pp.bob.st->sender_key, &name, skdm, skdm_len));
    sodium_memzero(skdm, skdm_len);
    free(skdm);
    t0 = now_ns();
    for (unsigned i = 0; i < count; i++) {
        uint8_t *ct = NULL, *out = NULL;
        size_t ct_len = 0, out_len = 0;

        fill(pt, sizeof(pt), i);
        CHECK("group encrypt",
              sotto_group_encrypt(&pp.alice.st->sender_key, &name, pt, sizeof(pt), &ct, &ct_len));
        CHECK("group decrypt",
              sotto_group_decrypt(&pp.bob.st->sender_key, &name, ct, ct_len, &out, &out_len));
        if (out_len != sizeof(pt) || memcmp(out, pt, sizeof(pt)) != 0)
            die("plaintext comparison", SOTTO_ERR_INTERNAL);
        sodium_memzero(out, out_len);
        free(out);
        free(ct);
    }
    ns = now_ns() - t0;
    pair_free(&pp);
    return ns;
}

static uint64_t ours_run(const char *name, unsigned count)
{
    if (strcmp(name, "setup") == 0)
        return ours_setup(count);
    if (strcmp(name, "one-way") == 0)
        return ours_stream(count, BENCH_SMALL, 0);
    if (strcmp(name, "ping-pong") == 0)
        return ours_stream(count, BENCH_SMALL, 1);
    if (strcmp(name, "4k") == 0)
        return ours_stream(count, BENCH_LARGE, 0);
    return ours_group(count);
}

/* ---------------------------------------------------------------------- */
/* libsignal-protocol-c side: the peer process                              */

typedef struct peer {
    pid_t pid;
    FILE *to, *from;
} peer;

static int peer_start(peer *p, const char *path)
{
    int in[2], out[2];

    signal(SIGPIPE, SIG_IGN);
    if (pipe(in) != 0 || pipe(out) != 0)
        return -1;
    p->pid = fork();
    if (p->pid < 0)
        return -1;
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
    p->to = fdopen(in[1], "w");
    p->from = fdopen(out[0], "r");
    return p->to != NULL && p->from != NULL ? 0 : -1;
}

static void peer_stop(peer *p)
{
    int status;

    fputs("quit\n", p->to);
    fclose(p->to);
    fclose(p->from);
    waitpid(p->pid, &status, 0);
}

/* Runs `bench <name> <count>` in the peer; returns elapsed ns. A failure
 * there (an error or a plaintext mismatch) ends the benchmark. */
static uint64_t peer_run(peer *p, const char *name, unsigned count)
{
    char line[256];
    double ops = 0;
    unsigned n = 0;
    uint64_t ns = 0;

    fprintf(p->to, "bench %s %u\n", name, count);
    fflush(p->to);
    if (fgets(line, sizeof(line), p->from) == NULL) {
        fprintf(stderr, "sotto-bench-lib: the peer died during %s\n", name);
        exit(1);
    }
    if (sscanf(line, "ok %lf %u %" SCNu64, &ops, &n, &ns) != 3 || n != count) {
        fprintf(stderr, "sotto-bench-lib: libsignal-protocol-c failed %s: %s", name, line);
        exit(1);
    }
    return ns;
}

/* ---------------------------------------------------------------------- */
/* Primitives alone (the floor)                                             */

#define FLOOR_BATCHES 20
#define FLOOR_TIME(out, iters, stmt)                                                               \
    do {                                                                                           \
        double best_ = 0;                                                                          \
        unsigned per_ = (iters) / FLOOR_BATCHES ? (iters) / FLOOR_BATCHES : 1;                     \
        for (int b_ = 0; b_ < FLOOR_BATCHES; b_++) {                                               \
            uint64_t t0_ = now_ns();                                                               \
            for (unsigned i_ = 0; i_ < per_; i_++) {                                               \
                stmt;                                                                              \
            }                                                                                      \
            double ns_ = (double)(now_ns() - t0_) / per_;                                          \
            if (b_ == 0 || ns_ < best_)                                                            \
                best_ = ns_;                                                                       \
        }                                                                                          \
        (out) = best_;                                                                             \
    } while (0)

/*
 * The floor uses the primitives libsotto's ratchet uses (lib/crypto): the
 * keyed HMAC-SHA256 state, HKDF, AES-256-CBC.
 */
/* Chain step (spec 2.3): seed = HMAC(ck, 0x01), ck = HMAC(ck, 0x02). */
static void floor_chain_step(uint8_t ck[32], uint8_t seed[32])
{
    static const uint8_t one = 1, two = 2;
    const uint8_t *p1[1] = {&one}, *p2[1] = {&two};
    size_t l[1] = {1};
    sotto_hmac_key k;

    CHECK("hmac key", sotto_hmac_key_init(&k, ck, 32));
    CHECK("hmac", sotto_hmac_key_mac(&k, p1, l, 1, seed));
    CHECK("hmac", sotto_hmac_key_mac(&k, p2, l, 1, ck));
    sotto_hmac_key_wipe(&k);
}

/* The SignalMessage MAC (spec 1.3) over `len` bytes. */
static void floor_mac(uint8_t out[32], const uint8_t key[32], const uint8_t *in, size_t len)
{
    const uint8_t *p[1] = {in};
    size_t l[1] = {len};
    sotto_hmac_key k;

    CHECK("hmac key", sotto_hmac_key_init(&k, key, 32));
    CHECK("mac", sotto_hmac_key_mac(&k, p, l, 1, out));
    sotto_hmac_key_wipe(&k);
}

typedef struct floor_cost {
    double chain_step, hkdf, mac, aes_enc, aes_dec, total;
} floor_cost;

/* ns per call of each primitive as one message of `len` bytes needs it:
 * per side a chain step (2 HMACs), message keys (HKDF to 80 bytes), the
 * MAC over both identity keys, the version byte and the protobuf; AES-CBC
 * encrypt on one side, decrypt on the other. */
static floor_cost measure_floor(size_t len, unsigned iters)
{
    static const uint8_t info[] = "WhisperMessageKeys";
    uint8_t key[32], seed[32], okm[80], mac[32], iv[16];
    uint8_t *pt = malloc(len + 16), *ct = malloc(len + 16), *dec = malloc(len + 16);
    size_t mac_len = 33 + 33 + 1 + 2 + 33 + 6 + 3 + len + 16; /* keys, version, protobuf */
    uint8_t *mac_in = malloc(mac_len);
    size_t ct_len = 0, dec_len = 0;
    floor_cost c;

    if (pt == NULL || ct == NULL || dec == NULL || mac_in == NULL)
        die("malloc", SOTTO_ERR_NOMEM);
    fill(key, sizeof(key), 1);
    fill(iv, sizeof(iv), 2);
    fill(pt, len, 3);
    fill(mac_in, mac_len, 4);

    /* Each cost is the fastest of FLOOR_BATCHES batches (robust against
     * other processes on the machine), in ns per call. */
    FLOOR_TIME(c.chain_step, iters, floor_chain_step(key, seed));
    FLOOR_TIME(c.hkdf, iters,
               CHECK("hkdf", sotto_hkdf_sha256(okm, sizeof(okm), NULL, 0, seed, 32, info,
                                               sizeof(info) - 1)));
    FLOOR_TIME(c.mac, iters, floor_mac(mac, okm + 32, mac_in, mac_len));
    FLOOR_TIME(c.aes_enc, iters,
               CHECK("aes", sotto_aes256_cbc_encrypt(ct, &ct_len, okm, iv, pt, len)));
    FLOOR_TIME(c.aes_dec, iters,
               CHECK("aes", sotto_aes256_cbc_decrypt(dec, &dec_len, okm, iv, ct, ct_len)));
    if (dec_len != len || memcmp(dec, pt, len) != 0)
        die("aes round trip", SOTTO_ERR_INTERNAL);

    c.total = 2 * (c.chain_step + c.hkdf + c.mac) + c.aes_enc + c.aes_dec;
    sodium_memzero(key, sizeof(key));
    sodium_memzero(seed, sizeof(seed));
    sodium_memzero(okm, sizeof(okm));
    free(pt);
    free(ct);
    free(dec);
    free(mac_in);
    return c;
}

static void print_floor(const char *label, const floor_cost *c)
{
    printf("  %-22s chain step %6.0f ns x2 | HKDF %6.0f ns x2 | MAC %6.0f ns x2 | "
           "AES-CBC enc %6.0f ns + dec %6.0f ns | total %7.0f ns = %.0f msg/s\n",
           label, c->chain_step, c->hkdf, c->mac, c->aes_enc, c->aes_dec, c->total, 1e9 / c->total);
}

/* ---------------------------------------------------------------------- */
/* KEMs (sotto/kem.h): libsotto only (libsignal-protocol-c has none).      */

static double kem_rate(sotto_kem_alg alg, int op, unsigned iters)
{
    uint8_t ek[SOTTO_KEM_MAX_PUBLIC_KEY_BYTES], dk[SOTTO_KEM_MAX_SECRET_KEY_BYTES];
    uint8_t ct[SOTTO_KEM_MAX_CIPHERTEXT_BYTES], ss[SOTTO_KEM_SHARED_BYTES];
    size_t ekl = sotto_kem_public_key_bytes(alg), dkl = sotto_kem_secret_key_bytes(alg);
    size_t ctl = sotto_kem_ciphertext_bytes(alg);
    uint64_t t0;

    CHECK("sotto_kem_keygen", sotto_kem_keygen(alg, ek, sizeof ek, dk, sizeof dk));
    CHECK("sotto_kem_encaps", sotto_kem_encaps(alg, ct, sizeof ct, ss, ek, ekl));
    t0 = now_ns();
    for (unsigned i = 0; i < iters; i++) {
        if (op == 0)
            CHECK("sotto_kem_keygen", sotto_kem_keygen(alg, ek, sizeof ek, dk, sizeof dk));
        else if (op == 1)
            CHECK("sotto_kem_encaps", sotto_kem_encaps(alg, ct, sizeof ct, ss, ek, ekl));
        else
            CHECK("sotto_kem_decaps", sotto_kem_decaps(alg, ss, ct, ctl, dk, dkl));
    }
    return (double)iters * 1e9 / (double)(now_ns() - t0);
}

/* Prints `bench kem-<alg>-<op> sotto_ops_per_s=<n>` lines and a table. */
static void kem_bench(int quick)
{
    static const struct {
        sotto_kem_alg alg;
        const char *name;
    } algs[] = {{SOTTO_KEM_MLKEM768, "mlkem768"},
                {SOTTO_KEM_MLKEM1024, "mlkem1024"},
                {SOTTO_KEM_KYBER1024, "kyber1024"}};
    static const char *ops[] = {"keygen", "encaps", "decaps"};
    unsigned iters = quick ? 100 : 2000;
    double r[3][3] = {{0}};

    for (size_t a = 0; a < 3; a++) {
        for (int op = 0; op < 3; op++) {
            for (int run = 0; run < (quick ? 1 : BENCH_RUNS); run++) {
                double v = kem_rate(algs[a].alg, op, iters);
                if (v > r[a][op])
                    r[a][op] = v;
            }
            printf("bench kem-%s-%s sotto_ops_per_s=%.0f\n", algs[a].name, ops[op], r[a][op]);
        }
    }
    printf("\nKEMs in libsotto (sotto/kem.h; best of %d runs of %u, ops per CPU-second;\n"
           "libsignal-protocol-c has no KEM to compare with)\n\n",
           quick ? 1 : BENCH_RUNS, iters);
    printf("  %-12s %12s %12s %12s\n", "kem", "keygen/s", "encaps/s", "decaps/s");
    for (size_t a = 0; a < 3; a++)
        printf("  %-12s %12.0f %12.0f %12.0f\n", algs[a].name, r[a][0], r[a][1], r[a][2]);
}

/* ---------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    const char *peer_path = SOTTO_INTEROP_PEER_PATH;
    const char *only = NULL;
    int quick = 0;
    peer p;
    floor_cost small, large;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            quick = 1;
        else if (strcmp(argv[i], "--peer") == 0 && i + 1 < argc)
            peer_path = argv[++i];
        else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc)
            only = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--quick] [--only SCENARIO] [--peer PATH]\n", argv[0]);
            return 2;
        }
    }
    CHECK("sotto_init", sotto_init());
    if (peer_start(&p, peer_path) != 0) {
        fprintf(stderr, "sotto-bench-lib: cannot start %s\n", peer_path);
        return 1;
    }

    for (size_t s = 0; s < N_SCENARIOS; s++) {
        scenario *sc = &scenarios[s];
        unsigned count = quick ? (sc->count / 20 ? sc->count / 20 : 1) : sc->count;

        if (only != NULL && strcmp(only, sc->name) != 0)
            continue;
        for (int run = 0; run < (quick ? 1 : BENCH_RUNS); run++) {
            uint64_t ns = ours_run(sc->name, count);
            double ops = ns ? (double)count * 1e9 / (double)ns : 0;
            if (ops > sc->ours)
                sc->ours = ops;
            ns = peer_run(&p, sc->name, count);
            ops = ns ? (double)count * 1e9 / (double)ns : 0;
            if (ops > sc->peer)
                sc->peer = ops;
        }
        printf("bench %s sotto_ops_per_s=%.0f peer_ops_per_s=%.0f ratio=%.2f\n", sc->name, sc->ours,
               sc->peer, sc->peer > 0 ? sc->ours / sc->peer : 0.0);
        fflush(stdout);
    }
    peer_stop(&p);

    small = measure_floor(BENCH_SMALL, quick ? 2000 : 50000);
    large = measure_floor(BENCH_LARGE, quick ? 200 : 5000);

    printf("\nLibrary benchmark: libsotto vs libsignal-protocol-c 2.3.3 (best of %d runs, ops per\n"
           "CPU-second; both persist serialised records through in-memory stores on every "
           "message)\n\n",
           quick ? 1 : BENCH_RUNS);
    printf("  %-10s %-36s %8s %14s %14s %7s\n", "scenario", "operation", "ops/run", "libsotto op/s",
           "libsignal op/s", "ratio");
    for (size_t s = 0; s < N_SCENARIOS; s++) {
        const scenario *sc = &scenarios[s];
        unsigned count = quick ? (sc->count / 20 ? sc->count / 20 : 1) : sc->count;
        if (only != NULL && strcmp(only, sc->name) != 0)
            continue;
        printf("  %-10s %-36s %8u %14.0f %14.0f %6.2fx\n", sc->name, sc->what, count, sc->ours,
               sc->peer, sc->peer > 0 ? sc->ours / sc->peer : 0.0);
    }
    printf("\nPrimitives alone for one message (encrypt + decrypt), the floor\n"
           "(libsotto's own keyed HMAC-SHA256, HKDF and AES-256-CBC from lib/crypto):\n");
    print_floor("one-way 100 B message", &small);
    print_floor("4 KiB message", &large);
    if (scenarios[1].ours > 0)
        printf("  one-way: libsotto %.0f ns/msg = %.1fx the primitives' floor\n",
               1e9 / scenarios[1].ours, (1e9 / scenarios[1].ours) / small.total);
    if (scenarios[3].ours > 0)
        printf("  4k:      libsotto %.0f ns/msg = %.1fx the primitives' floor; "
               "libsignal-protocol-c %.1fx\n",
               1e9 / scenarios[3].ours, (1e9 / scenarios[3].ours) / large.total,
               scenarios[3].peer > 0 ? (1e9 / scenarios[3].peer) / large.total : 0.0);
    if (only == NULL || strcmp(only, "kem") == 0)
        kem_bench(quick);
    return 0;
}
