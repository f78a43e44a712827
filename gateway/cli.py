"""The ``crewgate`` command: validate configs, run a crew in-process, serve the gateway.

``validate``, ``--version`` and ``--help`` never import CrewAI, so they answer in well
under a second. Exit codes for ``run``: 0 completed, 1 failed or cancelled, 2 bad input.

Everything ``run`` prints that came from a log, a repository, a model or an input goes
through ``_safe``: control characters are escaped and rich markup is not interpreted.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from agents.catalog import Catalog, validate_directory
from agents.errors import ConfigIssue, InputError, UnknownCrewError
from gateway.cli_keys import keys_app
from tools._result import printable

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Run CrewAI crews defined in YAML.")

app.add_typer(keys_app, name="keys")  # create, list, revoke: on CREWGATE_DATABASE_URL, like migrate

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="config directory (default: CREWGATE_CONFIG_DIR)")
]


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            print(f"crewgate {version('crewgate')}")
        except PackageNotFoundError:
            print("crewgate (not installed as a package: version unknown)")
        raise typer.Exit(EXIT_OK)


@app.callback()
def _main(
    show_version: Annotated[
        bool,
        typer.Option("--version", help="print the version and exit", callback=_version, is_eager=True, metavar=""),
    ] = False,
) -> None:
    """Run CrewAI crews defined in YAML."""


def _safe(value: Any) -> str:
    """Text from outside (logs, models, inputs) fit to print: controls escaped, no rich markup."""
    return escape(printable(str(value)))


def _config_dir(given: Path | None) -> Path:
    if given is not None:
        return given
    from gateway.settings import get_settings

    return get_settings().config_dir


def _print_issues(console: Console, issues: list[ConfigIssue]) -> None:
    for issue in issues:
        console.print(
            f"[bold]{issue.file}:{issue.line}:{issue.column}[/]: [cyan]{issue.path or '-'}[/]: {issue.full_message}",
            highlight=False,
            soft_wrap=True,
        )


@app.command()
def validate(
    directory: Annotated[
        Path | None, typer.Argument(help="config directory, or one YAML file in it (default: CREWGATE_CONFIG_DIR)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print a JSON object")] = False,
) -> None:
    """Check every YAML file in the config directory; list every problem with file:line.

    Given one file, the whole directory it belongs to is checked (so references to
    agents and profiles defined in other files resolve) and only that file's
    problems are listed; problems elsewhere are counted.
    """
    out = Console(highlight=False)
    started = time.perf_counter()
    target = _config_dir(directory)
    root = _config_root(target) if target.is_file() else target
    catalog, issues = validate_directory(root)
    others = 0
    if root != target:
        mine = [i for i in issues if _same_file(i.file, target)]
        others, issues = len(issues) - len(mine), mine
    ok = not issues if root != target else catalog is not None
    elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
    if as_json:
        result = {"ok": ok, "version": catalog.version if catalog else None, "errors": [i.as_dict() for i in issues]}
        print(json.dumps({**result, "other_errors": others, "elapsed_ms": elapsed_ms}))
    elif not ok:
        _print_issues(Console(stderr=True, highlight=False), issues)
        Console(stderr=True).print(f"[red]{len(issues)} problem{'s' if len(issues) != 1 else ''}[/]")
    elif root != target:
        note = f"; {others} problem(s) in other files of {root} (run: crewgate validate {root})" if others else ""
        out.print(f"[green]OK[/] {target}{note} ({elapsed_ms} ms)", soft_wrap=True)
    elif catalog is not None:
        out.print(
            f"[green]OK[/] {len(catalog.agents)} agents, {len(catalog.crews)} crews, "
            f"{len(catalog.profiles)} model profiles; version {catalog.version} ({elapsed_ms} ms)"
        )
    raise typer.Exit(EXIT_OK if ok else EXIT_FAILED)


def _config_root(file: Path) -> Path:
    """The config directory a file belongs to: the configured one if it is inside it, else its own folder."""
    configured = _config_dir(None).resolve()
    return configured if file.resolve().is_relative_to(configured) else file.parent


def _same_file(shown: str, target: Path) -> bool:
    return Path(shown).resolve() == target.resolve()


class _UsageError(ValueError):
    """A malformed command line; the message names what is wrong and the form expected."""


def _parse_inputs(pairs: list[str], extra: list[str]) -> dict[str, str]:
    """``-i key=value`` pairs as a dict. ``extra`` holds stray words (``-i service checkout``
    leaves ``checkout`` over), used to say what was probably meant."""
    inputs: dict[str, str] = {}
    stray = list(extra)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            hint = f"; did you mean -i {pair}={stray[0]}?" if sep == "" and key.strip() and stray else ""
            raise _UsageError(f"-i/--input {pair!r}: expected key=value (e.g. -i service=checkout){hint}")
        if key.strip() in inputs:
            raise _UsageError(f"-i/--input {key.strip()!r} is given more than once; give each input once")
        inputs[key.strip()] = value
    if stray:
        raise _UsageError(f"unexpected argument {stray[0]!r}: inputs are given as -i key=value")
    return inputs


def _load(config: Path | None, err: Console) -> Catalog:
    catalog, issues = validate_directory(_config_dir(config))
    if catalog is None:
        _print_issues(err, issues)
        err.print(f"[red]config is invalid ({len(issues)} problems); run `crewgate validate`[/]")
        raise typer.Exit(EXIT_BAD_INPUT)
    return catalog


@app.command()
def crews(config: ConfigOption = None) -> None:
    """List the crews and the inputs each one takes."""
    out = Console(highlight=False)
    catalog = _load(config, Console(stderr=True))
    for name, crew in sorted(catalog.crews.items()):
        out.print(
            f"[bold]{_safe(name)}[/] ({crew.process.value}, {len(crew.steps)} steps) {_safe(crew.description)}",
            soft_wrap=True,
        )
        for key, spec in crew.inputs.items():
            need = "required" if spec.is_required else f"optional, default {spec.default!r}"
            out.print(_safe(f"  -i {key}=<{spec.type.value}>  {need}  {spec.description}"), soft_wrap=True)


def _paths_from_here(spec: Any, raw: dict[str, Any]) -> dict[str, Any]:
    """Relative path inputs given on this command line are relative to where it runs.

    The gateway resolves a relative path only under the allowed roots (never its own
    working directory); here the caller is on the same machine, so a path typed as
    ``examples/incident/logs`` means what the shell means. The sandbox then checks
    the absolute path against the roots as always.
    """
    from agents.schema import InputType

    out = dict(raw)
    for name, value in raw.items():
        item = spec.inputs.get(name)
        if item is None or item.type is not InputType.path or not isinstance(value, str):
            continue
        if value and not value.startswith(("/", "~")) and "\x00" not in value:
            out[name] = os.path.join(os.getcwd(), value)
    return out


@app.command(context_settings={"allow_extra_args": True})
def run(
    ctx: typer.Context,
    crew: Annotated[str, typer.Argument(help="crew name")],
    inputs: Annotated[
        list[str] | None, typer.Option("--input", "-i", metavar="KEY=VALUE", help="an input, repeatable")
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            metavar="",
            help='print only {"task_id","status","result","output","usage","events"} (and "error" if not completed)',
        ),
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", metavar="", help="no live progress")] = False,
    on_input: Annotated[
        str | None,
        typer.Option(
            "--on-input",
            help="when the crew asks a person: ask (a terminal; the default there), approve (reviews; questions "
            "fail), fail (the default without a terminal)",
        ),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Run a crew in this process with live progress, then print its report."""
    from agents.events import EventDraft, EventType
    from agents.inputs import validate_inputs
    from gateway.logs import configure_logging
    from gateway.settings import get_settings, process_env

    err = Console(stderr=True, highlight=False)
    try:
        raw = _parse_inputs(inputs or [], list(ctx.args))
    except _UsageError as e:
        err.print(f"[red]error:[/] {_safe(e)}", soft_wrap=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    from gateway.cli_input import default_on_input, run_answering

    policy = on_input or default_on_input()
    if policy not in ("ask", "approve", "fail"):
        err.print(f"[red]error:[/] --on-input must be ask, approve or fail, not {_safe(policy)!r}", soft_wrap=True)
        raise typer.Exit(EXIT_BAD_INPUT)
    settings = get_settings()
    configure_logging("WARNING", settings.log_format if settings.log_format != "auto" else "console")
    catalog = _load(config, err)
    try:
        spec = catalog.crew(crew)
        checked = validate_inputs(crew, spec, _paths_from_here(spec, raw), roots=settings.roots)
    except (UnknownCrewError, InputError) as e:
        err.print(f"[red]error:[/] {_safe(e)}", soft_wrap=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None

    from gateway.execution import execute_task
    from gateway.store import StoredEvent

    task_id = str(uuid.uuid4())
    events: list[dict[str, Any]] = []
    progress = _Progress(err, enabled=not quiet)

    def publish(draft: EventDraft) -> None:
        seq = len(events) + 1  # in-process: the id cursor is the seq
        event = StoredEvent(
            id=seq,
            seq=seq,
            task_id=task_id,
            crew=crew,
            ts=datetime.now(UTC),
            type=str(draft.type),
            agent=draft.agent,
            step=draft.step,
            data=draft.data,
        ).public()
        events.append(event)
        progress.show(event)

    publish(
        EventDraft(EventType.task_queued, data={"crew": crew, "inputs": checked, "config_version": catalog.version})
    )

    def execute(checkpoint: dict[str, Any] | None) -> Any:
        return execute_task(
            task_id,
            catalog,
            crew,
            checked,
            publish=publish,
            roots=settings.roots,
            env=process_env(),
            checkpoint=checkpoint,
        )

    with contextlib.redirect_stdout(sys.stderr):
        _load_crewai(err, show=not quiet)
        outcome = run_answering(execute, publish, policy, err)
    if as_json:
        print(json.dumps(_run_json(task_id, outcome, events), ensure_ascii=False))
    elif outcome.status == "completed":
        from rich.markdown import Markdown

        Console().print(Markdown(printable(outcome.result or "")))
    else:
        err.print(f"[red]task {outcome.status}:[/] {_safe(f'[{outcome.error_code}] {outcome.error}')}", soft_wrap=True)
    raise typer.Exit(EXIT_OK if outcome.status == "completed" else EXIT_FAILED)


def _run_json(task_id: str, outcome: Any, events: list[dict[str, Any]]) -> dict[str, Any]:
    """The one object ``run --json`` prints: the report, the structured output, and why it failed if it did."""
    out: dict[str, Any] = {
        "task_id": task_id,
        "status": outcome.status,
        "result": outcome.result,
        "output": outcome.output,
        "usage": outcome.usage,
        "events": events,
    }
    if outcome.status != "completed":
        out["error"] = {"code": outcome.error_code, "message": outcome.error}
    return out


def _load_crewai(console: Console, *, show: bool) -> None:
    """Import CrewAI (several seconds, once per process), saying so: a spinner on a terminal, else one line."""
    if "crewai" in sys.modules:
        return
    if show and console.is_terminal:
        with console.status("loading CrewAI…", spinner="dots"):
            import crewai  # noqa: F401
    else:
        if show:
            console.print("loading CrewAI…")
        import crewai  # noqa: F401


class _Progress:
    """One line per event on stderr: what each agent is doing, as it happens."""

    def __init__(self, console: Console, *, enabled: bool) -> None:
        self.console = console
        self.enabled = enabled
        self.started = time.perf_counter()

    def show(self, event: dict[str, Any]) -> None:
        if not self.enabled:
            return
        kind, data = event["type"], event["data"]
        line = _describe(kind, data, event.get("agent"), event.get("step"))
        if line:
            elapsed = time.perf_counter() - self.started
            self.console.print(f"[dim]{elapsed:6.2f}s[/] {line}", soft_wrap=True)


def _describe(kind: str, data: dict[str, Any], agent: str | None, step: str | None) -> str | None:
    """One progress line in rich markup; every value from the event is made safe first."""
    who = f"[cyan]{_safe(agent)}[/]" if agent else ""
    tool = f"[magenta]{_safe(data.get('tool'))}[/]"
    if kind == "task.started":
        return f"[bold]task started[/] crew {_safe(data.get('crew'))} (config {_safe(data.get('config_version'))})"
    if kind == "step.started":
        return f"[bold]step {_safe(step)}[/] → {who}"
    if kind == "tool.started":
        return f"  {who} calls {tool} {_safe(str(data.get('args', ''))[:120])}"
    if kind == "tool.finished":
        summary = f"— {_safe(data['summary'][:160])}" if data.get("summary") else ""
        return f"  {who} {tool} ✓ {_safe(data.get('duration_ms'))} ms {summary}"
    if kind == "tool.failed":
        return f"  {who} {tool} [red]✗ {_safe(str(data.get('error', ''))[:200])}[/]"
    if kind == "step.completed":
        return f"[green]step {_safe(step)} done[/]"
    if kind == "agent.log":
        return f"  {who} [yellow]{_safe(str(data.get('message', ''))[:200])}[/]"
    if kind == "task.completed":
        return f"[green bold]task completed[/] ({_safe(data.get('usage', {}).get('total_tokens', 0))} tokens)"
    if kind in ("task.failed", "task.cancelled"):
        detail = f"{data.get('code', '')} {data.get('error') or data.get('reason', '')}"
        return f"[red bold]{kind}[/] {_safe(detail)}"
    return None


def _announce(settings: Any, config_version: str) -> None:
    """One structured line saying where the gateway listens (JSON off a terminal, like every other line)."""
    from sqlalchemy.engine import make_url

    from gateway.logs import get_logger

    base = f"http://{settings.host}:{settings.port}"
    store = make_url(settings.database_url).render_as_string(hide_password=True)
    get_logger("crewgate.serve").info(
        f"crewgate on {base}",
        docs=f"{base}/docs",
        openapi=f"{base}/openapi.json",
        config_version=config_version,
        store=store,
    )


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="address to bind (default: CREWGATE_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default: CREWGATE_PORT)")] = None,
) -> None:
    """Run the gateway: REST, WebSocket and SSE on one port."""
    import uvicorn

    from agents.errors import ConfigError
    from gateway.app import BoundedWebSocketProtocol, bounded_http_protocol, create_app
    from gateway.logs import configure_logging
    from gateway.settings import get_settings

    settings = get_settings()
    if host is not None or port is not None:
        settings = settings.model_copy(update={k: v for k, v in (("host", host), ("port", port)) if v is not None})
    configure_logging(settings.log_level, settings.log_format)
    err = Console(stderr=True, highlight=False)
    catalog, issues = validate_directory(settings.config_dir)
    if catalog is None:
        _print_issues(err, issues)
        err.print(f"[red]refusing to start: the config in {settings.config_dir} is invalid[/]")
        raise typer.Exit(EXIT_BAD_INPUT)
    _announce(settings, catalog.version)
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        http=bounded_http_protocol(settings),  # httptools, with bounds on request heads
        ws=BoundedWebSocketProtocol,  # websockets-sansio, closing handshakes it refuses
        ws_max_size=65_536,  # clients send nothing but control frames
        ws_ping_interval=settings.ws_ping_interval_s,
        ws_ping_timeout=settings.ws_ping_interval_s,
        timeout_graceful_shutdown=5,
    )
    try:
        uvicorn.Server(config).run()
    except ConfigError as e:
        _print_issues(err, e.issues)
        raise typer.Exit(EXIT_BAD_INPUT) from None


