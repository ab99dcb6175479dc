/*
 * loop_busy.c — busy sources served by a loop that sleeps between messages, on the
 * engine $SHOAL_LOOP_ENGINE names (CTest runs this program once per engine).
 *
 * The epoll engine waits on the words of busy sources in the loop thread itself, a few
 * of them at most (the quietest goes back to a helper; loop_epoll.c). Here a
 * producer in another process sends one message at a time on CHANS channels in turn
 * — more channels than the loop keeps for itself — and waits until the loop has taken
 * it, so the loop falls asleep before every message; meanwhile the loop adds a
 * descriptor, is woken through it, and removes it again. Every message must be taken
 * once and no wait may last its whole bound (a lost wake-up).
 *
 * With busy sources of its own the epoll engine sleeps in futex_waitv even while it
 * has descriptors, a watcher thread waiting in epoll_wait for them. The second test
 * keeps one source busy and writes a pipe from another thread while the loop sleeps:
 * each write must wake the loop, a byte left unread must be reported again
 * (level-triggered), and a removed descriptor, closed at once, never again.
 */
#include <pthread.h>
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

enum { FD_ROUNDS = 200 };

struct fdside {
    int p[2];
    _Atomic int taken; /* bytes read by the callback */
    _Atomic int done;
};

/* Reads one byte per call: a write of two bytes needs two reports. */
static void read_one(shoal_loop *l, shoal_loop_source *s, int ev, void *arg)
{
    (void)l, (void)s;
    struct fdside *f = arg;
    char b;
    assert_true(ev & SHOAL_LOOP_READABLE);
    assert_int_equal(read(f->p[0], &b, 1), 1);
    atomic_fetch_add(&f->taken, 1);
}

/* Writes two bytes at a time, each time once the loop has taken the previous ones
 * and fallen asleep again. */
static void *pipe_writer(void *arg)
{
    struct fdside *f = arg;
    for (int i = 0; i < FD_ROUNDS; i++) {
        int64_t until = shoal__now_ns() + SHOAL_SEC(20);
        while (atomic_load(&f->taken) < 2 * i && shoal__now_ns() < until)
            usleep(50);
        usleep(i % 4 ? 100 : 0);
        assert_int_equal(write(f->p[1], "ab", 2), 2);
    }
    atomic_store(&f->done, 1);
    return NULL;
}

/* Messages on channel 0 one at a time (a busy source), until told to stop. */
static int steady_producer(void *arg)
{
    struct chan *c = arg;
    while (!atomic_load(&c[1].sent)) {
        chan_send(&c[0]);
        int64_t until = shoal__now_ns() + SHOAL_SEC(20);
        while (atomic_load(&c[0].got) < atomic_load(&c[0].sent) &&
               !atomic_load(&c[1].sent))
            if (shoal__now_ns() > until)
                return 1; /* the loop lost the wake-up */
            else
                usleep(10);
        usleep(20);
    }
    return 0;
}

static void test_descriptor_wakes_a_loop_asleep_on_busy_sources(void **state)
{
    (void)state;
    shoal_set_spin_ns(0);
    struct chan *c = t_shared_alloc(2 * sizeof(*c));
    shoal_loop *l = lt_new_loop();
    shoal__waitable w = chan_waitable(&c[0], false);
    T_OK(shoal__loop_add_waitable(l, &w, SHOAL_LOOP_READABLE, take_one, &c[0], NULL));
    struct fdside f = {.taken = 0};
    assert_int_equal(pipe(f.p), 0);
    shoal_loop_source *fd;
    T_OK(shoal_loop_add_fd(l, f.p[0], SHOAL_LOOP_READABLE, read_one, &f, &fd));
    pid_t pid = t_fork(steady_producer, c);
    while (atomic_load(&c[0].got) < 50) /* channel 0 is busy before the pipe starts */
        assert_true(shoal_loop_run_once(l, SHOAL_SEC(10)) >= 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, pipe_writer, &f), 0);
    while (atomic_load(&f.taken) < 2 * FD_ROUNDS) {
        int64_t t0 = shoal__now_ns();
        assert_true(shoal_loop_run_once(l, SHOAL_SEC(10)) >= 0);
        assert_true(shoal__now_ns() - t0 < SHOAL_SEC(10));
    }
    pthread_join(th, NULL);
    assert_true(atomic_load(&f.done));
    /* Removed while readable and closed at once: never reported again. */
    assert_int_equal(write(f.p[1], "c", 1), 1);
    T_OK(shoal_loop_remove(l, fd));
    close(f.p[0]);
    uint64_t got = atomic_load(&c[0].got);
    while (atomic_load(&c[0].got) < got + 50)
        assert_true(shoal_loop_run_once(l, SHOAL_SEC(10)) >= 0);
    assert_int_equal(atomic_load(&f.taken), 2 * FD_ROUNDS);
    atomic_store(&c[1].sent, 1); /* stops the producer */
    assert_int_equal(t_wait(pid), 0);
    while (atomic_load(&c[0].got) < atomic_load(&c[0].sent))
        assert_true(shoal_loop_run_once(l, SHOAL_SEC(10)) >= 0);
    assert_int_equal(atomic_load(&c[0].calls), atomic_load(&c[0].sent));
    shoal_loop_destroy(l);
    close(f.p[1]);
    munmap(c, 2 * sizeof(*c));
    shoal_set_spin_ns(20000);
}

int main(void)
{
    t_setup_root();
    if (lt_engine_unavailable())
        return 0;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_busy_sources_with_a_descriptor_coming_and_going),
        cmocka_unit_test(test_descriptor_wakes_a_loop_asleep_on_busy_sources),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
