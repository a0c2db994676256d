/* outbox_pairs.c — cluster mode's outbox: the streams of the pairs this
 * instance owns, read as one outbox by the one dispatcher (outbox.h).
 *
 * Why it exists: with several instances (issue 14) each (group, partition)
 * pair's alerts are appended to the pair's own stream in the pair's fenced
 * commit (vigil_redis_store_commit_pairs), and webhooks for them must leave
 * from the pair's owner, which changes. The dispatcher knows one outbox per
 * process; this file makes the owned pairs' streams look like one: pairs
 * come and go with vigil_outbox_pairs_add/remove, and a position names its
 * stream ("<slot>/<stream id>", slot unique to one add()).
 *
 * Per endpoint and pair the reading is the Redis backend's (outbox_redis.c):
 * a consumer group named after the endpoint, created at 0 (MKSTREAM) before
 * the endpoint's first read of the pair; consumer "vigil"; first the
 * pending entries after the last one given out (from 0 after an add: what a
 * dead owner read and never acked), then new ones (">"), for all the pairs
 * in ONE XREADGROUP (several streams), blocking at most
 * VIGIL_OUTBOX_PAIRS_BLOCK_MS. Entries of one pair come out in stream
 * order; a key lives in one pair, so per-key order holds.
 *
 * The dispatcher passes the position after which it wants entries: the ref
 * of the last entry it took. A read returns entries of several streams, so
 * one position cannot say where each stream stands; instead this file
 * remembers what the previous read returned, and when `after` is not its
 * last entry (the dispatcher could not take them all, e.g. out of memory),
 * each stream of the untaken entries goes back to just before its first
 * untaken one (they are still pending: the next read scans them again).
 * "" rewinds everything (a dispatcher that starts over).
 *
 * Fencing of reads: remove() marks the pair and waits for the reads that
 * include it to finish, so after it returns no entry of the pair reaches
 * the dispatcher and no later XREADGROUP of ours claims one (the next owner
 * finds every entry we claimed in the group's pending list). Acks and trims
 * use the Redis backend's connections (vrob_get); dead letters and their
 * list its dead-letter stream (outbox_redis_dead.c). */
#define _GNU_SOURCE
#include "outbox_redis_int.h"
#include "server/state/redis_store.h"
#include "server/common/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define POB_MAGIC 0x50424f58u     /* "XOBP" */
#define CONSUMER "vigil"
#define REMOVED_KEEP 256          /* removed pairs remembered for late acks */
#define PEL_PAGES 16              /* pages of deleted pending entries skipped per read */
#define TRIM_EVERY_MS 1000
#define MAX_EPS 64

typedef struct pep {              /* one endpoint's reading of one pair */
    sid given;                    /* the newest entry given out (0-0: none) */
    int scanned;                  /* nothing pending after `given`: read ">" */
    int ready;                    /* its consumer group exists */
} pep;

typedef struct ppair {
    unsigned slot;
    char *group, *stream;
    int part;
    int removed, inuse;           /* inuse: reads running that include it */
    pep *eps;                     /* [neps] */
} ppair;

typedef struct gref {
    unsigned slot;
    sid id;
} gref;

typedef struct pend {
    char name[MAX_EP_NAME + 1];
    gref *last;                   /* what the previous read returned, in order */
    int nlast, caplast;
} pend;

typedef struct pob {
    vigil_outbox base;            /* first */
    uint32_t magic;
    rob *inner;                   /* connections, names (trimming), dead letters */
    char *prefix;
    pthread_mutex_t mu;           /* everything below */
    pthread_cond_t cv;            /* a pair added; a read that held a removed pair ended */
    ppair **pairs;
    int npairs, cappairs, nremoved;
    unsigned next_slot;
    pend *eps;
    int neps;
    long long last_trim_ms;
} pob;

/* One pair in one read: a copy of its state, written back at the end. */
typedef struct view {
    ppair *p;
    pep st, orig;
    int raw;                      /* entries in this page's reply */
} view;

static long long mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "<slot>/<ms>-<seq>" → r; -1 when malformed. */
static int ref_parse(const char *s, gref *r) {
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (end == s || *end != '/' || errno || v > 0xffffffffu) return -1;
    r->slot = (unsigned)v;
    return sid_parse(end + 1, strlen(end + 1), &r->id);
}

