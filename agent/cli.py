"""The ``labpilot`` command line: validate, run, resume, status, report, analyse, export, bench, serve-instrument, keys,
approve, reject, pending, serve-ui.

Human output (progress, tables) goes to stderr; ``--json`` prints one JSON object on stdout, so
scripts can pipe it (``analyse`` prints its answer on stdout: the answer is the command's output). Exit codes: 0 targets met, 3 a budget ran out first, 1 the campaign failed,
2 bad input (campaign file, database URL, unknown campaign), 130 interrupted.
"""

from __future__ import annotations

import json
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from agent.config import CampaignConfig, CampaignFileError, load_campaign, stored_campaign_model
from agent.export import ExportFormat
from agent.store import CampaignOwned, Store, StoreUnavailable, UnknownCampaign

app = typer.Typer(add_completion=False, no_args_is_help=True, help="labpilot: closed-loop experiment orchestration.")
err = Console(stderr=True)

EXIT_CODES = {"completed": 0, "budget_exhausted": 3, "failed": 1, "interrupted": 130, "unreachable": 4}
DEFAULT_DB = "sqlite:///labpilot.db"


def _db(url: str | None, config: CampaignConfig | None = None) -> str:
    return url or os.environ.get("LABPILOT_DB") or (config.storage if config else DEFAULT_DB)


def _open_store(url: str, *, existing: bool = False, upgrade: bool = True) -> Store:
    """The store at ``url``; ``existing`` for commands that read one: a missing SQLite file is an error, not created.
    ``upgrade=False`` (read-only commands): a store at an older schema revision is refused, not upgraded."""
    try:
        return Store(url, existing=existing, upgrade=upgrade)
    except StoreUnavailable as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, default=str) + "\n")
    sys.stdout.flush()


def _load(file: Path, as_json: bool) -> CampaignConfig:
    try:
        return load_campaign(file)
    except CampaignFileError as exc:
        if as_json:
            _print_json({"valid": False, "file": str(file), "errors": [{"field": f, "message": m} for f, m in exc.errors]})
        else:
            err.print(f"[red]invalid campaign file[/] {exc.source} — {len(exc.errors)} error(s):")
            for field, message in exc.errors:
                err.print(f"  [bold]{field or '(file)'}[/]: {message}", highlight=False)
        raise typer.Exit(2) from None


@app.command()
def validate(file: Path, as_json: bool = typer.Option(False, "--json", help="print the result as JSON")) -> None:
    """Check a campaign file completely; list every error with its field path."""
    config = _load(file, as_json)
    if as_json:
        _print_json({"valid": True, "file": str(file), "name": config.name})
    else:
        err.print(f"[green]valid[/] {file}: campaign {config.name!r}, {len(config.design_space.parameters)} parameters, "
                  f"{sum(i.count for i in config.instruments)} instrument(s), policy {config.policy.name}")


def _interrupted(campaign_id: str, store: Store, as_json: bool) -> NoReturn:
    """Ctrl-C: the campaign is recorded as interrupted; say how to continue it, exit 130."""
    import shlex

    command = f"labpilot resume {shlex.quote(campaign_id)}"
    if store.url != _db(None):  # resume would look elsewhere without it (the password stays masked)
        command += f" --db {shlex.quote(store.database)}"
    if as_json:
        _print_json({"campaign_id": campaign_id, "status": "interrupted", "resume": command})
    err.print(f"[yellow]interrupted[/] — resume with: {command}", highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_CODES["interrupted"])


def _finish(result: Any, as_json: bool, store: Store, report: bool) -> None:
    from agent.progress import print_result

    if report:
        from agent.report import write_report

        path = write_report(store, result.campaign_id)
        if not as_json:
            err.print(f"report: {path}")
    if as_json:
        _print_json(result.as_json())
    else:
        print_result(err, result)
    raise typer.Exit(EXIT_CODES.get(result.status, 1))


