"""The runner with the real assistant, loaded by its default dotted path (``CHAT_ASSISTANT``), offline
(no model configured): a question answered end to end, the tokens streamed equal to the stored answer."""

from __future__ import annotations

from services.chat.config import ChatSettings
from services.chat.runner import MissingAssistant, assistant_problem, load_assistant
from tests.chat.conftest import StackFactory
from tests.chat.doubles import client_view


async def test_the_default_assistant_answers_through_the_runner(make_stack: StackFactory) -> None:
    stack = await make_stack(worker=False)
    settings = ChatSettings(environment="test")
    assert assistant_problem(settings) is None
    assistant = load_assistant(settings, stack.common)
    assert not isinstance(assistant, MissingAssistant)
    try:
        await stack.start_worker(assistant)
        chat_id = await stack.create_chat()
        job_id = await stack.ask(chat_id, "페트병 어떻게 버려요?")
        _, events = await stack.stream(job_id)
    finally:
        await assistant.aclose()
    done = events[-1]["data"]
    assert done["status"] == "completed", done
    answer = done["result"]["answer"]
    assert "페트" in answer
    assert client_view(events) == answer  # what the client appended is what was stored
    assert done["result"]["intent"] == "waste"
    messages = (await stack.history(chat_id))["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert messages[1]["content"] == answer
    assert messages[1]["id"] == done["result"]["persistence"]["assistant_message"]
    names = {f["event"] for f in events}
    assert {"queued", "intent", "answer", "token", "done"} <= names
