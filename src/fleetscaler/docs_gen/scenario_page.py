"""docs/reference/scenario-schema.md: every section and key of a scenario file, from the loader's own schema."""

from __future__ import annotations

from pathlib import Path

from fleetscaler.docs_gen.markdown import code, header, table
from fleetscaler.local.scenario_schema import REQUIRED, SCENARIO_SCHEMA


def render(repo_root: Path) -> str:
    lines = header("Scenario file reference", "`SCENARIO_SCHEMA` in `src/fleetscaler/local/scenario_schema.py`")
    lines += [
        "Every section and key of a scenario file (`data/scenarios/*.yaml` or `.json`), by its path. Every key is "
        "checked: a key the format does not know is an error naming its full path and the closest known key "
        "(`fleet.endpoints[0].instnce_type: unknown key (did you mean 'instance_type'?)`), reported with every "
        "other mistake at once.",
        "",
        "A `traffic` entry is a rate phase, a batch (it has `requests`) or a replayed trace (it has `trace`); each "
        "kind takes only its own keys.",
        "",
    ]
    for section in SCENARIO_SCHEMA.values():
        where = code(section.path) if section.path else "top level"
        lines += [f"## {section.title} ({where})", "", section.description, ""]
        prefix = f"{section.path}." if section.path else ""
        lines += table(
            ["Key", "Type", "Default", "Rule", "Description"],
            [
                [code(prefix + k.name), k.type, "**required**" if k.default == REQUIRED else k.default, k.rule,
                 k.description]
                for k in section.keys
            ],
        )
    return "\n".join(lines).rstrip("\n") + "\n"
