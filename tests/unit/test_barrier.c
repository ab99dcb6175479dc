/* test_barrier.c — Barrier between processes: rounds with distinct arrival indices,
 * no early passage, timeouts that break it, abort, reset, named barriers, bad input. */
#include <stdatomic.h>
#include <sys/mman.h>

#include "internal.h"
#include "testutil.h"

enum { PARTIES = 4, ROUNDS = 300 };

struct shared {
    shoal_barrier b;
    _Atomic int arrived[PARTIES]; /* rounds each party has started */
    _Atomic int index_seen[ROUNDS][PARTIES];
    _Atomic int waiting;
    int64_t t_ns;
};

static struct shared *sh;

static int setup(void **state)
{
    (void)state;
    sh = t_shared_alloc(sizeof(*sh));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    munmap(sh, sizeof(*sh));
    return 0;
}

static bool wait_waiting(shoal_barrier *b, uint32_t n)
{
    int64_t end = shoal__now_ns() + SHOAL_SEC(10);
    uint32_t w;
    for (;;) {
        shoal_barrier_state(b, NULL, &w, NULL);
        if (w >= n)
            return true;
        if (shoal__now_ns() > end)
            return false;
        usleep(200);
    }
}

static void test_single_party(void **state)
{
    (void)state;
    T_OK(shoal_barrier_init(&sh->b, 1));
    for (int i = 0; i < 3; i++)
        assert_int_equal(shoal_barrier_wait(&sh->b, SHOAL_NOWAIT), 0);
    uint32_t parties, waiting;
    int broken;
    shoal_barrier_state(&sh->b, &parties, &waiting, &broken);
    assert_int_equal(parties, 1);
    assert_int_equal(waiting, 0);
    assert_int_equal(broken, 0);
}

static int party(void *arg)
{
    int me = *(int *)arg;
    for (int r = 0; r < ROUNDS; r++) {
        atomic_store(&sh->arrived[me], r + 1);
        int idx = shoal_barrier_wait(&sh->b, SHOAL_SEC(10));
        if (idx < 0 || idx >= PARTIES)
            return 10;
        atomic_fetch_add(&sh->index_seen[r][idx], 1);
        /* No one passes round r before everyone has arrived at it. */
        for (int p = 0; p < PARTIES; p++)
            if (atomic_load(&sh->arrived[p]) < r + 1)
                return 11;
    }
    return 0;
}

static void test_rounds(void **state)
{
    (void)state;
    memset(sh, 0, sizeof(*sh));
    T_OK(shoal_barrier_init(&sh->b, PARTIES));
    pid_t pids[PARTIES];
    int ids[PARTIES];
    for (int i = 0; i < PARTIES; i++) {
        ids[i] = i;
        pids[i] = t_fork(party, &ids[i]);
    }
    for (int i = 0; i < PARTIES; i++)
        assert_int_equal(t_wait(pids[i]), 0);
    /* Each round handed out every index 0..parties-1 exactly once. */
    for (int r = 0; r < ROUNDS; r++)
        for (int i = 0; i < PARTIES; i++)
            assert_int_equal(atomic_load(&sh->index_seen[r][i]), 1);
    int broken;
    uint32_t waiting;
    shoal_barrier_state(&sh->b, NULL, &waiting, &broken);
    assert_int_equal(waiting, 0);
    assert_int_equal(broken, 0);
}

static int long_waiter(void *arg)
{
    int want = *(int *)arg;
    int rc = shoal_barrier_wait(&sh->b, SHOAL_SEC(10));
    sh->t_ns = shoal__now_ns();
    return rc == want ? 0 : 10 + (rc < 0 ? -rc : rc);
}

static void test_timeout_breaks(void **state)
{
    (void)state;
    T_OK(shoal_barrier_init(&sh->b, 3));
    int want = SHOAL_EBROKEN;
    pid_t pid = t_fork(long_waiter, &want);
    assert_true(wait_waiting(&sh->b, 1));
    int64_t t0 = shoal__now_ns();
    assert_int_equal(shoal_barrier_wait(&sh->b, SHOAL_MS(50)), SHOAL_ETIMEDOUT);
    int64_t t1 = shoal__now_ns();
    assert_true(t1 - t0 >= SHOAL_MS(50) && t1 - t0 < SHOAL_SEC(2));
    assert_non_null(strstr(shoal_errdetail(), "2 of 3"));
    assert_int_equal(t_wait(pid), 0);
    assert_true(sh->t_ns - t1 < SHOAL_SEC(1)); /* the other waiter learnt promptly */
    int broken;
    shoal_barrier_state(&sh->b, NULL, NULL, &broken);
    assert_int_equal(broken, 1);
    /* Broken until reset: later callers fail at once. */
    assert_int_equal(shoal_barrier_wait(&sh->b, SHOAL_SEC(10)), SHOAL_EBROKEN);
    assert_non_null(strstr(shoal_errdetail(), "broken"));
    T_OK(shoal_barrier_reset(&sh->b));
    shoal_barrier_state(&sh->b, NULL, NULL, &broken);
    assert_int_equal(broken, 0);
    /* Usable again. */
    want = 0;
    int want1 = 1;
    pid_t a = t_fork(long_waiter, &want);
    assert_true(wait_waiting(&sh->b, 1));
    pid_t b = t_fork(long_waiter, &want1);
    assert_true(wait_waiting(&sh->b, 2));
    assert_int_equal(shoal_barrier_wait(&sh->b, SHOAL_SEC(10)), 2);
    assert_int_equal(t_wait(a), 0);
    assert_int_equal(t_wait(b), 0);
}

