/*
 * broker_suite.c — the Manager broker and its C client, with real processes.
 *
 * Each test starts a broker in a forked child (shoal_broker_serve, the code of
 * `shoal broker`, built with the runtime's pause points) listening on shm:// — and on
 * tcp:// for the token test — and talks to it with shoal/manager.h from this process,
 * from threads and from forked clients. The crash tests SIGKILL a client holding a
 * lock, and the broker itself stopped at its pause points just before and just after
 * an LMDB commit, then restart it on the same data directory. Clients SIGKILLed while
 * they spin for their replies are cleared from the name's spin table, and the clients
 * left are served. Threads sharing one session each get their own replies, and each
 * thread's requests run in the order it sent them.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "forked.h"
#include "internal.h"
#include "wait.h"

static char data_dir[300];

static pid_t start_broker(const char *dir, const char *pause_at)
{
    return start_broker_with(&(broker_args){.data_dir = dir}, pause_at);
}

static int setup(void **state)
{
    static int n;
    snprintf(addr, sizeof(addr), "shm://broker-%d-%d", (int)getpid(), ++n);
    snprintf(data_dir, sizeof(data_dir), "%s/data-%d", t_root, n);
    *state = NULL;
    return 0;
}

/* Formats a value as Python's repr into a static buffer. */
static const char *repr(const shoal_mv *v)
{
    static char buf[512];
    shoal_mv_format(v, buf, sizeof(buf));
    return buf;
}

#define S(x) shoal_mv_str(x)
#define I(x) shoal_mv_int(x)

static void test_dict_and_nested(void **state)
{
    (void)state;
    pid_t b = start_broker(NULL, NULL);
    shoal_manager *m = connect_to(addr, NULL);
    assert_int_equal(shoal_manager_create(m, "d", SHOAL_M_DICT, NULL, NULL), 1);
    assert_int_equal(shoal_manager_create(m, "d", SHOAL_M_DICT, NULL, NULL), 0);
    assert_int_equal(shoal_manager_create(m, "d", SHOAL_M_LIST, NULL, NULL), SHOAL_EKIND);
    assert_int_equal(shoal_manager_create(m, "bad", SHOAL_M_DICT, shoal_mv_list(), NULL),
                     SHOAL_EINVAL); /* a dict from a list */
    assert_int_equal(shoal_manager_create(m, "bad", 99, NULL, NULL), SHOAL_EINVAL);
    assert_string_equal(op(m, "d", "set", 2, I(1), S("1")), "-");
    assert_string_equal(op(m, "d", "set", 2, S("2"), I(2)), "-");
    assert_string_equal(op(m, "d", "set", 2, shoal_mv_double(0.25), shoal_mv_none()),
                        "-");
    assert_string_equal(op(m, "d", "copy", 0), "{1: '1', '2': 2, 0.25: None}");
    assert_string_equal(op(m, "d", "get", 1, S("nope")), "E-3");
    assert_string_equal(op(m, "d", "get", 2, S("nope"), I(7)), "7");
    assert_string_equal(op(m, "d", "incr", 2, S("n"), I(5)), "5");
    assert_string_equal(op(m, "d", "incr", 2, S("n"), I(-2)), "3");
    assert_string_equal(op(m, "d", "cas", 3, S("n"), I(4), I(9)), "False");
    assert_string_equal(op(m, "d", "cas", 3, S("n"), I(3), I(9)), "True");
    assert_string_equal(op(m, "d", "setdefault", 2, S("n"), I(0)), "9");
    assert_string_equal(op(m, "d", "setdefault", 2, S("x"), shoal_mv_list()), "[]");
    assert_string_equal(op(m, "d", "pop", 1, S("n")), "9");
    assert_string_equal(op(m, "d", "contains", 1, S("n")), "False");
    assert_string_equal(op(m, "d", "set", 2, shoal_mv_list(), I(1)),
                        "E-1");                                /* unhashable */
    assert_string_equal(op(m, "d", "append", 1, I(1)), "E-6"); /* not on a dict */

    /* d['x'].append(1): the nested list is changed in place */
    shoal_mv *path[1] = {S("x")}, *args[1] = {I(1)};
    shoal_manager_request r = {"d", "append", path, 1, args, 1, 0};
    uint64_t id;
    T_OK(shoal_manager_submit(m, &r, &id));
    T_OK(shoal_manager_wait(m, id, NULL));
    assert_string_equal(op(m, "d", "get", 1, S("x")), "[1]");
    assert_string_equal(op(m, "d", "len", 0), "4");
    assert_string_equal(op(m, "d", "keys", 0), "[1, '2', 0.25, 'x']");
    assert_string_equal(op(m, "nothing", "get", 1, I(1)), "E-3");
    assert_string_equal(op(m, "d", "frobnicate", 0), "E-6");

    /* a value overwritten by shorter ones (copied into its block), then by longer
     * ones and ones of other kinds: each read gives the last */
    const char *sets[][2] = {{"abcdef", "'abcdef'"},
                             {"xy", "'xy'"},
                             {"", "''"},
                             {"a longer string", "'a longer string'"}};
    for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
        assert_string_equal(op(m, "d", "set", 2, S("s"), S(sets[i][0])), "-");
        assert_string_equal(op(m, "d", "get", 1, S("s")), sets[i][1]);
    }
    assert_string_equal(op(m, "d", "set", 2, S("s"), shoal_mv_bytes("\1\2\3", 3)), "-");
    assert_string_equal(op(m, "d", "set", 2, S("s"), shoal_mv_bytes("\4", 1)), "-");
    assert_string_equal(op(m, "d", "get", 1, S("s")), "b'\\x04'");
    assert_string_equal(op(m, "d", "set", 2, S("s"), shoal_mv_bytes("\5\6", 2)), "-");
    assert_string_equal(op(m, "d", "get", 1, S("s")), "b'\\x05\\x06'");
    assert_string_equal(op(m, "d", "set", 2, S("s"), I(3)), "-");
    assert_string_equal(op(m, "d", "get", 1, S("s")), "3");
    assert_string_equal(op(m, "d", "set", 2, S("s"), S("z")), "-");
    assert_string_equal(op(m, "d", "get", 1, S("s")), "'z'");
    shoal_manager_close(m);
    stop_broker(b);
}

static void test_list_value_array(void **state)
{
    (void)state;
    pid_t b = start_broker(NULL, NULL);
    shoal_manager *m = connect_to(addr, NULL);
    shoal_mv *init = shoal_mv_list();
    for (int i = 0; i < 10; i++)
        shoal_mv_append(init, I(i));
    assert_int_equal(shoal_manager_create(m, "l", SHOAL_M_LIST, init, NULL), 1);
    assert_string_equal(op(m, "l", "reverse", 0), "-");
    assert_string_equal(op(m, "l", "copy", 0), "[9, 8, 7, 6, 5, 4, 3, 2, 1, 0]");
    assert_string_equal(op(m, "l", "pop", 0), "0");
    assert_string_equal(op(m, "l", "pop", 1, I(0)), "9");
    assert_string_equal(op(m, "l", "insert", 2, I(-100), S("a")), "-");
    assert_string_equal(op(m, "l", "get", 1, I(0)), "'a'");
    assert_string_equal(op(m, "l", "get", 1, I(99)), "E-17");
    assert_string_equal(op(m, "l", "index", 1, I(5)), "4");
    assert_string_equal(op(m, "l", "remove", 1, I(42)), "E-3");
    shoal_mv *t = shoal_mv_tuple();
    shoal_mv_append(t, S("Jeff"));
    shoal_mv_append(t, I(8));
    assert_string_equal(op(m, "l", "append", 1, t), "-");
    assert_string_equal(op(m, "l", "get", 1, I(-1)), "('Jeff', 8)");

    assert_int_equal(
        shoal_manager_create(m, "v", SHOAL_M_VALUE, shoal_mv_double(3.14), "d"), 1);
    assert_string_equal(op(m, "v", "set", 1, I(11)), "-");
    assert_string_equal(op(m, "v", "get", 0), "11.0");
    assert_string_equal(op(m, "v", "incr", 1, shoal_mv_double(0.24)), "11.24");
    assert_string_equal(op(m, "v", "set", 1, S("x")), "E-25");
    assert_int_equal(shoal_manager_create(m, "vi", SHOAL_M_VALUE, I(0), "i"), 1);
    assert_string_equal(op(m, "vi", "incr", 1, I(3)), "3");
    assert_string_equal(op(m, "vi", "incr", 1, shoal_mv_double(0.5)), "E-1");

    shoal_mv *arr = shoal_mv_list();
    for (int i = 0; i < 4; i++)
        shoal_mv_append(arr, I(0));
    assert_int_equal(shoal_manager_create(m, "a", SHOAL_M_ARRAY, arr, "i"), 1);
    assert_string_equal(op(m, "a", "set", 2, I(3), I(16)), "-");
    assert_string_equal(op(m, "a", "set", 2, I(3), S("x")), "E-25");
    assert_string_equal(op(m, "a", "append", 1, I(1)), "E-6");
    assert_string_equal(op(m, "a", "get", 1, I(4)), "E-17");
    assert_string_equal(op(m, "a", "copy", 0), "[0, 0, 0, 16]");
    shoal_mv *bad = shoal_mv_list();
    shoal_mv_append(bad, S("no"));
    assert_int_equal(shoal_manager_create(m, "a2", SHOAL_M_ARRAY, bad, "d"), SHOAL_ETYPE);
    shoal_manager_close(m);
    stop_broker(b);
}

