"""Every ```python block of the README runs as written, one test per block, each on its own (a block
imports and builds what it uses), and says the time it takes on its first line (``# about N s on 2 cores``).
The example of "Your own model" is also checked for what it claims."""
import re
import time
from pathlib import Path

import matplotlib.pyplot as plt
import pyro
import pytest
import torch

# one torch thread, as the README's times were measured: on shared cores small models run several times
# faster on one thread than on two
pytestmark = pytest.mark.usefixtures("one_thread")

README = Path(__file__).resolve().parents[1] / "README.md"
TIME_COMMENT = re.compile(r"^# about (\d+(?:\.\d+)?) s on 2 cores\b")


def readme_blocks() -> list[tuple[str, str]]:
    """(heading, code) of every ```python block, in order; the heading is the nearest one above it."""
    text = README.read_text(encoding="utf-8")
    blocks, heading = [], None
    for m in re.finditer(r"^(#{2,4} [^\n]*)$|^```python\n(.*?)^```", text, flags=re.S | re.M):
        if m.group(1):
            heading = m.group(1).lstrip("#").strip()
        else:
            blocks.append((heading, m.group(2)))
    return blocks


BLOCKS = readme_blocks()


def _slug(heading):
    return re.sub(r"[^a-z0-9]+", "_", heading.lower()).strip("_")[:40]


def _check_your_own_model(namespace, out):
    table = namespace["cmp"].table
    assert sorted(table.loc[["delta", "normal", "mvn"], "rank"]) == [1, 2, 3]
    assert "elpd_loo" in out
    locs = namespace["map_fit"].posterior_mean()["locs"].sort().values
    torch.testing.assert_close(locs, torch.tensor([-2.0, 2.0]), atol=0.5, rtol=0)
    assert namespace["idata"].posterior["k"].shape[-1] == 100
    assert repr(namespace["map_fit"]).startswith("FitResult(model=model, method='map', guide='my_guide'")


CHECKS = {"Your own model": _check_your_own_model}


def test_the_blocks_are_found_and_each_says_its_time():
    assert len(BLOCKS) >= 12
    for heading, code in BLOCKS:
        assert TIME_COMMENT.match(code), f"the block under {heading!r} does not start with '# about N s on 2 cores'"
    assert {h for h, _ in BLOCKS} >= set(CHECKS)


@pytest.mark.parametrize("index", range(len(BLOCKS)),
                         ids=[f"{i + 1:02d}_{_slug(h)}" for i, (h, _) in enumerate(BLOCKS)])
def test_readme_block_runs(index, capsys):
    heading, code = BLOCKS[index]
    pyro.clear_param_store()
    namespace = {"__name__": f"readme_block_{index + 1}"}
    start = time.perf_counter()
    try:
        exec(compile(code, f"README.md (block {index + 1}: {heading})", "exec"), namespace)
    finally:
        plt.close("all")
        pyro.clear_param_store()
    elapsed = time.perf_counter() - start
    out = capsys.readouterr().out
    if heading in CHECKS:
        CHECKS[heading](namespace, out)
    with capsys.disabled():
        stated = float(TIME_COMMENT.match(code).group(1))
        print(f"\nREADME block {index + 1} ({heading}): {elapsed:.1f} s (stated: about {stated:g} s)")
