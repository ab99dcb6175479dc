/*
 * loop_uring.c — the event loop's io_uring engine.
 *
 * One ring per loop. A watched shared-memory source is one IORING_OP_FUTEX_WAIT in
 * flight on (word, value read before arming): the kernel completes it when a waker
 * wakes the word, or at once with -EAGAIN when the word already differs, so the
 * arm / re-check / wait order of loop.c loses nothing. liburing 2.3 has no helper for
 * the futex opcodes (Linux 6.7), so the SQE is filled by hand — addr: the word, addr2:
 * the expected value, addr3: the wake mask, fd: the futex2 flags (32-bit, shared) —
 * after io_uring_get_probe_ring said the opcode exists; without it init fails and the
 * loop falls back to epoll. Every completion, whatever its result (woken, -EAGAIN,
 * -ECANCELED), reports the source: the core re-checks the predicate anyway.
 *
 * A descriptor is one multishot poll: it posts a completion at each readiness change
 * and stays armed (IORING_CQE_F_MORE); when the kernel ends it (no F_MORE) it is
 * submitted again. Multishot poll reports changes, not levels, hence fd_edge.
 *
 * Cross-thread wake-ups ring a doorbell: a futex word in the loop with one
 * FUTEX_WAIT always in flight; notify bumps the word and wakes it.
 *
 * A completion (a futex woken, a descriptor ready) is posted by task work that runs on
 * the loop's thread. The ring is set up for cooperative task running
 * (IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG, Linux 5.19): a thread asleep
 * in the ring is woken for it, but a running one is not interrupted (an inter-processor
 * interrupt each time: with busy sockets, over a quarter of the loop's time on a
 * virtual machine); the kernel runs the work at the thread's next system call, and sets
 * IORING_SQ_TASKRUN meanwhile, which the spin (ur_pending) looks at before it enters
 * the kernel to collect it. Older kernels refuse the flags; the ring then interrupts.
 *
 * user_data is the source pointer with a tag in its low bits (sources come from
 * calloc: 16-byte aligned); cancellations carry 0 and their completions are ignored.
 * Destroying the loop cancels every request and waits for that (cancel_all): the
 * kernel would otherwise end them only later, leaving futex waits on live words.
 *
 * Removal is synchronous: the source's request is cancelled (IORING_OP_ASYNC_CANCEL
 * on its user_data) and completions are collected until the request's last one has
 * come (cancel_sync), so when shoal_loop_remove returns the kernel holds no request
 * naming the source or its word, and both may be freed at once. The kernel cancels a
 * futex wait or a poll inside the cancellation's submission, so this costs one
 * io_uring_enter; the other completions collected on the way are handled as usual.
 */
#ifdef SHOAL_HAVE_URING

#include <errno.h>
#include <limits.h>
#include <liburing.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "loop_internal.h"

#define OP_FUTEX_WAIT   51 /* IORING_OP_FUTEX_WAIT, Linux 6.7 */
#define OP_FUTEX_WAITV  53 /* IORING_OP_FUTEX_WAITV */
#define FUTEX2_SIZE_U32 0x02
#define FUTEX_MASK_ANY  0xffffffffu

#define RING_ENTRIES 256
#define CQ_ENTRIES   4096

enum { TAG_WAIT = 1, TAG_POLL = 2, TAG_BELL = 3, TAG_MASK = 3 };
/* The user_data of the cancellation that ends every request (cancel_all). */
#define UD_CANCEL_ALL ((uint64_t)4)
/* s->eng_idx: which of its requests are in flight (the tag's bit). */
#define IN_FLIGHT(tag) (1 << (tag))

struct ur {
    struct io_uring ring;
    _Atomic uint32_t doorbell;
};

static struct io_uring_sqe *sqe_get(struct ur *u)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
    if (!sqe) { /* the submission queue is full: hand it to the kernel */
        io_uring_submit(&u->ring);
        sqe = io_uring_get_sqe(&u->ring);
    }
    return sqe;
}

