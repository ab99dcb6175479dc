/*
 * svcpeer.c — a C peer of the generated svct.Gen service (proto/svct.proto) for the
 * tests that mix languages (bindings/python/tests/test_rpc.py starts it):
 *
 *   svcpeer server ADDRESS...   serves svct.Gen on the addresses (tcp:// with the token
 *                               "rpc-test-token"), prints "ready", then one line per
 *                               event its handlers see ("cancelled Wait", ...), until
 *                               it is killed;
 *   svcpeer client ADDRESS      calls every method of a server at ADDRESS and checks
 *                               the answers: prints "ok NAME" per check and exits 0,
 *                               or prints "FAIL NAME: why" and exits 1.
 *
 * The service, as the Python peer serves it too: Ask(Fix) -> Enc {n + 1, text and
 * the "who" metadata echoed, items {n, n}}, n == -1 fails FAILED_PRECONDITION;
 * Count(Enc) -> n Fix 0..n-1 (20 ms apart when text is "slow"); Sum(stream Fix) ->
 * the sum; Chat(stream Enc) -> each back with n * 2; Wait(Fix) -> waits until the
 * call ends; Missing -> no handler (UNIMPLEMENTED).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "svct.shoal.h"
#include "svct_handlers.h"

#define TOKEN "rpc-test-token"

static void event(const char *what)
{
    printf("%s\n", what);
    fflush(stdout);
}

/* ---- the server ----------------------------------------------------------------------
 */

static int h_ask(shoal_rpc_ctx *ctx, const Fix *req, void *arg)
{
    (void)arg;
    if (req->n == -1) {
        shoal_rpc_ctx_set_detail(ctx, "negative");
        return SHOAL_RPC_FAILED_PRECONDITION;
    }
    const char *who = shoal_rpc_md_get(shoal_rpc_ctx_metadata(ctx), "who");
    char text[sizeof(req->text.data) + SHOAL_RPC_VALUE_MAX + 1];
    snprintf(text, sizeof(text), "%.*s%s", (int)req->text.len, req->text.data,
             who ? who : "");
    if (who)
        shoal_rpc_ctx_add_header(ctx, "who", who);
    shoal_rpc_ctx_add_trailer(ctx, "served-by", "c");
    int32_t items[2] = {req->n, req->n};
    Enc resp = Enc_INIT;
    resp.n = req->n + 1;
    resp.text = text;
    resp.n_items = 2;
    resp.items = items;
    return Gen_Ask_ctx_send(ctx, &resp) == 0 ? SHOAL_RPC_OK : SHOAL_RPC_INTERNAL;
}

static int h_count(shoal_rpc_ctx *ctx, const Enc *req, void *arg)
{
    (void)arg;
    int slow = req->text && strcmp(req->text, "slow") == 0;
    for (int i = 0; i < req->n; i++) {
        Fix v = Fix_INIT;
        v.n = i;
        if (Gen_Count_ctx_send(ctx, &v) < 0) {
            event("cancelled Count");
            return SHOAL_RPC_CANCELLED;
        }
        if (slow)
            usleep(20000);
    }
    return SHOAL_RPC_OK;
}

static int h_wait(shoal_rpc_ctx *ctx, const Fix *req, void *arg)
{
    (void)req;
    (void)arg;
    while (!shoal_rpc_ctx_cancelled(ctx))
        usleep(1000);
    event("cancelled Wait");
    return SHOAL_RPC_CANCELLED;
}

static int server_main(int n, char **addresses)
{
    static const Gen_handlers h = {.Ask = h_ask,
                                   .Count = h_count,
                                   .Sum = h_sum,
                                   .Chat = h_chat,
                                   .Wait = h_wait,
                                   .blocking = 1ul << Gen_METHOD_Wait};
    static Gen_server skel;
    shoal_loop *loop;
    shoal_rpc_server *s;
    if (shoal_loop_create(&loop) < 0 || shoal_rpc_server_create(&s, loop) < 0 ||
        Gen_server_add(s, &skel, &h, NULL) < 0 ||
        shoal_rpc_server_set_token(s, TOKEN) < 0)
        goto fail;
    for (int i = 0; i < n; i++)
        if (shoal_rpc_server_listen(s, addresses[i], NULL) < 0)
            goto fail;
    event("ready");
    return shoal_loop_run(loop) == 0 ? 0 : 2; /* until killed */
fail:
    fprintf(stderr, "svcpeer server: %s\n", shoal_errdetail());
    return 1;
}

/* ---- the client ----------------------------------------------------------------------
 */

static int failures;

static void verdict(const char *name, int ok, const char *why)
{
    if (ok)
        printf("ok %s\n", name);
    else
        printf("FAIL %s: %s\n", name, why);
    failures += !ok;
    fflush(stdout);
}

