"""Benchmarks for `make bench`: each module measures one area next to a baseline taken in the same run."""
