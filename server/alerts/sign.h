/* sign.h — Standard Webhooks v1 signatures, webhook URL checks and
 * libcurl's global init: the helpers of the one webhook sender (dispatch.c),
 * shared with the test receiver (tests/tools/webhook_receiver.c) and tools.
 *
 * Signature (https://www.standardwebhooks.com, DESIGN.md §8):
 *   webhook-signature = "v1,<base64 of HMAC-SHA256(key, "<id>.<timestamp>.<body>")>"
 *   where key = base64-decode(secret without its "whsec_" prefix) and
 *   timestamp = unix seconds of the attempt. */
#ifndef VIGIL_SIGN_H
#define VIGIL_SIGN_H

#include <stddef.h>
#include "vigil/status.h"

/* Size of a buffer that holds any "v1,<base64 HMAC-SHA256>" value and its NUL. */
#define VIGIL_WEBHOOK_SIG_MAX 48
/* Largest alert JSON the in-memory outbox accepts (bytes). */
#define VIGIL_WEBHOOK_MAX_ALERT (4u * 1024u * 1024u)

/* The Standard Webhooks signature value "v1,<base64>" of (id, ts, body) under
 * secret ("whsec_<base64>"), written NUL-terminated into out (outlen >=
 * VIGIL_WEBHOOK_SIG_MAX). ts is unix seconds. For tests, receivers and tools;
 * the dispatcher uses a signer (below): the same code with the key decoded once.
 * Errors: VIGIL_EINVAL (NULL argument, bad secret, outlen too small),
 * VIGIL_ENOMEM (OpenSSL could not allocate). */
vigil_status vigil_webhook_sign(const char *secret, const char *id, long long ts,
                                const char *body, size_t len, char *out, size_t outlen);

/* curl_global_init(CURL_GLOBAL_DEFAULT), once per process, thread-safe
 * (never cleaned up). VIGIL_EIO (err says why) if libcurl failed. */
vigil_status vigil_webhook_global_init(vigil_error *err);

/* Check that url is a well-formed http:// or https:// URL and give its log
 * label "scheme://host[:port]" (paths and queries of webhook URLs often carry
 * tokens, so logs never show them). *label is malloc'd, owned by the caller.
 * Errors: VIGIL_EINVAL (err names the URL), VIGIL_ENOMEM. */
vigil_status vigil_webhook_url_label(const char *url, char **label, vigil_error *err);

/* A signing key decoded once, with its own HMAC context: one signer per
 * thread (not thread-safe). */
typedef struct vigil_webhook_signer vigil_webhook_signer;

/* secret "whsec_<base64>" (at most 256 base64 characters, padding optional).
 * *out owned by the caller until vigil_webhook_signer_destroy.
 * Errors: VIGIL_EINVAL (bad secret; err says so), VIGIL_ENOMEM. */
vigil_status vigil_webhook_signer_create(const char *secret, vigil_webhook_signer **out,
                                         vigil_error *err);

/* As vigil_webhook_sign, with the signer's key (outlen >= VIGIL_WEBHOOK_SIG_MAX).
 * Errors: VIGIL_EINVAL, VIGIL_ENOMEM. */
vigil_status vigil_webhook_signer_sign(vigil_webhook_signer *s, const char *id, long long ts,
                                       const char *body, size_t len, char *out, size_t outlen);

/* Wipes the key and frees. Accepts NULL. */
void vigil_webhook_signer_destroy(vigil_webhook_signer *s);

#endif
