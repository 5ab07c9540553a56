"""The headers a collection's file is served with by the file-download endpoint, on the cluster's own
origin (the API's, where the web UI keeps its session): a browser must never run what a tenant
uploaded there. Only passive types (plain text, CSV, images that are not SVG, audio, video, JSON,
archives) keep the type their name suggests; anything else — HTML, SVG, XHTML, XML, JavaScript, a
name we do not know — is `application/octet-stream` and an attachment. Every file answer is
`nosniff` (no guessing a passive type into an active one) and sandboxed by its CSP (no script, no
same origin, even if a browser rendered it)."""

from __future__ import annotations

import mimetypes
from urllib.parse import quote

OCTET_STREAM = "application/octet-stream"
SANDBOX = "default-src 'none'; sandbox"
PASSIVE = frozenset({
    "text/plain", "text/csv", "text/tab-separated-values", "text/markdown",
    "image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp", "image/tiff", "image/avif",
    "application/json", "application/gzip", "application/zip", "application/x-tar", "application/x-bzip2",
    "application/x-xz", "application/zstd", OCTET_STREAM,
})


def media_type(name: str) -> str:
    """The Content-Type a file of this name is served with: its guessed type if passive, else bytes."""
    guessed = mimetypes.guess_type(name)[0]
    if guessed is None:
        return OCTET_STREAM
    if guessed in PASSIVE or guessed.split("/")[0] in ("audio", "video"):
        return guessed
    return OCTET_STREAM


def attachment(name: str) -> str:
    """A Content-Disposition for a file of any name (RFC 6266: an ASCII fallback and the UTF-8 name)."""
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\;' else "_" for c in name) or "file"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def file_headers(name: str) -> dict[str, str]:
    """Content-Type, and for anything not passive an attachment; nosniff and a sandboxing CSP always."""
    media = media_type(name)
    headers = {"Content-Type": media, "X-Content-Type-Options": "nosniff", "Content-Security-Policy": SANDBOX}
    if media == OCTET_STREAM:
        headers["Content-Disposition"] = attachment(name)
    return headers
