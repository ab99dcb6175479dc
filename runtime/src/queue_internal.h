/*
 * queue_internal.h — the ring buffer under Queue and Pipe.
 *
 * A ring is a self-describing block of shared memory: a header of a few cache lines
 * (geometry, producer and consumer indexes, futex words, counters) followed by
 * `capacity` slots. A queue segment holds one ring; a pipe segment holds two, one per
 * direction. Two algorithms share the layout of the header:
 *
 *  - multi-producer multi-consumer (MPMC): a bounded queue with a state word per slot
 *    (see ring_mpmc.c) that records which process reserved or claimed it, so a process
 *    killed between reserving and committing, or between claiming and releasing, is
 *    detected and its slot recycled or its message delivered to someone else;
 *  - single-producer single-consumer (SPSC): a bare ring with head and tail indexes on
 *    separate cache lines and no per-slot atomics.
 */
#ifndef SHOAL_QUEUE_INTERNAL_H
#define SHOAL_QUEUE_INTERNAL_H

#include "internal.h"
#include "wait.h"

#define SHOAL__RING_SPSC 1u /* single producer, single consumer */
#define SHOAL__RING_VAR  2u /* variable-size messages (a length precedes each) */

/* Where a ring's slots are and how big they are; kept in the segment header's aux[]
 * and in the ring header, and checked against each other on open. */
typedef struct shoal__ring_geom {
    uint32_t flags;     /* SHOAL__RING_* */
    uint32_t capacity;  /* slots */
    uint32_t max_msg;   /* bytes a message may have (typed: the element size) */
    uint32_t data_off;  /* offset of the message bytes in a slot */
    uint32_t stride;    /* bytes from one slot to the next */
    uint32_t elem_size; /* typed: the element size; variable-size: 0 */
} shoal__ring_geom;

struct shoal__ringhdr; /* in shared memory; see ring_internal.h */
struct shoal__ring;
struct shoal__ring_hook;
struct shoal__ring_ops;

/* A try form: 0 done, SHOAL_EAGAIN would wait, or an error. */
typedef int (*shoal__ring_try_fn)(struct shoal__ring *r, void *arg);

/* One side of a ring (or one blocking call) as the object of a shoal__waitable. */
struct shoal__ring_waiter {
    struct shoal__ring *r;
    bool producer;
    shoal__ring_try_fn fn;
    void *arg;
    const struct shoal__ring_hook *hook;
    bool blocking; /* a blocking call's wait (not the event loop's): see the hook */
};

/* A biased ring's busy words of one user slot (ring_bias.c): per side (0: producers,
 * 1: consumers), the owner id of the slot's process while one of its threads is
 * inside a put or get of that side, else 0. A line of its own, written only by that
 * process, read by a process revoking the side. */
struct shoal__bias_line {
    _Alignas(64) _Atomic uint32_t side[2];
};

/* A process's view of a ring (plus the SPSC side's cached copies of the other
 * side's index: hints only, always <= the real value). */
typedef struct shoal__ring {
    struct shoal__ringhdr *h;
    const struct shoal__ring_ops *ops; /* the algorithm: MPMC or SPSC (ring.c) */
    unsigned char *slots;
    shoal__ring_geom g;
    uint64_t mask;    /* capacity - 1 when a power of two, else 0 */
    shoal__seg *seg;  /* the segment (owner ids of slots are its users') */
    const char *what; /* "queue", "pipe" — for error messages */
    const char *name;
    uint64_t head_cache, tail_cache;   /* SPSC */
    uint32_t put_id;                   /* SPSC: put_busy's value (ring_spsc.h) */
    unsigned put_gen;                  /* SPSC: put_id is for this fork generation */
    uint64_t put_tag;                  /* SPSC: put_view's value; 0: none (ring_spsc.c) */
    uint64_t tail_own;                 /* SPSC: the tail after this view's last put */
    struct shoal__bias_line *busy;     /* biased: the busy words (ring_bias.c); NULL:
                                          not biased */
    uint32_t bias_me;                  /* biased: this process's owner id, */
    int bias_slot;                     /* its user slot, */
    unsigned bias_gen;                 /* for this fork generation */
    unsigned char *loan, *peek;        /* SPSC: the outstanding loan / peeked slot */
    _Atomic int64_t next_scan_ns;      /* MPMC: next look for dead owners */
    _Atomic uint32_t scan_polls;       /* MPMC: attempts that found nothing (0 before
                                          a sleep: the next one reads the clock) */
    _Atomic uint32_t put_full;         /* MPMC: the last reservation found no room */
    struct shoal__ring_waiter side[2]; /* readable, writable (shoal__ring_waitable) */
} shoal__ring;

/*
 * A channel-specific check run while a call waits (before each sleep): returns 0 to
 * keep waiting or a terminal code (SHOAL_EEOF, SHOAL_EPEERDEAD, ...). The ring then
 * makes one more attempt, so what was already sent is still delivered first.
 * between_sleeps is true when a blocking call (shoal__wait) is about to sleep again:
 * the check may then answer from what it found a short while ago (a blocking call
 * that sleeps at once on each message would otherwise pay for the check's system call
 * at every message), since the sleep is sliced and the next slice checks again; it is
 * false for a try form, which must say at once why nothing can come, and for the event
 * loop.
 */
typedef struct shoal__ring_hook {
    int (*check)(void *arg, bool producer, bool between_sleeps);
    void *arg;
} shoal__ring_hook;

