"""What ingest accepts as an image uploaded in the desk: judged by content, bounded."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from portal_ingest import desk_images
from portal_ingest.desk_images import ImageRefused, check_image


def _image(fmt: str, size: tuple[int, int] = (64, 48)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, fmt)
    return out.getvalue()


@pytest.mark.parametrize(
    ("fmt", "ext", "ctype"),
    [("PNG", "png", "image/png"), ("JPEG", "jpg", "image/jpeg"), ("WEBP", "webp", "image/webp")],
)
def test_accepted_images_are_named_by_content(fmt: str, ext: str, ctype: str) -> None:
    data = _image(fmt)
    checked = check_image(data, max_bytes=1 << 20, max_pixels=10_000)
    assert (checked.extension, checked.content_type, checked.width, checked.height) == (
        ext,
        ctype,
        64,
        48,
    )
    assert desk_images.MEDIA_NAME.match(checked.name)
    assert check_image(data, max_bytes=1 << 20, max_pixels=10_000).name == checked.name


def test_a_name_or_type_does_not_make_an_image() -> None:
    with pytest.raises(ImageRefused, match="not an image"):
        check_image(b"<svg onload=alert(1)></svg>", max_bytes=1 << 20, max_pixels=10_000)
    with pytest.raises(ImageRefused, match="BMP"):
        check_image(_image("BMP"), max_bytes=1 << 20, max_pixels=10_000)


def test_limits_and_broken_files() -> None:
    with pytest.raises(ImageRefused, match="empty"):
        check_image(b"", max_bytes=1 << 20, max_pixels=10_000)
    with pytest.raises(ImageRefused, match="limit"):
        check_image(_image("PNG"), max_bytes=100, max_pixels=10_000)
    with pytest.raises(ImageRefused, match="pixels"):
        check_image(_image("PNG", (200, 100)), max_bytes=1 << 20, max_pixels=10_000)
    with pytest.raises(ImageRefused, match=r"broken|not an image"):
        check_image(_image("PNG")[:60], max_bytes=1 << 20, max_pixels=10_000)


def test_object_key_and_public_url() -> None:
    name = "a" * 64 + ".png"
    assert desk_images.object_key("tp-ha-noi", name) == f"desk/tp-ha-noi/images/{name}"
    assert (
        desk_images.public_url("http://ingest:8001/v1/desk-media/", "tp-ha-noi", name)
        == f"http://ingest:8001/v1/desk-media/tp-ha-noi/{name}"
    )
