/* test_condition.c — Condition between processes: wait/notify/notify_all with a
 * predicate, timeouts, RLock depth, ownership errors, named conditions, bad input, and
 * waits a signal interrupts (taking the lock back after a timeout or a holder's death:
 * test_condition_relock.c). */
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>

#include "internal.h"
#include "testutil.h"

struct shared {
    shoal_lock lock;
    shoal_lock rlock;
    shoal_cond cond;
    _Atomic int waiting; /* children that reached their wait */
    _Atomic int woken;   /* children that got past it */
    int tickets;         /* predicate, guarded by lock */
    int items;           /* producer/consumer count, guarded by lock */
    int consumed;
};

static struct shared *sh;

static int setup(void **state)
{
    (void)state;
    sh = t_shared_alloc(sizeof(*sh));
    if (shoal_lock_init(&sh->lock, 0) || shoal_lock_init(&sh->rlock, 1) ||
        shoal_cond_init(&sh->cond))
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    munmap(sh, sizeof(*sh));
    return 0;
}

static void reset_counts(void)
{
    atomic_store(&sh->waiting, 0);
    atomic_store(&sh->woken, 0);
    sh->tickets = 0;
}

static void test_timeout_keeps_lock(void **state)
{
    (void)state;
    int32_t owner;
    T_OK(shoal_lock_acquire(&sh->lock, SHOAL_FOREVER));
    int64_t t0 = shoal__now_ns();
    assert_int_equal(shoal_cond_wait(&sh->cond, &sh->lock, SHOAL_MS(50)),
                     SHOAL_ETIMEDOUT);
    int64_t took = shoal__now_ns() - t0;
    assert_true(took >= SHOAL_MS(50) && took < SHOAL_SEC(2));
    /* Re-acquired even on timeout. */
    shoal_lock_state(&sh->lock, NULL, &owner, NULL);
    assert_int_equal(owner, shoal__tid());
    /* Timeout 0: a poll that releases and re-takes the lock. */
    assert_int_equal(shoal_cond_wait(&sh->cond, &sh->lock, SHOAL_NOWAIT),
                     SHOAL_ETIMEDOUT);
    shoal_lock_state(&sh->lock, NULL, &owner, NULL);
    assert_int_equal(owner, shoal__tid());
    T_OK(shoal_lock_release(&sh->lock));
    /* Notify with nobody waiting is harmless. */
    T_OK(shoal_cond_notify(&sh->cond, 1));
    T_OK(shoal_cond_notify(&sh->cond, 0));
    T_OK(shoal_cond_notify_all(&sh->cond));
}

/* Child: waits for a ticket, takes it. */
static int ticket_waiter(void *arg)
{
    (void)arg;
    if (shoal_lock_acquire(&sh->lock, SHOAL_SEC(10)))
        return 10;
    atomic_fetch_add(&sh->waiting, 1);
    int64_t end = shoal__now_ns() + SHOAL_SEC(10);
    while (sh->tickets == 0) {
        int64_t left = end - shoal__now_ns(); /* negative would mean forever */
        int rc = shoal_cond_wait(&sh->cond, &sh->lock, left > 0 ? left : 0);
        if (rc == SHOAL_ETIMEDOUT) {
            shoal_lock_release(&sh->lock);
            return 11;
        }
        if (rc)
            return 12;
    }
    sh->tickets--;
    atomic_fetch_add(&sh->woken, 1);
    return shoal_lock_release(&sh->lock) ? 13 : 0;
}

static void hand_out(int n, bool all)
{
    T_OK(shoal_lock_acquire(&sh->lock, SHOAL_SEC(10)));
    sh->tickets += n;
    T_OK(all ? shoal_cond_notify_all(&sh->cond) : shoal_cond_notify(&sh->cond, n));
    T_OK(shoal_lock_release(&sh->lock));
}

static void test_notify_one_then_all(void **state)
{
    (void)state;
    enum { N = 4 };
    reset_counts();
    pid_t pids[N];
    for (int i = 0; i < N; i++)
        pids[i] = t_fork(ticket_waiter, NULL);
    assert_true(t_wait_atleast(&sh->waiting, N, SHOAL_SEC(10)));
    usleep(30000); /* all asleep in the kernel */
    hand_out(1, false);
    assert_true(t_wait_atleast(&sh->woken, 1, SHOAL_SEC(5)));
    usleep(30000);
    assert_int_equal(atomic_load(&sh->woken), 1); /* one ticket, one taker */
    hand_out(1, false);
    assert_true(t_wait_atleast(&sh->woken, 2, SHOAL_SEC(5)));
    hand_out(N - 2, true);
    for (int i = 0; i < N; i++)
        assert_int_equal(t_wait(pids[i]), 0);
    assert_int_equal(atomic_load(&sh->woken), N);
    assert_int_equal(sh->tickets, 0);
}

