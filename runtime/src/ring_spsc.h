/*
 * ring_spsc.h — the hot half of the single-producer single-consumer ring (ring_spsc.c
 * has the design and the rest): the index helpers and the try forms of one put and
 * one get, inline so that ring.c calls them directly on an SPSC ring, without the
 * table of operations.
 */
#ifndef SHOAL_RING_SPSC_H
#define SHOAL_RING_SPSC_H

#include "ring_internal.h"

/*
 * sp_put1 and sp_get1 come in two instances. The try forms (fast = false) decide
 * every case and return 0, SHOAL_EAGAIN or an error with its detail. The first
 * attempt of shoal__ring_put and shoal__ring_get (fast = true) takes only the common
 * case — a message of at most COPY_INLINE_MAX bytes, room or a message there. It
 * returns 0; or, its message put or got, SP_WAKE when sleepers of the other side must
 * be woken; or, for a put that found the ring shut down after marking itself in
 * flight, SP_REFUSED: the caller ends it (sp_finish); or, having changed nothing,
 * SP_WAIT when there was no room (put) or no message (get) — the caller may answer a
 * try form with SHOAL_EAGAIN if the ring is open, without the general path — and
 * SP_LATER for anything else, for the caller to take the general path. That instance
 * makes no call, so the caller (whose every call is then a tail call) stays a leaf:
 * no registers saved, no frame.
 */
#define SP_LATER 1
/* The two instances differ by a constant argument: each must be inlined to be one. */
#define SP_INLINE  static inline __attribute__((always_inline))
#define SP_WAKE    2
#define SP_REFUSED 3
#define SP_WAIT    4

/* The ring looked empty at head hd: SHOAL_EAGAIN, SHOAL_EEOF (shut down, no put in
 * flight: see ring_spsc.c), or 1 when a message has arrived after all (tail_cache). */
int shoal__spsc_empty(shoal__ring *r, uint64_t hd);

/* ---- markers and indexes ----------------------------------------------------------- */

/* Whether the ring's slots are dense and carry no marker, their messages published by
 * the tail alone (a typed ring whose marked slot would not fit in a cache line, its
 * element fitting in one alone or filling whole ones: see ring_spsc.c). Such a slot
 * is the element itself, at offset 0; a marked slot's message never is. */
static inline bool sp_by_tail(const shoal__ring *r)
{
    return r->g.data_off == 0;
}

/* The ready marker of a marked slot: its first 32-bit word (typed rings), or the word
 * after the length (variable-size rings). */
static inline _Atomic uint32_t *sp_mark(const shoal__ring *r, unsigned char *slot)
{
    return (_Atomic uint32_t *)(void *)(slot + (is_var(r) ? 4 : 0));
}

/* Whether the message at position pos of a marked ring is published: its slot's
 * marker is pos + 1. (A ring without markers must not ask: its slot holds data.) */
static inline bool sp_marked(const shoal__ring *r, uint64_t pos)
{
    return atomic_load_explicit(sp_mark(r, slot_at(r, pos)), memory_order_acquire) ==
           (uint32_t)(pos + 1);
}

/* The producer's next position as the ring shows it: the tail, moved past any message
 * whose marker is published but whose tail store never came (its producer was killed
 * between the two: see ring_spsc.c; on a ring without markers, the tail). The
 * producers' own stores, so relaxed loads. */
static inline uint64_t sp_marked_tail(const shoal__ring *r)
{
    uint64_t t = atomic_load_explicit(&r->h->tail, memory_order_relaxed);
    if (sp_by_tail(r))
        return t;
    while (
        SHOAL_UNLIKELY(atomic_load_explicit(sp_mark(r, slot_at(r, t)),
                                            memory_order_relaxed) == (uint32_t)(t + 1)))
        t++;
    return t;
}

/* Free slots at tail t, refreshing the cached head only when it shows fewer than
 * `want`. The cache may be stale (older), never ahead. */
static inline uint64_t sp_room(shoal__ring *r, uint64_t t, uint64_t want)
{
    uint64_t cap = r->g.capacity;
    if (t - r->head_cache > cap - want) {
        r->head_cache = atomic_load_explicit(&r->h->head, memory_order_acquire);
        if (t - r->head_cache >= cap)
            return 0;
    }
    return cap - (t - r->head_cache);
}

