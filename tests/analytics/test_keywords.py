from __future__ import annotations

import pytest

from domain.analytics.keywords import (
    extract_hashtags,
    hashtag_counts,
    sentiment_keywords,
    stop_words,
    top_keywords,
)


def test_english_stop_words_removed_and_ranked_by_tfidf() -> None:
    texts = [
        "The camera of this phone is great and the battery is great too",
        "I think the camera is the best thing about it",
        "Battery life could be better, but the camera is amazing",
    ]
    keywords = top_keywords(texts, "en", top_n=20)
    terms = [k.term for k in keywords]
    assert not {"the", "is", "and", "this", "of", "about", "it", "too"} & set(terms)
    # "camera" is in all three texts; "battery" (two texts) ranks above words of one text,
    # except "great", which its one text says twice (sublinear tf: 1 + ln 2)
    assert terms[:3] == ["camera", "great", "battery"]
    assert [k.documents for k in keywords[:3]] == [3, 1, 2]
    assert set(terms[3:]) == {"best", "thing", "think", "amazing", "better", "life", "phone"}


def test_portuguese_stop_words_removed() -> None:
    texts = [
        "Eu não gosto do programa de hoje, mas a novela está ótima",
        "A novela foi muito boa, adorei o final",
        "Vocês viram a novela? Que final!",
    ]
    terms = [k.term for k in top_keywords(texts, "pt", top_n=20)]
    assert terms[0] == "novela"
    assert "final" in terms
    assert not {"não", "eu", "do", "de", "mas", "está", "foi", "muito", "vocês", "que"} & set(terms)


def test_mixed_language_removes_both_lists() -> None:
    assert {"the", "não"} <= stop_words(None)
    terms = [k.term for k in top_keywords(["the novela não acabou", "the novela"], None)]
    assert terms == ["novela", "acabou"]


def test_urls_mentions_and_hashtags_are_not_keywords() -> None:
    terms = [k.term for k in top_keywords(["@someone look https://t.co/abc #launch rocket"])]
    assert terms == ["look", "rocket"]


@pytest.mark.parametrize("texts", [[], [""], ["the and of", "@user https://x.co"]])
def test_nothing_to_rank(texts: list[str]) -> None:
    assert top_keywords(texts, "en") == []
    assert sentiment_keywords(texts, [0.0] * len(texts)) == sentiment_keywords([], [])


def test_hashtags_counted_case_insensitively() -> None:
    assert extract_hashtags("#Tech day #tech, #AI2025 and #2025 a#b") == ["tech", "tech", "ai2025"]
    counts = hashtag_counts(["#Tech #tech", "#AI and #tech", "#ai", "#zeta"])
    assert [(c.tag, c.count, c.documents) for c in counts] == [
        ("tech", 3, 2),
        ("ai", 2, 2),
        ("zeta", 1, 1),
    ]
    assert [c.tag for c in hashtag_counts(["#b #a"], top_n=1)] == ["a"]


def test_sentiment_keywords_by_mean_score_with_minimum_support() -> None:
    texts = [
        "great camera",  # 0.9
        "great battery",  # 0.8
        "terrible battery",  # -0.7
        "terrible screen and camera",  # -0.9
        "screen",  # -0.5
    ]
    scores = [0.9, 0.8, -0.7, -0.9, -0.5]
    result = sentiment_keywords(texts, scores, "en", min_support=2)
    # great: (0.9+0.8)/2 = 0.85; battery: (0.8-0.7)/2 = 0.05; camera: (0.9-0.9)/2 = 0
    assert [(k.term, k.support) for k in result.positive] == [("great", 2), ("battery", 2)]
    assert result.positive[0].mean_sentiment == pytest.approx(0.85)
    # terrible: (-0.7-0.9)/2 = -0.8; screen: (-0.9-0.5)/2 = -0.7
    assert [k.term for k in result.negative] == ["terrible", "screen"]
    assert result.negative[0].mean_sentiment == pytest.approx(-0.8)
    # with support 3 nothing qualifies
    assert sentiment_keywords(texts, scores, "en", min_support=3).positive == []


def test_sentiment_keywords_length_mismatch() -> None:
    with pytest.raises(ValueError):
        sentiment_keywords(["a"], [])


def test_deterministic() -> None:
    texts = ["alpha beta gamma", "beta gamma delta", "gamma delta epsilon"] * 3
    assert top_keywords(texts) == top_keywords(list(texts))
