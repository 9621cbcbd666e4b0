"""fraudcore's benchmarks: ``python -m bench [suite ...] [--quick] [--out DIR]``.

Each suite measures on seeded synthetic data (``fraudcore.synth``), compares
against the reference interpreter and against peers in the same run, and
writes its results as JSON together with a description of the machine
(``bench/machine.py``), plus a Markdown table. Timings are never asserted:
targets are reported as pass/fail in the results.
"""
