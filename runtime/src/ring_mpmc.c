/*
 * ring_mpmc.c — the multi-producer multi-consumer ring (its table of operations is
 * shoal__ring_mpmc_ops; ring.c holds geometry, attaching, waiting and dispatch).
 *
 * Slots are at least a cache line each (consumers of neighbouring slots share no
 * line) and carry a 64-bit state word:
 *   bits  0..31  sequence (the position the slot is at, modulo 2^32)
 *   bits 32..60  owner: the process's owner id in the segment (owner.c)
 *   bit  61      FULL: committed (tells a message from the next lap's free slot)
 *   bit  62      SKIP: the slot holds no message (a dead producer's reservation)
 *   bit  63      CLAIM: a consumer owns the message
 * For position p the slot goes FREE (seq p) -> RESERVED (seq p, owner) -> COMMITTED
 * (seq p+1, FULL) -> CLAIMED (seq p+1, FULL, owner, CLAIM) -> FREE (seq p+capacity).
 * Every step is one compare-and-swap on that word, so the owner of a reservation or
 * claim is recorded atomically with it: a consumer that finds a reservation or a claim
 * whose owner is gone (owner.c: from a lock the kernel drops, not from a pid) recycles
 * the reservation as SKIP or takes the claim over and delivers the message itself.
 * The release of a claim is the single step that consumes a message, so a consumer
 * killed before it — even after copying the message out — loses nothing, and one
 * killed after it has consumed it: messages are delivered exactly once. Reserving and
 * claiming compete with other processes, so they are compare-and-swaps; committing a
 * reservation and freeing a claim change a word no other process touches while its
 * owner lives (recovery takes over only the dead's), so they are release stores,
 * which wake sleepers as an SPSC put does ("The wake path" in ring.c). (With
 * peek/release a consumer that dies before releasing has its message delivered
 * again.) The head and tail indexes only move after the slot's word did, and anyone
 * may move them, so a process killed between the two steps stalls no one.
 *
 * Consumers look for dead owners at most every SCAN_NS (and always before declaring
 * the end of the stream): a scan of every slot's word, with a small memo of the
 * owners it has already judged. An attempt that finds nothing reads the clock to see
 * whether a scan is due only every SCAN_POLLS times (scan_due).
 */
#include "ring_internal.h"

/* Header of an MPMC slot; the message follows at data_off. */
struct mslot {
    _Atomic uint64_t word;
    _Atomic uint32_t len;
    uint32_t pad;
};

#define W_CLAIM      (1ull << 63)
#define W_SKIP       (1ull << 62)
#define W_FULL       (1ull << 61)
#define W_OWNER_MASK 0x1fffffffu

static inline uint32_t w_seq(uint64_t w)
{
    return (uint32_t)w;
}

static inline uint32_t w_owner(uint64_t w)
{
    return (uint32_t)(w >> 32) & W_OWNER_MASK;
}

static inline uint64_t w_make(uint64_t seq, uint32_t owner, uint64_t flags)
{
    return (uint32_t)seq | (uint64_t)owner << 32 | flags;
}

/* ---- owners ------------------------------------------------------------------------ */

/* This process's owner id in the ring's segment (owner.c); 0 when it has none. */
static inline uint32_t ring_me(shoal__ring *r)
{
    return shoal__seg_owner(r->seg);
}

static int err_no_owner(const shoal__ring *r)
{
    return shoal__err(SHOAL_EBUSY,
                      "%s \"%s\": its table of %d user processes is full; this process "
                      "cannot take messages in it",
                      r->what, r->name, SHOAL_MAX_USERS);
}

/* ---- layout ------------------------------------------------------------------------ */

static void mp_geom(shoal__ring_geom *g, uint32_t align)
{
    uint32_t a = align > 8 ? align : 8;
    g->data_off = (uint32_t)round_up(sizeof(struct mslot), a);
    g->stride = (uint32_t)round_up((uint64_t)g->data_off + g->max_msg, 64);
}

static void mp_format(unsigned char *slots, const shoal__ring_geom *g)
{
    for (uint32_t i = 0; i < g->capacity; i++) {
        struct mslot *s = (struct mslot *)(slots + (size_t)i * g->stride);
        atomic_init(&s->word, w_make(i, 0, 0));
    }
}

/* ---- MPMC -------------------------------------------------------------------------- */

