"""The generic core: tokenizer, GPT, sampler, training and run folders.

Nothing here knows the market catalog or the transaction schema: a column is a
``ColumnSpec``, a row is a fixed number of token ids, a run folder holds a model
and a tokenizer. The market domain (``forecaster.market``) and the synthesis
domain (``forecaster.synthesis``) build on it.
"""
