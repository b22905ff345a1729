/*
 * bench/padding_bench.c -- what padding costs and what it hides (issue 12).
 *
 * Builds a realistic mix of the contents a client sends (real
 * sotto.content.Content protobufs, packed as the client packs them) and of
 * attachment sizes, from a fixed seed, and prints for each padding scheme
 * the bytes before and after padding, the overhead, and how many distinct
 * sizes remain (what the server can tell apart):
 *
 *   content:     the old 160-byte blocks (Signal's PushTransportDetails)
 *                against the buckets of sc_pad_size (docs/protocol.md
 *                "Padding");
 *   attachments: no padding, Signal's 1.05 buckets (what Sotto uploads,
 *                sotto_attachment_padded_size) and Padme (for comparison),
 *                as blob sizes (IV, CBC, MAC included).
 *
 * The mix is an assumption written down here and in docs/bench.md, not a
 * measurement of real users:
 *   contents (N_CONTENT): 30% 1:1 texts, 15% group texts, 5% replies (a
 *   quote of up to 200 bytes), 5% attachment messages (one pointer, a
 *   caption on 30%), 5% reactions, 2% edits/deletes, 30% receipts
 *   (delivery/read, 1-3 timestamps), 8% typing. Text lengths in bytes are
 *   log-normal with median 32 and sigma 0.9 (mean ~48), at most 2048 (the
 *   inline limit; 1% of texts are long: a 2 KiB body plus a long_text
 *   pointer). Every data message to a contact carries the 32-byte profile
 *   key; 3% of contents carry a key-transparency head with one auditor
 *   countersignature (gossip).
 *   attachments (N_ATTACH): 60% photos (median 300 KB, sigma 0.6), 15%
 *   voice notes (60 KB, 0.7), 15% documents (200 KB, 1.2), 10% videos
 *   (8 MB, 0.8), at most 100 MiB.
 *
 * Prints `bench padding_<what> ...` lines, then a table.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "content.pb-c.h"
#include "sotto/attachment.h"
#include "sotto/kt.h"
#include "sotto_client.h"

#define N_CONTENT 20000
#define N_ATTACH 4000
#define MAX_TEXT 2048

/* ------------------------------------------------------------ randomness */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
    /* xorshift64*: deterministic, so every run prints the same figures */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

static double uniform(void)
{
    return ((double)(rnd() >> 11) + 0.5) / 9007199254740992.0; /* (0, 1) */
}

static double lognormal(double median, double sigma)
{
    double z = sqrt(-2.0 * log(uniform())) * cos(2.0 * M_PI * uniform());
    return median * exp(sigma * z);
}

static size_t text_len(void)
{
    double l = lognormal(32.0, 0.9);
    if (l < 1)
        l = 1;
    return l > MAX_TEXT ? MAX_TEXT : (size_t)l;
}

/* ------------------------------------------------------------ contents */

static char text_buf[MAX_TEXT + 1];
static uint8_t profile_key[32], group_id[16],
    kt_head[SOTTO_KT_HEAD_BYTES + 1 + SOTTO_KT_COSIG_BYTES];
static uint8_t att_key[64], att_digest[32];

static char *text(size_t n)
{
    for (size_t i = 0; i < n; i++)
        text_buf[i] = (char)('a' + rnd() % 26);
    text_buf[n] = '\0';
    return text_buf;
}

static void pointer(Sotto__Content__AttachmentPointer *p, uint64_t size, const char *type,
                    const char *name)
{
    sotto__content__attachment_pointer__init(p);
    p->id = "0123456789abcdef0123456789abcdef";
    p->key.data = att_key;
    p->key.len = sizeof att_key;
    p->digest.data = att_digest;
    p->digest.len = sizeof att_digest;
    p->size = size;
    p->content_type = (char *)type;
    p->file_name = (char *)name;
}

