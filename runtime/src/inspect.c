/*
 * inspect.c — the public inspection API (shoal/inspect.h): any object, read-only.
 *
 * An inspection handle is a segment opened without expectations (any kind, any
 * type), so only the generic header checks of segment.c have run. Everything a kind
 * adds is validated here, lazily, by the call that needs it, against the mapping:
 *
 *  - primitives (lock, semaphore, condition, event, barrier): the payload must hold
 *    the primitive's struct and its magic must say it was initialised; the state is
 *    then read through the primitives' own accessors;
 *  - Value and Array: the element size must be non-zero, the payload must hold
 *    count x size (computed without overflow) plus the control block; elements are
 *    then copied through the public Value/Array API (a snapshot for a Value), opened
 *    with no expected type;
 *  - the element type: a scalar's name must go with its size; a layout descriptor
 *    must decode (layout.c checks every length, offset and reference and bounds the
 *    expanded size) and describe exactly the header's size, alignment, name and
 *    hash, so a value is never printed through a description larger than its bytes;
 *  - channels: the geometry recorded in the header must recompute to itself and the
 *    ring headers must match it (queue.c / pipe.c); a ring whose indexes claim more
 *    messages than it has slots is reported as damaged and not iterated.
 *
 * Formatting goes through the library's one value printer (layout.c) into a bounded
 * sink that counts what does not fit, so no output is ever larger than the caller's
 * buffer however large the value.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "queue_internal.h"
#include "shoal/inspect.h"

#define HEX_MAX 64 /* bytes shown of a message that is not decoded */

struct shoal_inspect {
    shoal__seg *seg;
    char *root, *domain; /* copies of the caller's attr, for opening elements */
    bool type_ok;        /* type holds the validated element type */
    shoal_type *decoded; /* the descriptor's type tree (malloc'ed), or NULL */
    shoal_type type;     /* the element type shown by shoal_inspect_type */
    bool rings_ok;       /* ring[] are attached (a failure is retried, so that each
                          * call reports its own detail message) */
    int nrings;
    shoal__ring ring[2];
    shoal__pipe_end_view end[2];
};

static const char *iname(const shoal_inspect *in)
{
    return in->seg->name;
}

static const char *kind_of(const shoal_inspect *in)
{
    return shoal_kind_name((int)in->seg->hdr->kind);
}

static int corrupt(const shoal_inspect *in, const char *what)
{
    return shoal__err(SHOAL_ECORRUPT, "%s \"%s\": %s (corrupt)", kind_of(in), iname(in),
                      what);
}

static int wrong_kind(const shoal_inspect *in, const char *has)
{
    return shoal__err(SHOAL_EKIND, "\"%s\" is a %s: it has no %s", iname(in), kind_of(in),
                      has);
}

#define CHECK_HANDLE(in, out)                                                            \
    do {                                                                                 \
        if (!(in) || !(out))                                                             \
            return shoal__err(SHOAL_EINVAL, "inspect: NULL argument");                   \
        shoal__err_clear();                                                              \
    } while (0)

/* ---- open, header, users ------------------------------------------------------------
 */

static char *dup_or_null(const char *s, bool *failed)
{
    char *d = s ? strdup(s) : NULL;
    if (s && !d)
        *failed = true;
    return d;
}

int shoal_inspect_open(shoal_inspect **out, const char *name, const shoal_attr *attr)
{
    if (!out)
        return shoal__err(SHOAL_EINVAL, "inspect: NULL output pointer");
    *out = NULL;
    shoal_inspect *in = calloc(1, sizeof(*in));
    if (!in)
        return shoal__err(SHOAL_ENOMEM, "inspect: out of memory");
    bool failed = false;
    in->root = dup_or_null(attr ? attr->root : NULL, &failed);
    in->domain = dup_or_null(attr ? attr->domain : NULL, &failed);
    shoal_attr a = {.root = in->root, .domain = in->domain};
    int rc = failed ? shoal__err(SHOAL_ENOMEM, "inspect: out of memory")
                    : shoal__seg_open(&in->seg, name, SHOAL_OPEN, NULL, &a);
    if (rc) {
        free(in->root);
        free(in->domain);
        free(in);
        return rc;
    }
    *out = in;
    return 0;
}

int shoal_inspect_close(shoal_inspect *in)
{
    if (!in)
        return shoal__err(SHOAL_EINVAL, "inspect: NULL handle");
    shoal__seg_close(in->seg);
    free(in->decoded);
    free(in->root);
    free(in->domain);
    free(in);
    return 0;
}

