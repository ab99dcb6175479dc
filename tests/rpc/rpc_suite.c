/*
 * rpc_suite.c — services between processes over the transport $SHOAL_RPC_TRANSPORT
 * names (shm, ipc, tcp or tls; CTest runs this program once per transport): the four
 * kinds of call, metadata, status codes, deadlines (and their inheritance by a call made
 * in a handler), cancellation, a server killed mid-stream, a client killed mid-stream,
 * invalid and undecodable requests, and 100 client processes on one server loop.
 *
 * The server is a child process running the Echo service (echo_service.h) on a
 * shoal_loop; the test process is the client. Children are started anew (fork and
 * exec of this program, with a role in argv[1]) rather than merely forked, because
 * nng does not survive fork(). Counters the server's handlers keep live in a named
 * SharedMemory block that every process opens.
 *
 * Over tls (tls+tcp://) the server requires both a client certificate and the token;
 * make-test-certs.sh makes a throwaway CA and certificates under the test's root
 * first, and test_tls checks the refusals: a wrong CA, a wrong server name, no
 * client certificate, one of another CA, and a plain tcp:// client.
 */
#include <pthread.h>

#include "testutil.h"

#include "echo_service.h"
#include "rpc_internal.h"

struct shared {
    _Atomic int ready;
    _Atomic int cancels;      /* handlers that saw their call cancelled */
    _Atomic int handled;      /* Say handlers that got a valid request */
    _Atomic int remaining_ms; /* what Wait saw as the time left */
    _Atomic int relay_done;
    _Atomic int relay_code; /* the status of Relay's inner call */
    _Atomic int stage;
};

static struct shared *sh;
static char addr[300];
static shoal_loop *srv_loop;
/* Generous: the machine running the tests may be loaded. */
#define TOKEN    "s3cret-token"
#define SEND_SEC SHOAL_SEC(5)
static shoal_rpc_channel_config slow_ok = {.connect_timeout = SHOAL_SEC(30),
                                           .token = TOKEN};
static char pki[300]; /* tls: the directory of the certificates */

/* The path of file `name` of the test PKI (one of a few static buffers). */
static const char *pki_file(const char *name)
{
    static char buf[8][400];
    static int next;
    char *b = buf[next++ % 8];
    snprintf(b, sizeof(buf[0]), "%s/%s", pki, name);
    return b;
}

static int is_tls(void)
{
    return strncmp(addr, "tls+tcp://", 10) == 0;
}

/* Over tls, every channel of the suite presents the client certificate. */
static void tls_config_client(void)
{
    static char ca[400], cert[400], key[400];
    snprintf(pki, sizeof(pki), "%s/pki", t_root);
    slow_ok.tls_ca_file = strcpy(ca, pki_file("ca.pem"));
    slow_ok.tls_cert_file = strcpy(cert, pki_file("client.pem"));
    slow_ok.tls_key_file = strcpy(key, pki_file("client.key"));
}

/* ---- the server ----------------------------------------------------------------------
 */

static int h_say(shoal_rpc_ctx *ctx, void *arg)
{
    (void)arg;
    Note req, resp = {0};
    if (Echo_ctx_next(ctx, &req) != 1)
        return SHOAL_RPC_INVALID_ARGUMENT;
    atomic_fetch_add(&sh->handled, 1);
    const char *who = shoal_rpc_md_get(shoal_rpc_ctx_metadata(ctx), "who");
    if (who)
        shoal_rpc_ctx_add_header(ctx, "who", who);
    shoal_rpc_ctx_add_trailer(ctx, "method", shoal_rpc_ctx_method(ctx));
    resp.n = req.n + 1;
    memcpy(resp.text, req.text, sizeof(resp.text));
    Echo_ctx_send(ctx, &resp);
    return SHOAL_RPC_OK;
}

static int h_count(shoal_rpc_ctx *ctx, void *arg)
{
    (void)arg;
    Note req;
    if (Echo_ctx_next(ctx, &req) != 1)
        return SHOAL_RPC_INVALID_ARGUMENT;
    for (int i = 0; i < req.n; i++) {
        Note v = {.n = i};
        if (Echo_ctx_send(ctx, &v) < 0) {
            atomic_fetch_add(&sh->cancels, 1);
            return SHOAL_RPC_CANCELLED;
        }
    }
    return SHOAL_RPC_OK;
}

static int h_sum(shoal_rpc_ctx *ctx, void *arg)
{
    (void)arg;
    Note v, sum = {0};
    int rc;
    while ((rc = Echo_ctx_next(ctx, &v)) == 1)
        sum.n += v.n;
    if (rc < 0)
        return SHOAL_RPC_CANCELLED;
    Echo_ctx_send(ctx, &sum);
    return SHOAL_RPC_OK;
}

static int h_chat(shoal_rpc_ctx *ctx, void *arg)
{
    (void)arg;
    Note v;
    int rc;
    while ((rc = Echo_ctx_next(ctx, &v)) == 1) {
        v.n *= 2;
        if ((rc = Echo_ctx_send(ctx, &v)) < 0)
            break;
    }
    if (rc < 0) {
        atomic_fetch_add(&sh->cancels, 1);
        return SHOAL_RPC_CANCELLED;
    }
    return SHOAL_RPC_OK;
}

static int h_fail(shoal_rpc_ctx *ctx, void *arg)
{
    (void)arg;
    Note req;
    if (Echo_ctx_next(ctx, &req) != 1)
        return SHOAL_RPC_INVALID_ARGUMENT;
    shoal_rpc_ctx_set_detail(ctx, "%s", req.text);
    return req.n;
}

static int h_wait(shoal_rpc_ctx *ctx, void *arg)
{
    (void)arg;
    Note req;
    if (Echo_ctx_next(ctx, &req) != 1)
        return SHOAL_RPC_INVALID_ARGUMENT;
    shoal_duration left = shoal_rpc_ctx_time_remaining(ctx);
    atomic_store(&sh->remaining_ms, left == SHOAL_FOREVER ? -1 : (int)(left / 1000000));
    while (!shoal_rpc_ctx_cancelled(ctx))
        usleep(1000);
    atomic_fetch_add(&sh->cancels, 1);
    return SHOAL_RPC_CANCELLED;
}

static int h_relay(shoal_rpc_ctx *ctx, void *arg)
{
    (void)arg;
    Note req, resp;
    if (Echo_ctx_next(ctx, &req) != 1)
        return SHOAL_RPC_INVALID_ARGUMENT;
    shoal_rpc_channel *ch;
    int code = SHOAL_RPC_UNAVAILABLE;
    if (shoal_rpc_channel_open(&ch, addr, &slow_ok) == 0) {
        code = Echo_unary(ch, Echo_Wait, &req, &resp, NULL, NULL, 0); /* no timeout */
        shoal_rpc_channel_close(ch);
    }
    atomic_store(&sh->relay_code, code);
    atomic_store(&sh->relay_done, 1);
    return code;
}

