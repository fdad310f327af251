"""``stylekit serve start|status|stop``: a local TorchServe for the archives in a model store.

TorchServe keeps per-server files in shared places (``$TMPDIR/.model_server.pid``,
``$TEMP/models``, ``/tmp/.ts.sock.<worker port>``) and writes its token file into its working
directory. So every server gets a *run directory* of its own: working directory, ``TMPDIR`` and
``TEMP``, logs, the effective ``config.properties`` and ``key_file.json`` all live there, and a
``state.json`` records where the server listens. The server runs in its own session, so stopping
it can end every process it started (launcher, Java frontend, Python workers) and nothing else.

Clients find the server through that state file: ``StyleClient()`` with no arguments reads
``$STYLEKIT_HOME/serve/state.json`` and the tokens from the key file beside it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sdk import settings
from sdk.client import StyleClient
from sdk.errors import BadOptionError, ServerError, ServerUnavailableError, StylekitError
from sdk.serving.state import KEY_FILE, STATE_FILE, ServerState

log = logging.getLogger(__name__)

# The local server's TorchServe config ships with the package (what an installed command needs).
DEFAULT_CONFIG = Path(__file__).resolve().parent / "config" / "config.properties"


def read_properties(path: Path) -> dict[str, str]:
    """Read the ``key=value`` lines of a Java properties file (the subset TorchServe configs use)."""
    props: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", "!")) or "=" not in line:
            continue
        key, value = line.split("=", 1)
        # Java unescapes backslashes on load; keep the written form so a rewrite round-trips.
        props[key.strip()] = value.strip()
    return props


def write_properties(path: Path, props: dict[str, str]) -> None:
    lines = ["# Written by `stylekit serve start`; edit the source config instead."]
    lines += [f"{key}={value}" for key, value in props.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _java_regex_literal(text: str) -> str:
    """Escape ``text`` for a Java regex inside a properties file (backslashes doubled once more)."""
    out = []
    for ch in text:
        if ch in r"\.[]{}()*+?^$|":
            out.append("\\\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def _session_processes(sid: int) -> list[Any]:
    """Every live process in session ``sid`` (the server's launcher, Java, the workers)."""
    import psutil  # a TorchServe dependency; only the serve commands need it

    found = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if os.getsid(proc.pid) == sid and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    return found


def session_alive(sid: int) -> bool:
    return bool(_session_processes(sid))


def _pick_models(store: Path, models: str) -> list[str]:
    available = sorted(p.stem for p in store.glob("*.mar"))
    if models == "all":
        if not available:
            raise BadOptionError(f"No model archives (*.mar) in {store}; run 'stylekit archive --all' first.")
        return available
    wanted = [m.strip() for m in models.split(",") if m.strip()]
    missing = [m for m in wanted if m not in available]
    if missing or not wanted:
        raise BadOptionError(
            f"No archive for {', '.join(missing) or '(none given)'} in {store} "
            f"(available: {', '.join(available) or 'none'})."
        )
    return wanted


def _url(address: str) -> str:
    return address.rstrip("/")


def _client(state: ServerState) -> StyleClient:
    """The launcher's own client for a server it started: the state file gives it the keys."""
    return StyleClient(state.inference_url, run_dir=state.run_dir, retries=0, timeout=5)


def _health(client: StyleClient) -> str | None:
    try:
        return str(client.health().get("status"))
    except StylekitError:
        return None


def _describe(client: StyleClient, model: str) -> dict[str, Any]:
    """TorchServe's description of a model ({} when it does not answer)."""
    try:
        return client.describe(model, retry=False, customized=False)
    except StylekitError:
        return {}


def start(
    *,
    config: str | os.PathLike[str] | None = None,
    model_store: str | os.PathLike[str] | None = None,
    models: str = "all",
    gpu: bool = False,
    port: int | None = None,
    worker_port: int | None = None,
    run_dir: str | os.PathLike[str] | None = None,
    timeout: float = 120.0,
    env: Mapping[str, str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> ServerState:
    """Start TorchServe in its own session; return once it is healthy and every model has workers.

    ``port`` sets the inference port and puts management, metrics and the two gRPC ports on
    the next four, all on 127.0.0.1; without it the addresses come from the config file
    (the shipped one binds loopback). Without ``gpu`` the server runs on CPU only. ``env``
    adds environment variables for the server and its workers (``STYLEKIT_MAX_PIXELS``, ...).
    ``progress`` is told, in a sentence, what the start is waiting for.
    """
    run = Path(run_dir or settings.serve_dir()).resolve()
    existing = ServerState.load(run)
    if existing is not None and session_alive(existing.pid):
        raise ServerError(
            f"A server started from {run} is already running (pid {existing.pid}, "
            f"{existing.inference_url}); stop it first with 'stylekit serve stop'."
        )
    cfg_path = Path(config) if config else DEFAULT_CONFIG
    if not cfg_path.is_file():
        raise BadOptionError(f"TorchServe config {cfg_path} not found (pass --config).")
    props = read_properties(cfg_path)
    # A relative model_store in the config is relative to where the command runs, as for TorchServe.
    store = Path(
        model_store if model_store is not None else props.get("model_store", "model_archives")
    ).resolve()
    if not store.is_dir():
        raise BadOptionError(f"Model store {store} is not a folder.")
    chosen = _pick_models(store, models)

    props["model_store"] = str(store)
    props["load_models"] = ",".join(f"{m}={m}.mar" for m in chosen)
    # Models can come from this store only; no URL of any other place is allowed.
    props["allowed_urls"] = f"^file://{_java_regex_literal(str(store))}/[^/]+{_java_regex_literal('.mar')}$"
    if not gpu:
        props["number_of_gpu"] = "0"
    if port is not None:
        props["inference_address"] = f"http://127.0.0.1:{port}"
        props["management_address"] = f"http://127.0.0.1:{port + 1}"
        props["metrics_address"] = f"http://127.0.0.1:{port + 2}"
        props["grpc_inference_address"] = "127.0.0.1"
        props["grpc_inference_port"] = str(port + 3)
        props["grpc_management_address"] = "127.0.0.1"
        props["grpc_management_port"] = str(port + 4)
    if worker_port is not None:
        props["initial_worker_port"] = str(worker_port)

    run.mkdir(parents=True, exist_ok=True)
    run.chmod(0o700)  # the key file TorchServe writes here is as good as a password
    tmp = run / "tmp"
    tmp.mkdir(exist_ok=True)
    (run / "logs").mkdir(exist_ok=True)
    for stale in (run / KEY_FILE, run / STATE_FILE, tmp / ".model_server.pid"):
        stale.unlink(missing_ok=True)
    effective = run / "config.properties"
    write_properties(effective, props)

    child_env = {**os.environ, **(env or {})}
    child_env.update(
        TMPDIR=str(tmp), TEMP=str(tmp), LOG_LOCATION=str(run / "logs"), METRICS_LOCATION=str(run / "logs")
    )
    child_env.pop("TS_CONFIG_FILE", None)  # it would replace the config written above
    cmd = [
        sys.executable, "-m", "ts.model_server", "--start", "--foreground",
        "--ts-config", str(effective), "--model-store", str(store), "--no-config-snapshots",
    ]  # fmt: skip
    out = open(run / "logs" / "torchserve.out", "ab")  # noqa: SIM115 - the child keeps its own copy
    try:
        proc = subprocess.Popen(
            cmd, cwd=run, env=child_env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
    finally:
        out.close()
    state = ServerState(
        pid=proc.pid,
        run_dir=str(run),
        inference_url=_url(props.get("inference_address", "http://127.0.0.1:8080")),
        management_url=_url(props.get("management_address", "http://127.0.0.1:8081")),
        metrics_url=_url(props.get("metrics_address", "http://127.0.0.1:8082")),
        model_store=str(store),
        models=chosen,
        gpu=gpu,
        started_at=time.time(),
    )
    state.save()
    log.info("started TorchServe (session %d) in %s", proc.pid, run)
    if progress is not None:
        progress(f"TorchServe started (pid {proc.pid}); waiting until it answers and "
                 f"{', '.join(chosen)} each have a ready worker (up to {timeout:.0f} s)...")  # fmt: skip
    try:
        _wait_healthy(state, proc, timeout)
    except BaseException:
        stop(state)
        raise
    return state


def _log_tail(run: Path, lines: int = 15) -> str:
    text = ""
    for name in ("torchserve.out", "ts_log.log", "model_log.log"):
        path = run / "logs" / name
        if path.is_file():
            text += "".join(path.read_text(encoding="utf-8", errors="replace").splitlines(True)[-lines:])
    return text.strip()


def _wait_healthy(state: ServerState, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with _client(state) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise ServerUnavailableError(
                    f"TorchServe exited with status {proc.returncode} while starting; log tail:\n"
                    f"{_log_tail(Path(state.run_dir))}"
                )
            # /ping says Healthy before the first workers have loaded their models.
            if state.key_file.is_file() and _health(client) == "Healthy" and _workers_ready(client, state):
                log.info("TorchServe healthy at %s", state.inference_url)
                return
            time.sleep(0.25)
    raise ServerUnavailableError(
        f"TorchServe did not become healthy within {timeout:.0f} s; "
        f"log tail:\n{_log_tail(Path(state.run_dir))}"
    )


def _workers_ready(client: StyleClient, state: ServerState) -> bool:
    """True when every model of ``state`` has at least one worker and all of them are READY."""
    for name in state.models:
        workers = _describe(client, name).get("workers") or []
        if not workers or any(w.get("status") != "READY" for w in workers):
            return False
    return True


def stop(state: ServerState | None = None, *, run_dir: str | os.PathLike[str] | None = None,
         timeout: float = 30.0) -> bool:  # fmt: skip
    """Stop the server and every process of its session; ``False`` if none was running."""
    if state is None:
        state = ServerState.load(run_dir)
        if state is None:
            return False
    run = Path(state.run_dir)
    was_running = session_alive(state.pid)
    if was_running:
        # TERM to the whole group: the Java frontend runs its shutdown hook (workers stop),
        # the launcher exits; whatever is left after the grace period is killed.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(state.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and session_alive(state.pid):
            time.sleep(0.2)
        leftovers = _session_processes(state.pid)
        for proc in leftovers:
            log.warning("killing TorchServe process %d that ignored SIGTERM", proc.pid)
            proc.kill()
        if leftovers:
            import psutil

            psutil.wait_procs(leftovers, timeout=10)
    # Reap the launcher if it is our child (a stop in the same process as the start).
    with contextlib.suppress(ChildProcessError):
        os.waitpid(state.pid, os.WNOHANG)
    for name in (STATE_FILE, KEY_FILE):
        (run / name).unlink(missing_ok=True)
    (run / "tmp" / ".model_server.pid").unlink(missing_ok=True)
    log.info("stopped TorchServe (session %d)", state.pid)
    return was_running


def status(run_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Where the server runs, whether it answers, and its models with their worker states."""
    state = ServerState.load(run_dir)
    if state is None or not session_alive(state.pid):
        return {"running": False, "run_dir": str(Path(run_dir or settings.serve_dir()))}
    info: dict[str, Any] = {"running": True, **asdict(state), "key_file": str(state.key_file)}
    models: dict[str, Any] = {}
    with _client(state) as client:
        info["health"] = _health(client) or "unreachable"
        for name in state.models:
            described = _describe(client, name)
            workers = described.get("workers") or []
            listed = [{"pid": w.get("pid"), "status": w.get("status"), "gpu": w.get("gpu")} for w in workers]
            models[name] = {"workers": listed}
            if described:
                models[name]["version"] = described.get("modelVersion")
                models[name]["batch_size"] = described.get("batchSize")
    info["models"] = models
    return info


