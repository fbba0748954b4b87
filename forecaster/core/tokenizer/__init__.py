"""The shared tabular tokenizer: table rows <-> fixed-width rows of token ids.

Every column gets a fixed number of tokens: floats are transformed, binned and
written in positional base-B digits (decoded at the bin centre, with a reported
worst-case error); integers in digits; categories one token each with an
unknown token; datetimes as calendar parts. Missing values get their own token.
See ``table`` for the row layout and decoding policy, ``float_codec`` for the
out-of-range policy, ``serialize`` for the JSON schema. The domains own their specs:
``forecaster.market.tokenizer`` (the market panel) and ``forecaster.synthesis.tokenizer`` (TabFormer).

Public API::

    from forecaster.core.tokenizer import TableTokenizer, ColumnSpec
    tok = TableTokenizer.fit(frame, specs)
    ids = tok.encode(frame)              # (rows, tokens_per_row) int64
    frame2 = tok.decode(ids)             # or a flat sequence of whole rows
    mask = tok.valid_mask()              # (tokens_per_row, vocab_size) bool
    step = tok.constrained_mask(prefix)  # (batch, vocab_size) bool, given each row so far

Every row sampled under the static per-slot ``valid_mask`` decodes: a nullable
column's missing id exists only in its first slot (later digits are then
ignored), and a day past the month's end (31 April) decodes as the month's last
day. ``constrained_mask`` narrows sampling further to canonical encodings and
real dates. ``errors="raise"`` (the default) names the first problem in ids that
are not per-slot valid or not whole rows.
"""
from forecaster.core.tokenizer.codec_base import ColumnCodec
from forecaster.core.tokenizer.codecs import fit_codec, infer_kind
from forecaster.core.tokenizer.datetime_codec import DatetimeCodec
from forecaster.core.tokenizer.discrete_codecs import CategoryCodec, IntCodec
from forecaster.core.tokenizer.errors import DecodeError, EncodeError, FormatError, SpecError, TokenizerError
from forecaster.core.tokenizer.float_codec import FloatCodec
from forecaster.core.tokenizer.serialize import FORMAT, VERSION
from forecaster.core.tokenizer.spec import ColumnSpec
from forecaster.core.tokenizer.table import TableTokenizer

__all__ = [
    "TableTokenizer",
    "ColumnSpec",
    "ColumnCodec",
    "FloatCodec",
    "IntCodec",
    "CategoryCodec",
    "DatetimeCodec",
    "fit_codec",
    "infer_kind",
    "TokenizerError",
    "SpecError",
    "EncodeError",
    "DecodeError",
    "FormatError",
    "FORMAT",
    "VERSION",
]
