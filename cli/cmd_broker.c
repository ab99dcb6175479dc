/* cmd_broker.c — `shoal broker`: run a Manager broker (broker/, docs/broker.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../broker/broker.h"
#include "cli.h"

static const char broker_help[] =
    "usage: shoal broker --listen ADDRESS [--listen ADDRESS ...] [--data-dir DIR]\n"
    "                    [--sync=commit|none] [--token-file FILE] [--root DIR]\n"
    "                    [--domain NAME]\n"
    "Serves multiprocessing.Manager's objects (dict, list, Namespace, Value, Array,\n"
    "Queue, Lock, RLock, Semaphore, BoundedSemaphore, Event, Condition, Barrier) to\n"
    "clients in any language, until SIGINT or SIGTERM.\n"
    "  --listen ADDRESS  shm://NAME (this host, shared memory), ipc:///PATH, or\n"
    "                    tcp://HOST:PORT (needs --token-file)\n"
    "  --data-dir DIR    keep the objects in LMDB there: a write is acknowledged once\n"
    "                    committed, and a restarted broker has it\n"
    "  --sync=commit     (default) fsync each commit; --sync=none: survive a killed\n"
    "                    broker but not a crashed machine\n"
    "  --token-file F    the secret tcp:// clients must prove they know (first line)\n";

static char *read_token(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char buf[512];
    char *line = fgets(buf, sizeof(buf), f);
    fclose(f);
    if (!line)
        return NULL;
    buf[strcspn(buf, "\r\n")] = 0;
    return strdup(buf);
}

static int usage_error(const char *what)
{
    fprintf(stderr, "shoal broker: %s\n\n%s", what, broker_help);
    return CLI_USAGE;
}

int cli_broker(int argc, char **argv)
{
    const char **listen = calloc((size_t)argc, sizeof(*listen));
    shoal_broker_options o = {.listen = listen, .sync = 1};
    shoal_attr attr = {0};
    const char *token_file = NULL;
    int status = -1;
    for (int i = 1; i < argc && status < 0; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(broker_help, stdout);
            status = CLI_OK;
        } else if (!strcmp(a, "--sync=commit") || !strcmp(a, "--sync=none")) {
            o.sync = !strcmp(a, "--sync=commit");
        } else if (!v) {
            status = usage_error(strncmp(a, "--", 2) ? "unexpected argument"
                                                     : "missing value");
        } else if (!strcmp(a, "--listen")) {
            listen[o.nlisten++] = argv[++i];
        } else if (!strcmp(a, "--data-dir")) {
            o.data_dir = argv[++i];
        } else if (!strcmp(a, "--token-file")) {
            token_file = argv[++i];
        } else if (!strcmp(a, "--root")) {
            attr.root = argv[++i];
        } else if (!strcmp(a, "--domain")) {
            attr.domain = argv[++i];
        } else {
            status = usage_error("unknown option");
        }
    }
    char *token = NULL;
    if (status < 0 && !o.nlisten)
        status = usage_error("no --listen address");
    if (status < 0 && token_file && !(token = read_token(token_file))) {
        fprintf(stderr, "shoal broker: cannot read the token file %s\n", token_file);
        status = CLI_FAIL;
    }
    if (status < 0) {
        o.token = token;
        o.attr = &attr;
        int rc = shoal_broker_serve(&o);
        status = rc < 0 ? cli_fail("broker", rc) : CLI_OK;
    }
    free(token);
    free(listen);
    return status;
}
