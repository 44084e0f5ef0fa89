/*
 * Simulated TEE: spin, then block, when one side waits for the other (tee/common/tsim_spin.c).
 *
 * A call is a round trip between two processes. When the side that waits blocks in poll(),
 * the other side's send has to wake it: on a virtual machine each sleep and wake-up costs
 * about 10 us of CPU on each side (measured with bin/tee_bench: 21 us of CPU per empty round
 * trip, most of it in the scheduler), more than the whole command when it is short. When the
 * two processes run on different cores, polling without a timeout for a few microseconds
 * catches a quick answer without sleeping, and a peer that is not asleep needs no wake-up.
 *
 * Spinning costs CPU too, so it is adaptive: each waiter keeps, per slot (the client: the
 * command it waits on; the TA: the command it last answered), how long the peer took the last
 * time (from the peer's send time, struct tsim_msg's sent_ns, so that a late wake-up of our own
 * does not count), and spins only when that was within the budget. A slow pass (the TA running a
 * large segment, the host running its own layers) therefore blocks at once, as before.
 *
 * Off by default: DZ_TEE_SPIN_NS from the environment sets the budget (0: never spin; 20000
 * is about half the cost of a sleep and wake-up pair here). Measured on the 2-vCPU VM this was
 * written on, it pays only while both processes have a core to themselves: with the other
 * engineers' load (7-11 on 2 cores) a spin ends in a sleep anyway and saves nothing, and where
 * the woken peer is queued on the spinner's own core it waits out the spin (LeNet batch-1
 * inference with all layers in the TA, real-time priority: 359 us of CPU per image against
 * 265 us without spinning; an empty call at real-time priority: 28-45 us of CPU against 56-69).
 * With a single online CPU nothing spins: the peer could not run meanwhile.
 */
#ifndef TSIM_SPIN_H
#define TSIM_SPIN_H

#include <poll.h>
#include <stdint.h>

/* The budget without DZ_TEE_SPIN_NS, and the largest DZ_TEE_SPIN_NS taken. */
#define TSIM_SPIN_DEFAULT_NS 0u
#define TSIM_SPIN_MAX_NS 1000000u
#define TSIM_SPIN_SLOTS 16u

struct tsim_spin {
    uint32_t budget_ns;               /* 0: never spin */
    uint32_t gap_ns[TSIM_SPIN_SLOTS]; /* the peer's last time per slot; UINT32_MAX: long */
    uint8_t misses[TSIM_SPIN_SLOTS];  /* spins in a row that ended in a sleep anyway */
    uint8_t skip[TSIM_SPIN_SLOTS];    /* waits left to block at once after such a miss */
};

/* CLOCK_MONOTONIC in nanoseconds (the same clock in every process of the machine). */
uint64_t tsim_now_ns(void);

/* Reads the budget (DZ_TEE_SPIN_NS: decimal ns up to TSIM_SPIN_MAX_NS, anything else keeps
 * the default; the CPU count); every slot starts as "spin". */
void tsim_spin_init(struct tsim_spin *s);

/*
 * tsim_spin() - Polls @pfd without a timeout for up to the budget when the peer was quick
 * the last time in @slot (any value; reduced modulo TSIM_SPIN_SLOTS); the caller blocks
 * afterwards when nothing came. A spin that ends in a sleep anyway (the machine is busier
 * than its cores: the peer was not running) makes the slot block at once for the next 1, 3,
 * 7 ... 63 waits, so that a loaded machine wastes little on spinning.
 * Return: poll()'s positive count, with @pfd's revents set, when something came while
 * spinning; 0 when the caller must block (revents are then undefined).
 */
int tsim_spin(struct tsim_spin *s, uint32_t slot, struct pollfd *pfd, nfds_t n);

/*
 * tsim_spin_learn() - Records how long the peer took in @slot: from @since_ns (when this side
 * started waiting) to @peer_sent_ns (when the peer sent; 0 or earlier: no time at all).
 * The peer's stamp only steers this side's spinning, at most the budget per wait, so a
 * peer that lies about it wastes its own calls' CPU, nothing more.
 */
void tsim_spin_learn(struct tsim_spin *s, uint32_t slot, uint64_t since_ns, uint64_t peer_sent_ns);

#endif /* TSIM_SPIN_H */
