"""Command lines and the typed run configuration."""