struct getter {
    const char *address;
    const char *name, *op;
    shoal_duration timeout;
    char out[64];
};

static void *getter_main(void *arg)
{
    struct getter *g = arg;
    shoal_manager *m = connect_to(g->address, NULL);
    shoal_mv *res = NULL;
    int rc = shoal_manager_call(m, g->name, g->op, g->timeout, &res, 0);
    if (rc < 0)
        snprintf(g->out, sizeof(g->out), "E%d", rc);
    else
        shoal_mv_format(res, g->out, sizeof(g->out));
    shoal_mv_free(res);
    shoal_manager_close(m);
    return NULL;
}

static void test_queue_event_blocking(void **state)
{
    (void)state;
    pid_t b = start_broker(NULL, NULL);
    shoal_manager *m = connect_to(addr, NULL);
    assert_int_equal(shoal_manager_create(m, "q", SHOAL_M_QUEUE, I(2), NULL), 1);
    assert_string_equal(op(m, "q", "get", 0), "E-13"); /* the try form */
    shoal_mv *res;
    assert_int_equal(shoal_manager_call(m, "q", "get", SHOAL_MS(50), &res, 0),
                     SHOAL_ETIMEDOUT);

    /* a get parked in the broker completes when another client puts */
    struct getter g = {addr, "q", "get", SHOAL_SEC(20), ""};
    pthread_t t;
    pthread_create(&t, NULL, getter_main, &g);
    usleep(100000);
    assert_string_equal(op(m, "q", "put", 1, I(4)), "-");
    pthread_join(t, NULL);
    assert_string_equal(g.out, "4");

    assert_string_equal(op(m, "q", "put", 1, I(1)), "-");
    assert_string_equal(op(m, "q", "put", 1, I(2)), "-");
    assert_string_equal(op(m, "q", "full", 0), "True");
    assert_int_equal(shoal_manager_call(m, "q", "put", SHOAL_MS(30), NULL, 1, I(3)),
                     SHOAL_ETIMEDOUT);
    assert_string_equal(op(m, "q", "get", 0), "1");
    assert_string_equal(op(m, "q", "qsize", 0), "1");

    assert_int_equal(shoal_manager_create(m, "jq", SHOAL_M_JOINABLE_QUEUE, NULL, NULL),
                     1);
    assert_string_equal(op(m, "jq", "put", 1, I(1)), "-");
    assert_string_equal(op(m, "jq", "put", 1, I(2)), "-");
    assert_string_equal(op(m, "jq", "join", 0), "E-13"); /* two tasks not done */
    assert_string_equal(op(m, "jq", "get", 0), "1");
    assert_string_equal(op(m, "jq", "task_done", 0), "-");
    assert_string_equal(op(m, "jq", "get", 0), "2");
    assert_string_equal(op(m, "jq", "task_done", 0), "-");
    assert_string_equal(op(m, "jq", "join", 0), "-");
    assert_string_equal(op(m, "jq", "task_done", 0), "E-18");
    assert_string_equal(op(m, "q", "task_done", 0), "E-6"); /* not on a plain Queue */

    assert_int_equal(shoal_manager_create(m, "e", SHOAL_M_EVENT, NULL, NULL), 1);
    assert_int_equal(shoal_manager_call(m, "e", "wait", SHOAL_MS(30), &res, 0), 0);
    assert_string_equal(repr(res), "False");
    shoal_mv_free(res);
    struct getter w = {addr, "e", "wait", SHOAL_SEC(20), ""};
    pthread_create(&t, NULL, getter_main, &w);
    usleep(100000);
    assert_string_equal(op(m, "e", "set", 0), "-");
    pthread_join(t, NULL);
    assert_string_equal(w.out, "True");

    /* many requests in flight on one session, answered by id: the gets are
     * submitted first and park until the puts behind them arrive */
    assert_int_equal(shoal_manager_create(m, "q2", SHOAL_M_QUEUE, NULL, NULL), 1);
    uint64_t gets[64], puts[64];
    for (int i = 0; i < 64; i++) {
        shoal_manager_request r = {"q2", "get", NULL, 0, NULL, 0, SHOAL_FOREVER};
        T_OK(shoal_manager_submit(m, &r, &gets[i]));
    }
    for (int i = 0; i < 64; i++) {
        shoal_mv *a[1] = {I(i)};
        shoal_manager_request r = {"q2", "put", NULL, 0, a, 1, SHOAL_FOREVER};
        T_OK(shoal_manager_submit(m, &r, &puts[i]));
    }
    for (int i = 63; i >= 0; i--) { /* waited for in another order than sent */
        T_OK(shoal_manager_wait(m, puts[i], NULL));
        T_OK(shoal_manager_wait(m, gets[i], &res));
        assert_int_equal(shoal_mv_as_int(res), i);
        shoal_mv_free(res);
    }
    /* a get left parked when its session closes is dropped */
    shoal_manager_request r = {"q2", "get", NULL, 0, NULL, 0, SHOAL_FOREVER};
    uint64_t id;
    T_OK(shoal_manager_submit(m, &r, &id));
    shoal_manager_close(m);
    stop_broker(b);
}

static int hold_lock_then_stop(void *arg)
{
    (void)arg;
    shoal_manager *m = connect_to(addr, NULL);
    if (shoal_manager_call(m, "lk", "acquire", SHOAL_FOREVER, NULL, 0) != 0)
        return 1;
    if (shoal_manager_call(m, "sem", "acquire", SHOAL_FOREVER, NULL, 0) != 0)
        return 2;
    raise(SIGSTOP); /* the parent kills it here, holding both */
    return 0;
}

/* The broker's own path (--no-lock-table; broker_locks.c tests the lock table). */
static void test_locks_and_dead_client(void **state)
{
    (void)state;
    pid_t b = start_broker_with(&(broker_args){.no_lock_table = 1}, NULL);
    shoal_manager *m = connect_to(addr, NULL);
    assert_int_equal(shoal_manager_create(m, "lk", SHOAL_M_LOCK, NULL, NULL), 1);
    assert_int_equal(shoal_manager_create(m, "rl", SHOAL_M_RLOCK, NULL, NULL), 1);
    assert_int_equal(
        shoal_manager_create(m, "sem", SHOAL_M_BOUNDED_SEMAPHORE, I(1), NULL), 1);
    assert_string_equal(op(m, "rl", "acquire", 0), "-");
    assert_string_equal(op(m, "rl", "acquire", 0), "-");
    assert_string_equal(op(m, "rl", "release", 0), "-");
    assert_string_equal(op(m, "rl", "locked", 0), "True");
    assert_string_equal(op(m, "rl", "release", 0), "-");
    assert_string_equal(op(m, "rl", "release", 0), "E-16");
    assert_string_equal(op(m, "sem", "release", 0), "E-18");

    pid_t c = t_fork_paused("-", hold_lock_then_stop, NULL);
    assert_true(c > 0);
    assert_string_equal(op(m, "lk", "locked", 0), "True");
    assert_string_equal(op(m, "sem", "value", 0), "0");
    assert_int_equal(shoal_manager_call(m, "lk", "acquire", SHOAL_MS(30), NULL, 0),
                     SHOAL_ETIMEDOUT);
    /* parked, then the holder dies: the lock comes with owner-died */
    shoal_manager_request r = {"lk", "acquire", NULL, 0, NULL, 0, SHOAL_SEC(20)};
    uint64_t id;
    T_OK(shoal_manager_submit(m, &r, &id));
    t_kill(c);
    assert_int_equal(shoal_manager_wait(m, id, NULL), SHOAL_EOWNERDEAD);
    assert_string_equal(op(m, "lk", "release", 0), "-");
    assert_string_equal(op(m, "lk", "acquire", 0), "-"); /* told once only */
    assert_string_equal(op(m, "sem", "value", 0), "1");  /* its unit came back */
    shoal_manager_close(m);
    stop_broker(b);
}