@app.command()
def worker(
    concurrency: Annotated[
        int | None, typer.Option("--concurrency", "-c", help="crews run at once (default: CREWGATE_WORKER_CONCURRENCY)")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", "-n", help="Celery node name (default: celery@<host>)")] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(help="serve this worker's Prometheus metrics (all its pool processes) on this port"),
    ] = None,
    metrics_host: Annotated[
        str | None, typer.Option(help="address for --metrics-port (default: CREWGATE_HOST)")
    ] = None,
) -> None:
    """Run crews for gateways started with CREWGATE_DISPATCHER=celery (a Celery worker)."""
    from gateway.logs import configure_logging
    from gateway.settings import get_settings

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    err = Console(stderr=True, highlight=False)
    if not settings.broker:
        err.print("[red]error:[/] a worker needs CREWGATE_BROKER_URL (or CREWGATE_REDIS_URL)")
        raise typer.Exit(EXIT_BAD_INPUT)
    if concurrency is not None and not 1 <= concurrency <= 256:
        err.print("[red]error:[/] --concurrency must be between 1 and 256")
        raise typer.Exit(EXIT_BAD_INPUT)
    if metrics_port is not None:
        _serve_worker_metrics(settings, metrics_port, metrics_host or settings.host, err)
    from gateway.worker import start_worker

    raise typer.Exit(start_worker(settings, concurrency or settings.worker_concurrency, name=name))


