"""reid: person re-identification with the Group Loss."""

__version__ = "0.1.0"
