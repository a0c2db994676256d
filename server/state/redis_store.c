/* redis_store.c — vigil_store over Redis (hiredis 0.14, synchronous, pipelined).
 *
 * The state stage of the flow when vigil runs with --redis: see redis_store.h
 * for the key layout, the one-round-trip-per-call rule and the error model.
 * The connection (URL, timeouts, AUTH/SELECT, reconnecting, SIGPIPE, the
 * round-trip counter) is redis.c's: this file says which commands make a
 * load, a save, a commit and an offset read, and what their replies mean.
 * A request is validated completely before anything is appended; after a
 * connection-level failure redis.c drops the connection, so a half-written
 * pipeline never stays in a buffer: the next call starts on a fresh one. */
#include "redis_store.h"
#include "redis_store_int.h"
#include "server/common/fault.h"
#include "vigil/event.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Queue one command on the store's connection. */
vigil_status vrs_queue(redis_store *rs, int argc, const char **argv, const size_t *lens, vigil_error *err)
{
    vigil_redis_cmd c = { argc, argv, lens };
    return vigil_redis_append(rs->conn, &c, err);
}

/* ---- keys -------------------------------------------------------------- */

vigil_status vrs_check_key(const redis_store *rs, const vigil_store_key *k, vigil_error *err)
{
    if (!k->group_name || (!k->key && k->keylen))
        return vigil_error_set(err, VIGIL_EINVAL, "Redis store: key without group name or value");
    if (strpbrk(k->group_name, "{}"))
        return vigil_error_set(err, VIGIL_EINVAL,
                               "Redis store: group name '%s' contains '{' or '}' (it is the hash tag)",
                               k->group_name);
    size_t total = rs->prefixlen + 2 + strlen(k->group_name) + 16 + 4 + k->keylen;
    if (total > VIGIL_REDIS_MAX_KEY)
        return vigil_error_set(err, VIGIL_ETOOBIG, "Redis store: key of group '%s' is %zu bytes (max %d)",
                               k->group_name, total, VIGIL_REDIS_MAX_KEY);
    return VIGIL_OK;
}

/* The hash tag's partition suffix ":p<n>" for key (empty without
 * partitions) into buf (>= 16 bytes); returns its length. */
static size_t part_tag(int partitions, const char *key, size_t keylen, char *buf)
{
    if (partitions <= 0)
        return 0;
    uint64_t p = vigil_hash(key, keylen) % (uint64_t)partitions;
    buf[0] = ':';
    buf[1] = 'p';
    return 2 + vigil_redis_fmt_u64(buf + 2, p);   /* partitions is an int: at most 10 digits */
}

/* Build "<prefix>:{<group>[:p<n>]}:k:<key>" into buf (the caller checked the size). */
size_t vrs_build_key(const redis_store *rs, const char *group, const char *key, size_t keylen, char *buf)
{
    size_t gl = strlen(group), o = 0;
    char tag[16];
    size_t tl = part_tag(rs->partitions, key, keylen, tag);
    memcpy(buf + o, rs->prefix, rs->prefixlen); o += rs->prefixlen;
    memcpy(buf + o, ":{", 2); o += 2;
    memcpy(buf + o, group, gl); o += gl;
    memcpy(buf + o, tag, tl); o += tl;
    memcpy(buf + o, "}:k:", 4); o += 4;
    if (keylen)
        memcpy(buf + o, key, keylen);
    o += keylen;
    return o;
}

vigil_status vigil_redis_store_key(const vigil_store *st, const char *group_name, const char *key,
                                   size_t keylen, char *buf, size_t n, size_t *len)
{
    const redis_store *rs = (const redis_store *)st;
    if (!rs || rs->magic != STORE_MAGIC || !group_name || (!key && keylen) || !buf)
        return VIGIL_EINVAL;
    size_t total = rs->prefixlen + 2 + strlen(group_name) + 16 + 4 + keylen;
    if (total > n)
        return VIGIL_ETOOBIG;
    size_t l = vrs_build_key(rs, group_name, key, keylen, buf);
    if (len)
        *len = l;
    return VIGIL_OK;
}

