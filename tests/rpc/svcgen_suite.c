/*
 * svcgen_suite.c — the generated C stubs and skeletons of proto/svct.proto between
 * processes over $SHOAL_RPC_TRANSPORT (shm or ipc): the four kinds of call with a
 * fixed request and an encoded response and the reverse, metadata, an unimplemented
 * method, invalid and undecodable requests, a deadline the handler sees, a cancelled
 * stream, a server killed mid-stream and a client killed mid-stream; and `shoal call`
 * against the server (reflection, text-format requests and responses through protoc).
 *
 * The server is this program started anew with the role "server"; it uses only the
 * generated Gen_server_add and the typed _ctx_ functions. Counters its handlers keep
 * live in a named SharedMemory block.
 */
#include <sys/wait.h>

#include "testutil.h"

#include "svct.shoal.h"
#include "svct_handlers.h"

struct shared {
    _Atomic int ready;
    _Atomic int cancels;      /* handlers that saw their call cancelled */
    _Atomic int remaining_ms; /* what Wait saw as the time left */
    _Atomic int streaming;    /* the killed client is mid-stream */
};

static struct shared *sh;
static char addr[300];
static const shoal_rpc_channel_config slow_ok = {.connect_timeout = SHOAL_SEC(30)};

/* ---- the server ----------------------------------------------------------------------
 */

static int h_ask(shoal_rpc_ctx *ctx, const Fix *req, void *arg)
{
    (void)arg;
    int32_t items[2] = {req->n, req->n};
    char text[sizeof(req->text.data) + 1];
    Enc resp = Enc_INIT;
    snprintf(text, sizeof(text), "%.*s", (int)req->text.len, req->text.data);
    const char *who = shoal_rpc_md_get(shoal_rpc_ctx_metadata(ctx), "who");
    if (who)
        shoal_rpc_ctx_add_header(ctx, "who", who);
    resp.n = req->n + 1;
    resp.text = text;
    resp.n_items = 2;
    resp.items = items;
    return Gen_Ask_ctx_send(ctx, &resp) == 0 ? SHOAL_RPC_OK : SHOAL_RPC_INTERNAL;
}

static int h_count(shoal_rpc_ctx *ctx, const Enc *req, void *arg)
{
    (void)arg;
    for (int i = 0; i < req->n; i++) {
        Fix v = Fix_INIT;
        v.n = i;
        if (Gen_Count_ctx_send(ctx, &v) < 0) {
            atomic_fetch_add(&sh->cancels, 1);
            return SHOAL_RPC_CANCELLED;
        }
    }
    return SHOAL_RPC_OK;
}

static int h_wait(shoal_rpc_ctx *ctx, const Fix *req, void *arg)
{
    (void)req;
    (void)arg;
    shoal_duration left = shoal_rpc_ctx_time_remaining(ctx);
    atomic_store(&sh->remaining_ms, left == SHOAL_FOREVER ? -1 : (int)(left / 1000000));
    while (!shoal_rpc_ctx_cancelled(ctx))
        usleep(1000);
    atomic_fetch_add(&sh->cancels, 1);
    return SHOAL_RPC_CANCELLED;
}

static int server_main(void)
{
    static const Gen_handlers h = {.Ask = h_ask,
                                   .Count = h_count,
                                   .Sum = h_sum,
                                   .Chat = h_chat,
                                   .Wait = h_wait,
                                   .blocking = 1ul << Gen_METHOD_Wait};
    static Gen_server skel;
    shoal_loop *loop;
    shoal_rpc_server *s;
    if (shoal_loop_create(&loop) < 0 || shoal_rpc_server_create(&s, loop) < 0 ||
        Gen_server_add(s, &skel, &h, NULL) < 0 ||
        shoal_rpc_server_listen(s, addr, NULL) < 0) {
        fprintf(stderr, "server: %s\n", shoal_errdetail());
        return 1;
    }
    atomic_store(&sh->ready, 1);
    return shoal_loop_run(loop) == 0 ? 0 : 2; /* until killed */
}

