"""stemstream's rt package."""
