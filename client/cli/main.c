/*
 * client/cli/main.c -- the `sotto` command line client (docs/cli.md).
 *
 *   sotto [--server URL] [--pin HEX | --ca FILE] [--account NAME] [--json]
 *         COMMAND [ARGS]
 *
 * One table, commands[] at the end of this file, names every command with
 * its handler, synopsis, help, exit codes and the account it needs; the
 * overview (`sotto --help`), each command's help and the dispatch are all
 * generated from it. Global options are accepted before and after the
 * command (up to a `--`, after which everything is an argument).
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
#include "termsafe.h"
#include "../daemon/daemon.h"

/* Where a command's output goes. A command run by `sotto` itself writes to
 * the process's stdout/stderr and reads its stdin; a command the daemon
 * runs for a forwarding CLI (sotto_cli_run, client/daemon/) runs on the
 * account's worker thread and writes into that call's buffers, with the
 * calling terminal's properties. The handlers keep writing printf/stdout:
 * these names are redirected here, per thread, for this file only. */
static _Thread_local const sotto_cli_io *t_io;

static FILE *cli_stream(int fd)
{
    if (t_io)
        return fd == 0 ? t_io->in : fd == 1 ? t_io->out : t_io->err;
    return fd == 0 ? stdin : fd == 1 ? stdout : stderr;
}

static int cli_isatty(int fd)
{
    if (t_io)
        return fd == 0 ? t_io->in_tty : fd == 1 ? t_io->out_tty : t_io->err_tty;
    return isatty(fd);
}

#undef stdin
#undef stdout
#undef stderr
#define stdin cli_stream(0)
#define stdout cli_stream(1)
#define stderr cli_stream(2)
#define printf(...) fprintf(stdout, __VA_ARGS__)
#define isatty(fd) cli_isatty(fd)

enum {
    EXIT_OK = 0,
    EXIT_ERROR = 1,     /* internal or local store failure */
    EXIT_USAGE = 2,     /* bad command line, bad name or text */
    EXIT_NETWORK = 3,   /* not done now: server unreachable, TLS/pin failure, timeout,
                           or the server asked to retry later; a message being sent
                           stays queued and the next command that connects sends it */
    EXIT_REFUSED = 4,   /* the server refused (taken, auth, too large...): nothing queued */
    EXIT_UNTRUSTED = 5, /* safety number changed: run `sotto trust CONTACT` */
    EXIT_NOT_FOUND = 6, /* unknown user, contact or group */
    EXIT_INTEGRITY = 7, /* attachment failed verification */
    EXIT_STATE = 8,     /* not registered yet / already registered / not a member */
    EXIT_KT = 9,        /* the key directory (key transparency) refused or contradicts */
    EXIT_BUSY = 10,     /* another process holds the account's connection (sc_lock) */
};

static _Thread_local struct {
    bool json;
    bool tty; /* stdout is a terminal: neutralise control characters */
    bool no_qr;
    const char *account;
    const char *self;   /* our username once registered: shown as "me" */
    sc_backup *backup;  /* register --restore: opened before the account is */
    sc_client *ack_cli; /* receive/listen without the daemon: acknowledges what it
                           printed for the daemon's subscriber "cli" (cli_acked) */
    bool daemon;        /* run by the daemon (sotto_cli_run): its receive loop
                           sends what is due (receipts) */
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
    case SC_E_RETRY:
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
    case SC_E_KT:
        return EXIT_KT;
    case SC_E_BUSY:
        return EXIT_BUSY;
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
    case SC_E_RETRY:
        return "retry_later";
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
    case SC_E_KT:
        return "key_directory";
    case SC_E_BUSY:
        return "account_in_use";
    default:
        return "internal";
    }
}

/* Standard output could not take an event (a closed pipe, a full disk): the
 * event is not handed out, so the process ends before the core marks it
 * shown; the next receive or listen shows it again (docs/cli.md). */
static void output_or_die(void)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr,
                "sotto: cannot write to standard output (%s): stopping (nothing is"
                " lost: a message receive or listen did not show comes again at the"
                " next receive or listen)\n",
                strerror(errno));
        _exit(1);
    }
}

static void json_line(json_t *o)
{
    /* on a terminal, every non-ASCII character as \uXXXX: a bidi control
     * or C1 control inside a string cannot act there */
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | (g.tty ? JSON_ENSURE_ASCII : 0));
    if (s) {
        fputs(s, stdout);
        fputc('\n', stdout);
        free(s);
        output_or_die();
    }
    json_decref(o);
}

static int report(int rc, const char *msg)
{
    if (rc == SC_OK)
        return EXIT_OK;
    if (isatty(2)) {
        /* error texts can carry names and server answers: neutralised */
        fputs("sotto: ", stderr);
        ts_write(stderr, msg && msg[0] ? msg : "error", msg && msg[0] ? strlen(msg) : 5, TS_NAME);
        fputc('\n', stderr);
    } else {
        fprintf(stderr, "sotto: %s\n", msg && msg[0] ? msg : "error");
    }
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

/* Writes peer-supplied text for a person (termsafe.h). On a terminal it is
 * neutralised: control characters, DEL, bidi controls and marks are shown
 * as <U+XXXX>, invalid UTF-8 as \xNN, and each newline of a message text
 * (put_text) starts a continuation line marked TS_CONTINUATION, so a text
 * can neither rewrite the screen nor pass for another message; in a name
 * (put_str) a newline is escaped too. When stdout is not a terminal
 * everything is written byte for byte; --json output is never altered. */
static void put_mode(const char *s, size_t len, ts_mode mode)
{
    if (s == NULL)
        return;
    if (!g.tty)
        fwrite(s, 1, len, stdout);
    else
        ts_write(stdout, s, len, mode);
}

static void put_text(const char *s, size_t len)
{
    put_mode(s, len, TS_BODY);
}

static void put_str(const char *s)
{
    if (s)
        put_mode(s, strlen(s), TS_NAME);
}

/* How human output names a sender: our own name is "me", as in our own
 * outgoing rows, so a group's history does not mix the two. */
static const char *shown_sender(const char *sender)
{
    if (sender == NULL)
        return "?";
    if (g.self && strcmp(sender, g.self) == 0)
        return "me";
    return sender;
}

/* An event a receive/listen without the daemon wrote to stdout counts as
 * printed for the CLI's subscriber of a later daemon too ("cli", docs/rpc.md
 * "The CLI through the daemon"), so that one does not print it again. */
static void cli_acked(const sc_event *ev)
{
    if (g.ack_cli && ev->id > 0)
        (void)sc_subscriber_ack(g.ack_cli, SOTTO_DAEMON_CLI_SUBSCRIBER, &ev->id, 1, 0, NULL);
}

/* Issue 11: the fields of everyday messaging in an event's JSON object
 * (docs/cli.md "Everyday messaging", docs/rpc.md "Events"). */
static void everyday_json(json_t *o, const sc_event *ev)
{
    json_object_set_new(o, "conversation", jstr_or_null(ev->conversation));
    if (ev->target_author) {
        json_t *t = json_object();
        json_object_set_new(t, "author", json_string(ev->target_author));
        json_object_set_new(t, "timestamp", json_integer((json_int_t)ev->target_timestamp));
        json_object_set_new(o, "target", t);
    }
    switch (ev->kind) {
    case SC_EV_RECEIPT: {
        json_t *a = json_array();
        json_object_set_new(o, "receipt_type", jstr_or_null(ev->receipt_type));
        for (size_t i = 0; i < ev->n_receipt_timestamps; i++)
            json_array_append_new(a, json_integer((json_int_t)ev->receipt_timestamps[i]));
        json_object_set_new(o, "timestamps", a);
        break;
    }
    case SC_EV_TYPING:
        json_object_set_new(o, "action", json_string(ev->typing_started ? "started" : "stopped"));
        break;
    case SC_EV_REACTION:
        json_object_set_new(o, "emoji", jstr_or_null(ev->emoji));
        json_object_set_new(o, "remove", json_boolean(ev->reaction_remove));
        break;
    default:
        break;
    }
    if (ev->kind == SC_EV_TIMER || ev->expire_timer_s)
        json_object_set_new(o, "expire_timer", json_integer(ev->expire_timer_s));
    if (ev->expires_at_ms)
        json_object_set_new(o, "expires_at", json_integer((json_int_t)ev->expires_at_ms));
    if (ev->quote_author) {
        json_t *q = json_object();
        json_object_set_new(q, "author", json_string(ev->quote_author));
        json_object_set_new(q, "timestamp", json_integer((json_int_t)ev->quote_timestamp));
        json_object_set_new(q, "text", jstr_or_null(ev->quote_text));
        json_object_set_new(o, "quote", q);
    }
    if (ev->n_mentions > 0) {
        json_t *a = json_array();
        for (size_t i = 0; i < ev->n_mentions; i++) {
            json_t *m = json_object();
            json_object_set_new(m, "name", jstr_or_null(ev->mentions[i].name));
            json_object_set_new(m, "start", json_integer(ev->mentions[i].start));
            json_object_set_new(m, "length", json_integer(ev->mentions[i].length));
            json_array_append_new(a, m);
        }
        json_object_set_new(o, "mentions", a);
        json_object_set_new(o, "mentions_me", json_boolean(ev->mentions_me));
    }
    if (ev->edited) {
        json_object_set_new(o, "edited", json_true());
        json_object_set_new(o, "edited_timestamp", json_integer((json_int_t)ev->edited_timestamp));
    }
    if (ev->deleted)
        json_object_set_new(o, "deleted", json_true());
    if (ev->request)
        json_object_set_new(o, "request", json_true());
    if (ev->kind == SC_EV_MESSAGE)
        json_object_set_new(o, "read", json_boolean(ev->read_ms != 0));
    if (ev->display_name)
        json_object_set_new(o, "display_name", json_string(ev->display_name));
    if (ev->n_reactions > 0) {
        json_t *a = json_array();
        for (size_t i = 0; i < ev->n_reactions; i++) {
            json_t *r = json_object();
            json_object_set_new(r, "from", jstr_or_null(ev->reactions[i].reactor));
            json_object_set_new(r, "emoji", jstr_or_null(ev->reactions[i].emoji));
            json_object_set_new(r, "timestamp",
                                json_integer((json_int_t)ev->reactions[i].timestamp));
            json_array_append_new(a, r);
        }
        json_object_set_new(o, "reactions", a);
    }
    if (ev->n_receipts > 0) {
        json_t *a = json_array();
        for (size_t i = 0; i < ev->n_receipts; i++) {
            json_t *r = json_object();
            json_object_set_new(r, "recipient", jstr_or_null(ev->receipts[i].recipient));
            json_object_set_new(r, "state", jstr_or_null(ev->receipts[i].state));
            json_object_set_new(r, "at", json_integer((json_int_t)ev->receipts[i].at_ms));
            json_array_append_new(a, r);
        }
        json_object_set_new(o, "receipts", a);
    }
}

/* The text line of the issue-11 event kinds; false for the others. */
static bool everyday_text(const sc_event *ev)
{
    char when[32];

    fmt_time(ev->timestamp, when, sizeof when);
    switch (ev->kind) {
    case SC_EV_RECEIPT:
        printf("[%s] ", when);
        put_str(shown_sender(ev->sender));
        printf(ev->receipt_type && strcmp(ev->receipt_type, "read") == 0 ? " read" : " received");
        for (size_t i = 0; i < ev->n_receipt_timestamps; i++)
            printf(" %llu", (unsigned long long)ev->receipt_timestamps[i]);
        printf("\n");
        return true;
    case SC_EV_TYPING:
        printf("[%s] ", when);
        put_str(shown_sender(ev->sender));
        printf(ev->typing_started ? " is typing" : " stopped typing");
        if (ev->group_id) {
            printf(" @ ");
            put_str(ev->group_name ? ev->group_name : ev->group_id);
        }
        printf("\n");
        return true;
    case SC_EV_REACTION:
        printf("[%s] ", when);
        put_str(shown_sender(ev->sender));
        if (ev->reaction_remove) {
            printf(" removed a reaction from ");
        } else {
            printf(" reacted ");
            put_str(ev->emoji ? ev->emoji : "");
            printf(" to ");
        }
        if (ev->target_author && g.self && strcmp(ev->target_author, g.self) == 0) {
            printf("your message");
        } else {
            put_str(ev->target_author ? ev->target_author : "?");
            printf("'s message");
        }
        printf(" %llu\n", (unsigned long long)ev->target_timestamp);
        return true;
    case SC_EV_EDIT:
        printf("[%s] ", when);
        put_str(shown_sender(ev->sender));
        printf(" edited %llu: ", (unsigned long long)ev->target_timestamp);
        put_text(ev->body, ev->body_len);
        printf("\n");
        return true;
    case SC_EV_DELETE:
        printf("[%s] ", when);
        put_str(shown_sender(ev->sender));
        printf(" deleted message %llu\n", (unsigned long long)ev->target_timestamp);
        return true;
    case SC_EV_TIMER:
        printf("[%s] ", when);
        put_str(shown_sender(ev->sender));
        if (ev->expire_timer_s)
            printf(" set disappearing messages to %u s", (unsigned)ev->expire_timer_s);
        else
            printf(" turned disappearing messages off");
        /* which conversation: a group, or (our own change) the other account */
        if (ev->group_id) {
            printf(" @ ");
            put_str(ev->group_name ? ev->group_name : ev->group_id);
        } else if (ev->conversation && ev->sender && strcmp(ev->conversation, ev->sender) != 0) {
            printf(" with ");
            put_str(ev->conversation);
        }
        printf("\n");
        return true;
    case SC_EV_READ:
        printf("[%s] read on another device: ", when);
        put_str(shown_sender(ev->target_author ? ev->target_author : "?"));
        printf(" %llu\n", (unsigned long long)ev->target_timestamp);
        return true;
    default:
        return false;
    }
}

static void print_event(void *ud, const sc_event *ev)
{
    char when[32];
    (void)ud;

    if (g.json) {
        json_t *o = json_object();
        const char *type = ev->kind == SC_EV_MESSAGE    ? "message"
                           : ev->kind == SC_EV_SENT     ? "outgoing"
                           : ev->kind == SC_EV_GROUP    ? "group"
                           : ev->kind == SC_EV_RECEIPT  ? "receipt"
                           : ev->kind == SC_EV_TYPING   ? "typing"
                           : ev->kind == SC_EV_REACTION ? "reaction"
                           : ev->kind == SC_EV_EDIT     ? "edit"
                           : ev->kind == SC_EV_DELETE   ? "delete"
                           : ev->kind == SC_EV_TIMER    ? "timer"
                           : ev->kind == SC_EV_READ     ? "read"
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
        everyday_json(o, ev);
        json_line(o);
        cli_acked(ev);
        return;
    }
    if (everyday_text(ev)) {
        output_or_die();
        cli_acked(ev);
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
        printf("[%s] ", when);
        put_str(shown_sender(ev->sender));
        printf(": group \"");
        put_str(ev->group_name);
        printf("\" ");
        put_str(ev->group_action ? ev->group_action : "");
        printf("; members:");
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
            printf("[%s] ", when);
            put_str(shown_sender(ev->sender));
            printf(" @ ");
            put_str(ev->group_name ? ev->group_name : ev->group_id);
        } else {
            printf("[%s] ", when);
            put_str(shown_sender(ev->sender));
        }
        if (ev->display_name && ev->kind != SC_EV_SENT) {
            printf(" (");
            put_str(ev->display_name);
            printf(")");
        }
        if (ev->request)
            printf(" [request]");
        printf(": ");
        if (ev->deleted)
            printf("(deleted)");
        else
            put_text(ev->body, ev->body_len);
        /* the message id, for replies, reactions, edits and deletes */
        printf("  #%llu", (unsigned long long)ev->timestamp);
        if (ev->edited)
            printf(" (edited)");
        if (ev->expire_timer_s)
            printf(" (disappears %us after %s)", (unsigned)ev->expire_timer_s,
                   ev->kind == SC_EV_SENT ? "sending" : "reading");
        printf("\n");
        if (ev->quote_author) {
            printf("  > reply to ");
            put_str(shown_sender(ev->quote_author));
            printf(" #%llu: ", (unsigned long long)ev->quote_timestamp);
            put_str(ev->quote_text ? ev->quote_text : "");
            printf("\n");
        }
        if (ev->n_reactions > 0) {
            printf("  reactions:");
            for (size_t i = 0; i < ev->n_reactions; i++) {
                printf(" ");
                put_str(ev->reactions[i].emoji ? ev->reactions[i].emoji : "");
                printf(" ");
                put_str(shown_sender(ev->reactions[i].reactor ? ev->reactions[i].reactor : "?"));
            }
            printf("\n");
        }
        if (ev->n_receipts > 0) {
            printf("  receipts:");
            for (size_t i = 0; i < ev->n_receipts; i++) {
                printf(" ");
                put_str(ev->receipts[i].recipient ? ev->receipts[i].recipient : "?");
                printf("=");
                put_str(ev->receipts[i].state ? ev->receipts[i].state : "?");
            }
            printf("\n");
        }
        for (size_t i = 0; i < ev->n_attachments; i++) {
            const sc_attachment_info *a = &ev->attachments[i];
            printf("  attachment: ");
            put_str(a->file_name ? a->file_name : "");
            printf(" (%llu bytes)", (unsigned long long)a->size);
            if (a->path) {
                /* our own file: the path it was sent from, not a download */
                printf(ev->kind == SC_EV_SENT ? " sent from " : " saved to ");
                put_str(a->path);
            } else if (a->error) {
                printf(" NOT saved: ");
                put_str(a->error);
            }
            printf("\n");
        }
    }
    output_or_die();
    cli_acked(ev);
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
        n += r;
        /* end of input: on a terminal one Ctrl-D, not a second one (a
         * further fread after EOF reads the terminal again) */
        if (r == 0 || feof(stdin) || ferror(stdin))
            break;
    }
    if (n > 0 && buf[n - 1] == '\n')
        n--;
    *out = buf;
    *len = n;
    return 0;
}

/* ------------------------------------------------------------ retry */

/* SC_E_RETRY: the message is queued and the server asked to try again at
 * sc_retry_at(). The core never sleeps; this loop does, for short waits
 * only: a longer one (or too many rounds) leaves the message queued for
 * the next command that connects (exit 3). */
#define RETRY_MAX_WAIT_MS 10000
#define RETRY_MIN_WAIT_MS 50
#define RETRY_MAX_ROUNDS 5

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(uint64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !g_stop) {
    }
}

/* Returns the result of the last sc_flush() (rc itself when it is not
 * SC_E_RETRY). left: as for sc_flush(), may be NULL. */
static int retry_queued(sc_client *c, int rc, size_t *left)
{
    for (int round = 0; rc == SC_E_RETRY && round < RETRY_MAX_ROUNDS && !g_stop; round++) {
        uint64_t at = sc_retry_at(c), now = wall_ms();
        uint64_t wait = at > now ? at - now : 0;
        if (wait > RETRY_MAX_WAIT_MS)
            break;
        sleep_ms(wait < RETRY_MIN_WAIT_MS ? RETRY_MIN_WAIT_MS : wait);
        rc = sc_flush(c, left);
    }
    return rc;
}

/* Reports a result that leaves something queued: SC_E_RETRY ("queued, will
 * retry: REASON") or SC_E_NETWORK (what = "message", "group change"). */
static int report_queued(sc_client *c, int rc, const char *what)
{
    char msg[700];
    if (rc == SC_E_RETRY) {
        uint64_t at = sc_retry_at(c), now = wall_ms();
        if (at > now)
            snprintf(msg, sizeof msg,
                     "queued, will retry: %s (the server asks to wait %llu s; the next"
                     " command that connects sends it)",
                     sc_errmsg(c), (unsigned long long)((at - now + 999) / 1000));
        else
            snprintf(msg, sizeof msg, "queued, will retry: %s", sc_errmsg(c));
    } else {
        snprintf(msg, sizeof msg,
                 "%s; the %s is queued and will be sent by the next command that connects",
                 sc_errmsg(c), what);
    }
    return report(rc, msg);
}

/* ------------------------------------------------------------ commands */

/* register --restore FILE [--code CODE]: after sc_open; the backup was
 * opened by register_prepare() before it. */
static int restore_run(sc_client *c)
{
    sc_backup_info info;
    int rc = sc_restore_opened(c, g.backup, &info);

    if (rc != SC_OK)
        return report(rc, sc_errmsg(c));
    if (g.json) {
        json_t *o = json_object();
        json_object_set_new(o, "type", json_string("restored"));
        json_object_set_new(o, "account", json_string(g.account));
        json_object_set_new(o, "username", json_string(sc_username(c)));
        json_object_set_new(o, "device", json_integer(sc_device_id(c)));
        json_object_set_new(o, "list_version", json_integer((json_int_t)info.list_version));
        json_object_set_new(o, "recovered", json_boolean(info.recovered));
        json_object_set_new(o, "contacts", json_integer((json_int_t)info.contacts));
        json_object_set_new(o, "groups", json_integer((json_int_t)info.groups));
        json_object_set_new(o, "history", json_integer((json_int_t)info.history));
        json_line(o);
    } else {
        printf("restored %s (device %u, device list version %llu): %zu contact(s), %zu"
               " group(s), %zu history row(s)\n",
               sc_username(c), sc_device_id(c), (unsigned long long)info.list_version,
               info.contacts, info.groups, info.history);
        if (info.recovered)
            printf("the account's other devices were removed; your contacts see a device"
                   " change and the same safety number\n");
    }
    return EXIT_OK;
}

/* Before the local account is opened: `register --restore FILE` opens the
 * backup with the code (from --code, else one line of stdin), so that a
 * wrong code creates nothing. */
