"""Model resolution and the converted-model cache, against a fake Hub that serves the fixture models.

The fake Hub replaces the huggingface_hub calls hub.py makes (`HfApi.model_info`, `snapshot_download`,
`hf_hub_download`) and keeps a Hugging Face cache layout (`models--owner--name/snapshots/<sha>/...`, `refs/main`)
under tmp_path whose files are symbolic links to the fixtures, as the real cache links to its blobs.
"""

import concurrent.futures
import fnmatch
import json
import os
import shutil
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import soundfile as sf
from huggingface_hub import HfApi, constants
from huggingface_hub.errors import LocalEntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError
from huggingface_hub.utils import httpx
from safetensors.torch import load_file

from fireredasr_hf import hub
from fireredasr_hf.hub import COMPLETE_MARKER, ModelResolutionError, load_asr_pipeline, resolve_model
from fireredasr_hf.pipeline_fireredasr import FireRedAsrPipeline


AED_REPO = "FireRedTeam/FireRedASR-AED-L"
LLM_REPO = "FireRedTeam/FireRedASR-LLM-L"
SHA = "0123456789abcdef0123456789abcdef01234567"
NEW_SHA = "89abcdef0123456789abcdef0123456789abcdef"
BASE_SHA = "fedcba9876543210fedcba9876543210fedcba98"
AED_FILES = {"model.pth.tar", "cmvn.ark", "dict.txt", "train_bpe1000.model"}


class FakeHub:
    """Repositories served from local directories; records every download."""

    def __init__(self, hf_cache: Path):
        self.hf_cache = hf_cache
        self.commits = {}  # repo id -> {sha: {path in repo: local file}}
        self.heads = {}  # repo id -> sha of main
        self.downloads = []  # (repo id, path in repo)
        self.online_calls = 0
        self.lock = threading.Lock()  # concurrent downloads of one file end with one link, as in the real cache

    def add(self, repo_id: str, source: Path, sha: str = SHA, exclude: str | None = None, extra: dict | None = None):
        """Push the files of `source` (less those starting with `exclude`) as commit `sha` of main."""
        files = {
            p.relative_to(source).as_posix(): p
            for p in sorted(source.rglob("*"))
            if p.is_file() and not (exclude and p.relative_to(source).as_posix().startswith(exclude))
        }
        self.commits.setdefault(repo_id, {})[sha] = {**files, **(extra or {})}
        self.heads[repo_id] = sha

    def storage(self, repo_id: str) -> Path:
        return self.hf_cache / f"models--{repo_id.replace('/', '--')}"

    def resolve(self, repo_id: str, revision: str | None) -> str:
        request = httpx.Request("GET", f"https://huggingface.co/api/models/{repo_id}/revision/{revision}")
        if repo_id not in self.commits:
            raise RepositoryNotFoundError(f"404: {repo_id}", response=httpx.Response(404, request=request))
        sha = self.heads[repo_id] if revision in (None, "main") else revision
        if sha not in self.commits[repo_id]:
            raise RevisionNotFoundError(f"404: {revision}", response=httpx.Response(404, request=request))
        return sha

    def model_info(self, api, repo_id, *, revision=None, **kwargs):
        self.online_calls += 1
        sha = self.resolve(repo_id, revision)
        return SimpleNamespace(sha=sha, siblings=[SimpleNamespace(rfilename=n) for n in self.commits[repo_id][sha]])

    def fetch(self, repo_id: str, sha: str, names) -> Path:
        """Put `names` into the snapshot folder, as a download does."""
        snapshot = self.storage(repo_id) / "snapshots" / sha
        with self.lock:
            for name in names:
                target = snapshot / name
                if not target.exists():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.symlink_to(self.commits[repo_id][sha][name])
                    self.downloads.append((repo_id, name))
        return snapshot

    def hf_download(self, repo_id: str):
        """What `hf download REPO` leaves behind: every file of main and refs/main."""
        sha = self.heads[repo_id]
        self.fetch(repo_id, sha, self.commits[repo_id][sha])
        (self.storage(repo_id) / "refs").mkdir(parents=True, exist_ok=True)
        (self.storage(repo_id) / "refs" / "main").write_text(sha)

    def snapshot_download(self, repo_id, *, revision=None, allow_patterns=None, local_files_only=False, **kwargs):
        if local_files_only:
            sha = revision
            if sha is None or len(sha) != 40:
                ref = self.storage(repo_id) / "refs" / (revision or "main")
                sha = ref.read_text() if ref.is_file() else None
            snapshot = self.storage(repo_id) / "snapshots" / str(sha)
            if sha is None or not snapshot.is_dir():
                raise LocalEntryNotFoundError(f"{repo_id} is not cached")
            return str(snapshot)
        self.online_calls += 1
        sha = self.resolve(repo_id, revision)
        files = self.commits[repo_id][sha]
        wanted = [n for n in files if allow_patterns is None or any(fnmatch.fnmatch(n, p) for p in allow_patterns)]
        return str(self.fetch(repo_id, sha, wanted))

    def hf_hub_download(self, repo_id, filename, *, revision=None, **kwargs):
        self.online_calls += 1
        sha = self.resolve(repo_id, revision)
        return str(self.fetch(repo_id, sha, [filename]) / filename)


