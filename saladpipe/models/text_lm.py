"""A causal LM split into body (hidden states) and head (logits).

Scoring needs the logits only at the continuation's positions, and needs them a
chunk of positions at a time: with a 150k-token vocabulary one 512-token sample's
logits are 300 MB in float32. So the body runs once per batch, the hidden states of
the scored positions are gathered, and the head runs on chunks of those. `verify`
checks once that head(body(x)) is what the model's own forward pass returns, so a
model with an unknown logit transform is refused instead of scored wrong.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from transformers import PreTrainedModel

from saladpipe.data_schemas.errors import SaladpipeError

# Tokens of the short input that `verify` runs through both paths.
_VERIFY_TOKENS = 8


def right_pad(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """int64 ids [B, L] right-padded with `pad_id`, and the int64 attention mask."""
    lengths = np.array([len(s) for s in sequences], dtype=np.int64)
    width = int(lengths.max())
    ids = np.full((len(sequences), width), pad_id, dtype=np.int64)
    for i, seq in enumerate(sequences):
        ids[i, : len(seq)] = seq
    mask = (np.arange(width)[None, :] < lengths[:, None]).astype(np.int64)
    return ids, mask


def gather_index(starts: Sequence[int], counts: Sequence[int], width: int) -> np.ndarray:
    """Flat indices into [B * width] of positions starts[i] .. starts[i] + counts[i] - 1.

    Built on the host so that gathering on the device needs no synchronisation.
    """
    rows = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    offsets = np.concatenate([np.arange(c, dtype=np.int64) for c in counts])
    return rows * width + np.repeat(np.asarray(starts, dtype=np.int64), counts) + offsets


def context_length(model: PreTrainedModel) -> int | None:
    """The longest sequence the (text) model takes, if its config says."""
    config = model.config.get_text_config()
    for name in ("max_position_embeddings", "n_positions"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


class TextLM:
    """Body and head of a Hugging Face causal LM, with the model's own logit transforms.

    `body` defaults to the model's base model and `head` to its output embeddings;
    multimodal models pass their text decoder and head. Known transforms after the
    head are applied as the model does: Cohere's `logit_scale`, Granite's
    `logits_scaling` and Gemma's `final_logit_softcapping`.
    """

    def __init__(
        self, model: PreTrainedModel, body: nn.Module | None = None, head: nn.Module | None = None
    ) -> None:
        head = head if head is not None else model.get_output_embeddings()
        weight = getattr(head, "weight", None)
        if head is None or weight is None:
            raise SaladpipeError(f"{model.config.model_type}: the model has no LM head")
        body = body if body is not None else model.base_model
        if body is model:
            raise SaladpipeError(
                f"{model.config.model_type}: no base model under the LM head to take hidden "
                "states from"
            )
        self.model = model
        self.body: nn.Module = body
        self.head: nn.Module = head
        self.vocab_rows = int(weight.shape[0])
        self.context_length = context_length(model)
        config = model.config.get_text_config()
        self._scale = getattr(config, "logit_scale", None)
        self._divide = getattr(config, "logits_scaling", None)
        self._softcap = getattr(config, "final_logit_softcapping", None)

    @property
    def device(self) -> torch.device:
        return next(self.head.parameters()).device

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Logits for hidden states [N, H] -> [N, vocab_rows], in the model's dtype."""
        out: torch.Tensor = self.head(hidden)
        if isinstance(self._scale, int | float):
            out = out * self._scale
        if isinstance(self._divide, int | float):
            out = out / self._divide
        if isinstance(self._softcap, int | float):
            out = torch.tanh(out / self._softcap) * self._softcap
        return out

    def hidden(
        self,
        attention_mask: torch.Tensor,
        index: torch.Tensor,
        *,
        input_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Last hidden states at the flat positions `index` of the [B, L] batch -> [N, H]."""
        out = self.body(
            input_ids=input_ids,
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            use_cache=False,
        )
        states: torch.Tensor = out.last_hidden_state
        return states.flatten(0, 1).index_select(0, index)

    def continuation_hidden(
        self,
        prefixes: Sequence[Sequence[int]],
        continuations: Sequence[Sequence[int]],
        pad_id: int,
    ) -> torch.Tensor:
        """Hidden states predicting each continuation token after its text prefix.

        Row j of sample i (samples concatenated in order) is read at position
        len(prefix_i) - 1 + j, so it predicts continuation token j.
        """
        ids, mask = right_pad(
            [[*p, *c] for p, c in zip(prefixes, continuations, strict=True)], pad_id
        )
        index = gather_index(
            [len(p) - 1 for p in prefixes], [len(c) for c in continuations], ids.shape[1]
        )
        device = self.device
        return self.hidden(
            torch.from_numpy(mask).to(device),
            torch.from_numpy(index).to(device),
            input_ids=torch.from_numpy(ids).to(device),
        )

    @torch.inference_mode()
    def verify(self, role: str) -> None:
        """Refuse a model whose forward pass is not head(body(x)) with the known transforms."""
        ids = (torch.arange(1, _VERIFY_TOKENS + 1) % self.vocab_rows)[None].to(self.device)
        mask = torch.ones_like(ids)
        expected = self.model(input_ids=ids, attention_mask=mask, use_cache=False).logits[0]
        index = torch.arange(_VERIFY_TOKENS, device=self.device)
        ours = self.logits(self.hidden(mask, index, input_ids=ids))
        scale = 1.0 + float(expected.abs().max())
        if expected.shape != ours.shape or not torch.allclose(
            expected.float(), ours.float(), rtol=1e-2, atol=1e-2 * scale
        ):
            raise SaladpipeError(
                f"{role} model ({self.model.config.model_type}): its logits are not its LM head "
                "applied to its last hidden states, so they cannot be computed in chunks of "
                "positions; this model type is not supported for scoring"
            )
