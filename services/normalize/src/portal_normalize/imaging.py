"""Image checks, metadata stripping and renditions with libvips (CPU work, no I/O).

Runs in the image worker pool (``imagepool``), never in the service process itself.
What a fetched file must pass before the portal serves it:
* its bytes are an image of an accepted format (JPEG, PNG, GIF, WebP, TIFF, BMP), whatever the
  server's content type said; each format goes to its own loader, never one chosen for it;
* its pixels are counted from the header before any is decoded: one frame within
  ``max_pixels`` (decompression bombs), every frame together (width x height x frames) within
  ``max_total_pixels``, else an animation keeps its first frame only; not a tracking pixel;
* it decodes completely (a truncated file is broken).
What is stored:
* the original without its metadata (EXIF with GPS and camera, XMP, IPTC, comments): JPEG and
  PNG files are stripped losslessly segment by segment (the pixels stay byte for byte, only
  the orientation survives, as a minimal EXIF block); GIF and WebP are re-encoded; BMP and TIFF
  become PNG. Colour profiles are kept so colours stay right;
* WebP renditions at the configured widths below the original's (the original's own width as
  the largest when it is narrower than the widest), animated when the original is. They are
  made from the stored original by ``render`` when first asked for, not here: an encode costs
  many times the checks, and most renditions of most images are never requested.
"""

from __future__ import annotations

import hashlib
import io
import re
import warnings
from dataclasses import dataclass

import pyvips
from PIL import ExifTags, Image, UnidentifiedImageError

# Format -> (content type, file extension) of the stored original.
FORMATS: dict[str, tuple[str, str]] = {
    "JPEG": ("image/jpeg", "jpg"),
    "PNG": ("image/png", "png"),
    "GIF": ("image/gif", "gif"),
    "WEBP": ("image/webp", "webp"),
    "TIFF": ("image/png", "png"),
    "BMP": ("image/png", "png"),
}
MIN_SIDE = 8  # smaller than this is a spacer or tracking pixel, not a picture
MAX_FRAMES = 120  # longer animations keep their first frame only
MAX_TOTAL_PIXELS = 100_000_000
WEBP_QUALITY = 80
WEBP_EFFORT = 3  # encoder effort: 4 is libwebp's default, 3 is ~40% faster for ~1% bigger
ORIGINAL_WEBP_QUALITY = 90
_TALL = 10_000_000  # a height bound that never binds: renditions are fitted to their width


class ImageRejected(Exception):
    """The file is not an image the portal will serve; ``code`` is machine-readable."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(code, reason)  # both in args: the exception crosses processes
        self.code = code
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


@dataclass(frozen=True)
class ProcessedImage:
    sha256: str  # of the bytes as fetched: the same file is stored once
    format: str
    content_type: str
    extension: str
    width: int  # upright (after the EXIF orientation)
    height: int
    original: bytes
    rendition_widths: tuple[int, ...] = ()
    animated: bool = False
    reduced: bool = False  # an animation over the budget, kept as its first frame


def _sniff(data: bytes) -> str:
    head = data[:512].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        return "an HTML page, not an image"
    if head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in head):
        return "an SVG drawing (can carry scripts; not accepted)"
    if head.startswith(b"{") or head.startswith(b"["):
        return "JSON, not an image"
    return "not a recognisable image"


def image_format(data: bytes) -> str | None:
    """The accepted format the bytes are in, by their signature."""
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data.startswith((b"II*\x00", b"MM\x00*")):
        return "TIFF"
    if data.startswith(b"BM"):
        return "BMP"
    return None


_LOADERS = {
    "JPEG": pyvips.Image.jpegload_buffer,
    "PNG": pyvips.Image.pngload_buffer,
    "GIF": pyvips.Image.gifload_buffer,
    "WEBP": pyvips.Image.webpload_buffer,
    "TIFF": pyvips.Image.tiffload_buffer,
}


def _vips_error(exc: pyvips.Error) -> str:
    detail = " ".join(str(exc.detail or exc.message).split())
    return detail[:300]


# What libvips says when the worker's address-space limit, not the file, stopped it.
_OUT_OF_MEMORY = re.compile(r"memory|Error creating thread|Cannot allocate", re.IGNORECASE)


def _failed(what: str, exc: pyvips.Error) -> ImageRejected:
    detail = _vips_error(exc)
    if _OUT_OF_MEMORY.search(detail):
        return ImageRejected("over_budget", f"{what}: out of the worker's memory ({detail})")
    return ImageRejected("broken_image", f"{what}: {detail}")


def _load(fmt: str, data: bytes, **options: object) -> pyvips.Image:
    try:
        return _LOADERS[fmt](data, **options)
    except pyvips.Error as exc:
        raise _failed("cannot read the image", exc) from exc


def _decoded(image: pyvips.Image) -> None:
    """Every pixel decoded: a truncated or corrupt file stops here."""
    try:
        image.avg()
    except pyvips.Error as exc:
        raise _failed("the image does not decode", exc) from exc


def _bmp_as_png(data: bytes, max_pixels: int) -> bytes:
    """libvips reads no BMP: Pillow checks its size from the header and converts it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
            if im.width * im.height > max_pixels:
                raise ImageRejected("too_many_pixels", _over(im.width, im.height, max_pixels))
            im.load()
    except ImageRejected:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning,
            OSError, SyntaxError, ValueError) as exc:  # fmt: skip
        raise ImageRejected("broken_image", f"the image does not decode: {exc}") from exc
    out = io.BytesIO()
    (im if im.mode in ("1", "L", "LA", "P", "RGB", "RGBA") else im.convert("RGBA")).save(out, "PNG")
    return out.getvalue()


