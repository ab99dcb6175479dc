/*
 * value.c — Value: one typed scalar or struct in shared memory.
 *
 * Payload: the control block (lock, seqlock word), then the value. A scalar has one
 * slot, read and written with single atomic loads and stores, so it never tears and
 * atomics need no lock. A struct has two slots: a writer fills the inactive one and
 * then flips the sequence word, so readers of a snapshot never wait for writers and
 * a writer that dies half way leaves the published value intact.
 *
 * Sequence word: low 32 bits count writes (odd: a write is in progress; the active
 * slot is (count >> 1) & 1), high 32 bits hold the writer's owner id (owner.c, the
 * encoding queue slots and pipe ends use) during a write, so a writer whose process
 * is gone is detected and its write rolled back.
 */
#include <stdlib.h>
#include <string.h>

#include "wait.h"

#define VALUE_MAX (1u << 30) /* largest element, bytes */

struct shoal_value {
    shoal__seg *seg;
    struct shoal__objctl *ctl;
    shoal_type type; /* the caller's type, or the segment's when opened without one */
    shoal_lock *lock;
    bool own_lock;
    bool scalar;
    unsigned char *slot[2];
    uint64_t claimed; /* sequence word taken by shoal_value_modify, 0 if none */
};

static size_t align_up(size_t n, size_t a)
{
    return (n + a - 1) & ~(a - 1);
}

static size_t slot_stride(const shoal_type *t)
{
    return align_up(t->size, t->align ? t->align : 1);
}

static size_t value_payload(const shoal_type *t, bool scalar)
{
    size_t first = align_up(sizeof(struct shoal__objctl), t->align ? t->align : 1);
    return first + slot_stride(t) * (scalar ? 1 : 2);
}

struct value_init {
    const shoal_type *type;
    const void *init;
    bool scalar;
};

static int value_init_cb(shoal__seg *seg, void *arg)
{
    struct value_init *vi = arg;
    int rc = shoal__objlock_init(seg);
    if (rc)
        return rc;
    size_t first = align_up(sizeof(struct shoal__objctl), vi->type->align);
    if (vi->init)
        memcpy(seg->payload + first, vi->init, vi->type->size);
    return 0;
}

int shoal_value_open(shoal_value **out, const char *name, int mode,
                     const shoal_type *type, const void *init, const shoal_attr *attr)
{
    if (!out)
        return shoal__err(SHOAL_EINVAL, "value: NULL output pointer");
    *out = NULL;
    int rc;
    if ((type || mode != SHOAL_OPEN) &&
        (rc = shoal__type_check(type, "value", name, VALUE_MAX)))
        return rc;
    shoal_value *v = calloc(1, sizeof(*v));
    if (!v)
        return shoal__err(SHOAL_ENOMEM, "out of memory");
    struct value_init vi = {type, init, type && type->typecode != 0};
    shoal__seg_spec spec = {
        .kind = SHOAL_KIND_VALUE,
        .what = "value",
        .type = type,
        .count = 1,
        .payload_size = type ? value_payload(type, vi.scalar) : 0,
        .init = value_init_cb,
        .arg = &vi,
    };
    if ((rc = shoal__objlock_spec(&spec, attr)) ||
        (rc = shoal__seg_open(&v->seg, name, mode, &spec, attr))) {
        free(v);
        return rc;
    }
    if (type)
        v->type = *type;
    else if ((rc = shoal__seg_type(v->seg, "value", &v->type)))
        goto fail;
    v->scalar = v->type.typecode != 0;
    if (v->seg->hdr->payload_size < value_payload(&v->type, v->scalar)) {
        rc = shoal__err(SHOAL_ECORRUPT, "value \"%s\": payload too small", v->seg->name);
        goto fail;
    }
    v->ctl = (struct shoal__objctl *)v->seg->payload;
    v->slot[0] = v->seg->payload + align_up(sizeof(struct shoal__objctl), v->type.align);
    v->slot[1] = v->slot[0] + slot_stride(&v->type);
    if ((rc = shoal__objlock_resolve(v->seg, attr, &v->lock, &v->own_lock)))
        goto fail;
    *out = v;
    return 0;
fail:
    shoal__seg_close(v->seg);
    free(v);
    return rc;
}

int shoal_value_close(shoal_value *v)
{
    if (!v)
        return SHOAL_EINVAL;
    shoal__objlock_close(v->lock, v->own_lock);
    shoal__seg_close(v->seg);
    free(v);
    return 0;
}

const char *shoal_value_name(const shoal_value *v)
{
    return v->seg->name;
}

const shoal_type *shoal_value_type(const shoal_value *v)
{
    return &v->type;
}

