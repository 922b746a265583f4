#include "infer.h"

int infer_argmax(const float *p, size_t n) {
    size_t best = 0;
    for (size_t j = 1; j < n; j++)
        if (p[j] > p[best]) best = j;
    return (int)best;
}
