/*
 * cmd_gen.c — `shoal gen`: the schema compiler for users without CMake.
 *
 *   shoal gen [--lang c|python|rust|node] [-I DIR]... [-o OUTDIR] [-v] FILE.proto...
 *
 * It runs protoc with protoc-gen-shoal as a plugin. protoc comes from --protoc,
 * $SHOAL_PROTOC or PATH; the plugin from --plugin, $SHOAL_PLUGIN, beside this program,
 * the build tree's codegen/ directory, or PATH; shoal/options.proto from the installed
 * include directory (or the build tree), so schemas can import "shoal/options.proto".
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"

#define MAX_ARGS 256

static void gen_usage(FILE *out)
{
    fprintf(
        out,
        "usage: shoal gen [--lang c|python|rust|node] [-I DIR]... [-o OUTDIR] [-v] "
        "FILE.proto...\n\n"
        "Compiles .proto schemas with protoc-gen-shoal: for each a/b.proto, writes\n"
        "OUTDIR/a/b.shoal.h and a/b.shoal.c (plus protoc-c's a/b.pb-c.* when a message\n"
        "is encoded). Compile the .c files with your program and link -lshoal\n"
        "(and -lprotobuf-c when there are encoded messages). With --lang python it\n"
        "writes OUTDIR/a/b_shoal.py (ctypes structures for the shoal package); with\n"
        "--lang rust, OUTDIR/a/b_shoal.rs (#[repr(C)] structs for the shoal crate);\n"
        "with --lang node, OUTDIR/a/b_shoal.js and .d.ts (classes for the shoal\n"
        "npm package).\n\n"
        "  --lang LANG     language to generate: c (default), python, rust or\n"
        "                  node\n"
        "  -I, --proto_path DIR\n"
        "                  where imports are looked up (default: .); the directory\n"
        "                  of shoal/options.proto is added for you\n"
        "  -o, --out DIR   output directory (default: .), created if missing\n"
        "  -v, --verbose   say which messages are fixed (with their layout) and which\n"
        "                  are encoded\n"
        "  --protoc PATH, --plugin PATH\n"
        "                  the protoc and protoc-gen-shoal to use\n\n"
        "Exit codes: 0 success, 1 the schema has errors, 2 usage error, 3 protoc or\n"
        "the plugin cannot be found or run.\n");
}

static int is_exec(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

static int is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The directory of this program (empty if unknown). */
static void self_dir(char *buf, size_t cap)
{
    ssize_t n = readlink("/proc/self/exe", buf, cap - 1);
    buf[n > 0 ? n : 0] = '\0';
    char *slash = strrchr(buf, '/');
    if (slash)
        *slash = '\0';
    else
        buf[0] = '\0';
}

/* Looks `name` up in $PATH; returns 0 and fills buf if found. */
static int search_path(const char *name, char *buf, size_t cap)
{
    const char *path = getenv("PATH");
    if (!path)
        path = "/usr/local/bin:/usr/bin:/bin";
    while (*path) {
        size_t n = strcspn(path, ":");
        snprintf(buf, cap, "%.*s/%s", (int)n, n ? path : ".", name);
        if (is_exec(buf))
            return 0;
        path += n + (path[n] == ':');
    }
    return -1;
}

/* Picks the first executable candidate: an explicit path, an environment variable,
 * paths relative to this program, then $PATH. */
static int locate(const char *name, const char *given, const char *env,
                  const char *const *rel, char *buf, size_t cap)
{
    if (given) {
        snprintf(buf, cap, "%s", given);
        return is_exec(buf) ? 0 : -1;
    }
    if (getenv(env) && *getenv(env)) {
        snprintf(buf, cap, "%s", getenv(env));
        return is_exec(buf) ? 0 : -1;
    }
    char dir[PATH_MAX];
    self_dir(dir, sizeof(dir));
    for (int i = 0; dir[0] && rel && rel[i]; i++) {
        snprintf(buf, cap, "%s/%s", dir, rel[i]);
        if (is_exec(buf))
            return 0;
    }
    return search_path(name, buf, cap);
}

/* The directory holding shoal/options.proto, or NULL. */
static const char *schema_dir(char *buf, size_t cap)
{
    static const char *const rel[] = {"../include", "../codegen/include", NULL};
    static const char *const abs[] = {"/usr/local/include", "/usr/include", NULL};
    char dir[PATH_MAX], probe[PATH_MAX + 64];
    self_dir(dir, sizeof(dir));
    for (int i = 0; dir[0] && rel[i]; i++) {
        snprintf(probe, sizeof(probe), "%s/%s/shoal/options.proto", dir, rel[i]);
        if (is_file(probe)) {
            snprintf(buf, cap, "%s/%s", dir, rel[i]);
            return buf;
        }
    }
    for (int i = 0; abs[i]; i++) {
        snprintf(probe, sizeof(probe), "%s/shoal/options.proto", abs[i]);
        if (is_file(probe)) {
            snprintf(buf, cap, "%s", abs[i]);
            return buf;
        }
    }
    return NULL;
}

/* mkdir -p */
static int make_dirs(const char *path)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0777) && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(buf, 0777) && errno != EEXIST ? -1 : 0;
}

