/*
 * cmd_ls.c — `shoal ls`: the objects of a domain, one per line. The rows are
 * collected first so that each column is as wide as its widest entry: generated
 * (anonymous) names and long kinds such as "bounded-semaphore" keep the table aligned.
 *
 * `shoal ls --broker ADDRESS`: the objects a Manager broker holds instead — its
 * "names" request, then one "describe" per object (all sent before the first reply
 * is read), sorted by name: name, kind, size (items of a dict, list, queue, ...).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char ls_help[] =
    "usage: shoal ls [--root DIR] [--domain NAME] [-q]\n"
    "       shoal ls --broker ADDRESS [--token-file F] [--tls-ca F [--tls-cert F\n"
    "                --tls-key F] [--tls-server-name N]] [--root DIR] [--domain NAME] "
    "[-q]\n"
    "Lists the objects of a domain: name, kind, element type, count (elements or\n"
    "capacity), bytes on disk, live users and creator pid. A damaged file is listed\n"
    "with its error. -q prints names only.\n"
    "With --broker, lists the objects of the Manager broker at ADDRESS instead: name,\n"
    "kind and size (entries or items; 0 for locks and the like).\n";

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

/* ---- a broker's objects ------------------------------------------------------------ */

struct brow {
    const char *name;
    shoal_mv *desc; /* its "describe" result */
};

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct brow *)a)->name, ((const struct brow *)b)->name);
}

/* Describes every object of `names` (pipelined) into rows[]; returns 0 or the code. */
static int describe_all(shoal_manager *m, const shoal_mv *names, struct brow *rows)
{
    size_t n = shoal_mv_len(names);
    uint64_t *ids = calloc(n ? n : 1, sizeof(*ids));
    int rc = ids ? 0 : SHOAL_ENOMEM;
    size_t sent = 0;
    for (; rc == 0 && sent < n; sent++) {
        rows[sent].name = shoal_mv_as_str(shoal_mv_item(shoal_mv_item(names, sent), 0));
        shoal_manager_request r = {rows[sent].name, "describe", NULL, 0, NULL, 0, 0};
        rc = shoal_manager_submit(m, &r, &ids[sent]);
    }
    for (size_t i = 0; i < sent; i++) {
        int w = shoal_manager_wait(m, ids[i], &rows[i].desc);
        rc = rc ? rc : w == SHOAL_ENOENT ? 0 : w; /* deleted meanwhile: no row */
    }
    free(ids);
    return rc;
}

static void print_broker_table(const struct brow *rows, size_t n, int names_only)
{
    int wn = 4, wk = 4;
    for (size_t i = 0; i < n; i++) {
        const char *k = shoal_mv_as_str(cli_mv_field(rows[i].desc, "kind"));
        wn = (int)strlen(rows[i].name) > wn ? (int)strlen(rows[i].name) : wn;
        wk = (int)strlen(k) > wk ? (int)strlen(k) : wk;
    }
    if (!names_only)
        printf("%-*s  %-*s  %8s\n", wn, "NAME", wk, "KIND", "SIZE");
    for (size_t i = 0; i < n; i++) {
        if (!rows[i].desc)
            continue;
        if (names_only) {
            printf("%s\n", rows[i].name);
            continue;
        }
        printf("%-*s  %-*s  %8lld\n", wn, rows[i].name, wk,
               shoal_mv_as_str(cli_mv_field(rows[i].desc, "kind")),
               (long long)shoal_mv_as_int(cli_mv_field(rows[i].desc, "size")));
    }
}

int cli_ls_broker(int argc, char **argv)
{
    cli_broker_client c;
    int status = cli_broker_client_parse(argc, argv, "ls", ls_help, "-q", 0, 0, &c);
    shoal_manager *m = NULL;
    if (status < 0)
        status = cli_broker_connect(&c, "ls", &m);
    shoal_mv *names = NULL;
    int rc = status < 0 ? shoal_manager_call(m, "", "names", 0, &names, 0) : 0;
    size_t n = shoal_mv_len(names);
    struct brow *rows = status < 0 && rc == 0 ? calloc(n ? n : 1, sizeof(*rows)) : NULL;
    if (status < 0 && rc == 0)
        rc = rows ? describe_all(m, names, rows) : SHOAL_ENOMEM;
    if (status < 0 && rc == 0) {
        qsort(rows, n, sizeof(*rows), by_name);
        print_broker_table(rows, n, c.flag);
        status = CLI_OK;
    } else if (status < 0) {
        status = cli_fail("ls", rc);
    }
    for (size_t i = 0; rows && i < n; i++)
        shoal_mv_free(rows[i].desc);
    free(rows);
    shoal_mv_free(names);
    shoal_manager_close(m);
    if (c.names)
        cli_broker_client_free(&c);
    return status;
}

/* ---- the command ------------------------------------------------------------------- */

int cli_ls(int argc, char **argv)
{
    if (cli_broker_has(argc, argv))
        return cli_ls_broker(argc, argv);
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