/* A session of its own taking and freeing lock "bl" until `stop`, counting its
 * turns; `failed` when a call did not return 0. */
struct looper {
    pthread_t t;
    _Atomic int stop;
    _Atomic long turns;
    int failed;
};

static void *lock_loop(void *arg)
{
    struct looper *l = arg;
    shoal_manager *m = connect_to(addr, NULL);
    while (!atomic_load(&l->stop) && !l->failed) {
        l->failed = shoal_manager_call(m, "bl", "acquire", SHOAL_FOREVER, NULL, 0) != 0 ||
                    shoal_manager_call(m, "bl", "release", 0, NULL, 0) != 0;
        atomic_fetch_add(&l->turns, 1);
    }
    shoal_manager_close(m);
    return NULL;
}

/* Barging: a freed lock may go to a session that asks for it right after, rather than
 * to its first waiter, but never for long. Two sessions take and free a lock as fast
 * as they can; a third one's acquire still completes, and while it holds the lock
 * neither of them gets it (at most the turn each was finishing is counted after);
 * both loopers make progress. A lone waiter gets a lock freed by a holder that does
 * not come back for it. */
/* The broker's own path (--no-lock-table): barging is the broker's. */
static void test_lock_barging(void **state)
{
    (void)state;
    pid_t b = start_broker_with(&(broker_args){.no_lock_table = 1}, NULL);
    shoal_manager *m = connect_to(addr, NULL);
    assert_int_equal(shoal_manager_create(m, "bl", SHOAL_M_LOCK, NULL, NULL), 1);
    struct looper l[2] = {0};
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&l[i].t, NULL, lock_loop, &l[i]), 0);
    while (atomic_load(&l[0].turns) < 100 || atomic_load(&l[1].turns) < 100)
        usleep(1000);
    int64_t t0 = shoal__now_ns();
    T_OK(shoal_manager_call(m, "bl", "acquire", SHOAL_SEC(20), NULL, 0));
    int64_t waited = shoal__now_ns() - t0;
    long before = atomic_load(&l[0].turns) + atomic_load(&l[1].turns);
    usleep(50 * 1000);
    long after = atomic_load(&l[0].turns) + atomic_load(&l[1].turns);
    T_OK(shoal_manager_call(m, "bl", "release", 0, NULL, 0));
    for (int i = 0; i < 2; i++) {
        atomic_store(&l[i].stop, 1);
        pthread_join(l[i].t, NULL);
        assert_false(l[i].failed);
    }
    assert_true(after - before <= 2);
    assert_true(waited < SHOAL_SEC(5)); /* a few milliseconds, unless the host stalls */

    /* a lone waiter */
    assert_string_equal(op(m, "bl", "acquire", 0), "-");
    shoal_manager *m2 = connect_to(addr, NULL);
    shoal_manager_request r = {"bl", "acquire", NULL, 0, NULL, 0, SHOAL_SEC(20)};
    uint64_t id;
    T_OK(shoal_manager_submit(m2, &r, &id));
    usleep(10 * 1000);
    assert_string_equal(op(m, "bl", "release", 0), "-");
    T_OK(shoal_manager_wait(m2, id, NULL));
    assert_true(stat_of(m, "parked") > 0); /* that acquire waited */
    assert_string_equal(op(m, "bl", "locked", 0), "True");
    shoal_manager_close(m2); /* holding it: freed, with owner-died */
    assert_int_equal(shoal_manager_call(m, "bl", "acquire", SHOAL_SEC(20), NULL, 0),
                     SHOAL_EOWNERDEAD);
    shoal_manager_close(m);
    stop_broker(b);
}

/* One client alone on a lock: 1,000 acquire + release pairs in lock step and 1,000
 * submitted two at a time (the release right behind its acquire) never park a request
 * or open a barging window — nothing of the waiting machinery (the timer thread, a
 * parked reply, a sender's wake-up) is on an uncontended lock's path — and no pair
 * waits on anything but the exchange itself. The bound on a pair's time is a stall's
 * (a timer, a lost wake-up), generous for a sanitized build on a loaded machine: a
 * host that deschedules the test for longer is allowed 5% of such pairs (a lost
 * wake-up or a timer on the path would stall every one). */
static void test_lock_uncontended(void **state)
{
    (void)state;
    enum { PAIRS = 1000, STALL_NS = 20 * 1000000, STALLS_ALLOWED = 100 };
    pid_t b = start_broker(NULL, NULL);
    shoal_manager *m = connect_to(addr, NULL);
    assert_int_equal(shoal_manager_create(m, "ul", SHOAL_M_LOCK, NULL, NULL), 1);
    int64_t parked = stat_of(m, "parked"), windows = stat_of(m, "barge_windows");
    int stalls = 0;
    int64_t worst = 0;
    for (int i = 0; i < 2 * PAIRS; i++) {
        int64_t t0 = shoal__now_ns();
        if (i < PAIRS) {
            T_OK(shoal_manager_call(m, "ul", "acquire", SHOAL_FOREVER, NULL, 0));
            T_OK(shoal_manager_call(m, "ul", "release", 0, NULL, 0));
        } else {
            shoal_manager_request acq = {"ul", "acquire", NULL,         0,
                                         NULL, 0,         SHOAL_FOREVER};
            shoal_manager_request rel = {"ul", "release", NULL, 0, NULL, 0, 0};
            uint64_t ids[2];
            T_OK(shoal_manager_submit(m, &acq, &ids[0]));
            T_OK(shoal_manager_submit(m, &rel, &ids[1]));
            T_OK(shoal_manager_wait(m, ids[0], NULL));
            T_OK(shoal_manager_wait(m, ids[1], NULL));
        }
        int64_t took = shoal__now_ns() - t0;
        stalls += took > STALL_NS;
        worst = took > worst ? took : worst;
    }
    assert_int_equal(stat_of(m, "parked"), parked);
    assert_int_equal(stat_of(m, "barge_windows"), windows);
    assert_int_equal(stat_of(m, "waiters"), 0);
    assert_string_equal(op(m, "ul", "locked", 0), "False");
    if (stalls > STALLS_ALLOWED)
        fail_msg("%d of %d uncontended acquire + release pairs took over 20 ms (the "
                 "longest %.1f ms)",
                 stalls, 2 * PAIRS, (double)worst / 1e6);
    shoal_manager_close(m);
    stop_broker(b);
}

/* Submits sets d[base + i] = i, i < n, and waits for their replies. */
static void pipelined_sets(shoal_manager *m, int base, int n)
{
    uint64_t ids[64];
    assert_true(n <= 64);
    for (int i = 0; i < n; i++) {
        shoal_mv *a[2] = {I(base + i), I(i)};
        shoal_manager_request r = {"d", "set", NULL, 0, a, 2, 0};
        T_OK(shoal_manager_submit(m, &r, &ids[i]));
    }
    for (int i = 0; i < n; i++)
        T_OK(shoal_manager_wait(m, ids[i], NULL));
}

/* A third session that takes the lock, has 16 sets answered, and is killed. */
static int lock_sets_then_stop(void *arg)
{
    (void)arg;
    shoal_manager *m = connect_to(addr, NULL);
    if (shoal_manager_call(m, "lk", "acquire", SHOAL_FOREVER, NULL, 0) != 0)
        return 1;
    pipelined_sets(m, 1000, 16);
    raise(SIGSTOP); /* the parent kills it here, holding the lock */
    return 0;
}