static int prep_futex_wait(struct ur *u, _Atomic uint32_t *word, uint32_t val,
                           uint64_t user_data)
{
    struct io_uring_sqe *sqe = sqe_get(u);
    if (!sqe)
        return shoal__err(SHOAL_ESYS, "loop (io_uring): no submission entry free");
    memset(sqe, 0, sizeof(*sqe));
    sqe->opcode = OP_FUTEX_WAIT;
    sqe->fd = FUTEX2_SIZE_U32; /* not FUTEX2_PRIVATE: the word is shared */
    sqe->addr = (uint64_t)(uintptr_t)word;
    sqe->addr2 = val;
    sqe->addr3 = FUTEX_MASK_ANY;
    sqe->user_data = user_data;
    return 0;
}

static int prep_poll(struct ur *u, shoal_loop_source *s)
{
    struct io_uring_sqe *sqe = sqe_get(u);
    if (!sqe)
        return shoal__err(SHOAL_ESYS, "loop (io_uring): no submission entry free");
    io_uring_prep_poll_multishot(sqe, s->fd, shoal__loop_to_poll(s->events));
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)s | TAG_POLL);
    s->eng_idx |= IN_FLIGHT(TAG_POLL);
    return 0;
}

static int bell_arm(struct ur *u)
{
    return prep_futex_wait(u, &u->doorbell, atomic_load(&u->doorbell), TAG_BELL);
}

static int ur_watch(shoal_loop *l, shoal_loop_source *s)
{
    int rc = prep_futex_wait(l->eng_state, s->w.word, s->expect,
                             (uint64_t)(uintptr_t)s | TAG_WAIT);
    if (rc == 0)
        s->eng_idx |= IN_FLIGHT(TAG_WAIT);
    return rc;
}

static int reap(shoal_loop *l, struct ur *u);

/*
 * Ends s's request of kind `tag` before returning: an IORING_OP_ASYNC_CANCEL for it,
 * then completions are collected (every one is handled as usual: sources fired
 * meanwhile become hot) until the request's own last one has come — -ECANCELED, or
 * its normal result when it completed first (the cancellation then fails with
 * -ENOENT). A futex wait or a poll is cancelled inside the submission, so this is
 * one io_uring_enter in practice.
 */
static void cancel_sync(shoal_loop *l, shoal_loop_source *s, int tag)
{
    struct ur *u = l->eng_state;
    if (!(s->eng_idx & IN_FLIGHT(tag)))
        return;
    struct io_uring_sqe *sqe = sqe_get(u);
    if (sqe) { /* never NULL after sqe_get's submit */
        io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)s | (uint64_t)tag, 0);
        io_uring_sqe_set_data64(sqe, 0);
    }
    while (s->eng_idx & IN_FLIGHT(tag)) {
        int rc = io_uring_submit_and_wait(&u->ring, 1);
        if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
            /* Only a broken ring gets here; its requests end with it (fini). */
            shoal__err(SHOAL_ESYS, "loop (io_uring): cancel: %s", strerror(-rc));
            return;
        }
        reap(l, u);
    }
}

static void ur_unwatch(shoal_loop *l, shoal_loop_source *s)
{
    cancel_sync(l, s, TAG_WAIT);
}

static int ur_fd_add(shoal_loop *l, shoal_loop_source *s)
{
    return prep_poll(l->eng_state, s);
}

static void ur_fd_remove(shoal_loop *l, shoal_loop_source *s)
{
    cancel_sync(l, s, TAG_POLL);
}

static void ur_notify(shoal_loop *l)
{
    struct ur *u = l->eng_state;
    atomic_fetch_add(&u->doorbell, 1);
    shoal__futex_wake(&u->doorbell, 1);
}

_Atomic uint32_t *shoal__uring_doorbell(shoal_loop *l)
{
    return &((struct ur *)l->eng_state)->doorbell;
}

