/*
 * loop_epoll.c — the event loop's epoll engine, for where io_uring is refused.
 *
 * Descriptors go into epoll, level-triggered, with the source as epoll data.
 *
 * epoll cannot wait on a futex word, so helper threads do: each one waits in
 * futex_waitv(2) on its control word and up to GROUP - 1 sources' words, each with
 * the value it expects there (eng_val). The loop thread and the helpers share one
 * mutex that guards every helper's set and the `fired` list. A source in a helper's
 * set is either watched (the loop waits for it) or held (it fired and the loop has not
 * handed it back yet):
 *
 *   watch    (loop) a held source whose helper expects the value the loop just read
 *            needs nothing: the helper waits on that word already. Otherwise the
 *            source gets that value (and a place in a helper with room, starting one
 *            when all are full), the helper's control word is bumped and the helper
 *            is woken before the loop sleeps (`dirty`), so a pass that re-arms many
 *            sources costs one wake per helper.
 *   helper   copy its set under the mutex, wait outside it. Back under the mutex, it
 *            looks at the word futex_waitv named as woken — at every word when the
 *            wait failed (EAGAIN: a word had moved already) or the set changed — and
 *            takes the value it finds there as the new one to wait for; a watched
 *            source whose word moved (or was woken) becomes held and goes to `fired`;
 *            then the helper signals the loop.
 *   signal   (helper) once until the loop has looked (`signalled`): bump `bell`,
 *            then wake the loop the way it sleeps (`mode`): FUTEX_WAKE on `bell`, or
 *            write the eventfd; nothing while it is awake (it looks before sleeping).
 *   loop     sleep (below); then, when signalled, take `fired` and report each
 *            source to the core.
 *   unwatch  (loop) take s out of its helper's set and off `fired`: synchronous, the
 *            helper never looks at s again.
 *
 * The loop sleeps in futex_waitv itself, on `bell` and on the words of its own set
 * (`own`): up to NOWN busy sources — fired again within BUSY_NS — that no helper
 * watches, each with the value the loop read when it armed it; after the wait it
 * reports those whose word moved (or was woken) and holds them until they are armed
 * again. So the wake-up of a busy source costs what a blocking get's does: the waker's
 * FUTEX_WAKE and the loop thread's return from futex_waitv — no helper, no eventfd, no
 * epoll_wait. A helper's hop costs a context switch and two system calls more per
 * message (the eventfd write and read, or the bell's wake); it remains for idle sources
 * (one that fires twice within BUSY_NS joins the own set when the loop arms it again)
 * and without futex_waitv. A full own set makes room by giving its quietest source back
 * to a group helper once that has been quiet for BUSY_NS; otherwise the new busy
 * source goes to a fast helper (below).
 *
 * Descriptors: with an empty own set the loop sleeps in epoll_wait, the helpers
 * writing the eventfd, so that a busy descriptor wakes the loop directly. With busy
 * sources of its own (or no descriptors) it sleeps in futex_waitv, and the descriptor
 * watcher — one more thread, started the first time it is needed — waits in
 * epoll_wait in its place: asked by the loop before each such sleep (`fd_want`), it
 * returns when a descriptor is ready, sets `fd_hit` and signals the loop, which then
 * collects the events with a non-blocking epoll_wait of its own. The watcher never
 * looks at the events' sources (removal stays synchronous) and level-triggered epoll
 * keeps them on its ready list; a descriptor found ready while spinning (ep_pending)
 * sets `fd_hit` too. Without futex_waitv, or when the watcher cannot start (its own
 * sources then go to group helpers), the loop sleeps in epoll_wait.
 *
 * mode and signalled pair as loop.c's asleep and notified do: the loop stores its mode,
 * then loads signalled (and reads bell before both); a signaller exchanges signalled,
 * bumps bell, then loads mode (all sequentially consistent). Either the loop sees the
 * signal and does not sleep, or the signaller sees the mode and wakes it there (and in
 * futex_waitv a bell bumped after the loop read it fails the wait at once).
 *
 * Holding a fired source in its helper (instead of dropping it from the set) saves a
 * second wake-up of the helper per message: the loop's re-arm after the callback
 * finds the helper waiting for the value it reads and does not disturb it.
 *
 * A helper's futex_waitv queues and dequeues every word of its set, so its wake-up
 * costs in proportion to the set. A source that fires again within BUSY_NS therefore
 * moves to a fast helper of its own (two words), up to NFAST of them (promote): the
 * wake-up of a busy source costs the same whether the loop watches 1 or 1,000 others.
 *
 * No wake-up is lost: a waker that changed the word after the loop read it makes
 * futex_waitv fail at once (EAGAIN) or wakes it, and the helper finds the changed word
 * in its scan. A held source's helper waits with a value it read itself, maybe before
 * the loop's; the loop's watch accepts it only when the two are equal, so the helper
 * waits exactly as a fresh watch would (words may return to an earlier value: an
 * Event's does). A helper's work per wake-up is bounded by GROUP whatever the number of
 * sources. The futex_waitv wake mask matches FUTEX_WAKE, so wakers need not know
 * which engine waits.
 *
 * Where futex_waitv itself is refused (kernels before 5.16, strict seccomp profiles)
 * each helper watches one source with FUTEX_WAIT. Taking a source from it also wakes
 * that source's word (a spurious wake-up, harmless to any other sleeper there), but
 * the helper may not be asleep yet, so it sleeps in slices of STALE_SLICE_NS and gets
 * no new source until it has woken up (`stale`).
 *
 * A helper woken on a word it no longer watches for the loop (taken, moved to another
 * set, or held) passes the wake-up on to one other sleeper there (pass_on): a waker
 * that wakes one sleeper only, as a Semaphore's post does, may have meant another.
 *
 * Cross-thread notification (ep_notify) is signal_loop too.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "loop_internal.h"

#define GROUP          32 /* futex words per helper: its control word and 31 sources */
#define HELPER_STACK   (256 * 1024)
#define MAX_EVENTS     64
#define STALE_SLICE_NS (100 * 1000000L) /* without futex_waitv: longest sleep */
#define NFAST          8                /* helpers for one busy source each */
#define BUSY_NS        (1000 * 1000LL)  /* fired again within this: busy */
#define NOWN           4                /* busy sources the loop thread waits on itself */

