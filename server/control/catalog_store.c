/* catalog_store.c — where the hot-reload rule catalog and the audit log are
 * kept (catalog_store.h): the interface, the checks, and the memory backend.
 *
 * Why it exists: a restart must serve the same rule versions, modes and
 * sources as before (DESIGN.md §6 "Versions"), and GET /v1/audit must show
 * every change. The control wing decides what a record means; the store
 * only keeps opaque JSON texts, all or nothing per commit, in Redis
 * (catalog_store_redis.c), in files of the data dir (catalog_store_file.c)
 * or in memory (here).
 *
 * Every commit is checked whole before anything is applied: names and
 * values within their limits, records and audit entries JSON objects (kept
 * as cJSON prints them compactly: one line each, which is what JSON Lines
 * need, and the same text from every backend). The file and memory backends
 * apply the writes to a copy of the catalog tree and swap it in only when
 * everything succeeded ("on error nothing is applied in memory either"); the
 * memory backend's audit ring makes room before the swap, so nothing after
 * it can fail. */
#include "catalog_store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

vigil_status vcat_oom(vigil_error *err)
{
    return vigil_error_set(err, VIGIL_ENOMEM, "catalog store: out of memory");
}

void vcat_note(vigil_error *err, const char *note)
{
    if (!err)
        return;
    size_t l = strnlen(err->msg, sizeof err->msg - 1);
    snprintf(err->msg + l, sizeof err->msg - l, " (%s)", note);   /* truncated when full */
}

/* ---- checking a commit's writes ----------------------------------------- */

static const char *kind_word(vigil_catalog_write_kind k)
{
    return k == VIGIL_CW_RULE ? "rule" : k == VIGIL_CW_FILE ? "file" : "audit entry";
}

/* Check every write before anything is applied; fill nm[i] (owned by the
 * caller: free_norms). A record or audit entry must be one JSON object. */
static vigil_status check_writes(const vigil_catalog_write *w, int n, vcat_norm *nm, vigil_error *err)
{
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        vigil_catalog_write_kind k = w[i].kind;
        if (k != VIGIL_CW_RULE && k != VIGIL_CW_FILE && k != VIGIL_CW_AUDIT)
            return vigil_error_set(err, VIGIL_EINVAL, "catalog commit: write %d: unknown kind %d", i, (int)k);
        char what[160] = "audit entry";
        if (k != VIGIL_CW_AUDIT) {
            const char *key = w[i].key;
            size_t kl = key ? strnlen(key, VIGIL_CATALOG_KEY_MAX + 1) : 0;
            if (kl == 0)
                return vigil_error_set(err, VIGIL_EINVAL, "catalog commit: write %d (%s): no name", i, kind_word(k));
            snprintf(what, sizeof what, "%s '%.120s%s'", kind_word(k), key, kl > 120 ? "…" : "");
            if (kl > VIGIL_CATALOG_KEY_MAX)
                return vigil_error_set(err, VIGIL_ETOOBIG, "catalog commit: write %d (%s): name over %d bytes", i,
                                       what, VIGIL_CATALOG_KEY_MAX);
        }
        if (!w[i].value) {
            if (k == VIGIL_CW_AUDIT)
                return vigil_error_set(err, VIGIL_EINVAL, "catalog commit: write %d: an audit entry without text", i);
            continue;   /* a removal */
        }
        size_t vmax = k == VIGIL_CW_FILE ? VIGIL_CATALOG_KEY_MAX : VIGIL_CATALOG_VALUE_MAX;
        size_t vl = strnlen(w[i].value, vmax + 1);
        if (vl > vmax)
            return vigil_error_set(err, VIGIL_ETOOBIG, "catalog commit: write %d (%s): value over %zu bytes", i,
                                   what, vmax);
        total += vl;
        if (total > VCAT_COMMIT_MAX)
            return vigil_error_set(err, VIGIL_ETOOBIG, "catalog commit: the values of %d writes are over %u bytes",
                                   n, VCAT_COMMIT_MAX);
        if (k == VIGIL_CW_FILE)
            continue;
        const char *end = NULL;
        cJSON *t = cJSON_ParseWithLengthOpts(w[i].value, vl + 1, &end, 1);
        if (!t)
            return vigil_error_set(err, VIGIL_EPARSE, "catalog commit: write %d (%s): not JSON (error at byte %td)", i,
                                   what, end ? end - w[i].value : (ptrdiff_t)0);
        nm[i].tree = t;
        if (!cJSON_IsObject(t))
            return vigil_error_set(err, VIGIL_EPARSE, "catalog commit: write %d (%s): not a JSON object", i, what);
        if (!(nm[i].text = cJSON_PrintUnformatted(t)))
            return vcat_oom(err);
        nm[i].len = strlen(nm[i].text);
        if (nm[i].len > VIGIL_CATALOG_VALUE_MAX)
            return vigil_error_set(err, VIGIL_ETOOBIG, "catalog commit: write %d (%s): value over %u bytes "
                                   "once printed", i, what, VIGIL_CATALOG_VALUE_MAX);
        if (k == VIGIL_CW_AUDIT) {
            cJSON_Delete(t);
            nm[i].tree = NULL;
        }
    }
    return VIGIL_OK;
}

