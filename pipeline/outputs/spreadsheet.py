"""Cells of the CSV files people open in a spreadsheet (the QA exports of the CLI and the web
app). A text cell that a spreadsheet would run as a formula, one starting with = + - @ or a tab
or carriage return (a reviewer's comment "=HYPERLINK(...)", a quote "-5 dollars..."), is
prefixed with a single quote, as OWASP's advice on CSV injection says: the spreadsheet then shows
the text as it was typed. Numbers and times stay as they are. Parquet files are data for tools,
not spreadsheets, and keep the text unchanged."""
from __future__ import annotations

import pandas as pd

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value):
    """The value, or the text with a single quote before it when a spreadsheet would run it."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy with every text cell made safe (column names too)."""
    out = frame.copy()
    for column in out.columns:
        if pd.api.types.is_object_dtype(out[column]) or pd.api.types.is_string_dtype(out[column]):
            out[column] = out[column].map(safe_cell)
    out.columns = [safe_cell(str(c)) for c in out.columns]
    return out
