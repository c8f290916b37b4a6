"""The app in a real headless Chromium (Debian's package) driven by Playwright: image, video, webcam, errors.

Screenshots are kept in test-artifacts/ (app_image.png, app_video.png, app_webcam.png, app_errors.png).
The webcam is Chromium's fake camera playing the first seconds of the street clip.
"""

from __future__ import annotations

import re
import time

import pytest
from conftest import shared_file
from test_app_support import CHROMIUM, CHROMIUM_FLAGS, TINY, screenshot

pytest_plugins = ["test_app_support"]  # the session's app process, browser and page fixtures
pytestmark = [pytest.mark.browser, pytest.mark.slow]

PERSON_ROWS = '#image-persons [role="row"]:not([aria-rowindex="1"])'
TRACK_ROWS = '#video-tracks [role="row"]:not([aria-rowindex="1"])'


def toast_text(page, kind: str = "error", timeout: float = 30) -> str:
    """The text of the newest toast of `kind` (error, warning, info), waiting for one to appear."""
    locator = page.locator(f".toast-body.{kind}")
    locator.last.wait_for(timeout=timeout * 1000)
    return locator.last.inner_text()


def close_toasts(page) -> None:
    page.evaluate("() => document.querySelectorAll('.toast-body .toast-close').forEach(b => b.click())")
    page.wait_for_function("() => !document.querySelector('.toast-body')")


def upload_photo(page, path) -> None:
    page.get_by_role("tab", name="Image").click()
    page.locator("#image-input input[type=file]").set_input_files(str(path))


def test_image_upload_shows_six_persons(app_page):
    page = app_page
    banner = page.locator("#banner").inner_text()
    assert "WARNING" in banner and "RANDOM WEIGHTS" in banner and "two_stream_vitb16" in banner
    upload_photo(page, shared_file("data/group_photo.jpg"))  # the upload alone starts the analysis
    page.wait_for_function(f"document.querySelectorAll('{PERSON_ROWS}').length >= 6")
    page.locator("#image-output img").wait_for()
    time.sleep(0.5)  # let the annotated image finish painting
    shot = screenshot(page, "app_image.png")
    assert page.locator(PERSON_ROWS).count() == 6
    assert "6 persons" in page.locator("#image-status").inner_text()
    first = page.locator(PERSON_ROWS).first.inner_text()
    assert first.startswith("#1") and "%" in first
    assert shot.stat().st_size > 50_000


def test_bad_inputs_show_messages_and_the_app_keeps_serving(app_page, tmp_path):
    page = app_page
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    upload_photo(page, empty)
    page.locator("#image-status .error").wait_for()  # one red line by the button, not a toast
    assert "'empty.png' is an empty file" in page.locator("#image-status").inner_text()

    page.get_by_role("tab", name="Video").click()
    notes = tmp_path / "notes.txt"
    notes.write_text("not a video")
    page.locator("#video-input input[type=file]").set_input_files(str(notes))
    assert "Invalid file type" in toast_text(page, "warning")  # the page refuses it before upload
    close_toasts(page)
    page.locator("#video-run").click()
    page.wait_for_function("() => document.querySelector('#video-status').innerText.includes('No video yet')")

    fake = tmp_path / "holiday.mp4"  # a text file named like a video gets past the page's own check
    fake.write_text("not a video either")
    page.locator("#video-input input[type=file]").set_input_files(str(fake))
    page.wait_for_function("() => document.querySelector('#video-status').innerText"
                           ".includes(\"'holiday.mp4' cannot be played\")")
    assert page.locator("#video-run").is_disabled()
    screenshot(page, "app_errors.png", full_page=False)
    assert "Traceback" not in page.content()

    upload_photo(page, shared_file("data/group_photo.jpg"))  # the next request still works
    page.wait_for_function(f"document.querySelectorAll('{PERSON_ROWS}').length >= 6")


