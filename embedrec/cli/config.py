"""embedrec config show."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from embedrec.cli.app import CONTEXT, common, main

if TYPE_CHECKING:  # annotations only: no import at run time
    from embedrec.config import Config


@main.command("config", context_settings=CONTEXT)
@click.argument("action", type=click.Choice(["show"]), default="show")
@common
def config_cmd(cfg: Config, action):
    """Print the resolved config (defaults < file < --set) as YAML.

    \b
    Example:
      embedrec config -c configs/default.yaml --set model.dim=64
    """
    click.echo(cfg.to_yaml(), nl=False)
