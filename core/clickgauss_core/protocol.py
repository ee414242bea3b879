"""The protocol's vocabulary, written once: both halves import these names instead of spelling them.

The add-on (inside Blender) and the backend (server, CLI, benchmarks) speak about the same job
states, feature levels, training presets and error codes; `docs/protocol.md` explains each one.
`tests/core/test_vocabulary.py` fails when one of these words is written as a literal elsewhere.
"""

from __future__ import annotations

# --- the service -------------------------------------------------------------------------------
API_VERSION = "v1"
API_PREFIX = f"/{API_VERSION}"
DEFAULT_PORT = 8765
TOKEN_ENV = "CLICKGAUSS_TOKEN"       # the environment variable a server reads its token from
TOKEN_HEADER = "Authorization"       # sent as "Bearer <token>"

# --- feature levels ----------------------------------------------------------------------------
COARSE = "coarse"
FINE = "fine"
LEVELS = (COARSE, FINE)

# --- training jobs -----------------------------------------------------------------------------
QUEUED = "queued"
RUNNING = "running"
DONE = "done"
FAILED = "failed"
CANCELLED = "cancelled"
INTERRUPTED = "interrupted"     # the server stopped (or died) while the job ran; resumable
JOB_STATES = (QUEUED, RUNNING, DONE, FAILED, CANCELLED, INTERRUPTED)
ACTIVE_STATES = (QUEUED, RUNNING)                    # a job the server is working on
FINISHED_STATES = (DONE, FAILED, CANCELLED, INTERRUPTED)
RESUMABLE_STATES = (INTERRUPTED, CANCELLED, FAILED)

# --- training presets --------------------------------------------------------------------------
PRESET_PAPER = "paper"          # the paper's hyperparameters, unchanged
PRESET_GPU = "gpu"              # the paper's schedule with our robustness changes (default on CUDA)
PRESET_CPU_FAST = "cpu-fast"    # minutes on a laptop CPU (default elsewhere)
PRESET_TINY = "tiny"            # seconds: tests and smoke runs
PRESET_NAMES = (PRESET_PAPER, PRESET_GPU, PRESET_CPU_FAST, PRESET_TINY)

# --- error codes (docs/protocol.md, "Errors") --------------------------------------------------
# Sent by the server as {"error": {"code", "message"}}.
BAD_TOKEN = "bad_token"
BAD_REQUEST = "bad_request"
MALFORMED_JSON = "malformed_json"
REQUEST_TOO_LARGE = "request_too_large"
BAD_HOST = "bad_host"
BAD_CAMERA = "bad_camera"
BAD_PIXEL = "bad_pixel"
FILE_NOT_FOUND = "file_not_found"
OUTSIDE_DATA_ROOT = "outside_data_root"
INVALID_PLY = "invalid_ply"
INVALID_DATASET = "invalid_dataset"
INVALID_MASKS = "invalid_masks"
INVALID_FIELD = "invalid_field"
SAM_NOT_CONFIGURED = "sam_not_configured"
UPLOAD_TOO_LARGE = "upload_too_large"
UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
UNKNOWN_SCENE = "unknown_scene"
JOB_NOT_FOUND = "job_not_found"
NO_FEATURES = "no_features"
TRAINING_RUNNING = "training_running"
JOB_NOT_RESUMABLE = "job_not_resumable"
NOT_FOUND = "not_found"
METHOD_NOT_ALLOWED = "method_not_allowed"
INTERNAL_ERROR = "internal_error"
SERVER_ERROR_CODES = (
    BAD_TOKEN, BAD_REQUEST, MALFORMED_JSON, REQUEST_TOO_LARGE, BAD_HOST, BAD_CAMERA, BAD_PIXEL,
    FILE_NOT_FOUND, OUTSIDE_DATA_ROOT, INVALID_PLY, INVALID_DATASET, INVALID_MASKS, INVALID_FIELD,
    SAM_NOT_CONFIGURED, UPLOAD_TOO_LARGE, UNSUPPORTED_MEDIA_TYPE, UNKNOWN_SCENE, JOB_NOT_FOUND,
    NO_FEATURES, TRAINING_RUNNING, JOB_NOT_RESUMABLE, NOT_FOUND, METHOD_NOT_ALLOWED, INTERNAL_ERROR,
)

# Raised by the add-on's client itself, when no usable answer came back.
UNREACHABLE = "unreachable"     # nothing answers at the URL
TIMEOUT = "timeout"             # no complete answer within the deadline
BAD_ANSWER = "bad_answer"       # an answer of the wrong shape
HTTP_ERROR = "http_error"       # an HTTP error that is not a ClickGauss error body
CLIENT_ERROR_CODES = (UNREACHABLE, TIMEOUT, BAD_ANSWER, HTTP_ERROR)
