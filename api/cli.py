"""The `trendscope` command."""

from __future__ import annotations

import asyncio
import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import httpx
import typer

from core.settings import Settings, get_settings

app = typer.Typer(help="Trendscope: social-media trend and influencer intelligence API.")
tenants_app = typer.Typer(help="Tenant registry.")
app.add_typer(tenants_app, name="tenants")
train_app = typer.Typer(help="Train the analytics models (artifacts go into the package).")
app.add_typer(train_app, name="train")
eval_app = typer.Typer(help="Evaluate the analytics models on labeled files.")
app.add_typer(eval_app, name="eval")

T = TypeVar("T")


def _with_db(fn: Callable[[Settings], Awaitable[T]]) -> T:
    """Run `fn` with the database initialised (and closed afterwards)."""
    from core.logging import configure_logging
    from tenants.db import close_db, init_db

    settings = get_settings()
    configure_logging(settings)

    async def run() -> T:
        from core.runtime import runtime

        await init_db(settings)
        if settings.redis_url:  # so that events and jobs of CLI work reach the workers
            await runtime.connect(settings)
        try:
            return await fn(settings)
        finally:
            await runtime.close()
            await close_db()

    return asyncio.run(run())


@app.command()
def api(
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes")] = 1,
    graceful_timeout: Annotated[
        int, typer.Option(help="seconds to let in-flight requests finish on SIGTERM")
    ] = 30,
    shutdown_delay: Annotated[
        float | None,
        typer.Option(
            help="seconds to keep serving with /readyz at 503 after SIGTERM "
            "(env SHUTDOWN_DELAY_SECONDS; default 0)"
        ),
    ] = None,
) -> None:
    """Serve the API (uvicorn + Starlette). SIGTERM: /readyz turns 503, then (after the
    shutdown delay) uvicorn stops accepting, drains in-flight requests and runs the lifespan
    shutdown. Run one worker per container and scrape each one's /metrics."""
    import uvicorn

    if shutdown_delay is not None:  # read by create_app() in every worker process
        os.environ["SHUTDOWN_DELAY_SECONDS"] = str(shutdown_delay)
        get_settings.cache_clear()
    options = dict(
        factory=True,
        host=host,
        port=port,
        workers=workers,
        ws_per_message_deflate=False,  # ~40 KB per socket and 30-50 us/message (design.md)
        log_level="warning",
        log_config=None,  # uvicorn's lines go through core/logging.py's one format
        lifespan="on",
        timeout_graceful_shutdown=graceful_timeout,
    )
    from core.logging import configure_logging

    configure_logging(get_settings())
    if workers > 1:  # uvicorn's supervisor makes its own servers: sockets are closed 1012
        uvicorn.run("api.app:create_app", **options)  # type: ignore[arg-type]
        return

    class GracefulServer(uvicorn.Server):
        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            from api.graphql.ws import close_all_sockets

            await close_all_sockets()  # 1001 "going away", before uvicorn's own 1012
            await super().shutdown(sockets)

    config = uvicorn.Config("api.app:create_app", **options)  # type: ignore[arg-type]
    GracefulServer(config).run()


@app.command()
def worker(
    metrics_port: Annotated[
        int | None, typer.Option(help="serve this worker's Prometheus /metrics on this port")
    ] = None,
) -> None:
    """Run the ARQ worker (I/O jobs: collection, cron)."""
    from arq.worker import Worker

    from jobs.worker import worker_settings

    if metrics_port is not None:
        from prometheus_client import start_http_server

        import core.metrics  # noqa: F401  (registers the job and pool metrics)

        start_http_server(metrics_port)
    Worker(**worker_settings()).run()


@app.command("analytics-worker")
def analytics_worker(
    processes: int = 1,
    threads: int = 2,
    metrics_port: Annotated[
        int | None,
        typer.Option(help="serve Dramatiq's Prometheus metrics on this port (off by default)"),
    ] = None,
    shutdown_timeout: Annotated[
        float,
        typer.Option(help="seconds a stopping worker waits for running jobs and broker acks"),
    ] = 600,
) -> None:
    """Run the Dramatiq worker (CPU-heavy analytics)."""
    if metrics_port is not None:
        # Dramatiq's own Prometheus middleware (core/broker.py): an exposition server forked by
        # the main process, fed by every worker process through a multiprocess directory.
        import tempfile

        os.environ["DRAMATIQ_METRICS_PORT"] = str(metrics_port)
        os.environ["dramatiq_prom_port"] = str(metrics_port)
        os.environ["dramatiq_prom_host"] = os.environ.get("dramatiq_prom_host", "0.0.0.0")
        os.environ["dramatiq_prom_db"] = tempfile.mkdtemp(prefix="trendscope-dramatiq-prom-")
    from dramatiq.cli import main as dramatiq_main
    from dramatiq.cli import make_argument_parser

    from core.logging import configure_logging

    # Dramatiq's CLI in this process, with our log format instead of its basicConfig (its
    # worker processes are forked and inherit it): one console for `trendscope up`.
    configure_logging(get_settings())
    args = ["jobs.actors", "--skip-logging", "--processes", str(processes)]
    args += ["--threads", str(threads), "--queues", "analytics"]
    args += ["--worker-shutdown-timeout", str(int(shutdown_timeout * 1000))]
    raise typer.Exit(dramatiq_main(make_argument_parser().parse_args(args)))


