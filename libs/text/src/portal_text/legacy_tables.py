"""Legacy Vietnamese 8-bit encodings as data (generated: tools/make_legacy_tables.py).

Origins: TCVN 5712:1993 VN1 (superset of the ABC/TCVN3 ".VnTime" fonts) and VISCII
(RFC 1456) from glibc's localedata charmaps TCVN5712-1 and VISCII; VNI-Windows from the
VNI font layout (base letter + mark byte; see the generator). Do not edit by hand.
"""

# Bytes 0x80..0xFF of TCVN 5712:1993 (VN1). 0xB0..0xB4 are combining tone marks.
TCVN_HIGH = (
    "\u00c0\u1ea2\u00c3\u00c1\u1ea0\u1eb6\u1eac\u00c8"  # 0x80: À Ả Ã Á Ạ Ặ Ậ È
    "\u1eba\u1ebc\u00c9\u1eb8\u1ec6\u00cc\u1ec8\u0128"  # 0x88: Ẻ Ẽ É Ẹ Ệ Ì Ỉ Ĩ
    "\u00cd\u1eca\u00d2\u1ece\u00d5\u00d3\u1ecc\u1ed8"  # 0x90: Í Ị Ò Ỏ Õ Ó Ọ Ộ
    "\u1edc\u1ede\u1ee0\u1eda\u1ee2\u00d9\u1ee6\u0168"  # 0x98: Ờ Ở Ỡ Ớ Ợ Ù Ủ Ũ
    "\u00a0\u0102\u00c2\u00ca\u00d4\u01a0\u01af\u0110"  # 0xA0: · Ă Â Ê Ô Ơ Ư Đ
    "\u0103\u00e2\u00ea\u00f4\u01a1\u01b0\u0111\u1eb0"  # 0xA8: ă â ê ô ơ ư đ Ằ
    "\u0300\u0309\u0303\u0301\u0323\u00e0\u1ea3\u00e3"  # 0xB0: · · · · · à ả ã
    "\u00e1\u1ea1\u1eb2\u1eb1\u1eb3\u1eb5\u1eaf\u1eb4"  # 0xB8: á ạ Ẳ ằ ẳ ẵ ắ Ẵ
    "\u1eae\u1ea6\u1ea8\u1eaa\u1ea4\u1ec0\u1eb7\u1ea7"  # 0xC0: Ắ Ầ Ẩ Ẫ Ấ Ề ặ ầ
    "\u1ea9\u1eab\u1ea5\u1ead\u00e8\u1ec2\u1ebb\u1ebd"  # 0xC8: ẩ ẫ ấ ậ è Ể ẻ ẽ
    "\u00e9\u1eb9\u1ec1\u1ec3\u1ec5\u1ebf\u1ec7\u00ec"  # 0xD0: é ẹ ề ể ễ ế ệ ì
    "\u1ec9\u1ec4\u1ebe\u1ed2\u0129\u00ed\u1ecb\u00f2"  # 0xD8: ỉ Ễ Ế Ồ ĩ í ị ò
    "\u1ed4\u1ecf\u00f5\u00f3\u1ecd\u1ed3\u1ed5\u1ed7"  # 0xE0: Ổ ỏ õ ó ọ ồ ổ ỗ
    "\u1ed1\u1ed9\u1edd\u1edf\u1ee1\u1edb\u1ee3\u00f9"  # 0xE8: ố ộ ờ ở ỡ ớ ợ ù
    "\u1ed6\u1ee7\u0169\u00fa\u1ee5\u1eeb\u1eed\u1eef"  # 0xF0: Ỗ ủ ũ ú ụ ừ ử ữ
    "\u1ee9\u1ef1\u1ef3\u1ef7\u1ef9\u00fd\u1ef5\u1ed0"  # 0xF8: ứ ự ỳ ỷ ỹ ý ỵ Ố
)
# C0 positions VN1 uses for capitals (control characters elsewhere).
TCVN_C0 = {
    0x01: "\u00da",
    0x02: "\u1ee4",
    0x04: "\u1eea",
    0x05: "\u1eec",
    0x06: "\u1eee",
    0x11: "\u1ee8",
    0x12: "\u1ef0",
    0x13: "\u1ef2",
    0x14: "\u1ef6",
    0x15: "\u1ef8",
    0x16: "\u00dd",
    0x17: "\u1ef4",
}

