# Sources of the DarkneTZ TA: its own files and the SAME engine sources the normal world
# uses (../dnn), so both worlds compute the same numbers.
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
srcs-y += fmt_float.c

srcs-y += ../dnn/activations.c
srcs-y += ../dnn/batchnorm.c
srcs-y += ../dnn/blas.c
srcs-y += ../dnn/gemm.c
srcs-y += ../dnn/im2col.c
srcs-y += ../dnn/layer.c
srcs-y += ../dnn/layer_avgpool.c
srcs-y += ../dnn/layer_connected.c
srcs-y += ../dnn/layer_convolutional.c
srcs-y += ../dnn/layer_cost.c
srcs-y += ../dnn/layer_dropout.c
srcs-y += ../dnn/layer_maxpool.c
srcs-y += ../dnn/layer_route.c
srcs-y += ../dnn/layer_shortcut.c
srcs-y += ../dnn/layer_softmax.c
srcs-y += ../dnn/math.c
srcs-y += ../dnn/network.c
srcs-y += ../dnn/rng.c
srcs-y += ../dnn/topk.c
