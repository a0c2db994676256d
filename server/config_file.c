/* config_file.c — reads the Lua config file of `vigil serve` (DESIGN.md §5,
 * e.g. deploy/vigil.conf.lua) into a vigil_server_config.
 *
 * The file runs in the one Lua sandbox of vigil (vigil/sandbox.h): no io,
 * debug or package; `os` with only getenv; text chunks only; a memory cap, an
 * instruction budget and a wall-clock deadline. It must return one table,
 * which is walked here key by key: every key must be known (an unknown one
 * gets "did you mean"), every value goes through the parser of config.c
 * (config_int.h), so it means what the same value means in VIGIL_* or on the
 * command line, and errors name the key's path in the file
 * ("webhooks[2].timeout") and say what to write. Like every call of
 * config.c, a load works on a stage and changes nothing when it fails. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <lua.h>
#include <lauxlib.h>
#include "vigil/sandbox.h"
#include "config_int.h"

#define FILE_MAX ((size_t)1 << 20)          /* bytes of config source */
#define MEM_CAP ((size_t)16 << 20)          /* bytes the Lua state may hold */
#define INSTR_BUDGET 10000000ULL            /* VM instructions */
#define WALL_MS 2000
#define STR_MAX 4096                        /* bytes of one string value */

/* ---- the file: walking the returned table ------------------------------------------- */

typedef struct walker {
    stage *st;
    lua_State *L;
} walker;

static const char *lua_kind(lua_State *L, int i) {
    switch (lua_type(L, i)) {
    case LUA_TNIL: return "nil";
    case LUA_TBOOLEAN: return "a boolean";
    case LUA_TNUMBER: return lua_isinteger(L, i) ? "a whole number" : "a number";
    case LUA_TSTRING: return "a string";
    case LUA_TTABLE: return "a table";
    case LUA_TFUNCTION: return "a function";
    default: return luaL_typename(L, i);
    }
}

/* "<path> must be <what>, not <kind>; write <example>". */
static int bad_type(walker *w, const setting *d, const origin *s, int i) {
    char b[320], x[200];
    cfg_form(b, sizeof b, s, d->example, cfg_example_quoted(d));
    return cfg_fail(w->st, VIGIL_EPARSE, "%s must be %s, not %s; write %s", s->name, cfg_describe(d, s, x, sizeof x),
                lua_kind(w->L, i), b);
}

/* The string at i, checked for size and NUL bytes, or NULL after an error. */
static const char *lua_str(walker *w, const origin *s, int i) {
    size_t len;
    const char *v = lua_tolstring(w->L, i, &len);
    if (len > STR_MAX) {
        cfg_fail(w->st, VIGIL_EPARSE, "%s is %zu bytes long; at most %d are allowed", s->name, len, STR_MAX);
        return NULL;
    }
    if (strlen(v) != len) {
        cfg_fail(w->st, VIGIL_EPARSE, "%s contains a NUL byte (\\0); remove it", s->name);
        return NULL;
    }
    return v;
}

static void num_text(lua_State *L, int i, char *buf, size_t n) {
    if (lua_isinteger(L, i))
        snprintf(buf, n, "%lld", (long long)lua_tointeger(L, i));
    else
        snprintf(buf, n, "%.14g", (double)lua_tonumber(L, i));
}

/* A list of strings at i (one string also counts as a list of one) joined
 * with commas into buf, for the field lists; each element non-empty, without
 * commas, at most max of them. */
