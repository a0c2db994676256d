/* redis_pairs.c — cluster mode's commit (issue 14): one fenced Lua script per
 * (group, partition) pair, all pairs of a batch pipelined in one round trip.
 *
 * Why it exists: with several instances, a pair may change owners while a
 * worker still holds a batch of it. The instance that took the pair INCRed
 * the pair's epoch; a commit carries the epoch its owner got, and Redis
 * applies it only if the epoch is still that one (a fencing token, as in
 * Kleppmann's "How to do distributed locking"). A MULTI/EXEC cannot make a
 * write depend on a read, a script can: the script reads the epoch, then
 * the offset, then writes the key states, the alerts (XADD to the pair's
 * outbox stream) and the offset — all keys under the pair's hash tag, so the
 * call is single-slot. Everything about the call's shape (KEYS, the stale
 * answer, retries) is in redis_store.h; the connection is the store's
 * (redis_store_int.h), through the one Redis layer (redis.h). */
#include "redis_store_int.h"
#include "server/common/fault.h"
#include "vigil/event.h"

#include <inttypes.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* KEYS: 1 epoch, 2 offset, 3 outbox stream, 4.. state keys.
 * ARGV: 1 expected epoch, 2 seq, 3 wm, 4 records, 5 outbox entries,
 * 6 strings per entry, then 3 per record (op S|D, value, ttl ms or 0), then
 * the entries' field lists. The offset comparison: seq on the decimal
 * strings (exact for any uint64), wm as a number (ms fit a double exactly).
 * Stored offset past (seq, wm): nothing written; equal: the records only
 * (a retry, or keys changed with no offset move); before it: everything.
 * Nothing is written before every failure that can be foreseen is ruled
 * out: the outbox key must be a stream (or absent; SET and DEL take any
 * type), and the offset is written first: out of memory, Redis refuses a
 * script's first write that may grow memory (SET: "OOM …") and lets every
 * write after a first one through, so a new commit is all or nothing. A
 * commit half applied would be worse than a duplicate: its retry finds the
 * offset moved and appends no entry.
 * (A "#!lua" flags line would check before the script starts, but exists
 * only from Redis 7 on.) */
static const char SCRIPT[] =
    "local cur = redis.call('GET', KEYS[1]) or '0'\n"
    "if cur ~= ARGV[1] then return redis.error_reply('STALE ' .. cur) end\n"
    "local nrec, nout, nf = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])\n"
    "local c = -1\n"
    "local off = redis.call('GET', KEYS[2])\n"
    "if off then\n"
    "  local s, w = string.match(off, '^(%d+) (%-?%d+)$')\n"
    "  if s then\n"
    "    local q = ARGV[2]\n"
    "    c = 0\n"
    "    if #s ~= #q then c = (#s > #q) and 1 or -1 elseif s ~= q then c = (s > q) and 1 or -1 end\n"
    "    if c == 0 then local a, b = tonumber(w), tonumber(ARGV[3])\n"
    "      if a ~= b then c = (a > b) and 1 or -1 end end\n"
    "  end\n"
    "end\n"
    "if c > 0 then return redis.status_reply('DONE') end\n"
    "if c < 0 and nout > 0 then\n"
    "  local t = redis.call('TYPE', KEYS[3]).ok\n"
    "  if t ~= 'stream' and t ~= 'none' then return redis.error_reply('WRONGTYPE ' .. KEYS[3] .. ' is a ' .. t) end\n"
    "end\n"
    "if c < 0 then redis.call('SET', KEYS[2], ARGV[2] .. ' ' .. ARGV[3]) end\n"
    "local a = 7\n"
    "for i = 1, nrec do\n"
    "  if ARGV[a] == 'D' then redis.call('DEL', KEYS[3 + i])\n"
    "  elseif ARGV[a + 2] ~= '0' then redis.call('SET', KEYS[3 + i], ARGV[a + 1], 'PX', ARGV[a + 2])\n"
    "  else redis.call('SET', KEYS[3 + i], ARGV[a + 1]) end\n"
    "  a = a + 3\n"
    "end\n"
    "if c == 0 then return redis.status_reply('DONE') end\n"
    "for i = 1, nout do\n"
    "  redis.call('XADD', KEYS[3], '*', unpack(ARGV, a, a + nf - 1))\n"
    "  a = a + nf\n"
    "end\n"
    "return redis.status_reply('OK')\n";

static char script_sha[41];
static pthread_once_t sha_once = PTHREAD_ONCE_INIT;

