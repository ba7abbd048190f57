# The two commands a new user needs:  make demo  (run the program on the demo score)
#                                     make test  (set up and run the whole test suite)
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test bench dist check-packaging clean

demo:
	tools/setup.sh runtime
	tools/demo.sh

check-packaging:  # build the bundle and .deb, install, smoke-run, uninstall (packaging/README.md)
	$(MAKE) -C packaging ci-check

test:
	tools/setup.sh test
	$(VENV)/bin/lint-imports
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q -p no:cacheprovider

bench:
	tools/setup.sh test
	$(PY) bench/bench_detection.py
	$(PY) bench/bench_speed.py
	$(PY) bench/bench_library.py
	$(PY) bench/bench_cluster.py

dist:  # packaging/README.md: the bundle and the .deb in dist/ (MODEL=FILE, VARIANT=gpu)
	$(MAKE) -C packaging dist $(if $(MODEL),MODEL=$(abspath $(MODEL)))

clean:
	rm -rf build dist .pytest_cache
