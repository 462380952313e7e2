"""The example runner itself: how it finds blocks and their modes, and what its parse mode accepts and refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs.examples import (
    Block,
    ExampleError,
    LocalFleetUrls,
    check_block,
    check_command,
    local_fleet_text,
    logical_lines,
    missing_link_targets,
    parse_blocks,
    split_commands,
)

PAGE = """# A page

```console
$ fleetscaler --help
```

<!-- example: parse -->
```sh
fleetscaler --table t config show
```

Some text.
<!-- example: local-fleet -->
```bash
fleetscaler --endpoint-url http://127.0.0.1:4566 status
```

```python
print("hello")
```

```yaml
# scenario
name: tiny
```

```yaml
key: not a scenario
```

````markdown
```sh
not a block of its own
```
````

1. In a list:

   ```shell
   echo indented
   ```
"""


def block(text: str, language: str = "sh", mode: str | None = "parse") -> Block:
    return Block("page.md", 10, language, text, mode)


def test_blocks_are_found_with_their_line_language_and_mode() -> None:
    blocks = parse_blocks(PAGE, "page.md")
    assert [(b.line, b.language, b.mode, b.kind) for b in blocks] == [
        (3, "console", None, "prose"),
        (8, "sh", "parse", "shell"),
        (14, "bash", "local-fleet", "shell"),
        (18, "python", None, "python"),
        (22, "yaml", None, "scenario"),
        (27, "yaml", None, "prose"),
        (31, "markdown", None, "prose"),
        (39, "shell", None, "shell"),
    ]
    assert blocks[1].text == "fleetscaler --table t config show\n"
    assert blocks[1].id == "page.md:8"
    assert blocks[-1].text == "echo indented\n"
    assert blocks[3].run_mode == "run"


def test_console_and_other_prose_blocks_are_not_checked() -> None:
    checked = [b for b in parse_blocks(PAGE, "page.md") if b.checked]
    assert [b.language for b in checked] == ["sh", "bash", "python", "yaml", "shell"]


def test_a_parse_block_with_known_commands_and_options_passes() -> None:
    check_block(block(
        "# a comment\n"
        "fleetscaler --table fleetscaler-metadata config set --weights 5,3,2 --yes\n"
        "fleetscaler simulate data/scenarios/missing.yaml --strategy race \\\n"
        "    --out out/x  # paths need not exist\n"
        "export AWS_REGION=us-east-1 && aws s3 ls | cat\n"
        "make test\n"
        "make deploy STACK=my-fleet BUCKET=b\n"
        "python -m fleetscaler.deploy.template\n"
        "python scripts/make_trace.py --scale 1.3 > out/trace.csv\n"
        "fleetscaler --help\n"
        ".venv/bin/pytest -q tests/docs -k README.md\n"
    ))


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("fleetscaler config set --wieghts 5,3,2", "No such option '--wieghts'"),
        ("fleetscaler confgi show", "No such command 'confgi'"),
        ("fleetscaler --output xml status", "'xml' is not one of"),
        ("fleetscaler submit endpoint", "Missing argument 'PREFIX'"),
        ("fleetscaler invoke endpoint --count many", "'many' is not a valid integer"),
        ("make no-such-target", "no target 'no-such-target'"),
        ("python -m fleetscaler.no_such_module", "no such module"),
        ("python scripts/no_such_script.py", "no such file"),
        ("pytest tests/no_such_folder::test_x", "no such file or folder tests/no_such_folder"),
        ("curl http://example.com", "curl: not a command"),
        ("FOO=1 rm -rf out", "rm: not a command"),
    ],
)
def test_a_parse_block_with_a_wrong_command_fails_naming_it(line: str, why: str) -> None:
    with pytest.raises(ExampleError) as failure:
        check_block(block(f"echo first\n{line}\n"))
    message = str(failure.value)
    assert why in message
    assert "line 12" in message  # the block's fence is line 10, the command its second line
    assert "page.md:10" in message


def test_commands_are_split_like_the_shell() -> None:
    assert split_commands("A=1 fleetscaler status --watch | head -n 3 && echo 'a b' > out.txt; ls") == [
        ["fleetscaler", "status", "--watch"], ["head", "-n", "3"], ["echo", "a b"], ["ls"],
    ]
    assert list(logical_lines("# c\n\nfleetscaler \\\n  status\necho x\n")) == [
        (2, "fleetscaler status"), (4, "echo x"),
    ]
    assert check_command([".venv/bin/fleetscaler", "status"]) is None


def test_a_run_block_that_fails_shows_the_block_the_command_and_its_output() -> None:
    with pytest.raises(ExampleError) as failure:
        check_block(block("echo to-stdout\necho to-stderr >&2\nexit 3\n", mode=None))
    message = str(failure.value)
    assert "exited 3 (bash -eo pipefail" in message
    assert "page.md:10" in message and "exit 3" in message
    assert "to-stdout" in message and "to-stderr" in message


def test_a_run_block_runs_in_the_repository_with_the_virtualenv_and_dummy_credentials() -> None:
    check_block(block(
        'test -f pyproject.toml\ncommand -v fleetscaler\ntest "$AWS_ACCESS_KEY_ID" = testing\nfleetscaler --help\n',
        mode=None,
    ))
    check_block(block("import fleetscaler\nassert 1 + 1 == 2\n", language="python", mode=None))


def test_an_unknown_mode_fails() -> None:
    with pytest.raises(ExampleError, match="unknown example mode 'runn'"):
        check_block(block("echo x\n", mode="runn"))


def test_a_scenario_block_must_load() -> None:
    good = "# scenario\nname: tiny\nfleet: {endpoints: [{server: a}]}\ntraffic: [{minutes: 1, rps: 0.1}]\n"
    check_block(block(good, language="yaml", mode=None))
    with pytest.raises(ExampleError, match=r"arrivalz: unknown key \(did you mean 'arrivals'\?\)"):
        check_block(block(good + "arrivalz: poisson\n", language="yaml", mode=None))


def test_local_fleet_blocks_follow_the_fleet_when_it_runs_on_other_ports() -> None:
    text = "fleetscaler --endpoint-url http://127.0.0.1:4566 --router-url http://127.0.0.1:8080/local status\n"
    assert local_fleet_text(text, LocalFleetUrls(4566, 8080)) == text
    assert local_fleet_text(text, LocalFleetUrls(40001, 40002)) == (
        "fleetscaler --endpoint-url http://127.0.0.1:40001 --router-url http://127.0.0.1:40002/local status\n"
    )


def test_relative_links_to_missing_files_are_found(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "concepts.md").write_text("# c\n")
    text = (
        "See [concepts](docs/concepts.md#routing), [gone](docs/gone.md), [web](https://example.com),\n"
        "[here](#quick-start) and ![pic](docs/img/x.png).\n"
        "```sh\ncat [not](a-link.md)\n```\n"
        "[ref]: docs/also-gone.md\n"
    )
    assert missing_link_targets(text, tmp_path) == [
        "line 1: docs/gone.md", "line 2: docs/img/x.png", "line 6: docs/also-gone.md",
    ]
