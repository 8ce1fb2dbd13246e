"""Image decoding, checks and re-encoding with Pillow (CPU work, no I/O).

What a fetched file must pass before the portal serves it:
* it decodes as an image of an accepted format, whatever the server's content type said;
* its pixel count is bounded before any pixel is decoded (decompression bombs), and it is
  not a tracking pixel;
* it decodes completely (a truncated file is broken).
What is stored:
* the original without its metadata (EXIF with GPS and camera, XMP, IPTC, comments): JPEG and
  PNG files are stripped losslessly segment by segment (the pixels stay byte for byte, only
  the orientation survives, as a minimal EXIF block); GIF and WebP are re-encoded; BMP and TIFF
  become PNG. Colour profiles are kept so colours stay right;
* WebP renditions at the configured widths below the original's (the original's own width
  as the largest when it is narrower than the widest), animated when the original is.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass, field
from typing import Any

from PIL import ExifTags, Image, ImageOps, ImageSequence, UnidentifiedImageError

# Decoded format -> (content type, file extension, stored as).
FORMATS: dict[str, tuple[str, str]] = {
    "JPEG": ("image/jpeg", "jpg"),
    "PNG": ("image/png", "png"),
    "GIF": ("image/gif", "gif"),
    "WEBP": ("image/webp", "webp"),
    "BMP": ("image/png", "png"),
    "TIFF": ("image/png", "png"),
    "MPO": ("image/jpeg", "jpg"),  # phone cameras' multi-picture JPEG: its first picture
}
MIN_SIDE = 8  # smaller than this is a spacer or tracking pixel, not a picture
MAX_FRAMES = 120  # animations longer than this keep their original only
WEBP_QUALITY = 80
WEBP_METHOD = 3  # encoder effort: 4 is libwebp's default, 3 is ~40% faster for ~1% bigger
JPEG_QUALITY = 88


class ImageRejected(Exception):
    """The file is not an image the portal will serve; ``code`` is machine-readable."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class ProcessedImage:
    sha256: str  # of the bytes as fetched: the same file is stored once
    format: str
    content_type: str
    extension: str
    width: int
    height: int
    original: bytes
    renditions: dict[int, bytes] = field(default_factory=dict)
    animated: bool = False


def _sniff(data: bytes) -> str:
    head = data[:512].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        return "an HTML page, not an image"
    if head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in head):
        return "an SVG drawing (can carry scripts; not accepted)"
    if head.startswith(b"{") or head.startswith(b"["):
        return "JSON, not an image"
    return "not a recognisable image"


def _open(data: bytes, max_pixels: int) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
    except UnidentifiedImageError as exc:
        raise ImageRejected("not_an_image", _sniff(data)) from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected("too_many_pixels", f"a decompression bomb: {exc}") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageRejected("broken_image", f"cannot read the image header: {exc}") from exc
    if im.format not in FORMATS:
        raise ImageRejected("unsupported_format", f"{im.format} images are not accepted")
    width, height = im.size
    if width * height > max_pixels:
        raise ImageRejected(
            "too_many_pixels", f"{width}x{height} is over {max_pixels:,} pixels".replace(",", " ")
        )
    if width < MIN_SIDE or height < MIN_SIDE:
        raise ImageRejected("too_small", f"{width}x{height}: a spacer or tracking pixel")
    return im


def _load(im: Image.Image) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected("broken_image", f"the image does not decode: {exc}") from exc


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


def _web_mode(im: Image.Image) -> Image.Image:
    """RGB or RGBA for WebP and JPEG encoders (palette, CMYK, 16-bit, LA converted)."""
    if im.mode in ("RGB", "RGBA"):
        return im
    if im.mode in ("P", "PA", "LA", "La") or "transparency" in im.info:
        return im.convert("RGBA")
    return im.convert("RGB")