def _serve_worker_metrics(settings: Any, port: int, host: str, err: Console) -> None:
    """The pool processes count; this process serves their sum. Without PROMETHEUS_MULTIPROC_DIR
    they share a fresh directory of this worker's own (set before prometheus-client is imported,
    which decides the mode then, and before the pool processes are forked)."""
    import tempfile

    if not 1 <= port <= 65535:
        err.print("[red]error:[/] --metrics-port must be between 1 and 65535")
        raise typer.Exit(EXIT_BAD_INPUT)
    if not settings.prometheus_multiproc_dir:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="crewgate-worker-metrics-")
    from gateway.metrics import multiprocess_mode, serve_multiprocess

    if not multiprocess_mode():
        err.print("[red]error:[/] prometheus-client was imported before PROMETHEUS_MULTIPROC_DIR was set")
        raise typer.Exit(EXIT_BAD_INPUT)
    serve_multiprocess(port, host)


@app.command()
def answer(
    task_id: Annotated[str, typer.Argument(help="the waiting task")],
    approve: Annotated[bool, typer.Option("--approve", help="review: accept the step's answer")] = False,
    feedback: Annotated[str | None, typer.Option("--feedback", help="review: send the step back with this")] = None,
    text: Annotated[str | None, typer.Option("--answer", help="question: the answer")] = None,
    request_id: Annotated[str | None, typer.Option("--request", help="request id (default: the only open one)")] = None,
    url: Annotated[str, typer.Option("--url", help="the gateway", envvar="CREWGATE_URL")] = "http://127.0.0.1:8000",
    token: Annotated[str | None, typer.Option("--token", help="API key", envvar="CREWGATE_TOKEN")] = None,
) -> None:
    """Answer a task waiting in a gateway (a review or a question)."""
    import httpx

    from gateway.cli_input import answer_remote

    err = Console(stderr=True, highlight=False)
    given = {k: v for k, v in (("approve", approve or None), ("feedback", feedback), ("answer", text)) if v is not None}
    if len(given) != 1:
        err.print("[red]error:[/] give exactly one of --approve, --feedback TEXT, --answer TEXT")
        raise typer.Exit(EXIT_BAD_INPUT)
    try:
        code, body = answer_remote(url, task_id, given, token=token, request_id=request_id)
    except httpx.HTTPError as e:
        err.print(f"[red]error:[/] cannot reach {_safe(url)}: {_safe(e)}", soft_wrap=True)
        raise typer.Exit(EXIT_FAILED) from None
    if code != 200:
        problem = body.get("error", {}) if isinstance(body.get("error"), dict) else {}
        err.print(f"[red]error {code}:[/] {_safe(problem.get('message', body))}", soft_wrap=True)
        raise typer.Exit(EXIT_BAD_INPUT if code in (404, 409, 422) else EXIT_FAILED)
    print(json.dumps(body, ensure_ascii=False))


