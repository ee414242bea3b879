"""Install a backend environment with uv: which command lines, which package index, run one after
the other in the background with progress and cancel. Pure stdlib and clickgauss_core.protocol (an install
moves through the states a training job does), no bpy and no imports from the add-on, so
scripts/install-backend runs this file as it is (`python backend_installer.py`, core/ on PYTHONPATH).

The add-on zip carries the backend's uv project (scripts/build-backend-bundle puts it in
`backend_dist/`): backend/ with its pyproject.toml, uv.lock and source, and core/ (its path
dependency). The install:

1. `uv sync --locked --no-editable` into ENV.partial: exactly the package versions of the lock
   (PyPI's torch: the CUDA build on Linux, the CPU build on Windows and macOS), without PyPI's
   CUDA libraries when a CPU torch replaces it
2. where PyPI's torch is not the build asked for: torch and torchvision at the locked versions
   from PyTorch's own index (CPU on Linux, CUDA on Windows)
3. a check that the backend imports, then ENV.partial is renamed to ENV: a cancelled or failed
   install never leaves a half-made environment where the add-on looks for one.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field

from clickgauss_core.protocol import CANCELLED, DONE, FAILED, RUNNING

INSTALLED_ENV_NAME = "backend-env"  # inside the add-on's user folder (bpy.utils.extension_path_user)
BUNDLE_DIR_NAME = "backend_dist"    # inside the add-on (scripts/build-addon)
PYTHON_VERSION = "3.11"
TORCH_INDEX = "https://download.pytorch.org/whl"
VARIANTS = ("cpu", "cuda")
CUDA_FLAVOUR = "cu126"


def environment_python(env_dir: str, platform: str = sys.platform) -> str:
    """The interpreter of a virtual environment folder (bin/python, or Scripts/python.exe on Windows)."""
    if platform == "win32":
        return os.path.join(env_dir, "Scripts", "python.exe")
    return os.path.join(env_dir, "bin", "python")


def torch_index(variant: str, platform: str = sys.platform) -> str | None:
    """The package index for torch of `variant`, or None when PyPI's wheels already are that build
    (Linux: PyPI's torch is the CUDA build; Windows and macOS: the CPU build)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown torch variant {variant!r}: choose one of {', '.join(VARIANTS)}")
    if variant == "cuda":
        if platform == "darwin":
            raise ValueError("CUDA torch does not exist for macOS: choose the CPU variant")
        return None if platform.startswith("linux") else f"{TORCH_INDEX}/{CUDA_FLAVOUR}"
    return f"{TORCH_INDEX}/cpu" if platform.startswith("linux") else None


def locked_versions(lock_file: str) -> dict[str, str]:
    """name -> version of every package in a uv.lock."""
    with open(lock_file, encoding="utf-8") as stream:
        text = stream.read()
    return dict(re.findall(r'^\[\[package\]\]\nname = "([^"]+)"\nversion = "([^"]+)"', text, flags=re.MULTILINE))


def pinned(lock_file: str, names=("torch", "torchvision")) -> list[str]:
    """`name==version` of `names` as the lock has them."""
    versions = locked_versions(lock_file)
    return [f"{name}=={versions[name]}" for name in names if name in versions]


CUDA_ONLY_PACKAGES = re.compile(r"^(nvidia-|cuda-|triton$)", re.IGNORECASE)


def cuda_only_packages(lock_file: str) -> list[str]:
    """The CUDA libraries PyPI's Linux torch pulls in (about 3 GB a CPU torch does not need)."""
    return sorted(name for name in locked_versions(lock_file) if CUDA_ONLY_PACKAGES.match(name))


@dataclass(frozen=True)
class Step:
    title: str
    command: list[str]
    env: dict = field(default_factory=dict)  # added to the environment the command runs in


def install_steps(uv: str, env_dir: str, bundle_dir: str, variant: str, offline: bool = False,
                  platform: str = sys.platform) -> list[Step]:
    """The command lines that make a backend environment at `env_dir` (built in `env_dir`.partial)."""
    partial = env_dir + ".partial"
    python = environment_python(partial, platform)
    project = os.path.join(bundle_dir, "backend")
    lock = os.path.join(project, "uv.lock")
    if not os.path.isfile(lock) or not os.path.isfile(os.path.join(bundle_dir, "core", "pyproject.toml")):
        raise FileNotFoundError(f"{bundle_dir} does not hold the backend's project (backend/uv.lock and core/): use an "
                                "add-on zip made by scripts/build-addon")
    index = torch_index(variant, platform)
    extra = ["--offline"] if offline else []
    skipped = []
    if index is not None and variant == "cpu":
        for name in cuda_only_packages(lock):
            skipped += ["--no-install-package", name]
    steps = [Step("Installing the backend's packages (the largest step)",
                  [uv, "sync", *extra, "--locked", "--no-dev", "--no-editable", "--python", PYTHON_VERSION,
                   "--project", project, *skipped], {"UV_PROJECT_ENVIRONMENT": partial})]
    if index is not None:
        torch = pinned(lock)
        steps.append(Step(f"Installing {variant.upper()} torch",
                          [uv, "pip", "install", *extra, "--python", python, "--index-url", index, "--no-deps",
                           *[arg for pin in torch for arg in ("--reinstall-package", pin.split("==")[0])], *torch]))
    steps.append(Step("Checking the backend", [python, "-c", "import clickgauss_backend.cli, torch; "
                                                        "print('torch', torch.__version__)"]))
    return steps


def find_uv(extra_dirs=()) -> str | None:
    """uv on PATH, or in one of `extra_dirs` (where an earlier install may have put it)."""
    found = shutil.which("uv")
    if found:
        return found
    for folder in extra_dirs:
        for name in ("uv", "uv.exe"):
            candidate = os.path.join(folder, name)
            if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                return candidate
    return None


def uv_bootstrap_step(python: str, tools_dir: str) -> Step:
    """Install uv itself with pip (into `tools_dir`), for a machine that has no uv."""
    return Step("Installing uv (the package installer)", [python, "-m", "pip", "install", "--quiet", "--target",
                                                          tools_dir, "uv"])


@dataclass
class InstallRun:
    """Runs `steps` one after the other in the background; `poll()` from a timer moves it on.

    state: RUNNING | DONE | FAILED | CANCELLED; `message` says where it is, or what went
    wrong and what to do; the full output of every step is in `log_path`."""

    steps: list[Step]
    env_dir: str
    log_path: str
    env: dict | None = None
    state: str = RUNNING
    index: int = -1
    message: str = ""
    process: subprocess.Popen | None = field(default=None, repr=False)
    started: float = field(default_factory=time.monotonic)

    def __post_init__(self):
        os.makedirs(os.path.dirname(os.path.abspath(self.log_path)), exist_ok=True)
        shutil.rmtree(self.env_dir + ".partial", ignore_errors=True)
        open(self.log_path, "w").close()
        self._next()

    @property
    def progress(self) -> float:
        return max(0, self.index) / max(1, len(self.steps))

    def _next(self) -> None:
        self.index += 1
        if self.index == len(self.steps):
            shutil.rmtree(self.env_dir, ignore_errors=True)
            os.replace(self.env_dir + ".partial", self.env_dir)
            self.state, self.process = DONE, None
            self.message = f"Backend installed in {self.env_dir}: press Start Local"
            return
        step = self.steps[self.index]
        self.message = f"{step.title} (step {self.index + 1} of {len(self.steps)})"
        with open(self.log_path, "a", encoding="utf-8") as log:
            log.write(f"\n$ {' '.join(step.command)}\n")
            log.flush()
            try:
                env = {**(self.env if self.env is not None else os.environ), **step.env}
                self.process = subprocess.Popen(step.command, stdout=log, stderr=subprocess.STDOUT,
                                                stdin=subprocess.DEVNULL, env=env)
            except OSError as exc:
                self._fail(f"{step.title} could not run ({exc.strerror}: {step.command[0]})")

    def poll(self) -> str:
        """Move on when the current step has ended; returns the state."""
        while self.state == RUNNING and self.process is not None and self.process.poll() is not None:
            if self.process.returncode != 0:
                self._fail(f"{self.steps[self.index].title} failed (exit status {self.process.returncode})")
            else:
                self._next()
        return self.state

    def wait(self, interval: float = 0.5) -> str:
        while self.poll() == RUNNING:
            time.sleep(interval)
        return self.state

    def cancel(self) -> None:
        if self.state != RUNNING:
            return
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        shutil.rmtree(self.env_dir + ".partial", ignore_errors=True)
        self.state, self.message = CANCELLED, "Backend install cancelled: nothing was kept; install again any time"

    def _fail(self, what: str) -> None:
        shutil.rmtree(self.env_dir + ".partial", ignore_errors=True)
        self.state, self.process = FAILED, None
        self.message = (f"{what}: the end of its log ({self.log_path}) says why. Check the internet connection and "
                        f"the free disk space (about 6 GB), then install again. {self.last_log_line()}").strip()

    def last_log_line(self) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as log:
                lines = [line.strip() for line in log if line.strip()]
        except OSError:
            return ""
        return f"Last line: {lines[-1][:300]}" if lines else ""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Install a ClickGauss backend environment with uv "
                                                 "(what the add-on's Install Backend does).")
    parser.add_argument("--bundle", required=True, help="folder with the backend's project (backend_dist/ of an "
                                                        "add-on zip, or what scripts/build-backend-bundle wrote)")
    parser.add_argument("--dir", required=True, help="the environment folder to create")
    parser.add_argument("--variant", choices=VARIANTS, default="cuda", help="torch build (default: cuda)")
    parser.add_argument("--offline", action="store_true", help="install from uv's cache only, no downloads")
    args = parser.parse_args(argv)
    uv = find_uv()
    if uv is None:
        print("install-backend: uv is not installed: install it (https://docs.astral.sh/uv/) and try again",
              file=sys.stderr)
        return 1
    env_dir = os.path.abspath(args.dir)
    run = InstallRun(install_steps(uv, env_dir, os.path.abspath(args.bundle), args.variant, args.offline),
                     env_dir, env_dir + ".install.log")
    shown = ""
    while run.poll() == RUNNING:
        if run.message != shown:
            print(run.message, flush=True)
            shown = run.message
        time.sleep(0.5)
    print(run.message, file=sys.stderr if run.state != DONE else sys.stdout)
    if run.state == DONE:
        print(f"Start it with: {os.path.join(os.path.dirname(environment_python(env_dir)), 'clickgauss-backend')} serve")
    return 0 if run.state == DONE else 1


if __name__ == "__main__":
    sys.exit(main())
