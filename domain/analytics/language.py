"""Language detection for posts and comments (pure, offline).

`detect_language(text)` returns "en", "pt", "es" or "und". It uses py3langid (a maintained fork
of langid.py whose naive-Bayes model ships inside the wheel) restricted to a set of common
languages, so that e.g. French or Italian text comes out as "und" instead of being forced into
one of the three supported languages, while the restriction keeps short tweets from drifting
into rare look-alikes (Galician, Latin, ...). URLs, @mentions and hash signs are removed first:
they carry no language and make short texts look English. Mostly upper-case texts are lower-cased
(the model misreads shouted Portuguese tweets otherwise).
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
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
    letters = _LETTER.findall(cleaned)
    if len(letters) < MIN_LETTERS:
        return UNDETERMINED
    if sum(c.isupper() for c in letters) * 2 > len(letters):
        cleaned = cleaned.lower()  # shouted tweets: the model was trained on mostly lower case
    lang, confidence = _identifier().classify(cleaned)
    if lang not in SUPPORTED or confidence < MIN_CONFIDENCE:
        return UNDETERMINED
    return str(lang)


def detect_languages(texts: Iterable[str]) -> list[str]:
    """`detect_language` over a batch (the form the analytics jobs call)."""
    return [detect_language(t) for t in texts]


@dataclass
class LanguageReport:
    n: int
    accuracy: float  # share of texts detected as the expected language
    counts: dict[str, int]  # detected language -> texts, most common first
    texts_per_s: float  # per core: texts / CPU seconds of this single-threaded process
    wall_texts_per_s: float


def evaluate_language(texts: Sequence[str], expected: str) -> LanguageReport:
    """Detect every text (all known to be in `expected`) and count how often we agree."""
    detect_language("warm up")  # loads the model outside the timing
    start, cpu_start = time.perf_counter(), time.process_time()
    detected = detect_languages(texts)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    counts = Counter(detected)
    return LanguageReport(
        n=len(texts),
        accuracy=counts[expected] / len(texts) if texts else 0.0,
        counts=dict(counts.most_common()),
        texts_per_s=len(texts) / cpu if cpu > 0 else float("inf"),
        wall_texts_per_s=len(texts) / elapsed if elapsed > 0 else float("inf"),
    )
