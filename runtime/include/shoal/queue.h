/*
 * shoal/queue.h — bounded multi-producer multi-consumer queues in shared memory.
 *
 * A queue holds either fixed-size typed slots (cfg.type set: every message is exactly
 * type->size bytes) or variable-size byte messages of at most cfg.max_msg bytes
 * (cfg.type NULL; encoded messages travel this way). cfg.spsc selects the
 * single-producer single-consumer fast path at creation.
 *
 * shoal_queue_shutdown() ends the stream for everyone: producers then get
 * SHOAL_ECLOSED, consumers drain what was committed and then get SHOAL_EEOF.
 * A producer or consumer killed at any instant neither wedges the queue nor loses or
 * duplicates a committed message.
 *
 * Delivery: a message is consumed by exactly one get — a consumer killed inside get,
 * even after copying the message out, leaves it to another consumer. With peek/release
 * the release is the consuming step: a consumer that dies between the two has its
 * message delivered again (at least once). A producer killed between loan (or the
 * inside of put) and commit leaves nothing behind. In an MPMC queue a stuck or dead
 * producer's reservation delays the messages behind it until it commits or its death
 * is noticed (within tens of milliseconds).
 *
 * Single-producer single-consumer queues (cfg.spsc) skip the per-slot bookkeeping of
 * owners (a slot carries only a ready marker): at most one process (or thread) may put
 * and one may get at a time; they allow one outstanding loan and one outstanding peek.
 *
 * Handles may be shared by the threads of a process (MPMC) and are inherited across
 * fork().
 */
#ifndef SHOAL_QUEUE_H
#define SHOAL_QUEUE_H

#include "common.h"
#include "type.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct shoal_queue shoal_queue;

/* How a queue is made. Opening an existing queue checks type (or max_msg) and takes
 * capacity and spsc as the creator chose them. */
typedef struct shoal_queue_config {
    const shoal_type *type; /* fixed-size slots of this type; NULL: variable-size */
    size_t max_msg;         /* variable-size: largest message in bytes */
    size_t capacity;        /* messages it holds; 0: a default (1024) */
    int spsc;               /* non-zero: single producer, single consumer */
} shoal_queue_config;

/*
 * Opens or creates the queue `name` (NULL: anonymous). With SHOAL_OPEN, cfg may be
 * NULL to accept any queue; otherwise its type (or max_msg) must match:
 * SHOAL_ELAYOUT names both types when they differ. Other errors as shoal_shm_open.
 */
SHOAL_API int shoal_queue_open(shoal_queue **out, const char *name, int mode,
                               const shoal_queue_config *cfg, const shoal_attr *attr);
/* Releases this process's handle (the queue stays; see shoal_queue_shutdown). */
SHOAL_API int shoal_queue_close(shoal_queue *q);
SHOAL_API const char *shoal_queue_name(const shoal_queue *q);

/*
 * Puts one message of len bytes (for a typed queue len must equal the type's size).
 * Returns 0, SHOAL_ETIMEDOUT, SHOAL_EAGAIN (try form, full), SHOAL_EMSGSIZE (len wrong
 * for a typed queue or over max_msg), SHOAL_ECLOSED, SHOAL_EBUSY (more processes use
 * the queue than its table of users holds). The try form never waits, whatever state
 * a damaged segment's slots are in.
 */
SHOAL_API int shoal_queue_put(shoal_queue *q, const void *msg, size_t len,
                              shoal_duration timeout);
SHOAL_API int shoal_queue_try_put(shoal_queue *q, const void *msg, size_t len);

/*
 * Gets the oldest message into buf (cap bytes); *len receives its size.
 * Returns 0, SHOAL_ETIMEDOUT, SHOAL_EAGAIN (try form, empty), SHOAL_EEOF (shut down and
 * drained), SHOAL_EMSGSIZE (cap too small: the message stays queued, *len says how big),
 * SHOAL_ECORRUPT (the next message records more bytes than the queue's max_msg: the
 * segment was damaged; nothing is copied and the message stays), SHOAL_EBUSY (as put).
 */
SHOAL_API int shoal_queue_get(shoal_queue *q, void *buf, size_t cap, size_t *len,
                              shoal_duration timeout);
SHOAL_API int shoal_queue_try_get(shoal_queue *q, void *buf, size_t cap, size_t *len);

/*
 * Batch forms for typed queues: put n consecutive elements / get up to max of them.
 * They wait (up to timeout) for the first element only, then move as many as fit.
 * *done receives the count moved. Return 0 if at least one moved, else as put/get.
 */
SHOAL_API int shoal_queue_put_batch(shoal_queue *q, const void *elems, size_t n,
                                    size_t *done, shoal_duration timeout);
SHOAL_API int shoal_queue_get_batch(shoal_queue *q, void *elems, size_t max, size_t *done,
                                    shoal_duration timeout);

/*
 * Zero-copy producer side: shoal_queue_loan() reserves a slot and returns a pointer
 * to write the message in place (*cap: its capacity in bytes); shoal_queue_commit()
 * publishes it with `len` bytes (typed queues: the type's size). A loan not committed
 * by a process that dies is reclaimed; consumers never see it.
 */
SHOAL_API int shoal_queue_loan(shoal_queue *q, void **slot, size_t *cap,
                               shoal_duration timeout);
SHOAL_API int shoal_queue_commit(shoal_queue *q, void *slot, size_t len);

/*
 * Zero-copy consumer side: shoal_queue_peek() returns the next message in place;
 * shoal_queue_release() frees its slot. Until released, the message belongs to this
 * consumer; if it dies, the message is delivered to another consumer. peek returns
 * as get does (SHOAL_ECORRUPT included), without SHOAL_EMSGSIZE.
 */
SHOAL_API int shoal_queue_peek(shoal_queue *q, const void **msg, size_t *len,
                               shoal_duration timeout);
SHOAL_API int shoal_queue_release(shoal_queue *q, const void *msg);

/* Ends the stream for every process. Returns 0. */
SHOAL_API int shoal_queue_shutdown(shoal_queue *q);

/* Counters and depth. */
typedef struct shoal_queue_stats {
    uint64_t capacity, depth, max_msg;
    uint64_t puts, gets, full_waits, empty_waits;
    int closed, spsc;
} shoal_queue_stats;
SHOAL_API int shoal_queue_stats_get(shoal_queue *q, shoal_queue_stats *st);

/*
 * How this process's queues and pipes wake a sleeping peer: "membarrier" when it
 * registered for membarrier(2)'s global expedited barrier (a put or get with nobody
 * asleep then makes no locked instruction and no fence; a thread about to sleep, and
 * shutdown, issue the barrier), or "fenced" when membarrier is missing or refused
 * (an old kernel, a seccomp profile) or $SHOAL_WAKE=fenced forces it (every put and
 * get then makes a full fence, and so do those of every process sharing a ring with
 * this one). Decided once per process, at the first call or the first ring opened.
 * When why is not NULL, *why receives the errno that refused membarrier (0 when it
 * was not refused). Never fails.
 */
SHOAL_API const char *shoal_wake_mode(int *why);

#ifdef __cplusplus
}
#endif
#endif
