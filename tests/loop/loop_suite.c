/*
 * loop_suite.c — the event loop, on the engine $SHOAL_LOOP_ENGINE names (CTest runs
 * this program once per engine): shared-memory sources woken by other processes,
 * timers, descriptors, posted callbacks, stopping, removal from callbacks, dead peers,
 * and the fallback to epoll when a seccomp filter refuses io_uring.
 *
 * The shared-memory sources here are raw futex channels (looptest.h).
 */
#include <limits.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include "looptest.h"

/* A callback that takes every message there is. */
static void take_all(shoal_loop *l, shoal_loop_source *s, int ev, void *arg)
{
    (void)l, (void)s;
    struct chan *c = arg;
    assert_int_equal(ev, SHOAL_LOOP_READABLE);
    atomic_store(&c->got, atomic_load(&c->sent));
    atomic_fetch_add(&c->calls, 1);
}

/* Runs the loop until *done(arg) or the time limit; fails the test on the limit. */
static void run_until(shoal_loop *l, bool (*done)(void *), void *arg, int64_t limit_ms)
{
    int64_t end = shoal__now_ns() + limit_ms * 1000000;
    while (!done(arg)) {
        assert_true(shoal__now_ns() < end);
        int r = shoal_loop_run_once(l, SHOAL_MS(100));
        assert_true(r >= 0);
    }
}

/* ---- processes feeding channels -----------------------------------------------------
 */

struct feed {
    struct chan *chans;
    int nchans;
    int first, step; /* the channels this producer feeds: first, first+step, ... */
    int per_chan;    /* messages per channel */
    int pause_us;    /* between messages, to make the loop fall asleep */
};

static int feeder(void *arg)
{
    struct feed *f = arg;
    for (int k = 0; k < f->per_chan; k++)
        for (int i = f->first; i < f->nchans; i += f->step) {
            chan_send(&f->chans[i]);
            if (f->pause_us)
                usleep((useconds_t)f->pause_us);
        }
    return 0;
}

struct all_got {
    struct chan *chans;
    int n;
    uint64_t want;
};

static bool all_got(void *arg)
{
    struct all_got *a = arg;
    for (int i = 0; i < a->n; i++)
        if (atomic_load(&a->chans[i].got) < a->want)
            return false;
    return true;
}

/* Several processes send on one channel; the loop sleeps between bursts (spin budget
 * 0): every message is seen, no wake-up is lost. */
static void test_wait_cross_process(void **state)
{
    (void)state;
    shoal_set_spin_ns(0);
    struct chan *c = t_shared_alloc(sizeof(*c));
    shoal_loop *l = lt_new_loop();
    shoal__waitable w = chan_waitable(c, false);
    T_OK(shoal__loop_add_waitable(l, &w, SHOAL_LOOP_READABLE, take_all, c, NULL));

    enum { PRODUCERS = 4, EACH = 3000 };
    struct feed f = {.chans = c, .nchans = 1, .first = 0, .step = 1, .per_chan = EACH};
    pid_t pids[PRODUCERS];
    for (int i = 0; i < PRODUCERS; i++)
        pids[i] = t_fork(feeder, &f);
    struct all_got a = {c, 1, PRODUCERS * EACH};
    run_until(l, all_got, &a, 30000);
    for (int i = 0; i < PRODUCERS; i++)
        assert_int_equal(t_wait(pids[i]), 0);
    assert_int_equal(atomic_load(&c->sent), PRODUCERS * EACH);
    assert_int_equal(atomic_load(&c->sleepers), 0); /* every arm was undone */
    shoal_loop_destroy(l);
    munmap(c, sizeof(*c));
    shoal_set_spin_ns(20000);
}

/* Many sources, producers in several processes, some SIGKILLed while they send:
 * the loop sees everything that was sent and never hangs. */
static void test_many_sources_killed_producers(void **state)
{
    (void)state;
    enum { N = 1000, PRODUCERS = 6 };
    struct chan *c = t_shared_alloc(N * sizeof(*c));
    shoal_loop *l = lt_new_loop();
    for (int i = 0; i < N; i++) {
        shoal__waitable w = chan_waitable(&c[i], false);
        T_OK(shoal__loop_add_waitable(l, &w, SHOAL_LOOP_READABLE, take_all, &c[i], NULL));
    }
    struct feed f[PRODUCERS];
    pid_t pids[PRODUCERS];
    for (int p = 0; p < PRODUCERS; p++) {
        f[p] = (struct feed){.chans = c,
                             .nchans = N,
                             .first = p,
                             .step = PRODUCERS,
                             .per_chan = p % 2 ? 1000000 : 20,
                             .pause_us = p % 2 ? 50 : 0};
        pids[p] = t_fork(feeder, &f[p]);
    }
    /* Serve for a while, kill the endless (odd) producers mid-stream, then drain. */
    int64_t until = shoal__now_ns() + SHOAL_MS(300);
    while (shoal__now_ns() < until)
        assert_true(shoal_loop_run_once(l, SHOAL_MS(50)) >= 0);
    for (int p = 1; p < PRODUCERS; p += 2)
        t_kill(pids[p]);
    for (int p = 0; p < PRODUCERS; p += 2)
        assert_int_equal(t_wait(pids[p]), 0);
    /* A producer killed between counting a message and bumping the word leaves a
     * message no wake-up announces; real objects recover that in their dead-peer
     * check. Here the survivor does it: bump and wake every word. */
    for (int i = 0; i < N; i++) {
        atomic_fetch_add(&c[i].word, 1);
        shoal__futex_wake(&c[i].word, INT_MAX);
    }
    /* Everything sent is taken: run until got == sent on every channel. */
    int64_t end = shoal__now_ns() + SHOAL_SEC(30);
    for (int i = 0; i < N; i++)
        while (atomic_load(&c[i].got) != atomic_load(&c[i].sent)) {
            assert_true(shoal__now_ns() < end);
            assert_true(shoal_loop_run_once(l, SHOAL_MS(100)) >= 0);
        }
    for (int i = 0; i < N; i += PRODUCERS) /* even producers finished their 20 each */
        assert_true(atomic_load(&c[i].sent) >= 20);
    /* Idle now: a send on one channel is reported to that channel's callback alone. */
    while (shoal_loop_run_once(l, SHOAL_NOWAIT) > 0)
        ;
    for (int i = 0; i < N; i++)
        atomic_store(&c[i].calls, 0);
    chan_send(&c[777]);
    assert_int_equal(shoal_loop_run_once(l, SHOAL_SEC(10)), 1);
    assert_int_equal(atomic_load(&c[777].calls), 1);
    shoal_loop_destroy(l);
    for (int i = 0; i < N; i++)
        assert_int_equal(atomic_load(&c[i].sleepers), 0);
    munmap(c, N * sizeof(*c));
}

