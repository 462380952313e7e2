"""docs/reference/server-config.md: every attribute of the server_config item, from the validator's own table."""

from __future__ import annotations

from pathlib import Path

from fleetscaler.docs_gen.markdown import code, header, table
from fleetscaler.logic.server_config import SERVER_CONFIG_ATTRIBUTES

GROUPS = {
    "router": (
        "Read by the router",
        "The router checks these strictly on every request (`validate_routing_config`); a broken one stops routing. "
        "The scaling engine and the CLI check them with the same words.",
    ),
    "engine": (
        "Read by the scaling engine",
        "Only the scaling engine and the CLI check these (`validate_server_config`): a mistake here never stops "
        "routing, and the engine, which cannot plan with it, reports it.",
    ),
    "bookkeeping": (
        "Bookkeeping",
        "Written by fleetscaler itself; an operator does not edit them.",
    ),
}


def render(repo_root: Path) -> str:
    lines = header("server_config reference", "`SERVER_CONFIG_ATTRIBUTES` in `src/fleetscaler/logic/server_config.py`")
    lines += [
        "Every attribute of the `server_config` item of the metadata table. Lists are index-aligned with "
        "`servers`: one entry per server, in the same order. Any other attribute is an error naming the likely "
        "intended one (`capacity_unit: is not an attribute of server_config (did you mean capacity_units?)`), "
        "wherever a whole item is read (the CLI, `config import`). Every problem is reported at once, with the "
        "attribute and index: `weights[1]: must be a whole number >= 0, got -1`.",
        "",
    ]
    for group, (title, text) in GROUPS.items():
        specs = [a for a in SERVER_CONFIG_ATTRIBUTES if a.group == group]
        lines += [f"## {title}", "", text, ""]
        lines += table(
            ["Attribute", "Type", "Rule", "Default", "Example"],
            [[code(a.name), a.type, a.rule, a.default, code(a.example)] for a in specs],
        )
        for a in specs:
            lines += [f"### {a.name}", "", a.description, ""]
    return "\n".join(lines).rstrip("\n") + "\n"
