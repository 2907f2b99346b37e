"""Benchmark of the item dictionary search (``GET /api/v1/info/items``) over the whole dictionary.

Queries: for every item of the knowledge package its name, each alias, its first two syllables
(prefix), each known misspelling, a one-jamo typo of its name (fuzzy) and the initial consonants of
its name; plus queries that match nothing. Measures the search call (the knowledge package's
``ItemIndex``) and the server side of the whole request (the ASGI app from arrival to last byte:
routing, validation, search, rendering; ``asgi_timer.py``), p50/p99/max per query kind. No database
is involved (the dictionary lives in memory).

Usage: ``uv run python bench/info_items.py [--rounds 1]``
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import unicodedata
from collections import defaultdict
from pathlib import Path

from bench.asgi_timer import ServerTimer
from services.common.config import CommonSettings, Environment
from services.common.knowledge import knowledge_base
from services.common.migrations import upgrade
from services.info.app import create_app
from services.info.config import InfoSettings
from services.info.dictionary import ItemDictionary
from tests.support.clients import app_client

CHOSUNG = "ㄱㄲㄴㄷㄸㄹㅁㅂㅃㅅㅆㅇㅈㅉㅊㅋㅌㅍㅎ"


def initials(text: str) -> str:
    return "".join(CHOSUNG[(ord(ch) - 0xAC00) // 588] for ch in text if "가" <= ch <= "힣")


def one_jamo_typo(text: str) -> str:
    """The name with its last syllable's vowel changed (ㅏ ↔ ㅓ …): one jamo edit."""
    for i in range(len(text) - 1, -1, -1):
        if "가" <= text[i] <= "힣":
            code = ord(text[i]) - 0xAC00
            vowel = (code % 588) // 28
            changed = 0xAC00 + (code // 588) * 588 + ((vowel + 4) % 21) * 28 + code % 28
            return text[:i] + chr(changed) + text[i + 1 :]
    return text + "x"


def queries() -> dict[str, list[str]]:
    kinds: dict[str, list[str]] = defaultdict(list)
    for item in knowledge_base().items.values():
        kinds["name"].append(item.name)
        kinds["alias"].extend(item.aliases)
        kinds["prefix"].append(item.name[:2])
        kinds["misspelling"].extend(item.misspellings)
        kinds["typo (fuzzy)"].append(unicodedata.normalize("NFC", one_jamo_typo(item.name)))
        if initials(item.name):
            kinds["initials"].append(initials(item.name))
    kinds["no match"] = [f"없는물건{n}" for n in range(200)]
    return kinds


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def main(rounds: int) -> None:
    dictionary = ItemDictionary(knowledge_base())
    all_queries = queries()
    print(f"dictionary: {len(knowledge_base().items)} items; {sum(map(len, all_queries.values()))} queries")
    with tempfile.TemporaryDirectory() as tmp:
        common = CommonSettings(environment=Environment.TEST, data_dir=Path(tmp), log_level="WARNING")
        await asyncio.to_thread(upgrade, "info", f"sqlite+aiosqlite:///{tmp}/info.db")
        print(f"\n{'queries':<14}{'n':>6}{'search p50':>12}{'p99':>8}{'max':>8}{'server p50':>12}{'p99':>8}"
              f"{'max':>8}{'cpu p99':>10}")  # fmt: skip
        timer = ServerTimer(create_app(common=common, settings=InfoSettings(environment="test")))
        async with app_client(timer) as client:  # type: ignore[arg-type]
            for text in [t for texts in all_queries.values() for t in texts][:300]:  # warm-up, not counted
                dictionary.search(text, 20)
                await client.get("/api/v1/info/items", params={"q": text, "limit": 20})
            timer.take()
            everything: list[float] = []
            all_cpu: list[float] = []
            for kind, texts in all_queries.items():
                direct: list[float] = []
                for _ in range(rounds):
                    for text in texts:
                        started = time.perf_counter()
                        dictionary.search(text, 20)
                        direct.append((time.perf_counter() - started) * 1000)
                        response = await client.get("/api/v1/info/items", params={"q": text, "limit": 20})
                        assert response.status_code == 200
                http, cpu = timer.take()
                everything.extend(http)
                print(
                    f"{kind:<14}{len(direct):>6}{statistics.median(direct):>10.2f}ms{percentile(direct, 0.99):>6.2f}ms"
                    f"{max(direct):>6.2f}ms{statistics.median(http):>10.2f}ms{percentile(http, 0.99):>6.2f}ms"
                    f"{max(http):>6.2f}ms{percentile(cpu, 0.99):>8.2f}ms"
                )
                all_cpu.extend(cpu)
            print(
                f"\nall requests, server side: wall p50 {statistics.median(everything):.2f} ms, "
                f"p99 {percentile(everything, 0.99):.2f} ms; CPU p50 {statistics.median(all_cpu):.2f} ms, "
                f"p99 {percentile(all_cpu, 0.99):.2f} ms"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    asyncio.run(main(parser.parse_args().rounds))
