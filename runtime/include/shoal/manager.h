/*
 * shoal/manager.h — the client of a Manager broker (`shoal broker`, docs/broker.md).
 *
 * A broker holds named objects — dict, list, Namespace, Value, Array, Queue, Lock,
 * RLock, Semaphore, BoundedSemaphore, Event, Condition, Barrier, the set of Python's
 * multiprocessing.Manager — for clients in any language. A client connects to it
 * (shm:// on this host, ipc://, tcp:// with a token, tls+tcp://), creates or opens
 * objects by name and runs operations on them; every operation is atomic in the broker.
 *
 * Values are trees of shoal_mv (the Value message of schemas/shoal/broker.proto):
 * none, bool, int (64-bit), double, string, bytes, list, tuple, map (keys: scalars or
 * tuples of them), a schema-typed message, or opaque pickle bytes. Functions that
 * take a shoal_mv * argument marked "taken" free it, whatever they return.
 *
 * Operations are named by strings and listed per kind in docs/broker.md ("get",
 * "set", "append", "incr", "cas", "put", "acquire", "wait", ...). A connection is one
 * session: many requests may be in flight (shoal_manager_submit, then
 * shoal_manager_wait, from any threads), and the broker answers blocking operations
 * when they complete or time out, without holding up the others. Locks belong to the
 * (connection, thread) that acquired them; when the connection closes or its process
 * dies the broker frees them, and the next acquirer gets SHOAL_EOWNERDEAD (it holds
 * the lock). Semaphore units are returned the same way. A connection belongs to the
 * process that opened it: a forked child opens its own (and must not use or close its
 * parent's; forking does not disturb the parent's session).
 *
 * Return values: 0 or a negative SHOAL_E* code with shoal_errdetail() saying what
 * was wrong — the broker's codes are the same: SHOAL_ENOENT (no such object, key or
 * value), SHOAL_EKIND (wrong kind, or no such operation for it), SHOAL_ERANGE (index),
 * SHOAL_ETYPE (a value an Array's typecode refuses), SHOAL_ETIMEDOUT, SHOAL_EPERM
 * (release of a lock not held), SHOAL_EDEADLK, SHOAL_EOVERFLOW, SHOAL_EBROKEN,
 * SHOAL_EINVALID_DATA (the broker could not decode the request), SHOAL_EMSGSIZE (larger
 * than the transport carries); SHOAL_EPEERDEAD when the broker went away.
 */
#ifndef SHOAL_MANAGER_H
#define SHOAL_MANAGER_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- values ------------------------------------------------------------------------ */

typedef struct shoal_mv shoal_mv;

/* The type of a value (the numbers of broker.proto's Value fields). */
typedef enum shoal_mv_kind {
    SHOAL_MV_NONE = 1,
    SHOAL_MV_BOOL = 2,
    SHOAL_MV_INT = 3,
    SHOAL_MV_DOUBLE = 4,
    SHOAL_MV_STR = 5,
    SHOAL_MV_BYTES = 6,
    SHOAL_MV_LIST = 7,
    SHOAL_MV_TUPLE = 8,
    SHOAL_MV_MAP = 9,
    SHOAL_MV_MESSAGE = 10,
    SHOAL_MV_PICKLE = 11
} shoal_mv_kind;

/* New values; NULL when out of memory (a NULL passed where a value is "taken" makes
 * that call fail with SHOAL_ENOMEM). shoal_mv_str copies a NUL-terminated string. */
SHOAL_API shoal_mv *shoal_mv_none(void);
SHOAL_API shoal_mv *shoal_mv_bool(int b);
SHOAL_API shoal_mv *shoal_mv_int(int64_t i);
SHOAL_API shoal_mv *shoal_mv_double(double d);
SHOAL_API shoal_mv *shoal_mv_str(const char *s);
SHOAL_API shoal_mv *shoal_mv_bytes(const void *p, size_t len);
SHOAL_API shoal_mv *shoal_mv_list(void);
SHOAL_API shoal_mv *shoal_mv_tuple(void);
SHOAL_API shoal_mv *shoal_mv_map(void);
/* A schema-typed message (broker.proto's Typed): its full type name — "shop.Order",
 * or "shoal.broker.Ref", the Python client's reference to another proxy — and its
 * protobuf bytes, both copied. NULL when type is NULL or empty, or out of memory. */
