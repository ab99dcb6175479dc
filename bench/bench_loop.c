/*
 * bench_loop.c — message-to-callback latency through the event loop, against a direct
 * blocking get and against epoll on eventfds and pipes.
 *
 * Every case is a round trip between two processes on distinct cores: the server
 * watches N sources (N = 1, 16 or 1,000), the client sends each request on one of them
 * (the middle one: the others stay idle, so the case shows whether the cost of a
 * wake-up grows with the number of sources watched), the server notices it, takes it
 * and replies on one SPSC queue; the client waits for the reply with a blocking get.
 * Only the server's way of noticing the request differs between cases:
 *
 *   direct_{poll,sleep}_rtt                  blocking shoal_queue_get on the one queue
 *   loop_{uring,epoll}_{poll,sleep}_N_rtt    shoal_loop over N queues, on that engine
 *   loop_..._N_fd_rtt                        the same, the loop also watching one idle
 *                                            eventfd (the epoll engine then sleeps in
 *                                            epoll_wait, helpers watching the queues)
 *   epoll_{eventfd,pipe}_{poll,sleep}_N_rtt  epoll_wait over N eventfds or pipes
 *
 * poll: both sides spin (shoal spin budget 10 s; epoll_wait with timeout 0);
 * sleep: neither does (spin budget 0; epoll_wait blocks).
 */
#include <stdbool.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>

#include "common.h"

#include <shoal.h>

#define MAX_SOURCES 1000

struct lb {
    const char *how; /* "direct", "loop", "eventfd", "pipe" */
    const char *engine;
    int poll, nsrc;
    bool idle_fd; /* the loop also watches an eventfd that never becomes readable */
    size_t size;
    uint64_t count, warm;
    shoal_queue *req[MAX_SOURCES];
    shoal_queue *reply;
    int fds[MAX_SOURCES][2]; /* eventfd in [0]; pipe read end [0], write end [1] */
};

/* ---- client -------------------------------------------------------------------------
 */

static void send_request(struct lb *b, int k, const unsigned char *msg)
{
    int rc;
    if (!strcmp(b->how, "eventfd")) {
        uint64_t one = 1;
        rc = write(b->fds[k][0], &one, sizeof(one)) == sizeof(one) ? 0 : -1;
    } else if (!strcmp(b->how, "pipe")) {
        rc = write(b->fds[k][1], msg, b->size) == (ssize_t)b->size ? 0 : -1;
    } else {
        rc = shoal_queue_put(b->req[k], msg, b->size, SHOAL_FOREVER);
    }
    if (rc)
        bfail("%s: request %d failed", b->how, k);
}

static int client(struct bctl *ctl, int idx, void *p)
{
    (void)idx;
    struct lb *b = p;
    shoal_set_spin_ns(b->poll ? SHOAL_SEC(10) : 0);
    unsigned char msg[65536], buf[65536];
    memset(msg, 0xab, b->size);
    int64_t *lat = lat_alloc(b->count);
    ctl_ready(ctl);
    for (uint64_t i = 0; i < b->warm + b->count; i++) {
        int64_t t = now_ns();
        msg_stamp(msg, i);
        send_request(b, b->nsrc / 2, msg);
        size_t len;
        if (shoal_queue_get(b->reply, buf, b->size, &len, SHOAL_FOREVER))
            bfail("reply: %s", shoal_errdetail());
        if (i >= b->warm)
            lat[i - b->warm] = now_ns() - t;
        msg_check("reply", buf, i);
    }
    lat_summarise(ctl, lat, b->count);
    return 0;
}

/* ---- servers ------------------------------------------------------------------------
 */

struct srv {
    struct lb *b;
    uint64_t next; /* the next request expected */
    unsigned char buf[65536];
    shoal_loop *loop;
};

/* The request in s->buf arrived: check it and reply. */
static void answer(struct srv *s)
{
    msg_check("request", s->buf, s->next);
    if (shoal_queue_put(s->b->reply, s->buf, s->b->size, SHOAL_FOREVER))
        bfail("reply put: %s", shoal_errdetail());
    s->next++;
}

