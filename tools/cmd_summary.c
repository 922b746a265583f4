/* cnnviz summary: the layers of a model, like Keras' model.summary(). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const cli_spec spec = {
    .name = "summary",
    .usage = "[MODEL] [options]",
    .summary = "Print the layers of a model with index, Keras name, class, output shape and weights,\n"
               "like Keras' model.summary(). The index is what --layer takes.",
    .details = "--json prints {\"layers\":[{\"index\",\"name\",\"type\",\"output_shape\",\"params\"}],\"params\":N};\n"
               "output_shape is the shape of one sample (no batch axis).",
    .options = NULL,
    .common = CLI_COMMON_JSON | CLI_COMMON_QUIET | CLI_COMMON_MAX_PARAMS,
};

/* 96844 -> "96,844" as Keras prints it */
static void with_commas(size_t v, char *buf, size_t n) {
    char tmp[32];
    snprintf(tmp, sizeof tmp, "%zu", v);
    size_t len = strlen(tmp), o = 0;
    for (size_t i = 0; i < len && o + 2 < n; i++) {
        if (i && (len - i) % 3 == 0) buf[o++] = ',';
        buf[o++] = tmp[i];
    }
    buf[o] = 0;
}

int cmd_summary(int argc, char **argv) {
    cli_common common;
    int npos;
    int rc = cli_parse(&spec, argc, argv, &common, NULL, NULL, &npos);
    if (rc) return rc < 0 ? CLI_OK : rc;
    if (npos > 1) return cli_usage_error("summary", "expected at most one MODEL, got %d arguments", npos);
    const char *path = npos ? argv[0] : cli_default_model();
    cnnviz_model *m = cli_load_model(path, &common);
    if (!m) return CLI_RUNTIME;

    int n = cnnviz_model_num_layers(m);
    size_t total = 0, trainable = 0;
    for (int i = 0; i < n; i++) {
        cnnviz_layer_info li;
        cnnviz_model_layer_info(m, i, &li);
        for (int k = 0; k < li.nparam; k++) {
            total += li.param[k].size;
            if (li.param[k].trainable) trainable += li.param[k].size;
        }
    }
    if (common.json) {
        cJSON *root = cJSON_CreateObject(), *layers = cJSON_AddArrayToObject(root, "layers");
        for (int i = 0; i < n; i++) {
            cnnviz_layer_info li;
            cnnviz_model_layer_info(m, i, &li);
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "index", i);
            cJSON_AddStringToObject(o, "name", li.name);
            cJSON_AddStringToObject(o, "type", li.class_name);
            cJSON *shape = cJSON_AddArrayToObject(o, "output_shape");
            for (int d = 0; d < li.output_shape.rank; d++)
                cJSON_AddItemToArray(shape, cJSON_CreateNumber(li.output_shape.dim[d]));
            cJSON_AddNumberToObject(o, "params", (double)li.params);
            cJSON_AddItemToArray(layers, o);
        }
        cJSON_AddNumberToObject(root, "params", (double)total);
        char *s = cJSON_Print(root);
        puts(s);
        free(s);
        cJSON_Delete(root);
    } else {
        char buf[64], shape[64], num[32];
        cnnviz_shape in = cnnviz_model_input_shape(m);
        cnnviz_shape_format(&in, shape, sizeof shape);
        printf("Model: \"%s\"  input %s", path, shape);
        const char *kv = cnnviz_model_meta(m, "keras_version");
        if (kv) printf("  keras_version %s", kv);
        printf("\n");
        const char *rule = "_________________________________________________________________________";
        printf("%s\n %-5s %-32s %-22s %-9s\n", rule, "#", "Layer (type)", "Output Shape", "Param #");
        printf("=========================================================================\n");
        for (int i = 0; i < n; i++) {
            cnnviz_layer_info li;
            cnnviz_model_layer_info(m, i, &li);
            snprintf(buf, sizeof buf, "%s (%s)", li.name, li.class_name);
            cnnviz_shape_format(&li.output_shape, shape, sizeof shape);
            char full[80];
            snprintf(full, sizeof full, "(None, %s", shape + 1);
            if (li.output_shape.rank == 0) snprintf(full, sizeof full, "(None,)");
            with_commas(li.params, num, sizeof num);
            printf(" %-5d %-32s %-22s %-9s\n", i, buf, full, num);
        }
        printf("=========================================================================\n");
        with_commas(total, num, sizeof num);
        printf("Total params: %s\n", num);
        with_commas(trainable, num, sizeof num);
        printf("Trainable params: %s\n", num);
        with_commas(total - trainable, num, sizeof num);
        printf("Non-trainable params: %s\n", num);
    }
    cnnviz_model_free(m);
    return CLI_OK;
}
