"""``chorus merge``: compose task vectors into one classifier (recipe file or flags)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from . import _options as opt


def _params(items: list[str]) -> dict:
    """``["density=0.2", "scope=global"]`` -> ``{"density": 0.2, "scope": "global"}`` (YAML scalars)."""
    import yaml

    from ..taskvec.merge import RecipeError

    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise RecipeError(f"--param expects key=value, got {item!r}")
        params[key.strip()] = yaml.safe_load(value)
    return params


def _recipe_from_flags(method, vectors, weights, lam, params, calibration, base, sweep_data, sweep_split, seed,
                       equalize_norms=False, shrinkage=None, base_head=None, base_head_data=None, densities=(),
                       dtype=None):
    from ..taskvec.merge import RecipeError, parse_recipe

    if not method or not vectors:
        raise RecipeError("give a recipe file, or --method and at least one --vector")
    if weights and len(weights) != len(vectors):
        raise RecipeError(f"{len(vectors)} --vector but {len(weights)} --weight")
    if densities and len(densities) != len(vectors):
        raise RecipeError(f"{len(vectors)} --vector but {len(densities)} --density")
    data = {"method": method, "params": _params(params), "calibration": calibration, "base": base, "seed": seed,
            "equalize_norms": equalize_norms, "dtype": dtype,
            "vectors": [{"path": str(Path(v).resolve()), "weight": w, "density": d} for v, w, d in
                        zip(vectors, weights or [1.0] * len(vectors), densities or [None] * len(vectors))]}
    if lam is not None:
        data["lambda"] = lam
    if shrinkage is not None:
        data["shrinkage"] = shrinkage
    if sweep_data is not None:
        data["sweep"] = {"data": str(sweep_data.resolve()), "split": sweep_split}
    if base_head is not None:
        data["base_head"] = {"kind": base_head, "split": sweep_split,
                             "data": str(base_head_data.resolve()) if base_head_data is not None else None}
    elif base_head_data is not None:
        raise RecipeError("--base-head-data needs --base-head")
    return parse_recipe(data, "command line")


def _print_methods() -> None:
    from ._console import Console
    from rich.table import Table

    from ..taskvec.merge import get_method, method_names

    table = Table(title="merge methods")
    for column in ("method", "what it does", "default λ", "parameters", "source"):
        table.add_column(column)
    for name in method_names():
        method = get_method(name)
        params = method.parse({})
        defaults = ", ".join(f"{k}={v}" for k, v in params.model_dump().items()) or "-"
        table.add_row(name, method.summary, f"{method.default_lambda(params, 2):g}", defaults, method.source)
    Console().print(table)


def _list_methods(value: bool) -> None:
    """``--list-methods``: the table, before any required option is checked."""
    if value:
        _print_methods()
        raise typer.Exit()


def register(app: typer.Typer) -> None:
    @app.command("merge", epilog="Example: chorus merge -v tv-birds/ -v tv-frogs/ --method ties -o merged/")
    def merge_command(
        recipe: Optional[Path] = typer.Argument(None, help="Recipe YAML (or give --method and --vector)."),
        out: Path = opt.out(help="Output model directory."),
        method: Optional[str] = typer.Option(None, help="Merge method (see --list-methods)."),
        vector: List[Path] = typer.Option([], "--vector", "-v", help="Task vector directory (repeat)."),
        weight: List[float] = typer.Option([], "--weight", "-w", help="Weight per --vector, in order."),
        density: List[float] = typer.Option([], "--density", help="Kept fraction per --vector, in order (ties, dare, "
                                                                  "breadcrumbs; default: -p density=...)."),
        dtype: Optional[str] = typer.Option(None, "--dtype", help="Dtype of the written encoder: float32, float16 or "
                                                                  "bfloat16 (default: the base's)."),
        lam: Optional[float] = typer.Option(None, "--lambda", help="Scaling λ (default: the method's)."),
        param: List[str] = typer.Option([], "--param", "-p", help="Method parameter key=value (repeat)."),
        calibration: str = typer.Option("auto", help="Head calibration: auto, zscore, temperature, none, "
                                                     "or lda (one head from the vectors' class statistics)."),
        shrinkage: Optional[float] = typer.Option(None, help="lda only: ridge γ·tr(Σ)/D·I (default 0.3)."),
        base: Optional[str] = typer.Option(None, help="Base weights: registered encoder, model dir or .safetensors."),
        sweep_data: Optional[Path] = typer.Option(None, "--sweep-data",
                                                  help="Manifest for choosing λ, calibration and group gate on validation."),
        sweep_split: str = typer.Option("valid", "--sweep-split", help="Split of --sweep-data to use."),
        seed: int = opt.seed(help="Seed of random masks (DARE)."),
        list_methods: bool = typer.Option(False, "--list-methods", is_eager=True, callback=_list_methods,
                                          help="List the merge methods and exit."),
        equalize_norms: bool = typer.Option(False, "--equalize-norms",
                                            help="Rescale every task vector to the mean norm before merging."),
        base_head: Optional[str] = typer.Option(None, "--base-head",
                                                help="Also compose the base encoder's own head: birdnet (6,522 species)."),
        base_head_data: Optional[Path] = typer.Option(
            None, "--base-head-data", help="Manifest whose --sweep-split windows calibrate --base-head "
                                           "(default: --sweep-data)."),
    ) -> None:
        """Merge task vectors into one classifier over the union of their labels."""
        from ._console import Console
        from rich.table import Table

        from ..progress import tqdm_progress
        from ..merging import run_merge
        from ..taskvec.merge import RecipeError, load_recipe

        if recipe is not None:
            if method or vector or param or density or dtype or lam is not None or sweep_data is not None or base_head \
                    or base_head_data:
                raise RecipeError("give either a recipe file or --method/--vector/--param/--density/--dtype/--lambda/"
                                  "--sweep-data/--base-head flags")
            parsed = load_recipe(recipe)
            if equalize_norms:
                parsed = parsed.model_copy(update={"equalize_norms": True})
        else:
            parsed = _recipe_from_flags(method, vector, weight, lam, param, calibration, base, sweep_data,
                                        sweep_split, seed, equalize_norms, shrinkage, base_head,
                                        base_head_data, density, dtype)
        record = run_merge(parsed, out, progress=tqdm_progress)
        console = Console()
        for warning in record.get("warnings", []):
            console.print(f"[yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
        if "sweep" in record:
            sweep = record["sweep"]
            table = Table(title=f"λ sweep ({sweep['metric']}, normalized to the individual models; best calibration "
                                "and gate per λ)")
            groups = list(sweep["references"])
            for column in ("λ", "calibration", "gate", *groups, "normalized", "within group"):
                table.add_column(column, justify="right")
            for lam in dict.fromkeys(row["lambda"] for row in sweep["rows"]):
                row = max((r for r in sweep["rows"] if r["lambda"] == lam),
                          key=lambda r: (r["normalized"], r["normalized_within"], -r["gate"]))
                mark = " *" if lam == sweep["best_lambda"] else ""
                table.add_row(f"{lam:g}{mark}", row["calibration"], f"{row['gate']:g}",
                              *(f"{row['scores'][g]:.3f}" for g in groups), f"{row['normalized']:.3f}",
                              f"{row['normalized_within']:.3f}")
            console.print(table)
        shared = f", {len(record['shared_labels'])} shared between groups" if record["shared_labels"] else ""
        gate = f", group gate {record['gate']['strength']:g}" if "gate" in record else ""
        console.print(f"{record['method']} (λ = {record['lambda']:g}, {record['calibration']} calibration{gate}) of "
                      f"{len(record['vectors'])} task vectors: {len(record['labels'])} classes{shared}")
        if "base_head" in record:
            head = record["base_head"]
            console.print(f"with {head['encoder']}'s own head ({head['classes']} classes, calibrated on "
                          f"{head['windows']} windows of {head['data']})", highlight=False)
        console.print(f"model: {out}  (recipe.yaml, merge.json)")
