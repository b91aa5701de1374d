/* Subcommand entry points: each returns the process exit status
 * (0 ok, 1 runtime error, 2 usage error). */
#ifndef GENREC_COMMANDS_H
#define GENREC_COMMANDS_H
int cmd_info(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_train_lm(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_recommend(int argc, char **argv);
#endif
