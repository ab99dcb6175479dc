/*
 * bench_mq.c — POSIX message queues (mq_overview(7)): one mq_send/mq_receive per
 * message, processes blocking in the kernel.
 *
 *   mq       throughput, producer -> consumer
 *   mq_rtt   ping-pong round trip over two queues
 *
 * Each queue is asked for BENCH_CAPACITY messages, like every other channel here. An
 * unprivileged process is limited to /proc/sys/fs/mqueue/msg_max (often 10); the
 * program then falls back to that limit and says so in the result's note.
 */
#include <fcntl.h>
#include <mqueue.h>
#include <sys/resource.h>

#include "common.h"

struct mq_arg {
    mqd_t rx, tx;
    size_t size;
    uint64_t warm, count;
};

static mqd_t open_queue(const char *name, size_t size, long *capacity)
{
    /* The per-user byte limit must cover a full queue of the largest message. */
    struct rlimit rl = {RLIM_INFINITY, RLIM_INFINITY};
    (void)setrlimit(RLIMIT_MSGQUEUE, &rl);
    mq_unlink(name);
    for (long cap = *capacity; cap >= 1; cap = cap > 10 ? 10 : cap / 2) {
        struct mq_attr at = {0};
        at.mq_maxmsg = cap;
        at.mq_msgsize = (long)size;
        mqd_t q = mq_open(name, O_RDWR | O_CREAT | O_EXCL, 0600, &at);
        if (q != (mqd_t)-1) {
            *capacity = cap;
            return q;
        }
        if (errno != EINVAL && errno != EMFILE && errno != ENOMEM)
            break;
    }
    return (mqd_t)-1;
}

static int producer(struct bctl *ctl, int idx, void *p)
{
    (void)idx;
    struct mq_arg *a = &((struct mq_arg *)p)[0];
    char msg[65536];
    memset(msg, 0xab, a->size);
    ctl_ready(ctl);
    for (uint64_t i = 0; i < a->warm + a->count; i++) {
        msg_stamp(msg, i);
        while (mq_send(a->tx, msg, a->size, 0) != 0)
            if (errno != EINTR)
                bfail("mq_send: %s", strerror(errno));
    }
    return 0;
}

static void recv_one(mqd_t q, char *buf, size_t size)
{
    ssize_t n;
    while ((n = mq_receive(q, buf, 65536, NULL)) < 0)
        if (errno != EINTR)
            bfail("mq_receive: %s", strerror(errno));
    if ((size_t)n != size)
        bfail("mq_receive: %zd bytes, expected %zu", n, size);
}

static int consumer(struct bctl *ctl, int idx, void *p)
{
    (void)idx;
    struct mq_arg *a = &((struct mq_arg *)p)[1];
    char buf[65536];
    ctl_ready(ctl);
    for (uint64_t i = 0; i < a->warm + a->count; i++) {
        if (i == a->warm)
            ctl->t0 = now_ns();
        recv_one(a->rx, buf, a->size);
        msg_check("mq", buf, i);
    }
    ctl->t1 = now_ns();
    return 0;
}

static int ping(struct bctl *ctl, int idx, void *p)
{
    (void)idx;
    struct mq_arg *a = &((struct mq_arg *)p)[0];
    char msg[65536], buf[65536];
    memset(msg, 0xab, a->size);
    int64_t *lat = lat_alloc(a->count);
    ctl_ready(ctl);
    for (uint64_t i = 0; i < a->warm + a->count; i++) {
        int64_t t = now_ns();
        msg_stamp(msg, i);
        if (mq_send(a->tx, msg, a->size, 0) != 0)
            bfail("mq_send: %s", strerror(errno));
        recv_one(a->rx, buf, a->size);
        if (i >= a->warm)
            lat[i - a->warm] = now_ns() - t;
        msg_check("mq reply", buf, i);
    }
    lat_summarise(ctl, lat, a->count);
    return 0;
}

static int pong(struct bctl *ctl, int idx, void *p)
{
    (void)idx;
    struct mq_arg *a = &((struct mq_arg *)p)[1];
    char buf[65536];
    ctl_ready(ctl);
    for (uint64_t i = 0; i < a->warm + a->count; i++) {
        recv_one(a->rx, buf, a->size);
        msg_check("mq request", buf, i);
        if (mq_send(a->tx, buf, a->size, 0) != 0)
            bfail("mq_send: %s", strerror(errno));
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct bargs a = parse_args(argc, argv, "mq mq_rtt");
    int rtt = !strcmp(a.name, "mq_rtt");
    if (!rtt && strcmp(a.name, "mq")) {
        fprintf(stderr, "bench_mq: unknown case %s\n", a.name);
        return 2;
    }
    char ab[64], ba[64];
    snprintf(ab, sizeof(ab), "/shoal-bench-%d-ab", (int)getpid());
    snprintf(ba, sizeof(ba), "/shoal-bench-%d-ba", (int)getpid());
    long cap = BENCH_CAPACITY, cap2 = BENCH_CAPACITY;
    mqd_t qab = open_queue(ab, a.size, &cap);
    if (qab == (mqd_t)-1) {
        char why[128];
        snprintf(why, sizeof(why), "mq_open:%s", strerror(errno));
        for (char *c = why; *c; c++)
            if (*c == ' ')
                *c = '_';
        return bskip(a.name, why);
    }
    mqd_t qba = open_queue(ba, a.size, &cap2);
    mq_unlink(ab); /* the descriptors keep the queues alive */
    mq_unlink(ba);
    if (qba == (mqd_t)-1)
        bfail("mq_open %s: %s", ba, strerror(errno));
    struct mq_arg ends[2] = {{0}};
    ends[0].tx = qab, ends[1].rx = qab;
    ends[1].tx = qba, ends[0].rx = qba;
    for (int i = 0; i < 2; i++) {
        ends[i].size = a.size;
        ends[i].count = a.count;
        ends[i].warm = BENCH_WARM(a.count);
    }
    struct bctl *ctl = ctl_new();
    if (run_pair(ctl, rtt ? ping : producer, ends, rtt ? pong : consumer, ends))
        return 1;
    if (cap != BENCH_CAPACITY)
        snprintf(bench_note, sizeof(bench_note), "mq_capacity_limited_to_%ld", cap);
    if (rtt)
        report_rtt(a.name, a.size, a.count, ctl);
    else
        report_tput(a.name, a.size, a.count, ctl);
    return 0;
}
