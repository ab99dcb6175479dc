/*
 * ring_internal.h — what ring.c shares with the two ring algorithms (ring_mpmc.c,
 * ring_spsc.c): the ring header in shared memory, the table of operations each
 * algorithm fills, and the small helpers both use (slot addressing, wake-ups, errors).
 *
 * ring.c chooses the table once, from the geometry's flags (shoal__ring_ops_of), and
 * keeps it in the process's view of the ring; every message operation then makes one
 * indirect call through it. The try forms never wait: they return 0 when done,
 * SHOAL_EAGAIN when they would have to wait, or an error; ring.c waits around them.
 */
#ifndef SHOAL_RING_INTERNAL_H
#define SHOAL_RING_INTERNAL_H

#include <string.h>

#include "queue_internal.h"

#define SCAN_NS (20 * 1000000LL) /* a consumer looks for dead owners this often */
/* Values of the header's `closed` word: shutdown has begun (no put may start), and
 * (SPSC) its barrier is done too, so that a put still in flight is visible in
 * put_busy. MPMC rings only test the word for non-zero. */
#define RING_CLOSING 1u
#define RING_SEALED  2u
#define RING_MAGIC   0x474e4952u /* "RING" */

struct shoal__ringhdr {
    uint32_t magic, flags, capacity, max_msg, data_off, stride, elem_size, pad;
    _Alignas(64) _Atomic uint64_t tail;
    _Atomic uint64_t full_waits;
    /* SPSC: the owner id of a producer inside a put. A line of its own that only the
     * producer writes and consumers read only at the end of the stream, so the
     * stores around each put never take the tail's line from a polling consumer. */
    _Alignas(64) _Atomic uint32_t put_busy;
    /* SPSC: the tag of the view (process and handle) whose put began last. A view that
     * finds its own tag there knows the tail without reading its line (ring_spsc.c). */
    _Atomic uint64_t put_view;
    _Alignas(64) _Atomic uint64_t head;
    _Atomic uint64_t empty_waits;
    /* Per side, its futex word and its sleepers in one 64-bit word (the low half:
     * bumped when a message — ne, not empty — or room — nf, not full — may have
     * come; the high half, in SIDE_SLEEPER units: how many sleep), so that a waker
     * takes every sleeper off the count in the step that bumps the word ("Sleepers"
     * in ring.c). */
    _Alignas(64) _Atomic uint64_t ne;
    _Alignas(64) _Atomic uint64_t nf;
    _Alignas(64) _Atomic uint32_t closed; /* 0, RING_CLOSING, RING_SEALED */
    /* Non-zero once a process that cannot issue asymmetric barriers (membarrier) has
     * attached: every producer and consumer then fences on its own (see ring.c). */
    _Atomic uint32_t fenced;
    _Atomic uint64_t skipped;     /* dead producers' reservations recycled */
    _Atomic uint64_t redelivered; /* dead consumers' claims delivered to others */
    /* A biased SPSC ring (a Pipe's, ring_bias.c): per side (0: producers, 1:
     * consumers), the owner id of the process holding the right to use it, or
     * BIAS_REVOKING with the revoker's and the old holder's ids; and a word bumped
     * (and woken) when a revocation may progress. Written only when the right
     * changes hands, so the line stays shared and every put and get reads it. */
    _Atomic uint64_t bias[2];
    _Atomic uint32_t bias_seq;
};

#define SIDE_SLEEPER (1ull << 32) /* one sleeper in a side word */

/* The side word of the consumers (not empty) or the producers (not full). */
static inline _Atomic uint64_t *side_word(const shoal__ring *r, bool producers)
{
    return producers ? &r->h->nf : &r->h->ne;
}

/* A side word's futex word: its low half, wherever the byte order puts it. */
static inline _Atomic uint32_t *side_seq(_Atomic uint64_t *side)
{
    return (_Atomic uint32_t *)side + (__BYTE_ORDER__ == __ORDER_BIG_ENDIAN__);
}

#define HDR_BYTES ((sizeof(struct shoal__ringhdr) + 63) & ~(size_t)63)

/* Arguments of the try forms (the void *arg of a shoal__ring_try_fn). */
struct put_args {
    const void *msg;
    size_t len;
};

struct get_args {
    void *buf;
    size_t cap;
    size_t *len;
};

struct batch_args {
    unsigned char *elems;
    size_t n, *done;
};

struct loan_args {
    void **slot;
    size_t *cap;
};

struct peek_args {
    const void **msg;
    size_t *len;
};

/* One ring algorithm. */
struct shoal__ring_ops {
    /* Fills g->data_off and g->stride for g->flags and g->max_msg, elements aligned to
     * align. */
    void (*geom)(shoal__ring_geom *g, uint32_t align);
    /* Initialises the slots of a freshly zero-filled ring. */
    void (*format)(unsigned char *slots, const shoal__ring_geom *g);
    /* The try forms: put_args, get_args, batch_args (both batches), loan_args,
     * peek_args; readable and writable take no argument (the event loop's predicates:
     * a message or the end of the stream is there / there is room). */
    shoal__ring_try_fn put, get, put_batch, get_batch, loan, peek, readable, writable;
    /* Publishes a loaned slot (base: the slot's start) with a message of len bytes
     * (len already checked). */
    int (*commit)(shoal__ring *r, unsigned char *base, size_t len);
    /* Consumes a peeked message (msg not NULL). */
    int (*release)(shoal__ring *r, const void *msg);
    /* Shutdown's part after `closed` is set. */
    void (*seal)(shoal__ring *r);
    /* Inspection: the committed message at position pos copied to buf (max_msg
     * bytes); its length, or -1 when there is none there or it is damaged. */
    long (*copy_at)(const shoal__ring *r, uint64_t pos, unsigned char *buf);
};

