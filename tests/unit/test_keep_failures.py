"""The keep client's typed failures, and the retries and errors decided on them (never on the text
of a message): against scripted fake keep services (loopback HTTP servers in threads that answer
what each test scripts) and against real keepstores in process (a corrupt copy, the admin calls,
the pull worker)."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from archipelago.formats.locator import Locator
from archipelago.keep.client import KeepClient
from archipelago.keep.errors import (
    ERROR_KIND_HEADER,
    BlockNotFound,
    CorruptCopy,
    CutShort,
    KeepReadError,
    KeepServiceError,
    KeepWriteError,
    NoAnswer,
    NotHeld,
    ServiceRefused,
)
from archipelago.keep.reads import fetch
from archipelago.keep.services import KeepService, read_order
from archipelago.keepstore.app import Keepstore, ServerThread
from archipelago.keepstore.store import BlockStore
from tests.support.clusters import ROOT_TOKEN, USER_TOKEN, cluster_config
from tests.support.keep_http import stub_validator

DATA = b"the block's bytes"
MD5 = hashlib.md5(DATA).hexdigest()
LOCATOR = f"{MD5}+{len(DATA)}"


@dataclass
class Scripted:
    """One answer of a fake service: a status, a body, headers; `cut` sends fewer bytes than promised."""

    status: int = 200
    body: bytes = DATA
    headers: dict[str, str] = field(default_factory=dict)
    cut: bool = False


class FakeKeepService:
    """A loopback HTTP server answering each request with the next scripted answer (the last one
    repeats), counting requests: a keep service that misbehaves exactly as a test says."""

    def __init__(self, *script: Scripted):
        self.script, self.requests = list(script), 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                fake.requests += 1
                if self.headers.get("Content-Length"):
                    self.rfile.read(int(self.headers["Content-Length"]))
                answer = fake.script.pop(0) if len(fake.script) > 1 else fake.script[0]
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(answer.body[: len(answer.body) // 2] if answer.cut else answer.body)
                if answer.cut:
                    self.close_connection = True

            do_GET = do_PUT = do_HEAD = do_POST = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fakes() -> Iterator[list[FakeKeepService]]:
    made: list[FakeKeepService] = []
    yield made
    for fake in made:
        fake.close()


def ordered(fakes: list[FakeKeepService], *scripts: list[Scripted], **kwargs: object) -> KeepClient:
    """A client of one fake per script, which it asks in the order of the scripts."""
    made = [FakeKeepService(*script) for script in scripts]
    fakes.extend(made)
    keep = KeepClient([], USER_TOKEN, cache=None, backoff=0.01, **kwargs)  # type: ignore[arg-type]
    uuids = [f"zzzzz-bi6l4-{n:015d}" for n in range(len(made))]
    rank = [KeepService(u, "") for u in uuids]
    by_weight = [s.uuid for s in read_order(Locator.parse(LOCATOR), rank)]
    keep.services = [KeepService(uuid, fake.url) for uuid, fake in zip(by_weight, made, strict=True)]
    return keep


def failures_of(error: KeepReadError | KeepWriteError) -> list[type]:
    return [type(f) for f in error.failures]


def test_bytes_that_do_not_hash_to_the_block_are_a_corrupt_copy_not_asked_again(fakes):
    keep = ordered(fakes, [Scripted(body=b"the block's bytez")])
    with pytest.raises(KeepReadError) as caught:
        keep.get(LOCATOR)
    assert failures_of(caught.value) == [CorruptCopy] and caught.value.corrupt == [fakes[0].url]
    assert fakes[0].requests == 1  # a bad copy stays bad: no retry
    assert "no other service holds a copy" in str(caught.value)


def test_a_corrupt_copy_is_routed_around(fakes):
    keep = ordered(fakes, [Scripted(body=b"the block's bytez")], [Scripted()])
    assert keep.get(LOCATOR) == DATA


def test_a_service_that_says_its_copy_is_corrupt_is_believed_by_the_header_not_the_words(fakes):
    said = json.dumps({"errors": ["anything at all"]}).encode()
    keep = ordered(fakes, [Scripted(502, said, {ERROR_KIND_HEADER: "corrupt"})])
    with pytest.raises(KeepReadError) as caught:
        keep.get(LOCATOR)
    assert failures_of(caught.value) == [CorruptCopy] and fakes[0].requests == 1


def test_the_words_checksum_mismatch_alone_make_nothing_corrupt(fakes):
    """A 502 of a relay that could not reach its cluster is retried and reported as what it is."""
    words = json.dumps({"errors": ["checksum mismatch in stored data; transfer interrupted"]}).encode()
    keep = ordered(fakes, [Scripted(502, words)], retries=2)
    with pytest.raises(KeepReadError) as caught:
        keep.get(LOCATOR)
    assert failures_of(caught.value) == [ServiceRefused] * 3 and caught.value.corrupt == []
    assert "is corrupt" not in str(caught.value)


def test_a_busy_service_is_asked_again_after_a_backoff(fakes):
    keep = ordered(fakes, [Scripted(503, b"busy"), Scripted()])
    assert keep.get(LOCATOR) == DATA and fakes[0].requests == 2


def test_a_transfer_cut_short_and_then_withdrawn_is_a_corrupt_copy(fakes):
    """keepstore cuts off a block it finds corrupt mid-transfer and withdraws the copy (404 after)."""
    keep = ordered(fakes, [Scripted(cut=True), Scripted(404, b"")])
    with pytest.raises(KeepReadError) as caught:
        keep.get(LOCATOR)
    assert failures_of(caught.value) == [CutShort, NotHeld] and caught.value.corrupt == [fakes[0].url]


def test_a_transfer_cut_short_once_is_retried(fakes):
    keep = ordered(fakes, [Scripted(cut=True), Scripted()])
    assert keep.get(LOCATOR) == DATA and fakes[0].requests == 2


def test_not_held_anywhere_is_not_found(fakes):
    keep = ordered(fakes, [Scripted(404, b"")], [Scripted(410, b"")])
    with pytest.raises(BlockNotFound):
        keep.get(LOCATOR)
    assert [f.requests for f in fakes] == [1, 1]


def test_a_service_nobody_answers_at_is_unreachable_and_the_next_one_serves(fakes):
    keep = ordered(fakes, [Scripted()])
    dead = KeepService("zzzzz-bi6l4-999999999999999", "http://127.0.0.1:9")  # nothing listens there
    keep.services = [dead, *keep.services]
    keep.retries = 0
    assert fetch(keep, Locator.parse(LOCATOR), None, order=keep.services) == DATA
    with pytest.raises(KeepReadError) as caught:
        fetch(keep, Locator.parse(LOCATOR), None, order=[dead])
    assert failures_of(caught.value) == [NoAnswer] and caught.value.failures[0].retryable


def test_a_write_goes_on_past_a_refusal_and_says_what_each_service_did(fakes):
    signed = f"{LOCATOR}+Asig@0".encode()
    keep = ordered(fakes, [Scripted(507, b"full")], [Scripted(200, signed, {"X-Keep-Replicas-Stored": "1"})])
    assert keep.put(DATA) == signed.decode()
    keep = ordered(fakes, [Scripted(403, b"no")], retries=1)
    with pytest.raises(KeepWriteError) as caught:
        keep.put(DATA)
    assert failures_of(caught.value) == [ServiceRefused] and caught.value.failures[0].status == 403  # type: ignore[attr-defined]


# ------------------------------------------------------------------ real keepstores in process
@pytest.fixture
def keepstores(tmp_path: Path) -> Iterator[list[tuple[Keepstore, str]]]:
    running = []
    threads = []
    for n in range(2):
        config = cluster_config([{"driver": "directory", "root": str(tmp_path / f"vol{n}")}])
        keepstore = Keepstore(config, BlockStore.from_config(config), authenticate=stub_validator(USER_TOKEN))
        thread = ServerThread(keepstore.app())
        threads.append(thread)
        running.append((keepstore, thread.__enter__().url))
    yield running
    for thread in threads:
        thread.__exit__(None, None, None)


def test_a_copy_a_real_keepstore_finds_corrupt_is_typed_corrupt(keepstores, tmp_path):
    (_, url), _ = keepstores
    keep = KeepClient.from_urls([url], USER_TOKEN, cache=None, backoff=0.01)
    locator = keep.put(DATA)
    [path] = (tmp_path / "vol0").rglob(MD5)
    path.write_bytes(b"the block's bytez")  # bit rot
    with pytest.raises(KeepReadError) as caught:
        keep.get(locator)
    assert failures_of(caught.value) == [CorruptCopy] and caught.value.corrupt == [url]


def test_admin_calls_index_trash_and_pull_through_the_keep_client(keepstores):
    (_, first_url), (_, second_url) = keepstores
    user = KeepClient.from_urls([first_url], USER_TOKEN, cache=None)
    user.put(DATA)
    root = KeepClient.from_urls([first_url, second_url], ROOT_TOKEN, cache=None, retries=0)
    here, there = root.services
    [entry] = root.index(here, MD5[:3])
    assert entry.locator == LOCATOR and root.index(there) == []
    with pytest.raises(KeepServiceError) as caught:  # admin endpoints want the root token
        user.index(user.services[0])
    assert caught.value.status == 403 and isinstance(caught.value.failure, ServiceRefused)

    assert root.pull(there, [{"locator": LOCATOR, "servers": [first_url]}]) == 1
    deadline = time.monotonic() + 10
    while not root.index(there) and time.monotonic() < deadline:  # the pull worker copies it, verified
        time.sleep(0.05)
    assert [e.locator for e in root.index(there)] == [LOCATOR]
    assert root.trash(here, [entry]) == 0  # a copy younger than the signing TTL is never trashed
