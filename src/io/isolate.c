/* Loading an untrusted model file in a child process (issue 21: a model file
 * is untrusted input).
 *
 * Debian 12's libhdf5 1.10.8 has heap overflows and infinite loops that a
 * crafted file reaches (hostile/hdf5_vlen_heap_overflow.h5 segfaults in
 * H5HG_read, hostile/hdf5_global_heap_loop.h5 spins in H5C_protect). cnnviz
 * cannot fix them, so it contains them: a forked child reads the file into
 * memory, closes every other descriptor, takes rlimits and a seccomp filter
 * that fails every system call parsing does not need (open, execve, socket,
 * new executable memory: no host file, no plugin, no shell), parses with the
 * in-memory loader and writes the config text, metadata and weights to a
 * pipe. The parent waits with a wall-clock limit, rebuilds the model from the
 * config under the same budget and copies the weights in. A signal or a
 * timeout in the child is one error, never a crash or a hang of the caller.
 *
 * The reply (native byte order; both ends are this same binary):
 *   u32 magic, u32 version, u32 status,
 *   str file, str message                       (status != 0: the reply ends)
 *   u64 config length, config text
 *   u32 meta count, per entry str key, str value
 *   u32 has_scale, u32 scale kind, f32 mean, f32 std
 *   u64 param count, the params slab, u32 magic
 * where str is a u32 length and that many bytes. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <seccomp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "keras-impl.h"

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

#define REPLY_MAGIC 0x5a564e43u /* "CNVZ" */
#define REPLY_VERSION 1u
#define REPLY_MAX_META 256
#define REPLY_MAX_KEY 256

/* --- reading the file ---------------------------------------------------- */

/* The whole file, refused beyond max_bytes; pipes and devices too (a FIFO
 * that never delivers is how the tests make a child time out). */
static cnnviz_status read_file_capped(const char *path, size_t max_bytes, char **out, size_t *len,
                                      cnnviz_error *err) {
    *out = NULL;
    *len = 0;
    int fd;
    do fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) return cnnviz_error_set(err, CNNVIZ_ERR_IO, path, "cannot open: %s", strerror(errno));
    struct stat st;
    int e = fstat(fd, &st) != 0 ? errno : S_ISDIR(st.st_mode) ? EISDIR : 0;
    if (e) {
        close(fd);
        return cnnviz_error_set(err, CNNVIZ_ERR_IO, path, "cannot read: %s", strerror(e));
    }
    if (S_ISREG(st.st_mode) && (uintmax_t)st.st_size > max_bytes) {
        close(fd);
        return cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path, "the file is %jd bytes, over the limit of %zu",
                                (intmax_t)st.st_size, max_bytes);
    }
    /* a regular file's size is a hint; pipes and devices grow as read */
    size_t cap = S_ISREG(st.st_mode) && (uintmax_t)st.st_size < max_bytes ? (size_t)st.st_size + 1 : 1 << 16;
    char *buf = malloc(cap);
    size_t n = 0;
    cnnviz_status s = buf ? CNNVIZ_OK : cnnviz_error_set(err, CNNVIZ_ERR_NOMEM, path, "out of memory");
    while (!s) {
        if (n == cap) {
            size_t grow = cap > max_bytes / 2 ? max_bytes + 1 : cap * 2;
            char *b = grow > cap ? realloc(buf, grow) : NULL;
            if (!b) {
                s = cnnviz_error_set(err, CNNVIZ_ERR_NOMEM, path, "out of memory");
                break;
            }
            buf = b;
            cap = grow;
        }
        ssize_t got = read(fd, buf + n, cap - n);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) s = cnnviz_error_set(err, CNNVIZ_ERR_IO, path, "cannot read: %s", strerror(errno));
        if (got <= 0) break;
        n += (size_t)got;
        if (n > max_bytes)
            s = cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path, "the file is over the limit of %zu bytes", max_bytes);
    }
    close(fd);
    if (s) {
        free(buf);
        return s;
    }
    *out = buf;
    *len = n;
    return CNNVIZ_OK;
}

static cnnviz_status load_in_process(const char *path, const cnnviz_load_options *opt, cnnviz_model **out,
                                     cnnviz_error *err) {
    char *buf;
    size_t len;
    cnnviz_status st = read_file_capped(path, opt->max_file_bytes, &buf, &len, err);
    if (st) return st;
    st = cnnviz_model_load_memory(buf, len, path, opt, out, err);
    free(buf);
    return st;
}