/* Level-triggered: a callback that leaves a message is run again. */
static void take_one(shoal_loop *l, shoal_loop_source *s, int ev, void *arg)
{
    (void)l, (void)s, (void)ev;
    struct chan *c = arg;
    atomic_fetch_add(&c->got, 1);
    atomic_fetch_add(&c->calls, 1);
}

static void test_level_triggered(void **state)
{
    (void)state;
    struct chan *c = t_shared_alloc(sizeof(*c));
    shoal_loop *l = lt_new_loop();
    shoal__waitable w = chan_waitable(c, false);
    T_OK(shoal__loop_add_waitable(l, &w, SHOAL_LOOP_READABLE, take_one, c, NULL));
    assert_int_equal(shoal_loop_run_once(l, SHOAL_NOWAIT), 0);
    for (int i = 0; i < 3; i++)
        chan_send(c);
    for (int i = 0; i < 3; i++)
        assert_int_equal(shoal_loop_run_once(l, SHOAL_SEC(5)), 1);
    assert_int_equal(atomic_load(&c->calls), 3);
    assert_int_equal(shoal_loop_run_once(l, SHOAL_MS(20)), 0);
    shoal_loop_destroy(l);
    munmap(c, sizeof(*c));
}

/* A peer found dead by check() is reported once, with the code. */
struct dead_seen {
    int code, calls;
};

static void on_dead(shoal_loop *l, shoal_loop_source *s, int ev, void *arg)
{
    (void)l, (void)s;
    struct dead_seen *d = arg;
    d->code = ev;
    d->calls++;
}

static void test_dead_peer(void **state)
{
    (void)state;
    struct chan *c = t_shared_alloc(sizeof(*c));
    shoal_loop *l = lt_new_loop();
    struct dead_seen d = {0, 0};
    shoal__waitable w = chan_waitable(c, true);
    shoal_loop_source *src;
    T_OK(shoal__loop_add_waitable(l, &w, SHOAL_LOOP_READABLE, on_dead, &d, &src));
    assert_int_equal(shoal_loop_run_once(l, SHOAL_MS(30)), 0); /* now asleep on it */
    atomic_store(&c->dead, 1);
    int64_t end = shoal__now_ns() + SHOAL_SEC(10);
    while (d.calls == 0 && shoal__now_ns() < end)
        assert_true(shoal_loop_run_once(l, SHOAL_MS(500)) >= 0);
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.code, SHOAL_EPEERDEAD);
    assert_int_equal(shoal_loop_run_once(l, SHOAL_MS(120)), 0); /* not again */
    assert_int_equal(d.calls, 1);
    T_OK(shoal_loop_remove(l, src));
    assert_int_equal(atomic_load(&c->sleepers), 0);
    shoal_loop_destroy(l);
    munmap(c, sizeof(*c));
}

/* ---- timers -------------------------------------------------------------------------
 */

struct tick {
    int order[16];
    int64_t late_ns[16];
    int n;
    int64_t start;
};

struct tmr {
    struct tick *t;
    int id;
    int64_t due;
};

static void on_timer(shoal_loop *l, shoal_loop_source *s, int ev, void *arg)
{
    (void)l, (void)s;
    assert_int_equal(ev, SHOAL_LOOP_TIMER);
    struct tmr *m = arg;
    m->t->late_ns[m->t->n] = shoal__now_ns() - m->due;
    m->t->order[m->t->n++] = m->id;
}

static bool ticks_at_least(void *arg)
{
    return ((struct tick *)arg)->n >= 5;
}

/* One-shot timers fire in the order of their due times, not of their creation, never
 * early and within a (generous: loaded machine) bound. */
static void test_timers_in_order(void **state)
{
    (void)state;
    shoal_loop *l = lt_new_loop();
    struct tick t = {.n = 0};
    static const int ms[5] = {40, 10, 30, 0, 20};
    struct tmr m[5];
    shoal_loop_source *src[5];
    for (int i = 0; i < 5; i++) {
        m[i] = (struct tmr){&t, i, 0};
        T_OK(shoal_loop_add_timer(l, SHOAL_MS(ms[i]), 0, on_timer, &m[i], &src[i]));
        m[i].due = src[i]->due; /* now + ms[i] as of the call */
    }
    /* The order of the due times: 3, 1, 4, 2, 0 unless this thread was descheduled
     * for more than 10 ms between two calls above. */
    int want[5] = {0, 1, 2, 3, 4};
    for (int i = 1; i < 5; i++)
        for (int j = i; j > 0 && m[want[j]].due < m[want[j - 1]].due; j--) {
            int x = want[j];
            want[j] = want[j - 1];
            want[j - 1] = x;
        }
    run_until(l, ticks_at_least, &t, 10000);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(t.order[i], want[i]);
        assert_true(t.late_ns[i] >= 0);
        assert_true(t.late_ns[i] < SHOAL_MS(500));
    }
    /* Fired one-shot timers are inactive: nothing more happens. */
    assert_int_equal(shoal_loop_run_once(l, SHOAL_MS(60)), 0);
    shoal_loop_destroy(l);
}

struct periodic {
    int n;
    int64_t t0, first, last;
    bool early; /* a tick before its due time t0 + 5 ms + n * 10 ms */
    shoal_loop_source *src;
};

