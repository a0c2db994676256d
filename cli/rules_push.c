/* rules_push.c — `vigil rules push DIR --server URL [--token T] [--dry-run]`:
 * ships a rules directory to a running server through the rules API
 * (DESIGN.md §6). It exists so that an analyst's CI can change production
 * rules the same way every time, right after `vigil test DIR`, and fail the
 * build when the server refuses one.
 *
 * Every *.lua file of DIR (the loader's walk, vigil_rules_walk: sorted,
 * lists/ and hidden entries skipped) is compiled here first, from the very
 * bytes that will be sent (lists from DIR/lists, as `vigil check DIR`). A
 * file that does not compile is refused with its file:line errors and
 * nothing is sent for it; a file must define exactly one rule, since a PUT
 * takes one (a file with several is refused: split it); a rule name defined
 * by two files refuses both. Then, per rule: GET /v1/rules/{name} for its
 * latest version (404: a new rule) and PUT /v1/rules/{name} with the file's
 * text (text/x-lua). One line per rule on stdout:
 *     name: new rule, version N
 *     name: version A -> B
 *     name: unchanged (version A)
 *     name: refused: <the server's detail>   (422: then its errors, file:line)
 * and for each rule the server has that DIR does not define:
 *     name: on the server only (not deleted)
 * --dry-run compiles and asks (GET) but sends nothing; it says what a push
 * would do, comparing with the latest version's source when the server
 * shows it.
 *
 * Exit 0: everything accepted or unchanged; 1: something refused (by the
 * local compile or the server: 422, 409, any other answer); 2: a usage error
 * or no answer from the server (the URL and curl's reason are printed).
 * --token T is sent as `Authorization: Bearer T` and never printed: every
 * line of output goes through one function that masks it. Every answer is
 * read into a buffer of at most 16 MiB; no redirect is followed. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include "cli.h"
#include "vigil/rules.h"

#define MAX_ANSWER ((size_t)16 << 20)   /* bytes of one HTTP answer */
#define MAX_FILE ((size_t)16 << 20)     /* a rule file (the loader's limit) */
#define MAX_FILES 10000
#define MAX_URL 2048
#define MAX_ERRS 32
#define CONNECT_TIMEOUT_S 10L
#define TIMEOUT_S 120L                  /* a PUT answers once every worker switched */
#define LINE_MAX_BYTES 4096             /* one printed line; longer ones are cut */

typedef struct rfile {
    char *path;
    char *src;                          /* the file's bytes, sent as they are */
    size_t len;
    char name[VIGIL_MAX_RULE_NAME + 1]; /* its one rule; "" unless it defines exactly one */
    int version;                        /* the version the source declares, 0: none */
    int refused;                        /* locally: does not compile, not exactly one rule, a duplicate name */
} rfile;

typedef struct answer {
    char *body;                         /* NUL-terminated */
    size_t len, cap;
    int over;                           /* more than MAX_ANSWER came */
} answer;

typedef struct pusher {
    char server[MAX_URL];               /* base URL, no trailing '/' */
    const char *token;                  /* NULL: no Authorization header */
    int dry_run;
    CURL *curl;
    char curl_err[CURL_ERROR_SIZE];
    rfile *files;
    int nfiles, capfiles;
    char **local;                       /* every rule name DIR's files define (refused files too) */
    int nlocal, caplocal;
    int dir_errors;                     /* directories the walk could not read */
    int oom;
    int nameless;                       /* files refused before their rule names were known */
    int n_new, n_changed, n_unchanged, n_refused, n_server_only;
} pusher;

enum { REQ_OK = 0, REQ_UNREACHABLE = -1, REQ_TOO_BIG = -2 };

/* ---- output: every line through here, with the token masked ---------------- */

static void vsay(const pusher *P, FILE *to, const char *fmt, va_list ap) {
    char line[LINE_MAX_BYTES];
    vsnprintf(line, sizeof line, fmt, ap);
    const char *p = line, *hit;
    size_t tl = P->token ? strlen(P->token) : 0;
    while (tl && (hit = strstr(p, P->token))) {
        fwrite(p, 1, (size_t)(hit - p), to);
        fputs("[token]", to);
        p = hit + tl;
    }
    fputs(p, to);
    fputc('\n', to);
}

