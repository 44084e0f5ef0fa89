/*
 * test_mia_stats.c - the membership-inference statistics (host/mia_stats.c) against cases
 * computed by hand: ROC points with ties, the AUC as the Mann-Whitney count (ties half),
 * the best balanced accuracy, the held-out threshold, TPR at low FPR, and the label-only
 * attack's balanced accuracy equal to its floor 0.5 + (acc_member - acc_nonmember) / 2.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdbool.h>

#include "host/mia_stats.h"

#define EPS 1e-12

/* cmocka 1.1 has no double comparison: |a - b| <= eps, printing both values when not. */
#define assert_double_equal(a, b, eps) assert_near((a), (b), (eps), #a)
static void assert_near(double a, double b, double eps, const char *what)
{
    if (!(fabs(a - b) <= eps))
        fail_msg("%s = %.17g, expected %.17g", what, a, b);
}

/* Members {3, 2, 1}, non-members {2, 0}. Of the 6 (member, non-member) pairs the member
 * wins 4 and ties 1 (2 vs 2): AUC = 4.5 / 6 = 0.75. */
static const double tie_score[] = {3, 2, 1, 2, 0};
static const bool tie_member[] = {true, true, true, false, false};

static void test_roc_with_ties(void **state)
{
    (void)state;
    struct dz_roc_point p[6];
    size_t count = dz_mia_roc(tie_score, tie_member, 5, p);
    /* (0,0), t=3: (0, 1/3), t=2: the tied pair enters together (1/2, 2/3), t=1: (1/2, 1),
     * t=0: (1, 1). */
    assert_int_equal(count, 5);
    const double fpr[] = {0, 0, 0.5, 0.5, 1}, tpr[] = {0, 1.0 / 3, 2.0 / 3, 1, 1};
    const double thr[] = {INFINITY, 3, 2, 1, 0};
    for (size_t i = 0; i < count; i++) {
        assert_double_equal(p[i].fpr, fpr[i], EPS);
        assert_double_equal(p[i].tpr, tpr[i], EPS);
        if (i > 0)
            assert_double_equal(p[i].threshold, thr[i], EPS);
    }
    assert_true(isinf(p[0].threshold));
    assert_double_equal(dz_mia_auc_of(p, count), 0.75, EPS);
    assert_double_equal(dz_mia_tpr_at_fpr(p, count, 0.01), 1.0 / 3, EPS);
    assert_double_equal(dz_mia_tpr_at_fpr(p, count, 0.5), 1, EPS);
}

static void test_summary_with_ties(void **state)
{
    (void)state;
    struct dz_mia_summary s;
    assert_int_equal(dz_mia_summarize(tie_score, tie_member, 5, &s), 0);
    assert_double_equal(s.auc, 0.75, EPS);
    /* Best at t = 1: every member (TPR 1), one non-member of two (FPR 1/2): (1 + 1/2) / 2. */
    assert_double_equal(s.best_balanced, 0.75, EPS);
    assert_double_equal(s.best_threshold, 1, EPS);
    assert_double_equal(s.tpr_at_1pct, 1.0 / 3, EPS);
    assert_double_equal(s.tpr_at_01pct, 1.0 / 3, EPS);
}

static void test_perfect_inverted_and_tied(void **state)
{
    (void)state;
    const double good[] = {0.9, 0.8, 0.1, 0.2};
    const bool member[] = {true, true, false, false};
    struct dz_mia_summary s;
    assert_int_equal(dz_mia_summarize(good, member, 4, &s), 0);
    assert_double_equal(s.auc, 1, EPS);
    assert_double_equal(s.best_balanced, 1, EPS);
    assert_double_equal(s.tpr_at_01pct, 1, EPS);

    /* Members score lowest: AUC 0, and no threshold beats calling nobody a member (0.5). */
    const double bad[] = {0.1, 0.2, 0.9, 0.8};
    assert_int_equal(dz_mia_summarize(bad, member, 4, &s), 0);
    assert_double_equal(s.auc, 0, EPS);
    assert_double_equal(s.best_balanced, 0.5, EPS);
    assert_double_equal(s.tpr_at_1pct, 0, EPS);

    /* One score for all: a single diagonal step, AUC 0.5, nothing to gain. */
    const double flat[] = {7, 7, 7, 7};
    assert_int_equal(dz_mia_summarize(flat, member, 4, &s), 0);
    assert_double_equal(s.auc, 0.5, EPS);
    assert_double_equal(s.best_balanced, 0.5, EPS);
}

