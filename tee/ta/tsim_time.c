/*
 * Simulated TEE, time and cancellation: TEE_GetSystemTime (monotonic, as OP-TEE's secure
 * counter), TEE_GetREETime (the host's wall clock), TEE_Wait, and the cancellation flag set by
 * TEEC_RequestCancellation through the session's shared header. As in OP-TEE, cancellation is
 * masked when a session opens.
 */
#define _GNU_SOURCE
#include "tee/ta/tsim_internal.h"

#include <errno.h>
#include <time.h>

static const volatile uint32_t *cancel_flag;
static bool *cancel_masked;

void tsim_cancel_bind(const volatile uint32_t *flag, bool *masked)
{
    cancel_flag = flag;
    cancel_masked = masked;
}

static void to_tee_time(clockid_t clk, TEE_Time *t)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    t->seconds = (uint32_t)ts.tv_sec;
    t->millis = (uint32_t)(ts.tv_nsec / 1000000);
}

void TEE_GetSystemTime(TEE_Time *time)
{
    to_tee_time(CLOCK_MONOTONIC, time);
}

void TEE_GetREETime(TEE_Time *time)
{
    to_tee_time(CLOCK_REALTIME, time);
}

bool TEE_GetCancellationFlag(void)
{
    if (!cancel_flag || !cancel_masked || *cancel_masked)
        return false;
    return __atomic_load_n(cancel_flag, __ATOMIC_SEQ_CST) != 0;
}

bool TEE_UnmaskCancellation(void)
{
    if (!cancel_masked)
        return true;
    bool was = *cancel_masked;
    *cancel_masked = false;
    return was;
}

bool TEE_MaskCancellation(void)
{
    if (!cancel_masked)
        return true;
    bool was = *cancel_masked;
    *cancel_masked = true;
    return was;
}

TEE_Result TEE_Wait(uint32_t timeout)
{
    /* Sleeps in slices of at most 10 ms so a cancellation is seen promptly. */
    uint64_t left_ms = timeout;
    while (timeout == TEE_TIMEOUT_INFINITE || left_ms > 0) {
        if (TEE_GetCancellationFlag())
            return TEE_ERROR_CANCEL;
        uint64_t slice = (timeout == TEE_TIMEOUT_INFINITE || left_ms > 10) ? 10 : left_ms;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)slice * 1000000L};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
            ;
        if (timeout != TEE_TIMEOUT_INFINITE)
            left_ms -= slice;
    }
    return TEE_SUCCESS;
}
