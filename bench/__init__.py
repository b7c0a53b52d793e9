"""The benchmark: bench.py runs the measures, figures.py does their arithmetic (unit-tested)."""