static int lua_name_list(walker *w, const setting *d, const origin *s, int i, int max, char *buf, size_t n) {
    lua_State *L = w->L;
    int t = lua_type(L, i);
    if (t == LUA_TSTRING) {
        const char *v = lua_str(w, s, i);
        if (!v) return -1;
        snprintf(buf, n, "%s", v);
        return 0;
    }
    if (t != LUA_TTABLE) return bad_type(w, d, s, i);
    lua_Integer len = (lua_Integer)lua_rawlen(L, i);
    int count = 0;
    lua_pushnil(L);
    while (lua_next(L, i)) {
        count++;
        lua_pop(L, 1);
    }
    if (count != len || len == 0) return bad_type(w, d, s, i);
    if (len > max) {
        char b[320];
        cfg_form(b, sizeof b, s, d->example, 1);
        return cfg_fail(w->st, VIGIL_EPARSE, "%s has %lld names; at most %d are allowed; write %s", s->name,
                    (long long)len, max, b);
    }
    size_t off = 0;
    buf[0] = '\0';
    for (lua_Integer k = 1; k <= len; k++) {
        origin e = *s;
        snprintf(e.name, sizeof e.name, "%.100s[%lld]", s->name, (long long)k);
        lua_rawgeti(L, i, k);
        if (lua_type(L, -1) != LUA_TSTRING) {
            int r = bad_type(w, d, &e, -1);
            lua_pop(L, 1);
            return r;
        }
        const char *v = lua_str(w, &e, -1);
        if (!v) {
            lua_pop(L, 1);
            return -1;
        }
        size_t vl = strlen(v);
        if (vl == 0 || vl > 255 || strchr(v, ',')) {
            int r = cfg_bad_value(w->st, d, &e, v, 1, "is not a name (1 to 255 characters, no commas)");
            lua_pop(L, 1);
            return r;
        }
        if (off + vl + 2 > n) {
            lua_pop(L, 1);
            return cfg_fail(w->st, VIGIL_EPARSE, "%s is too long", s->name);
        }
        if (off) buf[off++] = ',';
        memcpy(buf + off, v, vl + 1);
        off += vl;
        lua_pop(L, 1);
    }
    return 0;
}

/* The Lua value at i for setting d, into base. */
static int set_lua(walker *w, const setting *d, void *base, int i, const char *path) {
    lua_State *L = w->L;
    origin s = {.k = SRC_FILE};
    snprintf(s.name, sizeof s.name, "%s", path);
    int t = lua_type(L, i);
    char num[64];
    switch (d->k) {
    case K_INT:
    case K_COUNT:
    case K_BYTES:
        if (t == LUA_TNUMBER) {
            int ok;
            lua_Integer n = lua_tointegerx(L, i, &ok);
            num_text(L, i, num, sizeof num);
            if (!ok) return cfg_bad_value(w->st, d, &s, num, 0, NULL);
            return cfg_store_int(w->st, base, d, &s, (long long)n, num, 0);
        }
        if (t == LUA_TSTRING && d->k == K_BYTES) break;
        return bad_type(w, d, &s, i);
    case K_DURATION:
    case K_MS_LONG:
        if (t == LUA_TNUMBER) {
            num_text(L, i, num, sizeof num);
            if (lua_tonumber(L, i) != 0)
                return cfg_bad_value(w->st, d, &s, num, 0, "is a bare number: a duration needs a unit (ms, s, m, h or d)");
            return cfg_store_ms(w->st, base, d, &s, 0, num, 0);
        }
        if (t == LUA_TSTRING) break;
        return bad_type(w, d, &s, i);
    case K_BOOL:
        if (t != LUA_TBOOLEAN) return bad_type(w, d, &s, i);
        *(int *)((char *)base + d->off) = lua_toboolean(L, i);
        return 0;
    case K_TIME_FIELDS:
    case K_ID_FIELDS: {
        char list[VIGIL_MAX_NAME_FIELDS * 257];
        if (lua_name_list(w, d, &s, i, VIGIL_MAX_NAME_FIELDS, list, sizeof list)) return -1;
        return cfg_parse_value(w->st, d, base, list, &s);
    }
    default:
        if (t != LUA_TSTRING) return bad_type(w, d, &s, i);
        break;
    }
    const char *v = lua_str(w, &s, i);
    if (!v) return -1;
    return cfg_parse_value(w->st, d, base, v, &s);
}

/* Levenshtein distance, for "did you mean". */
static size_t edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63) return 99;
    size_t row[64];
    for (size_t j = 0; j <= lb; j++) row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t cost = tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 1]) ? 0 : 1;
            size_t best = diag + cost;
            if (row[j] + 1 < best) best = row[j] + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

static const char *closest(const char *k, const char *const *known) {
    const char *best = NULL;
    size_t bd = 99, len = strlen(k);
    for (int i = 0; known[i]; i++) {
        size_t d = edit_distance(k, known[i]);
        if (d < bd) {
            bd = d;
            best = known[i];
        }
    }
    size_t limit = len / 3 > 2 ? len / 3 : 2;
    if (bd <= limit) return best;
    /* a part of a known key ("fsync" for "outbox_fsync") */
    for (int i = 0; known[i] && len >= 3; i++)
        if (strstr(known[i], k)) return known[i];
    return NULL;
}

