"""The web demo in a real browser: ``stylekit web`` as a real server process on a loopback port,
driven by Debian's headless Chromium through Selenium, as a person would use it.

Each run saves screenshots of the page with a result under ``artifacts/`` (git-ignored);
``docs/web_screenshot.png`` is one of those, committed.
"""

from __future__ import annotations

import base64
import io
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch
from PIL import Image
from torchserve_support import Served
from web_support import CHROMEDRIVER, CHROMIUM, WebServer, chromium

from sdk import imaging
from sdk.package import Manifest, write_package

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "artifacts"

if CHROMIUM is None or CHROMEDRIVER is None:
    pytest.skip(
        "Debian's chromium and chromium-driver are not installed (scripts/test.sh installs them)",
        allow_module_level=True,
    )

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support import expected_conditions as ec  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


class _Sepia(torch.nn.Module):
    """A user's own style: a sepia tone as a TorchScript feedforward generator."""

    def __init__(self) -> None:
        super().__init__()
        matrix = torch.tensor([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]])
        self.register_buffer("matrix", matrix)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("oc,nchw->nohw", self.matrix, x).clamp(0, 1)


@pytest.fixture(scope="module")
def local_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebServer]:
    home = tmp_path_factory.mktemp("web_home")
    # A style installed in the user's folder, as `stylekit train` does, joins the gallery.
    manifest = Manifest(name="my-sepia", kind="feedforward", model_file="my-sepia.pt",
                        description="A sepia tone of my own.", source={"license": "CC0-1.0"})
    write_package(torch.jit.script(_Sepia()), home / "styles", manifest)
    server = WebServer(home, "--device", "cpu")
    yield server
    server.stop()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    driver = chromium(downloads=tmp_path)
    yield driver
    driver.quit()


def _wait(driver: WebDriver, timeout: float = 60) -> WebDriverWait[WebDriver]:
    return WebDriverWait(driver, timeout)


def _open(driver: WebDriver, url: str) -> None:
    driver.get(url)
    # The gallery is filled from /api/styles.
    _wait(driver).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".style-option")) > 1)


def _click(driver: WebDriver, css: str) -> None:
    """Scroll the element to the middle of the window, as a person would, then click it."""
    element = driver.find_element(By.CSS_SELECTOR, css)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    element.click()


def _upload(driver: WebDriver, input_id: str, path: Path) -> None:
    driver.find_element(By.ID, input_id).send_keys(str(path))


def _first_style(driver: WebDriver) -> str:
    """The first style of the collection (not the any-painting card)."""
    option = driver.find_element(By.CSS_SELECTOR, ".style-option:not(.is-painting) input")
    return str(option.get_attribute("value"))


def _wait_for_download(folder: Path, suffix: str, timeout: float = 30) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = [p for p in folder.iterdir() if p.suffix == suffix]
        if done:
            return done[0]
        time.sleep(0.2)
    raise AssertionError(f"no {suffix} file was downloaded to {folder}: {sorted(os.listdir(folder))}")


def _save_full_page(driver: WebDriver, path: Path) -> None:
    """A screenshot of the whole page, from the top, once every image has loaded."""
    _wait(driver, 120).until(lambda d: d.execute_script(
        "return [...document.querySelectorAll('.style-card img')]"
        ".every(i => i.getAttribute('src') && i.complete && i.naturalWidth > 0)"))
    size = driver.get_window_size()
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(size["width"], height + (size["height"] - driver.execute_script(
        "return window.innerHeight")))
    driver.execute_script("window.scrollTo(0, 0)")
    path.parent.mkdir(exist_ok=True)
    driver.save_screenshot(str(path))
    driver.set_window_size(size["width"], size["height"])


def _stylize_and_download(driver: WebDriver, url: str, photo: Path, download_dir: Path,
                          screenshot: str | None = None) -> None:
    _open(driver, url)
    _upload(driver, "photo-input", photo)
    _stylize_loaded_photo(driver, photo, download_dir, screenshot)