static int h_stop(shoal_rpc_ctx *ctx, void *arg)
{
    (void)arg;
    Note req;
    Echo_ctx_next(ctx, &req);
    Echo_ctx_send(ctx, &req);
    shoal_loop_stop(srv_loop);
    return SHOAL_RPC_OK;
}

/* arg non-NULL: with a pool of POOL_WORKERS workers and a bound of POOL_MAX calls. */
#define POOL_WORKERS 2
#define POOL_MAX     4
static int server_main(void *arg)
{
    static const shoal_rpc_handler h[Echo_N_METHODS] = {h_say,  h_count, h_sum,   h_chat,
                                                        h_fail, h_wait,  h_relay, h_stop};
    Echo_server skel;
    shoal_rpc_server *s;
    if (shoal_loop_create(&srv_loop) < 0 || shoal_rpc_server_create(&s, srv_loop) < 0 ||
        shoal_rpc_server_add_service(s, Echo_service(&skel, h, NULL)) < 0 ||
        shoal_rpc_server_set_token(s, TOKEN) < 0 ||
        (arg && shoal_rpc_server_set_workers(s, POOL_WORKERS, POOL_MAX) < 0) ||
        (is_tls() &&
         shoal_rpc_server_set_tls(s, pki_file("server.pem"), pki_file("server.key"),
                                  pki_file("ca.pem"), 1) < 0) ||
        shoal_rpc_server_listen(s, addr, NULL) < 0) {
        fprintf(stderr, "server: %s\n", shoal_errdetail());
        return 1;
    }
    atomic_store(&sh->ready, 1);
    int rc = shoal_loop_run(srv_loop);
    shoal_rpc_server_destroy(s);
    shoal_loop_destroy(srv_loop);
    return rc == 0 ? 0 : 2;
}

static pid_t server_pid; /* killed by the teardown if a test failed before stopping it */

static pid_t server_start_as(const char *role)
{
    atomic_store(&sh->ready, 0);
    pid_t pid = server_pid = t_spawn_self(role, addr, NULL);
    assert_true(t_wait_atleast(&sh->ready, 1, SHOAL_SEC(30)));
    return pid;
}

static pid_t server_start(void)
{
    return server_start_as("server");
}

static int teardown(void **state)
{
    (void)state;
    if (server_pid > 0)
        t_kill(server_pid);
    server_pid = 0;
    return 0;
}

static shoal_rpc_channel *connect_ch(void)
{
    shoal_rpc_channel *ch;
    T_OK(shoal_rpc_channel_open(&ch, addr, &slow_ok));
    return ch;
}