/* What the loop thread is asleep in (ep->mode), so that signal_loop wakes it there. */
enum { AWAKE, IN_EPOLL, IN_FUTEX };

struct helper {
    struct ep *ep;
    pthread_t th;
    _Atomic uint32_t ctl; /* bumped at every change of set */
    int idx;              /* in ep->h */
    int n;
    bool fast;  /* takes one busy source (see promote); also the loop's own set */
    bool own;   /* the loop thread's own set: no thread, the loop waits on it */
    bool dirty; /* changed since the loop last woke it */
    /* Without futex_waitv: its source was taken while it slept on that source's word;
     * no new source until it has woken up (it would not watch it before then). */
    bool stale;
    shoal_loop_source *set[GROUP - 1];
};

struct ep {
    int epfd, efd;
    pthread_mutex_t mu;
    bool quit;
    bool waitv; /* futex_waitv works here; else one source per helper */
    int per;    /* sources per helper */
    struct helper **h;
    int nh, hcap;
    int room; /* a group helper that had room last time */
    struct helper *fast[NFAST];
    int nfast;
    bool any_dirty;           /* some helper is dirty (loop thread only) */
    int nfds;                 /* descriptor sources */
    shoal_loop_source *fired; /* reported by helpers, not yet by the loop */
    _Atomic int signalled;    /* `fired` or a notification waits for the loop */
    _Atomic int mode;         /* AWAKE, IN_EPOLL or IN_FUTEX (see signal_loop) */
    _Atomic uint32_t bell;    /* bumped by signal_loop; the loop's word in IN_FUTEX */
    struct helper own;        /* busy sources the loop waits on itself */
    /* The descriptor watcher (fdw_main), started the first time the loop sleeps in
     * futex_waitv with descriptors. */
    pthread_t fdw;
    bool fdw_started;
    _Atomic uint32_t fd_want; /* 1: the loop asks the watcher to wait in epoll */
    _Atomic int fd_hit;       /* epoll has something: the loop collects it */
    _Atomic bool fdw_quit;
};

static long futex_waitv(struct futex_waitv *v, unsigned n, const struct timespec *abs)
{
    return syscall(SYS_futex_waitv, v, n, 0, abs, CLOCK_MONOTONIC);
}

