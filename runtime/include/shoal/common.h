/*
 * shoal/common.h — conventions shared by every part of the shoal API.
 *
 * Return values: every function that can fail returns an int: 0 (SHOAL_OK) on success
 * or one of the negative SHOAL_E* codes below. shoal_strerror() turns a code into a
 * short constant text; shoal_errdetail() gives the calling thread's detailed message
 * for its most recent failure, naming the object and what was wrong, e.g.
 *   value "prices": layout mismatch: segment holds Order#3f2a..., caller expects ...
 *
 * Durations: every blocking call takes a shoal_duration in nanoseconds.
 * SHOAL_FOREVER waits without limit; SHOAL_NOWAIT (0) never sleeps (the "try" form);
 * any other negative duration counts as already expired.
 */
#ifndef SHOAL_COMMON_H
#define SHOAL_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* _Alignas in C, alignas in C++: the public headers compile as both. */
#ifdef __cplusplus
#define SHOAL_ALIGNAS(n) alignas(n)
#else
#define SHOAL_ALIGNAS(n) _Alignas(n)
#endif

#if defined(SHOAL_BUILDING)
#define SHOAL_API __attribute__((visibility("default")))
#else
#define SHOAL_API
#endif

/* Error codes. Stable numbers: bindings mirror them. */
enum shoal_error {
    SHOAL_OK = 0,
    SHOAL_EINVAL = -1,      /* an argument is invalid (NULL, zero size, bad flag) */
    SHOAL_ENOMEM = -2,      /* out of process memory */
    SHOAL_ENOENT = -3,      /* no object of that name (or the root does not exist) */
    SHOAL_EEXIST = -4,      /* create (exclusive): the name is taken */
    SHOAL_ENAME = -5,       /* the name is empty, too long or has a bad character */
    SHOAL_EKIND = -6,       /* the object is of another kind (a queue, not a value) */
    SHOAL_ELAYOUT = -7,     /* element type, size or layout hash differs */
    SHOAL_ECORRUPT = -8,    /* header fails validation: the segment is damaged */
    SHOAL_ETRUNCATED = -9,  /* the file is smaller than its header says */
    SHOAL_EFOREIGN = -10,   /* the file is not a shoal segment (bad magic) */
    SHOAL_EVERSION = -11,   /* made by an incompatible format version */
    SHOAL_ENOSPC = -12,     /* no room under the root directory (e.g. /dev/shm full) */
    SHOAL_ETIMEDOUT = -13,  /* the timeout expired before the wait was satisfied */
    SHOAL_EAGAIN = -14,     /* a try form found it would have to wait */
    SHOAL_EOWNERDEAD = -15, /* lock acquired, but its previous holder died holding it */
    SHOAL_EPERM = -16,      /* not the owner (release of a lock held by another) */
    SHOAL_ERANGE = -17,     /* an index is out of range */
    SHOAL_EOVERFLOW = -18,  /* a bounded semaphore released above its initial value */
    SHOAL_EMSGSIZE = -19,   /* a message is larger than the object allows */
    SHOAL_ECLOSED = -20,    /* the queue or pipe end was closed: no more puts/sends */
    SHOAL_EEOF = -21,       /* closed and drained: nothing more will ever arrive */
    SHOAL_EPEERDEAD = -22,  /* the other end's process died */
    SHOAL_EBROKEN = -23,    /* the barrier is broken (timeout, abort, dead party) */
    SHOAL_EDEADLK = -24,    /* a non-recursive lock acquired twice by its holder */
    SHOAL_ETYPE =
        -25, /* operation needs another element type (e.g. atomics on a double) */
    SHOAL_EACCES = -26, /* permission denied by the file system */
    SHOAL_EBUSY = -27,  /* in use (e.g. a pipe end already open in a live process) */
    SHOAL_ESYS = -28,   /* another operating-system error; see shoal_errdetail() */
    SHOAL_EINVALID_DATA = -29, /* a message fails validation (string over max_len, ...) */
    SHOAL_EINTR = -30          /* an interruptible wait was ended by a signal handler */
};

