/* nats_opts.h — the one builder of NATS connection options (DESIGN.md §7,
 * issue 13 "Transport"): the URL, credentials (user and password, a token,
 * or a .creds file) and TLS (a CA to trust, a client certificate), so the
 * server's connection and `vigil feed` authenticate the same way; and the
 * URL as logs may show it.
 *
 * Credentials may also sit in the URL (nats://user:password@host:4222,
 * nats://token@host): nats.c reads them there. Every URL a message shows
 * goes through vigil_nats_url_redact first. */
#ifndef VIGIL_NATS_OPTS_H
#define VIGIL_NATS_OPTS_H

#include <stddef.h>
#include <nats/nats.h>
#include "vigil/status.h"

/* Who vigil is to NATS, and how the connection is protected. Every field
 * may be NULL/0. At most one of: user+password, token, creds. Strings are
 * borrowed for the call of vigil_nats_options (nats.c copies them). */
typedef struct vigil_nats_auth {
    const char *user, *password;   /* both or neither */
    const char *token;
    const char *creds;             /* a .creds file: the user JWT and NKey seed */
    int tls;                       /* TLS even without a CA or a tls:// URL (system CAs) */
    const char *tls_ca;            /* PEM file of the CA(s) that signed the server's certificate */
    const char *tls_cert, *tls_key;   /* client certificate and key (both or neither) */
} vigil_nats_auth;

/* New options for url (one or several, comma-separated) with auth applied
 * (NULL: none); the caller adds its own (reconnects, callbacks), connects
 * and destroys them. Errors: VIGIL_EINVAL naming the config key (a password
 * without a user, two kinds of credentials, a cert without a key),
 * VIGIL_ENOTFOUND / VIGIL_EIO (a file that cannot be read, naming it),
 * VIGIL_EPARSE (nats.c refused a URL or a certificate), VIGIL_ENOMEM. No
 * message contains a password, a token or a file's contents. */
vigil_status vigil_nats_options(const char *url, const vigil_nats_auth *auth, natsOptions **out, vigil_error *err);

/* url with the user information of every URL in it (user:password@ or
 * token@) replaced by "***@", into out (n bytes, truncated). */
void vigil_nats_url_redact(const char *url, char *out, size_t n);

/* After a failed natsConnection_Connect: a hint for the status that says
 * which setting to check ("" when none fits). */
const char *vigil_nats_connect_hint(natsStatus s);

#endif
