"""``chorus analyze``: task-vector geometry and composition diagnostics."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from . import _options as opt
from ._options import DEVICE


def register(app: typer.Typer) -> None:
    @app.command("analyze", epilog="Example: chorus analyze tv-birds/ tv-frogs/ -o analysis/ -d data/manifest.csv")
    def analyze_command(
        vectors: List[Path] = typer.Argument(..., help="Task-vector directories (two or more to compare)."),
        out: Path = opt.out(help="Output folder: analysis.json, PNG figures, analysis.html."),
        data: Optional[Path] = opt.data(None, "Manifest with clips of every vector's group "
                                                                 "(for connectivity, negation and spectra)."),
        split: str = opt.split("valid", "Manifest split to use"),
        base: Optional[str] = typer.Option(None, "--base", help="Base weights: encoder name, model directory or "
                                                                "safetensors file (default: the vectors' encoder)."),
        sign_threshold: float = typer.Option(0.0, "--sign-threshold", min=0.0,
                                             help="|τ| an entry must exceed to count in sign conflicts."),
        topk: float = typer.Option(0.2, "--topk", min=0.0, max=1.0,
                                   help="Fraction kept by the per-tensor top-k masks."),
        alpha_points: int = typer.Option(11, "--alpha-points", min=2, help="Points of the α grid (LMC)."),
        lambdas: str = typer.Option("0,0.5,1,2", "--lambdas", help="Negation λ grid, comma-separated."),
        calibration: str = typer.Option("auto", "--calibration", help="Head calibration on the LMC paths."),
        ranks: bool = typer.Option(True, "--ranks/--no-ranks", help="Effective ranks (one SVD per matrix)."),
        device: str = DEVICE,
    ) -> None:
        """Cosine, sign conflicts, top-k overlap, norms and effective ranks per layer; with
        --data also linear mode connectivity, negation and spectral distances."""
        from ._console import Console

        from ..analysis import AnalysisSettings
        from ..analysis.study import run_analysis
        from ..progress import tqdm_progress
        from ._options import float_list

        if not 0 < topk <= 1:
            raise typer.BadParameter("a fraction in (0, 1]", param_hint="--topk")
        settings = AnalysisSettings(sign_threshold=sign_threshold, topk=topk, alpha_points=alpha_points,
                                    lambdas=float_list(lambdas, "--lambdas"), calibration=calibration, ranks=ranks)
        result = run_analysis(vectors, out, data, split, base, settings, tqdm_progress, device)
        console = Console()
        names = result["geometry"]["vectors"]
        console.print("whole-model cosine:")
        for name, row in zip(names, result["geometry"]["whole_model"]["cosine"]):
            console.print(f"  {name:>12s} " + " ".join("     –" if v is None else f"{v:6.3f}" for v in row))
        s = result["summary"]
        console.print(f"mean off-diagonal cosine: {_fmt(s['mean_off_diagonal_cosine'])}; sign conflicts: "
                      f"{_fmt(s['mean_pairwise_sign_conflicts'])} per pair, {_fmt(s['sign_conflict_rate'])} among "
                      "all vectors")
        console.print(f"norm ratio max/min ‖τ‖: {_fmt(s['norm_ratio'])}"
                      + (" (merges warn above 3; see --equalize-norms)" if (s["norm_ratio"] or 0) > 3 else ""))
        if "spearman_rho" in s:
            console.print(f"Spearman ρ (spectral JS distance vs cosine): {_fmt(s['spearman_rho'])}; largest LMC "
                          f"loss barrier {_fmt(s['max_loss_barrier'])}, accuracy barrier "
                          f"{_fmt(s['max_accuracy_barrier'])}")
        console.print(f"report: {out / 'analysis.html'}")


def _fmt(value) -> str:
    return "–" if value is None else f"{value:.3f}"
