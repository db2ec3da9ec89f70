"""The performance lab: test plan PT-01..PT-07 against a private platform, same-run ceilings,
per-process sampling, a consistency audit after every test, charts and one HTML report.

Each test is one module under ``tests/`` (its run, analysis, charts and report section) and the
registry ``tests.REGISTRY`` lists them; ``runner`` only orchestrates them.
``shopstream lab run PT-01|...|all --profile smoke|quick|full`` is the entry point (``runner``).
"""
