"""The resolver's HTTP/1.1 server (resolver/http.py) on a real loopback socket, driven by hand: answers
in request order on one connection (keep-alive, pipelining, a handler that must wait), bodies read
whole (chunked too), a body over the limit or a request the app refuses on its headers answered
without reading the body, malformed requests a 400, `Connection: close` honoured."""

from __future__ import annotations

import asyncio
import socket

import orjson
import pytest

from archipelago.resolver.http import HttpServer, Reply, Request
from archipelago.run.ports import free_port


class EchoApp:
    """Answers with what it was asked; `/slow` waits for the event loop first; `/refused` is
    refused on its headers."""

    def __init__(self) -> None:
        self.bodies_read: list[str] = []

    def __call__(self, request: Request) -> Reply | asyncio.Future[Reply]:
        self.bodies_read.append(request.path)
        answer = Reply(200, orjson.dumps({"method": request.method, "path": request.path, "query": request.query,
                                          "body": request.body.decode(), "site": request.headers.get("x-site")}))
        if request.path == "/slow":
            return self._later(answer)
        return answer

    @staticmethod
    async def _later(answer: Reply) -> Reply:
        await asyncio.sleep(0.05)
        return answer

    def admit(self, request: Request) -> Reply | None:
        return Reply(401, b'{"errors":["refused"]}') if request.path == "/refused" else None


def exchange(port: int, raw: bytes, answers: int) -> list[tuple[int, dict[str, str], bytes]]:
    """Send `raw`, read `answers` responses (status, headers, body), or fewer if the server closes."""
    out = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(raw)
        buffer = b""
        while len(out) < answers:
            while b"\r\n\r\n" not in buffer:
                chunk = conn.recv(65536)
                if not chunk:
                    return out
                buffer += chunk
            head, _, buffer = buffer.partition(b"\r\n\r\n")
            lines = head.decode().split("\r\n")
            headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
            length = int(headers["content-length"])
            while len(buffer) < length:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                buffer += chunk
            out.append((int(lines[0].split()[1]), headers, buffer[:length]))
            buffer = buffer[length:]
    return out


@pytest.fixture
def served():
    """The server on its own event loop in a thread: (port, app)."""
    import threading

    app, port = EchoApp(), free_port()
    loop = asyncio.new_event_loop()
    server = HttpServer(app, max_body=1000)
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.start("127.0.0.1", port))
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(10)
    yield port, app
    asyncio.run_coroutine_threadsafe(server.close(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def get(path: str, extra: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode()


def test_pipelined_requests_are_answered_in_order_even_when_one_must_wait(served):
    port, _ = served
    post = b"POST /p HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
    raw = get("/a?id=doi:10.1/x&n=1") + get("/slow") + get("/b%2Bc") + post
    answers = exchange(port, raw, 4)
    assert [a[0] for a in answers] == [200, 200, 200, 200]
    bodies = [orjson.loads(a[2]) for a in answers]
    assert [b["path"] for b in bodies] == ["/a", "/slow", "/b+c", "/p"]
    assert bodies[0]["query"] == {"id": "doi:10.1/x", "n": "1"}
    assert bodies[3] == {"method": "POST", "path": "/p", "query": {}, "body": "hello", "site": None}
    assert all(a[1].get("connection") != "close" for a in answers)


def test_headers_are_read_whatever_their_case_and_a_chunked_body_whole(served):
    port, _ = served
    raw = (b"POST /c HTTP/1.1\r\nX-SITE: z1111\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n")
    [(status, _, body)] = exchange(port, raw, 1)
    assert status == 200 and orjson.loads(body)["body"] == "abcdefg" and orjson.loads(body)["site"] == "z1111"


def test_connection_close_is_honoured(served):
    port, _ = served
    answers = exchange(port, get("/a", "Connection: close\r\n") + get("/never"), 2)
    assert len(answers) == 1 and answers[0][1]["connection"] == "close"


def test_a_body_over_the_limit_is_refused_before_it_is_read(served):
    port, app = served
    answers = exchange(port, b"POST /big HTTP/1.1\r\nContent-Length: 1001\r\n\r\n", 2)
    assert [a[0] for a in answers] == [413] and "/big" not in app.bodies_read
    chunked = b"POST /big2 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + b"200\r\n" + b"x" * 512 + b"\r\n"
    answers = exchange(port, chunked * 1 + b"200\r\n" + b"x" * 512 + b"\r\n0\r\n\r\n", 2)
    assert [a[0] for a in answers] == [413] and "/big2" not in app.bodies_read


def test_a_request_the_app_refuses_on_its_headers_is_answered_without_its_body(served):
    port, app = served
    answers = exchange(port, b"POST /refused HTTP/1.1\r\nContent-Length: 1000\r\n\r\n", 2)  # no body sent
    assert [(a[0], a[1]["connection"]) for a in answers] == [(401, "close")] and "/refused" not in app.bodies_read


def test_a_malformed_request_is_a_400_and_the_connection_closes(served):
    port, _ = served
    answers = exchange(port, b"GARBAGE\r\n\r\n" + get("/a"), 2)
    assert [a[0] for a in answers] == [400]
    answers = exchange(port, b"POST /x HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 2)
    assert [a[0] for a in answers] == [400]


def test_head_gets_the_headers_alone(served):
    port, _ = served
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(b"HEAD /a HTTP/1.1\r\nConnection: close\r\n\r\n")
        received = b""
        while chunk := conn.recv(65536):
            received += chunk
    head, _, rest = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"Content-Length: " in head and rest == b""


def test_a_client_that_expects_100_continue_is_told_to_send_its_body(served):
    port, _ = served
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(b"POST /e HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n")
        assert conn.recv(64) == b"HTTP/1.1 100 Continue\r\n\r\n"
        conn.sendall(b"ok")
        received = b""
        while chunk := conn.recv(65536):
            received += chunk
    assert received.startswith(b"HTTP/1.1 200") and orjson.loads(received.partition(b"\r\n\r\n")[2])["body"] == "ok"



def test_a_request_refused_on_its_headers_while_an_earlier_one_waits_is_answered_in_turn_unread(served):
    port, app = served
    raw = get("/slow") + b"POST /refused HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789" + get("/after")
    answers = exchange(port, raw, 3)
    assert [a[0] for a in answers] == [200, 401] and answers[1][1]["connection"] == "close"
    assert "/refused" not in app.bodies_read and "/after" not in app.bodies_read


def test_a_request_whose_headers_never_end_is_refused(served):
    port, _ = served
    answers = exchange(port, b"GET /a HTTP/1.1\r\nX-Long: " + b"x" * (200 << 10), 1)
    assert [a[0] for a in answers] == [431]