@app.command()
def migrate() -> None:
    """Bring the database (CREWGATE_DATABASE_URL) to the newest schema, then exit."""
    import asyncio

    from gateway.settings import get_settings
    from gateway.store import open_store

    async def upgrade() -> None:
        store = open_store(get_settings().database_url)
        try:
            await store.migrate()
        finally:
            await store.close()

    asyncio.run(upgrade())
    Console(highlight=False).print("database schema is up to date")


@app.command("eval")
def eval_command(
    suite: Annotated[Path | None, typer.Argument(help="suite directory (default: examples/incidents)")] = None,
    model: Annotated[str | None, typer.Option("--model", help="model profile for every agent")] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="write per-case results and a summary")] = None,
    judge: Annotated[str | None, typer.Option("--judge", help="model profile that grades each report 1-5")] = None,
    only: Annotated[list[str] | None, typer.Option("--only", help="run only this case (repeatable)")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="log noise seed (default: the suite's)")] = None,
    min_top1: Annotated[float | None, typer.Option("--min-top1", help="exit 1 if top-1 commit % is lower")] = None,
    config: ConfigOption = None,
) -> None:
    """Score the incident_triage crew on a suite of generated incidents."""
    from gateway.eval import EvalInputError, EvalOptions, run_command
    from gateway.logs import configure_logging
    from gateway.settings import get_settings, process_env

    err = Console(stderr=True, highlight=False)
    settings = get_settings()
    configure_logging("WARNING", settings.log_format if settings.log_format != "auto" else "console")
    catalog = _load(config, err)
    options = EvalOptions(suite, model, json_path, judge, list(only or []), seed, min_top1)
    try:
        out = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
        code = run_command(options, catalog, process_env(), out=out, err=err)
    except EvalInputError as e:
        err.print(f"[red]error:[/] {e}", soft_wrap=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    raise typer.Exit(code)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
