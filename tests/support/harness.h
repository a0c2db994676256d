/* harness.h — shared helpers for vigil's integration tests.
 *
 * Integration tests run against real servers (redis-server, nats-server, the
 * vigil binary) started on free loopback ports, and against the real card data
 * in ../shared/data when it is present. This harness spawns and reaps those
 * processes, waits for them to answer (always with a deadline: nothing here
 * waits forever), restarts them on the same port and data (the crash tests:
 * Redis with its AOF fsynced always, nats-server with its JetStream store),
 * makes scratch directories, locates the data files and talks HTTP through
 * libcurl.
 *
 * Teardown: every process started by vt_spawn() is remembered; an atexit()
 * handler and handlers for SIGINT, SIGTERM, SIGHUP, SIGSEGV, SIGBUS, SIGFPE and
 * SIGABRT kill whatever is still running, so a failing or crashing test leaves
 * no server behind. When /usr/bin/setpriv exists the children are also started
 * with a parent-death signal (SIGKILL), which covers the one case no handler
 * can: the test itself being SIGKILLed (e.g. by a ctest timeout). Scratch
 * directories from vt_tmpdir() are removed at exit unless VT_KEEP_TMP=1.
 *
 * The harness is meant for the test's main thread; it is not thread-safe. */
#ifndef VIGIL_TEST_HARNESS_H
#define VIGIL_TEST_HARNESS_H

#include <stddef.h>
#include <sys/types.h>

/* A spawned process. Owned by the harness: release it with vt_kill() (which
 * frees it), or leave it to the exit-time teardown. */
typedef struct vt_proc {
    pid_t pid;
    char log_path[512];   /* where its stdout and stderr go ("" = /dev/null) */
    int exited;           /* set once reaped */
    int status;           /* waitpid() status once exited */
} vt_proc;

/* A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read the
 * port, close). Another process may take it before you do; vt_start_redis and
 * vt_start_nats retry with a new port when that happens. Returns -1 on error. */
int vt_free_port(void);

/* Start argv[0] (looked up on PATH) with argv, stdout and stderr appended to
 * log_path (NULL: /dev/null), stdin from /dev/null, in its own process group.
 * Returns a handle owned by the harness, or NULL (with a message on stderr). */
vt_proc *vt_spawn(const char *const argv[], const char *log_path);

/* vt_spawn with a changed environment for this child only: each "NAME=value"
 * in env (NULL-terminated; may be NULL) replaces or adds NAME, a bare "NAME"
 * removes it. The test's own environment is left alone. */
vt_proc *vt_spawn_env(const char *const argv[], const char *const env[], const char *log_path);

/* Wait up to timeout_ms for the process to exit. 1 when it has (it is reaped
 * and p->status holds its wait status), 0 when it is still running. */
int vt_wait_exit(vt_proc *p, int timeout_ms);

/* Send `sig` to the process, wait for it up to 5 s, then SIGKILL and reap it.
 * Frees the handle (it must not be used afterwards). Accepts NULL. */
void vt_kill(vt_proc *p, int sig);

/* 1 if the process is still running, 0 if it has exited (it is then reaped and
 * p->status holds its wait status). */
int vt_alive(vt_proc *p);

/* Connect to 127.0.0.1:port repeatedly until a connection succeeds or
 * timeout_ms passes. Returns 0 when the port accepted a connection, -1 on
 * timeout. */
int vt_wait_port(int port, int timeout_ms);

/* Start a throwaway redis-server: --port N --bind 127.0.0.1 --save ''
 * --appendonly no --dir DIR, log in DIR/redis-N.log; returns once it answers
 * PING (10 s deadline). *port: 0 picks a free port (and retries with another
 * one if it was taken); a non-zero *port is used as is (restarting a killed
 * server on the port a client already knows). On success *port holds the port.
 * dir must exist. Returns NULL on failure, with the log's tail on stderr. */
vt_proc *vt_start_redis(int *port, const char *dir);

/* Start nats-server -a 127.0.0.1 -p N -js -sd DIR, log in DIR/nats-N.log;
 * returns once the port accepts connections (10 s deadline). *port as for
 * vt_start_redis. */
vt_proc *vt_start_nats(int *port, const char *dir);

