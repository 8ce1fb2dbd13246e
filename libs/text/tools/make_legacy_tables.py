"""Writes src/portal_text/legacy_tables.py from the encodings' definitions.

* TCVN 5712:1993 (VN1, the superset of the ABC/TCVN3 ".VnTime" fonts) and VISCII (RFC 1456):
  glibc's charmaps (localedata/charmaps/TCVN5712-1, VISCII), installed on Debian under
  /usr/share/i18n/charmaps. Only the single-byte part of TCVN5712-1 is used (its two-byte
  entries are base letter + combining mark, which NFC does for us).
* VNI-Windows has no charmap: it is a "composite" font encoding, a base letter followed by a
  mark byte. The table is built from its published layout (the VNI font's mark bytes, as in
  xvnkb's vni.h and Unikey's charset tables): tone marks acute 0xF9, grave 0xF8, hook 0xFB,
  tilde 0xF5, dot below 0xEF; circumflex 0xE2 (+tone: 0xE1, 0xE0, 0xE5, 0xE3, 0xE4); breve
  0xEA (+tone: 0xE9, 0xE8, 0xFA, 0xFC, 0xEB); single bytes for ơ 0xF4, ư 0xF6, đ 0xF1 and the
  i-letters í 0xED, ì 0xEC, ỉ 0xE6, ĩ 0xF3, ị 0xF2, ỵ 0xEE; capitals 0x20 lower.

Run: uv run --no-sync python libs/text/tools/make_legacy_tables.py
"""

from __future__ import annotations

import gzip
import re
import unicodedata
from pathlib import Path

CHARMAPS = Path("/usr/share/i18n/charmaps")
OUT = Path(__file__).resolve().parents[1] / "src" / "portal_text" / "legacy_tables.py"
_LINE = re.compile(r"^<U([0-9A-F]{4})>\s+/x([0-9a-f]{2})\s")


def single_byte(name: str) -> dict[int, int]:
    table: dict[int, int] = {}
    with gzip.open(CHARMAPS / f"{name}.gz", "rt", encoding="ascii") as f:
        for line in f:
            m = _LINE.match(line)
            if m:
                table.setdefault(int(m.group(2), 16), int(m.group(1), 16))
    return table


def vni() -> dict[str, str]:
    tones = {
        "": "",
        "\u0301": "\xf9",
        "\u0300": "\xf8",
        "\u0309": "\xfb",
        "\u0303": "\xf5",
        "\u0323": "\xef",
    }
    circumflex = {
        "": "\xe2",
        "\u0301": "\xe1",
        "\u0300": "\xe0",
        "\u0309": "\xe5",
        "\u0303": "\xe3",
        "\u0323": "\xe4",
    }
    breve = {
        "": "\xea",
        "\u0301": "\xe9",
        "\u0300": "\xe8",
        "\u0309": "\xfa",
        "\u0303": "\xfc",
        "\u0323": "\xeb",
    }
    table: dict[str, str] = {}

    def add(letter: str, spelling: str) -> None:
        letter = unicodedata.normalize("NFC", letter)
        table[spelling] = letter
        upper = "".join(chr(ord(c) - 0x20) if c >= "\xe0" else c.upper() for c in spelling)
        table[upper] = letter.upper()

    for base in "aeouy":
        for tone, mark in tones.items():
            if base == "y" and tone == "\u0323":
                add("y\u0323", "\xee")  # ỵ is a single byte
            elif tone:
                add(base + tone, base + mark)
    for base in "aeo":
        for tone, mark in circumflex.items():
            add(base + "\u0302" + tone, base + mark)
    for tone, mark in breve.items():
        add("a\u0306" + tone, "a" + mark)
    for base, byte in (("o\u031b", "\xf4"), ("u\u031b", "\xf6")):
        for tone, mark in tones.items():
            add(base + tone, byte + mark)
    for tone, byte in {
        "\u0301": "\xed",
        "\u0300": "\xec",
        "\u0309": "\xe6",
        "\u0303": "\xf3",
        "\u0323": "\xf2",
    }.items():
        add("i" + tone, byte)
    add("đ", "\xf1")
    return table


def block(table: dict[int, int], start: int, end: int) -> list[str]:
    lines = []
    for row in range(start, end, 8):
        codes = [table.get(b, 0xFFFE) for b in range(row, row + 8)]
        esc = "".join(f"\\u{c:04x}" for c in codes)
        shown = " ".join(
            chr(c) if c != 0xFFFE and not unicodedata.combining(chr(c)) and c >= 0xA1 else "·"
            for c in codes
        )
        lines.append(f'    "{esc}"  # 0x{row:02X}: {shown}')
    return lines


def c0(table: dict[int, int]) -> str:
    items = [f'0x{b:02X}: "\\u{u:04x}"' for b, u in sorted(table.items()) if b < 0x20 and b != u]
    return "{" + ", ".join(items) + "}"


def main() -> None:
    tcvn = single_byte("TCVN5712-1")
    viscii = single_byte("VISCII")
    out = [
        '"""Legacy Vietnamese 8-bit encodings as data (generated: tools/make_legacy_tables.py).',
        "",
        'Origins: TCVN 5712:1993 VN1 (superset of the ABC/TCVN3 ".VnTime" fonts) and VISCII',
        "(RFC 1456) from glibc's localedata charmaps TCVN5712-1 and VISCII; VNI-Windows from the",
        "VNI font layout (base letter + mark byte; see the generator). Do not edit by hand.",
        '"""',
        "",
        "# Bytes 0x80..0xFF of TCVN 5712:1993 (VN1). 0xB0..0xB4 are combining tone marks.",
        "TCVN_HIGH = (",
        *block(tcvn, 0x80, 0x100),
        ")",
        "# C0 positions VN1 uses for capitals (control characters elsewhere).",
        f"TCVN_C0 = {c0(tcvn)}",
        "",
        "# Bytes 0x80..0xFF of VISCII.",
        "VISCII_HIGH = (",
        *block(viscii, 0x80, 0x100),
        ")",
        "# The six C0 positions VISCII uses for capitals.",
        f"VISCII_C0 = {c0(viscii)}",
        "",
        "# VNI-Windows: spelling (as Latin-1 characters) -> letter.",
        "VNI = {",
    ]
    for spelling, letter in sorted(vni().items(), key=lambda kv: (kv[1].lower(), kv[1])):
        esc = "".join(f"\\x{ord(c):02x}" if ord(c) > 0x7F else c for c in spelling)
        out.append(f'    "{esc}": "{letter}",')
    out.append("}")
    OUT.write_text("\n".join(out) + "\n", encoding="utf-8")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
