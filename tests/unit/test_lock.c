/* test_lock.c — Lock and RLock between processes: ownership, try and timeouts,
 * recursion, contended hand-off, named locks and bad input. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/mman.h>

#include "internal.h"
#include "testutil.h"

/* Memory shared with forked children. */
struct shared {
    shoal_lock lock;
    shoal_lock rlock;
    _Atomic int stage;
    int counter; /* plain int: only the lock makes increments safe */
    int64_t t_ns;
};

static struct shared *sh;

static int setup(void **state)
{
    (void)state;
    sh = t_shared_alloc(sizeof(*sh));
    if (shoal_lock_init(&sh->lock, 0) || shoal_lock_init(&sh->rlock, 1))
        return -1;
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
    int rec;
    int32_t owner;
    uint32_t depth;
    assert_int_equal(shoal_lock_locked(&sh->lock), 0);
    shoal_lock_state(&sh->lock, &rec, &owner, &depth);
    assert_int_equal(rec, 0);
    assert_int_equal(owner, 0);
    assert_int_equal(depth, 0);

    T_OK(shoal_lock_acquire(&sh->lock, SHOAL_FOREVER));
    assert_int_equal(shoal_lock_locked(&sh->lock), 1);
    shoal_lock_state(&sh->lock, &rec, &owner, &depth);
    assert_int_equal(owner, shoal__tid());
    assert_int_equal(depth, 1);
    /* A plain Lock taken again by its holder is a deadlock, reported, not entered. */
    assert_int_equal(shoal_lock_try(&sh->lock), SHOAL_EDEADLK);
    assert_int_equal(shoal_lock_acquire(&sh->lock, SHOAL_MS(10)), SHOAL_EDEADLK);
    assert_int_equal(shoal_lock_acquire(&sh->lock, SHOAL_FOREVER), SHOAL_EDEADLK);
    assert_non_null(strstr(shoal_errdetail(), "already held"));
    T_OK(shoal_lock_release(&sh->lock));
    assert_int_equal(shoal_lock_locked(&sh->lock), 0);
    /* Releasing a free lock is not allowed either. */
    assert_int_equal(shoal_lock_release(&sh->lock), SHOAL_EPERM);
    assert_non_null(strstr(shoal_errdetail(), "not held"));
    T_OK(shoal_lock_try(&sh->lock));
    T_OK(shoal_lock_release(&sh->lock));
    /* Timeout 0 is the try form. */
    T_OK(shoal_lock_acquire(&sh->lock, SHOAL_NOWAIT));
    T_OK(shoal_lock_release(&sh->lock));
}

/* Child: the lock is held by the parent. */
static int child_contender(void *arg)
{
    (void)arg;
    if (shoal_lock_try(&sh->lock) != SHOAL_EAGAIN)
        return 10;
    if (shoal_lock_acquire(&sh->lock, SHOAL_NOWAIT) != SHOAL_EAGAIN)
        return 11;
    int64_t t0 = shoal__now_ns();
    if (shoal_lock_acquire(&sh->lock, SHOAL_MS(50)) != SHOAL_ETIMEDOUT)
        return 12;
    int64_t took = shoal__now_ns() - t0;
    if (took < SHOAL_MS(50) || took > SHOAL_MS(2000))
        return 13;
    if (!strstr(shoal_errdetail(), "timed out"))
        return 14;
    /* Not the holder: may not release. */
    if (shoal_lock_release(&sh->lock) != SHOAL_EPERM)
        return 15;
    if (shoal_lock_locked(&sh->lock) != 1)
        return 16;
    int32_t owner;
    shoal_lock_state(&sh->lock, NULL, &owner, NULL);
    if (owner != (int32_t)getppid())
        return 17;
    /* Now wait (sleeping) until the parent lets go. */
    atomic_store(&sh->stage, 1);
    int rc = shoal_lock_acquire(&sh->lock, SHOAL_SEC(10));
    if (rc)
        return 18;
    sh->t_ns = shoal__now_ns();
    return shoal_lock_release(&sh->lock) ? 19 : 0;
}