@pytest.fixture
def fake_hub(tmp_path, monkeypatch):
    fake = FakeHub(tmp_path / "hf-cache")
    monkeypatch.setattr(HfApi, "model_info", lambda api, repo_id, **kw: fake.model_info(api, repo_id, **kw))
    monkeypatch.setattr(hub, "snapshot_download", fake.snapshot_download)
    monkeypatch.setattr(hub, "hf_hub_download", fake.hf_hub_download)
    monkeypatch.setenv("FIREREDASR_HF_CACHE", str(tmp_path / "converted"))
    return fake


@pytest.fixture
def online(monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)


@pytest.fixture
def conversions(monkeypatch):
    """The arguments of every convert_checkpoint call (the real converter still runs)."""
    calls = []
    real_convert = hub.convert_checkpoint

    def counting_convert(input_dir, output_dir, **kwargs):
        calls.append((Path(input_dir), Path(output_dir)))
        return real_convert(input_dir, output_dir, **kwargs)

    monkeypatch.setattr(hub, "convert_checkpoint", counting_convert)
    return calls


def repo_cache(tmp_path, repo_id):
    return tmp_path / "converted" / "hub" / f"models--{repo_id.replace('/', '--')}"


def read_audio(fixtures_dir, uttid="p01"):
    audio, _ = sf.read(fixtures_dir / "audio" / f"{uttid}.wav", dtype="float32")
    return audio


def test_converted_local_dir_is_returned_as_is(converted_aed_dir, conversions):
    assert resolve_model(converted_aed_dir) == str(converted_aed_dir)
    assert conversions == []


def test_hub_original_repo_is_converted_once_then_reused(fixtures_dir, fake_hub, online, conversions, tmp_path):
    fake_hub.add(AED_REPO, fixtures_dir / "aed-tiny", extra={"README.md": fixtures_dir / "README.md"})

    first = resolve_model(AED_REPO)
    entry = repo_cache(tmp_path, AED_REPO) / SHA
    assert first == str(entry)
    assert len(conversions) == 1
    assert {name for repo, name in fake_hub.downloads} == AED_FILES  # only what the converter reads
    assert json.loads((entry / "config.json").read_text())["model_type"] == "fireredasr_aed"
    marker = json.loads((entry / COMPLETE_MARKER).read_text())
    assert (marker["source"], marker["revision"], marker["variant"]) == (AED_REPO, SHA, "aed")
    assert not list(entry.parent.glob(".partial-*"))

    downloads = len(fake_hub.downloads)
    assert resolve_model(AED_REPO) == first
    assert len(conversions) == 1
    assert len(fake_hub.downloads) == downloads