def test_video_upload_progress_result_and_downloads(app_page, tmp_path):
    page = app_page
    page.get_by_role("tab", name="Video").click()
    page.locator("#max-seconds input").fill("1")
    page.locator("#stride input[type=number]").fill("2")
    page.locator("#video-input input[type=file]").set_input_files(str(shared_file("data/street_crossing.mp4")))
    page.locator("#video-input video").wait_for()
    page.locator("#video-run").click()
    page.wait_for_function("() => /frame \\d+ \\/ 12/.test(document.body.innerText)", timeout=60_000)  # progress
    page.locator("#video-output video").wait_for(timeout=120_000)
    page.wait_for_function("() => { const v = document.querySelector('#video-output video');"
                           " return v && v.readyState >= 2 && v.duration > 0.3 && v.videoWidth === 640 }")
    status = page.locator("#video-status").inner_text()
    assert re.search(r"Processed 12 frames", status), status
    downloads = page.locator("#video-files").inner_text().replace("\n", "")
    for name in ("street_crossing.jsonl", "street_crossing.csv", "street_crossing_summary.json"):
        assert name in downloads
    assert page.locator(TRACK_ROWS).count() >= 3
    page.locator("#emotion-plot svg").wait_for()
    page.locator("#vad-plot svg").wait_for()
    assert "valence" in page.locator("#vad-plot").inner_text()
    page.locator("#track input").click()  # another track's timeline
    page.locator('#track li[role="option"]').nth(1).click()
    time.sleep(1)
    assert page.locator(".toast-body.error").count() == 0
    screenshot(page, "app_video.png")


def test_webcam_streams_annotated_frames(app_page):
    page = app_page
    page.locator("#model input").click()  # the tiny model keeps this test quick on 2 cores
    page.locator(f'li[role="option"][aria-label="{TINY}"]').click()
    page.wait_for_function("() => document.querySelector('#banner').innerText.includes('two_stream_tiny')")
    assert not page.locator("#cam-error-box").is_visible()
    page.get_by_role("tab", name="Webcam").click()
    page.locator('#cam [title="grant webcam access"] button').click()
    page.wait_for_function("() => { const v = document.querySelector('#cam video'); return v && v.videoWidth > 0 }")
    page.locator('#cam button.capture-button:has([title="start recording"])').click()
    page.locator("#cam-output img").wait_for(timeout=30_000)
    first_src = page.locator("#cam-output img").get_attribute("src")
    page.wait_for_function("() => { const m = document.querySelector('#cam-status').innerText.match(/frame (\\d+)/);"
                           " return m && +m[1] >= 6 }", timeout=60_000)
    status = page.locator("#cam-status").inner_text()
    assert "640x360" in status, status  # the street clip, not Chromium's 1920x1440 test pattern
    # new annotated frames arrive (the image may be swapped a moment after the status line says so)
    page.wait_for_function("(first) => document.querySelector('#cam-output img').getAttribute('src') !== first",
                           arg=first_src, timeout=30_000)
    page.wait_for_function("() => document.querySelectorAll('#cam-persons [role=\"row\"]').length > 2")
    assert page.locator('#cam-tracks [role="row"]').count() > 2
    screenshot(page, "app_webcam.png")
    page.locator('#cam button.capture-button:has([title="stop recording"])').click()


def test_camera_permission_denied_is_explained(playwright_instance, app_server):
    """Without camera permission the page says so (Gradio itself only logs it to the console)."""
    b = playwright_instance.chromium.launch(executable_path=CHROMIUM, headless=True,
                                            args=[*CHROMIUM_FLAGS, "--use-fake-device-for-media-stream",
                                                  "--deny-permission-prompts"])
    try:
        page = b.new_page(viewport={"width": 1440, "height": 1000})
        page.goto(app_server.url, wait_until="load")
        page.locator('#cam [title="grant webcam access"] button').click()
        page.locator("#cam-error-box").wait_for(state="visible", timeout=20_000)
        assert "Camera permission denied" in page.locator("#cam-error-box").inner_text()
    finally:
        b.close()
