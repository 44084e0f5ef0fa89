/*
 * crypto_objects.c - GP Internal Core API transient objects (section 5.5-5.6
 * of the GP TEE Internal Core API v1.3.1) for the simulated libutee, as OP-TEE's
 * libutee and TEE core behave: misuse of a handle panics, bad data returns a
 * code.
 *
 * Supported types: TEE_TYPE_AES (128/192/256), TEE_TYPE_HMAC_SHA256 (192..1024
 * bits, a populated key may be shorter, as on OP-TEE), TEE_TYPE_GENERIC_SECRET
 * (0..4096), TEE_TYPE_HKDF_IKM (OP-TEE extension, 0..4096),
 * TEE_TYPE_X25519_KEYPAIR (256), TEE_TYPE_RSA_KEYPAIR and TEE_TYPE_RSA_PUBLIC_KEY
 * (512..4096).
 */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "tsim_crypto.h"

/* GP: an object's usage before any restriction. */
#define USAGE_DEFAULT 0xFFFFFFFFu

#define ATTR_REQUIRED 0x1u
#define ATTR_SIZE 0x2u      /* gives objectSize: its length in bits */
#define ATTR_BIGNUM 0x4u    /* unsigned big-endian integer: leading zeros do not count */
#define ATTR_OPT_GROUP 0x8u /* optional, but all of the group or none */
#define ATTR_GEN_OPT 0x10u  /* may be given to TEE_GenerateKey */
#define RSA_BN (ATTR_BIGNUM | ATTR_OPT_GROUP)

#define X25519_LEN 32

struct type_attr {
    uint32_t id;
    uint32_t flags;
    uint32_t fixed_len; /* bytes; 0: any length up to maxObjectSize */
};

struct type_props {
    uint32_t type;
    uint32_t quanta; /* sizes in bits are multiples of this */
    uint32_t min_size;
    uint32_t max_size;
    uint32_t nattrs;
    struct type_attr attrs[TSIM_MAX_ATTRS];
};

/* Per type: type, size quanta, min and max size (bits), attribute count, attributes. */
/* clang-format off */
static const struct type_props type_table[] = {
    {TEE_TYPE_AES, 64, 128, 256, 1,
     {{TEE_ATTR_SECRET_VALUE, ATTR_REQUIRED | ATTR_SIZE, 0}}},
    {TEE_TYPE_HMAC_SHA256, 8, 192, 1024, 1,
     {{TEE_ATTR_SECRET_VALUE, ATTR_REQUIRED | ATTR_SIZE, 0}}},
    {TEE_TYPE_GENERIC_SECRET, 8, 0, 4096, 1,
     {{TEE_ATTR_SECRET_VALUE, ATTR_REQUIRED | ATTR_SIZE, 0}}},
    {TEE_TYPE_HKDF_IKM, 8, 0, 4096, 1,
     {{TEE_ATTR_HKDF_IKM, ATTR_REQUIRED | ATTR_SIZE, 0}}},
    {TEE_TYPE_X25519_KEYPAIR, 256, 256, 256, 2,
     {{TEE_ATTR_X25519_PRIVATE_VALUE, ATTR_REQUIRED, X25519_LEN},
      {TEE_ATTR_X25519_PUBLIC_VALUE, ATTR_REQUIRED, X25519_LEN}}},
    {TEE_TYPE_RSA_PUBLIC_KEY, 1, 512, 4096, 2,
     {{TEE_ATTR_RSA_MODULUS, ATTR_REQUIRED | ATTR_SIZE | ATTR_BIGNUM, 0},
      {TEE_ATTR_RSA_PUBLIC_EXPONENT, ATTR_REQUIRED | ATTR_BIGNUM, 0}}},
    {TEE_TYPE_RSA_KEYPAIR, 1, 512, 4096, TSIM_RSA_ATTRS,
     {{TEE_ATTR_RSA_MODULUS, ATTR_REQUIRED | ATTR_SIZE | ATTR_BIGNUM, 0},
      {TEE_ATTR_RSA_PUBLIC_EXPONENT, ATTR_REQUIRED | ATTR_BIGNUM | ATTR_GEN_OPT, 0},
      {TEE_ATTR_RSA_PRIVATE_EXPONENT, ATTR_REQUIRED | ATTR_BIGNUM, 0},
      {TEE_ATTR_RSA_PRIME1, RSA_BN, 0}, {TEE_ATTR_RSA_PRIME2, RSA_BN, 0},
      {TEE_ATTR_RSA_EXPONENT1, RSA_BN, 0}, {TEE_ATTR_RSA_EXPONENT2, RSA_BN, 0},
      {TEE_ATTR_RSA_COEFFICIENT, RSA_BN, 0}}},
};
/* clang-format on */

