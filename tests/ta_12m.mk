# The DarkneTZ TA built a second time with CFG_DZ_TA_DATA_SIZE = 12 MiB, for the tests that
# need a TA of that size (issue 11: AlexNet's classifier head streamed through it), in
# $(BUILD)/ta-12m/<uuid>.ta; a test points the simulated core at it with DZ_TA_DIR.
# Included by tee/tee.mk after its TA rules (it reuses the TA's objects and flags).
#
# TA12M_DATA_SIZE=BYTES on make's command line builds another size there (check-optee's
# DZ_OPTEE_AX_TA_DATA_SIZE); remove $(BUILD)/ta-12m-obj first, the objects do not know it.
# Only the sources that include user_ta_header_defines.h read TA_DATA_SIZE: those are
# compiled again with the size; every other object is the default TA's.
TA12M_DATA_SIZE ?= 12582912
TA12M_OUT := $(BUILD)/ta-12m
TA12M_OBJDIR := $(BUILD)/ta-12m-obj
TA12M_UUID := $(TSIM_UUID_ta)
TA12M_SIZED_SRCS := $(shell grep -l user_ta_header_defines ta/*.c)
TA12M_SIZED_OBJS := $(TA12M_SIZED_SRCS:%.c=$(TA12M_OBJDIR)/%.o)
TA12M_OBJS := $(filter-out $(TA12M_SIZED_SRCS:%.c=$(TSIM_OBJDIR_ta)/%.o),$(TSIM_OBJS_ta)) \
  $(TA12M_SIZED_OBJS) $(TA12M_OBJDIR)/ta_header.o
TA12M_TA := $(TA12M_OUT)/$(TA12M_UUID).ta

$(TA12M_SIZED_OBJS): $(TA12M_OBJDIR)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(TSIM_TA_CFLAGS) $(TSIM_INC_ta) $(TSIM_CF_ta) -DCFG_DZ_TA_DATA_SIZE=$(TA12M_DATA_SIZE) -c -o $@ $<

$(TA12M_OBJDIR)/ta_header.o: tee/ta_header/ta_header.c
	@mkdir -p $(dir $@)
	$(CC) $(TSIM_TA_CFLAGS) $(TSIM_INC_ta) -DCFG_DZ_TA_DATA_SIZE=$(TA12M_DATA_SIZE) -c -o $@ $<

$(TA12M_TA): $(TA12M_OBJS) $(BUILD)/libtsim_ta.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $(TA12M_OBJS) $(BUILD)/libtsim_ta.a $(TSIM_TA_LDFLAGS) $(TSIM_TA_LDLIBS)

TEST_DEPS += $(TA12M_TA)
-include $(TA12M_SIZED_OBJS:.o=.d) $(TA12M_OBJDIR)/ta_header.d

# tests/test_cli_alexnet runs darknetp against it.
$(BUILD)/tests/test_cli_alexnet: CFLAGS += -DTA12M_DIR='"$(abspath $(TA12M_OUT))"'
