"""What one server process is configured with (from `clickgauss-backend serve` flags)."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_MAX_UPLOAD_MB = 2048.0
DEFAULT_MAX_JSON_KB = 1024.0  # a click is ~1 KB, a training request less
LOOPBACK_HOST_NAMES = ("localhost", "127.0.0.1", "[::1]")


def default_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "clickgauss"


@dataclass
class ServerSettings:
    cache_dir: Path = field(default_factory=default_cache_dir)
    data_roots: list[Path] = field(default_factory=lambda: [Path.home()])
    token: str | None = None
    device: str = "auto"               # "cuda" | "cpu" | "auto"
    sam_checkpoint: Path | None = None
    sam_model: str = "vit_h"
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB
    max_json_kb: float = DEFAULT_MAX_JSON_KB
    # Host names (port ignored) requests must carry; None: any. `serve` sets the loopback names on
    # a loopback bind (DNS rebinding) plus --allowed-host.
    allowed_hosts: list[str] | None = None
    loaded_scene_capacity: int = 4     # scenes (cloud + tensors + field) kept in memory, LRU

    def __post_init__(self):
        self.cache_dir = Path(self.cache_dir).expanduser().resolve()
        # Roots are resolved once so that the containment check compares real paths on both sides.
        self.data_roots = [Path(root).expanduser().resolve() for root in self.data_roots]
        if self.sam_checkpoint is not None:
            self.sam_checkpoint = Path(self.sam_checkpoint).expanduser().resolve()
        self.token = self.token or None

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def max_json_bytes(self) -> int:
        return int(self.max_json_kb * 1024)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve anywhere


def resolve_device(requested: str) -> str:
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but torch sees no CUDA device")
    return requested
