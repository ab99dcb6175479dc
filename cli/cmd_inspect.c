/*
 * cmd_inspect.c — `shoal inspect NAME`: an object's header, its users, the state of
 * its lock, and its contents decoded by type, through the public inspection API
 * (shoal/inspect.h), which validates every part it reads. A damaged part is reported
 * on its line and makes the exit code 1; the other parts are still shown.
 *
 * `shoal inspect --broker ADDRESS NAME`: an object a Manager broker holds, from its
 * "describe" request — kind, size, value (as Python's repr), and what the kind adds:
 * a lock's holder (session and thread, or the process of a client that took it in
 * the broker's lock table) and owner-died flag, a semaphore's units and
 * holders, an event's flag, a barrier's parties; then the requests waiting on it and
 * the number of watchers.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static const char inspect_help[] =
    "usage: shoal inspect [--root DIR] [--domain NAME] NAME\n"
    "Shows the object's header (kind, element type and layout hash, sizes, creator),\n"
    "its users, the state of its lock, counters, the ends of a pipe, and its value(s)\n"
    "or oldest queued messages decoded by type. A damaged part is reported and the\n"
    "rest still shown. Exit 1 if the object is missing, invalid or damaged.\n"
    "       shoal inspect --broker ADDRESS [--token-file F] [--tls-ca F [--tls-cert F\n"
    "                     --tls-key F] [--tls-server-name N]] NAME\n"
    "Shows object NAME of the Manager broker at ADDRESS: kind, size, value, a lock's\n"
    "holder, a semaphore's holders, the requests waiting on it, its watchers.\n";

#define MAX_ELEMS  64 /* array elements shown */
#define MAX_QUEUED 8  /* messages shown per ring */
#define TEXT_MAX   4096

/* Reports a part that could not be read; returns rc for the exit code. */
static int damaged(const char *label, int rc)
{
    const char *detail = shoal_errdetail();
    printf("%-13s %s%s%s\n", label, shoal_strerror(rc), *detail ? ": " : "", detail);
    return rc;
}

/* Prints label, then one element or message formatted by the library. */
static void print_item(shoal_inspect *in, const char *label, const void *p, size_t len)
{
    char text[TEXT_MAX];
    if (shoal_inspect_format(in, p, len, text, sizeof(text)) != 0)
        snprintf(text, sizeof(text), "?");
    printf("%-13s %s\n", label, text);
}

/* ---- header and users -------------------------------------------------------------- */

static void print_time(uint64_t ns)
{
    time_t secs = (time_t)(ns / 1000000000);
    struct tm tm;
    char buf[64] = "?";
    if (localtime_r(&secs, &tm))
        strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
    printf("%s", buf);
}

static void print_header(shoal_inspect *in, const shoal_inspect_header *h)
{
    printf("name          %s\n", h->name);
    printf("kind          %s\n", shoal_kind_name(h->kind));
    if (h->type_name[0])
        printf("type          %s  (layout %016" PRIx64 ", %" PRIu64 " bytes, align %u)\n",
               h->type_name, h->layout_hash, h->elem_size, h->elem_align);
    printf("count         %" PRIu64 "\n", h->count);
    printf("file          %s  (%" PRIu64 " bytes: header %" PRIu64 " + payload %" PRIu64
           ", mode %04o)\n",
           shoal_inspect_path(in), h->file_size, h->header_size, h->payload_size,
           h->file_mode);
    printf("format        version %u\n", h->format_version);
    printf("created       ");
    print_time(h->created_ns);
    printf(" by pid %d (uid %u, %s)\n", h->creator_pid, h->creator_uid,
           h->creator_alive ? "alive" : "exited");
    printf("anonymous     %s\n", h->anonymous ? "yes" : "no");
    printf("owner-died    %u (times a lock holder was found dead)\n", h->owner_died);
}

static void print_users(shoal_inspect *in)
{
    shoal_inspect_user users[64];
    int n = shoal_inspect_users(in, users, 64), live = 0, dead = 0;
    if (n > 64)
        n = 64;
    printf("users        ");
    for (int i = 0; i < n; i++)
        if (users[i].alive && ++live)
            printf(" %d", users[i].pid);
    printf(live ? "" : " none");
    for (int i = 0; i < n; i++)
        if (!users[i].alive)
            printf(dead++ ? " %d" : "  (gone without closing: %d", users[i].pid);
    printf(dead ? ")\n" : "\n");
}

/* ---- locks and primitives ---------------------------------------------------------- */

