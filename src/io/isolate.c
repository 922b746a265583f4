/* Loading an untrusted model file in a child process (issue: a model file is
 * untrusted input). Until the child is written, this is the in-process load. */
#include "cnnviz/model.h"

cnnviz_status cnnviz_model_load(const char *path, cnnviz_model **out, cnnviz_error *err) {
    return cnnviz_model_load_in_process(path, out, err);
}