static int ep_index(const pob *o, const char *ep) {
    for (int i = 0; i < o->neps; i++)
        if (!strcmp(o->eps[i].name, ep)) return i;
    return -1;
}

/* The pair added as slot (removed ones included); NULL when unknown. mu held. */
static ppair *by_slot(pob *o, unsigned slot) {
    for (int i = 0; i < o->npairs; i++)
        if (o->pairs[i]->slot == slot) return o->pairs[i];
    return NULL;
}

static void pair_free(ppair *p) {
    if (!p) return;
    free(p->group);
    free(p->stream);
    free(p->eps);
    free(p);
}

/* The reader of endpoint ei did not take everything the previous read gave
 * (or starts over: aft NULL). mu held. */
static void rewind_ep(pob *o, int ei, const gref *aft) {
    pend *e = &o->eps[ei];
    if (!aft) {
        for (int i = 0; i < o->npairs; i++) {
            o->pairs[i]->eps[ei].given = (sid){0, 0};
            o->pairs[i]->eps[ei].scanned = 0;
        }
        e->nlast = 0;
        return;
    }
    int j = -1;
    for (int k = 0; k < e->nlast && j < 0; k++)
        if (e->last[k].slot == aft->slot && sid_cmp(e->last[k].id, aft->id) == 0) j = k;
    for (int k = j + 1; k < e->nlast; k++) {
        ppair *p = by_slot(o, e->last[k].slot);
        if (!p || p->removed) continue;
        sid prev = {0, 0};
        sid_prev(e->last[k].id, &prev);   /* 0-0 stays 0-0: from the start */
        if (sid_cmp(prev, p->eps[ei].given) < 0) p->eps[ei].given = prev;
        p->eps[ei].scanned = 0;
    }
    e->nlast = 0;
}

/* ---- reading ------------------------------------------------------------- */

static view *view_of(view *v, int nv, const redisReply *name) {
    if (!name || name->type != REDIS_REPLY_STRING) return NULL;
    for (int i = 0; i < nv; i++)
        if (strlen(v[i].p->stream) == name->len && !memcmp(v[i].p->stream, name->str, name->len)) return &v[i];
    return NULL;
}

/* XREADGROUP GROUP ep vigil COUNT max [BLOCK ms] STREAMS <streams of sel> <ids>;
 * on NOGROUP (Redis lost the group) the groups are created and it is sent
 * once more. *out the reply (caller frees). */
static vigil_status xreadgroup(call *k, const char *ep, view *v, const int *sel, int nsel, const char *const *ids,
                               int max, int block_ms, redisReply **out, vigil_error *err) {
    int argc = 8 + (block_ms > 0 ? 2 : 0) + 2 * nsel;
    const char **av = malloc((size_t)argc * sizeof *av);
    size_t *al = malloc((size_t)argc * sizeof *al);
    *out = NULL;
    if (!av || !al) {
        free(av);
        free(al);
        return vigil_error_set(err, VIGIL_ENOMEM, "pair outbox: out of memory");
    }
    char cnt[16], blk[16];
    snprintf(cnt, sizeof cnt, "%d", max);
    snprintf(blk, sizeof blk, "%d", block_ms);
    int ac = 0;
#define ARG(s) (av[ac] = (s), al[ac] = strlen(av[ac]), ac++)
    ARG("XREADGROUP"); ARG("GROUP"); ARG(ep); ARG(CONSUMER); ARG("COUNT"); ARG(cnt);
    if (block_ms > 0) {
        ARG("BLOCK"); ARG(blk);
    }
    ARG("STREAMS");
    for (int i = 0; i < nsel; i++) ARG(v[sel[i]].p->stream);
    for (int i = 0; i < nsel; i++) ARG(ids[i]);
#undef ARG
    vigil_status s = VIGIL_OK;
    for (int attempt = 0; attempt < 2; attempt++) {
        redisReply *r = NULL;
        if (block_ms > 0) vigil_redis_set_wait(k->r, block_ms);
        s = vrob_cmd(k, &r, 1, ac, av, al, err);
        if (block_ms > 0) vigil_redis_set_wait(k->r, 0);
        if (s == VIGIL_ESTORE && is_err(r, "NOGROUP") && attempt == 0) {
            rfree(r);
            for (int i = 0; i < nsel && (s = vrob_create_group(k, v[sel[i]].p->stream, ep, err)) == VIGIL_OK; i++) {}
            if (s != VIGIL_OK) break;
            continue;
        }
        if (s == VIGIL_OK) *out = r;
        else rfree(r);
        break;
    }
    free(av);
    free(al);
    return s;
}

