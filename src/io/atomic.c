/* Atomic output files: write to a temporary name in the target's own folder,
 * then rename over the target. rename(2) within one file system replaces the
 * target in one step, so a reader (or a crash) sees the old file or the new
 * one, never half of one; that is why the temporary file lives beside the
 * target and not in $TMPDIR, which may be another file system. */
#include "cnnviz/io.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

cnnviz_status cnnviz_atomic_begin(cnnviz_atomic_file *af, const char *path, cnnviz_error *err) {
    memset(af, 0, sizeof *af);
    if (path == NULL || *path == '\0')
        return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "", "no output file name given");
    size_t n = strlen(path);
    if (n >= sizeof af->final_path)
        return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, path, "output file name is too long");
    if (path[n - 1] == '/')
        return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, path, "cannot write %s: is a directory", path);
    memcpy(af->final_path, path, n + 1);
    snprintf(af->tmp_path, sizeof af->tmp_path, "%s.tmp-XXXXXX", path);
    int fd = mkstemp(af->tmp_path);
    if (fd < 0) {
        int e = errno;
        af->tmp_path[0] = '\0';
        return cnnviz_error_set(err, CNNVIZ_ERR_IO, path, "cannot write %s: %s", path, strerror(e));
    }
    /* mkstemp creates 0600; outputs are ordinary files, so honour the umask
     * like fopen would. */
    mode_t mask = umask(0);
    umask(mask);
    if (fchmod(fd, 0666 & ~mask) != 0) { /* not fatal: the file is still ours */ }
    close(fd);
    return CNNVIZ_OK;
}

cnnviz_status cnnviz_atomic_commit(cnnviz_atomic_file *af, cnnviz_error *err) {
    if (af->tmp_path[0] == '\0')
        return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, af->final_path, "no temporary file to commit");
    struct stat st;
    if (stat(af->final_path, &st) == 0 && S_ISDIR(st.st_mode)) {
        cnnviz_atomic_abort(af);
        return cnnviz_error_set(err, CNNVIZ_ERR_IO, af->final_path, "cannot write %s: is a directory",
                                af->final_path);
    }
    if (rename(af->tmp_path, af->final_path) != 0) {
        int e = errno;
        cnnviz_atomic_abort(af);
        return cnnviz_error_set(err, CNNVIZ_ERR_IO, af->final_path, "cannot write %s: %s", af->final_path,
                                strerror(e));
    }
    af->tmp_path[0] = '\0';
    return CNNVIZ_OK;
}

void cnnviz_atomic_abort(cnnviz_atomic_file *af) {
    if (af->tmp_path[0] != '\0') unlink(af->tmp_path);
    af->tmp_path[0] = '\0';
}