/* Bounded-buffer style: producer and consumers, all in separate processes. */
enum { CONSUMERS = 3, ITEMS = 3000 };

static int consumer(void *arg)
{
    (void)arg;
    for (;;) {
        if (shoal_lock_acquire(&sh->lock, SHOAL_SEC(10)))
            return 10;
        while (sh->items == 0 && sh->consumed < ITEMS) {
            int64_t t0 = shoal__now_ns();
            if (shoal_cond_wait(&sh->cond, &sh->lock, SHOAL_SEC(10)) != 0)
                return 11;
            /* Items keep coming: a long sleep means a notify did not wake us. */
            if (shoal__now_ns() - t0 > SHOAL_SEC(3))
                return 12;
        }
        if (sh->consumed >= ITEMS) {
            shoal_lock_release(&sh->lock);
            return 0;
        }
        sh->items--;
        sh->consumed++;
        if (sh->consumed == ITEMS)
            shoal_cond_notify_all(&sh->cond); /* let the others see the end */
        shoal_lock_release(&sh->lock);
    }
}

static void test_producer_consumers(void **state)
{
    (void)state;
    sh->items = sh->consumed = 0;
    pid_t pids[CONSUMERS];
    for (int i = 0; i < CONSUMERS; i++)
        pids[i] = t_fork(consumer, NULL);
    for (int i = 0; i < ITEMS; i++) {
        T_OK(shoal_lock_acquire(&sh->lock, SHOAL_SEC(10)));
        sh->items++;
        T_OK(shoal_cond_notify(&sh->cond, 1));
        T_OK(shoal_lock_release(&sh->lock));
        if ((i & 63) == 0)
            usleep(100); /* let consumers fall asleep now and then */
    }
    for (int i = 0; i < CONSUMERS; i++)
        assert_int_equal(t_wait(pids[i]), 0);
    assert_int_equal(sh->consumed, ITEMS);
    assert_int_equal(sh->items, 0);
}

/* Child: tries to take the RLock while the parent waits on the condition. */
static int rlock_taker(void *arg)
{
    (void)arg;
    if (!t_wait_atleast(&sh->waiting, 1, SHOAL_SEC(10)))
        return 10;
    /* The parent held it twice and is now waiting: it must be fully released. */
    if (shoal_lock_acquire(&sh->rlock, SHOAL_SEC(5)))
        return 11;
    sh->tickets = 1;
    shoal_cond_notify(&sh->cond, 1);
    return shoal_lock_release(&sh->rlock) ? 12 : 0;
}

static void test_rlock_depth_restored(void **state)
{
    (void)state;
    reset_counts();
    pid_t pid = t_fork(rlock_taker, NULL);
    T_OK(shoal_lock_acquire(&sh->rlock, SHOAL_FOREVER));
    T_OK(shoal_lock_acquire(&sh->rlock, SHOAL_FOREVER));
    atomic_store(&sh->waiting, 1);
    int64_t t0 = shoal__now_ns();
    while (sh->tickets == 0)
        T_OK(shoal_cond_wait(&sh->cond, &sh->rlock, SHOAL_SEC(10)));
    assert_true(shoal__now_ns() - t0 < SHOAL_SEC(5)); /* woken, not timed out */
    uint32_t depth;
    int32_t owner;
    shoal_lock_state(&sh->rlock, NULL, &owner, &depth);
    assert_int_equal(owner, shoal__tid());
    assert_int_equal(depth, 2);
    T_OK(shoal_lock_release(&sh->rlock));
    T_OK(shoal_lock_release(&sh->rlock));
    assert_int_equal(shoal_lock_locked(&sh->rlock), 0);
    assert_int_equal(t_wait(pid), 0);
}

static int hold_lock(void *arg)
{
    (void)arg;
    if (shoal_lock_acquire(&sh->lock, SHOAL_SEC(10)))
        return 10;
    atomic_store(&sh->waiting, 1);
    if (!t_wait_atleast(&sh->woken, 1, SHOAL_SEC(10)))
        return 11;
    return shoal_lock_release(&sh->lock) ? 12 : 0;
}

static void test_wait_needs_the_lock(void **state)
{
    (void)state;
    assert_int_equal(shoal_cond_wait(&sh->cond, &sh->lock, SHOAL_MS(10)), SHOAL_EPERM);
    assert_non_null(strstr(shoal_errdetail(), "not held"));
    /* Held by another process is no better. */
    reset_counts();
    pid_t pid = t_fork(hold_lock, NULL);
    assert_true(t_wait_atleast(&sh->waiting, 1, SHOAL_SEC(10)));
    assert_int_equal(shoal_cond_wait(&sh->cond, &sh->lock, SHOAL_MS(10)), SHOAL_EPERM);
    atomic_store(&sh->woken, 1);
    assert_int_equal(t_wait(pid), 0);
    assert_int_equal(shoal_lock_locked(&sh->lock), 0);
}

