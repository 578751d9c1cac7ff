"""stemstream's plugin_host package."""
