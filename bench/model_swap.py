"""How long a hot model swap takes and how long it leaves a process without a model: a parser
serves MODEL_DIR's release while customers send messages without pause; a copy of the release is
deployed, the watcher loads it and swaps it in. Reports the load time (the old model answering
meanwhile), messages answered without a model (target: none) and the slowest answer around it.

    python -m bench.model_swap --model-dir var/model"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
from pathlib import Path

from core.nlu.parser import ModelParser, ServeConfig
from core.nlu.releases import Releases
from core.nlu.watch import ModelWatcher


async def measure(model: Path, customers: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        rel = Releases(root=Path(tmp) / "models", pointer=Path(tmp) / "model")
        for _ in range(2):
            out = rel.new_dir()
            shutil.copytree(model.resolve(), out)
        first, second = sorted(p for p in rel.root.iterdir())
        rel.deploy(first)
        parser = ModelParser(rel.pointer, ServeConfig(threads=1))
        await parser.start()
        answered: list[tuple[float, float, bool]] = []  # (sent, took, had a model)
        stop = asyncio.Event()

        async def customer(n: int) -> None:
            while not stop.is_set():
                t0 = time.perf_counter()
                result = await parser.parse(f"where is my order {n}")
                answered.append((t0, time.perf_counter() - t0, result.intent is not None))

        watcher = ModelWatcher(parser, interval=3600)
        tasks = [asyncio.create_task(customer(n)) for n in range(customers)]
        await asyncio.sleep(2.0)
        rel.deploy(second)
        swap_start = time.perf_counter()
        assert await watcher.check()
        swap_end = time.perf_counter()
        await asyncio.sleep(2.0)
        stop.set()
        await asyncio.gather(*tasks)
        await parser.close()
    during = [took for sent, took, _ in answered if swap_start <= sent <= swap_end]
    before = sorted(took for sent, took, _ in answered if sent < swap_start)
    without = sum(1 for *_, ok in answered if not ok)
    print(f"messages answered: {len(answered)} ({customers} customers sending without pause)")
    print(f"new model loaded and swapped in: {swap_end - swap_start:.2f} s (old model answering)")
    print(f"answered without a model: {without}")
    print(
        f"answer time before the swap p50 {1000 * before[len(before) // 2]:.1f} ms; "
        f"during it: {len(during)} messages, slowest {1000 * max(during, default=0):.1f} ms"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model-dir", type=Path, default=Path("var/model"))
    p.add_argument("--customers", type=int, default=4)
    args = p.parse_args()
    asyncio.run(measure(args.model_dir, args.customers))


if __name__ == "__main__":
    main()
