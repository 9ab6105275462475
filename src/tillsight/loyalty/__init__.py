"""Rewards and their redemption: codes, issue, redemption at the till or the
API, control groups and the import of a previous system's rewards.

Points live in the pure core (``tillsight.core.points``); rewards live here,
at the edge, because using a code once needs the database to decide a race.
"""
