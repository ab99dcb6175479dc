/*
 * internal.h — what the runtime's source files share and the public API does not
 * show. Internal names use the shoal__ prefix.
 */
#ifndef SHOAL_INTERNAL_H
#define SHOAL_INTERNAL_H

#include <limits.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "platform.h"
#include "shoal.h"

#define SHOAL_LIKELY(x)   __builtin_expect(!!(x), 1)
#define SHOAL_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* ---- errors (error.c) -------------------------------------------------------------- */

/* Records a detail message for the calling thread and returns rc. */
int shoal__err(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Clears the calling thread's detail message. */
void shoal__err_clear(void);
/* Maps an errno value from a failed system call to a SHOAL_E* code. */
int shoal__errno_to_rc(int err);

/* ---- deadlines and spinning (deadline.c; clock and futexes: platform.h) ------------ */

/* An absolute deadline made from a shoal_duration (negative: none). */
typedef struct shoal__deadline {
    int64_t at_ns; /* CLOCK_MONOTONIC; INT64_MAX: forever */
} shoal__deadline;
shoal__deadline shoal__deadline_from(shoal_duration timeout);
bool shoal__deadline_passed(const shoal__deadline *d);

/* The per-process spin budget in nanoseconds (see shoal_set_spin_ns). */
int64_t shoal__spin_budget(void);

static inline void shoal__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* ---- processes (proc.c) ------------------------------------------------------------ */

/* The calling process's pid and start time (cached; refreshed after fork without a
 * system call on the fast path). */
int32_t shoal__self_pid(void);
uint64_t shoal__self_start(void);
/* Forgets the cached identity (run first in a fork child). */
void shoal__self_forked(void);
/* Whether the process pid that started at `start` still runs (start 0: any start). */
bool shoal__proc_alive(int32_t pid, uint64_t start);
/* Whether the thread tid exists (in any process of this pid namespace). */
bool shoal__tid_alive(int32_t tid);

/*
 * Test-only pause points: in the tests' build of the library (SHOAL_TEST_POINTS), a
 * process armed with shoal__test_pause_at(point) (or $SHOAL_TEST_PAUSE at start-up)
 * stops itself with SIGSTOP there, so a test can SIGKILL it at an exact instant. In
 * every other build they compile to nothing.
 */
#ifdef SHOAL_TEST_POINTS
extern int shoal__test_points_on;
void shoal__test_point_slow(const char *point);
static inline void shoal__test_point(const char *point)
{
    if (SHOAL_UNLIKELY(shoal__test_points_on))
        shoal__test_point_slow(point);
}
#else
static inline void shoal__test_point(const char *point)
{
    (void)point;
}
#endif

/* ---- segments (segment.c) ---------------------------------------------------------- */

/* Format versions: 3: SPSC puts without a CAS; 4: SPSC slot markers; 5: a Pipe's
 * rings are biased SPSC rings (ring_bias.c); 6: an SPSC ring's typed element that
 * fits in a cache line with no room for a marker has a dense slot of its own size,
 * published by the tail (ring_spsc.c); 7: so has one larger than a line whose size,
 * rounded to its alignment, is a whole number of lines (ring_spsc.c); 8: a ring side's
 * futex word and sleeper count are one word, which a waker empties (ring.c). */
#define SHOAL_MAGIC          0x47455324414f4853ULL /* "SHOA$SEG" little-endian */
#define SHOAL_FORMAT_VERSION 8
#define SHOAL_HEADER_SIZE    4096
#define SHOAL_MAX_USERS      64
#define SHOAL_STATE_READY    0x52454459u /* "READY" */
#define SHOAL_SEG_ANON       1u          /* created without a name */

/* A user table entry (see owner.c). */
struct shoal__user {
    union {
        _Atomic uint64_t id; /* pid (low half) | registration generation << 32 */
        struct {
            _Atomic int32_t pid; /* 0: free */
            _Atomic uint32_t gen;
        };
    };
    _Atomic uint64_t start; /* the user's start time (clock ticks since boot) */
};
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "pid is the id's low half");