static void join(char *buf, size_t n, const char *const *list) {
    size_t off = 0;
    buf[0] = '\0';
    for (int i = 0; list[i] && off < n; i++) off += (size_t)snprintf(buf + off, n - off, "%s%s", i ? ", " : "", list[i]);
}

/* Every key of table t must be one of known: name = value pairs only. */
static int check_keys(walker *w, int t, const char *where, const char *const *known) {
    lua_State *L = w->L;
    char list[600], key[80];
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) == LUA_TSTRING) {
            cfg_printable(key, sizeof key, lua_tostring(L, -1), 0);
            if (cfg_in_list(lua_tostring(L, -1), known)) continue;
            lua_pop(L, 1);
            join(list, sizeof list, known);
            const char *near = closest(key, known);
            if (near)
                return cfg_fail(w->st, VIGIL_EPARSE, "unknown key '%s' in %s; did you mean '%s'? The known keys are: %s", key,
                            where, near, list);
            return cfg_fail(w->st, VIGIL_EPARSE, "unknown key '%s' in %s; the known keys are: %s", key, where, list);
        }
        if (lua_type(L, -1) == LUA_TNUMBER)
            num_text(L, -1, key, sizeof key);
        else
            snprintf(key, sizeof key, "of type %s", luaL_typename(L, -1));
        lua_pop(L, 1);
        join(list, sizeof list, known);
        return cfg_fail(w->st, VIGIL_EPARSE,
                    "%s has an entry with key %s; write name = value pairs, with the names: %s", where, key, list);
    }
    return 0;
}

/* Push t[k] (raw) and return its type. */
static int field(lua_State *L, int t, const char *k) {
    lua_pushstring(L, k);
    return lua_rawget(L, t);
}

/* For a table whose every key is a setting "<prefix>.<key>" of tab (or just
 * "<key>" when prefix is ""). */
static int walk_settings(walker *w, int t, const char *prefix, const setting *tab, void *base,
                         const char *const *keys, const char *where) {
    lua_State *L = w->L;
    if (check_keys(w, t, where, keys)) return -1;
    for (int i = 0; keys[i]; i++) {
        char path[160];
        snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", keys[i]);
        if (field(L, t, keys[i]) == LUA_TNIL) {
            lua_pop(L, 1);
            continue;
        }
        const setting *d = cfg_find_setting(tab, tab == cfg_settings ? path : keys[i]);
        int r = d ? set_lua(w, d, base, lua_gettop(L), path) : 0;
        lua_pop(L, 1);
        if (r) return -1;
    }
    return 0;
}

/* The length of the list at t, or -1 when t is not a list (keys 1..n only). */
static lua_Integer list_len(lua_State *L, int t) {
    lua_Integer len = (lua_Integer)lua_rawlen(L, t), count = 0;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 || lua_tointeger(L, -1) > len) {
            lua_pop(L, 1);
            return -1;
        }
        count++;
    }
    return count == len ? len : -1;
}

static const char *const top_keys[] = {"rules", "listen", "workers", "partitions", "queue_cap", "max_body",
                                       "time_field", "id_field", "time_format", "allowed_lateness",
                                       "max_out_of_orderness", "idle_timeout", "nats", "redis", "store",
                                       "webhook_secret", "webhooks", "tokens", "tokens_file",
                                       "metrics_token", "limits", "tls_cert", "tls_key", "log_format", "cluster", NULL};
static const char *const nats_keys[] = {"url", "subject", "jetstream", "user", "password", "token", "creds", "tls",
                                        NULL};
static const char *const nats_tls_keys[] = {"ca", "cert", "key", NULL};
static const char *const jetstream_keys[] = {"stream", "consumer", "fetch_batch", NULL};
static const char *const redis_keys[] = {"url", "prefix", "user", "password", NULL};
static const char *const cluster_keys[] = {"instance", "lease", "heartbeat", "stream", "subject", "kv_prefix", NULL};
static const char *const store_keys[] = {"data_dir", "snapshot_interval", "outbox_fsync", NULL};
static const char *const endpoint_keys[] = {"name", "url", "secret", "rules", "min_severity", "concurrency",
                                            "timeout", "backoff", "max_backoff", "horizon", "max_attempts",
                                            NULL};
