/* redis.h — the server's one Redis connection layer (hiredis 0.14, synchronous).
 *
 * Every part of the server that talks to Redis goes through this: the state
 * store (redis_store.c: key states, offsets, the commit) and the alert outbox
 * (server/alerts/outbox_redis.c: the stream, consumer groups, dead letters).
 * It owns what they used to do twice: the redis:// URL, connecting with
 * timeouts, AUTH and SELECT, dropping a connection after a transport error
 * and reconnecting on the next call, SIGPIPE, the mapping of hiredis errors
 * to vigil_status, pipelining and the counters. What a command means, and
 * how to read its reply, stays with the caller.
 *
 * A vigil_redis is one connection (or none, between a transport error and
 * the next call). It is not thread-safe: one thread uses it at a time (a
 * worker owns its store's; the outbox keeps a pool of them).
 *
 * Errors, everywhere in this header:
 *   VIGIL_EUNAVAILABLE  the server cannot be reached, a timeout, or the
 *                       connection dropped. The connection is then freed, and
 *                       the next call connects again (no retry loop inside a
 *                       call, no crash).
 *   VIGIL_ESTORE        Redis answered with an error (AUTH/SELECT refused,
 *                       LOADING, WRONGTYPE…); the message has the reply text.
 *   VIGIL_EPARSE        a bad URL.
 * Messages name host:port and never show the password (a URL in a message
 * has its user:password replaced by "***").
 *
 * SIGPIPE: hiredis writes with write(2); every call here that does I/O blocks
 * SIGPIPE in the calling thread and swallows one it caused, so a server that
 * closed the connection never kills the process. */
#ifndef VIGIL_REDIS_H
#define VIGIL_REDIS_H

#include <stddef.h>
#include <stdint.h>
#include "vigil/status.h"

struct redisReply;   /* <hiredis/hiredis.h>: callers that read replies include it */

typedef struct vigil_redis_opts {
    int connect_timeout_ms;   /* 0: 2000 */
    int io_timeout_ms;        /* per call, 0: 5000 */
} vigil_redis_opts;

/* One command: argc arguments, each lens[i] bytes (binary-safe). The
 * arrays are borrowed for the duration of the call that takes them. */
typedef struct vigil_redis_cmd {
    int argc;
    const char **argv;
    const size_t *lens;
} vigil_redis_cmd;

/* Counters since create. A round trip is one write-then-read turn: any
 * number of appended commands followed by reading their replies (a
 * pipeline of 50 000 GETs is one). Connection setup (AUTH, SELECT) is not
 * counted. */
typedef struct vigil_redis_counters {
    uint64_t round_trips;
    uint64_t connects;        /* connections made (AUTH/SELECT passed) */
    uint64_t reconnects;      /* of those, after the first */
    uint64_t failures;        /* transport errors (each dropped a connection) */
} vigil_redis_counters;

typedef struct vigil_redis vigil_redis;

/* Parse redis://[[user]:password@]host[:port][/db] (port 6379 and db 0 by
 * default; "host" may be a bracketed IPv6 address; "host:port" without the
 * scheme is accepted). Any out-parameter may be NULL. user/password are ""
 * when absent. Errors: VIGIL_EPARSE with the reason (the message never
 * contains the password). */
vigil_status vigil_redis_url_parse(const char *url, char *host, size_t hostn, int *port, int *db,
                                   char *user, size_t usern, char *password, size_t passwordn,
                                   vigil_error *err);

/* The URL with its user information replaced by user and password (the
 * config's redis.user / redis.password, which win over a user:password in
 * the URL), percent-encoded, into *out (malloc'd, owned by the caller: wipe
 * and free it with vigil_redis_url_free). user may be NULL/"" (AUTH with the
 * password only: the "default" user); password NULL/"" leaves the URL as it
 * is. Errors: VIGIL_EPARSE (a bad URL; redis.user without redis.password),
 * VIGIL_ENOMEM. */
vigil_status vigil_redis_url_with_auth(const char *url, const char *user, const char *password, char **out,
                                       vigil_error *err);
void vigil_redis_url_free(char *url);

/* A handle on `url` with timeouts `opts` (NULL: defaults). It does not
 * connect: vigil_redis_connect does, and so does any call that needs it.
 * VIGIL_EPARSE, VIGIL_ENOMEM. *out is owned by the caller. */
vigil_status vigil_redis_create(const char *url, const vigil_redis_opts *opts, vigil_redis **out,
                                vigil_error *err);
/* A new, unconnected handle on the same server with the same options (a
 * connection pool's next member). VIGIL_ENOMEM. */
vigil_status vigil_redis_clone(const vigil_redis *r, vigil_redis **out, vigil_error *err);
/* Close the connection and free the handle (the password is wiped). NULL is fine. */
void vigil_redis_destroy(vigil_redis *r);

/* Connect, set the timeouts, AUTH, SELECT — unless already connected.
 * VIGIL_EUNAVAILABLE, VIGIL_ESTORE (e.g. WRONGPASS), VIGIL_ENOMEM. */
vigil_status vigil_redis_connect(vigil_redis *r, vigil_error *err);
/* Drop the connection now (the next call reconnects). Anything appended and
 * not read is discarded with it. */
