/*
 * storage.c - GP persistent objects (TEE_STORAGE_PRIVATE) for the simulated
 * libutee: create, open, read, write, truncate, seek, rename, close and delete,
 * with OP-TEE's checks (misuse panics; bad data and storage states are codes).
 * The files and their format are storage_file.c's.
 *
 * While a handle is open the whole object is held in memory and every write or
 * truncate rewrites the file: the objects here are small (sealed keys and
 * layer weights of a few MiB). A failed write or truncate leaves the object as
 * it was. Handles on the same object share one struct tsim_pobj, with OP-TEE's
 * sharing rules (tee_pobj_check_access); the rules hold within a TA instance,
 * not between two instances of a multi-instance TA.
 */
#include <string.h>

#include <tee_api_defines_extensions.h>

#include "tsim_crypto.h"
#include "tsim_ta.h"

#define OPEN_FLAGS                                                                                 \
    (TEE_DATA_FLAG_ACCESS_READ | TEE_DATA_FLAG_ACCESS_WRITE | TEE_DATA_FLAG_ACCESS_WRITE_META |    \
     TEE_DATA_FLAG_SHARE_READ | TEE_DATA_FLAG_SHARE_WRITE)
#define CREATE_FLAGS (OPEN_FLAGS | TEE_DATA_FLAG_OVERWRITE)

/* Objects with at least one open handle in this TA instance. */
static struct tsim_pobj *open_pobjs;

/* ------------------------------------------------------------------------ */
/* Persistent object bookkeeping                                              */

static struct tsim_pobj *find_open(const uint8_t *id, size_t id_len)
{
    for (struct tsim_pobj *po = open_pobjs; po; po = po->next)
        if (po->id_len == id_len && (!id_len || memcmp(po->id, id, id_len) == 0))
            return po;
    return NULL;
}

/* OP-TEE's rules (tee_pobj_check_access) for another handle on an open object. */
static TEE_Result check_access(uint32_t oflags, uint32_t nflags)
{
    const uint32_t r = TEE_DATA_FLAG_ACCESS_READ;
    const uint32_t w = TEE_DATA_FLAG_ACCESS_WRITE;
    const uint32_t sr = TEE_DATA_FLAG_SHARE_READ;
    const uint32_t sw = TEE_DATA_FLAG_SHARE_WRITE;

    if ((oflags | nflags) & TEE_DATA_FLAG_ACCESS_WRITE_META)
        return TEE_ERROR_ACCESS_CONFLICT;
    if (((oflags | nflags) & r) && !(nflags & oflags & sr))
        return TEE_ERROR_ACCESS_CONFLICT;
    if ((nflags & sr) != (oflags & sr))
        return TEE_ERROR_ACCESS_CONFLICT;
    if (((oflags | nflags) & w) && !(nflags & oflags & sw))
        return TEE_ERROR_ACCESS_CONFLICT;
    if ((nflags & sw) != (oflags & sw))
        return TEE_ERROR_ACCESS_CONFLICT;
    return TEE_SUCCESS;
}

static void free_data(struct tsim_pobj *po)
{
    if (po->data) {
        tsim_crypto_wipe(po->data, po->data_cap);
        tsim_sys_free(po->data);
    }
    po->data = NULL;
    po->data_len = 0;
    po->data_cap = 0;
}

static void pobj_free(struct tsim_pobj *po)
{
    free_data(po);
    tsim_key_release(&po->key);
    tsim_crypto_free(po, sizeof(*po));
}

/* A new handle on po; po joins the open list with its first handle. */
static TEE_Result open_handle(struct tsim_pobj *po, uint32_t flags, TEE_ObjectHandle *out)
{
    TEE_ObjectHandle h = TEE_HANDLE_NULL;
    TEE_Result res = tsim_obj_handle_new(&h);

    if (res != TEE_SUCCESS)
        return res;
    h->pobj = po;
    h->open_flags = flags & OPEN_FLAGS;
    if (po->refcount++ == 0) {
        po->flags = h->open_flags;
        po->next = open_pobjs;
        open_pobjs = po;
    }
    *out = h;
    return TEE_SUCCESS;
}

void tsim_storage_close(TEE_ObjectHandle obj)
{
    struct tsim_pobj *po = obj->pobj;

    tsim_obj_handle_free(obj);
    if (--po->refcount)
        return;
    for (struct tsim_pobj **pp = &open_pobjs; *pp; pp = &(*pp)->next) {
        if (*pp == po) {
            *pp = po->next;
            break;
        }
    }
    pobj_free(po);
}