static pid_t server_pid;

static void server_start(void)
{
    atomic_store(&sh->ready, 0);
    server_pid = t_spawn_self("server", addr, NULL);
    assert_true(t_wait_atleast(&sh->ready, 1, SHOAL_SEC(30)));
}

static int teardown(void **state)
{
    (void)state;
    if (server_pid > 0)
        t_kill(server_pid);
    server_pid = 0;
    return 0;
}

/* Starts the server and opens a stub to it. */
static void begin(Gen_stub *stub)
{
    server_start();
    T_OK(Gen_stub_open(stub, addr, &slow_ok));
}

/* Starts Count for n messages. */
static void count_start(Gen_Count_call *c, Gen_stub *stub, int n)
{
    Enc req = Enc_INIT;
    req.n = n;
    T_OK(Gen_Count_start(c, stub, &req, NULL));
}

/* ---- tests ---------------------------------------------------------------------------
 */

/* Unary, fixed request and encoded response, with metadata both ways. */
static void test_unary(void **state)
{
    (void)state;
    Gen_stub stub;
    begin(&stub);
    Fix req = Fix_INIT;
    req.n = 41;
    T_OK(Fix_set_text(&req, "hello"));
    shoal_rpc_md md = {0};
    T_OK(shoal_rpc_md_add(&md, "who", "me"));
    shoal_rpc_options opts = {.timeout = SHOAL_SEC(10), .metadata = &md};
    Enc *resp = NULL;
    char detail[SHOAL_RPC_DETAIL_MAX];
    assert_int_equal(Gen_Ask(&stub, &req, &resp, &opts, detail, sizeof(detail)),
                     SHOAL_RPC_OK);
    assert_int_equal(resp->n, 42);
    assert_string_equal(resp->text, "hello");
    assert_int_equal(resp->n_items, 2);
    assert_int_equal(resp->items[1], 41);
    Enc_free(resp);
    shoal_rpc_md_clear(&md);

    /* No handler for Missing. */
    Fix out;
    assert_int_equal(Gen_Missing(&stub, &req, &out, NULL, detail, sizeof(detail)),
                     SHOAL_RPC_UNIMPLEMENTED);
    Gen_stub_close(&stub);
}

/* Server streaming (encoded request, fixed responses), client streaming, bidi. */
static void test_streams(void **state)
{
    (void)state;
    Gen_stub stub;
    begin(&stub);

    Gen_Count_call count;
    count_start(&count, &stub, 40); /* over SHOAL_RPC_WINDOW: flow control takes part */
    Fix f;
    int got = 0;
    while (Gen_Count_next(&count, &f) == 1)
        assert_int_equal(f.n, got++);
    assert_int_equal(got, 40);
    assert_int_equal(Gen_Count_finish(&count, NULL, 0), SHOAL_RPC_OK);
    Gen_Count_free(&count);

    Gen_Sum_call sum;
    T_OK(Gen_Sum_start(&sum, &stub, NULL));
    for (int i = 1; i <= 30; i++) {
        Fix v = Fix_INIT;
        v.n = i;
        T_OK(Gen_Sum_send(&sum, &v));
    }
    T_OK(Gen_Sum_close_send(&sum));
    assert_int_equal(Gen_Sum_next(&sum, &f), 1);
    assert_int_equal(f.n, 465);
    assert_int_equal(Gen_Sum_finish(&sum, NULL, 0), SHOAL_RPC_OK);
    Gen_Sum_free(&sum);

    Gen_Chat_call chat;
    T_OK(Gen_Chat_start(&chat, &stub, NULL));
    for (int i = 0; i < 5; i++) {
        Enc v = Enc_INIT, *back = NULL;
        v.n = i;
        v.text = (char *)"chat";
        T_OK(Gen_Chat_send(&chat, &v));
        assert_int_equal(Gen_Chat_next(&chat, &back), 1);
        assert_int_equal(back->n, i * 2);
        assert_string_equal(back->text, "chat");
        Enc_free(back);
    }
    T_OK(Gen_Chat_close_send(&chat));
    Enc *none = NULL;
    assert_int_equal(Gen_Chat_next(&chat, &none), 0);
    assert_int_equal(Gen_Chat_finish(&chat, NULL, 0), SHOAL_RPC_OK);
    Gen_Chat_free(&chat);
    Gen_stub_close(&stub);
}

