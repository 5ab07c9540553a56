"""Salted tokens: what a cluster sends to another cluster in place of a user's real token.

salt(v2/<uuid>/<secret>, target) = v2/<uuid>/<hex HMAC-SHA1(key=secret, msg=target cluster id)>.
The target can check it with the issuing cluster, but cannot use it anywhere else, and at home it
is good only for identity lookups (`?remote=<target>`).
"""

from __future__ import annotations

import hashlib
import hmac
import re

_OBSOLETE_RE = re.compile(r"[0-9a-z]{41,}")


class SaltError(ValueError):
    pass


class ObsoleteToken(SaltError):
    """A v1 token: it has no UUID to name its issuer, so it cannot be salted."""


class AlreadySalted(SaltError):
    """A 40-character secret is a salted one: it cannot be salted again for a third cluster."""


def salt_secret(secret: str, cluster_id: str) -> str:
    return hmac.new(secret.encode(), cluster_id.encode(), hashlib.sha1).hexdigest()


def salt_token(token: str, cluster_id: str) -> str:
    parts = token.split("/")
    if len(parts) < 3 or parts[0] != "v2":
        if _OBSOLETE_RE.fullmatch(token):
            raise ObsoleteToken("v1 tokens cannot be used across clusters")
        raise SaltError("not a v2 token")
    uuid, secret = parts[1], parts[2]
    if uuid.startswith(cluster_id):
        return token  # the target issued it: send it unchanged (any 4th part dropped below)
    if len(secret) == 40:
        raise AlreadySalted("this token was already salted for another cluster")
    return f"v2/{uuid}/{salt_secret(secret, cluster_id)}"