shoal_lock *shoal_value_get_lock(shoal_value *v)
{
    return v->lock;
}

/* ---- scalars: single atomic loads and stores ----------------------------------------
 */

static void scalar_load(const shoal_value *v, void *out)
{
    switch (v->type.size) {
    case 1: {
        uint8_t x = __atomic_load_n((uint8_t *)v->slot[0], __ATOMIC_ACQUIRE);
        memcpy(out, &x, 1);
        break;
    }
    case 2: {
        uint16_t x = __atomic_load_n((uint16_t *)v->slot[0], __ATOMIC_ACQUIRE);
        memcpy(out, &x, 2);
        break;
    }
    case 4: {
        uint32_t x = __atomic_load_n((uint32_t *)v->slot[0], __ATOMIC_ACQUIRE);
        memcpy(out, &x, 4);
        break;
    }
    default: {
        uint64_t x = __atomic_load_n((uint64_t *)v->slot[0], __ATOMIC_ACQUIRE);
        memcpy(out, &x, 8);
        break;
    }
    }
}

static void scalar_store(shoal_value *v, const void *in)
{
    uint64_t x = 0;
    memcpy(&x, in, v->type.size);
    switch (v->type.size) {
    case 1:
        __atomic_store_n((uint8_t *)v->slot[0], (uint8_t)x, __ATOMIC_RELEASE);
        break;
    case 2:
        __atomic_store_n((uint16_t *)v->slot[0], (uint16_t)x, __ATOMIC_RELEASE);
        break;
    case 4:
        __atomic_store_n((uint32_t *)v->slot[0], (uint32_t)x, __ATOMIC_RELEASE);
        break;
    default:
        __atomic_store_n((uint64_t *)v->slot[0], x, __ATOMIC_RELEASE);
        break;
    }
}

/* ---- structs: the two-slot seqlock --------------------------------------------------
 */

#define SEQ_COUNT(s) ((uint32_t)(s))
#define SEQ_OWNER(s) ((uint32_t)((s) >> 32))

/* The seqlock's count half, the futex word a writer waiting for another sleeps on. */
static inline _Atomic uint32_t *seq_word(shoal_value *v)
{
    _Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "count is the low half");
    return (_Atomic uint32_t *)(void *)&v->ctl->seq;
}

/* A writer waiting for the writer role, as a shoal__waitable. */
struct writer_wait {
    shoal_value *v;
    uint64_t from; /* the even word the claim started from */
};

static int writer_claim(void *obj)
{
    struct writer_wait *w = obj;
    uint64_t me = shoal__seg_owner(w->v->seg);
    uint64_t s = atomic_load_explicit(&w->v->ctl->seq, memory_order_relaxed);
    while (!(SEQ_COUNT(s) & 1)) {
        uint64_t mine = (me << 32) | (uint32_t)(SEQ_COUNT(s) + 1);
        if (atomic_compare_exchange_weak_explicit(
                &w->v->ctl->seq, &s, mine, memory_order_acquire, memory_order_relaxed)) {
            w->from = s;
            return 1;
        }
    }
    return 0;
}

static uint32_t writer_arm(void *obj)
{
    atomic_fetch_add(&((struct writer_wait *)obj)->v->ctl->writer_sleepers, 1);
    return 0;
}

static void writer_disarm(void *obj, uint32_t token)
{
    (void)token;
    atomic_fetch_sub(&((struct writer_wait *)obj)->v->ctl->writer_sleepers, 1);
}

/* A write left unfinished by a process that is gone is rolled back: its slot was
 * never published. */
static int writer_check(void *obj)
{
    struct writer_wait *w = obj;
    uint64_t s = atomic_load(&w->v->ctl->seq);
    if ((SEQ_COUNT(s) & 1) && !shoal__owner_alive(w->v->seg, SEQ_OWNER(s)) &&
        atomic_compare_exchange_strong(&w->v->ctl->seq, &s, (uint32_t)(SEQ_COUNT(s) - 1)))
        shoal__seg_note_owner_died(w->v->seg);
    return writer_claim(obj);
}

/* Claims the writer role: returns the (even) sequence word it started from. Waits
 * while another live thread writes (a write is short and never blocks). */
static uint64_t claim_writer(shoal_value *v)
{
    struct writer_wait w = {v, 0};
    if (SHOAL_LIKELY(writer_claim(&w)))
        return w.from;
    shoal__waitable wt = {seq_word(v),  writer_claim, writer_arm, writer_disarm,
                          writer_check, &w,           NULL};
    shoal__deadline forever = shoal__deadline_from(SHOAL_FOREVER);
    shoal__wait(&wt, &forever);
    return w.from;
}

