/*
 * shoal/loop.h — the event loop: one thread waits on many sources at once.
 *
 * A shoal_loop watches sources and runs a callback for each one that is ready:
 *
 *   - queues (readable: a message or end-of-stream is there; writable: there is room),
 *     pipe ends (the same for the end's two directions), Events (set) and Semaphores
 *     (a unit is available);
 *   - timers, one-shot or periodic, on CLOCK_MONOTONIC;
 *   - file descriptors (sockets, eventfds, pipes, nng's notification descriptors), for
 *     reading and/or writing;
 *   - callbacks posted from any thread (shoal_loop_post), and shoal_loop_wake /
 *     shoal_loop_stop, which are the only functions safe to call from a thread other
 *     than the one running the loop.
 *
 * Readiness is level-triggered: a callback that leaves its source ready (a message it
 * did not take) is run again on the next pass. Callbacks may add and remove sources —
 * any source, their own included — and stop the loop. A callback only learns that its
 * source is ready; it then makes the non-blocking call itself (shoal_queue_try_get,
 * read(2), ...). Several consumers may watch the same queue: readiness is a hint, and a
 * try call that finds the message gone (SHOAL_EAGAIN) is normal.
 *
 * Engines. The loop runs on io_uring where the kernel allows it and has futex
 * operations (IORING_OP_FUTEX_WAIT, Linux 6.7 and later): each shared-memory source is
 * one futex wait in flight, each descriptor one multishot poll. Otherwise — io_uring
 * refused by a seccomp profile (ENOSYS / EPERM), by the kernel.io_uring_disabled sysctl,
 * or too old — it runs on epoll, with helper threads waiting on the futex words in
 * futex_waitv(2) and signalling the loop; a source that fires often is waited on by
 * the loop's own thread while the loop has no descriptor, else by a helper of its
 * own. $SHOAL_LOOP_ENGINE=uring|epoll forces one; shoal_loop_engine() names
 * the one in use. In both the cost of one wake-up does not depend on the number of
 * sources. A post, wake-up or stop makes a system call only when the loop sleeps.
 *
 * Spinning: before it sleeps, a loop with nothing to do polls the sources that were
 * ready recently for the process's spin budget (shoal_set_spin_ns), so that a busy
 * channel is served without system calls on either side, as a blocking get would be.
 *
 * End of stream: a queue or pipe end that is shut down and drained reports
 * SHOAL_EEOF (a dead peer SHOAL_EPEERDEAD, a closed queue's writable side
 * SHOAL_ECLOSED) to its callback once, as a negative `events`.
 *
 * A source must be removed before the object it watches is closed. The loop holds no
 * reference to queues, pipes, events, semaphores or descriptors. A loop belongs to the
 * process that created it: a child made by fork() creates its own.
 */
#ifndef SHOAL_LOOP_H
#define SHOAL_LOOP_H

#include "common.h"
#include "pipe.h"
#include "queue.h"
#include "sync.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct shoal_loop shoal_loop;
typedef struct shoal_loop_source shoal_loop_source;

/* What a source waits for, and what its callback is told (a bit set). */
enum {
    SHOAL_LOOP_READABLE = 1, /* a message, end-of-stream, a set Event, a unit, data */
    SHOAL_LOOP_WRITABLE = 2, /* room in a queue or pipe direction; a writable fd */
    SHOAL_LOOP_ERROR = 4,    /* descriptors only: an error condition (POLLERR) */
    SHOAL_LOOP_HUP = 8,      /* descriptors only: the peer hung up (POLLHUP) */
    SHOAL_LOOP_TIMER = 16    /* timers: the timer expired */
};

/*
 * The callback of a source. `events` is the bit set above that holds now, or a
 * negative SHOAL_E* code when the wait on the object failed for good (SHOAL_EPEERDEAD:
 * the other end's process died, ...). After a negative code the source stays
 * registered but is never reported again; remove it. `arg` is the pointer given when
 * the source was added.
 */
