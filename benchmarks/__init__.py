"""asv benchmarks of horsies: the compiled hot paths side by side with their pure twins,
and the database workloads W1-W5 (bench_database.py).

With horsies installed in the current environment, run
``asv run --python=same --quick`` from the repository root (see asv.conf.json).
Each hot-path class has ``params = (["c", "py"], sizes)``; a missing compiled
twin makes setup raise NotImplementedError, which asv reports as skipped.
"""
