/*
 * shoal/inspect.h — looking into any shared object without knowing its type.
 *
 * For tools (`shoal inspect`), monitoring and dynamic bindings: open an object of any
 * kind by name, then read its header, its users, the state of its lock, its counters,
 * copies of the messages queued in it and its elements decoded through the layout
 * descriptor its creator recorded.
 *
 * Nothing here waits, takes a lock or changes the object (opening registers the
 * caller as a user, as every open does, and closing removes that registration). The
 * object is read while other processes use it, so what is read is a snapshot that may
 * be out of date by the time it is returned; counters and depths are exact only when
 * the object is quiet.
 *
 * Nothing in the segment is trusted. The header checksum only proves that the header
 * was written as a whole, not that a hostile or buggy writer wrote sensible values:
 * every size, count, offset, length and index is checked against the mapping before
 * it is used, and a damaged part gives SHOAL_ECORRUPT with a detail message naming
 * the object and the field (shoal_errdetail()). The other parts of a damaged object
 * can still be inspected: a queue whose ring indexes are garbage still has a header
 * and users.
 *
 * Typical use:
 *
 *   shoal_inspect *in;
 *   shoal_inspect_header h;
 *   if (shoal_inspect_open(&in, "orders", NULL) == 0) {
 *       shoal_inspect_header_get(in, &h);
 *       printf("%s %s\n", shoal_kind_name(h.kind), h.type_name);
 *       shoal_inspect_close(in);
 *   }
 *
 * Every function returns 0 (or a count, where it says so) or a negative SHOAL_E*
 * code; SHOAL_EINVAL for NULL arguments, SHOAL_EKIND when asked about something the
 * object's kind does not have (the lock of a queue, the messages of a value).
 */
#ifndef SHOAL_INSPECT_H
#define SHOAL_INSPECT_H

#include "common.h"
#include "queue.h"
#include "type.h"

