"""A work dir a run cannot use ends ``dp-train`` (and ``dp-test``) with one ``error:`` line naming
the path and the fix, exit code 2, and nothing written anywhere: a ``.lock`` that is a symbolic
link (the user's file it points to stays as it was; a dangling one creates nothing), a folder
or a fifo; a work dir that is a file; a read-only work dir, or a missing one under a read-only
folder.

Read-only: permission bits do not stop root, so as root the folders are made immutable
(``chattr +i``), which stops root too; where that is not allowed either, that test is skipped.
"""
import contextlib
import os
import os.path as osp
import subprocess

import pytest
from dp_test_utils import write_tiny_stage_configs
from forked_cli import ToolRun, run_tools


def snapshot(root: str) -> dict:
    """Every path under ``root`` (links not followed) with its type, size, time and content."""
    found = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = osp.join(folder, name)
            info = os.lstat(path)
            content = open(path, 'rb').read() if osp.isfile(path) and not osp.islink(path) else None
            found[path] = (info.st_mode, info.st_size, info.st_mtime_ns, content)
    return found


def check_refused(run: ToolRun, *expected: str) -> None:
    assert run.returncode == 2, run.describe()
    assert len(run.error_lines) == 1 and 'Traceback' not in run.output, run.describe()
    for text in expected:
        assert text in run.error_lines[0], (text, run.error_lines[0])


@pytest.fixture()
def config(tmp_path, tiny_coco_root):
    return write_tiny_stage_configs(str(tmp_path / 'cfg'), tiny_coco_root)[0]


def test_a_lock_that_is_not_a_regular_file_is_refused(tmp_path, config):
    cases = tmp_path / 'cases'
    notes = cases / 'my_notes.txt'
    for name in ('link', 'dangling', 'folder', 'fifo'):
        (cases / name).mkdir(parents=True)
    notes.write_text('a user file outside the work dir')
    os.symlink(notes, cases / 'link' / '.lock')
    os.symlink(cases / 'not_there.txt', cases / 'dangling' / '.lock')
    (cases / 'folder' / '.lock').mkdir()
    os.mkfifo(cases / 'fifo' / '.lock')
    before = snapshot(str(cases))
    link, dangling, folder, fifo = run_tools(
        [ToolRun('train', [config, '--work-dir', str(cases / name)], str(tmp_path))
         for name in ('link', 'dangling', 'folder', 'fifo')], timeout=600)
    lock = str(cases / 'link' / '.lock')
    check_refused(link, f"{lock!r} is a symbolic link (to {str(notes)!r})", f"rm {lock!r}")
    check_refused(dangling, 'is a symbolic link', str(cases / 'not_there.txt'))
    check_refused(folder, f"{str(cases / 'folder' / '.lock')!r} is a folder", 'rm -r')
    check_refused(fifo, 'is a fifo')
    assert snapshot(str(cases)) == before  # the user's file untouched, nothing created anywhere


@contextlib.contextmanager
def read_only(*paths):
    """``paths`` unwritable for this process (root included), undone afterwards."""
    if os.geteuid() == 0:
        done = [p for p in paths if subprocess.run(['chattr', '+i', str(p)], capture_output=True).returncode == 0]
        if len(done) < len(paths):
            for path in done:
                subprocess.run(['chattr', '-i', str(path)], check=True)
            pytest.skip('running as root where chattr +i is not allowed: no way to make a folder read-only')
        undo = ['chattr', '-i']
    else:
        for path in paths:
            os.chmod(path, 0o555)
    try:
        yield
    finally:
        for path in paths:
            if os.geteuid() == 0:
                subprocess.run(undo + [str(path)], check=True)
            else:
                os.chmod(path, 0o755)


def test_a_file_or_a_read_only_folder_is_refused(tmp_path, config):
    cases = tmp_path / 'cases'
    (cases / 'read_only').mkdir(parents=True)
    (cases / 'read_only_parent').mkdir()
    (cases / 'a_file').write_text('not a folder')
    with read_only(cases / 'read_only', cases / 'read_only_parent'):
        before = snapshot(str(cases))
        a_file, ro, ro_parent = run_tools(
            [ToolRun('train', [config, '--work-dir', str(path)], str(tmp_path))
             for path in (cases / 'a_file', cases / 'read_only', cases / 'read_only_parent' / 'new')], timeout=600)
        assert snapshot(str(cases)) == before
    check_refused(a_file, f"work dir {str(cases / 'a_file')!r} is a file, not a folder", '--work-dir')
    check_refused(ro, f"work dir {str(cases / 'read_only')!r} is not writable", '--work-dir')
    check_refused(ro_parent, f"{str(cases / 'read_only_parent')!r} is not writable", 'cannot be created')


def test_dp_test_refuses_a_work_dir_that_is_a_file(tmp_path, toy_chain):
    work_dir = tmp_path / 'results'
    work_dir.write_text('not a folder')
    run, = run_tools([ToolRun('test', [toy_chain['ft_cfg'], toy_chain['ft_ckpt'], '--work-dir', str(work_dir)],
                              str(tmp_path))])
    check_refused(run, f'work dir {str(work_dir)!r} is a file, not a folder')
    assert work_dir.read_text() == 'not a folder'
