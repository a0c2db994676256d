/* test_catalog_store.c — the rule catalog store (server/control/catalog_store.h)
 * in its three backends, against a real redis-server and a real data dir.
 *
 * The control wing will rebuild the served rule set from what this store
 * gives back after a restart, so what it relies on is checked here for every
 * backend: a commit's rules, file hashes and audit entries come back (from a
 * new handle for Redis, from the reopened directory for files), removals,
 * the audit page order (oldest first within the page; offset 0 limit N = the
 * latest N), the audit cap, and all or nothing: a commit that fails
 * (bad input, Redis killed, a key of the wrong type, a temporary file that
 * cannot be created, an audit append that runs out of file size) leaves the
 * previous catalog loadable and the audit log as it was. A corrupt
 * catalog.json is an error naming the file and the position. The harness
 * starts a throwaway redis-server (AOF, fsync always: a restart keeps what
 * was acknowledged) on a free loopback port; the test's own hiredis
 * connection plays the operator. */
#include <CUnit/Basic.h>
#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog_store.h"
#include "harness.h"

enum { B_MEMORY, B_FILE, B_REDIS, NBACKENDS };
static const char *const bname[NBACKENDS] = { "memory", "file", "redis" };

static char *dir;
static char redis_dir[600];
static int port;
static vt_proc *redis;
static char url[128];
static int uniq;

/* ---- helpers ------------------------------------------------------------ */

