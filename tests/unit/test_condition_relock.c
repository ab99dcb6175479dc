/* test_condition_relock.c — a Condition wait always comes back holding its lock, at the
 * caller's depth: after a timeout on a lock another process keeps past it, after the
 * lock's holder was SIGKILLed meanwhile (SHOAL_EOWNERDEAD), and a notify racing a
 * timeout is never lost (a waiter that timed out leaves it to the other waiter); only
 * a lock damaged meanwhile is not taken back. */
#include <pthread.h>
#include <stdatomic.h>

#include "internal.h"
#include "testutil.h"

struct shared {
    shoal_lock lock;
    shoal_lock rlock;
    shoal_cond cond;
    _Atomic int release; /* tells a holder child to release the lock */
    _Atomic int notify;  /* tells a holder child to notify before stopping */
};

static struct shared *sh; /* shared with the forked children, for the whole run */

/* A timed waiter's timeout in the tests where another process must take the lock
 * before it passes (a fork is far quicker, even on a loaded machine). */
#define TIMEOUT SHOAL_MS(500)

/* One waiting thread: takes `lock` `depth` times, waits, records what it got back. */
struct waiter {
    shoal_lock *lock;
    uint32_t depth;
    shoal_duration timeout;
    pthread_t th;
    int rc;
    bool held;           /* this thread held the lock when the wait returned */
    uint32_t held_depth; /* at this depth */
    int64_t start_ns;    /* when the wait began */
    int64_t took_ns;
    char detail[256];  /* shoal_errdetail() after the wait */
    _Atomic int ready; /* holds the lock and is about to wait */
    _Atomic int done;
};

static void *waiter_main(void *arg)
{
    struct waiter *w = arg;
    for (uint32_t i = 0; i < w->depth; i++)
        if (shoal_lock_acquire(w->lock, SHOAL_SEC(10)) != 0)
            return NULL;
    w->start_ns = shoal__now_ns();
    atomic_store(&w->ready, 1);
    w->rc = shoal_cond_wait(&sh->cond, w->lock, w->timeout);
    w->took_ns = shoal__now_ns() - w->start_ns;
    snprintf(w->detail, sizeof(w->detail), "%s", shoal_errdetail());
    int32_t owner;
    shoal_lock_state(w->lock, NULL, &owner, &w->held_depth);
    w->held = owner == shoal__tid();
    for (uint32_t i = 0; i < w->held_depth && w->held; i++)
        shoal_lock_release(w->lock);
    atomic_store(&w->done, 1);
    return NULL;
}

static void start_waiter(struct waiter *w, shoal_lock *lock, uint32_t depth,
                         shoal_duration timeout)
{
    *w = (struct waiter){.lock = lock, .depth = depth, .timeout = timeout};
    assert_int_equal(pthread_create(&w->th, NULL, waiter_main, w), 0);
    assert_true(t_wait_atleast(&w->ready, 1, SHOAL_SEC(10)));
}

/* Sleeps until past the waiter's timeout (by a margin). */
static void sleep_past_timeout(const struct waiter *w)
{
    int64_t left = w->start_ns + w->timeout + SHOAL_MS(300) - shoal__now_ns();
    if (left > 0)
        usleep((useconds_t)(left / 1000));
}

/* Until the waiter is registered with the condition (it released the lock). */
static void wait_registered(int n)
{
    int64_t end = shoal__now_ns() + SHOAL_SEC(10);
    while ((int)shoal__cond_waiters(&sh->cond) < n && shoal__now_ns() < end)
        usleep(200);
    assert_true((int)shoal__cond_waiters(&sh->cond) >= n);
}

/* Child: takes the lock (the waiter released it to wait), optionally notifies, and
 * keeps it until told to release it. */
static int hold_until_told(void *arg)
{
    shoal_lock *lock = arg;
    if (shoal_lock_acquire(lock, SHOAL_SEC(10)))
        return 10;
    if (atomic_load(&sh->notify))
        shoal_cond_notify(&sh->cond, 1);
    if (!t_wait_atleast(&sh->release, 1, SHOAL_SEC(20)))
        return 11;
    return shoal_lock_release(lock) ? 12 : 0;
}

