# The README's two commands: `make demo` and `make test`. Both create .venv and install the
# pinned set (pyproject.toml is the one place versions live) when it is missing or stale.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.echoweave-installed
DEMO_OUT ?= demo_out
PYTEST_ARGS ?=

.PHONY: demo test test-slow venv clean android-core-test

$(STAMP): pyproject.toml setup.py
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[all,dev]'
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/echoweave demo --out $(DEMO_OUT)

# Fast suite (tiny backbones, small inputs). Exit 5 (no tests collected) fails the target.
test: $(STAMP)
	@$(PY) -m pytest -m "not slow" $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test: pytest collected no tests - failing" >&2; exit 1; fi; \
	if [ $$status -ne 0 ]; then exit $$status; fi
	@$(MAKE) --no-print-directory android-core-test

# android_demo's pure-Kotlin core on the JVM (kotlinc + JUnit 4; prints SKIPPED when it cannot install them).
android-core-test:
	@android_demo/scripts/core_test.sh

# Full-size models and long runs.
test-slow: $(STAMP)
	$(PY) -m pytest -m slow $(PYTEST_ARGS)

clean:
	rm -rf $(DEMO_OUT) .pytest_cache
