"""One matrix run: the loop, its records, lock prefetch, classification, bisection, shards."""
