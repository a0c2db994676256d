/* http_json.c — GET a URL and print fields of its JSON answer, for the shell
 * tests (tests/integration/test_rules_push.sh), which must read the rules
 * API without curl, jq or python on the machine (scripts/deps.sh installs
 * none of them). Usage:
 *
 *   http_json URL [PATH …]
 *
 * Prints the HTTP status on the first line (0: no answer), then for each
 * PATH the values it names, one per line: PATH is member names joined by
 * '.', and a name ending in "[]" takes every element of that array, e.g.
 * `version`, `rules[].name`, `versions[].version`. Strings are printed as
 * they are, numbers as integers when whole, true/false/null as such,
 * objects and arrays as compact JSON; a missing member prints nothing.
 * Exit 0 when an answer came (whatever its status), 1 otherwise. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "harness.h"

static void print_value(const cJSON *v) {
    if (cJSON_IsString(v)) {
        printf("%s\n", v->valuestring);
    } else if (cJSON_IsNumber(v)) {
        if (v->valuedouble == (double)(long long)v->valuedouble) printf("%lld\n", (long long)v->valuedouble);
        else printf("%.17g\n", v->valuedouble);
    } else {
        char *s = cJSON_PrintUnformatted(v);
        if (s) printf("%s\n", s);
        free(s);
    }
}

/* The values at path (a '.'-separated list of names, "name[]" mapping over
 * an array) under v. */
static void walk(const cJSON *v, const char *path) {
    if (!v) return;
    if (!*path) {
        print_value(v);
        return;
    }
    const char *dot = strchr(path, '.');
    size_t n = dot ? (size_t)(dot - path) : strlen(path);
    const char *rest = dot ? dot + 1 : "";
    char name[256];
    int each = n >= 2 && path[n - 2] == '[' && path[n - 1] == ']';
    size_t nl = each ? n - 2 : n;
    if (nl >= sizeof name) return;
    memcpy(name, path, nl);
    name[nl] = '\0';
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(v, name);
    if (!each) {
        walk(m, rest);
        return;
    }
    const cJSON *e;
    cJSON_ArrayForEach(e, m) walk(e, rest);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: http_json URL [PATH …]\n");
        return 2;
    }
    long status = 0;
    size_t len = 0;
    char *body = vt_http_ex("GET", argv[1], NULL, 0, NULL, NULL, 10000, &status, &len);
    printf("%ld\n", status);
    if (!body) return 1;
    cJSON *o = cJSON_ParseWithLength(body, len);
    for (int i = 2; i < argc; i++) walk(o, argv[i]);
    cJSON_Delete(o);
    free(body);
    return 0;
}
