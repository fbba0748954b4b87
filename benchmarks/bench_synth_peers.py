"""The synthesizer beside the SDV peers on the same training rows, every set scored with the same metrics.

Sets (each ``--rows`` rows, default 4,000):

- ``product``: ``Synthesizer(--run).generate`` (histories of ``--rows-per-history`` rows),
  once per ``--product`` configuration (temperature, de-duplication against the training
  rows, its amount tolerance);
- ``SDV GaussianCopula``, ``SDV CTGAN`` (``--ctgan-epochs``), ``SDV PAR``
  (``--par-epochs``, sequences = cards in time order), fitted on the training rows'
  SDMetrics view (``sdm.sdv_view``; optional: ``pip install -e ".[peers]"``; a peer that
  is not installed, or ``--peers none``, is left out with a note);
- the real references: stretches of real training cards of the product's shape (as many
  histories of ``--rows-per-history`` rows, started like the product's: ``real_stretches``),
  a sample of the real training rows, and the real held-out rows; and, for the DCR,
  new real rows of the training period (``same_period_dcr``: a random 20% of the training
  rows against the other 80%).

Metrics, all against the training rows: SDMetrics column shapes and column pair trends
(``sdm.quality``), median DCR to the training rows (``sdm.dcr``, without the time),
near-copies (equal to a training row in every column but the time), exact copies;
use-chip accuracy on the held-out rows of a classifier trained on the set
(``utility.use_chip_metrics``); histories (``histories.history_metrics``: in order as
written, time-gap 1 - KS, median days of a 200-row stretch / real); generation or
fitting time. Writes a JSON file and the Markdown table; ``--doc docs/SYNTHESIS.md``
replaces the table between the ``<!-- peers-table -->`` markers there.

Run:  python3 benchmarks/bench_synth_peers.py --run RUN --train TRAIN.csv --holdout HOLDOUT.csv
          [--rows 4000] [--product T=1.0,dedupe ...] [--peers gaussian_copula,ctgan,par | --peers-json OLD.json]
          [--json out.json] [--doc docs/SYNTHESIS.md]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

MARK = "<!-- peers-table -->"


def from_sdv_view(view: pd.DataFrame, user_base: int = 100_000) -> pd.DataFrame:
    """An SDMetrics view (``sdm.sdv_view``) back to a typed TabFormer table; user = ``user_base`` + card."""
    from data_sources.tabformer import TYPED_COLUMNS, TYPED_DTYPES
    from forecaster.synthesis.features import MISSING

    def text(c):
        s = view[c].astype(object)
        return s.where(s != MISSING, None)

    out = pd.DataFrame({
        "card": pd.to_numeric(text("card")).fillna(0).astype("int64"),
        "timestamp": pd.to_datetime(view["timestamp"]).dt.floor("min"),
        "amount": view["amount"].astype(float).round(2),
    })
    out["user"] = user_base + out["card"]
    for c in ("merchant_name", "zip", "mcc"):
        out[c] = pd.to_numeric(text(c), errors="coerce")
    out["merchant_name"] = out["merchant_name"].fillna(0)
    out["mcc"] = out["mcc"].fillna(0)
    for c in ("use_chip", "merchant_city", "merchant_state", "errors"):
        out[c] = text(c)
    out["is_fraud"] = view["is_fraud"].astype(str) == "True"
    out = out[list(TYPED_COLUMNS)]
    return out.astype({c: TYPED_DTYPES[c] for c in TYPED_COLUMNS})


def real_stretches(train: pd.DataFrame, n_hist: int, rows: int, seed: int = 0) -> pd.DataFrame:
    """``n_hist`` stretches of ``rows`` consecutive real training rows of one card, started like the
    product's histories: (card, month) by systematic sampling over the training rows' joint table
    (``generate.systematic_picks``), from the card's first row in that month (earlier when fewer than
    ``rows`` rows follow). Users ``100000 + i``: what real histories of the product's shape score."""
    from forecaster.synthesis.documents import order_cards
    from forecaster.synthesis.generate import systematic_picks
    from forecaster.synthesis.train import seed_statistics

    t = order_cards(train)
    pairs = seed_statistics(t)["card_months"]
    picks = systematic_picks([w for _, _, w in pairs], n_hist, np.random.default_rng(seed))
    cards = t["card"].astype("int64").to_numpy()
    months = t["timestamp"].dt.to_period("M").astype(str).to_numpy()
    parts = []
    for i, p in enumerate(picks):
        card, month, _ = pairs[p]
        mine = np.flatnonzero(cards == card)
        pos = min(int(np.argmax(months[mine] == month)), max(len(mine) - rows, 0))
        part = t.iloc[mine[pos:pos + rows]].copy()
        part["user"] = 100_000 + i
        parts.append(part)
    out = pd.concat(parts, ignore_index=True)
    return out.astype({"user": train["user"].dtype})


