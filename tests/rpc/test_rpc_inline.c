/* test_rpc_inline.c — inline receive (shoal_rpc_ctx_set_inline) over shm:// (and over
 * tcp:// with SHOAL_RPC_TRANSPORT=tcp, where the server's loop reads the sockets): a
 * bidirectional stream whose requests go to a function on the thread that reads the
 * connection (the server's loop) answers in lock step and in pipelined batches, in
 * order; several streams on their own connections at once, and unary calls beside
 * them, are all served; a function that cannot answer without waiting (the client's
 * window used up) turns inline receive off, the handler's thread answers the rest and
 * the next request, and turns it on again; a response another thread sends amid a
 * turn's keeps its place; messages larger than a socket's buffers arrive whole; the
 * client's cancel, the deadline and a
 * client killed with SIGKILL amid a batch end the handler's receive, and the server
 * serves on; inline receive is refused on another thread and for a unary call. The
 * server is a forked process; its handlers count what they saw in shared memory. Over
 * tcp:// every process is forked before the first uses nng (nng's threads do not
 * survive fork): the servers of all the tests, and the client to be killed, which
 * waits for its test to start. */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>

#include "bytes_echo.h"
#include "chat_client.h"
#include "forked_server.h"
#include "internal.h"
#include "rpc_internal.h"
#include "testutil.h"

#define SERVICE "test.Inline"
#define TESTS   7 /* the last: test_client_killed */

static char addr[128] = "shm://inline-echo";
static int burst = RPC_SHM_WINDOW * 3; /* three windows of the transport */

struct shared {
    fs_flags srv;
    _Atomic int ended;       /* Chat handlers that returned */
    _Atomic int cancelled;   /* ... after their receive failed (cancel, deadline, peer) */
    _Atomic int refused;     /* set_inline refused: another thread, a unary call */
    _Atomic int off_handler; /* requests the function took off the handler's thread */
    _Atomic int turned_off;  /* the function turned inline receive off */
    _Atomic int stage;
    _Atomic int relayed; /* responses another thread sent amid the function's */
    _Atomic int go;      /* tcp://: the client to be killed may start */
};

static struct shared *sh;

/* A request the function could not answer in full: the handler's thread sends the
 * rest (n more copies of m). */
typedef struct pending {
    pthread_t handler;
    void *m;
    size_t len;
    int n;
} pending;

static void *relay_thread(void *ctx)
{
    if (shoal_rpc_ctx_send(ctx, "relayed", 8) == 0)
        atomic_fetch_add(&sh->relayed, 1);
    return NULL;
}

/* Each request back; "burst" BURST times; "relay" after "relayed", which another
 * thread sends first. Sends only while the client's window has room, else leaves the
 * rest to the handler's thread. */
static int on_msg(shoal_rpc_ctx *ctx, void *m, size_t len, int more, void *arg)
{
    (void)more;
    pending *p = arg;
    if (!pthread_equal(pthread_self(), p->handler))
        atomic_fetch_add(&sh->off_handler, 1);
    pthread_t t;
    if (len == 6 && memcmp(m, "relay", 6) == 0 &&
        pthread_create(&t, NULL, relay_thread, ctx) == 0)
        pthread_join(t, NULL);
    p->m = m;
    p->len = len;
    p->n = len == 6 && memcmp(m, "burst", 6) == 0 ? burst : 1;
    while (p->n > 0 && shoal_rpc_ctx_send_ready(ctx) &&
           shoal_rpc_ctx_send(ctx, m, len) == 0)
        p->n--;
    if (p->n == 0) {
        free(m);
        p->m = NULL;
        return 0;
    }
    atomic_fetch_add(&sh->turned_off, 1);
    return 1;
}

static void *other_thread(void *ctx)
{
    if (shoal_rpc_ctx_set_inline(ctx, on_msg, NULL) == SHOAL_EINVAL)
        atomic_fetch_add(&sh->refused, 1);
    return NULL;
}