static void say(const pusher *P, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(const pusher *P, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsay(P, stdout, fmt, ap);
    va_end(ap);
}

static void complain(const pusher *P, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void complain(const pusher *P, const char *fmt, ...) {
    va_list ap;
    fflush(stdout);   /* keep the order of stdout and stderr on one terminal */
    va_start(ap, fmt);
    vsay(P, stderr, fmt, ap);
    va_end(ap);
}

static void usage(void) {
    fprintf(stderr,
            "usage: vigil rules push DIR --server URL [--token T] [--dry-run]\n"
            "  Compile every *.lua file of DIR (one rule per file), then for each rule\n"
            "  GET /v1/rules/NAME and PUT /v1/rules/NAME with the file's text. Prints one line\n"
            "  per rule (new rule, version A -> B, unchanged, refused) and the rules the server\n"
            "  has that DIR does not define (they are not deleted).\n"
            "  --server URL   the vigil server, e.g. http://127.0.0.1:8080\n"
            "  --token T      sent as Authorization: Bearer T (an analyst token); never printed\n"
            "  --dry-run      compile and ask the server, but send nothing\n"
            "  exit 0: all accepted or unchanged; 1: a rule was refused; 2: usage, or the\n"
            "  server could not be reached\n");
}

/* ---- HTTP ---------------------------------------------------------------------- */

/* libcurl write callback: keep at most MAX_ANSWER bytes; beyond that, stop
 * the transfer (CURLE_WRITE_ERROR) and remember why. */
static size_t keep(char *p, size_t sz, size_t n, void *ud) {
    answer *a = ud;
    size_t add = sz * n;
    if (add > MAX_ANSWER - a->len) {
        a->over = 1;
        return 0;
    }
    if (a->len + add + 1 > a->cap) {
        size_t nc = a->cap ? a->cap : 4096;
        while (nc < a->len + add + 1) nc *= 2;
        if (nc > MAX_ANSWER + 1) nc = MAX_ANSWER + 1;
        char *nb = realloc(a->body, nc);
        if (!nb) return 0;   /* CURLE_WRITE_ERROR, reported as out of memory below */
        a->body = nb;
        a->cap = nc;
    }
    memcpy(a->body + a->len, p, add);
    a->len += add;
    a->body[a->len] = '\0';
    return add;
}

static void answer_free(answer *a) {
    free(a->body);
    memset(a, 0, sizeof *a);
}

/* method P->server + path, with body (NULL: none) as text/x-lua. REQ_OK with
 * *status and the answer in *a (the caller frees it), REQ_UNREACHABLE when
 * no answer came (P->curl_err says why), REQ_TOO_BIG when it was over
 * MAX_ANSWER. */
static int request(pusher *P, const char *method, const char *path, const char *body, size_t len, long *status,
                   answer *a) {
    char url[MAX_URL + 256];
    snprintf(url, sizeof url, "%s%s", P->server, path);
    memset(a, 0, sizeof *a);
    *status = 0;
    P->curl_err[0] = '\0';
    const char *hdr[4];
    int nh = 0;
    char auth[1024];
    if (P->token) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", P->token);
        hdr[nh++] = auth;
    }
    if (body) hdr[nh++] = "Content-Type: text/x-lua";
    hdr[nh++] = "Expect:";   /* no 100-continue round trip */
    hdr[nh++] = "Accept: application/json, application/problem+json";
    struct curl_slist *h = NULL, *t;
    for (int i = 0; i < nh; i++) {
        if (!(t = curl_slist_append(h, hdr[i]))) {
            curl_slist_free_all(h);
            explicit_bzero(auth, sizeof auth);
            snprintf(P->curl_err, sizeof P->curl_err, "out of memory building the request");
            return REQ_UNREACHABLE;
        }
        h = t;
    }
    CURL *c = P->curl;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, a);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    } else {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, strcmp(method, "GET") == 0 ? NULL : method);
    }
    CURLcode cc = curl_easy_perform(c);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    explicit_bzero(auth, sizeof auth);
    curl_slist_free_all(h);   /* the token's copy in it: freed here */
    if (a->over) {
        answer_free(a);
        return REQ_TOO_BIG;
    }
    if (cc != CURLE_OK) {
        if (!P->curl_err[0] || cc == CURLE_WRITE_ERROR)
            snprintf(P->curl_err, sizeof P->curl_err, "%s",
                     cc == CURLE_WRITE_ERROR ? "out of memory reading the answer" : curl_easy_strerror(cc));
        answer_free(a);
        return REQ_UNREACHABLE;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    if (!a->body && !(a->body = calloc(1, 1))) return REQ_UNREACHABLE;
    return REQ_OK;
}

