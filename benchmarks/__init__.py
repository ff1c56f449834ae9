"""asv benchmarks of horsies: the compiled hot paths side by side with their pure twins.

Run ``asv run --python=same --quick`` from the repository root (see asv.conf.json).
"""
