/* test_segment.c — named segments: create/open modes, names, validation of bad files,
 * space reservation, users, unlink, gc, anonymous objects, initialisation crashes. */
#include <fcntl.h>
#include <sys/file.h>

#include "internal.h"
#include "testutil.h"

static char path_buf[512];

static const char *seg_path(const char *name)
{
    snprintf(path_buf, sizeof(path_buf), "%s/default/%s", t_root, name);
    return path_buf;
}

static void test_modes(void **state)
{
    (void)state;
    shoal_shm *a, *b;
    assert_int_equal(shoal_shm_open(&a, "m1", SHOAL_OPEN, 64, NULL), SHOAL_ENOENT);
    T_OK(shoal_shm_open(&a, "m1", SHOAL_CREATE, 64, NULL));
    assert_int_equal(shoal_shm_open(&b, "m1", SHOAL_CREATE, 64, NULL), SHOAL_EEXIST);
    assert_non_null(strstr(shoal_errdetail(), "already exists"));
    T_OK(shoal_shm_open(&b, "m1", SHOAL_OPEN_OR_CREATE, 64, NULL));
    memcpy(shoal_shm_data(a), "hello", 6);
    assert_string_equal(shoal_shm_data(b), "hello");
    assert_int_equal(shoal_shm_size(b), 64);
    shoal_shm *c;
    assert_int_equal(shoal_shm_open(&c, "m1", SHOAL_OPEN, 128, NULL), SHOAL_ELAYOUT);
    T_OK(shoal_shm_open(&c, "m1", SHOAL_OPEN, 0, NULL)); /* 0: any size */
    shoal_shm_close(c);
    assert_int_equal(shoal_shm_open(&c, "m1", 42, 64, NULL), SHOAL_EINVAL);
    /* Files are owner-only unless asked otherwise. */
    struct stat st;
    assert_int_equal(stat(seg_path("m1"), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    shoal_attr attr = {0};
    attr.mode = 0644;
    T_OK(shoal_shm_open(&c, "m2", SHOAL_CREATE, 8, &attr));
    assert_int_equal(stat(seg_path("m2"), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    shoal_shm_close(c);
    T_OK(shoal_unlink("m1", NULL));
    assert_int_equal(shoal_unlink("m1", NULL), SHOAL_ENOENT);
    /* Holders keep using an unlinked object. */
    assert_string_equal(shoal_shm_data(a), "hello");
    shoal_shm_close(a);
    shoal_shm_close(b);
    T_OK(shoal_unlink("m2", NULL));
}

static void test_bad_names(void **state)
{
    (void)state;
    shoal_shm *s;
    char longname[SHOAL_NAME_MAX + 2];
    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    const char *bad[] = {"",       "a/b",   "../etc", ".hidden",
                         "sp ace", "tab\t", "é",      longname};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(shoal_shm_open(&s, bad[i], SHOAL_OPEN_OR_CREATE, 8, NULL),
                         SHOAL_ENAME);
        assert_true(strlen(shoal_errdetail()) > 0);
    }
    longname[SHOAL_NAME_MAX] = '\0'; /* exactly the limit is fine */
    T_OK(shoal_shm_open(&s, longname, SHOAL_CREATE, 8, NULL));
    shoal_shm_close(s);
    T_OK(shoal_unlink(longname, NULL));
    shoal_attr attr = {0};
    attr.domain = "no/slash";
    assert_int_equal(shoal_shm_open(&s, "x", SHOAL_OPEN_OR_CREATE, 8, &attr),
                     SHOAL_ENAME);
}

static void test_domains_and_roots(void **state)
{
    (void)state;
    shoal_shm *a, *b;
    shoal_attr d1 = {0}, d2 = {0};
    d1.domain = "one";
    d2.domain = "two";
    T_OK(shoal_shm_open(&a, "same", SHOAL_CREATE, 8, &d1));
    T_OK(shoal_shm_open(&b, "same", SHOAL_CREATE, 8, &d2)); /* separate namespaces */
    shoal_shm_close(a);
    shoal_shm_close(b);
    shoal_attr missing = {0};
    missing.root = "/nonexistent-shoal-root";
    assert_int_equal(shoal_shm_open(&a, "x", SHOAL_OPEN_OR_CREATE, 8, &missing),
                     SHOAL_ENOENT);
    assert_non_null(strstr(shoal_errdetail(), "does not exist"));
}

static void test_no_room(void **state)
{
    (void)state;
    shoal_shm *s;
    /* Far more than the machine has: refused at creation, and nothing is left. */
    assert_int_equal(shoal_shm_open(&s, "huge", SHOAL_CREATE, (size_t)1 << 46, NULL),
                     SHOAL_ENOSPC);
    assert_non_null(strstr(shoal_errdetail(), "reserve"));
    assert_int_equal(access(seg_path("huge"), F_OK), -1);
    /* A small file system that fills up: only where we may mount one (root). */
    char dir[300];
    snprintf(dir, sizeof(dir), "%s/tiny", t_root);
    mkdir(dir, 0700);
    if (t_system("mount -t tmpfs -o size=64k shoal-test '%s' 2>/dev/null", dir) != 0) {
        rmdir(dir);
        return;
    }
    shoal_attr attr = {0};
    attr.root = dir;
    T_OK(shoal_shm_open(&s, "fits", SHOAL_CREATE, 16 * 1024, &attr));
    shoal_shm *s2;
    assert_int_equal(shoal_shm_open(&s2, "toobig", SHOAL_CREATE, 128 * 1024, &attr),
                     SHOAL_ENOSPC);
    memset(shoal_shm_data(s), 1, 16 * 1024); /* reserved: no SIGBUS */
    shoal_shm_close(s);
    t_system("umount '%s'", dir);
    rmdir(dir);
}

/* Writes a file with the given bytes under the domain directory. */
static void write_file(const char *name, const void *data, size_t n)
{
    int fd = open(seg_path(name), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, n), (ssize_t)n);
    close(fd);
}

static void test_bad_files(void **state)
{
    (void)state;
    shoal_shm *s;
    T_OK(shoal_shm_open(&s, "good", SHOAL_CREATE, 100, NULL));
    shoal_shm_close(s);
    unsigned char page[SHOAL_HEADER_SIZE + 100];
    int fd = open(seg_path("good"), O_RDONLY);
    assert_int_equal(read(fd, page, sizeof(page)), (ssize_t)sizeof(page));
    close(fd);

    /* Foreign: not a shoal file at all. */
    write_file("foreign", "#!/bin/sh\necho hello, this is not shared memory\n", 48);
    assert_int_equal(shoal_shm_open(&s, "foreign", SHOAL_OPEN, 0, NULL), SHOAL_EFOREIGN);
    /* Empty and truncated. */
    write_file("empty", "", 0);
    assert_int_equal(shoal_shm_open(&s, "empty", SHOAL_OPEN, 0, NULL), SHOAL_ETRUNCATED);
    write_file("short", page, 200);
    assert_int_equal(shoal_shm_open(&s, "short", SHOAL_OPEN, 0, NULL), SHOAL_ETRUNCATED);
    write_file("cut", page, SHOAL_HEADER_SIZE + 50);
    assert_int_equal(shoal_shm_open(&s, "cut", SHOAL_OPEN, 0, NULL), SHOAL_ETRUNCATED);
    assert_non_null(strstr(shoal_errdetail(), "truncated"));
    /* Corrupt: one flipped byte in the immutable header. */
    unsigned char bad[sizeof(page)];
    memcpy(bad, page, sizeof(page));
    bad[offsetof(struct shoal__header, count)] ^= 0x40;
    write_file("corrupt", bad, sizeof(bad));
    assert_int_equal(shoal_shm_open(&s, "corrupt", SHOAL_OPEN, 0, NULL), SHOAL_ECORRUPT);
    /* A future format version (checksum recomputed so only the version differs). */
    memcpy(bad, page, sizeof(page));
    struct shoal__header *h = (struct shoal__header *)bad;
    h->version = 99;
    h->checksum =
        shoal_fnv1a(SHOAL_FNV_OFFSET, h, offsetof(struct shoal__header, checksum));
    write_file("future", bad, sizeof(bad));
    assert_int_equal(shoal_shm_open(&s, "future", SHOAL_OPEN, 0, NULL), SHOAL_EVERSION);
    /* The previous format (its rings lack what this library's SPSC producers keep):
     * refused, with both versions named. */
    h->version = SHOAL_FORMAT_VERSION - 1;
    h->checksum =
        shoal_fnv1a(SHOAL_FNV_OFFSET, h, offsetof(struct shoal__header, checksum));
    write_file("older", bad, sizeof(bad));
    assert_int_equal(shoal_shm_open(&s, "older", SHOAL_OPEN, 0, NULL), SHOAL_EVERSION);
    char want[80];
    snprintf(want, sizeof(want), "format version %d, this library reads %d",
             SHOAL_FORMAT_VERSION - 1, SHOAL_FORMAT_VERSION);
    assert_non_null(strstr(shoal_errdetail(), want));
    /* Wrong kind. */
    shoal_value *v;
    assert_int_equal(
        shoal_value_open(&v, "good", SHOAL_OPEN, shoal_typecode('i'), NULL, NULL),
        SHOAL_EKIND);
    assert_non_null(strstr(shoal_errdetail(), "is a shm, not a value"));
    /* ls reports each bad file with its own status instead of failing. */
    shoal_object_info info;
    assert_int_equal(shoal_stat("corrupt", NULL, &info), SHOAL_ECORRUPT);
    assert_int_equal(shoal_stat("foreign", NULL, &info), SHOAL_EFOREIGN);
    T_OK(shoal_stat("good", NULL, &info));
    assert_int_equal(info.kind, SHOAL_KIND_SHM);
    assert_int_equal(info.count, 100);
    const char *names[] = {"foreign", "empty",  "short", "cut",
                           "corrupt", "future", "older", "good"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        T_OK(shoal_unlink(names[i], NULL));
}

static int hold_and_exit(void *arg)
{
    shoal_shm *s;
    if (shoal_shm_open(&s, arg, SHOAL_OPEN, 0, NULL))
        return 1;
    return 0; /* exits without closing: the kernel drops its user lock */
}

static int count_cb(const shoal_object_info *info, void *arg)
{
    (void)info;
    (*(int *)arg)++;
    return 0;
}

static void test_users_and_gc(void **state)
{
    (void)state;
    shoal_shm *kept, *tmp;
    T_OK(shoal_shm_open(&kept, "kept", SHOAL_CREATE, 8, NULL));
    T_OK(shoal_shm_open(&tmp, "orphan", SHOAL_CREATE, 8, NULL));
    shoal_object_info info;
    T_OK(shoal_stat("kept", NULL, &info));
    assert_int_equal(info.users, 1);
    assert_int_equal(info.creator_pid, getpid());
    pid_t child = t_fork(hold_and_exit, "orphan");
    assert_int_equal(t_wait(child), 0);
    shoal_shm_close(tmp); /* now no one has "orphan" open */
    int n = 0;
    T_OK(shoal_list(NULL, count_cb, &n));
    assert_int_equal(n, 2);
    assert_int_equal(shoal_gc(NULL), 1);
    assert_int_equal(shoal_stat("orphan", NULL, &info), SHOAL_ENOENT);
    T_OK(shoal_stat("kept", NULL, &info)); /* in use: kept */
    shoal_shm_close(kept);
    assert_int_equal(shoal_gc(NULL), 1);
}

static void test_anonymous(void **state)
{
    (void)state;
    shoal_shm *a, *b;
    T_OK(shoal_shm_open(&a, NULL, SHOAL_CREATE, 32, NULL));
    const char *name = shoal_shm_name(a);
    assert_true(strncmp(name, "anon-", 5) == 0);
    T_OK(shoal_shm_open(&b, name, SHOAL_OPEN, 32, NULL));
    char copy[SHOAL_NAME_MAX + 1];
    strcpy(copy, name);
    shoal_shm_close(a);
    shoal_object_info info;
    T_OK(shoal_stat(copy, NULL, &info)); /* b still uses it */
    assert_true(info.anonymous);
    shoal_shm_close(b);
    assert_int_equal(shoal_stat(copy, NULL, &info), SHOAL_ENOENT); /* last user gone */
}

static int anon_then_stop(void *arg)
{
    int *fds = arg;
    shoal_shm *s;
    if (shoal_shm_open(&s, NULL, SHOAL_CREATE, 32, NULL))
        return 1;
    const char *name = shoal_shm_name(s);
    if (write(fds[1], name, strlen(name) + 1) < 0)
        return 2;
    raise(SIGSTOP);
    return 0;
}

static int make_anon_main(void)
{
    shoal_shm *s;
    if (shoal_shm_open(&s, NULL, SHOAL_CREATE, 32, NULL))
        return 1;
    shoal_shm_close(s);
    return 0;
}

/* An anonymous object whose only user was killed is swept by the next process that
 * makes an anonymous object, without waiting for gc. */
static void test_anonymous_after_crash(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = t_fork(anon_then_stop, fds);
    char name[SHOAL_NAME_MAX + 1] = {0};
    assert_true(read(fds[0], name, sizeof(name)) > 5);
    int st;
    assert_int_equal(waitpid(pid, &st, WUNTRACED), pid);
    t_kill(pid);
    shoal_object_info info;
    T_OK(shoal_stat(name, NULL, &info));
    assert_int_equal(info.users, 0);
    assert_int_equal(t_wait(t_spawn_self("make-anon", NULL)), 0);
    assert_int_equal(shoal_stat(name, NULL, &info), SHOAL_ENOENT);
    close(fds[0]);
    close(fds[1]);
}

static int create_then_die(void *arg)
{
    shoal_value *v;
    int init = 7;
    /* Stops at the "segment.init" pause point, before the object is published. */
    return shoal_value_open(&v, arg, SHOAL_CREATE, shoal_typecode('i'), &init, NULL) ? 1
                                                                                     : 0;
}

static void test_creator_dies_during_init(void **state)
{
    (void)state;
    pid_t pid = t_fork_paused("segment.init", create_then_die, "half");
    assert_true(pid > 0);
    t_kill(pid);
    shoal_value *v;
    /* The half-made object never became visible ... */
    assert_int_equal(
        shoal_value_open(&v, "half", SHOAL_OPEN, shoal_typecode('i'), NULL, NULL),
        SHOAL_ENOENT);
    /* ... so the next opener simply creates it, ... */
    int init = 5, got = 0;
    T_OK(shoal_value_open(&v, "half", SHOAL_OPEN_OR_CREATE, shoal_typecode('i'), &init,
                          NULL));
    T_OK(shoal_value_read(v, &got));
    assert_int_equal(got, 5);
    shoal_value_close(v);
    /* ... and gc removes the dead creator's leftover. */
    assert_true(shoal_gc(NULL) >= 1);
    char dir[300];
    snprintf(dir, sizeof(dir), "ls -A '%s/default' | grep -q '^\\.init'", t_root);
    assert_int_not_equal(t_system("%s", dir), 0);
}

/* Eight processes race open-or-create; each adds 1. */
static int racer(void *arg)
{
    (void)arg;
    shoal_value *v;
    int32_t mine = getpid();
    if (shoal_value_open(&v, "race", SHOAL_OPEN_OR_CREATE, shoal_typecode('i'), &mine,
                         NULL))
        return 1;
    shoal_array *hits;
    if (shoal_array_open(&hits, "race-hits", SHOAL_OPEN, shoal_typecode('i'), 1, NULL,
                         NULL))
        return 2;
    shoal_array_add(hits, 0, 1, NULL);
    shoal_array_close(hits);
    shoal_value_close(v);
    return 0;
}

static void test_open_or_create_race(void **state)
{
    (void)state;
    for (int round = 0; round < 5; round++) {
        shoal_array *hits;
        T_OK(shoal_array_open(&hits, "race-hits", SHOAL_CREATE, shoal_typecode('i'), 1,
                              NULL, NULL));
        pid_t pids[8];
        for (int i = 0; i < 8; i++)
            pids[i] = t_fork(racer, NULL);
        for (int i = 0; i < 8; i++)
            assert_int_equal(t_wait(pids[i]), 0);
        int32_t hit = 0, creator = 0;
        T_OK(shoal_array_get(hits, 0, &hit));
        assert_int_equal(hit, 8);
        /* The value holds its creator's pid, and exactly that pid created it. */
        shoal_value *v;
        T_OK(shoal_value_open(&v, "race", SHOAL_OPEN, shoal_typecode('i'), NULL, NULL));
        T_OK(shoal_value_read(v, &creator));
        shoal_object_info info;
        T_OK(shoal_stat("race", NULL, &info));
        assert_int_equal(info.creator_pid, creator);
        int found = 0;
        for (int i = 0; i < 8; i++)
            found += pids[i] == creator;
        assert_int_equal(found, 1);
        shoal_value_close(v);
        shoal_array_close(hits);
        T_OK(shoal_unlink("race", NULL));
        T_OK(shoal_unlink("race-hits", NULL));
    }
}

/* A separately started program (exec'd) opens by name and sees the same memory. */
static int exec_child_main(void)
{
    shoal_shm *s;
    if (shoal_shm_open(&s, "exec-shared", SHOAL_OPEN, 64, NULL))
        return 10;
    char *p = shoal_shm_data(s);
    if (strcmp(p, "from parent") != 0)
        return 11;
    strcpy(p, "from exec'd child");
    shoal_shm_close(s);
    return 0;
}

static void test_exec_open(void **state)
{
    (void)state;
    shoal_shm *s;
    T_OK(shoal_shm_open(&s, "exec-shared", SHOAL_CREATE, 64, NULL));
    strcpy(shoal_shm_data(s), "from parent");
    pid_t pid = t_spawn_self("exec-child", NULL);
    assert_int_equal(t_wait(pid), 0);
    assert_string_equal(shoal_shm_data(s), "from exec'd child");
    shoal_shm_close(s);
}

int main(int argc, char **argv)
{
    t_setup_root();
    if (argc > 1 && !strcmp(argv[1], "exec-child"))
        return exec_child_main();
    if (argc > 1 && !strcmp(argv[1], "make-anon"))
        return make_anon_main();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_modes),
        cmocka_unit_test(test_bad_names),
        cmocka_unit_test(test_domains_and_roots),
        cmocka_unit_test(test_no_room),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_users_and_gc),
        cmocka_unit_test(test_anonymous),
        cmocka_unit_test(test_anonymous_after_crash),
        cmocka_unit_test(test_creator_dies_during_init),
        cmocka_unit_test(test_open_or_create_race),
        cmocka_unit_test(test_exec_open),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
