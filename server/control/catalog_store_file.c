/* catalog_store_file.c — the rule catalog and audit log in the data dir
 * (catalog_store.h, the file backend): the bytes on disk.
 *
 * Why it exists: with the memory store and a data dir there is no Redis to
 * keep the catalog, yet a restart must serve the same rule versions, and
 * GET /v1/audit must survive it. Two files:
 *   catalog.json  {"rules":{name:record},"files":{path:hash}}, rewritten
 *                 whole for each commit that changes it: temporary file,
 *                 fsync, rename, fsync of the directory (as state/snapshot.c
 *                 does), so a crash leaves the old catalog or the new one;
 *   audit.log     JSON Lines, one entry per line, each commit's entries
 *                 appended in one write and fdatasync'd; a torn last line (a
 *                 crash mid-append) is cut when the file is opened; once it
 *                 holds more than twice the cap it is rewritten to its last
 *                 `cap` lines (temporary file, fsync, rename).
 * A commit writes catalog.json, then appends the audit lines. When the
 * append fails, audit.log is truncated back and the previous catalog.json is
 * written again, so a failed commit leaves neither half. (A crash between the
 * two can lose the audit lines, as the header says; never half a catalog.)
 *
 * Every read is bounded: catalog.json at VCAT_CATALOG_MAX, audit.log read in
 * 64 KiB chunks and one line (at most VIGIL_CATALOG_VALUE_MAX) at a time. */
#include "catalog_store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK 65536   /* file reads and copies, bytes */

static char *join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", a, b);
    return p;
}

static int full_write(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int full_pread(int fd, char *p, size_t n, off_t at)
{
    while (n > 0) {
        ssize_t r = pread(fd, p, n, at);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (r == 0)
                errno = EIO;   /* the file shrank under us */
            return -1;
        }
        p += r;
        n -= (size_t)r;
        at += r;
    }
    return 0;
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int r = fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    return r;
}

/* ---- catalog.json ------------------------------------------------------- */