const char *shoal_inspect_path(const shoal_inspect *in)
{
    return in ? in->seg->path : NULL;
}

int shoal_inspect_header_get(shoal_inspect *in, shoal_inspect_header *out)
{
    CHECK_HANDLE(in, out);
    const struct shoal__header *h = in->seg->hdr;
    struct stat st;
    memset(out, 0, sizeof(*out));
    snprintf(out->name, sizeof(out->name), "%s", in->seg->name);
    out->kind = (int)h->kind;
    snprintf(out->type_name, sizeof(out->type_name), "%s", h->type_name);
    out->layout_hash = h->layout_hash;
    out->elem_size = h->elem_size;
    out->elem_align = h->elem_align;
    out->format_version = h->version;
    out->count = h->count;
    out->file_size = h->file_size;
    out->header_size = h->header_size;
    out->payload_size = h->payload_size;
    out->file_mode = fstat(in->seg->fd, &st) == 0 ? (unsigned)st.st_mode & 07777 : 0;
    out->creator_pid = h->creator_pid;
    out->creator_uid = h->creator_uid;
    out->creator_alive = shoal__proc_alive(h->creator_pid, h->creator_start);
    out->created_ns = h->created_ns;
    out->anonymous = (h->flags & SHOAL_SEG_ANON) != 0;
    out->owner_died = atomic_load(&in->seg->hdr->owner_died);
    out->desc_size = h->desc_size;
    return 0;
}

int shoal_inspect_users(shoal_inspect *in, shoal_inspect_user *users, size_t max)
{
    if (!in || (!users && max))
        return shoal__err(SHOAL_EINVAL, "inspect: NULL argument");
    int n = 0;
    for (int i = 0; i < SHOAL_MAX_USERS; i++) {
        struct shoal__user *u = &in->seg->hdr->users[i];
        int32_t pid = atomic_load(&u->pid);
        if (pid == 0 || i == in->seg->user_slot)
            continue;
        if ((size_t)n < max) {
            users[n].pid = pid;
            users[n].start = atomic_load(&u->start);
            users[n].alive = shoal__proc_alive(pid, users[n].start);
        }
        n++;
    }
    return n;
}

/* ---- primitives -------------------------------------------------------------------- */

/* The primitive at the start of the payload, or NULL (with the error in *rc) when the
 * payload cannot hold `size` bytes. */
static void *payload_prim(shoal_inspect *in, size_t size, int *rc)
{
    if (in->seg->hdr->payload_size < size) {
        *rc = corrupt(in, "payload too small for its kind");
        return NULL;
    }
    return in->seg->payload;
}

/* After reading a primitive through its accessors (which refuse an uninitialised one,
 * leaving a detail message, and report nothing): 0 or SHOAL_ECORRUPT. */
static int prim_read_ok(shoal_inspect *in)
{
    return *shoal_errdetail() ? corrupt(in, "not initialised") : 0;
}

static int lock_read(shoal_inspect *in, shoal_lock *lock, shoal_inspect_lock *out)
{
    shoal__err_clear();
    int died = shoal_lock_holder_died(lock);
    shoal_lock_state(lock, &out->recursive, &out->holder_tid, &out->depth);
    int rc = prim_read_ok(in);
    if (rc)
        return rc;
    if (out->holder_tid)
        out->state = shoal__tid_alive(out->holder_tid) ? SHOAL_LOCKSTATE_HELD
                                                       : SHOAL_LOCKSTATE_HELD_DEAD;
    else
        out->state = died ? SHOAL_LOCKSTATE_OWNER_DIED : SHOAL_LOCKSTATE_FREE;
    return 0;
}

/* The lock of a Value or Array, as recorded in aux[] (see objlock.c). */
static int objlock_read(shoal_inspect *in, shoal_inspect_lock *out)
{
    const struct shoal__header *h = in->seg->hdr;
    int rc = 0;
    switch (h->aux[0]) {
    case SHOAL_LOCK_NONE:
        out->state = SHOAL_LOCKSTATE_NONE;
        return 0;
    case SHOAL_LOCK_CALLER:
        out->state = SHOAL_LOCKSTATE_CALLER;
        out->lock_kind = (int)h->aux[1];
        snprintf(out->lock_name, sizeof(out->lock_name), "%.*s",
                 (int)strnlen(h->aux_name, sizeof(h->aux_name)), h->aux_name);
        return 0;
    case SHOAL_LOCK_RLOCK: {
        struct shoal__objctl *ctl = payload_prim(in, sizeof(*ctl), &rc);
        return ctl ? lock_read(in, &ctl->lock, out) : rc;
    }
    default:
        return corrupt(in, "unknown lock mode");
    }
}

