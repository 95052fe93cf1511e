"""Checkpoint writes are atomic, and --resume never picks a partial file."""
import os
import signal
import textwrap
import time

import pytest
import torch
from dp_test_utils import TOY_PRETRAIN
from forked_cli import Pending, ToolRun
from mmengine.config import Config

from direct_pretrain.runtime.atomic_save import find_resumable_checkpoint, is_complete_checkpoint


@pytest.mark.slow  # writer processes, killed
def test_kill_during_checkpoint_writes_never_leaves_a_partial_file(tmp_path):
    """A child (forked from the tool server: its own process) keeps saving ~40 MB checkpoints
    through mmengine with the backend the package's configs select for the checkpoint hook; it
    is SIGKILLed at staggered moments. Every file under a final name must load."""
    backend_args = Config.fromfile(TOY_PRETRAIN).default_hooks.checkpoint.backend_args.to_dict()
    script = tmp_path / 'writer.py'
    script.write_text(textwrap.dedent(f'''
        import sys, torch
        import direct_pretrain  # noqa: F401  (registers the atomic_local backend)
        from mmengine.runner.checkpoint import save_checkpoint
        state = {{'state_dict': {{'w': torch.randn(10_000_000)}}, 'meta': {{'epoch': 0}}}}
        for i in range(1000):
            state['meta']['epoch'] = i
            save_checkpoint(state, {str(tmp_path)!r} + f'/epoch_{{i % 3}}.pth', backend_args={backend_args!r})
            print('saved', i, flush=True)
    '''))
    for delay in (0.05, 0.13, 0.29):
        pending = Pending([ToolRun(str(script), [], str(tmp_path))])
        writer = pending.runs[0]
        deadline = time.time() + 120
        while 'saved' not in open(writer.stdout_path).read():  # one complete file, then kill mid-write
            assert time.time() < deadline and not pending.finished(), open(writer.stderr_path).read()[-3000:]
            time.sleep(0.01)
        time.sleep(delay)
        os.kill(writer.pid, signal.SIGKILL)
        pending.wait(timeout=30)
        assert writer.returncode == -signal.SIGKILL
    finals = [n for n in os.listdir(tmp_path) if n.startswith('epoch_') and n.endswith('.pth')]
    assert finals, os.listdir(tmp_path)
    for name in finals:
        ckpt = torch.load(tmp_path / name, weights_only=True)
        assert ckpt['state_dict']['w'].numel() == 10_000_000
    leftovers = [n for n in os.listdir(tmp_path) if n.endswith('.tmp')]
    # a killed writer may leave its temporary file, never a partial final one
    assert all(n.startswith('.epoch_') for n in leftovers)


def test_resume_skips_partial_checkpoint_and_truncated_marker(tmp_path):
    good = tmp_path / 'epoch_1.pth'
    torch.save({'meta': {'epoch': 1}}, good)
    partial = tmp_path / 'epoch_2.pth'
    partial.write_bytes(good.read_bytes()[:-100])  # what a plain open/write leaves when killed
    assert is_complete_checkpoint(str(good)) and not is_complete_checkpoint(str(partial))
    marker = tmp_path / 'last_checkpoint'
    marker.write_text(str(partial))
    assert find_resumable_checkpoint(str(tmp_path)) == str(good)
    marker.write_text('')  # killed between truncate and write
    assert find_resumable_checkpoint(str(tmp_path)) == str(good)
    marker.write_text(str(good))
    assert find_resumable_checkpoint(str(tmp_path)) == str(good)
    assert find_resumable_checkpoint(str(tmp_path / 'nowhere')) is None


def test_the_temporary_name_pattern_is_the_writers():
    """The random part the clean-up matches is exactly mkstemp's (8 of tempfile's characters)."""
    import tempfile

    from direct_pretrain.runtime.atomic_save import RUN_TEMP_NAME_RE, TEMP_NAME_ALPHABET
    assert TEMP_NAME_ALPHABET == tempfile._RandomNameSequence.characters
    names = [next(tempfile._get_candidate_names()) for _ in range(200)]
    assert all(len(n) == 8 and RUN_TEMP_NAME_RE.match(f'.epoch_12.pth.{n}.tmp') for n in names)