static int register_prepare(int argc, char **argv)
{
    const char *file = NULL, *code = NULL;
    char line[160], err[512];
    bool wrong = false;
    int rc;

    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--restore") == 0 && i + 1 < argc)
            file = argv[++i];
        else if (strcmp(argv[i], "--code") == 0 && i + 1 < argc)
            code = argv[++i];
    }
    if (file == NULL) {
        const char *user = NULL;
        if (code != NULL)
            return usage_error("register: --code goes with --restore FILE");
        /* a username the server would refuse: nothing is created locally */
        for (int i = 0; i < argc; i++) {
            if ((strcmp(argv[i], "--invite") == 0 || strcmp(argv[i], "--kt-key") == 0 ||
                 strcmp(argv[i], "--kt-vrf-key") == 0 || strcmp(argv[i], "--sealed-root") == 0) &&
                i + 1 < argc)
                i++;
            else if (argv[i][0] != '-' && user == NULL)
                user = argv[i];
        }
        if (user == NULL)
            user = g.account;
        if (user != NULL && !sc_username_valid(user))
            return usage_error("invalid username %s: 3 to 32 of a-z, 0-9, '_', '.' (give one"
                               " after `register` when the account name is not one)",
                               user);
        return EXIT_OK;
    }
    if (code == NULL) {
        size_t n;
        if (isatty(0))
            fprintf(stderr, "recovery code: ");
        if (fgets(line, sizeof line, stdin) == NULL)
            return usage_error("register --restore: no recovery code (give --code or one line"
                               " on stdin)");
        n = strlen(line);
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        code = line;
    }
    rc = sc_backup_open_file(file, code, &g.backup, &wrong, err, sizeof err);
    sodium_memzero(line, sizeof line);
    if (rc == SC_OK)
        return EXIT_OK;
    if (wrong) {
        fprintf(stderr, "sotto: %s\n", err);
        if (g.json) {
            json_t *o = json_object();
            json_object_set_new(o, "type", json_string("error"));
            json_object_set_new(o, "code", json_string("wrong_recovery_code"));
            json_object_set_new(o, "exit", json_integer(EXIT_USAGE));
            json_object_set_new(o, "message", json_string(err));
            json_line(o);
        }
        return EXIT_USAGE;
    }
    return report(rc, err);
}

/* --kt-key HEX --kt-vrf-key HEX (register, link-request): the server's
 * key-transparency keys from an out-of-band source, pinned before the first
 * connection. Returns 1 when argv[*i] was one of them (value taken), 0
 * when not, -1 (reported) for a missing value. */
static int kt_key_opt(int argc, char **argv, int *i, const char **key, const char **vrf)
{
    bool k = strcmp(argv[*i], "--kt-key") == 0, v = strcmp(argv[*i], "--kt-vrf-key") == 0;

    if (!k && !v)
        return 0;
    if (*i + 1 >= argc) {
        usage_error("%s needs a value (64 hex characters; sottod --kt-info prints it)", argv[*i]);
        return -1;
    }
    *(k ? key : vrf) = argv[++*i];
    return 1;
}

/* Pins the keys given with kt_key_opt (both or none). EXIT_OK or reported. */
static int kt_pin_given(sc_client *c, const char *key, const char *vrf)
{
    if (key == NULL && vrf == NULL)
        return EXIT_OK;
    if (key == NULL || vrf == NULL)
        return usage_error("give both --kt-key and --kt-vrf-key");
    int rc = sc_kt_pin_keys(c, key, vrf);
    return rc == SC_OK ? EXIT_OK : report(rc, sc_errmsg(c));
}

/* --sealed-root HEX (register, link-request): the server's sealed-sender
 * trust root from an out-of-band source (`sottod admin sealed-root`),
 * pinned before the first connection. Same returns as kt_key_opt. */
static int sealed_root_opt(int argc, char **argv, int *i, const char **root)
{
    if (strcmp(argv[*i], "--sealed-root") != 0)
        return 0;
    if (*i + 1 >= argc) {
        usage_error("--sealed-root needs a value (66 hex characters; `sottod admin sealed-root`"
                    " prints it)");
        return -1;
    }
    *root = argv[++*i];
    return 1;
}

/* Pins the root given with sealed_root_opt, if any. EXIT_OK or reported. */
static int sealed_root_pin_given(sc_client *c, const char *root)
{
    if (root == NULL)
        return EXIT_OK;
    int rc = sc_sealed_pin_root(c, root);
    return rc == SC_OK ? EXIT_OK : report(rc, sc_errmsg(c));
}

static int cmd_register(sc_client *c, int argc, char **argv)
{
    const char *invite = NULL, *user = NULL, *kt_key = NULL, *kt_vrf = NULL, *root = NULL;
    bool restore = false;
    int rc, k;

    for (int i = 0; i < argc; i++) {
        if ((k = kt_key_opt(argc, argv, &i, &kt_key, &kt_vrf)) != 0 ||
            (k = sealed_root_opt(argc, argv, &i, &root)) != 0) {
            if (k < 0)
                return EXIT_USAGE;
        } else if (strcmp(argv[i], "--invite") == 0 && i + 1 < argc)
            invite = argv[++i];
        else if (strcmp(argv[i], "--restore") == 0 && i + 1 < argc)
            restore = true, i++; /* opened by register_prepare() */
        else if (strcmp(argv[i], "--code") == 0 && i + 1 < argc)
            i++;
        else if (argv[i][0] == '-')
            return usage_error("register: unknown option %s", argv[i]);
        else if (user == NULL)
            user = argv[i];
        else
            return usage_error("register: unexpected argument %s", argv[i]);
    }
    if ((rc = kt_pin_given(c, kt_key, kt_vrf)) != EXIT_OK)
        return rc;
    if (restore && root != NULL)
        return usage_error("register --restore FILE: --sealed-root is for a new account");
    if ((rc = sealed_root_pin_given(c, root)) != EXIT_OK)
        return rc;
    if (restore) {
        if (user != NULL || invite != NULL)
            return usage_error("register --restore FILE takes the username from the backup"
                               " (no USERNAME, no --invite)");
        return restore_run(c);
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
        json_object_set_new(o, "in_signed_list", json_boolean(d->in_signed_list));
        json_line(o);
    } else {
        printf("device %u%s  created ", d->device_id, d->current ? " (this device)" : "");
        put_str(d->created);
        printf("  last seen ");
        put_str(d->last_seen);
        printf("%s%s\n", d->has_keys ? "" : "  (no keys)",
               d->in_signed_list ? "" : "  NOT IN THE SIGNED DEVICE LIST");
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

static json_t *delivery_json(sc_client *c); /* group commands, below */
static void print_delivery(sc_client *c);

/* issue 11 (msgops): a message timestamp option's value */
static int msgops_ts(const char *cmd, const char *opt, const char *s, uint64_t *out)
{
    char *e;
    unsigned long long v;
    if (s[0] < '0' || s[0] > '9')
        return usage_error("%s: %s: bad timestamp %s", cmd, opt, s);
    errno = 0;
    v = strtoull(s, &e, 10);
    if (*e || errno || v == 0)
        return usage_error("%s: %s: bad timestamp %s", cmd, opt, s);
    *out = (uint64_t)v;
    return EXIT_OK;
}

/* --mention START:LENGTH:NAME (signal-cli's form; UTF-8 byte offsets) */
static int msgops_mention(const char *s, sc_mention *m)
{
    char *e1, *e2;
    unsigned long st, ln;
    if (s[0] < '0' || s[0] > '9')
        return usage_error("send: --mention START:LENGTH:NAME, got %s", s);
    errno = 0;
    st = strtoul(s, &e1, 10);
    if (errno || *e1 != ':' || e1[1] < '0' || e1[1] > '9')
        return usage_error("send: --mention START:LENGTH:NAME, got %s", s);
    ln = strtoul(e1 + 1, &e2, 10);
    if (errno || *e2 != ':' || e2[1] == '\0' || st > UINT32_MAX || ln > UINT32_MAX)
        return usage_error("send: --mention START:LENGTH:NAME, got %s", s);
    m->start = (uint32_t)st;
    m->length = (uint32_t)ln;
    m->name = e2 + 1;
    return EXIT_OK;
}

static int do_send(sc_client *c, int argc, char **argv, bool group_cmd)
{
    const char *file = NULL, *text_opt = NULL, *to = NULL, *text = NULL;
    bool to_group = group_cmd, have_text = false;
    char *buf = NULL;
    size_t len = 0;
    uint64_t ts = 0;
    int rc;
    /* issue 11 (msgops): reply, mentions, edit */
    sc_send_options so;
    sc_mention mv[64];

    memset(&so, 0, sizeof so);
    so.mentions = mv;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--quote-timestamp") == 0 && i + 1 < argc) {
            if ((rc = msgops_ts("send", argv[i], argv[i + 1], &so.quote_timestamp)) != EXIT_OK)
                return rc;
            i++;
            continue;
        }
        if (strcmp(argv[i], "--edit-timestamp") == 0 && i + 1 < argc) {
            if ((rc = msgops_ts("send", argv[i], argv[i + 1], &so.edit_timestamp)) != EXIT_OK)
                return rc;
            i++;
            continue;
        }
        if (strcmp(argv[i], "--quote-author") == 0 && i + 1 < argc) {
            so.quote_author = argv[++i];
            continue;
        }
        if (strcmp(argv[i], "--mention") == 0 && i + 1 < argc) {
            if (so.n_mentions == sizeof mv / sizeof mv[0])
                return usage_error("send: at most 64 mentions");
            if ((rc = msgops_mention(argv[i + 1], &mv[so.n_mentions])) != EXIT_OK)
                return rc;
            so.n_mentions++;
            i++;
            continue;
        }
        if (strcmp(argv[i], "--no-mentions") == 0) {
            so.no_auto_mentions = true;
            continue;
        }
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
    if ((so.quote_author == NULL) != (so.quote_timestamp == 0))
        return usage_error("send: a reply needs --quote-timestamp and --quote-author");
    if (file) {
        if (have_text)
            return usage_error("send --file: give the text with --text");
        if (so.edit_timestamp)
            return usage_error("send: an edit changes the text only (no --file)");
        rc = sc_send_message(c, to, to_group, text_opt, text_opt ? strlen(text_opt) : 0, file, &so,
                             &ts);
    } else {
        if (text_opt) {
            if (have_text)
                return usage_error("send: two texts given");
            text = text_opt;
            have_text = true;
        }
        if (!have_text || strcmp(text, "-") == 0) {
            int r;
            if (isatty(0))
                fprintf(stderr, "sotto: reading the message from standard input (end with"
                                " Ctrl-D)\n");
            r = read_stdin_text(&buf, &len);
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
        rc = sc_send_message(c, to, to_group, text, len, NULL, &so, &ts);
    }
    if (buf) {
        sodium_memzero(buf, len);
        free(buf);
    }
    rc = retry_queued(c, rc, NULL);
    /* a group message that went to some members and waits for others
     * (safety number changed: exit 5) says so per member */
    if (to_group && ts != 0 && rc != SC_OK && sc_group_report(c, 0, &(sc_member_status){0})) {
        json_t *d = delivery_json(c);
        if (g.json) {
            json_t *o = json_object();
            json_object_set_new(o, "type", json_string("partly_sent"));
            json_object_set_new(o, "group", json_string(to));
            json_object_set_new(o, "timestamp", json_integer((json_int_t)ts));
            json_object_set_new(o, "delivery", d ? d : json_array());
            json_line(o);
        } else {
            json_decref(d);
            printf("sent to the other members of %s (timestamp %llu); not yet to:\n", to,
                   (unsigned long long)ts);
            print_delivery(c);
        }
        if (rc == SC_E_UNTRUSTED) {
            char msg[700];
            snprintf(msg, sizeof msg,
                     "%s; the message is queued for that member (after the group changes"
                     " queued before it)",
                     sc_errmsg(c));
            return report(rc, msg);
        }
    }
    if (rc == SC_E_RETRY || (rc == SC_E_NETWORK && ts != 0))
        return report_queued(c, rc, "message");
    if (rc != SC_OK)
        return report(rc, sc_errmsg(c));
    if (g.json) {
        json_t *o = json_object();
        json_object_set_new(o, "type", json_string("sent"));
        json_object_set_new(o, to_group ? "group" : "to", json_string(to));
        json_object_set_new(o, "timestamp", json_integer((json_int_t)ts));
        if (so.edit_timestamp)
            json_object_set_new(o, "edit_of", json_integer((json_int_t)so.edit_timestamp));
        if (to_group) {
            json_t *d = delivery_json(c);
            if (d)
                json_object_set_new(o, "delivery", d);
        }
        json_line(o);
    } else if (so.edit_timestamp) {
        printf("edited %llu in %s (timestamp %llu)\n", (unsigned long long)so.edit_timestamp, to,
               (unsigned long long)ts);
    } else {
        printf("sent to %s (timestamp %llu)\n", to, (unsigned long long)ts);
    }
    return EXIT_OK;
}

/* ---- issue 11: msgops (react, delete, edits) ---- */

/* The conversation argument: CONTACT, or GROUP after --group. */
static int msgops_conv(const char *cmd, int argc, char **argv, const char *const *value_opts,
                       bool *group, const char **conv, char **rest, int *nrest)
{
    *group = false;
    *conv = NULL;
    *nrest = 0;
    for (int i = 0; i < argc; i++) {
        bool takes = false;
        for (size_t k = 0; value_opts[k]; k++)
            if (strcmp(argv[i], value_opts[k]) == 0)
                takes = true;
        if (strcmp(argv[i], "--group") == 0 && i + 1 < argc && *conv == NULL) {
            *group = true;
            *conv = argv[++i];
        } else if (strcmp(argv[i], "--") == 0) {
            for (i++; i < argc; i++) {
                if (*conv == NULL)
                    *conv = argv[i];
                else
                    rest[(*nrest)++] = argv[i];
            }
        } else if (takes && i + 1 < argc) {
            rest[(*nrest)++] = argv[i];
            rest[(*nrest)++] = argv[++i];
        } else if (argv[i][0] == '-' && argv[i][1] != '\0' && !takes) {
            rest[(*nrest)++] = argv[i];
        } else if (*conv == NULL) {
            *conv = argv[i];
        } else {
            rest[(*nrest)++] = argv[i];
        }
    }
    if (*conv == NULL)
        return usage_error("%s: missing CONTACT or --group GROUP", cmd);
    return EXIT_OK;
}

static const char *const react_value_opts[] = {"--group", "--target-author", "--target-timestamp",
                                               NULL};
static const char *const delete_value_opts[] = {"--group", "--target-timestamp", NULL};
static const char *const edits_value_opts[] = {"--group", "--author", NULL};

/* The result line of react / delete. */
static int msgops_result(sc_client *c, int rc, uint64_t ts, const char *type, const char *conv,
                         bool group, const char *target_author, uint64_t target_ts,
                         const char *emoji, bool remove)
{
    rc = retry_queued(c, rc, NULL);
    if (rc == SC_E_RETRY || (rc == SC_E_NETWORK && ts != 0))
        return report_queued(c, rc, type);
    if (rc != SC_OK)
        return report(rc, sc_errmsg(c));
    if (g.json) {
        json_t *o = json_object(), *t = json_object();
        json_object_set_new(o, "type", json_string(type));
        json_object_set_new(o, group ? "group" : "to", json_string(conv));
        json_object_set_new(o, "timestamp", json_integer((json_int_t)ts));
        json_object_set_new(t, "author", json_string(target_author));
        json_object_set_new(t, "timestamp", json_integer((json_int_t)target_ts));
        json_object_set_new(o, "target", t);
        if (emoji) {
            json_object_set_new(o, "emoji", json_string(emoji));
            json_object_set_new(o, "remove", json_boolean(remove));
        }
        json_line(o);
    } else if (emoji && remove) {
        printf("removed your reaction from %s's message %llu in %s (timestamp %llu)\n",
               target_author, (unsigned long long)target_ts, conv, (unsigned long long)ts);
    } else if (emoji) {
        printf("reacted %s on %s's message %llu in %s (timestamp %llu)\n", emoji, target_author,
               (unsigned long long)target_ts, conv, (unsigned long long)ts);
    } else {
        printf("deleted %llu for everyone in %s (timestamp %llu)\n", (unsigned long long)target_ts,
               conv, (unsigned long long)ts);
    }
    return EXIT_OK;
}

static int cmd_react(sc_client *c, int argc, char **argv)
{
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    const char *conv = NULL, *author = NULL, *emoji = NULL;
    bool group = false, remove = false;
    uint64_t target = 0, ts = 0;
    int nrest = 0, rc;

    if (rest == NULL)
        return report(SC_E_INTERNAL, "out of memory");
    rc = msgops_conv("react", argc, argv, react_value_opts, &group, &conv, rest, &nrest);
    for (int i = 0; rc == EXIT_OK && i < nrest; i++) {
        if (strcmp(rest[i], "--target-author") == 0 && i + 1 < nrest)
            author = rest[++i];
        else if (strcmp(rest[i], "--target-timestamp") == 0 && i + 1 < nrest)
            rc = msgops_ts("react", rest[i], rest[i + 1], &target), i++;
        else if (strcmp(rest[i], "--remove") == 0)
            remove = true;
        else if (rest[i][0] == '-' && rest[i][1] != '\0')
            rc = usage_error("react: unknown option %s", rest[i]);
        else if (emoji == NULL)
            emoji = rest[i];
        else
            rc = usage_error("react: unexpected argument %s", rest[i]);
    }
    free(rest);
    if (rc != EXIT_OK)
        return rc;
    if (author == NULL || target == 0)
        return usage_error("react: give --target-author NAME and --target-timestamp TS");
    if (emoji == NULL && !remove)
        return usage_error("react: missing EMOJI");
    rc = sc_send_reaction(c, conv, group, author, target, emoji, remove, &ts);
    return msgops_result(c, rc, ts, "reaction", conv, group, author, target, emoji ? emoji : "",
                         remove);
}

static int cmd_remote_delete(sc_client *c, int argc, char **argv)
{
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    const char *conv = NULL;
    bool group = false;
    uint64_t target = 0, ts = 0;
    int nrest = 0, rc;

    if (rest == NULL)
        return report(SC_E_INTERNAL, "out of memory");
    rc = msgops_conv("delete", argc, argv, delete_value_opts, &group, &conv, rest, &nrest);
    for (int i = 0; rc == EXIT_OK && i < nrest; i++) {
        if (strcmp(rest[i], "--target-timestamp") == 0 && i + 1 < nrest)
            rc = msgops_ts("delete", rest[i], rest[i + 1], &target), i++;
        else
            rc = usage_error("delete: unexpected argument %s", rest[i]);
    }
    free(rest);
    if (rc != EXIT_OK)
        return rc;
    if (target == 0)
        return usage_error("delete: give --target-timestamp TS (your message's timestamp)");
    rc = sc_remote_delete(c, conv, group, target, &ts);
    return msgops_result(c, rc, ts, "deleted", conv, group, sc_username(c), target, NULL, false);
}

static void print_edit_version(void *ud, const sc_edit_version *v)
{
    char when[32];
    (void)ud;
    if (g.json) {
        json_t *o = json_object();
        json_object_set_new(o, "type", json_string("edit_version"));
        json_object_set_new(o, "author", json_string(v->author));
        json_object_set_new(o, "target_timestamp", json_integer((json_int_t)v->target_timestamp));
        json_object_set_new(o, "timestamp", json_integer((json_int_t)v->timestamp));
        json_object_set_new(o, "body", json_stringn(v->body, v->body_len));
        json_object_set_new(o, "original", json_boolean(v->original));
        json_object_set_new(o, "current", json_boolean(v->current));
        json_line(o);
        return;
    }
    fmt_time(v->timestamp, when, sizeof when);
    printf("[%s] #%llu%s%s: ", when, (unsigned long long)v->timestamp,
           v->original ? " (original)" : "", v->current ? " (shown)" : "");
    put_text(v->body, v->body_len);
    printf("\n");
    output_or_die();
}

static int cmd_edits(sc_client *c, int argc, char **argv)
{
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    const char *conv = NULL, *author = NULL;
    bool group = false;
    uint64_t target = 0;
    int nrest = 0, rc;

    if (rest == NULL)
        return report(SC_E_INTERNAL, "out of memory");
    rc = msgops_conv("edits", argc, argv, edits_value_opts, &group, &conv, rest, &nrest);
    for (int i = 0; rc == EXIT_OK && i < nrest; i++) {
        if (strcmp(rest[i], "--author") == 0 && i + 1 < nrest)
            author = rest[++i];
        else if (target == 0 && rest[i][0] != '-')
            rc = msgops_ts("edits", "TIMESTAMP", rest[i], &target);
        else
            rc = usage_error("edits: unexpected argument %s", rest[i]);
    }
    free(rest);
    if (rc != EXIT_OK)
        return rc;
    if (target == 0)
        return usage_error("edits: missing TIMESTAMP (the message's #id)");
    rc = sc_edit_history(c, conv, group, author, target, print_edit_version, NULL);
    return report(rc, sc_errmsg(c));
}

/* listen: the server lost and back, on stderr (stdout stays the events) */
static void on_conn_change(void *ud, bool up, const char *why)
{
    (void)ud;
    if (up) {
        fputs("sotto: connected to the server again\n", stderr);
        return;
    }
    fputs("sotto: lost the connection to the server (", stderr);
    if (isatty(2))
        ts_write(stderr, why, strlen(why), TS_NAME);
    else
        fputs(why, stderr);
    fputs("); reconnecting\n", stderr);
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
        sc_set_conn_watch(c, on_conn_change, NULL);
    }
    rc = sc_receive(c, stay, &g_stop, print_event, NULL);
    if (rc == SC_E_RETRY)
        return report_queued(c, rc, "message");
    return report(rc, sc_errmsg(c));
}

/* An event the daemon handed us (the object `--json receive` prints, see
 * print_event) printed exactly as print_event prints it here. */
static const char *jget_str(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key)); /* NULL when null/absent */
}

/* The arrays daemon_event_everyday() allocates (free() each). */
typedef struct daemon_ev_arrays {
    uint64_t *ts;
    sc_mention *mentions;
    sc_reaction_info *reactions;
    sc_receipt_info *receipts;
} daemon_ev_arrays;

