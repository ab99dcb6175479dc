/*
 * call_flood.c — `shoal call` against a bidirectional server that answers a request
 * with many responses before it reads the next request, over $SHOAL_RPC_TRANSPORT
 * (shm or ipc).
 *
 * The server (svct.Gen's Chat, in a thread of this process, on its own loop) answers
 * request n with n responses 0..n-1 and only then reads the next one: 10,000 for the
 * first request, 2 for each of the 40 others. shoal call sends
 * more requests than the call's window holds while the first one's responses fill the
 * window the other way: a client that waits to send before it reads would wait for a
 * server that waits for it, until the deadline. The call must end OK, well before its
 * deadline, with every response printed in order.
 */
#include <pthread.h>
#include <sys/wait.h>

#include "testutil.h"

#include "svct.shoal.h"

static char addr[300];
static shoal_loop *loop;

/* Chat: request n gets n responses 0..n-1 before the next request is read. */
static int h_flood(shoal_rpc_ctx *ctx, void *arg)
{
    (void)arg;
    Enc *req;
    int rc;
    while ((rc = Gen_Chat_ctx_next(ctx, &req)) == 1) {
        int n = req->n;
        Enc_free(req);
        for (int i = 0; i < n; i++) {
            Enc v = Enc_INIT;
            v.n = i;
            if (Gen_Chat_ctx_send(ctx, &v) < 0)
                return SHOAL_RPC_CANCELLED;
        }
    }
    return rc == 0 ? SHOAL_RPC_OK : SHOAL_RPC_CANCELLED;
}

static void *serve(void *arg)
{
    (void)arg;
    shoal_loop_run(loop);
    return NULL;
}

/* The requests: FIRST responses for the first, then REST requests of ONE each. */
enum { FIRST = 10000, REST = 40, ONE = 2, DEADLINE_S = 120 };

static void test_flood(void **state)
{
    (void)state;
    static const Gen_handlers h = {.Chat = h_flood};
    static Gen_server skel;
    shoal_rpc_server *s;
    T_OK(shoal_loop_create(&loop));
    T_OK(shoal_rpc_server_create(&s, loop));
    T_OK(Gen_server_add(s, &skel, &h, NULL));
    T_OK(shoal_rpc_server_listen(s, addr, NULL));
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, serve, NULL), 0);

    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "{ echo 'n: %d'; for i in $(seq %d); do echo 'n: %d'; done; } | "
             "'%s' call --timeout %d --lines '%s' svct.Gen/Chat - 2>&1",
             FIRST, REST, ONE, SHOAL_CLI, DEADLINE_S, addr);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    /* Responses are printed one after another with a blank line between, each as
     * "n: I" (nothing for n: 0): got[] collects the n of each. */
    static int got[FIRST + REST * ONE + 1];
    char line[256];
    int responses = 0, cur = 0, bad = 0;
    while (fgets(line, sizeof(line), f)) {
        if (line[0] == '\n') {
            if (responses <= FIRST + REST * ONE)
                got[responses] = cur;
            responses++;
            cur = 0;
        } else if (sscanf(line, "n: %d", &cur) != 1) {
            fprintf(stderr, "shoal call printed: %s", line);
            bad++;
        }
    }
    if (responses <= FIRST + REST * ONE)
        got[responses] = cur;
    responses++;
    int status = pclose(f);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double took =
        (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    shoal_loop_stop(loop);
    pthread_join(th, NULL);
    shoal_rpc_server_destroy(s);
    shoal_loop_destroy(loop);
    printf("shoal call: %d responses in %.2f s\n", responses, took);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(responses, FIRST + REST * ONE);
    assert_int_equal(bad, 0);
    for (int i = 0; i < FIRST + REST * ONE; i++)
        assert_int_equal(got[i], i < FIRST ? i : (i - FIRST) % ONE);
    assert_true(took < DEADLINE_S / 2);
}

int main(void)
{
    t_setup_root();
    const char *transport = getenv("SHOAL_RPC_TRANSPORT");
    if (!transport || strcmp(transport, "shm") == 0)
        snprintf(addr, sizeof(addr), "shm://flood");
    else if (strcmp(transport, "ipc") == 0)
        snprintf(addr, sizeof(addr), "ipc://%s/flood.sock", t_root);
    else {
        fprintf(stderr, "SHOAL_RPC_TRANSPORT=%s: expected shm or ipc\n", transport);
        return 2;
    }
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_flood)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
