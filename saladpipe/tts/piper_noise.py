"""Piper's sampling noise fed from outside its ONNX graph, so a clip follows its seed.

A Piper (VITS) voice draws its noise inside the graph with `RandomNormalLike` nodes:
one for the stochastic duration predictor ([1, 2, phoneme ids]) and one for the prior
([1, 192, frames] for joe). onnxruntime seeds them per session, so a clip depends on
every call the session served before. Here each such node becomes a slice of a new
float input `noise_<i>` ([1, channels, steps]), cut to the shape of the node's input
(`Shape` + `Slice`), then scaled and shifted by the node's own `scale` and `mean`. The
rest of the graph, weights included, is untouched.

How many frames the prior needs is known only inside the run, so the caller feeds a
guess; a `Reshape` to the node's shape named `noise_<i>/fit` fails the run when the
guess was short, and the caller retries with more noise (`NoiseFeeder`). As the noise
is drawn time-major (`time_major_noise`), more noise leaves the clip as it was.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from saladpipe.tts.noise import time_major_noise

# Every op that draws random numbers in the default ONNX domain.
RANDOM_OPS = frozenset(
    {
        "RandomNormal",
        "RandomNormalLike",
        "RandomUniform",
        "RandomUniformLike",
        "Multinomial",
        "Bernoulli",
    }
)
# Noise steps fed per phoneme id at first: the duration noise needs 1, the prior one per
# frame, 2 to 3 per id for Piper's voices; drawing the surplus costs a small fraction of
# a call (docs/benchmarks.md), far less than a retried call would.
FRAMES_PER_ID = 8
# A retry doubles the failing input's frames per id, up to this (12 s of speech per id
# at joe's hop): a graph that still fails has another problem.
MAX_FRAMES_PER_ID = 1024


@dataclass(frozen=True)
class NoiseInput:
    """A `RandomNormalLike` node fed from graph input `name`: float [1, channels, steps]."""

    node: str
    name: str
    channels: int

    @property
    def fit(self) -> str:
        """The node that fails the run when the fed noise is shorter than the node's input."""
        return f"{self.name}/fit"


@dataclass(frozen=True)
class GraphNoise:
    """The random ops of a graph: those fed from outside, and those that stay random."""

    fed: tuple[NoiseInput, ...]
    kept: tuple[str, ...]  # "op_type node_name" of each op that stays random

    @property
    def deterministic(self) -> bool:
        return not self.kept


def graph_noise(model: Any) -> GraphNoise:
    """Which random ops of `model` (an onnx.ModelProto) can be fed from outside.

    A top-level `RandomNormalLike` can, when its input is known to be a float tensor of
    rank 3 with a fixed second dimension (the channels of the noise to draw); every other
    random op stays as it is and makes the voice's clips differ from run to run.
    """
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    shapes = {
        v.name: v.type.tensor_type
        for v in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]
    }
    fed: list[NoiseInput] = []
    kept: list[str] = []
    for node, top_level in _all_nodes(model):
        if node.op_type not in RANDOM_OPS or node.domain not in ("", "ai.onnx"):
            continue
        channels = _channels(node, shapes) if top_level else None
        if channels is None:
            kept.append(f"{node.op_type} {node.name}")
        else:
            fed.append(NoiseInput(node.name, f"noise_{len(fed)}", channels))
    return GraphNoise(tuple(fed), tuple(kept))


@functools.cache
def voice_noise(model_path: Path) -> GraphNoise:
    """`graph_noise` of a voice file, read once per process (describe asks for every run).

    Its weights are dropped first: shapes do not depend on them, and shape inference with
    data propagation over the weights takes many times longer.
    """
    import onnx

    model = onnx.load(str(model_path))
    for tensor in model.graph.initializer:
        if tensor.data_type != onnx.TensorProto.INT64 and len(tensor.raw_data) > 4096:
            tensor.ClearField("raw_data")
    return graph_noise(model)


def _all_nodes(model: Any) -> Iterator[tuple[Any, bool]]:
    """Every node of the model (the graph's, its subgraphs' and its local functions'), and
    whether it is one of the graph's own."""
    import onnx

    pending = [(n, True) for n in model.graph.node]
    pending += [(n, False) for function in model.functions for n in function.node]
    for node, top_level in pending:  # grows while it is read: subgraphs come last
        yield node, top_level
        for attribute in node.attribute:
            graphs = [attribute.g] if attribute.type == onnx.AttributeProto.GRAPH else []
            if attribute.type == onnx.AttributeProto.GRAPHS:
                graphs = list(attribute.graphs)
            pending += [(n, False) for graph in graphs for n in graph.node]


