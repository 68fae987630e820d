"""Survival estimation: the weighted Kaplan–Meier kernel and the ``SurvivalCurve`` result."""

from transport.survival.curve import SurvivalCurve, kaplan_meier

__all__ = ["SurvivalCurve", "kaplan_meier"]