static void test_cross_process_try_timeout_and_handoff(void **state)
{
    (void)state;
    atomic_store(&sh->stage, 0);
    T_OK(shoal_lock_acquire(&sh->lock, SHOAL_FOREVER));
    pid_t pid = t_fork(child_contender, NULL);
    assert_true(t_wait_atleast(&sh->stage, 1, SHOAL_SEC(10)));
    usleep(50000); /* let the child go to sleep in the kernel */
    int64_t released = shoal__now_ns();
    T_OK(shoal_lock_release(&sh->lock));
    assert_int_equal(t_wait(pid), 0);
    /* The sleeping waiter got the lock promptly after the release. */
    assert_true(sh->t_ns >= released);
    assert_true(sh->t_ns - released < SHOAL_MS(500));
    assert_int_equal(shoal_lock_locked(&sh->lock), 0);
}

static void *thread_release(void *arg)
{
    return (void *)(intptr_t)shoal_lock_release(arg);
}

static void test_other_thread_cannot_release(void **state)
{
    (void)state;
    T_OK(shoal_lock_acquire(&sh->lock, SHOAL_FOREVER));
    pthread_t t;
    void *ret;
    assert_int_equal(pthread_create(&t, NULL, thread_release, &sh->lock), 0);
    pthread_join(t, &ret);
    assert_int_equal((int)(intptr_t)ret, SHOAL_EPERM);
    assert_int_equal(shoal_lock_locked(&sh->lock), 1);
    T_OK(shoal_lock_release(&sh->lock));
}

static int child_rlock(void *arg)
{
    (void)arg;
    if (shoal_lock_try(&sh->rlock) != SHOAL_EAGAIN)
        return 10;
    if (shoal_lock_release(&sh->rlock) != SHOAL_EPERM)
        return 11;
    atomic_store(&sh->stage, 1);
    if (shoal_lock_acquire(&sh->rlock, SHOAL_SEC(10)))
        return 12;
    /* The parent released all three levels before we got it. */
    uint32_t depth;
    shoal_lock_state(&sh->rlock, NULL, NULL, &depth);
    if (depth != 1)
        return 13;
    return shoal_lock_release(&sh->rlock) ? 14 : 0;
}

static void test_rlock(void **state)
{
    (void)state;
    int rec;
    int32_t owner;
    uint32_t depth;
    atomic_store(&sh->stage, 0);
    T_OK(shoal_lock_acquire(&sh->rlock, SHOAL_FOREVER));
    T_OK(shoal_lock_try(&sh->rlock));
    T_OK(shoal_lock_acquire(&sh->rlock, SHOAL_MS(5)));
    shoal_lock_state(&sh->rlock, &rec, &owner, &depth);
    assert_int_equal(rec, 1);
    assert_int_equal(owner, shoal__tid());
    assert_int_equal(depth, 3);
    pid_t pid = t_fork(child_rlock, NULL);
    assert_true(t_wait_atleast(&sh->stage, 1, SHOAL_SEC(10)));
    T_OK(shoal_lock_release(&sh->rlock));
    T_OK(shoal_lock_release(&sh->rlock));
    /* Still held once: the child must still be waiting. */
    usleep(20000);
    assert_int_equal(shoal_lock_locked(&sh->rlock), 1);
    shoal_lock_state(&sh->rlock, NULL, &owner, &depth);
    assert_int_equal(owner, shoal__tid());
    assert_int_equal(depth, 1);
    T_OK(shoal_lock_release(&sh->rlock));
    assert_int_equal(t_wait(pid), 0);
    assert_int_equal(shoal_lock_release(&sh->rlock), SHOAL_EPERM);
}

/* ---- contended hand-off ----------------------------------------------------------- */

