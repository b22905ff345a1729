/*
 * Fuzz target: the payload of an account backup (proto/backup.proto) as the
 * client parses and imports it (client/core/backup.c).
 * Input: a payload. The harness owns a recovery code and seals the input
 * with cheap Argon2id bounds (libsotto's internal sotto_backup_seal_with /
 * sotto_backup_open_with), so every input gets past the AEAD exactly as a
 * file made with that code would; then sc_backup_payload_parse() and, when
 * it accepts, sc_backup_payload_import() into a temporary local store
 * inside a transaction that is rolled back afterwards.
 * Invariants (abort on violation):
 *  - sealing and opening give back the input; another code does not open it;
 *  - parse returns only SC_OK, SC_E_USAGE or SC_E_INTERNAL, and *out NULL
 *    on error;
 *  - an accepted payload imports (SC_OK): the store then holds exactly its
 *    contacts and groups, and exporting the store again
 *    (sc_backup_payload_export) gives a payload that parses to the same
 *    account key, contacts (pinned key, accepted list, verified flag),
 *    groups (name, active, member set) and history rows (in order, byte
 *    for byte);
 *  - after the rollback the store is empty again.
 * Seeds: SOTTO_FUZZ_WRITE_SEEDS=dir writes them (they need a device list
 * signed by a real account key, so they are built here).
 */
#define _GNU_SOURCE 1
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "backup/backup_internal.h"
#include "backup_payload.h"
#include "internal.h"
#include "sotto/device_list.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* an invariant failed: say where, then crash */
#define FAIL()                                                                                     \
    do {                                                                                           \
        fprintf(stderr, "fuzz_backup_payload.c:%d: invariant violated\n", __LINE__);               \
        abort();                                                                                   \
    } while (0)

#define FUZZ_MAX_INPUT 8192

