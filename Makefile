# attn - build, test, benchmark.
#   make            ./attn
#   make test       the tests (tests/run.sh), 2 at a time; last line
#                   "N passed, N failed, N skipped"
#   make test-slow  the slow suites tests/run.sh names (SLOW)
#   make test-aarch64  the AArch64 build's tests under qemu (tests/platform/t_aarch64.sh)
#   make bench      speed table against peers (see tools/bench.sh)
#   make static     ./attn-static, statically linked
#   make install PREFIX=/usr/local
#   make CROSS=aarch64-linux-gnu-   cross-build (build-aarch64/attn)
CROSS   ?=
CC      := $(CROSS)gcc
PREFIX  ?= /usr/local
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -ffp-contract=off -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Wall -Wextra -I. -I/usr/include/stb
LDLIBS  := -lm -lpthread
# Header dependencies from the compiler: each .o gets a .d beside it; a program
# compiled and linked in one step gets $(B)/deps/<name>.d (not beside it, so
# tests/run.sh's build/tests/unit/test_* stays programs only).
DEPFLAGS = -MMD -MP
LINKDEP  = -MMD -MP -MT $@ -MF $(B)/deps/$(@F).d
ARCH    := $(shell $(CC) -dumpmachine | cut -d- -f1)
B       := build$(if $(CROSS),-$(ARCH))

CLI_SRC   := attn.c attn_cli.c $(sort $(wildcard attn_cmd_*.c))
LIB_SRC   := $(filter-out $(CLI_SRC),$(sort $(wildcard attn_*.c))) simd/scalar.c simd/dispatch.c
ifeq ($(ARCH),x86_64)
LIB_SRC   += simd/avx2.c simd/avx512.c
endif
ifeq ($(ARCH),aarch64)
LIB_SRC   += simd/neon.c
endif
LIB_OBJ   := $(patsubst %.c,$(B)/%.o,$(LIB_SRC))
CLI_OBJ   := $(patsubst %.c,$(B)/%.o,$(CLI_SRC))
TEST_SRC  := $(sort $(wildcard tests/unit/test_*.c))
TEST_BIN  := $(patsubst %.c,$(B)/%,$(TEST_SRC))
ATTN      := $(if $(CROSS),$(B)/attn,attn)

# Each ISA file gets its own flags, so one binary runs on any CPU of the arch.
$(B)/simd/avx2.o:   XFLAGS := -mavx2 -mfma -mf16c
$(B)/simd/avx512.o: XFLAGS := -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx2 -mfma -mf16c

.PHONY: all test test-slow test-aarch64 static install clean bench parity fuzz check-sanitize
all: $(ATTN) $(TEST_BIN)

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(DEPFLAGS) $(XFLAGS) -c $< -o $@

# The built-in model, when present, is assembled into the binary (no Python needed).
BUILTIN   := tools/model/attn-brown.gguf
ifneq ($(wildcard $(BUILTIN)),)
$(B)/attn_builtin.o: XFLAGS := -DATTN_BUILTIN_GGUF='"$(BUILTIN)"'
$(B)/attn_builtin.o: $(BUILTIN)
endif

$(ATTN): $(CLI_OBJ) $(LIB_OBJ)
	$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

$(B)/tests/unit/%: tests/unit/%.c $(LIB_OBJ)
	@mkdir -p $(dir $@) $(B)/deps
	$(CC) $(CFLAGS) $(LINKDEP) -o $@ $< $(LIB_OBJ) $(LDFLAGS) $(LDLIBS)

# tests/run.sh leaves out (with a SKIP line each) the slow suites, which
# test-slow runs, and tests/platform/t_aarch64.sh (cross-build + qemu,
# minutes), which test-aarch64 runs.
test: $(ATTN) $(TEST_BIN)
	@B=$(B) ATTN=./$(ATTN) sh tests/run.sh

test-slow: $(ATTN) $(TEST_BIN)
	@B=$(B) ATTN=./$(ATTN) sh tests/run.sh --slow

test-aarch64: $(ATTN) $(TEST_BIN)
	@B=$(B) ATTN=./$(ATTN) sh tests/run.sh tests/platform/t_aarch64.sh

static: attn-static
attn-static: $(CLI_OBJ) $(LIB_OBJ)
	$(CC) $(CFLAGS) -static -o $@ $^ $(LDLIBS)

install: $(ATTN)
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 755 $(ATTN) $(DESTDIR)$(PREFIX)/bin/attn