int shoal_inspect_lock_get(shoal_inspect *in, shoal_inspect_lock *out)
{
    CHECK_HANDLE(in, out);
    memset(out, 0, sizeof(*out));
    int rc = 0;
    switch (in->seg->hdr->kind) {
    case SHOAL_KIND_LOCK:
    case SHOAL_KIND_RLOCK: {
        shoal_lock *lock = payload_prim(in, sizeof(shoal_lock), &rc);
        return lock ? lock_read(in, lock, out) : rc;
    }
    case SHOAL_KIND_VALUE:
    case SHOAL_KIND_ARRAY:
        return objlock_read(in, out);
    default:
        return wrong_kind(in, "lock");
    }
}

int shoal_inspect_sync_get(shoal_inspect *in, shoal_inspect_sync *out)
{
    CHECK_HANDLE(in, out);
    memset(out, 0, sizeof(*out));
    int rc = 0;
    void *p;
    switch (in->seg->hdr->kind) {
    case SHOAL_KIND_SEMAPHORE:
    case SHOAL_KIND_BOUNDED_SEMAPHORE:
        if ((p = payload_prim(in, sizeof(shoal_sem), &rc)))
            out->value = shoal_sem_value(p);
        break;
    case SHOAL_KIND_EVENT:
        if ((p = payload_prim(in, sizeof(shoal_event), &rc)))
            out->set = shoal_event_is_set(p);
        break;
    case SHOAL_KIND_BARRIER:
        if ((p = payload_prim(in, sizeof(shoal_barrier), &rc)))
            shoal_barrier_state(p, &out->parties, &out->waiting, &out->broken);
        break;
    case SHOAL_KIND_CONDITION:
        if ((p = payload_prim(in, sizeof(shoal_cond), &rc)))
            out->waiters = shoal__cond_waiters(p);
        break;
    default:
        return wrong_kind(in, "synchronisation state");
    }
    return rc ? rc : prim_read_ok(in);
}

/* ---- channels ---------------------------------------------------------------------- */

/* Attaches the rings (once they are, for good). Returns 0 or the error. */
static int rings_attach(shoal_inspect *in)
{
    if (in->rings_ok)
        return 0;
    shoal__seg *seg = in->seg;
    shoal__ring_geom g;
    int rc;
    if (seg->hdr->kind == SHOAL_KIND_QUEUE) {
        in->nrings = 1;
        if (!(rc = shoal__ring_geom_of(seg, "queue", &g)))
            rc = shoal__ring_attach(&in->ring[0], seg, seg->payload,
                                    seg->hdr->payload_size, &g, "queue", seg->name);
    } else if (seg->hdr->kind == SHOAL_KIND_PIPE) {
        in->nrings = 2;
        rc = shoal__pipe_view(seg, in->ring, in->end);
    } else {
        return wrong_kind(in, "messages");
    }
    in->rings_ok = rc == 0;
    return rc;
}

int shoal_inspect_rings(shoal_inspect *in)
{
    if (!in)
        return shoal__err(SHOAL_EINVAL, "inspect: NULL handle");
    shoal__err_clear();
    int rc = rings_attach(in);
    return rc ? rc : in->nrings;
}

/* The attached ring `ring`, or NULL with the error in *rc. */
static shoal__ring *ring_at(shoal_inspect *in, int ring, int *rc)
{
    if ((*rc = rings_attach(in)))
        return NULL;
    if (ring < 0 || ring >= in->nrings) {
        *rc = shoal__err(SHOAL_ERANGE, "%s \"%s\": no ring %d (it has %d)", kind_of(in),
                         iname(in), ring, in->nrings);
        return NULL;
    }
    return &in->ring[ring];
}

int shoal_inspect_ring_stats(shoal_inspect *in, int ring, shoal_queue_stats *st)
{
    CHECK_HANDLE(in, st);
    int rc;
    shoal__ring *r = ring_at(in, ring, &rc);
    if (!r)
        return rc;
    shoal__ring_stats(r, st);
    if (st->depth > st->capacity)
        return shoal__err(
            SHOAL_ECORRUPT,
            "%s \"%s\": ring %d: its indexes say %llu messages are queued in "
            "%llu slots (corrupt)",
            kind_of(in), iname(in), ring, (unsigned long long)st->depth,
            (unsigned long long)st->capacity);
    return 0;
}

struct visit {
    void (*fn)(void *arg, const void *msg, size_t len);
    void *arg;
    int n;
};

static void visit_one(void *arg, const void *msg, size_t len)
{
    struct visit *v = arg;
    v->n++;
    v->fn(v->arg, msg, len);
}

