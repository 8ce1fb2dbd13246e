"""Word import: legacy-font text repaired by its font, structure and images kept, bad files refused."""

from __future__ import annotations

import io
import random
import re
import zipfile

import docx
import pytest
from docx.opc.constants import RELATIONSHIP_TYPE
from docx.oxml import OxmlElement
from docx.oxml.ns import qn

from portal_moderation.compose.word_import import WordImportError, import_docx

from .docx_samples import (
    BULLETS,
    CAPTION,
    TITLE,
    expected_unicode_sentence,
    png_bytes,
    sample_docx,
    tcvn3,
    vni,
)


def _save(document: docx.document.Document) -> bytes:
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def _with_paragraphs(*runs: tuple[str, str | None]) -> bytes:
    """A document with a title and one paragraph per (text, font)."""
    document = docx.Document()
    document.add_heading("Tiêu đề", level=1)
    for text, font in runs:
        run = document.add_paragraph().add_run(text)
        if font:
            run.font.name = font
    return _save(document)


def _replace_part(data: bytes, name: str, content: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, content if info.filename == name else src.read(info))
    return out.getvalue()


# --- legacy fonts -----------------------------------------------------------------------------


def test_tcvn3_paragraph_in_vntime_font_comes_out_as_exact_unicode() -> None:
    typed = tcvn3(expected_unicode_sentence)
    assert typed != expected_unicode_sentence and "§" in typed  # the sample really is TCVN3

    imported = import_docx(sample_docx())

    assert f"<p>{expected_unicode_sentence}</p>" in imported.body_html
    assert typed not in imported.body_html
    assert any("TCVN3" in w for w in imported.warnings)


def test_text_in_a_unicode_font_is_left_alone_while_the_same_letters_in_vntime_are_decoded() -> (
    None
):
    latin1_letters = "Tài chính công"  # every letter is also a byte of TCVN3
    imported = import_docx(
        _with_paragraphs(
            (latin1_letters, ".VnTime"),
            (latin1_letters, "Times New Roman"),
            (expected_unicode_sentence, "Times New Roman"),
        )
    )

    paragraphs = re.findall(r"<p>(.*?)</p>", imported.body_html)
    assert paragraphs[0] != latin1_letters  # the legacy font decodes these bytes
    assert paragraphs[1:] == [latin1_letters, expected_unicode_sentence]


def test_unicode_text_under_a_legacy_font_name_is_left_alone() -> None:
    imported = import_docx(_with_paragraphs((expected_unicode_sentence, ".VnTime")))
    assert f"<p>{expected_unicode_sentence}</p>" in imported.body_html


def test_vni_runs_are_repaired_even_when_a_letter_is_split_between_runs() -> None:
    typed = vni(expected_unicode_sentence)
    assert typed != expected_unicode_sentence
    document = docx.Document()
    document.add_heading("Tiêu đề", level=1)
    document.add_paragraph().add_run(typed).font.name = "VNI-Times"
    split = document.add_paragraph()
    # "Ñaûng": Word split the run between the base letter "a" and its mark byte "û".
    for piece in (typed[:2], typed[2:]):
        run = split.add_run(piece)
        run.font.name = "VNI-Times"
        run.bold = piece == typed[:2]

    imported = import_docx(_save(document))

    assert f"<p>{expected_unicode_sentence}</p>" in imported.body_html
    assert expected_unicode_sentence in re.sub(
        r"</?strong>", "", imported.body_html.split("</p>")[1]
    )
    assert any("VNI" in w for w in imported.warnings)


def test_a_legacy_font_named_by_the_paragraph_style_is_a_hint_too() -> None:
    document = docx.Document()
    document.styles["Normal"].font.name = ".VnTime"
    document.add_paragraph(tcvn3(expected_unicode_sentence))

    imported = import_docx(_save(document))

    assert imported.title == expected_unicode_sentence


