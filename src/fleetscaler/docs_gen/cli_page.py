"""docs/reference/cli.md: every command of the `fleetscaler` click group, walked as click itself sees it."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import click

from fleetscaler.docs_gen.markdown import code, header, prose, table


def render(repo_root: Path) -> str:
    from fleetscaler.cli.main import cli

    lines = header("CLI reference", "the click commands of `src/fleetscaler/cli/`")
    lines += [
        "Every command and subcommand of `fleetscaler`, with its usage, help and options. Every command also "
        "takes `-h` / `--help`. The global options (those of `fleetscaler` itself) come before the command: "
        "`fleetscaler --table T config show`.",
        "",
    ]
    lines += _command(cli, ["fleetscaler"], None, repo_root, level=2)
    return "\n".join(lines).rstrip("\n") + "\n"


def _command(
    command: click.Command, path: list[str], parent: click.Context | None, repo_root: Path, level: int
) -> list[str]:
    ctx = click.Context(command, info_name=path[-1], parent=parent)
    lines = [f"{'#' * level} {' '.join(path)}", ""]
    lines += ["```text", " ".join([ctx.command_path, *command.collect_usage_pieces(ctx)]), "```", ""]
    help_text = inspect.cleandoc(command.help or "").split("\f")[0]
    if help_text:
        lines += prose(help_text)
    arguments = [p for p in command.params if isinstance(p, click.Argument)]
    options = [p for p in command.params if isinstance(p, click.Option) and not p.hidden]
    if arguments:
        lines += table(
            ["Argument", "Type", "Required"],
            [[code(a.human_readable_name), _type(a), "yes" if a.required else "no"] for a in arguments],
        )
    if options:
        lines += table(
            ["Option", "Type", "Default", "Description"],
            [[_names(o), _type(o), _default(o, ctx, repo_root), o.help or ""] for o in options],
        )
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                lines += _command(sub, [*path, name], ctx, repo_root, level=min(level + 1, 4) if parent else level)
    return lines


def _names(option: click.Option) -> str:
    names = ", ".join(code(n) for n in sorted(option.opts, key=lambda n: (n.startswith("--"), n)))
    if option.secondary_opts:
        names += " / " + ", ".join(code(n) for n in option.secondary_opts)
    return names


def _type(param: click.Parameter) -> str:
    kind = param.type
    if isinstance(param, click.Option) and param.is_flag and not param.secondary_opts:
        text = "flag"
    elif isinstance(kind, click.Choice):
        text = "one of " + ", ".join(code(c) for c in kind.choices)
    elif isinstance(kind, click.IntRange | click.FloatRange):
        base = "integer" if isinstance(kind, click.IntRange) else "number"
        text = f"{base} ({kind._describe_range()})"
    elif isinstance(kind, click.Path | click.File):
        text = "path"
    else:
        text = {"integer": "integer", "float": "number", "boolean": "boolean", "text": "text"}.get(kind.name, kind.name)
    if param.multiple:
        text += ", repeatable"
    return text


def _default(option: click.Option, ctx: click.Context, repo_root: Path) -> str:
    if option.required:
        return "required"
    value: Any = option.get_default(ctx, call=False)
    if callable(value):
        return "(computed)"
    if _unset(value) or (option.is_flag and value is False):
        return "-"
    if isinstance(value, Path):
        value = value.relative_to(repo_root) if value.is_relative_to(repo_root) else value
    return code(value)


def _unset(value: object) -> bool:
    """No default: None, or click's own "unset" marker (newer click versions use one instead of None)."""
    return value is None or type(value).__name__ == "Sentinel"