static void free_norms(vcat_norm *nm, int n)
{
    for (int i = 0; nm && i < n; i++) {
        cJSON_Delete(nm[i].tree);
        cJSON_free(nm[i].text);
    }
    free(nm);
}

/* ---- memory: the audit ring --------------------------------------------- */

/* Room for `more` entries without another allocation (up to the cap). */
static int ring_reserve(vigil_catalog_store *st, size_t more)
{
    size_t need = st->rn + more < st->audit_max ? st->rn + more : st->audit_max;
    if (need <= st->rcap)
        return 0;
    size_t cap = st->rcap ? st->rcap : 64;
    while (cap < need)
        cap *= 2;
    if (cap > st->audit_max)
        cap = st->audit_max;
    char **r = malloc(cap * sizeof *r);
    if (!r)
        return -1;
    for (size_t i = 0; i < st->rn; i++)
        r[i] = st->ring[(st->rhead + i) % st->rcap];
    free(st->ring);
    st->ring = r;
    st->rcap = cap;
    st->rhead = 0;
    return 0;
}

static void ring_push(vigil_catalog_store *st, char *text)
{
    while (st->rn >= st->audit_max || st->rn >= st->rcap) {   /* drop the oldest */
        cJSON_free(st->ring[st->rhead]);
        st->rhead = (st->rhead + 1) % st->rcap;
        st->rn--;
    }
    st->ring[(st->rhead + st->rn) % st->rcap] = text;
    st->rn++;
}

/* ---- file and memory: the catalog tree ---------------------------------- */

/* Apply the rule and file writes to cat (a copy: the caller swaps it in). */
static vigil_status apply(cJSON *cat, const vigil_catalog_write *w, vcat_norm *nm, int n, vigil_error *err)
{
    cJSON *rules = cJSON_GetObjectItemCaseSensitive(cat, "rules");
    cJSON *files = cJSON_GetObjectItemCaseSensitive(cat, "files");
    for (int i = 0; i < n; i++) {
        if (w[i].kind == VIGIL_CW_AUDIT)
            continue;
        cJSON *obj = w[i].kind == VIGIL_CW_RULE ? rules : files;
        cJSON_DeleteItemFromObjectCaseSensitive(obj, w[i].key);
        if (!w[i].value)
            continue;
        if (w[i].kind == VIGIL_CW_FILE) {
            if (!cJSON_AddStringToObject(obj, w[i].key, w[i].value))
                return vcat_oom(err);
        } else {
            if (!cJSON_AddItemToObject(obj, w[i].key, nm[i].tree))
                return vcat_oom(err);
            nm[i].tree = NULL;   /* cat owns it now */
        }
    }
    return VIGIL_OK;
}

