/*
 * loop.c — the event loop's core: sources, the hot list, timers, posted callbacks and
 * the pass that runs callbacks; the engines (loop_uring.c, loop_epoll.c) only wait.
 *
 * A shared-memory source (queue side, pipe direction, Event, Semaphore, or any
 * shoal__waitable) is in one of two states:
 *
 *   HOT      on the loop's hot list, not armed. Each pass calls its ready() and runs
 *            the callback when it is non-zero. A new source starts hot.
 *   WATCHED  armed (a sleeper announced on its futex word) and handed to the engine
 *            together with the word's value read before arming. The engine reports it
 *            (shoal__loop_fired) once the word may have changed; the core then
 *            disarms it and makes it hot again.
 *
 * HOT -> WATCHED follows wait.h's protocol for each source: arm(); v = load(word); if
 * ready() != 0 the source stays hot (disarmed) and the loop does not sleep; otherwise
 * the engine waits on (word, v). A waker that changed the state before that ready() is
 * seen by it; one that changed it after sees the armed sleeper and bumps the word after
 * v was read, so a futex wait on (word, v) either fails at once (the value differs) or
 * is woken. No wake-up is lost, whatever the number of wakers. (v is read after arm(),
 * not before as a blocking wait does: equally safe, since ready() still follows the
 * read, and an arm() that marks the word itself — an Event's — then costs no futile
 * round through the engine.)
 *
 * Cost: a pass looks only at the hot list — sources that were reported or ready
 * recently — and the engines report exactly the sources whose words were woken, so the
 * cost of one wake-up does not grow with the number of sources. A source stays hot
 * after its callback (level-triggering: it is looked at again on the next pass).
 *
 * Spinning: with nothing to run, the loop polls the hot list — unarmed, so a busy
 * channel is served as a blocking get would serve it, with no system call on either
 * side — with a blocking get's cadence (shoal__spin, wait.h): close polls first,
 * growing pauses later, the clock and the engine's reports looked at every
 * SHOAL__SPIN_CLOCK_POLLS polls only. At the first reading of the clock it hands the
 * hot sources whose callback has not run for KEEP_NS to the engine, so that the rest of
 * the spin looks at the busy ones. When the budget runs out every hot source goes to
 * the engine and the loop sleeps in it.
 *
 * Time: reading the clock costs as much as a few polls (~50 ns on some virtual
 * machines), so a pass does not read it. The loop's time (now_ns) is its last reading:
 * taken by the spin, after each sleep in the engine, when timers are set (run_timers
 * reads it exactly) and every CLOCK_PASSES passes, so that the time a callback ran
 * (last_ns, used only for KEEP_NS) is stale by at most that many passes. A round trip
 * between polling peers thus costs the loop no clock reading and no locked
 * instruction: `notified` and `stop` are loaded before they are exchanged (take).
 *
 * Descriptors are polled by the engine (multishot poll, or epoll level-triggered) and
 * reported with their events; the source is hot until its callback ran. An engine that
 * reports changes only (io_uring's multishot poll, fd_edge) gets a poll(2) re-check
 * after each callback so that a descriptor left readable is reported again — unless
 * the callback said it read all there was (shoal__loop_fd_drained: the runtime's own
 * sockets), when the next arrival is a change the engine reports.
 *
 * Timers live in a binary heap ordered by (due time, sequence): the loop's sleep ends
 * at the first due time. Posted callbacks are a mutex-protected FIFO; posting, waking
 * and stopping set `notified` and, when it was clear and the loop sleeps in the engine
 * (`asleep`, see engine_wait), make the engine's wait return: posting to a loop that
 * is busy costs no system call. The loop clears `notified` before it takes the posts,
 * so a post that it missed notifies again.
 *
 * Dead peers: waitables with a check() (a queue's other side died, ...) are swept every
 * SLICE_NS while the loop sleeps; a terminal code is delivered once to the callback.
 *
 * Lifetime: removal is synchronous — the engine forgets the source, and the kernel no
 * longer refers to it or its word, before shoal_loop_remove returns (loop_uring.c
 * cancels its request and waits for the completion; loop_epoll.c takes it out of its
 * helper's set) — and disarms, so the watched object may be closed right after. The
 * memory is freed then too, unless a callback of that source is running: a source
 * carries the user's reference (until shoal_loop_remove) and one per callback
 * running, so removing any source from any callback is safe.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "loop_internal.h"

#define SLICE_NS     (50 * 1000000LL) /* the dead-peer sweep's period */
#define KEEP_NS      (1000 * 1000LL)  /* a source idle this long is not spun on */
#define CLOCK_PASSES 16               /* passes between two readings of the clock */

struct shoal__post {
    struct shoal__post *next;
    shoal_loop_fn fn;
    void *arg;
};

/* ---- lists ---------------------------------------------------------------------- */