# Bytes 0x80..0xFF of VISCII.
VISCII_HIGH = (
    "\u1ea0\u1eae\u1eb0\u1eb6\u1ea4\u1ea6\u1ea8\u1eac"  # 0x80: Ạ Ắ Ằ Ặ Ấ Ầ Ẩ Ậ
    "\u1ebc\u1eb8\u1ebe\u1ec0\u1ec2\u1ec4\u1ec6\u1ed0"  # 0x88: Ẽ Ẹ Ế Ề Ể Ễ Ệ Ố
    "\u1ed2\u1ed4\u1ed6\u1ed8\u1ee2\u1eda\u1edc\u1ede"  # 0x90: Ồ Ổ Ỗ Ộ Ợ Ớ Ờ Ở
    "\u1eca\u1ece\u1ecc\u1ec8\u1ee6\u0168\u1ee4\u1ef2"  # 0x98: Ị Ỏ Ọ Ỉ Ủ Ũ Ụ Ỳ
    "\u00d5\u1eaf\u1eb1\u1eb7\u1ea5\u1ea7\u1ea9\u1ead"  # 0xA0: Õ ắ ằ ặ ấ ầ ẩ ậ
    "\u1ebd\u1eb9\u1ebf\u1ec1\u1ec3\u1ec5\u1ec7\u1ed1"  # 0xA8: ẽ ẹ ế ề ể ễ ệ ố
    "\u1ed3\u1ed5\u1ed7\u1ee0\u01a0\u1ed9\u1edd\u1edf"  # 0xB0: ồ ổ ỗ Ỡ Ơ ộ ờ ở
    "\u1ecb\u1ef0\u1ee8\u1eea\u1eec\u01a1\u1edb\u01af"  # 0xB8: ị Ự Ứ Ừ Ử ơ ớ Ư
    "\u00c0\u00c1\u00c2\u00c3\u1ea2\u0102\u1eb3\u1eb5"  # 0xC0: À Á Â Ã Ả Ă ẳ ẵ
    "\u00c8\u00c9\u00ca\u1eba\u00cc\u00cd\u0128\u1ef3"  # 0xC8: È É Ê Ẻ Ì Í Ĩ ỳ
    "\u0110\u1ee9\u00d2\u00d3\u00d4\u1ea1\u1ef7\u1eeb"  # 0xD0: Đ ứ Ò Ó Ô ạ ỷ ừ
    "\u1eed\u00d9\u00da\u1ef9\u1ef5\u00dd\u1ee1\u01b0"  # 0xD8: ử Ù Ú ỹ ỵ Ý ỡ ư
    "\u00e0\u00e1\u00e2\u00e3\u1ea3\u0103\u1eef\u1eab"  # 0xE0: à á â ã ả ă ữ ẫ
    "\u00e8\u00e9\u00ea\u1ebb\u00ec\u00ed\u0129\u1ec9"  # 0xE8: è é ê ẻ ì í ĩ ỉ
    "\u0111\u1ef1\u00f2\u00f3\u00f4\u00f5\u1ecf\u1ecd"  # 0xF0: đ ự ò ó ô õ ỏ ọ
    "\u1ee5\u00f9\u00fa\u0169\u1ee7\u00fd\u1ee3\u1eee"  # 0xF8: ụ ù ú ũ ủ ý ợ Ữ
)
# The six C0 positions VISCII uses for capitals.
VISCII_C0 = {
    0x02: "\u1eb2",
    0x05: "\u1eb4",
    0x06: "\u1eaa",
    0x14: "\u1ef6",
    0x19: "\u1ef8",
    0x1E: "\u1ef4",
}

