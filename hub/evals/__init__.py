"""Prompt evals: datasets of cases, assertions, versions × models compared, gated promotion.

- :mod:`hub.evals.spec`: eval files (YAML → strict models, errors with file and line).
- :mod:`hub.evals.assertions`: what a case's output is checked with; :mod:`hub.evals.metrics`
  for dataset-level classification metrics.
- :mod:`hub.evals.runner`: runs the matrix through the same ``llm.chat`` path production runs.
- :mod:`hub.evals.report`: the summary per variant, differing cases, baseline diff, JSON/HTML.
- :mod:`hub.evals.results`: stored runs and results; :mod:`hub.evals.gate`: gated promotion;
  :mod:`hub.evals.dataset`: a production call becomes a new case.
"""
