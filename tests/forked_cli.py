"""Run the package's command-line tools as real processes without paying their start-up each time.

Why: every tool begins by importing torch, mmcv, mmdet and the package, 6 CPU-seconds per
process (13 s of wall time on a loaded 2-core machine); the suite runs well over a hundred
tool processes. Here one interpreter per pytest worker (the *server*) imports all that once
and then forks one child per run. The child points its stdin/stdout/stderr at the caller's
files, changes to the run's folder, takes the run's environment and ``sys.argv`` and runs the
tool's module as ``__main__`` exactly like ``python -m direct_pretrain.cli.<tool> ARGS`` (or a
script like ``python tools/test.py ARGS``): same ``main``, same exit code, same output, its own
PID and process group. Runs are started together and waited for together.

The differences from a plain process: the server skips yapf's cosmetic reformatting of the
config text mmengine logs and dumps (see ``_skip_config_reformatting``), and reads MMDetection's
model index once rather than on every ``mmdet::`` lookup (``index_external_configs_once``).

Chains run their stages as child processes (``python -m direct_pretrain.cli.train``). A run
with ``fast_stages`` gets those from the server too: its stage command is a stdlib-only
*launcher* (``python -S forked_cli.py launch SOCKET -m MODULE ARGS``, 20 ms to start) that hands
its own stdin/stdout/stderr, folder and environment to the server and exits with the forked
stage's status; the chain still starts, reads, waits for and reports a child process.

Where the process itself is what a test checks (signals, kills, torchrun, the installed wheel),
start a real one instead.

Usage: ``run_tools([ToolRun('train', [...], cwd), ...])``; ``run_tool('test', *args, cwd=...)``
raises with the output's tail when the tool fails; ``Pending(runs)`` starts runs and gives their
PIDs and output files before ``.wait()`` (to signal one); ``stage_command(module)`` is the
launcher command for code that takes a command line (``chain.terminal.run_stage``);
``forked_python(folder)`` an interpreter path for shell launchers (``PYTHON=... dist_train.sh``).
"""
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

HERE = os.path.abspath(__file__)
PYTHON = sys.executable
SERVER_ENV = 'DP_TOOL_SERVER_{}'  # a server's socket, in the environment of every run it forks (per kind)

#: What each kind of server imports before forking. ``package``: what every tool of the package
#: imports, its tools included; ``mmdet``: what MMDetection's own tools import, the package not
#: (a config's ``custom_imports`` has to import it, as for any MMDetection user).
PRELOADS = {
    'package': ('direct_pretrain', 'direct_pretrain.apis', 'direct_pretrain.chain', 'direct_pretrain.report',
                'direct_pretrain.cli.*'),
    'mmdet': ('mmdet.apis', 'mmdet.models', 'mmdet.datasets', 'mmdet.engine', 'mmdet.evaluation',
              'mmdet.visualization', 'mmengine.runner', 'matplotlib.pyplot'),
}


@dataclass
class ToolRun:
    """One tool invocation and, after :func:`run_tools`, its outcome.

    ``tool``: a module of ``direct_pretrain.cli`` ('train', 'test', 'chain', ...), or the path of
    a Python script (``tools/test.py``, MMDetection's ``train.py``). ``env``: variables set on
    top of the test's environment. ``fast_stages``: stages of a chain forked from the server.
    """
    tool: str
    args: Sequence[str]
    cwd: str
    env: Optional[Dict[str, str]] = None
    fast_stages: bool = False
    returncode: int = -1
    stdout: str = ''
    stderr: str = ''
    seconds: float = 0.0
    pid: int = 0  # while it runs (Pending): its PID and process group, and where its output goes
    stdout_path: str = ''
    stderr_path: str = ''

    @property
    def error_lines(self) -> List[str]:
        return [line for line in self.stderr.splitlines() if line.startswith('error:')]

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def describe(self) -> str:
        """The command, exit code and the output's tail, for assertion messages."""
        return (f'{self.tool} {" ".join(map(str, self.args))} (exit code {self.returncode})\n'
                f'--- stdout ---\n{self.stdout[-3000:]}\n--- stderr ---\n{self.stderr[-5000:]}')


def python_env(**extra: str) -> Dict[str, str]:
    """The environment of a tool process: the test's, one thread per process (two cores are
    shared by two workers), plus ``extra``."""
    env = dict(os.environ)
    env.setdefault('OMP_NUM_THREADS', '1')
    env.update(extra)
    return env


