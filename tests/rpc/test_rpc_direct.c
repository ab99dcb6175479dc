/* test_rpc_direct.c — direct receive (shoal_rpc_ctx_set_direct) over shm:// (and over
 * ipc:// or tcp:// with SHOAL_RPC_TRANSPORT=ipc or tcp, but for the killed client;
 * over tcp:// the handler's thread and the client wait on the socket itself): a
 * bidirectional stream whose handler thread reads its connection itself answers in
 * lock step and a window ahead; a unary call started on the same channel meanwhile is
 * served (the connection goes back to the loop) and the stream goes on; the client's
 * cancel, the deadline and a client killed with SIGKILL end the handler's receive;
 * a handler that sends more than the client's window while the client does not read
 * waits and then finishes; pipelined batches come back whole and in order; direct
 * receive is refused on another thread. The server is
 * a forked process; its handlers count what they saw in shared memory. Over nng the
 * servers of all the tests are forked first, before this process uses nng (nng does
 * not survive fork), and the killed client (a forked child) is left out. */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>

#include "bytes_echo.h"
#include "chat_client.h"
#include "forked_server.h"
#include "internal.h"
#include "rpc_internal.h"
#include "testutil.h"

#define ADDR    "shm://direct-echo"
#define SERVICE "test.Direct"
#define BURST   (RPC_SHM_WINDOW * 3)

struct shared {
    fs_flags srv;
    _Atomic int ended;     /* Chat handlers that returned */
    _Atomic int cancelled; /* ... after their receive failed (cancel, deadline, peer) */
    _Atomic int refused;   /* set_direct refused on another thread */
    _Atomic int stage;
};

static struct shared *sh;

static void *other_thread(void *ctx)
{
    if (shoal_rpc_ctx_set_direct(ctx, 1) == SHOAL_EINVAL)
        atomic_fetch_add(&sh->refused, 1);
    return NULL;
}

/* Each request back; a request "burst" is answered with BURST responses. */
static int chat(shoal_rpc_ctx *ctx, void *arg)
{
    (void)arg;
    pthread_t t;
    if (pthread_create(&t, NULL, other_thread, ctx) == 0)
        pthread_join(t, NULL);
    if (shoal_rpc_ctx_set_direct(ctx, 1) < 0)
        return SHOAL_RPC_INTERNAL;
    void *m;
    size_t len;
    int rc;
    while ((rc = shoal_rpc_ctx_recv(ctx, &m, &len)) == 1) {
        int n = len == 6 && memcmp(m, "burst", 6) == 0 ? BURST : 1;
        for (int i = 0; i < n && rc >= 0; i++)
            rc = shoal_rpc_ctx_send(ctx, m, len);
        free(m);
        if (rc < 0)
            break;
    }
    atomic_fetch_add(&sh->cancelled, rc < 0);
    atomic_fetch_add(&sh->ended, 1);
    return rc < 0 ? SHOAL_RPC_CANCELLED : SHOAL_RPC_OK;
}

static const shoal_rpc_method methods[] = {
    {"Chat", SHOAL_RPC_BIDI_STREAMING, NULL, NULL, chat, 0},
    {"Echo", SHOAL_RPC_UNARY, NULL, NULL, bytes_echo, 0}};
static const shoal_rpc_service service = {SERVICE, methods, 2, NULL};

static shoal_rpc_channel *ch;
static pid_t server_pid;
static const shoal_rpc_channel_config cfg = {.connect_timeout = SHOAL_SEC(30),
                                             .token = FS_TOKEN};

#define NNG_TESTS 5 /* all but test_client_killed */
static char addr[300] = ADDR;
static struct {
    char addr[300];
    struct shared *sh;
    pid_t pid;
} nng_srv[NNG_TESTS];
static int nng_next = -1; /* over nng: the next test's server, else -1 */

/* Over ipc:// or tcp:// (tcp non-zero): forks the servers of all the tests. Returns 0
 * or -1. */
static int start_nng_servers(int tcp)
{
    for (int i = 0; i < NNG_TESTS; i++) {
        if (tcp)
            snprintf(nng_srv[i].addr, sizeof(nng_srv[i].addr), "tcp://127.0.0.1:%d",
                     t_tcp_port(i));
        else
            snprintf(nng_srv[i].addr, sizeof(nng_srv[i].addr), "ipc://%s/direct-%d.sock",
                     t_root, i);
        sh = nng_srv[i].sh = t_shared_alloc(sizeof(struct shared)); /* the child's */
        nng_srv[i].pid = fs_start(&service, nng_srv[i].addr, &nng_srv[i].sh->srv);
        if (nng_srv[i].pid < 0)
            return -1;
    }
    nng_next = 0;
    return 0;
}