enum { K_TEXT, K_GROUP, K_REPLY, K_ATTACH, K_REACTION, K_EDIT, K_RECEIPT, K_TYPING, K_N };
static const char *const kind_name[K_N] = {"text",     "group text", "reply",   "attachment",
                                           "reaction", "edit/del",   "receipt", "typing"};

static int pick_kind(void)
{
    static const int pct[K_N] = {30, 15, 5, 5, 5, 2, 30, 8};
    int r = (int)(rnd() % 100);
    for (int k = 0; k < K_N; k++) {
        if (r < pct[k])
            return k;
        r -= pct[k];
    }
    return K_TEXT;
}

/* One content of `kind`, packed; its length. */
static size_t make_content(int kind, uint8_t *out, size_t cap)
{
    Sotto__Content__Content c = SOTTO__CONTENT__CONTENT__INIT;
    Sotto__Content__DataMessage dm = SOTTO__CONTENT__DATA_MESSAGE__INIT;
    Sotto__Content__DataMessage edm = SOTTO__CONTENT__DATA_MESSAGE__INIT;
    Sotto__Content__GroupContext gc = SOTTO__CONTENT__GROUP_CONTEXT__INIT;
    Sotto__Content__DataMessage__Quote q = SOTTO__CONTENT__DATA_MESSAGE__QUOTE__INIT;
    Sotto__Content__DataMessage__Reaction re = SOTTO__CONTENT__DATA_MESSAGE__REACTION__INIT;
    Sotto__Content__DataMessage__Delete del = SOTTO__CONTENT__DATA_MESSAGE__DELETE__INIT;
    Sotto__Content__EditMessage ed = SOTTO__CONTENT__EDIT_MESSAGE__INIT;
    Sotto__Content__ReceiptMessage rc = SOTTO__CONTENT__RECEIPT_MESSAGE__INIT;
    Sotto__Content__TypingMessage ty = SOTTO__CONTENT__TYPING_MESSAGE__INIT;
    Sotto__Content__AttachmentPointer ap, lt, *aps[1] = {&ap};
    uint64_t ts[3];
    char qtext[201], body[MAX_TEXT + 1];
    size_t n;

    c.timestamp = 1796000000000ull + rnd() % 100000000000ull;
    dm.profile_key.data = profile_key;
    dm.profile_key.len = sizeof profile_key;
    if (kind == K_GROUP) { /* a text with its group context */
        gc.id.data = group_id;
        gc.id.len = sizeof group_id;
        gc.type = SOTTO__CONTENT__GROUP_CONTEXT__TYPE__DELIVER;
        gc.revision = 1 + rnd() % 40;
        dm.group = &gc;
        kind = K_TEXT;
    }
    switch (kind) {
    case K_TEXT:
        n = rnd() % 100 == 0 ? MAX_TEXT : text_len();
        memcpy(body, text(n), n + 1);
        dm.body = body;
        if (n == MAX_TEXT) {
            pointer(&lt, 2048 + rnd() % 20000, "text/x-sotto-long-text", "");
            dm.long_text = &lt;
        }
        c.data = &dm;
        break;
    case K_REPLY:
        n = text_len();
        memcpy(body, text(n), n + 1);
        dm.body = body;
        n = text_len();
        n = n > 200 ? 200 : n;
        memcpy(qtext, text(n), n + 1);
        q.id = c.timestamp - rnd() % 3600000;
        q.author = "alice_example";
        q.text = qtext;
        dm.quote = &q;
        c.data = &dm;
        break;
    case K_ATTACH:
        pointer(&ap, 300000, "image/jpeg", rnd() % 2 ? "IMG_20261207_141502.jpg" : "");
        dm.attachments = aps;
        dm.n_attachments = 1;
        if (rnd() % 10 < 3) {
            n = text_len();
            memcpy(body, text(n), n + 1);
            dm.body = body;
        }
        c.data = &dm;
        break;
    case K_REACTION:
        re.emoji = "\xf0\x9f\x91\x8d"; /* thumbs up */
        re.target_author = "bob_example";
        re.target_timestamp = c.timestamp - rnd() % 3600000;
        dm.reaction = &re;
        c.data = &dm;
        break;
    case K_EDIT:
        if (rnd() % 2) {
            n = text_len();
            memcpy(body, text(n), n + 1);
            edm.body = body;
            ed.target_timestamp = c.timestamp - rnd() % 3600000;
            ed.data = &edm;
            c.edit = &ed;
        } else {
            del.target_timestamp = c.timestamp - rnd() % 3600000;
            dm.delete_ = &del;
            c.data = &dm;
        }
        break;
    case K_RECEIPT:
        rc.type = rnd() % 2 ? SOTTO__CONTENT__RECEIPT_MESSAGE__TYPE__READ
                            : SOTTO__CONTENT__RECEIPT_MESSAGE__TYPE__DELIVERY;
        rc.n_timestamps = 1 + rnd() % 3;
        for (size_t i = 0; i < rc.n_timestamps; i++)
            ts[i] = c.timestamp - rnd() % 600000;
        rc.timestamps = ts;
        c.receipt = &rc;
        break;
    default:
        ty.action = rnd() % 2 ? SOTTO__CONTENT__TYPING_MESSAGE__ACTION__STARTED
                              : SOTTO__CONTENT__TYPING_MESSAGE__ACTION__STOPPED;
        ty.timestamp = c.timestamp;
        c.typing = &ty;
        break;
    }
    if (rnd() % 100 < 3) {
        c.kt_head.data = kt_head;
        c.kt_head.len = sizeof kt_head;
    }
    n = sotto__content__content__get_packed_size(&c);
    if (n > cap) {
        fprintf(stderr, "padding_bench: content of %zu bytes over %zu\n", n, cap);
        exit(1);
    }
    return sotto__content__content__pack(&c, out);
}

