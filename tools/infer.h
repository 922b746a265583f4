/* Inference helpers shared by predict and evaluate. */
#pragma once
#include <stddef.h>

#include "cnnviz/model.h"

int infer_argmax(const float *p, size_t n);