/* sp_enter found the ring shut down: ends the put it began (nothing published; a
 * consumer may wait for this put) and returns SHOAL_ECLOSED. */
int shoal__spsc_refused(shoal__ring *r, bool fenced);

/* Whether put_id is this process's (it is not in a fork child before its first put). */
static inline bool sp_put_id_ok(const shoal__ring *r)
{
    return SHOAL_LIKELY(r->put_gen == shoal__ring_fork_gen);
}

/* A new tag for put_view: this process's owner id me and a number no other view of
 * the process has. */
uint64_t shoal__spsc_new_tag(uint32_t me);

/* The tail, for a put: the view's own copy when the last put begun was its own
 * (put_view holds its tag), else sp_marked_tail, which the view then remembers. The
 * shared tail and the slot at it are lines the consumer reads, and a read on some
 * processors takes a line away from its writer: reading them at each put would cost
 * the producer a transfer before it can even address the slot (see ring_spsc.c). */
static inline uint64_t sp_tail(shoal__ring *r)
{
    if (sp_put_id_ok(r) && r->put_tag &&
        atomic_load_explicit(&r->h->put_view, memory_order_relaxed) == r->put_tag)
        return r->tail_own;
    return r->tail_own = sp_marked_tail(r);
}

/* Marks a put in flight (and names its view in put_view) and checks that the ring is
 * still open (see the top): 0, or SHOAL_ECLOSED with nothing marked. fast: put_id is
 * known to be this process's. The tail t the put uses must have come from sp_tail. */
static inline int sp_enter(shoal__ring *r, bool fenced, bool fast)
{
    if (!fast && SHOAL_UNLIKELY(!sp_put_id_ok(r))) {
        uint32_t me = shoal__seg_owner(r->seg);
        r->put_id = me ? me : UINT32_MAX; /* UINT32_MAX: no owner id (full table) */
        r->put_tag = me ? shoal__spsc_new_tag(me) : 0; /* 0: no tag, no own copy */
        r->put_gen = shoal__ring_fork_gen;
    }
    atomic_store_explicit(&r->h->put_view, r->put_tag, memory_order_relaxed);
    atomic_store_explicit(&r->h->put_busy, r->put_id, memory_order_relaxed);
    store_load_order(fenced);
    if (SHOAL_LIKELY(atomic_load_explicit(&r->h->closed, memory_order_relaxed) == 0))
        return 0;
    return fast ? SP_REFUSED : shoal__spsc_refused(r, fenced);
}

/* Publishes the messages at t .. t + n - 1 (their markers, if the slots carry any,
 * then the tail) and ends the put sp_enter began: 0 (fast: SP_WAKE when consumers
 * sleep, for the caller to wake them). */
SP_INLINE int sp_publish(shoal__ring *r, bool fenced, uint64_t t, uint64_t n, bool fast)
{
    if (!sp_by_tail(r))
        for (uint64_t i = t; i < t + n; i++)
            atomic_store_explicit(sp_mark(r, slot_at(r, i)), (uint32_t)(i + 1),
                                  memory_order_release);
    shoal__test_point("queue.marked");
    atomic_store_explicit(&r->h->tail, t + n, memory_order_release);
    r->tail_own = t + n;
    shoal__test_point("queue.published");
    atomic_store_explicit(&r->h->put_busy, 0, memory_order_release);
    if (fast)
        return sleepers_after_store(r, fenced, false) ? SP_WAKE : 0;
    return wake_after_store(r, fenced, false);
}

/* Refreshes the cached tail from the tail and the marker at head hd (the tail lags
 * the markers while a put is between the two, or for good after its producer died
 * there; without markers, the tail alone): the messages at hd, possibly 0. */
static inline uint64_t sp_refresh(shoal__ring *r, uint64_t hd)
{
    uint64_t t = atomic_load_explicit(&r->h->tail, memory_order_acquire);
    r->tail_cache = t > hd || sp_by_tail(r) ? t : hd + sp_marked(r, hd);
    return r->tail_cache - hd;
}

/* Messages at head hd as the cached tail shows them, refreshing it only when it shows
 * fewer than `want`: possibly 0. On a marked ring one message is looked for by its
 * marker alone, so a consumer polling an empty ring reads the head slot's line and
 * nothing else: the one line the producer writes with the message brings it. */
