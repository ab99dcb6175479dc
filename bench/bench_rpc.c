/*
 * bench_rpc.c — shoal services: a unary method that echoes its request, served by a
 * child process on a shoal_loop and called by this process.
 *
 *   rpc_shm_poll_rtt    shm://, both sides polling (spin budget 10 s): round trip
 *   rpc_shm_sleep_rtt   shm://, both sides asleep between calls (spin budget 0)
 *   rpc_ipc_rtt         ipc:// (nng over a Unix socket): round trip
 *   rpc_tcp_rtt         tcp:// on the loopback (with the token handshake): round trip
 *   rpc_shm_tput16      shm://, 16 client threads on one channel, 16 calls in flight:
 *                       calls per second
 *
 * The server is forked before this process touches nng (nng does not survive fork).
 */
#include <pthread.h>

#include "shoal.h"

#include "common.h"

#include "../tests/rpc/bytes_echo.h" /* the echo method, shared with the rpc tests */

#define TOKEN    "bench-token"
#define INFLIGHT 16

static char addr[300];
static size_t msg_size;
static shoal_loop *srv_loop;

static const shoal_rpc_method methods[] = {
    {"Echo", SHOAL_RPC_UNARY, NULL, NULL, bytes_echo, 0}};
static const shoal_rpc_service service = {"bench.Echo", methods, 1, NULL};

static int server(struct bctl *ctl, int index, void *arg)
{
    (void)index, (void)arg;
    shoal_rpc_server *s;
    if (shoal_loop_create(&srv_loop) || shoal_rpc_server_create(&s, srv_loop) ||
        shoal_rpc_server_add_service(s, &service) ||
        shoal_rpc_server_set_token(s, TOKEN) || shoal_rpc_server_listen(s, addr, NULL))
        bfail("server: %s", shoal_errdetail());
    ctl_ready(ctl);
    while (!atomic_load(&ctl->finished))
        shoal_loop_run_once(srv_loop, SHOAL_MS(50));
    shoal_rpc_server_destroy(s);
    shoal_loop_destroy(srv_loop);
    return 0;
}

static shoal_rpc_channel *connect_or_fail(void)
{
    shoal_rpc_channel *ch;
    shoal_rpc_channel_config cfg = {.connect_timeout = SHOAL_SEC(30), .token = TOKEN};
    if (shoal_rpc_channel_open(&ch, addr, &cfg))
        bfail("client: %s", shoal_errdetail());
    return ch;
}

static void call_or_fail(shoal_rpc_channel *ch, const void *req)
{
    void *resp;
    size_t len;
    char detail[128];
    int code = shoal_rpc_unary(ch, "bench.Echo", &methods[0], req, msg_size, &resp, &len,
                               NULL, detail, sizeof(detail));
    if (code != SHOAL_RPC_OK || len != msg_size)
        bfail("call: %s: %s", shoal_rpc_code_name(code), detail);
    free(resp);
}

struct tput {
    shoal_rpc_channel *ch;
    uint64_t calls;
};

static void *tput_thread(void *arg)
{
    struct tput *t = arg;
    char *req = calloc(1, msg_size);
    for (uint64_t i = 0; i < t->calls; i++)
        call_or_fail(t->ch, req);
    free(req);
    return NULL;
}

int main(int argc, char **argv)
{
    const char *cases = "rpc_shm_poll_rtt rpc_shm_sleep_rtt rpc_ipc_rtt rpc_tcp_rtt "
                        "rpc_shm_tput16";
    struct bargs a = parse_args(argc, argv, cases);
    const char *c = a.name;
    const char *root = bench_root();
    msg_size = a.size;
    if (!strncmp(c, "rpc_shm_", 8))
        snprintf(addr, sizeof(addr), "shm://bench-rpc");
    else if (!strcmp(c, "rpc_ipc_rtt"))
        snprintf(addr, sizeof(addr), "ipc://%s/rpc.sock", root);
    else if (!strcmp(c, "rpc_tcp_rtt"))
        snprintf(addr, sizeof(addr), "tcp://127.0.0.1:%d", 20000 + getpid() % 12000);
    else {
        fprintf(stderr, "unknown case %s; cases: %s\n", c, cases);
        return 2;
    }
    if (!strcmp(c, "rpc_shm_poll_rtt"))
        shoal_set_spin_ns(SHOAL_SEC(10));
    else if (!strcmp(c, "rpc_shm_sleep_rtt"))
        shoal_set_spin_ns(0);

    struct bctl *ctl = ctl_new();
    pid_t pid = fork();
    if (pid == 0) {
        alarm(BENCH_CHILD_ALARM);
        _exit(server(ctl, 0, NULL));
    }
    while (!atomic_load(&ctl->ready))
        usleep(100);
    atomic_store(&ctl->go, 1);
    shoal_rpc_channel *ch = connect_or_fail();
    char *req = calloc(1, msg_size);
    uint64_t warm = BENCH_WARM(a.count);
    for (uint64_t i = 0; i < warm; i++)
        call_or_fail(ch, req);
    if (!strcmp(c, "rpc_shm_tput16")) {
        pthread_t th[INFLIGHT];
        struct tput t = {ch, a.count / INFLIGHT ? a.count / INFLIGHT : 1};
        ctl->t0 = now_ns();
        for (int i = 0; i < INFLIGHT; i++)
            pthread_create(&th[i], NULL, tput_thread, &t);
        for (int i = 0; i < INFLIGHT; i++)
            pthread_join(th[i], NULL);
        ctl->t1 = now_ns();
        report_tput(c, a.size, t.calls * INFLIGHT, ctl);
    } else {
        int64_t *lat = lat_alloc(a.count);
        for (uint64_t i = 0; i < a.count; i++) {
            int64_t t0 = now_ns();
            call_or_fail(ch, req);
            lat[i] = now_ns() - t0;
        }
        lat_summarise(ctl, lat, a.count);
        free(lat);
        report_rtt(c, a.size, a.count, ctl);
    }
    free(req);
    shoal_rpc_channel_close(ch);
    atomic_store(&ctl->finished, 1);
    waitpid(pid, NULL, 0);
    return 0;
}
