# darknetp build. `make` builds bin/darknetp; `make test` runs the whole suite
# (cmocka tests, normal and under ASan/UBSan); `make check-nolibm` proves the
# engine links without libm, as the TA must.
CC ?= cc
BUILD ?= build
OPT ?= -O2
# -ffp-contract=off: no fused multiply-add, so both worlds round the same way.
# -fno-math-errno: __builtin_sqrtf becomes an instruction, not a libm call.
CFLAGS_BASE = -std=c11 -Wall -Wextra -Werror -ffp-contract=off -fno-math-errno \
              -D_POSIX_C_SOURCE=200809L -I. $(EXTRA_CFLAGS)
CFLAGS = $(CFLAGS_BASE) $(OPT) -g
# -pthread: the worker threads of host/thread_pool.c (-threads).
# -lcrypto: `darknetp seal` and `tee pubkey` (OpenSSL's libcrypto: X25519, HKDF, AES-GCM).
LDLIBS = -lstb -lz -lm -lcrypto -pthread

DNN_SRCS := $(sort $(wildcard dnn/*.c))
DK_SRCS := $(sort $(wildcard darknet/*.c))
HOST_SRCS := $(sort $(wildcard host/*.c))
# The TA protocol's codec and policy rules: the host encodes with the TA's own decoder.
WIRE_SRCS := ta/dz_wire.c ta/dz_policy.c
TEST_SRCS := $(sort $(wildcard tests/test_*.c))
TEST_HELPERS := $(sort $(wildcard tests/helpers/*.c))

DNN_OBJS := $(DNN_SRCS:%.c=$(BUILD)/%.o)
DNN_ENGINE := $(BUILD)/dnn-engine.o
DK_OBJS := $(DK_SRCS:%.c=$(BUILD)/%.o)
HOST_OBJS := $(HOST_SRCS:%.c=$(BUILD)/%.o) $(WIRE_SRCS:%.c=$(BUILD)/%.o)
HELPER_OBJS := $(TEST_HELPERS:%.c=$(BUILD)/%.o)
TEST_BINS := $(TEST_SRCS:tests/%.c=$(BUILD)/tests/%)

# Extra libraries and prerequisites for the tests; tee/tee.mk (the simulated
# TEE and its TAs) adds to these.
TEST_LIBS :=
TEST_DEPS :=
# TEEC_EXPORT=<optee_client>/out/export/usr builds darknetp against OP-TEE's libteec
# (its headers first, -lteec) instead of the simulated TEE's client library; optee_client
# 3.x's out/export (no usr/) works too. Without OP-TEE's tee_client_api.h there it stops:
# the simulator's include/tee_client_api.h has other struct layouts than OP-TEE's.
ifdef TEEC_EXPORT
TEEC_ROOT := $(patsubst %/include/tee_client_api.h,%,$(firstword $(wildcard \
  $(TEEC_EXPORT)/include/tee_client_api.h $(TEEC_EXPORT)/usr/include/tee_client_api.h)))
ifeq ($(TEEC_ROOT),)
$(error TEEC_EXPORT=$(TEEC_EXPORT) has no include/tee_client_api.h (nor usr/include/): \
  point it at optee_client's export folder, e.g. <optee_client>/out/export/usr)
endif
CFLAGS_BASE += -I$(TEEC_ROOT)/include
TEEC_DEP :=
TEEC_LIB := -L$(TEEC_ROOT)/lib -lteec
else
TEEC_DEP = $(BUILD)/libteec_sim.a
TEEC_LIB = $(BUILD)/libteec_sim.a
endif
-include tee/tee.mk
# deploy-arm64, install, check-optee (the arm64 build and real OP-TEE under QEMU).
include tools/optee/optee.mk
# fuzz, fuzz-short, fuzz-build: libFuzzer targets with clang, in build-fuzz/ (README, Fuzzing).
include tests/fuzz/fuzz.mk
# bench, bench-deps, bench-check: darknetp against PyTorch and the TEE's overhead (tools/bench/).
include tools/bench/bench.mk

# host/main.c holds main(); everything else in host/ is linked into tests too.
HOST_LIB_OBJS := $(filter-out $(BUILD)/host/main.o,$(HOST_OBJS))

.PHONY: all test test-plain test-asan test-bins-only check-nolibm check-ta-arm64 clean soak format-check
# Keep objects make would treat as intermediate (the test helpers).
.SECONDARY:
all: bin/darknetp bin/idx2png

# darknetp talks to the TA through the GP TEE Client API: the simulated TEE's
# libteec here; on an OP-TEE device link OP-TEE's libteec instead (README).
bin/darknetp: $(BUILD)/host/main.o $(BUILD)/libdarknetp.a $(TEEC_DEP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $(BUILD)/host/main.o $(BUILD)/libdarknetp.a $(TEEC_LIB) $(LDLIBS)

bin/idx2png: $(BUILD)/tools/idx2png.o $(BUILD)/libdarknetp.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# The same program inside a build folder: the sanitizer runs test this one.
$(BUILD)/darknetp: $(BUILD)/host/main.o $(BUILD)/libdarknetp.a $(BUILD)/libteec_sim.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# The engine as one relocatable object whose code starts on a 4 KiB boundary (dnn/engine.ld).
# Every program of the tree and every simulated TA built from the engine's sources link this
# same object, so each hot loop of the engine sits at the same address modulo 4 KiB in both
# worlds. Linked from separate objects, the two worlds' copies of a loop landed at different
# offsets within a cache line, and the simulated TEE's measured overhead moved by up to 5% with
# where the linker happened to put them (README, "Benchmark").
$(DNN_ENGINE): $(DNN_OBJS) dnn/engine.ld
	$(CC) -r -nostdlib -Wl,-T,dnn/engine.ld -o $@ $(DNN_OBJS)

$(BUILD)/libdarknetp.a: $(HOST_LIB_OBJS) $(DK_OBJS) $(DNN_ENGINE)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# -MMD: each object records the headers it includes, so a header change
# rebuilds only what uses it.
$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

-include $(DNN_OBJS:.o=.d) $(DK_OBJS:.o=.d) $(HOST_OBJS:.o=.d) $(HELPER_OBJS:.o=.d) \
  $(BUILD)/tools/idx2png.d

# A test binary too records its headers (-MMD: $@.d), so that a change to a shared test
# header (tests/tee_conformance.h...) rebuilds the tests that include it.
$(BUILD)/tests/%: tests/%.c $(HELPER_OBJS) $(BUILD)/libdarknetp.a $(TEST_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -MF $@.d -o $@ $< $(HELPER_OBJS) $(BUILD)/libdarknetp.a $(TEST_LIBS) -lcmocka $(LDLIBS)

-include $(TEST_BINS:=.d)

# Runs every test binary; each is a cmocka group. Fixtures live in tests/fixtures.
# The partition tests decrypt sealed blobs with OpenSSL to compare protected layers.
$(BUILD)/tests/test_partition: TEST_LIBS += -lcrypto
$(BUILD)/tests/test_ta_attacks: TEST_LIBS += -lcrypto
# test_pnet_step counts the TA commands the training loop sends: every TEEC_InvokeCommand of
# libdarknetp goes through the test's own __wrap_TEEC_InvokeCommand first.
$(BUILD)/tests/test_pnet_step: TEST_LIBS += -Wl,--wrap=TEEC_InvokeCommand

# Each run has a secure-memory pool of its own (DZ_TEE_POOL_FILE), so the plain and sanitizer
# runs, other work trees' runs and the user's own darknetp never share one and fill it.
test-plain: $(TEST_BINS) bin/darknetp $(TEST_DEPS)
	@set -e; for t in $(TEST_BINS); do echo "== $$t"; \
	  DZ_TEE_POOL_FILE=$(abspath $(BUILD))/tee-pool DZ_DARKNETP=bin/darknetp ./$$t; done

test-asan:
	$(MAKE) BUILD=build-asan OPT="-O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all" test-bins-only build-asan/darknetp
	@set -e; for t in $(TEST_SRCS:tests/%.c=build-asan/tests/%); do echo "== asan $$t"; \
	  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 DNN_TEST_QUICK=1 \
	  DZ_TEE_POOL_FILE=$(abspath build-asan)/tee-pool DZ_DARKNETP=build-asan/darknetp ./$$t; done

test-bins-only: $(TEST_BINS) $(TEST_DEPS)

# The engine must not need libm inside the TA.
check-nolibm: $(DNN_ENGINE)
	@undef=$$(nm -u $(DNN_ENGINE) | awk '{print $$2}' | sort -u | \
	  grep -E '^(exp|expf|log|logf|pow|powf|sqrt|sqrtf|tanh|tanhf|floor|floorf|fabs|fabsf|cos|cosf|sin|sinf|atan2f?|ceilf?|roundf?|fmodf?)$$' || true); \
	  if [ -n "$$undef" ]; then echo "$(DNN_ENGINE) needs libm: $$undef"; exit 1; fi; \
	  echo "check-nolibm: $(DNN_ENGINE) needs no libm"

# The TA's sources, cross-compiled for arm64, need nothing an OP-TEE TA lacks.
check-ta-arm64:
	sh tools/check-ta-symbols.sh

# Lists the tracked .c/.h files that clang-format (with .clang-format) would change; outside
# a git work tree (a release tarball), every .c/.h file of the source folders.
FORMAT_FILES = $$(git ls-files '*.c' '*.h' 2>/dev/null || \
  find dnn darknet host ta tee tests tools include -name '*.[ch]')
format-check:
	@command -v clang-format >/dev/null || { echo "format-check: clang-format not found"; exit 1; }
	@bad=""; for f in $(FORMAT_FILES); do [ -f "$$f" ] || continue; \
	  clang-format --dry-run --Werror "$$f" >/dev/null 2>&1 || bad="$$bad $$f"; done; \
	  if [ -n "$$bad" ]; then echo "format-check: differ from .clang-format (fix: clang-format -i FILE):"; \
	  for f in $$bad; do echo "  $$f"; done; exit 1; fi; \
	  echo "format-check: every tracked .c/.h file conforms"

test: format-check check-nolibm check-ta-arm64 test-plain test-asan fuzz-short

# 10,000 training iterations with layers 4..10 in the TA (a few minutes; not part of `test`).
$(BUILD)/tests/soak_tee: tests/soak_tee.c $(BUILD)/libdarknetp.a $(BUILD)/libteec_sim.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

soak: $(BUILD)/tests/soak_tee $(TEST_DEPS)
	./$(BUILD)/tests/soak_tee

clean:
	rm -rf build build-asan build-fuzz bin $(ARM64_BUILD)

# The TA tests include TA sources and headers directly.
$(BUILD)/tests/test_ta_%: $(wildcard ta/*.c ta/*.h ta/include/*.h)

# GFLOP/s of dnn_gemm, the previous gemms and the measured FMA peak (not in `test`).
$(BUILD)/tools/bench/gemm_bench: $(BUILD)/tools/bench/gemm_bench.o $(BUILD)/tools/bench/gemm_old.o \
  $(BUILD)/tools/bench/gemm_prev.o $(BUILD)/tools/bench/fma_peak.o $(DNN_ENGINE)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^

.PHONY: bench-gemm
bench-gemm: $(BUILD)/tools/bench/gemm_bench
	./$(BUILD)/tools/bench/gemm_bench

# The thread pool alone under ThreadSanitizer (not in `test`: libdarknetp is not built with it).
.PHONY: test-tsan-pool
test-tsan-pool:
	@mkdir -p $(BUILD)/tsan
	$(CC) $(CFLAGS_BASE) -O1 -g -fsanitize=thread -o $(BUILD)/tsan/test_thread_pool \
	  tests/test_thread_pool.c host/thread_pool.c -lcmocka -pthread
	./$(BUILD)/tsan/test_thread_pool

# Training images/s with 1 and 2 threads, alternated (LeNet and a VGG-7-like net; not in `test`).
.PHONY: bench-threads
bench-threads: bin/darknetp
	sh tools/bench/threads.sh