/* A broker on one CPU: one session reads its requests on its own thread (direct
 * receive); a second one makes them more than the CPUs, and the loop's thread serves
 * both (inline receive: the first switches at its next request); a third, killed
 * holding a lock, frees it; once the second closes, the first goes back to direct
 * receive. Through every switch nothing is lost, replies parked by another session
 * arrive, and pipelined batches are answered in full. */
static void test_crowded_sessions(void **state)
{
    (void)state;
    pid_t b = start_broker_with(&(broker_args){.one_cpu = 1}, NULL);
    shoal_manager *m1 = connect_to(addr, NULL);
    assert_int_equal(shoal_manager_create(m1, "d", SHOAL_M_DICT, NULL, NULL), 1);
    assert_int_equal(shoal_manager_create(m1, "lk", SHOAL_M_LOCK, NULL, NULL), 1);
    pipelined_sets(m1, 0, 40);
    shoal_manager *m2 = connect_to(addr, NULL);
    for (int round = 0; round < 20; round++) { /* both in inline receive */
        pipelined_sets(m1, 100 + round * 10, 10);
        pipelined_sets(m2, 300 + round * 10, 10);
    }
    assert_string_equal(op(m1, "d", "len", 0), "440");
    /* a reply parked by one session, delivered by the other's request */
    assert_string_equal(op(m1, "lk", "acquire", 0), "-");
    shoal_manager_request r = {"lk", "acquire", NULL, 0, NULL, 0, SHOAL_SEC(20)};
    uint64_t id;
    T_OK(shoal_manager_submit(m2, &r, &id));
    assert_string_equal(op(m1, "lk", "release", 0), "-");
    T_OK(shoal_manager_wait(m2, id, NULL));
    assert_string_equal(op(m2, "lk", "release", 0), "-");

    pid_t c = t_fork_paused("-", lock_sets_then_stop, NULL);
    assert_true(c > 0);
    assert_string_equal(op(m1, "d", "len", 0), "456");
    T_OK(shoal_manager_submit(m2, &r, &id));
    t_kill(c);
    assert_int_equal(shoal_manager_wait(m2, id, NULL), SHOAL_EOWNERDEAD);
    assert_string_equal(op(m2, "lk", "release", 0), "-");

    shoal_manager_close(m2); /* one session: direct receive again */
    for (int round = 0; round < 10; round++)
        pipelined_sets(m1, 600 + round * 16, 16);
    assert_string_equal(op(m1, "d", "len", 0), "616");
    assert_string_equal(op(m1, "d", "get", 1, I(1015)), "15");
    assert_string_equal(op(m1, "lk", "acquire", 0), "-");
    shoal_manager_close(m1);
    stop_broker(b);
}

/* Sets d[base + i] = i, i < n, one call at a time (each waits for its reply). */
static void lock_step_sets(shoal_manager *m, int base, int n)
{
    for (int i = 0; i < n; i++)
        T_OK(shoal_manager_call(m, "d", "set", 0, NULL, 2, I(base + i), I(i)));
}

/* A session in lock step that takes lock lk2, has 16 sets answered, and is killed. */
static int lock_step_then_stop(void *arg)
{
    (void)arg;
    shoal_manager *m = connect_to(addr, NULL);
    if (shoal_manager_call(m, "lk2", "acquire", SHOAL_FOREVER, NULL, 0) != 0)
        return 1;
    for (int i = 0; i < 16; i++)
        if (shoal_manager_call(m, "d", "set", 0, NULL, 2, I(2000 + i), I(i)) != 0)
            return 1;
    raise(SIGSTOP); /* the parent kills it here, holding lk2 */
    return 0;
}

/* Clients in lock step (every call waits for its reply) on a broker on one CPU: the
 * sessions go to inline receive as soon as they outnumber the CPUs, as pipelining
 * ones do. An Event's wait parked while its session reads its own requests is
 * answered after the session switched; a lock's acquire parked in inline receive is
 * granted by the end of its holder's session, after which the waiter's session is
 * alone and reads its own requests again; a session killed in inline receive frees
 * its lock with owner-died; nothing is lost through the switches. */
static void test_crowded_lock_step(void **state)
{
    (void)state;
    pid_t b = start_broker_with(&(broker_args){.one_cpu = 1}, NULL);
    shoal_manager *m1 = connect_to(addr, NULL);
    assert_int_equal(shoal_manager_create(m1, "d", SHOAL_M_DICT, NULL, NULL), 1);
    assert_int_equal(shoal_manager_create(m1, "lk", SHOAL_M_LOCK, NULL, NULL), 1);
    assert_int_equal(shoal_manager_create(m1, "lk2", SHOAL_M_LOCK, NULL, NULL), 1);
    assert_int_equal(shoal_manager_create(m1, "e", SHOAL_M_EVENT, NULL, NULL), 1);
    lock_step_sets(m1, 0, 20);
    /* parked while m1's session is alone (direct receive) */
    shoal_manager_request w = {"e", "wait", NULL, 0, NULL, 0, SHOAL_SEC(20)};
    uint64_t wid;
    T_OK(shoal_manager_submit(m1, &w, &wid));
    T_OK(shoal_manager_flush(m1));              /* sent now: the submit may keep it */
    shoal_manager *m2 = connect_to(addr, NULL); /* two sessions: inline receive */
    lock_step_sets(m2, 100, 20);
    assert_string_equal(op(m2, "e", "set", 0), "-");
    shoal_mv *res = NULL;
    T_OK(shoal_manager_wait(m1, wid, &res));
    assert_string_equal(repr(res), "True");
    shoal_mv_free(res);
    for (int round = 0; round < 20; round++) { /* both in lock step, inline */
        lock_step_sets(m1, 200 + round * 5, 5);
        lock_step_sets(m2, 400 + round * 5, 5);
    }
    assert_string_equal(op(m1, "d", "len", 0), "240");

    /* a session killed in inline receive, holding a lock */
    pid_t c = t_fork_paused("-", lock_step_then_stop, NULL);
    assert_true(c > 0);
    assert_string_equal(op(m1, "d", "len", 0), "256");
    shoal_manager_request r2 = {"lk2", "acquire", NULL, 0, NULL, 0, SHOAL_SEC(20)};
    uint64_t id;
    T_OK(shoal_manager_submit(m2, &r2, &id));
    t_kill(c);
    assert_int_equal(shoal_manager_wait(m2, id, NULL), SHOAL_EOWNERDEAD);
    assert_string_equal(op(m2, "lk2", "release", 0), "-");

    /* an acquire parked in inline receive, granted as its holder's session ends */
    assert_string_equal(op(m2, "lk", "acquire", 0), "-");
    shoal_manager_request r = {"lk", "acquire", NULL, 0, NULL, 0, SHOAL_SEC(20)};
    T_OK(shoal_manager_submit(m1, &r, &id));
    lock_step_sets(m2, 600, 5);
    shoal_manager_close(m2); /* holding lk: m1 gets it, with owner-died */
    assert_int_equal(shoal_manager_wait(m1, id, NULL), SHOAL_EOWNERDEAD);
    lock_step_sets(m1, 700, 20); /* alone: direct receive again */
    assert_string_equal(op(m1, "d", "len", 0), "281");
    assert_string_equal(op(m1, "d", "get", 1, I(2015)), "15");
    assert_string_equal(op(m1, "d", "get", 1, I(604)), "4");
    assert_string_equal(op(m1, "lk", "locked", 0), "True");
    assert_string_equal(op(m1, "lk", "release", 0), "-");
    shoal_manager_close(m1);
    stop_broker(b);
}

struct party {
    const char *name, *op;
    int index;
};

static void *party_main(void *arg)
{
    struct party *p = arg;
    shoal_manager *m = connect_to(addr, NULL);
    shoal_mv *res = NULL;
    if (!strcmp(p->op, "cond")) {
        shoal_manager_call(m, p->name, "acquire", SHOAL_FOREVER, NULL, 0);
        int rc = shoal_manager_call(m, p->name, "wait", SHOAL_SEC(20), &res, 0);
        p->index = rc == 0 && shoal_mv_as_bool(res) ? 1 : rc;
        shoal_manager_call(m, p->name, "release", 0, NULL, 0);
    } else {
        int rc = shoal_manager_call(m, p->name, "wait", SHOAL_SEC(20), &res, 0);
        p->index = rc == 0 ? (int)shoal_mv_as_int(res) : rc;
    }
    shoal_mv_free(res);
    shoal_manager_close(m);
    return NULL;
}