static unsigned char *inactive_slot(const shoal_value *v, uint64_t claimed_from)
{
    return v->slot[1 - ((SEQ_COUNT(claimed_from) >> 1) & 1)];
}

static void publish(shoal_value *v, uint64_t claimed_from)
{
    atomic_store_explicit(&v->ctl->seq, (uint32_t)(SEQ_COUNT(claimed_from) + 2),
                          memory_order_release);
    if (SHOAL_UNLIKELY(atomic_load(&v->ctl->writer_sleepers)))
        shoal__futex_wake(seq_word(v), INT_MAX);
}

static void struct_snapshot(shoal_value *v, void *out)
{
    for (;;) {
        uint64_t s1 = atomic_load_explicit(&v->ctl->seq, memory_order_acquire);
        uint32_t c1 = SEQ_COUNT(s1);
        memcpy(out, v->slot[(c1 >> 1) & 1], v->type.size);
        atomic_thread_fence(memory_order_acquire);
        uint32_t c2 = SEQ_COUNT(atomic_load_explicit(&v->ctl->seq, memory_order_relaxed));
        /* The slot read is overwritten only by the write after next: it started once
         * the count passed (c1 & ~1) + 2. */
        if ((uint32_t)(c2 - (c1 & ~1u)) <= 2)
            return;
        shoal__cpu_relax();
    }
}

/* ---- operations ---------------------------------------------------------------------
 */

int shoal_value_snapshot(shoal_value *v, void *out)
{
    if (v->scalar)
        scalar_load(v, out);
    else
        struct_snapshot(v, out);
    return 0;
}

int shoal_value_read_timed(shoal_value *v, void *out, shoal_duration timeout)
{
    bool taken;
    int rc = shoal__objlock_acquire_for(v->seg, v->lock, timeout, &taken);
    if (rc == SHOAL_ETIMEDOUT || rc == SHOAL_EAGAIN) {
        int32_t holder;
        shoal_lock_state(v->lock, NULL, &holder, NULL);
        return shoal__err(SHOAL_ETIMEDOUT,
                          "value \"%s\" read: timed out waiting for its lock, held by "
                          "live thread %d",
                          v->seg->name, (int)holder);
    }
    shoal_value_snapshot(v, out);
    shoal__objlock_release(v->lock, taken);
    return 0;
}

int shoal_value_read(shoal_value *v, void *out)
{
    return shoal_value_read_timed(v, out, SHOAL_FOREVER);
}

int shoal_value_write(shoal_value *v, const void *in)
{
    bool taken = shoal__objlock_acquire(v->seg, v->lock);
    if (v->scalar) {
        scalar_store(v, in);
    } else {
        uint64_t s = claim_writer(v);
        unsigned char *dst = inactive_slot(v, s);
        size_t half = v->type.size / 2;
        memcpy(dst, in, half);
        shoal__test_point("value.write"); /* a test kills the writer here */
        memcpy(dst + half, (const unsigned char *)in + half, v->type.size - half);
        publish(v, s);
    }
    shoal__objlock_release(v->lock, taken);
    return 0;
}

void *shoal_value_modify(shoal_value *v)
{
    if (v->scalar)
        return v->slot[0];
    uint64_t s = claim_writer(v);
    v->claimed = s | (1ULL << 63); /* bit 63 marks "claimed" even when s is 0 */
    unsigned char *dst = inactive_slot(v, s);
    memcpy(dst, v->slot[(SEQ_COUNT(s) >> 1) & 1], v->type.size);
    return dst;
}

int shoal_value_commit(shoal_value *v)
{
    if (v->scalar)
        return 0;
    if (!v->claimed)
        return shoal__err(SHOAL_EINVAL, "value \"%s\": commit without modify",
                          v->seg->name);
    publish(v, v->claimed & ~(1ULL << 63));
    v->claimed = 0;
    return 0;
}

void *shoal_value_data(shoal_value *v)
{
    if (v->scalar)
        return v->slot[0];
    uint64_t s = atomic_load_explicit(&v->ctl->seq, memory_order_acquire);
    return v->slot[(SEQ_COUNT(s) >> 1) & 1];
}

/* ---- integer atomics ----------------------------------------------------------------
 */

static int need_integer(const shoal_value *v)
{
    char c = v->type.typecode;
    if (!c || c == 'f' || c == 'd')
        return shoal__err(SHOAL_ETYPE,
                          "value \"%s\": atomic operations need an integer "
                          "typecode, the value holds %s",
                          v->seg->name, v->type.name);
    return 0;
}