/* Validates cfg (what/name for messages) and computes the geometry. */
int shoal__ring_geom_make(const shoal_queue_config *cfg, const char *what,
                          const char *name, shoal__ring_geom *g);
/* Bytes a ring of this geometry occupies (a multiple of 64). */
size_t shoal__ring_bytes(const shoal__ring_geom *g);
/* Formats a ring on zero-filled memory. */
void shoal__ring_format(void *mem, const shoal__ring_geom *g);
/* Attaches to the ring at mem (avail bytes) of segment seg, checking it has geometry
 * g. */
int shoal__ring_attach(shoal__ring *r, shoal__seg *seg, void *mem, size_t avail,
                       const shoal__ring_geom *g, const char *what, const char *name);

/* The message operations; semantics as shoal_queue_*. hook may be NULL. */
int shoal__ring_put(shoal__ring *r, const void *msg, size_t len, shoal_duration timeout,
                    const shoal__ring_hook *hook);
int shoal__ring_get(shoal__ring *r, void *buf, size_t cap, size_t *len,
                    shoal_duration timeout, const shoal__ring_hook *hook);
int shoal__ring_put_batch(shoal__ring *r, const void *elems, size_t n, size_t *done,
                          shoal_duration timeout, const shoal__ring_hook *hook);
int shoal__ring_get_batch(shoal__ring *r, void *elems, size_t max, size_t *done,
                          shoal_duration timeout, const shoal__ring_hook *hook);
int shoal__ring_loan(shoal__ring *r, void **slot, size_t *cap, shoal_duration timeout,
                     const shoal__ring_hook *hook);
int shoal__ring_commit(shoal__ring *r, void *slot, size_t len);
int shoal__ring_peek(shoal__ring *r, const void **msg, size_t *len,
                     shoal_duration timeout, const shoal__ring_hook *hook);
int shoal__ring_release(shoal__ring *r, const void *msg);
/* 1 when a message is ready, 0 on timeout, or a terminal code from the hook. */
int shoal__ring_poll(shoal__ring *r, shoal_duration timeout,
                     const shoal__ring_hook *hook);
/* Ends the stream: producers get SHOAL_ECLOSED, consumers SHOAL_EEOF once drained. */
void shoal__ring_shutdown(shoal__ring *r);
/* Wakes every sleeper on both sides (they re-check their hooks). */
void shoal__ring_wake_all(shoal__ring *r);
void shoal__ring_stats(const shoal__ring *r, shoal_queue_stats *st);
/* Calls fn on copies of up to max of the oldest committed messages, without taking
 * them (for `shoal inspect`: racy by nature, a message taken meanwhile may be left
 * out). Safe on a damaged ring: it looks at no more than capacity slots whatever the
 * indexes say, and leaves out slots whose recorded length exceeds max_msg. Returns 0
 * or SHOAL_ENOMEM. */
int shoal__ring_inspect(const shoal__ring *r, size_t max,
                        void (*fn)(void *arg, const void *msg, size_t len), void *arg);
int shoal__queue_inspect(shoal_queue *q, size_t max,
                         void (*fn)(void *arg, const void *msg, size_t len), void *arg);
/* The channel check run by waits on this ring that have no hook of their own (the
 * event loop's): the pipe's peer check. NULL: none. */
void shoal__ring_set_hook(shoal__ring *r, const shoal__ring_hook *hook);
/* Makes an SPSC ring biased (ring_bias.c): several processes and threads may then
 * put (and get) at once, one at a time by the right each side's bias word gives.
 * busy: SHOAL_MAX_USERS lines in the segment, zero-filled at creation. */
void shoal__ring_set_bias(shoal__ring *r, struct shoal__bias_line *busy);
/* Fills *out for the ring's readable (a message, or the end of the stream: ready()
 * returns SHOAL_EEOF / the hook's code) or writable (room; SHOAL_ECLOSED once shut
 * down) side. Valid while the ring stays attached. */
void shoal__ring_waitable(shoal__ring *r, bool writable, shoal__waitable *out);
/* How many sleepers the ring counts on its consumer (producers = false) or producer
 * side: the number that makes a put or get call futex-wake (for tests). */
uint32_t shoal__ring_sleepers(const shoal__ring *r, bool producers);
uint32_t shoal__queue_sleepers(shoal_queue *q, bool producers);
/* The queue's ring (tests look at its header). */
shoal__ring *shoal__queue_ring(shoal_queue *q);

/* Segment glue: the element type recorded for variable-size channels, the header
 * fields (count, aux[]) describing geometry g, the geometry recorded in an open
 * segment (validated), and the check of an existing channel against cfg. */
void shoal__ring_bytes_type(shoal_type *t, uint32_t max_msg);
void shoal__ring_spec(shoal__seg_spec *spec, const shoal__ring_geom *g, const char *what);
int shoal__ring_geom_of(const shoal__seg *seg, const char *what, shoal__ring_geom *g);
int shoal__ring_check_cfg(const shoal__ring_geom *g, const shoal_queue_config *cfg,
                          const char *what, const char *name);

/* ---- inspection of a pipe (pipe.c) ---------------------------------------------- */

/* One end of a pipe as an inspector sees it. */
typedef struct shoal__pipe_end_view {
    bool opened, alive, closed;
    int32_t pid;
} shoal__pipe_end_view;
/* Validates an open pipe segment and attaches its rings (ring[i] carries what end i
 * sends) without taking an end; describes both ends. Returns 0 or SHOAL_ECORRUPT. */
int shoal__pipe_view(shoal__seg *seg, shoal__ring ring[2], shoal__pipe_end_view end[2]);

#endif
