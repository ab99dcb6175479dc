/*
 * loop_remove.c — removal is synchronous, on the engine $SHOAL_LOOP_ENGINE names (CTest
 * runs this program once per engine).
 *
 * Producers in other processes keep sending on 64 channels (looptest.h's, each in a
 * page of a shared memory file) while the loop's sources are removed and added again,
 * from the source's own callback and, while the source sleeps in the engine, from a
 * timer. Right after each removal the loop process unmaps its view of that
 * channel's page and maps it again at another address, and the source's memory is
 * freed by the removal itself: an engine or kernel request that still referred to
 * either would complete on freed memory (AddressSanitizer reports it) or read an
 * unmapped word (a crash). At the end every message sent has been taken and no
 * sleeper is left announced on any channel. On io_uring, a FUTEX_WAKE of the word of
 * a source removed while it slept in the engine finds no waiter: the ring's futex wait
 * was cancelled before shoal_loop_remove returned.
 */
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>

#include "looptest.h"

enum { NCHAN = 64, PRODUCERS = 2, PAGE = 4096 };

struct ctx {
    shoal_loop *loop;
    int fd;                   /* the shared memory file: page i is channel i */
    struct chan *view[NCHAN]; /* this process's mapping of each page */
    shoal_loop_source *src[NCHAN];
    _Atomic int *stop; /* producers: stop sending */
    unsigned rnd;
    bool uring; /* the io_uring engine: its removal also cancels the kernel's wait */
    int removed_own, removed_asleep; /* removals from the own callback / a timer */
    int calls;
};

static void on_chan(shoal_loop *l, shoal_loop_source *s, int ev, void *arg);

static struct chan *map_chan(struct ctx *x, int i)
{
    void *p =
        mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, x->fd, (off_t)i * PAGE);
    assert_true(p != MAP_FAILED);
    return p;
}

/* Watches channel i through the view p. */
static void attach(struct ctx *x, int i, struct chan *p)
{
    x->view[i] = p;
    shoal__waitable w = chan_waitable(p, false);
    T_OK(shoal__loop_add_waitable(x->loop, &w, SHOAL_LOOP_READABLE, on_chan,
                                  (void *)(intptr_t)i, &x->src[i]));
}

/* Removes channel i's source and unmaps its view at once, then watches it again
 * through a new view (at another address: the old one is still mapped when the new
 * one is made). */
static void reattach(struct ctx *x, int i)
{
    struct chan *fresh = map_chan(x, i);
    bool asleep = x->src[i]->watched;
    T_OK(shoal_loop_remove(x->loop, x->src[i]));
    if (asleep && x->uring) /* no futex wait of the ring's is left on the word */
        assert_int_equal(shoal__futex_wake(&x->view[i]->word, INT_MAX), 0);
    assert_int_equal(munmap(x->view[i], PAGE), 0);
    x->view[i] = NULL;
    x->src[i] = NULL;
    attach(x, i, fresh);
}

static struct ctx *g_ctx;

static void on_chan(shoal_loop *l, shoal_loop_source *s, int ev, void *arg)
{
    (void)l;
    struct ctx *x = g_ctx;
    int i = (int)(intptr_t)arg;
    assert_int_equal(ev, SHOAL_LOOP_READABLE);
    assert_ptr_equal(s, x->src[i]);
    struct chan *c = x->view[i];
    atomic_store(&c->got, atomic_load(&c->sent));
    if (++x->calls % 5 == 0) { /* its own callback removes it */
        reattach(x, i);
        x->removed_own++;
    }
}

/* Every millisecond: a channel whose source sleeps in the engine is removed. */
static void on_tick(shoal_loop *l, shoal_loop_source *s, int ev, void *arg)
{
    (void)l, (void)s, (void)ev, (void)arg;
    struct ctx *x = g_ctx;
    for (int tries = 0; tries < NCHAN; tries++) {
        int i = (int)(rand_r(&x->rnd) % NCHAN);
        if (!x->src[i]->watched)
            continue;
        reattach(x, i);
        x->removed_asleep++;
        return;
    }
}