/* Take the entries of one XREADGROUP reply into out[*got..max). In a
 * pending-list scan deleted entries come back with nil fields: acked and
 * skipped. A stream whose entries did not all fit goes back to scanning its
 * pending list from the last one given out. */
static vigil_status take_reply(call *k, const char *ep, const redisReply *r, view *v, int nv,
                               vigil_alert_record *out, int max, int *got, vigil_error *err) {
    for (size_t si = 0; r && r->type == REDIS_REPLY_ARRAY && si < r->elements; si++) {
        const redisReply *sr = r->element[si];
        if (sr->type != REDIS_REPLY_ARRAY || sr->elements != 2) continue;
        view *w = view_of(v, nv, sr->element[0]);
        const redisReply *ents = sr->element[1];
        if (!w || ents->type != REDIS_REPLY_ARRAY) continue;
        for (size_t i = 0; i < ents->elements; i++) {
            const redisReply *ent = ents->element[i];
            sid x;
            if (ent->type != REDIS_REPLY_ARRAY || ent->elements != 2 || ent->element[0]->type != REDIS_REPLY_STRING ||
                sid_parse(ent->element[0]->str, ent->element[0]->len, &x) != 0)
                continue;
            w->raw++;
            const char *id = ent->element[0]->str;
            if (ent->element[1]->type != REDIS_REPLY_ARRAY) {
                /* pending but trimmed or deleted: nothing to deliver any more */
                const char *xa[] = {"XACK", w->p->stream, ep, id};
                size_t xl[] = {4, strlen(w->p->stream), strlen(ep), ent->element[0]->len};
                redisReply *ar;
                if (vrob_cmd(k, &ar, 0, 4, xa, xl, NULL) == VIGIL_OK) rfree(ar);
                if (sid_cmp(x, w->st.given) > 0) w->st.given = x;
                continue;
            }
            if (*got >= max) {   /* in our pending list, not given out: scan for it next time */
                w->st.scanned = 0;
                break;
            }
            vigil_alert_record *e = &out[*got];
            int pr = vrob_parse_entry(ent, e);
            if (pr == -2) {
                vigil_alert_record_free(e);
                return vigil_error_set(err, VIGIL_ENOMEM, "pair outbox: out of memory");
            }
            if (pr == -1) {
                vigil_log(VIGIL_LOG_WARN, "alerts", "outbox %s: entry %s lacks id/rule/severity/key/json: "
                          "dead-lettered", w->p->stream, id);
                vigil_status ds = vrob_dead_on(k, w->p->stream, id, ep, e, "malformed outbox entry", 0, NULL);
                vigil_alert_record_free(e);
                if (ds == VIGIL_EUNAVAILABLE)
                    return vigil_error_set(err, ds, "Redis %s: connection lost", vigil_redis_where(k->r));
                w->st.given = x;
                continue;
            }
            char ref[VIGIL_ALERT_REF_MAX];
            int rl = snprintf(ref, sizeof ref, "%u/%s", w->p->slot, e->ref);
            if (rl < 0 || (size_t)rl >= sizeof ref) {   /* cannot happen before the year 2286 */
                vigil_alert_record_free(e);
                return vigil_error_set(err, VIGIL_ESTORE, "pair outbox: stream id %s too long", id);
            }
            memcpy(e->ref, ref, (size_t)rl + 1);
            w->st.given = x;
            (*got)++;
        }
    }
    return VIGIL_OK;
}

