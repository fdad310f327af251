"""What a local server leaves for its clients: ``state.json`` and TorchServe's ``key_file.json``.

``stylekit serve start`` writes the state file into the server's run directory (default
``$STYLEKIT_HOME/serve``); :class:`sdk.client.StyleClient` reads it, and the key file beside
it, to find a server and its tokens when it is given none. Both sides share this module, which
imports nothing of the launcher, so a remote client never loads serving code.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sdk import settings
from sdk._fs import atomic_write
from sdk.errors import ServerError

STATE_FILE = "state.json"
KEY_FILE = "key_file.json"


@dataclass
class ServerState:
    """Where a server started by :func:`start` runs; saved as ``state.json`` in its run dir."""

    pid: int
    run_dir: str
    inference_url: str
    management_url: str
    metrics_url: str
    model_store: str
    models: list[str] = field(default_factory=list)
    gpu: bool = False
    started_at: float = 0.0

    @property
    def key_file(self) -> Path:
        return Path(self.run_dir) / KEY_FILE

    def tokens(self) -> dict[str, str]:
        """The current ``inference``/``management``/``api`` keys from the server's key file."""
        return read_key_file(self.key_file)

    def save(self) -> None:
        text = json.dumps(asdict(self), indent=2) + "\n"
        atomic_write(Path(self.run_dir) / STATE_FILE, text.encode("utf-8"))

    @classmethod
    def load(cls, run_dir: str | os.PathLike[str] | None = None) -> ServerState | None:
        path = Path(run_dir or settings.serve_dir()) / STATE_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(**data)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError) as exc:
            raise ServerError(f"Unreadable server state file {path}: {exc}.") from exc


def read_key_file(path: Path) -> dict[str, str]:
    """``key_file.json`` -> ``{"inference": key, "management": key, "api": key}``."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ServerError(f"Cannot read TorchServe key file {path}: {exc}.") from exc
    keys: dict[str, str] = {}
    for kind in ("inference", "management"):
        entry = data.get(kind)
        if isinstance(entry, dict) and isinstance(entry.get("key"), str):
            keys[kind] = entry["key"]
    api = data.get("API")
    if isinstance(api, dict) and isinstance(api.get("key"), str):
        keys["api"] = api["key"]
    return keys


__all__ = ["KEY_FILE", "STATE_FILE", "ServerState", "read_key_file"]
