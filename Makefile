# Sotto -- convenience targets. Every target that needs packages installs
# the missing ones first (scripts/deps.sh). The real build is CMake.
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
BUILD ?= build
CMAKE_FLAGS ?=
FUZZ_SECONDS ?= 20
MAKEFLAGS += --no-print-directory

.PHONY: all deps build test test-unit asan fuzz bench demo install clean help

all: build

help:
	@echo "make demo    - build, start a real server, two clients talk end to end"
	@echo "make test    - build and run every test (ctest)"
	@echo "make bench   - benchmarks: ours against libsignal-protocol-c / mosquitto"
	@echo "make asan    - unit and interop tests under AddressSanitizer + UBSan"
	@echo "make fuzz    - each libFuzzer target for FUZZ_SECONDS seconds (clang)"
	@echo "make install - install libsotto, headers, sotto.pc, sottod, sotto"

deps:
	@bash scripts/deps.sh

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

test: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

test-unit: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS) -L unit

asan: deps
	CC=clang cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSOTTO_SANITIZE=ON >/dev/null
	cmake --build build-asan -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --test-dir build-asan --output-on-failure -j $(JOBS) -L 'unit|interop'

fuzz: deps
	CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSOTTO_FUZZ=ON >/dev/null
	cmake --build build-fuzz -j $(JOBS)
	bash scripts/run-fuzzers.sh build-fuzz $(FUZZ_SECONDS)

bench: build
	bash scripts/bench.sh $(BUILD)

# The demo builds quietly (the log is kept in $(BUILD)/build.log) so that
# what it shows is the conversation, not the compiler.
demo: deps
	@echo "Building Sotto (log: $(BUILD)/build.log) ..."
	@mkdir -p $(BUILD) && { cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) && \
	  cmake --build $(BUILD) -j $(JOBS); } > $(BUILD)/build.log 2>&1 || \
	  { tail -40 $(BUILD)/build.log; echo "build failed; see $(BUILD)/build.log"; exit 1; }
	@bash scripts/demo.sh $(BUILD)

install: build
	cmake --install $(BUILD)

clean:
	rm -rf build build-asan build-fuzz
