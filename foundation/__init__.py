"""The bottom layer every other layer may import: user errors, atomic writes, safe names, strict configs.

It imports nothing from the project. ``data_sources`` (the data layer), the
generic core (``forecaster.core``), the market and synthesis domains, the CLI
and the dashboard all build on it.
"""
