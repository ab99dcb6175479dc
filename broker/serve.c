/*
 * serve.c — runs a broker: the event loop, an rpc server listening on each address
 * with the Broker service, and a thread that turns SIGINT / SIGTERM into a clean stop
 * (the loop stops, the server cancels the sessions, the broker is freed; with a data
 * directory nothing is lost by a stop or by a SIGKILL). Beside its first shm://
 * address it publishes the read view (view.c) unless told not to — before the loop
 * runs, so every client connection, which completes once the loop serves it, finds
 * it — and withdraws it first when it stops.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker_internal.h"
#include "internal.h"

static void *signal_main(void *arg)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    int sig;
    sigwait(&set, &sig);
    shoal_loop_stop(arg);
    return NULL;
}

int shoal_broker_serve(const shoal_broker_options *o)
{
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    signal(SIGPIPE, SIG_IGN);

    shoal_broker_config cfg = {o->data_dir, o->sync};
    shoal_broker *b = NULL;
    shoal_loop *loop = NULL;
    shoal_rpc_server *srv = NULL;
    int rc = shoal_broker_create(&b, &cfg, broker_session_deliver);
    if (rc == 0)
        rc = shoal_loop_create(&loop);
    if (rc == 0)
        rc = shoal_rpc_server_create(&srv, loop);
    if (rc == 0)
        rc = shoal_rpc_server_add_service(srv, broker_service(b));
    if (rc == 0 && o->token)
        rc = shoal_rpc_server_set_token(srv, o->token);
    if (rc == 0 && (o->tls_cert || o->tls_key || o->tls_ca))
        rc = shoal_rpc_server_set_tls(srv, o->tls_cert, o->tls_key, o->tls_ca,
                                      o->tls_ca != NULL);
    for (size_t i = 0; rc == 0 && i < o->nlisten; i++) {
        rc = shoal_rpc_server_listen(srv, o->listen[i], o->attr);
        if (rc == 0)
            printf("shoal broker: listening on %s\n", o->listen[i]);
    }
    for (size_t i = 0; rc == 0 && !o->no_view && i < o->nlisten; i++)
        if (!strncmp(o->listen[i], "shm://", 6)) { /* the first one: see broker.h */
            shoal__test_point("broker.before_view");
            if (broker__view_open(b, o->listen[i] + 6, o->attr) < 0)
                fprintf(stderr, "shoal broker: no read view: %s\n", shoal_errdetail());
            else if (!o->data_dir && !o->no_lock_table &&
                     broker__locks_open(b, o->listen[i] + 6, o->attr) < 0)
                fprintf(stderr, "shoal broker: no lock table: %s\n", shoal_errdetail());
            break;
        }
    pthread_t sig;
    if (rc == 0 && pthread_create(&sig, NULL, signal_main, loop) != 0)
        rc = shoal__err(SHOAL_ESYS, "broker: cannot start a thread");
    if (rc == 0) {
        printf("shoal broker: ready\n");
        fflush(stdout);
        rc = shoal_loop_run(loop);
        pthread_kill(sig, SIGTERM); /* stopped otherwise: end the signal thread */
        pthread_join(sig, NULL);
    }
    if (b) {
        broker__locks_close(b); /* its locks stay with the broker until it ends */
        broker__view_close(b);  /* first: readers stop trusting it before anything ends */
    }
    shoal_rpc_server_destroy(srv);
    shoal_broker_destroy(b);
    shoal_loop_destroy(loop);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}
