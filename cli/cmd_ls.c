/*
 * cmd_ls.c — `shoal ls`: the objects of a domain, one per line. The rows are
 * collected first so that each column is as wide as its widest entry: generated
 * (anonymous) names and long kinds such as "bounded-semaphore" keep the table aligned.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char ls_help[] =
    "usage: shoal ls [--root DIR] [--domain NAME] [-q]\n"
    "Lists the objects of a domain: name, kind, element type, count (elements or\n"
    "capacity), bytes on disk, live users and creator pid. A damaged file is listed\n"
    "with its error. -q prints names only.\n";

struct rows {
    shoal_object_info *v;
    size_t n, cap;
    int failed;
};

static int collect(const shoal_object_info *info, void *arg)
{
    struct rows *r = arg;
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        shoal_object_info *grown = realloc(r->v, cap * sizeof(*grown));
        if (!grown) {
            r->failed = 1;
            return 1;
        }
        r->v = grown;
        r->cap = cap;
    }
    r->v[r->n++] = *info;
    return 0;
}

static const char *kind_col(const shoal_object_info *info)
{
    return info->status ? "?" : shoal_kind_name(info->kind);
}

static const char *type_col(const shoal_object_info *info)
{
    return info->status ? "" : info->type_name[0] ? info->type_name : "-";
}

static int widest(const struct rows *r, const char *title,
                  const char *(*col)(const shoal_object_info *))
{
    size_t w = strlen(title);
    for (size_t i = 0; i < r->n; i++) {
        size_t k = strlen(col(&r->v[i]));
        w = k > w ? k : w;
    }
    return (int)w;
}

static const char *name_col(const shoal_object_info *info)
{
    return info->name;
}

/* Width of the widest number among the rows' counts (bytes: file sizes). */
static int widest_number(const struct rows *r, int min, bool bytes)
{
    int w = min;
    for (size_t i = 0; i < r->n; i++) {
        const shoal_object_info *info = &r->v[i];
        int k = snprintf(NULL, 0, "%llu",
                         (unsigned long long)(bytes ? info->file_size : info->count));
        w = k > w ? k : w;
    }
    return w;
}

static void print_table(const struct rows *r)
{
    int wn = widest(r, "NAME", name_col), wk = widest(r, "KIND", kind_col),
        wt = widest(r, "TYPE", type_col), wc = widest_number(r, 5, false),
        wb = widest_number(r, 8, true);
    printf("%-*s  %-*s  %-*s  %*s  %*s  %5s  %8s\n", wn, "NAME", wk, "KIND", wt, "TYPE",
           wc, "COUNT", wb, "BYTES", "USERS", "CREATOR");
    for (size_t i = 0; i < r->n; i++) {
        const shoal_object_info *info = &r->v[i];
        if (info->status) {
            printf("%-*s  %-*s  (%s)\n", wn, info->name, wk, "?",
                   shoal_strerror(info->status));
            continue;
        }
        printf("%-*s  %-*s  %-*s  %*llu  %*llu  %5d  %8d%s\n", wn, info->name, wk,
               kind_col(info), wt, type_col(info), wc, (unsigned long long)info->count,
               wb, (unsigned long long)info->file_size, info->users, info->creator_pid,
               info->anonymous ? "  anonymous" : "");
    }
}

int cli_ls(int argc, char **argv)
{
    cli_args args;
    int status = cli_parse(argc, argv, "ls", ls_help, "-q", 0, 0, &args);
    if (status >= 0)
        return status;
    struct rows r = {0};
    int rc = shoal_list(&args.attr, collect, &r);
    if (rc == SHOAL_ENOENT)
        rc = 0; /* a domain nobody used yet is empty */
    if (!rc && r.failed) {
        fprintf(stderr, "shoal ls: out of memory\n");
        free(r.v);
        return CLI_SYSTEM;
    }
    if (rc) {
        free(r.v);
        return cli_fail("ls", rc);
    }
    if (args.flag)
        for (size_t i = 0; i < r.n; i++)
            printf("%s\n", r.v[i].name);
    else
        print_table(&r);
    free(r.v);
    return CLI_OK;
}
