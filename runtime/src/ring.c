/*
 * ring.c — the ring under Queue and Pipe: geometry, attaching, the MPMC and SPSC
 * algorithms, waiting, batches, zero-copy and inspection (queue.c and pipe.c hold the
 * public APIs on top of it).
 *
 * Ring header (struct shoal__ringhdr): immutable geometry, then the producer's line
 * (tail), the consumer's line (head), one line per futex word and a line of shutdown
 * and recovery state. Counters are derived from the indexes (puts = tail - skipped,
 * gets = head - skipped), so the fast path pays nothing for them; only waits are
 * counted, when a call is about to wait.
 *
 * MPMC slots carry a 64-bit state word:
 *   bits  0..31  sequence (the position the slot is at, modulo 2^32)
 *   bits 32..60  owner: the process's owner id in the segment (owner.c)
 *   bit  61      FULL: committed (tells a message from the next lap's free slot)
 *   bit  62      SKIP: the slot holds no message (a dead producer's reservation)
 *   bit  63      CLAIM: a consumer owns the message
 * For position p the slot goes FREE (seq p) -> RESERVED (seq p, owner) -> COMMITTED
 * (seq p+1, FULL) -> CLAIMED (seq p+1, FULL, owner, CLAIM) -> FREE (seq p+capacity).
 * Every step is
 * one compare-and-swap on that word, so the owner of a reservation or claim is
 * recorded atomically with it: a consumer that finds a reservation or a claim whose
 * owner is gone (owner.c: from a lock the kernel drops, not from a pid) recycles the
 * reservation as SKIP or takes the claim over and delivers the message itself. The
 * release of a claim is the single step that consumes a message, so a consumer killed
 * before it — even after copying the message out — loses nothing, and one killed after
 * it has consumed it: messages are delivered exactly once. (With peek/release a
 * consumer that dies before releasing has its message delivered again.) The head and
 * tail indexes only move after the slot's word did, and anyone may move them, so a
 * process killed between the two steps stalls no one.
 *
 * SPSC rings have no per-slot state: the producer writes the slot, then publishes the
 * tail with a compare-and-swap that fails once shutdown has sealed the tail (bit 63),
 * so shutdown is exact; the consumer copies the slot, then publishes the head. A
 * producer killed before publishing leaves nothing; a consumer killed before
 * publishing leaves the message for the next consumer.
 *
 * Waiting is shoal__wait (wait.c) with the try form as the ready predicate: the futex
 * word is a sequence word per side, armed by a sleeper count; the other side bumps the
 * word and wakes only when the count is non-zero, so the fast path makes no system
 * call. Sleeps are sliced, so a waiter regularly re-checks for dead processes. The
 * same words and predicates ("a message or the end is there", "there is room") are
 * what the event loop waits on (shoal__ring_waitable).
 */
#include <stdlib.h>
#include <string.h>

#include "queue_internal.h"
#include "wait.h"

#define RING_MAGIC       0x474e4952u /* "RING" */
#define DEFAULT_CAPACITY 1024
#define MAX_CAPACITY     (1u << 30)
#define MAX_MSG          (1u << 30)
#define MAX_RING_BYTES   (1ull << 40)
#define SCAN_NS          (20 * 1000000LL) /* a consumer looks for dead owners this often */
#define TAIL_SEAL        (1ull << 63)     /* SPSC: the tail is sealed by shutdown */
#define BYTES_TYPE       "shoal.bytes" /* element type name of variable-size channels */

struct shoal__ringhdr {
    uint32_t magic, flags, capacity, max_msg, data_off, stride, elem_size, pad;
    _Alignas(64) _Atomic uint64_t tail;
    _Atomic uint64_t full_waits;
    _Alignas(64) _Atomic uint64_t head;
    _Atomic uint64_t empty_waits;
    _Alignas(64) _Atomic uint32_t ne_seq; /* bumped when a message may have arrived */
    _Atomic uint32_t ne_sleepers;
    _Alignas(64) _Atomic uint32_t nf_seq; /* bumped when room may have appeared */
    _Atomic uint32_t nf_sleepers;
    _Alignas(64) _Atomic uint32_t closed;
    uint32_t pad2;
    _Atomic uint64_t skipped;     /* dead producers' reservations recycled */
    _Atomic uint64_t redelivered; /* dead consumers' claims delivered to others */
};

#define HDR_BYTES ((sizeof(struct shoal__ringhdr) + 63) & ~(size_t)63)

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

/* ---- geometry ---------------------------------------------------------------------- */

static uint64_t round_up(uint64_t n, uint64_t a)
{
    return (n + a - 1) / a * a;
}

static void geom_compute(shoal__ring_geom *g, uint32_t flags, uint32_t capacity,
                         uint32_t max_msg, uint32_t align, uint32_t elem_size)
{
    g->flags = flags;
    g->capacity = capacity;
    g->max_msg = max_msg;
    g->elem_size = elem_size;
    if (align < 1)
        align = 1;
    if (flags & SHOAL__RING_SPSC) {
        /* Dense: a bare ring of elements (variable-size: a length first). */
        g->data_off = (flags & SHOAL__RING_VAR) ? 8 : 0;
        g->stride = (uint32_t)round_up(g->data_off + max_msg,
                                       (flags & SHOAL__RING_VAR) ? 8 : align);
    } else {
        /* One slot per cache line or more, so consumers of neighbouring slots do not
         * share lines. */
        uint32_t a = align > 8 ? align : 8;
        g->data_off = (uint32_t)round_up(sizeof(struct mslot), a);
        g->stride = (uint32_t)round_up((uint64_t)g->data_off + max_msg, 64);
    }
}

