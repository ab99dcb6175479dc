/*
 * loop_doorbell.c — posts from other threads wake the loop, on the engine
 * $SHOAL_LOOP_ENGINE names (CTest runs this program once per engine).
 *
 * A post rings the engine's doorbell only when the loop sleeps in the engine; a loop
 * that is running or spinning finds the post on its own (loop.c, engine_wait). Here
 * threads post with irregular gaps while the loop, with no spin budget and nothing
 * else to wait for, goes to sleep between posts as often as it can: a post whose
 * doorbell was lost would leave the loop asleep with the post pending, so every wait
 * must end within a bound that only a lost wake-up can exceed, and every post runs.
 */
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>

#include "looptest.h"

enum { POSTERS = 3, POSTS = 4000 };

struct state {
    shoal_loop *loop;
    _Atomic int posted, ran;
};

static void on_post(shoal_loop *l, void *arg)
{
    (void)l;
    atomic_fetch_add(&((struct state *)arg)->ran, 1);
}

static void *poster(void *arg)
{
    struct state *st = arg;
    unsigned seed = (unsigned)(uintptr_t)pthread_self();
    for (int i = 0; i < POSTS; i++) {
        T_OK(shoal_loop_post(st->loop, on_post, st));
        atomic_fetch_add(&st->posted, 1);
        unsigned r = (unsigned)rand_r(&seed) % 8;
        if (r < 3)
            usleep(r * 20); /* 0, 20 or 40 us: the loop often falls asleep */
    }
    return NULL;
}

static void test_posts_wake_a_sleeping_loop(void **state)
{
    (void)state;
    shoal_set_spin_ns(0);
    static struct state st;
    st.loop = lt_new_loop();
    pthread_t th[POSTERS];
    for (int t = 0; t < POSTERS; t++)
        assert_int_equal(pthread_create(&th[t], NULL, poster, &st), 0);
    while (atomic_load(&st.ran) < POSTERS * POSTS) {
        /* Until every post has run, a post comes at least every few tens of
         * microseconds: a wait that lasts its whole 10 s lost a wake-up. */
        int64_t t0 = shoal__now_ns();
        assert_true(shoal_loop_run_once(st.loop, SHOAL_SEC(10)) >= 0);
        assert_true(shoal__now_ns() - t0 < SHOAL_SEC(10));
    }
    for (int t = 0; t < POSTERS; t++)
        pthread_join(th[t], NULL);
    assert_int_equal(atomic_load(&st.ran), POSTERS * POSTS);
    shoal_loop_destroy(st.loop);
    shoal_set_spin_ns(20000);
}

/*
 * A destroyed loop leaves no futex wait behind. Closing an io_uring ends its requests
 * later, from a kernel worker: a doorbell wait still queued then would take a
 * FUTEX_WAKE of one meant for whoever waits at that address next — the doorbell of
 * the next loop, allocated at the same place, which then slept with a post pending.
 * To see a late worker every time, the test holds every CPU while it destroys the
 * loop and looks: itself at real-time priority, pinned, and a real-time spinner on
 * each other CPU (without the privilege for that, it looks all the same).
 */
struct hogs {
    _Atomic int run, ready; /* ready: hogs that tried to become real-time */
    int n;
    pthread_t th[CPU_SETSIZE];
    int cpu[CPU_SETSIZE];
};

static bool realtime(pthread_t t, int cpu, int prio)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    struct sched_param sp = {.sched_priority = prio};
    return pthread_setaffinity_np(t, sizeof(set), &set) == 0 &&
           pthread_setschedparam(t, SCHED_FIFO, &sp) == 0;
}

static struct hogs hogs;

static void *hog(void *arg)
{
    realtime(pthread_self(), *(int *)arg, 1);
    atomic_fetch_add(&hogs.ready, 1);
    while (atomic_load(&hogs.run))
        ;
    return NULL;
}

static cpu_set_t held_from; /* the caller's affinity before hold_cpus */

/* Holds every allowed CPU: the caller, pinned to its own, at real-time priority, a
 * real-time spinner on each other one. Returns whether the caller got real-time. */
static bool hold_cpus(void)
{
    int me = sched_getcpu();
    if (me < 0 || sched_getaffinity(0, sizeof(held_from), &held_from) != 0)
        return false;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(me, &one);
    if (sched_setaffinity(0, sizeof(one), &one) != 0)
        return false;
    atomic_store(&hogs.run, 1);
    atomic_store(&hogs.ready, 0);
    hogs.n = 0;
    for (int c = 0; c < CPU_SETSIZE; c++) { /* created before the caller is real-time */
        if (!CPU_ISSET(c, &held_from) || c == me)
            continue;
        hogs.cpu[hogs.n] = c;
        if (pthread_create(&hogs.th[hogs.n], NULL, hog, &hogs.cpu[hogs.n]) == 0)
            hogs.n++;
    }
    while (atomic_load(&hogs.ready) < hogs.n)
        sched_yield();
    struct sched_param sp = {.sched_priority = 2};
    return pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp) == 0;
}

static void release_cpus(void)
{
    struct sched_param sp = {.sched_priority = 0};
    pthread_setschedparam(pthread_self(), SCHED_OTHER, &sp);
    atomic_store(&hogs.run, 0);
    for (int i = 0; i < hogs.n; i++)
        pthread_join(hogs.th[i], NULL);
    hogs.n = 0;
    sched_setaffinity(0, sizeof(held_from), &held_from);
}

static void test_destroy_leaves_no_waiter(void **state)
{
    (void)state;
#ifdef SHOAL_HAVE_URING
    for (int i = 0; i < 20; i++) {
        shoal_loop *l = lt_new_loop();
        if (strcmp(shoal_loop_engine(l), "uring") != 0) {
            shoal_loop_destroy(l);
            return;
        }
        _Atomic uint32_t *bell = shoal__uring_doorbell(l);
        assert_int_equal(shoal_loop_run_once(l, SHOAL_MS(1)), 0); /* bell submitted */
        assert_int_equal(shoal__futex_wake(bell, 1), 1);          /* it waits there */
        assert_int_equal(shoal_loop_run_once(l, SHOAL_MS(1)), 0); /* and again */
        bool held = hold_cpus();
        shoal_loop_destroy(l);
        /* No waiter there any more: waking one reports nobody. The address is freed
         * memory, but FUTEX_WAKE only compares it. */
        int woken = shoal__futex_wake(bell, INT_MAX);
        release_cpus();
        if (i == 0)
            print_message("CPUs %sheld while the loop was destroyed\n",
                          held ? "" : "not ");
        assert_int_equal(woken, 0);
    }
#endif
}

int main(void)
{
    t_setup_root();
    if (lt_engine_unavailable())
        return 0;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_posts_wake_a_sleeping_loop),
        cmocka_unit_test(test_destroy_leaves_no_waiter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
