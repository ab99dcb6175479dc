/* test_sync_crash.c — processes SIGKILLed while holding or waiting on a Lock, RLock,
 * Condition, Semaphore, Barrier or Event: the survivors get the lock with
 * SHOAL_EOWNERDEAD promptly, and nothing hangs beyond its timeout. */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>

#include "internal.h"
#include "testutil.h"

/* Owner death must be reported within this long (it takes microseconds). */
#define PROMPT SHOAL_SEC(1)

struct shared {
    shoal_lock lock;
    shoal_lock rlock;
    shoal_cond cond;
    shoal_sem sem;
    shoal_barrier barrier;
    shoal_event ev;
    _Atomic int waiting;
    int tickets; /* guarded by lock */
    int64_t t_ns;
    int rc;
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

static int reset_shared(void **state)
{
    (void)state;
    memset(sh, 0, sizeof(*sh));
    if (shoal_lock_init(&sh->lock, 0) || shoal_lock_init(&sh->rlock, 1) ||
        shoal_cond_init(&sh->cond) || shoal_event_init(&sh->ev))
        return -1;
    return 0;
}

/* Forks fn and returns once the child has stopped itself (SIGSTOP) at `point`. */
static pid_t fork_stopped_at(const char *point, int (*fn)(void *), void *arg)
{
    pid_t pid = t_fork_paused(point, fn, arg);
    assert_true(pid > 0);
    return pid;
}

static void wait_asleep(pid_t pid)
{
    assert_true(t_wait_asleep(pid, SHOAL_SEC(10)));
}

/* ---- Lock and RLock ---------------------------------------------------------------- */

static int take_lock(void *arg)
{
    shoal_lock *l = arg;
    int rc = shoal_lock_acquire(l, SHOAL_SEC(10)); /* stops at "lock.held" */
    return rc == 0 ? 0 : 10;
}

static void assert_owner_died_then_usable(shoal_lock *l)
{
    int64_t t0 = shoal__now_ns();
    assert_int_equal(shoal_lock_acquire(l, SHOAL_SEC(10)), SHOAL_EOWNERDEAD);
    assert_true(shoal__now_ns() - t0 < PROMPT);
    assert_non_null(strstr(shoal_errdetail(), "died"));
    int32_t owner;
    uint32_t depth;
    shoal_lock_state(l, NULL, &owner, &depth);
    assert_int_equal(owner, shoal__tid());
    assert_int_equal(depth, 1);
    T_OK(shoal_lock_release(l));
    assert_int_equal(shoal_lock_locked(l), 0);
    /* The lock is as good as new: the death is reported once. */
    T_OK(shoal_lock_try(l));
    T_OK(shoal_lock_release(l));
    T_OK(shoal_lock_acquire(l, SHOAL_MS(100)));
    T_OK(shoal_lock_release(l));
}

static void test_lock_holder_killed(void **state)
{
    (void)state;
    pid_t pid = fork_stopped_at("lock.held", take_lock, &sh->lock);
    assert_int_equal(shoal_lock_locked(&sh->lock), 1);
    assert_int_equal(shoal_lock_try(&sh->lock), SHOAL_EAGAIN);
    int32_t owner;
    shoal_lock_state(&sh->lock, NULL, &owner, NULL);
    assert_int_equal(owner, pid);
    t_kill(pid);
    assert_owner_died_then_usable(&sh->lock);
}

/* Child: sleeps in acquire until the holder dies. */
static int wait_for_lock(void *arg)
{
    shoal_lock *l = arg;
    atomic_fetch_add(&sh->waiting, 1);
    int rc = shoal_lock_acquire(l, SHOAL_SEC(10));
    sh->t_ns = shoal__now_ns();
    sh->rc = rc;
    if (rc != SHOAL_EOWNERDEAD)
        return 10;
    return shoal_lock_release(l) ? 11 : 0;
}

static void test_sleeping_waiter_learns_of_death(void **state)
{
    (void)state;
    pid_t holder = fork_stopped_at("lock.held", take_lock, &sh->lock);
    pid_t waiter = t_fork(wait_for_lock, &sh->lock);
    assert_true(t_wait_atleast(&sh->waiting, 1, SHOAL_SEC(10)));
    wait_asleep(waiter);
    int64_t killed = shoal__now_ns();
    t_kill(holder);
    assert_int_equal(t_wait(waiter), 0);
    assert_true(sh->t_ns - killed < PROMPT);
    assert_int_equal(shoal_lock_locked(&sh->lock), 0);
    T_OK(shoal_lock_try(&sh->lock));
    T_OK(shoal_lock_release(&sh->lock));
}

static int take_rlock_twice(void *arg)
{
    (void)arg;
    if (shoal_lock_acquire(&sh->rlock, SHOAL_SEC(10)) ||
        shoal_lock_acquire(&sh->rlock, SHOAL_SEC(10)))
        return 10;
    raise(SIGSTOP); /* killed here, holding it twice */
    return 11;
}

static void test_rlock_held_twice_killed(void **state)
{
    (void)state;
    pid_t pid = fork_stopped_at(NULL, take_rlock_twice, NULL);
    uint32_t depth;
    int32_t owner;
    shoal_lock_state(&sh->rlock, NULL, &owner, &depth);
    assert_int_equal(owner, pid);
    t_kill(pid);
    /* One release frees it: the dead holder's two levels are not inherited. */
    assert_owner_died_then_usable(&sh->rlock);
    /* And recursion works as usual afterwards. */
    T_OK(shoal_lock_acquire(&sh->rlock, SHOAL_FOREVER));
    T_OK(shoal_lock_acquire(&sh->rlock, SHOAL_FOREVER));
    shoal_lock_state(&sh->rlock, NULL, NULL, &depth);
    assert_int_equal(depth, 2);
    T_OK(shoal_lock_release(&sh->rlock));
    T_OK(shoal_lock_release(&sh->rlock));
    assert_int_equal(shoal_lock_locked(&sh->rlock), 0);
}

static void test_waiter_killed_in_acquire(void **state)
{
    (void)state;
    /* A process that dies while queued for the lock leaves no trace on it. */
    T_OK(shoal_lock_acquire(&sh->lock, SHOAL_FOREVER));
    pid_t waiter = t_fork(wait_for_lock, &sh->lock);
    assert_true(t_wait_atleast(&sh->waiting, 1, SHOAL_SEC(10)));
    wait_asleep(waiter);
    t_kill(waiter);
    T_OK(shoal_lock_release(&sh->lock));
    T_OK(shoal_lock_acquire(&sh->lock, SHOAL_MS(100)));
    T_OK(shoal_lock_release(&sh->lock));
}

/* An exec'd program opens the named lock, takes it and is killed holding it. */
static int exec_child_main(const char *what)
{
    if (!strcmp(what, "hold-named")) {
        shoal_lock *l;
        if (shoal_lock_open(&l, "crash-lock", SHOAL_OPEN, NULL))
            return 20;
        return shoal_lock_acquire(l, SHOAL_SEC(10)) ? 21 : 22; /* stops at lock.held */
    }
    return 99;
}

static void test_named_lock_holder_killed(void **state)
{
    (void)state;
    shoal_lock *l;
    T_OK(shoal_lock_open(&l, "crash-lock", SHOAL_CREATE, NULL));
    setenv("SHOAL_TEST_PAUSE", "lock.held", 1);
    pid_t pid = t_spawn_self("hold-named", NULL);
    unsetenv("SHOAL_TEST_PAUSE");
    int st;
    assert_int_equal(waitpid(pid, &st, WUNTRACED), pid);
    assert_true(WIFSTOPPED(st));
    assert_int_equal(shoal_lock_locked(l), 1);
    t_kill(pid);
    shoal__seg *seg = shoal__registry_find(l);
    assert_non_null(seg);
    uint32_t before = atomic_load(&seg->hdr->owner_died);
    int64_t t0 = shoal__now_ns();
    assert_int_equal(shoal_lock_acquire(l, SHOAL_SEC(10)), SHOAL_EOWNERDEAD);
    assert_true(shoal__now_ns() - t0 < PROMPT);
    assert_non_null(strstr(shoal_errdetail(), "crash-lock"));
    /* The segment header counts the death (shown by inspection tools). */
    assert_int_equal(atomic_load(&seg->hdr->owner_died), before + 1);
    T_OK(shoal_lock_release(l));
    T_OK(shoal_lock_close(l));
    T_OK(shoal_unlink("crash-lock", NULL));
}

/* ---- Condition --------------------------------------------------------------------- */

/* Child: waits for a ticket under the lock; records when it got one. A non-NULL arg
 * names a pause point armed once the lock is held, so that only the Condition's own
 * sleeps (not the first contended acquire) can stop there. */
static int ticket_waiter(void *arg)
{
    if (shoal_lock_acquire(&sh->lock, SHOAL_SEC(10)))
        return 10;
    if (arg)
        shoal__test_pause_at(arg);
    atomic_fetch_add(&sh->waiting, 1);
    while (sh->tickets == 0) {
        int rc = shoal_cond_wait(&sh->cond, &sh->lock, SHOAL_SEC(10));
        if (rc) {
            shoal_lock_release(&sh->lock);
            return 11;
        }
    }
    sh->tickets--;
    sh->t_ns = shoal__now_ns();
    return shoal_lock_release(&sh->lock) ? 12 : 0;
}

static void test_cond_waiter_killed(void **state)
{
    (void)state;
    /* One waiter killed between releasing the lock and sleeping, one in its sleep. */
    pid_t paused = fork_stopped_at("cond.waiting", ticket_waiter, NULL);
    pid_t asleep = t_fork(ticket_waiter, NULL);
    assert_true(t_wait_atleast(&sh->waiting, 2, SHOAL_SEC(10)));
    wait_asleep(asleep);
    t_kill(paused);
    t_kill(asleep);
    /* They had released the lock: it is free, and no owner died. */
    T_OK(shoal_lock_try(&sh->lock));
    T_OK(shoal_lock_release(&sh->lock));
    /* A live waiter is still woken by a single notify. */
    pid_t live = t_fork(ticket_waiter, NULL);
    assert_true(t_wait_atleast(&sh->waiting, 3, SHOAL_SEC(10)));
    wait_asleep(live);
    T_OK(shoal_lock_acquire(&sh->lock, SHOAL_SEC(10)));
    sh->tickets = 1;
    int64_t t0 = shoal__now_ns();
    T_OK(shoal_cond_notify(&sh->cond, 1));
    T_OK(shoal_lock_release(&sh->lock));
    assert_int_equal(t_wait(live), 0);
    assert_true(sh->t_ns - t0 < PROMPT);
    /* And waits still time out properly. */
    T_OK(shoal_lock_acquire(&sh->lock, SHOAL_SEC(10)));
    assert_int_equal(shoal_cond_wait(&sh->cond, &sh->lock, SHOAL_MS(20)),
                     SHOAL_ETIMEDOUT);
    T_OK(shoal_lock_release(&sh->lock));
}

static int notify_and_die(void *arg)
{
    (void)arg;
    if (shoal_lock_acquire(&sh->lock, SHOAL_SEC(10)))
        return 10;
    sh->tickets = 1;
    shoal_cond_notify_all(&sh->cond);
    raise(SIGSTOP); /* killed here, holding the lock */
    return 11;
}

static int wait_expect_owner_dead(void *arg)
{
    (void)arg;
    if (shoal_lock_acquire(&sh->lock, SHOAL_SEC(10)))
        return 10;
    atomic_fetch_add(&sh->waiting, 1);
    int rc = 0;
    while (sh->tickets == 0 && rc == 0)
        rc = shoal_cond_wait(&sh->cond, &sh->lock, SHOAL_SEC(10));
    sh->t_ns = shoal__now_ns();
    if (rc != SHOAL_EOWNERDEAD)
        return 11;
    int32_t owner;
    shoal_lock_state(&sh->lock, NULL, &owner, NULL);
    if (owner != shoal__tid())
        return 12;
    return shoal_lock_release(&sh->lock) ? 13 : 0;
}

static void test_cond_reacquire_finds_owner_dead(void **state)
{
    (void)state;
    pid_t waiter = t_fork(wait_expect_owner_dead, NULL);
    assert_true(t_wait_atleast(&sh->waiting, 1, SHOAL_SEC(10)));
    wait_asleep(waiter);
    pid_t notifier = fork_stopped_at(NULL, notify_and_die, NULL);
    int64_t killed = shoal__now_ns();
    t_kill(notifier);
    assert_int_equal(t_wait(waiter), 0);
    assert_true(sh->t_ns - killed < PROMPT);
}

/* ---- Semaphore --------------------------------------------------------------------- */

static int take_sem(void *arg)
{
    (void)arg;
    atomic_fetch_add(&sh->waiting, 1);
    int rc = shoal_sem_acquire(&sh->sem, SHOAL_SEC(10)); /* may stop at sem.acquired */
    sh->t_ns = shoal__now_ns();
    return rc == 0 ? 0 : 10;
}

static void test_sem_holder_killed(void **state)
{
    (void)state;
    T_OK(shoal_sem_init(&sh->sem, 1, 1));
    pid_t pid = fork_stopped_at("sem.acquired", take_sem, NULL);
    assert_int_equal(shoal_sem_value(&sh->sem), 0);
    t_kill(pid);
    /* A semaphore has no owner to recover from: waiters time out, they do not hang. */
    int64_t t0 = shoal__now_ns();
    assert_int_equal(shoal_sem_acquire(&sh->sem, SHOAL_MS(100)), SHOAL_ETIMEDOUT);
    int64_t took = shoal__now_ns() - t0;
    assert_true(took >= SHOAL_MS(100) && took < SHOAL_MS(100) + PROMPT);
    /* Still fully usable. */
    T_OK(shoal_sem_release(&sh->sem));
    assert_int_equal(shoal_sem_release(&sh->sem), SHOAL_EOVERFLOW);
    T_OK(shoal_sem_acquire(&sh->sem, SHOAL_MS(100)));
    T_OK(shoal_sem_release(&sh->sem));
}

static void test_sem_waiter_killed(void **state)
{
    (void)state;
    T_OK(shoal_sem_init(&sh->sem, 0, 0));
    pid_t dead = t_fork(take_sem, NULL);
    pid_t live = t_fork(take_sem, NULL);
    assert_true(t_wait_atleast(&sh->waiting, 2, SHOAL_SEC(10)));
    wait_asleep(dead);
    wait_asleep(live);
    t_kill(dead);
    /* The one release goes to the live waiter, not to the dead one. */
    int64_t t0 = shoal__now_ns();
    T_OK(shoal_sem_release(&sh->sem));
    assert_int_equal(t_wait(live), 0);
    assert_true(sh->t_ns - t0 < PROMPT);
    assert_int_equal(shoal_sem_value(&sh->sem), 0);
    T_OK(shoal_sem_release(&sh->sem));
    T_OK(shoal_sem_try(&sh->sem));
}

/* ---- Barrier ----------------------------------------------------------------------- */

static int barrier_party(void *arg)
{
    shoal_duration timeout = *(shoal_duration *)arg;
    atomic_fetch_add(&sh->waiting, 1);
    int rc = shoal_barrier_wait(&sh->barrier, timeout);
    sh->t_ns = shoal__now_ns();
    sh->rc = rc;
    return rc >= 0 ? 0 : 10;
}

static void test_barrier_party_never_arrives(void **state)
{
    (void)state;
    T_OK(shoal_barrier_init(&sh->barrier, 3));
    /* The third party was killed before it arrived. */
    shoal_duration long_wait = SHOAL_SEC(10);
    pid_t other = t_fork(barrier_party, &long_wait);
    assert_true(t_wait_atleast(&sh->waiting, 1, SHOAL_SEC(10)));
    wait_asleep(other);
    int64_t t0 = shoal__now_ns();
    assert_int_equal(shoal_barrier_wait(&sh->barrier, SHOAL_MS(100)), SHOAL_ETIMEDOUT);
    int64_t t1 = shoal__now_ns();
    assert_true(t1 - t0 < SHOAL_MS(100) + PROMPT);
    assert_int_equal(t_wait(other), 10);
    assert_int_equal(sh->rc, SHOAL_EBROKEN);
    assert_true(sh->t_ns - t1 < PROMPT);
    T_OK(shoal_barrier_reset(&sh->barrier));
}

static void test_barrier_party_killed_while_waiting(void **state)
{
    (void)state;
    T_OK(shoal_barrier_init(&sh->barrier, 3));
    shoal_duration long_wait = SHOAL_SEC(10);
    pid_t dead = fork_stopped_at("barrier.arrived", barrier_party, &long_wait);
    t_kill(dead);
    /* Python's semantics: an arrival counts even if its process died afterwards. */
    pid_t other = t_fork(barrier_party, &long_wait);
    assert_true(t_wait_atleast(&sh->waiting, 2, SHOAL_SEC(10)));
    wait_asleep(other);
    int idx = shoal_barrier_wait(&sh->barrier, SHOAL_SEC(10));
    assert_int_equal(idx, 2);
    assert_int_equal(t_wait(other), 0);
    assert_int_equal(sh->rc, 1);
    /* The next round, with the dead party missing, times out rather than hangs. */
    pid_t again = t_fork(barrier_party, &long_wait);
    assert_true(t_wait_atleast(&sh->waiting, 3, SHOAL_SEC(10)));
    wait_asleep(again);
    assert_int_equal(shoal_barrier_wait(&sh->barrier, SHOAL_MS(50)), SHOAL_ETIMEDOUT);
    assert_int_equal(t_wait(again), 10);
    assert_int_equal(sh->rc, SHOAL_EBROKEN);
}

/* ---- Event ------------------------------------------------------------------------- */

static int event_waiter(void *arg)
{
    (void)arg;
    atomic_fetch_add(&sh->waiting, 1);
    int rc = shoal_event_wait(&sh->ev, SHOAL_SEC(10));
    sh->t_ns = shoal__now_ns();
    return rc == 0 ? 0 : 10;
}

static void test_event_waiter_killed(void **state)
{
    (void)state;
    pid_t dead = t_fork(event_waiter, NULL);
    pid_t live = t_fork(event_waiter, NULL);
    assert_true(t_wait_atleast(&sh->waiting, 2, SHOAL_SEC(10)));
    wait_asleep(dead);
    wait_asleep(live);
    t_kill(dead);
    int64_t t0 = shoal__now_ns();
    T_OK(shoal_event_set(&sh->ev));
    assert_int_equal(t_wait(live), 0);
    assert_true(sh->t_ns - t0 < PROMPT);
}

/* ---- wake-ups given to a process that dies before using them ----------------------- */

/*
 * One of pids[n], all asleep, has been woken and stopped itself at "wait.woken"
 * (before acting on the wake-up): kills it, then expects exactly one of the others to
 * finish with exit code 0 within PROMPT — the wake-up passed to a live sleeper. Others
 * that stop at the pause point are let go on; the rest are killed at the end. (Under
 * load a sleeper's slice can end just as the wake comes: it then takes the unit
 * without stopping, and that is the one success expected.)
 */
/* Waits until all n children have counted themselves in and sleep; on failure kills
 * them all first, so that no child stopped at a pause point outlives the test. */
static void wait_all_asleep(pid_t *pids, int n)
{
    bool ok = t_wait_atleast(&sh->waiting, n, SHOAL_SEC(10));
    for (int i = 0; ok && i < n; i++)
        ok = t_wait_asleep(pids[i], SHOAL_SEC(10));
    if (!ok) {
        for (int i = 0; i < n; i++)
            t_kill(pids[i]);
        fail_msg("the %d waiters did not all go to sleep within 10 s", n);
    }
}

static void kill_woken_expect_one(pid_t *pids, int n)
{
    int st, victim = -1, done = 0;
    int64_t end = shoal__now_ns() + SHOAL_SEC(10);
    while (victim < 0 && done == 0 && shoal__now_ns() < end) {
        for (int i = 0; i < n && victim < 0; i++) {
            if (!pids[i] || waitpid(pids[i], &st, WNOHANG | WUNTRACED) != pids[i])
                continue;
            if (WIFSTOPPED(st)) {
                victim = i;
            } else { /* done before any stop: a sleeper whose slice ended took it */
                done += WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 1 : 100;
                pids[i] = 0;
            }
        }
        usleep(500);
    }
    if (victim >= 0) {
        t_kill(pids[victim]);
        pids[victim] = 0;
        /* Well inside the waiters' own 10 s timeout, however loaded the machine. */
        int64_t t0 = shoal__now_ns();
        while (done == 0 && shoal__now_ns() - t0 < SHOAL_SEC(5)) {
            for (int i = 0; i < n; i++) {
                if (!pids[i] || waitpid(pids[i], &st, WNOHANG | WUNTRACED) != pids[i])
                    continue;
                if (WIFSTOPPED(st)) {
                    kill(pids[i], SIGCONT);
                    continue;
                }
                done += WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 1 : 100;
                pids[i] = 0;
            }
            usleep(500);
        }
    }
    for (int i = 0; i < n; i++) /* no child is left behind, stopped or not */
        if (pids[i])
            t_kill(pids[i]);
    assert_true(victim >= 0 || done == 1);
    assert_int_equal(done, 1);
}

static int take_sem_armed(void *arg)
{
    shoal__test_pause_at("wait.woken");
    return take_sem(arg);
}

static void test_sem_woken_waiter_killed(void **state)
{
    (void)state;
    enum { N = 4 };
    T_OK(shoal_sem_init(&sh->sem, 0, 0));
    pid_t pids[N];
    for (int i = 0; i < N; i++)
        pids[i] = t_fork(take_sem_armed, NULL);
    wait_all_asleep(pids, N);
    T_OK(shoal_sem_release(&sh->sem));
    kill_woken_expect_one(pids, N);
    assert_int_equal(shoal_sem_value(&sh->sem), 0);
}

static void test_cond_notified_waiter_killed(void **state)
{
    (void)state;
    enum { N = 4 };
    pid_t pids[N];
    for (int i = 0; i < N; i++)
        pids[i] = t_fork(ticket_waiter, "wait.woken");
    wait_all_asleep(pids, N);
    T_OK(shoal_lock_acquire(&sh->lock, SHOAL_SEC(10)));
    sh->tickets = 1;
    T_OK(shoal_cond_notify(&sh->cond, 1));
    T_OK(shoal_lock_release(&sh->lock));
    kill_woken_expect_one(pids, N);
    assert_int_equal(sh->tickets, 0);
}

/* ---- a lock word naming a thread that no longer exists ------------------------------
 */

static unsigned char lock_copy[sizeof(shoal_lock)];

/* Thread: takes the lock, copies its bytes while held (as a copy of the segment file
 * would), releases it and exits. */
static void *hold_and_copy(void *arg)
{
    if (shoal_lock_acquire(arg, SHOAL_SEC(10)) == 0) {
        memcpy(lock_copy, arg, sizeof(lock_copy));
        shoal_lock_release(arg);
    }
    return NULL;
}

/* Leaves `l` as if restored from a copy taken while a now-gone thread held it. */
static void restore_held_copy(shoal_lock *l)
{
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, hold_and_copy, l), 0);
    pthread_join(th, NULL);
    memcpy(l, lock_copy, sizeof(lock_copy));
    assert_int_equal(shoal_lock_locked(l), 1);
}

