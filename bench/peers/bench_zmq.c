/*
 * bench_zmq.c — ZeroMQ (libzmq 4) PAIR sockets over ipc://, built when libzmq is
 * installed.
 *
 *   zmq_pair       throughput, producer -> consumer (high-water marks of
 *                  BENCH_CAPACITY messages each way, like the other channels)
 *   zmq_pair_rtt   ping-pong round trip
 *
 * The socket file lives in the bench's private directory ($SHOAL_ROOT).
 */
#include <zmq.h>

#include "common.h"

struct zmq_arg {
    char url[300];
    int rtt;
    size_t size;
    uint64_t warm, count;
};

static void *open_sock(void **ctx)
{
    *ctx = zmq_ctx_new();
    void *s = *ctx ? zmq_socket(*ctx, ZMQ_PAIR) : NULL;
    if (!s)
        bfail("zmq socket: %s", zmq_strerror(zmq_errno()));
    int hwm = BENCH_CAPACITY;
    if (zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof(hwm)) ||
        zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof(hwm)))
        bfail("zmq hwm: %s", zmq_strerror(zmq_errno()));
    return s;
}

static void send_one(void *s, const void *msg, size_t size)
{
    while (zmq_send(s, msg, size, 0) < 0)
        if (zmq_errno() != EINTR)
            bfail("zmq_send: %s", zmq_strerror(zmq_errno()));
}

static void recv_one(void *s, void *buf, size_t size)
{
    int n;
    while ((n = zmq_recv(s, buf, 65536, 0)) < 0)
        if (zmq_errno() != EINTR)
            bfail("zmq_recv: %s", zmq_strerror(zmq_errno()));
    if ((size_t)n != size)
        bfail("zmq_recv: %d bytes, expected %zu", n, size);
}

static void close_sock(void *s, void *ctx)
{
    zmq_close(s);
    zmq_ctx_term(ctx);
}

/* The binding side: the consumer, or the side that echoes. */
static int server(struct bctl *ctl, int idx, void *p)
{
    (void)idx;
    struct zmq_arg *a = p;
    void *ctx, *s = open_sock(&ctx);
    if (zmq_bind(s, a->url))
        bfail("zmq_bind %s: %s", a->url, zmq_strerror(zmq_errno()));
    unsigned char buf[65536];
    ctl_ready(ctl);
    for (uint64_t i = 0; i < a->warm + a->count; i++) {
        if (!a->rtt && i == a->warm)
            ctl->t0 = now_ns();
        recv_one(s, buf, a->size);
        msg_check("zmq", buf, i);
        if (a->rtt)
            send_one(s, buf, a->size);
    }
    if (!a->rtt)
        ctl->t1 = now_ns();
    atomic_store(&ctl->finished, 1);
    while (!atomic_load(&ctl->done))
        usleep(1000);
    close_sock(s, ctx);
    return 0;
}

/* The connecting side: the producer, or the side that pings. */
static int client(struct bctl *ctl, int idx, void *p)
{
    (void)idx;
    struct zmq_arg *a = p;
    void *ctx, *s = open_sock(&ctx);
    unsigned char msg[65536], buf[65536];
    memset(msg, 0xab, a->size);
    int64_t *lat = a->rtt ? lat_alloc(a->count) : NULL;
    ctl_ready(ctl);
    if (zmq_connect(s, a->url))
        bfail("zmq_connect %s: %s", a->url, zmq_strerror(zmq_errno()));
    for (uint64_t i = 0; i < a->warm + a->count; i++) {
        int64_t t = now_ns();
        msg_stamp(msg, i);
        send_one(s, msg, a->size);
        if (lat) {
            recv_one(s, buf, a->size);
            if (i >= a->warm)
                lat[i - a->warm] = now_ns() - t;
            msg_check("zmq reply", buf, i);
        }
    }
    if (lat)
        lat_summarise(ctl, lat, a->count);
    atomic_store(&ctl->done, 1);
    while (!atomic_load(&ctl->finished))
        usleep(1000);
    close_sock(s, ctx);
    return 0;
}

int main(int argc, char **argv)
{
    struct bargs a = parse_args(argc, argv, "zmq_pair zmq_pair_rtt");
    struct zmq_arg za = {0};
    za.rtt = !strcmp(a.name, "zmq_pair_rtt");
    if (!za.rtt && strcmp(a.name, "zmq_pair")) {
        fprintf(stderr, "bench_zmq: unknown case %s\n", a.name);
        return 2;
    }
    snprintf(za.url, sizeof(za.url), "ipc://%s/zmq-%d.ipc", bench_root(), (int)getpid());
    za.size = a.size;
    za.count = a.count;
    za.warm = BENCH_WARM(a.count);
    struct bctl *ctl = ctl_new();
    if (run_pair(ctl, server, &za, client, &za))
        return 1;
    if (za.rtt)
        report_rtt(a.name, a.size, a.count, ctl);
    else
        report_tput(a.name, a.size, a.count, ctl);
    return 0;
}