/* 1. the pending entries after `given` of every pair not yet scanned. */
static vigil_status scan_pending(call *k, const char *ep, view *v, int nv, vigil_alert_record *out, int max,
                                 int *got, vigil_error *err) {
    int *sel = malloc((size_t)nv * sizeof *sel);
    char (*idbuf)[48] = malloc((size_t)nv * sizeof *idbuf);
    const char **ids = malloc((size_t)nv * sizeof *ids);
    vigil_status s = VIGIL_OK;
    if (!sel || !idbuf || !ids) s = vigil_error_set(err, VIGIL_ENOMEM, "pair outbox: out of memory");
    for (int page = 0; s == VIGIL_OK && page < PEL_PAGES && *got == 0; page++) {
        int nsel = 0;
        for (int i = 0; i < nv; i++)
            if (!v[i].st.scanned) {
                v[i].raw = 0;
                sid_fmt(v[i].st.given, idbuf[nsel], sizeof idbuf[nsel]);
                ids[nsel] = idbuf[nsel];
                sel[nsel++] = i;
            }
        if (!nsel) break;
        redisReply *r = NULL;
        s = xreadgroup(k, ep, v, sel, nsel, ids, max, 0, &r, err);
        if (s == VIGIL_OK) s = take_reply(k, ep, r, v, nv, out, max, got, err);
        rfree(r);
        for (int i = 0; s == VIGIL_OK && i < nsel; i++)
            if (v[sel[i]].raw == 0) v[sel[i]].st.scanned = 1;   /* nothing pending after given */
    }
    free(sel);
    free(idbuf);
    free(ids);
    return s;
}

/* 2. new entries of the scanned pairs, blocking up to block_ms. */
static vigil_status read_new(call *k, const char *ep, view *v, int nv, vigil_alert_record *out, int max, int *got,
                             int block_ms, vigil_error *err) {
    int *sel = malloc((size_t)nv * sizeof *sel);
    const char **ids = malloc((size_t)nv * sizeof *ids);
    vigil_status s = VIGIL_OK;
    int nsel = 0;
    if (!sel || !ids) s = vigil_error_set(err, VIGIL_ENOMEM, "pair outbox: out of memory");
    for (int i = 0; s == VIGIL_OK && i < nv; i++)
        if (v[i].st.scanned) {
            ids[nsel] = ">";
            sel[nsel++] = i;
        }
    if (s == VIGIL_OK && nsel) {
        redisReply *r = NULL;
        s = xreadgroup(k, ep, v, sel, nsel, ids, max, block_ms, &r, err);
        if (s == VIGIL_OK) s = take_reply(k, ep, r, v, nv, out, max, got, err);
        rfree(r);
    }
    free(sel);
    free(ids);
    return s;
}

