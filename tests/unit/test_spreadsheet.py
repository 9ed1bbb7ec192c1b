"""Spreadsheet-safe CSV cells (OWASP's CSV-injection advice)."""
import pytest

from pipeline.outputs.spreadsheet import safe_cell


@pytest.mark.parametrize("text", ["=1+1", '=HYPERLINK("http://x","y")', "+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"])
def test_text_a_spreadsheet_would_run_gets_a_quote_before_it(text):
    assert safe_cell(text) == "'" + text


@pytest.mark.parametrize("value", ["pass", "a = b", "客户说 =1", "", None, -5, 3.5, "'=already quoted"])
def test_everything_else_is_kept(value):
    assert safe_cell(value) == value