/* Every live object handle the TA holds. */
static struct __TEE_ObjectHandle *live_objects;

/* ------------------------------------------------------------------------ */
/* Memory helpers                                                             */

void tsim_crypto_wipe(void *p, size_t n)
{
    if (p && n)
        OPENSSL_cleanse(p, n);
}

void *tsim_crypto_zalloc(size_t n)
{
    return TEE_Malloc(n, TEE_MALLOC_FILL_ZERO);
}

void tsim_crypto_free(void *p, size_t n)
{
    if (!p)
        return;
    tsim_crypto_wipe(p, n);
    TEE_Free(p);
}

/* ------------------------------------------------------------------------ */
/* Handle list                                                                */

void tsim_obj_check(TEE_ObjectHandle obj)
{
    for (const struct __TEE_ObjectHandle *o = live_objects; o; o = o->next)
        if (o == obj)
            return;
    TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
}

struct tsim_key *tsim_obj_key(TEE_ObjectHandle obj)
{
    return obj->pobj ? &obj->pobj->key : &obj->key;
}

TEE_Result tsim_obj_handle_new(TEE_ObjectHandle *out)
{
    struct __TEE_ObjectHandle *o = tsim_crypto_zalloc(sizeof(*o));

    if (!o)
        return TEE_ERROR_OUT_OF_MEMORY;
    o->next = live_objects;
    live_objects = o;
    *out = o;
    return TEE_SUCCESS;
}

void tsim_obj_handle_free(TEE_ObjectHandle obj)
{
    for (struct __TEE_ObjectHandle **pp = &live_objects; *pp; pp = &(*pp)->next) {
        if (*pp == obj) {
            *pp = obj->next;
            tsim_crypto_free(obj, sizeof(*obj));
            return;
        }
    }
    TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
}

/* ------------------------------------------------------------------------ */
/* Keys                                                                       */

static const struct type_props *find_type(uint32_t type)
{
    for (size_t i = 0; i < sizeof(type_table) / sizeof(type_table[0]); i++)
        if (type_table[i].type == type)
            return &type_table[i];
    return NULL;
}

static int find_attr(const struct type_props *p, uint32_t id)
{
    for (uint32_t i = 0; i < p->nattrs; i++)
        if (p->attrs[i].id == id)
            return (int)i;
    return -1;
}

static bool size_ok(const struct type_props *p, uint32_t size)
{
    return size % p->quanta == 0 && size >= p->min_size && size <= p->max_size;
}

TEE_Result tsim_key_init(struct tsim_key *key, uint32_t type, uint32_t max_size)
{
    const struct type_props *p = NULL;
    size_t total = 0;

    memset(key, 0, sizeof(*key));
    if (type == TEE_TYPE_DATA) {
        if (max_size)
            return TEE_ERROR_NOT_SUPPORTED;
        key->type = type;
        key->usage = USAGE_DEFAULT;
        return TEE_SUCCESS;
    }
    p = find_type(type);
    if (!p || !size_ok(p, max_size))
        return TEE_ERROR_NOT_SUPPORTED;

    for (uint32_t i = 0; i < p->nattrs; i++) {
        size_t cap = p->attrs[i].fixed_len ? p->attrs[i].fixed_len : (max_size + 7) / 8;

        key->attrs[i].id = p->attrs[i].id;
        key->attrs[i].cap = cap;
        total += cap;
    }
    if (total) {
        key->store = tsim_crypto_zalloc(total);
        if (!key->store)
            return TEE_ERROR_OUT_OF_MEMORY;
    }
    key->store_len = total;
    total = 0;
    for (uint32_t i = 0; i < p->nattrs; i++) {
        key->attrs[i].buf = key->store + total;
        total += key->attrs[i].cap;
    }
    key->type = type;
    key->max_size = max_size;
    key->usage = USAGE_DEFAULT;
    key->nattrs = p->nattrs;
    return TEE_SUCCESS;
}

