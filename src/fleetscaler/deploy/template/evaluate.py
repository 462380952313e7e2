"""A small evaluator of the intrinsic functions the fleet template uses, to read it as CloudFormation would
for given parameters (conditions, Fn::If / AWS::NoValue, Fn::Select over the padded suffix list, Fn::Sub of
parameters). The tests read the template with it, and the local fleet builds its Application Auto Scaling
policies from the template's own resources with it, so the simulator runs exactly what a stack deploys."""

from __future__ import annotations

import re
from typing import Any

NO_VALUE = object()


class TemplateView:
    def __init__(self, template: dict[str, Any], params: dict[str, Any]) -> None:
        self.template = template
        defaults = {k: v.get("Default") for k, v in template.get("Parameters", {}).items()}
        self.params = {**defaults, **params}
        for name, spec in template.get("Parameters", {}).items():
            if spec["Type"] == "CommaDelimitedList" and isinstance(self.params.get(name), str):
                self.params[name] = self.params[name].split(",")

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.template["Conditions"][name]))

    def resources_of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        """The resources of that type whose condition holds, by logical id, with their properties resolved."""
        found = {}
        for logical_id, resource in self.template["Resources"].items():
            if resource["Type"] == resource_type:
                properties = self.resource(logical_id)
                if properties is not None:
                    found[logical_id] = properties
        return found

    def resource(self, logical_id: str) -> dict[str, Any] | None:
        """The resource's properties, or None when its condition is false."""
        resource = self.template["Resources"][logical_id]
        if "Condition" in resource and not self.condition(resource["Condition"]):
            return None
        return self.resolve(resource.get("Properties", {}))

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            return [value for value in (self.resolve(item) for item in node) if value is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, value),) = node.items()
            if key == "Ref":
                if value == "AWS::NoValue":
                    return NO_VALUE
                return self.params.get(value, node)
            if key == "Fn::Join":
                separator, items = value
                return separator.join(str(item) for item in self.resolve(items))
            if key == "Fn::Split":
                separator, text = value
                return str(self.resolve(text)).split(separator)
            if key == "Fn::Select":
                index, items = value
                return self.resolve(items)[index]
            if key == "Fn::If":
                name, when_true, when_false = value
                return self.resolve(when_true if self.condition(name) else when_false)
            if key == "Fn::Equals":
                left, right = (self.resolve(v) for v in value)
                return str(left) == str(right)
            if key == "Fn::Not":
                return not self.resolve(value[0])
            if key == "Condition":
                return self.condition(value)
            if key == "Fn::Sub" and isinstance(value, str):
                names = re.findall(r"\$\{([^}]+)\}", value)
                if all(name in self.params for name in names):  # else it names a resource: left as it is
                    return re.sub(r"\$\{([^}]+)\}", lambda m: str(self.params[m.group(1)]), value)
        return {k: v for k, v in ((k, self.resolve(v)) for k, v in node.items()) if v is not NO_VALUE}
