from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest

from domain.analytics.language import detect_language, detect_languages
from domain.analytics.training import read_lines


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I can't believe how good this new phone is, totally worth it!", "en"),
        ("@user the game last night was a disaster, worst defense ever https://t.co/x", "en"),
        (
            "Que gafe do programa hoje, não acredito que mostraram aquela cena #VideoShowAoVivo",
            "pt",
        ),
        ("Estou muito feliz com o resultado, obrigado a todos pelo apoio!", "pt"),
        ("No puedo creer lo que pasó en el partido de ayer, qué vergüenza", "es"),
        ("Muchas gracias a todos por venir, fue una noche increíble", "es"),
        ("", "und"),
        ("https://t.co/abc @user #", "und"),
        ("😂😂😂 !!!", "und"),
        ("Je ne sais pas pourquoi il est parti si tôt ce soir avec ses amis", "und"),
    ],
)
def test_hand_checked_texts(text: str, expected: str) -> None:
    assert detect_language(text) == expected


def test_batch_form_matches_single() -> None:
    texts = ["good morning everyone", "bom dia a todos vocês", "buenos días a todos ustedes"]
    assert detect_languages(texts) == [detect_language(t) for t in texts]


# A slice of the shared data, in the project (see its README), so any clone can run this.
FIXTURES = Path(__file__).parent / "data" / "sentiment"


def test_accuracy_on_shared_tweets() -> None:
    """The en files are English and the pt files Portuguese (full-set figures in
    docs/analytics.md; here on the project's slice of the same files)."""
    en = [
        t
        for name in ("semeval_train", "semeval_val", "tweeteval_val")
        for t in read_lines(FIXTURES / "en" / f"{name}_text.txt")
    ]
    pt = [
        t
        for name in ("tweetsentbr_train", "tweetsentbr_val")
        for t in read_lines(FIXTURES / "pt" / f"{name}_text.txt")
    ]
    with (FIXTURES / "pt" / "tweets_mg.csv").open(encoding="utf-8", newline="") as f:
        pt += [row["text"] for row in csv.DictReader(f)]
    en_counts, pt_counts = Counter(detect_languages(en)), Counter(detect_languages(pt))
    assert en_counts["en"] / len(en) >= 0.99
    assert pt_counts["pt"] / len(pt) >= 0.93


def test_eval_language_command(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from api.cli import app

    f = tmp_path / "pt.txt"
    f.write_text("Estou muito feliz com o resultado de hoje\nQue vergonha esse jogo, não acredito")
    result = CliRunner().invoke(app, ["eval", "language", str(f), "--expect", "pt"])
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1].startswith("RESULT lang=pt accuracy=1.0000 ")