static const sotto_backup_limits LIMITS = {{1, 8192}, {2, 64 * 1024}};
static sotto_recovery_code g_code, g_other;
static sc_client *g_c;
static char g_dir[256];

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static void cleanup(void)
{
    sc_close(g_c);
    g_c = NULL;
    if (g_dir[0])
        (void)nftw(g_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- seeds ---- */

static void write_file(const char *dir, const char *name, const uint8_t *p, size_t n)
{
    char path[1024];
    FILE *f;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "wb");
    if (f == NULL || fwrite(p, 1, n, f) != n)
        FAIL();
    fclose(f);
}

static void write_seed(const char *dir, const char *name, Sotto__Backup__Backup *b)
{
    size_t n = sotto__backup__backup__get_packed_size(b);
    uint8_t *p = malloc(n + 1);

    if (p == NULL)
        FAIL();
    sotto__backup__backup__pack(b, p);
    write_file(dir, name, p, n);
    free(p);
}

static void write_seeds(void)
{
    const char *dir = getenv("SOTTO_FUZZ_WRITE_SEEDS");
    Sotto__Backup__Backup b = SOTTO__BACKUP__BACKUP__INIT;
    Sotto__Backup__Contact k = SOTTO__BACKUP__CONTACT__INIT, k2 = SOTTO__BACKUP__CONTACT__INIT;
    Sotto__Backup__Contact *ks[2] = {&k, &k2};
    Sotto__Backup__Group g = SOTTO__BACKUP__GROUP__INIT, *gs[1] = {&g};
    Sotto__Backup__HistoryRow h[2] = {SOTTO__BACKUP__HISTORY_ROW__INIT,
                                      SOTTO__BACKUP__HISTORY_ROW__INIT};
    Sotto__Backup__HistoryRow *hs[2] = {&h[0], &h[1]};
    char *members[2] = {"alice", "bob"};
    uint8_t priv[32], gid[16], list[SOTTO_DEVICE_LIST_MAX_BYTES], auth_sk[64];
    sotto_key_pair account, id;
    sotto_device_list l;
    size_t list_len = 0;

    if (dir == NULL)
        return;
    memset(priv, 0x41, sizeof priv);
    memset(gid, 0x17, sizeof gid);
    /* alice's account key and a list v2 with one device */
    if (sotto_identity_key_pair_generate(&account) != SOTTO_OK ||
        sotto_identity_key_pair_generate(&id) != SOTTO_OK)
        FAIL();
    memset(&l, 0, sizeof l);
    snprintf(l.username, sizeof l.username, "alice");
    l.version = 2;
    l.timestamp_ms = 1765065600000ull;
    l.n_devices = 1;
    l.devices[0].device_id = 1;
    l.devices[0].registration_id = 77;
    l.devices[0].identity_key = id.pub;
    crypto_sign_keypair(l.devices[0].auth_key, auth_sk);
    if (sotto_device_list_sign(&l, &account, list, sizeof list, &list_len) != SOTTO_OK)
        FAIL();

    b.format = 1;
    b.username = "bob";
    b.account_private_key.data = priv;
    b.account_private_key.len = sizeof priv;
    b.server_url = "https://127.0.0.1:4433";
    b.pin = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    write_seed(dir, "minimal.bin", &b);

    k.name = "alice";
    k.account_key.data = account.pub.bytes;
    k.account_key.len = 33;
    k.device_list.data = list;
    k.device_list.len = list_len;
    k.list_version = 2;
    k.verified = true;
    k2.name = "carol";
    b.contacts = ks;
    b.n_contacts = 2;
    g.id.data = gid;
    g.id.len = sizeof gid;
    g.name = "team";
    g.members = members;
    g.n_members = 2;
    g.active = true;
    b.groups = gs;
    b.n_groups = 1;
    b.own_list_version = 3;
    write_seed(dir, "contacts_groups.bin", &b);

    h[0].conv_kind = "contact";
    h[0].conv = "alice";
    h[0].sender = "alice";
    h[0].sender_device = 1;
    h[0].timestamp = 1765065600001ull;
    h[0].server_ts = 1765065600002ull;
    h[0].kind = "text";
    h[0].body.data = (uint8_t *)"hello bob";
    h[0].body.len = 9;
    h[1].conv_kind = "group";
    h[1].conv = "17171717171717171717171717171717";
    h[1].direction = 1;
    h[1].sender = "bob";
    h[1].kind = "notice";
    h[1].body.data = (uint8_t *)"x";
    h[1].body.len = 1;
    h[1].extra = "{\"notice\":\"device_linked\"}";
    h[1].has_extra = true;
    b.history = hs;
    b.n_history = 2;
    b.pin = "";
    b.ca_pem.data = (uint8_t *)"-----BEGIN CERTIFICATE-----\n";
    b.ca_pem.len = 28;
    write_seed(dir, "history.bin", &b);
    sotto_key_pair_wipe(&account);
    sotto_key_pair_wipe(&id);
}

static void setup_once(void)
{
    sc_options o;
    char err[512];

    if (g_c != NULL)
        return;
    if (sotto_init() != SOTTO_OK ||
        sotto_recovery_code_parse(&g_code, "12345-12345-12345-12345-12345-12345") != SOTTO_OK ||
        sotto_recovery_code_parse(&g_other, "12345-12345-12345-12345-12345-12346") != SOTTO_OK)
        FAIL();
    snprintf(g_dir, sizeof g_dir, "%s/sotto-fuzz-backup.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(g_dir) == NULL)
        FAIL();
    memset(&o, 0, sizeof o);
    o.account = "fuzz";
    o.data_home = g_dir;
    if (sc_open(&g_c, &o, err, sizeof err) != SC_OK) {
        fprintf(stderr, "sc_open: %s\n", err);
        FAIL();
    }
    atexit(cleanup);
    write_seeds();
}

/* ---- the round trip ---- */

static const Sotto__Backup__Contact *find_contact(const Sotto__Backup__Backup *b, const char *n)
{
    for (size_t i = 0; i < b->n_contacts; i++)
        if (strcmp(b->contacts[i]->name, n) == 0)
            return b->contacts[i];
    return NULL;
}

static const Sotto__Backup__Group *find_group(const Sotto__Backup__Backup *b, const uint8_t *id)
{
    for (size_t i = 0; i < b->n_groups; i++)
        if (memcmp(b->groups[i]->id.data, id, 16) == 0)
            return b->groups[i];
    return NULL;
}

static bool has_str(char **v, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i], s) == 0)
            return true;
    return false;
}