typedef void (*shoal_loop_cb)(shoal_loop *loop, shoal_loop_source *src, int events,
                              void *arg);

/* A callback posted with shoal_loop_post(). */
typedef void (*shoal_loop_fn)(shoal_loop *loop, void *arg);

/*
 * Creates a loop on the engine $SHOAL_LOOP_ENGINE names ("uring" or "epoll"), or
 * else on io_uring when usable and on epoll otherwise. Returns 0 and sets *out, or
 * SHOAL_EINVAL (out is NULL, or $SHOAL_LOOP_ENGINE names no engine), SHOAL_ENOMEM, or
 * SHOAL_ESYS when the engine asked for cannot run here (shoal_errdetail() says why:
 * io_uring_setup refused, no futex operations, ...).
 */
SHOAL_API int shoal_loop_create(shoal_loop **out);

/*
 * Removes every source, frees the loop and the callbacks still posted (without
 * running them). Not from inside one of its callbacks. NULL is ignored.
 */
SHOAL_API void shoal_loop_destroy(shoal_loop *loop);

/*
 * The engine `loop` runs on: "uring" or "epoll". With loop NULL, the engine a loop
 * created now would use (it probes the kernel), or NULL when none can run.
 */
SHOAL_API const char *shoal_loop_engine(const shoal_loop *loop);

/*
 * Watches a queue (events SHOAL_LOOP_READABLE or SHOAL_LOOP_WRITABLE, one of them;
 * add two sources for both). The callback runs while the side is ready. Returns 0 and
 * sets *out (out may be NULL when the source is never removed by hand), or
 * SHOAL_EINVAL (NULL loop, handle or callback, or events not exactly one of the two),
 * SHOAL_ENOMEM.
 */
SHOAL_API int shoal_loop_add_queue(shoal_loop *loop, shoal_queue *q, int events,
                                   shoal_loop_cb cb, void *arg, shoal_loop_source **out);
/* The same for a pipe end: READABLE = a message or end-of-stream arrived; WRITABLE =
 * room to send. */
SHOAL_API int shoal_loop_add_pipe(shoal_loop *loop, shoal_pipe *p, int events,
                                  shoal_loop_cb cb, void *arg, shoal_loop_source **out);
/* An Event: READABLE while it is set. */
SHOAL_API int shoal_loop_add_event(shoal_loop *loop, shoal_event *e, shoal_loop_cb cb,
                                   void *arg, shoal_loop_source **out);
/* A Semaphore: READABLE while a unit is available (the callback then tries to take it
 * with shoal_sem_try; another process may have been faster). */
SHOAL_API int shoal_loop_add_sem(shoal_loop *loop, shoal_sem *s, shoal_loop_cb cb,
                                 void *arg, shoal_loop_source **out);

/*
 * Watches file descriptor fd for events (SHOAL_LOOP_READABLE and/or
 * SHOAL_LOOP_WRITABLE). The callback gets the events that hold, and SHOAL_LOOP_ERROR /
 * SHOAL_LOOP_HUP whenever they hold. Returns 0, SHOAL_EINVAL (fd < 0, no events,
 * NULL callback), SHOAL_ENOMEM or SHOAL_ESYS (the kernel refused the descriptor).
 */
SHOAL_API int shoal_loop_add_fd(shoal_loop *loop, int fd, int events, shoal_loop_cb cb,
                                void *arg, shoal_loop_source **out);

/*
 * Adds a timer that fires first `after` nanoseconds from now (0: on the next pass),
 * then every `period` nanoseconds (0: once). Its callback gets SHOAL_LOOP_TIMER.
 * Timers fire in the order of their due times; a periodic timer keeps its phase and,
 * when the loop was late by more than a period, skips the missed ticks instead of
 * firing them in a burst. A one-shot timer that fired stays registered, inactive,
 * until it is set again or removed. Returns 0, SHOAL_EINVAL (negative after or
 * period, NULL callback) or SHOAL_ENOMEM.
 */
