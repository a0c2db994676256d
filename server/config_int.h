/* config_int.h — private between the two halves of the server's
 * configuration: config.c (the settings table, the value parsers, the
 * environment and the flags) and config_file.c (running the Lua config file
 * in the sandbox and walking the table it returns). Both fill the same
 * "stage" through the same parser, so a value means the same wherever it is
 * written. Nothing else includes this header. */
#ifndef VIGIL_CONFIG_INT_H
#define VIGIL_CONFIG_INT_H

#include <stddef.h>
#include <stdint.h>
#include "config.h"

/* The stage: a copy of the config changed in place, committed only when all
 * went well; strings allocated on the way go back to the owner on failure. */
typedef struct stage {
    vigil_server_config cfg;      /* the copy being changed */
    vigil_config_owner *o;
    size_t mark;                  /* o->n at the start: rolled back on failure */
    char *time_store, *id_store;  /* new backing strings of the field lists (ours until commit) */
    vigil_error *err;
    vigil_status status;
} stage;

/* Where a value came from, for messages that say how to write it there. */
typedef enum { SRC_FILE, SRC_ENV, SRC_FLAG } src_kind;

typedef struct origin {
    src_kind k;
    char name[128];   /* the key's path in the file ("webhooks[2].timeout"), the variable or the flag */
} origin;

/* The kinds of setting: which parser, which message. */
typedef enum kind {
    K_PATH,          /* non-empty string */
    K_LOG_FORMAT,    /* "text" or "json": int 0/1 */
    K_LISTEN,        /* HOST:PORT */
    K_INT,           /* int in [min, max] */
    K_COUNT,         /* size_t in [min, max] */
    K_BYTES,         /* size_t in [min, max], also "16MiB" */
    K_DURATION,      /* int64_t ms >= min */
    K_MS_LONG,       /* long ms >= min (endpoints) */
    K_BOOL,          /* int 0/1 */
    K_TIME_FIELDS,   /* cfg.ev time field list */
    K_ID_FIELDS,     /* cfg.ev id field list */
    K_TIME_FORMAT,   /* cfg.ev time format */
    K_NATS_URL,
    K_SUBJECT,
    K_NATS_NAME,     /* JetStream stream or consumer */
    K_REDIS_URL,
    K_PREFIX,
    K_FILE,          /* a file path (TLS certificates, NATS creds); read at start */
    K_USER,          /* a user name for NATS or Redis (1 to 128 visible characters) */
    K_PASSWORD,      /* a password or token for NATS or Redis: never echoed */
    K_DIR,           /* any string, "" allowed */
    K_SECRET,        /* whsec_… */
    K_WEBHOOK_URLS,  /* comma-separated URLs: replace the endpoints */
    K_HTTP_URL,
    K_EP_NAME,
    K_SEVERITY,
    K_TOKEN,
    K_ROLE
} kind;

typedef struct setting {
    const char *key;      /* path in the file */
    const char *env;      /* its variable, or NULL */
    kind k;
    size_t off;           /* where it goes: in vigil_server_config, or vigil_endpoint_config / vigil_token_config */
    long long min, max;
    int optional;         /* "" means none (NULL; data_dir keeps "") */
    const char *example;  /* a good value, unquoted */
} setting;

/* Every scalar setting of the file and the environment, and the keys of one
 * webhook endpoint and of one API token; each ends with a NULL key. */
extern const setting cfg_settings[];
extern const setting cfg_endpoint_settings[];
extern const setting cfg_token_settings[];

/* A NUL-terminated copy of s[0..len) held by o, or NULL when out of memory. */
const char *cfg_own(vigil_config_owner *o, const char *s, size_t len);

void cfg_stage_begin(stage *st, const vigil_server_config *cfg, vigil_config_owner *o, const char *file,
                     vigil_error *err);
void cfg_stage_commit(stage *st, vigil_server_config *cfg);
/* Roll back; the status to return. */
vigil_status cfg_stage_abort(stage *st);

/* Record the error (status s, message) in the stage; returns -1. */
int cfg_fail(stage *st, vigil_status s, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int cfg_no_memory(stage *st);

/* v made safe to print: at most 60 bytes, control bytes as '?', and for a
 * Lua string literal (lua) '"' and '\' escaped. */
void cfg_printable(char *out, size_t n, const char *v, int lua);

/* How one writes the setting with value v in source s (`workers = 4`,
 * `VIGIL_WORKERS=4`, `--workers 4`), into buf. */
const char *cfg_form(char *buf, size_t n, const origin *s, const char *v, int quoted);

const setting *cfg_find_setting(const setting *tab, const char *key);

/* The example is a Lua string in the file unless the kind is a number or a boolean. */
int cfg_example_quoted(const setting *d);

/* What a good value is, for messages (buf may be used). */
const char *cfg_describe(const setting *d, const origin *s, char *buf, size_t n);

/* "<written> is not <what>; write <example>", or with `why` instead of "is not <what>". */
int cfg_bad_value(stage *st, const setting *d, const origin *s, const char *shown, int quoted, const char *why);

int cfg_has_space_or_ctl(const char *v);
int cfg_in_list(const char *v, const char *const *list);

/* Store a number or a duration for d into base, checked against d's range. */
int cfg_store_int(stage *st, void *base, const setting *d, const origin *s, long long n, const char *shown,
                  int quoted);
int cfg_store_ms(stage *st, void *base, const setting *d, const origin *s, int64_t ms, const char *shown,
                 int quoted);

/* Parse text v for setting d into base (the staged config, or an endpoint or
 * token being built) and report errors as coming from s. */
int cfg_parse_value(stage *st, const setting *d, void *base, const char *v, const origin *s);

#endif
