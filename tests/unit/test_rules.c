/* test_rules.c — unit tests of the rule language (lua/): DSL v1 rules load
 * into a ruleset with the right names, keys and modes; every kind of compile
 * error names its file and line; the sandbox refuses what a rule file must
 * not do (os, io, load, string.dump, binary chunks) and stops runaway files
 * (instruction budget, wall clock, memory cap) with clear errors.
 *
 * The files with one compile error each live in tests/rules_bad/, so that
 * `vigil check tests/rules_bad` also shows what analysts would see. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <dirent.h>
#include <sys/stat.h>
#include <CUnit/Basic.h>
#include "vigil/rules.h"
#include "cli.h"

#define BAD_DIR VIGIL_SOURCE_DIR "/tests/rules_bad"
#define MAXERR 64

static vigil_error errs[MAXERR];
static int nerrs;

static vigil_status load_str(const char *src, const vigil_rules_opts *o, vigil_ruleset **rs) {
    memset(errs, 0, sizeof errs);
    nerrs = -1;
    return vigil_rules_load_string("test.lua", src, strlen(src), o, rs, errs, MAXERR, &nerrs);
}

static void dump_errs(void) {
    char buf[1200];
    for (int i = 0; i < nerrs; i++) {
        vigil_error_format(&errs[i], buf, sizeof buf);
        fprintf(stderr, "    [%d] %s\n", i, buf);
    }
}

/* A source that must compile; returns the ruleset (caller releases). */
static vigil_ruleset *must_load(const char *src) {
    vigil_ruleset *rs = NULL;
    vigil_status s = load_str(src, NULL, &rs);
    if (s != VIGIL_OK) {
        fprintf(stderr, "\n  unexpected failure: %s\n", vigil_status_str(s));
        dump_errs();
    }
    CU_ASSERT_EQUAL(s, VIGIL_OK);
    CU_ASSERT_EQUAL(nerrs, 0);
    return rs;
}

/* A source that must fail with one error on `line` whose message contains
 * `want`. */
static void must_fail_o(const char *src, const vigil_rules_opts *o, int line, const char *want) {
    vigil_ruleset *rs = (vigil_ruleset *)1;
    vigil_status s = load_str(src, o, &rs);
    CU_ASSERT_NOT_EQUAL(s, VIGIL_OK);
    CU_ASSERT_PTR_NULL(rs);
    if (s == VIGIL_OK) {
        fprintf(stderr, "\n  compiled but should not have: %s\n", src);
        vigil_ruleset_release(rs);
        return;
    }
    CU_ASSERT_EQUAL(nerrs, 1);
    if (nerrs >= 1) {
        CU_ASSERT_STRING_EQUAL(errs[0].file, "test.lua");
        if (line) CU_ASSERT_EQUAL(errs[0].line, line);
        CU_ASSERT_PTR_NOT_NULL(strstr(errs[0].msg, want));
        if ((line && errs[0].line != line) || !strstr(errs[0].msg, want)) {
            fprintf(stderr, "\n  wanted line %d, \"%s\"; got:\n", line, want);
            dump_errs();
        }
    }
}

static void must_fail(const char *src, int line, const char *want) { must_fail_o(src, NULL, line, want); }

/* The memory-cap cases: a small cap and a wall clock far beyond what filling
 * it takes, so that the cap trips first even under ASan on a loaded machine
 * (with the defaults, 64 MiB and 2 s, the wall clock sometimes won). */
static const vigil_rules_opts cap_first = {.mem_cap = (size_t)4 << 20, .wall_ms = 120000};

/* tests/rules_bad/NAME: one error at one of lines lo..hi, containing want. */
static void bad_file_o(const char *name, const vigil_rules_opts *o, int lo, int hi, const char *want) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", BAD_DIR, name);
    vigil_ruleset *rs = (vigil_ruleset *)1;
    memset(errs, 0, sizeof errs);
    vigil_status s = vigil_rules_load(path, o, &rs, errs, MAXERR, &nerrs);
    CU_ASSERT_NOT_EQUAL(s, VIGIL_OK);
    CU_ASSERT_PTR_NULL(rs);
    CU_ASSERT_EQUAL(nerrs, 1);
    if (nerrs < 1) return;
    CU_ASSERT_STRING_EQUAL(errs[0].file, path);
    CU_ASSERT(errs[0].line >= lo && errs[0].line <= hi);
    CU_ASSERT_PTR_NOT_NULL(strstr(errs[0].msg, want));
    if (errs[0].line < lo || errs[0].line > hi || !strstr(errs[0].msg, want)) {
        fprintf(stderr, "\n  %s: wanted line %d..%d, \"%s\"; got:\n", name, lo, hi, want);
        dump_errs();
    }
}

static void bad_file(const char *name, int lo, int hi, const char *want) { bad_file_o(name, NULL, lo, hi, want); }

/* ---- valid rules --------------------------------------------------------------- */

static const char *valid_src =
    "rule {\n"
    "  name        = \"card_testing\",\n"
    "  description = \"Micro-authorizations followed by a large purchase on the same card\",\n"
    "  severity    = \"high\",\n"
    "  key         = \"card_id\",\n"
    "  pattern     = begin(\"probe\"):where{ type = \"auth\", amount = lt(2) }:times_or_more(3)\n"
    "                :followed_by(\"cashout\"):where{ type = \"auth\", amount = gt(500) },\n"
    "  within      = \"10m\",\n"
    "  skip        = \"skip_past_last_event\",\n"
    "  suppress    = \"1h\",\n"
    "  mode        = \"active\",\n"
    "  alert       = function(m) return { probes = #m.probe } end,\n"
    "  examples    = { { events = { { type = \"auth\", card_id = \"c1\", amount = 1, ts = 0 } }, alerts = 0 } },\n"
    "}\n"
    "rule {\n"
    "  name   = \"velocity_1h\",\n"
    "  key    = \"customer_id\",\n"
    "  where  = { type = \"payment\" },\n"
    "  window = sliding(\"1h\"),\n"
    "  when   = ge(count(), 4),\n"
    "  mode   = \"shadow\",\n"
    "  version = 3,\n"
    "}\n"
    "rule {\n"
    "  name = \"amount_spike\", key = \"customer_id\", where = { type = \"tx\" }, window = sliding(\"30d\"),\n"
    "  when = all_of{ ge(prior(count()), 5), gt(e.tx_amount, 5 * prior(avg(\"tx_amount\"))) },\n"
    "}\n"
    "rule {\n"
    "  name = \"compromised_terminal\", key = \"terminal_id\", window = sliding(\"28d\"),\n"
    "  when = all_of{ eq(e.type, \"tx\"), ge(distinct(\"customer_id\", { type = \"report\" }), 2) },\n"
    "}\n";

