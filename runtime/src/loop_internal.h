/*
 * loop_internal.h — what the event loop's core (loop.c) and its engines (loop_uring.c,
 * loop_epoll.c) share. See loop.c for the whole mechanism.
 */
#ifndef SHOAL_LOOP_INTERNAL_H
#define SHOAL_LOOP_INTERNAL_H

#include <pthread.h>

#include "shoal/loop.h"
#include "wait.h"

enum shoal__src_kind { SRC_WAIT, SRC_FD, SRC_TIMER };

struct shoal_loop_source {
    shoal_loop *loop;
    enum shoal__src_kind kind;
    shoal_loop_cb cb;
    void *arg;
    int events; /* what was asked for */
    /* References: the user's (until removed) and one per callback running. Freed at
     * zero. The engines keep none: removal takes a source out of them at once. */
    int refs;
    bool removed;
    bool disabled; /* a terminal code was delivered: never reported again */
    /* The hot list: sources to look at on the next pass (see loop.c). */
    struct shoal_loop_source *prev, *next;
    bool hot;
    int64_t last_ns; /* when its callback last ran (the pass's time) */
    /* Every source of the loop (destroy, the dead-peer sweep). */
    struct shoal_loop_source *all_prev, *all_next;

    /* SRC_WAIT */
    shoal__waitable w;
    bool watched;    /* armed and handed to the engine */
    int pending;     /* a terminal code found by check(), delivered on the next pass */
    uint32_t expect; /* the word's value when it was handed to the engine */
    uint32_t token;  /* what its waitable's arm() returned (wait.h) */
    /* SRC_FD */
    int fd;
    int revents;  /* SHOAL_LOOP_* bits the engine reported, not yet delivered */
    bool drained; /* its callback read all there was (shoal__loop_fd_drained) */
    /* SRC_TIMER */
    int64_t due; /* CLOCK_MONOTONIC ns; INT64_MAX: inactive */
    int64_t period;
    uint64_t seq;    /* tie-break: equal due times fire in the order they were set */
    size_t heap_idx; /* position in the timer heap, SIZE_MAX when not in it */
    size_t lazy_idx; /* position in the loop's `lazy` list, SIZE_MAX when not in it */

    /* Engine-private. */
    void *eng_ptr;
    int eng_idx;
    struct shoal_loop_source *eng_next;
    uint32_t eng_val; /* epoll: the value its helper waits for */
    bool eng_held;    /* epoll: fired, not handed back yet; its helper follows the word */
    bool eng_fired;   /* epoll: on the fired list */
    bool eng_busy;    /* epoll: fired twice within a short time (promote) */
    int64_t eng_ns;   /* epoll: when it fired last */
};

typedef struct shoal__loop_engine {
    const char *name;
    /* Sets up loop->eng; 0 or SHOAL_E* with a detail. */
    int (*init)(shoal_loop *loop);
    void (*fini)(shoal_loop *loop);
    /* Starts waiting on s's word while it holds s->expect, and reports the wake-up
     * once with shoal__loop_fired (from wait, on the loop thread). */
    int (*watch)(shoal_loop *loop, shoal_loop_source *s);
    /* Forgets shared-memory source s, watched or not: when it returns, neither the
     * engine nor the kernel refers to s or its word any more, and s is not reported. */
    void (*unwatch)(shoal_loop *loop, shoal_loop_source *s);
    /* Starts / stops polling descriptor source s. When fd_remove returns, neither the
     * engine nor the kernel refers to s. */
    int (*fd_add)(shoal_loop *loop, shoal_loop_source *s);
    void (*fd_remove)(shoal_loop *loop, shoal_loop_source *s);
    /* Whether reports are waiting to be collected, without blocking (the spin calls
     * it every few polls of the hot list). */
    bool (*pending)(shoal_loop *loop);
    /* Makes a wait of the loop return. Any thread. */
    void (*notify)(shoal_loop *loop);
    /* Waits until something is reported or deadline_ns (CLOCK_MONOTONIC; INT64_MAX:
     * none; in the past: only collects what is there). Returns the number of reports
     * or SHOAL_E*. */
    int (*wait)(shoal_loop *loop, int64_t deadline_ns);
    /* Descriptor readiness is reported on changes only: after a callback the core
     * re-checks with poll(2) to stay level-triggered. */
    bool fd_edge;
} shoal__loop_engine;

extern const shoal__loop_engine shoal__loop_epoll;
#ifdef SHOAL_HAVE_URING
extern const shoal__loop_engine shoal__loop_uring;
/* The io_uring engine's doorbell word (tests: nothing may wait on it once the loop
 * is destroyed). */
_Atomic uint32_t *shoal__uring_doorbell(shoal_loop *l);
#endif

struct shoal_loop {
    const shoal__loop_engine *eng;
    void *eng_state;
    /* Hot list (sentinel-headed, circular). */
    shoal_loop_source hot;
    shoal_loop_source all;
    /* Timers: a binary min-heap on (due, seq). */
    shoal_loop_source **heap;
    size_t nheap, heap_cap;
    uint64_t timer_seq;
    /* Posted callbacks, FIFO, under post_mu. */
    pthread_mutex_t post_mu;
    struct shoal__post *post_head, *post_tail;
    _Atomic int notified; /* a post, wake or stop since the loop last looked */
    _Atomic int asleep;   /* in the engine's wait (loop.c, engine_wait) */
    _Atomic int stop;
    int nwait_checks;      /* sources whose waitable has a check() */
    int64_t next_check_ns; /* when the dead-peer sweep runs next */
    int dispatched;        /* callbacks run in the current run_once */
    /* The loop's time: its last reading of the clock (loop.c, "Time"). */
    int64_t now_ns;
    unsigned npass; /* passes run, for the clock's cadence */
    /* A barrier owed by arms made since lazy_since (loop.c, lazy_note), or NULL. */
    void (*lazy_barrier)(void);
    int64_t lazy_since;
    /* The sources armed since then (lazy_idx: their place), or every source. */
    shoal_loop_source **lazy;
    size_t nlazy, lazy_room;
    bool lazy_all;
};

/* Engine -> core reports (loop thread). */
void shoal__loop_fired(shoal_loop *loop, shoal_loop_source *s);
void shoal__loop_fd_ready(shoal_loop *loop, shoal_loop_source *s, int revents);
/* From a descriptor source's callback: it read everything the descriptor had (a read
 * came back short, or found nothing), so an engine that reports changes only needs no
 * poll(2) after the callback to stay level-triggered — the next arrival is a change. */
void shoal__loop_fd_drained(shoal_loop_source *s);

/* Probes (loop_uring.c, loop_epoll.c) for shoal_loop_probe. */
void shoal__uring_probe(shoal_loop_support *out);
int shoal__futex_waitv_probe(void); /* 0 or the errno that refused it */

/* Maps poll(2) bits to SHOAL_LOOP_* bits and back. */
int shoal__loop_from_poll(unsigned revents);
unsigned shoal__loop_to_poll(int events);

/*
 * Watches a generic waitable: the callback runs with SHOAL_LOOP_READABLE (or `events`
 * as given) while w->ready() > 0, once with a terminal code when it is < 0. *w is
 * copied. The queue, pipe, event and semaphore sources are this with their getters.
 */
int shoal__loop_add_waitable(shoal_loop *loop, const shoal__waitable *w, int events,
                             shoal_loop_cb cb, void *arg, shoal_loop_source **out);

#endif