@app.command()
def migrate() -> None:
    """Migrate the public schema, then every tenant schema (idempotent)."""
    from tenants.migrate import migrate_all

    report = _with_db(lambda s: migrate_all())
    typer.echo(
        f"public: {len(report.public_applied)} applied; tenants: {report.tenants_migrated} "
        f"checked, {len(report.tenants_changed)} changed, {len(report.failures)} failed"
    )
    if report.failures:
        for schema, error in report.failures.items():
            typer.echo(f"  {schema}: {error}", err=True)
        raise typer.Exit(1)


@tenants_app.command("create")
def tenants_create(slug: str, name: Annotated[str, typer.Option()] = "") -> None:
    """Create a tenant (schema + tables). Owners are added with signUp."""
    from domain.accounts.rules import check_slug
    from tenants.provisioning import create_tenant

    if (problem := check_slug(slug)) is not None:
        typer.echo(f"invalid slug: {problem.message}", err=True)
        raise typer.Exit(2)
    tenant = _with_db(lambda s: create_tenant(slug, name or slug))
    typer.echo(f"created {tenant.slug} ({tenant.schema_name})")


@tenants_app.command("list")
def tenants_list() -> None:
    """List tenants."""
    from tenants.models import Tenant
    from tenants.tx import public_tx

    async def rows(_: Settings) -> list[Tenant]:
        async with public_tx():
            return await Tenant.all().order_by("id")

    for t in _with_db(rows):
        typer.echo(f"{t.slug}\t{t.schema_name}\t{t.plan}\t{t.name}")


@tenants_app.command("allow-query")
def tenants_allow_query(
    slug: str,
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    enforce: Annotated[
        bool | None,
        typer.Option(
            "--enforce/--no-enforce",
            help="also switch the tenant's allow-list mode on (only registered queries run) or off",
        ),
    ] = None,
) -> None:
    """Register FILE's GraphQL document as a persisted query SLUG may run; prints its hash."""
    from api.graphql.executable import schema
    from api.graphql.persisted import persisted_queries

    query = file.read_text()
    try:
        sha = _with_db(
            lambda s: persisted_queries.allow(slug, query, schema._schema, enforce=enforce)
        )
    except (ValueError, LookupError) as exc:
        typer.echo(str(exc).strip("'\""), err=True)
        raise typer.Exit(2) from exc
    typer.echo(sha)


@app.command("seed-demo")
def seed_demo(
    token_file: Annotated[Path | None, typer.Option(help="write an owner token here")] = None,
) -> None:
    """Create the demo tenant from the packaged real data (idempotent)."""
    from domain.demo.service import demo

    async def run(settings: Settings) -> str:
        created = await demo.seed(settings)
        typer.echo("demo tenant created" if created else "demo tenant already exists")
        return await demo.owner_token(settings)

    token = _with_db(run)
    if token_file is not None:
        token_file.parent.mkdir(parents=True, exist_ok=True)
        token_file.write_text(token + "\n")
        token_file.chmod(0o600)


@app.command("demo-token")
def demo_token(
    data_dir: Annotated[
        Path, typer.Option("--data-dir", help="where `up` keeps its embedded servers")
    ] = Path(".trendscope"),
) -> None:
    """Print a fresh 24-hour owner token for the demo tenant (and rewrite DATA_DIR/demo-token).
    Without DATABASE_URL it uses the embedded PostgreSQL a running `up` started there."""
    from api.embedded import PG_DATABASE, PG_USER, PORT_FILE
    from domain.demo.service import demo

    if not get_settings().database_url:
        port_file = data_dir / "pg" / PORT_FILE
        if not port_file.exists():
            typer.echo(f"no DATABASE_URL and no embedded PostgreSQL in {data_dir}", err=True)
            raise typer.Exit(2)
        port = port_file.read_text().strip()
        os.environ["DATABASE_URL"] = f"postgresql://{PG_USER}@127.0.0.1:{port}/{PG_DATABASE}"
        get_settings.cache_clear()
    token = _with_db(demo.owner_token)
    token_file = data_dir / "demo-token"
    if token_file.parent.exists():
        token_file.write_text(token + "\n")
        token_file.chmod(0o600)
    typer.echo(token)