static void test_valid_rules(void) {
    vigil_ruleset *rs = must_load(valid_src);
    if (!rs) return;
    CU_ASSERT_EQUAL(vigil_ruleset_rule_count(rs), 4);
    int i = vigil_ruleset_rule_index(rs, "card_testing");
    CU_ASSERT(i >= 0);
    if (i >= 0) {
        CU_ASSERT_STRING_EQUAL(vigil_ruleset_rule_key(rs, i), "card_id");
        CU_ASSERT_EQUAL(vigil_ruleset_rule_mode(rs, i), VIGIL_MODE_ACTIVE);
        CU_ASSERT_EQUAL(vigil_ruleset_rule_severity(rs, i), VIGIL_SEV_HIGH);
        CU_ASSERT_EQUAL(vigil_ruleset_rule_version(rs, i), 1);
    }
    i = vigil_ruleset_rule_index(rs, "velocity_1h");
    CU_ASSERT(i >= 0);
    if (i >= 0) {
        CU_ASSERT_STRING_EQUAL(vigil_ruleset_rule_key(rs, i), "customer_id");
        CU_ASSERT_EQUAL(vigil_ruleset_rule_mode(rs, i), VIGIL_MODE_SHADOW);
        CU_ASSERT_EQUAL(vigil_ruleset_rule_severity(rs, i), VIGIL_SEV_MEDIUM);
        CU_ASSERT_EQUAL(vigil_ruleset_rule_version(rs, i), 3);
    }
    CU_ASSERT(vigil_ruleset_rule_index(rs, "amount_spike") >= 0);
    CU_ASSERT(vigil_ruleset_rule_index(rs, "compromised_terminal") >= 0);
    CU_ASSERT_EQUAL(vigil_ruleset_group_count(rs), 3);   /* card_id, customer_id, terminal_id */
    vigil_ruleset_release(rs);
}

/* The rest of the v1 surface the engine accepts today. */
static void test_dsl_surface(void) {
    vigil_ruleset *rs = must_load(
        "local function probe(p) return p:where{ type = \"auth\" } end\n"
        "local base = probe(begin(\"login\"))\n"
        "rule { name = \"a\", key = \"user_id\", within = \"500ms\", skip = \"no_skip\",\n"
        "  pattern = base:where{ status = ne(\"ok\"), country = exists(), ip = missing() }\n"
        "    :or_where{ [\"card.bin\"] = one_of{ \"4111\", \"5500\" } }\n"
        "    :times(2, 4):greedy():consecutive()\n"
        "    :next(\"b\"):where{ country = ne(ref(\"login\", \"country\")), amount = between(1, 10) }\n"
        "    :followed_by_any(\"c\"):where{ email = matches[[@example\\.com$]], ua = matches(\"bot\", \"i\") }\n"
        "    :optional()\n"
        "    :followed_by(\"d\"):where{ country = ref(\"login\", \"country\"), amount = ge(e.limit) }\n"
        "      :one_or_more():stop_when{ type = \"logout\" },\n"
        "}\n"
        "rule { name = \"b\", key = \"user_id\", skip = skip_to_first(\"x\"),\n"
        "  pattern = base:next(\"x\"):where(gt(e.amount, ref(\"login\", \"amount\")))\n"
        "    :followed_by(\"y\"):times_or_more(2) }\n"
        "rule { name = \"c\", key = \"user_id\", skip = skip_to_last(\"x\"), severity = \"critical\",\n"
        "  pattern = base:followed_by(\"x\"):where{ amount = le(5) }:where{ amount = ge(1) }:times(3) }\n"
        "rule { name = \"d\", key = \"card.bin\", window = sliding(\"30d\"),\n"
        "  where = { type = \"tx\", amount = gt(0) },\n"
        "  when = any_of{ gt(sum(\"amount\", { type = \"tx\" }) - -e.amount, 1000),\n"
        "                 lt(min(\"amount\") / 2, max(e.amount) * 0.5),\n"
        "                 none_of{ is_new(\"device_id\"), eq(e.card.bin, \"4111\") },\n"
        "                 between(avg(\"amount\"), 1, 2), one_of(e.country, { \"FR\", \"DE\" }),\n"
        "                 exists(e.ip), matches(e.email, \"x+\", \"i\"), le(count{ type = \"refund\" }, 3) } }\n");
    if (!rs) return;
    CU_ASSERT_EQUAL(vigil_ruleset_rule_count(rs), 4);
    CU_ASSERT_EQUAL(vigil_ruleset_rule_severity(rs, vigil_ruleset_rule_index(rs, "c")), VIGIL_SEV_CRITICAL);
    CU_ASSERT_STRING_EQUAL(vigil_ruleset_rule_key(rs, vigil_ruleset_rule_index(rs, "d")), "card.bin");
    vigil_ruleset_release(rs);
}

/* A pattern prefix shared by two rules is not changed by either (copy on write). */
static void test_shared_prefix(void) {
    vigil_ruleset *rs = must_load(
        "local p = begin(\"a\"):where{ type = \"x\" }\n"
        "rule { name = \"r1\", key = \"k\", pattern = p:next(\"b\"):times(2) }\n"
        "rule { name = \"r2\", key = \"k\", pattern = p:followed_by(\"c\") }\n"
        "rule { name = \"r3\", key = \"k\", pattern = p:times(3) }\n");
    if (rs) CU_ASSERT_EQUAL(vigil_ruleset_rule_count(rs), 3);
    vigil_ruleset_release(rs);
}

/* ---- compile errors: tests/rules_bad ------------------------------------------- */

