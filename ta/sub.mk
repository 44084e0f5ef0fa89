# Sources of the DarkneTZ TA: its own files and the SAME engine sources the normal world
# uses (../dnn), so both worlds compute the same numbers. (The simulated build links the
# normal world's engine object instead of these, tee/tee.mk; the dev kit compiles them.)
global-incdirs-y += include
global-incdirs-y += ..

# No fused multiply-add and no errno from math builtins: both worlds round identically and
# the engine needs no libm (a TA has none; a libm call fails the link).
cflags-y += -ffp-contract=off -fno-math-errno

srcs-y += entry.c
srcs-y += model.c
srcs-y += commands.c
srcs-y += output_policy.c
srcs-y += seal.c
srcs-y += stream.c
srcs-y += stream_resident.c
srcs-y += stream_sealed.c
srcs-y += stream_rekey.c
srcs-y += provision.c
srcs-y += rollback.c
srcs-y += fmt_float.c
# The protocol's codec and policy rules, compiled into the host too (one codec, two worlds).
srcs-y += dz_wire.c
srcs-y += dz_policy.c

# The engine's files by name: one list for OP-TEE's dev kit and the simulated build.
dz-engine := activations antialias batchnorm blas conv_cache conv_lower conv_sliding conv_winograd \
	conv_winograd_grad gemm im2col layer \
	layer_activation layer_avgpool layer_connected layer_convolutional layer_cost layer_crop \
	layer_dropout layer_l2norm layer_local layer_maxpool layer_normalization layer_reorg \
	layer_route layer_sam layer_scale_channels layer_shortcut layer_shortcut_multi layer_softmax \
	layer_upsample \
	math network parallel rng tiles \
	topk

srcs-y += $(patsubst %,../dnn/%.c,$(dz-engine))
# Objects of ../dnn/X.c go to $(O)/dnn/X.o. By default the dev kit names an object after its
# source path ($(O)/../dnn/X.o, outside $(O)); oname-<source>-y is the dev kit's own way to name
# it instead (mk/subdir.mk). The simulated build (tee/tee.mk) names objects itself.
$(foreach f,$(dz-engine),$(eval oname-../dnn/$(f).c-y := dnn/$(f).o))
