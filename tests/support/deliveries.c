/* deliveries.c — what the crash and cluster tests check at a real webhook
 * receiver, shared: sets of alert ids (the reference from `vigil replay`,
 * the ids delivered), the receiver's file read line by line, and every
 * assertion on the deliveries (distinct ids equal the reference, valid
 * signatures, well-formed envelopes, no shadow alert, a repeat carries the
 * same body). Plus the small process helpers those tests use. */
#define _GNU_SOURCE
#include <CUnit/Basic.h>
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "deliveries.h"
#include "harness.h"

#define EXAMPLES 20

void vt_fail_at(const char *file, int line, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    printf("  FAIL: %s\n", msg);
    CU_assertImplementation(CU_FALSE, (unsigned)line, msg, file, "", CU_FALSE);
}


char *vt_slurp_len(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0, r;
    char *p = malloc(cap);
    while (p && (r = fread(p + n, 1, cap - n - 1, f)) > 0) {
        n += r;
        if (cap - n - 1 == 0) {
            char *np = realloc(p, cap * 2);
            if (!np) {
                free(p);
                p = NULL;
                break;
            }
            p = np;
            cap *= 2;
        }
    }
    fclose(f);
    if (p)
        p[n] = '\0';
    if (len)
        *len = n;
    return p;
}


