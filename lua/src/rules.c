/* rules.c — loading rule files into a ruleset: the entry points of lua/
 * (vigil_rules_load, vigil_rules_load_string), used by `vigil check`,
 * `vigil replay`, `vigil serve` and the rules API.
 *
 * It walks a directory (sorted by name, recursing into subdirectories except
 * lists/ and hidden ones), runs every file in its own sandbox (vigil/sandbox.h)
 * with the DSL (prelude.c, compile.c), reads the in_list() files on first use
 * and collects every error of every file, so that one `vigil check` shows
 * them all. Only a load with no error at all is finalized and returned: a
 * rule that fails to compile never replaces a running one (DESIGN.md §4). */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "rules_int.h"

#define MAX_FILE_BYTES ((size_t)16 << 20)   /* a rule file over this is refused */
#define MAX_DEPTH 8                         /* directory nesting */
#define MAX_LIST_NAME 128

struct loader {
    vigil_ruleset *rs;
    const vigil_rules_opts *opts;
    char lists_dir[PATH_MAX];
    vigil_error *errs;
    int maxerrs, nerrs;          /* stored errors */
    int total;                   /* all errors, stored or not */
    vigil_status first;          /* status of the first error */
    char **lists;                /* names of the lists registered so far */
    int nlists, caplists;
    /* host functions (host.c) */
    vhost_proto *proto;          /* the ruleset's host ud, once a file defines a function */
    int file_first;              /* proto->nfn when the current file started */
    struct vhost_inst *inst;     /* replaying for this instance (rule{} adds nothing) */
    int replay_next, replay_end; /* ids the replayed file registers: next .. end - 1 */
    int running;                 /* the replay is over: rule{} is refused */
    int file_rules;              /* rule{} calls of the current file */
    /* a catalog build (vigil_rules_build): the current source's picks */
    const vigil_rule_source *src;
    unsigned char *picked;       /* per pick of src: the source defined it */
    /* vigil_rules_inspect: what the source defines */
    vigil_rule_info *info;
    int ninfo, maxinfo;
};

vigil_ruleset *ld_ruleset(loader *ld) { return ld->rs; }
const vigil_rules_opts *ld_opts(loader *ld) { return ld->opts; }

int ld_pick(loader *ld, vigil_rule_def *d, int declared_version, int line) {
    if (ld->info) {
        if (ld->ninfo < ld->maxinfo) {
            vigil_rule_info *in = &ld->info[ld->ninfo];
            snprintf(in->name, sizeof in->name, "%s", d->name);
            in->version = declared_version;
            in->line = line;
            in->mode = d->mode;
        }
        ld->ninfo++;
    }
    if (!ld->src) return 1;
    for (int i = 0; i < ld->src->npicks; i++) {
        const vigil_rule_pick *p = &ld->src->picks[i];
        if (strcmp(p->name, d->name) != 0) continue;
        d->version = p->version;
        d->mode = p->mode;
        d->draining = p->draining;
        d->inherits = p->inherits;
        ld->picked[i] = 1;
        return 1;
    }
    return 0;
}
vigil_rule_examples *ld_examples(loader *ld) { return ld->opts ? ld->opts->examples : NULL; }
int ld_count_rule(loader *ld) { return ++ld->file_rules; }

/* vigil_sandbox_opts.extend: run the prelude and add the DSL names to the
 * file's environment (over the base names: the DSL's own wins). */
static void add_dsl(lua_State *L, int env, void *ud) {
    prelude_push(L, ud);
    int dsl = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, dsl)) {
        if (lua_type(L, -2) == LUA_TSTRING) {
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, env);
        } else {
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
}

