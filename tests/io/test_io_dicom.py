"""DICOM reading on real files nobody here wrote: pydicom's own test files and pydicom-data's
ultrasound clips (color3d_jpeg_baseline.dcm: 120 frames 480x640 YBR_FULL_422 JPEG Baseline).

References are pydicom 3's own decoders (`pixel_array`, `apply_color_lut`)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.encaps import encapsulate, encapsulate_extended
from pydicom.pixels import apply_color_lut, pixel_array
from pydicom.uid import UID

from thyrovid.errors import VideoError
from thyrovid.io import open_video
from thyrovid.io.dicom import DicomVideo

PYDICOM_FILES = Path(os.path.dirname(pydicom.__file__)) / "data" / "test_files"


def _pydicom_data_folder() -> Path | None:
    spec = importlib.util.find_spec("data_store")  # the pydicom-data package
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "data"


PYDICOM_DATA = _pydicom_data_folder()


def real_file(name: str) -> Path:
    """A file of pydicom's test suite or of pydicom-data; skip when not installed."""
    for folder in (PYDICOM_FILES, PYDICOM_DATA):
        if folder is not None and (folder / name).is_file():
            return folder / name
    pytest.skip(f"{name} is not installed (pydicom test files / pydicom-data)")


def reference(path: Path, indices) -> np.ndarray:
    """pydicom's own per-frame decoding -> (N, H, W, C)."""
    ds = pydicom.dcmread(path)
    n = int(ds.get("NumberOfFrames", 1) or 1)
    frames = [pixel_array(ds, index=i) if n > 1 else ds.pixel_array for i in indices]
    arr = np.stack(frames)
    return arr[..., None] if arr.ndim == 3 else arr