/* The label-only attack: score 1 when the label is right. Members right 3 of 4, non-members
 * 1 of 4: its balanced accuracy is the floor 0.5 + (0.75 - 0.25) / 2 = 0.75, and its AUC
 * too (pairs: 3*3 wins, 3*1 + 1*3 ties, 1*1 loss: (9 + 3) / 16). */
static void test_label_only_reaches_floor(void **state)
{
    (void)state;
    const double correct[] = {1, 1, 1, 0, 1, 0, 0, 0};
    const bool member[] = {true, true, true, true, false, false, false, false};
    struct dz_mia_summary s;
    assert_int_equal(dz_mia_summarize(correct, member, 8, &s), 0);
    assert_double_equal(s.best_balanced, 0.5 + (0.75 - 0.25) / 2, EPS);
    assert_double_equal(s.auc, 0.75, EPS);
    assert_double_equal(s.best_threshold, 1, EPS);
}

/* Even samples: members {0.9, 0.8}, non-members {0.7, 0.1}: the best threshold is 0.8
 * (balanced accuracy 1 there). On the odd samples, members {0.6, 0.3} and non-members
 * {0.2, 0.4} all fall below it: TPR 0, TNR 1, balanced 0.5. */
static void test_holdout_threshold(void **state)
{
    (void)state;
    const double score[] = {0.9, 0.6, 0.7, 0.2, 0.8, 0.3, 0.1, 0.4};
    const bool member[] = {true, true, false, false, true, true, false, false};
    struct dz_mia_summary s;
    assert_int_equal(dz_mia_summarize(score, member, 8, &s), 0);
    assert_double_equal(s.holdout, 0.5, EPS);
    /* On all 8: members {0.9, 0.8, 0.6, 0.3}, non-members {0.7, 0.4, 0.2, 0.1}; the best
     * cut at 0.6 calls 3 members and 1 non-member: (3/4 + 3/4) / 2. */
    assert_double_equal(s.best_balanced, 0.75, EPS);
}

static void test_balanced_at_with_keep(void **state)
{
    (void)state;
    const double score[] = {0.9, 0.6, 0.7, 0.2};
    const bool member[] = {true, true, false, false};
    const bool keep[] = {true, false, true, true};
    /* All: t=0.65 calls 0.9 and 0.7: TPR 1/2, TNR 1/2. Kept: member 0.9 (called), non-members
     * 0.7 (called) and 0.2: TPR 1, TNR 1/2. */
    assert_double_equal(dz_mia_balanced_at(score, member, NULL, 4, 0.65), 0.5, EPS);
    assert_double_equal(dz_mia_balanced_at(score, member, keep, 4, 0.65), 0.75, EPS);
    const bool only_members[] = {true, true, false, false};
    assert_double_equal(dz_mia_balanced_at(score, member, only_members, 4, 0.65), 0.5, EPS);
}

static void test_empty_class_refused(void **state)
{
    (void)state;
    const double score[] = {1, 2};
    const bool member[] = {true, true};
    struct dz_roc_point p[3];
    struct dz_mia_summary s;
    assert_int_equal(dz_mia_roc(score, member, 2, p), 0);
    assert_int_equal(dz_mia_roc(score, member, 0, p), 0);
    assert_int_equal(dz_mia_summarize(score, member, 2, &s), -1);
    assert_double_equal(s.auc, 0.5, EPS);
}

/* A NaN score sorts below every number: it is called a member only at the last point. */
static void test_nan_sorts_last(void **state)
{
    (void)state;
    const double score[] = {NAN, 1, 0};
    const bool member[] = {true, false, true};
    struct dz_roc_point p[4];
    size_t count = dz_mia_roc(score, member, 3, p);
    assert_int_equal(count, 4);
    /* t=1: the non-member (0, 0)->(1, 0); t=0: (1, 1/2); NaN: (1, 1). AUC 0. */
    assert_double_equal(p[1].fpr, 1, EPS);
    assert_double_equal(p[2].tpr, 0.5, EPS);
    assert_double_equal(dz_mia_auc_of(p, count), 0, EPS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roc_with_ties),
        cmocka_unit_test(test_summary_with_ties),
        cmocka_unit_test(test_perfect_inverted_and_tied),
        cmocka_unit_test(test_label_only_reaches_floor),
        cmocka_unit_test(test_holdout_threshold),
        cmocka_unit_test(test_balanced_at_with_keep),
        cmocka_unit_test(test_empty_class_refused),
        cmocka_unit_test(test_nan_sorts_last),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
