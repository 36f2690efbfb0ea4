"""Fault: the database stops and restarts under JWT-authenticated calls (real gunicorn, 2 workers,
real PostgreSQL, loopback only). Fresh tokens must keep passing, feedback must answer 503 with
Retry-After, the outage must be counted, and after recovery nothing may be left in memory."""

from __future__ import annotations

import re
import time
from collections import Counter
from pathlib import Path

import requests
from support.builders import REFERRAL_URL, condition, feedback_entry, hook_body
from support.live_server import LiveServer
from support.postgres import PostgresServer
from support.tokens import BASE, Ehr, issuer_file

AUD = BASE + REFERRAL_URL
FEEDBACK_URL = REFERRAL_URL + "/feedback"
BODY = hook_body([condition("fx", "M80.08XA")])


def _metric(server: LiveServer, name: str) -> float:
    text = requests.get(server.url + "/metrics", timeout=5).text
    return sum(float(m) for m in re.findall(rf"^{re.escape(name)} ([0-9.e+]+)$", text, re.M))


def test_database_outage_never_turns_a_fresh_jti_into_a_replay(
    private_postgres: PostgresServer, tmp_path: Path
) -> None:
    ehr = Ehr()
    issuers = issuer_file(tmp_path, {"iss": ehr.iss, "jwks": ehr.jwks})
    env = {
        "CDS_DATABASE_URL": private_postgres.create_database(),
        "CDS_AUTH": "jwt",
        "CDS_TRUSTED_ISSUERS": str(issuers),
        "CDS_PUBLIC_BASE_URL": BASE,
    }
    server = LiveServer(env, workers=2).start()
    session = requests.Session()

    def call(token: str) -> int:
        headers = {"Authorization": f"Bearer {token}"}
        return session.post(server.url + REFERRAL_URL, json=BODY, headers=headers, timeout=10).status_code

    try:
        assert Counter(call(ehr.token(AUD)) for _ in range(20)) == {200: 20}
        issued = session.post(
            server.url + REFERRAL_URL,
            json=BODY,
            headers={"Authorization": f"Bearer {ehr.token(AUD)}"},
            timeout=10,
        ).json()["cards"][0]
        private_postgres.stop()
        statuses: Counter[int] = Counter()
        used_during_outage: list[str] = []
        ends = time.monotonic() + 3
        while time.monotonic() < ends:
            token = ehr.token(AUD)
            used_during_outage.append(token)
            statuses[call(token)] += 1
        assert set(statuses) == {200}, statuses  # before the fix: every call 401 "jti replayed"
        print(f"during the outage: {dict(statuses)} in 3 s")
        feedback = session.post(
            server.url + FEEDBACK_URL,
            json={"feedback": [feedback_entry(issued)]},  # a card it issued: only storage is away
            headers={"Authorization": f"Bearer {ehr.token(BASE + FEEDBACK_URL)}"},
            timeout=10,
        )
        assert feedback.status_code == 503
        assert int(feedback.headers["Retry-After"]) > 0
        assert _metric(server, 'cds_database_outages_total{component="replay"}') >= 1
        assert _metric(server, 'cds_replay_checks_total{store="memory"}') >= statuses[200] - 2
        assert _metric(server, 'cds_replay_memory_entries{component="replay"}') > 0
        assert (server.logged().count("replay cache in process memory")) <= 2  # once per worker

        private_postgres.start()
        time.sleep(1.1)  # each worker tries the database again at most once a second
        assert Counter(call(ehr.token(AUD)) for _ in range(20)) == {200: 20}
        assert _metric(server, 'cds_replay_memory_entries{component="replay"}') == 0  # nothing left to scan
        # ids seen during the outage went to the database: refused by whichever worker answers
        assert Counter(call(token) for token in used_during_outage[:10]) == {401: 10}
    finally:
        server.stop()
