/* test_rpc_tls_login.c — failed logins on a tls+tcp:// server do not stall its loop:
 * while clients with a wrong token keep being refused (each still told
 * UNAUTHENTICATED, the frame the server lingers for before it closes the stream), a
 * good client's calls on the same server go on without waiting for those closes. The
 * server runs on a thread of this process (nng does not survive fork()). */
#include <libgen.h>
#include <pthread.h>
#include <stdatomic.h>

#include "bytes_echo.h"
#include "internal.h"
#include "testutil.h"

#define TOKEN     "tls-login-token"
#define BAD_LOGIN 20
#define STALL     SHOAL_MS(45) /* a close that waits on the loop waits 50 ms */

static char pki[400];

static const char *pki_file(const char *name)
{
    static char buf[8][600];
    static int next;
    char *b = buf[next++ % 8];
    snprintf(b, sizeof(buf[0]), "%s/%s", pki, name);
    return b;
}

static const shoal_rpc_method methods[] = {
    {"Echo", SHOAL_RPC_UNARY, NULL, NULL, bytes_echo, 0}};
static const shoal_rpc_service service = {"test.Login", methods, 1, NULL};

static void *run_loop(void *loop)
{
    shoal_loop_run(loop);
    return NULL;
}

struct good {
    shoal_rpc_channel *ch;
    _Atomic int stop;
    int calls, stalled, failed;
    int64_t worst;
};

/* The good client: calls until told to stop, counting the calls that took a stall. */
static void *good_client(void *arg)
{
    struct good *g = arg;
    while (!atomic_load(&g->stop)) {
        void *resp = NULL;
        size_t len = 0;
        int64_t t0 = shoal__now_ns();
        int code = shoal_rpc_unary(g->ch, "test.Login", &methods[0], "hello", 6, &resp,
                                   &len, NULL, NULL, 0);
        int64_t took = shoal__now_ns() - t0;
        free(resp);
        g->calls++;
        g->failed += code != SHOAL_RPC_OK;
        g->stalled += took >= STALL;
        if (took > g->worst)
            g->worst = took;
    }
    return NULL;
}

static void test_failed_logins_do_not_stall(void **state)
{
    (void)state;
    char addr[100];
    snprintf(addr, sizeof(addr), "tls+tcp://127.0.0.1:%d", t_tcp_port(11));
    shoal_loop *loop;
    shoal_rpc_server *s;
    T_OK(shoal_loop_create(&loop));
    T_OK(shoal_rpc_server_create(&s, loop));
    T_OK(shoal_rpc_server_add_service(s, &service));
    T_OK(shoal_rpc_server_set_token(s, TOKEN));
    T_OK(shoal_rpc_server_set_tls(s, pki_file("server.pem"), pki_file("server.key"), NULL,
                                  0));
    int rc = shoal_rpc_server_listen(s, addr, NULL);
    if (rc == SHOAL_EINVAL && strstr(shoal_errdetail(), "without nng")) {
        shoal_rpc_server_destroy(s);
        shoal_loop_destroy(loop);
        skip();
    }
    T_OK(rc);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, run_loop, loop), 0);

    shoal_rpc_channel_config good_cfg = {.connect_timeout = SHOAL_SEC(30),
                                         .token = TOKEN,
                                         .tls_ca_file = pki_file("ca.pem")};
    struct good g = {0};
    T_OK(shoal_rpc_channel_open(&g.ch, addr, &good_cfg));
    pthread_t gt;
    assert_int_equal(pthread_create(&gt, NULL, good_client, &g), 0);

    shoal_rpc_channel_config bad_cfg = good_cfg;
    bad_cfg.token = "not-the-token";
    for (int i = 0; i < BAD_LOGIN; i++) {
        shoal_rpc_channel *ch = NULL;
        int refused = shoal_rpc_channel_open(&ch, addr, &bad_cfg);
        if (refused != SHOAL_EACCES ||
            !strstr(shoal_errdetail(), "UNAUTHENTICATED: missing or wrong token"))
            fail_msg("bad login %d: %s", i, shoal_errdetail());
    }
    atomic_store(&g.stop, 1);
    pthread_join(gt, NULL);
    print_message("good calls %d, of them %d took over 45 ms (worst %.1f ms), while "
                  "%d logins failed\n",
                  g.calls, g.stalled, (double)g.worst / 1e6, BAD_LOGIN);
    assert_int_equal(g.failed, 0);
    assert_true(g.calls > 0);
    /* Had each failed login's close waited on the loop, the good client, always in a
     * call, would have waited it out about once per failed login. */
    assert_true(g.stalled * 2 < BAD_LOGIN);

    shoal_rpc_channel_close(g.ch);
    shoal_loop_stop(loop);
    pthread_join(t, NULL);
    shoal_rpc_server_destroy(s);
    shoal_loop_destroy(loop);
}

int main(void)
{
    t_setup_root();
    snprintf(pki, sizeof(pki), "%s/pki", t_root);
    char src[] = __FILE__;
    if (t_system("sh '%s/make-test-certs.sh' '%s'", dirname(src), pki) != 0) {
        fprintf(stderr, "test_rpc_tls_login: cannot make the test certificates\n");
        return 2;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_failed_logins_do_not_stall),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