/* ---- load / save ------------------------------------------------------- */

static vigil_status do_load(vigil_store *st, const vigil_store_key *keys, int n,
                            void (*found)(void *ud, int i, const unsigned char *data, size_t len),
                            void *ud, vigil_error *err)
{
    redis_store *rs = (redis_store *)st;
    if (!rs || rs->magic != STORE_MAGIC || n < 0 || (n > 0 && (!keys || !found)))
        return vigil_error_set(err, VIGIL_EINVAL, "Redis store load: bad arguments");
    if (n == 0)
        return VIGIL_OK;
    for (int i = 0; i < n; i++) {
        vigil_status s = vrs_check_key(rs, &keys[i], err);
        if (s != VIGIL_OK) {
            rs->stats.errors++;
            return s;
        }
    }
    if ((size_t)n > rs->replies_cap) {
        redisReply **nr = realloc(rs->replies, (size_t)n * sizeof *nr);
        if (!nr) {
            rs->stats.errors++;
            return vigil_error_set(err, VIGIL_ENOMEM, "Redis store load: out of memory for %d replies", n);
        }
        memset(nr + rs->replies_cap, 0, ((size_t)n - rs->replies_cap) * sizeof *nr);
        rs->replies = nr;
        rs->replies_cap = (size_t)n;
    }
    vigil_redis_batch *bt = &rs->batch;   /* the GETs in one buffer, as a commit's SETs */
    vigil_redis_batch_reset(bt);
    for (int i = 0; i < n; i++) {
        const vigil_store_key *k = &keys[i];
        size_t kl = vrs_build_key(rs, k->group_name, k->key, k->keylen, rs->keybuf);
        const char *av[2] = { "GET", rs->keybuf };
        size_t al[2] = { 3, kl };
        vigil_redis_batch_add(bt, 2, av, al);
    }
    vigil_status s = vigil_redis_append_batch(rs->conn, bt, err);
    if (bt->cap > ((size_t)64 << 20))
        vigil_redis_batch_free(bt);
    if (s != VIGIL_OK) {
        rs->stats.errors++;
        return s;
    }
    rs->stats.loads++;
    rs->stats.keys_loaded += (uint64_t)n;
    for (int got = 0; got < n; got++) {
        s = vigil_redis_read(rs->conn, &rs->replies[got], "load failed", err);
        if (s != VIGIL_OK) {
            vigil_redis_free_replies(rs->replies, got);
            rs->stats.errors++;
            return s;
        }
    }
    /* Check every reply before the first callback: on error, found() is
     * never called. The connection stays in sync (all replies were read). */
    uint64_t nfound = 0;
    for (int i = 0; i < n && s == VIGIL_OK; i++) {
        redisReply *r = rs->replies[i];
        if (r->type == REDIS_REPLY_STRING)
            nfound++;
        else if (r->type == REDIS_REPLY_ERROR)
            s = vigil_error_set(err, VIGIL_ESTORE, "Redis GET of %s key '%.*s' failed: %.*s",
                                keys[i].group_name, (int)(keys[i].keylen > 64 ? 64 : keys[i].keylen),
                                keys[i].key ? keys[i].key : "", (int)r->len, r->str);
        else if (r->type != REDIS_REPLY_NIL)
            s = vigil_error_set(err, VIGIL_ESTORE, "Redis GET of %s key: unexpected reply type %d",
                                keys[i].group_name, r->type);
    }
    if (s == VIGIL_OK) {
        for (int i = 0; i < n; i++) {
            redisReply *r = rs->replies[i];
            if (r->type == REDIS_REPLY_STRING)
                found(ud, i, (const unsigned char *)r->str, r->len);
        }
        rs->stats.keys_found += nfound;
    } else {
        rs->stats.errors++;
    }
    vigil_redis_free_replies(rs->replies, n);
    return s;
}