static int show_lock(shoal_inspect *in, const char *label)
{
    shoal_inspect_lock lk;
    int rc = shoal_inspect_lock_get(in, &lk);
    if (rc)
        return damaged(label, rc);
    const char *kind = lk.recursive ? "rlock" : "lock";
    switch (lk.state) {
    case SHOAL_LOCKSTATE_NONE:
        printf("%-13s none\n", label);
        break;
    case SHOAL_LOCKSTATE_CALLER:
        printf("%-13s the %s \"%s\"\n", label, shoal_kind_name(lk.lock_kind),
               lk.lock_name);
        break;
    case SHOAL_LOCKSTATE_HELD:
    case SHOAL_LOCKSTATE_HELD_DEAD:
        printf("%-13s %s, held by tid %d (%s), depth %u\n", label, kind, lk.holder_tid,
               lk.state == SHOAL_LOCKSTATE_HELD
                   ? "alive"
                   : "gone: the next acquirer gets owner-died",
               lk.depth);
        break;
    case SHOAL_LOCKSTATE_OWNER_DIED:
        printf("%-13s %s, free; its last holder died holding it: the next acquirer "
               "gets owner-died\n",
               label, kind);
        break;
    default:
        printf("%-13s %s, free\n", label, kind);
    }
    return 0;
}

static int show_sync(shoal_inspect *in, int kind)
{
    shoal_inspect_sync s;
    int rc = shoal_inspect_sync_get(in, &s);
    if (rc)
        return damaged("state", rc);
    switch (kind) {
    case SHOAL_KIND_EVENT:
        printf("state         %s\n", s.set ? "set" : "clear");
        break;
    case SHOAL_KIND_BARRIER:
        printf("state         %u parties, %u waiting%s\n", s.parties, s.waiting,
               s.broken ? ", broken" : "");
        break;
    case SHOAL_KIND_CONDITION:
        printf("waiters       %u\n", s.waiters);
        break;
    default:
        printf("value         %u\n", s.value);
    }
    return 0;
}

/* ---- values and arrays ------------------------------------------------------------- */

static int show_elements(shoal_inspect *in, int kind)
{
    const shoal_type *t;
    int rc = shoal_inspect_type(in, &t);
    if (rc)
        return damaged(kind == SHOAL_KIND_VALUE ? "value" : "values", rc);
    shoal_inspect_header h;
    shoal_inspect_header_get(in, &h);
    size_t want = kind == SHOAL_KIND_VALUE ? 1
                  : h.count < MAX_ELEMS    ? h.count
                                           : MAX_ELEMS;
    unsigned char *buf = malloc(want ? (size_t)t->size * want : 1);
    if (!buf)
        return damaged("values", SHOAL_ENOMEM);
    int n = shoal_inspect_elements(in, 0, buf, want);
    if (n < 0) {
        free(buf);
        return damaged(kind == SHOAL_KIND_VALUE ? "value" : "values", n);
    }
    if (kind == SHOAL_KIND_VALUE) {
        print_item(in, "value", buf, t->size);
    } else {
        char text[TEXT_MAX];
        printf("values        [");
        for (int i = 0; i < n; i++) {
            shoal_inspect_format(in, buf + (size_t)i * t->size, t->size, text,
                                 sizeof(text));
            printf("%s%s", i ? ", " : "", text);
        }
        printf(h.count > (uint64_t)n ? ", ... %" PRIu64 " more]\n" : "]\n",
               h.count - (uint64_t)n);
    }
    free(buf);
    return 0;
}

/* ---- queues and pipes -------------------------------------------------------------- */

struct queued {
    shoal_inspect *in;
    int n;
};

static void print_queued(void *arg, const void *msg, size_t len)
{
    struct queued *q = arg;
    char label[32];
    snprintf(label, sizeof(label), "  [%d]", q->n++);
    print_item(q->in, label, msg, len);
}

/* A queue's ring, or a pipe's (pipe: its rings are biased SPSC rings, whose sides
 * processes use by turns). */