SHOAL_API shoal_mv *shoal_mv_message(const char *type, const void *p, size_t len);
/* An opted-in Python pickle: bytes the broker stores and never interprets, which only a
 * Python client unpickles (a C client passes them on unchanged). NULL when out of
 * memory. */
SHOAL_API shoal_mv *shoal_mv_pickle(const void *p, size_t len);
/* Appends item (taken) to a list or tuple. Returns 0, SHOAL_EINVAL or SHOAL_ENOMEM. */
SHOAL_API int shoal_mv_append(shoal_mv *seq, shoal_mv *item);
/* Sets map[key] = value (both taken). Returns 0, SHOAL_EINVAL (not a map, or a key
 * that is not a scalar or a tuple of scalars) or SHOAL_ENOMEM. */
SHOAL_API int shoal_mv_put(shoal_mv *map, shoal_mv *key, shoal_mv *value);
/* A deep copy, or NULL. */
SHOAL_API shoal_mv *shoal_mv_copy(const shoal_mv *v);
SHOAL_API void shoal_mv_free(shoal_mv *v);

/* Reading: the type; the scalar (0 / "" / NULL when v is of another type; an int
 * reads as a double too); the number of items or entries (0 for scalars); item i of a
 * list or tuple, key or value of entry i of a map, map[key] (NULL when absent) —
 * borrowed, valid as long as v. */
SHOAL_API int shoal_mv_type(const shoal_mv *v);
SHOAL_API int shoal_mv_as_bool(const shoal_mv *v);
SHOAL_API int64_t shoal_mv_as_int(const shoal_mv *v);
SHOAL_API double shoal_mv_as_double(const shoal_mv *v);
SHOAL_API const char *shoal_mv_as_str(const shoal_mv *v);
SHOAL_API const void *shoal_mv_as_bytes(const shoal_mv *v, size_t *len);
/* A message's type name ("" for any other value); its bytes are shoal_mv_as_bytes's,
 * as are a pickle's. */
SHOAL_API const char *shoal_mv_message_type(const shoal_mv *v);
SHOAL_API size_t shoal_mv_len(const shoal_mv *v);
SHOAL_API const shoal_mv *shoal_mv_item(const shoal_mv *v, size_t i);
SHOAL_API const shoal_mv *shoal_mv_key(const shoal_mv *v, size_t i);
SHOAL_API const shoal_mv *shoal_mv_value(const shoal_mv *v, size_t i);
SHOAL_API const shoal_mv *shoal_mv_get(const shoal_mv *map, const shoal_mv *key);
/* Whether a equals b (1 == 1.0 == true, as in Python). */
SHOAL_API int shoal_mv_equal(const shoal_mv *a, const shoal_mv *b);
/* Writes v as Python's repr() would ({1: '1', 'a': [1, 2.5, None]}) into buf[cap]
 * (truncated, always terminated when cap > 0) and returns the full length. */
SHOAL_API size_t shoal_mv_format(const shoal_mv *v, char *buf, size_t cap);

/* ---- connections --------------------------------------------------------------------
 */

typedef struct shoal_manager shoal_manager;

/* The kinds of object (broker.proto's Kind). */
typedef enum shoal_manager_kind {
    SHOAL_M_DICT = 1,
    SHOAL_M_LIST = 2,
    SHOAL_M_NAMESPACE = 3,
    SHOAL_M_VALUE = 4,
    SHOAL_M_ARRAY = 5,
    SHOAL_M_QUEUE = 6,
    SHOAL_M_LOCK = 7,
    SHOAL_M_RLOCK = 8,
    SHOAL_M_SEMAPHORE = 9,
    SHOAL_M_BOUNDED_SEMAPHORE = 10,
    SHOAL_M_EVENT = 11,
    SHOAL_M_CONDITION = 12,
    SHOAL_M_BARRIER = 13,
    SHOAL_M_JOINABLE_QUEUE = 14
} shoal_manager_kind;

/* Options of a connection (NULL: defaults). */
typedef struct shoal_manager_config {
    shoal_duration connect_timeout; /* 0: 2 seconds */
    const char *token;              /* tcp://: the broker's token */
    const shoal_attr *attr;         /* shm://: root and domain of the broker's queue */
    /* tls+tcp:// only (as shoal_rpc_channel_config): the CA file the broker's
     * certificate must chain to (required), this client's certificate and key (for a
     * broker that requires one), the name the broker's certificate must carry (NULL:
     * the address's host). */
    const char *tls_ca_file, *tls_cert_file, *tls_key_file, *tls_server_name;
} shoal_manager_config;