def _channels(node: Any, shapes: dict[str, Any]) -> int | None:
    """The fixed second dimension of a float rank-3 `RandomNormalLike` input, else None."""
    import onnx

    if node.op_type != "RandomNormalLike":
        return None
    attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    tensor = shapes.get(node.input[0])
    if tensor is None or not tensor.HasField("shape") or len(tensor.shape.dim) != 3:
        return None
    dtype = attributes.get("dtype", tensor.elem_type)
    channels = tensor.shape.dim[1]
    if dtype != onnx.TensorProto.FLOAT or not channels.HasField("dim_value"):
        return None
    return int(channels.dim_value)


def feed_noise(model: Any, noise: GraphNoise) -> None:
    """Replace every node in `noise.fed` of `model` (in place) by a slice of its noise input."""
    from onnx import TensorProto, helper

    by_name = {fed.node: fed for fed in noise.fed}
    nodes = []
    for node in model.graph.node:
        fed = by_name.get(node.name)
        if fed is None:
            nodes.append(node)
            continue
        model.graph.input.append(
            helper.make_tensor_value_info(
                fed.name, TensorProto.FLOAT, [1, fed.channels, f"{fed.name}_steps"]
            )
        )
        nodes.extend(_noise_nodes(model, node, fed))
    del model.graph.node[:]
    model.graph.node.extend(nodes)


def _noise_nodes(model: Any, node: Any, fed: NoiseInput) -> list[Any]:
    """Nodes that make `node`'s output from `fed`: Shape, Slice, Reshape (the `fit` check),
    then the node's own scale and mean where they are not 1 and 0."""
    from onnx import helper, numpy_helper

    x, prefix = node.input[0], fed.name
    attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    constants = {"starts": np.zeros(3, np.int64), "axes": np.arange(3, dtype=np.int64)}
    steps = [
        ("Shape", [x]),
        ("Slice", [fed.name, f"{prefix}/starts", f"{prefix}/Shape", f"{prefix}/axes"]),
        ("Reshape", [f"{prefix}/Slice", f"{prefix}/Shape"]),
    ]
    for op, attribute, neutral in (("Mul", "scale", 1.0), ("Add", "mean", 0.0)):
        value = float(attributes.get(attribute, neutral))
        if value != neutral:
            constants[attribute] = np.array(value, np.float32)
            steps.append((op, [f"{prefix}/{steps[-1][0]}", f"{prefix}/{attribute}"]))
    model.graph.initializer.extend(
        numpy_helper.from_array(array, f"{prefix}/{name}") for name, array in constants.items()
    )
    made = []
    for number, (op, inputs) in enumerate(steps):
        output = node.output[0] if number == len(steps) - 1 else f"{prefix}/{op}"
        name = fed.fit if op == "Reshape" else f"{prefix}/{op}"
        made.append(helper.make_node(op, inputs, [output], name=name))
    return made


class NoiseFeeder:
    """An onnxruntime session of a rewritten voice that feeds its noise inputs on every run.

    Piper's `PiperVoice` calls `run` once per sentence of a piece; the noise of call c
    of the piece with seed s for input i comes from a generator keyed (s, c, i): each
    input has its own stream, so one input's length never shifts another's noise. An
    input's steps are its frames per phoneme id times the phoneme ids; a run that fails
    at a `fit` node is retried with that input's frames per id doubled, which is kept
    for later calls. Not thread-safe: one piece at a time, as a worker speaks.
    """

    def __init__(self, session: Any, inputs: Sequence[NoiseInput]) -> None:
        self.session = session
        self.inputs = tuple(inputs)
        self.frames_per_id = [FRAMES_PER_ID] * len(self.inputs)
        self._seed = 0
        self._calls = 0

    def start_piece(self, seed: int) -> None:
        """Key the noise of the runs that follow by `seed` and their number within the piece."""
        self._seed, self._calls = seed, 0

    def run(self, output_names: list[str] | None, feed: dict[str, np.ndarray]) -> list[Any]:
        """onnxruntime's `run`, with the noise inputs added to `feed`."""
        ids = int(feed["input"].shape[1])
        key = (self._seed, self._calls)
        self._calls += 1
        while True:
            noise = {
                fed.name: time_major_noise((*key, i), fed.channels, ids * frames)[None]
                for i, (fed, frames) in enumerate(zip(self.inputs, self.frames_per_id, strict=True))
            }
            try:
                result: list[Any] = self.session.run(output_names, {**feed, **noise})
                return result
            except Exception as exc:  # onnxruntime's own exception types
                short = self._short_input(str(exc))
                if short is None:
                    raise
                self.frames_per_id[short] *= 2

    def _short_input(self, message: str) -> int | None:
        """The input whose noise ran short according to onnxruntime's `message`, if one did
        and may still grow."""
        for i, fed in enumerate(self.inputs):
            if f"Name:'{fed.fit}'" in message:
                return i if self.frames_per_id[i] < MAX_FRAMES_PER_ID else None
        return None
