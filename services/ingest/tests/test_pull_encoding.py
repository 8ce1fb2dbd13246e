"""Decoding fetched documents exactly once: declared charset, or detected when the
declaration is wrong; legacy Vietnamese bytes passed on unchanged for normalize's repair."""

from __future__ import annotations

import unicodedata

from portal_ingest.pull.encoding import as_utf8_xml, decode_document

TEXT = "Hội nghị Ban Chấp hành Đảng bộ tỉnh lần thứ 5 bàn về công tác xây dựng Đảng"


def _xml(text: str, declared: str | None) -> str:
    decl = f'<?xml version="1.0" encoding="{declared}"?>' if declared else '<?xml version="1.0"?>'
    return f"{decl}<rss><channel><title>{text}</title></channel></rss>"


def test_utf8_declared_utf8() -> None:
    d = decode_document(_xml(TEXT, "utf-8").encode(), "application/rss+xml", "xml")
    assert TEXT in d.text and d.encoding == "utf-8" and d.warning is None


def test_no_declaration_means_utf8() -> None:
    d = decode_document(_xml(TEXT, None).encode(), None, "xml")
    assert TEXT in d.text and d.warning is None


def test_utf8_bytes_declared_latin1_are_utf8_and_reported() -> None:
    body = _xml(TEXT, "ISO-8859-1").encode("utf-8")
    d = decode_document(body, None, "xml")
    assert TEXT in d.text
    assert d.encoding == "utf-8"
    assert d.warning is not None and "ISO-8859-1" in d.warning


def test_http_header_declaration_wins_and_is_checked() -> None:
    body = _xml(TEXT, "utf-8").encode("utf-8")
    d = decode_document(body, "text/xml; charset=windows-1252", "xml")
    assert TEXT in d.text  # valid multi-byte UTF-8 is not Windows-1252 text
    assert d.warning is not None


_TONES = {"\u0300", "\u0301", "\u0303", "\u0309", "\u0323"}


def _cp1258_form(text: str) -> str:
    """Windows-1258 keeps vowel shapes precomposed and writes tone marks as combining."""
    out = []
    for ch in text:
        parts = unicodedata.normalize("NFD", ch)
        tones = "".join(c for c in parts if c in _TONES)
        out.append(unicodedata.normalize("NFC", "".join(c for c in parts if c not in _TONES)))
        out.append(tones)
    return "".join(out)


def test_windows_1258_declared_and_true_is_decoded_by_it() -> None:
    body = _xml(_cp1258_form("Hội nghị Đảng"), "windows-1258").encode("cp1258")
    d = decode_document(body, None, "xml")
    assert d.encoding == "cp1258" and d.warning is None
    # Handed on as decoded (combining tone marks); NFC is normalize's job.
    assert unicodedata.normalize("NFC", d.text).count("Hội nghị Đảng") == 1


def test_utf8_declared_but_not_utf8_is_detected_and_reported() -> None:
    body = _xml("Thông báo mới nhất về hội nghị", "utf-8").encode("utf-8")
    body = body.replace("Thông báo".encode(), "Th\xf4ng b\xe1o".encode("latin-1"))
    d = decode_document(body, None, "xml")
    assert d.warning is not None and "does not fit" in d.warning
    assert "�" not in d.text


def test_tcvn3_font_text_passes_through_byte_for_byte() -> None:
    # TCVN3 (.VnTime) text is Windows-1252 bytes that a legacy font draws as Vietnamese:
    # "Héi nghÞ" is "Hội nghị". Ingest must hand it on unchanged, not guess.
    body = _xml("Héi nghÞ §¶ng bé", "windows-1252").encode("cp1252")
    d = decode_document(body, None, "xml")
    assert "Héi nghÞ §¶ng bé" in d.text
    assert d.warning is None


def test_legacy_vietnamese_labels_are_passed_byte_transparent() -> None:
    raw = bytes(range(0x80, 0x100))
    d = decode_document(b"<p>" + raw + b"</p>", "text/html; charset=VISCII", "html")
    assert d.encoding == "windows-1252"
    assert len(d.text) == len(raw) + 7  # one character per byte, nothing lost


def test_html_meta_charset_is_read() -> None:
    html = f'<html><head><meta charset="windows-1258"></head><body>{TEXT}</body></html>'
    d = decode_document(html.encode("utf-8"), "text/html", "html")
    assert TEXT in d.text and "UTF-8" in (d.warning or "")


def test_json_is_utf8_whatever_the_header() -> None:
    d = decode_document('{"title": "Đảng"}'.encode(), "application/json; charset=latin-1", "json")
    assert d.text == '{"title": "Đảng"}'


def test_byte_order_mark() -> None:
    body = _xml(TEXT, "utf-16").encode("utf-16")
    d = decode_document(body, None, "xml")
    assert TEXT in d.text and d.warning is None


def test_as_utf8_xml_rewrites_the_declaration() -> None:
    out = as_utf8_xml(_xml(TEXT, "windows-1258"))
    assert out.startswith(b"<?xml version=\"1.0\" encoding='utf-8'?>")
    assert TEXT.encode() in out
