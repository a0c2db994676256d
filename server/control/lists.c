/* lists.c — in_list() lists over the API (DESIGN.md §6): PUT /v1/lists/{name}
 * (text, one value a line, '#' comments, as a lists/NAME.txt file) and GET
 * /v1/lists[/{name}]. A list sent here takes the place of the file of that
 * name. It is versioned (a new text is the next version; the same text is
 * no change), stored in the catalog store with its audit entry (the record
 * "~list:NAME": the latest text and every version's hash, size, time and
 * author), and applied like a rule change: the running rules are built again
 * with it and swapped in at every worker's batch boundary, so every event
 * is matched against one version of the list. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "control_int.h"
#include "server/http/reply.h"
#include "vigil/clock.h"
#include "server/common/log.h"

#define LIST_PREFIX "~list:"
#define MAX_LIST_VALUES 1000000
#define MAX_HISTORY 1000

static vctl_list *find(vigil_control *c, const char *name) {
    for (int i = 0; i < c->nlists; i++)
        if (strcmp(c->lists[i].name, name) == 0) return &c->lists[i];
    return NULL;
}

const char *vctl_list_text(void *ud, const char *name, size_t *len) {
    vctl_list *l = find(ud, name);   /* the caller holds mu (a build) */
    if (!l) return NULL;
    *len = l->len;
    return l->text;
}

static int valid_name(const char *s) {
    size_t n = strlen(s);
    if (!n || n > 128) return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
              s[i] == '_' || s[i] == '-' || s[i] == '.'))
            return 0;
    return s[0] != '.';
}

/* Values of a list text: its non-blank lines that are not '#' comments. */
static long count_values(const char *t, size_t n) {
    long c = 0;
    size_t i = 0;
    while (i < n) {
        size_t e = i;
        while (e < n && t[e] != '\n') e++;
        size_t b = i;
        while (b < e && (t[b] == ' ' || t[b] == '\t' || t[b] == '\r')) b++;
        if (b < e && t[b] != '#') {
            size_t x = e;
            while (x > b && (t[x - 1] == ' ' || t[x - 1] == '\t' || t[x - 1] == '\r')) x--;
            c += x > b;
        }
        i = e + 1;
    }
    return c;
}

static cJSON *list_json(const vctl_list *l, int history) {
    cJSON *o = cJSON_CreateObject();
    char t[40];
    cJSON_AddStringToObject(o, "name", l->name);
    cJSON_AddNumberToObject(o, "version", l->version);
    cJSON_AddNumberToObject(o, "values", (double)l->values);
    cJSON_AddStringToObject(o, "sha256", l->hash);
    vigil_time_format_rfc3339(l->at, t, sizeof t);
    cJSON_AddStringToObject(o, "updated_at", t);
    cJSON_AddStringToObject(o, "by", l->by);
    cJSON_AddStringToObject(o, "source", "api");
    if (history) cJSON_AddItemToObject(o, "versions", cJSON_Duplicate(l->history, 1));
    return o;
}