def _over(width: int, height: int, limit: int) -> str:
    return f"{width}x{height} is over {limit:,} pixels".replace(",", " ")


# --- lossless metadata stripping -------------------------------------------------------------

_JPEG_DROP = frozenset({0xE1, *range(0xE3, 0xEE), 0xEF, 0xFE})  # APP1 EXIF/XMP, APP3-13, APP15, COM
_PNG_KEEP = frozenset(
    {b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"iCCP", b"sBIT",
     b"pHYs", b"bKGD", b"acTL", b"fcTL", b"fdAT"}
)  # fmt: skip


def _exif_orientation_only(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    body = (
        b"Exif\x00\x00" + exif.tobytes()[6:]
        if exif.tobytes().startswith(b"Exif")
        else (b"Exif\x00\x00" + exif.tobytes())
    )
    return b"\xff\xe1" + (len(body) + 2).to_bytes(2, "big") + body


def strip_jpeg(data: bytes, orientation: int = 1) -> bytes:
    """The JPEG without EXIF/XMP/IPTC/comment segments, cut after its end marker (data glued
    after a picture, such as a second MPO picture with its own EXIF, goes too)."""
    if not data.startswith(b"\xff\xd8"):
        raise ValueError("not a JPEG")
    out = bytearray(b"\xff\xd8")
    if orientation not in (0, 1):
        out += _exif_orientation_only(orientation)
    pos = 2
    n = len(data)
    while pos < n:
        if data[pos] != 0xFF:
            raise ValueError("a JPEG segment does not start with a marker")
        while pos < n and data[pos] == 0xFF:
            pos += 1  # fill bytes
        marker = data[pos]
        pos += 1
        if marker == 0xD9:
            out += b"\xff\xd9"
            return bytes(out)
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            out += bytes([0xFF, marker])
            continue
        length = int.from_bytes(data[pos : pos + 2], "big")
        segment = data[pos : pos + length]
        if length < 2 or len(segment) < length:
            raise ValueError("a JPEG segment is truncated")
        pos += length
        if marker in _JPEG_DROP or (marker == 0xE2 and not segment[2:].startswith(b"ICC_PROFILE")):
            continue
        out += bytes([0xFF, marker]) + segment
        if marker == 0xDA:
            # Entropy-coded data up to the next marker (0xFF00 is a stuffed byte, RSTn inside).
            end = pos
            while True:
                end = data.find(b"\xff", end)
                if end < 0 or end + 1 >= n:
                    raise ValueError("the JPEG has no end marker")
                nxt = data[end + 1]
                if nxt == 0x00 or 0xD0 <= nxt <= 0xD7 or nxt == 0xFF:
                    end += 1 if nxt == 0xFF else 2
                    continue
                break
            out += data[pos:end]
            pos = end
    raise ValueError("the JPEG has no end marker")


def strip_png(data: bytes) -> bytes:
    """The PNG with only the chunks that draw the picture (text, EXIF, time chunks go)."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ValueError("not a PNG")
    out = bytearray(data[:8])
    pos = 8
    while pos + 8 <= len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if end > len(data):
            raise ValueError("a PNG chunk is truncated")
        if kind in _PNG_KEEP:
            out += data[pos:end]
        pos = end
        if kind == b"IEND":
            return bytes(out)
    raise ValueError("the PNG has no end chunk")


def rendition_widths(width: int, widths: tuple[int, ...]) -> list[int]:
    """The configured widths below the image's, and its own width when narrower than all."""
    chosen = [w for w in widths if w < width]
    if widths and width <= max(widths):
        chosen.append(width)
    return sorted(set(chosen))


def _field(image: pyvips.Image, name: str, default: int) -> int:
    return int(image.get(name)) if image.get_typeof(name) != 0 else default


def process_image(
    data: bytes,
    *,
    max_pixels: int,
    widths: tuple[int, ...],
    max_total_pixels: int = MAX_TOTAL_PIXELS,
) -> ProcessedImage:
    """Check ``data`` and make the original to store; raises ``ImageRejected`` with the reason."""
    sha = hashlib.sha256(data).hexdigest()
    fmt = image_format(data)
    if fmt is None:
        raise ImageRejected("not_an_image", _sniff(data))
    source = _bmp_as_png(data, max_pixels) if fmt == "BMP" else data
    header = _load("PNG" if fmt == "BMP" else fmt, source, access="sequential")
    frames = _field(header, "n-pages", 1) if fmt in ("GIF", "WEBP") else 1
    width, frame_height = header.width, _field(header, "page-height", header.height)
    if width * frame_height > max_pixels:
        raise ImageRejected("too_many_pixels", _over(width, frame_height, max_pixels))
    if width < MIN_SIDE or frame_height < MIN_SIDE:
        raise ImageRejected("too_small", f"{width}x{frame_height}: a spacer or tracking pixel")
    animated = frames > 1
    reduced = animated and (frames > MAX_FRAMES or width * frame_height * frames > max_total_pixels)
    if reduced:
        animated = False
    orientation = _field(header, "orientation", 1) if fmt in ("JPEG", "TIFF", "WEBP") else 1

    original: bytes
    if fmt == "JPEG":
        # Entropy-decoding every scan finds a truncated file; the 1/8 scale skips most work.
        _decoded(_load(fmt, data, shrink=8, fail_on="truncated", access="sequential"))
        try:
            original = strip_jpeg(data, orientation)
        except ValueError as exc:
            raise ImageRejected("broken_image", f"the file's structure is broken: {exc}") from exc
    elif fmt == "PNG":
        _decoded(_load(fmt, data, fail_on="truncated", access="sequential"))
        try:
            original = strip_png(data)
        except ValueError as exc:
            raise ImageRejected("broken_image", f"the file's structure is broken: {exc}") from exc
    else:
        pages = {"n": -1} if animated else {}
        image = _load("PNG" if fmt == "BMP" else fmt, source, fail_on="truncated", **pages)
        image = image.copy_memory() if animated else image
        _decoded(image)
        try:
            if fmt == "GIF":
                original = image.gifsave_buffer(keep="none")
            elif fmt == "WEBP":
                original = image.webpsave_buffer(Q=ORIGINAL_WEBP_QUALITY, keep="icc")
            else:  # TIFF, BMP -> PNG
                original = image.pngsave_buffer(keep="icc")
        except pyvips.Error as exc:
            raise _failed("cannot re-encode it", exc) from exc

    if orientation in (5, 6, 7, 8):
        width, frame_height = frame_height, width
    content_type, extension = FORMATS[fmt]
    return ProcessedImage(
        sha256=sha,
        format={"BMP": "PNG", "TIFF": "PNG"}.get(fmt, fmt),
        content_type=content_type,
        extension=extension,
        width=width,
        height=frame_height,
        original=original,
        rendition_widths=tuple(rendition_widths(width, widths)),
        animated=animated,
        reduced=reduced,
    )


def render(
    original: bytes,
    width: int,
    *,
    max_pixels: int,
    max_total_pixels: int = MAX_TOTAL_PIXELS,
) -> bytes:
    """The WebP rendition ``width`` pixels wide of a stored original (upright, animated when
    the original is, no metadata). The original passed ``process_image``; its budgets are
    checked again all the same, from the header."""
    fmt = image_format(original)
    if fmt not in ("JPEG", "PNG", "GIF", "WEBP"):
        raise ImageRejected("unsupported_format", "not a stored original")
    header = _load(fmt, original, access="sequential")
    frames = _field(header, "n-pages", 1) if fmt in ("GIF", "WEBP") else 1
    frame_pixels = header.width * _field(header, "page-height", header.height)
    if frame_pixels > max_pixels:
        raise ImageRejected("too_many_pixels", "the original is over the pixel budget")
    animated = 1 < frames <= MAX_FRAMES and frame_pixels * frames <= max_total_pixels
    try:
        small = pyvips.Image.thumbnail_buffer(
            original, width, height=_TALL, size="down", option_string="n=-1" if animated else ""
        )
        data: bytes = small.webpsave_buffer(Q=WEBP_QUALITY, effort=WEBP_EFFORT, keep="none")
    except pyvips.Error as exc:
        raise _failed("cannot render it", exc) from exc
    return data
