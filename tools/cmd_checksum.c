/* cnnviz checksum: SHA-256 of an image's decoded pixels, so a golden
 * checksum survives recompression and metadata changes. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "cnnviz/io.h"
#include "cnnviz/render.h"

static const cli_option options[] = {{0}};

static const cli_spec spec = {
    .name = "checksum",
    .usage = "FILE... [--json]",
    .summary = "Print the SHA-256 of each image's decoded pixels with its width and height:\n"
               "  HASH  WIDTHxHEIGHT  FILE",
    .details = "The hash is taken over the width and the height, each as a 4-byte big-endian unsigned\n"
               "integer, followed by the pixels as 8-bit RGBA (not premultiplied), row by row from the\n"
               "top, 4 bytes per pixel. Grey, palette, 16-bit and alpha-less PNGs are expanded to RGBA8\n"
               "first (16-bit samples scaled with rounding, a tRNS colour made transparent, missing alpha\n"
               "255, no gamma correction), so two files with the same pixels have the same checksum\n"
               "whatever their compression, filters or text chunks.\n"
               "JPEG files are hashed as decoded by this build's libjpeg.\n"
               "--json prints [{\"file\",\"sha256\",\"width\",\"height\"}]. A file that cannot be read is\n"
               "reported on stderr and the exit status is 1.",
    .options = options,
    .common = CLI_COMMON_JSON | CLI_COMMON_QUIET,
};

int cmd_checksum(int argc, char **argv) {
    cli_common common;
    int npos;
    int rc = cli_parse(&spec, argc, argv, &common, NULL, NULL, &npos);
    if (rc) return rc < 0 ? CLI_OK : rc;
    if (npos < 1) return cli_usage_error(spec.name, "no FILE given");
    cJSON *root = common.json ? cJSON_CreateArray() : NULL;
    for (int i = 0; i < npos; i++) {
        cnnviz_error err;
        cnnviz_error_clear(&err);
        int w, h;
        uint8_t *rgba = NULL;
        if (cnnviz_image_read_rgba8(argv[i], &w, &h, &rgba, &err) != CNNVIZ_OK) {
            if (!err.file[0]) snprintf(err.file, sizeof err.file, "%s", argv[i]);
            rc = cli_report(&err);
            continue;
        }
        char hex[65];
        cnnviz_pixels_sha256(rgba, w, h, hex);
        free(rgba);
        if (root) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "file", argv[i]);
            cJSON_AddStringToObject(o, "sha256", hex);
            cJSON_AddNumberToObject(o, "width", w);
            cJSON_AddNumberToObject(o, "height", h);
            cJSON_AddItemToArray(root, o);
        } else {
            printf("%s  %dx%d  %s\n", hex, w, h, argv[i]);
        }
    }
    if (root) {
        char *s = cJSON_PrintUnformatted(root);
        puts(s);
        free(s);
        cJSON_Delete(root);
    }
    return rc;
}
