"""
Benchmarks. Each prints its figures and medians; run one with
C{python -m bench.<name>}.
"""
