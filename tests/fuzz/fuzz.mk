# libFuzzer targets (tests/fuzz/*.c), built with clang into build-fuzz/ only; included by the
# top Makefile.
#
#   make fuzz-short            every target for FUZZ_SHORT_SECONDS (part of `make test`)
#   make fuzz FUZZ_SECONDS=N   every target for N seconds, one after another
#   make fuzz-build            just the binaries: build-fuzz/fuzz_<target>
#
# Each run reads the seeds of tests/fuzz/corpus/<target>/ (read-only: regression inputs are
# added there by hand) and writes what it finds new into build-fuzz/corpus/<target>/; a crash
# leaves build-fuzz/artifacts/<target>-crash-*. Debian 12: clang (tools/install-deps.sh).

FUZZ_CC ?= clang
FUZZ_BUILD := build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_SHORT_SECONDS ?= 25
# The TA's heap in the fuzz build: small, so that OPEN_MODEL refuses big segments before they
# cost time (every seed fits: the batch 1-2 LeNet segments need 0.1 to 2.5 MiB).
FUZZ_TA_DATA_SIZE ?= 3145728
FUZZ_TARGETS := ta cfg data weights wire idx image

# -O1 and frame pointers: readable sanitizer reports at a useful speed. The library code is
# instrumented for coverage (fuzzer-no-link); only the target binaries link libFuzzer's main.
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_CFLAGS := -std=c11 -Wall -Wextra -ffp-contract=off -fno-math-errno \
  -D_POSIX_C_SOURCE=200809L -I. -Iinclude -Ita/include -g -O1 -fno-omit-frame-pointer \
  $(FUZZ_SAN) -fsanitize=fuzzer-no-link
FUZZ_TA_DEFS := -DCFG_DZ_TA_DATA_SIZE=$(FUZZ_TA_DATA_SIZE) -DCFG_TEE_TA_LOG_LEVEL=2