int shoal__futex_waitv_probe(void)
{
    uint32_t word = 1;
    struct futex_waitv v = {.val = 0, .uaddr = (uintptr_t)&word, .flags = FUTEX_32};
    if (futex_waitv(&v, 1, NULL) < 0 && errno != EAGAIN)
        return errno;
    return 0;
}

/* Tells the loop to look at `fired` and its notifications: once until it has looked,
 * and only when it sleeps, by the means it sleeps with (see ep_wait). */
static void signal_loop(struct ep *e)
{
    if (atomic_exchange(&e->signalled, 1))
        return;
    atomic_fetch_add(&e->bell, 1);
    int m = atomic_load(&e->mode);
    if (m == IN_FUTEX) {
        shoal__futex_wake(&e->bell, 1);
    } else if (m == IN_EPOLL) {
        uint64_t one = 1;
        ssize_t r = write(e->efd, &one, sizeof(one));
        (void)r; /* EAGAIN: the counter is full, so it is readable anyway */
    }
}

/* Takes set[i] out of h (under mu). */
static void set_del(struct helper *h, int i)
{
    shoal_loop_source *s = h->set[i];
    shoal_loop_source *last = h->set[--h->n];
    h->set[i] = last;
    last->eng_idx = i;
    s->eng_ptr = NULL;
    atomic_fetch_add(&h->ctl, 1);
    if (!h->fast)
        h->ep->room = h->idx;
}

/* The helper's set or values changed: the loop wakes it before it sleeps (under mu). */
static void set_dirty(struct helper *h)
{
    atomic_fetch_add(&h->ctl, 1);
    h->dirty = true;
    h->ep->any_dirty = true;
}

/* Waits on the copy of the set in v[0..n] (v[0]: the control word). Returns the
 * index woken, -1 for "look at every word" (EAGAIN, a signal, a fault). */
static long helper_sleep(struct ep *e, struct futex_waitv *v, int n)
{
    long r;
    if (e->waitv) {
        r = futex_waitv(v, (unsigned)n + 1, NULL);
    } else {
        /* One word only: the control word is not watched while a source's is, so the
         * sleep is sliced and a helper whose source was taken away ends (fini) or
         * returns to service (see `stale`) within a slice. */
        struct futex_waitv *w = n ? &v[1] : &v[0];
        struct timespec slice = {0, STALE_SLICE_NS};
        r = syscall(SYS_futex, (void *)(uintptr_t)w->uaddr, FUTEX_WAIT, (uint32_t)w->val,
                    n ? &slice : NULL, NULL, 0);
        if (r == 0)
            r = n ? 1 : 0;
    }
    return r < 0 ? -1 : r;
}

/* After a wake-up (under mu): whether set[i]'s word moved (or was woken) — then the
 * helper follows it, and reports it unless it is held. Returns whether it reported. */
static bool look(struct ep *e, struct helper *h, int i, bool woken)
{
    shoal_loop_source *s = h->set[i];
    uint32_t w = atomic_load(s->w.word);
    if (w == s->eng_val && !woken)
        return false;
    s->eng_val = w;
    if (s->eng_held)
        return false;
    s->eng_held = s->eng_fired = true;
    s->eng_next = e->fired;
    e->fired = s;
    return true;
}

/*
 * A helper was woken on a word that it no longer watches for the loop (the source was
 * taken or moved away meanwhile, or is held): a waker that wakes one sleeper only (a
 * Semaphore's post) may have meant another one, so it passes the wake-up on. Only the
 * address is used: a word taken away and unmapped meanwhile makes it fail (EFAULT),
 * and memory mapped there since gets a spurious wake-up at worst.
 */
static void pass_on(uint64_t uaddr)
{
    shoal__futex_wake((_Atomic uint32_t *)(uintptr_t)uaddr, 1);
}

/* The helper's thread. It signals the loop (or passes a wake-up on) after it has
 * let go of the mutex: the loop thread, woken on the same CPU, may run at once and
 * must not find the mutex held by the helper it preempted. */
