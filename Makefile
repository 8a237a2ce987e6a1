# DAAS: `make demo` (install, then generate a signed, watermarked clip and scan it) and `make test`.
# Both install into the active Python environment (your venv if you made one), with the pinned versions
# of constraints.txt; repeated runs reuse what is installed.
PYTHON ?= python3
PIP = $(PYTHON) -m pip
OUT ?= out

.PHONY: install demo test bench
install:
	$(PIP) install -q --disable-pip-version-check -c constraints.txt -e ".[dev]"

demo: install
	@mkdir -p $(OUT)
	HF_HUB_OFFLINE=1 $(PYTHON) -m daas.demo --out $(OUT)

test: install
	HF_HUB_OFFLINE=1 $(PYTHON) -m pytest -q

bench: install
	@mkdir -p runs
	HF_HUB_OFFLINE=1 $(PYTHON) -m pytest -q benchmarks/speed --benchmark-only --benchmark-json=runs/bench.json
