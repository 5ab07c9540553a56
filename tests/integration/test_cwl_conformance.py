"""The CWL v1.2 conformance suite's `required` tag, run by cwltest against archi-cwl-runner on a
local cluster (benchmarks/conformance.py does the running; here only our side)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "conformance.py"


@pytest.mark.timeout(1200)
def test_required_conformance_passes() -> None:
    result = subprocess.run([sys.executable, str(BENCHMARK), "--tags", "required", "--only", "ours", "--json"],
                            capture_output=True, text=True, timeout=1100)
    if result.returncode == 3:  # benchmarks/conformance.py: neither ../shared/cwl-v1.2 nor a download
        pytest.skip(result.stderr.strip())
    assert result.returncode == 0, result.stderr[-3000:]
    ours = json.loads(result.stdout)["required"]["archi-cwl-runner"]
    assert ours["failed"] == [] and ours["unsupported"] == []
    assert len(ours["passed"]) == 84  # the whole tag at the suite's pinned commit