/*
 * Connects to the broker at address and opens a session. Returns 0 and sets *out, or
 * SHOAL_EINVAL (bad address; tls+tcp:// without tls_ca_file), SHOAL_ENOENT (no
 * broker there), SHOAL_ETIMEDOUT, SHOAL_EACCES (wrong or missing token; tls+tcp://: no
 * client certificate, or one the broker's CA did not sign, when the broker requires
 * one; the broker's certificate did not verify), SHOAL_ENOMEM, SHOAL_ESYS.
 */
SHOAL_API int shoal_manager_connect(shoal_manager **out, const char *address,
                                    const shoal_manager_config *cfg);
/*
 * Ends the session (the broker frees its locks and semaphore units) and frees m, as
 * shoal_manager_shutdown: every request sent or submitted on m before it has been run
 * by the broker when it returns (unless the broker did not end the session within
 * 5 s, or died). Threads still inside a call on m (waiting for a reply, a blocked get
 * or acquire) return SHOAL_ECLOSED, and m is freed only once every one of them has
 * left its call; but no call may start on m after shoal_manager_close returned. NULL
 * is ignored.
 */
SHOAL_API void shoal_manager_close(shoal_manager *m);
/*
 * Ends the session without freeing m. The requests shoal_manager_submit kept are
 * written, and the broker runs every request sent before it ends the session: this
 * waits for that (reading their replies: a thread already waiting for one gets it)
 * for at most 5 s — a broker that stopped answering delays it that long, a
 * dead one not at all — then cancels the session. Every thread waiting in a call on
 * m whose reply did not come returns SHOAL_ECLOSED (the broker drops a blocked get or
 * acquire of the session when it ends), and every later call on m fails with
 * SHOAL_ECLOSED at once. For a program that must wake its threads blocked on the
 * broker before it closes m; shoal_manager_close does it too. Calling it again does
 * nothing.
 */
SHOAL_API void shoal_manager_shutdown(shoal_manager *m);
/*
 * Counts the calling thread as inside a call on m until shoal_manager_leave(m):
 * shoal_manager_close does not free m before. For a binding that takes m under its
 * own lock and calls it after dropping that lock, while another thread may close m:
 * it enters under the lock, and stops handing out m (under the lock) before it
 * closes m. The calls made meanwhile behave as usual (SHOAL_ECLOSED once m is shut
 * down). Returns 0, or SHOAL_ECLOSED (m is shut down: not counted, do not leave) or
 * SHOAL_EINVAL (NULL).
 */
SHOAL_API int shoal_manager_enter(shoal_manager *m);
/* Ends what shoal_manager_enter began (once per successful enter). */
SHOAL_API void shoal_manager_leave(shoal_manager *m);

/*
 * Creates object `name` of `kind`, or opens it when it exists with that kind
 * (SHOAL_EKIND when it is of another). init (taken, may be NULL): dict / Namespace: a
 * map; list / Array: a list; Value: the value; Queue, JoinableQueue: maxsize (an int;
 * 0: none);
 * Semaphore: its value (default 1); Barrier: its parties. typecode: Value and Array
 * ("i", "d", ... as Python's array module; NULL: any value). Returns 1 when created,
 * 0 when opened, or a negative code.
 */
SHOAL_API int shoal_manager_create(shoal_manager *m, const char *name,
                                   shoal_manager_kind kind, shoal_mv *init,
                                   const char *typecode);
/* Deletes object `name` (its waiters get SHOAL_ENOENT). */
SHOAL_API int shoal_manager_delete(shoal_manager *m, const char *name);

/*
 * Runs operation op on object `name` with nargs arguments (shoal_mv *, each taken)
 * and waits for the reply. timeout: for blocking operations (SHOAL_FOREVER, or
 * SHOAL_NOWAIT for the try form: SHOAL_ETIMEDOUT when it would wait). *result
 * (when result is not NULL) receives the result (NULL when there is none); free it
 * with shoal_mv_free. Returns 0, SHOAL_EOWNERDEAD (a lock acquired whose previous
 * holder died) or a negative code. Example:
 *
 *     shoal_manager_call(m, "scores", "set", 0, NULL, 2, shoal_mv_str("a"),
 * shoal_mv_int(10));
 */
