/*
 * OP-TEE's TA trace macros (optee_os lib/libutils/ext/include/trace.h): EMSG, IMSG, DMSG, FMSG
 * print to the secure console as OP-TEE does:
 *
 *     E/TA: message                  (errors and info: short prefix)
 *     D/TA:  function:line message   (debug and flow: long prefix)
 *
 * The simulator's console is stderr, or the file named by the environment variable
 * DZ_TEE_LOG (appended to). TRACE_LEVEL comes from CFG_TEE_TA_LOG_LEVEL as in OP-TEE's TA dev
 * kit; the simulator's default is TRACE_INFO. Messages above the level compile to nothing but
 * their arguments are still type-checked.
 *
 * OP-TEE's TA printf cannot format floating point (%f, %e, %g); the simulator's can, and says
 * so once on the console when it happens, because the same TA would print nothing useful on a
 * device.
 */
#ifndef TRACE_H
#define TRACE_H

#include <stdbool.h>
#include <stddef.h>

#define TRACE_MIN 1
#define TRACE_ERROR TRACE_MIN
#define TRACE_INFO 2
#define TRACE_DEBUG 3
#define TRACE_FLOW 4
#define TRACE_MAX TRACE_FLOW

#ifndef TRACE_LEVEL
#ifdef CFG_TEE_TA_LOG_LEVEL
#define TRACE_LEVEL CFG_TEE_TA_LOG_LEVEL
#else
#define TRACE_LEVEL TRACE_INFO
#endif
#endif

/*
 * tsim_trace_printf() - Print one console line.
 * @function: function name for the long prefix, or NULL.
 * @line:     source line for the long prefix.
 * @level:    TRACE_ERROR .. TRACE_FLOW.
 * @level_ok: false for MSG(), printed whatever the level, with an 'M' prefix.
 */
void tsim_trace_printf(const char *function, int line, int level, bool level_ok, const char *fmt,
                       ...) __attribute__((format(printf, 5, 6)));

#define tsim_trace_helper(level, with_func, ...)                                                   \
    do {                                                                                           \
        if ((level) <= TRACE_LEVEL)                                                                \
            tsim_trace_printf((with_func) ? __func__ : NULL, __LINE__, (level), true,              \
                              __VA_ARGS__);                                                        \
    } while (0)

#define EMSG(...) tsim_trace_helper(TRACE_ERROR, true, __VA_ARGS__)
#define IMSG(...) tsim_trace_helper(TRACE_INFO, true, __VA_ARGS__)
#define DMSG(...) tsim_trace_helper(TRACE_DEBUG, true, __VA_ARGS__)
#define FMSG(...) tsim_trace_helper(TRACE_FLOW, true, __VA_ARGS__)

/* The same without function and line. */
#define EMSG_RAW(...) tsim_trace_helper(TRACE_ERROR, false, __VA_ARGS__)
#define IMSG_RAW(...) tsim_trace_helper(TRACE_INFO, false, __VA_ARGS__)
#define DMSG_RAW(...) tsim_trace_helper(TRACE_DEBUG, false, __VA_ARGS__)
#define FMSG_RAW(...) tsim_trace_helper(TRACE_FLOW, false, __VA_ARGS__)

/* Always printed. */
#define MSG(...) tsim_trace_printf(NULL, __LINE__, 0, false, __VA_ARGS__)
#define MSG_RAW(...) MSG(__VA_ARGS__)

#endif /* TRACE_H */
