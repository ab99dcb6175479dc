/* svct_handlers.h — the handlers of svct.proto's Gen service that the generated-code
 * test (svcgen_suite.c) and the peer of the other languages' tests (svcpeer.c) share:
 * Sum adds the client's stream, Chat doubles each message back. Include after
 * svct.shoal.h. */
#ifndef SVCT_HANDLERS_H
#define SVCT_HANDLERS_H

static int h_sum(shoal_rpc_ctx *ctx, void *arg)
{
    (void)arg;
    Fix v, sum = Fix_INIT;
    int rc;
    while ((rc = Gen_Sum_ctx_next(ctx, &v)) == 1)
        sum.n += v.n;
    if (rc < 0)
        return SHOAL_RPC_CANCELLED;
    return Gen_Sum_ctx_send(ctx, &sum) == 0 ? SHOAL_RPC_OK : SHOAL_RPC_INTERNAL;
}

static int h_chat(shoal_rpc_ctx *ctx, void *arg)
{
    (void)arg;
    Enc *v;
    int rc;
    while ((rc = Gen_Chat_ctx_next(ctx, &v)) == 1) {
        v->n *= 2;
        rc = Gen_Chat_ctx_send(ctx, v);
        Enc_free(v);
        if (rc < 0)
            return SHOAL_RPC_CANCELLED;
    }
    return rc == 0 ? SHOAL_RPC_OK : SHOAL_RPC_CANCELLED;
}

#endif