def test_capitals_font_vntimeh_gives_capital_letters() -> None:
    imported = import_docx(_with_paragraphs((tcvn3("đảng bộ tỉnh"), ".VnTimeH")))
    assert "<p>ĐẢNG BỘ TỈNH</p>" in imported.body_html


# --- structure --------------------------------------------------------------------------------


def test_title_is_the_heading_1_and_headings_map_to_h2_h3() -> None:
    document = docx.Document()
    document.add_paragraph("Lời mở đầu")
    document.add_heading(TITLE, level=1)
    document.add_heading("Phần thứ nhất", level=2)
    document.add_heading("Mục một", level=3)
    document.add_heading("Mục nhỏ", level=4)
    document.add_heading("Phần kết", level=1)

    imported = import_docx(_save(document))

    assert imported.title == TITLE
    assert TITLE not in imported.body_html
    assert imported.body_html == (
        "<p>Lời mở đầu</p><h2>Phần thứ nhất</h2><h3>Mục một</h3><h3>Mục nhỏ</h3><h2>Phần kết</h2>"
    )


def test_without_a_heading_the_title_is_the_first_paragraph() -> None:
    document = docx.Document()
    document.add_paragraph("Thông báo kết quả")
    document.add_paragraph("Nội dung")
    imported = import_docx(_save(document))
    assert imported.title == "Thông báo kết quả"


def test_sample_keeps_its_list_and_table_with_header_row() -> None:
    imported = import_docx(sample_docx())

    assert imported.title == TITLE
    assert "".join(f"<li>{b}</li>" for b in BULLETS) in imported.body_html
    assert "<ul>" in imported.body_html
    assert (
        "<table><thead><tr><th>Chỉ tiêu</th><th>Kế hoạch</th><th>Thực hiện</th></tr></thead>"
        "<tbody><tr><td>Kết nạp đảng viên</td><td>120</td><td>134</td></tr></tbody></table>"
    ) in imported.body_html


def test_image_is_returned_and_its_figure_carries_the_caption() -> None:
    imported = import_docx(sample_docx())

    assert len(imported.images) == 1
    image = imported.images[0]
    assert (image.name, image.content_type, image.caption) == ("image1.png", "image/png", CAPTION)
    assert image.data == png_bytes()
    assert (
        f'<figure><img src="cid:{image.name}"><figcaption>{CAPTION}</figcaption></figure>'
        in imported.body_html
    )
    assert "data:" not in imported.body_html
    assert not any("image" in w for w in imported.warnings)


def test_markup_has_no_style_class_font_or_script() -> None:
    document = docx.Document()
    document.add_heading("Tiêu đề", level=1)
    paragraph = document.add_paragraph()
    run = paragraph.add_run("<script>alert(1)</script> chữ đỏ")
    run.font.name = "Arial"
    run.bold = True
    paragraph.add_run(" nghiêng").italic = True

    body = import_docx(_save(document)).body_html

    assert (
        body
        == "<p><strong>&lt;script&gt;alert(1)&lt;/script&gt; chữ đỏ</strong><em> nghiêng</em></p>"
    )
    for forbidden in (" style=", " class=", "<font", "<script", "<span"):
        assert forbidden not in body
    sample = import_docx(sample_docx()).body_html
    assert re.findall(r"\s([a-z-]+)=", sample) == ["src"]  # the image's src, nothing else


def _add_link(paragraph: docx.text.paragraph.Paragraph, url: str, text: str, font: str) -> None:
    rel = paragraph.part.relate_to(url, RELATIONSHIP_TYPE.HYPERLINK, is_external=True)
    link = OxmlElement("w:hyperlink")
    link.set(qn("r:id"), rel)
    run = paragraph.add_run(text)
    run.font.name = font
    link.append(run._r)
    paragraph._p.append(link)