static void test_err_unknown_key(void) { bad_file("unknown_key.lua", 3, 3, "unknown key 'windw'"); }
static void test_err_undefined_global(void) { bad_file("undefined_global.lua", 5, 5, "undefined global 'gtt'"); }
static void test_err_boolean_when(void) { bad_file("boolean_when.lua", 4, 4, "when must be an expression"); }
static void test_err_lua_compare(void) { bad_file("lua_compare.lua", 6, 6, "use ge()/gt()/lt()/le()/eq() instead"); }
static void test_err_bad_skip(void) { bad_file("bad_skip.lua", 2, 2, "skip = \"skip_everything\" is not a skip strategy"); }
static void test_err_missing_key(void) { bad_file("missing_key.lua", 3, 3, "missing required key 'key'"); }
static void test_err_duplicate(void) { bad_file("duplicate_name.lua", 8, 8, "duplicate rule name 'dup'"); }
static void test_err_bad_duration(void) { bad_file("bad_duration.lua", 2, 2, "\"10 minutes\" is not a duration"); }
static void test_err_syntax(void) { bad_file("syntax_error.lua", 4, 4, "syntax error"); }
static void test_err_function_predicate(void) {
    bad_file("function_predicate.lua", 2, 2, "a Lua function predicate is a whole step condition");
}

static void test_err_rule_name_in_error(void) {
    bad_file("bad_skip.lua", 2, 2, "skip");
    if (nerrs >= 1) CU_ASSERT_STRING_EQUAL(errs[0].rule, "bad_skip");
}

/* docs/rules.md §12: `:where{ amount > 5 }` says how to write it. */
static void test_err_where_comparison(void) {
    bad_file("where_comparison.lua", 6, 6, "undefined global 'amount' — write amount = gt(5)");
    must_fail("rule { name = 'x', key = 'k', pattern = begin('a'):where{ amount > 5 } }", 1,
              "undefined global 'amount' — write amount = gt(5)");
    must_fail("rule { name = 'x', key = 'k',\n  pattern = begin('a'):where{ country == \"US\" } }", 2,
              "undefined global 'country' — write country = eq(\"US\")");
    must_fail("rule { name = 'x', key = 'k', pattern = begin('a'):where{ n <= -2.5 } }", 1,
              "write n = le(-2.5)");
    /* no comparison: no hint */
    must_fail("local x = undefined_thing", 1, "undefined global 'undefined_thing'");
    CU_ASSERT_PTR_NULL(strstr(errs[0].msg, "write"));
}

/* Every file of a directory is checked: one error per bad file. */
static void test_err_whole_dir(void) {
    vigil_ruleset *rs = (vigil_ruleset *)1;
    memset(errs, 0, sizeof errs);
    vigil_status s = vigil_rules_load(BAD_DIR, NULL, &rs, errs, MAXERR, &nerrs);
    CU_ASSERT_EQUAL(s, VIGIL_ECOMPILE);
    CU_ASSERT_PTR_NULL(rs);
    int files = 0;                    /* each .lua file of tests/rules_bad has exactly one error */
    DIR *d = opendir(BAD_DIR);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    for (struct dirent *de; (de = readdir(d));) {
        size_t n = strlen(de->d_name);
        files += n > 4 && strcmp(de->d_name + n - 4, ".lua") == 0;
    }
    closedir(d);
    CU_ASSERT(files >= 17);
    CU_ASSERT_EQUAL(nerrs, files);
    for (int i = 1; i < nerrs; i++)   /* sorted by file name */
        CU_ASSERT(strcmp(errs[i - 1].file, errs[i].file) < 0);
}

static void test_err_messages(void) {
    must_fail("rule { name = \"x\", key = \"k\",\n  pattern = begin(\"a\"),\n  window = sliding(\"1h\") }\n",
              1, "not both");
    must_fail("rule { name = \"Bad-Name\", key = \"k\", window = sliding(\"1h\"), when = ge(count(), 1) }", 1,
              "rule name 'Bad-Name' is invalid");
    must_fail("rule { key = \"k\", window = sliding(\"1h\"), when = ge(count(), 1) }", 1,
              "missing required key 'name'");
    must_fail("rule { name = \"x\", key = \"k\", window = sliding(\"1h\") }", 1, "needs when");
    must_fail("rule { name = \"x\", key = \"k\", window = sliding(\"1h\"), when = gt(5) }", 1,
              "one-argument comparison");
    must_fail("\n\nrule { name = \"x\", key = \"k\", window = sliding(\"1hour\"), when = ge(count(), 1) }", 3,
              "sliding(): expected a positive duration");
    must_fail("rule { name = \"x\", key = \"k\", severity = \"urgent\", pattern = begin(\"a\") }", 1,
              "expected info, low, medium");
    must_fail("rule { name = \"x\", key = \"k\", mode = \"dry\", pattern = begin(\"a\") }", 1, "\"shadow\"");
    must_fail("rule { name = \"x\", key = \"k\", pattern = begin(\"a\"):where{ gt(5) } }", 1,
              "item 1 has no field name");
    must_fail("rule { name = \"x\", key = \"k\", pattern = begin(\"a\"):where{ t = { 1, 2 } } }", 1,
              "use one_of");
    must_fail("rule { name = \"x\", key = \"k\", pattern = begin(\"a\"):greedy() }", 1,
              "greedy() applies to a looping step");
    must_fail("rule { name = \"x\", key = \"k\",\n pattern = begin(\"a\"):times(2):times(3) }", 2,
              "already has a quantifier");
    must_fail("rule { name = \"x\", key = \"k\", pattern = begin(\"a\"):within(\"1m\") }", 1,
              "a pattern has no method 'within'");
    must_fail("rule { name = \"x\", key = \"k\", pattern = begin(\"a\"):where{ n = ref(\"zz\", \"n\") } }", 1,
              "unknown step 'zz'");
    must_fail("rule { name = \"x\", key = \"k\", pattern = begin(\"a\"):where{ n = gt(count()) } }", 1,
              "only allowed in a window rule");
    must_fail("rule { name = \"x\", key = \"k\", pattern = begin(\"a\"):where{ d = in_list(\"no_such_list\") } }",
              1, "unknown list 'no_such_list'");
    must_fail("rule { name = \"x\", key = \"k\", window = sliding(\"1h\"),\n"
              "  when = not ge(count(), 1) }", 1, "got a boolean");
    must_fail("rule { name = \"x\", key = \"k\", window = sliding(\"1h\"), when = all_of{ ge(count(), 1), true } }",
              1, "item 2 is a boolean");
    must_fail("rule { name = \"x\", key = \"k\", window = sliding(\"1h\"), when = count() + 1 }", 1,
              "must be a condition");
    must_fail("rule { name = \"x\", key = \"k\", pattern = begin(\"a\"):where{ e = matches(\"(?<=a)b\") } }", 1,
              "Hyperscan");
    must_fail("rule \"x\"", 1, "rule{} takes one table");
    must_fail("local x = e.a\nfor i = 1, 300 do x = x + 1 end\n"
              "rule { name = \"x\", key = \"k\", window = sliding(\"1h\"), when = gt(x, 1) }", 3,
              "nested too deeply");
    must_fail("local x = e.a\nlocal y = x * 2\nlocal z = count() <= y\n", 3, "use ge()/gt()");
    must_fail("local x = e.a % 2\n", 1, "operator '%' is not supported");
    must_fail("error('custom failure')", 1, "custom failure");
    must_fail("error({})", 1, "table value");
}

