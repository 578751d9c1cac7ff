"""stemstream's latency package."""