static const char *const token_keys[] = {"name", "token", "role", "rate", NULL};
static const char *const limits_keys[] = {"max_fields", "max_depth", "max_key_bytes", "max_lines", "max_rules",
                                          "max_sse_clients", "max_conns_per_ip", "request_timeout",
                                          "max_header_bytes", NULL};

/* nats = "nats://…" | { url, subject, jetstream = true | false | { stream, consumer, fetch_batch },
 *                       user, password, token, creds, tls = true | false | { ca, cert, key } } */
static int walk_nats(walker *w, int t) {
    lua_State *L = w->L;
    if (lua_type(L, t) == LUA_TSTRING) return set_lua(w, cfg_find_setting(cfg_settings, "nats.url"), &w->st->cfg, t, "nats");
    if (lua_type(L, t) != LUA_TTABLE)
        return cfg_fail(w->st, VIGIL_EPARSE,
                    "nats must be a table or a URL string, not %s; write nats = { url = \"nats://127.0.0.1:4222\" }",
                    lua_kind(L, t));
    if (check_keys(w, t, "the nats table", nats_keys)) return -1;
    static const char *const plain[] = {"url", "subject", "user", "password", "token", "creds", NULL};
    for (int i = 0; plain[i]; i++) {
        char path[64];
        snprintf(path, sizeof path, "nats.%s", plain[i]);
        int r = 0;
        if (field(L, t, plain[i]) != LUA_TNIL) r = set_lua(w, cfg_find_setting(cfg_settings, path), &w->st->cfg, lua_gettop(L), path);
        lua_pop(L, 1);
        if (r) return -1;
    }
    int ty = field(L, t, "jetstream"), r = 0, js = lua_gettop(L);
    if (ty == LUA_TTABLE) {
        w->st->cfg.jetstream = 1;
        r = walk_settings(w, js, "nats.jetstream", cfg_settings, &w->st->cfg, jetstream_keys, "the nats.jetstream table");
    } else if (ty == LUA_TBOOLEAN) {
        w->st->cfg.jetstream = lua_toboolean(L, js);
    } else if (ty != LUA_TNIL) {
        r = cfg_fail(w->st, VIGIL_EPARSE,
                 "nats.jetstream must be true, false or a table, not %s; write nats.jetstream = true or "
                 "nats.jetstream = { stream = \"VIGIL_EVENTS\", consumer = \"vigil\", fetch_batch = 1000 }",
                 lua_kind(L, js));
    }
    lua_pop(L, 1);
    if (r) return r;
    /* tls = true | false | { ca, cert, key } (a table turns TLS on) */
    int tt = field(L, t, "tls"), tls = lua_gettop(L);
    if (tt == LUA_TTABLE) {
        w->st->cfg.nats_tls = 1;
        r = walk_settings(w, tls, "nats.tls", cfg_settings, &w->st->cfg, nats_tls_keys, "the nats.tls table");
    } else if (tt == LUA_TBOOLEAN) {
        w->st->cfg.nats_tls = lua_toboolean(L, tls);
    } else if (tt != LUA_TNIL) {
        r = cfg_fail(w->st, VIGIL_EPARSE,
                 "nats.tls must be true, false or a table, not %s; write nats.tls = true or "
                 "nats.tls = { ca = \"/etc/vigil/nats-ca.pem\" }",
                 lua_kind(L, tls));
    }
    lua_pop(L, 1);
    return r;
}

/* redis = "redis://…" | { url, prefix } */
static int walk_redis(walker *w, int t) {
    lua_State *L = w->L;
    if (lua_type(L, t) == LUA_TSTRING) return set_lua(w, cfg_find_setting(cfg_settings, "redis.url"), &w->st->cfg, t, "redis");
    if (lua_type(L, t) != LUA_TTABLE)
        return cfg_fail(w->st, VIGIL_EPARSE,
                    "redis must be a table or a URL string, not %s; write redis = { url = \"redis://127.0.0.1:6379/0\" }",
                    lua_kind(L, t));
    return walk_settings(w, t, "redis", cfg_settings, &w->st->cfg, redis_keys, "the redis table");
}

