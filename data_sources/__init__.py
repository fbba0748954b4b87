"""Series in, aligned point-in-time daily panel out.

The lowest layer of the product: a catalog of series (``catalog``), sources that
read them (``sources``), publication-lag rules (``publication``), the business-day
panel builder with its as-of view (``panel``), and a Parquet store (``store``).
Nothing here imports ``forecaster`` or ``dashboard``.
"""
