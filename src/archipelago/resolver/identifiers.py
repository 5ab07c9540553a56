"""Dataset identifiers: recognised and normalised with the field's own libraries, so that two spellings
of one identifier are one key (`https://doi.org/10.1/X` and `doi:10.1/x`).

- `idutils` recognises and normalises the scholarly schemes: DOI, ARK, handle, URN, PURL, URL.
  Beyond what it does, only the equivalences each scheme's own specification states: DOIs are
  case-insensitive (DOI Handbook 2.4), a URN's `urn:` and namespace ID are (RFC 8141), and so are a
  URL's scheme and host (RFC 3986 6.2.2.1).
- `bioregistry` (with `curies`) knows the compact identifiers' prefixes, their synonyms and their
  accession patterns (`ega.dataset:EGAD00001000001`, `EGA.DATASET:…` is the same). It takes half a
  second to import, so it is imported only when a compact identifier is met.
- `drs://host/id` (and `drs://prefix:accession`) and `keep:PDH[/path]` are ours to parse; a `keep:`
  identifier is always resolvable by its content.

A malformed identifier is an `Unprocessable` (422) naming the rule it breaks.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit, urlunsplit

from ..errors import Unprocessable
from ..ids import PDH_RE

SCHEMES = ("doi", "ark", "handle", "urn", "purl", "url", "compact", "drs", "keep")
MAX_LENGTH = 2048
UNSPACED = re.compile("[\x00-\x20\x7f]")  # identifiers contain no spaces or control characters
WHAT_IS_AN_IDENTIFIER = ("give a DOI (doi:10.1234/abc), an ARK (ark:/12345/x), a handle (hdl:1234/5), a URN, "
                         "a URL, a compact identifier (prefix:accession), drs://host/id or keep:PDH[/path]")


@dataclass(frozen=True)
class DatasetId:
    """One identifier in its normal form (`text`), the key the registries index."""

    scheme: str
    text: str

    def __str__(self) -> str:
        return self.text

    @property
    def content(self) -> str | None:
        """The PDH a `keep:` identifier names, else None."""
        return self.text[5:].split("/", 1)[0] if self.scheme == "keep" else None


def _bad(text: str, rule: str) -> Unprocessable:
    shown = text if len(text) <= 80 else text[:77] + "..."
    return Unprocessable(f"malformed identifier {shown!r}: {rule}")


def parse_identifier(text: object) -> DatasetId:
    """The identifier `text` names, in its normal form; Unprocessable naming the broken rule."""
    if not isinstance(text, str):
        raise Unprocessable(f"an identifier must be a string, not {type(text).__name__}")
    return _parse(text)


@lru_cache(maxsize=1 << 16)  # a resolver parses the same popular identifiers again and again
def _parse(text: str) -> DatasetId:
    text = text.strip()
    if not text:
        raise Unprocessable(f"an identifier must not be empty: {WHAT_IS_AN_IDENTIFIER}")
    if len(text) > MAX_LENGTH:
        raise _bad(text, f"longer than {MAX_LENGTH} characters")
    if UNSPACED.search(text):
        raise _bad(text, "identifiers contain no spaces or control characters")
    lowered = text.lower()
    if lowered.startswith("keep:"):
        return _keep(text)
    if lowered.startswith("drs:"):
        return _drs(text)
    return _scholarly(text, lowered) or _compact(text)


def _keep(text: str) -> DatasetId:
    pdh, _, path = text[5:].partition("/")
    if not PDH_RE.fullmatch(pdh):
        raise _bad(text, "keep: is followed by a portable data hash, <32 hex digits>+<size> (keep:PDH[/path])")
    if path:
        parts = path.split("/")
        if any(p in ("", ".", "..") for p in parts):
            raise _bad(text, "the path after keep:PDH/ has no empty, '.' or '..' components")
        return DatasetId("keep", f"keep:{pdh}/{posixpath.join(*parts)}")
    return DatasetId("keep", f"keep:{pdh}")


DRS_HOST = re.compile(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?")
DRS_COMPACT = re.compile(r"([a-z0-9._]+(/[a-z0-9._]+)?):([^/]+)")


def _drs(text: str) -> DatasetId:
    """GA4GH DRS URIs: hostname-based `drs://host[:port]/id`, or compact `drs://[provider/]prefix:accession`."""
    if not text[:6].lower() == "drs://":
        raise _bad(text, "a DRS URI is drs://<hostname>/<id> or drs://<prefix>:<accession>")
    rest = text[6:]
    host, slash, ident = rest.partition("/")
    if slash and DRS_HOST.fullmatch(host.lower()) and ident and "/" not in ident:
        return DatasetId("drs", f"drs://{host.lower()}/{ident}")
    compact = DRS_COMPACT.fullmatch(rest.lower() if ":" in rest else "")
    if (compact and not slash) or (compact and ":" in host):
        prefix, _, accession = rest.partition(":")
        return DatasetId("drs", f"drs://{prefix.lower()}:{accession}")
    raise _bad(text, "a DRS URI is drs://<hostname>/<id> (one path segment) or drs://<prefix>:<accession>")


def _scholarly(text: str, lowered: str) -> DatasetId | None:
    """DOI, ARK, handle, URN, PURL or URL, as idutils recognises them; None if it is none of them."""
    import idutils

    # idutils detects "doi" exactly when its is_doi matches (no filter removes it): asked first, a DOI
    # costs one regular expression instead of every scheme's validator (the resolver's hot path)
    if (lowered.startswith(("doi:", "10.")) or "doi.org/" in lowered) and idutils.is_doi(text):
        return DatasetId("doi", "doi:" + idutils.normalize_doi(text).lower())
    if lowered.startswith("doi:") or "://doi.org/" in lowered or "://dx.doi.org/" in lowered:
        raise _bad(text, "a DOI is 10.<registrant code>/<suffix>, e.g. doi:10.1234/abc")
    schemes = idutils.detect_identifier_schemes(text)
    if "ark" in schemes or lowered.startswith("ark:") or "/ark:" in lowered:
        return _ark(text)
    if "handle" in schemes and (lowered.startswith("hdl:") or "hdl.handle.net/" in lowered):
        return DatasetId("handle", "hdl:" + idutils.normalize_handle(text))
    if lowered.startswith("hdl:"):
        raise _bad(text, "a handle is hdl:<prefix>/<suffix>, e.g. hdl:20.1000/100")
    if lowered.startswith("urn:"):
        if not idutils.is_urn(text) or text.count(":") < 2 or not all(text.split(":", 2)[1:]):
            raise _bad(text, "a URN is urn:<namespace>:<specific string> (RFC 8141)")
        _, nid, nss = text.split(":", 2)
        return DatasetId("urn", f"urn:{nid.lower()}:{nss}")
    if lowered.startswith(("http://", "https://")):
        if not idutils.is_url(text):
            raise _bad(text, "a URL is http(s)://<host>/<path> with a valid host")
        return DatasetId("purl" if "purl" in schemes else "url", _normal_url(text))
    return None


def _ark(text: str) -> DatasetId:
    """`ark:/12345/x`, `ark:12345/x` (the 2023 form) and resolver URLs (`https://n2t.net/ark:/…`) are one ARK."""
    import idutils

    at = text.lower().find("ark:")
    bare = "ark:" + text[at + 4:] if at >= 0 else text
    name = bare[4:].lstrip("/")
    if not idutils.is_ark("ark:/" + name):
        raise _bad(text, "an ARK is ark:/<NAAN>/<name>, the NAAN five or more digits or letters (ark:/12345/x)")
    return DatasetId("ark", "ark:/" + name)


def _normal_url(text: str) -> str:
    parts = urlsplit(text)
    host = (parts.hostname or "").lower()
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    port = f":{parts.port}" if parts.port and parts.port != default else ""
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = (userinfo + "@" if userinfo else "") + host + port
    return urlunsplit((parts.scheme.lower(), netloc, parts.path or "/", parts.query, parts.fragment))


def _compact(text: str) -> DatasetId:
    """`prefix:accession`, the prefix known to the Bioregistry (its synonyms mapped to the preferred
    prefix) and the accession matching the pattern the registry gives for it."""
    import curies

    try:
        reference = curies.Reference.from_curie(text)
    except (ValueError, TypeError):
        raise _bad(text, f"not a recognised identifier: {WHAT_IS_AN_IDENTIFIER}") from None
    if not reference.prefix or not reference.identifier:
        raise _bad(text, f"a compact identifier is prefix:accession; {WHAT_IS_AN_IDENTIFIER}")
    import bioregistry

    prefix = bioregistry.normalize_prefix(reference.prefix)
    if prefix is None:
        raise _bad(text, f"{reference.prefix!r} is not a compact identifier prefix the Bioregistry knows "
                         f"({WHAT_IS_AN_IDENTIFIER})")
    accession = reference.identifier
    pattern = bioregistry.get_pattern(prefix)
    if pattern and not re.fullmatch(pattern, accession):
        banana = bioregistry.get_banana(prefix)  # a redundant prefix some registries repeat in the accession
        if not (banana and accession.startswith(banana) and re.fullmatch(pattern, accession[len(banana):])):
            raise _bad(text, f"a {prefix} accession must match {pattern} (the Bioregistry's pattern for {prefix})")
    return DatasetId("compact", f"{prefix}:{accession}")
