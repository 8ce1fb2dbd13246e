"""Writes the encoding corpus: real-shaped Vietnamese news text as partners' systems mangle it.

Each ``<form>.jsonl`` line is {"sent": what reaches normalize, "expected": the Unicode text}.
The garbling is made by independent means, not by our decoders:
* TCVN3, VISCII, Windows-1258: glibc ``iconv`` (TCVN5712-1, VISCII, CP1258), then the bytes
  read as Windows-1252 the way a browser does (bytes it leaves undefined become C1 controls);
* VNI-Windows: no iconv codec exists; spelled with the VNI font layout (base + mark byte),
  plus two samples typed from published VNI examples;
* UTF-8 mojibake: Python's codecs (cp1252 with and without the undefined bytes, latin-1, twice);
* NFD: unicodedata; Windows-1258 correctly decoded keeps its combining marks (iconv -f CP1258).
Regenerate: uv run --no-sync python services/normalize/tests/corpus/make_corpus.py
"""

from __future__ import annotations

import json
import subprocess
import unicodedata
from pathlib import Path

from portal_text.legacy_tables import VNI

HERE = Path(__file__).parent

SENTENCES = [
    "Đảng Cộng sản Việt Nam lãnh đạo toàn diện; Hội nghị lần thứ tám Ban Chấp hành Trung ương"
    " khóa XIII đã thảo luận, quyết định nhiều nội dung quan trọng.",
    "Thủ tướng Chính phủ yêu cầu các bộ, ngành và địa phương đẩy nhanh tiến độ giải ngân vốn đầu"
    " tư công, bảo đảm an sinh xã hội cho người dân vùng lũ.",
    "ỦY BAN NHÂN DÂN TỈNH QUẢNG NGÃI THÔNG BÁO KẾT QUẢ TUYỂN DỤNG CÔNG CHỨC NĂM 2023",
    "Sáng 19/9, tại Hà Nội, Ban Tuyên giáo Trung ương tổ chức hội nghị sơ kết sáu tháng hoạt"
    " động của Cổng Thông tin điện tử Đảng Cộng sản Việt Nam.",
    "Đồng chí Bí thư Tỉnh ủy nhấn mạnh: “Phải kiên quyết, kiên trì đấu tranh phòng, chống tham"
    " nhũng, tiêu cực; không có vùng cấm, không có ngoại lệ” – và yêu cầu báo cáo trước 30/10.",
    "Học tập và làm theo tư tưởng, đạo đức, phong cách Hồ Chí Minh là nhiệm vụ thường xuyên"
    " của mỗi cán bộ, đảng viên.",
    "Những người khuyết tật, trẻ em mồ côi và hộ nghèo ở huyện miền núi được hỗ trợ gạo,"
    " nước uống, thuốc men trong mùa mưa bão.",
    "Ông Nguyễn Văn Thưởng, Ủy viên Trung ương Đảng, Trưởng ban Quản lý dự án, phát biểu ý kiến"
    " về quy hoạch khu kinh tế ven biển.",
    "Giá lúa gạo tăng nhẹ; ngư dân Phú Yên, Khánh Hòa, Bình Thuận vươn khơi bám biển, giữ vững"
    " chủ quyền biển, đảo thiêng liêng của Tổ quốc.",
    "Khuya hôm ấy, chiếc thuyền nhỏ khuất dần sau rặng phi lao; tiếng sóng vỗ ì oạp, nhịp nhàng"
    " như khúc ru quê hương.",
    "Ước mơ của các em học sinh vùng cao: được đến trường, được đọc sách, được nghe thầy cô"
    " giảng bài mỗi ngày.",
    "Ứng dụng khoa học, công nghệ, đổi mới sáng tạo và chuyển đổi số là động lực then chốt để"
    " phát triển nhanh, bền vững.",
    "Tôi về thăm quê: con đường làng nay đã được đổ bê tông, nhà văn hóa khang trang, rượu"
    " ngon, khoai sắn, cá tôm đầy ắp.",
    "Tổng Bí thư Tô Lâm tiếp Đoàn đại biểu Quốc hội; Ủy ban Kiểm tra Trung ương kỷ luật cảnh"
    " cáo nhiều tổ chức đảng.",
]


