/*
 * bench_fd.c — kernel byte streams as message channels: pipe(2) and a Unix
 * socketpair(2) (SOCK_STREAM). One write(2) per message, one read(2) per message
 * (looping only on a short read), processes blocking in the kernel.
 *
 *   pipe, unix          throughput, producer -> consumer
 *   pipe_rtt, unix_rtt  ping-pong round trip
 *
 * The pipe is enlarged to hold BENCH_CAPACITY messages (as far as
 * /proc/sys/fs/pipe-max-size allows) so it buffers what the shared-memory rows do;
 * the socket keeps the kernel's default buffers.
 */
#include <fcntl.h>
#include <sys/socket.h>

#include "common.h"

struct fd_arg {
    int rx, tx; /* this side's ends: read from rx, write to tx */
    size_t size;
    uint64_t warm, count;
};

static void write_full(int fd, const void *buf, size_t n)
{
    const unsigned char *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            bfail("write: %s", w < 0 ? strerror(errno) : "wrote nothing");
        p += w;
        n -= (size_t)w;
    }
}

static void read_full(int fd, void *buf, size_t n)
{
    unsigned char *p = buf;
    while (n) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            bfail("read: %s", r < 0 ? strerror(errno) : "end of stream");
        p += r;
        n -= (size_t)r;
    }
}

static int producer(struct bctl *ctl, int idx, void *p)
{
    (void)idx;
    struct fd_arg *a = &((struct fd_arg *)p)[0];
    unsigned char msg[65536];
    memset(msg, 0xab, a->size);
    ctl_ready(ctl);
    for (uint64_t i = 0; i < a->warm + a->count; i++) {
        msg_stamp(msg, i);
        write_full(a->tx, msg, a->size);
    }
    return 0;
}

static int consumer(struct bctl *ctl, int idx, void *p)
{
    (void)idx;
    struct fd_arg *a = &((struct fd_arg *)p)[1];
    unsigned char buf[65536];
    ctl_ready(ctl);
    for (uint64_t i = 0; i < a->warm + a->count; i++) {
        if (i == a->warm)
            ctl->t0 = now_ns();
        read_full(a->rx, buf, a->size);
        msg_check("fd", buf, i);
    }
    ctl->t1 = now_ns();
    return 0;
}

static int ping(struct bctl *ctl, int idx, void *p)
{
    (void)idx;
    struct fd_arg *a = &((struct fd_arg *)p)[0];
    unsigned char msg[65536], buf[65536];
    memset(msg, 0xab, a->size);
    int64_t *lat = lat_alloc(a->count);
    ctl_ready(ctl);
    for (uint64_t i = 0; i < a->warm + a->count; i++) {
        int64_t t = now_ns();
        msg_stamp(msg, i);
        write_full(a->tx, msg, a->size);
        read_full(a->rx, buf, a->size);
        if (i >= a->warm)
            lat[i - a->warm] = now_ns() - t;
        msg_check("fd reply", buf, i);
    }
    lat_summarise(ctl, lat, a->count);
    return 0;
}

static int pong(struct bctl *ctl, int idx, void *p)
{
    (void)idx;
    struct fd_arg *a = &((struct fd_arg *)p)[1];
    unsigned char buf[65536];
    ctl_ready(ctl);
    for (uint64_t i = 0; i < a->warm + a->count; i++) {
        read_full(a->rx, buf, a->size);
        msg_check("fd request", buf, i);
        write_full(a->tx, buf, a->size);
    }
    return 0;
}

/* Makes the two sides' ends: side 0 writes to side 1 (and, for ping-pong, back). */
static void make_ends(struct fd_arg ends[2], int use_pipe, size_t size)
{
    if (use_pipe) {
        int ab[2], ba[2];
        if (pipe(ab) || pipe(ba))
            bfail("pipe: %s", strerror(errno));
        /* Best effort: the pipe may stay smaller than asked (pipe-max-size). */
        int want = (int)(BENCH_CAPACITY * size);
        (void)fcntl(ab[1], F_SETPIPE_SZ, want);
        (void)fcntl(ba[1], F_SETPIPE_SZ, want);
        ends[0].tx = ab[1], ends[1].rx = ab[0];
        ends[1].tx = ba[1], ends[0].rx = ba[0];
    } else {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
            bfail("socketpair: %s", strerror(errno));
        ends[0].tx = ends[0].rx = sv[0];
        ends[1].tx = ends[1].rx = sv[1];
    }
}

int main(int argc, char **argv)
{
    struct bargs a = parse_args(argc, argv, "pipe unix pipe_rtt unix_rtt");
    int use_pipe = !strncmp(a.name, "pipe", 4);
    int rtt = strstr(a.name, "_rtt") != NULL;
    if (strcmp(a.name, "pipe") && strcmp(a.name, "unix") && strcmp(a.name, "pipe_rtt") &&
        strcmp(a.name, "unix_rtt")) {
        fprintf(stderr, "bench_fd: unknown case %s\n", a.name);
        return 2;
    }
    struct fd_arg ends[2] = {{0}};
    make_ends(ends, use_pipe, a.size);
    for (int i = 0; i < 2; i++) {
        ends[i].size = a.size;
        ends[i].count = a.count;
        ends[i].warm = BENCH_WARM(a.count);
    }
    struct bctl *ctl = ctl_new();
    if (run_pair(ctl, rtt ? ping : producer, ends, rtt ? pong : consumer, ends))
        return 1;
    if (rtt)
        report_rtt(a.name, a.size, a.count, ctl);
    else
        report_tput(a.name, a.size, a.count, ctl);
    return 0;
}
