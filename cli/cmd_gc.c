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
    cli_args args;
    int status = cli_parse(argc, argv, "gc", gc_help, NULL, 0, 0, &args);
    if (status >= 0)
        return status;
    int n = shoal_gc(&args.attr);
    if (n == SHOAL_ENOENT)
        n = 0; /* a domain nobody used yet */
    if (n < 0)
        return cli_fail("gc", n);
    printf("removed %d\n", n);
    return CLI_OK;
}