def browser_reading(raw: bytes) -> str:
    """Bytes shown by a Windows-1252 reader that keeps undefined bytes (as browsers do)."""
    return "".join(
        bytes([b]).decode("cp1252")
        if 0x80 <= b < 0xA0 and b not in (0x81, 0x8D, 0x8F, 0x90, 0x9D)
        else chr(b)
        for b in raw
    )


def iconv(text: str, charset: str) -> bytes:
    """``text`` in ``charset``; characters it lacks (typographic quotes) as Windows-1252."""
    out = bytearray()
    for ch in text:
        done = subprocess.run(
            ["iconv", "-f", "UTF-8", "-t", charset], input=ch.encode(), capture_output=True
        )
        out += done.stdout if done.returncode == 0 else ch.encode("cp1252")
    return bytes(out)


_VNI_SPELLING = {letter: spelling for spelling, letter in VNI.items()}


def vni(text: str) -> str:
    return "".join(_VNI_SPELLING.get(ch, ch) for ch in unicodedata.normalize("NFC", text))


def write(name: str, rows: list[dict[str, str]]) -> None:
    path = HERE / f"{name}.jsonl"
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{path.name}: {len(rows)} samples")


def plain(text: str) -> str:
    return text.replace("“", '"').replace("”", '"').replace("–", "-")


def main() -> None:
    write(
        "tcvn3",
        [{"sent": browser_reading(iconv(s, "TCVN5712-1")), "expected": s} for s in SENTENCES],
    )
    # VISCII uses 0x80..0x9F for letters: its texts have straight quotes.
    write(
        "viscii",
        [
            {"sent": browser_reading(iconv(plain(s), "VISCII")), "expected": plain(s)}
            for s in SENTENCES
        ],
    )
    write(
        "windows_1258",
        [{"sent": browser_reading(iconv(s, "CP1258")), "expected": s} for s in SENTENCES],
    )
    write(
        "vni",
        [{"sent": vni(s), "expected": s} for s in SENTENCES]
        + [
            {"sent": "Xin chaøo caùc baïn", "expected": "Xin chào các bạn"},
            {"sent": "Ñaûng Coäng saûn Vieät Nam", "expected": "Đảng Cộng sản Việt Nam"},
        ],
    )
    mojibake, lossy = [], []
    for s in SENTENCES:
        raw = s.encode("utf-8")
        mojibake += [
            {"sent": browser_reading(raw), "expected": s, "form": "cp1252 (browser)"},
            {"sent": raw.decode("latin-1"), "expected": s, "form": "latin-1"},
            {
                "sent": browser_reading(browser_reading(raw).encode("utf-8")),
                "expected": s,
                "form": "cp1252 twice",
            },
            {
                "sent": raw.decode("latin-1").encode("utf-8").decode("latin-1"),
                "expected": s,
                "form": "latin-1 twice",
            },
        ]
        # Readers that drop the bytes Windows-1252 leaves undefined, or write U+FFFD: a lost
        # byte can leave two real words possible ("bền"/"bọn"), which stay for a person.
        lossy += [
            {
                "sent": raw.decode("cp1252", errors="ignore"),
                "expected": s,
                "form": "cp1252, undefined bytes dropped",
            },
            {
                "sent": raw.decode("latin-1").encode("utf-8").decode("cp1252", errors="replace"),
                "expected": s,
                "form": "latin-1 then cp1252 with U+FFFD",
            },
        ]
    write("utf8_mojibake", mojibake)
    write("utf8_mojibake_lossy", lossy)
    write(
        "nfd",
        [{"sent": unicodedata.normalize("NFD", s), "expected": s, "form": "NFD"} for s in SENTENCES]
        + [
            {
                "sent": iconv(s, "CP1258").decode("cp1258"),
                "expected": s,
                "form": "Windows-1258 combining marks",
            }
            for s in SENTENCES
        ],
    )


if __name__ == "__main__":
    main()
