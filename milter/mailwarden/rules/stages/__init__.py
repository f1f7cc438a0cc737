"""The rule stages, one per file: top-level headers, MIME body walk, outbound headers."""
