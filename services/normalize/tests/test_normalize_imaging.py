"""Images: decoded and checked whatever they claim, metadata gone, renditions made."""

from __future__ import annotations

import io

import pytest
from PIL import ExifTags, Image

from portal_normalize.imaging import (
    ImageRejected,
    process_image,
    render,
    rendition_widths,
    strip_jpeg,
)

from .normalize_imageserver import jpeg, png

WIDTHS = (320, 640, 1024, 1600)


def process(data: bytes, **kw: object) -> object:
    return process_image(data, max_pixels=int(kw.get("max_pixels", 40_000_000)), widths=WIDTHS)


def test_a_photo_loses_its_metadata_but_not_a_pixel() -> None:
    data = jpeg(1200, 800)
    assert b"Nguyen Van A" in data and b"Canon" in data
    result = process_image(data, max_pixels=40_000_000, widths=WIDTHS)
    assert b"Nguyen Van A" not in result.original
    assert b"Canon" not in result.original
    stored = Image.open(io.BytesIO(result.original))
    assert not stored.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    assert ExifTags.Base.Make not in stored.getexif()
    assert "comment" not in stored.info
    # Stripped losslessly: the same pixels.
    assert stored.tobytes() == Image.open(io.BytesIO(data)).tobytes()
    assert (result.width, result.height, result.content_type) == (1200, 800, "image/jpeg")


def renditions(original: bytes, widths: tuple[int, ...]) -> dict[int, bytes]:
    return {w: render(original, w, max_pixels=40_000_000) for w in widths}


def test_renditions_are_webp_at_the_widths_below_the_original() -> None:
    result = process_image(jpeg(1200, 800), max_pixels=40_000_000, widths=WIDTHS)
    assert result.rendition_widths == (320, 640, 1024, 1200)
    for width, data in renditions(result.original, result.rendition_widths).items():
        im = Image.open(io.BytesIO(data))
        assert im.format == "WEBP"
        assert im.size == (width, round(800 * width / 1200))
        assert not im.getexif()


def test_orientation_is_applied_to_renditions_and_kept_for_the_original() -> None:
    result = process_image(jpeg(600, 400, rotate=6), max_pixels=40_000_000, widths=WIDTHS)
    assert (result.width, result.height) == (400, 600)  # upright
    assert Image.open(io.BytesIO(renditions(result.original, (400,))[400])).size == (400, 600)
    exif = Image.open(io.BytesIO(result.original)).getexif()
    assert dict(exif) == {ExifTags.Base.Orientation: 6}  # nothing but the orientation


def test_png_text_chunks_go() -> None:
    data = png()
    assert b"Nguyen Van A" in data
    result = process_image(data, max_pixels=40_000_000, widths=WIDTHS)
    assert b"Nguyen Van A" not in result.original
    assert (
        Image.open(io.BytesIO(result.original)).tobytes() == Image.open(io.BytesIO(data)).tobytes()
    )


def test_data_glued_after_a_jpeg_is_cut() -> None:
    data = jpeg(64, 64) + b"PK\x03\x04 a zip archive riding along"
    assert strip_jpeg(data).endswith(b"\xff\xd9")


def test_animations_stay_animated() -> None:
    frames = [Image.new("RGB", (120, 90), (i * 40, 0, 200 - i * 40)) for i in range(5)]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=80, loop=0)
    result = process_image(out.getvalue(), max_pixels=40_000_000, widths=WIDTHS)
    assert result.animated
    assert Image.open(io.BytesIO(result.original)).n_frames == 5
    assert Image.open(io.BytesIO(renditions(result.original, (120,))[120])).n_frames == 5


def animation(frames: int, width: int, height: int) -> bytes:
    """An animated GIF of ``frames`` large frames that compresses to little (a bomb's shape)."""
    images = [Image.new("RGB", (width, height), (i * 8 % 256, 0, 0)) for i in range(frames)]
    out = io.BytesIO()
    images[0].save(out, "GIF", save_all=True, append_images=images[1:], duration=50, loop=0)
    return out.getvalue()


def test_an_animation_over_the_total_budget_keeps_its_first_frame_only() -> None:
    data = animation(30, 1000, 1000)  # 30 megapixels together, each frame 1
    within = process_image(data, max_pixels=40_000_000, widths=WIDTHS, max_total_pixels=40_000_000)
    assert within.animated and Image.open(io.BytesIO(within.original)).n_frames == 30
    over = process_image(data, max_pixels=40_000_000, widths=WIDTHS, max_total_pixels=20_000_000)
    assert over.reduced and not over.animated
    assert Image.open(io.BytesIO(over.original)).n_frames == 1
    assert Image.open(io.BytesIO(render(over.original, 320, max_pixels=40_000_000))).size == (
        320,
        320,
    )


def test_a_bmp_becomes_a_png() -> None:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 10, 10)).save(out, "BMP")
    result = process_image(out.getvalue(), max_pixels=40_000_000, widths=WIDTHS)
    assert (result.content_type, result.width, result.height) == ("image/png", 64, 48)
    assert Image.open(io.BytesIO(result.original)).getpixel((3, 3)) == (200, 10, 10)


def _truncated() -> bytes:
    return jpeg(400, 300)[:4000]


def _bomb() -> bytes:
    out = io.BytesIO()
    Image.new("1", (12000, 12000)).save(out, "PNG")  # 144 megapixels, a few KB
    return out.getvalue()


def _pixel() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (1, 1)).save(out, "GIF")
    return out.getvalue()


@pytest.mark.parametrize(
    ("data", "code", "reason"),
    [
        (b"<!DOCTYPE html><html><body>Not found</body></html>", "not_an_image", "HTML"),
        (b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "not_an_image", "SVG"),
        (b'{"error": "forbidden"}', "not_an_image", "JSON"),
        (b"\x00\x01garbage" * 50, "not_an_image", "not a recognisable image"),
        (_truncated(), "broken_image", "decode"),
        (_bomb(), "too_many_pixels", "pixels"),
        (_pixel(), "too_small", "tracking pixel"),
    ],
    ids=["html", "svg", "json", "garbage", "truncated", "bomb", "pixel"],
)
def test_what_is_not_a_servable_image_is_rejected_with_the_reason(
    data: bytes, code: str, reason: str
) -> None:
    with pytest.raises(ImageRejected) as caught:
        process_image(data, max_pixels=40_000_000, widths=WIDTHS)
    assert caught.value.code == code
    assert reason in caught.value.reason


@pytest.mark.parametrize(
    ("width", "expected"),
    [
        (1800, [320, 640, 1024, 1600]),
        (1600, [320, 640, 1024, 1600]),
        (500, [320, 500]),
        (200, [200]),
    ],
)
def test_rendition_widths(width: int, expected: list[int]) -> None:
    assert rendition_widths(width, WIDTHS) == expected