static inline uint64_t sp_ready(shoal__ring *r, uint64_t hd, uint64_t want)
{
    if (r->tail_cache < hd + want) {
        if (want == 1 && !sp_by_tail(r))
            return sp_marked(r, hd) ? (r->tail_cache = hd + 1, 1) : 0;
        return sp_refresh(r, hd);
    }
    return r->tail_cache - hd;
}

/* Messages available at head hd (sp_ready), or 0 with *why: SHOAL_EAGAIN or
 * SHOAL_EEOF. */
static inline uint64_t sp_avail(shoal__ring *r, uint64_t hd, uint64_t want, int *why)
{
    if (sp_ready(r, hd, want) == 0) {
        *why = SHOAL_EAGAIN; /* open: nothing more to know (shoal__spsc_empty) */
        if (atomic_load_explicit(&r->h->closed, memory_order_acquire) == 0 ||
            (*why = shoal__spsc_empty(r, hd)) != 1)
            return 0;
    }
    return r->tail_cache - hd;
}

/* Consumes n messages at head hd: 0 (fast: SP_WAKE when producers sleep, for the
 * caller to wake them). */
static inline int sp_consume(shoal__ring *r, uint64_t hd, uint64_t n, bool fast)
{
    r->peek = NULL; /* whatever was peeked is consumed now */
    atomic_store_explicit(&r->h->head, hd + n, memory_order_release);
    if (fast)
        return sleepers_after_store(r, ring_fenced(r), true) ? SP_WAKE : 0;
    return wake_after_store(r, ring_fenced(r), true);
}

/* A message's length as its slot records it. */
static inline size_t sp_len(const shoal__ring *r, const unsigned char *slot)
{
    uint32_t len;
    if (!is_var(r))
        return r->g.elem_size;
    memcpy(&len, slot, sizeof(len));
    return len;
}

static inline void sp_set_len(const shoal__ring *r, unsigned char *slot, size_t len)
{
    if (is_var(r)) {
        uint32_t l = (uint32_t)len;
        memcpy(slot, &l, sizeof(l));
    }
}

/* A full ring: SHOAL_ECLOSED when it is shut down (the exact check is sp_enter's),
 * else SHOAL_EAGAIN. */
static inline int sp_full(const shoal__ring *r)
{
    return atomic_load_explicit(&r->h->closed, memory_order_relaxed) ? err_closed(r)
                                                                     : SHOAL_EAGAIN;
}

/* ---- the biased right (ring_bias.c) ----------------------------------------------- */

#define BIAS_PUT 0
#define BIAS_GET 1

/* Ends a biased call's use of a side that is being revoked: clears the busy word
 * (when `clear`: the caller set it for nothing) and wakes the revoker. */
void shoal__bias_leave(shoal__ring *r, int side, bool clear);

/* The busy word of this process on side `side`. */
static inline _Atomic uint32_t *bias_busy(const shoal__ring *r, int side)
{
    return &r->busy[r->bias_slot].side[side];
}

/* Enters side `side` of a biased ring on the fast path: true with the side marked
 * busy by this process, whose right it is; false, having changed nothing, when the
 * caller must take the slow path (shoal__bias_run): the right is another process's,
 * being revoked, or another thread of this process is inside a call on the side. The
 * exchange orders the busy word before the load of the bias word (a revoker changes
 * the bias word, then reads the busy word). */
static inline bool bias_enter(shoal__ring *r, int side)
{
    if (SHOAL_UNLIKELY(r->bias_gen != shoal__ring_fork_gen))
        return false;
    uint32_t old = atomic_exchange(bias_busy(r, side), r->bias_me);
    if (SHOAL_UNLIKELY(old == r->bias_me))
        return false; /* another thread's call: the word stays its own */
    if (SHOAL_LIKELY(atomic_load(&r->h->bias[side]) == r->bias_me))
        return true;
    shoal__bias_leave(r, side, true);
    return false;
}

/* Leaves a side bias_enter (or shoal__bias_run) entered: clears the busy word, then
 * wakes a revoker that changed the bias word meanwhile (the revoker issues the
 * barrier after its change: either it sees the cleared word or this load sees the
 * change, as on the wake path). */
static inline void bias_exit(shoal__ring *r, int side)
{
    atomic_store_explicit(bias_busy(r, side), 0, memory_order_release);
    store_load_order(ring_fenced(r));
    if (SHOAL_UNLIKELY(atomic_load_explicit(&r->h->bias[side], memory_order_relaxed) !=
                       r->bias_me))
        shoal__bias_leave(r, side, false);
}

