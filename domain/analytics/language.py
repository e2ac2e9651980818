"""Language detection for posts and comments (pure, offline).

`detect_language(text)` returns "en", "pt", "es" or "und". It uses py3langid (a maintained fork
of langid.py whose naive-Bayes model ships inside the wheel) restricted to a set of common
languages, so that e.g. French or Italian text comes out as "und" instead of being forced into
one of the three supported languages, while the restriction keeps short tweets from drifting
into rare look-alikes (Galician, Latin, ...). URLs, @mentions and hash signs are removed first:
they carry no language and make short texts look English.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from py3langid.langid import LanguageIdentifier

SUPPORTED: tuple[str, ...] = ("en", "pt", "es")
UNDETERMINED = "und"
# Candidates the classifier chooses among; anything not in SUPPORTED becomes "und".
CANDIDATES: tuple[str, ...] = (*SUPPORTED, "fr", "it", "de", "nl", "id", "tr", "ru", "ar", "ja")
# Below this many letters there is too little evidence for a decision.
MIN_LETTERS = 3
# Below this normalised probability (over CANDIDATES) we answer "und".
MIN_CONFIDENCE = 0.3

_NOISE = re.compile(r"https?://\S+|www\.\S+|[@\uff20]\w+|#")
_LETTER = re.compile(r"[^\W\d_]")


@lru_cache(maxsize=1)
def _identifier() -> LanguageIdentifier:
    """Load the model once per process (about 0.3 s), on first use."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages(list(CANDIDATES))
    return identifier


def clean_for_detection(text: str) -> str:
    """Text without URLs, @mentions and '#' (hashtag words are kept)."""
    return _NOISE.sub(" ", text)


def detect_language(text: str) -> str:
    """ISO 639-1 code of `text` among SUPPORTED, or "und" (too short, other language, unsure)."""
    cleaned = clean_for_detection(text)
    if len(_LETTER.findall(cleaned)) < MIN_LETTERS:
        return UNDETERMINED
    lang, confidence = _identifier().classify(cleaned)
    if lang not in SUPPORTED or confidence < MIN_CONFIDENCE:
        return UNDETERMINED
    return str(lang)


def detect_languages(texts: Iterable[str]) -> list[str]:
    """`detect_language` over a batch (the form the analytics jobs call)."""
    return [detect_language(t) for t in texts]
