"""The pure core: events, the programme and the engine. No I/O, no clock.

Nothing in this package may import FastAPI, SQLAlchemy, httpx, Typer or read a
file, the network or the time of day. Callers hand it a customer's state, an
event (or the time a clock has reached) and the programme, and get back the
new state and the decisions.
"""