static uint64_t jget_u64(json_t *o, const char *key)
{
    json_int_t v = json_integer_value(json_object_get(o, key));
    return v > 0 ? (uint64_t)v : 0;
}

/* The issue-11 fields of a daemon event (the JSON everyday_json wrote)
 * back into ev, so that receive/listen through the daemon print what a
 * direct one prints. Strings point into o. */
static void daemon_event_everyday(json_t *o, sc_event *ev, daemon_ev_arrays *a)
{
    json_t *t = json_object_get(o, "target"), *q = json_object_get(o, "quote");
    json_t *ts = json_object_get(o, "timestamps"), *ms = json_object_get(o, "mentions");
    json_t *rs = json_object_get(o, "reactions"), *rc = json_object_get(o, "receipts");

    memset(a, 0, sizeof *a);
    ev->conversation = jget_str(o, "conversation");
    if (json_is_object(t)) {
        ev->target_author = jget_str(t, "author");
        ev->target_timestamp = jget_u64(t, "timestamp");
    }
    ev->emoji = jget_str(o, "emoji");
    ev->reaction_remove = json_is_true(json_object_get(o, "remove"));
    ev->receipt_type = jget_str(o, "receipt_type");
    if (ev->kind == SC_EV_TYPING) {
        const char *act = jget_str(o, "action");
        ev->typing_started = act && strcmp(act, "started") == 0;
    }
    ev->expire_timer_s = (uint32_t)jget_u64(o, "expire_timer");
    ev->expires_at_ms = jget_u64(o, "expires_at");
    if (json_is_object(q)) {
        ev->quote_author = jget_str(q, "author");
        ev->quote_timestamp = jget_u64(q, "timestamp");
        ev->quote_text = jget_str(q, "text");
    }
    ev->mentions_me = json_is_true(json_object_get(o, "mentions_me"));
    ev->edited = json_is_true(json_object_get(o, "edited"));
    ev->edited_timestamp = jget_u64(o, "edited_timestamp");
    ev->deleted = json_is_true(json_object_get(o, "deleted"));
    ev->read_ms = json_is_true(json_object_get(o, "read")) ? 1 : 0;
    ev->display_name = jget_str(o, "display_name");
    if (json_is_array(ts) && json_array_size(ts) > 0 &&
        (a->ts = calloc(json_array_size(ts), sizeof *a->ts)) != NULL) {
        for (size_t i = 0; i < json_array_size(ts); i++) {
            json_int_t v = json_integer_value(json_array_get(ts, i));
            a->ts[i] = v > 0 ? (uint64_t)v : 0;
        }
        ev->receipt_timestamps = a->ts;
        ev->n_receipt_timestamps = json_array_size(ts);
    }
    if (json_is_array(ms) && json_array_size(ms) > 0 &&
        (a->mentions = calloc(json_array_size(ms), sizeof *a->mentions)) != NULL) {
        for (size_t i = 0; i < json_array_size(ms); i++) {
            json_t *x = json_array_get(ms, i);
            a->mentions[i].name = jget_str(x, "name");
            a->mentions[i].start = (uint32_t)jget_u64(x, "start");
            a->mentions[i].length = (uint32_t)jget_u64(x, "length");
        }
        ev->mentions = a->mentions;
        ev->n_mentions = json_array_size(ms);
    }
    if (json_is_array(rs) && json_array_size(rs) > 0 &&
        (a->reactions = calloc(json_array_size(rs), sizeof *a->reactions)) != NULL) {
        for (size_t i = 0; i < json_array_size(rs); i++) {
            json_t *x = json_array_get(rs, i);
            a->reactions[i].reactor = jget_str(x, "from");
            a->reactions[i].emoji = jget_str(x, "emoji");
            a->reactions[i].timestamp = jget_u64(x, "timestamp");
        }
        ev->reactions = a->reactions;
        ev->n_reactions = json_array_size(rs);
    }
    if (json_is_array(rc) && json_array_size(rc) > 0 &&
        (a->receipts = calloc(json_array_size(rc), sizeof *a->receipts)) != NULL) {
        for (size_t i = 0; i < json_array_size(rc); i++) {
            json_t *x = json_array_get(rc, i);
            a->receipts[i].recipient = jget_str(x, "recipient");
            a->receipts[i].state = jget_str(x, "state");
            a->receipts[i].at_ms = jget_u64(x, "at");
        }
        ev->receipts = a->receipts;
        ev->n_receipts = json_array_size(rc);
    }
}

static void print_daemon_event(void *ud, const char *text)
{
    json_t *o = json_loads(text, 0, NULL), *gr, *m, *at, *body;
    const char *type = jget_str(o, "type");
    daemon_ev_arrays ed;
    sc_event ev;
    const char **members = NULL;
    sc_attachment_info *atts = NULL;
    (void)ud;

    if (o == NULL || type == NULL) {
        json_decref(o);
        return;
    }
    memset(&ev, 0, sizeof ev);
    ev.kind = strcmp(type, "outgoing") == 0   ? SC_EV_SENT
              : strcmp(type, "group") == 0    ? SC_EV_GROUP
              : strcmp(type, "notice") == 0   ? SC_EV_NOTICE
              : strcmp(type, "receipt") == 0  ? SC_EV_RECEIPT
              : strcmp(type, "typing") == 0   ? SC_EV_TYPING
              : strcmp(type, "reaction") == 0 ? SC_EV_REACTION
              : strcmp(type, "edit") == 0     ? SC_EV_EDIT
              : strcmp(type, "delete") == 0   ? SC_EV_DELETE
              : strcmp(type, "timer") == 0    ? SC_EV_TIMER
              : strcmp(type, "read") == 0     ? SC_EV_READ
                                              : SC_EV_MESSAGE;
    daemon_event_everyday(o, &ev, &ed);
    ev.id = (int64_t)json_integer_value(json_object_get(o, "id"));
    ev.sender = jget_str(o, "from");
    ev.sender_device = (uint32_t)json_integer_value(json_object_get(o, "device"));
    ev.destination = jget_str(o, "to");
    ev.timestamp = (uint64_t)json_integer_value(json_object_get(o, "timestamp"));
    ev.server_timestamp = (uint64_t)json_integer_value(json_object_get(o, "server_timestamp"));
    ev.request = json_is_true(json_object_get(o, "request")); /* issue 11: a message request */
    gr = json_object_get(o, "group");
    if (json_is_object(gr)) {
        ev.group_id = jget_str(gr, "id");
        ev.group_name = jget_str(gr, "name");
    }
    ev.notice = jget_str(o, "code");
    ev.group_action = jget_str(o, "action");
    m = json_object_get(o, "members");
    if (json_is_array(m) && json_array_size(m) > 0 &&
        (members = calloc(json_array_size(m), sizeof *members)) != NULL) {
        for (size_t i = 0; i < json_array_size(m); i++)
            members[i] = json_string_value(json_array_get(m, i));
        ev.group_members = members;
        ev.n_group_members = json_array_size(m);
    }
    body = json_object_get(o, "body");
    if (json_is_string(body)) {
        ev.body = json_string_value(body);
        ev.body_len = json_string_length(body);
    }
    at = json_object_get(o, "attachments");
    if (json_is_array(at) && json_array_size(at) > 0 &&
        (atts = calloc(json_array_size(at), sizeof *atts)) != NULL) {
        for (size_t i = 0; i < json_array_size(at); i++) {
            json_t *a = json_array_get(at, i);
            atts[i].file_name = jget_str(a, "file_name");
            atts[i].content_type = jget_str(a, "content_type");
            atts[i].size = (uint64_t)json_integer_value(json_object_get(a, "size"));
            atts[i].path = jget_str(a, "path");
            atts[i].error = jget_str(a, "error");
        }
        ev.attachments = atts;
        ev.n_attachments = json_array_size(at);
    }
    print_event(NULL, &ev); /* output_or_die: unwritten, it stays unacknowledged */
    free(members);
    free(atts);
    free(ed.ts);
    free(ed.mentions);
    free(ed.reactions);
    free(ed.receipts);
    json_decref(o);
}

/* receive/listen while a daemon holds the account: what it received,
 * through its subscriber "cli" (docs/rpc.md "The CLI through the daemon");
 * -1 when the daemon could not be reached (the caller reports the lock). */
static int receive_via_daemon(const char *sock, bool stay, int argc)
{
    int rc;
    if (argc != 0)
        return usage_error("%s: unexpected argument", stay ? "listen" : "receive");
    if (stay) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
    }
    rc = sotto_daemon_receive(sock, g.account, stay, 500, &g_stop, print_daemon_event, NULL);
    if (rc == SOTTO_DAEMON_UNREACHABLE)
        return -1;
    if (rc == SOTTO_DAEMON_GONE)
        return report(SC_E_NETWORK, "the daemon stopped (connection closed); what was not shown"
                                    " is shown by the next receive or listen");
    return EXIT_OK;
}

static void print_contact(void *ud, const sc_contact_info *ci)
{
    /* "verified" is about the keys the user compared: after a change the
     * current keys are not verified until `trust` */
    bool verified = ci->verified && !ci->identity_changed;
    bool accepted = false, blocked = false; /* issue 11 (requests.c) */
    char *pname = NULL;                     /* issue 11: their profile name (profile.c) */
    if (ud)
        (void)sc_contact_request_state(ud, ci->name, &accepted, &blocked);
    if (ud)
        (void)sc_profile_display_name(ud, ci->name, &pname);
    if (g.json) {
        json_t *o = json_object();
        json_object_set_new(o, "type", json_string("contact"));
        json_object_set_new(o, "name", json_string(ci->name));
        json_object_set_new(o, "devices", json_integer((json_int_t)ci->n_devices));
        json_object_set_new(o, "identity_changed", json_boolean(ci->identity_changed));
        json_object_set_new(o, "verified", json_boolean(verified));
        json_object_set_new(o, "accepted", json_boolean(accepted));
        json_object_set_new(o, "blocked", json_boolean(blocked));
        json_object_set_new(o, "profile_name", jstr_or_null(pname));
        {
            uint32_t secs = 0; /* issue 11: the disappearing timer (expire.c) */
            if (ud)
                (void)sc_timer_get(ud, ci->name, false, &secs);
            json_object_set_new(o, "expire_timer", json_integer(secs));
        }
        json_line(o);
    } else {
        put_str(ci->name);
        if (pname) {
            printf(" (");
            put_str(pname);
            printf(")");
        }
        printf("  devices: %zu%s%s%s\n", ci->n_devices, verified ? "  verified" : "",
               ci->identity_changed ? "  SAFETY NUMBER CHANGED (see: sotto trust)" : "",
               blocked ? "  blocked" : "");
    }
    free(pname);
}

static int cmd_contacts(sc_client *c, int argc, char **argv)
{
    (void)argv;
    if (argc != 0)
        return usage_error("contacts: unexpected argument");
    return report(sc_contacts(c, print_contact, c), sc_errmsg(c));
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

/* ---- issue 11: message requests and blocking (requests.c) ---- */

/* CONTACT | --group GROUP (one of them) into *conv, *group. */
static int req_conv_args(const char *cmd, int argc, char **argv, const char **conv, bool *group)
{
    *conv = NULL;
    *group = false;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--group") == 0)
            *group = true;
        else if (argv[i][0] == '-')
            return usage_error("%s: unknown option %s", cmd, argv[i]);
        else if (*conv == NULL)
            *conv = argv[i];
        else
            return usage_error("%s: unexpected argument %s", cmd, argv[i]);
    }
    if (*conv == NULL)
        return usage_error("usage: sotto %s CONTACT | --group GROUP", cmd);
    return EXIT_OK;
}

/* The --json object naming a conversation: "conversation" or "group_id". */
static json_t *req_conv_json(sc_client *c, const char *type, const char *conv, bool group)
{
    json_t *o = json_object();
    char hex[33];

    json_object_set_new(o, "type", json_string(type));
    if (group && sc_group_find(c, conv, hex) == SC_OK)
        json_object_set_new(o, "group_id", json_string(hex));
    else
        json_object_set_new(o, group ? "group" : "conversation", json_string(conv));
    return o;
}

static int cmd_accept(sc_client *c, int argc, char **argv)
{
    const char *conv;
    bool group;
    int rc = req_conv_args("accept", argc, argv, &conv, &group);

    if (rc != EXIT_OK)
        return rc;
    rc = sc_accept(c, conv, group);
    if (rc != SC_OK)
        return report(rc, sc_errmsg(c));
    if (g.json) {
        json_line(req_conv_json(c, "accepted", conv, group));
    } else {
        printf("accepted %s", group ? "group " : "");
        put_str(conv);
        printf("\n");
    }
    return EXIT_OK;
}

static int req_delete(sc_client *c, int argc, char **argv)
{
    const char *conv;
    bool group;
    size_t wiped = 0;
    int rc = req_conv_args("request delete", argc, argv, &conv, &group);

    if (rc != EXIT_OK)
        return rc;
    rc = sc_request_delete(c, conv, group, &wiped);
    if (rc != SC_OK)
        return report(rc, sc_errmsg(c));
    if (g.json) {
        json_t *o = req_conv_json(c, "request_deleted", conv, group);
        json_object_set_new(o, "deleted", json_integer((json_int_t)wiped));
        json_line(o);
    } else {
        printf("deleted the message request of %s", group ? "group " : "");
        put_str(conv);
        printf(" (%zu message%s)\n", wiped, wiped == 1 ? "" : "s");
    }
    return EXIT_OK;
}

static int block_cmd(sc_client *c, int argc, char **argv, bool block)
{
    const char *what = block ? "block" : "unblock";
    size_t changed = 0;
    int rc;

    for (int i = 0; i < argc; i++)
        if (argv[i][0] == '-')
            return usage_error("%s: unknown option %s", what, argv[i]);
    if (argc < 1)
        return usage_error("usage: sotto %s NAME...", what);
    rc = block ? sc_block(c, (const char *const *)argv, (size_t)argc, &changed)
               : sc_unblock(c, (const char *const *)argv, (size_t)argc, &changed);
    if (rc != SC_OK)
        return report(rc, sc_errmsg(c));
    if (g.json) {
        json_t *o = json_object(), *a = json_array();
        json_object_set_new(o, "type", json_string(block ? "blocked" : "unblocked"));
        for (int i = 0; i < argc; i++)
            json_array_append_new(a, json_string(argv[i]));
        json_object_set_new(o, "names", a);
        json_object_set_new(o, "changed", json_integer((json_int_t)changed));
        json_line(o);
    } else {
        printf("%s", block ? "blocked" : "unblocked");
        for (int i = 0; i < argc; i++) {
            printf(" ");
            put_str(argv[i]);
        }
        /* say so when nothing changed (`--json`: "changed") */
        if (changed == 0)
            printf(block ? " (already blocked)" : " (was not blocked)");
        printf("\n");
    }
    if (block && changed > 0) {
        /* issue 12: the block rotated our profile key (sc_block) */
        bool due = false;
        if (sc_profile_rotate_due(c, &due) == SC_OK && due)
            fprintf(stderr,
                    "note: the profile key could not be replaced now (%s); it is"
                    " retried at the next receive\n",
                    sc_errmsg(c));
    }
    return EXIT_OK;
}

static int cmd_block(sc_client *c, int argc, char **argv)
{
    return block_cmd(c, argc, argv, true);
}

static int cmd_unblock(sc_client *c, int argc, char **argv)
{
    return block_cmd(c, argc, argv, false);
}

static void print_blocked(void *ud, const char *name, uint64_t at_ms)
{
    size_t *n = ud;
    (*n)++;
    if (g.json) {
        json_t *o = json_object();
        json_object_set_new(o, "type", json_string("blocked_contact"));
        json_object_set_new(o, "name", json_string(name));
        json_object_set_new(o, "blocked_ms", json_integer((json_int_t)at_ms));
        json_line(o);
    } else {
        put_str(name);
        printf("\n");
    }
}

static int cmd_blocked(sc_client *c, int argc, char **argv)
{
    size_t n = 0;
    int rc;
    (void)argv;
    if (argc != 0)
        return usage_error("blocked: unexpected argument");
    rc = sc_blocked(c, print_blocked, &n);
    if (rc == SC_OK && n == 0 && !g.json)
        printf("nobody is blocked\n");
    return report(rc, sc_errmsg(c));
}

static void print_request(void *ud, const sc_request_info *ri)
{
    size_t *n = ud;
    bool group = strcmp(ri->conv_kind, "group") == 0;
    (*n)++;
    if (g.json) {
        json_t *o = json_object();
        json_object_set_new(o, "type", json_string("request"));
        if (group) {
            json_object_set_new(o, "group_id", json_string(ri->conv));
            if (ri->group_name)
                json_object_set_new(o, "group_name", json_string(ri->group_name));
        } else {
            json_object_set_new(o, "conversation", json_string(ri->conv));
        }
        json_object_set_new(o, "count", json_integer((json_int_t)ri->count));
        json_object_set_new(o, "first_timestamp", json_integer((json_int_t)ri->first_timestamp));
        json_object_set_new(o, "last_timestamp", json_integer((json_int_t)ri->last_timestamp));
        json_object_set_new(o, "excerpt", json_string(ri->excerpt));
        json_line(o);
    } else {
        if (group) {
            printf("group ");
            put_str(ri->group_name ? ri->group_name : ri->conv);
        } else {
            put_str(ri->conv);
        }
        printf("  %zu message%s: ", ri->count, ri->count == 1 ? "" : "s");
        put_text(ri->excerpt, strlen(ri->excerpt));
        printf("\n");
    }
}