static void on_periodic(shoal_loop *l, shoal_loop_source *s, int ev, void *arg)
{
    (void)ev;
    struct periodic *p = arg;
    int64_t now = shoal__now_ns();
    if (now < p->t0 + SHOAL_MS(5) + p->n * SHOAL_MS(10))
        p->early = true;
    if (p->n++ == 0)
        p->first = now;
    p->last = now;
    if (p->n == 5)
        T_OK(shoal_loop_remove(l, s)); /* a callback removing its own source */
}

static bool periodic_done(void *arg)
{
    return ((struct periodic *)arg)->n >= 5;
}

static void test_timer_periodic_and_reset(void **state)
{
    (void)state;
    shoal_loop *l = lt_new_loop();
    struct periodic p = {.t0 = shoal__now_ns()};
    T_OK(shoal_loop_add_timer(l, SHOAL_MS(5), SHOAL_MS(10), on_periodic, &p, &p.src));
    run_until(l, periodic_done, &p, 10000);
    assert_false(p.early); /* ticks keep the phase: t0 + 5 ms + k * 10 ms */
    assert_true(p.last - p.first < SHOAL_SEC(2));
    assert_int_equal(shoal_loop_run_once(l, SHOAL_MS(40)), 0); /* removed: no more */
    assert_int_equal(p.n, 5);

    /* A one-shot timer set again after it fired, and one disarmed before. */
    struct tick t = {.n = 0};
    struct tmr a = {&t, 1, 0}, b = {&t, 2, 0};
    shoal_loop_source *sa, *sb;
    a.due = shoal__now_ns();
    T_OK(shoal_loop_add_timer(l, 0, 0, on_timer, &a, &sa));
    T_OK(shoal_loop_add_timer(l, SHOAL_MS(10), 0, on_timer, &b, &sb));
    T_OK(shoal_loop_timer_set(l, sb, -1, 0));
    assert_int_equal(shoal_loop_run_once(l, SHOAL_SEC(5)), 1);
    a.due = shoal__now_ns() + SHOAL_MS(15);
    T_OK(shoal_loop_timer_set(l, sa, SHOAL_MS(15), 0));
    assert_int_equal(shoal_loop_run_once(l, SHOAL_SEC(5)), 1);
    assert_int_equal(t.n, 2);
    assert_int_equal(t.order[1], 1);
    assert_true(t.late_ns[1] >= 0);
    assert_int_equal(shoal_loop_run_once(l, SHOAL_MS(30)), 0); /* b stays disarmed */
    assert_int_equal(shoal_loop_timer_set(l, sa, 0, -1), SHOAL_EINVAL);
    assert_int_equal(shoal_loop_add_timer(l, -1, 0, on_timer, &a, NULL), SHOAL_EINVAL);
    shoal_loop_destroy(l);
}

/* ---- descriptors ---------------------------------------------------------------------
 */

struct fdsrc {
    int fd;
    int calls;
    int last;
    int per_call; /* bytes read per callback */
};

static void on_fd(shoal_loop *l, shoal_loop_source *s, int ev, void *arg)
{
    (void)l, (void)s;
    struct fdsrc *f = arg;
    f->calls++;
    f->last = ev;
    if ((ev & SHOAL_LOOP_READABLE) && f->per_call) {
        char buf[64];
        ssize_t r = read(f->fd, buf, (size_t)f->per_call);
        (void)r;
    }
}

static void test_fd_level_and_hup(void **state)
{
    (void)state;
    shoal_loop *l = lt_new_loop();
    int p[2];
    assert_int_equal(pipe(p), 0);
    struct fdsrc r = {.fd = p[0], .per_call = 1};
    shoal_loop_source *src;
    T_OK(shoal_loop_add_fd(l, p[0], SHOAL_LOOP_READABLE, on_fd, &r, &src));
    assert_int_equal(shoal_loop_run_once(l, SHOAL_MS(20)), 0);
    assert_int_equal(write(p[1], "abc", 3), 3);
    /* One byte per callback: three callbacks, level-triggered. */
    for (int i = 0; i < 3; i++)
        assert_int_equal(shoal_loop_run_once(l, SHOAL_SEC(5)), 1);
    assert_int_equal(r.calls, 3);
    assert_int_equal(r.last, SHOAL_LOOP_READABLE);
    assert_int_equal(shoal_loop_run_once(l, SHOAL_MS(20)), 0);
    /* The writer goes: HUP. */
    close(p[1]);
    assert_int_equal(shoal_loop_run_once(l, SHOAL_SEC(5)), 1);
    assert_true(r.last & SHOAL_LOOP_HUP);
    T_OK(shoal_loop_remove(l, src));
    close(p[0]);

    /* Writable, and the same descriptor twice is refused on both engines alike. */
    assert_int_equal(pipe(p), 0);
    struct fdsrc w = {.fd = p[1]};
    T_OK(shoal_loop_add_fd(l, p[1], SHOAL_LOOP_WRITABLE, on_fd, &w, &src));
    assert_int_equal(shoal_loop_run_once(l, SHOAL_SEC(5)), 1);
    assert_int_equal(w.last, SHOAL_LOOP_WRITABLE);
    T_OK(shoal_loop_remove(l, src));
    assert_int_equal(shoal_loop_add_fd(l, -1, SHOAL_LOOP_READABLE, on_fd, &w, NULL),
                     SHOAL_EINVAL);
    assert_int_equal(shoal_loop_add_fd(l, p[0], 0, on_fd, &w, NULL), SHOAL_EINVAL);
    close(p[0]);
    close(p[1]);

    /* Both directions on one source: a socket is writable at once, readable too once
     * the peer wrote. */
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct fdsrc b = {.fd = sv[0], .per_call = 8};
    T_OK(shoal_loop_add_fd(l, sv[0], SHOAL_LOOP_READABLE | SHOAL_LOOP_WRITABLE, on_fd, &b,
                           &src));
    assert_int_equal(shoal_loop_run_once(l, SHOAL_SEC(5)), 1);
    assert_int_equal(b.last, SHOAL_LOOP_WRITABLE);
    assert_int_equal(write(sv[1], "x", 1), 1);
    int64_t end = shoal__now_ns() + SHOAL_SEC(5);
    while (b.last != (SHOAL_LOOP_READABLE | SHOAL_LOOP_WRITABLE) && shoal__now_ns() < end)
        assert_true(shoal_loop_run_once(l, SHOAL_SEC(1)) >= 0);
    assert_int_equal(b.last, SHOAL_LOOP_READABLE | SHOAL_LOOP_WRITABLE);
    T_OK(shoal_loop_remove(l, src));
    close(sv[0]);
    close(sv[1]);
    shoal_loop_destroy(l);
}