static vigil_status p_read(vigil_outbox *ob, const char *ep, const char *after, vigil_alert_record *out, int max,
                           int *n, int wait_ms, vigil_error *err) {
    pob *o = (pob *)ob;
    gref aft;
    int have_after = after && *after;
    if (n) *n = 0;
    if (!o || !ep || !out || !n || max <= 0 || wait_ms < 0)
        return vigil_error_set(err, VIGIL_EINVAL, "pair outbox read: bad argument");
    if (have_after && ref_parse(after, &aft) != 0)
        return vigil_error_set(err, VIGIL_EINVAL, "pair outbox read: bad position '%s'", after);
    int ei = ep_index(o, ep);
    if (ei < 0) return vigil_error_set(err, VIGIL_ENOTFOUND, "pair outbox: no endpoint '%s'", ep);

    pthread_mutex_lock(&o->mu);
    rewind_ep(o, ei, have_after ? &aft : NULL);
    int live = o->npairs - o->nremoved;
    if (!live && wait_ms > 0) {   /* no pair yet: wait for an add */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += wait_ms / 1000;
        ts.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&o->cv, &o->mu, &ts);
        live = o->npairs - o->nremoved;
    }
    view *v = live ? calloc((size_t)live, sizeof *v) : NULL;
    int nv = 0;
    for (int i = 0; v && i < o->npairs; i++) {
        ppair *p = o->pairs[i];
        if (p->removed) continue;
        p->inuse++;
        v[nv].p = p;
        v[nv].st = v[nv].orig = p->eps[ei];
        nv++;
    }
    pthread_mutex_unlock(&o->mu);
    if (live && !v) return vigil_error_set(err, VIGIL_ENOMEM, "pair outbox: out of memory");
    if (!nv) return VIGIL_OK;

    call k;
    int got = 0;
    vigil_status s = vrob_get(o->inner, &k, err);
    for (int i = 0; s == VIGIL_OK && i < nv; i++)
        if (!v[i].st.ready && (s = vrob_create_group(&k, v[i].p->stream, ep, err)) == VIGIL_OK) v[i].st.ready = 1;
    if (s == VIGIL_OK) s = scan_pending(&k, ep, v, nv, out, max, &got, err);
    if (s == VIGIL_OK && got == 0) {
        int block = wait_ms < VIGIL_OUTBOX_PAIRS_BLOCK_MS ? wait_ms : VIGIL_OUTBOX_PAIRS_BLOCK_MS;
        s = read_new(&k, ep, v, nv, out, max, &got, block, err);
    }
    if (k.r) vrob_put(&k);
    if (s != VIGIL_OK) {
        for (int i = 0; i < got; i++) vigil_alert_record_free(&out[i]);
        got = 0;
    }

    pthread_mutex_lock(&o->mu);
    int woke = 0;
    for (int i = 0; i < nv; i++) {
        ppair *p = v[i].p;
        p->inuse--;
        if (p->removed) {
            woke = 1;
            continue;
        }
        if (s == VIGIL_OK) {
            p->eps[ei] = v[i].st;
        } else {
            /* entries may have reached our pending list without reaching the caller */
            p->eps[ei] = v[i].orig;
            p->eps[ei].scanned = 0;
            p->eps[ei].ready = v[i].st.ready;
        }
    }
    /* drop what a removed pair gave (it stays pending for the next owner);
     * remember the rest for the next read's rewind */
    pend *e = &o->eps[ei];
    int kept = 0;
    if (got > e->caplast) {
        gref *nl = realloc(e->last, (size_t)got * sizeof *nl);
        if (nl) {
            e->last = nl;
            e->caplast = got;
        }
    }
    for (int i = 0; i < got; i++) {
        gref g;
        ppair *p = ref_parse(out[i].ref, &g) == 0 ? by_slot(o, g.slot) : NULL;
        if (!p || p->removed) {
            vigil_alert_record_free(&out[i]);
            continue;
        }
        if (kept < e->caplast) e->last[kept] = g;
        if (kept != i) out[kept] = out[i];
        kept++;
    }
    /* out of memory for the list: no rewind can be computed, so start over next time */
    e->nlast = kept <= e->caplast ? kept : 0;
    if (kept > e->caplast)
        for (int i = 0; i < o->npairs; i++) o->pairs[i]->eps[ei].scanned = 0;
    if (woke) pthread_cond_broadcast(&o->cv);
    pthread_mutex_unlock(&o->mu);
    free(v);
    *n = kept;
    return s;
}

/* ---- acks, dead letters, depth ------------------------------------------- */

/* The stream of slot (a copy, caller frees), removed pairs included when
 * any_state; NULL when unknown. */
static char *stream_of(pob *o, unsigned slot, int any_state) {
    pthread_mutex_lock(&o->mu);
    ppair *p = by_slot(o, slot);
    char *s = p && (any_state || !p->removed) ? strdup(p->stream) : NULL;
    pthread_mutex_unlock(&o->mu);
    return s;
}

