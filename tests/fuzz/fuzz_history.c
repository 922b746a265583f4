/* libFuzzer harness: the training history JSON (model meta cnnviz_history)
 * that cnnviz plot history draws. Parsing and drawing are one function,
 * cnnviz_render_history, so each input is drawn: as SVG (no PNG encoding)
 * into a private folder (fuzz_tmp_path: memory where it can), the same
 * file replaced each time. */
#include "cnnviz/render.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *json = fuzz_cstring(data, size);
    const char *figure = fuzz_tmp_path("history.svg");
    cnnviz_error err;
    cnnviz_render_history(figure, json, NULL, &err);
    unlink(figure);
    free(json);
    return 0;
}
