"""Sentiment of posts and comments, English and Brazilian Portuguese (pure, offline, CPU).

One scikit-learn pipeline per language, trained by `trendscope train sentiment`
(domain/analytics/training.py) and shipped in domain/analytics/artifacts/:

    raw text -> TweetPreprocessor (escapes, URLs, @user, elongation, negation marking)
             -> TF-IDF word 1-2-grams + TF-IDF char_wb 2-5-grams
       (en)  + VADER lexicon scores of the raw text (LexiconFeatures)
       (pt)  + LeIA lexicon scores of the raw text
             -> multinomial LogisticRegression (class-balanced)
             -> PriorShiftClassifier: class log-prior offsets chosen by cross-validation
                (pt: positive -0.2; en: none)

`Sentiment.score` is P(positive) - P(negative) in [-1, 1]; `confidence` is the probability of
the predicted label. The lead wires this into jobs via the module-level `sentiment_model`,
which loads each language's artifact once per process, on first use.
"""

from __future__ import annotations

import html
import json
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import sklearn
import structlog
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin

LABELS: tuple[str, str, str] = ("negative", "neutral", "positive")  # label ids 0, 1, 2
Label = Literal["negative", "neutral", "positive"]
LANGUAGES: tuple[str, ...] = ("en", "pt")
_LANG_ALIASES = {"en": "en", "en-us": "en", "en-gb": "en", "pt": "pt", "pt-br": "pt"}
MODEL_VERSION = "v2"
ARTIFACTS_DIR = Path(__file__).resolve().parent / "artifacts"


@dataclass(frozen=True, slots=True)
class Sentiment:
    label: Label
    score: float  # P(positive) - P(negative), in [-1, 1]
    confidence: float  # probability of `label`, in [0, 1]


def normalize_lang(lang: str) -> str:
    """'en' / 'pt' for the languages we have a model for (accepts 'pt-BR', 'EN', ...)."""
    key = _LANG_ALIASES.get(lang.strip().lower())
    if key is None:
        raise ValueError(f"no sentiment model for language {lang!r} (have: {LANGUAGES})")
    return key


def supports(lang: str) -> bool:
    return lang.strip().lower() in _LANG_ALIASES


# --- text normalisation -------------------------------------------------------------------

_ESCAPED = re.compile(r"\\u([0-9a-fA-F]{4})")  # the shared en files hold literal "\u2019"
_URL = re.compile(r"https?://\S+|www\.\S+")
_USER = re.compile(r"@\w+")
_ELONGATED = re.compile(r"(\w)\1{2,}")  # "soooo" -> "soo"
_TOKEN = re.compile(r"@user|[\w']+|[^\w\s]")
_CLAUSE_END = frozenset(".,!?;:")
_NEGATORS = {
    "en": re.compile(
        r"(?:not|no|never|nothing|nobody|none|nor|cannot|without|\w+n't|dont|cant|wont|isnt"
        r"|didnt|doesnt)"
    ),
    "pt": re.compile(r"(?:não|nao|nunca|nem|nada|ninguém|ninguem|jamais|sem)"),
}


def unescape(text: str) -> str:
    """Undo literal \\uXXXX escapes and HTML entities; curly apostrophes become straight."""
    text = _ESCAPED.sub(lambda m: chr(int(m.group(1), 16)), text)
    return html.unescape(text).replace("\u2019", "'")


def normalize_tweet(text: str, lang: str) -> str:
    """Lower-cased tokens separated by spaces; URLs -> 'url', mentions -> '@user', emoji kept
    as tokens, elongations shortened, and tokens after a negator up to the end of the clause
    suffixed with '_neg' ("not good" -> "not good_neg")."""
    text = unicodedata.normalize("NFC", unescape(text))
    text = _URL.sub(" url ", text)
    text = _USER.sub(" @user ", text)
    text = _ELONGATED.sub(r"\1\1", text).lower()
    negator = _NEGATORS[lang]
    out: list[str] = []
    negated = False
    for tok in _TOKEN.findall(text):
        if tok in _CLAUSE_END:
            negated = False
            out.append(tok)
        elif negator.fullmatch(tok):
            negated = True
            out.append(tok)
        else:
            out.append(tok + "_neg" if negated else tok)
    return " ".join(out)


