/* cli.h — what the sub-commands of `shoal` share. */
#ifndef SHOAL_CLI_H
#define SHOAL_CLI_H

#include <shoal.h>

/* Exit codes, the same for every sub-command. */
enum {
    CLI_OK = 0,    /* success */
    CLI_FAIL = 1,  /* an object was missing, invalid or in an unexpected state */
    CLI_USAGE = 2, /* bad command line */
    CLI_SYSTEM = 3 /* an operating-system error */
};

/* A sub-command's command line, parsed. */
typedef struct cli_args {
    shoal_attr attr; /* --root DIR, --domain NAME */
    int flag;        /* the command's one-letter flag (-q, -f) was given */
    char **names;    /* the other arguments, in order (points into argv) */
    int nnames;
} cli_args;

/*
 * Parses argv[1..] of sub-command `cmd`: --root, --domain, --help/-h (prints `help`),
 * `flag` (e.g. "-q", or NULL for none) and names, of which there must be between
 * min_names and max_names. Returns -1 to go on, or the exit code to return now
 * (CLI_OK after --help, CLI_USAGE after a usage error, with the help on stderr).
 */
int cli_parse(int argc, char **argv, const char *cmd, const char *help, const char *flag,
              int min_names, int max_names, cli_args *out);
/* Maps a SHOAL_E* code to an exit code. */
int cli_exit_code(int rc);
/* Prints "shoal <cmd>: <error>: <detail>" to stderr and returns the exit code. */
int cli_fail(const char *cmd, int rc);

int cli_ls(int argc, char **argv);
int cli_inspect(int argc, char **argv);
int cli_rm(int argc, char **argv);
int cli_gc(int argc, char **argv);
/* shoal doctor: what this machine supports (cmd_doctor.c). */
int cli_doctor(int argc, char **argv);
/* shoal call: calls a method of a running service (cmd_call.c). */
int cli_call(int argc, char **argv);
/* shoal gen: runs protoc with protoc-gen-shoal (cmd_gen.c). */
int shoal_cmd_gen(int argc, char **argv);
/* shoal broker: runs a Manager broker (cmd_broker.c, broker/). */
int cli_broker(int argc, char **argv);

/* The command line of a broker's client (cmd_broker.c): --broker ADDRESS,
 * --token-file F, --tls-ca F, --tls-cert F, --tls-key F, --tls-server-name N, --root,
 * --domain, `flag` and names (min_names..max_names of them). Returns -1 to go on
 * (free c with cli_broker_client_free), or the exit code to return now. */
typedef struct cli_broker_client {
    const char *address;
    shoal_manager_config cfg;
    shoal_attr attr;
    char *token;
    int flag;
    char **names;
    int nnames;
} cli_broker_client;
int cli_broker_client_parse(int argc, char **argv, const char *cmd, const char *help,
                            const char *flag, int min_names, int max_names,
                            cli_broker_client *c);
void cli_broker_client_free(cli_broker_client *c);
/* Connects to c->address: -1 to go on, or the exit code (the error printed). */
int cli_broker_connect(cli_broker_client *c, const char *cmd, shoal_manager **m);
/* map[key] for a string key (NULL when absent). */
const shoal_mv *cli_mv_field(const shoal_mv *map, const char *key);
/* Whether argv has --broker (ls and inspect then ask a broker). */
int cli_broker_has(int argc, char **argv);
/* shoal ls --broker, shoal inspect --broker (cmd_ls.c, cmd_inspect.c). */
int cli_ls_broker(int argc, char **argv);
int cli_inspect_broker(int argc, char **argv);

#endif
