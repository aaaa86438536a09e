"""AVI/MP4 files through OpenCV and folders of numbered PNG/JPEG frames."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from thyrovid.errors import VideoError
from thyrovid.io import open_video, to_gray


def moving_blobs(n: int = 24, h: int = 64, w: int = 64, seed: int = 0) -> np.ndarray:
    """(n, h, w, 3) uint8 RGB frames: a smooth speckle-like background with a moving bright disc."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    noise = rng.normal(40, 20, (h, w, 3)).astype(np.float32)
    base = np.clip(cv2.GaussianBlur(noise, (0, 0), 2.0) * 2 - 40, 0, 255).astype(np.uint8)
    frames = np.empty((n, h, w, 3), np.uint8)
    for t in range(n):
        disc = (yy - 32) ** 2 + (xx - 8 - 2 * t) ** 2 < 100
        frame = base.copy()
        frame[disc] = (250, 120 + t, 40)
        frames[t] = frame
    return frames


def write_video(path, frames: np.ndarray, fourcc: str, fps: float = 25.0) -> bool:
    h, w = frames.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
    if not writer.isOpened():
        return False
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return True


@pytest.mark.parametrize("fourcc", ["FFV1", "png "])
def test_lossless_avi_round_trips_frame_exactly(tmp_path, fourcc):
    frames = moving_blobs()
    path = tmp_path / "clip.avi"
    if not write_video(path, frames, fourcc):
        pytest.skip(f"this OpenCV build cannot write {fourcc!r} AVI")
    wanted = [17, 3, 3, 23, 0, 4, 5, 12]
    with open_video(path) as video:
        assert (len(video), video.info.height, video.info.width, video.info.channels) == (
            24,
            64,
            64,
            3,
        )
        assert video.info.fps == pytest.approx(25.0)
        assert np.array_equal(video.frames(wanted), frames[wanted])
        assert np.array_equal(video.frames(range(24)), frames)


def test_mp4_random_access_equals_sequential_decode(tmp_path):
    """Seeking gives the same frames as reading from the start (lossy codec: compare decodes)."""
    frames = moving_blobs(n=60)
    path = tmp_path / "clip.mp4"
    if not write_video(path, frames, "mp4v"):
        pytest.skip("this OpenCV build cannot write mp4v MP4")
    with open_video(path) as video:
        sequential = video.frames(range(len(video)))
    assert sequential.shape[0] == 60
    assert np.abs(sequential.astype(int) - frames).mean() < 8  # it is the same clip
    wanted = [45, 2, 59, 30, 31, 3, 45]
    with open_video(path) as video:
        assert np.array_equal(video.frames(wanted), sequential[wanted])
        assert np.array_equal(video.frames([10]), sequential[[10]])  # seek backwards
        assert np.array_equal(video.frames([1]), sequential[[1]])


def test_png_folder_round_trips_in_numeric_order(tmp_path):
    frames = moving_blobs(n=12)
    for t, frame in enumerate(frames):  # frame_1 .. frame_12: natural, not lexical, order
        cv2.imwrite(str(tmp_path / f"frame_{t + 1}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    (tmp_path / "notes.txt").write_text("ignored")
    with open_video(tmp_path) as video:
        assert (len(video), video.info.channels, video.info.format) == (12, 3, "frames")
        assert np.array_equal(video.frames([11, 0, 9, 1]), frames[[11, 0, 9, 1]])


def test_grey_png_folder_keeps_one_channel(tmp_path):
    grey = to_gray(moving_blobs(n=5))
    for t, frame in enumerate(grey):
        cv2.imwrite(str(tmp_path / f"{t:04d}.png"), frame)
    with open_video(tmp_path) as video:
        assert video.info.channels == 1
        assert np.array_equal(video.frames(range(5))[..., 0], grey)


def test_jpeg_folder_decodes_close_to_source(tmp_path):
    frames = moving_blobs(n=4)
    for t, frame in enumerate(frames):
        cv2.imwrite(
            str(tmp_path / f"img{t}.jpg"),
            cv2.cvtColor(frame, cv2.COLOR_RGB2BGR),
            [cv2.IMWRITE_JPEG_QUALITY, 98],
        )
    with open_video(tmp_path) as video:
        assert np.abs(video.frames(range(4)).astype(int) - frames).mean() < 3


def test_empty_and_corrupt_inputs_raise_video_error(tmp_path):
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    with pytest.raises(VideoError, match="empty video"):
        open_video(empty_dir)
    empty = tmp_path / "empty.avi"
    empty.write_bytes(b"")
    with pytest.raises(VideoError, match="empty video"):
        open_video(empty)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(VideoError, match="junk.mp4"):
        open_video(junk)
    with pytest.raises(VideoError, match="no such file"):
        open_video(tmp_path / "missing.avi")
    other = tmp_path / "table.csv"
    other.write_text("a,b\n")
    with pytest.raises(VideoError, match="unrecognised video format"):
        open_video(other)


def test_out_of_range_frame_in_video_file(tmp_path):
    path = tmp_path / "clip.avi"
    if not write_video(path, moving_blobs(n=5), "FFV1"):
        pytest.skip("this OpenCV build cannot write FFV1 AVI")
    with open_video(path) as video, pytest.raises(VideoError, match="out of range"):
        video.frames([2, 5])
