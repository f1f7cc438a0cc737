"""DMARC reports (issue 13): recording every inbound evaluation, aggregate and failure reports."""
