/* One float32 array as a NumPy .npy file, version 1.0: the magic "\x93NUMPY",
 * the version bytes, a little-endian uint16 header length, then a Python
 * dict literal padded with spaces and ended by '\n' so that the data starts
 * on a multiple of 64 bytes (the alignment numpy itself writes, see
 * numpy/lib/format.py), then the raw little-endian floats in C order. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cnnviz/io.h"

#define NPY_MAX_RANK 32 /* numpy's own limit on dimensions */

/* Little-endian hosts write the floats as they are; others swap a copy. */
static int host_is_little_endian(void) {
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 1;
}

static int write_floats_le(FILE *f, const float *data, size_t count) {
    if (host_is_little_endian()) return fwrite(data, sizeof(float), count, f) == count;
    uint8_t buf[4096];
    for (size_t i = 0; i < count;) {
        size_t k = 0;
        for (; k < sizeof buf / 4 && i < count; k++, i++) {
            uint8_t b[4];
            memcpy(b, &data[i], 4);
            buf[4 * k] = b[3];
            buf[4 * k + 1] = b[2];
            buf[4 * k + 2] = b[1];
            buf[4 * k + 3] = b[0];
        }
        if (fwrite(buf, 4, k, f) != k) return 0;
    }
    return 1;
}

cnnviz_status cnnviz_npy_write(const char *path, const float *data, const int *dims, int rank,
                               cnnviz_error *err) {
    if (rank < 0 || rank > NPY_MAX_RANK)
        return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, path, "cannot write an array of rank %d", rank);
    char header[1024];
    int len = snprintf(header, sizeof header, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    size_t count = 1;
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 0)
            return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, path, "dimension %d is negative (%d)", i, dims[i]);
        count *= (size_t)dims[i];
        /* a 1-tuple needs its comma in Python: (5,) */
        len += snprintf(header + len, sizeof header - len, "%d%s", dims[i], rank == 1 ? "," : (i + 1 < rank ? ", " : ""));
    }
    len += snprintf(header + len, sizeof header - len, "), }");
    if (count > 0 && data == NULL)
        return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, path, "no data to write");
    /* pad so that 10 (preamble) + header + '\n' is a multiple of 64 */
    int total = 10 + len + 1;
    int pad = (64 - total % 64) % 64;
    memset(header + len, ' ', (size_t)pad);
    len += pad;
    header[len++] = '\n';
    uint8_t pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (uint8_t)(len & 0xff), (uint8_t)(len >> 8)};

    cnnviz_atomic_file af;
    cnnviz_status st = cnnviz_atomic_begin(&af, path, err);
    if (st != CNNVIZ_OK) return st;
    FILE *f = fopen(af.tmp_path, "wb");
    if (f == NULL) {
        int e = errno;
        cnnviz_atomic_abort(&af);
        return cnnviz_error_set(err, CNNVIZ_ERR_IO, path, "cannot write %s: %s", path, strerror(e));
    }
    int ok = fwrite(pre, 1, sizeof pre, f) == sizeof pre && fwrite(header, 1, (size_t)len, f) == (size_t)len &&
             write_floats_le(f, data, count);
    int e = errno;
    if (fclose(f) != 0 && ok) {
        ok = 0;
        e = errno;
    }
    if (!ok) {
        cnnviz_atomic_abort(&af);
        return cnnviz_error_set(err, CNNVIZ_ERR_IO, path, "cannot write %s: %s", path, strerror(e));
    }
    return cnnviz_atomic_commit(&af, err);
}