/* A live process keeps the lock past the waiter's timeout: the wait returns
 * SHOAL_ETIMEDOUT once the lock is free again, holding it at the depth it had. */
static void timeout_on_kept_lock(shoal_lock *lock, uint32_t depth)
{
    atomic_store(&sh->release, 0);
    atomic_store(&sh->notify, 0);
    struct waiter w;
    start_waiter(&w, lock, depth, TIMEOUT);
    wait_registered(1);
    pid_t holder = t_fork(hold_until_told, lock);
    int64_t end = shoal__now_ns() + SHOAL_SEC(10);
    while (!shoal_lock_locked(lock) && shoal__now_ns() < end)
        usleep(200);
    sleep_past_timeout(&w);
    assert_int_equal(atomic_load(&w.done), 0); /* still waiting for the lock */
    atomic_store(&sh->release, 1);
    assert_int_equal(t_wait(holder), 0);
    pthread_join(w.th, NULL);
    assert_int_equal(w.rc, SHOAL_ETIMEDOUT);
    assert_true(w.held);
    assert_int_equal(w.held_depth, depth);
    assert_true(w.took_ns >= TIMEOUT + SHOAL_MS(300));
    assert_int_equal(shoal_lock_locked(lock), 0);
    assert_int_equal(shoal__cond_waiters(&sh->cond), 0);
}

static void test_timeout_holds_lock(void **state)
{
    (void)state;
    timeout_on_kept_lock(&sh->lock, 1);
}

static void test_timeout_holds_rlock_depth_1(void **state)
{
    (void)state;
    timeout_on_kept_lock(&sh->rlock, 1);
}

static void test_timeout_holds_rlock_depth_2(void **state)
{
    (void)state;
    timeout_on_kept_lock(&sh->rlock, 2);
}

/* Child: takes the lock and stops right there (pause point lock.held), optionally
 * after notifying, to be SIGKILLed holding it. */
static int take_and_stop(void *arg)
{
    shoal_lock *lock = arg;
    if (atomic_load(&sh->notify)) {
        if (shoal_lock_acquire(lock, SHOAL_SEC(10)))
            return 10;
        shoal_cond_notify(&sh->cond, 1);
        raise(SIGSTOP); /* killed here, holding the lock */
        return 11;
    }
    shoal_lock_acquire(lock, SHOAL_SEC(10)); /* killed at lock.held */
    return 12;
}

/* The lock's holder is SIGKILLed while the waiter waits to take it back: the wait
 * returns SHOAL_EOWNERDEAD holding the lock at the caller's depth, after a timeout
 * (timed) or a notify (untimed). */
static void holder_killed(shoal_duration timeout, bool notify)
{
    atomic_store(&sh->notify, notify);
    struct waiter w;
    start_waiter(&w, &sh->rlock, 2, timeout);
    wait_registered(1);
    pid_t holder = t_fork_paused(notify ? NULL : "lock.held", take_and_stop, &sh->rlock);
    assert_true(holder > 0);
    if (timeout != SHOAL_FOREVER)
        sleep_past_timeout(&w); /* it waits for the lock now */
    else
        usleep(100 * 1000); /* woken, it waits for the lock now */
    assert_int_equal(atomic_load(&w.done), 0);
    t_kill(holder);
    pthread_join(w.th, NULL);
    assert_int_equal(w.rc, SHOAL_EOWNERDEAD);
    assert_true(w.held);
    assert_int_equal(w.held_depth, 2);
    assert_int_equal(shoal_lock_locked(&sh->rlock), 0);
    assert_int_equal(shoal__cond_waiters(&sh->cond), 0);
    /* The lock is usable again as usual. */
    T_OK(shoal_lock_acquire(&sh->rlock, SHOAL_SEC(1)));
    T_OK(shoal_lock_release(&sh->rlock));
}

static void test_holder_killed_after_timeout(void **state)
{
    (void)state;
    holder_killed(TIMEOUT, false);
}

static void test_holder_killed_after_notify(void **state)
{
    (void)state;
    holder_killed(SHOAL_FOREVER, true);
}

