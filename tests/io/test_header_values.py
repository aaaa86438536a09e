"""Header values that do not parse, sizes that do not fit, decoders that only warn: each is
one VideoError line naming the file and the attribute, or a value ignored with a note; never a
traceback, never a silently wrong frame. Plus the bounded byte-mutation fuzz of the reader
and of the table loader (tests/fuzz_inputs.py; THYROVID_FUZZ_EXAMPLES for a longer run)."""

from __future__ import annotations

import os
import random

import numpy as np
import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fuzz_inputs
from thyrovid.cli import main
from thyrovid.errors import VideoError
from thyrovid.io import open_video
from thyrovid.io.dicom_meta import captured_stderr

SEEDS = fuzz_inputs.seed_dicoms()
ALL_SEEDS = {**SEEDS, **fuzz_inputs.real_dicoms()}
EXAMPLES = int(os.environ.get("THYROVID_FUZZ_EXAMPLES", "1500"))


def _edit(tmp_path, seed: str, name: str = "v.dcm", **changes):
    """Re-save seed `seed` with header `changes` (keyword -> value, or (VR, raw bytes))."""
    path = tmp_path / name
    path.write_bytes(SEEDS[seed])
    ds = pydicom.dcmread(path)
    for key, value in changes.items():
        if isinstance(value, tuple):
            tag = pydicom.datadict.tag_for_keyword(key)
            ds[tag] = pydicom.dataelem.RawDataElement(tag, value[0], len(value[1]), value[1], 0, False, True)  # fmt: skip
        else:
            setattr(ds, key, value)
    ds.save_as(path)
    return path


def _error(path) -> str:
    with pytest.raises(VideoError) as err:
        with open_video(path) as video:
            video.frames(range(len(video)))
    text = str(err.value)
    assert "\n" not in text and text.startswith(str(path))
    return text.removeprefix(f"{path}: ")


def test_optional_values_that_do_not_parse_are_ignored_with_a_note(tmp_path):
    path = _edit(
        tmp_path,
        "native_grey",
        PixelSpacing=("DS", b"0.1 "),  # one value, and no usable region below
        RescaleSlope=("DS", b"abc "),
        FrameTimeVector=("DS", b"0\\x40\\"),
        SequenceOfUltrasoundRegions=[],
    )
    with open_video(path) as video:
        info = video.info
        frames = video.frames([0, 5])
    assert info.pixel_spacing_mm is None and info.fps is None
    notes = " | ".join(info.extra["header_notes"])
    assert "PixelSpacing" in notes and "FrameTimeVector" in notes
    assert frames.shape == (2, 24, 32, 1)
    assert main(["probe", str(path)]) == 0


def test_required_values_that_do_not_parse_name_the_attribute(tmp_path):
    cases = {
        "rows": (dict(Rows=("US", b"\x01")), "DICOM attribute Rows cannot be read"),
        "bits": (dict(BitsStored=("US", b"\x07\x00\x08\x00")), "BitsStored holds 2 values"),
        "pixrep": (dict(PixelRepresentation=2), "PixelRepresentation is 2 (expected 0..1)"),
        "syntax": (None, "TransferSyntaxUID '1.2.x' is not a UID"),
    }
    for name, (changes, expected) in cases.items():
        if changes is None:
            path = tmp_path / f"{name}.dcm"
            data = SEEDS["native_grey"]
            data = data.replace(b"1.2.840.10008.1.2.1\x00", b"1.2.x\x00" + b"\x00" * 15)
            path.write_bytes(data)
        else:
            path = _edit(tmp_path, "native_grey", f"{name}.dcm", **changes)
        assert expected in _error(path), name


