/*
 * fuzz_ta.c - libFuzzer target: the DarkneTZ TA's command dispatcher driven by a hostile
 * normal world, one fresh session per input, in-process (ta_inproc.h).
 *
 * Input:
 *   u16 LE  length L of the model blob, then L bytes: DZ_CMD_OPEN_MODEL's memref0
 *   then operations until the input ends (at most MAX_OPS), each:
 *     u8 op    bits 0-3: the command (DZ_CMD_*: since DZ_CMD_TRAIN_STEP took 15 every id
 *              is one; the dispatcher's answer to unknown ids is test_ta_dnn's)
 *              bit 4: the type word comes from the input (u16: four 3-bit type nibbles)
 *              bit 5: every memref size is the right one plus a signed byte (-128: size 0)
 *              bit 6: memref contents (and values) come from the input, else a pattern
 *                     that the TA accepts (small floats, one-hot truths, its own policy)
 *              bit 7: FORWARD: DZ_FORWARD_TRAIN; SAVE_SEALED: pass a policy;
 *                     TRAIN_STEP: no DZ_STEP_UPDATE (else with it, and with DZ_STEP_LOSS
 *                     when the session asked for DZ_OUTPUT_SCORES);
 *                     LOAD_SEALED: the blob of the last successful SAVE_SEALED
 *                     (with bit 6: one byte of it XORed, u16 offset then u8 mask);
 *                     STREAM_CHUNK: the sealed chunk STREAM_IMPORT gave for the index the
 *                     pass waits for (bit 6: XORed the same way)
 *              STREAM_IMPORT without bit 6 imports the chunk the save expects next
 * The "right" types and sizes are computed from the session's state as the protocol
 * (ta/include/darknetz_ta.h) defines them, so that the fuzzer reaches the engine and the
 * sealing code instead of stopping at the first size check.
 *
 * Beyond the sanitizers, every call must keep the protocol's promises, or the target aborts:
 * input memrefs are never written, an output's size on success is at most the buffer and on
 * TEE_ERROR_SHORT_BUFFER more than it, the TA never panics, and after the session closes the
 * TA heap is empty (a leak there would exhaust a long-lived TA instance).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "darknetz_ta.h"
#include "dz_session.h"
#include "tests/fuzz/ta_inproc.h"

#define MAX_OPS 48
#define MAX_CHUNKS 16
#define MAX_BLOB (1u << 20)

#define T_NONE TEE_PARAM_TYPE_NONE
#define T_VIN TEE_PARAM_TYPE_VALUE_INPUT
#define T_VOUT TEE_PARAM_TYPE_VALUE_OUTPUT
#define T_MIN TEE_PARAM_TYPE_MEMREF_INPUT
#define T_MOUT TEE_PARAM_TYPE_MEMREF_OUTPUT
#define T_MINOUT TEE_PARAM_TYPE_MEMREF_INOUT

struct stream {
    const uint8_t *p;
    size_t n;
};

/* Bytes past the end read as zero: every input decodes to some sequence. */
static uint8_t take_u8(struct stream *s)
{
    if (!s->n)
        return 0;
    s->n--;
    return *s->p++;
}

static uint16_t take_u16(struct stream *s)
{
    uint16_t lo = take_u8(s);
    return (uint16_t)(lo | (uint16_t)take_u8(s) << 8);
}

static uint32_t take_u32(struct stream *s)
{
    uint32_t lo = take_u16(s);
    return lo | (uint32_t)take_u16(s) << 16;
}

static void take_bytes(struct stream *s, uint8_t *dst, size_t n)
{
    size_t k = n < s->n ? n : s->n;
    memcpy(dst, s->p, k);
    memset(dst + k, 0, n - k);
    s->p += k;
    s->n -= k;
}

/* What the protocol wants for a command in the session's present state. */
struct shape {
    uint32_t t[TEE_NUM_PARAMS];
    size_t size[TEE_NUM_PARAMS];
};

