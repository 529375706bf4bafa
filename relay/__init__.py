"""relay: a privacy-first contact-form relay. Importing it has no side effects."""

__version__ = "0.1.0"
