"""Command-line parsing with the rules and messages of kingpin, the parser Go's ``noms`` uses.

Go Noms reports bad usage as ``noms: error: <reason>, try --help`` with
kingpin's exact reasons (``unknown short flag '-2'``, ``required argument
'dataset' not provided``, ``expected command but got "x"``, ...), and numbers
that start with ``-`` are flags unless they follow ``--`` or ``=``.  This
module reproduces that tokenizer and grammar for the commands' declarations.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

FlagKind = Literal["bool", "str", "int", "uint"]
ArgKind = Literal["str", "uint", "strings"]
_LONG, _SHORT, _ARG = "long", "short", "arg"
_GO_INT = re.compile(r"0[xX]([0-9a-fA-F]+)|0[oO]([0-7]+)|0[bB]([01]+)|0([0-7]+)|([0-9]+)")


class UsageError(Exception):
    """Command-line usage that kingpin rejects; the message is kingpin's."""


class HelpRequested(Exception):
    """``--help``/``-h`` or ``help [command]``: show the help of ``commands[-1]``."""

    def __init__(self, commands: list[Command]) -> None:
        super().__init__("help")
        self.commands = commands


@dataclass(frozen=True)
class Flag:
    name: str
    help: str
    kind: FlagKind = "str"
    default: str | None = None
    short: str | None = None


@dataclass(frozen=True)
class Arg:
    name: str
    help: str
    kind: ArgKind = "str"
    required: bool = False


@dataclass
class Command:
    """A command or subcommand: its flags, positional arguments and children."""

    name: str
    help: str
    flags: list[Flag] = field(default_factory=list)
    args: list[Arg] = field(default_factory=list)
    commands: list[Command] = field(default_factory=list)
    run: Callable[..., int] | None = None

    def child(self, name: str) -> Command | None:
        return next((c for c in self.commands if c.name == name), None)


Values = dict[str, object]


@dataclass
class Parsed:
    """The selected command chain and every flag and argument value (defaults filled in)."""

    commands: list[Command]
    values: Values

    @property
    def command(self) -> Command:
        return self.commands[-1]

    @property
    def full_name(self) -> str:
        return " ".join(c.name for c in self.commands[1:])


@dataclass
class _Token:
    kind: str
    value: str

    def __str__(self) -> str:
        return {"long": "--", "short": "-"}.get(self.kind, "") + self.value


class _Tokens:
    """kingpin's lexer: ``--name[=v]``, ``-x`` (with ``-xV`` for valued short flags), ``--`` ends flags."""

    def __init__(self, argv: Sequence[str]) -> None:
        self.args = list(argv)
        self.pushed: list[_Token] = []
        self.args_only = False

    def peek(self, shorts: dict[str, Flag]) -> _Token | None:
        if not self.pushed:
            token = self._lex(shorts)
            if token is None:
                return None
            self.pushed.append(token)
        return self.pushed[-1]

    def take(self) -> None:
        self.pushed.pop()

    def _lex(self, shorts: dict[str, Flag]) -> _Token | None:
        if not self.args:
            return None
        arg = self.args.pop(0)
        if self.args_only:
            return _Token(_ARG, arg)
        if arg == "--":
            self.args_only = True
            return self._lex(shorts)
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
            if eq:
                self.args.insert(0, value)
                self.args_only_once()
            return _Token(_LONG, name)
        if arg.startswith("-") and len(arg) > 1:
            short, rest = arg[1], arg[2:]
            flag = shorts.get(short)
            if rest:
                if flag is not None and flag.kind != "bool":
                    self.args.insert(0, rest)
                    self.args_only_once()
                else:
                    self.args.insert(0, "-" + rest)
            return _Token(_SHORT, short)
        return _Token(_ARG, arg)

    def args_only_once(self) -> None:
        """The next raw argument is a flag value (``--x=-1``): never a flag itself."""
        value = self.args.pop(0)
        self.pushed.insert(0, _Token(_ARG, value))


def parse(app: Command, argv: Sequence[str]) -> Parsed:
    """Parse ``argv`` (without the program name) against ``app``; raises ``UsageError``."""
    tokens = _Tokens(argv)
    chain = [app]
    longs: dict[str, Flag] = {}
    shorts: dict[str, Flag] = {}
    raw: dict[str, object] = {}
    pending_args: list[Arg] = []

    def enter(command: Command) -> None:
        nonlocal pending_args
        for flag in command.flags:
            longs[flag.name] = flag
            if flag.short:
                shorts[flag.short] = flag
        pending_args = list(command.args)

    enter(app)
    while True:
        token = tokens.peek(shorts)
        if token is None:
            break
        if (token.kind, token.value) in ((_LONG, "help"), (_SHORT, "h")):
            raise HelpRequested(chain)
        if token.kind in (_LONG, _SHORT):
            _parse_flag(token, tokens, longs, shorts, raw)
            continue
        current = chain[-1]
        if current is app and token.value == "help":
            tokens.take()
            rest = tokens.peek(shorts)
            named = app.child(rest.value) if rest is not None else None
            raise HelpRequested([app, named] if named is not None else [app])
        if current.commands:
            selected = current.child(token.value)
            if selected is None:
                raise UsageError(f'expected command but got "{token.value}"')
            tokens.take()
            chain.append(selected)
            enter(selected)
        elif pending_args:
            arg = pending_args[0]
            tokens.take()
            if arg.kind == "strings":
                values = raw.setdefault(arg.name, [])
                assert isinstance(values, list)
                values.append(token.value)
            else:
                raw[arg.name] = _convert(arg.kind, token.value)
                pending_args.pop(0)
        else:
            break
    leftover = tokens.peek(shorts)
    if leftover is not None:
        raise UsageError(f"unexpected {leftover}")
    return _finish(chain, raw)


