/*
 * client/cli/main.c -- the `sotto` command line client (docs/cli.md).
 *
 *   sotto [--server URL] [--pin HEX | --ca FILE] [--account NAME] [--json]
 *         COMMAND [ARGS]
 *
 * Output: human text by default; with --json one JSON object per line
 * (JSON Lines) with the stable field names documented in docs/cli.md.
 * Errors go to stderr (and, with --json, also as a {"type":"error"} line on
 * stdout). Exit codes are listed in docs/cli.md and in exit_code() below.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <qrencode.h>
#include <sodium.h>

#include "sotto_client.h"

enum {
    EXIT_OK = 0,
    EXIT_ERROR = 1,     /* internal or local store failure */
    EXIT_USAGE = 2,     /* bad command line, bad name or text */
    EXIT_NETWORK = 3,   /* server unreachable, TLS/pin failure, timeout */
    EXIT_REFUSED = 4,   /* the server refused (taken, auth, rate limit...) */
    EXIT_UNTRUSTED = 5, /* safety number changed: run `sotto trust CONTACT` */
    EXIT_NOT_FOUND = 6, /* unknown user, contact or group */
    EXIT_INTEGRITY = 7, /* attachment failed verification */
    EXIT_STATE = 8,     /* not registered yet / already registered / not a member */
};

static struct {
    bool json;
    bool tty; /* stdout is a terminal: neutralise control characters */
    bool no_qr;
    const char *account;
} g;

static volatile int g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static int exit_code(int rc)
{
    switch (rc) {
    case SC_OK:
        return EXIT_OK;
    case SC_E_USAGE:
        return EXIT_USAGE;
    case SC_E_NETWORK:
        return EXIT_NETWORK;
    case SC_E_SERVER:
        return EXIT_REFUSED;
    case SC_E_UNTRUSTED:
        return EXIT_UNTRUSTED;
    case SC_E_NOT_FOUND:
        return EXIT_NOT_FOUND;
    case SC_E_INTEGRITY:
        return EXIT_INTEGRITY;
    case SC_E_STATE:
        return EXIT_STATE;
    default:
        return EXIT_ERROR;
    }
}

static const char *error_name(int rc)
{
    switch (rc) {
    case SC_E_USAGE:
        return "usage";
    case SC_E_NETWORK:
        return "network";
    case SC_E_SERVER:
        return "refused";
    case SC_E_UNTRUSTED:
        return "untrusted_identity";
    case SC_E_NOT_FOUND:
        return "not_found";
    case SC_E_INTEGRITY:
        return "integrity";
    case SC_E_STATE:
        return "state";
    case SC_E_STORE:
        return "store";
    default:
        return "internal";
    }
}

static void json_line(json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (s) {
        fputs(s, stdout);
        fputc('\n', stdout);
        fflush(stdout);
        free(s);
    }
    json_decref(o);
}

static int report(int rc, const char *msg)
{
    if (rc == SC_OK)
        return EXIT_OK;
    fprintf(stderr, "sotto: %s\n", msg && msg[0] ? msg : "error");
    if (g.json) {
        json_t *o = json_object();
        json_object_set_new(o, "type", json_string("error"));
        json_object_set_new(o, "code", json_string(error_name(rc)));
        json_object_set_new(o, "exit", json_integer(exit_code(rc)));
        json_object_set_new(o, "message", json_string(msg ? msg : ""));
        json_line(o);
    }
    return exit_code(rc);
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return report(SC_E_USAGE, buf);
}

/* ------------------------------------------------------------ help */

static const char main_help[] =
    "usage: sotto [GLOBAL OPTIONS] COMMAND [ARGS]\n"
    "\n"
    "Global options:\n"
    "  --account NAME   local account (also $SOTTO_ACCOUNT); required\n"
    "  --server URL     server, https://HOST:PORT (stored at register)\n"
    "  --pin HEX        SHA-256 of the server certificate (64 hex; stored)\n"
    "  --ca FILE        trust the server through this CA file instead (stored)\n"
    "  --data-dir DIR   data home instead of $XDG_DATA_HOME or ~/.local/share\n"
    "  --json           print JSON Lines (one object per line)\n"
    "  --no-progress    no progress bar for large transfers\n"
    "  -h, --help       this help; `sotto COMMAND --help` for a command\n"
    "  --version        print the version\n"
    "\n"
    "Commands:\n"
    "  register [--invite CODE] [USERNAME]   create the account on the server\n"
    "  devices                               list this account's devices\n"
    "  link-request                          (new device) print a link code\n"
    "  device-add CODE                       (existing device) add the new device\n"
    "  link-finish USERNAME DEVICE_ID        (new device) log in as that device\n"
    "  device-remove DEVICE_ID               remove a device of this account\n"
    "  send CONTACT [TEXT | -]               send a text (- or none: read stdin)\n"
    "  send --file PATH [--text TEXT] CONTACT   send a file\n"
    "  send --group GROUP [TEXT | -]         send a text to a group\n"
    "  receive                               fetch and print waiting messages, exit\n"
    "  listen                                stay connected, print messages as they arrive\n"
    "  contacts                              list contacts\n"
    "  trust CONTACT                         accept a contact's changed safety number\n"
    "  safety-number [--no-qr] CONTACT       print the safety number and its QR code\n"
    "  group create|add|remove|leave|rename|list|send ...   groups (see group --help)\n"
    "  history [--limit N] CONTACT | --group GROUP   print a stored conversation\n"
    "  flush                                 send messages still queued\n"
    "  help [COMMAND]                        help of one command\n"
    "\n"
    "Exit codes: 0 ok, 1 error, 2 usage, 3 network, 4 refused by server,\n"
    "5 safety number changed, 6 not found, 7 attachment integrity, 8 wrong state.\n";