/* An invalid request is refused before it leaves; undecodable bytes sent anyway end
 * the call INVALID_ARGUMENT on the server. */
static void test_invalid(void **state)
{
    (void)state;
    Gen_stub stub;
    begin(&stub);
    Fix req = Fix_INIT;
    req.text.len = sizeof(req.text.data) + 1; /* over max_len */
    Enc *resp = NULL;
    assert_true(Gen_Ask(&stub, &req, &resp, NULL, NULL, 0) < 0);
    assert_null(resp);

    static const unsigned char garbage[] = {0x0a, 0xff, 0xff}; /* a length past the end */
    void *out = NULL;
    size_t len;
    char detail[SHOAL_RPC_DETAIL_MAX];
    assert_int_equal(
        shoal_rpc_unary(stub.channel, Gen_SERVICE, &Gen_methods[Gen_METHOD_Ask], garbage,
                        sizeof(garbage), &out, &len, NULL, detail, sizeof(detail)),
        SHOAL_RPC_INVALID_ARGUMENT);
    assert_null(out);
    Gen_stub_close(&stub);
}

/* The handler sees the deadline; the call ends DEADLINE_EXCEEDED; a cancelled stream
 * ends CANCELLED and its handler sees it. */
static void test_deadline_cancel(void **state)
{
    (void)state;
    Gen_stub stub;
    begin(&stub);
    atomic_store(&sh->cancels, 0);
    Fix req = Fix_INIT, resp;
    shoal_rpc_options opts = {.timeout = SHOAL_MS(300)};
    assert_int_equal(Gen_Wait(&stub, &req, &resp, &opts, NULL, 0),
                     SHOAL_RPC_DEADLINE_EXCEEDED);
    int ms = atomic_load(&sh->remaining_ms);
    assert_true(ms > 0 && ms <= 300);
    assert_true(t_wait_atleast(&sh->cancels, 1, SHOAL_SEC(10)));

    Gen_Count_call count;
    count_start(&count, &stub, 1000000);
    Fix f;
    for (int i = 0; i < 3; i++)
        assert_int_equal(Gen_Count_next(&count, &f), 1);
    Gen_Count_cancel(&count);
    assert_int_equal(Gen_Count_finish(&count, NULL, 0), SHOAL_RPC_CANCELLED);
    Gen_Count_free(&count);
    assert_true(t_wait_atleast(&sh->cancels, 2, SHOAL_SEC(10)));
    Gen_stub_close(&stub);
}

/* A server SIGKILLed mid-stream: the client's stream ends UNAVAILABLE, without a
 * deadline to wait for. */
static void test_server_killed(void **state)
{
    (void)state;
    Gen_stub stub;
    begin(&stub);
    Gen_Count_call count;
    count_start(&count, &stub, 1000000);
    Fix f;
    assert_int_equal(Gen_Count_next(&count, &f), 1);
    t_kill(server_pid);
    server_pid = 0;
    while (Gen_Count_next(&count, &f) == 1)
        ;
    assert_int_equal(Gen_Count_finish(&count, NULL, 0), SHOAL_RPC_UNAVAILABLE);
    Gen_Count_free(&count);
    Gen_stub_close(&stub);
}

/* The client killed mid-stream: reads one message of a long Count, then waits. */
static int client_main(void)
{
    Gen_stub stub;
    Gen_Count_call count;
    Enc req = Enc_INIT;
    Fix f;
    req.n = 1000000;
    if (Gen_stub_open(&stub, addr, &slow_ok) < 0 ||
        Gen_Count_start(&count, &stub, &req, NULL) < 0 || Gen_Count_next(&count, &f) != 1)
        return 1;
    atomic_store(&sh->streaming, 1);
    pause();
    return 0;
}

