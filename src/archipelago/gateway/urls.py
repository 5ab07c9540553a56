"""Names below a web server's base URL, judged as the web server will read them, so that what an HTTP
gateway checks is what it fetches. A web server percent-decodes a path and then resolves its dot
segments: checking the raw name let `%2e%2e/private` and `..%2fprivate` out of the base URL. So a
name is decoded first and refused if any segment is `.` or `..` (or would be after a second
decoding), or it holds a backslash, a control character, `?` or `#`; the URL sent is rebuilt from
the checked segments, re-encoded. A redirect is followed only to a URL under the base, judged the
same way after resolving it as the server would."""

from __future__ import annotations

from urllib.parse import quote, unquote_to_bytes, urljoin, urlsplit

from ..errors import BadGateway, BadRequest

DEFAULT_PORTS = {"http": 80, "https": 443}
# kept literal when re-encoding a segment (RFC 3986 pchar); ";" is encoded: some servers cut a segment
# at ";" (path parameters), which made `..;/` a way up
SEGMENT_SAFE = "!$&'()*+,=:@"


def _decoded(text: str, what: str) -> str:
    """Percent-decoding as a web server does, to UTF-8; undecodable bytes are refused, not replaced
    (a replaced character would make the name checked differ from the name fetched)."""
    try:
        return unquote_to_bytes(text).decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest(f"{what} is not UTF-8 once percent-decoded") from None


def _refuse_characters(decoded: str, what: str) -> None:
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in decoded):
        raise BadRequest(f"{what} holds a control character (NUL, newline, ...)")
    for bad, why in (("\\", "a backslash (a path separator to some servers)"), ("?", "'?' (a query)"),
                     ("#", "'#' (a fragment)")):
        if bad in decoded:
            raise BadRequest(f"{what} holds {why}")


def _dot(segment: str) -> bool:
    return segment.split(";", 1)[0] in (".", "..")  # `..;x` is `..` to servers that take ";" as a parameter


def name_segments(name: str) -> list[str]:
    """The segments of a name below the base URL, decoded; BadRequest if it could lead anywhere
    else. Empty segments are dropped (servers merge slashes)."""
    what = f"{name!r}"
    decoded = _decoded(name, what)
    _refuse_characters(decoded, what)
    segments = [s for s in decoded.split("/") if s]
    twice = _decoded(decoded, what)  # a server that decodes twice must not find a way up either
    if any(_dot(s) for s in segments) or any(_dot(s) for s in twice.replace("\\", "/").split("/")):
        raise BadRequest(f"{what} is outside this gateway's base URL (a '.' or '..' segment, once decoded)")
    return segments


def resolved_segments(path: str) -> list[str]:
    """A URL path as a web server resolves it: decoded, then dot segments removed (`..` at the top
    stays at the top)."""
    decoded = _decoded(path, f"the path {path!r}")
    _refuse_characters(decoded, f"the path {path!r}")
    out: list[str] = []
    for segment in decoded.split("/"):
        head = segment.split(";", 1)[0]
        if head in ("", "."):
            continue
        if head == "..":
            if out:
                out.pop()
            continue
        out.append(segment)
    return out


def _origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or DEFAULT_PORTS.get(scheme, 0)
    except ValueError:
        raise BadGateway(f"{url} has an invalid port") from None
    return scheme, (parts.hostname or "").lower(), port


def _encoded(segments: list[str]) -> str:
    return "/".join(quote(segment, safe=SEGMENT_SAFE) for segment in segments)


class BaseUrl:
    """A gateway's base URL: the URLs of names below it, and which redirects stay below it."""

    def __init__(self, url: str):
        self.text = url.rstrip("/")
        self.origin = _origin(self.text)
        self.segments = resolved_segments(urlsplit(self.text).path)

    def url_for(self, name: str) -> str:
        """The URL fetched for `name`: rebuilt from its checked segments."""
        return f"{self.text}/{_encoded(name_segments(name))}"

    def follow(self, current: str, location: str) -> str:
        """The URL a redirect from `current` to `location` leads to, rebuilt from its resolved
        segments; BadGateway if that is not under the base URL (what the server would read there
        is not this gateway's to serve)."""
        target = urljoin(current, location)
        parts = urlsplit(target)
        refused = (f"{current} redirects to {location}: not followed (a gateway follows redirects only to a path "
                   f"under its base URL {self.text}, without a query)")
        try:
            segments = resolved_segments(parts.path)
        except BadRequest:
            raise BadGateway(refused) from None
        if _origin(target) != self.origin or segments[:len(self.segments)] != self.segments or parts.query:
            raise BadGateway(refused)
        return f"{self.text}/{_encoded(segments[len(self.segments):])}"