def same_period_dcr(train: pd.DataFrame, holdout: pd.DataFrame, args) -> dict:
    """How close genuinely new real rows *of the training period* lie to the rest: a random 20% of
    the training rows (seed ``args.seed``) against the other 80%, beside the held-out rows (a later
    period) against the same 80%: median DCR (``sdm.dcr``) and near-copy rate."""
    from forecaster.synthesis import sdm
    from forecaster.synthesis.privacy import near_copy_rate

    pick = np.random.default_rng(args.seed).random(len(train)) < 0.2
    rest, new = train[~pick].reset_index(drop=True), train[pick].reset_index(drop=True)
    d = sdm.dcr(sdm.sdv_view(rest), sdm.sdv_view(holdout), sdm.sdv_view(new), max_rows=args.dcr_rows, seed=0)
    return {"new_rows_median": d["synthetic_median"], "holdout_median": d["holdout_median"],
            "new_rows_near_copy_rate": near_copy_rate(rest, new), "holdout_near_copy_rate": near_copy_rate(rest, holdout),
            "new_rows": int(pick.sum())}


def fit_peer(name: str, train_view: pd.DataFrame, rows: int, args) -> tuple[pd.DataFrame, float]:
    """Fit one SDV synthesizer on the training view and sample ``rows`` rows; returns (view, seconds)."""
    from sdv.metadata import Metadata

    from forecaster.synthesis import sdm

    meta = Metadata.load_from_dict({"tables": {"t": {"columns": sdm.metadata()["columns"]}}})
    t0 = time.perf_counter()
    if name == "gaussian_copula":
        from sdv.single_table import GaussianCopulaSynthesizer

        model = GaussianCopulaSynthesizer(meta)
        model.fit(train_view)
        out = model.sample(rows)
    elif name == "ctgan":
        from sdv.single_table import CTGANSynthesizer

        model = CTGANSynthesizer(meta, epochs=args.ctgan_epochs, cuda=False)
        model.fit(train_view)
        out = model.sample(rows)
    elif name == "par":
        from sdv.sequential import PARSynthesizer

        d = meta.to_dict()
        d["tables"]["t"]["columns"]["card"] = {"sdtype": "id"}
        d["tables"]["t"]["sequence_key"] = "card"
        d["tables"]["t"]["sequence_index"] = "timestamp"
        pmeta = Metadata.load_from_dict(d)
        # PAR learns whole sequences; the five cards are cut into pieces of rows_per_history rows
        view = train_view.sort_values(["card", "timestamp"], kind="stable").reset_index(drop=True)
        piece = view.groupby("card").cumcount() // args.rows_per_history
        view["card"] = view["card"].astype(str) + "_" + piece.astype(str)
        model = PARSynthesizer(pmeta, epochs=args.par_epochs, cuda=False, verbose=False)
        model.fit(view)
        out = model.sample(num_sequences=max(1, rows // args.rows_per_history),
                           sequence_length=args.rows_per_history)
        out["card"] = out["card"].astype(str).str.extract(r"(\d+)", expand=False).fillna("0")
        out = out.iloc[:rows]
    else:
        raise SystemExit(f"unknown peer {name!r}")
    return out.reset_index(drop=True), time.perf_counter() - t0


def score(name: str, table: pd.DataFrame, train: pd.DataFrame, holdout: pd.DataFrame, views: dict,
          seconds: float | None, args) -> dict:
    """Every metric of the module doc for one set."""
    from forecaster.synthesis import sdm
    from forecaster.synthesis.features import features
    from forecaster.synthesis.histories import history_metrics
    from forecaster.synthesis.privacy import exact_copy_rate, near_copy_rate
    from forecaster.synthesis.utility import use_chip_metrics

    view = sdm.sdv_view(table)
    q = sdm.quality(views["train"], view)
    d = sdm.dcr(views["train"], views["holdout"], view, max_rows=args.dcr_rows, seed=0)
    chip = use_chip_metrics(views["train_f"], views["holdout_f"], features(table), seed=0)
    hist = history_metrics(train, table, span_rows=args.rows_per_history)
    return {"set": name, "rows": len(table), "column_shapes": q["column_shapes"],
            "column_pair_trends": q["column_pair_trends"], "per_column": q["per_column"],
            "dcr_median": d["synthetic_median"], "dcr_holdout_median": d["holdout_median"],
            "dcr_zero_share": d["synthetic_zero_share"],
            "near_copy_rate": near_copy_rate(train, table), "exact_copy_rate": exact_copy_rate(train, table),
            "use_chip_accuracy": chip["accuracy_synthetic"], "use_chip_accuracy_real": chip["accuracy_real"],
            "ordered_share": hist["ordered_share"], "gap_ks_complement": hist["gap_ks_complement"],
            "span_days_median": hist["span_days_median_synthetic"], "span_days_real": hist["span_days_median_real"],
            "gap_days_max": hist["gap_days_max_synthetic"], "seconds": seconds,
            "rows_per_s": (len(table) / seconds) if seconds else None}


def markdown(results: list[dict], note: str) -> str:
    def f(v, spec=".3f"):
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return "—"
        if isinstance(v, float) and 0 < abs(v) < 0.001:
            return f"{v:.1e}"
        return format(v, spec)

    lines = ["| set | column shapes | pair trends | median DCR | near-copies | use-chip acc. (held-out) | "
             "ordered histories | gap 1-KS | 200-row span, days | rows/s |", "|---" * 10 + "|"]
    for r in results:
        pct = "—" if r["near_copy_rate"] is None else f"{r['near_copy_rate']:.2%}"
        lines.append(f"| {r['set']} | {f(r['column_shapes'])} | {f(r['column_pair_trends'])} | {f(r['dcr_median'], '.4f')} "
                     f"| {pct} | {f(r['use_chip_accuracy'], '.2f')} | "
                     f"{f(r['ordered_share'], '.2f')} | {f(r['gap_ks_complement'], '.2f')} | "
                     f"{f(r['span_days_median'], '.0f')} | {f(r['rows_per_s'], ',.0f')} |")
    return "\n".join(lines) + "\n\n" + note


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, required=True, help="the `synth train` run (or `synth export-model` folder)")
    ap.add_argument("--train", type=Path, required=True)
    ap.add_argument("--holdout", type=Path, required=True)
    ap.add_argument("--rows", type=int, default=4000)
    ap.add_argument("--rows-per-history", type=int, default=200)
    ap.add_argument("--product", action="append", default=None,
                    help="a product configuration, repeatable: T=1.0[,dedupe][,tol=DOLLARS][,extra=0.25][,noise=S][,raw] "
                         "(temperature; near-copy de-duplication against the training rows; amount tolerance; "
                         "extra rows sampled per history; --amount-noise; raw: without the run's marginal "
                         "calibration); default T=1.0,dedupe")
    ap.add_argument("--peers-json", type=Path, help="reuse the peer rows of an earlier run's --json (no refit)")
    ap.add_argument("--peers", default="gaussian_copula,ctgan,par", help="comma-separated, or 'none'")
    ap.add_argument("--ctgan-epochs", type=int, default=10)
    ap.add_argument("--par-epochs", type=int, default=16)
    ap.add_argument("--dcr-rows", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--doc", type=Path, help="replace the table between the peers-table markers of this file")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    from forecaster.synthesis import sdm
    from forecaster.synthesis.documents import read_table
    from forecaster.synthesis.features import features
    from forecaster.synthesis.generate import Synthesizer
    from forecaster.synthesis.privacy import NearCopyIndex
    from foundation.atomic import write_text

    train, holdout = read_table(args.train), read_table(args.holdout)
    views = {"train": sdm.sdv_view(train), "holdout": sdm.sdv_view(holdout), "train_f": features(train),
             "holdout_f": features(holdout)}
    results = []
    synth = Synthesizer(args.run)
    synth.generate(20, rows_per_history=10, seed=99)  # warm-up
    index = NearCopyIndex(train)
    for spec in args.product or ["T=1.0,dedupe"]:
        opts = dict(p.split("=", 1) if "=" in p else (p, "1") for p in spec.split(","))
        temp, dedupe = float(opts.get("T", 1.0)), "dedupe" in opts
        tol, extra = float(opts.get("tol", 0.0)), float(opts.get("extra", 0.25))
        noise = float(opts.get("noise", 0.0))
        marginals = "raw" not in opts  # raw: without the run's marginal calibration (synth calibrate)
        t0 = time.perf_counter()
        table, stats = synth.generate(args.rows, rows_per_history=args.rows_per_history, seed=args.seed,
                                      temperature=temp, dedupe=index if dedupe else None, dedupe_tolerance=tol,
                                      dedupe_extra=extra, amount_noise=noise, marginals=marginals)
        gen_s = time.perf_counter() - t0
        label = (f"product (T={temp:g}{', dedupe' if dedupe else ''}{f' ±${tol:g}' if tol else ''}"
                 f"{f', noise {noise:g}' if noise else ''}"
                 f"{', calibrated' if marginals and synth.marginals is not None else ''})")
        results.append(score(label, table, train, holdout, views, gen_s, args))
        results[-1]["generation"] = stats.to_dict()
        print(json.dumps({k: v for k, v in results[-1].items() if k != "per_column"}), flush=True)
    peers = [] if args.peers == "none" or args.peers_json else args.peers.split(",")
    notes = []
    if args.peers_json:  # peer rows of an earlier run, same data and metrics
        results += [r for r in json.loads(args.peers_json.read_text())["results"] if r["set"].startswith("SDV")]
    for name in peers:
        try:
            view, secs = fit_peer(name, views["train"], args.rows, args)
        except ImportError as exc:
            notes.append(f"{name}: not installed ({exc}); `pip install -e \".[peers]\"`")
            continue
        label = {"gaussian_copula": "SDV GaussianCopula", "ctgan": f"SDV CTGAN, {args.ctgan_epochs} epochs",
                 "par": f"SDV PAR, {args.par_epochs} epochs"}[name]
        results.append(score(label, from_sdv_view(view), train, holdout, views, secs, args))
        print(json.dumps({k: v for k, v in results[-1].items() if k != "per_column"}), flush=True)
    n_hist = -(-args.rows // args.rows_per_history)
    stretches = real_stretches(train, n_hist, args.rows_per_history, seed=args.seed).iloc[:args.rows]
    results.append(score(f"real training stretches ({n_hist} x {args.rows_per_history} rows)",
                         stretches.reset_index(drop=True), train, holdout, views, None, args))
    print(json.dumps({k: v for k, v in results[-1].items() if k != "per_column"}), flush=True)
    rng = np.random.default_rng(args.seed)
    sample = train.iloc[np.sort(rng.choice(len(train), min(args.rows, len(train)), replace=False))]
    results.append(score("real training rows (sample)", sample.reset_index(drop=True), train, holdout, views, None, args))
    for k in ("ordered_share", "gap_ks_complement", "span_days_median", "gap_days_max"):
        results[-1][k] = None  # a random sample of rows is not a set of histories
    results.append(score("real held-out rows", holdout, train, holdout, views, None, args))
    for r in results[-2:]:
        print(json.dumps({k: v for k, v in r.items() if k != "per_column"}), flush=True)
    same = same_period_dcr(train, holdout, args)
    print(json.dumps({"same_period": same}), flush=True)
    meta = {"same_period": same, "rows": args.rows, "train_rows": len(train), "holdout_rows": len(holdout), "threads": args.threads,
            "cpu_count": os.cpu_count(), "load_average": os.getloadavg(), "run": str(args.run),
            "notes": notes}
    note = (f"{args.rows:,} rows per set; every score against the {len(train):,} training rows; rows/s = generation "
            f"(product) or fit + sample (peers) on {args.threads} thread(s), load average "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores. New real rows of the training period (a random 20% "
            f"of the training rows against the other 80%): median DCR {same['new_rows_median']:.1e}, near-copies "
            f"{same['new_rows_near_copy_rate']:.2%}; the held-out rows against the same 80%: {same['holdout_median']:.1e}."
            + (" " + "; ".join(notes) if notes else ""))
    table_md = markdown(results, note)
    print(table_md)
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, "results": results}, indent=2, default=str))
    if args.doc:
        text = args.doc.read_text()
        block = f"{MARK}\n{table_md}\n{MARK}"
        if text.count(MARK) == 2:
            text = re.sub(f"{MARK}.*?{MARK}", lambda _m: block, text, flags=re.S)
        else:
            text = text.rstrip() + "\n\n" + block + "\n"
        write_text(args.doc, text)


if __name__ == "__main__":
    main()
