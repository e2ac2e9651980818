"""Keywords and hashtags of a set of texts (pure, deterministic).

The caller chooses the document set (one post, an influencer's posts, a period's posts) and
passes the texts; see docs/analytics.md ("Keywords and hashtags") for the formulas.

- `top_keywords`: TF-IDF (scikit-learn `TfidfVectorizer`, sublinear tf, l2-normalised rows)
  fitted on the given texts, terms ranked by the sum of their TF-IDF weights over the texts.
- `hashtag_counts`: case-insensitive hashtag counts.
- `sentiment_keywords`: terms ranked by the mean sentiment score of the texts they occur in,
  among terms occurring in at least `min_support` texts.

Stop words: scikit-learn's English list and the Snowball Portuguese list
(`stopwords_pt.py`); `lang=None` removes both (mixed-language sets).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer, TfidfVectorizer

from domain.analytics.stopwords_pt import PORTUGUESE_STOP_WORDS

Lang = Literal["en", "pt"]

_NOISE = re.compile(r"https?://\S+|www\.\S+|[@\uff20]\w+|#\w+|&\w+;")
_HASHTAG = re.compile(r"(?<![\w#])#(\w*[^\W\d_]\w*)")
# Words of at least 3 characters with at least one letter first (digits alone are not keywords).
TOKEN_PATTERN = r"(?u)\b[^\W\d_][\w'-]{2,}\b"


def stop_words(lang: Lang | None) -> frozenset[str]:
    """Stop words removed for `lang` ("en", "pt"), or both lists when `lang` is None."""
    if lang == "en":
        return frozenset(ENGLISH_STOP_WORDS)
    if lang == "pt":
        return PORTUGUESE_STOP_WORDS
    return frozenset(ENGLISH_STOP_WORDS) | PORTUGUESE_STOP_WORDS


def clean_for_keywords(text: str) -> str:
    """Lower-cased text without URLs, @mentions, hashtags and HTML entities."""
    return _NOISE.sub(" ", text).lower()


@dataclass(frozen=True)
class Keyword:
    term: str
    score: float  # sum of the term's TF-IDF weights over the texts
    documents: int  # texts the term occurs in


@dataclass(frozen=True)
class HashtagCount:
    tag: str  # lower case, without '#'
    count: int  # occurrences over all texts (a text repeating a tag counts each time)
    documents: int  # texts with the tag


@dataclass(frozen=True)
class SentimentKeyword:
    term: str
    mean_sentiment: float  # mean score (in [-1, 1]) of the texts containing the term
    support: int  # texts containing the term


@dataclass(frozen=True)
class SentimentKeywords:
    positive: list[SentimentKeyword]  # mean_sentiment > 0, highest first
    negative: list[SentimentKeyword]  # mean_sentiment < 0, lowest first


def top_keywords(texts: Sequence[str], lang: Lang | None = None, top_n: int = 10) -> list[Keyword]:
    """The `top_n` terms of `texts` by summed TF-IDF weight (ties: more texts, then A-Z)."""
    if not any(t.strip() for t in texts):
        return []
    vectorizer = TfidfVectorizer(
        sublinear_tf=True,
        preprocessor=clean_for_keywords,
        token_pattern=TOKEN_PATTERN,
        stop_words=sorted(stop_words(lang)),
    )
    try:
        matrix = vectorizer.fit_transform(texts)
    except ValueError:  # empty vocabulary: only stop words, URLs, mentions
        return []
    terms = vectorizer.get_feature_names_out()
    scores = np.asarray(matrix.sum(axis=0)).ravel()
    documents = np.asarray((matrix > 0).sum(axis=0)).ravel()
    order = sorted(
        range(len(terms)), key=lambda i: (-round(float(scores[i]), 9), -documents[i], terms[i])
    )
    return [
        Keyword(term=str(terms[i]), score=float(scores[i]), documents=int(documents[i]))
        for i in order[:top_n]
    ]


def extract_hashtags(text: str) -> list[str]:
    """Hashtags of `text` in order, lower case, without '#' (`#123` alone is not a hashtag)."""
    return [tag.lower() for tag in _HASHTAG.findall(text)]


def hashtag_counts(texts: Sequence[str], top_n: int | None = None) -> list[HashtagCount]:
    """Hashtags over `texts`, most used first (ties: A-Z)."""
    counts: Counter[str] = Counter()
    documents: Counter[str] = Counter()
    for text in texts:
        tags = extract_hashtags(text)
        counts.update(tags)
        documents.update(set(tags))
    ranked = sorted(counts, key=lambda tag: (-counts[tag], tag))
    if top_n is not None:
        ranked = ranked[:top_n]
    return [HashtagCount(tag=t, count=counts[t], documents=documents[t]) for t in ranked]


def sentiment_keywords(
    texts: Sequence[str],
    scores: Sequence[float],
    lang: Lang | None = None,
    min_support: int = 3,
    top_n: int = 10,
) -> SentimentKeywords:
    """Top positive and negative keywords given each text's sentiment score in [-1, 1].

    A term's polarity is the mean score of the texts it occurs in (each text counted once);
    terms in fewer than `min_support` texts are ignored. Ties: more support, then A-Z.
    """
    if len(texts) != len(scores):
        raise ValueError("texts and scores must have the same length")
    if not any(t.strip() for t in texts):
        return SentimentKeywords(positive=[], negative=[])
    vectorizer = CountVectorizer(
        binary=True,
        preprocessor=clean_for_keywords,
        token_pattern=TOKEN_PATTERN,
        stop_words=sorted(stop_words(lang)),
    )
    try:
        matrix = vectorizer.fit_transform(texts)
    except ValueError:
        return SentimentKeywords(positive=[], negative=[])
    terms = vectorizer.get_feature_names_out()
    support = np.asarray(matrix.sum(axis=0)).ravel()
    totals = matrix.T @ np.asarray(scores, dtype=float)
    found = [
        SentimentKeyword(
            term=str(terms[i]),
            mean_sentiment=float(totals[i] / support[i]),
            support=int(support[i]),
        )
        for i in range(len(terms))
        if support[i] >= min_support
    ]
    positive = sorted(
        (k for k in found if k.mean_sentiment > 0),
        key=lambda k: (-round(k.mean_sentiment, 9), -k.support, k.term),
    )
    negative = sorted(
        (k for k in found if k.mean_sentiment < 0),
        key=lambda k: (round(k.mean_sentiment, 9), -k.support, k.term),
    )
    return SentimentKeywords(positive=positive[:top_n], negative=negative[:top_n])


def keywords_per_text(
    texts: Sequence[str], lang: Lang | None = None, top_n: int = 5
) -> list[list[str]]:
    """Each text's `top_n` terms by TF-IDF weight, idf fitted on `texts` (a batch of posts of
    one language, as the analytics pass stores them). Ties: A-Z. Empty lists for texts with
    no term (only stop words, URLs, mentions, hashtags)."""
    out: list[list[str]] = [[] for _ in texts]
    if not any(t.strip() for t in texts):
        return out
    vectorizer = TfidfVectorizer(
        sublinear_tf=True,
        preprocessor=clean_for_keywords,
        token_pattern=TOKEN_PATTERN,
        stop_words=sorted(stop_words(lang)),
    )
    try:
        matrix = vectorizer.fit_transform(texts).tocsr()
    except ValueError:  # empty vocabulary
        return out
    terms = vectorizer.get_feature_names_out()
    for row in range(matrix.shape[0]):
        start, end = matrix.indptr[row], matrix.indptr[row + 1]
        cols, weights = matrix.indices[start:end], matrix.data[start:end]
        ranked = sorted(
            zip(weights.tolist(), cols.tolist(), strict=True),
            key=lambda wc: (-round(wc[0], 9), str(terms[wc[1]])),
        )
        out[row] = [str(terms[c]) for _, c in ranked[:top_n]]
    return out
