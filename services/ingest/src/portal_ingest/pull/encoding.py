"""Bytes to text, once: by the declared charset, or the detected one when the declaration is
wrong or missing (pure logic).

Ingest never repairs text: legacy Vietnamese font encodings (TCVN3/ABC, VNI) and mojibake are
normalize's job, which sees the text exactly as the source's own charset gives it. Guessing a
second time here would hide what normalize must repair. A wrong declaration is reported (it
shows in the source's health) so the partner can fix it.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

import charset_normalizer

# Codecs that are not one byte per character: the "valid UTF-8 means UTF-8" rule is only sound
# for single-byte declarations.
_MULTI_BYTE_PREFIXES = ("utf", "gb", "big5", "shift_jis", "euc", "iso2022", "cp93", "cp94", "cp95")
_MULTI_BYTE = frozenset({"hz", "johab", "cp932", "cp949", "cp950"})

# Labels of legacy Vietnamese charsets Python has no codec for (or that are really font
# encodings over Windows-1252). Their bytes go to normalize unchanged, one byte per character
# as a browser shows them, and normalize's repair recognises the runs.
_LEGACY_VIETNAMESE = frozenset(
    {
        "viscii",
        "x-viet-viscii",
        "tcvn",
        "tcvn3",
        "tcvn-3",
        "tcvn5712",
        "tcvn-5712",
        "x-viet-tcvn",
        "x-viet-tcvn5712",
        "vni",
        "x-viet-vni",
        "vps",
        "x-viet-vps",
        "abc",
    }
)


def _web_latin(error: UnicodeError) -> tuple[str, int]:
    # WHATWG windows-1252: the five bytes Windows leaves undefined map to U+0081 and so on.
    assert isinstance(error, UnicodeDecodeError)
    bad = error.object[error.start : error.end]
    return "".join(chr(b) for b in bad), error.end


codecs.register_error("portal-web-latin", _web_latin)


def byte_transparent(body: bytes) -> str:
    """Windows-1252 as browsers decode it: every byte is one character, nothing is lost."""
    return body.decode("cp1252", errors="portal-web-latin")


def _single_byte(codec: str) -> bool:
    return codec not in _MULTI_BYTE and not codec.startswith(_MULTI_BYTE_PREFIXES)


_XML_DECL = re.compile(
    rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._:-]{1,40})["']""", re.IGNORECASE
)
_META_CHARSET = re.compile(
    rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9._:-]{1,40})""", re.IGNORECASE
)
_XML_DECL_TEXT = re.compile(r"^(\s*<\?xml[^>]*?)encoding\s*=\s*[\"'][^\"']*[\"']", re.IGNORECASE)

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def codec_name(label: str | None) -> str | None:
    """Python's canonical codec name for a charset label, or None if unknown."""
    if not label:
        return None
    try:
        return codecs.lookup(label.strip().strip("\"'")).name
    except LookupError:
        return None


def charset_of_content_type(content_type: str | None) -> str | None:
    if not content_type:
        return None
    for part in content_type.split(";")[1:]:
        key, _, value = part.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            return value.strip().strip("\"'")
    return None


def declared_in_document(body: bytes, kind: str) -> str | None:
    """The charset the document declares about itself (XML declaration or HTML meta)."""
    head = body[:2048]
    match = _XML_DECL.match(head)
    if match:
        return match.group(1).decode("ascii")
    if kind == "html":
        match = _META_CHARSET.search(head)
        if match:
            return match.group(1).decode("ascii")
    return None


@dataclass(frozen=True)
class Decoded:
    text: str
    encoding: str  # the codec the text was decoded with
    declared: str | None  # what the source said (header, else document), as given
    warning: str | None = None  # a wrong or missing declaration, for the source's health


def _strict(body: bytes, codec: str) -> str | None:
    try:
        return body.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return None