/* A client SIGKILLed mid-stream: the streaming handler sees the cancellation. */
static void test_client_killed(void **state)
{
    (void)state;
    server_start();
    atomic_store(&sh->cancels, 0);
    atomic_store(&sh->streaming, 0);
    pid_t cl = t_spawn_self("client", addr, NULL);
    assert_true(t_wait_atleast(&sh->streaming, 1, SHOAL_SEC(30)));
    t_kill(cl);
    assert_true(t_wait_atleast(&sh->cancels, 1, SHOAL_SEC(30)));
}

/* Runs `shoal call ARGS` (a shell command line) with `input` on its standard input
 * (NULL: none), its stdout and stderr into out[cap]; returns its exit code. */
static int shoal_call_input(char *out, size_t cap, const char *input, const char *args)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "printf '%%s' '%s' | '%s' call --timeout 30 %s 2>&1",
             input ? input : "", SHOAL_CLI, args);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = 0;
    int status = pclose(f);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int shoal_call(char *out, size_t cap, const char *args)
{
    return shoal_call_input(out, cap, NULL, args);
}

#define EXPECT(out, s)                                                                   \
    do {                                                                                 \
        if (!strstr(out, s))                                                             \
            fail_msg("expected \"%s\" in:\n%s", s, out);                                 \
    } while (0)

/* shoal call: --list through reflection; unary, server- and client-streaming calls
 * with text-format requests and responses; errors printed with their code name. */
static void test_shoal_call(void **state)
{
    (void)state;
    server_start();
    char out[8192], args[600];
    snprintf(args, sizeof(args), "--list '%s'", addr);
    assert_int_equal(shoal_call(out, sizeof(out), args), 0);
    EXPECT(out, "svct.Gen/Ask (unary)\n");
    EXPECT(out, "svct.Gen/Count (server streaming)\n");
    EXPECT(out, "svct.Gen/Sum (client streaming)\n");
    EXPECT(out, "svct.Gen/Chat (bidirectional streaming)\n");
    EXPECT(out, "shoal.reflection.Reflection/Descriptors (unary)\n");
    snprintf(args, sizeof(args), "'%s' svct.Gen/Ask 'n: 41 text: \"hi\"'", addr);
    assert_int_equal(shoal_call(out, sizeof(out), args), 0);
    EXPECT(out, "n: 42\ntext: \"hi\"\nitems: 41\nitems: 41\n");
    snprintf(args, sizeof(args), "'%s' svct.Gen/Count 'n: 3'", addr);
    assert_int_equal(shoal_call(out, sizeof(out), args), 0);
    assert_string_equal(out, "\nn: 1\n\nn: 2\n"); /* n: 0 prints as nothing */
    snprintf(args, sizeof(args), "'%s' svct.Gen/Sum 'n: 5'", addr);
    assert_int_equal(shoal_call(out, sizeof(out), args), 0);
    assert_string_equal(out, "n: 5\n");
    snprintf(args, sizeof(args), "'%s' svct.Gen/Missing 'n: 1'", addr);
    assert_int_equal(shoal_call(out, sizeof(out), args), 1);
    EXPECT(out, "ERROR: UNIMPLEMENTED: ");
    snprintf(args, sizeof(args), "'%s' svct.Gen/Ask 'no_such_field: 1'", addr);
    assert_int_not_equal(shoal_call(out, sizeof(out), args), 0);
    EXPECT(out, "could not encode the request as svct.Fix");
    snprintf(args, sizeof(args), "'%s' svct.Gen/Nope ''", addr);
    assert_int_equal(shoal_call(out, sizeof(out), args), 1);
    EXPECT(out, "no method svct.Gen/Nope");
}

