"""The page script checks "Vietnamese with diacritics" as the reader types, with the same rule
as the server (portal_text.written_with_diacritics): run in Node on the same samples."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from portal_text import written_with_diacritics

SCRIPT = Path(__file__).parents[1] / "src" / "portal_web" / "static" / "js" / "portal.js"
SAMPLES = [
    "Tôi muốn hỏi về thủ tục cấp giấy chứng nhận",
    "Toi muon hoi ve thu tuc cap giay chung nhan",
    "Toi muon hoi ve Đảng va chinh sach dat dai o dia phuong",
    "Đúng!",
    "OK",
    "12345 !!!",
    "",
    "Bài viết rất hay, tôi đồng ý",
    "Bai viet rat hay, toi dong y voi cac giai phap",
    "BHXH cho người cao tuổi",
    "Cho tôi hỏi ve che do bao hiem y te",
    "Hòa bình, thuỷ lợi, đê điều",
    "Ho\u0300a bi\u0300nh",  # NFD, as some keyboards type
]


def test_the_script_and_the_server_agree() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed (deploy/system-deps.sh installs it)")
    program = (
        "global.window = {}; global.document = {readyState: 'loading', addEventListener() {}};"
        f"require({json.dumps(str(SCRIPT))});"
        f"const samples = {json.dumps(SAMPLES)};"
        "console.log(JSON.stringify(samples.map(window.portalDiacritics.writtenWithDiacritics)));"
    )
    out = subprocess.run(
        [node, "-e", program], capture_output=True, text=True, check=True, timeout=30
    )
    in_browser = json.loads(out.stdout)
    on_server = [written_with_diacritics(s) for s in SAMPLES]
    assert in_browser == on_server
    assert on_server[:4] == [True, False, False, True]