static int cmd_requests(sc_client *c, int argc, char **argv)
{
    size_t n = 0;
    int rc;
    (void)argv;
    if (argc != 0)
        return usage_error("requests: unexpected argument");
    rc = sc_requests(c, print_request, &n);
    if (rc == SC_OK && n == 0 && !g.json)
        printf("no message requests\n");
    return report(rc, sc_errmsg(c));
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

static const char *member_state_name(sc_member_state s)
{
    return s == SC_MEMBER_SENT ? "sent" : s == SC_MEMBER_QUEUED ? "queued" : "refused";
}

/* The per-member outcome of the last group change or group send
 * (sc_group_report): a JSON array, or NULL when there is none. */
static json_t *delivery_json(sc_client *c)
{
    sc_member_status st;
    json_t *arr = NULL;

    for (size_t i = 0; sc_group_report(c, i, &st); i++) {
        json_t *o = json_object();
        if (arr == NULL)
            arr = json_array();
        json_object_set_new(o, "member", json_string(st.member));
        json_object_set_new(o, "status", json_string(member_state_name(st.state)));
        json_object_set_new(o, "reason", json_string(st.reason));
        json_array_append_new(arr, o);
    }
    return arr;
}

/* Text: one line per member not sent to ("  carol: queued: REASON"). */
static void print_delivery(sc_client *c)
{
    sc_member_status st;

    for (size_t i = 0; sc_group_report(c, i, &st); i++) {
        if (st.state == SC_MEMBER_SENT)
            continue;
        printf("  ");
        put_str(st.member);
        printf(": %s: ", member_state_name(st.state));
        put_str(st.reason);
        printf("\n");
    }
}

/* print_group's ud: a group change's client (its delivery is shown) or NULL */
static void print_group(void *ud, const sc_group_info *gi)
{
    sc_client *c = ud;
    if (g.json) {
        json_t *o = json_object(), *m = json_array(), *a = json_array(), *d;
        json_object_set_new(o, "type", json_string("group"));
        json_object_set_new(o, "id", json_string(gi->id_hex));
        json_object_set_new(o, "name", json_string(gi->name));
        for (size_t i = 0; i < gi->n_members; i++)
            json_array_append_new(m, json_string(gi->members[i]));
        json_object_set_new(o, "members", m);
        json_object_set_new(o, "active", json_boolean(gi->active));
        json_object_set_new(o, "revision", json_integer((json_int_t)gi->revision));
        for (size_t i = 0; i < gi->n_admins; i++)
            json_array_append_new(a, json_string(gi->admins[i]));
        json_object_set_new(o, "admins", a);
        json_object_set_new(o, "open", json_boolean(gi->open));
        if (c && (d = delivery_json(c)) != NULL)
            json_object_set_new(o, "delivery", d);
        json_line(o);
    } else {
        printf("%s  ", gi->id_hex);
        put_str(gi->name);
        printf("%s  members:", gi->active ? "" : " (left)");
        for (size_t i = 0; i < gi->n_members; i++) {
            printf(" ");
            put_str(gi->members[i]);
            for (size_t k = 0; k < gi->n_admins; k++)
                if (strcmp(gi->admins[k], gi->members[i]) == 0)
                    printf("*");
        }
        printf("  revision %llu%s\n", (unsigned long long)gi->revision,
               gi->open ? "  (open: every member may change it)" : "");
        if (c)
            print_delivery(c);
    }
}

typedef struct find_group {
    const char *id;
    sc_client *c;
} find_group;

static void print_group_if(void *ud, const sc_group_info *gi)
{
    find_group *f = ud;
    if (strcmp(gi->id_hex, f->id) == 0)
        print_group(f->c, gi);
}

/* The group's id before a change (a rename changes the name); "" when
 * GROUP names no group (the change itself then reports it). */
static void group_id_before(sc_client *c, const char *ref, char id[33])
{
    if (sc_group_find(c, ref, id) != SC_OK)
        id[0] = '\0';
}

/* After a group change: prints the group's new state; a change that could
 * not be sent now stays queued (exit 3). */
static int group_changed(sc_client *c, int rc, const char *id)
{
    rc = retry_queued(c, rc, NULL);
    if (rc != SC_OK && rc != SC_E_NETWORK && rc != SC_E_RETRY && rc != SC_E_UNTRUSTED)
        return report(rc, sc_errmsg(c));
    if (rc == SC_E_UNTRUSTED && (id[0] == '\0' || !sc_group_report(c, 0, &(sc_member_status){0})))
        return report(rc, sc_errmsg(c)); /* refused before the change */
    if (id[0] != '\0') {
        find_group f = {id, c};
        (void)sc_group_list(c, print_group_if, &f);
    }
    if (rc == SC_E_UNTRUSTED) {
        /* made and sent to the others; the copy for a member whose safety
         * number changed waits for `sotto trust MEMBER` (exit 5) */
        char msg[700];
        snprintf(msg, sizeof msg, "%s; the group change is queued for that member until then",
                 sc_errmsg(c));
        return report(rc, msg);
    }
    if (rc != SC_OK)
        return report_queued(c, rc, "group change");
    return EXIT_OK;
}

/* "--" ends the options; group names and members are taken as given */
static void drop_dashdash(int *argc, char **argv)
{
    for (int i = 0; i < *argc; i++)
        if (strcmp(argv[i], "--") == 0) {
            memmove(argv + i, argv + i + 1, (size_t)(*argc - i - 1) * sizeof *argv);
            (*argc)--;
            return;
        }
}

static int grp_create(sc_client *c, int argc, char **argv)
{
    char id[33] = "";
    drop_dashdash(&argc, argv);
    if (argc < 1)
        return usage_error("usage: sotto group create NAME [MEMBER...]");
    return group_changed(
        c, sc_group_create(c, argv[0], (const char *const *)argv + 1, (size_t)argc - 1, id), id);
}

static int grp_add(sc_client *c, int argc, char **argv)
{
    char id[33] = "";
    drop_dashdash(&argc, argv);
    if (argc < 2)
        return usage_error("usage: sotto group add GROUP MEMBER...");
    group_id_before(c, argv[0], id);
    return group_changed(
        c, sc_group_add(c, argv[0], (const char *const *)argv + 1, (size_t)argc - 1), id);
}

static int grp_remove(sc_client *c, int argc, char **argv)
{
    char id[33] = "";
    drop_dashdash(&argc, argv);
    if (argc < 2)
        return usage_error("usage: sotto group remove GROUP MEMBER...");
    group_id_before(c, argv[0], id);
    return group_changed(
        c, sc_group_remove(c, argv[0], (const char *const *)argv + 1, (size_t)argc - 1), id);
}

static int grp_leave(sc_client *c, int argc, char **argv)
{
    char id[33] = "";
    drop_dashdash(&argc, argv);
    if (argc != 1)
        return usage_error("usage: sotto group leave GROUP");
    group_id_before(c, argv[0], id);
    return group_changed(c, sc_group_leave(c, argv[0]), id);
}

static int grp_rename(sc_client *c, int argc, char **argv)
{
    char id[33] = "";
    drop_dashdash(&argc, argv);
    if (argc != 2)
        return usage_error("usage: sotto group rename GROUP NEWNAME");
    group_id_before(c, argv[0], id);
    return group_changed(c, sc_group_rename(c, argv[0], argv[1]), id);
}

static int grp_admin(sc_client *c, int argc, char **argv)
{
    char id[33] = "";
    drop_dashdash(&argc, argv);
    if (argc != 3 || (strcmp(argv[0], "add") != 0 && strcmp(argv[0], "remove") != 0))
        return usage_error("usage: sotto group admin add|remove GROUP MEMBER");
    group_id_before(c, argv[1], id);
    return group_changed(c, sc_group_admin(c, argv[1], argv[2], strcmp(argv[0], "add") == 0), id);
}

static int grp_open_close(sc_client *c, int argc, char **argv, bool open)
{
    char id[33] = "";
    drop_dashdash(&argc, argv);
    if (argc != 1)
        return usage_error("usage: sotto group %s GROUP", open ? "open" : "close");
    group_id_before(c, argv[0], id);
    return group_changed(c, sc_group_set_open(c, argv[0], open), id);
}

static int grp_open(sc_client *c, int argc, char **argv)
{
    return grp_open_close(c, argc, argv, true);
}

static int grp_close(sc_client *c, int argc, char **argv)
{
    return grp_open_close(c, argc, argv, false);
}

static int grp_list(sc_client *c, int argc, char **argv)
{
    (void)argv;
    if (argc != 0)
        return usage_error("usage: sotto group list");
    return report(sc_group_list(c, print_group, NULL), sc_errmsg(c));
}

static int grp_send(sc_client *c, int argc, char **argv)
{
    return do_send(c, argc, argv, true);
}

static int cmd_group(sc_client *c, int argc, char **argv); /* after the table */

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
    size_t left = 0, before = 0, after = 0, sent;
    int rc;
    (void)argv;
    if (argc != 0)
        return usage_error("flush: unexpected argument");
    rc = sc_outbox_count(c, &before);
    if (rc == SC_OK)
        rc = retry_queued(c, sc_flush(c, &left), &left);
    if (rc == SC_E_RETRY)
        return report_queued(c, rc, "message");
    if (rc == SC_OK)
        rc = sc_outbox_count(c, &after);
    if (rc != SC_OK)
        return report(rc, sc_errmsg(c));
    /* flush succeeds only when every row it took was delivered */
    sent = before > after ? before - after : 0;
    if (g.json) {
        json_t *o = json_object();
        json_object_set_new(o, "type", json_string("flushed"));
        json_object_set_new(o, "queued", json_integer((json_int_t)left));
        json_object_set_new(o, "sent", json_integer((json_int_t)sent));
        json_line(o);
    } else if (before == 0) {
        printf("nothing was queued\n");
    } else {
        printf("sent %zu queued message%s; ", sent, sent == 1 ? "" : "s");
        if (after == 0)
            printf("queue empty\n");
        else
            printf("%zu still queued\n", after);
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

static int cmd_link_request(sc_client *c, int argc, char **argv)
{
    char code[SC_LINK_CODE_HEX + 1];
    const char *kt_key = NULL, *kt_vrf = NULL, *root = NULL;
    json_t *o;
    int rc, k;
    for (int i = 0; i < argc; i++) {
        if ((k = kt_key_opt(argc, argv, &i, &kt_key, &kt_vrf)) == 0)
            k = sealed_root_opt(argc, argv, &i, &root);
        if (k < 0)
            return EXIT_USAGE;
        if (k == 0)
            return usage_error("link-request: unexpected argument %s", argv[i]);
    }
    if ((rc = kt_pin_given(c, kt_key, kt_vrf)) != EXIT_OK)
        return rc;
    if ((rc = sealed_root_pin_given(c, root)) != EXIT_OK)
        return rc;
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
    json_line(o);
    return EXIT_OK;
}

/* --history-days N (0..SC_LINK_HISTORY_DAYS_MAX) into *days. */
static int parse_history_days(const char *s, int *days)
{
    char *e;
    long v;
    errno = 0;
    v = strtol(s, &e, 10);
    if (errno || *e || e == s || v < 0 || v > SC_LINK_HISTORY_DAYS_MAX)
        return usage_error("--history-days: a number of days, 0 to %d", SC_LINK_HISTORY_DAYS_MAX);
    *days = (int)v;
    return EXIT_OK;
}

static int cmd_device_add(sc_client *c, int argc, char **argv)
{
    uint32_t dev = 0;
    char akey[SC_ACCOUNT_KEY_HEX + 1];
    const char *code = NULL;
    int days = -1;
    json_t *o;
    int rc;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--history-days") == 0 && i + 1 < argc) {
            if ((rc = parse_history_days(argv[++i], &days)) != EXIT_OK)
                return rc;
        } else if (code == NULL && argv[i][0] != '-') {
            code = argv[i];
        } else {
            return usage_error("usage: sotto device-add [--history-days N] CODE");
        }
    }
    if (code == NULL)
        return usage_error("usage: sotto device-add [--history-days N] CODE");
    rc = sc_device_add_ex(c, code, days, &dev, akey);
    if (rc != SC_OK)
        return report(rc, sc_errmsg(c));
    if (!g.json) {
        printf("added device %u\n", dev);
        printf("on the new device run (NAME: the --account you gave link-request there):\n"
               "  sotto --account NAME link-finish %s %u %s\n",
               sc_username(c), dev, akey);
        return EXIT_OK;
    }
    o = json_object();
    json_object_set_new(o, "type", json_string("device_added"));
    json_object_set_new(o, "device", json_integer(dev));
    json_object_set_new(o, "account_key", json_string(akey));
    json_line(o);
    return EXIT_OK;
}

static int cmd_device_sync(sc_client *c, int argc, char **argv)
{
    uint32_t dev = 0;
    int days = -1, rc;
    bool have_dev = false;
    sc_link_sync_info info;
    json_t *o;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--history-days") == 0 && i + 1 < argc) {
            if ((rc = parse_history_days(argv[++i], &days)) != EXIT_OK)
                return rc;
        } else if (!have_dev && parse_device_id(argv[i], &dev) == 0) {
            have_dev = true;
        } else {
            return usage_error("usage: sotto device-sync [--history-days N] DEVICE_ID");
        }
    }
    if (!have_dev)
        return usage_error("usage: sotto device-sync [--history-days N] DEVICE_ID");
    rc = sc_device_sync(c, dev, days, &info);
    if (rc != SC_OK)
        return report(rc, sc_errmsg(c));
    if (!g.json) {
        printf("synced device %u: %zu contacts, %zu groups, %zu history rows (%u days) in %zu"
               " message(s)\n",
               dev, info.contacts, info.groups, info.history, info.history_days, info.parts);
        if (info.skipped)
            printf("%zu history row(s) too large to sync were left out\n", info.skipped);
        return EXIT_OK;
    }
    o = json_object();
    json_object_set_new(o, "type", json_string("device_synced"));
    json_object_set_new(o, "device", json_integer(dev));
    json_object_set_new(o, "contacts", json_integer((json_int_t)info.contacts));
    json_object_set_new(o, "groups", json_integer((json_int_t)info.groups));
    json_object_set_new(o, "history", json_integer((json_int_t)info.history));
    json_object_set_new(o, "skipped", json_integer((json_int_t)info.skipped));
    json_object_set_new(o, "history_days", json_integer((json_int_t)info.history_days));
    json_object_set_new(o, "parts", json_integer((json_int_t)info.parts));
    json_line(o);
    return EXIT_OK;
}

static int cmd_link_finish(sc_client *c, int argc, char **argv)
{
    uint32_t dev = 0;
    json_t *o;
    int rc;
    if (argc != 3 || parse_device_id(argv[1], &dev) != 0)
        return usage_error("usage: sotto link-finish USERNAME DEVICE_ID ACCOUNT_KEY");
    rc = sc_link_finish(c, argv[0], dev, argv[2]);
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
    json_line(o);
    return EXIT_OK;
}

static int cmd_device_remove(sc_client *c, int argc, char **argv)
{
    uint32_t dev = 0;
    json_t *o;
    int rc;
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
    json_line(o);
    return EXIT_OK;
}

static int cmd_promote(sc_client *c, int argc, char **argv)
{
    uint32_t dev = 0;
    json_t *o;
    int rc;
    if (argc != 1 || parse_device_id(argv[0], &dev) != 0)
        return usage_error("usage: sotto promote DEVICE_ID");
    rc = sc_promote(c, dev);
    if (rc != SC_OK)
        return report(rc, sc_errmsg(c));
    if (!g.json) {
        printf("sent the account key to device %u\n", dev);
        printf("device %u will hold the account key once it receives this; this device gives it"
               " up when device %u confirms (next receive/listen)\n",
               dev, dev);
        return EXIT_OK;
    }
    o = json_object();
    json_object_set_new(o, "type", json_string("promote_sent"));
    json_object_set_new(o, "device", json_integer(dev));
    json_line(o);
    return EXIT_OK;
}

static int cmd_send(sc_client *c, int argc, char **argv)
{
    return do_send(c, argc, argv, false);
}

static int cmd_receive_once(sc_client *c, int argc, char **argv)
{
    return cmd_receive(c, argc, argv, false);
}

static int cmd_listen(sc_client *c, int argc, char **argv)
{
    return cmd_receive(c, argc, argv, true);
}

static int bk_create(sc_client *c, int argc, char **argv)
{
    const char *file = NULL;
    bool history = false;
    char code[SC_RECOVERY_CODE_TEXT_BYTES];
    sc_backup_info info;
    int rc;

    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--history") == 0)
            history = true;
        else if (argv[i][0] == '-' && argv[i][1] != '\0')
            return usage_error("backup create: unknown option %s", argv[i]);
        else if (file == NULL)
            file = argv[i];
        else
            return usage_error("usage: sotto backup create FILE [--history]");
    }
    if (file == NULL)
        return usage_error("usage: sotto backup create FILE [--history]");
    rc = sc_backup_create(c, file, history, code, &info);
    if (rc != SC_OK)
        return report(rc, sc_errmsg(c));
    if (g.json) {
        json_t *o = json_object();
        json_object_set_new(o, "type", json_string("backup"));
        json_object_set_new(o, "file", json_string(file));
        json_object_set_new(o, "recovery_code", json_string(code));
        json_object_set_new(o, "contacts", json_integer((json_int_t)info.contacts));
        json_object_set_new(o, "groups", json_integer((json_int_t)info.groups));
        json_object_set_new(o, "history", json_integer((json_int_t)info.history));
        json_line(o);
    } else {
        printf("backup written to %s (%zu contact(s), %zu group(s), %zu history row(s))\n", file,
               info.contacts, info.groups, info.history);
        printf("recovery code: %s\n", code);
        printf("WRITE THE RECOVERY CODE DOWN NOW. It is shown only this once; without it the\n"
               "backup cannot be opened, and anyone with the file and the code can take over\n"
               "your account. Keep the two apart.\n");
    }
    sodium_memzero(code, sizeof code);
    return EXIT_OK;
}

static int cmd_backup(sc_client *c, int argc, char **argv); /* after the table */

/* ------------------------------------------------------------ kt (key transparency) */

