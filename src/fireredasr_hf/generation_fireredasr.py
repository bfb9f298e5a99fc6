# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""The FireRedASR-AED beam search as a generation strategy of `generate()`, with FireRedASR2's language-model fusion,
token confidences and CTC token timestamps."""

from dataclasses import dataclass

import torch
from transformers import GenerationMixin
from transformers.generation.utils import GenerateBeamEncoderDecoderOutput

from .modeling_fireredasr_encoder import (
    check_decoding_settings,
    check_input_features,
    encode_for_decoding,
    warn_if_longer_than_trained,
)
from .timestamps_fireredasr import alignment_to_token_times, ctc_forced_align, hypothesis_end

# FireRed decoding knobs, stored in `generation_config.json` and overridable per `generate()` call. The values here
# are the neutral ones (plain beam search ranking by accumulated log-probability).
FIRERED_GENERATION_DEFAULTS = {
    # Decode with the release's beam search (below) instead of transformers' beam search.
    "use_fireredasr_beam_search": False,
    # Logit temperature applied before the log-softmax of every step (1.25 in the release's recommended setting).
    "softmax_smoothing": 1.0,
    # GNMT length penalty ((5 + length) / 6) ** alpha, applied once to the final scores; the length counts the
    # start token. 0 disables it.
    "gnmt_length_penalty": 0.0,
    # Multiplies the log-probability of `<eos>` at every step; values below 1 make ending more likely.
    "eos_penalty": 1.0,
    # Shallow fusion with the model's LSTM language model (FireRedASR2's `elm_weight`): every step adds lm_weight
    # times the language model's log-probabilities (its `<eos>` column scaled by `lm_config.eos_weight`) to the AED's.
    # 0 disables it; a positive weight needs a model converted with its language model (`--lm_dir`).
    "lm_weight": 0.0,
}


@dataclass
class FireRedAedGenerateOutput(GenerateBeamEncoderDecoderOutput):
    r"""
    The output of `generate(..., return_dict_in_generate=True)` for FireRedASR-AED: transformers' beam-search
    output with, from the FireRed beam search, confidences, and with `return_token_timestamps=True`, token times.

    sequences_confidences (`torch.FloatTensor` of shape `(num_sequences,)`):
        Confidence of each returned hypothesis: the mean of its token confidences (`<eos>` excluded), as
        FireRedASR2's `confidence`; NaN for a hypothesis without tokens.
    token_confidences (`torch.FloatTensor` of shape `(num_sequences, sequence_length)`):
        Per position of `sequences`: exp of the step score that chose the token (log-probability after softmax
        smoothing, language-model fusion and EOS penalty), in [0, 1]. NaN at `<sos>` and padding.
    token_timestamps (`torch.DoubleTensor` of shape `(num_sequences, sequence_length, 2)`):
        Per position of `sequences`: start and end (seconds from the start of the input) of the token, from the
        CTC forced alignment of the hypothesis (FireRedASR2's `ctc_alignment_to_timestamp`, before the 0.06 s shift
        and the clamps that need the audio's duration, see `timestamps_fireredasr.fix_token_times`). NaN at
        `<sos>`, `<eos>`, padding and blank tokens, and for every token of a hypothesis that cannot be aligned (more
        tokens than CTC frames allow): FireRedASR2 then spreads the tokens uniformly over the audio.
    """

    sequences_confidences: torch.FloatTensor | None = None
    token_confidences: torch.FloatTensor | None = None
    token_timestamps: torch.DoubleTensor | None = None


# generate() arguments the FireRed beam search may ignore: Seq2SeqTrainer passes `synced_gpus`, and each process
# decodes its own batch to its end.
IGNORED_GENERATE_ARGUMENTS = {"synced_gpus"}


def check_generate_inputs(model, input_features, attention_mask, generation_config, firered_settings, model_kwargs):
    """Refuse what would decode silently wrong: malformed features or masks, invalid settings, arguments the FireRed
    beam search would not use (unknown ones, or transformers' own such as `logits_processor`)."""
    unused = sorted(set(model_kwargs) - IGNORED_GENERATE_ARGUMENTS)
    if firered_settings["use_fireredasr_beam_search"] and not generation_config.do_sample and unused:
        raise ValueError(
            f"generate() got argument(s) the FireRed beam search does not use: {', '.join(unused)}. Its options are "
            f"the fields of GenerationConfig and {', '.join(FIRERED_GENERATION_DEFAULTS)} (transformers' own "
            "strategies, with use_fireredasr_beam_search=False, take transformers' other generate() arguments)."
        )
    if input_features is not None:
        check_input_features(input_features, attention_mask, model.config.encoder_config.num_mel_bins)
    check_decoding_settings(
        generation_config,
        model.config.vocab_size,
        {
            "softmax_smoothing": (firered_settings["softmax_smoothing"], 0.0, None, False),
            "gnmt_length_penalty": (firered_settings["gnmt_length_penalty"], 0.0, None, True),
            "eos_penalty": (firered_settings["eos_penalty"], 0.0, 1.0, False),
            "lm_weight": (firered_settings["lm_weight"], 0.0, None, True),
        },
    )


class FireRedAedGenerationMixin(GenerationMixin):
    """
    `generate()` for FireRedASR-AED. With `use_fireredasr_beam_search=True` (the setting of converted checkpoints) it
    runs the release's `batch_beam_search`: log-softmax of smoothed logits with a scaled `<eos>` column, finished beams
    carried at zero cost, one GNMT length penalty at the end, optionally fused with the model's LSTM language model
    (`lm_weight`, FireRedASR2). Unlike the release, each utterance stops at its own encoder length rather than the
    padded batch's, so a batch gives every utterance the transcript it gets alone (exactly in float32; in half
    precision padding changes the rounding, see docs/parity.md). Otherwise transformers' own strategies run (greedy,
    beam search, sampling).

    With `return_dict_in_generate=True` the FireRed beam search also returns token and hypothesis confidences, and
    with `return_token_timestamps=True` (models with a CTC head) every strategy returns token times; see
    [`FireRedAedGenerateOutput`].
    """

    @torch.no_grad()
    def generate(self, input_features=None, attention_mask=None, generation_config=None, **kwargs):
        firered_settings = {name: kwargs.pop(name) for name in FIRERED_GENERATION_DEFAULTS if name in kwargs}
        return_token_timestamps = kwargs.pop("return_token_timestamps", None)
        max_new_tokens_given = "max_new_tokens" in kwargs or "max_length" in kwargs
        generation_config, model_kwargs = self._prepare_generation_config(generation_config, **kwargs)
        for name, default in FIRERED_GENERATION_DEFAULTS.items():
            firered_settings.setdefault(name, getattr(generation_config, name, default))
        model_kwargs.pop("labels", None)  # passed by Seq2SeqTrainer; decoding does not use them
        if return_token_timestamps is None:
            return_token_timestamps = bool(getattr(generation_config, "return_token_timestamps", False))
        if return_token_timestamps:
            if getattr(self, "ctc_head", None) is None:
                raise ValueError(
                    "return_token_timestamps=True needs a model with a CTC head (config.use_ctc_head), such as "
                    "FireRedASR2-AED; this model has none."
                )
            # Times come with the sequences, in the output object.
            generation_config.return_dict_in_generate = True
        use_firered_search = firered_settings["use_fireredasr_beam_search"] and not generation_config.do_sample
        if firered_settings["lm_weight"] and not use_firered_search:
            raise ValueError("lm_weight (language-model fusion) works with the FireRed beam search only.")

        encoder_outputs = model_kwargs.pop("encoder_outputs", None)
        check_generate_inputs(self, input_features, attention_mask, generation_config, firered_settings, model_kwargs)

        if encoder_outputs is None:
            if input_features is None:
                raise ValueError("generate() needs `input_features` (or precomputed `encoder_outputs`).")
            warn_if_longer_than_trained(input_features, attention_mask, self.config.max_audio_seconds)
            input_features = input_features.to(self.dtype)
            if generation_config.output_hidden_states or generation_config.output_attentions:
                encoder_outputs = self.get_encoder()(input_features, attention_mask=attention_mask)
            else:
                encoder_outputs = encode_for_decoding(self.get_encoder(), input_features, attention_mask)
        encoder_lengths = encoder_outputs.attention_mask.sum(-1)
        max_new_tokens = self._max_new_tokens(generation_config, max_new_tokens_given)

        if use_firered_search:
            outputs = self._fireredasr_beam_search(
                encoder_outputs, encoder_lengths, generation_config, firered_settings, max_new_tokens
            )
        else:
            # transformers' strategies: by default stop at the longest encoder length, as the release does.
            generation_config.max_new_tokens = int(min(max_new_tokens, encoder_lengths.max().item()))
            generation_config.max_length = None
            outputs = super().generate(
                attention_mask=attention_mask,
                encoder_outputs=encoder_outputs,
                generation_config=generation_config,
                **model_kwargs,
            )
        if return_token_timestamps:
            outputs = self._add_token_timestamps(outputs, encoder_outputs, generation_config)
        return outputs

    def _max_new_tokens(self, generation_config, given: bool) -> int:
        """The decoder's position capacity, or a smaller user limit."""
        limit = self.config.max_position_embeddings - 1
        if generation_config.max_new_tokens is not None:
            limit = min(limit, generation_config.max_new_tokens)
        if given and generation_config.max_length is not None and generation_config.max_new_tokens is None:
            limit = min(limit, generation_config.max_length - 1)
        return limit

    def _fireredasr_beam_search(self, encoder_outputs, encoder_lengths, generation_config, settings, max_new_tokens):
        num_beams = generation_config.num_beams or 1
        num_return_sequences = generation_config.num_return_sequences or 1
        if num_return_sequences > num_beams:
            raise ValueError(
                f"num_return_sequences ({num_return_sequences}) cannot exceed num_beams ({num_beams}) in the FireRed "
                "beam search."
            )
        lm_weight = settings["lm_weight"]
        if lm_weight > 0.0 and getattr(self, "lm", None) is None:
            raise ValueError(
                f"lm_weight={lm_weight} needs a language model, and this model has none: convert the original with "
                "its LSTM language model (`convert_fireredasr_to_hf.py --lm_dir LM_DIR` or `fireredasr-hf convert "
                "--lm_dir LM_DIR`)."
            )

        eos_id = generation_config.eos_token_id
        eos_id = eos_id[0] if isinstance(eos_id, (list, tuple)) else eos_id
        start_id = generation_config.decoder_start_token_id
        pad_id = generation_config.pad_token_id if generation_config.pad_token_id is not None else eos_id
        hidden_states = encoder_outputs.last_hidden_state
        device = hidden_states.device
        batch_size = hidden_states.shape[0]
        rows = batch_size * num_beams

        # One copy of the encoder states and their cross-attention keys and values per utterance, shared by its beams.
        decoder = self.get_decoder()
        encoder_attention_mask = decoder.prepare_encoder_attention_mask(hidden_states, encoder_outputs.attention_mask)
        # Each utterance decodes at most as many tokens as it has encoder frames (the release's `maxlen = Ti`).
        max_steps = torch.clamp(encoder_lengths.to(device), max=max_new_tokens)

        # Only the first beam of each utterance is live at the start; the others carry -1e10 (as the release).
        scores = torch.full((batch_size, num_beams), -1e10, device=device)
        scores[:, 0] = 0.0
        scores = scores.view(rows)
        finished_beam_scores = torch.full((num_beams,), -1e10, device=device)
        finished_beam_scores[0] = 0.0
        tokens = torch.full((rows, 1), start_id, dtype=torch.long, device=device)
        lengths = torch.ones(rows, dtype=torch.long, device=device)  # non-<eos> tokens including the start token
        finished = torch.zeros(rows, dtype=torch.bool, device=device)
        utterance_offsets = torch.arange(batch_size, device=device).unsqueeze(1) * num_beams
        identity = torch.arange(rows, device=device).view(batch_size, num_beams)
        # Per position of `tokens`: exp of the step score that chose the token (0 for the start token).
        confidences = torch.zeros(rows, 1, device=device)
        beam_history = []
        step_scores = [] if generation_config.output_scores else None
        step_logits = [] if generation_config.output_logits else None
        cache = None
        lm_state = None
        # The decoder runs on the rows of the utterances still decoding: one that is done (all its beams ended, or
        # its step limit reached) leaves the decoder's batch, so that shorter utterances cost nothing while the
        # longest one decodes on. `live`: those utterances, in order; the decoder state holds their rows only.
        live = torch.arange(batch_size, device=device)
        beam_offsets = torch.arange(num_beams, device=device)
        live_rows = identity.view(rows)
        live_hidden_states, live_encoder_mask = hidden_states, encoder_attention_mask

        for step in range(int(max_steps.max().item())):
            active = (step < max_steps) & ~finished.view(batch_size, num_beams).all(-1)
            if not active.any():
                break
            if not active[live].all():
                positions = active[live].nonzero()[:, 0]
                live = live[positions]
                live_rows = (live.unsqueeze(1) * num_beams + beam_offsets).view(-1)
                live_hidden_states = hidden_states[live]
                if encoder_attention_mask is not None:
                    live_encoder_mask = encoder_attention_mask[live]
                position_rows = (positions.unsqueeze(1) * num_beams + beam_offsets).view(-1)
                if cache is not None:
                    cache.self_attention_cache.batch_select_indices(position_rows)
                    cache.cross_attention_cache.batch_select_indices(positions)
                if lm_state is not None:
                    lm_state = (lm_state[0][:, position_rows], lm_state[1][:, position_rows])
            decoder_outputs = decoder(
                input_ids=tokens[live_rows, -1:],
                encoder_hidden_states=live_hidden_states,
                encoder_attention_mask=live_encoder_mask,
                cache=cache,
                use_cache=True,
            )
            cache = decoder_outputs.cache
            logits = self.get_output_embeddings()(decoder_outputs.last_hidden_state[:, -1]).float()
            log_probs = torch.log_softmax(logits / settings["softmax_smoothing"], dim=-1)
            if lm_weight > 0.0:
                lm_outputs = self.lm(input_ids=tokens[live_rows, -1:], state=lm_state)
                lm_state = lm_outputs.state
                # Finished beams get no language-model score (the release multiplies by 1 - finished).
                lm_log_probs = lm_outputs.logits[:, -1].float().log_softmax(-1)
                lm_log_probs = lm_log_probs.masked_fill(finished[live_rows, None], 0.0)
                lm_log_probs[:, eos_id] *= self.lm.config.eos_weight
                log_probs = log_probs + lm_weight * lm_log_probs
            if settings["eos_penalty"] != 1.0:
                log_probs[:, eos_id] *= settings["eos_penalty"]
            if step_logits is not None:
                step_logits.append(self._all_rows(logits, live_rows, rows))
            if step_scores is not None:
                step_scores.append(self._all_rows(log_probs, live_rows, rows))

            live_top_scores, live_top_tokens = torch.topk(log_probs, k=num_beams, dim=1)
            # Rows of utterances that are done get placeholders, which `keep` below discards.
            top_scores = torch.zeros(rows, num_beams, device=device)
            top_tokens = torch.full((rows, num_beams), eos_id, dtype=torch.long, device=device)
            top_scores[live_rows], top_tokens[live_rows] = live_top_scores, live_top_tokens
            # A finished beam continues with <eos> at no cost; its other candidates are out of the race.
            top_scores = torch.where(finished.unsqueeze(1), finished_beam_scores, top_scores)
            top_tokens = top_tokens.masked_fill(finished.unsqueeze(1), eos_id)
            candidate_scores = (scores.unsqueeze(1) + top_scores).view(batch_size, num_beams * num_beams)
            new_scores, candidates = torch.topk(candidate_scores, k=num_beams, dim=1)
            source_rows = candidates // num_beams + utterance_offsets
            new_tokens = torch.gather(top_tokens.view(batch_size, num_beams * num_beams), 1, candidates)
            new_confidences = torch.gather(top_scores.view(batch_size, num_beams * num_beams), 1, candidates).exp()

            # Utterances past their own limit (or all finished) stay as they are.
            keep = ~active.unsqueeze(1)
            scores = torch.where(keep, scores.view(batch_size, num_beams), new_scores).view(rows)
            source_rows = torch.where(keep, identity, source_rows).view(rows)
            new_tokens = new_tokens.masked_fill(keep, eos_id).view(rows)

            tokens = torch.cat([tokens[source_rows], new_tokens.unsqueeze(1)], dim=1)
            confidences = torch.cat([confidences[source_rows], new_confidences.view(rows, 1)], dim=1)
            lengths = lengths[source_rows] + (new_tokens != eos_id).long() * active.repeat_interleave(num_beams)
            finished = finished[source_rows] | ((new_tokens == eos_id) & active.repeat_interleave(num_beams))
            # The decoder state's rows: the live utterances' beams, reordered within each utterance.
            live_sources = source_rows[live_rows] - (live_rows - torch.arange(live_rows.shape[0], device=device))
            cache.self_attention_cache.reorder_cache(live_sources)
            if lm_state is not None:
                lm_state = (lm_state[0][:, live_sources], lm_state[1][:, live_sources])
            beam_history.append(source_rows)

        final_scores = scores.view(batch_size, num_beams)
        if settings["gnmt_length_penalty"] > 0.0:
            penalty = torch.pow((5 + lengths.float()) / 6.0, settings["gnmt_length_penalty"])
            final_scores = final_scores / penalty.view(batch_size, num_beams)
        best_scores, best_beams = torch.topk(final_scores, k=num_return_sequences, dim=1)
        best_rows = (best_beams + utterance_offsets).view(-1)

        sequences = self._assemble_sequences(tokens[best_rows], lengths[best_rows], finished[best_rows], eos_id, pad_id)
        if not generation_config.return_dict_in_generate:
            return sequences
        token_confidences, sequences_confidences = self._hypothesis_confidences(
            confidences[best_rows], lengths[best_rows], finished[best_rows], sequences.shape[1]
        )
        return FireRedAedGenerateOutput(
            sequences=sequences,
            sequences_scores=best_scores.view(-1),
            sequences_confidences=sequences_confidences,
            token_confidences=token_confidences,
            scores=tuple(step_scores) if step_scores is not None else None,
            logits=tuple(step_logits) if step_logits is not None else None,
            beam_indices=self._trace_beams(beam_history, best_rows, sequences.shape[1]),
            encoder_attentions=encoder_outputs.attentions,
            encoder_hidden_states=encoder_outputs.hidden_states,
            cache=cache,
        )

    @staticmethod
    def _all_rows(values: torch.Tensor, live_rows: torch.Tensor, rows: int) -> torch.Tensor:
        """Per-step values of the live rows as a tensor over all rows: NaN for rows of utterances that are done."""
        if values.shape[0] == rows:
            return values
        full = values.new_full((rows, *values.shape[1:]), float("nan"))
        full[live_rows] = values
        return full

    @staticmethod
    def _hypothesis_confidences(confidences, lengths, finished, width):
        """Token confidences aligned with the returned sequences (NaN at the start token and padding) and each
        hypothesis' mean over its tokens without `<eos>` (FireRedASR2's utterance confidence)."""
        token_confidences = torch.full((confidences.shape[0], width), float("nan"), device=confidences.device)
        sequences_confidences = torch.empty(confidences.shape[0], device=confidences.device)
        for row, (length, ended) in enumerate(zip(lengths.tolist(), finished.tolist())):
            end = length + int(ended)  # the tokens and <eos>
            token_confidences[row, 1:end] = confidences[row, 1:end]
            # Mean of the tokens between <sos> and <eos>, computed as the release does (NaN when there are none).
            sequences_confidences[row] = confidences[row, 1:length].mean()
        return token_confidences, sequences_confidences

    def _add_token_timestamps(self, outputs, encoder_outputs, generation_config):
        """`outputs` as a [`FireRedAedGenerateOutput`] with `token_timestamps` from the CTC forced alignment of each
        returned hypothesis (FireRedASR2's `get_token_timestamp_torchaudio`)."""
        sequences = outputs.sequences
        num_sequences = sequences.shape[0]
        batch_size = encoder_outputs.last_hidden_state.shape[0]
        utterance = torch.arange(num_sequences, device=sequences.device) // (num_sequences // batch_size)
        eos_id = generation_config.eos_token_id
        eos_id = eos_id[0] if isinstance(eos_id, (list, tuple)) else eos_id
        blank_id = self.config.ctc_blank_id

        log_probs = self.get_ctc_log_probs(encoder_outputs.last_hidden_state)[utterance]
        frames = encoder_outputs.attention_mask.sum(-1)[utterance]
        # The hypothesis tokens, without blanks (FireRedASR2 aligns `yseq[yseq != 0]`).
        aligned = torch.zeros_like(sequences, dtype=torch.bool)
        for row, ids in enumerate(sequences.tolist()):
            aligned[row, 1 : hypothesis_end(ids, eos_id, generation_config.pad_token_id)] = True
        aligned &= sequences != blank_id
        num_labels = aligned.sum(-1)
        repeats = torch.zeros_like(num_labels)
        targets = torch.full((num_sequences, max(int(num_labels.max()), 1)), blank_id, device=sequences.device)
        for row in range(num_sequences):
            labels = sequences[row][aligned[row]]
            targets[row, : labels.numel()] = labels
            repeats[row] = (labels[1:] == labels[:-1]).sum()
        # FireRedASR2 gives no alignment to an empty hypothesis or one that does not fit the frames.
        alignable = (num_labels > 0) & (num_labels + repeats <= frames.to(num_labels.device))

        timestamps = torch.full((num_sequences, sequences.shape[1], 2), float("nan"), dtype=torch.float64)
        if alignable.any():
            rows = alignable.nonzero()[:, 0]
            alignments = ctc_forced_align(
                log_probs[rows], targets[rows], frames[rows], num_labels[rows], blank=blank_id
            ).tolist()
            subsampling = self.config.encoder_config.subsampling_factor
            for row, alignment, num_frames in zip(rows.tolist(), alignments, frames[rows].tolist()):
                starts, ends = alignment_to_token_times(alignment[:num_frames], subsampling, blank_id)
                token_positions = aligned[row].nonzero()[:, 0].cpu()
                if len(starts) == len(token_positions):
                    timestamps[row, token_positions] = torch.tensor(list(zip(starts, ends)), dtype=torch.float64)
        timestamps = timestamps.to(sequences.device)
        if isinstance(outputs, FireRedAedGenerateOutput):
            outputs.token_timestamps = timestamps
            return outputs
        return FireRedAedGenerateOutput(**dict(outputs), token_timestamps=timestamps)

    @staticmethod
    def _assemble_sequences(tokens, lengths, finished, eos_id, pad_id):
        """`<sos>`, the hypothesis tokens, `<eos>` when the hypothesis ended, then padding."""
        width = int((lengths + finished.long()).max().item())
        sequences = torch.full((tokens.shape[0], width), pad_id, dtype=torch.long, device=tokens.device)
        for row, (length, ended) in enumerate(zip(lengths.tolist(), finished.tolist())):
            sequences[row, :length] = tokens[row, :length]
            if ended:
                sequences[row, length] = eos_id
        return sequences

    @staticmethod
    def _trace_beams(beam_history, best_rows, width):
        """For every returned sequence, the beam row it occupied after each decoding step (-1 past the end)."""
        beam_indices = torch.full((best_rows.shape[0], width), -1, dtype=torch.long, device=best_rows.device)
        rows = best_rows
        for step in range(min(len(beam_history), width) - 1, -1, -1):
            beam_indices[:, step] = rows
            rows = beam_history[step][rows]
        return beam_indices


__all__ = ["FIRERED_GENERATION_DEFAULTS", "FireRedAedGenerateOutput", "FireRedAedGenerationMixin"]