void vigil_redis_disconnect(vigil_redis *r);
/* 1 when a connection is open (0 after a transport error dropped it). */
int vigil_redis_connected(const vigil_redis *r);
/* "host:port", for messages. Lives as long as r. */
const char *vigil_redis_where(const vigil_redis *r);
/* Copy the counters. */
void vigil_redis_get_counters(const vigil_redis *r, vigil_redis_counters *out);

/* For blocking commands (XREADGROUP … BLOCK ms): the socket timeout becomes
 * io_timeout + wait_ms for the calls that follow, on this connection and on
 * one made meanwhile; 0 restores io_timeout. */
void vigil_redis_set_wait(vigil_redis *r, int wait_ms);

/* ---- pipelining --------------------------------------------------------
 *
 * append() only fills the output buffer (it connects first when there is no
 * connection); the first read() writes everything and reads the first
 * reply; each further read() takes the next one, in order. Between the first
 * append and the last read there is one round trip. A caller that appended
 * and then cannot read its replies must call vigil_redis_disconnect, so a
 * half-built pipeline never stays in a buffer. */

/* VIGIL_EUNAVAILABLE (no connection, or the command could not be queued:
 * the connection is then dropped), VIGIL_EINVAL for an empty command. */
vigil_status vigil_redis_append(vigil_redis *r, const vigil_redis_cmd *cmd, vigil_error *err);

/* A pipeline formatted here (RESP arrays of bulk strings) into one growing
 * buffer, appended in one piece: formatting a commit of ~2000 SETs command
 * by command through hiredis (an allocation and two copies each) cost ~10 %
 * of a worker's time (issue 16). Reuse one across commits (reset). */
typedef struct vigil_redis_batch {
    char *buf;
    size_t len, cap;
    int ncmds;                   /* commands in buf: replies due once appended */
    int failed;                  /* an allocation failed: the batch is unusable until reset */
} vigil_redis_batch;
void vigil_redis_batch_reset(vigil_redis_batch *b);
void vigil_redis_batch_add(vigil_redis_batch *b, int argc, const char *const *argv, const size_t *lens);
void vigil_redis_batch_free(vigil_redis_batch *b);   /* its buffer; b is left empty */
/* The decimal text of v (or of a signed v) into buf (>= 21 bytes, not
 * NUL-terminated); returns its length. Commands' numbers (TTLs, offsets,
 * partition tags) are formatted per key on the commit path, where snprintf
 * cost ~6 % of the JetStream → Redis path's instructions (issue 16). */
size_t vigil_redis_fmt_u64(char *buf, uint64_t v);
size_t vigil_redis_fmt_i64(char *buf, int64_t v);
/* Append every command of b, as vigil_redis_append would one by one.
 * VIGIL_ENOMEM when b failed (nothing appended), else as vigil_redis_append. */
vigil_status vigil_redis_append_batch(vigil_redis *r, const vigil_redis_batch *b, vigil_error *err);

/* Write what was appended, without reading (fault injection: a transaction
 * on the wire whose reply is never read). VIGIL_EUNAVAILABLE. */
vigil_status vigil_redis_flush(vigil_redis *r, vigil_error *err);

/* The next reply, owned by the caller (freeReplyObject). An error reply is
 * returned as a reply with VIGIL_OK: the caller decides what it means
 * (vigil_redis_reply_check maps it). A transport error gives
 * VIGIL_EUNAVAILABLE "Redis host:port: <what>: <why>" and drops the
 * connection; then vigil_redis_unsent() tells whether part of the pipeline
 * never left (so a MULTI's EXEC never reached the server). VIGIL_EINVAL when
 * no reply is due. */
vigil_status vigil_redis_read(vigil_redis *r, struct redisReply **reply, const char *what,
                              vigil_error *err);
/* After read() failed: 1 when bytes of the pipeline were still unsent. */
int vigil_redis_unsent(const vigil_redis *r);

/* Append n commands and read their n replies into replies[0..n): one round
 * trip. On VIGIL_OK every replies[i] is set (error replies included; see
 * vigil_redis_reply_check), owned by the caller: vigil_redis_free_replies.
 * On an error nothing is left in replies (all NULL). */
vigil_status vigil_redis_pipeline(vigil_redis *r, const vigil_redis_cmd *cmds, int n,
                                  struct redisReply **replies, const char *what, vigil_error *err);
void vigil_redis_free_replies(struct redisReply **replies, int n);

/* One command, one reply (vigil_redis_pipeline with n = 1). */
vigil_status vigil_redis_command(vigil_redis *r, const vigil_redis_cmd *cmd, struct redisReply **reply,
                                 const char *what, vigil_error *err);

/* VIGIL_ESTORE "Redis host:port: <what>: <reply text>" when reply is an
 * error reply, else VIGIL_OK. */
vigil_status vigil_redis_reply_check(const vigil_redis *r, const struct redisReply *reply,
                                     const char *what, vigil_error *err);
/* 1 when reply is an error reply starting with `code` ("NOGROUP", "LOADING"…). */
int vigil_redis_reply_is(const struct redisReply *reply, const char *code);

/* Connect to `url`, authenticate, select, PING, disconnect — for /healthz
 * and /readyz, from any thread (its own connection, 1 s timeouts).
 * VIGIL_OK when the server answered PONG; VIGIL_EUNAVAILABLE when it cannot
 * be reached or did not answer in time; VIGIL_ESTORE for an error reply
 * (e.g. NOAUTH, LOADING); VIGIL_EPARSE for a bad URL. */
vigil_status vigil_redis_ping(const char *url, vigil_error *err);

#endif
