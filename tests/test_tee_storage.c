/*
 * test_tee_storage.c - the simulated libutee's GP secure storage (tee/ta/storage.c)
 * and device key (tee/ta/huk.c).
 *
 * Storage: round trips, OVERWRITE and ACCESS_CONFLICT, sharing rules, rename,
 * truncate/seek/write positions, delete, persistent key objects, isolation
 * between TA UUIDs, and tampering: every byte of a stored file flipped, every
 * truncation, an appended byte, two files swapped, a file moved to another TA
 * or read under another device key all give TEE_ERROR_CORRUPT_OBJECT.
 * Device key: made once, mode 0600, by exactly one of several racing
 * processes; derived TA keys stable, distinct per TA and per extra data.
 */
#define _XOPEN_SOURCE 700
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>

#include <tee_internal_api.h>
#include <tee_internal_api_extensions.h>

#include "tee_fakes.h"
#include "tsim_ta.h"

static const TEE_UUID uuid_a = {
    0x8aaaf200, 0x2450, 0x11e4, {0xab, 0xe2, 0, 2, 0xa5, 0xd5, 0xc5, 0x1b}};
static const TEE_UUID uuid_b = {
    0x8aaaf200, 0x2450, 0x11e4, {0xab, 0xe2, 0, 2, 0xa5, 0xd5, 0xc5, 0x1c}};
#define UUID_A_STR "8aaaf200-2450-11e4-abe2-0002a5d5c51b"
#define UUID_B_STR "8aaaf200-2450-11e4-abe2-0002a5d5c51c"

#define RW (TEE_DATA_FLAG_ACCESS_READ | TEE_DATA_FLAG_ACCESS_WRITE)
#define ALL (RW | TEE_DATA_FLAG_ACCESS_WRITE_META)

struct fixture {
    char root[64];   /* mkdtemp folder */
    char store[128]; /* tsim_storage_dir(), made on first use */
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    if (!f)
        return -1;
    strcpy(f->root, "/tmp/tsim_storage_XXXXXX");
    if (!mkdtemp(f->root))
        return -1;
    snprintf(f->store, sizeof(f->store), "%s/store", f->root);
    tsim_fake_set_storage_dir(f->store);
    tsim_fake_set_uuid(&uuid_a);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    tsim_fake_rmtree(f->root);
    free(f);
    assert_int_equal(tsim_fake_heap_live(), 0);
    assert_int_equal(tsim_fake_heap_unwiped_frees(), 0);
    assert_int_equal(tsim_fake_sys_live(), 0);
    return 0;
}

/* Path of object id's file for TA folder uuid_str. */
static void object_path(const struct fixture *f, const char *uuid_str, const char *id, char *out,
                        size_t size)
{
    uint8_t d[32];
    unsigned int n = 0;
    int off = 0;

    EVP_Digest(id, strlen(id), d, &n, EVP_sha256(), NULL);
    off = snprintf(out, size, "%s/%s/", f->store, uuid_str);
    for (int i = 0; i < 32; i++)
        off += snprintf(out + off, size - (size_t)off, "%02x", d[i]);
}

static bool contains(const uint8_t *buf, size_t n, const char *s)
{
    size_t len = strlen(s);

    for (size_t i = 0; i + len <= n; i++)
        if (memcmp(buf + i, s, len) == 0)
            return true;
    return false;
}

static size_t read_file(const char *path, uint8_t *buf, size_t size)
{
    FILE *fp = fopen(path, "rb");
    size_t n = 0;

    assert_non_null(fp);
    n = fread(buf, 1, size, fp);
    fclose(fp);
    return n;
}

