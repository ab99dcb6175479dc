/* test_event.c — Event between processes: set/clear/wait, timeouts, waking many
 * sleepers, a set+clear pulse, named events and bad input. */
#include <stdatomic.h>
#include <sys/mman.h>

#include "internal.h"
#include "testutil.h"

struct shared {
    shoal_event ev;
    _Atomic int waiting;
    int64_t woke_ns[8];
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

static void test_basic(void **state)
{
    (void)state;
    T_OK(shoal_event_init(&sh->ev));
    assert_int_equal(shoal_event_is_set(&sh->ev), 0);
    assert_int_equal(shoal_event_wait(&sh->ev, SHOAL_NOWAIT), SHOAL_EAGAIN);
    int64_t t0 = shoal__now_ns();
    assert_int_equal(shoal_event_wait(&sh->ev, SHOAL_MS(50)), SHOAL_ETIMEDOUT);
    int64_t took = shoal__now_ns() - t0;
    assert_true(took >= SHOAL_MS(50) && took < SHOAL_SEC(2));
    assert_non_null(strstr(shoal_errdetail(), "timed out"));
    T_OK(shoal_event_set(&sh->ev));
    T_OK(shoal_event_set(&sh->ev)); /* idempotent */
    assert_int_equal(shoal_event_is_set(&sh->ev), 1);
    T_OK(shoal_event_wait(&sh->ev, SHOAL_NOWAIT));
    T_OK(shoal_event_wait(&sh->ev, SHOAL_FOREVER));
    T_OK(shoal_event_clear(&sh->ev));
    T_OK(shoal_event_clear(&sh->ev));
    assert_int_equal(shoal_event_is_set(&sh->ev), 0);
    assert_int_equal(shoal_event_wait(&sh->ev, SHOAL_MS(1)), SHOAL_ETIMEDOUT);
}

static int waiter(void *arg)
{
    int i = *(int *)arg;
    atomic_fetch_add(&sh->waiting, 1);
    if (shoal_event_wait(&sh->ev, SHOAL_SEC(10)))
        return 10;
    sh->woke_ns[i] = shoal__now_ns();
    return 0;
}

static void run_waiters(int n, bool pulse)
{
    T_OK(shoal_event_init(&sh->ev));
    atomic_store(&sh->waiting, 0);
    pid_t pids[8];
    int idx[8];
    for (int i = 0; i < n; i++) {
        idx[i] = i;
        pids[i] = t_fork(waiter, &idx[i]);
    }
    assert_true(t_wait_atleast(&sh->waiting, n, SHOAL_SEC(10)));
    usleep(50000); /* all asleep in the kernel */
    if (pulse) {
        /* Freeze the sleepers so that the clear surely comes before they look. */
        for (int i = 0; i < n; i++) {
            int st;
            kill(pids[i], SIGSTOP);
            assert_int_equal(waitpid(pids[i], &st, WUNTRACED), pids[i]);
            assert_true(WIFSTOPPED(st));
        }
    }
    int64_t t_set = shoal__now_ns();
    T_OK(shoal_event_set(&sh->ev));
    if (pulse) {
        T_OK(shoal_event_clear(&sh->ev));
        for (int i = 0; i < n; i++)
            kill(pids[i], SIGCONT);
    }
    for (int i = 0; i < n; i++) {
        assert_int_equal(t_wait(pids[i]), 0);
        /* Woken by the set, not by their 10 s timeout. */
        assert_true(sh->woke_ns[i] >= t_set && sh->woke_ns[i] - t_set < SHOAL_SEC(2));
    }
    assert_int_equal(shoal_event_is_set(&sh->ev), !pulse);
}

static void test_set_wakes_all(void **state)
{
    (void)state;
    run_waiters(6, false);
}

/* As Python's Event: a waiter asleep during set() returns even if clear() followed. */
static void test_pulse(void **state)
{
    (void)state;
    run_waiters(4, true);
}

static int exec_child_main(const char *what)
{
    shoal_event *e;
    if (!strcmp(what, "setter")) {
        if (shoal_event_open(&e, "named-event", SHOAL_OPEN, NULL))
            return 20;
        usleep(20000);
        if (shoal_event_set(e))
            return 21;
        return shoal_event_close(e) ? 22 : 0;
    }
    return 99;
}

static void test_named(void **state)
{
    (void)state;
    shoal_event *a, *b;
    assert_int_equal(shoal_event_open(&a, "named-event", SHOAL_OPEN, NULL), SHOAL_ENOENT);
    T_OK(shoal_event_open(&a, "named-event", SHOAL_CREATE, NULL));
    T_OK(shoal_event_open(&b, "named-event", SHOAL_OPEN, NULL));
    assert_int_equal(shoal_event_wait(b, SHOAL_MS(1)), SHOAL_ETIMEDOUT);
    assert_non_null(strstr(shoal_errdetail(), "named-event"));
    pid_t pid = t_spawn_self("setter", NULL);
    T_OK(shoal_event_wait(a, SHOAL_SEC(10)));
    assert_int_equal(shoal_event_is_set(b), 1);
    assert_int_equal(t_wait(pid), 0);
    T_OK(shoal_event_close(a));
    T_OK(shoal_event_close(b));
    shoal_lock *l;
    assert_int_equal(shoal_lock_open(&l, "named-event", SHOAL_OPEN, NULL), SHOAL_EKIND);
    T_OK(shoal_unlink("named-event", NULL));
}

static void test_bad_input(void **state)
{
    (void)state;
    shoal_event zero, *e;
    memset(&zero, 0, sizeof(zero));
    assert_int_equal(shoal_event_init(NULL), SHOAL_EINVAL);
    assert_int_equal(shoal_event_wait(&zero, SHOAL_NOWAIT), SHOAL_EINVAL);
    assert_non_null(strstr(shoal_errdetail(), "not initialised"));
    assert_int_equal(shoal_event_set(NULL), SHOAL_EINVAL);
    assert_int_equal(shoal_event_clear(&zero), SHOAL_EINVAL);
    assert_int_equal(shoal_event_is_set(NULL), 0);
    T_OK(shoal_event_init(&sh->ev));
    assert_int_equal(shoal_event_close(&sh->ev), SHOAL_EINVAL); /* embedded */
    assert_int_equal(shoal_event_open(NULL, "x", SHOAL_CREATE, NULL), SHOAL_EINVAL);
    assert_int_equal(shoal_event_open(&e, "../x", SHOAL_CREATE, NULL), SHOAL_ENAME);
}

int main(int argc, char **argv)
{
    t_setup_root();
    if (argc > 1)
        return exec_child_main(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),     cmocka_unit_test(test_set_wakes_all),
        cmocka_unit_test(test_pulse),     cmocka_unit_test(test_named),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
