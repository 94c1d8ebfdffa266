"""Render VST notes as fresh instances would, without making one per note: fork from pristine instances.

A reused plugin instance carries state from note to note (amsynth keeps per-key voice state and the history
of parameter changes), nothing in the VST interface resets all of it, and a fresh instance is slow
(results/generation_speed.md). So a small server process loads up to `instances` copies of the plugin, each
in its own DawDreamer engine, and never renders with them. For each group of up to `instances` notes it
forks; the child sets note j's parameters and MIDI note on its copy of pristine instance j (after the fork,
because DawDreamer passes parameters to the plugin at once), renders, writes the audio to shared memory
and exits. Every note thus starts from exactly a fresh instance's state; the instances of one child share
the process's globals, as the successive fresh instances of one process always did. One fork serves
several notes because a fork and its exit cost about as much as a note.

The server imports numpy and DawDreamer only (a fork costs more the more memory the process maps). Linux
only (`available`); elsewhere, or with SYNTHINV_PLUGIN_INSTANCES=fresh, `synths.plugin` makes a fresh
instance per note. A child still rendering after `timeout` seconds a note (a plugin that needs a thread the
fork lacks) is killed and reported.

    server = ForkServer("/usr/lib/vst/amsynth_vst.so", 44100, 512)
    audio = server.render([({3: 0.5, ...}, 60), ...], velocity=100, pre_roll=0.05, duration=1.0,
                          total=70000, start=2205, length=66150)     # (notes, length) float32, mono
    server.close()
"""

from __future__ import annotations

import mmap
import os
import pickle
import signal
import socket
import subprocess
import sys
import weakref
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np

ENV = "SYNTHINV_PLUGIN_INSTANCES"  # "fresh": a new plugin instance per note instead of this server
INSTANCES = 64  # pristine instances per server at most = notes per fork (made as batches need them; 64: bench_plugin)


class ForkServerError(RuntimeError):
    """The server could not load the plugin or render a note (one-line message)."""


def available() -> bool:
    """Whether notes can be rendered by forking (Linux, and not switched off by SYNTHINV_PLUGIN_INSTANCES=fresh)."""
    return sys.platform.startswith("linux") and hasattr(os, "fork") and os.environ.get(ENV, "").lower() != "fresh"


class ForkServer:
    """Client of one server process holding `instances` pristine instances of the plugin at `path`."""

    def __init__(self, path: str | Path, sample_rate: int, block_size: int, instances: int = INSTANCES,
                 timeout: float = 60.0):
        self.path, self.instances = str(path), int(instances)
        self._pid = os.getpid()
        ours, theirs = socket.socketpair()
        env = dict(os.environ)  # the server imports this module by name, from wherever this process found it
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        with theirs:
            self._proc = subprocess.Popen([sys.executable, "-m", "synthinv.synths.plugin_server", str(theirs.fileno())],
                                          pass_fds=(theirs.fileno(),), env=env, stdin=subprocess.DEVNULL)
        self._conn = Connection(ours.detach())
        self._finalizer = weakref.finalize(self, _shutdown, self._conn, self._proc)
        self._conn.send((self.path, int(sample_rate), int(block_size), self.instances, float(timeout)))
        status, detail = self._receive()
        if status != "ready":
            self.close()
            raise ForkServerError(f"{self.path}: {detail}")

    def _receive(self):
        try:
            return self._conn.recv()
        except (EOFError, OSError):
            code = self._proc.poll()
            raise ForkServerError(f"the plugin server for {self.path} exited (code {code})") from None

    def render(self, notes: list[tuple[dict[int, float], int]], velocity: int, pre_roll: float, duration: float,
               total: int, start: int, length: int) -> np.ndarray:
        """notes: [({parameter index: host value}, MIDI note), ...]. Each is rendered for `total` samples, the
        note on at `pre_roll` s for `duration` s -> (len(notes), length) float32: mono samples
        start..start+length-1 of each (zero padded)."""
        if os.getpid() != self._pid:
            raise ForkServerError("a ForkServer cannot be used from a forked copy of the process that started it")
        self._conn.send(([(dict(v), int(n)) for v, n in notes], int(velocity), float(pre_roll), float(duration),
                         int(total), int(start), int(length)))
        status, detail = self._receive()
        if status != "ok":
            raise ForkServerError(f"{self.path}: {detail}")
        audio = np.empty((len(notes), length), dtype=np.float32)
        try:
            self._conn.recv_bytes_into(audio.data.cast("B"))  # straight into the array: no pickled copies
        except (EOFError, OSError):
            raise ForkServerError(f"the plugin server for {self.path} exited (code {self._proc.poll()})") from None
        return audio

    def close(self) -> None:
        self._finalizer()


