"""What the add-on asks the backend in more than one request, and what a finished job means to
the user. No bpy: these run on the worker thread (blender/backend_tasks.py hands them out) and
tests call them directly."""

from __future__ import annotations

from clickgauss_core.files import atomic_write
from clickgauss_core.protocol import CANCELLED, DONE, FILE_NOT_FOUND, OUTSIDE_DATA_ROOT

from .client import BackendClient, BackendError

# Answers to POST /v1/scenes meaning "the server cannot read that path": send the file instead.
UPLOAD_INSTEAD = (FILE_NOT_FOUND, OUTSIDE_DATA_ROOT)


def open_scene(client: BackendClient, ply_path: str, dataset_path: str | None) -> dict:
    """The backend scene of a PLY: by path when the server can read it, else uploaded. A dataset
    cannot be uploaded: when the backend cannot read it either, say so plainly."""
    try:
        return client.open_scene(ply_path, dataset_path)
    except BackendError as exc:
        if exc.code not in UPLOAD_INSTEAD:
            raise
    try:
        return client.upload_scene(ply_path, dataset_path)
    except BackendError as exc:
        if not dataset_path or exc.code not in UPLOAD_INSTEAD:
            raise
        why = ("it is not on the backend's computer" if exc.code == FILE_NOT_FOUND
               else "the backend may only read other folders")
        raise BackendError(exc.code, (
            f"The backend at {client.url} cannot read the dataset folder {dataset_path} ({why}). The add-on sends the "
            "scene's file to a backend that cannot read it, but not its dataset: press Start Local to train on this "
            "computer, or copy the dataset to the backend's computer and set Dataset to its path there (starting the "
            "backend with --data-root for that folder)"), exc.status) from None


def open_and_train(client: BackendClient, ply_path: str, dataset_path: str | None, request: dict) -> tuple[dict, dict]:
    """Open the scene and start a training job with `request` (masks / preset / views); (scene, job)."""
    scene = open_scene(client, ply_path, dataset_path)
    job = client.start_training(scene["scene_id"], request["masks"], request["preset"], views=request["views"])
    return scene, job


def save_features(client: BackendClient, scene_id: str, path: str) -> int:
    """Download the scene's feature field (the backend's .npz, checked to be one) to `path`,
    atomically (an existing file is replaced only by a complete one); returns its size."""
    data = client.download_field(scene_id)
    with atomic_write(path) as stream:
        stream.write(data)
    return len(data)


def saved_features_notice(path: str, size: int) -> str:
    return f"Saved the features to {path} ({size / 1e6:.1f} MB)"


def load_features(client: BackendClient, ply_path: str, dataset_path: str | None, field_path: str) -> dict:
    """Open the scene on the backend and give it the feature field saved in `field_path`."""
    scene = open_scene(client, ply_path, dataset_path)
    return client.upload_field(scene["scene_id"], field_path)


def training_outcome(object_name: str, job: dict) -> tuple[str, str]:
    """What to tell the user about a job that ended: (INFO | ERROR, text)."""
    if job["state"] == DONE:
        return "INFO", f"Training finished for {object_name}: Shift+click in the viewport to select"
    if job["state"] == CANCELLED:
        return "INFO", f"Training of {object_name} cancelled: Resume continues from its last checkpoint"
    return "ERROR", ((job.get("error") or {}).get("message")
                     or f"the training was {job['state']}: press Resume to continue it")
