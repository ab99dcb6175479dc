/*
 * rpc_nng.c — the nng transports (ipc://, tcp://, tls+tcp://).
 */
#include "rpc_internal.h"

int rpc__nng_connect(rpc_conn **out, const char *url, const shoal_rpc_channel_config *cfg)
{
    (void)out, (void)cfg;
    return shoal__err(SHOAL_EINVAL, "rpc %s: this libshoal was built without nng", url);
}

int rpc__nng_listen(shoal_rpc_server *s, const char *url, const shoal_attr *attr)
{
    (void)s, (void)attr;
    return shoal__err(SHOAL_EINVAL, "rpc %s: this libshoal was built without nng", url);
}
