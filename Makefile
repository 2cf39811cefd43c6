# mlmesh: every target bootstraps what it needs (virtualenvs, npm packages, generated code).
SHELL := /bin/bash
PY_BOOT ?= python3
VENV := .venv
GENV := .venv-gen
MLV := .venv-ml
RLV := .venv-rl
PY := $(VENV)/bin/python
DATA_DIR ?= .mlmesh
export MLMESH_DATA_DIR ?= $(abspath $(DATA_DIR))

.PHONY: tff-venv flare-venv chaos images test-images k8s podman demo-learner demo-optimizer help venv ml-venv rl-venv mosquitto gen check-gen lint contracts check-contracts test test-fast up down demo bench clean dist

help:
	@echo "make demo   start the mesh on embedded defaults: a dataset, then the seed's model walk-through, through Envoy"
	@echo "make test   run every test (unit, integration, end-to-end through Envoy)"
	@echo "make up / make down / make gen / make lint / make bench / make contracts"

$(VENV)/.stamp: requirements/mesh.txt requirements/mesh.lock pyproject.toml package.json
	test -x $(PY) || $(PY_BOOT) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements/mesh.txt -c requirements/mesh.lock
	$(PY) -m pip install -q --no-deps -e . --config-settings editable_mode=compat
	echo "$(abspath gen)" > "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/mlmesh-gen.pth"
	echo "$(abspath packages/mlmesh-client/src)" > "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/mlmesh-client.pth"
	npm install --no-audit --no-fund --loglevel=error
	touch $@

venv: $(VENV)/.stamp

# The ML environment (torch CPU, scikit-learn, ONNX, TensorFlow): training recipes and the
# Translator's conversions run in it as separate processes, as they would in their own containers.
$(MLV)/.stamp: requirements/ml.txt requirements/ml.lock
	test -x $(MLV)/bin/python || $(PY_BOOT) -m venv $(MLV)
	$(MLV)/bin/python -m pip install -q -r requirements/ml.txt -c requirements/ml.lock
	$(MLV)/bin/python -m pip install -q --no-deps -e . --config-settings editable_mode=compat
	echo "$(abspath gen)" > "$$($(MLV)/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/mlmesh-gen.pth"
	touch $@

ml-venv: $(MLV)/.stamp

# The reinforcement-learning environment (pandapower, SimBench, Gymnasium, Stable-Baselines3): the
# Optimizer's environment and its training worker run in it as separate processes. torch (CPU)
# goes in first, or pip would resolve Stable-Baselines3's torch to a multi-GB CUDA build.
$(RLV)/.stamp: requirements/rl.txt requirements/rl.lock
	test -x $(RLV)/bin/python || $(PY_BOOT) -m venv $(RLV)
	$(RLV)/bin/python -m pip install -q torch==2.13.0 -c requirements/rl.lock
	$(RLV)/bin/python -m pip install -q -r requirements/rl.txt -c requirements/rl.lock
	$(RLV)/bin/python -m pip install -q --no-deps -e . --config-settings editable_mode=compat
	touch $@

rl-venv: $(RLV)/.stamp

# The Flower environment (Flower 1.42 needs protobuf < 7): the Federation server's FedPATE jobs run
# in it as separate processes. torch (CPU) goes in first, or pip resolves a multi-GB CUDA build.
FLV := .venv-flower
$(FLV)/.stamp: requirements/flower.txt requirements/flower.lock
	test -x $(FLV)/bin/python || $(PY_BOOT) -m venv $(FLV)
	$(FLV)/bin/python -m pip install -q torch==2.13.0 -c requirements/flower.lock
	$(FLV)/bin/python -m pip install -q -r requirements/flower.txt -c requirements/flower.lock
	touch $@

flower-venv: $(FLV)/.stamp

# The NVIDIA FLARE environment (FLARE 2.9 and torch CPU): the Federation server's FLARE jobs run in
# it as separate processes (FLARE's simulator starts its own server and client processes).
FLAV := .venv-flare
$(FLAV)/.stamp: requirements/flare.txt requirements/flare.lock
	test -x $(FLAV)/bin/python || $(PY_BOOT) -m venv $(FLAV)
	$(FLAV)/bin/python -m pip install -q torch==2.13.0 -c requirements/flare.lock
	$(FLAV)/bin/python -m pip install -q -r requirements/flare.txt -c requirements/flare.lock
	touch $@

flare-venv: $(FLAV)/.stamp