/* --- the child ------------------------------------------------------------- */

/* Every descriptor but keep: the child must not reach the caller's files,
 * sockets or terminal even through a hole in the filter. */
static int close_all_but(int keep) {
    if ((keep == 0 || close_range(0, (unsigned)keep - 1, 0) == 0) && close_range((unsigned)keep + 1, ~0u, 0) == 0)
        return 0;
    /* kernels before 5.9: every number up to the descriptor limit */
    struct rlimit rl;
    long max = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY ? (long)rl.rlim_cur : 65536;
    for (long fd = 0; fd < max; fd++)
        if (fd != keep) close((int)fd);
    return 0;
}

/* The address space the child may add to what it inherited from the caller
 * (the caller's heap and its threads' stacks are mapped in the child too). */
static rlim_t inherited_address_space(void) {
    unsigned long pages = 0;
    FILE *f = fopen("/proc/self/statm", "re");
    if (f) {
        if (fscanf(f, "%lu", &pages) != 1) pages = 0;
        fclose(f);
    }
    return (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE);
}

static int set_limits(const cnnviz_load_options *opt, rlim_t inherited, int wfd) {
    struct rlimit zero = {0, 0};
    struct rlimit files = {(rlim_t)wfd + 1, (rlim_t)wfd + 1};
    if (setrlimit(RLIMIT_CORE, &zero)) return -1;
    /* valgrind keeps descriptors of its own above the limit and refuses to
     * lower it, and writes its report (--log-file) when the child exits;
     * the filter refuses new descriptors anyway */
    if (!RUNNING_ON_VALGRIND && (setrlimit(RLIMIT_FSIZE, &zero) || setrlimit(RLIMIT_NOFILE, &files))) return -1;
    if (opt->timeout_s > 0) {
        /* SIGXCPU at the wall-clock limit's second, SIGKILL a second later */
        rlim_t s = (rlim_t)ceil(opt->timeout_s) + 1;
        struct rlimit cpu = {s, s + 1};
        if (setrlimit(RLIMIT_CPU, &cpu)) return -1;
    }
    /* on top of what the child inherits: the caller's heap and threads'
     * stacks, and under ASan its terabytes of shadow reserved at start, so
     * the limit holds there too (a limit of max_memory_bytes alone would
     * leave an ASan child no memory at all) */
    if (opt->max_memory_bytes) {
        rlim_t as = inherited + (rlim_t)opt->max_memory_bytes;
        struct rlimit lim = {as, as};
        if (setrlimit(RLIMIT_AS, &lim)) return -1;
    }
    return 0;
}

/* What parsing a model in memory needs: memory, the pipe, futexes (HDF5's
 * and libgomp's locks), clocks, and leaving. Everything else fails with
 * EPERM, so libhdf5 can neither open a file (external storage, links,
 * plugins), nor start a program or a thread, nor map executable memory. */
static int install_filter(int wfd) {
    /* valgrind runs our system calls as its own, and a filter on those
     * would stop valgrind itself (it does not emulate seccomp); under it
     * the child keeps only the limits and the closed descriptors */
    if (RUNNING_ON_VALGRIND) return 0;
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
    if (!ctx) return -1;
    static const int allowed[] = {
        SCMP_SYS(read),          SCMP_SYS(close),           SCMP_SYS(brk),          SCMP_SYS(munmap),
        SCMP_SYS(mremap),        SCMP_SYS(madvise),         SCMP_SYS(futex),        SCMP_SYS(exit),
        SCMP_SYS(exit_group),    SCMP_SYS(rt_sigreturn),    SCMP_SYS(rt_sigprocmask), SCMP_SYS(clock_gettime),
        SCMP_SYS(clock_getres),  SCMP_SYS(gettimeofday),    SCMP_SYS(getpid),       SCMP_SYS(gettid),
        SCMP_SYS(getrandom),     SCMP_SYS(sched_yield),     SCMP_SYS(sigaltstack), /* ASan asks on each write */
    };
    int rc = 0;
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0] && !rc; i++)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, allowed[i], 0);
    /* write only to the pipe (every other descriptor is closed anyway);
     * memory, but none executable. (All four fields spelled out: clang
     * warns about the ones libseccomp's SCMP_A0() macro leaves out.) */
    struct scmp_arg_cmp to_pipe = {0, SCMP_CMP_EQ, (scmp_datum_t)wfd, 0};
    struct scmp_arg_cmp not_exec = {2, SCMP_CMP_MASKED_EQ, PROT_EXEC, 0};
    if (!rc) rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(write), 1, to_pipe);
    if (!rc) rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1, not_exec);
    if (!rc) rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1, not_exec);
    if (!rc) rc = seccomp_load(ctx);
    seccomp_release(ctx);
    return rc;
}