/* Several broken rules in one file: each is reported, the good one is not. */
static void test_err_several_in_one_file(void) {
    vigil_ruleset *rs = (vigil_ruleset *)1;
    vigil_status s = load_str("rule { name = \"ok\", key = \"k\", window = sliding(\"1h\"), when = ge(count(), 1) }\n"
                              "rule { name = \"b1\", key = \"k\", window = sliding(\"1h\"), when = true }\n"
                              "rule { name = \"ok2\", key = \"k\", window = sliding(\"1h\"), when = ge(count(), 1) }\n"
                              "rule { name = \"b2\", kye = \"k\", window = sliding(\"1h\"), when = ge(count(), 1) }\n",
                              NULL, &rs);
    CU_ASSERT_EQUAL(s, VIGIL_ECOMPILE);
    CU_ASSERT_PTR_NULL(rs);
    CU_ASSERT_EQUAL(nerrs, 2);
    if (nerrs == 2) {
        CU_ASSERT_EQUAL(errs[0].line, 2);
        CU_ASSERT_STRING_EQUAL(errs[0].rule, "b1");
        CU_ASSERT_EQUAL(errs[1].line, 4);
        CU_ASSERT_STRING_EQUAL(errs[1].rule, "b2");
        CU_ASSERT_PTR_NOT_NULL(strstr(errs[1].msg, "unknown key 'kye'"));
    }
}

/* ---- examples: matches, late, engine options --------------------------------------- */

static const char *examples_src =
    "rule { name = \"ab\", key = \"k\", skip = \"no_skip\",\n"
    "  pattern = begin(\"a\"):where{ type = \"a\" }:followed_by_any(\"b\"):where{ type = \"b\" },\n"
    "  examples = {\n"
    "    { events = { { id = \"1\", k = 1, ts = 1, type = \"a\" }, { id = \"2\", k = 1, ts = 2, type = \"b\" },\n"
    "                 { id = \"3\", k = 1, ts = 3, type = \"b\" } },\n"
    "      matches = { { \"1\", \"2\" }, { \"1\", \"3\" } } },\n"
    "    { events = { { id = \"1\", k = 1, ts = 5, type = \"a\" }, { id = \"2\", k = 1, ts = 1, type = \"b\" } },\n"
    "      alerts = 0, matches = {}, late = { \"2\" }, max_out_of_orderness = \"2s\", allowed_lateness = \"500ms\" },\n"
    "    { events = { { k = 1, ts = 1, type = \"a\" } }, alerts = 0 },\n"
    "  } }\n";

static void test_examples_parse(void) {
    vigil_rule_examples ex = {0};
    vigil_rules_opts o = {.examples = &ex};
    vigil_ruleset *rs = NULL;
    vigil_status s = load_str(examples_src, &o, &rs);
    if (s != VIGIL_OK) dump_errs();
    CU_ASSERT_EQUAL_FATAL(s, VIGIL_OK);
    CU_ASSERT_EQUAL_FATAL(ex.n, 3);
    const vigil_rule_example *x = &ex.v[0];
    CU_ASSERT_STRING_EQUAL(x->rule, "ab");
    CU_ASSERT_EQUAL(x->index, 1);
    CU_ASSERT(x->has_matches);
    CU_ASSERT_EQUAL(x->alerts, 2);          /* alerts left out: the count of matches */
    CU_ASSERT_EQUAL_FATAL(x->nmatches, 2);
    CU_ASSERT_EQUAL(x->matches[0].n, 2);
    CU_ASSERT_STRING_EQUAL(x->matches[0].ids[0], "1");
    CU_ASSERT_STRING_EQUAL(x->matches[0].ids[1], "2");
    CU_ASSERT_STRING_EQUAL(x->matches[1].ids[1], "3");
    CU_ASSERT(!x->has_late);
    CU_ASSERT_EQUAL(x->max_out_of_orderness_ms, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(x->events, "\"id\":\"3\""));
    x = &ex.v[1];
    CU_ASSERT(x->has_matches);
    CU_ASSERT_EQUAL(x->nmatches, 0);        /* matches = {}: no alert at all */
    CU_ASSERT_EQUAL(x->alerts, 0);
    CU_ASSERT(x->has_late);
    CU_ASSERT_EQUAL_FATAL(x->nlate, 1);
    CU_ASSERT_STRING_EQUAL(x->late[0], "2");
    CU_ASSERT_EQUAL(x->max_out_of_orderness_ms, 2000);
    CU_ASSERT_EQUAL(x->allowed_lateness_ms, 500);
    x = &ex.v[2];
    CU_ASSERT(!x->has_matches);
    CU_ASSERT(!x->has_late);
    CU_ASSERT_EQUAL(x->alerts, 0);
    vigil_rule_examples_free(&ex);
    CU_ASSERT_EQUAL(ex.n, 0);
    vigil_ruleset_release(rs);
    /* without an examples list (vigil check) they are checked all the same */
    vigil_ruleset_release(must_load(examples_src));
}

#define EX_RULE "rule { name = \"x\", key = \"k\", pattern = begin(\"a\"),\n  examples = { "

