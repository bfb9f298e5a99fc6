# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""Conversion of the original FireRedPunc directory into a stock `BertForTokenClassification` with its tokenizer.

The release (FireRedASR2S `fireredpunc/`, Hub repository FireRedTeam/FireRedPunc) holds:

- `model.pth.tar`: `{"args": argparse.Namespace(odim, cls_id, classifier_dropout, ...), "model_state_dict"}` of
  `FireRedPuncBert` = `bert.*` (a `BertModel` without pooler) + `classifier.*` (Linear over every character);
- `chinese-lert-base/`: the BERT configuration and the tokenizer that splits the text (`BertTokenizer`);
- `chinese-bert-wwm-ext_vocab.txt`: the vocabulary that maps those tokens to the model's input ids;
- `out_dict`: the labels, one per line (`<space>` = no punctuation after the token, then the marks).

The original adds only `[CLS]` in front of the tokens (no `[SEP]`); the converted tokenizer does the same, so that
transformers' `pipeline("token-classification")` feeds the model what the original does. If the two vocabularies
differ, the embedding rows are reordered to the tokenizer's ids (tokens the model's vocabulary lacks get its
`[UNK]` row, as the original looks them up).
"""

import json
from pathlib import Path

import torch

from .common import ConversionError, check_all_used, load_original_checkpoint, required_arg

PUNC_FILES = ("model.pth.tar", "out_dict", "chinese-bert-wwm-ext_vocab.txt")
# The release's training code keeps the BertModel it fine-tunes in its arguments (`FireRedPuncBert.from_args` sets
# `args.bert`), and saves those arguments: `model.pth.tar` pickles a whole transformers BertModel (pooler removed) next
# to the state dict, as the reference loader's `package["args"].bert = None` shows. The converter needs none of it
# (the weights are in `model_state_dict`, the configuration in chinese-lert-base/), so the classes and the function
# that object is made of are read as inert placeholders (`load_original_checkpoint(inert_globals=...)`): nothing of
# transformers or torch.nn runs, and their names need not exist in the installed transformers (4.x pickled
# `BertSdpaSelfAttention`, which 5.x lacks). Any other class in the file is still refused.
PICKLED_BERT_GLOBALS = frozenset(
    [
        *(
            f"transformers.models.bert.modeling_bert.{name}"
            for name in (
                "BertModel",
                "BertEmbeddings",
                "BertEncoder",
                "BertLayer",
                "BertAttention",
                "BertSelfAttention",
                "BertSdpaSelfAttention",  # transformers 4.41 to 4.5x
                "BertSelfOutput",
                "BertIntermediate",
                "BertOutput",
                "BertPooler",
            )
        ),
        "transformers.models.bert.configuration_bert.BertConfig",
        "transformers.activations.GELUActivation",
        "torch._C._nn.gelu",  # GELUActivation.act
        "torch.nn.modules.sparse.Embedding",
        "torch.nn.modules.normalization.LayerNorm",
        "torch.nn.modules.dropout.Dropout",
        "torch.nn.modules.linear.Linear",
        "torch.nn.modules.container.ModuleList",
        "torch.nn.modules.activation.Tanh",  # BertPooler.activation
    ]
)
BERT_DIR = "chinese-lert-base"
NO_PUNCTUATION_LABEL = "O"
# Tensors of the original state dict that the converted model does not have (the original loads non-strictly).
DROPPED_PREFIXES = ("bert.pooler.",)
DROPPED_KEYS = {"bert.embeddings.position_ids", "bert.embeddings.token_type_ids"}


def check_punc_dir(input_dir: Path) -> None:
    missing = [name for name in PUNC_FILES if not (input_dir / name).is_file()]
    missing += [
        f"{BERT_DIR}/{name}" for name in ("config.json", "vocab.txt") if not (input_dir / BERT_DIR / name).is_file()
    ]
    if missing:
        found = sorted(p.name for p in input_dir.iterdir()) if input_dir.is_dir() else []
        raise ConversionError(
            f"{input_dir} is not an original FireRedPunc directory: missing {', '.join(missing)} "
            f"(found: {', '.join(found) or 'nothing'})."
        )


def read_token_list(path: Path) -> list[str]:
    """Tokens by id from a vocabulary or label file as the original reads it (`token [id]` per line; an empty line
    and `<space>` are the space)."""
    tokens = []
    for index, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        fields = line.strip().split()
        token = fields[0] if fields else " "
        if len(fields) >= 2 and int(fields[1]) != index:
            raise ConversionError(f"{path}, line {index + 1}: id {fields[1]} out of order (expected {index}).")
        tokens.append(" " if token == "<space>" else token)
    return tokens


def punctuation_labels(out_dict: Path) -> dict[int, str]:
    """id2label with the marks; the original's "no punctuation" output (`<space>`) becomes "O"."""
    labels = read_token_list(out_dict)
    if not labels or labels[0] != " ":
        raise ConversionError(f"{out_dict}: the first label must be <space> (no punctuation), got {labels[:1]}.")
    return {index: NO_PUNCTUATION_LABEL if label == " " else label for index, label in enumerate(labels)}