static int walk_limits(walker *w, int t) {
    if (lua_type(w->L, t) != LUA_TTABLE)
        return cfg_fail(w->st, VIGIL_EPARSE,
                        "limits must be a table, not %s; write limits = { max_fields = 1000, max_sse_clients = 64 }",
                        lua_kind(w->L, t));
    return walk_settings(w, t, "limits", cfg_settings, &w->st->cfg, limits_keys, "the limits table");
}

static int walk_cluster(walker *w, int t) {
    if (lua_type(w->L, t) != LUA_TTABLE)
        return cfg_fail(w->st, VIGIL_EPARSE,
                        "cluster must be a table, not %s; write cluster = { instance = \"vigil-a\", lease = \"10s\" }",
                        lua_kind(w->L, t));
    return walk_settings(w, t, "cluster", cfg_settings, &w->st->cfg, cluster_keys, "the cluster table");
}

static int walk_store(walker *w, int t) {
    if (lua_type(w->L, t) != LUA_TTABLE)
        return cfg_fail(w->st, VIGIL_EPARSE,
                    "store must be a table, not %s; write store = { data_dir = \"./vigil-data\", "
                    "snapshot_interval = \"10s\", outbox_fsync = true }",
                    lua_kind(w->L, t));
    return walk_settings(w, t, "store", cfg_settings, &w->st->cfg, store_keys, "the store table");
}

/* An endpoint's rules: one name or a list of at most 32. */
static int walk_endpoint_rules(walker *w, int t, vigil_endpoint_config *ep, const char *path) {
    lua_State *L = w->L;
    const int max = (int)(sizeof ep->rules / sizeof ep->rules[0]);
    origin s = {.k = SRC_FILE};
    snprintf(s.name, sizeof s.name, "%s", path);
    static const setting d = {"rules", NULL, K_PATH, 0, 0, 0, 0, "card_testing"};
    int ty = lua_type(L, t);
    lua_Integer n = ty == LUA_TTABLE ? list_len(L, t) : (ty == LUA_TSTRING ? 1 : -1);
    if (n < 0)
        return cfg_fail(w->st, VIGIL_EPARSE,
                    "%s must be a rule name or a list of rule names, not %s; write rules = {\"card_testing\", "
                    "\"velocity\"}",
                    path, ty == LUA_TTABLE ? "a table with other keys" : lua_kind(L, t));
    if (n > max)
        return cfg_fail(w->st, VIGIL_EPARSE, "%s has %lld rules; at most %d are allowed (leave rules out for every rule)",
                    path, (long long)n, max);
    ep->nrules = 0;
    for (lua_Integer k = 1; k <= n; k++) {
        origin e = s;
        if (ty == LUA_TTABLE) {
            snprintf(e.name, sizeof e.name, "%s[%lld]", path, (long long)k);
            lua_rawgeti(L, t, k);
        } else {
            lua_pushvalue(L, t);
        }
        int r = 0;
        const char *v = NULL;
        if (lua_type(L, -1) != LUA_TSTRING)
            r = cfg_fail(w->st, VIGIL_EPARSE, "%s must be a rule name (a string), not %s; write rules = {\"card_testing\"}",
                     e.name, lua_kind(L, -1));
        else if (!(v = lua_str(w, &e, -1)))
            r = -1;
        else if (!*v || strlen(v) > 63 || cfg_has_space_or_ctl(v))
            r = cfg_bad_value(w->st, &d, &e, v, 1, "is not a rule name (1 to 63 characters, no spaces)");
        else if (!(ep->rules[ep->nrules++] = cfg_own(w->st->o, v, strlen(v))))
            r = cfg_no_memory(w->st);
        lua_pop(L, 1);
        if (r) return -1;
    }
    return 0;
}

