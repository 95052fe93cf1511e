"""The command line a run was started with, kept so that the run can print how to restart it.

Why: a diverged run ends with the command that resumes it with a lower LR or another seed.
Rebuilt from the config alone, that command lost ``--data-root`` and every other
``--cfg-options``: run as printed, it resumed on another dataset and trained on, exit 0. The
only faithful source is the command itself: the train tool records it with
:func:`record_run_command` (the words as typed, split into the tool's options), and
:func:`restart_command` edits exactly two things - ``--resume`` and the ``--cfg-options`` keys
it changes - and keeps every other word.

How the run was started:

- ``dist_train.sh`` / ``slurm_train.sh`` export ``DP_LAUNCH_HEAD`` (the launcher's own
  words, e.g. ``./dist_train.sh CFG 2``), ``DP_LAUNCH_TAIL`` (the tool options after them,
  shell-quoted) and ``DP_LAUNCH_ENV`` (the launcher settings given, e.g. ``PORT=29501``);
  the restart command is then the launcher's command, not one worker's.
- otherwise ``sys.orig_argv``: ``python tools/train.py ...``, ``python -m
  direct_pretrain.cli.train ...``, or a console script (``dp-train ...``).
- a tool run in-process (``main(argv)``) records ``python -m <tool module>``.

The record is a plain dict (it travels in the config as ``run_command`` and is dumped with
it): ``cwd``, ``env`` (launcher settings), ``prefix`` (words before the options) and ``args``
(``[{'dest': ..., 'words': [...]}, ...]``, one entry per option or positional as typed).
"""
import argparse
import os
import os.path as osp
import shlex
import shutil
import sys
from typing import Any, Dict, List, Optional, Sequence

__all__ = ['LAUNCH_HEAD_ENV', 'LAUNCH_TAIL_ENV', 'LAUNCH_ENV_ENV', 'split_options', 'record_run_command',
           'restart_command']

LAUNCH_HEAD_ENV = 'DP_LAUNCH_HEAD'
LAUNCH_TAIL_ENV = 'DP_LAUNCH_TAIL'
LAUNCH_ENV_ENV = 'DP_LAUNCH_ENV'


def _option_like(word: str) -> bool:
    if not word.startswith('-') or word == '-':
        return False
    try:
        float(word)  # a negative number is a value
        return False
    except ValueError:
        return True


def _action_for(parser: argparse.ArgumentParser, word: str) -> Optional[argparse.Action]:
    """The action ``word`` (``--flag`` or ``--flag=value``, possibly abbreviated) selects."""
    name = word.split('=', 1)[0]
    actions = parser._option_string_actions  # noqa: SLF001  (argparse keeps no public lookup)
    if name in actions:
        return actions[name]
    if parser.allow_abbrev and name.startswith('--'):
        matches = {actions[o] for o in actions if o.startswith(name)}
        if len(matches) == 1:
            return matches.pop()
    return None


def split_options(parser: argparse.ArgumentParser, words: Sequence[str]) -> List[Dict[str, Any]]:
    """``words`` as ``parser`` reads them: one ``{'dest', 'words'}`` entry per option with its
    values, or per positional (dest ``'positional'``), in order, words untouched."""
    entries, index = [], 0
    while index < len(words):
        word = words[index]
        action = _action_for(parser, word) if _option_like(word) else None
        if action is None:
            entries.append(dict(dest='positional', words=[word]))
            index += 1
            continue
        taken = [word]
        index += 1
        if '=' not in word:
            nargs = action.nargs
            if nargs is None:
                wanted = 1
            elif isinstance(nargs, int):
                wanted = nargs
            elif nargs == '?':
                wanted = 1 if index < len(words) and not _option_like(words[index]) else 0
            else:  # '+', '*', '...'
                wanted = len(words)
            while wanted and index < len(words) and not _option_like(words[index]):
                taken.append(words[index])
                index += 1
                wanted -= 1
        entries.append(dict(dest=action.dest, words=taken))
    return entries


