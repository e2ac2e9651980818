"""What the analysis pass stores per post or comment: language, sentiment, keywords (pure).

`analyze_texts` runs language detection, the sentiment model (per language batch) and, for
posts, TF-IDF keywords fitted on the batch's texts of the same language.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from domain.analytics.keywords import Lang, keywords_per_text
from domain.analytics.sentiment import SentimentModel, analyze_sentiment, sentiment_model

KEYWORDS_PER_POST = 5


@dataclass(frozen=True, slots=True)
class TextAnalysis:
    language: str  # "en" | "pt" | "es" | "und"
    sentiment: str | None  # negative | neutral | positive; None: no model for the language
    score: float | None
    confidence: float | None
    keywords: list[str] | None  # None when not asked for (comments)


def _keyword_lang(lang: str) -> Lang | None:
    return "en" if lang == "en" else "pt" if lang == "pt" else None


def analyze_texts(
    texts: Sequence[str],
    *,
    keywords: bool = True,
    top_n: int = KEYWORDS_PER_POST,
    model: SentimentModel = sentiment_model,
) -> list[TextAnalysis]:
    """Language, sentiment and (if `keywords`) each text's top terms, in input order."""
    analysed = analyze_sentiment(texts, model=model)
    terms: list[list[str] | None] = [None] * len(texts)
    if keywords:
        by_lang: dict[str, list[int]] = {}
        for i, a in enumerate(analysed):
            by_lang.setdefault(a.lang, []).append(i)
        for lang, idx in sorted(by_lang.items()):
            found = keywords_per_text([texts[i] for i in idx], _keyword_lang(lang), top_n)
            for i, kw in zip(idx, found, strict=True):
                terms[i] = kw
    return [
        TextAnalysis(
            language=a.lang,
            sentiment=a.sentiment.label if a.sentiment else None,
            score=a.sentiment.score if a.sentiment else None,
            confidence=a.sentiment.confidence if a.sentiment else None,
            keywords=kw,
        )
        for a, kw in zip(analysed, terms, strict=True)
    ]