static const struct {
    const char *cmd;
    const char *help;
} cmd_help[] = {
    {"register",
     "usage: sotto --account NAME --server URL (--pin HEX | --ca FILE) register\n"
     "             [--invite CODE] [USERNAME]\n"
     "Creates USERNAME (default: the account name; 3-32 of a-z 0-9 _ .) on the\n"
     "server with this device as device 1, uploads the identity key, a signed\n"
     "prekey and 100 one-time prekeys, and stores the server URL and pin (or CA)\n"
     "so that later commands need only --account.\n"
     "  --invite CODE   invitation code, when the server requires one\n"
     "Exit: 0, 3 network, 4 refused (name taken, bad invite), 8 already registered.\n"},
    {"devices", "usage: sotto --account NAME devices\n"
                "Lists the account's devices as the server knows them (id, created,\n"
                "last seen, whether it has keys; this device is marked).\n"},
    {"link-request",
     "usage: sotto --account NEW --server URL (--pin HEX | --ca FILE) link-request\n"
     "On a new, empty local account: creates this device's keys and prints its\n"
     "link code (138 hex chars). Give the code to `device-add` on an existing\n"
     "device, then run `link-finish` here.\n"},
    {"device-add", "usage: sotto --account NAME device-add CODE\n"
                   "On an existing device: adds the device with link CODE (from\n"
                   "`link-request`) to this account and prints its new device id.\n"},
    {"link-finish", "usage: sotto --account NEW link-finish USERNAME DEVICE_ID\n"
                    "On the new device: logs in as USERNAME's device DEVICE_ID (printed by\n"
                    "`device-add`) and uploads this device's prekeys.\n"},
    {"device-remove", "usage: sotto --account NAME device-remove DEVICE_ID\n"
                      "Removes device DEVICE_ID from this account on the server.\n"},
    {"send", "usage: sotto --account NAME send CONTACT [TEXT | -]\n"
             "       sotto --account NAME send --file PATH [--text TEXT] CONTACT\n"
             "       sotto --account NAME send --group GROUP [TEXT | -]\n"
             "Sends to every device of CONTACT (and a copy to this account's other\n"
             "devices). TEXT is UTF-8, 1 byte to 64 KiB, sent byte for byte. Without\n"
             "TEXT or with -, the text is read from stdin (one trailing newline is\n"
             "removed). A text beginning with - goes after --: send bob -- -5 degrees.\n"
             "Sending to yourself stores the note and copies it to your other devices.\n"
             "  --file PATH   send a file (encrypted, uploaded, at most 100 MiB)\n"
             "  --text TEXT   the text (caption with --file)\n"
             "  --group       the destination is a GROUP (id or unique name)\n"
             "A message that cannot be sent now stays queued (exit 3) and goes out with\n"
             "the next command that connects.\n"
             "Exit: 0, 2 usage/invalid text/unreadable file, 3 network (queued),\n"
             "4 refused, 5 safety number changed (nothing sent: see `sotto trust`),\n"
             "6 no such user or group, 8 not registered / not a member.\n"},
    {"receive",
     "usage: sotto --account NAME receive\n"
     "Connects, processes every waiting envelope (decrypt, store, then acknowledge),\n"
     "downloads and verifies attachments, prints each visible event, sends what is\n"
     "queued, and exits. Messages stored by an earlier run that was killed before\n"
     "printing them are printed first. An envelope that cannot be decrypted is\n"
     "acknowledged and shown as a notice (code undecryptable).\n"
     "Exit: 0, 3 network, 7 an attachment failed verification (not saved),\n"
     "8 this device was removed.\n"},
    {"listen", "usage: sotto --account NAME listen\n"
               "Like receive, but stays connected and prints events as they arrive;\n"
               "reconnects with backoff 1, 2, 4 ... 30 s; SIGINT/SIGTERM end it (exit 0).\n"},
    {"contacts", "usage: sotto --account NAME contacts\n"
                 "Lists contacts (everyone you exchanged messages or keys with): name,\n"
                 "number of devices, verified, and whether the safety number changed.\n"},
    {"trust", "usage: sotto --account NAME trust CONTACT\n"
              "Accepts CONTACT's current identity keys (compare the safety number\n"
              "first), marks the contact verified, drops the old sessions, and decrypts\n"
              "and prints the messages held because of the change.\n"},
    {"safety-number", "usage: sotto --account NAME safety-number [--no-qr] CONTACT\n"
                      "Prints the 60-digit safety number with CONTACT (12 groups of 5 digits)\n"
                      "and, unless --no-qr or --json, a QR code of its scannable form.\n"
                      "Compare it with CONTACT's (it is the same on both sides).\n"},
    {"group", "usage: sotto --account NAME group create NAME [MEMBER...]\n"
              "       sotto --account NAME group add GROUP MEMBER...\n"
              "       sotto --account NAME group remove GROUP MEMBER...\n"
              "       sotto --account NAME group leave GROUP\n"
              "       sotto --account NAME group rename GROUP NEWNAME\n"
              "       sotto --account NAME group list\n"
              "       sotto --account NAME group send GROUP [TEXT | -]\n"
              "       sotto --account NAME group send --file PATH [--text TEXT] GROUP\n"
              "Groups live only in their members' clients (client-side fan-out over\n"
              "pairwise sessions); the server never learns a group exists.\n"
              "  create   creates a group (you are a member) and tells the members\n"
              "  add      adds members (they receive the name and member list)\n"
              "  remove   removes members; they receive nothing sent after it\n"
              "  leave    leaves the group (it stays listed as left)\n"
              "  rename   renames it (NAME/NEWNAME: UTF-8, 1-256 bytes)\n"
              "  list     lists groups with id, name, members\n"
              "  send     sends to every member (see `sotto send --help`)\n"
              "GROUP is the group's 32-hex id or its (unique) name. Changes that cannot\n"
              "be sent now stay queued (exit 3).\n"},
    {"history", "usage: sotto --account NAME history [--limit N] CONTACT\n"
                "       sotto --account NAME history [--limit N] --group GROUP\n"
                "Prints a stored conversation, oldest first (only the last N with\n"
                "--limit). An argument that cannot be a username is taken as a group.\n"},
    {"flush", "usage: sotto --account NAME flush\n"
              "Sends the messages still in the outgoing queue (--json: how many are left).\n"},
    {"help", "usage: sotto help [COMMAND]\nPrints the help of COMMAND (or of sotto).\n"},
};

