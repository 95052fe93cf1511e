"""Runs that many tests read: built once per session, shared by every xdist worker.

Why: the toy chain (pretrain -> finetune -> test through ``dp-chain``) is the costliest thing
the suite makes, and half a dozen files assert on it; two files use the installed wheel. Here
each run is built by whichever worker gets its file lock first, in a job forked from the tool
server (``forked_cli.py``), started in the background when the session begins; the other
worker waits on the lock and reads the result. A run lives in ``<session tmp>/shared/<name>/``, ``done.json`` (or
``failed.json``) saying how it went.

The runs are read-only: a test that changes one works on a copy (the ``toy_chain_copy``
fixture); each worker checks at the end of its session that its tests changed nothing.

Also a script: ``python shared_runs.py NAME FOLDER`` builds run NAME into FOLDER (what the
forked job runs).
"""
import fcntl
import io
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import sysconfig
import traceback
import venv
from typing import Callable, Dict, Optional

from forked_cli import Pending, ToolRun, python_env, run_tools, stage_command

HERE = osp.abspath(__file__)
TOY_SET = dict(num_train=8, num_val=4, min_long_side=160, max_long_side=224, max_objects=3, seed=1)


def make_toy_set(root: str) -> str:
    """The tiny toy COCO set (8 train / 4 val images, long side 160-224): the smallest on which a
    chain trains several iterations per stage and evaluates every mask and box metric."""
    from direct_pretrain.datasets import ToyCocoSpec, generate_toy_coco
    generate_toy_coco(root, ToyCocoSpec(**TOY_SET))
    return root


def _build_toy_chain(folder: str) -> dict:
    """``dp-chain`` on tiny configs (1 + 1 epochs of 4 iterations, TensorBoard on): the stage
    work dirs, the chain's output, the report. Stages are forked from the tool server."""
    from dp_test_utils import write_tiny_stage_configs
    data = make_toy_set(osp.join(folder, 'data'))
    pre_cfg, ft_cfg = write_tiny_stage_configs(osp.join(folder, 'configs'), data)
    root = osp.join(folder, 'work')
    (run, ) = run_tools([ToolRun('chain', [pre_cfg, ft_cfg, '--work-root', root, '--tensorboard'], folder,
                                 fast_stages=True)])
    if run.returncode != 0:
        raise RuntimeError(run.describe())
    return dict(stdout=run.stdout, stderr=run.stderr)


def _build_trained_stage(folder: str) -> dict:
    """A 2-iteration training of the tiny pretrain config run the way the chain runs a stage
    (``chain.terminal.run_stage`` reading a ``dp-train`` child): its work dir and terminal."""
    from direct_pretrain.chain.terminal import run_stage
    from dp_test_utils import write_tiny_stage_configs
    data = make_toy_set(osp.join(folder, 'data'))
    pre_cfg, _ = write_tiny_stage_configs(osp.join(folder, 'configs'), data)
    work_dir = osp.join(folder, 'work')
    terminal = io.StringIO()
    # 8 images at 4 per batch: 2 iterations in the one epoch
    seconds = run_stage('pretrain', stage_command('direct_pretrain.cli.train') + [
        pre_cfg, '--work-dir', work_dir, '--cfg-options', 'train_dataloader.batch_size=4'],
                        work_dir, env=python_env(), total_epochs=1, out=terminal)
    return dict(config=pre_cfg, terminal=terminal.getvalue(), seconds=seconds)


def _run(cmd, cwd) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=python_env(), capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f'{cmd} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}')
    return proc.stdout


def _copy_of_the_checkout(dest: str) -> str:
    """The files git would commit (tracked, or new and not ignored), links kept as links."""
    from dp_test_utils import REPO_ROOT
    files = subprocess.run(['git', 'ls-files', '-z', '--cached', '--others', '--exclude-standard'], cwd=REPO_ROOT,
                           capture_output=True, check=True).stdout.decode().split('\0')
    for name in filter(None, files):
        source, target = osp.join(REPO_ROOT, name), osp.join(dest, name)
        if not osp.lexists(source):  # deleted in the working tree
            continue
        os.makedirs(osp.dirname(target), exist_ok=True)
        if osp.islink(source):
            os.symlink(os.readlink(source), target)
        else:
            shutil.copy2(source, target)
    return dest


def _build_installed_wheel(folder: str) -> dict:
    """The package as a user installs it: a wheel built from a copy of the checkout's files
    (nothing is written into the checkout), installed with ``--no-deps`` into a fresh virtual
    environment that sees the project's stack (torch, mmcv, mmdet, ...) through a ``.pth`` path
    entry but not the checkout (the editable install's ``.pth`` files there are not run)."""
    source = _copy_of_the_checkout(osp.join(folder, 'source'))
    wheels = osp.join(folder, 'dist')
    _run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '-q', '-w', wheels, source],
         folder)
    (wheel, ) = [osp.join(wheels, n) for n in os.listdir(wheels) if n.startswith('direct_pretrain-')]
    env_dir = osp.join(folder, 'venv')
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = osp.join(env_dir, 'bin', 'python')
    site = _run([python, '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'], folder).strip()
    with open(osp.join(site, 'stack.pth'), 'w') as f:
        f.write(sysconfig.get_paths()['purelib'] + '\n')
    _run([sys.executable, '-m', 'pip', '--python', python, 'install', '--no-deps', '-q', wheel], folder)
    return dict(wheel=wheel, python=python, bindir=osp.join(env_dir, 'bin'), site=site)


