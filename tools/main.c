/* cnnviz: dispatch to the subcommand, git-style. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

void cli_set_command_line(int argc, char **argv);

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
} commands[] = {
#define X(name, summary) {#name, cmd_##name, summary},
    CLI_COMMANDS(X)
#undef X
};

static void usage(FILE *f) {
    fprintf(f, "usage: cnnviz <command> [options] [args]\n\n"
               "Load or train the classic MNIST CNN and show what it has learned.\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nRun 'cnnviz <command> --help' for a command's options. The model argument\n"
               "defaults to the bundled sample model (samples/model.h5, or $CNNVIZ_MODEL).\n");
}

int main(int argc, char **argv) {
    cli_set_command_line(argc, argv);
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return cli_finish_stdout(CLI_OK);
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("cnnviz %s\n", CNNVIZ_VERSION);
        return cli_finish_stdout(CLI_OK);
    }
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (strcmp(argv[1], commands[i].name) == 0) return cli_finish_stdout(commands[i].fn(argc - 1, argv + 1));
    fprintf(stderr, "cnnviz: '%s' is not a cnnviz command. See 'cnnviz --help'.\n", argv[1]);
    return CLI_USAGE;
}
