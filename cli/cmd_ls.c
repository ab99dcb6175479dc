/* cmd_ls.c — `shoal ls`: the objects of a domain, one per line. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char ls_help[] =
    "usage: shoal ls [--root DIR] [--domain NAME] [-q]\n"
    "Lists the objects of a domain: name, kind, element type, count (elements or\n"
    "capacity), bytes on disk, live users and creator pid. A damaged file is listed\n"
    "with its error. -q prints names only.\n";

static int print_row(const shoal_object_info *info, void *arg)
{
    if (*(int *)arg) {
        printf("%s\n", info->name);
        return 0;
    }
    if (info->status) {
        printf("%-24s %-10s (%s)\n", info->name, "?", shoal_strerror(info->status));
        return 0;
    }
    printf("%-24s %-10s %-16s %10llu %10llu %5d %8d%s\n", info->name,
           shoal_kind_name(info->kind), info->type_name[0] ? info->type_name : "-",
           (unsigned long long)info->count, (unsigned long long)info->file_size,
           info->users, info->creator_pid, info->anonymous ? "  anonymous" : "");
    return 0;
}

int cli_ls(int argc, char **argv)
{
    cli_args args;
    int status = cli_parse(argc, argv, "ls", ls_help, "-q", 0, 0, &args);
    if (status >= 0)
        return status;
    if (!args.flag)
        printf("%-24s %-10s %-16s %10s %10s %5s %8s\n", "NAME", "KIND", "TYPE", "COUNT",
               "BYTES", "USERS", "CREATOR");
    int rc = shoal_list(&args.attr, print_row, &args.flag);
    if (rc == SHOAL_ENOENT)
        return CLI_OK; /* a domain nobody used yet is empty */
    return rc ? cli_fail("ls", rc) : CLI_OK;
}
