/* sign.c — Standard Webhooks v1 signing (https://www.standardwebhooks.com),
 * the webhook URL check and libcurl's one-time global init.
 *
 * The alerts wing's one webhook sender is the outbox dispatcher
 * (dispatch.c); these are its helpers, kept apart so that the test receiver
 * (tests/tools/webhook_receiver.c) and the tests verify signatures with the
 * very code that makes them. Crypto and base64 are OpenSSL's (EVP_MAC
 * HMAC-SHA256, EVP_EncodeBlock, EVP_DecodeBlock): no hand-written
 * replacements. */
#include "sign.h"

#include <curl/curl.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SECRET_B64_MAX 256                /* base64 characters after "whsec_" */
#define KEY_MAX (SECRET_B64_MAX / 4 * 3 + 3)

/* Decode "whsec_<base64>" into key (KEY_MAX bytes). Padding may be omitted. */
static vigil_status decode_secret(const char *secret, unsigned char *key, size_t *keylen) {
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=";
    char buf[SECRET_B64_MAX + 4];
    if (!secret || strncmp(secret, "whsec_", 6) != 0) return VIGIL_EINVAL;
    const char *b = secret + 6;
    size_t n = strnlen(b, SECRET_B64_MAX + 1);
    if (n == 0 || n > SECRET_B64_MAX || strspn(b, alphabet) != n || n % 4 == 1)
        return VIGIL_EINVAL;
    memcpy(buf, b, n);
    while (n % 4) buf[n++] = '=';           /* EVP_DecodeBlock wants whole quads */
    int pads = (buf[n - 1] == '=') + (buf[n - 2] == '=');
    int r = EVP_DecodeBlock(key, (const unsigned char *)buf, (int)n);
    if (r < 0 || r - pads <= 0) return VIGIL_EINVAL;
    *keylen = (size_t)(r - pads);
    return VIGIL_OK;
}

/* "v1,<base64 HMAC-SHA256(key, id.ts.body)>" into out using ctx (a fresh or
 * reused HMAC context; re-keyed here). */
static vigil_status sign_with_key(EVP_MAC_CTX *ctx, const unsigned char *key, size_t keylen,
                                  const char *id, long long ts, const char *body, size_t len,
                                  char *out, size_t outlen) {
    char tsbuf[32];
    unsigned char mac[EVP_MAX_MD_SIZE];
    size_t maclen = 0;
    OSSL_PARAM params[2];
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();
    if (outlen < VIGIL_WEBHOOK_SIG_MAX) return VIGIL_EINVAL;
    int tn = snprintf(tsbuf, sizeof tsbuf, "%lld", ts);
    if (!EVP_MAC_init(ctx, key, keylen, params) ||
        !EVP_MAC_update(ctx, (const unsigned char *)id, strlen(id)) ||
        !EVP_MAC_update(ctx, (const unsigned char *)".", 1) ||
        !EVP_MAC_update(ctx, (const unsigned char *)tsbuf, (size_t)tn) ||
        !EVP_MAC_update(ctx, (const unsigned char *)".", 1) ||
        !EVP_MAC_update(ctx, (const unsigned char *)body, len) ||
        !EVP_MAC_final(ctx, mac, &maclen, sizeof mac) || maclen != 32)
        return VIGIL_ENOMEM;
    memcpy(out, "v1,", 3);
    EVP_EncodeBlock((unsigned char *)out + 3, mac, (int)maclen); /* 44 chars + NUL */
    OPENSSL_cleanse(mac, sizeof mac);
    return VIGIL_OK;
}