SHOAL_API int shoal_manager_call(shoal_manager *m, const char *name, const char *op,
                                 shoal_duration timeout, shoal_mv **result, size_t nargs,
                                 ...);

/* A request, in full: path (npath keys or indices, taken) leads to a container nested
 * in the object (d['x'] is path {"x"}); args (nargs, taken). */
typedef struct shoal_manager_request {
    const char *name;
    const char *op;
    shoal_mv **path;
    size_t npath;
    shoal_mv **args;
    size_t nargs;
    shoal_duration timeout;
} shoal_manager_request;

/*
 * Pipelining: queues request r to be sent without waiting for its reply and sets *id;
 * the reply is taken with shoal_manager_wait(m, id, ...), in any order, from any
 * thread. The request may stay in the connection's send buffer (up to 256 KiB over
 * ipc://, tcp:// and tls+tcp://, 16 KiB over shm://, past which it is written at
 * once), so that a burst of
 * submits leaves in one write (over shm://, a submit with no request of m in flight and
 * none kept is written at once): it is written when any thread's shoal_manager_wait on m
 * has to block for its reply (before it blocks), with the next request
 * shoal_manager_send_raw writes, or by shoal_manager_flush. A program that submits and
 * then does not wait (a fire-and-forget write, a release that another process waits
 * for) calls shoal_manager_flush, or closes m (which waits until the broker ran it).
 * Returns 0
 * or a negative code (SHOAL_EPEERDEAD: the session is over; SHOAL_ECLOSED: m is being
 * closed; SHOAL_EMSGSIZE: too large for the transport).
 */
SHOAL_API int shoal_manager_submit(shoal_manager *m, const shoal_manager_request *r,
                                   uint64_t *id);
/*
 * Waits for the reply to request id: as shoal_manager_call. When the reply is not
 * there yet, the requests submitted on m and not written yet are written first (see
 * shoal_manager_submit); a reply already received is returned without writing
 * anything. SHOAL_ECLOSED when m is shut down or closed meanwhile.
 */
SHOAL_API int shoal_manager_wait(shoal_manager *m, uint64_t id, shoal_mv **result);
/*
 * Writes now the requests shoal_manager_submit kept in the send buffer. Returns 0,
 * SHOAL_EPEERDEAD (the connection is lost) or SHOAL_ECLOSED.
 */
SHOAL_API int shoal_manager_flush(shoal_manager *m);

/*
 * The same in broker.proto's encoding, for bindings that build their own messages: a
 * fresh request id; send an encoded Request (whose id field the caller set) — written
 * at once, with whatever submits kept before it; wait for the encoded Reply to id
 * (*reply: free with shoal_manager_free; as shoal_manager_wait). Return 0 or a
 * negative code (the broker's status is inside the Reply).
 */
SHOAL_API uint64_t shoal_manager_next_id(shoal_manager *m);
SHOAL_API int shoal_manager_send_raw(shoal_manager *m, const void *req, size_t len);
SHOAL_API int shoal_manager_wait_raw(shoal_manager *m, uint64_t id, void **reply,
                                     size_t *len);
SHOAL_API void shoal_manager_free(void *p);
/*
 * Sends encoded request req[len] (its id field set, not 0) and waits for its Reply, as
 * shoal_manager_send_raw then shoal_manager_wait_raw — or, over shm://, answers it from
 * the broker's read view when the view holds the current reply of that read (see
 * shoal_manager_view_stats). Returns 0 or a negative code (SHOAL_EINVAL: no id).
 */
SHOAL_API int shoal_manager_call_raw(shoal_manager *m, const void *req, size_t len,
                                     void **reply, size_t *rlen);