vigil_status ld_sandbox(loader *ld, const char *file, const vigil_rules_opts *o, vigil_sandbox **out,
                        vigil_error *err) {
    vigil_sandbox_opts so = {
        .name = file,
        .what = "rule file",
        .mem_cap = o ? o->mem_cap : 0,
        .instr_budget = o ? o->instr_budget : 0,
        .wall_ms = o ? o->wall_ms : 0,
        .flags = VIGIL_SANDBOX_PCALL | VIGIL_SANDBOX_PATTERNS | VIGIL_SANDBOX_DUMP_ERROR,
        .absent_msg = "undefined global '%s' (not available in the rule sandbox)",
        .extend = add_dsl,
        .undefined_hint = prelude_undefined_hint,
        .ud = ld,
    };
    ld->file_rules = 0;
    return vigil_sandbox_create(&so, out, err);
}

/* A rule file's failure, whatever the sandbox's status: a compile error
 * (ENOMEM stays: the machine, not the file). */
static vigil_status file_status(vigil_status s) {
    return s == VIGIL_OK || s == VIGIL_ENOMEM ? s : VIGIL_ECOMPILE;
}

void vigil_rule_examples_free(vigil_rule_examples *ex) {
    if (!ex) return;
    for (int i = 0; i < ex->n; i++) {
        free(ex->v[i].events);
        free(ex->v[i].matches);        /* one block: the matches, their id arrays and strings */
        free((void *)ex->v[i].late);   /* one block: the id array and strings */
    }
    free(ex->v);
    memset(ex, 0, sizeof *ex);
}

/* The error's text may come from the file (its error() calls, a name it
 * gave): no control character goes on to a terminal or a log line. */
void ld_add_error(loader *ld, vigil_status s, const vigil_error *e) {
    if (ld->total++ == 0) ld->first = s;
    if (ld->errs && ld->nerrs < ld->maxerrs) {
        ld->errs[ld->nerrs] = *e;
        vigil_error_escape(&ld->errs[ld->nerrs++]);
    }
}

static void add_msg(loader *ld, vigil_status s, const char *file, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void add_msg(loader *ld, vigil_status s, const char *file, const char *fmt, ...) {
    vigil_error e;
    vigil_error_clear(&e);
    snprintf(e.file, sizeof e.file, "%s", file ? file : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.msg, sizeof e.msg, fmt, ap);
    va_end(ap);
    ld_add_error(ld, s, &e);
}

static int valid_list_name(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > MAX_LIST_NAME || s[0] == '.') return 0;
    for (; *s; s++)
        if (!(isalnum((unsigned char)*s) || *s == '_' || *s == '-' || *s == '.')) return 0;
    return 1;
}

/* One value per line; blank lines and lines starting with '#' are skipped;
 * surrounding white space (and a CR) is trimmed. */
static vigil_status read_list(vigil_ruleset *rs, const char *name, FILE *f) {
    char *line = NULL, **vals = NULL;
    size_t cap = 0, n = 0, vcap = 0;
    ssize_t len;
    vigil_status s = VIGIL_OK;
    while ((len = getline(&line, &cap, f)) >= 0) {
        char *b = line, *e = line + len;
        while (b < e && isspace((unsigned char)*b)) b++;
        while (e > b && isspace((unsigned char)e[-1])) e--;
        if (b == e || *b == '#') continue;
        if (n == vcap) {
            size_t nc = vcap ? vcap * 2 : 64;
            char **nv = realloc(vals, nc * sizeof *nv);
            if (!nv) {
                s = VIGIL_ENOMEM;
                break;
            }
            vals = nv;
            vcap = nc;
        }
        if (!(vals[n] = malloc((size_t)(e - b) + 1))) {
            s = VIGIL_ENOMEM;
            break;
        }
        memcpy(vals[n], b, (size_t)(e - b));
        vals[n++][e - b] = '\0';
    }
    if (s == VIGIL_OK && ferror(f)) s = VIGIL_EIO;
    if (s == VIGIL_OK) s = vigil_ruleset_add_list(rs, name, (const char *const *)vals, n);
    for (size_t i = 0; i < n; i++) free(vals[i]);
    free(vals);
    free(line);
    return s;
}