def _parse_flag(token: _Token, tokens: _Tokens, longs: dict[str, Flag], shorts: dict[str, Flag],
                raw: dict[str, object]) -> None:
    invert = False
    if token.kind == _LONG:
        flag = longs.get(token.value)
        if flag is None and token.value.startswith("no-"):
            flag, invert = longs.get(token.value[3:]), True
        if flag is None:
            raise UsageError(f"unknown long flag '{token}'")
    else:
        flag = shorts.get(token.value)
        if flag is None:
            raise UsageError(f"unknown short flag '{token}'")
    tokens.take()
    if flag.kind == "bool":
        raw[flag.name] = not invert
        return
    if invert:
        raise UsageError(f"unknown long flag '{token}'")
    value = tokens.peek(shorts)
    if value is None or value.kind != _ARG:
        raise UsageError(f"expected argument for flag '{token}'")
    tokens.take()
    raw[flag.name] = _convert(flag.kind, value.value)


def _convert(kind: str, text: str) -> object:
    """A flag or argument value, parsed like Go's ``strconv.ParseInt/ParseUint(text, 0, 64)``."""
    if kind in ("str", "strings"):
        return text
    function = "ParseInt" if kind == "int" else "ParseUint"
    negative = kind == "int" and text[:1] == "-"
    body = text[1:] if kind == "int" and text[:1] in "+-" else text
    match = _GO_INT.fullmatch(body)
    if match is None:
        raise UsageError(f'strconv.{function}: parsing "{text}": invalid syntax')
    digits, base = next((g, b) for g, b in zip(match.groups(), (16, 8, 2, 8, 10)) if g is not None)
    value = -int(digits, base) if negative else int(digits, base)
    low, high = (-(1 << 63), (1 << 63) - 1) if kind == "int" else (0, (1 << 64) - 1)
    if not low <= value <= high:
        raise UsageError(f'strconv.{function}: parsing "{text}": value out of range')
    return value


def _finish(chain: list[Command], raw: dict[str, object]) -> Parsed:
    command = chain[-1]
    values: Values = {}
    for cmd in chain:
        for flag in cmd.flags:
            if flag.name in raw:
                values[flag.name] = raw[flag.name]
            elif flag.kind == "bool":
                values[flag.name] = flag.default == "true"
            elif flag.default is not None:
                values[flag.name] = _convert(flag.kind, flag.default)
            else:
                values[flag.name] = "" if flag.kind == "str" else 0
    for arg in command.args:
        if arg.name in raw:
            values[arg.name] = raw[arg.name]
        elif arg.required:
            raise UsageError(f"required argument '{arg.name}' not provided")
        else:
            values[arg.name] = [] if arg.kind == "strings" else ("" if arg.kind == "str" else 0)
    if len(chain) == 1:
        raise UsageError("command not specified")
    if command.commands:
        raise UsageError(f"must select a subcommand of '{' '.join(c.name for c in chain[1:])}'")
    return Parsed(chain, values)


def check_error_usage_line(argv: Sequence[str]) -> str:
    """The line Go's ``d.CheckError`` adds after ``error: ...``.

    Go calls ``kingpin.Usage()`` on its *default* application, which knows no
    commands, so it rejects the first argument: ``unexpected <command>`` (or,
    when a global flag comes first, ``unknown short flag '-q'``).
    """
    tokens = _Tokens(argv)
    help_flag = Flag("help", "", "bool", short="h")
    token = tokens.peek({"h": help_flag})
    if token is None:
        return ""
    if token.kind == _LONG and token.value not in ("help", "help-long", "help-man"):
        return f"noms: error: unknown long flag '{token}'\n"
    if token.kind == _SHORT and token.value != "h":
        return f"noms: error: unknown short flag '{token}'\n"
    if token.kind == _ARG:
        return f"noms: error: unexpected {token}\n"
    return ""


def help_text(commands: list[Command]) -> str:
    """A usage summary of the last command in ``commands``: its flags, arguments and subcommands."""
    command = commands[-1]
    name = " ".join(c.name for c in commands)
    args = " ".join(f"<{a.name}>" if a.required else f"[<{a.name}>{'...' if a.kind == 'strings' else ''}]"
                    for a in command.args)
    lines = [f"usage: {name}{' [<flags>]' if command.flags else ''}{' <command>' if command.commands else ''}"
             f"{' ' + args if args else ''}", "", command.help, ""]
    flags = [f for c in commands for f in c.flags]
    if flags:
        lines.append("Flags:")
        lines += [f"  {'-' + f.short + ', ' if f.short else ''}--{f.name}  {f.help}" for f in flags]
        lines.append("")
    if command.args:
        lines.append("Args:")
        lines += [f"  <{a.name}>  {a.help}" for a in command.args]
        lines.append("")
    if command.commands:
        lines.append("Commands:")
        lines += [f"  {c.name}  {c.help}" for c in command.commands]
        lines.append("")
    return "\n".join(lines)