/* ------------------------------------------------------------ schemes */

static uint64_t unpadded(uint64_t len)
{
    return len;
}

static uint64_t block160(uint64_t len)
{
    return (len + 1 + 159) / 160 * 160;
}

static uint64_t content_buckets(uint64_t len)
{
    return sc_pad_size((size_t)len);
}

/* For comparison only: the same buckets with nothing below 320. */
static uint64_t buckets_min320(uint64_t len)
{
    uint64_t b = sc_pad_size((size_t)len);
    return b < 320 ? 320 : b;
}

static uint64_t cbc_blob(uint64_t padded)
{
    return SOTTO_ATTACHMENT_IV_BYTES + (padded / 16 + 1) * 16 + SOTTO_ATTACHMENT_MAC_BYTES;
}

static uint64_t att_none(uint64_t size)
{
    return cbc_blob(size);
}

static uint64_t att_signal(uint64_t size)
{
    return sotto_attachment_blob_size(size);
}

/* Padme (Nikitin et al., "Reducing Metadata Leakage from Encrypted Files
 * and Communication with PURBs", PETS 2019): keep the top
 * floor(log2(E)) + 1 bits of the length, E = floor(log2(L)). */
static uint64_t padme(uint64_t l)
{
    unsigned e, s, low;
    uint64_t mask;

    if (l < 2)
        return l;
    e = 63u - (unsigned)__builtin_clzll(l);
    s = 32u - (unsigned)__builtin_clz(e); /* floor(log2(e)) + 1 */
    low = e - s;
    mask = (1ull << low) - 1;
    return (l + mask) & ~mask;
}

static uint64_t att_padme(uint64_t size)
{
    return cbc_blob(padme(size));
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct figures {
    uint64_t in, out;
    size_t distinct;
    double largest_class; /* share of items in the most common size */
    double bits;          /* Shannon entropy of the sizes: what a size tells on average */
} figures;

static figures measure(const uint64_t *len, size_t n, uint64_t (*scheme)(uint64_t))
{
    figures f = {0, 0, 0, 0, 0};
    uint64_t *o = malloc(n * sizeof *o);
    size_t run = 0, best = 0;

    if (o == NULL) {
        fprintf(stderr, "padding_bench: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++) {
        o[i] = scheme(len[i]);
        f.in += len[i];
        f.out += o[i];
    }
    qsort(o, n, sizeof *o, cmp_u64);
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || o[i] != o[i - 1]) {
            f.distinct++;
            run = 0;
        }
        if (++run > best)
            best = run;
        if (i + 1 == n || o[i + 1] != o[i]) { /* end of a size class */
            double p = (double)run / (double)n;
            f.bits -= p * log2(p);
        }
    }
    f.largest_class = n ? (double)best / (double)n : 0;
    free(o);
    return f;
}