int shoal_inspect_messages(shoal_inspect *in, int ring, size_t max,
                           void (*fn)(void *arg, const void *msg, size_t len), void *arg)
{
    CHECK_HANDLE(in, fn);
    shoal_queue_stats st;
    int rc = shoal_inspect_ring_stats(in, ring, &st);
    if (rc)
        return rc;
    struct visit v = {fn, arg, 0};
    if (max > INT32_MAX)
        max = INT32_MAX;
    if ((rc = shoal__ring_inspect(&in->ring[ring], max, visit_one, &v)))
        return shoal__err(rc, "%s \"%s\": %s", kind_of(in), iname(in),
                          shoal_strerror(rc));
    return v.n;
}

int shoal_inspect_pipe_end(shoal_inspect *in, int end, shoal_inspect_end *out)
{
    CHECK_HANDLE(in, out);
    if (in->seg->hdr->kind != SHOAL_KIND_PIPE)
        return wrong_kind(in, "pipe ends");
    int rc = rings_attach(in);
    if (rc)
        return rc;
    if (end != 0 && end != 1)
        return shoal__err(SHOAL_ERANGE, "pipe \"%s\": no end %d", iname(in), end);
    const shoal__pipe_end_view *e = &in->end[end];
    *out = (shoal_inspect_end){e->opened, e->pid, e->alive, e->closed};
    return 0;
}

/* ---- the element type -------------------------------------------------------------- */

/* Decodes the layout descriptor and checks that it describes the header's type. */
static int type_from_desc(shoal_inspect *in)
{
    const struct shoal__header *h = in->seg->hdr;
    if (h->desc_size > SHOAL_DESC_MAX)
        return corrupt(in, "layout descriptor size over the header page");
    if (shoal__layout_decode(h->desc, h->desc_size, &in->decoded))
        return shoal__err(SHOAL_ECORRUPT, "%s \"%s\": %s (corrupt)", kind_of(in),
                          iname(in), shoal_errdetail());
    const shoal_type *t = in->decoded;
    if (t->size != h->elem_size || t->align != h->elem_align ||
        t->layout_hash != h->layout_hash || strcmp(t->name, h->type_name) != 0)
        return shoal__err(
            SHOAL_ECORRUPT,
            "%s \"%s\": layout descriptor describes %s (%u bytes, align %u), "
            "the header %s (%llu bytes, align %u) (corrupt)",
            kind_of(in), iname(in), t->name, t->size, t->align, h->type_name,
            (unsigned long long)h->elem_size, h->elem_align);
    in->type = *t;
    return 0;
}

static int type_decode(shoal_inspect *in)
{
    const struct shoal__header *h = in->seg->hdr;
    switch (h->kind) {
    case SHOAL_KIND_VALUE:
    case SHOAL_KIND_ARRAY:
    case SHOAL_KIND_QUEUE:
    case SHOAL_KIND_PIPE:
        break;
    default:
        return wrong_kind(in, "element type");
    }
    if (h->elem_size == 0 || h->elem_size > UINT32_MAX || h->elem_align > 64)
        return corrupt(in, "element size 0, over 4 GiB, or alignment over 64");
    shoal__type_from_header(&in->type, h);
    if (in->type.typecode && in->type.size != h->elem_size)
        return corrupt(in, "a scalar type with another element size");
    if (!in->type.typecode && h->desc_size)
        return type_from_desc(in);
    return 0;
}

int shoal_inspect_type(shoal_inspect *in, const shoal_type **out)
{
    CHECK_HANDLE(in, out);
    *out = NULL;
    if (!in->type_ok) {
        free(in->decoded);
        in->decoded = NULL;
        int rc = type_decode(in);
        if (rc)
            return rc;
        in->type_ok = true;
    }
    *out = &in->type;
    return 0;
}

/* ---- elements and bytes ------------------------------------------------------------ */

/* The Value or Array payload can hold count elements and the control block. */
static int elements_fit(shoal_inspect *in, const shoal_type *t)
{
    const struct shoal__header *h = in->seg->hdr;
    uint64_t bytes;
    if (__builtin_mul_overflow(h->count, (uint64_t)t->size, &bytes) ||
        bytes > h->payload_size || h->payload_size - bytes < sizeof(struct shoal__objctl))
        return corrupt(in, "payload too small for its elements");
    return 0;
}

static int value_copy(shoal_inspect *in, void *buf, const shoal_attr *a)
{
    shoal_value *v;
    int rc = shoal_value_open(&v, iname(in), SHOAL_OPEN, NULL, NULL, a);
    if (rc)
        return rc;
    shoal_value_snapshot(v, buf);
    shoal_value_close(v);
    return 1;
}