#define WORKERS 4
#define ROUNDS  20000

struct worker_arg {
    shoal_lock *lock;
    int64_t spin_ns; /* -1: default */
    int depth;       /* levels taken per round (RLock) */
};

static int worker(void *arg)
{
    struct worker_arg *w = arg;
    if (w->spin_ns >= 0)
        shoal_set_spin_ns(w->spin_ns);
    /* Start together, so that the workers really contend. */
    atomic_fetch_add(&sh->stage, 1);
    if (!t_wait_atleast(&sh->stage, WORKERS, SHOAL_SEC(10)))
        return 12;
    for (int i = 0; i < ROUNDS; i++) {
        for (int d = 0; d < w->depth; d++)
            if (shoal_lock_acquire(w->lock, SHOAL_SEC(30)) != 0)
                return 10;
        int v = sh->counter; /* a torn read-modify-write if exclusion fails */
        if ((i & 255) == 0)
            sched_yield(); /* hold it across a reschedule now and then */
        sh->counter = v + 1;
        for (int d = 0; d < w->depth; d++)
            if (shoal_lock_release(w->lock) != 0)
                return 11;
    }
    return 0;
}

static void run_workers(shoal_lock *lock, int64_t spin_ns, int depth)
{
    struct worker_arg w = {lock, spin_ns, depth};
    pid_t pids[WORKERS];
    sh->counter = 0;
    atomic_store(&sh->stage, 0);
    for (int i = 0; i < WORKERS; i++)
        pids[i] = t_fork(worker, &w);
    for (int i = 0; i < WORKERS; i++)
        assert_int_equal(t_wait(pids[i]), 0);
    assert_int_equal(sh->counter, WORKERS * ROUNDS);
    assert_int_equal(shoal_lock_locked(lock), 0);
}

static void test_contended_handoff(void **state)
{
    (void)state;
    run_workers(&sh->lock, -1, 1); /* default spin budget */
    run_workers(&sh->lock, 0, 1);  /* no spinning: every wait sleeps */
    run_workers(&sh->rlock, -1, 2);
}

/* ---- named locks ------------------------------------------------------------------ */

static int exec_child_main(const char *what)
{
    shoal_lock *l;
    if (!strcmp(what, "try-held")) {
        if (shoal_lock_open(&l, "named-lock", SHOAL_OPEN, NULL))
            return 20;
        int rc = shoal_lock_try(l);
        if (rc != SHOAL_EAGAIN)
            return 21;
        if (shoal_lock_release(l) != SHOAL_EPERM ||
            !strstr(shoal_errdetail(), "named-lock"))
            return 22;
        return shoal_lock_close(l) ? 23 : 0;
    }
    if (!strcmp(what, "take")) {
        if (shoal_lock_open(&l, "named-lock", SHOAL_OPEN, NULL))
            return 30;
        if (shoal_lock_acquire(l, SHOAL_SEC(10)))
            return 31;
        if (shoal_lock_release(l))
            return 32;
        return shoal_lock_close(l) ? 33 : 0;
    }
    return 99;
}

