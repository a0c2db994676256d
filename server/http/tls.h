/* tls.h — the certificate and key of the HTTPS API (issue 13, "Transport"),
 * read from their PEM files once at start and handed to libmicrohttpd
 * (MHD_USE_TLS with MHD_OPTION_HTTPS_MEM_CERT / _MEM_KEY; GnuTLS inside).
 *
 * The files are checked before the daemon starts, so a mistake stops
 * `vigil serve` with a message naming the key (tls_cert or tls_key), the
 * path and the reason: a missing or unreadable file, one that is not PEM,
 * a certificate file without a certificate, a key file without an
 * unencrypted private key, only one of the two set. Messages never contain
 * the files' contents; the key's bytes are wiped when freed. A key file
 * that other users can read is accepted with a warning on stderr. */
#ifndef VIGIL_HTTP_TLS_H
#define VIGIL_HTTP_TLS_H

#include "vigil/status.h"

typedef struct vigil_tls_pem {
    char *cert;   /* the certificate chain, PEM, NUL-terminated (owned) */
    char *key;    /* the private key, PEM, NUL-terminated (owned; wiped by vigil_tls_pem_free) */
} vigil_tls_pem;

/* Read and check both files into out. cert_path and key_path: both set
 * (NULL or "" counts as unset) or both unset (then out stays empty and the
 * API is plain HTTP). Errors: VIGIL_EINVAL (only one set, not PEM, no
 * certificate, no key, an encrypted key), VIGIL_ENOTFOUND / VIGIL_EIO (cannot
 * open or read), VIGIL_ETOOBIG (over 1 MiB), VIGIL_ENOMEM; out is empty then. */
vigil_status vigil_tls_pem_load(const char *cert_path, const char *key_path, vigil_tls_pem *out, vigil_error *err);

/* Free both, wiping the key first. Accepts an empty pem. */
void vigil_tls_pem_free(vigil_tls_pem *p);

#endif
