/* test_pairs.c — the names of a pair (server/common/pairs.c) and the
 * rendezvous hashing of the cluster wing (server/cluster/rendezvous.c).
 *
 * Group tokens: plain names are themselves, others are "x"+hex, and the
 * mapping is one-to-one even for plain names that look like an encoding;
 * every name builder refuses what does not fit. Rendezvous: the pick is the
 * highest score whatever the order of the list, spreads pairs evenly, and a
 * member joining takes pairs only for itself (about 1/n of them) while one
 * leaving moves only its own. */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "server/cluster/rendezvous.h"
#include "server/common/pairs.h"

static const char *tok(const char *group) {
    static char buf[VIGIL_PAIR_NAME_MAX];
    CU_ASSERT(vigil_cluster_group_token(group, buf, sizeof buf) >= 0);
    return buf;
}

static void test_token(void) {
    CU_ASSERT_STRING_EQUAL(tok("card_id"), "card_id");
    CU_ASSERT_STRING_EQUAL(tok("Account-2"), "Account-2");
    CU_ASSERT_STRING_EQUAL(tok("card.id"), "x636172642e6964");
    CU_ASSERT_STRING_EQUAL(tok("a b"), "x612062");
    CU_ASSERT_STRING_EQUAL(tok("é"), "xc3a9");
    CU_ASSERT_STRING_EQUAL(tok(""), "x");
    /* plain names shaped like an encoding are encoded too: one-to-one */
    CU_ASSERT_STRING_EQUAL(tok("x2e"), "x783265");
    CU_ASSERT_STRING_EQUAL(tok("."), "x2e");
    CU_ASSERT_STRING_EQUAL(tok("x"), "x78");
    CU_ASSERT_STRING_EQUAL(tok("xid"), "xid");      /* 'i' is not hex */
    CU_ASSERT_STRING_EQUAL(tok("x2"), "x2");        /* odd length: not an encoding */
    CU_ASSERT_STRING_EQUAL(tok("x2E"), "x2E");      /* uppercase: not an encoding */
    /* the length returned, and too small a buffer */
    char b[8];
    CU_ASSERT_EQUAL(vigil_cluster_group_token("card", b, sizeof b), 4);
    CU_ASSERT_EQUAL(vigil_cluster_group_token("cardholder", b, sizeof b), -1);
    CU_ASSERT_STRING_EQUAL(b, "");
    CU_ASSERT_EQUAL(vigil_cluster_group_token("a.b", b, 7), -1);   /* "x612e62" needs 8 */
    CU_ASSERT_EQUAL(vigil_cluster_group_token("a.b", b, 8), 7);
    CU_ASSERT_EQUAL(vigil_cluster_group_token(NULL, b, sizeof b), -1);
}

/* Distinct names give distinct tokens: every 1- and 2-byte name over a
 * small alphabet that mixes plain, hex and other bytes. */
static void test_token_injective(void) {
    const char alpha[] = "x0aef.-Z";
    int na = (int)strlen(alpha);
    char names[80][3];
    char toks[80][16];
    int n = 0;
    for (int i = 0; i < na; i++) {
        snprintf(names[n], 3, "%c", alpha[i]);
        n++;
        for (int j = 0; j < na; j++) {
            snprintf(names[n], 3, "%c%c", alpha[i], alpha[j]);
            n++;
        }
    }
    for (int i = 0; i < n; i++) CU_ASSERT(vigil_cluster_group_token(names[i], toks[i], sizeof toks[i]) > 0);
    int dup = 0;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (strcmp(toks[i], toks[j]) == 0) dup++;
    CU_ASSERT_EQUAL(dup, 0);
}

static void test_names(void) {
    char b[VIGIL_PAIR_NAME_MAX];
    CU_ASSERT_EQUAL(vigil_pair_subject(b, sizeof b, "vigil.keyed", "card", 3), 18);
    CU_ASSERT_STRING_EQUAL(b, "vigil.keyed.card.3");
    vigil_pair_subject(b, sizeof b, "vigil.keyed", "card.id", 12);
    CU_ASSERT_STRING_EQUAL(b, "vigil.keyed.x636172642e6964.12");
    vigil_pair_consumer(b, sizeof b, "vigil", "card", 3);
    CU_ASSERT_STRING_EQUAL(b, "vigil-card-p3");
    vigil_pair_lease_key(b, sizeof b, "card", 7);
    CU_ASSERT_STRING_EQUAL(b, "card.p7");
    vigil_pair_lease_key(b, sizeof b, "a b", 0);
    CU_ASSERT_STRING_EQUAL(b, "x612062.p0");
    vigil_pair_epoch_key(b, sizeof b, "vigil", "card", 5);
    CU_ASSERT_STRING_EQUAL(b, "vigil:{card:p5}:epoch");
    vigil_pair_redis_key(b, sizeof b, "vigil", "card.id", 5, "outbox");   /* the raw name in the hash tag */
    CU_ASSERT_STRING_EQUAL(b, "vigil:{card.id:p5}:outbox");
    /* refusals */
    CU_ASSERT_EQUAL(vigil_pair_epoch_key(b, sizeof b, "vigil", "a{b", 0), -1);
    CU_ASSERT_EQUAL(vigil_pair_subject(b, sizeof b, "vigil.keyed", "card", -1), -1);
    CU_ASSERT_EQUAL(vigil_pair_subject(b, sizeof b, "", "card", 1), -1);
    CU_ASSERT_EQUAL(vigil_pair_consumer(b, 10, "vigil", "card", 3), -1);   /* "vigil-card-p3" is 13 */
    CU_ASSERT_STRING_EQUAL(b, "");
}