static void test_examples_errors(void) {
    must_fail(EX_RULE "{ events = {}, alerts = 1, matchs = {} } } }", 1,
              "examples[1]: unknown key 'matchs'; expected one of: events, alerts, matches, late, "
              "max_out_of_orderness, allowed_lateness");
    must_fail(EX_RULE "{ events = {}, alerts = 0 }, { events = {}, zeta = 1, beta = 2 } } }", 1,
              "examples[2]: unknown key 'beta'");
    must_fail(EX_RULE "{ events = {}, matches = \"1,3|2\" } } }", 1,
              "examples[1].matches must be a list of the expected alerts");
    must_fail(EX_RULE "{ events = {}, matches = { \"1\", \"3\" } } } }", 1,
              "examples[1].matches[1] must be a list of event ids");
    must_fail(EX_RULE "{ events = {}, matches = { { \"1\" }, { 3 } } } } }", 1,
              "examples[1].matches[2][1] must be an event id string such as \"7\"");
    must_fail(EX_RULE "{ events = {}, matches = { {} } } } }", 1, "examples[1].matches[1] is empty");
    must_fail(EX_RULE "{ events = {}, matches = { { \"1\" }, n = 2 } } } }", 1,
              "examples[1].matches must be a list");
    must_fail(EX_RULE "{ events = {}, alerts = 2, matches = { { \"1\" } } } } }", 1,
              "alerts = 2 but matches lists 1 alert; they must agree");
    must_fail(EX_RULE "{ events = {} } } }", 1, "needs alerts = n");
    must_fail(EX_RULE "{ alerts = 0 } } }", 1, "needs events = ");
    must_fail(EX_RULE "{ events = {}, alerts = 0, late = \"7\" } } }", 1,
              "examples[1].late must be a list of event ids");
    must_fail(EX_RULE "{ events = {}, alerts = 0, late = { 7 } } } }", 1, "examples[1].late[1] must be an event id");
    must_fail(EX_RULE "{ events = {}, alerts = 0, max_out_of_orderness = \"10 s\" } } }", 1,
              "examples[1].max_out_of_orderness = \"10 s\" is not a duration");
    must_fail(EX_RULE "{ events = {}, alerts = 0, allowed_lateness = 5 } } }", 1,
              "examples[1].allowed_lateness must be a duration string");
    must_fail(EX_RULE "{ {}, alerts = 0 } } }", 1, "named keys only");
}

/* `vigil test` compares the alerts with `matches` and the late events with
 * `late`, and skips the examples of a pending/ directory. */
