/* IDX data sets (MNIST, Fashion-MNIST): a big-endian header, then unsigned
 * bytes. Format: http://yann.lecun.com/exdb/mnist/ ("THE IDX FILE FORMAT").
 *
 * zlib's gz* functions read gzip and plain files alike, so one path serves
 * both. The header is checked before anything is allocated, and the data
 * buffer grows with what is really in the file rather than with what the
 * header claims, so a damaged header cannot make us allocate gigabytes. The
 * data length must match the header exactly: a short or long file means the
 * header and the data disagree, and guessing which one is right would hide
 * a broken download. */
#include "cnnviz/io.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#define IDX_MAGIC_LABELS 0x00000801u
#define IDX_MAGIC_IMAGES 0x00000803u
#define IDX_MAX_COUNT 10000000
#define IDX_MAX_SIDE 4096
/* Largest pixel payload we accept: 10M 28x28 images fit; absurd products of
 * the per-field limits do not. */
#define IDX_MAX_BYTES ((size_t)1 << 33)

typedef struct {
    gzFile gz;
    const char *path;
    int failed;       /* gzread reported an error (not plain end of file) */
    char why[160];    /* zlib's words for that error */
} idx_reader;

static cnnviz_status idx_open(idx_reader *r, const char *path, cnnviz_error *err) {
    memset(r, 0, sizeof *r);
    r->path = path;
    struct stat st;
    if (stat(path, &st) != 0)
        return cnnviz_error_set(err, CNNVIZ_ERR_IO, path, "cannot open %s: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode))
        return cnnviz_error_set(err, CNNVIZ_ERR_IO, path, "cannot open %s: is a directory", path);
    r->gz = gzopen(path, "rb");
    if (r->gz == NULL) {
        int e = errno;
        return cnnviz_error_set(err, e == 0 ? CNNVIZ_ERR_NOMEM : CNNVIZ_ERR_IO, path, "cannot open %s: %s",
                                path, e == 0 ? "out of memory" : strerror(e));
    }
    gzbuffer(r->gz, 1 << 17);
    return CNNVIZ_OK;
}

/* Note zlib's error, if any, in r->why. zlib puts "PATH: " before its own
 * words; the path is already in the cnnviz error, so that part goes. */
static int idx_check_error(idx_reader *r) {
    int code;
    const char *msg = gzerror(r->gz, &code);
    if (code == Z_OK) return 0;
    r->failed = 1;
    if (code == Z_ERRNO) {
        snprintf(r->why, sizeof r->why, "%s", strerror(errno));
        return 1;
    }
    size_t plen = strlen(r->path);
    if (msg && strncmp(msg, r->path, plen) == 0 && strncmp(msg + plen, ": ", 2) == 0) msg += plen + 2;
    snprintf(r->why, sizeof r->why, "gzip: %s", msg && *msg ? msg : "corrupt data");
    return 1;
}

/* Read up to n bytes; returns how many arrived. Stops early at end of file
 * or on a zlib error (then r->failed is set and r->why says what). A gzip
 * stream that stops early is not an error to gzread, which hands over what
 * it got; gzerror then says Z_BUF_ERROR, "unexpected end of file". */
static size_t idx_read(idx_reader *r, void *buf, size_t n) {
    size_t got = 0;
    while (got < n && !r->failed) {
        size_t want = n - got;
        if (want > (1u << 30)) want = 1u << 30;
        int k = gzread(r->gz, (char *)buf + got, (unsigned)want);
        if (k <= 0) {
            idx_check_error(r);
            break;
        }
        got += (size_t)k;
    }
    return got;
}

/* Count (and discard) whatever follows the payload, to report an over-long file. */
static size_t idx_count_rest(idx_reader *r) {
    char buf[8192];
    size_t total = 0, k;
    while ((k = idx_read(r, buf, sizeof buf)) > 0) total += k;
    return total;
}

static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Read and check the magic and the dimension fields. */
static cnnviz_status idx_header(idx_reader *r, uint32_t want_magic, uint32_t *dims, int ndims,
                                cnnviz_error *err) {
    const char *what = want_magic == IDX_MAGIC_IMAGES ? "image" : "label";
    unsigned char h[16];
    size_t need = 4 + 4 * (size_t)ndims;
    size_t got = idx_read(r, h, need);
    if (r->failed)
        return cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, r->path, "cannot read the IDX header (%s)", r->why);
    if (got >= 4 && be32(h) != want_magic) {
        uint32_t m = be32(h);
        if (m == IDX_MAGIC_IMAGES || m == IDX_MAGIC_LABELS)
            return cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, r->path,
                                    "not an IDX %s file (magic 0x%08x, an IDX %s file)", what, m,
                                    m == IDX_MAGIC_IMAGES ? "image" : "label");
        return cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, r->path, "not an IDX %s file (magic 0x%08x)", what, m);
    }
    if (got < need)
        return cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, r->path,
                                "truncated: file has %zu bytes, an IDX %s header needs %zu", got, what, need);
    for (int i = 0; i < ndims; i++) dims[i] = be32(h + 4 + 4 * i);
    if (dims[0] == 0 || dims[0] > IDX_MAX_COUNT)
        return cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, r->path,
                                "bad IDX header: %u %ss (expected 1 to %d)", dims[0], what, IDX_MAX_COUNT);
    if (ndims == 3 && (dims[1] == 0 || dims[2] == 0 || dims[1] > IDX_MAX_SIDE || dims[2] > IDX_MAX_SIDE))
        return cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, r->path,
                                "bad IDX header: images of %ux%u (each side must be 1 to %d)", dims[1], dims[2],
                                IDX_MAX_SIDE);
    return CNNVIZ_OK;
}

