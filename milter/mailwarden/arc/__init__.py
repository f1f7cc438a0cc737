"""ARC (RFC 8617): verify chains inbound, seal as a forwarder, let a trusted chain rescue DMARC."""
