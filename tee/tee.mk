# The simulated TEE (included by the top Makefile).
#
# Builds, inside $(BUILD):
#   libteec_sim.a        the GP TEE Client API for host programs and tests (tee/client/)
#   tee/dz-tee-core      the secure-world core process, started by TEEC_InitializeContext
#   libtsim_ta.a         the simulated libutee: TA runtime and Internal Core API (tee/ta/)
#   ta/<uuid>.ta         every TA found as <dir>/sub.mk in TSIM_TA_DIRS, linked from the
#                        sources its sub.mk lists (srcs-y, global-incdirs-y, incdirs-y,
#                        cflags-y) and libtsim_ta.a
# and bin/tee_bench. The client finds the core and the core finds TAs through paths compiled
# into each build folder (so build-asan uses its own), overridable with DZ_TEE_CORE and
# DZ_TA_DIR.

# The first rule of the Makefile decides the default goal: keep it `all`.
all:

# Debian package for -lcrypto: libssl-dev (tools/install-deps.sh).
TSIM_CORE := $(BUILD)/tee/dz-tee-core
TSIM_TA_OUT := $(BUILD)/ta
CFG_TEE_TA_LOG_LEVEL ?= 2

# The GlobalPlatform headers, for every program of the tree.
CFLAGS_BASE += -Iinclude

TSIM_DEPFLAGS = -MMD -MP
TSIM_COMMON_SRCS := $(sort $(wildcard tee/common/*.c))
TSIM_CLIENT_SRCS := $(sort $(wildcard tee/client/*.c))
TSIM_TA_RT_SRCS := $(sort $(wildcard tee/ta/*.c))
TSIM_CORE_SRCS := $(sort $(wildcard tee/core/*.c))

TSIM_COMMON_OBJS := $(TSIM_COMMON_SRCS:%.c=$(BUILD)/%.o)
TSIM_CLIENT_OBJS := $(TSIM_CLIENT_SRCS:%.c=$(BUILD)/%.o)
TSIM_TA_RT_OBJS := $(TSIM_TA_RT_SRCS:%.c=$(BUILD)/%.o)
TSIM_CORE_OBJS := $(TSIM_CORE_SRCS:%.c=$(BUILD)/%.o)

# Default locations, absolute, per build folder.
$(BUILD)/tee/client/teec_context.o: TSIM_DEFS = -DTSIM_DEFAULT_CORE='"$(abspath $(TSIM_CORE))"'
$(BUILD)/tee/core/dz_tee_core.o: TSIM_DEFS = -DTSIM_DEFAULT_TA_DIR='"$(abspath $(TSIM_TA_OUT))"'

$(BUILD)/tee/%.o: tee/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(TSIM_DEPFLAGS) $(TSIM_DEFS) -c -o $@ $<

$(BUILD)/libteec_sim.a: $(TSIM_CLIENT_OBJS) $(TSIM_COMMON_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/libtsim_ta.a: $(TSIM_TA_RT_OBJS) $(TSIM_COMMON_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(TSIM_CORE): $(TSIM_CORE_OBJS) $(TSIM_COMMON_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^

# --- Trusted Applications ----------------------------------------------------------------
# Every folder with a sub.mk under tests/ta/, and ta/ itself, is a TA.
TSIM_TA_DIRS ?= $(patsubst %/sub.mk,%,$(sort $(wildcard tests/ta/*/sub.mk) $(wildcard ta/sub.mk)))

# The TA's libc heap and TEE_Malloc share TA_DATA_SIZE; -z now keeps the dynamic linker's
# lazy binding off the small TA stack. No -lm: OP-TEE TAs have no libm.
TSIM_TA_LDFLAGS := -Wl,-z,now \
  $(foreach f,malloc calloc realloc free memalign aligned_alloc posix_memalign,-Wl,--wrap=$(f))
TSIM_TA_LDLIBS := -lcrypto
TSIM_TA_CFLAGS = $(CFLAGS) $(TSIM_DEPFLAGS) -DCFG_TEE_TA_LOG_LEVEL=$(CFG_TEE_TA_LOG_LEVEL)

tsim_relpath = $(patsubst $(CURDIR)/%,%,$(abspath $(1)))
tsim_binary = $(strip $(shell sed -n 's/^[[:space:]]*BINARY[[:space:]]*[:?]*=[[:space:]]*\([0-9a-fA-F-]*\).*/\1/p' $(1)/Makefile | head -n 1))

