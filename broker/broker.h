/*
 * broker.h — the Manager broker's core, as the `shoal broker` command and the tests
 * drive it. docs/broker.md describes the objects, their operations and the protocol.
 *
 * core.c holds the objects and runs the operations (one mutex; blocking operations
 * park as waiters); store.c keeps the objects in LMDB; session.c serves the Broker
 * service's two methods over the rpc runtime; view.c publishes the replies of pure
 * reads in shared memory beside an shm:// address; serve.c is the command line.
 */
#ifndef SHOAL_BROKER_H
#define SHOAL_BROKER_H

#include <stddef.h>
#include <stdint.h>

#include <shoal/rpc.h>

#include "manager_internal.h"

typedef struct shoal_broker shoal_broker;
typedef struct broker_session broker_session;

/* A packed Reply to request `id` of session s: its len bytes in `small` when they fit
 * there (buf NULL: most replies — no result, an error, a short scalar — are packed
 * with no allocation), else in buf (malloc'd). */
#define BROKER_REPLY_SMALL 32
typedef struct broker_reply {
    broker_session *s;
    uint64_t id;
    size_t len;
    void *buf;
    uint8_t small[BROKER_REPLY_SMALL];
} broker_reply;

/* The bytes of reply r. */
static inline const void *broker_reply_bytes(const broker_reply *r)
{
    return r->buf ? r->buf : r->small;
}

/* Where replies go: a session's outbox (session.c). Called under the broker's mutex,
 * after the writes the replies depend on are durable, with n replies in a row for
 * the same session (r->s); takes over their buffers. */
typedef void (*broker_deliver)(broker_session *s, broker_reply *r, size_t n);

/* The owner id of requests made with the unary Call: no session, nothing released. */
#define BROKER_ANON 1

typedef struct shoal_broker_config {
    const char *data_dir; /* NULL: objects in memory only */
    int sync;             /* 1 (default): fsync each commit; 0: --sync=none */
} shoal_broker_config;

/* Creates a broker, loading the objects kept in cfg->data_dir (locks held there come
 * back free and owner-died). Returns 0 or a negative SHOAL_E* code. */
int shoal_broker_create(shoal_broker **out, const shoal_broker_config *cfg,
                        broker_deliver deliver);
void shoal_broker_destroy(shoal_broker *b);

/* A new session id (never reused, not even across restarts with a data dir). */
uint64_t broker_session_id(shoal_broker *b);

/*
 * Runs one request of session s (id sid): its reply is delivered now or, for a
 * blocking operation, when it is satisfied or times out. Takes over req. buf[len] is
 * the undecoded request (req NULL): decoded here, a malformed one is answered with
 * status SHOAL_EINVALID_DATA and counted.
 */
void broker_request(shoal_broker *b, broker_session *s, uint64_t sid, const void *buf,
                    size_t len);
/*
 * The same, for a session that has its next request at hand already: with defer, the
 * changes are not committed yet (nor the replies delivered) and 1 is returned — the
 * commit of a later request, or broker_commit, makes them durable (with a data
 * directory) and delivers the replies, so a pipelined batch costs one commit and one
 * hand-over of its replies. Returns 0
 * when the request was finished as broker_request does (its commit possibly left to
 * another session's batch: broker_batching).
 */
int broker_run(shoal_broker *b, broker_session *s, uint64_t sid, const void *buf,
               size_t len, int defer);
/* The most requests broker_run_all runs together. */
#define BROKER_RUN_MAX 64
/*
 * Runs the n requests (at most BROKER_RUN_MAX) a session has at hand (bufs[i] of
 * lens[i] bytes, not taken over) as broker_run would one after the other with defer
 * but the last — in order, their replies delivered after the last one's commit, or
 * left to another session's batch (broker_batching) — decoding them first and then
 * running them all in one hold of the broker's mutex — with a data directory, one
 * hold each, so that the other sessions' requests run in between and share their
 * commit (group commit). batching: the session said broker_batching(on) while it
 * gathered them; it is said off before the last one runs.
 */
void broker_run_all(shoal_broker *b, broker_session *s, uint64_t sid, void *const *bufs,
                    const size_t *lens, size_t n, int batching);
/* Commits what deferred requests changed and delivers their replies. */
void broker_commit(shoal_broker *b);
/*
 * Group commit (data directory): a session about to run a batch of requests with
 * defer says so (on), and says when its batch ends (off), before running the batch's
 * last request (without defer). While any session is in a batch, a request of another
 * one that would commit on its own leaves its changes and reply to the commit that
 * ends the last batch (up to GROUP_MAX replies waiting, core.c): broker_run returns 0,
 * and its reply is delivered after that commit. Every on is followed by an off.
 */
void broker_batching(shoal_broker *b, int on);
/* The session ended: its waiters are dropped, its locks and semaphore units released
 * (the next acquirer of a lock sees owner-died). No delivery to s after this returns. */
void broker_session_end(shoal_broker *b, broker_session *s, uint64_t sid);

/* The Broker service (session.c): add it to an rpc server. */
const shoal_rpc_service *broker_service(shoal_broker *b);
/* Delivery to the sessions of broker_service (give it to shoal_broker_create). */
void broker_session_deliver(broker_session *s, broker_reply *r, size_t n);

/* What `shoal broker` serves (serve.c). */
typedef struct shoal_broker_options {
    const char *const *listen; /* addresses: shm://name, ipc:///path, tcp://host:port,
                                  tls+tcp://host:port */
    size_t nlisten;
    const char *data_dir; /* NULL: memory only */
    const char *token;    /* tcp://: the token clients must prove (NULL: none) */
    int sync;             /* 1: fsync each commit (default); 0: --sync=none */
    const shoal_attr *attr;
    /* tls+tcp://: the broker's certificate and key (PEM); with tls_ca, clients must
     * present a certificate that CA signed (shoal_rpc_server_set_tls). */
    const char *tls_cert, *tls_key, *tls_ca;
    /* 1: no read view. Otherwise the broker publishes the replies of pure reads in
     * NAME:view beside its first shm://NAME address, for clients on this host to
     * answer them without a round trip (view.c, docs/broker.md "The read view"). */
    int no_view;
    /* 1: no lock table. Otherwise a broker with a read view and no data_dir backs its
     * Lock and RLock objects with words in NAME:locks, which shm:// clients take and
     * release without a message to the broker (locks.c, docs/broker.md "Locks over
     * shm://"). */
    int no_lock_table;
} shoal_broker_options;

/* Serves until SIGINT or SIGTERM (blocked in the calling thread and taken by a thread
 * of its own); prints "shoal broker: listening on ADDRESS" for each address, then
 * "shoal broker: ready", on stdout. Returns 0 or the SHOAL_E* code of the failure. */
int shoal_broker_serve(const shoal_broker_options *o);

#endif