/* vt_start_redis with durability: --appendonly yes --appendfsync always (no
 * RDB), so every write Redis acknowledged is on disk and survives a SIGKILL
 * of the server. The AOF lives in DIR (DIR/appendonlydir): give each such
 * server a directory of its own. Started again with the same *port and DIR
 * it reloads the AOF; it returns only once the data is loaded (Redis answers
 * PING with -LOADING until then). */
vt_proc *vt_start_redis_aof(int *port, const char *dir);

/* Restart a server on the port and directory clients already know: stop p
 * with sig (SIGKILL: a crash; SIGTERM: a clean shutdown; p may be NULL when
 * it is already gone), wait until the port is closed, start it again with
 * the same port and dir, and return the new handle (p is freed), or NULL
 * with a message. vt_restart_redis_aof reloads the AOF (nothing acknowledged
 * is lost); vt_restart_nats reuses the store dir (-sd), so JetStream streams,
 * their messages and consumer state survive. Each takes at most about 10 s
 * to wait for the old port plus the start deadlines of a few attempts. */
vt_proc *vt_restart_redis_aof(vt_proc *p, int sig, int port, const char *dir);
vt_proc *vt_restart_nats(vt_proc *p, int sig, int port, const char *dir);

/* The path of a shared data file, e.g. vt_data_path("fdh-transactions-2018-04-to-07.csv.gz"):
 * $VIGIL_DATA_DIR/NAME when that variable is set, else
 * VIGIL_SOURCE_DIR/../shared/data/NAME, if the file exists; NULL otherwise.
 * The string is owned by the harness and lives until exit. */
const char *vt_data_path(const char *name);

/* For tests that need the real data: 1 when NAME is present; when absent,
 * 0 after printing "SKIP: …" (the test should return early), or -1 after
 * printing a failure when the environment variable CI is "true" (the test
 * should fail: CI must have the data). */
int vt_require_data(const char *name);

/* A fresh directory /tmp/vigil-test-XXXXXX (mkdtemp). The caller owns the
 * string (free() it); the directory itself is removed at exit unless
 * VT_KEEP_TMP=1. Returns NULL on failure. */
char *vt_tmpdir(void);

/* HTTP request through libcurl with a 30 s total timeout (5 s to connect).
 * body/len may be NULL/0; content_type may be NULL (no Content-Type header).
 * Returns the response body, NUL-terminated, malloc'd (caller frees), and the
 * HTTP status in *status (may be NULL); on a transport error returns NULL and
 * *status = 0. */
char *vt_http(const char *method, const char *url, const char *body, size_t len,
              const char *content_type, long *status);

/* vt_http with extra request headers (a NULL-terminated array of
 * "Name: value" strings, may be NULL), a timeout (0 = 30 s) and the response
 * body length in *out_len (may be NULL). Same ownership as vt_http. */
char *vt_http_ex(const char *method, const char *url, const char *body, size_t len,
                 const char *content_type, const char *const *headers, long timeout_ms,
                 long *status, size_t *out_len);

/* Milliseconds of CLOCK_MONOTONIC, and a sleep of ms milliseconds. */
long long vt_now_ms(void);
void vt_sleep_ms(int ms);

/* Print the last `max_bytes` of a log file to stderr (for failure reports). */
void vt_dump_log(const char *path, size_t max_bytes);

/* The whole file (at most 1 MiB), NUL-terminated, malloc'd; NULL when unreadable. */
char *vt_slurp(const char *path);

/* Start `vigil serve` (argv[0] its path) with its output in log_path and wait
 * up to timeout_ms for its "listening on http(s)://127.0.0.1:PORT" line; base
 * gets "http://127.0.0.1:PORT" (https when it serves TLS). NULL, with the
 * log's tail on stderr and the process killed, when it exits or never says so. */
vt_proc *vt_start_vigil(const char *const argv[], const char *log_path, char *base, size_t base_len, int timeout_ms);

/* The value of the unlabelled sample `name` (or a full `name{labels}` as
 * printed) on base's GET /metrics; -1 when absent or unreachable. */
double vt_metric(const char *base, const char *name);

/* The common start of a test that runs `vigil serve`: SIGPIPE ignored, the
 * VIGIL_* variables that would change the server's configuration unset,
 * NO_PROXY for loopback, a temporary directory (vt_tmpdir) holding
 * rules.lua with rules_text (its path into rules_path). The directory, or
 * NULL on an error. */
char *vt_serve_test_setup(const char *rules_text, char *rules_path, size_t n);

#endif