/* A timer's callback removes another timer due in the same pass: it never fires. */
static shoal_loop_source *victim_timer;

static void on_killer_timer(shoal_loop *l, shoal_loop_source *s, int ev, void *arg)
{
    (void)s, (void)ev;
    (*(int *)arg)++;
    if (victim_timer) {
        T_OK(shoal_loop_remove(l, victim_timer));
        victim_timer = NULL;
    }
}

static void test_timer_removed_by_timer(void **state)
{
    (void)state;
    shoal_loop *l = lt_new_loop();
    int killer = 0, victim = 0;
    T_OK(shoal_loop_add_timer(l, SHOAL_MS(5), 0, on_killer_timer, &killer, NULL));
    T_OK(
        shoal_loop_add_timer(l, SHOAL_MS(5), 0, on_killer_timer, &victim, &victim_timer));
    usleep(10000); /* both due before the next pass */
    assert_int_equal(shoal_loop_run_once(l, SHOAL_SEC(5)), 1);
    assert_int_equal(shoal_loop_run_once(l, SHOAL_MS(20)), 0);
    assert_int_equal(killer, 1);
    assert_int_equal(victim, 0);
    shoal_loop_destroy(l);
}

/* ---- posts, wake, stop
 * ----------------------------------------------------------------- */

enum { POSTERS = 4, POSTS = 2000 };

struct posts {
    shoal_loop *l;
    int last[POSTERS]; /* the last sequence number seen per thread */
    int total;
    bool in_order;
};

struct post_arg {
    struct posts *p;
    int thread, seq;
};

static struct post_arg post_args[POSTERS][POSTS];

static void on_post(shoal_loop *l, void *arg)
{
    (void)l;
    struct post_arg *a = arg;
    if (a->seq != a->p->last[a->thread] + 1)
        a->p->in_order = false;
    a->p->last[a->thread] = a->seq;
    if (++a->p->total == POSTERS * POSTS)
        shoal_loop_stop(l);
}

static void *poster(void *arg)
{
    struct post_arg *row = arg;
    for (int i = 0; i < POSTS; i++) {
        T_OK(shoal_loop_post(row[i].p->l, on_post, &row[i]));
        if (i % 64 == 0)
            usleep(100); /* let the loop fall asleep now and then */
    }
    return NULL;
}

/* Callbacks posted from several threads all run, in order per thread, on the loop's
 * thread; the last one stops shoal_loop_run. */
static void test_posts_from_threads(void **state)
{
    (void)state;
    struct posts p = {.l = lt_new_loop(), .in_order = true};
    for (int t = 0; t < POSTERS; t++) {
        p.last[t] = -1;
        for (int i = 0; i < POSTS; i++)
            post_args[t][i] = (struct post_arg){&p, t, i};
    }
    pthread_t th[POSTERS];
    for (int t = 0; t < POSTERS; t++)
        assert_int_equal(pthread_create(&th[t], NULL, poster, post_args[t]), 0);
    T_OK(shoal_loop_run(p.l));
    for (int t = 0; t < POSTERS; t++)
        pthread_join(th[t], NULL);
    assert_int_equal(p.total, POSTERS * POSTS);
    assert_true(p.in_order);
    /* A post nobody runs is freed with the loop. */
    T_OK(shoal_loop_post(p.l, on_post, &post_args[0][0]));
    shoal_loop_destroy(p.l);
}

static void *waker(void *arg)
{
    usleep(30000);
    shoal_loop_wake(arg);
    return NULL;
}

static void *stopper(void *arg)
{
    usleep(30000);
    shoal_loop_stop(arg);
    return NULL;
}

/* A wake-up from another thread ends a wait without limit; so does a stop. */
static void test_wake_and_stop_from_thread(void **state)
{
    (void)state;
    shoal_loop *l = lt_new_loop();
    struct chan *c = t_shared_alloc(sizeof(*c)); /* something to sleep on */
    shoal__waitable w = chan_waitable(c, false);
    T_OK(shoal__loop_add_waitable(l, &w, SHOAL_LOOP_READABLE, take_all, c, NULL));
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, waker, l), 0);
    assert_int_equal(shoal_loop_run_once(l, SHOAL_FOREVER), 0);
    pthread_join(th, NULL);
    assert_int_equal(pthread_create(&th, NULL, stopper, l), 0);
    T_OK(shoal_loop_run(l));
    pthread_join(th, NULL);
    /* A stop while not running: the next run returns at once. */
    shoal_loop_stop(l);
    T_OK(shoal_loop_run(l));
    shoal_loop_destroy(l);
    munmap(c, sizeof(*c));
}

/* ---- callbacks that change the sources ------------------------------------------------
 */

struct remover {
    struct chan *c;
    shoal_loop_source *victim; /* removed by the first callback that runs */
    shoal_loop_source **added; /* a source added from the callback */
    int calls;
};

static struct remover rm_a, rm_b;

static void on_remover(shoal_loop *l, shoal_loop_source *s, int ev, void *arg)
{
    (void)ev;
    struct remover *r = arg;
    r->calls++;
    atomic_store(&r->c->got, atomic_load(&r->c->sent));
    if (r->victim) {
        T_OK(shoal_loop_remove(l, r->victim));
        struct remover *other = r == &rm_a ? &rm_b : &rm_a;
        other->victim = NULL;
        r->victim = NULL;
        T_OK(shoal_loop_remove(l, s)); /* and itself */
        shoal__waitable w = chan_waitable(r->c, false);
        T_OK(shoal__loop_add_waitable(l, &w, SHOAL_LOOP_READABLE, take_all, r->c,
                                      r->added));
    }
}