@app.command("demo-replay")
def demo_replay(
    interval: float = 3.0, ticks: Annotated[int, typer.Option(help="0 = forever")] = 0
) -> None:
    """Import a few new demo posts every `interval` seconds (live activity for the demo)."""
    from domain.demo.service import demo

    async def run(settings: Settings) -> None:
        rng = random.Random()
        n = 0
        while ticks == 0 or n < ticks:
            await demo.replay_once(rng)
            n += 1
            await asyncio.sleep(interval)

    _with_db(run)


@app.command("export-schema")
def export_schema(path: Path = Path("schema/schema.graphql")) -> None:
    """Write the GraphQL SDL (checked in; a test keeps it current)."""
    from api.graphql.executable import sdl

    path.write_text(sdl())
    typer.echo(f"wrote {path}")


@app.command("schema-check")
def schema_check(
    against: Annotated[str, typer.Option(help="git ref whose schema/schema.graphql to compare")] = (
        "main"
    ),
    changelog: Annotated[
        Path, typer.Option(help="where intended breaking changes are acknowledged")
    ] = Path("docs/schema-changelog.md"),
    current: Annotated[
        Path | None, typer.Option(help="SDL file to check (default: the code's schema)")
    ] = None,
    against_file: Annotated[
        Path | None,
        typer.Option(help="released SDL to compare with instead of a git ref (CI: the release)"),
    ] = None,
) -> None:
    """Fail on breaking GraphQL schema changes against the released SDL (--against-file) or a
    git ref unless the changelog acknowledges them; dangerous changes are warnings
    (api/schema_check.py has the format)."""
    from api.schema_check import SchemaUnavailable, acknowledgement, check_schema, schema_at

    if against_file is not None:
        # No skipping here: without the released SDL the gate would pass by guarding nothing.
        if not against_file.is_file():
            typer.echo(f"schema-check: no released schema at {against_file}", err=True)
            raise typer.Exit(2)
        old_sdl, against = against_file.read_text(), str(against_file)
    else:
        try:
            old_sdl = schema_at(against)
        except SchemaUnavailable as exc:
            typer.echo(f"schema-check skipped: no schema at {against!r} ({exc})")
            return
    if current is not None:
        new_sdl = current.read_text()
    else:
        from api.graphql.executable import sdl

        new_sdl = sdl()
    report = check_schema(old_sdl, new_sdl, changelog.read_text() if changelog.exists() else "")
    for dangerous in report.dangerous:
        typer.echo(f"warning: {dangerous.type.name}: {dangerous.description}")
    for coordinate in report.removed_without_deprecation:
        typer.echo(f"warning: {coordinate} was removed without being deprecated on {against}")
    acknowledged = len(report.breaking) - len(report.unacknowledged)
    if report.unacknowledged:
        typer.echo(
            f"{len(report.unacknowledged)} unacknowledged breaking change(s) against {against}; "
            f"if intended, add these lines to {changelog}:",
            err=True,
        )
        for change in report.unacknowledged:
            typer.echo(acknowledgement(change), err=True)
        raise typer.Exit(1)
    typer.echo(
        f"schema-check against {against}: {acknowledged} acknowledged breaking, "
        f"{len(report.dangerous)} dangerous change(s)"
    )


@app.command("schema-release")
def schema_release(
    path: Annotated[Path, typer.Option(help="where the released SDL is kept")] = Path(
        "schema/released.graphql"
    ),
) -> None:
    """Record the code's SDL as released: what `schema-check --against-file` guards from now
    on (the release procedure is in docs/schema-changelog.md)."""
    from api.graphql.executable import sdl

    path.write_text(sdl())
    typer.echo(f"released the schema to {path}")


