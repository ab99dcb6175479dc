/*
 * readyfd.c — a file descriptor that is readable while a queue or pipe end is.
 *
 * select(2), poll(2), epoll and every event library wait on descriptors; shoal's
 * queues and pipes wait on futex words in shared memory. A readiness descriptor
 * (shoal_readyfd) bridges the two: an eventfd that is readable exactly while the
 * object's readable side is ready (a message, end-of-stream or a dead peer is there),
 * level-triggered like a socket.
 *
 * Who watches. One helper thread per process runs a shoal_loop (loop.h) and watches the
 * objects of every readiness descriptor of the process. It is created when the first
 * descriptor is opened, so a process that never asks for a descriptor has no thread and
 * pays nothing; afterwards each descriptor costs one eventfd and one loop source, and
 * each wake-up of a watched object one write(2) by the helper.
 *
 * States of one descriptor (under its mutex):
 *
 *   watched    the helper has a source on the object (or is about to add one);
 *              the eventfd is clear.
 *   signalled  the source fired: the helper wrote the eventfd (now readable) and removed
 *              its source, so a message that stays unread costs nothing more.
 *
 *   watched --(object ready, helper)--> signalled
 *   signalled --(sync finds the object not ready, any thread)--> watched
 *
 * The way back is shoal_readyfd_sync(): it re-checks the object and, when nothing is
 * there any more, reads the eventfd clear and posts a new source to the helper. A
 * message that arrives between the check and the new source is found by the source's
 * first (level-triggered) check, so none is missed. A pipe's own receive and poll call
 * the sync of the pipe's descriptor (shoal_pipe_fd), so a receive that takes the last
 * message leaves the descriptor clear before it returns; for a queue the caller syncs
 * after taking messages. A message taken by another process that shares the object
 * leaves the descriptor readable until the next sync: as with a socket shared between
 * processes, a wake-up may find nothing to read.
 *
 * Only the helper thread adds and removes loop sources (shoal_loop_post); closing a
 * descriptor posts the removal and waits for it, so the object may be closed as soon as
 * shoal_readyfd_close() returns. After fork() the child has no helper: a descriptor
 * inherited from the parent is released without touching the parent's loop, and the
 * child's first new descriptor starts the child's own helper.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "internal.h"
#include "wait.h"

struct shoal_readyfd {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* the close handshake */
    int efd;           /* the eventfd */
    int32_t pid;       /* the process whose helper watches */
    shoal_loop *loop;  /* that helper's loop */
    bool pipe;         /* obj is a shoal_pipe (else a shoal_queue) */
    void *obj;
    shoal__waitable w;      /* the object's readable side */
    shoal_loop_source *src; /* helper thread only */
    _Atomic bool signalled; /* the eventfd is readable (changed under mu) */
    bool closing, closed;   /* under mu */
};

/* ---- the helper thread ------------------------------------------------------------- */

static struct {
    pthread_mutex_t mu;
    shoal_loop *loop;
    int32_t pid; /* the process the loop and thread belong to */
} helper = {.mu = PTHREAD_MUTEX_INITIALIZER};

static _Atomic(shoal_loop *) helper_failed; /* a loop whose thread has ended */

static void *helper_main(void *arg)
{
    int rc = shoal_loop_run(arg);
    /* The loop runs until the process ends; only an engine failure ends it early.
     * Descriptors of that loop then stay as they are, and the next one opened starts
     * a new helper. */
    fprintf(stderr, "shoal: readiness descriptors stopped: %s (%d)\n", shoal_errdetail(),
            rc);
    pthread_mutex_lock(&helper.mu);
    if (helper.loop == arg)
        helper.loop = NULL;
    pthread_mutex_unlock(&helper.mu);
    atomic_store(&helper_failed, arg);
    return NULL;
}

/* A child of fork() starts with no helper (the thread did not follow it); the
 * parent's loop is left alone. */
