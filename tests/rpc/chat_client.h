/* chat_client.h — the client's steps of the echo chats of test_rpc_direct.c and
 * test_rpc_inline.c: a response expected, a request and its echo, a unary echo, the
 * end of a stream that ends well. Each asserts (cmocka) what it expects. */
#ifndef TEST_CHAT_CLIENT_H
#define TEST_CHAT_CLIENT_H

#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* Expects the next response of c to be text (with its terminating 0). */
static void expect(shoal_rpc_call *c, const char *text)
{
    void *m;
    size_t len;
    assert_int_equal(shoal_rpc_call_recv(c, &m, &len), 1);
    assert_int_equal(len, strlen(text) + 1);
    assert_memory_equal(m, text, len);
    free(m);
}

/* Sends text, expects it back. */
static void round_trip(shoal_rpc_call *c, const char *text)
{
    T_OK(shoal_rpc_call_send(c, text, strlen(text) + 1));
    expect(c, text);
}

/* A unary call of method m echoing text: its status code, SHOAL_RPC_DATA_LOSS when the
 * response is not text. */
static int unary_echo(shoal_rpc_channel *ch, const char *service,
                      const shoal_rpc_method *m, const char *text)
{
    void *resp = NULL;
    size_t len = 0;
    int code = shoal_rpc_unary(ch, service, m, text, strlen(text) + 1, &resp, &len, NULL,
                               NULL, 0);
    if (code == SHOAL_RPC_OK && (len != strlen(text) + 1 || memcmp(resp, text, len)))
        code = SHOAL_RPC_DATA_LOSS;
    free(resp);
    return code;
}

/* Half-closes c, expects the end of its responses and status OK, frees it. */
static void finish_ok(shoal_rpc_call *c)
{
    T_OK(shoal_rpc_call_close_send(c));
    void *m;
    size_t len;
    assert_int_equal(shoal_rpc_call_recv(c, &m, &len), 0);
    assert_int_equal(shoal_rpc_call_finish(c, NULL, 0), SHOAL_RPC_OK);
    shoal_rpc_call_free(c);
}

#endif