static struct shape proper_shape(const struct dz_session *s, uint32_t cmd, bool flag,
                                 size_t model_len, size_t saved_len)
{
    struct shape sh = {{T_NONE, T_NONE, T_NONE, T_NONE}, {0, 0, 0, 0}};
    const bool open = s->net != NULL;
    const size_t batch = open ? s->hdr.batch : 0;

    switch (cmd) {
    case DZ_CMD_VERSION:
        sh.t[0] = T_VOUT;
        break;
    case DZ_CMD_OPEN_MODEL:
        sh.t[0] = T_MIN;
        sh.size[0] = model_len;
        sh.t[1] = T_VOUT;
        break;
    case DZ_CMD_LOAD_PLAIN:
        sh.t[0] = T_MIN;
        sh.size[0] = s->payload_bytes;
        sh.t[1] = T_VIN;
        break;
    case DZ_CMD_FORWARD: {
        const bool train = flag;
        const bool predictions = s->ends_network && !train;
        sh.t[0] = T_MIN;
        sh.size[0] = s->in_floats * sizeof(float);
        if (train && s->takes_truth) {
            sh.t[1] = T_MIN;
            sh.size[1] = s->truth_floats * sizeof(float);
        }
        sh.t[2] = T_VIN;
        if (!s->ends_network || predictions) {
            sh.t[3] = T_MOUT;
            if (predictions && s->hdr.output_policy == DZ_OUTPUT_SCORES)
                sh.size[3] = batch * s->classes * sizeof(float);
            else if (predictions)
                sh.size[3] = batch * sizeof(struct dz_prediction);
            else
                sh.size[3] = s->out_floats * sizeof(float);
        }
        break;
    }
    case DZ_CMD_BACKWARD:
        if (!s->ends_network) {
            sh.t[0] = T_MIN;
            sh.size[0] = s->out_floats * sizeof(float);
        }
        if (s->hdr.first > 0) {
            sh.t[1] = T_MOUT;
            sh.size[1] = s->in_floats * sizeof(float);
        }
        break;
    case DZ_CMD_TRAIN_STEP:
        /* FORWARD's memref0 and memref1 of a training pass, BACKWARD's delta out */
        sh.t[0] = T_MIN;
        sh.size[0] = s->in_floats * sizeof(float);
        if (s->takes_truth) {
            sh.t[1] = T_MIN;
            sh.size[1] = s->truth_floats * sizeof(float);
        }
        sh.t[2] = TEE_PARAM_TYPE_VALUE_INOUT;
        if (s->hdr.first > 0) {
            sh.t[3] = T_MOUT;
            sh.size[3] = s->in_floats * sizeof(float);
        }
        break;
    case DZ_CMD_SAVE_SEALED:
        sh.t[0] = T_MOUT;
        sh.size[0] = s->sealed_bytes;
        if (flag) {
            sh.t[1] = T_MIN;
            sh.size[1] = sizeof(struct dz_policy);
        }
        break;
    case DZ_CMD_LOAD_SEALED:
        sh.t[0] = T_MIN;
        sh.size[0] = flag && saved_len ? saved_len : s->sealed_bytes;
        sh.t[1] = T_VOUT;
        sh.t[2] = T_VOUT;
        break;
    case DZ_CMD_GET_PUBKEY:
        sh.t[0] = T_MOUT;
        sh.size[0] = 32;
        break;
    case DZ_CMD_STREAM_IMPORT: {
        const size_t plain = dz_stream_plain_bytes(s, s->import_active ? s->import_next : 0);
        sh.t[0] = T_VIN;
        sh.t[1] = T_MIN;
        sh.size[1] = s->training ? plain / 2 : plain; /* a training chunk adds the updates */
        sh.t[2] = T_MOUT;
        sh.size[2] = sizeof(struct dz_chunk_header) + plain + DZ_SEALED_TAG_BYTES;
        break;
    }
    case DZ_CMD_STREAM_BEGIN:
        sh.t[0] = T_MIN;
        sh.size[0] = s->in_floats * sizeof(float);
        sh.t[1] = T_VOUT;
        break;
    case DZ_CMD_STREAM_CHUNK:
        sh.t[0] = T_MIN;
        sh.size[0] = sizeof(struct dz_chunk_header) + dz_stream_plain_bytes(s, s->pass_next) +
                     DZ_SEALED_TAG_BYTES;
        sh.t[1] = T_VOUT;
        sh.t[2] = T_MOUT;
        if (!s->ends_network)
            sh.size[2] = s->out_floats * sizeof(float);
        else if (s->hdr.output_policy == DZ_OUTPUT_SCORES)
            sh.size[2] = batch * s->classes * sizeof(float);
        else
            sh.size[2] = batch * sizeof(struct dz_prediction);
        break;
    case DZ_CMD_STREAM_IMPORT_SEALED:
        /* Chunk 0 of the blob a SAVE_SEALED gave (copied below as LOAD_SEALED's), or of
         * anything of a sealed blob's length: refusals mostly, and the import's first chunk. */
        sh.t[0] = TEE_PARAM_TYPE_VALUE_INOUT;
        sh.t[1] = T_MIN;
        sh.size[1] = flag && saved_len ? saved_len : s->sealed_bytes;
        sh.t[2] = T_MOUT;
        sh.size[2] =
            sizeof(struct dz_chunk_header) + dz_stream_plain_bytes(s, 0) + DZ_SEALED_TAG_BYTES;
        sh.t[3] = T_VOUT;
        break;
    case DZ_CMD_LOAD_CHUNK:
        /* A cut of the smallest working buffer, chunk by chunk: refusals mostly, which is the
         * point (the tensors are wiped on each). */
        sh.t[0] = T_VIN;
        sh.t[1] = T_VIN;
        sh.t[2] = T_MIN;
        sh.size[2] = sizeof(struct dz_chunk_header) + DZ_STREAM_CHUNK_MIN + DZ_SEALED_TAG_BYTES;
        sh.t[3] = T_VIN;
        break;
    case DZ_CMD_STREAM_REKEY: {
        /* The chunk a re-key wants next, of the session's cut: refusals mostly, unless the
         * input holds a chunk the import made. */
        const size_t sealed = sizeof(struct dz_chunk_header) +
                              dz_stream_plain_bytes(s, s->rekey_active ? s->rekey_next : 0) +
                              DZ_SEALED_TAG_BYTES;
        sh.t[0] = T_VIN;
        sh.t[1] = T_MIN;
        sh.size[1] = sealed;
        sh.t[2] = T_MOUT;
        sh.size[2] = sealed;
        break;
    }
    default: /* UPDATE and unknown ids: no parameters */
        break;
    }
    return sh;
}