# VNI-Windows: spelling (as Latin-1 characters) -> letter.
VNI = {
    "A\xd8": "À",
    "a\xf8": "à",
    "A\xd9": "Á",
    "a\xf9": "á",
    "A\xc2": "Â",
    "a\xe2": "â",
    "A\xd5": "Ã",
    "a\xf5": "ã",
    "E\xd8": "È",
    "e\xf8": "è",
    "E\xd9": "É",
    "e\xf9": "é",
    "E\xc2": "Ê",
    "e\xe2": "ê",
    "\xcc": "Ì",
    "\xec": "ì",
    "\xcd": "Í",
    "\xed": "í",
    "O\xd8": "Ò",
    "o\xf8": "ò",
    "O\xd9": "Ó",
    "o\xf9": "ó",
    "O\xc2": "Ô",
    "o\xe2": "ô",
    "O\xd5": "Õ",
    "o\xf5": "õ",
    "U\xd8": "Ù",
    "u\xf8": "ù",
    "U\xd9": "Ú",
    "u\xf9": "ú",
    "Y\xd9": "Ý",
    "y\xf9": "ý",
    "A\xca": "Ă",
    "a\xea": "ă",
    "\xd1": "Đ",
    "\xf1": "đ",
    "\xd3": "Ĩ",
    "\xf3": "ĩ",
    "U\xd5": "Ũ",
    "u\xf5": "ũ",
    "\xd4": "Ơ",
    "\xf4": "ơ",
    "\xd6": "Ư",
    "\xf6": "ư",
    "A\xcf": "Ạ",
    "a\xef": "ạ",
    "A\xdb": "Ả",
    "a\xfb": "ả",
    "A\xc1": "Ấ",
    "a\xe1": "ấ",
    "A\xc0": "Ầ",
    "a\xe0": "ầ",
    "A\xc5": "Ẩ",
    "a\xe5": "ẩ",
    "A\xc3": "Ẫ",
    "a\xe3": "ẫ",
    "A\xc4": "Ậ",
    "a\xe4": "ậ",
    "A\xc9": "Ắ",
    "a\xe9": "ắ",
    "A\xc8": "Ằ",
    "a\xe8": "ằ",
    "A\xda": "Ẳ",
    "a\xfa": "ẳ",
    "A\xdc": "Ẵ",
    "a\xfc": "ẵ",
    "A\xcb": "Ặ",
    "a\xeb": "ặ",
    "E\xcf": "Ẹ",
    "e\xef": "ẹ",
    "E\xdb": "Ẻ",
    "e\xfb": "ẻ",
    "E\xd5": "Ẽ",
    "e\xf5": "ẽ",
    "E\xc1": "Ế",
    "e\xe1": "ế",
    "E\xc0": "Ề",
    "e\xe0": "ề",
    "E\xc5": "Ể",
    "e\xe5": "ể",
    "E\xc3": "Ễ",
    "e\xe3": "ễ",
    "E\xc4": "Ệ",
    "e\xe4": "ệ",
    "\xc6": "Ỉ",
    "\xe6": "ỉ",
    "\xd2": "Ị",
    "\xf2": "ị",
    "O\xcf": "Ọ",
    "o\xef": "ọ",
    "O\xdb": "Ỏ",
    "o\xfb": "ỏ",
    "O\xc1": "Ố",
    "o\xe1": "ố",
    "O\xc0": "Ồ",
    "o\xe0": "ồ",
    "O\xc5": "Ổ",
    "o\xe5": "ổ",
    "O\xc3": "Ỗ",
    "o\xe3": "ỗ",
    "O\xc4": "Ộ",
    "o\xe4": "ộ",
    "\xd4\xd9": "Ớ",
    "\xf4\xf9": "ớ",
    "\xd4\xd8": "Ờ",
    "\xf4\xf8": "ờ",
    "\xd4\xdb": "Ở",
    "\xf4\xfb": "ở",
    "\xd4\xd5": "Ỡ",
    "\xf4\xf5": "ỡ",
    "\xd4\xcf": "Ợ",
    "\xf4\xef": "ợ",
    "U\xcf": "Ụ",
    "u\xef": "ụ",
    "U\xdb": "Ủ",
    "u\xfb": "ủ",
    "\xd6\xd9": "Ứ",
    "\xf6\xf9": "ứ",
    "\xd6\xd8": "Ừ",
    "\xf6\xf8": "ừ",
    "\xd6\xdb": "Ử",
    "\xf6\xfb": "ử",
    "\xd6\xd5": "Ữ",
    "\xf6\xf5": "ữ",
    "\xd6\xcf": "Ự",
    "\xf6\xef": "ự",
    "Y\xd8": "Ỳ",
    "y\xf8": "ỳ",
    "\xce": "Ỵ",
    "\xee": "ỵ",
    "Y\xdb": "Ỷ",
    "y\xfb": "ỷ",
    "Y\xd5": "Ỹ",
    "y\xf5": "ỹ",
}
