"""The README's example of "Your own model" runs as written, and says what it claims."""
import re
from pathlib import Path

import pyro
import torch

README = Path(__file__).resolve().parents[1] / "README.md"


def _section_code(heading: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    blocks = re.findall(r"```python\n(.*?)```", text[start:end if end > 0 else None], flags=re.S)
    assert len(blocks) == 1, f"expected one python block under '## {heading}', found {len(blocks)}"
    return blocks[0]


def test_your_own_model_example_runs(capsys):
    pyro.clear_param_store()
    namespace = {}
    exec(compile(_section_code("Your own model"), "README.md", "exec"), namespace)
    table = namespace["cmp"].table
    assert sorted(table.loc[["delta", "normal", "mvn"], "rank"]) == [1, 2, 3]
    assert "elpd_loo" in capsys.readouterr().out
    locs = namespace["map_fit"].posterior_mean()["locs"].sort().values
    torch.testing.assert_close(locs, torch.tensor([-2.0, 2.0]), atol=0.5, rtol=0)
    assert namespace["idata"].posterior["k"].shape[-1] == 100
    pyro.clear_param_store()
