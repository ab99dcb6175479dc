/*
 * cmd_broker.c — `shoal broker`: run a Manager broker (broker/, docs/broker.md), with
 * --stop-at-stdin-eof stopped when its parent goes (the private brokers the Python,
 * Rust and Node clients start: their pipe on its stdin ends when they die); and
 * the command line of the commands that talk to one as clients (`shoal ls --broker`,
 * `shoal inspect --broker`): the address, its token and TLS files, and a connection.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../broker/broker.h"
#include "cli.h"

static const char broker_help[] =
    "usage: shoal broker --listen ADDRESS [--listen ADDRESS ...] [--data-dir DIR]\n"
    "                    [--sync=commit|none] [--token-file FILE] [--root DIR]\n"
    "                    [--domain NAME] [--tls-cert FILE --tls-key FILE [--tls-ca "
    "FILE]]\n"
    "                    [--no-view] [--no-lock-table] [--stop-at-stdin-eof]\n"
    "Serves multiprocessing.Manager's objects (dict, list, Namespace, Value, Array,\n"
    "Queue, Lock, RLock, Semaphore, BoundedSemaphore, Event, Condition, Barrier) to\n"
    "clients in any language, until SIGINT or SIGTERM.\n"
    "  --listen ADDRESS  shm://NAME (this host, shared memory), ipc:///PATH,\n"
    "                    tcp://HOST:PORT (needs --token-file), or tls+tcp://HOST:PORT\n"
    "                    (needs --tls-cert and --tls-key, and --tls-ca or --token-file)\n"
    "  --data-dir DIR    keep the objects in LMDB there: a write is acknowledged once\n"
    "                    committed, and a restarted broker has it\n"
    "  --sync=commit     (default) fsync each commit; --sync=none: survive a killed\n"
    "                    broker but not a crashed machine\n"
    "  --token-file F    the secret tcp:// clients must prove they know (first line)\n"
    "  --tls-cert F, --tls-key F  the broker's certificate (PEM, chain after it) and\n"
    "                    its unencrypted private key, for tls+tcp://\n"
    "  --tls-ca F        require client certificates signed by this CA (PEM)\n"
    "  --no-view         do not publish the read view beside the first shm:// address\n"
    "                    (clients on this host then send every read to the broker)\n"
    "  --no-lock-table   keep Lock and RLock objects in the broker: shm:// clients do\n"
    "                    not take them in shared memory (without a view, or with\n"
    "                    --data-dir, they never do)\n"
    "  --stop-at-stdin-eof  stop as on SIGTERM when the standard input ends: a parent\n"
    "                    that holds the write end of a pipe there and dies (however)\n"
    "                    stops its broker\n";

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

/* --stop-at-stdin-eof: a thread reads the standard input until it ends (the writer,
 * the parent, closed it or died), then sends the process SIGTERM, which the broker's
 * signal thread takes as a clean stop. The thread blocks every signal, so that SIGTERM
 * reaches that signal thread; the main thread blocks SIGINT and SIGTERM from the start
 * and for good, so that one sent before the broker waits for it is taken then, and a
 * second one (a SIGTERM, then the end of stdin) does not kill the process once the
 * broker, stopping, has restored the mask it was called with. */
static void *stdin_watch(void *arg)
{
    (void)arg;
    char buf[256];
    ssize_t n;
    while ((n = read(STDIN_FILENO, buf, sizeof(buf))) != 0)
        if (n < 0 && errno != EINTR)
            break;
    kill(getpid(), SIGTERM);
    return NULL;
}

static int start_stdin_watch(void)
{
    sigset_t all, old, stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL); /* in this thread: see above */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_t t;
    int rc = pthread_create(&t, NULL, stdin_watch, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        return -1;
    pthread_detach(t);
    return 0;
}

static int usage_error_of(const char *cmd, const char *what, const char *help)
{
    fprintf(stderr, "shoal %s: %s\n\n%s", cmd, what, help);
    return CLI_USAGE;
}

static int usage_error(const char *what)
{
    return usage_error_of("broker", what, broker_help);
}

