/* Shared by the libFuzzer harnesses: a reader that takes only a path gets
 * the input through a memfd, opened again by name as /proc/self/fd/N, so the
 * library API stays as it is and nothing touches the disk. */
#pragma once
/* built with _GNU_SOURCE (memfd_create; tests/fuzz/CMakeLists.txt) */
#include <stdint.h>
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
