from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from domain.demo.rules import (
    SEED_PLATFORMS,
    SeedInfluencer,
    generate_posts,
    load_seed_influencers,
    normalize_handle,
    parse_count,
    parse_seed_csv,
)

DATA_DIR = Path(__file__).resolve().parents[2] / "domain" / "demo" / "data"
START = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
IMPORT_KEYS = {
    "platform",
    "handle",
    "external_id",
    "url",
    "text",
    "published_at",
    "likes",
    "comments",
    "shares",
    "views",
    "hashtags",
    "mentions",
}
HANDLE_RE = re.compile(r"[^\s@A-Z]+")


def _read(platform: str) -> str:
    return (DATA_DIR / f"{platform}.csv").read_bytes().decode("utf-8")


def _seed(platform: str, handle: str) -> SeedInfluencer:
    return next(s for s in parse_seed_csv(platform, _read(platform)) if s.handle == handle)


# ---------------------------------------------------------------------------- packaged data


@pytest.mark.parametrize("platform", SEED_PLATFORMS)
def test_each_packaged_csv_gives_20_influencers(platform: str) -> None:
    seeds = parse_seed_csv(platform, _read(platform))
    assert len(seeds) == 20
    assert len({s.handle for s in seeds}) == 20
    for s in seeds:
        assert s.platform == platform
        assert s.followers > 0
        assert HANDLE_RE.fullmatch(s.handle), s.handle
        assert s.display_name
        assert min(s.avg_views, s.avg_likes, s.avg_comments, s.avg_shares) >= 0
        assert s.profile_url.startswith("https://www.")
        assert s.handle in s.profile_url


def test_packaged_files_keep_the_messy_source_bytes() -> None:
    youtube = (DATA_DIR / "youtube.csv").read_bytes()
    assert youtube.startswith(b"s.no,Youtube channel,youtuber name,Category,Followers,Followers,")
    assert b'"\nViews (Avg.)","\nViews (Avg.)"' in youtube
    assert b"\r\n" in youtube
    assert b"409.8M,409800000" in (DATA_DIR / "instagram.csv").read_bytes()
    assert (DATA_DIR / "README.md").is_file()


def test_load_seed_influencers_reads_all_three_platforms() -> None:
    seeds = load_seed_influencers()
    assert len(seeds) == 60
    assert {s.platform for s in seeds} == set(SEED_PLATFORMS)
    assert seeds == [s for p in SEED_PLATFORMS for s in parse_seed_csv(p, _read(p))]


def test_instagram_mapping() -> None:
    messi = _seed("instagram", "leomessi")
    assert messi.display_name == "Leo Messi"
    assert messi.category == "Sports with a ball"
    assert messi.country == "Argentina"
    assert messi.followers == 409_800_000
    # Only "Eng. (Avg.)" = 23.4M exists; it is split into likes + comments, no views/shares.
    assert messi.avg_likes + messi.avg_comments == 23_400_000
    assert 0 < messi.avg_comments < messi.avg_likes
    assert (messi.avg_views, messi.avg_shares) == (0, 0)
    assert messi.profile_url == "https://www.instagram.com/leomessi/"
    # Empty country stays None (countries are not "corrected").
    assert _seed("instagram", "agustd").country is None
    assert _seed("instagram", "cristiano").country == "India"


def test_tiktok_mapping_uses_abbreviated_followers() -> None:
    mrbeast = _seed("tiktok", "mrbeast")
    assert mrbeast.display_name == "MrBeast"
    assert mrbeast.followers == 60_300_000  # only "60.3M" in the file
    assert mrbeast.avg_views == 29_200_000
    assert mrbeast.avg_likes == 3_500_000
    assert mrbeast.avg_comments == 30_800
    assert mrbeast.avg_shares == 7_200
    assert (mrbeast.category, mrbeast.country) == (None, None)
    assert mrbeast.profile_url == "https://www.tiktok.com/@mrbeast"
    # Trailing underscores are real handle characters, kept as-is.
    assert _seed("tiktok", "urbantheory_").display_name == "Urban Theory"