def _stylize_loaded_photo(driver: WebDriver, photo: Path, download_dir: Path,
                          screenshot: str | None = None) -> None:
    """With ``photo`` given to the page: its preview shows; first style, PNG, 512 px; download."""
    _wait(driver).until(ec.visibility_of_element_located((By.ID, "original")))
    style = _first_style(driver)
    _click(driver, f'label[for="style-{style}"]')
    _click(driver, 'label[for="format-png"]')
    _click(driver, '#max-side option[value="512"]')
    _click(driver, "#stylize")
    download = _wait(driver, 120).until(ec.visibility_of_element_located((By.ID, "download")))
    status = driver.find_element(By.ID, "status").text
    assert status.startswith("Done"), status
    assert driver.find_element(By.ID, "error").is_displayed() is False
    if screenshot:
        _save_full_page(driver, ARTIFACTS / screenshot)

    expected_name = f"{photo.stem}-{style}.png"
    assert download.get_attribute("download") == expected_name
    _click(driver, "#download")
    saved = _wait_for_download(download_dir, ".png")
    assert saved.name == expected_name
    expected = imaging.resize_max_side(imaging.decode(photo), 512).size
    with Image.open(saved) as result:
        assert result.format == "PNG"
        assert result.size == expected


def test_upload_pick_a_style_and_download(local_server: WebServer, browser: WebDriver, tmp_path: Path,
                                         content_images: list[Path]) -> None:
    photo = next(p for p in content_images if p.stem == "chicago")  # 712x474: the result is 512x341
    _stylize_and_download(browser, local_server.url, photo, tmp_path, screenshot="web_screenshot.png")


def test_not_an_image_shows_an_error(local_server: WebServer, browser: WebDriver, tmp_path: Path) -> None:
    _open(browser, local_server.url)
    error = browser.find_element(By.ID, "error")

    # A text file: the page refuses it before uploading.
    notes = tmp_path / "notes.txt"
    notes.write_text("a shopping list, not a picture")
    _upload(browser, "photo-input", notes)
    _wait(browser, 10).until(ec.visibility_of(error))
    assert "not an image" in error.text

    # Text with an image's name: the server's decoder refuses it, the page says so.
    fake = tmp_path / "holiday.png"
    fake.write_text("still not a picture")
    _upload(browser, "photo-input", fake)
    _wait(browser, 10).until(ec.invisibility_of_element(error))
    _click(browser, f'label[for="style-{_first_style(browser)}"]')
    _click(browser, "#stylize")
    _wait(browser, 30).until(ec.visibility_of(error))
    assert "image" in error.text.lower()
    assert not browser.find_element(By.ID, "download").is_displayed()


# Selenium cannot drag a file from the desktop, so the page gets the file's bytes and the same
# DragEvent sequence a browser fires when a person drops one: dragenter, dragover, drop.
_DROP_SCRIPT = """
const [zoneId, name, type, base64] = arguments;
const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
const data = new DataTransfer();
data.items.add(new File([bytes], name, { type }));
const target = document.querySelector(`#${zoneId} .dropzone-label`);  // where a person lets go
const fire = (type) => target.dispatchEvent(
  new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: data }));
const entered = fire("dragenter");
const over = fire("dragover");
const dragging = document.getElementById(zoneId).classList.contains("dragging");
const dropped = fire("drop");
// dispatchEvent is false when a handler called preventDefault: for dragenter/dragover that is
// what lets the browser accept the drop, for drop what keeps it from opening the file instead.
return { accepted: !entered && !over, dragging, handled: !dropped,
         stillDragging: document.getElementById(zoneId).classList.contains("dragging") };
"""


def _drop(driver: WebDriver, zone_id: str, path: Path, mime_type: str) -> None:
    """Drop ``path`` on the drop zone ``zone_id`` as a person dragging it from a file manager."""
    payload = base64.b64encode(path.read_bytes()).decode("ascii")
    outcome = driver.execute_script(_DROP_SCRIPT, zone_id, path.name, mime_type, payload)
    assert outcome == {"accepted": True, "dragging": True, "handled": True, "stillDragging": False}


