"""embedrec config show."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from embedrec.cli.app import CONTEXT, common, main
from embedrec.cli.options import report
from embedrec.errors import sh_quote

if TYPE_CHECKING:  # annotations only: no import at run time
    from embedrec.config import Config


@main.command("config", context_settings=CONTEXT)
@click.argument("action", default="show", metavar="[show]")
@common
def config_cmd(cfg: Config, action):
    """Print the resolved config (defaults < file < --set) as YAML.

    \b
    Example:
      embedrec config -c configs/default.yaml --set model.dim=64
    """
    if action != "show":  # click's Choice said "invalid value for '[show]': 'x' is not 'show'" (a first-hour review)

        from embedrec.cli.options import usage_error

        hint = f"; to print a config file resolved: embedrec config -c {sh_quote(action)}" if action.endswith((".yaml", ".yml")) \
            else ""
        usage_error(f"'{action}' is not an action of config: it takes none, or 'show' (print the resolved config)"
                    f"{hint}")
    report(cfg.to_yaml(), nl=False)
