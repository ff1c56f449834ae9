"""Build the compiled twins in horsies/_speedups.

Every *_c.pyx has a pure-Python *_py.py twin, so a failed or skipped build
leaves a working package: set HORSIES_NO_EXTENSIONS=1 to skip compiling.
"""

from __future__ import annotations

import os
from glob import glob

from setuptools import setup

_OFF = {"1", "true", "yes", "on"}


def _extensions() -> list:
    if os.environ.get("HORSIES_NO_EXTENSIONS", "").strip().lower() in _OFF:
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        return []
    from setuptools import Extension

    trace = os.environ.get("HORSIES_CYTHON_TRACE") == "1"
    modules = [
        Extension(
            path[:-4].replace(os.sep, "."),
            [path],
            define_macros=[("CYTHON_TRACE", "1")] if trace else [],
        )
        for path in sorted(glob(os.path.join("horsies", "_speedups", "*_c.pyx")))
    ]
    return cythonize(
        modules,
        compiler_directives={
            "language_level": 3,
            "embedsignature": True,
            "binding": True,
            "boundscheck": False,
            "wraparound": False,
            "linetrace": trace,
        },
    )


setup(ext_modules=_extensions())