def convert_punc_state_dict(state_dict: dict) -> dict[str, torch.Tensor]:
    converted = {}
    for key, tensor in state_dict.items():
        if key in DROPPED_KEYS or key.startswith(DROPPED_PREFIXES):
            continue
        if not key.startswith(("bert.", "classifier.")):
            raise ConversionError(f"Unexpected tensor in the original FireRedPunc model: `{key}`.")
        converted[key] = tensor
    return converted


def remap_embeddings(embeddings: torch.Tensor, tokenizer_vocab: list[str], model_vocab: list[str], cls_id: int):
    """Rows of the model's input embedding for the tokenizer's ids (identity when the vocabularies agree)."""
    model_ids = {token: index for index, token in enumerate(model_vocab)}
    if tokenizer_vocab == model_vocab and model_ids.get("[CLS]") == cls_id:
        return embeddings
    unknown = model_ids.get("[UNK]")
    if unknown is None:
        raise ConversionError("The model's vocabulary has no [UNK] token.")
    rows = [model_ids.get(token, unknown) for token in tokenizer_vocab]
    rows[tokenizer_vocab.index("[CLS]")] = cls_id  # the original prepends args.cls_id
    print(
        f"note: the tokenizer's and the model's vocabularies differ ({len(tokenizer_vocab)} vs {len(model_vocab)} "
        f"tokens, {sum(token not in model_ids for token in tokenizer_vocab)} unknown to the model); the embedding "
        "rows are reordered to the tokenizer's ids."
    )
    return embeddings[rows].clone()