static redisContext *direct_connect(void)
{
    struct timeval tv = { 2, 0 };
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (!c || c->err) {
        if (c)
            redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    return c;
}

/* One place a store lives: a Redis prefix or a directory. */
typedef struct place {
    int b;
    char where[700];
} place;

static place new_place(int b)
{
    place p = { b, "" };
    if (b == B_REDIS)
        snprintf(p.where, sizeof p.where, "t%d", ++uniq);
    else if (b == B_FILE)
        snprintf(p.where, sizeof p.where, "%s/data%d", dir, ++uniq);   /* created by the first commit */
    return p;
}

static vigil_status open_at(const place *p, vigil_catalog_store **st, vigil_error *err)
{
    vigil_catalog_store_config cfg = { 0 };
    if (p->b == B_REDIS) {
        cfg.redis_url = url;
        cfg.redis_prefix = p->where;
    } else if (p->b == B_FILE) {
        cfg.data_dir = p->where;
    }
    vigil_error_clear(err);
    return vigil_catalog_store_open(&cfg, st, err);
}

static vigil_catalog_store *open_ok(const place *p)
{
    vigil_catalog_store *st = NULL;
    vigil_error err;
    vigil_status s = open_at(p, &st, &err);
    if (s != VIGIL_OK)
        fprintf(stderr, "open %s %s: %s\n", bname[p->b], p->where, err.msg);
    CU_ASSERT_EQUAL_FATAL(s, VIGIL_OK);
    CU_ASSERT_STRING_EQUAL(vigil_catalog_store_kind(st), bname[p->b]);
    return st;
}

/* The durable backends: a new handle on the same place. Memory keeps its handle. */
static vigil_catalog_store *reopen(vigil_catalog_store *st, const place *p)
{
    if (p->b == B_MEMORY)
        return st;
    vigil_catalog_store_close(st);
    return open_ok(p);
}

static vigil_status commit(vigil_catalog_store *st, const vigil_catalog_write *w, int n, vigil_error *err)
{
    vigil_error_clear(err);
    return vigil_catalog_store_commit(st, w, n, err);
}

static void commit_ok(vigil_catalog_store *st, const vigil_catalog_write *w, int n)
{
    vigil_error err;
    vigil_status s = commit(st, w, n, &err);
    if (s != VIGIL_OK)
        fprintf(stderr, "commit: %s\n", err.msg);
    CU_ASSERT_EQUAL_FATAL(s, VIGIL_OK);
}

/* What load or audit gave: (key, value) pairs, copied. */
typedef struct pairs {
    int n;
    char *k[64], *v[64];
} pairs;

typedef struct loaded {
    pairs rules, files, audit;
} loaded;

static void add(pairs *p, const char *k, const char *v)
{
    CU_ASSERT_FATAL(p->n < 64);
    p->k[p->n] = strdup(k ? k : "");
    p->v[p->n] = strdup(v);
    p->n++;
}

static void on_rule(void *ud, const char *name, const char *json) { add(&((loaded *)ud)->rules, name, json); }
static void on_file(void *ud, const char *path, const char *hash) { add(&((loaded *)ud)->files, path, hash); }
static void on_audit(void *ud, const char *json) { add(&((loaded *)ud)->audit, NULL, json); }

static void loaded_free(loaded *l)
{
    pairs *all[3] = { &l->rules, &l->files, &l->audit };
    for (int j = 0; j < 3; j++) {
        for (int i = 0; i < all[j]->n; i++) {
            free(all[j]->k[i]);
            free(all[j]->v[i]);
        }
        all[j]->n = 0;
    }
}

static const char *find(const pairs *p, const char *k)
{
    for (int i = 0; i < p->n; i++)
        if (strcmp(p->k[i], k) == 0)
            return p->v[i];
    return NULL;
}

/* Same JSON value (whitespace may differ). */
static int json_eq(const char *a, const char *b)
{
    if (!a || !b)
        return 0;
    cJSON *x = cJSON_Parse(a), *y = cJSON_Parse(b);
    int eq = x && y && cJSON_Compare(x, y, 1);
    cJSON_Delete(x);
    cJSON_Delete(y);
    return eq;
}

static void load_ok(vigil_catalog_store *st, loaded *l)
{
    vigil_error err;
    vigil_error_clear(&err);
    vigil_status s = vigil_catalog_store_load(st, on_rule, on_file, l, &err);
    if (s != VIGIL_OK)
        fprintf(stderr, "load: %s\n", err.msg);
    CU_ASSERT_EQUAL(s, VIGIL_OK);
}

static void audit_ok(vigil_catalog_store *st, size_t off, size_t lim, loaded *l)
{
    vigil_error err;
    vigil_error_clear(&err);
    vigil_status s = vigil_catalog_store_audit(st, off, lim, on_audit, l, &err);
    if (s != VIGIL_OK)
        fprintf(stderr, "audit: %s\n", err.msg);
    CU_ASSERT_EQUAL(s, VIGIL_OK);
}

/* The audit page holds entries {"n":from}, {"n":from+1}, … {"n":to}, in that order. */
static int audit_is(vigil_catalog_store *st, size_t off, size_t lim, int from, int to)
{
    loaded l = { 0 };
    audit_ok(st, off, lim, &l);
    int ok = l.audit.n == (to >= from ? to - from + 1 : 0);
    for (int i = 0; ok && i < l.audit.n; i++) {
        char want[32];
        snprintf(want, sizeof want, "{\"n\":%d}", from + i);
        ok = json_eq(l.audit.v[i], want);
    }
    if (!ok) {
        fprintf(stderr, "audit(%zu, %zu): want n=%d..%d, got %d entries:", off, lim, from, to, l.audit.n);
        for (int i = 0; i < l.audit.n; i++)
            fprintf(stderr, " %s", l.audit.v[i]);
        fprintf(stderr, "\n");
    }
    loaded_free(&l);
    return ok;
}

static void commit_audit_range(vigil_catalog_store *st, int from, int to)
{
    static char text[64][32];
    vigil_catalog_write w[64];
    int n = 0;
    for (int i = from; i <= to && n < 64; i++, n++) {
        snprintf(text[n], sizeof text[n], "{ \"n\" : %d }", i);
        w[n] = (vigil_catalog_write){ VIGIL_CW_AUDIT, NULL, text[n] };
    }
    commit_ok(st, w, n);
}

#define REC_A "{\"name\":\"a\",\"version\":1,\"mode\":\"active\",\"source\":\"rule{ name = \\\"a\\\" }\\n\"}"
#define REC_A2 "{\"name\":\"a\",\"version\":2,\"mode\":\"shadow\",\"source\":\"-- \\u00e9t\\u00e9\\n\"}"
#define REC_B "{ \"name\": \"b\",\n  \"version\": 7, \"tags\": [1, 2.5, true, null], \"nested\": {\"x\": {}} }"
#define REC_C "{\"name\":\"c\",\"version\":1}"

/* The state every all-or-nothing test starts from and must find again. */
static void commit_base(vigil_catalog_store *st)
{
    vigil_catalog_write w[] = {
        { VIGIL_CW_RULE, "a", REC_A },
        { VIGIL_CW_RULE, "b", REC_B },
        { VIGIL_CW_FILE, "rules/fraud.lua", "sha256:0011" },
        { VIGIL_CW_AUDIT, NULL, "{\"n\":0}" },
        { VIGIL_CW_AUDIT, NULL, "{\"n\":1}" },
    };
    commit_ok(st, w, 5);
}

static int is_base(vigil_catalog_store *st)
{
    loaded l = { 0 };
    load_ok(st, &l);
    int ok = l.rules.n == 2 && json_eq(find(&l.rules, "a"), REC_A) && json_eq(find(&l.rules, "b"), REC_B) &&
             l.files.n == 1 && find(&l.files, "rules/fraud.lua") &&
             strcmp(find(&l.files, "rules/fraud.lua"), "sha256:0011") == 0;
    if (!ok) {
        fprintf(stderr, "not the base catalog: %d rules, %d files:", l.rules.n, l.files.n);
        for (int i = 0; i < l.rules.n; i++)
            fprintf(stderr, " %s=%s", l.rules.k[i], l.rules.v[i]);
        fprintf(stderr, "\n");
    }
    loaded_free(&l);
    return ok && audit_is(st, 0, 100, 0, 1);
}

static size_t file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (size_t)sb.st_size : 0;
}