static int setup(void **state)
{
    (void)state;
    if (nng_next >= 0) {
        sh = nng_srv[nng_next].sh;
        server_pid = nng_srv[nng_next].pid;
        snprintf(addr, sizeof(addr), "%s", nng_srv[nng_next++].addr);
    } else {
        sh = t_shared_alloc(sizeof(*sh));
        server_pid = fs_start(&service, ADDR, &sh->srv);
    }
    if (server_pid < 0)
        return -1;
    return shoal_rpc_channel_open(&ch, addr, &cfg);
}

static int teardown(void **state)
{
    (void)state;
    shoal_rpc_channel_close(ch);
    int rc = fs_stop(server_pid, &sh->srv);
    munmap(sh, sizeof(*sh));
    return rc;
}

static shoal_rpc_call *chat_start(shoal_duration timeout)
{
    shoal_rpc_call *c;
    shoal_rpc_options o = {.timeout = timeout};
    T_OK(shoal_rpc_call_start(&c, ch, SERVICE, &methods[0], &o));
    return c;
}

static int echo(const char *text)
{
    return unary_echo(ch, SERVICE, &methods[1], text);
}

static void test_lock_step_and_window(void **state)
{
    (void)state;
    shoal_rpc_call *c = chat_start(0);
    char text[32];
    for (int i = 0; i < 2000; i++) {
        snprintf(text, sizeof(text), "request %d", i);
        round_trip(c, text);
    }
    for (int i = 0; i < RPC_SHM_WINDOW; i++) /* a window ahead */
        T_OK(shoal_rpc_call_send(c, "ahead", 6));
    for (int i = 0; i < RPC_SHM_WINDOW; i++) {
        void *m;
        size_t len;
        assert_int_equal(shoal_rpc_call_recv(c, &m, &len), 1);
        assert_string_equal(m, "ahead");
        free(m);
    }
    finish_ok(c);
    assert_true(t_wait_atleast(&sh->ended, 1, SHOAL_SEC(10)));
    assert_int_equal(atomic_load(&sh->cancelled), 0);
    assert_int_equal(atomic_load(&sh->refused), 1);
}

/* Unary calls on the stream's connection while the handler reads it. */
static void test_other_calls(void **state)
{
    (void)state;
    shoal_rpc_call *c = chat_start(0);
    for (int i = 0; i < 50; i++) {
        round_trip(c, "before");
        assert_int_equal(echo("unary"), SHOAL_RPC_OK);
        round_trip(c, "after");
    }
    shoal_rpc_call *d = chat_start(0); /* two streams at once */
    round_trip(d, "second");
    round_trip(c, "first");
    finish_ok(d);
    round_trip(c, "first again");
    finish_ok(c);
    assert_true(t_wait_atleast(&sh->ended, 2, SHOAL_SEC(10)));
    assert_int_equal(atomic_load(&sh->cancelled), 0);
}

/* The client's cancel and the deadline reach a handler waiting in its own receive. */
static void test_cancel_and_deadline(void **state)
{
    (void)state;
    shoal_rpc_call *c = chat_start(0);
    round_trip(c, "x");
    usleep(100 * 1000); /* the handler sleeps in its receive */
    shoal_rpc_call_cancel(c);
    assert_int_equal(shoal_rpc_call_finish(c, NULL, 0), SHOAL_RPC_CANCELLED);
    shoal_rpc_call_free(c);
    assert_true(t_wait_atleast(&sh->cancelled, 1, SHOAL_SEC(10)));

    c = chat_start(SHOAL_MS(300));
    round_trip(c, "y");
    assert_int_equal(shoal_rpc_call_finish(c, NULL, 0), SHOAL_RPC_DEADLINE_EXCEEDED);
    shoal_rpc_call_free(c);
    assert_true(t_wait_atleast(&sh->cancelled, 2, SHOAL_SEC(10)));
    assert_int_equal(echo("still serving"), SHOAL_RPC_OK);
}

/* More responses than the window while the client does not read: the handler waits
 * for the client's WINDOW frames, which it reads itself. */
