# bnn-serve - build, test, run. Objects go to $(BUILD); variants (ASan, TSan,
# fuzzing) build into their own directories via BUILD=... and CFLAGS=...
#
#   make run     install what is missing, build, serve the shipped model on :8080
#   make test    install what is missing, build, run every test suite
#   make format-check / size-check   the house rules on formatting and size
#   make bench   benchmarks (not tests): model speed, HTTP throughput
#   make train   retrain the shipped weights with the default recipe
.DELETE_ON_ERROR:
# Keep objects of tools and tests (intermediate in the pattern chains) so
# that a second make does not rebuild them.
.SECONDARY:
.SUFFIXES:
.DEFAULT_GOAL := all

BUILD   ?= build
CC      ?= cc
# The product is portable: x86-64-v2 (any x86-64 of the last ~12 years) for
# everything, and our own kernels (model/kernels.c) compiled once per code
# path and chosen at run time by model/cpu.c for the CPU, as OpenBLAS does
# with its GEMMs (DYNAMIC_ARCH). `make native` builds a -march=native variant
# in build/native for comparison (make bench runs both).
TARGET_ARCH_NAME := $(shell $(CC) -dumpmachine 2>/dev/null)
ifneq ($(filter x86_64-%,$(TARGET_ARCH_NAME)),)
OPT     ?= -O2 -march=x86-64-v2
CPU_PATHS := baseline avx2 avx512
else
OPT     ?= -O2
CPU_PATHS := baseline
endif
CFLAGS  ?= $(OPT) -g
# Each path's target flags, added after CFLAGS (baseline: the build's own).
CPU_FLAGS_baseline ?=
CPU_FLAGS_avx2     ?= -march=x86-64-v3
CPU_FLAGS_avx512   ?= -march=x86-64-v4 -mprefer-vector-width=512
WARN    := -std=c17 -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes \
           -Wmissing-prototypes -Wwrite-strings
ifdef WERROR
WARN    += -Werror
endif
PKGS    := libmicrohttpd jansson libpng openblas nettle
# Lazy (=) so that pkg-config runs only after `make deps` has installed them.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   = $(shell pkg-config --libs $(PKGS))
CPPFLAGS_ALL = -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L $(PKG_CFLAGS)
CFLAGS_ALL   = $(WARN) $(CFLAGS) $(CPPFLAGS_ALL) -MMD -MP
LDLIBS_ALL   = $(PKG_LIBS) -lz -lm -lpthread

# Who may include whom (issue 10). model/ is the runtime the daemon links
# (libbnn.a); model/lab/ the lab - training, evaluation, corruptions,
# calibration, MNIST IDX - that only the tools and tests link (libbnnlab.a).
# Each directory is compiled with the include path of what it may use, so
# that a wrong include fails the build: the runtime sees only model/, the
# daemon model/ and service/, the lab and the tools model/ and model/lab/,
# the tests everything.
INC_RUNTIME := -Imodel
INC_LAB     := -Imodel -Imodel/lab
INC_SERVICE := -Imodel -Iservice
INC_TESTS   := -Imodel -Imodel/lab -Iservice
$(BUILD)/model/%.o:       INC = $(INC_RUNTIME)
$(BUILD)/model/lab/%.o:   INC = $(INC_LAB)
$(BUILD)/model/tools/%.o: INC = $(INC_LAB)
$(BUILD)/service/%.o:     INC = $(INC_SERVICE)
$(BUILD)/tests/%.o:       INC = $(INC_TESTS)

