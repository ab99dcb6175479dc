/*
 * looptest.h — what the loop's test programs share: the engine check every program
 * starts with, a loop on the engine $SHOAL_LOOP_ENGINE names, and a raw futex channel
 * (a counter of messages sent, a futex word and a sleeper count, in memory shared with
 * other processes — the waitable contract of wait.h without any shoal object around
 * it).
 */
#ifndef SHOAL_LOOPTEST_H
#define SHOAL_LOOPTEST_H

#include <limits.h>

#include "testutil.h"

#include "loop_internal.h"

/* Whether the program must report itself skipped: $SHOAL_LOOP_ENGINE asks for io_uring
 * where io_uring or its futex operations are unavailable (it says so). */
static inline bool lt_engine_unavailable(void)
{
    const char *want = getenv("SHOAL_LOOP_ENGINE");
    shoal_loop_support sup;
    shoal_loop_probe(&sup);
    if (want && !strcmp(want, "uring") && (!sup.engine || strcmp(sup.engine, "uring"))) {
        printf("skipped: io_uring with futex operations is not available here\n");
        return true;
    }
    printf("engine: %s\n", sup.engine ? sup.engine : "(none)");
    return false;
}

/* A loop, on the engine $SHOAL_LOOP_ENGINE names when it names one. */
static inline shoal_loop *lt_new_loop(void)
{
    shoal_loop *l = NULL;
    T_OK(shoal_loop_create(&l));
    const char *want = getenv("SHOAL_LOOP_ENGINE");
    if (want && *want)
        assert_string_equal(shoal_loop_engine(l), want);
    return l;
}

struct chan {
    _Atomic uint32_t word;     /* bumped at every send */
    _Atomic uint32_t sleepers; /* loops that armed it */
    _Atomic uint64_t sent;
    _Atomic uint64_t got; /* taken by the consumer */
    _Atomic int dead;     /* the producer "died": check() says so */
    _Atomic int calls;    /* callbacks run */
};

static inline int chan_ready(void *o)
{
    struct chan *c = o;
    return atomic_load(&c->sent) > atomic_load(&c->got);
}

static inline uint32_t chan_arm(void *o)
{
    atomic_fetch_add(&((struct chan *)o)->sleepers, 1);
    return 0;
}

static inline void chan_disarm(void *o, uint32_t token)
{
    (void)token;
    atomic_fetch_sub(&((struct chan *)o)->sleepers, 1);
}

static inline int chan_check(void *o)
{
    return atomic_load(&((struct chan *)o)->dead) ? SHOAL_EPEERDEAD : 0;
}

static inline void chan_send(struct chan *c)
{
    atomic_fetch_add(&c->sent, 1);
    atomic_fetch_add(&c->word, 1);
    if (atomic_load(&c->sleepers))
        shoal__futex_wake(&c->word, INT_MAX);
}

static inline shoal__waitable chan_waitable(struct chan *c, bool with_check)
{
    shoal__waitable w = {.word = &c->word,
                         .ready = chan_ready,
                         .arm = chan_arm,
                         .disarm = chan_disarm,
                         .check = with_check ? chan_check : NULL,
                         .obj = c};
    return w;
}

#endif