static int count_lines(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    int n = 0, ch;
    while ((ch = fgetc(f)) != EOF)
        n += ch == '\n';
    fclose(f);
    return n;
}

static void write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(fwrite(data, 1, len, f), len);
    fclose(f);
}

/* ---- every backend ------------------------------------------------------ */

static void test_commit_then_load(void)
{
    for (int b = 0; b < NBACKENDS; b++) {
        place p = new_place(b);
        vigil_catalog_store *st = open_ok(&p);
        loaded l = { 0 };
        load_ok(st, &l);   /* a new place: empty, no error */
        CU_ASSERT_EQUAL(l.rules.n + l.files.n, 0);
        audit_ok(st, 0, 10, &l);
        CU_ASSERT_EQUAL(l.audit.n, 0);
        commit_base(st);
        for (int round = 0; round < 2; round++) {   /* the same handle, then a new one */
            CU_ASSERT(is_base(st));
            st = reopen(st, &p);
        }
        if (b == B_FILE) {   /* the layout on disk */
            char path[800];
            snprintf(path, sizeof path, "%s/catalog.json", p.where);
            FILE *f = fopen(path, "rb");
            CU_ASSERT_PTR_NOT_NULL_FATAL(f);
            static char buf[65536];
            size_t n = fread(buf, 1, sizeof buf - 1, f);
            buf[n] = '\0';
            fclose(f);
            cJSON *cat = cJSON_Parse(buf);
            cJSON *rules = cJSON_GetObjectItemCaseSensitive(cat, "rules");
            cJSON *files = cJSON_GetObjectItemCaseSensitive(cat, "files");
            cJSON *a = cJSON_GetObjectItemCaseSensitive(rules, "a");
            CU_ASSERT(cJSON_IsObject(a));   /* the record as an object, not a string */
            CU_ASSERT(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(a, "version")));
            CU_ASSERT(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(files, "rules/fraud.lua")));
            cJSON_Delete(cat);
            snprintf(path, sizeof path, "%s/audit.log", p.where);
            CU_ASSERT_EQUAL(count_lines(path), 2);
            snprintf(path, sizeof path, "%s/catalog.json.tmp", p.where);
            CU_ASSERT_EQUAL(access(path, F_OK), -1);
        }
        if (b == B_REDIS) {   /* the key layout an operator sees */
            redisContext *c = direct_connect();
            CU_ASSERT_PTR_NOT_NULL_FATAL(c);
            redisReply *r = redisCommand(c, "HGET %s:rules a", p.where);
            CU_ASSERT(r && r->type == REDIS_REPLY_STRING && json_eq(r->str, REC_A));
            freeReplyObject(r);
            r = redisCommand(c, "HGET %s:rulefiles rules/fraud.lua", p.where);
            CU_ASSERT(r && r->type == REDIS_REPLY_STRING && strcmp(r->str, "sha256:0011") == 0);
            freeReplyObject(r);
            r = redisCommand(c, "LINDEX %s:audit 0", p.where);   /* newest first */
            CU_ASSERT(r && r->type == REDIS_REPLY_STRING && json_eq(r->str, "{\"n\":1}"));
            freeReplyObject(r);
            redisFree(c);
        }
        vigil_catalog_store_close(st);
    }
    /* memory keeps nothing beyond its handle */
    place m = new_place(B_MEMORY);
    vigil_catalog_store *st = open_ok(&m);
    loaded l = { 0 };
    load_ok(st, &l);
    CU_ASSERT_EQUAL(l.rules.n, 0);
    vigil_catalog_store_close(st);
}

static void test_replace_and_remove(void)
{
    for (int b = 0; b < NBACKENDS; b++) {
        place p = new_place(b);
        vigil_catalog_store *st = open_ok(&p);
        commit_base(st);
        vigil_catalog_write w[] = {
            { VIGIL_CW_RULE, "a", REC_A2 },                    /* replaced */
            { VIGIL_CW_RULE, "b", NULL },                      /* removed */
            { VIGIL_CW_RULE, "never-there", NULL },            /* removing nothing is fine */
            { VIGIL_CW_RULE, "c", REC_B },
            { VIGIL_CW_RULE, "c", REC_C },                     /* in order: the last one wins */
            { VIGIL_CW_FILE, "rules/fraud.lua", NULL },
            { VIGIL_CW_FILE, "rules/new.lua", "sha256:22" },
        };
        commit_ok(st, w, 7);
        for (int round = 0; round < 2; round++) {
            loaded l = { 0 };
            load_ok(st, &l);
            CU_ASSERT_EQUAL(l.rules.n, 2);
            CU_ASSERT(json_eq(find(&l.rules, "a"), REC_A2));
            CU_ASSERT(json_eq(find(&l.rules, "c"), REC_C));
            CU_ASSERT_PTR_NULL(find(&l.rules, "b"));
            CU_ASSERT_EQUAL(l.files.n, 1);
            CU_ASSERT(find(&l.files, "rules/new.lua") && strcmp(find(&l.files, "rules/new.lua"), "sha256:22") == 0);
            loaded_free(&l);
            st = reopen(st, &p);
        }
        vigil_catalog_store_close(st);
    }
}

