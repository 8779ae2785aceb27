# boxnet: `make demo` (the tutorial, live, in a throwaway lab) and `make test` (the whole suite).
# Both install first; install is idempotent and fast when everything is already there.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEB_PACKAGES := python3 python3-venv iproute2 nftables libnftables1 iptables busybox-static \
                iputils-ping curl iperf3 util-linux procps psmisc docker.io chromium \
                docker-registry skopeo etcd-server etcd-client openssl wget docker-compose \
                podman containernetworking-plugins slirp4netns tini gcc libc6-dev

# Where the suite, the demo and the benchmarks run programs: `make test` checks that each one
# comes from DEB_PACKAGES (or the base system), in the sources and as executed (boxnet.lab.programs).
PROGRAM_SOURCES := tests bench src/boxnet/demo src/boxnet/lab

.PHONY: install deb venv cni demo test lint unit e2e bench bench-quick clean

# Bytecode for the sources, written here even where PYTHONDONTWRITEBYTECODE is set: without it
# every `boxnet` process compiles the modules it imports (~8 ms of a short verb's ~20 ms).
install: deb venv cni
	@$(BIN)/python -m compileall -q src/boxnet

deb:
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:" $$missing; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/python -m boxnet.cli.launcher $(BIN)/boxnet  # a faster start than pip's script
	touch $@

# The CNI plugin runtimes exec (src/boxnet/cni/boxnet-cni.c, docs/CHOICES.md): a C forwarder
# to boxnetd that execs the Python plugin (boxnet-cni-py's code) when the daemon does not answer.
CNI_SRC := src/boxnet/cni/boxnet-cni.c
CFLAGS ?= -O2 -g
CNI_CFLAGS := -std=gnu11 -Wall -Wextra -Werror -D_FORTIFY_SOURCE=2 -fstack-protector-strong \
              -fPIE -pie -Wl,-z,relro,-z,now
cni: $(BIN)/boxnet-cni

$(BIN)/boxnet-cni: $(CNI_SRC) $(VENV)/.installed
	gcc $(CFLAGS) $(CNI_CFLAGS) -DBOXNET_PYTHON='"$(abspath $(BIN))/python"' \
	  -DBOXNET_SRC='"$(abspath src)"' -o $@.tmp $(CNI_SRC)
	mv $@.tmp $@

demo: install
	$(BIN)/python -m boxnet.demo

lint: venv
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

# --durations: every run ends with its slowest tests, so the suite's budget (well under 20 min
# in CI) stays visible where it is spent.
# -n/--dist loadfile (pytest-xdist): TEST_WORKERS pytest processes, each taking whole files, so a
# module's lab and daemon stay in one process. The e2e tests mostly wait (on daemons, pings that
# must time out, dockerd): on a 2-core machine the suite took 26 min in one process and 12 in
# two (2026-12-06). Labs are named after their owner's PID (bxl<pid>-...), so workers never
# share a namespace, a daemon or a temporary directory. `make test TEST_WORKERS=0`: one process.
TEST_WORKERS ?= 2
test: install lint
	$(BIN)/python -m boxnet.lab.programs --scan $(PROGRAM_SOURCES) -- \
	  $(BIN)/pytest -q -p no:cacheprovider --durations=20 -n $(TEST_WORKERS) --dist loadfile

unit: venv
	$(BIN)/pytest -q tests/unit

e2e: install
	$(BIN)/pytest -q tests/e2e

bench: install
	$(BIN)/python -m bench.run

bench-quick: install
	$(BIN)/python -m bench.run --quick

clean:
	rm -rf $(VENV) build *.egg-info