/* The stored record: the list as the API shows it, with every version and the text. */
static char *record(const vctl_list *l) {
    cJSON *o = list_json(l, 1);
    cJSON_AddNumberToObject(o, "at_ms", (double)l->at);
    cJSON_AddStringToObject(o, "text", l->text ? l->text : "");
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static void list_free(vctl_list *l) {
    free(l->text);
    cJSON_Delete(l->history);
    memset(l, 0, sizeof *l);
}

void vctl_lists_free(vigil_control *c) {
    for (int i = 0; i < c->nlists; i++) list_free(&c->lists[i]);
    free(c->lists);
    c->lists = NULL;
    c->nlists = c->caplists = 0;
}

static vctl_list *add(vigil_control *c) {
    if (c->nlists == c->caplists) {
        int cap = c->caplists ? c->caplists * 2 : 8;
        vctl_list *nl = realloc(c->lists, (size_t)cap * sizeof *nl);
        if (!nl) return NULL;
        c->lists = nl;
        c->caplists = cap;
    }
    vctl_list *l = &c->lists[c->nlists++];
    memset(l, 0, sizeof *l);
    return l;
}

int vctl_list_record(vigil_control *c, const char *key, const char *json) {
    if (strncmp(key, LIST_PREFIX, strlen(LIST_PREFIX)) != 0) return 0;
    cJSON *o = cJSON_Parse(json);
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "name"), *text = cJSON_GetObjectItemCaseSensitive(o, "text");
    vctl_list *l = cJSON_IsString(name) && cJSON_IsString(text) && valid_name(name->valuestring) ? add(c) : NULL;
    if (l) {
        snprintf(l->name, sizeof l->name, "%s", name->valuestring);
        l->len = strlen(text->valuestring);
        l->text = strdup(text->valuestring);
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "version"), *h = cJSON_GetObjectItemCaseSensitive(o, "sha256"),
                    *at = cJSON_GetObjectItemCaseSensitive(o, "at_ms"), *by = cJSON_GetObjectItemCaseSensitive(o, "by");
        l->version = cJSON_IsNumber(v) ? (int)v->valuedouble : 1;
        snprintf(l->hash, sizeof l->hash, "%s", cJSON_IsString(h) ? h->valuestring : "");
        l->at = cJSON_IsNumber(at) ? (int64_t)at->valuedouble : 0;
        snprintf(l->by, sizeof l->by, "%s", cJSON_IsString(by) ? by->valuestring : "local");
        l->values = count_values(l->text ? l->text : "", l->len);
        l->history = cJSON_DetachItemFromObjectCaseSensitive(o, "versions");
        if (!l->history) l->history = cJSON_CreateArray();
    } else {
        vigil_log(VIGIL_LOG_WARN, "control", "the stored list record %s is unreadable; skipped", key);
    }
    cJSON_Delete(o);
    return 1;
}

static enum MHD_Result put_list(vigil_control *c, struct MHD_Connection *conn, const char *name, vigil_http_req *r) {
    if (r->too_big) return vigil_http_problem(conn, 413, "Content Too Large", "the list is over the body limit", NULL, NULL);
    const char *text = r->body ? r->body : "";
    size_t len = r->len;
    if (memchr(text, '\0', len))
        return vigil_http_problem(conn, 400, "Bad Request", "a list is text: one value a line (a NUL byte found)", NULL, NULL);
    long values = count_values(text, len);
    if (values > MAX_LIST_VALUES) {
        char d[120];
        snprintf(d, sizeof d, "a list has at most %d values, this one %ld", MAX_LIST_VALUES, values);
        return vigil_http_problem(conn, 413, "Content Too Large", d, NULL, NULL);
    }
    char hash[65];
    vcat_hash(text, len, hash);
    vctl_list *l = find(c, name);
    if (l && strcmp(l->hash, hash) == 0) return vigil_http_send_json(conn, 200, list_json(l, 0));   /* no change */
    int created = !l;
    /* the new version, in place; the old one kept to undo */
    vctl_list old = {0};
    if (l) old = *l;
    else if (!(l = add(c))) return MHD_NO;
    else snprintf(l->name, sizeof l->name, "%s", name);
    char *copy = malloc(len + 1);
    cJSON *hist = l->history ? cJSON_Duplicate(l->history, 1) : cJSON_CreateArray();
    if (!copy || !hist) {
        free(copy);
        cJSON_Delete(hist);
        if (created) c->nlists--;
        return MHD_NO;
    }
    memcpy(copy, text, len);
    copy[len] = '\0';
    l->text = copy;
    l->len = len;
    l->version = old.version + 1;
    l->values = values;
    snprintf(l->hash, sizeof l->hash, "%s", hash);
    l->at = vigil_now_ms();
    snprintf(l->by, sizeof l->by, "%s", r->who);
    l->history = hist;
    cJSON *h = cJSON_CreateObject();
    cJSON_AddNumberToObject(h, "version", l->version);
    cJSON_AddStringToObject(h, "sha256", hash);
    cJSON_AddNumberToObject(h, "values", (double)values);
    char t[40];
    vigil_time_format_rfc3339(l->at, t, sizeof t);
    cJSON_AddStringToObject(h, "at", t);
    cJSON_AddStringToObject(h, "by", l->by);
    cJSON_AddItemToArray(hist, h);
    while (cJSON_GetArraySize(hist) > MAX_HISTORY) cJSON_DeleteItemFromArray(hist, 0);
    char key[160], det[200];
    snprintf(key, sizeof key, "%s%s", LIST_PREFIX, name);
    char *rec = record(l);
    vctl_txn x;
    vctl_txn_init(&x, r->who);
    x.rebuild = 1;   /* the rules that use it are built again and swapped in */
    x.extra_key = key;
    x.extra_value = rec;
    snprintf(det, sizeof det, "list %s: version %d, %ld values", name, l->version, values);
    vctl_audit(&x, "list", NULL, old.version, l->version, det);
    vigil_error err;
    vigil_error_clear(&err);
    vigil_status st = VIGIL_ENOMEM;
    if (rec) st = vctl_commit(c, &x, &err);
    else vctl_abort(c, &x);
    free(rec);
    if (st != VIGIL_OK) {   /* undone: the old version (or none) */
        free(l->text);
        cJSON_Delete(l->history);
        if (created) c->nlists--;
        else *l = old;
        char d[1200];
        vigil_error_format(&err, d, sizeof d);
        if (st == VIGIL_ECONFLICT)   /* cluster mode: another instance changed the rules first */
            return vigil_http_problem(conn, 409, "Conflict", d, NULL, "1");
        return vigil_http_problem(conn, st == VIGIL_ECOMPILE ? 422 : 503,
                                  st == VIGIL_ECOMPILE ? "Unprocessable Content" : "Service Unavailable", d, NULL,
                                  st == VIGIL_ECOMPILE ? NULL : "1");
    }
    free(old.text);
    cJSON_Delete(old.history);
    return vigil_http_send_json(conn, created ? 201 : 200, list_json(l, 0));
}

