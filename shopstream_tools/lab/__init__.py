"""The performance lab: test plan PT-01..PT-06 against a private platform, same-run ceilings,
per-process sampling, a consistency audit after every test, charts and one HTML report.

``shopstream lab run PT-01|...|all --profile smoke|quick|full`` is the entry point (``runner``).
"""