static void *helper_main(void *arg)
{
    struct helper *h = arg;
    struct ep *e = h->ep;
    struct futex_waitv v[GROUP];
    uint64_t absorbed = 0; /* the address of a word woken that it does not watch */
    bool any = false;
    pthread_mutex_lock(&e->mu);
    while (!e->quit) {
        h->stale = false;
        uint32_t c = atomic_load(&h->ctl);
        int n = h->n;
        v[0] = (struct futex_waitv){
            .val = c, .uaddr = (uintptr_t)&h->ctl, .flags = FUTEX_32};
        for (int i = 0; i < n; i++)
            v[i + 1] = (struct futex_waitv){.val = h->set[i]->eng_val,
                                            .uaddr = (uintptr_t)h->set[i]->w.word,
                                            .flags = FUTEX_32};
        pthread_mutex_unlock(&e->mu);
        if (any)
            signal_loop(e);
        if (absorbed)
            pass_on(absorbed);
        absorbed = 0;
        long woke = helper_sleep(e, v, n);
        pthread_mutex_lock(&e->mu);
        bool same = atomic_load(&h->ctl) == c;
        any = false;
        if (same && woke > 0) { /* set[woke - 1] is v[woke] */
            any = look(e, h, (int)woke - 1, true);
        } else if (woke != 0) {
            for (int i = 0; i < h->n; i++)
                any |= look(e, h, i, false);
        }
        if (!any && woke > 0 && (!same || h->set[woke - 1]->eng_held))
            absorbed = v[woke].uaddr;
    }
    pthread_mutex_unlock(&e->mu);
    return NULL;
}

/* Starts one of the engine's threads: a small stack, no signals. pthread_create's
 * result. */
static int thread_start(pthread_t *th, void *(*fn)(void *), void *arg)
{
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, HELPER_STACK);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(th, &attr, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    return rc;
}

static int helper_start(struct ep *e, bool fast, struct helper **out)
{
    if (e->nh == e->hcap) {
        int cap = e->hcap ? 2 * e->hcap : 8;
        struct helper **h = realloc(e->h, (size_t)cap * sizeof(*h));
        if (!h)
            return shoal__err(SHOAL_ENOMEM, "loop (epoll): out of memory");
        e->h = h;
        e->hcap = cap;
    }
    struct helper *h = calloc(1, sizeof(*h));
    if (!h)
        return shoal__err(SHOAL_ENOMEM, "loop (epoll): out of memory");
    h->ep = e;
    h->fast = fast;
    int rc = thread_start(&h->th, helper_main, h);
    if (rc != 0) {
        free(h);
        return shoal__err(SHOAL_ESYS, "loop (epoll): cannot start a futex helper: %s",
                          strerror(rc));
    }
    h->idx = e->nh;
    e->h[e->nh++] = h;
    *out = h;
    return 0;
}

static bool has_room(const struct helper *h, int per)
{
    return !h->fast && h->n < per && !h->stale;
}

/* A group helper with room (under mu), started when all are full. */
static int helper_with_room(struct ep *e, struct helper **out)
{
    if (e->room < e->nh && has_room(e->h[e->room], e->per)) {
        *out = e->h[e->room];
        return 0;
    }
    for (int i = 0; i < e->nh; i++)
        if (has_room(e->h[i], e->per)) {
            e->room = i;
            *out = e->h[i];
            return 0;
        }
    e->room = e->nh;
    return helper_start(e, false, out);
}

/* Puts s in h's set (under mu). */
static void set_add(struct helper *h, shoal_loop_source *s)
{
    s->eng_ptr = h;
    s->eng_idx = h->n;
    h->set[h->n++] = s;
    if (!h->own)
        set_dirty(h);
}

/* Moves s, with its state, from its helper to h (under mu). The old helper may still
 * wait on s's word: a wake-up there finds its set changed and nothing to report. */
static void move(shoal_loop_source *s, struct helper *h)
{
    set_del(s->eng_ptr, s->eng_idx);
    set_add(h, s);
}

/* A fast helper for a busy source (under mu): an idle one, a new one, or the one whose
 * source has been quiet longest, when it has been for BUSY_NS (that source goes back
 * to a group). NULL: every fast helper is busy. */
static struct helper *fast_helper(struct ep *e, int64_t now)
{
    struct helper *cold = NULL;
    for (int i = 0; i < e->nfast; i++) {
        struct helper *f = e->fast[i];
        if (f->n == 0)
            return f;
        if (now - f->set[0]->eng_ns >= BUSY_NS &&
            (!cold || f->set[0]->eng_ns < cold->set[0]->eng_ns))
            cold = f;
    }
    struct helper *h;
    if (!cold && e->nfast < NFAST && helper_start(e, true, &h) == 0)
        return e->fast[e->nfast++] = h;
    if (!cold || helper_with_room(e, &h) < 0)
        return NULL;
    move(cold->set[0], h);
    return cold;
}

