# abqd: the two commands a new user needs.
#   make test   install what the tests need, build, run every test suite
#   make run    build, start the SOGo fixture and abqd in front of it (demo)
# Everything else is CMake + Ninja underneath (build/ and build-asan/).

BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
DEMO_CONF   = var/abqd.conf

.PHONY: all deps build build-asan test test-fast run bench format check-format clean

all: build

deps:
	@scripts/install-deps.sh
	@tests/fixture/install.sh

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DABQ_VALGRIND=ON

$(ASAN_BUILD)/build.ninja:
	cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DABQ_SANITIZE=ON

build: $(BUILD)/build.ninja
	ninja -C $(BUILD) -j$(JOBS)

build-asan: $(ASAN_BUILD)/build.ninja
	ninja -C $(ASAN_BUILD) -j$(JOBS)

# Every suite twice: the plain build (unit tests also under valgrind) and the
# AddressSanitizer + UBSan build. scripts/test-summary.sh prints the closing line.
test: deps build build-asan check-format
	@scripts/run-tests.sh $(BUILD) $(ASAN_BUILD)

# The plain build only, without valgrind: for the edit-compile-test loop.
test-fast: build
	ctest --test-dir $(BUILD) --output-on-failure -LE valgrind -j$(JOBS)

run: deps build
	@scripts/demo.sh $(BUILD) $(DEMO_CONF)

bench: deps
	@bench/run.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

check-format:
	@bad=$$(for f in $$(git ls-files '*.c' '*.h'); do \
		clang-format --dry-run -Werror $$f >/dev/null 2>&1 || echo $$f; done); \
	if [ -n "$$bad" ]; then echo "not clang-formatted (run make format): $$bad"; exit 1; fi

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