static void sha_init(void)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdl = 0;
    if (EVP_Digest(SCRIPT, sizeof SCRIPT - 1, md, &mdl, EVP_sha1(), NULL) != 1 || mdl != 20)
        return;   /* script_sha stays "": every call goes by EVAL */
    for (unsigned i = 0; i < 20; i++)
        snprintf(script_sha + 2 * i, 3, "%02x", md[i]);
}

int vigil_redis_pair_key(const char *prefix, const char *group, int partition, const char *suffix, char *buf,
                         size_t n)
{
    if (!prefix || !group || !*group || strpbrk(group, "{}") || partition < 0 || !suffix || !buf)
        return -1;
    int l = snprintf(buf, n, "%s:{%s:p%d}:%s", prefix, group, partition, suffix);
    return l < 0 || (size_t)l >= n ? -1 : l;
}

/* ---- building one pair's call ------------------------------------------- */

typedef struct built {
    int argc;
    const char **argv;
    size_t *lens;
} built;

/* Bytes of text one pair's call needs (keys and numbers), generously. */
static size_t text_need(const redis_store *rs, const vigil_redis_pair_commit *p)
{
    size_t g = strlen(p->group_name), n = 3 * (rs->prefixlen + g + 48) + 8 * 24;
    for (int i = 0; i < p->nrecs; i++)
        n += rs->prefixlen + g + 32 + p->recs[i].k.keylen + 24;
    return n;
}

static vigil_status check_pair(const redis_store *rs, const vigil_redis_pair_commit *p, int nf, vigil_error *err)
{
    if (!p->group_name || !*p->group_name || strpbrk(p->group_name, "{}") || strlen(p->group_name) > 200 ||
        p->partition < 0 || p->partition >= rs->partitions || p->nrecs < 0 || (p->nrecs && !p->recs) ||
        p->noutbox < 0 || (p->noutbox && !p->outbox))
        return vigil_error_set(err, VIGIL_EINVAL, "Redis pair commit: bad pair (%s, %d)",
                               p->group_name ? p->group_name : "(null)", p->partition);
    for (int i = 0; i < p->nrecs; i++) {
        const vigil_store_record *r = &p->recs[i];
        vigil_status s = vrs_check_key(rs, &r->k, err);
        if (s != VIGIL_OK)
            return s;
        if (strcmp(r->k.group_name, p->group_name) != 0 ||
            vigil_hash(r->k.key, r->k.keylen) % (uint64_t)rs->partitions != (uint64_t)p->partition)
            return vigil_error_set(err, VIGIL_EINVAL,
                                   "Redis pair commit: record %d (group %s) is not in pair (%s, %d)", i,
                                   r->k.group_name, p->group_name, p->partition);
        if ((!r->data && r->len) || r->ttl_ms < 0)
            return vigil_error_set(err, VIGIL_EINVAL, "Redis pair commit: record %d: no data but a length, or "
                                   "a negative TTL", i);
    }
    for (int i = 0; i < p->noutbox; i++)
        if (p->outbox[i].argc != nf || nf <= 0 || nf % 2 || !p->outbox[i].argv || !p->outbox[i].lens)
            return vigil_error_set(err, VIGIL_EINVAL, "Redis pair commit (%s, %d): outbox entry %d is not a "
                                   "field list of %d strings like the first", p->group_name, p->partition, i, nf);
    return VIGIL_OK;
}

/* Fill b with EVALSHA <sha> <numkeys> KEYS… ARGV… for pair p; text from *t
 * (advanced). */
static void build_pair(const redis_store *rs, const vigil_redis_pair_commit *p, int nf, built *b, char **t)
{
    int ac = 0;
    size_t kn = rs->prefixlen + strlen(p->group_name) + 48;   /* as text_need */
    const char **av = b->argv;
    size_t *al = b->lens;
#define PUT(s, l) (av[ac] = (s), al[ac] = (l), ac++)
#define PUTT(l) (PUT(*t, (size_t)(l)), *t += (l) + 1)
    PUT("EVALSHA", 7);
    PUT(script_sha, 40);
    PUTT(snprintf(*t, 24, "%d", 3 + p->nrecs));
    PUTT(vigil_redis_pair_key(rs->prefix, p->group_name, p->partition, "epoch", *t, kn));
    PUTT(vigil_redis_pair_key(rs->prefix, p->group_name, p->partition, "offset", *t, kn));
    PUTT(vigil_redis_pair_key(rs->prefix, p->group_name, p->partition, "outbox", *t, kn));
    for (int i = 0; i < p->nrecs; i++) {
        const vigil_store_record *r = &p->recs[i];
        size_t kl = vrs_build_key(rs, r->k.group_name, r->k.key, r->k.keylen, *t);
        PUT(*t, kl);
        *t += kl + 1;
    }
    PUTT(snprintf(*t, 24, "%" PRIu64, p->epoch));
    PUTT(snprintf(*t, 24, "%" PRIu64, p->seq));
    PUTT(snprintf(*t, 24, "%" PRId64, p->wm));
    PUTT(snprintf(*t, 24, "%d", p->nrecs));
    PUTT(snprintf(*t, 24, "%d", p->noutbox));
    PUTT(snprintf(*t, 24, "%d", nf));
    for (int i = 0; i < p->nrecs; i++) {
        const vigil_store_record *r = &p->recs[i];
        if (!r->data) {
            PUT("D", 1);
            PUT("", 0);
            PUT("0", 1);
        } else {
            PUT("S", 1);
            PUT(r->len ? (const char *)r->data : "", r->len);
            PUTT(snprintf(*t, 24, "%lld", (long long)r->ttl_ms));
        }
    }
    for (int i = 0; i < p->noutbox; i++)
        for (int f = 0; f < nf; f++)
            PUT(p->outbox[i].argv[f], p->outbox[i].lens[f]);
#undef PUTT
#undef PUT
    b->argc = ac;
}

