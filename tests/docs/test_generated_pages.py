"""The generated reference pages are up to date, and every schema they are generated from is fully described."""

from __future__ import annotations

import pytest

from fleetscaler.deploy.template import fleet_template
from fleetscaler.docs_gen import PAGES, REFERENCE_DIR, render_page
from fleetscaler.local.scenario_schema import SCENARIO_SCHEMA
from fleetscaler.logic.server_config import KNOWN_ATTRIBUTES, SERVER_CONFIG_ATTRIBUTES


@pytest.mark.parametrize("name", sorted(PAGES))
def test_generated_page_is_up_to_date(name: str) -> None:
    path = REFERENCE_DIR / name
    assert path.exists(), f"docs/reference/{name} is missing: run `make docs-generate` and commit it"
    assert path.read_text(encoding="utf-8") == render_page(name), (
        f"docs/reference/{name} is stale (the code it describes changed): run `make docs-generate` and commit it"
    )


def test_generated_pages_say_they_are_generated_on_their_first_line() -> None:
    for name in PAGES:
        first = render_page(name).splitlines()[0]
        assert "Generated" in first and "make docs-generate" in first, name


def test_every_server_config_attribute_is_described() -> None:
    assert [a.name for a in SERVER_CONFIG_ATTRIBUTES] == list(KNOWN_ATTRIBUTES)
    assert len(set(KNOWN_ATTRIBUTES)) == len(KNOWN_ATTRIBUTES)
    for spec in SERVER_CONFIG_ATTRIBUTES:
        for field in ("type", "rule", "default", "example", "description"):
            assert getattr(spec, field).strip(), f"server_config attribute {spec.name}: no {field}"


def test_every_scenario_key_is_described() -> None:
    for section in SCENARIO_SCHEMA.values():
        assert section.title.strip() and section.description.strip(), section.path
        assert len(set(section.names)) == len(section.names), f"{section.path}: a key appears twice"
        for key in section.keys:
            where = f"{section.path}.{key.name}" if section.path else key.name
            for field in ("type", "default", "rule", "description"):
                assert getattr(key, field).strip(), f"scenario key {where}: no {field}"


def test_every_fleet_template_parameter_has_a_description() -> None:
    undescribed = [name for name, spec in fleet_template()["Parameters"].items() if not spec.get("Description")]
    assert not undescribed, f"fleet template parameters without a Description: {undescribed}"