vigil_status ld_need_list(loader *ld, const char *name, vigil_error *err) {
    if (ld->inst) return VIGIL_OK;    /* a replay adds no rule: its lists are not needed */
    for (int i = 0; i < ld->nlists; i++)
        if (strcmp(ld->lists[i], name) == 0) return VIGIL_OK;
    if (!valid_list_name(name))
        return vigil_error_set(err, VIGIL_ECOMPILE,
                               "in_list(\"%s\"): a list name is letters, digits, '_', '-' and '.' "
                               "(the file lists/NAME.txt)", name);
    char path[PATH_MAX + 200];
    snprintf(path, sizeof path, "%s/%s.txt", ld->lists_dir, name);
    size_t tlen = 0;
    const char *text = ld->opts && ld->opts->list_text ? ld->opts->list_text(ld->opts->list_ud, name, &tlen) : NULL;
    if (text) snprintf(path, sizeof path, "list %s (from the lists API)", name);
    FILE *f = text ? (tlen ? fmemopen((void *)(uintptr_t)text, tlen, "r") : fopen("/dev/null", "r")) : fopen(path, "r");
    if (!f)
        return vigil_error_set(err, VIGIL_ECOMPILE, "unknown list '%s': cannot read %s (%s)", name, path,
                               strerror(errno));
    vigil_status s = read_list(ld->rs, name, f);
    fclose(f);
    if (s == VIGIL_EIO) return vigil_error_set(err, VIGIL_ECOMPILE, "in_list(\"%s\"): error reading %s", name, path);
    if (s != VIGIL_OK) return s;
    if (ld->nlists == ld->caplists) {
        int nc = ld->caplists ? ld->caplists * 2 : 8;
        char **nl = realloc(ld->lists, (size_t)nc * sizeof *nl);
        if (!nl) return VIGIL_ENOMEM;
        ld->lists = nl;
        ld->caplists = nc;
    }
    size_t n = strlen(name);
    if (!(ld->lists[ld->nlists] = malloc(n + 1))) return VIGIL_ENOMEM;
    memcpy(ld->lists[ld->nlists++], name, n + 1);
    return VIGIL_OK;
}

/* ---- host functions ------------------------------------------------------ */

int ld_replaying(const loader *ld) { return ld->inst != NULL && !ld->running; }
int ld_running(const loader *ld) { return ld->running; }

int ld_host_fn(loader *ld, lua_State *L, int idx, vigil_error *err) {
    if (ld->running) {
        vigil_error_set(err, VIGIL_ECOMPILE, "rule{} cannot be called from a function predicate");
        return -1;
    }
    if (ld->inst) {                   /* replay: the same functions come in the same order */
        if (ld->replay_next >= ld->replay_end) {
            vigil_error_set(err, VIGIL_ECOMPILE, "the rule file defined more functions when run again "
                                                 "(it must not depend on time or randomness)");
            return -1;
        }
        vhost_keep(ld->inst, ld->replay_next, L, idx);
        return ld->replay_next++;
    }
    if (!ld->proto) {
        vhost_proto *p = calloc(1, sizeof *p);
        if (!p || vigil_ruleset_set_host(ld->rs, &vhost_callbacks, p) != VIGIL_OK) {
            free(p);
            vigil_error_set(err, VIGIL_ENOMEM, "out of memory registering a function");
            return -1;
        }
        snprintf(p->lists_dir, sizeof p->lists_dir, "%s", ld->lists_dir);
        p->mem_cap = ld->opts ? ld->opts->mem_cap : 0;
        ld->proto = p;
    }
    return ++ld->proto->nfn;
}

/* Keep the file's text when it defined functions: every engine's host
 * instance runs it again (host.c). */
