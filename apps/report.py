"""Report rendering: the summary table of fit results (``zoo fit``, the tour's Old Faithful section) and
the tour's self-contained HTML page (figures embedded as base64 PNG) with its Markdown copy."""
from __future__ import annotations

import base64
import html
import warnings
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

if TYPE_CHECKING:
    from apps.tour import Section, Table

__all__ = ["summary_table", "render_html"]


# ----------------------------------------------------------------------------- fit results
def _fmt(arr) -> str:
    return np.array2string(np.asarray(arr), precision=3, separator=", ", suppress_small=True).replace("\n", "")


def summary_table(results: dict, *, unscale=None) -> pd.DataFrame:
    """One row per fit: run time, final loss, mean log-likelihood per datum at the posterior mean,
    elpd_loo (when the fit has several draws), the largest r_hat (several chains), and the
    posterior means of ``weights`` and ``locs``, sorted by the first feature's location so that
    rows compare across label switching. ``unscale=(mean, std)`` reports locations in the
    original units of standardised data."""
    import arviz as az

    rows = []
    for label, r in results.items():
        post = r.posterior_mean()
        with torch.no_grad():
            loglik = r.model.pointwise_log_likelihood(post, r.data).mean().item()
        row = {"fit": label, "run_time_s": round(r.run_time, 2),
               "final_loss": round(r.losses[-1], 3) if r.losses else np.nan,
               "loglik_per_datum": round(loglik, 4)}
        draws = r.num_chains * r.num_draws
        idata = None
        if draws > 1:
            idata = r.to_inference_data(assignments=False)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                row["elpd_loo"] = round(float(az.loo(idata).elpd_loo), 2)
        else:
            row["elpd_loo"] = np.nan
        if r.num_chains > 1 and idata is not None:
            with warnings.catch_warnings():  # constant entries (a Cholesky factor's diagonal) give NaN
                warnings.simplefilter("ignore")
                rhat = az.rhat(idata)
            row["max_r_hat"] = round(float(max(float(rhat[v].max()) for v in rhat.data_vars)), 4)
        else:
            row["max_r_hat"] = np.nan
        if "locs" in post:
            locs = post["locs"].cpu().numpy()
            if unscale is not None:
                locs = locs * np.asarray(unscale[1]) + np.asarray(unscale[0])
            order = np.argsort(locs[:, 0])
            row["locs"] = _fmt(locs[order])
            if "weights" in post:
                row["weights"] = _fmt(post["weights"].cpu().numpy()[order])
        rows.append(row)
    return pd.DataFrame(rows).set_index("fit")


# ----------------------------------------------------------------------------- the tour's report
_CSS = """
body { font-family: system-ui, -apple-system, Segoe UI, sans-serif; max-width: 1200px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #444; } h2 { margin-top: 2.2em; border-bottom: 1px solid #bbb; }
table { border-collapse: collapse; margin: 0.6em 0 1.2em; font-size: 0.88em; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #f1f1f1; } caption { caption-side: top; text-align: left; font-style: italic; padding: 4px 0; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.9em; color: #444; } code { background: #f4f4f4; padding: 0 3px; }
.meta { color: #666; font-size: 0.9em; } nav li { margin: 0.15em 0; }
"""


def _inline(text: str) -> str:
    """Escape prose and turn `code` spans into <code>."""
    parts = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def _table_html(t: Table) -> str:
    def fmt(v):
        if isinstance(v, (float, np.floating)):
            if not np.isfinite(v):
                return "—"
            return f"{v:.5g}" if 1e-3 <= abs(v) < 1e6 or v == 0 else f"{v:.3e}"
        return str(v)

    body = t.frame.to_html(border=0, na_rep="—", float_format=fmt, escape=True)
    end = body.index(">") + 1  # after the opening <table ...>
    return f"{body[:end]}<caption>{_inline(t.caption)}</caption>{body[end:]}"


def render_html(sections: list[Section], *, title: str, meta: str) -> str:
    """A self-contained HTML page: every figure embedded as a base64 PNG ``data:`` URI."""
    out = ["<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\">",
           f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
           f"<h1>{html.escape(title)}</h1>", f"<p class=\"meta\">{_inline(meta)}</p>", "<nav><ol>"]
    out += [f"<li><a href=\"#{s.key}\">{html.escape(s.title)}</a></li>" for s in sections]
    out.append("</ol></nav>")
    for s in sections:
        out.append(f"<section id=\"{s.key}\"><h2>{html.escape(s.title)}</h2>")
        out += [f"<p>{_inline(p)}</p>" for p in s.prose]
        out += [_table_html(t) for t in s.tables]
        for f in s.figures:
            data = base64.b64encode(f.png).decode("ascii")
            out.append(f"<figure><img src=\"data:image/png;base64,{data}\" alt=\"{html.escape(f.name)}\">"
                       f"<figcaption>{_inline(f.caption)} (<code>{html.escape(f.name)}</code>)</figcaption></figure>")
        out.append(f"<p class=\"meta\">Section run time {s.run_time:.1f} s.</p></section>")
    out.append("</body></html>")
    return "\n".join(out)


def _render_markdown(sections: list[Section], *, title: str, meta: str) -> str:
    """The report as Markdown: prose, each table as text in a code block, figures as links to the PNGs."""
    lines = [f"# {title}", "", meta, ""]
    for s in sections:
        lines += [f"## {s.title}", ""]
        for p in s.prose:
            lines += [p, ""]
        for t in s.tables:
            lines += [f"*{t.caption}*", "", "```", t.frame.to_string(), "```", ""]
        for f in s.figures:
            lines += [f"![{f.name}]({f.name})", "", f.caption, ""]
    return "\n".join(lines)
