"""`make demo` in miniature: the round trip, the federated scenario and the meta-analysis across
three clusters, checked end to end."""

import json
import re
import subprocess
import sys


def test_demo_stores_and_reads_back_byte_identical(tmp_path):
    src = tmp_path / "data"
    (src / "d").mkdir(parents=True)
    (src / "d" / "x.txt").write_text("x" * 5000)
    (src / "y.bin").write_bytes(bytes(range(256)) * 1000)
    results = tmp_path / "results"
    result = subprocess.run([sys.executable, "-m", "archipelago", "demo", "--source", str(src), "--json",
                             "--results", str(results)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["verified"] is True and report["files"] == 2 and report["bytes"] == 261_000
    assert report["blocks"] == 1  # small files are packed into one shared block
    assert re.fullmatch(r"[0-9a-f]{32}\+[0-9]+", report["portable_data_hash"])
    federation = report["federation"]
    assert sorted(federation["clusters"]) == ["z1111", "z2222", "z3333"]
    # the panel crossed once, from where it is held to the reader's cluster; no cohort byte moved
    assert federation["crossed"] == {"z2222→z1111": federation["panel_bytes"]}
    assert federation["cohort_bytes_crossed"] == 0
    assert all(r.startswith("403") and "residency policy" in r for r in federation["refusals"].values())
    assert federation["copy_bytes_sent"] >= federation["panel_bytes"] and federation["copy_again_bytes_sent"] == 0
    assert report["ok"] is True
    # the headline: one workflow, extract next to each cohort, merge at home, only summaries travel
    meta = report["meta"]
    assert meta["status"] == "success"
    assert sorted(meta["steps"].values()) == ["z1111", "z1111", "z2222", "z3333"]
    assert meta["cohort_bytes_crossed"] == 0 and 0 < sum(meta["crossed"].values()) <= meta["expected_bytes"]
    assert all(n < meta["cohort_bytes"] for n in meta["crossed"].values())  # no edge carried a cohort
    assert set(meta["crossed"]) == {"z1111→z2222", "z1111→z3333", "z2222→z1111", "z3333→z1111"}
    assert meta["pooled"]["ci_low"] < meta["pooled"]["effect"] < meta["pooled"]["ci_high"] < 0
    assert meta["plot_bytes"] > 20_000 and meta["table"].startswith("site\tn\teffect")
    # it printed its plan first; each step ran where it said, and nothing moved beyond its bounds
    assert meta["plan"].startswith("plan of meta-analysis.cwl")
    assert meta["placed"] == {"extract[0]": ["z1111", "z1111"], "extract[1]": ["z2222", "z2222"],
                              "extract[2]": ["z3333", "z3333"], "merge": ["z1111", "z1111"]}
    assert meta["more_than_planned"] == [] and "within the plan's bounds" in meta["moved"]
    # the forest plot, drawn with matplotlib inside the merge step's container, is on this disk where it says
    plot = results / "forest-plot.png"
    assert meta["plot_path"] == str(plot.resolve()) and plot.stat().st_size == meta["plot_bytes"]
    assert b"Matplotlib" in plot.read_bytes()[:4096]
    assert (results / "meta-analysis.tsv").read_text() == meta["table"]
    assert "demo  starting 3 cluster(s)" in result.stderr  # it says what it is doing while it works
    # the end: a DOI resolved to the two sites that hold it, one stopped and the answer changing, and
    # an analysis launched at the data, its result home
    resolved = report["resolver"]
    assert resolved["ok"] is True
    assert sorted(resolved["before"]) == [["z2222", "live"], ["z3333", "live"]]
    assert resolved["after"] == [["z2222", "live"], ["z3333", "down"]]
    assert resolved["launched_at"] == "z2222" and resolved["request"].startswith("z2222-xvhdp-")
    assert resolved["exit_code"] == 0 and resolved["result"].strip() == "5000"
    assert resolved["home_output"].startswith("z1111-4zz18-") and resolved["result_bytes_home"] < 100