/* Whether the loop's own set has room (under mu), making some when a source there has
 * been quiet for BUSY_NS: it goes back to a group helper. */
static bool own_room(struct ep *e, int64_t now)
{
    struct helper *o = &e->own, *h;
    if (o->n < NOWN)
        return true;
    int cold = 0;
    for (int i = 1; i < o->n; i++)
        if (o->set[i]->eng_ns < o->set[cold]->eng_ns)
            cold = i;
    if (now - o->set[cold]->eng_ns < BUSY_NS || helper_with_room(e, &h) < 0)
        return false;
    move(o->set[cold], h);
    return true;
}

/*
 * A group helper's futex_waitv names every word of its group, and the kernel queues
 * and dequeues each of them at every wait: a wake-up of one source costs its helper
 * time in proportion to the group. A source that fires again within BUSY_NS moves to
 * a fast helper of its own (two words: the control word and its own), so that the
 * cost of a busy source's wake-up does not depend on how many idle sources the loop
 * also watches. NFAST of them at most; a fast helper whose source has gone quiet is
 * reused.
 */
static void promote(struct ep *e, shoal_loop_source *s)
{
    struct helper *h = s->eng_ptr;
    if (h->fast || !e->waitv || !s->eng_busy)
        return;
    int64_t now = shoal__now_ns();
    if (own_room(e, now)) {
        move(s, &e->own);
        set_dirty(h); /* woken before the loop sleeps, so that it drops the word */
        return;
    }
    struct helper *f = h->n == 1 ? NULL : fast_helper(e, now);
    if (f)
        move(s, f);
}

static int ep_watch(shoal_loop *l, shoal_loop_source *s)
{
    struct ep *e = l->eng_state;
    struct helper *h;
    int rc = 0;
    bool kick = false;
    pthread_mutex_lock(&e->mu);
    if ((h = s->eng_ptr)) {
        /* Held since it fired: its helper waits on the word already, for the value it
         * saw last. The same value as the loop's: nothing to do. */
        s->eng_held = false;
        if (s->eng_val != s->expect) {
            s->eng_val = s->expect;
            if (!h->own) {
                set_dirty(h);
                kick = !e->waitv; /* asleep on the word itself, not on ctl */
            }
        }
        promote(e, s);
    } else if ((rc = helper_with_room(e, &h)) == 0) {
        s->eng_val = s->expect;
        s->eng_held = s->eng_fired = false;
        set_add(h, s);
    }
    pthread_mutex_unlock(&e->mu);
    if (kick)
        shoal__futex_wake(s->w.word, INT_MAX);
    return rc;
}

/* Takes s off the fired list (under mu). */
static void fired_del(struct ep *e, shoal_loop_source *s)
{
    shoal_loop_source **p = &e->fired;
    while (*p != s)
        p = &(*p)->eng_next;
    *p = s->eng_next;
    s->eng_fired = false;
}

static void ep_unwatch(shoal_loop *l, shoal_loop_source *s)
{
    struct ep *e = l->eng_state;
    pthread_mutex_lock(&e->mu);
    struct helper *h = s->eng_ptr;
    if (s->eng_fired)
        fired_del(e, s);
    if (h) {
        set_del(h, s->eng_idx);
        h->stale = !e->waitv;
    }
    pthread_mutex_unlock(&e->mu);
    if (!h || h->own)
        return;
    /* The helper may still be in a wait that names the word: harmless, it never looks
     * at s again (and passes on a wake-up it gets there). Wake it so that it drops the
     * word. */
    shoal__futex_wake(&h->ctl, 1);
    if (!e->waitv)
        shoal__futex_wake(s->w.word, INT_MAX);
}

/* The loop must sleep in epoll after all (the watcher could not start): its own
 * sources go to group helpers. */
static int own_evacuate(struct ep *e)
{
    int rc = 0;
    struct helper *h;
    pthread_mutex_lock(&e->mu);
    while (e->own.n && (rc = helper_with_room(e, &h)) == 0)
        move(e->own.set[e->own.n - 1], h);
    pthread_mutex_unlock(&e->mu);
    return rc;
}

