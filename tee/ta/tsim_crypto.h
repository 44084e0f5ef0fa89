/*
 * tsim_crypto.h - internals shared by the simulated libutee's cryptography
 * (crypto_objects.c, crypto_operations.c), secure storage (storage.c) and
 * device key (huk.c). Not a TA-facing header: TAs see only the GP API.
 *
 * Memory: object and operation handles, and the key material inside them,
 * live in the TA heap (TEE_Malloc, so they count against TA_DATA_SIZE as the
 * libutee handle structs do on OP-TEE) and are wiped before TEE_Free. The data
 * stream of an open persistent object lives in ordinary process memory
 * (malloc, wiped on free): on OP-TEE it is held by the TEE core, not by the
 * TA heap, so a TA sized for OP-TEE must not run out of heap here because of it.
 *
 * Handles are validated against lists of live handles before any use, so a
 * stale, forged or NULL handle makes TEE_Panic, never a wild dereference.
 * TA entry points of one instance are not run concurrently (as OP-TEE does
 * without TA_FLAG_CONCURRENT), so the lists need no lock.
 */
#ifndef TSIM_CRYPTO_H
#define TSIM_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/types.h>

#include <tee_api_defines_extensions.h>
#include <tee_internal_api.h>

/* Most attributes any supported object type has (an RSA key pair). */
#define TSIM_MAX_ATTRS 8
#define TSIM_RSA_ATTRS 8

/* One attribute of an object. Reference attributes point into the owning
 * struct tsim_key's store; value attributes use a and b. */
struct tsim_attr {
    uint32_t id;
    bool set;
    uint32_t a;
    uint32_t b;
    uint8_t *buf; /* into tsim_key.store, capacity cap bytes */
    size_t len;
    size_t cap;
};

/* Type, sizes, usage and attribute values of a key object. The store is
 * allocated once for maxObjectSize (TEE_AllocateTransientObject), so populate,
 * generate and copy never allocate. */
struct tsim_key {
    uint32_t type;     /* TEE_TYPE_* */
    uint32_t size;     /* objectSize in bits, 0 until initialized */
    uint32_t max_size; /* maxObjectSize in bits */
    uint32_t usage;    /* TEE_USAGE_* bits */
    bool initialized;
    uint32_t nattrs;
    struct tsim_attr attrs[TSIM_MAX_ATTRS];
    uint8_t *store; /* TEE_Malloc'd, wiped on free */
    size_t store_len;
};

/* A persistent object while at least one handle is open on it. */
struct tsim_pobj {
    uint8_t id[TEE_OBJECT_ID_MAX_LEN];
    size_t id_len;
    uint32_t flags; /* TEE_DATA_FLAG_* of the first opener, for sharing checks */
    unsigned int refcount;
    struct tsim_key key; /* TEE_TYPE_DATA when created without attributes */
    uint8_t *data;       /* malloc'd data stream, wiped on free */
    size_t data_len;
    size_t data_cap;
    struct tsim_pobj *next;
};

/* A transient or persistent object handle. */
struct __TEE_ObjectHandle {
    struct tsim_key key;    /* transient objects only */
    struct tsim_pobj *pobj; /* persistent objects only */
    uint32_t open_flags;    /* persistent: TEE_DATA_FLAG_* of this handle */
    size_t data_pos;        /* persistent: this handle's data position */
    struct __TEE_ObjectHandle *next;
};

/* --- crypto_objects.c: key objects and the object handle list --------- */

/* Panics unless obj is a live object handle. */
void tsim_obj_check(TEE_ObjectHandle obj);
/* The key part of a live object (its own, or its persistent object's). */
struct tsim_key *tsim_obj_key(TEE_ObjectHandle obj);
/* Allocates a zeroed handle (TEE_Malloc) and puts it on the live list. */
TEE_Result tsim_obj_handle_new(TEE_ObjectHandle *out);
/* Takes a handle off the live list, wipes and frees it (not its pobj). */
void tsim_obj_handle_free(TEE_ObjectHandle obj);

/* Checks that type/max_size may be allocated and allocates the store:
 * TEE_ERROR_NOT_SUPPORTED or TEE_ERROR_OUT_OF_MEMORY. TEE_TYPE_DATA needs
 * max_size 0 and has no store. */
TEE_Result tsim_key_init(struct tsim_key *key, uint32_t type, uint32_t max_size);
/* Wipes the attribute values; the key becomes uninitialized. */
void tsim_key_clear(struct tsim_key *key);
/* Wipes and frees the store; the struct is zeroed. */
void tsim_key_release(struct tsim_key *key);
/* Copies src's attributes into the uninitialized dst. TEE_ERROR_BAD_PARAMETERS
 * when the types are not compatible or src is larger than dst's max size. */
TEE_Result tsim_key_copy(struct tsim_key *dst, const struct tsim_key *src);
/* The attribute id of key, or NULL. */
const struct tsim_attr *tsim_key_attr(const struct tsim_key *key, uint32_t id);
/* Sets a reference attribute of an uninitialized key from raw bytes, without
 * the GP checks (storage loading, key derivation). TEE_ERROR_BAD_FORMAT when
 * id is not an attribute of the type or len exceeds its capacity. */
TEE_Result tsim_key_set_ref(struct tsim_key *key, uint32_t id, const void *buf, size_t len);
/* Sets a value attribute likewise. */
TEE_Result tsim_key_set_value(struct tsim_key *key, uint32_t id, uint32_t a, uint32_t b);
/* After loading attributes with tsim_key_set_*: checks that the required ones
 * are present and consistent, sets size and marks the key initialized.
 * TEE_ERROR_BAD_FORMAT otherwise. */
