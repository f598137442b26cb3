"""`kiosk verify` and `kiosk trust`, as staff and external test suites run them."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from kiosk.cli import main
from kiosk.sim.credentials import DEMO_OPERATOR_PUBLIC_KEY, DccIssuer
from kiosk.sim.population import Population
from kiosk.sim.upstream import ReferenceUpstream

CORPORA = Path(__file__).resolve().parents[2] / "shared" / "corpora"
EXAMPLE_ISSUER = "https://spec.smarthealth.cards/examples/issuer"
NOW = datetime(2026, 11, 26, 9, 30, tzinfo=timezone.utc)
needs_corpora = pytest.mark.skipif(not CORPORA.is_dir(), reason=f"public corpora not found at {CORPORA}")


def run(capsys, *args: str, stdin: str | None = None, monkeypatch=None) -> tuple[int, dict | None, str]:
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    status = main(["verify", *args])
    out, err = capsys.readouterr()
    return status, (json.loads(out) if out.strip() else None), err


@pytest.fixture()
def jwks() -> str:
    if not CORPORA.is_dir():
        pytest.skip(f"public corpora not found at {CORPORA}")
    return f"{EXAMPLE_ISSUER}={CORPORA / 'shc/issuer/.well-known/jwks.json'}"


def corpus_case(name: str) -> dict:
    return json.loads((CORPORA / "dcc" / name).read_text())


@needs_corpora
@pytest.mark.parametrize("form", ["der", "pem"])
def test_dcc_with_a_signer_certificate(capsys, tmp_path: Path, form: str) -> None:
    case = corpus_case("DE/2DCode/raw/1.json")
    der = base64.b64decode(case["TESTCTX"]["CERTIFICATE"])
    cert = tmp_path / f"signer.{form}"
    if form == "der":
        cert.write_bytes(der)
    else:
        cert.write_bytes(x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM))
    status, line, _ = run(capsys, "--at", case["TESTCTX"]["VALIDATIONCLOCK"], "--trust-cert", str(cert), case["PREFIX"])
    assert status == 0
    assert line == {"scheme": "dcc", "valid": True, "colour": "green", "reasons": [], "issuer": "DE",
                    "expires": "2022-01-28T07:47:53Z", "problem": None}
    # Past its expiry: still exit 0, now invalid with its reason.
    status, line, _ = run(capsys, "--at", "2023-01-01T00:00:00Z", "--trust-cert", str(cert), case["PREFIX"])
    assert status == 0 and line["valid"] is False and line["reasons"] == ["expired"] and line["colour"] == "unknown"


@needs_corpora
def test_dcc_signed_by_someone_not_trusted(capsys, tmp_path: Path) -> None:
    case = corpus_case("AT/2DCode/raw/1.json")
    other = tmp_path / "other.der"
    other.write_bytes(DccIssuer().der)
    status, line, _ = run(capsys, "--at", case["TESTCTX"]["VALIDATIONCLOCK"], "--trust-cert", str(other), case["PREFIX"])
    assert status == 0 and line["valid"] is False and line["reasons"] == ["untrusted_issuer"]


@needs_corpora
def test_shc_examples(capsys, jwks: str, monkeypatch) -> None:
    at = "2023-07-01T00:00:00Z"
    single = (CORPORA / "shc/example-00-f-qr-code-numeric-value-0.txt").read_text().strip()
    status, line, _ = run(capsys, "--at", at, "--trust-jwks", jwks, single)
    assert status == 0 and line["valid"] is True and line["scheme"] == "shc" and line["issuer"] == EXAMPLE_ISSUER
    revoked = (CORPORA / "shc/example-03-f-qr-code-numeric-value-0.txt").read_text().strip()
    status, line, _ = run(capsys, "--at", at, "--trust-jwks", jwks, revoked)
    assert line["valid"] is False and line["reasons"] == ["revoked"] and line["expires"] == "2024-06-21T16:19:24.657000Z"
    parts = [p.read_text().strip() for p in sorted(CORPORA.glob("shc/example-02-f-qr-code-numeric-value-*.txt"))]
    status, line, _ = run(capsys, "--at", at, "--trust-jwks", jwks, "-", stdin="\n".join(parts) + "\n",
                          monkeypatch=monkeypatch)
    assert status == 0 and line["valid"] is True
    status, line, _ = run(capsys, "--at", at, "--trust-jwks", jwks, parts[1])
    assert line["reasons"] == ["incomplete_code"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--at", "yesterday", "HC1:X"], "--at"),
        (["--trust-cert", "/nonexistent/cert.der", "HC1:X"], "cannot read"),
        (["--trust-jwks", "no-equals-sign", "HC1:X"], "ISSUER_URL=PATH"),
        (["--trust-jwks", "https://x=/nonexistent/jwks.json", "HC1:X"], "cannot read"),
        (["--config", "/nonexistent/config.toml", "HC1:X"], "config error"),
    ],
)
def test_usage_errors_exit_2(capsys, args: list[str], message: str) -> None:
    status, line, err = run(capsys, *args)
    assert status == 2 and line is None and message in err


def test_bad_certificate_file_is_a_usage_error(capsys, tmp_path: Path) -> None:
    junk = tmp_path / "junk.der"
    junk.write_bytes(b"not a certificate")
    status, _, err = run(capsys, "--trust-cert", str(junk), "HC1:X")
    assert status == 2 and "not an X.509 certificate" in err


def test_empty_stdin_is_a_usage_error(capsys, monkeypatch) -> None:
    status, _, err = run(capsys, "-", stdin="\n", monkeypatch=monkeypatch)
    assert status == 2 and "no payload" in err


def test_missing_payload_is_argparses_usage_error(capsys) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["verify"])
    assert caught.value.code == 2


# -- against the kiosk's own config, trust list and platform --------------------------------------


@pytest.fixture()
def upstream_options() -> dict:
    return {"population": Population(clock=lambda: NOW)}


def kiosk_config(tmp_path: Path, upstream: ReferenceUpstream, operator_key: str = DEMO_OPERATOR_PUBLIC_KEY) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[kiosk]\ndata_dir = "{tmp_path / "data"}"\n'
        f'[platform]\nurl = "{upstream.url}/platform"\n'
        f'[trust]\nurl = "{upstream.url}/trust/list"\noperator_key = "{operator_key}"\n',
        encoding="utf-8",
    )
    return path


def test_trust_command_fetches_and_shows_the_list(capsys, tmp_path: Path) -> None:
    with ReferenceUpstream(data_dir=tmp_path / "upstream") as live:  # signs with the real time
        config = kiosk_config(tmp_path, live)
        assert main(["trust", "--config", str(config)]) == 1  # nothing fetched yet
        assert "OUT OF DATE: no trust list" in capsys.readouterr().out
        assert main(["trust", "--config", str(config), "--refresh"]) == 0
        out, err = capsys.readouterr()
        assert "trust list updated" in err and "state           current" in out
        assert "EU DCC signers  1  (XX 1)" in out and "https://shc.demo.invalid/issuer  1 key(s)" in out
        assert main(["trust", "--config", str(config), "--json", "--refresh"]) == 0
        out, err = capsys.readouterr()
        assert "trust list unchanged" in err
        status = json.loads(out)
        assert status["configured"] is True and status["dcc_signers"] == 1 and status["stale"] is False
        assert 0 <= status["age_h"] < 1 and status["clock"]
        live.stop()
        assert main(["trust", "--config", str(config), "--refresh"]) == 1  # the upstream is gone
        assert "refresh failed" in capsys.readouterr().err


def test_trust_command_without_an_operator_key(capsys, tmp_path: Path, upstream: ReferenceUpstream) -> None:
    assert main(["trust", "--config", str(kiosk_config(tmp_path, upstream, operator_key="")), "--refresh"]) == 1
    out, err = capsys.readouterr()
    assert "not configured" in out and "operator key" in err


def test_verify_uses_the_kiosks_trust_list(capsys, tmp_path: Path, upstream: ReferenceUpstream) -> None:
    config = kiosk_config(tmp_path, upstream)
    main(["trust", "--config", str(config), "--refresh"])
    capsys.readouterr()
    payload = upstream.credentials.dcc.issue(NOW - timedelta(days=1), NOW + timedelta(days=30))
    status, line, _ = run(capsys, "--config", str(config), "--at", "2026-11-26T10:00:00Z", payload)
    assert status == 0 and line["valid"] is True and line["issuer"] == "XX"
    # Three days later the list (max_age_h = 72) is out of date.
    status, line, _ = run(capsys, "--config", str(config), "--at", "2026-11-29T10:00:00Z", payload)
    assert line["valid"] is False and line["reasons"] == ["trust_list_stale"]


def test_verify_asks_the_platform_for_platform_codes(capsys, tmp_path: Path, upstream: ReferenceUpstream) -> None:
    config = kiosk_config(tmp_path, upstream)
    code = upstream.population.code_for("p07")
    status, line, _ = run(capsys, "--config", str(config), "--at", "2026-11-26T09:30:30Z", code)
    assert line == {"scheme": "platform", "valid": True, "colour": "red", "reasons": ["red_code"],
                    "issuer": "platform", "expires": None, "problem": None}
    status, line, _ = run(capsys, "--config", str(config), "--at", "2026-11-26T10:30:00Z", code)
    assert line["valid"] is False and line["reasons"] == ["red_code", "stale_code"]
    status, line, _ = run(capsys, "--config", str(config), "HCP1:" + "A" * 24)
    assert status == 0 and line["valid"] is False and line["reasons"] == ["unknown_code"]


@pytest.mark.slow
@pytest.mark.e2e
def test_the_installed_command(tmp_path: Path) -> None:
    """The real entry point, as an external test suite calls it: stdin in, one JSON line out."""
    issuer = DccIssuer()
    cert = tmp_path / "signer.der"
    cert.write_bytes(issuer.der)
    payload = issuer.issue(NOW - timedelta(days=1), NOW + timedelta(days=30), "t", result="260373001")
    done = subprocess.run(
        [sys.executable, "-m", "kiosk", "verify", "--at", "2026-11-26T09:30:00Z", "--trust-cert", str(cert), "-"],
        input=payload + "\n", capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0])["colour"] == "red" and json.loads(lines[0])["reasons"] == ["red_code"]


# -- hostile codes and quirky certificates ---------------------------------------------------------

DATA = Path(__file__).resolve().parent / "data" / "dcc-testdata"


def _hostile_payloads() -> dict[str, str]:
    import zlib

    import base45
    import cbor2

    shared_alg = b"\xa2\x01\xd8\x1c\x82\x01\x02\x04\x41\x00"  # alg: a shared list
    tiny = cbor2.dumps(cbor2.CBORTag(18, [shared_alg, {}, b"", b""]))
    return {
        "alg-shared-reference": "HC1:" + base45.b45encode(zlib.compress(tiny)).decode(),
        "alg-list": "HC1:" + base45.b45encode(zlib.compress(cbor2.dumps(cbor2.CBORTag(18, [cbor2.dumps({1: [1]}), {}, b"", b""])))).decode(),
        "alg-map": "HC1:" + base45.b45encode(zlib.compress(cbor2.dumps(cbor2.CBORTag(18, [cbor2.dumps({1: {1: 2}}), {}, b"", b""])))).decode(),
        "part-number-5000-digits": "shc:/" + "5" * 5000 + "/1/00",
        "lookalike-prefix": "\u041dC1:NCFOXN%TS3DH",
    }


@pytest.mark.parametrize("name", list(_hostile_payloads()))
def test_hostile_codes_are_refused_without_a_traceback(capsys, tmp_path: Path, name: str) -> None:
    payload = _hostile_payloads()[name]
    cert = tmp_path / "demo.der"
    cert.write_bytes(DccIssuer().der)
    status, line, err = run(capsys, "--at", "2026-11-26T09:30:00Z", "--trust-cert", str(cert), payload)
    assert status == 0 and line is not None and line["valid"] is False
    assert line["reasons"] == ["malformed_code"] and line["scheme"] in ("dcc", "shc")
    assert "Traceback" not in err


@pytest.mark.slow
@pytest.mark.e2e
def test_hostile_codes_through_the_installed_command(tmp_path: Path) -> None:
    cert = tmp_path / "demo.der"
    cert.write_bytes(DccIssuer().der)
    for name, payload in _hostile_payloads().items():
        done = subprocess.run(
            [sys.executable, "-m", "kiosk", "verify", "--at", "2026-11-26T09:30:00Z", "--trust-cert", str(cert), "-"],
            input=payload + "\n", capture_output=True, text=True, timeout=60,
        )
        assert done.returncode == 0 and "Traceback" not in done.stderr, (name, done.stderr)
        assert json.loads(done.stdout)["reasons"] == ["malformed_code"], name


@pytest.mark.parametrize("form", ["der", "pem"])
def test_a_signer_certificate_cryptography_refuses_is_trusted_all_the_same(capsys, tmp_path: Path, form: str) -> None:
    """The Finnish signer encodes BasicConstraints' default value, which cryptography refuses; it
    is read leniently, from DER or PEM, and its certificates verify under FI."""
    case = json.loads((DATA / "FI" / "1.json").read_text(encoding="utf-8"))
    der = base64.b64decode(case["TESTCTX"]["CERTIFICATE"])
    cert = tmp_path / f"fi.{form}"
    if form == "der":
        cert.write_bytes(der)
    else:
        text = base64.b64encode(der).decode()
        lines = "\n".join(text[i:i + 64] for i in range(0, len(text), 64))
        cert.write_text(f"-----BEGIN CERTIFICATE-----\n{lines}\n-----END CERTIFICATE-----\n", encoding="ascii")
    status, line, err = run(capsys, "--at", case["TESTCTX"]["VALIDATIONCLOCK"], "--trust-cert", str(cert), case["PREFIX"])
    assert status == 0 and line["valid"] is True and line["issuer"] == "FI" and line["colour"] == "green", err


def test_a_pem_file_holding_something_else_is_a_usage_error(capsys, tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    key.write_text("-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n", encoding="ascii")
    status, _, err = run(capsys, "--trust-cert", str(key), "HC1:X")
    assert status == 2 and "not a PEM certificate" in err


@pytest.mark.slow
@pytest.mark.e2e
def test_stdin_that_is_not_utf8_is_a_refusal_not_a_traceback(tmp_path: Path) -> None:
    cert = tmp_path / "demo.der"
    cert.write_bytes(DccIssuer().der)
    done = subprocess.run(
        [sys.executable, "-m", "kiosk", "verify", "--at", "2026-11-26T09:30:00Z", "--trust-cert", str(cert), "-"],
        input=b"HC1:\xff\xfe\x80NCFOXN\n", capture_output=True, timeout=60,
    )
    assert done.returncode == 0 and b"Traceback" not in done.stderr, done.stderr
    assert json.loads(done.stdout)["reasons"] == ["malformed_code"]


def test_refusal_problems_are_bounded(capsys, tmp_path: Path) -> None:
    """A hostile code cannot put a huge text into the log or the event through a parser message."""
    import zlib

    from kiosk.sim.credentials import ShcIssuerSim, numeric

    shc = ShcIssuerSim()
    key = "k" * 100_000
    card = ('{"' + key + '":1,"' + key + '":2}').encode()
    deflate = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    header = json.dumps({"zip": "DEF", "alg": "ES256", "kid": shc.kid}).encode()
    payload = "shc:/" + numeric(shc.sign_raw(header, deflate.compress(card) + deflate.flush()))
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(shc.jwks()), encoding="utf-8")
    status, line, _ = run(capsys, "--at", "2026-11-26T09:30:00Z", "--trust-jwks", f"{shc.iss}={jwks}", payload)
    assert status == 0 and line["reasons"] == ["malformed_code"] and len(line["problem"]) <= 300
