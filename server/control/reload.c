/* reload.c — the rules directory and the catalog (DESIGN.md §6): at start,
 * on SIGHUP and, with `watch`, on every change (inotify), each file whose
 * content hash differs from the one the catalog recorded gives its rules
 * new versions; a file whose hash is unchanged leaves the stored state
 * (API changes included) standing; a removed file deletes its rules. Reload
 * is per file: a file that does not compile (or defines a rule another file
 * owns, or a version not above the latest) is logged and counted, its hash
 * is not recorded, and its rules keep running as they are. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>
#include "control_int.h"
#include "vigil/clock.h"
#include "server/common/log.h"

#define MAX_RULES_PER_FILE 256

static int listed(char **paths, int n, const char *p) {
    for (int i = 0; i < n; i++)
        if (strcmp(paths[i], p) == 0) return 1;
    return 0;
}

/* One changed file: its rules get new versions (or are created); rules it
 * no longer defines are deleted. 0, or -1 after logging why the file is
 * refused (nothing of it applied). */
static int reload_file(vigil_control *c, vctl_txn *x, const char *path, char **present, int npresent) {
    size_t len = 0;
    char *src = NULL;
    vigil_status rs = vigil_rules_read_file(path, VCAT_MAX_SOURCE, &src, &len);
    if (rs != VIGIL_OK) {
        vigil_log(VIGIL_LOG_ERROR, "control", "reload: %s: cannot read: %s", path,
                rs == VIGIL_ETOOBIG ? "over the 1 MiB limit of a rule source"
                : rs == VIGIL_ENOMEM ? "out of memory" : strerror(errno));
        return -1;
    }
    char hash[65];
    vcat_hash(src, len, hash);
    const char *old = vcat_file_hash(&c->cat, path);
    if (old && strcmp(old, hash) == 0) {   /* unchanged: the stored state stands */
        free(src);
        return 0;
    }
    vigil_rule_info info[MAX_RULES_PER_FILE];
    int ni = 0, nerrs = 0;
    vigil_error errs[4];
    vigil_status st = vigil_rules_inspect(path, src, len, &c->ropts, info, MAX_RULES_PER_FILE, &ni, errs, 4, &nerrs);
    char why[2048] = "";
    if (st != VIGIL_OK) {
        if (nerrs) vigil_error_format(&errs[0], why, sizeof why);
        else snprintf(why, sizeof why, "%s", vigil_status_str(st));
    } else if (ni > MAX_RULES_PER_FILE) {
        snprintf(why, sizeof why, "more than %d rules in one file", MAX_RULES_PER_FILE);
    }
    int added = 0;   /* rules this file adds to the served ones (limits.max_rules) */
    for (int i = 0; i < ni; i++) {
        vcat_rule *r = vcat_find(&c->cat, info[i].name);
        added += !r || !vcat_live(r);
    }
    if (!why[0] && added && vcat_live_count(&c->cat) + added > vctl_max_rules(c))
        snprintf(why, sizeof why, "it adds %d rules to the %d served; at most %d are allowed (limits.max_rules)",
                 added, vcat_live_count(&c->cat), vctl_max_rules(c));
    for (int i = 0; !why[0] && i < ni; i++) {   /* a rule another present file owns, a version too low */
        vcat_rule *r = vcat_find(&c->cat, info[i].name);
        if (r && r->file[0] && strcmp(r->file, path) != 0 && !r->deleted && listed(present, npresent, r->file))
            snprintf(why, sizeof why, "rule '%.64s' is already defined in %.1000s", info[i].name, r->file);
        vcat_ver *latest = vcat_latest(r);
        if (!why[0] && latest && info[i].version && info[i].version < latest->version)
            snprintf(why, sizeof why, "rule '%.64s' declares version %d, below its latest version %d",
                     info[i].name, info[i].version, latest->version);
    }
    if (why[0]) {
        vigil_log(VIGIL_LOG_WARN, "control", "reload: %s refused, its rules keep running as they are: %s", path, why);
        if (strstr(why, "limits.max_rules")) atomic_fetch_add(&c->refused_max_rules, 1);
        if (!old && !c->first_refusal[0]) snprintf(c->first_refusal, sizeof c->first_refusal, "%s", why);
        free(src);
        return old ? -1 : -2;   /* -2: a file never loaded */
    }
    int64_t now = vigil_now_ms();
    int bad = vctl_touch_file(c, x, path) != 0 || vcat_set_file_hash(&c->cat, path, hash) != 0;
    for (int i = 0; !bad && i < ni; i++) {
        if (vctl_touch(c, x, info[i].name) != 0) {
            bad = 1;
            break;
        }
        vcat_rule *r = vcat_find(&c->cat, info[i].name);
        if (!r && !(r = vcat_add_rule(&c->cat, info[i].name))) {
            bad = 1;
            break;
        }
        snprintf(r->file, sizeof r->file, "%s", path);
        vcat_ver *live = vcat_live(r), *latest = vcat_latest(r);
        if (live && strcmp(live->hash, hash) == 0 && live->mode == info[i].mode) continue;   /* already this text */
        if (live && info[i].version && info[i].version == latest->version) {   /* the file says: this version */
            vigil_log(VIGIL_LOG_WARN, "control", "reload: %s: rule '%s' declares version %d, its running version: unchanged " "(raise `version` to apply an edit)", path, r->name, info[i].version);
            continue;
        }
        int version = info[i].version ? info[i].version : (latest ? latest->version + 1 : 1);
        if (latest && version <= latest->version) version = latest->version + 1;   /* a deleted rule's return */
        int from = live ? live->version : 0;
        int was_deleted = r->deleted;
        r->deleted = 0;
        if (!vcat_add_version(r, version, info[i].mode, src, len, "reload", now)) {
            bad = 1;
            break;
        }
        if (was_deleted)
            for (int k = 0; k < r->nv - 1; k++) r->v[k].state = VCAT_DELETED;
        vctl_audit(x, "reload", r->name, from, version, path);
    }
    for (int i = 0; !bad && i < c->cat.n; i++) {   /* rules the file no longer defines */
        vcat_rule *r = c->cat.rules[i];
        if (r->deleted || strcmp(r->file, path) != 0) continue;
        int still = 0;
        for (int k = 0; k < ni && !still; k++) still = strcmp(info[k].name, r->name) == 0;
        if (still) continue;
        if (vctl_touch(c, x, r->name) != 0) {
            bad = 1;
            break;
        }
        vcat_ver *live = vcat_live(r);
        r->deleted = 1;
        r->deleted_ms = now;
        for (int k = 0; k < r->nv; k++) r->v[k].state = VCAT_DELETED;
        vctl_audit(x, "reload", r->name, live ? live->version : 0, 0, "no longer in its file");
    }
    free(src);
    if (bad) vigil_log(VIGIL_LOG_ERROR, "control", "reload: %s: out of memory", path);
    return bad ? -1 : 0;
}

