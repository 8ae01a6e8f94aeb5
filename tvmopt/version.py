"""tvmopt's version: a module of its own, so that what records it needs no import of the package."""

__version__ = "0.1.0"
