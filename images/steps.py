"""Cached build steps: each step has a key (a hash of everything it is built from) and runs only when
its outputs are missing or were built from other inputs. Progress goes to the terminal, one line a step;
each step's full output to a log file; a failure is one line naming the step."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path


class StepFailed(RuntimeError):
    """A step could not be done: ``step`` names it, the message says what went wrong and where to look."""

    def __init__(self, step: str, message: str) -> None:
        super().__init__(f"build step {step} failed: {message}")
        self.step = step


class BadInput(RuntimeError):
    """The build was asked for something it cannot do (a bad option): exit 2."""


def digest(*parts: str | bytes | Path) -> str:
    """sha256 over strings, bytes and file contents (a missing file counts as its name)."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, Path):
            h.update(part.read_bytes() if part.is_file() else f"missing:{part}".encode())
        elif isinstance(part, bytes):
            h.update(part)
        else:
            h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


@dataclass
class Log:
    """Where a step writes what its commands print."""

    path: Path

    def run(
        self,
        argv: list[str],
        step: str,
        *,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        stdin: bytes | None = None,
        timeout: float = 3600,
    ) -> str:
        """Runs a command, its output appended to the log; raises StepFailed with its last line."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("ab") as log:
            log.write(f"$ {' '.join(argv)}\n".encode())
            log.flush()
            try:
                result = subprocess.run(
                    argv,
                    cwd=cwd,
                    env=env,
                    input=stdin,
                    stdout=subprocess.PIPE,
                    stderr=log,
                    stdin=None if stdin is not None else subprocess.DEVNULL,
                    timeout=timeout,
                )
            except FileNotFoundError:
                raise StepFailed(step, f"{argv[0]} not found on PATH") from None
            except subprocess.TimeoutExpired:
                raise StepFailed(
                    step, f"`{argv[0]}` did not finish within {timeout:g}s (log: {self.path})"
                ) from None
            log.write(result.stdout)
        if result.returncode != 0:
            raise StepFailed(
                step, f"`{' '.join(argv[:3])} ...` exited {result.returncode}: {self.last_line()}"
            )
        return result.stdout.decode(errors="replace")

    def last_line(self) -> str:
        lines = [ln for ln in self.path.read_text(errors="replace").splitlines() if ln.strip()]
        meaningful = [ln for ln in lines if not ln.startswith("$ ")]
        return f"{(meaningful or ['no output'])[-1].strip()[:300]} (log: {self.path})"


@dataclass
class Step:
    """One thing to build. ``done(key)`` says whether outputs built from ``key`` are there; ``build(log)``
    makes them."""

    name: str
    key: str
    done: Callable[[str], bool]
    build: Callable[[Log], None]


@dataclass
class Runner:
    state_dir: Path
    out: object = sys.stdout
    timings: dict[str, float] = field(default_factory=dict)

    def stamp(self, step: Step) -> Path:
        return self.state_dir / "stamps" / step.name.replace("/", "_")

    def up_to_date(self, step: Step) -> bool:
        stamp = self.stamp(step)
        return stamp.is_file() and stamp.read_text() == step.key and step.done(step.key)

    def run(self, steps: Iterable[Step]) -> None:
        steps = list(steps)
        for n, step in enumerate(steps, 1):
            prefix = f"[{n:2}/{len(steps)}] {step.name}"
            if self.up_to_date(step):
                print(f"{prefix}: cached", file=self.out, flush=True)
                continue
            print(f"{prefix}: building ...", file=self.out, flush=True)
            log = Log(self.state_dir / "logs" / f"{step.name.replace('/', '_')}.log")
            log.path.parent.mkdir(parents=True, exist_ok=True)
            log.path.write_text("")
            start = time.monotonic()
            try:
                step.build(log)
            except OSError as exc:  # a file or folder the step needs: one line, like a failed command
                where = f": {exc.filename}" if exc.filename else ""
                raise StepFailed(step.name, f"{exc.strerror or exc}{where}") from None
            spent = time.monotonic() - start
            self.timings[step.name] = spent
            self.stamp(step).parent.mkdir(parents=True, exist_ok=True)
            self.stamp(step).write_text(step.key)
            print(f"{prefix}: built in {spent:.0f} s", file=self.out, flush=True)

    def record(self, path: Path, data: dict) -> None:
        path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
