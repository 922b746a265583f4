/* SHA-256 of decoded pixels (the golden checksums) and of whole files (the
 * model hash in a figure's provenance), through OpenSSL's EVP interface. */
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "render-impl.h"

static void to_hex(const unsigned char *md, char hex[65]) {
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[64] = 0;
}

/* The size goes in first so that two images with the same bytes but a
 * different shape (4x2 and 2x4) never share a checksum. */
void cnnviz_pixels_sha256(const uint8_t *rgba, int w, int h, char hex[65]) {
    unsigned char head[8], md[32];
    uint32_t uw = (uint32_t)w, uh = (uint32_t)h;
    for (int i = 0; i < 4; i++) {
        head[i] = (unsigned char)(uw >> (24 - 8 * i));
        head[4 + i] = (unsigned char)(uh >> (24 - 8 * i));
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int len = 0;
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    EVP_DigestUpdate(ctx, head, sizeof head);
    if (w > 0 && h > 0) EVP_DigestUpdate(ctx, rgba, (size_t)w * (size_t)h * 4);
    EVP_DigestFinal_ex(ctx, md, &len);
    EVP_MD_CTX_free(ctx);
    to_hex(md, hex);
}

cnnviz_status cnnviz_file_sha256(const char *path, char hex[65], cnnviz_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return cnnviz_error_set(err, CNNVIZ_ERR_IO, path, "cannot open: %s", strerror(errno));
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    unsigned char buf[65536], md[32];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) EVP_DigestUpdate(ctx, buf, n);
    int bad = ferror(f);
    fclose(f);
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx, md, &len);
    EVP_MD_CTX_free(ctx);
    if (bad) return cnnviz_error_set(err, CNNVIZ_ERR_IO, path, "read error");
    to_hex(md, hex);
    return CNNVIZ_OK;
}
