"""Demo-tenant seed influencers and a pure, deterministic post generator for the demo "replay".

The seed accounts come from the packaged CSV files in ``data/`` (top 20 rows per platform of the
Dec 2022 "top-1000-social-media-channels" set; see ``data/README.md``). Those files are messy, real
input, and ``parse_seed_csv`` accepts them as they are:

* Columns are found by a normalised header key: lower case, with everything except
  ``[a-z0-9]`` removed. ``"\\nViews (Avg.)"`` and ``"views(avg)"`` both become ``viewsavg``, so
  the YouTube header cell that holds a newline works without special handling.
* Column names repeat, usually as an abbreviated and a full copy of the same metric
  (``409.8M`` / ``409800000``). The parser reads every column with the name and prefers the
  plain full number. If no full number parses, it uses the abbreviated one (``K``/``M``/``B``).
* A row is skipped when it has no usable handle, when its followers are missing, unparsable or not
  positive, or when its handle repeats one already seen on that platform.
* Countries are kept exactly as the source gives them. Some are known to be wrong. Empty values
  become ``None``.

Everything here is pure, with no ORM, network or async. The only I/O is ``load_seed_influencers``,
which reads the packaged files.
"""

from __future__ import annotations

import csv
import hashlib
import io
import random
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from importlib import resources

SEED_PLATFORMS: tuple[str, ...] = ("instagram", "tiktok", "youtube")
POST_PLATFORMS: tuple[str, ...] = ("instagram", "youtube", "tiktok", "x")

# Instagram publishes only an average engagement number (likes + comments). When a row has no
# separate likes and comments, this share of that number is taken as comments and the rest as
# likes. Comments usually run at about 1-2% of likes on very large accounts.
INSTAGRAM_COMMENT_SHARE = 0.015


@dataclass(frozen=True)
class SeedInfluencer:
    display_name: str
    category: str | None
    country: str | None
    platform: str  # "instagram" | "youtube" | "tiktok"
    handle: str  # account handle without '@', lowercase, no spaces
    followers: int
    avg_views: int
    avg_likes: int
    avg_comments: int
    avg_shares: int
    profile_url: str


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------

_COUNT_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)([kmb])?", re.IGNORECASE)
_PLAIN_INT_RE = re.compile(r"\d+")
_MULTIPLIERS = {"": Decimal(1), "k": Decimal(10**3), "m": Decimal(10**6), "b": Decimal(10**9)}
_HANDLE_CHARS = "._-"


def parse_count(value: str | None) -> int | None:
    """Parse ``"409.8M"``, ``"30.8K"``, ``"1.2B"``, ``"409800000"`` or ``"1,234"`` as an int.

    Returns ``None`` for empty or unparsable input.
    """
    if value is None:
        return None
    text = re.sub(r"[\s,_]", "", value)
    match = _COUNT_RE.fullmatch(text)
    if match is None:
        return None
    try:
        number = Decimal(match.group(1))
    except InvalidOperation:  # pragma: no cover - the regex already guarantees a number
        return None
    scaled = number * _MULTIPLIERS[(match.group(2) or "").lower()]
    return int(scaled.to_integral_value(rounding=ROUND_HALF_UP))


def normalize_handle(raw: str) -> str:
    """Make a raw account or channel name into a handle.

    The result is lower case, has no leading ``@``, and has no spaces or symbols. Only letters,
    digits and ``._-`` are kept.
    """
    text = unicodedata.normalize("NFKC", raw).strip().lstrip("@").lower()
    return "".join(ch for ch in text if ch.isalnum() or ch in _HANDLE_CHARS)


def profile_url(platform: str, handle: str) -> str:
    """Return the public profile URL for a handle on a platform."""
    if platform == "instagram":
        return f"https://www.instagram.com/{handle}/"
    if platform == "youtube":
        return f"https://www.youtube.com/@{handle}"
    if platform == "tiktok":
        return f"https://www.tiktok.com/@{handle}"
    if platform == "x":
        return f"https://x.com/{handle}"
    raise ValueError(f"unknown platform: {platform!r}")


