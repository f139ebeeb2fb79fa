"""docs/compiler.md embeds the tables generated from msdf_unet/spec/engine.py."""
from pathlib import Path

from msdf_unet.spec.engine import markdown_tables

DOC = Path(__file__).resolve().parents[2] / "docs" / "compiler.md"


def test_tables_match_the_declaration():
    text = DOC.read_text()
    start = text.index("<!-- BEGIN GENERATED: msdf_unet.spec.engine.markdown_tables() -->\n")
    start = text.index("\n", start) + 1
    end = text.index("<!-- END GENERATED -->")
    assert text[start:end] == markdown_tables(), \
        "regenerate the tables of docs/compiler.md from spec.engine.markdown_tables()"
