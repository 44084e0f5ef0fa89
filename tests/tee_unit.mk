# Unit tests of the simulated libutee's cryptography, secure storage and device
# key (tee/ta/crypto_*.c, storage*.c, huk.c). Those sources are linked straight
# into the two test programs together with small fakes of the TA runtime
# (tests/tee_fakes/), so the tests need no TA process; the end-to-end path
# through a TA is the conformance suite's. Included from the end of tee/tee.mk.
TEE_UNIT_SRCS := tee/ta/crypto_objects.c tee/ta/crypto_operations.c tee/ta/crypto_derive.c \
                 tee/ta/crypto_rsa.c tee/ta/storage.c tee/ta/storage_file.c tee/ta/huk.c \
                 tests/tee_fakes/tee_fakes.c
TEE_UNIT_OBJS := $(TEE_UNIT_SRCS:%.c=$(BUILD)/tee_unit/%.o)
TEE_UNIT_LIB := $(BUILD)/tee_unit/libtee_unit.a
TEE_UNIT_TESTS := $(BUILD)/tests/test_tee_crypto $(BUILD)/tests/test_tee_storage
TEE_UNIT_INC := -Iinclude -Itee/ta -Itests/tee_fakes

$(BUILD)/tee_unit/%.o: %.c $(wildcard include/*.h tee/ta/*.h tests/tee_fakes/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(TEE_UNIT_INC) -c -o $@ $<

$(TEE_UNIT_LIB): $(TEE_UNIT_OBJS)
	rm -f $@ && ar rcs $@ $^

# The top Makefile's pattern rule builds and links these; they also need the
# library above, the headers' folders and libcrypto.
$(TEE_UNIT_TESTS): $(TEE_UNIT_LIB)
$(TEE_UNIT_TESTS): CFLAGS += $(TEE_UNIT_INC)
$(TEE_UNIT_TESTS): TEST_LIBS += $(TEE_UNIT_LIB) -lcrypto
