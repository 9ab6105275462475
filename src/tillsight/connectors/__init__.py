"""Connectors: the edges where tillsight keeps outside systems (CRMs) in step.

Each connector lives in its own package and talks to its vendor over HTTP; the
core never imports a connector.
"""