static bool ur_pending(shoal_loop *l)
{
    struct ur *u = l->eng_state;
    if (io_uring_sq_ready(&u->ring))
        io_uring_submit(&u->ring); /* waits handed over while spinning */
    /* No system call otherwise: a completion for this thread (a futex wake-up, a
     * descriptor's readiness) is queued as task work, which the kernel flags in the
     * ring (cooperative task running, see ring_open); only then does the spinning
     * thread enter the kernel to run it. */
    if (IO_URING_READ_ONCE(*u->ring.sq.kflags) & IORING_SQ_TASKRUN)
        io_uring_get_events(&u->ring);
    return io_uring_cq_ready(&u->ring) > 0;
}

static void on_poll(shoal_loop *l, struct ur *u, shoal_loop_source *s,
                    const struct io_uring_cqe *cqe)
{
    if (cqe->res >= 0)
        shoal__loop_fd_ready(l, s, shoal__loop_from_poll((unsigned)cqe->res));
    else if (cqe->res != -ECANCELED)
        shoal__loop_fd_ready(l, s, SHOAL_LOOP_ERROR); /* EBADF, ...: tell the user */
    if (cqe->flags & IORING_CQE_F_MORE)
        return;
    s->eng_idx &= ~IN_FLIGHT(TAG_POLL);
    if (!s->removed && cqe->res >= 0)
        prep_poll(u, s); /* the kernel ended the multishot: arm it again */
}

static void on_cqe(shoal_loop *l, struct ur *u, const struct io_uring_cqe *cqe)
{
    uint64_t ud = cqe->user_data;
    shoal_loop_source *s = (shoal_loop_source *)(uintptr_t)(ud & ~(uint64_t)TAG_MASK);
    switch (ud & TAG_MASK) {
    case TAG_WAIT:
        s->eng_idx &= ~IN_FLIGHT(TAG_WAIT);
        shoal__loop_fired(l, s);
        break;
    case TAG_POLL:
        on_poll(l, u, s, cqe);
        break;
    case TAG_BELL:
        bell_arm(u); /* the core looks at its `notified` flag on the next pass */
        break;
    default: /* a cancellation, or liburing's own timeout */
        break;
    }
}

static int ur_wait(shoal_loop *l, int64_t deadline_ns)
{
    struct ur *u = l->eng_state;
    struct io_uring_cqe *cqe = NULL;
    int64_t now = shoal__now_ns();
    int rc;
    if (io_uring_cq_ready(&u->ring) || deadline_ns <= now) {
        rc = io_uring_submit(&u->ring);
    } else if (deadline_ns == INT64_MAX) {
        rc = io_uring_submit_and_wait(&u->ring, 1);
    } else {
        int64_t ns = deadline_ns - now;
        struct __kernel_timespec ts = {.tv_sec = ns / 1000000000,
                                       .tv_nsec = ns % 1000000000};
        rc = io_uring_submit_and_wait_timeout(&u->ring, &cqe, 1, &ts, NULL);
    }
    if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
        return shoal__err(SHOAL_ESYS, "loop (io_uring): io_uring_enter: %s",
                          strerror(-rc));
    return reap(l, u);
}

/* Handles the completions that are there; returns how many. */
static int reap(shoal_loop *l, struct ur *u)
{
    struct io_uring_cqe *cqe;
    unsigned head, n = 0;
    io_uring_for_each_cqe(&u->ring, head, cqe)
    {
        on_cqe(l, u, cqe);
        n++;
    }
    io_uring_cq_advance(&u->ring, n);
    return (int)n;
}

/* Sets up a ring and checks for the futex opcode. On failure *err holds the errno of
 * io_uring_setup (0 when the ring came up but lacks the opcode). */
