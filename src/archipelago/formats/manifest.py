"""Manifest text: validation, parsing, normalization and the portable data hash.

Byte-compatible with Arvados (see shared/reference/arvados-wire-formats.md §2). Hot paths
are whole-line regular expressions running in C; the token-by-token checker runs only to
explain an error or for the rare lines that contain escapes. That keeps a manifest of a
million files within seconds.
"""

from __future__ import annotations

import hashlib
import re
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import accumulate

from ..errors import BadRequest
from .locator import EMPTY_LOCATOR, LOCATOR_TOKEN_RE, Locator, LocatorError

# A name token: printable non-space characters, with `\ooo` escapes; written as an
# "unrolled loop" so the regex engine runs over plain characters without backtracking.
_PLAIN = r"[^\x00-\x20\\]"
_OCTAL = r"\\[0-3][0-7][0-7]"
_NAME = rf"(?:{_PLAIN}|{_OCTAL}){_PLAIN}*(?:{_OCTAL}{_PLAIN}*)*"
_LOCATOR = r"[0-9a-f]{32}\+[0-9]+(?:\+[A-Z][A-Za-z0-9@_-]*)*"
_FILE = rf"[0-9]+:[0-9]+:{_NAME}"

_LINE_RE = re.compile(rf"{_NAME}(?: {_LOCATOR})+(?: {_FILE})+")
_TOKEN_RE = re.compile(_NAME)
_LOCATOR_RE = re.compile(_LOCATOR)
_FILE_RE = re.compile(rf"([0-9]+):([0-9]+):({_NAME})")
_LOCATORS_RE = re.compile(rf"{_LOCATOR}(?: {_LOCATOR})*")
_PLAIN_LOCATORS_RE = re.compile(r"[0-9a-f]{32}\+[0-9]+(?: [0-9a-f]{32}\+[0-9]+)*")
_FILES_RE = re.compile(rf"{_FILE}(?: {_FILE})*")
_PLAIN_FILES_RE = re.compile(r"[0-9]+:[0-9]+:[^\x00-\x20\\]+(?: [0-9]+:[0-9]+:[^\x00-\x20\\]+)*")
# On escape-free lines, every path problem shows as one of these substrings: an empty
# component, a trailing or leading "/", or a "." / ".." component.
_BAD_PATH_RE = re.compile(
    r"//|/(?= |$)|(?<= )[0-9]+:[0-9]+:/|(?:(?<= )[0-9]+:[0-9]+:|/)\.\.?(?= |/|$)"
)
_ESCAPE_RE = re.compile(rb"\\([0-3][0-7][0-7])")
_HINTS_RE = re.compile(r"(?<= )([0-9a-f]{32}\+[0-9]+)(?:\+[A-Z][A-Za-z0-9@_-]*)+(?=[ \n])")
_ESCAPE_TABLE = {c: f"\\{c:03o}" for c in (*range(0x21), ord(":"), ord("\\"))}

# An empty directory: "0:0:." in the grammar; writers escape the dot as "\056".
EMPTY_DIR_TOKENS = frozenset({"0:0:.", "0:0:\\056"})
_NO_PROBLEM = "no problem found"


class ManifestError(BadRequest, ValueError):
    """An invalid manifest; names the line (1-based) and token (1-based) at fault."""

    def __init__(self, reason: str, line: int | None = None, token: int | None = None, text: str = ""):
        self.reason, self.line, self.token, self.text = reason, line, token, text
        where = []
        if line is not None:
            where.append(f"line {line}")
        if token is not None:
            where.append(f"token {token} {text[:80]!r}")
        super().__init__(f"{', '.join(where)}: {reason}" if where else reason)


def escape(name: str) -> str:
    """Escape a stream or file name the way Arvados writers do (`\\ooo` for space, ':', '\\', controls)."""
    return name.translate(_ESCAPE_TABLE)


def unescape(token: str) -> str:
    """Decode `\\ooo` byte escapes; the bytes are UTF-8 (invalid sequences survive as surrogates)."""
    if "\\" not in token:
        return token
    raw = _ESCAPE_RE.sub(lambda m: bytes([int(m[1], 8)]), token.encode("utf-8", "surrogateescape"))
    return raw.decode("utf-8", "surrogateescape")


def _path_problem(path: str, what: str) -> str | None:
    parts = path.split("/")
    if "" in parts:
        return f"{what} {path!r} has an empty path component (leading, trailing or double '/')"
    if "." in parts or ".." in parts:
        return f"{what} {path!r} has a '.' or '..' component"
    return None


