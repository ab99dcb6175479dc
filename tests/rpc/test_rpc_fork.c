/* test_rpc_fork.c — a shm:// channel across fork(): a child that exits (or is killed)
 * without using the parent's channel leaves it working, and a child that uses it
 * shares it (its calls are answered) and leaves it working for the parent too, whether
 * it closes its copy or just exits. The server is a forked process of its own.
 * Over nng (ipc://), whose threads do not survive fork, a child of a process that used
 * nng gets a clear error at once — on the inherited channel and on a new one — instead
 * of waiting forever, and the parent's channel goes on working. */
#include <stdatomic.h>
#include <sys/mman.h>

#include "bytes_echo.h"
#include "forked_server.h"
#include "internal.h"
#include "testutil.h"

#define ADDR "shm://fork-echo"

static char nng_addr[300]; /* ipc:// in the test's root directory */

struct shared {
    fs_flags srv;
};

static struct shared *sh;

static const shoal_rpc_method methods[] = {
    {"Echo", SHOAL_RPC_UNARY, NULL, NULL, bytes_echo, 0}};
static const shoal_rpc_service service = {"test.Fork", methods, 1, NULL};

static shoal_rpc_channel *ch; /* the parent's, inherited by the children */

/* One call on ch: the rpc status. */
static int call(const char *text)
{
    void *resp = NULL;
    size_t len = 0;
    char detail[128];
    int code = shoal_rpc_unary(ch, "test.Fork", &methods[0], text, strlen(text) + 1,
                               &resp, &len, NULL, detail, sizeof(detail));
    if (code == SHOAL_RPC_OK && (len != strlen(text) + 1 || memcmp(resp, text, len)))
        code = SHOAL_RPC_DATA_LOSS;
    if (code != SHOAL_RPC_OK)
        fprintf(stderr, "call \"%s\": %s: %s\n", text, shoal_rpc_code_name(code), detail);
    free(resp);
    return code;
}

static int call_and_exit(void *closing)
{
    int code = call("from the child");
    if (closing)
        shoal_rpc_channel_close(ch);
    return code;
}

/* Time for the server to look at the holders of the client's end (it does so when it
 * would wait, once per sleep slice): a loss would show now. */
static void let_server_look(void)
{
    usleep(300 * 1000);
}

static pid_t server_pid;

static int setup_at(const char *addr)
{
    sh = t_shared_alloc(sizeof(*sh));
    server_pid = fs_start(&service, addr, &sh->srv);
    if (server_pid < 0)
        return -1;
    shoal_rpc_channel_config cfg = {.connect_timeout = SHOAL_SEC(30)};
    return shoal_rpc_channel_open(&ch, addr, &cfg);
}

static int setup(void **state)
{
    (void)state;
    return setup_at(ADDR);
}

/* The server is forked before this process first uses nng (its child may use it). */
static int setup_nng(void **state)
{
    (void)state;
    snprintf(nng_addr, sizeof(nng_addr), "ipc://%s/fork-echo.sock", t_root);
    return setup_at(nng_addr);
}

static int teardown(void **state)
{
    (void)state;
    shoal_rpc_channel_close(ch);
    int rc = fs_stop(server_pid, &sh->srv);
    munmap(sh, sizeof(*sh));
    return rc;
}

/* The child never touches the channel: exits, or is killed. */
static void test_child_does_not_use(void **state)
{
    (void)state;
    assert_int_equal(call("before"), SHOAL_RPC_OK);
    t_fork_gone(false);
    let_server_look();
    assert_int_equal(call("after the child exited"), SHOAL_RPC_OK);
    t_fork_gone(true);
    let_server_look();
    assert_int_equal(call("after the child was killed"), SHOAL_RPC_OK);
}

/* The child calls on the inherited channel, then exits without closing it or closes
 * it first; the parent goes on calling. */
static void test_child_uses(void **state)
{
    (void)state;
    for (int closing = 0; closing < 2; closing++) {
        assert_int_equal(call("before"), SHOAL_RPC_OK);
        pid_t pid = t_fork(call_and_exit, closing ? (void *)1 : NULL);
        assert_int_equal(t_wait(pid), SHOAL_RPC_OK);
        let_server_look();
        assert_int_equal(call("after the child's call"), SHOAL_RPC_OK);
    }
}

/* In the child: a call on the inherited nng channel fails, and so does opening a new
 * one, with SHOAL_ECLOSED. Returns 0 when both failed so. */
static int nng_in_child(void *arg)
{
    (void)arg;
    if (call("from the child") == SHOAL_RPC_OK)
        return 1;
    shoal_rpc_channel *fresh = NULL;
    shoal_rpc_channel_config cfg = {.connect_timeout = SHOAL_SEC(5)};
    int rc = shoal_rpc_channel_open(&fresh, nng_addr, &cfg);
    if (rc != SHOAL_ECLOSED) {
        fprintf(stderr, "open in the child: %d (%s)\n", rc, shoal_errdetail());
        return 2;
    }
    if (!strstr(shoal_errdetail(), "fork"))
        return 3;
    shoal_rpc_channel_close(ch); /* leaves the parent's connection alone */
    return 0;
}

static void test_nng_child_gets_an_error(void **state)
{
    (void)state;
    assert_int_equal(call("before"), SHOAL_RPC_OK);
    pid_t pid = t_fork(nng_in_child, NULL);
    assert_int_equal(t_wait(pid), 0);
    assert_int_equal(call("after the child"), SHOAL_RPC_OK);
}

int main(void)
{
    t_setup_root();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_child_does_not_use, setup, teardown),
        cmocka_unit_test_setup_teardown(test_child_uses, setup, teardown),
#ifdef SHOAL_TEST_NNG /* last: this process uses nng from here on */
        cmocka_unit_test_setup_teardown(test_nng_child_gets_an_error, setup_nng,
                                        teardown),
#endif
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
