"""`archi manifest validate|normalize|pdh`: manifests on their own, like arv-normalize."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ..formats import manifest
from .common import JsonOpt
from .errors import Typer
from .output import BAD_INPUT, emit, fail

app = Typer(help="Validate, normalize and hash manifests (like arv-normalize).", no_args_is_help=True)
ManifestFile = Annotated[str, typer.Argument(help="Manifest file, or - for standard input.")]


def read_manifest(source: str, as_json: bool) -> manifest.Manifest:
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        fail(f"cannot read {source}: {exc.strerror}", BAD_INPUT, as_json)
    except UnicodeDecodeError:
        fail(f"{source} is not UTF-8 text", BAD_INPUT, as_json)
    try:
        parsed = manifest.parse(text)
        parsed.tree()  # segment bounds
        return parsed
    except manifest.ManifestError as exc:
        fail(f"invalid manifest {source}: {exc}", BAD_INPUT, as_json)


@app.command("validate")
def manifest_validate(source: ManifestFile = "-", as_json: JsonOpt = False) -> None:
    """Exit 0 if the manifest is valid; otherwise name the line and token at fault (exit 2)."""
    parsed = read_manifest(source, as_json)
    files = sum(len(f) for f in parsed.tree().values())
    emit({"valid": True, "streams": len(parsed.streams), "files": files}, as_json,
         f"valid: {len(parsed.streams)} streams, {files} files")


@app.command("normalize")
def manifest_normalize(source: ManifestFile = "-", as_json: JsonOpt = False) -> None:
    """Print the normalized manifest (sorted streams and files, merged segments)."""
    text = read_manifest(source, as_json).normalized()
    if as_json:
        emit({"manifest_text": text, "portable_data_hash": manifest.portable_data_hash(text)}, True)
    else:
        sys.stdout.write(text)


@app.command("pdh")
def manifest_pdh(source: ManifestFile = "-", as_json: JsonOpt = False) -> None:
    """Print the portable data hash of the manifest as given (hints stripped, not re-normalized)."""
    pdh = read_manifest(source, as_json).portable_data_hash()
    emit({"portable_data_hash": pdh}, as_json, pdh)
