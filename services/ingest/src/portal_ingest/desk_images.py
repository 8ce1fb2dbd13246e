"""Images an agency uploads in the portal's desk: what is accepted, and where it is kept.

Checked by content (Pillow reads the header, never the name or the declared type), bounded
in bytes and pixels. Kept content-addressed in the raw archive, beside the payloads partners
send; the article points at ingest's ``/v1/desk-media/`` address, which normalize fetches like
any partner image (the same fetch, checks, renditions and media store as every other image).
"""

from __future__ import annotations

import hashlib
import io
import re
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

# Pillow's format name -> (extension, content type); what browsers and normalize both take.
FORMATS: dict[str, tuple[str, str]] = {
    "PNG": ("png", "image/png"),
    "JPEG": ("jpg", "image/jpeg"),
    "GIF": ("gif", "image/gif"),
    "WEBP": ("webp", "image/webp"),
}
CONTENT_TYPES = {ext: ctype for ext, ctype in FORMATS.values()}
MEDIA_NAME = re.compile(r"^([0-9a-f]{64})\.(png|jpg|gif|webp)$")


class ImageRefused(ValueError):
    """Not an image the desk accepts; ``reason`` says why (for the person uploading)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class CheckedImage:
    sha256: str
    extension: str
    content_type: str
    width: int
    height: int

    @property
    def name(self) -> str:
        return f"{self.sha256}.{self.extension}"


def check_image(data: bytes, *, max_bytes: int, max_pixels: int) -> CheckedImage:
    """The image ``data`` is, or ``ImageRefused``: empty, too large, not PNG/JPEG/GIF/WebP by
    its content, too many pixels (a decompression bomb), or broken."""
    if not data:
        raise ImageRefused("the file is empty")
    if len(data) > max_bytes:
        raise ImageRefused(f"the file has {len(data)} bytes, more than the limit of {max_bytes}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                kind = img.format or ""
                width, height = img.size
                if kind not in FORMATS:
                    raise ImageRefused(
                        f"the file is {kind or 'not an image'}; PNG, JPEG, GIF or WebP are accepted"
                    )
                if width * height > max_pixels:
                    raise ImageRefused(
                        f"the image has {width}x{height} pixels, more than {max_pixels}"
                    )
                img.verify()  # the whole file is read: a truncated or corrupt one fails here
    except ImageRefused:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise ImageRefused("the file is not an image (PNG, JPEG, GIF or WebP)") from None
    except Exception as exc:  # a damaged file makes Pillow's decoders raise many kinds
        raise ImageRefused(f"the image is broken: {type(exc).__name__}") from None
    extension, content_type = FORMATS[kind]
    return CheckedImage(hashlib.sha256(data).hexdigest(), extension, content_type, width, height)


def object_key(source: str, name: str) -> str:
    """``desk/<source>/images/<sha256>.<ext>`` in the raw archive."""
    return f"desk/{source}/images/{name}"


def public_url(base_url: str, source: str, name: str) -> str:
    return f"{base_url.rstrip('/')}/{source}/{name}"
