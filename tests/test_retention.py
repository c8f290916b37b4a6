"""`SessionFiles`: a browser session's files go when it ends or when they are older than the keep time, and
nothing outside the app's folders is ever touched. (The real app in a real browser: test_app_retention.py.)"""

from __future__ import annotations

import time

import pytest

from emomon.webapp.retention import SessionFiles, file_paths, page_notice


@pytest.fixture
def folders(tmp_path):
    work, cache, outside = tmp_path / "work", tmp_path / "gradio", tmp_path / "user-data"
    for d in (work, cache, outside):
        d.mkdir()
    return work, cache, outside


def touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"frame")
    return path


def test_a_closed_session_loses_its_files_and_only_its_files(folders):
    work, cache, outside = folders
    files = SessionFiles([work], keep_s=3600, cache_dir=cache)
    upload = touch(cache / "h1" / "me.jpg")
    result = touch(work / "run-1" / "me_annotated.mp4")
    shared = touch(cache / "h2" / "same_photo.jpg")   # Gradio names cached files by content: both hold it
    theirs = touch(cache / "h3" / "them.jpg")
    user_file = touch(outside / "clip.mp4")             # a server path typed with --server-sources
    files.hold("me", [str(upload), str(result), str(shared), str(user_file), str(cache / "missing.jpg")])
    files.hold("them", [str(theirs), str(shared)])
    assert files.held("me") == {upload, result, shared}

    assert sorted(files.release("me")) == sorted([upload, result])
    assert not upload.exists() and not result.exists()
    assert not (cache / "h1").exists() and not (work / "run-1").exists(), "empty folders go too"
    assert cache.is_dir() and work.is_dir(), "never the roots"
    assert shared.exists() and theirs.exists() and user_file.exists()
    assert files.release("me") == []  # a second unload is harmless

    assert sorted(files.release("them")) == sorted([shared, theirs])


def test_files_older_than_the_keep_time_go_while_the_session_is_open(folders):
    work, cache, outside = folders
    files = SessionFiles([work], keep_s=60, cache_dir=cache)
    held = touch(cache / "h1" / "me.jpg")
    orphan = touch(work / "run-2" / "video.jsonl")      # a run whose page vanished: in the app's own folder
    unheld_cache = touch(cache / "h9" / "other_app.png")  # Gradio's folder is shared: only held files go
    user_file = touch(outside / "clip.mp4")
    files.hold("me", [str(held)])
    assert files.sweep() == []                          # all young
    assert sorted(files.sweep(now=time.time() + 61)) == sorted([held, orphan])
    assert unheld_cache.exists() and user_file.exists()
    assert files.held("me") == set() and files.release("me") == []


def test_file_paths_reads_gradio_payloads_not_text():
    payload = {"path": "/tmp/gradio/abc/photo.jpg", "url": "http://x/file=/tmp/gradio/abc/photo.jpg",
               "orig_name": "photo.jpg", "meta": {"_type": "gradio.FileData"}}
    assert file_paths([payload, ["/srv/out.csv"], "relative.txt", 3, None]) == [
        "/tmp/gradio/abc/photo.jpg", "/srv/out.csv"]


def test_keep_time_is_checked_and_said():
    with pytest.raises(ValueError):
        SessionFiles([], keep_s=0)
    assert "at the latest 60 minutes" in page_notice(60)
    assert SessionFiles([], keep_s=3600).delete_cache == (60.0, 3600.0)


def test_an_upload_a_queued_job_reads_outlives_its_closed_page_until_the_job_ends(folders):
    work, cache, _ = folders
    files = SessionFiles([work], keep_s=3600, cache_dir=cache)
    upload, other = touch(cache / "h1" / "long.mp4"), touch(cache / "h2" / "photo.jpg")
    files.hold("page", [str(upload), str(other)])
    pinned = files.pin([str(upload)])          # the job waits in the queue...
    assert files.release("page") == [other]     # ...when its page reloads: the upload stays for the job
    assert upload.exists()
    assert files.sweep(now=time.time() + 7200) == [], "a pinned file is not swept by age either"
    assert files.unpin(pinned) == [upload] and not upload.exists(), "gone once the job is over"


def test_a_pinned_file_another_page_still_holds_stays_after_the_job(folders):
    work, cache, _ = folders
    files = SessionFiles([work], keep_s=3600, cache_dir=cache)
    upload = touch(cache / "h1" / "same.mp4")
    files.hold("a", [str(upload)])
    files.hold("b", [str(upload)])
    pinned = files.pin([str(upload)])
    assert files.release("a") == []
    assert files.unpin(pinned) == [] and upload.exists(), "page b still holds it"
    assert files.release("b") == [upload]