vigil_status vigil_webhook_sign(const char *secret, const char *id, long long ts,
                                const char *body, size_t len, char *out, size_t outlen) {
    unsigned char key[KEY_MAX];
    size_t keylen = 0;
    vigil_status s;
    if (!secret || !id || (!body && len) || !out || outlen < VIGIL_WEBHOOK_SIG_MAX)
        return VIGIL_EINVAL;
    if (!body) body = "";
    s = decode_secret(secret, key, &keylen);
    if (s != VIGIL_OK) return s;
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    s = ctx ? sign_with_key(ctx, key, keylen, id, ts, body, len, out, outlen) : VIGIL_ENOMEM;
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    OPENSSL_cleanse(key, sizeof key);
    return s;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void) {
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

vigil_status vigil_webhook_global_init(vigil_error *err) {
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK)
        return vigil_error_set(err, VIGIL_EIO, "webhook: curl_global_init: %s",
                               curl_easy_strerror(curl_init_rc));
    return VIGIL_OK;
}

/* Check one URL and make its log label. *label is malloc'd, owned by the caller. */
static vigil_status check_url(const char *url, char **label, vigil_error *err) {
    if (!url || (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0))
        return vigil_error_set(err, VIGIL_EINVAL, "webhook URL '%s' is not http:// or https://",
                               url ? url : "(null)");
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL;
    vigil_status s = VIGIL_OK;
    if (!u) return VIGIL_ENOMEM;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        s = vigil_error_set(err, VIGIL_EINVAL, "webhook URL '%s' is malformed", url);
    } else {
        curl_url_get(u, CURLUPART_PORT, &port, 0);  /* absent when default */
        size_t n = strlen(scheme) + strlen(host) + (port ? strlen(port) : 0) + 5;
        *label = malloc(n);
        if (!*label) s = VIGIL_ENOMEM;
        else snprintf(*label, n, "%s://%s%s%s", scheme, host, port ? ":" : "", port ? port : "");
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return s;
}

vigil_status vigil_webhook_url_label(const char *url, char **label, vigil_error *err) {
    if (!label) return vigil_error_set(err, VIGIL_EINVAL, "webhook: NULL argument");
    *label = NULL;
    return check_url(url, label, err);
}

/* ---- signer (shared with dispatch.c) -------------------------------------- */

struct vigil_webhook_signer {
    unsigned char key[KEY_MAX];
    size_t keylen;
    EVP_MAC *mac;
    EVP_MAC_CTX *ctx;
};

void vigil_webhook_signer_destroy(vigil_webhook_signer *s) {
    if (!s) return;
    EVP_MAC_CTX_free(s->ctx);
    EVP_MAC_free(s->mac);
    OPENSSL_cleanse(s->key, sizeof s->key);
    free(s);
}

vigil_status vigil_webhook_signer_create(const char *secret, vigil_webhook_signer **out,
                                         vigil_error *err) {
    if (!out) return vigil_error_set(err, VIGIL_EINVAL, "webhook: NULL argument");
    *out = NULL;
    vigil_webhook_signer *s = calloc(1, sizeof *s);
    if (!s) return vigil_error_set(err, VIGIL_ENOMEM, "webhook: out of memory");
    if (decode_secret(secret, s->key, &s->keylen) != VIGIL_OK) {
        vigil_webhook_signer_destroy(s);
        return vigil_error_set(err, VIGIL_EINVAL,
                               "webhook secret must be \"whsec_\" followed by base64 "
                               "(at most %d characters)", SECRET_B64_MAX);
    }
    s->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    s->ctx = s->mac ? EVP_MAC_CTX_new(s->mac) : NULL;
    if (!s->ctx) {
        vigil_webhook_signer_destroy(s);
        return vigil_error_set(err, VIGIL_ENOMEM, "webhook: cannot create an HMAC context");
    }
    *out = s;
    return VIGIL_OK;
}

vigil_status vigil_webhook_signer_sign(vigil_webhook_signer *s, const char *id, long long ts,
                                       const char *body, size_t len, char *out, size_t outlen) {
    if (!s || !id || (!body && len) || !out || outlen < VIGIL_WEBHOOK_SIG_MAX) return VIGIL_EINVAL;
    return sign_with_key(s->ctx, s->key, s->keylen, id, ts, body ? body : "", len, out, outlen);
}

