"""Text typed in legacy Vietnamese fonts inside a Word document, repaired to Unicode (pure).

Word keeps the text of a run typed in an 8-bit font as the Windows-1252 reading of its bytes
("§¶ng" for "Đảng" under .VnTime) and names the font in the run's properties, its character
style, its paragraph style or the document defaults. The font is a strong hint: a run in a
.Vn* font is decoded as TCVN3, a VNI-* font as VNI, even where detection alone would be
unsure; a run in a Unicode font is left alone. Text that cannot be 8-bit font bytes (it holds
ạ, ơ, đ ...) is Unicode whatever the font says, and is left alone too.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import defusedxml.ElementTree as SafeET

from portal_text.legacy_encodings import (
    NO_HINT,
    Encoding,
    Hint,
    could_be_font_bytes,
    decode_pieces_in_font,
    font_hint,
)

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


# A theme font (asciiTheme="minorHAnsi") is one of the theme's Unicode fonts.
_THEME = ""


def _val(element: ET.Element | None, name: str) -> str | None:
    return None if element is None else element.get(f"{_W}{name}")


def _font_of(rpr: ET.Element | None) -> str | None:
    """The font a run-properties element names for Latin text, "" for a theme font, None if
    it names none. hAnsi covers the bytes 0x80..0xFF that hold the Vietnamese letters."""
    fonts = None if rpr is None else rpr.find(f"{_W}rFonts")
    if fonts is None:
        return None
    for name in ("hAnsi", "ascii"):
        if _val(fonts, name):
            return _val(fonts, name)
    if _val(fonts, "hAnsiTheme") or _val(fonts, "asciiTheme"):
        return _THEME
    return None


@dataclass(frozen=True)
class _Styles:
    fonts: dict[str, str | None]  # style id -> font named by the style itself
    based_on: dict[str, str]
    default_paragraph: str | None
    default_font: str | None

    def font(self, style_id: str | None) -> str | None:
        seen: set[str] = set()
        while style_id and style_id not in seen:
            seen.add(style_id)
            font = self.fonts.get(style_id)
            if font is not None:
                return font
            style_id = self.based_on.get(style_id)
        return None


def _read_styles(styles_xml: bytes | None) -> _Styles:
    if not styles_xml:
        return _Styles({}, {}, None, None)
    root = SafeET.fromstring(styles_xml)
    fonts: dict[str, str | None] = {}
    based_on: dict[str, str] = {}
    default_paragraph = None
    for style in root.iter(f"{_W}style"):
        style_id = _val(style, "styleId")
        if not style_id:
            continue
        fonts[style_id] = _font_of(style.find(f"{_W}rPr"))
        parent = _val(style.find(f"{_W}basedOn"), "val")
        if parent:
            based_on[style_id] = parent
        if _val(style, "type") == "paragraph" and _val(style, "default") in ("1", "true"):
            default_paragraph = style_id
    defaults = root.find(f"{_W}docDefaults/{_W}rPrDefault/{_W}rPr")
    return _Styles(fonts, based_on, default_paragraph, _font_of(defaults))


def _run_font(run: ET.Element, paragraph_style: str | None, styles: _Styles) -> str | None:
    rpr = run.find(f"{_W}rPr")
    for font in (
        _font_of(rpr),
        styles.font(_val(rpr.find(f"{_W}rStyle") if rpr is not None else None, "val")),
        styles.font(paragraph_style or styles.default_paragraph),
        styles.default_font,
    ):
        if font is not None:
            return font
    return None


def _paragraphs(root: ET.Element) -> Iterator[ET.Element]:
    yield from root.iter(f"{_W}p")


def _own_runs(parent: ET.Element) -> Iterator[ET.Element]:
    """The paragraph's runs, in hyperlinks, fields and content controls too, but not those of
    paragraphs nested in it (a text box's), which are paragraphs of their own."""
    for child in parent:
        if child.tag == f"{_W}r":
            yield child
        elif child.tag not in (f"{_W}p", f"{_W}pPr"):
            yield from _own_runs(child)


def _repair_group(texts: list[ET.Element], hint: Hint) -> bool:
    """Decode the w:t elements of consecutive runs under one legacy font; False if left alone."""
    pieces = [t.text or "" for t in texts]
    if not could_be_font_bytes("".join(pieces)):
        return False
    changed = False
    for t, fixed in zip(texts, decode_pieces_in_font(pieces, hint), strict=True):
        if fixed != (t.text or ""):
            t.text = fixed
            changed = True
    return changed


def repair_legacy_fonts(
    document_xml: bytes, styles_xml: bytes | None
) -> tuple[bytes, Counter[Encoding]]:
    """``document_xml`` with the text of runs in legacy fonts decoded to Unicode, and how many
    runs were repaired per encoding. The bytes come back unchanged when nothing was repaired."""
    styles = _read_styles(styles_xml)
    root = SafeET.fromstring(document_xml)
    repaired: Counter[Encoding] = Counter()
    for paragraph in _paragraphs(root):
        paragraph_style = _val(paragraph.find(f"{_W}pPr/{_W}pStyle"), "val")
        group: list[ET.Element] = []
        group_hint = NO_HINT
        runs = 0
        for run in [*_own_runs(paragraph), None]:
            hint = (
                NO_HINT if run is None else font_hint(_run_font(run, paragraph_style, styles) or "")
            )
            if hint != group_hint or run is None:
                if group and group_hint.encoding is not None and _repair_group(group, group_hint):
                    repaired[group_hint.encoding] += runs
                group, group_hint, runs = [], hint, 0
            if run is not None and hint.encoding is not None:
                group += run.findall(f"{_W}t")
                runs += 1
    if not repaired:
        return document_xml, repaired
    return ET.tostring(root, encoding="utf-8", xml_declaration=True), repaired