def _encode_original(
    im: Image.Image, source: Image.Image, fmt: str, frames: list[Image.Image] | None
) -> bytes:
    """Formats without a lossless strip here are re-encoded (GIF, WebP; BMP/TIFF as PNG)."""
    out = io.BytesIO()
    icc = source.info.get("icc_profile")
    extra: dict[str, Any] = {"icc_profile": icc} if icc else {}
    if fmt == "GIF":
        params: dict[str, Any] = {"comment": b""}
        if frames and len(frames) > 1:
            params |= {
                "save_all": True,
                "append_images": frames[1:],
                "loop": source.info.get("loop", 0),
                "duration": source.info.get("duration", 100),
                "disposal": 2,
            }
        if "transparency" in source.info:
            params["transparency"] = source.info["transparency"]
        (frames[0] if frames else im).save(out, "GIF", **params)
    elif fmt == "WEBP":
        if frames and len(frames) > 1:
            frames[0].save(
                out,
                "WEBP",
                save_all=True,
                append_images=frames[1:],
                quality=90,
                duration=source.info.get("duration", 100),
                loop=source.info.get("loop", 0),
            )
        else:
            _web_mode(im).save(out, "WEBP", quality=90, method=WEBP_METHOD, **extra)
    elif fmt == "MPO":
        _web_mode(im).convert("RGB").save(out, "JPEG", quality=JPEG_QUALITY, **extra)
    else:  # BMP, TIFF -> PNG
        png = im if im.mode in ("1", "L", "LA", "P", "RGB", "RGBA") else _web_mode(im)
        png.save(out, "PNG", **extra)
    return out.getvalue()


def _rendition(
    current: Image.Image, im: Image.Image, width: int, frames: list[Image.Image] | None
) -> tuple[bytes, Image.Image]:
    """WebP at ``width`` (resized from ``current``, the next larger size) and the resized image."""
    height = max(1, round(im.height * width / im.width))
    out = io.BytesIO()
    if frames and len(frames) > 1:
        resized = [
            _web_mode(f).resize((width, height), Image.Resampling.LANCZOS, reducing_gap=3.0)
            for f in frames
        ]
        resized[0].save(
            out,
            "WEBP",
            save_all=True,
            append_images=resized[1:],
            quality=WEBP_QUALITY,
            duration=im.info.get("duration", 100),
            loop=im.info.get("loop", 0),
        )
        return out.getvalue(), current
    small = _web_mode(current)
    if small.size != (width, height):
        small = small.resize((width, height), Image.Resampling.LANCZOS, reducing_gap=3.0)
    small.save(out, "WEBP", quality=WEBP_QUALITY, method=WEBP_METHOD)
    return out.getvalue(), small


def rendition_widths(width: int, widths: tuple[int, ...]) -> list[int]:
    """The configured widths below the image's, and its own width when narrower than all."""
    chosen = [w for w in widths if w < width]
    if widths and width <= max(widths):
        chosen.append(width)
    return sorted(set(chosen))


def process_image(data: bytes, *, max_pixels: int, widths: tuple[int, ...]) -> ProcessedImage:
    """Check ``data`` and produce what is stored; raises ``ImageRejected`` with the reason."""
    sha = hashlib.sha256(data).hexdigest()
    source = _open(data, max_pixels)
    fmt = source.format or ""
    orientation = source.getexif().get(ExifTags.Base.Orientation, 1)
    animated = bool(getattr(source, "is_animated", False)) and fmt in ("GIF", "WEBP")
    width, height = source.size
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    targets = rendition_widths(width, widths)
    if fmt == "JPEG" and targets and orientation in (0, 1):
        # Decode at the smallest DCT scale that still covers the widest rendition.
        scale = max(targets) / source.width
        source.draft("RGB", (int(source.width * scale) + 1, int(source.height * scale) + 1))
    _load(source)  # every byte decoded: a truncated or corrupt file stops here
    frames: list[Image.Image] | None = None
    if animated and getattr(source, "n_frames", 1) <= MAX_FRAMES:
        try:
            frames = [f.copy() for f in ImageSequence.Iterator(source)]
        except (OSError, ValueError) as exc:
            raise ImageRejected("broken_image", f"an animation frame is broken: {exc}") from exc
        source.seek(0)
    im = ImageOps.exif_transpose(source) if orientation not in (0, 1) else source

    content_type, extension = FORMATS[fmt]
    try:
        if fmt == "JPEG":
            original = strip_jpeg(data, orientation)
        elif fmt == "PNG":
            original = strip_png(data)
        else:
            original = _encode_original(im, source, fmt, frames)
    except ValueError as exc:
        raise ImageRejected("broken_image", f"the file's structure is broken: {exc}") from exc

    renditions: dict[int, bytes] = {}
    current = im
    for w in sorted(targets, reverse=True):  # each rendition from the next larger one
        data_w, current = _rendition(current, im, w, frames)
        renditions[w] = data_w
    return ProcessedImage(
        sha256=sha,
        format={"BMP": "PNG", "TIFF": "PNG", "MPO": "JPEG"}.get(fmt, fmt),
        content_type=content_type,
        extension=extension,
        width=width,
        height=height,
        original=original,
        renditions=renditions,
        animated=frames is not None,
    )