static void test_examples_command(void) {
    char dir[] = "/tmp/vigil-examples-XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    char path[300], pend[300], pfile[340];
    snprintf(path, sizeof path, "%s/ab.lua", dir);
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(examples_src, f);
    fclose(f);
    char *argv1[] = {"test", path, NULL};
    CU_ASSERT_EQUAL(vigil_cmd_test(2, argv1), 0);
    /* the same rule, wrong expectations: another order, a missing late event */
    snprintf(pend, sizeof pend, "%s/pending", dir);
    CU_ASSERT_EQUAL_FATAL(mkdir(pend, 0700), 0);
    snprintf(pfile, sizeof pfile, "%s/wrong.lua", pend);
    f = fopen(pfile, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs("rule { name = \"ab2\", key = \"k\", skip = \"no_skip\",\n"
          "  pattern = begin(\"a\"):where{ type = \"a\" }:followed_by_any(\"b\"):where{ type = \"b\" },\n"
          "  examples = {\n"
          "    { events = { { id = \"1\", k = 1, ts = 1, type = \"a\" }, { id = \"2\", k = 1, ts = 2, type = \"b\" },\n"
          "                 { id = \"3\", k = 1, ts = 3, type = \"b\" } },\n"
          "      matches = { { \"1\", \"3\" }, { \"1\", \"2\" } } },\n"
          "    { events = { { id = \"1\", k = 1, ts = 5, type = \"a\" }, { id = \"2\", k = 1, ts = 1, type = \"b\" } },\n"
          "      alerts = 0, late = {} } } }\n", f);
    fclose(f);
    char *argv2[] = {"test", pfile, NULL}, *argv3[] = {"test", dir, NULL}, *argv4[] = {"test", pend, NULL};
    CU_ASSERT_EQUAL(vigil_cmd_test(2, argv2), 1);   /* named itself: run, and it fails */
    CU_ASSERT_EQUAL(vigil_cmd_test(2, argv4), 1);
    CU_ASSERT_EQUAL(vigil_cmd_test(2, argv3), 0);   /* below DIR/pending/: compiled, skipped */
    unlink(pfile);
    rmdir(pend);
    unlink(path);
    rmdir(dir);
}

/* ---- sandbox ---------------------------------------------------------------------- */

static void test_sandbox_os(void) { bad_file("sandbox_os.lua", 2, 2, "undefined global 'os'"); }
static void test_sandbox_io(void) { bad_file("sandbox_io.lua", 3, 3, "undefined global 'io'"); }
static void test_sandbox_load(void) { bad_file("sandbox_load.lua", 2, 2, "undefined global 'load'"); }
static void test_sandbox_dump(void) {
    bad_file("sandbox_dump.lua", 2, 2, "string.dump is not available in the rule sandbox");
}
static void test_sandbox_loop(void) { bad_file("infinite_loop.lua", 3, 5, "instruction budget exceeded"); }
static void test_sandbox_rep(void) { bad_file("string_rep.lua", 2, 2, "memory cap"); }
static void test_sandbox_table_bomb(void) { bad_file_o("table_bomb.lua", &cap_first, 3, 4, "memory cap exceeded"); }

static void test_sandbox_globals(void) {
    static const char *const gone[] = {"os", "io", "debug", "package", "require", "load", "loadfile",
                                       "dofile", "collectgarbage", "coroutine", "print", NULL};
    for (int i = 0; gone[i]; i++) {
        char src[128], want[64];
        snprintf(src, sizeof src, "local x = %s", gone[i]);
        snprintf(want, sizeof want, "undefined global '%s'", gone[i]);
        must_fail(src, 1, want);
    }
    /* string.dump is gone from the shared string table too */
    must_fail("local d = (\"\").dump", 1, "string.dump is not available");
    must_fail("local s = getmetatable('').__index\nlocal d = rawget(s, 'dump')\nassert(d == nil, 'dump reachable')\n"
              "local y = nope", 4, "undefined global 'nope'");
    /* what is allowed works */
    vigil_ruleset *rs = must_load(
        "local parts = {}\n"
        "for i, v in ipairs{ 'a', 'b' } do parts[#parts + 1] = string.format('%s%d', v, i) end\n"
        "assert(table.concat(parts, ',') == 'a1,b2')\n"
        "assert(math.floor(2.5) == 2 and utf8.char(72) == 'H' and select('#', 1, 2) == 2)\n"
        "assert(pcall(error, 'x') == false and tostring(1) == '1' and type(_G) == 'table')\n"
        "assert(rawget(_G, 'nope') == nil and _VERSION)\n"
        "local ok, err = pcall(function() return undefined_name end)\n"
        "assert(not ok and err:find(\"undefined global 'undefined_name'\"))\n"
        "rule { name = 'x' .. parts[1], key = 'k', window = sliding('1h'), when = ge(count(), 1) }\n");
    if (rs) CU_ASSERT_EQUAL(vigil_ruleset_rule_index(rs, "xa1"), 0);
    vigil_ruleset_release(rs);
}

static void test_sandbox_binary_chunk(void) {
    /* load_string of precompiled bytecode */
    static const char bc[] = "\x1bLua\x54\x00\x19\x93\r\n\x1a\n\x04\x08\x08\x78\x56";
    vigil_ruleset *rs = (vigil_ruleset *)1;
    memset(errs, 0, sizeof errs);
    vigil_status s = vigil_rules_load_string("bin.lua", bc, sizeof bc - 1, NULL, &rs, errs, MAXERR, &nerrs);
    CU_ASSERT_EQUAL(s, VIGIL_ECOMPILE);
    CU_ASSERT_PTR_NULL(rs);
    CU_ASSERT_EQUAL(nerrs, 1);
    if (nerrs) CU_ASSERT_PTR_NOT_NULL(strstr(errs[0].msg, "binary (precompiled) Lua chunks are refused"));
    /* the same from a file */
    char tmpl[] = "/tmp/vigil-test-rules-XXXXXX";
    char *dir = mkdtemp(tmpl);
    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    char path[256];
    snprintf(path, sizeof path, "%s/bin.lua", dir);
    FILE *f = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fwrite(bc, 1, sizeof bc - 1, f);
    fclose(f);
    rs = (vigil_ruleset *)1;
    s = vigil_rules_load(path, NULL, &rs, errs, MAXERR, &nerrs);
    CU_ASSERT_EQUAL(s, VIGIL_ECOMPILE);
    CU_ASSERT_PTR_NULL(rs);
    CU_ASSERT_EQUAL(nerrs, 1);
    if (nerrs) {
        CU_ASSERT_STRING_EQUAL(errs[0].file, path);
        CU_ASSERT_PTR_NOT_NULL(strstr(errs[0].msg, "binary"));
    }
    unlink(path);
    rmdir(dir);
}

/* pcall cannot catch the budget, the wall clock or the memory cap. */
static void test_sandbox_uncatchable(void) {
    must_fail("while true do\n  pcall(function() while true do end end)\nend\n", 0, "instruction budget exceeded");
    must_fail("while true do\n  xpcall(function() while true do end end, function(m) return m end)\nend\n", 0,
              "instruction budget exceeded");
    /* the message handler of a killed file must not run: Lua calls it inside
     * the count hook, where hooks are off (found by tests/fuzz, fuzz_rules) */
    must_fail("xpcall(function() while true do end end, function() while true do end end)\n", 0,
              "instruction budget exceeded");
    must_fail_o("local t = {}\nwhile true do\n  pcall(function() t[#t + 1] = string.rep('x', 65536) .. #t end)\nend\n",
                &cap_first, 0, "memory cap exceeded");
}

static void test_sandbox_wall_clock(void) {
    vigil_rules_opts o = {.instr_budget = 1000000000000ULL, .wall_ms = 100};
    vigil_ruleset *rs = (vigil_ruleset *)1;
    const char *src = "local n = 0\nwhile true do n = n + 1 end\n";
    vigil_status s = vigil_rules_load_string("wall.lua", src, strlen(src), &o, &rs, errs, MAXERR, &nerrs);
    CU_ASSERT_EQUAL(s, VIGIL_ECOMPILE);
    CU_ASSERT_EQUAL(nerrs, 1);
    if (nerrs) {
        CU_ASSERT_PTR_NOT_NULL(strstr(errs[0].msg, "wall-clock limit exceeded"));
        CU_ASSERT_EQUAL(errs[0].line, 2);
    }
}

static void test_sandbox_small_cap(void) {
    vigil_rules_opts o = cap_first;   /* 4 MiB */
    vigil_ruleset *rs = (vigil_ruleset *)1;
    const char *src = "local t = {}\nfor i = 1, 1e9 do t[i] = { i } end\n";
    vigil_status s = vigil_rules_load_string("cap.lua", src, strlen(src), &o, &rs, errs, MAXERR, &nerrs);
    CU_ASSERT_EQUAL(s, VIGIL_ECOMPILE);
    CU_ASSERT_EQUAL(nerrs, 1);
    if (nerrs) {
        CU_ASSERT_PTR_NOT_NULL(strstr(errs[0].msg, "memory cap exceeded"));
        CU_ASSERT_PTR_NOT_NULL(strstr(errs[0].msg, "4 MiB"));
        CU_ASSERT_EQUAL(errs[0].line, 2);
    }
}

static void test_sandbox_no_gc(void) {
    must_fail("local t = setmetatable({}, { __gc = function() while true do end end })", 1,
              "__gc metamethods are not allowed");
}

/* The string metatable and the libraries are read-only views: a rule file
 * cannot change how the prelude (or anything else in its state) sees
 * strings, as Redis protects the metatables of basic types since
 * CVE-2025-46818. */
static void test_sandbox_metatables(void) {
    bad_file("sandbox_metatable.lua", 2, 2, "cannot set getmetatable(\"\").__index: it is read-only");
    must_fail("getmetatable('').__index = { upper = function() return 'pwned' end }", 1,
              "cannot set getmetatable(\"\").__index: it is read-only in a rule file");
    must_fail("local mt = getmetatable('')\nmt.__index.upper = function() return 'pwned' end", 2,
              "cannot set string.upper: it is read-only");
    must_fail("string.format = nil", 1, "cannot set string.format");
    must_fail("table.concat = nil", 1, "cannot set table.concat");
    must_fail("math.floor = nil", 1, "cannot set math.floor");
    must_fail("setmetatable(string, {})", 1, "cannot change a protected metatable");
    must_fail("setmetatable(getmetatable(''), {})", 1, "cannot change a protected metatable");
    /* rawset reaches only the view: the methods of strings stay the real ones */
    vigil_ruleset *rs = must_load(
        "rawset(getmetatable(''), '__index', { upper = function() return 'pwned' end })\n"
        "rawset(string, 'upper', function() return 'pwned' end)\n"
        "assert(('x'):upper() == 'X', 'the string metatable was changed')\n"
        "assert(getmetatable(string) == false and type(getmetatable('')) == 'table')\n"
        "local n = 0\nfor k, v in pairs(math) do n = n + 1 end\nassert(n > 20, 'pairs(math)')\n"
        "rule { name = ('X'):lower(), key = 'k', window = sliding('1h'), when = ge(count(), 1) }\n");
    if (rs) CU_ASSERT_EQUAL(vigil_ruleset_rule_index(rs, "x"), 0);
    vigil_ruleset_release(rs);
}

/* Lua patterns cannot backtrack for minutes inside C. */
static void test_sandbox_patterns(void) {
    must_fail("local s = string.rep('a', 3000)\nlocal i = s:find('.-.-.-.-b')\n", 2, "at most one repetition");
    must_fail("local s = string.rep('a', 5000)\nlocal i = s:gsub('a-', '')\n", 2, "at most 4096 bytes");
    must_fail("local s = string.rep('a', 60000)\nlocal i = s:find(string.rep('a', 20000) .. 'b', 1, true)\n", 2,
              "too long for a rule file");
    vigil_ruleset *rs = must_load("assert(('card_id'):gsub('_', '.') == 'card.id')\n"
                                  "assert(('a-b'):find('-', 1, true) == 2 and ('x12'):match('%d+') == '12')\n"
                                  "for w in ('a b c'):gmatch('%a') do end\n");
    vigil_ruleset_release(rs);
}

/* Objects faked with setmetatable, expression DAGs, rule loops: errors, no crash. */
static void test_crafted_objects(void) {
    /* The DSL's own metatables are hidden (getmetatable(begin('a')) is false:
     * tests/sandbox/prelude_metatable_*.lua), but compile.c knows an object
     * by its metatable's __vigil field, which a file can forge. */
    const char *pre = "local P = { __vigil = 'pattern' }\nlocal X = { __vigil = 'expr' }\n"
                      "local W = { __vigil = 'window' }\n";
    char src[1024];
    snprintf(src, sizeof src, "%srule { name = 'x', key = 'k', pattern = setmetatable({ _steps = { { name = 'a', "
                              "conds = { 5 } } } }, P) }", pre);
    must_fail(src, 4, "malformed condition list");
    snprintf(src, sizeof src, "%srule { name = 'x', key = 'k', pattern = setmetatable({ _steps = { { name = 'a', "
                              "min = -3, max = 0/0 } } }, P) }", pre);
    must_fail(src, 4, "malformed quantifier");
    snprintf(src, sizeof src, "%srule { name = 'x', key = 'k', pattern = setmetatable({ _steps = 5 }, P) }", pre);
    must_fail(src, 4, "malformed pattern");
    snprintf(src, sizeof src, "%srule { name = 'x', key = 'k', window = setmetatable({ _ms = 1/0 }, W), "
                              "when = ge(count(), 1) }", pre);
    must_fail(src, 4, "malformed window");
    snprintf(src, sizeof src, "%srule { name = 'x', key = 'k', window = sliding('1h'), "
                              "when = setmetatable({ _k = 'agg', _agg = 'sum', _path = 'a', _filter = 5 }, X) }", pre);
    must_fail(src, 4, "takes a table of conditions");
    snprintf(src, sizeof src, "%srule { name = 'x', key = 'k', window = sliding('1h'), "
                              "when = setmetatable({ _k = 'op', _op = 'gt', {}, {} }, X) }", pre);
    must_fail(src, 4, "expected a value or an expression, got a table");
    /* a DAG that would expand to 2^30 nodes */
    must_fail("local x = e.a\nfor i = 1, 30 do x = x + x end\n"
              "rule { name = 'x', key = 'k', window = sliding('1h'), when = gt(x, 1) }", 3, "too large");
    /* a loop of rule{} calls is bounded by the memory cap */
    vigil_rules_opts o = cap_first;   /* 4 MiB */
    vigil_ruleset *rs = (vigil_ruleset *)1;
    const char *loop = "local x = e.a\nfor i = 1, 12 do x = x + x end\n"
                       "for i = 1, 1000 do\n"
                       "  rule { name = 'r' .. i, key = 'k', window = sliding('1h'), when = gt(x, 1) }\n"
                       "end\n";
    vigil_status s = vigil_rules_load_string("loop.lua", loop, strlen(loop), &o, &rs, errs, MAXERR, &nerrs);
    CU_ASSERT_EQUAL(s, VIGIL_ECOMPILE);
    CU_ASSERT_PTR_NULL(rs);
    CU_ASSERT_EQUAL(nerrs, 1);
    if (nerrs >= 1) {
        CU_ASSERT_PTR_NOT_NULL(strstr(errs[0].msg, "memory cap exceeded"));
        CU_ASSERT_EQUAL(errs[0].line, 4);
    }
}

/* ---- lists and directories -------------------------------------------------------------------- */

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(text, f);
    fclose(f);
}

