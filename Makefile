# The two commands a new user needs:  make demo  (run the program on the demo score)
#                                     make test  (set up and run the whole test suite)
VENV ?= .venv
PY := $(VENV)/bin/python
export QT_QPA_PLATFORM ?= offscreen

.PHONY: demo test lint bench dist clean

demo:
	QT_QPA_PLATFORM= tools/setup.sh runtime
	$(VENV)/bin/bytehoven gui resources/demo/demo.pdf

test:
	tools/setup.sh test
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q -p no:cacheprovider

bench:
	tools/setup.sh test
	$(PY) bench/bench_detection.py
	$(PY) bench/bench_speed.py

dist:
	tools/setup.sh test
	$(MAKE) -C packaging dist

clean:
	rm -rf build dist .pytest_cache