/* --help or -h among the command's options (not after "--": that is text) */
static bool want_help(int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return false;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return true;
    }
    return false;
}

static int print_help(const char *cmd)
{
    for (size_t i = 0; i < sizeof cmd_help / sizeof cmd_help[0]; i++)
        if (strcmp(cmd_help[i].cmd, cmd) == 0) {
            fputs(cmd_help[i].help, stdout);
            return EXIT_OK;
        }
    fputs(main_help, stdout);
    return EXIT_OK;
}

/* ------------------------------------------------------------ events */

static void fmt_time(uint64_t ms, char *buf, size_t cap)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, cap, "%Y-%m-%d %H:%M:%S", &tm);
}

static json_t *jstr_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

/* Writes peer-supplied text for a person. On a terminal, control
 * characters other than newline and tab (C0, DEL, C1: the bytes of escape
 * sequences a sender could use to rewrite the screen) are shown as U+FFFD;
 * everything else, and everything when stdout is not a terminal, is written
 * byte for byte. --json output is never altered. */
static void put_text(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t start = 0;

    if (s == NULL)
        return;
    if (!g.tty) {
        fwrite(s, 1, len, stdout);
        return;
    }
    for (size_t i = 0; i < len; i++) {
        size_t bad = 0;
        if ((p[i] < 0x20 && p[i] != '\n' && p[i] != '\t') || p[i] == 0x7f)
            bad = 1;
        else if (p[i] == 0xc2 && i + 1 < len && p[i + 1] >= 0x80 && p[i + 1] <= 0x9f)
            bad = 2; /* U+0080..U+009F */
        if (bad) {
            fwrite(s + start, 1, i - start, stdout);
            fputs("\xef\xbf\xbd", stdout);
            i += bad - 1;
            start = i + 1;
        }
    }
    fwrite(s + start, 1, len - start, stdout);
}

static void put_str(const char *s)
{
    if (s)
        put_text(s, strlen(s));
}

