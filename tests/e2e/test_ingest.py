"""Ingest over real HTTP and UDP: good input is accepted, bad input is answered, never fatal."""

from __future__ import annotations

import json
import socket
import threading

from tests.conftest import Launch


def test_http_accepts_object_array_and_ndjson(launch: Launch) -> None:
    """HTTP ingest takes one object, a JSON array and NDJSON, and counts every event."""
    sidecar = launch()
    one = sidecar.post({"kind": "message", "guild_id": 1, "author_id": 2, "length": 5})
    assert one.status == 200 and one.body == {"accepted": 1, "rejected": []}
    many = sidecar.post(
        [{"kind": "latency", "ms": 41.5}, {"kind": "metric", "name": "q", "value": 3}]
    )
    assert many.status == 200 and many.body["accepted"] == 2
    ndjson = (
        b'{"kind":"log","level":"info","message":"a"}\n'
        b'{"kind":"log","level":"warning","message":"b"}\n'
    )
    lines = sidecar.post_raw(ndjson, "application/x-ndjson")
    assert lines.status == 200 and lines.body["accepted"] == 2
    assert sidecar.health()["received"] == 5
    assert sidecar.stop() == 0


def test_http_rejects_bad_input_with_a_named_problem(launch: Launch) -> None:
    """Bad bodies get a 400 or 413 naming the problem, and the sidecar stays healthy."""
    sidecar = launch(ingest="max_body_bytes = 65536")
    cases = [
        (b"", 400, "empty body"),
        (b"   \n", 400, "empty body"),
        (b"{not json", 400, "invalid JSON"),
        (b"[]", 400, "empty batch"),
        (b'{"kind":"telepathy"}', 400, "kind"),
        (b'{"kind":"command","name":"x","duration_ms":"fast"}', 400, "duration_ms"),
        (b'{"kind":"command"}', 400, "name"),
        (b'{"kind":"log","level":"loud","message":"x"}', 400, "level"),
        (b'{"kind":"message","id":"' + b"x" * 200 + b'"}', 400, "id"),
        (b"[" * 5000 + b"]" * 5000, 400, ""),
        (
            b'{"kind":"metric","name":"x","value":1,"tags":' + b'{"a":' * 3000 + b"1" + b"}" * 3001,
            400,
            "",
        ),
        (b"x" * 70000, 413, "too large"),
    ]
    for body, status, needle in cases:
        answer = sidecar.post_raw(body)
        assert answer.status == status, (body[:60], answer)
        assert needle in json.dumps(answer.body), (body[:60], answer)
    assert sidecar.health()["status"] == "ok"
    assert sidecar.stop() == 0
    assert "Traceback" not in sidecar.stderr


def test_partial_batch_accepts_the_good_and_names_the_bad(launch: Launch) -> None:
    """In a mixed batch the valid events are taken and each invalid one is named by its index."""
    sidecar = launch()
    answer = sidecar.post(
        [
            {"kind": "command", "name": "ping", "duration_ms": 3},
            {"kind": "command", "name": "ping", "duration_ms": "slow"},
            {"kind": "guild", "action": "join", "guild_id": 9},
            {"kind": "guild", "action": "explode", "guild_id": 9},
            "not an object",
        ]
    )
    assert answer.status == 200
    assert answer.body["accepted"] == 2
    rejected = {r["index"]: r["error"] for r in answer.body["rejected"]}
    assert set(rejected) == {1, 3, 4}
    assert "duration_ms" in rejected[1]
    assert "action" in rejected[3]
    health = sidecar.health()
    assert health["received"] == 2 and health["rejected_http"] == 3
    sidecar.stop()


def test_udp_datagrams_and_malformed_ones_are_counted(launch: Launch) -> None:
    """UDP datagrams, packed ones too, are ingested; malformed ones are counted and reported."""
    sidecar = launch()
    good = b'{"kind":"metric","name":"players","value":12}'
    packed = b"\n".join(
        json.dumps({"kind": "reaction", "action": "add", "emoji": "👍", "id": f"r{i}"}).encode()
        for i in range(50)
    )
    sidecar.send_udp([good, packed, b"\xff\xfe garbage", b'{"kind":"nope"}', b""])
    sidecar.wait_for(lambda: sidecar.health()["received"] == 51, timeout=10)
    sidecar.wait_for(lambda: sidecar.health()["malformed_udp"] == 3, timeout=10)
    assert sidecar.stop() == 0
    # Reported on the diagnostics channel (previewed here, as no webhook is configured).
    diagnostics = sidecar.stdout.split("── #diagnostics")[-1]
    assert "malformed udp" in diagnostics and " 3" in diagnostics


def test_udp_receive_buffer_is_enlarged(launch: Launch) -> None:
    """The UDP receive buffer is enlarged as configured, and the UDP listener is announced."""
    sidecar = launch(ingest="udp_receive_buffer = 4194304")
    assert sidecar.health()["udp_receive_buffer"] >= 212992
    sidecar.stop()
    assert "UDP on" in sidecar.stderr


def test_kinds_reserved_for_astra_itself_are_refused(launch: Launch) -> None:
    """Kinds only astra emits (pipeline) are refused over ingest; the rest of the batch is taken."""
    sidecar = launch()
    forged = {"kind": "pipeline", "window_s": 60, "dropped_buffer": 999}
    answer = sidecar.post([forged, {"kind": "latency", "ms": 3}])
    assert answer.status == 200 and answer.body["accepted"] == 1
    assert "reserved" in answer.body["rejected"][0]["error"]
    sidecar.stop()


def test_a_stalled_client_or_a_chatty_sender_cannot_hold_up_shutdown(launch: Launch) -> None:
    """A stalled HTTP client and a nonstop UDP sender cannot hold up the sidecar's stop."""
    sidecar = launch(ingest="", body="[shutdown]\ndeadline = 2\n")
    stalled = socket.create_connection(("127.0.0.1", sidecar.port))
    stalled.sendall(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
    stop_sending = threading.Event()

    def chatter() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            while not stop_sending.is_set():
                udp.sendto(
                    b'{"kind":"metric","name":"spam","value":1}', ("127.0.0.1", sidecar.port)
                )

    sender = threading.Thread(target=chatter, daemon=True)
    sender.start()
    try:
        sidecar.wait_for(lambda: sidecar.health()["received"] > 1000, timeout=20)
        # Well under aiohttp's own 60 s for open connections: killed (and failed) otherwise.
        assert sidecar.stop(timeout=25) == 0
    finally:
        stop_sending.set()
        sender.join()
        stalled.close()
