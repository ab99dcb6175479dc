/* test_rpc_spinners.c — the spin policy of shm:// receives (spinners.h): one busy
 * connection spins the process's full budget; more busy connections than half the
 * CPUs the process may run on sleep at once; connections merely open, or closed, do
 * not count; a process that does not spin stays so; connections past the table's
 * size still receive. Then end to end: several clients of one server in lock step,
 * over real shm:// pipes, each reply checked, with the policy crowding them. No test
 * asserts on time: the crowded verdict is looked for over many tries, since a
 * preempted test thread can see its connections go idle. */
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>

#include "forked_server.h"
#include "internal.h"
#include "spinners.h"
#include "testutil.h"

#define ADDR    "shm://spin-echo"
#define SERVICE "test.Spin"
#define CLIENTS 4
#define ROUNDS  2000

static int cpus(void)
{
    cpu_set_t set;
    assert_int_equal(sched_getaffinity(0, sizeof(set), &set), 0);
    return CPU_COUNT(&set);
}

/* A wait of a that ended with a message: the connection is busy. */
static int64_t busy_wait(shoal__spin_adapt *a)
{
    int64_t t0 = shoal__spin_begin(a);
    int64_t budget = shoal__spin_thread_ns;
    shoal__spin_end(a, t0, true);
    assert_int_equal(shoal__spin_thread_ns, -1);
    return budget;
}

/* The budget a's next wait gets once its count is redone (after RECOUNT_NS). */
static int64_t recounted(shoal__spin_adapt *a)
{
    a->counted_at = 0;
    int64_t t0 = shoal__spin_begin(a);
    int64_t budget = shoal__spin_thread_ns;
    shoal__spin_end(a, t0, false);
    return budget;
}

static void test_policy(void **state)
{
    (void)state;
    int64_t full = shoal_spin_ns();
    assert_true(full > 0);
    int n = cpus() / 2 + 1; /* enough busy connections to crowd the CPUs */
    shoal__spin_adapt *a = calloc((size_t)n, sizeof(*a));
    assert_non_null(a);

    /* One busy connection, the others open and idle: the full budget. */
    for (int i = 0; i < n; i++)
        assert_int_equal(recounted(&a[i]), full);
    usleep(2000); /* every slot's time is older than BUSY_NS */
    for (int i = 0; i < 20; i++)
        busy_wait(&a[0]);
    assert_int_equal(recounted(&a[0]), full);

    /* All n busy: sleep at once (seen within a few tries). */
    int crowded = 0;
    for (int t = 0; t < 1000 && !crowded; t++) {
        for (int i = 0; i < n; i++) {
            a[i].noted = 0; /* rewrite the slot now */
            busy_wait(&a[i]);
        }
        crowded = recounted(&a[0]) == 0;
    }
    assert_true(crowded);

    /* The others closed: the one left spins again. */
    for (int i = 1; i < n; i++)
        shoal__spin_release(&a[i]);
    a[0].noted = 0;
    busy_wait(&a[0]);
    assert_int_equal(recounted(&a[0]), full);

    /* A process that does not spin: no budget set, nothing counted. */
    shoal_set_spin_ns(0);
    assert_int_equal(shoal__spin_begin(&a[0]), -1);
    assert_int_equal(shoal__spin_thread_ns, -1);
    shoal__spin_end(&a[0], -1, true);
    shoal_set_spin_ns(full);
    shoal__spin_release(&a[0]);
    free(a);
}

/* More connections than the table has slots: the extra ones get no slot and still
 * get a verdict; closing them all frees the table. */
static void test_table_full(void **state)
{
    (void)state;
    enum { N = 80 };
    shoal__spin_adapt a[N] = {0};
    for (int i = 0; i < N; i++) {
        int64_t b = busy_wait(&a[i]);
        assert_true(b == 0 || b == shoal_spin_ns());
    }
    assert_int_equal(a[N - 1].slot, -1);
    for (int i = 0; i < N; i++)
        shoal__spin_release(&a[i]);
    shoal__spin_adapt b = {0};
    busy_wait(&b);
    assert_true(b.slot > 0);
    shoal__spin_release(&b);
}

/* ---- end to end: CLIENTS clients in lock step with one forked server ----------------
 */

static fs_flags *flags;

static int echo(shoal_rpc_ctx *ctx, void *arg)
{
    (void)arg;
    if (shoal_rpc_ctx_set_direct(ctx, 1) < 0)
        return SHOAL_RPC_INTERNAL;
    void *m;
    size_t len;
    int rc = 0;
    while (rc >= 0 && shoal_rpc_ctx_recv(ctx, &m, &len) == 1) {
        rc = shoal_rpc_ctx_send(ctx, m, len);
        free(m);
    }
    return rc < 0 ? SHOAL_RPC_CANCELLED : SHOAL_RPC_OK;
}

static const shoal_rpc_method methods[] = {
    {"Echo", SHOAL_RPC_BIDI_STREAMING, NULL, NULL, echo, 0},
};
static const shoal_rpc_service service = {SERVICE, methods, 1, NULL};
static const shoal_rpc_channel_config cfg = {.connect_timeout = SHOAL_SEC(30)};

static void *client(void *arg)
{
    intptr_t me = (intptr_t)arg;
    shoal_rpc_channel *ch;
    if (shoal_rpc_channel_open(&ch, ADDR, &cfg) < 0)
        return (void *)1;
    shoal_rpc_call *call = NULL;
    shoal_rpc_options o = {.timeout = SHOAL_SEC(120)};
    intptr_t bad = shoal_rpc_call_start(&call, ch, SERVICE, &methods[0], &o) < 0;
    for (int i = 0; i < ROUNDS && !bad; i++) {
        long v = (long)me * 1000000 + i, *r;
        size_t len;
        bad = shoal_rpc_call_send(call, &v, sizeof(v)) < 0 ||
              shoal_rpc_call_recv(call, (void **)&r, &len) != 1;
        if (!bad) {
            bad = len != sizeof(v) || *r != v;
            free(r);
        }
    }
    if (!bad)
        bad = shoal_rpc_call_close_send(call) < 0 ||
              shoal_rpc_call_finish(call, NULL, 0) != SHOAL_RPC_OK;
    if (call)
        shoal_rpc_call_free(call);
    shoal_rpc_channel_close(ch);
    return (void *)bad;
}

static void test_clients_in_lock_step(void **state)
{
    (void)state;
    pid_t srv = fs_start(&service, ADDR, flags);
    assert_true(srv > 0);
    pthread_t t[CLIENTS];
    for (intptr_t i = 0; i < CLIENTS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, client, (void *)i), 0);
    for (int i = 0; i < CLIENTS; i++) {
        void *bad;
        pthread_join(t[i], &bad);
        assert_null(bad);
    }
    assert_int_equal(fs_stop(srv, flags), 0);
}

static int setup(void **state)
{
    (void)state;
    flags = t_shared_alloc(sizeof(*flags));
    return flags ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    munmap(flags, sizeof(*flags));
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policy),
        cmocka_unit_test(test_table_full),
        cmocka_unit_test_setup_teardown(test_clients_in_lock_step, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