# The TA in-process: its sources, the engine, and the Internal Core API of the simulated
# libutee except the runtime parts that need a TA process (tsim_runtime.c, tsim_stack.c,
# tsim_main.c; tsim_trace.c gives way to a quiet console), replaced by ta_inproc.c.
FUZZ_TA_SRCS := $(sort $(wildcard ta/*.c)) $(sort $(wildcard dnn/*.c)) \
  $(filter-out tee/ta/tsim_runtime.c tee/ta/tsim_stack.c tee/ta/tsim_main.c tee/ta/tsim_trace.c,\
    $(sort $(wildcard tee/ta/*.c))) \
  tee/common/tsim_console.c tee/ta_header/ta_header.c tests/fuzz/ta_inproc.c \
  tests/fuzz/fuzz_common.c
# The normal world's readers: darknet formats, the engine, the .data reader, the wire codec.
FUZZ_NW_SRCS := $(sort $(wildcard darknet/*.c)) $(sort $(wildcard dnn/*.c)) \
  host/data_options.c ta/dz_wire.c ta/dz_policy.c tests/fuzz/fuzz_common.c

fuzz_obj = $(patsubst %.c,$(FUZZ_BUILD)/obj/%.o,$(1))
FUZZ_TA_OBJS := $(call fuzz_obj,$(FUZZ_TA_SRCS))
FUZZ_NW_OBJS := $(call fuzz_obj,$(FUZZ_NW_SRCS))
FUZZ_BINS := $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz_%)

$(FUZZ_BUILD)/obj/%.o: %.c tests/fuzz/fuzz.mk
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_TA_DEFS) -MMD -MP -c -o $@ $<

# The targets are held to -Werror; the code under test is gcc's to judge (its clang-only
# warnings, such as -Wsign-compare on uint32_t == int, stay warnings here).
$(FUZZ_BUILD)/obj/tests/fuzz/%.o: FUZZ_CFLAGS += -Werror

# The engine's loops (gemm, im2col, activations) and the image resampling loops compare floats and indexes billions of times:
# with libFuzzer's comparison tracing they took two thirds of the TA target's time. Its edges
# stay instrumented; its comparisons carry no input bytes worth learning anyway.
$(FUZZ_BUILD)/obj/dnn/%.o $(FUZZ_BUILD)/obj/darknet/image.o $(FUZZ_BUILD)/obj/darknet/augment.o: \
  FUZZ_CFLAGS += -fno-sanitize-coverage=trace-cmp

# ta/*.c include their own folder's headers as the TA build does (global-incdirs-y).
$(FUZZ_BUILD)/obj/ta/%.o $(FUZZ_BUILD)/obj/tests/fuzz/fuzz_ta.o: FUZZ_CFLAGS += -Ita

$(FUZZ_BUILD)/fuzz_ta: $(FUZZ_BUILD)/obj/tests/fuzz/fuzz_ta.o $(FUZZ_TA_OBJS)
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ -lcrypto

$(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/obj/tests/fuzz/fuzz_%.o $(FUZZ_NW_OBJS)
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ -lstb -lz -lm

# The seed generator (writes tests/fuzz/corpus/{ta,weights,wire,idx}): a plain program.
$(FUZZ_BUILD)/gen_seeds: $(FUZZ_BUILD)/obj/tests/fuzz/gen_seeds.o $(FUZZ_NW_OBJS)
	$(FUZZ_CC) $(FUZZ_SAN) -o $@ $^ -lstb -lz -lm

-include $(wildcard $(FUZZ_BUILD)/obj/*/*.d $(FUZZ_BUILD)/obj/*/*/*.d)

# -timeout: an input that takes seconds is a finding (a hostile file must not stall a reader);
# -rss_limit_mb: one process, 2 GiB at most, on a machine others share.
FUZZ_FLAGS = -timeout=10 -rss_limit_mb=2048 -close_fd_mask=3 -print_final_stats=1
FUZZ_MAX_LEN_ta := 8192
FUZZ_MAX_LEN_cfg := 8192
FUZZ_MAX_LEN_data := 4096
FUZZ_MAX_LEN_weights := 4096
FUZZ_MAX_LEN_wire := 4096
FUZZ_MAX_LEN_idx := 4096
FUZZ_MAX_LEN_image := 16384

# $(call fuzz_run,<target>,<seconds>)
define fuzz_run
	@mkdir -p $(FUZZ_BUILD)/corpus/$(1) $(FUZZ_BUILD)/artifacts
	@echo "== fuzz $(1) for $(2) s"
	$(FUZZ_BUILD)/fuzz_$(1) $(FUZZ_FLAGS) -max_len=$(FUZZ_MAX_LEN_$(1)) -max_total_time=$(2) \
	  -artifact_prefix=$(abspath $(FUZZ_BUILD))/artifacts/$(1)- \
	  $(abspath $(FUZZ_BUILD)/corpus/$(1) tests/fuzz/corpus/$(1)) 2>$(FUZZ_BUILD)/fuzz-$(1).log || \
	  { tail -n 60 $(FUZZ_BUILD)/fuzz-$(1).log; exit 1; }
	@grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb' $(FUZZ_BUILD)/fuzz-$(1).log

endef

.PHONY: fuzz fuzz-short fuzz-build fuzz-seeds
fuzz-build: $(FUZZ_BINS)

fuzz-short: $(FUZZ_BINS)
	$(foreach t,$(FUZZ_TARGETS),$(call fuzz_run,$(t),$(FUZZ_SHORT_SECONDS)))

fuzz: $(FUZZ_BINS)
	$(foreach t,$(FUZZ_TARGETS),$(call fuzz_run,$(t),$(FUZZ_SECONDS)))

fuzz-seeds: $(FUZZ_BUILD)/gen_seeds
	$(FUZZ_BUILD)/gen_seeds tests/fuzz/corpus