def _header_key(name: str) -> str:
    return re.sub(r"[^0-9a-z]+", "", name.casefold())


@dataclass(frozen=True)
class _ColumnSpec:
    """Header keys (see ``_header_key``) to try for each field, in order of preference."""

    handle: tuple[str, ...]
    display_name: tuple[str, ...]
    category: tuple[str, ...] = ("category",)
    country: tuple[str, ...] = ("country",)
    followers: tuple[str, ...] = ("followers", "subscribers")
    views: tuple[str, ...] = ("viewsavg", "avgviews")
    likes: tuple[str, ...] = ("likesavg", "avglikes")
    comments: tuple[str, ...] = ("commentsavg", "avgcomments")
    shares: tuple[str, ...] = ("sharesavg", "avgshares")
    engagement: tuple[str, ...] = ()


_SPECS: dict[str, _ColumnSpec] = {
    # Rank,name,instagram name,Category_1,Category_2,followers,followers,country,
    # Eng. (Auth.),Eng. (Auth.),Eng. (Avg.),Eng. (Avg.)
    "instagram": _ColumnSpec(
        handle=("name", "handle", "username"),
        display_name=("instagramname", "displayname"),
        category=("category1", "category2", "category"),
        engagement=("engavg", "engauth"),
    ),
    # Rank,Tiktoker name,Tiktok name,followers,views(avg),views(avg),likes(avg.),likes(avg.),
    # comments(avg.),comments(avg.),shares(avg.),shares(avg.)
    "tiktok": _ColumnSpec(
        handle=("tiktokername", "handle", "username"),
        display_name=("tiktokname", "displayname"),
    ),
    # s.no,Youtube channel,youtuber name,Category,Followers,Followers,Country,"\nViews (Avg.)",
    # "\nViews (Avg.)",Likes (Avg.),Likes (Avg.),Comments (Avg.),Comments (Avg.),Category-2
    "youtube": _ColumnSpec(
        handle=("youtubechannel", "channel", "handle"),
        display_name=("youtubername", "displayname"),
        category=("category", "category2"),
    ),
}


class _Row:
    def __init__(self, cells: list[str], columns: dict[str, list[int]]) -> None:
        self._cells = cells
        self._columns = columns

    def _values(self, key: str) -> list[str]:
        return [self._cells[i].strip() for i in self._columns.get(key, []) if i < len(self._cells)]

    def text(self, keys: tuple[str, ...]) -> str | None:
        for key in keys:
            for value in self._values(key):
                if value:
                    return value
        return None

    def count(self, keys: tuple[str, ...]) -> int | None:
        for key in keys:
            values = self._values(key)
            # A full number ("409800000") is more precise than its abbreviated twin ("409.8M").
            precise = [v for v in values if _PLAIN_INT_RE.fullmatch(v.replace(",", ""))]
            for value in precise + [v for v in values if v not in precise]:
                parsed = parse_count(value)
                if parsed is not None:
                    return parsed
        return None


def parse_seed_csv(platform: str, text: str) -> list[SeedInfluencer]:
    """Parse one platform's influencer CSV text into seed influencers, keeping file order.

    Rows that cannot be parsed are skipped (see the module docstring). Raises ``ValueError`` for an
    unknown platform.
    """
    spec = _SPECS.get(platform)
    if spec is None:
        raise ValueError(f"unknown seed platform: {platform!r} (expected one of {SEED_PLATFORMS})")
    records = [
        row
        for row in csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""))
        if any(cell.strip() for cell in row)
    ]
    if not records:
        return []
    columns: dict[str, list[int]] = {}
    for index, name in enumerate(records[0]):
        columns.setdefault(_header_key(name), []).append(index)

    seeds: list[SeedInfluencer] = []
    seen: set[str] = set()
    for cells in records[1:]:
        seed = _parse_row(platform, spec, _Row(cells, columns))
        if seed is None or seed.handle in seen:
            continue
        seen.add(seed.handle)
        seeds.append(seed)
    return seeds