/* What an error answer says: problem+json's detail (else its title), else
 * the start of the body, else nothing. Into out (n bytes). */
static void problem_text(const answer *a, char *out, size_t n) {
    out[0] = '\0';
    cJSON *o = a->body ? cJSON_ParseWithLength(a->body, a->len) : NULL;
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(o, "detail");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "title");
    if (cJSON_IsString(d) && *d->valuestring) snprintf(out, n, "%s", d->valuestring);
    else if (cJSON_IsString(t) && *t->valuestring) snprintf(out, n, "%s", t->valuestring);
    else if (a->body && a->len) snprintf(out, n, "%.200s", a->body);
    cJSON_Delete(o);
    for (char *p = out; *p; p++)   /* one line */
        if (*p == '\n' || *p == '\r') *p = ' ';
}

/* ---- the files of DIR ---------------------------------------------------------- */

/* The file's bytes (at most MAX_FILE, the loader's reader), malloc'd in *src; 0, or -1 with why. */
static int read_file(const char *path, char **src, size_t *len, char *why, size_t n) {
    vigil_status st = vigil_rules_read_file(path, MAX_FILE, src, len);
    if (st == VIGIL_OK) return 0;
    if (st == VIGIL_ENOTFOUND) snprintf(why, n, "cannot open: %s", strerror(errno));
    else if (st == VIGIL_ETOOBIG) snprintf(why, n, "the file is over the %zu MiB limit", MAX_FILE >> 20);
    else if (st == VIGIL_ENOMEM) snprintf(why, n, "out of memory reading the file");
    else snprintf(why, n, "cannot read: %s", strerror(errno));
    return -1;
}

/* vigil_rules_walk callback: remember each file; a directory that cannot be
 * read is reported and counted. */
static void on_walk(void *ud, const char *path, vigil_status s, const char *msg) {
    pusher *P = ud;
    if (s != VIGIL_OK) {
        say(P, "%s: %s", path, msg);
        P->dir_errors++;
        return;
    }
    if (P->nfiles == MAX_FILES) {
        if (!P->dir_errors++) say(P, "%s: more than %d rule files: the rest is not pushed", path, MAX_FILES);
        return;
    }
    if (P->nfiles == P->capfiles) {
        int nc = P->capfiles ? P->capfiles * 2 : 64;
        rfile *nf = realloc(P->files, (size_t)nc * sizeof *nf);
        if (!nf) {
            P->oom = 1;
            return;
        }
        P->files = nf;
        P->capfiles = nc;
    }
    rfile *f = &P->files[P->nfiles];
    memset(f, 0, sizeof *f);
    if (!(f->path = strdup(path))) {
        P->oom = 1;
        return;
    }
    P->nfiles++;
}

static void add_local(pusher *P, const char *name) {
    if (P->nlocal == P->caplocal) {
        int nc = P->caplocal ? P->caplocal * 2 : 64;
        char **nl = realloc(P->local, (size_t)nc * sizeof *nl);
        if (!nl) {
            P->oom = 1;
            return;
        }
        P->local = nl;
        P->caplocal = nc;
    }
    if (!(P->local[P->nlocal] = strdup(name))) P->oom = 1;
    else P->nlocal++;
}

static void refuse_file(pusher *P, rfile *f) {
    f->refused = 1;
    P->n_refused++;
}

/* Compile one file from the bytes that will be sent; refuse it (with a
 * line saying why) unless it defines exactly one rule. */