static int show_ring(shoal_inspect *in, int ring, const char *label, bool pipe)
{
    shoal_queue_stats st;
    int rc = shoal_inspect_ring_stats(in, ring, &st);
    if (rc)
        return damaged(label, rc);
    printf("%-13s %s, %s, depth %" PRIu64 " of %" PRIu64 "\n", label,
           pipe      ? "producers and consumers by turns"
           : st.spsc ? "single-producer single-consumer"
                     : "multi-producer multi-consumer",
           st.closed ? "shut down" : "open", st.depth, st.capacity);
    printf("counters      puts %" PRIu64 ", gets %" PRIu64 ", full waits %" PRIu64
           ", empty waits %" PRIu64 "\n",
           st.puts, st.gets, st.full_waits, st.empty_waits);
    if (st.depth == 0)
        return 0;
    printf("oldest%s\n", st.depth > MAX_QUEUED ? " (first 8)" : "");
    struct queued q = {in, 0};
    rc = shoal_inspect_messages(in, ring, MAX_QUEUED, print_queued, &q);
    return rc < 0 ? damaged("  messages", rc) : 0;
}

static void print_end(shoal_inspect *in, int end)
{
    shoal_inspect_end e;
    char label[16];
    snprintf(label, sizeof(label), "end %d", end);
    if (shoal_inspect_pipe_end(in, end, &e) != 0)
        return;
    if (!e.opened)
        printf("%-13s never opened\n", label);
    else if (e.alive || e.pid > 0) /* a live holder, or one that died holding it */
        printf("%-13s held by pid %d (%s)\n", label, e.pid, e.alive ? "alive" : "gone");
    else
        printf("%-13s closed\n", label);
}

static int show_channel(shoal_inspect *in, const shoal_inspect_header *h)
{
    int n = shoal_inspect_rings(in);
    if (n < 0)
        return damaged(h->kind == SHOAL_KIND_PIPE ? "pipe" : "queue", n);
    const shoal_type *t;
    if (shoal_inspect_type(in, &t) == 0 && !t->typecode && !t->nfields)
        printf("max message   %" PRIu64 " bytes\n", h->elem_size);
    if (n == 1)
        return show_ring(in, 0, "queue", false);
    int rc = 0;
    for (int end = 0; end < 2; end++)
        print_end(in, end);
    for (int ring = 0; ring < 2; ring++) {
        char label[32];
        snprintf(label, sizeof(label), "end %d -> %d", ring, 1 - ring);
        int r = show_ring(in, ring, label, true);
        rc = rc ? rc : r;
    }
    return rc;
}

/* ---- the command ------------------------------------------------------------------- */

static int show_contents(shoal_inspect *in, const shoal_inspect_header *h)
{
    int rc;
    switch (h->kind) {
    case SHOAL_KIND_VALUE:
    case SHOAL_KIND_ARRAY:
        rc = show_lock(in, "lock");
        int r = show_elements(in, h->kind);
        return rc ? rc : r;
    case SHOAL_KIND_LOCK:
    case SHOAL_KIND_RLOCK:
        return show_lock(in, "state");
    case SHOAL_KIND_QUEUE:
    case SHOAL_KIND_PIPE:
        return show_channel(in, h);
    case SHOAL_KIND_SHM: {
        unsigned char bytes[64];
        int n = shoal_inspect_bytes(in, 0, bytes, sizeof(bytes));
        if (n < 0)
            return damaged("bytes", n);
        char text[TEXT_MAX];
        shoal_inspect_format(in, bytes, (size_t)n, text, sizeof(text));
        printf("bytes         %s%s\n", text, h->payload_size > (uint64_t)n ? " ..." : "");
        return 0;
    }
    case SHOAL_KIND_SEMAPHORE:
    case SHOAL_KIND_BOUNDED_SEMAPHORE:
    case SHOAL_KIND_EVENT:
    case SHOAL_KIND_BARRIER:
    case SHOAL_KIND_CONDITION:
        return show_sync(in, h->kind);
    default:
        printf("contents      unknown kind %d\n", h->kind);
        return SHOAL_ECORRUPT;
    }
}

/* ---- an object of a broker ----------------------------------------------------------
 */

static int64_t field_int(const shoal_mv *d, const char *k)
{
    return shoal_mv_as_int(cli_mv_field(d, k));
}

static void print_mv(const char *label, const shoal_mv *v)
{
    char text[TEXT_MAX];
    size_t n = shoal_mv_format(v, text, sizeof(text));
    printf("%-13s %s%s\n", label, text, n >= sizeof(text) ? "..." : "");
}