/* The save's replies could not all be read: say whether EXEC left at all.
 * Unsent bytes mean EXEC never reached the server, which discards an
 * unfinished MULTI on disconnect; otherwise the outcome is unknown. */
static vigil_status save_lost(redis_store *rs, vigil_status s, vigil_error *err)
{
    if (!err || s != VIGIL_EUNAVAILABLE)
        return s;
    char why[sizeof err->msg];
    snprintf(why, sizeof why, "%s", err->msg);
    return vigil_error_set(err, s, "%s (%s)", why,
                           vigil_redis_unsent(rs->conn) ? "before EXEC was sent: nothing written"
                                                        : "after EXEC was sent: outcome unknown, retry");
}

static vigil_status do_save(vigil_store *st, const vigil_store_record *recs, int n,
                            const vigil_redis_offset *offs, int noffs, const vigil_redis_cmd *extra,
                            int nextra, vigil_error *err)
{
    redis_store *rs = (redis_store *)st;
    if (!rs || rs->magic != STORE_MAGIC || n < 0 || (n > 0 && !recs) || noffs < 0 || nextra < 0 ||
        (noffs && !offs) || (nextra && !extra))
        return vigil_error_set(err, VIGIL_EINVAL, "Redis store save: bad arguments");
    if (n + noffs + nextra == 0)
        return VIGIL_OK;
    for (int i = 0; i < noffs; i++)
        if (!offs[i].group_name || strpbrk(offs[i].group_name, "{}") || strlen(offs[i].group_name) > 200 ||
            offs[i].partition < 0)
            return vigil_error_set(err, VIGIL_EINVAL, "Redis store save: bad offset %d", i);
    for (int i = 0; i < nextra; i++)
        if (extra[i].argc <= 0 || !extra[i].argv || !extra[i].lens)
            return vigil_error_set(err, VIGIL_EINVAL, "Redis store commit: extra command %d is empty", i);
    uint64_t nsets = 0, ndels = 0;
    for (int i = 0; i < n; i++) {
        vigil_status s = vrs_check_key(rs, &recs[i].k, err);
        if (s == VIGIL_OK && !recs[i].data && recs[i].len)
            s = vigil_error_set(err, VIGIL_EINVAL, "Redis store save: record %d has no data but length %zu",
                                i, recs[i].len);
        if (s == VIGIL_OK && recs[i].ttl_ms < 0)
            s = vigil_error_set(err, VIGIL_EINVAL, "Redis store save: record %d has a negative TTL", i);
        if (s != VIGIL_OK) {
            rs->stats.errors++;
            return s;
        }
        if (recs[i].data)
            nsets++;
        else
            ndels++;
    }
    const char *multi = "MULTI", *exec = "EXEC";
    size_t ml = 5, el = 4;
    vigil_redis_batch *bt = &rs->batch;
    vigil_redis_batch_reset(bt);
    vigil_redis_batch_add(bt, 1, &multi, &ml);
    for (int i = 0; i < n; i++) {
        const vigil_store_record *rec = &recs[i];
        size_t kl = vrs_build_key(rs, rec->k.group_name, rec->k.key, rec->k.keylen, rs->keybuf);
        const char *av[5];
        size_t al[5];
        int ac = 0;
        char ttl[24];
        if (!rec->data) {
            av[ac] = "DEL"; al[ac++] = 3;
            av[ac] = rs->keybuf; al[ac++] = kl;
        } else {
            av[ac] = "SET"; al[ac++] = 3;
            av[ac] = rs->keybuf; al[ac++] = kl;
            av[ac] = rec->len ? (const char *)rec->data : ""; al[ac++] = rec->len;
            if (rec->ttl_ms > 0) {
                size_t tl = vigil_redis_fmt_i64(ttl, rec->ttl_ms);
                av[ac] = "PX"; al[ac++] = 2;
                av[ac] = ttl; al[ac++] = tl;
            }
        }
        vigil_redis_batch_add(bt, ac, av, al);
    }
    for (int i = 0; i < noffs; i++) {
        char key[600], val[48];   /* prefix <= 256, group <= 200 bytes */
        int kl = vigil_redis_pair_key(rs->prefix, offs[i].group_name, offs[i].partition, "offset", key, sizeof key);
        size_t vl = vigil_redis_fmt_u64(val, offs[i].seq);
        val[vl++] = ' ';
        vl += vigil_redis_fmt_i64(val + vl, offs[i].wm);
        const char *av[3] = { "SET", key, val };
        size_t al[3] = { 3, (size_t)kl, vl };
        vigil_redis_batch_add(bt, 3, av, al);
    }
    for (int i = 0; i < nextra; i++)
        vigil_redis_batch_add(bt, extra[i].argc, extra[i].argv, extra[i].lens);
    vigil_redis_batch_add(bt, 1, &exec, &el);
    vigil_status s = vigil_redis_append_batch(rs->conn, bt, err);
    if (bt->cap > ((size_t)64 << 20))
        vigil_redis_batch_free(bt);   /* an outsized commit does not keep its buffer */
    if (s != VIGIL_OK) {
        vigil_redis_disconnect(rs->conn);   /* never leave half a transaction buffered */
        rs->stats.errors++;
        return s;
    }
    int ncmd = n + noffs + nextra;
    rs->stats.saves++;
    /* ncmd + 2 replies: +OK, ncmd × +QUEUED (or an error), then EXEC's.
     * Read them all, whatever they say, to keep the connection in sync. */
    if (ncmd > n && vigil_fault_due("commit")) {
        /* fault injection (VIGIL_FAULT=commit:N, counted over server
         * commits): the whole transaction is on the wire, its reply unread */
        vigil_redis_flush(rs->conn, NULL);
        vigil_fault_kill("commit");
    }
    for (int i = 0; i < ncmd + 2; i++) {
        redisReply *r = NULL;
        vigil_status rs_ = vigil_redis_read(rs->conn, &r, "save", err);
        if (rs_ != VIGIL_OK) {
            rs->stats.errors++;
            return save_lost(rs, rs_, err);
        }
        if (s == VIGIL_OK) {
            if (r->type == REDIS_REPLY_ERROR)
                s = vigil_error_set(err, VIGIL_ESTORE, "Redis save (%s): %.*s",
                                    i == 0 ? "MULTI" : i == ncmd + 1 ? "EXEC" : "queueing",
                                    (int)r->len, r->str);
            else if (i == 0 && !(r->type == REDIS_REPLY_STATUS && strcmp(r->str, "OK") == 0))
                s = vigil_error_set(err, VIGIL_ESTORE, "Redis save: unexpected reply to MULTI");
            else if (i > 0 && i <= ncmd && !(r->type == REDIS_REPLY_STATUS && strcmp(r->str, "QUEUED") == 0))
                s = vigil_error_set(err, VIGIL_ESTORE, "Redis save: command %d not queued", i - 1);
            else if (i == ncmd + 1) {
                if (r->type == REDIS_REPLY_NIL)
                    s = vigil_error_set(err, VIGIL_ESTORE, "Redis save: transaction aborted");
                else if (r->type != REDIS_REPLY_ARRAY || r->elements != (size_t)ncmd)
                    s = vigil_error_set(err, VIGIL_ESTORE, "Redis save: unexpected reply to EXEC");
                else
                    for (size_t j = 0; j < r->elements && s == VIGIL_OK; j++)
                        if (r->element[j]->type == REDIS_REPLY_ERROR)
                            s = vigil_error_set(err, VIGIL_ESTORE, "Redis save: record %zu: %.*s", j,
                                                (int)r->element[j]->len, r->element[j]->str);
            }
        }
        freeReplyObject(r);
    }
    if (s == VIGIL_OK) {
        rs->stats.keys_saved += nsets;
        rs->stats.keys_deleted += ndels;
    } else {
        rs->stats.errors++;
    }
    return s;
}

