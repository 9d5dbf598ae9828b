# tome — top-level entry points. `make demo` and `make test` do all set-up.
#   make demo       install deps, build, run the demo on the bundled samples
#   make test       install deps (and test references), build, run all tests
#   make test-asan  the same test suite built with ASan + UBSan
#   make build      configure and build into build/
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
BUILD ?= build
CMAKE_FLAGS ?=
ifeq ($(CI),true)
CMAKE_FLAGS += -DTOME_WERROR=ON
endif

.PHONY: all deps deps-test build build-asan demo test test-asan clean

all: build

deps:
	@bash scripts/setup.sh

deps-test:
	@bash scripts/setup.sh test

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

build-asan: deps
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DTOME_SANITIZE=ON -DTOME_CUDA=OFF -DTOME_BUILD_BENCH=OFF $(CMAKE_FLAGS) >/dev/null
	@cmake --build build-asan -j $(JOBS)

demo: build
	@bash scripts/demo.sh $(BUILD)/tome

test: deps-test build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-asan: deps-test build-asan
	@cd build-asan && ctest --output-on-failure -j $(JOBS)

clean:
	rm -rf $(BUILD) build-asan
