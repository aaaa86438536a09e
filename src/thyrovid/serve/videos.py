"""The workstation's videos: opened from an upload or a path under `--root`, decoded lazily.

A video gets an opaque id when it is opened; its frames are then served one at a time by
index (`VideoStore.frame_image`), decoded through `thyrovid.io` (never the whole video). What
leaves the server about a video is its geometry (frames, size, fps, imaging region) and, for
a `--root` video, its path relative to the root: never a DICOM header field, never the name
an upload was sent under, never a temporary path.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from thyrovid.errors import UserError

UPLOAD_CHUNK = 1 << 20
KNOWN_SUFFIXES = {".dcm", ".dicom", ".dic", ".avi", ".mp4", ".mov", ".mkv", ".m4v", ".mpg",
                  ".mpeg", ".wmv"}  # fmt: skip
FRAME_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}
MAX_OPEN_READERS = 16  # decoders kept open at once (least recently used closed first)
MAX_LISTED = 2000  # files listed under --root


class TooLarge(UserError):
    """An upload over the size limit (HTTP 413)."""


class NotFound(UserError):
    """An unknown video id or frame (HTTP 404)."""


@dataclass
class Entry:
    """One opened video: where it is, what the page may know of it, its decoder."""

    id: str
    path: Path
    name: str  # shown on the page: the path under --root, or "uploaded video"
    source: str  # "root", "upload" or "study"
    info: dict
    lock: threading.Lock = field(default_factory=threading.Lock)
    reader: object = None


def video_summary(info) -> dict:
    """The geometry of a `thyrovid.io.VideoInfo`, nothing else (no header field, no path)."""
    return {
        "format": info.format,
        "n_frames": int(info.n_frames),
        "width": int(info.width),
        "height": int(info.height),
        "channels": int(info.channels),
        "fps": float(info.fps) if info.fps else None,
        "region": [int(v) for v in info.region] if info.region else None,
    }


def save_upload(upload, path: Path, max_bytes: int) -> Path:
    """Copy an uploaded file to `path` in chunks; over `max_bytes` -> TooLarge, empty -> UserError."""
    size = 0
    with open(path, "wb") as fh:
        while chunk := upload.file.read(UPLOAD_CHUNK):
            size += len(chunk)
            if size > max_bytes:
                raise TooLarge(f"file: the upload is larger than {max_bytes >> 20} MiB")
            fh.write(chunk)
    if size == 0:
        raise UserError("file: the uploaded video is empty")
    return path


class VideoStore:
    """The videos the page opened, by id; uploads live in one temporary folder.

    Args:
        root: the `--root` folder whose videos may be opened by path (None: uploads only).
        max_upload_bytes: largest upload accepted.
    """

    def __init__(self, root=None, max_upload_bytes: int = 2048 << 20):
        self.root = Path(root).resolve() if root else None
        if self.root is not None and not self.root.is_dir():
            raise UserError(f"--root {root}: not a folder")
        self.max_upload_bytes = int(max_upload_bytes)
        self.uploads = Path(tempfile.mkdtemp(prefix="thyrovid-serve-"))
        self._lock = threading.Lock()
        self._entries: dict[str, Entry] = {}
        self._by_path: dict[str, str] = {}
        self._open: OrderedDict[str, None] = OrderedDict()  # ids with an open decoder, LRU

    # ------------------------------------------------------------------ opening
    def resolve_under_root(self, rel: str) -> Path:
        """`rel` as a path inside --root; anything else (absolute, .., a link out) -> UserError."""
        if self.root is None:
            raise UserError("path: this server has no --root folder; upload the video instead")
        rel = str(rel or "").strip()
        if not rel:
            raise UserError("path: empty; give a video path relative to the --root folder")
        if os.path.isabs(rel) or rel.startswith("\\"):
            raise UserError(f"path '{rel}': give it relative to the --root folder")
        target = (self.root / rel).resolve()
        if target != self.root and self.root not in target.parents:
            raise UserError(f"path '{rel}': outside the --root folder")
        if not target.exists():
            raise UserError(f"path '{rel}': no such file or folder under --root")
        return target

    def open_path(self, rel: str) -> Entry:
        """Open a video under --root by its relative path (the same path gives the same id)."""
        target = self.resolve_under_root(rel)
        return self._register(target, target.relative_to(self.root).as_posix(), "root")

    def open_known(self, path: Path, name: str) -> Entry:
        """Open a video the server itself was given (a study case), shown as `name`."""
        return self._register(Path(path).resolve(), name, "study")

    def add_upload(self, upload) -> Entry:
        """Save an upload (its own subfolder, a neutral name) and open it."""
        suffix = Path(upload.filename or "").suffix.lower()
        folder = Path(tempfile.mkdtemp(dir=self.uploads))
        path = folder / ("video" + (suffix if suffix in KNOWN_SUFFIXES else ""))
        try:
            save_upload(upload, path, self.max_upload_bytes)
            return self._register(path, "uploaded video", "upload", reuse=False)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise

    def _register(self, path: Path, name: str, source: str, reuse: bool = True) -> Entry:
        from thyrovid.io import open_video

        key = str(path)
        with self._lock:
            known = self._by_path.get(key) if reuse else None
            if known is not None:
                return self._entries[known]
        try:
            with open_video(path) as video:
                info = video_summary(video.info)
        except UserError as exc:  # one line; the temporary path means nothing to the user
            raise UserError(_clean(str(exc), path, name)) from None
        entry = Entry(uuid.uuid4().hex[:16], path, name, source, info)
        with self._lock:
            if reuse and key in self._by_path:
                return self._entries[self._by_path[key]]
            self._entries[entry.id] = entry
            self._by_path[key] = entry.id
        return entry

    def get(self, video_id: str) -> Entry:
        with self._lock:
            entry = self._entries.get(str(video_id))
        if entry is None:
            raise NotFound(f"video: no open video with id {video_id!r} (open it again)")
        return entry

    def public(self, entry: Entry) -> dict:
        """What the page learns of a video."""
        return {"id": entry.id, "name": entry.name, "source": entry.source, **entry.info}

    # ------------------------------------------------------------------ frames
    def frames(self, entry: Entry, indices) -> np.ndarray:
        """Decode `indices` of an opened video -> (N, H, W, C) uint8 (decoder kept open)."""
        from thyrovid.io import open_video

        with entry.lock:
            if entry.reader is None:
                entry.reader = open_video(entry.path)
            try:
                out = entry.reader.frames(list(indices))
            except UserError as exc:
                raise UserError(_clean(str(exc), entry.path, entry.name)) from None
        self._touch(entry)
        return out

    def frame_image(self, video_id: str, index: int, fmt: str) -> bytes:
        """Frame `index` (0-based) of a video as JPEG or PNG bytes."""
        import cv2

        entry = self.get(video_id)
        n = entry.info["n_frames"]
        if not 0 <= int(index) < n:
            raise NotFound(f"frame: index {index} out of range (the video has {n} frames, 0-based)")
        frame = self.frames(entry, [int(index)])[0]
        image = frame[..., 0] if frame.shape[-1] == 1 else cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
        params = [cv2.IMWRITE_JPEG_QUALITY, 92] if fmt == "jpg" else []
        ok, buf = cv2.imencode("." + fmt, image, params)
        if not ok:  # pragma: no cover - cv2 encodes any uint8 image
            raise RuntimeError("frame encoding failed")
        return buf.tobytes()

    def _touch(self, entry: Entry) -> None:
        """Mark `entry`'s decoder as recently used; close the oldest beyond MAX_OPEN_READERS."""
        close = []
        with self._lock:
            self._open[entry.id] = None
            self._open.move_to_end(entry.id)
            while len(self._open) > MAX_OPEN_READERS:
                old, _ = self._open.popitem(last=False)
                close.append(self._entries[old])
        for old in close:
            with old.lock:
                if old.reader is not None:
                    old.reader.close()
                    old.reader = None

    # ------------------------------------------------------------------ listing
    def list_root(self) -> dict:
        """The videos under --root: files with a video suffix and folders of frames."""
        if self.root is None:
            return {"root": False, "videos": [], "truncated": False}
        out: list[str] = []
        truncated = False
        for folder, dirs, files in os.walk(self.root):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            here = Path(folder)
            names = sorted(f for f in files if not f.startswith("."))
            if (
                here != self.root
                and names
                and all(Path(f).suffix.lower() in FRAME_SUFFIXES for f in names)
            ):
                out.append(here.relative_to(self.root).as_posix() + "/")
                dirs[:] = []
                continue
            for f in names:
                if Path(f).suffix.lower() in KNOWN_SUFFIXES:
                    out.append((here / f).relative_to(self.root).as_posix())
            if len(out) >= MAX_LISTED:
                truncated = True
                break
        return {"root": True, "videos": out[:MAX_LISTED], "truncated": truncated}

    def close(self) -> None:
        with self._lock:
            entries = list(self._entries.values())
        for entry in entries:
            with entry.lock:
                if entry.reader is not None:
                    entry.reader.close()
                    entry.reader = None
        shutil.rmtree(self.uploads, ignore_errors=True)


def _clean(message: str, path: Path, name: str) -> str:
    """A reader's error line with the server-side path replaced by what the page calls it."""
    message = message.replace(str(path), name)
    return message.replace(str(path.parent), "upload") if name == "uploaded video" else message