static void check_ask(Gen_stub *stub)
{
    Fix req = Fix_INIT;
    req.n = 41;
    Fix_set_text(&req, "hi ");
    shoal_rpc_md md = {0};
    shoal_rpc_md_add(&md, "who", "c");
    shoal_rpc_options opts = {.timeout = SHOAL_SEC(10), .metadata = &md};
    Enc *resp = NULL;
    char detail[SHOAL_RPC_DETAIL_MAX] = "";
    int code = Gen_Ask(stub, &req, &resp, &opts, detail, sizeof(detail));
    verdict("ask",
            code == SHOAL_RPC_OK && resp && resp->n == 42 &&
                strcmp(resp->text, "hi c") == 0 && resp->n_items == 2 &&
                resp->items[1] == 41,
            detail);
    if (resp)
        Enc_free(resp);
    shoal_rpc_md_clear(&md);
    req.n = -1;
    code = Gen_Ask(stub, &req, &resp, NULL, detail, sizeof(detail));
    verdict("ask_fails", code == SHOAL_RPC_FAILED_PRECONDITION, detail);
    Fix out;
    code = Gen_Missing(stub, &req, &out, NULL, detail, sizeof(detail));
    verdict("missing", code == SHOAL_RPC_UNIMPLEMENTED, detail);
    shoal_rpc_options quick = {.timeout = SHOAL_MS(200)};
    code = Gen_Wait(stub, &req, &out, &quick, detail, sizeof(detail));
    verdict("deadline", code == SHOAL_RPC_DEADLINE_EXCEEDED, detail);
}

static void check_count(Gen_stub *stub)
{
    Gen_Count_call c;
    Enc req = Enc_INIT;
    req.n = 40; /* over the window: flow control takes part */
    char detail[SHOAL_RPC_DETAIL_MAX] = "";
    Fix f;
    int got = 0, in_order = 1;
    if (Gen_Count_start(&c, stub, &req, NULL) == 0) {
        while (Gen_Count_next(&c, &f) == 1)
            in_order &= f.n == got++;
        int code = Gen_Count_finish(&c, detail, sizeof(detail));
        verdict("count", code == SHOAL_RPC_OK && got == 40 && in_order, detail);
        Gen_Count_free(&c);
    }
    req.text = "slow";
    req.n = 1000;
    if (Gen_Count_start(&c, stub, &req, NULL) == 0) {
        got = Gen_Count_next(&c, &f) == 1;
        Gen_Count_cancel(&c);
        int code = Gen_Count_finish(&c, detail, sizeof(detail));
        verdict("cancel", got && code == SHOAL_RPC_CANCELLED, detail);
        Gen_Count_free(&c);
    }
}

static void check_sum_chat(Gen_stub *stub)
{
    char detail[SHOAL_RPC_DETAIL_MAX] = "";
    Gen_Sum_call s;
    Fix v = Fix_INIT, sum = Fix_INIT;
    if (Gen_Sum_start(&s, stub, NULL) == 0) {
        for (int i = 0; i < 40; i++) {
            v.n = i;
            Gen_Sum_send(&s, &v);
        }
        Gen_Sum_close_send(&s);
        int got = Gen_Sum_next(&s, &sum) == 1;
        int code = Gen_Sum_finish(&s, detail, sizeof(detail));
        verdict("sum", got && code == SHOAL_RPC_OK && sum.n == 780, detail);
        Gen_Sum_free(&s);
    }
    Gen_Chat_call c;
    if (Gen_Chat_start(&c, stub, NULL) == 0) {
        int ok = 1;
        for (int i = 0; i < 40; i++) { /* one in flight at a time */
            Enc e = Enc_INIT, *back = NULL;
            e.n = i;
            ok &= Gen_Chat_send(&c, &e) == 0 && Gen_Chat_next(&c, &back) == 1 &&
                  back->n == 2 * i;
            if (back)
                Enc_free(back);
        }
        Gen_Chat_close_send(&c);
        Enc *extra = NULL;
        ok &= Gen_Chat_next(&c, &extra) == 0;
        int code = Gen_Chat_finish(&c, detail, sizeof(detail));
        verdict("chat", ok && code == SHOAL_RPC_OK, detail);
        Gen_Chat_free(&c);
    }
}

static int client_main(const char *address)
{
    shoal_rpc_channel_config cfg = {.connect_timeout = SHOAL_SEC(30), .token = TOKEN};
    Gen_stub stub;
    if (Gen_stub_open(&stub, address, &cfg) < 0) {
        printf("FAIL open: %s\n", shoal_errdetail());
        return 1;
    }
    check_ask(&stub);
    check_count(&stub);
    check_sum_chat(&stub);
    Gen_stub_close(&stub);
    return failures ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc > 2 && strcmp(argv[1], "server") == 0)
        return server_main(argc - 2, argv + 2);
    if (argc == 3 && strcmp(argv[1], "client") == 0)
        return client_main(argv[2]);
    fprintf(stderr, "usage: svcpeer server ADDRESS... | svcpeer client ADDRESS\n");
    return 2;
}