/* The first page of every segment. Immutable after creation up to `checksum`. */
struct shoal__header {
    uint64_t magic;
    uint32_t version;
    uint32_t state;
    uint32_t kind;
    uint32_t flags;
    uint64_t layout_hash;
    char type_name[64];
    uint64_t elem_size;
    uint32_t elem_align;
    uint32_t header_size;
    uint64_t count;
    uint64_t payload_size;
    uint64_t file_size;
    int32_t creator_pid;
    uint32_t creator_uid;
    uint64_t creator_start;
    uint64_t created_ns; /* CLOCK_REALTIME */
    uint64_t aux[4];     /* kind-specific parameters (see each kind's source) */
    char aux_name[SHOAL_NAME_MAX + 1 + 3];
    uint64_t checksum; /* FNV-1a-64 of the bytes before it */
    /* mutable from here on */
    _Atomic uint32_t owner_died; /* times a lock in it was found with a dead holder */
    uint32_t pad;
    struct shoal__user users[SHOAL_MAX_USERS];
    uint32_t desc_size; /* bytes of layout descriptor in desc (0: none) */
    uint32_t desc_pad;
    unsigned char desc[]; /* to the end of the header page */
};
#define SHOAL_DESC_MAX (SHOAL_HEADER_SIZE - sizeof(struct shoal__header))

/* An open segment in this process. */
typedef struct shoal__seg {
    struct shoal__header *hdr;
    unsigned char *payload; /* hdr + header_size */
    size_t map_size;
    int fd;            /* kept open: holds a shared flock that marks us as a user */
    int user_slot;     /* index in hdr->users, or -1 */
    uint32_t owner;    /* this process's owner id in the segment (0: none) */
    int32_t owner_pid; /* the process that registered it */
    /* Run before fork with the owner id and user slot the child will have (owner.c). */
    void (*on_fork)(struct shoal__seg *seg, uint32_t child_owner, int child_slot);
    void *on_fork_arg;
    int fork_fd, fork_slot; /* prepared for a child during fork */
    uint32_t fork_owner;
    struct shoal__seg *next, *prev; /* segments open in this process */
    char name[SHOAL_NAME_MAX + 1];
    char path[PATH_MAX];
} shoal__seg;

/* What to create, or what to expect when opening. */
typedef struct shoal__seg_spec {
    uint32_t kind;
    const char *what;       /* noun for messages: "value", "queue", ... */
    const shoal_type *type; /* element type (NULL: none / accept any on open) */
    uint64_t count;         /* elements or capacity */
    bool check_count;       /* open fails with SHOAL_ELAYOUT if count differs */
    uint64_t payload_size;  /* bytes after the header */
    uint64_t aux[4];
    const char *aux_name;
    /* Initialises the payload of a new segment (zero-filled before). May be NULL. */
    int (*init)(struct shoal__seg *seg, void *arg);
    void *arg;
} shoal__seg_spec;

/*
 * Opens, creates or opens-or-creates the segment `name` (NULL: a new anonymous one)
 * as `spec` describes, registering this process as a user. Returns 0 or SHOAL_E*.
 */
int shoal__seg_open(shoal__seg **out, const char *name, int mode,
                    const shoal__seg_spec *spec, const shoal_attr *attr);
/* Unregisters, unmaps and frees; removes an anonymous segment no one else uses. */
void shoal__seg_close(shoal__seg *seg);
/* Resolves root/domain for attr into buf. Returns 0 or SHOAL_ENAME. */
int shoal__domain_dir(const shoal_attr *attr, char *buf, size_t cap);

/* ---- users and owners (owner.c) ---------------------------------------------------- */

/* Takes a user slot for this process (sets user_slot, owner, owner_pid). Returns the
 * slot, or -1 when the table is full (the process then owns nothing in it). */
int shoal__user_register(shoal__seg *seg);
/* Gives the slot back (only the process that registered it). */
void shoal__user_unregister(shoal__seg *seg);
/* Users of the segment whose user lock is held, fd's own excepted. */
int shoal__users_live(const struct shoal__header *h, int fd);
/* This process's owner id in seg (registers a fork child that has none yet); 0 when
 * the user table is full. */
uint32_t shoal__owner_refresh(shoal__seg *seg);
static inline uint32_t shoal__seg_owner(shoal__seg *seg)
{
    return SHOAL_LIKELY(seg->owner_pid == shoal__self_pid()) ? seg->owner
                                                             : shoal__owner_refresh(seg);
}
/* Whether the process that owner names still has the segment open (never "dead" for
 * a live one; never "alive" for one whose pid was reused). */
