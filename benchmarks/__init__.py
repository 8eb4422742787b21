"""Speed and accuracy benchmarks of ncsproc's measurement kernels (``python -m benchmarks``).

Not part of the installed package and not run by the test suite (a smoke test runs
``python -m benchmarks --quick`` to prove the script works, without asserting times).
"""