static void test_lists_and_dirs(void) {
    char tmpl[] = "/tmp/vigil-test-rules-XXXXXX";
    char *dir = mkdtemp(tmpl);
    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    char p[512], p2[512], p3[512], p4[512], p5[512];
    snprintf(p, sizeof p, "%s/lists", dir);
    mkdir(p, 0700);
    snprintf(p, sizeof p, "%s/lists/disposable_domains.txt", dir);
    write_file(p, "# domains\nmailinator.com\n\n  tempmail.org  \r\n#x\n");
    snprintf(p2, sizeof p2, "%s/b.lua", dir);
    write_file(p2, "rule { name = \"disposable\", key = \"user_id\",\n"
                   "  pattern = begin(\"signup\"):where{ domain = in_list(\"disposable_domains\") } }\n");
    snprintf(p3, sizeof p3, "%s/sub", dir);
    mkdir(p3, 0700);
    snprintf(p3, sizeof p3, "%s/sub/a.lua", dir);
    write_file(p3, "rule { name = \"velocity\", key = \"user_id\", window = sliding(\"1h\"),\n"
                   "  when = all_of{ in_list(e.domain, \"disposable_domains\"), ge(count(), 2) } }\n");
    snprintf(p4, sizeof p4, "%s/lists/ignored.lua", dir);   /* lists/ is not a rules dir */
    write_file(p4, "this is not lua");
    snprintf(p5, sizeof p5, "%s/notes.txt", dir);
    write_file(p5, "not a rule file");

    vigil_ruleset *rs = NULL;
    memset(errs, 0, sizeof errs);
    vigil_status s = vigil_rules_load(dir, NULL, &rs, errs, MAXERR, &nerrs);
    if (s != VIGIL_OK) dump_errs();
    CU_ASSERT_EQUAL(s, VIGIL_OK);
    if (rs) {
        CU_ASSERT_EQUAL(vigil_ruleset_rule_count(rs), 2);
        CU_ASSERT(vigil_ruleset_rule_index(rs, "disposable") >= 0);
        CU_ASSERT(vigil_ruleset_rule_index(rs, "velocity") >= 0);
        vigil_ruleset_release(rs);
    }
    /* one file: lists/ next to it is found too */
    rs = NULL;
    s = vigil_rules_load(p2, NULL, &rs, errs, MAXERR, &nerrs);
    CU_ASSERT_EQUAL(s, VIGIL_OK);
    vigil_ruleset_release(rs);
    /* an explicit lists_dir without the list: a compile error naming it */
    vigil_rules_opts o = {.lists_dir = "/nonexistent-vigil-lists"};
    rs = (vigil_ruleset *)1;
    s = vigil_rules_load(p2, &o, &rs, errs, MAXERR, &nerrs);
    CU_ASSERT_EQUAL(s, VIGIL_ECOMPILE);
    CU_ASSERT_PTR_NULL(rs);
    CU_ASSERT_EQUAL(nerrs, 1);
    if (nerrs) {
        CU_ASSERT_EQUAL(errs[0].line, 1);
        CU_ASSERT_PTR_NOT_NULL(strstr(errs[0].msg, "unknown list 'disposable_domains'"));
    }
    /* a missing path */
    rs = (vigil_ruleset *)1;
    s = vigil_rules_load("/nonexistent-vigil-rules", NULL, &rs, errs, MAXERR, &nerrs);
    CU_ASSERT_EQUAL(s, VIGIL_ENOTFOUND);
    CU_ASSERT_PTR_NULL(rs);
    CU_ASSERT_EQUAL(nerrs, 1);
    /* path traversal in a list name */
    must_fail("rule { name = \"x\", key = \"k\", pattern = begin(\"a\"):where{ d = in_list(\"../etc/passwd\") } }",
              1, "a list name is");
    /* the duplicate check spans files */
    snprintf(p5, sizeof p5, "%s/c.lua", dir);
    write_file(p5, "\nrule { name = \"velocity\", key = \"user_id\", window = sliding(\"2h\"), when = ge(count(), 3) }\n");
    rs = (vigil_ruleset *)1;
    s = vigil_rules_load(dir, NULL, &rs, errs, MAXERR, &nerrs);
    CU_ASSERT_EQUAL(s, VIGIL_ECOMPILE);
    CU_ASSERT_EQUAL(nerrs, 1);
    if (nerrs) {
        CU_ASSERT_STRING_EQUAL(errs[0].file, p3);       /* sub/a.lua comes after c.lua */
        CU_ASSERT_PTR_NOT_NULL(strstr(errs[0].msg, "duplicate rule name 'velocity'"));
    }
    /* maxerrs bounds what is written */
    rs = (vigil_ruleset *)1;
    s = vigil_rules_load(BAD_DIR, NULL, &rs, errs, 3, &nerrs);
    CU_ASSERT_EQUAL(nerrs, 3);
    unlink(p);
    unlink(p2);
    unlink(p3);
    unlink(p4);
    unlink(p5);
    snprintf(p, sizeof p, "%s/notes.txt", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/sub", dir);
    rmdir(p);
    snprintf(p, sizeof p, "%s/lists", dir);
    rmdir(p);
    rmdir(dir);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    CU_pSuite s = CU_add_suite("rules", NULL, NULL);
    struct { const char *name; void (*fn)(void); } tests[] = {
        {"valid pattern and aggregate rules", test_valid_rules},
        {"the DSL v1 surface", test_dsl_surface},
        {"shared pattern prefix", test_shared_prefix},
        {"error: unknown key", test_err_unknown_key},
        {"error: undefined global", test_err_undefined_global},
        {"error: boolean when", test_err_boolean_when},
        {"error: Lua < on expressions", test_err_lua_compare},
        {"error: bad skip strategy", test_err_bad_skip},
        {"error: missing key", test_err_missing_key},
        {"error: duplicate name", test_err_duplicate},
        {"error: bad duration", test_err_bad_duration},
        {"error: syntax error", test_err_syntax},
        {"error: function predicate", test_err_function_predicate},
        {"error: names the rule", test_err_rule_name_in_error},
        {"error: whole directory", test_err_whole_dir},
        {"error: messages", test_err_messages},
        {"error: several in one file", test_err_several_in_one_file},
        {"examples: matches, late, engine options", test_examples_parse},
        {"examples: errors", test_examples_errors},
        {"examples: vigil test checks matches and late", test_examples_command},
        {"sandbox: os", test_sandbox_os},
        {"sandbox: io", test_sandbox_io},
        {"sandbox: load", test_sandbox_load},
        {"sandbox: string.dump", test_sandbox_dump},
        {"sandbox: binary chunk", test_sandbox_binary_chunk},
        {"sandbox: endless loop", test_sandbox_loop},
        {"sandbox: string.rep", test_sandbox_rep},
        {"sandbox: table bomb", test_sandbox_table_bomb},
        {"sandbox: globals", test_sandbox_globals},
        {"sandbox: limits are uncatchable", test_sandbox_uncatchable},
        {"sandbox: wall clock", test_sandbox_wall_clock},
        {"sandbox: small memory cap", test_sandbox_small_cap},
        {"sandbox: no __gc", test_sandbox_no_gc},
        {"sandbox: Lua patterns", test_sandbox_patterns},
        {"sandbox: read-only metatables and libraries", test_sandbox_metatables},
        {"error: a comparison in where{}", test_err_where_comparison},
        {"crafted objects", test_crafted_objects},
        {"lists and directories", test_lists_and_dirs},
    };
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++)
        if (!CU_add_test(s, tests[i].name, tests[i].fn)) return 2;
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    int failed = CU_get_number_of_failures() != 0;
    CU_cleanup_registry();
    return failed;
}