/* ---- reading the answers ------------------------------------------------ */

/* One pair's answer into *res; 1 when it must be redone with EVAL. */
static int classify(const redisReply *r, vigil_pair_result *res)
{
    memset(res, 0, sizeof *res);
    if (r->type == REDIS_REPLY_STATUS && r->str && !strcmp(r->str, "OK")) {
        res->status = VIGIL_OK;
    } else if (r->type == REDIS_REPLY_STATUS && r->str && !strcmp(r->str, "DONE")) {
        res->status = VIGIL_OK;
        res->already = 1;
    } else if (vigil_redis_reply_is(r, "NOSCRIPT")) {
        return 1;
    } else if (vigil_redis_reply_is(r, "STALE")) {
        res->status = VIGIL_ESTALE;
        res->epoch = strtoull(r->str + 5, NULL, 10);
    } else {
        res->status = VIGIL_ESTORE;
    }
    return 0;
}

/* Send calls[idx[0..n)] (prefixed by SCRIPT LOAD when load) and read the
 * answers into res; redo[] gets the pairs that answered NOSCRIPT. On a
 * transport error: VIGIL_EUNAVAILABLE (the caller marks every pair). */
static vigil_status round_trip(redis_store *rs, const vigil_redis_pair_commit *pc, built *calls, const int *idx,
                               int n, int load, vigil_pair_result *res, int *redo, int *nredo, vigil_error *err)
{
    *nredo = 0;
    vigil_status s = VIGIL_OK;
    if (load) {
        const char *av[3] = { "SCRIPT", "LOAD", SCRIPT };
        size_t al[3] = { 6, 4, sizeof SCRIPT - 1 };
        s = vrs_queue(rs, 3, av, al, err);
    }
    for (int i = 0; i < n && s == VIGIL_OK; i++)
        s = vrs_queue(rs, calls[idx[i]].argc, calls[idx[i]].argv, calls[idx[i]].lens, err);
    if (s != VIGIL_OK) {
        vigil_redis_disconnect(rs->conn);   /* never leave half a pipeline buffered */
        return s;
    }
    if (vigil_fault_due("commit")) {
        /* crash tests (VIGIL_FAULT=commit:N): the commit is on the wire, its answer unread */
        vigil_redis_flush(rs->conn, NULL);
        vigil_fault_kill("commit");
    }
    for (int i = -load; i < n; i++) {
        redisReply *r = NULL;
        s = vigil_redis_read(rs->conn, &r, "pair commit", err);
        if (s != VIGIL_OK)
            return s;
        if (i < 0) {
            if (r->type == REDIS_REPLY_STRING && r->len == 40 && !memcmp(r->str, script_sha, 40)) {
                vigil_redis_counters c;
                vigil_redis_get_counters(rs->conn, &c);
                rs->script_conn = c.connects;
            }
        } else {
            const vigil_redis_pair_commit *p = &pc[idx[i]];
            if (classify(r, &res[idx[i]])) {
                redo[(*nredo)++] = idx[i];
            } else if (res[idx[i]].status == VIGIL_ESTORE) {
                vigil_error_set(err, VIGIL_ESTORE, "Redis pair commit (%s, %d): %.*s", p->group_name,
                                p->partition, r->str ? (int)(r->len > 300 ? 300 : r->len) : 0, r->str ? r->str : "");
            }
        }
        freeReplyObject(r);
    }
    return VIGIL_OK;
}