def _parse_row(platform: str, spec: _ColumnSpec, row: _Row) -> SeedInfluencer | None:
    raw_handle = row.text(spec.handle)
    if raw_handle is None:
        return None
    handle = normalize_handle(raw_handle)
    followers = row.count(spec.followers)
    if not handle or followers is None or followers <= 0:
        return None

    views = row.count(spec.views)
    likes = row.count(spec.likes)
    comments = row.count(spec.comments)
    shares = row.count(spec.shares)
    engagement = row.count(spec.engagement) if spec.engagement else None
    if likes is None and engagement is not None:
        if comments is None:
            comments = round(engagement * INSTAGRAM_COMMENT_SHARE)
        likes = max(engagement - comments, 0)

    return SeedInfluencer(
        display_name=row.text(spec.display_name) or raw_handle.strip(),
        category=row.text(spec.category),
        country=row.text(spec.country),
        platform=platform,
        handle=handle,
        followers=followers,
        avg_views=views or 0,
        avg_likes=likes or 0,
        avg_comments=comments or 0,
        avg_shares=shares or 0,
        profile_url=profile_url(platform, handle),
    )


def load_seed_influencers() -> list[SeedInfluencer]:
    """Read the packaged demo CSVs (instagram, tiktok, youtube, in that order)."""
    data = resources.files(__package__ or "domain.demo").joinpath("data")
    seeds: list[SeedInfluencer] = []
    for platform in SEED_PLATFORMS:
        raw = data.joinpath(f"{platform}.csv").read_bytes()
        seeds.extend(parse_seed_csv(platform, raw.decode("utf-8-sig")))
    return seeds


# --------------------------------------------------------------------------------------------
# Post generation
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Topic:
    en: tuple[str, ...]
    pt: tuple[str, ...]
    hashtags: tuple[str, ...]
    partners: tuple[str, ...]