def test_drag_and_drop_a_photo(local_server: WebServer, browser: WebDriver, tmp_path: Path,
                               content_images: list[Path]) -> None:
    _open(browser, local_server.url)
    error = browser.find_element(By.ID, "error")

    # A text file dropped: refused with the same message as the file picker gives.
    notes = tmp_path / "notes.txt"
    notes.write_text("a shopping list, not a picture")
    _drop(browser, "photo-drop", notes, "text/plain")
    _wait(browser, 10).until(ec.visibility_of(error))
    assert "“notes.txt” is not an image" in error.text
    assert not browser.find_element(By.ID, "original").is_displayed()

    # A photo dropped: the error goes, the original is previewed, and it is stylized.
    photo = next(p for p in content_images if p.stem == "chicago")
    _drop(browser, "photo-drop", photo, "image/jpeg")
    _wait(browser, 10).until(ec.invisibility_of_element(error))
    assert browser.find_element(By.ID, "photo-name").text == photo.name
    original = _wait(browser, 10).until(ec.visibility_of_element_located((By.ID, "original")))
    size = browser.execute_script("return [arguments[0].naturalWidth, arguments[0].naturalHeight]", original)
    assert tuple(size) == imaging.decode(photo).size  # the dropped bytes themselves, decoded
    _stylize_loaded_photo(browser, photo, tmp_path)


def _slug(stem: str) -> str:
    """Download names are lowercase words and dashes."""
    return stem.lower().replace("_", "-")


def _run_and_wait(driver: WebDriver) -> str:
    """Press Stylize, wait for the result; the download's file name."""
    _click(driver, "#stylize")
    _wait(driver, 120).until(lambda d: d.find_element(By.ID, "status").text.startswith("Done"))
    assert not driver.find_element(By.ID, "error").is_displayed()
    return str(driver.find_element(By.ID, "download").get_attribute("download"))


def test_any_painting_and_blend(local_server: WebServer, browser: WebDriver, content_images: list[Path],
                                style_images: list[Path]) -> None:
    _open(browser, local_server.url)
    photo = next(p for p in content_images if p.stem == "golden_gate")
    _upload(browser, "photo-input", photo)
    _click(browser, '#max-side option[value="512"]')

    # Any painting: a second upload appears; the result is named after the painting.
    assert not browser.find_element(By.ID, "painting-field").is_displayed()
    _click(browser, 'label[for="style-arbitrary"]')
    assert browser.find_element(By.ID, "painting-field").is_displayed()
    painting = style_images[0]
    _upload(browser, "painting-input", painting)
    _wait(browser, 10).until(ec.visibility_of_element_located((By.ID, "painting-preview")))
    assert _run_and_wait(browser) == f"{_slug(photo.stem)}-{_slug(painting.stem)}.png"
    assert painting.name in browser.find_element(By.ID, "result-caption").text

    # Blend: the second style is chosen among the same network's styles.
    first = _first_style(browser)
    _click(browser, f'label[for="style-{first}"]')
    assert not browser.find_element(By.ID, "painting-field").is_displayed()
    _click(browser, 'label[for="blend-toggle"]')
    partners = browser.find_elements(By.CSS_SELECTOR, "#blend-style option")
    assert len(partners) == 25 and first not in [o.get_attribute("value") for o in partners]
    second = str(partners[2].get_attribute("value"))
    _click(browser, f'#blend-style option[value="{second}"]')
    assert _run_and_wait(browser) == f"{_slug(photo.stem)}-{first}-{second}.png"
    assert "+" in browser.find_element(By.ID, "result-caption").text


