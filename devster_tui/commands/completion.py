"""``devster completion bash|zsh|fish``: a shell completion script built from the parser.

Why generated: the script is written from the same argparse tree the CLI parses with
(``build_parser(None)`` builds every sub-command), so a new command or option is completed
as soon as it exists, and no completion library is needed.  The scripts complete command
names, each command's options, the values of options with choices (``--format``,
``--view``, ``--for``), paths for file options, and the names a ``TASK``/``JOB`` argument
accepts.  Names come from ``devster completion --names COMMAND [--file FILE]``, which loads
the project file found like ``devster up`` finds it (~0.4 s, once per Tab press): the jobs
for ``run``, tasks and observers for ``trigger``, the tasks for the rest.

Import-light: only argparse at module level; ``--names`` imports the config loader.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from devster_tui.errors import ExitCode

SHELLS = ("bash", "zsh", "fish")

_NAME_METAVARS = ("TASK", "JOB")
"""Positional metavars completed with the project's names."""
_PATH_METAVARS = ("FILE", "PATH", "DIR", "LOG")
"""Metavars whose values are paths."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``SHELL`` argument, ``--names`` and ``-f/--file``."""
    parser.add_argument(
        "shell", nargs="?", choices=SHELLS, metavar="SHELL", help="bash, zsh or fish"
    )
    parser.add_argument(
        "--names",
        metavar="COMMAND",
        help="instead of a script: print the names COMMAND's TASK arguments accept, one a "
        "line (the scripts call this)",
    )
    parser.add_argument(
        "-f",
        "--file",
        metavar="FILE",
        help="with --names: the project file (default: found like devster up does)",
    )


# ---------------------------------------------------------------------- the model


@dataclass(frozen=True, slots=True)
class Option:
    """One option of a command, as the scripts see it."""

    flags: tuple[str, ...]
    """``("-f", "--file")``."""
    help: str
    """One line of help."""
    value: str
    """What follows it: "" (nothing), "choice", "path", "command" or "text"."""
    choices: tuple[str, ...] = ()
    """The allowed values (``value == "choice"``)."""
    repeatable: bool = False
    """It may be given more than once (``--profile``)."""
    metavar: str = ""
    """The name of its value, for zsh's messages."""


@dataclass(frozen=True, slots=True)
class Command:
    """One sub-command: its options and what its positional arguments are."""

    name: str
    """The sub-command."""
    help: str
    """Its one-line help."""
    options: tuple[Option, ...]
    """Every option, ``-h/--help`` included."""
    positional: str
    """"" (none), "names" (tasks), "path", or "choice"."""
    choices: tuple[str, ...]
    """The positional's allowed values (``positional == "choice"``)."""
    nargs: str | int | None
    """The positional's argparse ``nargs``."""
    metavar: str
    """The positional's name (``TASK``)."""
    file_flags: tuple[str, ...]
    """The options naming the project file (``-f``, ``--file``), passed on to ``--names``."""


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split())


def _metavar(action: argparse.Action) -> str:
    metavar = action.metavar
    if isinstance(metavar, tuple):
        return str(metavar[0]) if metavar else ""
    return str(metavar or action.dest.upper())


def _option(action: argparse.Action) -> Option:
    metavar = _metavar(action)
    if action.nargs == 0:
        value = ""
    elif action.choices is not None:
        value = "choice"
    elif metavar in _PATH_METAVARS:
        value = "path"
    elif metavar == "COMMAND":
        value = "command"
    else:
        value = "text"
    return Option(
        flags=tuple(action.option_strings),
        help=_one_line(action.help),
        value=value,
        choices=tuple(str(c) for c in action.choices or ()),
        repeatable=isinstance(action, argparse._AppendAction),
        metavar=metavar,
    )