static int exec_child_main(const char *what)
{
    shoal_cond *c;
    shoal_lock *l;
    shoal_event *e;
    if (!strcmp(what, "notifier")) {
        if (shoal_cond_open(&c, "named-cond", SHOAL_OPEN, NULL) ||
            shoal_lock_open(&l, "named-cond-lock", SHOAL_OPEN, NULL) ||
            shoal_event_open(&e, "named-cond-ready", SHOAL_OPEN, NULL))
            return 20;
        if (shoal_event_wait(e, SHOAL_SEC(10)))
            return 21;
        /* The waiter released the lock to wait, so we can take it. */
        if (shoal_lock_acquire(l, SHOAL_SEC(10)))
            return 22;
        shoal_cond_notify_all(c);
        shoal_lock_release(l);
        shoal_cond_close(c);
        shoal_lock_close(l);
        shoal_event_close(e);
        return 0;
    }
    return 99;
}

static void test_named(void **state)
{
    (void)state;
    shoal_cond *c, *c2;
    shoal_lock *l;
    shoal_event *e;
    assert_int_equal(shoal_cond_open(&c, "named-cond", SHOAL_OPEN, NULL), SHOAL_ENOENT);
    T_OK(shoal_cond_open(&c, "named-cond", SHOAL_CREATE, NULL));
    T_OK(shoal_cond_open(&c2, "named-cond", SHOAL_OPEN_OR_CREATE, NULL));
    T_OK(shoal_lock_open(&l, "named-cond-lock", SHOAL_CREATE, NULL));
    T_OK(shoal_event_open(&e, "named-cond-ready", SHOAL_CREATE, NULL));
    pid_t pid = t_spawn_self("notifier", NULL);
    T_OK(shoal_lock_acquire(l, SHOAL_FOREVER));
    T_OK(shoal_event_set(e));
    /* The notifier can only notify while we are inside the wait (it needs the lock). */
    int64_t t0 = shoal__now_ns();
    T_OK(shoal_cond_wait(c2, l, SHOAL_SEC(10)));
    assert_true(shoal__now_ns() - t0 < SHOAL_SEC(5)); /* woken, not timed out */
    T_OK(shoal_lock_release(l));
    assert_int_equal(t_wait(pid), 0);
    assert_int_equal(shoal_cond_wait(c, l, SHOAL_MS(1)), SHOAL_EPERM);
    assert_non_null(strstr(shoal_errdetail(), "named-cond"));
    T_OK(shoal_cond_close(c));
    T_OK(shoal_cond_close(c2));
    T_OK(shoal_lock_close(l));
    T_OK(shoal_event_close(e));
    shoal_barrier *b;
    assert_int_equal(shoal_cond_open(&c, "named-cond-lock", SHOAL_OPEN, NULL),
                     SHOAL_EKIND);
    assert_int_equal(shoal_barrier_open(&b, "named-cond", SHOAL_OPEN, 2, NULL),
                     SHOAL_EKIND);
    T_OK(shoal_unlink("named-cond", NULL));
    T_OK(shoal_unlink("named-cond-lock", NULL));
    T_OK(shoal_unlink("named-cond-ready", NULL));
}

static void test_bad_input(void **state)
{
    (void)state;
    shoal_cond zero, *c;
    memset(&zero, 0, sizeof(zero));
    assert_int_equal(shoal_cond_init(NULL), SHOAL_EINVAL);
    T_OK(shoal_lock_acquire(&sh->lock, SHOAL_FOREVER));
    assert_int_equal(shoal_cond_wait(&zero, &sh->lock, SHOAL_MS(1)), SHOAL_EINVAL);
    assert_non_null(strstr(shoal_errdetail(), "not initialised"));
    assert_int_equal(shoal_cond_wait(&sh->cond, NULL, SHOAL_MS(1)), SHOAL_EINVAL);
    assert_int_equal(shoal_cond_wait(NULL, &sh->lock, SHOAL_MS(1)), SHOAL_EINVAL);
    T_OK(shoal_lock_release(&sh->lock));
    shoal_lock zlock;
    memset(&zlock, 0, sizeof(zlock));
    assert_int_equal(shoal_cond_wait(&sh->cond, &zlock, SHOAL_MS(1)), SHOAL_EPERM);
    assert_int_equal(shoal_cond_notify(&zero, 1), SHOAL_EINVAL);
    assert_int_equal(shoal_cond_notify_all(NULL), SHOAL_EINVAL);
    assert_int_equal(shoal_cond_close(&sh->cond), SHOAL_EINVAL); /* embedded */
    assert_int_equal(shoal_cond_open(NULL, "x", SHOAL_CREATE, NULL), SHOAL_EINVAL);
    assert_int_equal(shoal_cond_open(&c, "", SHOAL_CREATE, NULL), SHOAL_ENAME);
}

