/* For make-corpus.sh: print one string attribute of an HDF5 file's root
 * (model_config, cnnviz_history) so that the JSON harnesses get the real
 * configs and histories as seeds without h5py. Exit 1 when it is absent. */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>

static int print_attr(hid_t file, const char *name) {
    int rc = 1;
    hid_t a = H5Aopen_by_name(file, "/", name, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0) return 1;
    hid_t t = H5Aget_type(a), space = H5Aget_space(a);
    if (H5Tget_class(t) == H5T_STRING && H5Sget_simple_extent_npoints(space) == 1) {
        if (H5Tis_variable_str(t) > 0) {
            char *s = NULL;
            if (H5Aread(a, t, &s) >= 0 && s) rc = fputs(s, stdout) < 0;
            if (s) H5free_memory(s);
        } else {
            size_t n = H5Tget_size(t);
            char *s = calloc(n + 1, 1);
            if (s && H5Aread(a, t, s) >= 0) rc = fputs(s, stdout) < 0;
            free(s);
        }
    }
    H5Sclose(space);
    H5Tclose(t);
    H5Aclose(a);
    return rc;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: seed_attr FILE.h5 ATTRIBUTE\n");
        return 2;
    }
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(argv[1], H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return 1;
    int rc = print_attr(f, argv[2]);
    H5Fclose(f);
    return rc;
}