void tsim_key_clear(struct tsim_key *key)
{
    tsim_crypto_wipe(key->store, key->store_len);
    for (uint32_t i = 0; i < key->nattrs; i++) {
        key->attrs[i].set = false;
        key->attrs[i].len = 0;
        key->attrs[i].a = 0;
        key->attrs[i].b = 0;
    }
    key->size = 0;
    key->initialized = false;
}

void tsim_key_release(struct tsim_key *key)
{
    tsim_crypto_free(key->store, key->store_len);
    tsim_crypto_wipe(key, sizeof(*key));
}

const struct tsim_attr *tsim_key_attr(const struct tsim_key *key, uint32_t id)
{
    for (uint32_t i = 0; i < key->nattrs; i++)
        if (key->attrs[i].id == id && key->attrs[i].set)
            return &key->attrs[i];
    return NULL;
}

/* The X25519 public value of a private scalar (RFC 7748 clamping applies). */
static bool x25519_public(const uint8_t priv[X25519_LEN], uint8_t pub[X25519_LEN])
{
    EVP_PKEY *pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv, X25519_LEN);
    size_t len = X25519_LEN;
    bool ok = false;

    if (!pk)
        return false;
    ok = EVP_PKEY_get_raw_public_key(pk, pub, &len) == 1 && len == X25519_LEN;
    EVP_PKEY_free(pk);
    return ok;
}

/* Bits of a big-endian unsigned integer. */
static uint32_t bignum_bits(const uint8_t *v, size_t len)
{
    while (len && !*v) {
        v++;
        len--;
    }
    if (!len)
        return 0;
    uint32_t bits = (uint32_t)(len - 1) * 8;
    for (uint8_t top = *v; top; top >>= 1)
        bits++;
    return bits;
}

/*
 * Value checks shared by populate and storage loading: val[i]/len[i] are the
 * candidate values of the type's attribute i (val NULL when absent). Returns
 * TEE_ERROR_BAD_PARAMETERS for an incorrect or inconsistent value, else the
 * object size in *size.
 */
static TEE_Result check_values(const struct type_props *p, const uint8_t *const val[],
                               const size_t len[], uint32_t *size)
{
    *size = 0;
    for (uint32_t i = 0; i < p->nattrs; i++) {
        if (!val[i])
            continue;
        if (p->attrs[i].fixed_len && len[i] != p->attrs[i].fixed_len)
            return TEE_ERROR_BAD_PARAMETERS;
        if (p->attrs[i].flags & ATTR_SIZE)
            *size = (p->attrs[i].flags & ATTR_BIGNUM) ? bignum_bits(val[i], len[i])
                                                      : (uint32_t)(len[i] * 8);
    }
    if (p->type == TEE_TYPE_AES && *size != 128 && *size != 192 && *size != 256)
        return TEE_ERROR_BAD_PARAMETERS;
    if (p->type == TEE_TYPE_X25519_KEYPAIR) {
        uint8_t pub[X25519_LEN];
        bool same = false;

        /* attrs[0] private, attrs[1] public: the pair must match. */
        if (!x25519_public(val[0], pub))
            return TEE_ERROR_BAD_PARAMETERS;
        same = CRYPTO_memcmp(pub, val[1], X25519_LEN) == 0;
        tsim_crypto_wipe(pub, sizeof(pub));
        if (!same)
            return TEE_ERROR_BAD_PARAMETERS;
        *size = 256;
    }
    if (p->type == TEE_TYPE_RSA_KEYPAIR || p->type == TEE_TYPE_RSA_PUBLIC_KEY) {
        /* OpenSSL must take the numbers as a key (and a pair with primes must match). */
        EVP_PKEY *pk = tsim_rsa_from_values(val, len, p->nattrs, true);

        if (!pk)
            return TEE_ERROR_BAD_PARAMETERS;
        EVP_PKEY_free(pk);
    }
    return TEE_SUCCESS;
}

