/* Shared by the libFuzzer harnesses: a reader that takes only a path gets
 * the input through a memfd, opened again by name as /proc/self/fd/N, so the
 * library API stays as it is and nothing touches the disk; libhdf5 cannot
 * open that name (H5Fopen resolves the link to "/memfd:... (deleted)"), so
 * the model harness writes a file on /dev/shm instead. */
#pragma once
/* built with _GNU_SOURCE (memfd_create; tests/fuzz/CMakeLists.txt) */
#include <stdint.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* One memfd per process, emptied and refilled for each input; the path
 * names it. Aborts when the kernel cannot give one: no harness can run. */
static inline const char *fuzz_memfd_path(const uint8_t *data, size_t size) {
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("cnnviz-fuzz", 0);
        if (fd < 0) {
            perror("memfd_create");
            abort();
        }
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0) abort();
    size_t done = 0;
    while (done < size) {
        ssize_t n = pwrite(fd, data + done, size - done, (off_t)done);
        if (n <= 0) abort();
        done += (size_t)n;
    }
    return path;
}

/* The input as a NUL-terminated string (for the text readers); free it. */
static inline char *fuzz_cstring(const uint8_t *data, size_t size) {
    char *s = malloc(size + 1);
    if (!s) abort();
    for (size_t i = 0; i < size; i++) s[i] = (char)data[i];
    s[size] = '\0';
    return s;
}

/* A private folder, made once and removed at exit, in $CNNVIZ_FUZZ_TMPDIR
 * (scripts/fuzz.sh gives one on /dev/shm and removes it after the run, as
 * a crashed or timed-out process cannot), else /dev/shm (memory), else
 * /tmp; the path of `name` in it. One name per process. */
static char fuzz_tmp_dir[4096], fuzz_tmp_file[4200];

static inline void fuzz_tmp_remove(void) {
    unlink(fuzz_tmp_file);
    rmdir(fuzz_tmp_dir);
}

static inline const char *fuzz_tmp_path(const char *name) {
    if (fuzz_tmp_dir[0]) return fuzz_tmp_file;
    const char *bases[] = {getenv("CNNVIZ_FUZZ_TMPDIR"), "/dev/shm", "/tmp"};
    for (size_t i = 0; i < sizeof bases / sizeof *bases && !fuzz_tmp_dir[0]; i++) {
        if (!bases[i] || !*bases[i]) continue;
        snprintf(fuzz_tmp_dir, sizeof fuzz_tmp_dir, "%s/cnnviz-fuzz-XXXXXX", bases[i]);
        if (!mkdtemp(fuzz_tmp_dir)) fuzz_tmp_dir[0] = '\0';
    }
    if (!fuzz_tmp_dir[0]) {
        perror("mkdtemp");
        abort();
    }
    snprintf(fuzz_tmp_file, sizeof fuzz_tmp_file, "%s/%s", fuzz_tmp_dir, name);
    atexit(fuzz_tmp_remove);
    return fuzz_tmp_file;
}

/* The input as the file fuzz_tmp_path(name), replaced each time. */
static inline const char *fuzz_tmpfile_path(const uint8_t *data, size_t size, const char *name) {
    const char *path = fuzz_tmp_path(name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) abort();
    size_t done = 0;
    while (done < size) {
        ssize_t n = write(fd, data + done, size - done);
        if (n <= 0) abort();
        done += (size_t)n;
    }
    close(fd);
    return path;
}
