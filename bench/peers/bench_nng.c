/*
 * bench_nng.c — nng (1.5) over ipc://, the transport its users pick on one host.
 *
 *   nng_pair, nng_pair_big       pair1 throughput, producer -> consumer, with the
 *                                default buffers and with send/receive buffers
 *                                enlarged to 8192 messages (nng's maximum)
 *   nng_reqrep, nng_reqrep_big   req/rep throughput: requests answered per second
 *                                with one request outstanding, as req0 allows
 *   nng_pair_rtt, nng_reqrep_rtt round trip (default buffers)
 *
 * The socket file lives in the bench's private directory ($SHOAL_ROOT).
 */
#include <nng/nng.h>
#include <nng/protocol/pair1/pair.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>

#include "common.h"

struct nng_arg {
    char url[300];
    int reqrep; /* req/rep instead of pair1 */
    int big;    /* enlarged buffers */
    int rtt;    /* record round-trip samples */
    size_t size;
    uint64_t warm, count;
};

static nng_socket open_sock(const struct nng_arg *a, int server)
{
    nng_socket s;
    int rv =
        a->reqrep ? (server ? nng_rep0_open(&s) : nng_req0_open(&s)) : nng_pair1_open(&s);
    if (rv)
        bfail("nng open: %s", nng_strerror(rv));
    if (a->big && ((rv = nng_socket_set_int(s, NNG_OPT_SENDBUF, 8192)) ||
                   (rv = nng_socket_set_int(s, NNG_OPT_RECVBUF, 8192))))
        bfail("nng buffers: %s", nng_strerror(rv));
    return s;
}

static void send_one(nng_socket s, void *msg, size_t size)
{
    int rv = nng_send(s, msg, size, 0);
    if (rv)
        bfail("nng_send: %s", nng_strerror(rv));
}

static void recv_one(nng_socket s, void *buf, size_t size)
{
    size_t n = 65536;
    int rv = nng_recv(s, buf, &n, 0);
    if (rv)
        bfail("nng_recv: %s", nng_strerror(rv));
    if (n != size)
        bfail("nng_recv: %zu bytes, expected %zu", n, size);
}

/* The listening side: consumer of a pair, or the replier. */
static int server(struct bctl *ctl, int idx, void *p)
{
    (void)idx;
    struct nng_arg *a = p;
    nng_socket s = open_sock(a, 1);
    int rv = nng_listen(s, a->url, NULL, 0);
    if (rv)
        bfail("nng_listen %s: %s", a->url, nng_strerror(rv));
    unsigned char buf[65536];
    int echo = a->reqrep || a->rtt;
    ctl_ready(ctl);
    for (uint64_t i = 0; i < a->warm + a->count; i++) {
        if (!echo && i == a->warm)
            ctl->t0 = now_ns();
        recv_one(s, buf, a->size);
        msg_check("nng", buf, i);
        if (echo)
            send_one(s, buf, a->size);
    }
    if (!echo)
        ctl->t1 = now_ns();
    /* Closing a socket drops what it still queues: each side closes only once the
     * other has everything. */
    atomic_store(&ctl->finished, 1);
    while (echo && !atomic_load(&ctl->done))
        nng_msleep(1);
    nng_close(s);
    return 0;
}

/* The dialling side: producer of a pair, or the requester. */
static int client(struct bctl *ctl, int idx, void *p)
{
    (void)idx;
    struct nng_arg *a = p;
    nng_socket s = open_sock(a, 0);
    unsigned char msg[65536], buf[65536];
    memset(msg, 0xab, a->size);
    int echo = a->reqrep || a->rtt;
    int64_t *lat = a->rtt ? lat_alloc(a->count) : NULL;
    ctl_ready(ctl);
    int rv = nng_dial(s, a->url, NULL, 0);
    if (rv)
        bfail("nng_dial %s: %s", a->url, nng_strerror(rv));
    for (uint64_t i = 0; i < a->warm + a->count; i++) {
        if (echo && i == a->warm)
            ctl->t0 = now_ns();
        int64_t t = now_ns();
        msg_stamp(msg, i);
        send_one(s, msg, a->size);
        if (echo) {
            recv_one(s, buf, a->size);
            msg_check("nng reply", buf, i);
        }
        if (lat && i >= a->warm)
            lat[i - a->warm] = now_ns() - t;
    }
    if (echo)
        ctl->t1 = now_ns();
    if (lat)
        lat_summarise(ctl, lat, a->count);
    atomic_store(&ctl->done, 1);
    while (!atomic_load(&ctl->finished))
        nng_msleep(1);
    nng_close(s);
    return 0;
}

int main(int argc, char **argv)
{
    struct bargs a = parse_args(argc, argv,
                                "nng_pair nng_pair_big nng_reqrep nng_reqrep_big "
                                "nng_pair_rtt nng_reqrep_rtt");
    struct nng_arg na = {0};
    na.reqrep = !strncmp(a.name, "nng_reqrep", 10);
    na.big = strstr(a.name, "_big") != NULL;
    na.rtt = strstr(a.name, "_rtt") != NULL;
    if (strncmp(a.name, "nng_pair", 8) && !na.reqrep) {
        fprintf(stderr, "bench_nng: unknown case %s\n", a.name);
        return 2;
    }
    snprintf(na.url, sizeof(na.url), "ipc://%s/nng-%d.ipc", bench_root(), (int)getpid());
    na.size = a.size;
    na.count = a.count;
    na.warm = BENCH_WARM(a.count);
    struct bctl *ctl = ctl_new();
    /* The client must dial after the server listens: the server is role 0 and
     * listens before it reports ready; the client dials after the start. */
    if (run_pair(ctl, server, &na, client, &na))
        return 1;
    if (na.rtt)
        report_rtt(a.name, a.size, a.count, ctl);
    else
        report_tput(a.name, a.size, a.count, ctl);
    return 0;
}
