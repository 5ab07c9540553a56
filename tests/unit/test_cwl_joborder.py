"""Reading a job order as cwltool does: formats expanded, `path` made a location, secondary files
found beside their primaries, defaults filled in; and which objects are literals."""

from pathlib import Path

import pytest
from cwltool.context import LoadingContext
from cwltool.load_tool import load_tool
from cwltool.workflow import default_make_tool

from archipelago.cwl.joborder import RunError, find_objects, is_literal, read_job_order
from archipelago.cwl.runner import document_uri

TOOL = """
cwlVersion: v1.2
class: CommandLineTool
$namespaces: {edam: "http://edamontology.org/"}
inputs:
  reads:
    type: File
    secondaryFiles: [.bai, {pattern: .crai, required: false}]
    format: edam:format_2572
  reference:
    type: File
    default: {class: File, path: ref.fa}
outputs: []
baseCommand: "true"
"""


def load(path: Path):
    return load_tool(document_uri(path), LoadingContext({"construct_tool_object": default_make_tool}))


@pytest.fixture
def tool(tmp_path: Path):
    (tmp_path / "tool.cwl").write_text(TOOL)
    for name in ("sample.bam", "sample.bam.bai", "ref.fa"):
        (tmp_path / name).write_text(name)
    return load(tmp_path / "tool.cwl")


def test_secondary_files_formats_and_defaults(tool, tmp_path: Path) -> None:
    job = tmp_path / "job.yml"
    job.write_text("reads: {class: File, path: sample.bam, format: edam:format_2572}\n")
    job_order, basedir = read_job_order(tool, job)
    assert basedir == tmp_path
    reads = job_order["reads"]
    assert reads["location"] == (tmp_path / "sample.bam").as_uri() and "path" not in reads
    assert reads["format"] == "http://edamontology.org/format_2572"
    assert [s["basename"] for s in reads["secondaryFiles"]] == ["sample.bam.bai"]  # .crai is optional, absent
    assert job_order["reference"]["location"] == (tmp_path / "ref.fa").as_uri()
    found = find_objects(job_order, ("File",), lambda value: True)
    assert [f["basename"] for f in found] == ["sample.bam", "sample.bam.bai", "ref.fa"]


def test_a_required_secondary_file_missing_is_an_error(tool, tmp_path: Path) -> None:
    (tmp_path / "sample.bam.bai").unlink()
    job = tmp_path / "job.yml"
    job.write_text("reads: {class: File, path: sample.bam}\n")
    with pytest.raises(Exception, match="Missing required secondary file"):
        read_job_order(tool, job)


def test_literals() -> None:
    assert is_literal({"class": "File", "contents": "x"})
    assert is_literal({"class": "File", "location": "_:1234", "contents": "x"})
    assert is_literal({"class": "Directory", "listing": []})
    assert not is_literal({"class": "File", "location": "file:///x", "contents": "x"})
    assert not is_literal({"class": "Directory", "location": "keep:abc+1/d", "listing": []})


def test_document_uri_keeps_the_fragment(tmp_path: Path) -> None:
    assert document_uri(tmp_path / "packed.cwl#main") == (tmp_path / "packed.cwl").as_uri() + "#main"
    assert document_uri(tmp_path / "tool.cwl") == (tmp_path / "tool.cwl").as_uri()


def test_a_job_order_that_does_not_fit_is_a_plain_error(tool, tmp_path: Path) -> None:
    job = tmp_path / "job.yml"
    job.write_text("reference: {class: File, path: ref.fa}\n")  # `reads` is missing
    with pytest.raises(RunError, match="does not fit the workflow's inputs") as info:
        read_job_order(tool, job)
    assert "Missing required input parameter 'reads'" in str(info.value)
