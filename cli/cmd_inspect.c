/*
 * cmd_inspect.c — `shoal inspect NAME`: an object's header, its users, the state of
 * its lock, and its contents decoded by type.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "internal.h"
#include "queue_internal.h"

static const char inspect_help[] =
    "usage: shoal inspect [--root DIR] [--domain NAME] NAME\n"
    "Shows the object's header (kind, element type and layout hash, sizes, creator),\n"
    "its live users, the state of its lock, counters, and its value(s) decoded by\n"
    "type. Exit 1 if the object is missing or invalid.\n";

#define MAX_ELEMS 64

static void print_scalar(char code, const void *p)
{
    switch (code) {
    case 'b':
        printf("%d", *(const int8_t *)p);
        break;
    case 'B':
        printf("%u", *(const uint8_t *)p);
        break;
    case 'h':
        printf("%d", *(const int16_t *)p);
        break;
    case 'H':
        printf("%u", *(const uint16_t *)p);
        break;
    case 'i':
        printf("%d", *(const int32_t *)p);
        break;
    case 'I':
        printf("%u", *(const uint32_t *)p);
        break;
    case 'l':
    case 'q':
        printf("%" PRId64, *(const int64_t *)p);
        break;
    case 'L':
    case 'Q':
        printf("%" PRIu64, *(const uint64_t *)p);
        break;
    case 'f':
        printf("%.9g", *(const float *)p);
        break;
    case 'd':
        printf("%.17g", *(const double *)p);
        break;
    case 'c': {
        unsigned char c = *(const unsigned char *)p;
        printf(c >= 32 && c < 127 ? "'%c'" : "'\\x%02x'", c);
        break;
    }
    }
}

static void print_hex(const unsigned char *p, size_t n)
{
    size_t shown = n < 64 ? n : 64;
    for (size_t i = 0; i < shown; i++)
        printf("%02x%s", p[i],
               (i + 1) % 16 == 0 && i + 1 < shown ? "\n              " : " ");
    if (shown < n)
        printf("... (%zu bytes)", n);
}

/* One element: a scalar, a struct decoded through the header's layout descriptor, or
 * raw bytes when there is none. */
static void print_element(const struct shoal__header *h, const shoal_type *t,
                          const void *p)
{
    if (t->typecode)
        print_scalar(t->typecode, p);
    else if (h->desc_size == 0 ||
             shoal__layout_print(h->desc, h->desc_size, p, stdout) != 0)
        print_hex(p, t->size);
}

