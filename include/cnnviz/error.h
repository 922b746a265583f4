/* cnnviz — status codes and the caller-owned error record.
 *
 * Every library call that can fail returns a cnnviz_status and, when given a
 * non-NULL cnnviz_error, fills it with the file and a one-line problem. The
 * library never prints and never exits; the command line turns the record
 * into "cnnviz: FILE: problem". */
#pragma once
#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    CNNVIZ_OK = 0,
    CNNVIZ_ERR_IO,          /* cannot open, read or write a file */
    CNNVIZ_ERR_FORMAT,      /* the file is not what it claims, or is damaged */
    CNNVIZ_ERR_UNSUPPORTED, /* valid input we do not handle (a layer class, a colour type) */
    CNNVIZ_ERR_INVALID,     /* a bad argument: out-of-range index, mismatched shape */
    CNNVIZ_ERR_NOMEM,       /* an allocation failed */
    CNNVIZ_ERR_NUMERIC,     /* NaN or Inf where a number was needed */
} cnnviz_status;

typedef struct {
    cnnviz_status code;
    char file[512]; /* the file the problem is about; may be empty */
    char msg[1024]; /* lower case, no full stop: "layer 'up' (UpSampling2D) is not supported" */
} cnnviz_error;

/* Fill err (when non-NULL) and return code, so callers can write
 * `return cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path, "...");`. */
cnnviz_status cnnviz_error_set(cnnviz_error *err, cnnviz_status code, const char *file,
                               const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void cnnviz_error_clear(cnnviz_error *err);
const char *cnnviz_status_string(cnnviz_status code);

#ifdef __cplusplus
}
#endif
