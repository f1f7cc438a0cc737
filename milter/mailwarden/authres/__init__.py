"""Authentication-Results (RFC 8601): reading others', removing forged ones, writing ours."""
