from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app
from domain.analytics.sentiment import (
    LABELS,
    SentimentModel,
    analyze_sentiment,
    artifact_paths,
    normalize_tweet,
    sentiment_model,
    supports,
)

runner = CliRunner()

EN_POS = "I love this so much, best concert of my life! Thank you all 😍"
EN_NEG = "This is the worst service ever, I hate waiting for hours. Terrible."
PT_POS = "Que programa maravilhoso, adorei tudo! Parabéns a todos ❤️"
PT_NEG = "Que vergonha, pior episódio de todos, estou com muita raiva e decepcionado"


def test_shipped_artifacts_have_metadata() -> None:
    for lang in ("en", "pt"):
        model_path, meta_path = artifact_paths(lang)
        assert model_path.exists() and meta_path.exists()
        assert model_path.stat().st_size < 10_000_000
        meta = json.loads(meta_path.read_text())
        assert meta["version"] == "v1" and meta["lang"] == lang
        assert meta["training"]["files"] and all(
            len(f["sha256"]) == 64 for f in meta["training"]["files"]
        )
        assert 0 <= meta["evaluation"]["macro_f1"] <= 1


@pytest.mark.parametrize(
    ("lang", "text", "label"),
    [
        ("en", EN_POS, "positive"),
        ("en", EN_NEG, "negative"),
        ("pt", PT_POS, "positive"),
        ("pt-BR", PT_NEG, "negative"),
    ],
)
def test_obvious_cases(lang: str, text: str, label: str) -> None:
    [result] = sentiment_model.predict([text], lang)
    assert result.label == label
    assert (result.score > 0) if label == "positive" else (result.score < 0)


def test_scores_and_confidence_in_range() -> None:
    texts = [EN_POS, EN_NEG, "the bus leaves at 9", "", "@user https://t.co/x", "meh"]
    for lang in ("en", "pt"):
        results = sentiment_model.predict(texts, lang)
        assert len(results) == len(texts)
        for r in results:
            assert r.label in LABELS
            assert -1.0 <= r.score <= 1.0
            assert 0.0 <= r.confidence <= 1.0
            assert r.confidence >= 1 / 3  # the predicted label is the most probable one
    assert sentiment_model.predict([], "en") == []


def test_loaded_once_per_process() -> None:
    assert sentiment_model.model("en") is sentiment_model.model("en")
    assert sentiment_model.model("pt") is sentiment_model.model("pt-BR")


def test_language_support() -> None:
    assert supports("en") and supports("pt-BR") and not supports("es") and not supports("und")
    with pytest.raises(ValueError):
        SentimentModel().predict(["hola"], "es")


def test_normalize_tweet() -> None:
    text = r"@bob this is NOT good\u002c sooooo bad https://x.co/1 . but fine"
    assert normalize_tweet(text, "en") == "@user this is not good_neg , soo bad url . but fine"
    assert normalize_tweet("não gostei nada, ok", "pt") == "não gostei_neg nada , ok"


def _labeled_files(tmp_path: Path) -> tuple[Path, Path]:
    text = tmp_path / "text.txt"
    labels = tmp_path / "labels.txt"
    text.write_text(
        f"{EN_POS}\n{EN_NEG}\nThe meeting is on Tuesday at noon.\n{EN_NEG}"
    )  # no final newline
    labels.write_text("2\n0\n1\n0")
    return text, labels


def test_eval_command_on_tiny_file(tmp_path: Path) -> None:
    text, labels = _labeled_files(tmp_path)
    result = runner.invoke(app, ["eval", "sentiment", str(text), str(labels), "--lang", "en"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert "negative=" in result.output and "accuracy=" in result.output
    last = lines[-1].split()
    assert last[0] == "RESULT" and last[1] == "lang=en"
    fields = dict(kv.split("=") for kv in last[1:])
    assert 0.0 <= float(fields["macro_f1"]) <= 1.0 and float(fields["texts_per_s"]) > 0


@pytest.mark.parametrize(("baseline", "lang"), [("vader", "en"), ("leia", "pt")])
def test_eval_lexicon_baselines(tmp_path: Path, baseline: str, lang: str) -> None:
    text, labels = _labeled_files(tmp_path)
    args = ["eval", "sentiment", str(text), str(labels), "--lang", lang, "--baseline", baseline]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1].startswith(f"RESULT lang={lang} macro_f1=")


def test_eval_rejects_mismatched_files(tmp_path: Path) -> None:
    text, labels = _labeled_files(tmp_path)
    labels.write_text("2\n0")
    result = runner.invoke(app, ["eval", "sentiment", str(text), str(labels), "--lang", "en"])
    assert result.exit_code != 0


def _digest(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


def test_train_is_deterministic(tmp_path: Path) -> None:
    """Two separate processes (different string hash seeds) write byte-identical files."""
    outputs = []
    for run, hash_seed in (("a", "1"), ("b", "2")):
        out = tmp_path / run
        data = Path(__file__).parent / "data" / "sentiment"  # a slice of the shared data
        args = ["train", "sentiment", "--lang", "en", "--limit", "300", "--out-dir", str(out)]
        args += ["--data-dir", str(data)]
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        result = subprocess.run(
            [sys.executable, "-m", "api.cli", *args], env=env, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        outputs.append(_digest(out))
    assert outputs[0] == outputs[1]
    assert set(outputs[0]) == {"sentiment-en-v1.joblib", "sentiment-en-v1.json"}
    meta = json.loads((tmp_path / "a" / "sentiment-en-v1.json").read_text())
    assert meta["training"]["rows"] == 300 and meta["training"]["limit"] == 300
    # the trained artifact is usable through the eval command
    text, labels = _labeled_files(tmp_path)
    model = tmp_path / "a" / "sentiment-en-v1.joblib"
    args = ["eval", "sentiment", str(text), str(labels), "--lang", "en", "--model", str(model)]
    assert runner.invoke(app, args).exit_code == 0


def test_analyze_sentiment_detects_language_and_keeps_order() -> None:
    texts = [EN_NEG, PT_POS, "No puedo creer lo que pasó en el partido de ayer, qué vergüenza", ""]
    results = analyze_sentiment(texts)
    assert [r.lang for r in results] == ["en", "pt", "es", "und"]
    assert results[0].sentiment is not None and results[0].sentiment.label == "negative"
    assert results[1].sentiment is not None and results[1].sentiment.label == "positive"
    assert results[2].sentiment is None and results[3].sentiment is None
    # known languages skip detection, and match what predict() gives
    [given] = analyze_sentiment([PT_NEG], langs=["pt"])
    assert given.sentiment == sentiment_model.predict([PT_NEG], "pt")[0]
    with pytest.raises(ValueError):
        analyze_sentiment([EN_POS], langs=[])
