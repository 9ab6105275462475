"""Figures that say whether the programme works, for the CLI, API and pages.

``redemption_report`` (in :mod:`tillsight.kpi.redemption`) is the one function
behind ``tillsight kpi redemption``, ``GET /v1/kpis/redemption`` and the HTML
page of :mod:`tillsight.kpi.report`.
"""
