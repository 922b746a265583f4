/* Activation dumps as HDF5: one float32 dataset per layer at the root,
 * named after the layer, in the layer's own shape, so h5py shows
 * f["conv2d"].shape == (1, 26, 26, 32).
 *
 * HDF5 prints its error stack to stderr by default; the library must not
 * print, so automatic printing is switched off and the innermost message of
 * the stack (the most specific one) goes into the cnnviz error instead. */
#include <errno.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cnnviz/io.h"

#define H5_MAX_RANK 5

static herr_t first_error(unsigned n, const H5E_error2_t *e, void *data) {
    char *out = data;
    if (n == 0 && e->desc) snprintf(out, 200, "%s", e->desc);
    return 0;
}

/* The most specific thing HDF5 said, or `fallback`. */
static void hdf5_reason(char out[200], const char *fallback) {
    out[0] = '\0';
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, first_error, out);
    H5Eclear2(H5E_DEFAULT);
    if (out[0] == '\0') snprintf(out, 200, "%s", fallback);
}

static void hdf5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

static cnnviz_status check_sets(const char *path, const cnnviz_dataset *sets, int n, cnnviz_error *err) {
    for (int i = 0; i < n; i++) {
        const cnnviz_dataset *d = &sets[i];
        if (d->name == NULL || d->name[0] == '\0')
            return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, path, "dataset %d has no name", i);
        /* '/' would make HDF5 look for a group; "." names the root itself */
        if (strchr(d->name, '/') || strcmp(d->name, ".") == 0)
            return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, path, "dataset name '%s' may not contain '/'", d->name);
        if (d->rank < 0 || d->rank > H5_MAX_RANK)
            return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, path, "dataset '%s' has rank %d (at most %d)", d->name,
                                    d->rank, H5_MAX_RANK);
        size_t count = 1;
        for (int k = 0; k < d->rank; k++) {
            if (d->dims[k] < 0)
                return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, path, "dataset '%s' has a negative dimension",
                                        d->name);
            count *= (size_t)d->dims[k];
        }
        if (count > 0 && d->data == NULL)
            return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, path, "dataset '%s' has no data", d->name);
        for (int j = 0; j < i; j++)
            if (strcmp(sets[j].name, d->name) == 0)
                return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, path, "two datasets are named '%s'", d->name);
    }
    return CNNVIZ_OK;
}

static cnnviz_status write_one(hid_t file, const char *path, const cnnviz_dataset *d, cnnviz_error *err) {
    hsize_t dims[H5_MAX_RANK];
    for (int k = 0; k < d->rank; k++) dims[k] = (hsize_t)d->dims[k];
    hid_t space = d->rank == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(d->rank, dims, NULL);
    /* no modification times in the object headers: the same data gives the same bytes */
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (dcpl >= 0) H5Pset_obj_track_times(dcpl, 0);
    hid_t set = space < 0 || dcpl < 0 ? -1 : H5Dcreate2(file, d->name, H5T_IEEE_F32LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (dcpl >= 0) H5Pclose(dcpl);
    herr_t wr = set < 0 ? -1 : H5Dwrite(set, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, d->data);
    char why[200];
    if (wr < 0) hdf5_reason(why, "unknown HDF5 error");
    if (set >= 0 && H5Dclose(set) < 0 && wr >= 0) {
        wr = -1;
        hdf5_reason(why, "unknown HDF5 error");
    }
    if (space >= 0) H5Sclose(space);
    if (wr < 0)
        return cnnviz_error_set(err, CNNVIZ_ERR_IO, path, "cannot write dataset '%s' to %s: %s", d->name, path, why);
    return CNNVIZ_OK;
}

cnnviz_status cnnviz_h5_write_datasets(const char *path, const cnnviz_dataset *sets, int n, cnnviz_error *err) {
    hdf5_quiet();
    if (n < 0 || (n > 0 && sets == NULL))
        return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, path, "no datasets to write");
    cnnviz_status st = check_sets(path, sets, n, err);
    if (st != CNNVIZ_OK) return st;
    cnnviz_atomic_file af;
    st = cnnviz_atomic_begin(&af, path, err);
    if (st != CNNVIZ_OK) return st;
    hid_t fcpl = H5Pcreate(H5P_FILE_CREATE); /* the root group without times either */
    if (fcpl >= 0) H5Pset_obj_track_times(fcpl, 0);
    hid_t file = fcpl < 0 ? -1 : H5Fcreate(af.tmp_path, H5F_ACC_TRUNC, fcpl, H5P_DEFAULT);
    if (fcpl >= 0) H5Pclose(fcpl);
    if (file < 0) {
        char why[200];
        hdf5_reason(why, "cannot create the file");
        cnnviz_atomic_abort(&af);
        return cnnviz_error_set(err, CNNVIZ_ERR_IO, path, "cannot write %s: %s", path, why);
    }
    for (int i = 0; i < n && st == CNNVIZ_OK; i++) st = write_one(file, path, &sets[i], err);
    /* closing flushes: a full disk shows up here */
    if (H5Fclose(file) < 0 && st == CNNVIZ_OK) {
        char why[200];
        hdf5_reason(why, "cannot close the file");
        st = cnnviz_error_set(err, CNNVIZ_ERR_IO, path, "cannot write %s: %s", path, why);
    }
    if (st != CNNVIZ_OK) {
        cnnviz_atomic_abort(&af);
        return st;
    }
    return cnnviz_atomic_commit(&af, err);
}