/* Read exactly `expect` bytes of payload into a buffer that grows with the
 * data actually present. `describe` is the header's claim and `noun` what the
 * bytes are ("pixels", "labels"), for messages. */
static cnnviz_status idx_payload(idx_reader *r, size_t expect, const char *describe, const char *noun,
                                 uint8_t **out, cnnviz_error *err) {
    *out = NULL;
    size_t cap = expect < ((size_t)1 << 24) ? expect : ((size_t)1 << 24);
    uint8_t *buf = malloc(cap);
    if (buf == NULL) return cnnviz_error_set(err, CNNVIZ_ERR_NOMEM, r->path, "out of memory");
    size_t have = 0;
    for (;;) {
        have += idx_read(r, buf + have, cap - have);
        if (have < cap || have == expect) break;
        size_t ncap = cap * 2 < expect ? cap * 2 : expect;
        uint8_t *nb = realloc(buf, ncap);
        if (nb == NULL) {
            free(buf);
            return cnnviz_error_set(err, CNNVIZ_ERR_NOMEM, r->path, "out of memory");
        }
        buf = nb;
        cap = ncap;
    }
    if (have < expect) {
        free(buf);
        if (r->failed)
            return cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, r->path,
                                    "truncated: header says %s, file has %zu bytes of %s (%s)", describe, have,
                                    noun, r->why);
        return cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, r->path,
                                "truncated: header says %s, file has %zu bytes of %s", describe, have, noun);
    }
    size_t extra = idx_count_rest(r);
    if (r->failed) {
        free(buf);
        return cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, r->path, "corrupt data after the %s (%s)", noun,
                                r->why);
    }
    if (extra > 0) {
        free(buf);
        return cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, r->path,
                                "header says %s, but %zu more bytes follow them", describe, extra);
    }
    *out = buf;
    return CNNVIZ_OK;
}

cnnviz_status cnnviz_idx_load_images(const char *path, cnnviz_idx_images *out, cnnviz_error *err) {
    memset(out, 0, sizeof *out);
    idx_reader r;
    cnnviz_status st = idx_open(&r, path, err);
    if (st != CNNVIZ_OK) return st;
    uint32_t d[3];
    st = idx_header(&r, IDX_MAGIC_IMAGES, d, 3, err);
    if (st == CNNVIZ_OK) {
        size_t bytes = (size_t)d[0] * d[1] * d[2];
        char describe[96];
        snprintf(describe, sizeof describe, "%u images of %ux%u", d[0], d[1], d[2]);
        if (bytes > IDX_MAX_BYTES)
            st = cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path, "bad IDX header: %s is more than %zu bytes",
                                  describe, IDX_MAX_BYTES);
        else
            st = idx_payload(&r, bytes, describe, "pixels", &out->pixels, err);
        if (st == CNNVIZ_OK) {
            out->count = (int)d[0];
            out->rows = (int)d[1];
            out->cols = (int)d[2];
        }
    }
    gzclose(r.gz);
    return st;
}

cnnviz_status cnnviz_idx_load_labels(const char *path, uint8_t **labels, int *count, cnnviz_error *err) {
    *labels = NULL;
    *count = 0;
    idx_reader r;
    cnnviz_status st = idx_open(&r, path, err);
    if (st != CNNVIZ_OK) return st;
    uint32_t d[1];
    st = idx_header(&r, IDX_MAGIC_LABELS, d, 1, err);
    if (st == CNNVIZ_OK) {
        char describe[64];
        snprintf(describe, sizeof describe, "%u labels", d[0]);
        st = idx_payload(&r, d[0], describe, "labels", labels, err);
        if (st == CNNVIZ_OK) *count = (int)d[0];
    }
    gzclose(r.gz);
    return st;
}

void cnnviz_idx_images_free(cnnviz_idx_images *im) {
    if (im == NULL) return;
    free(im->pixels);
    memset(im, 0, sizeof *im);
}
