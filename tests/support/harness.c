/* harness.c — process, port, data-file and HTTP helpers for integration tests.
 *
 * See harness.h. The points that make it robust: every wait has a deadline;
 * spawned servers live in their own process group and are killed at exit, on
 * fatal signals, and (through setpriv's parent-death signal, when available)
 * even when the test is SIGKILLed; a port that another process grabbed between
 * vt_free_port() and the server's bind is retried with a new one. */
#define _GNU_SOURCE
#include "harness.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef VIGIL_SOURCE_DIR
#define VIGIL_SOURCE_DIR "."
#endif

extern char **environ;

#define VT_MAX_PROCS 64
#define VT_MAX_TMPDIRS 64
#define VT_MAX_DATA 32
#define VT_KILL_GRACE_MS 5000
#define VT_START_TIMEOUT_MS 10000
#define VT_START_ATTEMPTS 5
#define VT_HTTP_MAX_BODY (256u << 20)   /* refuse responses over 256 MiB */
#define VT_SETPRIV "/usr/bin/setpriv"

/* Registry of live processes. `pids` is what the signal handler reads: a
 * plain array of pid_t written only outside the handler. */
static vt_proc *procs[VT_MAX_PROCS];
static volatile pid_t pids[VT_MAX_PROCS];
static char *tmpdirs[VT_MAX_TMPDIRS];
static int ntmpdirs;
static char *datapaths[VT_MAX_DATA];
static int ndatapaths;
static int teardown_installed;

long long vt_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void vt_sleep_ms(int ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

/* ---- teardown ---------------------------------------------------------- */

static void signal_kill_all(int sig)
{
    /* Async-signal-safe: kill() and raise() only. */
    for (int i = 0; i < VT_MAX_PROCS; i++) {
        pid_t p = pids[i];
        if (p > 0) {
            kill(-p, SIGKILL);
            kill(p, SIGKILL);
        }
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    remove(path);
    return 0;
}

static void unregister(vt_proc *p)
{
    for (int i = 0; i < VT_MAX_PROCS; i++)
        if (procs[i] == p) {
            procs[i] = NULL;
            pids[i] = 0;
        }
}

static void reap(vt_proc *p, int timeout_ms)
{
    long long deadline = vt_now_ms() + timeout_ms;
    while (!p->exited) {
        int st;
        pid_t r = waitpid(p->pid, &st, WNOHANG);
        if (r == p->pid || (r == -1 && errno == ECHILD)) {
            p->exited = 1;
            p->status = (r == p->pid) ? st : 0;
            break;
        }
        if (vt_now_ms() >= deadline)
            break;
        vt_sleep_ms(10);
    }
}

static void teardown(void)
{
    /* SIGTERM everything, give them a shared grace period, then SIGKILL. */
    for (int i = 0; i < VT_MAX_PROCS; i++)
        if (procs[i] && !procs[i]->exited) {
            kill(-procs[i]->pid, SIGTERM);
            kill(procs[i]->pid, SIGTERM);
        }
    long long deadline = vt_now_ms() + 2000;
    for (int i = 0; i < VT_MAX_PROCS; i++) {
        vt_proc *p = procs[i];
        if (!p)
            continue;
        long long left = deadline - vt_now_ms();
        reap(p, left > 0 ? (int)left : 0);
        if (!p->exited) {
            kill(-p->pid, SIGKILL);
            kill(p->pid, SIGKILL);
            reap(p, 2000);
        }
        unregister(p);
        free(p);
    }
    const char *keep = getenv("VT_KEEP_TMP");
    for (int i = 0; i < ntmpdirs; i++) {
        if (!(keep && strcmp(keep, "1") == 0))
            nftw(tmpdirs[i], rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        free(tmpdirs[i]);
        tmpdirs[i] = NULL;
    }
    ntmpdirs = 0;
    for (int i = 0; i < ndatapaths; i++) {
        free(datapaths[i]);
        datapaths[i] = NULL;
    }
    ndatapaths = 0;
}

static void install_teardown(void)
{
    if (teardown_installed)
        return;
    teardown_installed = 1;
    atexit(teardown);
    static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGSEGV, SIGBUS, SIGFPE, SIGABRT };
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        struct sigaction old;
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_DFL &&
            !(old.sa_flags & SA_SIGINFO)) {
            struct sigaction sa;
            memset(&sa, 0, sizeof sa);
            sa.sa_handler = signal_kill_all;
            sigemptyset(&sa.sa_mask);
            sigaction(sigs[i], &sa, NULL);
        }
    }
}