MODEL_SRC   := $(filter-out model/kernels.c,$(wildcard model/*.c))
LAB_SRC     := $(wildcard model/lab/*.c)
SERVICE_SRC := $(filter-out service/main.c,$(wildcard service/*.c))
KERNEL_OBJ  := $(CPU_PATHS:%=$(BUILD)/model/kernels-%.o)
MODEL_OBJ   := $(MODEL_SRC:%.c=$(BUILD)/%.o) $(KERNEL_OBJ)
LAB_OBJ     := $(LAB_SRC:%.c=$(BUILD)/%.o)
SERVICE_OBJ := $(SERVICE_SRC:%.c=$(BUILD)/%.o)
LIBBNN      := $(BUILD)/libbnn.a
LIBLAB      := $(BUILD)/libbnnlab.a
LIBSERVICE  := $(BUILD)/libservice.a
TOOLS       := $(patsubst model/tools/%.c,$(BUILD)/%,$(wildcard model/tools/*.c))
SERVER      := $(BUILD)/bnn-serve
UNIT_TESTS  := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.c))
WEIGHTS     := model/weights/mnist-bnn.safetensors
DATA        := build/data/mnist

.PHONY: all native deps data run test check unit-tests tests-build bench train fuzz load report clean \
        check-asan check-tsan format format-check size-check fuzz-build fuzz-bins fuzz-smoke

all: $(SERVER) $(TOOLS)

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) $(INC) -c $< -o $@

# model/kernels.c once per code path (model/cpu.h). -fno-math-errno lets
# the scalar fallback's sqrt be the instruction.
$(BUILD)/model/kernels-%.o: model/kernels.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) $(INC) $(CPU_FLAGS_$*) -fno-math-errno -DBNN_KERNEL_PATH=$* -c $< -o $@

$(LIBBNN): $(MODEL_OBJ)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(LIBLAB): $(LAB_OBJ)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(LIBSERVICE): $(SERVICE_OBJ)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(SERVER): $(BUILD)/service/main.o $(LIBSERVICE) $(LIBBNN)
	$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS_ALL)

# The daemon links the runtime only; the tools and tests the lab too.
$(BUILD)/%: $(BUILD)/model/tools/%.o $(LIBLAB) $(LIBBNN)
	$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS_ALL)

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(LIBSERVICE) $(LIBLAB) $(LIBBNN)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS_ALL) -lcmocka

tests-build: all $(UNIT_TESTS)

# The same programs built for this machine only (-march=native everywhere;
# the avx2 and avx512 kernel paths also native, minus AVX-512 for avx2), to
# measure what the portable build gives up.
NATIVE_FLAGS := BUILD=build/native OPT="-O2 -march=native" CPU_FLAGS_avx512="-march=native" \
                CPU_FLAGS_avx2="-march=native -mno-avx512f"
native:
	@$(MAKE) --no-print-directory $(NATIVE_FLAGS) all

deps:
	@scripts/deps.sh all

data:
	@scripts/fetch-mnist.sh $(DATA)

run: 
	@scripts/deps.sh build
	@$(MAKE) --no-print-directory all
	$(SERVER) --model $(WEIGHTS) $(RUN_ARGS)

# The one test command (README, .ci/run): every suite, plus the sanitizer
# builds. Each stage prints "N passed, N failed, N skipped" and appends its
# counts to TEST_TALLY ("STAGE PASSED FAILED SKIPPED UNLISTED"); the total
# over all stages comes last. Any failure, or any skip that
# tests/allowed-skips.txt does not list with its reason, fails the target.
test: export TEST_TALLY = $(CURDIR)/$(BUILD)/test-tally
test:
	@scripts/deps.sh all
	@$(MAKE) --no-print-directory format-check size-check
	@scripts/npm-deps.sh
	@$(MAKE) --no-print-directory data
	@$(MAKE) --no-print-directory WERROR=1 tests-build
	@mkdir -p $(BUILD) && rm -f $(TEST_TALLY)
	@tests/run.sh $(BUILD)
	@$(MAKE) --no-print-directory fuzz-smoke
	@$(MAKE) --no-print-directory check-asan
	@$(MAKE) --no-print-directory check-tsan
	@awk '{ printf "  %s: %d passed, %d failed, %d skipped\n", $$1, $$2, $$3, $$4; \
	        p += $$2; f += $$3; s += $$4; u += $$5 } \
	  END { print "all stages:"; \
	        if (u) print u " skip(s) not listed in tests/allowed-skips.txt (see the stages above)"; \
	        print p " passed, " f " failed, " s " skipped"; exit (f > 0 || u > 0 || p == 0) }' $(TEST_TALLY)

unit-tests: tests-build
	@tests/run.sh $(BUILD) unit

# Sanitizer reports go to files (log_path) as well as failing the process, so
# that a report from a daemon an integration test started (whose stderr the
# test may never read) still fails the target. BNN_SANITIZER tells tests that
# everything runs 2-15x slower.
sanitizer_verdict = rc=$$?; \
	  if ls $(1)/* >/dev/null 2>&1; then \
	    echo "sanitizer reports in $(1):"; head -n 40 $(1)/*; rc=1; \
	  else echo "sanitizer reports: none"; fi; exit $$rc

check-asan:
	@$(MAKE) --no-print-directory BUILD=build/asan CC=clang WERROR=1 \
	  CFLAGS="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined" \
	  LDFLAGS="-fsanitize=address,undefined" tests-build
	@rm -rf build/asan/sanitizer-reports && mkdir -p build/asan/sanitizer-reports
	@BNN_SANITIZER=address \
	  ASAN_OPTIONS=detect_leaks=1:log_path=$(CURDIR)/build/asan/sanitizer-reports/asan \
	  UBSAN_OPTIONS=print_stacktrace=1:log_path=$(CURDIR)/build/asan/sanitizer-reports/ubsan \
	  tests/run.sh build/asan; $(call sanitizer_verdict,build/asan/sanitizer-reports)

check-tsan:
	@$(MAKE) --no-print-directory BUILD=build/tsan CC=clang WERROR=1 \
	  CFLAGS="-O1 -g -fsanitize=thread" LDFLAGS="-fsanitize=thread" tests-build
	@rm -rf build/tsan/sanitizer-reports && mkdir -p build/tsan/sanitizer-reports
	@BNN_SANITIZER=thread \
	  TSAN_OPTIONS=second_deadlock_stack=1:log_path=$(CURDIR)/build/tsan/sanitizer-reports/tsan \
	  tests/run.sh build/tsan concurrency; $(call sanitizer_verdict,build/tsan/sanitizer-reports)

# Fuzzing (issue #4): tests/fuzz/fuzz_NAME.c -> build/fuzz/fuzz_NAME, libFuzzer
# with ASan + UBSan, linked against libraries built the same way (coverage
# inside them). tests/fuzz/run.sh replays tests/fuzz/regressions/NAME, then
# fuzzes each harness for FUZZ_SECONDS from tests/fuzz/corpus/NAME, leak
# detection on, and prints execs and coverage; any finding fails the target.
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 20
FUZZ_CFLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_BINS = $(patsubst tests/fuzz/%.c,$(BUILD)/%,$(wildcard tests/fuzz/fuzz_*.c))

$(BUILD)/fuzz_%: tests/fuzz/fuzz_%.c $(LIBSERVICE) $(LIBLAB) $(LIBBNN)
	$(CC) $(WARN) $(CFLAGS) $(CPPFLAGS_ALL) $(INC_TESTS) -fsanitize=fuzzer -o $@ $< $(LIBSERVICE) $(LIBLAB) $(LIBBNN) \
	  $(LDFLAGS) $(LDLIBS_ALL)

fuzz-bins: $(FUZZ_BINS)

fuzz-build:
	@$(MAKE) --no-print-directory BUILD=build/fuzz CC=clang WERROR=1 \
	  CFLAGS="$(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link" LDFLAGS="-fsanitize=address,undefined" fuzz-bins

fuzz: fuzz-build
	@tests/fuzz/run.sh build/fuzz $(FUZZ_SECONDS)

fuzz-smoke: fuzz-build
	@tests/fuzz/run.sh build/fuzz $(FUZZ_SMOKE_SECONDS)

bench: all native
	@scripts/deps.sh all
	@tests/bench/run.sh $(BUILD) build/native

# Load and soak over loopback (bounded in time; see tests/load/run.sh).
load: all data
	@scripts/deps.sh all
	@tests/load/run.sh $(BUILD)

train: all data
	$(BUILD)/bnn-train --data $(DATA) --out $(WEIGHTS) --log $(WEIGHTS:.safetensors=.train.csv) $(TRAIN_ARGS)

# Robustness report (issues 5, 9): what callers get, through the daemon's
# path, on clean, corrupted, rotated, out-of-distribution and no-digit
# pictures; figures and numbers into docs/. REPORT_MODEL must carry a
# calibrated policy (bnn-train, or bnn-calibrate --write-meta). Env: SAMPLES,
# MODEL_ONLY_SAMPLES, LIMIT, ROT_LIMIT, THREADS.
REPORT_MODEL ?= $(WEIGHTS)
report: all data
	MODEL=$(REPORT_MODEL) DATA=$(DATA) scripts/report.sh $(BUILD)

clean:
	rm -rf build/bnn-serve build/model build/service build/tests build/*.a build/asan build/tsan build/fuzz \
	  build/native

# House rules (issue 10), the first step of `make test`: C
# sources clang-format clean (.clang-format), and in model/ and service/
# (tools included) no function over MAX_FUNCTION_LINES lines (pmccabe's
# column 5) and no C file over MAX_FILE_LINES lines. Each lists its
# offenders and fails when there is one.
FORMAT_SRC = $(shell find model service tests/unit tests/fuzz -name '*.[ch]' -not -path '*/corpus/*' | sort)
SIZE_SRC   = $(shell find model service -name '*.[ch]' | sort)
MAX_FUNCTION_LINES := 80
MAX_FILE_LINES     := 600

format:
	clang-format -i $(FORMAT_SRC)

format-check:
	@command -v clang-format >/dev/null || { echo "format-check: clang-format missing (make deps)"; exit 2; }
	@bad=0; for f in $(FORMAT_SRC); do \
	  n=$$(clang-format --dry-run --Werror "$$f" 2>&1 | grep -c 'clang-format-violations'); \
	  if [ "$$n" -gt 0 ]; then echo "  $$f: $$n place(s) differ from .clang-format"; bad=$$((bad + 1)); fi; \
	done; \
	if [ "$$bad" -gt 0 ]; then \
	  echo "format-check: $$bad of $(words $(FORMAT_SRC)) files not clang-format clean" \
	       "(clang-format --dry-run FILE shows where, make format fixes them)"; exit 1; fi; \
	echo "format-check: $(words $(FORMAT_SRC)) files clang-format clean"

size-check:
	@command -v pmccabe >/dev/null || { echo "size-check: pmccabe missing (make deps)"; exit 2; }
	@pmccabe $(SIZE_SRC) | sort -k5,5nr | awk -F '\t' -v max=$(MAX_FUNCTION_LINES) \
	  '$$5 > max { printf "  %s: %d lines (max %d)\n", $$6, $$5, max; n++ } \
	   END { printf "size-check: %d function(s) over %d lines\n", n, max; exit n > 0 }'; fn=$$?; \
	wc -l $(SIZE_SRC) | sort -nr | awk -v max=$(MAX_FILE_LINES) \
	  '$$2 != "total" && $$1 > max { printf "  %s: %d lines (max %d)\n", $$2, $$1, max; n++ } \
	   END { printf "size-check: %d file(s) over %d lines\n", n, max; exit n > 0 }'; fl=$$?; \
	[ "$$fn" -eq 0 ] && [ "$$fl" -eq 0 ]

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