static void test_condition_barrier(void **state)
{
    (void)state;
    pid_t b = start_broker(NULL, NULL);
    shoal_manager *m = connect_to(addr, NULL);
    assert_int_equal(shoal_manager_create(m, "bar", SHOAL_M_BARRIER, I(3), NULL), 1);
    struct party p[2] = {{"bar", "wait", -100}, {"bar", "wait", -100}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, party_main, &p[i]);
    shoal_mv *res = NULL;
    for (int i = 0; i < 500; i++) { /* until both wait */
        shoal_mv_free(res);
        shoal_manager_call(m, "bar", "n_waiting", 0, &res, 0);
        if (shoal_mv_as_int(res) == 2)
            break;
        usleep(10000);
    }
    shoal_mv_free(res);
    T_OK(shoal_manager_call(m, "bar", "wait", SHOAL_SEC(20), &res, 0));
    assert_int_equal(shoal_mv_as_int(res), 2);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(p[0].index + p[1].index, 1); /* 0 and 1 */
    shoal_mv_free(res);
    /* a timed-out wait breaks it */
    assert_int_equal(shoal_manager_call(m, "bar", "wait", SHOAL_MS(20), NULL, 0),
                     SHOAL_EBROKEN);
    assert_string_equal(op(m, "bar", "broken", 0), "True");

    assert_int_equal(shoal_manager_create(m, "cv", SHOAL_M_CONDITION, NULL, NULL), 1);
    assert_string_equal(op(m, "cv", "wait", 0), "E-16"); /* without the lock */
    struct party c = {"cv", "cond", -100};
    pthread_t ct;
    pthread_create(&ct, NULL, party_main, &c);
    for (int i = 0; i < 500; i++) { /* until it waits (it released the lock) */
        usleep(10000);
        if (!strcmp(op(m, "cv", "locked", 0), "False") && i > 5)
            break;
    }
    assert_string_equal(op(m, "cv", "acquire", 0), "-");
    assert_string_equal(op(m, "cv", "notify", 0), "-");
    assert_string_equal(op(m, "cv", "release", 0), "-");
    pthread_join(ct, NULL);
    assert_int_equal(c.index, 1);
    T_OK(shoal_manager_call(m, "cv", "acquire", 0, NULL, 0));
    assert_int_equal(shoal_manager_call(m, "cv", "wait", SHOAL_MS(20), &res, 0), 0);
    assert_string_equal(repr(res), "False"); /* timed out, and holds the lock again */
    shoal_mv_free(res);
    assert_string_equal(op(m, "cv", "release", 0), "-");
    shoal_manager_close(m);
    stop_broker(b);
}

/* Waits until the broker stops at its pause point; returns 0 if it did. */
static int wait_stopped(pid_t pid)
{
    int st;
    return waitpid(pid, &st, WUNTRACED) == pid && WIFSTOPPED(st) ? 0 : -1;
}

/* Writes key i, lets the broker (stopping at a pause point of each commit) through
 * its commit, and waits for the acknowledgement. */
static void acked_write(shoal_manager *m, pid_t b, int i)
{
    shoal_mv *a[2] = {I(i), I(i * 10)};
    shoal_manager_request r = {"d", "set", NULL, 0, a, 2, 0};
    uint64_t id;
    T_OK(shoal_manager_submit(m, &r, &id));
    T_OK(shoal_manager_flush(m));         /* sent now: the submit may keep it */
    assert_int_equal(wait_stopped(b), 0); /* at the pause point of its commit */
    kill(b, SIGCONT);
    T_OK(shoal_manager_wait(m, id, NULL));
}

static void crash_at(const char *point)
{
    const char *dir = data_dir;
    pid_t b = start_broker(dir, NULL);
    shoal_manager *m = connect_to(addr, NULL);
    assert_int_equal(shoal_manager_create(m, "d", SHOAL_M_DICT, NULL, NULL), 1);
    assert_int_equal(shoal_manager_create(m, "lk", SHOAL_M_LOCK, NULL, NULL), 1);
    shoal_manager_close(m);
    stop_broker(b);

    /* the armed broker stops at the pause point of each commit: step it through a
     * lock acquire and 20 writes, each acknowledged */
    b = start_broker(dir, point);
    m = connect_to(addr, NULL);
    shoal_manager_request acq = {"lk", "acquire", NULL, 0, NULL, 0, 0};
    uint64_t lid;
    T_OK(shoal_manager_submit(m, &acq, &lid));
    T_OK(shoal_manager_flush(m));
    assert_int_equal(wait_stopped(b), 0);
    kill(b, SIGCONT);
    T_OK(shoal_manager_wait(m, lid, NULL));
    for (int i = 0; i < 20; i++)
        acked_write(m, b, i);
    /* one more, killed at the instant asked for */
    shoal_mv *a[2] = {I(20), I(200)};
    shoal_manager_request r = {"d", "set", NULL, 0, a, 2, 0};
    uint64_t id;
    T_OK(shoal_manager_submit(m, &r, &id));
    T_OK(shoal_manager_flush(m));
    assert_int_equal(wait_stopped(b), 0);
    t_kill(b);
    assert_int_equal(shoal_manager_wait(m, id, NULL), SHOAL_EPEERDEAD);
    shoal_manager_close(m);

    b = start_broker(dir, NULL);
    m = connect_to(addr, NULL);
    /* a second broker on the same data directory is refused */
    shoal_broker *twin;
    shoal_broker_config twin_cfg = {dir, 1};
    assert_int_equal(shoal_broker_create(&twin, &twin_cfg, broker_session_deliver),
                     SHOAL_EBUSY);
    shoal_mv *res = NULL;
    T_OK(shoal_manager_call(m, "d", "len", 0, &res, 0));
    int64_t n = shoal_mv_as_int(res);
    shoal_mv_free(res);
    /* every acknowledged write is there; the unacknowledged one only if committed */
    assert_int_equal(n, !strcmp(point, "broker.after_commit") ? 21 : 20);
    for (int i = 0; i < 20; i++) {
        T_OK(shoal_manager_call(m, "d", "get", 0, &res, 1, I(i)));
        assert_int_equal(shoal_mv_as_int(res), i * 10);
        shoal_mv_free(res);
    }
    /* the lock held across the restarts comes back free, owner-died */
    assert_int_equal(shoal_manager_call(m, "lk", "acquire", 0, NULL, 0),
                     SHOAL_EOWNERDEAD);
    shoal_manager_close(m);
    stop_broker(b);
}

static void test_crash_before_commit(void **state)
{
    (void)state;
    crash_at("broker.before_commit");
}

static void test_crash_after_commit(void **state)
{
    (void)state;
    crash_at("broker.after_commit");
}

/* Pipelined writes to a durable broker share commits (a batch per commit): every
 * acknowledged one is there after a SIGKILL and a restart, none twice. */
static void test_durable_pipelined_batch(void **state)
{
    (void)state;
    pid_t b = start_broker(data_dir, NULL);
    shoal_manager *m = connect_to(addr, NULL);
    assert_int_equal(shoal_manager_create(m, "dl", SHOAL_M_LIST, NULL, NULL), 1);
    enum { N = 300 };
    static uint64_t ids[N];
    for (int i = 0; i < N; i++) {
        shoal_mv *a[1] = {I(i)};
        shoal_manager_request r = {"dl", "append", NULL, 0, a, 1, 0};
        T_OK(shoal_manager_submit(m, &r, &ids[i]));
    }
    for (int i = 0; i < N; i++)
        T_OK(shoal_manager_wait(m, ids[i], NULL));
    kill(b, SIGKILL);
    t_wait(b);
    shoal_manager_close(m);
    b = start_broker(data_dir, NULL);
    m = connect_to(addr, NULL);
    assert_string_equal(op(m, "dl", "len", 0), "300");
    assert_string_equal(op(m, "dl", "get", 1, I(299)), "299");
    assert_string_equal(op(m, "dl", "index", 1, I(150)), "150");
    shoal_manager_close(m);
    stop_broker(b);
}