static json_t *jstr_array(const char (*v)[SC_KT_KEY_HEX + 1], size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

static void print_keys_line(const char *label, const char (*v)[SC_KT_KEY_HEX + 1], size_t n,
                            const char *none)
{
    printf("%s", label);
    if (n == 0)
        printf(" %s", none);
    for (size_t i = 0; i < n; i++)
        printf("%s %s", i ? "," : "", v[i]);
    printf("\n");
}

static int kt_status(sc_client *c, int argc, char **argv)
{
    sc_kt_status_info st;
    char t[32];
    int rc;
    (void)argv;
    if (argc != 0)
        return usage_error("usage: sotto kt status");
    rc = sc_kt_status(c, &st);
    if (rc != SC_OK)
        return report(rc, sc_errmsg(c));
    if (g.json) {
        json_t *o = json_object();
        json_object_set_new(o, "type", json_string("kt_status"));
        json_object_set_new(o, "server_key",
                            st.has_keys ? json_string(st.server_key) : json_null());
        json_object_set_new(o, "vrf_key", st.has_keys ? json_string(st.vrf_key) : json_null());
        if (st.has_head) {
            json_t *h = json_object();
            json_object_set_new(h, "size", json_integer((json_int_t)st.head_size));
            json_object_set_new(h, "timestamp", json_integer((json_int_t)st.head_timestamp_ms));
            json_object_set_new(h, "accepted", json_integer((json_int_t)st.head_accepted_ms));
            json_object_set_new(h, "countersigned_by", jstr_array(st.cosigners, st.n_cosigners));
            json_object_set_new(o, "head", h);
        } else {
            json_object_set_new(o, "head", json_null());
        }
        json_object_set_new(o, "auditors", jstr_array(st.auditors, st.n_auditors));
        json_object_set_new(o, "max_age_s", json_integer((json_int_t)st.max_age_s));
        if (st.has_own) {
            json_t *w = json_object();
            json_object_set_new(w, "counter", json_integer((json_int_t)st.own_counter));
            json_object_set_new(w, "version", json_integer((json_int_t)st.own_version));
            json_object_set_new(w, "checked", json_integer((json_int_t)st.own_checked_ms));
            json_object_set_new(o, "own", w);
        } else {
            json_object_set_new(o, "own", json_null());
        }
        json_object_set_new(o, "evidence", json_integer((json_int_t)st.evidence));
        json_line(o);
        return EXIT_OK;
    }
    if (st.has_keys) {
        printf("server key: %s\n", st.server_key);
        printf("VRF key:    %s\n", st.vrf_key);
    } else {
        printf("server key: none pinned yet (pinned at the next connection)\n");
    }
    if (st.has_head) {
        fmt_time(st.head_timestamp_ms, t, sizeof t);
        printf("head:       size %llu, signed %s UTC\n", (unsigned long long)st.head_size, t);
        print_keys_line("countersigned by:", st.cosigners, st.n_cosigners, "no auditor");
    } else {
        printf("head:       none held yet\n");
    }
    print_keys_line("required auditors:", st.auditors, st.n_auditors, "none");
    printf("max age:    %llu s\n", (unsigned long long)st.max_age_s);
    if (st.has_own) {
        fmt_time(st.own_checked_ms, t, sizeof t);
        printf("own entry:  update %llu, list version %llu, last good check %s UTC\n",
               (unsigned long long)st.own_counter, (unsigned long long)st.own_version, t);
    } else {
        printf("own entry:  not checked yet\n");
    }
    printf("evidence:   %zu\n", st.evidence);
    return EXIT_OK;
}

/* Why the own entry was not checked (published false): the directory
 * lookup's error text, e.g. "waiting until the key directory publishes
 * alice's keys" or "the key directory's tree head is stale: ...". */
static const char *unchecked_why(sc_client *c)
{
    const char *m = sc_errmsg(c);
    return m && m[0] ? m : "the key directory has not published your account's entry yet";
}

static int kt_check_own(sc_client *c)
{
    sc_kt_own_report rep;
    char date[32];
    int rc = sc_kt_check_own(c, &rep);

    if (rc != SC_OK)
        return report(rc, sc_errmsg(c));
    if (g.json) {
        json_t *o = json_object(), *a = json_array();
        json_object_set_new(o, "type", json_string("kt_check"));
        json_object_set_new(o, "user", json_string(sc_username(c)));
        json_object_set_new(o, "own", json_true());
        json_object_set_new(o, "published", json_boolean(rep.published));
        /* not published: the same fields, null (docs/cli.md: absent values are null) */
        json_object_set_new(o, "counter",
                            rep.published ? json_integer((json_int_t)rep.counter) : json_null());
        json_object_set_new(o, "version",
                            rep.published ? json_integer((json_int_t)rep.version) : json_null());
        json_object_set_new(o, "head_size",
                            rep.published ? json_integer((json_int_t)rep.head_size) : json_null());
        json_object_set_new(o, "reason",
                            rep.published ? json_null() : json_string(unchecked_why(c)));
        for (size_t i = 0; i < rep.n_alerts; i++)
            json_array_append_new(a, json_string(rep.alerts[i]));
        json_object_set_new(o, "alerts", a);
        json_line(o);
    } else if (rep.n_alerts == 0 && !rep.published) {
        /* why: the lookup's own error (not published yet, stale head, ...) */
        printf("your account's entry cannot be checked now: %s\n", unchecked_why(c));
    } else {
        if (rep.published) {
            fmt_time(rep.timestamp_ms, date, sizeof date);
            date[10] = '\0';
            printf("key directory (head size %llu, as of %s): your account at update %llu, list"
                   " version %llu\n",
                   (unsigned long long)rep.head_size, date, (unsigned long long)rep.counter,
                   (unsigned long long)rep.version);
        }
        for (size_t i = 0; i < rep.n_alerts; i++) {
            printf("ALERT: ");
            put_str(rep.alerts[i]);
            printf("\n");
        }
        if (rep.n_alerts == 0)
            printf("clean: it holds your account key and device lists your account signed\n");
    }
    if (rep.n_alerts > 0) {
        fprintf(stderr, "sotto: the key directory holds something for your account that your"
                        " devices did not do (see above)\n");
        return EXIT_KT;
    }
    return EXIT_OK;
}

static int kt_check(sc_client *c, int argc, char **argv)
{
    sc_kt_user_report rep;
    char date[32];
    int rc;

    if (argc > 1)
        return usage_error("usage: sotto kt check [USER]");
    if (argc == 0)
        return kt_check_own(c);
    rc = sc_kt_check_user(c, argv[0], &rep);
    if (rc != SC_OK && !(rc == SC_E_KT && rep.account_key[0]))
        return report(rc, sc_errmsg(c));
    if (g.json) {
        json_t *o = json_object();
        json_object_set_new(o, "type", json_string("kt_check"));
        json_object_set_new(o, "user", json_string(argv[0]));
        json_object_set_new(o, "own", json_false());
        json_object_set_new(o, "account_key", json_string(rep.account_key));
        json_object_set_new(o, "version", json_integer((json_int_t)rep.version));
        json_object_set_new(o, "counter", json_integer((json_int_t)rep.counter));
        json_object_set_new(o, "head_size", json_integer((json_int_t)rep.head_size));
        json_object_set_new(o, "pinned", json_boolean(rep.pinned));
        /* nothing pinned: nothing to compare (null, not false: not a mismatch) */
        json_object_set_new(o, "matches", rep.pinned ? json_boolean(rep.key_matches) : json_null());
        json_line(o);
    } else {
        fmt_time(rep.timestamp_ms, date, sizeof date);
        date[10] = '\0';
        printf("%s in the key directory (head size %llu, as of %s):\n", argv[0],
               (unsigned long long)rep.head_size, date);
        printf("  account key  %s\n", rep.account_key);
        printf("  list version %llu, update %llu\n", (unsigned long long)rep.version,
               (unsigned long long)rep.counter);
        printf("  pinned here: %s\n", !rep.pinned       ? "no (not a contact yet)"
                                      : rep.key_matches ? "the same key"
                                                        : "ANOTHER KEY");
    }
    return rc == SC_OK ? EXIT_OK : report(rc, sc_errmsg(c));
}

static int kt_auditor(sc_client *c, int argc, char **argv)
{
    char keys[SC_KT_MAX_AUDITORS][SC_KT_KEY_HEX + 1];
    size_t n = 0;
    int rc;

    if (argc == 1 && strcmp(argv[0], "list") == 0) {
        rc = sc_kt_auditor_list(c, keys, &n);
        if (rc != SC_OK)
            return report(rc, sc_errmsg(c));
        if (g.json) {
            json_t *o = json_object();
            json_object_set_new(o, "type", json_string("kt_auditors"));
            json_object_set_new(o, "auditors", jstr_array(keys, n));
            json_line(o);
        } else if (n == 0) {
            printf("no auditor required (heads need only the server's signature)\n");
        } else {
            for (size_t i = 0; i < n; i++)
                printf("%s\n", keys[i]);
        }
        return EXIT_OK;
    }
    if (argc == 2 && strcmp(argv[0], "add") == 0)
        rc = sc_kt_auditor_add(c, argv[1]);
    else if (argc == 2 && strcmp(argv[0], "remove") == 0)
        rc = sc_kt_auditor_remove(c, argv[1]);
    else
        return usage_error("usage: sotto kt auditor add KEY | remove KEY | list");
    if (rc != SC_OK)
        return report(rc, sc_errmsg(c));
    if (g.json) {
        json_t *o = json_object();
        json_object_set_new(o, "type", json_string("kt_auditor"));
        json_object_set_new(o, "action", json_string(argv[0]));
        json_object_set_new(o, "key", json_string(argv[1]));
        json_line(o);
    } else {
        printf("auditor %s %s\n", argv[1], strcmp(argv[0], "add") == 0 ? "added" : "removed");
    }
    return EXIT_OK;
}

static int kt_max_age(sc_client *c, int argc, char **argv)
{
    sc_kt_status_info st;
    char *end = NULL;
    unsigned long long v;
    int rc;

    if (argc == 1) {
        errno = 0;
        v = strtoull(argv[0], &end, 10);
        if (errno != 0 || end == argv[0] || *end != '\0' || argv[0][0] == '-')
            return usage_error("usage: sotto kt max-age [SECONDS]");
        rc = sc_kt_max_age_set(c, (uint64_t)v);
        if (rc != SC_OK)
            return report(rc, sc_errmsg(c));
    } else if (argc != 0) {
        return usage_error("usage: sotto kt max-age [SECONDS]");
    }
    rc = sc_kt_status(c, &st);
    if (rc != SC_OK)
        return report(rc, sc_errmsg(c));
    if (g.json) {
        json_t *o = json_object();
        json_object_set_new(o, "type", json_string("kt_max_age"));
        json_object_set_new(o, "seconds", json_integer((json_int_t)st.max_age_s));
        json_line(o);
    } else {
        printf("tree heads older than %llu s are refused\n", (unsigned long long)st.max_age_s);
    }
    return EXIT_OK;
}

static int cmd_kt(sc_client *c, int argc, char **argv); /* after the table */

/* ---- issue 11: receipts, read state, typing, settings (receipts.c) ---- */

/* [--group] CONV and the rest: *conv, *group; other arguments (not
 * options) into rest[0..*nrest). flag (may be NULL) is an extra option
 * (--stop), set in *flag_set. */
static int rc_conv_args(const char *cmd, int argc, char **argv, const char **conv, bool *group,
                        char **rest, int *nrest, const char *flag, bool *flag_set)
{
    bool dashdash = false;

    *conv = NULL;
    *group = false;
    *nrest = 0;
    for (int i = 0; i < argc; i++) {
        if (!dashdash && strcmp(argv[i], "--") == 0)
            dashdash = true; /* everything after -- is positional */
        else if (!dashdash && strcmp(argv[i], "--group") == 0)
            *group = true;
        else if (!dashdash && flag && strcmp(argv[i], flag) == 0)
            *flag_set = true;
        else if (!dashdash && argv[i][0] == '-' && argv[i][1] != '\0')
            return usage_error("%s: unknown option %s", cmd, argv[i]);
        else if (*conv == NULL)
            *conv = argv[i];
        else if (rest)
            rest[(*nrest)++] = argv[i];
        else
            return usage_error("%s: unexpected argument %s", cmd, argv[i]);
    }
    if (*conv == NULL)
        return usage_error("%s: missing CONTACT or --group GROUP", cmd);
    if (!*group && !sc_username_valid(*conv))
        *group = true; /* not a possible username: must be a group */
    return EXIT_OK;
}

static int parse_ts(const char *cmd, const char *s, uint64_t *out)
{
    char *e;
    unsigned long long v;
    if (s[0] < '0' || s[0] > '9')
        return usage_error("%s: bad timestamp %s", cmd, s);
    errno = 0;
    v = strtoull(s, &e, 10);
    if (*e || errno || v == 0)
        return usage_error("%s: bad timestamp %s", cmd, s);
    *out = (uint64_t)v;
    return EXIT_OK;
}

static int cmd_read(sc_client *c, int argc, char **argv)
{
    const char *conv;
    bool group;
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    uint64_t *ts = calloc((size_t)argc + 1, sizeof *ts);
    int nrest = 0, rc;
    size_t marked = 0;

    if (rest == NULL || ts == NULL) {
        free(rest);
        free(ts);
        return report(SC_E_INTERNAL, "out of memory");
    }
    rc = rc_conv_args("read", argc, argv, &conv, &group, rest, &nrest, NULL, NULL);
    for (int i = 0; rc == EXIT_OK && i < nrest; i++)
        rc = parse_ts("read", rest[i], &ts[i]);
    free(rest);
    if (rc != EXIT_OK) {
        free(ts);
        return rc;
    }
    rc = sc_read_mark(c, conv, group, ts, (size_t)nrest, &marked);
    free(ts);
    /* the read receipts owed go out after their delay: here before the
     * command ends; the daemon's loop sends them when due */
    if (rc == SC_OK && !g.daemon)
        rc = sc_receipts_send(c, true);
    if (rc != SC_OK)
        return report(rc, sc_errmsg(c));
    if (g.json) {
        json_t *o = json_object();
        json_object_set_new(o, "type", json_string("read"));
        json_object_set_new(o, group ? "group" : "conversation", json_string(conv));
        json_object_set_new(o, "marked", json_integer((json_int_t)marked));
        json_line(o);
    } else {
        printf("%zu message%s marked read\n", marked, marked == 1 ? "" : "s");
    }
    return EXIT_OK;
}

/* sc_message_receipts' event: the per-recipient state of our message */
static void print_receipts(void *ud, const sc_event *ev)
{
    char when[32];
    (void)ud;
    if (g.json) {
        json_t *o = json_object(), *a = json_array();
        json_object_set_new(o, "type", json_string("receipts"));
        json_object_set_new(o, "timestamp", json_integer((json_int_t)ev->timestamp));
        for (size_t i = 0; i < ev->n_receipts; i++) {
            json_t *r = json_object();
            json_object_set_new(r, "recipient", jstr_or_null(ev->receipts[i].recipient));
            json_object_set_new(r, "state", jstr_or_null(ev->receipts[i].state));
            json_object_set_new(r, "at", json_integer((json_int_t)ev->receipts[i].at_ms));
            json_array_append_new(a, r);
        }
        json_object_set_new(o, "receipts", a);
        json_line(o);
        return;
    }
    for (size_t i = 0; i < ev->n_receipts; i++) {
        put_str(ev->receipts[i].recipient ? ev->receipts[i].recipient : "?");
        printf(": ");
        put_str(ev->receipts[i].state ? ev->receipts[i].state : "?");
        if (ev->receipts[i].at_ms) {
            fmt_time(ev->receipts[i].at_ms, when, sizeof when);
            printf(" (%s)", when);
        }
        printf("\n");
    }
    output_or_die();
}

static int cmd_receipts(sc_client *c, int argc, char **argv)
{
    const char *conv;
    bool group;
    char *rest[2];
    int nrest = 0, rc;
    uint64_t ts = 0;

    if (argc > 4)
        return usage_error("receipts: unexpected argument");
    rc = rc_conv_args("receipts", argc, argv, &conv, &group, rest, &nrest, NULL, NULL);
    if (rc != EXIT_OK)
        return rc;
    if (nrest != 1)
        return usage_error("usage: sotto receipts CONTACT | --group GROUP TIMESTAMP");
    rc = parse_ts("receipts", rest[0], &ts);
    if (rc != EXIT_OK)
        return rc;
    rc = sc_message_receipts(c, conv, group, ts, print_receipts, NULL);
    return report(rc, sc_errmsg(c));
}

static int cmd_config(sc_client *c, int argc, char **argv)
{
    sc_everyday_config cfg;
    char root[SC_SEALED_ROOT_HEX + 1];
    int rc;

    bool sealed = true, pinned = false;

    if (argc != 0 && argc != 2)
        return usage_error("usage: sotto config [read-receipts|typing|sealed on|off]");
    if (argc == 2) {
        bool on;
        if (strcmp(argv[1], "on") == 0)
            on = true;
        else if (strcmp(argv[1], "off") == 0)
            on = false;
        else
            return usage_error("config: %s: give on or off", argv[0]);
        if (strcmp(argv[0], "read-receipts") != 0 && strcmp(argv[0], "typing") != 0 &&
            strcmp(argv[0], "sealed") != 0)
            return usage_error("config: unknown setting %s (read-receipts, typing, sealed)",
                               argv[0]);
        /* sealed: this device's sends (sealed.c), not synced */
        rc = strcmp(argv[0], "sealed") == 0 ? sc_sealed_set_enabled(c, on)
                                            : sc_config_set(c, argv[0], on);
        if (rc != SC_OK)
            return report(rc, sc_errmsg(c));
    }
    rc = sc_config_get(c, &cfg);
    if (rc == SC_OK)
        rc = sc_sealed_enabled(c, &sealed);
    if (rc == SC_OK)
        rc = sc_sealed_root(c, root, &pinned);
    if (rc != SC_OK)
        return report(rc, sc_errmsg(c));
    if (g.json) {
        json_t *o = json_object();
        json_object_set_new(o, "type", json_string("config"));
        json_object_set_new(o, "read_receipts", json_boolean(cfg.read_receipts));
        json_object_set_new(o, "typing_indicators", json_boolean(cfg.typing_indicators));
        json_object_set_new(o, "sealed", json_boolean(sealed));
        json_object_set_new(o, "sealed_root", pinned ? json_string(root) : json_null());
        json_line(o);
    } else {
        printf("read-receipts: %s\ntyping: %s\nsealed: %s\nsealed-root: %s\n",
               cfg.read_receipts ? "on" : "off", cfg.typing_indicators ? "on" : "off",
               sealed ? "on" : "off", pinned ? root : "none pinned");
    }
    return EXIT_OK;
}

static int cmd_typing(sc_client *c, int argc, char **argv)
{
    const char *conv;
    bool group, stop = false, sent = false;
    int nrest = 0, rc;

    rc = rc_conv_args("typing", argc, argv, &conv, &group, NULL, &nrest, "--stop", &stop);
    if (rc != EXIT_OK)
        return rc;
    rc = sc_typing_send(c, conv, group, !stop, &sent);
    if (rc != SC_OK)
        return report(rc, sc_errmsg(c));
    if (g.json) {
        json_t *o = json_object();
        json_object_set_new(o, "type", json_string("typing"));
        json_object_set_new(o, group ? "group" : "to", json_string(conv));
        json_object_set_new(o, "action", json_string(stop ? "stopped" : "started"));
        json_object_set_new(o, "sent", json_boolean(sent));
        json_line(o);
    } else if (sent) {
        printf("typing %s sent to %s\n", stop ? "stopped" : "started", conv);
    } else {
        printf("typing indicators are off (sotto config typing on): nothing sent\n");
    }
    return EXIT_OK;
}

/* issue 11: expire. "off", "0", N (seconds), or N with s, m, h, d or w. */
static bool parse_duration(const char *s, uint32_t *out)
{
    static const struct {
        char unit;
        uint64_t mult;
    } units[] = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}, {'w', 604800}};
    char *e;
    unsigned long long v;
    uint64_t mult = 0;

    if (strcmp(s, "off") == 0) {
        *out = 0;
        return true;
    }
    if (s[0] < '0' || s[0] > '9')
        return false;
    errno = 0;
    v = strtoull(s, &e, 10);
    if (errno)
        return false;
    if (*e == '\0')
        mult = 1;
    for (size_t i = 0; i < sizeof units / sizeof units[0] && mult == 0; i++)
        if (e[0] == units[i].unit && e[1] == '\0')
            mult = units[i].mult;
    if (mult == 0 || v > UINT32_MAX / mult)
        return false;
    *out = (uint32_t)(v * mult);
    return true;
}

/* "off", or the timer in the largest unit that divides it ("1h", "90s") */
static void fmt_duration(uint32_t s, char *out, size_t cap)
{
    if (s == 0)
        snprintf(out, cap, "off");
    else if (s % 604800 == 0)
        snprintf(out, cap, "%uw", (unsigned)(s / 604800));
    else if (s % 86400 == 0)
        snprintf(out, cap, "%ud", (unsigned)(s / 86400));
    else if (s % 3600 == 0)
        snprintf(out, cap, "%uh", (unsigned)(s / 3600));
    else if (s % 60 == 0)
        snprintf(out, cap, "%um", (unsigned)(s / 60));
    else
        snprintf(out, cap, "%us", (unsigned)s);
}

static int cmd_timer(sc_client *c, int argc, char **argv)
{
    const char *conv;
    bool group, dashdash = false;
    char *rest[1] = {NULL};
    char shown[32];
    int nrest = 0, rc;
    uint32_t secs = 0;
    uint64_t ts = 0;

    conv = NULL;
    group = false;
    for (int i = 0; i < argc; i++) {
        if (!dashdash && strcmp(argv[i], "--group") == 0)
            group = true;
        else if (!dashdash && strcmp(argv[i], "--") == 0)
            dashdash = true; /* the rest is positional */
        else if (!dashdash && argv[i][0] == '-' && argv[i][1] != '\0')
            return usage_error("timer: unknown option %s", argv[i]);
        else if (conv == NULL)
            conv = argv[i];
        else if (nrest < 1)
            rest[nrest++] = argv[i];
        else
            return usage_error("timer: unexpected argument %s", argv[i]);
    }
    if (conv == NULL)
        return usage_error("usage: sotto timer CONTACT | --group GROUP [DURATION]");
    if (!group && !sc_username_valid(conv))
        group = true; /* not a possible username: must be a group */
    if (nrest == 0) {
        rc = sc_timer_get(c, conv, group, &secs);
        if (rc != SC_OK)
            return report(rc, sc_errmsg(c));
    } else {
        if (!parse_duration(rest[0], &secs))
            return usage_error("timer: bad duration %s (off, 0, 30s, 5m, 1h, 1d, 1w)", rest[0]);
        rc = retry_queued(c, sc_timer_set(c, conv, group, secs, &ts), NULL);
        if (rc == SC_E_RETRY || (rc == SC_E_NETWORK && ts != 0))
            return report_queued(c, rc, "timer change");
        if (rc != SC_OK)
            return report(rc, sc_errmsg(c));
    }
    fmt_duration(secs, shown, sizeof shown);
    if (g.json) {
        json_t *o = json_object();
        json_object_set_new(o, "type", json_string("timer"));
        json_object_set_new(o, group ? "group" : "to", json_string(conv));
        json_object_set_new(o, "expire_timer", json_integer(secs));
        if (ts)
            json_object_set_new(o, "timestamp", json_integer((json_int_t)ts));
        json_line(o);
    } else if (ts) {
        printf("disappearing messages with %s: %s (timestamp %llu)\n", conv, shown,
               (unsigned long long)ts);
    } else {
        printf("disappearing messages with %s: %s\n", conv, shown);
    }
    return EXIT_OK;
}

/* ------------------------------------------------------------ the command table */

typedef int (*cmd_fn)(sc_client *c, int argc, char **argv);

typedef enum {
    NEEDS_NOTHING,    /* opens no account (help) */
    NEEDS_NEW,        /* creates the local account if missing (register, link-request) */
    NEEDS_LOCAL,      /* the local account must exist, registered or not (link-finish) */
    NEEDS_REGISTERED, /* a registered account (the core answers exit 8 otherwise) */
} account_need;

#define MAX_SYNOPSES 3
#define MAX_EXIT_NOTES 6

typedef struct synopsis {
    const char *args;    /* what follows the command's name */
    const char *summary; /* one line for `sotto --help` */
} synopsis;

typedef struct exit_note {
    int code;        /* 3..9: 0, 1 and 2 are listed for every command */
    const char *why; /* what it means for this command */
} exit_note;

typedef struct command command;
struct command {
    const char *name;
    cmd_fn run; /* NULL: help */
    account_need needs;
    synopsis syn[MAX_SYNOPSES];
    const char *help; /* what it does, its options; ends with \n */
    exit_note exits[MAX_EXIT_NOTES];
    /* its options that take a value: that value is never read as a global
     * option (`send --text --json bob` sends "--json") */
    const char *const *value_opts;
    const command *subs; /* subcommands (group) */
    size_t n_subs;
    /* run before the local account is opened (register --restore), or
     * NULL; returns EXIT_OK to go on, else the exit code */
    int (*prepare)(int argc, char **argv);
};

static const char *const send_value_opts[] = {
    "--file",           "--text", "--quote-timestamp", "--quote-author", "--mention",
    "--edit-timestamp", NULL};
static const char *const register_value_opts[] = {
    "--invite", "--restore", "--code", "--kt-key", "--kt-vrf-key", "--sealed-root", NULL};
static const char *const link_request_value_opts[] = {"--kt-key", "--kt-vrf-key", "--sealed-root",
                                                      NULL};
static const char *const history_value_opts[] = {"--limit", NULL};
static const char *const history_days_value_opts[] = {"--history-days", NULL};

#define EXIT_NOTE_QUEUED                                                                           \
    {                                                                                              \
        EXIT_NETWORK, "not sent now (server unreachable, or it asked to retry later): it stays "   \
                      "queued and the next command that connects sends it"                         \
    }

static const command group_subs[] = {
    {.name = "create",
     .run = grp_create,
     .needs = NEEDS_REGISTERED,
     .syn = {{"NAME [MEMBER...]", "creates a group (you are a member) and tells the members"}},
     .help = "NAME: UTF-8, 1-256 bytes. Prints the new group (its 32-hex id, name, members).\n",
     .exits = {EXIT_NOTE_QUEUED,
               {EXIT_REFUSED, "refused by the server for a member: that copy is not queued"},
               {EXIT_UNTRUSTED, "made; a member's copy waits for `sotto trust MEMBER`"},
               {EXIT_NOT_FOUND, "no such user"},
               {EXIT_STATE, "not registered"}}},
    {.name = "add",
     .run = grp_add,
     .needs = NEEDS_REGISTERED,
     .syn = {{"GROUP MEMBER...", "adds members (they receive the name and member list)"}},
     .help = "Prints the group's new state.\n",
     .exits = {EXIT_NOTE_QUEUED,
               {EXIT_REFUSED, "refused by the server for a member: that copy is not queued"},
               {EXIT_UNTRUSTED, "made; a member's copy waits for `sotto trust MEMBER`"},
               {EXIT_NOT_FOUND, "no such group or user"},
               {EXIT_STATE, "not registered / not a member"}}},
    {.name = "remove",
     .run = grp_remove,
     .needs = NEEDS_REGISTERED,
     .syn = {{"GROUP MEMBER...", "removes members; they receive nothing sent after it"}},
     .help = "Prints the group's new state.\n",
     .exits = {EXIT_NOTE_QUEUED,
               {EXIT_REFUSED, "refused by the server for a member: that copy is not queued"},
               {EXIT_UNTRUSTED, "made; a member's copy waits for `sotto trust MEMBER`"},
               {EXIT_NOT_FOUND, "no such group or member"},
               {EXIT_STATE, "not registered / not a member"}}},
    {.name = "leave",
     .run = grp_leave,
     .needs = NEEDS_REGISTERED,
     .syn = {{"GROUP", "leaves the group (it stays listed as left)"}},
     .help = "Tells the members, then prints the group (no longer active).\n",
     .exits = {EXIT_NOTE_QUEUED,
               {EXIT_REFUSED, "refused by the server for a member: that copy is not queued"},
               {EXIT_NOT_FOUND, "no such group"},
               {EXIT_STATE, "not registered / not a member"}}},
    {.name = "rename",
     .run = grp_rename,
     .needs = NEEDS_REGISTERED,
     .syn = {{"GROUP NEWNAME", "renames it (NAME/NEWNAME: UTF-8, 1-256 bytes)"}},
     .help = "Tells the members, then prints the group's new state.\n",
     .exits = {EXIT_NOTE_QUEUED,
               {EXIT_REFUSED, "refused by the server for a member: that copy is not queued"},
               {EXIT_UNTRUSTED, "made; a member's copy waits for `sotto trust MEMBER`"},
               {EXIT_NOT_FOUND, "no such group"},
               {EXIT_STATE, "not registered / not a member / not an admin"}}},
    {.name = "admin",
     .run = grp_admin,
     .needs = NEEDS_REGISTERED,
     .syn = {{"add|remove GROUP MEMBER", "makes MEMBER an admin of GROUP, or no longer one"}},
     .help = "Admins change the group (add, remove, rename, admins, open/close); the\n"
             "creator is the first. Only an admin may do this unless the group is open.\n",
     .exits = {EXIT_NOTE_QUEUED,
               {EXIT_UNTRUSTED, "made; a member's copy waits for `sotto trust MEMBER`"},
               {EXIT_NOT_FOUND, "no such group or member"},
               {EXIT_STATE, "not registered / not a member / not an admin"}}},
    {.name = "open",
     .run = grp_open,
     .needs = NEEDS_REGISTERED,
     .syn = {{"GROUP", "lets every member change GROUP, not only its admins"}},
     .help = "Only an admin may open a group.\n",
     .exits = {EXIT_NOTE_QUEUED,
               {EXIT_UNTRUSTED, "made; a member's copy waits for `sotto trust MEMBER`"},
               {EXIT_NOT_FOUND, "no such group"},
               {EXIT_STATE, "not registered / not a member / not an admin"}}},
    {.name = "close",
     .run = grp_close,
     .needs = NEEDS_REGISTERED,
     .syn = {{"GROUP", "only admins change GROUP again (the default)"}},
     .help = "Closing a group that has no admin makes you its admin.\n",
     .exits = {EXIT_NOTE_QUEUED,
               {EXIT_UNTRUSTED, "made; a member's copy waits for `sotto trust MEMBER`"},
               {EXIT_NOT_FOUND, "no such group"},
               {EXIT_STATE, "not registered / not a member / not an admin"}}},
    {.name = "list",
     .run = grp_list,
     .needs = NEEDS_REGISTERED,
     .syn = {{"", "lists groups with id, name, members, admins, revision"}},
     .help = "One line per group (--json: one object per group with revision, admins,\n"
             "open); admins are marked * and left groups (left).\n"},
    {.name = "send",
     .run = grp_send,
     .needs = NEEDS_REGISTERED,
     .syn = {{"GROUP [TEXT | -]", "sends to every member (see `sotto send --help`)"},
             {"--file PATH [--text TEXT] GROUP", "sends a file to every member"}},
     .help = "Sends to every member over pairwise sessions; the members that could be\n"
             "reached get it. TEXT as for `sotto send` (a text beginning with - goes\n"
             "after --).\n",
     .exits = {EXIT_NOTE_QUEUED,
               {EXIT_REFUSED, "refused by the server (too large, ...): nothing is queued"},
               {EXIT_UNTRUSTED, "sent to the others; queued for a member until `sotto trust`"},
               {EXIT_NOT_FOUND, "no such group"},
               {EXIT_STATE, "not registered / not a member"}},
     .value_opts = send_value_opts},
};

