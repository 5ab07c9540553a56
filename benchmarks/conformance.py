"""The CWL v1.2 conformance suite (the unmodified copy in ../shared/cwl-v1.2) run with cwltest against
`archi-cwl-runner` on a local cluster and against plain cwltool (no container) in the same run, with
passed / failed / unsupported per tag side by side.

Judged by:  for each tag, the tests cwltool passes here that we fail (target: none).

    .venv/bin/python benchmarks/conformance.py [--tags required,command_line_tool,...] [-j 2] [--only ours]
    make conformance

Without ../shared/cwl-v1.2 (a clone on its own), the same commit of the suite is downloaded once into
~/.cache/archipelago.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from archipelago.run.cluster import init_cluster
from archipelago.run.processes import ClusterProcess

SHARED_SUITE = Path(__file__).resolve().parents[1].parent / "shared" / "cwl-v1.2"
SUITE_COMMIT = "551d58d409ef2a0fa2e3ab93b85167dd7d4b1833"  # the commit ../shared/cwl-v1.2/SOURCE names
SUITE_UNAVAILABLE = 3  # exit status when there is no suite to run
SUITE_ARCHIVE = f"https://github.com/common-workflow-language/cwl-v1.2/archive/{SUITE_COMMIT}.tar.gz"
BIN = Path(sys.executable).parent
TAGS = "required,command_line_tool,initial_work_dir,shell_command,env_var,resource,work_reuse"
BADGE_ENTRY = re.compile(r"^- \[(?P<id>[^\]]+)\]")  # a test in cwltest's per-tag report


def suite() -> Path:
    """The conformance suite: the shared copy, else the same commit downloaded once."""
    if (SHARED_SUITE / "conformance_tests.yaml").exists():
        return SHARED_SUITE
    cached = Path.home() / ".cache" / "archipelago" / f"cwl-v1.2-{SUITE_COMMIT}"
    if not (cached / "conformance_tests.yaml").exists():
        cached.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cached.parent) as unpacking:
            archive = Path(unpacking) / "suite.tar.gz"
            try:
                urllib.request.urlretrieve(SUITE_ARCHIVE, archive)
            except OSError as error:
                print(f"the CWL v1.2 conformance suite is not at {SHARED_SUITE} and could not be downloaded "
                      f"from {SUITE_ARCHIVE}: {error}", file=sys.stderr)
                raise SystemExit(SUITE_UNAVAILABLE) from error
            with tarfile.open(archive) as tar:
                tar.extractall(unpacking, filter="data")
            (Path(unpacking) / f"cwl-v1.2-{SUITE_COMMIT}").rename(cached)  # whole or not at all
    return cached


@dataclass
class TagResult:
    passed: list[str]  # test ids
    failed: list[str]
    unsupported: list[str]


def cwltest(tool: list[str], tag: str, jobs: int, env: dict[str, str], scratch: Path) -> TagResult:
    """One tag run by cwltest; which tests passed, failed and were unsupported, from its badge report."""
    badges = scratch / f"badges-{Path(tool[0]).name}-{tag}"
    args = [str(BIN / "cwltest"), "--test", "conformance_tests.yaml", "--tool", tool[0], "--tags", tag,
            "-j", str(jobs), "--timeout", "120", "--badgedir", str(badges)]
    if tool[1:]:
        args += ["--", *tool[1:]]
    result = subprocess.run(args, cwd=suite(), env=env, capture_output=True, text=True)
    report = badges / f"{tag}.md"
    if not report.exists():  # cwltest itself did not run: say why rather than report zeros
        raise SystemExit(f"cwltest failed for {tool[0]} on {tag}:\n{(result.stdout + result.stderr)[-3000:]}")
    lists: dict[str, list[str]] = {"passed": [], "failed": [], "unsupported": []}
    current: list[str] = []
    for line in report.read_text().splitlines():
        if line.startswith("## List of "):
            current = lists[line.split()[3]]
        elif (entry := BADGE_ENTRY.match(line)) and current is not None:
            current.append(entry["id"])
    return TagResult(**{key: sorted(ids) for key, ids in lists.items()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tags", default=TAGS)
    parser.add_argument("-j", type=int, default=2)
    parser.add_argument("--only", choices=["ours", "cwltool"], help="run one side only")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    runners = {"archi-cwl-runner": [str(BIN / "archi-cwl-runner")], "cwltool": [str(BIN / "cwltool"), "--no-container"]}
    if args.only:
        runners = {name: tool for name, tool in runners.items() if (name == "cwltool") == (args.only == "cwltool")}
    suite()
    results: dict[str, dict[str, TagResult]] = {}
    with tempfile.TemporaryDirectory(prefix="conformance-") as scratch:
        init_cluster(Path(scratch) / "cluster", "z1111")
        with ClusterProcess(Path(scratch) / "cluster") as cluster:
            env = {**os.environ, "ARCHI_API_HOST": cluster.api_url, "ARCHI_API_TOKEN": cluster.admin_token or "",
                   "ARCHI_API_HOST_INSECURE": "1"}
            for tag in args.tags.split(","):
                results[tag] = {name: cwltest(tool, tag, args.j, env, Path(scratch)) for name, tool in runners.items()}
    if args.json:
        print(json.dumps({tag: {name: asdict(r) for name, r in by_tool.items()} for tag, by_tool in results.items()},
                         indent=2))
        return
    print(f"{'tag':<20}" + "".join(f" {name + ' (pass/fail/unsup)':>36}" for name in runners))
    for tag, by_tool in results.items():
        print(f"{tag:<20}" + "".join(f" {f'{len(r.passed)}/{len(r.failed)}/{len(r.unsupported)}':>36}"
                                     for r in by_tool.values()))
    for tag, by_tool in results.items():
        ours, theirs = by_tool.get("archi-cwl-runner"), by_tool.get("cwltool")
        if ours and theirs:
            behind = sorted(set(theirs.passed) - set(ours.passed))
            print(f"{tag}: cwltool passes and we fail {len(behind)}" + "".join(f"\n  {t}" for t in behind))


if __name__ == "__main__":
    main()