def _has_multibyte_utf8(body: bytes) -> bool:
    return any(b >= 0x80 for b in body) and _strict(body, "utf-8") is not None


def decode_document(body: bytes, content_type: str | None, kind: str) -> Decoded:
    """Decode ``body`` (kind: 'xml', 'html' or 'json') exactly once.

    Order: a byte-order mark; else the HTTP charset, else the document's own declaration; if
    that declaration cannot be right (the bytes are not valid in it, or it claims a Western
    single-byte charset for bytes that are valid multi-byte UTF-8) the charset is detected.
    """
    header = charset_of_content_type(content_type)
    inner = declared_in_document(body, kind) if kind != "json" else None
    declared_label = header or inner
    for bom, codec in _BOMS:
        if body.startswith(bom):
            text = body.decode(codec, errors="replace")
            declared = codec_name(declared_label)
            warning = None
            if declared and declared.replace("-sig", "") not in codec:
                warning = (
                    f"declared charset {declared_label} but the body starts with a {codec} BOM"
                )
            return Decoded(text.lstrip("\ufeff"), codec, declared_label, warning)

    if kind == "json":
        # JSON is UTF-8 (RFC 8259); a charset parameter cannot change that.
        as_json = _strict(body, "utf-8")
        if as_json is not None:
            return Decoded(as_json, "utf-8", declared_label)
        return _detected(body, declared_label, "JSON must be UTF-8 but the body is not")

    if declared_label and declared_label.strip().lower() in _LEGACY_VIETNAMESE:
        if _has_multibyte_utf8(body):
            return Decoded(
                body.decode("utf-8"),
                "utf-8",
                declared_label,
                f"declared charset {declared_label} but the body is UTF-8; decoded as UTF-8",
            )
        # Not a guess: the bytes are passed on one to one for normalize's legacy repair.
        return Decoded(byte_transparent(body), "windows-1252", declared_label)
    declared = codec_name(declared_label)
    if declared_label and declared is None:
        return _detected(body, declared_label, f"unknown charset {declared_label!r} declared")
    if declared is None:
        # XML without a declaration is UTF-8; HTML without one most often is too.
        plain = _strict(body, "utf-8")
        if plain is not None:
            return Decoded(plain, "utf-8", None)
        return _detected(body, None, "no charset declared and the body is not UTF-8")

    if _single_byte(declared) and _has_multibyte_utf8(body):
        return Decoded(
            body.decode("utf-8"),
            "utf-8",
            declared_label,
            f"declared charset {declared_label} but the body is UTF-8; decoded as UTF-8",
        )
    decoded = _strict(body, declared)
    if decoded is None and declared == "cp1252":
        decoded = byte_transparent(body)
    if decoded is not None:
        warning = None
        if header and inner and codec_name(inner) not in (None, declared):
            warning = (
                f"the HTTP header says charset {header} and the document says {inner}; "
                f"the header's {header} decodes it"
            )
        return Decoded(decoded, declared, declared_label, warning)
    return _detected(
        body, declared_label, f"declared charset {declared_label} does not fit the bytes"
    )


def _detected(body: bytes, declared_label: str | None, why: str) -> Decoded:
    best = charset_normalizer.from_bytes(body).best()
    codec = codec_name(best.encoding) if best is not None else None
    if codec is not None:
        text = _strict(body, codec)
        if text is not None:
            return Decoded(text, codec, declared_label, f"{why}; decoded as detected {codec}")
    fallback = codec_name(declared_label) or "utf-8"
    return Decoded(
        body.decode(fallback, errors="replace"),
        fallback,
        declared_label,
        f"{why}; no charset fits, decoded as {fallback} with replacement characters",
    )


def as_utf8_xml(text: str) -> bytes:
    """Decoded XML as UTF-8 bytes whose declaration says so (parsers must not decode again)."""
    return _XML_DECL_TEXT.sub(r"\1encoding='utf-8'", text, count=1).encode("utf-8")