def _explain(line: str, lineno: int) -> ManifestError:
    """Check one line token by token and describe its first problem."""
    if line == "":
        return ManifestError("empty line (each stream is one non-empty line)", lineno)
    if line.endswith(" "):
        return ManifestError("trailing space before the end of the line", lineno)
    tokens = line.split(" ")
    for i, tok in enumerate(tokens, 1):
        if tok == "":
            return ManifestError("empty token (two spaces in a row?)", lineno, i, tok)
        if not _TOKEN_RE.fullmatch(tok):
            return ManifestError(
                "character that must be escaped (space, control, or backslash not in \\ooo form)", lineno, i, tok
            )
    name = unescape(tokens[0])
    if not (name == "." or name.startswith("./")):
        return ManifestError("stream name must be '.' or start with './'", lineno, 1, tokens[0])
    if name != "." and (problem := _path_problem(name[2:], "stream name")):
        return ManifestError(problem, lineno, 1, tokens[0])
    i = 1
    while i < len(tokens) and _LOCATOR_RE.fullmatch(tokens[i]):
        i += 1
    if i == 1:
        if len(tokens) > 1 and not _FILE_RE.fullmatch(tokens[1]):
            try:
                Locator.parse(tokens[1])
            except LocatorError as exc:
                return ManifestError(str(exc), lineno, 2, tokens[1])
        return ManifestError("a stream needs at least one block locator after its name", lineno, 2, "")
    if i == len(tokens):
        return ManifestError("a stream needs at least one file token after its locators", lineno)
    for j in range(i, len(tokens)):
        tok = tokens[j]
        match = _FILE_RE.fullmatch(tok)
        if match is None:
            if _LOCATOR_RE.fullmatch(tok):
                return ManifestError("block locator after a file token", lineno, j + 1, tok)
            return ManifestError("invalid file token (expected position:size:name)", lineno, j + 1, tok)
        if tok not in EMPTY_DIR_TOKENS and (problem := _path_problem(unescape(match[3]), "file name")):
            return ManifestError(problem, lineno, j + 1, tok)
    return ManifestError(_NO_PROBLEM, lineno)


def _needs_path_scan(section: str) -> bool:
    """Cheap substring tests that rule out every path problem _BAD_PATH_RE looks for."""
    return "//" in section or "/ " in section or section.endswith("/") or ":/" in section or (
        "." in section and ("/." in section or ":." in section)
    )


def _split_checked(line: str, lineno: int) -> Stream:
    """Validate one stream line and split it, explaining any problem token by token."""
    space = line.find(" ")
    colon = line.find(":", space)
    boundary = line.rfind(" ", 0, colon)
    if space <= 0 or colon < 0 or boundary <= space:
        raise _explain(line, lineno)
    name, locators, files = line[:space], line[space + 1 : boundary], line[boundary + 1 :]
    has_hints = locators.count("+") > locators.count(" ") + 1  # each bare locator has one '+'
    locators_re = _LOCATORS_RE if has_hints else _PLAIN_LOCATORS_RE
    files_re = _FILES_RE if "\\" in files else _PLAIN_FILES_RE
    if (
        _TOKEN_RE.fullmatch(name) is None
        or locators_re.fullmatch(locators) is None
        or files_re.fullmatch(files) is None
    ):
        raise _explain(line, lineno)
    if "\\" in line:
        # escapes can hide '/' and '.', so only the token checker can judge paths here
        if (err := _explain(line, lineno)).reason != _NO_PROBLEM:
            raise err
    elif not (name == "." or name.startswith("./")) or (
        _needs_path_scan(line) and any(bad[0] not in EMPTY_DIR_TOKENS for bad in _BAD_PATH_RE.finditer(line))
    ):
        raise _explain(line, lineno)
    return Stream(unescape(name), locators.split(" "), files)


def _lines(text: str) -> list[str]:
    if text == "":
        return []
    if not text.endswith("\n"):
        raise ManifestError("a manifest must end with a newline", text.count("\n") + 1)
    return text[:-1].split("\n")


def validate(text: str) -> None:
    """Raise ManifestError unless `text` is a valid manifest (grammar and segment bounds)."""
    parse(text).tree()


@dataclass(slots=True)
class Stream:
    """One manifest line: a directory name, its blocks, and file segments into their concatenation."""

    name: str  # unescaped, "." or "./dir/sub"
    locators: list[str]
    files_text: str = field(repr=False)  # the raw "pos:size:escaped_name ..." tokens, split on demand

    @property
    def file_tokens(self) -> list[str]:
        return self.files_text.split(" ")

    def files(self) -> Iterator[tuple[int, int, str]]:
        """(position, size, unescaped name) for each file token, in manifest order."""
        for tok in self.file_tokens:
            pos, size, name = tok.split(":", 2)
            yield int(pos), int(size), unescape(name)

    @property
    def block_sizes(self) -> list[int]:
        return [_block_size(loc) for loc in self.locators]