static int chat(shoal_rpc_ctx *ctx, void *arg)
{
    (void)arg;
    pthread_t t;
    if (pthread_create(&t, NULL, other_thread, ctx) == 0)
        pthread_join(t, NULL);
    pending p = {pthread_self(), NULL, 0, 0};
    if (shoal_rpc_ctx_set_inline(ctx, on_msg, &p) < 0)
        return SHOAL_RPC_INTERNAL;
    void *m;
    size_t len;
    int rc;
    /* EAGAIN: the function turned inline receive off; a request may be behind */
    while ((rc = shoal_rpc_ctx_recv(ctx, &m, &len)) == SHOAL_EAGAIN) {
        for (rc = 0; p.n > 0 && rc >= 0; p.n--)
            rc = shoal_rpc_ctx_send(ctx, p.m, p.len);
        free(p.m);
        p.m = NULL;
        if (rc >= 0 && shoal_rpc_ctx_recv_ready(ctx) &&
            (rc = shoal_rpc_ctx_recv(ctx, &m, &len)) == 1) {
            rc = shoal_rpc_ctx_send(ctx, m, len); /* one by this thread */
            free(m);
        }
        if (rc < 0 || shoal_rpc_ctx_set_inline(ctx, on_msg, &p) < 0)
            break;
    }
    free(p.m);
    shoal_rpc_ctx_set_inline(ctx, NULL, NULL);
    atomic_fetch_add(&sh->cancelled, rc < 0);
    atomic_fetch_add(&sh->ended, 1);
    return rc < 0 ? SHOAL_RPC_CANCELLED : SHOAL_RPC_OK;
}

/* A unary echo that tries inline receive first (refused). */
static int echo_refusing(shoal_rpc_ctx *ctx, void *arg)
{
    if (shoal_rpc_ctx_set_inline(ctx, on_msg, NULL) == SHOAL_EINVAL)
        atomic_fetch_add(&sh->refused, 1);
    return bytes_echo(ctx, arg);
}

static const shoal_rpc_method methods[] = {
    {"Chat", SHOAL_RPC_BIDI_STREAMING, NULL, NULL, chat, 0},
    {"Echo", SHOAL_RPC_UNARY, NULL, NULL, echo_refusing, 1}};
static const shoal_rpc_service service = {SERVICE, methods, 2, NULL};

static shoal_rpc_channel *ch;
static pid_t server_pid;
static const shoal_rpc_channel_config cfg = {.connect_timeout = SHOAL_SEC(30),
                                             .token = FS_TOKEN};

/* tcp://: each test's server (and the client killed in the last), forked up front */
static struct {
    char addr[64];
    struct shared *sh;
    pid_t pid;
} tcp_srv[TESTS];
static int tcp_next = -1; /* over tcp://: the next test's server, else -1 */
static pid_t killed_pid;

static int killed_client(void *arg);

static int start_tcp(void)
{
    burst = SHOAL_RPC_WINDOW * 3;
    for (int i = 0; i < TESTS; i++) {
        snprintf(tcp_srv[i].addr, sizeof(tcp_srv[i].addr), "tcp://127.0.0.1:%d",
                 t_tcp_port(i));
        sh = tcp_srv[i].sh = t_shared_alloc(sizeof(struct shared));
        tcp_srv[i].pid = fs_start(&service, tcp_srv[i].addr, &sh->srv);
        if (tcp_srv[i].pid < 0)
            return -1;
    }
    snprintf(addr, sizeof(addr), "%s", tcp_srv[TESTS - 1].addr); /* sh: the last's */
    tcp_next = 0;
    killed_pid = t_fork(killed_client, NULL);
    return 0;
}