static vigil_status rs_load(vigil_store *st, const vigil_store_key *keys, int n,
                            void (*found)(void *ud, int i, const unsigned char *data, size_t len),
                            void *ud, vigil_error *err)
{
    return do_load(st, keys, n, found, ud, err);
}

static vigil_status rs_save(vigil_store *st, const vigil_store_record *recs, int n, vigil_error *err)
{
    return do_save(st, recs, n, NULL, 0, NULL, 0, err);
}

static void rs_destroy(vigil_store *st)
{
    redis_store *rs = (redis_store *)st;
    if (!rs)
        return;
    vigil_redis_destroy(rs->conn);
    vigil_redis_batch_free(&rs->batch);
    free(rs->prefix);
    free(rs->replies);
    rs->magic = 0;
    free(rs);
}

/* ---- public ------------------------------------------------------------ */

vigil_status vigil_redis_store_create_opts(const char *url, const char *prefix,
                                           const vigil_redis_opts *opts, vigil_store **out,
                                           vigil_error *err)
{
    if (!out)
        return vigil_error_set(err, VIGIL_EINVAL, "vigil_redis_store_create: out is NULL");
    *out = NULL;
    if (!prefix)
        prefix = "vigil";
    if (strpbrk(prefix, "{}") || strlen(prefix) > 256)
        return vigil_error_set(err, VIGIL_EINVAL,
                               "Redis key prefix '%.64s' must have no '{' or '}' and at most 256 bytes",
                               prefix);
    redis_store *rs = calloc(1, sizeof *rs);
    if (!rs)
        return vigil_error_set(err, VIGIL_ENOMEM, "Redis store: out of memory");
    vigil_status s = vigil_redis_create(url, opts, &rs->conn, err);
    if (s != VIGIL_OK) {
        free(rs);
        return s;
    }
    rs->prefix = strdup(prefix);
    if (!rs->prefix) {
        vigil_redis_destroy(rs->conn);
        free(rs);
        return vigil_error_set(err, VIGIL_ENOMEM, "Redis store: out of memory");
    }
    rs->prefixlen = strlen(prefix);
    rs->magic = STORE_MAGIC;
    rs->base.load = rs_load;
    rs->base.save = rs_save;
    rs->base.destroy = rs_destroy;
    s = vigil_redis_connect(rs->conn, err);
    if (s != VIGIL_OK) {
        rs_destroy(&rs->base);
        return s;
    }
    *out = &rs->base;
    return VIGIL_OK;
}