Segment = tuple[str, int, int]  # (locator, offset within the block, length)


@dataclass(slots=True)
class Manifest:
    """A parsed, validated manifest. `text` is kept as submitted: the PDH is computed over it."""

    text: str
    streams: list[Stream]

    def portable_data_hash(self) -> str:
        return portable_data_hash(self.text)

    def tree(self) -> dict[str, dict[str, list[Segment]]]:
        """Directory path -> file name -> segments, concatenating repeated files in manifest order.

        Directories declared empty (`0:0:.`) appear with no files.
        """
        dirs: dict[str, dict[str, list[Segment]]] = {}
        for lineno, stream in enumerate(self.streams, 1):
            locators = stream.locators
            starts = [0, *accumulate(stream.block_sizes)]
            total = starts[-1]
            here = dirs.setdefault(stream.name, {})
            i, block_start, block_end = 0, 0, starts[1]
            for tok in stream.file_tokens:
                pos_s, size_s, name = tok.split(":", 2)
                pos = int(pos_s)
                end = pos + int(size_s)
                if end > total:
                    raise ManifestError(
                        f"file segment ends past the stream's {total} bytes of blocks", lineno, text=tok
                    )
                if "\\" in name or "/" in name or name == ".":
                    if tok in EMPTY_DIR_TOKENS:
                        continue
                    name = unescape(name)
                    if "/" in name:
                        parent, _, name = f"{stream.name}/{name}".rpartition("/")
                        segments = dirs.setdefault(parent, {}).setdefault(name, [])
                    else:
                        segments = here.setdefault(name, [])
                else:
                    segments = here.setdefault(name, [])
                if pos == end:
                    continue
                if not block_start <= pos < block_end:
                    i = bisect_right(starts, pos) - 1
                    block_start, block_end = starts[i], starts[i + 1]
                if end <= block_end:  # the common case: the segment lies within one block
                    segments.append((locators[i], pos - block_start, end - pos))
                    continue
                while pos < end:
                    if block_end > pos:
                        take = min(end, block_end) - pos
                        segments.append((locators[i], pos - block_start, take))
                        pos += take
                    if pos < end:
                        i += 1
                        block_start, block_end = starts[i], starts[i + 1]
        return dirs

    def normalized(self) -> str:
        return render(self.tree())

def parse(text: str) -> Manifest:
    """Validate the grammar and split a manifest into streams; file segments are expanded on demand."""
    return Manifest(text, [_split_checked(line, n) for n, line in enumerate(_lines(text), 1)])


def block_copies(text: str) -> set[tuple[str, str]]:
    """Which copy of each block the manifest reads: (`md5+size`, place), the place being the
    service a `+K@` hint names, `remote:<cluster>` for a `+R` block, else `keep` (this cluster's)."""
    copies = set()
    for stream in parse(text).streams:
        for token in stream.locators:
            locator = Locator.parse(token)
            remote = locator.remote_signature
            place = next(iter(locator.service_hints), None) or (f"remote:{remote.cluster_id}" if remote else "keep")
            copies.add((locator.stripped, place))
    return copies


def replace_locators(text: str, replacements: dict[str, str]) -> str:
    """The manifest with each locator token found in `replacements` replaced; files untouched."""
    return LOCATOR_TOKEN_RE.sub(lambda match: replacements.get(match[0], match[0]), text)


def check_interop(manifest: Manifest, dirs: dict[str, dict[str, list[Segment]]] | None = None) -> None:
    """Raise ManifestError for a valid manifest the official Arvados Python SDK reads otherwise than we do.

    Found by reading the SDK (`arvados/_internal/streams.py`, `collection.py`) and checked against it:
    - a zero-length locator after a stream's first one with data after it: the SDK's binary search
      for a file's first block stops on it and gives up, so the files it should find beyond it read
      as empty (`arv-get` writes them so and exits 0). First in a stream, or after all of its data,
      one is harmless: the search never stops there.
    - a path that is both a file and a directory: the SDK refuses the whole manifest.
    `dirs` is `manifest.tree()` when the caller has it already.
    """
    for lineno, stream in enumerate(manifest.streams, 1):
        if len(stream.locators) < 3:  # a middle needs a first and a last
            continue
        sizes = stream.block_sizes
        last_data = max((i for i, size in enumerate(sizes) if size), default=0)
        for i in range(1, last_data):
            if not sizes[i]:
                raise ManifestError(
                    f"stream {escape(stream.name)}: a zero-length block between blocks with data (the official "
                    "Arvados SDK then reads the files after it as empty; an empty file is `<pos>:0:<name>` with no "
                    "block of its own, and the empty block belongs only in a stream without data)",
                    lineno, i + 2, stream.locators[i])
    check_paths(manifest.tree() if dirs is None else dirs)