static void write_file(const char *path, const uint8_t *buf, size_t len)
{
    FILE *fp = fopen(path, "wb");

    assert_non_null(fp);
    assert_int_equal(fwrite(buf, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
}

static void create_data(const char *id, const void *data, size_t len)
{
    TEE_ObjectHandle h = TEE_HANDLE_NULL;

    assert_int_equal(TEE_CreatePersistentObject(TEE_STORAGE_PRIVATE, id, strlen(id),
                                                ALL | TEE_DATA_FLAG_OVERWRITE, TEE_HANDLE_NULL,
                                                data, len, &h),
                     TEE_SUCCESS);
    TEE_CloseObject(h);
}

static TEE_Result open_obj(const char *id, uint32_t flags, TEE_ObjectHandle *h)
{
    return TEE_OpenPersistentObject(TEE_STORAGE_PRIVATE, id, strlen(id), flags, h);
}

/* Reads the whole data stream from position 0. */
static size_t read_all_data(TEE_ObjectHandle h, uint8_t *buf, size_t size)
{
    size_t n = 0;

    assert_int_equal(TEE_SeekObjectData(h, 0, TEE_DATA_SEEK_SET), TEE_SUCCESS);
    assert_int_equal(TEE_ReadObjectData(h, buf, size, &n), TEE_SUCCESS);
    return n;
}

/* ------------------------------------------------------------------------ */

static void test_round_trip(void **state)
{
    struct fixture *f = *state;
    TEE_ObjectHandle h = TEE_HANDLE_NULL;
    TEE_ObjectInfo info;
    uint8_t buf[64];
    char path[256];
    struct stat st;
    size_t n = 0;

    assert_int_equal(TEE_CreatePersistentObject(TEE_STORAGE_PRIVATE, "model", 5, ALL,
                                                TEE_HANDLE_NULL, "hello ", 6, &h),
                     TEE_SUCCESS);
    assert_int_equal(TEE_GetObjectInfo1(h, &info), TEE_SUCCESS);
    assert_int_equal(info.objectType, TEE_TYPE_DATA);
    assert_int_equal(info.dataSize, 6);
    assert_int_equal(info.dataPosition, 0);
    assert_int_equal(info.handleFlags,
                     TEE_HANDLE_FLAG_PERSISTENT | TEE_HANDLE_FLAG_INITIALIZED | ALL);
    assert_int_equal(TEE_SeekObjectData(h, 0, TEE_DATA_SEEK_END), TEE_SUCCESS);
    assert_int_equal(TEE_WriteObjectData(h, "world", 5), TEE_SUCCESS);
    TEE_CloseObject(h);

    /* The file: mode 0600, no plaintext in it, no temporary left. */
    object_path(f, UUID_A_STR, "model", path, sizeof(path));
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    n = read_file(path, buf, sizeof(buf));
    assert_false(contains(buf, n, "world"));
    assert_false(contains(buf, n, "model"));
    {
        char dir[256];
        DIR *d = NULL;
        struct dirent *e = NULL;
        int files = 0;

        snprintf(dir, sizeof(dir), "%s/%s", f->store, UUID_A_STR);
        d = opendir(dir);
        assert_non_null(d);
        while ((e = readdir(d)))
            files += e->d_name[0] != '.';
        closedir(d);
        assert_int_equal(files, 1);
    }

    assert_int_equal(open_obj("model", TEE_DATA_FLAG_ACCESS_READ, &h), TEE_SUCCESS);
    assert_int_equal(read_all_data(h, buf, sizeof(buf)), 11);
    assert_memory_equal(buf, "hello world", 11);
    /* Reading at the end gives 0 bytes. */
    assert_int_equal(TEE_ReadObjectData(h, buf, sizeof(buf), &n), TEE_SUCCESS);
    assert_int_equal(n, 0);
    TEE_CloseObject(h);

    /* TEE_STORAGE_PRIVATE_REE is the same store; RPMB and others do not exist. */
    assert_int_equal(TEE_OpenPersistentObject(TEE_STORAGE_PRIVATE_REE, "model", 5,
                                              TEE_DATA_FLAG_ACCESS_READ, &h),
                     TEE_SUCCESS);
    TEE_CloseObject(h);
    assert_int_equal(TEE_OpenPersistentObject(TEE_STORAGE_PRIVATE_RPMB, "model", 5,
                                              TEE_DATA_FLAG_ACCESS_READ, &h),
                     TEE_ERROR_ITEM_NOT_FOUND);
    assert_null(h);
    assert_int_equal(TEE_OpenPersistentObject(0x42, "model", 5, TEE_DATA_FLAG_ACCESS_READ, &h),
                     TEE_ERROR_ITEM_NOT_FOUND);
    assert_int_equal(open_obj("nothing", TEE_DATA_FLAG_ACCESS_READ, &h), TEE_ERROR_ITEM_NOT_FOUND);
    assert_null(h);

    /* Initial data may come from shared memory (it is copied once). */
    {
        static uint8_t shared[8] = "shared!";

        tsim_fake_set_shared(shared, sizeof(shared));
        assert_int_equal(TEE_CreatePersistentObject(TEE_STORAGE_PRIVATE, "from-shm", 8, 0,
                                                    TEE_HANDLE_NULL, shared, 7, NULL),
                         TEE_SUCCESS);
        tsim_fake_set_shared(NULL, 0);
    }

    /* Object ids: binary, empty and of the maximum length are fine. */
    {
        uint8_t id[TEE_OBJECT_ID_MAX_LEN];

        for (size_t i = 0; i < sizeof(id); i++)
            id[i] = (uint8_t)(i * 37);
        assert_int_equal(TEE_CreatePersistentObject(TEE_STORAGE_PRIVATE, id, sizeof(id), 0,
                                                    TEE_HANDLE_NULL, "x", 1, NULL),
                         TEE_SUCCESS);
        assert_int_equal(TEE_OpenPersistentObject(TEE_STORAGE_PRIVATE, id, sizeof(id),
                                                  TEE_DATA_FLAG_ACCESS_READ, &h),
                         TEE_SUCCESS);
        TEE_CloseObject(h);
        assert_int_equal(TEE_CreatePersistentObject(TEE_STORAGE_PRIVATE, NULL, 0, 0,
                                                    TEE_HANDLE_NULL, NULL, 0, NULL),
                         TEE_SUCCESS);
        assert_int_equal(
            TEE_OpenPersistentObject(TEE_STORAGE_PRIVATE, NULL, 0, TEE_DATA_FLAG_ACCESS_READ, &h),
            TEE_SUCCESS);
        assert_int_equal(TEE_GetObjectInfo1(h, &info), TEE_SUCCESS);
        assert_int_equal(info.dataSize, 0);
        TEE_CloseObject(h);
    }
}

static void test_overwrite_and_conflicts(void **state)
{
    TEE_ObjectHandle h = TEE_HANDLE_NULL;
    TEE_ObjectHandle h2 = TEE_HANDLE_NULL;
    uint8_t buf[16];

    (void)state;
    create_data("obj", "first", 5);
    assert_int_equal(TEE_CreatePersistentObject(TEE_STORAGE_PRIVATE, "obj", 3, ALL, TEE_HANDLE_NULL,
                                                "second", 6, &h),
                     TEE_ERROR_ACCESS_CONFLICT);
    assert_null(h);
    assert_int_equal(open_obj("obj", TEE_DATA_FLAG_ACCESS_READ, &h), TEE_SUCCESS);
    assert_int_equal(read_all_data(h, buf, sizeof(buf)), 5);
    assert_memory_equal(buf, "first", 5);
    /* Not even OVERWRITE replaces an object that is open. */
    assert_int_equal(TEE_CreatePersistentObject(TEE_STORAGE_PRIVATE, "obj", 3,
                                                ALL | TEE_DATA_FLAG_OVERWRITE, TEE_HANDLE_NULL,
                                                "second", 6, &h2),
                     TEE_ERROR_ACCESS_CONFLICT);
    TEE_CloseObject(h);
    assert_int_equal(TEE_CreatePersistentObject(TEE_STORAGE_PRIVATE, "obj", 3,
                                                ALL | TEE_DATA_FLAG_OVERWRITE, TEE_HANDLE_NULL,
                                                "second", 6, &h),
                     TEE_SUCCESS);
    assert_int_equal(read_all_data(h, buf, sizeof(buf)), 6);
    assert_memory_equal(buf, "second", 6);
    TEE_CloseObject(h);

    /* Sharing (GP, as OP-TEE checks it). */
    assert_int_equal(open_obj("obj", TEE_DATA_FLAG_ACCESS_READ | TEE_DATA_FLAG_SHARE_READ, &h),
                     TEE_SUCCESS);
    assert_int_equal(open_obj("obj", TEE_DATA_FLAG_ACCESS_READ | TEE_DATA_FLAG_SHARE_READ, &h2),
                     TEE_SUCCESS);
    TEE_CloseObject(h2);
    assert_int_equal(open_obj("obj", TEE_DATA_FLAG_ACCESS_READ, &h2), TEE_ERROR_ACCESS_CONFLICT);
    assert_int_equal(open_obj("obj", TEE_DATA_FLAG_ACCESS_WRITE_META, &h2),
                     TEE_ERROR_ACCESS_CONFLICT);
    TEE_CloseObject(h);
    assert_int_equal(open_obj("obj", ALL, &h), TEE_SUCCESS);
    assert_int_equal(open_obj("obj", TEE_DATA_FLAG_ACCESS_READ | TEE_DATA_FLAG_SHARE_READ, &h2),
                     TEE_ERROR_ACCESS_CONFLICT);
    TEE_CloseObject(h);

    /* Two writers that share: one sees the other's write at once. */
    assert_int_equal(open_obj("obj", RW | TEE_DATA_FLAG_SHARE_READ | TEE_DATA_FLAG_SHARE_WRITE, &h),
                     TEE_SUCCESS);
    assert_int_equal(
        open_obj("obj", RW | TEE_DATA_FLAG_SHARE_READ | TEE_DATA_FLAG_SHARE_WRITE, &h2),
        TEE_SUCCESS);
    assert_int_equal(TEE_WriteObjectData(h, "THIRD!", 6), TEE_SUCCESS);
    assert_int_equal(read_all_data(h2, buf, sizeof(buf)), 6);
    assert_memory_equal(buf, "THIRD!", 6);
    TEE_CloseObject(h);
    TEE_CloseObject(h2);
}

static void test_rename_and_delete(void **state)
{
    TEE_ObjectHandle h = TEE_HANDLE_NULL;
    uint8_t buf[16];

    (void)state;
    create_data("old", "payload", 7);
    create_data("taken", "other", 5);
    assert_int_equal(open_obj("old", ALL, &h), TEE_SUCCESS);
    assert_int_equal(TEE_RenamePersistentObject(h, "taken", 5), TEE_ERROR_ACCESS_CONFLICT);
    assert_int_equal(TEE_RenamePersistentObject(h, "old", 3), TEE_ERROR_ACCESS_CONFLICT);
    assert_int_equal(TEE_RenamePersistentObject(h, "new", 3), TEE_SUCCESS);
    /* The handle goes on working under the new name. */
    assert_int_equal(TEE_SeekObjectData(h, 0, TEE_DATA_SEEK_END), TEE_SUCCESS);
    assert_int_equal(TEE_WriteObjectData(h, "+", 1), TEE_SUCCESS);
    TEE_CloseObject(h);
    assert_int_equal(open_obj("old", TEE_DATA_FLAG_ACCESS_READ, &h), TEE_ERROR_ITEM_NOT_FOUND);
    assert_int_equal(open_obj("taken", TEE_DATA_FLAG_ACCESS_READ, &h), TEE_SUCCESS);
    assert_int_equal(read_all_data(h, buf, sizeof(buf)), 5);
    TEE_CloseObject(h);
    assert_int_equal(open_obj("new", ALL, &h), TEE_SUCCESS);
    assert_int_equal(read_all_data(h, buf, sizeof(buf)), 8);
    assert_memory_equal(buf, "payload+", 8);

    assert_int_equal(TEE_CloseAndDeletePersistentObject1(h), TEE_SUCCESS);
    assert_int_equal(open_obj("new", TEE_DATA_FLAG_ACCESS_READ, &h), TEE_ERROR_ITEM_NOT_FOUND);
    assert_int_equal(TEE_CloseAndDeletePersistentObject1(TEE_HANDLE_NULL), TEE_SUCCESS);
    /* The name is free again. */
    assert_int_equal(TEE_CreatePersistentObject(TEE_STORAGE_PRIVATE, "new", 3, 0, TEE_HANDLE_NULL,
                                                NULL, 0, NULL),
                     TEE_SUCCESS);
}

static void test_positions_truncate_seek(void **state)
{
    TEE_ObjectHandle h = TEE_HANDLE_NULL;
    TEE_ObjectInfo info;
    uint8_t data[100];
    uint8_t buf[200];
    size_t n = 0;

    (void)state;
    for (int i = 0; i < 100; i++)
        data[i] = (uint8_t)(i + 1);
    assert_int_equal(TEE_CreatePersistentObject(TEE_STORAGE_PRIVATE, "pos", 3, RW, TEE_HANDLE_NULL,
                                                data, 100, &h),
                     TEE_SUCCESS);
    assert_int_equal(TEE_SeekObjectData(h, 10, TEE_DATA_SEEK_SET), TEE_SUCCESS);
    assert_int_equal(TEE_ReadObjectData(h, buf, 5, &n), TEE_SUCCESS);
    assert_int_equal(n, 5);
    assert_memory_equal(buf, data + 10, 5);
    /* Before the start is the start. */
    assert_int_equal(TEE_SeekObjectData(h, -20, TEE_DATA_SEEK_CUR), TEE_SUCCESS);
    assert_int_equal(TEE_GetObjectInfo1(h, &info), TEE_SUCCESS);
    assert_int_equal(info.dataPosition, 0);
    assert_int_equal(TEE_SeekObjectData(h, -1000, TEE_DATA_SEEK_END), TEE_SUCCESS);
    assert_int_equal(TEE_GetObjectInfo1(h, &info), TEE_SUCCESS);
    assert_int_equal(info.dataPosition, 0);
    /* Past the end: reading gives nothing, writing fills the gap with zeros. */
    assert_int_equal(TEE_SeekObjectData(h, 10, TEE_DATA_SEEK_END), TEE_SUCCESS);
    assert_int_equal(TEE_ReadObjectData(h, buf, 5, &n), TEE_SUCCESS);
    assert_int_equal(n, 0);
    assert_int_equal(TEE_WriteObjectData(h, "Z", 1), TEE_SUCCESS);
    assert_int_equal(TEE_GetObjectInfo1(h, &info), TEE_SUCCESS);
    assert_int_equal(info.dataSize, 111);
    assert_int_equal(info.dataPosition, 111);
    assert_int_equal(read_all_data(h, buf, sizeof(buf)), 111);
    assert_memory_equal(buf, data, 100);
    for (int i = 100; i < 110; i++)
        assert_int_equal(buf[i], 0);
    assert_int_equal(buf[110], 'Z');

    /* Truncate: shorter keeps the position; longer adds zeros. */
    assert_int_equal(TEE_SeekObjectData(h, 80, TEE_DATA_SEEK_SET), TEE_SUCCESS);
    assert_int_equal(TEE_TruncateObjectData(h, 50), TEE_SUCCESS);
    assert_int_equal(TEE_GetObjectInfo1(h, &info), TEE_SUCCESS);
    assert_int_equal(info.dataSize, 50);
    assert_int_equal(info.dataPosition, 80);
    assert_int_equal(TEE_ReadObjectData(h, buf, 5, &n), TEE_SUCCESS);
    assert_int_equal(n, 0);
    assert_int_equal(TEE_TruncateObjectData(h, 60), TEE_SUCCESS);
    TEE_CloseObject(h);
    assert_int_equal(open_obj("pos", RW, &h), TEE_SUCCESS);
    assert_int_equal(read_all_data(h, buf, sizeof(buf)), 60);
    assert_memory_equal(buf, data, 50);
    for (int i = 50; i < 60; i++)
        assert_int_equal(buf[i], 0);

    /* TEE_DATA_MAX_POSITION bounds positions and writes. */
    assert_int_equal(TEE_SeekObjectData(h, (intmax_t)TEE_DATA_MAX_POSITION, TEE_DATA_SEEK_SET),
                     TEE_SUCCESS);
    assert_int_equal(TEE_SeekObjectData(h, 1, TEE_DATA_SEEK_CUR), TEE_ERROR_OVERFLOW);
    assert_int_equal(TEE_WriteObjectData(h, "x", 1), TEE_ERROR_OVERFLOW);
    assert_int_equal(TEE_SeekObjectData(h, (intmax_t)TEE_DATA_MAX_POSITION + 1, TEE_DATA_SEEK_SET),
                     TEE_ERROR_OVERFLOW);
    assert_int_equal(TEE_SeekObjectData(h, INTMAX_MAX, TEE_DATA_SEEK_END), TEE_ERROR_OVERFLOW);
    assert_int_equal(TEE_SeekObjectData(h, INTMAX_MIN, TEE_DATA_SEEK_END), TEE_SUCCESS);
    assert_int_equal(TEE_GetObjectInfo1(h, &info), TEE_SUCCESS);
    assert_int_equal(info.dataPosition, 0);
    assert_int_equal(info.dataSize, 60);
    TEE_CloseObject(h);
}

static void test_persistent_key_object(void **state)
{
    TEE_ObjectHandle key = TEE_HANDLE_NULL;
    TEE_ObjectHandle h = TEE_HANDLE_NULL;
    TEE_OperationHandle op = TEE_HANDLE_NULL;
    TEE_ObjectInfo info;
    uint8_t k1[32];
    uint8_t k2[32];
    uint8_t nonce[12] = {1, 2, 3};
    uint8_t ct1[16];
    uint8_t ct2[16];
    uint8_t tag[16];
    uint8_t buf[8];
    size_t len = 0;
    size_t tlen = 0;

    (void)state;
    assert_int_equal(TEE_AllocateTransientObject(TEE_TYPE_AES, 256, &key), TEE_SUCCESS);
    assert_int_equal(TEE_GenerateKey(key, 256, NULL, 0), TEE_SUCCESS);
    assert_int_equal(
        TEE_CreatePersistentObject(TEE_STORAGE_PRIVATE, "key", 3, ALL, key, "meta", 4, NULL),
        TEE_SUCCESS);
    len = sizeof(k1);
    assert_int_equal(TEE_GetObjectBufferAttribute(key, TEE_ATTR_SECRET_VALUE, k1, &len),
                     TEE_SUCCESS);

    assert_int_equal(open_obj("key", ALL, &h), TEE_SUCCESS);
    assert_int_equal(TEE_GetObjectInfo1(h, &info), TEE_SUCCESS);
    assert_int_equal(info.objectType, TEE_TYPE_AES);
    assert_int_equal(info.objectSize, 256);
    assert_int_equal(info.maxObjectSize, 256);
    assert_int_equal(info.dataSize, 4);
    len = sizeof(k2);
    assert_int_equal(TEE_GetObjectBufferAttribute(h, TEE_ATTR_SECRET_VALUE, k2, &len), TEE_SUCCESS);
    assert_memory_equal(k1, k2, 32);
    assert_int_equal(read_all_data(h, buf, sizeof(buf)), 4);
    assert_memory_equal(buf, "meta", 4);

    /* The persistent object is a key like the transient one. */
    for (int i = 0; i < 2; i++) {
        assert_int_equal(TEE_AllocateOperation(&op, TEE_ALG_AES_GCM, TEE_MODE_ENCRYPT, 256),
                         TEE_SUCCESS);
        assert_int_equal(TEE_SetOperationKey(op, i ? h : key), TEE_SUCCESS);
        assert_int_equal(TEE_AEInit(op, nonce, 12, 128, 0, 0), TEE_SUCCESS);
        len = 16;
        tlen = 16;
        assert_int_equal(
            TEE_AEEncryptFinal(op, "sixteen bytes!!!", 16, i ? ct2 : ct1, &len, tag, &tlen),
            TEE_SUCCESS);
        TEE_FreeOperation(op);
    }
    assert_memory_equal(ct1, ct2, 16);

    /* A usage restriction is stored with the object. */
    assert_int_equal(TEE_RestrictObjectUsage1(h, TEE_USAGE_ENCRYPT), TEE_SUCCESS);
    TEE_CloseObject(h);
    assert_int_equal(open_obj("key", TEE_DATA_FLAG_ACCESS_READ, &h), TEE_SUCCESS);
    assert_int_equal(TEE_GetObjectInfo1(h, &info), TEE_SUCCESS);
    assert_int_equal(info.objectUsage, TEE_USAGE_ENCRYPT);
    TEE_CloseObject(h);
    TEE_FreeTransientObject(key);

    /* An RSA pair: eight attributes, checked again when loaded. */
    {
        uint8_t n1[128];
        uint8_t n2[128];

        assert_int_equal(TEE_AllocateTransientObject(TEE_TYPE_RSA_KEYPAIR, 1024, &key),
                         TEE_SUCCESS);
        assert_int_equal(TEE_GenerateKey(key, 1024, NULL, 0), TEE_SUCCESS);
        assert_int_equal(
            TEE_CreatePersistentObject(TEE_STORAGE_PRIVATE, "rsa", 3, 0, key, NULL, 0, NULL),
            TEE_SUCCESS);
        assert_int_equal(open_obj("rsa", TEE_DATA_FLAG_ACCESS_READ, &h), TEE_SUCCESS);
        assert_int_equal(TEE_GetObjectInfo1(h, &info), TEE_SUCCESS);
        assert_int_equal(info.objectType, TEE_TYPE_RSA_KEYPAIR);
        assert_int_equal(info.objectSize, 1024);
        len = sizeof(n1);
        assert_int_equal(TEE_GetObjectBufferAttribute(key, TEE_ATTR_RSA_MODULUS, n1, &len),
                         TEE_SUCCESS);
        len = sizeof(n2);
        assert_int_equal(TEE_GetObjectBufferAttribute(h, TEE_ATTR_RSA_MODULUS, n2, &len),
                         TEE_SUCCESS);
        assert_memory_equal(n1, n2, 128);
        len = sizeof(n2);
        assert_int_equal(TEE_GetObjectBufferAttribute(h, TEE_ATTR_RSA_COEFFICIENT, n2, &len),
                         TEE_SUCCESS);
        TEE_CloseObject(h);
        TEE_FreeTransientObject(key);
    }
}

static void test_isolation_between_tas(void **state)
{
    struct fixture *f = *state;
    TEE_ObjectHandle h = TEE_HANDLE_NULL;
    char path_a[256];
    char path_b[256];
    uint8_t buf[512];
    size_t n = 0;

    create_data("secret", "of TA A", 7);
    tsim_fake_set_uuid(&uuid_b);
    assert_int_equal(open_obj("secret", TEE_DATA_FLAG_ACCESS_READ, &h), TEE_ERROR_ITEM_NOT_FOUND);
    /* Put A's file where B would look for that id: B's key does not open it. */
    create_data("mine", "of TA B", 7);
    object_path(f, UUID_A_STR, "secret", path_a, sizeof(path_a));
    object_path(f, UUID_B_STR, "secret", path_b, sizeof(path_b));
    n = read_file(path_a, buf, sizeof(buf));
    write_file(path_b, buf, n);
    assert_int_equal(open_obj("secret", TEE_DATA_FLAG_ACCESS_READ, &h), TEE_ERROR_CORRUPT_OBJECT);
    assert_null(h);
    /* The corrupt file is left where it is. */
    assert_int_equal(access(path_b, F_OK), 0);
    tsim_fake_set_uuid(&uuid_a);
    assert_int_equal(open_obj("secret", TEE_DATA_FLAG_ACCESS_READ, &h), TEE_SUCCESS);
    TEE_CloseObject(h);
    assert_int_equal(open_obj("mine", TEE_DATA_FLAG_ACCESS_READ, &h), TEE_ERROR_ITEM_NOT_FOUND);
}

/* Every byte flipped, every truncation, a byte appended: all refused. */
static void test_tamper_every_byte(void **state)
{
    struct fixture *f = *state;
    TEE_ObjectHandle key = TEE_HANDLE_NULL;
    TEE_ObjectHandle h = TEE_HANDLE_NULL;
    char path[256];
    uint8_t orig[512];
    uint8_t bad[513];
    uint8_t data[100];
    size_t n = 0;

    memset(data, 0x5A, sizeof(data));
    /* An object with a key attribute and data, so every part is covered. */
    assert_int_equal(TEE_AllocateTransientObject(TEE_TYPE_HMAC_SHA256, 256, &key), TEE_SUCCESS);
    assert_int_equal(TEE_GenerateKey(key, 256, NULL, 0), TEE_SUCCESS);
    assert_int_equal(TEE_CreatePersistentObject(TEE_STORAGE_PRIVATE, "weights", 7, ALL, key, data,
                                                sizeof(data), NULL),
                     TEE_SUCCESS);
    TEE_FreeTransientObject(key);
    object_path(f, UUID_A_STR, "weights", path, sizeof(path));
    n = read_file(path, orig, sizeof(orig));
    assert_true(n > 100 + 36 && n < sizeof(orig));

    for (size_t i = 0; i < n; i++) {
        memcpy(bad, orig, n);
        bad[i] ^= (uint8_t)(1u << (i % 8));
        write_file(path, bad, n);
        if (open_obj("weights", TEE_DATA_FLAG_ACCESS_READ, &h) != TEE_ERROR_CORRUPT_OBJECT)
            fail_msg("flipped byte %zu of %zu not detected", i, n);
        assert_null(h);
    }
    for (size_t len = 0; len < n; len++) {
        write_file(path, orig, len);
        if (open_obj("weights", TEE_DATA_FLAG_ACCESS_READ, &h) != TEE_ERROR_CORRUPT_OBJECT)
            fail_msg("file cut to %zu of %zu bytes not detected", len, n);
    }
    memcpy(bad, orig, n);
    bad[n] = 0;
    write_file(path, bad, n + 1);
    assert_int_equal(open_obj("weights", TEE_DATA_FLAG_ACCESS_READ, &h), TEE_ERROR_CORRUPT_OBJECT);

    /* Intact again, it opens. */
    write_file(path, orig, n);
    assert_int_equal(open_obj("weights", TEE_DATA_FLAG_ACCESS_READ, &h), TEE_SUCCESS);
    TEE_CloseObject(h);
    assert_true(tsim_fake_trace_lines() > 0); /* "Object corrupt" on the console */
}

static void test_swapped_files(void **state)
{
    struct fixture *f = *state;
    TEE_ObjectHandle h = TEE_HANDLE_NULL;
    char pa[256];
    char pb[256];
    uint8_t a[256];
    uint8_t b[256];
    size_t na = 0;
    size_t nb = 0;

    create_data("layer1", "weights of layer 1", 18);
    create_data("layer2", "weights of layer 2", 18);
    object_path(f, UUID_A_STR, "layer1", pa, sizeof(pa));
    object_path(f, UUID_A_STR, "layer2", pb, sizeof(pb));
    na = read_file(pa, a, sizeof(a));
    nb = read_file(pb, b, sizeof(b));
    write_file(pa, b, nb);
    write_file(pb, a, na);
    assert_int_equal(open_obj("layer1", TEE_DATA_FLAG_ACCESS_READ, &h), TEE_ERROR_CORRUPT_OBJECT);
    assert_int_equal(open_obj("layer2", TEE_DATA_FLAG_ACCESS_READ, &h), TEE_ERROR_CORRUPT_OBJECT);

    /* A symbolic link or a folder in place of the file is no object either. */
    assert_int_equal(unlink(pa), 0);
    assert_int_equal(symlink(pb, pa), 0);
    assert_int_equal(open_obj("layer1", TEE_DATA_FLAG_ACCESS_READ, &h), TEE_ERROR_CORRUPT_OBJECT);
    assert_int_equal(unlink(pa), 0);
    assert_int_equal(mkdir(pa, 0700), 0);
    assert_int_equal(open_obj("layer1", TEE_DATA_FLAG_ACCESS_READ, &h), TEE_ERROR_CORRUPT_OBJECT);
}

/* Documents a limit shared with OP-TEE's REE FS: an older valid version of the
 * same object, put back by the normal world, is accepted (no rollback check). */
static void test_rollback_not_detected(void **state)
{
    struct fixture *f = *state;
    TEE_ObjectHandle h = TEE_HANDLE_NULL;
    char path[256];
    uint8_t old[256];
    uint8_t buf[16];
    size_t n = 0;

    create_data("counter", "1", 1);
    object_path(f, UUID_A_STR, "counter", path, sizeof(path));
    n = read_file(path, old, sizeof(old));
    create_data("counter", "2", 1);
    write_file(path, old, n);
    assert_int_equal(open_obj("counter", TEE_DATA_FLAG_ACCESS_READ, &h), TEE_SUCCESS);
    assert_int_equal(read_all_data(h, buf, sizeof(buf)), 1);
    assert_int_equal(buf[0], '1');
    TEE_CloseObject(h);
}

static void test_device_key_change_detected(void **state)
{
    struct fixture *f = *state;
    TEE_ObjectHandle h = TEE_HANDLE_NULL;
    char huk[256];
    uint8_t other[32];

    create_data("sealed", "data", 4);
    snprintf(huk, sizeof(huk), "%s/huk", f->store);
    memset(other, 7, sizeof(other));
    write_file(huk, other, sizeof(other));
    assert_int_equal(open_obj("sealed", TEE_DATA_FLAG_ACCESS_READ, &h), TEE_ERROR_CORRUPT_OBJECT);
}

static void test_storage_unavailable(void **state)
{
    TEE_ObjectHandle h = TEE_HANDLE_NULL;

    (void)state;
    tsim_fake_set_storage_dir(NULL);
    assert_int_equal(
        TEE_CreatePersistentObject(TEE_STORAGE_PRIVATE, "x", 1, ALL, TEE_HANDLE_NULL, NULL, 0, &h),
        TEE_ERROR_STORAGE_NOT_AVAILABLE);
    assert_null(h);
    assert_int_equal(open_obj("x", TEE_DATA_FLAG_ACCESS_READ, &h), TEE_ERROR_STORAGE_NOT_AVAILABLE);
}

/* ------------------------------------------------------------------------ */
/* Misuse: GP panics                                                          */

static void m_id_too_long(void *arg)
{
    TEE_ObjectHandle h = TEE_HANDLE_NULL;
    uint8_t id[TEE_OBJECT_ID_MAX_LEN + 1] = {0};

    (void)arg;
    (void)TEE_OpenPersistentObject(TEE_STORAGE_PRIVATE, id, sizeof(id), 0, &h);
}

static void m_bad_flags(void *arg)
{
    TEE_ObjectHandle h = TEE_HANDLE_NULL;

    (void)arg;
    (void)TEE_OpenPersistentObject(TEE_STORAGE_PRIVATE, "obj", 3, TEE_DATA_FLAG_OVERWRITE, &h);
}

static void m_read_without_access(void *arg)
{
    TEE_ObjectHandle h = TEE_HANDLE_NULL;
    uint8_t buf[4];
    size_t n = 0;

    (void)arg;
    assert_int_equal(open_obj("obj", TEE_DATA_FLAG_ACCESS_WRITE, &h), TEE_SUCCESS);
    (void)TEE_ReadObjectData(h, buf, sizeof(buf), &n);
}

static void m_write_without_access(void *arg)
{
    TEE_ObjectHandle h = TEE_HANDLE_NULL;

    (void)arg;
    assert_int_equal(open_obj("obj", TEE_DATA_FLAG_ACCESS_READ, &h), TEE_SUCCESS);
    (void)TEE_WriteObjectData(h, "x", 1);
}

static void m_rename_without_meta(void *arg)
{
    TEE_ObjectHandle h = TEE_HANDLE_NULL;

    (void)arg;
    assert_int_equal(open_obj("obj", RW, &h), TEE_SUCCESS);
    (void)TEE_RenamePersistentObject(h, "other", 5);
}

static void m_delete_without_meta(void *arg)
{
    TEE_ObjectHandle h = TEE_HANDLE_NULL;

    (void)arg;
    assert_int_equal(open_obj("obj", RW, &h), TEE_SUCCESS);
    (void)TEE_CloseAndDeletePersistentObject1(h);
}

static void m_free_persistent_as_transient(void *arg)
{
    TEE_ObjectHandle h = TEE_HANDLE_NULL;

    (void)arg;
    assert_int_equal(open_obj("obj", RW, &h), TEE_SUCCESS);
    TEE_FreeTransientObject(h);
}

static void m_seek_bad_whence(void *arg)
{
    TEE_ObjectHandle h = TEE_HANDLE_NULL;

    (void)arg;
    assert_int_equal(open_obj("obj", RW, &h), TEE_SUCCESS);
    (void)TEE_SeekObjectData(h, 0, 7);
}

static void m_read_closed_handle(void *arg)
{
    TEE_ObjectHandle h = TEE_HANDLE_NULL;
    uint8_t buf[4];
    size_t n = 0;

    (void)arg;
    assert_int_equal(open_obj("obj", RW, &h), TEE_SUCCESS);
    TEE_CloseObject(h);
    (void)TEE_ReadObjectData(h, buf, sizeof(buf), &n);
}

static void m_create_from_empty_object(void *arg)
{
    TEE_ObjectHandle k = TEE_HANDLE_NULL;

    (void)arg;
    assert_int_equal(TEE_AllocateTransientObject(TEE_TYPE_AES, 128, &k), TEE_SUCCESS);
    (void)TEE_CreatePersistentObject(TEE_STORAGE_PRIVATE, "k", 1, 0, k, NULL, 0, NULL);
}

static void m_populate_persistent(void *arg)
{
    TEE_ObjectHandle h = TEE_HANDLE_NULL;
    TEE_Attribute a;
    uint8_t v[16] = {0};

    (void)arg;
    assert_int_equal(open_obj("obj", RW, &h), TEE_SUCCESS);
    TEE_InitRefAttribute(&a, TEE_ATTR_SECRET_VALUE, v, 16);
    (void)TEE_PopulateTransientObject(h, &a, 1);
}

static uint8_t shm[64]; /* stands for a memref shared with the normal world */

static void m_id_in_shared_memory(void *arg)
{
    TEE_ObjectHandle h = TEE_HANDLE_NULL;

    (void)arg;
    memcpy(shm, "obj", 3);
    tsim_fake_set_shared(shm, sizeof(shm));
    (void)TEE_OpenPersistentObject(TEE_STORAGE_PRIVATE, shm, 3, TEE_DATA_FLAG_ACCESS_READ, &h);
}

static void m_read_into_shared_memory(void *arg)
{
    TEE_ObjectHandle h = TEE_HANDLE_NULL;
    size_t n = 0;

    (void)arg;
    assert_int_equal(open_obj("obj", TEE_DATA_FLAG_ACCESS_READ, &h), TEE_SUCCESS);
    tsim_fake_set_shared(shm, sizeof(shm));
    (void)TEE_ReadObjectData(h, shm, sizeof(shm), &n);
}

static void m_write_from_shared_memory(void *arg)
{
    TEE_ObjectHandle h = TEE_HANDLE_NULL;

    (void)arg;
    assert_int_equal(open_obj("obj", RW, &h), TEE_SUCCESS);
    tsim_fake_set_shared(shm, sizeof(shm));
    (void)TEE_WriteObjectData(h, shm, 4);
}

static void test_misuse_panics(void **state)
{
    static const struct {
        const char *name;
        void (*fn)(void *);
    } cases[] = {
        {"object id of 65 bytes", m_id_too_long},
        {"open with OVERWRITE", m_bad_flags},
        {"read without ACCESS_READ", m_read_without_access},
        {"write without ACCESS_WRITE", m_write_without_access},
        {"rename without WRITE_META", m_rename_without_meta},
        {"delete without WRITE_META", m_delete_without_meta},
        {"FreeTransientObject on a persistent handle", m_free_persistent_as_transient},
        {"seek with a bad whence", m_seek_bad_whence},
        {"read through a closed handle", m_read_closed_handle},
        {"create from an uninitialized object", m_create_from_empty_object},
        {"populate a persistent object", m_populate_persistent},
        {"object id in shared memory", m_id_in_shared_memory},
        {"read into shared memory", m_read_into_shared_memory},
        {"write from shared memory", m_write_from_shared_memory},
    };

    (void)state;
    create_data("obj", "data", 4);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (!tsim_fake_panics(cases[i].fn, NULL))
            fail_msg("no TEE_Panic: %s", cases[i].name);
    }
}

/* ------------------------------------------------------------------------ */
/* Device key                                                                 */

static void test_huk_created_once_mode_0600(void **state)
{
    struct fixture *f = *state;
    char huk[256];
    struct stat st;
    uint8_t first[32];
    uint8_t again[32];
    uint8_t k1[32];
    uint8_t k2[32];
    mode_t old = umask(0);

    snprintf(huk, sizeof(huk), "%s/huk", f->store);
    assert_int_equal(stat(huk, &st), -1);
    assert_int_equal(tsim_pta_system_derive_key(&uuid_a, NULL, 0, k1, 32), TEE_SUCCESS);
    umask(old);
    assert_int_equal(stat(huk, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, 32);
    assert_int_equal(read_file(huk, first, sizeof(first)), 32);

    assert_int_equal(tsim_pta_system_derive_key(&uuid_a, NULL, 0, k2, 32), TEE_SUCCESS);
    assert_memory_equal(k1, k2, 32);
    assert_int_equal(read_file(huk, again, sizeof(again)), 32);
    assert_memory_equal(first, again, 32);
    assert_memory_not_equal(k1, first, 32);

    /* A damaged HUK is refused, never replaced. */
    write_file(huk, first, 31);
    assert_int_equal(tsim_pta_system_derive_key(&uuid_a, NULL, 0, k2, 32),
                     TEE_ERROR_STORAGE_NOT_AVAILABLE);
    assert_int_equal(stat(huk, &st), 0);
    assert_int_equal(st.st_size, 31);
    assert_int_equal(unlink(huk), 0);
    assert_int_equal(symlink("/dev/zero", huk), 0);
    assert_int_equal(tsim_pta_system_derive_key(&uuid_a, NULL, 0, k2, 32),
                     TEE_ERROR_STORAGE_NOT_AVAILABLE);
}

static void test_derived_keys(void **state)
{
    uint8_t k[6][32];
    uint8_t extra[1025];

    (void)state;
    memset(extra, 0x33, sizeof(extra));
    assert_int_equal(tsim_pta_system_derive_key(&uuid_a, NULL, 0, k[0], 32), TEE_SUCCESS);
    assert_int_equal(tsim_pta_system_derive_key(&uuid_b, NULL, 0, k[1], 32), TEE_SUCCESS);
    assert_int_equal(tsim_pta_system_derive_key(&uuid_a, "model-1", 7, k[2], 32), TEE_SUCCESS);
    assert_int_equal(tsim_pta_system_derive_key(&uuid_a, "model-2", 7, k[3], 32), TEE_SUCCESS);
    assert_int_equal(tsim_pta_system_derive_key(&uuid_a, extra, 1024, k[4], 32), TEE_SUCCESS);
    for (int i = 0; i < 5; i++)
        for (int j = i + 1; j < 5; j++)
            assert_memory_not_equal(k[i], k[j], 32);
    /* Stable, and a 16-byte key is not the start of the 32-byte one. */
    assert_int_equal(tsim_pta_system_derive_key(&uuid_a, "model-1", 7, k[5], 32), TEE_SUCCESS);
    assert_memory_equal(k[2], k[5], 32);
    assert_int_equal(tsim_pta_system_derive_key(&uuid_a, "model-1", 7, k[5], 16), TEE_SUCCESS);
    assert_memory_not_equal(k[2], k[5], 16);

    assert_int_equal(tsim_pta_system_derive_key(&uuid_a, NULL, 0, k[5], 15),
                     TEE_ERROR_BAD_PARAMETERS);
    assert_int_equal(tsim_pta_system_derive_key(&uuid_a, NULL, 0, k[5], 33),
                     TEE_ERROR_BAD_PARAMETERS);
    assert_int_equal(tsim_pta_system_derive_key(&uuid_a, extra, 1025, k[5], 32),
                     TEE_ERROR_BAD_PARAMETERS);
    assert_int_equal(tsim_pta_system_derive_key(&uuid_a, NULL, 4, k[5], 32),
                     TEE_ERROR_BAD_PARAMETERS);
}

/* Several processes make the device key at once: all end with the same. */
static void test_huk_race(void **state)
{
    struct fixture *f = *state;
    enum { N = 8 };
    int go[2];
    int res[2];
    pid_t pids[N];
    uint8_t keys[N][32];
    char dir[256];
    DIR *d = NULL;
    struct dirent *e = NULL;
    int entries = 0;

    assert_int_equal(pipe(go), 0);
    assert_int_equal(pipe(res), 0);
    for (int i = 0; i < N; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            uint8_t key[33];
            char c = 0;

            close(go[1]);
            (void)!read(go[0], &c, 1); /* returns when the parent closes go */
            key[0] = (uint8_t)i;
            if (tsim_pta_system_derive_key(&uuid_a, NULL, 0, key + 1, 32) != TEE_SUCCESS)
                _exit(1);
            _exit(write(res[1], key, sizeof(key)) == (ssize_t)sizeof(key) ? 0 : 1);
        }
    }
    close(go[0]);
    close(go[1]);
    close(res[1]);
    for (int i = 0; i < N; i++) {
        uint8_t key[33];
        int status = 0;

        assert_int_equal(read(res[0], key, sizeof(key)), (ssize_t)sizeof(key));
        memcpy(keys[key[0]], key + 1, 32);
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    close(res[0]);
    for (int i = 1; i < N; i++)
        assert_memory_equal(keys[0], keys[i], 32);

    /* One HUK, no temporary file left. */
    snprintf(dir, sizeof(dir), "%s", f->store);
    d = opendir(dir);
    assert_non_null(d);
    while ((e = readdir(d)))
        entries += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    assert_int_equal(entries, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overwrite_and_conflicts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rename_and_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_positions_truncate_seek, setup, teardown),
        cmocka_unit_test_setup_teardown(test_persistent_key_object, setup, teardown),
        cmocka_unit_test_setup_teardown(test_isolation_between_tas, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tamper_every_byte, setup, teardown),
        cmocka_unit_test_setup_teardown(test_swapped_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollback_not_detected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_device_key_change_detected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_storage_unavailable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_misuse_panics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_huk_created_once_mode_0600, setup, teardown),
        cmocka_unit_test_setup_teardown(test_derived_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_huk_race, setup, teardown),
    };

    return cmocka_run_group_tests_name("tee_storage", tests, NULL, NULL);
}
