"""Job inputs beyond files and folders: JSON-lines and Parquet manifests, file lists, fsspec URLs, audio bytes, and
items rebuilt from their plain-data location (as cluster workers do)."""

import json
import shutil

import numpy as np
import pytest

from fireredasr_hf.audio import AudioDecodeError, load_audio, load_audio_bytes
from fireredasr_hf.transcript_io import iter_audio_inputs, read_manifest
from fireredasr_hf.transcription import collect_inputs, item_at_location


@pytest.fixture
def audio_dir(fixtures_dir, tmp_path):
    directory = tmp_path / "audio"
    (directory / "sub").mkdir(parents=True)
    shutil.copy(fixtures_dir / "audio" / "p01.wav", directory)
    shutil.copy(fixtures_dir / "audio" / "p02.wav", directory / "sub")
    return directory


def test_jsonl_manifest_ids_paths_and_nemo_columns(audio_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    manifest = audio_dir / "manifest.jsonl"
    rows = [{"id": "a", "audio": "p01.wav"}, {"id": "b", "audio": {"path": str(audio_dir / "sub" / "p02.wav")}}]
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows) + "\n")
    assert iter_audio_inputs([manifest]) == [("a", str(audio_dir / "p01.wav")), ("b", str(audio_dir / "sub/p02.wav"))]
    nemo = tmp_path / "nemo.jsonl"
    nemo.write_text(json.dumps({"audio_filepath": "audio/p01.wav", "duration": 2.4, "text": "x"}) + "\n")
    assert read_manifest(str(nemo)) == [("p01", "audio/p01.wav")]  # relative to the current folder, where it is
    assert read_manifest(str(nemo), id_column="text") == [("x", "audio/p01.wav")]


def test_parquet_manifest(audio_dir):
    import pyarrow as pa
    import pyarrow.parquet as pq

    manifest = audio_dir / "manifest.parquet"
    pq.write_table(pa.table({"uttid": ["x", "y"], "path": ["p01.wav", "sub/p02.wav"]}), manifest)
    pairs = iter_audio_inputs([manifest], audio_column="path", id_column="uttid")
    assert pairs == [("x", str(audio_dir / "p01.wav")), ("y", str(audio_dir / "sub" / "p02.wav"))]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "lists no recordings"),
        ("[1, 2]\n", "must be a JSON object"),
        ("{not json\n", "not a JSON line"),
        ('{"file": "a.wav"}\n', "no audio column 'audio'.*--audio-column"),
        ('{"audio": 3}\n', "row 1 has no audio path"),
    ],
)
def test_bad_manifests_are_refused_with_the_reason(tmp_path, content, message):
    manifest = tmp_path / "bad.jsonl"
    manifest.write_text(content)
    with pytest.raises(ValueError, match=message):
        iter_audio_inputs([manifest])


def test_file_list_and_duplicate_ids(audio_dir):
    listing = audio_dir / "files.lst"
    listing.write_text("p01.wav\n\nsub/p02.wav\n")
    assert [uttid for uttid, _ in iter_audio_inputs([listing])] == ["p01", "p02"]
    listing.write_text("p01.wav\np01.wav\n")
    with pytest.raises(ValueError, match="given twice"):
        iter_audio_inputs([listing])


def test_fsspec_urls_list_folders_and_read_files(audio_dir):
    url = f"file://{audio_dir}"
    pairs = iter_audio_inputs([url])
    assert pairs == [("p01", f"file://{audio_dir}/p01.wav"), ("sub/p02", f"file://{audio_dir}/sub/p02.wav")]
    items = collect_inputs([url]).items
    np.testing.assert_array_equal(items[0].read(16000), load_audio(audio_dir / "p01.wav"))
    with pytest.raises(FileNotFoundError, match="input not found"):
        iter_audio_inputs([f"file://{audio_dir}/missing"])
    with pytest.raises(ValueError, match="must be a local file"):
        iter_audio_inputs([f"file://{audio_dir}/wav.scp"])


def test_audio_bytes_read_like_files(fixtures_dir):
    path = fixtures_dir / "audio" / "p03.wav"
    np.testing.assert_array_equal(load_audio_bytes(path.read_bytes(), 16000, "p03.wav"), load_audio(path))
    np.testing.assert_allclose(load_audio_bytes(path.read_bytes(), 8000), load_audio(path, 8000))
    with pytest.raises(AudioDecodeError, match=r"cannot decode audio upload\.wav: soundfile: .*ffmpeg: "):
        load_audio_bytes(b"RIFF not audio", name="upload.wav")
    with pytest.raises(AudioDecodeError, match="empty"):
        load_audio_bytes(b"", name="upload.wav")


def test_items_are_rebuilt_from_their_location(audio_dir, tmp_path):
    from datasets import Audio, Dataset

    dataset = Dataset.from_dict(
        {"id": ["d0", "d1"], "audio": [str(audio_dir / "p01.wav"), str(audio_dir / "sub/p02.wav")]}
    )
    dataset.cast_column("audio", Audio()).save_to_disk(tmp_path / "dataset")
    items = collect_inputs([tmp_path / "dataset", audio_dir / "p01.wav"]).items
    for item in items:
        location = json.loads(json.dumps(item.location))  # plain data
        rebuilt = item_at_location(item.uttid, item.source, location)
        assert (rebuilt.uttid, rebuilt.source) == (item.uttid, item.source)
        np.testing.assert_array_equal(rebuilt.read(16000), item.read(16000))
    assert items[1].location == {"dataset": str(tmp_path / "dataset"), "split": None, "audio_column": "audio", "row": 1}