def _command(name: str, help_text: str, parser: argparse.ArgumentParser) -> Command:
    options: list[Option] = []
    positional = ""
    choices: tuple[str, ...] = ()
    nargs: str | int | None = None
    metavar = ""
    for action in parser._actions:
        if action.help == argparse.SUPPRESS:
            continue
        if action.option_strings:
            options.append(_option(action))
            continue
        metavar = _metavar(action)
        nargs = action.nargs
        if action.choices is not None:
            positional, choices = "choice", tuple(str(c) for c in action.choices)
        elif metavar in _NAME_METAVARS:
            positional = "names"
        elif metavar in _PATH_METAVARS:
            positional = "path"
    file_flags = tuple(
        flag
        for action in parser._actions
        if action.dest == "file" and action.option_strings
        for flag in action.option_strings
    )
    return Command(name, help_text, tuple(options), positional, choices, nargs, metavar, file_flags)


def commands_of(parser: argparse.ArgumentParser) -> tuple[Command, ...]:
    """Every sub-command of a parser built with ``build_parser(None)``, in help order."""
    found: list[Command] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: _one_line(choice.help) for choice in action._choices_actions}
            for name, sub in action.choices.items():
                found.append(_command(name, helps.get(name, ""), sub))
    return tuple(found)


def top_options(parser: argparse.ArgumentParser) -> tuple[Option, ...]:
    """The options of ``devster`` itself (``--help``, ``--version``)."""
    return tuple(_option(a) for a in parser._actions if a.option_strings)


# ---------------------------------------------------------------------- bash


def _bash_branch(command: Command) -> list[str]:
    words = " ".join(flag for option in command.options for flag in option.flags)
    lines = [f"        {command.name})", f'            options="{words}"']
    cases: list[str] = []
    replies = {
        "path": '_devster_paths "$cur"',
        "command": 'COMPREPLY=($(compgen -W "$commands" -- "$cur"))',
        "text": "COMPREPLY=()",  # free text: nothing to offer, and no option either
    }
    for kind, reply in replies.items():
        flags = [
            flag for option in command.options if option.value == kind for flag in option.flags
        ]
        if flags:
            cases.append(f"                {'|'.join(flags)}) {reply}; return 0 ;;")
    for option in command.options:
        if option.value == "choice":
            reply = f'COMPREPLY=($(compgen -W "{" ".join(option.choices)}" -- "$cur"))'
            cases.append(f"                {'|'.join(option.flags)}) {reply}; return 0 ;;")
    if cases:
        lines += ["            case $prev in", *cases, "            esac"]
    if command.positional == "names":
        given = " ".join(command.file_flags)
        lines.append(f'            _devster_names "$cur" {command.name} {given}; return 0')
    elif command.positional == "path":
        lines.append('            [[ $cur == -* ]] || { _devster_paths "$cur"; return 0; }')
    elif command.positional == "choice":
        words = " ".join(command.choices)
        lines.append(
            f'            [[ $cur == -* ]] || {{ COMPREPLY=($(compgen -W "{words}" -- "$cur")); '
            "return 0; }"
        )
    lines.append("            ;;")
    return lines


BASH_HEAD = r"""# bash completion for devster @VERSION@, generated by `devster completion bash`.
# Install: devster completion bash > ~/.local/share/bash-completion/completions/devster
#      or: source <(devster completion bash)     (in ~/.bashrc)

_devster_paths() {
    local IFS=$'\n'
    compopt -o filenames 2>/dev/null
    COMPREPLY=($(compgen -f -- "$1"))
}

# _devster_names CUR COMMAND FILE-FLAG...: the names COMMAND's TASK arguments accept, from
# the project named by the command line's -f/--file (else found like devster up does).
_devster_names() {
    local cur=$1 cmd=$2 file= i
    shift 2
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$options" -- "$cur"))
        return 0
    fi
    for ((i = 1; i < COMP_CWORD - 1; i++)); do
        local flag
        for flag in "$@"; do
            [[ ${COMP_WORDS[i]} == "$flag" ]] && file=${COMP_WORDS[i + 1]}
        done
    done
    file=${file/#\~/$HOME}
    local found
    found=$(devster completion --names "$cmd" ${file:+--file "$file"} 2>/dev/null)
    COMPREPLY=($(compgen -W "$found" -- "$cur"))
}

_devster() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
    local cmd= options= i
    local commands="@COMMANDS@"
    for ((i = 1; i < COMP_CWORD; i++)); do
        if [[ ${COMP_WORDS[i]} != -* ]]; then
            cmd=${COMP_WORDS[i]}
            break
        fi
    done
    if [[ -z $cmd ]]; then
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W "@TOP_OPTIONS@" -- "$cur"))
        else
            COMPREPLY=($(compgen -W "$commands" -- "$cur"))
        fi
        return 0
    fi
    case $cmd in
"""