static int walk_endpoint(walker *w, int t, int idx, vigil_endpoint_config *ep) {
    lua_State *L = w->L;
    char path[64], where[64];
    snprintf(path, sizeof path, "webhooks[%d]", idx);
    snprintf(where, sizeof where, "the endpoint webhooks[%d]", idx);
    if (lua_type(L, t) == LUA_TSTRING)   /* a bare URL */
        return set_lua(w, cfg_find_setting(cfg_endpoint_settings, "url"), ep, t, path);
    if (lua_type(L, t) != LUA_TTABLE)
        return cfg_fail(w->st, VIGIL_EPARSE,
                    "%s must be a table or a URL string, not %s; write { url = \"https://hooks.example.com/vigil\" }",
                    path, lua_kind(L, t));
    if (check_keys(w, t, where, endpoint_keys)) return -1;
    for (int i = 0; endpoint_keys[i]; i++) {
        char p[96];
        snprintf(p, sizeof p, "%s.%s", path, endpoint_keys[i]);
        if (field(L, t, endpoint_keys[i]) == LUA_TNIL) {
            lua_pop(L, 1);
            continue;
        }
        int r = strcmp(endpoint_keys[i], "rules") == 0
                    ? walk_endpoint_rules(w, lua_gettop(L), ep, p)
                    : set_lua(w, cfg_find_setting(cfg_endpoint_settings, endpoint_keys[i]), ep, lua_gettop(L), p);
        lua_pop(L, 1);
        if (r) return -1;
    }
    if (!ep->url)
        return cfg_fail(w->st, VIGIL_EPARSE, "%s has no url; write url = \"https://hooks.example.com/vigil\" in it", path);
    if (ep->backoff_ms && ep->max_backoff_ms && ep->backoff_ms > ep->max_backoff_ms)
        return cfg_fail(w->st, VIGIL_EPARSE,
                    "%s: backoff (%ld ms) is longer than max_backoff (%ld ms); make max_backoff at least backoff", path,
                    ep->backoff_ms, ep->max_backoff_ms);
    return 0;
}

static int walk_webhooks(walker *w, int t) {
    lua_State *L = w->L;
    lua_Integer n = lua_type(L, t) == LUA_TTABLE ? list_len(L, t) : -1;
    if (n < 0)
        return cfg_fail(w->st, VIGIL_EPARSE,
                    "webhooks must be a list of endpoints, not %s; write webhooks = { { name = \"ops\", url = "
                    "\"https://hooks.example.com/vigil\" } }",
                    lua_type(L, t) == LUA_TTABLE ? "a table with other keys" : lua_kind(L, t));
    if (n > VIGIL_MAX_WEBHOOKS)
        return cfg_fail(w->st, VIGIL_EPARSE,
                    "webhooks has %lld endpoints; at most %d are allowed (VIGIL_MAX_WEBHOOKS): remove %lld, or fan "
                    "alerts out from one receiver or from NATS (vigil.alerts.<rule>)",
                    (long long)n, VIGIL_MAX_WEBHOOKS, (long long)n - VIGIL_MAX_WEBHOOKS);
    vigil_endpoint_config eps[VIGIL_MAX_WEBHOOKS];
    memset(eps, 0, sizeof eps);
    for (lua_Integer k = 1; k <= n; k++) {
        lua_rawgeti(L, t, k);
        int r = walk_endpoint(w, lua_gettop(L), (int)k, &eps[k - 1]);
        lua_pop(L, 1);
        if (r) return -1;
    }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++)
            if (eps[i].name && eps[j].name && strcmp(eps[i].name, eps[j].name) == 0)
                return cfg_fail(w->st, VIGIL_EPARSE,
                            "webhooks[%d].name = \"%s\" is already the name of webhooks[%d]; endpoint names must be "
                            "unique: rename one, e.g. name = \"%s-2\"",
                            i + 1, eps[i].name, j + 1, eps[i].name);
    memcpy(w->st->cfg.endpoints, eps, sizeof eps);
    w->st->cfg.nendpoints = (int)n;
    return 0;
}