static void list_init(shoal_loop_source *head)
{
    head->prev = head->next = head;
}

static void hot_push(shoal_loop *l, shoal_loop_source *s)
{
    if (s->hot || s->removed)
        return;
    s->hot = true;
    s->prev = l->hot.prev;
    s->next = &l->hot;
    l->hot.prev->next = s;
    l->hot.prev = s;
}

static void hot_del(shoal_loop_source *s)
{
    if (!s->hot)
        return;
    s->prev->next = s->next;
    s->next->prev = s->prev;
    s->hot = false;
}

/* ---- sources and references ------------------------------------------------------ */

static void src_ref(shoal_loop_source *s)
{
    s->refs++;
}

static void src_unref(shoal_loop_source *s)
{
    if (--s->refs > 0)
        return;
    s->all_prev->all_next = s->all_next;
    s->all_next->all_prev = s->all_prev;
    free(s);
}

static shoal_loop_source *src_new(shoal_loop *l, enum shoal__src_kind kind,
                                  shoal_loop_cb cb, void *arg, int events)
{
    shoal_loop_source *s = calloc(1, sizeof(*s));
    if (!s) {
        shoal__err(SHOAL_ENOMEM, "loop: out of memory for a source");
        return NULL;
    }
    s->loop = l;
    s->kind = kind;
    s->cb = cb;
    s->arg = arg;
    s->events = events;
    s->refs = 1;
    s->fd = -1;
    s->due = INT64_MAX;
    s->heap_idx = SIZE_MAX;
    s->lazy_idx = SIZE_MAX;
    s->all_prev = l->all.all_prev;
    s->all_next = &l->all;
    l->all.all_prev->all_next = s;
    l->all.all_prev = s;
    return s;
}

static void call(shoal_loop *l, shoal_loop_source *s, int events)
{
    src_ref(s);
    s->cb(l, s, events, s->arg);
    src_unref(s);
    l->dispatched++;
}

/* ---- timers: a min-heap on (due, seq) -----------------------------------------------
 */