static void test_named(void **state)
{
    (void)state;
    shoal_lock *a, *b, *r;
    assert_int_equal(shoal_lock_open(&a, "named-lock", SHOAL_OPEN, NULL), SHOAL_ENOENT);
    T_OK(shoal_lock_open(&a, "named-lock", SHOAL_CREATE, NULL));
    assert_int_equal(shoal_lock_open(&b, "named-lock", SHOAL_CREATE, NULL), SHOAL_EEXIST);
    T_OK(shoal_lock_open(&b, "named-lock", SHOAL_OPEN_OR_CREATE, NULL));
    /* Two mappings of the same lock. */
    T_OK(shoal_lock_acquire(a, SHOAL_FOREVER));
    assert_int_equal(shoal_lock_locked(b), 1);
    assert_int_equal(shoal_lock_try(b), SHOAL_EDEADLK);
    /* Another program, sharing nothing but the name. */
    assert_int_equal(t_wait(t_spawn_self("try-held", NULL)), 0);
    /* Closing a mapping of a lock this process holds would corrupt its robust list. */
    assert_int_equal(shoal_lock_close(a), SHOAL_EBUSY);
    T_OK(shoal_lock_release(b));
    assert_int_equal(t_wait(t_spawn_self("take", NULL)), 0);
    T_OK(shoal_lock_close(a));
    T_OK(shoal_lock_close(b));

    /* Lock and RLock are different kinds. */
    assert_int_equal(shoal_rlock_open(&r, "named-lock", SHOAL_OPEN, NULL), SHOAL_EKIND);
    assert_non_null(strstr(shoal_errdetail(), "named-lock"));
    T_OK(shoal_rlock_open(&r, "named-rlock", SHOAL_CREATE, NULL));
    T_OK(shoal_lock_acquire(r, SHOAL_FOREVER));
    T_OK(shoal_lock_acquire(r, SHOAL_FOREVER));
    T_OK(shoal_lock_release(r));
    T_OK(shoal_lock_release(r));
    T_OK(shoal_lock_close(r));
    assert_int_equal(shoal_lock_open(&a, "named-rlock", SHOAL_OPEN, NULL), SHOAL_EKIND);
    shoal_sem *s;
    assert_int_equal(shoal_sem_open(&s, "named-lock", SHOAL_OPEN, 1, NULL), SHOAL_EKIND);
    T_OK(shoal_unlink("named-lock", NULL));
    T_OK(shoal_unlink("named-rlock", NULL));
}

static void test_bad_input(void **state)
{
    (void)state;
    shoal_lock zero;
    memset(&zero, 0, sizeof(zero));
    assert_int_equal(shoal_lock_init(NULL, 0), SHOAL_EINVAL);
    assert_int_equal(shoal_lock_acquire(NULL, SHOAL_FOREVER), SHOAL_EINVAL);
    assert_int_equal(shoal_lock_acquire(&zero, SHOAL_FOREVER), SHOAL_EINVAL);
    assert_non_null(strstr(shoal_errdetail(), "not initialised"));
    assert_int_equal(shoal_lock_try(&zero), SHOAL_EINVAL);
    assert_int_equal(shoal_lock_release(&zero), SHOAL_EINVAL);
    assert_int_equal(shoal_lock_release(NULL), SHOAL_EINVAL);
    assert_int_equal(shoal_lock_locked(NULL), 0);
    int rec = 7;
    int32_t owner = 7;
    uint32_t depth = 7;
    shoal_lock_state(NULL, &rec, &owner, &depth);
    assert_int_equal(rec + owner + (int)depth, 0);
    shoal_lock_state(&sh->lock, NULL, NULL, NULL); /* NULL outputs are fine */
    /* An embedded lock is not closed. */
    assert_int_equal(shoal_lock_close(&sh->lock), SHOAL_EINVAL);
    assert_int_equal(shoal_lock_close(NULL), SHOAL_EINVAL);
    shoal_lock *l;
    assert_int_equal(shoal_lock_open(NULL, "x", SHOAL_CREATE, NULL), SHOAL_EINVAL);
    assert_int_equal(shoal_lock_open(&l, "bad/name", SHOAL_CREATE, NULL), SHOAL_ENAME);
    assert_int_equal(shoal_lock_open(&l, "x", 42, NULL), SHOAL_EINVAL);
}

int main(int argc, char **argv)
{
    t_setup_root();
    if (argc > 1)
        return exec_child_main(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_cross_process_try_timeout_and_handoff),
        cmocka_unit_test(test_other_thread_cannot_release),
        cmocka_unit_test(test_rlock),
        cmocka_unit_test(test_contended_handoff),
        cmocka_unit_test(test_named),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