/* ---- processes --------------------------------------------------------- */

static int on_path(const char *prog)
{
    if (strchr(prog, '/'))
        return access(prog, X_OK) == 0;
    const char *path = getenv("PATH");
    if (!path)
        path = "/usr/local/bin:/usr/bin:/bin";
    while (*path) {
        const char *end = strchr(path, ':');
        size_t n = end ? (size_t)(end - path) : strlen(path);
        char buf[1024];
        int w = snprintf(buf, sizeof buf, "%.*s/%s", (int)n, n ? path : ".", prog);
        if (w > 0 && (size_t)w < sizeof buf && access(buf, X_OK) == 0)
            return 1;
        if (!end)
            break;
        path = end + 1;
    }
    return 0;
}

/* environ with the "NAME=value" entries of `env` replacing or added to the
 * test's own; an array of borrowed pointers (free the array only), or NULL
 * when out of memory. */
static char **merged_env(const char *const env[])
{
    size_t n = 0, k = 0, extra = 0;
    while (environ[n])
        n++;
    while (env && env[extra])
        extra++;
    char **out = calloc(n + extra + 1, sizeof *out);
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        int replaced = 0;
        for (size_t j = 0; j < extra && !replaced; j++) {
            const char *eq = strchr(env[j], '=');
            size_t nl = eq ? (size_t)(eq - env[j]) : strlen(env[j]);
            replaced = strncmp(environ[i], env[j], nl) == 0 && environ[i][nl] == '=';
        }
        if (!replaced)
            out[k++] = environ[i];
    }
    for (size_t j = 0; j < extra; j++)
        if (strchr(env[j], '='))   /* a bare "NAME" only removes NAME */
            out[k++] = (char *)env[j];
    out[k] = NULL;
    return out;
}

static vt_proc *spawn_env(const char *const argv[], const char *const env[], const char *log_path);

vt_proc *vt_spawn(const char *const argv[], const char *log_path)
{
    return spawn_env(argv, NULL, log_path);
}

vt_proc *vt_spawn_env(const char *const argv[], const char *const env[], const char *log_path)
{
    return spawn_env(argv, env, log_path);
}

static vt_proc *spawn_env(const char *const argv[], const char *const env[], const char *log_path)
{
    if (!argv || !argv[0])
        return NULL;
    install_teardown();
    int slot = -1;
    for (int i = 0; i < VT_MAX_PROCS; i++)
        if (!procs[i]) {
            slot = i;
            break;
        }
    if (slot < 0) {
        fprintf(stderr, "harness: more than %d live processes\n", VT_MAX_PROCS);
        return NULL;
    }
    if (!on_path(argv[0])) {
        fprintf(stderr, "harness: '%s' not found on PATH\n", argv[0]);
        return NULL;
    }
    size_t argc = 0;
    while (argv[argc])
        argc++;
    int use_setpriv = access(VT_SETPRIV, X_OK) == 0;
    const char **av = calloc(argc + 5, sizeof *av);
    vt_proc *p = calloc(1, sizeof *p);
    if (!av || !p) {
        free(av);
        free(p);
        return NULL;
    }
    size_t k = 0;
    if (use_setpriv) {
        /* Parent-death signal: the child dies even if this test is SIGKILLed. */
        av[k++] = VT_SETPRIV;
        av[k++] = "--pdeathsig";
        av[k++] = "KILL";
        av[k++] = "--";
    }
    for (size_t i = 0; i < argc; i++)
        av[k++] = argv[i];
    av[k] = NULL;

    const char *log = log_path ? log_path : "/dev/null";
    snprintf(p->log_path, sizeof p->log_path, "%s", log_path ? log_path : "");
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        fprintf(stderr, "harness: cannot open log %s: %s\n", log, strerror(errno));
        free(av);
        free(p);
        return NULL;
    }
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, fd, 1);
    posix_spawn_file_actions_adddup2(&fa, fd, 2);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);  /* no test sockets leak into servers */