bool shoal__owner_alive(const shoal__seg *seg, uint32_t owner);
/* Whether owner names this process (through any of its handles). */
bool shoal__owner_is_self(const shoal__seg *seg, uint32_t owner);
/* The user slot an owner id names (-1: none). */
int shoal__owner_slot(uint32_t owner);
/* The pid of owner's process while its slot is still its own, else 0 (messages). */
int32_t shoal__owner_pid(const shoal__seg *seg, uint32_t owner);
/* Adds / removes seg in the list of segments a fork child adopts. */
void shoal__seg_track(shoal__seg *seg);
void shoal__seg_untrack(shoal__seg *seg);

/* Records that a lock in seg was found with a dead holder (shown by inspect). */
void shoal__seg_note_owner_died(shoal__seg *seg);

/*
 * Registry of named objects whose handle is a pointer into their mapping (locks,
 * semaphores, ...): maps that pointer back to its segment for *_close().
 */
int shoal__registry_put(const void *obj, shoal__seg *seg);
shoal__seg *shoal__registry_take(const void *obj);
shoal__seg *shoal__registry_find(const void *obj);

/* The element type a segment records (a scalar typecode's when the name is one), for
 * opening an object without knowing its type (tools, dynamic bindings). The name
 * points into the header. */
void shoal__type_from_header(shoal_type *t, const struct shoal__header *h);

/* Checks an element type given by a caller: SHOAL_EINVAL naming `what "name"` unless
 * it has a name (< 64 bytes), a size of 1..max_size bytes that is a multiple of its
 * alignment, and a power-of-two alignment <= 64. The one check of every kind. */
int shoal__type_check(const shoal_type *t, const char *what, const char *name,
                      uint32_t max_size);
/* The element type an open segment records (shoal__type_from_header), checked as
 * shoal__type_check does: SHOAL_ECORRUPT for a header that names an impossible one
 * (element size 0, ...). */
int shoal__seg_type(const shoal__seg *seg, const char *what, shoal_type *t);

/* Opens a named primitive whose whole payload is one struct of `size` bytes. */
int shoal__prim_open(void **out, uint32_t kind, const char *what, size_t size,
                     const char *name, int mode, int (*init)(shoal__seg *, void *),
                     void *arg, const shoal_attr *attr);
/* 'kind' for an embedded primitive, 'kind "name"' for a named one: the noun error
 * messages use. The text lives in thread-local storage until the next call. */
const char *shoal__prim_noun(const void *prim, const char *kind);
/* Checks a primitive argument before an operation `op`: SHOAL_EINVAL naming it when
 * prim is NULL or not initialised (`initialised` says whether its magic matched). */
int shoal__prim_check(const void *prim, bool initialised, const char *kind,
                      const char *op);
/* Closes a primitive opened by shoal__prim_open. */
int shoal__prim_close(const void *obj);

/* ---- layout descriptors (layout.c) ------------------------------------------------- */

/* Serialises type's field list into buf (at most cap bytes) for the segment header.
 * Returns the bytes written, or 0 when the type has no fields or it does not fit. */
size_t shoal__layout_encode(const shoal_type *type, unsigned char *buf, size_t cap);
/* Decodes a descriptor written by shoal__layout_encode (from a header that may be
 * damaged: everything is checked) into one malloc'ed block holding the type tree;
 * release it with free(*out). Returns 0, SHOAL_ECORRUPT or SHOAL_ENOMEM. */
int shoal__layout_decode(const unsigned char *desc, size_t n, shoal_type **out);
/* Prints the element at data (size bytes) of a described type field by field, on one
 * line: {id: 42, symbol: "AAPL", fills: [1, 2], leg: {venue: "X"}, limit: 5} (a
 * oneof shows its set member). Values that break the layout (a length over max_len,
 * ...) are shown as <...> instead. No newline. Returns 0 or SHOAL_EINVAL. */
