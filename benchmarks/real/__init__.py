"""Benchmarks on real third-party models and real images (never part of ``make test``)."""
