"""Authenticity signals and score 0-100 with reasons (pure, deterministic).

Formulas and thresholds: docs/analytics.md ("Authenticity"). All comparisons are against the
account's own history (robust z-scores: median and MAD, so one outlier does not hide itself) or
against peers of the same size band that the caller passes.
"""

from __future__ import annotations

import itertools
import re
import statistics
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from domain.analytics.engagement import FollowerSnapshot, PostStats, post_engagement_rate

MAD_TO_SIGMA = 1.4826  # MAD * this estimates the standard deviation of normal data
JUMP_Z = 6.0  # robust z of a day's gain above which it is a suspicious jump...
JUMP_MIN_RELATIVE = 0.01  # ...if it also adds at least 1 % of the previous followers
JUMP_MIN_HISTORY = 7  # daily gains needed before any jump is judged
OWN_BASELINE_RATIO = 3.0  # recent median engagement over baseline median beyond x3 or /3
OWN_RECENT_POSTS = 5
OWN_MIN_BASELINE_POSTS = 10
PEER_Z = 3.5  # robust z of the account's engagement rate against its size band's peers
PEER_MIN = 5
DUPLICATION_FLAG = 0.30  # share of comments that repeat an earlier one
DUPLICATION_MIN_COMMENTS = 10

PENALTY_PER_JUMP = 25.0
PENALTY_JUMPS_MAX = 50.0
PENALTY_OWN_BASELINE = 15.0
PENALTY_PEERS = 15.0
PENALTY_DUPLICATION_MAX = 30.0  # penalty = min(max, 60 * duplication ratio) when flagged

# (name, lower bound of followers) — an account is in the last band whose bound it reaches.
SIZE_BANDS: tuple[tuple[str, int], ...] = (
    ("nano", 0),
    ("micro", 10_000),
    ("mid", 100_000),
    ("macro", 500_000),
    ("mega", 1_000_000),
)


def size_band(followers: int) -> str:
    """nano < 10k <= micro < 100k <= mid < 500k <= macro < 1M <= mega."""
    band = SIZE_BANDS[0][0]
    for name, lower in SIZE_BANDS:
        if followers >= lower:
            band = name
    return band


@dataclass(frozen=True)
class FollowerJump:
    at: datetime  # snapshot at the end of the jump
    previous: int
    followers: int
    gain_per_day: float
    z: float  # robust z-score of the daily gain against the account's daily gains


@dataclass(frozen=True)
class Reason:
    code: (
        str  # follower_jump | engagement_off_baseline | engagement_off_peers | comment_duplication
    )
    penalty: float
    detail: str


@dataclass(frozen=True)
class AuthenticityInputs:
    snapshots: Sequence[FollowerSnapshot] = field(default_factory=tuple)  # daily, any order
    posts: Sequence[PostStats] = field(default_factory=tuple)  # oldest first
    followers: int = 0
    peer_engagement_rates: Sequence[float] = field(default_factory=tuple)  # same size band
    comments: Sequence[str] = field(default_factory=tuple)


@dataclass(frozen=True)
class AuthenticityResult:
    score: float  # 100 - sum of penalties, at least 0
    reasons: list[Reason]  # what lowered the score, largest penalty first
    jumps: list[FollowerJump]
    own_baseline_ratio: float | None  # recent median engagement rate / baseline median
    peer_z: float | None  # robust z of the engagement rate among peers
    duplication_ratio: float | None
    size_band: str
    inputs: AuthenticityInputs


def robust_z(value: float, sample: Sequence[float], min_scale: float = 0.0) -> float:
    """(value - median) / max(1.4826 * MAD, min_scale); 0 when both are 0 and value == median."""
    median = statistics.median(sample)
    mad = statistics.median(abs(x - median) for x in sample)
    scale = max(MAD_TO_SIGMA * mad, min_scale)
    if scale == 0:
        return 0.0 if value == median else float("inf") if value > median else float("-inf")
    return (value - median) / scale


def follower_jumps(snapshots: Sequence[FollowerSnapshot]) -> list[FollowerJump]:
    """Day-over-day gains far above the account's own gains (robust z >= JUMP_Z and >= 1 %).

    Gains are per day (a gap of several days is divided by its length). The scale has a floor of
    10 % of the median gain's size, 0.1 % of the median followers and 1 follower, so that a very
    regular series does not flag ordinary noise.
    """
    ordered = sorted(snapshots, key=lambda s: s.at)
    steps: list[tuple[FollowerSnapshot, FollowerSnapshot, float]] = []
    for prev, cur in itertools.pairwise(ordered):
        days = (cur.at - prev.at).total_seconds() / 86_400
        if days > 0:
            steps.append((prev, cur, (cur.followers - prev.followers) / days))
    if len(steps) < JUMP_MIN_HISTORY:
        return []
    gains = [g for _, _, g in steps]
    median_followers = statistics.median(s.followers for s in ordered)
    floor = max(0.1 * abs(statistics.median(gains)), 0.001 * median_followers, 1.0)
    jumps = []
    for prev, cur, gain in steps:
        z = robust_z(gain, gains, floor)
        if z >= JUMP_Z and gain >= JUMP_MIN_RELATIVE * max(prev.followers, 1):
            jumps.append(FollowerJump(cur.at, prev.followers, cur.followers, gain, z))
    return jumps