/* Returns tag + varint(n) + buf[n] (buf freed); *n updated. */
static uint8_t *wrap(uint8_t *buf, size_t *n, uint8_t tag)
{
    uint8_t *out = malloc(*n + 12);
    size_t k = 0;
    out[k++] = tag;
    for (size_t v = *n;; v >>= 7) {
        out[k++] = (uint8_t)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
        if (v < 0x80)
            break;
    }
    if (*n)
        memcpy(out + k, buf, *n);
    free(buf);
    *n += k;
    return out;
}

static void test_malformed_and_oversized(void **state)
{
    (void)state;
    pid_t b = start_broker(NULL, NULL);
    shoal_manager *m = connect_to(addr, NULL);
    void *reply;
    size_t len;
    /* garbage: an error reply with id 0 */
    const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                            0xff, 0xff, 0xff, 0xff, 0x01};
    T_OK(shoal_manager_send_raw(m, junk, sizeof(junk)));
    T_OK(shoal_manager_wait_raw(m, 0, &reply, &len));
    brep *r = (brep *)protobuf_c_message_unpack(&shoal__broker__reply__descriptor, NULL,
                                                len, reply);
    assert_non_null(r);
    assert_int_equal(r->status, SHOAL_EINVALID_DATA);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    shoal_manager_free(reply);
    /* lists nested 2000 deep: refused before decoding, no stack overflow */
    size_t n = 0;
    uint8_t *deep = NULL;
    for (int i = 0; i < 2000; i++) {
        deep = wrap(deep, &n, 0x0a); /* Seq.items = the inner Value */
        deep = wrap(deep, &n, 0x3a); /* Value.list = that Seq */
    }
    deep = wrap(deep, &n, 0x2a); /* Request.args */
    T_OK(shoal_manager_send_raw(m, deep, n));
    T_OK(shoal_manager_wait_raw(m, 0, &reply, &len));
    r = (brep *)protobuf_c_message_unpack(&shoal__broker__reply__descriptor, NULL, len,
                                          reply);
    assert_non_null(r);
    assert_int_equal(r->status, SHOAL_EINVALID_DATA);
    assert_non_null(strstr(r->error, "deeper"));
    protobuf_c_message_free_unpacked(&r->base, NULL);
    shoal_manager_free(reply);
    /* the same with an id: the refusal carries it, so the client waiting for it wakes */
    uint64_t id = shoal_manager_next_id(m);
    assert_true(id > 0 && id < 128);
    uint8_t *withid = malloc(n + 2);
    withid[0] = 0x08; /* Request.id */
    withid[1] = (uint8_t)id;
    memcpy(withid + 2, deep, n);
    free(deep);
    T_OK(shoal_manager_send_raw(m, withid, n + 2));
    free(withid);
    T_OK(shoal_manager_wait_raw(m, id, &reply, &len));
    r = (brep *)protobuf_c_message_unpack(&shoal__broker__reply__descriptor, NULL, len,
                                          reply);
    assert_non_null(r);
    assert_int_equal(r->id, id);
    assert_int_equal(r->status, SHOAL_EINVALID_DATA);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    shoal_manager_free(reply);
    /* a map entry with a key and no value: decodes as protobuf, refused by the model */
    n = 2;
    uint8_t *entry = malloc(2);
    entry[0] = 0x18; /* Value.i = 1 */
    entry[1] = 0x02;
    entry = wrap(entry, &n, 0x0a); /* Entry.key */
    entry = wrap(entry, &n, 0x0a); /* Map.entries */
    entry = wrap(entry, &n, 0x4a); /* Value.map */
    entry = wrap(entry, &n, 0x2a); /* Request.args */
    T_OK(shoal_manager_send_raw(m, entry, n));
    free(entry);
    T_OK(shoal_manager_wait_raw(m, 0, &reply, &len));
    r = (brep *)protobuf_c_message_unpack(&shoal__broker__reply__descriptor, NULL, len,
                                          reply);
    assert_non_null(r);
    assert_int_equal(r->status, SHOAL_EINVALID_DATA);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    shoal_manager_free(reply);
    /* a value larger than a frame: refused on the client's side, the session goes on */
    size_t big = 1 << 20;
    char *s = malloc(big + 1);
    memset(s, 'x', big);
    s[big] = 0;
    assert_int_equal(shoal_manager_create(m, "d", SHOAL_M_DICT, NULL, NULL), 1);
    assert_int_equal(shoal_manager_call(m, "d", "set", 0, NULL, 2, I(1), S(s)),
                     SHOAL_EMSGSIZE);
    free(s);
    /* the broker is fine and counted the four */
    shoal_mv *res = NULL;
    T_OK(shoal_manager_call(m, "", "stats", 0, &res, 0));
    shoal_mv *k = S("bad_requests");
    assert_int_equal(shoal_mv_as_int(shoal_mv_get(res, k)), 4);
    shoal_mv_free(k);
    shoal_mv_free(res);
    shoal_manager_close(m);
    stop_broker(b);
}

/* One request through the unary Call method; returns its reply (or NULL). */
static brep *unary(shoal_rpc_channel *ch, const char *object, const char *opname,
                   bv *arg0, int64_t timeout_ms)
{
    static const shoal_rpc_method call = {"Call", SHOAL_RPC_UNARY, NULL, NULL, NULL, 0};
    breq q = SHOAL__BROKER__REQUEST__INIT;
    bv *args[1] = {arg0};
    q.id = 5;
    q.object = (char *)object;
    q.op = (char *)opname;
    q.args = args;
    q.n_args = arg0 != NULL;
    q.timeout_ms = timeout_ms;
    size_t len;
    void *buf = shoal__bv_pack(&q.base, &len), *resp = NULL;
    shoal__bv_free(arg0);
    size_t rlen;
    int code = shoal_rpc_unary(ch, "shoal.broker.Broker", &call, buf, len, &resp, &rlen,
                               NULL, NULL, 0);
    free(buf);
    brep *r = code == SHOAL_RPC_OK
                  ? (brep *)protobuf_c_message_unpack(&shoal__broker__reply__descriptor,
                                                      NULL, rlen, resp)
                  : NULL;
    free(resp);
    return r;
}

static void *delayed_put(void *arg)
{
    usleep(100000);
    shoal_manager *m = arg;
    shoal_manager_call(m, "cq", "put", 0, NULL, 1, I(77));
    return NULL;
}

static void test_unary_call(void **state)
{
    (void)state;
    pid_t b = start_broker(NULL, NULL);
    shoal_manager *m = connect_to(addr, NULL); /* waits until the broker is up */
    shoal_rpc_channel *ch;
    T_OK(shoal_rpc_channel_open(&ch, addr, NULL));
    assert_int_equal(shoal_manager_create(m, "cq", SHOAL_M_QUEUE, NULL, NULL), 1);
    brep *r = unary(ch, "cq", "qsize", NULL, 0);
    assert_non_null(r);
    assert_int_equal(r->id, 5);
    assert_int_equal(r->status, 0);
    assert_int_equal(r->result->i, 0);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    /* a blocking get through Call: parked, answered when another client puts */
    pthread_t t;
    pthread_create(&t, NULL, delayed_put, m);
    r = unary(ch, "cq", "get", NULL, 20000);
    pthread_join(t, NULL);
    assert_non_null(r);
    assert_int_equal(r->status, 0);
    assert_int_equal(r->result->i, 77);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    r = unary(ch, "cq", "get", NULL, 20); /* and its timeout */
    assert_non_null(r);
    assert_int_equal(r->status, SHOAL_ETIMEDOUT);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    r = unary(ch, "nope", "get", shoal__bv_int(1), 0);
    assert_non_null(r);
    assert_int_equal(r->status, SHOAL_ENOENT);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    shoal_rpc_channel_close(ch);
    shoal_manager_close(m);
    stop_broker(b);
}

/* The broker's resident memory in KiB. */
static long rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kib = -1;
    while (f && fgets(line, sizeof(line), f))
        if (!strncmp(line, "VmRSS:", 6))
            kib = atol(line + 6);
    if (f)
        fclose(f);
    return kib;
}

/* Asks for big replies and never reads one (the parent kills it). */
static int flood_unread(void *arg)
{
    (void)arg;
    shoal_manager *m = connect_to(addr, NULL);
    for (int i = 0; i < 4000; i++) { /* 128 MiB of replies: blocks long before */
        shoal_mv *a[1] = {S("v")};
        shoal_manager_request r = {"big", "get", NULL, 0, a, 1, 0};
        uint64_t id;
        if (shoal_manager_submit(m, &r, &id) < 0)
            return 1;
    }
    return 0;
}