/* Delete the rules of a file that left the directory. */
static void reload_gone(vigil_control *c, vctl_txn *x, const char *path) {
    int64_t now = vigil_now_ms();
    vctl_touch_file(c, x, path);
    for (int i = 0; i < c->cat.n; i++) {
        vcat_rule *r = c->cat.rules[i];
        if (r->deleted || strcmp(r->file, path) != 0) continue;
        if (vctl_touch(c, x, r->name) != 0) continue;
        vcat_ver *live = vcat_live(r);
        r->deleted = 1;
        r->deleted_ms = now;
        for (int k = 0; k < r->nv; k++) r->v[k].state = VCAT_DELETED;
        vctl_audit(x, "reload", r->name, live ? live->version : 0, 0, "its file was removed");
    }
    vcat_set_file_hash(&c->cat, path, NULL);
}

int vctl_reload_locked(vigil_control *c, const char *why) {
    char **paths = NULL;
    int n = 0, bad = 0;
    vigil_status st = vigil_rules_files(c->cfg.rules, &paths, &n);
    if (st != VIGIL_OK) {
        vigil_log(VIGIL_LOG_ERROR, "control", "reload (%s): cannot list %s: %s; the running rules stay", why, c->cfg.rules,
                vigil_status_str(st));
        atomic_fetch_add(&c->reload_errors, 1);
        return 1;
    }
    vctl_txn x;
    vctl_txn_init(&x, "reload");
    c->first_refusal[0] = '\0';
    c->new_refused = 0;
    for (int i = 0; i < n; i++) {
        int r = reload_file(c, &x, paths[i], paths, n);
        bad += r != 0;
        c->new_refused += r == -2;
    }
    for (int i = 0; i < c->cat.nfiles; i++) {
        if (listed(paths, n, c->cat.files[i].path)) continue;
        char *gone = strdup(c->cat.files[i].path);
        if (!gone) continue;
        reload_gone(c, &x, gone);
        free(gone);
        i = -1;   /* the file list changed: look again */
    }
    int changed = x.n > 0 || x.nf > 0;
    if (changed) {
        vigil_error err;
        vigil_error_clear(&err);
        if (vctl_commit(c, &x, &err) != VIGIL_OK) {
            char buf[1200];
            vigil_error_format(&err, buf, sizeof buf);
            vigil_log(VIGIL_LOG_WARN, "control", "reload (%s): not applied, the running rules stay: %s", why, buf);
            bad++;
        }
    } else {
        vctl_abort(c, &x);
    }
    for (int i = 0; i < n; i++) free(paths[i]);
    free(paths);
    atomic_fetch_add(&c->reloads, 1);
    atomic_fetch_add(&c->reload_errors, (unsigned long long)bad);
    vigil_log(bad ? VIGIL_LOG_WARN : VIGIL_LOG_INFO, "control", "reload (%s): %d file(s), %s%s%d refused", why, n, changed ? "changes applied" : "no change",
            bad ? ", " : ", ", bad);
    fflush(stderr);
    return bad;
}

