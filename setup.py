"""Native extensions and build toggles; all other metadata is in pyproject.toml.

FRAUDCORE_DEBUG=1     build with assertions and bounds checks on (slower)
FRAUDCORE_ANNOTATE=1  write Cython's HTML annotation next to each .pyx
"""

import os
import runpy
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("FRAUDCORE_DEBUG") == "1"
NATIVE = Path("src/fraudcore/_native")

directives = {
    "language_level": "3",
    "boundscheck": DEBUG,
    "wraparound": False,
    "cdivision": True,
    "initializedcheck": DEBUG,
    "embedsignature": True,
}
cflags = ["-O0", "-g"] if DEBUG else ["-O3", "-fno-strict-aliasing"]
# The counter store's 16-byte CAS must be the inline `lock cmpxchg16b`, not a
# libatomic call (see _native/atomics.h).
cflags.append("-mcx16")

# The VM's opcode constants are generated from the one Python opcode table.
runpy.run_path("src/fraudcore/cel/opcodes.py", run_name="__main__")

extensions = [
    Extension(
        f"fraudcore._native.{pyx.stem}",
        [str(pyx)],
        include_dirs=[str(NATIVE)],
        extra_compile_args=cflags,
        define_macros=[] if DEBUG else [("NDEBUG", "1")],
    )
    for pyx in sorted(NATIVE.glob("*.pyx"))
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives=directives,
        annotate=os.environ.get("FRAUDCORE_ANNOTATE") == "1",
    )
)
