/* tls.c — HTTPS for the API: the certificate and key files read once at
 * start (tls.h). It exists apart from http.c so the edge's request path
 * stays free of file handling, and so every way a TLS file can be wrong gets
 * its own clear message before libmicrohttpd (which would only say that
 * GnuTLS refused something) sees the bytes. */
#include "tls.h"
#include "server/common/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PEM_MAX ((size_t)1 << 20)

static int set(const char *p) { return p && *p; }

/* The whole file at path into *out (NUL-terminated). key: "tls_cert" or
 * "tls_key", for messages. */
static vigil_status slurp(const char *key, const char *path, char **out, vigil_error *err) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return vigil_error_set(err, errno == ENOENT ? VIGIL_ENOTFOUND : VIGIL_EIO,
                               "%s '%s': cannot open it: %s; give the path of a PEM file vigil can read", key, path,
                               strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return vigil_error_set(err, VIGIL_EIO, "%s '%s' is not a regular file; give the path of a PEM file", key, path);
    }
    if ((size_t)sb.st_size > PEM_MAX) {
        fclose(f);
        return vigil_error_set(err, VIGIL_ETOOBIG, "%s '%s' is over %zu KiB: not a certificate or key file", key, path,
                               PEM_MAX >> 10);
    }
    char *buf = malloc((size_t)sb.st_size + 1);
    if (!buf) {
        fclose(f);
        return vigil_error_set(err, VIGIL_ENOMEM, "out of memory reading %s", key);
    }
    size_t n = fread(buf, 1, (size_t)sb.st_size, f);
    int bad = ferror(f), e = errno;
    fclose(f);
    if (bad) {
        free(buf);
        return vigil_error_set(err, VIGIL_EIO, "%s '%s': cannot read it: %s", key, path, strerror(e));
    }
    buf[n] = '\0';
    if (n == 0 || strlen(buf) != n || !strstr(buf, "-----BEGIN ")) {
        memset(buf, 0, n);
        free(buf);
        return vigil_error_set(err, VIGIL_EINVAL,
                               "%s '%s' is not a PEM file (no \"-----BEGIN \" line); give a PEM file, e.g. made with "
                               "`openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem`",
                               key, path);
    }
    *out = buf;
    return VIGIL_OK;
}

vigil_status vigil_tls_pem_load(const char *cert_path, const char *key_path, vigil_tls_pem *out, vigil_error *err) {
    memset(out, 0, sizeof *out);
    if (!set(cert_path) && !set(key_path)) return VIGIL_OK;
    if (!set(cert_path) || !set(key_path))
        return vigil_error_set(err, VIGIL_EINVAL,
                               "%s is set but %s is not: HTTPS needs both the certificate (tls_cert, --tls-cert, "
                               "VIGIL_TLS_CERT) and its private key (tls_key, --tls-key, VIGIL_TLS_KEY)",
                               set(cert_path) ? "tls_cert" : "tls_key", set(cert_path) ? "tls_key" : "tls_cert");
    vigil_status s = slurp("tls_cert", cert_path, &out->cert, err);
    if (s == VIGIL_OK) s = slurp("tls_key", key_path, &out->key, err);
    struct stat sb;
    if (s == VIGIL_OK && stat(key_path, &sb) == 0 && (sb.st_mode & 077))   /* a warning: the file is the operator's */
        vigil_log(VIGIL_LOG_WARN, "http", "tls_key '%s' can be read by other users (mode %03o); `chmod 600` it", key_path,
                (unsigned)(sb.st_mode & 0777));
    if (s != VIGIL_OK) {
        vigil_tls_pem_free(out);
        return s;
    }
    if (!strstr(out->cert, "-----BEGIN CERTIFICATE-----"))
        s = vigil_error_set(err, VIGIL_EINVAL,
                            "tls_cert '%s' holds no certificate (no \"-----BEGIN CERTIFICATE-----\"); %s", cert_path,
                            strstr(out->cert, "PRIVATE KEY-----") ? "it looks like a key: are tls_cert and tls_key "
                                                                    "swapped?"
                                                                  : "give the server's PEM certificate (chain)");
    else if (strstr(out->key, "-----BEGIN ENCRYPTED PRIVATE KEY-----") || strstr(out->key, "Proc-Type: 4,ENCRYPTED"))
        s = vigil_error_set(err, VIGIL_EINVAL,
                            "tls_key '%s' is encrypted with a passphrase; vigil needs the key unencrypted in a file "
                            "only its user can read (`openssl pkey -in %s -out key.pem`)",
                            key_path, key_path);
    else if (!strstr(out->key, "PRIVATE KEY-----"))
        s = vigil_error_set(err, VIGIL_EINVAL,
                            "tls_key '%s' holds no private key (no \"-----BEGIN … PRIVATE KEY-----\"); %s", key_path,
                            strstr(out->key, "-----BEGIN CERTIFICATE-----")
                                ? "it looks like a certificate: are tls_cert and tls_key swapped?"
                                : "give the PEM private key of tls_cert");
    if (s != VIGIL_OK) vigil_tls_pem_free(out);
    return s;
}

void vigil_tls_pem_free(vigil_tls_pem *p) {
    if (!p) return;
    if (p->key) {
        volatile char *k = p->key;   /* volatile, so the wipe is not optimised away */
        for (size_t i = 0; k[i]; i++) k[i] = 0;
    }
    free(p->key);
    free(p->cert);
    p->key = p->cert = NULL;
}
