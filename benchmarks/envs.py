"""Where the workers run: this repository's environment (installed on first use), the peers'
virtual environments, the loopback server's process, and one worker process per measurement."""

from __future__ import annotations

import http.client
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import payloads
from plan import Case, Contender

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
VENVS = HERE / ".venvs"
WORKER = HERE / "worker.py"
REQUIREMENTS = HERE / "requirements.txt"

# The published peers, pinned so numbers compare across runs (venv name -> pip spec).
PEERS = {"dify_oapi2": "dify-oapi2==1.1.2", "dify_client": "dify-client==0.1.10"}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def ensure_peer(spec: str) -> tuple[str | None, str | None]:
    """The peer's own virtual environment (created once, reused); (python, or None and why)."""
    venv = VENVS / spec.split("==")[0]
    python = venv_python(venv)
    marker = venv / "bench-installed.txt"
    if python.exists() and marker.exists() and marker.read_text() == spec:
        return str(python), None
    log(f"installing {spec} into {venv.relative_to(REPO)} ...")
    shutil.rmtree(venv, ignore_errors=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", spec],
            check=True,
            capture_output=True,
            timeout=600,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        tail = detail.decode(errors="replace").strip().splitlines()[-1:] or [str(exc)]
        return None, f"could not install {spec}: {tail[0][:120]}"
    marker.write_text(spec)
    return str(python), None


# What the workers import from this interpreter: this SDK, the floors' libraries, the transports.
NEEDED = (
    "dify_oapi",
    "httpx",
    "msgspec",
    "httpx_sse",
    "aiohttp",
    "httpx_aiohttp",
    "requests",
    "urllib3",
    "httpx_curl_cffi",
)


def ensure_own_env(script: str, argv: list[str]) -> None:
    """On a machine without this repository's ``[bench]`` extra and ``requirements.txt``,
    install both into ``.venvs/main`` and run the suite again from there: one command."""
    if all(importlib.util.find_spec(name) for name in NEEDED):
        return
    if os.environ.get("BENCH_OWN_ENV"):
        missing = [name for name in NEEDED if not importlib.util.find_spec(name)]
        raise SystemExit(f"still missing after installing the [bench] extra: {missing}")
    venv = VENVS / "main"
    python = venv_python(venv)
    where = venv.relative_to(REPO)
    log(f"installing this repository, its [bench] extra and requirements.txt into {where} ...")
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "-e",
            f"{REPO}[bench]",
            "-r",
            str(REQUIREMENTS),
        ],
        check=True,
    )
    env = {**os.environ, "BENCH_OWN_ENV": "1"}
    raise SystemExit(subprocess.run([str(python), script, *argv], env=env).returncode)


def has_module(python: str, name: str) -> bool:
    code = f"import importlib.util,sys; sys.exit(0 if importlib.util.find_spec({name!r}) else 1)"
    return subprocess.run([python, "-c", code], capture_output=True).returncode == 0


def sniffio_setup(smoke: bool, repeats: int) -> dict[str, Any]:
    """W5 async once more with sniffio flipped: installed if absent, hidden if present."""
    if smoke:
        return {"skip": "skipped in smoke mode", "state": "not measured"}
    if has_module(sys.executable, "sniffio"):
        return {
            "variant_name": "-sniffio",
            "env": {"BENCH_HIDE_SNIFFIO": "1"},
            "state": "installed in the client venv; the -sniffio rows hide it (import fails)",
            "repeats": min(repeats, 2),
        }
    target = VENVS / "sniffio-site"
    if not (target / "sniffio").exists():
        log("installing sniffio into benchmarks/.venvs/sniffio-site for the W5 variant ...")
        result = subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--target", str(target), "sniffio"],
            capture_output=True,
        )
        if result.returncode != 0:
            return {"skip": "could not install sniffio", "state": "absent"}
    return {
        "variant_name": "+sniffio",
        "env": {"PYTHONPATH": str(target)},
        "state": "absent from the client venv; the +sniffio rows add it",
        "repeats": min(repeats, 2),
    }


