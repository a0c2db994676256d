/* fuzz_rules.c — libFuzzer target for the rule compiler
 * (vigil_rules_load_string: lua/src/sandbox.c, prelude.c, compile.c and the
 * ruleset builder in engine/src/ruleset.c, Hyperscan compile included).
 *
 * Rule files arrive over the network (PUT /v1/rules/{name}), so the input is
 * taken as Lua source and run in the sandbox with small limits (instruction
 * budget, wall clock, memory cap) so that one input cannot run long: hitting
 * a limit is an expected compile error, only crashes, leaks and undefined
 * behaviour are findings. Rule examples are collected (the Lua→NDJSON
 * conversion) and freed. A ruleset that compiles is exercised on a few fixed
 * events through an engine, so that whatever expression the fuzzer built
 * also gets evaluated.
 *
 * Lua itself (the system liblua5.4) is not instrumented, so ASan cannot see
 * a C function of the rule language that pushes past the Lua stack without
 * lua_checkstack: those writes land beyond the stack's block, inside liblua.
 * This target therefore wraps the sandbox's allocator (by interposing
 * lua_newstate) so that every block Lua allocates carries a 16-byte canary
 * that is checked whenever the block is moved or freed; a damaged canary
 * aborts with "Lua heap canary". */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <lua.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "vigil/engine.h"
#include "vigil/event.h"
#include "vigil/rules.h"

#ifndef FUZZ_LISTS_DIR
#define FUZZ_LISTS_DIR "tests/fuzz/lists"
#endif

/* ---- Lua heap canaries -------------------------------------------------------- */

#define CANARY 16                  /* one Lua stack slot (a TValue) */
static lua_Alloc inner_alloc;      /* the sandbox's allocator: one Lua state lives at a time */

static void canary_check(const void *p, size_t n) {
    const unsigned char *c = (const unsigned char *)p + n;
    for (int i = 0; i < CANARY; i++)
        if (c[i] != 0xCA) {
            fprintf(stderr, "fuzz_rules: Lua heap canary damaged: a write past the end of a %zu-byte block "
                            "allocated by Lua (offset +%d) — a missing lua_checkstack in a C function?\n", n, i);
            abort();
        }
}

/* Same ud as the sandbox's (sb_of() reads it back); sizes grow by the canary,
 * which the sandbox counts against its cap like any other byte. */
static void *canary_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    if (ptr) canary_check(ptr, osize);
    void *p = inner_alloc(ud, ptr, ptr ? osize + CANARY : osize, nsize ? nsize + CANARY : 0);
    if (p && nsize) memset((unsigned char *)p + nsize, 0xCA, CANARY);
    return p;
}

lua_State *lua_newstate(lua_Alloc f, void *ud) {
    static lua_State *(*real)(lua_Alloc, void *);
    if (!real) real = (lua_State * (*)(lua_Alloc, void *)) dlsym(RTLD_NEXT, "lua_newstate");
    if (!real) abort();
    inner_alloc = f;
    return real(canary_alloc, ud);
}

/* Events with the field names the seeds and dictionary use. */
static const char *const events[] = {
    "{\"id\":\"1\",\"k\":1,\"ts\":0,\"type\":\"tx\",\"amount\":5,\"tx_amount\":5,\"customer_id\":1,"
    "\"terminal_id\":7,\"card\":{\"bin\":\"4111\"},\"email\":\"a@mailinator.com\",\"device\":\"d1\",\"ok\":false}",
    "{\"id\":\"2\",\"k\":1,\"ts\":60,\"type\":\"report\",\"amount\":0,\"customer_id\":1,\"terminal_id\":7,"
    "\"country\":\"FR\",\"code\":596,\"promo\":null}",
    "{\"id\":\"3\",\"k\":1,\"ts\":120,\"type\":\"login\",\"amount\":-1.5,\"tx_amount\":300,\"customer_id\":1,"
    "\"terminal_id\":7,\"country\":\"BR\",\"ok\":true,\"device\":\"d2\",\"card\":{\"bin\":\"5500\"}}",
    "{\"id\":\"4\",\"k\":2,\"ts\":3700,\"type\":\"tx\",\"amount\":1e300,\"tx_amount\":1e300,\"customer_id\":1,"
    "\"terminal_id\":7,\"code\":\"596\"}",
    "{\"id\":\"5\",\"k\":1,\"ts\":90000,\"type\":\"tx\",\"amount\":0,\"tx_amount\":250,\"customer_id\":1,"
    "\"terminal_id\":7}",
};

static void on_alert(void *ud, const vigil_alert *a) {
    char *j = vigil_alert_to_json(a, 0);
    (*(int *)ud)++;
    free(j);
}

static void feed_text(vigil_ruleset *rs, vigil_engine *eng, const char *text, size_t len) {
    vigil_event *ev;
    vigil_error err;
    if (vigil_event_decode_json(rs, NULL, text, len, NULL, 0, &ev, &err) != VIGIL_OK) return;
    vigil_engine_feed(eng, ev, &err);
    vigil_event_release(ev);
}

/* The fixed events, then each example's NDJSON (as `vigil test` runs them). */
static void exercise(vigil_ruleset *rs, const vigil_rule_examples *ex) {
    int alerts = 0;
    vigil_engine_opts eo = {.max_runs = 8};
    vigil_engine *eng = vigil_engine_create(rs, &eo, NULL, on_alert, &alerts);
    if (!eng) return;
    for (size_t i = 0; i < sizeof events / sizeof events[0]; i++) feed_text(rs, eng, events[i], strlen(events[i]));
    vigil_engine_advance(eng, INT64_MAX);
    vigil_engine_destroy(eng);
    for (int i = 0; i < ex->n && i < 16; i++) {
        if (!(eng = vigil_engine_create(rs, &eo, NULL, on_alert, &alerts))) return;
        for (const char *p = ex->v[i].events; p && *p;) {
            const char *nl = strchr(p, '\n');
            size_t len = nl ? (size_t)(nl - p) : strlen(p);
            feed_text(rs, eng, p, len);
            p += len + (nl != NULL);
        }
        vigil_engine_advance(eng, INT64_MAX);
        vigil_engine_destroy(eng);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    vigil_rule_examples ex = {0};
    vigil_rules_opts ro = {
        .lists_dir = FUZZ_LISTS_DIR,
        .instr_budget = 200000,          /* the prelude is not counted; real rule files need far less */
        .wall_ms = 200,
        .mem_cap = (size_t)8 << 20,
        .examples = &ex,
    };
    vigil_ruleset *rs = NULL;
    vigil_error errs[4];
    int nerrs = 0;
    vigil_status s = vigil_rules_load_string("fuzz.lua", (const char *)data, size, &ro, &rs, errs, 4, &nerrs);
    char buf[1024];
    static int verbose = -1;   /* FUZZ_VERBOSE=1 ./fuzz_rules file.lua: show the outcome */
    if (verbose < 0) verbose = getenv("FUZZ_VERBOSE") != NULL;
    for (int i = 0; i < nerrs && i < 4; i++) {
        vigil_error_format(&errs[i], buf, sizeof buf);
        if (verbose) fprintf(stderr, "fuzz_rules: %s\n", buf);
    }
    if (verbose) fprintf(stderr, "fuzz_rules: %s, %d example(s)\n", vigil_status_str(s), ex.n);
    if (s == VIGIL_OK) {
        if (!rs) abort();
        exercise(rs, &ex);
        vigil_ruleset_release(rs);
    } else if (rs) {
        abort();   /* failure must leave *out NULL */
    }
    vigil_rule_examples_free(&ex);
    return 0;
}
