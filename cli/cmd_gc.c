/* cmd_gc.c — `shoal gc`: remove segments that no live process uses. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char gc_help[] =
    "usage: shoal gc [--root DIR] [--domain NAME]\n"
    "Removes the domain's segments that no live process has open, and what creators\n"
    "that died during initialisation left behind. Prints how many were removed.\n";

int cli_gc(int argc, char **argv)
{
    shoal_attr attr = {0};
    for (int i = 1; i < argc; i++) {
        int used = cli_common_option(argc, argv, &i, &attr);
        if (used < 0)
            return CLI_USAGE;
        if (used)
            continue;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(gc_help, stdout);
            return CLI_OK;
        }
        fprintf(stderr, "shoal gc: unexpected argument \"%s\"\n%s", argv[i], gc_help);
        return CLI_USAGE;
    }
    int n = shoal_gc(&attr);
    if (n == SHOAL_ENOENT)
        n = 0;
    if (n < 0)
        return cli_fail("gc", n);
    printf("removed %d\n", n);
    return CLI_OK;
}
