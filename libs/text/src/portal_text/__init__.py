"""Vietnamese text: folding, one tone-mark placement, slugs and diacritics checks (pure logic)."""

from portal_text.vietnamese import (
    ascii_fold,
    fold,
    has_vietnamese_diacritics,
    needs_tone_placement,
    nfc,
    normalize_tone_placement,
    slugify,
    written_with_diacritics,
)
from portal_text.xml import is_xml_safe, xml_safe

__all__ = [
    "ascii_fold",
    "fold",
    "has_vietnamese_diacritics",
    "is_xml_safe",
    "needs_tone_placement",
    "nfc",
    "normalize_tone_placement",
    "slugify",
    "written_with_diacritics",
    "xml_safe",
]
