"""prometheus-operator's envelope for the reloader container as a cgroup: 10m of CPU, 50Mi of memory.

A CFS quota of 1 ms per 100 ms period is 10 millicores. cgroup v1 (``cpu``, ``cpuacct``, ``memory``
hierarchies, each mounted on its own or together) and v2 are both handled. Creating one needs root and
a writable cgroup filesystem; ``Envelope.create`` raises ``Unavailable`` with the reason otherwise, and
the bench prints SKIP with it.

A process joins the cgroups in ``preexec`` (between fork and exec), so its whole start-up is counted.
``cpu_ns`` is the kernel's own CPU accounting of every thread the group ever ran, exited ones too.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

ROOT: Final = Path("/sys/fs/cgroup")
MiB: Final = 1024 * 1024
PERIOD_US: Final = 100_000


class Unavailable(RuntimeError):
    """No cgroup can be made here; the message says why."""


@dataclass
class Envelope:
    """One set of cgroups for one process tree (v1: one directory per controller; v2: one directory)."""

    name: str
    cpu_millicores: int | None
    memory_bytes: int | None
    dirs: dict[str, Path] = field(default_factory=dict)
    """controller ("cpu", "cpuacct", "memory", or "v2") -> directory"""

    @classmethod
    def create(cls, name: str, *, cpu_millicores: int | None, memory_bytes: int | None) -> Envelope:
        env = cls(name, cpu_millicores, memory_bytes)
        if os.geteuid() != 0:
            raise Unavailable("not root: cannot create cgroups")
        if (ROOT / "cgroup.controllers").exists():
            env._create_v2()
        else:
            env._create_v1()
        return env

    def _mkdir(self, controller: str, base: Path) -> Path:
        if not base.is_dir():
            raise Unavailable(f"cgroup v1 controller {controller} is not mounted at {base}")
        path = base / self.name
        try:
            path.mkdir(exist_ok=True)
        except OSError as exc:
            raise Unavailable(f"cannot create {path}: {exc.strerror}") from exc
        self.dirs[controller] = path
        return path

    def _create_v1(self) -> None:
        try:
            for controller in ("cpu", "cpuacct", "memory"):
                # cpu and cpuacct are often mounted together as cpu,cpuacct: one directory serves both.
                base = next(
                    (m for m in sorted(ROOT.iterdir()) if controller in m.name.split(",") and m.is_dir()),
                    ROOT / controller,
                )
                existing = next((d for d in self.dirs.values() if d.parent == base.resolve()), None)
                self.dirs[controller] = existing or self._mkdir(controller, base.resolve())
            if self.cpu_millicores is not None:
                quota = self.cpu_millicores * PERIOD_US // 1000
                _write(self.dirs["cpu"] / "cpu.cfs_period_us", str(PERIOD_US))
                _write(self.dirs["cpu"] / "cpu.cfs_quota_us", str(quota))
            if self.memory_bytes is not None:
                _write(self.dirs["memory"] / "memory.limit_in_bytes", str(self.memory_bytes))
                # No swap: the limit is the limit, as in a pod.
                with contextlib.suppress(OSError):
                    _write(self.dirs["memory"] / "memory.memsw.limit_in_bytes", str(self.memory_bytes))
        except OSError as exc:
            self.remove()
            raise Unavailable(f"cannot configure cgroup {self.name}: {exc}") from exc

    def _create_v2(self) -> None:
        path = self._mkdir("v2", ROOT)
        try:
            if self.cpu_millicores is not None:
                _write(path / "cpu.max", f"{self.cpu_millicores * PERIOD_US // 1000} {PERIOD_US}")
            if self.memory_bytes is not None:
                _write(path / "memory.max", str(self.memory_bytes))
                _write(path / "memory.swap.max", "0")
        except OSError as exc:
            self.remove()
            raise Unavailable(
                f"cannot configure cgroup v2 {path}: {exc} (controllers not delegated?)"
            ) from exc

    def preexec(self) -> None:
        """Join the cgroups; runs in the child between fork and exec."""
        pid = str(os.getpid())
        for path in set(self.dirs.values()):
            (path / "cgroup.procs").write_text(pid)

    def cpu_ns(self) -> int:
        """CPU time used by the group so far, in nanoseconds."""
        if "v2" in self.dirs:
            for line in (self.dirs["v2"] / "cpu.stat").read_text().splitlines():
                if line.startswith("usage_usec "):
                    return int(line.split()[1]) * 1000
            raise RuntimeError("no usage_usec in cpu.stat")
        return int((self.dirs["cpuacct"] / "cpuacct.usage").read_text())

    def oom_kills(self) -> int:
        """OOM kills in the group so far."""
        if "v2" in self.dirs:
            text = (self.dirs["v2"] / "memory.events").read_text()
        else:
            text = (self.dirs["memory"] / "memory.oom_control").read_text()
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def peak_memory_bytes(self) -> int:
        """The group's peak memory charge (RSS and page cache)."""
        if "v2" in self.dirs:
            peak = self.dirs["v2"] / "memory.peak"
            return int(peak.read_text()) if peak.exists() else 0
        return int((self.dirs["memory"] / "memory.max_usage_in_bytes").read_text())

    def remove(self) -> None:
        """Remove the cgroups; waits a little for exited processes to leave them."""
        for path in set(self.dirs.values()):
            for _ in range(50):
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.1)


def _write(path: Path, value: str) -> None:
    path.write_text(value)


@contextlib.contextmanager
def envelope(name: str, *, cpu_millicores: int | None, memory_bytes: int | None) -> Iterator[Envelope]:
    """``Envelope.create`` for the block, removed after (raises Unavailable before the block)."""
    env = Envelope.create(
        f"config-reloader-bench-{os.getpid()}-{name}",
        cpu_millicores=cpu_millicores,
        memory_bytes=memory_bytes,
    )
    try:
        yield env
    finally:
        env.remove()