def check_paths(dirs: dict[str, dict[str, list[Segment]]]) -> None:
    """Raise ManifestError if a path of the tree is both a file and a directory, which the official
    Arvados SDK refuses (and a file system cannot hold)."""
    for path in _directories(dirs):
        parent, _, name = path.rpartition("/")
        if name in dirs.get(parent, ()):
            raise ManifestError(f"{escape(path)} is both a file and a directory (the official Arvados SDK "
                                "refuses such a manifest)")


def _directories(dirs: dict[str, dict[str, list[Segment]]]) -> set[str]:
    """Every directory a tree names or implies (the ancestors of those it names), "." excepted."""
    found: set[str] = set()
    for path in dirs:
        while path != "." and path not in found:
            found.add(path)
            path = path.rpartition("/")[0]
    return found


def strip_hints(text: str) -> str:
    """The portable form: every locator reduced to `md5+size`; names and tokens left byte for byte."""
    if "+" not in text or re.search(r"\+[A-Z]", text) is None:
        return text
    return _HINTS_RE.sub(r"\1", text)


def portable_data_hash(text: str) -> str:
    """md5 of the hint-stripped manifest *as submitted* (not re-normalized), plus its length in bytes."""
    data = strip_hints(text).encode("utf-8", "surrogateescape")
    return f"{hashlib.md5(data).hexdigest()}+{len(data)}"


def _block_size(locator: str) -> int:
    return int(locator[33:].split("+", 1)[0])


def render(dirs: dict[str, dict[str, list[Segment]]]) -> str:
    """Normalized manifest text for a directory tree.

    Streams in depth-first order, files sorted, each block listed once per stream in order of first use,
    adjacent segments merged; a directory with nothing in or below it becomes `0:0:\\056`.
    Zero-length segments are dropped, so an empty file is `0:0:name` and the empty block appears
    only in a stream with no data at all (Arvados' `normalize_stream`): the official SDK misreads
    the files after a zero-length block in the middle of a stream (see `check_interop`).
    """
    out: list[str] = []
    # depth first, as both SDKs write: "./a", "./a/b", then "./a-c" ("-" sorts before "/" in a string)
    names = sorted(dirs, key=lambda name: name.split("/"))
    for n, dirname in enumerate(names):
        files = dirs[dirname]
        if not files:
            has_child = n + 1 < len(names) and names[n + 1].startswith(dirname + "/")
            if not has_child and dirname != ".":  # the top is no empty directory: an empty collection is ""
                out.append(f"{escape(dirname)} {EMPTY_LOCATOR} 0:0:\\056\n")
            continue
        block_pos: dict[str, int] = {}
        locators: list[str] = []
        stream_size = 0
        tokens: list[str] = []
        fnames = sorted(files)
        # file names hold no "/", so one translate call escapes them all
        for fname, escaped in zip(fnames, escape("/".join(fnames)).split("/"), strict=True):
            segments = files[fname]
            if len(segments) == 1 and segments[0][2]:  # the common case, without the merging loop
                locator, offset, size = segments[0]
                base = block_pos.get(locator)
                if base is None:
                    base = block_pos[locator] = stream_size
                    locators.append(locator)
                    stream_size += _block_size(locator)
                tokens.append(f"{base + offset}:{size}:{escaped}")
                continue
            start = length = 0  # a file with no data is `0:0:name`, as Arvados writes it
            for locator, offset, size in segments:
                if not size:  # reads nothing; listing its block could put a zero-length locator mid-stream
                    continue
                base = block_pos.get(locator)
                if base is None:
                    base = block_pos[locator] = stream_size
                    locators.append(locator)
                    stream_size += _block_size(locator)
                pos = base + offset
                if length and start + length == pos:
                    length += size
                    continue
                if length:
                    tokens.append(f"{start}:{length}:{escaped}")
                start, length = pos, size
            tokens.append(f"{start}:{length}:{escaped}")
        out.append(" ".join((escape(dirname), *(locators or (EMPTY_LOCATOR,)), *tokens)) + "\n")
    return "".join(out)


def normalize(text: str) -> str:
    return parse(text).normalized()