static void compile_file(pusher *P, rfile *f, const vigil_rules_opts *ro) {
    char why[512];
    if (read_file(f->path, &f->src, &f->len, why, sizeof why) != 0) {
        say(P, "%s: refused: %s", f->path, why);
        refuse_file(P, f);
        P->nameless++;
        return;
    }
    vigil_error errs[MAX_ERRS];
    int nerrs = 0, n = 0;
    vigil_rule_info info[8];
    vigil_status s = vigil_rules_inspect(f->path, f->src, f->len, ro, info, 8, &n, errs, MAX_ERRS, &nerrs);
    if (s != VIGIL_OK) {
        say(P, "%s: refused: does not compile, nothing sent", f->path);
        char buf[1024];
        for (int i = 0; i < nerrs; i++) {
            vigil_error_format(&errs[i], buf, sizeof buf);
            say(P, "  %s", buf);
        }
        if (!nerrs) say(P, "  %s: %s", f->path, vigil_status_str(s));
        refuse_file(P, f);
        P->nameless++;
        return;
    }
    for (int i = 0; i < n && i < 8; i++) add_local(P, info[i].name);
    if (n == 1) {
        snprintf(f->name, sizeof f->name, "%s", info[0].name);
        f->version = info[0].version;   /* 0: the source declares none */
    } else if (n == 0) {
        say(P, "%s: refused: defines no rule (a pushed file calls rule{} once)", f->path);
        refuse_file(P, f);
    } else {
        char names[600] = "";
        size_t used = 0;
        for (int i = 0; i < n && i < 8 && used < sizeof names - 80; i++) {
            int w = snprintf(names + used, sizeof names - used, "%s%s", i ? ", " : "", info[i].name);
            if (w > 0) used += (size_t)w;
        }
        say(P, "%s: refused: defines %d rules (%s%s); the API takes one rule per PUT: split the file into one "
               "file per rule", f->path, n, names, n > 8 || used >= sizeof names - 80 ? ", …" : "");
        refuse_file(P, f);
    }
}

/* The server's latest version of `name` (0: none, 404) and, when its answer
 * carries the versions, that version's source (malloc'd, or NULL). 0, or -1
 * with a refusal line printed; REQ_UNREACHABLE when no answer came. */
static int latest_of(pusher *P, const rfile *f, int *latest, char **src) {
    char path[128];
    snprintf(path, sizeof path, "/v1/rules/%s", f->name);
    long st;
    answer a;
    *latest = 0;
    *src = NULL;
    int r = request(P, "GET", path, NULL, 0, &st, &a);
    if (r == REQ_UNREACHABLE) return r;
    if (r == REQ_TOO_BIG) {
        say(P, "%s: refused: GET %s%s answered with more than %zu MiB", f->name, P->server, path, MAX_ANSWER >> 20);
        return -1;
    }
    if (st == 404) {
        answer_free(&a);
        return 0;
    }
    cJSON *o = st == 200 ? cJSON_ParseWithLength(a.body, a.len) : NULL;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "version");
    if (st != 200 || !cJSON_IsNumber(v) || v->valuedouble < 1) {
        char det[1024];
        problem_text(&a, det, sizeof det);
        if (st == 200) say(P, "%s: refused: GET %s%s: the answer has no \"version\"", f->name, P->server, path);
        else say(P, "%s: refused: GET %s%s answered HTTP %ld%s%s", f->name, P->server, path, st, *det ? ": " : "", det);
        cJSON_Delete(o);
        answer_free(&a);
        return -1;
    }
    *latest = v->valueint;
    const cJSON *vs = cJSON_GetObjectItemCaseSensitive(o, "versions"), *e;
    cJSON_ArrayForEach(e, vs) {
        const cJSON *ev = cJSON_GetObjectItemCaseSensitive(e, "version");
        const cJSON *es = cJSON_GetObjectItemCaseSensitive(e, "source");
        if (cJSON_IsNumber(ev) && ev->valueint == *latest && cJSON_IsString(es)) *src = strdup(es->valuestring);
    }
    cJSON_Delete(o);
    answer_free(&a);
    return 0;
}

