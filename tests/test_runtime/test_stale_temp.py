"""Stale temporary files of the atomic writer: the pattern matches what a killed writer
really leaves, and the clean-up removes those and nothing else - not a user's dot-file of the
same shape, a folder or a link."""
import os
import signal
import subprocess
import tempfile
import textwrap

from dp_test_utils import PYTHON, REPO_ROOT, python_env

from direct_pretrain.runtime.stale_temp import find_stale_temp_files, is_writer_temp_name, remove_stale_temp_files


def test_a_writer_killed_mid_write_leaves_a_file_the_pattern_matches(tmp_path):
    """The writer is stopped inside its fsync (the temporary file exists, the rename has
    not happened) and SIGKILLed there."""
    script = tmp_path / 'writer.py'
    script.write_text(textwrap.dedent(f'''
        import importlib.util, os, time
        # the writer module alone (it needs mmengine.fileio), not the whole package
        spec = importlib.util.spec_from_file_location('atomic_save', {REPO_ROOT!r} +
                                                      '/direct_pretrain/runtime/atomic_save.py')
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        atomic_write_bytes = module.atomic_write_bytes
        def stuck(fd):
            print('in fsync', flush=True)
            time.sleep(60)
        os.fsync = stuck
        atomic_write_bytes(b'x' * 1000, {str(tmp_path / 'wd' / 'epoch_2.pth')!r})
    '''))
    proc = subprocess.Popen([PYTHON, str(script)], env=python_env(), stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == 'in fsync'
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    left = os.listdir(tmp_path / 'wd')
    assert len(left) == 1 and left[0].startswith('.epoch_2.pth.') and is_writer_temp_name(left[0]), left
    assert find_stale_temp_files(str(tmp_path / 'wd')) == [str(tmp_path / 'wd' / left[0])]


def test_cleanup_removes_only_the_writers_files(tmp_path, caplog):
    stale = []
    for target in ('epoch_1.pth', 'last_checkpoint', 'iter_200.pth', 'best_coco_bbox_mAP_epoch_3.pth'):
        fd, path = tempfile.mkstemp(prefix=f'.{target}.', suffix='.tmp', dir=tmp_path)  # the writer's own call
        os.write(fd, b'partial')
        os.close(fd)
        stale.append(path)
    keep = ['epoch_1.pth', '.epoch_1.pth.tmp', 'notes.tmp', '.epoch_1.pth.abc.tmp', 'epoch_1.pth.abcdefgh.tmp',
            '.epoch_1.pth.ABCDEFGH.tmp', '.lock',
            # a user's files of the same shape: not a name the run's writer gives its files
            '.notes.20261203.tmp', '.train_log.md.backup_1.tmp', '.model.pth.abcdefgh.tmp', '.epoch_x.pth.abcdefgh.tmp']
    for name in keep:
        (tmp_path / name).write_bytes(b'keep')
    os.mkdir(tmp_path / '.epoch_3.pth.abcdefgh.tmp')  # a folder is never removed
    os.symlink(tmp_path / 'epoch_1.pth', tmp_path / '.epoch_4.pth.abcdefgh.tmp')  # nor a link
    with caplog.at_level('WARNING'):
        removed = remove_stale_temp_files(str(tmp_path))
    assert sorted(removed) == sorted(stale)
    assert all(not os.path.exists(p) for p in stale)
    assert sorted(os.listdir(tmp_path)) == sorted(keep + ['.epoch_3.pth.abcdefgh.tmp', '.epoch_4.pth.abcdefgh.tmp'])
    assert all((tmp_path / name).read_bytes() == b'keep' for name in keep)
    assert 'removed 4 stale temporary checkpoint file(s)' in caplog.text
    assert remove_stale_temp_files(str(tmp_path)) == [] and remove_stale_temp_files(str(tmp_path / 'no')) == []