def test_server_down_and_too_large_in_the_page(browser: WebDriver, tmp_path_factory: pytest.TempPathFactory,
                                               content_images: list[Path]) -> None:
    """A web app whose style server is not running, with a 50 KB upload limit."""
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        down = f"http://127.0.0.1:{s.getsockname()[1]}"
    web = WebServer(tmp_path_factory.mktemp("down_home"), "--server", down, "--max-upload-mb", "0.05",
                    healthy=False)
    try:
        browser.get(web.url)
        error = browser.find_element(By.ID, "error")
        _wait(browser, 30).until(ec.visibility_of(error))
        assert "styles could not be loaded" in error.text and "Cannot reach the style server" in error.text
        assert "could not be loaded" in browser.find_element(By.ID, "gallery-message").text

        photo = next(p for p in content_images if p.stat().st_size > 100_000)
        _upload(browser, "photo-input", photo)
        _wait(browser, 10).until(lambda d: "too large" in error.text)
        assert "the limit is 51 KB" in error.text
    finally:
        web.stop()


def test_user_styles_join_the_gallery(local_server: WebServer, browser: WebDriver) -> None:
    _open(browser, local_server.url)
    card = browser.find_element(By.CSS_SELECTOR, 'label[for="style-my-sepia"]')
    assert card.text == "My Sepia"
    thumb = card.find_element(By.TAG_NAME, "img")
    _wait(browser).until(lambda d: d.execute_script("return arguments[0].naturalWidth", thumb) > 0)
    # Painted by the style itself: sepia, so red >= green >= blue nearly everywhere.
    jpeg = httpx.get(f"{local_server.url}/api/styles/my-sepia/thumbnail").content
    rgb = np.asarray(Image.open(io.BytesIO(jpeg)), dtype=np.int16)
    ordered = (rgb[..., 0] + 2 >= rgb[..., 1]) & (rgb[..., 1] + 2 >= rgb[..., 2])
    assert ordered.mean() > 0.95


def test_keyboard_only(local_server: WebServer, browser: WebDriver, content_images: list[Path]) -> None:
    """Choose a style, move to the next one and start the job with keys alone."""
    _open(browser, local_server.url)
    _upload(browser, "photo-input", content_images[0])
    radios = browser.find_elements(By.CSS_SELECTOR, ".style-option:not(.is-painting) input")
    radios[0].send_keys(Keys.SPACE)
    assert radios[0].is_selected()
    radios[0].send_keys(Keys.ARROW_RIGHT)  # a radio group: arrows move the choice
    assert radios[1].is_selected() and browser.switch_to.active_element == radios[1]
    # The focused card shows a focus ring (box-shadow) although the radio itself is hidden.
    card = browser.find_element(By.CSS_SELECTOR, f'label[for="{radios[1].get_attribute("id")}"]')
    assert card.value_of_css_property("box-shadow") != "none"
    strength = browser.find_element(By.ID, "strength")
    strength.send_keys(Keys.HOME)
    strength.send_keys(Keys.ARROW_RIGHT)
    assert browser.find_element(By.ID, "strength-value").text == "5%"
    browser.find_element(By.ID, "max-side").send_keys("512")  # a select picks by typing
    assert browser.find_element(By.ID, "max-side").get_attribute("value") == "512"
    browser.find_element(By.ID, "stylize").send_keys(Keys.ENTER)
    _wait(browser, 120).until(ec.visibility_of_element_located((By.ID, "download")))
    assert browser.find_element(By.ID, "status").text.startswith("Done")


def test_phone_width_layout(local_server: WebServer, browser: WebDriver, content_images: list[Path]) -> None:
    browser.set_window_size(390, 1600)
    _open(browser, local_server.url)
    _upload(browser, "photo-input", content_images[0])
    _wait(browser).until(ec.visibility_of_element_located((By.ID, "original")))
    # One column: nothing wider than the screen, the result below the controls.
    width = browser.execute_script("return document.documentElement.scrollWidth")
    viewport = browser.execute_script("return window.innerWidth")
    assert width <= viewport
    panel = browser.find_element(By.ID, "controls").rect
    stage = browser.find_element(By.ID, "stage").rect
    assert stage["y"] > panel["y"] + panel["height"] - 1
    _save_full_page(browser, ARTIFACTS / "web_screenshot_phone.png")


# -- the same flow with TorchServe doing the painting -----------------------------------------
# The server is the serving tests' own fixture (conftest.py: built-in archives, loopback ports,
# its own run dir and tokens), not a second launcher.

