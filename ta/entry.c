/*
 * entry.c - the DarkneTZ TA's entry points: session life and command dispatch. The handlers
 * (model.c, commands.c, seal.c) check their own parameter types, sizes and state.
 */
#include <tee_internal_api.h>

#include "dz_session.h"

void dz_wipe_free(void *p, size_t bytes)
{
    if (!p)
        return;
    TEE_MemFill(p, 0, bytes);
    TEE_Free(p);
}

TEE_Result TA_CreateEntryPoint(void)
{
    return TEE_SUCCESS;
}

void TA_DestroyEntryPoint(void) {}

TEE_Result TA_OpenSessionEntryPoint(uint32_t types, TEE_Param params[TEE_NUM_PARAMS],
                                    void **session_ctx)
{
    const uint32_t want = TEE_PARAM_TYPES(TEE_PARAM_TYPE_NONE, TEE_PARAM_TYPE_NONE,
                                          TEE_PARAM_TYPE_NONE, TEE_PARAM_TYPE_NONE);
    struct dz_session *s = NULL;

    (void)params;
    if (types != want)
        return TEE_ERROR_BAD_PARAMETERS;
    s = TEE_Malloc(sizeof(*s), TEE_MALLOC_FILL_ZERO);
    if (!s)
        return TEE_ERROR_OUT_OF_MEMORY;
    *session_ctx = s;
    return TEE_SUCCESS;
}

void TA_CloseSessionEntryPoint(void *session_ctx)
{
    struct dz_session *s = session_ctx;

    if (!s)
        return;
    dz_wipe_free(s->input, s->in_floats * sizeof(float));
    dz_wipe_free(s->truth, s->truth_floats * sizeof(float));
    dz_wipe_free(s->io, s->io_floats * sizeof(float));
    dz_sealed_import_abort(s); /* wipes the working buffer: before it is freed */
    dz_wipe_free(s->work, s->chunk_bytes);
    dnn_network_free(s->net);             /* wipes its arena: parameters, activations, gradients */
    dz_wipe_free(s->tree, s->tree_bytes); /* after the network that borrowed it */
    dz_wipe_free(s, sizeof(*s));          /* the sealing key goes with it */
}

TEE_Result TA_InvokeCommandEntryPoint(void *session_ctx, uint32_t cmd, uint32_t types,
                                      TEE_Param params[TEE_NUM_PARAMS])
{
    struct dz_session *s = session_ctx;

    switch (cmd) {
    case DZ_CMD_VERSION:
        return dz_cmd_version(types, params);
    case DZ_CMD_OPEN_MODEL:
        return dz_cmd_open_model(s, types, params);
    case DZ_CMD_LOAD_PLAIN:
        return dz_cmd_load_plain(s, types, params);
    case DZ_CMD_FORWARD:
        return dz_cmd_forward(s, types, params);
    case DZ_CMD_BACKWARD:
        return dz_cmd_backward(s, types, params);
    case DZ_CMD_UPDATE:
        return dz_cmd_update(s, types, params);
    case DZ_CMD_TRAIN_STEP:
        return dz_cmd_train_step(s, types, params);
    case DZ_CMD_SAVE_SEALED:
        return dz_cmd_save_sealed(s, types, params);
    case DZ_CMD_LOAD_SEALED:
        return dz_cmd_load_sealed(s, types, params);
    case DZ_CMD_GET_PUBKEY:
        return dz_cmd_get_pubkey(types, params);
    case DZ_CMD_STREAM_IMPORT:
        return dz_cmd_stream_import(s, types, params);
    case DZ_CMD_STREAM_BEGIN:
        return dz_cmd_stream_begin(s, types, params);
    case DZ_CMD_STREAM_CHUNK:
        return dz_cmd_stream_chunk(s, types, params);
    case DZ_CMD_LOAD_CHUNK:
        return dz_cmd_load_chunk(s, types, params);
    case DZ_CMD_STREAM_IMPORT_SEALED:
        return dz_cmd_stream_import_sealed(s, types, params);
    case DZ_CMD_STREAM_REKEY:
        return dz_cmd_stream_rekey(s, types, params);
    default:
        EMSG("unknown command %u", (unsigned)cmd);
        return TEE_ERROR_NOT_SUPPORTED;
    }
}