int shoal__ring_geom_make(const shoal_queue_config *cfg, const char *what,
                          const char *name, shoal__ring_geom *g)
{
    if (!name)
        name = "(anonymous)";
    if (!cfg)
        return shoal__err(SHOAL_EINVAL, "%s \"%s\": creating it needs a configuration",
                          what, name);
    size_t cap = cfg->capacity ? cfg->capacity : DEFAULT_CAPACITY;
    if (cap > MAX_CAPACITY)
        return shoal__err(SHOAL_EINVAL, "%s \"%s\": capacity %zu is over the limit of %u",
                          what, name, cap, MAX_CAPACITY);
    uint32_t flags = cfg->spsc ? SHOAL__RING_SPSC : 0;
    int rc;
    if (cfg->type) {
        if ((rc = shoal__type_check(cfg->type, what, name, MAX_MSG)))
            return rc;
        geom_compute(g, flags, (uint32_t)cap, cfg->type->size, cfg->type->align,
                     cfg->type->size);
    } else {
        if (cfg->max_msg == 0 || cfg->max_msg > MAX_MSG)
            return shoal__err(
                SHOAL_EINVAL,
                "%s \"%s\": a variable-size channel needs max_msg between 1 "
                "and %u bytes (got %zu)",
                what, name, MAX_MSG, cfg->max_msg);
        geom_compute(g, flags | SHOAL__RING_VAR, (uint32_t)cap, (uint32_t)cfg->max_msg, 8,
                     0);
    }
    if (shoal__ring_bytes(g) > MAX_RING_BYTES)
        return shoal__err(SHOAL_EINVAL, "%s \"%s\": %u slots of %u bytes is too large",
                          what, name, g->capacity, g->stride);
    return 0;
}

size_t shoal__ring_bytes(const shoal__ring_geom *g)
{
    return (size_t)round_up(HDR_BYTES + (uint64_t)g->capacity * g->stride, 64);
}

void shoal__ring_format(void *mem, const shoal__ring_geom *g)
{
    struct shoal__ringhdr *h = mem;
    h->magic = RING_MAGIC;
    h->flags = g->flags;
    h->capacity = g->capacity;
    h->max_msg = g->max_msg;
    h->data_off = g->data_off;
    h->stride = g->stride;
    h->elem_size = g->elem_size;
    if (g->flags & SHOAL__RING_SPSC)
        return;
    unsigned char *slots = (unsigned char *)mem + HDR_BYTES;
    for (uint32_t i = 0; i < g->capacity; i++) {
        struct mslot *s = (struct mslot *)(slots + (size_t)i * g->stride);
        atomic_init(&s->word, w_make(i, 0, 0));
    }
}

int shoal__ring_attach(shoal__ring *r, shoal__seg *seg, void *mem, size_t avail,
                       const shoal__ring_geom *g, const char *what, const char *name)
{
    struct shoal__ringhdr *h = mem;
    memset(r, 0, sizeof(*r));
    if (avail < shoal__ring_bytes(g) || h->magic != RING_MAGIC || h->flags != g->flags ||
        h->capacity != g->capacity || h->max_msg != g->max_msg ||
        h->data_off != g->data_off || h->stride != g->stride ||
        h->elem_size != g->elem_size)
        return shoal__err(SHOAL_ECORRUPT,
                          "%s \"%s\": ring header fails validation (corrupt)", what,
                          name);
    r->h = h;
    r->slots = (unsigned char *)mem + HDR_BYTES;
    r->g = *g;
    r->mask = g->capacity > 1 && !(g->capacity & (g->capacity - 1)) ? g->capacity - 1 : 0;
    r->what = what;
    r->name = name;
    r->seg = seg;
    return 0;
}

/* ---- common helpers ---------------------------------------------------------------- */

