/*
 * broker_locks.c — Lock and RLock objects taken in shared memory by shm:// clients
 * (the broker's lock table: runtime/src/manager_lock.c, broker/locks.c), against a
 * broker in a forked child (forked.h), with real client processes: mutual exclusion
 * (forked children and a separately started process: this program run again with
 * "count ADDRESS N"), cross-process release, RLock depth and ownership, a holder
 * SIGKILLed, a connection closed holding a lock, timeouts, the ordering of a release
 * after pipelined writes, the broker SIGKILLed under a waiter, --no-lock-table, and
 * (last: nng does not survive fork) a tcp:// client contending with shm:// ones.
 */
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "forked.h"

extern char **environ;

#define S(x) shoal_mv_str(x)
#define I(x) shoal_mv_int(x)

static char self_exe[512];

static int setup(void **state)
{
    static int n;
    snprintf(addr, sizeof(addr), "shm://locks-%d-%d", (int)getpid(), ++n);
    *state = NULL;
    return 0;
}

static pid_t start_broker(void)
{
    return start_broker_with(&(broker_args){0}, NULL);
}

/* n turns of: take lock "mx", read d["n"], write it + 1 (waiting for it when
 * pipelined is 0, else leaving it in flight), release. 0 or the failing step. */
static int count_turns(shoal_manager *m, int n, int pipelined)
{
    for (int i = 0; i < n; i++) {
        if (shoal_manager_call(m, "mx", "acquire", SHOAL_FOREVER, NULL, 0) != 0)
            return 10;
        shoal_mv *v = NULL;
        if (shoal_manager_call(m, "d", "get", 0, &v, 2, S("n"), I(0)) != 0)
            return 11;
        int64_t x = shoal_mv_as_int(v);
        shoal_mv_free(v);
        shoal_mv *args[2] = {S("n"), I(x + 1)};
        shoal_manager_request r = {"d", "set", NULL, 0, args, 2, 0};
        uint64_t id;
        if (shoal_manager_submit(m, &r, &id) != 0)
            return 12;
        if (!pipelined && shoal_manager_wait(m, id, NULL) != 0)
            return 13;
        /* pipelined: the set is in flight, so the release goes to the broker, which
         * runs it after the set (read-your-writes for the next holder) */
        if (shoal_manager_call(m, "mx", "release", 0, NULL, 0) != 0)
            return 14;
        if (pipelined && shoal_manager_wait(m, id, NULL) != 0)
            return 15;
    }
    return 0;
}

struct turns {
    int n, pipelined;
};

static int counter_child(void *arg)
{
    struct turns *t = arg;
    shoal_manager *m = NULL;
    if (shoal_manager_connect(&m, addr, NULL) != 0)
        return 2;
    int rc = count_turns(m, t->n, t->pipelined);
    shoal_manager_close(m);
    return rc;
}

static int64_t counter(shoal_manager *m)
{
    shoal_mv *v = NULL;
    T_OK(shoal_manager_call(m, "d", "get", 0, &v, 1, S("n")));
    int64_t x = shoal_mv_as_int(v);
    shoal_mv_free(v);
    return x;
}

/* Four forked processes and one started separately (this program again) count under
 * the lock: the count is exact, and their acquires and releases never reached the
 * broker (its request count: the gets and sets only). */