static void print_event(void *ud, const sc_event *ev)
{
    char when[32];
    (void)ud;

    if (g.json) {
        json_t *o = json_object();
        const char *type = ev->kind == SC_EV_MESSAGE ? "message"
                           : ev->kind == SC_EV_SENT  ? "outgoing"
                           : ev->kind == SC_EV_GROUP ? "group"
                                                     : "notice";
        json_object_set_new(o, "type", json_string(type));
        json_object_set_new(o, "id", json_integer(ev->id));
        json_object_set_new(o, "from", json_string(ev->sender ? ev->sender : ""));
        json_object_set_new(o, "device", json_integer(ev->sender_device));
        if (ev->kind == SC_EV_SENT)
            json_object_set_new(o, "to", jstr_or_null(ev->destination));
        json_object_set_new(o, "timestamp", json_integer((json_int_t)ev->timestamp));
        json_object_set_new(o, "server_timestamp", json_integer((json_int_t)ev->server_timestamp));
        if (ev->group_id) {
            json_t *gr = json_object();
            json_object_set_new(gr, "id", json_string(ev->group_id));
            json_object_set_new(gr, "name", jstr_or_null(ev->group_name));
            json_object_set_new(o, "group", gr);
        } else {
            json_object_set_new(o, "group", json_null());
        }
        if (ev->kind == SC_EV_NOTICE)
            json_object_set_new(o, "code", jstr_or_null(ev->notice));
        if (ev->kind == SC_EV_GROUP) {
            json_t *m = json_array();
            json_object_set_new(o, "action", jstr_or_null(ev->group_action));
            for (size_t i = 0; i < ev->n_group_members; i++)
                json_array_append_new(
                    m, json_string(ev->group_members[i] ? ev->group_members[i] : ""));
            json_object_set_new(o, "members", m);
        } else {
            json_t *arr = json_array();
            json_object_set_new(o, "body", json_stringn(ev->body, ev->body_len));
            for (size_t i = 0; i < ev->n_attachments; i++) {
                const sc_attachment_info *a = &ev->attachments[i];
                json_t *ao = json_object();
                json_object_set_new(ao, "file_name", jstr_or_null(a->file_name));
                json_object_set_new(ao, "content_type", jstr_or_null(a->content_type));
                json_object_set_new(ao, "size", json_integer((json_int_t)a->size));
                json_object_set_new(ao, "path", jstr_or_null(a->path));
                json_object_set_new(ao, "error", jstr_or_null(a->error));
                json_array_append_new(arr, ao);
            }
            json_object_set_new(o, "attachments", arr);
        }
        json_line(o);
        return;
    }
    fmt_time(ev->timestamp, when, sizeof when);
    switch (ev->kind) {
    case SC_EV_NOTICE:
        printf("[%s] ! ", when);
        put_str(ev->body);
        printf("\n");
        break;
    case SC_EV_GROUP:
        printf("[%s] %s: group \"", when, ev->sender ? ev->sender : "?");
        put_str(ev->group_name);
        printf("\" %s; members:", ev->group_action ? ev->group_action : "");
        for (size_t i = 0; i < ev->n_group_members; i++) {
            printf(" ");
            put_str(ev->group_members[i] ? ev->group_members[i] : "?");
        }
        printf("\n");
        break;
    default:
        if (ev->kind == SC_EV_SENT) {
            printf("[%s] me -> ", when);
            put_str(ev->group_id ? (ev->group_name ? ev->group_name : ev->group_id)
                                 : (ev->destination ? ev->destination : "?"));
        } else if (ev->group_id) {
            printf("[%s] %s @ ", when, ev->sender ? ev->sender : "?");
            put_str(ev->group_name ? ev->group_name : ev->group_id);
        } else {
            printf("[%s] %s", when, ev->sender ? ev->sender : "?");
        }
        printf(": ");
        put_text(ev->body, ev->body_len);
        printf("\n");
        for (size_t i = 0; i < ev->n_attachments; i++) {
            const sc_attachment_info *a = &ev->attachments[i];
            printf("  attachment: ");
            put_str(a->file_name ? a->file_name : "");
            printf(" (%llu bytes)", (unsigned long long)a->size);
            if (a->path) {
                printf(" saved to ");
                put_str(a->path);
            } else if (a->error) {
                printf(" NOT saved: %s", a->error);
            }
            printf("\n");
        }
    }
    fflush(stdout);
}

/* ------------------------------------------------------------ helpers */

static int read_stdin_text(char **out, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);

    if (buf == NULL)
        return -1;
    for (;;) {
        size_t r;
        if (n == cap) {
            char *nb;
            if (cap > SC_MAX_TEXT_BYTES + 2) {
                free(buf);
                return -2;
            }
            cap *= 2;
            nb = realloc(buf, cap);
            if (nb == NULL) {
                free(buf);
                return -1;
            }
            buf = nb;
        }
        r = fread(buf + n, 1, cap - n, stdin);
        if (r == 0)
            break;
        n += r;
    }
    if (n > 0 && buf[n - 1] == '\n')
        n--;
    *out = buf;
    *len = n;
    return 0;
}

/* ------------------------------------------------------------ commands */

static int cmd_register(sc_client *c, int argc, char **argv)
{
    const char *invite = NULL, *user = NULL;
    int rc;

    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--invite") == 0 && i + 1 < argc)
            invite = argv[++i];
        else if (argv[i][0] == '-')
            return usage_error("register: unknown option %s", argv[i]);
        else if (user == NULL)
            user = argv[i];
        else
            return usage_error("register: unexpected argument %s", argv[i]);
    }
    if (user == NULL)
        user = g.account;
    rc = sc_register(c, user, invite);
    if (rc != SC_OK)
        return report(rc, sc_errmsg(c));
    if (g.json) {
        json_t *o = json_object();
        json_object_set_new(o, "type", json_string("registered"));
        json_object_set_new(o, "account", json_string(g.account));
        json_object_set_new(o, "username", json_string(user));
        json_object_set_new(o, "device", json_integer(sc_device_id(c)));
        json_line(o);
    } else {
        printf("registered %s (device %u)\n", user, sc_device_id(c));
    }
    return EXIT_OK;
}

static void print_device(void *ud, const sc_device_info *d)
{
    (void)ud;
    if (g.json) {
        json_t *o = json_object();
        json_object_set_new(o, "type", json_string("device"));
        json_object_set_new(o, "device", json_integer(d->device_id));
        json_object_set_new(o, "created", json_string(d->created ? d->created : ""));
        json_object_set_new(o, "last_seen", json_string(d->last_seen ? d->last_seen : ""));
        json_object_set_new(o, "has_keys", json_boolean(d->has_keys));
        json_object_set_new(o, "current", json_boolean(d->current));
        json_line(o);
    } else {
        printf("device %u%s  created %s  last seen %s%s\n", d->device_id,
               d->current ? " (this device)" : "", d->created, d->last_seen,
               d->has_keys ? "" : "  (no keys)");
    }
}

