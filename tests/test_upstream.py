"""The reference upstream server: the platform routes and the log collector, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import gzip
import http.client
import json
import os
import signal
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests

from kiosk.sim.collector import Collector
from kiosk.sim.population import Population
from kiosk.sim.upstream import MAX_BODY_BYTES, Fault, ReferenceUpstream, ServeError
from sync_helpers import self_signed_cert

NOW = datetime(2024, 3, 1, 8, 30, 20, tzinfo=timezone.utc)


def event(n: int, **extra: object) -> dict[str, object]:
    return {"id": f"e{n}", "time": f"2024-03-01T08:00:{n:02d}.000Z", "decision": "PASS", **extra}


def ndjson(events: list[dict[str, object]]) -> bytes:
    return "".join(json.dumps(e) + "\n" for e in events).encode()


@pytest.fixture
def upstream_options() -> dict:
    return {"population": Population(clock=lambda: NOW)}


def post_events(url: str, body: bytes, **headers: str) -> requests.Response:
    return requests.post(f"{url}/events", data=body, headers={"Content-Type": "application/x-ndjson", **headers}, timeout=5)


# --- collector ---------------------------------------------------------------------------------


def test_a_batch_is_stored_and_read_back_as_ndjson(upstream: ReferenceUpstream) -> None:
    batch = [event(1), event(2, reasons=["fever"], temperature_c=38.1), event(3)]
    answer = post_events(upstream.url, ndjson(batch))
    assert answer.status_code == 200
    assert answer.json() == {"accepted": 3, "duplicates": 0}

    listing = requests.get(f"{upstream.url}/events", timeout=5)
    assert listing.headers["Content-Type"] == "application/x-ndjson"
    assert [json.loads(line) for line in listing.text.splitlines()] == batch


def test_a_gzip_batch_is_accepted(upstream: ReferenceUpstream) -> None:
    answer = post_events(upstream.url, gzip.compress(ndjson([event(1), event(2)])), **{"Content-Encoding": "gzip"})
    assert answer.json() == {"accepted": 2, "duplicates": 0}
    assert upstream.collector.count() == 2


def test_duplicate_ids_are_ignored_across_and_within_batches(upstream: ReferenceUpstream) -> None:
    assert post_events(upstream.url, ndjson([event(1), event(2)])).json() == {"accepted": 2, "duplicates": 0}
    assert post_events(upstream.url, ndjson([event(2), event(3), event(3)])).json() == {"accepted": 1, "duplicates": 2}
    assert [e["id"] for e in upstream.collector.events()] == ["e1", "e2", "e3"]


@pytest.mark.parametrize(
    ("bad_line", "bad_id", "reason"),
    [
        (b'{"id": "e2", "time": ', None, "not JSON"),
        (b"[1, 2]", None, "not a JSON object"),
        (b'{"time": "2024-03-01T08:00:00Z"}', None, 'no string "id"'),
        (b'{"id": "e9"}', "e9", 'no string "time"'),
        (b'{"id": "e\xff", "time": "t"}', None, "not UTF-8"),
        (b'{"id": "e7", "time": "t", "decision": "MAYBE"}', "e7", 'decision must be "PASS" or "REFUSE"'),
    ],
)
def test_a_batch_with_bad_lines_is_refused_whole_naming_each_bad_line(
    upstream: ReferenceUpstream, bad_line: bytes, bad_id: str | None, reason: str
) -> None:
    body = ndjson([event(1)]) + bad_line + b"\n" + ndjson([event(3)])
    answer = post_events(upstream.url, body)
    assert answer.status_code == 422
    assert answer.json()["rejected"] == [{"line": 2, "id": bad_id, "reason": answer.json()["rejected"][0]["reason"]}]
    assert reason in answer.json()["rejected"][0]["reason"]
    assert f"line 2: {reason}" in answer.json()["error"]
    assert upstream.collector.count() == 0  # all or nothing: the good lines are not kept either


def test_a_body_that_is_not_gzip_despite_its_label_is_refused(upstream: ReferenceUpstream) -> None:
    answer = post_events(upstream.url, ndjson([event(1)]), **{"Content-Encoding": "gzip"})
    assert answer.status_code == 400
    assert "gzip" in answer.json()["error"]
    truncated = gzip.compress(ndjson([event(1), event(2)]))[:-12]
    assert post_events(upstream.url, truncated, **{"Content-Encoding": "gzip"}).status_code == 400
    assert upstream.collector.count() == 0


def test_an_oversized_body_is_refused_before_it_is_read(upstream: ReferenceUpstream) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", upstream.port, timeout=5)
    connection.putrequest("POST", "/events")
    connection.putheader("Content-Length", str(MAX_BODY_BYTES + 1))
    connection.endheaders()  # no body follows: the server must answer from the headers alone
    answer = connection.getresponse()
    assert answer.status == 413
    assert "limit" in json.loads(answer.read())["error"]
    connection.close()


def test_a_gzip_bomb_is_refused(upstream: ReferenceUpstream) -> None:
    bomb = gzip.compress(b"\n" * (MAX_BODY_BYTES + 1))
    assert len(bomb) < 100_000
    answer = post_events(upstream.url, bomb, **{"Content-Encoding": "gzip"})
    assert answer.status_code == 413
    assert upstream.collector.count() == 0


def test_the_collector_token_is_checked_when_configured(tmp_path: Path) -> None:
    with ReferenceUpstream(data_dir=tmp_path, collector_token="kiosk-token") as guarded:
        body = ndjson([event(1)])
        assert post_events(guarded.url, body).status_code == 401
        assert post_events(guarded.url, body, Authorization="Bearer other").status_code == 401
        assert requests.get(f"{guarded.url}/events", timeout=5).status_code == 401
        assert guarded.collector.count() == 0
        assert post_events(guarded.url, body, Authorization="Bearer kiosk-token").json()["accepted"] == 1


def test_one_connection_serves_many_requests(upstream: ReferenceUpstream) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", upstream.port, timeout=5)
    for n in range(3):
        connection.request("POST", "/events", body=ndjson([event(n)]), headers={"Content-Type": "application/x-ndjson"})
        answer = connection.getresponse()
        assert answer.status == 200
        assert json.loads(answer.read()) == {"accepted": 1, "duplicates": 0}
    connection.close()


def test_a_refused_request_with_an_unread_body_does_not_spoil_the_next_one(tmp_path: Path) -> None:
    with ReferenceUpstream(data_dir=tmp_path, collector_token="kiosk-token") as guarded:
        connection = http.client.HTTPConnection("127.0.0.1", guarded.port, timeout=5)
        body = ndjson([event(1), event(2)])
        connection.request("POST", "/events", body=body, headers={"Authorization": "Bearer nope"})
        refused = connection.getresponse()
        refused.read()
        assert refused.status == 401
        connection.request("POST", "/events", body=body, headers={"Authorization": "Bearer kiosk-token"})
        again = connection.getresponse()
        assert again.status == 200
        assert json.loads(again.read()) == {"accepted": 2, "duplicates": 0}
        connection.close()


def test_received_events_survive_a_restart_on_the_same_port(tmp_path: Path) -> None:
    first = ReferenceUpstream(data_dir=tmp_path).start()
    post_events(first.url, ndjson([event(1)]))
    first.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{first.url}/events", timeout=5)
    first.start()
    assert post_events(first.url, ndjson([event(1), event(2)])).json() == {"accepted": 1, "duplicates": 1}
    port = first.port
    first.close()
    with ReferenceUpstream(port=port, data_dir=tmp_path) as second:
        assert [e["id"] for e in second.collector.events()] == ["e1", "e2"]


def test_a_taken_port_gives_a_clear_error(upstream: ReferenceUpstream, tmp_path: Path) -> None:
    with pytest.raises(ServeError, match=f"cannot listen on 127.0.0.1:{upstream.port}"):
        ReferenceUpstream(port=upstream.port, data_dir=tmp_path / "other")


def test_the_collector_store_counts_accepted_and_duplicates(tmp_path: Path) -> None:
    collector = Collector(tmp_path / "c.db")
    assert collector.receive([event(1), event(1), event(2)]) == (2, 1)
    assert collector.receive([event(2)]) == (0, 1)
    assert collector.count() == 2
    collector.close()


# --- platform ----------------------------------------------------------------------------------


def test_a_code_from_the_sim_route_verifies_with_its_colour(upstream: ReferenceUpstream) -> None:
    people = requests.get(f"{upstream.url}/platform/sim/people", timeout=5).json()
    yellow = next(p for p in people if p["colour"] == "yellow")
    code = requests.get(f"{upstream.url}/platform/sim/code", params={"person": yellow["id"]}, timeout=5).json()["code"]
    answer = requests.post(f"{upstream.url}/platform/verify", json={"code": code}, timeout=5)
    assert answer.status_code == 200
    record = answer.json()
    assert record["status"] == "ok"
    assert record["colour"] == "yellow"
    assert record["holder"] == yellow["holder"]


def test_minutes_ago_gives_an_older_code(upstream: ReferenceUpstream) -> None:
    code = requests.get(
        f"{upstream.url}/platform/sim/code", params={"person": "p01", "minutes_ago": "5"}, timeout=5
    ).json()["code"]
    record = requests.post(f"{upstream.url}/platform/verify", json={"code": code}, timeout=5).json()
    generated = datetime.fromisoformat(record["generated_at"].replace("Z", "+00:00"))
    assert generated == (NOW - timedelta(minutes=5)).replace(second=0)


def test_unknown_codes_and_people(upstream: ReferenceUpstream) -> None:
    answer = requests.post(f"{upstream.url}/platform/verify", json={"code": "HCP1:NOTAREALCODE"}, timeout=5)
    assert answer.status_code == 404
    assert answer.json() == {"status": "unknown"}
    assert requests.get(f"{upstream.url}/platform/sim/code", params={"person": "nobody"}, timeout=5).status_code == 404
    bad_age = requests.get(f"{upstream.url}/platform/sim/code", params={"person": "p01", "minutes_ago": "-3"}, timeout=5)
    assert bad_age.status_code == 400


@pytest.mark.parametrize("body", [b"not json", b'{"code": 42}', b'["HCP1:X"]', b"{}"])
def test_a_verify_request_without_a_string_code_is_a_400(upstream: ReferenceUpstream, body: bytes) -> None:
    answer = requests.post(f"{upstream.url}/platform/verify", data=body, timeout=5)
    assert answer.status_code == 400


def test_the_platform_token_is_checked_when_configured(tmp_path: Path) -> None:
    with ReferenceUpstream(data_dir=tmp_path, platform_token="platform-token") as guarded:
        code = guarded.population.code_for("p01")
        refused = requests.post(f"{guarded.url}/platform/verify", json={"code": code}, timeout=5)
        assert refused.status_code == 401
        assert refused.json()["status"] == "unauthorized"
        allowed = requests.post(
            f"{guarded.url}/platform/verify", json={"code": code},
            headers={"Authorization": "Bearer platform-token"}, timeout=5,
        )
        assert allowed.json()["colour"] == "green"


def test_unknown_routes_and_methods(upstream: ReferenceUpstream) -> None:
    assert requests.get(f"{upstream.url}/nothing-here", timeout=5).status_code == 404
    assert requests.get(f"{upstream.url}/platform/verify", timeout=5).status_code == 405


# --- foreground server ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.e2e
def test_serve_prints_its_url_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    script = "import sys; from kiosk.sim.upstream import serve; sys.exit(serve(0, sys.argv[1]))"
    process = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        line = process.stdout.readline()
        url = line.split()[3]
        assert url.startswith("http://127.0.0.1:")
        assert post_events(url, ndjson([event(1)])).json() == {"accepted": 1, "duplicates": 0}
        os.kill(process.pid, signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert (tmp_path / "collector.db").exists()


def test_a_repeated_idempotency_key_gets_the_first_answer_without_storing_again(upstream: ReferenceUpstream) -> None:
    body = ndjson([event(1), event(2)])
    first = post_events(upstream.url, body, **{"Idempotency-Key": "batch-1"})
    assert first.json() == {"accepted": 2, "duplicates": 0}
    again = post_events(upstream.url, body, **{"Idempotency-Key": "batch-1"})
    assert again.json() == {"accepted": 2, "duplicates": 0, "replayed": True}
    other = post_events(upstream.url, ndjson([event(2), event(3)]), **{"Idempotency-Key": "batch-2"})
    assert other.json() == {"accepted": 1, "duplicates": 1}
    assert upstream.collector.count() == 3
    assert upstream.collector.copies() == 4  # e2 arrived twice; the replayed batch was not processed


def test_injected_faults_hit_the_next_requests_in_order(upstream: ReferenceUpstream) -> None:
    upstream.inject(Fault("status", status=503, retry_after="7"), Fault("drop"))
    refused = post_events(upstream.url, ndjson([event(1)]))
    assert (refused.status_code, refused.headers["Retry-After"]) == (503, "7")
    with pytest.raises(requests.ConnectionError):
        post_events(upstream.url, ndjson([event(2)]))
    assert post_events(upstream.url, ndjson([event(3)])).status_code == 200
    assert [e["id"] for e in upstream.collector.events()] == ["e3"]
    assert upstream.stats == {"fault": 2, "stored": 1}


def test_tls_is_served_when_given_a_certificate(tmp_path: Path) -> None:
    cert, key = self_signed_cert(tmp_path / "tls")
    with ReferenceUpstream(data_dir=tmp_path / "up", tls_cert=cert, tls_key=key) as secure:
        answer = requests.post(f"{secure.url}/events", data=ndjson([event(1)]), timeout=5, verify=str(cert))
        assert answer.json() == {"accepted": 1, "duplicates": 0}
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(f"{secure.url}/events", timeout=5, verify=True)


def test_a_certificate_that_cannot_be_loaded_gives_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "bad.pem").write_text("not a certificate")
    with pytest.raises(ServeError, match="cannot load the TLS certificate"):
        ReferenceUpstream(data_dir=tmp_path / "up", tls_cert=tmp_path / "bad.pem")