const char *vt_str_item(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

void vt_describe_status(int st, char *buf, size_t n)
{
    if (WIFSIGNALED(st))
        snprintf(buf, n, "killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
    else if (WIFEXITED(st))
        snprintf(buf, n, "exit status %d", WEXITSTATUS(st));
    else
        snprintf(buf, n, "wait status %d", st);
}


/* Run argv to completion within timeout_ms: its exit code, or -1. */
int vt_run(const char *const argv[], const char *log, int timeout_ms)
{
    vt_proc *p = vt_spawn(argv, log);
    if (!p)
        return -1;
    if (!vt_wait_exit(p, timeout_ms)) {
        printf("  %s %s did not finish within %d s; killing it\n", argv[0], argv[1] ? argv[1] : "",
               timeout_ms / 1000);
        vt_kill(p, SIGKILL);
        return -1;
    }
    int st = p->status;
    vt_kill(p, SIGKILL);   /* reaped already: frees the handle */
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* "<marker><number>" in the log of p: the number, or -1 when p exits or
 * the deadline passes first. */
int vt_wait_log_number(vt_proc *p, const char *log, const char *marker, int timeout_ms)
{
    long long deadline = vt_now_ms() + timeout_ms;
    for (;;) {
        char *text = vt_slurp_len(log, NULL);
        const char *m = text ? strstr(text, marker) : NULL;
        long v = m ? strtol(m + strlen(marker), NULL, 10) : 0;
        free(text);
        if (m)
            return v > 0 && v < 65536 ? (int)v : -1;
        if (!vt_alive(p) || vt_now_ms() > deadline)
            return -1;
        vt_sleep_ms(20);
    }
}



void vt_set_add(vt_idset *s, const char *id, const char *desc)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        vt_ident *nv = realloc(s->v, cap * sizeof *nv);
        if (!nv)
            abort();
        s->v = nv;
        s->cap = cap;
    }
    snprintf(s->v[s->n].id, sizeof s->v[s->n].id, "%s", id);
    snprintf(s->v[s->n].desc, sizeof s->v[s->n].desc, "%s", desc ? desc : "");
    s->n++;
}

void vt_set_free(vt_idset *s)
{
    free(s->v);
    memset(s, 0, sizeof *s);
}

static int vt_ident_cmp(const void *a, const void *b)
{
    return strcmp(((const vt_ident *)a)->id, ((const vt_ident *)b)->id);
}

/* Sort and drop repeats; returns how many there were. */
size_t vt_set_normalize(vt_idset *s)
{
    if (s->n == 0)
        return 0;
    qsort(s->v, s->n, sizeof *s->v, vt_ident_cmp);
    size_t w = 1;
    for (size_t r = 1; r < s->n; r++)
        if (strcmp(s->v[r].id, s->v[w - 1].id) != 0)
            s->v[w++] = s->v[r];
    size_t dups = s->n - w;
    s->n = w;
    return dups;
}

const vt_ident *vt_set_find(const vt_idset *s, const char *id)
{
    vt_ident key;
    snprintf(key.id, sizeof key.id, "%s", id);
    return s->n ? bsearch(&key, s->v, s->n, sizeof *s->v, vt_ident_cmp) : NULL;
}

/* Both normalized. Prints up to EXAMPLES missing and unexpected ids; 1 when equal. */
int vt_set_equal(const char *what, const vt_idset *got, const vt_idset *want)
{
    size_t missing = 0, extra = 0;
    for (size_t i = 0; i < want->n; i++)
        if (!vt_set_find(got, want->v[i].id)) {
            if (missing < EXAMPLES)
                printf("    %s: missing %s (%s)\n", what, want->v[i].id, want->v[i].desc);
            missing++;
        }
    for (size_t i = 0; i < got->n; i++)
        if (!vt_set_find(want, got->v[i].id)) {
            if (extra < EXAMPLES)
                printf("    %s: unexpected %s (%s)\n", what, got->v[i].id, got->v[i].desc);
            extra++;
        }
    printf("  %s: %zu distinct ids, expected %zu: %zu missing, %zu unexpected\n", what, got->n, want->n, missing,
           extra);
    return missing == 0 && extra == 0;
}

/* "rule mode key=K event=E" for an alert object. */
void vt_alert_desc(const cJSON *a, char *buf, size_t n)
{
    const char *rule = vt_str_item(a, "rule"), *mode = vt_str_item(a, "mode"), *key = vt_str_item(a, "key"),
               *ev = vt_str_item(a, "event");
    snprintf(buf, n, "%s %s key=%s event=%s", rule ? rule : "?", mode ? mode : "?", key ? key : "?", ev ? ev : "?");
}

/* A replay's output: active alert ids into active, shadow ones into shadow.
 * With event_prefix, only alerts whose "event" starts with it. -1 when the
 * file cannot be read or a line is not an alert. */
int vt_load_alerts(const char *path, const char *event_prefix, vt_idset *active, vt_idset *shadow)
{
    char *text = vt_slurp_len(path, NULL);
    if (!text)
        return -1;
    int bad = 0;
    for (char *line = text, *nl; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        if (*line) {
            cJSON *a = cJSON_Parse(line);
            const char *id = vt_str_item(a, "id"), *mode = vt_str_item(a, "mode"), *ev = vt_str_item(a, "event");
            if (!id || strlen(id) != 32 || !mode || !ev) {
                bad++;
            } else if (!event_prefix || strncmp(ev, event_prefix, strlen(event_prefix)) == 0) {
                char desc[112];
                vt_alert_desc(a, desc, sizeof desc);
                vt_set_add(strcmp(mode, "active") == 0 ? active : shadow, id, desc);
            }
            cJSON_Delete(a);
        }
        if (!nl)
            break;
    }
    free(text);
    vt_set_normalize(active);
    vt_set_normalize(shadow);
    return bad ? -1 : 0;
}


typedef struct vt_delivery {
    char id[72];
    char *data;               /* body "data", printed unformatted; malloc'd */
} vt_delivery;

static int vt_delivery_cmp(const void *a, const void *b)
{
    return strcmp(((const vt_delivery *)a)->id, ((const vt_delivery *)b)->id);
}

/* The receiver's complete lines: distinct webhook ids into got (may be
 * NULL), the number of lines returned. */
long vt_received_ids(const char *path, vt_idset *got)
{
    char *text = vt_slurp_len(path, NULL);
    long lines = 0;
    for (char *line = text, *nl; line && *line; line = nl + 1) {
        if (!(nl = strchr(line, '\n')))
            break;   /* being written */
        *nl = '\0';
        lines++;
        if (got) {
            cJSON *o = cJSON_Parse(line);
            const char *id = vt_str_item(o, "webhook_id");
            if (id)
                vt_set_add(got, id, "");
            cJSON_Delete(o);
        }
    }
    free(text);
    if (got)
        vt_set_normalize(got);
    return lines;
}

size_t vt_count_present(const vt_idset *got, const vt_idset *want)
{
    size_t n = 0;
    for (size_t i = 0; i < want->n; i++)
        n += vt_set_find(got, want->v[i].id) != NULL;
    return n;
}

/* Top-level keys whose values differ between two "data" objects. */
static void vt_differing_keys(const char *a, const char *b, char *out, size_t n)
{
    cJSON *x = cJSON_Parse(a), *y = cJSON_Parse(b);
    out[0] = '\0';
    size_t w = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, x)
    {
        const cJSON *other = cJSON_GetObjectItemCaseSensitive(y, it->string);
        if (!other || !cJSON_Compare(it, other, 1)) {
            int k = snprintf(out + w, n - w, "%s%s", w ? "," : "", it->string);
            if (k < 0 || (size_t)k >= n - w)
                break;
            w += (size_t)k;
        }
    }
    cJSON_Delete(x);
    cJSON_Delete(y);
}