def test_frame_counts_and_sizes_checked_before_any_allocation(tmp_path):
    huge = _edit(tmp_path, "jpeg_grey", "huge.dcm", Rows=60000, Columns=60000)
    assert "Rows x Columns 60000x60000 is not an ultrasound frame" in _error(huge)
    big = _edit(tmp_path, "jpeg_grey", "big.dcm", Rows=16000, Columns=16000)
    assert "too few for a 16000x16000 frame" in _error(big)
    zero = _edit(tmp_path, "native_grey", "zero.dcm", NumberOfFrames=0)
    assert "empty image" in _error(zero) and "NumberOfFrames 0" in _error(zero)
    half = _edit(tmp_path, "native_grey", "half.dcm", NumberOfFrames=3)  # holds 6
    assert "NumberOfFrames says 3 but the pixel data holds 6 frames" in _error(half)
    jpeg_half = _edit(tmp_path, "jpeg_grey", "jhalf.dcm", NumberOfFrames=3)
    assert "6 pixel data fragments to 3 frames" in _error(jpeg_half)


def test_a_region_outside_the_frame_is_ignored_not_used(tmp_path):
    ds = pydicom.dcmread(pydicom.filebase.DicomBytesIO(SEEDS["native_grey"]))
    item = ds.SequenceOfUltrasoundRegions[0]
    item.RegionLocationMinX0, item.RegionLocationMaxX1 = 100, 200  # the frame is 32 wide
    ds.save_as(tmp_path / "v.dcm")
    with open_video(tmp_path / "v.dcm") as video:
        assert video.info.region is None
        assert any("outside the frame" in n for n in video.info.extra["header_notes"])


def test_signed_8_bit_grey_keeps_its_negative_samples(tmp_path):
    values = np.arange(-128, 128, dtype=np.int8).reshape(1, 16, 16)
    ds = fuzz_inputs._dataset(values, PixelRepresentation=1)
    ds.SequenceOfUltrasoundRegions = []
    ds.PixelData = values.tobytes()
    ds.save_as(tmp_path / "s.dcm", enforce_file_format=True)
    with open_video(tmp_path / "s.dcm") as video:
        frame = video.frame(0)[..., 0].astype(int)
    assert frame.min() == 0 and frame.max() == 255
    assert np.all(np.diff(frame.ravel()) >= 0)  # -128..127 stays in order, not clipped to 0


def test_a_jpeg_frame_cut_mid_scan_is_an_error_not_a_frame(tmp_path, capfd):
    import cv2
    from pydicom.encaps import encapsulate

    grey = fuzz_inputs._video()
    jpegs = [cv2.imencode(".jpg", f)[1].tobytes() for f in grey]
    scan = jpegs[2].index(b"\xff\xda")  # start of scan
    # Cut inside the scan and closed with an end-of-image marker: libjpeg decodes it, with
    # a grey lower half, and says so only on stderr.
    jpegs[2] = jpegs[2][: (scan + len(jpegs[2])) // 2] + b"\xff\xd9"
    ds = pydicom.dcmread(pydicom.filebase.DicomBytesIO(SEEDS["jpeg_grey"]))
    ds.PixelData = encapsulate(jpegs, has_bot=True)
    ds.save_as(tmp_path / "cut.dcm")
    with open_video(tmp_path / "cut.dcm") as video:
        assert video.frames([0, 1, 3]).shape[0] == 3
        with pytest.raises(
            VideoError, match=r"frame 2 is corrupt \(libjpeg: Corrupt JPEG data: premature end"
        ):
            video.frame(2)
    assert capfd.readouterr().err == ""  # libjpeg's own line never reaches the terminal


def test_captured_stderr_nests_and_restores(capfd):
    with captured_stderr() as outer:
        os.write(2, b"outer\n")
        with captured_stderr() as inner:
            os.write(2, b"inner\n")
    os.write(2, b"after\n")
    assert outer == ["outer"] and inner == ["inner"]
    assert capfd.readouterr().err == "after\n"


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(seed=st.sampled_from(sorted(ALL_SEEDS)), rng=st.randoms(use_true_random=False))
def test_fuzz_dicom_reader_one_line_or_a_video(tmp_path, seed, rng: random.Random):
    data = fuzz_inputs.mutate(ALL_SEEDS[seed], rng)
    assert fuzz_inputs.check_dicom(data, tmp_path) is None


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rng=st.randoms(use_true_random=False))
def test_fuzz_table_loader_one_line_or_a_cohort(tmp_path, rng: random.Random):
    data = fuzz_inputs.mutate_table(fuzz_inputs.SEED_TABLE, rng)
    assert fuzz_inputs.check_table(data, tmp_path) is None