typedef struct {
    int fd, failed;
} writer;

static void put(writer *w, const void *p, size_t n) {
    const char *c = p;
    while (n && !w->failed) {
        ssize_t k = write(w->fd, c, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            w->failed = 1;
            return;
        }
        c += k;
        n -= (size_t)k;
    }
}

static void put_u32(writer *w, uint32_t v) { put(w, &v, sizeof v); }
static void put_u64(writer *w, uint64_t v) { put(w, &v, sizeof v); }
static void put_str(writer *w, const char *s) {
    size_t n = strlen(s);
    put_u32(w, (uint32_t)n);
    put(w, s, n);
}

static void send_reply(int wfd, cnnviz_status st, const cnnviz_error *e, cnnviz_model *m, const char *config) {
    writer w = {wfd, 0};
    put_u32(&w, REPLY_MAGIC);
    put_u32(&w, REPLY_VERSION);
    put_u32(&w, (uint32_t)st);
    put_str(&w, st ? e->file : "");
    put_str(&w, st ? e->msg : "");
    if (st) return;
    put_u64(&w, strlen(config));
    put(&w, config, strlen(config));
    put_u32(&w, (uint32_t)cnnviz_model_meta_count(m));
    for (int i = 0; i < cnnviz_model_meta_count(m); i++) {
        const char *key = cnnviz_model_meta_key(m, i);
        put_str(&w, key);
        put_str(&w, cnnviz_model_meta(m, key));
    }
    cnnviz_input_scale s = cnnviz_model_input_scale(m);
    put_u32(&w, (uint32_t)cnnviz_model_has_input_scale(m));
    put_u32(&w, (uint32_t)s.kind);
    put(&w, &s.mean, sizeof s.mean);
    put(&w, &s.std, sizeof s.std);
    put_u64(&w, cnnviz_model_num_params(m));
    put(&w, cnnviz_model_params(m), cnnviz_model_num_params(m) * sizeof(float));
    put_u32(&w, REPLY_MAGIC);
}

/* Runs after fork: only this thread exists, so no OpenMP (the caller's team
 * is gone and the filter refuses new threads) and nothing that returns. */
__attribute__((noreturn)) static void child_main(const char *path, const cnnviz_load_options *opt, int wfd) {
    cnnviz_error e;
    cnnviz_error_clear(&e);
    /* the caller's handlers must not run here, nor its blocked signals
     * keep SIGXCPU or SIGPIPE (a gone parent) from ending us */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP) signal(sig, SIG_DFL);
    char *buf = NULL;
    size_t len = 0;
    cnnviz_status st = read_file_capped(path, opt->max_file_bytes, &buf, &len, &e);
    rlim_t inherited = inherited_address_space();
    if (!st && (close_all_but(wfd) || set_limits(opt, inherited, wfd) || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
                install_filter(wfd)))
        st = cnnviz_error_set(&e, CNNVIZ_ERR_IO, path, "cannot lock down the model reader process: %s",
                              strerror(errno));
    cnnviz_model *m = NULL;
    char *config = NULL;
    if (!st) st = cnnviz_keras_load_memory(buf, len, path, opt, &m, &config, &e);
    send_reply(wfd, st, &e, m, config);
    _exit(0);
}

/* --- the parent ------------------------------------------------------------- */

typedef struct {
    int fd;
    double deadline; /* CLOCK_MONOTONIC seconds; 0: none */
    int timed_out;
} reader;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Wait until the pipe is readable or the deadline passes. 0: readable. */
static int wait_readable(reader *r) {
    for (;;) {
        int ms = -1;
        if (r->deadline > 0) {
            double left = r->deadline - now_s();
            if (left <= 0) {
                r->timed_out = 1;
                return -1;
            }
            ms = (int)ceil(left * 1000.0);
        }
        struct pollfd p = {r->fd, POLLIN, 0};
        int k = poll(&p, 1, ms);
        if (k > 0) return 0;
        if (k < 0 && errno != EINTR) return -1;
    }
}