def test_resolved_hub_model_transcribes_like_a_direct_conversion(fixtures_dir, fake_hub, online, converted_aed_dir):
    from transformers import pipeline

    fake_hub.add(AED_REPO, fixtures_dir / "aed-tiny")
    audio = read_audio(fixtures_dir)
    expected = pipeline("automatic-speech-recognition", model=str(converted_aed_dir))(audio)["text"]

    asr = load_asr_pipeline(AED_REPO)
    assert isinstance(asr, FireRedAsrPipeline)
    assert asr(audio)["text"] == expected == "今天天气很好"


def test_new_commit_is_converted_again(fixtures_dir, fake_hub, online, conversions, tmp_path):
    fake_hub.add(AED_REPO, fixtures_dir / "aed-tiny")
    old = resolve_model(AED_REPO)
    fake_hub.add(AED_REPO, fixtures_dir / "aed-tiny", sha=NEW_SHA)

    assert resolve_model(AED_REPO) == str(repo_cache(tmp_path, AED_REPO) / NEW_SHA)
    assert resolve_model(AED_REPO, revision=SHA) == old
    assert len(conversions) == 2
    with pytest.raises(ModelResolutionError, match="has no revision 'v9'"):
        resolve_model(AED_REPO, revision="v9")


def test_interrupted_conversion_leaves_no_usable_entry(fixtures_dir, fake_hub, online, monkeypatch, tmp_path):
    fake_hub.add(AED_REPO, fixtures_dir / "aed-tiny")
    real_convert = hub.convert_checkpoint

    def disk_full(input_dir, output_dir, **kwargs):
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        (Path(output_dir) / "config.json").write_text(json.dumps({"model_type": "fireredasr_aed"}))
        (Path(output_dir) / "model.safetensors").write_bytes(b"\0" * 100)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(hub, "convert_checkpoint", disk_full)
    with pytest.raises(OSError, match="No space left"):
        resolve_model(AED_REPO)
    cache = repo_cache(tmp_path, AED_REPO)
    assert not (cache / SHA).exists()
    assert [p.name for p in cache.iterdir()] == [".lock"]

    # A killed run leaves its partial directory behind, and an entry without its marker must not count either.
    (cache / f".partial-{SHA}-killed" / "model").mkdir(parents=True)
    (cache / SHA).mkdir()
    (cache / SHA / "config.json").write_text(json.dumps({"model_type": "fireredasr_aed"}))
    calls = []
    monkeypatch.setattr(hub, "convert_checkpoint", lambda *args, **kw: calls.append(args) or real_convert(*args, **kw))

    assert resolve_model(AED_REPO) == str(cache / SHA)
    assert len(calls) == 1
    assert (cache / SHA / COMPLETE_MARKER).is_file() and (cache / SHA / "model.safetensors").stat().st_size > 1000
    assert not list(cache.glob(".partial-*"))


def test_entry_of_another_cache_format_is_converted_again(fixtures_dir, fake_hub, online, conversions, tmp_path):
    fake_hub.add(AED_REPO, fixtures_dir / "aed-tiny")
    entry = Path(resolve_model(AED_REPO))
    marker = json.loads((entry / COMPLETE_MARKER).read_text())
    (entry / COMPLETE_MARKER).write_text(json.dumps({**marker, "cache_format": hub.CACHE_FORMAT - 1}))

    assert resolve_model(AED_REPO) == str(entry)
    assert len(conversions) == 2
    assert json.loads((entry / COMPLETE_MARKER).read_text())["cache_format"] == hub.CACHE_FORMAT


def test_concurrent_runs_convert_once(fixtures_dir, fake_hub, online, monkeypatch):
    fake_hub.add(AED_REPO, fixtures_dir / "aed-tiny")
    real_convert = hub.convert_checkpoint
    calls = []

    def slow_convert(*args, **kwargs):
        calls.append(args)
        time.sleep(0.5)  # the other thread arrives while this one converts
        return real_convert(*args, **kwargs)

    monkeypatch.setattr(hub, "convert_checkpoint", slow_convert)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = [future.result() for future in [pool.submit(resolve_model, AED_REPO) for _ in range(2)]]
    assert len(calls) == 1
    assert results[0] == results[1]