static inline bool is_spsc(const shoal__ring *r)
{
    return r->g.flags & SHOAL__RING_SPSC;
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

/*
 * Wakes every sleeper on seq, not n of them. The kernel's futex queue for a word in
 * shared memory can hold waits whose owner will never act on a wake-up: the wait of a
 * process SIGKILLed while asleep (until its exit has run), and an io_uring futex wait
 * of a loop that was destroyed or killed (until the kernel has torn the ring down,
 * which it does asynchronously, and never while a forked child still holds the ring's
 * descriptor). A wake of n could go to such waits only, and a live loop — which, unlike
 * shoal__wait, does not sleep in slices — would then never see the message. Waking all
 * costs more only when several live waiters sleep on the same side (each re-checks
 * and sleeps again); with nobody asleep the put or get still makes no system call.
 */
static inline void wake(_Atomic uint32_t *sleepers, _Atomic uint32_t *seq, int n)
{
    (void)n;
    if (SHOAL_UNLIKELY(atomic_load(sleepers) != 0)) {
        atomic_fetch_add(seq, 1);
        shoal__futex_wake(seq, INT_MAX);
    }
}

static inline void wake_consumers(shoal__ring *r, int n)
{
    wake(&r->h->ne_sleepers, &r->h->ne_seq, n);
}

static inline void wake_producers(shoal__ring *r, int n)
{
    wake(&r->h->nf_sleepers, &r->h->nf_seq, n);
}

void shoal__ring_wake_all(shoal__ring *r)
{
    atomic_fetch_add(&r->h->ne_seq, 1);
    atomic_fetch_add(&r->h->nf_seq, 1);
    shoal__futex_wake(&r->h->ne_seq, INT_MAX);
    shoal__futex_wake(&r->h->nf_seq, INT_MAX);
}

static int check_len(const shoal__ring *r, size_t len)
{
    if (!is_var(r) && len != r->g.elem_size)
        return shoal__err(
            SHOAL_EMSGSIZE,
            "%s \"%s\": message of %zu bytes, but its elements are %u bytes", r->what,
            r->name, len, r->g.elem_size);
    if (len > r->g.max_msg)
        return shoal__err(
            SHOAL_EMSGSIZE,
            "%s \"%s\": message of %zu bytes exceeds its maximum of %u bytes", r->what,
            r->name, len, r->g.max_msg);
    return 0;
}

static int err_closed(const shoal__ring *r)
{
    return shoal__err(SHOAL_ECLOSED, "%s \"%s\" is shut down: no more puts", r->what,
                      r->name);
}

static int err_eof(const shoal__ring *r)
{
    return shoal__err(SHOAL_EEOF, "%s \"%s\" is shut down and drained", r->what, r->name);
}

/* A slot records a length no message of this ring can have. */
static int err_bad_len(const shoal__ring *r, size_t len)
{
    return shoal__err(
        SHOAL_ECORRUPT,
        "%s \"%s\": a queued message records %zu bytes, over the maximum of "
        "%u (corrupt)",
        r->what, r->name, len, r->g.max_msg);
}

static int err_small(const shoal__ring *r, size_t len, size_t cap)
{
    return shoal__err(SHOAL_EMSGSIZE,
                      "%s \"%s\": the next message has %zu bytes, the buffer only %zu",
                      r->what, r->name, len, cap);
}

/* ---- MPMC -------------------------------------------------------------------------- */

/* Reserves the tail slot for `me`. Returns 0, SHOAL_EAGAIN (full) or SHOAL_ECLOSED. */
static int mp_reserve(shoal__ring *r, uint32_t me, struct mslot **out)
{
    struct shoal__ringhdr *h = r->h;
    uint64_t pos = atomic_load_explicit(&h->tail, memory_order_relaxed);
    for (uint32_t steps = 0;;) {
        struct mslot *s = (struct mslot *)slot_at(r, pos);
        uint64_t w = atomic_load_explicit(&s->word, memory_order_acquire);
        int32_t d = (int32_t)(w_seq(w) - (uint32_t)pos);
        if (d == 0 && w_owner(w) == 0 && !(w & W_FULL)) {
            if (atomic_compare_exchange_strong(&s->word, &w, w_make(pos, me, 0))) {
                uint64_t t = pos;
                atomic_compare_exchange_strong(&h->tail, &t, pos + 1);
                *out = s;
                return 0;
            }
        } else if (d < 0 || (d == 0 && (w & W_FULL))) { /* the last lap's: full */
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
        wake_consumers(r, 1);
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

static int mp_commit(shoal__ring *r, struct mslot *s, uint32_t me, size_t len)
{
    uint64_t w = atomic_load_explicit(&s->word, memory_order_relaxed);
    if (w_owner(w) != me || (w & (W_CLAIM | W_SKIP)))
        return shoal__err(SHOAL_EINVAL, "%s \"%s\": slot is not loaned by this process",
                          r->what, r->name);
    atomic_store_explicit(&s->len, (uint32_t)len, memory_order_relaxed);
    if (!atomic_compare_exchange_strong(&s->word, &w, w_make(w_seq(w) + 1u, 0, W_FULL)))
        return shoal__err(SHOAL_EINVAL, "%s \"%s\": loan was reclaimed", r->what,
                          r->name);
    wake_consumers(r, 1);
    return 0;
}

/* Frees a slot we have claimed. */
static void mc_free(shoal__ring *r, struct mslot *s, uint64_t w)
{
    uint64_t next = w_make(w_seq(w) - 1u + r->g.capacity, 0, 0);
    if (atomic_compare_exchange_strong(&s->word, &w, next))
        wake_producers(r, 1);
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
                wake_consumers(r, 1);
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
 * Claims a message: the head's, or else (at most every SCAN_NS, and always before
 * declaring the end of the stream) one recovered from a dead process.
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
    int64_t now = shoal__now_ns();
    if (!closed && now < atomic_load_explicit(&r->next_scan_ns, memory_order_relaxed))
        return SHOAL_EAGAIN;
    atomic_store_explicit(&r->next_scan_ns, now + SCAN_NS, memory_order_relaxed);
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

/* ---- SPSC -------------------------------------------------------------------------- */

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

/* Publishes the tail (t -> t + n); fails only if shutdown sealed it. */
static int sp_publish(shoal__ring *r, uint64_t t, uint64_t n)
{
    if (!atomic_compare_exchange_strong(&r->h->tail, &t, t + n))
        return err_closed(r);
    wake_consumers(r, (int)n);
    return 0;
}

/* Messages available at head hd, refreshing the cached tail only when it shows fewer
 * than `want`. */
static inline uint64_t sp_avail(shoal__ring *r, uint64_t hd, uint64_t want, bool *sealed)
{
    *sealed = false;
    uint64_t tc = r->tail_cache & ~TAIL_SEAL;
    if (tc < hd + want) {
        r->tail_cache = atomic_load_explicit(&r->h->tail, memory_order_acquire);
        tc = r->tail_cache & ~TAIL_SEAL;
        *sealed = r->tail_cache & TAIL_SEAL;
        if (tc <= hd)
            return 0;
    }
    return tc - hd;
}

static inline void sp_consume(shoal__ring *r, uint64_t hd, uint64_t n)
{
    r->peek = NULL;                    /* whatever was peeked is consumed now */
    atomic_store(&r->h->head, hd + n); /* seq_cst: ordered before the sleeper check */
    wake_producers(r, (int)n);
}

static inline size_t sp_len(const shoal__ring *r, const unsigned char *slot)
{
    uint32_t len;
    if (!is_var(r))
        return r->g.elem_size;
    memcpy(&len, slot, sizeof(len));
    return len;
}

/* The SPSC message at the head: 0 (*hd, *slot, *len), SHOAL_EAGAIN, SHOAL_EEOF, or
 * SHOAL_ECORRUPT when its recorded length exceeds max_msg. */
static inline int sp_front(shoal__ring *r, uint64_t *hd, unsigned char **slot,
                           size_t *len)
{
    bool sealed;
    *hd = atomic_load_explicit(&r->h->head, memory_order_relaxed);
    if (sp_avail(r, *hd, 1, &sealed) == 0)
        return sealed ? err_eof(r) : SHOAL_EAGAIN;
    *slot = slot_at(r, *hd);
    *len = sp_len(r, *slot);
    return SHOAL_UNLIKELY(*len > r->g.max_msg) ? err_bad_len(r, *len) : 0;
}

/* ---- try forms --------------------------------------------------------------------- */

/* Copies a message's bytes; an empty message may come with a NULL pointer, which
 * memcpy must not be given even for 0 bytes. */
static inline void copy_msg(void *dst, const void *src, size_t n)
{
    if (n)
        memcpy(dst, src, n);
}

struct put_args {
    const void *msg;
    size_t len;
};

static int try_put(shoal__ring *r, void *arg)
{
    const struct put_args *a = arg;
    if (is_spsc(r)) {
        uint64_t t = atomic_load_explicit(&r->h->tail, memory_order_relaxed);
        if (SHOAL_UNLIKELY(t & TAIL_SEAL))
            return err_closed(r);
        if (sp_room(r, t, 1) == 0)
            return SHOAL_EAGAIN;
        unsigned char *slot = slot_at(r, t);
        if (is_var(r)) {
            uint32_t l = (uint32_t)a->len;
            memcpy(slot, &l, sizeof(l));
        }
        copy_msg(slot + r->g.data_off, a->msg, a->len);
        shoal__test_point("queue.reserved");
        return sp_publish(r, t, 1);
    }
    uint32_t me = ring_me(r);
    if (SHOAL_UNLIKELY(!me))
        return err_no_owner(r);
    if (SHOAL_UNLIKELY(atomic_load_explicit(&r->h->closed, memory_order_relaxed)))
        return err_closed(r);
    struct mslot *s;
    int rc = mp_reserve(r, me, &s);
    if (rc || (rc = mp_after_reserve(r, s, me)))
        return rc;
    copy_msg((unsigned char *)s + r->g.data_off, a->msg, a->len);
    shoal__test_point("queue.reserved");
    return mp_commit(r, s, me, a->len);
}

struct get_args {
    void *buf;
    size_t cap;
    size_t *len;
};

static int try_get(shoal__ring *r, void *arg)
{
    struct get_args *a = arg;
    if (is_spsc(r)) {
        uint64_t hd;
        unsigned char *slot = NULL;
        size_t len = 0;
        int rc = sp_front(r, &hd, &slot, &len);
        if (rc)
            return rc;
        *a->len = len;
        if (len > a->cap)
            return err_small(r, len, a->cap);
        copy_msg(a->buf, slot + r->g.data_off, len);
        shoal__test_point("queue.claimed");
        sp_consume(r, hd, 1);
        return 0;
    }
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

/* ---- waiting ----------------------------------------------------------------------- */

typedef shoal__ring_try_fn try_fn;

static int err_timeout(const shoal__ring *r, bool producer)
{
    return shoal__err(SHOAL_ETIMEDOUT, "%s \"%s\": timed out waiting for %s", r->what,
                      r->name, producer ? "room" : "a message");
}

/* The hook said the stream ended: consumers still take what is there. */
static int hook_end(shoal__ring *r, bool producer, try_fn fn, void *arg, int why)
{
    if (producer)
        return why;
    int rc = fn(r, arg);
    return rc == SHOAL_EAGAIN ? why : rc;
}

/* A blocking ring call as a shoal__waitable: ready() is the try form itself. */
#define ring_waiter shoal__ring_waiter

/* 1 when fn succeeded, 0 when it would wait, else its error. */
static int waiter_ready(void *obj)
{
    struct ring_waiter *w = obj;
    int rc = w->fn(w->r, w->arg);
    return rc == 0 ? 1 : rc == SHOAL_EAGAIN ? 0 : rc;
}

static void ring_arm(shoal__ring *r, bool producer)
{
    atomic_fetch_add(producer ? &r->h->nf_sleepers : &r->h->ne_sleepers, 1);
}

static void ring_disarm(shoal__ring *r, bool producer)
{
    atomic_fetch_sub(producer ? &r->h->nf_sleepers : &r->h->ne_sleepers, 1);
}

static void waiter_arm(void *obj)
{
    struct ring_waiter *w = obj;
    ring_arm(w->r, w->producer);
}

static void waiter_disarm(void *obj)
{
    struct ring_waiter *w = obj;
    ring_disarm(w->r, w->producer);
}

static int waiter_check(void *obj)
{
    struct ring_waiter *w = obj;
    int why = w->hook->check(w->hook->arg, w->producer);
    if (!why)
        return 0;
    int rc = hook_end(w->r, w->producer, w->fn, w->arg, why);
    return rc == 0 ? 1 : rc;
}

static _Atomic uint32_t *ring_word(shoal__ring *r, bool producer)
{
    return producer ? &r->h->nf_seq : &r->h->ne_seq;
}

static int ring_wait(shoal__ring *r, bool producer, try_fn fn, void *arg,
                     shoal_duration timeout, const shoal__ring_hook *hook)
{
    int rc = fn(r, arg);
    if (SHOAL_LIKELY(rc != SHOAL_EAGAIN))
        return rc;
    int why;
    if (hook && (why = hook->check(hook->arg, producer)))
        return hook_end(r, producer, fn, arg, why);
    if (timeout == 0)
        return SHOAL_EAGAIN;
    atomic_fetch_add_explicit(producer ? &r->h->full_waits : &r->h->empty_waits, 1,
                              memory_order_relaxed);
    shoal__deadline dl = shoal__deadline_from(timeout);
    struct ring_waiter w = {r, producer, fn, arg, hook};
    shoal__waitable wt = {ring_word(r, producer),
                          waiter_ready,
                          waiter_arm,
                          waiter_disarm,
                          hook ? waiter_check : NULL,
                          &w};
    rc = shoal__wait(&wt, &dl);
    if (rc == 1)
        return 0;
    return rc == SHOAL_ETIMEDOUT ? err_timeout(r, producer) : rc;
}

/* ---- ring operations --------------------------------------------------------------- */

int shoal__ring_put(shoal__ring *r, const void *msg, size_t len, shoal_duration timeout,
                    const shoal__ring_hook *hook)
{
    int rc;
    if (SHOAL_UNLIKELY((rc = check_len(r, len))))
        return rc;
    if (!msg && len)
        return shoal__err(SHOAL_EINVAL, "%s \"%s\": NULL message", r->what, r->name);
    if (SHOAL_UNLIKELY(r->loan))
        return shoal__err(SHOAL_EINVAL, "%s \"%s\": commit the outstanding loan first",
                          r->what, r->name);
    struct put_args a = {msg, len};
    return ring_wait(r, true, try_put, &a, timeout, hook);
}

int shoal__ring_get(shoal__ring *r, void *buf, size_t cap, size_t *len,
                    shoal_duration timeout, const shoal__ring_hook *hook)
{
    size_t ignored;
    if (!buf && cap)
        return shoal__err(SHOAL_EINVAL, "%s \"%s\": NULL buffer", r->what, r->name);
    struct get_args a = {buf, cap, len ? len : &ignored};
    return ring_wait(r, false, try_get, &a, timeout, hook);
}

struct batch_args {
    unsigned char *elems;
    size_t n, *done;
};

static int try_put_batch(shoal__ring *r, void *arg)
{
    struct batch_args *a = arg;
    size_t esz = r->g.elem_size;
    if (is_spsc(r)) {
        uint64_t t = atomic_load_explicit(&r->h->tail, memory_order_relaxed);
        if (t & TAIL_SEAL)
            return err_closed(r);
        uint64_t k = sp_room(r, t, a->n < r->g.capacity ? a->n : r->g.capacity);
        if (k == 0)
            return SHOAL_EAGAIN;
        if (k > a->n)
            k = a->n;
        for (uint64_t i = 0; i < k; i++)
            memcpy(slot_at(r, t + i), a->elems + i * esz, esz);
        shoal__test_point("queue.reserved");
        int rc = sp_publish(r, t, k);
        if (rc == 0)
            *a->done = k;
        return rc;
    }
    size_t i = 0;
    int rc = 0;
    for (; i < a->n; i++) {
        struct put_args one = {a->elems + i * esz, esz};
        if ((rc = try_put(r, &one)))
            break;
    }
    *a->done = i;
    return i ? 0 : rc;
}

static int try_get_batch(shoal__ring *r, void *arg)
{
    struct batch_args *a = arg;
    size_t esz = r->g.elem_size;
    if (is_spsc(r)) {
        uint64_t hd = atomic_load_explicit(&r->h->head, memory_order_relaxed);
        bool sealed;
        uint64_t k = sp_avail(r, hd, a->n, &sealed);
        if (k == 0)
            return sealed ? err_eof(r) : SHOAL_EAGAIN;
        if (k > a->n)
            k = a->n;
        for (uint64_t i = 0; i < k; i++)
            memcpy(a->elems + i * esz, slot_at(r, hd + i), esz);
        shoal__test_point("queue.claimed");
        sp_consume(r, hd, k);
        *a->done = k;
        return 0;
    }
    size_t i = 0, len;
    int rc = 0;
    for (; i < a->n; i++) {
        struct get_args one = {a->elems + i * esz, esz, &len};
        if ((rc = try_get(r, &one)))
            break;
    }
    *a->done = i;
    return i ? 0 : rc;
}

static int batch_check(shoal__ring *r, const void *elems, size_t n, size_t *done)
{
    if (done)
        *done = 0;
    if (is_var(r))
        return shoal__err(SHOAL_EINVAL,
                          "%s \"%s\": batch operations need a typed (fixed-size) %s",
                          r->what, r->name, r->what);
    if (!done || (!elems && n))
        return shoal__err(SHOAL_EINVAL, "%s \"%s\": NULL argument", r->what, r->name);
    return 0;
}

int shoal__ring_put_batch(shoal__ring *r, const void *elems, size_t n, size_t *done,
                          shoal_duration timeout, const shoal__ring_hook *hook)
{
    int rc = batch_check(r, elems, n, done);
    if (rc || n == 0)
        return rc;
    if (r->loan)
        return shoal__err(SHOAL_EINVAL, "%s \"%s\": commit the outstanding loan first",
                          r->what, r->name);
    struct batch_args a = {(unsigned char *)elems, n, done};
    return ring_wait(r, true, try_put_batch, &a, timeout, hook);
}

int shoal__ring_get_batch(shoal__ring *r, void *elems, size_t max, size_t *done,
                          shoal_duration timeout, const shoal__ring_hook *hook)
{
    int rc = batch_check(r, elems, max, done);
    if (rc || max == 0)
        return rc;
    struct batch_args a = {elems, max, done};
    return ring_wait(r, false, try_get_batch, &a, timeout, hook);
}

/* ---- zero-copy --------------------------------------------------------------------- */

struct loan_args {
    void **slot;
    size_t *cap;
};

static int try_loan(shoal__ring *r, void *arg)
{
    struct loan_args *a = arg;
    unsigned char *slot;
    if (is_spsc(r)) {
        uint64_t t = atomic_load_explicit(&r->h->tail, memory_order_relaxed);
        if (t & TAIL_SEAL)
            return err_closed(r);
        if (sp_room(r, t, 1) == 0)
            return SHOAL_EAGAIN;
        slot = slot_at(r, t);
        r->loan = slot;
    } else {
        uint32_t me = ring_me(r);
        if (SHOAL_UNLIKELY(!me))
            return err_no_owner(r);
        if (atomic_load_explicit(&r->h->closed, memory_order_relaxed))
            return err_closed(r);
        struct mslot *s;
        int rc = mp_reserve(r, me, &s);
        if (rc || (rc = mp_after_reserve(r, s, me)))
            return rc;
        slot = (unsigned char *)s;
    }
    *a->slot = slot + r->g.data_off;
    *a->cap = r->g.max_msg;
    shoal__test_point("queue.reserved");
    return 0;
}

int shoal__ring_loan(shoal__ring *r, void **slot, size_t *cap, shoal_duration timeout,
                     const shoal__ring_hook *hook)
{
    size_t ignored;
    if (!slot)
        return shoal__err(SHOAL_EINVAL, "%s \"%s\": NULL argument", r->what, r->name);
    if (is_spsc(r) && r->loan)
        return shoal__err(SHOAL_EINVAL,
                          "%s \"%s\": a single-producer %s allows one loan at a time",
                          r->what, r->name, r->what);
    struct loan_args a = {slot, cap ? cap : &ignored};
    return ring_wait(r, true, try_loan, &a, timeout, hook);
}

int shoal__ring_commit(shoal__ring *r, void *slot, size_t len)
{
    int rc;
    if ((rc = check_len(r, len)))
        return rc;
    if (!slot)
        return shoal__err(SHOAL_EINVAL, "%s \"%s\": NULL slot", r->what, r->name);
    unsigned char *base = (unsigned char *)slot - r->g.data_off;
    if (is_spsc(r)) {
        if (!r->loan || base != r->loan)
            return shoal__err(SHOAL_EINVAL,
                              "%s \"%s\": slot is not loaned by this handle", r->what,
                              r->name);
        r->loan = NULL;
        if (is_var(r)) {
            uint32_t l = (uint32_t)len;
            memcpy(base, &l, sizeof(l));
        }
        uint64_t t = atomic_load_explicit(&r->h->tail, memory_order_relaxed);
        return sp_publish(r, t & ~TAIL_SEAL, 1);
    }
    size_t off = (size_t)(base - r->slots);
    if (base < r->slots || off % r->g.stride || off / r->g.stride >= r->g.capacity)
        return shoal__err(SHOAL_EINVAL, "%s \"%s\": not a slot of this %s", r->what,
                          r->name, r->what);
    return mp_commit(r, (struct mslot *)base, ring_me(r), len);
}

struct peek_args {
    const void **msg;
    size_t *len;
};

static int try_peek(shoal__ring *r, void *arg)
{
    struct peek_args *a = arg;
    if (is_spsc(r)) {
        uint64_t hd;
        unsigned char *slot = NULL;
        size_t len = 0;
        int rc = sp_front(r, &hd, &slot, &len);
        if (rc)
            return rc;
        r->peek = slot;
        *a->msg = slot + r->g.data_off;
        *a->len = len;
        shoal__test_point("queue.claimed");
        return 0;
    }
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

int shoal__ring_peek(shoal__ring *r, const void **msg, size_t *len,
                     shoal_duration timeout, const shoal__ring_hook *hook)
{
    size_t ignored;
    if (!msg)
        return shoal__err(SHOAL_EINVAL, "%s \"%s\": NULL argument", r->what, r->name);
    struct peek_args a = {msg, len ? len : &ignored};
    return ring_wait(r, false, try_peek, &a, timeout, hook);
}

int shoal__ring_release(shoal__ring *r, const void *msg)
{
    if (!msg)
        return shoal__err(SHOAL_EINVAL, "%s \"%s\": NULL message", r->what, r->name);
    if (!is_spsc(r))
        return mc_release(r, msg);
    if (!r->peek || (const unsigned char *)msg != r->peek + r->g.data_off)
        return shoal__err(SHOAL_EINVAL, "%s \"%s\": message is not the one peeked",
                          r->what, r->name);
    r->peek = NULL;
    sp_consume(r, atomic_load_explicit(&r->h->head, memory_order_relaxed), 1);
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
static int try_ready(shoal__ring *r, void *arg)
{
    (void)arg;
    if (is_spsc(r)) {
        uint64_t hd = atomic_load_explicit(&r->h->head, memory_order_relaxed);
        bool sealed;
        if (sp_avail(r, hd, 1, &sealed))
            return 0;
        return sealed ? err_eof(r) : SHOAL_EAGAIN;
    }
    uint32_t me = ring_me(r);
    if (mc_head_state(r, me) == 0)
        return 0;
    int64_t now = shoal__now_ns();
    bool closed = atomic_load(&r->h->closed);
    if (!closed && now < atomic_load_explicit(&r->next_scan_ns, memory_order_relaxed))
        return SHOAL_EAGAIN;
    atomic_store_explicit(&r->next_scan_ns, now + SCAN_NS, memory_order_relaxed);
    bool found = false;
    struct mslot *s;
    size_t len;
    if (mc_scan(r, me, false, 0, &s, &len, &found) != SHOAL_EAGAIN || found) {
        atomic_store_explicit(
            &r->next_scan_ns, 0,
            memory_order_relaxed); /* the next get takes over what was found */
        return 0;
    }
    if (!closed)
        return SHOAL_EAGAIN;
    int st = mc_head_state(r, me); /* re-check after reading `closed`, as mc_take does */
    return st == 0 ? 0 : st == 1 ? SHOAL_EAGAIN : err_eof(r);
}

int shoal__ring_poll(shoal__ring *r, shoal_duration timeout, const shoal__ring_hook *hook)
{
    int rc = ring_wait(r, false, try_ready, NULL, timeout, hook);
    if (rc == 0)
        return 1;
    if (rc == SHOAL_EAGAIN || rc == SHOAL_ETIMEDOUT)
        return 0;
    if (rc == SHOAL_EEOF || rc == SHOAL_EPEERDEAD)
        return 1;
    return rc;
}

/* Writable: a free slot at the tail (a reservation racing there also counts: the
 * caller's try form settles it), or SHOAL_ECLOSED. */
static int try_room(shoal__ring *r, void *arg)
{
    (void)arg;
    if (is_spsc(r)) {
        uint64_t t = atomic_load_explicit(&r->h->tail, memory_order_relaxed);
        if (t & TAIL_SEAL)
            return err_closed(r);
        return sp_room(r, t, 1) ? 0 : SHOAL_EAGAIN;
    }
    if (atomic_load(&r->h->closed))
        return err_closed(r);
    uint64_t pos = atomic_load(&r->h->tail);
    uint64_t w = atomic_load(&((struct mslot *)slot_at(r, pos))->word);
    int32_t d = (int32_t)(w_seq(w) - (uint32_t)pos);
    return d < 0 || (d == 0 && (w & W_FULL)) ? SHOAL_EAGAIN : 0;
}

void shoal__ring_set_hook(shoal__ring *r, const shoal__ring_hook *hook)
{
    r->side[0].hook = r->side[1].hook = hook;
}

void shoal__ring_waitable(shoal__ring *r, bool writable, shoal__waitable *out)
{
    struct shoal__ring_waiter *w = &r->side[writable];
    *w = (struct shoal__ring_waiter){r, writable, writable ? try_room : try_ready, NULL,
                                     w->hook};
    *out = (shoal__waitable){ring_word(r, writable),
                             waiter_ready,
                             waiter_arm,
                             waiter_disarm,
                             w->hook ? waiter_check : NULL,
                             w};
}

void shoal__ring_shutdown(shoal__ring *r)
{
    atomic_store(&r->h->closed, 1);
    if (is_spsc(r))
        atomic_fetch_or(&r->h->tail, TAIL_SEAL);
    shoal__ring_wake_all(r);
}

/* The message in an MPMC slot at position pos if it is committed and unclaimed:
 * copied to buf (max_msg bytes), or -1. */
static long mc_copy_committed(const shoal__ring *r, uint64_t pos, unsigned char *buf)
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

int shoal__ring_inspect(const shoal__ring *r, size_t max,
                        void (*fn)(void *arg, const void *msg, size_t len), void *arg)
{
    unsigned char *buf = malloc(r->g.max_msg ? r->g.max_msg : 1);
    if (!buf)
        return SHOAL_ENOMEM;
    uint64_t hd = atomic_load(&r->h->head);
    uint64_t t = atomic_load(&r->h->tail) & ~TAIL_SEAL;
    size_t shown = 0;
    /* The indexes may be garbage: never more than one lap, whatever they say. */
    uint64_t n = t > hd ? t - hd : 0;
    if (n > r->g.capacity)
        n = r->g.capacity;
    for (uint64_t i = 0; i < n && shown < max; i++) {
        uint64_t pos = hd + i;
        long len = -1;
        if (is_spsc(r)) {
            const unsigned char *slot = slot_at(r, pos);
            size_t l = sp_len(r, slot);
            if (l <= r->g.max_msg) {
                copy_msg(buf, slot + r->g.data_off, l);
                len = (long)l;
            }
        } else {
            len = mc_copy_committed(r, pos, buf);
        }
        if (len >= 0) {
            fn(arg, buf, (size_t)len);
            shown++;
        }
    }
    free(buf);
    return 0;
}

void shoal__ring_stats(const shoal__ring *r, shoal_queue_stats *st)
{
    struct shoal__ringhdr *h = r->h;
    uint64_t skipped = atomic_load(&h->skipped);
    uint64_t hd = atomic_load(&h->head);
    uint64_t t = atomic_load(&h->tail) & ~TAIL_SEAL;
    memset(st, 0, sizeof(*st));
    st->capacity = r->g.capacity;
    st->depth = t > hd ? t - hd : 0;
    st->max_msg = r->g.max_msg;
    st->puts = t - skipped;
    st->gets = hd > skipped ? hd - skipped : 0;
    st->full_waits = atomic_load_explicit(&h->full_waits, memory_order_relaxed);
    st->empty_waits = atomic_load_explicit(&h->empty_waits, memory_order_relaxed);
    st->closed = atomic_load(&h->closed) != 0;
    st->spsc = is_spsc(r);
}

/* ---- segment glue shared with pipe.c ---------------------------------------------- */

/* The element type recorded for a variable-size channel: its size is max_msg, so a
 * mismatch on open names both maxima. */
void shoal__ring_bytes_type(shoal_type *t, uint32_t max_msg)
{
    static const char name[] = BYTES_TYPE;
    *t =
        (shoal_type){.name = name,
                     .layout_hash = shoal_fnv1a(SHOAL_FNV_OFFSET, name, sizeof(name) - 1),
                     .size = max_msg,
                     .align = 1};
}

void shoal__ring_spec(shoal__seg_spec *spec, const shoal__ring_geom *g, const char *what)
{
    spec->what = what;
    spec->count = g->capacity;
    spec->aux[0] = g->flags;
    spec->aux[1] = g->max_msg;
    spec->aux[2] = g->stride;
    spec->aux[3] = g->data_off;
}

int shoal__ring_geom_of(const shoal__seg *seg, const char *what, shoal__ring_geom *g)
{
    const struct shoal__header *h = seg->hdr;
    uint32_t flags = (uint32_t)h->aux[0];
    bool var = flags & SHOAL__RING_VAR;
    if ((flags & ~(SHOAL__RING_SPSC | SHOAL__RING_VAR)) || h->count == 0 ||
        h->count > MAX_CAPACITY || h->aux[1] == 0 || h->aux[1] > MAX_MSG ||
        (!var && h->elem_size != h->aux[1]))
        return shoal__err(SHOAL_ECORRUPT, "%s \"%s\": header fails validation (corrupt)",
                          what, seg->name);
    geom_compute(g, flags, (uint32_t)h->count, (uint32_t)h->aux[1],
                 var ? 8 : h->elem_align, var ? 0 : (uint32_t)h->elem_size);
    if (g->stride != h->aux[2] || g->data_off != h->aux[3])
        return shoal__err(SHOAL_ECORRUPT, "%s \"%s\": header fails validation (corrupt)",
                          what, seg->name);
    return 0;
}

/* Checks an existing channel against what the caller asked for (type and max_msg were
 * checked by the segment layer when given). The ring's mode (spsc) and capacity are
 * creation parameters: an opener takes the channel as it was made. */
int shoal__ring_check_cfg(const shoal__ring_geom *g, const shoal_queue_config *cfg,
                          const char *what, const char *name)
{
    if (!cfg)
        return 0;
    bool var = g->flags & SHOAL__RING_VAR;
    if (!cfg->type && !var)
        return shoal__err(
            SHOAL_ELAYOUT,
            "%s \"%s\": layout mismatch: it holds fixed-size elements of %u "
            "bytes, caller expects variable-size messages",
            what, name, g->elem_size);
    return 0;
}
