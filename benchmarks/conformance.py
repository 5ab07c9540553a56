"""The CWL v1.2 conformance suite (the unmodified copy in ../shared/cwl-v1.2) run with cwltest against
`archi-cwl-runner` on a local cluster and against plain cwltool (no container) in the same run, with
passed / failed / unsupported per tag side by side.

Judged by:  for each tag, the tests cwltool passes here that we fail (target: none).

    .venv/bin/python benchmarks/conformance.py [--tags required,command_line_tool,...] [-j 2]
    make conformance
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from archipelago.run.cluster import init_cluster
from archipelago.run.processes import ClusterProcess

SUITE = Path(__file__).resolve().parents[1].parent / "shared" / "cwl-v1.2"
BIN = Path(sys.executable).parent
TAGS = "required,command_line_tool,initial_work_dir,shell_command,env_var,resource,work_reuse"
SUMMARY = re.compile(r"(\d+) tests passed(?:, (\d+) failures?)?(?:, (\d+) unsupported features?)?")


def cwltest(tool: list[str], tag: str, jobs: int, env: dict[str, str], scratch: Path) -> dict[str, int]:
    junit = scratch / f"{Path(tool[0]).name}-{tag}.xml"
    args = [str(BIN / "cwltest"), "--test", "conformance_tests.yaml", "--tool", tool[0], "--tags", tag,
            "-j", str(jobs), "--timeout", "120", "--junit-xml", str(junit)]
    if tool[1:]:
        args += ["--", *tool[1:]]
    result = subprocess.run(args, cwd=SUITE, env=env, capture_output=True, text=True)
    found = SUMMARY.findall(result.stdout + result.stderr)
    passed, failed, unsupported = (int(x or 0) for x in found[-1]) if found else (0, 0, 0)
    return {"passed": passed, "failed": failed, "unsupported": unsupported}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tags", default=TAGS)
    parser.add_argument("-j", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not (SUITE / "conformance_tests.yaml").exists():
        raise SystemExit(f"the conformance suite is not at {SUITE}")
    results: dict[str, dict[str, dict[str, int]]] = {}
    with tempfile.TemporaryDirectory(prefix="conformance-") as scratch:
        init_cluster(Path(scratch) / "cluster", "z1111")
        with ClusterProcess(Path(scratch) / "cluster") as cluster:
            env = {**os.environ, "ARCHI_API_HOST": cluster.api_url, "ARCHI_API_TOKEN": cluster.admin_token or "",
                   "ARCHI_API_HOST_INSECURE": "1"}
            for tag in args.tags.split(","):
                results[tag] = {
                    "archi-cwl-runner": cwltest([str(BIN / "archi-cwl-runner")], tag, args.j, env, Path(scratch)),
                    "cwltool": cwltest([str(BIN / "cwltool"), "--no-container"], tag, args.j, env, Path(scratch)),
                }
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{'tag':<20} {'archi-cwl-runner (pass/fail/unsup)':>36} {'cwltool (pass/fail/unsup)':>28}")
    for tag, by_tool in results.items():
        ours, theirs = by_tool["archi-cwl-runner"], by_tool["cwltool"]
        print(f"{tag:<20} {ours['passed']:>24}/{ours['failed']}/{ours['unsupported']:<8}"
              f" {theirs['passed']:>18}/{theirs['failed']}/{theirs['unsupported']}")


if __name__ == "__main__":
    main()