cnnviz_status cnnviz_h5_read_dataset(const char *path, const char *name, float **data, int *rank, int dims[5],
                                     cnnviz_error *err) {
    hdf5_quiet();
    *data = NULL;
    *rank = 0;
    struct stat st;
    if (stat(path, &st) != 0)
        return cnnviz_error_set(err, CNNVIZ_ERR_IO, path, "cannot open %s: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode)) return cnnviz_error_set(err, CNNVIZ_ERR_IO, path, "cannot open %s: is a directory", path);
    if (H5Fis_hdf5(path) <= 0) { /* H5Fis_accessible is 1.12+; Debian 12 has 1.10 */
        H5Eclear2(H5E_DEFAULT);
        return cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path, "not an HDF5 file");
    }
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (file < 0) {
        char why[200];
        hdf5_reason(why, "cannot open the file");
        return cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path, "cannot open %s: %s", path, why);
    }
    cnnviz_status status = CNNVIZ_OK;
    hid_t set = -1, space = -1, type = -1;
    /* H5Lexists fails (rather than saying no) when a middle part of the path
     * is missing, and H5Oexists_by_name needs the link to exist: check both. */
    if (name == NULL || name[0] == '\0' || H5Lexists(file, name, H5P_DEFAULT) <= 0 ||
        H5Oexists_by_name(file, name, H5P_DEFAULT) <= 0) {
        H5Eclear2(H5E_DEFAULT);
        status = cnnviz_error_set(err, CNNVIZ_ERR_INVALID, path, "no dataset named '%s'", name ? name : "");
        goto done;
    }
    set = H5Dopen2(file, name, H5P_DEFAULT);
    if (set < 0) {
        H5Eclear2(H5E_DEFAULT);
        status = cnnviz_error_set(err, CNNVIZ_ERR_INVALID, path, "'%s' is not a dataset", name);
        goto done;
    }
    type = H5Dget_type(set);
    H5T_class_t cls = H5Tget_class(type);
    if (cls != H5T_FLOAT && cls != H5T_INTEGER) {
        status = cnnviz_error_set(err, CNNVIZ_ERR_UNSUPPORTED, path, "dataset '%s' does not hold numbers", name);
        goto done;
    }
    space = H5Dget_space(set);
    int r = H5Sget_simple_extent_ndims(space);
    if (r < 0 || r > H5_MAX_RANK) {
        status = cnnviz_error_set(err, CNNVIZ_ERR_UNSUPPORTED, path, "dataset '%s' has rank %d (at most %d)", name,
                                  r, H5_MAX_RANK);
        goto done;
    }
    hsize_t hd[H5_MAX_RANK];
    H5Sget_simple_extent_dims(space, hd, NULL);
    size_t count = 1;
    for (int k = 0; k < r; k++) {
        if (hd[k] > (hsize_t)1 << 31 || (count *= (size_t)hd[k]) > ((size_t)1 << 32)) {
            status = cnnviz_error_set(err, CNNVIZ_ERR_UNSUPPORTED, path, "dataset '%s' is too large", name);
            goto done;
        }
        dims[k] = (int)hd[k];
    }
    *data = malloc((count ? count : 1) * sizeof(float));
    if (*data == NULL) {
        status = cnnviz_error_set(err, CNNVIZ_ERR_NOMEM, path, "out of memory");
        goto done;
    }
    /* HDF5 converts any integer or float type to native float on the way */
    if (count > 0 && H5Dread(set, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, *data) < 0) {
        char why[200];
        hdf5_reason(why, "read failed");
        free(*data);
        *data = NULL;
        status = cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path, "cannot read dataset '%s': %s", name, why);
        goto done;
    }
    *rank = r;
done:
    if (space >= 0) H5Sclose(space);
    if (type >= 0) H5Tclose(type);
    if (set >= 0) H5Dclose(set);
    H5Fclose(file);
    return status;
}
