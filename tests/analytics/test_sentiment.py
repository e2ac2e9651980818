from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from api.cli import app
from domain.analytics.sentiment import (
    LABELS,
    PriorShiftClassifier,
    SentimentModel,
    analyze_sentiment,
    artifact_paths,
    normalize_tweet,
    sentiment_model,
    shift_proba,
    supports,
)
from domain.analytics.training import (
    CONFIGS,
    choose_offsets,
    cross_validate,
    load_training_data,
)

DATA = Path(__file__).parent / "data" / "sentiment"  # a slice of the shared data

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
        assert meta["version"] == "v2" and meta["lang"] == lang
        assert meta["training"]["files"] and all(
            len(f["sha256"]) == 64 for f in meta["training"]["files"]
        )
        assert 0 <= meta["evaluation"]["macro_f1"] <= 1
        # chosen by cross-validation on the train split only; val is scored, never trained on
        assert meta["cross_validation"]["folds"] == 5
        assert 0 <= meta["cross_validation"]["macro_f1"] <= 1
        assert not any("_val_" in f["file"] for f in meta["training"]["files"])


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


@pytest.mark.slow
def test_train_is_deterministic(tmp_path: Path) -> None:
    """Two separate processes (different string hash seeds) write byte-identical files."""
    outputs = []
    for run, hash_seed in (("a", "1"), ("b", "2")):
        out = tmp_path / run
        args = ["train", "sentiment", "--lang", "en", "--limit", "300", "--out-dir", str(out)]
        args += ["--data-dir", str(DATA)]
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        result = subprocess.run(
            [sys.executable, "-m", "api.cli", *args], env=env, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        outputs.append(_digest(out))
    assert outputs[0] == outputs[1]
    assert set(outputs[0]) == {"sentiment-en-v2.joblib", "sentiment-en-v2.json"}
    meta = json.loads((tmp_path / "a" / "sentiment-en-v2.json").read_text())
    assert meta["training"]["rows"] == 300 and meta["training"]["limit"] == 300
    # the trained artifact is usable through the eval command
    text, labels = _labeled_files(tmp_path)
    model = tmp_path / "a" / "sentiment-en-v2.joblib"
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


def test_shift_proba_moves_the_decision_and_keeps_distributions() -> None:
    proba = np.array([[0.40, 0.35, 0.25], [0.2, 0.3, 0.5]])
    shifted = shift_proba(proba, (-0.3, 0.0, 0.0))  # less negative: row 0 becomes neutral
    assert shifted.argmax(axis=1).tolist() == [1, 2]
    assert np.allclose(shifted.sum(axis=1), 1.0)
    assert np.allclose(shift_proba(proba, (0.0, 0.0, 0.0)), proba)
    # exp(-0.3) * 0.40 / (exp(-0.3) * 0.40 + 0.35 + 0.25), = 0.2963 / 0.8963 = 0.3306
    assert shifted[0, 0] == pytest.approx(0.3306, abs=1e-4)


def test_choose_offsets_recovers_an_under_predicted_class() -> None:
    # neutral rows whose neutral probability is always a little too low
    proba = np.array([[0.45, 0.40, 0.15]] * 4 + [[0.9, 0.05, 0.05]] * 4 + [[0.1, 0.1, 0.8]] * 4)
    labels = np.array([1] * 4 + [0] * 4 + [2] * 4)
    neg, neu, pos = choose_offsets(proba, labels)
    assert neu == 0.0 and neg < 0  # negative made less likely, the smallest shift that works
    assert (shift_proba(proba, (neg, neu, pos)).argmax(axis=1) == labels).all()
    assert choose_offsets(np.eye(3), np.arange(3)) == (0.0, 0.0, 0.0)  # nothing to fix


def test_prior_shift_classifier_wraps_an_estimator() -> None:
    from sklearn.linear_model import LogisticRegression

    x = np.array([[0.0], [0.1], [1.0], [1.1], [2.0], [2.1]])
    y = np.array([0, 0, 1, 1, 2, 2])
    plain = PriorShiftClassifier(LogisticRegression()).fit(x, y)
    shifted = PriorShiftClassifier(LogisticRegression(), (0.0, 0.0, 5.0)).fit(x, y)
    assert plain.predict(x).tolist() == y.tolist()
    assert shifted.predict(np.array([[1.0]])).tolist() == [2]  # a large prior for positive
    assert np.allclose(plain.predict_proba(x), plain.estimator.predict_proba(x))


def test_cross_validation_scores_in_domain_rows_only() -> None:
    data = load_training_data(DATA, "pt", extra_weight=0.2).head(400 + 50)
    assert data.in_domain == 400 and len(data.texts) == 450  # 50 tweets_mg rows after them
    assert load_training_data(DATA, "pt", extra_weight=0.0).in_domain == 400
    result = cross_validate(CONFIGS["pt"], data, folds=3)
    assert result.proba.shape == (400, 3) and len(result.labels) == 400
    assert np.allclose(result.proba.sum(axis=1), 1.0)
    assert 0.0 <= result.macro_f1 <= 1.0 and 0.0 <= result.macro_f1_shifted <= 1.0
    assert result.log_offsets[1] == 0.0


def test_eval_sentiment_cv_command_reads_no_val_split(tmp_path: Path) -> None:
    # a data dir holding only the pt train split: the CV command must not need anything else
    (tmp_path / "pt").mkdir()
    for name in ("tweetsentbr_train_text.txt", "tweetsentbr_train_labels.txt"):
        lines = (DATA / "pt" / name).read_text().splitlines()[:150]
        (tmp_path / "pt" / name).write_text("\n".join(lines))
    args = ["eval", "sentiment-cv", "--lang", "pt", "--data-dir", str(tmp_path), "--folds", "2"]
    result = runner.invoke(app, [*args, "--c", "2"])
    assert result.exit_code == 0, result.output
    last = result.output.strip().splitlines()[-1].split()
    fields = dict(kv.split("=") for kv in last[1:])
    assert last[0] == "RESULT" and fields["rows"] == "150" and fields["extra_rows"] == "0"
    assert 0.0 <= float(fields["macro_f1"]) <= 1.0
    assert "C=2.0" in result.output
