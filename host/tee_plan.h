/* tee_plan.h - `darknetp tee plan CFG [-batch N] [-train] [-ta_data_size BYTES]`. */
#ifndef DZ_TEE_PLAN_H
#define DZ_TEE_PLAN_H

/*
 * Prints per layer its secure-memory need and that of layers i..n-1, then the
 * partitions that fit TA_DATA_SIZE: -ta_data_size, else the built-in one of the TA
 * built from this tree (ta/include/user_ta_header_defines.h). Opens no session.
 * argv[1..2] are "tee plan". Returns the process exit code.
 */
int dz_tee_plan_main(int argc, char **argv);

#endif