static void test_mutual_exclusion(void **state)
{
    (void)state;
    pid_t b = start_broker();
    shoal_manager *m = connect_to(addr, NULL);
    assert_int_equal(shoal_manager_create(m, "mx", SHOAL_M_LOCK, NULL, NULL), 1);
    assert_int_equal(shoal_manager_create(m, "d", SHOAL_M_DICT, NULL, NULL), 1);
    int64_t before = stat_of(m, "requests"), parked = stat_of(m, "parked");
    enum { N = 2000 };
    struct turns t = {N, 0};
    pid_t kids[4];
    for (int i = 0; i < 4; i++)
        assert_true((kids[i] = t_fork(counter_child, &t)) > 0);
    char n[16];
    snprintf(n, sizeof(n), "%d", N);
    char *argv[] = {self_exe, "count", addr, n, NULL};
    pid_t other;
    assert_int_equal(posix_spawn(&other, self_exe, NULL, NULL, argv, environ), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(t_wait(kids[i]), 0);
    assert_int_equal(t_wait(other), 0);
    assert_int_equal(counter(m), 5 * N);
    int64_t sent = stat_of(m, "requests") - before;
    /* 2 requests a turn (get, set), the connections' own few, no lock request */
    assert_true(sent < 5 * N * 2 + 100);
    assert_int_equal(stat_of(m, "parked"), parked); /* every wait was in the table */
    shoal_manager_close(m);
    stop_broker(b);
}

/* Pipelined: each set is still in flight at the release, which then goes through the
 * broker in order: four processes of 5,000 increments, an exact sum. */
static void test_release_after_pipelined_writes(void **state)
{
    (void)state;
    pid_t b = start_broker();
    shoal_manager *m = connect_to(addr, NULL);
    assert_int_equal(shoal_manager_create(m, "mx", SHOAL_M_LOCK, NULL, NULL), 1);
    assert_int_equal(shoal_manager_create(m, "d", SHOAL_M_DICT, NULL, NULL), 1);
    struct turns t = {5000, 1};
    pid_t kids[4];
    for (int i = 0; i < 4; i++)
        assert_true((kids[i] = t_fork(counter_child, &t)) > 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(t_wait(kids[i]), 0);
    assert_int_equal(counter(m), 20000);
    shoal_manager_close(m);
    stop_broker(b);
}

static int release_child(void *arg)
{
    (void)arg;
    shoal_manager *m = NULL;
    if (shoal_manager_connect(&m, addr, NULL) != 0)
        return 2;
    int rc = shoal_manager_call(m, "lk", "release", 0, NULL, 0);
    shoal_manager_close(m);
    return rc == 0 ? 0 : 3;
}

struct rl_thread {
    shoal_manager *m;
    int rc;
};

static void *release_rlock(void *arg)
{
    struct rl_thread *t = arg;
    t->rc = shoal_manager_call(t->m, "rl", "release", 0, NULL, 0);
    return NULL;
}

/* A Lock released by another process; an RLock's depth, and a release by another
 * thread refused as the broker refuses it. */
static void test_release_rules(void **state)
{
    (void)state;
    pid_t b = start_broker();
    shoal_manager *m = connect_to(addr, NULL);
    assert_int_equal(shoal_manager_create(m, "lk", SHOAL_M_LOCK, NULL, NULL), 1);
    assert_int_equal(shoal_manager_create(m, "rl", SHOAL_M_RLOCK, NULL, NULL), 1);
    assert_string_equal(op(m, "lk", "acquire", 0), "-");
    assert_string_equal(op(m, "lk", "locked", 0), "True");
    assert_string_equal(op(m, "lk", "acquire", 0), "E-24"); /* this thread holds it */
    assert_int_equal(t_wait(t_fork(release_child, NULL)), 0);
    assert_string_equal(op(m, "lk", "locked", 0), "False");
    assert_string_equal(op(m, "lk", "release", 0),
                        "E-16"); /* unlocked: the broker says */

    assert_string_equal(op(m, "rl", "acquire", 0), "-");
    assert_string_equal(op(m, "rl", "acquire", 0), "-");
    struct rl_thread t = {m, 0};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, release_rlock, &t), 0);
    pthread_join(th, NULL);
    assert_int_equal(t.rc, SHOAL_EPERM);
    assert_string_equal(op(m, "rl", "release", 0), "-");
    assert_string_equal(op(m, "rl", "locked", 0), "True");
    assert_string_equal(op(m, "rl", "release", 0), "-");
    assert_string_equal(op(m, "rl", "locked", 0), "False");
    assert_string_equal(op(m, "rl", "release", 0), "E-16");
    /* describe (shoal inspect) reads the word: the holder's pid */
    assert_string_equal(op(m, "rl", "acquire", 0), "-");
    shoal_mv *res = NULL, *key = S("holder_pid");
    T_OK(shoal_manager_call(m, "rl", "describe", 0, &res, 0));
    assert_int_equal(shoal_mv_as_int(shoal_mv_get(res, key)), getpid());
    shoal_mv_free(key);
    shoal_mv_free(res);
    shoal_manager_close(m);
    stop_broker(b);
}

