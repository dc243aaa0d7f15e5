# Thin wrapper over meson + ninja. `make`, `make check`, `make demo`.
# `make` only builds; `make deps`, `make check` and `make demo` install what is
# missing with apt-get first (scripts/install-deps, a quick no-op when done).
BUILD ?= build
MESON_FLAGS ?=
BATS_FILES = $$(find tests/cli -maxdepth 1 -name '*.bats' -type f | sort)
# The suites of the tools that change VMs run again against vCenter and a
# free-licensed ESXi host (reads over the API, changes over SSH); the first
# run is the licensed ESXi host (tests/cli/helpers/common.bash, host_model).
MODEL_SUITES = tests/cli/ceso-power.bats tests/cli/ceso-snap.bats tests/cli/ceso-rm.bats \
  tests/cli/ceso-set.bats tests/cli/ceso-template.bats
HOST_MODELS = vcenter free
# The libFuzzer build (tests/fuzz/README.md): clang++, ASan+UBSan, fuzz targets.
FUZZ_BUILD ?= build-fuzz
# Every C++ file under clang-format (.clang-format): `make format` rewrites,
# `make check` refuses a difference.
FORMAT_FILES = $$(find libcore tools tests/unit tests/fuzz -name '*.[ch]pp' | sort)

.PHONY: all build deps check unit cli demo clean completions format format-check layers fuzz-build fuzz chaos

all: build

deps:
	@scripts/install-deps

$(BUILD)/build.ninja:
	@command -v meson >/dev/null || { echo "meson not found: run 'make deps' first" >&2; exit 1; }
	meson setup $(BUILD) $(MESON_FLAGS)

build: $(BUILD)/build.ninja
	ninja -C $(BUILD)

# All tests: the layer rule and clang-format, GoogleTest for libcore, a smoke
# run of each fuzz target, the simulator's own checks (its strict request
# schema), bats for the tools against the simulator.
check: deps
	$(MAKE) layers format-check
	$(MAKE) build fuzz-build
	meson test -C $(BUILD) --print-errorlogs
	tests/fuzz/run smoke $(FUZZ_BUILD)
	CESO_SIM_BUILD=$(abspath $(BUILD))/sim tests/sim/simctl test
	CESO_SIM_BUILD=$(abspath $(BUILD))/sim tests/sim/smoke.sh
	CESO_BUILD=$(abspath $(BUILD)) bats $(BATS_FILES)
	for m in $(HOST_MODELS); do \
	  CESO_TEST_HOST_MODEL=$$m CESO_BUILD=$(abspath $(BUILD)) bats $(MODEL_SUITES) || exit 1; \
	done

unit: build
	meson test -C $(BUILD) --print-errorlogs

cli: build
	CESO_BUILD=$(abspath $(BUILD)) bats $(BATS_FILES)
	for m in $(HOST_MODELS); do \
	  CESO_TEST_HOST_MODEL=$$m CESO_BUILD=$(abspath $(BUILD)) bats $(MODEL_SUITES) || exit 1; \
	done

$(FUZZ_BUILD)/build.ninja:
	@command -v clang++ >/dev/null || { echo "clang++ not found: run 'make deps' first" >&2; exit 1; }
	CXX=clang++ meson setup $(FUZZ_BUILD) -Dfuzz=true -Dtests=false -Dman=disabled \
	  -Db_sanitize=address,undefined

fuzz-build: $(FUZZ_BUILD)/build.ninja
	ninja -C $(FUZZ_BUILD) fuzzers

# Each fuzz target for FUZZ_SECONDS (default 60), one after the other.
fuzz: fuzz-build
	tests/fuzz/run fuzz $(FUZZ_BUILD)

# kill -9, full targets, stopped hosts, concurrent runs; then the invariants
# (tests/chaos/README.md). CHAOS_ITERATIONS, CHAOS_SEED. Not part of check.
chaos: build
	CESO_BUILD=$(abspath $(BUILD)) tests/chaos/run

# Build, start the bundled simulator, run a real pipeline against it.
demo: deps
	$(MAKE) build
	CESO_BUILD=$(abspath $(BUILD)) scripts/demo

# Regenerate the committed shell completions from the option tables.
completions: build
	scripts/gen-completions $(BUILD) completions

format:
	clang-format -i $(FORMAT_FILES)

format-check:
	@clang-format --dry-run --Werror $(FORMAT_FILES) || \
	  { echo "clang-format: the files above differ; run 'make format'" >&2; exit 1; }

# libcore's include graph between folders has no upward edge
# (docs/architecture.md "Layers").
layers:
	scripts/check-layers

clean:
	rm -rf $(BUILD) $(FUZZ_BUILD)