static int walk_tokens(walker *w, int t) {
    lua_State *L = w->L;
    lua_Integer n = lua_type(L, t) == LUA_TTABLE ? list_len(L, t) : -1;
    if (n < 0)
        return cfg_fail(w->st, VIGIL_EPARSE,
                    "tokens must be a list, not %s; write tokens = { { token = \"<a long random string>\", role = "
                    "\"viewer\" } }",
                    lua_type(L, t) == LUA_TTABLE ? "a table with other keys" : lua_kind(L, t));
    if (n > VIGIL_MAX_TOKENS)
        return cfg_fail(w->st, VIGIL_EPARSE, "tokens has %lld entries; at most %d are allowed (VIGIL_MAX_TOKENS): remove %lld",
                    (long long)n, VIGIL_MAX_TOKENS, (long long)n - VIGIL_MAX_TOKENS);
    vigil_token_config tok[VIGIL_MAX_TOKENS];
    memset(tok, 0, sizeof tok);
    for (lua_Integer k = 1; k <= n; k++) {
        char path[64], where[64];
        snprintf(path, sizeof path, "tokens[%lld]", (long long)k);
        snprintf(where, sizeof where, "the entry tokens[%lld]", (long long)k);
        lua_rawgeti(L, t, k);
        int e = lua_gettop(L), r;
        if (lua_type(L, e) != LUA_TTABLE)
            r = cfg_fail(w->st, VIGIL_EPARSE,
                     "%s must be a table, not %s; write { token = \"<a long random string>\", role = \"viewer\" }",
                     path, lua_kind(L, e));
        else
            r = walk_settings(w, e, path, cfg_token_settings, &tok[k - 1], token_keys, where);
        lua_pop(L, 1);
        if (r) return -1;
        if (!tok[k - 1].token)
            return cfg_fail(w->st, VIGIL_EPARSE, "%s has no token; write token = \"<a long random string>\" in it "
                        "(e.g. from `openssl rand -hex 24`)", path);
        if (!tok[k - 1].role)
            return cfg_fail(w->st, VIGIL_EPARSE, "%s has no role; write role = \"viewer\" in it (one of ingest, viewer, "
                        "analyst, admin)", path);
        for (lua_Integer j = 1; j < k; j++)
            if (strcmp(tok[j - 1].token, tok[k - 1].token) == 0)
                return cfg_fail(w->st, VIGIL_EPARSE,
                            "%s has the same token as tokens[%lld]; every token must be different (one per client)",
                            path, (long long)j);
    }
    memcpy(w->st->cfg.tokens, tok, sizeof tok);
    w->st->cfg.ntokens = (int)n;
    return 0;
}

static int walk_top(walker *w, int t) {
    lua_State *L = w->L;
    if (check_keys(w, t, "the top-level table", top_keys)) return -1;
    for (int i = 0; top_keys[i]; i++) {
        const char *k = top_keys[i];
        if (field(L, t, k) == LUA_TNIL) {
            lua_pop(L, 1);
            continue;
        }
        int v = lua_gettop(L), r;
        const setting *d = cfg_find_setting(cfg_settings, k);
        if (strcmp(k, "nats") == 0) r = walk_nats(w, v);
        else if (strcmp(k, "redis") == 0) r = walk_redis(w, v);
        else if (strcmp(k, "store") == 0) r = walk_store(w, v);
        else if (strcmp(k, "webhooks") == 0) r = walk_webhooks(w, v);
        else if (strcmp(k, "tokens") == 0) r = walk_tokens(w, v);
        else if (strcmp(k, "limits") == 0) r = walk_limits(w, v);
        else if (strcmp(k, "cluster") == 0) r = walk_cluster(w, v);
        else r = set_lua(w, d, &w->st->cfg, v, k);
        lua_pop(L, 1);
        if (r) return -1;
    }
    return 0;
}

/* Runs protected (a Lua allocation may fail): 1 = the walker, 2 = the table. */
static int walk_main(lua_State *L) {
    walker *w = lua_touserdata(L, 1);
    w->L = L;
    walk_top(w, 2);
    return 0;
}

/* ---- the file: reading and running it ----------------------------------------------- */

static int read_file(stage *st, const char *path, char **out, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return cfg_fail(st, errno == ENOENT ? VIGIL_ENOTFOUND : VIGIL_EIO,
                    "cannot open the config file: %s; give an existing file to --config (or VIGIL_CONFIG)",
                    strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) == 0 && !S_ISREG(sb.st_mode)) {
        fclose(f);
        return cfg_fail(st, VIGIL_EIO, "the config path is not a regular file; give the path of a .lua file");
    }
    char *buf = malloc(FILE_MAX + 1);
    if (!buf) {
        fclose(f);
        return cfg_no_memory(st);
    }
    size_t n = fread(buf, 1, FILE_MAX + 1, f);
    int bad = ferror(f);
    int e = errno;
    fclose(f);
    if (bad) {
        free(buf);
        return cfg_fail(st, VIGIL_EIO, "cannot read the config file: %s", strerror(e));
    }
    if (n > FILE_MAX) {
        free(buf);
        return cfg_fail(st, VIGIL_ETOOBIG, "the config file is larger than %zu KiB; a config file is a short table",
                    FILE_MAX >> 10);
    }
    *out = buf;
    *len = n;
    return 0;
}

