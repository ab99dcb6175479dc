/*
 * loop_busy.c — busy sources served by a loop that sleeps between messages, on the
 * engine $SHOAL_LOOP_ENGINE names (CTest runs this program once per engine).
 *
 * The epoll engine waits on the words of busy sources in the loop thread itself while
 * the loop has no descriptor, a few of them at most (the quietest goes back to a
 * helper), and hands them to helpers when a descriptor is added (loop_epoll.c). Here a
 * producer in another process sends one message at a time on CHANS channels in turn
 * — more channels than the loop keeps for itself — and waits until the loop has taken
 * it, so the loop falls asleep before every message; meanwhile the loop adds a
 * descriptor, is woken through it, and removes it again. Every message must be taken
 * once and no wait may last its whole bound (a lost wake-up).
 */
#include <sys/eventfd.h>
#include <sys/wait.h>

#include "looptest.h"

enum { CHANS = 7, MSGS = 3000 };

static void take_one(shoal_loop *l, shoal_loop_source *s, int ev, void *arg)
{
    (void)l, (void)s;
    struct chan *c = arg;
    assert_true(ev > 0);
    if (chan_ready(c)) {
        atomic_fetch_add(&c->got, 1);
        atomic_fetch_add(&c->calls, 1);
    }
}

static void on_fd(shoal_loop *l, shoal_loop_source *s, int ev, void *arg)
{
    (void)l, (void)s;
    int *calls = arg;
    uint64_t v;
    assert_true(ev & SHOAL_LOOP_READABLE);
    assert_int_equal(read(calls[1], &v, sizeof(v)), (ssize_t)sizeof(v));
    calls[0]++;
}

/* Sends MSGS messages round the channels, each once the previous one was taken (a
 * phase of one channel, then all of them, so that sources become busy and quiet). */
static int producer(void *arg)
{
    struct chan *c = arg;
    for (int i = 0; i < MSGS; i++) {
        struct chan *k = &c[i < MSGS / 4 ? 0 : i % CHANS];
        chan_send(k);
        int64_t until = shoal__now_ns() + SHOAL_SEC(20);
        while (atomic_load(&k->got) < atomic_load(&k->sent))
            if (shoal__now_ns() > until)
                return 1; /* the loop lost the wake-up */
            else
                usleep(i % 3 ? 0 : 30);
    }
    return 0;
}

static uint64_t total_got(struct chan *c)
{
    uint64_t n = 0;
    for (int k = 0; k < CHANS; k++)
        n += atomic_load(&c[k].got);
    return n;
}

static void test_busy_sources_with_a_descriptor_coming_and_going(void **state)
{
    (void)state;
    shoal_set_spin_ns(0);
    struct chan *c = t_shared_alloc(CHANS * sizeof(*c));
    shoal_loop *l = lt_new_loop();
    for (int k = 0; k < CHANS; k++) {
        shoal__waitable w = chan_waitable(&c[k], false);
        T_OK(shoal__loop_add_waitable(l, &w, SHOAL_LOOP_READABLE, take_one, &c[k], NULL));
    }
    int fdcalls[2] = {0, eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)};
    assert_true(fdcalls[1] >= 0);
    shoal_loop_source *fd = NULL;
    pid_t pid = t_fork(producer, c);
    uint64_t got;
    while ((got = total_got(c)) < MSGS) {
        if (!fd && got >= MSGS / 3 && got < MSGS / 2) {
            T_OK(shoal_loop_add_fd(l, fdcalls[1], SHOAL_LOOP_READABLE, on_fd, fdcalls,
                                   &fd));
            uint64_t one = 1;
            assert_int_equal(write(fdcalls[1], &one, sizeof(one)), (ssize_t)sizeof(one));
        } else if (fd && got >= 2 * MSGS / 3) {
            T_OK(shoal_loop_remove(l, fd));
            fd = NULL;
        }
        int64_t t0 = shoal__now_ns();
        assert_true(shoal_loop_run_once(l, SHOAL_SEC(10)) >= 0);
        assert_true(shoal__now_ns() - t0 < SHOAL_SEC(10));
    }
    assert_int_equal(t_wait(pid), 0);
    assert_int_equal(fdcalls[0], 1);
    for (int k = 0; k < CHANS; k++) {
        assert_int_equal(atomic_load(&c[k].got), atomic_load(&c[k].sent));
        assert_int_equal(atomic_load(&c[k].calls), atomic_load(&c[k].sent));
    }
    assert_int_equal(shoal_loop_run_once(l, SHOAL_MS(20)), 0);
    shoal_loop_destroy(l);
    close(fdcalls[1]);
    munmap(c, CHANS * sizeof(*c));
    shoal_set_spin_ns(20000);
}

int main(void)
{
    t_setup_root();
    if (lt_engine_unavailable())
        return 0;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_busy_sources_with_a_descriptor_coming_and_going),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