/* Cluster mode (issue 14): the generation is bumped by commit_gen only, in the
 * same commit; a commit made at another generation writes nothing (ECONFLICT);
 * Redis: a second handle (another server) sees the first one's generation. */
static void test_generation(void)
{
    for (int b = 0; b < NBACKENDS; b++) {
        place p = new_place(b);
        vigil_catalog_store *st = open_ok(&p);
        vigil_error err;
        uint64_t g = 99, g2 = 0;
        CU_ASSERT_EQUAL(vigil_catalog_store_generation(st, &g, &err), VIGIL_OK);
        CU_ASSERT_EQUAL(g, 0);
        commit_base(st);   /* a plain commit: no bump */
        CU_ASSERT_EQUAL(vigil_catalog_store_generation(st, &g, &err), VIGIL_OK);
        CU_ASSERT_EQUAL(g, 0);
        vigil_catalog_write w1[] = { { VIGIL_CW_RULE, "a", REC_A2 }, { VIGIL_CW_AUDIT, NULL, "{\"action\":\"put\"}" } };
        vigil_error_clear(&err);
        CU_ASSERT_EQUAL(vigil_catalog_store_commit_gen(st, w1, 2, &g, &g2, &err), VIGIL_OK);
        CU_ASSERT_EQUAL(g2, 1);
        vigil_catalog_write w2[] = { { VIGIL_CW_RULE, "a", REC_C } };
        uint64_t stale = 0;
        vigil_error_clear(&err);
        CU_ASSERT_EQUAL(vigil_catalog_store_commit_gen(st, w2, 1, &stale, NULL, &err), VIGIL_ECONFLICT);
        CU_ASSERT(strstr(err.msg, "generation") != NULL);
        loaded l = { 0 };
        load_ok(st, &l);
        CU_ASSERT(json_eq(find(&l.rules, "a"), REC_A2));   /* the refused commit wrote nothing */
        loaded_free(&l);
        if (b == B_REDIS) {   /* another server's handle on the same catalog */
            vigil_catalog_store *other = open_ok(&p);
            CU_ASSERT_EQUAL(vigil_catalog_store_generation(other, &g, &err), VIGIL_OK);
            CU_ASSERT_EQUAL(g, 1);
            vigil_error_clear(&err);
            CU_ASSERT_EQUAL(vigil_catalog_store_commit_gen(other, w2, 1, &g, &g2, &err), VIGIL_OK);
            CU_ASSERT_EQUAL(g2, 2);
            uint64_t one = 1;   /* the first handle still thinks 1 */
            vigil_error_clear(&err);
            CU_ASSERT_EQUAL(vigil_catalog_store_commit_gen(st, w1, 2, &one, NULL, &err), VIGIL_ECONFLICT);
            CU_ASSERT_EQUAL(vigil_catalog_store_generation(st, &g, &err), VIGIL_OK);
            CU_ASSERT_EQUAL(g, 2);
            vigil_catalog_store_close(other);
        }
        vigil_catalog_store_close(st);
    }
}

static void test_audit_pages(void)
{
    for (int b = 0; b < NBACKENDS; b++) {
        place p = new_place(b);
        vigil_catalog_store *st = open_ok(&p);
        commit_audit_range(st, 0, 0);
        commit_audit_range(st, 1, 3);   /* several entries in one commit keep their order */
        commit_audit_range(st, 4, 9);
        for (int round = 0; round < 2; round++) {
            CU_ASSERT(audit_is(st, 0, 3, 7, 9));     /* the latest 3, oldest first */
            CU_ASSERT(audit_is(st, 2, 3, 5, 7));     /* skip the 2 newest */
            CU_ASSERT(audit_is(st, 0, 100, 0, 9));
            CU_ASSERT(audit_is(st, 8, 5, 0, 1));     /* past the oldest: a short page */
            CU_ASSERT(audit_is(st, 10, 5, 0, -1));   /* nothing */
            CU_ASSERT(audit_is(st, 0, 0, 0, -1));
            CU_ASSERT(audit_is(st, (size_t)-1, (size_t)-1, 0, -1));   /* no overflow */
            CU_ASSERT(audit_is(st, 9, (size_t)-1, 0, 0));
            st = reopen(st, &p);
        }
        vigil_catalog_store_close(st);
    }
}