static int direct_server(struct srv *s)
{
    size_t len;
    while (s->next < s->b->warm + s->b->count) {
        if (shoal_queue_get(s->b->req[s->b->nsrc / 2], s->buf, s->b->size, &len,
                            SHOAL_FOREVER))
            bfail("request get: %s", shoal_errdetail());
        answer(s);
    }
    return 0;
}

static void on_request(shoal_loop *l, shoal_loop_source *src, int ev, void *arg)
{
    (void)src;
    struct srv *s = arg;
    size_t len;
    if (ev < 0)
        bfail("loop: source reported %d", ev);
    while (shoal_queue_try_get(s->b->req[s->b->nsrc / 2], s->buf, s->b->size, &len) ==
           0) {
        answer(s);
        if (s->next == s->b->warm + s->b->count)
            shoal_loop_stop(l);
    }
}

static void on_idle_fd(shoal_loop *l, shoal_loop_source *src, int ev, void *arg)
{
    (void)l, (void)src, (void)arg;
    bfail("loop: the idle eventfd was reported (%d)", ev);
}

static int loop_server(struct srv *s)
{
    setenv("SHOAL_LOOP_ENGINE", s->b->engine, 1);
    if (shoal_loop_create(&s->loop))
        bfail("loop: %s", shoal_errdetail());
    for (int k = 0; k < s->b->nsrc; k++)
        if (shoal_loop_add_queue(s->loop, s->b->req[k], SHOAL_LOOP_READABLE, on_request,
                                 s, NULL))
            bfail("loop add: %s", shoal_errdetail());
    int idle = s->b->idle_fd ? eventfd(0, EFD_CLOEXEC) : -1;
    if (s->b->idle_fd &&
        (idle < 0 ||
         shoal_loop_add_fd(s->loop, idle, SHOAL_LOOP_READABLE, on_idle_fd, NULL, NULL)))
        bfail("loop add eventfd: %s", idle < 0 ? strerror(errno) : shoal_errdetail());
    int rc = shoal_loop_run(s->loop);
    shoal_loop_destroy(s->loop);
    if (idle >= 0)
        close(idle);
    return rc ? 1 : 0;
}

static int epoll_server(struct srv *s)
{
    struct lb *b = s->b;
    int ep = epoll_create1(0);
    for (int k = 0; k < b->nsrc; k++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)k};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, b->fds[k][0], &ev))
            bfail("epoll_ctl: %s", strerror(errno));
    }
    bool is_pipe = !strcmp(b->how, "pipe");
    while (s->next < b->warm + b->count) {
        struct epoll_event ev[16];
        int n = epoll_wait(ep, ev, 16, b->poll ? 0 : -1);
        for (int i = 0; i < n; i++) {
            int fd = b->fds[ev[i].data.u32][0];
            if (is_pipe) {
                if (read(fd, s->buf, b->size) != (ssize_t)b->size)
                    bfail("pipe read");
            } else {
                uint64_t v;
                if (read(fd, &v, sizeof(v)) != sizeof(v))
                    bfail("eventfd read");
                msg_stamp(s->buf, s->next); /* an eventfd carries no payload */
            }
            answer(s);
        }
    }
    close(ep);
    return 0;
}

static int server(struct bctl *ctl, int idx, void *p)
{
    (void)idx;
    struct lb *b = p;
    shoal_set_spin_ns(b->poll ? SHOAL_SEC(10) : 0);
    static struct srv s;
    s.b = b;
    ctl_ready(ctl);
    if (!strcmp(b->how, "direct"))
        return direct_server(&s);
    if (!strcmp(b->how, "loop"))
        return loop_server(&s);
    return epoll_server(&s);
}

/* ---- set-up ---------------------------------------------------------------------------
 */