/* Every assertion on the receiver's file; prints the case's summary line. */
void vt_check_deliveries(const char *name, const char *rcv_out, int kills, const vt_idset *want, const vt_idset *shadow)
{
    char *text = vt_slurp_len(rcv_out, NULL);
    vt_delivery *d = NULL;
    size_t nd = 0, cap = 0;
    long lines = 0, invalid = 0, bad_env = 0, shadows = 0;
    for (char *line = text, *nl; line && *line; line = nl + 1) {
        if (!(nl = strchr(line, '\n')))
            break;
        *nl = '\0';
        lines++;
        cJSON *o = cJSON_Parse(line);
        const char *wid = vt_str_item(o, "webhook_id");
        const cJSON *body = cJSON_GetObjectItemCaseSensitive(o, "body");
        const cJSON *data = cJSON_GetObjectItemCaseSensitive(body, "data");
        const char *type = vt_str_item(body, "type"), *did = vt_str_item(data, "id"), *mode = vt_str_item(data, "mode");
        if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "valid"))) {
            if (invalid < EXAMPLES)
                printf("    invalid vt_delivery: %s (%s)\n", wid ? wid : "?", vt_str_item(o, "reason") ?: "?");
            invalid++;
        }
        if (!wid || !cJSON_IsObject(data) || !type || strcmp(type, "alert.created") != 0 || !did ||
            strcmp(did, wid) != 0) {
            if (bad_env < EXAMPLES)
                printf("    not an alert.created envelope whose data.id is the webhook-id: %.200s\n", line);
            bad_env++;
        }
        if ((mode && strcmp(mode, "active") != 0) || (wid && vt_set_find(shadow, wid))) {
            if (shadows < EXAMPLES)
                printf("    shadow alert sent to the webhook: %s\n", wid ? wid : "?");
            shadows++;
        }
        if (wid) {
            if (nd == cap) {
                cap = cap ? cap * 2 : 512;
                vt_delivery *nv = realloc(d, cap * sizeof *d);
                if (!nv)
                    abort();
                d = nv;
            }
            snprintf(d[nd].id, sizeof d[nd].id, "%s", wid);
            d[nd].data = cJSON_IsObject(data) ? cJSON_PrintUnformatted(data) : strdup("null");
            nd++;
        }
        cJSON_Delete(o);
    }
    free(text);

    /* Group by id: distinct ids, repeated deliveries, and whether a repeat
     * carries the same alert. */
    if (nd)
        qsort(d, nd, sizeof *d, vt_delivery_cmp);
    vt_idset got = { 0 };
    long dups = 0, mismatched = 0;
    for (size_t i = 0; i < nd; i++) {
        if (i > 0 && strcmp(d[i].id, d[i - 1].id) == 0) {
            dups++;
            size_t first = i - 1;
            while (first > 0 && strcmp(d[first - 1].id, d[i].id) == 0)
                first--;
            if (strcmp(d[i].data, d[first].data) != 0) {
                char keys[256];
                vt_differing_keys(d[first].data, d[i].data, keys, sizeof keys);
                if (mismatched < EXAMPLES)
                    printf("    repeated vt_delivery of %s with a different \"data\" (fields: %s)\n", d[i].id, keys);
                mismatched++;
            }
            continue;
        }
        const vt_ident *w = vt_set_find(want, d[i].id);
        vt_set_add(&got, d[i].id, w ? w->desc : "not in the reference");
    }
    for (size_t i = 0; i < nd; i++)
        free(d[i].data);   /* cJSON allocates with malloc (no hooks installed) */
    free(d);

    printf("  [%s] receiver: %ld deliveries, %zu distinct ids, %ld repeated, %ld invalid signatures, %ld bad "
           "envelopes, %ld shadow, %ld repeats with a different body\n",
           name, lines, got.n, dups, invalid, bad_env, shadows, mismatched);
    printf("crash test: %zu alerts, %ld duplicate deliveries, %d kills\n", got.n, dups, kills);
    int equal = vt_set_equal("webhook ids vs the replay's active alerts", &got, want);
    if (!equal)
        VT_FAILF("[%s] the distinct webhook ids are not the expected set (see missing/unexpected above)", name);
    if (invalid)
        VT_FAILF("[%s] %ld deliveries with an invalid signature", name, invalid);
    if (bad_env)
        VT_FAILF("[%s] %ld deliveries that are not a well-formed alert.created envelope", name, bad_env);
    if (shadows)
        VT_FAILF("[%s] %ld shadow alerts sent to the webhook", name, shadows);
    if (mismatched)
        VT_FAILF("[%s] %ld repeated deliveries with a different \"data\" than the first", name, mismatched);
    vt_set_free(&got);
}

