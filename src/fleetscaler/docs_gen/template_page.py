"""docs/reference/template-parameters.md: the parameters and outputs of the CloudFormation templates, as the
template module builds them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fleetscaler.docs_gen.markdown import code, header, table


def render(repo_root: Path) -> str:
    from fleetscaler.deploy.template import endpoints_template, fleet_template

    lines = header("Template parameters", "the template module `src/fleetscaler/deploy/template/`")
    lines += [
        "The parameters and outputs of the two CloudFormation templates, `cfn/fleet-autoscaler.yaml` (the fleet: "
        "router, scaling API, endpoint-state handler, table, scaling policies, alarms, dashboard) and "
        "`cfn/async-endpoints.yaml` (a test fleet of SageMaker asynchronous endpoints). A parameter without a "
        "default is required.",
        "",
    ]
    templates = (("cfn/fleet-autoscaler.yaml", fleet_template), ("cfn/async-endpoints.yaml", endpoints_template))
    for file, build in templates:
        template = build()
        lines += [f"## {file}", "", str(template.get("Description", "")), "", "### Parameters", ""]
        lines += table(
            ["Parameter", "Type", "Default", "Allowed", "Description"],
            [[code(name), spec["Type"], _default(spec), _allowed(spec), _description(spec)]
             for name, spec in template["Parameters"].items()],
        )
        outputs = template.get("Outputs", {})
        if outputs:
            lines += ["### Outputs", ""]
            lines += table(["Output", "Description"], [[code(n), o.get("Description", "")] for n, o in outputs.items()])
    return "\n".join(lines).rstrip("\n") + "\n"


def _default(spec: dict[str, Any]) -> str:
    if "Default" not in spec:
        return "**required**"
    value = spec["Default"]
    return '`""` (empty)' if value == "" else code(value)


def _allowed(spec: dict[str, Any]) -> str:
    parts = []
    if "AllowedValues" in spec:
        parts.append(", ".join(code(v) for v in spec["AllowedValues"]))
    if "AllowedPattern" in spec:
        parts.append("pattern " + code(spec["AllowedPattern"]))
    if "MinValue" in spec and "MaxValue" in spec:
        parts.append(f"{spec['MinValue']} to {spec['MaxValue']}")
    elif "MinValue" in spec:
        parts.append(f">= {spec['MinValue']}")
    elif "MaxValue" in spec:
        parts.append(f"<= {spec['MaxValue']}")
    if "MinLength" in spec or "MaxLength" in spec:
        parts.append(f"length {spec.get('MinLength', 0)} to {spec.get('MaxLength', 'any')}")
    return "; ".join(parts) or "-"


def _description(spec: dict[str, Any]) -> str:
    text = str(spec.get("Description", ""))
    if "ConstraintDescription" in spec:
        text += f" (constraint: {spec['ConstraintDescription']})"
    return text