TEE_Result tsim_key_finish_load(struct tsim_key *key);

/* --- crypto_operations.c: operation handles -------------------------------- */

/* An operation handle (GP TEE_OperationHandle). */
struct __TEE_OperationHandle {
    TEE_OperationInfo info;
    uint32_t state;         /* TEE_OPERATION_STATE_* */
    struct tsim_key key;    /* the operation's copy of its key */
    EVP_CIPHER_CTX *cipher; /* ciphers and AE */
    EVP_MD_CTX *md;         /* digests */
    EVP_MAC_CTX *mac;       /* MACs */
    EVP_PKEY *pkey;         /* RSA: the key set, in OpenSSL's form */
    size_t block;           /* cipher block size, 1 for stream modes */
    size_t buffered;        /* input bytes the cipher holds, < block */
    struct __TEE_OperationHandle *next;
};

/* Panics unless op is a live operation handle. */
void tsim_op_check(TEE_OperationHandle op);
/* Panics (TEE_ERROR_BAD_STATE) unless cond: a call in the wrong state. */
void tsim_op_require(bool cond);
/* The operation key's attribute id; panics if there is none. */
const struct tsim_attr *tsim_op_secret(const TEE_OperationHandle op, uint32_t id);

/* --- crypto_rsa.c: RSA through OpenSSL ------------------------------------ */

/* An OpenSSL RSA key from big-endian values in the type table's order (n, e,
 * d, p, q, dp, dq, qinv; NULL when absent; count of them). With check, a pair
 * given with its primes must pass OpenSSL's pairwise check. NULL if invalid. */
EVP_PKEY *tsim_rsa_from_values(const uint8_t *const val[], const size_t len[], size_t count,
                               bool check);
/* The OpenSSL key of an initialized RSA key object, or NULL. */
EVP_PKEY *tsim_rsa_from_key(const struct tsim_key *key);
/* Generates a bits-bit pair with public exponent e (65537 if e_len is 0) into
 * the uninitialized RSA key pair key. */
bool tsim_rsa_generate(struct tsim_key *key, uint32_t bits, const uint8_t *e, size_t e_len);
/* Modulus size in bytes. */
size_t tsim_rsa_size(const EVP_PKEY *pkey);
/* RSAES-OAEP, SHA-256 for hash and MGF1; *out_len in: room, out: bytes. 1 on
 * success, 0 on failure. */
int tsim_rsa_oaep(EVP_PKEY *pkey, bool encrypt, const void *label, size_t label_len,
                  const uint8_t *in, size_t in_len, uint8_t *out, size_t *out_len);

/* --- storage_file.c: the files behind persistent objects ------------------ */

/* Seals po (key and data) into the file of object id. replace: atomically
 * over an existing file; else TEE_ERROR_ACCESS_CONFLICT if the object exists. */
TEE_Result tsim_sfile_write(const struct tsim_pobj *pobj, const uint8_t *id, size_t id_len,
                            bool replace);
/* Reads, authenticates and parses the file of object id into pobj's key and
 * data: TEE_ERROR_ITEM_NOT_FOUND, TEE_ERROR_CORRUPT_OBJECT, ... */
TEE_Result tsim_sfile_read(struct tsim_pobj *pobj, const uint8_t *id, size_t id_len);
/* Removes the file of object id (none is fine). */
TEE_Result tsim_sfile_remove(const uint8_t *id, size_t id_len);

/* --- storage.c -------------------------------------------------------- */

/* Closes a persistent object handle (TEE_CloseObject on a persistent one). */
void tsim_storage_close(TEE_ObjectHandle obj);
/* Writes a persistent object's metadata and data back (after a usage change). */
TEE_Result tsim_storage_commit(struct tsim_pobj *pobj);

/* --- huk.c: hardware unique key, subkeys, UUID bytes ------------------- */

/* Domain-separated uses of the HUK. */
enum tsim_huk_usage {
    TSIM_HUK_TA_UNIQUE = 1, /* PTA_SYSTEM_DERIVE_TA_UNIQUE_KEY */
    TSIM_HUK_STORAGE = 2,   /* the per-TA secure storage key */
};

/* Derives key_len (1..255*32) bytes from the HUK for usage, TA uuid and extra
 * data. TEE_ERROR_STORAGE_NOT_AVAILABLE when the HUK file cannot be created or
 * read, TEE_ERROR_BAD_PARAMETERS on bad lengths. */
TEE_Result tsim_huk_subkey(enum tsim_huk_usage usage, const TEE_UUID *ta, const void *extra,
                           size_t extra_len, void *key, size_t key_len);

/* Writes uuid's 16 bytes in RFC 4122 order (big-endian fields). */
void tsim_huk_uuid_bytes(const TEE_UUID *uuid, uint8_t out[16]);
/* Writes uuid as OP-TEE names TA folders: 36 lowercase characters and NUL. */
void tsim_storage_uuid_str(const TEE_UUID *uuid, char out[37]);
/* mkdir -p with mode 0700 for every folder it creates. 0, or -1 with errno. */
int tsim_storage_mkdirs(const char *path);

/* --- helpers ------------------------------------------------------------ */

/* Wipes n bytes in a way the compiler may not drop. */
void tsim_crypto_wipe(void *p, size_t n);
/* TEE_Malloc(n, TEE_MALLOC_FILL_ZERO). */
void *tsim_crypto_zalloc(size_t n);
/* Wipes n bytes of p, then TEE_Free. Accepts NULL. */
void tsim_crypto_free(void *p, size_t n);

#endif