static void test_audit_cap(void)
{
    for (int b = 0; b < NBACKENDS; b++) {
        place p = new_place(b);
        vigil_catalog_store *st = open_ok(&p);
        vigil_catalog_store_set_audit_max(st, 5);
        for (int i = 0; i < 14; i++)
            commit_audit_range(st, i, i);
        commit_audit_range(st, 14, 20);   /* one commit over the cap */
        CU_ASSERT(audit_is(st, 0, 100, 16, 20));
        CU_ASSERT(audit_is(st, 0, 2, 19, 20));
        CU_ASSERT(audit_is(st, 4, 100, 16, 16));
        CU_ASSERT(audit_is(st, 5, 100, 0, -1));   /* beyond the cap: nothing, even before a trim */
        if (b == B_REDIS) {
            redisContext *c = direct_connect();
            CU_ASSERT_PTR_NOT_NULL_FATAL(c);
            redisReply *r = redisCommand(c, "LLEN %s:audit", p.where);
            CU_ASSERT(r && r->type == REDIS_REPLY_INTEGER && r->integer == 5);
            freeReplyObject(r);
            redisFree(c);
        }
        if (b == B_FILE) {   /* trimmed once over 2 × 5 lines, to the last 5 */
            char path[800];
            snprintf(path, sizeof path, "%s/audit.log", p.where);
            int lines = count_lines(path);
            CU_ASSERT(lines >= 5 && lines <= 10);
            fprintf(stderr, "  (file backend: audit.log has %d lines for a cap of 5)\n", lines);
        }
        if (b != B_MEMORY) {
            st = reopen(st, &p);
            vigil_catalog_store_set_audit_max(st, 5);
            CU_ASSERT(audit_is(st, 0, 100, 16, 20));
            commit_audit_range(st, 21, 21);
            CU_ASSERT(audit_is(st, 0, 100, 17, 21));
            vigil_catalog_store_set_audit_max(st, 0);   /* back to VIGIL_AUDIT_MAX */
            loaded l = { 0 };
            audit_ok(st, 0, 1000, &l);
            CU_ASSERT(l.audit.n >= 5);   /* what was kept, nothing more came back */
            loaded_free(&l);
        }
        vigil_catalog_store_close(st);
    }
}

static void test_bad_input_changes_nothing(void)
{
    size_t big = VIGIL_CATALOG_VALUE_MAX + 1;
    char *huge = malloc(big + 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(huge);
    memset(huge, ' ', big);   /* spaces around {} : valid JSON, one byte too many */
    huge[0] = '{';
    huge[big - 1] = '}';
    huge[big] = '\0';
    char longkey[VIGIL_CATALOG_KEY_MAX + 2];
    memset(longkey, 'k', sizeof longkey - 1);
    longkey[sizeof longkey - 1] = '\0';
    struct {
        vigil_catalog_write bad;
        vigil_status want;
        const char *says;
    } cases[] = {
        { { VIGIL_CW_RULE, "y", "{\"name\": \"y\", " }, VIGIL_EPARSE, "rule 'y'" },
        { { VIGIL_CW_RULE, "y", "[1, 2]" }, VIGIL_EPARSE, "not a JSON object" },
        { { VIGIL_CW_AUDIT, NULL, "{} {}" }, VIGIL_EPARSE, "audit entry" },
        { { VIGIL_CW_AUDIT, NULL, NULL }, VIGIL_EINVAL, "audit entry" },
        { { VIGIL_CW_RULE, NULL, REC_C }, VIGIL_EINVAL, "no name" },
        { { VIGIL_CW_FILE, "", "x" }, VIGIL_EINVAL, "no name" },
        { { VIGIL_CW_RULE, "huge", huge }, VIGIL_ETOOBIG, "huge" },
        { { VIGIL_CW_RULE, longkey, REC_C }, VIGIL_ETOOBIG, "name over" },
        { { (vigil_catalog_write_kind)42, "z", REC_C }, VIGIL_EINVAL, "unknown kind" },
    };
    for (int b = 0; b < NBACKENDS; b++) {
        place p = new_place(b);
        vigil_catalog_store *st = open_ok(&p);
        commit_base(st);
        for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
            /* good writes around the bad one: none of them may land */
            vigil_catalog_write w[] = {
                { VIGIL_CW_RULE, "a", REC_A2 },
                { VIGIL_CW_RULE, "b", NULL },
                { VIGIL_CW_FILE, "rules/fraud.lua", "sha256:ffff" },
                cases[i].bad,
                { VIGIL_CW_AUDIT, NULL, "{\"n\":99}" },
            };
            vigil_error err;
            CU_ASSERT_EQUAL(commit(st, w, 5, &err), cases[i].want);
            if (!strstr(err.msg, cases[i].says))
                fprintf(stderr, "case %zu: '%s' does not say '%s'\n", i, err.msg, cases[i].says);
            CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, cases[i].says));
            CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "write 3"));
            CU_ASSERT(is_base(st));
        }
        st = reopen(st, &p);
        CU_ASSERT(is_base(st));
        vigil_catalog_store_close(st);
    }
    free(huge);
}

/* ---- file backend ------------------------------------------------------- */