def build_tokenizer(bert_dir: Path, max_length: int):
    """The original's BERT tokenizer, emitting `[CLS]` + tokens (no `[SEP]`), as a stock fast tokenizer."""
    from tokenizers import processors
    from transformers import BertTokenizer, PreTrainedTokenizerFast

    bert = BertTokenizer.from_pretrained(bert_dir)
    backend = bert.backend_tokenizer
    backend.post_processor = processors.TemplateProcessing(
        single=f"{bert.cls_token}:0 $A:0",
        pair=f"{bert.cls_token}:0 $A:0 $B:1",
        special_tokens=[(bert.cls_token, bert.cls_token_id)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token=bert.unk_token,
        sep_token=bert.sep_token,
        pad_token=bert.pad_token,
        cls_token=bert.cls_token,
        mask_token=bert.mask_token,
        model_max_length=max_length,
    )


def convert_punc_checkpoint(input_dir: str | Path, output_dir: str | Path, source: str | None = None) -> Path:
    """Convert an original FireRedPunc directory into a `BertForTokenClassification` directory."""
    from transformers import BertConfig, BertForTokenClassification

    input_dir, output_dir = Path(input_dir), Path(output_dir)
    check_punc_dir(input_dir)
    checkpoint = input_dir / "model.pth.tar"
    package = load_original_checkpoint(checkpoint, inert_globals=PICKLED_BERT_GLOBALS)
    if "model_state_dict" not in package:
        raise ConversionError(f"{checkpoint} holds no `model_state_dict`.")
    args = package["args"]
    id2label = punctuation_labels(input_dir / "out_dict")
    num_labels = required_arg(args, "odim", str(checkpoint))
    if num_labels != len(id2label):
        raise ConversionError(f"{checkpoint} predicts {num_labels} labels, out_dict lists {len(id2label)}.")

    config = BertConfig.from_pretrained(input_dir / BERT_DIR)
    config.architectures = ["BertForTokenClassification"]
    config.id2label = id2label
    config.label2id = {label: index for index, label in id2label.items()}
    config.classifier_dropout = float(getattr(args, "classifier_dropout", 0.1))

    state_dict = convert_punc_state_dict(package["model_state_dict"])
    tokenizer_vocab = read_token_list(input_dir / BERT_DIR / "vocab.txt")
    model_vocab = read_token_list(input_dir / "chinese-bert-wwm-ext_vocab.txt")
    cls_id = required_arg(args, "cls_id", str(checkpoint))
    embedding_key = "bert.embeddings.word_embeddings.weight"
    if embedding_key in state_dict:
        if state_dict[embedding_key].shape[0] != len(model_vocab):
            raise ConversionError(
                f"The model embeds {state_dict[embedding_key].shape[0]} tokens, chinese-bert-wwm-ext_vocab.txt lists "
                f"{len(model_vocab)}."
            )
        state_dict[embedding_key] = remap_embeddings(state_dict[embedding_key], tokenizer_vocab, model_vocab, cls_id)
    config.vocab_size = len(tokenizer_vocab)

    model = BertForTokenClassification(config)
    expected = {key for key in model.state_dict() if key not in DROPPED_KEYS}
    check_all_used(expected, set(state_dict), "FireRedPunc model")
    model.load_state_dict({key: tensor.float() for key, tensor in state_dict.items()}, strict=False)
    model.eval()

    tokenizer = build_tokenizer(input_dir / BERT_DIR, config.max_position_embeddings)
    if len(tokenizer) != config.vocab_size:
        raise ConversionError(
            f"{BERT_DIR}/vocab.txt yields {len(tokenizer)} tokens with its tokenizer settings, expected "
            f"{config.vocab_size}."
        )
    output_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    write_punc_model_card(output_dir, id2label, source or str(input_dir))
    return output_dir


def write_punc_model_card(output_dir: Path, id2label: dict[int, str], source: str) -> None:
    from .model_card import hub_repo_id

    marks = " ".join(label for label in id2label.values() if label != NO_PUNCTUATION_LABEL)
    # The original is named only by its Hub id, never by a path on the converting machine.
    origin = f"`{hub_repo_id(source)}`" if hub_repo_id(source) else "the original checkpoint"
    card = f"""---
language: [zh, en]
license: apache-2.0
library_name: transformers
pipeline_tag: token-classification
tags: [punctuation, fireredasr2s]
---

# FireRedPunc (converted)

FireRedPunc, the punctuation model of FireRedASR2S (a BERT token classifier), converted from {origin} to a stock
`BertForTokenClassification`. Each token is labelled with the mark that follows it ({marks}) or `O` (none). The
tokenizer prepends `[CLS]` only, as the original does.

```python
from transformers import pipeline

punctuation = pipeline("token-classification", model="{output_dir.name}")
punctuation("你好世界 hello world")   # tokens followed by a mark, with the mark as `entity`
```

For whole texts (reassembled, long inputs split as the original does, timestamps kept), use
`fireredasr_hf.punctuation.FireRedPunctuator.from_pretrained(...)`, or `punctuation_model=` of the
FireRedASR speech-recognition pipeline.
"""
    (output_dir / "README.md").write_text(card, encoding="utf-8")


def is_converted_punc_dir(path: Path) -> bool:
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return "BertForTokenClassification" in (config.get("architectures") or [])


__all__ = ["PUNC_FILES", "check_punc_dir", "convert_punc_checkpoint", "punctuation_labels"]