static int array_copy(shoal_inspect *in, size_t first, void *buf, size_t max,
                      const shoal_attr *a)
{
    shoal_array *arr;
    int rc = shoal_array_open(&arr, iname(in), SHOAL_OPEN, NULL, 0, NULL, a);
    if (rc)
        return rc;
    size_t n = shoal_array_len(arr), size = shoal_array_type(arr)->size;
    if (first > n) {
        shoal_array_close(arr);
        return shoal__err(SHOAL_ERANGE, "array \"%s\": element %zu of %zu", iname(in),
                          first, n);
    }
    if (max > n - first)
        max = n - first;
    memcpy(buf, (unsigned char *)shoal_array_data(arr) + first * size, max * size);
    shoal_array_close(arr);
    return (int)(max < INT32_MAX ? max : INT32_MAX);
}

int shoal_inspect_elements(shoal_inspect *in, size_t first, void *buf, size_t max)
{
    CHECK_HANDLE(in, buf);
    uint32_t kind = in->seg->hdr->kind;
    if (kind != SHOAL_KIND_VALUE && kind != SHOAL_KIND_ARRAY)
        return wrong_kind(in, "elements");
    const shoal_type *t;
    int rc = shoal_inspect_type(in, &t);
    if (rc || (rc = elements_fit(in, t)))
        return rc;
    if (max > INT32_MAX)
        max = INT32_MAX;
    shoal_attr a = {.root = in->root, .domain = in->domain};
    if (kind == SHOAL_KIND_ARRAY)
        return array_copy(in, first, buf, max, &a);
    if (first > 0)
        return shoal__err(SHOAL_ERANGE, "value \"%s\" has one element", iname(in));
    return max ? value_copy(in, buf, &a) : 0;
}

int shoal_inspect_bytes(shoal_inspect *in, uint64_t off, void *buf, size_t cap)
{
    CHECK_HANDLE(in, buf);
    if (in->seg->hdr->kind != SHOAL_KIND_SHM)
        return wrong_kind(in, "raw bytes");
    uint64_t size = in->seg->hdr->payload_size;
    if (off > size)
        return shoal__err(SHOAL_ERANGE, "shm \"%s\": offset %llu past its %llu bytes",
                          iname(in), (unsigned long long)off, (unsigned long long)size);
    if (cap > size - off)
        cap = (size_t)(size - off);
    if (cap > INT32_MAX)
        cap = INT32_MAX;
    memcpy(buf, in->seg->payload + off, cap);
    return (int)cap;
}

/* ---- formatting -------------------------------------------------------------------- */

/* A stdio sink over the caller's buffer that keeps the first cap-1 bytes and counts
 * the rest. */
struct sink {
    char *buf;
    size_t cap, len;
    bool cut;
};

static ssize_t sink_write(void *cookie, const char *data, size_t n)
{
    struct sink *s = cookie;
    size_t room = s->cap - 1 - s->len;
    size_t k = n < room ? n : room;
    memcpy(s->buf + s->len, data, k);
    s->len += k;
    s->cut |= k < n;
    return (ssize_t)n;
}

static void print_hex(FILE *f, const unsigned char *p, size_t n)
{
    size_t shown = n < HEX_MAX ? n : HEX_MAX;
    for (size_t i = 0; i < shown; i++)
        fprintf(f, i ? " %02x" : "%02x", p[i]);
    if (shown < n)
        fprintf(f, " ... (%zu bytes)", n);
}

int shoal_inspect_format(shoal_inspect *in, const void *elem, size_t len, char *buf,
                         size_t cap)
{
    if (!in || (!elem && len) || !buf || cap == 0)
        return shoal__err(SHOAL_EINVAL, "inspect format: NULL argument or no room");
    shoal__err_clear();
    struct sink s = {buf, cap, 0, false};
    FILE *f = fopencookie(&s, "w", (cookie_io_functions_t){.write = sink_write});
    if (!f)
        return shoal__err(SHOAL_ENOMEM, "inspect format: out of memory");
    const shoal_type *t;
    if (shoal_inspect_type(in, &t) == 0 && len == t->size && (t->typecode || t->nfields))
        shoal__type_print(t, elem, len, f);
    else
        print_hex(f, elem, len);
    fclose(f);
    buf[s.len] = '\0';
    if (s.cut && cap >= 4)
        memcpy(buf + cap - 4, "...", 4);
    shoal__err_clear();
    return 0;
}
