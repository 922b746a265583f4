/* Internal to src/io: what the image decoder knows beyond the pixels. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "cnnviz/error.h"

/* cnnviz_image_read_rgba8, plus a short description of the source for
 * reports ("PNG palette 1-bit", "JPEG progressive"); desc may be NULL. */
cnnviz_status cnnviz_image_decode(const char *path, int *w, int *h, uint8_t **rgba, char *desc, size_t desc_n,
                                  cnnviz_error *err);