static void on_signal(int sig)
{
    (void)sig;
}

static void catch_sigusr1(void)
{
    struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
}

/* Child: an untimed interruptible wait ended by a signal comes back with the lock. */
static int intr_waiter(void *arg)
{
    (void)arg;
    catch_sigusr1();
    if (shoal_lock_acquire(&sh->rlock, SHOAL_SEC(10)) ||
        shoal_lock_acquire(&sh->rlock, SHOAL_SEC(10)))
        return 10;
    atomic_fetch_add(&sh->waiting, 1);
    int rc = shoal_cond_wait_intr(&sh->cond, &sh->rlock, SHOAL_FOREVER);
    int32_t owner;
    uint32_t depth;
    shoal_lock_state(&sh->rlock, NULL, &owner, &depth);
    if (rc != SHOAL_EINTR)
        return 11;
    if (owner != shoal__tid() || depth != 2)
        return 12;
    shoal_lock_release(&sh->rlock);
    shoal_lock_release(&sh->rlock);
    atomic_fetch_add(&sh->woken, 1);
    return 0;
}

static void test_wait_intr_returns_on_signal(void **state)
{
    (void)state;
    reset_counts();
    pid_t pid = t_fork(intr_waiter, NULL);
    assert_true(t_wait_atleast(&sh->waiting, 1, SHOAL_SEC(10)));
    /* A signal that lands while the waiter is not asleep in the kernel (its spin, the
     * instants between two sleep slices) is only seen with the next one: repeat it. */
    bool woken = false;
    for (int i = 0; i < 100 && !woken; i++) {
        usleep(100 * 1000);
        kill(pid, SIGUSR1);
        woken = t_wait_atleast(&sh->woken, 1, SHOAL_MS(100));
    }
    if (!woken)
        t_kill(pid);
    assert_true(woken);
    assert_int_equal(t_wait(pid), 0);
    assert_int_equal(shoal__cond_waiters(&sh->cond), 0);
}

/* Child: takes one ticket with untimed interruptible waits, going back to sleep after
 * every signal. */
static int storm_waiter(void *arg)
{
    (void)arg;
    catch_sigusr1();
    if (shoal_lock_acquire(&sh->lock, SHOAL_SEC(10)))
        return 10;
    atomic_fetch_add(&sh->waiting, 1);
    while (sh->tickets == 0) {
        int rc = shoal_cond_wait_intr(&sh->cond, &sh->lock, SHOAL_FOREVER);
        if (rc != 0 && rc != SHOAL_EINTR)
            return 11;
    }
    sh->tickets--;
    atomic_fetch_add(&sh->woken, 1);
    return shoal_lock_release(&sh->lock) ? 13 : 0;
}

/* Signals raining on the waiters while tickets are handed out one notify(1) each: no
 * notification is dropped, so every untimed waiter gets its ticket. */
static void test_signal_storm_loses_no_notify(void **state)
{
    (void)state;
    enum { N = 4 };
    reset_counts();
    pid_t pids[N];
    for (int i = 0; i < N; i++)
        pids[i] = t_fork(storm_waiter, NULL);
    assert_true(t_wait_atleast(&sh->waiting, N, SHOAL_SEC(10)));
    for (int t = 0; t < N; t++) {
        for (int k = 0; k < 20; k++) {
            for (int i = 0; i < N; i++)
                kill(pids[i], SIGUSR1);
            usleep(500);
        }
        hand_out(1, false);
    }
    bool all = t_wait_atleast(&sh->woken, N, SHOAL_SEC(20));
    if (!all)
        for (int i = 0; i < N; i++)
            t_kill(pids[i]);
    assert_true(all);
    for (int i = 0; i < N; i++)
        assert_int_equal(t_wait(pids[i]), 0);
    assert_int_equal(sh->tickets, 0);
}

int main(int argc, char **argv)
{
    t_setup_root();
    if (argc > 1)
        return exec_child_main(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timeout_keeps_lock),
        cmocka_unit_test(test_notify_one_then_all),
        cmocka_unit_test(test_producer_consumers),
        cmocka_unit_test(test_rlock_depth_restored),
        cmocka_unit_test(test_wait_needs_the_lock),
        cmocka_unit_test(test_named),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_wait_intr_returns_on_signal),
        cmocka_unit_test(test_signal_storm_loses_no_notify),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
