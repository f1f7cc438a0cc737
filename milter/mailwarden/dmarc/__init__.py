"""DMARC (RFC 7489, RFC 9989): policy discovery, evaluation and enforcement."""