/* --dry-run: what a PUT would do, from the latest version and its source. */
static void predict(pusher *P, const rfile *f, int latest, const char *server_src) {
    if (!latest) {
        say(P, "%s: new rule, version %d (dry run: not sent)", f->name, f->version ? f->version : 1);
        P->n_new++;
    } else if (server_src && strlen(server_src) == f->len && memcmp(server_src, f->src, f->len) == 0) {
        say(P, "%s: unchanged (version %d)", f->name, latest);
        P->n_unchanged++;
    } else if (f->version > latest || f->version == 0) {   /* 0: no `version` in the source */
        int next = f->version > latest ? f->version : latest + 1;
        say(P, "%s: version %d -> %d%s (dry run: not sent)", f->name, latest, next,
            server_src ? "" : ", or unchanged if the server has this very source");
        P->n_changed++;
    } else {
        say(P, "%s: refused: the source says version %d, not greater than the latest version %d (dry run: the "
               "server would answer 409%s)", f->name, f->version, latest,
            server_src ? "" : " unless it has this very source");
        P->n_refused++;
    }
}

/* The errors of a 422 (problem+json "errors": [{line, message, rule?}]),
 * one line each, named by the local file (the body is its text, so the
 * lines are the file's). */
static void print_errors(pusher *P, const rfile *f, const answer *a) {
    cJSON *o = cJSON_ParseWithLength(a->body, a->len);
    const cJSON *es = cJSON_GetObjectItemCaseSensitive(o, "errors"), *e;
    cJSON_ArrayForEach(e, es) {
        const cJSON *line = cJSON_GetObjectItemCaseSensitive(e, "line");
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(e, "message");
        const cJSON *rule = cJSON_GetObjectItemCaseSensitive(e, "rule");
        char where[600], r[100] = "";
        if (cJSON_IsNumber(line) && line->valueint > 0) snprintf(where, sizeof where, "%s:%d", f->path, line->valueint);
        else snprintf(where, sizeof where, "%s", f->path);
        if (cJSON_IsString(rule) && *rule->valuestring) snprintf(r, sizeof r, "rule '%.63s': ", rule->valuestring);
        say(P, "  %s: %s%s", where, r, cJSON_IsString(msg) ? msg->valuestring : "(no message)");
    }
    cJSON_Delete(o);
}

/* PUT the file; one line saying what the server did. REQ_UNREACHABLE when
 * no answer came. */
static int put_rule(pusher *P, const rfile *f, int latest) {
    char path[128];
    snprintf(path, sizeof path, "/v1/rules/%s", f->name);
    long st;
    answer a;
    int r = request(P, "PUT", path, f->src, f->len, &st, &a);
    if (r == REQ_UNREACHABLE) return r;
    if (r == REQ_TOO_BIG) {
        say(P, "%s: refused: PUT %s%s answered with more than %zu MiB", f->name, P->server, path, MAX_ANSWER >> 20);
        P->n_refused++;
        return 0;
    }
    char det[1024];
    problem_text(&a, det, sizeof det);
    if (st == 200 || st == 201) {
        cJSON *o = cJSON_ParseWithLength(a.body, a.len);
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "version");
        int got = cJSON_IsNumber(v) ? v->valueint : 0;
        cJSON_Delete(o);
        if (got < 1) {
            say(P, "%s: refused: PUT %s%s answered HTTP %ld without a \"version\"", f->name, P->server, path, st);
            P->n_refused++;
        } else if (!latest || st == 201) {
            say(P, "%s: new rule, version %d", f->name, got);
            P->n_new++;
        } else if (got == latest) {
            say(P, "%s: unchanged (version %d)", f->name, got);
            P->n_unchanged++;
        } else {
            say(P, "%s: version %d -> %d", f->name, latest, got);
            P->n_changed++;
        }
    } else if (st == 422) {
        say(P, "%s: refused: %s", f->name, *det ? det : "the server could not compile it (HTTP 422)");
        print_errors(P, f, &a);
        P->n_refused++;
    } else if (st == 409) {
        say(P, "%s: refused: %s", f->name, *det ? det : "conflict (HTTP 409)");
        P->n_refused++;
    } else {
        say(P, "%s: refused: PUT %s%s answered HTTP %ld%s%s", f->name, P->server, path, st, *det ? ": " : "", det);
        P->n_refused++;
    }
    answer_free(&a);
    return 0;
}

/* GET /v1/rules: the server's rules, or NULL (a line printed; *unreachable
 * set when no answer came). */