@pytest.fixture(scope="module")
def torchserve_web(served: Served) -> Iterator[WebServer]:
    # STYLEKIT_HOME=served.home: the web app's StyleClient finds that server's token file.
    web = WebServer(served.home, "--server", served.state.inference_url)
    yield web
    web.stop()


def test_the_same_flow_on_torchserve(torchserve_web: WebServer, browser: WebDriver, tmp_path: Path,
                                     content_images: list[Path]) -> None:
    assert httpx.get(f"{torchserve_web.url}/healthz").json()["backend"] == "server"
    photo = next(p for p in content_images if p.stem == "chicago")
    _stylize_and_download(browser, torchserve_web.url, photo, tmp_path)
    # The gallery's thumbnails are painted by TorchServe too (checked on the first card only:
    # waiting for all 27 round trips would only make the test slower).
    card = browser.find_element(By.CSS_SELECTOR, ".style-option:not(.is-painting) img")
    _wait(browser).until(lambda d: d.execute_script("return arguments[0].naturalWidth", card) > 0)


# -- stroke size and regions (a mask painted on the photo) -------------------------------------

# The PNG the page sends as the mask, made by the page's own exportMask().
_READ_MASK = """
const done = arguments[arguments.length - 1];
exportMask().then((blob) => {
  const reader = new FileReader();
  reader.onload = () => done(reader.result.split(",")[1]);
  reader.readAsDataURL(blob);
});
"""


def _mask_png(driver: WebDriver) -> bytes:
    return base64.b64decode(driver.execute_async_script(_READ_MASK))


def _page_mask(driver: WebDriver) -> np.ndarray:
    """The mask the page sends, as an HxW array (grey: the page draws it white on black)."""
    with Image.open(io.BytesIO(_mask_png(driver))) as im:
        return np.asarray(im.convert("L"))