static const command backup_subs[] = {
    {.name = "create",
     .run = bk_create,
     .needs = NEEDS_REGISTERED,
     .syn = {{"FILE [--history]", "write an encrypted backup; prints the recovery code"}},
     .help = "On the primary device: writes FILE (mode 0600, replaced atomically) holding\n"
             "the account key, the server URL and pin (or CA), contacts with their pinned\n"
             "account keys, device lists and verified flags, groups, and with --history\n"
             "every stored message. It is encrypted with a new random recovery code\n"
             "(30 digits, Argon2id + XChaCha20-Poly1305), printed once: write it down.\n"
             "Sessions and attachment files are not in it.\n"
             "  --history   include the message history\n",
     .exits = {{EXIT_STATE, "not registered / not the primary device (it holds the account"
                            " key)"}}},
};

static const command kt_subs[] = {
    {.name = "status",
     .run = kt_status,
     .needs = NEEDS_REGISTERED,
     .syn = {{"", "what this device holds of the key directory"}},
     .help = "Prints the server's pinned key-transparency keys (tree-head key, VRF key),\n"
             "the tree head this device holds (size, time, the auditors that\n"
             "countersigned it), the auditors this device requires and the maximum age\n"
             "of a head, the last good check of this account's own entry (update\n"
             "counter, list version) and how many pieces of evidence are kept.\n"
             "Local only: nothing is sent.\n"},
    {.name = "check",
     .run = kt_check,
     .needs = NEEDS_REGISTERED,
     .syn = {{"[USER]", "check the key directory now (own account, or USER)"}},
     .help = "Without USER: checks what the published key directory holds for your own\n"
             "account (every device also does at each login): your account key, device\n"
             "lists your account signed, and no update your account did not make.\n"
             "Alerts are printed (and stored as notices) and exit 9.\n"
             "With USER: verifies USER's entry against the directory now and prints it\n"
             "(account key, device list version, update counter) and whether the key\n"
             "pinned here is the same.\n",
     .exits = {{EXIT_NETWORK, "network, or USER is not in the published directory yet"},
               {EXIT_NOT_FOUND, "no such user"},
               {EXIT_KT, "the directory refused, contradicts the pinned key, or holds"
                         " something your account did not do (alert)"}}},
    {.name = "auditor",
     .run = kt_auditor,
     .needs = NEEDS_REGISTERED,
     .syn = {{"add KEY | remove KEY | list", "auditors every accepted head needs"}},
     .help = "KEY: an auditor's Ed25519 public key (64 hex; `sotto-auditor status`\n"
             "prints it). Every tree head this device accepts must carry a valid\n"
             "countersignature of each auditor listed (at most 8). Get the keys from\n"
             "the auditors themselves, never from the server.\n",
     .exits = {{EXIT_NOT_FOUND, "remove: that auditor is not listed"}}},
    {.name = "max-age",
     .run = kt_max_age,
     .needs = NEEDS_REGISTERED,
     .syn = {{"[SECONDS]", "show or set the oldest tree head accepted"}},
     .help = "A tree head (and its auditors' countersignatures) older than this is\n"
             "refused, so a server that stops publishing, or an auditor that stopped\n"
             "countersigning, cannot keep this device on an old view of the key\n"
             "directory. 60 s to 30 days; default 86400 (one day). Without SECONDS:\n"
             "prints the current value.\n"},
};

/* ---- profiles (issue 11; docs/cli.md "Profiles") ---- */

static void print_profile(const sc_profile_info *p)
{
    if (g.json) {
        json_t *o = json_object();
        json_object_set_new(o, "type", json_string("profile"));
        json_object_set_new(o, "username", json_string(p->username));
        json_object_set_new(o, "display_name", jstr_or_null(p->display_name));
        json_object_set_new(o, "avatar", jstr_or_null(p->avatar_path));
        json_object_set_new(o, "avatar_type", jstr_or_null(p->avatar_type));
        json_line(o);
        return;
    }
    /* a display name is the owner's text, never a username: in brackets */
    put_str(p->username);
    if (p->display_name) {
        printf(" (");
        put_str(p->display_name);
        printf(")\n");
    } else {
        printf(" (no profile name)\n");
    }
    if (p->avatar_path) {
        printf("  avatar: ");
        put_str(p->avatar_path);
        printf(" (");
        put_str(p->avatar_type);
        printf(")\n");
    }
}

static int profile_set(sc_client *c, int argc, char **argv)
{
    const char *name = NULL, *avatar = NULL, *type = NULL;
    char *stored = NULL;
    sc_profile_info p;
    int rc;

    for (int i = 0; i < argc; i++) {
        const char **dst = strcmp(argv[i], "--name") == 0          ? &name
                           : strcmp(argv[i], "--avatar") == 0      ? &avatar
                           : strcmp(argv[i], "--avatar-type") == 0 ? &type
                                                                   : NULL;
        if (dst == NULL)
            return usage_error("profile set: unexpected argument (see profile set --help)");
        if (i + 1 >= argc)
            return usage_error("profile set: %s needs a value", argv[i]);
        *dst = argv[++i];
    }
    if (name == NULL && avatar == NULL)
        return usage_error("profile set: give --name NAME and/or --avatar FILE");
    if (name == NULL) {
        /* only a new avatar: the name stays */
        rc = sc_profile_get(c, NULL, false, &p);
        if (rc == SC_OK && p.display_name)
            stored = strdup(p.display_name);
        sc_profile_info_clear(&p);
        if (stored == NULL)
            return usage_error("profile set: no name set yet: give --name NAME");
        name = stored;
    }
    rc = sc_profile_set(c, name, avatar, type);
    free(stored);
    if (rc != SC_OK)
        return report(rc, sc_errmsg(c));
    rc = sc_profile_get(c, NULL, false, &p);
    if (rc != SC_OK)
        return report(rc, sc_errmsg(c));
    print_profile(&p);
    sc_profile_info_clear(&p);
    return EXIT_OK;
}

static int profile_show(sc_client *c, int argc, char **argv)
{
    sc_profile_info p;
    bool local = false;
    const char *who = NULL;
    int rc;

    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--local") == 0)
            local = true;
        else if (who == NULL && argv[i][0] != '-')
            who = argv[i];
        else
            return usage_error("profile show: unexpected argument");
    }
    rc = sc_profile_get(c, who, !local, &p);
    if (rc != SC_OK)
        return report(rc, sc_errmsg(c));
    print_profile(&p);
    sc_profile_info_clear(&p);
    return EXIT_OK;
}

/* issue 12: a new profile key cuts off every holder of the old one */
static int profile_rotate_key(sc_client *c, int argc, char **argv)
{
    size_t n = 0;
    int rc;

    (void)argv;
    if (argc > 0)
        return usage_error("profile rotate-key: unexpected argument");
    rc = sc_profile_rotate_key(c, &n);
    if (rc != SC_OK)
        return report(rc, sc_errmsg(c));
    if (g.json) {
        json_t *o = json_object();
        json_object_set_new(o, "type", json_string("profile_key_rotated"));
        json_object_set_new(o, "contacts_notified", json_integer((json_int_t)n));
        json_line(o);
    } else {
        printf("profile key replaced; the new key was sent to %zu contact%s\n", n,
               n == 1 ? "" : "s");
    }
    return EXIT_OK;
}

static const char *const profile_value_opts[] = {"--name", "--avatar", "--avatar-type", NULL};

static int cmd_profile(sc_client *c, int argc, char **argv); /* after the table */
static const command profile_subs[] = {
    {.name = "set",
     .run = profile_set,
     .needs = NEEDS_REGISTERED,
     .syn = {{"--name NAME [--avatar FILE [--avatar-type TYPE]]", "set your profile"}},
     .help = "Sets your profile: a display name (1 to 128 bytes of UTF-8, no control\n"
             "characters) and optionally an avatar (at most 96 KiB; TYPE guessed from\n"
             "the file's extension). It is encrypted with your profile key (made on first\n"
             "use) and uploaded; the server stores only the ciphertext. Your key goes to\n"
             "the contacts and groups you write to (never to a message request you have\n"
             "not accepted) and to your own devices; they show the name beside your\n"
             "username: \"alice (Alice Liddell)\". Without --name the name stays.\n",
     .exits = {{EXIT_NETWORK, "network (nothing changed)"},
               {EXIT_REFUSED, "refused by the server (too large, rate limited)"}},
     .value_opts = profile_value_opts},
    {.name = "show",
     .run = profile_show,
     .needs = NEEDS_REGISTERED,
     .syn = {{"[--local] [USERNAME]", "show your profile or a contact's"}},
     .help = "Without USERNAME: your profile as set here. With USERNAME: fetches the\n"
             "contact's encrypted profile and opens it with the key they shared\n"
             "(--local: what was fetched before, no network), then prints the display\n"
             "name and where the avatar was saved (attachments directory, mode 0600).\n"
             "A profile that does not open under their key is refused (exit 7).\n",
     .exits = {{EXIT_NETWORK, "network"},
               {EXIT_NOT_FOUND, "no profile key from USERNAME, or no profile on the server"},
               {EXIT_INTEGRITY, "the server's profile does not decrypt (forged or damaged)"}}},
    {.name = "rotate-key",
     .run = profile_rotate_key,
     .needs = NEEDS_REGISTERED,
     .syn = {{"", "replace your profile key (cuts off every holder of the old one)"}},
     .help = "Makes a new profile key: your profile is encrypted again and uploaded\n"
             "under it, and the server gets the new delivery token, so whoever holds\n"
             "the old key can no longer send you sealed messages (theirs now go\n"
             "identified: a message request, or dropped when blocked). The new key goes\n"
             "to your other devices and to every accepted contact you have not\n"
             "blocked. `sotto block` does this by itself. Interrupted (network), it is\n"
             "finished by running it again or by the next receive.\n",
     .exits = {{EXIT_NETWORK, "network (the rotation stays due)"},
               {EXIT_REFUSED, "refused by the server (rate limited)"}}},
};

static int cmd_request(sc_client *c, int argc, char **argv); /* after the table */
static const command request_subs[] = {
    {.name = "delete",
     .run = req_delete,
     .needs = NEEDS_REGISTERED,
     .syn = {{"CONTACT | --group GROUP", "delete a message request and its messages"}},
     .help = "Deletes a message request: every stored message of the conversation is\n"
             "wiped from the local store (the WAL too); the conversation stays not\n"
             "accepted, so a later message is a request again. Your other devices do\n"
             "the same. Refused for an accepted conversation.\n",
     .exits = {{EXIT_NOT_FOUND, "no such group"},
               {EXIT_STATE, "the conversation is accepted: not a request"}}},
};