# --- pipeline pieces (pickled by reference inside the artifacts) ----------------------------


class TweetPreprocessor(TransformerMixin, BaseEstimator):
    """sklearn transformer: raw texts -> normalised token strings."""

    def __init__(self, lang: str = "en") -> None:
        self.lang = lang

    def fit(self, texts: Sequence[str], y: Any = None) -> TweetPreprocessor:
        return self

    def transform(self, texts: Sequence[str]) -> list[str]:
        return [normalize_tweet(t, self.lang) for t in texts]


@lru_cache(maxsize=2)
def _lexicon_analyzer(name: str) -> Any:
    if name == "vader":
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        return SentimentIntensityAnalyzer()
    if name == "leia":
        from LeIA import SentimentIntensityAnalyzer as LeiaAnalyzer

        return LeiaAnalyzer()
    raise ValueError(f"unknown lexicon {name!r}")


def lexicon_scores(texts: Sequence[str], lexicon: str) -> np.ndarray:
    """(n, 4) array of the lexicon's compound, pos, neg, neu scores of the unescaped texts."""
    analyzer = _lexicon_analyzer(lexicon)
    rows = []
    for t in texts:
        s = analyzer.polarity_scores(unescape(t))
        rows.append((s["compound"], s["pos"], s["neg"], s["neu"]))
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), 4)


class LexiconFeatures(TransformerMixin, BaseEstimator):
    """sklearn transformer: raw texts -> weighted lexicon scores (sparse, to join TF-IDF).
    The analyzer itself is not pickled: it comes from its PyPI package at load time."""

    def __init__(self, lexicon: str = "vader", weight: float = 1.0) -> None:
        self.lexicon = lexicon
        self.weight = weight

    def fit(self, texts: Sequence[str], y: Any = None) -> LexiconFeatures:
        return self

    def transform(self, texts: Sequence[str]) -> Any:
        from scipy.sparse import csr_matrix

        return csr_matrix(lexicon_scores(texts, self.lexicon) * self.weight)


class PriorShiftClassifier(ClassifierMixin, BaseEstimator):
    """A probabilistic classifier whose class log-probabilities get fixed offsets, then are
    renormalised: a prior shift. Training (training.py) chooses the offsets on out-of-fold
    predictions of the training pool to maximise macro-F1 (the classes' decision thresholds),
    so a class the classifier under-predicts (neutral, in our data) gets its share back."""

    def __init__(self, estimator: Any = None, log_offsets: Sequence[float] = (0.0, 0.0, 0.0)):
        self.estimator = estimator
        self.log_offsets = log_offsets

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> PriorShiftClassifier:
        self.estimator.fit(X, y, sample_weight=sample_weight)
        self.classes_ = self.estimator.classes_
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        return shift_proba(self.estimator.predict_proba(X), self.log_offsets)

    def predict(self, X: Any) -> np.ndarray:
        return np.asarray(self.classes_)[self.predict_proba(X).argmax(axis=1)]


def shift_proba(proba: np.ndarray, log_offsets: Sequence[float]) -> np.ndarray:
    """Rows of class probabilities, each multiplied by exp(offset) and renormalised."""
    logits = np.log(np.clip(proba, 1e-12, None)) + np.asarray(log_offsets, dtype=np.float64)
    logits -= logits.max(axis=1, keepdims=True)
    out = np.exp(logits)
    return np.asarray(out / out.sum(axis=1, keepdims=True))


# --- the model ------------------------------------------------------------------------------


def artifact_paths(
    lang: str, version: str = MODEL_VERSION, directory: Path = ARTIFACTS_DIR
) -> tuple[Path, Path]:
    """(model .joblib, metadata .json) of one language's artifact."""
    stem = f"sentiment-{normalize_lang(lang)}-{version}"
    return directory / f"{stem}.joblib", directory / f"{stem}.json"


