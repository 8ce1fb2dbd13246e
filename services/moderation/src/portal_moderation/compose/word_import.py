"""A Word document (.docx) imported as an article: title, canonical body markup, images (pure).

The package is checked before anything is read (a zip of a sane size, not encrypted, with a
Word main document); text typed in legacy Vietnamese fonts is repaired in the document's XML
(``word_fonts``); mammoth converts the document with a style map for headings and captions
and hands every image to us instead of inlining it; the markup is rebuilt canonical
(``word_markup``). Images are kept only when their bytes are a JPEG, PNG, GIF or WebP image.
"""

from __future__ import annotations

import io
import posixpath
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import defusedxml.ElementTree as SafeET
import mammoth
from defusedxml import DefusedXmlException
from PIL import Image

from portal_moderation.compose.word_fonts import repair_legacy_fonts
from portal_moderation.compose.word_markup import (
    DROPPED_IMAGE,
    canonical_body,
    first_paragraph_text,
    parse,
    take_title,
)
from portal_text.legacy_encodings import LABELS

MAX_DOCUMENT_BYTES = 50 * 1024 * 1024
"""The most a .docx may weigh, compressed or uncompressed (read from the zip's directory)."""

MAX_PARTS = 2000

_STYLE_MAP = "\n".join(
    [
        "p[style-name='Title'] => h1:fresh",
        "p[style-name='Heading 1'] => h1:fresh",
        "p[style-name='Heading 2'] => h2:fresh",
        "p[style-name='Heading 3'] => h3:fresh",
        "p[style-name='Heading 4'] => h3:fresh",
        "p[style-name='Heading 5'] => h3:fresh",
        "p[style-name='Heading 6'] => h3:fresh",
        "p[style-name='Caption'] => figcaption:fresh",
    ]
)

_FORMATS = {
    "JPEG": ("image/jpeg", "jpg"),
    "PNG": ("image/png", "png"),
    "GIF": ("image/gif", "gif"),
    "WEBP": ("image/webp", "webp"),
}

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # old .doc, and Office's encrypted packages

_OFFICE_DOCUMENT = "/officeDocument"

# What reading a damaged zip entry raises (bad CRC, bad deflate data, unknown compression).
_DAMAGED = (zipfile.BadZipFile, zlib.error, NotImplementedError, OSError, EOFError, ValueError)


class WordImportError(ValueError):
    """The bytes are not a Word document this import accepts; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ImportedImage:
    name: str  # unique in the document, e.g. "image1.png"; the body refers to "cid:<name>"
    content_type: str  # from the image's bytes, not from what the document declares
    data: bytes
    caption: str


@dataclass(frozen=True)
class ImportedDocument:
    title: str
    body_html: str
    images: tuple[ImportedImage, ...]
    warnings: tuple[str, ...]


# --- the package ------------------------------------------------------------------------------


def _open_package(data: bytes) -> zipfile.ZipFile:
    if data.startswith(_OLE_MAGIC):
        raise WordImportError("password-protected or old binary .doc file: save it as .docx")
    if len(data) > MAX_DOCUMENT_BYTES:
        raise WordImportError("document too large")
    try:
        package = zipfile.ZipFile(io.BytesIO(data))
        infos = package.infolist()
    except (zipfile.LargeZipFile, ValueError, *_DAMAGED) as exc:
        raise WordImportError("not a Word document (.docx): not a zip package") from exc
    if len(infos) > MAX_PARTS:
        raise WordImportError("document has too many parts")
    if sum(info.file_size for info in infos) > MAX_DOCUMENT_BYTES:
        raise WordImportError("document too large when uncompressed (zip bomb?)")
    if any(info.flag_bits & 0x1 for info in infos):
        raise WordImportError("encrypted document")
    return package


def _read(package: zipfile.ZipFile, name: str) -> bytes | None:
    try:
        return package.read(name)
    except KeyError:
        return None
    except _DAMAGED as exc:
        raise WordImportError(f"damaged document part: {name}") from exc


def _main_part(package: zipfile.ZipFile) -> str:
    """The main document's path, from the package relationships."""
    rels = _read(package, "_rels/.rels")
    if rels is None or _read(package, "[Content_Types].xml") is None:
        raise WordImportError("not a Word document (.docx): no package relationships")
    try:
        root = SafeET.fromstring(rels)
    except (SafeET.ParseError, DefusedXmlException) as exc:
        raise WordImportError("not a Word document (.docx): unreadable relationships") from exc
    for rel in root:
        if (rel.get("Type") or "").endswith(_OFFICE_DOCUMENT) and rel.get("Target"):
            target = posixpath.normpath((rel.get("Target") or "").lstrip("/"))
            if _read(package, target) is not None:
                return target
    raise WordImportError("not a Word document (.docx): no main document")