static void test_callbacks_remove_and_add(void **state)
{
    (void)state;
    shoal_set_spin_ns(0);
    struct chan *c = t_shared_alloc(2 * sizeof(*c));
    shoal_loop *l = lt_new_loop();
    shoal_loop_source *sa, *sb, *added = NULL;
    rm_a = (struct remover){.c = &c[0], .added = &added};
    rm_b = (struct remover){.c = &c[1], .added = &added};
    shoal__waitable wa = chan_waitable(&c[0], false), wb = chan_waitable(&c[1], false);
    T_OK(shoal__loop_add_waitable(l, &wa, SHOAL_LOOP_READABLE, on_remover, &rm_a, &sa));
    T_OK(shoal__loop_add_waitable(l, &wb, SHOAL_LOOP_READABLE, on_remover, &rm_b, &sb));
    assert_int_equal(shoal_loop_run_once(l, SHOAL_MS(20)), 0); /* both asleep */
    rm_a.victim = sb;
    rm_b.victim = sa;
    chan_send(&c[0]);
    chan_send(&c[1]);
    /* Both are ready in the same pass: whichever runs first removes the other. */
    int64_t end = shoal__now_ns() + SHOAL_SEC(10);
    while (rm_a.calls + rm_b.calls == 0 && shoal__now_ns() < end)
        assert_true(shoal_loop_run_once(l, SHOAL_SEC(1)) >= 0);
    assert_int_equal(rm_a.calls + rm_b.calls, 1);
    assert_non_null(added);
    struct chan *kept = rm_a.calls ? &c[0] : &c[1];
    /* The source added from the callback works; the removed ones are gone. */
    chan_send(&c[0]);
    chan_send(&c[1]);
    end = shoal__now_ns() + SHOAL_SEC(10);
    while (atomic_load(&kept->calls) == 0 && shoal__now_ns() < end)
        assert_true(shoal_loop_run_once(l, SHOAL_SEC(1)) >= 0);
    assert_int_equal(atomic_load(&kept->calls), 1);
    assert_int_equal(rm_a.calls + rm_b.calls, 1);
    assert_int_equal(shoal_loop_remove(l, NULL), SHOAL_EINVAL);
    shoal_loop_destroy(l);
    assert_int_equal(atomic_load(&c[0].sleepers) + atomic_load(&c[1].sleepers), 0);
    munmap(c, 2 * sizeof(*c));
    shoal_set_spin_ns(20000);
}

/* ---- shoal objects: queues, pipes, events, semaphores
 * ---------------------------------- */

enum { NQ = 1000, QPRODUCERS = 5 };

struct qshared {
    _Atomic int64_t committed[NQ]; /* messages whose put returned 0, per queue */
    _Atomic int started[QPRODUCERS];
};

struct qstate {
    shoal_queue *q[NQ];
    int64_t next[NQ]; /* the next sequence number expected */
    int eof[NQ];
    int eofs;
    bool bad; /* a message out of order: lost or duplicated */
};

static struct qshared *qsh;
static struct qstate qst;

/* Producer p: sequence numbers 0, 1, ... on every queue i with i % QPRODUCERS == p,
 * round after round, `rounds` times (then shuts its queues down), recording each
 * put that returned. */
static int queue_producer(void *arg)
{
    int p = (int)(intptr_t)arg & 0xff, rounds = (int)((intptr_t)arg >> 8);
    atomic_store(&qsh->started[p], 1);
    for (int64_t k = 0; k < rounds; k++)
        for (int i = p; i < NQ; i += QPRODUCERS) {
            if (shoal_queue_put(qst.q[i], &k, sizeof(k), SHOAL_SEC(20)) != 0)
                return 10;
            atomic_store(&qsh->committed[i], k + 1);
        }
    for (int i = p; i < NQ; i += QPRODUCERS)
        shoal_queue_shutdown(qst.q[i]);
    return 0;
}

static void on_queue(shoal_loop *l, shoal_loop_source *s, int ev, void *arg)
{
    (void)l, (void)s;
    int i = (int)(intptr_t)arg;
    if (ev < 0) { /* drained and shut down */
        if (ev != SHOAL_EEOF || qst.eof[i]++)
            qst.bad = true;
        qst.eofs++;
        return;
    }
    int64_t v;
    size_t len;
    /* Take a few, not all: the rest is reported again (level-triggered). */
    for (int n = 0; n < 4 && shoal_queue_try_get(qst.q[i], &v, sizeof(v), &len) == 0; n++)
        if (v != qst.next[i]++)
            qst.bad = true;
}

/* One loop serves 1,000 queues fed by producers in several processes, two of them
 * SIGKILLed while they put: every message whose put returned is delivered once and
 * in order, every queue reaches end-of-stream, nothing hangs. */
static void test_queues_killed_producers(void **state)
{
    (void)state;
    qsh = t_shared_alloc(sizeof(*qsh));
    memset(&qst, 0, sizeof(qst));
    shoal_loop *l = lt_new_loop();
    shoal_queue_config cfg = {.type = shoal_typecode('q'), .capacity = 8};
    for (int i = 0; i < NQ; i++) {
        T_OK(shoal_queue_open(&qst.q[i], NULL, SHOAL_CREATE, &cfg, NULL));
        T_OK(shoal_loop_add_queue(l, qst.q[i], SHOAL_LOOP_READABLE, on_queue,
                                  (void *)(intptr_t)i, NULL));
    }
    pid_t pids[QPRODUCERS];
    for (int p = 0; p < QPRODUCERS; p++) /* 0 and 1 run "forever": they are killed */
        pids[p] =
            t_fork(queue_producer, (void *)(intptr_t)(p | (p < 2 ? 1 << 20 : 40) << 8));
    int64_t end = shoal__now_ns() + SHOAL_SEC(60);
    int64_t kill_at = shoal__now_ns() + SHOAL_MS(400);
    bool killed = false;
    while (qst.eofs < NQ) {
        assert_true(shoal__now_ns() < end);
        assert_true(shoal_loop_run_once(l, SHOAL_MS(100)) >= 0);
        if (!killed && shoal__now_ns() >= kill_at) {
            t_kill(pids[0]);
            t_kill(pids[1]);
            for (int i = 0; i < NQ; i++) /* the survivor ends their streams */
                if (i % QPRODUCERS < 2)
                    T_OK(shoal_queue_shutdown(qst.q[i]));
            killed = true;
        }
    }
    for (int p = 2; p < QPRODUCERS; p++)
        assert_int_equal(t_wait(pids[p]), 0);
    assert_false(qst.bad);
    for (int i = 0; i < NQ; i++) {
        int64_t c = atomic_load(&qsh->committed[i]);
        /* All that was committed, plus at most the put a kill interrupted after it
         * committed but before it was recorded. */
        assert_true(qst.next[i] >= c && qst.next[i] <= c + 1);
        if (i % QPRODUCERS >= 2)
            assert_int_equal(qst.next[i], 40);
        else
            assert_true(c > 0); /* the killed ones were killed mid-stream */
    }
    shoal_loop_destroy(l);
    for (int i = 0; i < NQ; i++)
        T_OK(shoal_queue_close(qst.q[i]));
    munmap(qsh, sizeof(*qsh));
}