/* n bytes exactly; -1 on EOF, an error or the deadline */
static int get(reader *r, void *p, size_t n) {
    char *c = p;
    while (n) {
        if (wait_readable(r)) return -1;
        ssize_t k = read(r->fd, c, n);
        if (k < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (k <= 0) return -1;
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

static int get_u32(reader *r, uint32_t *v) { return get(r, v, sizeof *v); }
static int get_u64(reader *r, uint64_t *v) { return get(r, v, sizeof *v); }

/* A string of at most max bytes into a malloc'd, NUL-terminated buffer. */
static int get_str(reader *r, size_t max, char **out) {
    uint32_t n;
    *out = NULL;
    if (get_u32(r, &n) || n > max || !(*out = malloc((size_t)n + 1))) return -1;
    (*out)[n] = 0;
    return get(r, *out, n);
}

/* Wait for the end of the pipe (the child has exited or closed it). */
static int wait_eof(reader *r) {
    char c;
    for (;;) {
        if (wait_readable(r)) return -1;
        ssize_t k = read(r->fd, &c, 1);
        if (k == 0) return 0;
        if (k < 0 && errno == EINTR) continue;
        return -1; /* more bytes than the reply, or an error */
    }
}

typedef enum { REPLY_OK, REPLY_CHILD_ERROR, REPLY_BROKEN, REPLY_PARENT_ERROR } reply_kind;

/* The child's own error: its code, file and message. */
static reply_kind read_error(reader *r, uint32_t status, const char *path, cnnviz_error *err) {
    char *file = NULL, *msg = NULL;
    reply_kind k = REPLY_BROKEN;
    if (status <= CNNVIZ_ERR_NUMERIC && !get_str(r, sizeof err->file - 1, &file) &&
        !get_str(r, sizeof err->msg - 1, &msg)) {
        cnnviz_error_set(err, (cnnviz_status)status, file[0] ? file : path, "%s", msg);
        k = REPLY_CHILD_ERROR;
    }
    free(file);
    free(msg);
    return k;
}

static reply_kind read_meta(reader *r, cnnviz_model *m, const cnnviz_load_options *opt, cnnviz_error *err) {
    uint32_t n;
    size_t total = 0;
    if (get_u32(r, &n) || n > REPLY_MAX_META) return REPLY_BROKEN;
    for (uint32_t i = 0; i < n; i++) {
        char *key = NULL, *value = NULL;
        reply_kind k = REPLY_BROKEN;
        if (!get_str(r, REPLY_MAX_KEY, &key) && !get_str(r, opt->max_config_bytes - total, &value)) {
            total += strlen(value);
            k = cnnviz_model_set_meta(m, key, value, err) ? REPLY_PARENT_ERROR : REPLY_OK;
        }
        free(key);
        free(value);
        if (k) return k;
    }
    return REPLY_OK;
}

static reply_kind read_scale(reader *r, cnnviz_model *m) {
    uint32_t has, kind;
    cnnviz_input_scale s;
    if (get_u32(r, &has) || get_u32(r, &kind) || get(r, &s.mean, sizeof s.mean) || get(r, &s.std, sizeof s.std))
        return REPLY_BROKEN;
    if (has > 1 || kind > CNNVIZ_SCALE_MEANSTD) return REPLY_BROKEN;
    s.kind = (cnnviz_scale_kind)kind;
    if (has) cnnviz_model_set_input_scale(m, s);
    return REPLY_OK;
}

/* The config text, rebuilt here under the budget; then what the child read. */
static reply_kind read_model(reader *r, const char *path, const cnnviz_load_options *opt, cnnviz_model **out,
                             cnnviz_error *err) {
    uint64_t config_len, nparams;
    uint32_t end;
    if (get_u64(r, &config_len) || config_len == 0 || config_len > opt->max_config_bytes) return REPLY_BROKEN;
    char *config = malloc((size_t)config_len);
    if (!config) {
        cnnviz_error_set(err, CNNVIZ_ERR_NOMEM, path, "out of memory");
        return REPLY_PARENT_ERROR;
    }
    if (get(r, config, (size_t)config_len)) {
        free(config);
        return REPLY_BROKEN;
    }
    cnnviz_model *m = NULL;
    cnnviz_status st = cnnviz_keras_build_json(config, (size_t)config_len, path, opt, &m, err);
    free(config);
    if (st) return REPLY_PARENT_ERROR;
    reply_kind k = read_meta(r, m, opt, err);
    if (!k) k = read_scale(r, m);
    if (!k && (get_u64(r, &nparams) || nparams != cnnviz_model_num_params(m) || nparams > opt->max_params))
        k = REPLY_BROKEN;
    if (!k && (get(r, cnnviz_model_params(m), (size_t)nparams * sizeof(float)) || get_u32(r, &end) ||
               end != REPLY_MAGIC))
        k = REPLY_BROKEN;
    if (!k && cnnviz_model_check_finite(m, path, err)) k = REPLY_PARENT_ERROR;
    if (k) {
        cnnviz_model_free(m);
        return k;
    }
    *out = m;
    return REPLY_OK;
}

static reply_kind read_reply(reader *r, const char *path, const cnnviz_load_options *opt, cnnviz_model **out,
                             cnnviz_error *err) {
    uint32_t magic, version, status;
    if (get_u32(r, &magic) || get_u32(r, &version) || get_u32(r, &status)) return REPLY_BROKEN;
    if (magic != REPLY_MAGIC || version != REPLY_VERSION) return REPLY_BROKEN;
    if (status) return read_error(r, status, path, err);
    char *file = NULL, *msg = NULL;
    int bad = get_str(r, 0, &file) || get_str(r, 0, &msg);
    free(file);
    free(msg);
    if (bad) return REPLY_BROKEN;
    return read_model(r, path, opt, out, err);
}

/* Kill (when it may still run) and reap the child; its wait status. */
static int reap(pid_t pid, int kill_it) {
    if (kill_it) kill(pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) return 0; /* ECHILD: the caller ignores SIGCHLD and it was reaped */
    }
    return status;
}

static cnnviz_status isolated_load(const char *path, const cnnviz_load_options *opt, cnnviz_model **out,
                                   cnnviz_error *caller_err) {
    cnnviz_error local; /* the child's code is needed even when the caller passes no record */
    cnnviz_error *err = caller_err ? caller_err : &local;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC))
        return cnnviz_error_set(err, CNNVIZ_ERR_IO, path, "cannot start the model reader process: %s",
                                strerror(errno));
    /* room for a small model's whole reply (the bundled one's is 0.4 MB):
     * the child then writes it and exits without waiting for us to be
     * scheduled once per 64 KiB; a failure leaves the default size */
    fcntl(fds[1], F_SETPIPE_SZ, 1 << 20);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        child_main(path, opt, fds[1]);
    }
    int fork_errno = errno;
    close(fds[1]);
    if (pid < 0) {
        close(fds[0]);
        return cnnviz_error_set(err, CNNVIZ_ERR_IO, path, "cannot start the model reader process: %s",
                                strerror(fork_errno));
    }
    reader r = {fds[0], opt->timeout_s > 0 ? now_s() + opt->timeout_s : 0, 0};
    reply_kind k = read_reply(&r, path, opt, out, err);
    if (!k && wait_eof(&r)) k = REPLY_BROKEN;
    close(fds[0]);
    int status = reap(pid, k != REPLY_OK && k != REPLY_CHILD_ERROR);
    if (k == REPLY_OK && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) k = REPLY_BROKEN;
    if (k != REPLY_OK) {
        cnnviz_model_free(*out);
        *out = NULL;
    }
    if (k == REPLY_OK) return CNNVIZ_OK;
    if (k == REPLY_CHILD_ERROR || k == REPLY_PARENT_ERROR) return err->code;
    if (r.timed_out)
        return cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path,
                                "reading this file took longer than %g s (corrupt or hostile)", opt->timeout_s);
    if (WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) != 0))
        return cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path,
                                "the HDF5 library failed while reading this file (corrupt or hostile)");
    return cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path, "the model reader process sent a malformed reply");
}

cnnviz_status cnnviz_model_load_opts(const char *path, const cnnviz_load_options *opt, cnnviz_model **out,
                                     cnnviz_error *err) {
    cnnviz_load_options defaults;
    if (!opt) {
        cnnviz_load_options_init(&defaults);
        opt = &defaults;
    }
    *out = NULL;
    if (opt->in_process) return load_in_process(path, opt, out, err);
    return isolated_load(path, opt, out, err);
}

cnnviz_status cnnviz_model_load(const char *path, cnnviz_model **out, cnnviz_error *err) {
    return cnnviz_model_load_opts(path, NULL, out, err);
}