/* A short waiter's timeout and a notify(1) land at about the same instant, next to a
 * patient waiter. Whatever the order, the notification is not lost: if the short
 * waiter timed out, the patient one gets it (no second notify is sent). Both come back
 * holding the lock. */
static void test_notify_racing_timeout(void **state)
{
    (void)state;
    enum { ROUNDS = 150 };
    int timed_out = 0, notified = 0;
    for (int i = 0; i < ROUNDS; i++) {
        struct waiter patient, quick;
        start_waiter(&patient, &sh->lock, 1, SHOAL_SEC(20));
        wait_registered(1);
        start_waiter(&quick, &sh->lock, 1, SHOAL_MS(1));
        /* Notify from 0 to 2 ms after the quick waiter began: around its timeout. */
        int64_t at = shoal__now_ns() + (i % 21) * 100000;
        while (shoal__now_ns() < at)
            ;
        T_OK(shoal_lock_acquire(&sh->lock, SHOAL_SEC(10)));
        T_OK(shoal_cond_notify(&sh->cond, 1));
        T_OK(shoal_lock_release(&sh->lock));
        pthread_join(quick.th, NULL);
        assert_true(quick.held);
        if (quick.rc == SHOAL_ETIMEDOUT) {
            timed_out++;
        } else {
            assert_int_equal(quick.rc, 0);
            notified++;
            T_OK(shoal_cond_notify(&sh->cond, 1)); /* the patient one's turn */
        }
        pthread_join(patient.th, NULL);
        assert_int_equal(patient.rc, 0);
        assert_true(patient.held);
        assert_true(patient.took_ns < SHOAL_SEC(10)); /* woken, not timed out */
    }
    print_message("quick waiter: %d timed out, %d notified\n", timed_out, notified);
    assert_int_equal(timed_out + notified, ROUNDS);
    assert_int_equal(shoal__cond_waiters(&sh->cond), 0);
    assert_int_equal(shoal_lock_locked(&sh->lock), 0);
}

/* A waiter whose lock is damaged while it waits cannot take it back: it returns
 * SHOAL_ECORRUPT without it, and a notification it took passes to the other waiter. */
static void test_damaged_lock_is_not_taken_back(void **state)
{
    (void)state;
    struct waiter broken, patient;
    start_waiter(&patient, &sh->rlock, 1, SHOAL_SEC(20));
    wait_registered(1);
    start_waiter(&broken, &sh->lock, 1, SHOAL_SEC(1));
    wait_registered(2);
    memset(&sh->lock, 0xa5, sizeof(sh->lock)); /* released for the wait: nobody's */
    T_OK(shoal_cond_notify(&sh->cond, 1));     /* to either: the patient one gets it */
    pthread_join(broken.th, NULL);
    pthread_join(patient.th, NULL);
    assert_int_equal(broken.rc, SHOAL_ECORRUPT);
    assert_false(broken.held);
    assert_non_null(strstr(broken.detail, "could not take its lock back"));
    assert_int_equal(patient.rc, 0);
    assert_true(patient.held);
    assert_true(patient.took_ns < SHOAL_SEC(10)); /* woken, not timed out */
    assert_int_equal(shoal__cond_waiters(&sh->cond), 0);
    T_OK(shoal_lock_init(&sh->lock, 0));
}

int main(void)
{
    t_setup_root();
    sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1,
              0);
    if (sh == MAP_FAILED || shoal_lock_init(&sh->lock, 0) ||
        shoal_lock_init(&sh->rlock, 1) || shoal_cond_init(&sh->cond)) {
        fprintf(stderr, "setting up: %s\n", shoal_errdetail());
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timeout_holds_lock),
        cmocka_unit_test(test_timeout_holds_rlock_depth_1),
        cmocka_unit_test(test_timeout_holds_rlock_depth_2),
        cmocka_unit_test(test_holder_killed_after_timeout),
        cmocka_unit_test(test_holder_killed_after_notify),
        cmocka_unit_test(test_notify_racing_timeout),
        cmocka_unit_test(test_damaged_lock_is_not_taken_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