#endif
    /* Own process group (so the whole tree can be killed); default signal
     * dispositions and an empty mask whatever the test set up. */
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                        POSIX_SPAWN_SETSIGDEF);
    pid_t pid;
    char **envp = env ? merged_env(env) : environ;
    int rc = envp ? posix_spawnp(&pid, av[0], &fa, &attr, (char *const *)av, envp) : ENOMEM;
    if (envp != environ)
        free(envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(fd);
    free(av);
    if (rc != 0) {
        fprintf(stderr, "harness: posix_spawn %s: %s\n", argv[0], strerror(rc));
        free(p);
        return NULL;
    }
    p->pid = pid;
    procs[slot] = p;
    pids[slot] = pid;
    return p;
}

int vt_alive(vt_proc *p)
{
    if (!p || p->exited)
        return 0;
    int st;
    pid_t r = waitpid(p->pid, &st, WNOHANG);
    if (r == 0)
        return 1;
    p->exited = 1;
    p->status = (r == p->pid) ? st : 0;
    return 0;
}

int vt_wait_exit(vt_proc *p, int timeout_ms)
{
    if (!p)
        return 1;
    long long deadline = vt_now_ms() + timeout_ms;
    while (vt_alive(p)) {
        if (vt_now_ms() >= deadline)
            return 0;
        vt_sleep_ms(10);
    }
    return 1;
}

void vt_kill(vt_proc *p, int sig)
{
    if (!p)
        return;
    if (vt_alive(p)) {
        kill(-p->pid, sig);
        kill(p->pid, sig);
        reap(p, VT_KILL_GRACE_MS);
        if (!p->exited) {
            fprintf(stderr, "harness: pid %d ignored signal %d for %d ms, sending SIGKILL\n",
                    (int)p->pid, sig, VT_KILL_GRACE_MS);
            kill(-p->pid, SIGKILL);
            kill(p->pid, SIGKILL);
            reap(p, VT_KILL_GRACE_MS);
        }
    }
    unregister(p);
    free(p);
}

/* ---- ports ------------------------------------------------------------- */

int vt_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    socklen_t len = sizeof a;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* Connect to 127.0.0.1:port within timeout_ms; returns the fd or -1. */
static int connect_once(int port, int timeout_ms)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0)
        return fd;
    if (errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    struct pollfd pfd = { fd, POLLOUT, 0 };
    int err = 0;
    socklen_t elen = sizeof err;
    if (poll(&pfd, 1, timeout_ms) == 1 &&
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) == 0 && err == 0)
        return fd;
    close(fd);
    return -1;
}

int vt_wait_port(int port, int timeout_ms)
{
    long long deadline = vt_now_ms() + timeout_ms;
    for (;;) {
        long long left = deadline - vt_now_ms();
        int fd = connect_once(port, left > 200 ? 200 : (left > 0 ? (int)left : 1));
        if (fd >= 0) {
            close(fd);
            return 0;
        }
        if (vt_now_ms() >= deadline)
            return -1;
        vt_sleep_ms(20);
    }
}

/* Connect, optionally send `req`, and check that the first bytes received
 * start with `expect`; all within timeout_ms. 0 on success. */
static int probe(int port, const char *req, const char *expect, int timeout_ms)
{
    long long deadline = vt_now_ms() + timeout_ms;
    int fd = connect_once(port, timeout_ms);
    if (fd < 0)
        return -1;
    int ok = -1;
    if (req) {
        size_t n = strlen(req);
        if (send(fd, req, n, MSG_NOSIGNAL) != (ssize_t)n)
            goto out;
    }
    char buf[256];
    size_t got = 0, want = strlen(expect);
    while (got < want) {
        long long left = deadline - vt_now_ms();
        if (left <= 0)
            goto out;
        struct pollfd pfd = { fd, POLLIN, 0 };
        if (poll(&pfd, 1, (int)left) != 1)
            goto out;
        ssize_t r = recv(fd, buf + got, sizeof buf - 1 - got, 0);
        if (r <= 0)
            goto out;
        got += (size_t)r;
    }
    ok = memcmp(buf, expect, want) == 0 ? 0 : -1;
out:
    close(fd);
    return ok;
}

/* Start a server built by `make_argv` on *port (or on free ports, retried),
 * until `probe` succeeds. */
typedef void (*argv_fn)(int port, const char *dir, char portbuf[16], const char *argv[16]);