def _brush(driver: WebDriver, canvas: object, strokes: list[tuple[int, int, int, int]]) -> None:
    """Paint with the mouse: each stroke from (x0, y0) to (x1, y1), offsets from the canvas's centre."""
    from selenium.webdriver.common.action_chains import ActionChains

    for x0, y0, x1, y1 in strokes:
        chain = ActionChains(driver).move_to_element_with_offset(canvas, x0, y0).click_and_hold()
        for _ in range(4):  # a few moves, as a hand makes them
            chain = chain.move_by_offset((x1 - x0) // 4, (y1 - y0) // 4)
        chain.release().perform()


def test_paint_a_mask_on_the_photo(local_server: WebServer, browser: WebDriver, tmp_path: Path,
                                   content_images: list[Path]) -> None:
    """Brush over part of the photo, with a bigger stroke size: the answer is painted where the
    brush went and the photo's own pixels everywhere else; the page's scale reached the server."""
    photo = next(p for p in content_images if p.stem == "chicago")  # 712x474: no resize at 1024 px
    _open(browser, local_server.url)
    _upload(browser, "photo-input", photo)
    _wait(browser).until(ec.visibility_of_element_located((By.ID, "original")))
    style = _first_style(browser)
    _click(browser, f'label[for="style-{style}"]')
    _click(browser, 'label[for="format-png"]')

    # Stroke size 2x, by keyboard: from 0.5 in steps of 0.25.
    scale = browser.find_element(By.ID, "scale")
    scale.send_keys(Keys.HOME)
    for _ in range(6):
        scale.send_keys(Keys.ARROW_RIGHT)
    assert browser.find_element(By.ID, "scale-value").text == "2×"

    # No mask painted yet: the canvas appears over the photo, exactly on it.
    canvas = browser.find_element(By.ID, "mask-canvas")
    assert not canvas.is_displayed()
    _click(browser, 'label[for="mask-toggle"]')
    _wait(browser, 10).until(ec.visibility_of(canvas))
    assert (canvas.get_attribute("width"), canvas.get_attribute("height")) == ("712", "474")
    shown = browser.find_element(By.ID, "original").rect
    ratio = canvas.rect["width"] / canvas.rect["height"]
    assert abs(ratio - 712 / 474) < 0.02 and canvas.rect["width"] <= shown["width"] + 1

    # Pressing Stylize with nothing painted says what to do.
    _click(browser, "#stylize")
    error = browser.find_element(By.ID, "error")
    _wait(browser, 10).until(ec.visibility_of(error))
    assert "Paint over the photo" in error.text

    # A mask image of another shape is refused in the page, before anything is sent.
    square = tmp_path / "masks" / "square-mask.png"  # not in the download folder itself
    square.parent.mkdir()
    Image.new("L", (300, 300), 255).save(square)
    _upload(browser, "mask-input", square)
    _wait(browser, 10).until(lambda d: "does not have the photo's shape" in error.text)
    # One of its shape (at half its size) is drawn on the canvas, where the brush can change it.
    loaded = np.zeros((237, 356), np.uint8)
    loaded[:, 178:] = 255
    Image.fromarray(loaded).save(square.with_name("right-half.png"))
    _upload(browser, "mask-input", square.with_name("right-half.png"))
    _wait(browser, 10).until(lambda d: "Mask loaded" in d.find_element(By.ID, "status").text)
    drawn = _page_mask(browser)
    assert (drawn[:, :340] == 0).all() and (drawn[:, 372:] == 255).all()  # a soft edge between
    _click(browser, "#mask-clear")
    assert not _page_mask(browser).any()

    # Paint the left part of the photo with a wide brush; the right part stays unpainted.
    brush = browser.find_element(By.ID, "brush-size")
    for _ in range(4):
        brush.send_keys(Keys.ARROW_RIGHT)
    assert browser.find_element(By.ID, "brush-size-value").text == "60 px"
    w, h = int(canvas.rect["width"]), int(canvas.rect["height"])
    _brush(browser, canvas, [(-w // 2 + 20, y, -w // 8, y) for y in range(-h // 2 + 20, h // 2 - 10, 35)])
    mask = _page_mask(browser)
    assert mask.shape == (474, 712)  # the photo's size: the server resizes nothing
    painted, unpainted = mask == 255, mask == 0
    assert painted[:, :300].mean() > 0.6 and not painted[:, 420:].any(), "the brush did not paint as moved"
    _click(browser, "#mask-invert")
    assert (_page_mask(browser) == 255 - mask).all()
    _click(browser, "#mask-invert")

    assert _run_and_wait(browser) == f"{photo.stem}-{style}.png"
    _save_full_page(browser, ARTIFACTS / "web_mask_screenshot.png")
    _click(browser, "#download")
    answer = _wait_for_download(tmp_path, ".png").read_bytes()
    result = np.asarray(Image.open(io.BytesIO(answer)).convert("RGB"), dtype=np.int16)
    original = imaging.decode(photo).rgb.astype(np.int16)
    assert result.shape == original.shape
    assert np.array_equal(result[unpainted], original[unpainted]), "unpainted pixels are not the photo's"
    assert np.abs(result[painted] - original[painted]).mean() > 10, "painted pixels are not stylized"

    # What the page sent: the same photo, mask and options by hand give the same bytes at
    # scale=2 and other bytes at scale=1, so the slider's value is what reached the server.
    sent_mask = _mask_png(browser)

    def by_hand(scale: str) -> bytes:
        files = {"image": (photo.name, photo.read_bytes(), "image/jpeg"),
                 "mask": ("mask.png", sent_mask, "image/png")}  # fmt: skip
        data = {"style": style, "strength": "1", "preserve_color": "false", "max_side": "1024",
                "format": "png", "scale": scale}  # fmt: skip
        response = httpx.post(f"{local_server.url}/api/stylize", files=files, data=data, timeout=120)
        assert response.status_code == 200, response.text
        return response.content

    assert by_hand("2") == answer
    assert by_hand("1") != answer


@pytest.fixture
def camera_browser() -> Iterator[WebDriver]:
    """Chromium with its synthetic camera, allowed without asking."""
    driver = chromium(camera=True)
    yield driver
    driver.quit()


def test_live_camera_takes_the_stroke_size(local_server: WebServer, camera_browser: WebDriver) -> None:
    """Live, the Adjust step keeps only the stroke size; its value reaches the server before the
    first frame and when it changes (the page shows what each frame's answer says)."""
    pytest.importorskip("av")
    pytest.importorskip("cv2")
    driver = camera_browser
    _open(driver, local_server.url)
    _click(driver, 'label[for="mode-live"]')
    assert driver.find_element(By.ID, "scale-field").is_displayed()
    for hidden in ("strength", "mask-toggle-field", "max-side"):
        assert not driver.find_element(By.ID, hidden).is_displayed(), hidden
    scale = driver.find_element(By.ID, "scale")
    scale.send_keys(Keys.HOME)
    for _ in range(6):
        scale.send_keys(Keys.ARROW_RIGHT)  # 0.5 + 6 x 0.25 = 2
    _click(driver, f'label[for="style-{_first_style(driver)}"]')
    _click(driver, "#live-start")
    result = driver.find_element(By.ID, "result")
    _wait(driver, 90).until(lambda d: result.get_attribute("data-scale") == "2")
    assert driver.find_element(By.ID, "live-scale").text == "2×"
    for _ in range(4):
        scale.send_keys(Keys.ARROW_LEFT)  # each step is a change: the last one, 1, wins
    _wait(driver, 90).until(lambda d: result.get_attribute("data-scale") == "1")
    assert not driver.find_element(By.ID, "error").is_displayed()
    _click(driver, "#live-stop")
    # Back to photos: every control of the Adjust step is there again.
    _click(driver, 'label[for="mode-photo"]')
    for shown in ("strength", "mask-toggle-field", "max-side", "scale-field"):
        assert driver.find_element(By.ID, shown).is_displayed(), shown


def test_regions_through_torchserve(torchserve_web: WebServer, content_images: list[Path]) -> None:
    """The app in front of TorchServe sends the stroke size, the mask's bytes and the second
    style on: exact photo pixels under black, each style where it belongs, bad masks 400."""
    with Image.open(next(p for p in content_images if p.stem == "chicago")) as im:
        small = im.convert("RGB").resize((240, 160))
    buf = io.BytesIO()
    small.save(buf, "PNG")
    photo = buf.getvalue()
    half = np.zeros((160, 240), np.uint8)
    half[:, 120:] = 255
    buf = io.BytesIO()
    Image.fromarray(half, "L").save(buf, "PNG")
    mask = buf.getvalue()
    styles = httpx.get(f"{torchserve_web.url}/api/styles", timeout=60).json()
    a, b = [s["name"] for s in styles if s["kind"] == "multistyle"][:2]

    def stylize(mask_bytes: bytes | None = None, **data: str) -> httpx.Response:
        files = {"image": ("photo.png", photo, "image/png")}
        if mask_bytes is not None:
            files["mask"] = ("mask.png", mask_bytes, "image/png")
        return httpx.post(f"{torchserve_web.url}/api/stylize", files=files,
                          data={"format": "png", "scale": "2", **data}, timeout=120)  # fmt: skip

    def pixels(response: httpx.Response) -> np.ndarray:
        assert response.status_code == 200, response.text
        return np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB"), dtype=np.int16)

    original = np.asarray(small, dtype=np.int16)
    only_a, only_b = pixels(stylize(style=a)), pixels(stylize(style=b))
    masked = pixels(stylize(mask, style=a))
    assert np.array_equal(masked[:, :120], original[:, :120])
    assert np.abs(masked[:, 120:] - only_a[:, 120:]).max() <= 1
    two = pixels(stylize(mask, style=a, outside=b))
    assert np.abs(two[:, :120] - only_b[:, :120]).max() <= 1
    assert np.abs(two[:, 120:] - only_a[:, 120:]).max() <= 1
    refused = stylize(b"not a mask", style=a)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_mask"