static void keep_src(loader *ld, const char *file, const char *src, size_t len) {
    vhost_proto *p = ld->proto;
    if (!p || p->nfn == ld->file_first) return;
    if (p->nsrcs == p->capsrcs) {
        int nc = p->capsrcs ? p->capsrcs * 2 : 4;
        vhost_src *ns = realloc(p->srcs, (size_t)nc * sizeof *ns);
        if (!ns) goto oom;
        p->srcs = ns;
        p->capsrcs = nc;
    }
    vhost_src *hs = &p->srcs[p->nsrcs];
    hs->file = strdup(file);
    hs->src = malloc(len ? len : 1);
    if (!hs->file || !hs->src) {
        free(hs->file);
        free(hs->src);
        goto oom;
    }
    memcpy(hs->src, src, len);
    hs->len = len;
    hs->first = ld->file_first + 1;
    hs->n = p->nfn - ld->file_first;
    p->nsrcs++;
    return;
oom:
    add_msg(ld, VIGIL_ENOMEM, file, "out of memory keeping the file for its functions");
}

vigil_status ld_replay(const vhost_proto *p, int i, struct vhost_inst *in, vigil_sandbox **sbp, loader **ldp,
                       vigil_error *err) {
    const vhost_src *hs = &p->srcs[i];
    vigil_rules_opts o = {.lists_dir = p->lists_dir, .mem_cap = p->mem_cap};
    loader *ld = calloc(1, sizeof *ld);
    *ldp = ld;
    if (!ld) return vigil_error_set(err, VIGIL_ENOMEM, "out of memory");
    ld->opts = NULL;
    ld->inst = in;
    ld->replay_next = hs->first;
    ld->replay_end = hs->first + hs->n;
    snprintf(ld->lists_dir, sizeof ld->lists_dir, "%s", p->lists_dir);
    if (!(ld->rs = vigil_ruleset_create())) return vigil_error_set(err, VIGIL_ENOMEM, "out of memory");
    ld->errs = err;
    ld->maxerrs = 1;
    vigil_status s = file_status(ld_sandbox(ld, hs->file, &o, sbp, err));
    if (s == VIGIL_OK) s = file_status(vigil_sandbox_run(*sbp, hs->src, hs->len, 0, err));
    if (s == VIGIL_OK && ld->total) s = ld->first;
    if (s == VIGIL_OK && ld->replay_next != ld->replay_end) {
        snprintf(err->file, sizeof err->file, "%s", hs->file);
        s = vigil_error_set(err, VIGIL_ECOMPILE, "the rule file defined %d functions when run again, %d at load "
                                                 "(it must not depend on time or randomness)",
                            ld->replay_next - hs->first, hs->n);
    }
    vigil_ruleset_release(ld->rs);   /* the replay's rules are not used */
    ld->rs = NULL;
    ld->running = 1;
    return s;
}

void ld_replay_free(loader *ld) {
    if (!ld) return;
    for (int i = 0; i < ld->nlists; i++) free(ld->lists[i]);
    free(ld->lists);
    free(ld);
}

/* Run one source text in a fresh sandbox; errors go to the loader. */
static void load_src(loader *ld, const char *file, const char *src, size_t len) {
    vigil_sandbox *sb = NULL;
    vigil_error e;
    vigil_error_clear(&e);
    ld->file_first = ld->proto ? ld->proto->nfn : 0;
    vigil_status s = file_status(ld_sandbox(ld, file, ld->opts, &sb, &e));
    if (s == VIGIL_OK) s = file_status(vigil_sandbox_run(sb, src, len, 0, &e));
    if (s != VIGIL_OK) ld_add_error(ld, s, &e);
    else keep_src(ld, file, src, len);
    vigil_sandbox_destroy(sb);
}