static int hold_then_stop(void *arg)
{
    const char *name = arg;
    shoal_manager *m = NULL;
    if (shoal_manager_connect(&m, addr, NULL) != 0 ||
        shoal_manager_call(m, name, "acquire", 0, NULL, 0) != 0)
        return 2;
    raise(SIGSTOP); /* killed here, holding it */
    return 0;
}

/* The holder SIGKILLed: a waiter in the table takes the lock owner-died within the
 * bound (a sleep slice); then a connection closed holding a lock does the same. */
static void test_holder_killed_and_closed(void **state)
{
    (void)state;
    pid_t b = start_broker();
    shoal_manager *m = connect_to(addr, NULL);
    assert_int_equal(shoal_manager_create(m, "lk", SHOAL_M_LOCK, NULL, NULL), 1);
    pid_t c = t_fork_paused("-", hold_then_stop, "lk");
    assert_true(c > 0);
    assert_int_equal(shoal_manager_call(m, "lk", "acquire", 0, NULL, 0), SHOAL_ETIMEDOUT);
    int64_t t0 = shoal__now_ns();
    assert_int_equal(shoal_manager_call(m, "lk", "acquire", SHOAL_MS(40), NULL, 0),
                     SHOAL_ETIMEDOUT);
    assert_true(shoal__now_ns() - t0 >= SHOAL_MS(40));
    t_kill(c);
    t0 = shoal__now_ns();
    assert_int_equal(shoal_manager_call(m, "lk", "acquire", SHOAL_SEC(20), NULL, 0),
                     SHOAL_EOWNERDEAD);
    assert_true(shoal__now_ns() - t0 < SHOAL_SEC(2));
    assert_string_equal(op(m, "lk", "release", 0), "-");
    assert_string_equal(op(m, "lk", "acquire", 0), "-"); /* told once only */
    assert_string_equal(op(m, "lk", "release", 0), "-");

    shoal_manager *m2 = connect_to(addr, NULL);
    assert_string_equal(op(m2, "lk", "acquire", 0), "-");
    shoal_manager_close(m2); /* holding it */
    assert_int_equal(shoal_manager_call(m, "lk", "acquire", SHOAL_SEC(5), NULL, 0),
                     SHOAL_EOWNERDEAD);
    shoal_manager_close(m);
    stop_broker(b);
}

struct releaser {
    shoal_manager *m;
    int64_t after_ms;
};

static void *release_later(void *arg)
{
    struct releaser *r = arg;
    usleep((useconds_t)r->after_ms * 1000);
    shoal_manager_call(r->m, "lk", "release", 0, NULL, 0);
    return NULL;
}

/* Timeouts: 0 (a try), short, forever until another connection releases; a submitted
 * acquire that must wait goes to the broker (submit never blocks), which takes the
 * word when it frees. */