static void test_flow_control(void **state)
{
    (void)state;
    shoal_rpc_call *c = chat_start(0);
    T_OK(shoal_rpc_call_send(c, "burst", 6));
    usleep(100 * 1000); /* the handler fills the window and waits */
    for (int i = 0; i < BURST; i++) {
        void *m;
        size_t len;
        assert_int_equal(shoal_rpc_call_recv(c, &m, &len), 1);
        assert_string_equal(m, "burst");
        free(m);
    }
    round_trip(c, "after the burst");
    finish_ok(c);
    assert_true(t_wait_atleast(&sh->ended, 1, SHOAL_SEC(10)));
}

/* Pipelined batches, sent one by one or kept by the channel until it waits or flushes
 * (shoal_rpc_call_send_more): the handler answers requests that arrived together, its
 * responses kept while further requests are at hand (over nng: written together);
 * they all come back, in order — a burst of more than the client's window amid a
 * batch too, and a batch ended by the half-close. */
static void test_pipelined(void **state)
{
    (void)state;
    shoal_rpc_call *c = chat_start(0);
    char text[32];
    for (int round = 0; round < 300; round++) {
        int n = 1 + round % RPC_SHM_WINDOW;
        for (int i = 0; i < n; i++) {
            snprintf(text, sizeof(text), "r%d.%d", round, i);
            if (round % 2) /* kept by the channel until it waits (over nng) */
                T_OK(shoal_rpc_call_send_more(c, text, strlen(text) + 1));
            else
                T_OK(shoal_rpc_call_send(c, text, strlen(text) + 1));
        }
        for (int i = 0; i < n; i++) {
            snprintf(text, sizeof(text), "r%d.%d", round, i);
            expect(c, text);
        }
    }
    T_OK(shoal_rpc_call_send_more(c, "a", 2));
    T_OK(shoal_rpc_call_send_more(c, "burst", 6));
    T_OK(shoal_rpc_call_send_more(c, "b", 2));
    T_OK(shoal_rpc_channel_flush(ch));
    expect(c, "a");
    for (int i = 0; i < BURST; i++)
        expect(c, "burst");
    expect(c, "b");
    for (int i = 0; i < 8; i++) {
        snprintf(text, sizeof(text), "last %d", i);
        T_OK(shoal_rpc_call_send(c, text, strlen(text) + 1));
    }
    for (int i = 0; i < 8; i++) {
        snprintf(text, sizeof(text), "last %d", i);
        expect(c, text);
    }
    finish_ok(c);
    assert_true(t_wait_atleast(&sh->ended, 1, SHOAL_SEC(10)));
    assert_int_equal(atomic_load(&sh->cancelled), 0);
}

static int killed_client(void *arg)
{
    (void)arg;
    shoal_rpc_channel *own;
    if (shoal_rpc_channel_open(&own, addr, &cfg) < 0)
        return 1;
    shoal_rpc_call *c;
    if (shoal_rpc_call_start(&c, own, SERVICE, &methods[0], NULL) < 0 ||
        shoal_rpc_call_send(c, "z", 2) < 0)
        return 2;
    void *m;
    size_t len;
    if (shoal_rpc_call_recv(c, &m, &len) != 1)
        return 3;
    atomic_store(&sh->stage, 1);
    pause();
    return 0;
}

/* A client killed while the handler sleeps in its own receive: the handler's receive
 * fails and the server serves on. */
static void test_client_killed(void **state)
{
    (void)state;
    pid_t pid = t_fork(killed_client, NULL);
    assert_true(t_wait_atleast(&sh->stage, 1, SHOAL_SEC(30)));
    usleep(50 * 1000);
    t_kill(pid);
    assert_true(t_wait_atleast(&sh->cancelled, 1, SHOAL_SEC(10)));
    assert_int_equal(echo("after the kill"), SHOAL_RPC_OK);
}

int main(void)
{
    t_setup_root();
    const char *transport = getenv("SHOAL_RPC_TRANSPORT");
    int tcp = transport && strcmp(transport, "tcp") == 0;
    int over_nng = tcp || (transport && strcmp(transport, "ipc") == 0);
    if (over_nng && start_nng_servers(tcp) < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lock_step_and_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_calls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_and_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flow_control, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipelined, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_killed, setup, teardown),
    };
    if (over_nng)
        return _cmocka_run_group_tests(tcp ? "direct over tcp://" : "direct over ipc://",
                                       tests, NNG_TESTS, NULL, NULL);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
