# DAAS: `make demo` (install, then generate a signed, watermarked clip and scan it) and `make test`.
# Both install into the active Python environment (your venv if you made one), with the pinned versions
# of constraints.txt; repeated runs reuse what is installed.
PYTHON ?= python3
PIP = $(PYTHON) -m pip
OUT ?= out

.PHONY: install demo test bench
install:
	$(PIP) install -q --disable-pip-version-check -c constraints.txt -e ".[dev]"

# scan exits 1 when it finds synthetic content, which is the point of the demo
demo: install
	@mkdir -p $(OUT)
	HF_HUB_OFFLINE=1 $(PYTHON) -m daas.cli generate "a red ball falls and bounces twice" -o $(OUT)/demo.mp4 --seed 0 --overwrite
	HF_HUB_OFFLINE=1 $(PYTHON) -m daas.cli scan $(OUT)/demo.mp4; test $$? -le 1

test: install
	HF_HUB_OFFLINE=1 $(PYTHON) -m pytest -q

bench: install
	@mkdir -p runs
	HF_HUB_OFFLINE=1 $(PYTHON) -m pytest -q benchmarks/speed --benchmark-only --benchmark-json=runs/bench.json
