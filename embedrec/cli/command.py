"""The subcommands' click class: a value below zero after an optional-value option, an option given twice."""

from __future__ import annotations

import re

import click

_NUMBER_BELOW_ZERO = re.compile(r"-\d+(\.\d*)?")  # '-1', '-0', '-2.5': an option's value, not an option


def value_optional(p: click.Parameter) -> bool:
    """Whether ``p`` is an option whose value may be left out (``--explain`` alone, ``--explain 5``): one of type
    ``options.OptionalCount``, the type every such option here is declared with (``is_flag=False`` and its
    ``flag_value``). Told by our own type, not by click's private ``Option._flag_needs_value``, whose meaning has
    moved between click releases; tests/test_cli.py checks the two agree with what click's parser does."""
    from embedrec.cli.options import OptionalCount

    return isinstance(p, click.Option) and isinstance(p.type, OptionalCount)


class Command(click.Command):
    """A subcommand (every one of ``main``'s, through ``Group.command_class``) that reads a number below zero after
    an option whose value may be left out (``--explain -1``, :func:`value_optional`; click takes '-1' for an
    option, then says 'no such option') as that option's value: its type's own refusal, naming the option and what
    it takes; and refuses an option of one value given twice with two values (:func:`_refuse_repeated`)."""

    def parse_args(self, ctx, args):
        optional = {name: p for p in self.params if value_optional(p) for name in p.opts}
        if optional:
            for i, arg in enumerate(args):
                if arg == "--":
                    break
                name, eq, value = arg.partition("=")
                value = value if eq else args[i + 1] if i + 1 < len(args) else ""
                if name in optional and _NUMBER_BELOW_ZERO.fullmatch(value):
                    optional[name].type.convert(value, optional[name], ctx)  # raises its BadParameter
        _refuse_repeated(self, ctx, args)
        return super().parse_args(ctx, args)


def _refuse_repeated(command: click.Command, ctx, args) -> None:
    """A usage error for an option that takes one value given more than once with different values (a first-hour
    review: click keeps the last without a word, so `recommend --user 196 --user 186` answered 186 alone, and
    `--movie 'star wars' --movie 181` 181 alone). The options meant to repeat (``multiple``: --set, --genre,
    evaluate's -k) and flags are not counted; the same value twice is no choice to make (`-k5 -k 5`). Which options
    were given twice is click's own parse (its order lists an option each time it is given); the values said are
    read from the arguments as click's parser reads them (:func:`_typed_values`: clusters such as `-qk5` too)."""
    single = [p for p in command.get_params(ctx) if isinstance(p, click.Option) and not p.multiple and not p.count
              and not p.is_flag]
    if not single or len(args) < 2:  # (an option twice at least)
        return
    try:
        _, _, order = command.make_parser(ctx).parse_args(list(args))
    except click.UsageError:  # said by the parse that follows, in its words
        return
    typed = None
    for p in single:
        if sum(o is p for o in order) < 2:
            continue
        typed = _typed_values(command, ctx, args) if typed is None else typed
        values = typed.get(p, [])
        if len(values) >= 2 and len(set(values)) == 1:
            continue
        name = next((o for o in p.opts if o.startswith("--")), p.opts[0])
        times = "twice" if len(values) == 2 else f"{max(len(values), 2)} times"
        said = f" ({' and '.join('without a value' if v is None else repr(v) for v in values)})" if values else ""
        raise click.UsageError(f"{name} given {times}{said}; it takes one value: give it once", ctx)


def _typed_values(command: click.Command, ctx, args) -> dict[click.Option, list]:
    """{option: the values it was given, in order} over ``args`` as click's parser reads them (click/parser.py's
    _process_args_for_options, _match_long_opt, _match_short_opt, _get_value_from_state), for arguments it parsed
    without an error: ``--`` ends the options; an argument of '-' and more is an option, else a positional
    (the options end at the first one where the command takes no interspersed arguments); ``--name=value`` or
    ``--name value``; a cluster of short options (``-qk5``, ``-qk 5``) is read a letter at a time, and the first
    that takes a value takes the rest of the cluster, else the next argument, whatever it starts with. A value that
    may be left out (:func:`value_optional`) is None where it is: no argument follows, or the next starts an
    option. A flag's or a count's letters take no value (not recorded)."""
    long, short = {}, {}
    for p in command.get_params(ctx):
        if isinstance(p, click.Option):
            for name in (*p.opts, *p.secondary_opts):
                prefix = name[:2] if name[1:2] == name[:1] else name[:1]  # click's split_opt
                (short if len(prefix) == 1 and len(name) == 2 else long)[name] = p
    out: dict[click.Option, list] = {}
    rest = list(args)

    def take(p: click.Option) -> None:
        if p.is_flag or p.count:
            return
        if len(rest) < p.nargs:
            value = None  # (a value-optional option at the end; any other was a usage error)
        elif p.nargs == 1:
            optional = value_optional(p) and rest[0][:1] == "-" and len(rest[0]) > 1
            value = None if optional else rest.pop(0)
        else:
            value, rest[:p.nargs] = tuple(rest[:p.nargs]), []
        out.setdefault(p, []).append(value)

    while rest:
        arg = rest.pop(0)
        if arg == "--":
            break
        if arg[:1] != "-" or len(arg) == 1:
            if not command.allow_interspersed_args:
                break
            continue
        name, eq, value = arg.partition("=")
        if name in long:
            if eq:
                rest.insert(0, value)
            take(long[name])
            continue
        if arg[:2] == "--":
            continue  # (no such option: click refused it already)
        for i, ch in enumerate(arg[1:], 2):
            p = short.get(f"-{ch}")
            if p is None:
                break
            if not (p.is_flag or p.count):
                if i < len(arg):
                    rest.insert(0, arg[i:])
                take(p)
                break
    return out