/* A sandbox error into the stage: the limits' messages as they are, a syntax
 * error as "syntax error: …", any other error after `what`. */
static void lua_fail(stage *st, vigil_status s, const vigil_error *e, const char *what) {
    /* error() with a table or nil has never had a line in config errors */
    if (st->err) st->err->line = strncmp(e->msg, "error() was called with", 23) == 0 ? 0 : e->line;
    if (s == VIGIL_ENOMEM) {
        cfg_no_memory(st);
        return;
    }
    if (s == VIGIL_ECOMPILE)
        cfg_fail(st, VIGIL_EPARSE, "%s: %s", what, e->msg);
    else
        cfg_fail(st, VIGIL_EPARSE, "%s", e->msg);
}

/* Run the source in a fresh sandbox (vigil/sandbox.h) and walk the table it
 * returns into st. The file comes from the operator, not the network, so the
 * limits are there to turn a mistake (an endless loop) into an error, not to
 * stop an attacker; that is why there is no pcall to guard and no
 * setmetatable (no finalizer can run after the file), and os has getenv. */
static int run_file(stage *st, const char *path, const char *src, size_t len) {
    vigil_sandbox_opts so = {
        .name = path,
        .what = "config file",
        .mem_cap = MEM_CAP,
        .instr_budget = INSTR_BUDGET,
        .wall_ms = WALL_MS,
        .flags = VIGIL_SANDBOX_GETENV,
        .absent_msg = "'%s' is not available in a config file (no io, require or load; os has only getenv)",
        .limit_hint = "a config file only builds a table",
    };
    vigil_sandbox *sb = NULL;
    vigil_error e;
    vigil_error_clear(&e);
    vigil_status s = vigil_sandbox_create(&so, &sb, &e);
    if (s != VIGIL_OK) return cfg_no_memory(st);
    lua_State *L = vigil_sandbox_state(sb);
    int r = -1;
    s = vigil_sandbox_run(sb, src, len, LUA_MULTRET, &e);
    if (s != VIGIL_OK) {
        lua_fail(st, s, &e, "error while running the file");
        goto out;
    }
    int nret = lua_gettop(L);
    if (nret == 0) {
        cfg_fail(st, VIGIL_EPARSE, "the file returns nothing; it must end with return { … } (a table of settings, "
                               "e.g. return { rules = \"rules\" })");
        goto out;
    }
    if (nret > 1 || lua_type(L, 1) != LUA_TTABLE) {
        cfg_fail(st, VIGIL_EPARSE, "the file returns %s%s; it must return one table: return { rules = \"rules\", … }",
             nret > 1 ? "several values, the first " : "", lua_kind(L, 1));
        goto out;
    }
    walker w = {.st = st, .L = L};
    lua_settop(L, 1);
    lua_pushcfunction(L, walk_main);
    lua_insert(L, 1);
    lua_pushlightuserdata(L, &w);
    lua_insert(L, 2);                                  /* walk_main, &w, the table */
    s = vigil_sandbox_call(sb, 2, 0, 0, 0, &e);
    if (s != VIGIL_OK)
        lua_fail(st, s, &e, "reading the table");
    else if (st->status == VIGIL_OK)
        r = 0;
out:
    vigil_sandbox_destroy(sb);
    return r;
}

vigil_status vigil_config_load_file(const char *path, vigil_server_config *cfg, vigil_config_owner *owner,
                                    vigil_error *err) {
    stage st;
    cfg_stage_begin(&st, cfg, owner, path, err);
    char *src = NULL;
    size_t len = 0;
    if (read_file(&st, path, &src, &len)) return cfg_stage_abort(&st);
    int r = run_file(&st, path, src, len);
    free(src);
    if (r) return cfg_stage_abort(&st);
    cfg_stage_commit(&st, cfg);
    return VIGIL_OK;
}
