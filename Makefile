# Thin wrapper over meson + ninja. `make`, `make check`, `make demo`.
BUILD ?= build
MESON_FLAGS ?=
# The libFuzzer build (tests/fuzz/README.md): clang++, ASan+UBSan, fuzz targets.
FUZZ_BUILD ?= build-fuzz

.PHONY: all build deps check unit cli demo clean completions format fuzz-build fuzz chaos

all: build

deps:
	@scripts/install-deps

$(BUILD)/build.ninja: | deps
	meson setup $(BUILD) $(MESON_FLAGS)

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

# All tests: GoogleTest for libcore, bats for the tools against the simulator.
check: build fuzz-build
	meson test -C $(BUILD) --print-errorlogs
	tests/fuzz/run smoke $(FUZZ_BUILD)
	CESO_BUILD=$(abspath $(BUILD)) bats $$(find tests/cli -maxdepth 1 -name '*.bats' -type f | sort)

unit: build
	meson test -C $(BUILD) --print-errorlogs

cli: build
	CESO_BUILD=$(abspath $(BUILD)) bats $$(find tests/cli -maxdepth 1 -name '*.bats' -type f | sort)

$(FUZZ_BUILD)/build.ninja: | deps
	CXX=clang++ meson setup $(FUZZ_BUILD) -Dfuzz=true -Dtests=false -Dman=disabled \
	  -Db_sanitize=address,undefined

fuzz-build: deps $(FUZZ_BUILD)/build.ninja
	ninja -C $(FUZZ_BUILD) fuzzers

# Each fuzz target for FUZZ_SECONDS (default 60), one after the other.
fuzz: fuzz-build
	tests/fuzz/run fuzz $(FUZZ_BUILD)

# kill -9, full targets, stopped hosts, concurrent runs; then the invariants
# (tests/chaos/README.md). CHAOS_ITERATIONS, CHAOS_SEED. Not part of check.
chaos: build
	CESO_BUILD=$(abspath $(BUILD)) tests/chaos/run

# Build, start the bundled simulator, run a real pipeline against it.
demo: build
	CESO_BUILD=$(abspath $(BUILD)) scripts/demo

# Regenerate the committed shell completions from the option tables.
completions: build
	scripts/gen-completions $(BUILD) completions

format:
	clang-format -i libcore/include/ceso/*.hpp libcore/src/*.cpp tools/*.cpp tests/unit/*.cpp

clean:
	rm -rf $(BUILD) $(FUZZ_BUILD)
