"""JPEG Lossless (Process 14 SV1, 1.2.840.10008.1.2.4.70) decoded without GPL code.

The reference pixels are what pydicom 3.0.2 with python-gdcm 3.2.6 (BSD) decodes for the same
pydicom-data files (sha256 of the C-ordered little-endian samples, and their sum), computed
once in a separate environment: GDCM is not a dependency of thyrovid.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from test_probe import real_file

from thyrovid.cli import main

pytest.importorskip("imagecodecs")

GDCM = {
    # file: (shape, dtype, sha256 of the samples, sum of the samples)
    "JPGLosslessP14SV1_1s_1f_8b.dcm": (
        (768, 1024), "|u1", "36e27e4f1e87a7d50407463323ddc3736736ecff35eb4e4a4c1b74646938835d",
        13572107,
    ),
    "JPEG-LL.dcm": (
        (1024, 256), "<i2", "a6e9d32143339d3f5748b5520aa4e6c6ffb3550b6f71fdf17bdb2ebb44bc2611",
        3596452,
    ),
    "SC_rgb_jpeg_gdcm.dcm": (
        (100, 100, 3), "|u1", "169e619557b12114a7f0be8602026e9abb3d5045804311736ec14cecb026aca9",
        3831000,
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(GDCM))
def test_lossless_jpeg_decodes_equal_to_pydicom_with_gdcm(name):
    from thyrovid.io.dicom import DicomVideo

    shape, dtype, digest, total = GDCM[name]
    video = DicomVideo(real_file(name))
    assert video.syntax == "1.2.840.10008.1.2.4.70" and video.decoder == "imagecodecs"
    samples, _ = video._decode_imagecodecs(0)
    assert samples.shape == shape and samples.dtype.str == dtype
    assert int(samples.astype(np.int64).sum()) == total
    assert hashlib.sha256(np.ascontiguousarray(samples).tobytes()).hexdigest() == digest
    video.close()


def test_ultrasound_lossless_file_probes_and_decodes_to_uint8(capsys):
    """The ultrasound one (8-bit): what a user sees is exactly the stored samples."""
    from thyrovid.io import open_video

    path = real_file("JPGLosslessP14SV1_1s_1f_8b.dcm")
    assert main(["probe", str(path), "--json"]) == 0
    assert "1.2.840.10008.1.2.4.70" in capsys.readouterr().out
    with open_video(path) as video:
        frame = video.frame(0)
    assert frame.shape == (768, 1024, 1) and frame.dtype == np.uint8
    assert int(frame.astype(np.int64).sum()) == GDCM[path.name][3]