static void line(const char *what, const char *scheme, size_t n, figures f)
{
    printf("bench padding_%s scheme=%s n=%zu bytes_before=%llu bytes_after=%llu "
           "overhead_pct=%.1f mean_before=%.0f mean_after=%.0f distinct_sizes=%zu "
           "largest_size_class_pct=%.1f size_entropy_bits=%.2f\n",
           what, scheme, n, (unsigned long long)f.in, (unsigned long long)f.out,
           100.0 * (double)(f.out - f.in) / (double)f.in, (double)f.in / (double)n,
           (double)f.out / (double)n, f.distinct, 100.0 * f.largest_class, f.bits);
}

int main(void)
{
    static uint8_t buf[8192];
    static uint64_t clen[N_CONTENT], alen[N_ATTACH];
    uint64_t kin[K_N] = {0}, kold[K_N] = {0}, knew[K_N] = {0};
    size_t kcount[K_N] = {0};
    figures old_f, new_f, none_f, sig_f, padme_f, unp_f;

    for (size_t i = 0; i < sizeof profile_key; i++)
        profile_key[i] = (uint8_t)rnd();
    for (size_t i = 0; i < sizeof group_id; i++)
        group_id[i] = (uint8_t)rnd();
    for (size_t i = 0; i < sizeof kt_head; i++)
        kt_head[i] = (uint8_t)rnd();
    for (size_t i = 0; i < sizeof att_key; i++)
        att_key[i] = (uint8_t)rnd();
    for (size_t i = 0; i < sizeof att_digest; i++)
        att_digest[i] = (uint8_t)rnd();

    for (size_t i = 0; i < N_CONTENT; i++) {
        int k = pick_kind();
        clen[i] = make_content(k, buf, sizeof buf);
        kcount[k]++;
        kin[k] += clen[i];
        kold[k] += block160(clen[i]);
        knew[k] += content_buckets(clen[i]);
    }
    for (size_t i = 0; i < N_ATTACH; i++) {
        int r = (int)(rnd() % 100);
        double s = r < 60   ? lognormal(300e3, 0.6)
                   : r < 75 ? lognormal(60e3, 0.7)
                   : r < 90 ? lognormal(200e3, 1.2)
                            : lognormal(8e6, 0.8);
        if (s < 1)
            s = 1;
        if (s > 100.0 * 1048576)
            s = 100.0 * 1048576;
        alen[i] = (uint64_t)s;
    }

    old_f = measure(clen, N_CONTENT, block160);
    new_f = measure(clen, N_CONTENT, content_buckets);
    line("content", "block160", N_CONTENT, old_f);
    line("content", "buckets", N_CONTENT, new_f);
    unp_f = measure(clen, N_CONTENT, unpadded); /* how many sizes there are to hide */
    line("content", "buckets_min320", N_CONTENT, measure(clen, N_CONTENT, buckets_min320));
    {
        /* the tail: contents over 480 bytes (long texts, captions, syncs),
         * where the two schemes differ */
        static uint64_t tail[N_CONTENT];
        size_t nt = 0;
        for (size_t i = 0; i < N_CONTENT; i++)
            if (clen[i] > 480)
                tail[nt++] = clen[i];
        if (nt > 0) {
            line("content_over_480", "block160", nt, measure(tail, nt, block160));
            line("content_over_480", "buckets", nt, measure(tail, nt, content_buckets));
        }
        /* a long-text sweep: every length 481..SC_PAD_BUCKET_MAX - 1 once */
        {
            size_t ns = SC_PAD_BUCKET_MAX - 1 - 481;
            uint64_t *sweep = malloc(ns * sizeof *sweep);
            if (sweep == NULL)
                return 1;
            for (size_t i = 0; i < ns; i++)
                sweep[i] = 481 + i;
            line("content_sweep_481_122879", "block160", ns, measure(sweep, ns, block160));
            line("content_sweep_481_122879", "buckets", ns, measure(sweep, ns, content_buckets));
            free(sweep);
        }
    }
    none_f = measure(alen, N_ATTACH, att_none);
    sig_f = measure(alen, N_ATTACH, att_signal);
    padme_f = measure(alen, N_ATTACH, att_padme);
    line("attachment", "none", N_ATTACH, none_f);
    line("attachment", "signal_1.05", N_ATTACH, sig_f);
    line("attachment", "padme", N_ATTACH, padme_f);

    printf("\nPadding on a synthetic mix (seeded; mix in bench/padding_bench.c and "
           "docs/bench.md)\n");
    printf("%-12s %6s %10s %12s %12s\n", "content", "share", "mean bytes", "160-blocks", "buckets");
    for (int k = 0; k < K_N; k++)
        if (kcount[k])
            printf("%-12s %5.1f%% %10.0f %12.0f %12.0f\n", kind_name[k],
                   100.0 * (double)kcount[k] / N_CONTENT, (double)kin[k] / (double)kcount[k],
                   (double)kold[k] / (double)kcount[k], (double)knew[k] / (double)kcount[k]);
    printf("%-12s %6s %10.0f %12.0f %12.0f\n", "all", "100%", (double)old_f.in / N_CONTENT,
           (double)old_f.out / N_CONTENT, (double)new_f.out / N_CONTENT);
    printf("%-12s %6s %10s %11.1f%% %11.1f%%\n", "overhead", "", "",
           100.0 * (double)(old_f.out - old_f.in) / (double)old_f.in,
           100.0 * (double)(new_f.out - new_f.in) / (double)new_f.in);
    printf("%-12s %6s %10zu %12zu %12zu\n", "sizes seen", "", unp_f.distinct, old_f.distinct,
           new_f.distinct);
    printf("%-12s %6s %10.2f %12.2f %12.2f\n", "size bits", "", unp_f.bits, old_f.bits, new_f.bits);
    {
        /* every size either scheme can produce for a content under the
         * server's default 128 KiB ciphertext cap */
        size_t n_old = 0, n_new = 0;
        for (uint64_t l = 0; l + 1 <= 131072; l++) {
            if (l == 0 || block160(l) != block160(l - 1))
                n_old++;
            if (l + 1 <= SC_PAD_BUCKET_MAX &&
                (l == 0 || content_buckets(l) != content_buckets(l - 1)))
                n_new++;
        }
        printf("%-12s %6s %10s %12zu %12zu\n", "sizes <128K", "", "", n_old, n_new);
    }
    printf("\n%-12s %14s %12s %15s %10s\n", "attachments", "blob MiB", "overhead", "distinct sizes",
           "size bits");
    printf("%-12s %14.1f %11.2f%% %15zu %10.2f\n", "unpadded", (double)none_f.out / 1048576.0, 0.0,
           none_f.distinct, none_f.bits);
    printf("%-12s %14.1f %11.2f%% %15zu %10.2f\n", "signal 1.05", (double)sig_f.out / 1048576.0,
           100.0 * (double)(sig_f.out - none_f.out) / (double)none_f.out, sig_f.distinct,
           sig_f.bits);
    printf("%-12s %14.1f %11.2f%% %15zu %10.2f\n", "padme", (double)padme_f.out / 1048576.0,
           100.0 * (double)(padme_f.out - none_f.out) / (double)none_f.out, padme_f.distinct,
           padme_f.bits);
    return 0;
}