vigil_status vigil_redis_store_create(const char *url, const char *prefix, vigil_store **out,
                                      vigil_error *err)
{
    return vigil_redis_store_create_opts(url, prefix, NULL, out, err);
}

vigil_status vigil_redis_store_stats(const vigil_store *st, vigil_redis_stats *out)
{
    const redis_store *rs = (const redis_store *)st;
    if (!rs || rs->magic != STORE_MAGIC || !out)
        return VIGIL_EINVAL;
    vigil_redis_counters c;
    vigil_redis_get_counters(rs->conn, &c);
    *out = rs->stats;
    out->round_trips = c.round_trips;
    out->reconnects = c.reconnects;
    return VIGIL_OK;
}

/* ---- the server's commit: state, offsets and extra commands in one transaction ---- */

vigil_status vigil_redis_store_set_partitions(vigil_store *st, int partitions)
{
    redis_store *rs = (redis_store *)st;
    if (!rs || rs->magic != STORE_MAGIC || partitions < 0 || partitions > 65536)
        return VIGIL_EINVAL;
    rs->partitions = partitions;
    return VIGIL_OK;
}

vigil_status vigil_redis_store_commit(vigil_store *st, const vigil_store_record *recs, int n,
                                      const vigil_redis_offset *offs, int noffs,
                                      const vigil_redis_cmd *extra, int nextra, vigil_error *err)
{
    return do_save(st, recs, n, offs, noffs, extra, nextra, err);
}