/* Returns a constant, human readable text for an error code (never NULL). */
SHOAL_API const char *shoal_strerror(int rc);

/* Returns the calling thread's detail message for its most recent failure, or "" if
 * there is none. The text stays valid until the thread's next shoal call. */
SHOAL_API const char *shoal_errdetail(void);

typedef int64_t shoal_duration; /* nanoseconds */
#define SHOAL_FOREVER ((shoal_duration)-1)
#define SHOAL_NOWAIT  ((shoal_duration)0)
#define SHOAL_MS(ms)  ((shoal_duration)(ms)*1000000)
#define SHOAL_SEC(s)  ((shoal_duration)(s)*1000000000)

/* Longest object name, in bytes, excluding the terminating NUL. Names consist of
 * ASCII letters, digits and "._-:" and must not start with '.'. */
#define SHOAL_NAME_MAX 100
/* Longest domain name, same characters as object names. */
#define SHOAL_DOMAIN_MAX 64

/* How an object is opened by name. */
enum shoal_open_mode {
    SHOAL_OPEN = 1,          /* it must exist */
    SHOAL_CREATE = 2,        /* it must not exist (exclusive create) */
    SHOAL_OPEN_OR_CREATE = 3 /* open it, or create it if absent; race-free */
};

/* How a Value or Array is locked (shoal_attr.lock). */
enum shoal_lock_mode {
    SHOAL_LOCK_RLOCK = 0, /* default: a robust recursive lock inside the object */
    SHOAL_LOCK_NONE = 1,  /* no lock: raw access (atomics and snapshots still work) */
    SHOAL_LOCK_CALLER = 2 /* the named Lock/RLock in shoal_attr.caller_lock */
};

struct shoal_lock;

/*
 * Optional attributes of an object, passed as `const shoal_attr *` (NULL: defaults).
 * Zero-initialise and set what you need: `shoal_attr a = {0}; a.domain = "test";`.
 */
typedef struct shoal_attr {
    const char *root;   /* directory of domains; NULL: $SHOAL_ROOT or /dev/shm/shoal */
    const char *domain; /* namespace under root; NULL: $SHOAL_DOMAIN or "default" */
    unsigned mode;      /* file mode at creation; 0: 0600 (owner only) */
    int lock;           /* enum shoal_lock_mode, for values and arrays */
    struct shoal_lock *caller_lock; /* with SHOAL_LOCK_CALLER: a named Lock/RLock */
} shoal_attr;

/* Kinds of shared object, as stored in each segment's header. */
enum shoal_kind {
    SHOAL_KIND_SHM = 1,
    SHOAL_KIND_VALUE = 2,
    SHOAL_KIND_ARRAY = 3,
    SHOAL_KIND_LOCK = 4,
    SHOAL_KIND_RLOCK = 5,
    SHOAL_KIND_SEMAPHORE = 6,
    SHOAL_KIND_BOUNDED_SEMAPHORE = 7,
    SHOAL_KIND_CONDITION = 8,
    SHOAL_KIND_EVENT = 9,
    SHOAL_KIND_BARRIER = 10,
    SHOAL_KIND_QUEUE = 11,
    SHOAL_KIND_PIPE = 12
};

/* Name of a kind ("value", "queue", ...), or "unknown". */
SHOAL_API const char *shoal_kind_name(int kind);

/*
 * Spin budget: how long a waiter busy-polls before it sleeps in the kernel, in
 * nanoseconds. Waking a sleeping process costs tens of microseconds, so a short spin
 * wins when the other side answers quickly. Default 20000 (20 us), or $SHOAL_SPIN_NS.
 * 0 disables spinning. Applies to every primitive and channel of the process.
 */
SHOAL_API void shoal_set_spin_ns(int64_t ns);
SHOAL_API int64_t shoal_spin_ns(void);

#ifdef __cplusplus
}
#endif
#endif