static cJSON *server_rules(pusher *P, int *unreachable) {
    long st;
    answer a;
    *unreachable = 0;
    int r = request(P, "GET", "/v1/rules", NULL, 0, &st, &a);
    if (r == REQ_UNREACHABLE) {
        *unreachable = 1;
        return NULL;
    }
    if (r == REQ_TOO_BIG) {
        complain(P, "vigil rules push: GET %s/v1/rules answered with more than %zu MiB", P->server, MAX_ANSWER >> 20);
        return NULL;
    }
    cJSON *o = st == 200 ? cJSON_ParseWithLength(a.body, a.len) : NULL;
    if (!cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(o, "rules"))) {
        char det[1024];
        problem_text(&a, det, sizeof det);
        if (st == 200) complain(P, "vigil rules push: GET %s/v1/rules: the answer has no \"rules\" list", P->server);
        else complain(P, "vigil rules push: GET %s/v1/rules answered HTTP %ld%s%s", P->server, st, *det ? ": " : "", det);
        cJSON_Delete(o);
        o = NULL;
    }
    answer_free(&a);
    return o;
}

static int defined_here(const pusher *P, const char *name) {
    for (int i = 0; i < P->nlocal; i++)
        if (strcmp(P->local[i], name) == 0) return 1;
    return 0;
}

/* A rule name defined by two files: both are refused (`vigil check DIR`
 * refuses the directory for it). */
static void refuse_duplicates(pusher *P) {
    for (int i = 0; i < P->nfiles; i++) {
        rfile *f = &P->files[i];
        if (!f->name[0]) continue;
        for (int j = i + 1; j < P->nfiles; j++) {
            rfile *g = &P->files[j];
            if (strcmp(f->name, g->name) != 0) continue;
            say(P, "%s: refused: rule '%s' is also defined in %s; a rule name must be unique", g->path, g->name, f->path);
            if (!g->refused) refuse_file(P, g);
            if (!f->refused) {
                say(P, "%s: refused: rule '%s' is also defined in %s; a rule name must be unique", f->path, f->name,
                    g->path);
                refuse_file(P, f);
            }
        }
    }
}

static int unreachable(const pusher *P) {
    complain(P, "vigil rules push: cannot reach the server at %s: %s", P->server,
             P->curl_err[0] ? P->curl_err : "no answer");
    return 2;
}

static int run(pusher *P, const char *dir) {
    char lists[PATH_MAX];
    struct stat st;
    int w = snprintf(lists, sizeof lists, "%s/lists", dir);
    vigil_rules_opts ro = {0};
    if (w > 0 && (size_t)w < sizeof lists && stat(lists, &st) == 0 && S_ISDIR(st.st_mode)) ro.lists_dir = lists;

    vigil_rules_walk(dir, on_walk, P);
    if (P->oom) {
        complain(P, "vigil rules push: out of memory listing %s", dir);
        return 1;
    }
    for (int i = 0; i < P->nfiles; i++) compile_file(P, &P->files[i], &ro);
    if (P->oom) {
        complain(P, "vigil rules push: out of memory");
        return 1;
    }
    refuse_duplicates(P);
    if (!P->nfiles && !P->dir_errors) say(P, "%s: no *.lua rule files", dir);

    int unr;
    cJSON *list = server_rules(P, &unr);
    if (unr) return unreachable(P);
    if (!list) return 1;   /* it answered, but not with a rule list: said above */
    for (int i = 0; i < P->nfiles; i++) {
        rfile *f = &P->files[i];
        if (f->refused) continue;
        int latest;
        char *server_src;
        int r = latest_of(P, f, &latest, &server_src);
        if (r == REQ_UNREACHABLE) {
            cJSON_Delete(list);
            return unreachable(P);
        }
        if (r != 0) {
            P->n_refused++;
            continue;
        }
        if (P->dry_run) predict(P, f, latest, server_src);
        else if (put_rule(P, f, latest) == REQ_UNREACHABLE) {
            free(server_src);
            cJSON_Delete(list);
            complain(P, "vigil rules push: no answer to PUT /v1/rules/%s: it may or may not have been applied; "
                        "GET /v1/rules/%s says which version runs", f->name, f->name);
            return unreachable(P);
        }
        free(server_src);
    }
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(list, "rules")) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(r, "name");
        const cJSON *state = cJSON_GetObjectItemCaseSensitive(r, "state");
        if (!cJSON_IsString(name) || defined_here(P, name->valuestring)) continue;
        if (cJSON_IsString(state) && strcmp(state->valuestring, "deleted") == 0) continue;
        say(P, "%s: on the server only (not deleted)", name->valuestring);
        P->n_server_only++;
    }
    cJSON_Delete(list);
    if (P->n_server_only && P->nameless)
        say(P, "(%d file%s could not be compiled: %s rules may be among those on the server only)", P->nameless,
            P->nameless == 1 ? "" : "s", P->nameless == 1 ? "its" : "their");
    say(P, "%d new, %d changed, %d unchanged, %d refused; %d on the server only%s", P->n_new, P->n_changed,
        P->n_unchanged, P->n_refused, P->n_server_only, P->dry_run ? " (dry run: nothing sent)" : "");
    return P->n_refused || P->dir_errors ? 1 : 0;
}