static int ep_fd_add(shoal_loop *l, shoal_loop_source *s)
{
    struct ep *e = l->eng_state;
    struct epoll_event ev = {.events = shoal__loop_to_poll(s->events), .data.ptr = s};
    if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, s->fd, &ev) < 0)
        return shoal__err(errno == EEXIST ? SHOAL_EINVAL : SHOAL_ESYS,
                          "loop (epoll): descriptor %d: %s", s->fd,
                          errno == EEXIST ? "already watched by this loop (one source "
                                            "can ask for both directions)"
                                          : strerror(errno));
    e->nfds++;
    return 0;
}

static void ep_fd_remove(shoal_loop *l, shoal_loop_source *s)
{
    struct ep *e = l->eng_state;
    epoll_ctl(e->epfd, EPOLL_CTL_DEL, s->fd, NULL); /* EBADF: closed, gone already */
    e->nfds--;
}

static void ep_notify(shoal_loop *l)
{
    signal_loop(l->eng_state);
}

/* s fired: the core makes it hot (the loop thread, not under mu). */
static void report(shoal_loop *l, shoal_loop_source *s, int64_t now)
{
    s->eng_busy = now - s->eng_ns < BUSY_NS;
    s->eng_ns = now;
    shoal__loop_fired(l, s);
}

/* When signalled: report the sources the helpers found woken. */
static int drain(shoal_loop *l, struct ep *e)
{
    if (!atomic_exchange(&e->signalled, 0))
        return 0;
    pthread_mutex_lock(&e->mu);
    shoal_loop_source *s = e->fired;
    e->fired = NULL;
    for (shoal_loop_source *f = s; f; f = f->eng_next)
        f->eng_fired = false;
    pthread_mutex_unlock(&e->mu);
    int n = 0;
    int64_t now = s ? shoal__now_ns() : 0;
    while (s) {
        shoal_loop_source *next = s->eng_next;
        report(l, s, now);
        s = next;
        n++;
    }
    return n;
}

/* Reports the loop's own sources whose word moved, or was woken (own.set[woken]). The
 * own set is the loop thread's alone: no lock. */
static int own_look(shoal_loop *l, struct ep *e, int woken)
{
    int n = 0;
    int64_t now = 0;
    for (int i = 0; i < e->own.n; i++) {
        shoal_loop_source *s = e->own.set[i];
        if (s->eng_held || (atomic_load(s->w.word) == s->eng_val && i != woken))
            continue;
        s->eng_held = true;
        if (!now)
            now = shoal__now_ns();
        report(l, s, now);
        n++;
    }
    return n;
}

/* Wakes the helpers whose sets changed since the last wait. */
static void wake_dirty(struct ep *e)
{
    if (!e->any_dirty)
        return;
    e->any_dirty = false;
    pthread_mutex_lock(&e->mu);
    for (int i = 0; i < e->nh; i++)
        if (e->h[i]->dirty) {
            e->h[i]->dirty = false;
            shoal__futex_wake(&e->h[i]->ctl, 1);
        }
    pthread_mutex_unlock(&e->mu);
}

static bool ep_pending(shoal_loop *l)
{
    struct ep *e = l->eng_state;
    wake_dirty(e); /* sources handed over while spinning */
    if (atomic_load_explicit(&e->signalled, memory_order_acquire))
        return true;
    for (int i = 0; i < e->own.n; i++)
        if (!e->own.set[i]->eng_held &&
            atomic_load(e->own.set[i]->w.word) != e->own.set[i]->eng_val)
            return true;
    if (!e->nfds)
        return false;
    struct pollfd p = {.fd = e->epfd, .events = POLLIN}; /* epoll's ready list */
    if (poll(&p, 1, 0) != 1)
        return false;
    atomic_store(&e->fd_hit, 1); /* ep_wait collects it */
    return true;
}

static struct timespec *abs_ts(int64_t deadline_ns, struct timespec *ts)
{
    if (deadline_ns == INT64_MAX)
        return NULL;
    ts->tv_sec = deadline_ns / 1000000000;
    ts->tv_nsec = deadline_ns % 1000000000;
    return ts;
}

/*
 * Sleeps in epoll: descriptors, and the eventfd that signal_loop writes while the
 * loop is IN_EPOLL. Returns the descriptors reported or SHOAL_E*.
 */