static int cmd_devices(sc_client *c, int argc, char **argv)
{
    int rc;
    (void)argv;
    if (argc != 0)
        return usage_error("devices: unexpected argument");
    rc = sc_devices(c, print_device, NULL);
    return report(rc, sc_errmsg(c));
}

static int do_send(sc_client *c, int argc, char **argv, bool group_cmd)
{
    const char *file = NULL, *text_opt = NULL, *to = NULL, *text = NULL;
    bool to_group = group_cmd, have_text = false;
    char *buf = NULL;
    size_t len = 0;
    uint64_t ts = 0;
    int rc;

    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--file") == 0 && i + 1 < argc)
            file = argv[++i];
        else if (strcmp(argv[i], "--text") == 0 && i + 1 < argc)
            text_opt = argv[++i];
        else if (strcmp(argv[i], "--group") == 0)
            to_group = true;
        else if (strcmp(argv[i], "--") == 0) {
            /* everything after -- is positional */
            for (i++; i < argc; i++) {
                if (to == NULL)
                    to = argv[i];
                else if (!have_text) {
                    text = argv[i];
                    have_text = true;
                } else
                    return usage_error("send: unexpected argument %s", argv[i]);
            }
        } else if (argv[i][0] == '-' && argv[i][1] != '\0')
            return usage_error("send: unknown option %s", argv[i]);
        else if (to == NULL)
            to = argv[i];
        else if (!have_text) {
            text = argv[i];
            have_text = true;
        } else
            return usage_error("send: unexpected argument %s (quote the text)", argv[i]);
    }
    if (to == NULL)
        return usage_error("send: missing %s", to_group ? "GROUP" : "CONTACT");
    if (file) {
        if (have_text)
            return usage_error("send --file: give the text with --text");
        rc = sc_send_file(c, to, to_group, file, text_opt, &ts);
    } else {
        if (text_opt) {
            if (have_text)
                return usage_error("send: two texts given");
            text = text_opt;
            have_text = true;
        }
        if (!have_text || strcmp(text, "-") == 0) {
            int r = read_stdin_text(&buf, &len);
            if (r == -2)
                return usage_error("send: text longer than 65536 bytes");
            if (r != 0)
                return report(SC_E_INTERNAL, "cannot read stdin");
            text = buf;
        } else {
            len = strlen(text);
        }
        if (len == 0) {
            free(buf);
            return usage_error("send: empty text");
        }
        rc = sc_send_text(c, to, to_group, text, len, &ts);
    }
    if (buf) {
        sodium_memzero(buf, len);
        free(buf);
    }
    if (rc == SC_E_NETWORK && ts != 0) {
        char msg[700];
        snprintf(msg, sizeof msg,
                 "%s; the message is queued and will be sent by the next"
                 " command that connects",
                 sc_errmsg(c));
        return report(rc, msg);
    }
    if (rc != SC_OK)
        return report(rc, sc_errmsg(c));
    if (g.json) {
        json_t *o = json_object();
        json_object_set_new(o, "type", json_string("sent"));
        json_object_set_new(o, to_group ? "group" : "to", json_string(to));
        json_object_set_new(o, "timestamp", json_integer((json_int_t)ts));
        json_line(o);
    } else {
        printf("sent to %s (timestamp %llu)\n", to, (unsigned long long)ts);
    }
    return EXIT_OK;
}

static int cmd_receive(sc_client *c, int argc, char **argv, bool stay)
{
    int rc;
    (void)argv;
    if (argc != 0)
        return usage_error("%s: unexpected argument", stay ? "listen" : "receive");
    if (stay) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
    }
    rc = sc_receive(c, stay, &g_stop, print_event, NULL);
    return report(rc, sc_errmsg(c));
}

static void print_contact(void *ud, const sc_contact_info *ci)
{
    (void)ud;
    if (g.json) {
        json_t *o = json_object();
        json_object_set_new(o, "type", json_string("contact"));
        json_object_set_new(o, "name", json_string(ci->name));
        json_object_set_new(o, "devices", json_integer((json_int_t)ci->n_devices));
        json_object_set_new(o, "identity_changed", json_boolean(ci->identity_changed));
        json_object_set_new(o, "verified", json_boolean(ci->verified));
        json_line(o);
    } else {
        printf("%s  devices: %zu%s%s\n", ci->name, ci->n_devices, ci->verified ? "  verified" : "",
               ci->identity_changed ? "  SAFETY NUMBER CHANGED (see: sotto trust)" : "");
    }
}

static int cmd_contacts(sc_client *c, int argc, char **argv)
{
    (void)argv;
    if (argc != 0)
        return usage_error("contacts: unexpected argument");
    return report(sc_contacts(c, print_contact, NULL), sc_errmsg(c));
}

