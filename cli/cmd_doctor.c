/*
 * cmd_doctor.c — `shoal doctor`: what this machine offers shoal and what shoal will use.
 *
 * Each line names one capability, whether it is there and, when not, the errno or
 * setting that says why — so that a user in a container (whose seccomp profile refuses
 * io_uring, say) sees at once which fallback is taken. The checks are the ones the
 * runtime itself makes: the loop's probe (shoal_loop_probe) and a real loop created
 * on the engine it would pick, the root directory's existence, permissions and free
 * space, and the system calls the primitives rely on.
 *
 * Exit code 0 when shoal is usable here (the root is usable, robust futexes work and
 * an event loop runs on some engine), 1 otherwise.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdarg.h>
#include <linux/membarrier.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cli.h"

static const char doctor_help[] =
    "usage: shoal doctor [--root DIR] [--domain NAME]\n"
    "Says what this machine supports and what shoal will use: io_uring and its futex\n"
    "operations, futex_waitv, membarrier, robust futexes, the root directory and its\n"
    "free space, the rings' wake path ($SHOAL_WAKE=fenced forces the fallback) and the\n"
    "event loop's engine ($SHOAL_LOOP_ENGINE forces one).\n"
    "Exit code 0 when shoal is usable here, 1 when not.\n";

static void line(const char *what, bool ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void line(const char *what, bool ok, const char *fmt, ...)
{
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    printf("%-18s %s%s%s%s\n", what, ok ? "yes" : "no", why[0] ? " (" : "", why,
           why[0] ? ")" : "");
}

static void report_uring(const shoal_loop_support *s)
{
    char disabled[48] = "";
    if (s->uring_disabled >= 0)
        snprintf(disabled, sizeof(disabled), "; kernel.io_uring_disabled = %d",
                 s->uring_disabled);
    if (!s->uring_built)
        line("io_uring", false, "this libshoal was built without it");
    else if (!s->uring)
        line("io_uring", false, "io_uring_setup: %s%s", strerror(s->uring_errno),
             disabled);
    else
        line("io_uring", true, "%s", disabled + (disabled[0] ? 2 : 0));
    if (s->uring)
        line("  futex ops", s->uring_futex_wait, "FUTEX_WAIT %s, FUTEX_WAITV %s%s",
             s->uring_futex_wait ? "yes" : "no", s->uring_futex_waitv ? "yes" : "no",
             s->uring_futex_wait ? "" : "; Linux 6.7 or later has them");
}

static void report_membarrier(void)
{
    long r = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    if (r < 0)
        line("membarrier", false, "%s", strerror(errno));
    else
        line("membarrier", r & MEMBARRIER_CMD_GLOBAL_EXPEDITED, "global expedited %s",
             r & MEMBARRIER_CMD_GLOBAL_EXPEDITED ? "yes" : "no");
    /* What the rings of this process chose (the same registration they make). */
    int why = 0;
    const char *mode = shoal_wake_mode(&why);
    const char *env = getenv("SHOAL_WAKE");
    if (!strcmp(mode, "membarrier"))
        printf("%-18s %s\n", "ring wake path",
               "membarrier (put and get without fences; sleepers and shutdown issue the "
               "barrier)");
    else if (why)
        printf("%-18s fenced (registering for membarrier failed: %s; every put and get "
               "fences)\n",
               "ring wake path", strerror(why));
    else
        printf("%-18s fenced (%s; every put and get fences)\n", "ring wake path",
               env && *env ? "forced by SHOAL_WAKE" : "membarrier unusable");
}

static bool report_robust(void)
{
    void *head;
    size_t len;
    long r = syscall(SYS_get_robust_list, 0, &head, &len);
    if (r == 0)
        line("robust futexes", true, "%s", "");
    else
        line("robust futexes", false, "get_robust_list: %s", strerror(errno));
    return r == 0;
}

/* The root: <root>/<domain> without its last part. */
static bool report_root(const shoal_attr *attr)
{
    char dir[PATH_MAX];
    int rc = shoal_domain_dir(attr, dir, sizeof(dir));
    if (rc < 0) {
        line("root", false, "%s", shoal_errdetail());
        return false;
    }
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir)
        *slash = '\0';
    /* The default root, when not made yet, is made on first use in its parent; a
     * root the user named must exist. */
    const char *env = getenv("SHOAL_ROOT");
    bool dflt = !attr->root && (!env || !*env);
    char probe[PATH_MAX];
    snprintf(probe, sizeof(probe), "%s", dir);
    struct stat st;
    bool exists = stat(probe, &st) == 0;
    if (!exists && !dflt) {
        line("root", false, "%s: %s", dir, strerror(errno));
        return false;
    }
    if (!exists) {
        char *p = strrchr(probe, '/');
        if (p && p != probe)
            *p = '\0';
        if (stat(probe, &st) != 0) {
            line("root", false, "%s: %s", dir, strerror(errno));
            return false;
        }
    }
    bool writable = S_ISDIR(st.st_mode) && access(probe, W_OK | X_OK) == 0;
    struct statvfs vfs;
    double gib = statvfs(probe, &vfs) == 0
                     ? (double)vfs.f_bavail * (double)vfs.f_frsize / (1 << 30)
                     : -1;
    line("root", writable, "%s: %s, %s, %.1f GiB free", dir,
         exists ? "exists" : "made on first use", writable ? "writable" : "not writable",
         gib);
    return writable && gib != 0;
}

static bool report_engine(void)
{
    shoal_loop *l;
    int rc = shoal_loop_create(&l);
    if (rc < 0) {
        line("loop engine", false, "%s", shoal_errdetail());
        return false;
    }
    const char *env = getenv("SHOAL_LOOP_ENGINE");
    printf("%-18s %s%s\n", "loop engine", shoal_loop_engine(l),
           env && *env ? " (forced by SHOAL_LOOP_ENGINE)" : "");
    shoal_loop_destroy(l);
    return true;
}

int cli_doctor(int argc, char **argv)
{
    cli_args args;
    int status = cli_parse(argc, argv, "doctor", doctor_help, NULL, 0, 0, &args);
    if (status >= 0)
        return status;
    shoal_loop_support sup;
    shoal_loop_probe(&sup);
    report_uring(&sup);
    line("futex_waitv", sup.futex_waitv, "%s",
         sup.futex_waitv ? "" : strerror(sup.futex_waitv_errno));
    report_membarrier();
    bool ok = report_robust();
    ok &= report_root(&args.attr);
    ok &= report_engine();
    printf("%-18s %s\n", "verdict", ok ? "usable" : "NOT usable");
    return ok ? CLI_OK : CLI_FAIL;
}