_TOPICS: dict[str, _Topic] = {
    "music": _Topic(
        en=(
            "New single out now, I can't stop playing it. Thank you for all the love!",
            "Rehearsals for the tour start today. Who's coming?",
            "Studio session tonight, a new chapter is coming.",
            "Really sad we had to cancel tonight's show. I'm so sorry, we'll make it up to you.",
        ),
        pt=(
            "Música nova no ar! Obrigado por todo o carinho, vocês são incríveis.",
            "Ensaio da turnê começa hoje. Quem vem?",
            "Noite de estúdio, vem coisa nova por aí.",
            "Muito triste com o cancelamento do show de hoje. Desculpem, vamos compensar.",
        ),
        hashtags=("music", "newmusic", "tour", "livemusic", "musica", "studio"),
        partners=("the.band.official", "tour.crew", "studio.sessions"),
    ),
    "sports": _Topic(
        en=(
            "What a match! Proud of this team, we never give up.",
            "Back to training. Recovery day done, focus on the next game.",
            "Match day. Let's go!",
            "Tough loss today. Not the result we wanted, we'll come back stronger.",
        ),
        pt=(
            "Que jogo! Orgulho desse time, a gente nunca desiste.",
            "De volta aos treinos. Foco no próximo jogo.",
            "Dia de jogo. Vamos!",
            "Derrota dura hoje. Não era o resultado que queríamos, mas vamos voltar mais fortes.",
        ),
        hashtags=("football", "matchday", "training", "futebol", "teamwork", "sport"),
        partners=("club.official", "coach.team", "matchday.media"),
    ),
    "fashion": _Topic(
        en=(
            "Obsessed with this look, loved every detail of today's shoot.",
            "Behind the scenes from fashion week.",
            "New collection drops on Friday.",
            "Honestly exhausted after this week. Taking a break to recharge.",
        ),
        pt=(
            "Amei demais esse look, cada detalhe do ensaio de hoje ficou perfeito.",
            "Bastidores da semana de moda.",
            "Nova coleção chega na sexta.",
            "Semana puxada demais. Hora de dar uma pausa.",
        ),
        hashtags=("fashion", "style", "ootd", "beauty", "moda", "makeup"),
        partners=("glam.squad", "studio.shoot", "atelier.collective"),
    ),
    "gaming": _Topic(
        en=(
            "New video is up, this might be the craziest challenge we've ever done!",
            "Streaming later tonight, come hang out.",
            "Testing the new update before the video.",
            "Lost all my progress to a bug. Worst day ever.",
        ),
        pt=(
            "Vídeo novo no canal, esse desafio foi o mais insano que já fizemos!",
            "Live mais tarde, cola aí.",
            "Testando a atualização nova antes do vídeo.",
            "Perdi todo o progresso por causa de um bug. Pior dia.",
        ),
        hashtags=("gaming", "gamer", "challenge", "games", "jogos", "live"),
        partners=("squad.gaming", "the.editors", "stream.team"),
    ),
    "kids": _Topic(
        en=(
            "A brand new episode for the little ones! Sing along with us.",
            "Learning colors and numbers today.",
            "New episode this weekend.",
            "Sorry, today's upload is delayed. It'll be worth the wait!",
        ),
        pt=(
            "Episódio novinho para os pequenos! Cantem com a gente.",
            "Aprendendo cores e números hoje.",
            "Episódio novo neste fim de semana.",
            "Desculpem, o vídeo de hoje atrasou. Vai valer a espera!",
        ),
        hashtags=("kids", "nurseryrhymes", "family", "learning", "criancas", "cartoon"),
        partners=("family.channel", "kids.studio", "toy.workshop"),
    ),
    "film": _Topic(
        en=(
            "So grateful to be part of this project. The trailer is finally out!",
            "Last day on set.",
            "Premiere tonight, see you there.",
            "Filming got pushed back again. Frustrating, but we keep going.",
        ),
        pt=(
            "Que alegria fazer parte desse projeto. O trailer finalmente saiu!",
            "Último dia de gravação.",
            "Estreia hoje à noite, nos vemos lá.",
            "A gravação foi adiada de novo. Frustrante, mas seguimos.",
        ),
        hashtags=("movie", "cinema", "behindthescenes", "series", "filme", "premiere"),
        partners=("the.cast", "onset.crew", "premiere.night"),
    ),
    "comedy": _Topic(
        en=(
            "I laughed way too hard filming this one.",
            "Tell me you've been here before.",
            "Part two?",
            "This did not go as planned at all.",
        ),
        pt=(
            "Ri demais gravando esse aqui.",
            "Quem nunca passou por isso?",
            "Parte dois?",
            "Isso não saiu nada como planejado.",
        ),
        hashtags=("funny", "comedy", "humor", "lol", "memes", "comedia"),
        partners=("sketch.crew", "the.writers", "comedy.club"),
    ),
    "food": _Topic(
        en=(
            "This recipe is ridiculously good, you have to try it.",
            "Today's menu: something simple and quick.",
            "Prepping for tomorrow's cooking video.",
            "Burned the whole batch. Starting over, I guess.",
        ),
        pt=(
            "Essa receita ficou boa demais, vocês precisam testar.",
            "Cardápio de hoje: algo simples e rápido.",
            "Preparando o vídeo de receita de amanhã.",
            "Queimei tudo. Começando de novo.",
        ),
        hashtags=("food", "recipe", "cooking", "foodie", "receita", "dessert"),
        partners=("kitchen.crew", "chef.table", "food.studio"),
    ),
    "tech": _Topic(
        en=(
            "This new gadget is honestly impressive, full review on the channel.",
            "Unboxing later today.",
            "Comparing the specs side by side.",
            "Disappointed with this update, battery life got worse.",
        ),
        pt=(
            "Esse gadget novo impressiona, review completo no canal.",
            "Unboxing mais tarde.",
            "Comparando as especificações lado a lado.",
            "Que decepção essa atualização, a bateria piorou.",
        ),
        hashtags=("tech", "gadgets", "review", "science", "tecnologia", "innovation"),
        partners=("lab.notes", "tech.desk", "review.team"),
    ),
    "news": _Topic(
        en=(
            "Great conversation today, thanks to everyone who joined.",
            "Here is what you need to know this week.",
            "Live coverage starts at 8pm.",
            "Worrying numbers in today's report.",
        ),
        pt=(
            "Ótima conversa hoje, obrigado a todos que participaram.",
            "O que você precisa saber nesta semana.",
            "Cobertura ao vivo começa às 20h.",
            "Números preocupantes no relatório de hoje.",
        ),
        hashtags=("news", "breaking", "economy", "politics", "noticias", "business"),
        partners=("news.desk", "the.editors", "daily.brief"),
    ),
    "lifestyle": _Topic(
        en=(
            "Best weekend in a long time, feeling so grateful.",
            "A little update from my week.",
            "Sunday reset.",
            "Not my best week. Taking some time off to rest.",
        ),
        pt=(
            "Melhor fim de semana em muito tempo, só gratidão.",
            "Um resuminho da minha semana.",
            "Domingo de descanso.",
            "Semana difícil. Vou tirar um tempo para descansar.",
        ),
        hashtags=("lifestyle", "dailyvlog", "travel", "family", "vida", "photography"),
        partners=("photo.crew", "travel.diaries", "the.family"),
    ),
}