TEE_Result tsim_key_copy(struct tsim_key *dst, const struct tsim_key *src)
{
    /* The same type, or the public half of a key pair. */
    bool half = dst->type == TEE_TYPE_RSA_PUBLIC_KEY && src->type == TEE_TYPE_RSA_KEYPAIR;
    const struct tsim_attr *from[TSIM_MAX_ATTRS] = {NULL};

    if ((dst->type != src->type && !half) || !src->initialized || src->size > dst->max_size)
        return TEE_ERROR_BAD_PARAMETERS;
    for (uint32_t i = 0; i < dst->nattrs; i++) {
        for (uint32_t j = 0; j < src->nattrs; j++)
            if (src->attrs[j].id == dst->attrs[i].id && src->attrs[j].set)
                from[i] = &src->attrs[j];
        if (from[i] && from[i]->len > dst->attrs[i].cap)
            return TEE_ERROR_BAD_PARAMETERS;
    }
    tsim_key_clear(dst);
    for (uint32_t i = 0; i < dst->nattrs; i++) {
        struct tsim_attr *d = &dst->attrs[i];

        if (!from[i])
            continue;
        d->set = true;
        d->len = from[i]->len;
        d->a = from[i]->a;
        d->b = from[i]->b;
        if (d->len)
            memcpy(d->buf, from[i]->buf, d->len);
    }
    dst->size = src->size;
    dst->usage = src->usage;
    dst->initialized = true;
    return TEE_SUCCESS;
}

TEE_Result tsim_key_set_ref(struct tsim_key *key, uint32_t id, const void *buf, size_t len)
{
    for (uint32_t i = 0; i < key->nattrs; i++) {
        struct tsim_attr *a = &key->attrs[i];

        if (a->id != id)
            continue;
        if ((id & TEE_ATTR_FLAG_VALUE) || len > a->cap || a->set)
            return TEE_ERROR_BAD_FORMAT;
        if (len)
            memcpy(a->buf, buf, len);
        a->len = len;
        a->set = true;
        return TEE_SUCCESS;
    }
    return TEE_ERROR_BAD_FORMAT;
}

TEE_Result tsim_key_set_value(struct tsim_key *key, uint32_t id, uint32_t a, uint32_t b)
{
    for (uint32_t i = 0; i < key->nattrs; i++) {
        struct tsim_attr *t = &key->attrs[i];

        if (t->id != id)
            continue;
        if (!(id & TEE_ATTR_FLAG_VALUE) || t->set)
            return TEE_ERROR_BAD_FORMAT;
        t->a = a;
        t->b = b;
        t->set = true;
        return TEE_SUCCESS;
    }
    return TEE_ERROR_BAD_FORMAT;
}

TEE_Result tsim_key_finish_load(struct tsim_key *key)
{
    const struct type_props *p = NULL;
    const uint8_t *val[TSIM_MAX_ATTRS] = {NULL};
    size_t len[TSIM_MAX_ATTRS] = {0};
    uint32_t size = 0;

    if (key->type == TEE_TYPE_DATA) {
        key->initialized = true;
        return TEE_SUCCESS;
    }
    p = find_type(key->type);
    if (!p)
        return TEE_ERROR_BAD_FORMAT;
    for (uint32_t i = 0; i < p->nattrs; i++) {
        if (!key->attrs[i].set) {
            if (p->attrs[i].flags & ATTR_REQUIRED)
                return TEE_ERROR_BAD_FORMAT;
            continue;
        }
        val[i] = key->attrs[i].buf;
        len[i] = key->attrs[i].len;
    }
    if (check_values(p, val, len, &size) != TEE_SUCCESS || size > key->max_size)
        return TEE_ERROR_BAD_FORMAT;
    key->size = size;
    key->initialized = true;
    return TEE_SUCCESS;
}

/* ------------------------------------------------------------------------ */
/* GP: generic object functions                                               */