static void test_file_corrupt_catalog(void)
{
    static const struct {
        const char *text;
        const char *says;
        int line;
    } cases[] = {
        { "{\"rules\": {\"a\": {\"x\": 1}},\n \"files\": {", "line 2", 2 },   /* cut short */
        { "{\"rules\": {}, \"files\": {}} trailing", "line 1", 1 },
        { "", "empty file", 0 },
        { "[]", "the top level is not an object", 0 },
        { "{\"rules\": [], \"files\": {}}", "\"rules\"", 0 },
        { "{\"rules\": {}}", "\"files\"", 0 },
        { "{\"rules\": {\"a\": \"text\"}, \"files\": {}}", "rule record", 0 },
        { "{\"rules\": {}, \"files\": {\"p\": 1}}", "file hash", 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        place p = new_place(B_FILE);
        CU_ASSERT_EQUAL_FATAL(mkdir(p.where, 0755), 0);
        char path[800];
        snprintf(path, sizeof path, "%s/catalog.json", p.where);
        write_file(path, cases[i].text, strlen(cases[i].text));
        vigil_catalog_store *st = NULL;
        vigil_error err;
        CU_ASSERT_EQUAL(open_at(&p, &st, &err), VIGIL_EPARSE);
        CU_ASSERT_PTR_NULL(st);
        if (!strstr(err.msg, path) || !strstr(err.msg, cases[i].says))
            fprintf(stderr, "case %zu: '%s'\n", i, err.msg);
        CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, path));   /* names the file */
        CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, cases[i].says));
        CU_ASSERT_STRING_EQUAL(err.file, path);
        if (cases[i].line) {
            CU_ASSERT_EQUAL(err.line, cases[i].line);
            CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "byte"));
        }
        CU_ASSERT_EQUAL(file_size(path), strlen(cases[i].text));   /* left as it was */
    }
    /* a NUL byte in the middle */
    place p = new_place(B_FILE);
    CU_ASSERT_EQUAL_FATAL(mkdir(p.where, 0755), 0);
    char path[800];
    snprintf(path, sizeof path, "%s/catalog.json", p.where);
    write_file(path, "{\"rules\": {}, \0\"files\": {}}", 27);
    vigil_catalog_store *st = NULL;
    vigil_error err;
    CU_ASSERT_EQUAL(open_at(&p, &st, &err), VIGIL_EPARSE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "byte 14"));
}

static void test_file_unwritable_keeps_previous(void)
{
    place p = new_place(B_FILE);
    vigil_catalog_store *st = open_ok(&p);
    commit_base(st);
    /* a directory where the temporary file must go: the rewrite cannot
     * start (works as root too, unlike a chmod) */
    char tmp[800];
    snprintf(tmp, sizeof tmp, "%s/catalog.json.tmp", p.where);
    CU_ASSERT_EQUAL_FATAL(mkdir(tmp, 0755), 0);
    vigil_catalog_write w[] = {
        { VIGIL_CW_RULE, "a", REC_A2 },
        { VIGIL_CW_RULE, "c", REC_C },
        { VIGIL_CW_AUDIT, NULL, "{\"n\":2}" },
    };
    vigil_error err;
    CU_ASSERT_EQUAL(commit(st, w, 3, &err), VIGIL_EIO);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, tmp));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "nothing written"));
    CU_ASSERT(is_base(st));      /* in memory */
    st = reopen(st, &p);
    CU_ASSERT(is_base(st));      /* on disk, the audit line included */
    CU_ASSERT_EQUAL(rmdir(tmp), 0);
    commit_ok(st, w, 3);         /* and it works again once the way is clear */
    st = reopen(st, &p);
    loaded l = { 0 };
    load_ok(st, &l);
    CU_ASSERT(json_eq(find(&l.rules, "a"), REC_A2) && json_eq(find(&l.rules, "c"), REC_C));
    loaded_free(&l);
    CU_ASSERT(audit_is(st, 0, 100, 0, 2));
    vigil_catalog_store_close(st);

    /* a data dir that cannot be created: the first commit fails, cleanly */
    char file[600];
    snprintf(file, sizeof file, "%s/plain-file", dir);
    write_file(file, "x", 1);
    place q = { B_FILE, "" };
    snprintf(q.where, sizeof q.where, "%s/sub", file);
    vigil_catalog_store *st2 = NULL;
    vigil_status s = open_at(&q, &st2, &err);   /* catalog.json under a file: ENOTDIR */
    CU_ASSERT_EQUAL(s, VIGIL_EIO);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, q.where));
    vigil_catalog_store_close(st2);
}

/* The catalog rewrite succeeds, then the audit append fails (the file size
 * limit, RLIMIT_FSIZE): audit.log is cut back and the previous catalog.json
 * written again. */