# The TensorFlow Federated environment (TFF 0.87: TF 2.14, protobuf 4, numpy < 2): the Federation
# server's TFF DP-FedAvg jobs run in it as separate processes. Plain pip cannot resolve TFF 0.87
# (it pins jaxlib==0.4.14, gone from PyPI): uv installs it with requirements/tff-override.txt.
TFV := .venv-tff
$(TFV)/.stamp: requirements/tff.txt requirements/tff.lock requirements/tff-override.txt
	test -x $(TFV)/bin/python || $(PY_BOOT) -m venv $(TFV)
	$(TFV)/bin/python -m pip install -q uv -c requirements/tff.lock
	UV_SYSTEM_CERTS=1 $(TFV)/bin/uv pip install -q --python $(TFV)/bin/python -r requirements/tff.txt \
		-c requirements/tff.lock --override requirements/tff-override.txt
	touch $@

tff-venv: $(TFV)/.stamp

# The third-party provenance tools (securesystemslib's DSSE, in-toto-attestation, OpenSSF model_signing):
# what a user outside mlmesh runs on an export. tests/e2e drives tests/provenance_venv in it; the
# Registry runs its model_signing worker here (GetModelSignature).
PVV := .venv-provenance
$(PVV)/.stamp: requirements/provenance.txt requirements/provenance.lock
	test -x $(PVV)/bin/python || $(PY_BOOT) -m venv $(PVV)
	$(PVV)/bin/python -m pip install -q -r requirements/provenance.txt -c requirements/provenance.lock
	touch $@

provenance-venv: $(PVV)/.stamp

# The MQTT broker the sensor tests and the demo's bridge talk to: Debian's mosquitto package.
mosquitto:
	@test -x /usr/sbin/mosquitto || command -v mosquitto >/dev/null || \
		{ echo "installing mosquitto (Debian package)"; apt-get install -y -q mosquitto >/dev/null || \
		  { apt-get update -q >/dev/null && apt-get install -y -q mosquitto >/dev/null; }; }

# Container images: podman, buildah and mmdebstrap (and runc: crun fails in this sandbox) from Debian.
podman:
	@command -v podman >/dev/null && command -v mmdebstrap >/dev/null && command -v runc >/dev/null || \
		{ echo "installing podman, buildah, mmdebstrap, runc (Debian packages)"; \
		  apt-get install -y -q podman buildah mmdebstrap runc >/dev/null || \
		  { apt-get update -q >/dev/null && apt-get install -y -q podman buildah mmdebstrap runc >/dev/null; }; }

