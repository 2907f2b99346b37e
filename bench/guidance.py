"""Benchmark: the offline classifier (per query) and the item dictionary search, in one process.

Classifier: every query of the evaluation set (dev + held-out), ``--rounds`` times, timed one by one.
Search: a fixed mix of the query kinds the info service serves (names, prefixes, aliases, partial
words, initials such as "ㅍㅌㅂ", typos), timed the same way. Both are reported as wall time and as
the thread's CPU time: on a shared machine a wall-time tail is mostly other processes taking the
CPU, while CPU time is the code's own cost. The start-up heap is frozen first, as services do.

    uv run python bench/guidance.py              # 20 rounds
    uv run python bench/guidance.py --rounds 5

Targets (issue 16 / 14): classifier p99 ≤ 2 ms, search p99 ≤ 5 ms. Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import time
from collections.abc import Callable

from services.common.knowledge import knowledge_base
from services.common.knowledge.evaluation import load_cases

SEARCH_QUERIES = (
    "페트병", "생수병", "페트", "ㅍㅌㅂ", "ㅇㅇㅍ", "페트벙", "스티로품", "우유", "종이컵", "컵", "배터리", "밧데리",
    "형광둥", "소파", "매트리스", "약", "폐의약품", "페인트", "깨진 유리", "택배", "박스", "비닐", "ㅂㄴ", "냄비",
    "알류미늄", "전자레인지", "이불", "뼈", "껍질", "샘물", "라면", "ㄱㅈㅈ", "건전지", "캔", "유리병 뚜껑", "장난감",
)  # fmt: skip


def measure(label: str, fn: Callable[[str], object], queries: list[str], rounds: int) -> None:
    wall: list[float] = []
    cpu: list[float] = []
    for _ in range(rounds):
        for query in queries:
            w, c = time.perf_counter(), time.thread_time()
            fn(query)
            cpu.append(time.thread_time() - c)
            wall.append(time.perf_counter() - w)

    def q(values: list[float], p: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000

    for name, values in (("wall", wall), ("cpu", cpu)):
        print(
            f"{label:10} {name:4}  n={len(values):6}  mean {statistics.fmean(values) * 1000:.3f} ms  "
            f"p50 {q(values, 0.5):.3f}  p90 {q(values, 0.9):.3f}  p99 {q(values, 0.99):.3f}  "
            f"max {max(values) * 1000:.3f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    started = time.perf_counter()
    kb = knowledge_base()
    loaded = time.perf_counter() - started
    gc.collect()
    gc.freeze()
    queries = [case.query for case in load_cases("all")]
    for query in queries + list(SEARCH_QUERIES):  # warm caches once, outside the timing
        kb.classify(query)
        kb.search(query)
    print(f"knowledge base loaded in {loaded * 1000:.0f} ms; load average {os.getloadavg()[0]:.2f}")
    print(f"{len(kb.items)} items, {len(kb.classifier.lexicon)} word forms, {len(queries)} eval queries")
    measure("classify", kb.classify, queries, args.rounds)
    measure("search", lambda q: kb.search(q, 20), list(SEARCH_QUERIES), args.rounds * 10)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