static void fill_info(TEE_ObjectHandle obj, TEE_ObjectInfo *info)
{
    const struct tsim_key *key = tsim_obj_key(obj);

    memset(info, 0, sizeof(*info));
    info->objectType = key->type;
    info->objectSize = key->size;
    info->maxObjectSize = key->max_size;
    info->objectUsage = key->usage;
    if (obj->pobj) {
        info->dataSize = obj->pobj->data_len;
        info->dataPosition = obj->data_pos;
        info->handleFlags =
            TEE_HANDLE_FLAG_PERSISTENT | TEE_HANDLE_FLAG_INITIALIZED | obj->open_flags;
    } else {
        info->handleFlags = key->initialized ? TEE_HANDLE_FLAG_INITIALIZED : 0;
    }
}

TEE_Result TEE_GetObjectInfo1(TEE_ObjectHandle object, TEE_ObjectInfo *objectInfo)
{
    tsim_obj_check(object);
    if (!objectInfo)
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    fill_info(object, objectInfo);
    return TEE_SUCCESS;
}

TEE_Result TEE_RestrictObjectUsage1(TEE_ObjectHandle object, uint32_t objectUsage)
{
    struct tsim_key *key = NULL;
    uint32_t old = 0;
    TEE_Result res = TEE_SUCCESS;

    tsim_obj_check(object);
    key = tsim_obj_key(object);
    old = key->usage;
    key->usage &= objectUsage;
    if (object->pobj && key->usage != old) {
        res = tsim_storage_commit(object->pobj);
        if (res != TEE_SUCCESS)
            key->usage = old;
    }
    return res;
}

/* Checks common to reading an attribute; returns the attribute or NULL. */
static const struct tsim_attr *readable_attr(TEE_ObjectHandle object, uint32_t id, bool value)
{
    const struct tsim_key *key = NULL;

    tsim_obj_check(object);
    key = tsim_obj_key(object);
    if (!key->initialized)
        TEE_Panic(TEE_ERROR_BAD_STATE);
    if (!!(id & TEE_ATTR_FLAG_VALUE) != value)
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    /* A protected attribute leaves the object only if it is extractable. */
    if (!(id & TEE_ATTR_FLAG_PUBLIC) && !(key->usage & TEE_USAGE_EXTRACTABLE))
        TEE_Panic(TEE_ERROR_ACCESS_DENIED);
    return tsim_key_attr(key, id);
}

TEE_Result TEE_GetObjectBufferAttribute(TEE_ObjectHandle object, uint32_t attributeID, void *buffer,
                                        size_t *size)
{
    const struct tsim_attr *a = NULL;

    if (!size)
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    a = readable_attr(object, attributeID, false);
    if (!a)
        return TEE_ERROR_ITEM_NOT_FOUND;
    if (*size < a->len) {
        *size = a->len;
        return TEE_ERROR_SHORT_BUFFER;
    }
    if (a->len) {
        if (!buffer)
            TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
        memcpy(buffer, a->buf, a->len);
    }
    *size = a->len;
    return TEE_SUCCESS;
}

TEE_Result TEE_GetObjectValueAttribute(TEE_ObjectHandle object, uint32_t attributeID, uint32_t *a,
                                       uint32_t *b)
{
    const struct tsim_attr *attr = readable_attr(object, attributeID, true);

    if (!attr)
        return TEE_ERROR_ITEM_NOT_FOUND;
    if (a)
        *a = attr->a;
    if (b)
        *b = attr->b;
    return TEE_SUCCESS;
}

void TEE_CloseObject(TEE_ObjectHandle object)
{
    if (object == TEE_HANDLE_NULL)
        return;
    tsim_obj_check(object);
    if (object->pobj) {
        tsim_storage_close(object);
        return;
    }
    tsim_key_release(&object->key);
    tsim_obj_handle_free(object);
}

/* ------------------------------------------------------------------------ */
/* GP: transient object functions                                             */

TEE_Result TEE_AllocateTransientObject(TEE_ObjectType objectType, uint32_t maxObjectSize,
                                       TEE_ObjectHandle *object)
{
    TEE_ObjectHandle o = TEE_HANDLE_NULL;
    TEE_Result res = TEE_ERROR_GENERIC;

    if (!object)
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    *object = TEE_HANDLE_NULL;
    /* A data object is persistent by nature (GP 1.3.1). */
    if (objectType == TEE_TYPE_DATA)
        return TEE_ERROR_NOT_SUPPORTED;
    if (!find_type(objectType))
        return TEE_ERROR_NOT_SUPPORTED;
    res = tsim_obj_handle_new(&o);
    if (res != TEE_SUCCESS)
        return res;
    res = tsim_key_init(&o->key, objectType, maxObjectSize);
    if (res != TEE_SUCCESS) {
        tsim_obj_handle_free(o);
        return res;
    }
    *object = o;
    return TEE_SUCCESS;
}