# --------------------------------------------------------------------------------------------
# wire format. Request: a 4-byte length, then JSON, with three file descriptors (stdin, stdout,
# stderr). Replies: the run's PID once forked, its wait status once it ended (8 bytes each).


def _send(conn: socket.socket, message: dict, fds: Sequence[int] = ()) -> None:
    data = json.dumps(message).encode()
    payload = struct.pack('!I', len(data)) + data
    if fds:
        socket.send_fds(conn, [payload], list(fds))
    else:
        conn.sendall(payload)


def _reply(conn: socket.socket, value: int) -> None:
    conn.sendall(struct.pack('!q', value))


def _read_reply(conn: socket.socket) -> Optional[int]:
    """The next reply, or None when the server went away first."""
    data = b''
    while len(data) < 8:
        chunk = conn.recv(8 - len(data))
        if not chunk:
            return None
        data += chunk
    return struct.unpack('!q', data)[0]


def _receive_request(conn: socket.socket):
    """(request, [stdin, stdout, stderr]) or (None, fds) when the requester went away."""
    data, fds, _, _ = socket.recv_fds(conn, 1 << 16, 3)
    if len(data) < 4:
        return None, fds
    size = struct.unpack('!I', data[:4])[0]
    while len(data) < 4 + size:
        chunk = conn.recv(1 << 16)
        if not chunk:
            return None, fds
        data += chunk
    return json.loads(data[4:4 + size]), fds


# --------------------------------------------------------------------------------------------
# the server (``python forked_cli.py serve SOCKET KIND``)


def _die_with_parent(sig: int) -> None:
    """PR_SET_PDEATHSIG: the kernel sends ``sig`` when the parent ends (Linux; elsewhere a no-op)."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, int(sig), 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _skip_config_reformatting() -> None:
    """mmengine's ``Config.pretty_text`` (the config a Runner logs, and dumps into its work dir)
    runs yapf over the text: about 1 s a call, two calls per Runner, a third of a tiny training
    stage. Forked runs write that text without the reformatting: the same Python, which loads to
    the same config, with other line breaks. Nothing else changes."""
    import mmengine.config.config as config_module
    config_module.FormatCode = lambda text, **kwargs: (text, False)


def index_external_configs_once() -> None:
    """mmengine resolves each ``mmdet::NAME`` base by reading MMDetection's model index and every
    metafile it lists (about 100 YAML files, 0.3 s) - on every lookup, four per zoo config. The
    suite reads the same unchanged files thousands of times; here a process builds that index
    once per package and answers each lookup from it, as mmengine would (its name -> metainfo
    table, the first entry of a name kept, a ValueError for a name it lacks)."""
    import functools
    import os.path as osp

    import mmengine.config.utils as config_utils
    from mmengine.fileio import load

    @functools.lru_cache(maxsize=None)
    def index(package_path: str) -> dict:
        table: dict = {}
        for meta_path in load(osp.join(package_path, '.mim', 'model-index.yml'))['Import']:
            for model_cfg in load(osp.join(package_path, '.mim', meta_path))['Models']:
                if 'Config' in model_cfg:
                    table.setdefault(model_cfg['Config'].partition('/')[-1], model_cfg)
        return table

    def get_cfg_metainfo(package_path: str, cfg_path: str) -> dict:
        table = index(package_path)
        if cfg_path not in table:
            raise ValueError(f'Expected configs: {table.keys()}, but got {cfg_path}')
        return table[cfg_path]

    config_utils._get_cfg_metainfo = get_cfg_metainfo


def _preload(kind: str) -> None:
    import importlib
    import pkgutil
    _skip_config_reformatting()
    index_external_configs_once()
    for name in PRELOADS[kind]:
        if name.endswith('.*'):
            package = importlib.import_module(name[:-2])
            for info in pkgutil.iter_modules(package.__path__):
                importlib.import_module(f'{package.__name__}.{info.name}')
        else:
            importlib.import_module(name)
    import gc
    gc.collect()
    gc.freeze()  # what was imported stays: every forked run's full collections skip it (conftest.py)


def _take_pythonpath(pythonpath: str) -> None:
    """The run's ``PYTHONPATH`` entries that the server's interpreter did not start with go where
    an interpreter puts them: after the script's folder, before the installed packages."""
    started_with = set(os.environ.get('PYTHONPATH', '').split(os.pathsep))
    new = [os.path.abspath(entry) for entry in pythonpath.split(os.pathsep) if entry and entry not in started_with]
    sys.path[1:1] = [entry for entry in new if entry not in sys.path]