# First matching keyword wins; unknown or missing categories fall back to "lifestyle".
_CATEGORY_KEYWORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("music", ("music", "dance")),
    ("gaming", ("video game", "gaming")),
    ("kids", ("animation", "toy", "kids", "education", "nursery")),
    (
        "sports",
        ("sport", "racing", "fitness", "gym", "trainer", "coach", "football", "soccer"),
    ),
    ("fashion", ("fashion", "beauty", "model", "clothing", "outfit", "luxury", "shopping")),
    ("film", ("cinema", "movie", "film", "actor", "actress", "show")),
    ("comedy", ("humor", "comic", "comedy", "fun")),
    ("food", ("food", "cook", "drink")),
    ("tech", ("science", "tech", "computer", "gadget", "machinery", "nft")),
    (
        "news",
        ("news", "politic", "finance", "econom", "business", "journalism", "management"),
    ),
)

_PLATFORM_HASHTAGS: dict[str, tuple[str, ...]] = {
    "instagram": ("reels", "instagood"),
    "tiktok": ("fyp", "foryou", "viral"),
    "youtube": ("youtube", "shorts"),
    "x": ("trending",),
}
_MENTION_PHRASES = {
    "en": ("with @{m}", "thanks @{m}", "cc @{m}"),
    "pt": ("com @{m}", "valeu @{m}", "cc @{m}"),
}
_MEAN_GAP_HOURS = {"instagram": 20.0, "tiktok": 8.0, "youtube": 30.0, "x": 4.0}
_PORTUGUESE_COUNTRIES = ("brazil", "brasil", "portugal")
_MENTION_PROBABILITY = 0.3
_PERFORMANCE_SIGMA = 0.5  # shared per-post "how well did it do" factor
_METRIC_SIGMA = 0.25  # extra independent noise per metric


def topic_for_category(category: str | None) -> str:
    """Map a free-text source category ("Sports with a ball", "Music & Dance"...) to a topic."""
    text = (category or "").casefold()
    for topic, keywords in _CATEGORY_KEYWORDS:
        if any(keyword in text for keyword in keywords):
            return topic
    return "lifestyle"


def external_id_for(platform: str, handle: str, n: int) -> str:
    """Return the deterministic demo post id for the n-th replayed post of an account."""
    digest = hashlib.sha256(f"trendscope-demo|{platform}|{handle}|{n}".encode()).hexdigest()
    return f"demo_{digest[:20]}"


def _post_url(platform: str, handle: str, external_id: str) -> str:
    if platform == "instagram":
        return f"https://www.instagram.com/p/{external_id}/"
    if platform == "youtube":
        return f"https://www.youtube.com/watch?v={external_id}"
    if platform == "tiktok":
        return f"https://www.tiktok.com/@{handle}/video/{external_id}"
    return f"https://x.com/{handle}/status/{external_id}"


def _noisy(average: int, performance: float, rng: random.Random) -> int:
    if average <= 0:
        return 0
    noise = rng.lognormvariate(-(_METRIC_SIGMA**2) / 2, _METRIC_SIGMA)
    return max(0, round(average * performance * noise))


