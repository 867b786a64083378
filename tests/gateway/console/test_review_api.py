"""The review inbox's API: reviewers and admins only (agents refused), CSRF on every label, the
turns worth a look filtered, labels kept in SQL and in flows/reviewed.yml (read back by the
training data loader), an unknown intent refused with the list, live precision beside the
deployed release's held-out figures."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from core.nlu import scores
from core.nlu.data import Example, load_flows_dir
from core.nlu.gate import Evaluation
from core.review import trainfile
from tests.gateway.console.conftest import record
from tests.gateway.console.test_api import sign_in
from tests.support.doubles import KeywordNlu, RecordingChannel
from tests.support.handoff import PersonDialogue

NOW = time.time()


async def test_review_labels_files_and_precision(
    gateway_factory: Any, recording_channel: RecordingChannel, flows_copy: Path, tmp_path: Path
) -> None:
    release = tmp_path / "models" / "r1"
    release.mkdir(parents=True)
    scores.write(release, Evaluation(0.9, {"order_status": 0.8}, 40, {"order_status": 0.95}))
    (tmp_path / "model").symlink_to(release)
    async with gateway_factory(
        nlu=KeywordNlu(),
        dialogue=PersonDialogue(),
        channels={"test": recording_channel},
        flows_dir=flows_copy,
        model_dir=tmp_path / "model",
    ) as (client, services):
        store = services.desk.conversations
        await record(store, "a", NOW - 50, "hi there", "greet", 0.98, "answered")
        await record(store, "b", NOW - 40, "my parcel never came", "greet", 0.52, "answered")
        await record(store, "c", NOW - 30, "money back pls", "order_status", 0.45, "clarified")
        await record(store, "d", NOW - 20, "blorp", None, None, "fallback", channel="webchat")
        await record(store, "e", NOW - 10, "where is it", "order_status", 0.9, "answered",
                     feedback="down")  # fmt: skip
        agents = services.desk.agents
        await agents.add("ann", "agent", "ann-password")
        await agents.add("rey", "reviewer", "rey-password")
        await agents.add("root", "admin", "root-password")

        assert (await client.get("/api/review")).status == 401
        signed_out = await client.get("/console/review", allow_redirects=False)
        assert signed_out.status == 302 and signed_out.headers["Location"] == "/console"
        ann = await sign_in(client, "ann", "ann-password")
        assert (await client.get("/api/review")).status == 403
        assert (await client.get("/api/review/precision")).status == 403
        assert (await client.get("/console/review")).status == 403
        refused = await client.post("/api/review/1/label", json={"label": "right"}, headers=ann)
        assert refused.status == 403 and "may not review" in (await refused.json())["error"]

        rey = await sign_in(client, "rey", "rey-password")
        assert (await client.get("/console/review")).status == 200
        r = await client.get("/api/review")
        assert r.status == 200, await r.text()
        items = (await r.json())["items"]
        assert [i["text"] for i in items] == [
            "where is it", "blorp", "money back pls", "my parcel never came",
        ]  # fmt: skip
        turn = {i["text"]: i["turn"] for i in items}
        assert items[0]["reasons"] == ["thumbs_down"] and items[0]["feedback"] == "down"
        assert items[2]["reasons"] == ["low_confidence", "clarified"]
        fallback = await client.get("/api/review", params={"reason": "fallback"})
        assert [i["text"] for i in (await fallback.json())["items"]] == ["blorp"]
        web = await client.get("/api/review", params={"channel": "webchat"})
        assert [i["text"] for i in (await web.json())["items"]] == ["blorp"]
        greet = await client.get("/api/review", params={"intent": "greet"})
        assert [i["text"] for i in (await greet.json())["items"]] == ["my parcel never came"]
        bad = await client.get("/api/review", params={"reason": "boredom"})
        assert bad.status == 400
        intents = (await (await client.get("/api/review/intents")).json())["intents"]
        assert "order_status" in intents and "out_of_scope" not in intents

        # CSRF: a label without the token (or from another origin) changes nothing.
        path = f"/api/review/{turn['my parcel never came']}/label"
        body = {"label": "relabel", "intent": "order_status"}
        assert (await client.post(path, json=body)).status == 403
        assert (await client.post(path, json=body, headers={"X-CSRF-Token": "x"})).status == 403
        other = {**rey, "Origin": "https://evil.example"}
        assert (await client.post(path, json=body, headers=other)).status == 403
        assert not (flows_copy / trainfile.FILE_NAME).exists()

        # An intent that does not exist: refused with the list.
        nope = await client.post(path, json={"label": "relabel", "intent": "lunch"}, headers=rey)
        assert nope.status == 400
        refusal = await nope.json()
        assert "lunch" in refusal["error"] and refusal["intents"] == intents
        assert (await client.post(path, json={"label": "maybe"}, headers=rey)).status == 400
        assert (await client.post("/api/review/999999/label", json=body, headers=rey)).status == 404

        # Relabel, right, a new example, ignore.
        r = await client.post(path, json=body, headers=rey)
        assert r.status == 200, await r.text()
        assert (await r.json())["review"]["by"] == "rey" and (await r.json())["written"]
        right = f"/api/review/{turn['where is it']}/label"
        assert (await client.post(right, json={"label": "right"}, headers=rey)).status == 200
        root = await sign_in(client, "root", "root-password")
        example = {"label": "example", "intent": "refund", "text": "I want my  money back"}
        new = f"/api/review/{turn['money back pls']}/label"
        assert (await client.post(new, json=example, headers=root)).status == 200
        ignore = f"/api/review/{turn['blorp']}/label"
        r = await client.post(ignore, json={"label": "ignore"}, headers=root)
        assert r.status == 200 and not (await r.json())["written"]

        left = await client.get("/api/review")
        assert (await left.json())["items"] == []
        done = await (await client.get("/api/review", params={"status": "done"})).json()
        labels = {i["text"]: (i["review"]["label"], i["review"]["by"]) for i in done["items"]}
        assert labels == {
            "where is it": ("right", "rey"),
            "blorp": ("ignore", "root"),
            "money back pls": ("example", "root"),
            "my parcel never came": ("relabel", "rey"),
        }

        # The file: who labelled what and when, read back by training.
        entries = trainfile.read(flows_copy / trainfile.FILE_NAME)
        assert [(e.intent, e.text, e.label, e.by, e.was) for e in entries] == [
            ("order_status", "my parcel never came", "relabel", "rey", "greet"),
            ("order_status", "where is it", "right", "rey", "order_status"),
            ("refund", "I want my money back", "example", "root", "order_status"),
        ]
        assert all(e.at and e.at.startswith(time.strftime("%Y-", time.gmtime())) for e in entries)
        examples = load_flows_dir(flows_copy)
        assert Example("my parcel never came", "order_status") in examples
        assert Example("I want my money back", "refund") in examples

        # Live precision: order_status 1 right; greet 0 of 1. Offline from the release.
        r = await client.get("/api/review/precision")
        got = await r.json()
        assert got["offline"] == {"accuracy": 0.9, "n": 40, "release": "r1"}
        rows = {row["intent"]: row for row in got["intents"]}
        assert rows["order_status"]["live"] == {"precision": 1.0, "right": 1, "wrong": 0}
        assert rows["order_status"]["offline"] == {"precision": 0.95, "recall": 0.8}
        assert rows["greet"]["live"] == {"precision": 0.0, "right": 0, "wrong": 1}
        assert rows["greet"]["offline"] == {"precision": None, "recall": None}

        # Changing one's mind: the turn's entry is replaced, not added.
        again = await client.post(path, json={"label": "ignore"}, headers=root)
        assert again.status == 200
        texts = [e.text for e in trainfile.read(flows_copy / trainfile.FILE_NAME)]
        assert "my parcel never came" not in texts and len(texts) == 2
