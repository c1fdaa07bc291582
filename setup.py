"""Only the optional C extension is declared here (everything else is in pyproject.toml).

``retrieval._native`` holds the indexer's per-character and per-token loops and a query's
scoring loop in C. It is optional: without a C compiler the install goes on without it, and
``retrieval.native`` falls back to the same loops in Python (slower, the same results).
"""

import sys

from setuptools import Extension, setup

#: Scores must equal the Python's to the last bit: no fused multiply-adds (GCC and Clang
#: contract ``a * b + c`` by default where the machine has them).
NO_CONTRACTION = [] if sys.platform == "win32" else ["-ffp-contract=off"]

setup(ext_modules=[Extension("retrieval._native", ["retrieval/_native.c"], extra_compile_args=NO_CONTRACTION,
                             optional=True)])
