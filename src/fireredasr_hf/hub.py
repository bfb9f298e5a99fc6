# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""Model resolution: a converted model, a local original directory or a Hub repo id, whichever the user names.

The released FireRedASR checkpoints are on the Hub in their original format. `resolve_model` downloads only the
files the converter needs (with huggingface_hub's progress bars and cache), converts them once into a cache of
converted models and returns that directory afterwards:

    <cache>/hub/models--<owner>--<name>/<commit sha>/      a converted Hub repository, one per commit
    <cache>/hub/models--<owner>--<name>/refs.json          revision name -> commit sha, for offline use
    <cache>/local/<dir name>-<path hash>/<fingerprint>/    a converted local directory (sizes + mtimes)

`<cache>` is `$FIREREDASR_HF_CACHE`, else `<HF_HOME>/fireredasr-hf/converted`. An entry is written into a
temporary sibling and renamed into place once complete, with a completion marker that is checked on use; a lock per
source serialises conversions, so concurrent runs wait for each other instead of writing the same entry.
"""

import hashlib
import json
import logging
import os
import shutil
import tempfile
from contextlib import contextmanager
from datetime import datetime, timezone
from fnmatch import fnmatch
from pathlib import Path

from filelock import FileLock, Timeout
from huggingface_hub import HfApi, constants, hf_hub_download, snapshot_download
from huggingface_hub.errors import (
    HfHubHTTPError,
    HFValidationError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.file_download import repo_folder_name
from huggingface_hub.utils import httpx, validate_repo_id

from . import __version__
from .configuration_fireredasr import FireRedAedConfig, FireRedLlmConfig
from .conversion import ConversionError, convert_checkpoint, detect_variant
from .conversion.aed import AED_FILES, check_aed_dir
from .conversion.common import PARTIAL_PREFIX, atomic_output_dir
from .conversion.llm import BASE_LLM_DIR, LLM_FILES, check_llm_dir
from .file_modes import make_readable

logger = logging.getLogger(__name__)

CACHE_ENV_VAR = "FIREREDASR_HF_CACHE"
FIREREDASR_MODEL_TYPES = (FireRedAedConfig.model_type, FireRedLlmConfig.model_type)
# The base LLM the original FireRedASR-LLM-L release expects in `Qwen2-7B-Instruct/`.
BASE_LLM_REPO = "Qwen/Qwen2-7B-Instruct"
# What the LLM converter reads from the base LLM: config, tokenizer files and safetensors weights.
BASE_LLM_PATTERNS = ("*.json", "*.safetensors", "merges.txt")
# Bumped when the converted layout changes: entries written under another format are converted again.
CACHE_FORMAT = 1
COMPLETE_MARKER = ".fireredasr_hf_complete.json"
COMMIT_SHA_LENGTH = 40


class ModelResolutionError(ValueError):
    """A model name that cannot be turned into a loadable FireRedASR model (with the reason and what to do)."""


def converted_cache_dir(cache_dir: str | Path | None = None) -> Path:
    """The root of the converted-model cache: `cache_dir`, else `$FIREREDASR_HF_CACHE`, else
    `<HF_HOME>/fireredasr-hf/converted`."""
    if cache_dir is None:
        cache_dir = os.environ.get(CACHE_ENV_VAR) or Path(constants.HF_HOME) / "fireredasr-hf" / "converted"
    return Path(cache_dir).expanduser().resolve()


def resolve_model(
    name_or_path: str | Path,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    token: bool | str | None = None,
) -> str:
    """
    What `from_pretrained` (or `pipeline(model=...)`) should load for a FireRedASR model name.

    Args:
        name_or_path: one of
            - a converted directory (`config.json` with a FireRedASR `model_type`): returned as is;
            - a Hub repo id of a converted model: returned as is (load it with the same `revision`);
            - a local original directory (`model.pth.tar`, `cmvn.ark`, ...): converted once, keyed by its absolute
              path and the sizes and modification times of its checkpoint files (a changed checkpoint is converted
              again);
            - a Hub repo id of an original repository (e.g. `FireRedTeam/FireRedASR-AED-L`): the files the converter
              needs are downloaded into the Hugging Face cache (for FireRedASR-LLM, `Qwen/Qwen2-7B-Instruct` too
              unless the repo bundles `Qwen2-7B-Instruct/`), converted once per commit and reused afterwards.
        revision: branch, tag or commit of a Hub repository (default: `main`).
        cache_dir: root of the converted-model cache (default: see `converted_cache_dir`).
        token: Hugging Face token for private or gated repositories.

    Returns:
        A local directory or a Hub repo id.

    Raises:
        ModelResolutionError: the name is neither format (the message lists what was found), or the model is not
            cached and `HF_HUB_OFFLINE=1` forbids downloading it (the message says what to download or convert).
    """
    name = str(name_or_path)
    path = Path(name).expanduser()
    if path.is_dir():
        return resolve_local_dir(path.resolve(), converted_cache_dir(cache_dir))
    check_repo_id(name, "a model directory")
    return resolve_hub_repo(name, revision, converted_cache_dir(cache_dir), token)


# `load_asr_pipeline(cpu_linear=...)`: how linear layers run on a CPU.
CPU_LINEAR_CHOICES = ("auto", "onednn", "pytorch")


def load_asr_pipeline(
    name_or_path: str | Path,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    device=None,
    dtype=None,
    cpu_linear: str = "auto",
    quantize: str | None = None,
    **pipeline_kwargs,
):
    """
    `transformers.pipeline("automatic-speech-recognition")` for any name `resolve_model` accepts. With this package
    imported the task builds `FireRedAsrPipeline` (any input rate, long audio, segment timestamps) from the installed
    code, so no remote code runs.

    `dtype` defaults to the stored weights' dtype (float32 for AED, bfloat16 for LLM conversions). `quantize="int8"`
    quantizes the linear layers for CPU inference (`fireredasr_hf.quantization.quantize_model`: int8 weights,
    dynamic int8 activations; CPU only, and the rest of the model runs in float32). `cpu_linear`: how the float
    linear layers of an unquantized model run on a CPU: `"onednn"` (`cpu_linear.use_onednn_linear(prepack=True)`:
    oneDNN with weights packed for inference), `"pytorch"` (as PyTorch does: MKL for float32), or `"auto"` (oneDNN
    on AMD CPUs, where MKL is slow). Further keyword arguments (`token`, `batch_size`, `pipeline_class`, ...) go to
    `pipeline`.
    """
    import torch
    from transformers import pipeline

    from .cpu_linear import onednn_linear_is_preferred, use_onednn_linear

    if cpu_linear not in CPU_LINEAR_CHOICES:
        raise ValueError(f"cpu_linear must be one of {', '.join(CPU_LINEAR_CHOICES)}, got {cpu_linear!r}")
    if quantize is not None:
        from .quantization import QUANTIZE_METHODS

        if quantize not in QUANTIZE_METHODS:
            raise ValueError(f"unknown quantization {quantize!r}; choose one of {', '.join(QUANTIZE_METHODS)}")
        if device is not None and torch.device("cpu" if device == -1 else device).type != "cpu":
            raise ValueError(f"quantize={quantize!r} runs on the CPU, not on device {device!r}")
        if dtype not in (None, torch.float32, "float32"):
            raise ValueError(f"quantize={quantize!r} computes in float32 around the int8 layers; drop dtype={dtype}")
        device = "cpu"
    model = resolve_model(name_or_path, revision=revision, cache_dir=cache_dir, token=pipeline_kwargs.get("token"))
    if revision is not None and not Path(model).is_dir():  # a converted Hub repository, used as is
        pipeline_kwargs["revision"] = revision
    if dtype is not None:
        pipeline_kwargs["dtype"] = dtype
    asr = pipeline("automatic-speech-recognition", model=model, device=device, **pipeline_kwargs)
    if quantize is not None:
        from .quantization import quantize_model

        quantize_model(asr.model, quantize)
        return asr
    on_cpu = getattr(getattr(asr, "model", None), "device", None) == torch.device("cpu")
    if on_cpu and (cpu_linear == "onednn" or (cpu_linear == "auto" and onednn_linear_is_preferred())):
        use_onednn_linear(asr.model, prepack=True)
    return asr


def check_repo_id(name: str, expected: str) -> None:
    """Raises `ModelResolutionError` unless `name` (not an existing directory) has the form of a Hub repo id."""
    if Path(name).expanduser().exists():
        raise ModelResolutionError(f"{name} is a file; expected {expected} or a Hub repo id.")
    try:
        validate_repo_id(name)
    except HFValidationError as error:
        raise ModelResolutionError(
            f"{name!r} is neither an existing directory nor a Hub repo id of the form owner/name."
        ) from error


def resolve_local_dir(path: Path, cache_root: Path) -> str:
    config_file = path / "config.json"
    model_type = read_model_type(config_file) if config_file.is_file() else None
    if model_type in FIREREDASR_MODEL_TYPES:
        return str(path)
    try:
        variant = detect_variant(path)
        if variant in ("vad", "punc"):
            companion = {"vad": "FireRedVAD (--vad-model)", "punc": "FireRedPunc (--punctuation)"}[variant]
            raise ConversionError(f"It holds a {companion} model, not a speech recognition model.")
        if variant == "llm":
            check_llm_dir(path)
        else:
            check_aed_dir(path)
    except ConversionError as error:
        note = f" Its config.json has model_type {model_type!r}, not a FireRedASR one." if model_type else ""
        raise ModelResolutionError(
            f"{path} is not a converted FireRedASR model (config.json with model_type "
            f"{' or '.join(FIREREDASR_MODEL_TYPES)}).{note} {error}"
        ) from error

    entry = local_cache_dir(cache_root, path) / checkpoint_fingerprint(path, variant)
    marker = {"source": str(path), "variant": variant}
    return str(convert_once(entry, path, marker, source=str(path), replace_siblings=True))


def checkpoint_fingerprint(path: Path, variant: str) -> str:
    """A digest of the names, sizes and modification times of the files the converter reads (not of other files,
    such as the metadata `hf download --local-dir` keeps, which change without changing the model)."""
    files = [path / name for name in (AED_FILES if variant == "aed" else LLM_FILES)]
    if variant == "llm":
        files += sorted(
            file
            for file in (path / BASE_LLM_DIR).iterdir()
            if file.is_file() and any(fnmatch(file.name, pattern) for pattern in BASE_LLM_PATTERNS)
        )
    return files_fingerprint(path, files)


def files_fingerprint(path: Path, files) -> str:
    """A digest of the names (relative to `path`), sizes and modification times of `files`."""
    digest = hashlib.sha256()
    for file in files:
        stat = file.stat()
        digest.update(f"{file.relative_to(path).as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def local_cache_dir(cache_root: Path, path: Path) -> Path:
    """Where the conversions of the local original directory `path` are cached (one folder per source path)."""
    return cache_root / "local" / f"{path.name}-{hashlib.sha256(str(path).encode()).hexdigest()[:12]}"


def resolve_hub_repo(repo_id: str, revision: str | None, cache_root: Path, token) -> str:
    repo_cache, info, unreachable = hub_lookup(repo_id, revision, cache_root, token)
    if info is None:
        return resolve_hub_repo_offline(repo_id, revision, repo_cache, reason=unreachable)
    entry = repo_cache / info.sha
    if finished_conversion(entry, repo_cache, revision, info):
        return str(entry)
    files = [sibling.rfilename for sibling in info.siblings or []]
    model_type = None
    if "config.json" in files:
        model_type = read_model_type(hf_hub_download(repo_id, "config.json", revision=info.sha, token=token))
        if model_type in FIREREDASR_MODEL_TYPES:
            return repo_id
    variant = original_variant(files)
    if variant is None or missing_original_files(files, variant):
        raise neither_format_error(f"The Hub repository {repo_id} (revision {info.sha})", files, variant, model_type)
    logger.warning(first_run_message(repo_id, variant, info.siblings, entry))
    snapshot = snapshot_download(repo_id, revision=info.sha, allow_patterns=original_patterns(variant), token=token)
    converted = convert_snapshot(repo_id, Path(snapshot), files, variant, repo_cache, token=token)
    remember_revision(repo_cache, revision, info.sha)
    return converted


def resolve_hub_repo_offline(repo_id: str, revision: str | None, repo_cache: Path, reason: str) -> str:
    """
    A Hub repository without Hub access, from what is on disk, in this order: our conversion of the commit the
    Hugging Face cache points to; a conversion of the originals there (e.g. fetched with `hf download`); our last
    conversion of that revision name (recorded in refs.json; works after the originals left the Hugging Face cache).
    """
    found = "nothing"
    try:
        patterns = ["config.json", *original_patterns("aed"), *original_patterns("llm")]
        snapshot = Path(snapshot_download(repo_id, revision=revision, allow_patterns=patterns, local_files_only=True))
    except LocalEntryNotFoundError:
        snapshot = None
    if snapshot is not None:
        if is_complete(repo_cache / snapshot.name):
            return str(repo_cache / snapshot.name)
        files = [p.relative_to(snapshot).as_posix() for p in sorted(snapshot.rglob("*")) if p.is_file()]
        found = ", ".join(files) or "nothing"
        if "config.json" in files and read_model_type(snapshot / "config.json") in FIREREDASR_MODEL_TYPES:
            return repo_id
        variant = original_variant(files)
        if variant is not None and not missing_original_files(files, variant):
            try:
                return convert_snapshot(repo_id, snapshot, files, variant, repo_cache, local_files_only=True)
            except LocalEntryNotFoundError:
                found += f"; but not {BASE_LLM_REPO}, which FireRedASR-LLM needs"

    name = revision or constants.DEFAULT_REVISION
    converted = converted_for_revision(repo_cache, revision)
    if converted is not None:
        return str(converted)

    revision_option = f" --revision {revision}" if revision else ""
    raise ModelResolutionError(
        f"{repo_id} (revision {name}) is neither converted in {repo_cache} nor complete in the Hugging Face cache "
        f"(found there: {found}), and {reason}, so it cannot be downloaded. With network access, download it with "
        f"`hf download {repo_id}{revision_option}` (for FireRedASR-LLM models also `hf download {BASE_LLM_REPO}`) "
        "and rerun, or rerun without HF_HUB_OFFLINE. Or convert a local copy of the original files with "
        "`python conversion/convert_fireredasr_to_hf.py --input_dir ORIGINAL_DIR --output_dir CONVERTED_DIR` and "
        "pass CONVERTED_DIR instead."
    )


def hub_lookup(repo_id: str, revision: str | None, cache_root: Path, token):
    """`(our cache folder of the repository, model info or None, why not)`: see `query_hub`."""
    repo_cache = cache_root / "hub" / repo_folder_name(repo_id=repo_id, repo_type="model")
    return (repo_cache, *query_hub(repo_id, revision, token))


def finished_conversion(entry: Path, repo_cache: Path, revision: str | None, info) -> bool:
    """Whether `entry`, our conversion of the commit `info` names, is complete; if so the revision name is recorded
    as pointing to that commit (for offline use)."""
    if not is_complete(entry):
        return False
    remember_revision(repo_cache, revision, info.sha)
    return True


def query_hub(repo_id: str, revision: str | None, token):
    """`(model info, None)` from the Hub, or `(None, why not)` when it cannot be asked (HF_HUB_OFFLINE, no network):
    the caller then looks in the caches. A repository or revision the Hub does not have is an error."""
    if constants.HF_HUB_OFFLINE:
        return None, "HF_HUB_OFFLINE=1 is set"
    try:
        # With the files' sizes, which the first-run message of an original repository states.
        return HfApi(token=token).model_info(repo_id, revision=revision, files_metadata=True), None
    except RevisionNotFoundError as error:
        raise ModelResolutionError(f"The Hub repository {repo_id} has no revision {revision!r}.") from error
    except RepositoryNotFoundError as error:
        raise ModelResolutionError(
            f"{repo_id!r} is not a local directory, and the Hub has no model repository of that name that you can "
            "access (for a private or gated one, log in with `hf auth login` or pass `token`)."
        ) from error
    except (OfflineModeIsEnabled, httpx.TransportError, HfHubHTTPError) as error:
        logger.warning(f"Could not reach the Hugging Face Hub ({error}); looking for {repo_id} in the local cache.")
        return None, f"the Hub is unreachable ({error})"


def converted_for_revision(repo_cache: Path, revision: str | None, folder: str = "") -> Path | None:
    """Our last complete conversion of a revision (a commit, or a name recorded in refs.json), if any."""
    name = revision or constants.DEFAULT_REVISION
    sha = name if len(name) == COMMIT_SHA_LENGTH else read_refs(repo_cache).get(name)
    entry = repo_cache / sha / folder if sha is not None else None
    return entry if entry is not None and is_complete(entry) else None


def convert_snapshot(
    repo_id: str, snapshot: Path, files: list[str], variant: str, repo_cache: Path, token=None, local_files_only=False
) -> str:
    """Convert a downloaded original repository once; an LLM repository without a bundled base LLM gets
    Qwen/Qwen2-7B-Instruct from the Hub (or the Hugging Face cache)."""
    marker = {"source": repo_id, "revision": snapshot.name, "variant": variant}
    base_llm = None
    if variant == "llm" and not has_base_llm(files):
        base_llm = Path(
            snapshot_download(
                BASE_LLM_REPO, allow_patterns=list(BASE_LLM_PATTERNS), token=token, local_files_only=local_files_only
            )
        )
        marker["base_llm"] = {"source": BASE_LLM_REPO, "revision": base_llm.name}
    return str(convert_once(repo_cache / snapshot.name, snapshot, marker, source=repo_id, base_llm=base_llm))


def first_run_message(repo_id: str, variant: str, siblings, entry: Path) -> str:
    """What the first use of an original Hub repository downloads and converts, and that no code in it runs."""
    patterns = original_patterns(variant)
    chosen = [sibling for sibling in siblings if any(fnmatch(sibling.rfilename, p) for p in patterns)]
    sizes = [getattr(sibling, "size", None) for sibling in chosen]
    size = f", {sum(sizes) / 1e9:.1f} GB" if chosen and None not in sizes else ""
    downloads = f"{', '.join(sibling.rfilename for sibling in chosen)}{size}"
    if variant == "llm" and not has_base_llm([sibling.rfilename for sibling in siblings]):
        downloads += (
            f"; and the base LLM {BASE_LLM_REPO} (its config, tokenizer and safetensors weights, about 15 GB, unless "
            "already in the Hugging Face cache)"
        )
    return (
        f"{repo_id} is an original FireRedASR-{variant.upper()} checkpoint. First use: downloading {downloads} into "
        f"the Hugging Face cache, then converting once into {entry} (later runs reuse the conversion). The "
        "checkpoints are read with torch.load(weights_only=True): only tensors and the argparse.Namespace of the "
        "release are accepted, so nothing in them runs as code."
    )


def original_variant(files: list[str]) -> str | None:
    """The original variant ("llm", "aed" or None) from a repository's file names, as `detect_variant` decides for
    a directory."""
    if "asr_encoder.pth.tar" in files:
        return "llm"
    if "model.pth.tar" in files:
        return "aed"
    return None


def missing_original_files(files: list[str], variant: str) -> list[str]:
    required = AED_FILES if variant == "aed" else LLM_FILES
    return [name for name in required if name not in files]


def has_base_llm(files: list[str]) -> bool:
    return f"{BASE_LLM_DIR}/config.json" in files


def original_patterns(variant: str) -> list[str]:
    """The `allow_patterns` of the files the converter reads (a bundled base LLM included)."""
    if variant == "aed":
        return list(AED_FILES)
    return [*LLM_FILES, *(f"{BASE_LLM_DIR}/{pattern}" for pattern in BASE_LLM_PATTERNS)]


def link_llm_source(snapshot: Path, base_llm: Path, work_dir: Path) -> Path:
    """An original LLM directory made of symbolic links to the downloaded files (no copies)."""
    source = work_dir / "source"
    source.mkdir()
    for name in LLM_FILES:
        (source / name).symlink_to(snapshot / name)
    (source / BASE_LLM_DIR).symlink_to(base_llm, target_is_directory=True)
    return source


def neither_format_error(where: str, files: list[str], variant: str | None, model_type: str | None):
    shown = ", ".join(sorted(files)[:40]) + (f", ... ({len(files) - 40} more)" if len(files) > 40 else "")
    note = f" Its config.json has model_type {model_type!r}, not a FireRedASR one." if model_type else ""
    if variant is not None:
        missing = missing_original_files(files, variant)
        note += f" It looks like an original FireRedASR-{variant.upper()} checkpoint but lacks {', '.join(missing)}."
        if variant == "aed" and {"dict.txt", "train_bpe1000.model"} <= set(missing):
            note += " Or it is an original FireRedASR-LLM checkpoint that lacks asr_encoder.pth.tar."
    return ModelResolutionError(
        f"{where} is neither a converted FireRedASR model (config.json with model_type "
        f"{' or '.join(FIREREDASR_MODEL_TYPES)}) nor an original FireRedASR checkpoint (AED: "
        f"{', '.join(AED_FILES)}; LLM: {', '.join(LLM_FILES)}, with {BASE_LLM_REPO} in {BASE_LLM_DIR}/ or fetched "
        f"from the Hub).{note} Found: {shown or 'nothing'}."
    )


def read_model_type(config_file: str | Path) -> str | None:
    try:
        return json.loads(Path(config_file).read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError, AttributeError):
        return None


def is_complete(entry: Path) -> bool:
    """Whether a cache entry was fully written by this cache format (its marker is written last)."""
    try:
        marker = json.loads((entry / COMPLETE_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(marker, dict) and marker.get("cache_format") == CACHE_FORMAT


def convert_once(
    entry: Path,
    original_dir: Path,
    marker: dict,
    source: str,
    base_llm: Path | None = None,
    replace_siblings: bool = False,
) -> Path:
    """
    Convert `original_dir` (joined with the separately downloaded `base_llm`, if given) into `entry` unless that
    is complete. The conversion goes to a temporary sibling, gets the completion marker and is renamed into place;
    partial entries of interrupted runs are removed first. With `replace_siblings`, the other entries of the same
    source (older fingerprints) are removed afterwards.
    """
    entry.parent.mkdir(parents=True, exist_ok=True)
    with source_lock(entry.parent, source):
        if is_complete(entry):
            return entry
        remove_stale_entries(entry)
        logger.warning(f"Converting {source} to the transformers format once, into {entry} (later runs reuse it).")
        # The marker goes in before the entry is published, so an entry without it is never a finished one.
        with (
            atomic_output_dir(entry) as output_dir,
            tempfile.TemporaryDirectory(prefix=f"{PARTIAL_PREFIX}{entry.name}-source-", dir=entry.parent) as scratch,
        ):
            if base_llm is not None:
                original_dir = link_llm_source(original_dir, base_llm, Path(scratch))
            convert_checkpoint(original_dir, output_dir, source=source)
            marker = {
                **marker,
                "cache_format": CACHE_FORMAT,
                "fireredasr_hf_version": __version__,
                "converted_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            }
            (output_dir / COMPLETE_MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
        if replace_siblings:
            for sibling in entry.parent.iterdir():
                if sibling.is_dir() and sibling != entry:
                    shutil.rmtree(sibling, ignore_errors=True)
    return entry


@contextmanager
def source_lock(directory: Path, source: str):
    """An exclusive lock per cached source (released by the OS if the process dies), with a note while waiting."""
    lock = FileLock(str(directory / ".lock"))
    try:
        lock.acquire(timeout=1)
    except Timeout:
        logger.warning(f"Waiting for another process that is converting {source} ({lock.lock_file}).")
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def remove_stale_entries(entry: Path) -> None:
    """Remove an incomplete `entry` and partial conversions left by interrupted runs (only called under the lock,
    so no running conversion owns them)."""
    if entry.exists():
        shutil.rmtree(entry)
    for partial in entry.parent.glob(f"{PARTIAL_PREFIX}*"):
        shutil.rmtree(partial, ignore_errors=True)


def read_refs(repo_cache: Path) -> dict[str, str]:
    try:
        refs = json.loads((repo_cache / "refs.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return refs if isinstance(refs, dict) else {}


def remember_revision(repo_cache: Path, revision: str | None, sha: str) -> None:
    """Record which commit a revision name resolved to, so that the conversion is found offline."""
    name = revision or constants.DEFAULT_REVISION
    refs = read_refs(repo_cache)
    if name == sha or refs.get(name) == sha:
        return
    refs[name] = sha
    with tempfile.NamedTemporaryFile("w", dir=repo_cache, prefix=".refs-", suffix=".json", delete=False) as handle:
        json.dump(refs, handle, indent=2, sort_keys=True)
    make_readable(handle.name)
    os.replace(handle.name, repo_cache / "refs.json")


# ---- FireRedVAD -----------------------------------------------------------------------------------------------------


def load_vad_model(
    name_or_path: str | Path,
    kind: str = "vad",
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    token: bool | str | None = None,
):
    """
    A released FireRedVAD model (`kind` "vad", "stream-vad" or "aed") that is not a converted directory, as
    `(model, feature_extractor)`: an original local directory (`VAD/model.pth.tar` + `cmvn.ark` as on the Hub, one
    model's folder, or the ONNX exports with `cmvn.ark`) is read in memory (the models are small); a Hub repo id
    (e.g. FireRedTeam/FireRedVAD) is downloaded (only the model's folder), converted once per commit into the
    converted-model cache and loaded from there, also offline afterwards.
    """
    from .conversion.vad import load_original_vad
    from .vad import load_fireredvad_model

    name = str(name_or_path)
    path = Path(name).expanduser()
    if path.is_dir():
        try:
            return load_original_vad(path, kind)
        except ConversionError as error:
            raise ModelResolutionError(str(error)) from error
    check_repo_id(name, "a FireRedVAD model directory")
    directory = resolve_vad_hub_repo(name, kind, revision, converted_cache_dir(cache_dir), token)
    return load_fireredvad_model(directory, kind)


def resolve_vad_hub_repo(repo_id: str, kind: str, revision: str | None, cache_root: Path, token) -> str:
    """The local directory of the `kind` model of a FireRedVAD Hub repository: its converted folder if the repository
    holds converted models, else our conversion of its original folder (`<cache>/hub/models--.../<sha>/VAD`)."""
    from .configuration_fireredvad import KIND_DIRS

    folder = KIND_DIRS[kind]
    repo_cache, info, unreachable = hub_lookup(repo_id, revision, cache_root, token)
    if info is None:
        return resolve_vad_hub_repo_offline(repo_id, folder, revision, repo_cache, reason=unreachable)
    entry = repo_cache / info.sha / folder
    if finished_conversion(entry, repo_cache, revision, info):
        return str(entry)
    files = [sibling.rfilename for sibling in info.siblings or []]
    has_original = all(f"{folder}/{name}" in files for name in ("model.pth.tar", "cmvn.ark"))
    if f"{folder}/config.json" not in files and not has_original:
        shown = ", ".join(sorted(files)[:40]) or "nothing"
        raise ModelResolutionError(
            f"The Hub repository {repo_id} (revision {info.sha}) has no FireRedVAD {kind} model: expected "
            f"{folder}/model.pth.tar and {folder}/cmvn.ark (as in FireRedTeam/FireRedVAD) or a converted "
            f"{folder}/config.json. Found: {shown}."
        )
    snapshot = Path(snapshot_download(repo_id, revision=info.sha, allow_patterns=[f"{folder}/*"], token=token))
    converted = convert_vad_snapshot(repo_id, snapshot, folder, repo_cache)
    repo_cache.mkdir(parents=True, exist_ok=True)
    remember_revision(repo_cache, revision, info.sha)
    return converted


def convert_vad_snapshot(repo_id: str, snapshot: Path, folder: str, repo_cache: Path) -> str:
    from .vad import _is_converted_fireredvad

    if _is_converted_fireredvad(snapshot / folder):
        return str(snapshot / folder)
    marker = {"source": repo_id, "revision": snapshot.name, "variant": "vad", "folder": folder}
    entry = repo_cache / snapshot.name / folder
    return str(convert_once(entry, snapshot / folder, marker, source=f"{repo_id}/{folder}"))


def resolve_vad_hub_repo_offline(repo_id: str, folder: str, revision: str | None, repo_cache: Path, reason: str) -> str:
    """As `resolve_hub_repo_offline`, for one folder of a FireRedVAD repository."""
    try:
        snapshot = Path(
            snapshot_download(repo_id, revision=revision, allow_patterns=[f"{folder}/*"], local_files_only=True)
        )
    except LocalEntryNotFoundError:
        snapshot = None
    if snapshot is not None and (
        is_complete(repo_cache / snapshot.name / folder)
        or (snapshot / folder / "config.json").is_file()
        or all((snapshot / folder / name).is_file() for name in ("model.pth.tar", "cmvn.ark"))
    ):
        return convert_vad_snapshot(repo_id, snapshot, folder, repo_cache)
    name = revision or constants.DEFAULT_REVISION
    converted = converted_for_revision(repo_cache, revision, folder)
    if converted is not None:
        return str(converted)
    from .vad import FIREREDVAD_MODEL_ENV_VAR

    revision_option = f" --revision {revision}" if revision else ""
    raise ModelResolutionError(
        f"FireRedVAD ({repo_id}, folder {folder}/, revision {name}) is neither converted in {repo_cache} nor in the "
        f"Hugging Face cache, and {reason}, so it cannot be downloaded. Either download it with network access: "
        f"`hf download {repo_id} --include '{folder}/*'{revision_option}`; or use a local copy: a directory with "
        f"{folder}/model.pth.tar + {folder}/cmvn.ark, or with the ONNX exports (fireredvad_vad.onnx, ...) and "
        f"cmvn.ark, passed as the CLI's --vad-model DIR, as FireRedVad.from_pretrained(DIR), or in "
        f"{FIREREDVAD_MODEL_ENV_VAR}=DIR; or choose another detector: --vad silero (vad='silero' in the pipeline)."
    )


# ---- FireRedPunc ----------------------------------------------------------------------------------------------------


def punctuation_source_files(path: Path) -> list[Path]:
    """The files of an original FireRedPunc directory that its conversion reads."""
    from .conversion.punc import BERT_DIR, PUNC_FILES

    bert_files = sorted(p for p in (path / BERT_DIR).glob("*") if p.suffix in (".json", ".txt"))
    return [path / name for name in PUNC_FILES] + bert_files


def punctuation_patterns() -> list[str]:
    from .conversion.punc import BERT_DIR, PUNC_FILES

    return [*PUNC_FILES, f"{BERT_DIR}/*.json", f"{BERT_DIR}/*.txt"]


def resolve_punctuation_model(
    name_or_path: str | Path,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    token: bool | str | None = None,
) -> str:
    """
    The converted directory of a FireRedPunc model: a converted directory as is; an original directory (model.pth.tar,
    out_dict, chinese-bert-wwm-ext_vocab.txt, chinese-lert-base/) converted once into the cache (again when its files
    change); a Hub repo id (FireRedTeam/FireRedPunc) downloaded (only what the converter reads), converted once per
    commit and found offline afterwards.
    """
    from .conversion.punc import check_punc_dir, is_converted_punc_dir

    name = str(name_or_path)
    path = Path(name).expanduser()
    cache_root = converted_cache_dir(cache_dir)
    if path.is_dir():
        path = path.resolve()
        if is_converted_punc_dir(path):
            return str(path)
        try:
            check_punc_dir(path)
        except ConversionError as error:
            raise ModelResolutionError(f"{path} is not a FireRedPunc model (converted or original). {error}") from error
        marker = {"source": str(path), "variant": "punc"}
        entry = local_cache_dir(cache_root, path) / files_fingerprint(path, punctuation_source_files(path))
        return str(convert_once(entry, path, marker, source=str(path), replace_siblings=True))
    check_repo_id(name, "a FireRedPunc model directory")
    repo_cache, info, unreachable = hub_lookup(name, revision, cache_root, token)
    if info is None:
        return resolve_punctuation_offline(name, revision, repo_cache, reason=unreachable)
    entry = repo_cache / info.sha
    if finished_conversion(entry, repo_cache, revision, info):
        return str(entry)
    files = [sibling.rfilename for sibling in info.siblings or []]
    if "config.json" in files:
        snapshot = snapshot_download(name, revision=info.sha, token=token)
        if is_converted_punc_dir(Path(snapshot)):
            return snapshot
    patterns = punctuation_patterns()
    snapshot = Path(snapshot_download(name, revision=info.sha, allow_patterns=patterns, token=token))
    try:
        check_punc_dir(snapshot)
    except ConversionError as error:
        raise ModelResolutionError(f"The Hub repository {name} (revision {info.sha}) {error}") from error
    marker = {"source": name, "revision": info.sha, "variant": "punc"}
    converted = str(convert_once(entry, snapshot, marker, source=name))
    remember_revision(repo_cache, revision, info.sha)
    return converted


def resolve_punctuation_offline(repo_id: str, revision: str | None, repo_cache: Path, reason: str) -> str:
    from .conversion.punc import is_converted_punc_dir

    try:
        snapshot = Path(
            snapshot_download(repo_id, revision=revision, allow_patterns=punctuation_patterns(), local_files_only=True)
        )
    except LocalEntryNotFoundError:
        snapshot = None
    if snapshot is not None:
        if is_complete(repo_cache / snapshot.name):
            return str(repo_cache / snapshot.name)
        if is_converted_punc_dir(snapshot):
            return str(snapshot)
        if all(file.is_file() for file in punctuation_source_files(snapshot)[:3]):
            marker = {"source": repo_id, "revision": snapshot.name, "variant": "punc"}
            return str(convert_once(repo_cache / snapshot.name, snapshot, marker, source=repo_id))
    name = revision or constants.DEFAULT_REVISION
    converted = converted_for_revision(repo_cache, revision)
    if converted is not None:
        return str(converted)
    revision_option = f" --revision {revision}" if revision else ""
    raise ModelResolutionError(
        f"FireRedPunc ({repo_id}, revision {name}) is neither converted in {repo_cache} nor in the Hugging Face cache, "
        f"and {reason}, so it cannot be downloaded. Download it with network access: `hf download {repo_id}"
        f"{revision_option}`; or pass a local copy (the original directory or a converted one) as --punctuation DIR."
    )