/* shoal call with several requests: client streaming and bidirectional methods, from
 * the command line and from standard input (blocks, and lines with --lines). */
static void test_shoal_call_streams(void **state)
{
    (void)state;
    server_start();
    char out[8192], args[600];
    snprintf(args, sizeof(args), "'%s' svct.Gen/Sum 'n: 5' 'n: 6' 'n: 7 text: \"x\"'",
             addr);
    assert_int_equal(shoal_call(out, sizeof(out), args), 0);
    assert_string_equal(out, "n: 18\n");
    snprintf(args, sizeof(args), "'%s' svct.Gen/Chat 'n: 1 text: \"a\"' 'n: 2' 'n: 3'",
             addr);
    assert_int_equal(shoal_call(out, sizeof(out), args), 0);
    assert_string_equal(out, "n: 2\ntext: \"a\"\n\nn: 4\n\nn: 6\n");
    snprintf(args, sizeof(args), "'%s' svct.Gen/Chat -", addr);
    assert_int_equal(
        shoal_call_input(out, sizeof(out), "n: 4\ntext: \"b\"\n\n \nn: 5\n", args), 0);
    assert_string_equal(out, "n: 8\ntext: \"b\"\n\nn: 10\n");
    snprintf(args, sizeof(args), "--lines '%s' svct.Gen/Sum -", addr);
    assert_int_equal(shoal_call_input(out, sizeof(out), "n: 1\nn: 2\n\nn: 3", args), 0);
    assert_string_equal(out, "n: 6\n");
    /* A request protoc refuses: nothing is sent, the error names it. */
    snprintf(args, sizeof(args), "'%s' svct.Gen/Sum 'n: 1' 'nope: 2'", addr);
    assert_int_not_equal(shoal_call(out, sizeof(out), args), 0);
    EXPECT(out, "could not encode the request as svct.Fix: nope: 2");
    /* A unary method takes one request. */
    snprintf(args, sizeof(args), "'%s' svct.Gen/Ask 'n: 1' 'n: 2'", addr);
    assert_int_equal(shoal_call(out, sizeof(out), args), 2);
    EXPECT(out, "takes one request");
}

static shoal_shm *shared_shm;

int main(int argc, char **argv)
{
    t_setup_root();
    if (shoal_shm_open(&shared_shm, "svcgen-suite", SHOAL_OPEN_OR_CREATE,
                       sizeof(struct shared), NULL) < 0) {
        fprintf(stderr, "svcgen-suite: %s\n", shoal_errdetail());
        return 3;
    }
    sh = shoal_shm_data(shared_shm);
    if (argc > 2 && strcmp(argv[1], "server") == 0) {
        snprintf(addr, sizeof(addr), "%s", argv[2]);
        return server_main();
    }
    if (argc > 2 && strcmp(argv[1], "client") == 0) {
        snprintf(addr, sizeof(addr), "%s", argv[2]);
        return client_main();
    }
    const char *transport = getenv("SHOAL_RPC_TRANSPORT");
    if (!transport || strcmp(transport, "shm") == 0)
        snprintf(addr, sizeof(addr), "shm://gen");
    else if (strcmp(transport, "ipc") == 0)
        snprintf(addr, sizeof(addr), "ipc://%s/gen.sock", t_root);
    else {
        fprintf(stderr, "SHOAL_RPC_TRANSPORT=%s: expected shm or ipc\n", transport);
        return 2;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_unary, teardown),
        cmocka_unit_test_teardown(test_streams, teardown),
        cmocka_unit_test_teardown(test_invalid, teardown),
        cmocka_unit_test_teardown(test_deadline_cancel, teardown),
        cmocka_unit_test_teardown(test_server_killed, teardown),
        cmocka_unit_test_teardown(test_client_killed, teardown),
        cmocka_unit_test_teardown(test_shoal_call, teardown),
        cmocka_unit_test_teardown(test_shoal_call_streams, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    shoal_shm_close(shared_shm);
    return rc;
}
