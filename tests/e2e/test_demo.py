"""`make demo` in miniature: the whole one-keepstore scenario, checked end to end."""

import json
import re
import subprocess
import sys


def test_demo_stores_and_reads_back_byte_identical(tmp_path):
    src = tmp_path / "data"
    (src / "d").mkdir(parents=True)
    (src / "d" / "x.txt").write_text("x" * 5000)
    (src / "y.bin").write_bytes(bytes(range(256)) * 1000)
    result = subprocess.run([sys.executable, "-m", "archipelago", "demo", "--source", str(src), "--json"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["verified"] is True and report["files"] == 2 and report["bytes"] == 261_000
    assert report["blocks"] == 1  # small files are packed into one shared block
    assert re.fullmatch(r"[0-9a-f]{32}\+[0-9]+", report["portable_data_hash"])
