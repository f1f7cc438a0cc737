"""Shared test helpers: a milter-protocol client (milterclient) and a private Postfix (postfix)."""