TEE_Result tsim_storage_commit(struct tsim_pobj *pobj)
{
    return tsim_sfile_write(pobj, pobj->id, pobj->id_len, true);
}

/*
 * OP-TEE's core reads object ids and data streams only from TA-private memory
 * (no TEE_MEMORY_ACCESS_ANY_OWNER): a buffer shared with the normal world,
 * which could change under the TEE, makes the TA panic. The same here, so that
 * a TA which works in the simulator works on a device.
 */
static void check_private(uint32_t access, const void *buf, size_t len)
{
    if (len && TEE_CheckMemoryAccessRights(access, (void *)buf, len) != TEE_SUCCESS)
        TEE_Panic(TEE_ERROR_ACCESS_DENIED);
}

/* Checks shared by open and create; panics on misuse as OP-TEE does. */
static TEE_Result check_id(uint32_t storageID, const void *objectID, size_t objectIDLen,
                           uint32_t flags, uint32_t valid_flags)
{
    if ((flags & ~valid_flags) || (!objectID && objectIDLen) || objectIDLen > TEE_OBJECT_ID_MAX_LEN)
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    check_private(TEE_MEMORY_ACCESS_READ, objectID, objectIDLen);
    /* TEE_STORAGE_PRIVATE is the REE FS here, as in OP-TEE's default build. */
    if (storageID != TEE_STORAGE_PRIVATE && storageID != TEE_STORAGE_PRIVATE_REE)
        return TEE_ERROR_ITEM_NOT_FOUND;
    return TEE_SUCCESS;
}

/* Panics unless obj is a live persistent object handle. */
static struct tsim_pobj *check_persistent(TEE_ObjectHandle obj)
{
    tsim_obj_check(obj);
    if (!obj->pobj)
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    return obj->pobj;
}

/* Makes room for cap bytes of data; new bytes are zero. */
static bool reserve(struct tsim_pobj *po, size_t cap)
{
    uint8_t *d = NULL;
    size_t n = po->data_cap ? po->data_cap : 64;

    if (cap <= po->data_cap)
        return true;
    while (n < cap)
        n = n > SIZE_MAX / 2 ? cap : n * 2;
    d = tsim_sys_malloc(n);
    if (!d)
        return false;
    memset(d, 0, n);
    if (po->data_len)
        memcpy(d, po->data, po->data_len);
    if (po->data) {
        tsim_crypto_wipe(po->data, po->data_cap);
        tsim_sys_free(po->data);
    }
    po->data = d;
    po->data_cap = n;
    return true;
}

/* ------------------------------------------------------------------------ */
/* GP: persistent object functions                                            */

TEE_Result TEE_OpenPersistentObject(uint32_t storageID, const void *objectID, size_t objectIDLen,
                                    uint32_t flags, TEE_ObjectHandle *object)
{
    struct tsim_pobj *po = NULL;
    TEE_Result res = TEE_ERROR_GENERIC;

    if (!object)
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    *object = TEE_HANDLE_NULL;
    res = check_id(storageID, objectID, objectIDLen, flags, OPEN_FLAGS);
    if (res != TEE_SUCCESS)
        return res;

    po = find_open(objectID, objectIDLen);
    if (po) {
        res = check_access(po->flags, flags);
        return res == TEE_SUCCESS ? open_handle(po, flags, object) : res;
    }
    po = tsim_crypto_zalloc(sizeof(*po));
    if (!po)
        return TEE_ERROR_OUT_OF_MEMORY;
    if (objectIDLen)
        memcpy(po->id, objectID, objectIDLen);
    po->id_len = objectIDLen;
    res = tsim_sfile_read(po, objectID, objectIDLen);
    if (res == TEE_SUCCESS)
        res = open_handle(po, flags, object);
    if (res != TEE_SUCCESS)
        pobj_free(po);
    return res;
}

