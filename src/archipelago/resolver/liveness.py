"""Whether a site is up, from what the resolver last heard: a push from the site, or its own poll.

live    a push or a poll (whichever the site's mode counts) succeeded within `live_window`;
stale   the last success is older than that, but within `stale_window`, and nothing says it is down;
down    the last success is older than `stale_window`, or a poll failed after it (the site was
        asked and did not answer: a dead site is known as such within one poll interval);
dropped the last success is older than `drop_after` (or never was): left out of answers.

Pure: the resolver keeps the timestamps; this decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Mode = Literal["push", "poll", "both"]
Status = Literal["live", "stale", "down", "dropped"]
RANK = {"live": 0, "stale": 1, "down": 2, "dropped": 3}


@dataclass(frozen=True)
class Windows:
    mode: Mode = "both"
    live_window: float = 30.0
    stale_window: float = 120.0
    drop_after: float = 86400.0
    poll_interval: float = 10.0

    @property
    def pushes(self) -> bool:
        return self.mode in ("push", "both")

    @property
    def polled(self) -> bool:
        return self.mode in ("poll", "both")


@dataclass
class Heard:
    """What the resolver has heard of one site (epoch seconds; None: never)."""

    push_ok: float | None = None
    poll_ok: float | None = None
    poll_failed: float | None = None
    poll_error: str | None = None


@dataclass(frozen=True)
class Verdict:
    status: Status
    last_seen: float | None
    by: Literal["push", "poll"] | None
    reason: str

    @property
    def rank(self) -> int:
        return RANK[self.status]


def judge(windows: Windows, heard: Heard, now: float) -> Verdict:
    candidates: list[tuple[float | None, Literal["push", "poll"], bool]] = [
        (heard.push_ok, "push", windows.pushes), (heard.poll_ok, "poll", windows.polled)]
    seen = [(t, by) for t, by, counts in candidates if counts and t is not None]
    if not seen:
        failed = windows.polled and heard.poll_failed is not None
        return Verdict("down" if failed else "dropped", None, None,
                       f"never reached: {heard.poll_error}" if failed else "never heard from")
    last, by = max(seen, key=lambda s: s[0])
    age = now - last
    if age > windows.drop_after:
        return Verdict("dropped", last, by, f"nothing for {age:.0f} s (dropped after {windows.drop_after:.0f} s)")
    if windows.polled and heard.poll_failed is not None and heard.poll_failed > last:
        return Verdict("down", last, by, f"a poll failed {now - heard.poll_failed:.0f} s ago: {heard.poll_error}")
    if age <= windows.live_window:
        return Verdict("live", last, by, f"{by} {age:.0f} s ago")
    if age <= windows.stale_window:
        return Verdict("stale", last, by, f"nothing for {age:.0f} s (live window {windows.live_window:.0f} s)")
    return Verdict("down", last, by, f"nothing for {age:.0f} s (stale window {windows.stale_window:.0f} s)")
