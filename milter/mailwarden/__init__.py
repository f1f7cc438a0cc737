"""mailwarden: one milter for hopcount, header_checks, DKIM, SPF and DMARC."""

__version__ = "0.1.0"