/* Stops the server with its Stop method and checks that it shut down cleanly. */
static void server_stop(shoal_rpc_channel *ch, pid_t pid)
{
    Note req = {0}, resp;
    assert_int_equal(Echo_unary(ch, Echo_Stop, &req, &resp, NULL, NULL, 0), SHOAL_RPC_OK);
    shoal_rpc_channel_close(ch);
    assert_int_equal(t_wait(pid), 0);
    server_pid = 0;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the tests ------------------------------------------------------------------------
 */

static void test_unary_metadata(void **state)
{
    (void)state;
    pid_t pid = server_start();
    shoal_rpc_channel *ch = connect_ch();
    for (int i = 0; i < 500; i++) {
        Note req = {.n = i}, resp;
        snprintf(req.text, sizeof(req.text), "hello %d", i);
        char detail[64];
        assert_int_equal(
            Echo_unary(ch, Echo_Say, &req, &resp, NULL, detail, sizeof(detail)),
            SHOAL_RPC_OK);
        assert_int_equal(resp.n, i + 1);
        assert_string_equal(resp.text, req.text);
    }
    /* Metadata both ways, through the call API. */
    shoal_rpc_md md = {0};
    T_OK(shoal_rpc_md_add(&md, "who", "tester"));
    shoal_rpc_options opts = {.timeout = SHOAL_SEC(10), .metadata = &md};
    Note req = {.n = 41, .text = "md"}, resp;
    shoal_rpc_call *c;
    T_OK(Echo_start(&c, ch, Echo_Say, &req, &opts));
    assert_int_equal(Echo_next(c, &resp), 1);
    assert_int_equal(resp.n, 42);
    assert_int_equal(Echo_next(c, &resp), 0);
    assert_int_equal(shoal_rpc_call_finish(c, NULL, 0), SHOAL_RPC_OK);
    assert_string_equal(shoal_rpc_md_get(shoal_rpc_call_headers(c), "who"), "tester");
    assert_string_equal(shoal_rpc_md_get(shoal_rpc_call_trailers(c), "method"),
                        "test.Echo/Say");
    shoal_rpc_call_free(c);
    shoal_rpc_md_clear(&md);
    server_stop(ch, pid);
}

static void test_server_streaming(void **state)
{
    (void)state;
    pid_t pid = server_start();
    shoal_rpc_channel *ch = connect_ch();
    Note req = {.n = 200}, v;
    shoal_rpc_call *c;
    T_OK(Echo_start(&c, ch, Echo_Count, &req, NULL));
    int i = 0;
    while (Echo_next(c, &v) == 1) {
        assert_int_equal(v.n, i);
        i++;
        if (i % 50 == 0)
            usleep(2000); /* a slow reader: the server waits for credit */
    }
    assert_int_equal(i, 200);
    assert_int_equal(shoal_rpc_call_finish(c, NULL, 0), SHOAL_RPC_OK);
    shoal_rpc_call_free(c);
    server_stop(ch, pid);
}

static void test_client_streaming(void **state)
{
    (void)state;
    pid_t pid = server_start();
    shoal_rpc_channel *ch = connect_ch();
    shoal_rpc_call *c;
    T_OK(Echo_start(&c, ch, Echo_Sum, NULL, NULL));
    int sum = 0;
    for (int i = 1; i <= 300; i++) {
        Note v = {.n = i};
        T_OK(Echo_send(c, &v));
        sum += i;
    }
    T_OK(shoal_rpc_call_close_send(c));
    Note r;
    assert_int_equal(Echo_next(c, &r), 1);
    assert_int_equal(r.n, sum);
    assert_int_equal(Echo_next(c, &r), 0);
    assert_int_equal(shoal_rpc_call_finish(c, NULL, 0), SHOAL_RPC_OK);
    shoal_rpc_call_free(c);
    server_stop(ch, pid);
}

/* Chat, lock step: sends first .. first + n - 1, each answered before the next. */
static void chat_lock_step(shoal_rpc_call *c, int first, int n)
{
    Note v;
    for (int i = first; i < first + n; i++) {
        Note m = {.n = i};
        T_OK(Echo_send(c, &m));
        assert_int_equal(Echo_next(c, &v), 1);
        assert_int_equal(v.n, 2 * i);
    }
}

/* Chat, ahead: sends first .. first + n - 1 (with send_more: kept for one write), then
 * takes their answers. */
static void chat_ahead(shoal_rpc_call *c, int first, int n, bool more)
{
    Note v;
    for (int i = first; i < first + n; i++) {
        Note m = {.n = i};
        T_OK(more ? shoal_rpc_call_send_more(c, &m, sizeof(m)) : Echo_send(c, &m));
    }
    for (int i = first; i < first + n; i++) {
        assert_int_equal(Echo_next(c, &v), 1);
        assert_int_equal(v.n, 2 * i);
    }
}

/* Ends a chat cleanly, then the server. */
static void chat_end(shoal_rpc_call *c, shoal_rpc_channel *ch, pid_t pid)
{
    Note v;
    T_OK(shoal_rpc_call_close_send(c));
    assert_int_equal(Echo_next(c, &v), 0);
    assert_int_equal(shoal_rpc_call_finish(c, NULL, 0), SHOAL_RPC_OK);
    shoal_rpc_call_free(c);
    server_stop(ch, pid);
}

static int server_window(void);

static void test_bidi(void **state)
{
    (void)state;
    pid_t pid = server_start();
    shoal_rpc_channel *ch = connect_ch();
    shoal_rpc_call *c;
    T_OK(Echo_start(&c, ch, Echo_Chat, NULL, NULL));
    chat_lock_step(c, 0, 100);
    chat_ahead(c, 0, server_window(), false); /* a window ahead */
    chat_end(c, ch, pid);
}

/* A client pipelining batches of a whole window (send_more, then the responses) after a
 * few messages that leave the server's count of consumed messages off the half window
 * (test_rpc_window checks the credit returns themselves): every response comes, in
 * order, and the credit kept for the next write (the client's WINDOW frames) never
 * stalls the stream. */
static void test_window_batches(void **state)
{
    (void)state;
    pid_t pid = server_start();
    shoal_rpc_channel *ch = connect_ch();
    shoal_rpc_call *c;
    T_OK(Echo_start(&c, ch, Echo_Chat, NULL, NULL));
    chat_lock_step(c, 0, 3); /* the offset: 3 of a half window */
    int window = server_window();
    for (int round = 0; round < 50; round++)
        chat_ahead(c, 3 + round * window, window, true);
    chat_end(c, ch, pid);
}

static void test_status_codes(void **state)
{
    (void)state;
    assert_string_equal(shoal_rpc_code_name(SHOAL_RPC_DEADLINE_EXCEEDED),
                        "DEADLINE_EXCEEDED");
    assert_string_equal(shoal_rpc_code_name(16), "UNAUTHENTICATED");
    assert_null(shoal_rpc_code_name(17));
    assert_int_equal(shoal_rpc_code_from_name("UNAVAILABLE"), 14);
    pid_t pid = server_start();
    shoal_rpc_channel *ch = connect_ch();
    for (int code = 0; code <= 16; code++) {
        Note req = {.n = code}, resp;
        snprintf(req.text, sizeof(req.text), "because %d", code);
        char detail[64] = "";
        int got = Echo_unary(ch, Echo_Fail, &req, &resp, NULL, detail, sizeof(detail));
        /* OK without a response is the server's error (INTERNAL). */
        assert_int_equal(got, code == 0 ? SHOAL_RPC_INTERNAL : code);
        if (code)
            assert_string_equal(detail, req.text);
    }
    /* A method the server does not have. */
    static const shoal_rpc_method nope = {"Nope", SHOAL_RPC_UNARY, NULL, NULL, NULL, 0};
    void *out;
    size_t len;
    char detail[128];
    assert_int_equal(shoal_rpc_unary(ch, Echo_SERVICE, &nope, "x", 1, &out, &len, NULL,
                                     detail, sizeof(detail)),
                     SHOAL_RPC_UNIMPLEMENTED);
    assert_non_null(strstr(detail, "test.Echo/Nope"));
    assert_int_equal(shoal_rpc_unary(ch, "other.Svc", &Echo_client[Echo_Say], "x", 1,
                                     &out, &len, NULL, NULL, 0),
                     SHOAL_RPC_UNIMPLEMENTED);
    server_stop(ch, pid);
}

static void test_deadline(void **state)
{
    (void)state;
    pid_t pid = server_start();
    shoal_rpc_channel *ch = connect_ch();
    int before = atomic_load(&sh->cancels);
    Note req = {.n = 1}, resp;
    shoal_rpc_options opts = {.timeout = SHOAL_MS(200)};
    int64_t t0 = now_ms();
    assert_int_equal(Echo_unary(ch, Echo_Wait, &req, &resp, &opts, NULL, 0),
                     SHOAL_RPC_DEADLINE_EXCEEDED);
    int64_t took = now_ms() - t0;
    assert_true(took >= 190 && took < 10000);
    int left = atomic_load(&sh->remaining_ms);
    assert_true(left > 0 && left <= 200);
    /* The handler sees its deadline pass. */
    assert_true(t_wait_atleast(&sh->cancels, before + 1, SHOAL_SEC(10)));
    /* An expired deadline fails at once. */
    opts.timeout = 1;
    usleep(10);
    assert_int_equal(Echo_unary(ch, Echo_Say, &req, &resp, &opts, NULL, 0),
                     SHOAL_RPC_DEADLINE_EXCEEDED);
    server_stop(ch, pid);
}

static void test_deadline_inherited(void **state)
{
    (void)state;
    pid_t pid = server_start();
    shoal_rpc_channel *ch = connect_ch();
    atomic_store(&sh->relay_done, 0);
    Note req = {.n = 1}, resp;
    shoal_rpc_options opts = {.timeout = SHOAL_MS(300)};
    assert_int_equal(Echo_unary(ch, Echo_Relay, &req, &resp, &opts, NULL, 0),
                     SHOAL_RPC_DEADLINE_EXCEEDED);
    /* Relay called Wait without a timeout: its own deadline applied. */
    assert_true(t_wait_atleast(&sh->relay_done, 1, SHOAL_SEC(10)));
    assert_int_equal(atomic_load(&sh->relay_code), SHOAL_RPC_DEADLINE_EXCEEDED);
    server_stop(ch, pid);
}

static void test_cancel(void **state)
{
    (void)state;
    pid_t pid = server_start();
    shoal_rpc_channel *ch = connect_ch();
    int before = atomic_load(&sh->cancels);
    Note req = {.n = 1000000}, v;
    shoal_rpc_call *c;
    T_OK(Echo_start(&c, ch, Echo_Count, &req, NULL));
    for (int i = 0; i < 5; i++)
        assert_int_equal(Echo_next(c, &v), 1);
    shoal_rpc_call_cancel(c);
    assert_int_equal(Echo_next(c, &v), 0);
    assert_int_equal(shoal_rpc_call_finish(c, NULL, 0), SHOAL_RPC_CANCELLED);
    shoal_rpc_call_free(c);
    assert_true(t_wait_atleast(&sh->cancels, before + 1, SHOAL_SEC(10)));
    /* The channel still works. */
    Note r;
    assert_int_equal(Echo_unary(ch, Echo_Say, &req, &r, NULL, NULL, 0), SHOAL_RPC_OK);
    server_stop(ch, pid);
}

/* shoal_rpc_call_wait waits at most its timeout, and returns once a response is there
 * or the call is over (here: at its deadline). */
static void test_call_wait(void **state)
{
    (void)state;
    pid_t pid = server_start();
    shoal_rpc_channel *ch = connect_ch();
    Note req = {.n = 3}, v;
    shoal_rpc_call *c;
    /* a deadline far enough that a loaded machine does not reach it in the first wait */
    shoal_rpc_options opts = {.timeout = SHOAL_SEC(1)};
    T_OK(Echo_start(&c, ch, Echo_Wait, &req, &opts));
    int64_t t0 = now_ms();
    assert_int_equal(shoal_rpc_call_wait(c, SHOAL_MS(50)), 0);
    assert_true(now_ms() - t0 >= 45);
    assert_int_equal(shoal_rpc_call_wait(c, SHOAL_FOREVER), 1);
    assert_int_equal(shoal_rpc_call_finish(c, NULL, 0), SHOAL_RPC_DEADLINE_EXCEEDED);
    shoal_rpc_call_free(c);
    T_OK(Echo_start(&c, ch, Echo_Count, &req, NULL));
    for (int i = 0; i < 3; i++) {
        assert_int_equal(shoal_rpc_call_wait(c, SHOAL_SEC(10)), 1);
        assert_int_equal(Echo_next(c, &v), 1);
        assert_int_equal(v.n, i);
    }
    assert_int_equal(shoal_rpc_call_wait(c, SHOAL_SEC(10)), 1);
    assert_int_equal(Echo_next(c, &v), 0);
    assert_int_equal(shoal_rpc_call_finish(c, NULL, 0), SHOAL_RPC_OK);
    shoal_rpc_call_free(c);
    assert_int_equal(shoal_rpc_call_wait(NULL, 0), SHOAL_EINVAL);
    server_stop(ch, pid);
}

static void test_invalid_request(void **state)
{
    (void)state;
    pid_t pid = server_start();
    shoal_rpc_channel *ch = connect_ch();
    int before = atomic_load(&sh->handled);
    Note bad, resp;
    memset(&bad, 'x', sizeof(bad)); /* text not terminated */
    bad.n = 1;
    char detail[64];
    assert_int_equal(Echo_unary(ch, Echo_Say, &bad, &resp, NULL, detail, sizeof(detail)),
                     SHOAL_RPC_INVALID_ARGUMENT);
    Note neg = {.n = -5};
    assert_int_equal(Echo_unary(ch, Echo_Say, &neg, &resp, NULL, NULL, 0),
                     SHOAL_RPC_INVALID_ARGUMENT);
    /* Wrong size. */
    void *out;
    size_t len;
    assert_int_equal(shoal_rpc_unary(ch, Echo_SERVICE, &Echo_client[Echo_Say], "abc", 3,
                                     &out, &len, NULL, NULL, 0),
                     SHOAL_RPC_INVALID_ARGUMENT);
    assert_int_equal(atomic_load(&sh->handled), before);
    Note ok = {.n = 1};
    assert_int_equal(Echo_unary(ch, Echo_Say, &ok, &resp, NULL, NULL, 0), SHOAL_RPC_OK);
    server_stop(ch, pid);
}

/* A connection of no channel, past its ACCEPT (answering tcp://'s challenge); *window:
 * the receive window the server announced in it. */
static rpc_conn *raw_open(uint32_t *window)
{
    rpc_conn *raw;
    T_OK(strncmp(addr, "shm://", 6) == 0 ? rpc__shm_connect(&raw, addr + 6, NULL)
                                         : rpc__nng_connect(&raw, addr, &slow_ok));
    const uint8_t *buf;
    size_t len;
    rpc_frame f;
    assert_int_equal(raw->ops->recv(raw, &buf, &len, SHOAL_SEC(10)), 1); /* ACCEPT */
    T_OK(rpc__frame_decode(buf, len, &f, NULL));
    if (f.has_payload) { /* tcp://: answer the challenge */
        uint8_t mac[32];
        rpc__auth_answer(TOKEN, f.payload, f.payload_len, mac);
        rpc_frame a = {
            .type = RPC_F_AUTH, .payload = mac, .payload_len = 32, .has_payload = 1};
        T_OK(rpc__send(raw, &a, NULL, SEND_SEC));
        assert_int_equal(raw->ops->recv(raw, &buf, &len, SHOAL_SEC(10)), 1); /* ACCEPT */
        T_OK(rpc__frame_decode(buf, len, &f, NULL));
    }
    assert_int_equal(f.type, RPC_F_ACCEPT);
    *window = f.credit;
    return raw;
}

/* The receive window the server announces (both sides announce the same one on a
 * transport: SHOAL_RPC_WINDOW, or the transport's less, rpc__own_window). */
static int server_window(void)
{
    uint32_t window;
    rpc_conn *raw = raw_open(&window);
    assert_int_equal(window, rpc__own_window(raw));
    raw->ops->close(raw);
    return (int)window;
}

/* The MESSAGE frames of call id that arrive on raw within `quiet` of each other. */
static int raw_messages(rpc_conn *raw, uint64_t id, shoal_duration quiet)
{
    const uint8_t *buf;
    size_t len;
    rpc_frame f;
    int n = 0;
    while (raw->ops->recv(raw, &buf, &len, quiet) == 1) {
        T_OK(rpc__frame_decode(buf, len, &f, NULL));
        n += f.call == id && f.type == RPC_F_MESSAGE;
    }
    return n;
}

/* Each side announces its receive window (ACCEPT's and START's credit) and sends no
 * more than the other's: a client that announces none (a build before the
 * announcement) gets the old window of 16, one that announces 4 gets 4, one that
 * announces more than the transport holds gets what it holds, and a WINDOW frame lets
 * the server go on by what it returns. */
static void test_window_announced(void **state)
{
    (void)state;
    pid_t pid = server_start();
    shoal_rpc_channel *good = connect_ch();
    uint32_t window;
    rpc_conn *raw = raw_open(&window);
    assert_int_equal(window, rpc__own_window(raw));
    Note req = {.n = 100};
    const char method[] = Echo_SERVICE "/Count";
    /* over shm:// 40 is more than the transport's window: the server sends by that */
    const uint32_t announced[] = {0, 4, 40};
    const int expect[] = {16, 4, window < 40 ? (int)window : 40};
    for (int i = 0; i < 3; i++) {
        rpc_frame start = {.call = 1 + (uint64_t)i,
                           .type = RPC_F_START,
                           .method = method,
                           .method_len = sizeof(method) - 1,
                           .payload = (const uint8_t *)&req,
                           .payload_len = sizeof(req),
                           .has_payload = 1,
                           .flags = RPC_FLAG_END,
                           .credit = announced[i]};
        T_OK(rpc__send(raw, &start, NULL, SEND_SEC));
        /* the server sends its window's worth, then waits for credit */
        assert_int_equal(raw_messages(raw, start.call, SHOAL_MS(300)), expect[i]);
        rpc_frame more = {.call = start.call, .type = RPC_F_WINDOW, .credit = 3};
        T_OK(rpc__send(raw, &more, NULL, SEND_SEC));
        assert_int_equal(raw_messages(raw, start.call, SHOAL_MS(300)), 3);
        rpc_frame cancel = {.call = start.call, .type = RPC_F_CANCEL};
        T_OK(rpc__send(raw, &cancel, NULL, SEND_SEC));
    }
    raw->ops->close(raw);
    /* a channel's calls use the window announced: a stream longer than it goes on */
    shoal_rpc_call *c;
    Note v;
    req.n = 3 * (int)window + 1;
    T_OK(Echo_start(&c, good, Echo_Count, &req, NULL));
    int i = 0;
    while (Echo_next(c, &v) == 1)
        assert_int_equal(v.n, i++);
    assert_int_equal(i, req.n);
    assert_int_equal(shoal_rpc_call_finish(c, NULL, 0), SHOAL_RPC_OK);
    shoal_rpc_call_free(c);
    server_stop(good, pid);
}

/* Undecodable and nonsensical frames, written straight onto a connection. */
static void test_garbage_frames(void **state)
{
    (void)state;
    pid_t pid = server_start();
    shoal_rpc_channel *good = connect_ch();
    uint32_t window;
    rpc_conn *raw = raw_open(&window);
    const uint8_t *buf;
    size_t len;
    rpc_frame f;
    static const uint8_t junk[][12] = {
        {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
        {0x08, 0x01, 0x10, 0x63},             /* frame type 99 */
        {0x08, 0x01, 0x10, 0x03, 0x3a, 0x7f}, /* payload overruns */
        {0x08, 0x07, 0x10, 0x08, 0x50, 0x05}, /* WINDOW of no call */
        {0x00},                               /* field 0 */
        {0x08, 0x01, 0x10, 0x02, 0x22, 0x00}, /* START of method "" */
    };
    const size_t lens[] = {12, 4, 6, 6, 1, 6};
    for (size_t i = 0; i < 6; i++)
        T_OK(raw->ops->send(raw, junk[i], lens[i], SHOAL_SEC(5)));
    raw->ops->send(raw, "", 0, SHOAL_SEC(5));
    /* The last one gets UNIMPLEMENTED; the server lives on for everyone. */
    int got_status = 0;
    for (int i = 0; i < 10 && !got_status; i++) {
        if (raw->ops->recv(raw, &buf, &len, SHOAL_SEC(5)) != 1)
            continue;
        if (rpc__frame_decode(buf, len, &f, NULL) == 0 && f.type == RPC_F_TRAILERS)
            got_status = (int)f.code;
    }
    assert_int_equal(got_status, SHOAL_RPC_UNIMPLEMENTED);
    raw->ops->close(raw);
    Note req = {.n = 1}, resp;
    assert_int_equal(Echo_unary(good, Echo_Say, &req, &resp, NULL, NULL, 0),
                     SHOAL_RPC_OK);
    server_stop(good, pid);
}

static void test_server_killed(void **state)
{
    (void)state;
    pid_t pid = server_start();
    shoal_rpc_channel *ch = connect_ch();
    Note req = {.n = 1000000}, v;
    shoal_rpc_options opts = {.timeout = SHOAL_SEC(60)};
    shoal_rpc_call *c;
    T_OK(Echo_start(&c, ch, Echo_Count, &req, &opts));
    for (int i = 0; i < 10; i++)
        assert_int_equal(Echo_next(c, &v), 1);
    t_kill(pid);
    server_pid = 0;
    int64_t t0 = now_ms();
    while (Echo_next(c, &v) == 1)
        ;
    char detail[200];
    assert_int_equal(shoal_rpc_call_finish(c, detail, sizeof(detail)),
                     SHOAL_RPC_UNAVAILABLE);
    assert_true(now_ms() - t0 < 20000); /* long before the deadline */
    shoal_rpc_call_free(c);
    Note r;
    assert_int_equal(Echo_unary(ch, Echo_Say, &req, &r, NULL, NULL, 0),
                     SHOAL_RPC_UNAVAILABLE);
    shoal_rpc_channel_close(ch);
}

static int killed_client(void *arg)
{
    (void)arg;
    shoal_rpc_channel *ch;
    if (shoal_rpc_channel_open(&ch, addr, &slow_ok) < 0)
        return 1;
    shoal_rpc_call *c;
    Note m = {.n = 1}, v;
    if (Echo_start(&c, ch, Echo_Chat, NULL, NULL) < 0 || Echo_send(c, &m) < 0 ||
        Echo_next(c, &v) != 1)
        return 2;
    atomic_store(&sh->stage, 1);
    pause();
    return 0;
}

static void test_client_killed(void **state)
{
    (void)state;
    pid_t pid = server_start();
    int before = atomic_load(&sh->cancels);
    atomic_store(&sh->stage, 0);
    pid_t cl = t_spawn_self("killed-client", addr, NULL);
    assert_true(t_wait_atleast(&sh->stage, 1, SHOAL_SEC(10)));
    t_kill(cl);
    /* The streaming handler sees the cancellation; the server serves on. */
    assert_true(t_wait_atleast(&sh->cancels, before + 1, SHOAL_SEC(10)));
    shoal_rpc_channel *ch = connect_ch();
    Note req = {.n = 1}, resp;
    assert_int_equal(Echo_unary(ch, Echo_Say, &req, &resp, NULL, NULL, 0), SHOAL_RPC_OK);
    server_stop(ch, pid);
}

static int many_client(void *arg)
{
    int id = (int)(intptr_t)arg;
    shoal_rpc_channel_config cfg = slow_ok;
    cfg.max_frame = 1024;
    cfg.connect_timeout = SHOAL_SEC(60);
    shoal_rpc_channel *ch;
    if (shoal_rpc_channel_open(&ch, addr, &cfg) < 0)
        return 1;
    atomic_fetch_add(&sh->stage, 1);
    shoal_rpc_options opts = {.timeout = SHOAL_SEC(60)};
    for (int i = 0; i < 20; i++) {
        Note req = {.n = id * 100 + i}, resp;
        if (Echo_unary(ch, Echo_Say, &req, &resp, &opts, NULL, 0) != 0 ||
            resp.n != req.n + 1)
            return 2;
    }
    shoal_rpc_call *c;
    Note req = {.n = 20}, v;
    if (Echo_start(&c, ch, Echo_Count, &req, &opts) < 0)
        return 3;
    int n = 0;
    while (Echo_next(c, &v) == 1)
        if (v.n != n++)
            return 4;
    if (n != 20 || shoal_rpc_call_finish(c, NULL, 0) != SHOAL_RPC_OK)
        return 5;
    shoal_rpc_call_free(c);
    shoal_rpc_channel_close(ch);
    return 0;
}

static void test_many_clients(void **state)
{
    (void)state;
    enum { N = 100 };
    pid_t pid = server_start();
    atomic_store(&sh->stage, 0);
    pid_t kids[N];
    for (int i = 0; i < N; i++) {
        char id[16];
        snprintf(id, sizeof(id), "%d", i);
        kids[i] = t_spawn_self("many-client", addr, id, NULL);
    }
    int failed = 0;
    for (int i = 0; i < N; i++)
        failed += t_wait(kids[i]) != 0;
    assert_int_equal(failed, 0);
    server_stop(connect_ch(), pid);
}

static void *thread_calls(void *arg)
{
    shoal_rpc_channel *ch = arg;
    for (int i = 0; i < 300; i++) {
        Note req = {.n = i}, resp;
        if (Echo_unary(ch, Echo_Say, &req, &resp, NULL, NULL, 0) != SHOAL_RPC_OK ||
            resp.n != i + 1)
            return (void *)1;
    }
    return NULL;
}

/* Many threads share one channel: they take turns reading it; no response is lost. */
static void test_threads_one_channel(void **state)
{
    (void)state;
    enum { T = 8 };
    pid_t pid = server_start();
    shoal_rpc_channel *ch = connect_ch();
    pthread_t th[T];
    for (int i = 0; i < T; i++)
        assert_int_equal(pthread_create(&th[i], NULL, thread_calls, ch), 0);
    int failed = 0;
    for (int i = 0; i < T; i++) {
        void *r;
        pthread_join(th[i], &r);
        failed += r != NULL;
    }
    assert_int_equal(failed, 0);
    server_stop(ch, pid);
}

static void test_hmac_vectors(void **state)
{
    (void)state;
    /* RFC 4231, test cases 2 and 6 (a key longer than a block). */
    static const char *data2 = "what do ya want for nothing?";
    static const uint8_t mac2[32] = {0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e,
                                     0x6a, 0x04, 0x24, 0x26, 0x08, 0x95, 0x75, 0xc7,
                                     0x5a, 0x00, 0x3f, 0x08, 0x9d, 0x27, 0x39, 0x83,
                                     0x9d, 0xec, 0x58, 0xb9, 0x64, 0xec, 0x38, 0x43};
    uint8_t out[32], key6[131];
    rpc__hmac_sha256("Jefe", 4, data2, strlen(data2), out);
    assert_memory_equal(out, mac2, 32);
    memset(key6, 0xaa, sizeof(key6));
    static const char *data6 = "Test Using Larger Than Block-Size Key - Hash Key First";
    static const uint8_t mac6[32] = {0x60, 0xe4, 0x31, 0x59, 0x1e, 0xe0, 0xb6, 0x7f,
                                     0x0d, 0x8a, 0x26, 0xaa, 0xcb, 0xf5, 0xb7, 0x7f,
                                     0x8e, 0x0b, 0xc6, 0x21, 0x37, 0x28, 0xc5, 0x14,
                                     0x05, 0x46, 0x04, 0x0f, 0x0e, 0xe3, 0x7f, 0x54};
    rpc__hmac_sha256(key6, sizeof(key6), data6, strlen(data6), out);
    assert_memory_equal(out, mac6, 32);
}

/* tcp:// needs the token: none or a wrong one is refused; the right one works. */
static void test_token(void **state)
{
    (void)state;
    if (strncmp(addr, "tcp://", 6) != 0 && !is_tls())
        skip();
    pid_t pid = server_start();
    shoal_rpc_channel *ch;
    shoal_rpc_channel_config none = slow_ok;
    none.token = NULL;
    assert_int_equal(shoal_rpc_channel_open(&ch, addr, &none), SHOAL_EACCES);
    shoal_rpc_channel_config wrong = slow_ok;
    wrong.token = "guessing!";
    assert_int_equal(shoal_rpc_channel_open(&ch, addr, &wrong), SHOAL_EACCES);
    assert_non_null(strstr(shoal_errdetail(), "UNAUTHENTICATED"));
    /* A peer that skips the answer and starts a call is refused too. */
    rpc_conn *raw;
    const uint8_t *buf;
    size_t len;
    rpc_frame f;
    T_OK(rpc__nng_connect(&raw, addr, &slow_ok));
    assert_int_equal(raw->ops->recv(raw, &buf, &len, SHOAL_SEC(10)), 1);
    rpc_frame start = {
        .call = 1, .type = RPC_F_START, .method = "test.Echo/Say", .method_len = 13};
    T_OK(rpc__send(raw, &start, NULL, SEND_SEC));
    assert_int_equal(raw->ops->recv(raw, &buf, &len, SHOAL_SEC(10)), 1);
    T_OK(rpc__frame_decode(buf, len, &f, NULL));
    assert_int_equal(f.type, RPC_F_TRAILERS);
    assert_int_equal(f.code, SHOAL_RPC_UNAUTHENTICATED);
    assert_true(raw->ops->recv(raw, &buf, &len, SHOAL_SEC(10)) < 0); /* hung up */
    raw->ops->close(raw);
    server_stop(connect_ch(), pid);
}

/* A pool of 2 workers, at most 4 calls off the loop: 4 open streams are served two
 * at a time (the later two wait for a worker, and are served once the first two end),
 * a fifth is refused with RESOURCE_EXHAUSTED, and unary calls run on meanwhile. */
static void test_worker_pool(void **state)
{
    (void)state;
    pid_t pid = server_start_as("pool-server");
    shoal_rpc_channel *ch = connect_ch();
    shoal_rpc_call *c[POOL_MAX + 1];
    Note v, m = {.n = 7};
    for (int i = 0; i < POOL_MAX; i++) {
        T_OK(Echo_start(&c[i], ch, Echo_Chat, NULL, NULL));
        T_OK(Echo_send(c[i], &m));
    }
    for (int i = 0; i < POOL_WORKERS; i++) { /* the first two are running */
        assert_int_equal(Echo_next(c[i], &v), 1);
        assert_int_equal(v.n, 14);
    }
    T_OK(Echo_start(&c[POOL_MAX], ch, Echo_Chat, NULL, NULL));
    char detail[SHOAL_RPC_DETAIL_MAX];
    assert_int_equal(shoal_rpc_call_finish(c[POOL_MAX], detail, sizeof(detail)),
                     SHOAL_RPC_RESOURCE_EXHAUSTED);
    assert_non_null(strstr(detail, "bound"));
    shoal_rpc_call_free(c[POOL_MAX]);
    Note req = {.n = 1}, resp; /* unary calls do not need a worker */
    assert_int_equal(Echo_unary(ch, Echo_Say, &req, &resp, NULL, NULL, 0), SHOAL_RPC_OK);
    for (int i = 0; i < POOL_MAX; i++) { /* ending one frees a worker for the next */
        T_OK(shoal_rpc_call_close_send(c[i]));
        if (i >= POOL_WORKERS) {
            assert_int_equal(Echo_next(c[i], &v), 1);
            assert_int_equal(v.n, 14);
        }
        assert_int_equal(Echo_next(c[i], &v), 0);
        assert_int_equal(shoal_rpc_call_finish(c[i], NULL, 0), SHOAL_RPC_OK);
        shoal_rpc_call_free(c[i]);
    }
    /* A waiting call whose deadline passes ends DEADLINE_EXCEEDED without a worker. */
    shoal_rpc_options quick = {.timeout = SHOAL_MS(300)};
    for (int i = 0; i < POOL_MAX; i++)
        T_OK(Echo_start(&c[i], ch, Echo_Chat, NULL, i < POOL_WORKERS ? NULL : &quick));
    for (int i = POOL_WORKERS; i < POOL_MAX; i++)
        assert_int_equal(shoal_rpc_call_finish(c[i], NULL, 0),
                         SHOAL_RPC_DEADLINE_EXCEEDED);
    for (int i = 0; i < POOL_MAX; i++) {
        if (i < POOL_WORKERS) {
            T_OK(shoal_rpc_call_close_send(c[i]));
            assert_int_equal(shoal_rpc_call_finish(c[i], NULL, 0), SHOAL_RPC_OK);
        }
        shoal_rpc_call_free(c[i]);
    }
    server_stop(ch, pid);
}

/* shm://: a second server on a live server's name gets SHOAL_EBUSY; once the first
 * is SIGKILLed, a new server takes the name and serves. */
static void test_shm_one_server(void **state)
{
    (void)state;
    if (strncmp(addr, "shm://", 6) != 0)
        skip();
    pid_t pid = server_start();
    shoal_loop *loop;
    shoal_rpc_server *s;
    T_OK(shoal_loop_create(&loop));
    T_OK(shoal_rpc_server_create(&s, loop));
    assert_int_equal(shoal_rpc_server_listen(s, addr, NULL), SHOAL_EBUSY);
    char want[64];
    snprintf(want, sizeof(want), "a server (process %d) already listens", (int)pid);
    assert_non_null(strstr(shoal_errdetail(), want));
    Note req = {.n = 1}, resp;
    shoal_rpc_channel *ch = connect_ch(); /* the first one still serves */
    assert_int_equal(Echo_unary(ch, Echo_Say, &req, &resp, NULL, NULL, 0), SHOAL_RPC_OK);
    shoal_rpc_channel_close(ch);
    t_kill(pid);
    server_pid = 0;
    /* The name is free: this process takes it, a second listen here is refused,
     * and closing gives it back. */
    T_OK(shoal_rpc_server_listen(s, addr, NULL));
    assert_int_equal(shoal_rpc_server_listen(s, addr, NULL), SHOAL_EBUSY);
    shoal_rpc_server_destroy(s);
    shoal_loop_destroy(loop);
    pid = server_start();
    ch = connect_ch();
    assert_int_equal(Echo_unary(ch, Echo_Say, &req, &resp, NULL, NULL, 0), SHOAL_RPC_OK);
    assert_int_equal(resp.n, 2);
    server_stop(ch, pid);
}

/* Opening a channel with cfg fails with `rc`, its detail naming `why`. */
static void refused(const shoal_rpc_channel_config *cfg, const char *address, int rc,
                    const char *why)
{
    shoal_rpc_channel *ch = NULL;
    assert_int_equal(shoal_rpc_channel_open(&ch, address, cfg), rc);
    if (!strstr(shoal_errdetail(), why))
        fail_msg("expected \"%s\" in: %s", why, shoal_errdetail());
}

/* tls+tcp://: the refusals, each clear and prompt; the server serves on. */
static void test_tls(void **state)
{
    (void)state;
    if (!is_tls())
        skip();
    pid_t pid = server_start();
    shoal_rpc_channel_config c = slow_ok;
    c.tls_ca_file = pki_file("other-ca.pem"); /* not the server's CA */
    refused(&c, addr, SHOAL_EACCES, "TLS handshake failed");
    c = slow_ok;
    c.tls_server_name = "elsewhere.example"; /* not the name in its certificate */
    refused(&c, addr, SHOAL_EACCES, "TLS handshake failed");
    c = slow_ok;
    c.tls_cert_file = c.tls_key_file = NULL; /* no client certificate */
    refused(&c, addr, SHOAL_EACCES, "UNAUTHENTICATED: no valid client certificate");
    c.tls_cert_file = pki_file("stranger.pem"); /* one of another CA */
    c.tls_key_file = pki_file("stranger.key");
    refused(&c, addr, SHOAL_EACCES, "UNAUTHENTICATED: no valid client certificate");
    c = slow_ok;
    c.tls_ca_file = NULL;
    refused(&c, addr, SHOAL_EINVAL, "tls_ca_file");
    /* A plain tcp:// client on the TLS port fails within its connect timeout. */
    char plain[300];
    snprintf(plain, sizeof(plain), "tcp://%s", addr + 10);
    c = slow_ok;
    c.connect_timeout = SHOAL_SEC(2);
    int64_t t0 = now_ms();
    shoal_rpc_channel *ch = NULL;
    assert_true(shoal_rpc_channel_open(&ch, plain, &c) < 0);
    assert_true(now_ms() - t0 < 10000);
    /* The server's side: a tls+tcp:// listener needs a certificate, and client
     * certificates required or a token. */
    shoal_loop *loop;
    shoal_rpc_server *s;
    T_OK(shoal_loop_create(&loop));
    T_OK(shoal_rpc_server_create(&s, loop));
    assert_int_equal(shoal_rpc_server_listen(s, "tls+tcp://127.0.0.1:1", NULL),
                     SHOAL_EINVAL);
    assert_int_equal(shoal_rpc_server_set_tls(s, pki_file("server.pem"),
                                              pki_file("server.key"), NULL, 1),
                     SHOAL_EINVAL);
    T_OK(shoal_rpc_server_set_tls(s, pki_file("server.pem"), pki_file("server.key"), NULL,
                                  0));
    assert_int_equal(shoal_rpc_server_listen(s, "tls+tcp://127.0.0.1:1", NULL),
                     SHOAL_EINVAL);
    T_OK(shoal_rpc_server_set_token(s, TOKEN));
    T_OK(shoal_rpc_server_set_tls(s, pki_file("server.pem"), pki_file("ca.pem"), NULL,
                                  0)); /* a certificate where the key should be */
    assert_int_equal(shoal_rpc_server_listen(s, "tls+tcp://127.0.0.1:1", NULL),
                     SHOAL_EINVAL);
    shoal_rpc_server_destroy(s);
    shoal_loop_destroy(loop);
    server_stop(connect_ch(), pid);
}

static void *run_loop(void *loop)
{
    shoal_loop_run(loop);
    return NULL;
}

/* tls+tcp:// with client certificates and no token: a client with its certificate
 * and no token is served (here the built-in reflection service lists the methods);
 * one without a certificate is refused. The server runs on a thread of this process. */
static void test_tls_cert_only(void **state)
{
    (void)state;
    if (!is_tls())
        skip();
    char a[300];
    snprintf(a, sizeof(a), "tls+tcp://127.0.0.1:%d", t_tcp_port(7));
    shoal_loop *loop;
    shoal_rpc_server *s;
    T_OK(shoal_loop_create(&loop));
    T_OK(shoal_rpc_server_create(&s, loop));
    T_OK(shoal_rpc_server_set_tls(s, pki_file("server.pem"), pki_file("server.key"),
                                  pki_file("ca.pem"), 1));
    T_OK(shoal_rpc_server_listen(s, a, NULL));
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, run_loop, loop), 0);
    shoal_rpc_channel_config c = slow_ok;
    c.token = NULL;
    shoal_rpc_channel *ch;
    T_OK(shoal_rpc_channel_open(&ch, a, &c));
    shoal_rpc_method list = {"List", SHOAL_RPC_UNARY, NULL, NULL, NULL, 0};
    void *resp = NULL;
    size_t len = 0;
    assert_int_equal(shoal_rpc_unary(ch, SHOAL_RPC_REFLECTION, &list, "", 0, &resp, &len,
                                     NULL, NULL, 0),
                     SHOAL_RPC_OK);
    assert_non_null(memmem(resp, len, SHOAL_RPC_REFLECTION "/Descriptors", 39));
    free(resp);
    shoal_rpc_channel_close(ch);
    c.tls_cert_file = c.tls_key_file = NULL;
    refused(&c, a, SHOAL_EACCES, "UNAUTHENTICATED: no valid client certificate");
    shoal_loop_stop(loop);
    pthread_join(t, NULL);
    shoal_rpc_server_destroy(s);
    shoal_loop_destroy(loop);
}

