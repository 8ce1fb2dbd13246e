"""Word documents for the import's tests (unit and browser), built at test time with python-docx.

``sample_docx()`` is what a provincial office e-mails: a Unicode title, a paragraph typed in
TCVN3 under the .VnTime font, a bullet list, a table with a header row, and a PNG with a
caption under it.
"""

from __future__ import annotations

import io

import docx
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Cm
from PIL import Image

from portal_text.legacy_tables import TCVN_HIGH, VNI

TITLE = "Hội nghị tổng kết công tác năm của Đảng bộ tỉnh"
expected_unicode_sentence = "Đảng bộ tỉnh tổ chức hội nghị tổng kết công tác năm"
TABLE = [["Chỉ tiêu", "Kế hoạch", "Thực hiện"], ["Kết nạp đảng viên", "120", "134"]]
BULLETS = ["Nâng cao chất lượng sinh hoạt chi bộ", "Đẩy mạnh chuyển đổi số"]
CAPTION = "Quang cảnh hội nghị"


def tcvn3(text: str) -> str:
    """``text`` as Word keeps it under a .VnTime font: TCVN3 bytes read as Windows-1252.
    Only letters of the ABC fonts' small set (and Đ) are used by the samples."""
    table = {ch: 0x80 + i for i, ch in enumerate(TCVN_HIGH) if i >= 0x20}
    raw = bytes(table[ch] if ch in table else ord(ch) for ch in text)
    return raw.decode("cp1252")


def vni(text: str) -> str:
    """``text`` as Word keeps it under a VNI-Times font: base letter and mark byte."""
    spelling = {letter: typed for typed, letter in VNI.items()}
    return "".join(spelling.get(ch, ch) for ch in text)


def png_bytes(size: tuple[int, int] = (64, 48)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 40)).save(out, "PNG")
    return out.getvalue()


def _header_row(row: object) -> None:
    tr_pr = row._tr.get_or_add_trPr()  # type: ignore[attr-defined]
    header = OxmlElement("w:tblHeader")
    header.set(qn("w:val"), "true")
    tr_pr.append(header)


def sample_docx() -> bytes:
    document = docx.Document()
    document.add_heading(TITLE, level=1)
    legacy = document.add_paragraph().add_run(tcvn3(expected_unicode_sentence))
    legacy.font.name = ".VnTime"
    for item in BULLETS:
        document.add_paragraph(item, style="List Bullet")
    table = document.add_table(rows=2, cols=3)
    for r, cells in enumerate(TABLE):
        for c, text in enumerate(cells):
            table.cell(r, c).text = text
    _header_row(table.rows[0])
    document.add_picture(io.BytesIO(png_bytes()), width=Cm(4))
    document.add_paragraph(CAPTION, style="Caption")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()