static vigil_status p_ack(vigil_outbox *ob, const char *ep, const char *const *refs, int n, vigil_error *err) {
    pob *o = (pob *)ob;
    if (!o || !ep || n < 0 || (n > 0 && !refs)) return vigil_error_set(err, VIGIL_EINVAL, "pair outbox ack: bad argument");
    if (ep_index(o, ep) < 0) return vigil_error_set(err, VIGIL_ENOTFOUND, "pair outbox: no endpoint '%s'", ep);
    if (n == 0) return VIGIL_OK;
    gref *g = malloc((size_t)n * sizeof *g);
    char **streams = calloc((size_t)n, sizeof *streams);
    vigil_redis_cmd *cmds = malloc((size_t)n * sizeof *cmds);
    const char **av = malloc((size_t)n * 4 * sizeof *av);
    size_t *al = malloc((size_t)n * 4 * sizeof *al);
    vigil_status s = VIGIL_OK;
    if (!g || !streams || !cmds || !av || !al) s = vigil_error_set(err, VIGIL_ENOMEM, "pair outbox: out of memory");
    for (int i = 0; s == VIGIL_OK && i < n; i++)
        if (!refs[i] || ref_parse(refs[i], &g[i]) != 0)
            s = vigil_error_set(err, VIGIL_EINVAL, "pair outbox ack: bad position '%s'", refs[i] ? refs[i] : "(null)");
    int nc = 0;
    for (int i = 0; s == VIGIL_OK && i < n; i++) {
        /* a pair removed meanwhile is still acked (harmless, saves its next
         * owner a duplicate); one forgotten is skipped */
        if (!(streams[i] = stream_of(o, g[i].slot, 1))) continue;
        const char *id = strchr(refs[i], '/') + 1;
        const char *a4[4] = {"XACK", streams[i], ep, id};
        for (int j = 0; j < 4; j++) {
            av[nc * 4 + j] = a4[j];
            al[nc * 4 + j] = strlen(a4[j]);
        }
        cmds[nc] = (vigil_redis_cmd){4, av + nc * 4, al + nc * 4};
        nc++;
    }
    if (s == VIGIL_OK && nc) {
        call k;
        redisReply **rep = calloc((size_t)nc, sizeof *rep);
        s = rep ? vrob_get(o->inner, &k, err) : vigil_error_set(err, VIGIL_ENOMEM, "pair outbox: out of memory");
        if (s == VIGIL_OK) {
            s = vigil_redis_pipeline(k.r, cmds, nc, rep, "XACK", err);
            if (s == VIGIL_OK) {
                for (int i = 0; s == VIGIL_OK && i < nc; i++)
                    if (rep[i]->type == REDIS_REPLY_ERROR && !is_err(rep[i], "NOGROUP"))   /* NOGROUP: nothing to ack */
                        s = vigil_redis_reply_check(k.r, rep[i], "XACK", err);
                vigil_redis_free_replies(rep, nc);
            }
            long long now = mono_ms();
            int due = 0;
            pthread_mutex_lock(&o->mu);
            if (s == VIGIL_OK && now - o->last_trim_ms >= TRIM_EVERY_MS) {
                o->last_trim_ms = now;
                due = 1;
            }
            pthread_mutex_unlock(&o->mu);
            for (int i = 0; due && i < n; i++) {   /* each stream acked, once */
                int seen = !streams[i];
                for (int j = 0; j < i && !seen; j++) seen = streams[j] && !strcmp(streams[j], streams[i]);
                vigil_error terr;
                if (!seen && vrob_trim_on(&k, streams[i], &terr) != VIGIL_OK) {
                    vigil_log(VIGIL_LOG_WARN, "alerts", "outbox trim of %s: %s", streams[i], terr.msg);
                    break;
                }
            }
            vrob_put(&k);
        }
        free(rep);
    }
    for (int i = 0; streams && i < n; i++) free(streams[i]);
    free(streams);
    free(g);
    free(cmds);
    free(av);
    free(al);
    return s;
}

static vigil_status p_dead(vigil_outbox *ob, const char *ep, const vigil_alert_record *e, const char *reason,
                           int attempts, vigil_error *err) {
    pob *o = (pob *)ob;
    gref g;
    if (!o || !ep || !e || ref_parse(e->ref, &g) != 0)
        return vigil_error_set(err, VIGIL_EINVAL, "pair outbox dead: bad argument");
    if (ep_index(o, ep) < 0) return vigil_error_set(err, VIGIL_ENOTFOUND, "pair outbox: no endpoint '%s'", ep);
    char *stream = stream_of(o, g.slot, 0);
    if (!stream) return VIGIL_OK;   /* the pair moved: its next owner decides (outbox.h) */
    call k;
    vigil_status s = vrob_get(o->inner, &k, err);
    if (s == VIGIL_OK) {
        s = vrob_dead_on(&k, stream, strchr(e->ref, '/') + 1, ep, e, reason, attempts, err);
        vrob_put(&k);
    }
    free(stream);
    return s;
}

static vigil_status p_list_dead(vigil_outbox *ob, const char *ep, int limit, char **json, vigil_error *err) {
    pob *o = (pob *)ob;
    if (!o) return vigil_error_set(err, VIGIL_EINVAL, "pair outbox: NULL");
    return vrob_list_dead(&o->inner->base, ep, limit, json, err);
}

