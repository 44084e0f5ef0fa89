# `make bench`: darknetp against PyTorch, darknetp on 1 thread and on all cores (wall time,
# beside a busy-loop control), the simulated TEE's overhead (paired steps in one process,
# bench_dnn tee-pair), GEMM against the core's FMA peak, per-layer times (README.md,
# "Benchmark"). Not part of `make test`.
#   BENCH_QUICK=1       a short run (under 2 minutes on 2 cores)
#   BENCH_ROUNDS=N      rounds, alternating darknetp and PyTorch (default 5, quick 2)
#   BENCH_CSV=FILE      where the CSV goes (default $(BUILD)/bench/bench.csv)
#   BENCH_PLOT=FILE.svg an SVG chart of the comparisons
BENCH_DRIVER := $(BUILD)/tools/bench/bench_dnn

.PHONY: bench bench-deps bench-check

BENCH_DRIVER_OBJS := $(patsubst %,$(BUILD)/tools/bench/%.o,bench_dnn bench_tee bench_util fma_peak)
$(BENCH_DRIVER): $(BENCH_DRIVER_OBJS) $(BUILD)/libdarknetp.a $(TEEC_DEP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $(filter %.o,$^) $(BUILD)/libdarknetp.a $(TEEC_LIB) $(LDLIBS)

-include $(BENCH_DRIVER_OBJS:.o=.d)

# PyTorch (Debian's python3-torch) serves only the bench, so it is not in install-deps.sh.
bench-deps:
	sh tools/bench/install-deps.sh

bench: bench-deps $(BENCH_DRIVER) $(TSIM_CORE) $(TSIM_TA_BINS)
	python3 tools/bench/bench.py --driver $(BENCH_DRIVER) --out $(BUILD)/bench \
	  $(if $(BENCH_PLOT),--plot $(BENCH_PLOT))

# The bench's parser, statistics, CSV and SVG writers on canned output, and bench_dnn's
# output format on one-iteration runs, tee-pair, spin and BENCH_THREADS included (no
# timing, no PyTorch).
bench-check: $(BENCH_DRIVER) $(TSIM_CORE) $(TSIM_TA_BINS)
	python3 tools/bench/bench.py --self-test --driver $(BENCH_DRIVER)

# The share of a training step the engine splits among threads, and the speed-ups it allows,
# by Amdahl and as the tasks are cut (tools/bench/par_share.c): measured on one thread, so the
# machine's load does not enter.
PAR_SHARE := $(BUILD)/tools/bench/par_share
$(PAR_SHARE): $(BUILD)/tools/bench/par_share.o $(BUILD)/libdarknetp.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $(filter %.o,$^) $(BUILD)/libdarknetp.a $(LDLIBS)

-include $(BUILD)/tools/bench/par_share.d

.PHONY: bench-par-share
bench-par-share: $(PAR_SHARE)
	@for c in cfg/fashion_lenet.cfg:100 cfg/fashion_vgg7.cfg:50 cfg/vgg-7_cifar10.cfg:50; do \
	  $(PAR_SHARE) $${c%:*} $${c#*:} 5 2; done

# Training with every convolution one image at a time against small convolutions lowering
# several images per product (tools/bench/lower.sh), alternated, one thread.
.PHONY: bench-lower
bench-lower: $(BENCH_DRIVER)
	BENCH_DRIVER=$(BENCH_DRIVER) sh tools/bench/lower.sh $(BENCH_ROUNDS)

# Training with every image lowered twice per step against convolutions keeping their forward
# pass's columns for the backward pass (tools/bench/col_cache.sh), alternated, one thread.
.PHONY: bench-col-cache
bench-col-cache: $(BENCH_DRIVER)
	BENCH_DRIVER=$(BENCH_DRIVER) sh tools/bench/col_cache.sh $(BENCH_ROUNDS)