static void test_timeouts_and_submitted_waits(void **state)
{
    (void)state;
    pid_t b = start_broker();
    shoal_manager *m = connect_to(addr, NULL), *m2 = connect_to(addr, NULL);
    assert_int_equal(shoal_manager_create(m, "lk", SHOAL_M_LOCK, NULL, NULL), 1);
    assert_string_equal(op(m, "lk", "acquire", 0), "-");
    assert_string_equal(op(m2, "lk", "acquire", 0), "E-13");
    int64_t t0 = shoal__now_ns();
    assert_int_equal(shoal_manager_call(m2, "lk", "acquire", SHOAL_MS(30), NULL, 0),
                     SHOAL_ETIMEDOUT);
    assert_true(shoal__now_ns() - t0 >= SHOAL_MS(30));
    struct releaser r = {m, 50};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, release_later, &r), 0);
    T_OK(shoal_manager_call(m2, "lk", "acquire", SHOAL_FOREVER, NULL, 0));
    pthread_join(th, NULL);
    /* m2 holds it; m submits an acquire that has to wait: parked in the broker */
    shoal_manager_request q = {"lk", "acquire", NULL, 0, NULL, 0, SHOAL_SEC(20)};
    uint64_t id;
    int64_t parked = stat_of(m2, "parked");
    T_OK(shoal_manager_submit(m, &q, &id));
    T_OK(shoal_manager_flush(m)); /* a submit may keep its request until a wait */
    while (stat_of(m2, "parked") == parked)
        usleep(1000);
    assert_string_equal(op(m2, "lk", "release", 0), "-");
    T_OK(shoal_manager_wait(m, id, NULL));
    assert_string_equal(op(m, "lk", "locked", 0), "True");
    assert_string_equal(op(m, "lk", "release", 0), "-"); /* the broker took it for m */
    shoal_manager_close(m2);
    shoal_manager_close(m);
    stop_broker(b);
}

struct waiter_thread {
    shoal_manager *m;
    int rc;
    int64_t at;
};

static void *wait_forever(void *arg)
{
    struct waiter_thread *w = arg;
    w->rc = shoal_manager_call(w->m, "lk", "acquire", SHOAL_FOREVER, NULL, 0);
    w->at = shoal__now_ns();
    return NULL;
}

/* The broker SIGKILLed while a client sleeps on a word another client holds: the
 * waiter sees the broker's liveness lock freed (the read view's) and returns. */
static void test_broker_killed_under_a_waiter(void **state)
{
    (void)state;
    pid_t b = start_broker();
    shoal_manager *m = connect_to(addr, NULL), *m2 = connect_to(addr, NULL);
    assert_int_equal(shoal_manager_create(m, "lk", SHOAL_M_LOCK, NULL, NULL), 1);
    assert_string_equal(op(m, "lk", "acquire", 0), "-");
    struct waiter_thread w = {m2, 0, 0};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, wait_forever, &w), 0);
    usleep(100 * 1000);
    int64_t t0 = shoal__now_ns();
    t_kill(b);
    pthread_join(th, NULL);
    assert_int_equal(w.rc, SHOAL_EPEERDEAD);
    assert_true(w.at - t0 < SHOAL_SEC(2));
    shoal_manager_close(m2);
    shoal_manager_close(m);
}

/* --no-lock-table (and --no-view): every lock request goes to the broker. */
static void test_no_lock_table(void **state)
{
    (void)state;
    for (int k = 0; k < 2; k++) {
        pid_t b = start_broker_with(&(broker_args){.no_lock_table = k == 0, .no_view = k},
                                    NULL);
        shoal_manager *m = connect_to(addr, NULL);
        assert_int_equal(shoal_manager_create(m, "lk", SHOAL_M_LOCK, NULL, NULL), 1);
        int64_t before = stat_of(m, "requests");
        assert_string_equal(op(m, "lk", "acquire", 0), "-");
        assert_string_equal(op(m, "lk", "release", 0), "-");
        assert_int_equal(stat_of(m, "requests") - before, 3); /* the stats call too */
        shoal_manager_close(m);
        stop_broker(b);
    }
}

#ifdef SHOAL_TEST_NNG
struct contender {
    const char *address, *token;
    int n, rc;
};