static void test_deep_pipeline_and_unread_replies(void **state)
{
    (void)state;
    pid_t b = start_broker(NULL, NULL);
    shoal_manager *m = connect_to(addr, NULL);
    /* far more requests in flight than the stream's window, both ways: replies sent
     * straight by the session's thread and by its sender, all matched by id */
    assert_int_equal(shoal_manager_create(m, "l", SHOAL_M_LIST, NULL, NULL), 1);
    enum { N = 2000 };
    static uint64_t ids[N];
    for (int i = 0; i < N; i++) {
        shoal_mv *a[1] = {I(i)};
        shoal_manager_request r = {"l", "append", NULL, 0, a, 1, 0};
        T_OK(shoal_manager_submit(m, &r, &ids[i]));
    }
    for (int i = N - 1; i >= 0; i--)
        T_OK(shoal_manager_wait(m, ids[i], NULL));
    assert_string_equal(op(m, "l", "len", 0), "2000");
    assert_string_equal(op(m, "l", "get", 1, I(1999)), "1999");

    /* a client that asks for 128 MiB of replies and reads none: the broker holds a
     * bounded amount for it (16 MiB of outbox and the window) and serves the others */
    static char blob[32 << 10];
    memset(blob, 'x', sizeof(blob));
    shoal_mv *init = shoal_mv_map();
    T_OK(shoal_mv_put(init, S("v"), shoal_mv_bytes(blob, sizeof(blob))));
    assert_int_equal(shoal_manager_create(m, "big", SHOAL_M_DICT, init, NULL), 1);
    long before = rss_kib(b);
    assert_true(before > 0);
    pid_t flood = t_fork(flood_unread, NULL);
    for (int i = 0; i < 30; i++) { /* the flood fills what it can */
        usleep(100000);
        assert_string_equal(op(m, "l", "len", 0), "2000");
    }
    long after = rss_kib(b);
    assert_true(after - before < 80 * 1024);
    kill(flood, SIGKILL);
    t_wait(flood);
    assert_string_equal(op(m, "l", "len", 0), "2000");
    shoal_manager_close(m);
    stop_broker(b);
}

/* A thread of test_threads_share_a_session: round trips (a set, then a get that must
 * see it) and bursts of appends submitted then waited for newest first, on the one
 * session all the threads share. */
struct sharer {
    shoal_manager *m;
    int k;
    pthread_barrier_t *go;
    int errors;
};

static void *sharer_main(void *arg)
{
    struct sharer *sh = arg;
    enum { ROUNDS = 1500, BURST = 8 };
    char key[16], list[16];
    snprintf(key, sizeof(key), "t%d", sh->k);
    snprintf(list, sizeof(list), "l%d", sh->k);
    pthread_barrier_wait(sh->go);
    for (int j = 0; j < ROUNDS; j++) {
        shoal_mv *got = NULL;
        if (shoal_manager_call(sh->m, "d", "set", 0, NULL, 2, S(key), I(j)) < 0 ||
            shoal_manager_call(sh->m, "d", "get", 0, &got, 1, S(key)) < 0 ||
            shoal_mv_as_int(got) != j)
            sh->errors++;
        shoal_mv_free(got);
        if (j % 50)
            continue;
        uint64_t ids[BURST];
        for (int i = 0; i < BURST; i++) {
            shoal_mv *a[1] = {I(j / 50 * BURST + i)};
            shoal_manager_request r = {list, "append", NULL, 0, a, 1, 0};
            if (shoal_manager_submit(sh->m, &r, &ids[i]) < 0)
                sh->errors++;
        }
        for (int i = BURST - 1; i >= 0; i--)
            if (shoal_manager_wait(sh->m, ids[i], NULL) < 0)
                sh->errors++;
    }
    return NULL;
}

/* Several threads use one session at once: every reply reaches the thread that asked
 * (a get sees its own thread's set), and each thread's requests run in the order it
 * sent them (its list holds its appends in order). */
static void test_threads_share_a_session(void **state)
{
    (void)state;
    enum { THREADS = 4 };
    pid_t b = start_broker(NULL, NULL);
    shoal_manager *m = connect_to(addr, NULL);
    assert_int_equal(shoal_manager_create(m, "d", SHOAL_M_DICT, NULL, NULL), 1);
    struct sharer sh[THREADS];
    pthread_t t[THREADS];
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, THREADS);
    for (int k = 0; k < THREADS; k++) {
        char list[16];
        snprintf(list, sizeof(list), "l%d", k);
        assert_int_equal(shoal_manager_create(m, list, SHOAL_M_LIST, NULL, NULL), 1);
        sh[k] = (struct sharer){m, k, &go, 0};
        assert_int_equal(pthread_create(&t[k], NULL, sharer_main, &sh[k]), 0);
    }
    for (int k = 0; k < THREADS; k++) {
        pthread_join(t[k], NULL);
        assert_int_equal(sh[k].errors, 0);
    }
    pthread_barrier_destroy(&go);
    for (int k = 0; k < THREADS; k++) {
        char list[16];
        snprintf(list, sizeof(list), "l%d", k);
        shoal_mv *all = NULL;
        T_OK(shoal_manager_call(m, list, "copy", 0, &all, 0));
        assert_int_equal(shoal_mv_len(all), 30 * 8);
        for (size_t i = 0; i < shoal_mv_len(all); i++)
            assert_int_equal(shoal_mv_as_int(shoal_mv_item(all, i)), (int64_t)i);
        shoal_mv_free(all);
    }
    shoal_manager_close(m);
    stop_broker(b);
}

/* Submits n sets d[base + i] = i without waiting for a reply. */
static void submit_sets(shoal_manager *m, int base, int n)
{
    for (int i = 0; i < n; i++) {
        shoal_mv *a[2] = {I(base + i), I(i)};
        shoal_manager_request r = {"d", "set", NULL, 0, a, 2, 0};
        uint64_t id;
        T_OK(shoal_manager_submit(m, &r, &id));
    }
}

/* Fire-and-forget writes then close: every write submitted is in the broker once the
 * close returned (shoal_manager_close, or shutdown then close), over each address. */
static void close_keeps_submitted(const char *address, const char *token)
{
    enum { N = 300, ROUNDS = 12 };
    shoal_manager *m = connect_to(address, token);
    assert_int_equal(shoal_manager_create(m, "d", SHOAL_M_DICT, NULL, NULL), 1);
    shoal_manager_close(m);
    for (int round = 0; round < ROUNDS; round++) {
        m = connect_to(address, token);
        submit_sets(m, round * N, N);
        if (round % 2)
            shoal_manager_shutdown(m);
        shoal_manager_close(m);
        m = connect_to(address, token);
        char want[32];
        snprintf(want, sizeof(want), "%d", (round + 1) * N);
        assert_string_equal(op(m, "d", "len", 0), want);
        snprintf(want, sizeof(want), "%d", N - 1);
        assert_string_equal(op(m, "d", "get", 1, I(round * N + N - 1)), want);
        shoal_manager_close(m);
    }
}

static void test_close_keeps_submitted(void **state)
{
    (void)state;
    pid_t b = start_broker(NULL, NULL);
    close_keeps_submitted(addr, NULL);
    stop_broker(b);
}

struct blocked {
    shoal_manager *m;
    int rc;
};

static void *blocked_get(void *arg)
{
    struct blocked *g = arg;
    g->rc = shoal_manager_call(g->m, "q", "get", SHOAL_FOREVER, NULL, 0);
    return NULL;
}

static void *shutdown_main(void *m)
{
    shoal_manager_shutdown(m);
    return NULL;
}

/* Shutdown wakes the threads blocked in a call on m at once (the broker ends the
 * session); with the broker stopped, close gives up after its bound. */
