"""Figures. matplotlib is imported inside each function so the statistics import fast.

A leaf of the package: the figures read curves, weights, results and studies through
the protocols of :mod:`transport.plotting.protocols`, never by importing their classes,
so that those classes can import this package lazily for their ``.plot*()`` methods.

- :mod:`~transport.plotting.curves`: a survival curve with its numbers at risk, a
  transport's curves, every method's curves, the forest plot and the decompositions;
- :mod:`~transport.plotting.weights`: covariate balance, the weights, overlap;
- :mod:`~transport.plotting.study`: a methods-validation study's estimates, bias and
  coverage.
"""

from __future__ import annotations

from transport.plotting.curves import (
    plot_decomposition,
    plot_decomposition_methods,
    plot_forest,
    plot_survival,
    plot_transport,
    plot_transport_methods,
)
from transport.plotting.study import plot_study_bias, plot_study_coverage, plot_study_estimates
from transport.plotting.weights import plot_balance, plot_overlap, plot_weights

__all__ = [
    "plot_balance",
    "plot_decomposition",
    "plot_decomposition_methods",
    "plot_forest",
    "plot_overlap",
    "plot_study_bias",
    "plot_study_coverage",
    "plot_study_estimates",
    "plot_survival",
    "plot_transport",
    "plot_transport_methods",
    "plot_weights",
]