static int wait_epoll(shoal_loop *l, struct ep *e, int64_t deadline_ns)
{
    struct epoll_event ev[MAX_EVENTS];
    atomic_store(&e->mode, IN_EPOLL);
    if (atomic_load(&e->signalled))
        deadline_ns = 0; /* look, do not sleep */
    struct timespec ts, *tsp = NULL;
    if (deadline_ns != INT64_MAX) {
        int64_t ns = deadline_ns - shoal__now_ns();
        if (ns < 0)
            ns = 0;
        ts.tv_sec = ns / 1000000000;
        ts.tv_nsec = ns % 1000000000;
        tsp = &ts;
    }
    int n = epoll_pwait2(e->epfd, ev, MAX_EVENTS, tsp, NULL);
    if (n < 0 && errno == ENOSYS) { /* before Linux 5.11: milliseconds, rounded up */
        int ms = !tsp ? -1
                 : ts.tv_sec > INT_MAX / 1000 - 1
                     ? INT_MAX
                     : (int)(ts.tv_sec * 1000 + (ts.tv_nsec + 999999) / 1000000);
        n = epoll_wait(e->epfd, ev, MAX_EVENTS, ms);
    }
    atomic_store_explicit(&e->mode, AWAKE, memory_order_relaxed);
    if (n < 0)
        return errno == EINTR ? 0
                              : shoal__err(SHOAL_ESYS, "loop (epoll): epoll_wait: %s",
                                           strerror(errno));
    int reports = 0;
    for (int i = 0; i < n; i++) {
        if (!ev[i].data.ptr) {
            uint64_t cnt;
            ssize_t r = read(e->efd, &cnt, sizeof(cnt));
            (void)r; /* drain() looks at `signalled` */
            continue;
        }
        shoal__loop_fd_ready(l, ev[i].data.ptr, shoal__loop_from_poll(ev[i].events));
        reports++;
    }
    return reports;
}

/*
 * Sleeps in futex_waitv when there is no descriptor to wait for: on `bell`, which
 * signal_loop bumps and wakes while the loop is IN_FUTEX, and on the words of the
 * loop's own sources that it waits for. Returns the index in own.set of the source
 * woken, or -1.
 */
static int wait_futex(struct ep *e, int64_t deadline_ns)
{
    struct futex_waitv v[NOWN + 1];
    int at[NOWN + 1], n = 1;
    v[0] = (struct futex_waitv){
        .val = atomic_load(&e->bell), .uaddr = (uintptr_t)&e->bell, .flags = FUTEX_32};
    for (int i = 0; i < e->own.n; i++) {
        shoal_loop_source *s = e->own.set[i];
        if (s->eng_held)
            continue;
        at[n] = i;
        v[n++] = (struct futex_waitv){
            .val = s->eng_val, .uaddr = (uintptr_t)s->w.word, .flags = FUTEX_32};
    }
    atomic_store(&e->mode, IN_FUTEX);
    long r = -1;
    if (!atomic_load(&e->signalled) && deadline_ns > shoal__now_ns()) {
        struct timespec ts;
        r = futex_waitv(v, (unsigned)n, abs_ts(deadline_ns, &ts));
    }
    atomic_store_explicit(&e->mode, AWAKE, memory_order_relaxed);
    return r > 0 ? at[r] : -1;
}

/*
 * The descriptor watcher: while the loop sleeps in futex_waitv with descriptors, it
 * waits in epoll_wait for them and, when one is ready, rings the bell (signal_loop)
 * with fd_hit set, then waits until the loop asks again (fd_want). It only learns that
 * epoll has something: the loop collects the events itself (a non-blocking
 * epoll_wait), so removing a descriptor stays synchronous — the watcher never looks at
 * a source. Level-triggered epoll keeps every ready descriptor on its ready list.
 */
static void *fdw_main(void *arg)
{
    struct ep *e = arg;
    struct epoll_event ev[1];
    while (!atomic_load(&e->fdw_quit)) {
        if (!atomic_load(&e->fd_want)) {
            shoal__futex_wait_until(&e->fd_want, 0, INT64_MAX);
            continue;
        }
        if (epoll_wait(e->epfd, ev, 1, -1) <= 0)
            continue; /* EINTR */
        atomic_store(&e->fd_want, 0);
        atomic_store(&e->fd_hit, 1);
        signal_loop(e);
    }
    return NULL;
}