static vt_proc *start_server(const char *what, int *port, const char *dir, argv_fn make_argv,
                             const char *req, const char *expect)
{
    if (!port || !dir)
        return NULL;
    int fixed = *port > 0;
    for (int attempt = 0; attempt < (fixed ? 1 : VT_START_ATTEMPTS); attempt++) {
        int p = fixed ? *port : vt_free_port();
        if (p <= 0)
            continue;
        char portbuf[16], log[512];
        const char *argv[16];
        make_argv(p, dir, portbuf, argv);
        snprintf(log, sizeof log, "%s/%s-%d.log", dir, what, p);
        vt_proc *proc = vt_spawn(argv, log);
        if (!proc)
            return NULL;
        long long deadline = vt_now_ms() + VT_START_TIMEOUT_MS;
        while (vt_now_ms() < deadline) {
            if (!vt_alive(proc))
                break;
            if (probe(p, req, expect, 200) == 0) {
                *port = p;
                return proc;
            }
            vt_sleep_ms(20);
        }
        int died = !vt_alive(proc);
        fprintf(stderr, "harness: %s on port %d %s; log %s:\n", what, p,
                died ? "exited" : "did not answer within 10 s", log);
        vt_dump_log(log, 2048);
        vt_kill(proc, SIGKILL);
        if (!died)
            return NULL;   /* a hung server is not a port race: do not retry */
    }
    return NULL;
}

static void redis_argv(int port, const char *dir, char portbuf[16], const char *argv[16])
{
    snprintf(portbuf, 16, "%d", port);
    int i = 0;
    argv[i++] = "redis-server";
    argv[i++] = "--port";
    argv[i++] = portbuf;
    argv[i++] = "--bind";
    argv[i++] = "127.0.0.1";
    argv[i++] = "--save";
    argv[i++] = "";
    argv[i++] = "--appendonly";
    argv[i++] = "no";
    argv[i++] = "--dir";
    argv[i++] = dir;
    argv[i] = NULL;
}

static void nats_argv(int port, const char *dir, char portbuf[16], const char *argv[16])
{
    snprintf(portbuf, 16, "%d", port);
    int i = 0;
    argv[i++] = "nats-server";
    argv[i++] = "-a";
    argv[i++] = "127.0.0.1";
    argv[i++] = "-p";
    argv[i++] = portbuf;
    argv[i++] = "-js";
    argv[i++] = "-sd";
    argv[i++] = dir;
    argv[i] = NULL;
}

/* As redis_argv, with the append-only file fsynced on every write. */
static void redis_aof_argv(int port, const char *dir, char portbuf[16], const char *argv[16])
{
    snprintf(portbuf, 16, "%d", port);
    int i = 0;
    argv[i++] = "redis-server";
    argv[i++] = "--port";
    argv[i++] = portbuf;
    argv[i++] = "--bind";
    argv[i++] = "127.0.0.1";
    argv[i++] = "--save";
    argv[i++] = "";
    argv[i++] = "--appendonly";
    argv[i++] = "yes";
    argv[i++] = "--appendfsync";
    argv[i++] = "always";
    argv[i++] = "--dir";
    argv[i++] = dir;
    argv[i] = NULL;
}

vt_proc *vt_start_redis(int *port, const char *dir)
{
    return start_server("redis", port, dir, redis_argv, "PING\r\n", "+PONG");
}

vt_proc *vt_start_redis_aof(int *port, const char *dir)
{
    /* While it replays the AOF, Redis answers PING with -LOADING: "+PONG"
     * means the data is back. */
    return start_server("redis", port, dir, redis_aof_argv, "PING\r\n", "+PONG");
}

vt_proc *vt_start_nats(int *port, const char *dir)
{
    /* The server greets every client with INFO once it is ready. */
    return start_server("nats", port, dir, nats_argv, NULL, "INFO");
}

/* Stop p with sig, wait for its port to close, start it again on the same
 * port and dir (a few attempts: the port may linger for a moment). */
