/* kv.c — the cluster's two NATS KV buckets: bound or created at start, and
 * read whole once a heartbeat. A snapshot is one watcher over the bucket
 * (an ordered consumer delivering the last entry of every key, then the
 * "initial values done" marker): one request and one stream of messages,
 * rather than a GET per key. Expired entries simply vanish (nats-server 2.9
 * removes them without a marker), so callers judge liveness by age. */
#include <stdlib.h>
#include <string.h>
#include "cluster_int.h"
#include "vigil/clock.h"

/* The thread's last nats.c error text when it belongs to s (it may be
 * left over from an earlier call), else the status' own text. */
const char *vcl_nats_why(natsStatus s) {
    natsStatus last_s = NATS_OK;
    const char *last = nats_GetLastError(&last_s);
    return last && *last && last_s == s ? last : natsStatus_GetText(s);
}

vigil_status vcl_kv_open(vigil_cluster *c, const char *suffix, kvStore **out, vigil_error *err) {
    char bucket[128];
    snprintf(bucket, sizeof bucket, "%s_%s", c->kv_prefix, suffix);
    natsStatus s = js_KeyValue(out, c->js, bucket);
    if (s == NATS_NOT_FOUND) {
        kvConfig kc;
        kvConfig_Init(&kc);
        kc.Bucket = bucket;
        kc.History = 1;
        kc.TTL = 3 * c->cfg.lease_ms * 1000000LL;   /* ns */
        kc.StorageType = js_FileStorage;
        s = js_CreateKeyValue(out, c->js, &kc);
        if (s != NATS_OK) s = js_KeyValue(out, c->js, bucket);   /* another member created it meanwhile */
    }
    if (s != NATS_OK)
        return vigil_error_set(err, VIGIL_EUNAVAILABLE, "cluster: the KV bucket %s (is JetStream enabled?): %s", bucket,
                               vcl_nats_why(s));
    return VIGIL_OK;
}

static int by_key(const void *a, const void *b) {
    return strcmp(((const vcl_kv_entry *)a)->key, ((const vcl_kv_entry *)b)->key);
}

/* By key, then the newest revision first. */
static int by_key_rev(const void *a, const void *b) {
    const vcl_kv_entry *x = a, *y = b;
    int k = strcmp(x->key, y->key);
    if (k) return k;
    return x->rev < y->rev ? 1 : x->rev > y->rev ? -1 : 0;
}

static vigil_status add(vcl_snapshot *out, kvEntry *e) {
    if (out->n == out->cap) {
        int cap = out->cap ? out->cap * 2 : 32;
        vcl_kv_entry *ne = realloc(out->e, (size_t)cap * sizeof *ne);
        if (!ne) return VIGIL_ENOMEM;
        out->e = ne;
        out->cap = cap;
    }
    vcl_kv_entry *d = &out->e[out->n];
    memset(d, 0, sizeof *d);
    const char *key = kvEntry_Key(e);
    int len = kvEntry_ValueLen(e);
    if (len < 0) len = 0;
    d->key = strdup(key ? key : "");
    d->value = malloc((size_t)len + 1);
    if (!d->key || !d->value) {
        free(d->key);
        free(d->value);
        return VIGIL_ENOMEM;
    }
    if (len) memcpy(d->value, kvEntry_Value(e), (size_t)len);
    d->value[len] = '\0';
    d->len = len;
    d->rev = kvEntry_Revision(e);
    d->created_ms = kvEntry_Created(e) / 1000000;   /* ns since the epoch, UTC */
    d->deleted = kvEntry_Operation(e) != kvOp_Put;
    out->n++;
    return VIGIL_OK;
}

vigil_status vcl_kv_snapshot(vigil_cluster *c, kvStore *kv, int max_entries, vcl_snapshot *out) {
    memset(out, 0, sizeof *out);
    kvWatcher *w = NULL;
    natsStatus s = kvStore_WatchAll(&w, kv, NULL);
    if (s != NATS_OK) return VIGIL_EUNAVAILABLE;
    vigil_status st = VIGIL_OK;
    int64_t deadline = vigil_now_ms() + c->io_ms;
    for (;;) {
        int64_t left = deadline - vigil_now_ms();
        if (left <= 0) {
            st = VIGIL_ETIMEOUT;
            break;
        }
        kvEntry *e = NULL;
        s = kvWatcher_Next(&e, w, left);
        if (s != NATS_OK) {
            st = s == NATS_TIMEOUT ? VIGIL_ETIMEOUT : VIGIL_EUNAVAILABLE;
            break;
        }
        if (!e) break;   /* every key's latest entry has been delivered */
        st = out->n < max_entries ? add(out, e) : VIGIL_EFULL;
        kvEntry_Destroy(e);
        if (st != VIGIL_OK) break;
    }
    kvWatcher_Destroy(w);
    if (st != VIGIL_OK) {
        vcl_snapshot_free(out);
        return st;
    }
    if (out->n > 1) {
        /* A key written while the watcher delivers comes twice (its old
         * entry, then the new one): keep the newest of each key. */
        qsort(out->e, (size_t)out->n, sizeof *out->e, by_key_rev);
        int k = 1;
        for (int i = 1; i < out->n; i++) {
            if (strcmp(out->e[i].key, out->e[k - 1].key) == 0) {
                free(out->e[i].key);
                free(out->e[i].value);
            } else {
                out->e[k++] = out->e[i];
            }
        }
        out->n = k;
    }
    return VIGIL_OK;
}

const vcl_kv_entry *vcl_snapshot_find(const vcl_snapshot *s, const char *key) {
    if (!s || s->n == 0) return NULL;
    vcl_kv_entry k = {.key = (char *)key};
    return bsearch(&k, s->e, (size_t)s->n, sizeof *s->e, by_key);
}

void vcl_snapshot_free(vcl_snapshot *s) {
    for (int i = 0; i < s->n; i++) {
        free(s->e[i].key);
        free(s->e[i].value);
    }
    free(s->e);
    memset(s, 0, sizeof *s);
}