static bool before(const shoal_loop_source *a, const shoal_loop_source *b)
{
    return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void heap_set(shoal_loop *l, size_t i, shoal_loop_source *s)
{
    l->heap[i] = s;
    s->heap_idx = i;
}

static void heap_up(shoal_loop *l, size_t i)
{
    shoal_loop_source *s = l->heap[i];
    while (i > 0 && before(s, l->heap[(i - 1) / 2])) {
        heap_set(l, i, l->heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    heap_set(l, i, s);
}

static void heap_down(shoal_loop *l, size_t i)
{
    shoal_loop_source *s = l->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= l->nheap)
            break;
        if (c + 1 < l->nheap && before(l->heap[c + 1], l->heap[c]))
            c++;
        if (!before(l->heap[c], s))
            break;
        heap_set(l, i, l->heap[c]);
        i = c;
    }
    heap_set(l, i, s);
}

static int heap_push(shoal_loop *l, shoal_loop_source *s)
{
    if (l->nheap == l->heap_cap) {
        size_t cap = l->heap_cap ? 2 * l->heap_cap : 16;
        shoal_loop_source **h = realloc(l->heap, cap * sizeof(*h));
        if (!h)
            return shoal__err(SHOAL_ENOMEM, "loop: out of memory for a timer");
        l->heap = h;
        l->heap_cap = cap;
    }
    s->seq = ++l->timer_seq;
    heap_set(l, l->nheap++, s);
    heap_up(l, l->nheap - 1);
    return 0;
}

static void heap_remove(shoal_loop *l, shoal_loop_source *s)
{
    size_t i = s->heap_idx;
    if (i == SIZE_MAX)
        return;
    s->heap_idx = SIZE_MAX;
    shoal_loop_source *last = l->heap[--l->nheap];
    if (i == l->nheap)
        return;
    heap_set(l, i, last);
    heap_up(l, i);
    heap_down(l, last->heap_idx);
}

static int timer_arm(shoal_loop *l, shoal_loop_source *s, shoal_duration after,
                     shoal_duration period)
{
    heap_remove(l, s);
    s->period = period;
    s->due = INT64_MAX;
    if (after < 0)
        return 0;
    int64_t now = shoal__now_ns();
    s->due = after > INT64_MAX - now ? INT64_MAX - 1 : now + after;
    return heap_push(l, s);
}

/* Runs the timers that are due, in order. */
static int run_timers(shoal_loop *l)
{
    if (!l->nheap)
        return 0;
    int n = 0;
    int64_t now = l->now_ns = shoal__now_ns();
    while (l->nheap && l->heap[0]->due <= now && !atomic_load(&l->stop)) {
        shoal_loop_source *s = l->heap[0];
        heap_remove(l, s);
        if (s->period > 0) {
            /* Keep the phase; skip the ticks missed while the loop was late. */
            int64_t late = now - s->due;
            s->due += (late / s->period + 1) * s->period;
            if (heap_push(l, s) < 0)
                s->due = INT64_MAX; /* out of memory: the timer stops */
        } else {
            s->due = INT64_MAX;
        }
        call(l, s, SHOAL_LOOP_TIMER);
        n++;
    }
    return n;
}

/* ---- posted callbacks ------------------------------------------------------------- */

/* The first post, wake-up or stop since the loop last looked rings the engine's
 * doorbell, and only when the loop sleeps in the engine (engine_wait). */
static void notify(shoal_loop *l)
{
    if (!atomic_exchange(&l->notified, 1) && atomic_load(&l->asleep))
        l->eng->notify(l);
}

/*
 * The engine's wait until `until`, announced in `asleep`: the loop stores asleep and
 * then loads notified, a notifier stores notified and then loads asleep (both
 * sequentially consistent), so either the loop sees the notification and only
 * collects what is there, or the notifier sees the sleeper and rings the doorbell.
 * A loop that is running callbacks or spinning is thus notified without any system
 * call: it looks at `notified` on every pass and every few polls.
 */
static int engine_wait(shoal_loop *l, int64_t until)
{
    if (until == 0)
        return l->eng->wait(l, 0);
    atomic_store(&l->asleep, 1);
    if (atomic_load(&l->notified))
        until = 0;
    int r = l->eng->wait(l, until);
    atomic_store_explicit(&l->asleep, 0, memory_order_relaxed);
    return r;
}

static int run_posts(shoal_loop *l)
{
    pthread_mutex_lock(&l->post_mu);
    struct shoal__post *p = l->post_head;
    l->post_head = l->post_tail = NULL;
    pthread_mutex_unlock(&l->post_mu);
    int n = 0;
    while (p) {
        struct shoal__post *next = p->next;
        if (atomic_load(&l->stop)) { /* put the rest back, in front */
            pthread_mutex_lock(&l->post_mu);
            struct shoal__post *tail = p;
            while (tail->next)
                tail = tail->next;
            tail->next = l->post_head;
            if (!l->post_head)
                l->post_tail = tail;
            l->post_head = p;
            pthread_mutex_unlock(&l->post_mu);
            atomic_store(&l->notified, 1);
            break;
        }
        p->fn(l, p->arg);
        free(p);
        n++;
        p = next;
    }
    l->dispatched += n;
    return n;
}

/* ---- the hot list ----------------------------------------------------------------- */

/* What a hot source has to report now: SHOAL_LOOP_* bits, a terminal code, or 0. */
static int hot_state(shoal_loop_source *s)
{
    if (s->kind == SRC_FD)
        return s->revents;
    if (s->disabled)
        return 0;
    if (s->pending)
        return s->pending;
    int r = s->w.ready(s->w.obj);
    return r > 0 ? s->events : r;
}

/* poll(2) now: the SHOAL_LOOP_* bits that hold for descriptor source s. */
static int fd_poll_now(shoal_loop_source *s)
{
    struct pollfd p = {.fd = s->fd, .events = (short)shoal__loop_to_poll(s->events)};
    if (poll(&p, 1, 0) != 1)
        return 0;
    return shoal__loop_from_poll((unsigned)p.revents) &
           (s->events | SHOAL_LOOP_ERROR | SHOAL_LOOP_HUP);
}

void shoal__loop_fd_drained(shoal_loop_source *s)
{
    s->drained = true;
}

/* Runs the callbacks of the hot sources that are ready; the others stay hot. */
static int run_hot(shoal_loop *l)
{
    if (l->hot.next == &l->hot)
        return 0;
    /* Take the list: sources made hot by the callbacks wait for the next pass. */
    shoal_loop_source todo;
    todo.next = l->hot.next;
    todo.prev = l->hot.prev;
    todo.next->prev = todo.prev->next = &todo;
    list_init(&l->hot);

    int n = 0;
    while (todo.next != &todo) {
        shoal_loop_source *s = todo.next;
        if (atomic_load(&l->stop))
            break;
        hot_del(s);
        int ev = hot_state(s);
        if (ev == 0) {
            if (s->kind == SRC_WAIT && !s->disabled)
                hot_push(l, s);
            continue;
        }
        if (s->kind == SRC_FD) {
            s->revents = 0;
        } else if (ev < 0) {
            s->disabled = true;
            s->pending = 0;
        } else {
            hot_push(l, s); /* level-triggered: look again next pass */
        }
        s->last_ns = l->now_ns;
        s->drained = false;
        src_ref(s);
        call(l, s, ev);
        if (s->kind == SRC_FD && !s->removed && l->eng->fd_edge && !s->drained) {
            s->revents = fd_poll_now(s);
            if (s->revents)
                hot_push(l, s);
        }
        src_unref(s);
        n++;
    }
    /* Stopped half way: the rest go back on the hot list. */
    while (todo.next != &todo) {
        shoal_loop_source *s = todo.next;
        hot_del(s);
        hot_push(l, s);
    }
    return n;
}

/* Whether any hot source has something to report (the spin's test). */
static bool hot_ready(shoal_loop *l)
{
    for (shoal_loop_source *s = l->hot.next; s != &l->hot; s = s->next)
        if (hot_state(s) != 0)
            return true;
    return false;
}

/*
 * Deferred barriers (wait.h): a source whose waitable has a barrier() (an SPSC ring)
 * is armed without it; while such arms are not covered by a barrier the loop sleeps
 * at most SHOAL__LAZY_NS after the first of them. Then lazy_settle issues the barrier
 * once for all and, for each watched source of that kind that turns out ready — a
 * put that missed its sleeper's announcement — bumps and wakes its word, so the
 * engine reports it the usual way (a spurious wake-up for anyone else asleep there).
 * Only the sources armed since the last barrier can have missed a put: they are
 * listed (`lazy`, lazy_list), so the settling does not look at every source.
 */
static void lazy_unlist(shoal_loop *l, shoal_loop_source *s)
{
    size_t i = s->lazy_idx;
    if (i == SIZE_MAX)
        return;
    s->lazy_idx = SIZE_MAX;
    shoal_loop_source *last = l->lazy[--l->nlazy];
    if (i < l->nlazy) {
        l->lazy[i] = last;
        last->lazy_idx = i;
    }
}

/* Lists watched source s for the next settling; out of memory, every source is
 * looked at then (lazy_all). */
static void lazy_list(shoal_loop *l, shoal_loop_source *s)
{
    if (s->lazy_idx != SIZE_MAX || l->lazy_all)
        return;
    if (l->nlazy == l->lazy_room) {
        size_t room = l->lazy_room ? 2 * l->lazy_room : 16;
        shoal_loop_source **v = realloc(l->lazy, room * sizeof(*v));
        if (!v) {
            l->lazy_all = true;
            return;
        }
        l->lazy = v;
        l->lazy_room = room;
    }
    s->lazy_idx = l->nlazy;
    l->lazy[l->nlazy++] = s;
}

/* Watched source s may hold a put that missed its announcement: wake its word. */
static void lazy_check(shoal_loop_source *s)
{
    if (s->kind != SRC_WAIT || !s->watched || !s->w.barrier || s->w.ready(s->w.obj) == 0)
        return;
    atomic_fetch_add(s->w.word, 1);
    shoal__futex_wake(s->w.word, INT_MAX);
}

static void lazy_note(shoal_loop *l, void (*barrier)(void))
{
    if (!l->lazy_barrier)
        l->lazy_since = shoal__now_ns();
    l->lazy_barrier = barrier;
}

static int64_t lazy_cap(const shoal_loop *l, int64_t until)
{
    if (l->lazy_barrier && until > l->lazy_since + SHOAL__LAZY_NS)
        return l->lazy_since + SHOAL__LAZY_NS;
    return until;
}

static void lazy_settle(shoal_loop *l)
{
    if (!l->lazy_barrier || l->now_ns < l->lazy_since + SHOAL__LAZY_NS)
        return;
    l->lazy_barrier();
    l->lazy_barrier = NULL;
    if (l->lazy_all) {
        for (shoal_loop_source *s = l->all.all_next; s != &l->all; s = s->all_next)
            lazy_check(s);
        l->lazy_all = false;
    }
    while (l->nlazy) {
        shoal_loop_source *s = l->lazy[l->nlazy - 1];
        lazy_unlist(l, s);
        lazy_check(s);
    }
}

/*
 * Hands hot source s to the engine (HOT -> WATCHED, see the top of the file). Returns
 * 1 when it turned out ready and stays hot, 0 when the engine watches it, or SHOAL_E*.
 */
static int arm_one(shoal_loop *l, shoal_loop_source *s)
{
    if (s->kind == SRC_FD || s->disabled) {
        if (s->kind == SRC_FD && s->revents)
            return 1;
        hot_del(s); /* descriptors: the engine polls them all along */
        return 0;
    }
    s->token = s->w.arm ? s->w.arm(s->w.obj) : 0;
    if (s->w.barrier)
        lazy_note(l, s->w.barrier);
    uint32_t v = atomic_load(s->w.word); /* after arm(): it may mark the word itself */
    if (s->pending || s->w.ready(s->w.obj) != 0) {
        if (s->w.disarm)
            s->w.disarm(s->w.obj, s->token);
        return 1;
    }
    hot_del(s);
    s->expect = v;
    s->watched = true;
    int rc = l->eng->watch(l, s);
    if (rc < 0) {
        s->watched = false;
        if (s->w.disarm)
            s->w.disarm(s->w.obj, s->token);
        hot_push(l, s);
    } else if (s->w.barrier) {
        lazy_list(l, s);
    }
    return rc;
}

/* Hands the hot sources to the engine — all of them, or (idle_only) those whose
 * callback has not run for KEEP_NS. Returns how many stay hot because they are ready,
 * or SHOAL_E*. */
static int arm_hot(shoal_loop *l, bool idle_only)
{
    int ready = 0;
    shoal_loop_source *next;
    for (shoal_loop_source *s = l->hot.next; s != &l->hot; s = next) {
        next = s->next;
        if (idle_only && l->now_ns - s->last_ns < KEEP_NS)
            continue;
        int r = arm_one(l, s);
        if (r < 0)
            return r;
        ready += r;
    }
    return ready;
}

/* WATCHED -> HOT (or just not watched, when removed). */
static void unwatched(shoal_loop *l, shoal_loop_source *s)
{
    if (!s->watched)
        return;
    s->watched = false;
    if (s->w.disarm)
        s->w.disarm(s->w.obj, s->token);
    hot_push(l, s);
}

void shoal__loop_fired(shoal_loop *l, shoal_loop_source *s)
{
    unwatched(l, s);
}

void shoal__loop_fd_ready(shoal_loop *l, shoal_loop_source *s, int revents)
{
    if (s->removed)
        return;
    s->revents |= revents & (s->events | SHOAL_LOOP_ERROR | SHOAL_LOOP_HUP);
    if (s->revents)
        hot_push(l, s);
}

/* Every SLICE_NS: asks the check() of the waitables whether their peers live. */
static void sweep_checks(shoal_loop *l)
{
    if (l->nwait_checks == 0)
        return;
    int64_t now = l->now_ns;
    if (now < l->next_check_ns)
        return;
    l->next_check_ns = now + SLICE_NS;
    for (shoal_loop_source *s = l->all.all_next; s != &l->all; s = s->all_next) {
        if (s->kind != SRC_WAIT || s->removed || s->disabled || s->pending || !s->w.check)
            continue;
        int r = s->w.check(s->w.obj);
        if (r >= 0)
            continue;
        s->pending = r;
        if (s->watched)
            l->eng->unwatch(l, s);
        unwatched(l, s);
        hot_push(l, s);
    }
}

/* ---- the pass and the wait ------------------------------------------------------- */

/* Clears *flag and returns whether it was set; a plain load first, so that the
 * common case (clear) makes no locked instruction. */
static bool take(_Atomic int *flag)
{
    return atomic_load_explicit(flag, memory_order_relaxed) && atomic_exchange(flag, 0);
}

/* One pass: posts, due timers, hot sources. Returns callbacks run; *woken is set
 * when a post, wake-up or stop was seen. The clock is read only when timers are
 * set and every CLOCK_PASSES passes (see the top of the file). */
static int pass(shoal_loop *l, bool *woken)
{
    int n = 0;
    if (++l->npass % CLOCK_PASSES == 0)
        l->now_ns = shoal__now_ns();
    if (take(&l->notified)) {
        *woken = true;
        n += run_posts(l);
    }
    if (!atomic_load(&l->stop))
        n += run_timers(l);
    if (!atomic_load(&l->stop))
        n += run_hot(l);
    return n;
}

static int64_t next_wake(shoal_loop *l, const shoal__deadline *d)
{
    int64_t t = d->at_ns;
    if (l->nheap && l->heap[0]->due < t)
        t = l->heap[0]->due;
    if (l->nwait_checks && l->next_check_ns < t)
        t = l->next_check_ns;
    return t;
}

enum { SPIN_NOTHING, SPIN_HOT, SPIN_ENGINE };

/*
 * Polls for the spin budget: the hot list and the notification flag at every poll;
 * every SHOAL__SPIN_CLOCK_POLLS polls the engine's reports, the clock and the timers.
 * The cadence is a blocking get's (shoal__spin, wait.h): the first polls follow each
 * other closely, then the pauses between them grow, and the budget starts at the first
 * reading of the clock, so that a message that comes within the first polls costs no
 * clock reading and no look at the engine. At that first reading the hot sources idle for
 * KEEP_NS are handed to the engine, so that the rest of the spin looks at the busy
 * sources and the engine's completions, not at every source. Returns what it found:
 * SPIN_HOT (run a pass), SPIN_ENGINE (collect the engine's reports) or SPIN_NOTHING
 * (the budget ran out).
 */
static int spin(shoal_loop *l, const shoal__deadline *d)
{
    int64_t budget = shoal__spin_budget();
    if (budget <= 0 || shoal__deadline_passed(d))
        return SPIN_NOTHING;
    int64_t end = INT64_MAX;
    shoal__spin c = SHOAL__SPIN_INIT;
    for (;;) {
        shoal__spin_pause(&c);
        if (atomic_load_explicit(&l->notified, memory_order_relaxed) || hot_ready(l))
            return SPIN_HOT;
        if (!shoal__spin_clock_due(&c))
            continue;
        if (l->eng->pending(l))
            return SPIN_ENGINE;
        int64_t now = l->now_ns = shoal__now_ns();
        if (shoal__spin_first_clock(&c)) {
            int r = arm_hot(l, true);
            if (r != 0)
                return r > 0 ? SPIN_HOT : SPIN_NOTHING;
            end = next_wake(l, d);
            if (now + budget < end)
                end = now + budget;
        }
        if (now >= end)
            return l->nheap && l->heap[0]->due <= now ? SPIN_HOT : SPIN_NOTHING;
    }
}

int shoal_loop_run_once(shoal_loop *l, shoal_duration timeout)
{
    if (!l)
        return shoal__err(SHOAL_EINVAL, "loop: NULL loop");
    shoal__deadline d = shoal__deadline_from(timeout);
    bool waited = false, woken = false;
    l->dispatched = 0;
    for (;;) {
        pass(l, &woken);
        if (l->dispatched > 0 || woken || atomic_load(&l->stop))
            return l->dispatched;
        if (waited && shoal__deadline_passed(&d))
            return 0;
        int found = spin(l, &d), r;
        if (found == SPIN_HOT)
            continue;
        if (found == SPIN_NOTHING) {
            r = arm_hot(l, false);
            if (r < 0)
                return r;
            if (r > 0)
                continue;
        }
        r = engine_wait(l, found == SPIN_ENGINE ? 0 : lazy_cap(l, next_wake(l, &d)));
        if (r < 0)
            return r;
        waited = true;
        l->now_ns = shoal__now_ns();
        lazy_settle(l);
        sweep_checks(l);
    }
}

int shoal_loop_run(shoal_loop *l)
{
    if (!l)
        return shoal__err(SHOAL_EINVAL, "loop: NULL loop");
    while (!take(&l->stop)) {
        int r = shoal_loop_run_once(l, SHOAL_FOREVER);
        if (r < 0)
            return r;
    }
    return 0;
}

void shoal_loop_stop(shoal_loop *l)
{
    if (!l)
        return;
    atomic_store(&l->stop, 1);
    notify(l);
}

void shoal_loop_wake(shoal_loop *l)
{
    if (l)
        notify(l);
}

int shoal_loop_post(shoal_loop *l, shoal_loop_fn fn, void *arg)
{
    if (!l || !fn)
        return shoal__err(SHOAL_EINVAL, "loop: post of %s",
                          l ? "a NULL function" : "to a NULL loop");
    struct shoal__post *p = malloc(sizeof(*p));
    if (!p)
        return shoal__err(SHOAL_ENOMEM, "loop: out of memory for a posted callback");
    p->next = NULL;
    p->fn = fn;
    p->arg = arg;
    pthread_mutex_lock(&l->post_mu);
    if (l->post_tail)
        l->post_tail->next = p;
    else
        l->post_head = p;
    l->post_tail = p;
    pthread_mutex_unlock(&l->post_mu);
    notify(l);
    return 0;
}

/* ---- adding and removing sources ------------------------------------------------- */

static int check_add(shoal_loop *l, shoal_loop_cb cb, const char *what)
{
    if (!l || !cb)
        return shoal__err(SHOAL_EINVAL, "loop: adding %s: NULL %s", what,
                          l ? "callback" : "loop");
    return 0;
}

int shoal__loop_add_waitable(shoal_loop *l, const shoal__waitable *w, int events,
                             shoal_loop_cb cb, void *arg, shoal_loop_source **out)
{
    int rc = check_add(l, cb, "a waitable");
    if (rc < 0)
        return rc;
    if (!w || !w->word || !w->ready)
        return shoal__err(SHOAL_EINVAL, "loop: a waitable without a word or predicate");
    shoal_loop_source *s = src_new(l, SRC_WAIT, cb, arg, events);
    if (!s)
        return SHOAL_ENOMEM;
    s->w = *w;
    if (s->w.check) {
        if (l->nwait_checks++ == 0)
            l->next_check_ns = shoal__now_ns() + SLICE_NS;
    }
    hot_push(l, s);
    if (out)
        *out = s;
    return 0;
}

/* The queue, pipe, Event and Semaphore sources: the object's waitable, then the
 * generic source. */
enum obj_kind { OBJ_QUEUE, OBJ_PIPE, OBJ_EVENT, OBJ_SEM };

static int add_object(shoal_loop *l, enum obj_kind kind, void *obj, int events,
                      shoal_loop_cb cb, void *arg, shoal_loop_source **out)
{
    static const char *const what[] = {"a queue", "a pipe end", "an event",
                                       "a semaphore"};
    int rc = check_add(l, cb, what[kind]);
    if (rc < 0)
        return rc;
    if (!obj || (events != SHOAL_LOOP_READABLE && events != SHOAL_LOOP_WRITABLE))
        return shoal__err(SHOAL_EINVAL, "loop: adding %s: %s", what[kind],
                          obj ? "events must be SHOAL_LOOP_READABLE or _WRITABLE"
                              : "NULL handle");
    bool wr = events == SHOAL_LOOP_WRITABLE;
    shoal__waitable w;
    switch (kind) {
    case OBJ_QUEUE:
        rc = shoal__queue_waitable(obj, wr, &w);
        break;
    case OBJ_PIPE:
        rc = shoal__pipe_waitable(obj, wr, &w);
        break;
    case OBJ_EVENT:
        rc = shoal__event_waitable(obj, wr, &w);
        break;
    case OBJ_SEM:
        rc = shoal__sem_waitable(obj, wr, &w);
        break;
    }
    if (rc < 0)
        return rc;
    return shoal__loop_add_waitable(l, &w, events, cb, arg, out);
}

int shoal_loop_add_queue(shoal_loop *l, shoal_queue *q, int events, shoal_loop_cb cb,
                         void *arg, shoal_loop_source **out)
{
    return add_object(l, OBJ_QUEUE, q, events, cb, arg, out);
}

int shoal_loop_add_pipe(shoal_loop *l, shoal_pipe *p, int events, shoal_loop_cb cb,
                        void *arg, shoal_loop_source **out)
{
    return add_object(l, OBJ_PIPE, p, events, cb, arg, out);
}

int shoal_loop_add_event(shoal_loop *l, shoal_event *e, shoal_loop_cb cb, void *arg,
                         shoal_loop_source **out)
{
    return add_object(l, OBJ_EVENT, e, SHOAL_LOOP_READABLE, cb, arg, out);
}

int shoal_loop_add_sem(shoal_loop *l, shoal_sem *s, shoal_loop_cb cb, void *arg,
                       shoal_loop_source **out)
{
    return add_object(l, OBJ_SEM, s, SHOAL_LOOP_READABLE, cb, arg, out);
}

int shoal_loop_add_fd(shoal_loop *l, int fd, int events, shoal_loop_cb cb, void *arg,
                      shoal_loop_source **out)
{
    int rc = check_add(l, cb, "a descriptor");
    if (rc < 0)
        return rc;
    events &= SHOAL_LOOP_READABLE | SHOAL_LOOP_WRITABLE;
    if (fd < 0 || !events)
        return shoal__err(SHOAL_EINVAL, "loop: descriptor %d: %s", fd,
                          fd < 0 ? "negative" : "no events asked for");
    shoal_loop_source *s = src_new(l, SRC_FD, cb, arg, events);
    if (!s)
        return SHOAL_ENOMEM;
    s->fd = fd;
    rc = l->eng->fd_add(l, s);
    if (rc < 0) {
        s->removed = true;
        src_unref(s);
        return rc;
    }
    if (out)
        *out = s;
    return 0;
}

int shoal_loop_add_timer(shoal_loop *l, shoal_duration after, shoal_duration period,
                         shoal_loop_cb cb, void *arg, shoal_loop_source **out)
{
    int rc = check_add(l, cb, "a timer");
    if (rc < 0)
        return rc;
    if (after < 0 || period < 0)
        return shoal__err(SHOAL_EINVAL, "loop: timer with a negative %s",
                          after < 0 ? "delay" : "period");
    shoal_loop_source *s = src_new(l, SRC_TIMER, cb, arg, SHOAL_LOOP_TIMER);
    if (!s)
        return SHOAL_ENOMEM;
    rc = timer_arm(l, s, after, period);
    if (rc < 0) {
        s->removed = true;
        src_unref(s);
        return rc;
    }
    if (out)
        *out = s;
    return 0;
}

int shoal_loop_timer_set(shoal_loop *l, shoal_loop_source *s, shoal_duration after,
                         shoal_duration period)
{
    if (!l || !s || s->loop != l || s->kind != SRC_TIMER || s->removed || period < 0)
        return shoal__err(SHOAL_EINVAL, "loop: timer_set: %s",
                          period < 0 ? "negative period" : "not a timer of this loop");
    return timer_arm(l, s, after, period);
}

int shoal_loop_remove(shoal_loop *l, shoal_loop_source *s)
{
    if (!l || !s || s->loop != l || s->removed)
        return shoal__err(SHOAL_EINVAL, "loop: remove: %s",
                          s && s->removed ? "source already removed" : "no such source");
    s->removed = true;
    hot_del(s);
    switch (s->kind) {
    case SRC_WAIT:
        if (s->w.check)
            l->nwait_checks--;
        /* The object may be closed as soon as we return: nothing may refer to its
         * word any more, and no sleeper may stay announced on it. */
        l->eng->unwatch(l, s);
        unwatched(l, s); /* disarms; removed: not made hot */
        lazy_unlist(l, s);
        break;
    case SRC_FD:
        l->eng->fd_remove(l, s);
        break;
    case SRC_TIMER:
        heap_remove(l, s);
        break;
    }
    src_unref(s);
    return 0;
}

/* ---- create, destroy, engines ----------------------------------------------------- */

static const shoal__loop_engine *engine_named(const char *name)
{
#ifdef SHOAL_HAVE_URING
    if (!strcmp(name, "uring"))
        return &shoal__loop_uring;
#endif
    if (!strcmp(name, "epoll"))
        return &shoal__loop_epoll;
    return NULL;
}

static int engine_start(shoal_loop *l)
{
    const char *want = getenv("SHOAL_LOOP_ENGINE");
    if (want && *want) {
        l->eng = engine_named(want);
        if (!l->eng)
            return shoal__err(!strcmp(want, "uring") ? SHOAL_ESYS : SHOAL_EINVAL,
                              "loop: SHOAL_LOOP_ENGINE=%s: %s", want,
                              !strcmp(want, "uring")
                                  ? "this libshoal was built without io_uring"
                                  : "no such engine (uring or epoll)");
        return l->eng->init(l);
    }
#ifdef SHOAL_HAVE_URING
    l->eng = &shoal__loop_uring;
    if (l->eng->init(l) == 0)
        return 0;
#endif
    l->eng = &shoal__loop_epoll;
    return l->eng->init(l);
}

int shoal_loop_create(shoal_loop **out)
{
    if (!out)
        return shoal__err(SHOAL_EINVAL, "loop: create: NULL out");
    *out = NULL;
    shoal_loop *l = calloc(1, sizeof(*l));
    if (!l)
        return shoal__err(SHOAL_ENOMEM, "loop: out of memory");
    list_init(&l->hot);
    l->all.all_prev = l->all.all_next = &l->all;
    pthread_mutex_init(&l->post_mu, NULL);
    int rc = engine_start(l);
    if (rc < 0) {
        pthread_mutex_destroy(&l->post_mu);
        free(l);
        return rc;
    }
    *out = l;
    return 0;
}

void shoal_loop_destroy(shoal_loop *l)
{
    if (!l)
        return;
    for (shoal_loop_source *s = l->all.all_next, *next; s != &l->all; s = next) {
        next = s->all_next;
        if (!s->removed)
            shoal_loop_remove(l, s);
    }
    l->eng->fini(l);
    for (struct shoal__post *p = l->post_head, *next; p; p = next) {
        next = p->next;
        free(p);
    }
    free(l->heap);
    free(l->lazy);
    pthread_mutex_destroy(&l->post_mu);
    free(l);
}

const char *shoal_loop_engine(const shoal_loop *l)
{
    if (l)
        return l->eng->name;
    shoal_loop_support sup;
    shoal_loop_probe(&sup);
    return sup.engine;
}

int shoal__loop_from_poll(unsigned r)
{
    return (r & (POLLIN | POLLPRI | POLLRDHUP) ? SHOAL_LOOP_READABLE : 0) |
           (r & POLLOUT ? SHOAL_LOOP_WRITABLE : 0) |
           (r & POLLERR ? SHOAL_LOOP_ERROR : 0) | (r & POLLHUP ? SHOAL_LOOP_HUP : 0);
}

unsigned shoal__loop_to_poll(int events)
{
    return (events & SHOAL_LOOP_READABLE ? POLLIN | POLLRDHUP : 0) |
           (events & SHOAL_LOOP_WRITABLE ? POLLOUT : 0);
}

int shoal_loop_probe(shoal_loop_support *out)
{
    if (!out)
        return shoal__err(SHOAL_EINVAL, "loop: probe: NULL out");
    memset(out, 0, sizeof(*out));
    out->uring_disabled = -1;
    FILE *f = fopen("/proc/sys/kernel/io_uring_disabled", "r");
    if (f) {
        if (fscanf(f, "%d", &out->uring_disabled) != 1)
            out->uring_disabled = -1;
        fclose(f);
    }
#ifdef SHOAL_HAVE_URING
    shoal__uring_probe(out);
#endif
    out->futex_waitv_errno = shoal__futex_waitv_probe();
    out->futex_waitv = out->futex_waitv_errno == 0;

    const char *want = getenv("SHOAL_LOOP_ENGINE");
    const shoal__loop_engine *e = want && *want ? engine_named(want) : NULL;
    if (want && *want && !e)
        out->engine = NULL;
#ifdef SHOAL_HAVE_URING
    else if (e == &shoal__loop_uring || (!e && out->uring && out->uring_futex_wait))
        out->engine = out->uring && out->uring_futex_wait ? "uring" : NULL;
#endif
    else
        out->engine = "epoll";
    return 0;
}