static vt_proc *restart_server(const char *what, vt_proc *p, int sig, int port, const char *dir,
                               vt_proc *(*start)(int *, const char *))
{
    if (port <= 0 || !dir)
        return NULL;
    if (p)
        vt_kill(p, sig);
    long long deadline = vt_now_ms() + VT_START_TIMEOUT_MS;
    while (vt_now_ms() < deadline) {
        int fd = connect_once(port, 100);
        if (fd < 0)
            break;
        close(fd);   /* still answering: not ours any more, or not yet gone */
        vt_sleep_ms(50);
    }
    for (int attempt = 0; attempt < VT_START_ATTEMPTS; attempt++) {
        int fixed = port;
        vt_proc *np = start(&fixed, dir);
        if (np)
            return np;
        vt_sleep_ms(500);
    }
    fprintf(stderr, "harness: could not restart %s on port %d with %s\n", what, port, dir);
    return NULL;
}

vt_proc *vt_restart_redis_aof(vt_proc *p, int sig, int port, const char *dir)
{
    return restart_server("redis-server", p, sig, port, dir, vt_start_redis_aof);
}

vt_proc *vt_restart_nats(vt_proc *p, int sig, int port, const char *dir)
{
    return restart_server("nats-server", p, sig, port, dir, vt_start_nats);
}

void vt_dump_log(const char *path, size_t max_bytes)
{
    if (!path || !*path)
        return;
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "  (no log at %s)\n", path);
        return;
    }
    if (fseek(f, 0, SEEK_END) == 0) {
        long size = ftell(f);
        if (size > (long)max_bytes)
            fseek(f, size - (long)max_bytes, SEEK_SET);
        else
            fseek(f, 0, SEEK_SET);
    }
    char buf[1024];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        fwrite(buf, 1, n, stderr);
    fclose(f);
}

/* ---- files ------------------------------------------------------------- */

const char *vt_data_path(const char *name)
{
    if (!name || !*name || strstr(name, ".."))
        return NULL;
    char path[4096];
    const char *dir = getenv("VIGIL_DATA_DIR");
    int w = (dir && *dir) ? snprintf(path, sizeof path, "%s/%s", dir, name)
                          : snprintf(path, sizeof path, "%s/../shared/data/%s", VIGIL_SOURCE_DIR, name);
    if (w < 0 || (size_t)w >= sizeof path)
        return NULL;
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
        return NULL;
    char *real = realpath(path, NULL);
    if (!real)
        return NULL;
    for (int i = 0; i < ndatapaths; i++)
        if (strcmp(datapaths[i], real) == 0) {
            free(real);
            return datapaths[i];
        }
    if (ndatapaths == VT_MAX_DATA) {
        /* Out of slots: recycle the oldest (callers use the path right away). */
        free(datapaths[0]);
        memmove(datapaths, datapaths + 1, (VT_MAX_DATA - 1) * sizeof *datapaths);
        ndatapaths--;
    }
    install_teardown();
    datapaths[ndatapaths++] = real;
    return real;
}

int vt_require_data(const char *name)
{
    if (vt_data_path(name))
        return 1;
    const char *ci = getenv("CI");
    if (ci && strcmp(ci, "true") == 0) {
        fprintf(stderr, "FAIL: ../shared/data/%s not found, and CI=true: "
                        "CI must provide the real card data (or set VIGIL_DATA_DIR)\n", name);
        return -1;
    }
    printf("SKIP: ../shared/data/%s not found (tests that need the real card data skip outside CI)\n",
           name);
    fflush(stdout);
    return 0;
}

char *vt_tmpdir(void)
{
    char tmpl[] = "/tmp/vigil-test-XXXXXX";
    if (!mkdtemp(tmpl)) {
        fprintf(stderr, "harness: mkdtemp: %s\n", strerror(errno));
        return NULL;
    }
    char *ret = strdup(tmpl);
    if (!ret)
        return NULL;
    install_teardown();
    if (ntmpdirs < VT_MAX_TMPDIRS) {
        char *mine = strdup(tmpl);
        if (mine)
            tmpdirs[ntmpdirs++] = mine;
    }
    return ret;
}

/* ---- HTTP -------------------------------------------------------------- */

typedef struct vt_buf {
    char *p;
    size_t len, cap;
} vt_buf;

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    vt_buf *b = ud;
    size_t n = size * nmemb;
    if (b->len + n + 1 > VT_HTTP_MAX_BODY)
        return 0;   /* aborts the transfer: CURLE_WRITE_ERROR */
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np)
            return 0;
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
    return n;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