/* Sign- or zero-extends the raw bits of an element of typecode c. */
int64_t shoal__extend(char c, uint64_t raw)
{
    switch (c) {
    case 'b':
        return (int8_t)raw;
    case 'h':
        return (int16_t)raw;
    case 'i':
        return (int32_t)raw;
    case 'B':
    case 'c':
        return (uint8_t)raw;
    case 'H':
        return (uint16_t)raw;
    case 'I':
        return (uint32_t)raw;
    default:
        return (int64_t)raw;
    }
}

enum atomic_op { OP_ADD, OP_XCHG };

/* Applies op to the integer at p of `size` bytes; returns the raw previous bits. */
uint64_t shoal__atomic_rmw(void *p, uint32_t size, int op, uint64_t arg)
{
    switch (size) {
    case 1:
        return op == OP_ADD
                   ? __atomic_fetch_add((uint8_t *)p, (uint8_t)arg, __ATOMIC_SEQ_CST)
                   : __atomic_exchange_n((uint8_t *)p, (uint8_t)arg, __ATOMIC_SEQ_CST);
    case 2:
        return op == OP_ADD
                   ? __atomic_fetch_add((uint16_t *)p, (uint16_t)arg, __ATOMIC_SEQ_CST)
                   : __atomic_exchange_n((uint16_t *)p, (uint16_t)arg, __ATOMIC_SEQ_CST);
    case 4:
        return op == OP_ADD
                   ? __atomic_fetch_add((uint32_t *)p, (uint32_t)arg, __ATOMIC_SEQ_CST)
                   : __atomic_exchange_n((uint32_t *)p, (uint32_t)arg, __ATOMIC_SEQ_CST);
    default:
        return op == OP_ADD ? __atomic_fetch_add((uint64_t *)p, arg, __ATOMIC_SEQ_CST)
                            : __atomic_exchange_n((uint64_t *)p, arg, __ATOMIC_SEQ_CST);
    }
}

static bool atomic_cas(void *p, uint32_t size, uint64_t *expected, uint64_t desired)
{
    switch (size) {
    case 1: {
        uint8_t e = (uint8_t)*expected;
        bool ok = __atomic_compare_exchange_n((uint8_t *)p, &e, (uint8_t)desired, false,
                                              __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
        *expected = e;
        return ok;
    }
    case 2: {
        uint16_t e = (uint16_t)*expected;
        bool ok = __atomic_compare_exchange_n((uint16_t *)p, &e, (uint16_t)desired, false,
                                              __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
        *expected = e;
        return ok;
    }
    case 4: {
        uint32_t e = (uint32_t)*expected;
        bool ok = __atomic_compare_exchange_n((uint32_t *)p, &e, (uint32_t)desired, false,
                                              __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
        *expected = e;
        return ok;
    }
    default:
        return __atomic_compare_exchange_n((uint64_t *)p, expected, desired, false,
                                           __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    }
}

int shoal_value_add(shoal_value *v, int64_t delta, int64_t *old)
{
    int rc = need_integer(v);
    if (rc)
        return rc;
    uint64_t prev = shoal__atomic_rmw(v->slot[0], v->type.size, OP_ADD, (uint64_t)delta);
    if (old)
        *old = shoal__extend(v->type.typecode, prev);
    return 0;
}

int shoal_value_exchange(shoal_value *v, int64_t desired, int64_t *old)
{
    int rc = need_integer(v);
    if (rc)
        return rc;
    uint64_t prev =
        shoal__atomic_rmw(v->slot[0], v->type.size, OP_XCHG, (uint64_t)desired);
    if (old)
        *old = shoal__extend(v->type.typecode, prev);
    return 0;
}

int shoal_value_cas(shoal_value *v, int64_t *expected, int64_t desired)
{
    int rc = need_integer(v);
    if (rc)
        return rc;
    if (!expected)
        return shoal__err(SHOAL_EINVAL, "value \"%s\": cas needs expected", v->seg->name);
    uint64_t e = (uint64_t)*expected;
    bool ok = atomic_cas(v->slot[0], v->type.size, &e, (uint64_t)desired);
    *expected = shoal__extend(v->type.typecode, e);
    return ok ? 0 : SHOAL_EAGAIN;
}

int shoal_value_load(shoal_value *v, int64_t *out)
{
    int rc = need_integer(v);
    if (rc)
        return rc;
    uint64_t raw = 0;
    scalar_load(v, &raw);
    *out = shoal__extend(v->type.typecode, raw);
    return 0;
}

int shoal_value_store(shoal_value *v, int64_t in)
{
    int rc = need_integer(v);
    if (rc)
        return rc;
    uint64_t raw = (uint64_t)in;
    scalar_store(v, &raw);
    return 0;
}