/*
 * Reserves the tail slot for `me`. Returns 0, SHOAL_EAGAIN (full) or SHOAL_ECLOSED.
 *
 * The first attempt guesses that the tail slot is free and makes its compare-and-swap
 * at once, without reading the word first: the slot's line (which a polling consumer
 * holds) then moves once, for the write, instead of once to be read and again to be
 * written. A wrong guess only fails the compare-and-swap. After finding the ring full,
 * the view reads first again (put_full), so that a producer waiting for room does not
 * take the line from the consumer at each look.
 */
static int mp_reserve(shoal__ring *r, uint32_t me, struct mslot **out)
{
    struct shoal__ringhdr *h = r->h;
    uint64_t pos = atomic_load_explicit(&h->tail, memory_order_relaxed);
    bool guess = !atomic_load_explicit(&r->put_full, memory_order_relaxed);
    for (uint32_t steps = 0;; guess = false) {
        struct mslot *s = (struct mslot *)slot_at(r, pos);
        uint64_t w = guess ? w_make(pos, 0, 0)
                           : atomic_load_explicit(&s->word, memory_order_acquire);
        int32_t d = (int32_t)(w_seq(w) - (uint32_t)pos);
        if (d == 0 && w_owner(w) == 0 && !(w & W_FULL)) {
            if (atomic_compare_exchange_strong(&s->word, &w, w_make(pos, me, 0))) {
                uint64_t t = pos;
                atomic_compare_exchange_strong(&h->tail, &t, pos + 1);
                if (SHOAL_UNLIKELY(!guess && atomic_load_explicit(&r->put_full,
                                                                  memory_order_relaxed)))
                    atomic_store_explicit(&r->put_full, 0, memory_order_relaxed);
                *out = s;
                return 0;
            }
        } else if (d < 0 || (d == 0 && (w & W_FULL))) { /* the last lap's: full */
            atomic_store_explicit(&r->put_full, 1, memory_order_relaxed);
            return atomic_load(&h->closed) ? err_closed(r) : SHOAL_EAGAIN;
        } else {
            /* Reserved by another producer, or we are behind: move the tail on. More
             * than a lap of that means sequence words no ring could have made. */
            if (SHOAL_UNLIKELY(++steps > r->g.capacity))
                return SHOAL_EAGAIN;
            uint64_t t = pos;
            atomic_compare_exchange_strong(&h->tail, &t, pos + 1);
        }
        pos = atomic_load_explicit(&h->tail, memory_order_relaxed);
    }
}

/* Turns our reservation into an empty SKIP slot (used when shutdown raced a put). */
static void mp_abandon(shoal__ring *r, struct mslot *s, uint32_t me)
{
    uint64_t w = atomic_load(&s->word);
    if (w_owner(w) == me && !(w & W_CLAIM) &&
        atomic_compare_exchange_strong(&s->word, &w,
                                       w_make(w_seq(w) + 1u, 0, W_FULL | W_SKIP))) {
        atomic_fetch_add_explicit(&r->h->skipped, 1, memory_order_relaxed);
        wake_consumers(r);
    }
}

/* After a reservation: a shutdown that happened before it means no one may ever read
 * the slot (consumers may already have seen the end of the stream). */
static int mp_after_reserve(shoal__ring *r, struct mslot *s, uint32_t me)
{
    if (SHOAL_UNLIKELY(atomic_load(&r->h->closed))) {
        mp_abandon(r, s, me);
        return err_closed(r);
    }
    return 0;
}

/* Commits our reservation: a release store, since no one else changes a live
 * process's reservation (see the top). */
static int mp_commit(shoal__ring *r, struct mslot *s, uint32_t me, size_t len)
{
    uint64_t w = atomic_load_explicit(&s->word, memory_order_relaxed);
    if (w_owner(w) != me || (w & (W_CLAIM | W_SKIP | W_FULL)))
        return shoal__err(SHOAL_EINVAL, "%s \"%s\": slot is not loaned by this process",
                          r->what, r->name);
    atomic_store_explicit(&s->len, (uint32_t)len, memory_order_relaxed);
    atomic_store_explicit(&s->word, w_make(w_seq(w) + 1u, 0, W_FULL),
                          memory_order_release);
    return wake_after_store(r, ring_fenced(r), false);
}

/* Frees a slot we have claimed (w: our claim): a release store, as mp_commit. */
static void mc_free(shoal__ring *r, struct mslot *s, uint64_t w)
{
    uint64_t next = w_make(w_seq(w) - 1u + r->g.capacity, 0, 0);
    atomic_store_explicit(&s->word, next, memory_order_release);
    wake_after_store(r, ring_fenced(r), true);
}

