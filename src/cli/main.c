/* genrec: the command-line program. Each subcommand is a thin shell over
 * libgenrec and lives in its own cmd_*.c file. */
#include <stdio.h>
#include <string.h>

#include "commands.h"

static const struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
} commands[] = {
    {"info", cmd_info, "load a dataset, print a summary, optionally save a binary cache"},
    {"synth", cmd_synth, "generate the synthetic world (items, users, interactions)"},
    {"eval", cmd_eval, "train and evaluate models under a protocol (loo, ts, c20)"},
    {"train", cmd_train, "train a generative recommender (gen, gen-sid) on a dataset, save one GGUF"},
    {"recommend", cmd_recommend, "recommend items for a user or a history with a saved model"},
    {"demo", cmd_demo, "run the whole story on the embedded synthetic world"},
    {"tokenize", cmd_tokenize, "print the token ids of stdin text (GGUF, tokenizer.json/.bin, GPT-2 files)"},
    {"train-lm", cmd_train_lm, "train or fine-tune a GPT-2/Llama language model on a text file, save one GGUF"},
    {"generate", cmd_generate, "generate text from a language model (llama2.c run-style output)"},
};

static void usage(FILE *f)
{
    fprintf(f, "genrec: LLM-based generative recommendation in C\n\nusage: genrec COMMAND [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\n'genrec COMMAND --help' documents every flag of a command.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "genrec: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
