# Thin wrapper over meson + ninja. `make`, `make check`, `make demo`.
# `make` only builds; `make deps`, `make check` and `make demo` install what is
# missing with apt-get first (scripts/install-deps, a quick no-op when done).
BUILD ?= build
MESON_FLAGS ?=
BATS_FILES = $$(find tests/cli -maxdepth 1 -name '*.bats' -type f | sort)

.PHONY: all build deps check unit cli demo clean completions format

all: build

deps:
	@scripts/install-deps

$(BUILD)/build.ninja:
	@command -v meson >/dev/null || { echo "meson not found: run 'make deps' first" >&2; exit 1; }
	meson setup $(BUILD) $(MESON_FLAGS)

build: $(BUILD)/build.ninja
	ninja -C $(BUILD)

# All tests: GoogleTest for libcore, bats for the tools against the simulator.
check: deps
	$(MAKE) build
	meson test -C $(BUILD) --print-errorlogs
	CESO_BUILD=$(abspath $(BUILD)) bats $(BATS_FILES)

unit: build
	meson test -C $(BUILD) --print-errorlogs

cli: build
	CESO_BUILD=$(abspath $(BUILD)) bats $(BATS_FILES)

# Build, start the bundled simulator, run a real pipeline against it.
demo: deps
	$(MAKE) build
	CESO_BUILD=$(abspath $(BUILD)) scripts/demo

# Regenerate the committed shell completions from the option tables.
completions: build
	scripts/gen-completions $(BUILD) completions

format:
	clang-format -i libcore/include/ceso/*.hpp libcore/src/*.cpp tools/*.cpp tests/unit/*.cpp

clean:
	rm -rf $(BUILD)
