/* cmd_rm.c — `shoal rm NAME...`: remove objects by name. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char rm_help[] =
    "usage: shoal rm [--root DIR] [--domain NAME] [-f] NAME...\n"
    "Removes the named objects. Processes using them keep their mappings; new opens\n"
    "fail. -f: a missing name is not an error. Exit 1 if any name was missing.\n";

int cli_rm(int argc, char **argv)
{
    cli_args args;
    int status = cli_parse(argc, argv, "rm", rm_help, "-f", 1, argc, &args);
    if (status >= 0)
        return status;
    status = CLI_OK;
    for (int i = 0; i < args.nnames; i++) {
        int rc = shoal_unlink(args.names[i], &args.attr);
        if (rc && !(args.flag && rc == SHOAL_ENOENT)) {
            int code = cli_fail("rm", rc);
            if (code > status)
                status = code;
        }
    }
    return status;
}
