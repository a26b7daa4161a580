"""One ONNX graph from separately converted parts: an ensemble's members side by side, then its head.

Why: tf2onnx holds dozens of copies of a graph's weights while it converts (TensorFlow's graph
imports and grappler, then each of its optimizer passes), so its peak memory grows with the whole
graph: three ResNet50s in one graph took 15.7 GB, and over 21 GB with its default error catching.
Converted one member at a time, the peak is that of one member; joining the converted graphs costs
only their size.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import onnx

INPUT = "images"


def join_members(members: list[onnx.ModelProto], head: onnx.ModelProto) -> onnx.ModelProto:
    """images -> every member -> head, as one model.

    Each member has one input (the images) and outputs [probabilities(, features)]; the head's inputs
    are every member's probabilities, then every member's features, in member order
    (`models.ood_head.ensemble_head`). Names are prefixed per part, so no two members' weights collide.
    """
    import onnx
    from onnx import compose, helper

    parts = [compose.add_prefix(member, f"member_{i}/") for i, member in enumerate(members, 1)]
    head = compose.add_prefix(head, "head/")
    outputs = [[output.name for output in part.graph.output] for part in parts]
    feeds = [names[0] for names in outputs] + [names[1] for names in outputs if len(names) > 1]
    renames = {value.name: feed for value, feed in zip(head.graph.input, feeds, strict=True)}
    for part in parts:
        (image,) = part.graph.input
        renames[image.name] = INPUT
    nodes = [node for part in (*parts, head) for node in part.graph.node]
    for node in nodes:
        node.input[:] = [renames.get(name, name) for name in node.input]
    graph = helper.make_graph(
        nodes,
        "ensemble",
        [helper.make_value_info(INPUT, members[0].graph.input[0].type)],
        list(head.graph.output),
        initializer=[tensor for part in (*parts, head) for tensor in part.graph.initializer],
    )
    opsets: dict[str, int] = {}
    for part in (*parts, head):
        for entry in part.opset_import:
            opsets[entry.domain] = max(opsets.get(entry.domain, 0), entry.version)
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid(domain, version) for domain, version in opsets.items()],
        producer_name=members[0].producer_name,
        ir_version=members[0].ir_version,
    )
    onnx.checker.check_model(model)
    return model