static bool same_bytes(const ProtobufCBinaryData *a, const ProtobufCBinaryData *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

/* The store holds `in` (imported): it exports to the same content. */
static void check_round_trip(const Sotto__Backup__Backup *in)
{
    sc_contact_info *cl = NULL;
    uint8_t *ids = NULL, *out = NULL;
    size_t ncl = 0, nids = 0, len = 0;
    Sotto__Backup__Backup *again = NULL;
    sotto_key_pair k1, k2;
    char err[256];

    if (sc_contact_list(g_c, &cl, &ncl) != SC_OK || ncl != in->n_contacts)
        FAIL();
    sc_contact_list_free(cl, ncl);
    if (sc_group_ids(g_c, &ids, &nids) != SC_OK || nids != in->n_groups)
        FAIL();
    free(ids);
    /* export as the registered primary would */
    g_c->username = in->username;
    g_c->server_url = in->server_url;
    g_c->pin_hex = in->pin;
    if (sc_backup_payload_export(g_c, true, &out, &len, NULL) != SC_OK ||
        sc_backup_payload_parse(out, len, &again, err, sizeof err) != SC_OK)
        FAIL();
    g_c->username = g_c->server_url = g_c->pin_hex = NULL;
    /* the same account key (the stored private key may be the clamped form) */
    if (sotto_key_pair_from_private(&k1, in->account_private_key.data) != SOTTO_OK ||
        again->account_private_key.len != 32 ||
        sotto_key_pair_from_private(&k2, again->account_private_key.data) != SOTTO_OK ||
        !sotto_public_key_equal(&k1.pub, &k2.pub) || strcmp(again->username, in->username) != 0 ||
        strcmp(again->server_url, in->server_url) != 0 || again->n_contacts != in->n_contacts ||
        again->n_groups != in->n_groups || again->n_history != in->n_history)
        FAIL();
    sotto_key_pair_wipe(&k1);
    sotto_key_pair_wipe(&k2);
    for (size_t i = 0; i < in->n_contacts; i++) {
        const Sotto__Backup__Contact *a = in->contacts[i], *b = find_contact(again, a->name);
        if (b == NULL || b->verified != a->verified ||
            !same_bytes(&a->account_key, &b->account_key) ||
            !same_bytes(&a->device_list, &b->device_list) || a->list_version != b->list_version)
            FAIL();
    }
    for (size_t i = 0; i < in->n_groups; i++) {
        const Sotto__Backup__Group *a = in->groups[i], *b = find_group(again, a->id.data);
        if (b == NULL || b->active != a->active || strcmp(a->name, b->name) != 0)
            FAIL();
        for (size_t m = 0; m < a->n_members; m++)
            if (!has_str(b->members, b->n_members, a->members[m]))
                FAIL();
        for (size_t m = 0; m < b->n_members; m++)
            if (!has_str(a->members, a->n_members, b->members[m]))
                FAIL();
    }
    for (size_t i = 0; i < in->n_history; i++) {
        const Sotto__Backup__HistoryRow *a = in->history[i], *b = again->history[i];
        if (strcmp(a->conv_kind, b->conv_kind) != 0 || strcmp(a->conv, b->conv) != 0 ||
            strcmp(a->sender, b->sender) != 0 || strcmp(a->kind, b->kind) != 0 ||
            a->direction != b->direction || a->sender_device != b->sender_device ||
            a->timestamp != b->timestamp || a->server_ts != b->server_ts ||
            !same_bytes(&a->body, &b->body) || a->has_extra != b->has_extra ||
            (a->has_extra && strcmp(a->extra, b->extra) != 0))
            FAIL();
    }
    sc_backup_payload_free(again);
    sodium_memzero(out, len);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t sealed[FUZZ_MAX_INPUT + SOTTO_BACKUP_OVERHEAD], opened[FUZZ_MAX_INPUT];
    static const uint8_t salt[16] = {1}, nonce[24] = {2};
    const sotto_backup_params p = {1, 8192};
    Sotto__Backup__Backup *b = (Sotto__Backup__Backup *)1;
    size_t n = 0, m = 0;
    char err[256];
    bool empty = false;
    int rc;

    setup_once();
    if (size > FUZZ_MAX_INPUT)
        return 0;
    /* past the AEAD, as a file made with the harness's code */
    if (sotto_backup_seal_with(sealed, sizeof sealed, &n, data, size, &g_code, &p, salt, nonce,
                               &LIMITS) != SOTTO_OK ||
        sotto_backup_open_with(opened, sizeof opened, &m, sealed, n, &g_code, &LIMITS) !=
            SOTTO_OK ||
        m != size || (size && memcmp(opened, data, size) != 0))
        FAIL();
    if (sotto_backup_open_with(opened + 0, sizeof opened, &m, sealed, n, &g_other, &LIMITS) !=
            SOTTO_ERR_BACKUP_WRONG_CODE ||
        m != 0)
        FAIL();
    rc = sc_backup_payload_parse(data, size, &b, err, sizeof err);
    if (rc != SC_OK) {
        if ((rc != SC_E_USAGE && rc != SC_E_INTERNAL) || b != NULL)
            FAIL();
        return 0;
    }
    if (b == NULL || sc_db_begin(g_c) != SC_OK)
        FAIL();
    if (sc_backup_payload_import(g_c, b, NULL) != SC_OK) {
        fprintf(stderr, "import refused a parsed payload: %s\n", sc_errmsg(g_c));
        FAIL();
    }
    check_round_trip(b);
    sc_db_rollback(g_c);
    if (sc_store_is_empty(g_c, &empty) != SC_OK || !empty)
        FAIL();
    sc_backup_payload_free(b);
    return 0;
}