/* Reads a committed slot's length consistently with its word w. */
static bool mc_len(struct mslot *s, uint64_t w, size_t *len)
{
    *len = atomic_load_explicit(&s->len, memory_order_relaxed);
    atomic_thread_fence(memory_order_acquire);
    return atomic_load_explicit(&s->word, memory_order_relaxed) == w;
}

/*
 * Claims the message at the head. Returns 0 (*out, *len), SHOAL_EAGAIN (nothing
 * committed at the head; *pending = owner of a reservation there, or 0 if empty),
 * SHOAL_EMSGSIZE (*len: the message is larger than cap; it stays) or SHOAL_ECORRUPT
 * (*len: the slot records more than max_msg bytes; it stays).
 */
static int mc_claim(shoal__ring *r, uint32_t me, size_t cap, struct mslot **out,
                    size_t *len, uint32_t *pending)
{
    struct shoal__ringhdr *h = r->h;
    uint64_t pos = atomic_load_explicit(&h->head, memory_order_relaxed);
    for (uint32_t steps = 0;;) {
        struct mslot *s = (struct mslot *)slot_at(r, pos);
        uint64_t w = atomic_load_explicit(&s->word, memory_order_acquire);
        int32_t d = (int32_t)(w_seq(w) - (uint32_t)(pos + 1));
        if (d == 0 && (w & W_FULL) && !(w & W_CLAIM)) {
            size_t l = atomic_load_explicit(&s->len, memory_order_relaxed);
            if (!(w & W_SKIP) && (l > cap || SHOAL_UNLIKELY(l > r->g.max_msg))) {
                if (mc_len(s, w, &l)) {
                    *len = l;
                    return l > r->g.max_msg ? SHOAL_ECORRUPT : SHOAL_EMSGSIZE;
                }
            } else if (atomic_compare_exchange_strong(&s->word, &w,
                                                      w | W_CLAIM | (uint64_t)me << 32)) {
                uint64_t hp = pos;
                atomic_compare_exchange_strong(&h->head, &hp, pos + 1);
                if (!(w & W_SKIP)) {
                    *out = s;
                    *len = l;
                    return 0;
                }
                mc_free(r, s, w | W_CLAIM | (uint64_t)me << 32);
            }
        } else if (d < 0) {
            *pending = (d == -1 && !(w & W_CLAIM)) ? w_owner(w) : 0;
            return SHOAL_EAGAIN;
        } else {
            /* Claimed by another consumer, or we are behind: move the head on (for at
             * most a lap: more means corrupt sequence words). */
            if (SHOAL_UNLIKELY(++steps > r->g.capacity)) {
                *pending = 0;
                return SHOAL_EAGAIN;
            }
            uint64_t hp = pos;
            atomic_compare_exchange_strong(&h->head, &hp, pos + 1);
        }
        pos = atomic_load_explicit(&h->head, memory_order_relaxed);
    }
}

/* A small memo of owners found dead or alive during one scan. */
struct verdicts {
    uint32_t owner[8];
    bool alive[8];
    int n;
};

static bool owner_alive_memo(const shoal__ring *r, struct verdicts *v, uint32_t owner)
{
    for (int i = 0; i < v->n; i++)
        if (v->owner[i] == owner)
            return v->alive[i];
    bool alive = shoal__owner_alive(r->seg, owner);
    if (v->n < 8) {
        v->owner[v->n] = owner;
        v->alive[v->n++] = alive;
    }
    return alive;
}

/*
 * Recovery: recycles reservations of dead producers as SKIP slots and, when `take`,
 * takes over one claim of a dead consumer (returned through out and len, as if just
 * claimed). Returns 0 when it took a message, SHOAL_EMSGSIZE when the message it found is
 * larger than cap (or, without `take`, when there is one to take), SHOAL_EAGAIN
 * otherwise; *found says whether it changed anything.
 */