def _run_child(request: dict, fds: List[int], kind: str, server_sock: str) -> None:
    """In the forked child: become the requested process and run the tool; never returns."""
    import atexit
    import random
    import runpy
    import threading
    import traceback
    code = 1
    try:
        os.setpgid(0, 0)
        _die_with_parent(signal.SIGKILL)
        for target, fd in zip((0, 1, 2), fds):
            os.dup2(fd, target)
        for fd in fds:
            os.close(fd)
        os.chdir(request['cwd'])
        _take_pythonpath(request['env'].get('PYTHONPATH', ''))
        os.environ.clear()
        os.environ.update(request['env'])
        os.environ[SERVER_ENV.format(kind.upper())] = server_sock
        random.seed()  # a new process draws new seeds; torch's default seed is fixed anyway
        if 'numpy' in sys.modules:
            sys.modules['numpy'].random.seed()
        if request.get('fast_stages'):
            import direct_pretrain.chain.chain as chain_module
            chain_module.tool_command = lambda tool: stage_command(f'direct_pretrain.cli.{tool}', server_sock)
        target = request['target']
        sys.argv = [target] + list(request['args'])
        if request['is_module']:
            sys.path[0] = request['cwd']  # what ``python -m`` puts first
            # the server imported it: without this runpy warns that it runs a module found in sys.modules
            sys.modules.pop(target, None)
            runpy.run_module(target, run_name='__main__', alter_sys=True)
        else:
            sys.path[0] = os.path.dirname(os.path.abspath(target))
            runpy.run_path(target, run_name='__main__')
        code = 0
    except SystemExit as exit_:
        if exit_.code is None or isinstance(exit_.code, int):
            code = exit_.code or 0
        else:
            print(exit_.code, file=sys.stderr)
            code = 1
    except BaseException:  # noqa: B902  (as the interpreter: any uncaught exception is exit code 1)
        traceback.print_exc()
    finally:
        try:  # what the interpreter does at exit: join non-daemon threads, atexit handlers, flush
            threading._shutdown()
            atexit._run_exitfuncs()
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def serve(sock_path: str, kind: str) -> None:
    """Import, listen, fork one child per request; report each child's wait status to its
    requester; kill a child's process group when its requester goes away; end with stdin."""
    _die_with_parent(signal.SIGTERM)
    _preload(kind)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(sock_path)
    listener.listen(128)
    print('ready', flush=True)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)  # nobody reads the pipe after 'ready'
    os.close(null)
    by_conn: Dict[socket.socket, int] = {}
    by_pid: Dict[int, socket.socket] = {}
    while True:
        readable, _, _ = select.select([listener, 0, *by_conn], [], [], 0.05)
        for item in readable:
            if item == 0:
                if not os.read(0, 4096):  # the test process is gone: so are its runs
                    for pid in by_pid:
                        _kill_group(pid)
                    os._exit(0)  # no interpreter teardown (seconds with torch loaded)
            elif item is listener:
                conn, _ = listener.accept()
                request, fds = _receive_request(conn)
                if request is None or len(fds) != 3:
                    conn.close()
                    continue
                sys.stdout.flush()
                sys.stderr.flush()
                pid = os.fork()
                if pid == 0:
                    listener.close()
                    for other in [conn, *by_conn]:
                        other.close()
                    _run_child(request, fds, kind, sock_path)
                for fd in fds:
                    os.close(fd)
                by_conn[conn], by_pid[pid] = pid, conn
                try:
                    _reply(conn, pid)
                except OSError:
                    pass
            elif not item.recv(1):  # the requester went away: so does its run
                _kill_group(by_conn.pop(item))
                item.close()
        while by_pid:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            conn = by_pid.pop(pid, None)
            if conn is not None and by_conn.pop(conn, None) is not None:
                try:
                    _reply(conn, status)
                except OSError:
                    pass
                conn.close()


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass


# --------------------------------------------------------------------------------------------
# the launcher (``python -S forked_cli.py launch SOCKET -m MODULE ARGS`` / ``... SCRIPT ARGS``)


