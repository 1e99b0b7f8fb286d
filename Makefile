# ZeroCloud developer entry points.  `make run` and `make test` bootstrap
# everything they need on a fresh Debian machine; see README.rst.

PYTHON      ?= python3
VENV        ?= .venv
BIN         := $(VENV)/bin
APT_PACKAGES := memcached curl clang lld wasi-libc libclang-rt-14-dev-wasm32 chromium
PORT        ?= 8080
WORKDIR     ?= var/saio
PYTEST_ARGS ?=

.PHONY: bootstrap apt-packages venv sysimage run test unit functional examples clean

bootstrap: apt-packages venv sysimage examples

# Fetch and check the CPython-for-WASI system image, warm the module cache.
sysimage: venv
	$(BIN)/zerocloud-sysimage

# C examples compiled for WASI with Debian's clang (see examples/README.rst).
EXAMPLES := $(patsubst %.c,%.wasm,$(wildcard examples/*.c))
examples: apt-packages $(EXAMPLES)

examples/%.wasm: examples/%.c
	clang --target=wasm32-wasi -O2 -o $@ $<

# Install the Debian packages we rely on when root; otherwise name them.
# (chromium: the browser test of the zapp page, driven by Playwright.)
apt-packages:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	      apt-get install -y -qq --no-install-recommends $$missing >/dev/null || exit 1; \
	  else \
	    echo "missing Debian packages:$$missing"; \
	    echo "run: sudo apt-get install$$missing"; exit 1; \
	  fi; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: setup.cfg setup.py requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[test]'
	touch $@

run: bootstrap
	$(BIN)/zerocloud-saio --port $(PORT) --workdir $(WORKDIR)

test: bootstrap
	$(BIN)/pytest -q $(PYTEST_ARGS) test/unit test/functional

unit: bootstrap
	$(BIN)/pytest -q $(PYTEST_ARGS) test/unit

functional: bootstrap
	$(BIN)/pytest -q $(PYTEST_ARGS) test/functional

clean:
	rm -rf $(VENV) var *.egg-info
