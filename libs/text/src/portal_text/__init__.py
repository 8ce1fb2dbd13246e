"""Vietnamese text: folding, one tone-mark placement, slugs and diacritics checks (pure logic)."""

from portal_text.vietnamese import (
    fold,
    has_vietnamese_diacritics,
    nfc,
    normalize_tone_placement,
    slugify,
    written_with_diacritics,
)

__all__ = [
    "fold",
    "has_vietnamese_diacritics",
    "nfc",
    "normalize_tone_placement",
    "slugify",
    "written_with_diacritics",
]
