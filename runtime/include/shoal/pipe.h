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
 * process that forks has handed its ends to its children until it sends, receives or
 * polls with them again, so the usual pattern works:
 *   shoal_pipe_pair(&a, &b, ...); fork(); parent uses a, child uses b
 * and the parent learns of the child's end even when the child died before touching
 * it, whether or not the parent closed its copy of b. A child does not keep open an
 * end its parent goes on using. shoal_pipe_close() of a handle handed to children
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
 * cfg as for queues (capacity per direction). Returns 0, SHOAL_EBUSY if that end is
 * held by another live process (unless SHOAL_PIPE_TAKEOVER), and the errors of
 * shoal_queue_open.
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

#ifdef __cplusplus
}
#endif
#endif
