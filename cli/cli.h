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

/* Parses the global --root/--domain options at argv[*i]; returns 1 if it consumed
 * one (advancing *i), 0 if argv[*i] is not one, -1 on a missing argument. */
int cli_common_option(int argc, char **argv, int *i, shoal_attr *attr);
/* Maps a SHOAL_E* code to an exit code. */
int cli_exit_code(int rc);
/* Prints "shoal <cmd>: <error>: <detail>" to stderr and returns the exit code. */
int cli_fail(const char *cmd, int rc);

int cli_ls(int argc, char **argv);
int cli_inspect(int argc, char **argv);
int cli_rm(int argc, char **argv);
int cli_gc(int argc, char **argv);
/* shoal gen: runs protoc with protoc-gen-shoal (cmd_gen.c). */
int shoal_cmd_gen(int argc, char **argv);

#endif