static enum MHD_Result get_lists(vigil_control *c, struct MHD_Connection *conn, const char *name) {
    if (name) {
        vctl_list *l = find(c, name);
        if (!l) {
            char d[200];
            snprintf(d, sizeof d, "no list '%s' was sent to the API (lists/%s.txt files are read by the rules that "
                     "use them)", name, name);
            return vigil_http_problem(conn, 404, "Not Found", d, NULL, NULL);
        }
        return vigil_http_send_json(conn, 200, list_json(l, 1));
    }
    cJSON *o = cJSON_CreateObject();
    cJSON *a = cJSON_AddArrayToObject(o, "lists");
    for (int i = 0; i < c->nlists; i++) cJSON_AddItemToArray(a, list_json(&c->lists[i], 0));
    DIR *d = opendir(c->lists_dir);   /* and the files the API does not replace */
    struct dirent *de;
    while (d && (de = readdir(d))) {
        size_t n = strlen(de->d_name);
        if (n < 5 || strcmp(de->d_name + n - 4, ".txt") != 0 || n - 4 >= sizeof c->lists[0].name) continue;
        char ln[sizeof c->lists[0].name];
        memcpy(ln, de->d_name, n - 4);
        ln[n - 4] = '\0';
        if (!valid_name(ln) || find(c, ln)) continue;
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "name", ln);
        cJSON_AddStringToObject(x, "source", "file");
        cJSON_AddItemToArray(a, x);
    }
    if (d) closedir(d);
    return vigil_http_send_json(conn, 200, o);
}

enum MHD_Result vctl_lists(void *ctx, struct MHD_Connection *conn, const char *url, vigil_http_req *r) {
    vigil_control *c = ctx;
    const char *name = strncmp(url, "/v1/lists/", 10) == 0 ? url + 10 : NULL;
    if (name && !valid_name(name))
        return vigil_http_problem(conn, 404, "Not Found", "a list name is letters, digits, '_', '-' and '.'", NULL, NULL);
    pthread_mutex_lock(&c->mu);
    enum MHD_Result ret;
    if (strcmp(r->method, "PUT") == 0 && name) ret = (vctl_cluster_catch_up(c), put_list(c, conn, name, r));   /* cluster mode */
    else if (strcmp(r->method, "GET") == 0) ret = get_lists(c, conn, name);
    else ret = vigil_http_problem(conn, 405, "Method Not Allowed", "PUT /v1/lists/{name} or GET", NULL, NULL);
    pthread_mutex_unlock(&c->mu);
    return ret;
}
