# The README's commands. `make test` is the whole test set-up on a fresh machine.
PYTHON ?= python3
PYTEST_ARGS ?=

.PHONY: install quickstart test test-fast bench-model help

help:
	@echo "make quickstart  train a tiny model on the synthetic dataset (CPU), sample from it, score the samples"
	@echo "make demo        install what is missing, then run the demo on the shipped checkpoint (extra flags: DEMO_ARGS=...)"
	@echo "make install     install torch (if missing) and mm_diffusion[test,mpi]"
	@echo "make test        install what is missing, then run the whole test suite"
	@echo "make test-fast   the suite without tests marked slow"
	@echo "make bench-model model speed/memory benchmark (benchmarks/bench_model.py)"
	@echo "make figures     redraw fig/: architecture, demo training curve, demo contact sheets (runs the demo)"

install:
	bash tools/install.sh

quickstart:
	bash tools/quickstart.sh

test: install
	$(PYTHON) -m pytest tests $(PYTEST_ARGS)

test-fast: install
	$(PYTHON) -m pytest tests -m "not slow" $(PYTEST_ARGS)

bench-model: install
	$(PYTHON) benchmarks/bench_model.py

.PHONY: demo
demo:
	bash tools/install.sh
	$(PYTHON) -m mm_diffusion.demo $(DEMO_ARGS)

# Every figure in fig/, from the project's own code: the architecture diagram (paper config), the shipped demo
# model's training curve (its progress.csv) and the contact sheets of a default demo run.
.PHONY: figures
figures: install
	$(PYTHON) -m mm_diffusion.plot architecture --config paper --out fig/architecture.png
	$(PYTHON) -m mm_diffusion.plot mm_diffusion/assets/demo_progress.csv --smooth 3 \
	    --title "demo model (mm_diffusion/assets/demo.pt): training on the synthetic dataset" --out fig/demo_training_curve.png
	$(PYTHON) -m mm_diffusion.demo --out outputs/demo --no_progress $(DEMO_ARGS)
	for task in unconditional audio2video video2audio; do cp outputs/demo/contact_$$task.png fig/demo_$$task.png; done
