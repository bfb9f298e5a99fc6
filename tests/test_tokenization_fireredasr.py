"""FireRedAsrTokenizer: exact parity with the original ChineseCharEnglishSpmTokenizer (goldens and live), special
tokens, decoding options that would break parity, saving and loading."""

import json
import pickle
import random
import shutil

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer

from fireredasr_hf.tokenization_fireredasr import FireRedAsrTokenizer

SPECIAL_IDS = {"<blank>": 0, "<unk>": 1, "<pad>": 2, "<sos>": 3, "<eos>": 4}


@pytest.fixture(scope="module")
def model_dir(fixtures_dir):
    return fixtures_dir / "aed-tiny"


@pytest.fixture(scope="module")
def tokenizer(model_dir):
    return FireRedAsrTokenizer(vocab_file=str(model_dir / "dict.txt"), spm_file=str(model_dir / "train_bpe1000.model"))


@pytest.fixture(scope="module")
def golden(fixtures_dir):
    return json.loads((fixtures_dir / "golden" / "tokenizer" / "aed-tiny.json").read_text(encoding="utf-8"))


def original_tokenizer(dict_path, spm_path):
    aed_tokenizer = pytest.importorskip("fireredasr.tokenizer.aed_tokenizer")
    return aed_tokenizer.ChineseCharEnglishSpmTokenizer(str(dict_path), str(spm_path))


@pytest.mark.parametrize("replace_punctuation", [True, False])
def test_tokenize_matches_golden(model_dir, golden, replace_punctuation):
    tokenizer = FireRedAsrTokenizer(
        str(model_dir / "dict.txt"), str(model_dir / "train_bpe1000.model"), replace_punctuation=replace_punctuation
    )
    suffix = "" if replace_punctuation else "_no_punc_replace"
    cases = golden["tokenize"]
    mismatches = []
    for case in cases:
        tokens = tokenizer.tokenize(case["text"])
        ids = tokenizer.encode(case["text"], add_special_tokens=False)
        if tokens != case["tokens" + suffix] or ids != case["ids" + suffix]:
            mismatches.append((case["text"], tokens, ids))
    assert len(cases) == 59
    assert mismatches == [], f"{len(cases) - len(mismatches)}/{len(cases)} agree"


def test_decode_matches_golden(tokenizer, golden):
    cases = golden["detokenize"]
    assert len(cases) == 22
    for case in cases:
        if "error" in case:
            with pytest.raises(ValueError, match=r"Token id 142 is out of range.*0 to 141"):
                tokenizer.decode(case["ids"])
        else:
            assert tokenizer.decode(case["ids"]) == case["text"], case["ids"]


def test_convert_tokens_to_string_matches_golden(tokenizer, golden):
    for case in golden["detokenize_tokens"]:
        assert tokenizer.convert_tokens_to_string(case["tokens"]) == case["text"]


def test_negative_id_is_rejected(tokenizer):
    # The original indexes a Python list, so -1 would silently give the last token.
    with pytest.raises(ValueError, match="Token id -1 is out of range"):
        tokenizer.decode([5, -1])


def test_special_tokens(tokenizer):
    assert tokenizer.vocab_size == len(tokenizer) == 142
    assert {token: tokenizer.convert_tokens_to_ids(token) for token in SPECIAL_IDS} == SPECIAL_IDS
    assert (tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token, tokenizer.unk_token) == (
        "<sos>",
        "<eos>",
        "<pad>",
        "<unk>",
    )
    assert (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id, tokenizer.unk_token_id) == (
        3,
        4,
        2,
        1,
    )
    assert tokenizer.blank_token == "<blank>" and tokenizer.blank_token_id == 0
    assert sorted(tokenizer.all_special_ids) == [0, 1, 2, 3, 4]
    vocab = tokenizer.get_vocab()
    assert len(vocab) == 142 and vocab["今"] == 5 and vocab["▁"] == 115 and vocab["Z"] == 141


def test_encoding_for_training_ends_with_eos(tokenizer):
    ids = [5, 6, 6, 7, 8, 9]
    assert tokenizer("今天天气很好")["input_ids"] == ids + [4]
    assert tokenizer.build_inputs_with_special_tokens(ids) == ids + [4]
    assert tokenizer.get_special_tokens_mask(ids) == [0] * 6 + [1]
    assert tokenizer.num_special_tokens_to_add() == 1

    batch = tokenizer(["今天", "TURN ON"], padding=True, return_tensors="pt")
    assert batch["input_ids"].tolist() == [[5, 6, 4, 2, 2, 2], [63, 125, 81, 115, 67, 4]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0, 0, 0], [1] * 6]


