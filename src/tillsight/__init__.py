"""tillsight: point-of-sale transactions in, customer lifecycle journeys out."""

__version__ = "0.1.0"
