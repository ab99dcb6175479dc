/*
 * bench_channels.c — shoal's queues and pipes, measured as bench_bare measures the
 * bare ring and ping-pongs.
 *
 *   shoal_spsc         typed SPSC queue (spsc=1), put/get one message at a time
 *   shoal_spsc_batch   the same queue, put_batch/get_batch of up to 64 messages
 *   shoal_mpmc         typed MPMC queue, one producer and one consumer
 *   shoal_mpmc_2p2c    typed MPMC queue, two producers and two consumers
 *   shoal_loan         typed SPSC queue, loan/commit and peek/release: the producer
 *                      writes each message in place and the consumer reads every
 *                      cache line of it in place
 *   shoal_pipe_poll_rtt, shoal_pipe_sleep_rtt
 *                      ping-pong over a typed pipe, both sides polling (a spin budget
 *                      of 10 s) or asleep (spin budget 0)
 *   shoal_queue_poll_rtt, shoal_queue_sleep_rtt
 *                      the same over two SPSC queues, one per direction
 *   shoal_mpmcq_poll_rtt
 *                      the same over two MPMC queues, polling: the Pipe's rings
 *                      without the Pipe
 *
 * Each process opens the objects by name (open-or-create) in a private SHOAL_ROOT;
 * throughput cases keep the default spin budget. Queues hold BENCH_CAPACITY messages.
 */
#include "shoal.h"

#include "common.h"

/* No deadline on the hot path; a hang is ended by the children's alarm() and the
 * driver's timeout. */
#define TIMEOUT SHOAL_FOREVER
#define BATCH   64

static shoal_type msg_type;
static char msg_type_name[32];
static char obj_name[64];

/* A fixed-size struct type of `size` bytes, as the schema compiler would make. */
static void make_type(size_t size)
{
    snprintf(msg_type_name, sizeof(msg_type_name), "bench.Msg%zu", size);
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a-64 of the name */
    for (const char *c = msg_type_name; *c; c++)
        h = (h ^ (unsigned char)*c) * 0x100000001b3ULL;
    msg_type.name = msg_type_name;
    msg_type.layout_hash = h;
    msg_type.size = (uint32_t)size;
    msg_type.align = 8;
}

__attribute__((noreturn)) static void sfail(const char *what, int rc)
{
    bfail("%s: %s (%s)", what, shoal_strerror(rc), shoal_errdetail());
}

struct ch_arg {
    int spsc;
    size_t size;
    uint64_t warm, count;
    int producers, consumers;
    int64_t spin_ns; /* < 0: leave the default */
};

static shoal_queue *open_queue(const struct ch_arg *a, const char *name)
{
    shoal_queue_config cfg = {0};
    cfg.type = &msg_type;
    cfg.capacity = BENCH_CAPACITY;
    cfg.spsc = a->spsc;
    shoal_queue *q;
    int rc = shoal_queue_open(&q, name, SHOAL_OPEN_OR_CREATE, &cfg, NULL);
    if (rc)
        sfail("shoal_queue_open", rc);
    return q;
}

/* ---- throughput: put/get -------------------------------------------------------------
 */

/* Producer `idx` of `a->producers`: stamps its index in the top byte of the sequence
 * number so consumers can check each producer's order. */
static int q_producer(struct bctl *ctl, int idx, void *p)
{
    struct ch_arg *a = p;
    shoal_queue *q = open_queue(a, obj_name);
    unsigned char msg[65536];
    memset(msg, 0xab, a->size);
    uint64_t total = (a->warm + a->count) / (uint64_t)a->producers;
    uint64_t tag = (uint64_t)idx << 56;
    ctl_ready(ctl);
    for (uint64_t i = 0; i < total; i++) {
        msg_stamp(msg, tag | i);
        int rc = shoal_queue_put(q, msg, a->size, TIMEOUT);
        if (rc)
            sfail("shoal_queue_put", rc);
    }
    if (atomic_fetch_add(&ctl->finished, 1) + 1 == a->producers && a->consumers > 1)
        shoal_queue_shutdown(q); /* the consumers drain, then see end-of-stream */
    shoal_queue_close(q);
    return 0;
}

static int q_consumer(struct bctl *ctl, int idx, void *p)
{
    (void)idx;
    struct ch_arg *a = p;
    shoal_queue *q = open_queue(a, obj_name);
    unsigned char buf[65536];
    size_t len;
    ctl_ready(ctl);
    for (uint64_t i = 0; i < a->warm + a->count; i++) {
        if (i == a->warm)
            ctl->t0 = now_ns();
        int rc = shoal_queue_get(q, buf, sizeof(buf), &len, TIMEOUT);
        if (rc)
            sfail("shoal_queue_get", rc);
        if (len != a->size)
            bfail("shoal_queue_get: %zu bytes, expected %zu", len, a->size);
        msg_check("shoal queue", buf, i);
    }
    ctl->t1 = now_ns();
    shoal_queue_close(q);
    return 0;
}