def test_special_token_strings_in_text_are_plain_text(tokenizer):
    # A transcript containing "<sos>" is characters, as in the original (the default added-token split would
    # turn it into the special token).
    assert tokenizer.tokenize("a<eos>") == ["▁A", "<", "E", "O", "S", ">"]
    assert tokenizer.encode("<sos>今天", add_special_tokens=False) == [115, 1, 122, 116, 122, 1, 5, 6]


def test_decode_generated_sequences(tokenizer):
    text = "我们开会吧 LET US START THE MEETING"
    ids = tokenizer.encode(text, add_special_tokens=False)
    generated = [3] + ids + [4, 2, 2]
    assert tokenizer.decode(generated, skip_special_tokens=True) == text
    assert tokenizer.decode(generated) == f"<sos>{text}<eos><pad><pad>"
    assert tokenizer.decode([0, 5, 1, 6], skip_special_tokens=True) == "今天"
    assert tokenizer.decode(torch.tensor(generated), skip_special_tokens=True) == text
    assert tokenizer.decode(np.array(generated), skip_special_tokens=True) == text
    assert tokenizer.decode(5) == "今"
    assert tokenizer.decode([]) == ""
    batch = torch.tensor([[3, 5, 6, 4, 2], [3, 63, 64, 68, 4]])
    assert tokenizer.batch_decode(batch, skip_special_tokens=True) == ["今天", "T S L"]
    assert tokenizer.batch_decode(batch) == ["<sos>今天<eos><pad>", "<sos> T S L<eos>"]


def test_decode_has_no_extra_spacing_or_cleanup(tmp_path, model_dir):
    # Pieces that transformers' clean_up_tokenization would glue (" ." -> ".", " 's" -> "'s") and a special token
    # between pieces (no space may be inserted around it).
    dict_path = tmp_path / "dict.txt"
    dict_path.write_text((model_dir / "dict.txt").read_text(encoding="utf-8") + ". 142\n'S 143\n", encoding="utf-8")
    tokenizer = FireRedAsrTokenizer(str(dict_path), str(model_dir / "train_bpe1000.model"))
    original = original_tokenizer(dict_path, model_dir / "train_bpe1000.model")
    for ids in ([63, 115, 142], [63, 115, 143], [63, 4, 64, 1, 5], [5, 0, 6]):
        assert tokenizer.decode(ids) == original.detokenize(ids)
    assert tokenizer.decode([63, 115, 142]) == "T ."
    assert tokenizer.decode([63, 4, 64]) == "T<eos> S"


def test_live_parity_with_original(model_dir):
    dict_path, spm_path = model_dir / "dict.txt", model_dir / "train_bpe1000.model"
    original = original_tokenizer(dict_path, spm_path)
    tokenizers = {
        flag: FireRedAsrTokenizer(str(dict_path), str(spm_path), replace_punctuation=flag) for flag in (True, False)
    }
    alphabet = list("今天气很好我们开会吧北京龘鿿㐀䶿一") + list("abcXYZ eh'-0129") + list("，。？！,.?!、；")
    alphabet += ["\u3000", "\t", "\n", "😀", "Ａ", "é", "ß", "▁", "<sos>", "<unk>", "  "]
    rng = random.Random(0)
    texts = ["".join(rng.choices(alphabet, k=rng.randint(0, 20))) for _ in range(400)]
    for text in texts:
        for flag, tokenizer in tokenizers.items():
            tokens, ids = original.tokenize(text, replace_punc=flag)
            assert tokenizer.tokenize(text) == tokens, text
            assert tokenizer.encode(text, add_special_tokens=False) == ids, text
    for _ in range(200):
        ids = [rng.randrange(142) for _ in range(rng.randint(0, 30))]
        assert tokenizers[True].decode(ids) == original.detokenize(ids), ids


def test_dict_file_reading_matches_original(tmp_path, model_dir):
    token_dict = pytest.importorskip("fireredasr.data.token_dict")
    lines = (model_dir / "dict.txt").read_text(encoding="utf-8").splitlines()
    # a `<space>` entry and a line with the token only (its id is the line number)
    lines += ["<space> 142", "Ü"]
    dict_path = tmp_path / "dict.txt"
    dict_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tokenizer = FireRedAsrTokenizer(str(dict_path), str(model_dir / "train_bpe1000.model"))
    assert tokenizer.get_vocab() == token_dict.TokenDict(str(dict_path), unk="<unk>").word2id
    assert tokenizer.convert_ids_to_tokens([142, 143]) == [" ", "Ü"]

    tokenizer.save_pretrained(tmp_path / "saved")
    saved_lines = (tmp_path / "saved" / "dict.txt").read_text(encoding="utf-8").splitlines()
    assert saved_lines[-2:] == ["<space> 142", "Ü 143"]
    assert FireRedAsrTokenizer.from_pretrained(tmp_path / "saved").get_vocab() == tokenizer.get_vocab()


