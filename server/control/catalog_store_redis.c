/* catalog_store_redis.c — the rule catalog and audit log in Redis
 * (catalog_store.h, the redis backend).
 *
 * Why it exists: with a Redis store, the catalog lives beside the state it
 * describes, so every server on that Redis serves the same rule versions
 * after a restart. Keys: hashes <prefix>:rules (name -> record) and
 * <prefix>:rulefiles (path -> content hash), list <prefix>:audit (newest
 * first, LTRIM'd to the cap). No hash tag: these keys are read and written
 * together only by the control wing, never in a worker's commit.
 *
 * A commit is all or nothing: WATCH and TYPE the three keys (one round
 * trip), then one MULTI/EXEC with the HSET/HDELs, one LPUSH of the audit
 * entries and the LTRIM. The TYPE check is there because Redis does not roll
 * back a transaction whose command fails at EXEC (WRONGTYPE): a key of the
 * wrong type is refused before anything is queued. The WATCH makes EXEC
 * fail rather than apply when another client changed a key in between.
 * Everything goes through the one connection layer, server/state/redis.h;
 * hiredis is used here only to read replies. */
#include "catalog_store_int.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An integer reply or text of one (GET of the generation): -1 when it is neither. */
static int r_gen_value(const redisReply *r, uint64_t *out)
{
    if (r->type == REDIS_REPLY_NIL) {
        *out = 0;
        return 0;
    }
    if (r->type == REDIS_REPLY_INTEGER && r->integer >= 0) {
        *out = (uint64_t)r->integer;
        return 0;
    }
    if (r->type != REDIS_REPLY_STRING || r->len == 0 || r->len > 19)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < r->len; i++) {
        if (r->str[i] < '0' || r->str[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(r->str[i] - '0');
    }
    *out = v;
    return 0;
}

/* WATCH the keys (the three, and the generation when the commit bumps it)
 * and check their types, so that no command of the transaction can fail at
 * EXEC (Redis would not roll the others back); with a bump, GET the
 * generation and compare it with st->expect. */
static vigil_status r_watch(vigil_catalog_store *st, vigil_error *err)
{
    const char *keys[4] = { st->k_rules, st->k_files, st->k_audit, st->k_gen };
    const char *want[3] = { "hash", "hash", "list" };
    int nk = st->bump ? 4 : 3;
    const char *wv[5] = { "WATCH", keys[0], keys[1], keys[2], keys[3] };
    size_t wl[5] = { 5, strlen(keys[0]), strlen(keys[1]), strlen(keys[2]), strlen(keys[3]) };
    const char *tv[4][2];
    size_t tl[4][2];
    vigil_redis_cmd cmds[5] = { { 1 + nk, wv, wl } };
    for (int i = 0; i < 3; i++) {
        tv[i][0] = "TYPE"; tl[i][0] = 4;
        tv[i][1] = keys[i]; tl[i][1] = wl[i + 1];
        cmds[i + 1] = (vigil_redis_cmd){ 2, tv[i], tl[i] };
    }
    tv[3][0] = "GET"; tl[3][0] = 3;
    tv[3][1] = keys[3]; tl[3][1] = wl[4];
    cmds[4] = (vigil_redis_cmd){ 2, tv[3], tl[3] };
    int nc = st->bump ? 5 : 4;
    redisReply *rep[5];
    vigil_status s = vigil_redis_pipeline(st->r, cmds, nc, rep, "catalog commit (WATCH)", err);
    if (s != VIGIL_OK)
        return s;
    for (int i = 0; i < nc && s == VIGIL_OK; i++)
        s = vigil_redis_reply_check(st->r, rep[i], i == 0 ? "catalog commit (WATCH)" : i < 4 ? "catalog commit (TYPE)"
                                                                                              : "catalog commit (GET generation)", err);
    for (int i = 0; i < 3 && s == VIGIL_OK; i++) {
        const redisReply *t = rep[i + 1];
        if (t->type != REDIS_REPLY_STATUS)
            s = vigil_error_set(err, VIGIL_ESTORE, "Redis %s: unexpected reply to TYPE %s", vigil_redis_where(st->r),
                                keys[i]);
        else if (strcmp(t->str, "none") != 0 && strcmp(t->str, want[i]) != 0)
            s = vigil_error_set(err, VIGIL_ESTORE, "Redis %s: catalog key %s is a %s, not a %s: nothing written",
                                vigil_redis_where(st->r), keys[i], t->str, want[i]);
    }
    uint64_t cur = 0;
    if (s == VIGIL_OK && st->bump && r_gen_value(rep[4], &cur) != 0)
        s = vigil_error_set(err, VIGIL_ESTORE, "Redis %s: catalog key %s holds no generation (a whole number): "
                            "nothing written", vigil_redis_where(st->r), st->k_gen);
    if (s == VIGIL_OK && st->bump && st->expect && cur != *st->expect)
        s = vigil_error_set(err, VIGIL_ECONFLICT, "Redis %s: the rule catalog is at generation %llu, this change was "
                            "made at %llu (another server changed it): nothing written", vigil_redis_where(st->r),
                            (unsigned long long)cur, (unsigned long long)*st->expect);
    vigil_redis_free_replies(rep, nc);
    if (s != VIGIL_OK)
        vigil_redis_disconnect(st->r);   /* drops the WATCH with the connection */
    return s;
}

vigil_status vcat_redis_generation(vigil_catalog_store *st, vigil_error *err)
{
    const char *av[2] = { "GET", st->k_gen };
    size_t al[2] = { 3, strlen(st->k_gen) };
    redisReply *r = NULL;
    vigil_status s = vigil_redis_command(st->r, &(vigil_redis_cmd){ 2, av, al }, &r, "catalog generation", err);
    if (s != VIGIL_OK)
        return s;
    s = vigil_redis_reply_check(st->r, r, "GET catalog generation", err);
    uint64_t v = 0;
    if (s == VIGIL_OK && r_gen_value(r, &v) != 0)
        s = vigil_error_set(err, VIGIL_ESTORE, "Redis %s: catalog key %s holds no generation (a whole number)",
                            vigil_redis_where(st->r), st->k_gen);
    if (s == VIGIL_OK)
        st->gen = v;
    freeReplyObject(r);
    return s;
}

/* The replies of MULTI … EXEC could not all be read: say whether EXEC left. */
static vigil_status r_lost(vigil_catalog_store *st, vigil_status s, vigil_error *err)
{
    if (s == VIGIL_EUNAVAILABLE)
        vcat_note(err, vigil_redis_unsent(st->r) ? "before EXEC was sent: nothing written"
                                                : "after EXEC was sent: outcome unknown");
    return s;
}

vigil_status vcat_redis_commit(vigil_catalog_store *st, const vigil_catalog_write *w, const vcat_norm *nm, int n,
                               vigil_error *err)
{
    int naud = 0;
    for (int i = 0; i < n; i++)
        naud += w[i].kind == VIGIL_CW_AUDIT;
    int ncmd = n - naud + (naud ? 2 : 0) + (st->bump ? 1 : 0);   /* + INCR of the generation */
    const char **pv = calloc((size_t)naud + 2, sizeof *pv);
    size_t *pl = calloc((size_t)naud + 2, sizeof *pl);
    if (!pv || !pl) {
        free(pv);
        free(pl);
        return vcat_oom(err);
    }
    vigil_status s = r_watch(st, err);
    const char *multi = "MULTI", *exec = "EXEC";
    size_t ml = 5, el = 4;
    if (s == VIGIL_OK)
        s = vigil_redis_append(st->r, &(vigil_redis_cmd){ 1, &multi, &ml }, err);
    for (int i = 0; i < n && s == VIGIL_OK; i++) {
        if (w[i].kind == VIGIL_CW_AUDIT)
            continue;
        const char *hash = w[i].kind == VIGIL_CW_RULE ? st->k_rules : st->k_files;
        const char *val = nm[i].text ? nm[i].text : w[i].value;
        const char *av[4] = { val ? "HSET" : "HDEL", hash, w[i].key, val };
        size_t al[4] = { 4, strlen(hash), strlen(w[i].key), nm[i].text ? nm[i].len : val ? strlen(val) : 0 };
        s = vigil_redis_append(st->r, &(vigil_redis_cmd){ val ? 4 : 3, av, al }, err);
    }
    char stop[24];
    if (naud && s == VIGIL_OK) {
        /* LPUSH pushes its values in order: the commit's last entry is the newest */
        int k = 0;
        pv[k] = "LPUSH"; pl[k++] = 5;
        pv[k] = st->k_audit; pl[k++] = strlen(st->k_audit);
        for (int i = 0; i < n; i++)
            if (w[i].kind == VIGIL_CW_AUDIT) {
                pv[k] = nm[i].text; pl[k++] = nm[i].len;
            }
        s = vigil_redis_append(st->r, &(vigil_redis_cmd){ k, pv, pl }, err);
        int tn = snprintf(stop, sizeof stop, "%zu", st->audit_max - 1);
        const char *tv[4] = { "LTRIM", st->k_audit, "0", stop };
        size_t tl[4] = { 5, strlen(st->k_audit), 1, (size_t)tn };
        if (s == VIGIL_OK)
            s = vigil_redis_append(st->r, &(vigil_redis_cmd){ 4, tv, tl }, err);
    }
    if (s == VIGIL_OK && st->bump) {   /* last: EXEC's last element is the new generation */
        const char *gv[2] = { "INCR", st->k_gen };
        size_t gl[2] = { 4, strlen(st->k_gen) };
        s = vigil_redis_append(st->r, &(vigil_redis_cmd){ 2, gv, gl }, err);
    }
    if (s == VIGIL_OK)
        s = vigil_redis_append(st->r, &(vigil_redis_cmd){ 1, &exec, &el }, err);
    free(pv);
    free(pl);
    if (s != VIGIL_OK) {
        vigil_redis_disconnect(st->r);   /* never leave half a transaction buffered */
        return s;
    }
    /* +OK, ncmd × +QUEUED, then EXEC's array (nil: a watched key changed).
     * Read them all, whatever they say, to keep the connection in sync. */
    for (int i = 0; i < ncmd + 2; i++) {
        redisReply *r = NULL;
        vigil_status rs = vigil_redis_read(st->r, &r, "catalog commit", err);
        if (rs != VIGIL_OK)
            return r_lost(st, rs, err);
        if (s == VIGIL_OK) {
            const char *where = vigil_redis_where(st->r);
            if (r->type == REDIS_REPLY_ERROR)
                s = vigil_error_set(err, VIGIL_ESTORE, "Redis %s: catalog commit (%s): %.*s: nothing written", where,
                                    i == 0 ? "MULTI" : i == ncmd + 1 ? "EXEC" : "queueing", (int)r->len, r->str);
            else if (i <= ncmd && r->type != REDIS_REPLY_STATUS)
                s = vigil_error_set(err, VIGIL_ESTORE, "Redis %s: catalog commit: unexpected reply to %s", where,
                                    i ? "a queued command" : "MULTI");
            else if (i == ncmd + 1 && r->type == REDIS_REPLY_NIL)   /* a race with another server: a conflict */
                s = vigil_error_set(err, st->bump ? VIGIL_ECONFLICT : VIGIL_ESTORE,
                                    "Redis %s: catalog commit: %s, %s or %s changed during the commit "
                                    "(another writer?): nothing written", where, st->k_rules, st->k_files, st->k_audit);
            else if (i == ncmd + 1 && (r->type != REDIS_REPLY_ARRAY || r->elements != (size_t)ncmd))
                s = vigil_error_set(err, VIGIL_ESTORE, "Redis %s: catalog commit: unexpected reply to EXEC", where);
            else if (i == ncmd + 1)
                for (size_t j = 0; j < r->elements && s == VIGIL_OK; j++)
                    if (r->element[j]->type == REDIS_REPLY_ERROR)
                        s = vigil_error_set(err, VIGIL_ESTORE, "Redis %s: catalog commit: command %zu failed at EXEC "
                                            "(the others were applied): %.*s", where, j,
                                            (int)r->element[j]->len, r->element[j]->str);
            if (s == VIGIL_OK && i == ncmd + 1 && st->bump) {
                const redisReply *g = r->element[r->elements - 1];
                if (g->type == REDIS_REPLY_INTEGER && g->integer > 0)
                    st->gen = (uint64_t)g->integer;
            }
        }
        freeReplyObject(r);
    }
    return s;
}

/* A reply that is not what the command gives (VIGIL_ESTORE). */
static vigil_status r_odd(vigil_catalog_store *st, const char *cmd, const char *key, vigil_error *err)
{
    return vigil_error_set(err, VIGIL_ESTORE, "Redis %s: %s %s: unexpected reply", vigil_redis_where(st->r), cmd, key);
}

/* One HGETALL reply: fn(ud, field, value) per pair. */
static vigil_status r_pairs(vigil_catalog_store *st, const redisReply *r, const char *key,
                            void (*fn)(void *, const char *, const char *), void *ud, vigil_error *err)
{
    vigil_status s = vigil_redis_reply_check(st->r, r, key, err);
    if (s != VIGIL_OK)
        return s;
    if (r->type != REDIS_REPLY_ARRAY || r->elements % 2)
        return r_odd(st, "HGETALL", key, err);
    for (size_t i = 0; i < r->elements; i++)
        if (r->element[i]->type != REDIS_REPLY_STRING)
            return r_odd(st, "HGETALL", key, err);
    for (size_t i = 0; fn && i < r->elements; i += 2)
        fn(ud, r->element[i]->str, r->element[i + 1]->str);
    return VIGIL_OK;
}

vigil_status vcat_redis_load(vigil_catalog_store *st, void (*rule)(void *, const char *, const char *),
                             void (*file)(void *, const char *, const char *), void *ud, vigil_error *err)
{
    const char *av[2][2] = { { "HGETALL", st->k_rules }, { "HGETALL", st->k_files } };
    size_t al[2][2] = { { 7, strlen(st->k_rules) }, { 7, strlen(st->k_files) } };
    vigil_redis_cmd cmds[2] = { { 2, av[0], al[0] }, { 2, av[1], al[1] } };
    redisReply *rep[2];
    vigil_status s = vigil_redis_pipeline(st->r, cmds, 2, rep, "catalog load", err);
    if (s != VIGIL_OK)
        return s;
    s = r_pairs(st, rep[0], st->k_rules, rule, ud, err);
    if (s == VIGIL_OK)
        s = r_pairs(st, rep[1], st->k_files, file, ud, err);
    vigil_redis_free_replies(rep, 2);
    return s;
}

/* LRANGE gives newest first: entries offset … offset+limit-1, read backwards. */
vigil_status vcat_redis_audit(vigil_catalog_store *st, size_t offset, size_t limit, void (*fn)(void *, const char *),
                              void *ud, vigil_error *err)
{
    char from[24], to[24];
    int fl = snprintf(from, sizeof from, "%zu", offset);
    int tl = snprintf(to, sizeof to, "%zu", offset + limit - 1);
    const char *av[4] = { "LRANGE", st->k_audit, from, to };
    size_t al[4] = { 6, strlen(st->k_audit), (size_t)fl, (size_t)tl };
    redisReply *r = NULL;
    vigil_status s = vigil_redis_command(st->r, &(vigil_redis_cmd){ 4, av, al }, &r, "audit", err);
    if (s != VIGIL_OK)
        return s;
    s = vigil_redis_reply_check(st->r, r, "LRANGE audit", err);
    if (s == VIGIL_OK && r->type != REDIS_REPLY_ARRAY)
        s = r_odd(st, "LRANGE", st->k_audit, err);
    for (size_t i = 0; s == VIGIL_OK && i < r->elements; i++)
        if (r->element[i]->type != REDIS_REPLY_STRING)
            s = r_odd(st, "LRANGE", st->k_audit, err);
    for (size_t i = r->elements; s == VIGIL_OK && i-- > 0;)
        fn(ud, r->element[i]->str);
    freeReplyObject(r);
    return s;
}

vigil_status vcat_redis_open(vigil_catalog_store *st, const char *url, const char *prefix, vigil_error *err)
{
    const char *p = prefix && *prefix ? prefix : "vigil";
    if (strlen(p) > VCAT_PREFIX_MAX)
        return vigil_error_set(err, VIGIL_EINVAL, "catalog store: Redis prefix over %d bytes", VCAT_PREFIX_MAX);
    snprintf(st->k_rules, sizeof st->k_rules, "%s:rules", p);
    snprintf(st->k_files, sizeof st->k_files, "%s:rulefiles", p);
    snprintf(st->k_audit, sizeof st->k_audit, "%s:audit", p);
    snprintf(st->k_gen, sizeof st->k_gen, "%s:catalog_gen", p);
    vigil_status s = vigil_redis_create(url, NULL, &st->r, err);
    if (s == VIGIL_OK)
        s = vigil_redis_connect(st->r, err);
    return s;
}