def _check_xml(package: zipfile.ZipFile) -> None:
    """Every XML part parses without a DTD or entities (mammoth's parser is not defused)."""
    for info in package.infolist():
        if not info.filename.endswith((".xml", ".rels")):
            continue
        try:
            SafeET.fromstring(_read(package, info.filename) or b"<empty/>")
        except DefusedXmlException as exc:
            raise WordImportError(f"forbidden XML construct in {info.filename}") from exc
        except SafeET.ParseError as exc:
            raise WordImportError(f"malformed XML in {info.filename}") from exc


def _with_part(package: zipfile.ZipFile, name: str, content: bytes) -> bytes:
    """The package with one part replaced (the rest copied as it was)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as copy:
        for info in package.infolist():
            copy.writestr(info, content if info.filename == name else package.read(info))
    return out.getvalue()


def _styles_part(main: str) -> str:
    return posixpath.join(posixpath.dirname(main), "styles.xml")


# --- images -----------------------------------------------------------------------------------


def _image_format(data: bytes) -> tuple[str, str] | None:
    """(content type, extension) when ``data`` is a whole JPEG, PNG, GIF or WebP image."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            kind = _FORMATS.get(image.format or "")
            image.verify()
    except Exception:  # Pillow raises many types for bytes that are not an image
        return None
    return kind


class _ImageCollector:
    """Mammoth's image converter: keeps acceptable images and names them in the markup."""

    def __init__(self, max_images: int, max_image_bytes: int, warnings: list[str]) -> None:
        self.max_images = max_images
        self.max_image_bytes = max_image_bytes
        self.warnings = warnings
        self.kept: list[tuple[str, str, bytes]] = []

    def __call__(self, image: Any) -> dict[str, str]:
        try:
            with image.open() as stream:
                data = stream.read(self.max_image_bytes + 1)
        except (KeyError, *_DAMAGED):
            return self._drop("image missing from the document dropped")
        if len(data) > self.max_image_bytes:
            return self._drop("image over size limit dropped")
        kind = _image_format(data)
        if kind is None:
            return self._drop("image not a JPEG, PNG, GIF or WebP dropped")
        if len(self.kept) >= self.max_images:
            return self._drop(f"image over the limit of {self.max_images} images dropped")
        content_type, extension = kind
        name = f"image{len(self.kept) + 1}.{extension}"
        self.kept.append((name, content_type, data))
        return {"src": f"cid:{name}"}

    def _drop(self, reason: str) -> dict[str, str]:
        self.warnings.append(reason)
        return {"src": DROPPED_IMAGE}


# --- the import -------------------------------------------------------------------------------


def import_docx(
    data: bytes, *, max_images: int = 20, max_image_bytes: int = 10 * 1024 * 1024
) -> ImportedDocument:
    """The article a .docx holds; raises WordImportError when the bytes are not one."""
    warnings: list[str] = []
    with _open_package(data) as package:
        main = _main_part(package)
        _check_xml(package)
        if any(i.filename.lower().endswith("vbaproject.bin") for i in package.infolist()):
            warnings.append("macros ignored")
        document_xml = _read(package, main) or b""
        fixed, repaired = repair_legacy_fonts(document_xml, _read(package, _styles_part(main)))
        for encoding, runs in repaired.items():
            warnings.append(f"text in {LABELS[encoding]} converted to Unicode ({runs} runs)")
        try:
            docx = _with_part(package, main, fixed) if fixed is not document_xml else data
        except _DAMAGED as exc:
            raise WordImportError("damaged document") from exc
    collector = _ImageCollector(max_images, max_image_bytes, warnings)
    convert_image: Callable[[Any], list[Any]] = mammoth.images.img_element(collector)
    try:
        result = mammoth.convert_to_html(
            io.BytesIO(docx),
            style_map=_STYLE_MAP,
            convert_image=convert_image,
            include_embedded_style_map=False,
        )
    except Exception as exc:  # mammoth's errors on odd documents are not one type
        raise WordImportError("unreadable Word document") from exc
    warnings += sorted({m.message for m in result.messages if m.type == "error"})
    root = parse(result.value)
    title = take_title(root) or first_paragraph_text(root)
    body_html, captions = canonical_body(root)
    images = tuple(
        ImportedImage(name, content_type, image_data, captions.get(f"cid:{name}", ""))
        for name, content_type, image_data in collector.kept
        if f'src="cid:{name}"' in body_html
    )
    if not body_html and not title:
        raise WordImportError("document has no text")
    return ImportedDocument(title, body_html, images, tuple(warnings))
