"""dkim package."""