BASH_TAIL = """\
        *) return 0 ;;
    esac
    COMPREPLY=($(compgen -W "$options" -- "$cur"))
}

complete -F _devster devster
"""


def bash_script(commands: Sequence[Command], top: Sequence[Option], version: str) -> str:
    """The bash script: a ``_devster`` function registered with ``complete -F``."""
    head = (
        BASH_HEAD.replace("@VERSION@", version)
        .replace("@COMMANDS@", " ".join(c.name for c in commands))
        .replace("@TOP_OPTIONS@", " ".join(f for o in top for f in o.flags))
    )
    body = [line for command in commands for line in _bash_branch(command)]
    return head + "\n".join(body) + "\n" + BASH_TAIL


# ---------------------------------------------------------------------- zsh


def _zsh_quote(text: str) -> str:
    """``text`` inside a single-quoted zsh word."""
    return text.replace("'", "'\\''")


def _zsh_bracket(text: str) -> str:
    """``text`` as an ``_arguments`` description (inside ``[...]``)."""
    return _zsh_quote(text.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]"))


def _zsh_message(text: str) -> str:
    return _zsh_quote(text.replace(":", "\\:"))


def _zsh_value(option: Option) -> str:
    """The ``:MESSAGE:ACTION`` part of an option taking a value."""
    message = _zsh_message(option.metavar or "value")
    if option.value == "choice":
        return f":{message}:({' '.join(option.choices)})"
    if option.value == "path":
        return f":{message}:_files"
    if option.value == "command":
        return f":{message}:_devster_commands"
    return f":{message}: "


def _zsh_option(option: Option) -> str:
    exclusive = f"({' '.join(option.flags)})" if len(option.flags) > 1 else ""
    if option.repeatable:
        exclusive = "*"
    value = "" if option.value == "" else _zsh_value(option)
    description = f"[{_zsh_bracket(option.help)}]"
    if len(option.flags) == 1:
        return f"'{exclusive}{option.flags[0]}{description}{value}'"
    names = ",".join(option.flags)
    return f"'{exclusive}'{{{names}}}'{description}{value}'"


def _zsh_positional(command: Command) -> str | None:
    if command.positional == "names":
        # In braces: evaluated as is (a bare function would get compadd options first).
        call = f"_devster_names {command.name} {' '.join(command.file_flags)}".rstrip()
        action = "{" + call + "}"
    elif command.positional == "path":
        action = "_files"
    elif command.positional == "choice":
        action = f"({' '.join(command.choices)})"
    else:
        return None
    message = _zsh_message(command.metavar)
    if command.nargs in ("+", "*"):
        return f"'*:{message}:{action}'"
    if command.nargs == "?":
        return f"'::{message}:{action}'"
    return f"':{message}:{action}'"


def _zsh_function(command: Command) -> list[str]:
    specs = [_zsh_option(option) for option in command.options]
    positional = _zsh_positional(command)
    if positional is not None:
        specs.append(positional)
    name = command.name.replace("-", "_")
    lines = [f"_devster_cmd_{name}() {{", "    _arguments -s -S \\"]
    lines += [f"        {spec} \\" for spec in specs[:-1]]
    lines += [f"        {specs[-1]}", "}", ""]
    return lines


