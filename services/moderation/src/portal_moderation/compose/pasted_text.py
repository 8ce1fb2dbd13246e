"""Text pasted from Word into the editor, in legacy Vietnamese fonts, repaired (pure).

The browser sends the pasted text runs with the font each was typed in (the markup names it);
a run in a .Vn* (TCVN3) or VNI-* font is decoded with that font's encoding by the shared repair
code (``portal_text.legacy_encodings``), the same as a Word document's import. Text in a Unicode
font, or that cannot be 8-bit font bytes, is left alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import groupby

from portal_text.legacy_encodings import could_be_font_bytes, decode_pieces_in_font, font_hint

MAX_RUNS = 5000
MAX_CHARS = 2_000_000


class TooMuchText(ValueError):
    """More runs or characters than one paste holds."""


def repair_runs(runs: Sequence[tuple[str, str]]) -> tuple[list[str], int]:
    """Each run's text (``(font family, text)``) in Unicode, and how many runs were decoded.
    Consecutive runs in one font are decoded together (a VNI mark split from its letter)."""
    if len(runs) > MAX_RUNS or sum(len(text) for _, text in runs) > MAX_CHARS:
        raise TooMuchText(f"at most {MAX_RUNS} runs and {MAX_CHARS} characters")
    out: list[str] = []
    repaired = 0
    for hint, group in groupby(runs, key=lambda run: font_hint(run[0])):
        pieces = [text for _, text in group]
        if hint.encoding is None or not could_be_font_bytes("".join(pieces)):
            out += pieces
            continue
        fixed = decode_pieces_in_font(pieces, hint)
        repaired += sum(a != b for a, b in zip(pieces, fixed, strict=True))
        out += fixed
    return out, repaired