static void test_file_audit_failure_restores_catalog(void)
{
    place p = new_place(B_FILE);
    vigil_catalog_store *st = open_ok(&p);
    commit_base(st);
    /* make audit.log much larger than catalog.json will be */
    static char bigaudit[70000];
    int n = snprintf(bigaudit, sizeof bigaudit, "{\"n\":2,\"pad\":\"");
    memset(bigaudit + n, 'p', 65536);
    snprintf(bigaudit + n + 65536, sizeof bigaudit - (size_t)n - 65536, "\"}");
    vigil_catalog_write w0[] = { { VIGIL_CW_AUDIT, NULL, bigaudit } };
    commit_ok(st, w0, 1);
    char apath[800], cpath[800];
    snprintf(apath, sizeof apath, "%s/audit.log", p.where);
    snprintf(cpath, sizeof cpath, "%s/catalog.json", p.where);
    size_t asize = file_size(apath), csize = file_size(cpath);
    CU_ASSERT_FATAL(asize > 65536 && csize < 4096);

    vigil_catalog_write w[] = {
        { VIGIL_CW_RULE, "a", REC_A2 },
        { VIGIL_CW_RULE, "b", NULL },
        { VIGIL_CW_FILE, "rules/fraud.lua", "sha256:ffff" },
        { VIGIL_CW_AUDIT, NULL, "{\"n\":3,\"what\":\"this line does not fit\"}" },
    };
    struct rlimit old, lim;
    CU_ASSERT_EQUAL_FATAL(getrlimit(RLIMIT_FSIZE, &old), 0);
    void (*was)(int) = signal(SIGXFSZ, SIG_IGN);   /* EFBIG instead of the signal */
    lim = old;
    lim.rlim_cur = (rlim_t)asize + 8;   /* catalog.json fits, the audit line does not */
    vigil_error err;
    vigil_error_clear(&err);
    CU_ASSERT_EQUAL_FATAL(setrlimit(RLIMIT_FSIZE, &lim), 0);
    vigil_status s = vigil_catalog_store_commit(st, w, 4, &err);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, was);
    CU_ASSERT_EQUAL(s, VIGIL_EIO);
    fprintf(stderr, "  (the failed commit said: %s)\n", err.msg);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, apath));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "written back"));
    CU_ASSERT_EQUAL(file_size(apath), asize);   /* cut back */
    loaded l = { 0 };
    for (int round = 0; round < 2; round++) {
        load_ok(st, &l);
        CU_ASSERT(l.rules.n == 2 && json_eq(find(&l.rules, "a"), REC_A) && json_eq(find(&l.rules, "b"), REC_B));
        CU_ASSERT(find(&l.files, "rules/fraud.lua") && strcmp(find(&l.files, "rules/fraud.lua"), "sha256:0011") == 0);
        audit_ok(st, 0, 1, &l);
        CU_ASSERT(l.audit.n == 1 && json_eq(l.audit.v[0], bigaudit));   /* the newest is still n=2 */
        loaded_free(&l);
        st = reopen(st, &p);
    }
    CU_ASSERT(audit_is(st, 1, 2, 0, 1));
    commit_ok(st, w, 4);   /* without the limit the same commit goes through */
    st = reopen(st, &p);
    load_ok(st, &l);
    CU_ASSERT(l.rules.n == 1 && json_eq(find(&l.rules, "a"), REC_A2));
    loaded_free(&l);
    vigil_catalog_store_close(st);
}

/* A crash in the middle of an append leaves a torn last line: it is cut, and
 * the next entry does not merge with it. */
static void test_file_torn_audit_line(void)
{
    place p = new_place(B_FILE);
    vigil_catalog_store *st = open_ok(&p);
    commit_audit_range(st, 0, 2);
    vigil_catalog_store_close(st);
    char apath[800];
    snprintf(apath, sizeof apath, "%s/audit.log", p.where);
    FILE *f = fopen(apath, "ab");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs("{\"n\":99, \"tor", f);
    fclose(f);
    st = open_ok(&p);
    CU_ASSERT(audit_is(st, 0, 100, 0, 2));
    commit_audit_range(st, 3, 3);
    CU_ASSERT(audit_is(st, 0, 100, 0, 3));
    CU_ASSERT_EQUAL(count_lines(apath), 4);
    vigil_catalog_store_close(st);
}

/* ---- redis backend ------------------------------------------------------ */