static vigil_status local_commit(vigil_catalog_store *st, const vigil_catalog_write *w, vcat_norm *nm, int n,
                                 vigil_error *err)
{
    size_t naud = 0;
    for (int i = 0; i < n; i++)
        naud += w[i].kind == VIGIL_CW_AUDIT;
    cJSON *next = NULL;
    vigil_status s = VIGIL_OK;
    if (naud < (size_t)n) {
        next = cJSON_Duplicate(st->cat, 1);
        s = next ? apply(next, w, nm, n, err) : vcat_oom(err);
    }
    if (s == VIGIL_OK && st->kind == VCAT_MEMORY && ring_reserve(st, naud) != 0)
        s = vcat_oom(err);
    if (s == VIGIL_OK && st->kind == VCAT_FILE)
        s = vcat_file_commit(st, next, w, nm, n, err);
    if (s != VIGIL_OK) {
        cJSON_Delete(next);
        return s;
    }
    /* the commit point: nothing below can fail */
    if (next) {
        cJSON_Delete(st->cat);
        st->cat = next;
    }
    for (int i = 0; i < n && st->kind == VCAT_MEMORY; i++)
        if (w[i].kind == VIGIL_CW_AUDIT) {
            ring_push(st, nm[i].text);
            nm[i].text = NULL;   /* the ring owns it now */
        }
    return VIGIL_OK;
}

/* ---- the interface ------------------------------------------------------ */

vigil_status vigil_catalog_store_open(const vigil_catalog_store_config *cfg, vigil_catalog_store **out,
                                      vigil_error *err)
{
    if (!cfg || !out)
        return vigil_error_set(err, VIGIL_EINVAL, "catalog store: NULL argument");
    *out = NULL;
    vigil_catalog_store *st = calloc(1, sizeof *st);
    if (!st)
        return vcat_oom(err);
    st->afd = -1;
    st->audit_max = VIGIL_AUDIT_MAX;
    vigil_status s = VIGIL_OK;
    if (cfg->redis_url && *cfg->redis_url) {
        st->kind = VCAT_REDIS;
        s = vcat_redis_open(st, cfg->redis_url, cfg->redis_prefix, err);
    } else {
        st->kind = cfg->data_dir && *cfg->data_dir ? VCAT_FILE : VCAT_MEMORY;
        st->cat = cJSON_CreateObject();
        if (!st->cat || !cJSON_AddObjectToObject(st->cat, "rules") || !cJSON_AddObjectToObject(st->cat, "files"))
            s = vcat_oom(err);
        if (s == VIGIL_OK && st->kind == VCAT_FILE)
            s = vcat_file_open(st, cfg->data_dir, err);
    }
    if (s != VIGIL_OK) {
        vigil_catalog_store_close(st);
        return s;
    }
    *out = st;
    return VIGIL_OK;
}

void vigil_catalog_store_close(vigil_catalog_store *st)
{
    if (!st)
        return;
    vigil_redis_destroy(st->r);
    if (st->kind == VCAT_FILE)
        vcat_file_close(st);
    cJSON_Delete(st->cat);
    for (size_t i = 0; i < st->rn; i++)
        cJSON_free(st->ring[(st->rhead + i) % st->rcap]);
    free(st->ring);
    free(st);
}

const char *vigil_catalog_store_kind(const vigil_catalog_store *st)
{
    return !st ? "" : st->kind == VCAT_REDIS ? "redis" : st->kind == VCAT_FILE ? "file" : "memory";
}

void vigil_catalog_store_set_audit_max(vigil_catalog_store *st, size_t max)
{
    if (st)
        st->audit_max = max ? max : VIGIL_AUDIT_MAX;
}