@pytest.mark.parametrize(
    ("extra_line", "message"),
    [("X 7", r"line 143: token 'X' has id '7', expected 142"), ("今 142", r"line 143: token '今' appears twice")],
)
def test_bad_dict_file(tmp_path, model_dir, extra_line, message):
    dict_path = tmp_path / "dict.txt"
    dict_path.write_text((model_dir / "dict.txt").read_text(encoding="utf-8") + extra_line + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        FireRedAsrTokenizer(str(dict_path), str(model_dir / "train_bpe1000.model"))


def test_special_token_missing_from_dict(model_dir):
    with pytest.raises(ValueError, match=r"eos_token '</s>' is not in the vocabulary file"):
        FireRedAsrTokenizer(str(model_dir / "dict.txt"), str(model_dir / "train_bpe1000.model"), eos_token="</s>")


def test_save_and_load(tmp_path, tokenizer, model_dir):
    files = tokenizer.save_pretrained(tmp_path)
    assert (tmp_path / "dict.txt").read_bytes() == (model_dir / "dict.txt").read_bytes()
    assert (tmp_path / "train_bpe1000.model").read_bytes() == (model_dir / "train_bpe1000.model").read_bytes()
    assert str(tmp_path / "tokenizer_config.json") in files
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "FireRedAsrTokenizer"
    assert config["split_special_tokens"] is True and config["clean_up_tokenization_spaces"] is False
    assert config["blank_token"] == "<blank>" and config["replace_punctuation"] is True

    text = "我们开会吧, let's start <sos>!"
    for loaded in (FireRedAsrTokenizer.from_pretrained(tmp_path), pickle.loads(pickle.dumps(tokenizer))):
        assert loaded.tokenize(text) == tokenizer.tokenize(text)
        assert loaded(text)["input_ids"] == tokenizer(text)["input_ids"]
        assert loaded.decode([3, 5, 63, 4], skip_special_tokens=True) == "今 T"
        assert loaded.get_vocab() == tokenizer.get_vocab()
        assert sorted(loaded.all_special_ids) == [0, 1, 2, 3, 4] and loaded.blank_token_id == 0

    no_punctuation = FireRedAsrTokenizer(
        str(model_dir / "dict.txt"), str(model_dir / "train_bpe1000.model"), replace_punctuation=False
    )
    no_punctuation.save_pretrained(tmp_path / "no_punctuation")
    assert FireRedAsrTokenizer.from_pretrained(tmp_path / "no_punctuation").tokenize("a.b") == ["▁A", ".", "B"]


def test_save_vocabulary_with_prefix(tmp_path, tokenizer, model_dir):
    vocab_path, spm_path = tokenizer.save_vocabulary(str(tmp_path), filename_prefix="fr")
    assert vocab_path.endswith("fr-dict.txt") and spm_path.endswith("fr-train_bpe1000.model")
    assert (tmp_path / "fr-dict.txt").read_bytes() == (model_dir / "dict.txt").read_bytes()
    with pytest.raises(ValueError, match="should be a directory"):
        tokenizer.save_vocabulary(str(tmp_path / "fr-dict.txt"))


def test_saving_after_the_spm_file_is_gone(tmp_path, model_dir):
    source = tmp_path / "source"
    shutil.copytree(model_dir, source, ignore=shutil.ignore_patterns("*.tar", "*.ark"))
    tokenizer = FireRedAsrTokenizer(str(source / "dict.txt"), str(source / "train_bpe1000.model"))
    (source / "train_bpe1000.model").unlink()
    tokenizer.save_pretrained(tmp_path / "saved")
    assert FireRedAsrTokenizer.from_pretrained(tmp_path / "saved").tokenize("hello") == ["▁", "HE", "L", "L", "O"]


def test_loads_from_an_original_model_folder(model_dir, tokenizer):
    # An original FireRedASR-AED folder has dict.txt and train_bpe1000.model but no tokenizer_config.json.
    loaded = FireRedAsrTokenizer.from_pretrained(model_dir)
    assert loaded.get_vocab() == tokenizer.get_vocab()
    assert loaded.tokenize("今天 hello!") == ["今", "天", "▁", "HE", "L", "L", "O"]


def test_auto_tokenizer(tmp_path, tokenizer):
    import fireredasr_hf  # noqa: F401  (registers the FireRedASR classes with the Auto classes)

    tokenizer.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert type(loaded) is FireRedAsrTokenizer
    assert loaded("今天 hello")["input_ids"] == tokenizer("今天 hello")["input_ids"]