BUILDERS: Dict[str, Callable[[str], dict]] = {'toy_chain': _build_toy_chain, 'trained_stage': _build_trained_stage,
                                              'installed_wheel': _build_installed_wheel}


def build(name: str, folder: str) -> int:
    """Build run ``name`` into ``folder`` unless a worker did: under ``<folder>.lock``; writes
    ``done.json`` or ``failed.json`` (with the error) there. Returns an exit code."""
    os.makedirs(osp.dirname(folder), exist_ok=True)
    with open(folder + '.lock', 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if osp.exists(osp.join(folder, 'done.json')) or osp.exists(osp.join(folder, 'failed.json')):
            return 0
        shutil.rmtree(folder, ignore_errors=True)  # what a build killed midway (its worker ended) left
        os.makedirs(folder)
        try:
            result, marker = BUILDERS[name](folder), 'done.json'
        except BaseException:  # noqa: B902  (the other worker must learn why, not build again)
            result, marker = dict(error=traceback.format_exc()), 'failed.json'
        with open(osp.join(folder, marker + '.tmp'), 'w') as f:
            json.dump(result, f)
        os.replace(osp.join(folder, marker + '.tmp'), osp.join(folder, marker))
        return 0 if marker == 'done.json' else 1


def _listing(folder: str) -> Dict[str, tuple]:
    found = {}
    for parent, _, files in os.walk(folder):
        if '__pycache__' in parent:  # bytecode an interpreter of the run caches: not the run's content
            continue
        for name in files:
            path = osp.join(parent, name)
            stat = os.stat(path)
            found[osp.relpath(path, folder)] = (stat.st_size, stat.st_mtime_ns)
    return found


class SharedRun:
    """One shared run of this session: :meth:`start` in the background, :meth:`result` to wait."""

    def __init__(self, name: str, shared_root: str) -> None:
        self.name = name
        self.folder = osp.join(shared_root, name)
        self.pending: Optional[Pending] = None
        self.snapshot: Optional[Dict[str, tuple]] = None

    def start(self) -> None:
        if self.pending is None:
            self.pending = Pending([ToolRun(HERE, [self.name, self.folder], osp.dirname(self.folder))])

    def result(self) -> dict:
        """The run's ``done.json`` once built (by this worker's job or another's)."""
        self.start()
        (job, ) = self.pending.wait(timeout=1800) if self.pending.conns else self.pending.runs
        failed = osp.join(self.folder, 'failed.json')
        if osp.exists(failed):
            with open(failed) as f:
                raise RuntimeError(f'shared run {self.name!r} failed:\n{json.load(f)["error"][-6000:]}')
        if job.returncode != 0:
            raise RuntimeError(f'building shared run {self.name!r} failed:\n{job.describe()}')
        with open(osp.join(self.folder, 'done.json')) as f:
            result = json.load(f)
        if self.snapshot is None:
            self.snapshot = _listing(self.folder)
        return result

    def changes(self) -> list:
        """Files of the run that tests added, removed or rewrote since :meth:`result`."""
        if self.snapshot is None:
            return []
        now = _listing(self.folder)
        return sorted(k for k in set(now) | set(self.snapshot) if now.get(k) != self.snapshot.get(k))


def toy_chain_paths(folder: str, result: dict) -> dict:
    """What tests use of a toy chain rooted at ``folder`` (the shared one or a copy)."""
    root = osp.join(folder, 'work')
    pre_dir, ft_dir = osp.join(root, 'tiny_pretrain'), osp.join(root, 'tiny_finetune')
    return dict(tmp=folder, root=root, data=osp.join(folder, 'data') + '/',
                pre_cfg=osp.join(folder, 'configs', 'tiny_pretrain.py'),
                ft_cfg=osp.join(folder, 'configs', 'tiny_finetune.py'), pre_dir=pre_dir, ft_dir=ft_dir,
                pre_ckpt=osp.join(pre_dir, 'epoch_1.pth'), ft_ckpt=osp.join(ft_dir, 'epoch_1.pth'),
                metrics_file=osp.join(ft_dir, 'test_metrics.json'), report_dir=osp.join(ft_dir, 'report'),
                stdout=result['stdout'], stderr=result['stderr'], output=result['stdout'] + result['stderr'])


def copy_toy_chain(chain: dict, dest: str) -> dict:
    """A writable copy of ``chain``'s configs and work dirs under ``dest`` (modification times
    kept, so the chain still finds every stage finished; ``last_checkpoint`` files point into the
    copy); the data is shared."""
    for part in ('configs', 'work'):
        shutil.copytree(osp.join(chain['tmp'], part), osp.join(dest, part), symlinks=True)
    os.symlink(chain['data'].rstrip('/'), osp.join(dest, 'data'))
    for parent, _, files in os.walk(osp.join(dest, 'work')):
        if 'last_checkpoint' in files:
            path = osp.join(parent, 'last_checkpoint')
            with open(path) as f:
                target = f.read().strip()
            stat = os.stat(path)
            with open(path, 'w') as f:
                f.write(target.replace(chain['tmp'], dest))
            os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    return toy_chain_paths(dest, dict(stdout=chain['stdout'], stderr=chain['stderr']))


if __name__ == '__main__':  # python shared_runs.py NAME FOLDER
    sys.exit(build(sys.argv[1], sys.argv[2]))