int shoal__type_print(const shoal_type *type, const void *data, size_t size, FILE *out);
/* Prints the element at data field by field, decoded through a descriptor made by
 * shoal__layout_encode (shoal__layout_decode + shoal__type_print; the element is the
 * descriptor's type's size). Returns 0, or a negative SHOAL_E* code (SHOAL_ECORRUPT)
 * if the descriptor cannot be read. */
int shoal__layout_print(const unsigned char *desc, size_t n, const void *data, FILE *out);

/* Whether a live thread holds lock (its word names a holder: the kernel clears the
 * holder when it dies, a release clears it too). One load (lock.c). */
bool shoal__lock_live(shoal_lock *lock);

/* ---- the lock of a Value or Array (objlock.c) ------------------------------------- */

/* Control block at the start of a Value's or Array's payload. */
struct shoal__objctl {
    shoal_lock lock;      /* used with SHOAL_LOCK_RLOCK */
    _Atomic uint64_t seq; /* Value structs: seqlock; low 32 bits count, high 32 the
                           * writer's owner id (owner.c) while the count is odd */
    _Atomic uint32_t writer_sleepers; /* writers asleep waiting for the writer role */
    unsigned char pad[52];
};
_Static_assert(sizeof(struct shoal__objctl) == 128, "objctl is two cache lines");

/* Fills spec->aux[0..1] / aux_name from attr's lock choice, for creation. */
int shoal__objlock_spec(shoal__seg_spec *spec, const shoal_attr *attr);
/* Initialises the control block of a new segment (spec->aux[0] says the lock mode). */
int shoal__objlock_init(shoal__seg *seg);
/* Resolves the lock of an open segment: NULL, the embedded one, or the caller's named
 * lock (opened; *owned set so the caller closes it). */
int shoal__objlock_resolve(shoal__seg *seg, const shoal_attr *attr, shoal_lock **lock,
                           bool *owned);
/* Takes the object's lock, if it has one. A dead previous holder is counted in the
 * header and otherwise ignored: the caller repairs its own data. Returns whether a
 * level was taken that shoal__objlock_release must drop (false when there is no lock,
 * or when a plain Lock is already held by this thread, as under get_lock()). */
bool shoal__objlock_acquire(shoal__seg *seg, shoal_lock *lock);
/* The same within timeout: returns 0 (*taken as above), or the lock's error with
 * *taken false — SHOAL_ETIMEDOUT when a live holder kept it past the timeout,
 * SHOAL_EAGAIN for SHOAL_NOWAIT. */
int shoal__objlock_acquire_for(shoal__seg *seg, shoal_lock *lock, shoal_duration timeout,
                               bool *taken);
void shoal__objlock_release(shoal_lock *lock, bool taken);
/* Releases the handle on a caller lock opened by shoal__objlock_resolve. */
void shoal__objlock_close(shoal_lock *lock, bool owned);

/* ---- integer helpers shared by Value and Array (value.c) -----------------------------
 */

/* Sign- or zero-extends the raw bits of an element of typecode c to 64 bits. */
int64_t shoal__extend(char c, uint64_t raw);
/* Atomic fetch-add (op 0) or exchange (op 1) on an integer of size bytes at p;
 * returns the previous raw bits. */
uint64_t shoal__atomic_rmw(void *p, uint32_t size, int op, uint64_t arg);

/* ---- what inspect.c reads of the primitives ---------------------------------------- */

/* Processes that announced a wait on the condition (0 if it is not initialised: then
 * the detail message says so). */
uint32_t shoal__cond_waiters(shoal_cond *cond);

/* ---- protobuf wire format, for code that walks encoded bytes (typed.c) ------------- */

/* Reads the field at *p (before end): its number and wire type; a varint's value in
 * *value (0 otherwise); a length-delimited field's bytes in *sub / *sub_len (NULL / 0
 * otherwise). Advances *p past it. Returns 0, or -1 when the bytes do not decode
 * (groups and unknown wire types included). */
int shoal__pb_field(const uint8_t **p, const uint8_t *end, uint32_t *number, int *wt,
                    uint64_t *value, const uint8_t **sub, size_t *sub_len);
/* The value of the first varint field `number` of the encoded message buf (a Request's
 * or Reply's id: field 1), or 0 when it is absent or the bytes before it do not
 * decode. */
uint64_t shoal__pb_varint_of(const void *buf, size_t len, uint32_t number);

#endif