@app.command()
def up(
    port: int = 8000,
    data_dir: Annotated[Path, typer.Option("--data-dir")] = Path(".trendscope"),
    replay: Annotated[bool, typer.Option(help="replay demo posts every few seconds")] = True,
) -> None:
    """Run everything: embedded PostgreSQL/Redis when none is configured, migrations, the
    demo tenant, the API, both workers and the demo replay, restarting what crashes
    (api/supervisor.py). Ctrl-C stops it all."""
    from api.embedded import start_embedded
    from api.supervisor import Stop, Supervisor
    from core.logging import configure_logging

    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = get_settings()
    # The supervisor's and the embedded servers' lines in the children's format: one console.
    configure_logging(settings)
    embedded = start_embedded(
        data_dir,
        postgres=not settings.database_url,
        redis=not settings.redis_url,
        die_with_parent=True,
    )
    env = dict(os.environ)
    env["DATABASE_URL"] = settings.database_url or embedded.database_url or ""
    env["REDIS_URL"] = settings.redis_url or embedded.redis_url or ""
    env.setdefault("DATA_DIR", str(data_dir))
    if embedded.database_url or embedded.redis_url:
        typer.echo(f"embedded services: {embedded.database_url or '-'} {embedded.redis_url or '-'}")
    supervisor = Supervisor(env, embedded)
    supervisor.install_signal_handlers()
    try:
        supervisor.run_step("migrate")
        supervisor.run_step("seed-demo", "--token-file", str(data_dir / "demo-token"))
        api_child = supervisor.spawn("api", "api", "--port", str(port))
        supervisor.spawn("worker", "worker")
        # Bounded: when `up` dies, Redis stops together with the worker, and Dramatiq's
        # shutdown would retry its acks against the dead Redis for the default 10 minutes.
        supervisor.spawn("analytics-worker", "analytics-worker", "--shutdown-timeout", "10")
        assert api_child.popen is not None
        _wait_healthy(f"http://127.0.0.1:{port}/healthz", api_child.popen, timeout=60)
        if replay:
            supervisor.spawn("demo-replay", "demo-replay")
        typer.echo(f"GraphiQL:   http://127.0.0.1:{port}/graphql")
        typer.echo(
            f"Demo token: {data_dir / 'demo-token'} (tenant 'demo', valid 24 h; "
            f"a fresh one: trendscope demo-token --data-dir {data_dir})"
        )
        typer.echo("Ctrl-C to stop.")
        supervisor.run_forever()
    except (Stop, KeyboardInterrupt):
        pass
    finally:
        supervisor.stop()


@train_app.command("sentiment")
def train_sentiment(
    lang: Annotated[list[str] | None, typer.Option(help="en and/or pt (default: both)")] = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="default: ../shared/data/sentiment")
    ] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out-dir", help="default: domain/analytics/artifacts")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="use only the first N training rows")] = None,
) -> None:
    """Train the sentiment model(s) deterministically and write the versioned artifact(s)."""
    from domain.analytics.training import DEFAULT_DATA_DIR, train

    data_dir = data_dir or DEFAULT_DATA_DIR
    for one in lang or ["en", "pt"]:
        result = train(one, data_dir=data_dir, out_dir=out_dir, limit=limit)
        ev, cv = result.metadata["evaluation"], result.metadata["cross_validation"]
        typer.echo(
            f"{one}: {result.metadata['training']['rows']} training rows; "
            f"{cv['folds']}-fold CV macro_f1={cv['macro_f1']:.4f}; "
            f"{ev['split']} macro_f1={ev['macro_f1']:.4f}; wrote {result.model_path}"
        )


@eval_app.command("sentiment-cv")
def eval_sentiment_cv(
    lang: Annotated[str, typer.Option(help="en or pt")],
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="default: ../shared/data/sentiment")
    ] = None,
    extra_weight: Annotated[
        float | None, typer.Option(help="weight of the extra rows (0: not used)")
    ] = None,
    c: Annotated[float | None, typer.Option("--c", help="LogisticRegression C")] = None,
    lexicon_weight: Annotated[float | None, typer.Option()] = None,
    folds: int = 5,
) -> None:
    """Cross-validated macro-F1 of a configuration on the train split only (how CONFIGS were
    chosen; the val split is not read). Options override the shipped configuration."""
    from dataclasses import replace

    from domain.analytics.sentiment import normalize_lang
    from domain.analytics.training import (
        CONFIGS,
        DEFAULT_DATA_DIR,
        cross_validate,
        load_training_data,
    )

    lang = normalize_lang(lang)
    config = CONFIGS[lang]
    config = replace(
        config,
        extra_weight=config.extra_weight if extra_weight is None else extra_weight,
        C=config.C if c is None else c,
        lexicon_weight=config.lexicon_weight if lexicon_weight is None else lexicon_weight,
    )
    data = load_training_data((data_dir or DEFAULT_DATA_DIR).resolve(), lang, config.extra_weight)
    result = cross_validate(config, data, folds)
    typer.echo(f"config: {config}")
    typer.echo(
        f"RESULT lang={lang} folds={folds} rows={data.in_domain} "
        f"extra_rows={len(data.texts) - data.in_domain} macro_f1={result.macro_f1:.4f} "
        f"macro_f1_shifted_nested={result.macro_f1_shifted:.4f} "
        f"log_offsets={','.join(str(x) for x in result.log_offsets)}"
    )


