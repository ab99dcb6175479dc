/*
 * shoal/pipe.h — duplex 1:1 channels between two processes.
 *
 * A pipe has two ends, 0 and 1; what one end sends the other receives. The ends may
 * be opened in one process (shoal_pipe_pair, then hand one to a child) or each by its
 * own process by name. Messages are fixed-size of a type or variable-size bytes, as
 * for queues. When the other end is closed or its process has died, the survivor
 * first receives whatever was already sent, then SHOAL_EEOF (closed) or
 * SHOAL_EPEERDEAD (died) — never a hang.
 *
 * Holding an end: an end may be held by several processes at once, as a file
 * descriptor may — a fork child holds the ends of the handles it inherits from its
 * first instant, and an opener that asks to (SHOAL_PIPE_TAKEOVER) joins the holders.
 * The peer sees SHOAL_EEOF or SHOAL_EPEERDEAD only when the last holder of the end has
 * closed it or died (EPEERDEAD when one of the last ones died without closing). A
 * process that forks before it used an end (sent, received or polled with it) has
 * handed that end to its children until it uses it, so the usual pattern works:
 *   shoal_pipe_pair(&a, &b, ...); fork(); parent uses a, child uses b
 * and the parent learns of the child's end even when the child died before touching
 * it, whether or not the parent closed its copy of b. An end the process had used
 * stays its own: a child shares it from its first use of it, and a child that exits
 * without using it takes nothing away (a process with a connection open may fork
 * workers). A child does not keep open an end its parent goes on using; closing an
 * end shared with children that have not used it yet hands it to them. Otherwise
 * shoal_pipe_close() of a handle handed to children
 * only releases the handle. A process that exits without closing its end is reported
 * as SHOAL_EPEERDEAD, like one that crashed; liveness comes from locks the kernel
 * drops when a process dies, so a reused pid is never mistaken for the holder. A send
 * to a dead peer succeeds while there is room; it fails once it would wait, or on a
 * periodic check.
 */
#ifndef SHOAL_PIPE_H
#define SHOAL_PIPE_H

#include "common.h"
#include "queue.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct shoal_pipe shoal_pipe;

/* Or'ed into `end` of shoal_pipe_open(): join the holders of the end even while other
 * live processes hold it (without it: SHOAL_EBUSY). For an end handed to a process
 * that opens it by name (e.g. passed to it by pickling). */
#define SHOAL_PIPE_TAKEOVER 0x100

/*
 * Opens end `end` (0 or 1) of the pipe `name`, creating the pipe if `mode` allows;
 * cfg as for queues (capacity per direction; cfg.spsc makes no difference: an end
 * may always be used by several processes and threads at once). Returns 0,
 * SHOAL_EBUSY if that end is held by another live process (unless
 * SHOAL_PIPE_TAKEOVER), and the errors of shoal_queue_open.
 */
SHOAL_API int shoal_pipe_open(shoal_pipe **out, const char *name, int end, int mode,
                              const shoal_queue_config *cfg, const shoal_attr *attr);
/* Creates a pipe (name NULL: anonymous) and opens both ends in this process. */
SHOAL_API int shoal_pipe_pair(shoal_pipe **end0, shoal_pipe **end1, const char *name,
                              const shoal_queue_config *cfg, const shoal_attr *attr);
/* Closes this end: the peer drains, then gets SHOAL_EEOF. */
SHOAL_API int shoal_pipe_close(shoal_pipe *p);
SHOAL_API const char *shoal_pipe_name(const shoal_pipe *p);

/* Returns 0, SHOAL_ETIMEDOUT, SHOAL_EAGAIN, SHOAL_EMSGSIZE, SHOAL_EEOF (peer closed),
 * SHOAL_EPEERDEAD (peer died). */
SHOAL_API int shoal_pipe_send(shoal_pipe *p, const void *msg, size_t len,
                              shoal_duration timeout);
/* Returns 0, SHOAL_ETIMEDOUT, SHOAL_EAGAIN, SHOAL_EMSGSIZE (cap too small; the
 * message stays), SHOAL_EEOF, SHOAL_EPEERDEAD. */
SHOAL_API int shoal_pipe_recv(shoal_pipe *p, void *buf, size_t cap, size_t *len,
                              shoal_duration timeout);
/* 1 if a message (or end-of-stream / peer death) is ready to receive, 0 if the
 * timeout expired first, or a negative error. */
SHOAL_API int shoal_pipe_poll(shoal_pipe *p, shoal_duration timeout);

/*
 * A file descriptor that is readable exactly while shoal_pipe_poll(p, SHOAL_NOWAIT)
 * would return 1 (a message, end-of-stream or a dead peer is there), for select(2),
 * poll(2), epoll and event libraries. Level-triggered; only wait for readability on
 * it, never read or write it. The first call opens it (a readiness descriptor, below);
 * later calls return the same descriptor; the pipe's own receive and poll keep it in
 * step, and shoal_pipe_close() closes it. In a fork child, the first call opens the
 * child's own descriptor for an inherited handle. Returns the descriptor, or the
 * errors of shoal_readyfd_open_pipe().
 */
SHOAL_API int shoal_pipe_fd(shoal_pipe *p);

/*
 * Readiness descriptors: an eventfd that is readable while a queue or the receiving
 * direction of a pipe end is (a message, end-of-stream or a dead peer is there).
 *
 * Cost: the first descriptor opened in a process starts one helper thread (with all
 * signals blocked) running a shoal_loop that watches the objects of every descriptor
 * of the process; a process that opens none has no thread. Each descriptor holds an
 * eventfd and, while its object is not ready, one source of that loop. A message that
 * stays unread costs nothing more; each time the object turns ready the helper makes
 * one write(2).
 *
 * Keeping in step: the descriptor turns readable on its own when the object turns
 * ready. It turns unreadable only in shoal_readyfd_sync(), which re-checks the
 * object: call it after taking messages (shoal_pipe_fd's descriptor is synced by the
 * pipe's receive and poll). A message taken by another process or another handle of
 * the same object leaves the descriptor readable until the next sync, as a socket
 * shared between processes may wake a waiter that then finds nothing.
 */
typedef struct shoal_readyfd shoal_readyfd;

/* Opens a readiness descriptor for q (readable while a message or end-of-stream is
 * there) or for p's receiving direction. The object must stay open until
 * shoal_readyfd_close(). Returns 0 and sets *out, or SHOAL_EINVAL (NULL argument),
 * SHOAL_ENOMEM, SHOAL_ESYS (no eventfd, no thread, no loop: shoal_errdetail() says
 * which). */
SHOAL_API int shoal_readyfd_open_queue(shoal_readyfd **out, shoal_queue *q);
SHOAL_API int shoal_readyfd_open_pipe(shoal_readyfd **out, shoal_pipe *p);

/* The descriptor (close it with shoal_readyfd_close, not close(2)), or SHOAL_EINVAL
 * when r is NULL or was inherited across fork() (the child opens its own). */
SHOAL_API int shoal_readyfd_fd(const shoal_readyfd *r);

/* Re-checks the object and clears the descriptor when it is not ready any more.
 * Returns 0 or SHOAL_EINVAL (NULL). Cheap when the descriptor is not readable. Safe
 * from any thread of the process. */
SHOAL_API int shoal_readyfd_sync(shoal_readyfd *r);

/* Stops watching and closes the descriptor; then the object may be closed. NULL is
 * ignored. In a fork child, releases an inherited descriptor without disturbing the
 * parent's. */
SHOAL_API void shoal_readyfd_close(shoal_readyfd *r);

#ifdef __cplusplus
}
#endif
#endif