ZSH_HEAD = r"""#compdef devster
# zsh completion for devster @VERSION@, generated by `devster completion zsh`.
# Install: devster completion zsh > "${fpath[1]}/_devster"   (then restart zsh)
#      or: source <(devster completion zsh)     (in ~/.zshrc, after compinit)

_devster_commands() {
    local -a commands
    commands=(
@COMMANDS@
    )
    _describe -t commands 'devster command' commands
}

# _devster_names COMMAND FILE-FLAG...: the names COMMAND's TASK arguments accept, from the
# project named by the command line's -f/--file (else found like devster up does).
_devster_names() {
    local cmd=$1 file= i
    shift
    for (( i = 2; i < CURRENT; i++ )); do
        (( ${argv[(Ie)$words[i]]} )) && file=$words[i+1]
    done
    local -a project names
    [[ -n $file ]] && project=(--file ${file/#\~/$HOME})
    names=(${(f)"$(devster completion --names $cmd $project 2>/dev/null)"})
    compadd -a names
}

"""

ZSH_TAIL = r"""_devster() {
    local curcontext=$curcontext state line
    typeset -A opt_args
    _arguments -C \
@TOP_OPTIONS@
        '1: :_devster_commands' \
        '*:: :->args' && return
    case $words[1] in
@BRANCHES@
    esac
}

# Autoloaded from $fpath, this file is the body of _devster: complete now.  Sourced, it
# registers the function.
if [[ $funcstack[1] == _devster ]]; then
    _devster "$@"
else
    compdef _devster devster
fi
"""


def zsh_script(commands: Sequence[Command], top: Sequence[Option], version: str) -> str:
    """The zsh script: ``_arguments`` specs per command, autoloadable or sourced."""
    listed = "\n".join(f"        '{_zsh_quote(c.name)}:{_zsh_message(c.help)}'" for c in commands)
    functions = [line for command in commands for line in _zsh_function(command)]
    top_specs = "\n".join(f"        {_zsh_option(option)} \\" for option in top)
    branches = "\n".join(
        f"        ({c.name}) _devster_cmd_{c.name.replace('-', '_')} ;;" for c in commands
    )
    head = ZSH_HEAD.replace("@VERSION@", version).replace("@COMMANDS@", listed)
    tail = ZSH_TAIL.replace("@TOP_OPTIONS@", top_specs).replace("@BRANCHES@", branches)
    return head + "\n".join(functions) + "\n" + tail


# ---------------------------------------------------------------------- fish


def _fish_quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _fish_option(command: str, option: Option) -> str:
    parts = ["complete -c devster", f"-n {_fish_quote(command)}"]
    for flag in option.flags:
        if flag.startswith("--"):
            parts.append(f"-l {flag[2:]}")
        elif len(flag) == 2:
            parts.append(f"-s {flag[1]}")
        else:
            parts.append(f"-o {flag[1:]}")
    if option.value == "choice":
        parts.append(f"-x -a {_fish_quote(' '.join(option.choices))}")
    elif option.value == "path":
        parts.append("-r -F")
    elif option.value == "command":
        parts.append("-x -a '(__devster_commands)'")
    elif option.value == "text":
        parts.append("-x")
    parts.append(f"-d {_fish_quote(option.help)}")
    return " ".join(parts)


def _fish_command(command: Command) -> list[str]:
    condition = f"__devster_is {command.name}"
    lines = [f"# devster {command.name}"]
    lines += [_fish_option(condition, option) for option in command.options]
    if command.positional == "names":
        flags = " ".join(command.file_flags)
        call = f"(__devster_names {command.name} {flags})".replace(" )", ")")
        lines.append(f"complete -c devster -n {_fish_quote(condition)} -a {_fish_quote(call)}")
    elif command.positional == "path":
        lines.append(f"complete -c devster -n {_fish_quote(condition)} -F")
    elif command.positional == "choice":
        words = _fish_quote(" ".join(command.choices))
        lines.append(f"complete -c devster -n {_fish_quote(condition)} -a {words}")
    return [*lines, ""]