/* A try form on side `side` of a biased ring: takes the right (waiting a little for a
 * revocation under way, or revoking it), runs fn with the side marked busy, leaves.
 * fn's result, SHOAL_EAGAIN when the right could not be had yet. */
int shoal__bias_run(shoal__ring *r, int side, shoal__ring_try_fn fn, void *arg);

/* ---- one put, one get ------------------------------------------------------------- */

/* One message: 0, SHOAL_EAGAIN (full), SHOAL_ECLOSED. */
SP_INLINE int sp_put1(shoal__ring *r, const void *msg, size_t len, bool fast)
{
    bool fenced = ring_fenced(r);
    if (fast && (len > COPY_INLINE_MAX || !sp_put_id_ok(r)))
        return SP_LATER;
    uint64_t t = sp_tail(r);
    if (sp_room(r, t, 1) == 0)
        return fast ? SP_WAIT : sp_full(r);
    unsigned char *slot = slot_at(r, t);
    int rc = sp_enter(r, fenced, fast);
    if (rc)
        return rc;
    sp_set_len(r, slot, len);
    copy_msg(slot + r->g.data_off, msg, len);
    shoal__test_point("queue.reserved");
    return sp_publish(r, fenced, t, 1, fast);
}

/* The message at the head, the one read path of get and peek: 0 (*hd, *msg — its
 * bytes —, *len), SHOAL_EAGAIN, SHOAL_EEOF, or SHOAL_ECORRUPT when its recorded length
 * exceeds max_msg. fast: SP_WAIT for an empty ring, whether or not it is the end, and
 * SP_LATER for a message over COPY_INLINE_MAX bytes or a damaged one. */
SP_INLINE int sp_front(shoal__ring *r, uint64_t *hd, unsigned char **msg, size_t *len,
                       bool fast)
{
    int why;
    *hd = atomic_load_explicit(&r->h->head, memory_order_relaxed);
    if (fast ? sp_ready(r, *hd, 1) == 0 : sp_avail(r, *hd, 1, &why) == 0)
        return fast ? SP_WAIT : why;
    unsigned char *slot = slot_at(r, *hd);
    *len = sp_len(r, slot);
    *msg = slot + r->g.data_off;
    if (fast && (*len > COPY_INLINE_MAX || *len > r->g.max_msg))
        return SP_LATER;
    return SHOAL_UNLIKELY(*len > r->g.max_msg) ? err_bad_len(r, *len) : 0;
}

/* One message into buf (cap bytes), its length in *len: 0, SHOAL_EAGAIN, SHOAL_EEOF,
 * SHOAL_EMSGSIZE (buf too small: *len says how much is needed), SHOAL_ECORRUPT. */
SP_INLINE int sp_get1(shoal__ring *r, void *buf, size_t cap, size_t *len, bool fast)
{
    uint64_t hd;
    unsigned char *msg = NULL;
    size_t n = 0;
    int rc = sp_front(r, &hd, &msg, &n, fast);
    if (rc)
        return rc;
    if (n > cap) {
        if (fast)
            return SP_LATER;
        *len = n;
        return err_small(r, n, cap);
    }
    *len = n;
    copy_msg(buf, msg, n);
    shoal__test_point("queue.claimed");
    return sp_consume(r, hd, 1, fast);
}

/* Ends a fast attempt that returned rc (not SP_LATER; SP_WAIT only when that is the
 * answer: SHOAL_EAGAIN) for the producer or consumer: its result. */
static inline int sp_finish(shoal__ring *r, int rc, bool producer)
{
    if (rc == SP_WAIT)
        return SHOAL_EAGAIN;
    if (rc == SP_WAKE)
        return shoal__ring_wake_side(r, !producer);
    if (rc == SP_REFUSED)
        return shoal__spsc_refused(r, ring_fenced(r));
    return rc;
}

static inline int sp_try_put(shoal__ring *r, void *arg)
{
    const struct put_args *a = arg;
    return sp_put1(r, a->msg, a->len, false);
}

static inline int sp_try_get(shoal__ring *r, void *arg)
{
    const struct get_args *a = arg;
    return sp_get1(r, a->buf, a->cap, a->len, false);
}

#endif
