"""The demo in a real browser: Debian's Chromium driven by Playwright against `python spaces/app.py --model DIR`
(the README's command) served on localhost with the tiny fixture AED.

Skipped with the reason when Chromium, Playwright or Gradio is missing (scripts/install.sh installs them). No
browser is ever downloaded: Playwright drives /usr/bin/chromium. Screenshots of the main states go to the test's
temporary folder, or to $FIREREDASR_DEMO_SCREENSHOTS (the README's and docs' images are refreshed with
`FIREREDASR_DEMO_SCREENSHOTS=docs/images pytest tests/test_demo_browser.py`).
"""

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile

pytest.importorskip("gradio", reason="the demo needs gradio (pip install 'fireredasr-hf[demo]')")
sync_api = pytest.importorskip("playwright.sync_api", reason="browser tests need playwright (pip install playwright)")

CHROMIUM = os.environ.get("FIREREDASR_CHROMIUM", "/usr/bin/chromium")
if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
    pytest.skip(f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SAMPLING_RATE = 16000
# What the fixture AED gives for these clips cut by the VAD (it is over-fitted to the exact clips).
EXPECTED = {
    "p04": "我们开会吧 LET US START THE MEETING",
    "p02": "TURN ON THE LIGHT",
    "p06": "SPEECH RECOGNITION IS A LOT OF FUN",
}
TIMEOUT_MS = 60_000
REPO_ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    folder = os.environ.get("FIREREDASR_DEMO_SCREENSHOTS")
    folder = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def timings() -> dict:
    return {}


@pytest.fixture(scope="module")
def server(converted_aed_dir, tmp_path_factory, timings):
    """`python spaces/app.py --model DIR` on a free port; its URL once it answers."""
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, str(REPO_ROOT / "spaces" / "app.py"), "--model", str(converted_aed_dir)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--max-audio-seconds", "150", "--concurrency-limit", "1"]
    start = time.perf_counter()
    with open(log, "w") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                pytest.fail(f"the demo exited with status {process.returncode}:\n{log.read_text()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the demo did not answer within 180 s:\n{log.read_text()}")
            time.sleep(0.25)
        timings["server_start"] = start
        timings["server_ready_s"] = time.perf_counter() - start
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    output = log.read_text()
    assert "Traceback" not in output, output


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(server)
    page.wait_for_selector("#transcribe")
    yield page
    context.close()


def upload(page, path: Path) -> None:
    page.locator("#audio input[type=file]").set_input_files(str(path))
    # The player appears once the upload is done.
    page.wait_for_selector("#audio audio", state="attached")


def transcript(page) -> str:
    page.wait_for_function("() => document.querySelector('#transcript textarea').value.length > 0")
    return page.locator("#transcript textarea").input_value()


def table_rows(page, elem_id: str) -> list[list[str]]:
    """The rows of a Gradio dataframe as cell texts, once it has some (only the rendered ones: the table is
    virtual, see `table_length`)."""
    page.wait_for_function(
        f"() => document.querySelector('#{elem_id} [data-testid=cell-0-0]')?.textContent.trim().length > 0"
    )
    rows = page.locator(f"#{elem_id} [role=grid] [role=row][data-index]")
    return [[cell.strip() for cell in row.locator("[role=gridcell]").all_inner_texts()] for row in rows.all()]


def table_length(page, elem_id: str) -> int:
    """How many rows a Gradio dataframe holds (the grid's row count, less the header row)."""
    return int(page.locator(f"#{elem_id} [role=grid]").get_attribute("aria-rowcount")) - 1


def fixture_clip(fixtures_dir, uttid: str) -> Path:
    return fixtures_dir / "audio" / f"{uttid}.wav"


def test_upload_shows_transcript_segments_and_real_time_factor(page, fixtures_dir, screenshots, timings, capsys):
    upload(page, fixture_clip(fixtures_dir, "p04"))
    clicked = time.perf_counter()
    page.click("#transcribe")
    text = transcript(page)
    done = time.perf_counter()
    assert text == EXPECTED["p04"]
    rows = table_rows(page, "segments")
    assert len(rows) == table_length(page, "segments") == 1
    start, end, segment_text = rows[0][-3:]
    assert float(start) < 0.1 and 2.8 < float(end) < 3.2 and segment_text == EXPECTED["p04"]
    status = page.locator("#status").inner_text()
    assert re.search(r"real-time factor \d+\.\d{3}", status), status
    page.screenshot(path=screenshots / "demo-transcript.png")
    if "first_transcript_s" not in timings:
        timings["first_transcript_s"] = done - timings["server_start"]
        with capsys.disabled():
            print(
                f"\ndemo: server ready {timings['server_ready_s']:.1f} s after start; first transcript "
                f"{done - clicked:.2f} s after the click, {timings['first_transcript_s']:.1f} s after start"
            )


def test_srt_download_matches_the_segments(page, fixtures_dir):
    upload(page, fixture_clip(fixtures_dir, "p04"))
    page.click("#transcribe")
    assert transcript(page) == EXPECTED["p04"]
    link = page.locator("#downloads a[download$='.srt']")
    with page.expect_download() as download_info:
        link.click()
    download = download_info.value
    assert download.suggested_filename == "p04.srt"
    srt = Path(download.path()).read_text(encoding="utf-8")
    match = re.fullmatch(r"1\n00:00:00,(\d{3}) --> 00:00:0(\d),(\d{3})\n(.+)\n", srt)
    assert match, srt
    assert match.group(4) == EXPECTED["p04"]
    assert 2.8 < int(match.group(2)) + int(match.group(3)) / 1000 < 3.2
    names = sorted(page.locator("#downloads a[download]").evaluate_all("links => links.map(link => link.download)"))
    assert names == ["p04.json", "p04.srt", "p04.vtt"]


def make_long_recording(fixtures_dir, path: Path, seconds: float = 120.0) -> int:
    """The fixture clips in turn, 1 s of silence apart, `seconds` long; returns how many clips it holds."""
    clips = [soundfile.read(fixture_clip(fixtures_dir, f"p{i:02d}"), dtype="float32")[0] for i in range(1, 9)]
    audio = np.zeros(round(seconds * SAMPLING_RATE), dtype=np.float32)
    position, count = SAMPLING_RATE, 0
    while position + len(clips[count % len(clips)]) <= len(audio):
        clip = clips[count % len(clips)]
        audio[position : position + len(clip)] = clip
        position += len(clip) + SAMPLING_RATE
        count += 1
    soundfile.write(path, audio, SAMPLING_RATE, subtype="PCM_16")
    return count


# Collects every progress text Gradio shows while the page runs (polling could miss a short-lived one).
RECORD_PROGRESS = """() => {
  window.progressTexts = [];
  new MutationObserver(() => {
    for (const element of document.querySelectorAll('.progress-level-inner, .progress-text, .meta-text')) {
      const text = element.textContent.trim();
      if (text && !window.progressTexts.includes(text)) window.progressTexts.push(text);
    }
  }).observe(document.body, {subtree: true, childList: true, characterData: true});
}"""


def test_long_recording_shows_segment_progress_and_finishes(page, fixtures_dir, tmp_path, screenshots):
    clips = make_long_recording(fixtures_dir, tmp_path / "two-minutes.wav")
    upload(page, tmp_path / "two-minutes.wav")
    page.evaluate(RECORD_PROGRESS)
    page.click("#transcribe")
    page.wait_for_function("() => window.progressTexts.some(text => /Decoding: \\d+\\/\\d+ segments/.test(text))")
    page.screenshot(path=screenshots / "demo-progress.png")
    transcript(page)
    rows = table_rows(page, "segments")
    assert table_length(page, "segments") == clips
    assert rows[1][-1] == EXPECTED["p02"]  # the second clip; the first is cut differently by the VAD
    texts = page.evaluate("() => window.progressTexts")
    totals = {int(match.group(1)) for text in texts for match in [re.search(r"/(\d+) segments", text)] if match}
    assert totals == {clips}, texts
    assert re.search(r"120\.00 s of audio", page.locator("#status").inner_text())


def test_corrupt_file_shows_a_clear_error(page, tmp_path, screenshots):
    corrupt = tmp_path / "broken.wav"
    corrupt.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + np.random.default_rng(0).bytes(4000))
    upload(page, corrupt)
    page.click("#transcribe")
    toast = page.locator(".toast-body").filter(has_text="could not be read as audio")
    toast.wait_for()
    message = toast.inner_text()
    assert "broken.wav could not be read as audio" in message
    assert "Traceback" not in page.content()
    # The toast fades in: the screenshot waits for the animation to end.
    page.wait_for_function("() => document.getAnimations().every(animation => animation.playState !== 'running')")
    page.screenshot(path=screenshots / "demo-error.png")


def test_two_sessions_at_once_both_get_their_results(browser, server, fixtures_dir):
    pages = []
    try:
        for uttid in ("p02", "p06"):
            context = browser.new_context()
            page = context.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(server)
            page.wait_for_selector("#transcribe")
            upload(page, fixture_clip(fixtures_dir, uttid))
            pages.append((uttid, page))
        for _, page in pages:  # both requests are queued before either is answered
            page.click("#transcribe")
        for uttid, page in pages:
            assert transcript(page) == EXPECTED[uttid]
            assert table_rows(page, "segments")[0][-1] == EXPECTED[uttid]
    finally:
        for _, page in pages:
            page.context.close()