def test_links_keep_a_safe_address_and_their_legacy_font_text_is_repaired() -> None:
    document = docx.Document()
    document.add_heading("Tiêu đề", level=1)
    _add_link(document.add_paragraph(), "https://dangcongsan.vn/", tcvn3("Đảng bộ tỉnh"), ".VnTime")
    _add_link(document.add_paragraph(), "javascript:alert(1)", "bấm vào đây", "Times New Roman")

    body = import_docx(_save(document)).body_html

    assert '<p><a href="https://dangcongsan.vn/">Đảng bộ tỉnh</a></p>' in body
    assert "<p>bấm vào đây</p>" in body
    assert "javascript" not in body


# --- images refused ---------------------------------------------------------------------------


def _image_part(data: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(data)) as package:
        return next(n for n in package.namelist() if n.startswith("word/media/"))


def test_image_whose_bytes_are_not_an_image_is_dropped_with_a_warning() -> None:
    data = sample_docx()
    data = _replace_part(data, _image_part(data), b"MZ\x90\x00 this is not a PNG")

    imported = import_docx(data)

    assert imported.images == ()
    assert "<img" not in imported.body_html and "<figure" not in imported.body_html
    assert "image not a JPEG, PNG, GIF or WebP dropped" in imported.warnings
    assert f"<p>{CAPTION}</p>" in imported.body_html  # the caption's text is kept


def test_images_over_the_size_or_count_limit_are_dropped_with_a_warning() -> None:
    assert len(import_docx(sample_docx(), max_image_bytes=10_000).images) == 1

    small = import_docx(sample_docx(), max_image_bytes=50)
    assert small.images == ()
    assert "image over size limit dropped" in small.warnings

    document = docx.Document()
    document.add_picture(io.BytesIO(png_bytes((10, 10))))
    document.add_picture(io.BytesIO(png_bytes((20, 10))))
    one = import_docx(_save(document), max_images=1)
    assert [i.name for i in one.images] == ["image1.png"]
    assert "image over the limit of 1 images dropped" in one.warnings


# --- files refused ----------------------------------------------------------------------------


def test_garbage_bytes_are_refused_with_a_reason() -> None:
    with pytest.raises(WordImportError) as refused:
        import_docx(b"\x00\x01 this is not a document at all")
    assert "not a zip" in refused.value.reason


def test_a_zip_that_is_not_a_word_document_is_refused() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as package:
        package.writestr("readme.txt", "xin chào")
    with pytest.raises(WordImportError) as refused:
        import_docx(out.getvalue())
    assert "not a Word document" in refused.value.reason


def test_a_zip_bomb_is_refused_from_its_directory() -> None:
    data = sample_docx()
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as src,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst,
    ):
        for info in src.infolist():
            dst.writestr(info, src.read(info))
        dst.writestr("word/padding.xml", b" " * (51 * 1024 * 1024))
    bomb = out.getvalue()
    assert len(bomb) < 1024 * 1024

    with pytest.raises(WordImportError) as refused:
        import_docx(bomb)
    assert "too large when uncompressed" in refused.value.reason


def test_an_encrypted_or_old_binary_document_is_refused() -> None:
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 512
    with pytest.raises(WordImportError) as refused:
        import_docx(ole)
    assert "password-protected or old binary .doc" in refused.value.reason


def test_xml_with_entities_is_refused() -> None:
    data = sample_docx()
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE w [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><w>&b;</w>'
    )
    with pytest.raises(WordImportError) as refused:
        import_docx(_replace_part(data, "word/styles.xml", bomb))
    assert "forbidden XML construct" in refused.value.reason


def test_damaged_documents_give_a_reason_or_an_article_never_another_error() -> None:
    data = sample_docx()
    rng = random.Random(18)
    outcomes = {"imported": 0, "refused": 0}
    for _ in range(60):
        damaged = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        try:
            import_docx(bytes(damaged))
            outcomes["imported"] += 1
        except WordImportError as refused:
            assert refused.reason
            outcomes["refused"] += 1
    # Damage in the zip's directory or compressed parts is refused; elsewhere it may not matter.
    assert outcomes["refused"] > 0
