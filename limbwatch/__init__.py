"""Shared contracts of limbwatch: recording files, the night report schema, configuration."""