static void atomic_min(_Atomic int64_t *x, int64_t v)
{
    int64_t cur = atomic_load(x);
    while (v < cur && !atomic_compare_exchange_weak(x, &cur, v))
        ;
}

static void atomic_max(_Atomic int64_t *x, int64_t v)
{
    int64_t cur = atomic_load(x);
    while (v > cur && !atomic_compare_exchange_weak(x, &cur, v))
        ;
}

/* One of several consumers: gets until end-of-stream, checking that each producer's
 * messages arrive in order, and widens the timed window to its first and last get. */
static int q_consumer_many(struct bctl *ctl, int idx, void *p)
{
    (void)idx;
    struct ch_arg *a = p;
    shoal_queue *q = open_queue(a, obj_name);
    unsigned char buf[65536];
    size_t len;
    uint64_t next[8] = {0}, got = 0;
    int64_t first = 0, last = 0;
    ctl_ready(ctl);
    for (;;) {
        int rc = shoal_queue_get(q, buf, sizeof(buf), &len, TIMEOUT);
        if (rc == SHOAL_EEOF)
            break;
        if (rc)
            sfail("shoal_queue_get", rc);
        last = now_ns();
        if (!got++)
            first = last;
        uint64_t s = msg_seq(buf), who = s >> 56, seq = s & ((1ULL << 56) - 1);
        if (len != a->size || who >= (uint64_t)a->producers || seq < next[who])
            bfail("shoal queue: message %llu of producer %llu out of order or garbled",
                  (unsigned long long)seq, (unsigned long long)who);
        next[who] = seq + 1;
    }
    if (got) {
        atomic_min(&ctl->t0, first);
        atomic_max(&ctl->t1, last);
    }
    atomic_fetch_add(&ctl->done, got);
    shoal_queue_close(q);
    return 0;
}

/* ---- throughput: batches -------------------------------------------------------------
 */

static int b_producer(struct bctl *ctl, int idx, void *p)
{
    (void)idx;
    struct ch_arg *a = p;
    shoal_queue *q = open_queue(a, obj_name);
    unsigned char *msgs = malloc(BATCH * a->size);
    memset(msgs, 0xab, BATCH * a->size);
    uint64_t total = a->warm + a->count, i = 0;
    ctl_ready(ctl);
    while (i < total) {
        size_t n = total - i < BATCH ? (size_t)(total - i) : BATCH, done = 0;
        for (size_t k = 0; k < n; k++)
            msg_stamp(msgs + k * a->size, i + k);
        while (done < n) {
            size_t moved = 0;
            int rc = shoal_queue_put_batch(q, msgs + done * a->size, n - done, &moved,
                                           TIMEOUT);
            if (rc)
                sfail("shoal_queue_put_batch", rc);
            done += moved;
        }
        i += n;
    }
    shoal_queue_close(q);
    free(msgs);
    return 0;
}

static int b_consumer(struct bctl *ctl, int idx, void *p)
{
    (void)idx;
    struct ch_arg *a = p;
    shoal_queue *q = open_queue(a, obj_name);
    unsigned char *buf = malloc(BATCH * a->size);
    uint64_t total = a->warm + a->count, i = 0;
    ctl_ready(ctl);
    while (i < total) {
        if (i >= a->warm && !ctl->t0) { /* the window opens at a batch boundary */
            ctl->t0 = now_ns();
            ctl->done = total - i;
        }
        size_t got = 0, want = total - i < BATCH ? (size_t)(total - i) : BATCH;
        int rc = shoal_queue_get_batch(q, buf, want, &got, TIMEOUT);
        if (rc)
            sfail("shoal_queue_get_batch", rc);
        for (size_t k = 0; k < got; k++)
            msg_check("shoal queue batch", buf + k * a->size, i + k);
        i += got;
    }
    ctl->t1 = now_ns();
    shoal_queue_close(q);
    free(buf);
    return 0;
}

/* ---- throughput: loan / peek ---------------------------------------------------------
 */