static int mc_scan(shoal__ring *r, uint32_t me, bool take, size_t cap, struct mslot **out,
                   size_t *len, bool *found)
{
    struct verdicts v = {.n = 0};
    for (uint32_t i = 0; i < r->g.capacity; i++) {
        struct mslot *s = (struct mslot *)(r->slots + (size_t)i * r->g.stride);
        uint64_t w = atomic_load_explicit(&s->word, memory_order_acquire);
        uint32_t owner = w_owner(w);
        if (owner == 0 || owner == me || owner_alive_memo(r, &v, owner))
            continue;
        if (!(w & W_CLAIM)) { /* a dead producer's reservation */
            if (atomic_compare_exchange_strong(
                    &s->word, &w, w_make(w_seq(w) + 1u, 0, W_FULL | W_SKIP))) {
                atomic_fetch_add(&r->h->skipped, 1);
                /* It may have died before moving the tail past its slot. */
                uint64_t t = atomic_load(&r->h->tail);
                if ((uint32_t)t == w_seq(w))
                    atomic_compare_exchange_strong(&r->h->tail, &t, t + 1);
                *found = true;
                wake_consumers(r);
            }
            continue;
        }
        if (w & W_SKIP) { /* a dead consumer's claim of an empty slot */
            uint64_t mine = w_make(w_seq(w), me, W_FULL | W_CLAIM | W_SKIP);
            if (atomic_compare_exchange_strong(&s->word, &w, mine)) {
                mc_free(r, s, mine);
                *found = true;
            }
            continue;
        }
        if (!take)
            return SHOAL_EMSGSIZE; /* report: a dead claim waits to be taken over */
        size_t l;
        if (!mc_len(s, w, &l))
            continue;
        if (l > cap || l > r->g.max_msg) {
            *len = l;
            return l > r->g.max_msg ? SHOAL_ECORRUPT : SHOAL_EMSGSIZE;
        }
        uint64_t mine = w_make(w_seq(w), me, W_FULL | W_CLAIM);
        if (atomic_compare_exchange_strong(&s->word, &w, mine)) {
            atomic_fetch_add(&r->h->redelivered, 1);
            *found = true;
            *out = s;
            *len = l;
            return 0;
        }
    }
    return SHOAL_EAGAIN;
}

/*
 * Whether an attempt that found nothing at the head (ring shut down or not) should now
 * look for what dead processes left: always once the ring is shut down (before the
 * end of the stream is declared), else at most every SCAN_NS. The clock is read only
 * every SCAN_POLLS such attempts, so that a consumer polling an empty ring does not
 * read it at every poll (a reading costs more than the poll itself).
 */
#define SCAN_POLLS 16

static bool scan_due(shoal__ring *r, bool closed)
{
    if (!closed) {
        uint32_t n = atomic_load_explicit(&r->scan_polls, memory_order_relaxed);
        atomic_store_explicit(&r->scan_polls, n + 1, memory_order_relaxed);
        if (n % SCAN_POLLS != 0)
            return false;
    }
    int64_t now = shoal__now_ns();
    if (!closed && now < atomic_load_explicit(&r->next_scan_ns, memory_order_relaxed))
        return false;
    atomic_store_explicit(&r->next_scan_ns, now + SCAN_NS, memory_order_relaxed);
    return true;
}

/* The next attempt that finds nothing looks for what dead processes left at once. */
static void scan_soon(shoal__ring *r)
{
    atomic_store_explicit(&r->next_scan_ns, 0, memory_order_relaxed);
    atomic_store_explicit(&r->scan_polls, 0, memory_order_relaxed);
}

/*
 * Claims a message: the head's, or else (scan_due) one recovered from a dead process.
 * Returns 0, SHOAL_EAGAIN, SHOAL_EEOF or SHOAL_EMSGSIZE.
 */
static int mc_take(shoal__ring *r, size_t cap, struct mslot **out, size_t *len)
{
    uint32_t me = ring_me(r), pending = 0;
    if (SHOAL_UNLIKELY(!me))
        return err_no_owner(r);
    int rc = mc_claim(r, me, cap, out, len, &pending);
    if (rc != SHOAL_EAGAIN)
        return rc;
    bool closed = atomic_load(&r->h->closed);
    if (!scan_due(r, closed))
        return SHOAL_EAGAIN;
    bool found = false;
    rc = mc_scan(r, me, true, cap, out, len, &found);
    if (rc != SHOAL_EAGAIN)
        return rc;
    rc = mc_claim(r, me, cap, out, len, &pending);
    if (rc != SHOAL_EAGAIN || !closed || pending)
        return rc;
    return err_eof(r);
}