vigil_status vigil_rules_read_file(const char *path, size_t max, char **src, size_t *len) {
    if (!max) max = MAX_FILE_BYTES;
    *src = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return VIGIL_ENOTFOUND;
    char *buf = NULL;
    size_t n = 0, cap = 0;
    vigil_status s = VIGIL_OK;
    for (;;) {
        if (cap - n < 4096) {
            size_t nc = cap ? cap * 2 : 16384;
            if (nc > max + 4096) nc = max + 4096;
            if (nc <= cap) {
                s = VIGIL_ETOOBIG;
                break;
            }
            char *nb = realloc(buf, nc + 1);
            if (!nb) {
                s = VIGIL_ENOMEM;
                break;
            }
            buf = nb;
            cap = nc;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (n > max) {
            s = VIGIL_ETOOBIG;
            break;
        }
        if (r == 0) {
            if (ferror(f)) s = VIGIL_EIO;
            break;
        }
    }
    fclose(f);
    if (s == VIGIL_OK && !buf && !(buf = malloc(1))) s = VIGIL_ENOMEM;
    if (s != VIGIL_OK) {
        free(buf);
        return s;
    }
    buf[n] = '\0';
    *src = buf;
    *len = n;
    return VIGIL_OK;
}

static void load_file(loader *ld, const char *file) {
    char *buf = NULL;
    size_t n = 0;
    vigil_status s = vigil_rules_read_file(file, MAX_FILE_BYTES, &buf, &n);
    if (s == VIGIL_ENOTFOUND)
        add_msg(ld, VIGIL_EIO, file, "cannot open: %s", strerror(errno));
    else if (s == VIGIL_ETOOBIG)
        add_msg(ld, s, file, "rule file is over the %zu MiB limit", MAX_FILE_BYTES >> 20);
    else if (s != VIGIL_OK)
        add_msg(ld, s, file, "cannot read: %s", vigil_status_str(s));
    else
        load_src(ld, file, buf, n);
    free(buf);
}

static int cmp_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int ends_with(const char *s, const char *suf) {
    size_t n = strlen(s), m = strlen(suf);
    return n > m && strcmp(s + n - m, suf) == 0;
}

/* One directory of vigil_rules_walk: its entries sorted by name, then each
 * in turn (a subdirectory fully before the next name). */
static void walk(const char *dir, int depth, vigil_rules_walk_fn fn, void *ud) {
    DIR *d = opendir(dir);
    if (!d) {
        char msg[300];
        snprintf(msg, sizeof msg, "cannot open directory: %s", strerror(errno));
        fn(ud, dir, VIGIL_EIO, msg);
        return;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    int oom = 0;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 32;
            char **nn = realloc(names, nc * sizeof *nn);
            if (!nn) {
                oom = 1;
                break;
            }
            names = nn;
            cap = nc;
        }
        size_t len = strlen(de->d_name);
        if (!(names[n] = malloc(len + 1))) {
            oom = 1;
            break;
        }
        memcpy(names[n++], de->d_name, len + 1);
    }
    closedir(d);
    if (oom) fn(ud, dir, VIGIL_ENOMEM, "out of memory listing the directory");
    if (n) qsort(names, n, sizeof *names, cmp_name);
    for (size_t i = 0; i < n && !oom; i++) {
        char path[PATH_MAX];
        int w = snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (w < 0 || (size_t)w >= sizeof path) {
            char msg[300];
            snprintf(msg, sizeof msg, "path too long: %.200s", names[i]);
            fn(ud, dir, VIGIL_EINVAL, msg);
            continue;
        }
        struct stat st;
        if (stat(path, &st) != 0) continue;   /* a dangling symlink or a race: nothing to load */
        if (S_ISDIR(st.st_mode)) {
            if (strcmp(names[i], "lists") != 0 && depth < MAX_DEPTH) walk(path, depth + 1, fn, ud);
        } else if (S_ISREG(st.st_mode) && ends_with(names[i], ".lua")) {
            fn(ud, path, VIGIL_OK, NULL);
        }
    }
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
}

void vigil_rules_walk(const char *dir, vigil_rules_walk_fn fn, void *ud) {
    if (dir && fn) walk(dir, 0, fn, ud);
}

