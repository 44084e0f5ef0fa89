/*
 * test_tee_spin.c - the simulated TEE's spin-then-block choice (tee/common/tsim_spin.h):
 * the budget from DZ_TEE_SPIN_NS, which slots spin, the back-off after spins that ended in a
 * sleep, and that a spin reports a message that is already waiting. No timing is asserted:
 * only what was decided and what poll() found.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "tee/common/tsim_spin.h"

static uint32_t budget_with(const char *env)
{
    struct tsim_spin s;
    if (env)
        setenv("DZ_TEE_SPIN_NS", env, 1);
    else
        unsetenv("DZ_TEE_SPIN_NS");
    tsim_spin_init(&s);
    unsetenv("DZ_TEE_SPIN_NS");
    return s.budget_ns;
}

static void test_budget_from_environment(void **state)
{
    (void)state;
    const bool many = sysconf(_SC_NPROCESSORS_ONLN) >= 2;
    assert_int_equal(budget_with(NULL), TSIM_SPIN_DEFAULT_NS);
    assert_int_equal(budget_with("0"), 0);
    assert_int_equal(budget_with("20000"), many ? 20000 : 0);
    assert_int_equal(budget_with("1000000"), many ? 1000000 : 0);
    /* Not a plain number, or too long a spin: the default, never a surprise cost. */
    assert_int_equal(budget_with("2000001"), TSIM_SPIN_DEFAULT_NS);
    assert_int_equal(budget_with("20us"), TSIM_SPIN_DEFAULT_NS);
    assert_int_equal(budget_with("-5"), TSIM_SPIN_DEFAULT_NS);
}

/* A socket pair with one message waiting on end [0]. */
static void pair_with_message(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
    assert_int_equal(write(sv[1], "x", 1), 1);
}

static void test_spin_finds_waiting_message(void **state)
{
    (void)state;
    int sv[2];
    struct tsim_spin s;
    tsim_spin_init(&s);
    s.budget_ns = 50000;
    pair_with_message(sv);
    struct pollfd p = {.fd = sv[0], .events = POLLIN};
    assert_int_equal(tsim_spin(&s, 3, &p, 1), 1);
    assert_true(p.revents & POLLIN);
    /* Off: the caller blocks (and its own poll or receive finds the message). */
    s.budget_ns = 0;
    p.revents = 0;
    assert_int_equal(tsim_spin(&s, 3, &p, 1), 0);
    assert_int_equal(p.revents, 0);
    close(sv[0]);
    close(sv[1]);
}

static void test_slow_slot_blocks_at_once(void **state)
{
    (void)state;
    int sv[2];
    struct tsim_spin s;
    tsim_spin_init(&s);
    s.budget_ns = 50000;
    pair_with_message(sv);
    struct pollfd p = {.fd = sv[0], .events = POLLIN};
    /* The peer took 1 ms after slot 5 the last time: no spin there, even with a message
     * waiting (poll is not even asked); slot 5 + TSIM_SPIN_SLOTS is the same slot. */
    tsim_spin_learn(&s, 5, 1000, 1000 + 1000000);
    assert_int_equal(tsim_spin(&s, 5, &p, 1), 0);
    assert_int_equal(p.revents, 0);
    assert_int_equal(tsim_spin(&s, 5 + TSIM_SPIN_SLOTS, &p, 1), 0);
    assert_int_equal(tsim_spin(&s, 6, &p, 1), 1);
    /* Quick again: spins again. */
    tsim_spin_learn(&s, 5, 1000, 1000 + 2000);
    assert_int_equal(tsim_spin(&s, 5, &p, 1), 1);
    close(sv[0]);
    close(sv[1]);
}

static void test_learn_clamps(void **state)
{
    (void)state;
    struct tsim_spin s;
    tsim_spin_init(&s);
    tsim_spin_learn(&s, 1, 5000, 4000); /* a stamp before the wait: no time at all */
    assert_int_equal(s.gap_ns[1], 0);
    tsim_spin_learn(&s, 2, 0, (uint64_t)1 << 40);
    assert_int_equal(s.gap_ns[2], UINT32_MAX);
    tsim_spin_learn(&s, 3, 100, 350);
    assert_int_equal(s.gap_ns[3], 250);
}

static void test_back_off_after_missed_spins(void **state)
{
    (void)state;
    int sv[2];
    struct tsim_spin s;
    tsim_spin_init(&s);
    s.budget_ns = 2000;
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
    struct pollfd p = {.fd = sv[0], .events = POLLIN};
    /* Nothing comes: each spin that ends in a sleep doubles the waits that block at once. */
    const uint8_t want_skip[] = {1, 3, 7, 15, 31, 63, 63};
    for (size_t round = 0; round < sizeof want_skip; round++) {
        assert_int_equal(tsim_spin(&s, 7, &p, 1), 0);
        assert_int_equal(s.skip[7], want_skip[round]);
        for (unsigned k = want_skip[round]; k > 0; k--) {
            assert_int_equal(tsim_spin(&s, 7, &p, 1), 0);
            assert_int_equal(s.skip[7], k - 1);
        }
    }
    /* Other slots are not affected; a spin that finds a message resets the back-off. */
    assert_int_equal(s.skip[8], 0);
    assert_int_equal(write(sv[1], "x", 1), 1);
    assert_int_equal(tsim_spin(&s, 7, &p, 1), 1);
    assert_int_equal(s.misses[7], 0);
    close(sv[0]);
    close(sv[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_budget_from_environment),
        cmocka_unit_test(test_spin_finds_waiting_message),
        cmocka_unit_test(test_slow_slot_blocks_at_once),
        cmocka_unit_test(test_learn_clamps),
        cmocka_unit_test(test_back_off_after_missed_spins),
    };
    return cmocka_run_group_tests_name("tee_spin", tests, NULL, NULL);
}