static int cmd_trust(sc_client *c, int argc, char **argv)
{
    int rc;
    if (argc != 1)
        return usage_error("usage: sotto trust CONTACT");
    rc = sc_trust(c, argv[0], print_event, NULL);
    if (rc != SC_OK)
        return report(rc, sc_errmsg(c));
    if (g.json) {
        json_t *o = json_object();
        json_object_set_new(o, "type", json_string("trusted"));
        json_object_set_new(o, "contact", json_string(argv[0]));
        json_line(o);
    } else {
        printf("trusted %s\n", argv[0]);
    }
    return EXIT_OK;
}

static void print_qr(const uint8_t *data, size_t len)
{
    QRcode *qr = QRcode_encodeData((int)len, data, 0, QR_ECLEVEL_L);
    int w, q = 2;

    if (qr == NULL)
        return;
    w = qr->width;
    /* Two module rows per text line: upper half block, lower, full, blank.
     * Dark modules are printed as the terminal's foreground colour. */
    for (int y = -q; y < w + q; y += 2) {
        for (int x = -q; x < w + q; x++) {
            int top = (y >= 0 && y < w && x >= 0 && x < w) ? (qr->data[y * w + x] & 1) : 0;
            int bot =
                (y + 1 >= 0 && y + 1 < w && x >= 0 && x < w) ? (qr->data[(y + 1) * w + x] & 1) : 0;
            /* inverted so that it scans on dark terminals: light = block */
            top = !top;
            bot = !bot;
            fputs(top && bot ? "\xe2\x96\x88"
                  : top      ? "\xe2\x96\x80"
                  : bot      ? "\xe2\x96\x84"
                             : " ",
                  stdout);
        }
        fputc('\n', stdout);
    }
    QRcode_free(qr);
}

static int cmd_safety(sc_client *c, int argc, char **argv)
{
    const char *who = NULL;
    char digits[61];
    uint8_t *scan = NULL;
    size_t scan_len = 0;
    int rc;

    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--no-qr") == 0)
            g.no_qr = true;
        else if (who == NULL)
            who = argv[i];
        else
            return usage_error("safety-number: unexpected argument %s", argv[i]);
    }
    if (who == NULL)
        return usage_error("usage: sotto safety-number CONTACT");
    rc = sc_safety_number(c, who, digits, &scan, &scan_len);
    if (rc != SC_OK)
        return report(rc, sc_errmsg(c));
    if (g.json) {
        json_t *o = json_object();
        char *hex = malloc(2 * scan_len + 1);
        json_object_set_new(o, "type", json_string("safety_number"));
        json_object_set_new(o, "contact", json_string(who));
        json_object_set_new(o, "safety_number", json_string(digits));
        if (hex) {
            sodium_bin2hex(hex, 2 * scan_len + 1, scan, scan_len);
            json_object_set_new(o, "scannable", json_string(hex));
        }
        json_line(o);
        free(hex);
    } else {
        printf("Safety number with %s:\n", who);
        for (int i = 0; i < 60; i += 5) {
            printf("%.5s%s", digits + i, (i % 20 == 15) ? "\n" : " ");
        }
        if (!g.no_qr && scan_len > 0) {
            printf("\n");
            print_qr(scan, scan_len);
        }
    }
    free(scan);
    return EXIT_OK;
}

static void print_group(void *ud, const sc_group_info *gi)
{
    (void)ud;
    if (g.json) {
        json_t *o = json_object(), *m = json_array();
        json_object_set_new(o, "type", json_string("group"));
        json_object_set_new(o, "id", json_string(gi->id_hex));
        json_object_set_new(o, "name", json_string(gi->name));
        for (size_t i = 0; i < gi->n_members; i++)
            json_array_append_new(m, json_string(gi->members[i]));
        json_object_set_new(o, "members", m);
        json_object_set_new(o, "active", json_boolean(gi->active));
        json_line(o);
    } else {
        printf("%s  ", gi->id_hex);
        put_str(gi->name);
        printf("%s  members:", gi->active ? "" : " (left)");
        for (size_t i = 0; i < gi->n_members; i++)
            printf(" %s", gi->members[i]);
        printf("\n");
    }
}

typedef struct find_group {
    const char *id;
} find_group;

static void print_group_if(void *ud, const sc_group_info *gi)
{
    find_group *f = ud;
    if (strcmp(gi->id_hex, f->id) == 0)
        print_group(NULL, gi);
}