vigil_status vigil_catalog_store_load(vigil_catalog_store *st,
                                      void (*rule)(void *ud, const char *name, const char *json),
                                      void (*file)(void *ud, const char *path, const char *hash),
                                      void *ud, vigil_error *err)
{
    if (!st)
        return vigil_error_set(err, VIGIL_EINVAL, "catalog load: no store");
    if (st->kind == VCAT_REDIS)
        return vcat_redis_load(st, rule, file, ud, err);
    const cJSON *rules = cJSON_GetObjectItemCaseSensitive(st->cat, "rules");
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(st->cat, "files");
    for (const cJSON *it = rule ? rules->child : NULL; it; it = it->next) {
        char *text = cJSON_PrintUnformatted(it);
        if (!text)
            return vcat_oom(err);
        rule(ud, it->string, text);
        cJSON_free(text);
    }
    for (const cJSON *it = file ? files->child : NULL; it; it = it->next)
        file(ud, it->string, it->valuestring);
    return VIGIL_OK;
}

vigil_status vigil_catalog_store_commit(vigil_catalog_store *st, const vigil_catalog_write *w, int n,
                                        vigil_error *err)
{
    if (!st || n < 0 || (n > 0 && !w))
        return vigil_error_set(err, VIGIL_EINVAL, "catalog commit: bad arguments");
    if (n == 0)
        return VIGIL_OK;
    vcat_norm *nm = calloc((size_t)n, sizeof *nm);
    if (!nm)
        return vcat_oom(err);
    vigil_status s = check_writes(w, n, nm, err);
    if (s == VIGIL_OK)
        s = st->kind == VCAT_REDIS ? vcat_redis_commit(st, w, nm, n, err) : local_commit(st, w, nm, n, err);
    free_norms(nm, n);
    return s;
}

vigil_status vigil_catalog_store_generation(vigil_catalog_store *st, uint64_t *out, vigil_error *err)
{
    if (!st || !out)
        return vigil_error_set(err, VIGIL_EINVAL, "catalog generation: bad arguments");
    vigil_status s = st->kind == VCAT_REDIS ? vcat_redis_generation(st, err) : VIGIL_OK;
    *out = st->gen;
    return s;
}

vigil_status vigil_catalog_store_commit_gen(vigil_catalog_store *st, const vigil_catalog_write *w, int n,
                                            const uint64_t *expect, uint64_t *gen_out, vigil_error *err)
{
    if (!st)
        return vigil_error_set(err, VIGIL_EINVAL, "catalog commit: bad arguments");
    if (expect && st->kind != VCAT_REDIS && *expect != st->gen)
        return vigil_error_set(err, VIGIL_ECONFLICT, "catalog commit: the catalog is at generation %llu, the "
                               "change was made at %llu: nothing written", (unsigned long long)st->gen,
                               (unsigned long long)*expect);
    uint64_t before = st->gen;
    st->bump = 1;
    st->expect = expect;
    vigil_status s = vigil_catalog_store_commit(st, w, n, err);
    st->bump = 0;
    st->expect = NULL;
    if (s == VIGIL_OK && st->kind != VCAT_REDIS)
        st->gen = before + 1;   /* redis: set from EXEC's INCR */
    if (s == VIGIL_OK && gen_out)
        *gen_out = st->gen;
    return s;
}

vigil_status vigil_catalog_store_audit(vigil_catalog_store *st, size_t offset, size_t limit,
                                       void (*fn)(void *ud, const char *json), void *ud, vigil_error *err)
{
    if (!st || !fn)
        return vigil_error_set(err, VIGIL_EINVAL, "catalog audit: bad arguments");
    /* The log is the last audit_max entries (audit.log may hold more until
     * it is trimmed: those are not shown); this also bounds the page. */
    if (offset >= st->audit_max || limit == 0)
        return VIGIL_OK;
    if (limit > st->audit_max - offset)
        limit = st->audit_max - offset;
    if (st->kind == VCAT_REDIS)
        return vcat_redis_audit(st, offset, limit, fn, ud, err);
    if (st->kind == VCAT_FILE)
        return vcat_file_audit(st, offset, limit, fn, ud, err);
    for (size_t i = offset + limit > st->rn ? 0 : st->rn - offset - limit; i + offset < st->rn; i++)
        fn(ud, st->ring[(st->rhead + i) % st->rcap]);
    return VIGIL_OK;
}
