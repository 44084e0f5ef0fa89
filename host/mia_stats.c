/* mia_stats.c - ROC, AUC and thresholds of a membership-inference attack (mia_stats.h). */
#include "host/mia_stats.h"

#include <math.h>
#include <stdlib.h>

struct scored {
    double score;
    bool member;
};

/* Decreasing score, NaN last: the order in which a falling threshold admits samples. */
static int by_score_desc(const void *pa, const void *pb)
{
    const struct scored *a = pa, *b = pb;
    bool na = isnan(a->score), nb = isnan(b->score);
    if (na || nb)
        return (int)na - (int)nb;
    return (a->score < b->score) - (a->score > b->score);
}

static bool same_score(double a, double b)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b);
    return !(a < b || a > b);
}

size_t dz_mia_roc(const double *score, const bool *member, size_t n, struct dz_roc_point *points)
{
    size_t pos = 0;
    for (size_t i = 0; i < n; i++)
        pos += member[i];
    const size_t neg = n - pos;
    if (n == 0 || pos == 0 || neg == 0)
        return 0;
    struct scored *s = malloc(n * sizeof *s);
    if (!s)
        return 0;
    for (size_t i = 0; i < n; i++)
        s[i] = (struct scored){score[i], member[i]};
    qsort(s, n, sizeof *s, by_score_desc);
    size_t count = 0, tp = 0, fp = 0;
    points[count++] = (struct dz_roc_point){0, 0, INFINITY};
    for (size_t i = 0; i < n;) {
        /* A tied group enters as a whole: one diagonal step, which is where ties count half. */
        size_t j = i;
        for (; j < n && same_score(s[j].score, s[i].score); j++) {
            tp += s[j].member;
            fp += !s[j].member;
        }
        points[count++] =
            (struct dz_roc_point){(double)fp / (double)neg, (double)tp / (double)pos, s[i].score};
        i = j;
    }
    free(s);
    return count;
}

double dz_mia_auc_of(const struct dz_roc_point *points, size_t count)
{
    double area = 0;
    for (size_t i = 1; i < count; i++)
        area += (points[i].fpr - points[i - 1].fpr) * (points[i].tpr + points[i - 1].tpr) / 2;
    return area;
}

double dz_mia_balanced_at(const double *score, const bool *member, const bool *keep, size_t n,
                          double threshold)
{
    size_t pos = 0, neg = 0, tp = 0, tn = 0;
    for (size_t i = 0; i < n; i++) {
        if (keep && !keep[i])
            continue;
        bool called = score[i] >= threshold;
        if (member[i]) {
            pos++;
            tp += called;
        } else {
            neg++;
            tn += !called;
        }
    }
    if (pos == 0 || neg == 0)
        return 0.5;
    return ((double)tp / (double)pos + (double)tn / (double)neg) / 2;
}

double dz_mia_tpr_at_fpr(const struct dz_roc_point *points, size_t count, double max_fpr)
{
    double best = 0;
    for (size_t i = 0; i < count; i++)
        if (points[i].fpr <= max_fpr && points[i].tpr > best)
            best = points[i].tpr;
    return best;
}

/* The point of highest balanced accuracy; the first (highest threshold) among equals. */
static size_t best_point(const struct dz_roc_point *points, size_t count)
{
    size_t best = 0;
    for (size_t i = 1; i < count; i++)
        if (points[i].tpr - points[i].fpr > points[best].tpr - points[best].fpr)
            best = i;
    return best;
}

/* Fits the threshold on the even samples and measures it on the odd ones. */
static int holdout(const double *score, const bool *member, size_t n, double *out)
{
    size_t half = (n + 1) / 2;
    double *fs = malloc(half * sizeof *fs);
    bool *fm = malloc(half * sizeof *fm), *odd = malloc(n * sizeof *odd);
    struct dz_roc_point *pts = malloc((half + 1) * sizeof *pts);
    int rc = -1;
    if (!fs || !fm || !odd || !pts)
        goto out;
    for (size_t i = 0; i < n; i++) {
        odd[i] = i % 2 == 1;
        if (i % 2 == 0) {
            fs[i / 2] = score[i];
            fm[i / 2] = member[i];
        }
    }
    size_t count = dz_mia_roc(fs, fm, half, pts);
    if (count == 0)
        goto out;
    *out = dz_mia_balanced_at(score, member, odd, n, pts[best_point(pts, count)].threshold);
    rc = 0;
out:
    free(pts);
    free(odd);
    free(fm);
    free(fs);
    return rc;
}

int dz_mia_summarize(const double *score, const bool *member, size_t n, struct dz_mia_summary *out)
{
    *out = (struct dz_mia_summary){0.5, 0.5, INFINITY, 0.5, 0, 0};
    struct dz_roc_point *pts = malloc((n + 1) * sizeof *pts);
    if (!pts)
        return -1;
    size_t count = dz_mia_roc(score, member, n, pts);
    int rc = -1;
    if (count == 0)
        goto out;
    out->auc = dz_mia_auc_of(pts, count);
    size_t b = best_point(pts, count);
    out->best_balanced = (pts[b].tpr + 1 - pts[b].fpr) / 2;
    out->best_threshold = pts[b].threshold;
    out->tpr_at_1pct = dz_mia_tpr_at_fpr(pts, count, 0.01);
    out->tpr_at_01pct = dz_mia_tpr_at_fpr(pts, count, 0.001);
    rc = holdout(score, member, n, &out->holdout);
out:
    free(pts);
    return rc;
}
