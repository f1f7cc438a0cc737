"""SPF (RFC 7208): our own check at MAIL FROM, or a trusted upstream host's result."""