static bool is_memref(uint32_t t)
{
    return t == T_MIN || t == T_MOUT || t == T_MINOUT;
}

/* Floats the TA accepts as data: small, finite, deterministic. */
static void fill_pattern(uint8_t *buf, size_t size, uint32_t salt)
{
    size_t n = size / sizeof(float);
    for (size_t i = 0; i < n; i++) {
        uint32_t h = (uint32_t)(i + 1) * 2654435761u ^ salt;
        float v = (float)(h >> 24) / 512.0f - 0.25f;
        memcpy(buf + i * sizeof v, &v, sizeof v);
    }
    memset(buf + n * sizeof(float), 0x5a, size - n * sizeof(float));
}

/* One-hot rows of @classes floats: what a data loader hands the TA as truth. */
static void fill_truth(uint8_t *buf, size_t size, size_t classes)
{
    memset(buf, 0, size);
    if (!classes)
        return;
    size_t rows = size / sizeof(float) / classes;
    const float one = 1.0f;
    for (size_t r = 0; r < rows; r++)
        memcpy(buf + (r * classes + r % classes) * sizeof one, &one, sizeof one);
}

/* The call's parameters and the copies the checks after the call compare against. */
struct call {
    uint32_t types;
    TEE_Param p[TEE_NUM_PARAMS];
    uint8_t *buf[TEE_NUM_PARAMS];
    uint8_t *copy[TEE_NUM_PARAMS]; /* input memrefs as sent */
    size_t size[TEE_NUM_PARAMS];
};

static void call_free(struct call *c)
{
    for (int i = 0; i < TEE_NUM_PARAMS; i++) {
        free(c->buf[i]);
        free(c->copy[i]);
    }
}

