"""Load with JWT on: the shipped gunicorn config, every call signed with a fresh token (so every
call writes its jti), cards recorded, at 8 and 32 connections, on SQLite (the default) and on
PostgreSQL; wrk drives it, a Lua script hands each request its own pre-signed token."""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import orjson
from gunicorn_wrk import serve, wrk
from records import patient_view_request

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from support.postgres import PostgresServer  # noqa: E402
from support.tokens import BASE, Ehr, issuer_file  # noqa: E402

PATH = "/cds-services/vertebral-augmentation-referral"
DURATION_S = 8
THREADS = 2
STATUSES = (200, 401, 412, 413, 429, 500, 503)
LUA = """
local threads = {{}}
function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end
function init(args)
  tokens = {{}}
  for line in io.lines("{tokens}") do tokens[#tokens + 1] = line end
  local f = io.open("{body}", "rb")
  body = f:read("*a")
  f:close()
  idx = id + 1
{counters_init}
end
function request()
  local token = tokens[idx] or "exhausted"
  idx = idx + {threads}
  return wrk.format("POST", "{path}", {{["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. token}}, body)
end
function response(status, headers, body)
{counters_count}
end
function done(summary, latency, requests)
  for _, thread in ipairs(threads) do
    io.write("statuses")
{counters_done}
    io.write("\\n")
  end
end
"""


def _lua(tokens: Path, body: Path, path: str = PATH) -> str:
    names = [*(f"s{code}" for code in STATUSES), "sother"]
    init = "\n".join(f"  {name} = 0" for name in names)
    count = "  " + " else".join(f"if status == {code} then s{code} = s{code} + 1\n " for code in STATUSES)
    count += " else sother = sother + 1 end"
    done = "\n".join(f'    io.write(" {name}=", thread:get("{name}"))' for name in names)
    return LUA.format(
        tokens=tokens,
        body=body,
        threads=THREADS,
        path=path,
        counters_init=init,
        counters_count=count,
        counters_done=done,
    )


def _server_env(**settings: str) -> dict[str, str]:
    """This environment without its metrics folder and database, plus the row's settings."""
    env = {k: v for k, v in os.environ.items() if k not in ("PROMETHEUS_MULTIPROC_DIR", "CDS_DATABASE_URL")}
    return {**env, "CDS_LOG_LEVEL": "WARNING", **settings}


def _load(url: str, script: Path, connections: int) -> tuple[float, float, float, dict[str, int]]:
    """requests/s, p50 and p99 ms, and responses by status (counted by the Lua script)."""
    run = wrk(url, script, threads=THREADS, connections=connections, seconds=DURATION_S)
    statuses: dict[str, int] = {}
    for line in run.output.splitlines():
        if line.startswith("statuses"):
            for name, count in re.findall(r"s(\w+)=(\d+)", line):
                statuses[name] = statuses.get(name, 0) + int(count)
    return run.requests_per_s, run.p50_ms, run.p99_ms, {k: v for k, v in statuses.items() if v}


def run() -> str:
    if shutil.which("wrk") is None:
        return "wrk is not installed (Debian package `wrk`): load benchmark skipped.\n"
    ehr = Ehr(alg="ES256", kid="bench")
    rows = []
    postgres = PostgresServer()
    postgres.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            body = orjson.dumps(patient_view_request(100, as_of=datetime.now(UTC).date()))
            (folder / "body.json").write_bytes(body)
            issuers = issuer_file(folder, {"iss": ehr.iss, "jwks": ehr.jwks})
            databases = {"SQLite": f"sqlite:///{folder}/cds.sqlite", "PostgreSQL": postgres.create_database()}
            for backend, url in databases.items():
                env = _server_env(
                    CDS_AUTH="jwt",
                    CDS_TRUSTED_ISSUERS=str(issuers),
                    CDS_PUBLIC_BASE_URL=BASE,
                    CDS_DATABASE_URL=url,
                )
                server, base = serve("cds_service.app:create_app()", env)
                try:
                    for connections in (8, 32):
                        tokens = folder / "tokens.txt"
                        tokens.write_text("\n".join(ehr.token(BASE + PATH, sub=None) for _ in range(12_000)))
                        script = folder / "load.lua"
                        script.write_text(_lua(tokens, folder / "body.json"))
                        rps, p50, p99, statuses = _load(base + PATH, script, connections)
                        rows.append((backend, connections, rps, p50, p99, statuses))
                finally:
                    server.terminate()
                    server.wait(timeout=30)
            floor = _floor_rows(folder)
    finally:
        postgres.destroy()
    workers = os.environ.get("CDS_WORKERS", str(os.cpu_count()))
    threads = os.environ.get("CDS_THREADS", "4")
    lines = [
        f"gunicorn with the shipped config ({workers} workers x {threads} threads), "
        f"JWT on (every request its own ES256 token, so every request writes its jti), cards recorded, "
        f"wrk for {DURATION_S} s per row, the {len(body) / 1000:.0f} kB patient-view body (100 resources, "
        "one card). Target: p99 < 50 ms on SQLite at 8 and 32 connections.\n",
        "| database | connections | requests/s | p50 ms | p99 ms | responses by status |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for backend, connections, rps, p50, p99, statuses in [*rows, *floor]:
        by_status = ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items()))
        lines.append(f"| {backend} | {connections} | {rps:.0f} | {p50:.2f} | {p99:.2f} | {by_status} |")
    lines.append(
        "\nFloor rows: the same gunicorn, body and wrk load against the trivial `/bench/parse` endpoint "
        '(reads the body, parses it with orjson, answers `{"cards": []}`; no JWT, no database): what '
        "p99 the serving stack itself shows at these connection counts on this machine."
    )
    return "\n".join(lines) + "\n"


def _floor_rows(folder: Path) -> list[tuple[str, int, float, float, float, dict[str, int]]]:
    env = _server_env(CDS_AUTH="off", CDS_DATABASE_URL=f"sqlite:///{folder}/floor.sqlite")
    server, base = serve("benchmarks.bench_app:app", env)
    rows = []
    try:
        script = folder / "floor.lua"
        script.write_text(_lua(folder / "tokens.txt", folder / "body.json", "/bench/parse"))
        for connections in (8, 32):
            rps, p50, p99, statuses = _load(base + "/bench/parse", script, connections)
            rows.append(("floor (trivial endpoint)", connections, rps, p50, p99, statuses))
    finally:
        server.terminate()
        server.wait(timeout=30)
    return rows


if __name__ == "__main__":
    print(run())
