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
#include <pthread.h>

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

int main(void)
{
    t_setup_root();
    if (lt_engine_unavailable())
        return 0;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_posts_wake_a_sleeping_loop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
