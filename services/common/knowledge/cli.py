"""``eco2 eval guidance``: the evaluation set against the offline classifier or a model endpoint."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from services.common.knowledge.base import KnowledgeBase, knowledge_base
from services.common.knowledge.evaluation import (
    HELD_OUT_FLOOR,
    Case,
    Prediction,
    Report,
    evaluate,
    load_cases,
    score,
)
from services.common.knowledge.taxonomy import UNCLASSIFIED

app = typer.Typer(help="Measure the guidance (classification, rule citation) on the evaluation set.",
                  no_args_is_help=True)  # fmt: skip
console = Console()


@app.command("guidance")
def guidance(
    split: Annotated[str, typer.Option(help="dev, held-out or all")] = "dev",
    model: Annotated[
        str | None,
        typer.Option(help="a model id at --base-url, or an OpenAI-compatible base URL (http…/v1); default: offline"),
    ] = None,
    model_name: Annotated[str | None, typer.Option(help="model id when --model is a URL")] = None,
    base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible base URL for a model id")] = None,
    api_key_env: Annotated[str, typer.Option(help="environment variable holding the API key")] = "SCAN_LLM_API_KEY",
    concurrency: Annotated[int, typer.Option(min=1, max=64, help="parallel model calls")] = 8,
    failures: Annotated[bool, typer.Option(help="list every wrong answer")] = False,
    min_accuracy: Annotated[float | None, typer.Option(help="exit 1 below this accuracy")] = None,
) -> None:
    """Per-major accuracy, confusion pairs, rule-citation rate, confidence and latency."""
    kb = knowledge_base()
    if model is None:
        report = evaluate(kb, split)
        source = "offline classifier"
    else:
        if model.startswith(("http://", "https://")):
            base_url, model_id = model, model_name or "default"
        else:
            base_url, model_id = base_url or os.environ.get("SCAN_LLM_BASE_URL"), model
        api_key = os.environ.get(api_key_env) or "none"  # local servers accept any key
        cases = load_cases(split)
        predictions = asyncio.run(_model_predictions(kb, cases, base_url, api_key, model_id, concurrency))
        report = score(kb, split, cases, predictions)
        source = f"model {model_id} at {base_url or 'the OpenAI API'}"
    _print(report, source, failures)
    if min_accuracy is not None and report.accuracy < min_accuracy:
        console.print(f"[red]accuracy {report.accuracy:.1%} is below {min_accuracy:.1%}[/]")
        raise typer.Exit(1)


async def _model_predictions(kb: KnowledgeBase, cases: list[Case], base_url: str | None, api_key: str,
                             model_id: str, concurrency: int) -> list[Prediction]:  # fmt: skip
    from services.common.ai import Classification, ModelError, OpenAICompatibleProvider, OpenAIConfig, compose_answer

    provider = OpenAICompatibleProvider(
        kb, OpenAIConfig(base_url, api_key, (model_id,), timeout_seconds=60, max_retries=1, max_concurrency=concurrency)
    )
    failed = Prediction(UNCLASSIFIED, UNCLASSIFIED, None, 0.0)

    async def one(case: Case) -> Prediction:
        started = time.perf_counter()
        try:
            c: Classification = await provider.classify_text(text=case.query, model=None)
        except ModelError as exc:
            console.print(f"[yellow]{case.id}: {exc}[/]")
            return failed
        seconds = time.perf_counter() - started
        rule = kb.rule_for(c.major, c.middle)
        steps = tuple(compose_answer(kb, c, rule).disposal_steps.values())
        candidates = tuple(x.rule_id for x in c.candidates if x.rule_id)
        return Prediction(c.major, c.middle, rule.key if rule else None, c.confidence, candidates,
                          c.situation_tags, steps, seconds)  # fmt: skip

    try:
        return list(await asyncio.gather(*(one(case) for case in cases)))
    finally:
        await provider.close()


def _print(report: Report, source: str, failures: bool) -> None:
    console.print(f"[bold]guidance eval[/] — split {report.split}, {len(report.outcomes)} queries, {source}")
    table = Table("major", "correct", "total", "accuracy")
    for major, (right, total) in report.per_major().items():
        table.add_row(major, str(right), str(total), f"{right / total:.1%}")
    right = sum(o.correct for o in report.outcomes)
    table.add_row("[bold]all[/]", str(right), str(len(report.outcomes)), f"[bold]{report.accuracy:.1%}[/]")
    console.print(table)
    kinds = Table("kind", "correct", "total")
    for kind, (right, total) in report.kinds().items():
        kinds.add_row(kind, str(right), str(total))
    console.print(kinds)
    confusions = report.confusions()
    if confusions:
        pairs = Table("expected", "answered", "count", title="confusion pairs")
        for expected, answered, count in confusions[:15]:
            pairs.add_row(expected, answered, str(count))
        console.print(pairs)
    tags_right, tags_total = report.tag_checks()
    pairs_right, pairs_total = report.pairs()
    console.print(f"rule-document citation: {report.cited}/{report.answered} answers ({report.citation_rate:.1%})")
    console.print(f"wrong answers with confidence ≥ 0.8: {len(report.confident_wrong())}")
    console.print(
        f"condition tags found: {tags_right}/{tags_total}; condition pairs fully right: {pairs_right}/{pairs_total}"
    )
    console.print(f"latency per query: p50 {report.latency_ms(0.5):.3f} ms, p99 {report.latency_ms(0.99):.3f} ms")
    if report.split == "held-out":
        console.print(f"documented floor for the offline classifier on held-out: {HELD_OUT_FLOOR:.0%}")
    if failures:
        wrong = Table("id", "query", "expected", "answered", "conf", title="wrong answers")
        for o in report.outcomes:
            if not o.correct:
                p = o.prediction
                wrong.add_row(o.case.id, o.case.query, f"{o.case.major}/{o.case.middle}", f"{p.major}/{p.middle}",
                              f"{p.confidence or 0:.2f}")  # fmt: skip
        console.print(wrong)