static const command commands[] = {
    {.name = "register",
     .run = cmd_register,
     .needs = NEEDS_NEW,
     .syn = {{"[--invite CODE] [USERNAME]", "create the account on the server"},
             {"--restore FILE [--code CODE]", "restore an account from a backup"}},
     .help = "Creates USERNAME (default: the account name; 3-32 of a-z 0-9 _ .) on the\n"
             "server with this device as device 1, uploads the identity key, a signed\n"
             "prekey and 100 one-time prekeys, and stores the server URL and pin (or CA)\n"
             "so that later commands need only --account.\n"
             "  --invite CODE   invitation code, when the server requires one\n"
             "  --restore FILE  restore the account of a backup (`sotto backup create`)\n"
             "                  into a new local account and take its username back:\n"
             "                  this device becomes its only device (the others are\n"
             "                  removed); server, pin, contacts and their keys, groups\n"
             "                  and history come from the backup (--server, --pin, --ca\n"
             "                  are not needed). Contacts keep the same safety number.\n"
             "  --code CODE     the recovery code (else one line is read from stdin,\n"
             "                  which keeps it out of the process list)\n"
             "  --kt-key HEX --kt-vrf-key HEX\n"
             "                  the server's key-transparency keys (`sottod --kt-info`)\n"
             "                  from a source you trust; else they are pinned on first use\n"
             "  --sealed-root HEX\n"
             "                  the server's sealed-sender trust root (`sottod admin\n"
             "                  sealed-root`) from a source you trust; else it is pinned on\n"
             "                  first use (`sotto config` prints the pinned one)\n"
             "A wrong recovery code (or an altered file) exits 2 (--json code\n"
             "wrong_recovery_code) and creates nothing.\n",
     .exits = {{EXIT_NETWORK, "network: server unreachable, TLS or pin failure, timeout"},
               {EXIT_REFUSED, "refused (name taken, bad invite, rate limited)"},
               {EXIT_UNTRUSTED, "the server's sealed-sender trust root differs from"
                                " --sealed-root (the account exists, the given root stays"
                                " pinned); restore: the server holds another account key for"
                                " the name, or a list that key did not sign"},
               {EXIT_STATE, "already registered (restore: the local account is not new)"},
               {EXIT_KT, "the server's key-transparency keys differ from --kt-key/--kt-vrf-key"}},
     .value_opts = register_value_opts,
     .prepare = register_prepare},
    {.name = "devices",
     .run = cmd_devices,
     .needs = NEEDS_REGISTERED,
     .syn = {{"", "list this account's devices"}},
     .help = "Lists the account's devices as the server knows them (id, created,\n"
             "last seen, whether it has keys; this device is marked).\n",
     .exits = {{EXIT_NETWORK, "network"},
               {EXIT_REFUSED, "refused (login failed)"},
               {EXIT_STATE, "not registered / this device was removed"}}},
    {.name = "link-request",
     .run = cmd_link_request,
     .needs = NEEDS_NEW,
     .syn = {{"", "(new device) print a link code"}},
     .help = "On a new, empty local account: creates this device's keys and prints its\n"
             "link code (138 hex chars). Give the code to `device-add` on an existing\n"
             "device, then run `link-finish` here.\n"
             "  --kt-key HEX --kt-vrf-key HEX   the server's key-transparency keys, as\n"
             "                                 for register\n"
             "  --sealed-root HEX               the server's sealed-sender trust root, as\n"
             "                                 for register (checked at link-finish)\n",
     .exits = {{EXIT_STATE, "the account is already registered"}},
     .value_opts = link_request_value_opts},
    {.name = "device-add",
     .run = cmd_device_add,
     .needs = NEEDS_REGISTERED,
     .syn = {{"[--history-days N] CODE", "(primary device) add the new device"}},
     .help = "On the primary device (the one that registered: it holds the account\n"
             "key): adds the device with link CODE (from `link-request`) by signing a\n"
             "new device list, and prints the new device id and the account key to\n"
             "give to `link-finish` on the new device. Your contacts see a notice\n"
             "\"USER linked a new device\"; your safety numbers stay the same.\n"
             "Once the new device has run `link-finish`, this device's next\n"
             "connection sends it, end-to-end encrypted, your contacts (pinned keys,\n"
             "verified flags), groups and history; the new device shows \"synced\n"
             "from device 1: N contacts, M groups, K messages\".\n"
             "  --history-days N   history of the last N days (default 30, or the\n"
             "                     account's link_history_days; 0: none)\n",
     .exits = {{EXIT_NETWORK, "network"},
               {EXIT_REFUSED, "refused by the server"},
               {EXIT_UNTRUSTED, "the server's device list for this account is not ours"},
               {EXIT_STATE, "not registered / not the primary device"}},
     .value_opts = history_days_value_opts},
    {.name = "device-sync",
     .run = cmd_device_sync,
     .needs = NEEDS_REGISTERED,
     .syn = {{"[--history-days N] DEVICE_ID",
              "(primary device) send a linked device everything again"}},
     .help = "On the primary device: sends device DEVICE_ID of this account, now,\n"
             "what `device-add` sends a new device by itself (contacts with their\n"
             "pinned keys and verified flags, groups, history of the last N days).\n"
             "The device applies it idempotently: what it has is not changed, a key\n"
             "it pinned itself is kept. Not queued: run it again after exit 3.\n"
             "  --history-days N   history of the last N days (default: as chosen at\n"
             "                     device-add, else 30; 0: none)\n",
     .exits = {{EXIT_NETWORK, "network (nothing or part was sent: run it again)"},
               {EXIT_REFUSED, "refused by the server"},
               {EXIT_UNTRUSTED, "the server's device list for this account is not ours"},
               {EXIT_NOT_FOUND, "not in the account's signed device list"},
               {EXIT_STATE, "not registered / not the primary / the device has no keys yet"}},
     .value_opts = history_days_value_opts},
    {.name = "link-finish",
     .run = cmd_link_finish,
     .needs = NEEDS_LOCAL,
     .syn = {{"USERNAME DEVICE_ID ACCOUNT_KEY", "(new device) log in as that device"}},
     .help = "On the new device: logs in as USERNAME's device DEVICE_ID and checks that\n"
             "ACCOUNT_KEY (66 hex characters; all three are printed by `device-add` on\n"
             "the primary) signed a device list holding this device, then uploads this\n"
             "device's prekeys. The account key comes from you, never from the server.\n",
     .exits = {{EXIT_NETWORK, "network"},
               {EXIT_REFUSED, "refused (login failed: the device was not added)"},
               {EXIT_UNTRUSTED, "the account key did not sign a list with this device"},
               {EXIT_STATE, "already registered / no link-request made here"}}},
    {.name = "device-remove",
     .run = cmd_device_remove,
     .needs = NEEDS_REGISTERED,
     .syn = {{"DEVICE_ID", "(primary device) remove a device of this account"}},
     .help = "On the primary device: removes device DEVICE_ID by signing a new device\n"
             "list without it. Contacts stop encrypting to it at once, whatever the\n"
             "server says later, and see a notice \"USER removed a device\".\n",
     .exits = {{EXIT_NETWORK, "network"},
               {EXIT_REFUSED, "refused by the server"},
               {EXIT_NOT_FOUND, "no such device"},
               {EXIT_STATE, "not registered / not the primary device"}}},
    {.name = "promote",
     .run = cmd_promote,
     .needs = NEEDS_REGISTERED,
     .syn = {{"DEVICE_ID", "(primary device) hand the account key to another device"}},
     .help = "On the primary device: sends the account key, end-to-end encrypted, to\n"
             "device DEVICE_ID of this account (it must be in the signed device list),\n"
             "which becomes the primary: it can then link and remove devices (this one\n"
             "too) and make backups. Use it before retiring the primary. The other\n"
             "devices get the same message without the key and show a notice. This\n"
             "device keeps the key until DEVICE_ID confirms (seen by a later receive\n"
             "or listen here), then deletes it. Nothing is queued: if the send fails,\n"
             "run it again.\n",
     .exits = {{EXIT_NETWORK, "not sent (server unreachable, or it asked to retry later):"
                              " nothing is queued, run it again"},
               {EXIT_REFUSED, "refused by the server"},
               {EXIT_UNTRUSTED, "the server's device list for this account is not ours"},
               {EXIT_STATE, "not registered / not the primary / DEVICE_ID is this device,"
                            " not in the signed list, or has no keys yet"}}},
    {.name = "send",
     .run = cmd_send,
     .needs = NEEDS_REGISTERED,
     .syn = {{"CONTACT [TEXT | -]", "send a text (- or none: read stdin)"},
             {"--file PATH [--text TEXT] CONTACT", "send a file"},
             {"--group GROUP [TEXT | -]", "send a text to a group"}},
     .help = "Sends to every device of CONTACT (and a copy to this account's other\n"
             "devices). TEXT is UTF-8, 1 byte to 64 KiB, sent byte for byte. Without\n"
             "TEXT or with -, the text is read from stdin (one trailing newline is\n"
             "removed). A text beginning with - goes after --: send bob -- -5 degrees.\n"
             "Sending to yourself stores the note and copies it to your other devices.\n"
             "  --file PATH   send a file (encrypted, uploaded, at most 100 MiB)\n"
             "  --text TEXT   the text (caption with --file)\n"
             "  --group       the destination is a GROUP (id or unique name)\n"
             "  --quote-timestamp TS --quote-author NAME\n"
             "                reply to NAME's message TS (its #id) of this conversation;\n"
             "                the reply carries NAME and the first 200 bytes of its text\n"
             "  --mention START:LENGTH:NAME\n"
             "                (groups, repeatable) text[START, START+LENGTH) names member\n"
             "                NAME (UTF-8 byte offsets); without it every \"@name\" of a\n"
             "                member is a mention (--no-mentions: none)\n"
             "  --edit-timestamp TS\n"
             "                replace the text of your message TS (within 24 hours; the\n"
             "                message keeps its id, `sotto edits` shows every version)\n"
             "When the server asks to retry within 10 s, send waits and retries (at most\n"
             "5 times); a message that cannot be sent now stays queued (exit 3) and goes\n"
             "out with the next command that connects.\n",
     .exits = {EXIT_NOTE_QUEUED,
               {EXIT_REFUSED, "refused by the server (too large, ...): nothing is queued"},
               {EXIT_UNTRUSTED, "safety number changed: nothing sent (see `sotto trust`)"},
               {EXIT_NOT_FOUND, "no such user or group"},
               {EXIT_STATE, "not registered / not a member of the group"},
               {EXIT_KT, "a new contact's keys are refused by the key directory (or the"
                         " server runs none): the message stays queued"}},
     .value_opts = send_value_opts},
    /* issue 11: msgops */
    {.name = "react",
     .run = cmd_react,
     .needs = NEEDS_REGISTERED,
     .syn = {{"CONTACT|--group GROUP --target-author NAME --target-timestamp TS EMOJI",
              "react to a message"},
             {"CONTACT|--group GROUP --target-author NAME --target-timestamp TS --remove",
              "take your reaction away"}},
     .help = "Reacts to NAME's message TS (its #id) of the conversation with one emoji,\n"
             "replacing your earlier reaction to it (one per person per message);\n"
             "--remove takes it away. Sent to the conversation and your other devices.\n"
             "The message must be in your history. EMOJI: 1-32 bytes of UTF-8, no\n"
             "letters, spaces or control characters (else exit 2).\n",
     .exits = {EXIT_NOTE_QUEUED,
               {EXIT_UNTRUSTED, "safety number changed: nothing sent"},
               {EXIT_NOT_FOUND, "no such message (or it was deleted), user or group"},
               {EXIT_STATE, "not registered / not a member of the group"}},
     .value_opts = react_value_opts},
    {.name = "delete",
     .run = cmd_remote_delete,
     .needs = NEEDS_REGISTERED,
     .syn = {{"CONTACT|--group GROUP --target-timestamp TS", "delete your message for everyone"}},
     .help = "Deletes your message TS (its #id) of the conversation for everyone, within\n"
             "24 hours of sending it: every recipient's devices and your other devices\n"
             "wipe its text from their stores; a tombstone \"(deleted)\" stays. More\n"
             "than 24 hours after sending it: exit 2.\n",
     .exits = {EXIT_NOTE_QUEUED,
               {EXIT_UNTRUSTED, "safety number changed: nothing sent"},
               {EXIT_NOT_FOUND, "no such message of yours (or deleted already)"},
               {EXIT_STATE, "not registered / not a member of the group"}},
     .value_opts = delete_value_opts},
    {.name = "edits",
     .run = cmd_edits,
     .needs = NEEDS_REGISTERED,
     .syn = {{"CONTACT|--group GROUP [--author NAME] TS", "every version of a message"}},
     .help = "Prints every version of message TS (its #id) of the conversation, oldest\n"
             "first: the original, then each edit, the one shown marked. --author: the\n"
             "message's author, when several messages have that timestamp.\n",
     .exits = {{EXIT_NOT_FOUND, "no such message (or it was deleted for everyone)"}},
     .value_opts = edits_value_opts},
    {.name = "receive",
     .run = cmd_receive_once,
     .needs = NEEDS_REGISTERED,
     .syn = {{"", "fetch and print waiting messages, exit"}},
     .help = "Connects, processes every waiting envelope (decrypt, store, then acknowledge),\n"
             "downloads and verifies attachments, prints each visible event, sends what is\n"
             "queued, and exits. Messages stored by an earlier run that was killed before\n"
             "printing them are printed first. An envelope that cannot be decrypted is\n"
             "acknowledged and shown as a notice (code undecryptable); a sealed one whose\n"
             "sender certificate or identity does not check out is acknowledged, dropped\n"
             "and shown as a notice (code sealed_refused, not stored).\n"
             "While `sotto daemon` holds the account, prints what the daemon received\n"
             "and no receive/listen printed yet (subscriber \"cli\", docs/rpc.md).\n",
     .exits = {{EXIT_NETWORK, "network: server unreachable, TLS or pin failure, timeout"},
               {EXIT_REFUSED, "refused (login failed)"},
               {EXIT_INTEGRITY, "an attachment failed verification (not saved)"},
               {EXIT_STATE, "not registered / this device was removed"}}},
    {.name = "listen",
     .run = cmd_listen,
     .needs = NEEDS_REGISTERED,
     .syn = {{"", "stay connected, print messages as they arrive"}},
     .help = "Like receive, but stays connected and prints events as they arrive;\n"
             "reconnects with backoff 1, 2, 4 ... 30 s; SIGINT/SIGTERM end it (exit 0).\n"
             "Through a running `sotto daemon`: the daemon's events, as receive; exit 3\n"
             "when the daemon stops.\n",
     .exits = {{EXIT_NETWORK, "the daemon it ran through stopped"},
               {EXIT_REFUSED, "refused (login failed)"},
               {EXIT_STATE, "not registered / this device was removed"}}},
    {.name = "contacts",
     .run = cmd_contacts,
     .needs = NEEDS_REGISTERED,
     .syn = {{"", "list contacts"}},
     .help = "Lists contacts (everyone you exchanged messages or keys with): name,\n"
             "number of devices, verified (you ran `trust` and the keys have not changed\n"
             "since), and whether the safety number changed.\n"},
    {.name = "trust",
     .run = cmd_trust,
     .needs = NEEDS_REGISTERED,
     .syn = {{"CONTACT", "accept a contact's changed safety number"}},
     .help = "Accepts CONTACT's changed account key -- the one `safety-number` shows,\n"
             "and only if the server still serves it now (compare the safety number\n"
             "first) -- marks the contact verified, drops the old sessions, and decrypts\n"
             "and prints the messages held because of the change.\n",
     .exits = {{EXIT_NETWORK, "network (the current key must be fetched)"},
               {EXIT_UNTRUSTED, "the server now serves yet another key: compare again"},
               {EXIT_NOT_FOUND, "unknown contact"},
               {EXIT_KT, "the key directory does not hold the new key: nothing trusted"},
               {EXIT_STATE, "the server serves the earlier key again: nothing to trust"}}},
    {.name = "safety-number",
     .run = cmd_safety,
     .needs = NEEDS_REGISTERED,
     .syn = {{"[--no-qr] CONTACT", "print the safety number and its QR code"}},
     .help = "Prints the 60-digit safety number with CONTACT (12 groups of 5 digits)\n"
             "and, unless --no-qr or --json, a QR code of its scannable form.\n"
             "Compare it with CONTACT's (it is the same on both sides).\n",
     .exits = {{EXIT_NETWORK, "network (the contact's keys had to be fetched)"},
               {EXIT_NOT_FOUND, "no such user"},
               {EXIT_STATE, "not registered"}}},
    {.name = "group",
     .run = cmd_group,
     .needs = NEEDS_REGISTERED,
     .syn = {{NULL, "groups (see group --help)"}},
     .help = "Groups live only in their members' clients (client-side fan-out over\n"
             "pairwise sessions); the server never learns a group exists.\n"
             "GROUP is the group's 32-hex id or its (unique) name. Changes that cannot\n"
             "be sent now stay queued (exit 3). A name or member beginning with - goes\n"
             "after --. `sotto group SUBCOMMAND --help` for one subcommand.\n",
     .exits = {EXIT_NOTE_QUEUED,
               {EXIT_REFUSED, "refused by the server: nothing is queued"},
               {EXIT_UNTRUSTED, "a member's safety number changed (see `sotto trust`)"},
               {EXIT_NOT_FOUND, "no such group or user"},
               {EXIT_STATE, "not registered / not a member"}},
     .value_opts = send_value_opts,
     .subs = group_subs,
     .n_subs = sizeof group_subs / sizeof group_subs[0]},
    {.name = "accept",
     .run = cmd_accept,
     .needs = NEEDS_REGISTERED,
     .syn = {{"CONTACT | --group GROUP", "accept a message request"}},
     .help = "Accepts the conversation: its later messages are no requests (receipts\n"
             "are sent, your profile is shared), and the messages already stored lose\n"
             "their [request] mark. Sending a message in a conversation accepts it too.\n"
             "Your other devices do the same.\n",
     .exits = {{EXIT_NOT_FOUND, "no such group"}}},
    {.name = "request",
     .run = cmd_request,
     .needs = NEEDS_REGISTERED,
     .syn = {{NULL, "answer a message request (see request --help)"}},
     .help = "The first message from someone whose conversation you have not accepted\n"
             "(you never wrote to them, accepted them, or -- a group -- were added by\n"
             "someone you accepted) is a message request: shown with [request], no\n"
             "receipts sent, no profile shared. Answer with `accept`, `request delete`\n"
             "or `block`; list them with `requests`.\n",
     .subs = request_subs,
     .n_subs = sizeof request_subs / sizeof request_subs[0]},
    {.name = "requests",
     .run = cmd_requests,
     .needs = NEEDS_REGISTERED,
     .syn = {{"", "list pending message requests"}},
     .help = "Lists the conversations holding message requests: who (or which group),\n"
             "how many messages, and the first one's text (up to 80 bytes).\n"},
    {.name = "block",
     .run = cmd_block,
     .needs = NEEDS_REGISTERED,
     .syn = {{"NAME...", "block accounts: their messages are dropped on arrival"}},
     .help = "Blocks each NAME: everything they send (messages, group messages,\n"
             "receipts, typing) is dropped on arrival and never stored, and you cannot\n"
             "send to them until `unblock`. A pending message request from NAME is\n"
             "deleted. The block list is synced to your other devices.\n"},
    {.name = "unblock",
     .run = cmd_unblock,
     .needs = NEEDS_REGISTERED,
     .syn = {{"NAME...", "take accounts off the block list"}},
     .help = "Takes each NAME off the block list (synced to your other devices): what\n"
             "they send from now on is shown again (what came while blocked is gone).\n"},
    {.name = "blocked",
     .run = cmd_blocked,
     .needs = NEEDS_REGISTERED,
     .syn = {{"", "list blocked accounts"}},
     .help = "Lists the block list, by name (--json: name and blocked_ms).\n"},
    {.name = "history",
     .run = cmd_history,
     .needs = NEEDS_REGISTERED,
     .syn = {{"[--limit N] CONTACT | --group GROUP", "print a stored conversation"}},
     .help = "Prints a stored conversation, oldest first (only the last N with\n"
             "--limit). An argument that cannot be a username is taken as a group.\n",
     .exits = {{EXIT_NOT_FOUND, "no such group"}},
     .value_opts = history_value_opts},
    {.name = "read",
     .run = cmd_read,
     .needs = NEEDS_REGISTERED,
     .syn = {{"CONTACT | --group GROUP [TIMESTAMP...]", "mark messages read"}},
     .help = "Marks the given incoming messages (by their #timestamp), or every unread\n"
             "one of the conversation, read: their disappearing timers start, your\n"
             "other devices mark them read too, and (read receipts on, not a message\n"
             "request) each author gets a read receipt, batched and sent after a random\n"
             "1-5 s (this command waits for it; the daemon sends it when due).\n",
     .exits = {EXIT_NOTE_QUEUED,
               {EXIT_NOT_FOUND, "no such group, or no such incoming message there"},
               {EXIT_STATE, "not registered"}}},
    {.name = "receipts",
     .run = cmd_receipts,
     .needs = NEEDS_REGISTERED,
     .syn = {{"CONTACT | --group GROUP TIMESTAMP", "delivery state of your message"}},
     .help = "Prints, per recipient (every member of a group), the state of your\n"
             "message TIMESTAMP: sent, delivered or read, and when it was learnt.\n"
             "Local only.\n",
     .exits = {{EXIT_NOT_FOUND, "no such group, or no message of yours with that timestamp"}}},
    {.name = "config",
     .run = cmd_config,
     .needs = NEEDS_REGISTERED,
     .syn = {{"", "show the settings"},
             {"read-receipts|typing on|off", "read receipts, typing indicators (default on)"},
             {"sealed on|off", "seal messages to contacts (default on; this device)"}},
     .help = "Settings of the account, synced to its other devices. Read receipts off:\n"
             "none are sent and others' read receipts are not shown (delivery receipts\n"
             "always are). Typing off: none sent, none shown. Sealed off (this device\n"
             "only, not synced): every message goes identified, the server sees the\n"
             "sender (docs/protocol.md \"Sealed sender\"). The output also shows the\n"
             "sealed-sender trust root this device pinned (--json: sealed_root, null when\n"
             "none): compare it with `sottod admin sealed-root` on the server.\n"},
    {.name = "typing",
     .run = cmd_typing,
     .needs = NEEDS_REGISTERED,
     .syn = {{"CONTACT | --group GROUP [--stop]", "send a typing indicator"}},
     .help = "Tells CONTACT (every member of GROUP) that you are typing, or with --stop\n"
             "that you stopped; receivers drop it after 15 s. Sent now, never queued,\n"
             "nothing stored; nothing is sent while typing indicators are off.\n",
     .exits = {{EXIT_NETWORK, "not sent (server unreachable): nothing is queued"},
               {EXIT_UNTRUSTED, "safety number changed: not sent"},
               {EXIT_NOT_FOUND, "no such user or group"},
               {EXIT_STATE, "not registered / not a member of the group"}}},
    {.name = "timer",
     .run = cmd_timer,
     .needs = NEEDS_REGISTERED,
     .syn = {{"CONTACT | --group GROUP", "show the disappearing-message timer"},
             {"CONTACT | --group GROUP DURATION", "set it (off, 0, 30s, 5m, 1h, 1d, 1w)"}},
     .help = "Disappearing messages: every message sent in the conversation from now on\n"
             "disappears from every device's store, history and attachments directory\n"
             "DURATION after it was read (after it was sent, for its sender). Any member\n"
             "may change it; the change goes to every member and your other devices\n"
             "and shows as an event. A bare number is seconds; off or 0 turns it off.\n",
     .exits = {EXIT_NOTE_QUEUED,
               {EXIT_UNTRUSTED, "safety number changed: not sent"},
               {EXIT_NOT_FOUND, "no such user or group"},
               {EXIT_STATE, "not registered / not a member of the group"}}},
    {.name = "flush",
     .run = cmd_flush,
     .needs = NEEDS_REGISTERED,
     .syn = {{"", "send messages still queued"}},
     .help = "Sends the messages still in the outgoing queue and says how many were\n"
             "sent (--json: \"sent\", and \"queued\": how many rows are left). Waits and\n"
             "retries when the server asks to retry within 10 s.\n",
     .exits = {EXIT_NOTE_QUEUED,
               {EXIT_REFUSED, "refused by the server: that message is no longer queued"},
               {EXIT_UNTRUSTED, "a contact's safety number changed (that message left the queue)"},
               {EXIT_NOT_FOUND, "no such user (that message left the queue)"},
               {EXIT_STATE, "not registered"}}},
    {.name = "backup",
     .run = cmd_backup,
     .needs = NEEDS_REGISTERED,
     .syn = {{NULL, "account backup (see backup --help)"}},
     .help = "A backup holds what a new device needs to take the account back when every\n"
             "device is lost: the account key, the server, contacts with their pinned\n"
             "keys and trust decisions, groups and (--history) the history. It is\n"
             "encrypted with a recovery code shown once. Restore it with\n"
             "`sotto --account NAME register --restore FILE`.\n",
     .exits = {{EXIT_STATE, "not registered / not the primary device"}},
     .subs = backup_subs,
     .n_subs = sizeof backup_subs / sizeof backup_subs[0]},
    {.name = "profile",
     .run = cmd_profile,
     .needs = NEEDS_REGISTERED,
     .syn = {{NULL, "your display name and avatar (see profile --help)"}},
     .help = "Profiles: a display name and an optional avatar, end-to-end encrypted\n"
             "with your profile key, which only the contacts you accepted receive.\n"
             "`sotto profile SUBCOMMAND --help` for one subcommand.\n",
     .exits = {{EXIT_NETWORK, "network"},
               {EXIT_REFUSED, "refused by the server (set)"},
               {EXIT_NOT_FOUND, "no profile key from USERNAME, or no profile (show)"},
               {EXIT_INTEGRITY, "the profile does not decrypt (show)"}},
     .value_opts = profile_value_opts,
     .subs = profile_subs,
     .n_subs = sizeof profile_subs / sizeof profile_subs[0]},
    {.name = "kt",
     .run = cmd_kt,
     .needs = NEEDS_REGISTERED,
     .syn = {{NULL, "key transparency (see kt --help)"}},
     .help = "Key transparency: the server publishes every account's key and device\n"
             "list in an append-only key directory that auditors check. A contact's\n"
             "key is pinned only once the directory holds it, and every device checks\n"
             "its own account's entry at each login. `sotto kt SUBCOMMAND --help` for\n"
             "one subcommand.\n",
     .exits = {{EXIT_KT, "the key directory refused or contradicts"}},
     .subs = kt_subs,
     .n_subs = sizeof kt_subs / sizeof kt_subs[0]},
    {.name = "daemon",
     .run = NULL, /* sotto_daemon_main (client/daemon/), called by main() */
     .needs = NEEDS_NOTHING,
     .syn = {{"[--account NAME]... [--socket PATH] [--stdio]",
              "serve JSON-RPC 2.0 for bots and the CLI (docs/rpc.md)"}},
     .help = "Holds the server connection of each local account (every registered account\n"
             "under the data directory, or only those given with --account) and serves\n"
             "JSON-RPC 2.0 (docs/rpc.md): one JSON object (or batch array) per line.\n"
             "  --account NAME  serve this account (repeatable; default: all registered)\n"
             "  --socket PATH   Unix socket (default $XDG_RUNTIME_DIR/sotto/daemon.sock,\n"
             "                  else /tmp/sotto-UID/daemon.sock; $SOTTO_DAEMON_SOCKET);\n"
             "                  directory 0700, socket 0600\n"
             "  --stdio         serve requests on stdin, answers on stdout\n"
             "  --no-socket     with --stdio: no socket\n"
             "Methods (params by name; `account` is needed when it serves several):\n"
             "  send {recipient | groupId, message, attachment}   listGroups\n"
             "  updateGroup {groupId, name, members, removeMembers}   quitGroup {groupId}\n"
             "  listContacts  listIdentities  trust {recipient}  safetyNumber {recipient}\n"
             "  listDevices  addDevice {code}  removeDevice {deviceId}  promoteDevice\n"
             "  history {recipient | groupId, limit}  flush  backupCreate {file, history}\n"
             "  ktStatus  ktCheck {user}  ktAuditor {action, key}  ktMaxAge {seconds}\n"
             "  sendReaction {recipient | groupId, emoji, targetAuthor, targetTimestamp,\n"
             "  remove}  remoteDelete {recipient | groupId, targetTimestamp}  listEdits\n"
             "  {recipient | groupId, targetTimestamp, targetAuthor}  (send also takes\n"
             "  quoteTimestamp, quoteAuthor, mentions, editTimestamp)\n"
             "  subscribeReceive {subscriber}  unsubscribeReceive {subscriber}\n"
             "  ack {subscriber, eventIds | upTo}  listAccounts  version  cli {argv}\n"
             "Events: {\"method\":\"receive\",\"params\":{\"account\",\"subscriber\",\n"
             "\"event_id\",\"event\"}}, event as `sotto --json receive` prints it. Acknowledge\n"
             "with ack; a subscriber that subscribes again (same name) gets every event\n"
             "it did not acknowledge again, oldest first (at-least-once: drop duplicates\n"
             "by event_id). Errors: -32700 parse, -32600 invalid request, -32601 unknown\n"
             "method, -32602 bad params; a failed command: code = its CLI exit code,\n"
             "data {exit, code, message}.\n"
             "While it runs, `sotto --account NAME COMMAND` runs through it (same output,\n"
             "same exit codes). Quick test:\n"
             "  echo '{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"listContacts\"}' |\n"
             "    socat - UNIX-CONNECT:$XDG_RUNTIME_DIR/sotto/daemon.sock\n"
             "Exit codes: 0 stopped by SIGINT/SIGTERM, 1 error, 2 usage, 10 an account or\n"
             "the socket is in use by another process.\n"},
    {.name = "help",
     .run = NULL,
     .needs = NEEDS_NOTHING,
     .syn = {{"[COMMAND [SUBCOMMAND]]", "help of one command"}},
     .help = "Prints the help of COMMAND (or of sotto).\n"},
};

#define N_COMMANDS (sizeof commands / sizeof commands[0])

/* ------------------------------------------------------------ global options */

enum global_id {
    G_ACCOUNT,
    G_SERVER,
    G_PIN,
    G_CA,
    G_DATA_DIR,
    G_JSON,
    G_NO_PROGRESS,
    G_HELP,
    G_VERSION
};

static const struct global_opt {
    const char *name;
    const char *alias; /* or NULL */
    const char *value; /* metavariable, NULL for a flag */
    enum global_id id;
    const char *help;
} globals[] = {
    {"--account", NULL, "NAME", G_ACCOUNT, "local account (also $SOTTO_ACCOUNT); required"},
    {"--server", NULL, "URL", G_SERVER, "server, https://HOST:PORT (stored at register)"},
    {"--pin", NULL, "HEX", G_PIN, "SHA-256 of the server certificate (64 hex; stored)"},
    {"--ca", NULL, "FILE", G_CA, "trust the server through this CA file instead (stored)"},
    {"--data-dir", NULL, "DIR", G_DATA_DIR,
     "data home instead of $XDG_DATA_HOME or ~/.local/share"},
    {"--json", NULL, NULL, G_JSON, "print JSON Lines (one object per line)"},
    {"--no-progress", NULL, NULL, G_NO_PROGRESS, "no progress bar for large transfers"},
    {"--help", "-h", NULL, G_HELP, "this help; `sotto COMMAND --help` for a command"},
    {"--version", NULL, NULL, G_VERSION, "print the version"},
};