static int mc_release(shoal__ring *r, const void *msg)
{
    uint32_t me = ring_me(r);
    size_t off = (size_t)((const unsigned char *)msg - r->slots);
    if ((const unsigned char *)msg < r->slots || off % r->g.stride != r->g.data_off ||
        off / r->g.stride >= r->g.capacity)
        return shoal__err(SHOAL_EINVAL, "%s \"%s\": not a message of this %s", r->what,
                          r->name, r->what);
    struct mslot *s = (struct mslot *)(r->slots + off - r->g.data_off);
    uint64_t w = atomic_load(&s->word);
    if (!(w & W_CLAIM) || w_owner(w) != me)
        return shoal__err(SHOAL_EINVAL, "%s \"%s\": message is not held by this process",
                          r->what, r->name);
    mc_free(r, s, w);
    return 0;
}

/* ---- the try forms ----------------------------------------------------------------- */

/* Reserves the tail slot for this process: 0 (*s), SHOAL_EAGAIN or an error. */
static int mp_reserve_mine(shoal__ring *r, uint32_t *me, struct mslot **s)
{
    *me = ring_me(r);
    if (SHOAL_UNLIKELY(!*me))
        return err_no_owner(r);
    if (SHOAL_UNLIKELY(atomic_load_explicit(&r->h->closed, memory_order_relaxed)))
        return err_closed(r);
    int rc = mp_reserve(r, *me, s);
    return rc ? rc : mp_after_reserve(r, *s, *me);
}

static int mp_try_put(shoal__ring *r, void *arg)
{
    const struct put_args *a = arg;
    uint32_t me;
    struct mslot *s;
    int rc = mp_reserve_mine(r, &me, &s);
    if (rc)
        return rc;
    copy_msg((unsigned char *)s + r->g.data_off, a->msg, a->len);
    shoal__test_point("queue.reserved");
    return mp_commit(r, s, me, a->len);
}

static int mp_try_get(shoal__ring *r, void *arg)
{
    struct get_args *a = arg;
    struct mslot *s;
    size_t len = 0;
    int rc = mc_take(r, a->cap, &s, &len);
    if (rc == SHOAL_EMSGSIZE) {
        *a->len = len;
        return err_small(r, len, a->cap);
    }
    if (rc == SHOAL_ECORRUPT)
        return err_bad_len(r, len);
    if (rc)
        return rc;
    *a->len = len;
    copy_msg(a->buf, (unsigned char *)s + r->g.data_off, len);
    shoal__test_point("queue.claimed");
    mc_free(r, s, atomic_load_explicit(&s->word, memory_order_relaxed));
    return 0;
}

/* Batches are single puts and gets, each its own step of the slot state machine. */
static int mp_try_put_batch(shoal__ring *r, void *arg)
{
    struct batch_args *a = arg;
    size_t esz = r->g.elem_size, i = 0;
    int rc = 0;
    for (; i < a->n; i++) {
        struct put_args one = {a->elems + i * esz, esz};
        if ((rc = mp_try_put(r, &one)))
            break;
    }
    *a->done = i;
    return i ? 0 : rc;
}

static int mp_try_get_batch(shoal__ring *r, void *arg)
{
    struct batch_args *a = arg;
    size_t esz = r->g.elem_size, i = 0, len;
    int rc = 0;
    for (; i < a->n; i++) {
        struct get_args one = {a->elems + i * esz, esz, &len};
        if ((rc = mp_try_get(r, &one)))
            break;
    }
    *a->done = i;
    return i ? 0 : rc;
}

static int mp_try_loan(shoal__ring *r, void *arg)
{
    uint32_t me;
    struct mslot *s;
    int rc = mp_reserve_mine(r, &me, &s);
    return rc ? rc : loan_done(r, arg, (unsigned char *)s);
}

static int mp_commit_slot(shoal__ring *r, unsigned char *base, size_t len)
{
    size_t off = (size_t)(base - r->slots);
    if (base < r->slots || off % r->g.stride || off / r->g.stride >= r->g.capacity)
        return shoal__err(SHOAL_EINVAL, "%s \"%s\": not a slot of this %s", r->what,
                          r->name, r->what);
    return mp_commit(r, (struct mslot *)base, ring_me(r), len);
}

static int mp_try_peek(shoal__ring *r, void *arg)
{
    struct peek_args *a = arg;
    struct mslot *s;
    int rc = mc_take(r, SIZE_MAX, &s, a->len);
    if (rc == SHOAL_ECORRUPT)
        return err_bad_len(r, *a->len);
    if (rc)
        return rc;
    *a->msg = (unsigned char *)s + r->g.data_off;
    shoal__test_point("queue.claimed");
    return 0;
}

