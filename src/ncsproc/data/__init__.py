"""Versioned data files shipped with ncsproc: normal limits, criteria and pattern rules (TOML)."""