/* Panics unless object is a live transient object handle. */
static void check_transient(TEE_ObjectHandle object)
{
    tsim_obj_check(object);
    if (object->pobj)
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
}

void TEE_FreeTransientObject(TEE_ObjectHandle object)
{
    if (object == TEE_HANDLE_NULL)
        return;
    check_transient(object);
    tsim_key_release(&object->key);
    tsim_obj_handle_free(object);
}

void TEE_ResetTransientObject(TEE_ObjectHandle object)
{
    if (object == TEE_HANDLE_NULL)
        return;
    check_transient(object);
    tsim_key_clear(&object->key);
    object->key.usage = USAGE_DEFAULT;
}

TEE_Result TEE_PopulateTransientObject(TEE_ObjectHandle object, const TEE_Attribute *attrs,
                                       uint32_t attrCount)
{
    struct tsim_key *key = NULL;
    const struct type_props *p = NULL;
    const uint8_t *val[TSIM_MAX_ATTRS] = {NULL};
    size_t len[TSIM_MAX_ATTRS] = {0};
    uint32_t size = 0;
    uint32_t group = 0;
    uint32_t group_given = 0;
    TEE_Result res = TEE_ERROR_GENERIC;

    check_transient(object);
    key = &object->key;
    if (key->initialized || (attrCount && !attrs))
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    p = find_type(key->type);
    if (!p)
        TEE_Panic(TEE_ERROR_BAD_STATE);

    /* GP panics: an attribute not of this type, given twice, too big for the
     * object's maximum size; a mandatory attribute missing. */
    for (uint32_t n = 0; n < attrCount; n++) {
        int i = find_attr(p, attrs[n].attributeID);
        const uint8_t *v = NULL;
        size_t l = 0;

        if (i < 0 || val[i])
            TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
        if (attrs[n].attributeID & TEE_ATTR_FLAG_VALUE)
            TEE_Panic(TEE_ERROR_BAD_PARAMETERS); /* no value attributes in these types */
        if (!attrs[n].content.ref.buffer && attrs[n].content.ref.length)
            TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
        /* A zero-length value still counts as present. */
        v = attrs[n].content.ref.buffer ? attrs[n].content.ref.buffer : (const uint8_t *)"";
        l = attrs[n].content.ref.length;
        while ((p->attrs[i].flags & ATTR_BIGNUM) && l > 1 && !*v) {
            v++;
            l--;
        }
        /* Fixed-length values of another length are bad data, checked below. */
        if (!p->attrs[i].fixed_len && l > key->attrs[i].cap)
            TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
        val[i] = v;
        len[i] = l;
    }
    for (uint32_t i = 0; i < p->nattrs; i++) {
        if ((p->attrs[i].flags & ATTR_REQUIRED) && !val[i])
            TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
        if (p->attrs[i].flags & ATTR_OPT_GROUP) {
            group++;
            group_given += val[i] != NULL;
        }
    }
    if (group_given && group_given != group)
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);

    /* Incorrect or inconsistent values: an error, the object stays empty. */
    res = check_values(p, val, len, &size);
    if (res != TEE_SUCCESS)
        return res;
    if (size > key->max_size)
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);

    for (uint32_t i = 0; i < p->nattrs; i++) {
        if (!val[i])
            continue;
        if (len[i])
            memcpy(key->attrs[i].buf, val[i], len[i]);
        key->attrs[i].len = len[i];
        key->attrs[i].set = true;
    }
    key->size = size;
    key->initialized = true;
    return TEE_SUCCESS;
}

void TEE_InitRefAttribute(TEE_Attribute *attr, uint32_t attributeID, const void *buffer,
                          size_t length)
{
    if (!attr || (attributeID & TEE_ATTR_FLAG_VALUE))
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    attr->attributeID = attributeID;
    attr->content.ref.buffer = (void *)buffer;
    attr->content.ref.length = length;
}

