"""The workstation in real headless Chromium (selenium + Debian's chromium and chromium-driver):
open a phantom DICOM, step to a frame, draw a box with the mouse, predict and read back the
probability `thyrovid predict` gives; annotate two key frames into cohort.csv; read a study
through to a readers.csv that `thyrovid readers` accepts.

Skipped, with the reason, where selenium, Chromium or chromedriver is missing (`.ci/run`
installs them on CI). THYROVID_SCREENSHOTS=DIR saves a 1400 px wide screenshot of each mode.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from thyrovid.cli import main
from thyrovid.cohort.schema import read_cohort

webdriver = pytest.importorskip(
    "selenium.webdriver", reason="selenium is not installed (pip install thyrovid[browser])"
)
CHROMIUM = next(
    (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None
)
DRIVER = shutil.which("chromedriver")
if CHROMIUM is None or DRIVER is None:
    pytest.skip(
        "no Chromium/chromedriver on PATH (Debian: apt-get install chromium chromium-driver)",
        allow_module_level=True,
    )

from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

WIDTH = 1400
SHOTS = os.environ.get("THYROVID_SCREENSHOTS")


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={WIDTH},1100", "--force-device-scale-factor=1"):  # fmt: skip
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(DRIVER))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def _wait(driver, seconds=60):
    return WebDriverWait(driver, seconds)


def _text(driver, css: str) -> str:
    return driver.find_element(By.CSS_SELECTOR, css).text


def _wait_text(driver, css: str, pattern: str, seconds=60) -> str:
    _wait(driver, seconds).until(lambda d: re.search(pattern, _text(d, css)))
    return _text(driver, css)


def _shot(driver, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(WIDTH, max(900, height + 160))
        driver.save_screenshot(str(Path(SHOTS) / f"serve_{name}.png"))
        driver.set_window_size(WIDTH, 1100)


def _load(driver, live) -> None:
    driver.get(live)
    _wait_text(driver, "#run", r"^run \S+: ")


def _open_root(driver, path: str) -> int:
    Select(driver.find_element(By.ID, "root-list")).select_by_value(path)
    driver.find_element(By.ID, "open-root").click()
    label = _wait_text(driver, "#frame-label", r"frame 1 / \d+")
    return int(re.search(r"/ (\d+)", label).group(1))


def _step_to(driver, frame: int) -> None:
    """Arrow keys from frame 0 (the page's shortcut), then check the 1-based label."""
    driver.execute_script("document.getElementById('view').focus()")  # not a form field
    ActionChains(driver).send_keys(Keys.HOME).perform()
    for _ in range(frame):
        ActionChains(driver).send_keys(Keys.ARROW_RIGHT).perform()
    _wait_text(driver, "#frame-label", rf"^frame {frame + 1} / \d+\s+\(index {frame}\)$")


def _draw(driver, box, size) -> None:
    """Drag with the mouse from the box's top-left to its bottom-right (frame pixels)."""
    canvas = driver.find_element(By.ID, "view")
    rect = driver.execute_script("return arguments[0].getBoundingClientRect().toJSON()", canvas)
    sx, sy = rect["width"] / size[0], rect["height"] / size[1]

    def offset(x, y):  # selenium 4 offsets are from the element's centre
        return round(x * sx - rect["width"] / 2), round(y * sy - rect["height"] / 2)

    (ax, ay), (bx, by) = offset(box[0], box[1]), offset(box[2], box[3])
    chain = ActionChains(driver).move_to_element_with_offset(canvas, ax, ay).click_and_hold()
    chain.move_to_element_with_offset(canvas, (ax + bx) // 2, (ay + by) // 2)
    chain.move_to_element_with_offset(canvas, bx, by).release().perform()


def _boxes(driver) -> dict[int, list[int]]:
    """The key frames table as the page shows it: {0-based frame: [x0, y0, x1, y1]}."""
    out = {}
    for row in driver.find_elements(By.CSS_SELECTOR, "#keyframes tbody tr[data-frame]"):
        cells = row.find_elements(By.TAG_NAME, "td")
        frame = re.search(r"frame (\d+) \(index (\d+)\)", cells[0].text)
        assert int(frame.group(1)) == int(frame.group(2)) + 1
        out[int(frame.group(2))] = [int(v) for v in cells[1].text.split(",")]
    return out


def _video_size(driver) -> tuple[int, int]:
    return tuple(driver.execute_script("return [S.video.width, S.video.height]"))


def test_open_step_draw_predict_equals_thyrovid_predict(browser, live, station, capsys):
    _load(browser, live)
    _open_root(browser, station["rel"])
    frame = station["frame"]
    _step_to(browser, frame)
    _draw(browser, station["box"], _video_size(browser))
    boxes = _boxes(browser)
    assert list(boxes) == [frame]
    box = boxes[frame]
    assert all(abs(a - b) <= 1 for a, b in zip(box, station["box"]))  # the mouse, to a pixel
    browser.find_element(By.ID, "predict").click()
    shown = _wait_text(browser, "#prob", r"P\(malignant\) = \d\.\d{4}")
    assert main(["predict", str(station["run"]), str(station["video"]), "--frame", str(frame),
                 "--box", ",".join(map(str, box)), "--json"]) == 0  # fmt: skip
    want = json.loads(capsys.readouterr().out)
    got = float(shown.split("=")[1])
    assert abs(got - want["prob"]) <= 1e-4
    result = _text(browser, "#result")
    assert f"threshold {want['threshold']:.4f}" in result and "split" in result
    assert "uncertainty: " in result and want["decision"] in result
    assert browser.find_element(By.ID, "colorbar").is_displayed()
    roi = browser.execute_script("return S.pred.clips[0].roi")
    grab = (
        "const c = document.getElementById('view'), s = S.scale, r = arguments[0];"
        "return c.getContext('2d').getImageData(r[0]*s, r[1]*s, (r[2]-r[0])*s, (r[3]-r[1])*s).data;"
    )
    browser.execute_script(f"window._withCam = (() => {{ {grab} }})();", roi)
    browser.find_element(By.ID, "cam-on").click()  # the overlay off: the plain frame
    mean_change = browser.execute_script(
        f"const d = (() => {{ {grab} }})(), w = window._withCam; let t = 0;"
        "for (let i = 0; i < d.length; i++) if (i % 4 !== 3) t += Math.abs(d[i] - w[i]);"
        "return t / (d.length * 0.75);",
        roi,
    )
    browser.find_element(By.ID, "cam-on").click()
    assert mean_change > 10  # grey levels: the heatmap is drawn over the frame's ROI
    _shot(browser, "predict")


def test_annotate_two_key_frames_appear_in_cohort_csv(browser, live, station):
    _load(browser, live)
    browser.find_element(By.CSS_SELECTOR, '[data-mode="annotate"]').click()
    _open_root(browser, "clinic/scan_b.dcm")
    size = _video_size(browser)
    for frame, box in ((2, [10, 8, 30, 28]), (5, [12, 9, 33, 30])):
        _step_to(browser, frame)
        _draw(browser, box, size)
    boxes = _boxes(browser)
    assert sorted(boxes) == [2, 5]
    for name, value in (("a-patient", "BR01"), ("a-center", "site_b")):
        browser.find_element(By.ID, name).send_keys(value)
    Select(browser.find_element(By.ID, "a-label")).select_by_value("malignant")
    browser.find_element(By.ID, "a-save").click()
    _wait_text(browser, "#a-status", r"saved 2 row\(s\) to cohort.csv")
    _shot(browser, "annotate")
    rows = read_cohort(station["cohort_csv"], strict=True).rows
    mine = rows[rows["patient_id"] == "BR01"]
    assert list(mine["frame"]) == [2, 5] and set(mine["label"]) == {1}
    assert [list(r) for r in mine[["x0", "y0", "x1", "y1"]].to_numpy()] == [boxes[2], boxes[5]]
    assert Path(mine["video_path"].iloc[0]).name == "scan_b.dcm"


def test_a_reading_session_gives_a_readers_csv_thyrovid_readers_accepts(browser, live, station):
    _load(browser, live)
    browser.find_element(By.CSS_SELECTOR, '[data-mode="study"]').click()
    browser.find_element(By.ID, "s-reader").send_keys("browser_reader")
    browser.find_element(By.ID, "s-group").send_keys("junior")
    browser.find_element(By.ID, "s-go").click()
    for position in range(1, 5):
        for step, score, pattern in (("unaided", "0.7", "without the model"),
                                     ("aided", "0.4", "with the model")):  # fmt: skip
            _wait_text(browser, "#s-where", rf"^case {position} of 4$")
            _wait_text(browser, "#s-step", pattern)
            if step == "aided":
                _wait_text(browser, "#s-model", r"P\(malignant\) = \d\.\d{4}")
                if position == 1:
                    _shot(browser, "reading")
            else:
                assert _text(browser, "#s-model") == ""  # no model output before the reading
            field = browser.find_element(By.ID, "s-score")
            field.clear()
            field.send_keys(score)
            value = "1" if float(score) >= 0.5 else "0"
            browser.find_element(
                By.CSS_SELECTOR, f'input[name="s-decision"][value="{value}"]'
            ).click()
            browser.find_element(By.ID, "s-save").click()
            if step == "aided" and position < 4:
                _wait(browser).until(EC.text_to_be_present_in_element(
                    (By.ID, "s-where"), f"case {position + 1} of 4"))  # fmt: skip
    _wait_text(browser, "#s-done", r"All 4 cases read by browser_reader")
    assert main(["readers", str(station["readers_csv"])]) == 0
