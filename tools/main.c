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
               "defaults to $CNNVIZ_MODEL, else the bundled sample model.\n");
}

/* cnnviz.1; the page of each command comes from its own option table. */
static void print_man_page(void) {
    printf(".TH CNNVIZ 1 \"\" \"cnnviz %s\" \"cnnviz manual\"\n", CNNVIZ_VERSION);
    fputs(".SH NAME\ncnnviz \\- load or train the classic MNIST CNN and show what it has learned\n"
          ".SH SYNOPSIS\n\\fBcnnviz\\fR \\fIcommand\\fR [\\fIoptions\\fR] [\\fIargs\\fR]\n.br\n"
          "\\fBcnnviz \\-\\-help\\fR | \\fB\\-\\-version\\fR\n"
          ".SH DESCRIPTION\nEach command has its own page, \\fBcnnviz\\-\\fIcommand\\fR(1), and its own\n"
          "\\fB\\-\\-help\\fR. Errors are one line on standard error: cnnviz: FILE: problem.\n"
          ".SH COMMANDS\n",
          stdout);
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++) {
        printf(".TP\n.BR cnnviz\\-%s (1)\n", commands[i].name);
        cli_man_text(commands[i].summary);
    }
    fputs(".SH ENVIRONMENT\n.TP\n.B CNNVIZ_MODEL\n"
          "the model a command reads when none is given; when unset, the bundled model\n"
          ".TP\n.B CNNVIZ_DATA\n"
          "a folder holding the MNIST IDX files (train\\-images\\-idx3\\-ubyte[.gz] and the like)\n"
          ".TP\n.B CNNVIZ_SHARED\na folder whose data/mnist holds them\n"
          ".SH FILES\n.TP\n.I PREFIX/share/cnnviz/model.h5\n"
          "the bundled model, found beside PREFIX/bin/cnnviz wherever the tree is installed\n"
          ".TP\n.I PREFIX/share/cnnviz/digits/\nsample digits to try it on\n"
          ".SH EXIT STATUS\n0 on success, 1 on a runtime error (a bad file, an unsupported layer),\n"
          "2 on a usage error.\n",
          stdout);
}

/* Hidden arguments for the build (cmake/gen-docs.sh): "--help-man [CMD]" prints
 * a man page, "--help-complete [CMD]" the commands or a command's options as
 * completion data, each from the tables that print --help. */
static int print_generated_help(const char *what, const char *cmd) {
    int man = strcmp(what, "--help-man") == 0;
    if (!cmd) {
        if (man) print_man_page();
        else
            for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
                printf("%s\t%s\n", commands[i].name, commands[i].summary);
        return cli_finish_stdout(CLI_OK);
    }
    cli_set_help_format(man ? CLI_HELP_MAN : CLI_HELP_COMPLETE);
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (strcmp(cmd, commands[i].name) == 0) {
            char *args[] = {(char *)cmd, (char *)"--help", NULL};
            return cli_finish_stdout(commands[i].fn(2, args));
        }
    fprintf(stderr, "cnnviz: '%s' is not a cnnviz command. See 'cnnviz --help'.\n", cmd);
    return CLI_USAGE;
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
    if (strcmp(argv[1], "--help-man") == 0 || strcmp(argv[1], "--help-complete") == 0)
        return print_generated_help(argv[1], argc > 2 ? argv[2] : NULL);
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (strcmp(argv[1], commands[i].name) == 0) return cli_finish_stdout(commands[i].fn(argc - 1, argv + 1));
    fprintf(stderr, "cnnviz: '%s' is not a cnnviz command. See 'cnnviz --help'.\n", argv[1]);
    return CLI_USAGE;
}
