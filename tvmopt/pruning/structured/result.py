"""What structured pruning returns: the pruned model and one row per pruned group."""

from __future__ import annotations

from dataclasses import dataclass, field

import onnx


@dataclass
class StructuredResult:
    """`model`: the pruned ONNX model. `rows`: one dict per group found, with `group` (a node
    name), `kind` ("ffn", "heads" or "channels"), `before` and `after` (units in the group)."""

    model: onnx.ModelProto
    rows: list[dict] = field(default_factory=list)

    def describe(self) -> str:
        """The rows as a table, with a total of units per kind."""
        width = max([len("group")] + [len(row["group"]) for row in self.rows])
        lines = [f"{'group':<{width}}  {'kind':<8}  {'before':>6}  {'after':>6}"]
        lines += [
            f"{row['group']:<{width}}  {row['kind']:<8}  {row['before']:>6}  {row['after']:>6}"
            for row in self.rows
        ]
        for kind in dict.fromkeys(row["kind"] for row in self.rows):
            before = sum(row["before"] for row in self.rows if row["kind"] == kind)
            after = sum(row["after"] for row in self.rows if row["kind"] == kind)
            lines.append(f"{'total':<{width}}  {kind:<8}  {before:>6}  {after:>6}")
        return "\n".join(lines)
