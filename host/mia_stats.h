/*
 * mia_stats.h - the statistics of a membership-inference attack: an attack gives each
 * sample a score (higher = "more likely a member") and these functions measure how well
 * the score separates the members from the non-members. They allocate a sorted copy of
 * the scores and touch no other state; every function works on (score, member) arrays
 * of n samples.
 *
 * The decision rule everywhere: "member" when score >= threshold. Ties are never split:
 * a threshold admits every sample of a tied group or none, so the ROC curve has one
 * point per distinct score, and the AUC counts a tied (member, non-member) pair as half
 * (the Mann-Whitney statistic).
 */
#ifndef DZ_MIA_STATS_H
#define DZ_MIA_STATS_H

#include <stdbool.h>
#include <stddef.h>

/* One point of a ROC curve: false- and true-positive rates, both in [0, 1]. */
struct dz_roc_point {
    double fpr, tpr;
    double threshold; /* the lowest score called "member" at this point (+inf for (0, 0)) */
};

/* Everything the mia command reports for one attack. */
struct dz_mia_summary {
    double auc;            /* area under the ROC curve, ties as half */
    double best_balanced;  /* max over thresholds of (TPR + 1 - FPR) / 2 */
    double best_threshold; /* the threshold reaching it (lowest such score) */
    double holdout;        /* threshold fitted on even samples, measured on odd ones */
    double tpr_at_1pct;    /* best TPR with FPR <= 0.01 */
    double tpr_at_01pct;   /* best TPR with FPR <= 0.001 */
};

/*
 * dz_mia_roc - the ROC curve of @score (n) against @member (n), from (0, 0) to (1, 1),
 * one point per distinct score, in order of decreasing threshold.
 * @points: receives at most n + 1 points (the caller sizes it so)
 * Returns the number of points written, or 0 when n is 0, when either class is empty
 * (rates undefined), or when memory runs out. NaN scores sort below every number.
 */
size_t dz_mia_roc(const double *score, const bool *member, size_t n, struct dz_roc_point *points);

/* The area under a curve from dz_mia_roc (trapezoids: ties count half). */
double dz_mia_auc_of(const struct dz_roc_point *points, size_t count);

/* Balanced accuracy (TPR + TNR) / 2 of the rule score >= threshold over the samples i
 * with keep[i] (keep NULL: all). 0.5 when a class has no kept sample. */
double dz_mia_balanced_at(const double *score, const bool *member, const bool *keep, size_t n,
                          double threshold);

/* The best TPR at FPR <= max_fpr on a curve from dz_mia_roc (0 when no point qualifies). */
double dz_mia_tpr_at_fpr(const struct dz_roc_point *points, size_t count, double max_fpr);

/*
 * dz_mia_summarize - AUC, best balanced accuracy, the held-out estimate and the TPRs at
 * low FPR of one attack. The held-out estimate fits the threshold that maximises balanced
 * accuracy on the samples of even index and measures it on those of odd index, so the
 * caller orders the samples so that both halves hold members and non-members (the mia
 * command samples each class in random order). Returns 0, or -1 when a class is empty
 * or memory runs out (*out then all 0.5 / 0).
 */
int dz_mia_summarize(const double *score, const bool *member, size_t n, struct dz_mia_summary *out);

#endif