/* The pick is the argmax of the scores, independent of the list's order. */
static void test_pick_is_max(void) {
    const char *m[] = {"vigil-a", "vigil-b", "vigil-c", "vigil-d", "vigil-e"};
    const char *r[] = {"vigil-e", "vigil-c", "vigil-a", "vigil-d", "vigil-b"};
    for (int p = 0; p < 200; p++) {
        int i = vigil_rendezvous_pick(m, 5, "card", p);
        CU_ASSERT_FATAL(i >= 0);
        for (int k = 0; k < 5; k++)
            CU_ASSERT(vigil_rendezvous_score(m[k], "card", p) <= vigil_rendezvous_score(m[i], "card", p));
        CU_ASSERT_STRING_EQUAL(r[vigil_rendezvous_pick(r, 5, "card", p)], m[i]);
    }
    CU_ASSERT_EQUAL(vigil_rendezvous_pick(m, 0, "card", 0), -1);
    const char *holes[] = {NULL, "vigil-b", NULL};
    CU_ASSERT_EQUAL(vigil_rendezvous_pick(holes, 3, "card", 0), 1);
    /* the score depends on each input */
    CU_ASSERT(vigil_rendezvous_score("a", "g", 1) != vigil_rendezvous_score("a", "g", 2));
    CU_ASSERT(vigil_rendezvous_score("a", "g", 1) != vigil_rendezvous_score("a", "h", 1));
    CU_ASSERT(vigil_rendezvous_score("a", "g", 1) != vigil_rendezvous_score("b", "g", 1));
    CU_ASSERT(vigil_rendezvous_score("ab", "", 1) != vigil_rendezvous_score("a", "b", 1));
}

/* 4 members, 4096 pairs: each gets a quarter within 10 %; a fifth member
 * takes only pairs for itself, about a fifth; removing it restores the
 * previous owners exactly. */
static void test_spread_and_moves(void) {
    const char *m[] = {"vigil-a", "vigil-b", "vigil-c", "vigil-d", "vigil-e"};
    enum { N = 4096 };
    static int before[N], after[N];
    int count[5] = {0};
    for (int p = 0; p < N; p++) count[before[p] = vigil_rendezvous_pick(m, 4, "card", p)]++;
    for (int k = 0; k < 4; k++) CU_ASSERT(count[k] > N / 4 * 9 / 10 && count[k] < N / 4 * 11 / 10);
    int moved = 0, wrong = 0;
    for (int p = 0; p < N; p++) {
        after[p] = vigil_rendezvous_pick(m, 5, "card", p);
        if (after[p] != before[p]) {
            moved++;
            if (after[p] != 4) wrong++;
        }
    }
    CU_ASSERT_EQUAL(wrong, 0);
    CU_ASSERT(moved > N / 5 * 9 / 10 && moved < N / 5 * 11 / 10);
    /* b leaves (a, c, d remain): only b's pairs move */
    const char *without_b[] = {"vigil-a", NULL, "vigil-c", "vigil-d"};
    int bad = 0;
    for (int p = 0; p < N; p++) {
        int i = vigil_rendezvous_pick(without_b, 4, "card", p);
        if (before[p] != 1 && i != before[p]) bad++;
        if (i == 1) bad++;
    }
    CU_ASSERT_EQUAL(bad, 0);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("pairs", NULL, NULL);
    CU_add_test(s, "group token", test_token);
    CU_add_test(s, "group token is one-to-one", test_token_injective);
    CU_add_test(s, "pair names", test_names);
    CU_add_test(s, "rendezvous: the pick is the highest score", test_pick_is_max);
    CU_add_test(s, "rendezvous: spread, joins and leaves", test_spread_and_moves);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned f = CU_get_number_of_failures();
    CU_cleanup_registry();
    return f != 0;
}