/* A header value must not break the request: no control characters. */
static int valid_token(const char *t) {
    if (!*t || strlen(t) > 900) return 0;
    for (; *t; t++)
        if ((unsigned char)*t < 0x20 || *t == 0x7f) return 0;
    return 1;
}

int vigil_cmd_rules_push(int argc, char **argv) {
    static pusher P;   /* static: the URL and error buffers are large */
    memset(&P, 0, sizeof P);
    const char *dir = NULL, *server = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage();
            return 0;
        }
        if (strcmp(a, "--dry-run") == 0) {
            P.dry_run = 1;
        } else if (strcmp(a, "--server") == 0 || strcmp(a, "--token") == 0) {
            const char *v = vigil_cli_value(argc, argv, &i);
            if (!v) return 2;
            if (a[2] == 's') server = v;
            else P.token = v;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "vigil rules push: unknown option '%s'\n", a);
            usage();
            return 2;
        } else if (dir) {
            fprintf(stderr, "vigil rules push: one directory only ('%s' and '%s')\n", dir, a);
            return 2;
        } else {
            dir = a;
        }
    }
    if (!dir || !server) {
        fprintf(stderr, "vigil rules push: %s\n", !dir ? "which directory? (vigil rules push DIR --server URL)"
                                                       : "--server URL is required");
        usage();
        return 2;
    }
    if (P.token && !valid_token(P.token)) {
        fprintf(stderr, "vigil rules push: --token: expected a non-empty token of at most 900 characters without "
                        "control characters (not printed)\n");
        return 2;
    }
    size_t sl = strlen(server);
    while (sl && server[sl - 1] == '/') sl--;
    size_t scheme = strncmp(server, "http://", 7) == 0 ? 7 : strncmp(server, "https://", 8) == 0 ? 8 : 0;
    if (!scheme || sl <= scheme || sl >= sizeof P.server) {
        P.server[0] = '\0';
        complain(&P, "vigil rules push: --server '%s': expected an http:// or https:// URL such as "
                     "http://127.0.0.1:8080", server);
        return 2;
    }
    memcpy(P.server, server, sl);
    P.server[sl] = '\0';
    struct stat st;
    if (stat(dir, &st) != 0) {
        fprintf(stderr, "vigil rules push: '%s': %s\n", dir, strerror(errno));
        return 2;
    }
    if (!S_ISDIR(st.st_mode)) {
        fprintf(stderr, "vigil rules push: '%s' is not a directory (push a directory of rule files)\n", dir);
        return 2;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(P.curl = curl_easy_init())) {
        fprintf(stderr, "vigil rules push: cannot start libcurl\n");
        return 2;
    }
    CURL *c = P.curl;
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, P.curl_err);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, keep);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, TIMEOUT_S);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);   /* a redirect is an answer, not followed with the token */
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    if (!getenv("NO_PROXY") && !getenv("no_proxy"))    /* a proxy from the environment, never for loopback */
        curl_easy_setopt(c, CURLOPT_NOPROXY, "localhost,127.0.0.1,::1");
    int rc = run(&P, dir);
    curl_easy_cleanup(c);
    curl_global_cleanup();
    for (int i = 0; i < P.nfiles; i++) {
        free(P.files[i].path);
        free(P.files[i].src);
    }
    free(P.files);
    for (int i = 0; i < P.nlocal; i++) free(P.local[i]);
    free(P.local);
    fflush(stdout);
    return rc;
}