int vigil_control_reload(vigil_control *c, const char *why) {
    pthread_mutex_lock(&c->mu);
    vctl_cluster_catch_up(c);   /* cluster mode: the files are compared with the shared catalog's hashes */
    int bad = vctl_reload_locked(c, why);
    pthread_mutex_unlock(&c->mu);
    return bad;
}

/* ---- --watch: inotify ------------------------------------------------------------------ */

static void watch_tree(int fd, const char *dir, int depth) {
    if (inotify_add_watch(fd, dir, IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CREATE) < 0) return;
    if (depth >= 8) return;
    /* subdirectories: the loader recurses into them too */
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.' || strcmp(de->d_name, "lists") == 0) continue;
        char p[PATH_MAX];
        struct stat st;
        if (snprintf(p, sizeof p, "%s/%s", dir, de->d_name) >= (int)sizeof p || stat(p, &st) != 0) continue;
        if (S_ISDIR(st.st_mode)) watch_tree(fd, p, depth + 1);
    }
    closedir(d);
}

int vctl_watch_open(vigil_control *c) {
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) return -1;
    struct stat st;
    if (stat(c->cfg.rules, &st) == 0 && S_ISDIR(st.st_mode)) watch_tree(fd, c->cfg.rules, 0);
    else inotify_add_watch(fd, c->cfg.rules, IN_CLOSE_WRITE | IN_MOVE_SELF | IN_DELETE_SELF);
    return fd;
}

/* Wait for changes; a burst (an editor writes, renames, deletes) settles
 * for 200 ms before one reload. */
void *vctl_watch_main(void *arg) {
    vigil_control *c = arg;
    char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
    while (!atomic_load(&c->stopping)) {
        struct pollfd p = {.fd = c->inotify_fd, .events = POLLIN};
        if (poll(&p, 1, 200) <= 0) continue;
        int seen = 0;
        for (;;) {   /* drain, then wait for quiet */
            ssize_t r = read(c->inotify_fd, buf, sizeof buf);
            if (r > 0) {
                seen = 1;
                continue;
            }
            struct pollfd q = {.fd = c->inotify_fd, .events = POLLIN};
            if (poll(&q, 1, 200) <= 0 || atomic_load(&c->stopping)) break;
        }
        if (!seen || atomic_load(&c->stopping)) continue;
        vigil_control_reload(c, "watch");
        /* new subdirectories: watch them too (re-adding a watch is harmless) */
        struct stat st;
        if (stat(c->cfg.rules, &st) == 0 && S_ISDIR(st.st_mode)) watch_tree(c->inotify_fd, c->cfg.rules, 0);
    }
    return NULL;
}
