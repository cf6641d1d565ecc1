"""Sampling noise drawn per text piece: time-major and prefix-stable, and fed into a Piper
voice's graph from outside in place of its random ops (with their mean and scale)."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper

from saladpipe.tts.noise import time_major_noise
from saladpipe.tts.piper import resolve_piper_voice
from saladpipe.tts.piper_noise import RANDOM_OPS, GraphNoise, feed_noise, graph_noise, voice_noise


def test_noise_is_drawn_time_major_so_its_first_columns_do_not_depend_on_its_length() -> None:
    long = time_major_noise((3, 1, 0), 192, 500)
    assert long.shape == (192, 500) and long.dtype == np.float32
    for steps in (1, 17, 230, 499):
        np.testing.assert_array_equal(time_major_noise((3, 1, 0), 192, steps), long[:, :steps])
    assert not np.array_equal(time_major_noise((3, 1, 1), 192, 500), long)
    assert abs(float(long.mean())) < 0.01 and abs(float(long.std()) - 1.0) < 0.01


def test_the_rewritten_joe_graph_draws_no_random_number_itself() -> None:
    joe = resolve_piper_voice("builtin:joe-us")
    noise = voice_noise(joe)
    assert [(n.name, n.channels) for n in noise.fed] == [("noise_0", 2), ("noise_1", 192)]
    assert noise.deterministic
    model = onnx.load(str(joe))
    weights = len(model.graph.initializer)
    feed_noise(model, noise)
    onnx.checker.check_model(model)
    assert not {node.op_type for node in model.graph.node} & RANDOM_OPS
    assert graph_noise(model) == GraphNoise(fed=(), kept=())
    assert [i.name for i in model.graph.input][-2:] == ["noise_0", "noise_1"]
    assert len(model.graph.initializer) == weights + 2 * 2  # slice starts and axes only


def _tiny_graph(op: str, rank: int = 3, **attributes: Any) -> Any:
    """x [1, 3, T] (or rank 2) through one random op to y."""
    shape: list[int | str] = [1, 3, "T"] if rank == 3 else [3, "T"]
    node = helper.make_node(op, ["x"], ["y"], name="random", **attributes)
    graph = helper.make_graph(
        [node],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)],
    )
    return helper.make_model(graph, ir_version=8, opset_imports=[helper.make_opsetid("", 15)])


def test_a_fed_node_keeps_its_mean_and_scale() -> None:
    model = _tiny_graph("RandomNormalLike", mean=2.0, scale=3.0)
    noise = graph_noise(model)
    assert noise.deterministic and [n.channels for n in noise.fed] == [3]
    feed_noise(model, noise)
    session = onnxruntime.InferenceSession(model.SerializeToString())
    fed = time_major_noise((1,), 3, 10)[None]
    [y] = session.run(None, {"x": np.zeros((1, 3, 4), np.float32), "noise_0": fed})
    np.testing.assert_allclose(y, 2.0 + 3.0 * fed[:, :, :4], rtol=1e-6)


@pytest.mark.parametrize(("op", "rank"), [("RandomUniformLike", 3), ("RandomNormalLike", 2)])
def test_random_ops_that_cannot_be_fed_stay_and_say_so(op: str, rank: int) -> None:
    noise = graph_noise(_tiny_graph(op, rank))
    assert noise.fed == () and noise.kept == (f"{op} random",) and not noise.deterministic
