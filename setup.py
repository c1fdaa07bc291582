"""Only the optional C extension is declared here (everything else is in pyproject.toml).

``retrieval._native`` holds the indexer's per-character and per-token loops in C. It is
optional: without a C compiler the install goes on without it, and ``retrieval.native`` falls
back to the same loops in Python (slower, the same results).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("retrieval._native", ["retrieval/_native.c"], optional=True)])
