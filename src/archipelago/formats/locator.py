"""Block locators: `md5hex+size[+hints]`, byte-compatible with Arvados.

Hints we interpret (everything else is preserved verbatim and ignored):
  +A<sig40>@<exp8>              permission signature issued by this cluster
  +R<cluster>-<sig40>@<exp8>    signature issued by a remote cluster
  +K@<cluster> / +K@<svc uuid>  read this block from the named cluster / keep service first
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import BadRequest

BLOCK_SIZE = 1 << 26  # 64 MiB, the largest block Keep stores
EMPTY_HASH = "d41d8cd98f00b204e9800998ecf8427e"
EMPTY_LOCATOR = EMPTY_HASH + "+0"

_HASH_RE = re.compile(r"[0-9a-f]{32}")
_SIZE_RE = re.compile(r"[0-9]+")
_HINT_RE = re.compile(r"[A-Z][A-Za-z0-9@_-]*")
_SIGNATURE_RE = re.compile(r"A([0-9a-f]{40})@([0-9a-f]{8})")
_REMOTE_SIGNATURE_RE = re.compile(r"R([a-z0-9]{5})-([0-9a-f]{40})@([0-9a-f]{8})")
_SERVICE_HINT_RE = re.compile(r"K@([a-z0-9]{5}(?:-bi6l4-[a-z0-9]{15})?)")
# a locator as a token of a manifest line (between spaces, or a space and the line's end)
LOCATOR_TOKEN_RE = re.compile(r"(?<= )[0-9a-f]{32}\+[0-9]+(?:\+[A-Z][A-Za-z0-9@_-]*)*(?=[ \n])")


class LocatorError(BadRequest, ValueError):
    """A string that is not a valid block locator; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class Signature:
    signature: str
    expiry: int  # unix seconds
    cluster_id: str | None = None  # set for +R (remote) signatures


@dataclass(frozen=True, slots=True)
class Locator:
    md5: str
    size: int | None
    hints: tuple[str, ...] = ()  # without the leading "+", in their original order

    @classmethod
    def parse(cls, text: str, *, require_size: bool = True) -> Locator:
        parts = text.split("+")
        digest = parts[0]
        if not _HASH_RE.fullmatch(digest):
            raise LocatorError(f"invalid locator {text!r}: the hash must be 32 lowercase hex digits")
        size: int | None = None
        rest = parts[1:]
        if rest and _SIZE_RE.fullmatch(rest[0]):
            size = int(rest[0])
            rest = rest[1:]
        elif require_size:
            raise LocatorError(f"invalid locator {text!r}: the size must follow the hash (md5hex+size)")
        for hint in rest:
            if not hint:
                raise LocatorError(f"invalid locator {text!r}: empty hint ('++' or a trailing '+')")
            if hint[0].isdigit():
                raise LocatorError(f"invalid locator {text!r}: the size must come first, right after the hash")
            if not _HINT_RE.fullmatch(hint):
                raise LocatorError(
                    f"invalid locator {text!r}: hint {hint!r} must be an uppercase letter then [A-Za-z0-9@_-]"
                )
        if size is not None and size > BLOCK_SIZE:
            raise LocatorError(f"invalid locator {text!r}: size {size} exceeds the 64 MiB block limit")
        return cls(digest, size, tuple(rest))

    def __str__(self) -> str:
        head = self.md5 if self.size is None else f"{self.md5}+{self.size}"
        return "+".join((head, *self.hints)) if self.hints else head

    @property
    def stripped(self) -> str:
        """`md5+size` with every hint removed: the form a PDH is computed over."""
        return self.md5 if self.size is None else f"{self.md5}+{self.size}"

    def hint(self, letter: str) -> str | None:
        return next((h for h in self.hints if h[0] == letter), None)

    @property
    def signature(self) -> Signature | None:
        """The local `+A` signature, if present and well-formed."""
        for hint in self.hints:
            if match := _SIGNATURE_RE.fullmatch(hint):
                return Signature(match[1], int(match[2], 16))
        return None

    @property
    def remote_signature(self) -> Signature | None:
        for hint in self.hints:
            if match := _REMOTE_SIGNATURE_RE.fullmatch(hint):
                return Signature(match[2], int(match[3], 16), cluster_id=match[1])
        return None

    def with_service(self, uuid: str | None) -> Locator:
        """The same locator (signatures kept) naming `uuid` as the service that holds it, or no
        service at all (`None`: the cluster's own keepstores)."""
        others = tuple(h for h in self.hints if not _SERVICE_HINT_RE.fullmatch(h))
        return Locator(self.md5, self.size, (f"K@{uuid}", *others) if uuid else others)

    @property
    def service_hints(self) -> list[str]:
        """Targets of `+K@…` hints: cluster IDs or keep service UUIDs, in order."""
        return [m[1] for h in self.hints if (m := _SERVICE_HINT_RE.fullmatch(h))]