def launch(sock_path: str, argv: List[str]) -> None:
    """Have the server run ``argv`` (``-m MODULE ARGS`` or ``SCRIPT ARGS``, after any ``-u``) with
    this process's stdio, folder and environment; exit as the forked run did (the same code, or
    the same signal)."""
    while argv and argv[0] in ('-u', '-B'):  # unbuffered / no bytecode: no matter to a forked run
        argv = argv[1:]
    is_module = argv[0] == '-m'
    target, args = (argv[1], argv[2:]) if is_module else (argv[0], argv[1:])
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(sock_path)
    _send(conn, dict(target=target, args=args, is_module=is_module, cwd=os.getcwd(), env=dict(os.environ)),
          fds=(0, 1, 2))
    _read_reply(conn)  # the PID
    status = _read_reply(conn)
    if status is None:
        sys.exit('forked_cli: the tool server went away')
    if os.WIFSIGNALED(status):
        signal.signal(os.WTERMSIG(status), signal.SIG_DFL)
        os.kill(os.getpid(), os.WTERMSIG(status))
    sys.exit(os.waitstatus_to_exitcode(status))


def stage_command(module: str, sock_path: Optional[str] = None) -> List[str]:
    """The command line that runs ``python -m module`` forked from a server (default: this
    test process's ``package`` server, started if need be)."""
    return [PYTHON, '-S', HERE, 'launch', sock_path or _socket('package'), '-m', module]


def forked_python(folder: str, kind: str = 'package') -> str:
    """An executable ``<folder>/python`` that runs ``python -m MODULE ARGS`` / ``python SCRIPT
    ARGS`` forked from the ``kind`` server: for a shell script that takes its interpreter from
    the environment (``PYTHON=... ./dist_train.sh``), whose own steps are not under test."""
    path = os.path.join(folder, 'python')
    os.makedirs(folder, exist_ok=True)
    with open(path, 'w') as f:
        f.write(f'#!/bin/sh\nexec {PYTHON} -S {HERE} launch {_socket(kind)} "$@"\n')
    os.chmod(path, 0o755)
    return path


# --------------------------------------------------------------------------------------------
# the client


class _Server:
    """A started server: its process and socket."""

    def __init__(self, kind: str) -> None:
        self.folder = tempfile.mkdtemp(prefix='dp_tools_')  # short: a socket path has at most 107 bytes
        self.sock_path = os.path.join(self.folder, 'server.sock')
        self.log = open(os.path.join(self.folder, 'server.log'), 'w')
        self.proc = subprocess.Popen([PYTHON, HERE, 'serve', self.sock_path, kind], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.log, env=python_env(), cwd=self.folder)
        line = self.proc.stdout.readline().strip()
        if line != b'ready':
            self.close()
            with open(os.path.join(self.folder, 'server.log')) as f:
                raise RuntimeError(f'the {kind} tool server did not start:\n{f.read()[-5000:]}')

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()  # the server kills what still runs and ends
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        import shutil
        shutil.rmtree(self.folder, ignore_errors=True)


_SERVERS: Dict[str, _Server] = {}


def _server(kind: str) -> _Server:
    """This process's server of ``kind``, started on first use."""
    server = _SERVERS.get(kind)
    if server is None or not server.alive():
        server = _SERVERS[kind] = _Server(kind)
    return server


def _socket(kind: str) -> str:
    """The socket of the ``kind`` server: the one that forked this process, else this process's own."""
    return os.environ.get(SERVER_ENV.format(kind.upper())) or _server(kind).sock_path


def close_servers() -> None:
    """End this process's servers (at the end of the session)."""
    while _SERVERS:
        _SERVERS.popitem()[1].close()