/* Many producers on one MPMC queue, the loop asleep between messages (spin budget
 * 0) and taking one message per callback: every message arrives once, in each
 * producer's order — no wake-up is lost however many producers there are. */
enum { MP_PRODUCERS = 4, MP_EACH = 4000 };

struct mp_state {
    shoal_queue *q;
    int64_t next[MP_PRODUCERS];
    int got;
    bool bad;
};

static int mp_producer(void *arg)
{
    struct mp_state *m = arg;
    int p = (int)(m->next[0] >> 32);
    for (int64_t k = 0; k < MP_EACH; k++) {
        int64_t v = (int64_t)p << 32 | k;
        if (shoal_queue_put(m->q, &v, sizeof(v), SHOAL_SEC(20)))
            return 1;
        if (k % 512 == 0)
            usleep(200);
    }
    return 0;
}

static void on_mp(shoal_loop *l, shoal_loop_source *s, int ev, void *arg)
{
    (void)l, (void)s, (void)ev;
    struct mp_state *m = arg;
    int64_t v;
    size_t len;
    if (shoal_queue_try_get(m->q, &v, sizeof(v), &len) != 0)
        return; /* a readiness hint only */
    int p = (int)(v >> 32);
    if (p < 0 || p >= MP_PRODUCERS || (v & 0xffffffff) != m->next[p]++)
        m->bad = true;
    m->got++;
}

static bool mp_done(void *arg)
{
    return ((struct mp_state *)arg)->got == MP_PRODUCERS * MP_EACH;
}

static void test_queue_many_producers(void **state)
{
    (void)state;
    shoal_set_spin_ns(0);
    static struct mp_state m;
    memset(&m, 0, sizeof(m));
    shoal_queue_config cfg = {.type = shoal_typecode('q'), .capacity = 16};
    T_OK(shoal_queue_open(&m.q, NULL, SHOAL_CREATE, &cfg, NULL));
    shoal_loop *l = lt_new_loop();
    T_OK(shoal_loop_add_queue(l, m.q, SHOAL_LOOP_READABLE, on_mp, &m, NULL));
    pid_t pids[MP_PRODUCERS];
    for (int p = 0; p < MP_PRODUCERS; p++) {
        m.next[0] = (int64_t)p << 32; /* the child's id, read right after fork */
        pids[p] = t_fork(mp_producer, &m);
    }
    m.next[0] = 0;
    run_until(l, mp_done, &m, 30000);
    for (int p = 0; p < MP_PRODUCERS; p++)
        assert_int_equal(t_wait(pids[p]), 0);
    assert_false(m.bad);
    shoal_loop_destroy(l);
    T_OK(shoal_queue_close(m.q));
    shoal_set_spin_ns(20000);
}

struct objs {
    int event, sem, pipe_in, room;
    int pipe_code;
    shoal_sem *s;
    shoal_pipe *p;
    shoal_event *e;
};

static void on_obj(shoal_loop *l, shoal_loop_source *s, int ev, void *arg)
{
    (void)l, (void)s, (void)arg;
    assert_true(ev == SHOAL_LOOP_READABLE || ev == SHOAL_LOOP_WRITABLE || ev < 0);
}

static void on_event(shoal_loop *l, shoal_loop_source *s, int ev, void *arg)
{
    struct objs *o = arg;
    on_obj(l, s, ev, arg);
    o->event++;
    T_OK(shoal_event_clear(o->e));
}

static void on_sem(shoal_loop *l, shoal_loop_source *s, int ev, void *arg)
{
    struct objs *o = arg;
    on_obj(l, s, ev, arg);
    if (shoal_sem_try(o->s) == 0)
        o->sem++;
}

static void on_pipe(shoal_loop *l, shoal_loop_source *s, int ev, void *arg)
{
    struct objs *o = arg;
    on_obj(l, s, ev, arg);
    if (ev < 0) {
        o->pipe_code = ev;
        return;
    }
    char buf[16];
    size_t len;
    int rc = shoal_pipe_recv(o->p, buf, sizeof(buf), &len, SHOAL_NOWAIT);
    if (rc == 0)
        o->pipe_in++;
    else if (rc != SHOAL_EAGAIN)
        o->pipe_code = rc;
}

static void on_room(shoal_loop *l, shoal_loop_source *s, int ev, void *arg)
{
    struct objs *o = arg;
    on_obj(l, s, ev, arg);
    o->room++;
    T_OK(shoal_loop_remove(l, s));
}

struct obj_child {
    shoal_event *e;
    shoal_sem *s;
    shoal_pipe *p;
    shoal_queue *q;
};

/* The other process: sets the event, releases the semaphore twice, sends on the pipe
 * three times, takes one message from the full queue, then dies without closing. */