static vigil_status p_depth(vigil_outbox *ob, const char *ep, uint64_t *n, vigil_error *err) {
    pob *o = (pob *)ob;
    if (!o || !ep || !n) return vigil_error_set(err, VIGIL_EINVAL, "pair outbox depth: bad argument");
    *n = 0;
    pthread_mutex_lock(&o->mu);
    int cnt = 0;
    char **streams = calloc((size_t)(o->npairs ? o->npairs : 1), sizeof *streams);
    for (int i = 0; streams && i < o->npairs; i++)
        if (!o->pairs[i]->removed && !(streams[cnt++] = strdup(o->pairs[i]->stream))) cnt--;
    pthread_mutex_unlock(&o->mu);
    if (!streams) return vigil_error_set(err, VIGIL_ENOMEM, "pair outbox: out of memory");
    vigil_status s = VIGIL_OK;
    if (cnt) {
        call k;
        s = vrob_get(o->inner, &k, err);
        for (int i = 0; s == VIGIL_OK && i < cnt; i++) {
            uint64_t d = 0;
            s = vrob_depth_on(&k, streams[i], ep, &d, err);
            *n += d;
        }
        if (k.r) vrob_put(&k);
    }
    for (int i = 0; i < cnt; i++) free(streams[i]);
    free(streams);
    return s;
}

static int p_holds(vigil_outbox *ob, const char *ref) {
    pob *o = (pob *)ob;
    gref g;
    if (!ref || ref_parse(ref, &g) != 0) return 0;
    pthread_mutex_lock(&o->mu);
    ppair *p = by_slot(o, g.slot);
    int held = p && !p->removed;
    pthread_mutex_unlock(&o->mu);
    return held;
}

/* ---- pairs --------------------------------------------------------------- */

static pob *as_pob(vigil_outbox *ob) {
    pob *o = (pob *)ob;
    return o && o->base.read == p_read && o->magic == POB_MAGIC ? o : NULL;
}

int vigil_outbox_is_pairs(const vigil_outbox *ob) { return as_pob((vigil_outbox *)ob) != NULL; }

static ppair *find_live(pob *o, const char *group, int partition) {
    for (int i = 0; i < o->npairs; i++) {
        ppair *p = o->pairs[i];
        if (!p->removed && p->part == partition && !strcmp(p->group, group)) return p;
    }
    return NULL;
}

vigil_status vigil_outbox_pairs_add(vigil_outbox *ob, const char *group, int partition, vigil_error *err) {
    pob *o = as_pob(ob);
    char stream[600];
    if (!o || vigil_redis_pair_key(o->prefix, group, partition, "outbox", stream, sizeof stream) < 0)
        return vigil_error_set(err, VIGIL_EINVAL, "pair outbox add: not a pair outbox, or a bad pair (%s, %d)",
                               group ? group : "(null)", partition);
    pthread_mutex_lock(&o->mu);
    vigil_status s = VIGIL_OK;
    if (!find_live(o, group, partition)) {
        ppair *p = calloc(1, sizeof *p);
        if (p) {
            p->group = strdup(group);
            p->stream = strdup(stream);
            p->eps = calloc((size_t)o->neps, sizeof *p->eps);
        }
        if (o->npairs == o->cappairs && p) {
            int cap = o->cappairs ? o->cappairs * 2 : 16;
            ppair **np = realloc(o->pairs, (size_t)cap * sizeof *np);
            if (np) {
                o->pairs = np;
                o->cappairs = cap;
            }
        }
        if (!p || !p->group || !p->stream || (!p->eps && o->neps) || o->npairs == o->cappairs) {
            pair_free(p);
            s = vigil_error_set(err, VIGIL_ENOMEM, "pair outbox: out of memory");
        } else {
            p->part = partition;
            p->slot = ++o->next_slot;
            o->pairs[o->npairs++] = p;
            pthread_cond_broadcast(&o->cv);
        }
    }
    pthread_mutex_unlock(&o->mu);
    return s;
}

