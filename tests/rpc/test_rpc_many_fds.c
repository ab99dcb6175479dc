/* test_rpc_many_fds.c — a tcp:// connection from a process with 5,000 descriptors
 * open: it connects and calls, and its reads wait on the connection's socket itself
 * (the client holds its own duplicate of the socket: rpc_nng.c found it among the
 * numbers near the lowest free one, without looking through the 5,000). Prints the
 * time a connection takes to set up (open, answer the token challenge, one call,
 * close) with 5,000 descriptors open and with about 10: a figure, never a verdict. */
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#include "bytes_echo.h"
#include "forked_server.h"
#include "testutil.h"

#define MANY  5000
#define CALLS 200
#define SETUP 50 /* connections timed */

static const shoal_rpc_method methods[] = {
    {"Echo", SHOAL_RPC_UNARY, NULL, NULL, bytes_echo, 0}};
static const shoal_rpc_service service = {"test.ManyFds", methods, 1, NULL};
static const shoal_rpc_channel_config cfg = {.connect_timeout = SHOAL_SEC(30),
                                             .token = FS_TOKEN};
static char addr[64];
static int port, extra[MANY];

/* Opens MANY more descriptors (of /dev/null). */
static void open_many(void)
{
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_true(null >= 0);
    for (int i = 0; i < MANY; i++)
        assert_true((extra[i] = fcntl(null, F_DUPFD_CLOEXEC, 0)) >= 0);
    close(null);
}

static void close_many(void)
{
    for (int i = 0; i < MANY; i++)
        close(extra[i]);
}

/* Descriptors of this process that are TCP sockets connected to the server. */
static int sockets_to_server(void)
{
    int n = 0;
    for (int fd = 0; fd < 2 * MANY + 100; fd++) {
        struct sockaddr_in a;
        socklen_t len = sizeof(a);
        if (getpeername(fd, (struct sockaddr *)&a, &len) == 0 &&
            a.sin_family == AF_INET && ntohs(a.sin_port) == port)
            n++;
    }
    return n;
}

static void echo(shoal_rpc_channel *ch, int i)
{
    void *resp;
    size_t len;
    char detail[128];
    assert_int_equal(shoal_rpc_unary(ch, service.name, &methods[0], &i, sizeof(i), &resp,
                                     &len, NULL, detail, sizeof(detail)),
                     SHOAL_RPC_OK);
    assert_int_equal(len, sizeof(i));
    assert_memory_equal(resp, &i, sizeof(i));
    free(resp);
}

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

/* Mean time (us) of SETUP connections: open, one call, close. */
static double setup_us(void)
{
    double t0 = now_us();
    for (int i = 0; i < SETUP; i++) {
        shoal_rpc_channel *ch;
        T_OK(shoal_rpc_channel_open(&ch, addr, &cfg));
        echo(ch, i);
        shoal_rpc_channel_close(ch);
    }
    return (now_us() - t0) / SETUP;
}

static void test_many_fds(void **state)
{
    (void)state;
    shoal_rpc_channel *ch;
    T_OK(shoal_rpc_channel_open(&ch, addr, &cfg));
    for (int i = 0; i < CALLS; i++)
        echo(ch, i);
    /* nng's socket and the duplicate the reads wait on */
    assert_int_equal(sockets_to_server(), 2);
    shoal_rpc_channel_close(ch);
    double many = setup_us();
    close_many();
    double few = setup_us();
    print_message("connection set-up (open, token, one call, close): %.0f us with %d "
                  "more descriptors open, %.0f us without\n",
                  many, MANY, few);
}

int main(void)
{
    struct rlimit r;
    if (getrlimit(RLIMIT_NOFILE, &r) != 0 || r.rlim_max < 2 * MANY + 100) {
        print_message("skipped: the descriptor limit is below %d\n", 2 * MANY + 100);
        return 0;
    }
    r.rlim_cur = r.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &r) != 0)
        return 1;
    t_setup_root();
    open_many();
    port = t_tcp_port(0);
    snprintf(addr, sizeof(addr), "tcp://127.0.0.1:%d", port);
    fs_flags *f = t_shared_alloc(sizeof(*f));
    pid_t srv = fs_start(&service, addr, f); /* it has the many descriptors too */
    if (srv < 0)
        return 1;
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_many_fds)};
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    return fs_stop(srv, f) != 0 ? 1 : rc;
}