FISH_HEAD = r"""# fish completion for devster @VERSION@, generated by `devster completion fish`.
# Install: devster completion fish > ~/.config/fish/completions/devster.fish

# The sub-command on the command line (the first word that is not an option), if any.
function __devster_command
    for word in (commandline -opc)[2..-1]
        if not string match -q -- '-*' $word
            echo $word
            return 0
        end
    end
    return 1
end

function __devster_is
    set -l command (__devster_command)
    test "$command" = "$argv[1]"
end

function __devster_commands
@COMMANDS@
end

# __devster_names COMMAND FILE-FLAG...: the names COMMAND's TASK arguments accept, from the
# project named by the command line's -f/--file (else found like devster up does).
function __devster_names
    set -l words (commandline -opc)
    set -l file
    for i in (seq 2 (math (count $words) - 1))
        if contains -- $words[$i] $argv[2..-1]
            set file $words[(math $i + 1)]
        end
    end
    if test -n "$file"
        set file (string replace -r '^~' $HOME -- $file)
        devster completion --names $argv[1] --file $file 2>/dev/null
    else
        devster completion --names $argv[1] 2>/dev/null
    end
end

complete -c devster -f
"""


def fish_script(commands: Sequence[Command], top: Sequence[Option], version: str) -> str:
    """The fish script: ``complete`` lines conditioned on the sub-command."""
    listed = "\n".join(f"    printf '%s\\t%s\\n' {c.name} {_fish_quote(c.help)}" for c in commands)
    lines = [FISH_HEAD.replace("@VERSION@", version).replace("@COMMANDS@", listed)]
    lines += [_fish_option("not __devster_command", option) for option in top]
    lines += [
        f"complete -c devster -n 'not __devster_command' -a {c.name} -d {_fish_quote(c.help)}"
        for c in commands
    ]
    lines.append("")
    lines += [line for command in commands for line in _fish_command(command)]
    return "\n".join(lines)


# ---------------------------------------------------------------------- the command

GENERATORS: dict[str, Callable[[Sequence[Command], Sequence[Option], str], str]] = {
    "bash": bash_script,
    "zsh": zsh_script,
    "fish": fish_script,
}


def script(shell: str, parser: argparse.ArgumentParser) -> str:
    """The completion script for ``shell`` (one of :data:`SHELLS`).

    Args:
        shell: bash, zsh or fish.
        parser: The whole command tree, as ``build_parser(None)`` builds it.
    """
    from devster_tui import __version__

    return GENERATORS[shell](commands_of(parser), top_options(parser), __version__)


def names(command: str, loaded_file: str | None, parser: argparse.ArgumentParser) -> int:
    """Print the names ``command``'s TASK arguments accept, one a line.

    Returns:
        0; 2 when no project file loads (the reason is on stderr); 64 for an unknown command.
    """
    from devster_tui.commands.options import load_from_args

    if command not in {c.name for c in commands_of(parser)}:
        sys.stderr.write(f"devster completion: --names: no such command: {command}\n")
        return ExitCode.USAGE
    loaded = load_from_args(argparse.Namespace(file=loaded_file, profile=[]))
    if loaded is None:
        return ExitCode.CONFIG
    project = loaded.project
    if command == "run":
        found = [name for name, task in project.tasks.items() if task.kind == "job"]
    else:
        found = list(project.tasks)
        if command == "trigger":
            found += [name for name in project.observers if name not in project.tasks]
    sys.stdout.write("".join(f"{name}\n" for name in found))
    return ExitCode.OK


def run(args: argparse.Namespace) -> int:
    """Print the script for ``SHELL``, or the names for ``--names COMMAND``.

    The command tree comes from the composition root (``args._full_parser``, set by
    devster_tui.cli): commands never import the CLI module.
    """
    full_parser: Callable[[], argparse.ArgumentParser] = args._full_parser
    if args.names is not None:
        return names(args.names, args.file, full_parser())
    if args.shell is None:
        sys.stderr.write("devster completion: name a shell: bash, zsh or fish\n")
        return ExitCode.USAGE
    sys.stdout.write(script(args.shell, full_parser()))
    return ExitCode.OK
