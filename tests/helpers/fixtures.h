/* fixtures.h - where the test fixtures are: tests/fixtures/, relative to the
 * repository root (tests run from there). */
#ifndef TESTS_FIXTURES_H
#define TESTS_FIXTURES_H

#include <stddef.h>

/* Writes the path of fixture folder `name` (tests/fixtures/name) into out. */
void fixture_dir(const char *name, char *out, size_t size);

/* The darknetp program under test: $DZ_DARKNETP, else bin/darknetp. */
const char *darknetp_path(void);

#endif