SHOAL_API int shoal_loop_add_timer(shoal_loop *loop, shoal_duration after,
                                   shoal_duration period, shoal_loop_cb cb, void *arg,
                                   shoal_loop_source **out);
/* Re-arms timer src as shoal_loop_add_timer would; a negative `after` disarms it.
 * Returns 0 or SHOAL_EINVAL (src is not a timer of this loop). */
SHOAL_API int shoal_loop_timer_set(shoal_loop *loop, shoal_loop_source *src,
                                   shoal_duration after, shoal_duration period);

/*
 * Removes a source: its callback is not run again, not even later in the current
 * pass. Safe from inside any callback, the source's own included. src is invalid
 * afterwards. Removal is synchronous: when it returns, neither the loop's engine nor
 * the kernel refers to the source or to the object's futex word or descriptor any
 * more (on io_uring its request has been cancelled and has completed), so the object
 * may be closed, and its memory unmapped, at once. Returns 0 or SHOAL_EINVAL (NULL, or
 * already removed).
 */
SHOAL_API int shoal_loop_remove(shoal_loop *loop, shoal_loop_source *src);

/*
 * Runs fn(loop, arg) on the loop's thread, soon, in the order posted, waking the loop
 * if it sleeps. Safe from any thread (not from a signal handler: it allocates).
 * Returns 0, SHOAL_EINVAL or SHOAL_ENOMEM.
 */
SHOAL_API int shoal_loop_post(shoal_loop *loop, shoal_loop_fn fn, void *arg);

/* Makes the current or next wait of the loop return at once. Safe from any thread. */
SHOAL_API void shoal_loop_wake(shoal_loop *loop);

/*
 * Makes shoal_loop_run() return after the callback running now (or at once, when the
 * loop waits). Safe from any thread and from callbacks. A stop requested while the
 * loop is not running makes the next shoal_loop_run() return at once.
 */
SHOAL_API void shoal_loop_stop(shoal_loop *loop);

/*
 * Runs the callbacks of the sources that are ready, waiting up to `timeout` for at
 * least one (SHOAL_NOWAIT: never waits; SHOAL_FOREVER: no limit). Returns the number of
 * callbacks run (0 when the timeout expired or the loop was woken or stopped with
 * nothing to run), or a negative SHOAL_E* code when the engine failed.
 */
SHOAL_API int shoal_loop_run_once(shoal_loop *loop, shoal_duration timeout);

/*
 * Runs callbacks until shoal_loop_stop() is called. Returns 0 after a stop, or a
 * negative SHOAL_E* code when the engine failed.
 */
SHOAL_API int shoal_loop_run(shoal_loop *loop);

/*
 * What this machine offers the loop, for diagnostics (`shoal doctor`). Each field is
 * 1 when available, 0 when not; the *_errno fields hold the errno that said no.
 */
typedef struct shoal_loop_support {
    int uring_built;       /* this libshoal was built with the io_uring engine */
    int uring_disabled;    /* kernel.io_uring_disabled: 0, 1 or 2 (-1: unknown) */
    int uring;             /* io_uring_setup works for this process */
    int uring_errno;       /* why not (ENOSYS, EPERM, ...) */
    int uring_futex_wait;  /* IORING_OP_FUTEX_WAIT is supported */
    int uring_futex_waitv; /* IORING_OP_FUTEX_WAITV is supported */
    int futex_waitv;       /* the futex_waitv(2) system call works */
    int futex_waitv_errno;
    const char *engine; /* the engine a loop created now uses (NULL: none) */
} shoal_loop_support;

/* Fills *out by probing the kernel (creates and closes a small ring). Returns 0 or
 * SHOAL_EINVAL. */
SHOAL_API int shoal_loop_probe(shoal_loop_support *out);

#ifdef __cplusplus
}
#endif

#endif
