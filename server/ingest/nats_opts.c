/* nats_opts.c — NATS connection options built in one place (nats_opts.h):
 * the server's connection (nats.c, which the JetStream consumer and the
 * alert sinks share) and `vigil feed` both come here, so credentials and
 * TLS mean the same everywhere, and no URL reaches a log with its password.
 *
 * Files (creds, CA, client certificate) are opened here first: nats.c's own
 * errors for them are terse, and ours name the config key and the path. */
#include "nats_opts.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static int set(const char *s) { return s && *s; }

static vigil_status readable(const char *key, const char *path, vigil_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return vigil_error_set(err, errno == ENOENT ? VIGIL_ENOTFOUND : VIGIL_EIO, "%s '%s': cannot open it: %s", key,
                               path, strerror(errno));
    fclose(f);
    return VIGIL_OK;
}

/* nats.c's last error text for this thread, for a refused file (it names
 * the file and the OpenSSL reason; never a secret). */
static const char *last_error(void) {
    natsStatus s;
    const char *t = nats_GetLastError(&s);
    return t && *t ? t : "refused";
}

static vigil_status check(const vigil_nats_auth *a, vigil_error *err) {
    if (set(a->password) && !set(a->user))
        return vigil_error_set(err, VIGIL_EINVAL, "nats.password is set without nats.user; set both "
                                                  "(VIGIL_NATS_USER, VIGIL_NATS_PASSWORD), or use nats.token");
    if (set(a->user) && !set(a->password))
        return vigil_error_set(err, VIGIL_EINVAL, "nats.user is set without nats.password; set both "
                                                  "(VIGIL_NATS_USER, VIGIL_NATS_PASSWORD)");
    int kinds = set(a->user) + set(a->token) + set(a->creds);
    if (kinds > 1)
        return vigil_error_set(err, VIGIL_EINVAL, "NATS credentials: set only one of nats.user/nats.password, "
                                                  "nats.token and nats.creds (%s%s%s are set)",
                               set(a->user) ? "user " : "", set(a->token) ? "token " : "",
                               set(a->creds) ? "creds " : "");
    if (set(a->tls_cert) != set(a->tls_key))
        return vigil_error_set(err, VIGIL_EINVAL, "%s is set but %s is not: a client certificate needs its key "
                                                  "(nats.tls = { cert = …, key = … })",
                               set(a->tls_cert) ? "nats.tls.cert" : "nats.tls.key",
                               set(a->tls_cert) ? "nats.tls.key" : "nats.tls.cert");
    vigil_status s = VIGIL_OK;
    if (s == VIGIL_OK && set(a->creds)) s = readable("nats.creds", a->creds, err);
    if (s == VIGIL_OK && set(a->tls_ca)) s = readable("nats.tls.ca", a->tls_ca, err);
    if (s == VIGIL_OK && set(a->tls_cert)) s = readable("nats.tls.cert", a->tls_cert, err);
    if (s == VIGIL_OK && set(a->tls_key)) s = readable("nats.tls.key", a->tls_key, err);
    return s;
}

vigil_status vigil_nats_options(const char *url, const vigil_nats_auth *auth, natsOptions **out, vigil_error *err) {
    *out = NULL;
    static const vigil_nats_auth none;
    const vigil_nats_auth *a = auth ? auth : &none;
    vigil_status st = check(a, err);
    if (st != VIGIL_OK) return st;
    natsOptions *o = NULL;
    if (natsOptions_Create(&o) != NATS_OK) return vigil_error_set(err, VIGIL_ENOMEM, "NATS: out of memory");
    natsStatus ns = natsOptions_SetURL(o, url);
    if (ns != NATS_OK) {
        char shown[512];
        vigil_nats_url_redact(url, shown, sizeof shown);
        natsOptions_Destroy(o);
        return vigil_error_set(err, VIGIL_EPARSE, "NATS URL '%s': %s", shown, natsStatus_GetText(ns));
    }
    const char *what = NULL;
    if (set(a->user) && (ns = natsOptions_SetUserInfo(o, a->user, a->password)) != NATS_OK) what = "nats.user";
    if (!what && set(a->token) && (ns = natsOptions_SetToken(o, a->token)) != NATS_OK) what = "nats.token";
    if (!what && set(a->creds) && (ns = natsOptions_SetUserCredentialsFromFiles(o, a->creds, NULL)) != NATS_OK)
        what = "nats.creds";
    int tls = a->tls || set(a->tls_ca) || set(a->tls_cert);
    if (!what && tls && (ns = natsOptions_SetSecure(o, true)) != NATS_OK) what = "nats.tls";
    if (!what && set(a->tls_ca) && (ns = natsOptions_LoadCATrustedCertificates(o, a->tls_ca)) != NATS_OK)
        what = "nats.tls.ca";
    if (!what && set(a->tls_cert) && (ns = natsOptions_LoadCertificatesChain(o, a->tls_cert, a->tls_key)) != NATS_OK)
        what = "nats.tls.cert";
    if (what) {
        /* a secret is never in these: nats.c names files and OpenSSL reasons */
        const char *why = strcmp(what, "nats.user") == 0 || strcmp(what, "nats.token") == 0 ? natsStatus_GetText(ns)
                                                                                              : last_error();
        st = vigil_error_set(err, ns == NATS_NO_MEMORY ? VIGIL_ENOMEM : VIGIL_EPARSE, "%s: %s%s", what, why,
                             ns == NATS_ILLEGAL_STATE ? " (was this nats.c built with TLS?)" : "");
        natsOptions_Destroy(o);
        return st;
    }
    *out = o;
    return VIGIL_OK;
}

void vigil_nats_url_redact(const char *url, char *out, size_t n) {
    size_t o = 0;
    if (!n) return;
    out[0] = '\0';
    if (!url) return;
    for (const char *p = url; *p && o + 1 < n;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const char *sep = strstr(p, "://");
        const char *auth = sep && sep < p + len ? sep + 3 : p;
        size_t alen = strcspn(auth, "/,");   /* the authority: up to the path or the next URL */
        if (auth + alen > p + len) alen = (size_t)(p + len - auth);
        const char *at = NULL;
        for (const char *q = auth; q < auth + alen; q++)
            if (*q == '@') at = q;   /* the last '@': a password may hold one */
        int w = at ? snprintf(out + o, n - o, "%.*s***%.*s", (int)(auth - p), p, (int)(p + len - at), at)
                   : snprintf(out + o, n - o, "%.*s", (int)len, p);
        if (w < 0) break;
        o += (size_t)w < n - o ? (size_t)w : n - o - 1;
        if (!comma) break;
        if (o + 1 < n) out[o++] = ',', out[o] = '\0';
        p = comma + 1;
    }
}

const char *vigil_nats_connect_hint(natsStatus s) {
    switch (s) {
    case NATS_CONNECTION_AUTH_FAILED:
    case NATS_NOT_PERMITTED:
        return " (the server refused vigil's credentials: check nats.user/nats.password, nats.token or "
               "nats.creds, or the user in the URL)";
    case NATS_SSL_ERROR:
        return " (TLS failed: is the server's certificate signed by the CA in nats.tls.ca (without it, by "
               "a system CA), and is it for the URL's host name?)";
    case NATS_SECURE_CONNECTION_REQUIRED:
        return " (the server requires TLS: set nats.tls = true or nats.tls.ca, or use a tls:// URL)";
    case NATS_SECURE_CONNECTION_WANTED:
        return " (vigil asked for TLS but the server has none: drop nats.tls, or enable TLS on the server)";
    default:
        return "";
    }
}