static void test_shutdown_wakes_blocked(void **state)
{
    (void)state;
    pid_t b = start_broker(NULL, NULL);
    shoal_manager *m = connect_to(addr, NULL);
    assert_int_equal(shoal_manager_create(m, "q", SHOAL_M_QUEUE, NULL, NULL), 1);
    struct blocked g[2] = {{m, 1}, {m, 1}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, blocked_get, &g[i]);
    usleep(200000); /* both wait: one reads the session, the other sleeps */
    int64_t t0 = shoal__now_ns();
    shoal_manager_shutdown(m);
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(g[i].rc, SHOAL_ECLOSED);
    }
    assert_true(shoal__now_ns() - t0 < SHOAL_SEC(2));
    assert_int_equal(shoal_manager_call(m, "q", "qsize", 0, NULL, 0), SHOAL_ECLOSED);
    shoal_manager_close(m);

    /* a broker that does not answer: close returns after its bound, not never; a
     * close from another thread waits for the shutdown draining meanwhile */
    m = connect_to(addr, NULL);
    assert_int_equal(shoal_manager_create(m, "d", SHOAL_M_DICT, NULL, NULL), 1);
    kill(b, SIGSTOP);
    submit_sets(m, 0, 4);
    t0 = shoal__now_ns();
    pthread_create(&t[0], NULL, shutdown_main, m);
    usleep(100000);
    shoal_manager_close(m);
    int64_t took = shoal__now_ns() - t0;
    pthread_join(t[0], NULL);
    kill(b, SIGCONT);
    assert_true(took >= SHOAL_SEC(4) && took < SHOAL_SEC(15));
    stop_broker(b);
}

static void test_tcp_token(void **state)
{
    (void)state;
#ifdef SHOAL_TEST_NNG
    char tcp[64];
    snprintf(tcp, sizeof(tcp), "tcp://127.0.0.1:%d", t_tcp_port(0));
    pid_t b =
        start_broker_with(&(broker_args){.tcp = tcp, .token = "sesame-0123456789"}, NULL);
    shoal_manager *m = connect_to(tcp, "sesame-0123456789");
    assert_int_equal(shoal_manager_create(m, "d", SHOAL_M_DICT, NULL, NULL), 1);
    assert_string_equal(op(m, "d", "set", 2, S("a"), I(10)), "-");
    shoal_manager *bad = NULL;
    shoal_manager_config cfg = {.token = "wrong-token-000"};
    assert_int_equal(shoal_manager_connect(&bad, tcp, &cfg), SHOAL_EACCES);
    cfg.token = NULL;
    assert_int_equal(shoal_manager_connect(&bad, tcp, &cfg), SHOAL_EACCES);
    assert_string_equal(op(m, "d", "get", 1, S("a")), "10");
    T_OK(shoal_manager_delete(m, "d"));
    shoal_manager_close(m);
    close_keeps_submitted(tcp, "sesame-0123456789");
    stop_broker(b);
#else
    skip();
#endif
}

/* ---- clients killed while they spin (the spin table, wait.h) ---------------------- */

/* A client that spins for a reply that does not come (a get on an empty queue). */
static int spin_for_reply(void *arg)
{
    (void)arg;
    shoal_set_spin_ns(SHOAL_SEC(60));
    shoal_manager *m = connect_to(addr, NULL);
    shoal_mv *res = NULL;
    shoal_manager_call(m, "q", "get", SHOAL_SEC(60), &res, 0);
    return 1; /* killed before */
}

/* Says which seats' flags are set, and whether their owners live (a failed test's
 * evidence). */
static void dump_spinners(shoal__spin_table *t, shoal__seg *seg)
{
    uint64_t bits = atomic_load(&t->spinning);
    for (; bits; bits &= bits - 1) {
        int k = __builtin_ctzll(bits);
        uint32_t owner = atomic_load(&t->owner[k]);
        print_message("spin seat %d: owner %u (pid %d), %s\n", k, (unsigned)owner,
                      (int)shoal__owner_pid(seg, owner),
                      shoal__owner_alive(seg, owner) ? "alive" : "gone");
    }
}

/* Waits until the table counts n spinners (at least: `least`) or 10 s pass. */
static int await_spinners(shoal__spin_table *t, int n, bool least)
{
    int c = shoal__spin_table_count(t);
    for (int i = 0; i < 10000 && (least ? c < n : c != n); i++) {
        usleep(1000);
        c = shoal__spin_table_count(t);
    }
    return c;
}

static void test_spinners_killed(void **state)
{
    (void)state;
    pid_t b = start_broker(NULL, NULL);
    shoal_manager *m = connect_to(addr, NULL);
    assert_int_equal(shoal_manager_create(m, "q", SHOAL_M_QUEUE, NULL, NULL), 1);
    assert_int_equal(shoal_manager_create(m, "d", SHOAL_M_DICT, NULL, NULL), 1);
    char name[160];
    snprintf(name, sizeof(name), "%s:spin", addr + strlen("shm://"));
    shoal__seg_spec spec = {.kind = SHOAL_KIND_SHM,
                            .count = sizeof(shoal__spin_table),
                            .check_count = true,
                            .payload_size = sizeof(shoal__spin_table)};
    shoal__seg *seg;
    T_OK(shoal__seg_open(&seg, name, SHOAL_OPEN, &spec, NULL));
    shoal__spin_table *t = (shoal__spin_table *)seg->payload;

    cpu_set_t set;
    assert_int_equal(sched_getaffinity(0, sizeof(set), &set), 0);
    int n = CPU_COUNT(&set) + 1;
    pid_t kids[64];
    for (int i = 0; i < n; i++)
        kids[i] = t_fork(spin_for_reply, NULL);
    assert_true(await_spinners(t, n, true) >= n);
    /* together: a client still spinning would find the table crowded and clear the
     * flags of those killed before it, leaving too few to crowd the next wait */
    t_kill_all(kids, n);

    /* The next wait that spins finds the table crowded and clears the dead. */
    shoal_mv *res = NULL;
    assert_int_equal(shoal_manager_call(m, "q", "get", SHOAL_MS(20), &res, 0),
                     SHOAL_ETIMEDOUT);
    if (await_spinners(t, 0, false) != 0) {
        dump_spinners(t, seg);
        fail_msg("spinners left set after the kills");
    }
    for (int i = 0; i < 2000; i++) { /* and the clients left are served */
        char want[16];
        snprintf(want, sizeof(want), "%d", i);
        T_OK(shoal_manager_call(m, "d", "set", 0, NULL, 2, I(i % 7), I(i)));
        assert_string_equal(op(m, "d", "get", 1, I(i % 7)), want);
    }
    shoal_manager_close(m);
    stop_broker(b);
    assert_int_equal(shoal__spin_table_count(t), 0);
    /* Every seat given back, or left by a killed client (free for the next taker:
     * one that was between two spins when it died had no flag to clear). */
    for (int k = 0; k < SHOAL__SPIN_SEATS; k++) {
        uint32_t owner = atomic_load(&t->owner[k]);
        assert_false(owner && shoal__owner_alive(seg, owner));
    }
    shoal__seg_close(seg);
}

int main(void)
{
    t_setup_root();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_dict_and_nested, setup),
        cmocka_unit_test_setup(test_list_value_array, setup),
        cmocka_unit_test_setup(test_queue_event_blocking, setup),
        cmocka_unit_test_setup(test_locks_and_dead_client, setup),
        cmocka_unit_test_setup(test_lock_barging, setup),
        cmocka_unit_test_setup(test_lock_uncontended, setup),
        cmocka_unit_test_setup(test_spinners_killed, setup),
        cmocka_unit_test_setup(test_condition_barrier, setup),
        cmocka_unit_test_setup(test_crash_before_commit, setup),
        cmocka_unit_test_setup(test_crash_after_commit, setup),
        cmocka_unit_test_setup(test_durable_pipelined_batch, setup),
        cmocka_unit_test_setup(test_malformed_and_oversized, setup),
        cmocka_unit_test_setup(test_unary_call, setup),
        cmocka_unit_test_setup(test_deep_pipeline_and_unread_replies, setup),
        cmocka_unit_test_setup(test_threads_share_a_session, setup),
        cmocka_unit_test_setup(test_crowded_sessions, setup),
        cmocka_unit_test_setup(test_crowded_lock_step, setup),
        cmocka_unit_test_setup(test_close_keeps_submitted, setup),
        cmocka_unit_test_setup(test_shutdown_wakes_blocked, setup),
        cmocka_unit_test_setup(test_tcp_token, setup), /* last: nng is unusable in a
                                                          process forked after */
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
