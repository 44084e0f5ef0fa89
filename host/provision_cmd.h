/*
 * provision_cmd.h - `darknetp seal` and `darknetp tee pubkey`, the two ends of provisioning a
 * model to one device (README, "Provisioning a model to a device").
 */
#ifndef DZ_PROVISION_CMD_H
#define DZ_PROVISION_CMD_H

/*
 * dz_seal_main (seal_cmd.c) - `darknetp seal -pp_start A -pp_end B [policy options]
 * CFG WEIGHTS DEVICE.pub -o OUT` (argv[1] is "seal"): writes OUT.weights and
 * OUT.weights.tz for the device whose key DEVICE.pub holds (OUT may already end in
 * .weights). Opens no TEE. Prints what it sealed on stderr. Returns the exit code: 0,
 * 1 on a failure, 2 on a usage error.
 */
int dz_seal_main(int argc, char **argv);

/* The usage text of `darknetp seal` with its options, lines ending in '\n'. */
extern const char dz_seal_usage[];

/*
 * dz_tee_pubkey_main (tee_pubkey.c) - `darknetp tee pubkey` (argv[1..2] are "tee",
 * "pubkey"): asks the TA for the device's provisioning key (DZ_CMD_GET_PUBKEY) and prints
 * the device.pub file (device_key.h) on stdout, its fingerprint on stderr. Returns the
 * exit code: 0, 1 on a failure, 2 on a usage error.
 */
int dz_tee_pubkey_main(int argc, char **argv);

#endif
