"""Settings and the embedded development defaults."""