@app.command()
def run(
    file: Path,
    db: str | None = typer.Option(None, help="SQLAlchemy URL of the store (default: the file's `storage`)"),
    seed: int | None = typer.Option(None, help="override the campaign's seed"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON summary on stdout at the end"),
    report: bool = typer.Option(True, help="write the HTML report when the campaign ends"),
    ui: bool = typer.Option(False, "--ui", help="serve the live page while the campaign runs (see serve-ui)"),
    bind: str = typer.Option("127.0.0.1:8765", "--bind", help="with --ui: HOST:PORT; not loopback needs --token"),
    token: str | None = typer.Option(None, "--token", help="with --ui: the page's access token (default: $LABPILOT_UI_TOKEN)"),
) -> None:
    """Run a campaign file until its targets are met or a budget runs out."""
    config = _load(file, as_json)
    if seed is not None:
        config = config.model_copy(update={"seed": seed})
    store = _open_store(_db(db, config))
    from agent.ids import new_campaign_id
    from agent.progress import live_progress
    from agent.runtime import ray_runtime

    campaign_id = new_campaign_id(config.name)
    err.print(f"campaign [bold]{campaign_id}[/] → {store.database}")
    page = _start_ui(store, bind, token, campaign_id) if ui else None
    try:
        # Ray starts in the background while the loop's modules (the policy's libraries) are imported.
        with ray_runtime(background=True, needed=_needs_ray(config)), \
                live_progress(err, config, store=store, campaign_id=campaign_id) as on_progress:
            from agent.campaign import run_campaign

            result = run_campaign(config, store, campaign_id=campaign_id, on_progress=on_progress)
    except KeyboardInterrupt:
        _interrupted(campaign_id, store, as_json)
    finally:
        if page is not None:
            page.stop()
    _finish(result, as_json, store, report)


def _needs_ray(config: Any) -> bool:
    """Whether the campaign uses Ray: not when every service runs in this process (``in_process: true``)."""
    return not getattr(config, "in_process", False)


def _start_ui(store: Store, bind: str, token: str | None, campaign_id: str) -> Any:
    from agent.ui.server import UIConfigError, start_in_thread

    try:
        page = start_in_thread(store, bind, token)
    except UIConfigError as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    err.print(f"live page: {page.url}campaigns/{campaign_id}", highlight=False, soft_wrap=True)
    return page


@app.command()
def resume(
    campaign_id: str,
    db: str | None = typer.Option(None, help=f"SQLAlchemy URL of the store (default: $LABPILOT_DB or {DEFAULT_DB})"),
    file: Path | None = typer.Option(
        None, "--file", help="the campaign file: the code it names (ophyd devices, factories) may be used again"
    ),
    as_json: bool = typer.Option(False, "--json"),
    report: bool = typer.Option(True, help="write the HTML report when the campaign ends"),
) -> None:
    """Continue a killed or stopped campaign: nothing lost, nothing measured twice."""
    store = _open_store(_db(db), existing=True)
    from agent.progress import live_progress
    from agent.runtime import ray_runtime
    from agent.trust import UntrustedConfiguration, allowed_patterns, check_references

    try:
        stored = store.campaign(campaign_id)
        allowed = allowed_patterns(file)
        check_references(stored.config, allowed, f"campaign {campaign_id} (stored configuration)")
        config = stored_campaign_model(stored.config).model_validate(stored.config)
    except (UnknownCampaign, UntrustedConfiguration, OSError) as exc:
        err.print(f"[red]error:[/] {exc} ({store.database})", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    err.print(f"resuming [bold]{campaign_id}[/] (was {stored.status}) → {store.database}")
    try:
        # Ray starts in the background while the loop's modules (the policy's libraries) are imported.
        with ray_runtime(background=True, needed=_needs_ray(config)), \
                live_progress(err, config, store=store, campaign_id=campaign_id) as on_progress:
            from agent.campaign import resume_campaign

            result = resume_campaign(store, campaign_id, on_progress=on_progress, allowed=allowed)
    except CampaignOwned as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        _interrupted(campaign_id, store, as_json)
    _finish(result, as_json, store, report)


@app.command()
def status(
    campaign_id: str | None = typer.Argument(None),
    db: str | None = typer.Option(None, help=f"SQLAlchemy URL of the store (default: $LABPILOT_DB or {DEFAULT_DB})"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List campaigns, or show one campaign's attempts, targets and stop reason."""
    from agent.progress import campaign_summary
    from agent.status_view import attempt_rows, print_attempts, print_campaigns

    store = _open_store(_db(db), existing=True, upgrade=False)
    try:
        if campaign_id is None:
            rows = [campaign_summary(store, c.id) for c in store.campaigns()]
        else:
            rows = [campaign_summary(store, campaign_id, with_answer=True)]
            rows[0]["attempt_list"] = attempt_rows(store, campaign_id)
    except UnknownCampaign as exc:
        err.print(f"[red]error:[/] {exc} ({store.database})")
        raise typer.Exit(2) from None
    if as_json:
        _print_json(rows if campaign_id is None else rows[0])
        return
    if campaign_id is not None:  # the answer first, then the bookkeeping
        from agent.answer import Answer
        from agent.progress import print_answer

        print_answer(Console(), Answer.model_validate(rows[0]["answer"]))
    print_campaigns(Console(), rows)
    if campaign_id is not None:
        print_attempts(Console(), rows[0]["attempt_list"])


@app.command()
def report(
    campaign_id: str,
    db: str | None = typer.Option(None, help=f"SQLAlchemy URL of the store (default: $LABPILOT_DB or {DEFAULT_DB})"),
    out: Path | None = typer.Option(None, help="HTML file to write (default: reports/<id>.html)"),
) -> None:
    """Write an HTML report: measured points, model mean and σ, target progress, decision log."""
    from agent.report import write_report

    store = _open_store(_db(db), existing=True, upgrade=False)
    try:
        path = write_report(store, campaign_id, out)
    except UnknownCampaign as exc:
        err.print(f"[red]error:[/] {exc} ({store.database})")
        raise typer.Exit(2) from None
    err.print(f"report: {path}")


def _driver_settings_model(cls: type) -> Any:
    """The pydantic settings model of a driver built as ``cls(name, settings)``, or None."""
    import inspect
    import typing

    from pydantic import BaseModel

    try:
        params = list(inspect.signature(cls).parameters.values())
        hints = typing.get_type_hints(cls.__init__)  # type: ignore[misc]
    except (TypeError, ValueError, NameError):
        return None
    hint = hints.get(params[1].name) if len(params) >= 2 else None
    return hint if isinstance(hint, type) and issubclass(hint, BaseModel) else None


def _fail(message: str) -> NoReturn:
    err.print(f"[red]error:[/] {message}", highlight=False)
    raise typer.Exit(2)


def _driver_class(target: str) -> type:
    """The driver class ``MODULE:CLASS`` names; exits with a clear error if it cannot be loaded."""
    import importlib

    module_name, sep, class_name = target.partition(":")
    if not (sep and module_name and class_name):
        _fail(f"{target!r}: expected MODULE:CLASS, e.g. simulators.synthetic:SyntheticPropertyDriver")
    if os.getcwd() not in sys.path:
        # A driver module in the current folder is found, but after every installed module: a stray
        # file here named like a library (zmq.py, numpy.py) must not replace it.
        sys.path.append(os.getcwd())
    try:
        return getattr(importlib.import_module(module_name), class_name)  # type: ignore[no-any-return]
    except (ImportError, AttributeError) as exc:
        _fail(f"cannot load {target}: {exc}")


def _driver_settings(config: Path | None, cls: type, target: str) -> Any:
    """The driver's settings from ``config`` (YAML or JSON), validated by its settings model if it declares one."""
    import yaml
    from pydantic import ValidationError

    data: Any = {}
    if config is not None:
        try:
            data = yaml.safe_load(config.read_text()) or {}  # YAML is a superset of JSON
        except (OSError, yaml.YAMLError) as exc:
            _fail(f"cannot read {config}: {exc}")
        if not isinstance(data, dict):
            _fail(f"{config}: expected a mapping of settings, got {type(data).__name__}")
    model = _driver_settings_model(cls)
    if model is None:
        return data
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err.print(f"[red]invalid settings[/] {config or '(no --config)'} for {target} — {exc.error_count()} error(s):")
        for e in exc.errors():
            err.print(f"  [bold]{'.'.join(str(p) for p in e['loc']) or '(file)'}[/]: {e['msg']}", highlight=False)
        raise typer.Exit(2) from None


@app.command("serve-instrument")
def serve_instrument(
    target: str = typer.Argument(..., metavar="MODULE:CLASS", help="driver class, e.g. simulators.synthetic:SyntheticPropertyDriver"),
    bind: str = typer.Option("tcp://127.0.0.1:5555", "--bind", help="ZMQ endpoint; other than loopback needs --server-key and --clients"),
    config: Path | None = typer.Option(None, "--config", help="YAML or JSON file with the driver's settings"),
    name: str | None = typer.Option(None, "--name", help="instrument name given to the driver (default: the class name)"),
    server_key: Path | None = typer.Option(None, "--server-key", help="the server's secret certificate, NAME.key_secret (labpilot keys)"),
    clients: Path | None = typer.Option(None, "--clients", help="folder of the authorised clients' public certificates (*.key)"),
    serializer: str = typer.Option("json", "--serializer", help="json, or msgpack (then msgpack clients are accepted too)"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON line on stdout once serving"),
) -> None:
    """Serve an instrument driver over ZMQ, CURVE-authenticated with --server-key and --clients."""
    import logging
    import signal

    import zmq

    from instruments.remote import SerializerUnavailable
    from instruments.server import InstrumentServer

    if serializer not in ("json", "msgpack"):
        _fail(f"--serializer: unknown {serializer!r}; use json or msgpack")
    cls = _driver_class(target)
    settings = _driver_settings(config, cls, target)
    instrument = name or target.partition(":")[2]
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        driver = cls(instrument, settings)
    except Exception as exc:  # noqa: BLE001 — whatever the driver raises, say it and exit 2
        _fail(f"cannot build {target}: {type(exc).__name__}: {exc}")
    try:
        server = InstrumentServer(driver, bind, server_secret_key_file=server_key, authorized_clients_dir=clients,
                                  serializer=serializer)
    except (ValueError, OSError, SerializerUnavailable, zmq.ZMQError) as exc:
        _fail(f"cannot serve on {bind}: {exc}")

    def _terminate(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt  # leave serve_forever through its cleanup, as Ctrl-C does

    signal.signal(signal.SIGTERM, _terminate)
    security = "CURVE" if server.authenticated else "[yellow]unauthenticated, loopback only[/]"
    err.print(f"serving [bold]{instrument}[/] ({target}) on {server.address} — {security}", soft_wrap=True)
    if as_json:
        _print_json({"serving": instrument, "driver": target, "address": server.address,
                     "authenticated": server.authenticated, "serializer": serializer})
    server.serve_until_interrupted()


@app.command()
def keys(
    name: str = typer.Argument(..., help="key pair name: writes NAME.key (public) and NAME.key_secret (secret)"),
    directory: Path = typer.Option(Path("."), "--dir", help="folder to write them to (created if missing)"),
    as_json: bool = typer.Option(False, "--json", help="print the paths as JSON"),
) -> None:
    """Create a CURVE key pair for an instrument server or a client."""
    import zmq.auth

    if not name or name.startswith(".") or "/" in name or os.sep in name:
        err.print(f"[red]error:[/] key name {name!r} must be a plain file name", highlight=False)
        raise typer.Exit(2)
    public, secret = directory / f"{name}.key", directory / f"{name}.key_secret"
    existing = [str(p) for p in (public, secret) if p.exists()]
    if existing:
        err.print(f"[red]error:[/] {', '.join(existing)} already exist(s); a new pair would lock out whoever holds the old "
                  "one — remove it first or choose another name", highlight=False)
        raise typer.Exit(2)
    umask = os.umask(0o077)  # the folder and the secret file are never readable by others, not even for a moment
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        public_file, secret_file = zmq.auth.create_certificates(directory, name)
    finally:
        os.umask(umask)
    os.chmod(public_file, 0o644)
    if as_json:
        _print_json({"name": name, "public_key_file": public_file, "secret_key_file": secret_file})
        return
    err.print(f"public key: {public_file}  (give it to the other side)", highlight=False)
    err.print(f"secret key: {secret_file}  (keep it on this machine)", highlight=False)
    err.print("a server: --server-key NAME.key_secret, its NAME.key to clients as server_public_key_file; "
              "a client: its NAME.key into the server's --clients folder, client_secret_key_file: NAME.key_secret",
              highlight=False)


@app.command()
def export(
    attempt_id: str,
    format: ExportFormat = typer.Option(..., "--format", help="nxcansas (reduced SAS: I(Q), HDF5) | xye (powder pattern)"),
    out: Path = typer.Option(..., "--out", help="file to write"),
    db: str | None = typer.Option(None, help=f"SQLAlchemy URL of the store (default: $LABPILOT_DB or {DEFAULT_DB})"),
) -> None:
    """Export one measurement in the format its community reads (NXcanSAS, .xye)."""
    from agent.export import ExportError, export_measurement

    store = _open_store(_db(db), existing=True, upgrade=False)
    try:
        path = export_measurement(store, attempt_id, out, format)
    except KeyError as exc:
        err.print(f"[red]error:[/] {exc.args[0]} ({store.database})", highlight=False)
        raise typer.Exit(2) from None
    except ExportError as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    err.print(f"{format.value}: {path}")


class AnalysisKindOption(str, Enum):
    sas = "sas"
    xrd = "xrd"


def _wavelength_option(text: str | None) -> str | float | None:
    """``--wavelength``: a line name ('CuKa1') or λ in Å ('1.5406')."""
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return text


@app.command()
def analyse(
    files: list[Path] = typer.Argument(..., help="data files (SAS: .xml .h5 .abs .txt .csv .dat .pdh; powder: .xy "
                                       ".xye .dat .gsa .fxye .std .esd .xrdml)"),
    analysis: AnalysisKindOption = typer.Option(..., "--analysis", help="sas | xrd"),
    settings: Path | None = typer.Option(None, "--settings", help="YAML: the analysis settings (or a campaign's "
                                         "analysis: {kind, settings} block)"),
    as_json: bool = typer.Option(False, "--json", help="print the answer as one JSON object on stdout"),
    report: Path | None = typer.Option(None, "--report", help="write an HTML page with the fit and residuals"),
    wavelength: str | None = typer.Option(None, "--wavelength", help="powder files without one: 'CuKa1', 'CuKa' or Å"),
    q_units: str | None = typer.Option(None, "--q-units", help="SAS files that do not say: '1/A' or '1/nm'"),
    ignore_resolution: bool = typer.Option(False, "--ignore-resolution", help="drop an implausible dQ column"),
) -> None:
    """Interpret data you already have: estimates ± σ, model or phase-set probabilities, flags.

    Exit 0 with an answer (valid or flagged), 2 on bad input (nothing written)."""
    from agent.analyse import AnalyseInputError, analyse as run_analysis, answer_json
    from agent.analyse_view import print_answer, write_report

    try:
        result = run_analysis(files, analysis.value, settings_file=settings, wavelength=_wavelength_option(wavelength),
                              q_units=q_units, ignore_resolution=ignore_resolution)
    except AnalyseInputError as exc:
        if as_json:
            _print_json({"error": str(exc)})
        err.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)  # a path is not broken across lines
        raise typer.Exit(2) from None
    if as_json:
        _print_json(answer_json(result))
    else:
        print_answer(Console(), result)
    if report is not None:
        err.print(f"report: {write_report(result, report)}")


# -- the approval gate (agent/approval.py) -----------------------------------------------------------
def _decide(action: Any, as_json: bool) -> None:
    """Run one approval decision; a refused one prints why and exits 2, nothing changed."""
    from agent.approval import ApprovalRefused

    try:
        approval = action()
    except ApprovalRefused as exc:
        if as_json:
            _print_json({"ok": False, "error": str(exc)})
        err.print(f"[red]refused:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    if as_json:
        _print_json({"ok": True, "attempt_id": approval.attempt_id, "verdict": approval.verdict, "user": approval.user,
                     "params": approval.params, "reason": approval.reason})
    else:
        err.print(f"{approval.attempt_id}: [bold]{approval.verdict}[/] by {approval.user} — {approval.params}"
                  + (f" ({approval.reason})" if approval.reason else ""), highlight=False, soft_wrap=True)


@app.command()
def approve(
    attempt_id: str,
    edit: list[str] = typer.Option([], "--edit", help="KEY=VALUE: change a parameter (within the design space); repeatable"),
    user: str | None = typer.Option(None, "--user", help="who approves (default: $USER)"),
    db: str | None = typer.Option(None, help=f"SQLAlchemy URL of the store (default: $LABPILOT_DB or {DEFAULT_DB})"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Approve a proposal that awaits approval (possibly edited); the campaign then runs it."""
    from agent.approval import approve as approve_attempt, parse_edits

    store = _open_store(_db(db))
    _decide(lambda: approve_attempt(store, attempt_id, edits=parse_edits(edit), user=user), as_json)


@app.command()
def reject(
    attempt_id: str,
    reason: str = typer.Option(..., "--reason", help="why (recorded with the decision)"),
    user: str | None = typer.Option(None, "--user", help="who rejects (default: $USER)"),
    db: str | None = typer.Option(None, help=f"SQLAlchemy URL of the store (default: $LABPILOT_DB or {DEFAULT_DB})"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Reject a proposal that awaits approval: it is refused with the reason, and never runs."""
    from agent.approval import reject as reject_attempt

    store = _open_store(_db(db))
    _decide(lambda: reject_attempt(store, attempt_id, reason=reason, user=user), as_json)


@app.command()
def pending(
    campaign_id: str | None = typer.Argument(None, help="one campaign (default: all)"),
    db: str | None = typer.Option(None, help=f"SQLAlchemy URL of the store (default: $LABPILOT_DB or {DEFAULT_DB})"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List the proposals awaiting approval, with why they wait."""
    store = _open_store(_db(db))
    rows = [{"attempt_id": a.id, "campaign_id": a.campaign_id, "params": a.params, "why": a.reason}
            for a in store.awaiting_approval(campaign_id)]
    if as_json:
        _print_json(rows)
        return
    table = Table("attempt", "parameters", "why it waits")
    for r in rows:
        table.add_row(r["attempt_id"], ", ".join(f"{k}={v}" for k, v in r["params"].items()), r["why"] or "")
    Console().print(table)
    if not rows:
        err.print("nothing awaits approval")


@app.command("serve-ui")
def serve_ui(
    bind: str = typer.Option("127.0.0.1:8765", "--bind", help="HOST:PORT; anything but loopback needs --token"),
    token: str | None = typer.Option(None, "--token", help="access token required of every request (default: $LABPILOT_UI_TOKEN)"),
    db: str | None = typer.Option(None, help=f"SQLAlchemy URL of the store (default: $LABPILOT_DB or {DEFAULT_DB})"),
) -> None:
    """Serve the live web page of the store's campaigns: targets, data, decisions, approvals."""
    from agent.ui.server import UIConfigError, access_token, parse_bind, serve

    try:
        access_token(parse_bind(bind)[0], token)  # refused before the store is opened or a port taken
    except UIConfigError as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    store = _open_store(_db(db))
    err.print(f"live page: http://{bind}/ → {store.database} (Ctrl-C stops)", highlight=False, soft_wrap=True)
    serve(store, bind, token)


def main() -> None:
    """The ``labpilot`` console script: the app, then, once a command that loaded torch has finished and
    said everything, an immediate exit. Tearing down torch/BoTorch's modules at interpreter exit takes
    1–5 s and frees nothing the OS does not; Ray is already shut down, the store committed, and the
    document publisher closed (its ZMQ context terminated, so nothing unsent is lost)."""
    try:
        app()
    except SystemExit as exc:
        if not isinstance(exc.code, int | None) or "torch" not in sys.modules:
            raise
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(exc.code or 0)



db_app = typer.Typer(add_completion=False, no_args_is_help=True, help="The store's schema revision (Alembic migrations).")
app.add_typer(db_app, name="db")


@db_app.command("version")
def db_version(db: str | None = typer.Option(None, help=f"SQLAlchemy URL of the store (default: $LABPILOT_DB or {DEFAULT_DB})"),
               as_json: bool = typer.Option(False, "--json", help="print the result as JSON")) -> None:
    """Show the store's schema revision and the one this labpilot needs."""
    from agent.store.engine import describe_url
    from agent.store.migrate import HEAD, revision_at

    url = _db(db)
    try:
        rev = revision_at(url)
    except StoreUnavailable as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    if as_json:
        _print_json({"database": describe_url(url), "revision": rev.current, "head": HEAD, "state": rev.state, "stamped": rev.stamped})
        return
    hint = {"outdated": " — run `labpilot db upgrade`", "newer": " — written by a newer labpilot"}.get(rev.state, "")
    err.print(f"{describe_url(url)}: revision {rev.current or '(empty)'}, this labpilot {HEAD}: {rev.state}{hint}",
              highlight=False, soft_wrap=True)


@db_app.command("upgrade")
def db_upgrade(db: str | None = typer.Option(None, help=f"SQLAlchemy URL of the store (default: $LABPILOT_DB or {DEFAULT_DB})")) -> None:
    """Upgrade the store to this labpilot's schema revision (nothing to do when it is current)."""
    from agent.store.migrate import HEAD

    store = _open_store(_db(db), existing=True)
    err.print(f"{store.database}: at revision {HEAD}", highlight=False, soft_wrap=True)
    store.close()


bench_app = typer.Typer(add_completion=False, no_args_is_help=True, help="Benchmarks through the campaign engine.")
app.add_typer(bench_app, name="bench")


def _run_bench(module: Any, label: str, n: int, seed: int, total: int | None = None, *, out: Path, resume: bool,
               **options: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Every campaign of a benchmark module on local Ray, with a progress bar (log lines when stderr
    is not a terminal), each finished run kept in ``out/<bench>_runs.jsonl`` as it finishes (``resume``:
    the runs already there are not run again). ``total``: the number of campaigns (default n × the
    module's policies); ``options`` go to the module's ``run_benchmark``."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from agent.bench.checkpoint import RunCheckpoint
    from agent.runtime import ray_runtime

    bench_name = module.__name__.rsplit(".", 1)[-1]
    options["checkpoint"] = RunCheckpoint(out / f"{bench_name}_runs.jsonl", reuse=resume)

    total = total if total is not None else n * len(module.POLICIES)
    if not err.is_terminal:
        from agent.progress_log import log_to_stderr, logged_bench

        log_to_stderr()
        with ray_runtime(), logged_bench(label, total) as on_done:
            return module.run_benchmark(n, seed, on_done=on_done, **options)  # type: ignore[no-any-return]
    with ray_runtime(), Progress(
        TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err
    ) as bars:
        task = bars.add_task("campaigns", total=total)
        return module.run_benchmark(  # type: ignore[no-any-return]
            n, seed, on_done=lambda done, total: bars.update(task, completed=done), **options)


def _print_goals(summary: dict[str, Any], paths: dict[str, Path]) -> None:
    for goal, verdict in summary["goals"].items():
        err.print(f"{goal}: {'[green]met[/]' if verdict['met'] else '[red]missed[/]'} ({verdict})", highlight=False)
    err.print(f"results: {paths['json']}  figure: {paths['figure']}")


_FUTILITY_HEADERS = ("unsolvable: declared", "s on unsolvable", "median s solvable", "false unreachable")


def _futility_cells(row: dict[str, Any]) -> tuple[str, ...]:
    """The futility columns of a benchmark row (``agent.bench.common.futility_columns``), '—' when undefined."""
    def show(key: str, fmt: str) -> str:
        return "—" if row.get(key) is None else format(row[key], fmt)

    return (show("unreachable_recognised", ".2f"), show("median_seconds_on_unsolvable", ",.0f"),
            show("median_instrument_seconds_solvable", ",.0f"), show("false_unreachable_rate", ".2f"))


@bench_app.command("sas")
def bench_sas(
    quick: bool = typer.Option(False, "--quick", help="6 samples instead of 30 (a smoke run, minutes)"),
    samples: int | None = typer.Option(None, "--samples", min=1, help="number of samples (overrides --quick)"),
    seed: int = typer.Option(0, "--seed", help="seed of the sample family"),
    out: Path = typer.Option(Path("bench-results"), "--out", help="folder for the JSON results and the figure"),
    as_json: bool = typer.Option(False, "--json", help="print the summary as one JSON object"),
    resume: bool = typer.Option(False, "--resume", help="after a crash: keep the runs already in --out's <bench>_runs.jsonl"),
) -> None:
    """Adaptive SAS planning vs fixed protocol, round robin, random and the oracle, on a sample family."""
    from agent.bench import sas

    n = samples if samples is not None else (6 if quick else 30)
    summary, results = _run_bench(sas, "SAS campaigns", n, seed, out=out, resume=resume)
    paths = sas.write(summary, results, out)
    if as_json:
        _print_json(summary)
        return
    table = Table("policy", "success", "median s", "coverage 95", "ratio to adaptive", *_FUTILITY_HEADERS)
    for name, row in summary["policies"].items():
        cov = row["coverage_95"]
        table.add_row(
            name, f"{row['success_rate']:.2f}", f"{row['median_instrument_seconds']:,.0f}",
            "—" if cov is None else f"{cov:.3f}", f"{row.get('ratio_to_adaptive', 1.0):.2f}", *_futility_cells(row),
        )
    err.print(table)
    _print_goals(summary, paths)


@bench_app.command("xrd")
def bench_xrd(
    quick: bool = typer.Option(False, "--quick", help="9 samples instead of 50 (a smoke run, minutes)"),
    samples: int | None = typer.Option(None, "--samples", min=1, help="number of samples (overrides --quick)"),
    seed: int | None = typer.Option(None, "--seed", help="seed of the sample family; default: the family's (0; mismatch: 11)"),
    family: str = typer.Option("default", "--family", help="sample family: default, or mismatch (the model-mismatch "
                               "family of benchmarks.xrd_mismatch, its analysis refining the instrument profile)"),
    policies: str = typer.Option("adaptive,full_scan,heuristic", "--policies", help="comma-separated subset of the policies"),
    out: Path = typer.Option(Path("bench-results"), "--out", help="folder for the JSON results and the figure"),
    as_json: bool = typer.Option(False, "--json", help="print the summary as one JSON object"),
    resume: bool = typer.Option(False, "--resume", help="after a crash: keep the runs already in --out's <bench>_runs.jsonl"),
) -> None:
    """Adaptive XRD scan steering vs the full slow scan and an AdaptiveXRD-style heuristic."""
    from agent.bench import xrd

    chosen = _parse_names(policies, xrd.POLICIES, "--policies")
    if family not in xrd.SAMPLE_FAMILIES:
        raise typer.BadParameter(f"{family!r}: choose from {', '.join(xrd.SAMPLE_FAMILIES)}", param_hint="--family")
    n = samples if samples is not None else (9 if quick else 50)
    summary, results = _run_bench(xrd, "XRD campaigns", n, xrd.DEFAULT_SEEDS[family] if seed is None else seed,
                                  n * len(chosen), out=out, resume=resume, policies=chosen, family=family)
    paths = xrd.write(summary, results, out)
    if as_json:
        _print_json(summary)
        return
    table = Table("policy", "accuracy", "minor found", "median s", "× faster than full", "right at p≥0.95", *_FUTILITY_HEADERS)
    for name, row in summary["policies"].items():
        minor, precision = row["minor_phase_detection_rate"], row["precision_at_0.95"]
        table.add_row(
            name, f"{row['accuracy']:.2f}", "—" if minor is None else f"{minor:.2f}", f"{row['median_scan_seconds']:,.0f}",
            f"{row.get('ratio_to_full_scan', 1.0):.2f}",
            "—" if precision is None else f"{precision:.2f} ({row['n_decisions_at_0.95']})", *_futility_cells(row),
        )
    err.print(table)
    if family == "mismatch":
        _print_mismatch_table(summary)
    _print_goals(summary, paths)


def _print_mismatch_table(summary: dict[str, Any]) -> None:
    """The model-mismatch family's columns (``agent.bench.xrd``'s docstring), '—' when undefined."""
    def share(value: float | None, n: int | None = None) -> str:
        return "—" if value is None else f"{value:.2f}" + ("" if n is None else f" (n {n})")

    table = Table("policy", "in-library set right", "clean: set right", "impurity: flagged", "clean: false alarm")
    for name, row in summary["policies"].items():
        table.add_row(name, share(row.get("in_library_set_accuracy")), share(row.get("clean_accuracy"), row.get("n_clean")),
                      share(row.get("impurity_flagged"), row.get("n_impurity")), share(row.get("false_alarm")))
    err.print(table)


@bench_app.command("map")
def bench_map(
    quick: bool = typer.Option(False, "--quick", help="2 truths per system and smaller sample budgets, instead of 10 (tens of minutes)"),
    truths: int | None = typer.Option(None, "--truths", min=1, help="hidden truths per system (overrides --quick)"),
    samples: int | None = typer.Option(None, "--samples", min=1, help="sample budget per campaign for every chosen system "
                                       "(overrides --quick's and the default budgets)"),
    seed: int = typer.Option(0, "--seed", help="first truth's seed (truths are seed, seed + 1, …)"),
    systems: str = typer.Option("oxide,formulation", "--systems", help="comma-separated: oxide, formulation"),
    policies: str = typer.Option("phase_map,cameo,grid,random", "--policies", help="comma-separated subset of the policies"),
    out: Path = typer.Option(Path("bench-results"), "--out", help="folder for the JSON results and the figures"),
    as_json: bool = typer.Option(False, "--json", help="print the summary as one JSON object"),
    resume: bool = typer.Option(False, "--resume", help="after a crash: keep the runs already in --out's <bench>_runs.jsonl"),
) -> None:
    """Phase-map campaigns over samples: nested adaptive vs CAMEO-style, grid and random, on both materials systems."""
    from agent.bench import map as bench

    chosen_systems, chosen_policies = _bench_map_choices(systems, policies)
    n = truths if truths is not None else (2 if quick else 10)
    summary, results = _run_bench(bench, "map campaigns", n, seed, bench.n_runs(n, chosen_policies, chosen_systems),
                                  out=out, resume=resume, quick=quick, policies=chosen_policies, systems=chosen_systems,
                                  samples=None if samples is None else dict.fromkeys(chosen_systems, samples))
    paths = bench.write(summary, results, out)
    if as_json:
        _print_json(summary)
        return
    table = Table("system", "policy", "reached 0.9", "median s to 0.9", "samples to 0.9", "final accuracy",
                  "right at p≥0.95", "samples")
    for system, s in summary["systems"].items():
        for name, row in s["policies"].items():
            cal, t = row["calibration_095"], row["median_seconds_to_0.9"]
            table.add_row(system, name, f"{row['reached_0.9']}/{row['n_truths']}", "never" if t is None else f"{t:,.0f}",
                          str(row["median_samples_to_0.9"] or "—"), f"{row['final_accuracy']:.3f}",
                          "—" if cal is None else f"{cal:.3f} ({row['n_confident']})", f"{row['samples']:.0f}")
    err.print(table)
    _print_goals(summary, paths)
    err.print(f"final maps: {paths['maps']}")


def _bench_map_choices(systems: str, policies: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The ``--systems`` and ``--policies`` lists, each name checked (a usage error names the bad one)."""
    from agent.bench.map_campaigns import POLICIES, SYSTEMS

    return _parse_names(systems, SYSTEMS, "--systems"), _parse_names(policies, POLICIES, "--policies")


def _parse_names(text: str, known: tuple[str, ...], option: str) -> tuple[str, ...]:
    """A comma-separated list of names, each one of ``known`` (a usage error names the bad one)."""
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise typer.BadParameter(f"{unknown or 'nothing'}: choose from {', '.join(known)}", param_hint=option)
    return names


if __name__ == "__main__":
    main()
