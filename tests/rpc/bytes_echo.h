/* bytes_echo.h — a unary method that answers its request as it came (bytes, no
 * check), for the tests that need a server and nothing of the typed layer, and for the
 * rpc benchmark (bench/bench_rpc.c). */
#ifndef BYTES_ECHO_H
#define BYTES_ECHO_H

#include <stdlib.h>

#include "shoal.h"

static int bytes_echo(shoal_rpc_ctx *ctx, void *arg)
{
    (void)arg;
    void *m;
    size_t len;
    if (shoal_rpc_ctx_recv(ctx, &m, &len) != 1)
        return SHOAL_RPC_INVALID_ARGUMENT;
    int rc = shoal_rpc_ctx_send(ctx, m, len);
    free(m);
    return rc ? SHOAL_RPC_UNAVAILABLE : SHOAL_RPC_OK;
}

#endif
