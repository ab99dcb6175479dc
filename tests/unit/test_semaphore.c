/* test_semaphore.c — Semaphore and BoundedSemaphore between processes: counting, try
 * and timeouts, wake-ups of sleepers, bounds, named semaphores and bad input. */
#include <sched.h>
#include <stdatomic.h>
#include <sys/mman.h>

#include "internal.h"
#include "testutil.h"

struct shared {
    shoal_sem sem;
    shoal_sem mutex; /* a semaphore of 1 used as a lock */
    _Atomic int stage;
    _Atomic int done;
    int counter;
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

static void test_counting(void **state)
{
    (void)state;
    T_OK(shoal_sem_init(&sh->sem, 2, 0));
    assert_int_equal(shoal_sem_value(&sh->sem), 2);
    T_OK(shoal_sem_try(&sh->sem));
    T_OK(shoal_sem_acquire(&sh->sem, SHOAL_FOREVER));
    assert_int_equal(shoal_sem_value(&sh->sem), 0);
    assert_int_equal(shoal_sem_try(&sh->sem), SHOAL_EAGAIN);
    assert_int_equal(shoal_sem_acquire(&sh->sem, SHOAL_NOWAIT), SHOAL_EAGAIN);
    int64_t t0 = shoal__now_ns();
    assert_int_equal(shoal_sem_acquire(&sh->sem, SHOAL_MS(50)), SHOAL_ETIMEDOUT);
    int64_t took = shoal__now_ns() - t0;
    assert_true(took >= SHOAL_MS(50) && took < SHOAL_SEC(2));
    assert_non_null(strstr(shoal_errdetail(), "timed out"));
    /* An unbounded semaphore may go above its initial value. */
    for (int i = 0; i < 5; i++)
        T_OK(shoal_sem_release(&sh->sem));
    assert_int_equal(shoal_sem_value(&sh->sem), 5);
    for (int i = 0; i < 5; i++)
        T_OK(shoal_sem_try(&sh->sem));
    assert_int_equal(shoal_sem_try(&sh->sem), SHOAL_EAGAIN);
}

static void test_bounded(void **state)
{
    (void)state;
    T_OK(shoal_sem_init(&sh->sem, 2, 1));
    assert_int_equal(shoal_sem_release(&sh->sem), SHOAL_EOVERFLOW);
    assert_non_null(strstr(shoal_errdetail(), "bounded semaphore"));
    assert_int_equal(shoal_sem_value(&sh->sem), 2);
    T_OK(shoal_sem_try(&sh->sem));
    T_OK(shoal_sem_try(&sh->sem));
    T_OK(shoal_sem_release(&sh->sem));
    T_OK(shoal_sem_release(&sh->sem));
    assert_int_equal(shoal_sem_release(&sh->sem), SHOAL_EOVERFLOW);
    assert_int_equal(shoal_sem_value(&sh->sem), 2);
    /* A bounded semaphore of 0 can never be released. */
    T_OK(shoal_sem_init(&sh->sem, 0, 1));
    assert_int_equal(shoal_sem_release(&sh->sem), SHOAL_EOVERFLOW);
}

/* Child: takes `per` units, each within 10 s. */
static int taker(void *arg)
{
    int per = *(int *)arg;
    atomic_fetch_add(&sh->stage, 1);
    for (int i = 0; i < per; i++) {
        int64_t t0 = shoal__now_ns();
        if (shoal_sem_acquire(&sh->sem, SHOAL_SEC(10)) != 0)
            return 10;
        if (shoal__now_ns() - t0 > SHOAL_SEC(3))
            return 11; /* not woken by a release: got in only at the timeout */
    }
    atomic_fetch_add(&sh->done, 1);
    return 0;
}

static void run_takers(int64_t spin_ns)
{
    enum { N = 4, PER = 2000 };
    int per = PER;
    T_OK(shoal_sem_init(&sh->sem, 0, 0));
    atomic_store(&sh->stage, 0);
    atomic_store(&sh->done, 0);
    shoal_set_spin_ns(spin_ns); /* inherited by the children */
    pid_t pids[N];
    for (int i = 0; i < N; i++)
        pids[i] = t_fork(taker, &per);
    assert_true(t_wait_atleast(&sh->stage, N, SHOAL_SEC(10)));
    usleep(20000); /* all asleep, value 0 */
    assert_int_equal(atomic_load(&sh->done), 0);
    for (int i = 0; i < N * PER; i++) {
        T_OK(shoal_sem_release(&sh->sem));
        if ((i & 127) == 0)
            sched_yield();
    }
    for (int i = 0; i < N; i++)
        assert_int_equal(t_wait(pids[i]), 0);
    assert_int_equal(shoal_sem_value(&sh->sem), 0);
    shoal_set_spin_ns(20000);
}

static void test_producer_wakes_sleepers(void **state)
{
    (void)state;
    run_takers(20000);
    run_takers(0); /* no spinning: every wait goes through the futex */
}

static int wake_one(void *arg)
{
    (void)arg;
    atomic_store(&sh->stage, 1);
    int64_t t0 = shoal__now_ns();
    if (shoal_sem_acquire(&sh->sem, SHOAL_SEC(10)))
        return 10;
    /* Woken by the release ~50 ms later, not by the timeout. */
    return shoal__now_ns() - t0 < SHOAL_SEC(5) ? 0 : 11;
}

static void test_sleeper_woken(void **state)
{
    (void)state;
    T_OK(shoal_sem_init(&sh->sem, 0, 0));
    atomic_store(&sh->stage, 0);
    pid_t pid = t_fork(wake_one, NULL);
    assert_true(t_wait_atleast(&sh->stage, 1, SHOAL_SEC(10)));
    usleep(50000);
    T_OK(shoal_sem_release(&sh->sem));
    assert_int_equal(t_wait(pid), 0);
    assert_int_equal(shoal_sem_value(&sh->sem), 0);
}

/* A semaphore of 1 as a mutex: 4 processes, exact count. */
static int mutex_worker(void *arg)
{
    (void)arg;
    for (int i = 0; i < 10000; i++) {
        if (shoal_sem_acquire(&sh->mutex, SHOAL_SEC(30)))
            return 10;
        int v = sh->counter;
        if ((i & 255) == 0)
            sched_yield();
        sh->counter = v + 1;
        if (shoal_sem_release(&sh->mutex))
            return 11;
    }
    return 0;
}

static void test_as_mutex(void **state)
{
    (void)state;
    T_OK(shoal_sem_init(&sh->mutex, 1, 1));
    sh->counter = 0;
    pid_t pids[4];
    for (int i = 0; i < 4; i++)
        pids[i] = t_fork(mutex_worker, NULL);
    for (int i = 0; i < 4; i++)
        assert_int_equal(t_wait(pids[i]), 0);
    assert_int_equal(sh->counter, 40000);
    assert_int_equal(shoal_sem_value(&sh->mutex), 1);
}

static int exec_child_main(const char *what)
{
    shoal_sem *s;
    if (!strcmp(what, "take-two")) {
        if (shoal_sem_open(&s, "named-sem", SHOAL_OPEN, 0, NULL))
            return 20;
        if (shoal_sem_acquire(s, SHOAL_SEC(10)) || shoal_sem_acquire(s, SHOAL_SEC(10)))
            return 21;
        if (shoal_sem_try(s) != SHOAL_EAGAIN)
            return 22;
        return shoal_sem_close(s) ? 23 : 0;
    }
    return 99;
}

static void test_named(void **state)
{
    (void)state;
    shoal_sem *a, *b;
    assert_int_equal(shoal_sem_open(&a, "named-sem", SHOAL_OPEN, 0, NULL), SHOAL_ENOENT);
    T_OK(shoal_sem_open(&a, "named-sem", SHOAL_CREATE, 3, NULL));
    /* The value is used only at creation. */
    T_OK(shoal_sem_open(&b, "named-sem", SHOAL_OPEN_OR_CREATE, 99, NULL));
    assert_int_equal(shoal_sem_value(b), 3);
    T_OK(shoal_sem_try(a));
    assert_int_equal(shoal_sem_value(b), 2);
    assert_int_equal(t_wait(t_spawn_self("take-two", NULL)), 0);
    assert_int_equal(shoal_sem_value(a), 0);
    assert_int_equal(shoal_sem_acquire(a, SHOAL_MS(10)), SHOAL_ETIMEDOUT);
    assert_non_null(strstr(shoal_errdetail(), "named-sem"));
    T_OK(shoal_sem_close(a));
    T_OK(shoal_sem_close(b));

    /* Semaphore and BoundedSemaphore are different kinds. */
    assert_int_equal(shoal_bsem_open(&b, "named-sem", SHOAL_OPEN, 0, NULL), SHOAL_EKIND);
    T_OK(shoal_bsem_open(&b, "named-bsem", SHOAL_CREATE, 1, NULL));
    assert_int_equal(shoal_sem_release(b), SHOAL_EOVERFLOW);
    assert_non_null(strstr(shoal_errdetail(), "named-bsem"));
    T_OK(shoal_sem_close(b));
    assert_int_equal(shoal_sem_open(&a, "named-bsem", SHOAL_OPEN, 0, NULL), SHOAL_EKIND);
    shoal_event *ev;
    assert_int_equal(shoal_event_open(&ev, "named-sem", SHOAL_OPEN, NULL), SHOAL_EKIND);
    T_OK(shoal_unlink("named-sem", NULL));
    T_OK(shoal_unlink("named-bsem", NULL));
}

static void test_bad_input(void **state)
{
    (void)state;
    shoal_sem zero, *s;
    memset(&zero, 0, sizeof(zero));
    assert_int_equal(shoal_sem_init(NULL, 1, 0), SHOAL_EINVAL);
    assert_int_equal(shoal_sem_init(&sh->sem, (uint32_t)INT32_MAX + 1, 0), SHOAL_EINVAL);
    assert_non_null(strstr(shoal_errdetail(), "exceeds"));
    assert_int_equal(shoal_sem_acquire(&zero, SHOAL_NOWAIT), SHOAL_EINVAL);
    assert_non_null(strstr(shoal_errdetail(), "not initialised"));
    assert_int_equal(shoal_sem_release(NULL), SHOAL_EINVAL);
    assert_int_equal(shoal_sem_try(NULL), SHOAL_EINVAL);
    assert_int_equal(shoal_sem_value(NULL), 0);
    /* An unbounded semaphore stops at INT32_MAX rather than wrapping. */
    T_OK(shoal_sem_init(&sh->sem, INT32_MAX, 0));
    assert_int_equal(shoal_sem_release(&sh->sem), SHOAL_EOVERFLOW);
    T_OK(shoal_sem_init(&sh->sem, 0, 0));
    assert_int_equal(shoal_sem_close(&sh->sem), SHOAL_EINVAL); /* embedded */
    assert_int_equal(shoal_sem_open(NULL, "x", SHOAL_CREATE, 1, NULL), SHOAL_EINVAL);
    assert_int_equal(shoal_sem_open(&s, "x", SHOAL_CREATE, 0x80000000u, NULL),
                     SHOAL_EINVAL);
    assert_int_equal(shoal_sem_open(&s, "a/b", SHOAL_CREATE, 1, NULL), SHOAL_ENAME);
}

int main(int argc, char **argv)
{
    t_setup_root();
    if (argc > 1)
        return exec_child_main(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counting),
        cmocka_unit_test(test_bounded),
        cmocka_unit_test(test_producer_wakes_sleepers),
        cmocka_unit_test(test_sleeper_woken),
        cmocka_unit_test(test_as_mutex),
        cmocka_unit_test(test_named),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