static int setup(void **state)
{
    (void)state;
    if (tcp_next >= 0) {
        sh = tcp_srv[tcp_next].sh;
        server_pid = tcp_srv[tcp_next].pid;
        snprintf(addr, sizeof(addr), "%s", tcp_srv[tcp_next++].addr);
    } else {
        sh = t_shared_alloc(sizeof(*sh));
        server_pid = fs_start(&service, addr, &sh->srv);
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

static shoal_rpc_call *chat_start(shoal_rpc_channel *on, shoal_duration timeout)
{
    shoal_rpc_call *c;
    shoal_rpc_options o = {.timeout = timeout};
    T_OK(shoal_rpc_call_start(&c, on, SERVICE, &methods[0], &o));
    return c;
}

static int echo(const char *text)
{
    return unary_echo(ch, SERVICE, &methods[1], text);
}

/* Batches of 1 to a window of requests, then all their responses, in order. */
static void batches(shoal_rpc_call *c, const char *tag, int rounds)
{
    char text[48];
    for (int round = 0; round < rounds; round++) {
        int n = 1 + round % RPC_SHM_WINDOW;
        for (int i = 0; i < n; i++) {
            snprintf(text, sizeof(text), "%s r%d.%d", tag, round, i);
            T_OK(shoal_rpc_call_send(c, text, strlen(text) + 1));
        }
        for (int i = 0; i < n; i++) {
            snprintf(text, sizeof(text), "%s r%d.%d", tag, round, i);
            expect(c, text);
        }
    }
}

static void test_lock_step_and_batches(void **state)
{
    (void)state;
    shoal_rpc_call *c = chat_start(ch, 0);
    char text[32];
    for (int i = 0; i < 2000; i++) {
        snprintf(text, sizeof(text), "request %d", i);
        round_trip(c, text);
    }
    batches(c, "one", 300);
    finish_ok(c);
    assert_true(t_wait_atleast(&sh->ended, 1, SHOAL_SEC(10)));
    assert_int_equal(atomic_load(&sh->cancelled), 0);
    assert_int_equal(atomic_load(&sh->refused), 1);    /* the other thread */
    assert_true(atomic_load(&sh->off_handler) > 2000); /* the loop ran the function */
    assert_int_equal(echo("unary"), SHOAL_RPC_OK);
    assert_int_equal(atomic_load(&sh->refused), 2); /* and the unary call */
}

#define STREAMS 4

static void *stream_client(void *arg)
{
    char tag[16];
    snprintf(tag, sizeof(tag), "s%d", (int)(intptr_t)arg);
    shoal_rpc_channel *own;
    T_OK(shoal_rpc_channel_open(&own, addr, &cfg));
    shoal_rpc_call *c = chat_start(own, 0);
    batches(c, tag, 400);
    finish_ok(c);
    shoal_rpc_channel_close(own);
    return NULL;
}

/* Streams on connections of their own at once, unary calls beside them: every
 * response reaches its stream, in order. */
static void test_many_streams(void **state)
{
    (void)state;
    pthread_t t[STREAMS];
    for (intptr_t i = 0; i < STREAMS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, stream_client, (void *)i), 0);
    for (int i = 0; i < 100; i++)
        assert_int_equal(echo("beside"), SHOAL_RPC_OK);
    for (int i = 0; i < STREAMS; i++)
        pthread_join(t[i], NULL);
    assert_true(t_wait_atleast(&sh->ended, STREAMS, SHOAL_SEC(10)));
    assert_int_equal(atomic_load(&sh->cancelled), 0);
}

/* A burst of more responses than the window and a request behind it, the client
 * reading nothing meanwhile: the function turns inline receive off, the handler's
 * thread sends the rest (waiting for the window) and answers the next request, and
 * inline receive goes on. */
static void test_turned_off_and_on(void **state)
{
    (void)state;
    shoal_rpc_call *c = chat_start(ch, 0);
    for (int round = 0; round < 3; round++) {
        T_OK(shoal_rpc_call_send(c, "burst", 6));
        T_OK(shoal_rpc_call_send(c, "after", 6));
        usleep(50 * 1000); /* the function fills the window and gives up */
        for (int i = 0; i < burst; i++)
            expect(c, "burst");
        expect(c, "after");
        batches(c, "again", 40);
    }
    finish_ok(c);
    assert_true(t_wait_atleast(&sh->ended, 1, SHOAL_SEC(10)));
    assert_true(atomic_load(&sh->turned_off) >= 3);
    assert_int_equal(atomic_load(&sh->cancelled), 0);
}

/* A response another thread sends while the loop's thread runs the function for a
 * batch of requests (its responses kept for the turn's end) goes after the ones the
 * function sent before, and before the ones it sends after. */
static void test_other_thread_amid_turn(void **state)
{
    (void)state;
    shoal_rpc_call *c = chat_start(ch, 0);
    for (int round = 0; round < 50; round++) {
        T_OK(shoal_rpc_call_send_more(c, "a", 2)); /* one batch message: one turn */
        T_OK(shoal_rpc_call_send_more(c, "relay", 6));
        T_OK(shoal_rpc_call_send(c, "b", 2));
        expect(c, "a");
        expect(c, "relayed");
        expect(c, "relay");
        expect(c, "b");
    }
    finish_ok(c);
    assert_int_equal(atomic_load(&sh->relayed), 50);
    assert_true(t_wait_atleast(&sh->ended, 1, SHOAL_SEC(10)));
    assert_int_equal(atomic_load(&sh->cancelled), 0);
}

/* The client's cancel and the deadline reach a handler waiting for the end. */
static void test_cancel_and_deadline(void **state)
{
    (void)state;
    shoal_rpc_call *c = chat_start(ch, 0);
    round_trip(c, "x");
    usleep(100 * 1000); /* the handler sleeps in its receive */
    shoal_rpc_call_cancel(c);
    assert_int_equal(shoal_rpc_call_finish(c, NULL, 0), SHOAL_RPC_CANCELLED);
    shoal_rpc_call_free(c);
    assert_true(t_wait_atleast(&sh->cancelled, 1, SHOAL_SEC(10)));

    c = chat_start(ch, SHOAL_MS(300));
    round_trip(c, "y");
    assert_int_equal(shoal_rpc_call_finish(c, NULL, 0), SHOAL_RPC_DEADLINE_EXCEEDED);
    shoal_rpc_call_free(c);
    assert_true(t_wait_atleast(&sh->cancelled, 2, SHOAL_SEC(10)));
    assert_int_equal(echo("still serving"), SHOAL_RPC_OK);
}

/* Over tcp://, requests and responses larger than a socket's buffers (written in parts
 * as the peer reads, read in many turns of the loop) arrive whole. (Over shm:// a
 * message is bounded by the pipe's max_frame, which the transport's tests cover.) */
static void test_large_messages(void **state)
{
    (void)state;
    if (tcp_next < 0)
        skip();
    static const size_t sizes[] = {64 << 10, 1 << 20, 6 << 20};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        uint8_t *req = malloc(sizes[i]);
        assert_non_null(req);
        for (size_t k = 0; k < sizes[i]; k++)
            req[k] = (uint8_t)(k * 7 + i);
        void *resp = NULL;
        size_t len = 0;
        assert_int_equal(shoal_rpc_unary(ch, SERVICE, &methods[1], req, sizes[i], &resp,
                                         &len, NULL, NULL, 0),
                         SHOAL_RPC_OK);
        assert_int_equal(len, sizes[i]);
        assert_memory_equal(resp, req, len);
        free(resp);
        free(req);
    }
    assert_int_equal(echo("after"), SHOAL_RPC_OK);
}

