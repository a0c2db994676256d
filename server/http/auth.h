/* auth.h — who may call what (DESIGN.md §6): bearer tokens with roles,
 * checked at the edge on the request's headers, before anything else is
 * decided (401/403 come before 404, 405, 413, 422). */
#ifndef VIGIL_HTTP_AUTH_H
#define VIGIL_HTTP_AUTH_H

#include <stddef.h>
#include "vigil/status.h"

typedef enum vigil_role {
    VIGIL_ROLE_PUBLIC = 0,   /* no token: /healthz, /readyz, the dashboard's assets */
    VIGIL_ROLE_METRICS,      /* /metrics: the metrics token when one is set, else public */
    VIGIL_ROLE_INGEST,       /* POST /v1/events (admin too) */
    VIGIL_ROLE_VIEWER,       /* reading alerts and rules */
    VIGIL_ROLE_ANALYST,      /* rule changes, keys, lists, snoozes (and what a viewer may) */
    VIGIL_ROLE_ADMIN         /* everything, with the audit log and dead letters */
} vigil_role;

typedef struct vigil_auth vigil_auth;

typedef struct vigil_auth_token {
    const char *name, *token, *role;
    int rate;                  /* events/s (ingest), a burst of one second's worth; 0: no limit */
} vigil_auth_token;

/* The tokens (copied; only their SHA-256 is kept) and the metrics token (may
 * be NULL). n = 0: no token configured, every request is allowed (the
 * server then listens on loopback only). EINVAL: an unknown role, or two
 * tokens that are the same (err names them by name). */
vigil_status vigil_auth_create(const vigil_auth_token *t, int n, const char *metrics_token, vigil_auth **out,
                               vigil_error *err);
void vigil_auth_destroy(vigil_auth *a);   /* accepts NULL */

/* Read a tokens file (the config's tokens_file): one token a line,
 * `name role token [rate]`, separated by spaces or tabs; blank lines and
 * lines starting with '#' are skipped. The file must not be readable by
 * other users (chmod 600 or 640), at most 1 MiB and VIGIL_AUTH_MAX_TOKENS
 * tokens. On success *out holds *n entries whose strings point into *store
 * (free both with free(); wipe *store with vigil_auth_tokens_free).
 * Errors (err names the file and the line, never the token): ENOTFOUND,
 * EIO (cannot read, or readable by others), EPARSE, ETOOBIG, ENOMEM. */
#define VIGIL_AUTH_MAX_TOKENS 4096
vigil_status vigil_auth_read_file(const char *path, vigil_auth_token **out, int *n, char **store,
                                  vigil_error *err);
void vigil_auth_tokens_free(vigil_auth_token *t, char *store);
int vigil_auth_enabled(const vigil_auth *a);

/* The role a request needs (the API's table, DESIGN.md §6). */
vigil_role vigil_auth_role_for(const char *method, const char *url);

/* Check a presented token (NULL: none) against the role: 0 allowed (*who
 * set to the token's name, or "local" without tokens; *index to the
 * token's, for vigil_auth_take, or -1), 401 missing or unknown, 403 known
 * but not allowed. Constant time in the token. */
int vigil_auth_check(const vigil_auth *a, vigil_role need, const char *token, const char **who, int *index);

/* One keep-alive connection's last known token: the text its client sent
 * and the entry it matched. A later request on the same connection that
 * presents the same text (compared in constant time) skips the SHA-256 and
 * the walk over the tokens; the role is checked every time. Owned by the
 * connection (http.c); wipe it with vigil_auth_memo_clear when it closes. */
typedef struct vigil_auth_memo {
    char tok[257];
    size_t len;       /* 0: nothing remembered */
    int found;
} vigil_auth_memo;
/* vigil_auth_check with a connection's memo (NULL: none). */
int vigil_auth_check_memo(const vigil_auth *a, vigil_role need, const char *token, vigil_auth_memo *memo,
                          const char **who, int *index);
void vigil_auth_memo_clear(vigil_auth_memo *m);

/* Take n events from token i's bucket: 0 taken; 429 not now (*retry_s:
 * when enough will be there); 413 never (n over the burst). A token without
 * a rate, or i < 0: always 0. Thread-safe. */
int vigil_auth_take(vigil_auth *a, int i, long n, int *retry_s);
/* Requests refused for their token's rate: fn(ud, name, count) per token with a rate. */
void vigil_auth_foreach_limited(vigil_auth *a, void (*fn)(void *ud, const char *name, unsigned long long n), void *ud);

#endif