def sentiments_from_proba(proba: np.ndarray) -> list[Sentiment]:
    """Rows of P(negative), P(neutral), P(positive) -> Sentiment values."""
    out = []
    for p_neg, p_neu, p_pos in proba.tolist():
        probs = (p_neg, p_neu, p_pos)
        i = max(range(3), key=probs.__getitem__)
        score = min(1.0, max(-1.0, p_pos - p_neg))
        out.append(Sentiment(LABELS[i], score, min(1.0, max(0.0, probs[i]))))  # type: ignore[arg-type]
    return out


class LanguageModel:
    """One language's fitted pipeline (predict_proba over raw texts, classes 0/1/2)."""

    def __init__(self, pipeline: Any, metadata: dict[str, Any] | None = None) -> None:
        self.pipeline = pipeline
        self.metadata = metadata or {}

    @classmethod
    def load(cls, model_path: Path) -> LanguageModel:
        import joblib

        meta_path = model_path.with_suffix(".json")
        metadata = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        trained_with = metadata.get("sklearn_version")
        if trained_with and trained_with != sklearn.__version__:
            # Pickles are only guaranteed for the version that wrote them: retrain
            # (`trendscope train sentiment`) after upgrading scikit-learn.
            structlog.get_logger(__name__).warning(
                "sentiment model trained with another scikit-learn",
                model=str(model_path),
                trained_with=trained_with,
                installed=sklearn.__version__,
            )
        return cls(joblib.load(model_path), metadata)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 3))
        proba = np.asarray(self.pipeline.predict_proba(list(texts)))
        classes = list(self.pipeline.classes_)
        if classes != [0, 1, 2]:  # defensive: order columns by label id
            proba = proba[:, [classes.index(c) for c in (0, 1, 2)]]
        return proba

    def predict(self, texts: Sequence[str]) -> list[Sentiment]:
        return sentiments_from_proba(self.predict_proba(texts))


class SentimentModel:
    """Per-language sentiment models, each loaded from its artifact once, on first use."""

    def __init__(self, directory: Path = ARTIFACTS_DIR, version: str = MODEL_VERSION) -> None:
        self.directory = directory
        self.version = version
        self._models: dict[str, LanguageModel] = {}

    def model(self, lang: str) -> LanguageModel:
        key = normalize_lang(lang)
        if key not in self._models:
            path, _ = artifact_paths(key, self.version, self.directory)
            self._models[key] = LanguageModel.load(path)
        return self._models[key]

    def predict(self, texts: Sequence[str], lang: str) -> list[Sentiment]:
        """Sentiment of each text, in order. `lang` is 'en' or 'pt' ('pt-BR' accepted);
        check `supports(lang)` first for texts in other languages."""
        return self.model(lang).predict(texts)


sentiment_model = SentimentModel()


@dataclass(frozen=True, slots=True)
class TextSentiment:
    lang: str  # detect_language's answer: "en", "pt", "es" or "und"
    sentiment: Sentiment | None  # None when we have no model for `lang`


def analyze_sentiment(
    texts: Sequence[str],
    langs: Sequence[str] | None = None,
    model: SentimentModel = sentiment_model,
) -> list[TextSentiment]:
    """Language and sentiment of each text, in order: what an analytics job stores per post or
    comment. Texts are grouped per language so each model sees one batch. `langs` skips
    detection when the languages are already known."""
    from domain.analytics.language import detect_languages

    langs = list(langs) if langs is not None else detect_languages(texts)
    if len(langs) != len(texts):
        raise ValueError("texts and langs differ in length")
    results: list[Sentiment | None] = [None] * len(texts)
    for lang in sorted(set(langs)):
        if not supports(lang):
            continue
        idx = [i for i, one in enumerate(langs) if one == lang]
        for i, sentiment in zip(idx, model.predict([texts[i] for i in idx], lang), strict=True):
            results[i] = sentiment
    return [TextSentiment(lang, s) for lang, s in zip(langs, results, strict=True)]
