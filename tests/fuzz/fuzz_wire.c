/*
 * fuzz_wire.c - libFuzzer target: the header and policy checks of the sealed pair and of the
 * model blob, through the protocol's one codec (ta/dz_wire.c, ta/dz_policy.c) that both the
 * host (before it sends or loads anything) and the TA (on everything it receives) run.
 *
 * Input: a struct dz_model_header (264 bytes), two struct dz_policy (48 bytes each: a request
 * and what a sealed blob allows), then wire specs (160 bytes each) of layers first, first+1...
 * Missing bytes read as zero. Checked: dz_wire_decode_header, dz_wire_decode_spec on every
 * spec, dz_policy_check on both policies, dz_policy_within of the request and of the header's
 * own policy (dz_policy_of_request) against the allowed one, as the host's sealed-blob checks
 * and LOAD_SEALED do. A header and specs that decode are also planned by the engine, as
 * OPEN_MODEL plans them before it allocates.
 */
#include <stdint.h>
#include <string.h>

#include "dz_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every message the decoders write must be a terminated string within DZ_WIRE_MSG_MAX. */
static void check_msg(const char *why, const char msg[DZ_WIRE_MSG_MAX])
{
    if (why && (why != msg || !memchr(msg, 0, DZ_WIRE_MSG_MAX)))
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dz_model_header h;
    struct dz_policy want, allowed, own;
    struct dnn_net_config cfg;
    char msg[DZ_WIRE_MSG_MAX];
    uint8_t fixed[sizeof h + 2 * sizeof want];

    memset(fixed, 0, sizeof fixed);
    memcpy(fixed, data, size < sizeof fixed ? size : sizeof fixed);
    memcpy(&h, fixed, sizeof h);
    memcpy(&want, fixed + sizeof h, sizeof want);
    memcpy(&allowed, fixed + sizeof h + sizeof want, sizeof allowed);

    check_msg(dz_policy_check(&want, msg), msg);
    check_msg(dz_policy_check(&allowed, msg), msg);
    check_msg(dz_policy_within(&want, &allowed, msg), msg);
    (void)dz_output_name(want.output);

    const char *why = dz_wire_decode_header(&h, &cfg, msg);
    check_msg(why, msg);
    if (why)
        return 0;
    dz_policy_of_request(&h, &own);
    check_msg(dz_policy_check(&own, msg), msg);
    check_msg(dz_policy_within(&own, &allowed, msg), msg);

    const uint8_t *p = data + (size < sizeof fixed ? size : sizeof fixed);
    size_t left = size - (size_t)(p - data);
    struct dnn_layer_spec specs[16];
    size_t n = 0;
    bool ok = true;
    for (; left >= sizeof(struct dz_wire_spec) && n < 16; n++) {
        struct dz_wire_spec w;
        memcpy(&w, p, sizeof w);
        p += sizeof w;
        left -= sizeof w;
        why = dz_wire_decode_spec(&w, h.first, h.first + (uint32_t)n, &specs[n], msg);
        check_msg(why, msg);
        ok = ok && !why;
    }
    size_t bytes = 0;
    if (ok && n == h.n_specs && n > 0)
        (void)dnn_network_plan(&cfg, specs, n, h.training != 0, &bytes);
    return 0;
}