/* A client that sends a window of requests and stops amid reading their responses. */
static int killed_client(void *arg)
{
    (void)arg;
    for (int ms = 0; tcp_next >= 0 && !atomic_load(&sh->go); ms++) { /* forked early */
        if (ms > 300 * 1000)
            return 5; /* its test never came */
        usleep(1000);
    }
    shoal_rpc_channel *own;
    if (shoal_rpc_channel_open(&own, addr, &cfg) < 0)
        return 1;
    shoal_rpc_call *c;
    if (shoal_rpc_call_start(&c, own, SERVICE, &methods[0], NULL) < 0)
        return 2;
    for (int i = 0; i < RPC_SHM_WINDOW; i++)
        if (shoal_rpc_call_send(c, "z", 2) < 0)
            return 3;
    void *m;
    size_t len;
    if (shoal_rpc_call_recv(c, &m, &len) != 1)
        return 4;
    atomic_store(&sh->stage, 1);
    pause();
    return 0;
}

/* A client killed amid a batch: the handler's receive fails and the server serves
 * on, a stream included. */
static void test_client_killed(void **state)
{
    (void)state;
    pid_t pid = killed_pid;
    if (tcp_next < 0)
        pid = t_fork(killed_client, NULL);
    atomic_store(&sh->go, 1);
    assert_true(t_wait_atleast(&sh->stage, 1, SHOAL_SEC(30)));
    t_kill(pid);
    assert_true(t_wait_atleast(&sh->cancelled, 1, SHOAL_SEC(10)));
    assert_int_equal(echo("after the kill"), SHOAL_RPC_OK);
    shoal_rpc_call *c = chat_start(ch, 0);
    batches(c, "after", 20);
    finish_ok(c);
}

int main(void)
{
    t_setup_root();
    const char *transport = getenv("SHOAL_RPC_TRANSPORT");
    if (transport && strcmp(transport, "tcp") == 0 && start_tcp() < 0)
        return 1;
    const struct CMUnitTest tests[TESTS] = {
        cmocka_unit_test_setup_teardown(test_lock_step_and_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_streams, setup, teardown),
        cmocka_unit_test_setup_teardown(test_turned_off_and_on, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_thread_amid_turn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_and_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_killed, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
