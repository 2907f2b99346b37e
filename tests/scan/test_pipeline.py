"""Contract §5 and §10 end to end: submit → worker → SSE stages → stored result → reward."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from sqlalchemy import select

from services.scan.models import Outbox
from tests.scan.conftest import StackFactory

STAGE_ORDER = [
    ("queued", "completed", 0),
    ("vision", "started", 0),
    ("vision", "completed", 25),
    ("rule", "started", 25),
    ("rule", "completed", 50),
    ("answer", "started", 50),
    ("answer", "completed", 75),
    ("reward", "started", 75),
    ("reward", "completed", 100),
    ("done", "completed", 100),
]


async def test_photo_with_hint_to_guidance_and_reward(make_stack: StackFactory) -> None:
    stack = await make_stack()
    submitted = await stack.submit("라벨 떼고 헹군 생수병이에요")
    assert submitted.status_code == 202, submitted.text
    body = submitted.json()
    job_id = body["job_id"]
    assert body == {
        "job_id": job_id,
        "stream_url": f"/api/v1/scan/{job_id}/events",
        "result_url": f"/api/v1/scan/{job_id}/result",
        "status": "queued",
    }
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", job_id)

    response, frames = await stack.stream(job_id)  # follows live until done, then closes
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    assert response.text.startswith("retry: 3000\n")
    assert frames[0] == {"retry": "3000"}
    events = frames[1:]
    assert [(f["event"], f["data"]["status"], f["data"]["progress"]) for f in events] == STAGE_ORDER
    assert [int(f["id"]) for f in events] == list(range(1, len(events) + 1))
    assert all(f["data"]["seq"] == int(f["id"]) and f["data"]["job_id"] == job_id for f in events)
    assert all(f["data"]["stage"] == f["event"] for f in events)

    result = await stack.result(job_id)
    assert events[-1]["data"]["result"] == result  # done carries the full result, stored before it
    assert result["status"] == "completed"
    assert result["task_id"] == job_id
    assert result["error"] is None
    pipeline = result["pipeline_result"]
    classification = pipeline["classification_result"]
    assert {k: v for k, v in classification.items() if k != "guidance"} == {
        "classification": {
            "major_category": "재활용폐기물",
            "middle_category": "무색페트병",
            "minor_category": "생수병",
        },
        "situation_tags": ["비닐_라벨_완전_제거됨"],
    }
    # Additive guidance fields (the contract's keys above are unchanged): confidence and candidates.
    assert classification["guidance"]["confidence"] >= 0.9
    assert classification["guidance"]["candidates"] == []
    rules = pipeline["disposal_rules"]
    assert rules["key"] == "재활용폐기물_무색페트병"
    steps = pipeline["final_answer"]["disposal_steps"]
    assert list(steps) == [f"단계{i}" for i in range(1, len(steps) + 1)]
    assert list(steps.values()) == rules["common_method"]  # steps come from our rule document
    assert pipeline["final_answer"]["insufficiencies"] == []
    assert result["reward"] == {
        "name": "페티",
        "dialog": result["reward"]["dialog"],
        "match_reason": "무색페트병>생수병",
        "type": result["reward"]["type"],
        "received": True,
        "already_owned": False,
        "points_awarded": 60,
    }
    # The second correctly prepared bottle: the character is already owned.
    again = await stack.result((await stack.submit("라벨 뗀 생수병")).json()["job_id"])
    assert (again["reward"]["received"], again["reward"]["already_owned"], again["reward"]["points_awarded"]) == (
        False,
        True,
        10,
    )
    # scan.reward_granted went into the outbox with the result, once per job.
    db = stack.service.db
    async with db.session() as session:
        rows = (await session.execute(select(Outbox).where(Outbox.type == "scan.reward_granted"))).scalars().all()
    payloads = {r.payload["job_id"]: r.payload for r in rows if r.payload["user_id"] == str(stack.user_id)}
    assert {k: v for k, v in payloads[job_id].items() if k != "_trace"} == {
        "user_id": str(stack.user_id),
        "job_id": job_id,
        "character_code": "char-petty",
        "character_name": "페티",
        "received": True,
        "points": 60,
    }
    assert (payloads[again["job_id"]]["received"], payloads[again["job_id"]]["points"]) == (False, 10)
    assert len(payloads) == 2


async def test_insufficiency_means_no_reward(make_stack: StackFactory) -> None:
    stack = await make_stack()
    result = await stack.result((await stack.submit("라벨 안 뗀 생수병")).json()["job_id"])
    assert result["status"] == "completed"
    assert result["pipeline_result"]["final_answer"]["insufficiencies"] == ["겉에 붙은 비닐 라벨을 떼어 주세요."]
    assert "reward" in result
    assert result["reward"] is None


async def test_unknown_item_apologises(make_stack: StackFactory) -> None:
    stack = await make_stack()
    result = await stack.result((await stack.submit("이게 뭔지 모르겠어요")).json()["job_id"])
    assert result["status"] == "completed"
    pipeline = result["pipeline_result"]
    assert pipeline["classification_result"]["classification"]["major_category"] == "미분류"
    assert pipeline["classification_result"]["classification"]["minor_category"]  # never empty
    assert pipeline["disposal_rules"] is None
    assert pipeline["final_answer"]["disposal_steps"] == {}
    assert len(pipeline["final_answer"]["insufficiencies"]) == 1
    assert result["reward"] is None


async def test_ambiguous_item_gets_a_question(make_stack: StackFactory) -> None:
    stack = await make_stack()
    result = await stack.result((await stack.submit("뚜껑")).json()["job_id"])
    pipeline = result["pipeline_result"]
    assert pipeline["classification_result"]["classification"]["major_category"] == "미분류"
    guidance = pipeline["classification_result"]["guidance"]
    assert {c["middle"] for c in guidance["candidates"]} == {"플라스틱류", "금속류"}
    assert guidance["question"] in pipeline["final_answer"]["user_answer"]
    assert pipeline["disposal_rules"] is None
    assert result["reward"] is None


async def test_photo_without_text_or_model_fails_clearly(make_stack: StackFactory) -> None:
    """Issue 11.4: the camera flow has no text box, so a photo with no model configured must end at
    once with a failure that says image recognition needs a model — not a generic error after a wait."""
    stack = await make_stack()
    job_id = (await stack.submit()).json()["job_id"]
    _, frames = await stack.stream(job_id)  # opened right after the submit, like the client
    tail = [(f["event"], f["data"]["status"]) for f in frames[-2:]]
    assert tail == [("vision", "failed"), ("done", "failed")]
    assert frames[-2]["data"]["result"] == {"reason": "VISION_UNAVAILABLE"}
    result = frames[-1]["data"]["result"]
    assert result == await stack.result(job_id)
    assert result["status"] == "failed"
    assert result["pipeline_result"] is None
    assert result["reward"] is None
    # The contract's code, and the distinct cause beside it.
    assert result["error"]["code"] == "CLASSIFICATION_FAILED"
    assert result["error"]["reason"] == "VISION_UNAVAILABLE"
    assert "이미지 인식 모델이 필요" in result["error"]["message"]
    assert "--model-url" in result["error"]["message"]
    assert result["message"] == result["error"]["message"]
    # Failed by the vision stage itself, not by the 120 s deadline.
    took = datetime.fromisoformat(result["completed_at"]) - datetime.fromisoformat(result["created_at"])
    assert took < timedelta(seconds=stack.settings.job_deadline_seconds / 4)


async def test_model_provider_pipeline(make_stack: StackFactory) -> None:
    stack = await make_stack(model=True)
    before = len(stack.llm.requests)
    job_id = (await stack.submit(model="fake-vlm-mini")).json()["job_id"]
    result = await stack.result(job_id)
    assert result["status"] == "completed", result
    assert result["pipeline_result"]["final_answer"]["user_answer"] == "생수병은 무색페트병으로 분리배출해요."
    calls = stack.llm.requests[before:]
    assert [c["kind"] for c in calls] == ["classification", "answer"]
    assert {c["body"]["model"] for c in calls} == {"fake-vlm-mini"}
    image_part = calls[0]["body"]["messages"][1]["content"][1]["image_url"]["url"]
    assert image_part.startswith("data:image/png;base64,")  # the image bytes, never a URL to fetch
    bad = await stack.submit(model="gpt-unknown")
    assert bad.status_code == 400
    assert bad.json()["code"] == "UNSUPPORTED_MODEL"


async def test_model_answer_outage_falls_back_to_rule_document(make_stack: StackFactory) -> None:
    stack = await make_stack(model=True, llm_max_retries=0)
    stack.llm.fail_next["answer"] = 10
    result = await stack.result((await stack.submit()).json()["job_id"])
    assert result["status"] == "completed"
    steps = list(result["pipeline_result"]["final_answer"]["disposal_steps"].values())
    assert steps == result["pipeline_result"]["disposal_rules"]["common_method"]


async def test_classification_failure_is_terminal(make_stack: StackFactory) -> None:
    stack = await make_stack(model=True, llm_max_retries=0, llm_output_attempts=2)
    stack.llm.invalid_next["classification"] = 10
    result = await stack.result((await stack.submit()).json()["job_id"])
    assert result["status"] == "failed"
    assert result["error"]["code"] == "CLASSIFICATION_FAILED"