vigil_status vigil_outbox_pairs_remove(vigil_outbox *ob, const char *group, int partition, vigil_error *err) {
    pob *o = as_pob(ob);
    if (!o || !group || partition < 0)
        return vigil_error_set(err, VIGIL_EINVAL, "pair outbox remove: not a pair outbox, or a bad pair");
    pthread_mutex_lock(&o->mu);
    ppair *p = find_live(o, group, partition);
    if (p) {
        p->removed = 1;
        o->nremoved++;
        while (p->inuse > 0) pthread_cond_wait(&o->cv, &o->mu);   /* reads are bounded (BLOCK_MS + timeout) */
        /* forget the oldest removed pairs beyond REMOVED_KEEP (their late acks are skipped) */
        for (int i = 0; o->nremoved > REMOVED_KEEP && i < o->npairs;) {
            ppair *q = o->pairs[i];
            if (q->removed && q->inuse == 0) {
                memmove(&o->pairs[i], &o->pairs[i + 1], (size_t)(o->npairs - i - 1) * sizeof *o->pairs);
                o->npairs--;
                o->nremoved--;
                pair_free(q);
            } else {
                i++;
            }
        }
    }
    pthread_mutex_unlock(&o->mu);
    return VIGIL_OK;
}

/* ---- open / destroy ------------------------------------------------------ */

static void p_destroy(vigil_outbox *ob) {
    pob *o = (pob *)ob;
    if (!o) return;
    for (int i = 0; i < o->npairs; i++) pair_free(o->pairs[i]);
    free(o->pairs);
    for (int i = 0; i < o->neps; i++) free(o->eps[i].last);
    free(o->eps);
    if (o->inner) o->inner->base.destroy(&o->inner->base);
    free(o->prefix);
    pthread_mutex_destroy(&o->mu);
    pthread_cond_destroy(&o->cv);
    o->magic = 0;
    free(o);
}

vigil_status vigil_outbox_pairs_open(const char *url, const char *prefix, const struct vigil_redis_opts *opts,
                                     const char *const *endpoints, int nendpoints, vigil_outbox **out,
                                     vigil_error *err) {
    if (!out) return vigil_error_set(err, VIGIL_EINVAL, "pair outbox: NULL argument");
    *out = NULL;
    if (!prefix) prefix = "vigil";
    if (!url || nendpoints < 0 || nendpoints > MAX_EPS || (nendpoints > 0 && !endpoints) || strpbrk(prefix, "{}"))
        return vigil_error_set(err, VIGIL_EINVAL, "pair outbox: bad URL, prefix or endpoint list (at most %d)",
                               MAX_EPS);
    for (int i = 0; i < nendpoints; i++) {
        if (!endpoints[i] || !*endpoints[i] || strlen(endpoints[i]) > MAX_EP_NAME)
            return vigil_error_set(err, VIGIL_EINVAL, "pair outbox: endpoint name %d empty or over %d bytes", i + 1,
                                   MAX_EP_NAME);
        for (int j = 0; j < i; j++)
            if (!strcmp(endpoints[i], endpoints[j]))
                return vigil_error_set(err, VIGIL_EINVAL, "pair outbox: endpoint '%s' given twice", endpoints[i]);
    }
    pob *o = calloc(1, sizeof *o);
    if (!o) return vigil_error_set(err, VIGIL_ENOMEM, "pair outbox: out of memory");
    o->magic = POB_MAGIC;
    pthread_mutex_init(&o->mu, NULL);
    pthread_cond_init(&o->cv, NULL);
    o->base.read = p_read;
    o->base.ack = p_ack;
    o->base.dead = p_dead;
    o->base.list_dead = p_list_dead;
    o->base.depth = p_depth;
    o->base.destroy = p_destroy;
    o->base.holds = p_holds;
    vigil_status s = vrob_open(url, prefix, opts, endpoints, nendpoints, 0, &o->inner, err);
    if (s == VIGIL_OK) {
        o->prefix = strdup(prefix);
        o->eps = nendpoints ? calloc((size_t)nendpoints, sizeof *o->eps) : NULL;
        if (!o->prefix || (nendpoints && !o->eps)) s = vigil_error_set(err, VIGIL_ENOMEM, "pair outbox: out of memory");
        for (int i = 0; s == VIGIL_OK && i < nendpoints; i++) snprintf(o->eps[i].name, sizeof o->eps[i].name, "%s", endpoints[i]);
        o->neps = s == VIGIL_OK ? nendpoints : 0;
    }
    if (s != VIGIL_OK) {
        p_destroy(&o->base);
        return s;
    }
    *out = &o->base;
    return VIGIL_OK;
}
