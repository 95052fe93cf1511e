"""Run the package's command-line tools as real processes without paying their start-up each time.

Every tool begins by importing mmdet, which costs 8-15 s of a loaded 2-core machine; a
matrix of a dozen failing runs would spend minutes importing. Here one interpreter imports
the package once and then forks one child per run: the child changes to the run's folder,
points its stdout/stderr at files, sets ``sys.argv`` and runs the tool's module as
``__main__`` exactly like ``python -m direct_pretrain.cli.<tool> ARGS`` (same ``main``,
same exit code, same output). Runs are started together and waited for together.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from typing import List, Sequence

from dp_test_utils import PYTHON, python_env

_SERVER = r'''
import json, os, runpy, sys, traceback
import direct_pretrain  # noqa: F401  (what every tool imports first)
import direct_pretrain.cli.train, direct_pretrain.cli.test, direct_pretrain.cli.infer  # noqa: F401
import direct_pretrain.cli.convert_detectron, direct_pretrain.cli.convert_release  # noqa: F401
import direct_pretrain.cli.chain, direct_pretrain.cli.report  # noqa: F401
print('ready', flush=True)
children = {}
for line in sys.stdin:
    job = json.loads(line)
    if job.get('wait'):
        break
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            for fd, name in ((1, job['stdout']), (2, job['stderr'])):
                out = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                os.dup2(out, fd)
                os.close(out)
            os.chdir(job['cwd'])
            sys.argv = [job['module']] + job['args']
            runpy.run_module(job['module'], run_name='__main__', alter_sys=True)
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    children[pid] = job['id']
while children:
    pid, status = os.wait()
    print(json.dumps(dict(id=children.pop(pid), rc=os.waitstatus_to_exitcode(status))), flush=True)
'''


@dataclass
class ToolRun:
    """One tool invocation and, after :func:`run_tools`, its outcome."""
    tool: str  # 'train', 'test', 'infer', 'convert_detectron', 'convert_release', 'chain', 'report'
    args: Sequence[str]
    cwd: str
    returncode: int = -1
    stdout: str = ''
    stderr: str = ''

    @property
    def error_lines(self) -> List[str]:
        return [line for line in self.stderr.splitlines() if line.startswith('error:')]


def run_tools(runs: Sequence[ToolRun], timeout: float = 900) -> Sequence[ToolRun]:
    """Run all ``runs`` concurrently as forked tool processes; fills in their outcome."""
    server = subprocess.Popen([PYTHON, '-c', _SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, env=python_env())
    outputs = tempfile.mkdtemp(prefix='forked_cli_')  # outside the runs' folders: they must stay untouched
    try:
        assert server.stdout.readline().strip() == 'ready', 'the tool server did not start'
        for index, run in enumerate(runs):
            os.makedirs(run.cwd, exist_ok=True)
            job = dict(id=index, module=f'direct_pretrain.cli.{run.tool}', args=list(run.args), cwd=run.cwd,
                       stdout=os.path.join(outputs, f'{index}.out'), stderr=os.path.join(outputs, f'{index}.err'))
            server.stdin.write(json.dumps(job) + '\n')
        server.stdin.write(json.dumps(dict(wait=True)) + '\n')
        server.stdin.flush()
        out, _ = server.communicate(timeout=timeout)
        for line in out.splitlines():
            done = json.loads(line)
            run = runs[done['id']]
            run.returncode = done['rc']
            for stream in ('out', 'err'):
                with open(os.path.join(outputs, f'{done["id"]}.{stream}')) as f:
                    setattr(run, f'std{stream}', f.read())
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        shutil.rmtree(outputs, ignore_errors=True)
    return runs


if __name__ == '__main__':  # manual use: python forked_cli.py TOOL ARGS...
    result = run_tools([ToolRun(sys.argv[1], sys.argv[2:], os.getcwd())])[0]
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    sys.exit(result.returncode)
