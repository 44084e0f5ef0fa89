/*
 * fuzz_wire.c - libFuzzer target: the header and policy checks of the sealed pair and of the
 * model blob, through the protocol's one codec (ta/dz_wire.c, ta/dz_policy.c) that both the
 * host (before it sends or loads anything) and the TA (on everything it receives) run.
 *
 * Input: a struct dz_model_header (272 bytes), two struct dz_policy (48 bytes each: a request
 * and what a sealed blob allows), then the header's n_specs wire specs (160 bytes each) of
 * layers first, first+1..., then its tree_words group-table words (up to 256 here). Missing
 * bytes read as zero. Checked: dz_wire_decode_header, dz_wire_decode_spec on every spec,
 * dz_wire_decode_tree on the table when the input holds exactly it, dz_policy_check on both
 * policies, dz_policy_within of the request and of the header's own policy (dz_policy_of_request)
 * against the allowed one, as the host's sealed-blob checks and LOAD_SEALED do. A header, specs and
 * table that decode are also planned by the engine, as OPEN_MODEL plans them before it allocates.
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
    struct dz_wire_spec wire[16];
    size_t n = 0;
    bool ok = true;
    for (; left >= sizeof(struct dz_wire_spec) && n < 16 && n < h.n_specs; n++) {
        memcpy(&wire[n], p, sizeof wire[n]);
        p += sizeof wire[n];
        left -= sizeof wire[n];
        why = dz_wire_decode_spec(&wire[n], h.first, h.first + (uint32_t)n, &specs[n], msg);
        check_msg(why, msg);
        ok = ok && !why;
    }
    /* The tree group table: the header's tree_words after the specs, as OPEN_MODEL reads it
     * (a shorter input is a size mismatch there, refused before any decoding). */
    const size_t words = h.tree_words;
    if (!ok || n != h.n_specs || n == 0 || left != words * sizeof(uint32_t))
        return 0;
    uint32_t table[256];
    int sizes[256];
    if (words > 256)
        return 0;
    memcpy(table, p, words * sizeof(uint32_t));
    why = dz_wire_decode_tree(wire, n, h.first, table, words, sizes, specs, msg);
    check_msg(why, msg);
    size_t bytes = 0;
    if (!why)
        (void)dnn_network_plan(&cfg, specs, n, h.training != 0, &bytes);
    return 0;
}