static int cmd_group(sc_client *c, int argc, char **argv)
{
    const char *sub;
    char id[33] = "";
    int rc;

    if (argc < 1)
        return usage_error("group: missing subcommand (create, add, remove, leave, rename, list,"
                           " send)");
    sub = argv[0];
    argc--;
    argv++;
    /* the group's id before the change (a rename changes the name) */
    if (argc >= 1 && strcmp(sub, "create") != 0 && strcmp(sub, "list") != 0 &&
        strcmp(sub, "send") != 0 && sc_group_find(c, argv[0], id) != SC_OK)
        id[0] = '\0';
    if (strcmp(sub, "create") == 0) {
        if (argc < 1)
            return usage_error("usage: sotto group create NAME [MEMBER...]");
        rc = sc_group_create(c, argv[0], (const char *const *)argv + 1, (size_t)argc - 1, id);
    } else if (strcmp(sub, "add") == 0 || strcmp(sub, "remove") == 0) {
        if (argc < 2)
            return usage_error("usage: sotto group %s GROUP MEMBER...", sub);
        rc = sub[0] == 'a'
                 ? sc_group_add(c, argv[0], (const char *const *)argv + 1, (size_t)argc - 1)
                 : sc_group_remove(c, argv[0], (const char *const *)argv + 1, (size_t)argc - 1);
    } else if (strcmp(sub, "leave") == 0) {
        if (argc != 1)
            return usage_error("usage: sotto group leave GROUP");
        rc = sc_group_leave(c, argv[0]);
    } else if (strcmp(sub, "rename") == 0) {
        if (argc != 2)
            return usage_error("usage: sotto group rename GROUP NEWNAME");
        rc = sc_group_rename(c, argv[0], argv[1]);
    } else if (strcmp(sub, "list") == 0) {
        if (argc != 0)
            return usage_error("usage: sotto group list");
        return report(sc_group_list(c, print_group, NULL), sc_errmsg(c));
    } else if (strcmp(sub, "send") == 0) {
        return do_send(c, argc, argv, true);
    } else {
        return usage_error("group: unknown subcommand %s", sub);
    }
    if (rc != SC_OK && rc != SC_E_NETWORK)
        return report(rc, sc_errmsg(c));
    /* print the group's new state */
    if (id[0] != '\0') {
        find_group f = {id};
        (void)sc_group_list(c, print_group_if, &f);
    }
    if (rc == SC_E_NETWORK) {
        char msg[700];
        snprintf(msg, sizeof msg,
                 "%s; the group change is queued and will be sent by the next"
                 " command that connects",
                 sc_errmsg(c));
        return report(rc, msg);
    }
    return EXIT_OK;
}

static int cmd_history(sc_client *c, int argc, char **argv)
{
    const char *conv = NULL;
    bool group = false;
    long limit = 0;
    int rc;

    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--group") == 0)
            group = true;
        else if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc) {
            char *e;
            limit = strtol(argv[++i], &e, 10);
            if (*e || limit < 0)
                return usage_error("history: bad --limit %s", argv[i]);
        } else if (argv[i][0] == '-')
            return usage_error("history: unknown option %s", argv[i]);
        else if (conv == NULL)
            conv = argv[i];
        else
            return usage_error("history: unexpected argument %s", argv[i]);
    }
    if (conv == NULL)
        return usage_error("usage: sotto history CONTACT | --group GROUP");
    if (!group && !sc_username_valid(conv))
        group = true; /* not a possible username: must be a group */
    rc = sc_history(c, conv, group, (size_t)limit, print_event, NULL);
    return report(rc, sc_errmsg(c));
}

static int cmd_flush(sc_client *c, int argc, char **argv)
{
    size_t left = 0;
    int rc;
    (void)argv;
    if (argc != 0)
        return usage_error("flush: unexpected argument");
    rc = sc_flush(c, &left);
    if (rc != SC_OK)
        return report(rc, sc_errmsg(c));
    if (g.json) {
        json_t *o = json_object();
        json_object_set_new(o, "type", json_string("flushed"));
        json_object_set_new(o, "queued", json_integer((json_int_t)left));
        json_line(o);
    } else {
        printf("queue empty\n");
    }
    return EXIT_OK;
}