static int l_producer(struct bctl *ctl, int idx, void *p)
{
    (void)idx;
    struct ch_arg *a = p;
    shoal_queue *q = open_queue(a, obj_name);
    unsigned char pad[65536];
    memset(pad, 0xab, a->size);
    ctl_ready(ctl);
    for (uint64_t i = 0; i < a->warm + a->count; i++) {
        void *slot;
        size_t cap;
        int rc = shoal_queue_loan(q, &slot, &cap, TIMEOUT);
        if (rc)
            sfail("shoal_queue_loan", rc);
        if (cap < a->size)
            bfail("shoal_queue_loan: slot of %zu bytes for a %zu-byte type", cap,
                  a->size);
        msg_stamp(slot, i);
        memcpy((unsigned char *)slot + 8, pad, a->size - 8);
        if ((rc = shoal_queue_commit(q, slot, a->size)))
            sfail("shoal_queue_commit", rc);
    }
    shoal_queue_close(q);
    return 0;
}

static int l_consumer(struct bctl *ctl, int idx, void *p)
{
    (void)idx;
    struct ch_arg *a = p;
    shoal_queue *q = open_queue(a, obj_name);
    unsigned sum = 0;
    ctl_ready(ctl);
    for (uint64_t i = 0; i < a->warm + a->count; i++) {
        if (i == a->warm)
            ctl->t0 = now_ns();
        const void *m;
        size_t len;
        int rc = shoal_queue_peek(q, &m, &len, TIMEOUT);
        if (rc)
            sfail("shoal_queue_peek", rc);
        if (len != a->size)
            bfail("shoal_queue_peek: %zu bytes, expected %zu", len, a->size);
        msg_check("shoal queue loan", m, i);
        /* Use the message where it lies: read each of its cache lines. */
        for (size_t off = 8; off < len; off += 64)
            sum += ((const volatile unsigned char *)m)[off];
        if ((rc = shoal_queue_release(q, m)))
            sfail("shoal_queue_release", rc);
    }
    ctl->t1 = now_ns();
    ctl->extra = sum;
    shoal_queue_close(q);
    return 0;
}

/* ---- round trips ---------------------------------------------------------------------
 */

/* One side of a ping-pong: sends on its tx, receives on its rx. Over a pipe both are
 * the same end; over queues they are two SPSC queues. */
struct side {
    shoal_pipe *pipe;
    shoal_queue *tx, *rx;
};

static struct side open_side(const struct ch_arg *a, int use_pipe, int end)
{
    struct side s = {0};
    if (use_pipe) {
        shoal_queue_config cfg = {0};
        cfg.type = &msg_type;
        cfg.capacity = BENCH_CAPACITY;
        int rc =
            shoal_pipe_open(&s.pipe, obj_name, end, SHOAL_OPEN_OR_CREATE, &cfg, NULL);
        if (rc)
            sfail("shoal_pipe_open", rc);
        return s;
    }
    char ab[80], ba[80];
    snprintf(ab, sizeof(ab), "%s-ab", obj_name);
    snprintf(ba, sizeof(ba), "%s-ba", obj_name);
    s.tx = open_queue(a, end == 0 ? ab : ba);
    s.rx = open_queue(a, end == 0 ? ba : ab);
    return s;
}

static void side_send(struct side *s, const void *msg, size_t len)
{
    int rc = s->pipe ? shoal_pipe_send(s->pipe, msg, len, TIMEOUT)
                     : shoal_queue_put(s->tx, msg, len, TIMEOUT);
    if (rc)
        sfail(s->pipe ? "shoal_pipe_send" : "shoal_queue_put", rc);
}

static void side_recv(struct side *s, void *buf, size_t size)
{
    size_t len = 0;
    int rc = s->pipe ? shoal_pipe_recv(s->pipe, buf, 65536, &len, TIMEOUT)
                     : shoal_queue_get(s->rx, buf, 65536, &len, TIMEOUT);
    if (rc)
        sfail(s->pipe ? "shoal_pipe_recv" : "shoal_queue_get", rc);
    if (len != size)
        bfail("received %zu bytes, expected %zu", len, size);
}

static void side_close(struct side *s)
{
    if (s->pipe)
        shoal_pipe_close(s->pipe);
    if (s->tx)
        shoal_queue_close(s->tx);
    if (s->rx)
        shoal_queue_close(s->rx);
}

struct rtt_arg {
    struct ch_arg ch;
    int use_pipe;
};

static int ping(struct bctl *ctl, int idx, void *p)
{
    (void)idx;
    struct rtt_arg *r = p;
    struct ch_arg *a = &r->ch;
    shoal_set_spin_ns(a->spin_ns);
    struct side s = open_side(a, r->use_pipe, 0);
    unsigned char msg[65536], buf[65536];
    memset(msg, 0xab, a->size);
    int64_t *lat = lat_alloc(a->count);
    ctl_ready(ctl);
    for (uint64_t i = 0; i < a->warm + a->count; i++) {
        int64_t t = now_ns();
        msg_stamp(msg, i);
        side_send(&s, msg, a->size);
        side_recv(&s, buf, a->size);
        if (i >= a->warm)
            lat[i - a->warm] = now_ns() - t;
        msg_check("shoal reply", buf, i);
    }
    lat_summarise(ctl, lat, a->count);
    /* The pong side may still be inside its last send: close after it is done. */
    while (!atomic_load(&ctl->finished))
        usleep(100);
    side_close(&s);
    return 0;
}

