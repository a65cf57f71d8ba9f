"""Tables comparing fit results."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import torch

__all__ = ["summary_table"]


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
        point = {k: v for k, v in post.items()}
        with torch.no_grad():
            loglik = r.model.pointwise_log_likelihood(point, r.data).mean().item()
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