/* A child's role, from argv: "server ADDR", "killed-client ADDR", "many-client ADDR ID".
 */
static int child(int argc, char **argv)
{
    snprintf(addr, sizeof(addr), "%s", argv[2]);
    if (is_tls())
        tls_config_client();
    if (strcmp(argv[1], "server") == 0)
        return server_main(NULL);
    if (strcmp(argv[1], "pool-server") == 0)
        return server_main("pool");
    if (strcmp(argv[1], "killed-client") == 0)
        return killed_client(NULL);
    if (strcmp(argv[1], "many-client") == 0 && argc > 3)
        return many_client((void *)(intptr_t)atoi(argv[3]));
    return 99;
}

static shoal_shm *shared_shm;

static struct shared *shared_open(void)
{
    if (shoal_shm_open(&shared_shm, "rpc-suite", SHOAL_OPEN_OR_CREATE,
                       sizeof(struct shared), NULL) < 0) {
        fprintf(stderr, "rpc-suite: %s\n", shoal_errdetail());
        exit(3);
    }
    return shoal_shm_data(shared_shm);
}

int main(int argc, char **argv)
{
    t_setup_root();
    sh = shared_open();
    if (argc > 2) {
        int rc = child(argc, argv);
        shoal_shm_close(shared_shm);
        return rc;
    }
    const char *transport = getenv("SHOAL_RPC_TRANSPORT");
    if (!transport || strcmp(transport, "shm") == 0)
        snprintf(addr, sizeof(addr), "shm://echo");
    else if (strcmp(transport, "ipc") == 0)
        snprintf(addr, sizeof(addr), "ipc://%s/echo.sock", t_root);
    else if (strcmp(transport, "tcp") == 0)
        snprintf(addr, sizeof(addr), "tcp://127.0.0.1:%d", t_tcp_port(0));
    else if (strcmp(transport, "tls") == 0)
        snprintf(addr, sizeof(addr), "tls+tcp://127.0.0.1:%d", t_tcp_port(0));
    else {
        fprintf(stderr, "SHOAL_RPC_TRANSPORT=%s: expected shm, ipc, tcp or tls\n",
                transport);
        return 2;
    }
    if (is_tls()) {
        tls_config_client();
        char cmd[800];
        snprintf(cmd, sizeof(cmd), "sh '%s' '%s'", MAKE_TEST_CERTS, pki);
        if (system(cmd) != 0) {
            fprintf(stderr, "rpc-suite: %s failed\n", cmd);
            return 2;
        }
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_unary_metadata, teardown),
        cmocka_unit_test_teardown(test_server_streaming, teardown),
        cmocka_unit_test_teardown(test_client_streaming, teardown),
        cmocka_unit_test_teardown(test_bidi, teardown),
        cmocka_unit_test_teardown(test_window_batches, teardown),
        cmocka_unit_test_teardown(test_status_codes, teardown),
        cmocka_unit_test_teardown(test_deadline, teardown),
        cmocka_unit_test_teardown(test_deadline_inherited, teardown),
        cmocka_unit_test_teardown(test_cancel, teardown),
        cmocka_unit_test_teardown(test_call_wait, teardown),
        cmocka_unit_test_teardown(test_invalid_request, teardown),
        cmocka_unit_test_teardown(test_window_announced, teardown),
        cmocka_unit_test_teardown(test_garbage_frames, teardown),
        cmocka_unit_test_teardown(test_server_killed, teardown),
        cmocka_unit_test_teardown(test_client_killed, teardown),
        cmocka_unit_test_teardown(test_many_clients, teardown),
        cmocka_unit_test_teardown(test_token, teardown),
        cmocka_unit_test_teardown(test_tls, teardown),
        cmocka_unit_test(test_tls_cert_only),
        cmocka_unit_test_teardown(test_shm_one_server, teardown),
        cmocka_unit_test_teardown(test_worker_pool, teardown),
        cmocka_unit_test_teardown(test_threads_one_channel, teardown),
        cmocka_unit_test(test_hmac_vectors),
    };
    if (getenv("SHOAL_TEST_FILTER")) /* e.g. SHOAL_TEST_FILTER=test_tls */
        cmocka_set_test_filter(getenv("SHOAL_TEST_FILTER"));
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    shoal_shm_close(shared_shm);
    return rc;
}
