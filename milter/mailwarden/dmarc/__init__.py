"""dmarc package."""
