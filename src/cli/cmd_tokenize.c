/* genrec tokenize: print the token ids of UTF-8 text read from stdin. */
#include "cli.h"
#include "commands.h"
#include "genrec/common.h"
#include "genrec/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>

int cmd_tokenize(int argc, char **argv)
{
    const char *model = NULL;
    int no_bos = 0;
    const cli_opt opts[] = {
        {"model", CLI_STR, "FILE", "tokenizer: a GGUF (vocab-only is fine), tokenizer.bin, tokenizer.json, "
                                   "or a directory with encoder.json + vocab.bpe (required)", &model},
        {"no-bos", CLI_FLAG, NULL, "add no BOS/EOS (by default they are added when the vocabulary asks for them)", &no_bos},
        {NULL, CLI_FLAG, NULL, NULL, NULL},
    };
    int rc = cli_parse(argc, argv, "tokenize",
                       "Read UTF-8 text on stdin and print its token ids, space-separated, on one line.\n"
                       "Special tokens written in the text are not parsed.", opts, NULL, NULL);
    if (rc) return rc > 0 ? 0 : 2;
    if (!model) { fprintf(stderr, "genrec tokenize: --model FILE is required (see genrec tokenize --help)\n"); return 2; }
    gr_tokenizer *t = gr_tokenizer_load(model);
    if (!t) { fprintf(stderr, "genrec tokenize: %s\n", gr_error_message()); return 1; }
    size_t n;
    char *text = gr_read_file("/dev/stdin", 0, &n);
    if (!text) { fprintf(stderr, "genrec tokenize: %s\n", gr_error_message()); gr_tokenizer_free(t); return 1; }
    int64_t n_ids;
    int32_t *ids = gr_tokenizer_encode(t, text, n, !no_bos && gr_tokenizer_wants_bos(t), &n_ids);
    free(text);
    if (!ids) { fprintf(stderr, "genrec tokenize: %s\n", gr_error_message()); gr_tokenizer_free(t); return 1; }
    for (int64_t i = 0; i < n_ids; i++) printf("%s%d", i ? " " : "", ids[i]);
    if (!no_bos && gr_tokenizer_wants_eos(t)) printf("%s%d", n_ids ? " " : "", gr_tokenizer_eos(t));
    printf("\n");
    gr_free(ids);
    gr_tokenizer_free(t);
    return fflush(stdout) == 0 ? 0 : 1;
}