TEE_Result TEE_CreatePersistentObject(uint32_t storageID, const void *objectID, size_t objectIDLen,
                                      uint32_t flags, TEE_ObjectHandle attributes,
                                      const void *initialData, size_t initialDataLen,
                                      TEE_ObjectHandle *object)
{
    struct tsim_pobj *po = NULL;
    const struct tsim_key *src = NULL;
    TEE_Result res = TEE_ERROR_GENERIC;

    if (object)
        *object = TEE_HANDLE_NULL;
    res = check_id(storageID, objectID, objectIDLen, flags, CREATE_FLAGS);
    if (res != TEE_SUCCESS)
        return res;
    if (!initialData && initialDataLen)
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    /* Initial data may be shared memory (OP-TEE: ANY_OWNER); it is copied once. */
    check_private(TEE_MEMORY_ACCESS_READ | TEE_MEMORY_ACCESS_ANY_OWNER, initialData,
                  initialDataLen);
    if (attributes != TEE_HANDLE_NULL) {
        tsim_obj_check(attributes);
        src = tsim_obj_key(attributes);
        /* GP: the attributes must come from an initialized object. */
        if (!src->initialized)
            TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    }
    if (initialDataLen > TEE_DATA_MAX_POSITION)
        return TEE_ERROR_STORAGE_NO_SPACE;
    /* An object with an open handle cannot be replaced under it. */
    if (find_open(objectID, objectIDLen))
        return TEE_ERROR_ACCESS_CONFLICT;

    po = tsim_crypto_zalloc(sizeof(*po));
    if (!po)
        return TEE_ERROR_OUT_OF_MEMORY;
    if (objectIDLen)
        memcpy(po->id, objectID, objectIDLen);
    po->id_len = objectIDLen;
    res = src ? tsim_key_init(&po->key, src->type, src->max_size)
              : tsim_key_init(&po->key, TEE_TYPE_DATA, 0);
    if (res == TEE_SUCCESS && src)
        res = tsim_key_copy(&po->key, src);
    else if (res == TEE_SUCCESS)
        po->key.initialized = true;
    if (res != TEE_SUCCESS) {
        res = res == TEE_ERROR_OUT_OF_MEMORY ? res : TEE_ERROR_GENERIC;
        goto out;
    }
    if (!reserve(po, initialDataLen)) {
        res = TEE_ERROR_OUT_OF_MEMORY;
        goto out;
    }
    if (initialDataLen)
        memcpy(po->data, initialData, initialDataLen);
    po->data_len = initialDataLen;

    res = tsim_sfile_write(po, po->id, po->id_len, flags & TEE_DATA_FLAG_OVERWRITE);
    if (res == TEE_SUCCESS && object) {
        res = open_handle(po, flags, object);
        if (res == TEE_SUCCESS)
            return res;
    }
out:
    pobj_free(po);
    return res;
}

TEE_Result TEE_CloseAndDeletePersistentObject1(TEE_ObjectHandle object)
{
    struct tsim_pobj *po = NULL;
    TEE_Result res = TEE_ERROR_GENERIC;

    if (object == TEE_HANDLE_NULL)
        return TEE_SUCCESS;
    po = check_persistent(object);
    if (!(object->open_flags & TEE_DATA_FLAG_ACCESS_WRITE_META))
        TEE_Panic(TEE_ERROR_ACCESS_CONFLICT);
    res = tsim_sfile_remove(po->id, po->id_len);
    /* As OP-TEE: the handle is closed whatever the outcome. */
    tsim_storage_close(object);
    return res;
}

TEE_Result TEE_RenamePersistentObject(TEE_ObjectHandle object, const void *newObjectID,
                                      size_t newObjectIDLen)
{
    struct tsim_pobj *po = check_persistent(object);
    TEE_Result res = TEE_ERROR_GENERIC;

    if (!(object->open_flags & TEE_DATA_FLAG_ACCESS_WRITE_META) ||
        (!newObjectID && newObjectIDLen) || newObjectIDLen > TEE_OBJECT_ID_MAX_LEN)
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    check_private(TEE_MEMORY_ACCESS_READ, newObjectID, newObjectIDLen);
    if (find_open(newObjectID, newObjectIDLen))
        return TEE_ERROR_ACCESS_CONFLICT;
    /* The id is bound into the seal: write the object anew under the new id
     * (failing if that exists), then drop the old file. */
    res = tsim_sfile_write(po, newObjectID, newObjectIDLen, false);
    if (res != TEE_SUCCESS)
        return res;
    res = tsim_sfile_remove(po->id, po->id_len);
    if (res != TEE_SUCCESS) {
        (void)tsim_sfile_remove(newObjectID, newObjectIDLen);
        return res;
    }
    memset(po->id, 0, sizeof(po->id));
    if (newObjectIDLen)
        memcpy(po->id, newObjectID, newObjectIDLen);
    po->id_len = newObjectIDLen;
    return TEE_SUCCESS;
}

/* ------------------------------------------------------------------------ */
/* GP: data stream access functions                                           */