static int pong(struct bctl *ctl, int idx, void *p)
{
    (void)idx;
    struct rtt_arg *r = p;
    struct ch_arg *a = &r->ch;
    shoal_set_spin_ns(a->spin_ns);
    struct side s = open_side(a, r->use_pipe, 1);
    unsigned char buf[65536];
    ctl_ready(ctl);
    for (uint64_t i = 0; i < a->warm + a->count; i++) {
        side_recv(&s, buf, a->size);
        msg_check("shoal request", buf, i);
        side_send(&s, buf, a->size);
    }
    atomic_store(&ctl->finished, 1);
    side_close(&s);
    return 0;
}

/* ---- cases ---------------------------------------------------------------------------
 */

static void unlink_all(void)
{
    char n[80];
    shoal_unlink(obj_name, NULL);
    snprintf(n, sizeof(n), "%s-ab", obj_name);
    shoal_unlink(n, NULL);
    snprintf(n, sizeof(n), "%s-ba", obj_name);
    shoal_unlink(n, NULL);
}

int main(int argc, char **argv)
{
    const char *cases =
        "shoal_spsc shoal_spsc_batch shoal_mpmc shoal_mpmc_2p2c shoal_loan "
        "shoal_pipe_poll_rtt shoal_pipe_sleep_rtt shoal_queue_poll_rtt "
        "shoal_queue_sleep_rtt shoal_mpmcq_poll_rtt";
    struct bargs a = parse_args(argc, argv, cases);
    const char *c = a.name;
    bench_root();
    make_type(a.size);
    snprintf(obj_name, sizeof(obj_name), "bench-%d", (int)getpid());

    struct ch_arg ch = {0};
    ch.size = a.size;
    ch.count = a.count;
    ch.warm = BENCH_WARM(a.count);
    ch.producers = ch.consumers = 1;
    ch.spin_ns = -1;
    struct bctl *ctl = ctl_new();
    int rc, rtt = 0;

    if (!strcmp(c, "shoal_spsc") || !strcmp(c, "shoal_mpmc")) {
        ch.spsc = !strcmp(c, "shoal_spsc");
        rc = run_pair(ctl, q_producer, &ch, q_consumer, &ch);
    } else if (!strcmp(c, "shoal_spsc_batch")) {
        ch.spsc = 1;
        rc = run_pair(ctl, b_producer, &ch, b_consumer, &ch);
        a.count = ctl->done;
    } else if (!strcmp(c, "shoal_loan")) {
        ch.spsc = 1;
        rc = run_pair(ctl, l_producer, &ch, l_consumer, &ch);
    } else if (!strcmp(c, "shoal_mpmc_2p2c")) {
        ch.producers = ch.consumers = 2;
        ch.warm = 0; /* timed from the first get to the last */
        ch.count -= ch.count % 2;
        ctl->t0 = INT64_MAX;
        ctl->t1 = INT64_MIN;
        role_fn fns[4] = {q_producer, q_producer, q_consumer_many, q_consumer_many};
        void *args[4] = {&ch, &ch, &ch, &ch};
        int cpu[4] = {0, 1, 1, 0}; /* one producer and one consumer per core */
        rc = run_roles(ctl, 4, fns, args, cpu);
        if (!rc && ctl->done != ch.count)
            bfail("%s: consumers got %llu messages of %llu", c,
                  (unsigned long long)ctl->done, (unsigned long long)ch.count);
        a.count = ch.count;
    } else if (strstr(c, "_rtt") && !strncmp(c, "shoal_", 6)) {
        struct rtt_arg r = {ch, 0};
        r.use_pipe = !strncmp(c, "shoal_pipe_", 11);
        int poll = strstr(c, "_poll_") != NULL;
        if (!poll && !strstr(c, "_sleep_"))
            goto unknown;
        r.ch.spsc = strncmp(c, "shoal_mpmcq_", 12) != 0;
        r.ch.spin_ns = poll ? SHOAL_SEC(10) : 0;
        rtt = 1;
        rc = run_pair(ctl, ping, &r, pong, &r);
    } else {
        goto unknown;
    }
    unlink_all();
    if (rc)
        return 1;
    if (rtt)
        report_rtt(c, a.size, a.count, ctl);
    else
        report_tput(c, a.size, a.count, ctl);
    return 0;
unknown:
    fprintf(stderr, "bench_channels: unknown case %s\ncases: %s\n", c, cases);
    return 2;
}