static void test_redis_down(void)
{
    place p = new_place(B_REDIS);
    vigil_catalog_store *st = open_ok(&p);
    commit_base(st);
    vt_kill(redis, SIGKILL);
    redis = NULL;
    vigil_catalog_write w[] = {
        { VIGIL_CW_RULE, "a", REC_A2 },
        { VIGIL_CW_RULE, "b", NULL },
        { VIGIL_CW_AUDIT, NULL, "{\"n\":2}" },
    };
    vigil_error err;
    CU_ASSERT_EQUAL(commit(st, w, 3, &err), VIGIL_EUNAVAILABLE);
    char where[64];
    snprintf(where, sizeof where, "127.0.0.1:%d", port);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, where));
    loaded l = { 0 };
    vigil_error_clear(&err);
    CU_ASSERT_EQUAL(vigil_catalog_store_load(st, on_rule, on_file, &l, &err), VIGIL_EUNAVAILABLE);
    CU_ASSERT_EQUAL(vigil_catalog_store_audit(st, 0, 10, on_audit, &l, &err), VIGIL_EUNAVAILABLE);
    CU_ASSERT_EQUAL(l.rules.n + l.audit.n, 0);
    vigil_catalog_store *st2 = NULL;
    CU_ASSERT_EQUAL(open_at(&p, &st2, &err), VIGIL_EUNAVAILABLE);
    CU_ASSERT_PTR_NULL(st2);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, where));

    redis = vt_restart_redis_aof(NULL, SIGKILL, port, redis_dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(redis);
    CU_ASSERT(is_base(st));   /* the same handle reconnects: nothing of the failed commit */
    st = reopen(st, &p);
    CU_ASSERT(is_base(st));
    commit_ok(st, w, 3);
    CU_ASSERT(audit_is(st, 0, 100, 0, 2));
    vigil_catalog_store_close(st);
}

/* Redis does not roll back a transaction whose command fails at EXEC: a key
 * of the wrong type must be refused before anything is queued. */
static void test_redis_wrong_type_changes_nothing(void)
{
    static const char *const which[] = { "audit", "rulefiles", "rules" };
    for (int k = 0; k < 3; k++) {
        place p = new_place(B_REDIS);
        vigil_catalog_store *st = open_ok(&p);
        commit_base(st);
        redisContext *c = direct_connect();
        CU_ASSERT_PTR_NOT_NULL_FATAL(c);
        char key[800];
        snprintf(key, sizeof key, "%s:%s", p.where, which[k]);
        redisReply *r = redisCommand(c, "RENAME %s %s:saved", key, key);
        freeReplyObject(r);
        r = redisCommand(c, "SET %s oops", key);
        freeReplyObject(r);
        vigil_catalog_write w[] = {
            { VIGIL_CW_RULE, "a", REC_A2 },
            { VIGIL_CW_RULE, "b", NULL },
            { VIGIL_CW_FILE, "rules/fraud.lua", NULL },
            { VIGIL_CW_AUDIT, NULL, "{\"n\":2}" },
        };
        vigil_error err;
        CU_ASSERT_EQUAL(commit(st, w, 4, &err), VIGIL_ESTORE);
        CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, key));
        CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "nothing written"));
        r = redisCommand(c, "GET %s", key);   /* untouched */
        CU_ASSERT(r && r->type == REDIS_REPLY_STRING && strcmp(r->str, "oops") == 0);
        freeReplyObject(r);
        r = redisCommand(c, "RENAME %s:saved %s", key, key);
        freeReplyObject(r);
        redisFree(c);
        CU_ASSERT(is_base(st));
        commit_ok(st, w, 4);
        vigil_catalog_store_close(st);
    }
}

/* ---- suite -------------------------------------------------------------- */

static int suite_init(void)
{
    dir = vt_tmpdir();
    if (!dir)
        return -1;
    snprintf(redis_dir, sizeof redis_dir, "%s/redis", dir);
    if (mkdir(redis_dir, 0755) != 0)
        return -1;
    port = 0;
    redis = vt_start_redis_aof(&port, redis_dir);
    if (!redis)
        return -1;
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", port);
    return 0;
}

static int suite_clean(void)
{
    vt_kill(redis, SIGTERM);
    free(dir);
    return 0;
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("catalog_store", suite_init, suite_clean);
    CU_add_test(s, "commit then load, from a new handle (memory, file, redis)", test_commit_then_load);
    CU_add_test(s, "replace and remove (memory, file, redis)", test_replace_and_remove);
    CU_add_test(s, "generation: bumped in the commit, a stale one writes nothing (issue 14)", test_generation);
    CU_add_test(s, "audit pages: oldest first, offset 0 limit N = latest N", test_audit_pages);
    CU_add_test(s, "audit cap: the last N entries", test_audit_cap);
    CU_add_test(s, "bad input: an error naming the write, nothing applied", test_bad_input_changes_nothing);
    CU_add_test(s, "file: a corrupt catalog.json names the file and position", test_file_corrupt_catalog);
    CU_add_test(s, "file: an unwritable data dir keeps the previous catalog", test_file_unwritable_keeps_previous);
    CU_add_test(s, "file: a failed audit append restores catalog.json", test_file_audit_failure_restores_catalog);
    CU_add_test(s, "file: a torn audit line is cut", test_file_torn_audit_line);
    CU_add_test(s, "redis: down means EUNAVAILABLE and nothing applied", test_redis_down);
    CU_add_test(s, "redis: a key of the wrong type changes nothing", test_redis_wrong_type_changes_nothing);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failures = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
    CU_cleanup_registry();
    return failures != 0;
}