int cli_broker(int argc, char **argv)
{
    const char **listen = calloc((size_t)argc, sizeof(*listen));
    shoal_broker_options o = {.listen = listen, .sync = 1};
    shoal_attr attr = {0};
    const char *token_file = NULL;
    int status = -1, stdin_eof = 0;
    for (int i = 1; i < argc && status < 0; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(broker_help, stdout);
            status = CLI_OK;
        } else if (!strcmp(a, "--no-view")) {
            o.no_view = 1;
        } else if (!strcmp(a, "--no-lock-table")) {
            o.no_lock_table = 1;
        } else if (!strcmp(a, "--stop-at-stdin-eof")) {
            stdin_eof = 1;
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
        } else if (!strcmp(a, "--tls-cert")) {
            o.tls_cert = argv[++i];
        } else if (!strcmp(a, "--tls-key")) {
            o.tls_key = argv[++i];
        } else if (!strcmp(a, "--tls-ca")) {
            o.tls_ca = argv[++i];
        } else {
            status = usage_error("unknown option");
        }
    }
    char *token = NULL;
    if (status < 0 && (o.tls_cert || o.tls_key || o.tls_ca) &&
        (!o.tls_cert || !o.tls_key))
        status = usage_error("--tls-cert and --tls-key go together");
    if (status < 0 && !o.nlisten)
        status = usage_error("no --listen address");
    if (status < 0 && token_file && !(token = read_token(token_file))) {
        fprintf(stderr, "shoal broker: cannot read the token file %s\n", token_file);
        status = CLI_FAIL;
    }
    if (status < 0 && stdin_eof && start_stdin_watch() < 0) {
        fprintf(stderr, "shoal broker: cannot start the thread watching stdin\n");
        status = CLI_SYSTEM;
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

/* ---- the client side ----------------------------------------------------------------
 */

int cli_broker_client_parse(int argc, char **argv, const char *cmd, const char *help,
                            const char *flag, int min_names, int max_names,
                            cli_broker_client *c)
{
    memset(c, 0, sizeof(*c));
    c->names = calloc((size_t)argc, sizeof(*c->names));
    const char *token_file = NULL;
    int status = c->names ? -1 : CLI_SYSTEM;
    for (int i = 1; i < argc && status < 0; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        const char **opt = !strcmp(a, "--broker")            ? &c->address
                           : !strcmp(a, "--token-file")      ? &token_file
                           : !strcmp(a, "--tls-ca")          ? &c->cfg.tls_ca_file
                           : !strcmp(a, "--tls-cert")        ? &c->cfg.tls_cert_file
                           : !strcmp(a, "--tls-key")         ? &c->cfg.tls_key_file
                           : !strcmp(a, "--tls-server-name") ? &c->cfg.tls_server_name
                           : !strcmp(a, "--root")            ? &c->attr.root
                           : !strcmp(a, "--domain")          ? &c->attr.domain
                                                             : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(help, stdout);
            status = CLI_OK;
        } else if (flag && !strcmp(a, flag)) {
            c->flag = 1;
        } else if (opt && !v) {
            status = usage_error_of(cmd, "missing value", help);
        } else if (opt) {
            *opt = argv[++i];
        } else if (a[0] == '-') {
            status = usage_error_of(cmd, "unknown option", help);
        } else {
            c->names[c->nnames++] = argv[i];
        }
    }
    if (status < 0 && (c->nnames < min_names || c->nnames > max_names))
        status = usage_error_of(
            cmd, c->nnames < min_names ? "missing NAME" : "too many names", help);
    if (status < 0 && token_file && !(c->token = read_token(token_file))) {
        fprintf(stderr, "shoal %s: cannot read the token file %s\n", cmd, token_file);
        status = CLI_FAIL;
    }
    c->cfg.token = c->token;
    c->cfg.attr = &c->attr;
    if (status >= 0)
        cli_broker_client_free(c);
    return status;
}

void cli_broker_client_free(cli_broker_client *c)
{
    free(c->names);
    free(c->token);
    c->names = NULL;
    c->token = NULL;
}

int cli_broker_has(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--broker"))
            return 1;
    return 0;
}

int cli_broker_connect(cli_broker_client *c, const char *cmd, shoal_manager **m)
{
    if (!c->address) {
        fprintf(stderr, "shoal %s: --broker needs an address\n", cmd);
        return CLI_USAGE;
    }
    int rc = shoal_manager_connect(m, c->address, &c->cfg);
    if (rc == SHOAL_ENOENT || rc == SHOAL_ETIMEDOUT) {
        fprintf(stderr, "shoal %s: no broker at %s (%s)\n", cmd, c->address,
                shoal_errdetail());
        return cli_exit_code(rc);
    }
    return rc < 0 ? cli_fail(cmd, rc) : -1;
}

const shoal_mv *cli_mv_field(const shoal_mv *map, const char *key)
{
    for (size_t i = 0; i < shoal_mv_len(map); i++) {
        const shoal_mv *k = shoal_mv_key(map, i);
        if (shoal_mv_type(k) == SHOAL_MV_STR && !strcmp(shoal_mv_as_str(k), key))
            return shoal_mv_value(map, i);
    }
    return NULL;
}