static int ring_open(struct io_uring *ring, int *err, bool *futex_wait, bool *futex_waitv)
{
    struct io_uring_params p;
    memset(&p, 0, sizeof(p));
    p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
    p.cq_entries = CQ_ENTRIES;
    int rc = io_uring_queue_init_params(RING_ENTRIES, ring, &p);
    if (rc == -EINVAL) { /* before Linux 5.19: the thread is interrupted instead */
        memset(&p, 0, sizeof(p));
        p.flags = IORING_SETUP_CQSIZE;
        p.cq_entries = CQ_ENTRIES;
        rc = io_uring_queue_init_params(RING_ENTRIES, ring, &p);
    }
    *err = rc < 0 ? -rc : 0;
    *futex_wait = *futex_waitv = false;
    if (rc < 0)
        return rc;
    struct io_uring_probe *probe = io_uring_get_probe_ring(ring);
    if (probe) {
        *futex_wait = io_uring_opcode_supported(probe, OP_FUTEX_WAIT);
        *futex_waitv = io_uring_opcode_supported(probe, OP_FUTEX_WAITV);
        io_uring_free_probe(probe);
    }
    return 0;
}

static int ur_init(shoal_loop *l)
{
    struct ur *u = calloc(1, sizeof(*u));
    if (!u)
        return shoal__err(SHOAL_ENOMEM, "loop: out of memory");
    int err;
    bool fw, fwv;
    if (ring_open(&u->ring, &err, &fw, &fwv) < 0) {
        free(u);
        return shoal__err(SHOAL_ESYS, "loop: io_uring_setup: %s%s", strerror(err),
                          err == EPERM || err == ENOSYS
                              ? " (a seccomp profile or kernel.io_uring_disabled)"
                              : "");
    }
    if (!fw) {
        io_uring_queue_exit(&u->ring);
        free(u);
        return shoal__err(SHOAL_ESYS,
                          "loop: io_uring has no IORING_OP_FUTEX_WAIT (Linux 6.7+)");
    }
    l->eng_state = u;
    return bell_arm(u);
}

/*
 * Ends every request of the ring before it closes. Closing a ring ends its requests
 * later, from a kernel worker; until then a futex wait of the closed ring would stay
 * queued on its word and could take a FUTEX_WAKE of one waiter meant for a live
 * sleeper — the doorbell of the next loop, allocated at the same address, or a
 * Semaphore's next waiter. The kernel unqueues the futex waits inside the
 * cancellation's submission, so its completion is all there is to wait for.
 */
static void cancel_all(struct ur *u)
{
    struct io_uring_sqe *sqe = sqe_get(u);
    if (!sqe)
        return;
    io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY | IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data64(sqe, UD_CANCEL_ALL);
    for (int tries = 0; tries < 100; tries++) {
        struct io_uring_cqe *cqe = NULL;
        struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = 10 * 1000000};
        int rc = io_uring_submit_and_wait_timeout(&u->ring, &cqe, 1, &ts, NULL);
        if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
            return; /* a broken ring: its requests end with it */
        unsigned head, n = 0;
        bool done = false;
        io_uring_for_each_cqe(&u->ring, head, cqe)
        {
            done |= cqe->user_data == UD_CANCEL_ALL;
            n++;
        }
        io_uring_cq_advance(&u->ring, n);
        if (done)
            return;
    }
}

static void ur_fini(shoal_loop *l)
{
    struct ur *u = l->eng_state;
    if (!u)
        return;
    cancel_all(u);
    io_uring_queue_exit(&u->ring);
    free(u);
    l->eng_state = NULL;
}

void shoal__uring_probe(shoal_loop_support *out)
{
    struct io_uring ring;
    bool fw, fwv;
    out->uring_built = 1;
    if (ring_open(&ring, &out->uring_errno, &fw, &fwv) == 0) {
        out->uring = 1;
        out->uring_futex_wait = fw;
        out->uring_futex_waitv = fwv;
        io_uring_queue_exit(&ring);
    }
}

const shoal__loop_engine shoal__loop_uring = {
    .name = "uring",
    .init = ur_init,
    .fini = ur_fini,
    .watch = ur_watch,
    .unwatch = ur_unwatch,
    .fd_add = ur_fd_add,
    .fd_remove = ur_fd_remove,
    .pending = ur_pending,
    .notify = ur_notify,
    .wait = ur_wait,
    .fd_edge = true,
};

#endif /* SHOAL_HAVE_URING */