class Server:
    """``server.py`` in its own process; stops when we close its stdin."""

    def __init__(self, sizes: payloads.Sizes, lockstep: bool = False) -> None:
        command = [sys.executable, str(HERE / "server.py"), "--sizes", json.dumps(sizes.to_dict())]
        self.proc = subprocess.Popen(
            command + ["--lockstep"] * lockstep,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("READY "):
            self.stop()
            raise RuntimeError(f"benchmark server did not start: {line!r}")
        self.port = int(line.split()[1])
        self.base_url = f"http://127.0.0.1:{self.port}/v1"

    def stats(self) -> dict[str, float]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", "/__stats")
            data: dict[str, float] = json.loads(conn.getresponse().read())
            return data
        finally:
            conn.close()

    def stop(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def sources_at(rev: str) -> tuple[str, dict[str, str]]:
    """This repository's ``src/`` at commit ``rev``, unpacked once under ``.venvs/at-SHA``:
    (the short sha, the environment that imports the SDK from there)."""
    sha = subprocess.run(
        ["git", "rev-parse", "--short=7", rev], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()
    target = VENVS / f"at-{sha}"
    if not (target / "src" / "dify_oapi").is_dir():
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        archive = subprocess.run(
            ["git", "archive", sha, "src"], cwd=REPO, capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return sha, {"PYTHONPATH": str(target / "src")}


def worker_env(extra: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    # PYTHONDONTWRITEBYTECODE would make every worker compile this repository's modules from
    # source, while installed packages load bytecode compiled at install: W1 would charge
    # this SDK ~20% of the floor that no installed user pays.
    for key in ("PYTHONPATH", "BENCH_HIDE_SNIFFIO", "PYTHONDONTWRITEBYTECODE"):
        env.pop(key, None)
    env.update({"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"})
    env.update(extra)
    return env


def run_worker(
    contender: Contender,
    module: str,
    params: dict[str, Any],
    timeout: float,
    importtime: bool = False,
) -> tuple[dict[str, Any], str]:
    cmd = [contender.python]
    if importtime:
        cmd += ["-X", "importtime"]
    cmd += [str(WORKER), contender.key, module, json.dumps(params)]
    try:
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=worker_env(contender.env),
            cwd=HERE,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}, ""
    for line in proc.stdout.splitlines():
        if line.startswith("BENCH-RESULT "):
            result: dict[str, Any] = json.loads(line[len("BENCH-RESULT ") :])
            return result, proc.stderr
    tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    return {"error": f"exit {proc.returncode}: {tail[:300]}"}, proc.stderr


def importtime_ms(stderr: str) -> float:
    """Cumulative -X importtime of the top-level imports after the worker's start marker."""
    total_us = 0
    started = False
    for line in stderr.splitlines():
        if line.startswith("BENCH-W1-START"):
            started = True
            continue
        if not started or not line.startswith("import time:"):
            continue
        parts = line.split("|")
        if len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        name = parts[2]
        depth = (len(name) - len(name.lstrip(" ")) - 1) // 2
        if depth == 0:
            total_us += int(parts[1])
    return total_us / 1000.0


def measure(
    case: Case, contender: Contender, timeout: float, server: Server | None
) -> dict[str, Any]:
    params = dict(case.params)
    if server is not None:
        params["base_url"] = server.base_url
    if case.module == "w1":
        result, _ = run_worker(contender, case.module, params, timeout)
        if "import_client_ms" in result:
            again, stderr = run_worker(contender, case.module, params, timeout, importtime=True)
            if "error" in again:
                return again
            result["importtime_ms"] = importtime_ms(stderr)
        return result
    before = server.stats() if server is not None and case.id == "W5" else None
    result, _ = run_worker(contender, case.module, params, timeout)
    if before is not None and server is not None and "rps" in result:
        after = server.stats()
        served = after["requests"] - before["requests"]
        if served > 0:
            result["server_cpu_per_1000"] = (after["cpu"] - before["cpu"]) / served * 1000
    return result


def warn_if_not_this_repo() -> None:
    spec = importlib.util.find_spec("dify_oapi")
    origin = spec.origin if spec and spec.origin else ""
    if not origin.startswith(str(REPO / "src")):
        log(f"warning: dify_oapi imports from {origin or 'nowhere'}, not this repository's src/")