def _shutdown(conn: Connection, proc: subprocess.Popen) -> None:
    """Close the connection (the server exits at end of input) and reap the server."""
    try:
        conn.close()
    except OSError:  # pragma: no cover
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:  # pragma: no cover - a child stuck in the plugin
        proc.kill()
        proc.wait()


# --- the server process ------------------------------------------------------------------------------


def _serve(fd: int) -> None:
    """Load the plugin, then answer render requests until the client closes the connection."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the client decides when to stop (Ctrl-C reaches the whole group)
    conn = Connection(fd)
    devnull = os.open(os.devnull, os.O_WRONLY)  # plugins print on load and on every note
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    try:
        path, sample_rate, block_size, n_instances, timeout = conn.recv()
        import dawdreamer

        instances: list = []

        def grow(count: int) -> None:
            """Load instances up to `count` (made as requests need them: a caller rendering one note at a time
            never waits for the rest)."""
            while len(instances) < count:
                engine = dawdreamer.RenderEngine(sample_rate, block_size)
                proc = engine.make_plugin_processor(f"synth{len(instances)}", path)
                engine.load_graph([(proc, [])])
                instances.append((engine, proc))

        grow(1)
    except EOFError:
        return
    except Exception as exc:  # noqa: BLE001 - reported to the client, which raises it
        conn.send(("error", f"could not load the plugin ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"))
        return
    conn.send(("ready", n_instances))
    buf = mmap.mmap(-1, 4)
    while True:
        try:
            notes, velocity, pre_roll, duration, total, start, length = conn.recv()
        except (EOFError, OSError, pickle.UnpicklingError):
            return
        try:
            grow(min(len(notes), n_instances))
        except Exception as exc:  # noqa: BLE001 - reported to the client
            conn.send(("error", f"could not load another instance ({type(exc).__name__})"))
            continue
        if len(buf) < 4 * length * len(notes):
            buf = mmap.mmap(-1, 4 * length * len(notes))
        out = np.frombuffer(buf, dtype=np.float32, count=length * len(notes)).reshape(len(notes), length)
        problem = None
        for a in range(0, len(notes), n_instances):
            chunk = notes[a : a + n_instances]
            pid = os.fork()
            if pid == 0:  # the child: note j on its copy of pristine instance j, audio into shared memory, exit
                code = 1
                try:
                    signal.alarm(int(timeout * len(chunk)) + 1)
                    for j, ((engine, proc), (values, note)) in enumerate(zip(instances, chunk)):
                        for i, value in values.items():  # after the fork: DawDreamer passes them to the plugin at once
                            proc.set_parameter(i, float(value))
                        proc.add_midi_note(note, velocity, pre_roll, duration)
                        engine.render(total / sample_rate)
                        mono = np.asarray(engine.get_audio(), dtype=np.float32).mean(axis=0)[start : start + length]
                        out[a + j] = 0.0
                        out[a + j, : len(mono)] = mono
                    code = 0
                finally:
                    os._exit(code)
            _, status = os.waitpid(pid, 0)
            if status != 0:
                if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGALRM:
                    problem = (f"a note took longer than {timeout:g} s to render (a plugin that needs threads cannot be "
                               f"forked: set {ENV}=fresh)")
                else:
                    problem = f"rendering a note failed (child exit status {status}); set {ENV}=fresh to use a fresh instance per note"
                break
        try:
            if problem:
                conn.send(("error", problem))
            else:
                conn.send(("ok", None))
                conn.send_bytes(memoryview(buf)[: 4 * length * len(notes)])
        except (OSError, ValueError):
            return


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