/* Asks the watcher to wait in epoll, starting it the first time. */
static int fdw_arm(struct ep *e)
{
    if (!e->fdw_started) {
        int rc = thread_start(&e->fdw, fdw_main, e);
        if (rc != 0)
            return shoal__err(SHOAL_ESYS,
                              "loop (epoll): cannot start the descriptor watcher: %s",
                              strerror(rc));
        e->fdw_started = true;
    }
    if (!atomic_load(&e->fd_want)) {
        atomic_store(&e->fd_want, 1);
        shoal__futex_wake(&e->fd_want, 1);
    }
    return 0;
}

/* Where the loop sleeps: in futex_waitv when it has busy sources of its own or no
 * descriptors (the watcher then watches these), else in epoll_wait. */
static bool sleep_in_futex(struct ep *e)
{
    if (!e->waitv || (e->nfds && !e->own.n))
        return false;
    if (!e->nfds || fdw_arm(e) == 0)
        return true;
    return own_evacuate(e) < 0; /* no watcher: epoll, once the own set is empty */
}

static int ep_wait(shoal_loop *l, int64_t deadline_ns)
{
    struct ep *e = l->eng_state;
    wake_dirty(e);
    int reports = 0, woken = -1;
    if (sleep_in_futex(e)) {
        woken = wait_futex(e, deadline_ns);
        if (atomic_load_explicit(&e->fd_hit, memory_order_relaxed) &&
            atomic_exchange(&e->fd_hit, 0))
            reports = wait_epoll(l, e, 0); /* collect, do not sleep */
    } else {
        reports = wait_epoll(l, e, deadline_ns);
    }
    if (reports < 0)
        return reports;
    return reports + drain(l, e) + own_look(l, e, woken);
}

static void ep_fini(shoal_loop *l)
{
    struct ep *e = l->eng_state;
    if (!e)
        return;
    pthread_mutex_lock(&e->mu);
    e->quit = true;
    for (int i = 0; i < e->nh; i++)
        atomic_fetch_add(&e->h[i]->ctl, 1);
    pthread_mutex_unlock(&e->mu);
    for (int i = 0; i < e->nh; i++) {
        shoal__futex_wake(&e->h[i]->ctl, INT_MAX);
        pthread_join(e->h[i]->th, NULL);
        free(e->h[i]);
    }
    if (e->fdw_started) {
        atomic_store(&e->fdw_quit, true);
        atomic_store(&e->fd_want, 1);
        shoal__futex_wake(&e->fd_want, 1);
        uint64_t one = 1;
        ssize_t r = write(e->efd, &one, sizeof(one)); /* ends its epoll_wait */
        (void)r;
        pthread_join(e->fdw, NULL);
    }
    free(e->h);
    pthread_mutex_destroy(&e->mu);
    close(e->epfd);
    close(e->efd);
    free(e);
    l->eng_state = NULL;
}

static int ep_init(shoal_loop *l)
{
    struct ep *e = calloc(1, sizeof(*e));
    if (!e)
        return shoal__err(SHOAL_ENOMEM, "loop: out of memory");
    e->epfd = epoll_create1(EPOLL_CLOEXEC);
    e->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (e->epfd < 0 || e->efd < 0 || epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->efd, &ev) < 0) {
        int err = errno;
        if (e->epfd >= 0)
            close(e->epfd);
        if (e->efd >= 0)
            close(e->efd);
        free(e);
        return shoal__err(SHOAL_ESYS, "loop (epoll): %s", strerror(err));
    }
    pthread_mutex_init(&e->mu, NULL);
    e->waitv = shoal__futex_waitv_probe() == 0;
    e->per = e->waitv ? GROUP - 1 : 1;
    e->own.ep = e;
    e->own.fast = e->own.own = true;
    l->eng_state = e;
    return 0;
}

const shoal__loop_engine shoal__loop_epoll = {
    .name = "epoll",
    .init = ep_init,
    .fini = ep_fini,
    .watch = ep_watch,
    .unwatch = ep_unwatch,
    .fd_add = ep_fd_add,
    .fd_remove = ep_fd_remove,
    .pending = ep_pending,
    .notify = ep_notify,
    .wait = ep_wait,
    .fd_edge = false,
};