struct gen_opts {
    const char *lang, *out, *protoc, *plugin;
    int verbose;
    const char *includes[MAX_ARGS];
    int nincludes;
    const char *files[MAX_ARGS];
    int nfiles;
};

/* Returns -1 on a usage error, 1 for --help, 0 otherwise. */
static int parse(int argc, char **argv, struct gen_opts *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **value = NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help"))
            return 1;
        if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            o->verbose = 1;
            continue;
        }
        if (!strncmp(a, "-I", 2) && a[2]) {
            if (o->nincludes < MAX_ARGS)
                o->includes[o->nincludes++] = a + 2;
            continue;
        }
        if (!strcmp(a, "--lang"))
            value = &o->lang;
        else if (!strcmp(a, "-o") || !strcmp(a, "--out"))
            value = &o->out;
        else if (!strcmp(a, "--protoc"))
            value = &o->protoc;
        else if (!strcmp(a, "--plugin"))
            value = &o->plugin;
        if (value || !strcmp(a, "-I") || !strcmp(a, "--proto_path")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "shoal gen: %s needs an argument\n", a);
                return -1;
            }
            if (value)
                *value = argv[++i];
            else if (o->nincludes < MAX_ARGS)
                o->includes[o->nincludes++] = argv[++i];
            continue;
        }
        if (a[0] == '-') {
            fprintf(stderr, "shoal gen: unknown option %s\n", a);
            return -1;
        }
        if (o->nfiles < MAX_ARGS)
            o->files[o->nfiles++] = a;
    }
    if (!o->nfiles) {
        fprintf(stderr, "shoal gen: no .proto files given\n");
        return -1;
    }
    static const char *const langs[] = {"c", "python", "rust", "node"};
    size_t l = 0;
    while (l < sizeof(langs) / sizeof(langs[0]) && strcmp(o->lang, langs[l]) != 0)
        l++;
    if (l == sizeof(langs) / sizeof(langs[0])) {
        fprintf(stderr,
                "shoal gen: language \"%s\" is not supported (known: c, python, rust, "
                "node)\n",
                o->lang);
        return -1;
    }
    return 0;
}

/* A malloc'ed formatted string (NULL if out of memory). */
static char *str_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *str_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (s) {
        va_start(ap, fmt);
        vsnprintf(s, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    return s;
}

/* Runs argv; returns its exit status, or -1 if it could not be run. */
static int run(char *const *argv)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        execv(argv[0], argv);
        fprintf(stderr, "shoal gen: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    if (!WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st) == 127 ? -1 : WEXITSTATUS(st);
}

int shoal_cmd_gen(int argc, char **argv)
{
    struct gen_opts o = {.lang = "c", .out = "."};
    int p = parse(argc, argv, &o);
    if (p) {
        gen_usage(p > 0 ? stdout : stderr);
        return p > 0 ? CLI_OK : CLI_USAGE;
    }
    static const char *const plugin_rel[] = {"protoc-gen-shoal",
                                             "../codegen/protoc-gen-shoal", NULL};
    char protoc[PATH_MAX], plugin[PATH_MAX], schemas[PATH_MAX];
    if (locate("protoc", o.protoc, "SHOAL_PROTOC", NULL, protoc, sizeof(protoc))) {
        fprintf(stderr, "shoal gen: protoc not found (install protobuf-compiler, or pass "
                        "--protoc PATH)\n");
        return CLI_SYSTEM;
    }
    if (locate("protoc-gen-shoal", o.plugin, "SHOAL_PLUGIN", plugin_rel, plugin,
               sizeof(plugin))) {
        fprintf(stderr,
                "shoal gen: protoc-gen-shoal not found beside shoal or on PATH (pass "
                "--plugin PATH)\n");
        return CLI_SYSTEM;
    }
    if (make_dirs(o.out)) {
        fprintf(stderr, "shoal gen: cannot create %s: %s\n", o.out, strerror(errno));
        return CLI_SYSTEM;
    }

    char *av[MAX_ARGS * 2 + 8];
    int n = 0;
    av[n++] = str_printf("%s", protoc);
    av[n++] = str_printf("--plugin=protoc-gen-shoal=%s", plugin);
    av[n++] = str_printf("--shoal_out=lang=%s%s:%s", o.lang, o.verbose ? ",verbose" : "",
                         o.out);
    for (int i = 0; i < o.nincludes; i++)
        av[n++] = str_printf("-I%s", o.includes[i]);
    if (!o.nincludes)
        av[n++] = str_printf("-I.");
    if (schema_dir(schemas, sizeof(schemas)))
        av[n++] = str_printf("-I%s", schemas);
    for (int i = 0; i < o.nfiles; i++)
        av[n++] = str_printf("%s", o.files[i]);
    av[n] = NULL;
    for (int i = 0; i < n; i++)
        if (!av[i]) {
            fprintf(stderr, "shoal gen: out of memory\n");
            return CLI_SYSTEM;
        }
    int rc = run(av);
    for (int i = 0; i < n; i++)
        free(av[i]);
    if (rc < 0) {
        fprintf(stderr, "shoal gen: cannot run %s\n", protoc);
        return CLI_SYSTEM;
    }
    return rc == 0 ? CLI_OK : CLI_FAIL;
}
