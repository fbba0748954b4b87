"""Tokenizer, GPT, sampler, and the forecast/backtest/synthesis layers on top."""

__version__ = "0.1.0"