#ifdef __cplusplus
extern "C" {
#endif

/* An object opened for inspection. */
typedef struct shoal_inspect shoal_inspect;

/*
 * Opens the object `name` of any kind in attr's root and domain (NULL: defaults).
 * Only the header is validated here; the parts of the object are validated by the
 * calls that read them. Returns 0 and sets *out, or the errors of opening a segment:
 * SHOAL_ENAME, SHOAL_ENOENT, SHOAL_ECORRUPT, SHOAL_ETRUNCATED, SHOAL_EFOREIGN,
 * SHOAL_EVERSION, SHOAL_EACCES, SHOAL_ENOMEM, SHOAL_ESYS.
 */
SHOAL_API int shoal_inspect_open(shoal_inspect **out, const char *name,
                                 const shoal_attr *attr);
/* Unmaps and releases the handle. Returns 0, or SHOAL_EINVAL for NULL. */
SHOAL_API int shoal_inspect_close(shoal_inspect *in);

/* The fields of an object's header. */
typedef struct shoal_inspect_header {
    char name[SHOAL_NAME_MAX + 1];
    int kind;           /* enum shoal_kind (shoal_kind_name() names it) */
    char type_name[64]; /* element type; "" for kinds without one */
    uint64_t layout_hash;
    uint64_t elem_size; /* bytes per element (variable-size channels: max_msg) */
    uint32_t elem_align;
    uint32_t format_version;
    uint64_t count;     /* elements, or capacity for queues and pipes */
    uint64_t file_size; /* header_size + payload_size */
    uint64_t header_size;
    uint64_t payload_size;
    unsigned file_mode; /* permission bits of the file */
    int32_t creator_pid;
    uint32_t creator_uid;
    int creator_alive;   /* 1 if the creating process still runs */
    uint64_t created_ns; /* creation time, CLOCK_REALTIME nanoseconds */
    int anonymous;       /* created without a name: removed when unused */
    uint32_t owner_died; /* times a lock in it was found with a dead holder */
    uint32_t desc_size;  /* bytes of layout descriptor (0: none recorded) */
} shoal_inspect_header;

/* Fills *out. Returns 0 or SHOAL_EINVAL. */
SHOAL_API int shoal_inspect_header_get(shoal_inspect *in, shoal_inspect_header *out);
/* The object's file, for messages (valid until shoal_inspect_close). */
SHOAL_API const char *shoal_inspect_path(const shoal_inspect *in);

/* A process registered as a user of the object. */
typedef struct shoal_inspect_user {
    int32_t pid;
    uint64_t start; /* its start time (clock ticks since boot) */
    int alive;      /* 1 if that process (that pid with that start time) still runs */
} shoal_inspect_user;

/*
 * Copies up to max registered users, live and dead, into users (which may be NULL
 * when max is 0) and returns how many there are in all (>= 0), so a caller can size
 * its array. The registration made by this inspection handle is left out.
 */
SHOAL_API int shoal_inspect_users(shoal_inspect *in, shoal_inspect_user *users,
                                  size_t max);

/* The state of a lock (shoal_inspect_lock.state). */
enum shoal_lockstate {
    SHOAL_LOCKSTATE_NONE = 0, /* no lock: a Value or Array made with SHOAL_LOCK_NONE */
    SHOAL_LOCKSTATE_FREE = 1, /* free */
    SHOAL_LOCKSTATE_HELD = 2, /* held by holder_tid, a live thread */
    SHOAL_LOCKSTATE_HELD_DEAD = 3,  /* held by holder_tid, which no longer exists: the
                                     * next acquirer gets SHOAL_EOWNERDEAD */
    SHOAL_LOCKSTATE_OWNER_DIED = 4, /* free because its holder died holding it: the
                                     * next acquirer gets SHOAL_EOWNERDEAD */
    SHOAL_LOCKSTATE_CALLER = 5      /* guarded by another named lock: lock_name */
};

typedef struct shoal_inspect_lock {
    int state;          /* enum shoal_lockstate */
    int recursive;      /* 1 for an RLock */
    int32_t holder_tid; /* HELD, HELD_DEAD: the holder's kernel thread id */
    uint32_t depth;     /* HELD, HELD_DEAD: levels taken (an RLock may be re-entered) */
    int lock_kind;      /* CALLER: SHOAL_KIND_LOCK or SHOAL_KIND_RLOCK */
    char lock_name[SHOAL_NAME_MAX + 1]; /* CALLER: the guarding lock's name */
} shoal_inspect_lock;

/*
 * The state of the lock of a Lock, an RLock, a Value or an Array. Returns 0,
 * SHOAL_EKIND for other kinds, SHOAL_ECORRUPT when the payload cannot hold the lock
 * or the lock's bytes are not an initialised lock.
 */
SHOAL_API int shoal_inspect_lock_get(shoal_inspect *in, shoal_inspect_lock *out);

/* The state of a Semaphore, BoundedSemaphore, Event, Barrier or Condition; only the
 * fields of the object's kind are set, the others are 0. */
typedef struct shoal_inspect_sync {
    uint32_t value;   /* semaphores: the current value */
    int set;          /* event: 1 if set */
    uint32_t parties; /* barrier: parties per round */
    uint32_t waiting; /* barrier: parties waiting now */
    int broken;       /* barrier: 1 if broken */
    uint32_t waiters; /* condition: processes that announced a wait (a waiter killed
                       * while asleep may still be counted) */
} shoal_inspect_sync;

/* Returns 0, SHOAL_EKIND for other kinds, SHOAL_ECORRUPT when the payload cannot hold
 * the primitive or it is not initialised. */
SHOAL_API int shoal_inspect_sync_get(shoal_inspect *in, shoal_inspect_sync *out);

/*
 * Channels. A Queue has one ring (ring 0); a Pipe has two: ring 0 carries what end 0
 * sends (end 1 receives it), ring 1 the other way.
 *
 * shoal_inspect_rings returns the number of rings (1 or 2), SHOAL_EKIND for other
 * kinds, or SHOAL_ECORRUPT when the geometry or a ring header fails validation.
 * shoal_inspect_ring_stats fills *st for one ring (as shoal_queue_stats_get);
 * SHOAL_ECORRUPT also when its indexes are impossible (more messages queued than it
 * has slots) — then st still holds what was read.
 */
SHOAL_API int shoal_inspect_rings(shoal_inspect *in);
SHOAL_API int shoal_inspect_ring_stats(shoal_inspect *in, int ring,
                                       shoal_queue_stats *st);

/*
 * Calls fn on copies of up to max of the oldest messages queued in `ring`, oldest
 * first, without taking them. Each message's length is checked against the ring's
 * maximum, a message being taken meanwhile is left out, and at most the ring's
 * capacity of positions is visited, so a damaged ring never makes this loop or
 * list a message twice. msg is valid only during the call. Returns the number of
 * messages given to fn (>= 0), SHOAL_EKIND, SHOAL_ERANGE (no such ring),
 * SHOAL_ECORRUPT (damaged ring: nothing is listed) or SHOAL_ENOMEM.
 */
SHOAL_API int shoal_inspect_messages(shoal_inspect *in, int ring, size_t max,
                                     void (*fn)(void *arg, const void *msg, size_t len),
                                     void *arg);

/* One end of a pipe. An end may have several holders (processes that opened it or
 * inherited it through fork); this describes one that matters. */
typedef struct shoal_inspect_end {
    int opened;  /* 1 once a process has taken it (it has holders or was closed) */
    int32_t pid; /* a live holder; else one that died holding it; else 0 */
    int alive;   /* 1 if pid is a live holder */
    int closed;  /* 1 if a holder closed it */
} shoal_inspect_end;

/* Fills *out for end 0 or 1 of a pipe. Returns 0, SHOAL_EKIND, SHOAL_ERANGE or
 * SHOAL_ECORRUPT. */
SHOAL_API int shoal_inspect_pipe_end(shoal_inspect *in, int end, shoal_inspect_end *out);

/*
 * The element type, decoded from the header: a scalar's (from its type name), a
 * described struct's (from the layout descriptor, with its fields), or an opaque one
 * (name, size and alignment only) when none was recorded. A descriptor must agree
 * with the header's element size and alignment. Sets *out to a type owned by the
 * handle. Returns 0, SHOAL_EKIND for kinds without elements (locks, ...), or
 * SHOAL_ECORRUPT (an element size of 0, a descriptor that does not decode or does
 * not match the header).
 */
SHOAL_API int shoal_inspect_type(shoal_inspect *in, const shoal_type **out);

/*
 * Copies elements of a Value (its one element, read as a torn-free snapshot; first
 * must be 0) or an Array (elements first .. first+n-1, where n is the smaller of max
 * and what remains) into buf, which holds max elements of the element size. Returns
 * the number copied (>= 0), SHOAL_EKIND, SHOAL_ERANGE (first past the end) or
 * SHOAL_ECORRUPT (the payload cannot hold what the header says).
 */
SHOAL_API int shoal_inspect_elements(shoal_inspect *in, size_t first, void *buf,
                                     size_t max);

/*
 * Copies bytes off .. off+cap-1 of a SharedMemory block (fewer at its end) into buf.
 * Returns the number of bytes copied (>= 0), SHOAL_EKIND or SHOAL_ERANGE.
 */
SHOAL_API int shoal_inspect_bytes(shoal_inspect *in, uint64_t off, void *buf, size_t cap);

/*
 * Formats one element or message of the object as text into buf (cap bytes, always
 * NUL-terminated; longer text is cut and ends with "..."): a scalar as a number
 * (a char as "c"), a described struct field by field — {id: 42, symbol: "AAPL",
 * fills: [1, 2]} — with any value that breaks its field's bounds shown as <...>,
 * and anything else (variable-size messages, opaque structs, a length that is not the
 * element size) as hexadecimal bytes. Returns 0, SHOAL_EINVAL or SHOAL_ENOMEM.
 */
SHOAL_API int shoal_inspect_format(shoal_inspect *in, const void *elem, size_t len,
                                   char *buf, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