static void test_abort_and_reset(void **state)
{
    (void)state;
    T_OK(shoal_barrier_init(&sh->b, 3));
    int want = SHOAL_EBROKEN;
    pid_t p1 = t_fork(long_waiter, &want);
    pid_t p2 = t_fork(long_waiter, &want);
    assert_true(wait_waiting(&sh->b, 2));
    usleep(20000);
    T_OK(shoal_barrier_abort(&sh->b));
    T_OK(shoal_barrier_abort(&sh->b)); /* already broken: no-op */
    assert_int_equal(t_wait(p1), 0);
    assert_int_equal(t_wait(p2), 0);
    assert_int_equal(shoal_barrier_wait(&sh->b, SHOAL_NOWAIT), SHOAL_EBROKEN);
    T_OK(shoal_barrier_reset(&sh->b));

    /* Reset while parties wait: they get EBROKEN, the barrier is clean afterwards. */
    p1 = t_fork(long_waiter, &want);
    assert_true(wait_waiting(&sh->b, 1));
    usleep(20000);
    T_OK(shoal_barrier_reset(&sh->b));
    assert_int_equal(t_wait(p1), 0);
    uint32_t waiting;
    int broken;
    shoal_barrier_state(&sh->b, NULL, &waiting, &broken);
    assert_int_equal(waiting, 0);
    assert_int_equal(broken, 0);
    T_OK(shoal_barrier_reset(&sh->b)); /* idle: no-op */
    /* Timeout 0 from a non-last arrival breaks it, as Python's wait(0) does. */
    assert_int_equal(shoal_barrier_wait(&sh->b, SHOAL_NOWAIT), SHOAL_ETIMEDOUT);
    shoal_barrier_state(&sh->b, NULL, NULL, &broken);
    assert_int_equal(broken, 1);
    T_OK(shoal_barrier_reset(&sh->b));
}

static int exec_child_main(const char *what)
{
    shoal_barrier *b;
    if (!strcmp(what, "party")) {
        if (shoal_barrier_open(&b, "named-barrier", SHOAL_OPEN, 0, NULL))
            return 20;
        int idx = shoal_barrier_wait(b, SHOAL_SEC(10));
        if (idx < 0)
            return 21;
        return shoal_barrier_close(b) ? 22 : 0;
    }
    return 99;
}

static void test_named(void **state)
{
    (void)state;
    shoal_barrier *b, *b2;
    assert_int_equal(shoal_barrier_open(&b, "named-barrier", SHOAL_OPEN, 2, NULL),
                     SHOAL_ENOENT);
    T_OK(shoal_barrier_open(&b, "named-barrier", SHOAL_CREATE, 2, NULL));
    /* parties is taken from the existing barrier on open. */
    T_OK(shoal_barrier_open(&b2, "named-barrier", SHOAL_OPEN_OR_CREATE, 7, NULL));
    uint32_t parties;
    shoal_barrier_state(b2, &parties, NULL, NULL);
    assert_int_equal(parties, 2);
    pid_t pid = t_spawn_self("party", NULL);
    int idx = shoal_barrier_wait(b, SHOAL_SEC(10));
    assert_true(idx == 0 || idx == 1);
    assert_int_equal(t_wait(pid), 0);
    assert_int_equal(shoal_barrier_wait(b2, SHOAL_MS(1)), SHOAL_ETIMEDOUT);
    assert_non_null(strstr(shoal_errdetail(), "named-barrier"));
    T_OK(shoal_barrier_close(b));
    T_OK(shoal_barrier_close(b2));
    shoal_event *e;
    assert_int_equal(shoal_event_open(&e, "named-barrier", SHOAL_OPEN, NULL),
                     SHOAL_EKIND);
    T_OK(shoal_unlink("named-barrier", NULL));
}

static void test_bad_input(void **state)
{
    (void)state;
    shoal_barrier zero, *b;
    memset(&zero, 0, sizeof(zero));
    assert_int_equal(shoal_barrier_init(NULL, 2), SHOAL_EINVAL);
    assert_int_equal(shoal_barrier_init(&sh->b, 0), SHOAL_EINVAL);
    assert_non_null(strstr(shoal_errdetail(), "parties"));
    assert_int_equal(shoal_barrier_init(&sh->b, 70000), SHOAL_EINVAL);
    assert_int_equal(shoal_barrier_wait(&zero, SHOAL_NOWAIT), SHOAL_EINVAL);
    assert_non_null(strstr(shoal_errdetail(), "not initialised"));
    assert_int_equal(shoal_barrier_wait(NULL, SHOAL_NOWAIT), SHOAL_EINVAL);
    assert_int_equal(shoal_barrier_abort(&zero), SHOAL_EINVAL);
    assert_int_equal(shoal_barrier_reset(NULL), SHOAL_EINVAL);
    uint32_t parties = 9;
    shoal_barrier_state(NULL, &parties, NULL, NULL);
    assert_int_equal(parties, 0);
    T_OK(shoal_barrier_init(&sh->b, 2));
    assert_int_equal(shoal_barrier_close(&sh->b), SHOAL_EINVAL); /* embedded */
    assert_int_equal(shoal_barrier_open(NULL, "x", SHOAL_CREATE, 2, NULL), SHOAL_EINVAL);
    assert_int_equal(shoal_barrier_open(&b, "x", SHOAL_CREATE, 0, NULL), SHOAL_EINVAL);
    assert_int_equal(shoal_barrier_open(&b, "x/y", SHOAL_CREATE, 2, NULL), SHOAL_ENAME);
}

int main(int argc, char **argv)
{
    t_setup_root();
    if (argc > 1)
        return exec_child_main(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_party),   cmocka_unit_test(test_rounds),
        cmocka_unit_test(test_timeout_breaks), cmocka_unit_test(test_abort_and_reset),
        cmocka_unit_test(test_named),          cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