def own_baseline_ratio(posts: Sequence[PostStats], followers: int) -> float | None:
    """Median engagement rate of the last 5 posts over that of the posts before them.

    None with fewer than 10 earlier posts, no followers, or a zero baseline.
    """
    if followers <= 0 or len(posts) < OWN_RECENT_POSTS + OWN_MIN_BASELINE_POSTS:
        return None
    rates = [post_engagement_rate(p, followers) or 0.0 for p in posts]
    baseline = statistics.median(rates[:-OWN_RECENT_POSTS])
    if baseline <= 0:
        return None
    return statistics.median(rates[-OWN_RECENT_POSTS:]) / baseline


def duplication_ratio(comments: Sequence[str]) -> float | None:
    """Share of comments whose normalised text repeats an earlier comment; None if none.

    Normalised: NFKC, lower case, URLs and @mentions removed, whitespace collapsed. Empty
    comments after normalisation are left out.
    """
    normalised = [_normalise_comment(c) for c in comments]
    kept = [c for c in normalised if c]
    if not kept:
        return None
    return (len(kept) - len(Counter(kept))) / len(kept)


_COMMENT_NOISE = re.compile(r"https?://\S+|www\.\S+|[@\uff20]\w+")


def _normalise_comment(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    return " ".join(_COMMENT_NOISE.sub(" ", text).split())


def authenticity(inputs: AuthenticityInputs) -> AuthenticityResult:
    """All signals of one account and the authenticity score they add up to."""
    reasons: list[Reason] = []
    jumps = follower_jumps(inputs.snapshots)
    if jumps:
        biggest = max(jumps, key=lambda j: j.gain_per_day)
        reasons.append(
            Reason(
                "follower_jump",
                min(PENALTY_JUMPS_MAX, PENALTY_PER_JUMP * len(jumps)),
                f"{len(jumps)} suspicious follower jump(s); largest +{biggest.gain_per_day:.0f}"
                f"/day on {biggest.at.date().isoformat()} (robust z {biggest.z:.1f})",
            )
        )
    ratio = own_baseline_ratio(inputs.posts, inputs.followers)
    if ratio is not None and not (1 / OWN_BASELINE_RATIO <= ratio <= OWN_BASELINE_RATIO):
        reasons.append(
            Reason(
                "engagement_off_baseline",
                PENALTY_OWN_BASELINE,
                f"recent engagement is x{ratio:.2f} the account's own baseline",
            )
        )
    peer_z = None
    rate = None
    if inputs.posts and inputs.followers > 0:
        rate = sum(p.interactions for p in inputs.posts) / len(inputs.posts) / inputs.followers
    if rate is not None and len(inputs.peer_engagement_rates) >= PEER_MIN:
        peer_median = statistics.median(inputs.peer_engagement_rates)
        peer_z = robust_z(rate, inputs.peer_engagement_rates, 0.1 * abs(peer_median) or 1e-9)
        if abs(peer_z) >= PEER_Z:
            reasons.append(
                Reason(
                    "engagement_off_peers",
                    PENALTY_PEERS,
                    f"engagement rate {rate:.4f} vs peers' median {peer_median:.4f} "
                    f"({size_band(inputs.followers)} band, robust z {peer_z:.1f})",
                )
            )
    dup = duplication_ratio(inputs.comments)
    if (
        dup is not None
        and len(inputs.comments) >= DUPLICATION_MIN_COMMENTS
        and dup >= DUPLICATION_FLAG
    ):
        reasons.append(
            Reason(
                "comment_duplication",
                min(PENALTY_DUPLICATION_MAX, 60.0 * dup),
                f"{dup:.0%} of {len(inputs.comments)} comments repeat an earlier one",
            )
        )
    reasons.sort(key=lambda r: (-r.penalty, r.code))
    return AuthenticityResult(
        score=max(0.0, 100.0 - sum(r.penalty for r in reasons)),
        reasons=reasons,
        jumps=jumps,
        own_baseline_ratio=ratio,
        peer_z=peer_z,
        duplication_ratio=dup,
        size_band=size_band(inputs.followers),
        inputs=inputs,
    )
