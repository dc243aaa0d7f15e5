# Thin wrapper over meson + ninja. `make`, `make check`, `make demo`.
BUILD ?= build
MESON_FLAGS ?=

.PHONY: all build deps check unit cli demo clean completions format

all: build

deps:
	@scripts/install-deps

$(BUILD)/build.ninja: | deps
	meson setup $(BUILD) $(MESON_FLAGS)

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

# All tests: GoogleTest for libcore, bats for the tools against the simulator.
check: build
	meson test -C $(BUILD) --print-errorlogs
	CESO_BUILD=$(abspath $(BUILD)) bats $$(find tests/cli -maxdepth 1 -name '*.bats' -type f | sort)

unit: build
	meson test -C $(BUILD) --print-errorlogs

cli: build
	CESO_BUILD=$(abspath $(BUILD)) bats $$(find tests/cli -maxdepth 1 -name '*.bats' -type f | sort)

# Build, start the bundled simulator, run a real pipeline against it.
demo: build
	CESO_BUILD=$(abspath $(BUILD)) scripts/demo

# Regenerate the committed shell completions from the option tables.
completions: build
	scripts/gen-completions $(BUILD) completions

format:
	clang-format -i libcore/include/ceso/*.hpp libcore/src/*.cpp tools/*.cpp tests/unit/*.cpp

clean:
	rm -rf $(BUILD)
