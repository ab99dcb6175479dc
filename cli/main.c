/*
 * main.c — the `shoal` command: inspect and manage shared objects, run the schema
 * compiler. Each sub-command lives in its own file.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"ls", cli_ls, "list the objects of a domain: kind, type, size, users"},
    {"inspect", cli_inspect, "show an object's header, users, lock state and contents"},
    {"rm", cli_rm, "remove objects by name"},
    {"gc", cli_gc, "remove segments no live process uses"},
    {"gen", shoal_cmd_gen, "generate code from .proto files (runs protoc)"},
    {"doctor", cli_doctor, "what this machine supports and what shoal will use"},
    {"call", cli_call, "call a method of a running service (text format requests)"},
    {"broker", cli_broker,
     "run a Manager broker (shared dicts, lists, queues, locks...)"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: shoal <command> [options] [args]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nCommon options: --root DIR (default $SHOAL_ROOT or /dev/shm/shoal),\n"
                 "                --domain NAME (default $SHOAL_DOMAIN or \"default\").\n"
                 "'shoal <command> --help' describes a command.\n\n"
                 "Exit codes: 0 success, 1 object missing or invalid, 2 usage error,\n"
                 "            3 system error.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        usage(stdout);
        return CLI_OK;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "shoal: unknown command \"%s\"\n\n", argv[1]);
    usage(stderr);
    return CLI_USAGE;
}
