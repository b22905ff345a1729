/*
 * Fuzz target: the JSON-RPC request layer of `sotto daemon`
 * (client/daemon/rpc.c) and, through it, the CLI's command handlers
 * (client/cli/main.c): the input is split into lines and each line goes
 * to dm_handle_line() exactly as a client's bytes on the socket do.
 *
 * The daemon runs in sync mode (calls run on this thread) over one
 * offline account: registered as far as the local store says (username,
 * device id), with a server URL nobody listens on (127.0.0.1:1), so every
 * method reaches its handler and a network call fails at once (exit 3).
 *
 * Invariants (abort on violation):
 *  - nothing crashes or reads out of bounds (ASan/UBSan in the fuzz build);
 *  - every output line is one JSON value: a response object
 *    {"jsonrpc":"2.0", "id", exactly one of result/error}, a batch array
 *    of those, or a "receive" notification;
 *  - an error carries an integer code and a string message.
 *
 * Inputs that name backups are skipped (backupCreate would write a file
 * wherever the input says, and run Argon2id for a second).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "daemon.h"
#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static dm_daemon *g_d;

static void setup(void)
{
    /* static: the account's data directory for the whole run */
    static char tmpl[] = "/tmp/sotto-fuzz-rpc.XXXXXX";
    char err[256];
    const char *home = mkdtemp(tmpl);
    sc_options o;
    sc_client *c = NULL;

    if (home == NULL)
        abort();
    memset(&o, 0, sizeof o);
    o.account = "fz";
    o.data_home = home;
    if (sc_open(&c, &o, err, sizeof err) != SC_OK)
        abort();
    if (sc_cfg_set_text(c, "username", "fuzzer") != SC_OK ||
        sc_cfg_set_u64(c, "device_id", 1) != SC_OK ||
        sc_cfg_set_text(c, "server_url", "https://127.0.0.1:1") != SC_OK ||
        sc_cfg_set_text(
            c, "pin", "0000000000000000000000000000000000000000000000000000000000000000") != SC_OK)
        abort();
    sc_close(c);
    c = NULL;
    o.must_exist = true;
    if (sc_open(&c, &o, err, sizeof err) != SC_OK || sc_username(c) == NULL)
        abort();
    g_d = dm_new(&c, 1, true);
    if (g_d == NULL)
        abort();
}

static bool names_backup(json_t *v)
{
    const char *k;
    json_t *x;
    size_t i;

    if (json_is_string(v))
        return strstr(json_string_value(v), "backup") != NULL;
    if (json_is_object(v)) {
        json_object_foreach(v, k, x)
        {
            if (strstr(k, "backup") || names_backup(x))
                return true;
        }
    }
    if (json_is_array(v)) {
        json_array_foreach(v, i, x)
        {
            if (names_backup(x))
                return true;
        }
    }
    return false;
}

static void check_response(json_t *r)
{
    json_t *e;
    if (!json_is_object(r))
        abort();
    if (json_object_get(r, "method")) { /* a notification (events) */
        if (json_object_get(r, "id"))
            abort();
        return;
    }
    if (!json_is_string(json_object_get(r, "jsonrpc")) ||
        strcmp(json_string_value(json_object_get(r, "jsonrpc")), "2.0") != 0)
        abort();
    if (json_object_get(r, "id") == NULL)
        abort();
    e = json_object_get(r, "error");
    if ((e != NULL) == (json_object_get(r, "result") != NULL))
        abort();
    if (e && (!json_is_integer(json_object_get(e, "code")) ||
              !json_is_string(json_object_get(e, "message"))))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t start = 0;
    uint64_t conn;
    char *text;

    if (g_d == NULL)
        setup();
    for (size_t i = 0; i <= size; i++) {
        if (i < size && data[i] != '\n')
            continue;
        json_t *pre = json_loadb((const char *)data + start, i - start, JSON_DECODE_ANY, NULL);
        bool skip = pre && names_backup(pre);
        json_decref(pre);
        if (!skip)
            dm_handle_line(g_d, 1, (const char *)data + start, i - start);
        start = i + 1;
    }
    while (dm_take_output(g_d, &conn, &text)) {
        json_t *r = json_loads(text, JSON_DECODE_ANY, NULL);
        size_t k;
        json_t *x;
        if (r == NULL || conn != 1)
            abort();
        if (json_is_array(r)) {
            if (json_array_size(r) == 0)
                abort();
            json_array_foreach(r, k, x) check_response(x);
        } else {
            check_response(r);
        }
        json_decref(r);
        free(text);
    }
    dm_conn_closed(g_d, 1);
    return 0;
}