static void helper_after_fork(void)
{
    pthread_mutex_init(&helper.mu, NULL);
    helper.loop = NULL;
    helper.pid = 0;
}

static void helper_register_fork(void)
{
    pthread_atfork(NULL, NULL, helper_after_fork);
}

static int helper_start(void)
{
    shoal_loop *loop;
    int rc = shoal_loop_create(&loop);
    if (rc)
        return rc;
    /* The thread takes no signals: they stay with the application's threads. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_t th;
    int err = pthread_create(&th, NULL, helper_main, loop);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err) {
        shoal_loop_destroy(loop);
        return shoal__err(shoal__errno_to_rc(err),
                          "readiness descriptor: cannot start the helper thread: %s",
                          strerror(err));
    }
    pthread_detach(th);
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, helper_register_fork);
    helper.loop = loop;
    helper.pid = shoal__self_pid();
    return 0;
}

/* The process's helper loop, started on first use. */
static int helper_loop(shoal_loop **out)
{
    pthread_mutex_lock(&helper.mu);
    int rc = 0;
    if (!helper.loop || helper.pid != shoal__self_pid())
        rc = helper_start();
    *out = helper.loop;
    pthread_mutex_unlock(&helper.mu);
    return rc;
}

/* ---- the eventfd ------------------------------------------------------------------- */

/* Makes the descriptor readable (under r->mu). */
static void signal_locked(shoal_readyfd *r)
{
    if (atomic_load_explicit(&r->signalled, memory_order_relaxed))
        return;
    /* The flag first: a thread that sees the descriptor readable must find the flag
     * set, or its sync would skip the check (it reads the flag without the mutex). */
    atomic_store_explicit(&r->signalled, true, memory_order_seq_cst);
    uint64_t one = 1;
    while (write(r->efd, &one, sizeof(one)) < 0 && errno == EINTR)
        ;
}

/* Makes the descriptor unreadable (under r->mu). */
static void clear_locked(shoal_readyfd *r)
{
    uint64_t n;
    while (read(r->efd, &n, sizeof(n)) < 0 && errno == EINTR)
        ;
    atomic_store_explicit(&r->signalled, false, memory_order_release);
}

/* ---- on the helper's thread -------------------------------------------------------- */

static void on_ready(shoal_loop *loop, shoal_loop_source *src, int events, void *arg)
{
    (void)events; /* ready, end-of-stream or a dead peer: recv will not wait */
    shoal_readyfd *r = arg;
    pthread_mutex_lock(&r->mu);
    if (!r->closing)
        signal_locked(r);
    shoal_loop_remove(loop, src);
    r->src = NULL;
    pthread_mutex_unlock(&r->mu);
}

static void do_watch(shoal_loop *loop, void *arg)
{
    shoal_readyfd *r = arg;
    pthread_mutex_lock(&r->mu);
    if (!r->closing && !r->src &&
        !atomic_load_explicit(&r->signalled, memory_order_relaxed)) {
        int rc = r->pipe ? shoal_loop_add_pipe(loop, r->obj, SHOAL_LOOP_READABLE,
                                               on_ready, r, &r->src)
                         : shoal_loop_add_queue(loop, r->obj, SHOAL_LOOP_READABLE,
                                                on_ready, r, &r->src);
        if (rc < 0) { /* cannot watch: readable means "try the call" */
            r->src = NULL;
            signal_locked(r);
        }
    }
    pthread_mutex_unlock(&r->mu);
}

static void do_close(shoal_loop *loop, void *arg)
{
    shoal_readyfd *r = arg;
    pthread_mutex_lock(&r->mu);
    if (r->src)
        shoal_loop_remove(loop, r->src);
    r->src = NULL;
    r->closed = true;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

/* Runs fn on the helper's thread; retries while memory is short (a close must not
 * be lost). */
static void post(shoal_readyfd *r, shoal_loop_fn fn)
{
    while (shoal_loop_post(r->loop, fn, r) == SHOAL_ENOMEM)
        usleep(1000);
}

/* ---- the API ----------------------------------------------------------------------- */

static bool mine(const shoal_readyfd *r)
{
    return r->pid == shoal__self_pid();
}

/* Re-checks the object now (under r->mu): signals when it is ready, else watches. */
static void refresh_locked(shoal_readyfd *r)
{
    /* check() finds what ready() does not look at: a closed or dead peer (pipes). */
    if (r->w.ready(r->w.obj) != 0 || (r->w.check && r->w.check(r->w.obj) != 0)) {
        signal_locked(r);
        return;
    }
    if (atomic_load_explicit(&r->signalled, memory_order_relaxed))
        clear_locked(r);
    post(r, do_watch);
}

static int readyfd_open(shoal_readyfd **out, bool pipe, void *obj)
{
    if (!out || !obj)
        return shoal__err(SHOAL_EINVAL, "readiness descriptor: NULL argument");
    *out = NULL;
    shoal_readyfd *r = calloc(1, sizeof(*r));
    if (!r)
        return shoal__err(SHOAL_ENOMEM, "readiness descriptor: out of memory");
    int rc = pipe ? shoal__pipe_waitable(obj, false, &r->w)
                  : shoal__queue_waitable(obj, false, &r->w);
    if (rc) {
        free(r);
        return rc;
    }
    r->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (r->efd < 0) {
        rc = shoal__err(shoal__errno_to_rc(errno), "readiness descriptor: eventfd: %s",
                        strerror(errno));
        free(r);
        return rc;
    }
    if ((rc = helper_loop(&r->loop))) {
        close(r->efd);
        free(r);
        return rc;
    }
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    r->pid = shoal__self_pid();
    r->pipe = pipe;
    r->obj = obj;
    pthread_mutex_lock(&r->mu);
    refresh_locked(r);
    pthread_mutex_unlock(&r->mu);
    *out = r;
    return 0;
}

int shoal_readyfd_open_queue(shoal_readyfd **out, shoal_queue *q)
{
    return readyfd_open(out, false, q);
}

int shoal_readyfd_open_pipe(shoal_readyfd **out, shoal_pipe *p)
{
    return readyfd_open(out, true, p);
}

int shoal_readyfd_fd(const shoal_readyfd *r)
{
    if (!r)
        return shoal__err(SHOAL_EINVAL, "readiness descriptor: NULL handle");
    if (!mine(r))
        return shoal__err(
            SHOAL_EINVAL,
            "readiness descriptor: inherited across fork(); open a new one");
    return r->efd;
}

int shoal_readyfd_sync(shoal_readyfd *r)
{
    if (SHOAL_UNLIKELY(!r))
        return shoal__err(SHOAL_EINVAL, "readiness descriptor: NULL handle");
    if (!atomic_load_explicit(&r->signalled, memory_order_acquire) || !mine(r))
        return 0;
    pthread_mutex_lock(&r->mu);
    if (atomic_load_explicit(&r->signalled, memory_order_relaxed) && !r->closing)
        refresh_locked(r);
    pthread_mutex_unlock(&r->mu);
    return 0;
}

void shoal_readyfd_close(shoal_readyfd *r)
{
    if (!r)
        return;
    if (mine(r)) {
        pthread_mutex_lock(&r->mu);
        r->closing = true;
        post(r, do_close);
        while (!r->closed && atomic_load(&helper_failed) != r->loop) {
            struct timespec t;
            clock_gettime(CLOCK_REALTIME, &t);
            t.tv_nsec += 100000000;
            if (t.tv_nsec >= 1000000000) {
                t.tv_sec++;
                t.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&r->cv, &r->mu, &t);
        }
        pthread_mutex_unlock(&r->mu);
        pthread_mutex_destroy(&r->mu);
        pthread_cond_destroy(&r->cv);
    } /* else inherited across fork(): the parent's helper is not ours to touch */
    close(r->efd);
    free(r);
}
