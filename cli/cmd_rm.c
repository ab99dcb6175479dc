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
    shoal_attr attr = {0};
    int force = 0, names = 0, status = CLI_OK;
    for (int pass = 0; pass < 2; pass++) { /* options first, then names */
        for (int i = 1; i < argc; i++) {
            int used = cli_common_option(argc, argv, &i, &attr);
            if (used < 0)
                return CLI_USAGE;
            if (used)
                continue;
            if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
                fputs(rm_help, stdout);
                return CLI_OK;
            }
            if (!strcmp(argv[i], "-f")) {
                force = 1;
                continue;
            }
            if (pass == 0) {
                names++;
                continue;
            }
            int rc = shoal_unlink(argv[i], &attr);
            if (rc && !(force && rc == SHOAL_ENOENT)) {
                int code = cli_fail("rm", rc);
                if (code > status)
                    status = code;
            }
        }
        if (pass == 0 && names == 0) {
            fprintf(stderr, "shoal rm: no name given\n%s", rm_help);
            return CLI_USAGE;
        }
    }
    return status;
}