# $(call tsim_ta_rules,<dir>): reads <dir>/sub.mk as OP-TEE's build does and links the TA.
define tsim_ta_rules
srcs-y :=
global-incdirs-y :=
incdirs-y :=
cflags-y :=
include $(1)/sub.mk
TSIM_UUID_$(1) := $(call tsim_binary,$(1))
ifeq ($$(TSIM_UUID_$(1)),)
$$(error $(1)/Makefile has no BINARY = <uuid>)
endif
TSIM_OBJDIR_$(1) := $(BUILD)/ta-obj/$$(TSIM_UUID_$(1))
TSIM_ALL_SRCS_$(1) := $$(foreach s,$$(srcs-y),$$(call tsim_relpath,$(1)/$$(s)))
# A TA built from the engine's sources (dnn/) links the normal world's own engine object,
# $(DNN_ENGINE), instead of compiling them again: the same code at the same offsets in both
# worlds (top Makefile). Its sub.mk must then list every engine source, as the dev kit needs.
TSIM_ENGINE_SRCS_$(1) := $$(filter dnn/%.c,$$(TSIM_ALL_SRCS_$(1)))
ifneq ($$(TSIM_ENGINE_SRCS_$(1)),)
ifneq ($$(sort $$(TSIM_ENGINE_SRCS_$(1))),$(DNN_SRCS))
$$(error $(1)/sub.mk lists only part of the engine's sources; missing: \
  $$(filter-out $$(TSIM_ENGINE_SRCS_$(1)),$(DNN_SRCS)))
endif
endif
TSIM_ENGINE_$(1) := $$(if $$(TSIM_ENGINE_SRCS_$(1)),$(DNN_ENGINE))
TSIM_SRCS_$(1) := $$(filter-out dnn/%.c,$$(TSIM_ALL_SRCS_$(1)))
TSIM_OBJS_$(1) := $$(patsubst %.c,$$(TSIM_OBJDIR_$(1))/%.o,$$(TSIM_SRCS_$(1)))
TSIM_INC_$(1) := $$(foreach d,$$(global-incdirs-y) $$(incdirs-y),-I$$(call tsim_relpath,$(1)/$$(d)))
TSIM_CF_$(1) := $$(cflags-y)
TSIM_TA_BINS += $(TSIM_TA_OUT)/$$(TSIM_UUID_$(1)).ta
TSIM_TA_DEPS += $$(TSIM_OBJS_$(1):.o=.d) $$(TSIM_OBJDIR_$(1))/ta_header.d

$$(TSIM_OBJS_$(1)): $$(TSIM_OBJDIR_$(1))/%.o: %.c
	@mkdir -p $$(dir $$@)
	$$(CC) $$(TSIM_TA_CFLAGS) $$(TSIM_INC_$(1)) $$(TSIM_CF_$(1)) -c -o $$@ $$<

$$(TSIM_OBJDIR_$(1))/ta_header.o: tee/ta_header/ta_header.c
	@mkdir -p $$(dir $$@)
	$$(CC) $$(TSIM_TA_CFLAGS) $$(TSIM_INC_$(1)) -c -o $$@ $$<

$(TSIM_TA_OUT)/$$(TSIM_UUID_$(1)).ta: $$(TSIM_OBJS_$(1)) $$(TSIM_ENGINE_$(1)) $$(TSIM_OBJDIR_$(1))/ta_header.o \
  $(BUILD)/libtsim_ta.a
	@mkdir -p $$(dir $$@)
	$$(CC) $$(CFLAGS) -o $$@ $$(TSIM_OBJS_$(1)) $$(TSIM_ENGINE_$(1)) $$(TSIM_OBJDIR_$(1))/ta_header.o \
	  $(BUILD)/libtsim_ta.a $$(TSIM_TA_LDFLAGS) $$(TSIM_TA_LDLIBS)
endef

TSIM_TA_BINS :=
TSIM_TA_DEPS :=
$(foreach d,$(TSIM_TA_DIRS),$(eval $(call tsim_ta_rules,$(d))))
srcs-y :=
global-incdirs-y :=
incdirs-y :=
cflags-y :=

# --- Tools, tests, default goal -----------------------------------------------------------
bin/tee_bench: $(BUILD)/tools/tee_bench.o $(BUILD)/libteec_sim.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^

$(BUILD)/tools/tee_bench.o: tools/tee_bench.c $(wildcard include/*.h tests/ta/conformance/include/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

TEST_LIBS += $(BUILD)/libteec_sim.a
TEST_DEPS += $(TSIM_CORE) $(TSIM_TA_BINS)

all: $(TSIM_CORE) $(TSIM_TA_BINS) bin/tee_bench

-include $(TSIM_COMMON_OBJS:.o=.d) $(TSIM_CLIENT_OBJS:.o=.d) $(TSIM_TA_RT_OBJS:.o=.d) \
  $(TSIM_CORE_OBJS:.o=.d) $(TSIM_TA_DEPS)

# --- Unit tests of the TA-side crypto, storage and device key -----------------------------
# (tests/tee_unit.mk: links tee/ta/crypto_*.c, storage*.c, huk.c with fakes of the runtime
# into tests/test_tee_crypto and tests/test_tee_storage.)
-include tests/tee_unit.mk
# (tests/ta_sized.mk: the DarkneTZ TA again with 12 MiB, 1 MiB and 192 KiB TA_DATA_SIZE, in
# $(BUILD)/ta-12m, ta-1m and ta-small.)
-include tests/ta_sized.mk

# Tests rebuild when the GP headers or a test TA's command header change.
$(filter $(BUILD)/tests/test_tee%,$(TEST_BINS)): $(wildcard include/*.h tests/ta/*/include/*.h)

# Where this build's TAs are, for the test that copies one.
$(BUILD)/tests/test_tee_ta: CFLAGS += -DTSIM_TEST_TA_DIR='"$(abspath $(TSIM_TA_OUT))"'