/* Read catalog.json into st->cat (a missing file is an empty catalog). */
static vigil_status f_read_catalog(vigil_catalog_store *st, vigil_error *err)
{
    int fd = open(st->cat_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return VIGIL_OK;
    if (fd < 0)
        return vigil_error_set(err, VIGIL_EIO, "catalog %s: cannot open: %s", st->cat_path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return vigil_error_set(err, VIGIL_EIO, "catalog %s: %s", st->cat_path, strerror(e));
    }
    if (sb.st_size > (off_t)VCAT_CATALOG_MAX) {
        close(fd);
        return vigil_error_set(err, VIGIL_ETOOBIG, "catalog %s: %lld bytes, over the %u limit", st->cat_path,
                               (long long)sb.st_size, VCAT_CATALOG_MAX);
    }
    size_t size = (size_t)sb.st_size;
    char *buf = malloc(size + 1);
    if (!buf) {
        close(fd);
        return vcat_oom(err);
    }
    int rd = full_pread(fd, buf, size, 0);
    int e = errno;
    close(fd);
    if (rd != 0) {
        free(buf);
        return vigil_error_set(err, VIGIL_EIO, "catalog %s: cannot read: %s", st->cat_path, strerror(e));
    }
    buf[size] = '\0';
    vigil_status s = VIGIL_OK;
    const char *end = NULL;
    const char *nul = memchr(buf, '\0', size);   /* cJSON would stop there */
    cJSON *cat = nul ? NULL : cJSON_ParseWithLengthOpts(buf, size + 1, &end, 1);
    if (!cat) {
        if (nul)
            end = nul;
        size_t at = end && end >= buf && end <= buf + size ? (size_t)(end - buf) : 0;
        int line = 1, col = 1;
        for (size_t i = 0; i < at; i++, col++)
            if (buf[i] == '\n') {
                line++;
                col = 0;
            }
        if (size == 0)
            s = vigil_error_set(err, VIGIL_EPARSE, "catalog %s: empty file (not a catalog)", st->cat_path);
        else
            s = vigil_error_set(err, VIGIL_EPARSE, "catalog %s: not valid JSON at line %d, column %d (byte %zu)%s",
                                st->cat_path, line, col, at, nul ? ": a NUL byte" : "");
        if (err) {
            snprintf(err->file, sizeof err->file, "%s", st->cat_path);
            err->line = line;
        }
    } else {
        cJSON *rules = cJSON_GetObjectItemCaseSensitive(cat, "rules");
        cJSON *files = cJSON_GetObjectItemCaseSensitive(cat, "files");
        const char *bad = !cJSON_IsObject(cat) ? "the top level is not an object"
                          : !cJSON_IsObject(rules) ? "\"rules\" is missing or not an object"
                          : !cJSON_IsObject(files) ? "\"files\" is missing or not an object" : NULL;
        for (const cJSON *it = bad ? NULL : rules->child; it && !bad; it = it->next)
            if (!cJSON_IsObject(it))
                bad = "a rule record is not an object";
        for (const cJSON *it = bad ? NULL : files->child; it && !bad; it = it->next)
            if (!cJSON_IsString(it))
                bad = "a file hash is not a string";
        if (bad) {
            s = vigil_error_set(err, VIGIL_EPARSE, "catalog %s: not a catalog: %s", st->cat_path, bad);
            if (err)
                snprintf(err->file, sizeof err->file, "%s", st->cat_path);
            cJSON_Delete(cat);
        } else {
            cJSON_Delete(st->cat);
            st->cat = cat;
        }
    }
    free(buf);
    return s;
}

/* Write text as the new catalog.json: temporary file, fsync, rename, fsync
 * of the directory. *renamed tells whether catalog.json was replaced (even
 * when the directory's fsync then failed). */
static vigil_status f_write_catalog(vigil_catalog_store *st, const char *text, size_t len, int *renamed,
                                    vigil_error *err)
{
    *renamed = 0;
    int fd = open(st->cat_tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return vigil_error_set(err, VIGIL_EIO, "catalog %s: cannot create: %s: nothing written", st->cat_tmp,
                               strerror(errno));
    int bad = full_write(fd, text, len) != 0 || full_write(fd, "\n", 1) != 0 || fsync(fd) != 0;
    int e = errno;
    if (close(fd) != 0 && !bad) {
        bad = 1;
        e = errno;
    }
    if (!bad && rename(st->cat_tmp, st->cat_path) != 0) {
        bad = 1;
        e = errno;
    }
    if (bad) {
        unlink(st->cat_tmp);
        return vigil_error_set(err, VIGIL_EIO, "catalog %s: cannot write: %s: nothing written", st->cat_path,
                               strerror(e));
    }
    *renamed = 1;
    if (fsync_dir(st->dir) != 0)
        return vigil_error_set(err, VIGIL_EIO, "catalog %s: fsync of the directory %s: %s", st->cat_path, st->dir,
                               strerror(errno));
    return VIGIL_OK;
}

/* After a failed commit that had replaced catalog.json: write the previous
 * catalog (st->cat) back, and say in err how that went. */
static void f_restore(vigil_catalog_store *st, vigil_error *err)
{
    char *text = cJSON_PrintUnformatted(st->cat);
    vigil_error e2;
    vigil_error_clear(&e2);
    int renamed = 0;
    vigil_status s = text ? f_write_catalog(st, text, strlen(text), &renamed, &e2) : vcat_oom(&e2);
    cJSON_free(text);
    if (s == VIGIL_OK) {
        vcat_note(err, "the previous catalog.json was written back");
    } else {
        char note[sizeof e2.msg + 64];
        snprintf(note, sizeof note, "catalog.json may hold this commit's rules: restoring failed: %s", e2.msg);
        vcat_note(err, note);
    }
}

/* ---- audit.log ----------------------------------------------------------- */

/* Open audit.log once (create: make it if missing), cut a torn last line
 * (a crash in the middle of an append) and count the lines. Without create
 * a missing file leaves st->afd at -1: no entries. */
static vigil_status f_audit_open(vigil_catalog_store *st, int create, vigil_error *err)
{
    if (st->afd >= 0)
        return VIGIL_OK;
    int fd = open(st->aud_path, O_RDWR | O_APPEND | O_CLOEXEC | (create ? O_CREAT : 0), 0644);
    if (fd < 0 && !create && errno == ENOENT)
        return VIGIL_OK;
    if (fd < 0)
        return vigil_error_set(err, VIGIL_EIO, "audit %s: cannot open: %s", st->aud_path, strerror(errno));
    struct stat sb;
    char *buf = malloc(CHUNK);
    vigil_status s = buf ? VIGIL_OK : vcat_oom(err);
    if (s == VIGIL_OK && fstat(fd, &sb) != 0)
        s = vigil_error_set(err, VIGIL_EIO, "audit %s: %s", st->aud_path, strerror(errno));
    off_t size = s == VIGIL_OK ? sb.st_size : 0, last_nl = 0;
    size_t lines = 0;
    for (off_t at = 0; s == VIGIL_OK && at < size;) {
        size_t n = size - at < CHUNK ? (size_t)(size - at) : CHUNK;
        if (full_pread(fd, buf, n, at) != 0) {
            s = vigil_error_set(err, VIGIL_EIO, "audit %s: cannot read: %s", st->aud_path, strerror(errno));
            break;
        }
        for (size_t i = 0; i < n; i++)
            if (buf[i] == '\n') {
                lines++;
                last_nl = at + (off_t)i + 1;
            }
        at += (off_t)n;
    }
    free(buf);
    if (s == VIGIL_OK && last_nl < size && ftruncate(fd, last_nl) != 0)
        s = vigil_error_set(err, VIGIL_EIO, "audit %s: cannot cut a torn last line: %s", st->aud_path, strerror(errno));
    if (s != VIGIL_OK) {
        close(fd);
        return s;
    }
    st->afd = fd;
    st->asize = last_nl;
    st->alines = lines;
    return VIGIL_OK;
}

/* The byte offset where the last k lines of audit.log begin (0 when it has
 * k lines or fewer). */
static vigil_status f_tail_start(vigil_catalog_store *st, size_t k, off_t *out, vigil_error *err)
{
    *out = k == 0 ? st->asize : 0;
    if (k == 0 || st->asize == 0)
        return VIGIL_OK;
    char buf[4096];
    size_t seen = 0;
    for (off_t end = st->asize - 1; end > 0;) {   /* the last byte is the last line's '\n' */
        size_t n = end < (off_t)sizeof buf ? (size_t)end : sizeof buf;
        off_t from = end - (off_t)n;
        if (full_pread(st->afd, buf, n, from) != 0)
            return vigil_error_set(err, VIGIL_EIO, "audit %s: cannot read: %s", st->aud_path, strerror(errno));
        for (size_t i = n; i-- > 0;)
            if (buf[i] == '\n' && ++seen == k) {
                *out = from + (off_t)i + 1;
                return VIGIL_OK;
            }
        end = from;
    }
    return VIGIL_OK;
}

/* Append the lines (one write), fdatasync; on failure truncate back. */
static vigil_status f_audit_append(vigil_catalog_store *st, const char *buf, size_t len, vigil_error *err)
{
    if (full_write(st->afd, buf, len) != 0 || fdatasync(st->afd) != 0) {
        vigil_status s = vigil_error_set(err, VIGIL_EIO, "audit %s: cannot append: %s", st->aud_path, strerror(errno));
        if (ftruncate(st->afd, st->asize) != 0 || fdatasync(st->afd) != 0) {
            vcat_note(err, "and audit.log could not be truncated back: lines of this commit may stay");
            close(st->afd);   /* the next use opens it again and counts what is there */
            st->afd = -1;
        }
        return s;
    }
    st->asize += (off_t)len;
    return VIGIL_OK;
}

/* Rewrite audit.log to its last audit_max lines (temporary file, fsync,
 * rename, fsync of the directory). Failure changes nothing: the entries
 * are already durable, and the next commit tries again. */
static void f_audit_trim(vigil_catalog_store *st)
{
    off_t from;
    if (f_tail_start(st, st->audit_max, &from, NULL) != VIGIL_OK)
        return;
    char *buf = malloc(CHUNK);
    int fd = buf ? open(st->aud_tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644) : -1;
    int bad = fd < 0;
    for (off_t at = from; !bad && at < st->asize;) {
        size_t n = st->asize - at < CHUNK ? (size_t)(st->asize - at) : CHUNK;
        bad = full_pread(st->afd, buf, n, at) != 0 || full_write(fd, buf, n) != 0;
        at += (off_t)n;
    }
    free(buf);
    if (fd >= 0) {
        bad = bad || fsync(fd) != 0;
        bad = close(fd) != 0 || bad;
    }
    int nfd = bad ? -1 : open(st->aud_tmp, O_RDWR | O_APPEND | O_CLOEXEC);
    if (nfd < 0 || rename(st->aud_tmp, st->aud_path) != 0) {
        if (nfd >= 0)
            close(nfd);
        unlink(st->aud_tmp);
        return;
    }
    fsync_dir(st->dir);
    close(st->afd);
    st->afd = nfd;
    st->asize -= from;
    st->alines = st->audit_max;
}

/* Lines [start, stop) of audit.log to fn, one at a time (each at most
 * VIGIL_CATALOG_VALUE_MAX bytes: the reader's one buffer). */
static vigil_status f_audit_lines(vigil_catalog_store *st, off_t start, off_t stop, void (*fn)(void *, const char *),
                                  void *ud, vigil_error *err)
{
    char *chunk = malloc(CHUNK), *line = NULL;
    size_t ll = 0, lcap = 0;
    vigil_status s = chunk ? VIGIL_OK : vcat_oom(err);
    for (off_t at = start; s == VIGIL_OK && at < stop;) {
        size_t n = stop - at < CHUNK ? (size_t)(stop - at) : CHUNK;
        if (full_pread(st->afd, chunk, n, at) != 0) {
            s = vigil_error_set(err, VIGIL_EIO, "audit %s: cannot read: %s", st->aud_path, strerror(errno));
            break;
        }
        for (size_t i = 0; i < n && s == VIGIL_OK;) {
            char *nl = memchr(chunk + i, '\n', n - i);
            size_t take = nl ? (size_t)(nl - (chunk + i)) : n - i;
            if (ll + take > VIGIL_CATALOG_VALUE_MAX) {
                s = vigil_error_set(err, VIGIL_ETOOBIG, "audit %s: a line near byte %lld is over %u bytes",
                                    st->aud_path, (long long)(at + (off_t)i), VIGIL_CATALOG_VALUE_MAX);
                break;
            }
            if (ll + take + 1 > lcap) {
                size_t nc = lcap ? lcap : 1024;
                while (nc < ll + take + 1)
                    nc *= 2;
                char *p = realloc(line, nc);
                if (!p) {
                    s = vcat_oom(err);
                    break;
                }
                line = p;
                lcap = nc;
            }
            memcpy(line + ll, chunk + i, take);
            ll += take;
            i += take;
            if (nl) {
                line[ll] = '\0';
                fn(ud, line);
                ll = 0;
                i++;
            }
        }
        at += (off_t)n;
    }
    free(chunk);
    free(line);
    return s;
}

vigil_status vcat_file_audit(vigil_catalog_store *st, size_t offset, size_t limit, void (*fn)(void *, const char *),
                             void *ud, vigil_error *err)
{
    vigil_status s = f_audit_open(st, 0, err);
    if (s != VIGIL_OK || st->afd < 0)
        return s;
    off_t start, stop;
    s = f_tail_start(st, offset + limit, &start, err);
    if (s == VIGIL_OK)
        s = f_tail_start(st, offset, &stop, err);
    if (s == VIGIL_OK && start < stop)
        s = f_audit_lines(st, start, stop, fn, ud, err);
    return s;
}

/* ---- open, commit, close ------------------------------------------------ */

vigil_status vcat_file_open(vigil_catalog_store *st, const char *dir, vigil_error *err)
{
    st->dir = strdup(dir);
    st->cat_path = join(dir, "catalog.json");
    st->cat_tmp = join(dir, "catalog.json.tmp");
    st->aud_path = join(dir, "audit.log");
    st->aud_tmp = join(dir, "audit.log.tmp");
    if (!st->dir || !st->cat_path || !st->cat_tmp || !st->aud_path || !st->aud_tmp)
        return vcat_oom(err);
    unlink(st->cat_tmp);   /* a rewrite that crashed before its rename */
    unlink(st->aud_tmp);
    return f_read_catalog(st, err);
}

void vcat_file_close(vigil_catalog_store *st)
{
    if (st->afd >= 0)
        close(st->afd);
    st->afd = -1;
    free(st->dir);
    free(st->cat_path);
    free(st->cat_tmp);
    free(st->aud_path);
    free(st->aud_tmp);
}

vigil_status vcat_file_commit(vigil_catalog_store *st, const cJSON *next, const vigil_catalog_write *w,
                              const vcat_norm *nm, int n, vigil_error *err)
{
    size_t naud = 0, alen = 0;
    for (int i = 0; i < n; i++)
        if (w[i].kind == VIGIL_CW_AUDIT) {
            naud++;
            alen += nm[i].len + 1;
        }
    vigil_status s = VIGIL_OK;
    if (mkdir(st->dir, 0755) != 0 && errno != EEXIST)
        return vigil_error_set(err, VIGIL_EIO, "catalog: cannot create the data dir %s: %s: nothing written",
                               st->dir, strerror(errno));
    if (naud)
        s = f_audit_open(st, 1, err);   /* before catalog.json changes */
    char *abuf = NULL;
    if (s == VIGIL_OK && naud && !(abuf = malloc(alen)))
        s = vcat_oom(err);
    size_t at = 0;
    for (int i = 0; s == VIGIL_OK && i < n; i++)
        if (w[i].kind == VIGIL_CW_AUDIT) {
            memcpy(abuf + at, nm[i].text, nm[i].len);
            at += nm[i].len;
            abuf[at++] = '\n';
        }
    int renamed = 0;
    if (s == VIGIL_OK && next) {
        char *text = cJSON_PrintUnformatted(next);
        size_t len = text ? strlen(text) : 0;
        if (!text)
            s = vcat_oom(err);
        else if (len > VCAT_CATALOG_MAX)
            s = vigil_error_set(err, VIGIL_ETOOBIG, "catalog %s: would be %zu bytes, over the %u limit: "
                                "nothing written", st->cat_path, len, VCAT_CATALOG_MAX);
        else
            s = f_write_catalog(st, text, len, &renamed, err);
        cJSON_free(text);
    }
    if (s == VIGIL_OK && naud)
        s = f_audit_append(st, abuf, alen, err);
    free(abuf);
    if (s != VIGIL_OK) {
        if (renamed)
            f_restore(st, err);
        return s;
    }
    st->alines += naud;
    if (naud && st->alines > 2 * st->audit_max)
        f_audit_trim(st);
    return VIGIL_OK;
}
