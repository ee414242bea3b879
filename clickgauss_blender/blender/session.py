"""Runtime state of the add-on (not saved in the .blend) and the worker-thread mechanism that
keeps the UI responsive: network calls run on a thread, their results are handed back to Blender's
main thread by a `bpy.app.timers` callback (bpy must only be touched from the main thread)."""

from __future__ import annotations

import atexit
import queue
import threading
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

import bpy
from clickgauss_core.protocol import ACTIVE_STATES, FINISHED_STATES  # noqa: F401  (FINISHED_STATES: for scripts that follow a job)

TIMER_INTERVAL = 0.1
JOB_POLL_INTERVAL = 0.5
# The add-on's own state of a job before the server has one: the scene is being opened (or uploaded).
OPENING = "opening"
ACTIVE_JOB_STATES = (OPENING, *ACTIVE_STATES)  # Train Features waits while a job is in one of these


@dataclass
class BackendStatus:
    state: str = "unknown"        # unknown | checking | starting | connected | protocol.UNREACHABLE
    message: str = ""
    health: dict = field(default_factory=dict)


@dataclass
class SessionState:
    backend: BackendStatus = field(default_factory=BackendStatus)
    jobs: dict[str, dict] = field(default_factory=dict)          # object name -> latest job object
    errors: dict[str, str] = field(default_factory=dict)         # object name -> last error for the panel
    notices: dict[str, str] = field(default_factory=dict)        # object name -> last outcome for the panel
    error_codes: dict[str, str | None] = field(default_factory=dict)  # object name -> the backend's code of it
    reports: list[tuple[str, str]] = field(default_factory=list)  # the latest status-bar reports (level, text)
    segments: dict[str, dict] = field(default_factory=dict)      # scene id -> {"coarse": ids, "fine": ids}
    segment_requests: set = field(default_factory=set)           # scene ids whose segments are being fetched
    pending_clicks: dict[str, Any] = field(default_factory=dict)  # object name -> click.PendingClick
    clicks: dict[str, Any] = field(default_factory=dict)         # object name -> latest ClickResult
    local_process: Any = None                                     # subprocess.Popen of "Start local backend"
    local_log: str = ""
    local_roots: list[str] = field(default_factory=list)        # the folders it may read (--data-root)
    local_source: str = ""                                        # where the add-on found it (local_backend)
    local_url: str = ""                                           # the URL it answers at
    install: Any = None                                           # backend_installer.InstallRun of Install Backend
    install_message: str = ""                                     # why Install Backend refused, for the preferences


STATE = SessionState()
MAX_REPORTS = 50


def notify(level: str, text: str) -> None:
    """Say `text` in Blender's status bar (and the Info log), also from background work: a timer
    callback has no operator of its own to report with, so it runs the add-on's report operator."""
    STATE.reports.append((level, text))
    del STATE.reports[:-MAX_REPORTS]
    try:
        bpy.ops.clickgauss.report("EXEC_DEFAULT", level=level, message=text)
    except (AttributeError, RuntimeError):  # the add-on is being unregistered: the panel still shows errors
        pass


def show_error(object_name: str, error: BaseException | str, doing: str = "") -> None:
    """Show `error` for the object in the panel (in full) and in the status bar (once per new text)."""
    from ..messages import describe, error_code, sentence

    text = describe(error) if isinstance(error, BaseException) else sentence(error)
    if doing:
        text = f"{doing}: {text[:1].lower()}{text[1:]}"
    STATE.error_codes[object_name] = error_code(error) if isinstance(error, BaseException) else None
    if STATE.errors.get(object_name) != text:
        STATE.errors[object_name] = text
        notify("ERROR", text)


def clear_error(object_name: str) -> None:
    STATE.errors.pop(object_name, None)
    STATE.error_codes.pop(object_name, None)


def clear_connection_errors() -> None:
    """The backend answers again: drop the "not reachable" errors it left behind."""
    from ..messages import CONNECTION_CODES

    for name, code in list(STATE.error_codes.items()):
        if code in CONNECTION_CODES:
            clear_error(name)


class BackgroundTasks:
    """Run `work()` on a daemon thread; `on_done(result, error)` later runs on the main thread."""

    def __init__(self):
        self._finished: queue.Queue = queue.Queue()
        self._running = 0
        self._lock = threading.Lock()
        # One bound method object for bpy.app.timers: it compares callbacks by identity, and
        # `self._on_timer` makes a new object on every access.
        self._timer = self._on_timer

    def submit(self, work: Callable[[], Any], on_done: Callable[[Any, BaseException | None], None]) -> None:
        with self._lock:
            self._running += 1
        threading.Thread(target=self._run, args=(work, on_done), daemon=True).start()
        if not bpy.app.timers.is_registered(self._timer):
            bpy.app.timers.register(self._timer, first_interval=TIMER_INTERVAL, persistent=True)

    def _run(self, work, on_done):
        try:
            result, error = work(), None
        except BaseException as exc:  # handed to on_done, which reports it in the UI
            result, error = None, exc
        self._finished.put((on_done, result, error))
        with self._lock:
            self._running -= 1

    def busy(self) -> bool:
        with self._lock:
            return self._running > 0 or not self._finished.empty()

    def deliver_finished(self) -> int:
        """Call the callbacks of the finished tasks (main thread); returns how many ran."""
        delivered = 0
        while True:
            try:
                on_done, result, error = self._finished.get_nowait()
            except queue.Empty:
                return delivered
            run_callback(on_done, result, error)
            delivered += 1

    def _on_timer(self):
        self.deliver_finished()
        redraw_ui()
        return TIMER_INTERVAL if self.busy() else None


TASKS = BackgroundTasks()


def run_callback(on_done, result, error) -> None:
    """One hand-back on the main thread. A failing callback is reported on the console and the
    others still run: an exception escaping the timer would unregister it for good."""
    try:
        on_done(result, error)
    except Exception:
        print("ClickGauss: a background result could not be applied:\n" + traceback.format_exc())


def redraw_ui() -> None:
    window_manager = bpy.context.window_manager
    for window in getattr(window_manager, "windows", ()):
        for area in window.screen.areas:
            if area.type == "VIEW_3D":
                area.tag_redraw()


def stop_timer() -> None:
    if bpy.app.timers.is_registered(TASKS._timer):
        bpy.app.timers.unregister(TASKS._timer)


# Blender as a Python module (scripts, tests, the demo) has no event loop, so the timer is never
# called and stays registered; Blender then crashes while exiting with a Python timer still
# registered. Runs before bpy's own exit handler (atexit is last-in, first-out).
atexit.register(stop_timer)