def mad(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def write_copy(
    src: Path, dst: Path, pixel_data: bytes, syntax: str, n_frames: int, **changes
) -> Path:
    """Re-save the header of real file `src` with new pixel data (and header changes)."""
    ds = pydicom.dcmread(src, stop_before_pixels=True)
    for key in ("ExtendedOffsetTable", "ExtendedOffsetTableLengths"):
        if key in ds:
            del ds[key]
    for key, value in changes.items():
        setattr(ds, key, value)
    ds.NumberOfFrames = n_frames
    ds.file_meta.TransferSyntaxUID = UID(syntax)
    ds.PixelData = pixel_data
    ds["PixelData"].VR = "OB"
    ds.save_as(dst, enforce_file_format=True)
    return dst


# -- JPEG Baseline fast path ---------------------------------------------------------------
def test_color3d_metadata_and_fast_path_match_pydicom():
    path = real_file("color3d_jpeg_baseline.dcm")
    with open_video(path) as video:
        info = video.info
        assert (len(video), info.height, info.width, info.channels) == (120, 480, 640, 3)
        assert info.extra["decoder"] == "opencv"
        assert info.fps == pytest.approx(1000 / 33.333, rel=1e-6)  # FrameTime 33.333 ms
        # Region 84,31..595,414 inclusive; PhysicalDeltaX/Y 0.05105 cm -> 0.5105 mm.
        assert info.region == (84, 31, 596, 415)
        assert info.pixel_spacing_mm == pytest.approx((0.5104970559477806, 0.5104970559477806))
        wanted = [119, 0, 60, 0, 7]
        got = video.frames(wanted)
    assert got.shape == (5, 480, 640, 3) and got.dtype == np.uint8
    assert mad(got, reference(path, wanted)) < 0.5
    assert np.array_equal(got[1], got[3])


def test_examples_ybr_color_fast_path_matches_pydicom():
    path = real_file("examples_ybr_color.dcm")
    with open_video(path) as video:
        assert video.info.extra["photometric"] == "YBR_FULL_422"
        got = video.frames(range(len(video)))
    assert got.shape == (30, 240, 320, 3)
    assert mad(got, reference(path, range(30))) < 0.5


@pytest.mark.parametrize(
    "name",
    [
        "SC_rgb_dcmtk_+eb+cy+np.dcm",
        "SC_rgb_jpeg_dcmtk.dcm",
        "SC_jpeg_no_color_transform.dcm",
        "SC_rgb_jpeg_app14_dcmd.dcm",
    ],
)
def test_jpeg_colour_handling_matches_pydicom(name):
    """YBR and RGB JPEGs with and without JFIF/Adobe markers: colours as pydicom gives them."""
    path = real_file(name)
    with open_video(path) as video:
        got = video.frames([0])
    assert mad(got, reference(path, [0])) < 0.5


def _color3d_frames(n: int) -> tuple[Path, list[bytes]]:
    from pydicom.encaps import generate_frames

    path = real_file("color3d_jpeg_baseline.dcm")
    ds = pydicom.dcmread(path)
    frames = list(generate_frames(ds.PixelData, number_of_frames=ds.NumberOfFrames))
    return path, frames[:n]


def test_offset_tables_and_fragmented_frames_give_the_same_frames(tmp_path):
    """Basic Offset Table, Extended Offset Table, no table, several fragments per frame."""
    src, frames = _color3d_frames(6)
    syntax = "1.2.840.10008.1.2.4.50"
    data, eot, eot_lengths = encapsulate_extended(frames)
    files = {
        "basic offset table": write_copy(
            src, tmp_path / "bot.dcm", encapsulate(frames, has_bot=True), syntax, 6
        ),
        "fragment scan": write_copy(
            src, tmp_path / "nobot.dcm", encapsulate(frames, has_bot=False), syntax, 6
        ),
        "extended offset table": write_copy(
            src,
            tmp_path / "eot.dcm",
            data,
            syntax,
            6,
            ExtendedOffsetTable=eot,
            ExtendedOffsetTableLengths=eot_lengths,
        ),
    }
    split = encapsulate(frames, fragments_per_frame=3, has_bot=False)
    files["fragments per frame"] = write_copy(src, tmp_path / "split.dcm", split, syntax, 6)
    wanted = [5, 0, 3]
    expected = reference(src, wanted)
    for source, path in files.items():
        with open_video(path) as video:
            if source != "fragments per frame":
                assert video.info.extra["frame_index"] == source
            assert mad(video.frames(wanted), expected) < 0.5, source


# -- other syntaxes and photometrics ----------------------------------------------------------
def test_jpeg2000_lossless_equals_uncompressed():
    with open_video(real_file("US1_UNCR.dcm")) as raw, open_video(real_file("US1_J2KR.dcm")) as j2k:
        assert raw.info.extra["decoder"] == "native" and j2k.info.extra["decoder"] == "pydicom"
        a, b = raw.frame(0), j2k.frame(0)
    assert a.shape == (480, 640, 3)
    assert np.array_equal(a, b)
    assert np.array_equal(a[None], reference(real_file("US1_UNCR.dcm"), [0]))


def test_aloka_palette_16bit_big_and_little_endian_agree():
    little, big = real_file("gdcm-US-ALOKA-16.dcm"), real_file("gdcm-US-ALOKA-16_big.dcm")
    with open_video(little) as a, open_video(big) as b:
        assert a.info.channels == 3 and a.info.extra["photometric"] == "PALETTE COLOR"
        assert a.info.region == (32, 24, 336, 416)  # the first of two equal 2D tissue regions
        assert a.info.pixel_spacing_mm == pytest.approx((0.3826530650258064,) * 2)
        fa, fb = a.frame(0), b.frame(0)
    assert np.array_equal(fa, fb)
    ds = pydicom.dcmread(little)
    lut16 = apply_color_lut(ds.pixel_array, ds)  # 16-bit LUT entries
    assert np.array_equal(fa, np.rint(lut16 * (255 / 65535)).astype(np.uint8))


def test_examples_palette_matches_pydicom_lut():
    path = real_file("examples_palette.dcm")
    with open_video(path) as video:
        got = video.frame(0)
    ds = pydicom.dcmread(path)
    expected = apply_color_lut(ds.pixel_array, ds)
    if expected.dtype != np.uint8:
        expected = np.rint(expected * (255 / 65535)).astype(np.uint8)
    assert np.array_equal(got, expected)


def test_big_endian_and_compressed_16bit_grey_agree():
    """MR_small in four encodings gives the same 8-bit frame (16-bit -> window -> 8-bit)."""
    names = [
        "MR_small.dcm",
        "MR_small_bigendian.dcm",
        "MR_small_RLE.dcm",
        "MR_small_jp2klossless.dcm",
    ]
    frames = []
    for name in names:
        with open_video(real_file(name)) as video:
            assert video.info.channels == 1
            frames.append(video.frame(0))
    for name, frame in zip(names[1:], frames[1:], strict=True):
        assert np.array_equal(frames[0], frame), name
    raw = reference(real_file("MR_small.dcm"), [0])[0].astype(float)
    assert np.corrcoef(raw.ravel(), frames[0].astype(float).ravel())[0, 1] > 0.95
    assert frames[0].max() == 255  # the window's top end is reached, not a dark image


def test_rgb_big_endian_ow_and_planar_configuration():
    for name in ("SC_rgb_small_odd_big_endian.dcm", "ExplVR_BigEnd.dcm"):
        path = real_file(name)
        with open_video(path) as video:
            assert np.array_equal(video.frames([0]), reference(path, [0])), name


def test_uncompressed_multiframe_grey_rgb_planar_and_monochrome1(tmp_path):
    src, jpeg = _color3d_frames(4)
    rgb = reference(src, range(4))  # (4, 480, 640, 3) uint8
    grey = rgb[..., 1].copy()
    le = "1.2.840.10008.1.2.1"
    common = dict(BitsAllocated=8, BitsStored=8, HighBit=7, PixelRepresentation=0)
    files = {
        "rgb": write_copy(
            src,
            tmp_path / "rgb.dcm",
            rgb.tobytes(),
            le,
            4,
            PhotometricInterpretation="RGB",
            **common,
        ),
        "planar": write_copy(
            src,
            tmp_path / "planar.dcm",
            rgb.transpose(0, 3, 1, 2).tobytes(),
            le,
            4,
            PhotometricInterpretation="RGB",
            PlanarConfiguration=1,
            **common,
        ),
    }
    mono = dict(SamplesPerPixel=1, **common)
    files["grey"] = write_copy(
        src,
        tmp_path / "grey.dcm",
        grey.tobytes(),
        le,
        4,
        PhotometricInterpretation="MONOCHROME2",
        **mono,
    )
    files["mono1"] = write_copy(
        src,
        tmp_path / "mono1.dcm",
        grey.tobytes(),
        le,
        4,
        PhotometricInterpretation="MONOCHROME1",
        **mono,
    )
    for key in ("grey", "mono1"):
        ds = pydicom.dcmread(files[key])
        del ds.PlanarConfiguration
        ds.save_as(files[key])
    wanted = [3, 1, 1]
    with open_video(files["rgb"]) as a, open_video(files["planar"]) as b:
        assert np.array_equal(a.frames(wanted), rgb[wanted])
        assert np.array_equal(b.frames(wanted), rgb[wanted])
    with open_video(files["grey"]) as g, open_video(files["mono1"]) as m:
        assert g.info.channels == 1
        assert np.array_equal(g.frames(wanted)[..., 0], grey[wanted])
        assert np.array_equal(m.frames(wanted)[..., 0], 255 - grey[wanted])


# -- bad input ---------------------------------------------------------------------------------
def test_truncated_files_raise_video_error(tmp_path):
    for name in ("color3d_jpeg_baseline.dcm", "US1_UNCR.dcm"):
        data = real_file(name).read_bytes()
        cut = tmp_path / f"cut_{name}"
        cut.write_bytes(data[: len(data) // 2])
        with pytest.raises(VideoError, match="truncated"):
            open_video(cut)
    head = tmp_path / "head.dcm"
    head.write_bytes(real_file("US1_UNCR.dcm").read_bytes()[:300])
    with pytest.raises(VideoError, match="head.dcm"):
        open_video(head)


def test_not_dicom_no_pixels_out_of_range(tmp_path):
    fake = tmp_path / "fake.dcm"
    fake.write_text("this is not a DICOM file\n" * 20)
    with pytest.raises(VideoError, match="not a DICOM"):
        open_video(fake)
    with pytest.raises(VideoError, match="no pixel data"):
        open_video(real_file("rtplan.dcm"))
    with open_video(real_file("examples_ybr_color.dcm")) as video:
        with pytest.raises(VideoError, match="out of range"):
            video.frames([0, 30])
        with pytest.raises(VideoError, match="out of range"):
            video.frame(-1)


def test_missing_decoder_names_the_package(monkeypatch):
    import pydicom.pixels

    real_get = pydicom.pixels.get_decoder

    class Unavailable:
        def __init__(self, uid):
            self.UID = real_get(uid).UID
            self.is_available = False

    monkeypatch.setattr(pydicom.pixels, "get_decoder", Unavailable)
    with pytest.raises(VideoError, match="install pylibjpeg-openjpeg"):
        DicomVideo(real_file("US1_J2KR.dcm"))
    with pytest.raises(VideoError, match="install pylibjpeg-rle"):
        DicomVideo(real_file("MR_small_RLE.dcm"))


@pytest.mark.parametrize(
    "codec, muxer, syntax",
    [
        ("mpeg2video", "mpeg2video", "1.2.840.10008.1.2.4.100"),  # MPEG-2 MP@ML
        ("libx264", "h264", "1.2.840.10008.1.2.4.102"),  # H.264 High Profile / Level 4.1
    ],
)
def test_video_transfer_syntaxes_decode_through_pyav(tmp_path, codec, muxer, syntax):
    """A real clip's frames encoded as an MPEG-2 / H.264 bitstream, split over fragments."""
    import io

    av = pytest.importorskip("av")
    try:
        av.codec.Codec(codec, "w")
    except Exception:
        pytest.skip(f"this PyAV build has no {codec} encoder")
    src = real_file("examples_ybr_color.dcm")
    frames = reference(src, range(12))  # (12, 240, 320, 3) RGB
    buf = io.BytesIO()
    with av.open(buf, "w", format=muxer) as container:
        stream = container.add_stream(codec, rate=30)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    data = buf.getvalue()
    fragments = [data[k : k + 4000] for k in range(0, len(data), 4000)]
    path = write_copy(
        src,
        tmp_path / "video.dcm",
        encapsulate(fragments, has_bot=False),
        syntax,
        12,
        PhotometricInterpretation="YBR_PARTIAL_420",
    )
    with open_video(path) as video:
        assert video.info.extra["decoder"] == "pyav" and len(video) == 12
        sequential = video.frames(range(12))
        assert mad(sequential, frames) < 6  # lossy, but the same pictures
        assert np.array_equal(video.frames([9, 2, 2, 11]), sequential[[9, 2, 2, 11]])
        with pytest.raises(VideoError, match="out of range"):
            video.frame(12)