/* What is at the head: 0 a message, 1 a reservation not yet committed, 2 nothing.
 * Empty SKIP slots found there are cleared on the way. */
static int mc_head_state(shoal__ring *r, uint32_t me)
{
    struct shoal__ringhdr *h = r->h;
    for (uint32_t steps = 0; steps <= r->g.capacity; steps++) {
        uint64_t pos = atomic_load(&h->head);
        struct mslot *s = (struct mslot *)slot_at(r, pos);
        uint64_t w = atomic_load(&s->word);
        int32_t d = (int32_t)(w_seq(w) - (uint32_t)(pos + 1));
        if (d == 0 && (w & W_FULL) && !(w & (W_CLAIM | W_SKIP)))
            return 0;
        if (d < 0)
            return d == -1 && w_owner(w) && !(w & W_CLAIM) ? 1 : 2;
        if (d == 0 && (w & W_SKIP) && !(w & W_CLAIM)) {
            uint64_t mine = w | W_CLAIM | (uint64_t)me << 32;
            if (!atomic_compare_exchange_strong(&s->word, &w, mine))
                continue;
            mc_free(r, s, mine);
        }
        uint64_t hp = pos;
        atomic_compare_exchange_strong(&h->head, &hp, pos + 1);
    }
    return 2; /* more than a lap of that: corrupt sequence words, nothing to take */
}

/* Ready: a message is at the head, or a dead consumer's claim can be taken over. */
static int mp_readable(shoal__ring *r, void *arg)
{
    (void)arg;
    uint32_t me = ring_me(r);
    if (mc_head_state(r, me) == 0)
        return 0;
    bool closed = atomic_load(&r->h->closed);
    if (!scan_due(r, closed))
        return SHOAL_EAGAIN;
    bool found = false;
    struct mslot *s;
    size_t len;
    if (mc_scan(r, me, false, 0, &s, &len, &found) != SHOAL_EAGAIN || found) {
        scan_soon(r); /* the next get takes over what was found */
        return 0;
    }
    if (!closed)
        return SHOAL_EAGAIN;
    int st = mc_head_state(r, me); /* re-check after reading `closed`, as mc_take does */
    return st == 0 ? 0 : st == 1 ? SHOAL_EAGAIN : err_eof(r);
}

/* Writable: a free slot at the tail (a reservation racing there also counts: the
 * caller's try form settles it), or SHOAL_ECLOSED. */
static int mp_writable(shoal__ring *r, void *arg)
{
    (void)arg;
    if (atomic_load(&r->h->closed))
        return err_closed(r);
    uint64_t pos = atomic_load(&r->h->tail);
    uint64_t w = atomic_load(&((struct mslot *)slot_at(r, pos))->word);
    int32_t d = (int32_t)(w_seq(w) - (uint32_t)pos);
    return d < 0 || (d == 0 && (w & W_FULL)) ? SHOAL_EAGAIN : 0;
}

/* Nothing to add to `closed`: producers check it after reserving. */
static void mp_seal(shoal__ring *r)
{
    (void)r;
}

/* The message in an MPMC slot at position pos if it is committed and unclaimed:
 * copied to buf (max_msg bytes), or -1. */
static long mp_copy_at(const shoal__ring *r, uint64_t pos, unsigned char *buf)
{
    struct mslot *s = (struct mslot *)slot_at(r, pos);
    uint64_t w = atomic_load_explicit(&s->word, memory_order_acquire);
    if (w_seq(w) != (uint32_t)(pos + 1) || (w & (W_CLAIM | W_SKIP)) || !(w & W_FULL))
        return -1;
    size_t len = atomic_load_explicit(&s->len, memory_order_relaxed);
    if (len > r->g.max_msg)
        return -1;
    copy_msg(buf, (unsigned char *)s + r->g.data_off, len);
    atomic_thread_fence(memory_order_acquire);
    return atomic_load_explicit(&s->word, memory_order_relaxed) == w ? (long)len : -1;
}

const struct shoal__ring_ops shoal__ring_mpmc_ops = {
    .geom = mp_geom,
    .format = mp_format,
    .put = mp_try_put,
    .get = mp_try_get,
    .put_batch = mp_try_put_batch,
    .get_batch = mp_try_get_batch,
    .loan = mp_try_loan,
    .peek = mp_try_peek,
    .readable = mp_readable,
    .writable = mp_writable,
    .commit = mp_commit_slot,
    .release = mc_release,
    .seal = mp_seal,
    .copy_at = mp_copy_at,
};
