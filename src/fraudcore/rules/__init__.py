"""Rules files: loading (``load``), compiling a whole policy (``policy``).

Each stage is its own module with one public entry point; import from there
(``from fraudcore.rules.load import load_rules``). Nothing is imported here so
that importing one stage never drags in the others.
"""