def test_offline_uncached_model_says_what_to_download(fake_hub):
    assert constants.HF_HUB_OFFLINE  # tests run with HF_HUB_OFFLINE=1
    fake_hub.add(AED_REPO, Path("/nonexistent"))
    with pytest.raises(ModelResolutionError) as error:
        resolve_model(AED_REPO)
    message = str(error.value)
    assert "HF_HUB_OFFLINE=1" in message
    assert f"hf download {AED_REPO}" in message
    assert "convert_fireredasr_to_hf.py" in message
    assert fake_hub.online_calls == 0


def test_offline_reuses_conversion_after_originals_are_gone(fixtures_dir, fake_hub, conversions, monkeypatch):
    fake_hub.add(AED_REPO, fixtures_dir / "aed-tiny")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    converted = resolve_model(AED_REPO)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    shutil.rmtree(fake_hub.hf_cache)  # e.g. `hf cache rm`: only our refs index knows the commit now
    online_calls = fake_hub.online_calls

    assert resolve_model(AED_REPO) == converted
    assert resolve_model(AED_REPO, revision=SHA) == converted
    assert len(conversions) == 1
    assert fake_hub.online_calls == online_calls
    with pytest.raises(ModelResolutionError, match="revision v2"):
        resolve_model(AED_REPO, revision="v2")


def test_unreachable_hub_falls_back_to_the_cache(fixtures_dir, fake_hub, online, conversions, monkeypatch):
    fake_hub.add(AED_REPO, fixtures_dir / "aed-tiny")
    converted = resolve_model(AED_REPO)

    def no_network(api, repo_id, **kwargs):
        raise httpx.ConnectError("[Errno 101] Network is unreachable")

    monkeypatch.setattr(HfApi, "model_info", no_network)
    assert resolve_model(AED_REPO) == converted
    with pytest.raises(ModelResolutionError, match="the Hub is unreachable .*Network is unreachable"):
        resolve_model("FireRedTeam/FireRedASR-LLM-L")
    assert len(conversions) == 1


def test_offline_converts_what_hf_download_fetched(fixtures_dir, fake_hub, conversions, tmp_path):
    fake_hub.add(AED_REPO, fixtures_dir / "aed-tiny")
    fake_hub.hf_download(AED_REPO)

    assert resolve_model(AED_REPO) == str(repo_cache(tmp_path, AED_REPO) / SHA)
    assert resolve_model(AED_REPO) == str(repo_cache(tmp_path, AED_REPO) / SHA)
    assert len(conversions) == 1
    assert fake_hub.online_calls == 0


def test_converted_hub_repo_is_returned_as_is(converted_aed_dir, fake_hub, online, conversions):
    fake_hub.add("someone/fireredasr-aed-l-hf", converted_aed_dir)
    assert resolve_model("someone/fireredasr-aed-l-hf") == "someone/fireredasr-aed-l-hf"
    assert conversions == []
    assert [name for repo, name in fake_hub.downloads] == ["config.json"]


def test_repo_of_neither_format_lists_its_files(fixtures_dir, fake_hub, online, tmp_path):
    whisper = tmp_path / "whisper"
    whisper.mkdir()
    (whisper / "config.json").write_text(json.dumps({"model_type": "whisper"}))
    (whisper / "model.safetensors").write_bytes(b"")
    fake_hub.add("openai/whisper-tiny", whisper)
    with pytest.raises(ModelResolutionError) as error:
        resolve_model("openai/whisper-tiny")
    assert "config.json, model.safetensors" in str(error.value)
    assert "'whisper'" in str(error.value)

    fake_hub.add("someone/incomplete", fixtures_dir / "aed-tiny", exclude="dict.txt")
    with pytest.raises(ModelResolutionError, match="FireRedASR-AED checkpoint but lacks dict.txt"):
        resolve_model("someone/incomplete")

    with pytest.raises(ModelResolutionError, match="no model repository"):
        resolve_model("someone/missing")


