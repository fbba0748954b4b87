"""Plotly Dash application (presentation only)."""