/* What the kind adds to kind, size and value. */
static void print_broker_state(const char *kind, const shoal_mv *d)
{
    if (!strcmp(kind, "Lock") || !strcmp(kind, "RLock") || !strcmp(kind, "Condition")) {
        if (!field_int(d, "owner") && field_int(d, "holder_pid")) /* in the lock table */
            printf("%-13s process %lld (shared memory), thread %llx, depth %lld\n",
                   "holder", (long long)field_int(d, "holder_pid"),
                   (unsigned long long)field_int(d, "owner_thread"),
                   (long long)field_int(d, "count"));
        else if (field_int(d, "owner"))
            printf("%-13s session %016llx, thread %llx, depth %lld\n", "holder",
                   (unsigned long long)field_int(d, "owner"),
                   (unsigned long long)field_int(d, "owner_thread"),
                   (long long)(field_int(d, "count") ? field_int(d, "count") : 1));
        else
            printf("%-13s none (free)\n", "holder");
        printf("%-13s %s\n", "owner died",
               shoal_mv_as_bool(cli_mv_field(d, "flag"))
                   ? "yes: its last holder died holding it"
                   : "no");
    } else if (!strcmp(kind, "Semaphore") || !strcmp(kind, "BoundedSemaphore")) {
        printf("%-13s %lld free of %lld\n", "units", (long long)field_int(d, "count"),
               (long long)field_int(d, "limit"));
        print_mv("holders", cli_mv_field(d, "data")); /* session -> units */
    } else if (!strcmp(kind, "Event")) {
        printf("%-13s %s\n", "set",
               shoal_mv_as_bool(cli_mv_field(d, "flag")) ? "yes" : "no");
    } else if (!strcmp(kind, "Barrier")) {
        printf("%-13s %lld, %lld waiting%s\n", "parties",
               (long long)field_int(d, "count"), (long long)field_int(d, "limit"),
               shoal_mv_as_bool(cli_mv_field(d, "flag")) ? ", broken" : "");
    } else {
        if (!strcmp(kind, "Queue") || !strcmp(kind, "JoinableQueue"))
            printf("%-13s %lld\n", "maxsize", (long long)field_int(d, "limit"));
        if (*shoal_mv_as_str(cli_mv_field(d, "typecode")))
            printf("%-13s %s\n", "typecode",
                   shoal_mv_as_str(cli_mv_field(d, "typecode")));
        print_mv("value", cli_mv_field(d, "data"));
    }
}

static void print_waiters(const shoal_mv *d)
{
    const shoal_mv *w = cli_mv_field(d, "waiters");
    printf("%-13s %zu\n", "waiting", shoal_mv_len(w));
    for (size_t i = 0; i < shoal_mv_len(w); i++)
        printf("  session %016llx  %s\n",
               (unsigned long long)shoal_mv_as_int(shoal_mv_item(shoal_mv_item(w, i), 0)),
               shoal_mv_as_str(shoal_mv_item(shoal_mv_item(w, i), 1)));
    printf("%-13s %lld (changes so far: %lld)\n", "watchers",
           (long long)field_int(d, "watchers"), (long long)field_int(d, "seq"));
}

int cli_inspect_broker(int argc, char **argv)
{
    cli_broker_client c;
    int status =
        cli_broker_client_parse(argc, argv, "inspect", inspect_help, NULL, 1, 1, &c);
    shoal_manager *m = NULL;
    if (status < 0)
        status = cli_broker_connect(&c, "inspect", &m);
    shoal_mv *d = NULL;
    if (status < 0) {
        int rc = shoal_manager_call(m, c.names[0], "describe", 0, &d, 0);
        if (rc < 0) {
            status = cli_fail("inspect", rc);
        } else {
            const char *kind = shoal_mv_as_str(cli_mv_field(d, "kind"));
            printf("%-13s %s\n%-13s %s\n", "name", c.names[0], "kind", kind);
            printf("%-13s %lld\n", "size", (long long)field_int(d, "size"));
            print_broker_state(kind, d);
            print_waiters(d);
            status = CLI_OK;
        }
    }
    shoal_mv_free(d);
    shoal_manager_close(m);
    if (c.names)
        cli_broker_client_free(&c);
    return status;
}

/* ---- the command ------------------------------------------------------------------- */

int cli_inspect(int argc, char **argv)
{
    if (cli_broker_has(argc, argv))
        return cli_inspect_broker(argc, argv);
    cli_args args;
    int status = cli_parse(argc, argv, "inspect", inspect_help, NULL, 1, 1, &args);
    if (status >= 0)
        return status;
    shoal_inspect *in;
    int rc = shoal_inspect_open(&in, args.names[0], &args.attr);
    if (rc)
        return cli_fail("inspect", rc);
    shoal_inspect_header h;
    shoal_inspect_header_get(in, &h);
    print_header(in, &h);
    print_users(in);
    rc = show_contents(in, &h);
    shoal_inspect_close(in);
    return rc ? cli_exit_code(rc) : CLI_OK;
}