@eval_app.command("sentiment")
def eval_sentiment(
    file_text: Path,
    file_labels: Path,
    lang: Annotated[str, typer.Option(help="en or pt")],
    baseline: Annotated[
        str | None, typer.Option(help="vader or leia: score the lexicon instead of the model")
    ] = None,
    model: Annotated[
        Path | None, typer.Option(help="a .joblib artifact (default: the shipped one)")
    ] = None,
) -> None:
    """Macro-F1, per-class F1, accuracy and throughput on a labeled file (labels 0/1/2)."""
    from domain.analytics.sentiment import LanguageModel, normalize_lang, sentiment_model
    from domain.analytics.training import (
        evaluate,
        format_report,
        lexicon_predictor,
        model_predictor,
        read_labeled,
    )

    lang = normalize_lang(lang)
    texts, labels = read_labeled(file_text, file_labels)
    if baseline is not None:
        if baseline not in ("vader", "leia"):
            raise typer.BadParameter("--baseline must be vader or leia")
        name, predict = baseline, lexicon_predictor(baseline)
    else:
        loaded = LanguageModel.load(model) if model else sentiment_model.model(lang)
        name = str(model) if model else f"sentiment-{lang}-{loaded.metadata.get('version', '?')}"
        predict = model_predictor(loaded)
    typer.echo(format_report(evaluate(predict, texts, labels), lang, name))


@eval_app.command("language")
def eval_language(
    files: list[Path],
    expect: Annotated[str, typer.Option(help="the language every text is in: en, pt or es")],
    csv_column: Annotated[
        str | None, typer.Option(help="read this column of CSV files instead of lines")
    ] = None,
) -> None:
    """Accuracy and throughput of language detection on files of texts in one language."""
    from domain.analytics.language import evaluate_language
    from domain.analytics.training import read_texts

    texts = [t for f in files for t in read_texts(f, csv_column)]
    report = evaluate_language(texts, expect)
    counts = " ".join(f"{k}={v}" for k, v in report.counts.items())
    typer.echo(f"n={report.n} detected: {counts}")
    typer.echo(
        f"RESULT lang={expect} accuracy={report.accuracy:.4f} "
        f"texts_per_s={report.texts_per_s:.0f} wall_texts_per_s={report.wall_texts_per_s:.0f}"
    )


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise typer.Exit(1)
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not healthy after {timeout} s")


@app.command("check-config")
def check_config() -> None:
    """Check the settings for production: list every insecure or missing one (exit 1), or
    say that production would start (exit 0). Reads the same environment and .env."""
    from core.settings import insecure_settings

    problems = insecure_settings(Settings.model_construct(**_raw_settings()))
    if problems:
        typer.echo("Production would refuse to start:", err=True)
        for problem in problems:
            typer.echo(f"  - {problem}", err=True)
        raise typer.Exit(1)
    typer.echo("ok: production would start with these settings")


def _raw_settings() -> dict[str, Any]:
    """The settings as the environment gives them, without the production check (which is
    what check-config reports on instead of raising)."""
    from pydantic import ValidationError

    env = os.environ.get("ENV")
    os.environ["ENV"] = "development"
    try:
        values = Settings().model_dump()
    except ValidationError as exc:
        raise typer.Exit(_report_invalid(exc)) from exc
    finally:
        if env is None:
            del os.environ["ENV"]
        else:
            os.environ["ENV"] = env
    values["env"] = "production"
    return values


def _report_invalid(exc: Exception) -> int:
    typer.echo(f"Invalid settings: {exc}", err=True)
    return 2


def main() -> None:
    from pydantic import ValidationError

    try:
        if sys.argv[1:2] != ["check-config"]:  # which reports the problems itself
            get_settings()
    except ValidationError as exc:
        # e.g. production on the development SECRET_KEY: one clear message, no traceback
        raise SystemExit(f"trendscope: {exc}") from None
    app()


if __name__ == "__main__":
    main()
