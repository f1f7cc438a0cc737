"""Thin shells that feed the core: the pymilter adapter (serve) and the dry-run adapter."""