static int obj_child(void *arg)
{
    struct obj_child *c = arg;
    usleep(20000);
    if (shoal_event_set(c->e) || shoal_sem_release(c->s) || shoal_sem_release(c->s))
        return 1;
    for (int i = 0; i < 3; i++)
        if (shoal_pipe_send(c->p, "hi", 2, SHOAL_SEC(5)))
            return 2;
    int64_t v;
    size_t len;
    if (shoal_queue_get(c->q, &v, sizeof(v), &len, SHOAL_SEC(5)))
        return 3;
    usleep(20000);
    kill(getpid(), SIGKILL);
    return 4;
}

static bool objs_done(void *arg)
{
    struct objs *o = arg;
    return o->event >= 1 && o->sem >= 2 && o->pipe_in >= 3 && o->room >= 1 &&
           o->pipe_code != 0;
}

/* An Event, a Semaphore, a pipe end and a queue's writable side, driven by another
 * process that then dies: each callback runs, and the pipe reports the dead peer. */
static void test_event_sem_pipe_room(void **state)
{
    (void)state;
    shoal_loop *l = lt_new_loop();
    struct objs o = {0};
    struct obj_child c;
    T_OK(shoal_event_open(&o.e, NULL, SHOAL_CREATE, NULL));
    T_OK(shoal_sem_open(&o.s, NULL, SHOAL_CREATE, 0, NULL));
    shoal_queue_config pcfg = {.max_msg = 16, .capacity = 4};
    T_OK(shoal_pipe_pair(&o.p, &c.p, NULL, &pcfg, NULL));
    shoal_queue_config qcfg = {.type = shoal_typecode('q'), .capacity = 2};
    T_OK(shoal_queue_open(&c.q, NULL, SHOAL_CREATE, &qcfg, NULL));
    int64_t v = 7;
    T_OK(shoal_queue_put(c.q, &v, sizeof(v), 0));
    T_OK(shoal_queue_put(c.q, &v, sizeof(v), 0));
    c.e = o.e;
    c.s = o.s;
    assert_int_equal(shoal_pipe_poll(o.p, SHOAL_NOWAIT), 0); /* this end is ours */
    T_OK(shoal_loop_add_event(l, o.e, on_event, &o, NULL));
    T_OK(shoal_loop_add_sem(l, o.s, on_sem, &o, NULL));
    T_OK(shoal_loop_add_pipe(l, o.p, SHOAL_LOOP_READABLE, on_pipe, &o, NULL));
    T_OK(shoal_loop_add_queue(l, c.q, SHOAL_LOOP_WRITABLE, on_room, &o, NULL));
    assert_int_equal(shoal_loop_add_event(l, NULL, on_event, &o, NULL), SHOAL_EINVAL);
    assert_int_equal(shoal_loop_add_queue(l, c.q, 3, on_room, &o, NULL), SHOAL_EINVAL);
    assert_int_equal(shoal_loop_run_once(l, SHOAL_MS(10)), 0);
    pid_t pid = t_fork(obj_child, &c);
    run_until(l, objs_done, &o, 20000);
    assert_int_equal(t_wait(pid), 128 + SIGKILL);
    assert_int_equal(o.event, 1); /* cleared by its callback: not again */
    assert_int_equal(o.sem, 2);
    assert_int_equal(o.pipe_in, 3);
    assert_int_equal(o.pipe_code, SHOAL_EPEERDEAD);
    shoal_loop_destroy(l);
    T_OK(shoal_queue_close(c.q));
    T_OK(shoal_pipe_close(o.p));
    T_OK(shoal_pipe_close(c.p));
    T_OK(shoal_sem_close(o.s));
    T_OK(shoal_event_close(o.e));
}

/* ---- the fallback when io_uring is refused
 * --------------------------------------------- */

/* Installs a seccomp filter that fails io_uring_setup — and futex_waitv too when
 * `waitv` — with `err`, as a container's profile may. */
static void deny_syscalls(int err, bool waitv)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 1, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
                 waitv ? __NR_futex_waitv : __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (unsigned)err),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = sizeof(f) / sizeof(f[0]), .filter = f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog))
        _exit(90);
}

static void deny_io_uring(int err)
{
    deny_syscalls(err, false);
}

static int fallback_child(void *arg)
{
    deny_io_uring(*(int *)arg);
    /* Left alone, the loop takes epoll — and works there. */
    unsetenv("SHOAL_LOOP_ENGINE");
    shoal_loop *l;
    if (shoal_loop_create(&l) != 0)
        return 1;
    if (strcmp(shoal_loop_engine(l), "epoll") != 0)
        return 2;
    struct chan c = {0};
    shoal__waitable w = chan_waitable(&c, false);
    if (shoal__loop_add_waitable(l, &w, SHOAL_LOOP_READABLE, take_all, &c, NULL) != 0)
        return 3;
    chan_send(&c);
    if (shoal_loop_run_once(l, SHOAL_SEC(5)) != 1)
        return 4;
    shoal_loop_destroy(l);
    shoal_loop_support sup;
    if (shoal_loop_probe(&sup) != 0 || sup.uring ||
        (sup.uring_built && sup.uring_errno != *(int *)arg) ||
        strcmp(sup.engine, "epoll") != 0 || strcmp(shoal_loop_engine(NULL), "epoll"))
        return 5;
    /* Forcing io_uring now fails, and says why. */
    setenv("SHOAL_LOOP_ENGINE", "uring", 1);
    int rc = shoal_loop_create(&l);
    if (rc != SHOAL_ESYS || !strstr(shoal_errdetail(), "io_uring"))
        return 6;
    return 0;
}

static void test_seccomp_fallback(void **state)
{
    (void)state;
    static int errs[2] = {ENOSYS, EPERM};
    for (int i = 0; i < 2; i++)
        assert_int_equal(t_wait(t_fork(fallback_child, &errs[i])), 0);
}

/* Runs `shoal doctor ARGS` (through the shell, in this process's environment),
 * capturing its output; returns the exit code. */