vigil_status vigil_redis_store_commit_pairs(vigil_store *st, const vigil_redis_pair_commit *pc, int npairs,
                                            vigil_pair_result *res, vigil_error *err)
{
    redis_store *rs = (redis_store *)st;
    if (!rs || rs->magic != STORE_MAGIC || npairs < 0 || (npairs && (!pc || !res)))
        return vigil_error_set(err, VIGIL_EINVAL, "Redis pair commit: bad arguments");
    if (npairs == 0)
        return VIGIL_OK;
    for (int i = 0; i < npairs; i++)
        memset(&res[i], 0, sizeof res[i]);
    pthread_once(&sha_once, sha_init);
    int nf = 0;
    for (int i = 0; i < npairs && !nf; i++)
        if (pc[i].noutbox > 0 && pc[i].outbox)
            nf = pc[i].outbox[0].argc;
    vigil_status s = VIGIL_OK;
    if (rs->partitions <= 0)
        s = vigil_error_set(err, VIGIL_EINVAL, "Redis pair commit: the store has no partitions "
                            "(vigil_redis_store_set_partitions)");
    size_t text = 0, nargs = 0;
    for (int i = 0; i < npairs && s == VIGIL_OK; i++) {
        s = check_pair(rs, &pc[i], nf, err);
        text += text_need(rs, &pc[i]);
        nargs += 12 + 4 * (size_t)pc[i].nrecs + (size_t)pc[i].noutbox * (size_t)nf;
    }
    if (s != VIGIL_OK) {
        for (int i = 0; i < npairs; i++)
            res[i].status = s;
        rs->stats.errors++;
        return s;
    }
    /* one allocation: the calls, their argv/lens, the text and the index lists */
    size_t bytes = (size_t)npairs * sizeof(built) + nargs * (sizeof(char *) + sizeof(size_t)) +
                   2 * (size_t)npairs * sizeof(int) + text;
    char *mem = malloc(bytes);
    if (!mem) {
        for (int i = 0; i < npairs; i++)
            res[i].status = VIGIL_ENOMEM;
        rs->stats.errors++;
        return vigil_error_set(err, VIGIL_ENOMEM, "Redis pair commit: out of memory (%zu bytes)", bytes);
    }
    built *calls = (built *)mem;
    const char **argvs = (const char **)(calls + npairs);
    size_t *lens = (size_t *)(argvs + nargs);
    int *idx = (int *)(lens + nargs), *redo = idx + npairs;
    char *t = (char *)(redo + npairs);
    for (int i = 0; i < npairs; i++) {
        calls[i].argv = argvs;
        calls[i].lens = lens;
        build_pair(rs, &pc[i], nf, &calls[i], &t);
        argvs += calls[i].argc;
        lens += calls[i].argc;
        idx[i] = i;
    }
    rs->stats.saves++;
    s = vigil_redis_connect(rs->conn, err);
    int n = npairs, nredo = 0;
    for (int pass = 0; s == VIGIL_OK && pass < 2 && n > 0; pass++) {
        vigil_redis_counters c;
        vigil_redis_get_counters(rs->conn, &c);
        int load = pass == 0 && script_sha[0] && rs->script_conn != c.connects;
        if (pass == 1 || !script_sha[0])
            for (int i = 0; i < n; i++) {   /* NOSCRIPT (nothing ran) or no SHA: the script itself */
                calls[idx[i]].argv[0] = "EVAL";
                calls[idx[i]].lens[0] = 4;
                calls[idx[i]].argv[1] = SCRIPT;
                calls[idx[i]].lens[1] = sizeof SCRIPT - 1;
            }
        s = round_trip(rs, pc, calls, idx, n, load, res, redo, &nredo, err);
        memcpy(idx, redo, (size_t)nredo * sizeof *idx);
        n = nredo;
    }
    if (s == VIGIL_OK && n > 0)   /* NOSCRIPT answered to EVAL: cannot happen */
        for (int i = 0; i < n; i++)
            res[idx[i]].status = VIGIL_ESTORE;
    free(mem);
    if (s != VIGIL_OK) {
        for (int i = 0; i < npairs; i++)
            res[i].status = s;
        rs->stats.errors++;
        if (s == VIGIL_EUNAVAILABLE && err) {
            char why[sizeof err->msg];
            snprintf(why, sizeof why, "%s", err->msg);
            vigil_error_set(err, s, "%s (pair commit: outcome unknown, retry the batch)", why);
        }
        return s;
    }
    vigil_status first = VIGIL_OK;
    for (int i = 0; i < npairs; i++) {
        if (res[i].status == VIGIL_OK && !res[i].already)
            for (int k = 0; k < pc[i].nrecs; k++) {
                if (pc[i].recs[k].data)
                    rs->stats.keys_saved++;
                else
                    rs->stats.keys_deleted++;
            }
        if (res[i].status != VIGIL_OK && first == VIGIL_OK) {
            first = res[i].status;
            if (first == VIGIL_ESTALE)
                vigil_error_set(err, first, "Redis pair commit (%s, %d): stale epoch %" PRIu64 " (Redis holds %"
                                PRIu64 "): another instance owns the pair; nothing of it was written",
                                pc[i].group_name, pc[i].partition, pc[i].epoch, res[i].epoch);
        }
    }
    if (first != VIGIL_OK)
        rs->stats.errors++;
    return first;
}

