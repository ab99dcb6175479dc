/* forked_server.h — one service served at an address by a forked child until the test
 * tells it to stop: the set-up of the rpc tests whose server lives in another process.
 * The flags live in memory the two processes share (t_shared_alloc). */
#ifndef FORKED_SERVER_H
#define FORKED_SERVER_H

#include <stdatomic.h>
#include <string.h>

#include "shoal.h"
#include "testutil.h"

typedef struct {
    _Atomic int ready, stop;
} fs_flags;

/* The token a tcp:// server of these tests asks its clients for. */
#define FS_TOKEN "forked-server-token"

static const shoal_rpc_service *fs_svc;
static const char *fs_addr;
static fs_flags *fs_f;

static int fs_serve(void *arg)
{
    (void)arg;
    shoal_loop *loop;
    shoal_rpc_server *s;
    if (shoal_loop_create(&loop) || shoal_rpc_server_create(&s, loop) ||
        shoal_rpc_server_add_service(s, fs_svc) ||
        (strncmp(fs_addr, "tcp://", 6) == 0 && shoal_rpc_server_set_token(s, FS_TOKEN)) ||
        shoal_rpc_server_listen(s, fs_addr, NULL))
        return 1;
    atomic_store(&fs_f->ready, 1);
    while (!atomic_load(&fs_f->stop))
        shoal_loop_run_once(loop, SHOAL_MS(20));
    shoal_rpc_server_destroy(s);
    shoal_loop_destroy(loop);
    return 0;
}

/* Forks the server of svc at addr and waits until it listens: its pid, or -1. */
static pid_t fs_start(const shoal_rpc_service *svc, const char *addr, fs_flags *f)
{
    fs_svc = svc;
    fs_addr = addr;
    fs_f = f;
    pid_t pid = t_fork(fs_serve, NULL);
    return t_wait_atleast(&f->ready, 1, SHOAL_SEC(30)) ? pid : -1;
}

/* Tells the server to stop and waits for it: what t_wait says of its exit. */
static int fs_stop(pid_t pid, fs_flags *f)
{
    atomic_store(&f->stop, 1);
    return t_wait(pid);
}

#endif
