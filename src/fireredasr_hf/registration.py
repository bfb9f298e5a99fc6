# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""Registration of the FireRedASR classes with transformers, done when transformers loads what they register with.

`import fireredasr_hf` makes `AutoConfig`, `AutoModel`, `AutoModelForSpeechSeq2Seq`, `AutoFeatureExtractor`,
`AutoTokenizer`, `AutoProcessor` and `pipeline("automatic-speech-recognition")` know the FireRedASR models. Doing
that eagerly would import torch and transformers' model code (seconds) on every `import fireredasr_hf`, including
the command line's `--help`. Instead each registration runs when the transformers module holding the mapping it
fills is imported, or at once if it already is:

    import fireredasr_hf                                   # cheap: no torch, no transformers
    from transformers import AutoModelForSpeechSeq2Seq     # loads modeling_auto -> FireRedASR models registered
    AutoModelForSpeechSeq2Seq.from_pretrained("fireredasr-aed-l-hf")

`REGISTRATIONS` maps each transformers module to the function that registers with it (it receives the module). To
register a new class, add it to the function of its mapping, e.g. a new model to `register_models`; a mapping in
another transformers module gets its own function and entry.

How the deferral works: a `sys.meta_path` finder watches imports of transformers and of this package. When a watched
transformers module has been executed, its registration runs as soon as the current thread has finished importing
every transformers and fireredasr_hf module it is in the middle of (so a registration never imports a half-executed
module, e.g. while `fireredasr_hf.configuration_fireredasr` itself is importing `transformers.AutoConfig`).
"""

import sys
import threading
from collections.abc import Callable
from types import ModuleType

PACKAGE = __name__.rpartition(".")[0]
# Imports that are tracked: transformers (whose modules the registrations wait for) and this package.
TRACKED_PREFIXES = ("transformers.", f"{PACKAGE}.")


def register_configs(configuration_auto: ModuleType) -> None:
    from . import configuration_fireredasr
    from .configuration_fireredasr import FireRedAedConfig, FireRedEncoderConfig, FireRedLlmConfig, FireRedLstmLmConfig
    from .configuration_fireredvad import FireRedVadConfig

    configs = (FireRedEncoderConfig, FireRedAedConfig, FireRedLlmConfig, FireRedLstmLmConfig, FireRedVadConfig)
    for config_class in configs:
        configuration_auto.AutoConfig.register(config_class.model_type, config_class, exist_ok=True)
    # The installed pipeline serves (see register_pipeline): configs then drop a converted directory's remote-code
    # pipeline declaration, for which transformers would insist on trust_remote_code.
    configuration_fireredasr.USE_INSTALLED_PIPELINE = True


def register_models(modeling_auto: ModuleType) -> None:
    from .configuration_fireredasr import FireRedAedConfig, FireRedEncoderConfig, FireRedLlmConfig
    from .configuration_fireredvad import FireRedVadConfig
    from .modeling_fireredasr_aed import FireRedAedForConditionalGeneration, FireRedAedModel
    from .modeling_fireredasr_encoder import FireRedEncoder
    from .modeling_fireredasr_llm import FireRedLlmForSpeechSeq2Seq
    from .modeling_fireredvad import FireRedVadForAudioFrameClassification, FireRedVadModel

    modeling_auto.AutoModel.register(FireRedEncoderConfig, FireRedEncoder, exist_ok=True)
    modeling_auto.AutoModel.register(FireRedAedConfig, FireRedAedModel, exist_ok=True)
    modeling_auto.AutoModel.register(FireRedVadConfig, FireRedVadModel, exist_ok=True)
    modeling_auto.AutoModelForAudioFrameClassification.register(
        FireRedVadConfig, FireRedVadForAudioFrameClassification, exist_ok=True
    )
    modeling_auto.AutoModelForSpeechSeq2Seq.register(
        FireRedAedConfig, FireRedAedForConditionalGeneration, exist_ok=True
    )
    modeling_auto.AutoModelForSpeechSeq2Seq.register(FireRedLlmConfig, FireRedLlmForSpeechSeq2Seq, exist_ok=True)


def register_feature_extractors(feature_extraction_auto: ModuleType) -> None:
    from .configuration_fireredasr import FireRedAedConfig, FireRedLlmConfig
    from .configuration_fireredvad import FireRedVadConfig
    from .feature_extraction_fireredasr import FireRedAsrFeatureExtractor

    for config_class in (FireRedAedConfig, FireRedLlmConfig, FireRedVadConfig):
        feature_extraction_auto.AutoFeatureExtractor.register(config_class, FireRedAsrFeatureExtractor, exist_ok=True)


def register_tokenizers(tokenization_auto: ModuleType) -> None:
    from .configuration_fireredasr import FireRedAedConfig, FireRedLlmConfig
    from .tokenization_fireredasr import FireRedAsrTokenizer
    from .tokenization_fireredasr_llm import FireRedLlmTokenizer

    tokenization_auto.AutoTokenizer.register(FireRedAedConfig, tokenizer_class=FireRedAsrTokenizer, exist_ok=True)
    # FireRedASR2-LLM conversions name it in tokenizer_config.json; FireRedASR-LLM ones keep the Qwen2 tokenizer.
    tokenization_auto.AutoTokenizer.register(FireRedLlmConfig, tokenizer_class=FireRedLlmTokenizer, exist_ok=True)


def register_processors(processing_auto: ModuleType) -> None:
    from .configuration_fireredasr import FireRedAedConfig, FireRedLlmConfig
    from .processing_fireredasr import FireRedAsrProcessor
    from .processing_fireredasr_llm import FireRedLlmProcessor

    processing_auto.AutoProcessor.register(FireRedAedConfig, FireRedAsrProcessor, exist_ok=True)
    processing_auto.AutoProcessor.register(FireRedLlmConfig, FireRedLlmProcessor, exist_ok=True)


def register_pipeline(pipelines: ModuleType) -> None:
    # `pipeline("automatic-speech-recognition", model=...)` builds FireRedAsrPipeline for FireRedASR models (any input
    # rate, long audio, timestamps) and the stock pipeline for every other model. Converted directories also declare
    # the pipeline as remote code (`custom_pipelines`) for processes without this package; here the installed one
    # serves.
    from .pipeline_fireredasr import SpeechRecognitionPipelineSelector

    pipelines.PIPELINE_REGISTRY.supported_tasks["automatic-speech-recognition"]["impl"] = (
        SpeechRecognitionPipelineSelector
    )


REGISTRATIONS: dict[str, Callable[[ModuleType], None]] = {
    "transformers.models.auto.configuration_auto": register_configs,
    "transformers.models.auto.modeling_auto": register_models,
    "transformers.models.auto.feature_extraction_auto": register_feature_extractors,
    "transformers.models.auto.tokenization_auto": register_tokenizers,
    "transformers.models.auto.processing_auto": register_processors,
    "transformers.pipelines": register_pipeline,
}


class _ExecutionNotifier:
    """Wraps the loader of a tracked module: tells the hooks when the module starts and ends executing. The module
    gets its real loader back before it runs, so it looks as if imported normally."""

    def __init__(self, loader, hooks: "PostImportHooks"):
        self.loader = loader
        self.hooks = hooks

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        module.__loader__ = self.loader
        if module.__spec__ is not None:
            module.__spec__.loader = self.loader
        name = module.__name__
        self.hooks.started(name)
        try:
            self.loader.exec_module(module)
        finally:
            self.hooks.finished(name)

    def __getattr__(self, name):  # get_source, is_package, get_resource_reader, ...
        if name == "loader":  # not set yet (e.g. while copied): no recursion
            raise AttributeError(name)
        return getattr(self.loader, name)


class PostImportHooks:
    """Runs `callbacks[module_name](module)` once that module has been imported (see the module docstring)."""

    def __init__(self, callbacks: dict[str, Callable[[ModuleType], None]]):
        self.pending = dict(callbacks)
        self.executed: set[str] = set()  # tracked modules whose execution has ended
        self.lock = threading.RLock()
        self.executing = threading.local()  # per thread: the tracked modules being executed, innermost last

    def _stack(self) -> list[str]:
        if not hasattr(self.executing, "names"):
            self.executing.names = []
        return self.executing.names

    def find_spec(self, fullname, path=None, target=None):
        if not fullname.startswith(TRACKED_PREFIXES) and fullname != "transformers":
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _ExecutionNotifier(spec.loader, self)
        return spec

    def started(self, name: str) -> None:
        self._stack().append(name)

    def finished(self, name: str) -> None:
        self.executed.add(name)
        stack = self._stack()
        if stack and stack[-1] == name:
            stack.pop()
        elif name in stack:
            stack.remove(name)
        if not stack:
            self.run_ready()

    def run_ready(self) -> None:
        """Runs the callbacks whose modules are imported, unless this thread is inside a tracked import."""
        if self._stack():
            return
        with self.lock:
            while True:
                ready = [name for name in self.pending if self._imported(name)]
                if not ready:
                    break
                for name in ready:
                    callback = self.pending.pop(name, None)
                    if callback is not None:
                        callback(sys.modules[name])
            if not self.pending and self in sys.meta_path:
                sys.meta_path.remove(self)  # everything is registered: imports need no watching any more

    def _imported(self, name: str) -> bool:
        """Whether `name` is imported completely (not half-executed by another thread)."""
        module = sys.modules.get(name)
        if module is None:
            return False
        return name in self.executed or not getattr(getattr(module, "__spec__", None), "_initializing", False)


_hooks: PostImportHooks | None = None


def register_with_transformers() -> None:
    """Registers the FireRedASR classes with every transformers mapping in `REGISTRATIONS`: now for the modules
    already imported, at their import for the others. Called by `import fireredasr_hf`; repeated calls do nothing."""
    global _hooks
    if _hooks is None:
        _hooks = PostImportHooks(REGISTRATIONS)
        sys.meta_path.insert(0, _hooks)
    _hooks.run_ready()


__all__ = ["REGISTRATIONS", "PostImportHooks", "register_with_transformers"]
