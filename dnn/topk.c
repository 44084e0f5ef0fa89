/* topk.c - darknet's top_k: indexes of the k largest values, largest first;
 * of equal values the earlier index ranks first. The TA uses it to reduce a
 * prediction to labels before anything leaves the TEE. */
#include "dnn/dnn_internal.h"

void dnn_top_k(const float *a, size_t n, size_t k, int *index)
{
    for (size_t j = 0; j < k; j++)
        index[j] = -1;
    for (size_t i = 0; i < n; i++) {
        int curr = (int)i;
        for (size_t j = 0; j < k && curr >= 0; j++) {
            if (index[j] < 0 || a[curr] > a[index[j]]) {
                int swap = curr;
                curr = index[j];
                index[j] = swap;
            }
        }
    }
}
