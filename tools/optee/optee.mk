# OP-TEE: the arm64 build for a device, its install, and the check on real OP-TEE under QEMU.
# Included by the top Makefile. README "Deploying to OP-TEE" documents the targets.
#
#   make deploy-arm64 TA_DEV_KIT_DIR=<optee_os>/out/arm/export-ta_arm64 \
#                     TEEC_EXPORT=<optee_client>/out/export/usr
#       -> build-arm64/bin/darknetp (static: nothing else to copy) and
#          build-arm64/ta/5f6c0d1e-8a3b-4c27-9e4d-2b7a61c9f0d3.ta (built with CFG_WERROR=y)
#   make install DESTDIR=<rootfs> [PREFIX=/usr] [INSTALL_FROM=build-arm64]
#   make check-optee [OPTEE_QEMU=../shared/optee-qemu]   (tools/optee/check-optee.sh)

ARM64_BUILD ?= build-arm64
ARM64_CROSS ?= aarch64-linux-gnu-
# zlib, stb and libcrypto (darknetp's `seal`) for arm64 come from Debian's :arm64 packages
# (tools/optee/debian-arm64.sh), unless ARM64_SYSROOT names a sysroot that has
# usr/include/{zlib.h,stb/,openssl/}, usr/include/aarch64-linux-gnu/openssl/ and
# usr/lib/aarch64-linux-gnu/lib{z,stb,crypto}.a.
ARM64_CACHE ?= build-optee/debian
ARM64_SYSROOT ?= $(ARM64_CACHE)/sysroot
PREFIX ?= /usr/local
DESTDIR ?=
INSTALL_FROM ?= $(ARM64_BUILD)
# The dev kit's warnings are errors for the TA (DZ_TA_WERROR=n only to try a work in progress).
DZ_TA_WERROR ?= y
OPTEE_QEMU ?= ../shared/optee-qemu
DZ_TA_FILE := 5f6c0d1e-8a3b-4c27-9e4d-2b7a61c9f0d3.ta

.PHONY: deploy-arm64 install check-optee

# The programs of one build folder linked against $(TEEC_LIB): the simulator's libteec, or
# OP-TEE's with TEEC_EXPORT. deploy-arm64 builds these in $(ARM64_BUILD).
$(BUILD)/bin/darknetp: $(BUILD)/host/main.o $(BUILD)/libdarknetp.a $(TEEC_DEP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $(BUILD)/host/main.o $(BUILD)/libdarknetp.a $(TEEC_LIB) $(LDLIBS)

$(BUILD)/bin/dz-hostile: $(BUILD)/tools/optee/hostile.o $(TEEC_DEP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(TEEC_LIB) $(LDLIBS)

-include $(BUILD)/tools/optee/hostile.d

# Deterministic weights for a cfg (check-optee's AlexNet: tools/optee/gen_weights.c).
$(BUILD)/bin/dz-gen-weights: $(BUILD)/tools/optee/gen_weights.o $(BUILD)/tests/helpers/gen_weights.o \
  $(BUILD)/libdarknetp.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

-include $(BUILD)/tools/optee/gen_weights.d

deploy-arm64:
	@if [ -z "$(TA_DEV_KIT_DIR)" ] || [ -z "$(TEEC_EXPORT)" ]; then \
	  echo "deploy-arm64: set TA_DEV_KIT_DIR=<optee_os>/out/arm/export-ta_arm64 and" \
	       "TEEC_EXPORT=<optee_client>/out/export/usr (the folder with include/tee_client_api.h)"; \
	  exit 2; fi
	@test -f "$(TA_DEV_KIT_DIR)/mk/ta_dev_kit.mk" || \
	  { echo "deploy-arm64: $(TA_DEV_KIT_DIR)/mk/ta_dev_kit.mk not found"; exit 2; }
	$(MAKE) -C ta CROSS_COMPILE=$(ARM64_CROSS) TA_DEV_KIT_DIR=$(abspath $(TA_DEV_KIT_DIR)) \
	  O=$(abspath $(ARM64_BUILD))/ta CFG_WERROR=$(DZ_TA_WERROR)
	@if [ "$(ARM64_SYSROOT)" = "$(ARM64_CACHE)/sysroot" ]; then \
	  sh tools/optee/debian-arm64.sh $(ARM64_CACHE) libs; fi
	$(MAKE) BUILD=$(ARM64_BUILD) CC=$(ARM64_CROSS)gcc TEEC_EXPORT=$(abspath $(TEEC_EXPORT)) \
	  EXTRA_CFLAGS="$(EXTRA_CFLAGS) -I$(abspath $(ARM64_SYSROOT))/usr/include \
	    -I$(abspath $(ARM64_SYSROOT))/usr/include/aarch64-linux-gnu" \
	  LDLIBS="-static -L$(abspath $(ARM64_SYSROOT))/usr/lib/aarch64-linux-gnu -lstb -lz -lcrypto -lm" \
	  $(ARM64_BUILD)/bin/darknetp $(ARM64_BUILD)/bin/dz-hostile
	@echo "deploy-arm64: copy $(ARM64_BUILD)/bin/darknetp to the device's /usr/bin and" \
	  "$(ARM64_BUILD)/ta/$(DZ_TA_FILE) to its /lib/optee_armtz/ (or: make install DESTDIR=<rootfs>)"

# darknetp to $(DESTDIR)$(PREFIX)/bin, the TA to $(DESTDIR)/lib/optee_armtz (mode 444, where
# tee-supplicant looks), from $(INSTALL_FROM) (make deploy-arm64 first).
install:
	@test -f $(INSTALL_FROM)/bin/darknetp -a -f $(INSTALL_FROM)/ta/$(DZ_TA_FILE) || \
	  { echo "install: no $(INSTALL_FROM)/bin/darknetp or $(INSTALL_FROM)/ta/$(DZ_TA_FILE);" \
	         "run make deploy-arm64 first"; exit 2; }
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)/lib/optee_armtz
	install -m 755 $(INSTALL_FROM)/bin/darknetp $(DESTDIR)$(PREFIX)/bin/darknetp
	install -m 444 $(INSTALL_FROM)/ta/$(DZ_TA_FILE) $(DESTDIR)/lib/optee_armtz/$(DZ_TA_FILE)

check-optee:
	OPTEE_QEMU=$(OPTEE_QEMU) ARM64_BUILD=$(ARM64_BUILD) DZ_TA_WERROR=$(DZ_TA_WERROR) \
	  sh tools/optee/check-optee.sh