static void test_lock_word_names_gone_thread(void **state)
{
    (void)state;
    restore_held_copy(&sh->lock);
    int64_t t0 = shoal__now_ns();
    assert_int_equal(shoal_lock_acquire(&sh->lock, SHOAL_SEC(2)), SHOAL_EOWNERDEAD);
    assert_true(shoal__now_ns() - t0 < PROMPT);
    T_OK(shoal_lock_release(&sh->lock));
    T_OK(shoal_lock_acquire(&sh->lock, SHOAL_MS(100)));
    T_OK(shoal_lock_release(&sh->lock));
}

static int read_value(void *arg)
{
    int32_t x;
    return shoal_value_read(arg, &x) == 0 && x == 7 ? 0 : 10;
}

static void test_value_read_lock_names_gone_thread(void **state)
{
    (void)state;
    shoal_value *v;
    T_OK(shoal_value_open(&v, NULL, SHOAL_CREATE, shoal_typecode('i'), NULL, NULL));
    int32_t x = 7;
    T_OK(shoal_value_write(v, &x));
    restore_held_copy(shoal_value_get_lock(v));
    pid_t pid = t_fork(read_value, v);
    int st;
    int64_t end = shoal__now_ns() + SHOAL_SEC(5);
    while (waitpid(pid, &st, WNOHANG) != pid) {
        if (shoal__now_ns() > end) {
            t_kill(pid);
            fail_msg("shoal_value_read still blocked after 5 s");
        }
        usleep(1000);
    }
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    T_OK(shoal_value_close(v));
}

int main(int argc, char **argv)
{
    t_setup_root();
    if (argc > 1)
        return exec_child_main(argv[1]);
#define T(fn) cmocka_unit_test_setup(fn, reset_shared)
    const struct CMUnitTest tests[] = {
        T(test_lock_holder_killed),
        T(test_sleeping_waiter_learns_of_death),
        T(test_rlock_held_twice_killed),
        T(test_waiter_killed_in_acquire),
        T(test_named_lock_holder_killed),
        T(test_cond_waiter_killed),
        T(test_cond_reacquire_finds_owner_dead),
        T(test_sem_holder_killed),
        T(test_sem_waiter_killed),
        T(test_barrier_party_never_arrives),
        T(test_barrier_party_killed_while_waiting),
        T(test_event_waiter_killed),
        T(test_sem_woken_waiter_killed),
        T(test_cond_notified_waiter_killed),
        T(test_lock_word_names_gone_thread),
        T(test_value_read_lock_names_gone_thread),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
