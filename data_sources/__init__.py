"""Series in, aligned point-in-time daily panel out.

The lowest layer of the product: a catalog of series (``catalog``), sources that
read them (``sources``), publication-lag rules (``publication``), the business-day
panel builder with its as-of view (``panel``), a Parquet store (``store``), the
NYSE business-day calendar (``calendar``), the TabFormer credit-card ETL
(``tabformer``), and the usable-GPU probe for the optional cuDF path (``gpu``).
Nothing here imports ``forecaster`` or ``dashboard``.
"""