def _contains(words: Sequence[str], part: Sequence[str]) -> bool:
    if not part:
        return True
    return any(list(words[i:i + len(part)]) == list(part) for i in range(len(words) - len(part) + 1))


def _console_script(prefix: List[str]) -> List[str]:
    """``[python, /venv/bin/dp-train]`` -> ``['dp-train']`` when that name runs this very script."""
    if len(prefix) == 2:
        name = osp.basename(prefix[1])
        found = shutil.which(name)
        if name.startswith('dp-') and found and osp.realpath(found) == osp.realpath(prefix[1]):
            return [name]
    return prefix


def record_run_command(parser: argparse.ArgumentParser, argv: Optional[Sequence[str]], tool_module: str) -> dict:
    """The record of how this process's tool was started (see the module docstring).

    Args:
        parser (ArgumentParser): The tool's parser (to tell options and their values apart).
        argv (Sequence[str], optional): The tool's arguments; None means ``sys.argv[1:]``.
        tool_module (str): The tool's module, for an in-process run (``main(argv)``).
    """
    in_process = argv is not None
    args = list(sys.argv[1:] if argv is None else argv)
    head, tail = os.environ.get(LAUNCH_HEAD_ENV), os.environ.get(LAUNCH_TAIL_ENV)
    env: Dict[str, str] = {}
    if head is not None:
        try:
            head_words, tail_words = shlex.split(head), shlex.split(tail or '')
            launch_env = shlex.split(os.environ.get(LAUNCH_ENV_ENV, ''))
        except ValueError:
            head_words = None
        # the launcher's workers run the tool with its options inside their own arguments
        if head_words and _contains(args, tail_words):
            env = dict(word.split('=', 1) for word in launch_env if '=' in word)
            return dict(cwd=os.getcwd(), env=env, prefix=head_words, args=split_options(parser, tail_words))
    orig = list(getattr(sys, 'orig_argv', []))
    if not in_process and orig and (not args or orig[-len(args):] == args):
        prefix = _console_script(orig[:len(orig) - len(args)])
    else:
        prefix = [sys.executable, '-m', tool_module]
    return dict(cwd=os.getcwd(), env=env, prefix=prefix, args=split_options(parser, args))


def restart_command(record: dict, resume: Optional[str] = None,
                    cfg_options: Optional[Dict[str, Any]] = None) -> str:
    """The recorded command with ``--resume resume`` and ``--cfg-options`` ``cfg_options`` set,
    as one shell line (``cd <cwd> && ...``); every other word as it was.

    An earlier ``--resume`` is replaced when ``resume`` is given; an earlier value of a key in
    ``cfg_options`` is dropped from its ``--cfg-options``.
    """
    cfg_options = dict(cfg_options or {})
    words = []
    for entry in record.get('args', []):
        dest, entry_words = entry['dest'], list(entry['words'])
        if dest == 'resume' and resume is not None:
            continue
        if dest == 'cfg_options' and cfg_options:
            kept = [w for w in entry_words[1:] if w.split('=', 1)[0] not in cfg_options]
            if '=' in entry_words[0]:  # --cfg-options=k=v: the first value is inside the flag word
                flag, first = entry_words[0].split('=', 1)
                kept = ([first] if first.split('=', 1)[0] not in cfg_options else []) + kept
                entry_words = [flag]
            entry_words = entry_words[:1] + kept if kept else []
        words.extend(entry_words)
    if resume is not None:
        words += ['--resume', resume]
    if cfg_options:
        words += ['--cfg-options'] + [f'{key}={value}' for key, value in cfg_options.items()]
    env = ' '.join(f'{key}={shlex.quote(str(value))}' for key, value in record.get('env', {}).items())
    command = ' '.join(filter(None, [env, shlex.join([*record.get('prefix', []), *words])]))
    cwd = record.get('cwd')
    return f'cd {shlex.quote(cwd)} && {command}' if cwd else command
