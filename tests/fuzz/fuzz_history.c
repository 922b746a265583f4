/* libFuzzer harness: the training history JSON (model meta cnnviz_history)
 * that cnnviz plot history draws. Parsing and drawing are one function,
 * cnnviz_render_history, so each input is drawn: as SVG (no PNG encoding)
 * into a private folder under /dev/shm where it can (memory, not disk),
 * the same file replaced each time. */
#include <string.h>

#include "cnnviz/render.h"
#include "fuzz_util.h"

static char folder[256], figure[300];

static void remove_folder(void) { rmdir(folder); }

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    char dir[] = "/dev/shm/cnnviz-fuzz-XXXXXX", alt[] = "/tmp/cnnviz-fuzz-XXXXXX";
    const char *d = mkdtemp(dir);
    if (!d) d = mkdtemp(alt);
    if (!d) {
        perror("mkdtemp");
        abort();
    }
    snprintf(folder, sizeof folder, "%s", d);
    snprintf(figure, sizeof figure, "%s/history.svg", d);
    atexit(remove_folder);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *json = fuzz_cstring(data, size);
    cnnviz_error err;
    cnnviz_render_history(figure, json, NULL, &err);
    unlink(figure);
    free(json);
    return 0;
}