def group_survivors(pgid: int, grace: float = 5.0) -> list:
    """Processes of the process group ``pgid`` (a forked run's PID) still alive - zombies count as
    dead - after ``grace`` seconds: its dataloader workers and a chain's stages with theirs, also
    once re-parented to init. Found by group, not by environment: a forked run's
    ``/proc/PID/environ`` is the server's."""
    import psutil
    deadline = time.time() + grace
    while True:
        alive = []
        for proc in psutil.process_iter():
            try:
                if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                    alive.append(proc)
            except (OSError, psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                pass
        if not alive or time.time() > deadline:
            return alive
        time.sleep(0.1)


class Pending:
    """Runs handed to a server, to be waited for (:meth:`wait`). Meanwhile each run's ``pid``
    (also its process group) and ``stdout_path`` / ``stderr_path`` let a test watch it and
    signal it."""

    def __init__(self, runs: Sequence[ToolRun], server: str = 'package') -> None:
        self.runs = list(runs)
        self.folder = tempfile.mkdtemp(prefix='dp_runs_')  # outside the runs' folders: they stay untouched
        self.conns: Dict[socket.socket, int] = {}
        self.start = time.time()
        sock_path = _socket(server)
        null = os.open(os.devnull, os.O_RDONLY)
        try:
            for index, run in enumerate(self.runs):
                os.makedirs(run.cwd, exist_ok=True)
                is_module = not run.tool.endswith('.py')
                target = f'direct_pretrain.cli.{run.tool}' if is_module else run.tool
                out, err = (os.open(os.path.join(self.folder, f'{index}.{s}'), os.O_WRONLY | os.O_CREAT, 0o644)
                            for s in ('out', 'err'))
                conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                conn.connect(sock_path)
                _send(conn, dict(target=target, args=[str(a) for a in run.args], is_module=is_module,
                                 cwd=str(run.cwd), env=python_env(**(run.env or {})), fast_stages=run.fast_stages),
                      fds=(null, out, err))
                os.close(out)
                os.close(err)
                self.conns[conn] = index
                pid = _read_reply(conn)
                if not pid:  # never 0: a test signalling "its" group would signal its own (os.killpg(0))
                    raise RuntimeError(f'the {server} tool server went away before starting {run.tool}')
                run.pid = pid
                run.stdout_path, run.stderr_path = (os.path.join(self.folder, f'{index}.{s}') for s in ('out', 'err'))
        finally:
            os.close(null)

    def finished(self) -> bool:
        """Whether every run has ended, without waiting."""
        readable, _, _ = select.select(list(self.conns), [], [], 0)
        return len(readable) == len(self.conns)

    def wait(self, timeout: float = 900) -> List[ToolRun]:
        deadline = time.time() + timeout
        try:
            while self.conns:
                readable, _, _ = select.select(list(self.conns), [], [], max(0.0, deadline - time.time()))
                if not readable:
                    raise TimeoutError(f'{len(self.conns)} tool run(s) still running after {timeout} s: ' +
                                       '; '.join(self.runs[i].describe()[:300] for i in self.conns.values()))
                for conn in readable:
                    index = self.conns.pop(conn)
                    status = _read_reply(conn)
                    conn.close()
                    run = self.runs[index]
                    run.seconds = time.time() - self.start
                    run.returncode = -1 if status is None else os.waitstatus_to_exitcode(status)
                    for stream in ('out', 'err'):
                        with open(os.path.join(self.folder, f'{index}.{stream}'), errors='replace') as f:
                            setattr(run, f'std{stream}', f.read())
        finally:
            for conn in self.conns:  # closing the connection kills the run
                conn.close()
            self.conns.clear()
            import shutil
            shutil.rmtree(self.folder, ignore_errors=True)
        return self.runs


def run_tools(runs: Sequence[ToolRun], timeout: float = 900, server: str = 'package') -> Sequence[ToolRun]:
    """Run all ``runs`` concurrently as forked tool processes; fills in their outcome."""
    return Pending(runs, server).wait(timeout)


def run_tool(tool: str, *args: str, cwd: str, check: bool = True, env: Optional[Dict[str, str]] = None,
             server: str = 'package', fast_stages: bool = False, timeout: float = 900) -> ToolRun:
    """One forked tool run; with ``check`` a non-zero exit raises with the output's tail."""
    (run, ) = run_tools([ToolRun(tool, list(args), str(cwd), env=env, fast_stages=fast_stages)], timeout, server)
    if check and run.returncode != 0:
        raise AssertionError(run.describe())
    return run


if __name__ == '__main__':
    if sys.argv[1] == 'serve':  # python forked_cli.py serve SOCKET KIND
        serve(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == 'launch':  # python -S forked_cli.py launch SOCKET (-m MODULE | SCRIPT) ARGS...
        launch(sys.argv[2], sys.argv[3:])
    else:  # manual use: python forked_cli.py TOOL ARGS...
        result = run_tool(sys.argv[1], *sys.argv[2:], cwd=os.getcwd(), check=False)
        sys.stdout.write(result.stdout)
        sys.stderr.write(result.stderr)
        close_servers()
        sys.exit(result.returncode)