/* vigil_rules_walk's callback for a load: load each file, keep each error. */
static void load_walked(void *ud, const char *path, vigil_status s, const char *msg) {
    loader *ld = ud;
    if (s == VIGIL_OK) load_file(ld, path);
    else add_msg(ld, s, path, "%s", msg);
}

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static vigil_status begin_from(loader *ld, const vigil_rules_opts *opts, const char *rules_dir,
                               vigil_error *errs, int maxerrs, const vigil_ruleset *base) {
    memset(ld, 0, sizeof *ld);
    ld->opts = opts;
    ld->errs = errs;
    ld->maxerrs = errs && maxerrs > 0 ? maxerrs : 0;
    if (opts && opts->lists_dir) {
        snprintf(ld->lists_dir, sizeof ld->lists_dir, "%s", opts->lists_dir);
    } else {
        int w = snprintf(ld->lists_dir, sizeof ld->lists_dir, "%s/lists", rules_dir ? rules_dir : ".");
        if (!rules_dir || w < 0 || (size_t)w >= sizeof ld->lists_dir || !is_dir(ld->lists_dir))
            snprintf(ld->lists_dir, sizeof ld->lists_dir, "rules/lists");
    }
    ld->rs = vigil_ruleset_create_from(base);
    return ld->rs ? VIGIL_OK : VIGIL_ENOMEM;
}

static vigil_status begin(loader *ld, const vigil_rules_opts *opts, const char *rules_dir,
                          vigil_error *errs, int maxerrs) {
    return begin_from(ld, opts, rules_dir, errs, maxerrs, NULL);
}

static vigil_status finish(loader *ld, vigil_ruleset **out, int *nerrs) {
    if (ld->total == 0) {
        vigil_error e;
        vigil_error_clear(&e);
        vigil_status s = vigil_ruleset_finalize(ld->rs, &e);
        if (s != VIGIL_OK) {
            if (!e.msg[0]) snprintf(e.msg, sizeof e.msg, "finalizing the ruleset: %s", vigil_status_str(s));
            ld_add_error(ld, s, &e);
        }
    }
    for (int i = 0; i < ld->nlists; i++) free(ld->lists[i]);
    free(ld->lists);
    if (nerrs) *nerrs = ld->nerrs;
    if (ld->total) {
        vigil_ruleset_release(ld->rs);
        return ld->first;
    }
    *out = ld->rs;
    return VIGIL_OK;
}

vigil_status vigil_rules_load(const char *path, const vigil_rules_opts *opts, vigil_ruleset **out,
                              vigil_error *errs, int maxerrs, int *nerrs) {
    if (nerrs) *nerrs = 0;
    if (!out || !path) return VIGIL_EINVAL;
    *out = NULL;
    loader ld;
    struct stat st;
    int dir = stat(path, &st) == 0 && S_ISDIR(st.st_mode);
    char rules_dir[PATH_MAX];
    snprintf(rules_dir, sizeof rules_dir, "%s", path);
    if (!dir) {                                 /* the file's directory */
        char *slash = strrchr(rules_dir, '/');
        if (slash == rules_dir) slash[1] = '\0';
        else if (slash) *slash = '\0';
        else snprintf(rules_dir, sizeof rules_dir, ".");
    }
    vigil_status s = begin(&ld, opts, rules_dir, errs, maxerrs);
    if (s != VIGIL_OK) return s;
    if (stat(path, &st) != 0) {
        add_msg(&ld, VIGIL_ENOTFOUND, path, "no such file or directory");
    } else if (dir) {
        vigil_rules_walk(path, load_walked, &ld);
    } else {
        load_file(&ld, path);
    }
    return finish(&ld, out, nerrs);
}

vigil_status vigil_rules_load_string(const char *name, const char *src, size_t len,
                                     const vigil_rules_opts *opts, vigil_ruleset **out,
                                     vigil_error *errs, int maxerrs, int *nerrs) {
    if (nerrs) *nerrs = 0;
    if (!out || (!src && len)) return VIGIL_EINVAL;
    *out = NULL;
    loader ld;
    vigil_status s = begin(&ld, opts, NULL, errs, maxerrs);
    if (s != VIGIL_OK) return s;
    load_src(&ld, name && *name ? name : "<string>", src ? src : "", len);
    return finish(&ld, out, nerrs);
}

