"""``chorus push`` / ``chorus pull``: share model folders on the Hugging Face Hub
(task vectors: ``chorus tv push`` / ``chorus tv pull``)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console


def register(app: typer.Typer) -> None:
    @app.command("push")
    def push_command(
        model: Path = typer.Argument(..., help="chorus model folder (a first-layout folder is converted)"),
        repo_id: str = typer.Argument(..., help="Hugging Face model repo, e.g. user/birds-classifier"),
        private: bool = typer.Option(False, "--private", help="create the repo private"),
        message: Optional[str] = typer.Option(None, "--message", help="commit message"),
    ) -> None:
        """Upload a model (config.json, model.safetensors, a model card naming the repo);
        token: HF_TOKEN or `hf auth login`. Nothing is written into MODEL.

        Example: chorus push runs/birds/model lab/birds-classifier --private
        """
        from ..model.hub import push_model

        push_model(model, repo_id, private=private or None, commit_message=message)
        Console().print(f"pushed {model} to {repo_id}", highlight=False, soft_wrap=True)

    @app.command("pull")
    def pull_command(
        repo_id: str = typer.Argument(..., help="Hugging Face model repo"),
        out: Path = typer.Option(..., "--out", "-o", help="folder to download into"),
        revision: Optional[str] = typer.Option(None, "--revision", help="branch, tag or commit"),
    ) -> None:
        """Download a model and check every file (schema, sha256, tensor names and shapes).

        Example: chorus pull lab/birds-classifier --out birds-model
        """
        from ..model.hub import pull_model

        model = pull_model(repo_id, out, revision=revision)
        Console().print(f"pulled {repo_id} into {out}: {model.encoder.name}, {len(model.labels)} labels",
                        highlight=False, soft_wrap=True)