static int doctor(char *out, size_t cap, const char *args)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "%s doctor %s 2>&1", SHOAL_CLI_PATH, args);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    int st = pclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static int doctor_child(void *arg)
{
    (void)arg;
    deny_io_uring(EPERM);
    unsetenv("SHOAL_LOOP_ENGINE");
    static char out[4096];
    if (doctor(out, sizeof(out), "") != 0)
        return 1;
    if ((!strstr(out, "io_uring_setup: Operation not permitted") &&
         !strstr(out, "built without it")) ||
        !strstr(out, "loop engine        epoll\n") ||
        !strstr(out, "verdict            usable"))
        return 2;
    return 0;
}

/* shoal doctor: usable here, names the engine and a forced one, refuses a missing
 * root, and in a "container" that refuses io_uring says so and picks epoll. */
static void test_doctor(void **state)
{
    (void)state;
    char out[4096];
    assert_int_equal(doctor(out, sizeof(out), ""), 0);
    assert_non_null(strstr(out, "robust futexes     yes"));
    assert_non_null(strstr(out, "verdict            usable"));
    const char *want = getenv("SHOAL_LOOP_ENGINE");
    char line[64];
    snprintf(line, sizeof(line), "loop engine        %s (forced", want ? want : "");
    if (want)
        assert_non_null(strstr(out, line));
    assert_int_equal(doctor(out, sizeof(out), "--root /nonexistent-shoal-root"), 1);
    assert_non_null(strstr(out, "NOT usable"));
    assert_int_equal(doctor(out, sizeof(out), "--bogus"), 2);
    assert_int_equal(t_wait(t_fork(doctor_child, NULL)), 0);
}

/* Without futex_waitv either, the epoll engine waits with one helper per source in
 * FUTEX_WAIT: several processes' messages all arrive, and removing a watched source
 * releases its helper. */
static int no_waitv_child(void *arg)
{
    (void)arg;
    deny_syscalls(ENOSYS, true);
    unsetenv("SHOAL_LOOP_ENGINE");
    shoal_loop_support sup;
    shoal_loop_probe(&sup);
    if (sup.futex_waitv || sup.futex_waitv_errno != ENOSYS || strcmp(sup.engine, "epoll"))
        return 1;
    shoal_set_spin_ns(0);
    enum { N = 3, EACH = 1500 };
    struct chan *c = mmap(NULL, (N + 1) * sizeof(*c), PROT_READ | PROT_WRITE,
                          MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    shoal_loop *l;
    if (c == MAP_FAILED || shoal_loop_create(&l))
        return 2;
    shoal_loop_source *extra;
    for (int i = 0; i <= N; i++) {
        shoal__waitable w = chan_waitable(&c[i], false);
        if (shoal__loop_add_waitable(l, &w, SHOAL_LOOP_READABLE, take_all, &c[i],
                                     i == N ? &extra : NULL))
            return 3;
    }
    struct feed f = {
        .chans = c, .nchans = N, .first = 0, .step = 1, .per_chan = EACH, .pause_us = 0};
    pid_t pids[2] = {t_fork(feeder, &f), t_fork(feeder, &f)};
    if (shoal_loop_run_once(l, SHOAL_MS(5)) < 0 || shoal_loop_remove(l, extra))
        return 4;
    if (atomic_load(&c[N].sleepers) != 0)
        return 5;
    int64_t end = shoal__now_ns() + SHOAL_SEC(30);
    for (int i = 0; i < N; i++)
        while (atomic_load(&c[i].got) < 2 * EACH) {
            if (shoal__now_ns() > end || shoal_loop_run_once(l, SHOAL_MS(100)) < 0)
                return 6;
        }
    if (t_wait(pids[0]) || t_wait(pids[1]))
        return 7;
    shoal_loop_destroy(l);
    for (int i = 0; i < N; i++)
        if (atomic_load(&c[i].sleepers))
            return 8;
    return 0;
}

static void test_no_futex_waitv(void **state)
{
    (void)state;
    assert_int_equal(t_wait(t_fork(no_waitv_child, NULL)), 0);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    assert_int_equal(shoal_loop_create(NULL), SHOAL_EINVAL);
    assert_int_equal(shoal_loop_run_once(NULL, 0), SHOAL_EINVAL);
    assert_int_equal(shoal_loop_post(NULL, NULL, NULL), SHOAL_EINVAL);
    shoal_loop *l = lt_new_loop();
    assert_int_equal(shoal_loop_add_timer(l, 0, 0, NULL, NULL, NULL), SHOAL_EINVAL);
    assert_int_equal(shoal_loop_run_once(l, SHOAL_NOWAIT), 0);
    shoal_loop_destroy(l);
    shoal_loop_destroy(NULL);
    char *was = getenv("SHOAL_LOOP_ENGINE") ? strdup(getenv("SHOAL_LOOP_ENGINE")) : NULL;
    setenv("SHOAL_LOOP_ENGINE", "kqueue", 1);
    assert_int_equal(shoal_loop_create(&l), SHOAL_EINVAL);
    assert_non_null(strstr(shoal_errdetail(), "kqueue"));
    if (was)
        setenv("SHOAL_LOOP_ENGINE", was, 1);
    else
        unsetenv("SHOAL_LOOP_ENGINE");
    free(was);
}

int main(void)
{
    t_setup_root();
    if (lt_engine_unavailable())
        return 0;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_level_triggered),
        cmocka_unit_test(test_wait_cross_process),
        cmocka_unit_test(test_many_sources_killed_producers),
        cmocka_unit_test(test_dead_peer),
        cmocka_unit_test(test_timers_in_order),
        cmocka_unit_test(test_timer_periodic_and_reset),
        cmocka_unit_test(test_fd_level_and_hup),
        cmocka_unit_test(test_timer_removed_by_timer),
        cmocka_unit_test(test_posts_from_threads),
        cmocka_unit_test(test_wake_and_stop_from_thread),
        cmocka_unit_test(test_callbacks_remove_and_add),
        cmocka_unit_test(test_queues_killed_producers),
        cmocka_unit_test(test_queue_many_producers),
        cmocka_unit_test(test_event_sem_pipe_room),
        cmocka_unit_test(test_seccomp_fallback),
        cmocka_unit_test(test_no_futex_waitv),
        cmocka_unit_test(test_doctor),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
