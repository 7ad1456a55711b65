# Two commands set everything up on a fresh machine: `make run` and `make test`.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test test-all test-min test-r clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[clustering,test]"
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m ciss_vae.cli demo --output imputed_example.csv

test: $(STAMP)
	$(PY) -m pytest -q

test-all: $(STAMP)
	$(PY) -m pytest -q -m ""

# The R package (r/cissvae) on this project's Python: installed into .r-lib, its testthat suite run
# with reticulate pointed at .venv. Needs Debian's r-base-core, r-cran-reticulate, r-cran-mice and
# r-cran-testthat (.ci/run installs them).
R_LIB := .r-lib

test-r: $(STAMP)
	mkdir -p $(R_LIB)
	R CMD INSTALL --no-multiarch -l $(R_LIB) r/cissvae
	cd r/cissvae/tests && RETICULATE_PYTHON=$(abspath $(PY)) R_LIBS=$(abspath $(R_LIB)) \
	  Rscript -e 'library(testthat); library(cissvae); test_dir("testthat", reporter = "check", stop_on_failure = TRUE)'

# Dependency floors: a second venv with the oldest versions pyproject.toml allows
# (ci/min-versions.txt, torch 2.4 included), and a fast subset of the tests in it.
VENV_MIN  := .venv-min
PY_MIN    := $(VENV_MIN)/bin/python
STAMP_MIN := $(VENV_MIN)/.installed
MIN_TESTS := tests/test_imputer.py tests/test_dataset.py tests/test_clustering.py tests/test_tuning.py \
             tests/test_catalogue.py tests/test_cli.py tests/test_data.py tests/test_evaluation.py \
             tests/test_pooling.py tests/test_plots.py tests/test_faults.py tests/test_engine.py tests/test_model.py \
             tests/test_settings.py tests/test_sizing.py tests/test_types.py tests/test_ensemble.py \
             tests/test_registry.py tests/test_normal.py
MIN_SKIP  := not interval_covers_the_true_slope and not clip_to_observed_bounds \
             and not fit_transform_with_given_clusters and not optional_peer

$(STAMP_MIN): pyproject.toml ci/min-versions.txt
	rm -rf $(VENV_MIN)
	python3 -m venv $(VENV_MIN)
	$(PY_MIN) -m pip install --quiet --upgrade pip
	$(PY_MIN) -m pip install --quiet --only-binary=:all: -r ci/min-versions.txt
	$(PY_MIN) -m pip install --quiet --no-deps -e .
	$(PY_MIN) -m pip check
	touch $(STAMP_MIN)

# numpy 1.23's OpenBLAS (0.3.20) does not know recent Xeons and falls back to its Prescott kernels,
# which scikit-learn 1.3's pickle check treats specially (and fails on): name the AVX2 kernels.
test-min: $(STAMP_MIN)
	$(PY_MIN) ci/check_floors.py
	OPENBLAS_CORETYPE=Haswell $(PY_MIN) -m pytest -q -W ignore::DeprecationWarning $(MIN_TESTS) -k "$(MIN_SKIP)"

clean:
	rm -rf $(VENV) $(VENV_MIN) $(R_LIB) build *.egg-info src/*.egg-info imputed_example.csv