extern const struct shoal__ring_ops shoal__ring_mpmc_ops, shoal__ring_spsc_ops;

static inline uint64_t round_up(uint64_t n, uint64_t a)
{
    return (n + a - 1) / a * a;
}

static inline bool is_var(const shoal__ring *r)
{
    return r->g.flags & SHOAL__RING_VAR;
}

static inline unsigned char *slot_at(const shoal__ring *r, uint64_t pos)
{
    size_t i = r->mask ? (size_t)(pos & r->mask) : (size_t)(pos % r->g.capacity);
    return r->slots + i * r->g.stride;
}

/* Messages up to this size are copied inline (copy_msg), larger ones by memcpy. */
#define COPY_INLINE_MAX 64

/* Copies a message's bytes. Up to COPY_INLINE_MAX bytes: a few moves of 16, 8, 4 or 1
 * bytes whose ranges overlap to cover any length (no call, no loop: the common small
 * message pays a handful of instructions); beyond, memcpy. An empty message may come
 * with a NULL pointer, which memcpy must not be given even for 0 bytes. */
static inline void copy_msg(void *dst, const void *src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    if (n > COPY_INLINE_MAX) {
        memcpy(d, s, n);
    } else if (n >= 16) {
        unsigned char a[16], b[16], c[16], e[16];
        memcpy(a, s, 16);
        memcpy(b, s + n - 16, 16);
        if (n > 32) {
            memcpy(c, s + 16, 16);
            memcpy(e, s + n - 32, 16);
            memcpy(d + 16, c, 16);
            memcpy(d + n - 32, e, 16);
        }
        memcpy(d, a, 16);
        memcpy(d + n - 16, b, 16);
    } else if (n >= 8) {
        uint64_t a, b;
        memcpy(&a, s, 8);
        memcpy(&b, s + n - 8, 8);
        memcpy(d, &a, 8);
        memcpy(d + n - 8, &b, 8);
    } else if (n >= 4) {
        uint32_t a, b;
        memcpy(&a, s, 4);
        memcpy(&b, s + n - 4, 4);
        memcpy(d, &a, 4);
        memcpy(d + n - 4, &b, 4);
    } else if (n) {
        unsigned char a = s[0], b = s[n / 2], c = s[n - 1];
        d[0] = a;
        d[n / 2] = b;
        d[n - 1] = c;
    }
}

/* Wakes the sleepers of one side after a change that may make them ready (ring.c).
 * Returns 0, so that a put or get can end with it as a tail call. */
int shoal__ring_wake_side(shoal__ring *r, bool producers);

/* ---- the wake path (see "The wake path" in ring.c) ---- */

/* Bumped in a fork child: views re-read what they cache about their process. */
extern unsigned shoal__ring_fork_gen;

/* Whether the processes sharing the ring must fence on their own. */
static inline bool ring_fenced(const shoal__ring *r)
{
    return atomic_load_explicit(&r->h->fenced, memory_order_relaxed) != 0;
}

/* Orders this thread's store to the ring before its next load of a word another
 * process writes (a sleeper count, `closed`): a compiler barrier only when every
 * process sharing the ring takes part in asymmetric barriers, which the other side
 * then issues; a full fence when one of them cannot. */
static inline void store_load_order(bool fenced)
{
    if (SHOAL_UNLIKELY(fenced))
        atomic_thread_fence(memory_order_seq_cst);
    else
        atomic_signal_fence(memory_order_seq_cst);
}

/* The other side of store_load_order: a barrier on behalf of every process sharing
 * the ring (membarrier), or a full fence in a process that cannot issue one. */
void shoal__ring_barrier(void);

/* Whether consumers / producers sleep, looked at after a release store that may make
 * them ready (an SPSC index, an MPMC commit or free). */
static inline bool sleepers_after_store(shoal__ring *r, bool fenced, bool producers)
{
    store_load_order(fenced);
    return SHOAL_UNLIKELY(atomic_load_explicit(side_word(r, producers),
                                               memory_order_relaxed) >= SIDE_SLEEPER);
}

/* Wakes consumers / producers after such a release store; returns 0. */
static inline int wake_after_store(shoal__ring *r, bool fenced, bool producers)
{
    return sleepers_after_store(r, fenced, producers)
               ? shoal__ring_wake_side(r, producers)
               : 0;
}

/* Wakes consumers after a sequentially consistent read-modify-write of the ring's
 * state (an MPMC recovery step), which orders it before the load of the count. */
static inline void wake_consumers(shoal__ring *r)
{
    if (SHOAL_UNLIKELY(atomic_load(side_word(r, false)) >= SIDE_SLEEPER))
        shoal__ring_wake_side(r, false);
}

/* A loan succeeded on the slot starting at slot. */
static inline int loan_done(const shoal__ring *r, const struct loan_args *a,
                            unsigned char *slot)
{
    *a->slot = slot + r->g.data_off;
    *a->cap = r->g.max_msg;
    shoal__test_point("queue.reserved");
    return 0;
}

/* Errors both algorithms report (ring.c). */
int shoal__ring_err_closed(const shoal__ring *r);
int shoal__ring_err_eof(const shoal__ring *r);
int shoal__ring_err_bad_len(const shoal__ring *r, size_t len);
int shoal__ring_err_small(const shoal__ring *r, size_t len, size_t cap);

#define err_closed  shoal__ring_err_closed
#define err_eof     shoal__ring_err_eof
#define err_bad_len shoal__ring_err_bad_len
#define err_small   shoal__ring_err_small

#endif