clean:
	rm -rf build build-* attn attn-static

# Speed against the peers (tools/bench.sh). OpenBLAS is linked into
# $(B)/bench_gemm only, never into attn.
bench: $(ATTN) $(B)/bench_gemm
	@B=$(B) ATTN=./$(ATTN) LCPP=$(LCPP) sh tools/bench.sh

$(B)/bench_gemm: tools/bench_gemm.c $(LIB_OBJ)
	@mkdir -p $(dir $@) $(B)/deps
	$(CC) $(CFLAGS) $(LINKDEP) -o $@ $< $(LIB_OBJ) $(LDFLAGS) -lopenblas $(LDLIBS)

# Decode's GEMV per weight type against the read bandwidth (not in make bench's table).
$(B)/bench_gemv: tools/bench_gemv.c $(LIB_OBJ)
	@mkdir -p $(dir $@) $(B)/deps
	$(CC) $(CFLAGS) $(LINKDEP) -o $@ $< $(LIB_OBJ) $(LDFLAGS) $(LDLIBS)

# Regenerates tests/parity/goldens/ from the references in ../shared/ref (needs torch),
# tests/parity/families/ from llama.cpp (its converter and lcpp_dump), and, when
# llama.cpp is built (LCPP=/work/lcpp), tests/parity/quant/ and
# tests/data/quant_blocks.gguf, then checks the larger quantized models live.
LCPP ?= /work/lcpp
parity: $(ATTN)
	/usr/bin/python3 tests/parity/make_goldens.py
	LCPP=$(LCPP) /usr/bin/python3 tests/parity/make_family_goldens.py
	LCPP=$(LCPP) /usr/bin/python3 tests/parity/make_quant_models.py
	LCPP=$(LCPP) /usr/bin/python3 tests/parity/make_quant_models.py --live

# ---- sanitizers and fuzzing (tests/fuzz/FINDINGS.md)
#   make check-sanitize   everything built with ASan+UBSan in build-san/, the suite
#                         of make test run with that binary (not the AArch64 one);
#                         fails on any sanitizer report
#   make fuzz SECONDS=N   each libFuzzer harness in tests/fuzz/ for N seconds
SAN       := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
SAN_ENV   := ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:max_allocation_size_mb=4096:log_path=$(CURDIR)/build-san/log/asan \
             UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:log_path=$(CURDIR)/build-san/log/ubsan
SECONDS   ?= 60
FUZZERS   := gguf tok cli convert

check-sanitize:
	@rm -rf build-san/log && mkdir -p build-san/log
	CFLAGS='-O1 -g $(SAN)' $(MAKE) --no-print-directory CC=clang B=build-san ATTN=build-san/attn all
	@$(SAN_ENV) ATTN_SANITIZE=1 B=build-san ATTN=./build-san/attn sh tests/run.sh; rc=$$?; \
	if ls build-san/log/* >/dev/null 2>&1; then echo "sanitizer reports:"; cat build-san/log/*; exit 1; fi; exit $$rc

fuzz: $(ATTN)
	CFLAGS='-O1 -g $(SAN) -fsanitize=fuzzer-no-link' $(MAKE) --no-print-directory CC=clang B=build-fuzz \
	    $(patsubst %,build-fuzz/fuzz/fuzz_%,$(filter-out convert,$(FUZZERS)))
	nice -n 19 sh tests/fuzz/run.sh build-fuzz $(SECONDS) $(FUZZERS)

# The harnesses (built in build-fuzz/ by `make fuzz`); fuzz_cli calls the CLI's
# main, compiled as attn_main.
$(B)/fuzz/attn_main.o: attn.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(DEPFLAGS) -Dmain=attn_main -c $< -o $@
$(B)/fuzz/fuzz_cli: tests/fuzz/fuzz_cli.c $(B)/fuzz/attn_main.o $(filter-out $(B)/attn.o,$(CLI_OBJ)) $(LIB_OBJ)
	$(CC) $(CFLAGS) -fsanitize=fuzzer -o $@ $^ $(LDFLAGS) $(LDLIBS)
$(B)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(LIB_OBJ)
	@mkdir -p $(dir $@) $(B)/deps
	$(CC) $(CFLAGS) $(LINKDEP) -fsanitize=fuzzer -o $@ $< $(LIB_OBJ) $(LDFLAGS) $(LDLIBS)

-include $(wildcard $(B)/*.d $(B)/simd/*.d $(B)/fuzz/*.d $(B)/deps/*.d)