static int parse_device_id(const char *s, uint32_t *out)
{
    char *e;
    unsigned long v;
    errno = 0;
    v = strtoul(s, &e, 10);
    if (errno || *e || e == s || v < 1 || v > 0xFFFFFFFFul)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

static int cmd_link(sc_client *c, const char *cmd, int argc, char **argv)
{
    json_t *o = NULL;
    uint32_t dev = 0;
    int rc;

    if (strcmp(cmd, "link-request") == 0) {
        char code[SC_LINK_CODE_HEX + 1];
        if (argc != 0)
            return usage_error("link-request: unexpected argument");
        rc = sc_link_request(c, code);
        if (rc != SC_OK)
            return report(rc, sc_errmsg(c));
        if (!g.json) {
            printf("%s\n", code);
            return EXIT_OK;
        }
        o = json_object();
        json_object_set_new(o, "type", json_string("link_code"));
        json_object_set_new(o, "code", json_string(code));
    } else if (strcmp(cmd, "device-add") == 0) {
        if (argc != 1)
            return usage_error("usage: sotto device-add CODE");
        rc = sc_device_add(c, argv[0], &dev);
        if (rc != SC_OK)
            return report(rc, sc_errmsg(c));
        if (!g.json) {
            printf("added device %u\n", dev);
            return EXIT_OK;
        }
        o = json_object();
        json_object_set_new(o, "type", json_string("device_added"));
        json_object_set_new(o, "device", json_integer(dev));
    } else if (strcmp(cmd, "link-finish") == 0) {
        if (argc != 2 || parse_device_id(argv[1], &dev) != 0)
            return usage_error("usage: sotto link-finish USERNAME DEVICE_ID");
        rc = sc_link_finish(c, argv[0], dev);
        if (rc != SC_OK)
            return report(rc, sc_errmsg(c));
        if (!g.json) {
            printf("linked as %s device %u\n", argv[0], dev);
            return EXIT_OK;
        }
        o = json_object();
        json_object_set_new(o, "type", json_string("linked"));
        json_object_set_new(o, "username", json_string(argv[0]));
        json_object_set_new(o, "device", json_integer(dev));
    } else {
        if (argc != 1 || parse_device_id(argv[0], &dev) != 0)
            return usage_error("usage: sotto device-remove DEVICE_ID");
        rc = sc_device_remove(c, dev);
        if (rc != SC_OK)
            return report(rc, sc_errmsg(c));
        if (!g.json) {
            printf("removed device %u\n", dev);
            return EXIT_OK;
        }
        o = json_object();
        json_object_set_new(o, "type", json_string("device_removed"));
        json_object_set_new(o, "device", json_integer(dev));
    }
    json_line(o);
    return EXIT_OK;
}

/* ------------------------------------------------------------ main */

int main(int argc, char **argv)
{
    sc_options opt;
    sc_client *c = NULL;
    const char *cmd = NULL;
    int i, rc;

    umask(077);
    setvbuf(stdout, NULL, _IOLBF, 0);
    g.tty = isatty(1);
    signal(SIGPIPE, SIG_IGN);
    memset(&opt, 0, sizeof opt);
    opt.progress = isatty(2);
    g.account = getenv("SOTTO_ACCOUNT");
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-')
            break;
        if (strcmp(a, "--json") == 0)
            g.json = true;
        else if (strcmp(a, "--no-progress") == 0)
            opt.progress = false;
        else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
            return print_help("");
        else if (strcmp(a, "--version") == 0) {
            printf("sotto 0.1.0\n");
            return EXIT_OK;
        } else if ((strcmp(a, "--server") == 0 || strcmp(a, "--pin") == 0 ||
                    strcmp(a, "--ca") == 0 || strcmp(a, "--account") == 0 ||
                    strcmp(a, "--data-dir") == 0)) {
            if (i + 1 >= argc)
                return usage_error("%s needs a value", a);
            if (strcmp(a, "--server") == 0)
                opt.server_url = argv[++i];
            else if (strcmp(a, "--pin") == 0)
                opt.pin_hex = argv[++i];
            else if (strcmp(a, "--ca") == 0)
                opt.ca_file = argv[++i];
            else if (strcmp(a, "--account") == 0)
                g.account = argv[++i];
            else
                opt.data_home = argv[++i];
        } else {
            return usage_error("unknown option %s (see sotto --help)", a);
        }
    }
    if (i >= argc) {
        fputs(main_help, stderr);
        return EXIT_USAGE;
    }
    cmd = argv[i++];
    if (want_help(argc - i, argv + i) || strcmp(cmd, "help") == 0)
        return print_help(strcmp(cmd, "help") == 0 && i < argc ? argv[i] : cmd);
    {
        static const char *const known[] = {
            "register", "devices",      "send",          "receive",     "listen",
            "contacts", "trust",        "safety-number", "group",       "history",
            "flush",    "link-request", "device-add",    "link-finish", "device-remove"};
        bool ok = false;
        for (size_t k = 0; k < sizeof known / sizeof known[0]; k++)
            if (strcmp(cmd, known[k]) == 0)
                ok = true;
        if (!ok)
            return usage_error("unknown command %s (see sotto --help)", cmd);
    }
    if (g.account == NULL || g.account[0] == '\0')
        return usage_error("no account: give --account NAME (or set SOTTO_ACCOUNT)");
    if (opt.pin_hex && opt.ca_file)
        return usage_error("give either --pin or --ca, not both");
    opt.account = g.account;
    /* only these create a local account; a mistyped --account elsewhere
     * leaves nothing behind */
    opt.must_exist = strcmp(cmd, "register") != 0 && strcmp(cmd, "link-request") != 0;
    {
        char err[512];
        rc = sc_open(&c, &opt, err, sizeof err);
        if (rc != SC_OK)
            return report(rc, err);
    }
    argc -= i;
    argv += i;
    if (strcmp(cmd, "register") == 0)
        rc = cmd_register(c, argc, argv);
    else if (strcmp(cmd, "devices") == 0)
        rc = cmd_devices(c, argc, argv);
    else if (strcmp(cmd, "send") == 0)
        rc = do_send(c, argc, argv, false);
    else if (strcmp(cmd, "receive") == 0)
        rc = cmd_receive(c, argc, argv, false);
    else if (strcmp(cmd, "listen") == 0)
        rc = cmd_receive(c, argc, argv, true);
    else if (strcmp(cmd, "contacts") == 0)
        rc = cmd_contacts(c, argc, argv);
    else if (strcmp(cmd, "trust") == 0)
        rc = cmd_trust(c, argc, argv);
    else if (strcmp(cmd, "safety-number") == 0)
        rc = cmd_safety(c, argc, argv);
    else if (strcmp(cmd, "group") == 0)
        rc = cmd_group(c, argc, argv);
    else if (strcmp(cmd, "history") == 0)
        rc = cmd_history(c, argc, argv);
    else if (strcmp(cmd, "link-request") == 0 || strcmp(cmd, "device-add") == 0 ||
             strcmp(cmd, "link-finish") == 0 || strcmp(cmd, "device-remove") == 0)
        rc = cmd_link(c, cmd, argc, argv);
    else
        rc = cmd_flush(c, argc, argv);
    sc_close(c);
    return rc;
}