TEE_Result TEE_ReadObjectData(TEE_ObjectHandle object, void *buffer, size_t size, size_t *count)
{
    struct tsim_pobj *po = check_persistent(object);
    size_t n = 0;

    if (!(object->open_flags & TEE_DATA_FLAG_ACCESS_READ) || !count || (!buffer && size))
        TEE_Panic(TEE_ERROR_ACCESS_CONFLICT);
    check_private(TEE_MEMORY_ACCESS_WRITE, buffer, size);
    if (object->data_pos < po->data_len) {
        n = po->data_len - object->data_pos;
        if (n > size)
            n = size;
        memcpy(buffer, po->data + object->data_pos, n);
        object->data_pos += n;
    }
    *count = n;
    return TEE_SUCCESS;
}

TEE_Result TEE_WriteObjectData(TEE_ObjectHandle object, const void *buffer, size_t size)
{
    struct tsim_pobj *po = check_persistent(object);
    size_t pos = object->data_pos;
    size_t old_len = po->data_len;
    size_t overlap = 0;
    uint8_t *saved = NULL;
    TEE_Result res = TEE_ERROR_GENERIC;

    if (!(object->open_flags & TEE_DATA_FLAG_ACCESS_WRITE) || (!buffer && size))
        TEE_Panic(TEE_ERROR_ACCESS_CONFLICT);
    check_private(TEE_MEMORY_ACCESS_READ, buffer, size);
    if (size > TEE_DATA_MAX_POSITION || pos > TEE_DATA_MAX_POSITION - size)
        return TEE_ERROR_OVERFLOW;
    if (!size)
        return TEE_SUCCESS;
    if (!reserve(po, pos + size))
        return TEE_ERROR_STORAGE_NO_SPACE;
    /* Keep the bytes overwritten so that a failed commit changes nothing. */
    overlap = pos < old_len ? (old_len - pos < size ? old_len - pos : size) : 0;
    if (overlap) {
        saved = tsim_sys_malloc(overlap);
        if (!saved)
            return TEE_ERROR_STORAGE_NO_SPACE;
        memcpy(saved, po->data + pos, overlap);
    }
    if (pos > old_len)
        memset(po->data + old_len, 0, pos - old_len);
    memcpy(po->data + pos, buffer, size);
    if (pos + size > old_len)
        po->data_len = pos + size;
    res = tsim_storage_commit(po);
    if (res == TEE_SUCCESS) {
        object->data_pos = pos + size;
    } else {
        if (overlap)
            memcpy(po->data + pos, saved, overlap);
        tsim_crypto_wipe(po->data + old_len, po->data_len - old_len);
        po->data_len = old_len;
    }
    if (saved) {
        tsim_crypto_wipe(saved, overlap);
        tsim_sys_free(saved);
    }
    return res;
}

TEE_Result TEE_TruncateObjectData(TEE_ObjectHandle object, size_t size)
{
    struct tsim_pobj *po = check_persistent(object);
    size_t old_len = po->data_len;
    TEE_Result res = TEE_ERROR_GENERIC;

    if (!(object->open_flags & TEE_DATA_FLAG_ACCESS_WRITE))
        TEE_Panic(TEE_ERROR_ACCESS_CONFLICT);
    if (size > TEE_DATA_MAX_POSITION)
        return TEE_ERROR_STORAGE_NO_SPACE;
    if (size > old_len) {
        if (!reserve(po, size))
            return TEE_ERROR_STORAGE_NO_SPACE;
        memset(po->data + old_len, 0, size - old_len);
    }
    po->data_len = size;
    res = tsim_storage_commit(po);
    if (res != TEE_SUCCESS) {
        /* Shrinking left the old bytes in place; growing added zeros only. */
        po->data_len = old_len;
        return res;
    }
    if (size < old_len)
        tsim_crypto_wipe(po->data + size, old_len - size);
    return TEE_SUCCESS;
}

TEE_Result TEE_SeekObjectData(TEE_ObjectHandle object, intmax_t offset, TEE_Whence whence)
{
    struct tsim_pobj *po = check_persistent(object);
    intmax_t base = 0;

    switch (whence) {
    case TEE_DATA_SEEK_SET:
        base = 0;
        break;
    case TEE_DATA_SEEK_CUR:
        base = (intmax_t)object->data_pos;
        break;
    case TEE_DATA_SEEK_END:
        base = (intmax_t)po->data_len;
        break;
    default:
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    }
    /* base <= TEE_DATA_MAX_POSITION, so only a large offset can overflow. */
    if (offset > (intmax_t)TEE_DATA_MAX_POSITION - base)
        return TEE_ERROR_OVERFLOW;
    /* GP: a position before the start is the start. */
    object->data_pos = offset < -base ? 0 : (size_t)(base + offset);
    return TEE_SUCCESS;
}