static void *contend(void *arg)
{
    struct contender *c = arg;
    shoal_manager_config cfg = {.connect_timeout = SHOAL_SEC(2), .token = c->token};
    shoal_manager *m = connect_cfg(c->address, &cfg);
    c->rc = count_turns(m, c->n, 0);
    shoal_manager_close(m);
    return NULL;
}
#endif

/* Last (nng does not survive fork): a tcp:// client and shm:// clients on one lock,
 * an exact count; a shm holder SIGKILLed while the tcp client's acquire is parked in
 * the broker: it gets the lock owner-died. */
static void test_tcp_and_shm(void **state)
{
    (void)state;
#ifdef SHOAL_TEST_NNG
    char tcp[64];
    const char *token = "sesame-0123456789";
    snprintf(tcp, sizeof(tcp), "tcp://127.0.0.1:%d", t_tcp_port(7));
    pid_t b = start_broker_with(&(broker_args){.tcp = tcp, .token = token}, NULL);
    shoal_manager *m = connect_to(addr, NULL);
    assert_int_equal(shoal_manager_create(m, "mx", SHOAL_M_LOCK, NULL, NULL), 1);
    assert_int_equal(shoal_manager_create(m, "d", SHOAL_M_DICT, NULL, NULL), 1);
    assert_int_equal(shoal_manager_create(m, "lk", SHOAL_M_LOCK, NULL, NULL), 1);
    pid_t c = t_fork_paused("-", hold_then_stop, "lk"); /* before nng is used here */
    assert_true(c > 0);
    struct turns t = {300, 0};
    pid_t kid = t_fork(counter_child, &t);
    struct contender ct[2] = {{tcp, token, 300, -1}, {addr, NULL, 300, -1}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, contend, &ct[i]), 0);
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(ct[i].rc, 0);
    }
    assert_int_equal(t_wait(kid), 0);
    assert_int_equal(counter(m), 900);

    shoal_manager *r = connect_to(tcp, token);
    assert_string_equal(op(r, "lk", "acquire", 0), "E-13");
    shoal_manager_request q = {"lk", "acquire", NULL, 0, NULL, 0, SHOAL_SEC(20)};
    uint64_t id;
    T_OK(shoal_manager_submit(r, &q, &id));
    usleep(20 * 1000);
    int64_t t0 = shoal__now_ns();
    t_kill(c);
    assert_int_equal(shoal_manager_wait(r, id, NULL), SHOAL_EOWNERDEAD);
    assert_true(shoal__now_ns() - t0 < SHOAL_SEC(2));
    assert_string_equal(op(m, "lk", "locked", 0), "True");
    shoal_manager_close(r); /* holding it: freed owner-died by the broker */
    assert_int_equal(shoal_manager_call(m, "lk", "acquire", SHOAL_SEC(5), NULL, 0),
                     SHOAL_EOWNERDEAD);
    shoal_manager_close(m);
    stop_broker(b);
#else
    skip();
#endif
}

int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "count")) { /* the separately started counter */
        shoal_manager *m = NULL;
        if (shoal_manager_connect(&m, argv[2], NULL) != 0)
            return 2;
        int rc = count_turns(m, atoi(argv[3]), 0);
        shoal_manager_close(m);
        return rc;
    }
    ssize_t n = readlink("/proc/self/exe", self_exe, sizeof(self_exe) - 1);
    if (n <= 0)
        return 1;
    self_exe[n] = 0;
    t_setup_root();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_mutual_exclusion, setup),
        cmocka_unit_test_setup(test_release_after_pipelined_writes, setup),
        cmocka_unit_test_setup(test_release_rules, setup),
        cmocka_unit_test_setup(test_holder_killed_and_closed, setup),
        cmocka_unit_test_setup(test_timeouts_and_submitted_waits, setup),
        cmocka_unit_test_setup(test_broker_killed_under_a_waiter, setup),
        cmocka_unit_test_setup(test_no_lock_table, setup),
        cmocka_unit_test_setup(test_tcp_and_shm, setup), /* last: nng, then no fork */
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