def test_youtube_header_with_newline_is_handled() -> None:
    text = _read("youtube")
    assert '"\nViews (Avg.)"' in text
    mrbeast = _seed("youtube", "mrbeast")
    assert mrbeast.avg_views == 68_500_000
    assert mrbeast.avg_likes == 2_900_000
    assert mrbeast.avg_comments == 99_900
    assert mrbeast.avg_shares == 0
    assert mrbeast.category == "Video games"
    assert mrbeast.country == "United States"
    assert mrbeast.profile_url == "https://www.youtube.com/@mrbeast"
    # A channel name with a symbol, spaces and capitals becomes a clean handle.
    diana = _seed("youtube", "kidsdianashow")
    assert diana.display_name == "✿ Kids Diana Show"
    assert diana.country is None


def test_youtube_header_with_newline_and_only_abbreviated_values() -> None:
    text = (
        'Youtube channel,youtuber name,Followers,"\nViews (Avg.)",Likes (Avg.)\r\n'
        "Some Channel,Some Channel,1.5M,409.8M,30.8K\r\n"
    )
    [seed] = parse_seed_csv("youtube", text)
    assert seed.handle == "somechannel"
    assert seed.followers == 1_500_000
    assert seed.avg_views == 409_800_000
    assert seed.avg_likes == 30_800


# ---------------------------------------------------------------------------- numbers & rows


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("409.8M", 409_800_000),
        ("30.8K", 30_800),
        ("1.2B", 1_200_000_000),
        ("5M", 5_000_000),
        ("998.4k", 998_400),
        ("409800000", 409_800_000),
        ("1,234", 1_234),
        (" 158 ", 158),
        ("0", 0),
        ("", None),
        ("N/A", None),
        ("12.3X", None),
        (None, None),
    ],
)
def test_parse_count(raw: str | None, expected: int | None) -> None:
    assert parse_count(raw) == expected


def test_full_number_is_preferred_over_its_abbreviated_twin() -> None:
    text = "Rank,name,instagram name,followers,followers\n1,someone,Some One,1.2M,1234567\n"
    [seed] = parse_seed_csv("instagram", text)
    assert seed.followers == 1_234_567


def test_garbage_rows_are_skipped() -> None:
    header, first, *rest = _read("tiktok").splitlines(keepends=True)
    text = (
        header
        + first
        + "this is not,a row at all\r\n"  # followers column missing
        + "99,ghost,Ghost,lots,1M,1000000,1K,1000,1,1,1,1\r\n"  # unparsable followers
        + "98,nobody,Nobody,0,1M,1000000,1K,1000,1,1,1,1\r\n"  # zero followers
        + "97,,No Handle,1M,1M,1000000,1K,1000,1,1,1,1\r\n"  # empty handle
        + "\r\n"  # blank line
        + first  # duplicate account
        + "".join(rest)
    )
    seeds = parse_seed_csv("tiktok", text)
    assert len(seeds) == 20
    assert {"ghost", "nobody"}.isdisjoint({s.handle for s in seeds})


def test_empty_text_and_unknown_platform() -> None:
    assert parse_seed_csv("tiktok", "") == []
    with pytest.raises(ValueError):
        parse_seed_csv("myspace", _read("tiktok"))


def test_normalize_handle() -> None:
    assert normalize_handle("✿ Kids Diana Show") == "kidsdianashow"
    assert normalize_handle("@MrBeast") == "mrbeast"
    assert normalize_handle("5-Minute Crafts") == "5-minutecrafts"
    assert normalize_handle("k.mbappe") == "k.mbappe"


# ---------------------------------------------------------------------------- generate_posts


def _posts(seed: SeedInfluencer, rng_seed: int, seq: int = 0, count: int = 25) -> list[dict]:
    return generate_posts(seed, start=START, count=count, seq=seq, rng=random.Random(rng_seed))


@pytest.mark.parametrize("platform", SEED_PLATFORMS)
def test_generate_posts_shape(platform: str) -> None:
    seed = parse_seed_csv(platform, _read(platform))[0]
    posts = _posts(seed, rng_seed=7)
    assert len(posts) == 25
    previous = START
    for post in posts:
        assert set(post) == IMPORT_KEYS
        assert post["platform"] == platform
        assert post["handle"] == seed.handle
        assert isinstance(post["text"], str) and post["text"]
        published = datetime.fromisoformat(str(post["published_at"]))
        assert published.utcoffset() == timedelta(0)
        assert published > previous
        previous = published
        for metric in ("likes", "comments", "shares", "views"):
            assert isinstance(post[metric], int) and post[metric] >= 0
        assert str(post["external_id"]) in str(post["url"])
    assert len({p["external_id"] for p in posts}) == 25