/*
 * Locks over shm://. A broker listening on shm://NAME with a read view (and no data
 * directory, nor --no-lock-table) backs its Lock and RLock objects with words in
 * shared memory. A connection to it then runs acquire, release and locked of those
 * objects there, with the broker's semantics, errors and owner-died reports, and no
 * message to the broker: shoal_manager_call and shoal_manager_call_raw (an acquire
 * waits there; SHOAL_EPEERDEAD when the broker dies meanwhile), shoal_manager_submit
 * (an acquire that would have to wait goes to the broker instead: a submit never
 * blocks), shoal_manager_send_raw (a release sent alone or as a batch's only item;
 * its reply is filed for shoal_manager_wait_raw). A release or locked runs there only
 * while no request of m is waiting for its reply, so a write made under the lock is
 * in the broker before the lock is free. Closing m frees the locks m took with the
 * owner-died mark. docs/broker.md, "Locks over shm://".
 *
 * The read view. A broker listening on shm://NAME publishes the replies of its pure
 * reads (a dict or list get, len, contains; a Value's get; an Event's is_set; a Lock's
 * locked when it has no lock table; ...: docs/broker.md, "The read view") in shared
 * memory, unless it runs with
 * --no-view. A connection to shm://NAME maps it, and shoal_manager_call,
 * shoal_manager_submit and shoal_manager_call_raw answer such a read from it when it
 * holds the reply for the object's current state — no round trip, the same reply as
 * the broker's — provided no request sent on m is still waiting for its reply (so m
 * always reads its own writes; a request sent with id 0, which has no reply, turns the
 * view off for m). Anything else goes to the broker.
 *
 * Stores how many reads the view answered (*hits) and how many it was asked in vain
 * (*misses: sent to the broker; reads made while a request of m's was in flight are
 * not looked up, nor counted), either pointer may be NULL. Returns 1 when m uses a
 * view, 0 when it does not, or SHOAL_EINVAL.
 */
SHOAL_API int shoal_manager_view_stats(shoal_manager *m, uint64_t *hits,
                                       uint64_t *misses);

/* ---- watches ----------------------------------------------------------------------- */

typedef struct shoal_manager_watch shoal_manager_watch;

/* One change to a watched object (broker.proto's Change; docs/broker.md, "Watch"). */
typedef struct shoal_manager_change {
    uint64_t seq;           /* the object's write counter after the change */
    const char *op;         /* "set", "del", "append", ...; "resync": value is the whole
                               current state (the first change, and after changes were
                               dropped because this watcher fell behind); "released": the
                               broker freed what an ended session held; "deleted": the
                               object was deleted (the last change) */
    const shoal_mv *path;   /* a list: the path of the nested container it changed */
    const shoal_mv *args;   /* a list: object watch: the operation's arguments */
    const shoal_mv *result; /* object watch: the operation's result, or NULL */
    const shoal_mv *value;  /* key watch: the key's value after the change (NULL: the
                               key is absent); "resync": the state (NULL: absent) */
    void *priv_;
} shoal_manager_change;

/*
 * Watches object `name` — or, with key (taken; NULL: none), that key of a dict or
 * Namespace — on a stream of its own next to m's session: the first change is a
 * "resync" with the current state, then one change per write to the object (for a
 * key: per write that changed the key's value), in order. A watcher that does not keep
 * up gets a "resync" instead of the changes it missed: the broker never buffers
 * without bound. Returns 0 and sets *out, or SHOAL_ENOENT (no such object),
 * SHOAL_EINVAL (a key of an object that is not a dict or Namespace), SHOAL_ENOMEM and
 * the errors of a closed session. The watch must be closed before m.
 */
SHOAL_API int shoal_manager_watch_open(shoal_manager *m, const char *name, shoal_mv *key,
                                       shoal_manager_watch **out);
/*
 * Waits at most `timeout` (SHOAL_FOREVER: no limit) for the next change: returns 1
 * and sets *ch (free with shoal_manager_change_free), 0 when the timeout passed,
 * SHOAL_ECLOSED after the "deleted" change (the watch is over), SHOAL_EPEERDEAD when the
 * broker went away, SHOAL_EINVALID_DATA for a change that does not decode.
 */
SHOAL_API int shoal_manager_watch_next(shoal_manager_watch *w, shoal_duration timeout,
                                       shoal_manager_change **ch);
/* The same in broker.proto's encoding: watch with an encoded WatchRequest; the next
 * change as an encoded Change (*buf: free with shoal_manager_free). */
SHOAL_API int shoal_manager_watch_open_raw(shoal_manager *m, const void *req, size_t len,
                                           shoal_manager_watch **out);
SHOAL_API int shoal_manager_watch_next_raw(shoal_manager_watch *w, shoal_duration timeout,
                                           void **buf, size_t *len);
SHOAL_API void shoal_manager_change_free(shoal_manager_change *ch);
/* Ends the watch (the broker forgets the watcher) and frees w. NULL is ignored. */
SHOAL_API void shoal_manager_watch_close(shoal_manager_watch *w);

#ifdef __cplusplus
}
#endif
#endif