def test_local_dir_of_neither_format_lists_its_files(tmp_path):
    (tmp_path / "notes.txt").write_text("")
    (tmp_path / "weights.bin").write_bytes(b"")
    with pytest.raises(ModelResolutionError, match="found: notes.txt, weights.bin"):
        resolve_model(tmp_path, cache_dir=tmp_path / "cache")
    with pytest.raises(ModelResolutionError, match="neither an existing directory nor a Hub repo id"):
        resolve_model(str(tmp_path / "missing" / "dir"), cache_dir=tmp_path / "cache")


def test_local_original_dir_is_converted_once_and_again_when_changed(fixtures_dir, tmp_path, conversions):
    original = shutil.copytree(fixtures_dir / "aed-tiny", tmp_path / "FireRedASR-AED-L")
    cache = tmp_path / "cache"

    first = resolve_model(original, cache_dir=cache)
    assert Path(first).parent.parent == cache / "local"
    assert resolve_model(original, cache_dir=cache) == first
    assert len(conversions) == 1

    stat = (original / "model.pth.tar").stat()
    os.utime(original / "model.pth.tar", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    second = resolve_model(original, cache_dir=cache)
    assert second != first and len(conversions) == 2
    assert not Path(first).exists()  # the stale conversion of this directory is removed
    assert json.loads((Path(second) / "config.json").read_text())["model_type"] == "fireredasr_aed"


def read_weights(directory):
    return load_file(str(Path(directory) / "model.safetensors"))


def assert_same_weights(actual_dir, expected_dir):
    actual, expected = read_weights(actual_dir), read_weights(expected_dir)
    assert actual.keys() == expected.keys()
    assert all((actual[key] == expected[key]).all() for key in expected)


@pytest.fixture(scope="module")
def converted_llm_dir(fixtures_dir, tmp_path_factory):
    from fireredasr_hf.conversion import convert_checkpoint

    return convert_checkpoint(fixtures_dir / "llm-tiny", tmp_path_factory.mktemp("llm-tiny-hf"))


def test_hub_llm_repo_gets_the_base_llm_linked_in(fixtures_dir, fake_hub, online, monkeypatch, converted_llm_dir):
    fake_hub.add(LLM_REPO, fixtures_dir / "llm-tiny", exclude="Qwen2-7B-Instruct/")
    fake_hub.add(hub.BASE_LLM_REPO, fixtures_dir / "llm-tiny" / "Qwen2-7B-Instruct", sha=BASE_SHA)
    linked = []
    real_convert = hub.convert_checkpoint

    def inspect_input(input_dir, output_dir, **kwargs):
        input_dir = Path(input_dir)
        linked.extend(p.name for p in input_dir.iterdir() if p.is_symlink())
        return real_convert(input_dir, output_dir, **kwargs)

    monkeypatch.setattr(hub, "convert_checkpoint", inspect_input)
    entry = Path(resolve_model(LLM_REPO))

    assert sorted(linked) == ["Qwen2-7B-Instruct", "asr_encoder.pth.tar", "cmvn.ark", "model.pth.tar"]
    assert json.loads((entry / "config.json").read_text())["model_type"] == "fireredasr_llm"
    assert json.loads((entry / COMPLETE_MARKER).read_text())["base_llm"]["revision"] == BASE_SHA
    assert {name for repo, name in fake_hub.downloads if repo == LLM_REPO} == set(hub.LLM_FILES)
    assert_same_weights(entry, converted_llm_dir)
    assert not list(entry.parent.glob(".partial-*"))


def test_hub_llm_repo_with_bundled_base_llm(fixtures_dir, fake_hub, online, conversions, tmp_path):
    """FireRedASR2-LLM's repository bundles Qwen2-7B-Instruct/; its name makes it a FireRedASR2 conversion."""
    from fireredasr_hf.conversion import convert_checkpoint

    fake_hub.add("FireRedTeam/FireRedASR2-LLM", fixtures_dir / "llm-tiny")
    entry = resolve_model("FireRedTeam/FireRedASR2-LLM")

    assert len(conversions) == 1
    assert all(repo == "FireRedTeam/FireRedASR2-LLM" for repo, name in fake_hub.downloads)
    assert_same_weights(entry, convert_checkpoint(fixtures_dir / "llm-tiny", tmp_path / "v2", fireredasr_version=2))
    assert json.loads((Path(entry) / "generation_config.json").read_text())["repetition_penalty"] == 1.0
    assert "FireRedASR2-LLM" in (Path(entry) / "README.md").read_text()


def test_hub_fireredasr2_aed_repo_converts_with_its_ctc_head(
    aed2_tiny_dir, fake_hub, online, conversions, fixtures_dir
):
    fake_hub.add("FireRedTeam/FireRedASR2-AED", aed2_tiny_dir)
    asr = load_asr_pipeline("FireRedTeam/FireRedASR2-AED")
    assert asr.model.config.use_ctc_head and len(conversions) == 1
    result = asr(read_audio(fixtures_dir, "p02"), return_timestamps="word", vad="energy")
    assert result["text"] == "turn on the light" and [chunk["text"] for chunk in result["chunks"]][:2] == ["turn", "on"]


def test_offline_llm_needs_the_cached_base_llm(fixtures_dir, fake_hub):
    fake_hub.add(LLM_REPO, fixtures_dir / "llm-tiny", exclude="Qwen2-7B-Instruct/")
    fake_hub.add(hub.BASE_LLM_REPO, fixtures_dir / "llm-tiny" / "Qwen2-7B-Instruct", sha=BASE_SHA)
    fake_hub.hf_download(LLM_REPO)
    with pytest.raises(ModelResolutionError, match="but not Qwen/Qwen2-7B-Instruct"):
        resolve_model(LLM_REPO)

    fake_hub.hf_download(hub.BASE_LLM_REPO)
    entry = Path(resolve_model(LLM_REPO))
    assert json.loads((entry / "config.json").read_text())["model_type"] == "fireredasr_llm"


def test_load_asr_pipeline_passes_the_revision_only_to_hub_repos(converted_aed_dir, fake_hub, online, monkeypatch):
    import transformers

    calls = []
    monkeypatch.setattr(transformers, "pipeline", lambda task, **kwargs: calls.append((task, kwargs)))
    fake_hub.add("someone/fireredasr-aed-l-hf", converted_aed_dir)
    load_asr_pipeline("someone/fireredasr-aed-l-hf", revision=SHA, dtype="float32", batch_size=2)
    load_asr_pipeline(converted_aed_dir, revision=SHA)

    assert calls[0] == (
        "automatic-speech-recognition",
        {
            "model": "someone/fireredasr-aed-l-hf",
            "device": None,
            "revision": SHA,
            "dtype": "float32",
            "batch_size": 2,
        },
    )
    assert calls[1] == (
        "automatic-speech-recognition",
        {"model": str(converted_aed_dir), "device": None},
    )


def test_local_llm_dir_fingerprint_covers_the_base_llm_files_it_reads(fixtures_dir, tmp_path, conversions):
    original = tmp_path / "FireRedASR-LLM-L"
    original.mkdir()
    for name in hub.LLM_FILES:
        (original / name).symlink_to(fixtures_dir / "llm-tiny" / name)
    base_llm = shutil.copytree(fixtures_dir / "llm-tiny" / "Qwen2-7B-Instruct", tmp_path / "Qwen2-7B-Instruct")
    (original / "Qwen2-7B-Instruct").symlink_to(base_llm)  # as the release README sets it up
    cache = tmp_path / "cache"

    first = resolve_model(original, cache_dir=cache)
    (base_llm / ".cache").mkdir()
    (base_llm / ".cache" / "config.json.metadata").write_text("touched by `hf download --local-dir`")
    (base_llm / "README.md").write_text("")
    assert resolve_model(original, cache_dir=cache) == first
    assert len(conversions) == 1

    stat = (base_llm / "config.json").stat()
    os.utime(base_llm / "config.json", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert resolve_model(original, cache_dir=cache) != first
    assert len(conversions) == 2