# One image per environment (images/build.sh: mesh, ml, rl, flower, dev-postgres, dev-chain, and the
# federated job images flare and tff), hadolint first.
images: $(VENV)/.stamp podman
	$(VENV)/bin/hadolint images/*/Containerfile
	images/build.sh

# The mesh from its images with podman, the demo against it, and `podman kube play` of the dev
# overlay (tests/deploy/images; several minutes, so not part of `make test`).
test-images: images
	MLMESH_TEST_IMAGES=1 $(PY) -m pytest -q tests/deploy/images

# Regenerates k8s/base/<server>/ and the Envoy configs from the servers' tables (also run by `make gen`).
k8s: $(VENV)/.stamp
	$(PY) k8s/generate.py

$(GENV)/.stamp: requirements/gen.txt
	test -x $(GENV)/bin/python || $(PY_BOOT) -m venv $(GENV)
	$(GENV)/bin/python -m pip install -q -r requirements/gen.txt
	touch $@

# Regenerates gen/: Python messages, typing stubs, gRPC stubs and the descriptor set Envoy reads.
gen: $(VENV)/.stamp $(GENV)/.stamp
	rm -rf gen/mlmesh gen/kserve gen/descriptors
	PATH=$(VENV)/bin:$$PATH buf generate
	mkdir -p gen/descriptors
	PATH=$(VENV)/bin:$$PATH buf build -o gen/descriptors/mlmesh.binpb
	$(PY) k8s/generate.py

# Fails when gen/ does not match the protos.
check-gen: gen
	git diff --exit-code --stat -- gen/ || (echo "gen/ is stale: run 'make gen' and commit it" >&2; exit 1)
	test -z "$$(git status --porcelain -- gen/)" || (git status --short -- gen/; echo "gen/ has uncommitted files: run 'make gen' and commit it" >&2; exit 1)

# lint-imports checks the layer rules in .importlinter: no domain imports gRPC, generated code or an
# adapter; no server imports another; no import cycles.
lint: $(VENV)/.stamp
	PATH=$(VENV)/bin:$$PATH buf lint
	$(VENV)/bin/ruff check servers clients tests bench tools examples
	@if git rev-parse -q --verify origin/main >/dev/null; then PATH=$(VENV)/bin:$$PATH buf breaking --against '.git#branch=origin/main'; fi
	$(VENV)/bin/lint-imports --config .importlinter --no-cache --no-logo

contracts: $(VENV)/.stamp
	$(PY) -m servers.ledger.compile

check-contracts: $(VENV)/.stamp
	$(PY) -m servers.ledger.compile --check

test: $(VENV)/.stamp $(MLV)/.stamp $(RLV)/.stamp $(PVV)/.stamp $(FLV)/.stamp $(FLAV)/.stamp $(TFV)/.stamp mosquitto
	$(MAKE) check-gen check-contracts lint
	$(PY) -m pytest -q
	$(MLV)/bin/python -m pytest -q --confcutdir=tests/ml_venv tests/ml_venv
	$(RLV)/bin/python -m pytest -q --confcutdir=tests/rl_venv tests/rl_venv

# Issue 16: a mixed workload through Envoy while components are killed with -9 and restarted by
# `devstack up`, then every acknowledged operation checked (tests/chaos). `make test` runs 8 kills;
# this runs MLMESH_CHAOS_KILLS (default 60) with MLMESH_CHAOS_SEED (default 16): a failure replays.
chaos: $(VENV)/.stamp $(MLV)/.stamp
	$(PY) -m tests.chaos --seed $${MLMESH_CHAOS_SEED:-16} --kills $${MLMESH_CHAOS_KILLS:-60}

# Property-based tests of every RPC of every server with many random examples per RPC and path
# (tests/fuzz: hostile and random requests, direct and through Envoy). `make test` runs the same
# suite bounded and derandomized. MLMESH_FUZZ_EXAMPLES=N sets the examples per RPC and path.
fuzz: $(VENV)/.stamp $(MLV)/.stamp mosquitto
	MLMESH_FUZZ_PROFILE=long $(PY) -m pytest -q tests/fuzz

# The mlmesh-client wheel (the SDK and the generated stubs): dist/mlmesh_client-<version>-py3-none-any.whl.
dist: $(VENV)/.stamp
	$(PY) packages/mlmesh-client/build_wheel.py

up: $(VENV)/.stamp $(MLV)/.stamp mosquitto
	$(PY) -m servers.devstack up

down:
	@if [ -x $(PY) ]; then $(PY) -m servers.devstack down; fi

demo: $(VENV)/.stamp $(MLV)/.stamp mosquitto
	$(PY) -m servers.devstack up
	$(VENV)/bin/mlmesh demo

# A UC10 forecaster learning online from a streamed meter, with explanations and drift figures.
demo-learner: $(VENV)/.stamp $(MLV)/.stamp mosquitto
	$(PY) -m servers.devstack up
	$(VENV)/bin/mlmesh demo-learner

# The seed's RL demand shifting: PPO and DQN agents trained through the Optimizer (a few minutes
# each), their learning curves (PNG in the data dir), the evaluation beside the baselines and one
# day planned (clients/demo_optimizer.py). MLMESH_DEMO_OPTIMIZER_STEPS sets the steps per agent.
demo-optimizer: $(VENV)/.stamp $(RLV)/.stamp
	$(PY) -m servers.devstack up
	$(PY) -m clients.demo_optimizer

# Federated learning through the front door on digits: FedPATE on Flower (50 teachers on 5
# SuperNodes, epsilon <= 5), NVIDIA FLARE FedAvg (simulator) and TFF DP-FedAvg (3 clients), each
# job's epsilon, the models registered with their provenance and translated to ONNX
# (clients/demo_federation.py: one function per framework).
demo-federation: $(VENV)/.stamp $(MLV)/.stamp $(FLV)/.stamp $(FLAV)/.stamp $(TFV)/.stamp
	$(PY) -m servers.devstack up
	$(PY) -m clients.demo_federation

bench: $(VENV)/.stamp $(MLV)/.stamp $(RLV)/.stamp $(PVV)/.stamp $(FLV)/.stamp $(TFV)/.stamp
	$(PY) -m bench.run

clean: down
	rm -rf $(DATA_DIR)