def test_generate_posts_is_deterministic_for_a_given_rng_seed() -> None:
    seed = _seed("tiktok", "mrbeast")
    assert _posts(seed, rng_seed=42) == _posts(seed, rng_seed=42)
    assert _posts(seed, rng_seed=42) != _posts(seed, rng_seed=43)


def test_external_ids_depend_only_on_platform_handle_and_seq() -> None:
    seed = _seed("instagram", "neymarjr")
    ids_a = [p["external_id"] for p in _posts(seed, rng_seed=1, seq=100, count=10)]
    ids_b = [p["external_id"] for p in _posts(seed, rng_seed=999, seq=100, count=10)]
    assert ids_a == ids_b
    # Overlapping windows share ids at the same absolute position (seq + i).
    shifted = [p["external_id"] for p in _posts(seed, rng_seed=5, seq=105, count=10)]
    assert shifted[:5] == ids_a[5:]
    # Another window, account or platform gets different ids.
    assert set(ids_a).isdisjoint(p["external_id"] for p in _posts(seed, rng_seed=1, seq=110))
    other = _seed("tiktok", "mrbeast")
    yt = _seed("youtube", "mrbeast")
    assert set(ids_a).isdisjoint(p["external_id"] for p in _posts(other, 1, seq=100))
    assert {p["external_id"] for p in _posts(other, 1, seq=100)}.isdisjoint(
        p["external_id"] for p in _posts(yt, 1, seq=100)
    )


def test_hashtags_and_mentions_are_clean_and_match_the_text() -> None:
    for seed in load_seed_influencers():
        for post in _posts(seed, rng_seed=3, count=10):
            hashtags = post["hashtags"]
            mentions = post["mentions"]
            assert isinstance(hashtags, list) and isinstance(mentions, list)
            assert 1 <= len(hashtags) <= 3
            assert len(set(hashtags)) == len(hashtags)
            text = str(post["text"])
            for tag in hashtags:
                assert tag == tag.lower() and not tag.startswith("#") and " " not in tag
                assert f"#{tag}" in text
            for mention in mentions:
                assert not mention.startswith("@") and mention != seed.handle
                assert f"@{mention}" in text
            assert re.findall(r"#(\w+)", text) == hashtags


def test_mentions_occur_and_can_come_from_a_pool() -> None:
    seed = _seed("instagram", "leomessi")
    posts = generate_posts(
        seed,
        start=START,
        count=60,
        seq=0,
        rng=random.Random(11),
        mention_pool=["@Neymarjr", "leomessi"],
    )
    mentioned = [m for p in posts for m in p["mentions"]]  # type: ignore[attr-defined]
    assert mentioned and set(mentioned) == {"neymarjr"}


def test_both_languages_appear() -> None:
    pt_markers = ("ã", "ç", "é", "ó", "á", "ú", "Obrigado", "Que ", "Dia de jogo", "De volta")
    texts = [str(p["text"]) for p in _posts(_seed("instagram", "neymarjr"), 4, count=40)]
    assert any(any(m in t for m in pt_markers) for t in texts)
    assert any(not any(m in t for m in pt_markers) for t in texts)


def test_engagement_tracks_account_averages() -> None:
    seed = _seed("tiktok", "mrbeast")
    posts = _posts(seed, rng_seed=8, count=400)
    mean_views = sum(int(p["views"]) for p in posts) / len(posts)  # type: ignore[call-overload]
    mean_likes = sum(int(p["likes"]) for p in posts) / len(posts)  # type: ignore[call-overload]
    assert 0.75 * seed.avg_views < mean_views < 1.25 * seed.avg_views
    assert 0.75 * seed.avg_likes < mean_likes < 1.25 * seed.avg_likes
    assert len({p["views"] for p in posts}) > 300
    insta = _posts(_seed("instagram", "leomessi"), rng_seed=8, count=20)
    assert all(p["views"] == 0 and p["shares"] == 0 for p in insta)


def test_generate_posts_validates_arguments() -> None:
    seed = _seed("tiktok", "mrbeast")
    assert generate_posts(seed, start=START, count=0, seq=0, rng=random.Random(0)) == []
    with pytest.raises(ValueError):
        generate_posts(seed, start=START, count=-1, seq=0, rng=random.Random(0))
    with pytest.raises(ValueError):
        generate_posts(seed, start=START.replace(tzinfo=None), count=1, seq=0, rng=random.Random(0))