/* The promises of darknetz_ta.h that hold for every command. */
static void check_call(uint32_t cmd, const struct call *c, TEE_Result res)
{
    for (int i = 0; i < TEE_NUM_PARAMS; i++) {
        uint32_t t = TEE_PARAM_TYPE_GET(c->types, i);
        if (t == T_MIN && c->size[i] && memcmp(c->buf[i], c->copy[i], c->size[i]) != 0) {
            fprintf(stderr, "command %u wrote into its input memref %d\n", (unsigned)cmd, i);
            abort();
        }
        if (t != T_MOUT && t != T_MINOUT)
            continue;
        size_t out = c->p[i].memref.size;
        if (res == TEE_SUCCESS && out > c->size[i]) {
            fprintf(stderr, "command %u succeeded with memref %d size %zu > buffer %zu\n",
                    (unsigned)cmd, i, out, c->size[i]);
            abort();
        }
        if (res == TEE_ERROR_SHORT_BUFFER && out <= c->size[i] && t == T_MOUT) {
            fprintf(stderr, "command %u: SHORT_BUFFER but memref %d needs %zu <= %zu\n",
                    (unsigned)cmd, i, out, c->size[i]);
            abort();
        }
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* FUZZ_TA_VERBOSE: one line per command and its result, to see how deep a seed gets. */
static bool verbose;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    verbose = getenv("FUZZ_TA_VERBOSE") != NULL;
    ta_inproc_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct stream in = {data, size};
    void *session = NULL;
    uint8_t *saved = NULL; /* the last sealed blob the TA gave out */
    size_t saved_len = 0;
    uint8_t *chunks[MAX_CHUNKS] = {NULL}; /* the sealed chunks STREAM_IMPORT gave out */
    size_t chunk_len[MAX_CHUNKS] = {0};

    size_t model_len = take_u16(&in);
    if (model_len > in.n)
        model_len = in.n;
    const uint8_t *model = in.p;
    in.p += model_len;
    in.n -= model_len;

    if (ta_inproc_open(&session) != TEE_SUCCESS)
        return 0; /* a TA heap too small for a session: nothing to fuzz */

    for (int op_index = -1; op_index < MAX_OPS; op_index++) {
        if (op_index >= 0 && !in.n)
            break;
        /* The first operation is always OPEN_MODEL with the blob, as darknetp does. */
        const uint8_t op = op_index < 0 ? DZ_CMD_OPEN_MODEL : take_u8(&in);
        const uint32_t cmd = op & 15u;
        const bool fuzz_types = op & 0x10, fuzz_sizes = op & 0x20, raw = op & 0x40,
                   flag = op & 0x80;
        const struct dz_session *s = session;
        struct shape sh = proper_shape(s, cmd, flag, model_len, saved_len);
        struct call c;
        memset(&c, 0, sizeof c);

        if (fuzz_types) {
            const uint16_t w = take_u16(&in);
            for (int i = 0; i < TEE_NUM_PARAMS; i++) {
                const uint32_t t = (w >> (3 * i)) & 7u;
                if (is_memref(t) && !is_memref(sh.t[i]))
                    sh.size[i] = take_u8(&in);
                sh.t[i] = t;
            }
        }
        if (fuzz_sizes) {
            const int delta = (int8_t)take_u8(&in);
            for (int i = 0; i < TEE_NUM_PARAMS; i++) {
                if (delta == -128 || (delta < 0 && sh.size[i] < (size_t)-delta))
                    sh.size[i] = 0;
                else
                    sh.size[i] = (size_t)((long long)sh.size[i] + delta);
            }
        }
        for (int i = 0; i < TEE_NUM_PARAMS; i++) {
            const uint32_t t = sh.t[i];
            c.types |= t << (4 * i);
            if (t == T_VOUT) {
                c.p[i].value.a = c.p[i].value.b = 0xdeadbeefu;
                continue;
            }
            if (t == T_VIN || t == TEE_PARAM_TYPE_VALUE_INOUT) {
                if (raw) {
                    c.p[i].value.a = take_u32(&in);
                    c.p[i].value.b = take_u32(&in);
                } else if (cmd == DZ_CMD_FORWARD && i == 2) {
                    c.p[i].value.a = flag ? DZ_FORWARD_TRAIN : 0;
                } else if (cmd == DZ_CMD_TRAIN_STEP && i == 2) {
                    const bool scores = s->net && s->hdr.output_policy == DZ_OUTPUT_SCORES;
                    c.p[i].value.a = flag ? 0 : DZ_STEP_UPDATE | (scores ? DZ_STEP_LOSS : 0);
                } else if (cmd == DZ_CMD_STREAM_IMPORT && i == 0) {
                    c.p[i].value.a = s->import_active ? s->import_next : 0;
                }
                continue;
            }
            if (!is_memref(t))
                continue;
            const size_t n = sh.size[i] < MAX_BLOB ? sh.size[i] : MAX_BLOB;
            c.size[i] = n;
            c.p[i].memref.size = n;
            /* A zero-sized memref may come with no buffer at all (GlobalPlatform allows it). */
            if (!n)
                continue;
            c.buf[i] = malloc(n);
            if (!c.buf[i])
                abort();
            c.p[i].memref.buffer = c.buf[i];
            if (t == T_MOUT) {
                memset(c.buf[i], 0xa5, n);
                continue;
            }
            if (cmd == DZ_CMD_OPEN_MODEL && !raw) {
                memset(c.buf[i], 0, n);
                memcpy(c.buf[i], model, n < model_len ? n : model_len);
            } else if ((cmd == DZ_CMD_LOAD_SEALED ||
                        (cmd == DZ_CMD_STREAM_IMPORT_SEALED && i == 1)) &&
                       flag && saved_len) {
                memset(c.buf[i], 0, n);
                memcpy(c.buf[i], saved, n < saved_len ? n : saved_len);
                if (raw) {
                    const size_t at = take_u16(&in) % n;
                    c.buf[i][at] ^= take_u8(&in);
                }
            } else if (cmd == DZ_CMD_STREAM_CHUNK && flag && s->pass_next < MAX_CHUNKS &&
                       chunks[s->pass_next]) {
                const size_t have = chunk_len[s->pass_next];
                memset(c.buf[i], 0, n);
                memcpy(c.buf[i], chunks[s->pass_next], n < have ? n : have);
                if (raw) {
                    const size_t at = take_u16(&in) % n;
                    c.buf[i][at] ^= take_u8(&in);
                }
            } else if (raw) {
                take_bytes(&in, c.buf[i], n);
            } else if ((cmd == DZ_CMD_FORWARD || cmd == DZ_CMD_TRAIN_STEP) && i == 1) {
                fill_truth(c.buf[i], n, s->hdr.batch ? s->truth_floats / s->hdr.batch : 0);
            } else if (cmd == DZ_CMD_SAVE_SEALED && i == 1) {
                memset(c.buf[i], 0, n);
                memcpy(c.buf[i], &s->policy, n < sizeof s->policy ? n : sizeof s->policy);
            } else {
                fill_pattern(c.buf[i], n, (uint32_t)op_index);
            }
            if (t == T_MIN) {
                c.copy[i] = malloc(n);
                if (!c.copy[i])
                    abort();
                memcpy(c.copy[i], c.buf[i], n);
            }
        }

        const uint32_t import_k = c.p[0].value.a; /* STREAM_IMPORT's chunk, if it is one */
        const TEE_Result res = ta_inproc_invoke(session, cmd, c.types, c.p);
        if (verbose)
            fprintf(stderr, "op %d: command %u types %04x -> 0x%08x\n", op_index, (unsigned)cmd,
                    (unsigned)c.types, (unsigned)res);
        check_call(cmd, &c, res);
        if (cmd == DZ_CMD_SAVE_SEALED && res == TEE_SUCCESS && c.buf[0]) {
            free(saved);
            saved_len = c.p[0].memref.size;
            saved = malloc(saved_len ? saved_len : 1);
            if (!saved)
                abort();
            memcpy(saved, c.buf[0], saved_len);
        }
        if (cmd == DZ_CMD_STREAM_IMPORT && res == TEE_SUCCESS && import_k < MAX_CHUNKS &&
            c.buf[2]) {
            free(chunks[import_k]);
            chunk_len[import_k] = c.p[2].memref.size;
            chunks[import_k] = malloc(chunk_len[import_k] ? chunk_len[import_k] : 1);
            if (!chunks[import_k])
                abort();
            memcpy(chunks[import_k], c.buf[2], chunk_len[import_k]);
        }
        call_free(&c);
    }
    for (size_t k = 0; k < MAX_CHUNKS; k++)
        free(chunks[k]);
    ta_inproc_close(session);
    free(saved);
    if (ta_inproc_heap_used() != 0) {
        fprintf(stderr, "the TA heap keeps %zu bytes after its session closed\n",
                ta_inproc_heap_used());
        abort();
    }
    return 0;
}
