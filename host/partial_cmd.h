/* partial_cmd.h - `darknetp partial CFG WEIGHTS OUT N`, darknet's partial. */
#ifndef DZ_PARTIAL_CMD_H
#define DZ_PARTIAL_CMD_H

/*
 * Writes OUT: the weights of layers 0..N-1 of CFG from WEIGHTS, as darknet's
 * `partial` does (the header of format 0.2, revision 0, `seen` 0 as both darknet
 * trees write it, then the layers' parameters untransposed), atomically. N past
 * the last layer means all of them. Refused: a WEIGHTS that does not hold the
 * first N layers (darknet would save random values in their place) and a file
 * whose protected layers are sealed (they are zeros in it).
 * argv[1] is "partial". Returns the process exit code (0, 1 on error, 2 on usage).
 */
int dz_partial_main(int argc, char **argv);

#endif