struct prod {
    struct chan *chans; /* the whole file, mapped once */
    _Atomic int *stop;
    int first;
};

static int producer(void *arg)
{
    struct prod *p = arg;
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* a failed test must not leave us running */
    if (getppid() == 1)
        return 1;
    for (unsigned k = 0; !atomic_load(p->stop); k++) {
        struct chan *c =
            (struct chan *)((char *)p->chans +
                            (size_t)((k * 7 + (unsigned)p->first) % NCHAN) * PAGE);
        chan_send(c);
        if (k % 16 == 0)
            usleep(50); /* let the loop fall asleep now and then */
    }
    return 0;
}

static bool all_taken(struct ctx *x)
{
    for (int i = 0; i < NCHAN; i++)
        if (atomic_load(&x->view[i]->got) < atomic_load(&x->view[i]->sent))
            return false;
    return true;
}

static void test_remove_while_woken(void **state)
{
    (void)state;
    shoal_set_spin_ns(0); /* sleep in the engine at once */
    static struct ctx x;
    g_ctx = &x;
    x.rnd = 12345;
    x.fd = memfd_create("loop_remove", MFD_CLOEXEC);
    assert_true(x.fd >= 0);
    assert_int_equal(ftruncate(x.fd, (off_t)NCHAN * PAGE), 0);
    struct chan *all =
        mmap(NULL, (size_t)NCHAN * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, x.fd, 0);
    assert_true(all != MAP_FAILED);
    x.stop = t_shared_alloc(sizeof(*x.stop));

    x.loop = lt_new_loop();
    x.uring = !strcmp(shoal_loop_engine(x.loop), "uring");
    for (int i = 0; i < NCHAN; i++)
        attach(&x, i, map_chan(&x, i));
    shoal_loop_source *tick;
    T_OK(shoal_loop_add_timer(x.loop, SHOAL_MS(1), SHOAL_MS(1), on_tick, NULL, &tick));

    pid_t pids[PRODUCERS];
    struct prod p[PRODUCERS];
    for (int k = 0; k < PRODUCERS; k++) {
        p[k] = (struct prod){.chans = all, .stop = x.stop, .first = k * 3};
        pids[k] = t_fork(producer, &p[k]);
    }
    int64_t t0 = shoal__now_ns(), stop_at = t0 + SHOAL_MS(1500),
            limit = t0 + SHOAL_SEC(60);
    while (shoal__now_ns() < stop_at)
        assert_true(shoal_loop_run_once(x.loop, SHOAL_MS(10)) >= 0);
    atomic_store(x.stop, 1);
    for (int k = 0; k < PRODUCERS; k++)
        assert_int_equal(t_wait(pids[k]), 0);
    T_OK(shoal_loop_remove(x.loop, tick));
    while (!all_taken(&x)) {
        assert_true(shoal__now_ns() < limit);
        assert_true(shoal_loop_run_once(x.loop, SHOAL_MS(100)) >= 0);
    }
    printf("callbacks %d, removed from their callback %d, removed asleep %d\n", x.calls,
           x.removed_own, x.removed_asleep);
    assert_true(x.removed_own > 0);
    assert_true(x.removed_asleep > 0);

    shoal_loop_destroy(x.loop);
    for (int i = 0; i < NCHAN; i++) {
        struct chan *c = (struct chan *)((char *)all + (size_t)i * PAGE);
        assert_int_equal(atomic_load(&c->sleepers), 0);
        munmap(x.view[i], PAGE);
    }
    munmap(all, (size_t)NCHAN * PAGE);
    close(x.fd);
    shoal_set_spin_ns(20000);
}

int main(void)
{
    t_setup_root();
    if (lt_engine_unavailable())
        return 0;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_remove_while_woken),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