static const struct global_opt *find_global(const char *arg)
{
    for (size_t i = 0; i < sizeof globals / sizeof globals[0]; i++)
        if (strcmp(arg, globals[i].name) == 0 ||
            (globals[i].alias && strcmp(arg, globals[i].alias) == 0))
            return &globals[i];
    return NULL;
}

typedef struct parsed {
    sc_options opt;
    bool help;
    bool version;
} parsed;

/* Applies the global option at argv[*i] (and its value). Returns 1 when it
 * was one, 0 when it is not a global option, -1 (reported) when its value
 * is missing. */
static int take_global(int argc, char **argv, int *i, parsed *p)
{
    const struct global_opt *o = find_global(argv[*i]);
    const char *v = NULL;

    if (o == NULL)
        return 0;
    if (o->value) {
        if (*i + 1 >= argc) {
            usage_error("%s needs a value", argv[*i]);
            return -1;
        }
        v = argv[++*i];
    }
    switch (o->id) {
    case G_ACCOUNT:
        g.account = v;
        break;
    case G_SERVER:
        p->opt.server_url = v;
        break;
    case G_PIN:
        p->opt.pin_hex = v;
        break;
    case G_CA:
        p->opt.ca_file = v;
        break;
    case G_DATA_DIR:
        p->opt.data_home = v;
        break;
    case G_JSON:
        g.json = true;
        break;
    case G_NO_PROGRESS:
        p->opt.progress = false;
        break;
    case G_HELP:
        p->help = true;
        break;
    case G_VERSION:
        p->version = true;
        break;
    }
    return 1;
}

static bool in_list(const char *const *list, const char *s)
{
    for (; list && *list; list++)
        if (strcmp(*list, s) == 0)
            return true;
    return false;
}

/* ------------------------------------------------------------ lookup */

/* Optimal string alignment distance: insertions, deletions, substitutions
 * and swaps of two neighbouring letters ("sned" -> "send") cost 1. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), d[64][64];

    if (la >= 63 || lb >= 63)
        return (size_t)-1;
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            size_t best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < best)
                best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[la][lb];
}

static const command *find_command(const command *list, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i].name, name) == 0)
            return &list[i];
    return NULL;
}

/* The closest name: within 1 edit for short words, 2 for longer ones, or the
 * only name that starts with it; NULL when nothing is close. */
static const char *closest(const command *list, size_t n, const char *name)
{
    const char *best = NULL, *prefix = NULL;
    size_t best_d = strlen(name) <= 4 ? 2 : 3, n_prefix = 0, len = strlen(name);

    for (size_t i = 0; i < n; i++) {
        size_t d = edit_distance(name, list[i].name);
        if (d < best_d) {
            best_d = d;
            best = list[i].name;
        }
        if (len >= 2 && strncmp(list[i].name, name, len) == 0) {
            prefix = list[i].name;
            n_prefix++;
        }
    }
    if (best == NULL && n_prefix == 1)
        best = prefix;
    return best;
}

/* parent: the command whose subcommand NAME was meant to be, or NULL */
static int unknown_name(const command *parent, const command *list, size_t n, const char *name)
{
    const char *near = closest(list, n, name);
    const char *p = parent ? parent->name : "";
    const char *sp = parent ? " " : "";
    if (near)
        return usage_error("unknown %s%scommand '%s' (did you mean '%s'?)", p, parent ? " sub" : "",
                           name, near);
    return usage_error("unknown %s%scommand '%s' (see sotto %s%s--help)", p, parent ? " sub" : "",
                       name, p, sp);
}

/* ------------------------------------------------------------ help */

static void print_usage_lines(FILE *f, const char *prefix, const command *cmd, bool *first)
{
    for (size_t k = 0; k < MAX_SYNOPSES && cmd->syn[k].summary; k++) {
        const char *args = cmd->syn[k].args ? cmd->syn[k].args : "";
        fprintf(f, "%s%s%s%s%s\n", *first ? "usage: " : "       ", prefix, cmd->name,
                args[0] ? " " : "", args);
        *first = false;
    }
}

static const char *account_prefix(account_need needs)
{
    switch (needs) {
    case NEEDS_NOTHING:
        return "sotto ";
    case NEEDS_NEW:
        return "sotto --account NAME --server URL (--pin HEX | --ca FILE) ";
    default:
        return "sotto --account NAME ";
    }
}

static void print_exits(FILE *f, const command *cmd)
{
    fputs("Exit codes:\n"
          "  0  success\n"
          "  1  local store or internal error\n"
          "  2  usage: bad command line, invalid name or text, unreadable file\n",
          f);
    for (size_t k = 0; k < MAX_EXIT_NOTES && cmd->exits[k].why; k++) {
        /* wrapped at 80 columns, continuation lines under the text */
        const char *w = cmd->exits[k].why;
        int col = fprintf(f, "  %d ", cmd->exits[k].code);
        while (*w) {
            size_t len = strcspn(w, " ");
            if (col + 1 + (int)len > 80) {
                fputs("\n    ", f);
                col = 4;
            }
            col += fprintf(f, " %.*s", (int)len, w);
            w += len;
            w += strspn(w, " ");
        }
        fputc('\n', f);
    }
}

static void print_needs(FILE *f, account_need needs)
{
    if (needs == NEEDS_REGISTERED)
        fputs("Needs a registered account (exit 8 otherwise).\n", f);
    else if (needs == NEEDS_LOCAL)
        fputs("Needs the local account made by `link-request`.\n", f);
}

/* `sotto COMMAND --help`; sub: a subcommand of it or NULL */
static int print_command_help(const command *cmd, const command *sub)
{
    char prefix[128];
    bool first = true;

    if (sub) {
        snprintf(prefix, sizeof prefix, "%s%s ", account_prefix(sub->needs), cmd->name);
        print_usage_lines(stdout, prefix, sub, &first);
        printf("%s: %s.\n", sub->name, sub->syn[0].summary);
        fputs(sub->help, stdout);
        print_needs(stdout, sub->needs);
        print_exits(stdout, sub);
        return EXIT_OK;
    }
    snprintf(prefix, sizeof prefix, "%s", account_prefix(cmd->needs));
    if (cmd->subs) {
        for (size_t i = 0; i < cmd->n_subs; i++) {
            char sp[160];
            snprintf(sp, sizeof sp, "%s%s ", prefix, cmd->name);
            print_usage_lines(stdout, sp, &cmd->subs[i], &first);
        }
    } else {
        print_usage_lines(stdout, prefix, cmd, &first);
    }
    fputs(cmd->help, stdout);
    for (size_t i = 0; i < cmd->n_subs; i++)
        printf("  %-8s %s\n", cmd->subs[i].name, cmd->subs[i].syn[0].summary);
    print_needs(stdout, cmd->needs);
    if (cmd->run)
        print_exits(stdout, cmd);
    return EXIT_OK;
}

static void print_main_help(FILE *f)
{
    fputs("usage: sotto [GLOBAL OPTIONS] COMMAND [ARGS]\n"
          "\n"
          "Global options (before or after the command; after -- everything is an argument):\n",
          f);
    for (size_t i = 0; i < sizeof globals / sizeof globals[0]; i++) {
        char left[40];
        snprintf(left, sizeof left, "%s%s%s%s%s", globals[i].alias ? globals[i].alias : "",
                 globals[i].alias ? ", " : "", globals[i].name, globals[i].value ? " " : "",
                 globals[i].value ? globals[i].value : "");
        fprintf(f, "  %-16s %s\n", left, globals[i].help);
    }
    fputs("\nCommands:\n", f);
    for (size_t i = 0; i < N_COMMANDS; i++) {
        const command *cmd = &commands[i];
        for (size_t k = 0; k < MAX_SYNOPSES && cmd->syn[k].summary; k++) {
            char left[160];
            size_t n = (size_t)snprintf(left, sizeof left, "%s", cmd->name);
            if (cmd->subs) {
                for (size_t s = 0; s < cmd->n_subs && n < sizeof left; s++)
                    n += (size_t)snprintf(left + n, sizeof left - n, "%c%s", s ? '|' : ' ',
                                          cmd->subs[s].name);
                if (n < sizeof left)
                    snprintf(left + n, sizeof left - n, " ...");
            } else if (cmd->syn[k].args && cmd->syn[k].args[0]) {
                snprintf(left + n, sizeof left - n, " %s", cmd->syn[k].args);
            }
            if (strlen(left) < 37)
                fprintf(f, "  %-37s %s\n", left, cmd->syn[k].summary);
            else
                fprintf(f, "  %s   %s\n", left, cmd->syn[k].summary);
        }
    }
    fputs("\n"
          "Exit codes: 0 ok, 1 error, 2 usage, 3 not sent now (it stays queued: network, or\n"
          "the server asked to retry later), 4 refused (nothing queued), 5 safety number\n"
          "changed, 6 not found, 7 attachment integrity, 8 wrong state, 9 refused by the\n"
          "key directory (key transparency), 10 the account is in use by another process.\n"
          "`sotto COMMAND --help` lists a command's own.\n",
          f);
}

/* `sotto help [COMMAND [SUB]]`, `sotto COMMAND [SUB] --help` */
static int print_help(const char *name, const char *sub_name)
{
    const command *cmd = name ? find_command(commands, N_COMMANDS, name) : NULL;
    const command *sub = NULL;

    if (cmd == NULL && name != NULL)
        return unknown_name(NULL, commands, N_COMMANDS, name);
    if (cmd == NULL) {
        print_main_help(stdout);
        return EXIT_OK;
    }
    if (cmd->subs && sub_name) {
        sub = find_command(cmd->subs, cmd->n_subs, sub_name);
        if (sub == NULL)
            return unknown_name(cmd, cmd->subs, cmd->n_subs, sub_name);
    }
    return print_command_help(cmd, sub);
}

static int cmd_group(sc_client *c, int argc, char **argv)
{
    const command *sub;

    if (argc < 1)
        return usage_error("group: missing subcommand (create, add, remove, leave, rename, list,"
                           " send)");
    sub = find_command(group_subs, sizeof group_subs / sizeof group_subs[0], argv[0]);
    if (sub == NULL)
        return unknown_name(find_command(commands, N_COMMANDS, "group"), group_subs,
                            sizeof group_subs / sizeof group_subs[0], argv[0]);
    return sub->run(c, argc - 1, argv + 1);
}

static int cmd_backup(sc_client *c, int argc, char **argv)
{
    const command *sub =
        argc < 1 ? NULL
                 : find_command(backup_subs, sizeof backup_subs / sizeof backup_subs[0], argv[0]);

    if (sub == NULL)
        return usage_error("backup: missing or unknown subcommand (create)");
    return sub->run(c, argc - 1, argv + 1);
}

static int cmd_kt(sc_client *c, int argc, char **argv)
{
    const command *sub =
        argc < 1 ? NULL : find_command(kt_subs, sizeof kt_subs / sizeof kt_subs[0], argv[0]);

    if (sub == NULL)
        return usage_error("kt: missing or unknown subcommand (status, check, auditor)");
    return sub->run(c, argc - 1, argv + 1);
}

static int cmd_profile(sc_client *c, int argc, char **argv)
{
    const command *sub =
        argc < 1
            ? NULL
            : find_command(profile_subs, sizeof profile_subs / sizeof profile_subs[0], argv[0]);

    if (sub == NULL)
        return usage_error("profile: missing or unknown subcommand (set, show)");
    return sub->run(c, argc - 1, argv + 1);
}

static int cmd_request(sc_client *c, int argc, char **argv)
{
    const command *sub =
        argc < 1
            ? NULL
            : find_command(request_subs, sizeof request_subs / sizeof request_subs[0], argv[0]);

    if (sub == NULL)
        return usage_error("request: missing or unknown subcommand (delete)");
    return sub->run(c, argc - 1, argv + 1);
}

/* ------------------------------------------------------------ main */

/* Commands that only read the local store do not take the per-account lock
 * (sc_lock): they run next to a `listen` or a daemon. Every other command
 * may connect and holds it for its lifetime. */
static bool local_only(const command *cmd, int argc, char **argv)
{
    static const char *const local[] = {"history", "contacts", "receipts",
                                        "blocked", "requests", NULL};
    if (in_list(local, cmd->name))
        return true;
    if (argc == 0 && strcmp(cmd->name, "config") == 0)
        return true; /* showing the settings */
    if (argc > 0 && strcmp(cmd->name, "group") == 0)
        return strcmp(argv[0], "list") == 0;
    if (argc > 0 && strcmp(cmd->name, "kt") == 0)
        return strcmp(argv[0], "status") == 0 || strcmp(argv[0], "auditor") == 0 ||
               strcmp(argv[0], "max-age") == 0;
    return false;
}

/* Commands a running daemon can run for the CLI (sotto_daemon_forward):
 * every one that connects an account it serves, except those that create
 * or link an account and receive/listen (the daemon receives). */
static bool forwardable(const command *cmd)
{
    static const char *const not_fwd[] = {"register", "link-request", "link-finish", "receive",
                                          "listen",   "daemon",       NULL};
    return !in_list(not_fwd, cmd->name);
}

/* Takes the account's lock before a command that may connect; EXIT_OK, or
 * the reported exit code (EXIT_BUSY: another process holds it). When the
 * holder is a daemon that serves the account, the command runs through it
 * (*forwarded set, the exit code returned). */
static int take_lock(sc_client *c, const command *cmd, int argc, char **argv, bool *forwarded)
{
    sc_lock_holder h;
    char what[64], sock[512];
    int rc;

    *forwarded = false;
    if (local_only(cmd, argc, argv))
        return EXIT_OK;
    snprintf(what, sizeof what, "sotto %s", cmd->name);
    rc = sc_lock(c, what, &h);
    /* forward only to the daemon that holds THIS account's lock: the socket
     * it recorded in the lock file (never just whatever daemon answers on
     * the default path: another data directory's daemon would send as the
     * wrong account) */
    if (rc == SC_E_BUSY && strcmp(h.command, "sotto daemon") == 0 && h.socket[0] != '\0')
        snprintf(sock, sizeof sock, "%s", h.socket);
    else
        sock[0] = '\0';
    if (rc == SC_E_BUSY && sock[0] != '\0' &&
        (strcmp(cmd->name, "receive") == 0 || strcmp(cmd->name, "listen") == 0)) {
        int rrc = receive_via_daemon(sock, strcmp(cmd->name, "listen") == 0, argc);
        if (rrc >= 0) {
            *forwarded = true;
            return rrc;
        }
    }
    if (rc == SC_E_BUSY && sock[0] != '\0' && forwardable(cmd)) {
        char **fargv = calloc((size_t)argc + 2, sizeof *fargv);
        if (fargv != NULL) {
            fargv[0] = (char *)cmd->name;
            memcpy(fargv + 1, argv, (size_t)argc * sizeof *argv);
            int frc = sotto_daemon_forward(sock, g.account, g.json, argc + 1, fargv);
            free(fargv);
            if (frc >= 0) {
                *forwarded = true;
                return frc;
            }
        }
    }
    return rc == SC_OK ? EXIT_OK : report(rc, sc_errmsg(c));
}

int sotto_cli_run(sc_client *c, bool json, int argc, char **argv, const sotto_cli_io *io)
{
    const command *cmd = argc > 0 ? find_command(commands, N_COMMANDS, argv[0]) : NULL;
    int rc;

    t_io = io;
    memset(&g, 0, sizeof g);
    g.json = json;
    g.tty = io->out_tty;
    g.self = sc_username(c);
    g.daemon = true;
    if (cmd == NULL || cmd->run == NULL || !forwardable(cmd))
        rc = argc > 0 ? usage_error("%s: not a command the daemon runs", argv[0])
                      : usage_error("no command");
    else if (cmd->subs && (argc < 2 || !find_command(cmd->subs, cmd->n_subs, argv[1])))
        rc = argc < 2
                 ? usage_error("%s: missing subcommand (see sotto %s --help)", cmd->name, cmd->name)
                 : unknown_name(cmd, cmd->subs, cmd->n_subs, argv[1]);
    else
        rc = cmd->run(c, argc - 1, argv + 1);
    fflush(io->out);
    fflush(io->err);
    t_io = NULL;
    return rc;
}

char *sotto_cli_event_json(sc_client *c, const sc_event *ev)
{
    char *buf = NULL;
    size_t len = 0;
    sotto_cli_io io;
    FILE *f = open_memstream(&buf, &len);

    if (f == NULL)
        return NULL;
    memset(&io, 0, sizeof io);
    io.in = io.out = io.err = f;
    t_io = &io;
    g.json = true;
    g.self = sc_username(c);
    print_event(NULL, ev);
    t_io = NULL;
    fclose(f);
    if (buf && len > 0 && buf[len - 1] == '\n')
        buf[len - 1] = '\0';
    return buf;
}

#ifndef SOTTO_CLI_NO_MAIN /* tests/fuzz/fuzz_rpc_request.c links the rest */
int main(int argc, char **argv)
{
    parsed p;
    sc_client *c = NULL;
    const command *cmd;
    char **args = NULL;
    int i, n_args = 0, rc;

    umask(077);
    setvbuf(stdout, NULL, _IOLBF, 0);
    g.tty = isatty(1);
    signal(SIGPIPE, SIG_IGN);
    memset(&p, 0, sizeof p);
    p.opt.progress = isatty(2);
    g.account = getenv("SOTTO_ACCOUNT");
    /* global options before the command */
    for (i = 1; i < argc && argv[i][0] == '-'; i++) {
        int r = take_global(argc, argv, &i, &p);
        if (r < 0)
            return EXIT_USAGE;
        if (r == 0)
            return usage_error("unknown option %s (see sotto --help)", argv[i]);
        if (p.help)
            return print_help(NULL, NULL);
        if (p.version) {
            printf("sotto 0.1.0\n");
            return EXIT_OK;
        }
    }
    if (i >= argc) {
        print_main_help(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[i], "daemon") == 0) {
        for (int k = i + 1; k < argc; k++)
            if (strcmp(argv[k], "--help") == 0 || strcmp(argv[k], "-h") == 0)
                return print_help("daemon", NULL);
        return sotto_daemon_main(argc - i, argv + i, &p.opt);
    }
    cmd = find_command(commands, N_COMMANDS, argv[i]);
    if (cmd == NULL)
        return unknown_name(NULL, commands, N_COMMANDS, argv[i]);
    /* the command's arguments, without the global options among them */
    args = calloc((size_t)argc + 1, sizeof *args);
    if (args == NULL)
        return report(SC_E_INTERNAL, "out of memory");
    for (i++; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            while (i < argc)
                args[n_args++] = argv[i++];
            break;
        }
        if (in_list(cmd->value_opts, argv[i]) && i + 1 < argc) {
            args[n_args++] = argv[i++];
            args[n_args++] = argv[i];
            continue;
        }
        rc = take_global(argc, argv, &i, &p);
        if (rc < 0) {
            free(args);
            return EXIT_USAGE;
        }
        if (rc == 0)
            args[n_args++] = argv[i];
    }
    if (p.version) {
        free(args);
        printf("sotto 0.1.0\n");
        return EXIT_OK;
    }
    if (cmd->run == NULL || p.help) {
        /* help COMMAND [SUB] | COMMAND [SUB] --help */
        const char *name = cmd->run == NULL ? (n_args > 0 ? args[0] : NULL) : cmd->name;
        const char *sub =
            cmd->run == NULL ? (n_args > 1 ? args[1] : NULL) : (n_args > 0 ? args[0] : NULL);
        rc = print_help(name, sub);
        free(args);
        return rc;
    }
    if (cmd->subs && (n_args == 0 || !find_command(cmd->subs, cmd->n_subs, args[0]))) {
        /* a missing or mistyped subcommand is a usage error whatever the account */
        rc = n_args == 0
                 ? usage_error("%s: missing subcommand (see sotto %s --help)", cmd->name, cmd->name)
                 : unknown_name(cmd, cmd->subs, cmd->n_subs, args[0]);
        free(args);
        return rc;
    }
    if (g.account == NULL || g.account[0] == '\0') {
        free(args);
        return usage_error("no account: give --account NAME (or set SOTTO_ACCOUNT)");
    }
    if (p.opt.pin_hex && p.opt.ca_file) {
        free(args);
        return usage_error("give either --pin or --ca, not both");
    }
    p.opt.account = g.account;
    /* only register and link-request create a local account; a mistyped
     * --account elsewhere leaves nothing behind */
    p.opt.must_exist = cmd->needs != NEEDS_NEW;
    if (cmd->prepare && (rc = cmd->prepare(n_args, args)) != EXIT_OK) {
        free(args);
        return rc;
    }
    {
        char err[512];
        rc = sc_open(&c, &p.opt, err, sizeof err);
        if (rc != SC_OK) {
            sc_backup_free(g.backup);
            free(args);
            return report(rc, err);
        }
    }
    g.self = sc_username(c);
    bool forwarded = false;
    rc = take_lock(c, cmd, n_args, args, &forwarded);
    if (rc == EXIT_OK && !forwarded &&
        (strcmp(cmd->name, "receive") == 0 || strcmp(cmd->name, "listen") == 0)) {
        /* only when a daemon's CLI subscriber exists (an empty ack finds out) */
        if (sc_subscriber_ack(c, SOTTO_DAEMON_CLI_SUBSCRIBER, NULL, 0, 0, NULL) == SC_OK)
            g.ack_cli = c;
    }
    if (rc == EXIT_OK && !forwarded)
        rc = cmd->run(c, n_args, args);
    if (rc != EXIT_OK && cmd->needs == NEEDS_NEW)
        sc_close_discard(c); /* a failed register leaves no local account behind */
    else
        sc_close(c);
    sc_backup_free(g.backup);
    free(args);
    return rc;
}
#endif /* SOTTO_CLI_NO_MAIN */