vigil_status vigil_rules_build(const vigil_rule_source *srcs, int n, const vigil_ruleset *base,
                               const vigil_rules_opts *opts, vigil_ruleset **out,
                               vigil_error *errs, int maxerrs, int *nerrs) {
    if (nerrs) *nerrs = 0;
    if (!out || n < 0 || (n && !srcs)) return VIGIL_EINVAL;
    *out = NULL;
    loader ld;
    vigil_status s = begin_from(&ld, opts, NULL, errs, maxerrs, base);
    if (s != VIGIL_OK) return s;
    for (int i = 0; i < n; i++) {
        const vigil_rule_source *src = &srcs[i];
        unsigned char picked[256];
        unsigned char *pk = src->npicks <= (int)sizeof picked ? picked : calloc((size_t)src->npicks, 1);
        if (!pk) {
            add_msg(&ld, VIGIL_ENOMEM, src->file, "out of memory");
            break;
        }
        memset(pk, 0, src->npicks <= (int)sizeof picked ? sizeof picked : (size_t)src->npicks);
        ld.src = src;
        ld.picked = pk;
        int before = ld.total;
        load_src(&ld, src->file && *src->file ? src->file : "<string>", src->src ? src->src : "", src->len);
        for (int j = 0; j < src->npicks && ld.total == before; j++)
            if (!pk[j]) add_msg(&ld, VIGIL_ENOTFOUND, src->file, "defines no rule '%s'", src->picks[j].name);
        if (pk != picked) free(pk);
        ld.src = NULL;
        ld.picked = NULL;
    }
    return finish(&ld, out, nerrs);
}

vigil_status vigil_rules_inspect(const char *file, const char *src, size_t len, const vigil_rules_opts *opts,
                                 vigil_rule_info *info, int max, int *n,
                                 vigil_error *errs, int maxerrs, int *nerrs) {
    if (nerrs) *nerrs = 0;
    if (n) *n = 0;
    if (!src && len) return VIGIL_EINVAL;
    loader ld;
    vigil_status s = begin(&ld, opts, NULL, errs, maxerrs);
    if (s != VIGIL_OK) return s;
    vigil_rule_info none;
    ld.info = info ? info : &none;
    ld.maxinfo = info ? max : 0;
    load_src(&ld, file && *file ? file : "<string>", src ? src : "", len);
    int count = ld.ninfo;
    vigil_ruleset *rs = NULL;
    s = finish(&ld, &rs, nerrs);
    vigil_ruleset_release(rs);
    if (s == VIGIL_OK && n) *n = count;
    return s;
}

typedef struct files_ctx { char **v; int n, cap; vigil_status st; } files_ctx;
static void files_one(void *ud, const char *path, vigil_status s, const char *msg) {
    files_ctx *c = ud;
    (void)msg;
    if (s != VIGIL_OK) {
        if (c->st == VIGIL_OK) c->st = s;
        return;
    }
    if (c->n == c->cap) {
        int cap = c->cap ? c->cap * 2 : 64;
        char **nv = realloc(c->v, (size_t)cap * sizeof *nv);
        if (!nv) {
            c->st = VIGIL_ENOMEM;
            return;
        }
        c->v = nv;
        c->cap = cap;
    }
    if (!(c->v[c->n] = strdup(path))) c->st = VIGIL_ENOMEM;
    else c->n++;
}

vigil_status vigil_rules_files(const char *path, char ***paths, int *n) {
    *paths = NULL;
    *n = 0;
    struct stat st;
    if (!path || stat(path, &st) != 0) return VIGIL_ENOTFOUND;
    files_ctx c = {.st = VIGIL_OK};
    if (S_ISDIR(st.st_mode)) vigil_rules_walk(path, files_one, &c);
    else files_one(&c, path, VIGIL_OK, NULL);
    if (c.st != VIGIL_OK) {
        for (int i = 0; i < c.n; i++) free(c.v[i]);
        free(c.v);
        return c.st;
    }
    *paths = c.v;
    *n = c.n;
    return VIGIL_OK;
}