static void print_time(uint64_t ns)
{
    time_t secs = (time_t)(ns / 1000000000);
    struct tm tm;
    char buf[64];
    localtime_r(&secs, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
    printf("%s", buf);
}

static void print_header(const shoal__seg *seg)
{
    const struct shoal__header *h = seg->hdr;
    struct stat st;
    printf("name          %s\n", seg->name);
    printf("kind          %s\n", shoal_kind_name((int)h->kind));
    if (h->type_name[0])
        printf("type          %s  (layout %016" PRIx64 ", %" PRIu64 " bytes, align %u)\n",
               h->type_name, h->layout_hash, h->elem_size, h->elem_align);
    printf("count         %" PRIu64 "\n", h->count);
    printf("file          %s  (%" PRIu64 " bytes: header %u + payload %" PRIu64,
           seg->path, h->file_size, h->header_size, h->payload_size);
    if (fstat(seg->fd, &st) == 0)
        printf(", mode %04o", (unsigned)st.st_mode & 07777);
    printf(")\n");
    printf("format        version %u\n", h->version);
    printf("created       ");
    print_time(h->created_ns);
    printf(" by pid %d (uid %u, %s)\n", h->creator_pid, h->creator_uid,
           shoal__proc_alive(h->creator_pid, h->creator_start) ? "alive" : "exited");
    printf("anonymous     %s\n", h->flags & SHOAL_SEG_ANON ? "yes" : "no");
    printf("users        ");
    int n = 0;
    int32_t self = getpid();
    for (int i = 0; i < SHOAL_MAX_USERS; i++) {
        const struct shoal__user *u = &h->users[i];
        int32_t pid = atomic_load(&((struct shoal__user *)u)->pid);
        if (pid && pid != self &&
            shoal__proc_alive(pid, atomic_load(&((struct shoal__user *)u)->start))) {
            printf(" %d", pid);
            n++;
        }
    }
    printf(n ? "\n" : " none\n");
    printf("owner-died    %u (times a lock holder was found dead)\n",
           atomic_load(&((struct shoal__header *)h)->owner_died));
}

static void print_lock(const char *label, shoal_lock *lock)
{
    int recursive;
    int32_t owner;
    uint32_t depth;
    shoal_lock_state(lock, &recursive, &owner, &depth);
    printf("%-13s %s, ", label, recursive ? "rlock" : "lock");
    if (owner)
        printf("held by tid %d (%s), depth %u\n", owner,
               shoal__tid_alive(owner) ? "alive" : "gone", depth);
    else if (shoal_lock_holder_died(lock))
        printf("free; its last holder died holding it: the next acquirer gets "
               "owner-died\n");
    else
        printf("free\n");
}

static void print_object_lock(const shoal__seg *seg)
{
    const struct shoal__header *h = seg->hdr;
    if (h->aux[0] == SHOAL_LOCK_NONE)
        printf("lock          none\n");
    else if (h->aux[0] == SHOAL_LOCK_CALLER)
        printf("lock          the %s \"%s\"\n", shoal_kind_name((int)h->aux[1]),
               h->aux_name);
    else
        print_lock("lock", &((struct shoal__objctl *)seg->payload)->lock);
}

static int show_value(const shoal__seg *seg, const shoal_attr *attr)
{
    shoal_value *v;
    int rc = shoal_value_open(&v, seg->name, SHOAL_OPEN, NULL, NULL, attr);
    if (rc)
        return rc;
    const shoal_type *t = shoal_value_type(v);
    unsigned char *buf = malloc(t->size);
    if (!buf) {
        shoal_value_close(v);
        return SHOAL_ENOMEM;
    }
    shoal_value_snapshot(v, buf);
    printf("value         ");
    print_element(seg->hdr, t, buf);
    printf("\n");
    free(buf);
    shoal_value_close(v);
    return 0;
}

static int show_array(const shoal__seg *seg, const shoal_attr *attr)
{
    shoal_array *a;
    int rc = shoal_array_open(&a, seg->name, SHOAL_OPEN, NULL, 0, NULL, attr);
    if (rc)
        return rc;
    const shoal_type *t = shoal_array_type(a);
    size_t n = shoal_array_len(a), shown = n < MAX_ELEMS ? n : MAX_ELEMS;
    const unsigned char *elems = shoal_array_data(a);
    printf("values        [");
    for (size_t i = 0; i < shown; i++) {
        printf(i ? ", " : "");
        print_element(seg->hdr, t, elems + i * t->size);
    }
    printf(shown < n ? ", ... %zu more]\n" : "]\n", n - shown);
    shoal_array_close(a);
    return 0;
}

#define MAX_QUEUED 8

struct queued_print {
    const struct shoal__header *h;
    shoal_type type;
    int n;
};

static void print_queued(void *arg, const void *msg, size_t len)
{
    struct queued_print *qp = arg;
    printf("  [%d]         ", qp->n++);
    if (len == qp->type.size && (qp->type.typecode || qp->h->desc_size))
        print_element(qp->h, &qp->type, msg);
    else
        print_hex(msg, len);
    printf("\n");
}

static int show_queue(const shoal__seg *seg, const shoal_attr *attr)
{
    const char *name = seg->name;
    shoal_queue *q;
    int rc = shoal_queue_open(&q, name, SHOAL_OPEN, NULL, attr);
    if (rc)
        return rc;
    shoal_queue_stats st;
    shoal_queue_stats_get(q, &st);
    printf("queue         %s, %s, depth %" PRIu64 " of %" PRIu64 "\n",
           st.spsc ? "single-producer single-consumer" : "multi-producer multi-consumer",
           st.closed ? "shut down" : "open", st.depth, st.capacity);
    if (st.max_msg)
        printf("max message   %" PRIu64 " bytes\n", st.max_msg);
    printf("counters      puts %" PRIu64 ", gets %" PRIu64 ", full waits %" PRIu64
           ", empty waits %" PRIu64 "\n",
           st.puts, st.gets, st.full_waits, st.empty_waits);
    if (st.depth) {
        struct queued_print qp = {seg->hdr, {0}, 0};
        shoal__type_from_header(&qp.type, seg->hdr);
        printf("oldest%s\n", st.depth > MAX_QUEUED ? " (first 8)" : "");
        shoal__queue_inspect(q, MAX_QUEUED, print_queued, &qp);
    }
    shoal_queue_close(q);
    return 0;
}

static int show_contents(const shoal__seg *seg, const shoal_attr *attr)
{
    void *p = seg->payload;
    uint32_t parties, waiting;
    int broken;
    switch (seg->hdr->kind) {
    case SHOAL_KIND_VALUE:
        print_object_lock(seg);
        return show_value(seg, attr);
    case SHOAL_KIND_ARRAY:
        print_object_lock(seg);
        return show_array(seg, attr);
    case SHOAL_KIND_LOCK:
    case SHOAL_KIND_RLOCK:
        print_lock("state", p);
        return 0;
    case SHOAL_KIND_SEMAPHORE:
    case SHOAL_KIND_BOUNDED_SEMAPHORE:
        printf("value         %u\n", shoal_sem_value(p));
        return 0;
    case SHOAL_KIND_EVENT:
        printf("state         %s\n", shoal_event_is_set(p) ? "set" : "clear");
        return 0;
    case SHOAL_KIND_BARRIER:
        shoal_barrier_state(p, &parties, &waiting, &broken);
        printf("state         %u parties, %u waiting%s\n", parties, waiting,
               broken ? ", broken" : "");
        return 0;
    case SHOAL_KIND_QUEUE:
        return show_queue(seg, attr);
    case SHOAL_KIND_SHM:
        printf("bytes         ");
        print_hex(p, seg->hdr->payload_size);
        printf("\n");
        return 0;
    default:
        return 0;
    }
}

int cli_inspect(int argc, char **argv)
{
    cli_args args;
    int status = cli_parse(argc, argv, "inspect", inspect_help, NULL, 1, 1, &args);
    if (status >= 0)
        return status;
    shoal__seg *seg;
    int rc = shoal__seg_open(&seg, args.names[0], SHOAL_OPEN, NULL, &args.attr);
    if (rc)
        return cli_fail("inspect", rc);
    print_header(seg);
    rc = show_contents(seg, &args.attr);
    shoal__seg_close(seg);
    return rc ? cli_fail("inspect", rc) : CLI_OK;
}
