"""Benchmarks for config-reloader, run by `make bench` (``python -m bench``).

Each measurement runs the installed ``config-reloader`` as a real subprocess against a local aiohttp
reload endpoint, prints one table with a PASS or FAIL per budget, and writes bench/results.json with
the machine the figures came from.
"""
