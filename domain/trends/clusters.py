"""Text topics (pure): TF-IDF keywords of posts not analysed yet, and clusters of similar
texts (TF-IDF + scikit-learn MiniBatchKMeans, labelled by the centroid's top terms). Trend
detection (rules.py `topics_of`) turns them into topics."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sklearn.feature_extraction.text import TfidfVectorizer

# scikit-learn (and domain/analytics/keywords.py, which imports it) load on first use.


@dataclass(frozen=True)
class Cluster:
    label: str  # top terms, most weighted first
    key: str  # the same terms sorted A-Z joined by "+": stable while the terms are
    terms: tuple[str, ...]
    members: tuple[int, ...]  # indices into the texts given


def _vectorizer(min_df: int = 1, max_features: int | None = None) -> TfidfVectorizer:
    from sklearn.feature_extraction.text import TfidfVectorizer

    from domain.analytics.keywords import TOKEN_PATTERN, clean_for_keywords, stop_words

    return TfidfVectorizer(
        sublinear_tf=True,
        preprocessor=clean_for_keywords,
        token_pattern=TOKEN_PATTERN,
        stop_words=sorted(stop_words(None)),
        min_df=min_df,
        max_features=max_features,
    )


def post_keywords(texts: Sequence[str], per_post: int = 5) -> list[tuple[str, ...]]:
    """Each text's `per_post` highest TF-IDF terms (keywords.keywords_per_text with the stop
    words of en and pt): what the analysis pass would have stored for a post not analysed yet."""
    from domain.analytics.keywords import keywords_per_text

    return [tuple(words) for words in keywords_per_text(texts, None, per_post)]


def cluster_texts(
    texts: Sequence[str],
    n_clusters: int | None = None,
    max_clusters: int = 20,
    label_terms: int = 3,
    min_size: int = 3,
    random_state: int = 0,
) -> list[Cluster]:
    """Clusters of similar texts: TF-IDF (terms in >= 2 texts) + MiniBatchKMeans.

    k defaults to clamp(round(sqrt(n / 5)), 2, max_clusters). Texts without any kept term
    belong to no cluster; clusters smaller than `min_size` are dropped. A cluster is labelled
    by its centroid's `label_terms` heaviest terms."""
    from sklearn.cluster import MiniBatchKMeans

    keep = [i for i, t in enumerate(texts) if t.strip()]
    if len(keep) < max(2, min_size):
        return []
    vectorizer = _vectorizer(min_df=2, max_features=20_000)
    try:
        matrix = vectorizer.fit_transform([texts[i] for i in keep]).tocsr()
    except ValueError:
        return []
    nonzero = np.asarray(matrix.getnnz(axis=1)).ravel() > 0
    rows = np.flatnonzero(nonzero)
    if len(rows) < max(2, min_size):
        return []
    matrix = matrix[rows]
    k = n_clusters or min(max_clusters, max(2, round(math.sqrt(len(rows) / 5))))
    k = min(k, len(rows))
    model = MiniBatchKMeans(n_clusters=k, random_state=random_state, n_init=1, batch_size=1024).fit(
        matrix
    )
    terms = vectorizer.get_feature_names_out()
    members: dict[int, list[int]] = defaultdict(list)
    for row, label in zip(rows, model.labels_, strict=True):
        members[int(label)].append(keep[int(row)])
    clusters: list[Cluster] = []
    seen: set[str] = set()
    for label in sorted(members):
        if len(members[label]) < min_size:
            continue
        centre = model.cluster_centers_[label]
        top = [int(i) for i in np.argsort(-centre, kind="stable")[:label_terms] if centre[i] > 0]
        names = tuple(str(terms[i]) for i in top)
        if not names:
            continue
        key = "+".join(sorted(names))
        if key in seen:  # two clusters with the same top terms: keep the first
            continue
        seen.add(key)
        clusters.append(Cluster(" ".join(names), key, names, tuple(members[label])))
    return clusters
