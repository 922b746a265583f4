#include "cnnviz/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

cnnviz_status cnnviz_error_set(cnnviz_error *err, cnnviz_status code, const char *file,
                               const char *fmt, ...) {
    if (err == NULL) return code;
    err->code = code;
    snprintf(err->file, sizeof err->file, "%s", file ? file : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return code;
}

void cnnviz_error_clear(cnnviz_error *err) {
    if (err) memset(err, 0, sizeof *err);
}

const char *cnnviz_status_string(cnnviz_status code) {
    switch (code) {
    case CNNVIZ_OK: return "ok";
    case CNNVIZ_ERR_IO: return "i/o error";
    case CNNVIZ_ERR_FORMAT: return "bad format";
    case CNNVIZ_ERR_UNSUPPORTED: return "unsupported";
    case CNNVIZ_ERR_INVALID: return "invalid argument";
    case CNNVIZ_ERR_NOMEM: return "out of memory";
    case CNNVIZ_ERR_NUMERIC: return "not a number";
    }
    return "unknown error";
}