/* ---- one pair's offset and epoch ------------------------------------------ */

/* GET or INCR of one pair key; *reply the answer (caller frees). */
static vigil_status pair_cmd(redis_store *rs, const char *verb, const char *group, int partition,
                             const char *suffix, redisReply **reply, vigil_error *err)
{
    char key[600];
    int kl;
    if (!rs || rs->magic != STORE_MAGIC ||
        (kl = vigil_redis_pair_key(rs->prefix, group, partition, suffix, key, sizeof key)) < 0)
        return vigil_error_set(err, VIGIL_EINVAL, "Redis store: bad pair (%s, %d)", group ? group : "(null)",
                               partition);
    const char *av[2] = { verb, key };
    size_t al[2] = { strlen(verb), (size_t)kl };
    vigil_redis_cmd c = { 2, av, al };
    vigil_status s = vigil_redis_command(rs->conn, &c, reply, suffix, err);
    if (s == VIGIL_OK && (s = vigil_redis_reply_check(rs->conn, *reply, suffix, err)) != VIGIL_OK) {
        freeReplyObject(*reply);
        *reply = NULL;
    }
    if (s != VIGIL_OK)
        rs->stats.errors++;
    return s;
}

vigil_status vigil_redis_store_load_pair_offset(vigil_store *st, const char *group_name, int partition,
                                                uint64_t *seq, int64_t *wm, vigil_error *err)
{
    if (!seq || !wm)
        return vigil_error_set(err, VIGIL_EINVAL, "Redis store: NULL offset");
    *seq = 0;
    *wm = INT64_MIN;
    redisReply *r = NULL;
    vigil_status s = pair_cmd((redis_store *)st, "GET", group_name, partition, "offset", &r, err);
    if (s != VIGIL_OK)
        return s;
    if (r->type == REDIS_REPLY_STRING) {
        char buf[64];
        unsigned long long q;
        long long w;
        size_t l = r->len < sizeof buf - 1 ? r->len : sizeof buf - 1;
        memcpy(buf, r->str, l);
        buf[l] = 0;
        if (sscanf(buf, "%llu %lld", &q, &w) != 2)
            s = vigil_error_set(err, VIGIL_ESTORE, "Redis: offset of (%s, %d) '%s' is not '<seq> <watermark>'",
                                group_name, partition, buf);
        else
            *seq = q, *wm = w;
    }
    freeReplyObject(r);
    return s;
}

static vigil_status epoch_of(redis_store *rs, const char *verb, const char *group, int partition, uint64_t *epoch,
                             vigil_error *err)
{
    if (!epoch)
        return vigil_error_set(err, VIGIL_EINVAL, "Redis store: NULL epoch");
    *epoch = 0;
    redisReply *r = NULL;
    vigil_status s = pair_cmd(rs, verb, group, partition, "epoch", &r, err);
    if (s != VIGIL_OK)
        return s;
    if (r->type == REDIS_REPLY_INTEGER && r->integer >= 0)
        *epoch = (uint64_t)r->integer;
    else if (r->type == REDIS_REPLY_STRING)
        *epoch = strtoull(r->str, NULL, 10);
    else if (r->type != REDIS_REPLY_NIL)
        s = vigil_error_set(err, VIGIL_ESTORE, "Redis: epoch of (%s, %d): unexpected reply", group, partition);
    freeReplyObject(r);
    return s;
}

vigil_status vigil_redis_store_epoch_get(vigil_store *st, const char *group_name, int partition, uint64_t *epoch,
                                         vigil_error *err)
{
    return epoch_of((redis_store *)st, "GET", group_name, partition, epoch, err);
}

vigil_status vigil_redis_store_epoch_incr(vigil_store *st, const char *group_name, int partition,
                                          uint64_t *epoch, vigil_error *err)
{
    return epoch_of((redis_store *)st, "INCR", group_name, partition, epoch, err);
}