static vigil_status do_offsets(redis_store *rs, const char *const *groups, int ngroups, int partitions,
                               uint64_t *seqs, int64_t *wms, vigil_error *err)
{
    /* the partition count is fixed for a deployment: offsets and hash tags depend on it */
    char mkey[300], pv[16];
    int mkl = snprintf(mkey, sizeof mkey, "%s:partitions", rs->prefix);
    int pvl = snprintf(pv, sizeof pv, "%d", partitions);
    const char *sv[4] = { "SET", mkey, pv, "NX" };
    size_t sl[4] = { 3, (size_t)mkl, (size_t)pvl, 2 };
    const char *gv[2] = { "GET", mkey };
    size_t gl[2] = { 3, (size_t)mkl };
    vigil_status s = vrs_queue(rs, 4, sv, sl, err);
    if (s == VIGIL_OK)
        s = vrs_queue(rs, 2, gv, gl, err);
    for (int gi = 0; gi < ngroups && s == VIGIL_OK; gi++)
        for (int p = 0; p < partitions && s == VIGIL_OK; p++) {
            char key[600];
            int kl = vigil_redis_pair_key(rs->prefix, groups[gi], p, "offset", key, sizeof key);
            if (kl < 0) {
                s = vigil_error_set(err, VIGIL_EINVAL, "Redis: no offset key for group '%.64s'", groups[gi]);
                break;
            }
            const char *av[2] = { "GET", key };
            size_t al[2] = { 3, (size_t)kl };
            s = vrs_queue(rs, 2, av, al, err);
        }
    if (s != VIGIL_OK) {
        vigil_redis_disconnect(rs->conn);
        return s;
    }
    int total = 2 + ngroups * partitions;
    for (int i = 0; i < total; i++) {
        redisReply *r = NULL;
        vigil_status rd = vigil_redis_read(rs->conn, &r, "reading offsets failed", err);
        if (rd != VIGIL_OK)
            return rd;
        if (s == VIGIL_OK && r->type == REDIS_REPLY_ERROR)
            s = vigil_error_set(err, VIGIL_ESTORE, "Redis: reading offsets: %.*s", (int)r->len, r->str);
        else if (s == VIGIL_OK && i == 1 && r->type == REDIS_REPLY_STRING &&
                 ((size_t)pvl != r->len || memcmp(r->str, pv, r->len) != 0))
            s = vigil_error_set(err, VIGIL_EINVAL,
                                "Redis prefix '%s' holds state made with %.*s partitions, not %d: partitions "
                                "are fixed for a deployment (set partitions = %.*s, or use another prefix)",
                                rs->prefix, (int)r->len, r->str, partitions, (int)r->len, r->str);
        else if (s == VIGIL_OK && i >= 2) {
            unsigned long long q = 0;
            long long w = INT64_MIN;
            if (r->type == REDIS_REPLY_STRING) {
                char buf[64];
                size_t l = r->len < sizeof buf - 1 ? r->len : sizeof buf - 1;
                memcpy(buf, r->str, l);
                buf[l] = 0;
                if (sscanf(buf, "%llu %lld", &q, &w) != 2)
                    s = vigil_error_set(err, VIGIL_ESTORE, "Redis: offset record '%s' is not '<seq> <watermark>'", buf);
            }
            seqs[i - 2] = q;
            wms[i - 2] = w;
        }
        freeReplyObject(r);
    }
    return s;
}

vigil_status vigil_redis_store_load_offsets(vigil_store *st, const char *const *groups, int ngroups,
                                            int partitions, uint64_t *seqs, int64_t *wms, vigil_error *err)
{
    redis_store *rs = (redis_store *)st;
    if (!rs || rs->magic != STORE_MAGIC || ngroups < 0 || partitions < 1 || !seqs || !wms)
        return vigil_error_set(err, VIGIL_EINVAL, "Redis store: bad arguments to load_offsets");
    return do_offsets(rs, groups, ngroups, partitions, seqs, wms, err);
}