def generate_posts(
    seed: SeedInfluencer,
    *,
    start: datetime,
    count: int,
    seq: int,
    rng: random.Random,
    mention_pool: Sequence[str] | None = None,
) -> list[dict[str, object]]:
    """Make ``count`` plausible synthetic posts for ``seed``, as import rows, oldest first.

    - ``external_id`` of post ``i`` depends only on ``(platform, handle, seq + i)``. Replaying the
      same ``seq`` gives the same ids, so a re-import is idempotent.
    - Everything else (text, engagement, timing) is drawn from ``rng`` only. The same rng state
      gives the same posts.
    - Engagement is lognormal around the account's averages, with the mean kept. A shared
      per-post factor makes views, likes, comments and shares rise and fall together. A
      metric with no average on the platform (0) stays 0.
    - ``published_at`` is ISO-8601 UTC, strictly after ``start``, increasing by a random gap
      around a per-platform posting cadence.
    - ``mention_pool`` gives the handles to @mention (for example, other demo accounts). By
      default, a few generic collaborator handles for the account's topic are used.
    """
    if count < 0:
        raise ValueError("count must be >= 0")
    if start.tzinfo is None or start.utcoffset() is None:
        raise ValueError("start must be timezone-aware")
    if seed.platform not in POST_PLATFORMS:
        raise ValueError(f"unknown platform: {seed.platform!r}")

    topic = _TOPICS[topic_for_category(seed.category)]
    tag_pool = topic.hashtags + _PLATFORM_HASHTAGS[seed.platform]
    pool = mention_pool if mention_pool is not None else topic.partners
    mentionable = [
        handle for handle in (normalize_handle(h) for h in pool) if handle and handle != seed.handle
    ]
    country = (seed.country or "").casefold()
    pt_probability = 0.8 if country in _PORTUGUESE_COUNTRIES else 0.25
    mean_gap = timedelta(hours=_MEAN_GAP_HOURS[seed.platform])

    posts: list[dict[str, object]] = []
    published = start.astimezone(UTC)
    for i in range(count):
        published += mean_gap * rng.uniform(0.5, 1.5)
        published = published.replace(microsecond=0)
        language = "pt" if rng.random() < pt_probability else "en"
        body = rng.choice(topic.pt if language == "pt" else topic.en)

        hashtags = rng.sample(tag_pool, k=rng.randint(1, min(3, len(tag_pool))))
        mentions: list[str] = []
        parts = [body]
        if mentionable and rng.random() < _MENTION_PROBABILITY:
            mention = rng.choice(mentionable)
            mentions.append(mention)
            parts.append(rng.choice(_MENTION_PHRASES[language]).format(m=mention))
        parts.append(" ".join(f"#{tag}" for tag in hashtags))

        performance = rng.lognormvariate(-(_PERFORMANCE_SIGMA**2) / 2, _PERFORMANCE_SIGMA)
        external_id = external_id_for(seed.platform, seed.handle, seq + i)
        posts.append(
            {
                "platform": seed.platform,
                "handle": seed.handle,
                "external_id": external_id,
                "url": _post_url(seed.platform, seed.handle, external_id),
                "text": " ".join(parts),
                "published_at": published.isoformat(timespec="seconds"),
                "likes": _noisy(seed.avg_likes, performance, rng),
                "comments": _noisy(seed.avg_comments, performance, rng),
                "shares": _noisy(seed.avg_shares, performance, rng),
                "views": _noisy(seed.avg_views, performance, rng),
                "hashtags": list(hashtags),
                "mentions": mentions,
            }
        )
    return posts


__all__ = [
    "INSTAGRAM_COMMENT_SHARE",
    "POST_PLATFORMS",
    "SEED_PLATFORMS",
    "SeedInfluencer",
    "external_id_for",
    "generate_posts",
    "load_seed_influencers",
    "normalize_handle",
    "parse_count",
    "parse_seed_csv",
    "profile_url",
    "topic_for_category",
]
