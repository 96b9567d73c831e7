# Two commands on a fresh machine with Python 3.11: `make run` (opens the desktop app) and
# `make test`; `make demo` is the command-line demo.
# Each creates .venv/ in the checkout on first use (torch from the pinned local build,
# facenet-pytorch without its stale pins), then runs.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml requirements-torch.txt | sha1sum | cut -c1-12)

.PHONY: run test demo screenshots bench bench-deps bench-quick lint setup clean-venv dist

$(STAMP): pyproject.toml requirements-torch.txt
	@command -v $(PY) >/dev/null || { echo "need $(PY) on PATH (or: make PY=python3)"; exit 1; }
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements-torch.txt
	$(BIN)/python -m pip install -q --no-deps facenet-pytorch==2.6.0
	$(BIN)/python -m pip install -q -e '.[dev,attacks,bench,scale]'
	# The bench's peers pin the GUI build of OpenCV: installed without their pins, so their tests
	# run in CI too (see pyproject's `bench` extra for what they import).
	$(BIN)/python -m pip install -q --no-deps invisible-watermark==0.2.0 blind-watermark==0.4.4
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(BIN)/faketagger

demo: $(STAMP)
	$(BIN)/faketagger demo

screenshots: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m app.screenshots docs/screenshots

bench-deps: $(STAMP)

test: $(STAMP)
	# One torch thread per process: Ray workers and forked crash-test children share 2 cores.
	OMP_NUM_THREADS=1 QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q
	$(BIN)/ruff check .
	$(BIN)/lint-imports

bench-quick: bench-deps
	$(BIN)/faketagger bench --quick

bench: bench-deps
	$(BIN)/faketagger bench --peers --markdown docs/BENCHMARKS.md --json docs/bench.json --chart docs/bench.png --gallery docs/gallery

# The desktop download (docs/INSTALL.md): its own clean build venv (build/venv, CPU torch), a
# PyInstaller one-folder build, dist/FakeTagger-VERSION-linux-ARCH.tar.gz, then the frozen smoke
# test on it. Not part of `make test` (minutes; CI's run has a time cap).
dist:
	bash installer/build.sh
	bash installer/smoke_test.sh dist/FakeTagger

clean-venv:
	rm -rf $(VENV)