char *vt_http_ex(const char *method, const char *url, const char *body, size_t len,
                 const char *content_type, const char *const *headers, long timeout_ms,
                 long *status, size_t *out_len)
{
    if (status)
        *status = 0;
    if (out_len)
        *out_len = 0;
    if (!method || !url)
        return NULL;
    pthread_once(&curl_once, curl_init);
    CURL *c = curl_easy_init();
    if (!c)
        return NULL;
    vt_buf b = { NULL, 0, 0 };
    struct curl_slist *hl = NULL;
    char ct[256];
    if (content_type) {
        snprintf(ct, sizeof ct, "Content-Type: %s", content_type);
        hl = curl_slist_append(hl, ct);
    }
    hl = curl_slist_append(hl, "Expect:");   /* no 100-continue round trip */
    for (size_t i = 0; headers && headers[i]; i++)
        hl = curl_slist_append(hl, headers[i]);

    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");   /* tests talk to loopback servers */
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? timeout_ms : 30000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else {
        if (strcmp(method, "POST") != 0)
            curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? len : 0));
    }
    CURLcode rc = curl_easy_perform(c);
    long code = 0;
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    else
        fprintf(stderr, "harness: %s %s: %s\n", method, url, curl_easy_strerror(rc));
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK) {
        free(b.p);
        return NULL;
    }
    if (!b.p) {
        b.p = calloc(1, 1);
        if (!b.p)
            return NULL;
    }
    if (status)
        *status = code;
    if (out_len)
        *out_len = b.len;
    return b.p;
}

char *vt_http(const char *method, const char *url, const char *body, size_t len,
              const char *content_type, long *status)
{
    return vt_http_ex(method, url, body, len, content_type, NULL, 0, status, NULL);
}

/* ---- a vigil serve and its log ------------------------------------------------------- */

char *vt_slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *b = calloc(1, 1 << 20);
    if (b && fread(b, 1, (1 << 20) - 1, f) == 0 && ferror(f)) {
        free(b);
        b = NULL;
    }
    fclose(f);
    return b;
}

vt_proc *vt_start_vigil(const char *const argv[], const char *log_path, char *base, size_t base_len, int timeout_ms) {
    vt_proc *p = vt_spawn(argv, log_path);
    if (!p) return NULL;
    static const char *const marks[] = {"listening on http://127.0.0.1:", "listening on https://127.0.0.1:"};
    for (long long t0 = vt_now_ms(); vt_now_ms() - t0 < timeout_ms; vt_sleep_ms(20)) {
        char *t = vt_slurp(log_path);
        for (int i = 0; t && i < 2; i++) {
            const char *m = strstr(t, marks[i]);
            int port = m ? atoi(m + strlen(marks[i])) : 0;
            if (port > 0) {
                snprintf(base, base_len, "%s://127.0.0.1:%d", i ? "https" : "http", port);
                free(t);
                return p;
            }
        }
        free(t);
        if (!vt_alive(p)) break;
    }
    vt_dump_log(log_path, 4000);
    vt_kill(p, SIGKILL);
    return NULL;
}

double vt_metric(const char *base, const char *name) {
    char url[300];
    long st = 0;
    snprintf(url, sizeof url, "%s/metrics", base);
    char *t = vt_http("GET", url, NULL, 0, NULL, &st);
    double v = -1;
    size_t n = strlen(name);
    for (const char *p = t; st == 200 && p && *p;) {
        if (strncmp(p, name, n) == 0 && p[n] == ' ') {
            v = strtod(p + n + 1, NULL);
            break;
        }
        p = strchr(p, '\n');
        if (p) p++;
    }
    free(t);
    return v;
}

char *vt_serve_test_setup(const char *rules_text, char *rules_path, size_t n) {
    signal(SIGPIPE, SIG_IGN);
    static const char *const vars[] = {"VIGIL_NATS", "VIGIL_REDIS", "VIGIL_RULES", "VIGIL_LISTEN",
                                       "VIGIL_FAULT", "VIGIL_CONFIG", NULL};
    for (int i = 0; vars[i]; i++) unsetenv(vars[i]);
    setenv("NO_PROXY", "127.0.0.1,localhost", 1);
    char *dir = vt_tmpdir();
    if (!dir) return NULL;
    snprintf(rules_path, n, "%s/rules.lua", dir);
    FILE *f = fopen(rules_path, "w");
    if (!f) return NULL;
    int ok = fputs(rules_text, f) >= 0;
    if (fclose(f) != 0 || !ok) return NULL;
    return dir;
}