/* Parses loop_uring_poll_16_rtt, loop_epoll_sleep_1_fd_rtt, epoll_pipe_sleep_1_rtt,
 * direct_poll_rtt. */
static bool parse_case(const char *c, struct lb *b)
{
    char how[16], engine[16], mode[16], base[64];
    int n = 1;
    size_t len = strlen(c);
    if (!strncmp(c, "loop_", 5) && len > 7 && len < sizeof(base) &&
        !strcmp(c + len - 7, "_fd_rtt")) {
        b->idle_fd = true;
        snprintf(base, sizeof(base), "%.*s_rtt", (int)(len - 7), c);
        c = base;
    }
    if (sscanf(c, "direct_%15[a-z]_rtt", mode) == 1) {
        b->how = "direct";
    } else if (sscanf(c, "loop_%15[a-z]_%15[a-z]_%d_rtt", engine, mode, &n) == 3) {
        b->how = "loop";
        b->engine = strcmp(engine, "uring") ? "epoll" : "uring";
        if (strcmp(engine, b->engine))
            return false;
    } else if (sscanf(c, "epoll_%15[a-z]_%15[a-z]_%d_rtt", how, mode, &n) == 3) {
        b->how = !strcmp(how, "eventfd") ? "eventfd" : !strcmp(how, "pipe") ? "pipe" : "";
        if (!*b->how)
            return false;
    } else {
        return false;
    }
    b->poll = !strcmp(mode, "poll");
    b->nsrc = n;
    return (b->poll || !strcmp(mode, "sleep")) && n >= 1 && n <= MAX_SOURCES;
}

static void open_sources(struct lb *b)
{
    shoal_queue_config one = {.max_msg = b->size, .capacity = 4, .spsc = 1};
    if (shoal_queue_open(&b->reply, NULL, SHOAL_CREATE, &one, NULL))
        bfail("reply queue: %s", shoal_errdetail());
    for (int k = 0; k < b->nsrc; k++) {
        int rc = 0;
        if (!strcmp(b->how, "eventfd")) {
            b->fds[k][0] = eventfd(0, 0);
            rc = b->fds[k][0] < 0;
        } else if (!strcmp(b->how, "pipe")) {
            rc = pipe(b->fds[k]);
        } else {
            rc = shoal_queue_open(&b->req[k], NULL, SHOAL_CREATE, &one, NULL);
        }
        if (rc)
            bfail("source %d: %s", k, rc < 0 ? shoal_errdetail() : strerror(errno));
    }
}

int main(int argc, char **argv)
{
    const char *cases =
        "direct_{poll,sleep}_rtt loop_{uring,epoll}_{poll,sleep}_N[_fd]_rtt "
        "epoll_{eventfd,pipe}_{poll,sleep}_N_rtt (N: 1..1000)";
    struct bargs a = parse_args(argc, argv, cases);
    static struct lb b;
    if (!parse_case(a.name, &b)) {
        fprintf(stderr, "bench_loop: unknown case %s\ncases: %s\n", a.name, cases);
        return 2;
    }
    b.size = a.size;
    b.count = a.count;
    b.warm = BENCH_WARM(a.count);
    if (!strcmp(b.how, "loop")) {
        setenv("SHOAL_LOOP_ENGINE", b.engine, 1);
        shoal_loop *l;
        if (shoal_loop_create(&l))
            return bskip(a.name, b.engine[0] == 'u' ? "io_uring_unavailable_here"
                                                    : "epoll_engine_unavailable");
        shoal_loop_destroy(l);
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max; /* 1,000 pipes or queues need 2,000 descriptors */
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    bench_root();
    open_sources(&b);
    struct bctl *ctl = ctl_new();
    int rc = run_pair(ctl, client, &b, server, &b);
    for (int k = 0; k < b.nsrc; k++)
        if (b.req[k])
            shoal_queue_close(b.req[k]);
    shoal_queue_close(b.reply);
    if (rc)
        return 1;
    report_rtt(a.name, a.size, a.count, ctl);
    return 0;
}
