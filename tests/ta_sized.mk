# The DarkneTZ TA built again with another CFG_DZ_TA_DATA_SIZE, for the tests that need a TA
# of that size (issue 11), in $(BUILD)/ta-<name>/<uuid>.ta; a test points the simulated core at
# it with DZ_TA_DIR. Included by tee/tee.mk after its TA rules (it reuses the TA's objects and
# flags). Only the sources that include user_ta_header_defines.h read TA_DATA_SIZE: those are
# compiled again with the size; every other object is the default TA's.
#   ta-12m: 12 MiB, AlexNet's classifier head streamed through it (tests/test_cli_alexnet.c).
#           TA12M_DATA_SIZE=BYTES on make's command line builds another size there
#           (check-optee's DZ_OPTEE_AX_TA_DATA_SIZE); remove $(BUILD)/ta-12m-obj first, the
#           objects do not know it.
#   ta-1m:  1 MiB, too small for the seed LeNet's layers 4..10 resident at training batch 100
#           (1125680 bytes) but not streamed (1016240): darknetp must choose streaming by
#           itself (tests/test_cli_stream_train.c).
#   ta-small: 192 KiB, too small for those layers resident even at batch 1 (266792 bytes):
#           a training save predicts streamed, a sealed pair trains on streamed
#           (tests/test_cli_stream_train.c).
TA12M_DATA_SIZE ?= 12582912
TA1M_DATA_SIZE := 1048576
TASMALL_DATA_SIZE := 196608
TA_SIZED_SRCS := $(shell grep -l user_ta_header_defines ta/*.c)
TA_SIZED_UUID := $(TSIM_UUID_ta)

# $(call ta_sized,NAME,BYTES): the rules of $(BUILD)/ta-NAME/<uuid>.ta.
define ta_sized
$(TA_SIZED_SRCS:%.c=$(BUILD)/ta-$(1)-obj/%.o): $(BUILD)/ta-$(1)-obj/%.o: %.c
	@mkdir -p $$(dir $$@)
	$$(CC) $$(TSIM_TA_CFLAGS) $$(TSIM_INC_ta) $$(TSIM_CF_ta) -DCFG_DZ_TA_DATA_SIZE=$(2) -c -o $$@ $$<

$(BUILD)/ta-$(1)-obj/ta_header.o: tee/ta_header/ta_header.c
	@mkdir -p $$(dir $$@)
	$$(CC) $$(TSIM_TA_CFLAGS) $$(TSIM_INC_ta) -DCFG_DZ_TA_DATA_SIZE=$(2) -c -o $$@ $$<

$(BUILD)/ta-$(1)/$(TA_SIZED_UUID).ta: $(filter-out $(TA_SIZED_SRCS:%.c=$(TSIM_OBJDIR_ta)/%.o),$(TSIM_OBJS_ta)) \
  $(TSIM_ENGINE_ta) $(TA_SIZED_SRCS:%.c=$(BUILD)/ta-$(1)-obj/%.o) $(BUILD)/ta-$(1)-obj/ta_header.o $(BUILD)/libtsim_ta.a
	@mkdir -p $$(dir $$@)
	$$(CC) $$(CFLAGS) -o $$@ $$(filter %.o,$$^) $(BUILD)/libtsim_ta.a $$(TSIM_TA_LDFLAGS) $$(TSIM_TA_LDLIBS)

TEST_DEPS += $(BUILD)/ta-$(1)/$(TA_SIZED_UUID).ta
-include $(TA_SIZED_SRCS:%.c=$(BUILD)/ta-$(1)-obj/%.d) $(BUILD)/ta-$(1)-obj/ta_header.d
endef

$(eval $(call ta_sized,12m,$(TA12M_DATA_SIZE)))
$(eval $(call ta_sized,1m,$(TA1M_DATA_SIZE)))
$(eval $(call ta_sized,small,$(TASMALL_DATA_SIZE)))

# The tests that run darknetp against them.
$(BUILD)/tests/test_cli_alexnet: CFLAGS += -DTA12M_DIR='"$(abspath $(BUILD)/ta-12m)"'
$(BUILD)/tests/test_cli_stream_train: CFLAGS += -DTA1M_DIR='"$(abspath $(BUILD)/ta-1m)"' \
  -DTA_SMALL_DIR='"$(abspath $(BUILD)/ta-small)"'