void TEE_InitValueAttribute(TEE_Attribute *attr, uint32_t attributeID, uint32_t a, uint32_t b)
{
    if (!attr || !(attributeID & TEE_ATTR_FLAG_VALUE))
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    attr->attributeID = attributeID;
    attr->content.value.a = a;
    attr->content.value.b = b;
}

TEE_Result TEE_CopyObjectAttributes1(TEE_ObjectHandle destObject, TEE_ObjectHandle srcObject)
{
    const struct tsim_key *src = NULL;

    check_transient(destObject);
    tsim_obj_check(srcObject);
    src = tsim_obj_key(srcObject);
    if (!src->initialized || destObject->key.initialized)
        TEE_Panic(TEE_ERROR_BAD_STATE);
    /* GP: incompatible type or size is a panic, not an error. */
    if (tsim_key_copy(&destObject->key, src) != TEE_SUCCESS)
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    return TEE_SUCCESS;
}

/* Fills buf with len random bytes; panics if the generator fails. */
static void random_bytes(void *buf, size_t len)
{
    uint8_t *p = buf;

    while (len) {
        int n = len > (1u << 30) ? (1 << 30) : (int)len;

        if (RAND_bytes(p, n) != 1)
            TEE_Panic(TEE_ERROR_GENERIC);
        p += n;
        len -= (size_t)n;
    }
}

void TEE_GenerateRandom(void *randomBuffer, size_t randomBufferLen)
{
    if (!randomBuffer && randomBufferLen)
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    random_bytes(randomBuffer, randomBufferLen);
}

TEE_Result TEE_GenerateKey(TEE_ObjectHandle object, uint32_t keySize, const TEE_Attribute *params,
                           uint32_t paramCount)
{
    struct tsim_key *key = NULL;
    const struct type_props *p = NULL;
    const TEE_Attribute *e = NULL;

    check_transient(object);
    key = &object->key;
    if (key->initialized || (paramCount && !params))
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    p = find_type(key->type);
    if (!p || !size_ok(p, keySize) || keySize > key->max_size)
        TEE_Panic(TEE_ERROR_NOT_SUPPORTED);
    /* The only generation parameter of these types: an RSA public exponent. */
    for (uint32_t n = 0; n < paramCount; n++) {
        int i = find_attr(p, params[n].attributeID);

        if (i < 0 || !(p->attrs[i].flags & ATTR_GEN_OPT) || e ||
            (!params[n].content.ref.buffer && params[n].content.ref.length))
            TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
        e = &params[n];
    }

    if (key->type == TEE_TYPE_RSA_KEYPAIR) {
        if (!tsim_rsa_generate(key, keySize, e ? e->content.ref.buffer : NULL,
                               e ? e->content.ref.length : 0)) {
            tsim_key_clear(key);
            /* A bad exponent is bad data; anything else should not happen. */
            if (e)
                return TEE_ERROR_BAD_PARAMETERS;
            TEE_Panic(TEE_ERROR_GENERIC);
        }
    } else if (key->type == TEE_TYPE_X25519_KEYPAIR) {
        EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
        size_t plen = X25519_LEN;
        size_t qlen = X25519_LEN;

        if (!pk)
            TEE_Panic(TEE_ERROR_GENERIC);
        if (EVP_PKEY_get_raw_private_key(pk, key->attrs[0].buf, &plen) != 1 ||
            EVP_PKEY_get_raw_public_key(pk, key->attrs[1].buf, &qlen) != 1 || plen != X25519_LEN ||
            qlen != X25519_LEN)
            TEE_Panic(TEE_ERROR_GENERIC);
        EVP_PKEY_free(pk);
        key->attrs[0].len = X25519_LEN;
        key->attrs[1].len = X25519_LEN;
        key->attrs[0].set = true;
        key->attrs[1].set = true;
    } else {
        random_bytes(key->attrs[0].buf, keySize / 8);
        key->attrs[0].len = keySize / 8;
        key->attrs[0].set = true;
    }
    key->size = keySize;
    key->initialized = true;
    return TEE_SUCCESS;
}
